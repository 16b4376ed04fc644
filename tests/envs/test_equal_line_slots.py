"""The Equal_Line `slots:<q>` behaviour: each agent heads for a slot of the expert's line-up (its own
with probability q), so every agent's moves are expert-like and well covered while the good joint
behaviour — the slots forming a permutation — is rare; cards carry the return distribution."""

from __future__ import annotations

import math

import numpy as np
import pytest

from rllib_cfcql.behaviour_policies.specs import BehaviourPolicy
from rllib_cfcql.data.collect import collect, rollout
from rllib_cfcql.data.writer import return_distribution
from rllib_cfcql.envs import make_team_env


def test_slot_assignment_decides_the_return():
    n = 4
    env = make_team_env("equal_line", {"n_agents": n})
    policy = BehaviourPolicy("slots:0.25")
    rng = np.random.default_rng(0)
    perms, others = [], []
    for k in range(60):
        obs, _ = env.reset(seed=k)
        policy.begin_episode(env, rng)
        ret, done = 0.0, False
        while not done:
            obs, r, term, trunc, _ = env.step(policy(env, obs, rng))
            ret += r
            done = term or trunc
        (perms if len(set(policy._slots.tolist())) == n else others).append(ret)
    # a permutation of the slots spreads the team (return near the optimum 10); any shared slot collides
    assert perms and min(perms) > 8.0
    assert np.median(others) < 0.1 and max(others) < min(perms)
    # with q = 1/n every assignment is uniform: permutations come at about n!/n^n
    assert abs(len(perms) / 60 - math.factorial(n) / n**n) < 0.1


def test_slots_cover_every_agents_moves_and_need_equal_line():
    env = make_team_env("equal_line", {"n_agents": 6})
    ep = rollout(env, BehaviourPolicy("slots:0.5"), 40, seed=1)
    acts = ep.actions[ep.filled > 0]  # [N, n]
    freq = np.stack([np.bincount(acts[:, i], minlength=11) for i in range(6)]) / len(acts)
    assert (freq > 0.005).all()  # every move of every agent occurs (ε = 0.1 random moves on top)
    with pytest.raises(ValueError, match=r"slots:<q> is for equal_line"):
        rollout(make_team_env("mpe_spread", {}), BehaviourPolicy("slots:0.5"), 1, seed=0)


def test_card_records_the_return_distribution(tmp_path):
    card = collect(task="equal_line", env_config={"n_agents": 3, "episode_limit": 20}, policy="slots:0.34",
                   episodes=30, seed=0, out_dir=tmp_path / "d", reference_episodes=4, progress=False)
    dist = card["return_distribution"]
    assert sum(dist["histogram"]["counts"]) == 30 and len(dist["histogram"]["edges"]) == 11
    q = dist["quantiles"]
    assert card["return"]["min"] <= q["p5"] <= q["p50"] <= q["p95"] <= card["return"]["max"]
    assert return_distribution(np.array([1.0, 2.0, 3.0]))["quantiles"]["p50"] == 2.0
