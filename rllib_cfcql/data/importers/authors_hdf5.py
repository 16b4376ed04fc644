"""``authors-hdf5``: the CFCQL authors' discrete datasets
------------------------------------------------------
HDF5 files in PyMARL's episode-batch layout (``N`` episodes, ``T+1`` time
slots; extra keys such as ``probs`` are ignored)::

    state          [N, T+1, S]
    obs            [N, T+1, n, O]
    actions        [N, T+1, n, 1]   integer
    avail_actions  [N, T+1, n, A]   1 = available
    reward         [N, T+1, 1]
    terminated     [N, T+1, 1]      1 at a true terminal step
    filled         [N, T+1, 1]      1..1 0..0 per episode

An episode with ``L`` real steps has its observation/state/mask, action,
reward and terminal flag of step ``t < L`` at index ``t`` and the observation
after its last step (the bootstrap observation) at index ``L``. An episode
whose last real step is not terminal was cut by the time limit (truncated).

Two ``filled`` conventions exist and are told apart per file:

* ``real-steps``: ``filled`` is 1 exactly on the ``L`` real steps, so
  ``L = sum(filled)`` (then ``L <= T``: slot ``L`` holds the bootstrap step);
* ``bootstrap-filled``: ``filled`` is also 1 on the bootstrap step, as PyMARL's
  ``EpisodeBatch`` marks it when the runner stores the last observation, so
  ``L = sum(filled) - 1``. This is what the authors' collection code writes.

A file is ``bootstrap-filled`` when an episode fills all ``T+1`` slots (only
possible with that convention), or when more of its terminal episodes have
the terminal flag on the second-to-last filled slot than on the last one;
otherwise it is ``real-steps``. Every episode is then checked against the
chosen convention, so a single corrupted episode is reported, not absorbed.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from rllib_cfcql import keys as K
from rllib_cfcql.data.importers.common import _fmt_shape, _idx
from rllib_cfcql.data.schema import (
    PATH_COLUMN,
    DatasetError,
    EpisodeArrays,
    assemble_episodes,
    episodes_to_rows,
)
from rllib_cfcql.envs import make_team_env
from rllib_cfcql.envs.base import TeamSpec

AUTHORS_KEYS = ("state", "obs", "actions", "avail_actions", "reward", "terminated", "filled")


REAL_STEPS = "real-steps"


BOOTSTRAP_FILLED = "bootstrap-filled"


# ---------------------------------------------------------------- authors-hdf5
def _open_h5(path: Path):
    try:
        import h5py
    except ModuleNotFoundError:
        raise DatasetError(
            f"{path}: reading authors-hdf5 files needs h5py; install it with `pip install 'rllib-cfcql[hdf5]'`"
        ) from None
    if not path.exists():
        raise DatasetError(f"{path}: no such file")
    if path.is_dir():
        raise DatasetError(f"{path}: is a directory, expected an HDF5 file")
    try:
        return h5py, h5py.File(path, "r")
    except Exception as e:  # OSError for truncated/corrupt/non-HDF5 files
        raise DatasetError(f"{path}: not a readable HDF5 file (truncated or corrupt?): {e}") from None


def _check_shapes(path: Path, f, h5py, spec: TeamSpec, task: str, env_config: dict) -> tuple[int, int]:
    """Presence, rank, task dimensions and N / T+1 consistency; returns (N, T+1)."""
    missing = [k for k in AUTHORS_KEYS if k not in f]
    if missing:
        raise DatasetError(
            f"{path}: dataset(s) {missing} missing (the authors' layout needs {list(AUTHORS_KEYS)}); "
            f"the file has {sorted(f.keys())}"
        )
    n, O, S, A = spec.n_agents, spec.obs_dim, spec.state_dim, spec.n_actions
    layout = {
        # key: tuple of (axis name, expected size or None) for the axes after [N, T+1]
        "state": (("state_dim", S),),
        "obs": (("n_agents", n), ("obs_dim", O)),
        "actions": (("n_agents", n), ("1", 1)),
        "avail_actions": (("n_agents", n), ("n_actions", A)),
        "reward": (("1", 1),),
        "terminated": (("1", 1),),
        "filled": (("1", 1),),
    }
    where = f"task {task!r} with env_config {json.dumps(env_config, sort_keys=True)} ({spec.to_dict()})"
    ref_key, ref_shape = None, None
    for key in AUTHORS_KEYS:
        ds = f[key]
        if not isinstance(ds, h5py.Dataset):
            raise DatasetError(f"{path}: {key!r} is an HDF5 group, expected a dataset")
        if ds.dtype.kind not in "biuf":
            raise DatasetError(f"{path}: dataset {key!r} has dtype {ds.dtype}, expected numbers")
        axes = layout[key]
        expected = "[N, T+1, " + ", ".join(name if name != "1" else "1" for name, _ in axes) + "]"
        if ds.ndim != 2 + len(axes):
            raise DatasetError(
                f"{path}: dataset {key!r} has shape {_fmt_shape(ds.shape)} ({ds.ndim} axes), expected {expected}"
            )
        for k, (name, size) in enumerate(axes):
            if ds.shape[2 + k] != size:
                label = f"axis {2 + k}" + (f" ({name})" if name != "1" else "")
                hint = " (does the file belong to another task or n_agents?)" if name != "1" else ""
                raise DatasetError(
                    f"{path}: dataset {key!r} has shape {_fmt_shape(ds.shape)}: {label} is {ds.shape[2 + k]}, "
                    f"expected {size} for {where}; layout {expected}{hint}"
                )
        if ref_key is None:
            ref_key, ref_shape = key, ds.shape
            continue
        for axis, what in ((0, "episodes N (axis 0)"), (1, "time steps T+1 (axis 1)")):
            if ds.shape[axis] != ref_shape[axis]:
                raise DatasetError(
                    f"{path}: dataset {key!r} has {ds.shape[axis]} {what} but {ref_key!r} has {ref_shape[axis]} "
                    f"(shapes {_fmt_shape(ds.shape)} vs {_fmt_shape(ref_shape)}); every dataset must share N and T+1"
                )
    N, T1 = int(ref_shape[0]), int(ref_shape[1])
    if N < 1:
        raise DatasetError(f"{path}: the file holds no episodes (N = 0)")
    if T1 < 2:
        raise DatasetError(f"{path}: datasets have {T1} time step(s); need T+1 >= 2 (at least one step and its successor)")
    return N, T1


def _check_binary(path: Path, key: str, x: np.ndarray) -> None:
    bad = np.argwhere((x != 0) & (x != 1))
    if bad.size:
        i = tuple(bad[0])
        raise DatasetError(f"{path}: dataset {key!r} has value {x[i]} at index {_idx(i)}; expected 0 or 1")


def import_authors_hdf5(
    path: str | os.PathLike, *, task: str, env_config: dict, info: dict | None = None
) -> EpisodeArrays:
    """Read one CFCQL-authors HDF5 file (PyMARL episode-batch layout) as padded episodes.

    Validates presence, shapes against the task, N/T consistency, finiteness,
    0/1 flags, the ``filled`` pattern, terminal flags and the actions against
    ``avail_actions``; raises :class:`DatasetError` naming the file, key and
    index. Episode ids are the episodes' indices in the file. If ``info`` is
    given, the detected ``filled`` convention and the counts are stored in it.
    """
    path = Path(path)
    spec = make_team_env(task, env_config).team_spec
    A = spec.n_actions
    h5py, f = _open_h5(path)
    with f:
        N, T1 = _check_shapes(path, f, h5py, spec, task, env_config)
        try:
            raw = {k: f[k][()] for k in AUTHORS_KEYS}
        except Exception as e:
            raise DatasetError(f"{path}: cannot read the datasets (truncated or corrupt?): {e}") from None

    # --- finiteness, integrality, 0/1 flags (whole arrays) ---
    for key in AUTHORS_KEYS:
        x = raw[key]
        if x.dtype.kind == "f":
            finite = np.isfinite(x)
            if not finite.all():
                i = tuple(np.argwhere(~finite)[0])
                raise DatasetError(
                    f"{path}: dataset {key!r} has non-finite value {x[i]} at index {_idx(i)} "
                    f"(episode {i[0]}, t={i[1]}); NaN/inf are not allowed"
                )
    acts_raw = raw["actions"][..., 0]
    if acts_raw.dtype.kind == "f":
        frac = np.argwhere(acts_raw != np.round(acts_raw))
        if frac.size:
            e, t, i = frac[0]
            raise DatasetError(
                f"{path}: dataset 'actions' has non-integer value {acts_raw[e, t, i]} at index {_idx((e, t, i, 0))}"
            )
    for key in ("filled", "terminated", "avail_actions"):
        _check_binary(path, key, raw[key])
    filled = raw["filled"][..., 0].astype(bool)  # [N, T+1]
    term = raw["terminated"][..., 0].astype(bool)
    avail = raw["avail_actions"].astype(np.float32)  # [N, T+1, n, A]

    # --- filled must be 1..1 0..0 per episode ---
    counts = filled.sum(1)
    empty = np.flatnonzero(counts == 0)
    if empty.size:
        e = int(empty[0])
        raise DatasetError(f"{path}: dataset 'filled' is 0 on every step of episode {e} (filled[{e}, :, 0]); "
                           "an episode needs at least one real step")
    steps = np.arange(T1)
    prefix = steps[None, :] < counts[:, None]
    broken = np.argwhere(filled != prefix)
    if broken.size:
        e, t = (int(v) for v in broken[0])
        zero = int(np.flatnonzero(~filled[e])[0])
        one_after = int(np.flatnonzero(filled[e, zero:])[0]) + zero
        raise DatasetError(
            f"{path}: dataset 'filled' of episode {e} is not of the form 1..1 0..0: "
            f"filled[{e}, {one_after}, 0] = 1 after filled[{e}, {zero}, 0] = 0 "
            "(a gap inside the episode, or episodes spliced together)"
        )

    # --- which filled convention: see the module docstring ---
    last = counts - 1
    rows = np.arange(N)
    term_in = term & filled
    has_term = term_in.any(1)
    on_last = int((has_term & term[rows, last]).sum())
    on_second = int((has_term & (last >= 1) & term[rows, np.maximum(last - 1, 0)]).sum())
    full = np.flatnonzero(counts == T1)
    if full.size or on_second > on_last:
        convention = BOOTSTRAP_FILLED
        lengths = counts - 1
    else:
        convention = REAL_STEPS
        lengths = counts
    conv_note = (
        f"(filled convention {convention!r}: "
        + ("filled also marks the bootstrap step, as PyMARL's EpisodeBatch writes it"
           if convention == BOOTSTRAP_FILLED else "filled marks exactly the real steps")
        + ")"
    )
    if convention == BOOTSTRAP_FILLED:
        no_step = np.flatnonzero(lengths == 0)
        if no_step.size:
            e = int(no_step[0])
            raise DatasetError(f"{path}: dataset 'filled' marks only index {_idx((e, 0, 0))} of episode {e}, "
                               f"which is its bootstrap step {conv_note}; the episode has no real step")
        at_boot = np.flatnonzero(term[rows, lengths] & filled[rows, lengths])
        if at_boot.size:
            e = int(at_boot[0])
            L = int(lengths[e])
            raise DatasetError(
                f"{path}: dataset 'terminated' is 1 at index {_idx((e, L, 0))} (episode {e}, t={L}), the episode's "
                f"bootstrap step, after its last real step t={L - 1} {conv_note}; mixed conventions or a broken episode boundary"
            )
    # terminal flags strictly before the last real step
    early = np.argwhere(term & (steps[None, :] < (lengths - 1)[:, None]))
    if early.size:
        e, t = (int(v) for v in early[0])
        L = int(lengths[e])
        raise DatasetError(
            f"{path}: dataset 'terminated' is 1 at index {_idx((e, t, 0))} (episode {e}, t={t}), before the episode's "
            f"last real step t={L - 1} {conv_note}; only an episode's last step may be terminal "
            "(broken episode boundary?)"
        )

    # --- actions: integer in [0, A) and available, on real steps ---
    real = steps[None, :T1] < lengths[:, None]  # [N, T+1]
    acts = np.rint(acts_raw).astype(np.int64) if acts_raw.dtype.kind == "f" else acts_raw.astype(np.int64)
    out_of_range = np.argwhere(real[..., None] & ((acts < 0) | (acts >= A)))
    if out_of_range.size:
        e, t, i = (int(v) for v in out_of_range[0])
        raise DatasetError(
            f"{path}: dataset 'actions' has {acts[e, t, i]} at index {_idx((e, t, i, 0))} "
            f"(episode {e}, t={t}, agent {i}); expected 0 <= a < {A} (n_actions of {task!r})"
        )
    no_action = np.argwhere(real[..., None] & (avail.sum(-1) == 0))
    if no_action.size:
        e, t, i = (int(v) for v in no_action[0])
        raise DatasetError(
            f"{path}: dataset 'avail_actions' marks no action available at index {_idx((e, t, i))} "
            f"(episode {e}, t={t}, agent {i}), a real step"
        )
    taken = np.take_along_axis(avail, np.clip(acts, 0, A - 1)[..., None], axis=-1)[..., 0]
    unavailable = np.argwhere(real[..., None] & (taken == 0))
    if unavailable.size:
        e, t, i = (int(v) for v in unavailable[0])
        raise DatasetError(
            f"{path}: dataset 'actions' has {acts[e, t, i]} at index {_idx((e, t, i, 0))} "
            f"(episode {e}, t={t}, agent {i}), which avail_actions{_idx((e, t, i, acts[e, t, i]))} = 0 marks unavailable"
        )

    # --- build padded episodes (schema conventions) ---
    Tm = int(lengths.max())
    used = steps[None, : Tm + 1] <= lengths[:, None]  # real steps + bootstrap, [N, Tm+1]
    obs = np.where(used[..., None, None], raw["obs"][:, : Tm + 1], 0).astype(np.float32)
    state = np.where(used[..., None], raw["state"][:, : Tm + 1], 0).astype(np.float32)
    amask = np.where(used[..., None, None], avail[:, : Tm + 1], 1.0).astype(np.float32)
    boot = amask[rows, lengths]
    boot[boot.sum(-1) == 0] = 1.0  # a terminal step may come with an all-zero mask
    amask[rows, lengths] = boot
    rs = real[:, :Tm]
    actions = np.where(rs[..., None], acts[:, :Tm], 0).astype(np.int64)
    reward = np.where(rs, raw["reward"][:, :Tm, 0], 0).astype(np.float32)
    terminated = (rs & term[:, :Tm]).astype(np.float32)
    ep = EpisodeArrays(obs, state, amask, actions, reward, terminated, rs.astype(np.float32),
                       np.arange(N, dtype=np.int64))

    # Same structural validation as a native dataset (and the canonical layout).
    cols = episodes_to_rows(ep)
    cols[PATH_COLUMN] = np.full(len(cols[K.T]), str(path), dtype=object)
    ep = assemble_episodes(cols, spec)
    if info is not None:
        info.update(
            filled_convention=convention,
            episodes=int(ep.num_episodes),
            transitions=int(ep.num_transitions),
            terminated_episodes=int(ep.terminated.sum()),
            time_slots=T1,
        )
    return ep

