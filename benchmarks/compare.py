"""CFCQL vs its baselines on one dataset, same gradient-step budget.

Discrete datasets (mixer variant): cfcql, macql, none (offline QMIX), bc.
Continuous datasets (centralised critic variant): cfcql, macql, icql, omar, matd3bc, bc.

    python benchmarks/compare.py --dataset offline_data/equal_line_n4 \
        --methods cfcql,macql,none,bc --seeds 0,1,2 --steps 2000 --out benchmarks/results/compare_equal_line_n4.json
    python benchmarks/compare.py --dataset offline_data/mpe_spread_continuous/medium \
        --methods cfcql,macql,icql,omar,matd3bc --seeds 0,1,2 --steps 2000 --batch 1024 \
        --lr 0.01 --gamma 0.95 --grad-clip 0.5 --alpha 5 --hidden 64

Runs RLlib's CFCQL Learner in-process on the dataset (no Ray cluster;
rllib_cfcql.core.in_process.train_in_process), evaluates the greedy decentralised policy every --eval-every
steps in the live env, and reports final and best normalised score
(mean ± std over seeds). Settings shared by every method come from the flags;
method-specific ones from METHODS below.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch

from rllib_cfcql import CFCQLConfig
from rllib_cfcql.core.in_process import train_in_process
from rllib_cfcql.data.validate import validate_dataset

METHODS = {
    "cfcql": dict(mode="cql", penalty="cf"),
    "macql": dict(mode="cql", penalty="joint"),
    "none": dict(mode="cql", penalty="none"),
    "bc": dict(mode="bc"),
}
CONTINUOUS_METHODS = {
    "cfcql": dict(penalty="cf"),
    "macql": dict(penalty="joint"),
    "icql": dict(critic="independent", penalty="cf"),
    "omar": dict(critic="independent", penalty="cf", actor_objective="omar"),
    "matd3bc": dict(penalty="none", actor_objective="td3bc"),
    "bc": dict(mode="bc"),
}


def run_one(ds_dir, card, episodes, method, seed, a) -> dict:
    continuous = bool(card["spec"].get("continuous"))
    if continuous:
        train = dict(CONTINUOUS_METHODS[method], cql_alpha=a.alpha, cf_tau=a.tau, lr=a.lr, gamma=a.gamma,
                     grad_clip=a.grad_clip, agent_hidden=a.hidden, train_batch_size_per_learner=a.batch,
                     cql_policy_samples=a.policy_samples, lambda_model=a.lambda_model, polyak_tau=a.polyak_tau)
        if a.actor_objective:  # ablations: e.g. MACQL's joint penalty with CFCQL's counterfactual actor step
            train["actor_objective"] = a.actor_objective
        if a.actor_lr:
            train["actor_lr"] = a.actor_lr
        if a.actor_preact_l2:
            train["actor_preact_l2"] = a.actor_preact_l2
        if a.actor_bc_warmup:
            train["actor_bc_warmup"] = a.actor_bc_warmup
    else:
        train = dict(METHODS[method], cql_alpha=a.alpha, cf_tau=a.tau, agent_rnn=a.rnn, obs_last_action=a.rnn,
                     mixer=a.mixer, lr=a.lr, td_lambda=a.td_lambda, target_update_interval=a.target_update,
                     joint_greedy_stratum=bool(a.joint_greedy_stratum),
                     batch_unit="episodes" if a.rnn or a.batch_unit == "episodes" else "transitions",
                     train_batch_size_per_learner=a.batch, bc_pretrain_steps=a.bc_steps)
    cfg = (CFCQLConfig().environment(card["task"], env_config=card["env_config"]).offline_data(input_=[str(ds_dir)])
           .training(**train).debugging(seed=seed))
    # β / the VAE are pre-trained with seed 0 for every run (the runs of a cell differ only in the learner's seed)
    run = train_in_process(cfg, episodes, steps=a.steps, eval_every=a.eval_every, eval_episodes=a.eval_episodes,
                           eval_seed=777, reference_returns=card["reference_returns"], pretrain_seed=0)
    curve = run["curve"]
    row = {"method": method, "seed": seed, "final": curve[-1][1], "best": max(s for _, s in curve),
           "curve": curve, "diagnostics": run["diagnostics"], "seconds": run["seconds"]}
    if run["wins"]:
        wins = run["wins"]
        row.update(final_win=wins[-1][1], best_win=max(w for _, w in wins), win_curve=wins)
    return row


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dataset", required=True)
    ap.add_argument("--methods", default="cfcql,macql,none,bc")
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--steps", type=int, default=2000)
    ap.add_argument("--eval-every", type=int, default=250)
    ap.add_argument("--eval-episodes", type=int, default=32)
    ap.add_argument("--alpha", type=float, default=1.0)
    ap.add_argument("--tau", type=float, default=1.0)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--bc-steps", type=int, default=3000)
    ap.add_argument("--mixer", default="qmix")
    ap.add_argument("--rnn", action="store_true", help="GRU agents on episode batches (default: MLP on transitions)")
    ap.add_argument("--batch-unit", default="transitions", choices=("transitions", "episodes"),
                    help="discrete MLP agents: minibatches of transitions (1-step TD) or of whole episodes (TD(λ))")
    ap.add_argument("--td-lambda", type=float, default=0.6, help="discrete, episode batches: λ of the TD(λ) targets")
    ap.add_argument("--joint-greedy-stratum", type=int, choices=(0, 1), default=1,
                    help="discrete MACQL: 1 = the greedy joint action is an exact stratum of the sampled joint LSE, "
                         "0 = uniform draws only (the estimator before 2026-12-02)")
    ap.add_argument("--target-update", type=int, default=25, help="discrete: gradient steps between hard target copies")
    ap.add_argument("--gamma", type=float, default=0.99)
    ap.add_argument("--grad-clip", type=float, default=10.0)
    ap.add_argument("--hidden", type=int, default=64, help="continuous: actor and critic width")
    ap.add_argument("--polyak-tau", type=float, default=0.01)
    ap.add_argument("--policy-samples", action="store_true", help="continuous: CQL samples around the policies too")
    ap.add_argument("--lambda-model", default="uniform", choices=("uniform", "vae"))
    ap.add_argument("--actor-objective", default=None,
                    choices=("counterfactual", "joint", "td3bc", "independent", "omar"),
                    help="continuous: override the method's actor objective (default: the method's own)")
    ap.add_argument("--actor-lr", type=float, default=None, help="continuous: the actors' lr (default: --lr)")
    ap.add_argument("--actor-preact-l2", type=float, default=0.0, help="continuous: weight of ‖pre-tanh output‖²")
    ap.add_argument("--actor-bc-warmup", type=int, default=0, help="continuous: critic steps whose actor steps clone the data")
    ap.add_argument("--out", default=None)
    return ap.parse_args(argv)


def main() -> None:
    a = parse_args()
    torch.set_num_threads(1)
    card, episodes = validate_dataset(a.dataset)
    rows = []
    for method in a.methods.split(","):
        for seed in [int(s) for s in a.seeds.split(",")]:
            r = run_one(Path(a.dataset), card, episodes, method, seed, a)
            rows.append(r)
            if a.out:  # partial results survive an interrupted long run
                Path(a.out).parent.mkdir(parents=True, exist_ok=True)
                Path(a.out).write_text(json.dumps({"args": vars(a), "rows": rows, "partial": True}, indent=1))
            win = f"  win rate final {r['final_win']:.2f} best {r['best_win']:.2f}" if "final_win" in r else ""
            print(f"{method:6s} seed {seed}: final {r['final']:7.1f}  best {r['best']:7.1f}{win}  ({r['seconds']} s)", flush=True)
    print(f"\n{a.dataset}: normalised score after {a.steps} gradient steps "
          f"(batch {a.batch} {'episodes' if a.rnn else 'transitions'}, {a.eval_episodes} eval episodes)")
    print(f"{'method':8s} {'final':>16s} {'best':>16s}")
    summary = {}
    for method in a.methods.split(","):
        f = np.array([r["final"] for r in rows if r["method"] == method])
        b = np.array([r["best"] for r in rows if r["method"] == method])
        summary[method] = {"final_mean": f.mean(), "final_std": f.std(), "best_mean": b.mean(), "best_std": b.std()}
        w = np.array([r["final_win"] for r in rows if r["method"] == method and "final_win" in r])
        if len(w):
            summary[method].update(final_win_mean=w.mean(), final_win_std=w.std())
        win = f"   win rate {w.mean():.2f} ± {w.std():.2f}" if len(w) else ""
        print(f"{method:8s} {f.mean():8.1f} ± {f.std():5.1f} {b.mean():8.1f} ± {b.std():5.1f}{win}")
    print("\nfinal diagnostics (mean over seeds): greedy = data per agent | β support | Q(a^D) − MC | "
          "Q(greedy) − Q(a^D) | unseen tail weight")
    for method in a.methods.split(","):
        last = [r["diagnostics"][-1] for r in rows if r["method"] == method]
        def get(k, last=last):  # nan (printed as nan) where no seed has it, e.g. β support of a continuous critic
            v = [d[k] for d in last if k in d and np.isfinite(d[k])]
            return float(np.mean(v)) if v else float("nan")
        print(f"{method:8s} {get('diag_agent_agreement'):6.3f} {get('diag_beta_support'):6.3f} "
              f"{get('diag_q_minus_mc'):8.3f} {get('diag_q_greedy') - get('diag_q_data'):8.3f} "
              f"{get('diag_tail_weight'):6.3f}")
    if a.out:
        Path(a.out).parent.mkdir(parents=True, exist_ok=True)
        with open(a.out, "w") as fh:
            out = {"args": vars(a), "rows": rows, "summary": summary, "data_return": card["return"],
                   "reference_returns": card.get("reference_returns")}
            if "win_rate" in card:  # tasks that report battles won (SMAX): the logged battles' own win rate
                out["data_win_rate"] = card["win_rate"]
            json.dump(out, fh, indent=1)


if __name__ == "__main__":
    main()
