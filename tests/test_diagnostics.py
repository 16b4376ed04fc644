"""Diagnostics (rllib_cfcql.diagnostics): closed forms of the Monte-Carlo returns and the tail weights,
the learner's per-iteration values equal direct computations, and the conservative penalty puts the
learned value below the data's return where offline QMIX sits above it."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from rllib_cfcql import diagnostics as D
from rllib_cfcql import keys as K
from rllib_cfcql.data.validate import validate_dataset
from tests.discrete.test_learner import ENV_CFG, make_learner


def test_mc_returns_and_tail_weights_closed_form():
    g = 0.9
    reward = torch.tensor([[1.0, 2.0, 3.0, 0.0], [5.0, 0.0, 0.0, 0.0]])
    filled = torch.tensor([[1.0, 1.0, 1.0, 0.0], [1.0, 0.0, 0.0, 0.0]])
    G = D.mc_returns(reward, filled, g)
    torch.testing.assert_close(G, torch.tensor([[1 + g * 2 + g * g * 3, 2 + g * 3, 3.0, 0.0], [5.0, 0.0, 0.0, 0.0]]))
    terminated = torch.tensor([[0.0, 0.0, 0.0, 0.0], [1.0, 0.0, 0.0, 0.0]])  # episode 0 cut by a time limit
    w = D.tail_weights(filled, terminated, g)
    torch.testing.assert_close(w, torch.tensor([[g**3, g**2, g, 0.0], [0.0, 0.0, 0.0, 0.0]]))


@pytest.fixture(scope="module")
def data(tiny_dataset):
    d = tiny_dataset(env_config=ENV_CFG, episodes=16, seed=3)
    return d, validate_dataset(d)[1]


def test_learner_diagnostics_equal_direct_computations(data):
    d, ep = data
    cfg, learner, module = make_learner(d, ep, agent_rnn=True, diagnostics_episodes=5)
    out = learner.diagnostics()
    sel = ep.select(np.arange(5))
    # MC return from numpy, step by step
    mc = []
    for e in range(5):
        L = int(sel.filled[e].sum())
        ret = 0.0
        vals = []
        for t in reversed(range(L)):
            ret = sel.reward[e, t] + cfg.gamma * ret
            vals.append(ret)
        mc += vals
    assert out[K.DIAG_MC_RETURN].item() == pytest.approx(np.mean(mc), rel=1e-5)
    # Q_tot at the data actions from the module's own training forward pass
    batch = learner.store.episodes(torch.arange(5))
    with torch.no_grad():
        fwd = module.forward_train(batch)
    q_tot = fwd[K.Q_TOT_TAKEN]
    f = batch[K.FILLED]
    assert out[K.DIAG_Q_DATA].item() == pytest.approx(((q_tot * f).sum() / f.sum()).item(), rel=1e-5, abs=1e-6)
    assert out[K.DIAG_Q_MINUS_MC].item() == pytest.approx(out[K.DIAG_Q_DATA].item() - np.mean(mc), abs=1e-4)
    assert 0 <= out[K.DIAG_GREEDY_IN_DATA].item() <= out[K.DIAG_AGENT_AGREEMENT].item() <= 1
    assert 0 <= out[K.DIAG_BETA_SUPPORT].item() <= 1 and 0 < out[K.DIAG_BETA_PROB].item() <= 1
    # equal_line episodes end by a time limit here: the tail weight says how much value MC cannot see
    trunc = [e for e in range(5) if not sel.terminated[e].any()]
    assert (out[K.DIAG_TAIL_WEIGHT].item() > 0) == bool(trunc)
    # logged by train_steps every call
    result = learner.train_steps(2)
    assert K.DIAG_Q_MINUS_MC in result["default_policy"] and K.PENALTY_TO_TD in result["default_policy"]


def test_penalty_keeps_the_greedy_policy_on_the_data(data):
    """Same data, same 300 steps: with the counterfactual penalty (α = 20) the greedy per-agent actions
    agree with the logged ones far more often than offline QMIX's (no penalty), and the value of the
    greedy joint action exceeds the value of the logged one by less. (The penalty is shift-invariant —
    LSE_j Q − Q(a^D) does not change when Q moves as a whole — so it bounds values relative to
    out-of-data actions, not Q(s, a^D) against the Monte-Carlo return; see diag_q_minus_mc.)"""
    d, ep = data
    out = {}
    for penalty in ("cf", "none"):
        _, learner, _ = make_learner(d, ep, agent_rnn=False, obs_last_action=False, batch_unit="transitions",
                                     train_batch_size_per_learner=64, penalty=penalty, cql_alpha=20.0,
                                     cf_tau=0.0, diagnostics_episodes=16)
        learner.train_steps(300)
        out[penalty] = {k: v.item() for k, v in learner.diagnostics().items()}
    agree = {k: v[K.DIAG_AGENT_AGREEMENT] for k, v in out.items()}
    ood = {k: v[K.DIAG_Q_GREEDY] - v[K.DIAG_Q_DATA] for k, v in out.items()}
    assert agree["cf"] > agree["none"] + 0.1, agree
    assert ood["cf"] < ood["none"], ood
