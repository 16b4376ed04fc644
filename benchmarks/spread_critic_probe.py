"""Continuous MPE spread, hesitant:<q> data (benchmarks/run_spread_hesitant_pilot.sh): does the critic know
what the scripted expert knows, and does the actor follow it?

Trains one CFCQL / MACQL learner with the pilot's settings (``train_in_process``'s learner and loss) and, at
every evaluation, probes the first critic on the fixed diagnostic steps of the dataset. The data's behaviour
mixes, per agent and step, the scripted expert's steer e_i(o_i) = clip(4·(landmark_i − pos_i) − vel_i) with
no force (0), so both reference actions are known exactly for every logged observation:

* ``expert_gain`` — mean over steps and agents of Q(s, a^D with a_i := e_i) − Q(s, a^D): how much the critic
  thinks agent i gains by steering like the expert while the others do what they logged (true value > 0);
* ``expert_beats_hold`` — fraction of (step, agent) where Q(s, a^D_{-i}, e_i) > Q(s, a^D_{-i}, 0): the critic
  ranks the expert's steer above holding still, the ranking the counterfactual actor step needs;
* ``pi_gain`` — Q(s, a^D_{-i}, π_i(o_i)) − Q(s, a^D): what the counterfactual actor objective reports;
* ``pi_cos_expert`` — mean cosine between π_i(o_i) and e_i; ``pi_saturated`` — fraction of action
  components with |π| > 0.95 (the actor at the box edge);
* ``joint_pi_gain`` — Q(s, π(o)) − Q(s, a^D), all agents at their policy: the point the TD target bootstraps
  from and the counterfactual penalty never samples;
* ``q_data`` and ``mc_return`` — the calibration pair of docs/DIAGNOSTICS.md.

    python benchmarks/spread_critic_probe.py --n 9 --method cfcql --alpha 5
    python benchmarks/spread_critic_probe.py --n 3 --method cfcql --alpha 0.3 --polyak 0.05
    python benchmarks/spread_critic_probe.py --n 9 --method cfcql --alpha 1 --actor-lr 0.001

Four times the pilot's data (100 000 transitions; the runs in RESULTS.md used this set):

    rllib-cfcql data collect --task mpe_spread --env-config '{"n_agents": 9, "continuous_actions": true}' \
        --policy hesitant:0.3 --episodes 4000 --seed 1 --out benchmarks/data/pilot/mpe_spread_c_n9_hesitant0.3_e4000
    python benchmarks/spread_critic_probe.py --n 9 --method cfcql --alpha 5 \
        --data benchmarks/data/pilot/mpe_spread_c_n9_hesitant0.3_e4000

One JSON per run under benchmarks/results/mpe_spread_c_hesitant0.3_probe/, skipped when it exists.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch

from rllib_cfcql import CFCQLConfig
from rllib_cfcql.core.in_process import prepare_learner, train_in_process
from rllib_cfcql.data.validate import validate_dataset
from rllib_cfcql.envs.pettingzoo_team import spread_steer
from rllib_cfcql.keys import MC_RETURN

HERE = Path(__file__).resolve().parent
PENALTY = {"cfcql": "cf", "macql": "joint"}


@torch.no_grad()
def probe(module, obs: torch.Tensor, state: torch.Tensor, actions: torch.Tensor) -> dict:
    critic = module.critic
    n = obs.shape[1]
    e = torch.as_tensor(spread_steer(obs.cpu().numpy(), np.arange(n)), dtype=obs.dtype, device=obs.device)
    pi = module.actor(obs)
    q = lambda a: critic(state, a)[0]  # noqa: E731 - the first critic, [N]
    cf = lambda slot: critic.counterfactual(state, actions, slot[None])[0, 0]  # noqa: E731 - [N, n]
    q_data = q(actions)
    q_e, q_hold, q_pi = cf(e), cf(torch.zeros_like(e)), cf(pi)
    cos = torch.nn.functional.cosine_similarity(pi, e, dim=-1, eps=1e-6)
    return {
        "expert_gain": float((q_e - q_data[:, None]).mean()),
        "expert_beats_hold": float((q_e > q_hold).float().mean()),
        "pi_gain": float((q_pi - q_data[:, None]).mean()),
        "pi_cos_expert": float(cos.mean()),
        "pi_saturated": float((pi.abs() > 0.95).float().mean()),
        "joint_pi_gain": float((q(pi) - q_data).mean()),
        "q_data": float(q_data.mean()),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, required=True)
    ap.add_argument("--method", choices=sorted(PENALTY), default="cfcql")
    ap.add_argument("--alpha", type=float, required=True)
    ap.add_argument("--polyak", type=float, default=0.01)
    ap.add_argument("--steps", type=int, default=4000)
    ap.add_argument("--eval-every", type=int, default=1000)
    ap.add_argument("--hidden", type=int, default=64)
    ap.add_argument("--actor-lr", type=float, default=None, help="default: the critic's lr (0.01)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--data", default=None, help="default benchmarks/data/pilot/mpe_spread_c_n<n>_hesitant0.3")
    a = ap.parse_args()
    torch.set_num_threads(1)
    ds = Path(a.data or HERE / "data" / "pilot" / f"mpe_spread_c_n{a.n}_hesitant0.3")
    tag = f"n{a.n}_{a.method}_a{a.alpha:g}_tau{a.polyak:g}_steps{a.steps}_h{a.hidden}_s{a.seed}"
    if a.actor_lr is not None:
        tag += f"_alr{a.actor_lr:g}"
    if a.data:  # another dataset of the same n: its directory's name goes into the run's name
        tag += f"_{ds.name}"
    out = HERE / "results" / "mpe_spread_c_hesitant0.3_probe" / f"{tag}.json"
    if out.exists():
        print("exists:", out)
        return
    card, episodes = validate_dataset(ds)
    cfg = (CFCQLConfig().environment(card["task"], env_config=card["env_config"]).offline_data(input_=[str(ds)])
           .training(lr=0.01, gamma=0.95, grad_clip=0.5, agent_hidden=a.hidden, train_batch_size_per_learner=256,
                     penalty=PENALTY[a.method], cql_alpha=a.alpha, polyak_tau=a.polyak,
                     actor_lr=a.actor_lr).debugging(seed=a.seed))
    # the probe's fixed steps: the learner's diagnostic episodes (the same seed gives the same learner and shard)
    fresh = prepare_learner(cfg, episodes)
    st, idx = fresh.store, fresh._diag_idx
    T = st.actions.shape[1]
    filled = st.filled[idx] > 0
    obs, state, actions = st.obs[idx, :T][filled], st.state[idx, :T][filled], st.actions[idx][filled]
    mc = float(st.extras[MC_RETURN][idx][filled].mean())

    start = probe(fresh.module["default_policy"].unwrapped(), obs, state, actions)  # the untrained learner

    def on_eval(learner):
        return probe(learner.module["default_policy"].unwrapped(), obs, state, actions)

    run = train_in_process(cfg, episodes, steps=a.steps, eval_every=a.eval_every, eval_episodes=32,
                           reference_returns=card["reference_returns"], on_eval=on_eval)
    keys = list(start)
    rows = [{"steps": 0, **start}] + [{"steps": d["steps"], "score": score, **{k: d[k] for k in keys}}
                                      for (_, score), d in zip(run["curve"], run["diagnostics"])]
    for r in rows[1:]:
        print(tag, {k: round(v, 3) for k, v in r.items()}, flush=True)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"run": tag, "args": vars(a), "mc_return": mc, "rows": rows,
                               "seconds": run["seconds"]}, indent=1))


if __name__ == "__main__":
    main()
