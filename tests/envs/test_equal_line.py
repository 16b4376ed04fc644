"""Equal_Line's episode limit is a true terminal by default (as in the reference, which returns
done at the limit), and the `hesitant:<q>` behaviour's per-step frequencies match their closed form."""

from __future__ import annotations

import numpy as np
import pytest

from rllib_cfcql.behaviour_policies.specs import BehaviourPolicy
from rllib_cfcql.data.collect import rollout
from rllib_cfcql.envs import make_team_env
from rllib_cfcql.envs.equal_line import MOVES


@pytest.mark.parametrize("mode", ["terminal", "truncate"])
def test_the_limit_is_terminal_or_a_cut(mode):
    env = make_team_env("equal_line", {"n_agents": 3, "episode_limit": 4, "time_limit": mode})
    env.reset(seed=0)
    flags = [env.step(np.zeros(3, dtype=np.int64))[2:4] for _ in range(4)]
    assert flags[:3] == [(False, False)] * 3
    assert flags[3] == ((True, False) if mode == "terminal" else (False, True))


def test_terminal_data_carries_no_bootstrap_and_a_bad_mode_is_named():
    env = make_team_env("equal_line", {"n_agents": 3, "episode_limit": 6})
    ep = rollout(env, BehaviourPolicy("expert"), 3, seed=0)
    last = ep.filled.sum(1).astype(int) - 1
    assert (ep.terminated[np.arange(3), last] == 1).all() and ep.terminated.sum() == 3
    with pytest.raises(ValueError, match=r"time_limit must be 'terminal' or 'truncate', got 'stop'"):
        make_team_env("equal_line", {"n_agents": 3, "time_limit": "stop"})


def test_hesitant_moves_with_probability_q_and_needs_a_hold_action():
    n, q, eps = 6, 0.3, 0.1
    env = make_team_env("equal_line", {"n_agents": n, "episode_limit": 3})
    ep = rollout(env, BehaviourPolicy(f"hesitant:{q}"), 400, seed=3)
    first = ep.actions[:, 0, 2:]  # step 0, agents whose slot lies beyond 2: the expert move is +1
    plus1, hold = int(np.flatnonzero(MOVES == 1)[0]), int(np.flatnonzero(MOVES == 0)[0])
    n_draws = first.size
    for action, p in ((plus1, (1 - eps) * q + eps / len(MOVES)), (hold, (1 - eps) * (1 - q) + eps / len(MOVES))):
        f = (first == action).mean()
        assert abs(f - p) < 4 * np.sqrt(p * (1 - p) / n_draws), (action, f, p)
    with pytest.raises(ValueError, match=r"no hold action \(hesitant:<q> is for equal_line and mpe_spread\)"):
        rollout(make_team_env("mpe_tag", {}), BehaviourPolicy("hesitant:0.5"), 1, seed=0)


@pytest.mark.parametrize("continuous", [False, True])
def test_hesitant_on_mpe_spread_holds_with_probability_1_minus_q(continuous):
    """MPE spread's hold is no force: discrete no-op 0, continuous u = 0 (plus the N(0, 0.1²) noise)."""
    n, q, eps = 3, 0.25, 0.1
    env = make_team_env("mpe_spread", {"n_agents": n, "continuous_actions": continuous, "max_cycles": 10})
    ep = rollout(env, BehaviourPolicy(f"hesitant:{q}"), 60, seed=4)
    acts = ep.actions[ep.filled > 0]  # [steps, n] or [steps, n, 2]
    if continuous:
        # a hold is |u| < 0.4 per dimension (4σ of the noise); a uniform random action lands there with p 0.16;
        # an expert steer starts at full force and fades only near the landmark, so it is counted apart
        expert = np.abs(rollout(env, BehaviourPolicy("eps_expert:0.0"), 60, seed=4).actions).max(-1)
        p_hold = (1 - eps) * (1 - q) + eps * 0.16
        share = (np.abs(acts).max(-1) < 0.4).mean()
        assert p_hold - 0.05 < share < p_hold + (1 - eps) * q * (expert < 0.4).mean() + 0.05, share
    else:
        share = (acts == 0).mean()  # the expert's own no-op (at its landmark) adds to the holds
        assert share > (1 - eps) * (1 - q) + eps / 5 - 4 * np.sqrt(0.2 / acts.size), share


def test_slot_distance_reward_is_each_agents_distance_to_its_slot():
    n = 5
    env = make_team_env("equal_line", {"n_agents": n, "reward": "slot_distance", "episode_limit": 3})
    env.reset(seed=1)
    L = env.line_length
    slots = np.arange(n) * L / (n - 1)
    start = env.pos.copy()
    a = np.zeros(n, dtype=np.int64)
    a[3] = int(np.flatnonzero(MOVES == 1)[0])  # only agent 3 moves, +1 toward its slot
    _, r, *_ = env.step(a)
    after = start.copy()
    after[3] += 1.0
    assert r == pytest.approx(-10.0 / n * np.abs(after - slots).sum() / L, rel=1e-12)
    _, r_hold, *_ = env.step(np.zeros(n, dtype=np.int64))
    assert r_hold == pytest.approx(r)  # holding repeats the step's cost: each agent's term depends on it alone
    # the scripted expert is better than holding by exactly its own agents' progress
    env.reset(seed=1)
    _, r_exp, *_ = env.step(env.expert_action())
    assert r_exp > r
    with pytest.raises(ValueError, match=r"reward must be one of \['min_spacing', 'slot_distance'\], got 'sum'"):
        make_team_env("equal_line", {"n_agents": 3, "reward": "sum"})
