"""Continuous CFCQL throughput on this machine, side by side in one run.

    python benchmarks/throughput_continuous.py [--steps 50] [--threads 1] [--out benchmarks/results/throughput_continuous.json]
    python benchmarks/throughput_continuous.py --malloc-ab 3 --shapes mpe_spread_n3,mpe_spread_n3_ps --variants cfcql

Shapes (the reference's): MPE cooperative navigation with 3 and 10 agents,
batch 1024, hidden 64, 10 uniform CQL samples per agent; MaMuJoCo HalfCheetah
2x3, batch 256, hidden 256, 10 uniform + 10 current-policy + 10 next-policy
samples per agent. Data: a few episodes collected on the fly from the real env.

* ``bare``: a plain torch loop — same module, same loss function, the same
  schedule (actor every 5th step, Polyak per round), two Adams with clipping;
* ``learner``: RLlib's Learner (``train_steps``: RLlib's ``_update``, metrics, schedule).

A *step* is one critic step (the reference's unit); per round of 5 one also
updates the actors. Variants measured: CFCQL (uniform λ), CFCQL with VAE λ,
MACQL.

Reference (authors' update code, this 2-core machine, 1 thread): 5.5 critic
steps/s on MPE spread (batch 1024), 2.7 on HalfCheetah 2x3 (batch 256).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

REFERENCE = {"mpe_spread_n3": 5.5, "mamujoco_halfcheetah_2x3": 2.7}

SHAPES = {
    "mpe_spread_n3": dict(task="mpe_spread", env_config={"continuous_actions": True, "n_agents": 3}, batch=1024,
                          hidden=64, policy_samples=False),
    "mpe_spread_n10": dict(task="mpe_spread", env_config={"continuous_actions": True, "n_agents": 10}, batch=1024,
                           hidden=64, policy_samples=False),
    "mamujoco_halfcheetah_2x3": dict(task="mamujoco_halfcheetah_2x3", env_config={}, batch=256, hidden=256,
                                     policy_samples=True),
    # the MPE table's CFCQL with penalty samples around the policies too (run_mpe_table2.sh JOB=ps)
    "mpe_spread_n3_ps": dict(task="mpe_spread", env_config={"continuous_actions": True, "n_agents": 3}, batch=1024,
                             hidden=64, policy_samples=True),
}
VARIANTS = {"cfcql": {}, "cfcql_vae": {"lambda_model": "vae"}, "macql": {"penalty": "joint"}}


def collect(task, env_config, episodes=4):
    from rllib_cfcql.behaviour_policies.specs import BehaviourPolicy
    from rllib_cfcql.data.collect import rollout
    from rllib_cfcql.envs import make_team_env

    return rollout(make_team_env(task, env_config), BehaviourPolicy("random"), episodes, seed=0)


def build(shape, ep, variant, keep_freed_memory=True):
    from rllib_cfcql import CFCQLConfig

    cfg = (CFCQLConfig().environment(shape["task"], env_config=shape["env_config"])
           .offline_data(input_=["offline_data"])  # not read: data is handed to the learner
           .training(train_batch_size_per_learner=shape["batch"], agent_hidden=shape["hidden"], cql_alpha=1.0,
                     cql_policy_samples=shape["policy_samples"], grad_clip=0.5, learner_torch_threads=0,
                     learner_keep_freed_memory=keep_freed_memory,
                     **VARIANTS[variant]))
    cfg.validate()
    learner = cfg.build_learner(env=None)
    learner.set_dataset(ep, 1, 0)  # the VAE, if any, left at init: its cost per step is the same
    return cfg, learner


def bare_loop(cfg, learner, steps: int) -> float:
    from rllib_cfcql import keys as K
    from rllib_cfcql.continuous.loss import continuous_loss

    module = learner.module["default_policy"].unwrapped()
    actor_opt = torch.optim.Adam(module.actor.parameters(), lr=1e-3, foreach=True)
    critic_opt = torch.optim.Adam(module.critic.parameters(), lr=1e-3, foreach=True)
    bs, every = int(cfg.train_batch_size_per_learner), int(cfg.actor_update_interval)
    t0 = time.perf_counter()
    for k in range(steps):
        actor_step = k % every == 0
        batch = learner.store.sample(bs)
        batch[K.ACTOR_STEP] = actor_step
        loss = continuous_loss(cfg, batch, module.forward_train(batch)).total
        actor_opt.zero_grad(set_to_none=True)
        critic_opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(module.critic.parameters(), cfg.grad_clip)
        critic_opt.step()
        if actor_step:
            torch.nn.utils.clip_grad_norm_(module.actor.parameters(), cfg.grad_clip)
            actor_opt.step()
        if (k + 1) % every == 0:
            module.polyak_update(cfg.polyak_tau)
    return steps / (time.perf_counter() - t0)


def learner_loop(learner, steps: int) -> float:
    t0 = time.perf_counter()
    learner.train_steps(steps)
    return steps / (time.perf_counter() - t0)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--shapes", default=",".join(SHAPES))
    ap.add_argument("--variants", default=",".join(VARIANTS))
    ap.add_argument("--steps", type=int, default=50)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", default=None)
    ap.add_argument("--keep-freed-memory", default="on", choices=("on", "off"),
                    help="the learner's learner_keep_freed_memory (glibc mallopt; rllib_cfcql.core.malloc)")
    ap.add_argument("--malloc-ab", type=int, default=0, metavar="ROUNDS",
                    help="instead: learner steps/s with keep-freed-memory on and off (benchmarks/malloc_ab.py)")
    a = ap.parse_args()
    if a.malloc_ab:
        import malloc_ab

        malloc_ab.run(__file__, ["--shapes", a.shapes, "--variants", a.variants, "--steps", str(a.steps),
                                 "--threads", str(a.threads)], a.malloc_ab, a.out)
        return
    torch.set_num_threads(a.threads)
    rows = []
    print(f"torch threads: {torch.get_num_threads()}; a step = one critic step (+ actor every 5th)")
    print(f"{'shape':26s} {'variant':10s} {'bare/s':>8s} {'learner/s':>10s} {'overhead':>9s} {'vs ref':>8s}")
    for name in a.shapes.split(","):
        shape = SHAPES[name]
        ep = collect(shape["task"], shape["env_config"])
        for variant in a.variants.split(","):
            cfg, learner = build(shape, ep, variant, a.keep_freed_memory == "on")
            learner.train_steps(5)  # warm-up
            bare = bare_loop(cfg, learner, a.steps)
            lrn = learner_loop(learner, a.steps)
            ref = REFERENCE.get(name)
            row = {"shape": name, "variant": variant, "batch": shape["batch"], "bare_steps_per_s": round(bare, 2),
                   "learner_steps_per_s": round(lrn, 2), "rllib_overhead": round(bare / lrn - 1.0, 3),
                   "reference_steps_per_s": ref, "speedup_vs_reference": round(lrn / ref, 2) if ref else None}
            rows.append(row)
            print(f"{name:26s} {variant:10s} {bare:8.2f} {lrn:10.2f} {100 * (bare / lrn - 1):8.1f}% "
                  f"{(f'{lrn / ref:.1f}x') if ref else '':>8s}", flush=True)
    import malloc_ab

    malloc_ab.report({f"{r['shape']}/{r['variant']}": r["learner_steps_per_s"] for r in rows})
    if a.out:
        Path(a.out).parent.mkdir(parents=True, exist_ok=True)
        Path(a.out).write_text(json.dumps({"threads": a.threads, "steps": a.steps, "rows": rows}, indent=1))


if __name__ == "__main__":
    main()
