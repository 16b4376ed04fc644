"""`rllib-cfcql export`: the exported TorchScript/ONNX policy acts exactly like the trained module,
step by step on dataset episodes, and a restored checkpoint exports the same policy."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
import torch

from rllib_cfcql.cli.main import cfcql_main
from rllib_cfcql.data.validate import validate_dataset
from rllib_cfcql.discrete.module import H_STATE, PREV_ACTION

from .conftest import REPO

ort = pytest.importorskip("onnxruntime")

CASES = {
    # name: (dataset, training overrides)
    "gru": ("offline_data/mpe_spread", dict(agent_rnn=True, obs_last_action=True, cf_tau=0.0,
                                            train_batch_size_per_learner=8)),
    "mlp": ("offline_data/equal_line_n4", dict(agent_rnn=False, obs_last_action=False, batch_unit="transitions",
                                               cf_tau=0.0, train_batch_size_per_learner=64)),
    "continuous": ("offline_data/mpe_spread_continuous/medium", dict(train_batch_size_per_learner=64)),
    "continuous-shared": ("offline_data/mpe_spread_continuous/medium", dict(shared_actor=True,
                                                                             train_batch_size_per_learner=64)),
}


@pytest.fixture(scope="module")
def checkpoints(ray_session, tmp_path_factory):
    """One briefly trained checkpoint per case (weights away from their initialisation)."""
    from rllib_cfcql import CFCQLConfig

    out = {}
    for name, (data, training) in CASES.items():
        card = json.loads((REPO / data / "card.json").read_text())
        cfg = (CFCQLConfig().environment(card["task"], env_config=card["env_config"])
               .offline_data(input_=[str(REPO / data)])
               .training(num_gradient_steps_per_iteration=30, **training)
               .evaluation(evaluation_interval=None))
        algo = cfg.build_algo()
        algo.train()
        out[name] = algo.save(str(tmp_path_factory.mktemp(f"ckpt-{name}"))).checkpoint.path
        algo.stop()
    return out


def _export(ckpt, out):
    assert cfcql_main(["export", str(ckpt), "--out", str(out)]) == 0
    meta = json.loads((out / "policy.json").read_text())
    assert meta["onnx_error"] is None and set(meta["files"]) == {"torchscript", "onnx"}
    return meta, torch.jit.load(str(out / "policy.pt")), ort.InferenceSession(str(out / "policy.onnx"))


def _dataset_steps(data, min_steps=1000):
    _, ep = validate_dataset(REPO / data)
    lengths = ep.lengths()
    k = int(np.searchsorted(np.cumsum(lengths), min_steps)) + 1
    return ep.select(np.arange(k)), int(lengths[:k].sum())


@pytest.mark.parametrize("name", ["gru", "mlp"])
def test_exported_discrete_policy_gives_the_modules_greedy_actions(checkpoints, tmp_path, name):
    from rllib_cfcql.export import load_module

    meta, ts, onnx = _export(checkpoints[name], tmp_path / "policy")
    module = load_module(checkpoints[name])
    data, total = _dataset_steps(CASES[name][0])
    assert total >= 1000
    n, H = meta["n_agents"], meta["hidden"]
    assert meta["rnn"] == (name == "gru") and meta["obs_last_action"] == (name == "gru")
    idx = torch.arange(n)
    compared = onnx_mismatch = 0
    for e in range(data.num_episodes):
        h_mod = torch.zeros(1, n, H)
        h_ts = torch.zeros(n, H)
        h_onnx = np.zeros((n, H), np.float32)
        prev = torch.full((n,), -1, dtype=torch.int64)
        for t in range(int(data.lengths()[e])):
            obs = torch.as_tensor(data.obs[e, t])
            mask = torch.as_tensor(data.action_mask[e, t])
            prev_onehot = torch.zeros(1, n, meta["n_actions"]) if t == 0 else \
                torch.nn.functional.one_hot(prev, meta["n_actions"]).float()[None]
            with torch.no_grad():
                expected, state = module.greedy_step(obs[None], mask[None], {H_STATE: h_mod, PREV_ACTION: prev_onehot})
                a_ts, h_ts, q_ts = ts(obs, idx, prev, h_ts, mask)
            a_onnx, h_onnx, q_onnx = onnx.run(None, {"obs": obs.numpy(), "agent_index": idx.numpy(),
                                                      "prev_action": prev.numpy(), "hidden": h_onnx,
                                                      "action_mask": mask.numpy()})
            assert torch.equal(a_ts, expected[0]), (e, t)  # TorchScript: the same kernels, the same actions
            if name == "gru":
                torch.testing.assert_close(h_ts, state[H_STATE][0], rtol=0, atol=0)
                h_mod = state[H_STATE]
            np.testing.assert_allclose(q_onnx, q_ts.numpy(), rtol=1e-4, atol=1e-4)
            # ONNX Runtime's kernels round differently: a differing action is only allowed at a near-tie
            diff = a_onnx != a_ts.numpy()
            if diff.any():
                q = q_ts.numpy()
                assert np.all(np.abs(q[diff, a_onnx[diff]] - q[diff, a_ts.numpy()[diff]]) < 1e-4), (e, t)
                onnx_mismatch += int(diff.sum())
            prev = torch.as_tensor(data.actions[e, t])  # the logged action is the next step's prev_action
            compared += 1
    assert compared == total and onnx_mismatch <= total * n // 1000


@pytest.mark.parametrize("name", ["continuous", "continuous-shared"])
def test_exported_continuous_policy_gives_the_actors_actions(checkpoints, tmp_path, name):
    from rllib_cfcql.export import load_module

    meta, ts, onnx = _export(checkpoints[name], tmp_path / "policy")
    assert meta["kind"] == "continuous" and meta["shared_actor"] == (name == "continuous-shared")
    module = load_module(checkpoints[name])
    _, ep = validate_dataset(REPO / CASES[name][0])
    obs = torch.as_tensor(ep.obs[:, :-1][ep.filled > 0])  # [N, n, O], every dataset step
    assert len(obs) >= 1000
    with torch.no_grad():
        expected = module.actor(obs)  # [N, n, d]
        n = obs.shape[1]
        flat = obs.reshape(-1, obs.shape[-1])
        agent = torch.arange(n).repeat(len(obs))
        got_ts = ts(flat, agent).reshape(expected.shape)
    got_onnx = onnx.run(None, {"obs": flat.numpy(), "agent_index": agent.numpy()})[0].reshape(expected.shape)
    assert expected.std(0).max() > 1e-3  # the actions vary with the observation (not a constant map)
    torch.testing.assert_close(got_ts, expected, rtol=0, atol=1e-5)
    np.testing.assert_allclose(got_onnx, expected.numpy(), rtol=0, atol=1e-5)


def test_export_of_a_restored_checkpoint_is_identical(ray_session, checkpoints, tmp_path):
    """Export in a fresh process from the checkpoint; restore the algorithm from it, save again and
    export that: the same weights (digest), the same ONNX bytes, the same actions."""
    from ray.rllib.algorithms.algorithm import Algorithm

    from rllib_cfcql.export import export_policy

    out = subprocess.run([sys.executable, "-m", "rllib_cfcql", "export", checkpoints["gru"], "--out",
                          str(tmp_path / "a")], capture_output=False, text=True, cwd=REPO, timeout=300,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert out.returncode == 0, out.stderr[-2000:]
    assert "exported the discrete policy" in out.stdout
    algo = Algorithm.from_checkpoint(checkpoints["gru"])
    try:
        again = algo.save(str(tmp_path / "resaved")).checkpoint.path
    finally:
        algo.stop()
    b = export_policy(again, tmp_path / "b")
    a = json.loads((tmp_path / "a" / "policy.json").read_text())
    assert a["weights_sha256"] == b["weights_sha256"]
    assert (tmp_path / "a" / "policy.onnx").read_bytes() == (tmp_path / "b" / "policy.onnx").read_bytes()
    ts_a, ts_b = torch.jit.load(str(tmp_path / "a" / "policy.pt")), torch.jit.load(str(tmp_path / "b" / "policy.pt"))
    g = torch.Generator().manual_seed(0)
    n, O, A, H = a["n_agents"], a["obs_dim"], a["n_actions"], a["hidden"]
    args = (torch.randn(64, O, generator=g), torch.arange(64) % n, torch.randint(-1, A, (64,), generator=g),
            torch.randn(64, H, generator=g), torch.ones(64, A))
    for x, y in zip(ts_a(*args), ts_b(*args)):
        assert torch.equal(x, y)


def test_export_errors_are_clear(tmp_path, capsys):
    assert cfcql_main(["export", str(tmp_path / "nope"), "--out", str(tmp_path / "o")]) == 2
    assert "no such checkpoint" in capsys.readouterr().err
    (tmp_path / "empty").mkdir()
    assert cfcql_main(["export", str(tmp_path / "empty"), "--out", str(tmp_path / "o")]) == 2
    assert "not an RLlib checkpoint of a CFCQL algorithm" in capsys.readouterr().err
