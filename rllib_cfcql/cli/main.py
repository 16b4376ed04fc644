"""Command-line entry points: ``rllib train`` and ``rllib-cfcql``.

Ray >= 2.42 no longer ships the ``rllib`` command-line tool, so this package
installs its own.  It runs old-style RLlib "tuned example" YAML files::

    rllib train --file tuned_examples/cfcql-mpe.yaml \
        --stop '{"training_iteration": 50}' --config '{"lr": 0.0003}'

A tuned-example file holds exactly one experiment::

    my-experiment:
        env: <registered env name>
        run: CFCQL
        stop: {training_iteration: 100}
        config: {lr: 0.0003, ...}
        # optional:
        checkpoint_config: {checkpoint_frequency: 10}
        num_samples: 1

The module is split in two halves:

* pure helpers (YAML loading with a duplicate-key check, deep merging,
  ``grid_search`` conversion, key and stop-criteria validation) which need
  neither Ray nor RLlib and raise :class:`ConfigError` on bad input, and
* the Ray part (:func:`build_param_space`, :func:`run_train`), which imports
  Ray lazily so that ``rllib --help`` stays fast.
"""

from __future__ import annotations

import argparse
import sys
from typing import List, Optional

from rllib_cfcql.cli.experiment_file import (
    ConfigError,
)
from rllib_cfcql.cli.tune_run import (
    run_train,
)

# ---------------------------------------------------------------------------
# Argument parsing / entry points
# ---------------------------------------------------------------------------

_TRAIN_DESCRIPTION = """\
Train an algorithm from an RLlib tuned-example YAML file with Ray Tune.

The file holds exactly one experiment:

  <experiment_name>:
    env: <registered env name>       # or null: train from the dataset alone
    run: CFCQL
    stop: {training_iteration: 100}
    config: {lr: 0.0003, ...}
    checkpoint_config: {checkpoint_frequency: 10}   # optional
    num_samples: 1                                   # optional

Any value under `config` may be `{grid_search: [a, b, ...]}`. The dataset is read
and validated before Ray starts. `--resume` continues an interrupted experiment.
Exit codes: 0 success, 1 a trial failed, 2 usage, config or dataset error.
"""


def _add_train_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("-f", "--file", required=True, metavar="FILE.yaml",
                   help="tuned-example YAML file with one experiment")
    p.add_argument("--stop", metavar="JSON",
                   help="JSON object merged over the file's `stop`, "
                        "e.g. '{\"training_iteration\": 10}'")
    p.add_argument("--config", metavar="JSON",
                   help="JSON object deep-merged over the file's `config`, "
                        "e.g. '{\"lr\": 0.0003}'")
    p.add_argument("--storage-path", metavar="DIR",
                   help="where Tune writes results and checkpoints (default: ./results)")
    p.add_argument("--checkpoint-freq", type=int, metavar="N",
                   help="checkpoint every N iterations (default: from the file, "
                        "else 0 = only at the end)")
    p.add_argument("--num-samples", type=int, metavar="N",
                   help="repeat every grid point N times (default: from the file, else 1)")
    p.add_argument("--name", help="experiment name (default: the key in the file)")
    p.add_argument("--ray-num-cpus", type=int, metavar="N",
                   help="logical CPUs for a local Ray instance "
                        "(default: max(cpu_count, 4); ignored with RAY_ADDRESS)")
    p.add_argument("--resume", nargs="?", const="", default=None, metavar="DIR",
                   help="continue an interrupted experiment from its last checkpoints (Tune's restore); "
                        "DIR defaults to <storage-path>/<name>")
    p.add_argument("--no-dataset-check", action="store_true",
                   help="skip reading and validating the dataset before Ray starts")
    p.add_argument("--dry-run", action="store_true",
                   help="load and validate the file, the options and the dataset, then exit")
    p.add_argument("-v", "--verbose", action="count", default=0,
                   help="more Tune output (-v: trial results, -vv: full results)")


def _train_subcommand(parser: argparse.ArgumentParser, help_text: str):
    """Adds the subcommands to ``parser`` with ``train`` (its arguments included); returns them."""
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    train = sub.add_parser("train", help=help_text, description=_TRAIN_DESCRIPTION,
                           formatter_class=argparse.RawDescriptionHelpFormatter)
    _add_train_arguments(train)
    return sub


def _run_train_cli(args: argparse.Namespace, prog: str) -> int:
    try:
        return run_train(args)
    except ConfigError as e:
        print(f"{prog}: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"{prog}: interrupted", file=sys.stderr)
        return 130


def rllib_main(argv: Optional[List[str]] = None) -> int:
    """Entry point of the ``rllib`` command (``rllib train --file ...``)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = argparse.ArgumentParser(
        prog="rllib",
        description="RLlib command line (provided by rllib-cfcql for Ray >= 2.42).",
    )
    _train_subcommand(parser, "train from a tuned-example YAML file")
    args = parser.parse_args(argv)
    return _run_train_cli(args, "rllib train")


def cfcql_main(argv: Optional[List[str]] = None) -> int:
    """Entry point of the ``rllib-cfcql`` command (``train`` and ``data``)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == "export":
        from rllib_cfcql.export import main as export_main

        return int(export_main(argv[1:]) or 0)
    if argv and argv[0] == "behaviour":
        from rllib_cfcql.cli.behaviour import main as behaviour_main

        return behaviour_main(argv[1:])
    if argv and argv[0] == "data":
        try:
            from rllib_cfcql.cli.data import main as data_main
        except ModuleNotFoundError as e:
            if e.name not in ("rllib_cfcql.data", "rllib_cfcql.cli.data"):
                raise
            print(f"rllib-cfcql data: error: not available ({e})", file=sys.stderr)
            return 2
        return int(data_main(argv[1:]) or 0)
    parser = argparse.ArgumentParser(
        prog="rllib-cfcql",
        description="CFCQL for RLlib: training and offline-data tools.",
    )
    sub = _train_subcommand(parser, "train from a tuned-example YAML file (same as `rllib train`)")
    sub.add_parser(
        "data", help="offline-dataset tools (see `rllib-cfcql data --help`)",
        add_help=False,
    )
    sub.add_parser(
        "behaviour", help="train the behaviour policies datasets are collected with (see `rllib-cfcql behaviour --help`)",
        add_help=False,
    )
    sub.add_parser(
        "export", help="export a checkpoint's policy to TorchScript/ONNX (see `rllib-cfcql export --help`)",
        add_help=False,
    )
    args = parser.parse_args(argv)
    return _run_train_cli(args, "rllib-cfcql train")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(rllib_main())
