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

``authors-hdf5``: the CFCQL authors' discrete datasets
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

``omar-npy``: OMAR / CFCQL-continuous folders of per-agent ``.npy`` files
------------------------------------------------------------------------
The layout OMAR's (and, copied from it, CFCQL-continuous') replay buffer loads,
``datasets/<env>/<quality>/seed_<k>_data/``, one file per agent ``i`` and
quantity, one row per team step, rows in collection order::

    obs_<i>.npy          [N, O]      agent i's observation
    acs_<i>.npy          [N, d]      agent i's action, in [-1, 1] (the actors clamp it)
    rews_<i>.npy         [N] or [N, 1]
    next_obs_<i>.npy     [N, O]
    dones_<i>.npy        [N] or [N, 1]   0/1 (the same for every agent)
    states_<i>.npy       [N, S]      MA-MuJoCo only: the global state (a copy per agent)
    next_states_<i>.npy  [N, S]

The input is the ``seed_<k>_data`` folder itself, or its parent when that
holds one seed folder (several: pick one with the ``seed`` option). There are
no episode ids: an episode ends after ``episode_length`` rows (option,
default the task's ``episode_limit``: 25 for MPE) or earlier at a row whose
done flag is set. The row count must be consistent with that (the last
episode must end on a done flag or after exactly ``episode_length`` rows), and
inside an episode ``next_obs[t]`` must equal ``obs[t+1]`` (``next_states`` /
``states`` likewise); the first row that breaks it is reported with its file.

* Team reward = the mean of the agents' ``rews_<i>``.
* Global state = ``states_0`` when ``states_<i>.npy`` files exist (every
  agent's copy must agree); otherwise the concatenation of all agents'
  observations in agent order, which is exactly what mpe2's
  ``simple_spread_v3.state()`` returns (and what ``mpe_spread`` stores), so it
  needs ``state_dim == n_agents * obs_dim``.
* Actions: OMAR's MPE action is u ∈ [-1, 1]² applied as the force 5·u; our
  continuous ``mpe_spread`` team action is the same u (``mpe_force_from_2d``
  turns it into mpe2's 5-vector, from which mpe2 rebuilds the force 5·u), so
  actions are copied unchanged (identity). A value beyond ±1 by more than
  1e-5 is refused (the actors clamp to [-1, 1], so it is corruption or another
  action scale); smaller float overshoots are clipped and counted
  (``actions_clipped`` in the card).
* An episode that ends after ``episode_length`` rows is ``truncated`` (a time
  limit, bootstrapped), with or without a done flag there, as in datasets
  collected here; ``done_at_limit="terminated"`` reproduces OMAR's own
  training semantics (its TD target treats every done as terminal). A done
  flag before the limit is ``terminated``.
* Only continuous tasks; obs / action / state widths are checked against the
  task (the error names the file, its shape and the expected width).

What is and is not comparable (MPE cooperative navigation): OMAR's datasets
come from OMAR's own fork of the particle environments. Same as mpe2's
``simple_spread_v3``: the observation layout and width ([own velocity 2, own
position 2, landmarks 2N, other agents 2(N-1), communication 2(N-1)]; 18 for 3
agents), uniform(-1, 1) initial positions, agent size 0.15, the force scale 5
and the action convention. Different: the reward. OMAR's agent reward is
``sum over landmarks of min(1 / distance of the closest agent, 10)`` minus 5
per collision (per agent, no ``local_ratio`` mix); mpe2's is ``-sum of the
closest distances`` (global) plus -1 per collision (local), mixed by
``local_ratio``. Returns of an imported OMAR dataset are therefore on OMAR's
scale: normalised scores against reference returns measured in mpe2 (what
``convert`` measures by default) are meaningless. Pass ``--reference-returns``
measured in OMAR's environment, and evaluate policies trained on OMAR data in
OMAR's reward if numbers are to be compared with the OMAR / CFCQL papers.
The physics was not compared bit for bit.

``og-marl-vault``: OG-MARL Vaults (flashbax)
--------------------------------------------
A Vault directory ``<rel_dir>/<vault_name>/<vault_uid>/`` (``metadata.json``
plus a TensorStore OCDBT/zarr store), read with flashbax's ``Vault`` (the
reader OG-MARL maintains; optional extra: ``pip install 'rllib-cfcql[og-marl]'``,
which brings jax). The input is the ``<vault_uid>`` folder, or the
``<vault_name>`` folder with the ``vault_uid`` option (or a single uid). Leaves,
``B`` streams of ``T`` consecutive steps::

    observations  [B, T, N, O]
    actions       [B, T, N] integer (discrete) | [B, T, N, d] in [-1, 1] (continuous)
    rewards       [B, T, N] or [B, T]
    terminals     [B, T, N] or [B, T]   0/1
    truncations   [B, T, N] or [B, T]   0/1
    infos.legals  [B, T, N, A]          discrete tasks; absent = every action available
    infos.state   [B, T, S]             absent = concatenated observations (see omar-npy)

Each index holds one step; the next index of the same stream is the next step,
or the first step of the next episode after a step where every agent is
terminal or truncated (terminal wins when both are set). A vault does not store
the observation after an episode's last step, so: a *terminated* episode keeps
every step and gets its last observation/state repeated as the (never used:
no bootstrap) successor; a *truncated* episode loses its last step, whose
successor is unknown (counted in ``truncated_last_steps_dropped``), so every
kept transition is exact. Team reward = mean over agents. Steps after a
stream's last episode end are refused (``drop_incomplete_tail=True`` drops
them instead, counted). Comparability: only vaults recorded on a task with the
same observation/state layout as ours mean anything here; OG-MARL's
``omar/mpe/simple_spread`` vaults carry OMAR's rewards (see above).
"""

from __future__ import annotations

import contextlib
import hashlib
import inspect
import io
import json
import os
import re
import time
from pathlib import Path
from typing import Protocol, Sequence

import numpy as np

from rllib_cfcql import keys as K
from rllib_cfcql.data.schema import PATH_COLUMN, DatasetError, EpisodeArrays, assemble_episodes, episodes_to_rows
from rllib_cfcql.envs import make_team_env
from rllib_cfcql.envs.base import TeamSpec

AUTHORS_KEYS = ("state", "obs", "actions", "avail_actions", "reward", "terminated", "filled")
REAL_STEPS = "real-steps"
BOOTSTRAP_FILLED = "bootstrap-filled"


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


# ---------------------------------------------------------------- omar-npy
OMAR_KEYS = ("obs", "acs", "rews", "next_obs", "dones")
OMAR_STATE_KEYS = ("states", "next_states")
_OMAR_FILE = re.compile(r"(obs|acs|rews|next_obs|dones|states|next_states)_(\d+)\.npy")
_SEED_DIR = re.compile(r"seed_(\d+)_data")


def _omar_folder(path: Path, seed: int | None) -> Path:
    if not path.exists():
        raise DatasetError(f"{path}: no such directory")
    if not path.is_dir():
        raise DatasetError(f"{path}: is a file; omar-npy reads a folder of obs_<i>.npy, acs_<i>.npy, ... files "
                           "(OMAR's seed_<k>_data) or the folder holding it")
    if seed is not None:
        if isinstance(seed, bool) or not isinstance(seed, int):
            raise DatasetError(f"omar-npy option 'seed' must be an integer, got {seed!r}")
        if path.name == f"seed_{seed}_data":
            return path
    seeds = {int(m.group(1)): p for p in path.iterdir() if p.is_dir() and (m := _SEED_DIR.fullmatch(p.name))}
    if seed is not None:
        if seed not in seeds:
            raise DatasetError(f"{path}: no seed_{seed}_data folder (found {[seeds[k].name for k in sorted(seeds)]})")
        return seeds[seed]
    if any(_OMAR_FILE.fullmatch(p.name) for p in path.iterdir()):
        return path
    if len(seeds) == 1:
        return next(iter(seeds.values()))
    if seeds:
        raise DatasetError(
            f"{path}: holds several seed folders {[seeds[k].name for k in sorted(seeds)]}, each a separate dataset; "
            "give one folder, or choose with --importer-options '{\"seed\": K}'"
        )
    raise DatasetError(f"{path}: holds neither OMAR files (obs_0.npy, acs_0.npy, ...) nor seed_<k>_data folders")


def _load_npy(file: Path) -> np.ndarray:
    try:
        x = np.load(file, allow_pickle=False)
    except Exception as e:  # ValueError / OSError / EOFError for truncated or foreign files
        raise DatasetError(f"{file}: not a readable .npy file (truncated or corrupt?): {e}") from None
    if not isinstance(x, np.ndarray) or x.dtype.kind not in "biuf":
        raise DatasetError(f"{file}: holds {getattr(x, 'dtype', type(x).__name__)}, expected a numeric array")
    return x


def _cut_episodes(done: np.ndarray, L: int, folder: Path) -> tuple[np.ndarray, np.ndarray]:
    """Episode (start, end) rows: a cut after every ``L`` rows and after each done row."""
    N = len(done)
    starts, ends = [], []
    start = 0
    for r in [*np.flatnonzero(done).tolist(), None]:
        stop = N if r is None else r + 1
        full, rest = divmod(stop - start, L)
        for k in range(full):
            starts.append(start + k * L)
            ends.append(start + (k + 1) * L - 1)
        if rest:
            if r is None:
                s = start + full * L
                raise DatasetError(
                    f"{folder}: {N} rows do not split into episodes: the last {N - s} rows (rows {s}..{N - 1}) end "
                    f"without a done flag before episode_length={L} (a truncated file, or the wrong episode_length?)"
                )
            starts.append(start + full * L)
            ends.append(stop - 1)
        start = stop
    return np.asarray(starts, np.int64), np.asarray(ends, np.int64)


def import_omar_npy(
    path: str | os.PathLike,
    *,
    task: str,
    env_config: dict,
    info: dict | None = None,
    episode_length: int | None = None,
    done_at_limit: str = "truncated",
    seed: int | None = None,
) -> EpisodeArrays:
    """Read one OMAR / CFCQL-continuous dataset folder (per-agent ``.npy`` files) as padded episodes.

    See the module docstring (``omar-npy``) for the layout, the episode cuts,
    the state/reward/action mapping and what is comparable. Raises
    :class:`DatasetError` naming the file, row and value of the first problem.
    """
    path = Path(path)
    spec = make_team_env(task, env_config).team_spec
    where = _task_label(task, env_config, spec)
    if not spec.continuous:
        hint = " (pass --env-config '{\"continuous_actions\": true}')" if task == "mpe_spread" else ""
        raise DatasetError(f"{path}: omar-npy datasets hold continuous actions, but {where} is discrete{hint}")
    n, O, S, d = spec.n_agents, spec.obs_dim, spec.state_dim, spec.n_actions
    L = spec.episode_limit if episode_length is None else episode_length
    if isinstance(L, bool) or not isinstance(L, int) or L < 1:
        raise DatasetError(f"omar-npy option 'episode_length' must be a positive integer, got {L!r}")
    if done_at_limit not in DONE_AT_LIMIT:
        raise DatasetError(f"omar-npy option 'done_at_limit' must be one of {list(DONE_AT_LIMIT)}, got {done_at_limit!r}")
    folder = _omar_folder(path, seed)

    # --- which files: every agent i < n needs each of OMAR_KEYS (+ states when any is present) ---
    present = {(m.group(1), int(m.group(2))) for p in folder.iterdir() if (m := _OMAR_FILE.fullmatch(p.name))}
    extra = sorted({i for _, i in present if i >= n})
    if extra:
        k = min(key for key, i in present if i == extra[0])
        raise DatasetError(
            f"{folder}: holds files of agent(s) {extra} (e.g. {k}_{extra[0]}.npy), but {where} has n_agents={n}, "
            f"numbered 0..{n - 1} (a dataset of another scenario or team size?)"
        )
    with_states = any(key in OMAR_STATE_KEYS for key, _ in present)
    keys = OMAR_KEYS + (OMAR_STATE_KEYS if with_states else ())
    for i in range(n):
        for key in keys:
            if (key, i) not in present:
                note = " (once any states_<i>/next_states_<i> file exists, every agent needs both)" if key in OMAR_STATE_KEYS else ""
                raise DatasetError(
                    f"{folder / f'{key}_{i}.npy'}: missing; the OMAR layout needs "
                    f"{', '.join(f'{k}_<i>.npy' for k in keys)} for every agent i < n_agents={n}{note}"
                )

    # --- load, shapes against the task, one row count ---
    widths = {"obs": (O, "obs_dim"), "next_obs": (O, "obs_dim"), "acs": (d, "action dimension"),
              "states": (S, "state_dim"), "next_states": (S, "state_dim")}
    raw: dict[tuple[str, int], np.ndarray] = {}
    N, ref = None, None
    for i in range(n):
        for key in keys:
            f = folder / f"{key}_{i}.npy"
            x = _load_npy(f)
            if key in ("rews", "dones"):
                if x.ndim == 2 and x.shape[1] == 1:
                    x = x[:, 0]
                if x.ndim != 1:
                    raise DatasetError(f"{f}: shape {_fmt_shape(x.shape)}, expected [N] or [N, 1] (one value per row)")
            else:
                width, name = widths[key]
                if x.ndim != 2:
                    raise DatasetError(f"{f}: shape {_fmt_shape(x.shape)}, expected [N, {width}] ([rows, {name}])")
                if x.shape[1] != width:
                    hint = {"obs_dim": " (a different scenario, n_agents or MPE version?)",
                            "state_dim": " (states of another task?)",
                            "action dimension": " (MPE's continuous action is 2-D)"}[name]
                    raise DatasetError(
                        f"{f}: shape {_fmt_shape(x.shape)}: axis 1 ({name}) is {x.shape[1]}, expected {width} "
                        f"for {where}{hint}"
                    )
            if N is None:
                N, ref = x.shape[0], f.name
            elif x.shape[0] != N:
                raise DatasetError(f"{f}: {x.shape[0]} rows, but {ref} has {N}; every file must hold one row per team step")
            bad = _first_non_finite(x)
            if bad is not None:
                at = f"row {bad[0]}" + (f", column {bad[1]}" if len(bad) > 1 else "")
                raise DatasetError(f"{f}: non-finite value {x[bad]} at {at}; NaN/inf are not allowed")
            raw[key, i] = x
    if N == 0:
        raise DatasetError(f"{folder}: the files hold no rows")

    # --- done flags: 0/1 and the same for every agent ---
    for i in range(n):
        x = raw["dones", i]
        bad = np.flatnonzero((x != 0) & (x != 1))
        if bad.size:
            r = int(bad[0])
            raise DatasetError(f"{folder / f'dones_{i}.npy'}: value {x[r]} at row {r}; expected 0 or 1")
    done = raw["dones", 0] != 0
    for i in range(1, n):
        off = np.flatnonzero((raw["dones", i] != 0) != done)
        if off.size:
            r = int(off[0])
            raise DatasetError(
                f"{folder / f'dones_{i}.npy'}: row {r} is {raw['dones', i][r]} but dones_0.npy row {r} is "
                f"{raw['dones', 0][r]}; every agent's done flags must agree (one team episode)"
            )

    # --- actions in [-1, 1] (float overshoot within ACTION_TOLERANCE is clipped and counted) ---
    clipped = 0
    for i in range(n):
        a = raw["acs", i]
        bad = np.argwhere(np.abs(a) > 1.0 + ACTION_TOLERANCE)
        if bad.size:
            r, c = (int(v) for v in bad[0])
            raise DatasetError(
                f"{folder / f'acs_{i}.npy'}: value {a[r, c]} at row {r}, column {c}, expected a value in [-1, 1] "
                "(OMAR's and CFCQL's actors clamp actions to [-1, 1]: a corrupt file or another action scale)"
            )
        over = np.abs(a) > 1.0
        clipped += int(over.sum())
        raw["acs", i] = np.clip(a, -1.0, 1.0)

    # --- state copies agree ---
    if with_states:
        for key in OMAR_STATE_KEYS:
            for i in range(1, n):
                diff = np.abs(raw[key, i].astype(np.float64) - raw[key, 0]).max(axis=1)
                off = np.flatnonzero(diff > 1e-6)
                if off.size:
                    r = int(off[0])
                    raise DatasetError(
                        f"{folder / f'{key}_{i}.npy'}: row {r} differs from {key}_0.npy row {r} "
                        f"(max |difference| {diff[r]:.4g}); every agent's copy of the global state must agree"
                    )

    # --- episodes: cut every L rows and after done rows ---
    starts, ends = _cut_episodes(done, L, folder)
    lengths = ends - starts + 1
    E = len(starts)
    inner = np.ones(N, bool)
    inner[ends] = False
    inner_rows = np.flatnonzero(inner)
    ep_of_row = np.repeat(np.arange(E), lengths)
    pairs = [("obs", "next_obs")] + ([("states", "next_states")] if with_states else [])
    first = None  # (row, file, cur file, max diff)
    for cur, nxt in pairs:
        for i in range(n):
            a = raw[nxt, i][inner_rows].astype(np.float32)
            b = raw[cur, i][inner_rows + 1].astype(np.float32)
            diff = np.abs(a - b).max(axis=1) if inner_rows.size else np.zeros(0)
            off = np.flatnonzero(diff > 1e-5)
            if off.size and (first is None or inner_rows[off[0]] < first[0]):
                first = (int(inner_rows[off[0]]), f"{nxt}_{i}.npy", f"{cur}_{i}.npy", float(diff[off[0]]))
    if first is not None:
        r, fn, cn, dmax = first
        e = int(ep_of_row[r])
        raise DatasetError(
            f"{folder / fn}: row {r} differs from {cn} row {r + 1} (max |difference| {dmax:.4g}) inside episode {e} "
            f"(rows {starts[e]}..{ends[e]}); episodes are cut every episode_length={L} rows and after done flags, "
            "so a dropped, duplicated or reordered row (or the wrong episode_length) breaks this"
        )

    # --- team rows ---
    f32 = np.float32
    obs = np.stack([raw["obs", i] for i in range(n)], 1).astype(f32).reshape(N, n * O)
    next_obs = np.stack([raw["next_obs", i] for i in range(n)], 1).astype(f32).reshape(N, n * O)
    if with_states:
        state, next_state = raw["states", 0].astype(f32), raw["next_states", 0].astype(f32)
        state_source = "states_0.npy / next_states_0.npy"
    else:
        _concat_state(str(folder), n, O, spec, where, "there are no states_<i>.npy files")
        state, next_state = obs.copy(), next_obs.copy()
        state_source = "concatenated observations (mpe2's state() layout)"
    reward = np.mean(np.stack([raw["rews", i].astype(np.float64) for i in range(n)], 0), axis=0).astype(f32)
    at_limit = lengths == L
    term_ep = done[ends] & ((~at_limit) | (done_at_limit == "terminated"))
    terminated = np.zeros(N, bool)
    truncated = np.zeros(N, bool)
    terminated[ends[term_ep]] = True
    truncated[ends[~term_ep]] = True
    cols = {
        K.EPISODE_ID: ep_of_row.astype(np.int64),
        K.T: (np.arange(N) - np.repeat(starts, lengths)).astype(np.int64),
        K.OBS: obs,
        K.STATE: state,
        K.ACTIONS: np.stack([raw["acs", i] for i in range(n)], 1).astype(f32).reshape(N, n * d),
        K.REWARD: reward,
        K.TERMINATED: terminated,
        K.TRUNCATED: truncated,
        K.NEXT_OBS: next_obs,
        K.NEXT_STATE: next_state,
    }
    ep = _rows_to_episodes(cols, spec, str(folder))
    if info is not None:
        info.update(
            folder=str(folder),
            rows=int(N),
            episode_length=int(L),
            episodes=int(ep.num_episodes),
            transitions=int(ep.num_transitions),
            terminated_episodes=int(term_ep.sum()),
            done_flags=int(done.sum()),
            done_at_limit=done_at_limit,
            actions_clipped=clipped,
            state_source=state_source,
            reward="mean over the agents' rews_<i>.npy",
        )
        if task == "mpe_spread":
            info["comparability"] = (
                "OMAR's MPE fork: same observation layout, action convention and scales as mpe2's "
                "simple_spread_v3, but OMAR's reward (sum of min(1/closest distance, 10) per landmark, -5 per "
                "collision): returns and normalised scores are not comparable with mpe2-measured references"
            )
    return ep


# ---------------------------------------------------------------- og-marl-vault
VAULT_KEYS = ("observations", "actions", "rewards", "terminals", "truncations")
VAULT_METADATA = "metadata.json"


def _vault_location(path: Path, vault_uid: str | None) -> Path:
    if not path.exists():
        raise DatasetError(f"{path}: no such directory")
    if not path.is_dir():
        raise DatasetError(f"{path}: is a file; og-marl-vault reads a vault directory <vault_name>/<vault_uid>")
    if (path / VAULT_METADATA).is_file():
        if vault_uid is not None and vault_uid != path.name:
            raise DatasetError(f"{path}: is the vault uid {path.name!r}, but the option vault_uid is {vault_uid!r}")
        return path
    uids = sorted(p.name for p in path.iterdir() if (p / VAULT_METADATA).is_file())
    if vault_uid is not None:
        if vault_uid not in uids:
            raise DatasetError(f"{path}: no vault uid {vault_uid!r} (a folder with {VAULT_METADATA}); found {uids}")
        return path / vault_uid
    if len(uids) == 1:
        return path / uids[0]
    if uids:
        raise DatasetError(f"{path}: holds several vault uids {uids}; give one folder, or choose with "
                           "--importer-options '{\"vault_uid\": \"NAME\"}'")
    raise DatasetError(f"{path}: not a flashbax vault: no {VAULT_METADATA} here nor in a sub-folder")


def _flat_keys(tree, prefix: str = "") -> list[str]:
    out = []
    for k, v in tree.items():
        name = f"{prefix}{k}"
        out += _flat_keys(v, name + ".") if isinstance(v, dict) else [name]
    return out


def _read_vault(loc: Path) -> tuple[dict[str, np.ndarray], str]:
    try:
        from flashbax.vault import Vault
    except ModuleNotFoundError as e:
        raise DatasetError(
            f"{loc}: reading OG-MARL vaults needs flashbax (which brings jax), not installed here ({e}); "
            "install the optional extra: pip install 'rllib-cfcql[og-marl]'"
        ) from None
    from importlib.metadata import version

    meta_path = loc / VAULT_METADATA
    try:
        meta = json.loads(meta_path.read_text())
        structure = meta["structure_shape"]
        if not isinstance(structure, dict):
            raise TypeError("structure_shape is not an object")
    except Exception as e:
        raise DatasetError(f"{meta_path}: not a flashbax vault metadata file (truncated or corrupt?): {e}") from None
    present = _flat_keys(structure)
    missing = [k for k in VAULT_KEYS if k not in present]
    if missing:
        raise DatasetError(
            f"{loc}: the vault has no {missing} (it holds {present}); an OG-MARL vault needs {list(VAULT_KEYS)}, "
            "plus infos.legals (discrete tasks) and infos.state where the task's state is not the concatenated observations"
        )
    try:
        with contextlib.redirect_stdout(io.StringIO()):  # flashbax prints "Loading vault found at ..."
            experience = Vault(vault_name=loc.parent.name, rel_dir=str(loc.parent.parent.resolve()),
                               vault_uid=loc.name).read().experience
        flat: dict[str, np.ndarray] = {}

        def walk(tree, prefix=""):
            for k, v in tree.items():
                if isinstance(v, dict):
                    walk(v, f"{prefix}{k}.")
                else:
                    flat[f"{prefix}{k}"] = np.asarray(v)

        walk(experience)
    except Exception as e:  # tensorstore / orbax errors for truncated or missing chunks
        raise DatasetError(f"{loc}: the vault cannot be read (truncated or corrupt?): {type(e).__name__}: {e}") from None
    return flat, f"flashbax {version('flashbax')}"


def import_og_marl_vault(
    path: str | os.PathLike,
    *,
    task: str,
    env_config: dict,
    info: dict | None = None,
    vault_uid: str | None = None,
    drop_incomplete_tail: bool = False,
) -> EpisodeArrays:
    """Read one OG-MARL vault (flashbax) as padded episodes; see the module docstring (``og-marl-vault``).

    Raises :class:`DatasetError` naming the vault, the leaf and the index of the first problem.
    """
    path = Path(path)
    spec = make_team_env(task, env_config).team_spec
    where = _task_label(task, env_config, spec)
    n, O, S, A = spec.n_agents, spec.obs_dim, spec.state_dim, spec.n_actions
    loc = _vault_location(path, vault_uid)
    data, reader = _read_vault(loc)

    # --- shapes against the task; one [B, T] ---
    def per_agent(key: str) -> np.ndarray:  # [B, T, N] or [B, T] (team) -> [B, T, N]
        x = data[key]
        if x.ndim == 4 and x.shape[3] == 1:
            x = x[..., 0]
        if x.ndim == 2:
            x = np.repeat(x[..., None], n, axis=2)
        if x.ndim != 3:
            raise DatasetError(f"{loc}: {key!r} has shape {_fmt_shape(data[key].shape)}, expected [B, T, N] or [B, T]")
        return x

    layout = {"observations": (("n_agents", n), ("obs_dim", O))}
    if spec.continuous:
        layout["actions"] = (("n_agents", n), ("action dimension", A))
    if "infos.state" in data:
        layout["infos.state"] = (("state_dim", S),)
    if not spec.continuous and "infos.legals" in data:
        layout["infos.legals"] = (("n_agents", n), ("n_actions", A))
    if not spec.continuous:
        acts = data["actions"]
        if acts.ndim == 4 and acts.shape[3] == 1:
            data["actions"] = acts[..., 0]
        layout["actions"] = (("n_agents", n),)
    for key, axes in layout.items():
        x = data[key]
        expected = "[B, T, " + ", ".join(name for name, _ in axes) + "]"
        if x.ndim != 2 + len(axes):
            raise DatasetError(f"{loc}: {key!r} has shape {_fmt_shape(x.shape)}, expected {expected}")
        for k, (name, size) in enumerate(axes):
            if x.shape[2 + k] != size:
                raise DatasetError(
                    f"{loc}: {key!r} has shape {_fmt_shape(x.shape)}: axis {2 + k} ({name}) is {x.shape[2 + k]}, "
                    f"expected {size} for {where}; layout {expected} (a vault of another task?)"
                )
    for key in ("rewards", "terminals", "truncations"):
        data[key] = per_agent(key)
        if data[key].shape[2] != n:
            raise DatasetError(f"{loc}: {key!r} has shape {_fmt_shape(data[key].shape)}: axis 2 (n_agents) is "
                               f"{data[key].shape[2]}, expected {n} for {where}")
    B, T = data["observations"].shape[:2]
    used = ["observations", "actions", "rewards", "terminals", "truncations"] + [
        k for k in ("infos.state", "infos.legals") if k in layout]
    for key in used:
        if data[key].shape[:2] != (B, T):
            raise DatasetError(f"{loc}: {key!r} has [B, T] = {list(data[key].shape[:2])} but 'observations' has "
                               f"{[B, T]}; every leaf must share the stream and time axes")
    if B * T == 0:
        raise DatasetError(f"{loc}: the vault holds no steps (observations {_fmt_shape(data['observations'].shape)})")

    # --- values ---
    for key in used:
        x = data[key]
        if x.dtype.kind not in "biuf":
            raise DatasetError(f"{loc}: {key!r} has dtype {x.dtype}, expected numbers")
        bad = _first_non_finite(x)
        if bad is not None:
            raise DatasetError(f"{loc}: {key!r} has non-finite value {x[bad]} at index {_idx(bad)} "
                               f"(stream {bad[0]}, step {bad[1]}); NaN/inf are not allowed")
    for key in ("terminals", "truncations") + (("infos.legals",) if "infos.legals" in layout else ()):
        x = data[key]
        bad = np.argwhere((x != 0) & (x != 1))
        if bad.size:
            i = tuple(int(v) for v in bad[0])
            raise DatasetError(f"{loc}: {key!r} has value {x[i]} at index {_idx(i)}; expected 0 or 1")
    clipped = 0
    if spec.continuous:
        acts = data["actions"].astype(np.float32)
        bad = np.argwhere(np.abs(acts) > 1.0 + ACTION_TOLERANCE)
        if bad.size:
            i = tuple(int(v) for v in bad[0])
            raise DatasetError(f"{loc}: 'actions' has {acts[i]} at index {_idx(i)} (stream {i[0]}, step {i[1]}, "
                               f"agent {i[2]}), expected a value in [-1, 1] (team actions are normalised)")
        clipped = int((np.abs(acts) > 1.0).sum())
        acts = np.clip(acts, -1.0, 1.0)
        legals = None
    else:
        raw_acts = data["actions"]
        if raw_acts.dtype.kind == "f":
            frac = np.argwhere(raw_acts != np.round(raw_acts))
            if frac.size:
                i = tuple(int(v) for v in frac[0])
                raise DatasetError(f"{loc}: 'actions' has non-integer value {raw_acts[i]} at index {_idx(i)}")
        acts = np.rint(raw_acts).astype(np.int64)
        bad = np.argwhere((acts < 0) | (acts >= A))
        if bad.size:
            i = tuple(int(v) for v in bad[0])
            raise DatasetError(f"{loc}: 'actions' has {acts[i]} at index {_idx(i)} (stream {i[0]}, step {i[1]}, "
                               f"agent {i[2]}); expected 0 <= a < {A} (n_actions of {task!r})")
        legals = (data["infos.legals"].astype(np.float32) if "infos.legals" in layout
                  else np.ones((B, T, n, A), np.float32))
        none = np.argwhere(legals.sum(-1) == 0)
        if none.size:
            i = tuple(int(v) for v in none[0])
            raise DatasetError(f"{loc}: 'infos.legals' marks no action available at index {_idx(i)} "
                               f"(stream {i[0]}, step {i[1]}, agent {i[2]})")
        taken = np.take_along_axis(legals, acts[..., None], axis=-1)[..., 0]
        bad = np.argwhere(taken == 0)
        if bad.size:
            i = tuple(int(v) for v in bad[0])
            raise DatasetError(f"{loc}: 'actions' has {acts[i]} at index {_idx(i)} (stream {i[0]}, step {i[1]}, "
                               f"agent {i[2]}), which infos.legals{_idx((*i, acts[i]))} = 0 marks unavailable")
    obs = data["observations"].astype(np.float32)
    if "infos.state" in layout:
        state = data["infos.state"].astype(np.float32)
        state_source = "infos.state"
    else:
        _concat_state(str(loc), n, O, spec, where, "the vault has no infos.state")
        state = obs.reshape(B, T, n * O)
        state_source = "concatenated observations (mpe2's state() layout)"
    reward = data["rewards"].astype(np.float64).mean(-1).astype(np.float32)
    term_all = (data["terminals"] != 0).all(-1)
    done = ((data["terminals"] != 0) | (data["truncations"] != 0)).all(-1)  # [B, T]

    # --- episodes per stream; rows of the team schema ---
    parts: list[dict[str, np.ndarray]] = []
    n_eps = dropped_steps = dropped_eps = tail = 0
    terminated_eps = 0
    for b in range(B):
        ends = np.flatnonzero(done[b])
        last = int(ends[-1]) if ends.size else -1
        if last < T - 1:
            if not drop_incomplete_tail:
                raise DatasetError(
                    f"{loc}: stream {b}: steps {last + 1}..{T - 1} come after the last episode end and no step "
                    "among them has every agent terminal or truncated (a partly written episode or a truncated "
                    "vault?); pass --importer-options '{\"drop_incomplete_tail\": true}' to drop them"
                )
            tail += T - 1 - last
        if not ends.size:
            continue
        starts = np.r_[0, ends[:-1] + 1]
        term_end = term_all[b, ends]
        terminated_eps += int(term_end.sum())
        is_end = np.zeros(T, bool)
        is_end[ends] = True
        end_term = np.zeros(T, bool)
        end_term[ends[term_end]] = True
        rows = np.arange(last + 1)
        keep = ~(is_end[rows] & ~end_term[rows])  # a truncated episode's last step has no known successor
        nxt = np.where(end_term[rows], rows, rows + 1)
        ep_of = np.repeat(np.arange(len(ends)), ends - starts + 1)
        t_of = rows - starts[ep_of]
        trunc_row = np.zeros(last + 1, bool)
        trunc_ends = ends[~term_end]
        dropped_steps += len(trunc_ends)
        trunc_row[trunc_ends[trunc_ends > starts[~term_end]] - 1] = True
        dropped_eps += int((trunc_ends == starts[~term_end]).sum())
        r = rows[keep]
        e_ids = ep_of[r] + n_eps
        n_eps += len(ends)
        part = {
            K.EPISODE_ID: e_ids.astype(np.int64),
            K.T: t_of[r].astype(np.int64),
            K.OBS: obs[b, r].reshape(len(r), n * O),
            K.STATE: state[b, r],
            K.ACTIONS: acts[b, r].reshape(len(r), -1),
            K.REWARD: reward[b, r],
            K.TERMINATED: end_term[r],
            K.TRUNCATED: trunc_row[r],
            K.NEXT_OBS: obs[b, nxt[r]].reshape(len(r), n * O),
            K.NEXT_STATE: state[b, nxt[r]],
        }
        if not spec.continuous:
            nm = legals[b, nxt[r]].copy()
            nm[end_term[r]] = 1.0  # a terminal step's successor: every action available (padding convention)
            part[K.ACTION_MASK] = legals[b, r].reshape(len(r), n * A)
            part[K.NEXT_ACTION_MASK] = nm.reshape(len(r), n * A)
        parts.append(part)
    if not parts or not sum(len(p[K.T]) for p in parts):
        raise DatasetError(f"{loc}: no complete episode with a known successor observation in the vault")
    cols = {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
    # renumber the kept episodes 0..E-1 (single-step truncated episodes vanish)
    _, cols[K.EPISODE_ID] = np.unique(cols[K.EPISODE_ID], return_inverse=True)
    ep = _rows_to_episodes(cols, spec, str(loc))
    if info is not None:
        info.update(
            vault=str(loc),
            reader=reader,
            streams=int(B),
            steps=int(B * T),
            episodes=int(ep.num_episodes),
            transitions=int(ep.num_transitions),
            terminated_episodes=terminated_eps,
            truncated_last_steps_dropped=dropped_steps,
            single_step_truncated_episodes_dropped=dropped_eps,
            incomplete_tail_steps_dropped=tail,
            actions_clipped=clipped,
            state_source=state_source,
            legals_source=("continuous task" if spec.continuous
                           else "infos.legals" if "infos.legals" in layout else "absent: every action available"),
            reward="mean over agents",
        )
    return ep


IMPORTERS: dict[str, Importer] = {
    "authors-hdf5": import_authors_hdf5,
    "omar-npy": import_omar_npy,
    "og-marl-vault": import_og_marl_vault,
}


# ---------------------------------------------------------------- convert
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
    (50 episodes of the random and the scripted-expert policies).
    ``importer_options`` are passed to the importer as keyword arguments
    (unknown names are refused).
    """
    from rllib_cfcql.data import writer

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
    env = make_team_env(task, env_config)
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
    if refs is None:
        refs = writer.reference_returns(task, env_config, episodes=50, seed=10_000_019)
    files = writer.write_dataset(out, ep, fmt=fmt, force=force)
    card = writer.make_card(
        task=task, env_config=env_config, episodes=ep, spec=env.team_spec,
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
