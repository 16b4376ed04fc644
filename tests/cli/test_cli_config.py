"""Fast tests of the pure (Ray-free) parts of ``rllib_cfcql.cli`` (the experiment-file parsing).

None of these tests calls ``ray.init``; only one imports RLlib (to check the
key validation against a real ``AlgorithmConfig``).
"""

import json
import textwrap

import pytest

from rllib_cfcql.cli.experiment_file import (
    KNOWN_STOP_KEYS,
    ConfigError,
    apply_overrides,
    check_config_keys,
    convert_search_spaces,
    deep_merge,
    first_grid_point,
    grid_search_paths,
    load_experiment_file,
    load_yaml,
    parse_experiment,
    parse_json_option,
    validate_stop,
)
from rllib_cfcql.cli.main import rllib_main


def _yaml(text):
    return textwrap.dedent(text).lstrip("\n")


def _write(tmp_path, text, name="exp.yaml"):
    path = tmp_path / name
    path.write_text(_yaml(text))
    return str(path)


GOOD = """
cfcql-test:
  env: spread
  run: CFCQL
  stop:
    training_iteration: 10
  config:
    lr: 0.0003
    gamma: 0.99
    env_config:
      num_agents: 3
      max_cycles: 25
"""


# --------------------------------------------------------------------------
# YAML loading
# --------------------------------------------------------------------------


def test_good_file_parses(tmp_path):
    spec = load_experiment_file(_write(tmp_path, GOOD))
    assert spec.name == "cfcql-test"
    assert spec.run == "CFCQL"
    assert spec.env == "spread"
    assert spec.stop == {"training_iteration": 10}
    assert spec.config == {
        "lr": 0.0003,
        "gamma": 0.99,
        "env_config": {"num_agents": 3, "max_cycles": 25},
    }


def test_duplicate_key_top_level_names_key_file_and_line(tmp_path):
    path = _write(
        tmp_path,
        """
        exp:
          env: spread
          run: CFCQL
        exp:
          env: tag
          run: CFCQL
        """,
    )
    with pytest.raises(ConfigError) as ei:
        load_experiment_file(path)
    msg = str(ei.value)
    assert f"{path}:4:" in msg
    assert "duplicate key 'exp'" in msg
    assert "first defined on line 1" in msg


def test_duplicate_key_nested_names_key_file_and_line(tmp_path):
    path = _write(
        tmp_path,
        """
        exp:
          env: spread
          run: CFCQL
          config:
            lr: 0.1
            model:
              fcnet_hiddens: [64]
              fcnet_hiddens: [128]
        """,
    )
    with pytest.raises(ConfigError) as ei:
        load_experiment_file(path)
    msg = str(ei.value)
    assert f"{path}:8:" in msg
    assert "duplicate key 'fcnet_hiddens'" in msg
    assert "first defined on line 7" in msg


def test_duplicate_experiment_level_key():
    with pytest.raises(ConfigError) as ei:
        load_yaml("exp:\n  run: CFCQL\n  env: a\n  run: BC\n", source="x.yaml")
    assert str(ei.value).startswith("x.yaml:4: duplicate key 'run'")


def test_yaml_merge_key_may_be_overridden():
    data = load_yaml(
        _yaml(
            """
            base: &b {lr: 0.1, gamma: 0.9}
            derived:
              <<: *b
              lr: 0.2
            """
        )
    )
    assert data["derived"] == {"lr": 0.2, "gamma": 0.9}


def test_yaml_exponent_without_dot_is_float():
    data = load_yaml("a: 3e-4\nb: 1E6\nc: -2e+3\nd: '3e-4'\ne: 1.5e-3\n")
    assert data == {"a": 3e-4, "b": 1e6, "c": -2e3, "d": "3e-4", "e": 1.5e-3}
    assert isinstance(data["b"], float)


def test_yaml_syntax_error_names_file_and_line():
    with pytest.raises(ConfigError) as ei:
        load_yaml("exp:\n  run: CFCQL\n   env: [a\n", source="broken.yaml")
    msg = str(ei.value)
    assert msg.startswith("broken.yaml:")
    assert "invalid YAML" in msg


def test_missing_file():
    with pytest.raises(ConfigError) as ei:
        load_experiment_file("/nonexistent/dir/x.yaml")
    assert str(ei.value) == "/nonexistent/dir/x.yaml: no such file."


# --------------------------------------------------------------------------
# Experiment structure
# --------------------------------------------------------------------------


def test_unknown_experiment_level_key_lists_allowed_keys():
    data = load_yaml(
        "exp:\n  env: spread\n  run: CFCQL\n  stopp: {training_iteration: 1}\n"
    )
    with pytest.raises(ConfigError) as ei:
        parse_experiment(data, source="f.yaml")
    msg = str(ei.value)
    assert "f.yaml: unknown key(s) in experiment 'exp': 'stopp' (did you mean 'stop'?)" in msg
    assert "Allowed experiment-level keys are: env, run, stop, config, " in msg
    assert "checkpoint_config, num_samples" in msg


def test_algorithm_setting_on_experiment_level_is_rejected():
    data = load_yaml("exp:\n  env: spread\n  run: CFCQL\n  lr: 0.1\n")
    with pytest.raises(ConfigError) as ei:
        parse_experiment(data, source="f.yaml")
    msg = str(ei.value)
    assert "unknown key(s) in experiment 'exp': 'lr'" in msg
    assert "Algorithm settings belong under `config:`" in msg


def test_two_experiments_rejected(tmp_path):
    path = _write(
        tmp_path,
        """
        first:
          env: spread
          run: CFCQL
        second:
          env: tag
          run: CFCQL
        """,
    )
    with pytest.raises(ConfigError) as ei:
        load_experiment_file(path)
    msg = str(ei.value)
    assert "defines 2 experiments ('first', 'second')" in msg
    assert "exactly one experiment per file" in msg
    assert msg.startswith(path)


def test_missing_run_and_empty_file():
    with pytest.raises(ConfigError) as ei:
        parse_experiment({"exp": {"env": "spread"}}, source="f.yaml")
    assert "experiment 'exp' needs `run: <algorithm name>`" in str(ei.value)
    with pytest.raises(ConfigError) as ei:
        parse_experiment(load_yaml(""), source="empty.yaml")
    assert str(ei.value) == "empty.yaml: the file is empty; expected one experiment."


def test_checkpoint_config_and_num_samples():
    spec = parse_experiment(
        {
            "exp": {
                "run": "CFCQL",
                "env": "spread",
                "checkpoint_config": {"checkpoint_frequency": 5},
                "num_samples": 3,
            }
        }
    )
    assert spec.checkpoint_config == {"checkpoint_frequency": 5}
    assert spec.num_samples == 3
    with pytest.raises(ConfigError) as ei:
        parse_experiment(
            {"exp": {"run": "CFCQL", "checkpoint_config": {"checkpoint_freq": 5}}},
            source="f.yaml",
        )
    assert "unknown key(s) in `checkpoint_config`: 'checkpoint_freq' (did you mean " in str(
        ei.value
    )
    assert "'checkpoint_frequency'" in str(ei.value)
    with pytest.raises(ConfigError) as ei:
        parse_experiment({"exp": {"run": "CFCQL", "num_samples": 0}}, source="f.yaml")
    assert "f.yaml: `num_samples` must be an integer >= 1, got 0" in str(ei.value)


# --------------------------------------------------------------------------
# --config / --stop overrides
# --------------------------------------------------------------------------


def test_config_override_deep_merges(tmp_path):
    spec = load_experiment_file(_write(tmp_path, GOOD))
    merged, cli = apply_overrides(
        spec,
        stop_json='{"training_iteration": 3, "evaluation/env_runners/normalized_score": 0.9}',
        config_json='{"lr": 0.001, "env_config": {"num_agents": 4}, "seed": 7}',
    )
    assert merged.config == {
        "lr": 0.001,
        "gamma": 0.99,
        "env_config": {"num_agents": 4, "max_cycles": 25},
        "seed": 7,
    }
    assert merged.stop == {
        "training_iteration": 3,
        "evaluation/env_runners/normalized_score": 0.9,
    }
    assert cli == {"lr": 0.001, "env_config": {"num_agents": 4}, "seed": 7}
    # The input spec is not modified.
    assert spec.config["env_config"] == {"num_agents": 3, "max_cycles": 25}
    assert spec.stop == {"training_iteration": 10}


def test_deep_merge_grid_search_replaces_instead_of_merging():
    base = {"model": {"fcnet_hiddens": [64], "act": "relu"}, "lr": {"grid_search": [1, 2]}}
    override = {"model": {"grid_search": [{"a": 1}]}, "lr": {"x": 1}}
    assert deep_merge(base, override) == {
        "model": {"grid_search": [{"a": 1}]},
        "lr": {"x": 1},
    }
    assert base == {"model": {"fcnet_hiddens": [64], "act": "relu"}, "lr": {"grid_search": [1, 2]}}


def test_bad_json_names_the_flag(tmp_path):
    spec = load_experiment_file(_write(tmp_path, GOOD))
    with pytest.raises(ConfigError) as ei:
        apply_overrides(spec, config_json="{lr: 0.1}")
    msg = str(ei.value)
    assert msg.startswith("--config: invalid JSON (Expecting property name enclosed in double quotes")
    assert "'{lr: 0.1}'" in msg
    with pytest.raises(ConfigError) as ei:
        apply_overrides(spec, stop_json='{"training_iteration": }')
    assert str(ei.value).startswith("--stop: invalid JSON (Expecting value at line 1 column 24)")


def test_json_must_be_an_object_without_duplicates():
    with pytest.raises(ConfigError) as ei:
        parse_json_option("[1, 2]", "--config")
    assert str(ei.value) == (
        "--config: expected a JSON object like '{\"key\": ...}', got list: '[1, 2]'."
    )
    with pytest.raises(ConfigError) as ei:
        parse_json_option('{"lr": 1, "lr": 2}', "--config")
    assert str(ei.value) == "--config: duplicate key 'lr' in the JSON object."


# --------------------------------------------------------------------------
# grid_search
# --------------------------------------------------------------------------


def test_grid_search_conversion_nested():
    from ray import tune

    raw = load_yaml(
        _yaml(
            """
            lr: {grid_search: [0.1, 0.01]}
            gamma: 0.99
            model:
              fcnet_hiddens: {grid_search: [[64, 64], [128]]}
              fcnet_activation: relu
            env_config:
              scenarios: [{grid_search: [a, b]}, c]
            """
        )
    )
    converted = convert_search_spaces(raw)
    assert converted == {
        "lr": {"grid_search": [0.1, 0.01]},
        "gamma": 0.99,
        "model": {
            "fcnet_hiddens": {"grid_search": [[64, 64], [128]]},
            "fcnet_activation": "relu",
        },
        "env_config": {"scenarios": [{"grid_search": ["a", "b"]}, "c"]},
    }
    assert converted["lr"] == tune.grid_search([0.1, 0.01])
    assert converted["model"]["fcnet_hiddens"] == tune.grid_search([[64, 64], [128]])
    assert grid_search_paths(converted) == [
        ("lr",),
        ("model", "fcnet_hiddens"),
        ("env_config", "scenarios", 0),
    ]
    assert first_grid_point(raw) == {
        "lr": 0.1,
        "gamma": 0.99,
        "model": {"fcnet_hiddens": [64, 64], "fcnet_activation": "relu"},
        "env_config": {"scenarios": ["a", "c"]},
    }
    # The input is left untouched, and plain values are returned as-is.
    assert raw["lr"] == {"grid_search": [0.1, 0.01]}
    assert convert_search_spaces({"a": {"b": 1}}) == {"a": {"b": 1}}


def test_grid_search_from_json_override(tmp_path):
    spec = load_experiment_file(_write(tmp_path, GOOD))
    merged, _ = apply_overrides(
        spec, config_json='{"env_config": {"num_agents": {"grid_search": [2, 4]}}}'
    )
    converted = convert_search_spaces(merged.config)
    assert converted["env_config"] == {"num_agents": {"grid_search": [2, 4]}, "max_cycles": 25}


def test_grid_search_malformed():
    with pytest.raises(ConfigError) as ei:
        convert_search_spaces({"model": {"lr": {"grid_search": [1], "other": 2}}})
    assert str(ei.value).startswith(
        "config.model.lr: `grid_search` must be the only key of its mapping (found also 'other')"
    )
    with pytest.raises(ConfigError) as ei:
        convert_search_spaces({"lr": {"grid_search": []}})
    assert str(ei.value) == "config.lr: `grid_search` needs a non-empty list of values, got []."
    with pytest.raises(ConfigError) as ei:
        convert_search_spaces({"lr": {"grid_search": 0.1}})
    assert str(ei.value) == "config.lr: `grid_search` needs a non-empty list of values, got 0.1."
    with pytest.raises(ConfigError) as ei:
        convert_search_spaces({"m": {"grid_search": [{"x": {"grid_search": [1, 2]}}]}})
    assert "config.m: nested `grid_search` inside the options" in str(ei.value)


# --------------------------------------------------------------------------
# Config keys
# --------------------------------------------------------------------------


def test_unknown_config_key_with_close_match():
    allowed = {"lr", "gamma", "train_batch_size_per_learner", "env_config"}
    check_config_keys({"lr": 1, "gamma": 0.9}, allowed, "f.yaml")  # no error
    with pytest.raises(ConfigError) as ei:
        check_config_keys(
            {"lr": 1, "gama": 0.9, "train_batch_size_per_lerner": 3, "zzz": 1},
            allowed,
            "tuned_examples/x.yaml",
        )
    msg = str(ei.value)
    assert msg.startswith("tuned_examples/x.yaml: unknown keys in `config`:")
    assert "'gama' (did you mean 'gamma'?)" in msg
    assert "'train_batch_size_per_lerner' (did you mean 'train_batch_size_per_learner'?)" in msg
    assert "\n  'zzz'\n" in msg
    assert "'lr'" not in msg


def test_unknown_key_in_evaluation_config():
    with pytest.raises(ConfigError) as ei:
        check_config_keys(
            {"evaluation_config": {"explor": False}}, {"evaluation_config", "explore"}, "f.yaml"
        )
    assert str(ei.value).startswith(
        "f.yaml: unknown key in `config.evaluation_config`:\n  'explor' (did you mean 'explore'?)"
    )


def test_real_algorithm_config_keys():
    from ray.rllib.algorithms.algorithm_config import AlgorithmConfig

    from rllib_cfcql.core.config_keys import allowed_config_keys

    allowed = allowed_config_keys(AlgorithmConfig())
    assert set(AlgorithmConfig().to_dict()) <= allowed
    real = {
        "lr": 1e-3,
        "gamma": 0.99,
        "train_batch_size_per_learner": 256,
        "evaluation_interval": 1,
        "num_learners": 0,
        "input_": "/data",
        "input": "/data",
        "num_env_runners": 0,
        "env_config": {},
        "evaluation_config": {"explore": False},
        "framework": "torch",
    }
    check_config_keys(real, allowed, "f.yaml")  # no error

    # Every accepted spelling really is understood by update_from_dict.
    cfg = AlgorithmConfig().update_from_dict(
        {"train_batch_size_per_learner": 77, "input_": "/data", "evaluation_interval": 3}
    )
    assert cfg.train_batch_size_per_learner == 77
    assert cfg.input_ == "/data"
    assert cfg.evaluation_interval == 3

    with pytest.raises(ConfigError) as ei:
        check_config_keys({"lr": 1e-3, "learning_rate_typo": 1e-3}, allowed, "f.yaml")
    msg = str(ei.value)
    assert msg.startswith("f.yaml: unknown key in `config`:\n  'learning_rate_typo'")
    assert "'lr'" not in msg.splitlines()[0]
    with pytest.raises(ConfigError) as ei:
        check_config_keys({"num_learner": 1}, allowed, "--config")
    assert "--config: unknown key in `config`:\n  'num_learner' (did you mean 'num_learners'" in str(
        ei.value
    )


# --------------------------------------------------------------------------
# Stop criteria
# --------------------------------------------------------------------------


def test_stop_non_numeric_rejected():
    with pytest.raises(ConfigError) as ei:
        validate_stop({"training_iteration": "100"}, "f.yaml")
    assert str(ei.value) == (
        "f.yaml: stop criterion 'training_iteration' must be a number, got '100' (str)."
    )
    with pytest.raises(ConfigError) as ei:
        validate_stop({"evaluation/env_runners/episode_return_mean": True}, "f.yaml")
    assert "stop criterion 'evaluation/env_runners/episode_return_mean' must be a number, got True (bool)" in str(
        ei.value
    )
    with pytest.raises(ConfigError) as ei:
        validate_stop({"time_total_s": [1]}, "--stop")
    assert str(ei.value) == "--stop: stop criterion 'time_total_s' must be a number, got [1] (list)."


def test_stop_accepts_known_and_nested_keys():
    stop = validate_stop(
        {
            "training_iteration": 100,
            "time_total_s": 3600.0,
            "num_env_steps_sampled_lifetime": 1e6,
            "learners/default_policy/td_loss": 0.01,
            "evaluation": {"env_runners": {"episode_return_mean": -50}},
        }
    )
    assert stop == {
        "training_iteration": 100,
        "time_total_s": 3600.0,
        "num_env_steps_sampled_lifetime": 1e6,
        "learners/default_policy/td_loss": 0.01,
        "evaluation/env_runners/episode_return_mean": -50,
    }
    assert {"training_iteration", "time_total_s", "num_env_steps_sampled_lifetime"} <= set(
        KNOWN_STOP_KEYS
    )


def test_stop_unknown_keys_rejected():
    with pytest.raises(ConfigError) as ei:
        validate_stop({"training_iterations": 10}, "f.yaml")
    msg = str(ei.value)
    assert msg.startswith(
        "f.yaml: unknown stop criterion 'training_iterations' "
        "(did you mean 'training_iteration'?). Top-level stop keys are: training_iteration,"
    )
    with pytest.raises(ConfigError) as ei:
        validate_stop({"episode_reward_mean": 10}, "f.yaml")
    assert str(ei.value) == (
        "f.yaml: stop criterion 'episode_reward_mean' is an old-API-stack metric that "
        "RLlib no longer reports; use 'env_runners/episode_return_mean'."
    )
    with pytest.raises(ConfigError) as ei:
        validate_stop({"evaluation//x": 1}, "f.yaml")
    assert "stop criterion 'evaluation//x' has an empty path segment" in str(ei.value)
    with pytest.raises(ConfigError) as ei:
        validate_stop([1, 2], "f.yaml")
    assert "f.yaml: `stop` must be a mapping of metric -> number, got list" in str(ei.value)


def test_stop_in_file_is_validated(tmp_path):
    path = _write(
        tmp_path,
        """
        exp:
          env: spread
          run: CFCQL
          stop: {training_iteration: ten}
        """,
    )
    with pytest.raises(ConfigError) as ei:
        load_experiment_file(path)
    assert str(ei.value) == (
        f"{path}: stop criterion 'training_iteration' must be a number, got 'ten' (str)."
    )


# --------------------------------------------------------------------------
# Command line: user errors exit 2 with a message and no traceback
# --------------------------------------------------------------------------


def test_rllib_main_config_error_exits_2(tmp_path, capsys):
    path = _write(tmp_path, "exp:\n  env: spread\n  run: CFCQL\n  confg: {}\n")
    assert rllib_main(["train", "--file", path]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"rllib train: error: {path}: unknown key(s) in experiment 'exp': 'confg'")
    assert "Traceback" not in err


def test_rllib_main_bad_json_exits_2(tmp_path, capsys):
    path = _write(tmp_path, GOOD)
    assert rllib_main(["train", "--file", path, "--config", "not json"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("rllib train: error: --config: invalid JSON")
    assert "Traceback" not in err


def test_rllib_main_usage_error_exits_2(capsys):
    with pytest.raises(SystemExit) as ei:
        rllib_main(["train"])
    assert ei.value.code == 2
    assert "the following arguments are required: -f/--file" in capsys.readouterr().err


def test_json_option_roundtrip():
    # Sanity: what the shell passes through is plain JSON.
    text = json.dumps({"lr": {"grid_search": [1e-3, 1e-4]}})
    assert convert_search_spaces(parse_json_option(text, "--config")) == {
        "lr": {"grid_search": [1e-3, 1e-4]}
    }
