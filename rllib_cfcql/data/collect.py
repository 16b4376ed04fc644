"""Roll out behaviour policies in a team env: episodes, the reference returns, and a dataset with its card.

:func:`collect` is ``rllib-cfcql data collect``; the files and the card are written by
:mod:`rllib_cfcql.data.writer`.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import numpy as np

from rllib_cfcql import keys as K
from rllib_cfcql.behaviour_policies.specs import BehaviourPolicy
from rllib_cfcql.data.schema import EpisodeArrays, assemble_episodes, step_columns
from rllib_cfcql.data.writer import CARD_NAME, make_card, write_dataset
from rllib_cfcql.envs import make_team_env
from rllib_cfcql.envs.base import TeamEnv

_REFERENCE_CACHE: dict[str, dict[str, float]] = {}


def rollout(
    env: TeamEnv,
    policy,
    num_episodes: int | None = None,
    seed: int = 0,
    progress: bool = False,
    *,
    min_steps: int | None = None,
    wins: list | None = None,
) -> EpisodeArrays:
    """Run ``num_episodes`` episodes, or whole episodes until at least ``min_steps``
    transitions; env reset seeds are ``seed + k``. ``policy``: a spec string, a policy
    (e.g. :class:`BehaviourPolicy`) or a :class:`~rllib_cfcql.behaviour_policies.qualities.BehaviourSchedule`
    that picks the policy of each episode. ``wins``: a list that gets each episode's last
    ``info["battle_won"]`` on tasks that report one (SMAX)."""
    from rllib_cfcql.behaviour_policies.qualities import as_schedule

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
        from rllib_cfcql.progress import progress_bar

        bar = progress_bar(num_episodes or min_steps, f"collect {schedule.description[:60]}",
                           unit="episode" if num_episodes else "step")
    k = 0
    while (k < num_episodes) if num_episodes is not None else (len(rows[K.T]) < min_steps):
        done_frac = k / num_episodes if num_episodes is not None else len(rows[K.T]) / min_steps
        policy = schedule.policy_for(k, done_frac)
        obs, _ = env.reset(seed=seed + k)
        policy.begin_episode(env, rng)
        t, done = 0, False
        while not done:
            a = policy(env, obs, rng)
            nxt, r, term, trunc, info = env.step(a)
            done = term or trunc
            if done and wins is not None and "battle_won" in info:
                wins.append(bool(info["battle_won"]))
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


def clear_reference_cache() -> None:
    """Forget the reference returns computed so far (after a trained expert checkpoint was rewritten)."""
    _REFERENCE_CACHE.clear()


def reference_returns(task: str, env_config: dict, episodes: int, seed: int, source: str = "auto") -> dict[str, float]:
    """Mean returns of the uniform-random and the task's reference expert
    (:func:`~rllib_cfcql.behaviour_policies.qualities.reference_expert`: the trained expert where the task has
    one, else its scripted expert); deterministic for the arguments, so computed once per
    process for a whole dataset family."""
    key = json.dumps([task, env_config, episodes, seed, source], sort_keys=True)
    if key not in _REFERENCE_CACHE:
        _REFERENCE_CACHE[key] = _reference_returns(task, env_config, episodes, seed, source)
    return dict(_REFERENCE_CACHE[key])


def _reference_returns(task: str, env_config: dict, episodes: int, seed: int, source: str) -> dict[str, float]:
    from rllib_cfcql.behaviour_policies.qualities import reference_expert

    out = {}
    for name, spec in (("random", "random"), ("expert", reference_expert(task, env_config, source))):
        env = make_team_env(task, env_config)
        ep = rollout(env, BehaviourPolicy(spec), episodes, seed=seed)
        out[name] = float(ep.returns().mean())
    return out


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
    reference use (:func:`~rllib_cfcql.behaviour_policies.qualities.quality_policy`).

    ``policy``: a spec string or a :class:`~rllib_cfcql.behaviour_policies.qualities.BehaviourSchedule`;
    when it is None the ``quality`` (random | medium | medium-replay | expert | mixed)
    chooses it (:func:`~rllib_cfcql.behaviour_policies.qualities.quality_policy`). Give ``episodes`` or
    ``steps`` (whole episodes until at least that many transitions)."""
    from rllib_cfcql.behaviour_policies.qualities import (
        QUALITIES,
        describe,
        quality_policy,
    )

    env = make_team_env(task, env_config)  # a bad env_config is reported first
    if policy is None:
        if quality not in QUALITIES:
            raise ValueError(f"collect: no behaviour policy given and quality {quality!r} does not choose one; "
                             f"pass a policy or one of the qualities {list(QUALITIES)}")
        policy = quality_policy(task, quality, env_config, source)
    if (episodes is None) == (steps is None):
        raise ValueError(f"collect: give exactly one of episodes and steps, got episodes={episodes}, steps={steps}")
    t0 = time.perf_counter()
    wins: list[bool] = []
    ep = rollout(env, policy, episodes, seed=seed, progress=progress, min_steps=steps, wins=wins)
    seconds = time.perf_counter() - t0
    files = write_dataset(out_dir, ep, fmt=fmt, force=force)
    refs = reference_returns(task, env_config, reference_episodes, seed=10_000_019, source=source)
    card = make_card(
        task=task, env_config=env_config, episodes=ep, spec=env.team_spec, policy=describe(policy),
        seed=seed, fmt=fmt, files=files, references=refs, quality=quality,
        collection_seconds=seconds,
    )
    card["collection_target"] = {"episodes": int(episodes)} if episodes is not None else {"steps": int(steps)}
    if wins:  # tasks with a win flag (SMAX): the share of the logged battles the team won
        card["win_rate"] = round(float(np.mean(wins)), 4)
    with open(Path(out_dir) / CARD_NAME, "w") as f:
        json.dump(card, f, indent=2)
        f.write("\n")
    return card
