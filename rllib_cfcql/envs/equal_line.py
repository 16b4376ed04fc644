"""Equal_Line (CFCQL paper, appendix C.1).

``n`` agents start uniformly in ``[0, 2]`` on a line ``[0, L]`` with
``L = max(10, 2n)``. Each agent picks one of 11 moves
``[0, -0.01, -0.05, -0.1, -0.5, -1, 0.01, 0.05, 0.1, 0.5, 1]`` per step
(positions are clipped to the line). The shared reward is the increase of the
minimum pairwise distance, scaled so that perfectly equal spacing
(``L / (n - 1)``) is worth 10 in total:

    r_t = 10 * (d_min(t) - d_min(t-1)) / (L / (n - 1)),  d_min(-1) = 0

so an episode's return is ``10 * d_min(final) / (L / (n-1))`` in ``[0, 10]``.
Agent i observes its own position followed by all positions, divided by
``L`` (the reference gives every agent only the vector of all positions and
lets the one-hot agent id pick its own entry; leading with the own position
makes the task learnable by small MLP agents and changes nothing else). The
state is the vector of all positions. ``boundary_mask=True`` additionally marks moves that would
leave the line as unavailable (off by default, as in the reference), which
gives a task with real action masks.

``time_limit`` says what the episode limit is. ``"terminal"`` (the default, as in the reference,
which returns ``done=True`` at the limit) ends the episode as a true terminal: the task is scored
on the spacing reached by step ``episode_limit``, so a value learner bootstraps nothing after the
last step and Q is anchored by the final reward (Q ≤ 10 exactly). ``"truncate"`` reports a
time-limit cut instead, and learners bootstrap past it as if the team kept going.

``reward`` picks the shared reward. ``"min_spacing"`` (the default) is the reference's, above.
``"slot_distance"`` is a decomposable variant made to test the paper's n-scaling claim
(docs/DATASETS_DESIGN.md): every step costs the agents' mean distance to their own slot
``g_i = i·L/(n−1)`` as a fraction of the line, times 10,

    r_t = −(10 / n) · Σ_i |x_i(t) − g_i| / L

so each agent's part of the team's reward depends on its own moves only, a step's reward is in
``[−10, 0]`` and the all-expert team is the optimum. Single agents that improve on their behaviour
improve the team's return, whatever the others do; under ``"min_spacing"`` they collide.
"""

from __future__ import annotations

import numpy as np

from rllib_cfcql.envs.base import TeamEnv, TeamSpec, task_config

REWARDS = ("min_spacing", "slot_distance")
MOVES = np.array([0, -0.01, -0.05, -0.1, -0.5, -1, 0.01, 0.05, 0.1, 0.5, 1], dtype=np.float64)


class EqualLineEnv(TeamEnv):
    def __init__(self, config: dict | None = None):
        config = task_config(config)
        self.n_agents = int(config.pop("n_agents", 3))
        self.episode_limit = int(config.pop("episode_limit", 50))
        self.boundary_mask = bool(config.pop("boundary_mask", False))
        self.time_limit = str(config.pop("time_limit", "terminal"))
        self.reward = str(config.pop("reward", "min_spacing"))
        if config:
            raise ValueError(
                f"equal_line: unknown env_config keys {sorted(config)}; "
                "expected n_agents, episode_limit, boundary_mask, time_limit, reward"
            )
        if self.reward not in REWARDS:
            raise ValueError(f"equal_line: reward must be one of {list(REWARDS)}, got {self.reward!r}")
        if self.time_limit not in ("terminal", "truncate"):
            raise ValueError(f"equal_line: time_limit must be 'terminal' or 'truncate', got {self.time_limit!r}")
        if not 2 <= self.n_agents <= 100:
            raise ValueError(f"equal_line: n_agents must be in [2, 100], got {self.n_agents}")
        if self.episode_limit < 1:
            raise ValueError(f"equal_line: episode_limit must be >= 1, got {self.episode_limit}")
        self.line_length = float(max(10, 2 * self.n_agents))
        self.slots = np.linspace(0.0, self.line_length, self.n_agents)  # the expert's slots i·L/(n−1)
        self._init_spaces(
            TeamSpec(
                n_agents=self.n_agents,
                obs_dim=self.n_agents + 1,
                state_dim=self.n_agents,
                n_actions=len(MOVES),
                episode_limit=self.episode_limit,
            )
        )
        self._rng = np.random.default_rng()
        self.pos = np.zeros(self.n_agents)
        self.t = 0
        self.last_min_dis = 0.0

    # -- helpers -------------------------------------------------------------
    def _min_dis(self) -> float:
        return float(np.min(np.diff(np.sort(self.pos))))

    def _mask(self) -> np.ndarray:
        if not self.boundary_mask:
            return np.ones((self.n_agents, len(MOVES)))
        nxt = self.pos[:, None] + MOVES[None, :]
        return ((nxt >= 0.0) & (nxt <= self.line_length)).astype(np.float64)

    def _observe(self) -> dict:
        v = self.pos / self.line_length
        obs = np.concatenate([v[:, None], np.tile(v, (self.n_agents, 1))], axis=1)  # [n, 1 + n]
        return self._pack(obs, v, self._mask())

    # -- gymnasium API -------------------------------------------------------
    def reset(self, *, seed=None, options=None):
        if seed is not None:
            self._rng = np.random.default_rng(seed)
        self.t = 0
        self.last_min_dis = 0.0
        self.pos = self._rng.random(self.n_agents) * 2.0
        return self._observe(), {}

    def step(self, action):
        a = self.check_action(action)
        self.t += 1
        self.pos = np.clip(self.pos + MOVES[a], 0.0, self.line_length)
        if self.reward == "slot_distance":
            reward = -10.0 * float(np.mean(np.abs(self.pos - self.slots))) / self.line_length
        else:
            d = self._min_dis()
            reward = 10.0 * (d - self.last_min_dis) / (self.line_length / (self.n_agents - 1))
            self.last_min_dis = d
        at_limit = self.t >= self.episode_limit
        terminal = self.time_limit == "terminal"
        return self._observe(), float(reward), at_limit and terminal, at_limit and not terminal, {}

    # -- scripted behaviour (used to build datasets) -------------------------
    def _head_for(self, slots: np.ndarray) -> np.ndarray:
        nxt = np.clip(self.pos[:, None] + MOVES[None, :], 0.0, self.line_length)
        cost = np.abs(nxt - slots[:, None]) + (1.0 - self._mask()) * 1e9
        return np.argmin(cost, axis=1)

    def medium_action(self) -> np.ndarray:
        """Scripted medium policy: like the expert but on a line compressed to half its
        length (slots i·L/(2(n−1))), so the team ends at half the optimal spacing (return ≈ 5)."""
        return self._head_for(np.linspace(0.0, self.line_length / 2, self.n_agents))

    def slot_action(self, assignment: np.ndarray) -> np.ndarray:
        """Agent i heads for the expert's slot ``assignment[i]`` (slots j·L/(n−1)); the team ends
        perfectly spread exactly when ``assignment`` is a permutation."""
        return self._head_for(self.slots[np.asarray(assignment)])

    def hold_action(self) -> np.ndarray:
        """Every agent holds still (move 0)."""
        return np.zeros(self.n_agents, dtype=np.int64)

    def expert_action(self) -> np.ndarray:
        """Scripted expert: agent i heads for slot i·L/(n−1) (a convention fixed by id)
        with the move that gets closest to it; the slots are equally spaced, so the
        team ends perfectly spread (return 10)."""
        return self._head_for(self.slots)
