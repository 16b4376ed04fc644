"""Reading team datasets through RLlib's offline API (ray.data).

:class:`TeamOfflineData` is the ``offline_data_class`` of CFCQL. RLlib builds
it from ``config.offline_data(input_=..., input_read_method=...)`` and it
reads the Parquet or JSON-lines files with ``ray.data`` (RLlib's own read
call, with ``include_paths=True`` so every error can name its file). The rows
are converted with :func:`columns_from_arrow`, validated against the task,
assembled into padded episodes, and handed to the Learners, which keep their
shard in memory for the whole run (no per-step data movement between
processes). Datasets are expected to fit in the learners' memory, which holds
for every dataset of the paper (≤ 5000 episodes per task).
"""

from __future__ import annotations

import json
import logging
import threading
import time
import warnings
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import ray
from ray.rllib.offline.offline_data import OfflineData

from rllib_cfcql.data.schema import (
    DatasetError,
    EpisodeArrays,
    assemble_parts,
    columns_from_arrow,
)
from rllib_cfcql.data.writer import CARD_NAME
from rllib_cfcql.envs.base import TeamSpec

logger = logging.getLogger(__name__)

READ_METHODS = {".parquet": "read_parquet", ".json": "read_json", ".jsonl": "read_json"}


def _files_of(path: Path) -> list[Path]:
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.suffix in READ_METHODS and p.name != CARD_NAME)
        if not files:
            raise DatasetError(f"{path}: directory holds no .parquet/.json/.jsonl data files")
        return files
    return [path]


def resolve_inputs(inputs: str | list[str]) -> tuple[list[Path], str]:
    """Expand input paths to data files and pick the ray.data read method by suffix."""
    paths = [Path(p).expanduser() for p in ([inputs] if isinstance(inputs, (str, Path)) else inputs)]
    if not paths:
        raise DatasetError("config.input_ is empty; point it at a dataset directory or files")
    files: list[Path] = []
    for p in paths:
        if not p.exists():
            raise DatasetError(f"{p}: dataset path does not exist")
        files += _files_of(p)
    suffixes = {f.suffix for f in files}
    bad = [f for f in files if f.suffix not in READ_METHODS]
    if bad:
        raise DatasetError(f"{bad[0]}: unsupported file type; expected .parquet, .json or .jsonl")
    methods = {READ_METHODS[s] for s in suffixes}
    if len(methods) > 1:
        raise DatasetError(f"inputs mix Parquet and JSON files ({sorted(suffixes)}); use one format per run")
    for f in files:
        check_file(f)
    return files, methods.pop()


def check_file(f: Path) -> None:
    """Cheap integrity checks that give a precise message before ray.data runs."""
    size = f.stat().st_size
    if size == 0:
        raise DatasetError(f"{f}: file is empty")
    if f.suffix == ".parquet":
        try:
            pq.ParquetFile(f).metadata
        except Exception as e:  # pyarrow raises ArrowInvalid / OSError
            raise DatasetError(f"{f}: not a readable Parquet file (truncated or corrupt?): {e}") from None
    else:
        with open(f, "rb") as fh:
            fh.seek(max(0, size - 65536))
            tail = fh.read().rstrip(b"\n").split(b"\n")[-1]
        try:
            json.loads(tail)
        except ValueError:
            raise DatasetError(
                f"{f}: the last line is not a complete JSON object (truncated file?): {tail[:80]!r}..."
            ) from None


def find_cards(files: list[Path]) -> list[tuple[Path, dict]]:
    """(card path, card) of every directory holding ``files`` that has a card; the cards must agree
    on the task and shapes."""
    from rllib_cfcql.data.validate import load_card

    cards = [(d / CARD_NAME, load_card(d)) for d in sorted({f.parent for f in files}) if (d / CARD_NAME).exists()]
    for p, c in cards[1:]:
        first_path, first = cards[0]
        if c.get("task") != first.get("task") or c.get("spec") != first.get("spec"):
            raise DatasetError(f"{p}: dataset card task/spec differs from {first_path}; cannot train on both")
    return cards


def find_card(files: list[Path]) -> dict | None:
    cards = find_cards(files)
    return cards[0][1] if cards else None


class TeamOfflineData(OfflineData):
    """RLlib OfflineData for team datasets (see module docstring)."""

    def __init__(self, config):
        self.files, method = resolve_inputs(config.input_)
        if config.input_read_method not in (None, "auto", method):
            raise DatasetError(
                f"input_read_method={config.input_read_method!r} does not match the files ({method} expected "
                f"for {self.files[0].suffix})"
            )
        # RLlib's OfflineData reads `config.input_` with `config.input_read_method`; hand it an
        # unfrozen copy with the resolved file list and read method.
        resolved = config.copy(copy_frozen=False)
        resolved.input_ = [str(f) for f in self.files]
        resolved.input_read_method = method
        kwargs = dict(config.input_read_method_kwargs or {})
        kwargs.setdefault("include_paths", True)
        # read tasks must never wait for CPUs held by learners / env runners
        kwargs.setdefault("num_cpus", 0)
        resolved.input_read_method_kwargs = kwargs
        # Inside a Tune trial, ray.data's tasks default to SPREAD scheduling, i.e. *outside*
        # the trial's placement group, where every CPU may already be reserved by trials: the
        # read never starts and train() hangs. Schedule them into the trial's own group, which
        # CFCQL.default_resource_request sizes with one extra CPU bundle for them.
        ctx = ray.data.DataContext.get_current()
        ctx.enable_progress_bars = False
        pg = ray.util.get_current_placement_group()
        if pg is not None:
            from ray.util.scheduling_strategies import PlacementGroupSchedulingStrategy

            strategy = PlacementGroupSchedulingStrategy(placement_group=pg)
            with warnings.catch_warnings():
                # Ray 2.60 marks these deprecated ("Ray Data manages scheduling internally") but its
                # default still schedules the read outside the trial's placement group
                warnings.simplefilter("ignore", DeprecationWarning)
                ctx.scheduling_strategy = strategy
                ctx.scheduling_strategy_large_args = strategy
        super().__init__(resolved)
        self.config = config
        from rllib_cfcql.data.validate import check_content_hash

        cards = find_cards(self.files)
        for path, card in cards:
            check_content_hash(path.parent, card, trust=bool(getattr(config, "trust_dataset_card", False)))
        self.card = cards[0][1] if cards else None
        self.read_seconds: float | None = None
        # Start reading now, in the background: ray.data's first execution takes seconds to
        # spin up, and overlapping it with the EnvRunner/Learner start-up keeps the time to
        # the first update short. load_episodes() joins it.
        self._t0 = time.perf_counter()
        self._batches: list | None = None
        self._read_error: BaseException | None = None
        self._reader = threading.Thread(target=self._read_all, name="team-dataset-reader", daemon=True)
        self._reader.start()

    def _read_all(self) -> None:
        try:
            self._batches = list(self.data.iter_batches(batch_size=None, batch_format="pyarrow", prefetch_batches=1))
        except BaseException as e:  # re-raised in load_episodes() on the caller's thread
            self._read_error = e

    def load_episodes(self, spec: TeamSpec) -> EpisodeArrays:
        """Read every row through ray.data, validate, and assemble episodes."""
        self._reader.join()
        if self._read_error is not None:
            msg = str(self._read_error).strip().splitlines()
            cause = next((m for m in reversed(msg) if m.strip()), repr(self._read_error))
            raise DatasetError(f"reading {[str(f) for f in self.files]} failed: {cause}") from None
        parts = [columns_from_arrow(batch, spec) for batch in self._batches]
        episodes = assemble_parts(parts, spec, str([str(f) for f in self.files]))
        self.num_rows = episodes.num_transitions
        self.read_seconds = time.perf_counter() - self._t0
        return episodes


def check_card_matches(card: dict | None, task: Any, spec: TeamSpec, where: str = "dataset card") -> None:
    """The card's task (when the run names one) and shapes must be the run's."""
    if card is None:
        return
    if isinstance(task, str) and card.get("task") not in (None, task):
        raise DatasetError(f"{where}: the card says task {card.get('task')!r} but the config's env is {task!r}")
    cs = card.get("spec")
    if cs:
        mine = spec.to_dict()
        diff = {k: (cs.get(k), mine[k]) for k in ("n_agents", "obs_dim", "state_dim", "n_actions") if cs.get(k) != mine[k]}
        if bool(cs.get("continuous", False)) != mine["continuous"]:
            diff["continuous"] = (bool(cs.get("continuous", False)), mine["continuous"])
        if diff:
            raise DatasetError(
                f"{where}: dataset shapes do not match the run's: "
                + ", ".join(f"{k}: dataset {a} vs run {b}" for k, (a, b) in diff.items())
            )
