"""``og-marl-vault``: OG-MARL Vaults (flashbax)
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
import io
import json
import os
from pathlib import Path

import numpy as np

from rllib_cfcql import keys as K
from rllib_cfcql.data.importers.common import (
    ACTION_TOLERANCE,
    _concat_state,
    _first_non_finite,
    _fmt_shape,
    _idx,
    _rows_to_episodes,
    _task_label,
)
from rllib_cfcql.data.schema import DatasetError, EpisodeArrays
from rllib_cfcql.envs import make_team_env
from rllib_cfcql.envs.base import TeamSpec

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


def vault_team_spec(loc: Path, data: dict[str, np.ndarray]) -> TeamSpec:
    """The team shapes a vault implies, for importing onto a dataset-only task (``task=None``): agents
    and observation size from ``observations [B, T, N, O]``; discrete when ``actions`` are integers
    ``[B, T, N]`` (``n_actions`` from ``infos.legals [B, T, N, A]``, which a discrete vault then must
    have), continuous when they are floats ``[B, T, N, d]``; ``state_dim`` from ``infos.state``, else the
    concatenated observations; ``episode_limit`` the stream length ``T`` (an upper bound)."""
    obs, acts = data["observations"], data["actions"]
    if obs.ndim != 4:
        raise DatasetError(f"{loc}: 'observations' has shape {_fmt_shape(obs.shape)}, expected [B, T, N, O]")
    B, T, n, O = (int(v) for v in obs.shape)
    continuous = acts.dtype.kind == "f" and acts.ndim == 4 and acts.shape[3] > 1
    if continuous:
        A = int(acts.shape[3])
    elif "infos.legals" in data and data["infos.legals"].ndim == 4:
        A = int(data["infos.legals"].shape[3])
    else:
        raise DatasetError(f"{loc}: a vault of discrete actions imported without a task needs 'infos.legals' "
                           f"[B, T, N, n_actions] to give the number of actions (actions have shape "
                           f"{_fmt_shape(acts.shape)}); or pass --task with the task it was recorded on")
    S = int(data["infos.state"].shape[-1]) if "infos.state" in data else n * O
    return TeamSpec(n_agents=n, obs_dim=O, state_dim=S, n_actions=A, episode_limit=T, continuous=continuous)


def import_og_marl_vault(
    path: str | os.PathLike,
    *,
    task: str | None,
    env_config: dict,
    info: dict | None = None,
    vault_uid: str | None = None,
    drop_incomplete_tail: bool = False,
) -> EpisodeArrays:
    """Read one OG-MARL vault (flashbax) as padded episodes; see the module docstring (``og-marl-vault``).
    ``task=None`` imports onto a dataset-only task, with the shapes of the vault (:func:`vault_team_spec`):
    how SMAC vaults, recorded on StarCraft II, are trained on without the game.

    Raises :class:`DatasetError` naming the vault, the leaf and the index of the first problem.
    """
    path = Path(path)
    loc = _vault_location(path, vault_uid)
    data, reader = _read_vault(loc)
    if task is None:  # a dataset-only task: the shapes are the vault's own
        spec = vault_team_spec(loc, data)
        where = f"the vault's own shapes ({spec.to_dict()})"
    else:
        spec = make_team_env(task, env_config).team_spec
        where = _task_label(task, env_config, spec)
    n, O, S, A = spec.n_agents, spec.obs_dim, spec.state_dim, spec.n_actions

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
                               f"agent {i[2]}); expected 0 <= a < {A} (n_actions of {where})")
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
        if task is not None:
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


import_og_marl_vault.dataset_only = True  # convert_dataset may call it with task=None
