"""Smoke tier: the real RLlib Algorithm on real data (shared Ray session).

Training with evaluation on EnvRunners, checkpoint round trip, Tune, two
learners, and the `rllib train` command line.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys

import numpy as np
import pytest

from rllib_cfcql import CFCQLConfig
from rllib_cfcql import keys as K
from tests.conftest import REPO, check_score_and_checkpoint_round_trip

ENV_CFG = {"n_agents": 3, "episode_limit": 10}


def small_config(d, **training):
    t = dict(cql_alpha=1.0, num_gradient_steps_per_iteration=5, train_batch_size_per_learner=16,
             bc_pretrain_steps=20, agent_rnn=False, obs_last_action=False, batch_unit="transitions")
    t.update(training)
    return (CFCQLConfig().environment("equal_line", env_config=ENV_CFG).offline_data(input_=[str(d)])
            .training(**t).evaluation(evaluation_interval=1, evaluation_duration=2, evaluation_num_env_runners=1)
            .debugging(seed=0))


def test_two_iterations_with_evaluation_save_and_restore(ray_session, tiny_dataset, tmp_path):
    d = tiny_dataset(env_config=ENV_CFG, episodes=12, seed=1)
    algo = small_config(d, agent_rnn=True, obs_last_action=True, batch_unit="episodes").build_algo()
    try:
        assert algo.dataset_info["transitions"] == 120 and algo.behaviour_info["steps"] > 0
        for i in range(2):
            r = algo.train()
        learn = r["learners"]["default_policy"]
        for key in (K.TD_LOSS, K.PENALTY, K.Q_TOT_MEAN, K.LAMBDA_ENTROPY, K.LAMBDA_MAX, K.BETA_ACCURACY):
            assert math.isfinite(learn[key]), key
        assert r["learners"]["__all_modules__"][K.NUM_GRAD_STEPS] == 10
        check_score_and_checkpoint_round_trip(algo, r, tmp_path, "equal_line", ENV_CFG, 10, 15)
    finally:
        algo.stop()


def test_two_learners_shard_the_data_and_train(ray_session, tiny_dataset):
    d = tiny_dataset(env_config=ENV_CFG, episodes=12, seed=1)
    cfg = small_config(d, penalty="joint").learners(num_learners=2).evaluation(evaluation_interval=0)
    algo = cfg.build_algo()
    try:
        shards = algo.dataset_info["shards"]
        assert sorted(s["learner_index"] for s in shards) == [0, 1]
        assert sum(s["episodes"] for s in shards) == 12 and all(s["episodes"] == 6 for s in shards)
        r = algo.train()
        assert r["learners"]["__all_modules__"][K.NUM_GRAD_STEPS] == 5
        assert math.isfinite(r["learners"]["default_policy"][K.TD_LOSS])
        # DDP keeps the two learners' weights identical
        w = algo.learner_group.foreach_learner(lambda l: l.module["default_policy"].unwrapped().agent.fc1.weight.detach().numpy().copy())
        w = algo.learner_group._get_results(w)
        np.testing.assert_allclose(w[0], w[1], atol=1e-6)
    finally:
        algo.stop()


def test_tune_grid_search_over_registered_cfcql(ray_session, tiny_dataset, tmp_path):
    from ray import tune

    d = tiny_dataset(env_config=ENV_CFG, episodes=12, seed=1)
    cfg = small_config(d, cf_tau=0.0).evaluation(evaluation_interval=0).training(cql_alpha=tune.grid_search([0.5, 2.0]))
    tuner = tune.Tuner("CFCQL", param_space=cfg, run_config=tune.RunConfig(
        stop={"training_iteration": 1}, storage_path=str(tmp_path), verbose=0))
    results = tuner.fit()
    assert len(results) == 2 and not results.errors
    alphas = sorted(r.config["cql_alpha"] for r in results)
    assert alphas == [0.5, 2.0]
    for r in results:
        assert r.metrics["learners"]["__all_modules__"][K.NUM_GRAD_STEPS] == 5


def test_config_validation_names_the_bad_field(tiny_dataset):
    d = tiny_dataset(env_config=ENV_CFG, episodes=12, seed=1)
    cases = [
        (dict(cql_alpha=-1.0), r"cql_alpha=-1.0 is invalid: expected a number in \[0.0, inf\]"),
        (dict(penalty="foo"), r"penalty='foo' is invalid: expected one of \('cf', 'joint', 'none'\)"),
        (dict(td_lambda=1.5), r"td_lambda=1.5 is invalid"),
        (dict(target_update_interval=0), r"target_update_interval=0 is invalid: expected an integer"),
        (dict(agent_rnn=True, batch_unit="transitions"), r"batch_unit='transitions' is invalid"),
        (dict(reference_returns={"random": 1.0}), r"reference_returns=.* is invalid"),
    ]
    for training, msg in cases:
        with pytest.raises(ValueError, match=msg):
            small_config(d, **training).validate()
    with pytest.raises(ValueError, match=r"input_=.* is invalid: expected the path\(s\) of a team dataset"):
        CFCQLConfig().environment("equal_line").validate()


def _rllib(*args, timeout=300):
    env = dict(os.environ, RAY_AIR_NEW_OUTPUT="0", PYTHONUNBUFFERED="1")
    env.pop("RAY_ADDRESS", None)
    return subprocess.run([sys.executable, "-m", "rllib_cfcql", *args], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=timeout)


@pytest.mark.ray  # trains in a subprocess that starts its own Ray
def test_cli_train_with_overrides_on_minimal_cpus_does_not_hang(tmp_path):
    """`rllib train --file` end to end in a fresh Ray with exactly the trial's 3 logical CPUs
    (main process, one evaluation EnvRunner, the ray.data reader): the reader runs inside the
    trial's placement group, so it cannot starve (it used to hang here)."""
    stop = json.dumps({"training_iteration": 2})
    cfg = json.dumps({"num_gradient_steps_per_iteration": 3, "evaluation_interval": 2, "evaluation_duration": 2,
                      "bc_pretrain_steps": 10, "train_batch_size_per_learner": 32})
    p = _rllib("train", "--file", "tuned_examples/cfcql-equal-line.yaml", "--stop", stop, "--config", cfg,
               "--storage-path", str(tmp_path), "--ray-num-cpus", "3")
    out = p.stdout + p.stderr
    assert p.returncode == 0, out[-4000:]
    assert "normalized" in out.lower() or "normalised" in out.lower()
    assert "checkpoint" in out.lower()
    results = list(tmp_path.rglob("result.json"))
    assert results
    last = [json.loads(line) for line in results[0].read_text().splitlines()][-1]
    assert last["training_iteration"] == 2
    assert last["learners"]["__all_modules__"][K.NUM_GRAD_STEPS] == 6
    assert math.isfinite(last["evaluation"]["env_runners"][K.NORMALIZED_SCORE])


def test_cli_refuses_a_trial_that_cannot_be_scheduled():
    p = _rllib("train", "--file", "tuned_examples/cfcql-equal-line.yaml", "--ray-num-cpus", "2", timeout=300)
    assert p.returncode == 2
    assert "one trial needs 3 logical CPUs" in p.stderr and "Ray has 2 CPUs" in p.stderr


def test_cli_rejects_unknown_key_and_bad_value():
    p = _rllib("train", "--file", "tuned_examples/cfcql-equal-line.yaml", "--config", '{"cql_alpah": 1}', "--dry-run")
    assert p.returncode == 2 and "cql_alpah" in p.stderr and "cql_alpha" in p.stderr
    p = _rllib("train", "--file", "tuned_examples/cfcql-equal-line.yaml", "--config", '{"penalty": "bogus"}', "--dry-run")
    assert p.returncode == 2 and "penalty='bogus'" in p.stderr


def test_update_from_dict_rejects_unknown_keys_and_round_trips():
    cfg = CFCQLConfig()
    cfg.update_from_dict(cfg.to_dict())  # everything RLlib itself writes is accepted
    with pytest.raises(ValueError, match=r"unknown config key\(s\) 'cql_alpah' \(did you mean 'cql_alpha'"):
        cfg.update_from_dict({"cql_alpah": 1.0})


def test_resource_request_adds_a_reader_bundle(tiny_dataset):
    from rllib_cfcql import CFCQL

    d = tiny_dataset(env_config=ENV_CFG, episodes=12, seed=1)
    cfg = small_config(d)  # main process + 1 evaluation EnvRunner (+ the ray.data reader)
    for given in (cfg, cfg.to_dict()):
        assert CFCQL.default_resource_request(given).bundles == [{"CPU": 1.0}, {"CPU": 1.0}, {"CPU": 1.0}]
