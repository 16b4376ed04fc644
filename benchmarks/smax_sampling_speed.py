"""How fast RLlib PPO's env runner samples a SMAX map: one env per copy vs the batched env (one call).

    OMP_NUM_THREADS=1 python benchmarks/smax_sampling_speed.py --task smax_2s3z --num-envs 16 64 --rounds 3

Builds ``rllib-cfcql behaviour train-shared``'s PPO (its ``build_algo``, the masked shared policy) once
per (num_envs, env runner) — ``--batched-env off`` (RLlib's ``SyncVectorMultiAgentEnv``, each copy
stepped from Python) and ``on`` (:class:`~rllib_cfcql.behaviour_policies.team_agents.BatchedTeamEnvRunner`)
— warms each up, then times ``env_runner.sample(num_timesteps=--steps)`` alternating between them for
``--rounds`` rounds, in one process. Prints env steps per second (median over rounds) and the ratio, and
with ``--out`` writes them as JSON. Sampling only: the PPO update is the same for both.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--task", default="smax_2s3z")
    ap.add_argument("--num-envs", type=int, nargs="+", default=[16, 64])
    ap.add_argument("--steps", type=int, default=4096, help="env steps per timed sample() call")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--out", default=None)
    a = ap.parse_args()

    import ray
    import torch
    from ray.tune.registry import register_env

    from rllib_cfcql.behaviour_policies import train_shared
    from rllib_cfcql.behaviour_policies.team_agents import TeamAgentsEnv

    torch.set_num_threads(1)
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    register_env("team_agents", lambda cfg: TeamAgentsEnv(cfg))
    runners = {}
    for n in a.num_envs:
        for mode in ("off", "on"):
            args = argparse.Namespace(task=a.task, hidden=[64, 64], activation="tanh", lr=7e-4, gamma=0.99, epochs=1,
                                      minibatch=1024, ppo_batch=a.steps, entropy=0.01, num_envs=n, seed=0,
                                      batched_env=mode)
            algo, _ = train_shared.build_algo(args, {})
            algo.env_runner.sample(num_timesteps=min(a.steps, 1024))  # compile and warm up
            runners[(n, mode)] = algo
    times: dict = {k: [] for k in runners}
    for _ in range(a.rounds):
        for key, algo in runners.items():
            t = time.perf_counter()
            eps = algo.env_runner.sample(num_timesteps=a.steps)
            times[key].append(sum(len(e) for e in eps) / (time.perf_counter() - t))
    rows = []
    print(f"{a.task}: env steps/s sampled by PPO's env runner (median of {a.rounds} rounds, {a.steps} steps each)")
    print(f"{'num_envs':>8} {'one env per copy':>17} {'batched':>9} {'ratio':>6}")
    for n in a.num_envs:
        off, on = float(np.median(times[(n, "off")])), float(np.median(times[(n, "on")]))
        rows.append({"num_envs": n, "per_env_steps_per_s": off, "batched_steps_per_s": on, "ratio": on / off})
        print(f"{n:8d} {off:17.0f} {on:9.0f} {on / off:6.2f}")
    for algo in runners.values():
        algo.stop()
    if a.out:
        Path(a.out).parent.mkdir(parents=True, exist_ok=True)
        Path(a.out).write_text(json.dumps({"args": vars(a), "rows": rows}, indent=1) + "\n")


if __name__ == "__main__":
    main()
