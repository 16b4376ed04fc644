"""The behaviour trainer's RLlib parts: the team task as a multi-agent env, the action-masking
PPO module, and where a task configuration's trained policies live."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
import torch

from rllib_cfcql import keys as K
from rllib_cfcql.behaviour_policies.qualities import (
    POLICY_ROOT,
    policy_dir_name,
    trained_policy_dir,
)
from rllib_cfcql.behaviour_policies.team_agents import (
    MaskedPPOTorchRLModule,
    TeamAgentsEnv,
)


@pytest.mark.parametrize("task, cfg, name", [
    ("mpe_spread", {"continuous_actions": True}, "mpe_spread_continuous"),
    ("mpe_tag", {}, "mpe_tag_discrete"),
    ("mpe_tag", {"continuous_actions": False}, "mpe_tag_discrete"),
    ("equal_line", {"n_agents": 4}, "equal_line_n4_discrete"),
    ("equal_line", {"n_agents": 4, "boundary_mask": True}, "equal_line_boundary_mask_n4_discrete"),
    ("equal_line", {"n_agents": 4, "boundary_mask": False, "episode_limit": 30}, "equal_line_episode_limit-30_n4_discrete"),
])
def test_policy_dir_name(task, cfg, name):
    assert policy_dir_name(task, cfg) == name


def test_trained_policies_fit_only_their_configuration():
    # the MPE dirs keep their names; a team size without policies falls back (None), never to another n's
    assert trained_policy_dir("mpe_spread", {"continuous_actions": True}) == POLICY_ROOT / "mpe_spread_continuous"
    assert trained_policy_dir("equal_line", {"n_agents": 7}) is None


def test_team_agents_env_rows_mask_and_team_reward():
    env = TeamAgentsEnv({"task": "equal_line", "n_agents": 3, "boundary_mask": True, "worker_index": 1})
    spec = env.spec_
    width = spec.obs_dim + 3 + spec.n_actions
    assert env.observation_spaces["agent_0"].shape == (width,)
    assert env.action_spaces["agent_2"] == gym.spaces.Discrete(spec.n_actions)
    obs, _ = env.reset(seed=0)
    team = env._obs
    for i, a in enumerate(env.agents):
        np.testing.assert_array_equal(obs[a][: spec.obs_dim], team[K.OBS][i])
        np.testing.assert_array_equal(obs[a][spec.obs_dim: spec.obs_dim + 3], np.eye(3)[i])
        np.testing.assert_array_equal(obs[a][-spec.n_actions:], team[K.ACTION_MASK][i])
    # agents start in [0, 2] on a line of length 10: moving by -1 is unavailable to whoever is below 1
    assert (team[K.ACTION_MASK] == 0).any()
    avail = {a: int(np.flatnonzero(team[K.ACTION_MASK][i])[0]) for i, a in enumerate(env.agents)}
    _, rew, term, trunc, _ = env.step(avail)
    assert len(set(rew.values())) == 1 and env.steps == 1 and term == {"__all__": False}
    i = int(np.flatnonzero((env._obs[K.ACTION_MASK] == 0).any(1))[0])
    bad = int(np.flatnonzero(env._obs[K.ACTION_MASK][i] == 0)[0])
    act = {a: int(np.flatnonzero(env._obs[K.ACTION_MASK][j])[0]) for j, a in enumerate(env.agents)}
    act[f"agent_{i}"] = bad
    with pytest.raises(ValueError, match=rf"agent_{i} chose action {bad}, which its action mask rules out"):
        env.step(act)
    with pytest.raises(ValueError, match="must name the team task"):
        TeamAgentsEnv({"n_agents": 3})


def test_team_agents_env_continuous_has_no_mask():
    env = TeamAgentsEnv({"task": "mpe_spread", "continuous_actions": True})
    spec = env.spec_
    assert env.observation_spaces["agent_0"].shape == (spec.obs_dim + spec.n_agents,)
    obs, _ = env.reset(seed=1)
    _, rew, _, _, _ = env.step({a: np.full(spec.n_actions, 3.0, np.float32) for a in env.agents})  # clipped
    assert len(set(rew.values())) == 1


def _modules(obs_dim=5, n_actions=4, seed=0):
    from ray.rllib.algorithms.ppo.torch.default_ppo_torch_rl_module import (
        DefaultPPOTorchRLModule,
    )
    from ray.rllib.core.rl_module.default_model_config import DefaultModelConfig

    cfg = DefaultModelConfig(fcnet_hiddens=[16, 16], fcnet_activation="tanh", head_fcnet_hiddens=[],
                             vf_share_layers=False)
    act = gym.spaces.Discrete(n_actions)
    torch.manual_seed(seed)
    masked = MaskedPPOTorchRLModule(observation_space=gym.spaces.Box(-np.inf, np.inf, (obs_dim + n_actions,), np.float32),
                                    action_space=act, model_config=cfg)
    plain = DefaultPPOTorchRLModule(observation_space=gym.spaces.Box(-np.inf, np.inf, (obs_dim,), np.float32),
                                    action_space=act, model_config=cfg)
    plain.load_state_dict(masked.state_dict())  # same networks: the mask is not an input
    return masked, plain


def test_masked_module_is_the_default_module_plus_log_mask():
    from ray.rllib.core.columns import Columns

    masked, plain = _modules()
    assert masked.observation_space.shape == (9,)
    rng = np.random.default_rng(0)
    x = torch.from_numpy(rng.normal(size=(64, 5)).astype(np.float32))
    mask = torch.from_numpy((rng.random((64, 4)) < 0.5).astype(np.float32))
    mask[:, 0] = 1.0
    full = torch.cat([x, mask], 1)
    with torch.no_grad():
        ref = plain.forward_exploration({Columns.OBS: x})[Columns.ACTION_DIST_INPUTS]
        ones = masked.forward_inference({Columns.OBS: torch.cat([x, torch.ones(64, 4)], 1)})[Columns.ACTION_DIST_INPUTS]
        out = masked.forward_exploration({Columns.OBS: full})[Columns.ACTION_DIST_INPUTS]
        train = masked.forward_train({Columns.OBS: full})[Columns.ACTION_DIST_INPUTS]
        v_masked = masked.compute_values({Columns.OBS: full})
        v_plain = plain.compute_values({Columns.OBS: x})
    torch.testing.assert_close(ones, ref)  # all-ones mask: exactly the default module
    torch.testing.assert_close(out[mask > 0], ref[mask > 0])
    torch.testing.assert_close(train, out)
    assert (out[mask == 0] < -1e30).all()
    torch.testing.assert_close(v_masked, v_plain)  # the value function ignores the mask
    probs = torch.softmax(out, -1)
    assert float(probs[mask == 0].max()) == 0.0
    # sampled actions (what the env runner draws) are always available
    dist = masked.get_exploration_action_dist_cls().from_logits(out)
    draws = torch.stack([dist.sample() for _ in range(200)])  # [200, 64]
    assert bool(mask.gather(1, draws.T).all())


def test_masked_module_gets_no_gradient_through_unavailable_logits():
    from ray.rllib.core.columns import Columns

    masked, _ = _modules(seed=1)
    x = torch.randn(32, 5)
    mask = torch.ones(32, 4)
    mask[:, 3] = 0.0
    logits = masked.forward_train({Columns.OBS: torch.cat([x, mask], 1)})[Columns.ACTION_DIST_INPUTS]
    logp = torch.log_softmax(logits, -1)
    (-(logp[:, :3].sum())).backward()
    pi_out = [p for n, p in masked.named_parameters() if n.startswith("pi.")][-1]  # last bias: one per action
    assert pi_out.shape == (4,)
    assert float(pi_out.grad[3].abs()) == 0.0 and float(pi_out.grad[:3].abs().min()) > 0.0
    enc = [p for n, p in masked.named_parameters() if n.startswith("encoder.actor_encoder")]
    assert all(p.grad is not None and float(p.grad.abs().sum()) > 0 for p in enc)


def test_masked_module_rejects_wrong_spaces():
    with pytest.raises(ValueError, match="Discrete action space"):
        MaskedPPOTorchRLModule(observation_space=gym.spaces.Box(-1, 1, (6,)), action_space=gym.spaces.Box(-1, 1, (2,)))
    with pytest.raises(ValueError, match="ending with the 4-wide action mask"):
        MaskedPPOTorchRLModule(observation_space=gym.spaces.Box(-1, 1, (3,)), action_space=gym.spaces.Discrete(4))


def test_ppo_trains_the_masked_module_on_a_masked_task(ray_session, tmp_path):
    """One real RLlib PPO iteration on equal_line with boundary masks: the env raises on any action
    outside the mask, so finishing the iteration means the env runner sampled only available actions;
    the shared policy's parameters moved."""
    from ray.tune.registry import register_env

    from rllib_cfcql.behaviour_policies import train_shared as tsb

    register_env("team_agents", lambda cfg: TeamAgentsEnv(cfg))
    ns = type("Args", (), dict(task="equal_line", hidden=[16, 16], activation="tanh", lr=1e-3, gamma=0.99, epochs=2,
                                minibatch=100, ppo_batch=400, entropy=0.01, num_envs=2, seed=0, batched_env="auto"))()
    algo, _ = tsb.build_algo(ns, {"n_agents": 3, "boundary_mask": True})
    try:
        module = algo.learner_group._learner.module[tsb.MODULE_ID]
        assert isinstance(module, MaskedPPOTorchRLModule)
        before = {n: p.detach().clone() for n, p in module.named_parameters()}
        envs = tsb._sub_envs(algo.env_runner.env)
        assert len(envs) == 2 and all(e.masked for e in envs)
        algo.train()
        assert sum(e.steps for e in envs) >= 400
        moved = [n for n, p in module.named_parameters() if not torch.equal(p.detach(), before[n])]
        assert any(n.startswith("pi.") for n in moved) and any(n.startswith("vf.") for n in moved)
        net = tsb.extract_policy(algo, [16, 16], "tanh")  # checked against RLlib's own forward inside
        assert net.layers[0].in_features == envs[0].spec_.obs_dim + 3
    finally:
        algo.stop()


def test_ppo_on_a_batched_smax_map_steps_all_copies_in_one_call(ray_session):
    """One real RLlib PPO iteration on smax_2s3z through BatchedTeamEnvRunner: the copies step as one
    vmapped batch, the mask check still refuses any unavailable action (so finishing means PPO sampled
    only legal ones, dead agents included), RLlib's step counts match the copies' own, and the shared
    policy moved."""
    pytest.importorskip("jaxmarl", reason='the smax_* tasks need the optional extra: pip install -e ".[smax]"')
    from ray.rllib.utils.metrics import ENV_RUNNER_RESULTS, NUM_ENV_STEPS_SAMPLED_LIFETIME
    from ray.tune.registry import register_env

    from rllib_cfcql.behaviour_policies import train_shared as tsb
    from rllib_cfcql.behaviour_policies.team_agents import BatchedTeamAgentsEnv, BatchedTeamEnvRunner

    register_env("team_agents", lambda cfg: TeamAgentsEnv(cfg))
    args = dict(task="smax_2s3z", hidden=[16, 16], activation="tanh", lr=1e-3, gamma=0.99, epochs=1, minibatch=256,
                ppo_batch=512, entropy=0.01, num_envs=8, seed=0, batched_env="auto")
    ns = type("Args", (), args)()
    algo, _ = tsb.build_algo(ns, {})
    try:
        assert isinstance(algo.env_runner, BatchedTeamEnvRunner)
        assert isinstance(algo.env_runner.env, BatchedTeamAgentsEnv)
        envs = tsb._sub_envs(algo.env_runner.env)
        assert len(envs) == 8 and all(e.masked for e in envs)
        module = algo.learner_group._learner.module[tsb.MODULE_ID]
        before = {n: p.detach().clone() for n, p in module.named_parameters()}
        res = algo.train()
        steps = sum(e.steps for e in envs)
        assert steps >= 512
        assert res[ENV_RUNNER_RESULTS][NUM_ENV_STEPS_SAMPLED_LIFETIME] == steps
        moved = [n for n, p in module.named_parameters() if not torch.equal(p.detach(), before[n])]
        assert any(n.startswith("pi.") for n in moved) and any(n.startswith("vf.") for n in moved)
    finally:
        algo.stop()
    with pytest.raises(ValueError, match=r"--batched-env on: task 'equal_line' has no batched version"):
        tsb.build_algo(type("Args", (), dict(args, task="equal_line", batched_env="on"))(), {"n_agents": 3})
