"""Adversarial MPE tasks with a learned predator team and fixed scripted opponents.

``mpe_tag`` (mpe2 ``simple_tag_v3``) and ``mpe_world`` (mpe2
``simple_world_comm_v3``): the adversaries are the cooperative team that is
learned; the good agents (the prey) are part of the environment and run a
FIXED scripted policy that ships with this module (see each class). That
policy draws its randomness from a generator seeded by ``reset(seed)``, so a
seeded episode is reproducible for a given sequence of team actions.

Both tasks have a discrete variant (5 moves per predator: 0 no-op, 1 left,
2 right, 3 down, 4 up) and a continuous one (``continuous_actions=True``):
u ∈ [-1, 1]² per predator, mapped by
:func:`~rllib_cfcql.envs.pettingzoo_team.mpe_force_from_2d`.

The scripted team behaviours used to make datasets (``expert_action`` and
``medium_action``) read the true positions from the simulator: they stand
for a trained team and are not constrained to each agent's observation.
"""

from __future__ import annotations

import math

import gymnasium as gym
import numpy as np

from rllib_cfcql.envs.pettingzoo_team import (
    MPEStateFromObs,
    PettingZooTeamEnv,
    _mpe_kwargs,
    mpe_force_from_2d,
)

#: unit vectors of the discrete moves 1..4 (left, right, down, up)
_MOVE_DIRS = np.array([[-1.0, 0.0], [1.0, 0.0], [0.0, -1.0], [0.0, 1.0]])
_ARENA = 0.85  # the scripted opponents are pushed back inside |x|, |y| < _ARENA


def _discrete_move(d: np.ndarray, deadzone: float = 1e-6) -> int:
    """The move (1..4) best aligned with the direction ``d``; 0 (no-op) if ``d`` ≈ 0."""
    if float(np.abs(d).max()) < deadzone:
        return 0
    return int(np.argmax(_MOVE_DIRS @ d)) + 1


class _MPEPursuitTeam(MPEStateFromObs, PettingZooTeamEnv):
    """Shared machinery: world access, the opponents' seeded generator, steering."""

    _SALT = 0  #: decorrelates the opponents' generator from the simulator's (per task)
    _OPP_EPS = 0.1  #: probability of a uniformly random move of a scripted opponent (per step)
    _OPP_NOISE = 0.3  #: std of the Gaussian direction noise of a scripted opponent

    def _setup(self) -> None:
        self._opp_rng = np.random.default_rng([0, self._SALT])
        self._world = self.par_env.unwrapped.world
        by_name = {a.name: a for a in self._world.agents}
        self._team = [by_name[a] for a in self.agent_ids]
        self._others = [a for a in self._world.agents if a.name not in set(self.agent_ids)]
        self._obstacles = [lm for lm in self._world.landmarks if lm.collide]

    def reset(self, *, seed=None, options=None):
        if seed is not None:
            self._opp_rng = np.random.default_rng([int(seed), self._SALT])
        return super().reset(seed=seed, options=options)

    # -- positions ------------------------------------------------------------
    def _pos(self, agents) -> np.ndarray:
        return np.array([a.state.p_pos for a in agents], np.float64).reshape(-1, 2)

    def _vel(self, agents) -> np.ndarray:
        return np.array([a.state.p_vel for a in agents], np.float64).reshape(-1, 2)

    # -- the scripted opponents -------------------------------------------------
    def _opponent_action(self, direction: np.ndarray):
        """An opponent's env action heading along ``direction`` (with the ε / noise of the fixed policy)."""
        rng = self._opp_rng
        d = np.asarray(direction, np.float64) + rng.normal(0.0, self._OPP_NOISE, 2) * np.linalg.norm(direction)
        if self.spec_.continuous:
            if rng.random() < self._OPP_EPS:
                return mpe_force_from_2d("", rng.uniform(-1.0, 1.0, 2))
            u = d / max(float(np.abs(d).max()), 1e-6)
            return mpe_force_from_2d("", u)
        if rng.random() < self._OPP_EPS:
            return int(rng.integers(0, 5))
        return _discrete_move(d)

    @staticmethod
    def _flee_direction(me: np.ndarray, hunters: np.ndarray, obstacles: np.ndarray) -> np.ndarray:
        """Unit-ish direction away from the hunters (inverse-square weighted, nearest dominates;
        0 without hunters), pushed back from the arena's edges and around obstacles."""
        rel = me[None, :] - hunters
        dist2 = np.maximum((rel**2).sum(1), 1e-4)
        away = (rel / dist2[:, None]).sum(0)
        away = away / max(np.linalg.norm(away), 1e-6)
        # walls: a push toward the centre that grows from 0 at 0.6 to 3 at the arena edge
        over = np.clip((np.abs(me) - 0.6) / (_ARENA - 0.6), 0.0, None)
        wall = -np.sign(me) * 3.0 * over
        d = away + wall
        for o in obstacles:
            r = me - o
            dist = np.linalg.norm(r)
            if dist < 0.35:
                d = d + (r / max(dist, 1e-6)) * (0.35 - dist) / 0.15
        return d

    # -- the team's scripted behaviours ------------------------------------------
    _LEAD_MAX = 0.6  #: the expert aims at prey position + velocity × min(this, distance) seconds
    _POST_RADIUS = 0.3  #: the largest radius of the encirclement posts
    _SHRINK = 0.3  #: post radius = min(_POST_RADIUS, _SHRINK × (farthest chaser distance − _CLOSE))
    _CLOSE = 0.6
    _DAMP = 0.3  #: the expert's steering subtracts this × own velocity (no overshoot)

    def _encircle(self, chase: np.ndarray) -> np.ndarray:
        """Encirclement targets: the predators with ``chase[i] == j`` take equally spaced posts
        around prey ``j``'s predicted position (starting on the side facing the arena's
        centre, assigned in angular order so that they do not cross); the posts' radius
        shrinks to 0 as the farthest of them arrives, so they close in together."""
        pos = self._pos(self._team)
        prey_pos, prey_vel = self._pos(self._others), self._vel(self._others)
        targets = np.zeros_like(pos)
        for j in range(len(prey_pos)):
            members = np.flatnonzero(chase == j)
            if len(members) == 0:
                continue
            q = prey_pos[j]
            dists = np.linalg.norm(pos[members] - q, axis=1)
            radius = 0.0
            if len(members) > 1:
                radius = float(np.clip(self._SHRINK * (dists.max() - self._CLOSE), 0.0, self._POST_RADIUS))
            base = np.arctan2(-q[1], -q[0])
            ang = np.arctan2(pos[members, 1] - q[1], pos[members, 0] - q[0])
            order = np.argsort((ang - base) % (2 * np.pi))
            for k, m in enumerate(order):
                i = members[m]
                theta = base + 2 * np.pi * k / len(members)
                pred = q + prey_vel[j] * min(self._LEAD_MAX, float(dists[m]))
                targets[i] = pred + radius * np.array([np.cos(theta), np.sin(theta)])
        return targets

    def _steer(self, targets: np.ndarray, damping: float = 0.0) -> np.ndarray:
        """Team action that drives each predator toward its target point (full thrust;
        the own velocity is subtracted with weight ``damping`` against overshoot)."""
        pos, vel = self._pos(self._team), self._vel(self._team)
        d = targets - pos - damping * vel
        if self.spec_.continuous:
            scale = np.maximum(np.abs(d).max(1, keepdims=True), 1e-6)
            return np.clip(d / scale, -1.0, 1.0).astype(np.float32)
        return np.array([_discrete_move(x) for x in d], np.int64)


class MPETagEnv(_MPEPursuitTeam):
    """mpe2 ``simple_tag_v3`` (predator–prey); the team is the predators ``adversary_0..n-1``.

    env_config: ``n_agents`` (predators, 3), ``n_good`` (prey, 1), ``n_obstacles`` (2),
    ``max_cycles`` (25), ``continuous_actions`` (False). Team reward = mean of the
    predators' rewards (each gets +10 per predator–prey contact, so it is shared).

    **The prey's fixed policy** (part of the task): each prey heads away from the
    predators (sum of the directions away from each predator, weighted by
    1/distance², so the nearest dominates), plus a push back toward the centre
    that grows from |x| = 0.6 to the arena edge 0.85 (so it stays inside the
    arena) and a push away from obstacles it is about to touch; the direction gets
    Gaussian noise (σ = 0.3 of its length), and with probability 0.1 per step the
    prey makes a uniformly random move instead. Discrete: the move best aligned
    with that direction; continuous: full thrust along it. The noise comes from a
    generator seeded by ``reset(seed)``.
    """

    _SALT = 7_221

    def __init__(self, config: dict | None = None):
        kw = _mpe_kwargs(config, "mpe_tag", {"n_agents": 3, "n_good": 1, "n_obstacles": 2, "max_cycles": 25,
                                            "continuous_actions": False})
        for key in ("n_agents", "n_good", "max_cycles"):
            if kw[key] < 1:
                raise ValueError(f"mpe_tag: {key} must be >= 1, got {kw[key]}")
        if kw["n_obstacles"] < 0:
            raise ValueError(f"mpe_tag: n_obstacles must be >= 0, got {kw['n_obstacles']}")
        from mpe2 import simple_tag_v3

        cont = kw["continuous_actions"]
        n = kw["n_agents"]
        super().__init__(
            lambda: simple_tag_v3.parallel_env(
                num_good=kw["n_good"], num_adversaries=n, num_obstacles=kw["n_obstacles"],
                max_cycles=kw["max_cycles"], continuous_actions=cont,
            ),
            episode_limit=kw["max_cycles"],
            agent_ids=[f"adversary_{i}" for i in range(n)],
            action_adapter=mpe_force_from_2d if cont else None,
            action_dim=2 if cont else None,
        )
        self._setup()

    def other_actions(self) -> dict:
        hunters = self._pos(self._team)
        obstacles = self._pos(self._obstacles)
        return {
            prey.name: self._opponent_action(self._flee_direction(np.asarray(prey.state.p_pos), hunters, obstacles))
            for prey in self._others
        }

    def _nearest_prey(self) -> np.ndarray:
        """Index of each predator's nearest prey."""
        d = np.linalg.norm(self._pos(self._team)[:, None, :] - self._pos(self._others)[None, :, :], axis=-1)
        return d.argmin(1)

    def medium_action(self) -> np.ndarray:
        """Scripted medium team: every predator runs straight at the current position of
        its nearest prey (greedy pursuit, no anticipation, no coordination; the faster
        prey mostly keeps its distance)."""
        prey = self._pos(self._others)[self._nearest_prey()]
        return self._steer(prey)

    def expert_action(self) -> np.ndarray:
        """Scripted expert team: encircle and close in. The predators chasing a prey (its
        nearest one) take equally spaced posts around where it will be (its position plus
        velocity × up to 0.6 s), starting on the side facing the arena's centre so that it
        is driven toward a wall; the posts' radius (at most 0.3) shrinks to 0 as the
        farthest predator arrives, and the steering is damped by the own velocity."""
        return self._steer(self._encircle(self._nearest_prey()), damping=self._DAMP)


def _scalar_is_collision(agent1, agent2) -> bool:
    """mpe2's ``Scenario.is_collision`` (``sqrt(sum(square(p1 - p2))) < size1 + size2``)
    in scalar float64 arithmetic: the same operations in the same order, so the same
    result bit for bit, without numpy's per-call overhead on 2-element arrays
    (``simple_world_comm`` calls it about 400 times per step for the forests)."""
    p1, p2 = agent1.state.p_pos, agent2.state.p_pos
    dx = float(p1[0]) - float(p2[0])
    dy = float(p1[1]) - float(p2[1])
    return math.sqrt(dx * dx + dy * dy) < agent1.size + agent2.size


class _LeaderMoveOnly:
    """A ``ParallelEnv`` view of discrete ``simple_world_comm`` in which the leader's action
    is one of the 5 moves: it is sent as ``move + 5 · say`` with a fixed word ``say = 0``
    (mpe2 decodes the leader's combined index as ``move = a % 5``, ``say = a // 5``)."""

    SAY = 0

    def __init__(self, env, leader: str):
        self._env = env
        self._leader = leader

    def __getattr__(self, name):
        if name.startswith("_"):  # not delegated (and no recursion before __init__, e.g. when unpickling)
            raise AttributeError(name)
        return getattr(self._env, name)

    def action_space(self, agent):
        if agent == self._leader:
            return gym.spaces.Discrete(5)
        return self._env.action_space(agent)

    def step(self, actions: dict):
        actions = dict(actions)
        if self._leader in actions:
            actions[self._leader] = int(actions[self._leader]) + 5 * self.SAY
        return self._env.step(actions)


class MPEWorldCommEnv(_MPEPursuitTeam):
    """mpe2 ``simple_world_comm_v3``; the team is the adversaries ``leadadversary_0,
    adversary_0..n-2`` (``n_agents`` in all, the leader included).

    env_config: ``n_agents`` (adversaries incl. the leader, 4), ``n_good`` (2),
    ``n_obstacles`` (1), ``n_food`` (2), ``n_forests`` (2), ``max_cycles`` (25),
    ``continuous_actions`` (False). Team reward = mean of the adversaries' rewards
    (each: −0.1 × its distance to the nearest good agent, +5 per adversary–good
    contact anywhere).

    **Communication.** The team acts with movement only: 5 discrete moves or u ∈
    [-1, 1]² per adversary, the leader included. Discrete: the leader's combined
    action (20 = 4 words × 5 moves) is sent as ``move`` with the fixed word 0;
    continuous: its 4 communication channels are sent as zeros (silence). The
    observations still contain the (constant) leader message. Per-agent
    observations are zero-padded to the largest (in mpe2 1.1 the leader and the
    other adversaries both observe 34 values).

    **The good agents' fixed policy** (part of the task): each good agent heads for
    its nearest food; when an adversary is within 0.5 it flees instead (the
    direction away from the adversaries within 0.5, weighted by 1/distance²,
    mixed with the pull to the food); it is pushed back inside the arena and
    around obstacles as the prey of ``mpe_tag``; the same noise applies
    (direction σ = 0.3, a uniformly random move with probability 0.1 per step,
    from a generator seeded by ``reset(seed)``).
    """

    _SALT = 5_147
    _DANGER = 0.5

    def __init__(self, config: dict | None = None):
        kw = _mpe_kwargs(config, "mpe_world", {"n_agents": 4, "n_good": 2, "n_obstacles": 1, "n_food": 2,
                                              "n_forests": 2, "max_cycles": 25, "continuous_actions": False})
        for key in ("n_agents", "n_good", "n_food", "max_cycles"):
            if kw[key] < 1:
                raise ValueError(f"mpe_world: {key} must be >= 1, got {kw[key]}")
        for key in ("n_obstacles", "n_forests"):
            if kw[key] < 0:
                raise ValueError(f"mpe_world: {key} must be >= 0, got {kw[key]}")
        from mpe2 import simple_world_comm_v3

        cont = kw["continuous_actions"]
        n = kw["n_agents"]
        leader = "leadadversary_0"

        def make():
            env = simple_world_comm_v3.parallel_env(
                num_good=kw["n_good"], num_adversaries=n, num_obstacles=kw["n_obstacles"], num_food=kw["n_food"],
                num_forests=kw["n_forests"], max_cycles=kw["max_cycles"], continuous_actions=cont,
            )
            return env if cont else _LeaderMoveOnly(env, leader)

        def adapter(agent: str, u: np.ndarray) -> np.ndarray:
            force = mpe_force_from_2d(agent, u)
            if agent == leader:  # [moves(5), say(4)]: silence
                return np.concatenate([force, np.zeros(4, np.float32)])
            return force

        super().__init__(
            make,
            episode_limit=kw["max_cycles"],
            agent_ids=[leader] + [f"adversary_{i}" for i in range(n - 1)],
            action_adapter=adapter if cont else None,
            action_dim=2 if cont else None,
        )
        self._setup()
        self._food = list(self._world.food)
        scenario = self.par_env.unwrapped.scenario
        if self._world.dim_p == 2:  # always, in mpe2; the scalar version is 2-D only
            scenario.is_collision = _scalar_is_collision  # instance attribute: this env only

    def other_actions(self) -> dict:
        hunters = self._pos(self._team)
        obstacles = self._pos(self._obstacles)
        food = self._pos(self._food)
        out = {}
        for g in self._others:
            me = np.asarray(g.state.p_pos, np.float64)
            to_food = food[np.argmin(np.linalg.norm(food - me, axis=1))] - me
            pull = to_food / max(np.linalg.norm(to_food), 0.05)  # slows down on the food
            near = hunters[np.linalg.norm(hunters - me, axis=1) < self._DANGER]
            # no adversary near: walls and obstacles only (the away term is 0 without hunters)
            d = self._flee_direction(me, near, obstacles) + (0.3 if len(near) else 1.0) * pull
            out[g.name] = self._opponent_action(d)
        return out

    def medium_action(self) -> np.ndarray:
        """Scripted medium team: every adversary runs straight at the current position of
        the nearest good agent (greedy, uncoordinated)."""
        pos, good = self._pos(self._team), self._pos(self._others)
        d = np.linalg.norm(pos[:, None, :] - good[None, :, :], axis=-1)
        return self._steer(good[d.argmin(1)])

    def expert_action(self) -> np.ndarray:
        """Scripted expert team (the leader sees everything): the adversaries are split
        evenly over the good agents (at most ⌈n/m⌉ each, closest pairs first), and the ones
        sharing a target encircle it and close in together, as in ``mpe_tag``'s expert."""
        pos, good = self._pos(self._team), self._pos(self._others)
        n, m = len(pos), len(good)
        cap = np.full(m, -(-n // m))
        d = np.linalg.norm(pos[:, None, :] - good[None, :, :], axis=-1)
        chase = np.full(n, -1)
        for flat in np.argsort(d, axis=None):
            i, j = divmod(int(flat), m)
            if chase[i] < 0 and cap[j] > 0:
                chase[i], cap[j] = j, cap[j] - 1
        return self._steer(self._encircle(chase), damping=self._DAMP)
