"""Discrete CFCQL throughput on this machine, side by side in one run.

    python benchmarks/throughput.py [--agents 3,6,10] [--steps 20] [--threads 1] [--out benchmarks/results/throughput.json]
    python benchmarks/throughput.py --malloc-ab 3 --agents 3,6,10 --steps 6 --out benchmarks/results/throughput_malloc.json

For each shape — GRU agents on 128 whole episodes of 50 steps (the reference's
shape), and MLP agents on 1024 transitions — and each team size, on Equal_Line
data collected on the fly:

* ``bare``: a plain torch loop (same module, same loss function, Adam, clip,
  minibatches drawn from the same store): the floor RLlib is measured against;
* ``learner``: RLlib's Learner (``CFCQLTorchLearner.train_steps``: RLlib's
  ``_update``, metrics, target schedule), in-process;
* sampling vs update time inside the learner (does data starve the learner?).

Then, through Ray (``build_algo()`` + ``train()``) on a bundled dataset: the set-up
time (ray.data read, β from cache), the time from the first ``train()`` call to the
first finished gradient step, and steady-state steps/s with both timers.

Reference (authors' update code, same shapes, this 2-core machine, 1 thread):
0.95 / 0.29 / 0.13 gradient steps/s for n = 3 / 6 / 10 (GRU, 128 episodes).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

REFERENCE_GRU = {3: 0.95, 6: 0.29, 10: 0.13}


def make_episodes(n: int, episodes: int, limit: int = 50):
    from rllib_cfcql.behaviour_policies.specs import BehaviourPolicy
    from rllib_cfcql.data.collect import rollout
    from rllib_cfcql.envs import make_team_env

    return rollout(make_team_env("equal_line", {"n_agents": n, "episode_limit": limit}),
                   BehaviourPolicy("medium_expert:0.3"), episodes, seed=0)


def build(n: int, ep, rnn: bool, batch: int, keep_freed_memory: bool = True):
    from rllib_cfcql import CFCQLConfig

    cfg = (CFCQLConfig().environment("equal_line", env_config={"n_agents": n, "episode_limit": 50})
           .offline_data(input_=["offline_data"])  # not read: data is handed to the learner
           .training(agent_rnn=rnn, obs_last_action=rnn, batch_unit="episodes" if rnn else "transitions",
                     train_batch_size_per_learner=batch, cf_tau=1.0, cql_alpha=1.0, learner_torch_threads=0,
                     learner_keep_freed_memory=keep_freed_memory))
    cfg.validate()
    learner = cfg.build_learner(env=None)
    learner.set_dataset(ep, 1, 0)  # β left at init: its logits are precomputed once either way
    return cfg, learner


def bare_loop(cfg, learner, steps: int) -> float:
    """The same module and loss in a plain torch loop."""
    from rllib_cfcql.discrete.loss import cfcql_loss

    m = learner.module["default_policy"].unwrapped()
    params = list(m.agent.parameters()) + list(m.mixer.parameters())
    opt = torch.optim.Adam(params, lr=cfg.lr)
    store, bs = learner.store, cfg.train_batch_size_per_learner

    def step(i):
        batch = store.sample(bs)
        fwd = m.forward_train(batch)
        terms = cfcql_loss(cfg, batch, fwd)
        opt.zero_grad(set_to_none=True)
        terms.total.backward()
        torch.nn.utils.clip_grad_norm_(params, cfg.grad_clip)
        opt.step()
        if (i + 1) % cfg.target_update_interval == 0:
            m.sync_targets()

    step(0)
    t = time.perf_counter()
    for i in range(steps):
        step(i)
    return steps / (time.perf_counter() - t)


def learner_loop(learner, steps: int):
    learner.train_steps(1)
    t = time.perf_counter()
    r = learner.train_steps(steps)
    sps = steps / (time.perf_counter() - t)
    allm = r["__all_modules__"]
    return sps, allm["learner_sample_time_s"].peek(), allm["learner_update_time_s"].peek()


def through_ray(dataset: str, steps: int) -> dict:
    import ray

    from rllib_cfcql import CFCQLConfig

    ray.init(num_cpus=4, include_dashboard=False, log_to_driver=False)
    card = json.loads((Path(dataset) / "card.json").read_text())
    out = {}
    for rnn, batch in ((False, 1024), (True, 128)):
        cfg = (CFCQLConfig().environment(card["task"], env_config=card["env_config"]).offline_data(input_=[dataset])
               .training(agent_rnn=rnn, obs_last_action=rnn, batch_unit="episodes" if rnn else "transitions",
                         train_batch_size_per_learner=batch, num_gradient_steps_per_iteration=1, cql_alpha=1.0)
               .evaluation(evaluation_interval=0))
        t0 = time.perf_counter()
        algo = cfg.build_algo()
        setup = time.perf_counter() - t0
        t1 = time.perf_counter()
        algo.train()  # one gradient step
        first = time.perf_counter() - t1
        algo.config._is_frozen = False
        algo.config.num_gradient_steps_per_iteration = steps
        t2 = time.perf_counter()
        r = algo.train()
        wall = time.perf_counter() - t2
        allm = r["learners"]["__all_modules__"]
        key = "gru_128_episodes" if rnn else "mlp_1024_transitions"
        out[key] = {
            "setup_s": round(setup, 2), "data_read_s": algo.dataset_info["read_seconds"],
            "behaviour_pretrain": algo.behaviour_info, "first_update_after_train_call_s": round(first, 3),
            "steps_per_s": round(steps / wall, 3), "sample_time_s": round(allm["learner_sample_time_s"], 3),
            "update_time_s": round(allm["learner_update_time_s"], 3), "iteration_wall_s": round(wall, 3),
        }
        algo.stop()
    ray.shutdown()
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--agents", default="3,6,10")
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--ray-dataset", default="offline_data/equal_line_n4")
    ap.add_argument("--skip-ray", action="store_true")
    ap.add_argument("--out", default="benchmarks/results/throughput.json")
    ap.add_argument("--keep-freed-memory", default="on", choices=("on", "off"),
                    help="the learner's learner_keep_freed_memory (glibc mallopt; rllib_cfcql.core.malloc)")
    ap.add_argument("--malloc-ab", type=int, default=0, metavar="ROUNDS",
                    help="instead: learner steps/s with keep-freed-memory on and off (benchmarks/malloc_ab.py)")
    a = ap.parse_args()
    if a.malloc_ab:
        import malloc_ab

        malloc_ab.run(__file__, ["--agents", a.agents, "--steps", str(a.steps), "--threads", str(a.threads),
                                 "--skip-ray", "--out", "/dev/null"], a.malloc_ab, a.out)
        return
    torch.set_num_threads(a.threads)
    rows = []
    print(f"torch threads: {a.threads}")
    print(f"{'shape':24s} {'n':>3s} {'bare st/s':>10s} {'rllib st/s':>10s} {'overhead':>9s} "
          f"{'trans/s':>9s} {'sample s':>9s} {'update s':>9s} {'vs ref':>7s}")
    for n in [int(x) for x in a.agents.split(",")]:
        ep = make_episodes(n, 300)
        for rnn, batch, shape in ((True, 128, "gru_128_episodes"), (False, 1024, "mlp_1024_transitions")):
            cfg, learner = build(n, ep, rnn, batch, a.keep_freed_memory == "on")
            bare = bare_loop(cfg, learner, a.steps)
            sps, ts, tu = learner_loop(learner, a.steps)
            trans = sps * batch * (50 if rnn else 1)
            ref = REFERENCE_GRU.get(n) if rnn else None
            row = {"shape": shape, "n_agents": n, "bare_steps_per_s": bare, "rllib_steps_per_s": sps,
                   "rllib_overhead": bare / sps - 1.0, "transitions_per_s": trans, "sample_time_s": ts,
                   "update_time_s": tu, "speedup_vs_reference": (sps / ref) if ref else None, "threads": a.threads}
            rows.append(row)
            print(f"{shape:24s} {n:3d} {bare:10.2f} {sps:10.2f} {100 * row['rllib_overhead']:8.1f}% "
                  f"{trans:9.0f} {ts:9.3f} {tu:9.3f} {(f'{sps / ref:6.1f}x') if ref else '':>7s}", flush=True)
    import malloc_ab

    malloc_ab.report({f"{r['shape']}/n{r['n_agents']}": r["rllib_steps_per_s"] for r in rows})
    result = {"in_process": rows}
    if not a.skip_ray:
        result["through_ray"] = through_ray(a.ray_dataset, a.steps)
        for k, v in result["through_ray"].items():
            print(f"ray {k}: setup {v['setup_s']} s (ray.data read {v['data_read_s']} s), first update "
                  f"{v['first_update_after_train_call_s']} s after train(), {v['steps_per_s']} steps/s "
                  f"(sample {v['sample_time_s']} s / update {v['update_time_s']} s of {v['iteration_wall_s']} s)")
    if a.out != "/dev/null":
        Path(a.out).parent.mkdir(parents=True, exist_ok=True)
        Path(a.out).write_text(json.dumps(result, indent=1, default=float))


if __name__ == "__main__":
    main()
