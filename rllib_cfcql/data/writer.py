"""Write a team dataset and its card: from episode arrays (:func:`write_dataset`, :func:`make_card`) or
step by step from your own logging code (:class:`TeamDatasetWriter`). Env rollouts and
``rllib-cfcql data collect`` live in :mod:`rllib_cfcql.data.collect`.

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
from rllib_cfcql.data.schema import (
    EpisodeArrays,
    episodes_to_rows,
    step_columns,
)

CARD_NAME = "card.json"
CARD_VERSION = 1
FORMATS = ("parquet", "json")


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


CARD_PACKAGES = ("numpy", "pyarrow", "ray", "torch", "gymnasium", "pettingzoo", "mpe2")


def package_versions(modules=CARD_PACKAGES) -> dict[str, str]:
    """Python's and each importable module's version (what a card or a checkpoint sidecar records)."""
    out = {"python": platform.python_version()}
    for mod in modules:
        try:
            out[mod] = __import__(mod).__version__
        except Exception:  # pragma: no cover - optional packages
            pass
    return out




def return_distribution(returns: np.ndarray, bins: int = 10) -> dict:
    """Quantiles and a histogram of the episode returns (a card's picture of the data's quality)."""
    r = np.asarray(returns, np.float64)
    q = np.quantile(r, [0.05, 0.25, 0.5, 0.75, 0.95])
    counts, edges = np.histogram(r, bins=bins)
    return {"quantiles": dict(zip(("p5", "p25", "p50", "p75", "p95"), np.round(q, 4).tolist())),
            "histogram": {"edges": np.round(edges, 4).tolist(), "counts": counts.tolist()}}


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
    references: dict[str, float] | None,
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
        "return_distribution": return_distribution(ret),
        **action_stats,
        **({"reference_returns": {"random": references["random"], "expert": references["expert"]}}
           if references is not None else {}),  # a dataset-only import without them has no normalised score
        "collection_seconds": round(collection_seconds, 2),
        "versions": package_versions(),
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


class TeamDatasetWriter:
    """Writes a team dataset from your own logging code — no simulator or registered task needed.

    Append each team step as it happens, close each episode with its final observation, then
    ``close()`` (or use ``with``)::

        from rllib_cfcql import TeamDatasetWriter

        with TeamDatasetWriter("my_logs", n_agents=3, obs_dim=8, n_actions=5) as w:
            for ep in my_episodes:
                for t in range(len(ep.actions)):
                    w.add_step(obs=ep.obs[t], actions=ep.actions[t], reward=ep.rewards[t],
                               action_mask=ep.masks[t])          # masks optional
                w.end_episode(final_obs=ep.obs[-1], terminated=ep.success)

    The directory then holds ``data-*.parquet`` (or ``.json``) in the team schema and a
    ``card.json`` recording the shapes (``spec``), sizes, return and action statistics and a
    content hash — everything ``rllib train`` with ``env: null`` needs. Shapes per call:

    * ``obs`` [n_agents, obs_dim] (or flat), each agent's own observation;
    * ``state`` [state_dim]: the global state. With ``state_dim=None`` (default) the state is the
      concatenation of the agents' observations and ``state`` must not be given;
    * ``actions``: discrete [n_agents] integers in [0, n_actions); continuous
      [n_agents, n_actions] floats in [-1, 1] (``continuous=True``; rescale your actuator range);
    * ``action_mask`` [n_agents, n_actions] of 0/1 (discrete only; default: all available);
    * ``reward``: the team reward of the step;
    * ``end_episode(final_obs, final_state=None, final_action_mask=None, terminated=...)``:
      ``terminated=True`` for a true end (no bootstrap), False for a time limit or a cut log.

    Every input is checked when it is added; a bad one raises ``ValueError`` naming the episode,
    step, field, and what was expected. Optional card fields: ``task`` (a name for your system),
    ``behaviour_policy`` (who produced the logs), ``quality``, ``reference_returns``
    ({"random": R, "expert": R}: enables the normalised score) and ``episode_limit``.
    """

    def __init__(
        self,
        out_dir: str | os.PathLike,
        *,
        n_agents: int,
        obs_dim: int,
        n_actions: int,
        state_dim: int | None = None,
        continuous: bool = False,
        fmt: str = "parquet",
        rows_per_file: int = 200_000,
        task: str | None = None,
        env_config: dict | None = None,
        behaviour_policy: str = "unknown (user logs)",
        quality: str = "custom",
        reference_returns: dict[str, float] | None = None,
        episode_limit: int = 0,
        force: bool = False,
    ):
        from rllib_cfcql.data.validate import team_spec_from_mapping

        if fmt not in FORMATS:
            raise ValueError(f"TeamDatasetWriter: fmt must be one of {FORMATS}, got {fmt!r}")
        if int(rows_per_file) < 1:
            raise ValueError(f"TeamDatasetWriter: rows_per_file must be >= 1, got {rows_per_file}")
        self.derive_state = state_dim is None
        self.spec = team_spec_from_mapping(
            {"n_agents": n_agents, "obs_dim": obs_dim, "n_actions": n_actions, "continuous": bool(continuous),
             "state_dim": n_agents * obs_dim if state_dim is None else state_dim, "episode_limit": episode_limit},
            "TeamDatasetWriter")
        if reference_returns is not None and (not isinstance(reference_returns, dict)
                                              or set(reference_returns) != {"random", "expert"}
                                              or reference_returns["random"] == reference_returns["expert"]):
            raise ValueError(f"TeamDatasetWriter: reference_returns={reference_returns!r}, expected "
                             "{'random': R_random, 'expert': R_expert} with R_random != R_expert")
        self.out = Path(out_dir)
        if self.out.exists() and any(self.out.iterdir()):
            if not force:
                raise FileExistsError(f"{self.out} exists and is not empty; pass force=True to overwrite")
            for p in data_files(self.out) + [self.out / CARD_NAME]:
                if p.exists():
                    p.unlink()
        self.out.mkdir(parents=True, exist_ok=True)
        self.fmt, self.rows_per_file = fmt, int(rows_per_file)
        self.meta = {"task": task, "env_config": dict(env_config or {}), "behaviour_policy": behaviour_policy,
                     "quality": quality, "reference_returns": reference_returns}
        self.files: list[Path] = []
        self._rows: dict[str, list] = {k: [] for k in step_columns(self.spec)}
        self._episode: list[tuple] = []  # the open episode's (obs, state, mask, actions, reward)
        self._returns: list[float] = []
        n, A = self.spec.n_agents, self.spec.n_actions
        self._action_sum = np.zeros((n, A)) if continuous else np.zeros((n, A), np.int64)
        self._action_sq = np.zeros((n, A))
        self._transitions = 0
        self._closed = False
        self._t0 = time.perf_counter()

    # ------------------------------------------------------------ checks
    def _where(self, field: str, final: bool = False) -> str:
        step = "final observation" if final else f"step {len(self._episode)}"
        return f"TeamDatasetWriter({self.out}): episode {len(self._returns)}, {step}, {field}"

    def _vec(self, value, shape: tuple[int, ...], field: str, final: bool = False) -> np.ndarray:
        a = np.asarray(value, dtype=np.float32)
        if a.size != int(np.prod(shape)):
            raise ValueError(f"{self._where(field, final)}: got shape {np.shape(value)}, expected {shape} "
                             f"({int(np.prod(shape))} values)")
        a = a.reshape(shape)
        if not np.isfinite(a).all():
            raise ValueError(f"{self._where(field, final)}: contains NaN/inf")
        return a

    def _obs_state_mask(self, obs, state, mask, final: bool = False):
        n, O, S, A = self.spec.n_agents, self.spec.obs_dim, self.spec.state_dim, self.spec.n_actions
        o = self._vec(obs, (n, O), "obs" if not final else "final_obs", final)
        if self.derive_state:
            if state is not None:
                raise ValueError(f"{self._where('state', final)}: the writer was made with state_dim=None (state = the "
                                 "agents' observations concatenated); pass state_dim=... to record your own state")
            s = o.reshape(-1)
        else:
            if state is None:
                raise ValueError(f"{self._where('state', final)}: missing; the writer was made with state_dim={S}")
            s = self._vec(state, (S,), "state", final)
        m = None
        if self.spec.continuous:
            if mask is not None:
                raise ValueError(f"{self._where('action_mask', final)}: continuous tasks have no action mask")
        else:
            m = np.ones((n, A), np.float32) if mask is None else self._vec(mask, (n, A), "action_mask", final)
            if not np.isin(m, (0.0, 1.0)).all():
                raise ValueError(f"{self._where('action_mask', final)}: must contain only 0/1")
            if (m.sum(-1) == 0).any() and not final:
                i = int(np.flatnonzero(m.sum(-1) == 0)[0])
                raise ValueError(f"{self._where('action_mask')}: agent {i} has no available action")
        return o, s, m

    # ------------------------------------------------------------ API
    def add_step(self, obs, actions, reward, state=None, action_mask=None) -> None:
        """One team step: the observations the agents acted on, their joint action, the team reward."""
        if self._closed:
            raise ValueError(f"TeamDatasetWriter({self.out}): add_step after close()")
        o, s, m = self._obs_state_mask(obs, state, action_mask)
        n, A = self.spec.n_agents, self.spec.n_actions
        if self.spec.continuous:
            a = self._vec(actions, (n, A), "actions")
            if (np.abs(a) > 1.0 + 1e-5).any():
                i, d = np.argwhere(np.abs(a) > 1.0 + 1e-5)[0]
                raise ValueError(f"{self._where('actions')}: agent {i} dimension {d} is {a[i, d]}, expected a value in "
                                 "[-1, 1] (rescale your action range)")
            a = np.clip(a, -1.0, 1.0)
        else:
            raw = np.asarray(actions)
            if raw.size != n or not (np.issubdtype(raw.dtype, np.integer)
                                     or (np.issubdtype(raw.dtype, np.floating) and np.all(raw == np.round(raw)))):
                raise ValueError(f"{self._where('actions')}: got {np.asarray(actions).tolist()!r}, expected {n} integer "
                                 f"actions in [0, {A})")
            a = raw.astype(np.int64).reshape(n)
            bad = np.flatnonzero((a < 0) | (a >= A))
            if bad.size:
                raise ValueError(f"{self._where('actions')}: agent {bad[0]} took action {a[bad[0]]}, expected 0 <= a < {A}")
            unavailable = np.flatnonzero(m[np.arange(n), a] == 0)
            if unavailable.size:
                i = int(unavailable[0])
                raise ValueError(f"{self._where('actions')}: agent {i} took action {a[i]}, which its action_mask marks "
                                 "unavailable")
        r = float(np.asarray(reward, dtype=np.float64).reshape(()))
        if not np.isfinite(r):
            raise ValueError(f"{self._where('reward')}: {reward!r} is not finite")
        self._episode.append((o, s, m, a, r))

    def end_episode(self, final_obs, final_state=None, final_action_mask=None, *, terminated: bool) -> None:
        """Closes the open episode with the observation after its last step; ``terminated=False``
        marks a time limit or a cut log (training bootstraps from ``final_obs`` then)."""
        if not self._episode:
            raise ValueError(f"TeamDatasetWriter({self.out}): end_episode without any add_step in episode "
                             f"{len(self._returns)}")
        if not isinstance(terminated, (bool, np.bool_)):
            raise ValueError(f"{self._where('terminated', True)}: expected True or False, got {terminated!r}")
        o, s, m = self._obs_state_mask(final_obs, final_state, final_action_mask, final=True)
        steps = self._episode + [(o, s, m, None, None)]
        k, L = len(self._returns), len(self._episode)
        rows = self._rows
        for t in range(L):
            cur, nxt = steps[t], steps[t + 1]
            rows[K.EPISODE_ID].append(k)
            rows[K.T].append(t)
            rows[K.OBS].append(cur[0].reshape(-1))
            rows[K.STATE].append(cur[1])
            rows[K.ACTIONS].append(cur[3].reshape(-1))
            rows[K.REWARD].append(cur[4])
            rows[K.TERMINATED].append(bool(terminated) and t == L - 1)
            rows[K.TRUNCATED].append((not terminated) and t == L - 1)
            rows[K.NEXT_OBS].append(nxt[0].reshape(-1))
            rows[K.NEXT_STATE].append(nxt[1])
            if not self.spec.continuous:
                rows[K.ACTION_MASK].append(cur[2].reshape(-1))
                rows[K.NEXT_ACTION_MASK].append(nxt[2].reshape(-1))
            a = cur[3]
            if self.spec.continuous:
                self._action_sum += a
                self._action_sq += a.astype(np.float64) ** 2
            else:
                self._action_sum[np.arange(self.spec.n_agents), a] += 1
        self._returns.append(float(sum(st[4] for st in self._episode)))
        self._transitions += L
        self._episode = []
        if len(rows[K.T]) >= self.rows_per_file:
            self._flush()

    def _flush(self) -> None:
        if not self._rows[K.T]:
            return
        cols = {k: np.asarray(v) for k, v in self._rows.items()}
        cols[K.REWARD] = cols[K.REWARD].astype(np.float32)
        table = rows_to_table(cols)
        path = self.out / f"data-{len(self.files):05d}.{self.fmt}"
        if self.fmt == "parquet":
            pq.write_table(table, path, compression="zstd")
        else:
            _write_json(table, path)
        self.files.append(path)
        self._rows = {k: [] for k in self._rows}

    def close(self) -> dict:
        """Writes the remaining rows and the card; returns the card."""
        if self._closed:
            raise ValueError(f"TeamDatasetWriter({self.out}): close() called twice")
        if self._episode:
            raise ValueError(f"TeamDatasetWriter({self.out}): episode {len(self._returns)} has {len(self._episode)} "
                             "step(s) but was never ended; call end_episode(final_obs, terminated=...) first")
        if not self._returns:
            raise ValueError(f"TeamDatasetWriter({self.out}): no episode was written")
        self._flush()
        self._closed = True
        ret = np.asarray(self._returns)
        N = self._transitions
        if self.spec.continuous:
            mean = self._action_sum / N
            action_stats = {"action_mean": mean.round(4).tolist(),
                            "action_std": np.sqrt(np.maximum(self._action_sq / N - mean**2, 0)).round(4).tolist()}
        else:
            action_stats = {"action_frequencies": (self._action_sum / N).round(4).tolist()}
        card = {
            "card_version": CARD_VERSION,
            "task": self.meta["task"],
            "env_config": self.meta["env_config"],
            "spec": self.spec.to_dict(),
            "quality": self.meta["quality"],
            "behaviour_policy": self.meta["behaviour_policy"],
            "source": "TeamDatasetWriter",
            "format": self.fmt,
            "files": [p.name for p in self.files],
            "transitions": int(N),
            "episodes": int(len(ret)),
            "return": {"mean": float(ret.mean()), "std": float(ret.std()), "min": float(ret.min()),
                       "max": float(ret.max())},
            "return_distribution": return_distribution(ret),
            **action_stats,
            "state": "agents' observations concatenated" if self.derive_state else "given",
            "collection_seconds": round(time.perf_counter() - self._t0, 2),
            "versions": package_versions(),
            "content_hash": files_hash(self.files),
        }
        if self.meta["reference_returns"] is not None:
            card["reference_returns"] = {k: float(v) for k, v in self.meta["reference_returns"].items()}
        with open(self.out / CARD_NAME, "w") as f:
            json.dump(card, f, indent=2)
            f.write("\n")
        return card

    def __enter__(self) -> "TeamDatasetWriter":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()
