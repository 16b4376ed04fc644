"""``omar-npy``: OMAR / CFCQL-continuous folders of per-agent ``.npy`` files
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
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import numpy as np

from rllib_cfcql import keys as K
from rllib_cfcql.data.importers.common import (
    ACTION_TOLERANCE,
    DONE_AT_LIMIT,
    _concat_state,
    _first_non_finite,
    _fmt_shape,
    _rows_to_episodes,
    _task_label,
)
from rllib_cfcql.data.schema import DatasetError, EpisodeArrays
from rllib_cfcql.envs import make_team_env

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

