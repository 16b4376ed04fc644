"""The names of the registered team tasks, importable without the env packages."""

#: Every name in :data:`rllib_cfcql.envs.TASKS` (a test keeps the two in sync).
TASK_NAMES = (
    "equal_line", "mamujoco", "mamujoco_halfcheetah_2x3", "mpe_spread", "mpe_tag", "mpe_world",
    "smax_2s3z", "smax_3s_vs_5z", "smax_5m_vs_6m", "smax_6h_vs_8z",
    "smax_smacv2_5_units", "smax_smacv2_10_units", "smax_smacv2_20_units", "smacv2",
)
