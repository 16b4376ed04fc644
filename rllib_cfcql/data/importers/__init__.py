"""Import other projects' offline MARL datasets into the team schema.

``rllib-cfcql data convert --from KIND`` reads one or more files with the
importer registered under ``KIND`` in :data:`IMPORTERS` and writes a team
dataset (Parquet or JSON lines) with its card, so that every imported dataset
goes through exactly the same validation and loading path as a collected one.

An importer is a function ``(path, *, task, env_config, info=None) ->
EpisodeArrays``. It checks the file against the task's :class:`TeamSpec`,
raises :class:`DatasetError` naming the file, the key and the offending
index/value on the first problem, and may record facts about the file in
``info`` (they end up in the card's ``source`` field). An importer may take
extra keyword-only options (``episode_length``, ``seed``, ...): ``convert``
passes ``--importer-options`` JSON to them and rejects unknown names. New
formats are added as entries of :data:`IMPORTERS`.

The formats: :mod:`.authors_hdf5`, :mod:`.omar_npy`, :mod:`.og_marl_vault` (each module's docstring
describes its layout).
"""

from __future__ import annotations

import hashlib
import inspect
import json
import os
import time
from pathlib import Path
from typing import Sequence

import numpy as np

from rllib_cfcql.data.importers.authors_hdf5 import (
    AUTHORS_KEYS,
    BOOTSTRAP_FILLED,
    REAL_STEPS,
    import_authors_hdf5,
)
from rllib_cfcql.data.importers.common import Importer, concat_episodes, sha256_of
from rllib_cfcql.data.importers.og_marl_vault import VAULT_KEYS, import_og_marl_vault
from rllib_cfcql.data.importers.omar_npy import OMAR_KEYS, import_omar_npy
from rllib_cfcql.data.schema import DatasetError
from rllib_cfcql.envs import make_team_env
from rllib_cfcql.envs.base import TeamSpec

IMPORTERS: dict[str, Importer] = {
    "authors-hdf5": import_authors_hdf5,
    "omar-npy": import_omar_npy,
    "og-marl-vault": import_og_marl_vault,
}


# ---------------------------------------------------------------- convert
def episodes_team_spec(ep) -> TeamSpec:
    """The team shapes of imported episodes (a dataset-only task's spec; ``episode_limit``: the longest)."""
    _, _, n, obs_dim = ep.obs.shape
    n_actions = ep.actions.shape[-1] if ep.continuous else ep.action_mask.shape[-1]
    return TeamSpec(n_agents=int(n), obs_dim=int(obs_dim), state_dim=int(ep.state.shape[-1]), n_actions=int(n_actions),
                    episode_limit=int(ep.lengths().max()), continuous=ep.continuous)


def _check_references(refs) -> dict[str, float]:
    if not isinstance(refs, dict) or set(refs) != {"random", "expert"}:
        raise DatasetError(
            f"reference returns must be an object with exactly the keys 'random' and 'expert', got {refs!r}"
        )
    out = {}
    for k in ("random", "expert"):
        v = refs[k]
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not np.isfinite(v):
            raise DatasetError(f"reference returns: {k!r} must be a finite number, got {v!r}")
        out[k] = float(v)
    if out["expert"] == out["random"]:
        raise DatasetError(f"reference returns: 'random' and 'expert' are both {out['random']}; "
                           "normalised scores would divide by zero")
    return out


def _importer_options(kind: str, importer, options) -> dict:
    """Check ``options`` against the importer's keyword-only parameters."""
    if options is None:
        return {}
    if not isinstance(options, dict):
        raise DatasetError(f"importer options must be a JSON object, got {options!r}")
    params = inspect.signature(importer).parameters
    accepted = [name for name, p in params.items()
                if p.kind is inspect.Parameter.KEYWORD_ONLY and name not in ("task", "env_config", "info")]
    unknown = sorted(set(options) - set(accepted))
    if unknown:
        raise DatasetError(f"importer {kind!r} has no option(s) {unknown}; it accepts {accepted}")
    return dict(options)


def _source_entry(p: Path, info: dict) -> dict:
    """Provenance of one input: a file's size and sha256; for a folder (omar-npy, og-marl-vault), the
    folder actually read (``info["folder"]`` / ``info["vault"]``, e.g. one seed_<k>_data or vault uid):
    its number of files, their total size and one sha256 over their relative paths and contents."""
    if not p.is_dir():
        return {"path": str(p.resolve()), "name": p.name, "bytes": p.stat().st_size, "sha256": sha256_of(p)}
    root = Path(info.get("folder") or info.get("vault") or p)
    files = sorted((f for f in root.rglob("*") if f.is_file()), key=lambda f: f.relative_to(root).as_posix())
    h = hashlib.sha256()
    for f in files:
        h.update(f.relative_to(root).as_posix().encode() + b"\0")
        with open(f, "rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                h.update(chunk)
    return {"path": str(p.resolve()), "name": p.name, "files": len(files),
            "bytes": sum(f.stat().st_size for f in files), "sha256": "sha256:" + h.hexdigest()}


def convert_dataset(
    kind: str,
    inputs: Sequence[str | os.PathLike],
    out_dir: str | os.PathLike,
    *,
    task: str,
    env_config: dict,
    fmt: str = "parquet",
    force: bool = False,
    reference_returns: dict[str, float] | None = None,
    importer_options: dict | None = None,
) -> dict:
    """Import ``inputs`` with the ``kind`` importer, write a team dataset + card; returns the card.

    Every input is read and validated before anything is written. Episodes of
    several inputs are concatenated in the given order (ids renumbered). The
    card gets ``quality="imported"``, ``seed=-1`` and a ``source`` field with
    each original input's path and sha256 (a folder input: over all its
    files); reference returns come from ``reference_returns`` or are measured
    (50 episodes of the random and the scripted-expert policies). ``task=None`` (og-marl-vault only):
    a dataset-only task, shapes from the input, no reference returns unless given; train on it with
    ``env=None``.
    ``importer_options`` are passed to the importer as keyword arguments
    (unknown names are refused).
    """
    from rllib_cfcql.data import collect, writer

    if kind not in IMPORTERS:
        raise DatasetError(f"unknown importer {kind!r}; known: {sorted(IMPORTERS)}")
    if not inputs:
        raise DatasetError(f"convert --from {kind}: no input files given")
    if fmt not in writer.FORMATS:
        raise DatasetError(f"format must be one of {writer.FORMATS}, got {fmt!r}")
    refs = _check_references(reference_returns) if reference_returns is not None else None
    options = _importer_options(kind, IMPORTERS[kind], importer_options)
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise DatasetError(f"{out}: exists and is not a directory")
    if out.exists() and any(out.iterdir()) and not force:
        raise FileExistsError(f"{out} exists and is not empty; pass --force to overwrite")
    if task is None and not getattr(IMPORTERS[kind], "dataset_only", False):
        raise DatasetError(f"convert --from {kind}: needs --task (only og-marl-vault reads its shapes from the input)")
    env = make_team_env(task, env_config) if task is not None else None
    paths = [Path(p) for p in inputs]
    resolved = [p.resolve() for p in paths]
    if len(set(resolved)) != len(resolved):
        raise DatasetError(f"the same input file is given twice: {[str(p) for p in paths]}")
    t0 = time.perf_counter()
    parts, sources = [], []
    for p in paths:
        info: dict = {}
        parts.append(IMPORTERS[kind](p, task=task, env_config=env_config, info=info, **options))
        sources.append({**_source_entry(p, info), **info})
    ep = concat_episodes(parts)
    seconds = time.perf_counter() - t0
    if refs is None and env is not None:  # a dataset-only task has no env to measure them in
        refs = collect.reference_returns(task, env_config, episodes=50, seed=10_000_019)
    spec = env.team_spec if env is not None else episodes_team_spec(ep)
    files = writer.write_dataset(out, ep, fmt=fmt, force=force)
    card = writer.make_card(
        task=task, env_config=env_config, episodes=ep, spec=spec,
        policy=f"imported from {kind}: {', '.join(str(p) for p in paths)}", seed=-1, fmt=fmt, files=files,
        references=refs, quality="imported", collection_seconds=seconds,
    )
    card["source"] = {"kind": kind, "files": sources}
    if options:
        card["source"]["options"] = options
    with open(out / writer.CARD_NAME, "w") as fh:
        json.dump(card, fh, indent=2)
        fh.write("\n")
    return card


__all__ = [
    "AUTHORS_KEYS",
    "BOOTSTRAP_FILLED",
    "IMPORTERS",
    "OMAR_KEYS",
    "REAL_STEPS",
    "VAULT_KEYS",
    "Importer",
    "concat_episodes",
    "convert_dataset",
    "import_authors_hdf5",
    "import_og_marl_vault",
    "import_omar_npy",
    "sha256_of",
]

