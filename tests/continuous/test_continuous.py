"""Continuous variant, component tier (no Ray cluster): penalty math against
closed forms and loop references, gradient isolation between critic, actors,
targets and the VAE, and the learner's update schedule."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from rllib_cfcql import CFCQLConfig
from rllib_cfcql import keys as K
from rllib_cfcql.continuous import loss as LC
from rllib_cfcql.continuous.loss import continuous_loss
from rllib_cfcql.continuous.nets import (
    Actors,
    CentralTwinCritic,
    ConditionalVAE,
    IndependentTwinCritics,
)
from rllib_cfcql.data.validate import validate_dataset

ENV_CFG = {"continuous_actions": True, "max_cycles": 10}


@pytest.fixture
def f64():
    old = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    yield
    torch.set_default_dtype(old)


# ------------------------------------------------------------------ penalty math
def test_uniform_importance_correction_is_d_log2(f64):
    """A constant Q = c over [-1, 1]^d: log ∫ e^c da = c + d·log 2, exactly, from any samples."""
    torch.manual_seed(0)
    d, B, n, M, c = 3, 5, 2, 7, 1.7
    critic = CentralTwinCritic(n, 4, d, 8)
    with torch.no_grad():  # make Q ≡ c: zero output weights, bias c
        critic.mlp.out.weight.zero_()
        critic.mlp.out.bias.fill_(c)
    state, a = torch.randn(B, 4), torch.rand(B, n, d) * 2 - 1
    samples, logp = LC.sample_slot_actions((B, n), d, M)
    assert torch.allclose(logp, torch.full_like(logp, -d * math.log(2)))
    q_cf = critic.counterfactual(state, a, samples)
    lam = torch.full((B, n), 1.0 / n)
    pen = LC.cf_continuous_penalty(q_cf, logp, critic(state, a), lam)
    assert torch.allclose(pen, torch.full_like(pen, d * math.log(2)), atol=1e-12)


def test_one_agent_penalty_equals_single_agent_cql_h(f64):
    """n = 1: CFCQL's penalty is CQL(H) with the same samples, written out by hand."""
    torch.manual_seed(1)
    B, S, d, M = 6, 5, 2, 9
    critic = CentralTwinCritic(1, S, d, 16)
    actor_mean = torch.rand(B, 1, d) * 2 - 1
    state, a = torch.randn(B, S), torch.rand(B, 1, d) * 2 - 1
    samples, logp = LC.sample_slot_actions((B, 1), d, M, policy_means=[actor_mean], policy_std=0.2)
    pen = LC.cf_continuous_penalty(critic.counterfactual(state, a, samples), logp, critic(state, a), torch.ones(B, 1))
    # hand-written CQL(H): log mean_j exp(Q(s, a_j) − log p_j) − Q(s, a^D), per critic
    for k in range(2):
        for b in range(B):
            vals = []
            for j in range(samples.shape[0]):
                q = critic(state[b : b + 1], samples[j, b : b + 1])[k, 0]
                if j < M:
                    lp = -d * math.log(2)
                else:
                    z = (samples[j, b, 0] - actor_mean[b, 0]) / 0.2
                    lp = float(-0.5 * (z**2).sum() - d * (math.log(0.2) + 0.5 * math.log(2 * math.pi)))
                vals.append(q - lp)
            ref = torch.logsumexp(torch.stack(vals), 0) - math.log(len(vals)) - critic(state[b : b + 1], a[b : b + 1])[k, 0]
            assert torch.allclose(pen[k, b], ref, atol=1e-10)


def test_vectorised_counterfactual_and_joint_values_equal_loops(f64):
    torch.manual_seed(2)
    B, S, n, d, M = 4, 6, 3, 2, 5
    critic = CentralTwinCritic(n, S, d, 12)
    state, a = torch.randn(B, S), torch.rand(B, n, d) * 2 - 1
    samples = torch.rand(M, B, n, d) * 2 - 1
    cf = critic.counterfactual(state, a, samples)  # [2, M, B, n]
    joint = critic.at_samples(state, samples)  # [2, M, B]
    for m in range(M):
        assert torch.allclose(joint[:, m], critic(state, samples[m]), atol=1e-12)
        for i in range(n):
            swapped = a.clone()
            swapped[:, i] = samples[m, :, i]
            assert torch.allclose(cf[:, m, :, i], critic(state, swapped), atol=1e-12)
    # the twin critics are distinct networks
    assert not torch.allclose(cf[0], cf[1])


def test_independent_critics_and_actors_are_per_agent(f64):
    torch.manual_seed(3)
    B, n, O, d = 4, 3, 5, 2
    crit = IndependentTwinCritics(n, O, d, 8)
    obs, a = torch.randn(B, n, O), torch.rand(B, n, d) * 2 - 1
    q = crit(obs, a)  # [2, B, n]
    for k in range(2):
        for i in range(n):
            x = torch.cat([obs[:, i], a[:, i]], -1)[None]
            mlp = crit.mlp
            h = x
            for layer in mlp.hidden_layers:
                h = torch.relu(h @ layer.weight[k * n + i] + layer.bias[k * n + i])
            ref = (h @ mlp.out.weight[k * n + i] + mlp.out.bias[k * n + i])[0, :, 0]
            assert torch.allclose(q[k, :, i], ref, atol=1e-12)
    # agent i's action depends on obs i only, for separate and shared actors
    for shared in (False, True):
        actor = Actors(n, O, d, 8, shared=shared, out_init=1.0)
        obs2 = obs.clone()
        obs2[:, 1] += 1.0
        a1, a2 = actor(obs), actor(obs2)
        assert torch.equal(a1[:, 0], a2[:, 0]) and torch.equal(a1[:, 2], a2[:, 2])
        assert not torch.allclose(a1[:, 1], a2[:, 1])
        assert a1.abs().max() <= 1.0


def test_vae_agent_log_likelihood_matches_a_loop_and_lambda_sign(f64):
    torch.manual_seed(4)
    B, S, n, d, L = 3, 4, 2, 2, 6
    vae = ConditionalVAE(S, n, d, hidden=16)
    state, a_data, a_pi = torch.randn(B, S), torch.rand(B, n, d) * 2 - 1, torch.rand(B, n, d) * 2 - 1
    torch.manual_seed(9)
    got = vae.agent_log_likelihood(state, a_data, a_pi, samples=L)
    torch.manual_seed(9)
    eps = torch.randn(L, n, B, vae.latent)
    ls = vae.log_std.clamp(-5, 1).reshape(n, d)
    for i in range(n):
        joint = a_data.clone()
        joint[:, i] = a_pi[:, i]
        mu, log_std = vae.encode(state, joint)
        z = mu + log_std.exp() * eps[:, i]  # [L, B, Z]
        mean = vae.decode_mean(state.expand(L, -1, -1), z).reshape(L, B, n, d)[:, :, i]
        lpx = torch.distributions.Normal(mean, ls[i].exp()).log_prob(a_pi[:, i]).sum(-1)
        lpz = torch.distributions.Normal(0.0, 1.0).log_prob(z).sum(-1)
        lqz = torch.distributions.Normal(mu, log_std.exp()).log_prob(z).sum(-1)
        ref = torch.logsumexp(lpx + lpz - lqz, 0) - math.log(L)
        assert torch.allclose(got[:, i], ref, atol=1e-10)
    lam = LC.lambda_from_log_likelihood(torch.tensor([[-1.0, -5.0]]), 1.0)
    assert lam[0, 1] > lam[0, 0] and torch.allclose(lam.sum(-1), torch.ones(1))  # less likely → larger λ
    assert torch.equal(LC.lambda_from_log_likelihood(torch.tensor([[-1.0, -5.0]]), math.inf), torch.tensor([[0.0, 1.0]]))
    assert torch.allclose(LC.lambda_from_log_likelihood(torch.tensor([[-1.0, -5.0]]), 0.0), torch.tensor([[0.5, 0.5]]))


def test_td3_target_uses_min_of_twins_and_stops_at_terminals():
    r, term = torch.tensor([1.0, 1.0]), torch.tensor([0.0, 1.0])
    q_next = torch.tensor([[2.0, 5.0], [3.0, -1.0]])
    assert torch.allclose(LC.td3_target(r, term, q_next, 0.9), torch.tensor([1.0 + 0.9 * 2.0, 1.0]))


# ------------------------------------------------------------------ learner
@pytest.fixture(scope="module")
def cdata(tiny_dataset):
    d = tiny_dataset(task="mpe_spread", env_config=ENV_CFG, episodes=8, policy="medium_expert:0.3", seed=5)
    card, ep = validate_dataset(d)
    return d, ep


def make_learner(d, ep, **training):
    t = dict(train_batch_size_per_learner=16, cql_alpha=1.0, gamma=0.95, agent_hidden=16, vae_hidden=16,
             vae_pretrain_steps=20, vae_batch_size=16)
    t.update(training)
    cfg = (CFCQLConfig().environment("mpe_spread", env_config=ENV_CFG).offline_data(input_=[str(d)])
           .training(**t).debugging(seed=0))
    cfg.validate()
    assert cfg.is_continuous and cfg.resolved_batch_unit == "transitions"
    learner = cfg.build_learner(env=None)
    if cfg.uses_vae:
        from rllib_cfcql.core.pretrain import pretrain_vae

        state, _ = pretrain_vae(ep, hidden=16, latent=None, steps=20, batch_size=16, lr=1e-3, kl_weight=0.5, seed=0,
                                progress=False)
        learner.set_vae_state(state)
    learner.set_dataset(ep, 1, 0)
    return cfg, learner, learner.module["default_policy"].unwrapped()


def _grads(loss, params):
    return [g for g in torch.autograd.grad(loss, params, retain_graph=True, allow_unused=True)]


VARIANTS = {
    "cfcql": {},
    "cfcql-vae": {"lambda_model": "vae"},
    "cfcql-policy-samples": {"cql_policy_samples": True},
    "macql": {"penalty": "joint"},
    "icql": {"critic": "independent"},
    "omar": {"critic": "independent", "actor_objective": "omar"},
    "matd3bc": {"penalty": "none", "actor_objective": "td3bc"},
}


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_gradient_isolation_between_critic_actor_targets_and_vae(cdata, variant):
    d, ep = cdata
    cfg, learner, module = make_learner(d, ep, **VARIANTS[variant])
    batch = learner.store.sample(16)
    batch[K.ACTOR_STEP] = True
    fwd = module.forward_train(batch)
    terms = continuous_loss(cfg, batch, fwd)
    stats = terms.stats
    actor_loss = stats[K.ACTOR_LOSS]
    critic_loss = stats[K.CRITIC_LOSS]
    actor_p, critic_p = list(module.actor.parameters()), list(module.critic.parameters())
    # critic terms: gradient to every critic parameter, none to the actors
    g = _grads(critic_loss, actor_p + critic_p)
    assert all(x is None or not x.any() for x in g[: len(actor_p)])
    assert all(x is not None and x.abs().sum() > 0 for x in g[len(actor_p):])
    # actor term: gradient to every actor parameter, none to the critic
    g = _grads(actor_loss, actor_p + critic_p)
    assert all(x is not None and x.abs().sum() > 0 for x in g[: len(actor_p)])
    assert all(x is None for x in g[len(actor_p):])
    # targets and the VAE are outside autograd altogether
    frozen = list(module.target_actor.parameters()) + list(module.target_critic.parameters())
    frozen += list(module.vae.parameters()) if module.vae is not None else []
    assert frozen and not any(p.requires_grad for p in frozen)
    if variant == "cfcql-vae":
        lam = fwd[K.LAMBDA]
        assert torch.allclose(lam.sum(-1), torch.ones(lam.shape[0])) and not torch.allclose(lam, torch.full_like(lam, 1 / 3))
    if variant == "cfcql-policy-samples":
        assert fwd[K.CF_Q].shape[1] == 3 * cfg.cql_samples  # uniform + current + next policy
    assert math.isfinite(float(terms.total.detach()))


def _snap(m):
    return {k: v.detach().clone() for k, v in m.state_dict().items()}


def _moved(a, b, prefix):
    keys = [k for k in a if k.startswith(prefix + ".")]
    assert keys, prefix
    return any(not torch.equal(a[k], b[k]) for k in keys)


def test_schedule_actor_every_round_critic_every_step_polyak_per_round(cdata):
    d, ep = cdata
    cfg, learner, module = make_learner(d, ep, actor_update_interval=3, polyak_tau=0.5)
    s0 = _snap(module)
    learner.train_steps(1)  # step 0 of the round: critic + actor
    s1 = _snap(module)
    assert _moved(s0, s1, "critic") and _moved(s0, s1, "actor")
    assert not _moved(s0, s1, "target_critic") and not _moved(s0, s1, "target_actor")
    actor_opt = learner.get_optimizer("default_policy", "actor")
    adam_state = {id(p): {k: v.clone() for k, v in actor_opt.state[p].items()} for p in module.actor.parameters()}
    learner.train_steps(1)  # critic-only step: the actor and its Adam moments stay put
    s2 = _snap(module)
    assert _moved(s1, s2, "critic") and not _moved(s1, s2, "actor")
    for p in module.actor.parameters():
        for k, v in actor_opt.state[p].items():
            assert torch.equal(v, adam_state[id(p)][k]), k
    learner.train_steps(1)  # end of the round: Polyak with τ = 0.5
    s3 = _snap(module)
    for k in s3:
        if k.startswith("target_critic."):
            src = "critic." + k[len("target_critic."):]
            assert torch.allclose(s3[k], 0.5 * s2[k] + 0.5 * s3[src], atol=1e-6)
    assert learner.num_grad_steps == 3 and learner.num_target_updates == 1


def test_diagnostics_saturation_agreement_and_policy_value(cdata):
    """diag_actor_saturation counts tanh-saturated action components; with the actors' output pinned to
    +1 it is 1 and the agreement and Q(π) are those of the all-ones joint action, with it pinned to 0 it
    is 0 and Q(π) is the critic at the zero action."""
    from rllib_cfcql import diagnostics as D

    d, ep = cdata
    _, learner, module = make_learner(d, ep, diagnostics_episodes=4)
    st, idx = learner.store, learner._diag_idx
    T = st.actions.shape[1]
    filled = st.filled[idx] > 0
    state, acts = st.state[idx, :T][filled], st.actions[idx][filled]  # [N, S], [N, n, d]
    out_layer = module.actor.mlp.out
    for value, sat in ((10.0, 1.0), (0.0, 0.0)):
        with torch.no_grad():
            out_layer.weight.zero_()
            out_layer.bias.fill_(value)
        pi = torch.full_like(acts, math.tanh(value))
        out = learner.diagnostics()
        assert out[K.DIAG_ACTOR_SATURATION].item() == sat
        agree = ((pi - acts).abs() <= D.SUPPORT_RADIUS).all(-1).float().mean()
        assert out[K.DIAG_AGENT_AGREEMENT].item() == pytest.approx(agree.item())
        with torch.no_grad():
            q_pi = module.critic(state, pi)[0].mean()
        assert out[K.DIAG_Q_GREEDY].item() == pytest.approx(q_pi.item(), rel=1e-5, abs=1e-6)


def test_bc_mode_trains_only_the_actors(cdata):
    d, ep = cdata
    cfg, learner, module = make_learner(d, ep, mode="bc")
    assert cfg.resolved_actor_objective == "bc"
    s0 = _snap(module)
    learner.train_steps(3)
    s1 = _snap(module)
    assert _moved(s0, s1, "actor") and not _moved(s0, s1, "critic")


@pytest.mark.parametrize("bad, field", [
    ({"critic": "independent", "penalty": "joint"}, "penalty"),
    ({"actor_objective": "omar"}, "actor_objective"),
    ({"critic": "independent", "actor_objective": "counterfactual"}, "actor_objective"),
    ({"batch_unit": "episodes"}, "batch_unit"),
    ({"polyak_tau": 0.0}, "polyak_tau"),
    ({"omar_elites": 50}, "omar_elites"),
    ({"lambda_model": "flow"}, "lambda_model"),
])
def test_continuous_config_errors_name_the_field(cdata, bad, field):
    d, _ = cdata
    cfg = CFCQLConfig().environment("mpe_spread", env_config=ENV_CFG).offline_data(input_=[str(d)]).training(**bad)
    with pytest.raises(ValueError, match=rf"CFCQLConfig\.{field}="):
        cfg.validate()


@pytest.mark.parametrize("field, value", [("critic", "independent"), ("polyak_tau", 0.5), ("vae_hidden", 32)])
def test_discrete_task_rejects_continuous_only_settings(tiny_dataset, field, value):
    """A setting the variant never reads is refused, naming it (it would be silently ignored)."""
    d = tiny_dataset(env_config={"n_agents": 3, "episode_limit": 10}, episodes=4)
    cfg = (CFCQLConfig().environment("equal_line", env_config={"n_agents": 3, "episode_limit": 10})
           .offline_data(input_=[str(d)]).training(**{field: value}))
    with pytest.raises(ValueError, match=rf"CFCQLConfig\.{field}=.* applies to continuous actions only, "
                                         r"and this task's actions are discrete"):
        cfg.validate()


@pytest.mark.parametrize("field, value", [("mixer", "vdn"), ("td_lambda", 0.0), ("target_update_interval", 200)])
def test_continuous_task_rejects_discrete_only_settings(cdata, field, value):
    d, _ = cdata
    cfg = CFCQLConfig().environment("mpe_spread", env_config=ENV_CFG).offline_data(input_=[str(d)]).training(**{field: value})
    with pytest.raises(ValueError, match=rf"CFCQLConfig\.{field}=.* applies to discrete actions only, "
                                         r"and this task's actions are continuous"):
        cfg.validate()


def test_variant_fields_are_disjoint_and_set_at_their_defaults():
    from rllib_cfcql.continuous import config as cc
    from rllib_cfcql.discrete import config as dc

    assert not set(dc.FIELDS) & set(cc.FIELDS)
    cfg = CFCQLConfig()
    for name, default in {**dc.FIELDS, **cc.FIELDS}.items():
        assert getattr(cfg, name) == default, name


def test_continuous_dataset_round_trip_and_range_check(tmp_path):
    from rllib_cfcql.behaviour_policies.specs import BehaviourPolicy
    from rllib_cfcql.data.collect import rollout
    from rllib_cfcql.data.schema import (
        DatasetError,
        assemble_episodes,
        columns_from_arrow,
        episodes_to_rows,
    )
    from rllib_cfcql.data.writer import rows_to_table
    from rllib_cfcql.envs import make_team_env

    env = make_team_env("mpe_spread", ENV_CFG)
    ep = rollout(env, BehaviourPolicy("eps_expert:0.5"), 3, seed=0)
    assert ep.actions.shape == (3, 10, 3, 2) and ep.actions.dtype == np.float32 and ep.action_mask.shape[-1] == 0
    table = rows_to_table(episodes_to_rows(ep))
    assert "action_mask" not in table.column_names
    back = assemble_episodes(columns_from_arrow(table, env.team_spec), env.team_spec)
    np.testing.assert_array_equal(back.actions, ep.actions)
    np.testing.assert_array_equal(back.obs, ep.obs)
    rows = episodes_to_rows(ep)
    rows["actions"] = rows["actions"].copy()
    rows["actions"][4, 1] = 1.5
    with pytest.raises(DatasetError, match=r"episode_id=0 t=4: column 'actions': agent 0 action dimension 1 is 1.5"):
        assemble_episodes(columns_from_arrow(rows_to_table(rows), env.team_spec), env.team_spec)


def test_vae_pretraining_is_cached_per_dataset(cdata, tmp_path):
    from rllib_cfcql.core.pretrain import pretrain_vae

    _, ep = cdata
    kw = dict(hidden=16, latent=None, steps=30, batch_size=16, lr=1e-3, kl_weight=0.5, seed=0, progress=False,
              eval_every=10, cache_dir=tmp_path)
    s1, info1 = pretrain_vae(ep, **kw)
    s2, info2 = pretrain_vae(ep, **kw)
    assert not info1["cached"] and info2["cached"] and info1["steps"] > 0
    assert all(np.array_equal(s1[k], s2[k]) for k in s1)
    _, info3 = pretrain_vae(ep, **dict(kw, hidden=8))  # another architecture: trained anew
    assert not info3["cached"]


def test_a_continuous_dataset_is_refused_for_the_discrete_task(cdata):
    from rllib_cfcql.data.offline import check_card_matches
    from rllib_cfcql.data.schema import DatasetError
    from rllib_cfcql.envs import make_team_env

    d, _ = cdata
    import json

    card = json.loads((d / "card.json").read_text())
    discrete = make_team_env("mpe_spread", {"max_cycles": 10}).team_spec
    with pytest.raises(DatasetError, match=r"n_actions: dataset 2 vs run 5.*continuous: dataset True vs run False"):
        check_card_matches(card, "mpe_spread", discrete)


def test_preact_penalty_gives_a_saturated_actor_its_gradient_back(cdata):
    """With the actors' output layer pinned at pre-activation y = 12 (tanh' ≈ 2e-10) the actor loss has no
    gradient to the output bias without actor_preact_l2; with it the bias gradient is exactly the penalty's
    2·c·y per agent and dimension (the critic's and ‖π‖²'s parts vanish through the tanh)."""
    d, ep = cdata
    for c in (0.0, 1e-3):
        cfg, learner, module = make_learner(d, ep, actor_preact_l2=c)
        out_layer = module.actor.mlp.out
        with torch.no_grad():
            out_layer.weight.zero_()
            out_layer.bias.fill_(12.0)
        batch = learner.store.sample(16)
        batch[K.ACTOR_STEP] = True
        fwd = module.forward_train(batch)
        assert torch.equal(fwd[K.PI_PREACT], torch.full_like(fwd[K.PI_PREACT], 12.0))
        assert torch.equal(fwd[K.PI_ACTIONS], torch.tanh(fwd[K.PI_PREACT]))
        (g,) = torch.autograd.grad(continuous_loss(cfg, batch, fwd).stats[K.ACTOR_LOSS], [out_layer.bias])
        assert torch.allclose(g, torch.full_like(g, 2 * c * 12.0), atol=1e-6), (c, g)


def test_preact_penalty_must_be_non_negative(cdata):
    d, _ = cdata
    cfg = (CFCQLConfig().environment("mpe_spread", env_config=ENV_CFG).offline_data(input_=[str(d)])
           .training(actor_preact_l2=-1.0))
    with pytest.raises(ValueError, match=r"CFCQLConfig\.actor_preact_l2=-1.0 is invalid"):
        cfg.validate()


def test_actor_bc_warmup_clones_the_data_then_climbs_the_critic(cdata):
    """The first actor_bc_warmup critic steps flag their actor step as cloning: the actor loss is then exactly
    Σ_i E‖π_i − a_i^D‖² + actor_l2·Σ_i E‖π_i‖², and the critic gets its usual loss; later steps climb Q."""
    d, ep = cdata
    cfg, learner, module = make_learner(d, ep, actor_bc_warmup=2, actor_update_interval=1)
    flags = []
    for _ in range(3):
        flags.append(learner._step_flags()[K.ACTOR_BC])
        learner.train_steps(1)
    assert flags == [True, True, False]
    batch = learner.store.sample(16)
    batch[K.ACTOR_STEP], batch[K.ACTOR_BC] = True, True
    fwd = module.forward_train(batch)
    pi, a = fwd[K.PI_ACTIONS], batch[K.ACTIONS][:, 0]
    want = (pi - a).pow(2).sum(-1).mean(0).sum() + cfg.actor_l2 * pi.pow(2).sum(-1).mean(0).sum()
    terms = continuous_loss(cfg, batch, fwd)
    assert torch.allclose(terms.actor, want)
    batch[K.ACTOR_BC] = False
    climb = continuous_loss(cfg, batch, fwd)
    assert torch.allclose(climb.actor, -fwd[K.ACTOR_Q].mean(0).sum() + cfg.actor_l2 * pi.pow(2).sum(-1).mean(0).sum())
    assert torch.equal(terms.critic, climb.critic)  # the critic's loss does not depend on the warm-up
