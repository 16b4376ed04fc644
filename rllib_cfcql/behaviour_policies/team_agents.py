"""A team task as an RLlib multi-agent env, and a PPO RLModule that respects action masks.

These are what ``rllib-cfcql behaviour train-shared`` trains the project's
behaviour policies with (RLlib PPO, one policy shared by the team):

* :class:`TeamAgentsEnv` — any registered team task as an RLlib
  ``MultiAgentEnv``: agents ``agent_<i>``; agent ``i`` observes its own task
  observation followed by the one-hot of ``i`` (so one shared network can
  still specialise by agent) and, on discrete tasks, followed by its action
  mask; every agent receives the team reward. An action the mask rules out is
  an error (it names the agent, the action and the available ones), so a
  training run cannot silently act outside the mask.
* :class:`MaskedPPOTorchRLModule` — RLlib's default PPO torch module whose
  networks see the observation *without* the trailing mask; the mask is
  applied to the action logits (``log(mask)``, clamped at ``FLOAT_MIN``) in the
  exploration, inference and train passes, so PPO neither samples nor puts
  probability on unavailable actions, and its ratio/entropy terms are those of
  the masked distribution. With an all-ones mask it is exactly the default
  module. The actor (encoder + pi head) is the plain MLP that
  :mod:`rllib_cfcql.behaviour_policies.checkpoint` saves; masks are applied there
  again at collection time.
"""

from __future__ import annotations

import numpy as np
from ray.rllib.algorithms.ppo.torch.default_ppo_torch_rl_module import (
    DefaultPPOTorchRLModule,
)
from ray.rllib.core.columns import Columns
from ray.rllib.env.multi_agent_env import MultiAgentEnv

from rllib_cfcql import keys as K
from rllib_cfcql.envs.base import task_config


class TeamAgentsEnv(MultiAgentEnv):
    """A team task as an RLlib ``MultiAgentEnv`` (see the module doc).

    ``config``: ``task`` (registry name) plus that task's own env_config. When
    ``record`` is set (by the driver) every team transition is kept, for the
    medium-replay dataset as recorded.
    """

    def __init__(self, config: dict | None = None):
        import gymnasium as gym

        from rllib_cfcql.envs import make_team_env

        super().__init__()
        config = dict(config or {})
        if "task" not in config:
            raise ValueError(f"TeamAgentsEnv: env_config must name the team task ('task': ...), got keys {sorted(config)}")
        task = config.pop("task")
        config = task_config(config)
        self.team = make_team_env(task, config)
        spec = self.team.team_spec
        self.spec_ = spec
        self.n = spec.n_agents
        self.masked = not spec.continuous
        self.agents = self.possible_agents = [f"agent_{i}" for i in range(self.n)]
        width = spec.obs_dim + self.n + (spec.n_actions if self.masked else 0)
        obs_space = gym.spaces.Box(-np.inf, np.inf, (width,), np.float32)
        act_space = (gym.spaces.Box(-1.0, 1.0, (spec.n_actions,), np.float32) if spec.continuous
                     else gym.spaces.Discrete(spec.n_actions))
        self.observation_spaces = {a: obs_space for a in self.agents}
        self.action_spaces = {a: act_space for a in self.agents}
        self._eye = np.eye(self.n, dtype=np.float32)
        self.record = False
        self.rows: list[tuple] = []
        self.steps = 0
        self._episode = -1
        self._t = 0
        self._obs = None

    def agent_rows(self, obs: dict) -> np.ndarray:
        """``[n, width]``: each agent's own observation, one-hot id and (discrete) action mask."""
        parts = [obs[K.OBS], self._eye]
        if self.masked:
            parts.append(obs[K.ACTION_MASK])
        return np.concatenate(parts, axis=1).astype(np.float32)

    def _agent_obs(self, obs: dict) -> dict:
        rows = self.agent_rows(obs)
        return {a: rows[i] for i, a in enumerate(self.agents)}

    def reset(self, *, seed=None, options=None):
        obs, _ = self.team.reset(seed=seed, options=options)
        self._obs, self._episode, self._t = obs, self._episode + 1, 0
        return self._agent_obs(obs), {}

    def step(self, action_dict):
        if self.spec_.continuous:
            a = np.stack([np.clip(np.asarray(action_dict[x], np.float32), -1.0, 1.0) for x in self.agents])
        else:
            a = np.asarray([int(action_dict[x]) for x in self.agents], np.int64)
            mask = self._obs[K.ACTION_MASK]
            bad = np.flatnonzero(mask[np.arange(self.n), a] <= 0)
            if bad.size:
                i = int(bad[0])
                raise ValueError(f"TeamAgentsEnv: {self.agents[i]} chose action {int(a[i])}, which its action mask "
                                 f"rules out (available: {np.flatnonzero(mask[i] > 0).tolist()})")
        nxt, r, term, trunc, _ = self.team.step(a)
        self.steps += 1
        if self.record:
            self.rows.append((self._episode, self._t, float(r), bool(term), bool(trunc), self._obs, a, nxt))
        self._obs, self._t = nxt, self._t + 1
        rew = {x: float(r) for x in self.agents}
        return self._agent_obs(nxt), rew, {"__all__": bool(term)}, {"__all__": bool(trunc)}, {}


class MaskedPPOTorchRLModule(DefaultPPOTorchRLModule):
    """RLlib's default PPO torch module for a ``Discrete(A)`` action space whose observation
    ends with an ``A``-wide action mask (``TeamAgentsEnv`` on a discrete task): the networks
    are built for, and see, the observation without the mask; the logits get
    ``clamp(log(mask), FLOAT_MIN)`` added."""

    def __init__(self, *args, observation_space=None, action_space=None, **kwargs):
        import gymnasium as gym

        if not isinstance(action_space, gym.spaces.Discrete):
            raise ValueError(f"MaskedPPOTorchRLModule needs a Discrete action space, got {action_space}")
        a = int(action_space.n)
        if not isinstance(observation_space, gym.spaces.Box) or len(observation_space.shape) != 1 \
                or observation_space.shape[0] <= a:
            raise ValueError(f"MaskedPPOTorchRLModule: the observation must be a 1-D Box ending with the {a}-wide "
                             f"action mask, got {observation_space}")
        self.mask_dim = a
        self.full_observation_space = observation_space
        inner = gym.spaces.Box(observation_space.low[:-a], observation_space.high[:-a], dtype=observation_space.dtype)
        super().__init__(*args, observation_space=inner, action_space=action_space, **kwargs)

    def setup(self):
        super().setup()
        self.observation_space = self.full_observation_space  # what the env runner feeds in

    def _split(self, batch: dict) -> tuple[dict, "torch.Tensor"]:  # noqa: F821
        x = batch[Columns.OBS]
        if x.shape[-1] != self.full_observation_space.shape[0]:
            raise ValueError(f"MaskedPPOTorchRLModule: expected observations of width "
                             f"{self.full_observation_space.shape[0]} (observation + {self.mask_dim}-wide mask), "
                             f"got {tuple(x.shape)}")
        inner = dict(batch)
        inner[Columns.OBS] = x[..., : -self.mask_dim]
        return inner, x[..., -self.mask_dim:]

    @staticmethod
    def _mask(out: dict, mask) -> dict:
        import torch
        from ray.rllib.utils.torch_utils import FLOAT_MIN

        out[Columns.ACTION_DIST_INPUTS] = out[Columns.ACTION_DIST_INPUTS] + torch.clamp(torch.log(mask), min=FLOAT_MIN)
        return out

    def _forward(self, batch, **kwargs):
        inner, mask = self._split(batch)
        return self._mask(super()._forward(inner, **kwargs), mask)

    def _forward_train(self, batch, **kwargs):
        inner, mask = self._split(batch)
        return self._mask(super()._forward_train(inner, **kwargs), mask)

    def compute_values(self, batch, embeddings=None):
        if embeddings is None:
            batch, _ = self._split(batch)
        return super().compute_values(batch, embeddings)
