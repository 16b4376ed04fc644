"""Learner-resident episode store: uniform sampling of episodes or transitions.

Each Learner holds its shard of the dataset as tensors on its own device and
samples minibatches there, as the reference's episode buffer does, so no data
crosses processes during training.
"""

from __future__ import annotations

import numpy as np
import torch

from rllib_cfcql import keys as K
from rllib_cfcql.data.schema import EpisodeArrays


class EpisodeStore:
    def __init__(self, episodes: EpisodeArrays, device: torch.device | str = "cpu", *, unit: str = "episodes", seed: int = 0):
        if unit not in ("episodes", "transitions"):
            raise ValueError(f"batch unit must be 'episodes' or 'transitions', got {unit!r}")
        if episodes.num_episodes == 0:
            raise ValueError("the episode store needs at least one episode")
        self.unit = unit
        self.device = torch.device(device)
        tt = lambda a, dt: torch.as_tensor(np.ascontiguousarray(a), dtype=dt, device=self.device)  # noqa: E731
        self.obs = tt(episodes.obs, torch.float32)
        self.state = tt(episodes.state, torch.float32)
        self.action_mask = tt(episodes.action_mask, torch.float32)
        self.continuous = episodes.actions.dtype.kind == "f"
        self.actions = tt(episodes.actions, torch.float32 if self.continuous else torch.int64)
        self.reward = tt(episodes.reward, torch.float32)
        self.terminated = tt(episodes.terminated, torch.float32)
        self.filled = tt(episodes.filled, torch.float32)
        self.lengths = self.filled.sum(1).long()
        self.num_episodes = int(self.actions.shape[0])
        e, t = torch.nonzero(self.filled > 0, as_tuple=True)
        self._trans_e, self._trans_t = e, t
        self.num_transitions = int(e.numel())
        self.extras: dict[str, torch.Tensor] = {}  # per-step arrays [E, T, ...] sampled with the batch
        self.gen = torch.Generator(device=self.device)
        self.gen.manual_seed(int(seed))

    def add_extra(self, name: str, values: torch.Tensor) -> None:
        """Attach a per-step array sampled along with the batch: [E, T, ...] (aligned with
        actions) or [E, T+1, ...] (aligned with observations)."""
        E, T = self.actions.shape[:2]
        if values.shape[0] != E or values.shape[1] not in (T, T + 1):
            raise ValueError(f"extra {name!r} must have shape [E, T or T+1, ...] with E={E}, T={T}, got {tuple(values.shape)}")
        self.extras[name] = values.to(self.device)

    def iter_episode_chunks(self, size: int):
        for start in range(0, self.num_episodes, size):
            idx = torch.arange(start, min(start + size, self.num_episodes), device=self.device)
            yield idx, self.episodes(idx, trim=False)

    def __len__(self) -> int:
        return self.num_episodes if self.unit == "episodes" else self.num_transitions

    def sample(self, batch_size: int) -> dict[str, torch.Tensor]:
        if self.unit == "episodes":
            idx = torch.randint(self.num_episodes, (batch_size,), generator=self.gen, device=self.device)
            return self.episodes(idx)
        j = torch.randint(self.num_transitions, (batch_size,), generator=self.gen, device=self.device)
        return self.transitions(self._trans_e[j], self._trans_t[j])

    def episodes(self, idx: torch.Tensor, trim: bool = True) -> dict[str, torch.Tensor]:
        # cut the padding to the longest sampled episode: [B, T_b(+1), ...]
        Tb = int(self.lengths[idx].max()) if trim else int(self.actions.shape[1])
        out = {
            K.OBS: self.obs[idx, : Tb + 1],
            K.STATE: self.state[idx, : Tb + 1],
            K.ACTION_MASK: self.action_mask[idx, : Tb + 1],
            K.ACTIONS: self.actions[idx, :Tb],
            K.REWARD: self.reward[idx, :Tb],
            K.TERMINATED: self.terminated[idx, :Tb],
            K.FILLED: self.filled[idx, :Tb],
        }
        T = self.actions.shape[1]
        for name, v in self.extras.items():
            out[name] = v[idx, : Tb + 1] if v.shape[1] == T + 1 else v[idx, :Tb]
        return out

    def transitions(self, e: torch.Tensor, t: torch.Tensor) -> dict[str, torch.Tensor]:
        """Single transitions as length-1 episodes with their bootstrap step."""
        tt = torch.stack([t, t + 1], dim=1)  # [B, 2]
        ee = e[:, None]
        last = (t + 1 == self.lengths[e]).float()
        out = {
            K.OBS: self.obs[ee, tt],
            K.STATE: self.state[ee, tt],
            K.ACTION_MASK: self.action_mask[ee, tt],
            K.ACTIONS: self.actions[e, t][:, None],
            K.REWARD: self.reward[e, t][:, None],
            # a time-limit cut mid-store is bootstrapped like any other step
            K.TERMINATED: (self.terminated[e, t] * last)[:, None],
            K.FILLED: torch.ones(len(e), 1, device=self.device),
        }
        T = self.actions.shape[1]
        for name, v in self.extras.items():
            out[name] = v[ee, tt] if v.shape[1] == T + 1 else v[e, t][:, None]
        return out
