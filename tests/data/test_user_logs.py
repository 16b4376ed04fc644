"""A team's own logs, no simulator: the writer API, training with no env, inference without
EnvRunners, and "CFCQL" registered with Tune by the import alone."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pyarrow.parquet as pq
import pytest

from rllib_cfcql import keys as K
from rllib_cfcql.data.schema import DatasetError
from rllib_cfcql.data.validate import (
    preflight,
    team_spec_from_mapping,
    validate_dataset,
)
from rllib_cfcql.data.writer import TeamDatasetWriter
from tests.conftest import REPO

N, O, A = 3, 4, 5


def _logs(seed=0, episodes=30, length=8, continuous=False):
    """Arrays as a user's logging code would hold them: per episode obs [L+1, n, O], actions, rewards."""
    rng = np.random.default_rng(seed)
    out = []
    for e in range(episodes):
        L = length - (e % 3)
        obs = rng.normal(size=(L + 1, N, O)).astype(np.float32)
        if continuous:
            acts = rng.uniform(-1, 1, size=(L, N, 2)).astype(np.float32)
            rew = -np.abs(acts).sum((1, 2))
            masks = None
        else:
            masks = np.ones((L + 1, N, A), np.float32)
            masks[:, :, 4] = rng.integers(0, 2, size=(L + 1, N))  # action 4 sometimes unavailable
            acts = np.stack([[rng.choice(np.flatnonzero(masks[t, i])) for i in range(N)] for t in range(L)])
            rew = (acts == 1).sum(1).astype(np.float32)  # reward: agents choosing action 1
        out.append({"obs": obs, "actions": acts, "rewards": rew, "masks": masks, "terminated": e % 2 == 0})
    return out


def _write(path, logs, **kw):
    continuous = logs[0]["masks"] is None
    with TeamDatasetWriter(path, n_agents=N, obs_dim=O, n_actions=2 if continuous else A,
                           continuous=continuous, **kw) as w:
        for ep in logs:
            for t in range(len(ep["actions"])):
                w.add_step(obs=ep["obs"][t], actions=ep["actions"][t], reward=ep["rewards"][t],
                           action_mask=None if continuous else ep["masks"][t])
            w.end_episode(final_obs=ep["obs"][-1], final_action_mask=None if continuous else ep["masks"][-1],
                          terminated=ep["terminated"])
    return path


@pytest.mark.parametrize("fmt", ["parquet", "json"])
def test_writer_round_trip_matches_the_users_arrays(tmp_path, fmt):
    logs = _logs()
    _write(tmp_path / "d", logs, fmt=fmt, task="warehouse", behaviour_policy="shift-2 operators")
    card, ep = validate_dataset(tmp_path / "d")  # schema, boundaries, next_* consistency, content hash
    assert card["spec"] == {"n_agents": N, "obs_dim": O, "state_dim": N * O, "n_actions": A, "episode_limit": 0,
                            "continuous": False}
    assert card["task"] == "warehouse" and card["behaviour_policy"] == "shift-2 operators"
    assert "reference_returns" not in card  # unknown: no normalised score is invented
    lengths = [len(e["actions"]) for e in logs]
    assert card["episodes"] == len(logs) and card["transitions"] == sum(lengths) == ep.num_transitions
    returns = np.array([e["rewards"].sum() for e in logs])
    assert card["return"]["mean"] == pytest.approx(returns.mean(), rel=1e-6)
    np.testing.assert_allclose(ep.returns(), returns, rtol=1e-6)
    all_actions = np.concatenate([e["actions"] for e in logs])
    freq = np.stack([np.bincount(all_actions[:, i], minlength=A) for i in range(N)]) / len(all_actions)
    np.testing.assert_allclose(card["action_frequencies"], freq, atol=1e-4)
    for k, e in enumerate(logs):
        L = len(e["actions"])
        np.testing.assert_array_equal(ep.obs[k, : L + 1], e["obs"])  # incl. the bootstrap observation
        np.testing.assert_array_equal(ep.state[k, : L + 1], e["obs"].reshape(L + 1, -1))  # derived state
        np.testing.assert_array_equal(ep.actions[k, :L], e["actions"])
        np.testing.assert_array_equal(ep.action_mask[k, :L], e["masks"][:L])
        assert ep.terminated[k, L - 1] == float(e["terminated"]) and ep.filled[k].sum() == L


def test_writer_splits_files_at_episode_ends_and_writes_continuous_stats(tmp_path):
    logs = _logs(continuous=True, episodes=10)
    card = None
    _write(tmp_path / "c", logs, rows_per_file=20, reference_returns={"random": -20.0, "expert": 0.0})
    card, ep = validate_dataset(tmp_path / "c")
    assert card["spec"]["continuous"] and card["reference_returns"] == {"random": -20.0, "expert": 0.0}
    assert len(card["files"]) > 1
    for f in card["files"]:  # every file ends on an episode's last row
        t = pq.read_table(tmp_path / "c" / f)
        assert t.column(K.TERMINATED)[-1].as_py() or t.column(K.TRUNCATED)[-1].as_py()
    acts = np.concatenate([e["actions"] for e in logs])
    np.testing.assert_allclose(card["action_mean"], acts.mean(0), atol=1e-4)
    np.testing.assert_allclose(card["action_std"], acts.std(0), atol=1e-4)


@pytest.mark.parametrize("call, match", [
    (lambda w: w.add_step(obs=np.zeros((N, O + 1)), actions=[0, 0, 0], reward=0.0),
     r"episode 0, step 0, obs: got shape \(3, 5\), expected \(3, 4\)"),
    (lambda w: w.add_step(obs=np.zeros((N, O)), actions=[0, 7, 0], reward=0.0),
     r"step 0, actions: agent 1 took action 7, expected 0 <= a < 5"),
    (lambda w: w.add_step(obs=np.zeros((N, O)), actions=[0, 1.5, 0], reward=0.0),
     r"actions: got \[0.0, 1.5, 0.0\], expected 3 integer actions"),
    (lambda w: w.add_step(obs=np.zeros((N, O)), actions=[4, 0, 0], reward=0.0,
                          action_mask=np.eye(N, A, 0)), r"agent 0 took action 4, which its action_mask marks unavailable"),
    (lambda w: w.add_step(obs=np.zeros((N, O)), actions=[0, 0, 0], reward=float("nan")), r"reward: nan is not finite"),
    (lambda w: w.add_step(obs=np.full((N, O), np.inf), actions=[0, 0, 0], reward=0.0), r"obs: contains NaN/inf"),
    (lambda w: w.add_step(obs=np.zeros((N, O)), actions=[0, 0, 0], reward=0.0, state=np.zeros(3)),
     r"state: the writer was made with state_dim=None"),
    (lambda w: w.end_episode(final_obs=np.zeros((N, O)), terminated=True), r"end_episode without any add_step"),
    (lambda w: (w.add_step(obs=np.zeros((N, O)), actions=[0, 0, 0], reward=0.0), w.close()),
     r"episode 0 has 1 step\(s\) but was never ended"),
    (lambda w: w.close(), r"no episode was written"),
    (lambda w: (w.add_step(obs=np.zeros((N, O)), actions=[0, 0, 0], reward=0.0),
                w.end_episode(final_obs=np.zeros((N, O)), terminated="yes")), r"terminated: expected True or False"),
])
def test_writer_rejects_bad_input_naming_episode_step_and_field(tmp_path, call, match):
    w = TeamDatasetWriter(tmp_path / "bad", n_agents=N, obs_dim=O, n_actions=A)
    with pytest.raises(ValueError, match=match):
        call(w)


def test_writer_refuses_to_overwrite_and_checks_continuous_range(tmp_path):
    _write(tmp_path / "d", _logs(episodes=2))
    with pytest.raises(FileExistsError, match="not empty; pass force=True"):
        TeamDatasetWriter(tmp_path / "d", n_agents=N, obs_dim=O, n_actions=A)
    w = TeamDatasetWriter(tmp_path / "c", n_agents=N, obs_dim=O, n_actions=2, continuous=True)
    with pytest.raises(ValueError, match=r"agent 2 dimension 1 is 1.5, expected a value in \[-1, 1\]"):
        w.add_step(obs=np.zeros((N, O)), actions=[[0, 0], [0, 0], [0, 1.5]], reward=0.0)
    with pytest.raises(ValueError, match="continuous tasks have no action mask"):
        w.add_step(obs=np.zeros((N, O)), actions=np.zeros((N, 2)), reward=0.0, action_mask=np.ones((N, 2)))


def test_explicit_spec_is_checked_field_by_field():
    assert team_spec_from_mapping({"n_agents": 2, "obs_dim": 3, "state_dim": 4, "n_actions": 5}, "x").continuous is False
    for bad, match in (({"n_agents": 2, "obs_dim": 3, "state_dim": 4}, r"missing \['n_actions'\]"),
                       ({"n_agents": 0, "obs_dim": 3, "state_dim": 4, "n_actions": 5}, r"n_agents=0, expected an integer >= 1"),
                       ({"n_agents": 2, "obs_dim": 3, "state_dim": 4, "n_actions": 5, "agents": 2}, r"unknown key\(s\) \['agents'\]"),
                       ({"n_agents": 2, "obs_dim": 3, "state_dim": 4, "n_actions": 5, "continuous": "no"},
                        r"continuous='no', expected true or false")):
        with pytest.raises(DatasetError, match=match):
            team_spec_from_mapping(bad, "CFCQLConfig.spec")


def _dataset_only_config(path, **training):
    from rllib_cfcql import CFCQLConfig

    return (CFCQLConfig().environment(None).offline_data(input_=[str(path)])
            .training(agent_rnn=False, obs_last_action=False, batch_unit="transitions", train_batch_size_per_learner=64,
                      num_gradient_steps_per_iteration=20, bc_pretrain_steps=50, **training))


def test_config_without_env_takes_shapes_from_the_card_or_spec_and_turns_evaluation_off(tmp_path):
    _write(tmp_path / "d", _logs(episodes=4))
    cfg = _dataset_only_config(tmp_path / "d")
    cfg.validate()
    assert cfg.team_spec().to_dict() == {"n_agents": N, "obs_dim": O, "state_dim": N * O, "n_actions": A,
                                         "episode_limit": 0, "continuous": False}
    assert cfg.evaluation_interval is None  # the default 5 needs an env
    # no card: `spec` gives the shapes; without it, the message says what to give
    (tmp_path / "d" / "card.json").unlink()
    with pytest.raises(ValueError, match=r"no env and no .*card.json: give the team's shapes with spec="):
        _dataset_only_config(tmp_path / "d").validate()
    cfg = _dataset_only_config(tmp_path / "d", spec={"n_agents": N, "obs_dim": O, "state_dim": N * O, "n_actions": A})
    cfg.validate()
    assert cfg.action_space.nvec.tolist() == [A] * N
    # the shapes are checked against the data before anything trains
    wrong = _dataset_only_config(tmp_path / "d", spec={"n_agents": N, "obs_dim": O + 1, "state_dim": N * O, "n_actions": A})
    wrong.validate()
    with pytest.raises(DatasetError, match=r"column 'obs' has 12 values at row 0, expected 15"):
        preflight(wrong.input_, wrong.team_spec(), None)
    with pytest.raises(ValueError, match=r"spec=.* is invalid: expected None when an env is given"):
        from rllib_cfcql import CFCQLConfig

        CFCQLConfig().environment("equal_line").offline_data(input_=["x"]).training(spec={"n_agents": 1}).validate()


def test_dataset_only_training_then_inference_without_env_runners(ray_session, tmp_path):
    """Logs -> trained algorithm -> get_module() and compute_single_action() with no EnvRunners at all;
    the action is the module's greedy decentralised action, and training moved the parameters."""
    import torch

    logs = _logs(episodes=40)
    _write(tmp_path / "d", logs)
    algo = _dataset_only_config(tmp_path / "d", cql_alpha=1.0).build_algo()
    try:
        assert algo.env_runner_group is None and algo.eval_env_runner_group is None
        module = algo.get_module()
        before = {k: v.detach().clone() for k, v in module.agent.state_dict().items()}
        result = algo.train()
        assert "evaluation" not in result and np.isfinite(result["learners"]["default_policy"]["td_loss"])
        module = algo.get_module()
        assert any(not torch.equal(before[k], v) for k, v in module.agent.state_dict().items())
        for t in range(5):
            obs = {"obs": logs[1]["obs"][t], "action_mask": logs[1]["masks"][t]}
            action = algo.compute_single_action(obs)
            expected, _ = module.greedy_step(torch.as_tensor(obs["obs"])[None], torch.as_tensor(obs["action_mask"])[None], None)
            np.testing.assert_array_equal(action, expected[0].numpy())
            assert all(obs["action_mask"][i, a] == 1 for i, a in enumerate(action))
        with pytest.raises(ValueError, match=r"obs has shape \(3, 3\), expected \(3, 4\)"):
            algo.compute_single_action(np.zeros((3, 3)))
    finally:
        algo.stop()


def test_get_module_with_a_remote_learner_and_recurrent_state(ray_session, tiny_dataset):
    """With the learner in its own actor, get_module() builds a copy with its current weights; a GRU
    agent's compute_single_action(state=...) returns the state to pass at the next step."""
    import torch

    from rllib_cfcql import CFCQLConfig

    d = tiny_dataset(env_config={"n_agents": 3, "episode_limit": 10}, episodes=12)
    cfg = (CFCQLConfig().environment(None).offline_data(input_=[str(d)])
           .training(num_gradient_steps_per_iteration=5, bc_pretrain_steps=20, train_batch_size_per_learner=4)
           .learners(num_learners=1))
    algo = cfg.build_algo()
    try:
        algo.train()
        module = algo.get_module()
        remote = algo.learner_group.foreach_learner(lambda lr: lr.module["default_policy"].agent.state_dict())
        remote = algo.learner_group._get_results(remote)[0]
        for k, v in module.agent.state_dict().items():
            torch.testing.assert_close(v, torch.as_tensor(remote[k]), rtol=0, atol=0)
        spec = algo.config.team_spec()
        obs = {"obs": np.ones((spec.n_agents, spec.obs_dim), np.float32)}
        state = module.get_initial_state()
        a1, s1, extra = algo.compute_single_action(obs, state=state)
        a2, s2, _ = algo.compute_single_action(obs, state=s1)
        assert extra == {} and a1.shape == (spec.n_agents,)
        assert s1["h"].shape == (spec.n_agents, module.cfg["hidden"]) and not np.allclose(s1["h"], s2["h"])
        np.testing.assert_array_equal(s1["prev_action"], np.eye(spec.n_actions)[a1])
    finally:
        algo.stop()


def test_import_alone_registers_cfcql_with_tune():
    """`import rllib_cfcql` is enough for Tune's registry (no CFCQLConfig access first), without RLlib's
    own registry (which imports every built-in algorithm, DreamerV3's PIL among them)."""
    code = (
        "import sys, rllib_cfcql\n"
        "assert 'ray.rllib' not in sys.modules, 'registration imported RLlib'\n"
        "from ray.tune.registry import get_trainable_cls, ENV_CREATOR, _global_registry\n"
        "cls = get_trainable_cls('CFCQL')\n"
        "assert cls.__name__ == 'CFCQL' and cls.get_default_config().algo_class is cls\n"
        "assert 'ray.rllib.algorithms.dreamerv3' not in sys.modules\n"
        "env = _global_registry.get(ENV_CREATOR, 'equal_line')({'n_agents': 3})\n"
        "print(type(env).__name__, env.team_spec.n_agents)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip().splitlines()[-1] == "EqualLineEnv 3"


def test_task_names_match_the_registry():
    from rllib_cfcql.envs import TASKS
    from rllib_cfcql.envs.names import TASK_NAMES

    assert sorted(TASK_NAMES) == sorted(TASKS)


def _readme_blocks(section: str, lang: str) -> list[str]:
    text = (REPO / "README.md").read_text()
    part = text[text.index(section):]
    part = part[: part.index("\n## ", 1)]
    blocks, rest = [], part
    while f"```{lang}\n" in rest:
        rest = rest[rest.index(f"```{lang}\n") + len(lang) + 4:]
        blocks.append(rest[: rest.index("```")])
        rest = rest[rest.index("```") + 3:]
    return blocks


@pytest.mark.ray  # trains in a subprocess that starts its own Ray
def test_readme_own_logs_example_runs_from_arrays_to_an_exported_policy(tmp_path):
    """The README's example as a user would paste it: arrays -> TeamDatasetWriter -> CFCQL without env ->
    checkpoint -> `rllib-cfcql export` -> the README's loader, which needs only torch."""
    train, loader = _readme_blocks("## Your own logs, no simulator", "python")
    script = train + "\nprint('CHECKPOINT', checkpoint)\nalgo.stop()\n"
    out = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    lines = out.stdout.strip().splitlines()
    ckpt = lines[-1].split("CHECKPOINT ")[1]
    losses = [float(x) for x in lines[-5:-2]]
    assert all(np.isfinite(losses))
    action = lines[-2].strip("[]").split()
    assert len(action) == 3 and all(0 <= int(a) < 5 for a in action)
    card = json.loads((tmp_path / "my_logs" / "card.json").read_text())
    assert card["episodes"] == 200 and card["transitions"] == 4000 and card["behaviour_policy"] == "line operators"
    out = subprocess.run([sys.executable, "-m", "rllib_cfcql", "export", ckpt, "--out", "my_policy"], cwd=tmp_path,
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    check = loader + "\nimport sys\nassert 'ray' not in sys.modules\nprint(action.tolist(), hidden.shape, q.shape)\n"
    out = subprocess.run([sys.executable, "-c", check], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-3000:]
    assert out.stdout.strip().endswith("torch.Size([3, 64]) torch.Size([3, 5])")
