"""Pieces the importers share: the importer protocol, hashing, concatenation, shape/finite checks.
"""

from __future__ import annotations

import hashlib
import json
import os
from typing import Protocol, Sequence

import numpy as np

from rllib_cfcql import keys as K
from rllib_cfcql.data.schema import (
    PATH_COLUMN,
    DatasetError,
    EpisodeArrays,
    assemble_episodes,
)
from rllib_cfcql.envs.base import TeamSpec


class Importer(Protocol):
    def __call__(
        self, path: str | os.PathLike, *, task: str, env_config: dict, info: dict | None = None, **options
    ) -> EpisodeArrays: ...


# ---------------------------------------------------------------- helpers
def _idx(index) -> str:
    return "[" + ", ".join(str(int(i)) for i in index) + "]"


def _fmt_shape(shape) -> str:
    return "(" + ", ".join(str(int(s)) for s in shape) + ")"


def sha256_of(path: str | os.PathLike) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return "sha256:" + h.hexdigest()


def concat_episodes(parts: Sequence[EpisodeArrays]) -> EpisodeArrays:
    """Stack episode sets of one task, padding to the longest episode; episode ids
    are renumbered 0..E-1 in order (part 0's episodes first)."""
    if not parts:
        raise DatasetError("no episodes to concatenate")
    if len(parts) == 1:
        p = parts[0]
        return EpisodeArrays(**{**p.as_dict(), "episode_ids": np.arange(p.num_episodes, dtype=np.int64)})
    T = max(p.actions.shape[1] for p in parts)

    def pad(x: np.ndarray, steps: int, value: float) -> np.ndarray:
        if x.shape[1] == steps:
            return x
        width = [(0, 0)] * x.ndim
        width[1] = (0, steps - x.shape[1])
        return np.pad(x, width, constant_values=value)

    out = {}
    for name, steps, value in (
        ("obs", T + 1, 0.0), ("state", T + 1, 0.0), ("action_mask", T + 1, 1.0), ("actions", T, 0),
        ("reward", T, 0.0), ("terminated", T, 0.0), ("filled", T, 0.0),
    ):
        out[name] = np.concatenate([pad(getattr(p, name), steps, value) for p in parts])
    out["episode_ids"] = np.arange(len(out["actions"]), dtype=np.int64)
    return EpisodeArrays(**out)


# ---------------------------------------------------------------- shared by the stream formats
ACTION_TOLERANCE = 1e-5  # |a| may exceed 1 by this much (float noise); it is clipped and counted


DONE_AT_LIMIT = ("truncated", "terminated")


def _task_label(task: str, env_config: dict, spec: TeamSpec) -> str:
    return f"task {task!r} with env_config {json.dumps(env_config, sort_keys=True)} ({spec.to_dict()})"


def _first_non_finite(x: np.ndarray) -> tuple | None:
    if x.dtype.kind != "f":
        return None
    finite = np.isfinite(x)
    if finite.all():
        return None
    return tuple(int(i) for i in np.argwhere(~finite)[0])


def _concat_state(where_file: str, n: int, O: int, spec: TeamSpec, where: str, missing: str) -> None:
    if n * O != spec.state_dim:
        raise DatasetError(
            f"{where_file}: {missing}, and the concatenated observations have n_agents*obs_dim = {n * O} "
            f"values, but {where} needs state_dim {spec.state_dim}; this task's global state is not the "
            "concatenation of the observations, so the dataset must carry it"
        )


def _rows_to_episodes(cols: dict[str, np.ndarray], spec: TeamSpec, source: str) -> EpisodeArrays:
    cols[PATH_COLUMN] = np.full(len(cols[K.T]), source, dtype=object)
    return assemble_episodes(cols, spec)

