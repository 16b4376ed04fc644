"""Registry of named cooperative team tasks.

``make_team_env(name, config)`` builds a task; importing :mod:`rllib_cfcql`
registers every name with ``ray.tune.registry.register_env`` so that
``config.environment("equal_line", env_config={"n_agents": 4})`` works on
every EnvRunner.
"""

from __future__ import annotations

from typing import Callable

from rllib_cfcql.envs.base import (
    TeamEnv,
    TeamSpec,
    team_action_space,
    team_observation_space,
)
from rllib_cfcql.envs.equal_line import EqualLineEnv
from rllib_cfcql.envs.mamujoco import MaMuJoCoEnv, MaMuJoCoHalfCheetah2x3Env
from rllib_cfcql.envs.mpe_adversarial import MPETagEnv, MPEWorldCommEnv
from rllib_cfcql.envs.pettingzoo_team import MPESpreadEnv, PettingZooTeamEnv
from rllib_cfcql.envs.smacv2 import SMACv2TeamEnv
from rllib_cfcql.envs.smax import SMAX_MAPS, SMAXTeamBatch, SMAXTeamEnv, smax_batch, smax_task

TASKS: dict[str, Callable[[dict], TeamEnv]] = {
    "equal_line": EqualLineEnv,
    "mamujoco": MaMuJoCoEnv,
    "mamujoco_halfcheetah_2x3": MaMuJoCoHalfCheetah2x3Env,
    "mpe_spread": MPESpreadEnv,
    "mpe_tag": MPETagEnv,
    "mpe_world": MPEWorldCommEnv,
    # JaxMARL SMAX maps (the optional extra [smax]; building one without jaxmarl says what to install)
    **{f"smax_{m}": smax_task(m) for m in SMAX_MAPS},
    # SMAC / SMACv2 on the StarCraft II game (SC2PATH, SMAC maps and the smacv2 package; refuses without them)
    "smacv2": SMACv2TeamEnv,
}


#: Tasks that also come as a batch of envs stepped in one call (``make(config, num_envs)``): online training
#: (``rllib-cfcql behaviour train-shared``) steps these through one vectorised env instead of one env per copy.
BATCHED_TASKS: dict[str, Callable] = {f"smax_{m}": smax_batch(m) for m in SMAX_MAPS}


def make_team_batch(name: str, config: dict | None, num_envs: int):
    """``num_envs`` copies of task ``name`` stepped together (see :data:`BATCHED_TASKS`)."""
    if name not in BATCHED_TASKS:
        raise ValueError(f"team task {name!r} has no batched version; tasks with one: {sorted(BATCHED_TASKS)}")
    return BATCHED_TASKS[name](dict(config or {}), num_envs)


def make_team_env(name: str, config: dict | None = None) -> TeamEnv:
    if name not in TASKS:
        raise ValueError(f"unknown team task {name!r}; known tasks: {sorted(TASKS)}")
    return TASKS[name](dict(config or {}))


def register_team_envs() -> None:
    """Register every task name as an RLlib env (``import rllib_cfcql`` already does this)."""
    import rllib_cfcql

    rllib_cfcql.register()


__all__ = [
    "BATCHED_TASKS",
    "TASKS",
    "EqualLineEnv",
    "MaMuJoCoEnv",
    "MaMuJoCoHalfCheetah2x3Env",
    "MPESpreadEnv",
    "MPETagEnv",
    "MPEWorldCommEnv",
    "PettingZooTeamEnv",
    "SMACv2TeamEnv",
    "SMAXTeamBatch",
    "SMAXTeamEnv",
    "TeamEnv",
    "TeamSpec",
    "make_team_batch",
    "make_team_env",
    "register_team_envs",
    "team_action_space",
    "team_observation_space",
]
