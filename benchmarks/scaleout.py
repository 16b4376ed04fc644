"""Learning curves with one learner vs two DDP learners (data sharded by episode).

    python benchmarks/scaleout.py --dataset offline_data/equal_line_n4 --iterations 15 --seeds 0,1

Both use the same *total* batch (two learners: half each) and gradient-step budget;
the curves should agree within seed noise. Runs the full Algorithm through Ray
(evaluation on one EnvRunner).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dataset", default="offline_data/equal_line_n4")
    ap.add_argument("--iterations", type=int, default=15)
    ap.add_argument("--steps-per-iteration", type=int, default=100)
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--alpha", type=float, default=20.0)
    ap.add_argument("--seeds", default="0,1")
    ap.add_argument("--eval-every", type=int, default=3)
    ap.add_argument("--eval-episodes", type=int, default=32)
    ap.add_argument("--out", default="benchmarks/results/scaleout.json")
    a = ap.parse_args()
    import ray

    from rllib_cfcql import CFCQLConfig

    ray.init(num_cpus=6, include_dashboard=False, log_to_driver=False)
    card = json.loads((Path(a.dataset) / "card.json").read_text())
    runs = []
    for learners in (0, 2):
        for seed in [int(s) for s in a.seeds.split(",")]:
            cfg = (CFCQLConfig().environment(card["task"], env_config=card["env_config"])
                   .offline_data(input_=[a.dataset])
                   .training(cql_alpha=a.alpha, agent_rnn=False, obs_last_action=False, batch_unit="transitions",
                             train_batch_size_per_learner=a.batch // max(1, learners),
                             num_gradient_steps_per_iteration=a.steps_per_iteration)
                   .learners(num_learners=learners)
                   .evaluation(evaluation_interval=a.eval_every, evaluation_duration=a.eval_episodes, evaluation_num_env_runners=1)
                   .debugging(seed=seed))
            algo = cfg.build_algo()
            curve, t0 = [], time.perf_counter()
            for it in range(1, a.iterations + 1):
                r = algo.train()
                ev = r.get("evaluation", {}).get("env_runners", {})
                if it % a.eval_every == 0 and "episode_return_mean" in ev:
                    curve.append((it * a.steps_per_iteration, float(algo.normalized_score(ev["episode_return_mean"]))))
            secs = time.perf_counter() - t0
            algo.stop()
            runs.append({"num_learners": max(1, learners), "seed": seed, "curve": curve, "seconds": round(secs, 1)})
            print(f"learners={max(1, learners)} seed={seed}: " + " ".join(f"{s:.1f}" for _, s in curve)
                  + f"  ({secs:.0f} s)", flush=True)
    for k in (1, 2):
        c = np.array([[s for _, s in r["curve"]] for r in runs if r["num_learners"] == k])
        print(f"learners={k}: mean curve " + " ".join(f"{m:.1f}±{s:.1f}" for m, s in zip(c.mean(0), c.std(0))))
    Path(a.out).parent.mkdir(parents=True, exist_ok=True)
    Path(a.out).write_text(json.dumps({"args": vars(a), "runs": runs}, indent=1))
    ray.shutdown()


if __name__ == "__main__":
    main()
