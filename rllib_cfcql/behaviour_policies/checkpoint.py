"""Behaviour policies stored as small checkpoints (pure torch, no Ray needed).

A checkpoint is two files side by side:

* ``<name>.pt``: a torch ``state_dict`` of a plain MLP
  (``layers.<k>.weight`` / ``layers.<k>.bias``, plus ``input_mean`` /
  ``input_std`` when the input is normalised), loadable with
  ``torch.load(..., weights_only=True)``;
* ``<name>.json``: its sidecar, at least::

      {"format": "rllib_cfcql.gaussian_mlp.v1",
       "input": "state",            # or "agent_obs"
       "input_dim": 17, "hidden": [256, 256], "activation": "relu",
       "input_norm": {"eps": 1e-6, "clip": 10.0} or null,
       "squash": "clip" or "tanh",
       "n_agents": 2, "action_dim": 3}

  plus provenance (algorithm, env steps, eval return, versions, seed), and for
  ``"input": "agent_obs"`` also ``"dist"`` and ``"agent_id"`` (below).

Two kinds of policy:

``"input": "state"`` (centralised)
    The network maps the team ``state`` to ``[mean, log_std]`` of a Gaussian
    over the flattened joint action (``n_agents * action_dim``; the layout of
    RLlib's PPO and SAC policy heads).
``"input": "agent_obs"`` (decentralised, one network shared by all agents)
    Agent ``i``'s row is its own observation, followed by the one-hot of ``i``
    when ``"agent_id": true``; the network runs on the ``n_agents`` rows as a
    batch. ``"dist": "gaussian"`` gives ``[mean, log_std]`` over the agent's
    ``action_dim`` continuous action; ``"dist": "categorical"`` gives the
    logits of its ``action_dim`` discrete actions (unavailable actions, from
    the task's action mask, are never chosen).

The input is first normalised as ``clip((x - input_mean) / (input_std + eps),
-clip, clip)`` when ``input_norm`` is set (RLlib's ``MeanStdFilter``, frozen at
checkpoint time). The deterministic action is ``clip(mean, -1, 1)``
(``squash="clip"``, PPO's unsquashed Gaussian, whose actions the env clips),
``tanh(mean)`` (``squash="tanh"``, SAC) or the most likely available action
(categorical). :meth:`CheckpointPolicy.act_team` also *samples* from the
policy's own distribution (what the policy did while it was trained) or
perturbs the deterministic action (Gaussian noise, or ε random moves).

Written by ``rllib-cfcql behaviour train-centralised`` (centralised) and
``rllib-cfcql behaviour train-shared`` (shared, decentralised); used by the
behaviour-policy spec ``checkpoint:<path>[@<noise std | eps | sample>]`` and by
tasks whose reference policies are checkpoints.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from rllib_cfcql.paths import PROJECT_ROOT

FORMAT = "rllib_cfcql.gaussian_mlp.v1"
#: The project root: relative checkpoint paths (as written in dataset cards, e.g.
#: ``offline_data/policies/mpe_spread_continuous/expert.pt``) resolve against it when they do
#: not exist relative to the working directory.
_REQUIRED = ("format", "input", "input_dim", "hidden", "activation", "input_norm", "squash", "n_agents", "action_dim")
_SQUASH = ("clip", "tanh")
_INPUTS = ("state", "agent_obs")
_DISTS = ("gaussian", "categorical")
_ACTIVATIONS = ("relu", "tanh")


class CheckpointError(ValueError):
    """A policy checkpoint is missing or malformed (the message names the path)."""


def sidecar_path(path: str | Path) -> Path:
    return Path(path).with_suffix(".json")


def build_mlp(input_dim: int, hidden: list[int], output_dim: int, activation: str = "relu", input_norm: bool = False):
    """The MLP layout of a checkpoint: ``layers`` = Linear/activation pairs, then a Linear;
    with ``input_norm`` also the buffers ``input_mean`` / ``input_std``."""
    import torch
    import torch.nn as nn

    act = {"relu": nn.ReLU, "tanh": nn.Tanh}[activation]
    mods, d = [], int(input_dim)
    for h in hidden:
        mods += [nn.Linear(d, int(h)), act()]
        d = int(h)
    mods.append(nn.Linear(d, int(output_dim)))
    net = nn.Module()
    net.layers = nn.Sequential(*mods)
    if input_norm:
        net.register_buffer("input_mean", torch.zeros(int(input_dim)))
        net.register_buffer("input_std", torch.ones(int(input_dim)))
    return net


class CheckpointPolicy:
    """A joint policy loaded from ``<path>.pt`` + ``<path>.json``; acts from the team state."""

    def __init__(self, path: str | Path):
        import torch

        self.path = Path(path)
        meta_path = sidecar_path(self.path)
        if not self.path.is_file():
            raise CheckpointError(f"policy checkpoint {str(self.path)!r} not found (expected a torch state_dict .pt file)")
        if not meta_path.is_file():
            raise CheckpointError(f"policy checkpoint {str(self.path)!r}: sidecar {str(meta_path)!r} not found")
        try:
            meta = json.loads(meta_path.read_text())
        except (OSError, json.JSONDecodeError) as e:
            raise CheckpointError(f"policy checkpoint sidecar {str(meta_path)!r} is not valid JSON: {e}") from None
        missing = [k for k in _REQUIRED if k not in meta]
        if missing:
            raise CheckpointError(f"policy checkpoint sidecar {str(meta_path)!r}: missing fields {missing}")
        if meta["format"] != FORMAT:
            raise CheckpointError(f"policy checkpoint sidecar {str(meta_path)!r}: format {meta['format']!r}, expected {FORMAT!r}")
        if meta["input"] not in _INPUTS:
            raise CheckpointError(
                f"policy checkpoint sidecar {str(meta_path)!r}: input {meta['input']!r}, expected one of {_INPUTS}"
            )
        dist = meta.get("dist", "gaussian")
        if dist not in _DISTS or (dist == "categorical" and meta["input"] != "agent_obs"):
            raise CheckpointError(
                f"policy checkpoint sidecar {str(meta_path)!r}: dist {dist!r}, expected one of {_DISTS} "
                "('categorical' only with input 'agent_obs')"
            )
        if meta["activation"] not in _ACTIVATIONS:
            raise CheckpointError(
                f"policy checkpoint sidecar {str(meta_path)!r}: activation {meta['activation']!r}, expected one of {_ACTIVATIONS}"
            )
        if dist == "gaussian" and meta["squash"] not in _SQUASH:
            raise CheckpointError(f"policy checkpoint sidecar {str(meta_path)!r}: squash {meta['squash']!r}, expected one of {_SQUASH}")
        norm = meta["input_norm"]
        if norm is not None and not (isinstance(norm, dict) and {"eps", "clip"} <= set(norm)):
            raise CheckpointError(
                f"policy checkpoint sidecar {str(meta_path)!r}: input_norm {norm!r}, expected null or {{'eps': .., 'clip': ..}}"
            )
        self.meta = meta
        self.input = meta["input"]
        self.dist = dist
        self.agent_id = bool(meta.get("agent_id", False))
        self.squash = meta["squash"]
        self.norm = norm
        self.n_agents, self.action_dim = int(meta["n_agents"]), int(meta["action_dim"])
        self.input_dim = int(meta["input_dim"])
        if self.input == "state":
            out_dim = 2 * self.n_agents * self.action_dim
        else:
            out_dim = self.action_dim * (2 if dist == "gaussian" else 1)
        self.net = build_mlp(self.input_dim, list(meta["hidden"]), out_dim, meta["activation"], norm is not None)
        try:
            sd = torch.load(self.path, map_location="cpu", weights_only=True)
            self.net.load_state_dict(sd)
        except Exception as e:  # noqa: BLE001 - any load failure is a malformed checkpoint
            raise CheckpointError(
                f"policy checkpoint {str(self.path)!r} does not match its sidecar "
                f"(input={self.input}, input_dim={self.input_dim}, hidden={meta['hidden']}, output={out_dim}, "
                f"input_norm={norm is not None}): {e}"
            ) from None
        self.net.eval()
        self._torch = torch

    @property
    def continuous(self) -> bool:
        return self.dist == "gaussian"

    def check_task(self, spec) -> None:
        """Raise unless this checkpoint fits a task's :class:`TeamSpec` (action kind and shapes)."""
        if self.input == "state":
            want = (spec.continuous, spec.n_agents, spec.n_actions, spec.state_dim)
            what = "state_dim"
        else:
            want = (spec.continuous, spec.n_agents, spec.n_actions, spec.obs_dim + (spec.n_agents if self.agent_id else 0))
            what = "obs_dim (+ agent one-hot)" if self.agent_id else "obs_dim"
        have = (self.continuous, self.n_agents, self.action_dim, self.input_dim)
        if want != have:
            raise CheckpointError(
                f"policy checkpoint {str(self.path)!r} (continuous={self.continuous}, n_agents={self.n_agents}, "
                f"action_dim={self.action_dim}, {what}={self.input_dim}) does not fit the task "
                f"(continuous={spec.continuous}, n_agents={spec.n_agents}, action_dim={spec.n_actions}, "
                f"{what}={want[3]})"
            )

    def dist_inputs(self, state):
        """``[mean, log_std]`` for a batch of raw team states (a torch tensor ``[B, input_dim]``)."""
        x = state
        if self.norm is not None:
            x = (x - self.net.input_mean) / (self.net.input_std + float(self.norm["eps"]))
            if self.norm["clip"]:
                x = x.clamp(-float(self.norm["clip"]), float(self.norm["clip"]))
        return self.net.layers(x)

    def mean_action(self, state: np.ndarray) -> np.ndarray:
        """Centralised policies: the deterministic joint action (``clip(mean)`` or ``tanh(mean)``), shape
        ``(n_agents, action_dim)`` (or batched)."""
        if self.input != "state":
            raise ValueError(f"policy checkpoint {str(self.path)!r} acts from agent observations; use act_team()")
        s = np.asarray(state, np.float32)
        batched = s.ndim == 2
        if s.shape[-1] != self.input_dim:
            raise ValueError(f"policy checkpoint {str(self.path)!r} expects a state of size {self.input_dim}, got shape {s.shape}")
        with self._torch.no_grad():
            out = self.dist_inputs(self._torch.from_numpy(s.reshape(-1, self.input_dim))).numpy()
        joint = self.n_agents * self.action_dim
        mean = out[:, :joint]
        a = (np.tanh(mean) if self.squash == "tanh" else np.clip(mean, -1.0, 1.0)).reshape(-1, self.n_agents, self.action_dim)
        return a if batched else a[0]

    def act(self, state: np.ndarray, rng: np.random.Generator | None = None, noise_std: float = 0.0) -> np.ndarray:
        """Centralised Gaussian policies: the deterministic joint action plus optional N(0, noise_std²), clipped."""
        a = self.mean_action(state)
        if noise_std > 0.0:
            if rng is None:
                raise ValueError("CheckpointPolicy.act: noise_std > 0 needs an rng")
            a = a + rng.normal(0.0, noise_std, a.shape)
        return np.clip(a, -1.0, 1.0).astype(np.float32)

    def agent_inputs(self, obs: np.ndarray) -> np.ndarray:
        """The network's rows for a team observation ``[n, obs_dim]`` (``[n, obs_dim + n]`` with the one-hots)."""
        o = np.asarray(obs, np.float32).reshape(self.n_agents, -1)
        if self.agent_id:
            o = np.concatenate([o, np.eye(self.n_agents, dtype=np.float32)], axis=1)
        if o.shape[1] != self.input_dim:
            raise ValueError(f"policy checkpoint {str(self.path)!r} expects agent rows of size {self.input_dim}, got {o.shape[1]}")
        return o

    def act_team(self, obs: dict, rng: np.random.Generator | None = None, mode: str = "mean", arg: float = 0.0) -> np.ndarray:
        """A joint action for a team observation dict (``obs``, ``state``, ``action_mask``).

        ``mode``: ``"mean"`` (deterministic), ``"noise"`` (deterministic + per-step perturbation:
        N(0, arg²) for Gaussian policies, else a uniformly random available action with
        probability ``arg`` per agent) or ``"sample"`` (the policy's own distribution).
        """
        if mode not in ("mean", "noise", "sample"):
            raise ValueError(f"CheckpointPolicy.act_team: mode {mode!r}, expected 'mean', 'noise' or 'sample'")
        if mode != "mean" and rng is None:
            raise ValueError(f"CheckpointPolicy.act_team: mode {mode!r} needs an rng")
        if self.input == "state":
            x = np.asarray(obs["state"], np.float32).reshape(1, self.input_dim)
        else:
            x = self.agent_inputs(obs["obs"])
        with self._torch.no_grad():
            out = self.dist_inputs(self._torch.from_numpy(x)).numpy()
        n, d = self.n_agents, self.action_dim
        if self.input == "state":  # [mean over the flat joint action, log_std over it]
            out = np.concatenate([out[0, : n * d].reshape(n, d), out[0, n * d:].reshape(n, d)], axis=1)
        if self.dist == "categorical":
            mask = np.asarray(obs.get("action_mask", np.ones_like(out)), bool)
            logits = np.where(mask, out.astype(np.float64), -np.inf)
            if mode == "sample":
                g = rng.gumbel(size=logits.shape)
                return np.argmax(logits + g, axis=-1)
            a = np.argmax(logits, axis=-1)
            if mode == "noise":
                rand = np.argmax(rng.random(mask.shape) * mask, axis=-1)
                a = np.where(rng.random(self.n_agents) < arg, rand, a)
            return a
        mean, log_std = out[:, :d], out[:, d:]
        if mode == "sample":
            mean = mean + np.exp(log_std) * rng.normal(size=mean.shape)
        a = np.tanh(mean) if self.squash == "tanh" else np.clip(mean, -1.0, 1.0)
        if mode == "noise" and arg > 0.0:
            a = a + rng.normal(0.0, arg, a.shape)
        return np.clip(a, -1.0, 1.0).astype(np.float32)


#: loaded checkpoints by resolved path, with the (mtime, size) they were loaded at: a file rewritten
#: in place (a training run selecting a new expert.pt) is loaded again and replaces its entry
_CACHE: dict[Path, tuple[tuple[int, int], CheckpointPolicy]] = {}


def resolve_checkpoint_path(path: str | Path) -> Path:
    """``path`` as given if it exists (or is absolute), else relative to :data:`PROJECT_ROOT` if it exists there."""
    p = Path(path)
    if p.is_absolute() or p.exists():
        return p
    alt = PROJECT_ROOT / p
    return alt if alt.exists() else p


def load_checkpoint_policy(path: str | Path) -> CheckpointPolicy:
    """Load (once per process and file version) the checkpoint at ``path`` (see
    :func:`resolve_checkpoint_path`)."""
    path = resolve_checkpoint_path(path)
    key = Path(path).resolve()
    if not key.is_file():
        return CheckpointPolicy(path)  # raises the precise error
    st = key.stat()
    stamp = (st.st_mtime_ns, st.st_size)
    if key not in _CACHE or _CACHE[key][0] != stamp:
        _CACHE[key] = (stamp, CheckpointPolicy(path))
    return _CACHE[key][1]
