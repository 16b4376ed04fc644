"""rllib-cfcql: Counterfactual Conservative Q-Learning for offline cooperative MARL on Ray RLlib.

Importing the package registers the ``"CFCQL"`` algorithm with Ray Tune and
every team task name (``equal_line``, ``mpe_spread``) as an RLlib env.
"""

from rllib_cfcql.algorithm import CFCQL, CFCQLConfig
from rllib_cfcql.envs import TASKS, make_team_env, register_team_envs

__version__ = "0.1.0"


def _register() -> None:
    from ray.tune.registry import register_trainable

    register_trainable("CFCQL", CFCQL)
    register_team_envs()


_register()

__all__ = ["CFCQL", "CFCQLConfig", "TASKS", "make_team_env", "__version__"]
