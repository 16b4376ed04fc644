"""Decentralised (shared, agent-observation) policy checkpoints, the training-replay schedule, and
the MPE tasks' committed PPO behaviour policies."""

from __future__ import annotations

import importlib.util
import json

import numpy as np
import pytest

from rllib_cfcql.behaviour_policies.checkpoint import (
    FORMAT,
    CheckpointError,
    CheckpointPolicy,
    build_mlp,
    load_checkpoint_policy,
)
from rllib_cfcql.behaviour_policies.qualities import (
    POLICY_ROOT,
    CheckpointReplay,
    evaluate_checkpoint,
    quality_policy,
    reference_expert,
    trained_policy_dir,
)
from rllib_cfcql.behaviour_policies.specs import BehaviourPolicy
from rllib_cfcql.data.collect import rollout
from rllib_cfcql.envs import make_team_env

CONT = {"continuous_actions": True}
#: (task, env_config, policy dir) of every committed set of trained behaviour policies
TRAINED = [(t, CONT if v == "continuous" else {}, f"{t}_{v}")
           for t in ("mpe_spread", "mpe_tag", "mpe_world") for v in ("discrete", "continuous")]
TRAINED.append(("equal_line", {"n_agents": 4}, "equal_line_n4_discrete"))
# the SMAX maps' policies (PPO through the batched env runner) need the [smax] extra to be evaluated
_NO_JAXMARL = pytest.mark.skipif(importlib.util.find_spec("jaxmarl") is None,
                                 reason="the smax_* tasks need the optional extra [smax]")
TRAINED += [pytest.param(f"smax_{m}", {}, f"smax_{m}_discrete", id=f"smax_{m}_discrete", marks=_NO_JAXMARL)
            for m in ("2s3z", "5m_vs_6m")]


def agent_checkpoint(path, *, n_agents=3, obs_dim=18, action_dim=5, dist="categorical", bias=None, hidden=(4,)):
    """A shared agent-obs policy whose output is exactly ``bias`` (all weights zero)."""
    import torch

    out = action_dim * (2 if dist == "gaussian" else 1)
    net = build_mlp(obs_dim + n_agents, list(hidden), out, "tanh")
    with torch.no_grad():
        for p in net.parameters():
            p.zero_()
        net.layers[-1].bias.copy_(torch.as_tensor(np.asarray(bias, np.float32)))
    torch.save(net.state_dict(), path)
    meta = {"format": FORMAT, "input": "agent_obs", "agent_id": True, "input_dim": obs_dim + n_agents,
            "hidden": list(hidden), "activation": "tanh", "input_norm": None, "squash": "clip", "dist": dist,
            "n_agents": n_agents, "action_dim": action_dim}
    path.with_suffix(".json").write_text(json.dumps(meta))
    return path


def test_categorical_policy_modes_have_their_closed_form(tmp_path):
    probs = np.array([0.1, 0.2, 0.4, 0.2, 0.1])
    pol = CheckpointPolicy(agent_checkpoint(tmp_path / "p.pt", bias=np.log(probs)))
    env = make_team_env("mpe_spread", {})
    pol.check_task(env.team_spec)
    obs, _ = env.reset(seed=0)
    assert pol.act_team(obs).tolist() == [2, 2, 2]  # the most likely action, for every agent
    masked = dict(obs, action_mask=np.array([[1, 1, 0, 1, 1]] * 3, np.float32))
    assert pol.act_team(masked).tolist() == [1, 1, 1]  # unavailable actions are never chosen (tie -> first)
    rng = np.random.default_rng(0)
    draws = np.stack([pol.act_team(obs, rng, "sample") for _ in range(4000)])
    freq = np.bincount(draws.ravel(), minlength=5) / draws.size
    np.testing.assert_allclose(freq, probs, atol=0.015)  # softmax(log p) = p
    masked_draws = np.stack([pol.act_team(masked, rng, "sample") for _ in range(500)])
    assert not (masked_draws == 2).any()
    eps = np.stack([pol.act_team(obs, rng, "noise", 0.5) for _ in range(4000)])
    # ε = 0.5: the mode with probability 0.5 + 0.5/5, every other action 0.5/5
    np.testing.assert_allclose(np.bincount(eps.ravel(), minlength=5) / eps.size, [0.1, 0.1, 0.6, 0.1, 0.1], atol=0.02)


def test_gaussian_policy_modes_have_their_closed_form(tmp_path):
    pol = CheckpointPolicy(agent_checkpoint(tmp_path / "g.pt", obs_dim=18, action_dim=2, dist="gaussian",
                                            bias=[0.3, -0.2, np.log(0.1), np.log(0.05)]))
    env = make_team_env("mpe_spread", CONT)
    pol.check_task(env.team_spec)
    obs, _ = env.reset(seed=0)
    np.testing.assert_allclose(pol.act_team(obs), [[0.3, -0.2]] * 3, atol=1e-6)
    rng = np.random.default_rng(1)
    draws = np.stack([pol.act_team(obs, rng, "sample") for _ in range(4000)])
    assert draws.dtype == np.float32 and draws.shape == (4000, 3, 2)
    np.testing.assert_allclose(draws.mean((0, 1)), [0.3, -0.2], atol=0.005)
    np.testing.assert_allclose(draws.std((0, 1)), [0.1, 0.05], rtol=0.05)


def test_a_checkpoint_rewritten_in_place_is_loaded_again(tmp_path):
    """A training run overwrites expert.pt after the old one was loaded (reference returns at start):
    later loads in the same process must act with the new weights, not the cached old ones."""
    import os

    env = make_team_env("mpe_spread", {})
    obs, _ = env.reset(seed=0)
    path = agent_checkpoint(tmp_path / "expert.pt", bias=[0, 0, 5, 0, 0])
    assert load_checkpoint_policy(path).act_team(obs).tolist() == [2, 2, 2]
    assert load_checkpoint_policy(path) is load_checkpoint_policy(path)  # unchanged file: loaded once
    agent_checkpoint(path, bias=[0, 0, 0, 0, 5])
    st = path.stat()
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000))  # a distinct mtime even on coarse clocks
    assert load_checkpoint_policy(path).act_team(obs).tolist() == [4, 4, 4]


def test_agent_rows_carry_the_agent_one_hot(tmp_path):
    pol = CheckpointPolicy(agent_checkpoint(tmp_path / "p.pt", bias=np.zeros(5)))
    obs = np.arange(3 * 18, dtype=np.float32).reshape(3, 18)
    rows = pol.agent_inputs(obs)
    np.testing.assert_array_equal(rows[:, :18], obs)
    np.testing.assert_array_equal(rows[:, 18:], np.eye(3))
    with pytest.raises(ValueError, match="act_team"):
        pol.mean_action(np.zeros(54))


def test_agent_checkpoint_errors_name_the_file(tmp_path):
    wrong_task = agent_checkpoint(tmp_path / "four.pt", n_agents=4, bias=np.zeros(5))
    env = make_team_env("mpe_spread", {})
    env.reset(seed=0)
    with pytest.raises(CheckpointError, match="four.pt.*n_agents=4"):
        BehaviourPolicy(f"checkpoint:{wrong_task}").begin_episode(env, np.random.default_rng(0))
    cat = agent_checkpoint(tmp_path / "cat.pt", bias=np.zeros(5))
    with pytest.raises(CheckpointError, match="cat.pt.*continuous=False"):
        CheckpointPolicy(cat).check_task(make_team_env("mpe_spread", CONT).team_spec)
    meta = json.loads(cat.with_suffix(".json").read_text())
    cat.with_suffix(".json").write_text(json.dumps(dict(meta, input="state")))
    with pytest.raises(CheckpointError, match="cat.json.*categorical"):
        CheckpointPolicy(cat)
    cat.with_suffix(".json").write_text(json.dumps(dict(meta, dist="poisson")))
    with pytest.raises(CheckpointError, match="cat.json.*poisson"):
        CheckpointPolicy(cat)
    cat.with_suffix(".json").write_text(json.dumps(meta))
    with pytest.raises(ValueError, match="probability"):
        BehaviourPolicy(f"checkpoint:{cat}@1.5")


def write_manifest(tmp_path, steps, medium):
    ckpts = []
    for s in steps:
        agent_checkpoint(tmp_path / f"step-{s}.pt", bias=np.log(np.full(5, 0.2)))
        ckpts.append({"file": f"step-{s}.pt", "env_steps": s})
    path = tmp_path / "replay.json"
    path.write_text(json.dumps({"medium_env_steps": medium, "checkpoints": ckpts}))
    return path


def test_replay_schedule_plays_the_checkpoint_current_at_each_step(tmp_path):
    rep = CheckpointReplay(write_manifest(tmp_path, [0, 100, 300], 400))
    picks = {x: rep.index(x) for x in (0.0, 0.2499, 0.25, 0.5, 0.7499, 0.75, 0.999, 1.0)}
    assert picks == {0.0: 0, 0.2499: 0, 0.25: 1, 0.5: 1, 0.7499: 1, 0.75: 2, 0.999: 2, 1.0: 2}
    assert rep.policy_for(7, 0.5).spec.endswith("step-100.pt@sample")
    assert rep.policy_for(8, 0.6) is rep.policy_for(7, 0.5)  # loaded once
    env = make_team_env("mpe_spread", {})
    ep = rollout(env, rep, 4, seed=0)
    assert ep.num_episodes == 4


def test_replay_manifest_errors_name_the_file(tmp_path):
    path = write_manifest(tmp_path, [100, 300], 400)
    with pytest.raises(ValueError, match="replay.json.*env step 0"):
        CheckpointReplay(path)
    path = write_manifest(tmp_path, [0, 300], 400)
    (tmp_path / "step-300.pt").unlink()
    with pytest.raises(ValueError, match="replay.json.*missing.*step-300.pt"):
        CheckpointReplay(path)
    path.write_text("{}")
    with pytest.raises(ValueError, match="replay.json.*medium_env_steps"):
        CheckpointReplay(path)


def test_non_default_task_parameters_fall_back_to_scripted_behaviour():
    assert trained_policy_dir("mpe_spread", {"n_agents": 4}) is None
    assert quality_policy("mpe_spread", "expert", {"n_agents": 4}) == "expert"
    assert reference_expert("mpe_spread", {"n_agents": 4}) == "expert"
    assert trained_policy_dir("equal_line", {}) is None
    assert trained_policy_dir("mpe_world", {"n_food": 3}) is None  # another configuration than trained on
    assert quality_policy("mpe_world", "expert", {"n_food": 3}) == "expert"


@pytest.mark.parametrize("task,cfg,name", TRAINED, ids=[t[2] if isinstance(t, tuple) else t.id for t in TRAINED])
def test_committed_ppo_policies(task, cfg, name):
    """Each MPE task variant and equal_line (n = 4) ships RLlib-PPO behaviour policies: files present,
    the sidecars record how they were trained, the recorded evaluation is reproduced exactly from the
    file, and random < medium < expert."""
    variant = "continuous" if cfg.get("continuous_actions") else "discrete"
    d = trained_policy_dir(task, cfg)
    assert d == POLICY_ROOT / name
    expert = json.loads((d / "expert.json").read_text())
    medium = json.loads((d / "medium.json").read_text())
    for meta in (expert, medium):
        assert meta["input"] == "agent_obs" and meta["task"] == task and meta["env_config"] == cfg
        assert meta["algorithm"].startswith("RLlib PPO") and meta["dist"] == ("gaussian" if variant == "continuous"
                                                                                 else "categorical")
    assert medium["env_steps"] <= expert["env_steps"]
    # each file reproduces the returns its selection recorded (same seeds, sampled; the first 5 of the
    # recorded episodes: the sampling stream of episode k does not depend on how many follow)
    for role, meta in (("medium", medium), ("expert", expert)):
        recorded = meta["eval_returns_sampled"]
        assert len(recorded) == meta["eval_episodes"] and np.mean(recorded) == meta["eval_return_sampled"]
        got = evaluate_checkpoint(d / f"{role}.pt", task, cfg, 5, 1_000_003, "sample")
        # recorded on another CPU: float32 matmuls may round differently there (seen: -28.32243689 vs
        # -28.32243605 on continuous spread), so compare at 1e-4 relative / 1e-3 absolute — far below
        # the gaps between the episodes' returns, which a wrong checkpoint or seed would change
        np.testing.assert_allclose(got, recorded[:5], rtol=1e-4, atol=1e-3, err_msg=role)
    r_random = expert["random_return"]
    assert r_random < medium["eval_return_sampled"] < expert["eval_return_sampled"]
    norm = 100 * (medium["eval_return_sampled"] - r_random) / (expert["eval_return_sampled"] - r_random)
    assert 25 <= norm <= 75, f"medium is at {norm:.0f}% of the expert"
    # the replay sequence starts at the untrained policy and ends at medium
    replay = json.loads((d / "replay.json").read_text())
    steps = [c["env_steps"] for c in replay["checkpoints"]]
    assert steps[0] <= 100 and steps[-1] == medium["env_steps"] == replay["medium_env_steps"]
    assert all((d / c["file"]).is_file() for c in replay["checkpoints"])
    # the qualities use them
    assert quality_policy(task, "expert", cfg) == reference_expert(task, cfg) == \
        f"checkpoint:offline_data/policies/{name}/expert.pt@sample"
    assert isinstance(quality_policy(task, "medium-replay", cfg), CheckpointReplay)


def test_collect_trained_medium_replay_is_seeded_and_recorded_in_the_card(tmp_path, capsys):
    """`data collect --quality medium-replay` on a task with trained policies replays the PPO run's
    policy sequence: deterministic for a seed, described in the card, references from the trained
    expert; `--behaviours scripted` still gives the scripted family."""
    from rllib_cfcql.cli.data import main as data_main
    from rllib_cfcql.data.validate import validate_dataset

    args = ["collect", "--task", "mpe_spread", "--env-config", json.dumps(CONT), "--quality", "medium-replay",
            "--episodes", "6", "--seed", "4", "--reference-episodes", "4", "--quiet"]
    assert data_main(args + ["--out", str(tmp_path / "a")]) == 0
    card = json.loads((tmp_path / "a" / "card.json").read_text())
    assert card["behaviour_policy"].startswith("medium-replay (PPO training replay up to medium): the episode "
                                               "starting at progress x is played by the PPO checkpoint")
    assert "offline_data/policies/mpe_spread_continuous/replay.json" in card["behaviour_policy"]
    validate_dataset(tmp_path / "a")
    assert data_main(args + ["--out", str(tmp_path / "b")]) == 0
    assert json.loads((tmp_path / "b" / "card.json").read_text())["content_hash"] == card["content_hash"]
    # the expert reference is the trained expert, sampled: reproduce it
    ref = rollout(make_team_env("mpe_spread", CONT), reference_expert("mpe_spread", CONT), 4,
                  seed=10_000_019).returns().mean()
    assert card["reference_returns"]["expert"] == pytest.approx(float(ref))
    assert data_main(args + ["--behaviours", "scripted", "--out", str(tmp_path / "c")]) == 0
    scripted = json.loads((tmp_path / "c" / "card.json").read_text())
    assert scripted["behaviour_policy"].startswith("medium-replay (random -> medium)")
    assert scripted["reference_returns"]["expert"] != card["reference_returns"]["expert"]
    capsys.readouterr()


def test_halfcheetah_medium_replay_replays_its_ppo_run():
    """HalfCheetah's medium.pt comes from a run whose every PPO iteration was saved: medium-replay
    replays that sequence (the centralised Gaussian sampled), ending at medium.pt itself."""
    import hashlib

    d = POLICY_ROOT / "mamujoco_halfcheetah_2x3"
    rep = quality_policy("mamujoco_halfcheetah_2x3", "medium-replay")
    assert isinstance(rep, CheckpointReplay)
    medium = json.loads((d / "medium.json").read_text())
    assert rep.total == medium["env_steps"] and rep.steps[0] == 0 and len(rep.steps) >= 10
    last = d / rep.specs[-1].removeprefix("checkpoint:offline_data/policies/mamujoco_halfcheetah_2x3/") \
        .removesuffix("@sample")
    assert hashlib.sha256(last.read_bytes()).hexdigest() == medium["sha256"]  # the sequence ends at medium.pt
    env = make_team_env("mamujoco_halfcheetah_2x3", {"episode_limit": 20})
    ep = rollout(env, rep, 2, seed=0)
    assert ep.num_transitions == 40
