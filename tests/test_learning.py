"""Learning tier (opt-in, ~15 min on 2 cores): ``python -m pytest -m learning``.

What benchmarks/RESULTS.md measured on the bundled Equal_Line n = 10 data must
hold: with the same budget and α, joint-action CQL (MACQL) and unpenalised
offline QMIX collapse to a zero-return policy (normalised −2.4), while CFCQL
stays above them (measured 2.0 ± 0.7 final, 3 seeds).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import pytest

pytestmark = pytest.mark.learning
REPO = Path(__file__).resolve().parents[1]


def test_cfcql_holds_up_at_n10_where_macql_collapses():
    sys.path.insert(0, str(REPO / "benchmarks"))
    from compare import run_one

    from rllib_cfcql.data.validate import validate_dataset

    ds = REPO / "offline_data" / "equal_line_n10"
    card, episodes = validate_dataset(ds)
    a = argparse.Namespace(alpha=20.0, tau=1.0, rnn=False, mixer="qmix", lr=1e-3, batch=256, bc_steps=3000, gamma=0.99,
                           steps=3000, eval_every=1000, eval_episodes=32)
    score = {m: np.mean([run_one(ds, card, episodes, m, s, a)["final"] for s in (0, 1)]) for m in ("cfcql", "macql", "none")}
    assert score["cfcql"] > score["macql"] + 2.0 and score["cfcql"] > score["none"] + 2.0, score
