"""rllib-cfcql: Counterfactual Conservative Q-Learning for offline cooperative MARL on Ray RLlib.

``from rllib_cfcql import CFCQLConfig, CFCQL`` registers the ``"CFCQL"``
algorithm with Ray Tune and every team task name (``equal_line``,
``mpe_spread``) as an RLlib env. (The heavy imports happen on first use, so
that command-line tools start fast.)
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_LAZY = {
    "CFCQL": "rllib_cfcql.algorithm",
    "CFCQLConfig": "rllib_cfcql.algorithm",
    "TASKS": "rllib_cfcql.envs",
    "make_team_env": "rllib_cfcql.envs",
}
_registered = False


def register() -> None:
    """Register "CFCQL" with Tune and the team tasks as RLlib envs (idempotent)."""
    global _registered
    if _registered:
        return
    from ray.tune.registry import register_trainable

    from rllib_cfcql.algorithm import CFCQL
    from rllib_cfcql.envs import register_team_envs

    register_trainable("CFCQL", CFCQL)
    register_team_envs()
    _registered = True


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
        if name in ("CFCQL", "CFCQLConfig"):
            register()
        return value
    raise AttributeError(f"module 'rllib_cfcql' has no attribute {name!r}")


__all__ = ["CFCQL", "CFCQLConfig", "TASKS", "make_team_env", "register", "__version__"]
