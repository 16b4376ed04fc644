"""Behaviour policies stored as small checkpoints (pure torch, no Ray needed).

A checkpoint is two files side by side:

* ``<name>.pt``: a torch ``state_dict`` of a plain MLP
  (``layers.<k>.weight`` / ``layers.<k>.bias``, plus ``input_mean`` /
  ``input_std`` when the input is normalised), loadable with
  ``torch.load(..., weights_only=True)``;
* ``<name>.json``: its sidecar, at least::

      {"format": "rllib_cfcql.gaussian_mlp.v1",
       "input": "state",            # what the network reads: the team state
       "input_dim": 17, "hidden": [256, 256], "activation": "relu",
       "input_norm": {"eps": 1e-6, "clip": 10.0} or null,
       "squash": "clip" or "tanh",
       "n_agents": 2, "action_dim": 3}  # joint action = n_agents * action_dim

  plus provenance (algorithm, env steps, eval return, versions, seed).

The network maps the team ``state`` — first normalised as
``clip((s - input_mean) / (input_std + eps), -clip, clip)`` when ``input_norm``
is set (RLlib's ``MeanStdFilter``, frozen at checkpoint time) — to
``[mean, log_std]`` of a Gaussian over the flattened joint action (the layout
of RLlib's PPO and SAC policy heads). The deterministic action is
``clip(mean, -1, 1)`` (``squash="clip"``, PPO's unsquashed Gaussian, whose
actions the env clips) or ``tanh(mean)`` (``squash="tanh"``, SAC), reshaped
to ``(n_agents, action_dim)``. Optional Gaussian noise ``N(0, σ²)`` is added
and the result clipped to ``[-1, 1]``.

Written by ``scripts/train_behaviour.py``; used by the behaviour-policy spec
``checkpoint:<path>[@<noise std>]`` and by tasks whose reference expert is a
checkpoint (e.g. ``mamujoco_halfcheetah_2x3``).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

FORMAT = "rllib_cfcql.gaussian_mlp.v1"
_REQUIRED = ("format", "input", "input_dim", "hidden", "activation", "input_norm", "squash", "n_agents", "action_dim")
_SQUASH = ("clip", "tanh")
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
        if meta["input"] != "state":
            raise CheckpointError(f"policy checkpoint sidecar {str(meta_path)!r}: input {meta['input']!r}, expected 'state'")
        if meta["activation"] not in _ACTIVATIONS:
            raise CheckpointError(
                f"policy checkpoint sidecar {str(meta_path)!r}: activation {meta['activation']!r}, expected one of {_ACTIVATIONS}"
            )
        if meta["squash"] not in _SQUASH:
            raise CheckpointError(f"policy checkpoint sidecar {str(meta_path)!r}: squash {meta['squash']!r}, expected one of {_SQUASH}")
        norm = meta["input_norm"]
        if norm is not None and not (isinstance(norm, dict) and {"eps", "clip"} <= set(norm)):
            raise CheckpointError(
                f"policy checkpoint sidecar {str(meta_path)!r}: input_norm {norm!r}, expected null or {{'eps': .., 'clip': ..}}"
            )
        self.meta = meta
        self.squash = meta["squash"]
        self.norm = norm
        self.n_agents, self.action_dim = int(meta["n_agents"]), int(meta["action_dim"])
        self.input_dim = int(meta["input_dim"])
        joint = self.n_agents * self.action_dim
        self.net = build_mlp(self.input_dim, list(meta["hidden"]), 2 * joint, meta["activation"], norm is not None)
        try:
            sd = torch.load(self.path, map_location="cpu", weights_only=True)
            self.net.load_state_dict(sd)
        except Exception as e:  # noqa: BLE001 - any load failure is a malformed checkpoint
            raise CheckpointError(
                f"policy checkpoint {str(self.path)!r} does not match its sidecar "
                f"(input_dim={self.input_dim}, hidden={meta['hidden']}, output={2 * joint}, input_norm={norm is not None}): {e}"
            ) from None
        self.net.eval()
        self._torch = torch

    def check_task(self, spec) -> None:
        """Raise unless this checkpoint fits a task's :class:`TeamSpec` (continuous, same shapes)."""
        want = (True, spec.n_agents, spec.n_actions, spec.state_dim)
        have = (True, self.n_agents, self.action_dim, self.input_dim)
        if not spec.continuous or want != have:
            raise CheckpointError(
                f"policy checkpoint {str(self.path)!r} (n_agents={self.n_agents}, action_dim={self.action_dim}, "
                f"state_dim={self.input_dim}) does not fit the task (continuous={spec.continuous}, "
                f"n_agents={spec.n_agents}, action_dim={spec.n_actions}, state_dim={spec.state_dim})"
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
        """Deterministic joint action (``clip(mean)`` or ``tanh(mean)``), shape ``(n_agents, action_dim)`` (or batched)."""
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
        a = self.mean_action(state)
        if noise_std > 0.0:
            if rng is None:
                raise ValueError("CheckpointPolicy.act: noise_std > 0 needs an rng")
            a = a + rng.normal(0.0, noise_std, a.shape)
        return np.clip(a, -1.0, 1.0).astype(np.float32)


_CACHE: dict[Path, CheckpointPolicy] = {}


def load_checkpoint_policy(path: str | Path) -> CheckpointPolicy:
    """Load (once per process) the checkpoint at ``path``."""
    key = Path(path).resolve()
    if key not in _CACHE:
        _CACHE[key] = CheckpointPolicy(path)
    return _CACHE[key]
