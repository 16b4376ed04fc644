"""The team abstraction: a cooperative multi-agent task seen as one RLlib agent.

A :class:`TeamEnv` is a plain single-agent ``gymnasium.Env`` whose

* observation is a ``Dict`` of per-agent observations ``obs [n, obs_dim]``, the
  global ``state [state_dim]`` and, for discrete tasks, per-agent
  ``action_mask [n, n_actions]``;
* action is the joint action: ``MultiDiscrete([n_actions] * n)`` for discrete
  tasks, ``Box(-1, 1, (n, n_actions))`` for continuous ones (``n_actions`` is
  then each agent's action dimension; every task maps [-1, 1] to its own
  action range);
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
    n_actions: int  #: discrete: actions per agent; continuous: action dimension per agent
    episode_limit: int
    continuous: bool = False

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "TeamSpec":
        out = {k: int(d[k]) for k in cls.__dataclass_fields__ if k != "continuous"}
        return cls(**out, continuous=bool(d.get("continuous", False)))


#: env_config keys RLlib's EnvContext adds that are not a task's own
RUNNER_KEYS = ("worker_index", "num_workers", "vector_index", "remote", "num_envs")


def task_config(config: dict | None) -> dict:
    """A copy of ``config`` without the keys RLlib's EnvRunners add (:data:`RUNNER_KEYS`)."""
    return {k: v for k, v in dict(config or {}).items() if k not in RUNNER_KEYS}


def team_observation_space(spec: TeamSpec) -> gym.spaces.Dict:
    spaces = {
        K.OBS: gym.spaces.Box(-np.inf, np.inf, (spec.n_agents, spec.obs_dim), np.float32),
        K.STATE: gym.spaces.Box(-np.inf, np.inf, (spec.state_dim,), np.float32),
    }
    if not spec.continuous:
        spaces[K.ACTION_MASK] = gym.spaces.Box(0.0, 1.0, (spec.n_agents, spec.n_actions), np.float32)
    return gym.spaces.Dict(spaces)


def team_action_space(spec: TeamSpec) -> gym.spaces.Space:
    if spec.continuous:
        return gym.spaces.Box(-1.0, 1.0, (spec.n_agents, spec.n_actions), np.float32)
    return gym.spaces.MultiDiscrete([spec.n_actions] * spec.n_agents)


def spec_from_spaces(observation_space: gym.spaces.Dict, action_space: gym.spaces.Space, episode_limit: int = 0) -> TeamSpec:
    """The :class:`TeamSpec` of a team env's spaces (``episode_limit`` is not in the spaces)."""
    n, obs_dim = observation_space[K.OBS].shape
    state_dim = observation_space[K.STATE].shape[0]
    if isinstance(action_space, gym.spaces.Box):
        return TeamSpec(n, obs_dim, state_dim, int(action_space.shape[-1]), episode_limit, continuous=True)
    return TeamSpec(n, obs_dim, state_dim, int(action_space.nvec[0]), episode_limit)


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

    def _pack(self, obs: np.ndarray, state: np.ndarray, mask: np.ndarray | None) -> dict:
        out = {
            K.OBS: np.asarray(obs, np.float32).reshape(self.spec_.n_agents, self.spec_.obs_dim),
            K.STATE: np.asarray(state, np.float32).reshape(self.spec_.state_dim),
        }
        if not self.spec_.continuous:
            out[K.ACTION_MASK] = np.asarray(mask, np.float32).reshape(self.spec_.n_agents, self.spec_.n_actions)
        return out

    def check_action(self, action) -> np.ndarray:
        if self.spec_.continuous:
            a = np.asarray(action, dtype=np.float32)
            n, d = self.spec_.n_agents, self.spec_.n_actions
            if a.size != n * d:
                raise ValueError(
                    f"{type(self).__name__}: joint action must have shape ({n}, {d}), got shape {np.shape(action)}"
                )
            if not np.isfinite(a).all():
                raise ValueError(f"{type(self).__name__}: joint action contains NaN/inf: {a.tolist()}")
            return np.clip(a.reshape(n, d), -1.0, 1.0)
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
