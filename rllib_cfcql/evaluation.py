"""Greedy (deterministic) decentralised evaluation of a CFCQL RLModule outside RLlib's EnvRunners.

Used by benchmarks and tests; training runs evaluate on RLlib EnvRunners.
"""

from __future__ import annotations

import numpy as np
import torch

from rllib_cfcql import keys as K
from rllib_cfcql.envs import make_team_env


@torch.no_grad()
def evaluate_episodes(module, task: str, env_config: dict, episodes: int, seed: int = 12345) -> dict[str, np.ndarray]:
    """Greedy episodes (env seeds seed+k): ``{"returns": [episodes], "wins": [episodes]}``; ``wins``
    is the last step's ``info["battle_won"]`` (SMAX) as 0/1, NaN on tasks that report no win."""
    env = make_team_env(task, env_config)
    out, wins = np.zeros(episodes), np.full(episodes, np.nan)
    device = next(module.parameters()).device
    for k in range(episodes):
        obs, _ = env.reset(seed=seed + k)
        state = {key: torch.as_tensor(v, device=device)[None] for key, v in module.get_initial_state().items()} or None
        done, ret, info = False, 0.0, {}
        while not done:
            o = torch.as_tensor(obs[K.OBS], device=device)[None]
            m = torch.as_tensor(obs[K.ACTION_MASK], device=device)[None] if K.ACTION_MASK in obs else None
            a, state = module.greedy_step(o, m, state)
            obs, r, term, trunc, info = env.step(a[0].cpu().numpy())
            ret += r
            done = term or trunc
        out[k] = ret
        if "battle_won" in info:
            wins[k] = float(bool(info["battle_won"]))
    env.close()
    return {"returns": out, "wins": wins}


def evaluate_module(module, task: str, env_config: dict, episodes: int, seed: int = 12345) -> np.ndarray:
    """Returns the team return of each of ``episodes`` greedy episodes (env seeds seed+k)."""
    return evaluate_episodes(module, task, env_config, episodes, seed)["returns"]
