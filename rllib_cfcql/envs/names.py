"""The names of the registered team tasks, importable without the env packages."""

#: Every name in :data:`rllib_cfcql.envs.TASKS` (a test keeps the two in sync).
TASK_NAMES = ("equal_line", "mamujoco", "mamujoco_halfcheetah_2x3", "mpe_spread", "mpe_tag", "mpe_world")
