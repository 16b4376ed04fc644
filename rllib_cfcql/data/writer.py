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
    policy,
    num_episodes: int | None = None,
    seed: int = 0,
    progress: bool = False,
    *,
    min_steps: int | None = None,
) -> EpisodeArrays:
    """Run ``num_episodes`` episodes, or whole episodes until at least ``min_steps``
    transitions; env reset seeds are ``seed + k``. ``policy``: a spec string, a policy
    (e.g. :class:`BehaviourPolicy`) or a :class:`~rllib_cfcql.data.qualities.BehaviourSchedule`
    that picks the policy of each episode."""
    from rllib_cfcql.data.qualities import as_schedule
    from rllib_cfcql.data.schema import step_columns

    if (num_episodes is None) == (min_steps is None):
        raise ValueError(f"rollout: give exactly one of num_episodes and min_steps, got {num_episodes} and {min_steps}")
    for name, v in (("num_episodes", num_episodes), ("min_steps", min_steps)):
        if v is not None and int(v) < 1:
            raise ValueError(f"rollout: {name} must be >= 1, got {v}")
    schedule = as_schedule(policy)
    rng = np.random.default_rng(seed)
    rows: dict[str, list] = {k: [] for k in step_columns(env.team_spec)}
    continuous = env.team_spec.continuous
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=num_episodes or min_steps, desc=f"collect {schedule.description[:60]}",
                   unit="ep" if num_episodes else "step")
    k = 0
    while (k < num_episodes) if num_episodes is not None else (len(rows[K.T]) < min_steps):
        done_frac = k / num_episodes if num_episodes is not None else len(rows[K.T]) / min_steps
        policy = schedule.policy_for(k, done_frac)
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
        k += 1
        if bar is not None:
            bar.update(1 if num_episodes else t)
    if bar is not None:
        bar.close()
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


_REFERENCE_CACHE: dict[str, dict[str, float]] = {}


def reference_returns(task: str, env_config: dict, episodes: int, seed: int, source: str = "auto") -> dict[str, float]:
    """Mean returns of the uniform-random and the task's reference expert
    (:func:`~rllib_cfcql.data.qualities.reference_expert`: the trained expert where the task has
    one, else its scripted expert); deterministic for the arguments, so computed once per
    process for a whole dataset family."""
    key = json.dumps([task, env_config, episodes, seed, source], sort_keys=True)
    if key not in _REFERENCE_CACHE:
        _REFERENCE_CACHE[key] = _reference_returns(task, env_config, episodes, seed, source)
    return dict(_REFERENCE_CACHE[key])


def _reference_returns(task: str, env_config: dict, episodes: int, seed: int, source: str) -> dict[str, float]:
    from rllib_cfcql.data.qualities import reference_expert

    out = {}
    for name, spec in (("random", "random"), ("expert", reference_expert(task, env_config, source))):
        env = make_team_env(task, env_config)
        ep = rollout(env, BehaviourPolicy(spec), episodes, seed=seed)
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
    policy=None,
    episodes: int | None = None,
    seed: int,
    out_dir: str | os.PathLike,
    fmt: str = "parquet",
    quality: str = "custom",
    reference_episodes: int = 200,
    force: bool = False,
    progress: bool = True,
    steps: int | None = None,
    source: str = "auto",
) -> dict:
    """Collect a dataset and write it with its card; returns the card.

    ``source`` (auto | trained | scripted) says which behaviours the quality and the expert
    reference use (:func:`~rllib_cfcql.data.qualities.quality_policy`).

    ``policy``: a spec string or a :class:`~rllib_cfcql.data.qualities.BehaviourSchedule`;
    when it is None the ``quality`` (random | medium | medium-replay | expert | mixed)
    chooses it (:func:`~rllib_cfcql.data.qualities.quality_policy`). Give ``episodes`` or
    ``steps`` (whole episodes until at least that many transitions)."""
    from rllib_cfcql.data.qualities import QUALITIES, describe, quality_policy

    env = make_team_env(task, env_config)  # a bad env_config is reported first
    if policy is None:
        if quality not in QUALITIES:
            raise ValueError(f"collect: no behaviour policy given and quality {quality!r} does not choose one; "
                             f"pass a policy or one of the qualities {list(QUALITIES)}")
        policy = quality_policy(task, quality, env_config, source)
    if (episodes is None) == (steps is None):
        raise ValueError(f"collect: give exactly one of episodes and steps, got episodes={episodes}, steps={steps}")
    t0 = time.perf_counter()
    ep = rollout(env, policy, episodes, seed=seed, progress=progress, min_steps=steps)
    seconds = time.perf_counter() - t0
    files = write_dataset(out_dir, ep, fmt=fmt, force=force)
    refs = reference_returns(task, env_config, reference_episodes, seed=10_000_019, source=source)
    card = make_card(
        task=task, env_config=env_config, episodes=ep, spec=env.team_spec, policy=describe(policy),
        seed=seed, fmt=fmt, files=files, references=refs, quality=quality,
        collection_seconds=seconds,
    )
    card["collection_target"] = {"episodes": int(episodes)} if episodes is not None else {"steps": int(steps)}
    with open(Path(out_dir) / CARD_NAME, "w") as f:
        json.dump(card, f, indent=2)
        f.write("\n")
    return card
