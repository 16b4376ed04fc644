"""Component tier: one RLModule / one Learner, no Ray cluster.

Which parameters get gradients from which loss term, that an update moves the
online networks and not the targets or β, target copies every N gradient steps,
masks respected in acting, and BC mode.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from rllib_cfcql import CFCQLConfig
from rllib_cfcql import keys as K
from rllib_cfcql.data.store import EpisodeStore
from rllib_cfcql.data.validate import validate_dataset
from rllib_cfcql.discrete.loss import cfcql_loss

ENV_CFG = {"n_agents": 3, "episode_limit": 10, "boundary_mask": True}


@pytest.fixture(scope="module")
def data(tiny_dataset):
    d = tiny_dataset(env_config=ENV_CFG, episodes=16, seed=3)
    card, ep = validate_dataset(d)
    return d, ep


def make_learner(d, ep, **training):
    training.setdefault("bc_pretrain_steps", 20)
    training.setdefault("train_batch_size_per_learner", 8)
    cfg = (CFCQLConfig().environment("equal_line", env_config=ENV_CFG).offline_data(input_=[str(d)])
           .training(**training).debugging(seed=0))
    cfg.validate()
    learner = cfg.build_learner(env=None)
    if cfg.uses_behaviour_model:
        from rllib_cfcql.core.pretrain import pretrain_behaviour

        module = learner.module["default_policy"].unwrapped()
        state, _ = pretrain_behaviour(ep, model_cfg=cfg.model_config, n_actions=module.n_actions,
                                      steps=cfg.bc_pretrain_steps, batch_size=4, lr=1e-3, seed=0, progress=False)
        learner.set_behaviour_state(state)
    learner.set_dataset(ep, 1, 0)
    return cfg, learner, learner.module["default_policy"].unwrapped()


def _snapshot(m):
    return {k: v.detach().clone() for k, v in m.state_dict().items()}


def _moved(before, after, prefix):
    keys = [k for k in before if k.startswith(prefix + ".")]
    assert keys, prefix
    return any(not torch.equal(before[k], after[k]) for k in keys)


@pytest.mark.parametrize("rnn", [True, False])
def test_one_update_moves_online_not_targets_or_beta(data, rnn):
    d, ep = data
    cfg, learner, m = make_learner(d, ep, agent_rnn=rnn, cql_alpha=1.0, target_update_interval=1000)
    before = _snapshot(m)
    res = learner.train_steps(1)
    after = _snapshot(m)
    assert _moved(before, after, "agent") and _moved(before, after, "mixer")
    for frozen in ("target_agent", "target_mixer", "behaviour"):
        assert not _moved(before, after, frozen), frozen
    assert np.isfinite(res["default_policy"][K.TD_LOSS].peek())
    assert learner.num_grad_steps == 1


def test_targets_are_hard_copied_every_n_gradient_steps(data):
    d, ep = data
    cfg, learner, m = make_learner(d, ep, target_update_interval=3, cf_tau=0.0)
    learner.train_steps(2)
    assert not torch.equal(m.agent.fc1.weight, m.target_agent.fc1.weight)
    learner.train_steps(1)  # 3rd gradient step: copy, counted in gradient steps not update() calls
    assert torch.equal(m.agent.fc1.weight, m.target_agent.fc1.weight)
    assert learner.num_target_updates == 1
    learner.train_steps(4)
    assert learner.num_target_updates == 2 and learner.num_grad_steps == 7


@pytest.mark.parametrize("penalty", ["cf", "joint"])
def test_gradient_isolation_per_term(data, penalty):
    d, ep = data
    cfg, learner, m = make_learner(d, ep, penalty=penalty, cql_alpha=1.0)
    batch = learner.store.sample(4)
    for term in ("td", "penalty"):
        m.zero_grad(set_to_none=True)
        fwd = m.forward_train(batch)
        terms = cfcql_loss(cfg, batch, fwd)
        getattr(terms, term).backward()
        for name, p in m.named_parameters():
            top = name.split(".")[0]
            if top in ("target_agent", "target_mixer", "behaviour"):
                assert p.grad is None, f"{term} gave a gradient to {name}"
        assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in m.agent.parameters()), term
        assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in m.mixer.parameters()), term
    # λ is detached: the penalty's gradient equals the one with λ held as a constant
    assert not m.behaviour.fc1.weight.requires_grad and not m.target_agent.fc1.weight.requires_grad


def test_bc_mode_trains_only_the_agent_and_fits_the_data(data):
    d, ep = data
    cfg, learner, m = make_learner(d, ep, mode="bc", agent_rnn=False, obs_last_action=False,
                                   batch_unit="transitions", train_batch_size_per_learner=64, lr=3e-3)
    before = _snapshot(m)
    first = learner.train_steps(1)["default_policy"][K.BC_LOSS].peek()
    after = _snapshot(m)
    assert _moved(before, after, "agent") and not _moved(before, after, "mixer")
    last = learner.train_steps(150)["default_policy"][K.BC_LOSS].peek()
    assert last < first - 0.2


def test_greedy_acting_respects_masks_and_is_decentralised(data):
    d, ep = data
    cfg, learner, m = make_learner(d, ep, agent_rnn=False, obs_last_action=False, cf_tau=0.0)
    n, A = m.n_agents, m.n_actions
    obs = torch.randn(5, n, m.obs_dim)
    avail = torch.zeros(5, n, A)
    avail[:, :, 3] = 1.0  # only action 3 available
    acts, _ = m.greedy_step(obs, avail, None)
    assert (acts == 3).all()
    # agent 0's action does not depend on agent 1's observation
    avail = torch.ones(5, n, A)
    a1, _ = m.greedy_step(obs, avail, None)
    obs2 = obs.clone()
    obs2[:, 1] += 5.0
    a2, _ = m.greedy_step(obs2, avail, None)
    assert torch.equal(a1[:, 0], a2[:, 0]) and torch.equal(a1[:, 2], a2[:, 2])


def test_store_transitions_are_length_one_episodes(data):
    d, ep = data
    store = EpisodeStore(ep, unit="transitions", seed=0)
    b = store.sample(32)
    assert b[K.OBS].shape[1] == 2 and b[K.ACTIONS].shape[1] == 1
    assert len(store) == ep.num_transitions
    # the second step of a sampled transition is the dataset's next observation
    e, t = store._trans_e[:5], store._trans_t[:5]
    tr = store.transitions(e, t)
    assert torch.equal(tr[K.OBS][:, 1], store.obs[e, t + 1])


@pytest.mark.parametrize("rnn", [True, False])
def test_target_cache_equals_recomputing_the_target_network(data, rnn):
    d, ep = data
    cfg, learner, m = make_learner(d, ep, agent_rnn=rnn, target_cache=True, target_update_interval=2, cf_tau=0.0)
    for _ in range(3):  # crosses a target copy: the cache must follow it
        learner.train_steps(1)
        batch = learner.store.sample(6)
        assert K.TARGET_Q_AGENTS in batch
        with torch.no_grad():
            cached = m.forward_train(batch)[K.TARGET_Q_TOT_NEXT]
            fresh = m.forward_train({k: v for k, v in batch.items() if k != K.TARGET_Q_AGENTS})[K.TARGET_Q_TOT_NEXT]
        assert torch.allclose(cached, fresh, atol=1e-5)
    cfg2, learner2, _ = make_learner(d, ep, agent_rnn=rnn, target_cache=False)
    assert K.TARGET_Q_AGENTS not in learner2.store.sample(2)
