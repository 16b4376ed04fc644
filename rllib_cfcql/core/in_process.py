"""Train one CFCQL learner in this process, without a Ray cluster, and evaluate it as it trains.

The same Learner, module and loss as ``rllib train`` (``config.build_learner``), with the dataset
resident on the learner and β / the VAE pre-trained first when the config uses them; what the
Algorithm adds (learner workers, checkpoints, env runners) is left out. This is the loop behind
``benchmarks/compare.py`` and the learning tests: a few seconds to a first update, no Ray start-up.

    from rllib_cfcql import CFCQLConfig
    from rllib_cfcql.core.in_process import train_in_process
    from rllib_cfcql.data.validate import validate_dataset

    card, episodes = validate_dataset("offline_data/equal_line_slot_distance_n8/hesitant")
    cfg = (CFCQLConfig().environment(card["task"], env_config=card["env_config"])
           .offline_data(input_=["offline_data/equal_line_slot_distance_n8/hesitant"])
           .training(cql_alpha=1.0, target_update_interval=200, agent_rnn=False, obs_last_action=False,
                     batch_unit="transitions", train_batch_size_per_learner=256))
    run = train_in_process(cfg, episodes, steps=4000, eval_every=1000,
                           reference_returns=card["reference_returns"])
    run["curve"]  # [(gradient steps, normalised greedy return), ...]
"""

from __future__ import annotations

import time
from typing import Any, Callable, Dict, Optional

import numpy as np
import torch

from rllib_cfcql.evaluation import evaluate_episodes


def prepare_learner(cfg, episodes, *, pretrain_seed: Optional[int] = None):
    """Validate ``cfg``, build its Learner here, pre-train β / the VAE when the config uses them and put
    ``episodes`` on the learner (one shard). Seeds torch and numpy with ``cfg.seed`` first.
    ``pretrain_seed`` (default ``cfg.seed or 0``) seeds the pre-training. Returns the learner."""
    from rllib_cfcql.core.pretrain import pretrain_for_config

    seed = cfg.seed or 0
    torch.manual_seed(seed)
    np.random.seed(seed)
    cfg.validate()
    learner = cfg.build_learner(env=None)
    module = learner.module["default_policy"].unwrapped()
    pre = pretrain_for_config(cfg, episodes, getattr(module, "n_actions", None), seed if pretrain_seed is None else pretrain_seed,
                              progress=False)
    if pre["behaviour"]:
        learner.set_behaviour_state(pre["behaviour"][0])
    if pre["vae"]:
        learner.set_vae_state(pre["vae"][0])
    learner.set_dataset(episodes, 1, seed)
    return learner


def train_in_process(cfg, episodes, *, steps: int, eval_every: int, eval_episodes: int = 32, eval_seed: int = 777,
                     reference_returns: Optional[Dict[str, float]] = None,
                     pretrain_seed: Optional[int] = None,
                     on_eval: Optional[Callable[[Any], Dict[str, float]]] = None) -> Dict[str, Any]:
    """``steps`` gradient steps on ``episodes`` (an :class:`~rllib_cfcql.data.schema.EpisodeArrays`, e.g. from
    :func:`rllib_cfcql.data.validate.validate_dataset`), with a greedy evaluation of ``eval_episodes`` episodes
    (env seeds ``eval_seed + k``) and the learner's diagnostics (docs/DIAGNOSTICS.md) every ``eval_every`` steps
    and at the end. The config needs a live task (``cfg.env``) to evaluate on. ``on_eval(learner)``, when given, runs
    after each evaluation and its figures join that evaluation's diagnostics row.

    Returns ``{"returns": [(step, mean raw return)], "curve": [(step, score)], "wins": [(step, win rate)]
    (tasks with a win flag only), "diagnostics": [{"steps": step, ...}], "seconds": float, "learner": ...}``;
    the score is normalised, 100·(R − R_random)/(R_expert − R_random), with ``reference_returns`` (default
    ``cfg.reference_returns``), else the raw return.
    """
    if not cfg.env:
        raise ValueError("train_in_process: the config has no task to evaluate on (cfg.env is None); "
                         "set .environment(<task>, env_config=...)")
    if steps < 1 or eval_every < 1:
        raise ValueError(f"train_in_process: steps={steps} and eval_every={eval_every} must both be >= 1")
    learner = prepare_learner(cfg, episodes, pretrain_seed=pretrain_seed)
    module = learner.module["default_policy"].unwrapped()
    refs = reference_returns if reference_returns is not None else cfg.reference_returns
    env_config = dict(cfg.env_config or {})
    out: Dict[str, Any] = {"returns": [], "curve": [], "wins": [], "diagnostics": []}
    t0, done = time.perf_counter(), 0
    while done < steps:
        k = min(eval_every, steps - done)
        learner.train_steps(k)
        done += k
        ev = evaluate_episodes(module, cfg.env, env_config, eval_episodes, seed=eval_seed)
        raw = float(ev["returns"].mean())
        out["returns"].append((done, raw))
        score = 100.0 * (raw - refs["random"]) / (refs["expert"] - refs["random"]) if refs else raw
        out["curve"].append((done, float(score)))
        if not np.isnan(ev["wins"]).all():
            out["wins"].append((done, float(ev["wins"].mean())))
        out["diagnostics"].append({"steps": done, **{name: float(v) for name, v in learner.diagnostics().items()},
                                   **(on_eval(learner) if on_eval else {})})
    out["seconds"] = round(time.perf_counter() - t0, 1)
    out["learner"] = learner
    return out
