"""Wrap any PettingZoo ``ParallelEnv`` that has ``state()`` as a :class:`TeamEnv`.

The team reward is the mean of the agents' rewards (equal to the shared reward
when, as in cooperative tasks, all agents receive the same one).

Discrete agents: action masks come from ``infos[agent]["action_mask"]`` or
``obs[agent]["action_mask"]`` when the env provides them, otherwise every
action is available. An agent that is done before the others keeps its last
observation and gets only action 0 (the no-op) available.

Continuous agents (``Box`` action spaces): the team action is ``[-1, 1]^d``
per agent; it is mapped linearly onto each agent's box, or through an
explicit ``action_adapter`` (e.g. MPE's 5-way force vector from a 2-D
action). Agents with smaller observation or action spaces are zero-padded to
the largest (padded action dimensions are ignored). Agents that are done
send no action.
"""

from __future__ import annotations

from typing import Callable

import gymnasium as gym
import numpy as np

from rllib_cfcql.envs.base import TeamEnv, TeamSpec, task_config

ActionAdapter = Callable[[str, np.ndarray], np.ndarray]


class PettingZooTeamEnv(TeamEnv):
    def __init__(
        self,
        make_env: Callable[[], object],
        episode_limit: int,
        *,
        agent_ids: list[str] | None = None,
        action_adapter: ActionAdapter | None = None,
        action_dim: int | None = None,
    ):
        """``agent_ids``: the learned team (default: every agent); the others must be driven
        by :meth:`other_actions` (a subclass's fixed policy). ``action_adapter(agent, u)``
        maps a team action ``u ∈ [-1, 1]^action_dim`` to the env's action for ``agent``."""
        self.par_env = make_env()
        if not hasattr(self.par_env, "state"):
            raise TypeError(f"{type(self.par_env).__name__}: a ParallelEnv with state() is required")
        self.agent_ids = list(agent_ids or self.par_env.possible_agents)
        spaces = [self.par_env.observation_space(a) for a in self.agent_ids]
        spaces = [sp["observation"] if isinstance(sp, gym.spaces.Dict) else sp for sp in spaces]
        obs_dim = max(int(np.prod(sp.shape)) for sp in spaces)
        acts = [self.par_env.action_space(a) for a in self.agent_ids]
        continuous = isinstance(acts[0], gym.spaces.Box)
        if continuous:
            if not all(isinstance(sp, gym.spaces.Box) for sp in acts):
                raise TypeError(f"all agents must have Box actions, got {acts}")
            n_actions = int(action_dim or max(int(np.prod(sp.shape)) for sp in acts))
        else:
            if not all(isinstance(sp, gym.spaces.Discrete) for sp in acts):
                raise TypeError(f"only Discrete or Box per-agent actions are supported, got {acts}")
            if len({sp.n for sp in acts}) != 1:
                raise TypeError("all agents must have the same number of actions")
            n_actions = int(acts[0].n)
        self.action_adapter = action_adapter
        obs0, _ = self.par_env.reset(seed=0)
        state_dim = int(np.asarray(self._state(obs0)).size)
        self._init_spaces(
            TeamSpec(
                n_agents=len(self.agent_ids),
                obs_dim=obs_dim,
                state_dim=state_dim,
                n_actions=n_actions,
                episode_limit=int(episode_limit),
                continuous=continuous,
            )
        )
        self._last_obs = {}
        self._done = {}
        self._raw_obs: dict = {}

    def _env_action(self, agent: str, u: np.ndarray):
        if self.action_adapter is not None:
            return self.action_adapter(agent, u)
        space = self.par_env.action_space(agent)
        size = int(np.prod(space.shape))
        u = np.asarray(u[:size], np.float64)
        low, high = space.low.reshape(-1), space.high.reshape(-1)
        return (low + (u + 1.0) * 0.5 * (high - low)).astype(space.dtype).reshape(space.shape)

    def other_actions(self) -> dict:
        """Actions of the agents outside the learned team (fixed policies); none by default."""
        return {}

    def _collect(self, obs: dict, infos: dict) -> dict:
        n, A = self.spec_.n_agents, self.spec_.n_actions
        o = np.zeros((n, self.spec_.obs_dim), np.float32)
        mask = np.ones((n, A), np.float32)
        self._raw_obs = obs
        for i, a in enumerate(self.agent_ids):
            if a in obs:
                ob = obs[a]
                if isinstance(ob, dict):
                    if "action_mask" in ob:
                        mask[i] = np.asarray(ob["action_mask"], np.float32)
                    ob = ob["observation"]
                ob = np.asarray(ob, np.float32).reshape(-1)
                if ob.size < self.spec_.obs_dim:
                    ob = np.concatenate([ob, np.zeros(self.spec_.obs_dim - ob.size, np.float32)])
                self._last_obs[a] = ob
            if a in infos and isinstance(infos[a], dict) and "action_mask" in infos[a]:
                mask[i] = np.asarray(infos[a]["action_mask"], np.float32)
            if self._done.get(a, False):
                mask[i] = 0.0
                mask[i, 0] = 1.0
            o[i] = self._last_obs[a]
        return self._pack(o, np.asarray(self._state(obs), np.float32), None if self.spec_.continuous else mask)

    def _state(self, obs: dict) -> np.ndarray:
        """The global state after the step that returned ``obs`` (the env's ``state()``)."""
        return self.par_env.state()

    def reset(self, *, seed=None, options=None):
        obs, infos = self.par_env.reset(seed=seed, options=options)
        self._done = {a: False for a in self.agent_ids}
        self._last_obs = {}
        return self._collect(obs, infos), {}

    def step(self, action):
        a = self.check_action(action)
        live = [ag for ag in self.agent_ids if not self._done[ag]]
        if self.spec_.continuous:
            actions = {ag: self._env_action(ag, a[self.agent_ids.index(ag)]) for ag in live if ag in self.par_env.agents}
        else:
            actions = {ag: int(a[self.agent_ids.index(ag)]) for ag in live if ag in self.par_env.agents}
        actions.update({ag: act for ag, act in self.other_actions().items() if ag in self.par_env.agents})
        obs, rew, term, trunc, infos = self.par_env.step(actions)
        reward = float(np.mean([rew.get(ag, 0.0) for ag in self.agent_ids]))
        for ag in self.agent_ids:
            if term.get(ag, False) or trunc.get(ag, False):
                self._done[ag] = True
        terminated = all(term.get(ag, False) for ag in live) if live else True
        truncated = (not terminated) and (
            all(self._done.values()) or any(trunc.get(ag, False) for ag in live)
        )
        return self._collect(obs, infos), reward, bool(terminated), bool(truncated), {}

    def close(self):
        self.par_env.close()


def mpe_force_from_2d(agent: str, u: np.ndarray) -> np.ndarray:
    """MPE's continuous action is a 5-vector [no-op, left, right, down, up] of forces in
    [0, 1]; a team action u ∈ [-1, 1]² (the 2-D action OMAR's and CFCQL's MPE data use)
    becomes [0, max(−u_x, 0), max(u_x, 0), max(−u_y, 0), max(u_y, 0)]."""
    ux, uy = float(u[0]), float(u[1])
    return np.array([0.0, max(-ux, 0.0), max(ux, 0.0), max(-uy, 0.0), max(uy, 0.0)], np.float32)


class MPEStateFromObs:
    """Mixin for mpe2 tasks: ``state()`` of an mpe2 env is the concatenation of every
    agent's observation (``possible_agents`` order, float32), which the step has just
    computed, so it is rebuilt from ``obs`` instead of simulated again (the same values,
    and half the observation work per step). Falls back to ``state()`` when an agent's
    observation is missing."""

    def _state(self, obs: dict) -> np.ndarray:
        agents = self.par_env.possible_agents
        if all(a in obs for a in agents):
            return np.concatenate([np.asarray(obs[a], np.float32).reshape(-1) for a in agents])
        return self.par_env.state()


def _mpe_kwargs(config: dict, name: str, allowed: dict) -> dict:
    config = task_config(config)
    unknown = sorted(set(config) - set(allowed))
    if unknown:
        raise ValueError(f"{name}: unknown env_config keys {unknown}; expected {sorted(allowed)}")
    return {k: type(v)(config.get(k, v)) for k, v in allowed.items()}


class MPESpreadEnv(MPEStateFromObs, PettingZooTeamEnv):
    """mpe2 ``simple_spread_v3`` (cooperative navigation).

    ``continuous_actions=False`` (default): 5 discrete moves. ``True``: each agent's
    action is u ∈ [-1, 1]², mapped by :func:`mpe_force_from_2d`. Episode length
    ``max_cycles`` (25, as in the paper's MPE datasets).
    """

    def __init__(self, config: dict | None = None):
        kw = _mpe_kwargs(config, "mpe_spread",
                         {"n_agents": 3, "max_cycles": 25, "local_ratio": 0.5, "continuous_actions": False})
        from mpe2 import simple_spread_v3

        cont = kw["continuous_actions"]
        super().__init__(
            lambda: simple_spread_v3.parallel_env(
                N=kw["n_agents"], local_ratio=kw["local_ratio"], max_cycles=kw["max_cycles"], continuous_actions=cont
            ),
            episode_limit=kw["max_cycles"],
            action_adapter=mpe_force_from_2d if cont else None,
            action_dim=2 if cont else None,
        )

    def _head_for(self, targets: list[int]) -> np.ndarray:
        if self.spec_.continuous:
            return self._steer_to(targets)
        acts = np.zeros(self.spec_.n_agents, np.int64)
        for i, a in enumerate(self.agent_ids):
            o = self._last_obs[a]
            k = targets[i]
            rel = o[4 + 2 * k : 6 + 2 * k] - 0.5 * o[0:2]  # landmark rel. position, damped by own velocity
            if np.abs(rel).max() < 0.05:
                acts[i] = 0
            elif abs(rel[0]) > abs(rel[1]):
                acts[i] = 2 if rel[0] > 0 else 1
            else:
                acts[i] = 4 if rel[1] > 0 else 3
        return acts

    def _steer_to(self, targets: list[int]) -> np.ndarray:
        """Continuous: a PD steer toward each agent's target landmark, clipped to [-1, 1]²."""
        obs = np.stack([self._last_obs[a] for a in self.agent_ids])
        return spread_steer(obs, np.asarray(targets)).astype(np.float32)

    def medium_action(self) -> np.ndarray:
        """Scripted medium policy: every agent heads for the landmark nearest to itself
        (greedy, uncoordinated: agents often share a landmark and leave one uncovered)."""
        targets = []
        for a in self.agent_ids:
            o = self._last_obs[a]
            d = [np.linalg.norm(o[4 + 2 * k : 6 + 2 * k]) for k in range(self.spec_.n_agents)]
            targets.append(int(np.argmin(d)))
        return self._head_for(targets)

    def hold_action(self) -> np.ndarray:
        """Every agent applies no force (discrete no-op 0; continuous u = 0), so it drifts to rest
        (the ``hesitant:<q>`` behaviour's other move)."""
        if self.spec_.continuous:
            return np.zeros((self.spec_.n_agents, 2), np.float32)
        return np.zeros(self.spec_.n_agents, np.int64)

    def expert_action(self) -> np.ndarray:
        """Scripted expert: agent i heads for landmark i (greedy 4-way moves), a fixed
        assignment that covers every landmark.

        Observation layout of simple_spread: [vel(2), pos(2), landmark rel pos
        (2*N), other agents rel pos (2*(N-1)), comm]. Discrete actions:
        0 no-op, 1 left, 2 right, 3 down, 4 up.
        """
        return self._head_for(list(range(self.spec_.n_agents)))


def spread_steer(obs: np.ndarray, targets: np.ndarray, gain: float = 4.0, damping: float = 1.0) -> np.ndarray:
    """simple_spread's scripted continuous steer from observations alone: obs [..., n, O] laid out [vel(2),
    pos(2), landmark rel. pos (2n), ...], targets [..., n] (each agent's landmark) -> clip(gain·(landmark −
    pos) − damping·vel, −1, 1) [..., n, 2]. The expert is ``targets = arange(n)``."""
    targets = np.broadcast_to(targets, obs.shape[:-1])
    rel = np.take_along_axis(obs[..., 4:], (2 * targets)[..., None] + np.arange(2), axis=-1)
    return np.clip(gain * rel - damping * obs[..., 0:2], -1.0, 1.0)
