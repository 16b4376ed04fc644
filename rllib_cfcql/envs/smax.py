"""SMAX (JaxMARL's StarCraft-like micromanagement) maps as team tasks.

``smax_<map>`` is the allied team of a JaxMARL SMAX map against JaxMARL's scripted heuristic enemy
(``HeuristicEnemySMAX``), stepped from Python one env at a time (:class:`SMAXTeamEnv`), or as a batch of
copies in one vmapped call (:class:`SMAXTeamBatch`, for online training). SMAX re-implements the SMAC unit
types and maps in JAX without the StarCraft II binary. **Its numbers are not SMAC numbers**: the
unit dynamics, the enemy AI and the reward scale differ, so returns and win rates on ``smax_*``
tasks are comparable only with other SMAX runs.

Per agent (ally ``i``):

* observation: SMAX's ``unit_list`` observation (the other allies' and the enemies' features, then
  its own), as SMAX defines it;
* action: SMAX's discrete actions, ``0``–``3`` move north/east/south/west, ``4`` stop, ``4 + 1 + j``
  attack enemy ``j`` (SMAC numbers them differently: 0 no-op, 1 stop); the action mask is SMAX's
  ``get_avail_actions`` (a dead agent may only take ``4``, attacks only on living enemies in range).

The global state is SMAX's ``world_state``; the team reward is SMAX's (the enemies' health lost,
as a fraction of their total, plus 1 for a won battle), so an episode's return is at most 2.

The episode ends as a true terminal when one side is dead, and is cut (``truncated``, bootstrapped by
the learners) at the map's SMAC episode limit (:data:`EPISODE_LIMITS`, ``episode_limit`` overrides
it). ``info["battle_won"]`` is set on every step: all enemies dead and at least one ally alive.

:meth:`SMAXTeamEnv.expert_action` is JaxMARL's heuristic (attack the closest enemy in range, else
advance) played for the allies. It is the only scripted policy: on ``2s3z`` it wins about half its
battles against the same heuristic, on the harder maps almost none. Behaviour specs built on it:
``expert`` and ``eps_expert:<eps>`` (docs/SMAX.md).

Needs the optional extra: ``pip install -e ".[smax]"`` (jaxmarl). JAX compiles reset and step once per
(map, episode limit) and process (a few seconds); the compiled functions are cached.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from rllib_cfcql import keys as K
from rllib_cfcql.envs.base import TeamEnv, TeamSpec, task_config

#: SMAC's episode limits for the paper's maps; SMACv2's for the unit-count scenarios.
EPISODE_LIMITS = {
    "2s3z": 120,
    "3s_vs_5z": 250,
    "5m_vs_6m": 70,
    "6h_vs_8z": 150,
    "3m": 60,
    "8m": 120,
    "3s5z": 150,
    "smacv2_5_units": 200,
    "smacv2_10_units": 200,
    "smacv2_20_units": 200,
}
#: The maps registered as ``smax_<map>`` team tasks.
SMAX_MAPS = ("2s3z", "3s_vs_5z", "5m_vs_6m", "6h_vs_8z", "smacv2_5_units", "smacv2_10_units", "smacv2_20_units")
STOP_ACTION = 4
INSTALL_HINT = 'pip install -e ".[smax]"  (jaxmarl==0.2.0)'

_COMPILED: dict[tuple, Any] = {}


def _import_jax():
    try:
        import jax
        import jax.numpy as jnp
        from jaxmarl.environments.smax import HeuristicEnemySMAX, map_name_to_scenario
        from jaxmarl.environments.smax.heuristic_enemy import (
            create_heuristic_policy,
            get_heuristic_policy_initial_state,
        )
    except ImportError as e:
        raise ImportError(f"the smax_* tasks need JaxMARL, which is not installed ({e}); "
                          f"install it with {INSTALL_HINT}") from None
    return jax, jnp, HeuristicEnemySMAX, map_name_to_scenario, create_heuristic_policy, get_heuristic_policy_initial_state


def _compiled(map_name: str, limit: int):
    """The jitted reset / step / heuristic of one (map, limit), built once per process."""
    key = (map_name, limit)
    if key in _COMPILED:
        return _COMPILED[key]
    jax, jnp, HeuristicEnemySMAX, map_name_to_scenario, create_heuristic_policy, initial_state = _import_jax()
    # SMAX checks its time limit before counting the step (it would end after limit + 1 steps):
    # the wrapper cuts at the limit itself, and SMAX's own limit never comes first
    env = HeuristicEnemySMAX(scenario=map_name_to_scenario(map_name), max_steps=limit + 1)
    n, m = env.num_allies, env.num_enemies
    agents = env.agents
    inner = env._env
    heuristic = create_heuristic_policy(inner, 0)

    def view(obs, state):
        o = jnp.stack([obs[a] for a in agents])
        avail = env.get_avail_actions(state)
        mask = jnp.stack([avail[a] for a in agents]).astype(jnp.float32)
        alive = state.state.unit_alive
        return o, obs["world_state"], mask, alive[:n], alive[n:]

    def reset(rng):
        obs, state = env.reset(rng)
        # SMAX's reset leaves some leaves weakly typed and its step does not: without the cast the jitted
        # step compiles twice per process (once for a reset state, once for a stepped one)
        return jax.tree.map(lambda x: x.astype(x.dtype), state), view(obs, state)

    def step(rng, state, actions):
        obs, state, rewards, dones, _ = env.step_env(rng, state, {a: actions[i] for i, a in enumerate(agents)})
        return state, view(obs, state), rewards[agents[0]]

    def batch_reset(rng, num_envs):
        keys = jax.random.split(rng, num_envs + 1)
        return keys[0], *jax.vmap(reset)(keys[1:])

    def batch_step(rng, state, actions, fresh):
        """One step of every env of a batch, except those flagged ``fresh``: they start a new episode
        (their actions are ignored, their reward is 0)."""
        b = actions.shape[0]
        keys = jax.random.split(rng, b + 1)
        stepped, sview, reward = jax.vmap(step)(keys[1:], state, actions)
        started, rview = jax.vmap(reset)(keys[1:])

        def pick(x, y):
            return jnp.where(fresh.reshape((b,) + (1,) * (x.ndim - 1)), x, y)

        state = jax.tree.map(pick, started, stepped)
        return keys[0], state, jax.tree.map(pick, rview, sview), jnp.where(fresh, 0.0, reward)

    def expert(rng, pstate, state):
        unit_obs = inner.get_obs_unit_list(state.state)
        obs = jnp.stack([unit_obs[a] for a in agents])
        actions, pstate = jax.vmap(heuristic)(jax.random.split(rng, n), pstate, obs)
        return actions, pstate

    def expert_initial():
        return jax.tree.map(lambda *xs: jnp.stack(xs), *([initial_state()] * n))

    out = {
        "n": n, "m": m, "obs_dim": int(env.observation_spaces[agents[0]].shape[0]),
        "state_dim": int(inner.state_size), "n_actions": int(env.action_spaces[agents[0]].n),
        "reset": jax.jit(reset), "step": jax.jit(step), "expert": jax.jit(expert),
        "expert_initial": expert_initial, "split": jax.jit(lambda k: jax.random.split(k, 3)),
        "batch_reset": jax.jit(batch_reset, static_argnums=1), "batch_step": jax.jit(batch_step),
        "key": jax.random.PRNGKey,
    }
    _COMPILED[key] = out
    return out


def _setup(config: dict | None, map_name: str) -> tuple[str, int, dict, TeamSpec]:
    """Check a ``smax_<map>`` env_config; the map, its episode limit, its compiled functions and its spec."""
    config = task_config(config)
    map_name = str(map_name)
    if map_name not in EPISODE_LIMITS:
        raise ValueError(f"smax: unknown map_name {map_name!r}; expected one of {sorted(EPISODE_LIMITS)}")
    limit = int(config.pop("episode_limit", EPISODE_LIMITS[map_name]))
    if config:
        raise ValueError(f"smax_{map_name}: unknown env_config keys {sorted(config)}; expected episode_limit")
    if limit < 1:
        raise ValueError(f"smax_{map_name}: episode_limit must be >= 1, got {limit}")
    c = _compiled(map_name, limit)
    spec = TeamSpec(n_agents=c["n"], obs_dim=c["obs_dim"], state_dim=c["state_dim"], n_actions=c["n_actions"],
                    episode_limit=limit)
    return map_name, limit, c, spec


class SMAXTeamEnv(TeamEnv):
    """The allies of SMAX map ``map_name`` as one team (see the module docstring)."""

    def __init__(self, config: dict | None = None, *, map_name: str):
        self.map_name, self.episode_limit, self._c, spec = _setup(config, map_name)
        self.n_enemies = self._c["m"]
        self._init_spaces(spec)
        self._rng = None
        self._state = None
        self._mask = None
        self._expert_state = None
        self.t = 0

    def _next_key(self):
        if self._rng is None:
            self._rng = self._c["key"](int(np.random.default_rng().integers(2**31)))
        keys = self._c["split"](self._rng)
        self._rng = keys[0]
        return keys[1], keys[2]

    def _observe(self, view) -> tuple[dict, dict]:
        obs, state, mask, allies_alive, enemies_alive = (np.array(v) for v in view)  # writable copies
        self._mask = mask
        self._allies_alive, self._enemies_alive = allies_alive, enemies_alive
        won = bool(not enemies_alive.any() and allies_alive.any())
        return self._pack(obs, state, mask), {"battle_won": won}

    def reset(self, *, seed=None, options=None):
        if seed is not None:
            self._rng = self._c["key"](int(seed))
        k, _ = self._next_key()
        self._state, view = self._c["reset"](k)
        self._expert_state = self._c["expert_initial"]()
        self.t = 0
        return self._observe(view)

    def step(self, action):
        if self._state is None:
            raise RuntimeError(f"smax_{self.map_name}: step() before reset()")
        a = self.check_action(action)
        illegal = np.flatnonzero(self._mask[np.arange(len(a)), a] == 0)
        if len(illegal):
            i = int(illegal[0])
            raise ValueError(f"smax_{self.map_name}: agent {i} took action {int(a[i])}, which its action mask marks "
                             f"unavailable (available: {np.flatnonzero(self._mask[i]).tolist()})")
        k, _ = self._next_key()
        self._state, view, reward = self._c["step"](k, self._state, a.astype(np.int32))
        self.t += 1
        obs, info = self._observe(view)
        terminated = not self._allies_alive.any() or not self._enemies_alive.any()
        truncated = self.t >= self.episode_limit and not terminated
        return obs, float(reward), terminated, truncated, info

    def expert_action(self) -> np.ndarray:
        """JaxMARL's heuristic played for the allies, at the current state (a legal joint action:
        dead agents stop, and an attack the mask forbids becomes a stop)."""
        if self._state is None:
            raise RuntimeError(f"smax_{self.map_name}: expert_action() before reset()")
        _, k = self._next_key()
        actions, self._expert_state = self._c["expert"](k, self._expert_state, self._state)
        a = np.array(actions, dtype=np.int64)
        legal = self._mask[np.arange(len(a)), a] > 0
        return np.where(legal, a, STOP_ACTION)


class SMAXTeamBatch:
    """``num_envs`` copies of ``smax_<map_name>`` stepped together, one vmapped JAX call per step.

    The batched counterpart of :class:`SMAXTeamEnv` (same observations, masks, rewards, episode ends and
    win flag), for online training: one call steps every env, where stepping them one by one from Python
    pays JAX's dispatch cost per env. Observations are the team observation dict with a leading env axis
    (``obs`` ``[B, n, obs_dim]``, ``state`` ``[B, state_dim]``, ``action_mask`` ``[B, n, n_actions]``).
    :meth:`step` takes the joint actions ``[B, n]`` and a flag per env: a flagged env starts a new episode
    instead of stepping (its actions are ignored, its reward is 0): the "reset on the next step" contract
    of RLlib's vector envs.
    """

    def __init__(self, config: dict | None = None, *, map_name: str, num_envs: int):
        if int(num_envs) < 1:
            raise ValueError(f"smax_{map_name}: num_envs must be >= 1, got {num_envs}")
        self.map_name, self.episode_limit, self._c, self.team_spec = _setup(config, map_name)
        self.num_envs = int(num_envs)
        self._rng = self._state = self._mask = None
        self.t = np.zeros(self.num_envs, np.int64)

    def _observe(self, view) -> tuple[dict, np.ndarray, np.ndarray, np.ndarray]:
        obs, state, mask, allies_alive, enemies_alive = (np.asarray(v) for v in view)
        self._mask = mask
        out = {K.OBS: obs.astype(np.float32), K.STATE: state.astype(np.float32), K.ACTION_MASK: mask}
        return out, allies_alive.any(1), enemies_alive.any(1)

    def reset(self, seed: int | None = None) -> dict:
        """Start an episode in every env; the batched team observation."""
        seed = int(np.random.default_rng().integers(2**31)) if seed is None else int(seed)
        self._rng, self._state, view = self._c["batch_reset"](self._c["key"](seed), self.num_envs)
        self.t[:] = 0
        return self._observe(view)[0]

    def step(self, actions, fresh=None) -> tuple[dict, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """``(obs, reward [B], terminated [B], truncated [B], battle_won [B])``; envs flagged in ``fresh``
        start a new episode instead (reward 0, not terminated, not truncated)."""
        if self._state is None:
            raise RuntimeError(f"smax_{self.map_name}: step() before reset()")
        b, n = self.num_envs, self.team_spec.n_agents
        a = np.asarray(actions, np.int64)
        if a.shape != (b, n):
            raise ValueError(f"smax_{self.map_name}: batched joint actions must have shape ({b}, {n}), got {a.shape}")
        fresh = np.zeros(b, bool) if fresh is None else np.asarray(fresh, bool).reshape(b)
        a = np.where(fresh[:, None], STOP_ACTION, a)
        if (a < 0).any() or (a >= self.team_spec.n_actions).any():
            e, i = np.argwhere((a < 0) | (a >= self.team_spec.n_actions))[0]
            raise ValueError(f"smax_{self.map_name}: env {e}, agent {i} took action {int(a[e, i])}; expected an "
                             f"integer in [0, {self.team_spec.n_actions})")
        legal = np.take_along_axis(self._mask, a[..., None], -1)[..., 0] > 0
        if not legal.all():
            e, i = np.argwhere(~legal)[0]
            raise ValueError(f"smax_{self.map_name}: env {e}, agent {i} took action {int(a[e, i])}, which its action "
                             f"mask marks unavailable (available: {np.flatnonzero(self._mask[e, i]).tolist()})")
        self._rng, self._state, view, reward = self._c["batch_step"](self._rng, self._state, a.astype(np.int32),
                                                                     fresh)
        self.t = np.where(fresh, 0, self.t + 1)
        obs, allies, enemies = self._observe(view)
        terminated = ~fresh & (~allies | ~enemies)
        truncated = ~fresh & ~terminated & (self.t >= self.episode_limit)
        won = ~fresh & ~enemies & allies
        return obs, np.asarray(reward, np.float32), terminated, truncated, won


def smax_batch(map_name: str):
    """The batched constructor of ``smax_<map_name>``: ``make(config, num_envs)`` -> :class:`SMAXTeamBatch`."""

    def make(config: dict | None = None, num_envs: int = 1) -> SMAXTeamBatch:
        return SMAXTeamBatch(config, map_name=map_name, num_envs=num_envs)

    make.__name__ = f"smax_{map_name}_batch"
    return make


def smax_task(map_name: str):
    """The constructor of team task ``smax_<map_name>`` (what :data:`rllib_cfcql.envs.TASKS` holds)."""

    def make(config: dict | None = None) -> SMAXTeamEnv:
        return SMAXTeamEnv(config, map_name=map_name)

    make.__name__ = f"smax_{map_name}"
    return make
