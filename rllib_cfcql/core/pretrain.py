"""Pre-training of the behaviour models λ needs, before CFCQL starts: β (discrete) and the VAE (continuous).

β, the per-agent behaviour policy of the discrete variant, has the agent network's architecture and
is fit by maximum likelihood to the dataset's actions (unavailable actions masked); the conditional
VAE p(a | s) of the continuous variant is fit by its ELBO. Both run through one loop
(:func:`fit_with_early_stopping`): early stopping on a held-out 10% keeps the best validation loss,
with a progress bar, and the result is cached on disk per (dataset content, architecture, settings),
so repeated runs and Tune trials on the same data train it once. (Not to be confused with the
behaviour *policies* that generate datasets: :mod:`rllib_cfcql.behaviour_policies`.)
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import time
from pathlib import Path
from typing import Any, Dict, Optional

import numpy as np
import torch

from rllib_cfcql import keys as K
from rllib_cfcql import paths
from rllib_cfcql.data.schema import EpisodeArrays
from rllib_cfcql.data.store import EpisodeStore
from rllib_cfcql.discrete import loss as L
from rllib_cfcql.discrete.nets import AgentNet, episode_agent_inputs
from rllib_cfcql.progress import progress_bar

logger = logging.getLogger(__name__)


def arrays_digest(ep: EpisodeArrays) -> str:
    h = hashlib.sha256()
    for name, arr in ep.as_dict().items():
        h.update(name.encode())
        h.update(np.ascontiguousarray(arr).tobytes())
    return h.hexdigest()


def _cache_file(prefix: str, key_src: dict, cache_dir) -> Path:
    key = hashlib.sha256(json.dumps(key_src, sort_keys=True).encode()).hexdigest()[:24]
    return (Path(cache_dir) if cache_dir else paths.cache_dir()) / "behaviour" / f"{prefix}-{key}.pt"


def _load_cached(path: Path):
    """(state, info) from the cache, or None."""
    if not path.exists():
        return None
    blob = torch.load(path, map_location="cpu", weights_only=False)
    logger.info("behaviour model loaded from cache %s", path)
    return blob["state"], dict(blob["info"], cached=True, cache_path=str(path))


def _store_cached(path: Path, state: dict, info: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    torch.save({"state": state, "info": info}, tmp)
    os.replace(tmp, path)


def _nll_acc(net, batch, cfg, n_actions):
    x = episode_agent_inputs(batch[K.OBS], batch[K.ACTIONS], n_actions, cfg["obs_last_action"], cfg["obs_agent_id"])
    T = batch[K.ACTIONS].shape[1]
    logits = net(x)[0][:, :T]
    avail = batch[K.ACTION_MASK][:, :T]
    return L.bc_loss_and_accuracy(logits, batch[K.ACTIONS], avail, batch[K.FILLED])


def fit_with_early_stopping(net: torch.nn.Module, train_loss, validate, *, lr: float, steps: int, eval_every: int,
                            patience: int, label: str, progress: bool, grad_clip: float | None = None):
    """Up to ``steps`` Adam steps (learning rate ``lr``, optional gradient-norm clip) on ``train_loss()``; every ``eval_every`` steps (and at the last),
    ``validate()`` returns (loss, extra metrics); stop after ``patience`` evaluations without an
    improvement of 1e-4. Returns (the best state_dict as numpy arrays, or the last one when no
    evaluation improved on inf; info with ``val_loss``, the best evaluation's metrics, ``steps``,
    ``seconds``)."""
    opt = torch.optim.Adam(net.parameters(), lr=lr)
    best, best_state, best_extra, bad, t0, step = float("inf"), None, {}, 0, time.perf_counter(), 0
    bar = progress_bar(steps, label) if progress else None
    for step in range(1, steps + 1):
        loss = train_loss()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        if grad_clip:
            torch.nn.utils.clip_grad_norm_(net.parameters(), grad_clip)
        opt.step()
        if bar:
            bar.update(1)
        if step % eval_every == 0 or step == steps:
            with torch.no_grad():
                v, extra = validate()
            if bar:
                bar.set_postfix(val_loss=f"{v:.4f}", **{k: f"{x:.3f}" for k, x in extra.items()})
            if v < best - 1e-4:
                best, bad, best_extra = v, 0, extra
                best_state = {k: x.detach().clone() for k, x in net.state_dict().items()}
            else:
                bad += 1
                if bad >= patience:
                    break
    if bar:
        bar.close()
    state = {k: x.numpy() for k, x in (best_state or net.state_dict()).items()}
    info = {"val_loss": best, **best_extra, "steps": step, "seconds": round(time.perf_counter() - t0, 2)}
    return state, info


def pretrain_behaviour(
    episodes: EpisodeArrays,
    *,
    model_cfg: Dict[str, Any],
    n_actions: int,
    steps: int,
    batch_size: int,
    lr: float,
    seed: int,
    patience: int = 10,
    eval_every: int = 50,
    cache_dir: str | os.PathLike | None = None,
    progress: bool = True,
) -> tuple[Dict[str, np.ndarray], Dict[str, Any]]:
    """Fit β; returns (state_dict as numpy, info). Uses the cache when possible."""
    n_agents, obs_dim = episodes.obs.shape[2:4]
    arch = {k: model_cfg[k] for k in ("hidden", "rnn", "obs_last_action", "obs_agent_id")}
    path = _cache_file("beta", {"data": arrays_digest(episodes), "arch": arch, "steps": steps, "batch": batch_size,
                                "lr": lr, "seed": seed, "patience": patience, "eval_every": eval_every}, cache_dir)
    cached = _load_cached(path)
    if cached is not None:
        return cached

    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    perm = rng.permutation(episodes.num_episodes)
    n_val = max(1, episodes.num_episodes // 10) if episodes.num_episodes >= 10 else 0
    train_ep = episodes.select(np.sort(perm[n_val:]))
    val_ep = episodes.select(np.sort(perm[:n_val])) if n_val else train_ep
    unit = "episodes" if (arch["rnn"] or arch["obs_last_action"]) else "transitions"
    train_store = EpisodeStore(train_ep, "cpu", unit=unit, seed=seed)
    val_store = EpisodeStore(val_ep, "cpu", unit="episodes", seed=seed)
    val_batch = val_store.episodes(torch.arange(val_store.num_episodes))
    in_dim = obs_dim + (n_actions if arch["obs_last_action"] else 0) + (n_agents if arch["obs_agent_id"] else 0)
    net = AgentNet(in_dim, n_actions, arch["hidden"], arch["rnn"])
    def train_loss():
        return _nll_acc(net, train_store.sample(batch_size), arch, n_actions)[0]

    def validate():
        v, acc = _nll_acc(net, val_batch, arch, n_actions)
        return v.item(), {"val_accuracy": acc.item()}

    state, info = fit_with_early_stopping(net, train_loss, validate, lr=lr, grad_clip=10.0, steps=steps,
                                          eval_every=eval_every, patience=patience,
                                          label="pre-training behaviour model β (BC)", progress=progress)
    info = {"val_nll": info.pop("val_loss"), "val_accuracy": info.get("val_accuracy", float("nan")), **info,
            "cached": False, "cache_path": str(path)}
    _store_cached(path, state, info)
    return state, info


def pretrain_vae(
    episodes: EpisodeArrays,
    *,
    hidden: int,
    latent: int | None,
    steps: int,
    batch_size: int,
    lr: float,
    kl_weight: float,
    seed: int,
    patience: int = 10,
    eval_every: int = 100,
    cache_dir: str | os.PathLike | None = None,
    progress: bool = True,
) -> tuple[Dict[str, np.ndarray], Dict[str, Any]]:
    """Fit the conditional VAE p(a | s) of the continuous variant's λ on the dataset's
    (state, joint action) pairs; early stopping on a held-out 10% of the transitions'
    negative ELBO; cached per (dataset content, architecture, settings) like β."""
    from rllib_cfcql.continuous.nets import ConditionalVAE

    n_agents, act_dim = episodes.actions.shape[2:4]
    state_dim = episodes.state.shape[-1]
    path = _cache_file("vae", {"data": arrays_digest(episodes), "kind": "vae", "hidden": hidden, "latent": latent,
                               "steps": steps, "batch": batch_size, "lr": lr, "kl": kl_weight, "seed": seed,
                               "patience": patience, "eval_every": eval_every}, cache_dir)
    cached = _load_cached(path)
    if cached is not None:
        return cached

    valid = episodes.filled > 0
    states = torch.as_tensor(episodes.state[:, :-1][valid])
    actions = torch.as_tensor(episodes.actions[valid])
    g = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    perm = torch.randperm(len(states), generator=g)
    n_val = max(1, len(states) // 10)
    val_idx, train_idx = perm[:n_val], perm[n_val:] if len(states) > 1 else perm
    vae = ConditionalVAE(state_dim, n_agents, act_dim, hidden, latent)
    def train_loss():
        j = train_idx[torch.randint(len(train_idx), (batch_size,), generator=g)]
        return vae.elbo_loss(states[j], actions[j], kl_weight)[0]

    def validate():
        return vae.elbo_loss(states[val_idx], actions[val_idx], kl_weight)[0].item(), {}

    state, info = fit_with_early_stopping(vae, train_loss, validate, lr=lr, steps=steps, eval_every=eval_every,
                                          patience=patience, label="pre-training behaviour VAE (λ)", progress=progress)
    info.update(cached=False, cache_path=str(path))
    _store_cached(path, state, info)
    return state, info


def pretrain_for_config(cfg, episodes: EpisodeArrays, n_actions: Optional[int], seed: int,
                        progress: bool = True) -> Dict[str, Any]:
    """What ``cfg`` needs pre-trained before its first update: the behaviour model β (discrete, for λ) and /
    or the conditional VAE (continuous ``lambda_model="vae"``), both cached under ``cfg.behaviour_cache_dir``.
    ``n_actions`` (per-agent action count) is read only for β, so continuous configs pass None.
    Returns ``{"behaviour": (state, info) or None, "vae": (state, info) or None}``; the Algorithm and
    :func:`rllib_cfcql.core.in_process.train_in_process` hand the states to their learners."""
    out: Dict[str, Any] = {"behaviour": None, "vae": None}
    if cfg.uses_vae:
        out["vae"] = pretrain_vae(episodes, hidden=cfg.vae_hidden, latent=cfg.vae_latent, steps=cfg.vae_pretrain_steps,
                                  batch_size=cfg.vae_batch_size, lr=cfg.vae_lr, kl_weight=cfg.vae_kl_weight, seed=seed,
                                  cache_dir=cfg.behaviour_cache_dir)
    if cfg.uses_behaviour_model:
        if n_actions is None:
            raise ValueError("pretrain_for_config: the config trains a behaviour model β, which needs n_actions "
                             "(the per-agent discrete action count); got None")
        out["behaviour"] = pretrain_behaviour(episodes, model_cfg=cfg.model_config, n_actions=n_actions,
                                              steps=cfg.bc_pretrain_steps, batch_size=cfg.bc_batch_size, lr=cfg.bc_lr,
                                              seed=seed, patience=cfg.bc_patience, cache_dir=cfg.behaviour_cache_dir,
                                              progress=progress)
    return out
