"""Wrap any PettingZoo ``ParallelEnv`` that has ``state()`` as a :class:`TeamEnv`.

The team reward is the mean of the agents' rewards (equal to the shared reward
when, as in cooperative tasks, all agents receive the same one). Action masks
come from ``infos[agent]["action_mask"]`` or ``obs[agent]["action_mask"]`` when
the env provides them, otherwise every action is available. An agent that is
done before the others keeps its last observation and gets only action 0
(the no-op) available.
"""

from __future__ import annotations

from typing import Callable

import gymnasium as gym
import numpy as np

from rllib_cfcql.envs.base import TeamEnv, TeamSpec


class PettingZooTeamEnv(TeamEnv):
    def __init__(self, make_env: Callable[[], object], episode_limit: int):
        self.par_env = make_env()
        if not hasattr(self.par_env, "state"):
            raise TypeError(f"{type(self.par_env).__name__}: a ParallelEnv with state() is required")
        self.agent_ids = list(self.par_env.possible_agents)
        first = self.agent_ids[0]
        obs_space = self.par_env.observation_space(first)
        act_space = self.par_env.action_space(first)
        if isinstance(obs_space, gym.spaces.Dict):
            obs_space = obs_space["observation"]
        if not isinstance(act_space, gym.spaces.Discrete):
            raise TypeError(f"only Discrete per-agent actions are supported, got {act_space}")
        for a in self.agent_ids:
            if self.par_env.action_space(a).n != act_space.n:
                raise TypeError("all agents must have the same number of actions")
        self.par_env.reset(seed=0)
        state_dim = int(np.asarray(self.par_env.state()).size)
        self._init_spaces(
            TeamSpec(
                n_agents=len(self.agent_ids),
                obs_dim=int(np.prod(obs_space.shape)),
                state_dim=state_dim,
                n_actions=int(act_space.n),
                episode_limit=int(episode_limit),
            )
        )
        self._last_obs = {}
        self._done = {}

    def _collect(self, obs: dict, infos: dict) -> dict:
        n, A = self.spec_.n_agents, self.spec_.n_actions
        o = np.zeros((n, self.spec_.obs_dim), np.float32)
        mask = np.ones((n, A), np.float32)
        for i, a in enumerate(self.agent_ids):
            if a in obs:
                ob = obs[a]
                if isinstance(ob, dict):
                    if "action_mask" in ob:
                        mask[i] = np.asarray(ob["action_mask"], np.float32)
                    ob = ob["observation"]
                self._last_obs[a] = np.asarray(ob, np.float32).reshape(-1)
            if a in infos and isinstance(infos[a], dict) and "action_mask" in infos[a]:
                mask[i] = np.asarray(infos[a]["action_mask"], np.float32)
            if self._done.get(a, False):
                mask[i] = 0.0
                mask[i, 0] = 1.0
            o[i] = self._last_obs[a]
        return self._pack(o, np.asarray(self.par_env.state(), np.float32), mask)

    def reset(self, *, seed=None, options=None):
        obs, infos = self.par_env.reset(seed=seed, options=options)
        self._done = {a: False for a in self.agent_ids}
        self._last_obs = {}
        return self._collect(obs, infos), {}

    def step(self, action):
        a = self.check_action(action)
        live = [ag for ag in self.agent_ids if not self._done[ag]]
        actions = {ag: int(a[self.agent_ids.index(ag)]) for ag in live if ag in self.par_env.agents}
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


class MPESpreadEnv(PettingZooTeamEnv):
    """mpe2 ``simple_spread_v3`` (cooperative navigation), discrete actions."""

    def __init__(self, config: dict | None = None):
        config = dict(config or {})
        for k in ("worker_index", "num_workers", "vector_index"):
            config.pop(k, None)
        n = int(config.pop("n_agents", 3))
        max_cycles = int(config.pop("max_cycles", 25))
        local_ratio = float(config.pop("local_ratio", 0.5))
        if config:
            raise ValueError(
                f"mpe_spread: unknown env_config keys {sorted(config)}; "
                "expected n_agents, max_cycles, local_ratio"
            )
        from mpe2 import simple_spread_v3

        super().__init__(
            lambda: simple_spread_v3.parallel_env(
                N=n, local_ratio=local_ratio, max_cycles=max_cycles, continuous_actions=False
            ),
            episode_limit=max_cycles,
        )

    def _head_for(self, targets: list[int]) -> np.ndarray:
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

    def medium_action(self) -> np.ndarray:
        """Scripted medium policy: every agent heads for the landmark nearest to itself
        (greedy, uncoordinated: agents often share a landmark and leave one uncovered)."""
        targets = []
        for a in self.agent_ids:
            o = self._last_obs[a]
            d = [np.linalg.norm(o[4 + 2 * k : 6 + 2 * k]) for k in range(self.spec_.n_agents)]
            targets.append(int(np.argmin(d)))
        return self._head_for(targets)

    def expert_action(self) -> np.ndarray:
        """Scripted expert: agent i heads for landmark i (greedy 4-way moves), a fixed
        assignment that covers every landmark.

        Observation layout of simple_spread: [vel(2), pos(2), landmark rel pos
        (2*N), other agents rel pos (2*(N-1)), comm]. Discrete actions:
        0 no-op, 1 left, 2 right, 3 down, 4 up.
        """
        return self._head_for(list(range(self.spec_.n_agents)))
