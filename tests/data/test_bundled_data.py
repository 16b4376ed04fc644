"""The bundled quality families: every dataset validates against its task (schema, shapes,
ranges, episode boundaries, content hash), and the qualities are ordered as their names
promise — random < medium < expert mean return, computed from the data itself."""

from __future__ import annotations

import json

import numpy as np
import pytest

from rllib_cfcql.data.validate import validate_dataset
from tests.conftest import REPO

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


def test_decomposable_equal_line_family_covers_each_move_and_rarely_the_joint_one():
    """offline_data/equal_line_slot_distance_n8/hesitant (docs/DATASETS_DESIGN.md §5): each agent holds
    with probability (1 − ε)(1 − q) + ε/11 = 0.639 (q = 0.3, ε = 0.1), so its moves are well covered
    (0.361 per agent and step), while a step where all 8 agents move comes at about 0.361^8 = 3·10⁻⁴."""
    card, ep = validate_dataset(REPO / "offline_data" / "equal_line_slot_distance_n8" / "hesitant")
    assert card["env_config"] == {"n_agents": 8, "reward": "slot_distance"}
    steps = ep.filled.astype(bool)
    acts = ep.actions[steps]  # [steps, 8]
    L = 16.0  # max(10, 2n)
    # obs[..., 0] is the own position / L; obs has one more step (the last next-observation)
    far = np.abs(ep.obs[:, :-1][steps][:, :, 0] * L - np.arange(8) * L / 7) > 1.0  # the expert's move is ±1, not hold
    p = 0.9 * 0.7 + 0.1 / 11
    for i in range(8):
        hold = (acts[far[:, i], i] == 0).mean()
        assert abs(hold - p) < 4 * np.sqrt(p * (1 - p) / far[:, i].sum()), (i, hold)
    all_move = (acts != 0).all(axis=1).mean()
    assert all_move < 10 * (1 - p) ** 8, all_move
    refs = card["reference_returns"]
    norm = 100 * (card["return"]["mean"] - refs["random"]) / (refs["expert"] - refs["random"])
    assert 50 < norm < 75, norm  # the data scores between random and the all-expert team: 62 at n = 8
