"""Learning tier (opt-in, minutes): ``python -m pytest -m learning``.

The tuned Equal_Line (n = 4) CFCQL settings must beat behaviour cloning and
joint-action CQL on the bundled data within a fixed budget (thresholds from
benchmarks/RESULTS.md, with margin).
"""

from __future__ import annotations

import numpy as np
import pytest

pytestmark = pytest.mark.learning


def test_cfcql_beats_bc_and_macql_on_equal_line_n4():
    import argparse
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
    from compare_discrete import run_one

    from rllib_cfcql.data.commands import validate_dataset

    ds = Path(__file__).resolve().parents[1] / "offline_data" / "equal_line_n4"
    card, episodes = validate_dataset(ds)
    a = argparse.Namespace(alpha=20.0, tau=1.0, rnn=False, mixer="qmix", lr=1e-3, batch=256, bc_steps=3000,
                           steps=3000, eval_every=500, eval_episodes=32)
    score = {m: np.mean([run_one(ds, card, episodes, m, s, a)["final"] for s in (0, 1)]) for m in ("cfcql", "macql", "bc")}
    assert score["cfcql"] > score["macql"] + 5 and score["cfcql"] > score["bc"] + 5, score
