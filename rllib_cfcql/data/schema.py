"""The team dataset schema, its validation, and episode assembly.

One row per team step (a JSON line or a Parquet row):

===================  ==========================  =====================================
column               type                        meaning
===================  ==========================  =====================================
episode_id           int64                       episode identifier (unique per file set)
t                    int32                       step index within the episode, from 0
obs                  list<float32>, n*obs_dim    per-agent observations, agent-major
state                list<float32>, state_dim    global state
action_mask          list<float32>, n*n_actions  1 = action available (discrete tasks only)
actions              list<int64>, n              joint action taken (discrete)
                     list<float32>, n*d          joint action in [-1, 1] (continuous, d per agent)
reward               float32                     team reward
terminated           bool                        true terminal (no bootstrap)
truncated            bool                        time limit / cut (bootstrap from next_*)
next_obs             list<float32>, n*obs_dim    observation after the step
next_state           list<float32>, state_dim
next_action_mask     list<float32>, n*n_actions  (discrete tasks only)
===================  ==========================  =====================================

Every episode's rows have ``t = 0..L-1``; only its last row may (and must)
have ``terminated`` or ``truncated`` set; ``next_*`` of step ``t`` equals the
step ``t+1`` values. Episodes are assembled into padded arrays
(:class:`EpisodeArrays`) with ``L+1`` observation steps (the last one is the
bootstrap observation), which serve recurrent agents and TD(λ) alike.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Iterable

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from rllib_cfcql import keys as K
from rllib_cfcql.envs.base import TeamSpec


class DatasetError(ValueError):
    """A dataset does not match the team schema or the task."""


PATH_COLUMN = "path"  # added by ray.data's include_paths=True


def _vector_widths(spec: TeamSpec) -> dict[str, int]:
    n, o, s, a = spec.n_agents, spec.obs_dim, spec.state_dim, spec.n_actions
    if spec.continuous:
        return {K.OBS: n * o, K.STATE: s, K.ACTIONS: n * a, K.NEXT_OBS: n * o, K.NEXT_STATE: s}
    return {
        K.OBS: n * o,
        K.STATE: s,
        K.ACTION_MASK: n * a,
        K.ACTIONS: n,
        K.NEXT_OBS: n * o,
        K.NEXT_STATE: s,
        K.NEXT_ACTION_MASK: n * a,
    }


def step_columns(spec: TeamSpec) -> tuple[str, ...]:
    """The columns a dataset of this task must have (continuous tasks have no masks)."""
    if spec.continuous:
        return tuple(c for c in K.STEP_COLUMNS if c not in (K.ACTION_MASK, K.NEXT_ACTION_MASK))
    return K.STEP_COLUMNS


def _where(table: pa.Table, row: int) -> str:
    if PATH_COLUMN in table.column_names and table.num_rows > row:
        return f"{table.column(PATH_COLUMN)[row].as_py()}"
    return "<dataset>"


def _is_list(t: pa.DataType) -> bool:
    return pa.types.is_list(t) or pa.types.is_large_list(t) or pa.types.is_fixed_size_list(t)


def _type_ok(t: pa.DataType, kind: str) -> bool:
    if kind == "int":
        return pa.types.is_integer(t)
    if kind == "number":
        return pa.types.is_integer(t) or pa.types.is_floating(t)
    if kind == "bool":
        return pa.types.is_boolean(t) or pa.types.is_integer(t)
    raise AssertionError(kind)


def column_kinds(spec: TeamSpec) -> dict[str, tuple[bool, str, str]]:
    """column -> (is a list, value kind, the type to name in messages)."""
    vec = (True, "number", "list<float32>")
    kinds = {K.EPISODE_ID: (False, "int", "int64"), K.T: (False, "int", "int32"),
             K.OBS: vec, K.STATE: vec, K.NEXT_OBS: vec, K.NEXT_STATE: vec,
             K.REWARD: (False, "number", "float32"),
             K.TERMINATED: (False, "bool", "bool"), K.TRUNCATED: (False, "bool", "bool")}
    if spec.continuous:
        kinds[K.ACTIONS] = vec
    else:
        kinds.update({K.ACTIONS: (True, "int", "list<int64>"), K.ACTION_MASK: vec, K.NEXT_ACTION_MASK: vec})
    return kinds


def check_column_types(table: pa.Table, spec: TeamSpec) -> None:
    """Every schema column has a type the schema allows (no silent casts of strings or floats)."""
    for name, (is_list, kind, expected) in column_kinds(spec).items():
        t = table.schema.field(name).type
        value_t = t.value_type if _is_list(t) else t
        if _is_list(t) != is_list or not _type_ok(value_t, kind):
            also = {"number": " (any integer or float type is accepted)", "bool": " (or integers 0/1)"}.get(kind, "")
            raise DatasetError(
                f"{_where(table, 0)}: column {name!r} has type {t}, expected {expected}{also}"
            )


def columns_from_arrow(table: pa.Table, spec: TeamSpec, source: str = "<dataset>") -> dict[str, np.ndarray]:
    """Convert one Arrow batch of team-step rows into typed numpy columns.

    Checks presence, list widths, and finiteness; raises :class:`DatasetError`
    naming the file, column and offending value.
    """
    required = step_columns(spec)
    missing = [c for c in required if c not in table.column_names]
    if missing:
        src = _where(table, 0) if table.num_rows else source
        raise DatasetError(
            f"{src}: column(s) {missing} missing (the team schema needs {list(required)}); "
            "write datasets with `rllib-cfcql data collect` or rllib_cfcql.data.writer"
        )
    check_column_types(table, spec)
    widths = _vector_widths(spec)
    out: dict[str, np.ndarray] = {}
    for name, width in widths.items():
        col = table.column(name).combine_chunks()
        if col.null_count:
            bad = int(np.flatnonzero(np.asarray(col.is_null()))[0])
            raise DatasetError(f"{_where(table, bad)}: column {name!r} is null at row {bad}")
        lengths = np.asarray(pc.list_value_length(col))
        wrong = np.flatnonzero(lengths != width)
        if wrong.size:
            r = int(wrong[0])
            raise DatasetError(
                f"{_where(table, r)}: column {name!r} has {int(lengths[r])} values at row {r}, "
                f"expected {width} for task shapes {spec.to_dict()} "
                "(does the dataset belong to another task or n_agents?)"
            )
        int_actions = name == K.ACTIONS and not spec.continuous
        flat = np.asarray(col.flatten(), dtype=np.int64 if int_actions else np.float32)
        out[name] = flat.reshape(len(table), width)
    for name, dtype in ((K.EPISODE_ID, np.int64), (K.T, np.int64), (K.REWARD, np.float32)):
        col = table.column(name)
        if col.null_count:
            raise DatasetError(f"{_where(table, 0)}: column {name!r} contains nulls")
        out[name] = np.asarray(col, dtype=dtype)
    for name in (K.TERMINATED, K.TRUNCATED):
        col = table.column(name)
        if col.null_count:
            raise DatasetError(f"{_where(table, 0)}: column {name!r} contains nulls")
        values = np.asarray(col)
        if values.dtype != bool and not np.isin(values, (0, 1)).all():
            r = int(np.flatnonzero(~np.isin(values, (0, 1)))[0])
            raise DatasetError(f"{_where(table, r)}: column {name!r} is {values[r].item()!r} at row {r}, expected a bool "
                               "(or the integers 0/1)")
        out[name] = values.astype(bool)
    for name in (K.OBS, K.STATE, K.NEXT_OBS, K.NEXT_STATE, K.REWARD, K.ACTION_MASK, K.NEXT_ACTION_MASK, K.ACTIONS):
        if name not in out or out[name].dtype.kind != "f":
            continue
        finite = np.isfinite(out[name])
        if not finite.all():
            r = int(np.argwhere(~finite)[0][0])
            val = out[name][r] if out[name].ndim == 1 else out[name][r][~finite[r]][0]
            raise DatasetError(
                f"{_where(table, r)}: column {name!r} has non-finite value {val} at row {r} "
                f"(episode_id={out[K.EPISODE_ID][r]}, t={out[K.T][r]}); NaN/inf are not allowed"
            )
    out[PATH_COLUMN] = (
        np.asarray(table.column(PATH_COLUMN).to_pylist(), dtype=object)
        if PATH_COLUMN in table.column_names
        else np.full(len(table), source, dtype=object)
    )
    return out


def assemble_parts(parts: Iterable[dict[str, np.ndarray]], spec: TeamSpec, where: str = "the dataset") -> EpisodeArrays:
    """Episodes from the typed columns of several batches or files (:func:`columns_from_arrow`).

    Episode ids are unique per dataset directory, so the episodes of different directories are
    kept apart by offsetting their ids per directory.
    """
    from pathlib import Path

    parts = list(parts)
    if not parts or not sum(len(p[K.EPISODE_ID]) for p in parts):
        raise DatasetError(f"{where}: the dataset has no rows")
    cols = concat_columns(parts)
    dirs = np.asarray([str(Path(p).parent) for p in cols[PATH_COLUMN]], dtype=object)
    _, dir_idx = np.unique(dirs, return_inverse=True)
    cols[K.EPISODE_ID] = cols[K.EPISODE_ID] + dir_idx.astype(np.int64) * (1 << 40)
    return assemble_episodes(cols, spec)


def concat_columns(parts: Iterable[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    parts = list(parts)
    if not parts:
        raise DatasetError("the dataset has no rows")
    return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}


@dataclass
class EpisodeArrays:
    """Padded episodes. ``E`` episodes, ``T`` = longest episode length.

    obs [E, T+1, n, O], state [E, T+1, S], action_mask [E, T+1, n, A],
    actions [E, T, n] (int64), reward [E, T], terminated [E, T], filled [E, T].
    Continuous tasks: actions [E, T, n, d] (float32) and action_mask [E, T+1, n, 0].
    Padding steps have filled = 0 and every action available.
    """

    obs: np.ndarray
    state: np.ndarray
    action_mask: np.ndarray
    actions: np.ndarray
    reward: np.ndarray
    terminated: np.ndarray
    filled: np.ndarray
    episode_ids: np.ndarray

    @property
    def continuous(self) -> bool:
        return self.actions.dtype.kind == "f"

    @property
    def num_episodes(self) -> int:
        return int(self.actions.shape[0])

    @property
    def num_transitions(self) -> int:
        return int(self.filled.sum())

    def lengths(self) -> np.ndarray:
        return self.filled.sum(1).astype(np.int64)

    def returns(self) -> np.ndarray:
        return (self.reward * self.filled).sum(1)

    def select(self, idx: np.ndarray) -> "EpisodeArrays":
        return EpisodeArrays(**{f.name: getattr(self, f.name)[idx] for f in fields(self)})

    def as_dict(self) -> dict[str, np.ndarray]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


def assemble_episodes(cols: dict[str, np.ndarray], spec: TeamSpec) -> EpisodeArrays:
    """Group step rows into padded episodes, validating the episode structure."""
    n, O, S, A = spec.n_agents, spec.obs_dim, spec.state_dim, spec.n_actions
    src = cols[PATH_COLUMN]
    ep, t = cols[K.EPISODE_ID], cols[K.T]
    order = np.lexsort((t, ep))
    c = {k: v[order] for k, v in cols.items()}
    ep, t, src = c[K.EPISODE_ID], c[K.T], c[PATH_COLUMN]
    N = len(ep)

    def fail(row: int, msg: str):
        raise DatasetError(f"{src[row]}: episode_id={ep[row]} t={t[row]}: {msg}")

    # --- actions in range and available ---
    if spec.continuous:
        acts = c[K.ACTIONS].reshape(N, n, A)
        bad = np.argwhere(np.abs(acts) > 1.0 + 1e-5)
        if bad.size:
            r, i, d = bad[0]
            fail(r, f"column 'actions': agent {i} action dimension {d} is {acts[r, i, d]}, expected a value in "
                    "[-1, 1] (team actions are normalised; rescale the env's action box)")
        mask = np.ones((N, n, 0), np.float32)
    else:
        acts = c[K.ACTIONS].reshape(N, n)
        bad = np.argwhere((acts < 0) | (acts >= A))
        if bad.size:
            r, i = bad[0]
            fail(r, f"column 'actions': agent {i} took action {acts[r, i]}, expected 0 <= a < {A}")
        mask = c[K.ACTION_MASK].reshape(N, n, A)
        if not np.isin(mask, (0.0, 1.0)).all():
            r = int(np.argwhere(~np.isin(mask, (0.0, 1.0)))[0][0])
            fail(r, "column 'action_mask' must contain only 0/1")
        empty = np.argwhere(mask.sum(-1) == 0)
        if empty.size:
            r, i = empty[0]
            fail(r, f"column 'action_mask': agent {i} has no available action")
        taken_avail = np.take_along_axis(mask, acts[..., None], axis=-1)[..., 0]
        bad = np.argwhere(taken_avail == 0)
        if bad.size:
            r, i = bad[0]
            fail(r, f"column 'actions': agent {i} took action {acts[r, i]}, which its action_mask marks unavailable")

    # --- episode boundaries ---
    starts = np.flatnonzero(np.r_[True, ep[1:] != ep[:-1]])
    ends = np.r_[starts[1:], N]
    lengths = ends - starts
    expected_t = np.arange(N) - np.repeat(starts, lengths)
    wrong = np.flatnonzero(t != expected_t)
    if wrong.size:
        r = int(wrong[0])
        e_t = int(expected_t[r])
        what = (f"step t={t[r]} is negative" if t[r] < 0 else
                f"step t={t[r]} occurs more than once (duplicated row)" if t[r] < e_t else
                f"step(s) t={e_t}..{t[r] - 1} are missing (dropped rows)")
        fail(r, f"steps must run 0..L-1 without gaps or duplicates; expected t={e_t}: {what} "
                "(broken episode boundary or duplicated rows)")
    done = c[K.TERMINATED] | c[K.TRUNCATED]
    last = ends - 1
    not_last = np.ones(N, bool)
    not_last[last] = False
    early = np.flatnonzero(done & not_last)
    if early.size:
        fail(int(early[0]), "terminated/truncated is set before the episode's last row (broken episode boundary)")
    open_end = last[~done[last]]
    if open_end.size:
        fail(int(open_end[0]), "the episode's last row has neither terminated nor truncated set "
                               "(truncated file, or an episode split across datasets)")
    both = np.flatnonzero(c[K.TERMINATED] & c[K.TRUNCATED])
    if both.size:
        fail(int(both[0]), "terminated and truncated are both set")
    # next_* of step t must equal the values at step t+1 within an episode.
    inner = np.flatnonzero(not_last)
    pairs = ((K.OBS, K.NEXT_OBS), (K.STATE, K.NEXT_STATE)) + (
        () if spec.continuous else ((K.ACTION_MASK, K.NEXT_ACTION_MASK),))
    for cur, nxt in pairs:
        diff = np.abs(c[nxt][inner] - c[cur][inner + 1]).max(axis=1) if inner.size else np.zeros(0)
        off = np.flatnonzero(diff > 1e-5)
        if off.size:
            fail(int(inner[off[0]]), f"column {nxt!r} differs from {cur!r} of the next step "
                                      "(broken episode boundary: rows of different episodes interleaved?)")

    # --- pad ---
    E, T = len(starts), int(lengths.max())
    e_idx = np.repeat(np.arange(E), lengths)
    obs = np.zeros((E, T + 1, n, O), np.float32)
    state = np.zeros((E, T + 1, S), np.float32)
    amask = np.ones((E, T + 1, n, 0 if spec.continuous else A), np.float32)
    actions = np.zeros((E, T, n, A), np.float32) if spec.continuous else np.zeros((E, T, n), np.int64)
    reward = np.zeros((E, T), np.float32)
    terminated = np.zeros((E, T), np.float32)
    filled = np.zeros((E, T), np.float32)
    obs[e_idx, t] = c[K.OBS].reshape(N, n, O)
    state[e_idx, t] = c[K.STATE]
    amask[e_idx, t] = mask
    actions[e_idx, t] = acts
    reward[e_idx, t] = c[K.REWARD]
    terminated[e_idx, t] = c[K.TERMINATED]
    filled[e_idx, t] = 1.0
    # bootstrap step L_e from the last row's next_*
    obs[np.arange(E), lengths] = c[K.NEXT_OBS][last].reshape(E, n, O)
    state[np.arange(E), lengths] = c[K.NEXT_STATE][last]
    if not spec.continuous:
        nm = c[K.NEXT_ACTION_MASK][last].reshape(E, n, A)
        # a terminal step may come with an all-zero mask; keep the padding convention there
        nm[nm.sum(-1) == 0] = 1.0
        amask[np.arange(E), lengths] = nm
    return EpisodeArrays(obs, state, amask, actions, reward, terminated, filled, ep[starts])


def episodes_to_rows(ep: EpisodeArrays, episode_id_offset: int = 0) -> dict[str, np.ndarray]:
    """Inverse of :func:`assemble_episodes` (used by the writer and tests)."""
    e_idx, t_idx = np.nonzero(ep.filled > 0)
    lengths = ep.lengths()
    last = t_idx == lengths[e_idx] - 1
    term = ep.terminated[e_idx, t_idx] > 0
    rows = {
        K.EPISODE_ID: (ep.episode_ids[e_idx] + episode_id_offset).astype(np.int64),
        K.T: t_idx.astype(np.int32),
        K.OBS: ep.obs[e_idx, t_idx].reshape(len(e_idx), -1),
        K.STATE: ep.state[e_idx, t_idx],
        K.ACTION_MASK: ep.action_mask[e_idx, t_idx].reshape(len(e_idx), -1),
        K.ACTIONS: ep.actions[e_idx, t_idx].reshape(len(e_idx), -1),
        K.REWARD: ep.reward[e_idx, t_idx].astype(np.float32),
        K.TERMINATED: term,
        K.TRUNCATED: last & ~term,
        K.NEXT_OBS: ep.obs[e_idx, t_idx + 1].reshape(len(e_idx), -1),
        K.NEXT_STATE: ep.state[e_idx, t_idx + 1],
        K.NEXT_ACTION_MASK: ep.action_mask[e_idx, t_idx + 1].reshape(len(e_idx), -1),
    }
    if ep.continuous:
        del rows[K.ACTION_MASK], rows[K.NEXT_ACTION_MASK]
    return rows
