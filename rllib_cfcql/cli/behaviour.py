"""``rllib-cfcql behaviour``: train the behaviour policies that datasets are collected with.

    rllib-cfcql behaviour train-shared --task mpe_spread --continuous --budget-min 14
    rllib-cfcql behaviour train-centralised --budget-min 35 --medium-replay-dir /tmp/hc_mr

``train-shared`` runs :mod:`rllib_cfcql.behaviour_policies.train_shared` (RLlib PPO, one policy
shared by every agent: the MPE tasks and Equal_Line); ``train-centralised`` runs
:mod:`rllib_cfcql.behaviour_policies.train_centralised` (RLlib PPO on the team state: HalfCheetah
2x3). Each subcommand's ``--help`` lists its options. Both pin the BLAS/OpenMP thread pools to one
thread (unless set) before torch is imported.
"""

from __future__ import annotations

import os
import sys
from typing import List, Optional

COMMANDS = {
    "train-shared": "rllib_cfcql.behaviour_policies.train_shared",
    "train-centralised": "rllib_cfcql.behaviour_policies.train_centralised",
}


def main(argv: Optional[List[str]] = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help") or argv[0] not in COMMANDS:
        print(__doc__.strip())
        if argv and argv[0] not in ("-h", "--help"):
            print(f"\nrllib-cfcql behaviour: error: unknown command {argv[0]!r}; choose from {', '.join(COMMANDS)}",
                  file=sys.stderr)
            return 2
        return 0 if argv else 2
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ.setdefault(var, "1")
    import importlib

    module = importlib.import_module(COMMANDS[argv[0]])
    return int(module.main(argv[1:]) or 0)
