"""mpe_tag and mpe_world: team views of the adversaries, the fixed scripted opponents,
the leader's movement-only action, and the scripted team behaviours' ordering."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest

from rllib_cfcql.data.collect import rollout
from rllib_cfcql.envs import TASKS, make_team_env

# task, continuous -> (n_agents, obs_dim, state_dim)
SHAPES = {"mpe_tag": (3, 16, 62), "mpe_world": (4, 34, 192)}


def test_registered():
    assert TASKS["mpe_tag"].__name__ == "MPETagEnv" and TASKS["mpe_world"].__name__ == "MPEWorldCommEnv"


@pytest.mark.parametrize("continuous", [False, True])
@pytest.mark.parametrize("task", ["mpe_tag", "mpe_world"])
def test_spaces_and_a_full_episode(task, continuous):
    env = make_team_env(task, {"continuous_actions": continuous})
    n, o, s = SHAPES[task]
    spec = env.team_spec
    assert (spec.n_agents, spec.obs_dim, spec.state_dim, spec.episode_limit, spec.continuous) == (n, o, s, 25, continuous)
    assert env.observation_space["obs"].shape == (n, o) and env.observation_space["state"].shape == (s,)
    if continuous:
        assert env.action_space == gym.spaces.Box(-1.0, 1.0, (n, 2), np.float32)
        assert "action_mask" not in env.observation_space.spaces
    else:
        assert env.action_space.nvec.tolist() == [5] * n
        assert env.observation_space["action_mask"].shape == (n, 5)
    obs, _ = env.reset(seed=0)
    assert env.observation_space.contains(obs)
    steps, done = 0, False
    while not done:
        for a in (env.expert_action(), env.medium_action()):
            assert env.action_space.contains(np.asarray(a, np.float32 if continuous else np.int64))
        obs, r, term, trunc, _ = env.step(env.action_space.sample())
        assert env.observation_space.contains(obs) and np.isfinite(r)
        steps, done = steps + 1, term or trunc
    assert steps == 25 and trunc and not term


def test_team_is_the_adversaries_and_sizes_follow_the_config():
    env = make_team_env("mpe_tag", {"n_agents": 4, "n_good": 2, "n_obstacles": 0, "max_cycles": 7})
    assert env.agent_ids == [f"adversary_{i}" for i in range(4)]
    assert [a.name for a in env._others] == ["agent_0", "agent_1"]
    # adversary obs: vel 2 + pos 2 + 0 obstacles + 5 others * 2 + 2 prey velocities * 2
    assert env.team_spec.obs_dim == 18 and env.team_spec.episode_limit == 7
    ep = rollout(env, "expert", 2, seed=0)
    assert ep.filled.sum() == 14
    w = make_team_env("mpe_world", {"n_agents": 3, "n_good": 1})
    assert w.agent_ids == ["leadadversary_0", "adversary_0", "adversary_1"]


def test_team_reward_is_the_predators_mean_reward():
    env = make_team_env("mpe_tag", {})
    seen = []
    orig = env.par_env.step

    def spy(actions):
        out = orig(actions)
        seen.append(out[1])
        return out

    env.par_env.step = spy
    for seed in range(4):
        env.reset(seed=seed)
        done = False
        while not done:
            _, r, term, trunc, _ = env.step(env.expert_action())
            assert r == pytest.approx(np.mean([seen[-1][a] for a in env.agent_ids]))
            done = term or trunc
    assert len(seen) == 100
    assert any(max(rw.values()) >= 10 for rw in seen)  # the expert catches the prey
    assert all(rw["agent_0"] <= 0 for rw in seen)  # the prey's own reward is not the team's


def test_leader_moves_and_keeps_a_fixed_message():
    """Discrete: the leader's team action is a move, sent as move + 5·0 (word 0);
    continuous: its 4 communication channels are zero."""
    env = make_team_env("mpe_world", {})
    env.reset(seed=1)
    leader = env._team[0]
    assert leader.name == "leadadversary_0" and not leader.silent
    env.step([2, 0, 0, 0])  # right
    assert leader.action.u[0] > 0 and leader.action.u[1] == 0
    np.testing.assert_array_equal(leader.state.c, [1, 0, 0, 0])
    env.step([3, 0, 0, 0])  # down
    assert leader.action.u[1] < 0
    envc = make_team_env("mpe_world", {"continuous_actions": True})
    envc.reset(seed=1)
    leader = envc._team[0]
    envc.step(np.array([[-1.0, 0.5], [0, 0], [0, 0], [0, 0]], np.float32))
    assert leader.action.u[0] < 0 and leader.action.u[1] > 0
    np.testing.assert_array_equal(leader.state.c, np.zeros(4))


def _trajectory(env, seed, team_seed=0):
    """State trajectory under a fixed sequence of team actions (the opponents act by themselves)."""
    rng = np.random.default_rng(team_seed)
    obs, _ = env.reset(seed=seed)
    traj, done = [obs["state"]], False
    while not done:
        if env.team_spec.continuous:
            a = rng.uniform(-1, 1, env.action_space.shape)
        else:
            a = rng.integers(0, 5, env.team_spec.n_agents)
        obs, _, term, trunc, _ = env.step(a)
        traj.append(obs["state"])
        done = term or trunc
    return np.array(traj)


@pytest.mark.parametrize("continuous", [False, True])
@pytest.mark.parametrize("task", ["mpe_tag", "mpe_world"])
def test_opponents_policy_is_fixed_and_seeded(task, continuous):
    env = make_team_env(task, {"continuous_actions": continuous})
    a = _trajectory(env, seed=11)
    _trajectory(env, seed=3)  # something else in between
    b = _trajectory(make_team_env(task, {"continuous_actions": continuous}), seed=11)
    np.testing.assert_array_equal(a, b)
    # a different reset seed gives a different game; the opponents' moves are noisy
    assert not np.array_equal(a, _trajectory(env, seed=12))
    env.reset(seed=11)
    acts = {str([np.asarray(x).round(6).tolist() for x in env.other_actions().values()]) for _ in range(50)}
    assert len(acts) > 1  # same state, fresh draws of the opponents' noise


def test_prey_flees_and_stays_in_the_arena():
    env = make_team_env("mpe_tag", {})
    outside, total, gained = 0, 0, []
    for seed in range(4):
        env.reset(seed=seed)
        for _ in range(25):
            prey = env._pos(env._others)[0].copy()
            d0 = np.linalg.norm(env._pos(env._team) - prey, axis=1).min()
            env.step(env.medium_action())
            p = env._pos(env._others)[0]
            gained.append(np.linalg.norm(env._pos(env._team) - p, axis=1).min() - d0)
            outside += int(np.abs(p).max() > 1.0)
            total += 1
    assert outside / total < 0.02
    # chased greedily by slower predators, the prey mostly keeps or grows its distance
    assert np.mean(np.array(gained) > -0.05) > 0.6


@pytest.mark.parametrize("continuous", [False, True])
@pytest.mark.parametrize("task,episodes", [("mpe_tag", 16), ("mpe_world", 8)])
def test_scripted_expert_beats_medium_beats_random(task, episodes, continuous):
    env = make_team_env(task, {"continuous_actions": continuous})
    ret = {p: rollout(env, p, episodes, seed=100).returns().mean() for p in ("random", "medium_expert:0", "expert")}
    r, m, e = ret["random"], ret["medium_expert:0"], ret["expert"]
    assert r < m < e, ret
    # clearly: the gaps are at least a fifth of the expert's advantage over random
    assert m - r > 0.2 * (e - r) and e - m > 0.2 * (e - r), ret


@pytest.mark.parametrize(
    "task,config,match",
    [
        ("mpe_tag", {"n_agent": 3}, r"mpe_tag: unknown env_config keys \['n_agent'\]"),
        ("mpe_tag", {"num_adversaries": 3}, r"unknown env_config keys \['num_adversaries'\]"),
        ("mpe_tag", {"n_agents": 0}, r"mpe_tag: n_agents must be >= 1, got 0"),
        ("mpe_tag", {"n_obstacles": -1}, r"mpe_tag: n_obstacles must be >= 0, got -1"),
        ("mpe_world", {"local_ratio": 0.5}, r"mpe_world: unknown env_config keys \['local_ratio'\]"),
        ("mpe_world", {"n_good": 0}, r"mpe_world: n_good must be >= 1, got 0"),
    ],
)
def test_bad_env_config_raises(task, config, match):
    with pytest.raises(ValueError, match=match):
        make_team_env(task, config)


def test_actions_are_checked():
    env = make_team_env("mpe_world", {})
    env.reset(seed=0)
    with pytest.raises(ValueError, match=r"action values must be in \[0, 5\)"):
        env.step([5, 0, 0, 0])  # the leader's combined index is not a team action
    envc = make_team_env("mpe_tag", {"continuous_actions": True})
    envc.reset(seed=0)
    with pytest.raises(ValueError, match=r"joint action must have shape \(3, 2\)"):
        envc.step(np.zeros((3, 5)))


@pytest.mark.parametrize("continuous", [False, True])
@pytest.mark.parametrize("task", ["mpe_tag", "mpe_world", "mpe_spread"])
def test_state_rebuilt_from_observations_is_the_env_state(task, continuous):
    """The team env builds mpe2's state from the step's observations instead of calling
    ``state()`` (which simulates every observation again): the values must be identical."""
    env = make_team_env(task, {"continuous_actions": continuous})
    env.action_space.seed(3)
    out, _ = env.reset(seed=5)
    np.testing.assert_array_equal(out["state"], env.par_env.state())
    for _ in range(env.team_spec.episode_limit):
        a = env.action_space.sample() if continuous else env.medium_action()
        out, _, term, trunc, _ = env.step(np.clip(a, -1, 1) if continuous else a)
        np.testing.assert_array_equal(out["state"], np.asarray(env.par_env.state(), np.float32))
        if term or trunc:
            break


def test_world_scalar_collision_check_matches_mpe2():
    """``simple_world_comm``'s is_collision is swapped for a scalar version on the env's
    scenario: same answer as mpe2's numpy one on every pair, including near-tangent ones."""
    from mpe2.simple_world_comm.simple_world_comm import Scenario

    env = make_team_env("mpe_world", {})
    scenario = env.par_env.unwrapped.scenario
    assert scenario.is_collision is not Scenario.is_collision.__get__(scenario)
    world = env.par_env.unwrapped.world
    entities = world.agents + world.landmarks
    rng = np.random.default_rng(0)
    checked = 0
    for _ in range(200):
        for e in entities:
            e.state.p_pos = rng.uniform(-1, 1, 2)
        a, b = entities[0], entities[-1]  # one pair placed exactly at, just inside and just outside contact
        for eps in (0.0, 1e-12, -1e-12):
            b.state.p_pos = a.state.p_pos + np.array([a.size + b.size + eps, 0.0])
            assert scenario.is_collision(a, b) == Scenario.is_collision(scenario, a, b)
        for x in entities:
            for y in entities:
                assert scenario.is_collision(x, y) == Scenario.is_collision(scenario, x, y)
                checked += 1
    assert checked > 10_000
