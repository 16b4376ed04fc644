"""Continuous MPE spread, n = 9, hesitant:0.3 (benchmarks/run_spread_hesitant_pilot.sh's data): which part of
CFCQL fails there? One run per variant, the pilot's settings, seed 0; JSON per run.

    python benchmarks/spread_n9_actor_check.py joint_actor_a5      # CF penalty, actors step on Q(s, π(o))
    python benchmarks/spread_n9_actor_check.py cf_actor_a20        # CF penalty and actor, α 20 (α/n ≈ 2.2)
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import torch

from rllib_cfcql import CFCQLConfig
from rllib_cfcql.core.in_process import train_in_process
from rllib_cfcql.data.validate import validate_dataset

HERE = Path(__file__).resolve().parent
DS = HERE / "data" / "pilot" / "mpe_spread_c_n9_hesitant0.3"
VARIANTS = {
    "joint_actor_a5": dict(penalty="cf", actor_objective="joint", cql_alpha=5.0),
    "cf_actor_a20": dict(penalty="cf", cql_alpha=20.0),
}

if __name__ == "__main__":
    torch.set_num_threads(1)
    name = sys.argv[1]
    card, episodes = validate_dataset(DS)
    cfg = (CFCQLConfig().environment(card["task"], env_config=card["env_config"]).offline_data(input_=[str(DS)])
           .training(lr=0.01, gamma=0.95, grad_clip=0.5, agent_hidden=64, train_batch_size_per_learner=256,
                     **VARIANTS[name]).debugging(seed=0))
    run = train_in_process(cfg, episodes, steps=4000, eval_every=1000, eval_episodes=32,
                           reference_returns=card["reference_returns"], pretrain_seed=0)
    out = HERE / "results" / "mpe_spread_c_hesitant0.3_diag" / f"n9_{name}_s0.json"
    out.write_text(json.dumps({"variant": name, "settings": VARIANTS[name], "curve": run["curve"],
                               "diagnostics": run["diagnostics"], "seconds": run["seconds"]}, indent=1))
    print(name, [round(v, 1) for _, v in run["curve"]], run["seconds"], "s", flush=True)
