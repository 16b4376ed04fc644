"""What both behaviour-training runs share: versions recorded in sidecars, checkpoint saving, the
replay manifest and saved-sequence listing, the common PPO settings, and copying an RLlib policy
network into the checkpoint MLP (with a check that it computes what RLlib computes).

The runs themselves: :mod:`.train_shared` (one PPO policy shared by every agent: MPE, Equal_Line)
and :mod:`.train_centralised` (a centralised PPO policy on the team state: HalfCheetah 2x3). Both
are ``rllib-cfcql behaviour`` subcommands.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np


def versions() -> dict[str, str]:
    """The versions a policy checkpoint's sidecar records."""
    from rllib_cfcql.data.writer import package_versions

    return package_versions(("ray", "torch", "numpy", "gymnasium", "gymnasium_robotics", "mujoco"))


def save_checkpoint(net, path: Path, meta: dict) -> None:
    import torch

    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(net.state_dict(), path)
    meta = dict(meta, sha256=hashlib.sha256(path.read_bytes()).hexdigest())
    path.with_suffix(".json").write_text(json.dumps(meta, indent=2) + "\n")


def write_replay_manifest(out: Path, sequence: list[tuple[int, Path]], medium_steps: int) -> list[tuple[int, Path]]:
    """Write ``<out>/replay.json``: the saved policies (``(env_steps, file)``, sorted) up to the medium
    checkpoint, the first (the untrained policy) playing from env step 0; returns those kept."""
    keep = [(k, f) for k, f in sorted(sequence, key=lambda t: t[0]) if k <= medium_steps]
    (out / "replay.json").write_text(json.dumps({
        "description": "the PPO policy sequence up to medium.pt: the policy at training/<file> played env steps "
                       "[env_steps, next env_steps) of training (sampling from its distribution)",
        "medium_env_steps": medium_steps,
        "checkpoints": [{"file": f"training/{f.name}", "env_steps": 0 if i == 0 else k} for i, (k, f) in enumerate(keep)],
    }, indent=2) + "\n")
    return keep


def saved_sequence(steps_dir: Path) -> list[tuple[int, Path]]:
    """``(env_steps, .pt file)`` of every policy saved in ``steps_dir``, sorted by env steps."""
    return sorted((int(json.loads(j.read_text())["env_steps"]), j.with_suffix(".pt")) for j in steps_dir.glob("step-*.json"))


def ppo_config_tail(config, train_cfg: dict, model, seed: int, smoothing: int):
    """The settings every behaviour-training run shares: torch, one local learner, the model, reporting, seed."""
    return (
        config.framework("torch", torch_compile_learner=False)
        .learners(num_learners=0)
        .training(**train_cfg)
        .rl_module(model_config=model)
        .reporting(min_sample_timesteps_per_iteration=1000, min_time_s_per_iteration=0,
                   metrics_num_episodes_for_smoothing=smoothing)
        .debugging(seed=seed)
    )


def copy_linear_policy(linears, net, reference, x: np.ndarray, what: str, transform=None) -> float:
    """Copy RLlib's ``linears`` (the policy's ``nn.Linear`` layers in order) into the checkpoint MLP
    ``net`` and return the largest difference between ``net`` and ``reference(x)`` (RLlib's own
    forward pass) on the probe inputs ``x``; raise if the layouts differ or the outputs disagree.
    ``transform`` maps the probe to the MLP's input (e.g. the observation filter)."""
    import torch
    import torch.nn as nn

    mine = [m for m in net.layers if isinstance(m, nn.Linear)]
    if len(mine) != len(linears) or any(a.weight.shape != b.weight.shape for a, b in zip(mine, linears)):
        raise RuntimeError(f"{what} policy layout {[tuple(m.weight.shape) for m in linears]} != checkpoint MLP "
                           f"{[tuple(m.weight.shape) for m in mine]}")
    with torch.no_grad():
        for a, b in zip(mine, linears):
            a.weight.copy_(b.weight)
            a.bias.copy_(b.bias)
        ref = reference(x)
        z = torch.from_numpy(x)
        if transform is not None:
            z = transform(z)
        err = float((net.layers(z) - ref).abs().max())
    if err > 1e-4:
        raise RuntimeError(f"extracted policy differs from the RLlib {what} policy by {err}")
    return err
