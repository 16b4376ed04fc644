"""SMAX maps as team tasks (JaxMARL; skipped where the optional extra [smax] is not installed).

Each map compiles its reset once per process (a few seconds); the stepping tests use 2s3z only.
"""

from __future__ import annotations

import math
import sys

import numpy as np
import pytest

from rllib_cfcql import keys as K
from rllib_cfcql.envs import TASKS, make_team_env
from rllib_cfcql.envs.smax import EPISODE_LIMITS, SMAX_MAPS, STOP_ACTION

jaxmarl = pytest.importorskip("jaxmarl", reason='the smax_* tasks need the optional extra: pip install -e ".[smax]"')

# (allies, enemies) of each map as SMAC / SMACv2 define them
UNITS = {"2s3z": (5, 5), "3s_vs_5z": (3, 5), "5m_vs_6m": (5, 6), "6h_vs_8z": (6, 8),
         "smacv2_5_units": (5, 5), "smacv2_10_units": (10, 10), "smacv2_20_units": (20, 20)}
UNIT_FEATURES, OWN_FEATURES = 7 + 6, 4 + 6  # SMAX's unit_list features: per other unit, own


def play(env, policy, seed, rng=None):
    """One episode; returns (obs list, actions, rewards, last (term, trunc, info))."""
    rng = rng or np.random.default_rng(seed)
    obs, info = env.reset(seed=seed)
    seen, acts, rews = [obs], [], []
    while True:
        mask = obs[K.ACTION_MASK]
        a = env.expert_action() if policy == "heuristic" else np.argmax(rng.random(mask.shape) * mask, -1)
        acts.append(a)
        obs, r, term, trunc, info = env.step(a)
        seen.append(obs)
        rews.append(r)
        if term or trunc:
            return seen, acts, rews, (term, trunc, info)


@pytest.fixture(scope="module")
def env():
    return make_team_env("smax_2s3z")


@pytest.mark.parametrize("map_name", SMAX_MAPS)
def test_sizes_and_masks_match_the_map(map_name):
    assert f"smax_{map_name}" in TASKS
    e = make_team_env(f"smax_{map_name}")
    n, m = UNITS[map_name]
    spec = e.team_spec
    assert (spec.n_agents, spec.n_actions) == (n, 5 + m)
    assert spec.obs_dim == UNIT_FEATURES * (n - 1 + m) + OWN_FEATURES
    assert spec.state_dim == (OWN_FEATURES + 2) * (n + m)
    assert spec.episode_limit == EPISODE_LIMITS[map_name]
    obs, info = e.reset(seed=0)
    assert obs[K.OBS].shape == (n, spec.obs_dim) and obs[K.STATE].shape == (spec.state_dim,)
    assert e.observation_space.contains(obs)
    mask = obs[K.ACTION_MASK]
    # at the start everyone is alive: all four moves and stop, no enemy in range on the paper's maps
    assert (mask[:, :5] == 1).all()
    if not map_name.startswith("smacv2"):
        assert (mask[:, 5:] == 0).all()
    assert info == {"battle_won": False}


def test_unknown_config_and_illegal_action_are_refused(env):
    with pytest.raises(ValueError, match="unknown env_config keys.*episode_limit"):
        make_team_env("smax_2s3z", {"n_agents": 3})
    obs, _ = env.reset(seed=0)
    a = np.full(5, STOP_ACTION)
    a[2] = 5  # attack enemy 0: out of range at the start
    with pytest.raises(ValueError, match=r"agent 2 took action 5.*unavailable"):
        env.step(a)


def test_missing_jaxmarl_says_what_to_install(monkeypatch):
    from rllib_cfcql.envs import smax

    monkeypatch.setattr(smax, "_COMPILED", {})
    monkeypatch.setitem(sys.modules, "jaxmarl.environments.smax", None)
    with pytest.raises(ImportError, match=r'pip install -e "\.\[smax\]"'):
        make_team_env("smax_3s_vs_5z")


def test_recorded_actions_are_legal_dead_agents_only_stop(tmp_path):
    from rllib_cfcql.data.collect import collect
    from rllib_cfcql.data.validate import validate_dataset

    card = collect(task="smax_2s3z", env_config={}, policy="eps_expert:0.3", episodes=6, seed=0, out_dir=tmp_path,
                   reference_episodes=2, progress=False, force=True)
    assert card["spec"]["episode_limit"] == 120
    _, ep = validate_dataset(tmp_path)  # the validator itself refuses an action its mask forbids
    filled = ep.filled > 0  # [E, T]
    mask = ep.action_mask[:, :-1]  # the mask each action was taken under, [E, T, n, A]
    taken = np.take_along_axis(mask, ep.actions[..., None], -1)[..., 0]
    assert (taken[filled] == 1).all()
    dead = (mask.sum(-1) == 1) & (mask[..., STOP_ACTION] == 1) & filled[..., None]
    assert dead.any(), "some agent should die in six 2s3z battles"
    assert (ep.actions[dead] == STOP_ACTION).all()
    # the card's win rate is the share of won battles: all enemy health (1) plus the bonus (1) > 1.5
    assert card["win_rate"] == pytest.approx(float(np.mean(ep.returns() > 1.5)), abs=1e-4)


def test_episode_ends_terminated_xor_truncated_truncation_at_the_limit():
    short = make_team_env("smax_2s3z", {"episode_limit": 4})
    obs, _ = short.reset(seed=3)
    for t in range(4):
        obs, r, term, trunc, info = short.step(np.full(5, STOP_ACTION))
        assert not term
        assert trunc == (t == 3)
    e = make_team_env("smax_2s3z")
    for seed in range(3):
        _, acts, _, (term, trunc, info) = play(e, "heuristic", seed)
        assert term != trunc
        assert trunc == (len(acts) == EPISODE_LIMITS["2s3z"])


def test_a_won_battle_is_flagged_and_paid(env):
    for seed in range(12):
        _, _, rews, (term, trunc, info) = play(env, "heuristic", seed)
        if info["battle_won"]:
            break
    else:
        pytest.fail("the heuristic won none of 12 battles on 2s3z (it wins about half)")
    assert term and not trunc
    assert not env._enemies_alive.any() and env._allies_alive.any()
    assert rews[-1] >= 1.0  # SMAX's won-battle bonus
    assert 1.0 < sum(rews) <= 2.0 + 1e-5  # all enemy health (1) plus the bonus (1), at most


def test_same_seed_same_trajectory(env):
    a = play(env, "heuristic", 7)
    b = play(env, "heuristic", 7)
    assert len(a[1]) == len(b[1])
    for x, y in zip(a[1], b[1]):
        np.testing.assert_array_equal(x, y)
    np.testing.assert_array_equal(a[0][-1][K.STATE], b[0][-1][K.STATE])
    c = play(env, "heuristic", 8)
    assert len(c[1]) != len(a[1]) or not np.array_equal(c[0][-1][K.STATE], a[0][-1][K.STATE])


def test_heuristic_beats_uniform_random_on_2s3z(env):
    runs = {p: [play(env, p, s) for s in range(8)] for p in ("heuristic", "random")}
    wins = {p: np.mean([r[3][2]["battle_won"] for r in v]) for p, v in runs.items()}
    rets = {p: np.mean([sum(r[2]) for r in v]) for p, v in runs.items()}
    assert wins["heuristic"] >= 0.25 and wins["random"] == 0.0
    assert rets["heuristic"] > rets["random"] + 0.5


def test_evaluation_reports_the_win_rate(ray_session, tmp_path):
    from rllib_cfcql import CFCQLConfig
    from rllib_cfcql.data.collect import collect

    collect(task="smax_2s3z", env_config={}, policy="eps_expert:0.2", episodes=4, seed=1, out_dir=tmp_path,
            reference_episodes=2, progress=False, force=True)
    cfg = (CFCQLConfig().environment("smax_2s3z").offline_data(input_=[str(tmp_path)])
           .training(cql_alpha=1.0, num_gradient_steps_per_iteration=2, train_batch_size_per_learner=16,
                     bc_pretrain_steps=10, agent_rnn=False, obs_last_action=False, batch_unit="transitions")
           .evaluation(evaluation_interval=1, evaluation_duration=2, evaluation_num_env_runners=1).debugging(seed=0))
    algo = cfg.build_algo()
    try:
        ev = algo.train()["evaluation"]["env_runners"]
        assert ev["num_episodes"] >= 2 and math.isfinite(ev["episode_return_mean"])
        assert 0.0 <= ev[K.WIN_RATE] <= 1.0
    finally:
        algo.stop()


def test_smacv2_refuses_naming_what_is_missing(tmp_path, monkeypatch):
    from rllib_cfcql.envs.smacv2 import find_smac

    monkeypatch.setenv("SC2PATH", str(tmp_path))
    with pytest.raises(RuntimeError, match=r"SC2_x64.*SMAC_Maps.*smacv2"):
        make_team_env("smacv2", {"map_name": "2s3z"})
    (tmp_path / "Versions" / "Base75689").mkdir(parents=True)
    (tmp_path / "Versions" / "Base75689" / "SC2_x64").write_text("")
    (tmp_path / "Maps" / "SMAC_Maps").mkdir(parents=True)
    cls, missing = find_smac()
    if cls is None:  # no SMAC package here: only that is missing now
        assert len(missing) == 1 and "smacv2" in missing[0]
    with pytest.raises(ValueError, match="map_name"):
        make_team_env("smacv2", {})


# ----------------------------------------------------------------------------- the batched version


def random_legal(rng, mask):
    return np.argmax(rng.random(mask.shape) * mask, -1)


def test_batch_sizes_truncation_and_restart_of_flagged_envs():
    from rllib_cfcql.envs import make_team_batch

    b = make_team_batch("smax_2s3z", {"episode_limit": 4}, 3)
    spec = b.team_spec
    assert (spec.n_agents, spec.n_actions, spec.episode_limit) == (5, 10, 4)
    obs = b.reset(seed=0)
    assert obs[K.OBS].shape == (3, 5, spec.obs_dim) and obs[K.STATE].shape == (3, spec.state_dim)
    assert obs[K.ACTION_MASK].shape == (3, 5, 10)
    assert (obs[K.ACTION_MASK][..., :5] == 1).all() and (obs[K.ACTION_MASK][..., 5:] == 0).all()
    stop = np.full((3, 5), STOP_ACTION)
    for t in range(4):
        nxt, r, term, trunc, won = b.step(stop)
        assert not term.any() and not won.any()
        assert (trunc == (t == 3)).all()  # cut exactly at the limit, in every env
    # flagged envs start over: their actions are ignored (even an illegal one), reward 0, not ended
    bad = stop.copy()
    bad[0, 1] = 9
    fresh = np.array([True, True, False])
    start, r, term, trunc, won = b.step(bad, fresh)
    assert r[0] == 0.0 and r[1] == 0.0 and not term[:2].any() and not trunc[:2].any()
    assert list(b.t) == [0, 0, 5]
    assert trunc[2]  # the unflagged env stepped on past its limit (flagging it is the caller's job)
    assert not np.array_equal(start[K.STATE][0], nxt[K.STATE][0])  # a new battle, not the old one
    assert (start[K.ACTION_MASK][:2, :, :5] == 1).all()


def test_batch_same_seed_same_trajectory_and_episode_ends():
    from rllib_cfcql.envs import make_team_batch

    def run(seed, steps=150):
        b = make_team_batch("smax_2s3z", {}, 3)
        obs, rng, fresh = b.reset(seed=seed), np.random.default_rng(0), np.zeros(3, bool)
        states, ret, ends = [], np.zeros(3), []
        for _ in range(steps):
            obs, r, term, trunc, won = b.step(random_legal(rng, obs[K.ACTION_MASK]), fresh)
            ret += r
            states.append(obs[K.STATE])
            for i in np.flatnonzero(term | trunc):
                ends.append((bool(term[i]), bool(trunc[i]), bool(won[i]), float(ret[i])))
                ret[i] = 0.0
            fresh = term | trunc
        return np.stack(states), ends

    a, ends = run(3)
    b, _ = run(3)
    np.testing.assert_array_equal(a, b)
    c, _ = run(4)
    assert not np.array_equal(a, c)
    assert ends, "uniform random play should end some 2s3z battles within 150 steps"
    for term, trunc, won, ret in ends:
        assert term != trunc
        assert not won or term
        assert 0.0 <= ret <= 2.0 + 1e-5


def test_batch_refuses_bad_input():
    from rllib_cfcql.envs import make_team_batch

    b = make_team_batch("smax_2s3z", {}, 3)
    with pytest.raises(RuntimeError, match=r"step\(\) before reset\(\)"):
        b.step(np.full((3, 5), STOP_ACTION))
    b.reset(seed=0)
    a = np.full((3, 5), STOP_ACTION)
    a[1, 3] = 5  # attack enemy 0: out of range at the start
    with pytest.raises(ValueError, match=r"env 1, agent 3 took action 5.*unavailable \(available: \[0, 1, 2, 3, 4\]\)"):
        b.step(a)
    with pytest.raises(ValueError, match=r"shape \(3, 5\), got \(5,\)"):
        b.step(np.full(5, STOP_ACTION))
    a[1, 3] = 10
    with pytest.raises(ValueError, match=r"env 1, agent 3 took action 10; expected an integer in \[0, 10\)"):
        b.step(a)
    with pytest.raises(ValueError, match="num_envs must be >= 1"):
        make_team_batch("smax_2s3z", {}, 0)
    with pytest.raises(ValueError, match="unknown env_config keys"):
        make_team_batch("smax_2s3z", {"n_agents": 3}, 2)
    with pytest.raises(ValueError, match=r"'mpe_spread' has no batched version.*smax_2s3z"):
        make_team_batch("mpe_spread", {}, 2)
