"""rllib-cfcql: Counterfactual Conservative Q-Learning for offline cooperative MARL on Ray RLlib.

``import rllib_cfcql`` registers the ``"CFCQL"`` algorithm with Ray Tune
(``tune.Tuner("CFCQL", ...)`` works right after the import) and every team
task name (``equal_line``, ``mpe_spread``, ...) as an RLlib env. Registration
is cheap: the registry holds a reference that imports RLlib and the env
classes only when Tune or an EnvRunner first looks the name up, so that the
command-line tools start fast.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_LAZY = {
    "CFCQL": "rllib_cfcql.core.algorithm",
    "CFCQLConfig": "rllib_cfcql.core.config",
    "TASKS": "rllib_cfcql.envs",
    "make_team_env": "rllib_cfcql.envs",
    "TeamDatasetWriter": "rllib_cfcql.data.writer",
}
_registered = False


def _cfcql_class():
    """Returns the CFCQL Algorithm class (what Tune's registry entry unpickles to)."""
    from rllib_cfcql.core.algorithm import CFCQL

    return CFCQL


class _CFCQLReference:
    """Stands in Tune's registry for the CFCQL class: pickles to a call of :func:`_cfcql_class`,
    so that looking "CFCQL" up (in this process or on any Ray worker) imports the algorithm
    then, not when ``rllib_cfcql`` is imported."""

    def __reduce__(self):
        return (_cfcql_class, ())


def _make_task_env(name: str, env_config: Any):
    from rllib_cfcql.envs import make_team_env

    return make_team_env(name, env_config)


def register() -> None:
    """Register "CFCQL" with Tune and the team tasks as RLlib envs (idempotent; runs on import)."""
    global _registered
    if _registered:
        return
    from functools import partial

    from ray.tune.registry import TRAINABLE_CLASS, _global_registry, register_env

    from rllib_cfcql.envs.names import TASK_NAMES

    _global_registry.register(TRAINABLE_CLASS, "CFCQL", _CFCQLReference())
    for name in TASK_NAMES:
        register_env(name, partial(_make_task_env, name))
    _registered = True


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'rllib_cfcql' has no attribute {name!r}")


register()

__all__ = ["CFCQL", "CFCQLConfig", "TASKS", "TeamDatasetWriter", "make_team_env", "register", "__version__"]
