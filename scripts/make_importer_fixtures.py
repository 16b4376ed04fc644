"""Write a small HDF5 file in the CFCQL authors' layout (PyMARL episode batch).

    python scripts/make_importer_fixtures.py OUT.h5 [--episodes 8] [--seed 0] [--bootstrap-filled]

The episodes are a deterministic rollout of ``equal_line`` (n_agents=3,
episode_limit=10) with the ``medium_expert:0.3`` behaviour. equal_line never
terminates on its own, so a few episodes are shortened to make the file cover
every boundary case: ``TERMINAL_CUTS`` episodes end early with terminated=1 on
their new last step, ``TRUNCATED_CUTS`` episodes end early without it (cut by a
time limit); the rest run to the limit (truncated). The observation after the
last real step is kept at index L; later slots are zero padding, exactly as
PyMARL leaves them (avail_actions 0 included).

``--bootstrap-filled`` writes ``filled`` the way PyMARL's EpisodeBatch (and so
the authors' collection code) does: 1 on the bootstrap slot L too, with the
action the runner picked there. Without it ``filled`` is 1 on real steps only.
An extra ``probs`` dataset (behaviour probabilities, ignored on import) is
written as the authors' files carry one.

:func:`write_authors_fixture` returns the :class:`EpisodeArrays` an importer
must reproduce exactly. The tests call it to build their fixtures in a temp dir;
no .h5 file is committed.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from rllib_cfcql.behaviour_policies.specs import BehaviourPolicy
from rllib_cfcql.data.collect import rollout
from rllib_cfcql.data.schema import EpisodeArrays
from rllib_cfcql.envs import make_team_env

TASK = "equal_line"
ENV_CONFIG = {"n_agents": 3, "episode_limit": 10, "time_limit": "truncate"}  # the cuts below model time-limit ends
POLICY = "medium_expert:0.3"
TERMINAL_CUTS = {2: 4, 5: 7}  # episode -> new length, terminated=1 on its last step
TRUNCATED_CUTS = {6: 6}  # episode -> new length, not terminal (cut)


def fixture_episodes(episodes: int = 8, seed: int = 0) -> EpisodeArrays:
    """The rollout with the cuts applied, in the schema's padded conventions."""
    env = make_team_env(TASK, ENV_CONFIG)
    ep = rollout(env, BehaviourPolicy(POLICY), episodes, seed=seed)
    ep = EpisodeArrays(**{k: v.copy() for k, v in ep.as_dict().items()})
    for cuts, terminal in ((TERMINAL_CUTS, True), (TRUNCATED_CUTS, False)):
        for e, L in cuts.items():
            if e >= episodes:
                continue
            ep.filled[e, L:] = 0.0
            ep.terminated[e] = 0.0
            ep.terminated[e, L - 1] = 1.0 if terminal else 0.0
            ep.actions[e, L:] = 0
            ep.reward[e, L:] = 0.0
            ep.obs[e, L + 1:] = 0.0  # slot L keeps the bootstrap observation
            ep.state[e, L + 1:] = 0.0
            ep.action_mask[e, L + 1:] = 1.0
    return ep


def write_authors_fixture(
    path: str | Path, *, episodes: int = 8, seed: int = 0, bootstrap_filled: bool = False
) -> EpisodeArrays:
    """Write ``path`` (HDF5, authors' layout); return the episodes it encodes."""
    import h5py

    ep = fixture_episodes(episodes, seed)
    E, T, n = ep.actions.shape
    L = ep.lengths()
    rows = np.arange(E)
    slot = np.arange(T + 1)[None, :]
    used = slot <= L[:, None]  # real steps + bootstrap slot
    real = slot < L[:, None]

    obs = np.where(used[..., None, None], ep.obs, 0.0).astype(np.float32)
    state = np.where(used[..., None], ep.state, 0.0).astype(np.float32)
    avail = np.where(used[..., None, None], ep.action_mask, 0).astype(np.int32)
    actions = np.zeros((E, T + 1, n, 1), np.int64)
    actions[:, :T, :, 0] = ep.actions
    actions[~real] = 0
    reward = np.zeros((E, T + 1, 1), np.float32)
    reward[:, :T, 0] = ep.reward
    terminated = np.zeros((E, T + 1, 1), np.uint8)
    terminated[:, :T, 0] = ep.terminated
    filled = (used if bootstrap_filled else real).astype(np.int64)[..., None]
    if bootstrap_filled:  # PyMARL's runner also picks an action on the bootstrap slot
        actions[rows, L, :, 0] = np.argmax(avail[rows, L], axis=-1)
    probs = avail / np.maximum(avail.sum(-1, keepdims=True), 1)

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with h5py.File(path, "w") as f:
        for key, value in (
            ("state", state), ("obs", obs), ("actions", actions), ("avail_actions", avail),
            ("probs", probs.astype(np.float32)), ("reward", reward), ("terminated", terminated),
            ("filled", filled),
        ):
            f.create_dataset(key, data=value)
    return ep


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("out", help="path of the .h5 file to write")
    ap.add_argument("--episodes", type=int, default=8)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--bootstrap-filled", action="store_true", help="mark the bootstrap slot filled, as PyMARL does")
    a = ap.parse_args()
    ep = write_authors_fixture(a.out, episodes=a.episodes, seed=a.seed, bootstrap_filled=a.bootstrap_filled)
    print(f"wrote {a.out}: {ep.num_episodes} episodes, {ep.num_transitions} transitions, "
          f"lengths {ep.lengths().tolist()}")


if __name__ == "__main__":
    main()
