"""Continuous variant, smoke tier: the real RLlib Algorithm on real data (shared Ray
session): training with evaluation on EnvRunners, normalised score from the card,
checkpoint round trip, two DDP learners, a Tune grid over α and τ, and a real
2-iteration run per continuous task family."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from rllib_cfcql import CFCQLConfig
from rllib_cfcql import keys as K
from tests.conftest import check_score_and_checkpoint_round_trip

SPREAD = {"continuous_actions": True, "max_cycles": 10}


def small_config(d, task="mpe_spread", env_config=SPREAD, **training):
    t = dict(cql_alpha=1.0, num_gradient_steps_per_iteration=6, train_batch_size_per_learner=32, agent_hidden=32,
             gamma=0.95, grad_clip=0.5, actor_update_interval=3)
    t.update(training)
    return (CFCQLConfig().environment(task, env_config=env_config).offline_data(input_=[str(d)])
            .training(**t).evaluation(evaluation_interval=1, evaluation_duration=2, evaluation_num_env_runners=1)
            .debugging(seed=0))


def test_continuous_two_iterations_evaluation_save_and_restore(ray_session, tiny_dataset, tmp_path):
    d = tiny_dataset(task="mpe_spread", env_config=SPREAD, episodes=10, policy="medium_expert:0.3", seed=2)
    algo = small_config(d).build_algo()
    try:
        assert algo.dataset_info["transitions"] == 100
        for _ in range(2):
            r = algo.train()
        learn = r["learners"]["default_policy"]
        for key in (K.TD_LOSS, K.PENALTY, K.CRITIC_LOSS, K.ACTOR_LOSS, K.Q_DATA_MEAN, K.LAMBDA_MAX):
            assert math.isfinite(learn[key]), key
        allm = r["learners"]["__all_modules__"]
        assert allm[K.NUM_GRAD_STEPS] == 12 and allm[K.NUM_TARGET_UPDATES] == 4
        card = json.loads((d / "card.json").read_text())
        assert algo.reference_returns == card["reference_returns"]  # the card's references drive the normalised score
        check_score_and_checkpoint_round_trip(algo, r, tmp_path, "mpe_spread", SPREAD, 12, 18)
    finally:
        algo.stop()


def test_continuous_two_ddp_learners_stay_identical_across_critic_only_steps(ray_session, tiny_dataset):
    d = tiny_dataset(task="mpe_spread", env_config=SPREAD, episodes=10, policy="medium_expert:0.3", seed=2)
    algo = small_config(d).learners(num_learners=2).evaluation(evaluation_interval=0).build_algo()
    try:
        shards = algo.dataset_info["shards"]
        assert sorted(s["episodes"] for s in shards) == [5, 5]
        params = lambda l: {k: v.detach().numpy().copy()  # noqa: E731
                            for k, v in l.module["default_policy"].unwrapped().named_parameters()}
        w0 = algo.learner_group._get_results(algo.learner_group.foreach_learner(params))
        r = algo.train()  # 6 steps = 2 rounds of (critic + actor, 2 critic-only)
        assert r["learners"]["__all_modules__"][K.NUM_GRAD_STEPS] == 6
        w = algo.learner_group._get_results(algo.learner_group.foreach_learner(params))
        for k in w[0]:
            np.testing.assert_allclose(w[0][k], w[1][k], atol=1e-6, err_msg=k)
        assert not np.allclose(w0[0]["actor.mlp.out.weight"], w[0]["actor.mlp.out.weight"])
        assert not np.allclose(w0[0]["critic.mlp.out.weight"], w[0]["critic.mlp.out.weight"])
    finally:
        algo.stop()


def test_continuous_tune_grid_over_tau(ray_session, tiny_dataset, tmp_path):
    from ray import tune

    d = tiny_dataset(task="mpe_spread", env_config=SPREAD, episodes=10, policy="medium_expert:0.3", seed=2)
    cfg = small_config(d, vae_hidden=16, vae_pretrain_steps=20, lambda_model="vae").evaluation(evaluation_interval=0)
    # two trials keep the default suite short; the α × τ grid is tuned_examples/cfcql-mpe-continuous-sweep.yaml
    cfg = cfg.training(cf_tau=tune.grid_search([0.0, 1.0]))
    results = tune.Tuner("CFCQL", param_space=cfg, run_config=tune.RunConfig(
        stop={"training_iteration": 1}, storage_path=str(tmp_path), verbose=0)).fit()
    assert len(results) == 2 and not results.errors
    assert sorted(r.config["cf_tau"] for r in results) == [0.0, 1.0]
    for r in results:
        learn = r.metrics["learners"]
        assert learn["__all_modules__"][K.NUM_GRAD_STEPS] == 6
        lam_max = learn["default_policy"][K.LAMBDA_MAX]
        # τ = 0: uniform λ = 1/3; τ = 1: VAE-weighted λ, no longer uniform
        assert (lam_max == pytest.approx(1 / 3)) == (r.config["cf_tau"] == 0.0)


FAMILIES = {
    "mpe_spread": {"continuous_actions": True, "max_cycles": 10},
    "mpe_tag": {"continuous_actions": True, "max_cycles": 10},
    "mpe_world": {"continuous_actions": True, "max_cycles": 10},
    "mamujoco_halfcheetah_2x3": {"episode_limit": 20},
}


@pytest.mark.parametrize("task", sorted(FAMILIES))
def test_real_two_iteration_run_per_continuous_task_family(ray_session, tiny_dataset, task):
    """Each continuous task family trains for 2 iterations on data collected from the real env
    and evaluates its decentralised actors on an EnvRunner in the same env."""
    cfg_env = FAMILIES[task]
    d = tiny_dataset(task=task, env_config=cfg_env, episodes=6, policy="random", seed=4)
    algo = small_config(d, task=task, env_config=cfg_env, cql_policy_samples=task.startswith("mamujoco")).build_algo()
    try:
        w0 = {k: v.clone() for k, v in algo.learner_group._learner.module["default_policy"].unwrapped().state_dict().items()}
        for _ in range(2):
            r = algo.train()
        assert r["learners"]["__all_modules__"][K.NUM_GRAD_STEPS] == 12
        assert math.isfinite(r["learners"]["default_policy"][K.CRITIC_LOSS])
        w1 = algo.learner_group._learner.module["default_policy"].unwrapped().state_dict()
        for part in ("actor.", "critic.", "target_critic."):
            assert any(not torch.equal(w0[k], w1[k]) for k in w0 if k.startswith(part)), part
        ev = r["evaluation"]["env_runners"]
        assert ev["num_episodes"] >= 2 and math.isfinite(ev["episode_return_mean"]) and K.NORMALIZED_SCORE in ev
    finally:
        algo.stop()
