"""Learning tier (opt-in, ~2 min on 2 cores): ``python -m pytest -m learning``.

What benchmarks/RESULTS.md measured on Equal_Line's decomposable family (docs/DATASETS_DESIGN.md §5)
must hold on its bundled n = 8 set (300 episodes of `hesitant:0.3`, reward `slot_distance`): behaviour
cloning copies the modal action, holding, and scores below the random policy, while CFCQL at the
tuned example's settings (α 1, target copies every 200 steps, 4 000 steps) moves every agent to its
slot and scores well above the data (sweep, 1 000 episodes: 91.9 ± 2.1 over 3 seeds; the bundled set
through `rllib train`: 84.5).
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.learning
REPO = Path(__file__).resolve().parents[1]


def test_cfcql_moves_where_behaviour_cloning_holds():
    sys.path.insert(0, str(REPO / "benchmarks"))
    import compare

    from rllib_cfcql.data.validate import validate_dataset

    ds = REPO / "offline_data" / "equal_line_slot_distance_n8" / "hesitant"
    card, episodes = validate_dataset(ds)
    refs = card["reference_returns"]
    data = 100 * (card["return"]["mean"] - refs["random"]) / (refs["expert"] - refs["random"])  # 63.4
    a = compare.parse_args(["--dataset", str(ds), "--steps", "4000", "--eval-every", "2000", "--alpha", "1",
                            "--target-update", "200"])
    cfcql = compare.run_one(ds, card, episodes, "cfcql", 0, a)
    bc = compare.run_one(ds, card, episodes, "bc", 0, a)
    assert bc["final"] < 0.0, bc["final"]  # holding everywhere: below the random reference
    assert cfcql["final"] > data + 10.0, (cfcql["final"], data)
    assert cfcql["diagnostics"][-1]["diag_q_minus_mc"] < 200.0  # finite: no divergence
