"""MaMuJoCo team tasks and checkpoint-driven behaviour policies."""

from __future__ import annotations

import json

import numpy as np
import pytest

pytest.importorskip("gymnasium_robotics")

from rllib_cfcql.behaviour_policies.checkpoint import (
    FORMAT,
    CheckpointError,
    CheckpointPolicy,
    build_mlp,
)
from rllib_cfcql.behaviour_policies.specs import BehaviourPolicy
from rllib_cfcql.envs import TASKS, make_team_env
from rllib_cfcql.envs.mamujoco import MaMuJoCoHalfCheetah2x3Env

TASK = "mamujoco_halfcheetah_2x3"
EXPERT = MaMuJoCoHalfCheetah2x3Env.policy_dir / "expert.pt"


def run_episode(env, policy: BehaviourPolicy, seed: int) -> float:
    obs, _ = env.reset(seed=seed)
    rng = np.random.default_rng(seed)
    policy.begin_episode(env, rng)
    total, done = 0.0, False
    while not done:
        obs, r, term, trunc, _ = env.step(policy(env, obs, rng))
        total += r
        done = term or trunc
    return total


def write_checkpoint(path, *, squash="tanh", norm=True, hidden=(8,), seed=0, n_agents=2, action_dim=3, state_dim=17):
    import torch

    torch.manual_seed(seed)
    net = build_mlp(state_dim, list(hidden), 2 * n_agents * action_dim, "relu", input_norm=norm)
    if norm:
        net.input_mean.uniform_(-1, 1)
        net.input_std.uniform_(0.5, 2)
    torch.save(net.state_dict(), path)
    meta = {"format": FORMAT, "input": "state", "input_dim": state_dim, "hidden": list(hidden), "activation": "relu",
            "input_norm": {"eps": 1e-6, "clip": 10.0} if norm else None, "squash": squash,
            "n_agents": n_agents, "action_dim": action_dim}
    path.with_suffix(".json").write_text(json.dumps(meta))
    return path


def test_tasks_registered_and_spaces():
    assert TASK in TASKS and "mamujoco" in TASKS
    env = make_team_env(TASK, {})
    spec = env.team_spec
    assert (spec.n_agents, spec.obs_dim, spec.state_dim, spec.n_actions) == (2, 12, 17, 3)
    assert spec.continuous and spec.episode_limit == 1000
    assert env.observation_space["obs"].shape == (2, 12) and env.observation_space["state"].shape == (17,)
    assert env.action_space.shape == (2, 3) and env.action_space.low.min() == -1 and env.action_space.high.max() == 1
    hop = make_team_env("mamujoco", {"scenario": "Hopper", "agent_conf": "3x1", "episode_limit": 10})
    assert (hop.team_spec.n_agents, hop.team_spec.obs_dim, hop.team_spec.state_dim, hop.team_spec.n_actions) == (3, 9, 11, 1)


def test_rollout_matches_single_agent_halfcheetah():
    """state == HalfCheetah-v5 observation, joint action (2, 3) == its 6-dim action, shared reward."""
    import gymnasium as gym

    env = make_team_env(TASK, {"episode_limit": 20})
    ref = gym.make("HalfCheetah-v5")
    obs, _ = env.reset(seed=7)
    ref_obs, _ = ref.reset(seed=7)
    np.testing.assert_allclose(obs["state"], ref_obs, atol=1e-6)
    rng = np.random.default_rng(0)
    for t in range(20):
        a = rng.uniform(-1, 1, (2, 3)).astype(np.float32)
        obs, r, term, trunc, _ = env.step(a)
        ref_obs, ref_r, *_ = ref.step(a.reshape(-1))
        assert env.observation_space.contains(obs)
        assert isinstance(r, float) and r == pytest.approx(ref_r, abs=1e-6)
        np.testing.assert_allclose(obs["state"], ref_obs, atol=1e-5)
        assert not term and trunc == (t == 19)  # time limit: truncated (bootstrapped), never terminated


def test_reset_is_deterministic_for_a_seed():
    env = make_team_env(TASK, {"episode_limit": 5})

    def traj(seed):
        obs, _ = env.reset(seed=seed)
        out = [obs["obs"].copy(), obs["state"].copy()]
        for _ in range(5):
            obs, r, *_ = env.step(np.full((2, 3), 0.3, np.float32))
            out += [obs["state"].copy(), np.array([r])]
        return np.concatenate([x.reshape(-1) for x in out])

    np.testing.assert_array_equal(traj(3), traj(3))
    assert not np.array_equal(traj(3), traj(4))


@pytest.mark.parametrize(
    "task,config,match",
    [
        (TASK, {"foo": 1}, "foo"),
        (TASK, {"scenario": "Ant"}, "scenario"),
        (TASK, {"episode_limit": "long"}, "episode_limit"),
        (TASK, {"episode_limit": 0}, "episode_limit"),
        (TASK, {"episode_limit": 5, "max_episode_steps": 6}, "max_episode_steps"),
        ("mamujoco", {"scenario": "Cheetah"}, "Cheetah"),
        ("mamujoco", {"agent_conf": "7x9"}, "7x9"),
        ("mamujoco", {"agent_obsk": -1}, "agent_obsk"),
    ],
)
def test_bad_env_config_names_the_key(task, config, match):
    with pytest.raises(ValueError, match=match):
        make_team_env(task, config)


def test_max_episode_steps_alias():
    env = make_team_env(TASK, {"max_episode_steps": 3})
    assert env.team_spec.episode_limit == 3
    env.reset(seed=0)
    ends = [env.step(np.zeros((2, 3)))[2:4] for _ in range(3)]
    assert ends == [(False, False), (False, False), (False, True)]


@pytest.mark.parametrize("squash,norm", [("tanh", True), ("clip", False)])
def test_checkpoint_policy_acts_in_range(tmp_path, squash, norm):
    path = write_checkpoint(tmp_path / "pol.pt", squash=squash, norm=norm)
    pol = CheckpointPolicy(path)
    env = make_team_env(TASK, {"episode_limit": 10})
    obs, _ = env.reset(seed=0)
    a = pol.mean_action(obs["state"])
    assert a.shape == (2, 3) and np.all(np.abs(a) <= 1.0)
    assert pol.mean_action(np.stack([obs["state"]] * 4)).shape == (4, 2, 3)
    # the team-observation entry point splits [mean | log_std] of the flat joint action the same way
    np.testing.assert_allclose(pol.act_team(obs), a, atol=1e-6)
    import torch

    with torch.no_grad():
        log_std = pol.dist_inputs(torch.from_numpy(obs["state"][None]))[0, 6:].numpy().reshape(2, 3)
    rng = np.random.default_rng(0)
    pre = np.stack([pol.act_team(obs, rng, "sample") for _ in range(3)])
    assert pre.shape == (3, 2, 3) and np.all(np.abs(pre) <= 1.0) and np.isfinite(log_std).all()
    noisy = pol.act(obs["state"], np.random.default_rng(0), noise_std=0.5)
    assert noisy.shape == (2, 3) and noisy.dtype == np.float32 and np.all(np.abs(noisy) <= 1.0)
    assert not np.allclose(noisy, a)
    # as a behaviour policy spec, with noise
    ret = run_episode(env, BehaviourPolicy(f"checkpoint:{path}@0.1"), seed=1)
    assert np.isfinite(ret)


def test_checkpoint_spec_errors_name_the_path(tmp_path):
    missing = tmp_path / "nope.pt"
    with pytest.raises(ValueError, match="nope.pt"):
        BehaviourPolicy(f"checkpoint:{missing}")
    bad = write_checkpoint(tmp_path / "bad.pt")
    bad.with_suffix(".json").write_text("{not json")
    with pytest.raises(CheckpointError, match="bad.json"):
        BehaviourPolicy(f"checkpoint:{bad}")
    wrong = write_checkpoint(tmp_path / "wrong.pt", hidden=(8,))
    meta = json.loads(wrong.with_suffix(".json").read_text())
    wrong.with_suffix(".json").write_text(json.dumps(dict(meta, hidden=[16])))
    with pytest.raises(CheckpointError, match="wrong.pt"):
        CheckpointPolicy(wrong)
    ok = write_checkpoint(tmp_path / "ok.pt")
    with pytest.raises(ValueError, match="noise std"):
        BehaviourPolicy(f"checkpoint:{ok}@loud")
    small = write_checkpoint(tmp_path / "small.pt", n_agents=3, action_dim=1, state_dim=11)
    env = make_team_env(TASK, {"episode_limit": 5})
    env.reset(seed=0)
    with pytest.raises(CheckpointError, match="small.pt"):
        BehaviourPolicy(f"checkpoint:{small}").begin_episode(env, np.random.default_rng(0))


@pytest.mark.skipif(not EXPERT.exists(), reason="expert checkpoint not trained yet")
def test_expert_checkpoint_beats_random():
    env = make_team_env(TASK, {"episode_limit": 100})
    env.reset(seed=0)
    a = env.expert_action()
    assert a.shape == (2, 3) and np.all(np.abs(a) <= 1.0)
    expert = np.mean([run_episode(env, BehaviourPolicy("expert"), seed=s) for s in (0, 1)])
    ckpt = np.mean([run_episode(env, BehaviourPolicy(f"checkpoint:{EXPERT}"), seed=s) for s in (0, 1)])
    random = np.mean([run_episode(env, BehaviourPolicy("random"), seed=s) for s in (0, 1)])
    assert expert > random + 50 and ckpt > random + 50, (expert, ckpt, random)
