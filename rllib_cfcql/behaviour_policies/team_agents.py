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
from ray.rllib.env.multi_agent_env_runner import MultiAgentEnvRunner
from ray.rllib.env.vector.vector_multi_agent_env import VectorMultiAgentEnv

from rllib_cfcql import keys as K
from rllib_cfcql.envs.base import task_config


class TeamAgents(MultiAgentEnv):
    """The agents of one team task as RLlib sees them: ids, spaces, each agent's observation row, the
    mask check and the recorded transitions. :class:`TeamAgentsEnv` steps one team env behind it;
    :class:`BatchedTeamAgentsEnv` holds one per copy and steps them all at once."""

    def __init__(self, spec):
        import gymnasium as gym

        super().__init__()
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
        """``[..., n, width]``: each agent's own observation, one-hot id and (discrete) action mask
        (a leading env axis passes through)."""
        x = obs[K.OBS]
        parts = [x, np.broadcast_to(self._eye, x.shape[:-1] + (self.n,))]
        if self.masked:
            parts.append(obs[K.ACTION_MASK])
        return np.concatenate(parts, axis=-1).astype(np.float32)

    def _agent_obs(self, obs: dict, rows: np.ndarray | None = None) -> dict:
        rows = self.agent_rows(obs) if rows is None else rows
        return {a: rows[i] for i, a in enumerate(self.agents)}

    def unchecked_action(self, action_dict) -> np.ndarray:
        """The team's joint action from RLlib's per-agent dict, as an array (continuous: clipped to [-1, 1])."""
        if self.spec_.continuous:
            return np.stack([np.clip(np.asarray(action_dict[x], np.float32), -1.0, 1.0) for x in self.agents])
        return np.asarray([int(action_dict[x]) for x in self.agents], np.int64)

    def joint_action(self, action_dict) -> np.ndarray:
        """:meth:`unchecked_action`; on discrete tasks an action the current mask rules out is refused,
        naming the agent."""
        a = self.unchecked_action(action_dict)
        if self.spec_.continuous:
            return a
        mask = self._obs[K.ACTION_MASK]
        bad = np.flatnonzero(mask[np.arange(self.n), a] <= 0)
        if bad.size:
            i = int(bad[0])
            raise ValueError(f"{type(self).__name__}: {self.agents[i]} chose action {int(a[i])}, which its action "
                             f"mask rules out (available: {np.flatnonzero(mask[i] > 0).tolist()})")
        return a

    def started(self, obs: dict, rows: np.ndarray | None = None) -> dict:
        """Bookkeeping of a new episode starting at team observation ``obs`` (``rows``: its
        :meth:`agent_rows`, when already computed); the agents' observations."""
        self._obs, self._episode, self._t = obs, self._episode + 1, 0
        return self._agent_obs(obs, rows)

    def stepped(self, a, nxt: dict, r: float, term: bool, trunc: bool, rows: np.ndarray | None = None):
        """Bookkeeping of one team step (``rows``: ``nxt``'s :meth:`agent_rows`, when already computed);
        RLlib's (obs, rewards, terminateds, truncateds) for it."""
        self.steps += 1
        if self.record:
            self.rows.append((self._episode, self._t, float(r), bool(term), bool(trunc), self._obs, a, nxt))
        self._obs, self._t = nxt, self._t + 1
        rew = {x: float(r) for x in self.agents}
        return self._agent_obs(nxt, rows), rew, {"__all__": bool(term)}, {"__all__": bool(trunc)}


class TeamAgentsEnv(TeamAgents):
    """A team task as an RLlib ``MultiAgentEnv`` (see the module doc).

    ``config``: ``task`` (registry name) plus that task's own env_config. When
    ``record`` is set (by the driver) every team transition is kept, for the
    medium-replay dataset as recorded.
    """

    def __init__(self, config: dict | None = None):
        from rllib_cfcql.envs import make_team_env

        task, config = _task_and_config(config, type(self).__name__)
        self.team = make_team_env(task, config)
        super().__init__(self.team.team_spec)

    def reset(self, *, seed=None, options=None):
        obs, _ = self.team.reset(seed=seed, options=options)
        return self.started(obs), {}

    def step(self, action_dict):
        a = self.joint_action(action_dict)
        nxt, r, term, trunc, _ = self.team.step(a)
        return *self.stepped(a, nxt, r, term, trunc), {}


def _task_and_config(config: dict | None, who: str) -> tuple[str, dict]:
    config = dict(config or {})
    if "task" not in config:
        raise ValueError(f"{who}: env_config must name the team task ('task': ...), got keys {sorted(config)}")
    task = config.pop("task")
    return task, task_config(config)


class BatchedTeamAgentsEnv(VectorMultiAgentEnv):
    """``num_envs`` copies of a team task with a batched version (``rllib_cfcql.envs.BATCHED_TASKS``:
    the SMAX maps) as one RLlib vector env, all copies stepped in one call.

    It keeps the contract of RLlib's ``SyncVectorMultiAgentEnv`` (lists of per-agent dicts, an env that
    ended starts its next episode on the following step); ``envs`` holds one :class:`TeamAgents` per
    copy, for the agents' spaces, the step counts and the recorded transitions. The env runner that
    builds it is :class:`BatchedTeamEnvRunner`.
    """

    def __init__(self, config: dict | None, num_envs: int):
        import gymnasium as gym

        from rllib_cfcql.envs import make_team_batch

        super().__init__()
        task, config = _task_and_config(config, type(self).__name__)
        self.batch = make_team_batch(task, config, num_envs)
        self.num_envs = self.batch.num_envs
        self.envs = [TeamAgents(self.batch.team_spec) for _ in range(self.num_envs)]
        first = self.envs[0]
        self.single_observation_spaces = first.observation_spaces
        self.single_action_spaces = first.action_spaces
        self.single_observation_space = gym.spaces.Dict(self.single_observation_spaces)
        self.single_action_space = gym.spaces.Dict(self.single_action_spaces)
        self.metadata = {"autoreset_mode": "next_step"}
        self._ended = np.zeros(self.num_envs, bool)

    @staticmethod
    def _row(obs: dict, i: int) -> dict:
        return {k: v[i] for k, v in obs.items()}

    def reset(self, *, seed=None, options=None):
        obs = self.batch.reset(seed=seed if seed is None or isinstance(seed, int) else int(seed[0]))
        self._ended[:] = False
        rows = self.envs[0].agent_rows(obs)
        return [e.started(self._row(obs, i), rows[i]) for i, e in enumerate(self.envs)], [{} for _ in self.envs]

    def step(self, actions: list[dict]):
        spec = self.batch.team_spec
        shape = (self.num_envs, spec.n_agents) + ((spec.n_actions,) if spec.continuous else ())
        joint = np.zeros(shape, np.float32 if spec.continuous else np.int64)
        for i, (e, act) in enumerate(zip(self.envs, actions)):
            if not self._ended[i]:
                joint[i] = e.unchecked_action(act)  # the batch checks every env's masks in one go
        fresh = self._ended.copy()
        nxt, r, term, trunc, won = self.batch.step(joint, fresh)
        rows = self.envs[0].agent_rows(nxt)  # [B, n, width]: every env's agent rows at once
        out = [], [], [], [], []
        for i, e in enumerate(self.envs):
            row = self._row(nxt, i)
            if fresh[i]:
                res = (e.started(row, rows[i]), {x: 0.0 for x in e.agents}, {"__all__": False}, {"__all__": False},
                       {})
            else:
                res = (*e.stepped(joint[i], row, r[i], term[i], trunc[i], rows[i]), {"battle_won": bool(won[i])})
            for col, v in zip(out, res):
                col.append(v)
        self._ended = term | trunc
        return out[0], np.array(out[1]), np.array(out[2]), np.array(out[3]), np.array(out[4])


class BatchedTeamEnvRunner(MultiAgentEnvRunner):
    """RLlib's multi-agent env runner on a :class:`BatchedTeamAgentsEnv` (``num_envs_per_env_runner``
    copies stepped in one call) instead of its own one-env-at-a-time ``SyncVectorMultiAgentEnv``.

    It also counts the sampled env / agent / module steps and episodes once per ``sample()`` call, with
    the same keys and totals as RLlib, where RLlib logs four values per agent per env step (about a
    quarter of the sampling time with 5 agents)."""

    def _increase_sampled_metrics(self, num_steps, next_obs, episode):
        counts = self.__dict__.setdefault("_pending_counts", {})
        counts["env"] = counts.get("env", 0) + num_steps
        counts["episodes"] = counts.get("episodes", 0) + int(episode.is_done)
        for aid in next_obs:
            key = (str(aid), episode.module_for(aid))
            counts[key] = counts.get(key, 0) + 1
        return num_steps

    def _flush_counts(self) -> None:
        from ray.rllib.utils.metrics import (
            NUM_AGENT_STEPS_SAMPLED,
            NUM_AGENT_STEPS_SAMPLED_LIFETIME,
            NUM_ENV_STEPS_SAMPLED,
            NUM_ENV_STEPS_SAMPLED_LIFETIME,
            NUM_EPISODES,
            NUM_EPISODES_LIFETIME,
            NUM_MODULE_STEPS_SAMPLED,
            NUM_MODULE_STEPS_SAMPLED_LIFETIME,
        )

        counts, self._pending_counts = self.__dict__.get("_pending_counts", {}), {}
        log = self.metrics.log_value
        if counts.get("env"):
            log(NUM_ENV_STEPS_SAMPLED, counts["env"], reduce="sum")
            log(NUM_ENV_STEPS_SAMPLED_LIFETIME, counts["env"], reduce="lifetime_sum", with_throughput=True)
        if counts.get("episodes"):
            log(NUM_EPISODES, counts["episodes"], reduce="sum")
            log(NUM_EPISODES_LIFETIME, counts["episodes"], reduce="lifetime_sum")
        modules: dict = {}
        for key, c in counts.items():
            if isinstance(key, tuple):
                log((NUM_AGENT_STEPS_SAMPLED, key[0]), c, reduce="sum")
                log((NUM_AGENT_STEPS_SAMPLED_LIFETIME, key[0]), c, reduce="lifetime_sum")
                modules[key[1]] = modules.get(key[1], 0) + c
        for mid, c in modules.items():
            log((NUM_MODULE_STEPS_SAMPLED, mid), c, reduce="sum")
            log((NUM_MODULE_STEPS_SAMPLED_LIFETIME, mid), c, reduce="lifetime_sum")

    def sample(self, *args, **kwargs):
        try:
            return super().sample(*args, **kwargs)
        finally:
            self._flush_counts()

    def make_env(self):
        if self.env is not None:
            try:
                self.env.close()
            except Exception:  # noqa: BLE001 - closing the old env must not stop the new one being built
                pass
        self.env = BatchedTeamAgentsEnv(dict(self.config.env_config), self.config.num_envs_per_env_runner)
        self.num_envs = self.env.num_envs
        self._needs_initial_reset = True


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
