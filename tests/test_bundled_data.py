"""The bundled quality families: every dataset validates against its task (schema, shapes,
ranges, episode boundaries, content hash), and the qualities are ordered as their names
promise — random < medium < expert mean return, computed from the data itself."""

from __future__ import annotations

import json

import numpy as np
import pytest

from rllib_cfcql.data.validate import validate_dataset

from .conftest import REPO

FAMILIES = sorted(p.parent.parent for p in (REPO / "offline_data").glob("*/random/card.json"))


def test_every_task_and_variant_has_a_bundled_family():
    names = {f.name for f in FAMILIES}
    expected = {f"{t}_{v}" for t in ("mpe_spread", "mpe_tag", "mpe_world") for v in ("continuous", "discrete")}
    assert expected | {"mamujoco_halfcheetah_2x3", "equal_line_n4_discrete"} <= names


@pytest.mark.parametrize("family", FAMILIES, ids=lambda p: p.name)
def test_family_validates_and_qualities_are_ordered(family):
    means, var = {}, {}
    for q in ("random", "medium-replay", "medium", "expert", "mixed"):
        card, ep = validate_dataset(family / q)  # checks the content hash too
        assert card["quality"] == q
        ret = ep.returns()
        means[q], var[q] = float(ret.mean()), float(ret.var(ddof=1)) / len(ret)  # mean and its squared std. error
        assert means[q] == pytest.approx(card["return"]["mean"], rel=1e-5, abs=1e-5)
    assert means["random"] < means["medium"] < means["expert"], means
    # medium-replay is the run *up to* medium (its early policies score like random, so on a few
    # episodes it may fall below the uniform policy: mpe_tag scores in steps of 10)
    # (up to sampling noise: 3 standard errors of the difference; mpe_tag's returns are multiples of 10
    # with a std about twice the mean)
    assert means["medium-replay"] < means["medium"] + 3 * np.sqrt(var["medium-replay"] + var["medium"]), means
    # mixed = half medium, half expert episodes: between random and expert, and at the medium/expert
    # average up to sampling noise (3 standard errors; the bundled sets have 15-40 episodes)
    assert means["random"] < means["mixed"] < means["expert"], means
    gap = means["mixed"] - (means["medium"] + means["expert"]) / 2
    assert abs(gap) < 3 * np.sqrt(var["mixed"] + (var["medium"] + var["expert"]) / 4), (gap, means)
    refs = json.loads((family / "expert" / "card.json").read_text())["reference_returns"]
    assert refs["random"] < refs["expert"]
