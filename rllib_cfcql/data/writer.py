"""Roll out a behaviour policy in a team env and write a dataset + card.

A dataset is a directory::

    <dir>/card.json            the dataset card (see :func:`make_card`)
    <dir>/data-00000.parquet   team-step rows (or data-00000.json, JSON lines)
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import time
from pathlib import Path
from typing import Iterable

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from rllib_cfcql import keys as K
from rllib_cfcql.data.policies import BehaviourPolicy
from rllib_cfcql.data.schema import EpisodeArrays, assemble_episodes, episodes_to_rows
from rllib_cfcql.envs import make_team_env
from rllib_cfcql.envs.base import TeamEnv

CARD_NAME = "card.json"
CARD_VERSION = 1
FORMATS = ("parquet", "json")


def rollout(
    env: TeamEnv,
    policy: BehaviourPolicy,
    num_episodes: int,
    seed: int,
    progress: bool = False,
) -> EpisodeArrays:
    """Run ``num_episodes`` episodes; env reset seeds are ``seed + k``."""
    rng = np.random.default_rng(seed)
    from rllib_cfcql.data.schema import step_columns

    rows: dict[str, list] = {k: [] for k in step_columns(env.team_spec)}
    continuous = env.team_spec.continuous
    it: Iterable[int] = range(num_episodes)
    if progress:
        from tqdm import tqdm

        it = tqdm(it, desc=f"collect {policy.spec}", unit="ep")
    for k in it:
        obs, _ = env.reset(seed=seed + k)
        policy.begin_episode(env, rng)
        t, done = 0, False
        while not done:
            a = policy(env, obs, rng)
            nxt, r, term, trunc, _ = env.step(a)
            done = term or trunc
            rows[K.EPISODE_ID].append(k)
            rows[K.T].append(t)
            rows[K.OBS].append(obs[K.OBS].reshape(-1))
            rows[K.STATE].append(obs[K.STATE])
            if continuous:
                rows[K.ACTIONS].append(np.clip(np.asarray(a, np.float32), -1.0, 1.0).reshape(-1))
            else:
                rows[K.ACTION_MASK].append(obs[K.ACTION_MASK].reshape(-1))
                rows[K.NEXT_ACTION_MASK].append(nxt[K.ACTION_MASK].reshape(-1))
                rows[K.ACTIONS].append(np.asarray(a, np.int64))
            rows[K.REWARD].append(r)
            rows[K.TERMINATED].append(bool(term))
            rows[K.TRUNCATED].append(bool(trunc))
            rows[K.NEXT_OBS].append(nxt[K.OBS].reshape(-1))
            rows[K.NEXT_STATE].append(nxt[K.STATE])
            obs, t = nxt, t + 1
    cols = {k: np.asarray(v) for k, v in rows.items()}
    cols[K.REWARD] = cols[K.REWARD].astype(np.float32)
    cols["path"] = np.full(len(cols[K.T]), "<rollout>", dtype=object)
    return assemble_episodes(cols, env.team_spec)


def rows_to_table(rows: dict[str, np.ndarray]) -> pa.Table:
    def vec(x, t):
        x = np.ascontiguousarray(x)
        return pa.FixedSizeListArray.from_arrays(pa.array(x.reshape(-1), type=t), x.shape[1]).cast(pa.list_(t))

    continuous = rows[K.ACTIONS].dtype.kind == "f"
    arrays = {
        K.EPISODE_ID: pa.array(rows[K.EPISODE_ID], pa.int64()),
        K.T: pa.array(rows[K.T], pa.int32()),
        K.OBS: vec(rows[K.OBS].astype(np.float32), pa.float32()),
        K.STATE: vec(rows[K.STATE].astype(np.float32), pa.float32()),
        K.ACTION_MASK: None if continuous else vec(rows[K.ACTION_MASK].astype(np.float32), pa.float32()),
        K.ACTIONS: vec(rows[K.ACTIONS].astype(np.float32), pa.float32()) if continuous
        else vec(rows[K.ACTIONS].astype(np.int64), pa.int64()),
        K.REWARD: pa.array(rows[K.REWARD], pa.float32()),
        K.TERMINATED: pa.array(rows[K.TERMINATED], pa.bool_()),
        K.TRUNCATED: pa.array(rows[K.TRUNCATED], pa.bool_()),
        K.NEXT_OBS: vec(rows[K.NEXT_OBS].astype(np.float32), pa.float32()),
        K.NEXT_STATE: vec(rows[K.NEXT_STATE].astype(np.float32), pa.float32()),
        K.NEXT_ACTION_MASK: None if continuous else vec(rows[K.NEXT_ACTION_MASK].astype(np.float32), pa.float32()),
    }
    return pa.table({k: v for k, v in arrays.items() if v is not None})


def _write_json(table: pa.Table, path: Path) -> None:
    with open(path, "w") as f:
        for row in table.to_pylist():
            f.write(json.dumps(row, allow_nan=False, separators=(",", ":")))
            f.write("\n")


def files_hash(files: list[Path]) -> str:
    h = hashlib.sha256()
    for p in sorted(files, key=lambda p: p.name):
        h.update(p.name.encode())
        with open(p, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                h.update(chunk)
    return "sha256:" + h.hexdigest()


def data_files(directory: Path) -> list[Path]:
    return sorted(p for p in Path(directory).iterdir() if p.name.startswith("data-") and p.suffix in (".parquet", ".json"))


def _versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for mod in ("numpy", "pyarrow", "ray", "torch", "gymnasium", "pettingzoo", "mpe2"):
        try:
            out[mod] = __import__(mod).__version__
        except Exception:  # pragma: no cover - optional packages
            pass
    return out


def reference_returns(task: str, env_config: dict, episodes: int, seed: int) -> dict[str, float]:
    """Mean returns of the uniform-random and the scripted-expert policies."""
    out = {}
    for name in ("random", "expert"):
        env = make_team_env(task, env_config)
        ep = rollout(env, BehaviourPolicy(name), episodes, seed=seed)
        out[name] = float(ep.returns().mean())
    return out


def make_card(
    *,
    task: str,
    env_config: dict,
    episodes: EpisodeArrays,
    spec,
    policy: str,
    seed: int,
    fmt: str,
    files: list[Path],
    references: dict[str, float],
    quality: str,
    collection_seconds: float,
) -> dict:
    ret = episodes.returns()
    valid = episodes.filled > 0
    acts = episodes.actions[valid]  # [N, n] or [N, n, d]
    if spec.continuous:
        action_stats = {"action_mean": acts.mean(0).round(4).tolist(), "action_std": acts.std(0).round(4).tolist()}
    else:
        counts = np.stack([np.bincount(acts[:, i], minlength=spec.n_actions) for i in range(spec.n_agents)])
        action_stats = {"action_frequencies": (counts / counts.sum(1, keepdims=True)).round(4).tolist()}
    return {
        "card_version": CARD_VERSION,
        "task": task,
        "env_config": env_config,
        "spec": spec.to_dict(),
        "quality": quality,
        "behaviour_policy": policy,
        "seed": seed,
        "format": fmt,
        "files": [p.name for p in files],
        "transitions": int(valid.sum()),
        "episodes": int(episodes.num_episodes),
        "return": {
            "mean": float(ret.mean()),
            "std": float(ret.std()),
            "min": float(ret.min()),
            "max": float(ret.max()),
        },
        **action_stats,
        "reference_returns": {"random": references["random"], "expert": references["expert"]},
        "collection_seconds": round(collection_seconds, 2),
        "versions": _versions(),
        "content_hash": files_hash(files),
    }


def write_dataset(
    out_dir: str | os.PathLike,
    episodes: EpisodeArrays,
    *,
    fmt: str = "parquet",
    rows_per_file: int = 200_000,
    force: bool = False,
) -> list[Path]:
    if fmt not in FORMATS:
        raise ValueError(f"format must be one of {FORMATS}, got {fmt!r}")
    out = Path(out_dir)
    if out.exists() and any(out.iterdir()):
        if not force:
            raise FileExistsError(f"{out} exists and is not empty; pass --force to overwrite")
        for p in data_files(out) + [out / CARD_NAME]:
            if p.exists():
                p.unlink()
    out.mkdir(parents=True, exist_ok=True)
    table = rows_to_table(episodes_to_rows(episodes))
    files = []
    for k, start in enumerate(range(0, table.num_rows, rows_per_file)):
        part = table.slice(start, rows_per_file)
        path = out / f"data-{k:05d}.{fmt}"
        if fmt == "parquet":
            pq.write_table(part, path, compression="zstd")
        else:
            _write_json(part, path)
        files.append(path)
    return files


def collect(
    *,
    task: str,
    env_config: dict,
    policy: str,
    episodes: int,
    seed: int,
    out_dir: str | os.PathLike,
    fmt: str = "parquet",
    quality: str = "custom",
    reference_episodes: int = 200,
    force: bool = False,
    progress: bool = True,
) -> dict:
    """Collect a dataset and write it with its card; returns the card."""
    env = make_team_env(task, env_config)
    t0 = time.perf_counter()
    ep = rollout(env, BehaviourPolicy(policy), episodes, seed=seed, progress=progress)
    seconds = time.perf_counter() - t0
    files = write_dataset(out_dir, ep, fmt=fmt, force=force)
    refs = reference_returns(task, env_config, reference_episodes, seed=10_000_019)
    card = make_card(
        task=task, env_config=env_config, episodes=ep, spec=env.team_spec, policy=policy,
        seed=seed, fmt=fmt, files=files, references=refs, quality=quality,
        collection_seconds=seconds,
    )
    with open(Path(out_dir) / CARD_NAME, "w") as f:
        json.dump(card, f, indent=2)
        f.write("\n")
    return card
