"""Dataset qualities (random | medium | medium-replay | expert | mixed): the scripted
mapping per task (``source="scripted"``; the MPE tasks' trained mapping is tested in
test_trained_behaviour.py), behaviour schedules in the writer, and `data collect --quality`."""

from __future__ import annotations

import itertools
import json

import numpy as np
import pytest

from rllib_cfcql.behaviour_policies.qualities import (
    MEDIUM_SPECS,
    QUALITIES,
    AlternatingBehaviour,
    RandomToBehaviour,
    make_policy,
    quality_policy,
)
from rllib_cfcql.cli.data import main as data_main
from rllib_cfcql.data.collect import collect, rollout
from rllib_cfcql.data.validate import validate_dataset
from rllib_cfcql.envs import TASKS, make_team_env

CONT = {"continuous_actions": True}
VARIANTS = [
    ("equal_line", {}),
    ("mpe_spread", {}),
    ("mpe_spread", CONT),
    ("mpe_tag", {}),
    ("mpe_tag", CONT),
    ("mpe_world", {}),
    ("mpe_world", CONT),
]


def test_every_scripted_task_variant_has_a_medium_spec():
    scripted = {(t, "continuous" if c else "discrete") for t, c in VARIANTS}
    assert scripted | {("mamujoco_halfcheetah_2x3", "continuous")} == set(MEDIUM_SPECS)  # + the trained one
    for task, _ in MEDIUM_SPECS:
        assert task in TASKS


def test_mapping():
    S = "scripted"
    assert quality_policy("mpe_tag", "random", source=S) == "random"
    assert quality_policy("mpe_tag", "expert", source=S) == "expert"
    assert quality_policy("mpe_spread", "medium", CONT, S) == MEDIUM_SPECS[("mpe_spread", "continuous")]
    assert quality_policy("mpe_spread", "medium", {}, S) == MEDIUM_SPECS[("mpe_spread", "discrete")]
    # auto: scripted where no trained policy fits the task (here: 4 agents)
    assert quality_policy("mpe_spread", "medium", {"n_agents": 4}) == MEDIUM_SPECS[("mpe_spread", "discrete")]
    mixed = quality_policy("mpe_spread", "mixed", CONT, S)
    assert isinstance(mixed, AlternatingBehaviour)
    medium = MEDIUM_SPECS[("mpe_spread", "continuous")]
    assert [mixed.policy_for(k, k / 6).spec for k in range(6)] == [medium, "expert"] * 3
    replay = quality_policy("mpe_spread", "medium-replay", CONT, S)
    assert isinstance(replay, RandomToBehaviour)
    # from uniform random (eps 1) to the medium spec itself (random_mix:0.5:medium_expert:0)
    assert replay.policy_for(0, 0.0).spec == "random_mix:1:medium_expert:0"
    assert replay.policy_for(9, 1.0).spec == medium
    eps = [replay.policy_for(k, k / 10).eps for k in range(10)]
    assert eps[0] == 1.0 and all(a > b for a, b in itertools.pairwise(eps)) and eps[-1] > 0.5
    # a plain medium spec (eps 0) decays to eps 0
    assert quality_policy("mpe_tag", "medium-replay", source=S).policy_for(1, 1.0).spec == "random_mix:0:medium_expert:0"


def test_unknown_task_or_quality_is_named():
    with pytest.raises(ValueError, match=r"quality 'medium' of task 'mamujoco'.*trained policies"):
        quality_policy("mamujoco", "medium", {"scenario": "Hopper", "agent_conf": "3x1"})
    assert quality_policy("mamujoco_halfcheetah_2x3", "medium") == "medium_expert:0"
    with pytest.raises(ValueError, match=r"quality 'expert' of task 'equal_line' \(continuous actions\)"):
        quality_policy("equal_line", "expert", CONT)
    with pytest.raises(ValueError, match=r"unknown quality 'medium_replay'; expected one of \['random', 'medium', "
                                         r"'medium-replay', 'expert', 'mixed'\]"):
        quality_policy("mpe_tag", "medium_replay")
    with pytest.raises(ValueError, match=r"behaviour source 'best': expected one of \['auto', 'trained', 'scripted'\]"):
        quality_policy("mpe_tag", "medium", source="best")
    with pytest.raises(ValueError, match=r"task 'equal_line' \(discrete actions.*no trained behaviour policies.*"
                                         r"offline_data/policies/equal_line_discrete"):
        quality_policy("equal_line", "medium", source="trained")


@pytest.mark.parametrize(
    "spec,match",
    [
        ("random_mix:0.5", r"expected random_mix:<eps in \[0,1\]>:<base policy spec>"),
        ("random_mix:x:expert", r"expected random_mix:<eps"),
        ("random_mix:1.5:expert", r"eps must be in \[0, 1\], got 1.5"),
        ("random_mix:0.5:nope", r"unknown behaviour policy 'nope'"),
        ("greedy", r"unknown behaviour policy 'greedy'"),
    ],
)
def test_bad_policy_specs(spec, match):
    with pytest.raises(ValueError, match=match):
        make_policy(spec)


def test_random_mix_extremes_match_random_and_base():
    env = make_team_env("mpe_spread", CONT)
    base = rollout(env, "medium_expert:0", 3, seed=5)
    mix0 = rollout(env, "random_mix:0:medium_expert:0", 3, seed=5)
    # eps 0: the base policy's action (the mix then draws its own extra numbers, so only the
    # very first step sees the same random stream)
    np.testing.assert_array_equal(mix0.actions[0, 0], base.actions[0, 0])
    assert not np.array_equal(mix0.actions[0, 1], base.actions[0, 1])
    mix1 = rollout(env, "random_mix:1:expert", 20, seed=5)
    acts = mix1.actions[mix1.filled > 0]
    assert abs(acts.mean()) < 0.05 and acts.std() == pytest.approx(1 / np.sqrt(3), abs=0.03)  # uniform on [-1, 1]
    env_d = make_team_env("equal_line", {"n_agents": 3, "episode_limit": 5, "boundary_mask": True})
    ep = rollout(env_d, "random_mix:1:expert", 20, seed=0)
    valid = ep.filled > 0
    taken = np.take_along_axis(ep.action_mask[:, :-1][valid], ep.actions[valid][..., None], -1)
    assert (taken == 1).all()  # random moves respect the action mask


@pytest.mark.parametrize("task,config", VARIANTS)
def test_every_quality_collects_for_every_scripted_task(task, config):
    env = make_team_env(task, config)
    for q in QUALITIES:
        ep = rollout(env, quality_policy(task, q, config, "scripted"), 2, seed=0)
        assert ep.num_episodes == 2


def test_qualities_are_ordered_on_mpe_spread_continuous():
    env = make_team_env("mpe_spread", CONT)
    ret = {q: rollout(env, quality_policy("mpe_spread", q, CONT, "scripted"), 24, seed=50).returns().mean()
           for q in ("random", "medium-replay", "medium", "mixed", "expert")}
    assert ret["random"] < ret["medium"] < ret["expert"], ret
    assert ret["medium"] < ret["mixed"] < ret["expert"], ret
    assert ret["random"] < ret["medium-replay"] < ret["medium"], ret
    score = (ret["medium"] - ret["random"]) / (ret["expert"] - ret["random"])
    assert 0.3 < score < 0.7, ret


def test_medium_replay_moves_from_random_to_medium():
    env = make_team_env("mpe_spread", CONT)
    n = 40
    rep = rollout(env, quality_policy("mpe_spread", "medium-replay", CONT, "scripted"), n, seed=3).returns()
    q1, q4 = rep[: n // 4].mean(), rep[-n // 4:].mean()
    rand = rollout(env, "random", n // 4, seed=3).returns().mean()
    medium = rollout(env, quality_policy("mpe_spread", "medium", CONT, "scripted"), n // 4, seed=3 + 3 * n // 4).returns().mean()
    assert q1 < q4, (q1, q4)
    assert abs(q1 - rand) < abs(q1 - medium) and abs(q4 - medium) < abs(q4 - rand), (q1, q4, rand, medium)


def _card(d):
    return json.loads((d / "card.json").read_text())


def test_collect_by_quality_writes_the_quality_and_behaviour(tmp_path, capsys):
    args = ["collect", "--task", "mpe_spread", "--env-config", json.dumps(CONT), "--quality", "medium-replay",
            "--episodes", "4", "--seed", "3", "--reference-episodes", "3", "--quiet", "--behaviours", "scripted"]
    assert data_main(args + ["--out", str(tmp_path / "a")]) == 0
    assert "quality medium-replay: medium-replay (random -> medium)" in capsys.readouterr().out
    card = _card(tmp_path / "a")
    assert card["quality"] == "medium-replay" and card["episodes"] == 4
    assert card["behaviour_policy"].startswith("medium-replay (random -> medium): episode played by "
                                               "random_mix:<eps>:medium_expert:0 with eps = 1 - 0.5 * progress")
    assert card["collection_target"] == {"episodes": 4}
    validate_dataset(tmp_path / "a")
    # deterministic for a seed: the same content twice
    assert data_main(args + ["--out", str(tmp_path / "b")]) == 0
    assert _card(tmp_path / "b")["content_hash"] == card["content_hash"]
    # --policy overrides the quality (which stays the card's label)
    assert data_main(args + ["--policy", "expert", "--out", str(tmp_path / "c")]) == 0
    c = _card(tmp_path / "c")
    assert c["quality"] == "medium-replay" and c["behaviour_policy"] == "expert"
    assert c["content_hash"] != card["content_hash"]


def test_collect_steps_and_mixed(tmp_path):
    card = collect(task="mpe_tag", env_config={}, quality="mixed", steps=60, seed=1, out_dir=tmp_path / "m",
                   reference_episodes=2, progress=False, source="scripted")
    # whole 25-step episodes until at least 60 transitions
    assert card["episodes"] == 3 and card["transitions"] == 75 and card["collection_target"] == {"steps": 60}
    assert card["behaviour_policy"] == ("mixed (half medium, half expert): episode k played by "
                                        "[medium_expert:0, expert][k mod 2]")
    _, ep = validate_dataset(tmp_path / "m")
    assert ep.num_transitions == 75
    again = collect(task="mpe_tag", env_config={}, quality="mixed", steps=60, seed=1, out_dir=tmp_path / "n",
                    reference_episodes=2, progress=False, source="scripted")
    assert again["content_hash"] == card["content_hash"]


def test_collect_errors(tmp_path, capsys):
    base = ["collect", "--task", "equal_line", "--quiet", "--out", str(tmp_path / "x")]
    assert data_main(base + ["--quality", "great", "--episodes", "2"]) == 2
    assert "quality 'great' does not choose one" in capsys.readouterr().err
    with pytest.raises(SystemExit):  # argparse: --episodes and --steps are exclusive
        data_main(base + ["--quality", "random", "--episodes", "2", "--steps", "10"])
    assert "not allowed with argument" in capsys.readouterr().err
    assert data_main(base + ["--quality", "expert", "--env-config", json.dumps(CONT), "--episodes", "2"]) == 2
    assert "unknown env_config keys ['continuous_actions']" in capsys.readouterr().err
    with pytest.raises(ValueError, match=r"give exactly one of episodes and steps"):
        collect(task="equal_line", env_config={}, quality="random", seed=0, out_dir=tmp_path / "y")
    with pytest.raises(ValueError, match=r"min_steps must be >= 1, got 0"):
        rollout(make_team_env("equal_line", {}), "random", None, seed=0, min_steps=0)
