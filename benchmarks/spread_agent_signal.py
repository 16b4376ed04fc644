"""How much does one agent's better action move the team's return on continuous MPE spread, as n grows?

The data of benchmarks/run_spread_hesitant_pilot.sh is ``hesitant:0.3`` (per agent and step the scripted
expert's steer with p = 0.3, else no force; σ = 0.1 noise, ε = 0.1 random). A counterfactual step improves one
agent at a time, so what a critic must resolve is the return gained when agent 0 alone plays the expert's
steer (same noise) while the others keep hesitating, against the spread of returns it sees across episodes.
For each n this rolls out, on the same reset seeds,

* ``data``: every agent hesitant:0.3 (the behaviour);
* ``one``: agent 0 steers like the expert at every step, the others hesitant:0.3;
* ``all``: every agent steers (the expert with the behaviour's noise),

and prints the mean returns, the one-agent gain, its share of the all-expert gain, and the gain over the
per-episode standard deviation of ``data``.

    python benchmarks/spread_agent_signal.py --ns 3 6 9 --episodes 300
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from rllib_cfcql.behaviour_policies.specs import BehaviourPolicy
from rllib_cfcql.data.collect import rollout
from rllib_cfcql.envs import make_team_env

HERE = Path(__file__).resolve().parent


class _Steering(BehaviourPolicy):
    """hesitant:0.3 for every agent, except that the agents in ``steer`` always take the expert's move
    (still with the behaviour's σ = 0.1 noise and ε = 0.1 random actions)."""

    def __init__(self, steer: np.ndarray):
        super().__init__("hesitant:0.3")
        self._steer = steer

    def __call__(self, env, obs, rng):
        base = super().__call__(env, obs, rng)
        expert = np.clip(env.expert_action() + rng.normal(0.0, 0.1, base.shape), -1.0, 1.0).astype(np.float32)
        explore = rng.random(len(base)) < 0.1
        mine = self._steer & ~explore
        return np.where(mine[:, None], expert, base)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--ns", type=int, nargs="+", default=[3, 6, 9])
    ap.add_argument("--episodes", type=int, default=300)
    ap.add_argument("--out", default=str(HERE / "results" / "mpe_spread_c_agent_signal.json"))
    a = ap.parse_args()
    rows = []
    for n in a.ns:
        env = make_team_env("mpe_spread", {"n_agents": n, "continuous_actions": True})
        r = {}
        for name, steer in (("data", np.zeros(n, bool)), ("one", np.arange(n) == 0), ("all", np.ones(n, bool))):
            ep = rollout(env, _Steering(steer), a.episodes, seed=10_000)
            r[name] = ep.returns()
        gain, full = float(np.mean(r["one"] - r["data"])), float(np.mean(r["all"] - r["data"]))
        row = {"n": n, "episodes": a.episodes, **{f"return_{k}": float(v.mean()) for k, v in r.items()},
               "return_data_std": float(r["data"].std()), "one_agent_gain": gain,
               "one_agent_gain_se": float(np.std(r["one"] - r["data"]) / np.sqrt(a.episodes)),
               "one_agent_share": gain / full, "gain_over_std": gain / float(r["data"].std())}
        rows.append(row)
        print({k: round(v, 3) if isinstance(v, float) else v for k, v in row.items()}, flush=True)
    Path(a.out).write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
