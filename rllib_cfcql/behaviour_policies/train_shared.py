"""Train the behaviour policies of a team task online with RLlib PPO, one policy shared by all agents.

This is how the datasets of the MPE tasks (``mpe_spread``, ``mpe_tag``,
``mpe_world``, discrete and continuous) and of ``equal_line`` (n = 4) get their
behaviour policies: RLlib's *online* PPO on the team env, the way the community
trains MPE teams (MAPPO-style parameter sharing), and the small checkpoints are
committed so datasets regenerate exactly from them (training itself is not
bit-for-bit reproducible: it runs on shared CPUs with a vectorised env runner).

Algorithm
    RLlib 2.60 PPO, new API stack, torch, one local env runner with
    ``--num-envs`` vectorised copies of
    :class:`rllib_cfcql.behaviour_policies.team_agents.TeamAgentsEnv`, one local learner,
    1 torch thread. ``multi_agent(policies={"shared"})`` maps every agent to one
    RLModule (parameter sharing); each agent's observation is its own task
    observation followed by the one-hot of its index, so the shared network can
    still specialise. Every agent receives the team reward. Continuous tasks
    get a Gaussian whose samples the env clips to [-1, 1]. Discrete tasks get a
    categorical policy that respects the task's action masks: the env appends
    each agent's mask to its observation and
    :class:`~rllib_cfcql.behaviour_policies.team_agents.MaskedPPOTorchRLModule` (RLlib's
    default PPO module, its networks fed the observation without the mask)
    adds ``log(mask)`` to the logits, so PPO never samples an unavailable
    action (the env raises if one arrives). ``--env-config`` passes the task's
    own settings (e.g. ``'{"n_agents": 4}'``); the policies go to
    ``offline_data/policies/<task>[_<setting>...]_<variant>``
    (:func:`rllib_cfcql.behaviour_policies.qualities.policy_dir_name`), where the qualities
    look for them.

Checkpoints
    After every training iteration (and at step 0, the untrained policy) the
    policy is copied out of RLlib into the plain MLP of
    :mod:`rllib_cfcql.behaviour_policies.checkpoint` (``"input": "agent_obs"``; the
    copy is checked against RLlib's own forward pass) and saved as
    ``<out>/training/step-<env steps>.pt`` + sidecar (about 30 KB). Every
    ``--checkpoint-every`` env steps the checkpoint is also evaluated on
    ``--eval-episodes`` episodes, deterministically and sampling from the
    policy (what it does as a behaviour policy).

Selection (by the *sampled* return, since datasets sample the policy)
    ``expert.pt``: the best evaluated checkpoint. ``medium.pt``: among the
    evaluated checkpoints up to the expert, the one whose normalised return
    ``(R - R_random) / (R_expert - R_random)`` is closest to 0.5.
    ``replay.json`` lists every checkpoint from step 0 up to medium: the policy
    sequence that played the medium-replay transitions (what
    :class:`rllib_cfcql.behaviour_policies.qualities.CheckpointReplay` replays). Checkpoints
    after medium are deleted (the expert is kept as ``expert.pt``).

Medium-replay as recorded
    With ``--medium-replay-dir DIR`` every transition the training env runner
    saw up to the medium checkpoint is also written to DIR as a team dataset
    with its card (full size; not in git).

Run (the committed checkpoints came from exactly this, see each ``training_log.txt``)::

    rllib-cfcql behaviour train-shared --task mpe_spread --continuous \\
        --budget-min 14 --checkpoint-every 20000
    rllib-cfcql behaviour train-shared --task equal_line --env-config '{"n_agents": 4}' \\
        --budget-min 20 --checkpoint-every 20000
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time
from pathlib import Path

import numpy as np

from rllib_cfcql.behaviour_policies import training
from rllib_cfcql.behaviour_policies.checkpoint import FORMAT
from rllib_cfcql.behaviour_policies.qualities import policy_dir_name
from rllib_cfcql.behaviour_policies.team_agents import (
    BatchedTeamEnvRunner,
    MaskedPPOTorchRLModule,
    TeamAgents,
    TeamAgentsEnv,
)
from rllib_cfcql.paths import POLICY_ROOT

MODULE_ID = "shared"


# ----------------------------------------------------------------------------- helpers

LOG_FILE: Path | None = None


def log(msg: str, flush: bool = True) -> None:
    """Print a progress line and append it to ``<out>/training_log.txt`` (committed with the policies)."""
    print(msg, flush=flush)
    if LOG_FILE is not None:
        with open(LOG_FILE, "a") as f:
            f.write(msg + "\n")


def _sub_envs(root) -> list[TeamAgents]:
    """The TeamAgents (one per copy) inside the local env runner's (vectorised, wrapped) env."""
    found, stack, seen = [], [root], set()
    while stack:
        e = stack.pop()
        if e is None or id(e) in seen:
            continue
        seen.add(id(e))
        if isinstance(e, TeamAgents):
            found.append(e)
            continue
        for attr in ("envs", "env", "unwrapped", "par_env"):
            v = getattr(e, attr, None)
            if isinstance(v, (list, tuple)):
                stack.extend(v)
            elif v is not None and v is not e:
                stack.append(v)
    return found


def extract_policy(algo, hidden: list[int], activation: str):
    """Copy the shared RLlib policy (actor encoder + pi head) into the checkpoint MLP, and check it."""
    import torch
    import torch.nn as nn
    from ray.rllib.core.columns import Columns

    from rllib_cfcql.behaviour_policies.checkpoint import build_mlp

    module = algo.learner_group._learner.module[MODULE_ID]
    linears = [m for part in (module.encoder.actor_encoder, module.pi) for m in part.modules() if isinstance(m, nn.Linear)]
    in_dim, out_dim = linears[0].in_features, linears[-1].out_features
    net = build_mlp(in_dim, hidden, out_dim, activation, False)
    x = np.random.default_rng(0).normal(0.0, 1.0, (16, in_dim)).astype(np.float32)

    def reference(x):
        # a masking module sees the observation followed by the mask: all ones leaves the logits as they are
        t = torch.from_numpy(x)
        full = torch.cat([t, torch.ones(len(x), module.mask_dim)], 1) if isinstance(module, MaskedPPOTorchRLModule) else t
        return module._forward_inference({Columns.OBS: full})[Columns.ACTION_DIST_INPUTS]

    training.copy_linear_policy(linears, net, reference, x, "PPO")
    return net


def write_recorded_replay(envs: list[TeamAgents], upto: list[int], out_dir: Path, task: str, env_config: dict,
                          seed: int, medium_meta: dict, policy_dir: Path, reference_episodes: int) -> dict:
    """Write the transitions the training envs saw (each cut at its step count at the medium checkpoint)."""
    from rllib_cfcql import keys as K
    from rllib_cfcql.data.collect import clear_reference_cache, reference_returns
    from rllib_cfcql.data.schema import assemble_episodes
    from rllib_cfcql.data.writer import CARD_NAME, make_card, write_dataset

    spec = envs[0].spec_
    rows = [(i * 1_000_000 + r[0],) + r[1:] for i, e in enumerate(envs) for r in e.rows[: upto[i]]]
    cols = {K.EPISODE_ID: np.array([r[0] for r in rows], np.int64), K.T: np.array([r[1] for r in rows], np.int64),
            K.REWARD: np.array([r[2] for r in rows], np.float32), K.TERMINATED: np.array([r[3] for r in rows]),
            K.TRUNCATED: np.array([r[4] for r in rows])}
    cols[K.OBS] = np.stack([r[5]["obs"].reshape(-1) for r in rows]).astype(np.float32)
    cols[K.STATE] = np.stack([r[5]["state"] for r in rows]).astype(np.float32)
    cols[K.ACTIONS] = np.stack([np.asarray(r[6]).reshape(-1) for r in rows])
    cols[K.NEXT_OBS] = np.stack([r[7]["obs"].reshape(-1) for r in rows]).astype(np.float32)
    cols[K.NEXT_STATE] = np.stack([r[7]["state"] for r in rows]).astype(np.float32)
    if not spec.continuous:
        cols[K.ACTION_MASK] = np.stack([r[5]["action_mask"].reshape(-1) for r in rows]).astype(np.float32)
        cols[K.NEXT_ACTION_MASK] = np.stack([r[7]["action_mask"].reshape(-1) for r in rows]).astype(np.float32)
    # episodes cut by the end of the recording end as truncated (bootstrap), like a time limit
    last = np.r_[cols[K.EPISODE_ID][1:] != cols[K.EPISODE_ID][:-1], True]
    cols[K.TRUNCATED] = cols[K.TRUNCATED] | (last & ~cols[K.TERMINATED])
    cols["path"] = np.full(len(rows), "<online-training>", dtype=object)
    episodes = assemble_episodes(cols, spec)
    files = write_dataset(out_dir, episodes, force=True)
    del policy_dir  # the references are the task's own (its committed expert checkpoint once selected)
    clear_reference_cache()  # expert.pt was (re)written by this run
    refs = reference_returns(task, env_config, reference_episodes, seed=10_000_019)
    card = make_card(task=task, env_config=env_config, episodes=episodes, spec=spec,
                     policy=f"online-training replay as recorded (PPO env steps 0..{medium_meta['env_steps']}, up to medium.pt)",
                     seed=seed, fmt="parquet", files=files, references=refs, quality="medium-replay",
                     collection_seconds=0.0)
    card["medium_checkpoint"] = {"file": "medium.pt", "env_steps": medium_meta["env_steps"],
                                 "eval_return_sampled": medium_meta["eval_return_sampled"]}
    card["recording"] = {"num_envs": len(envs)}
    (out_dir / CARD_NAME).write_text(json.dumps(card, indent=2) + "\n")
    return card


def _evaluated_candidates(out: Path) -> list[dict]:
    """The evaluated checkpoints of a run (sidecar with an eval return), plus expert.pt (its source step
    file may have been deleted), one per env step."""
    cands: dict[int, dict] = {}
    for j in sorted((out / "training").glob("step-*.json")):
        meta = json.loads(j.read_text())
        if meta.get("eval_return") is not None:
            cands[int(meta["env_steps"])] = {"path": j.with_suffix(".pt"), "meta": meta}
    if (out / "expert.json").is_file():
        meta = json.loads((out / "expert.json").read_text())
        cands.setdefault(int(meta["env_steps"]), {"path": out / "expert.pt", "meta": meta})
    return [cands[k] for k in sorted(cands)]


def select(out: Path, task: str, env_config: dict, r_random: float, episodes: int) -> dict:
    """Pick expert.pt (best) and medium.pt (closest to normalised 50, at or before the expert) by the
    *sampled* return over ``episodes`` fixed-seed episodes (the 40-episode evaluations during training
    are too noisy to place a medium, e.g. on mpe_tag whose return moves in steps of 10), write them with
    replay.json and training_curve.json, and delete the step checkpoints after medium. Returns the
    medium entry (``env_steps``, ...)."""
    from rllib_cfcql.behaviour_policies.qualities import evaluate_checkpoint

    seed = 1_000_003
    cands = _evaluated_candidates(out)
    for c in cands:
        smp = evaluate_checkpoint(c["path"], task, env_config, episodes, seed, "sample")
        c["sampled"], c["sampled_std"], c["returns"] = float(np.mean(smp)), float(np.std(smp)), smp
        c["env_steps"] = int(c["meta"]["env_steps"])
        log(f"[select] {c['path'].name} (env step {c['env_steps']}): sampled {c['sampled']:.2f} "
              f"over {episodes} episodes", flush=True)
    best = max(cands, key=lambda c: c["sampled"])
    span = best["sampled"] - r_random
    if span <= 0:
        raise RuntimeError(f"training never beat the random policy (best sampled {best['sampled']:.2f}, "
                           f"random {r_random:.2f}); no behaviour policies written")
    for c in cands:
        c["normalised"] = round(100.0 * (c["sampled"] - r_random) / span, 1)
    medium = min((c for c in cands if c["env_steps"] <= best["env_steps"]), key=lambda c: abs(c["normalised"] - 50.0))
    for role, c in (("expert", best), ("medium", medium)):
        det = evaluate_checkpoint(c["path"], task, env_config, episodes, seed, "mean")
        meta = dict(c["meta"])
        meta.update(role=role, random_return=r_random, eval_return=float(np.mean(det)),
                    eval_return_sampled=c["sampled"], eval_return_sampled_std=c["sampled_std"],
                    eval_episodes=episodes, eval_seeds=f"{seed}..{seed + episodes - 1}",
                    eval_returns_sampled=c["returns"],
                    selection="best sampled eval return" if role == "expert" else
                    "sampled eval return closest to normalised 50 (between random and the expert)")
        if c["path"].parent.name == "training":
            meta["source_checkpoint"] = f"training/{c['path'].name}"
        data = c["path"].read_bytes()
        dst = out / f"{role}.pt"
        dst.write_bytes(data)
        meta["sha256"] = hashlib.sha256(data).hexdigest()
        dst.with_suffix(".json").write_text(json.dumps(meta, indent=2) + "\n")
        log(f"[select] {role}.pt <- {meta.get('source_checkpoint', c['path'].name)} (sampled {c['sampled']:.2f}, "
              f"normalised {c['normalised']})", flush=True)
    steps = training.saved_sequence(out / "training")
    training.write_replay_manifest(out, steps, medium["env_steps"])
    curve = [{"env_steps": c["env_steps"], "wall_s": c["meta"].get("wall_seconds"),
              "eval_return_40_deterministic": c["meta"].get("eval_return"), "eval_return_sampled": c["sampled"],
              "normalised_sampled": c["normalised"]} for c in cands]
    (out / "training_curve.json").write_text(json.dumps({"select_episodes": episodes, "random_return": r_random,
                                                         "checkpoints": curve}, indent=2) + "\n")
    for s_, f in steps:
        if s_ > medium["env_steps"]:
            f.unlink(missing_ok=True)
            f.with_suffix(".json").unlink(missing_ok=True)
    return medium


def cut_recorded_replay(out_dir: Path, medium_steps: int, medium_meta: dict) -> dict:
    """Cut a recorded replay (written by this script) at an earlier medium checkpoint: the training
    envs stepped in lockstep, so each env's first ``medium_steps / n_envs`` transitions are the ones
    seen up to env step ``medium_steps``; an episode crossing the cut ends there as truncated."""
    import dataclasses

    from rllib_cfcql.data.validate import validate_dataset
    from rllib_cfcql.data.writer import CARD_NAME, make_card, write_dataset
    from rllib_cfcql.envs.base import TeamSpec

    card, ep = validate_dataset(out_dir)
    n_envs = int(card.get("recording", {}).get("num_envs", 0)) or int(ep.episode_ids.max() // 1_000_000) + 1
    if medium_steps % n_envs:
        raise ValueError(f"{out_dir}: medium env step {medium_steps} is not a multiple of the {n_envs} lockstep envs")
    per_env = medium_steps // n_envs
    filled, term = ep.filled.copy(), ep.terminated.copy()
    keep = np.zeros(ep.num_episodes, bool)
    env_of = ep.episode_ids // 1_000_000
    for i in np.unique(env_of):
        idx = np.flatnonzero(env_of == i)
        idx = idx[np.argsort(ep.episode_ids[idx])]
        left = per_env
        for e in idx:
            if left <= 0:
                break
            n = int(filled[e].sum())
            if n > left:  # crosses the cut: ends there (truncated, bootstrapped)
                filled[e, left:] = 0
                term[e, left - 1:] = 0
            keep[e] = True
            left -= min(n, left)
    cut = dataclasses.replace(ep, filled=filled, terminated=term).select(np.flatnonzero(keep))
    files = write_dataset(out_dir, cut, force=True)
    spec = TeamSpec(**{k: v for k, v in card["spec"].items() if k in {f.name for f in dataclasses.fields(TeamSpec)}})
    new = make_card(task=card["task"], env_config=card["env_config"], episodes=cut, spec=spec,
                    policy=f"online-training replay as recorded (PPO env steps 0..{medium_steps}, up to medium.pt)",
                    seed=card["seed"], fmt="parquet", files=files, references=card["reference_returns"],
                    quality="medium-replay", collection_seconds=0.0)
    new["medium_checkpoint"] = {"file": "medium.pt", "env_steps": medium_steps,
                                "eval_return_sampled": medium_meta["eval_return_sampled"]}
    new["recording"] = {"num_envs": n_envs, "cut_from_env_steps": card.get("medium_checkpoint", {}).get("env_steps")}
    (out_dir / CARD_NAME).write_text(json.dumps(new, indent=2) + "\n")
    return new


# ----------------------------------------------------------------------------- main


def build_algo(args, env_config: dict):
    from ray.rllib.algorithms.ppo import PPOConfig
    from ray.rllib.core.rl_module.default_model_config import DefaultModelConfig
    from ray.rllib.core.rl_module.rl_module import RLModuleSpec

    model = DefaultModelConfig(fcnet_hiddens=list(args.hidden), fcnet_activation=args.activation,
                               head_fcnet_hiddens=[], vf_share_layers=False)
    train_cfg = dict(lr=args.lr, gamma=args.gamma, lambda_=0.95, clip_param=0.2, num_epochs=args.epochs,
                     minibatch_size=args.minibatch, train_batch_size_per_learner=args.ppo_batch, vf_loss_coeff=0.5,
                     entropy_coeff=args.entropy, use_kl_loss=False, vf_clip_param=1e6, grad_clip=10.0)
    from rllib_cfcql.envs import BATCHED_TASKS

    batched = args.batched_env == "on" or (args.batched_env == "auto" and args.task in BATCHED_TASKS)
    if batched and args.task not in BATCHED_TASKS:
        raise ValueError(f"--batched-env on: task {args.task!r} has no batched version; tasks with one: "
                         f"{sorted(BATCHED_TASKS)}")
    # a batched task's copies step in one call (BatchedTeamEnvRunner); any other task's one by one
    runner = {"env_runner_cls": BatchedTeamEnvRunner} if batched else {}
    config = (
        PPOConfig()
        # RLlib's env pre-check steps the env with unmasked random actions, which TeamAgentsEnv rejects on
        # tasks with real masks; the env's own checks (and tests/behaviour_policies/test_team_agents.py) stand in for it
        .environment("team_agents", env_config=dict(env_config, task=args.task), disable_env_checking=True)
        .env_runners(num_env_runners=0, num_envs_per_env_runner=args.num_envs, **runner)
        .multi_agent(policies={MODULE_ID}, policy_mapping_fn=lambda agent_id, episode, **kw: MODULE_ID)
    )
    config = training.ppo_config_tail(config, train_cfg, model, args.seed, smoothing=20)
    from rllib_cfcql.envs import make_team_env

    if not make_team_env(args.task, env_config).team_spec.continuous:
        # discrete: the observation ends with the action mask, applied to the logits
        config = config.rl_module(rl_module_spec=RLModuleSpec(module_class=MaskedPPOTorchRLModule, model_config=model))
    return config.build_algo(), train_cfg


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--task", required=True, help="team task (registry name), e.g. mpe_spread")
    p.add_argument("--continuous", action="store_true", help="continuous action variant (env_config continuous_actions)")
    p.add_argument("--env-config", default="{}",
                   help='the task\'s env_config as JSON, e.g. \'{"n_agents": 4}\' for equal_line (default {})')
    p.add_argument("--budget-min", type=float, default=10.0, help="wall-clock budget for training (minutes)")
    p.add_argument("--max-steps", type=int, default=None, help="stop after this many env steps")
    p.add_argument("--checkpoint-every", type=int, default=20_000,
                   help="env steps between evaluated checkpoints (the policy is also saved, unevaluated, after every "
                        "training iteration: the sequence the medium-replay schedule replays)")
    p.add_argument("--eval-episodes", type=int, default=40)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--hidden", type=int, nargs="+", default=[64, 64])
    p.add_argument("--activation", choices=("relu", "tanh"), default="tanh")
    p.add_argument("--lr", type=float, default=7e-4)
    p.add_argument("--gamma", type=float, default=0.99)
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--minibatch", type=int, default=1024)
    p.add_argument("--entropy", type=float, default=0.01)
    p.add_argument("--num-envs", type=int, default=16, help="envs in the (single, local) env runner")
    p.add_argument("--batched-env", choices=("auto", "on", "off"), default="auto",
                   help="step the --num-envs copies in one call (tasks with a batched version: the smax_* maps); "
                        "auto = where the task has one")
    p.add_argument("--ppo-batch", type=int, default=4000, help="train batch (env steps per iteration)")
    p.add_argument("--out", type=Path, default=None, help="default offline_data/policies/<task>_<variant>")
    p.add_argument("--medium-replay-dir", type=Path, default=None,
                   help="also write every transition up to the medium checkpoint, as recorded, to this dir")
    p.add_argument("--reference-episodes", type=int, default=200)
    p.add_argument("--select-episodes", type=int, default=200,
                   help="episodes (sampled) on which the evaluated checkpoints are compared to pick expert and medium")
    p.add_argument("--reselect", action="store_true",
                   help="no training: redo the selection on the checkpoints already in --out (default dir); with "
                        "--medium-replay-dir, cut that recorded replay at the new medium step")
    args = p.parse_args(argv)

    import torch

    torch.set_num_threads(1)
    import ray
    from ray.tune.registry import register_env

    from rllib_cfcql.behaviour_policies.qualities import evaluate_checkpoint
    from rllib_cfcql.behaviour_policies.specs import BehaviourPolicy
    from rllib_cfcql.data.collect import rollout
    from rllib_cfcql.envs import make_team_env

    try:
        env_config = json.loads(args.env_config)
    except json.JSONDecodeError as e:
        p.error(f"--env-config {args.env_config!r}: not JSON ({e})")
    if not isinstance(env_config, dict):
        p.error(f"--env-config {args.env_config!r}: expected a JSON object")
    if args.continuous:
        env_config["continuous_actions"] = True
    make_team_env(args.task, env_config)  # a bad task or env_config fails here, before Ray starts
    out = args.out or POLICY_ROOT / policy_dir_name(args.task, env_config)
    global LOG_FILE
    out.mkdir(parents=True, exist_ok=True)
    LOG_FILE = out / "training_log.txt"
    if not args.reselect:
        LOG_FILE.write_text("")
    log(f"[run] rllib-cfcql behaviour train-shared {' '.join(sys.argv[1:] if argv is None else argv)}")
    if args.reselect:
        r_random = float(rollout(make_team_env(args.task, env_config), BehaviourPolicy("random"),
                                 args.reference_episodes, seed=10_000_019).returns().mean())
        medium = select(out, args.task, env_config, r_random, args.select_episodes)
        rec = args.medium_replay_dir
        if rec is not None and json.loads((rec / "card.json").read_text())["medium_checkpoint"]["env_steps"] != medium["env_steps"]:
            card = cut_recorded_replay(rec, medium["env_steps"], json.loads((out / "medium.json").read_text()))
            log(f"[medium-replay] {rec}: cut at env step {medium['env_steps']}: {card['transitions']} transitions, "
                  f"{card['episodes']} episodes", flush=True)
        return 0
    steps_dir = out / "training"
    steps_dir.mkdir(parents=True, exist_ok=True)
    for f in list(steps_dir.glob("step-*")):
        f.unlink()
    t_start = time.monotonic()
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    register_env("team_agents", lambda cfg: TeamAgentsEnv(cfg))
    algo, train_cfg = build_algo(args, env_config)
    batched = isinstance(algo.env_runner, BatchedTeamEnvRunner)
    envs = _sub_envs(algo.env_runner.env)
    if not envs:
        raise RuntimeError("found no TeamAgents in the local env runner")
    for e in envs:
        e.record = args.medium_replay_dir is not None
    spec = envs[0].spec_

    def env_steps() -> int:
        return int(sum(e.steps for e in envs))

    # the random reference of the selection (uniform policy, as on every dataset card)
    r_random = float(rollout(make_team_env(args.task, env_config), BehaviourPolicy("random"), args.reference_episodes,
                             seed=10_000_019).returns().mean())
    common = {
        "format": FORMAT, "input": "agent_obs", "agent_id": True, "input_dim": spec.obs_dim + spec.n_agents,
        "hidden": list(args.hidden), "activation": args.activation,
        "dist": "gaussian" if spec.continuous else "categorical", "squash": "clip",
        "output": ("[mean, log_std] of a Gaussian over the agent's action" if spec.continuous
                   else "logits over the agent's discrete actions"),
        "n_agents": spec.n_agents, "action_dim": spec.n_actions, "task": args.task, "env_config": env_config,
        "algorithm": "RLlib PPO (new API stack, torch), one policy shared by all agents: own obs + one-hot(agent) -> action",
        "train_env": (f"rllib_cfcql.behaviour_policies.team_agents:{type(algo.env_runner.env).__name__ if batched else 'TeamAgentsEnv'}"
                      f" over {args.task} (team reward to every agent)"),
        "train_config": dict(train_cfg, hidden=list(args.hidden), activation=args.activation, num_envs=len(envs)),
        "seed": args.seed, "versions": training.versions(), "input_norm": None,
    }
    history: list[dict] = []

    def checkpoint(evaluate_it: bool = True) -> None:
        steps = env_steps()
        net = extract_policy(algo, list(args.hidden), args.activation)
        path = steps_dir / f"step-{steps:08d}.pt"
        meta = dict(common, env_steps=steps, wall_seconds=round(time.monotonic() - t_start, 1))
        training.save_checkpoint(net, path, meta)
        h = {"file": path.name, "env_steps": steps, "wall_s": meta["wall_seconds"], "eval_return": None,
             "eval_return_sampled": None, "per_env_steps": [int(e.steps) for e in envs]}
        history.append(h)
        if not evaluate_it:
            return
        det = evaluate_checkpoint(path, args.task, env_config, args.eval_episodes, 1_000_003, "mean")
        smp = evaluate_checkpoint(path, args.task, env_config, args.eval_episodes, 1_000_003, "sample")
        meta.update(eval_return=float(np.mean(det)), eval_return_sampled=float(np.mean(smp)),
                    eval_return_sampled_std=float(np.std(smp)), eval_episodes=args.eval_episodes,
                    eval_seeds=f"{1_000_003}..{1_000_003 + args.eval_episodes - 1}")
        training.save_checkpoint(net, path, meta)
        h.update(eval_return=meta["eval_return"], eval_return_sampled=meta["eval_return_sampled"])
        log(f"[ckpt] {path.name} wall={meta['wall_seconds']:.0f}s deterministic={meta['eval_return']:.2f} "
              f"sampled={meta['eval_return_sampled']:.2f} (random {r_random:.2f})", flush=True)

    checkpoint()  # step 0: the untrained policy
    next_ckpt = args.checkpoint_every
    last_report = -1e9
    while True:
        elapsed = time.monotonic() - t_start
        if elapsed >= args.budget_min * 60.0 or (args.max_steps and env_steps() >= args.max_steps):
            break
        res = algo.train()
        elapsed = time.monotonic() - t_start
        if elapsed - last_report >= 60.0:
            er = res.get("env_runners", {})
            log(f"[train] wall={elapsed:.0f}s steps={env_steps()} steps/s={env_steps() / max(elapsed, 1e-9):.0f} "
                  f"ep_return(train, per agent)={er.get('episode_return_mean', float('nan')) / spec.n_agents:.2f}",
                  flush=True)
            last_report = elapsed
        if env_steps() >= next_ckpt:
            checkpoint()
            next_ckpt = (env_steps() // args.checkpoint_every + 1) * args.checkpoint_every
        else:
            checkpoint(evaluate_it=False)  # every iteration: the policy sequence the replay schedule needs
    if history[-1]["env_steps"] != env_steps():
        checkpoint()
    algo.stop()

    medium = select(out, args.task, env_config, r_random, args.select_episodes)
    medium = next(h for h in history if h["env_steps"] == medium["env_steps"])

    if args.medium_replay_dir is not None:
        card = write_recorded_replay(envs, medium["per_env_steps"], args.medium_replay_dir, args.task, env_config,
                                     args.seed, json.loads((out / "medium.json").read_text()), out,
                                     args.reference_episodes)
        log(f"[medium-replay] {args.medium_replay_dir}: {card['transitions']} transitions, "
              f"{card['episodes']} episodes, return mean {card['return']['mean']:.2f}", flush=True)
    log(f"[done] wall={time.monotonic() - t_start:.0f}s steps={env_steps()}", flush=True)
    ray.shutdown()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
