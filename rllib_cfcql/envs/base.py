"""The team abstraction: a cooperative multi-agent task seen as one RLlib agent.

A :class:`TeamEnv` is a plain single-agent ``gymnasium.Env`` whose

* observation is a ``Dict`` of per-agent observations ``obs [n, obs_dim]``, the
  global ``state [state_dim]`` and per-agent ``action_mask [n, n_actions]``;
* action is the joint action, ``MultiDiscrete([n_actions] * n)``;
* reward is the team reward.

RLlib's single-agent machinery (offline data, Learner, EnvRunner, Tune,
checkpoints) then applies unchanged; decentralised execution lives in the
RLModule, where agent ``i`` acts from ``obs[i]`` (and its own history) only.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import gymnasium as gym
import numpy as np

from rllib_cfcql import keys as K


@dataclass(frozen=True)
class TeamSpec:
    """Shapes of a team task; datasets are checked against it."""

    n_agents: int
    obs_dim: int
    state_dim: int
    n_actions: int
    episode_limit: int

    def to_dict(self) -> dict[str, int]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "TeamSpec":
        return cls(**{k: int(d[k]) for k in cls.__dataclass_fields__})


def team_observation_space(spec: TeamSpec) -> gym.spaces.Dict:
    return gym.spaces.Dict(
        {
            K.OBS: gym.spaces.Box(-np.inf, np.inf, (spec.n_agents, spec.obs_dim), np.float32),
            K.STATE: gym.spaces.Box(-np.inf, np.inf, (spec.state_dim,), np.float32),
            K.ACTION_MASK: gym.spaces.Box(0.0, 1.0, (spec.n_agents, spec.n_actions), np.float32),
        }
    )


def team_action_space(spec: TeamSpec) -> gym.spaces.MultiDiscrete:
    return gym.spaces.MultiDiscrete([spec.n_actions] * spec.n_agents)


class TeamEnv(gym.Env):
    """Base class. Subclasses set ``self.spec_`` and implement ``_reset``/``_step``."""

    metadata = {"render_modes": []}
    spec_: TeamSpec

    def _init_spaces(self, spec: TeamSpec) -> None:
        self.spec_ = spec
        self.observation_space = team_observation_space(spec)
        self.action_space = team_action_space(spec)

    @property
    def team_spec(self) -> TeamSpec:
        return self.spec_

    def _pack(self, obs: np.ndarray, state: np.ndarray, mask: np.ndarray) -> dict:
        return {
            K.OBS: np.asarray(obs, np.float32).reshape(self.spec_.n_agents, self.spec_.obs_dim),
            K.STATE: np.asarray(state, np.float32).reshape(self.spec_.state_dim),
            K.ACTION_MASK: np.asarray(mask, np.float32).reshape(
                self.spec_.n_agents, self.spec_.n_actions
            ),
        }

    def check_action(self, action) -> np.ndarray:
        a = np.asarray(action, dtype=np.int64).reshape(-1)
        if a.shape != (self.spec_.n_agents,):
            raise ValueError(
                f"{type(self).__name__}: joint action must have {self.spec_.n_agents} entries, "
                f"got shape {np.shape(action)}"
            )
        if (a < 0).any() or (a >= self.spec_.n_actions).any():
            raise ValueError(
                f"{type(self).__name__}: action values must be in [0, {self.spec_.n_actions}), got {a.tolist()}"
            )
        return a
