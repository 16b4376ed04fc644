"""Learning tier (opt-in, ~2 min on 2 cores): ``python -m pytest -m learning``.

What benchmarks/RESULTS.md measured on Equal_Line's decomposable family (docs/DATASETS_DESIGN.md §5)
must hold on its bundled n = 8 set (300 episodes of `hesitant:0.3`, reward `slot_distance`): behaviour
cloning copies the modal action, holding, and scores below the random policy, while CFCQL at the
tuned example's settings (α 1, target copies every 200 steps, 4 000 steps) moves every agent to its
slot and scores well above the data (sweep, 1 000 episodes: 91.9 ± 2.1 over 3 seeds; the bundled set
through `rllib train`: 84.5).
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from rllib_cfcql import CFCQLConfig
from rllib_cfcql.core.in_process import train_in_process
from rllib_cfcql.data.validate import validate_dataset

pytestmark = pytest.mark.learning
REPO = Path(__file__).resolve().parents[1]
DATASET = REPO / "offline_data" / "equal_line_slot_distance_n8" / "hesitant"
TUNED = REPO / "tuned_examples" / "cfcql-equal-line-slot-distance-n8.yaml"


def _run(card, episodes, **training):
    """The tuned example's settings, in process: its 40 × 100 steps, evaluated at 2 000 and 4 000."""
    (exp,) = yaml.safe_load(TUNED.read_text()).values()
    cfg = (CFCQLConfig().environment(exp["env"], env_config=card["env_config"])
           .update_from_dict({**exp["config"], "input_": [str(DATASET)]}).training(**training))
    steps = exp["stop"]["training_iteration"] * cfg.num_gradient_steps_per_iteration
    return train_in_process(cfg, episodes, steps=steps, eval_every=steps // 2, eval_episodes=32,
                            reference_returns=card["reference_returns"], pretrain_seed=0)


def test_cfcql_moves_where_behaviour_cloning_holds():
    card, episodes = validate_dataset(DATASET)
    refs = card["reference_returns"]
    data = 100 * (card["return"]["mean"] - refs["random"]) / (refs["expert"] - refs["random"])  # 63.4
    cfcql = _run(card, episodes, mode="cql", penalty="cf", cql_alpha=1.0)
    bc = _run(card, episodes, mode="bc")
    assert bc["curve"][-1][1] < 0.0, bc["curve"]  # holding everywhere: below the random reference
    assert cfcql["curve"][-1][1] > data + 10.0, (cfcql["curve"], data)
    assert cfcql["diagnostics"][-1]["diag_q_minus_mc"] < 200.0  # finite: no divergence
