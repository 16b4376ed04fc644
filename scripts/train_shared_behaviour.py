"""Same as ``rllib-cfcql behaviour train-shared`` (kept for the commands recorded in the policies'
training logs); see :mod:`rllib_cfcql.behaviour_policies.train_shared`."""

import sys

from rllib_cfcql.cli.behaviour import main

if __name__ == "__main__":
    sys.exit(main(["train-shared", *sys.argv[1:]]))
