"""Team environments: spaces, seeding, the Equal_Line reward, PettingZoo wrapping."""

from __future__ import annotations

import numpy as np
import pytest

from rllib_cfcql.behaviour_policies.specs import BehaviourPolicy
from rllib_cfcql.envs import PettingZooTeamEnv, make_team_env
from rllib_cfcql.envs.equal_line import MOVES


def run(env, policy, seed):
    obs, _ = env.reset(seed=seed)
    rng = np.random.default_rng(seed)
    policy.begin_episode(env, rng)
    total, traj, done = 0.0, [obs["state"].copy()], False
    while not done:
        obs, r, term, trunc, _ = env.step(policy(env, obs, rng))
        assert env.observation_space.contains(obs)
        total += r
        traj.append(obs["state"].copy())
        done = term or trunc
    return total, np.array(traj)


@pytest.mark.parametrize("n", [2, 4, 20])
def test_equal_line_return_is_final_spacing_and_expert_spreads_perfectly(n):
    env = make_team_env("equal_line", {"n_agents": n, "episode_limit": 50})
    assert env.observation_space["obs"].shape == (n, n + 1) and env.action_space.nvec.tolist() == [11] * n
    ret, traj = run(env, BehaviourPolicy("expert"), seed=1)
    # telescoping reward: return = 10 * d_min(final) / (L / (n - 1))
    L = max(10, 2 * n)
    pos = np.sort(traj[-1] * L)
    assert ret == pytest.approx(10 * np.min(np.diff(pos)) / (L / (n - 1)), abs=1e-5)  # state is float32
    assert ret > 9.9
    r_rand = np.mean([run(env, BehaviourPolicy("random"), seed=s)[0] for s in range(5)])
    assert r_rand < ret - 2


def test_equal_line_is_seeded_and_validates_config():
    env = make_team_env("equal_line", {"n_agents": 3})
    a, _ = env.reset(seed=7)
    b, _ = env.reset(seed=7)
    assert all(np.array_equal(a[k], b[k]) for k in a)
    with pytest.raises(ValueError, match=r"unknown env_config keys \['n_agent'\]"):
        make_team_env("equal_line", {"n_agent": 3})
    with pytest.raises(ValueError, match=r"n_agents must be in \[2, 100\], got 1"):
        make_team_env("equal_line", {"n_agents": 1})
    with pytest.raises(ValueError, match=r"unknown team task 'nope'"):
        make_team_env("nope")
    with pytest.raises(ValueError, match=r"action values must be in \[0, 11\)"):
        env.step([0, 11, 0])


def test_boundary_mask_marks_moves_off_the_line():
    env = make_team_env("equal_line", {"n_agents": 3, "boundary_mask": True})
    obs, _ = env.reset(seed=0)
    env.pos[:] = [0.0, 5.0, 10.0]
    m = env._observe()["action_mask"]
    assert m[0][MOVES < 0].sum() == 0 and m[0][MOVES >= 0].all()
    assert m[2][MOVES > 0].sum() == 0 and m[1].all()


def test_mpe_spread_team_view():
    env = make_team_env("mpe_spread", {})
    obs, _ = env.reset(seed=3)
    assert obs["obs"].shape == (3, 18) and obs["state"].shape == (54,) and obs["action_mask"].shape == (3, 5)
    ret, traj = run(env, BehaviourPolicy("expert"), seed=3)
    assert len(traj) == 26  # 25 steps, then truncated
    r_rand = np.mean([run(env, BehaviourPolicy("random"), seed=s)[0] for s in range(5)])
    r_exp = np.mean([run(env, BehaviourPolicy("expert"), seed=s)[0] for s in range(5)])
    assert r_exp > r_rand


def test_pettingzoo_wrapper_on_another_parallel_env():
    from mpe2 import simple_reference_v3

    env = PettingZooTeamEnv(lambda: simple_reference_v3.parallel_env(max_cycles=5, continuous_actions=False), 5)
    spec = env.team_spec
    assert spec.n_agents == 2 and spec.n_actions == 50
    obs, _ = env.reset(seed=0)
    assert env.observation_space.contains(obs)
    steps, done = 0, False
    while not done:
        obs, r, term, trunc, _ = env.step(env.action_space.sample())
        steps += 1
        done = term or trunc
    assert steps == 5 and trunc
