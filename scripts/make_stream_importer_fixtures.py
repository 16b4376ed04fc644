"""Write small datasets in the OMAR ``.npy`` layout and as OG-MARL (flashbax) vaults.

    python scripts/make_stream_importer_fixtures.py omar OUT_DIR [--episodes 6] [--seed 0] [--with-states]
                                                               [--no-dones-at-limit] [--column-rewards]
    python scripts/make_stream_importer_fixtures.py vault REL_DIR [--task equal_line|mpe_spread]
                                                               [--episodes 8] [--streams 1] [--no-state] [--no-legals]

Both formats store one row per team step in collection order, without
episode ids; the rows come from deterministic rollouts of this project's own
tasks, so an importer's output can be compared with the episodes they encode.
Each ``write_*`` function returns the :class:`EpisodeArrays` the matching
importer must reproduce exactly (reward: up to float rounding of the mean).

``omar``: ``OUT_DIR/obs_<i>.npy, acs_<i>.npy, rews_<i>.npy, next_obs_<i>.npy,
dones_<i>.npy`` (+ ``states_<i>.npy, next_states_<i>.npy`` with
``--with-states``), float64 as OMAR's replay buffer holds them, from
continuous ``mpe_spread`` (medium_expert:0.5 behaviour, 25-step episodes).
Episode ``OMAR_TERMINAL_CUT`` ends early with a done flag (terminated); the
others run the 25 steps (truncated), with ``dones = 1`` on their last row
unless ``--no-dones-at-limit``. Agent rewards are the team reward plus
offsets that sum to zero, so their mean is the team reward. With
``--with-states`` the state files hold the team state + 1 (deliberately not
the concatenated observations, so a test can tell where the state came from).

``vault`` (needs flashbax: ``pip install 'rllib-cfcql[og-marl]'``): written
with flashbax's own trajectory buffer and ``Vault`` writer to
``REL_DIR/<task>.vlt/Fixture``. ``equal_line`` (discrete, infos.legals) uses
the authors-fixture episodes (two terminal cuts, one early truncation);
``mpe_spread`` (continuous) has one terminal cut. Per the importer's
semantics, a terminated episode's bootstrap observation is its last one
repeated and a truncated episode loses its last step.

No fixture file is committed: the tests call these functions in a temp dir.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import io
from pathlib import Path

import numpy as np

from rllib_cfcql.behaviour_policies.specs import BehaviourPolicy
from rllib_cfcql.data.collect import rollout
from rllib_cfcql.data.schema import EpisodeArrays
from rllib_cfcql.envs import make_team_env

MPE_CONT = {"continuous_actions": True}
OMAR_POLICY = "medium_expert:0.5"
OMAR_TERMINAL_CUT = (2, 10)  # episode 2 ends after 10 steps with a done flag
VAULT_MPE_TERMINAL_CUT = (1, 10)
VAULT_UID = "Fixture"


def _authors_fixtures():
    spec = importlib.util.spec_from_file_location("make_importer_fixtures", Path(__file__).with_name("make_importer_fixtures.py"))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _copy(ep: EpisodeArrays) -> EpisodeArrays:
    return EpisodeArrays(**{k: v.copy() for k, v in ep.as_dict().items()})


def _cut(ep: EpisodeArrays, e: int, L: int, terminal: bool) -> None:
    """End episode e after L steps (in place), keeping slot L as its bootstrap observation."""
    ep.filled[e, L:] = 0.0
    ep.terminated[e] = 0.0
    ep.terminated[e, L - 1] = 1.0 if terminal else 0.0
    ep.actions[e, L:] = 0
    ep.reward[e, L:] = 0.0
    ep.obs[e, L + 1:] = 0.0
    ep.state[e, L + 1:] = 0.0
    ep.action_mask[e, L + 1:] = 1.0


def _agent_rewards(team: np.ndarray, n: int) -> np.ndarray:
    """[..., n] agent rewards whose mean is exactly ``team``: offsets 0.25 * (i - (n-1)/2) sum to zero."""
    offsets = 0.25 * (np.arange(n) - (n - 1) / 2.0)
    return team.astype(np.float64)[..., None] + offsets


# ---------------------------------------------------------------- omar
def omar_fixture_episodes(episodes: int = 6, seed: int = 0) -> EpisodeArrays:
    env = make_team_env("mpe_spread", MPE_CONT)
    ep = _copy(rollout(env, BehaviourPolicy(OMAR_POLICY), episodes, seed=seed))
    e, L = OMAR_TERMINAL_CUT
    if e < episodes:
        _cut(ep, e, L, terminal=True)
    return ep


def write_omar_fixture(
    folder: str | Path,
    *,
    episodes: int = 6,
    seed: int = 0,
    dones_at_limit: bool = True,
    with_states: bool = False,
    column_rewards: bool = False,
) -> EpisodeArrays:
    """Write ``folder`` in OMAR's per-agent .npy layout; return the episodes it encodes."""
    ep = omar_fixture_episodes(episodes, seed)
    E, T, n = ep.actions.shape[:3]
    lengths = ep.lengths()
    if with_states:  # distinguishable from the concatenated observations; padding stays 0
        used = np.arange(T + 1)[None, :] <= lengths[:, None]
        ep.state = np.where(used[..., None], ep.state + 1.0, 0.0).astype(np.float32)
    e_idx = np.repeat(np.arange(E), lengths)
    t_idx = np.concatenate([np.arange(L) for L in lengths])
    last = t_idx == lengths[e_idx] - 1
    term = ep.terminated[e_idx, t_idx] > 0
    dones = (last & (term | dones_at_limit)).astype(np.float64)
    rews = _agent_rewards(ep.reward[e_idx, t_idx], n)
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        files = {
            "obs": ep.obs[e_idx, t_idx, i], "acs": ep.actions[e_idx, t_idx, i], "next_obs": ep.obs[e_idx, t_idx + 1, i],
            "rews": rews[:, i][:, None] if column_rewards else rews[:, i], "dones": dones,
        }
        if with_states:
            files["states"] = ep.state[e_idx, t_idx]
            files["next_states"] = ep.state[e_idx, t_idx + 1]
        for key, value in files.items():
            np.save(folder / f"{key}_{i}.npy", np.asarray(value, np.float64))
    return ep


# ---------------------------------------------------------------- vault
def vault_fixture_rollout(
    task: str = "equal_line", episodes: int = 8, seed: int = 0, terminal_cut: bool = True
) -> tuple[EpisodeArrays, dict]:
    """The episodes written into the vault (before the importer's last-step conventions);
    ``terminal_cut=False`` keeps every mpe_spread episode at 25 steps."""
    if task == "equal_line":
        fx = _authors_fixtures()
        return fx.fixture_episodes(episodes, seed), dict(fx.ENV_CONFIG)
    if task == "mpe_spread":
        env = make_team_env(task, MPE_CONT)
        ep = _copy(rollout(env, BehaviourPolicy(OMAR_POLICY), episodes, seed=seed))
        e, L = VAULT_MPE_TERMINAL_CUT
        if terminal_cut and e < episodes:
            _cut(ep, e, L, terminal=True)
        return ep, dict(MPE_CONT)
    if task == "smax_2s3z":  # a StarCraft-like vault (needs the [smax] extra); 12-step battles, all cut by the limit
        env_config = {"episode_limit": 12}
        ep = _copy(rollout(make_team_env(task, env_config), BehaviourPolicy("eps_expert:0.3"), episodes, seed=seed))
        return ep, env_config
    raise ValueError(f"no vault fixture for task {task!r}")


def expected_from_vault(ep: EpisodeArrays) -> EpisodeArrays:
    """What og-marl-vault must return for a vault holding ``ep``: terminated episodes keep every step
    and repeat their last observation as the successor; truncated episodes lose their last step.
    Single-step truncated episodes vanish (none in these fixtures)."""
    ep = _copy(ep)
    lengths = ep.lengths()
    continuous = ep.continuous
    for e in range(ep.num_episodes):
        L = int(lengths[e])
        if ep.terminated[e, L - 1] > 0:
            ep.obs[e, L] = ep.obs[e, L - 1]
            ep.state[e, L] = ep.state[e, L - 1]
            ep.action_mask[e, L] = 1.0
        else:
            if L == 1:
                raise ValueError("a single-step truncated episode vanishes on import; the fixture has none")
            _cut(ep, e, L - 1, terminal=False)
            if not continuous and ep.action_mask[e, L - 1].sum(-1).min() == 0:
                ep.action_mask[e, L - 1] = 1.0
    T = int(ep.lengths().max())
    out = ep.as_dict()
    for k in ("obs", "state", "action_mask"):
        out[k] = out[k][:, : T + 1]
    for k in ("actions", "reward", "terminated", "filled"):
        out[k] = out[k][:, :T]
    out["episode_ids"] = np.arange(ep.num_episodes, dtype=np.int64)
    return EpisodeArrays(**out)


def vault_experience(ep: EpisodeArrays, streams: int = 1, with_state: bool = True, with_legals: bool = True) -> dict:
    """OG-MARL's vault leaves [B, T, ...] for ``ep``; episodes are split into ``streams`` contiguous
    groups of equal total length (ValueError if impossible)."""
    lengths = ep.lengths()
    total = int(lengths.sum())
    if total % streams:
        raise ValueError(f"{total} steps cannot fill {streams} equal streams")
    per = total // streams
    groups, start = [], 0
    for _ in range(streams):
        cum = np.cumsum(lengths[start:])
        hit = np.flatnonzero(cum == per)
        if not hit.size:
            raise ValueError(f"episodes {lengths.tolist()} do not split into {streams} streams of {per} steps")
        groups.append(np.arange(start, start + hit[0] + 1))
        start += hit[0] + 1
    n = ep.actions.shape[2]
    leaves: dict[str, list] = {k: [] for k in ("observations", "actions", "rewards", "terminals", "truncations",
                                               "legals", "state")}
    for g in groups:
        e_idx = np.concatenate([np.full(lengths[e], e) for e in g])
        t_idx = np.concatenate([np.arange(lengths[e]) for e in g])
        last = t_idx == lengths[e_idx] - 1
        term = last & (ep.terminated[e_idx, t_idx] > 0)
        leaves["observations"].append(ep.obs[e_idx, t_idx])
        leaves["actions"].append(ep.actions[e_idx, t_idx])
        leaves["rewards"].append(_agent_rewards(ep.reward[e_idx, t_idx], n).astype(np.float32))
        leaves["terminals"].append(np.repeat(term[:, None], n, 1).astype(np.float32))
        leaves["truncations"].append(np.repeat((last & ~term)[:, None], n, 1).astype(np.float32))
        leaves["legals"].append(ep.action_mask[e_idx, t_idx])
        leaves["state"].append(ep.state[e_idx, t_idx])
    stack = {k: np.stack(v) for k, v in leaves.items()}
    exp = {k: stack[k] for k in ("observations", "actions", "rewards", "terminals", "truncations")}
    if ep.continuous:
        exp["actions"] = exp["actions"].astype(np.float32)
    else:
        exp["actions"] = exp["actions"].astype(np.int32)
    infos = {}
    if with_legals and not ep.continuous:
        infos["legals"] = stack["legals"].astype(np.float32)
    if with_state:
        infos["state"] = stack["state"].astype(np.float32)
    if infos:
        exp["infos"] = infos
    return exp


def write_vault(rel_dir: str | Path, vault_name: str, experience: dict, vault_uid: str = VAULT_UID) -> Path:
    """Write ``experience`` (leaves [B, T, ...]) with flashbax's trajectory buffer and Vault writer."""
    import flashbax as fbx
    import jax
    from flashbax.vault import Vault

    B, T = experience["observations"].shape[:2]
    buffer = fbx.make_trajectory_buffer(add_batch_size=B, sample_batch_size=1, sample_sequence_length=1, period=1,
                                        min_length_time_axis=1, max_length_time_axis=T + 1)
    state = buffer.init(jax.tree.map(lambda x: x[0, 0], experience))
    state = buffer.add(state, experience)
    with contextlib.redirect_stdout(io.StringIO()):  # flashbax prints where it writes
        vault = Vault(vault_name=vault_name, experience_structure=state.experience, rel_dir=str(Path(rel_dir).resolve()),
                      vault_uid=vault_uid, metadata={"written_by": "scripts/make_stream_importer_fixtures.py"})
        written = vault.write(state)
    if written != T:
        raise RuntimeError(f"flashbax wrote {written} of {T} steps")
    return Path(rel_dir) / vault_name / vault_uid


def write_vault_fixture(
    rel_dir: str | Path,
    *,
    task: str = "equal_line",
    episodes: int = 8,
    seed: int = 0,
    streams: int = 1,
    with_state: bool = True,
    with_legals: bool = True,
    terminal_cut: bool = True,
) -> tuple[Path, EpisodeArrays, dict]:
    """Write ``rel_dir/<task>.vlt/Fixture``; return (vault uid folder, expected episodes, env_config)."""
    ep, env_config = vault_fixture_rollout(task, episodes, seed, terminal_cut)
    exp = vault_experience(ep, streams=streams, with_state=with_state, with_legals=with_legals)
    loc = write_vault(rel_dir, f"{task}.vlt", exp)
    return loc, expected_from_vault(ep), env_config


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="kind", required=True)
    o = sub.add_parser("omar", help="a seed_<k>_data-style folder of per-agent .npy files")
    o.add_argument("out")
    o.add_argument("--episodes", type=int, default=6)
    o.add_argument("--seed", type=int, default=0)
    o.add_argument("--with-states", action="store_true")
    o.add_argument("--no-dones-at-limit", action="store_true")
    o.add_argument("--column-rewards", action="store_true", help="rews_<i>.npy as [N, 1]")
    v = sub.add_parser("vault", help="an OG-MARL vault written with flashbax")
    v.add_argument("rel_dir")
    v.add_argument("--task", choices=("equal_line", "mpe_spread"), default="equal_line")
    v.add_argument("--episodes", type=int, default=8)
    v.add_argument("--seed", type=int, default=0)
    v.add_argument("--streams", type=int, default=1)
    v.add_argument("--no-state", action="store_true")
    v.add_argument("--no-legals", action="store_true")
    a = ap.parse_args()
    if a.kind == "omar":
        ep = write_omar_fixture(a.out, episodes=a.episodes, seed=a.seed, with_states=a.with_states,
                                dones_at_limit=not a.no_dones_at_limit, column_rewards=a.column_rewards)
        where = a.out
    else:
        loc, ep, _ = write_vault_fixture(a.rel_dir, task=a.task, episodes=a.episodes, seed=a.seed, streams=a.streams,
                                         with_state=not a.no_state, with_legals=not a.no_legals)
        where = loc
    print(f"wrote {where}: {ep.num_episodes} episodes, {ep.num_transitions} transitions (as imported), "
          f"lengths {ep.lengths().tolist()}")


if __name__ == "__main__":
    main()
