"""Loss math against exact cases (unit tier: pure tensors, milliseconds)."""

from __future__ import annotations

import itertools
import math

import pytest
import torch

from rllib_cfcql.discrete import loss as L
from rllib_cfcql.discrete.nets import QMixer, VDNMixer


@pytest.fixture(autouse=True)
def float64():
    """Exact comparisons in float64, restored afterwards (other modules build float32 nets)."""
    old = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    yield
    torch.set_default_dtype(old)


def test_cf_penalty_two_agents_two_actions_by_hand():
    # q_1 = [1, 2], q_2 = [3, 0]; dataset joint action a = (0, 1); VDN: Q_tot(a) = 1 + 0 = 1
    q = torch.tensor([[1.0, 2.0], [3.0, 0.0]])
    a = torch.tensor([0, 1])
    q_taken = q.gather(-1, a[:, None])[:, 0]
    mixer = VDNMixer()
    cf = mixer.counterfactual(q, q_taken, torch.zeros(1))
    # agent 1 varies: Q_tot((j, 1)) = q_1[j] + 0 = [1, 2]; agent 2 varies: q_1[0] + q_2[j] = [4, 1]
    assert torch.allclose(cf, torch.tensor([[1.0, 2.0], [4.0, 1.0]]))
    lam = torch.tensor([0.5, 0.5])
    pen = L.cf_penalty(cf, mixer(q_taken, None), torch.ones(2, 2), lam)
    expected = 0.5 * math.log(math.e + math.e**2) + 0.5 * math.log(math.e**4 + math.e) - 1.0
    assert pen.item() == pytest.approx(expected, abs=1e-12)
    # masking agent 2's action 0 leaves only Q_tot = 1 for agent 2: LSE = 1
    avail = torch.tensor([[1.0, 1.0], [0.0, 1.0]])
    pen_m = L.cf_penalty(cf, mixer(q_taken, None), avail, lam)
    assert pen_m.item() == pytest.approx(0.5 * math.log(math.e + math.e**2) + 0.5 * 1.0 - 1.0, abs=1e-12)


@pytest.mark.parametrize("mixer_kind", ["vdn", "qmix"])
def test_one_agent_penalty_is_single_agent_cql(mixer_kind):
    torch.manual_seed(0)
    B, A, S = 7, 5, 3
    mixer = VDNMixer() if mixer_kind == "vdn" else QMixer(1, S, embed=8, hyper_hidden=16).double()
    q = torch.randn(B, 1, A)
    s = torch.randn(B, S)
    a = torch.randint(A, (B, 1))
    q_taken = q.gather(-1, a[..., None])[..., 0]
    q_tot = mixer(q_taken, s)
    cf = mixer.counterfactual(q, q_taken, s)
    pen = L.cf_penalty(cf, q_tot, torch.ones(B, 1, A), torch.ones(B, 1))
    # single-agent CQL(H) on Q_tot(s, ·): logsumexp_j Q(s, j) − Q(s, a)
    q_all = torch.stack([mixer(q[..., j], s) for j in range(A)], -1)  # [B, A]
    assert torch.allclose(pen, torch.logsumexp(q_all, -1) - q_tot, atol=1e-10)


def test_vdn_penalty_splits_into_per_agent_cql_terms():
    torch.manual_seed(1)
    B, n, A = 6, 4, 3
    q = torch.randn(B, n, A)
    a = torch.randint(A, (B, n))
    avail = (torch.rand(B, n, A) > 0.3).double()
    avail.scatter_(-1, a[..., None], 1.0)
    q_taken = q.gather(-1, a[..., None])[..., 0]
    lam = torch.softmax(torch.randn(B, n), -1)
    mixer = VDNMixer()
    pen = L.cf_penalty(mixer.counterfactual(q, q_taken, None), mixer(q_taken, None), avail, lam)
    per_agent = L.masked_logsumexp(q, avail) - q_taken  # [B, n]: CQL term of each agent
    assert torch.allclose(pen, (lam * per_agent).sum(-1), atol=1e-10)


def _loop_counterfactual(mixer, q, a, s):
    """Slow reference: one full mixer evaluation per (agent, action)."""
    B, n, A = q.shape
    out = torch.zeros(B, n, A)
    for i in range(n):
        for j in range(A):
            aj = a.clone()
            aj[:, i] = j
            out[:, i, j] = mixer(q.gather(-1, aj[..., None])[..., 0], s)
    return out


@pytest.mark.parametrize("mixer_kind", ["vdn", "qmix"])
def test_loop_reference_equals_vectorised_with_masks(mixer_kind):
    torch.manual_seed(2)
    B, n, A, S = 5, 3, 4, 6
    mixer = VDNMixer() if mixer_kind == "vdn" else QMixer(n, S, embed=8, hyper_hidden=16).double()
    q = torch.randn(B, n, A)
    s = torch.randn(B, S)
    a = torch.randint(A, (B, n))
    avail = (torch.rand(B, n, A) > 0.4).double()
    avail.scatter_(-1, a[..., None], 1.0)
    q_taken = q.gather(-1, a[..., None])[..., 0]
    cf = mixer.counterfactual(q, q_taken, s)
    ref = _loop_counterfactual(mixer, q, a, s)
    assert torch.allclose(cf, ref, atol=1e-10)
    lam = torch.softmax(torch.randn(B, n), -1)
    pen = L.cf_penalty(cf, mixer(q_taken, s), avail, lam)
    pen_ref = torch.zeros(B)
    for b in range(B):
        for i in range(n):
            vals = [ref[b, i, j] for j in range(A) if avail[b, i, j] > 0]
            pen_ref[b] += lam[b, i] * torch.logsumexp(torch.stack(vals), 0)
    pen_ref -= mixer(q_taken, s)
    assert torch.allclose(pen, pen_ref, atol=1e-10)


def test_fused_qmix_counterfactual_gradients_match_autograd():
    torch.manual_seed(3)
    n, A, S = 3, 4, 5
    mixer = QMixer(n, S, embed=6, hyper_hidden=8).double()
    q = torch.randn(2, 3, n, A, requires_grad=True)
    qt = torch.randn(2, 3, n, requires_grad=True)
    s = torch.randn(2, 3, S)
    w = torch.randn(2, 3, n, A)
    params = [q, qt] + list(mixer.parameters())
    g1 = torch.autograd.grad((mixer.counterfactual(q, qt, s) * w).sum(), params)
    g2 = torch.autograd.grad((mixer.counterfactual_reference(q, qt, s) * w).sum(), params)
    for x, y in zip(g1, g2):
        assert torch.allclose(x, y, atol=1e-10)


def _brute_joint_lse(mixer, q, avail, s):
    B, n, A = q.shape
    out = torch.zeros(B)
    for b in range(B):
        vals = []
        for joint in itertools.product(range(A), repeat=n):
            if all(avail[b, i, joint[i]] > 0 for i in range(n)):
                qj = torch.stack([q[b, i, joint[i]] for i in range(n)])
                vals.append(mixer(qj[None], s[b : b + 1])[0])
        out[b] = torch.logsumexp(torch.stack(vals), 0)
    return out


def test_joint_penalty_enumerated_equals_brute_force_and_samples_converge():
    import gymnasium as gym
    import numpy as np

    from rllib_cfcql.discrete.module import CFCQLTorchRLModule  # noqa: F401  (module holds the sampler)

    torch.manual_seed(4)
    B, n, A, S = 3, 2, 3, 4
    obs_space = gym.spaces.Dict({
        "obs": gym.spaces.Box(-1, 1, (n, 2), np.float32),
        "state": gym.spaces.Box(-1, 1, (S,), np.float32),
        "action_mask": gym.spaces.Box(0, 1, (n, A), np.float32),
    })
    module = CFCQLTorchRLModule(observation_space=obs_space, action_space=gym.spaces.MultiDiscrete([A] * n),
                                model_config={"rnn": False, "obs_last_action": False, "penalty": "joint",
                                              "joint_samples": 100, "mixer_embed": 8, "hyper_hidden": 8}).double()
    q = torch.randn(B, 1, n, A)
    s = torch.randn(B, 1, S)
    avail = (torch.rand(B, 1, n, A) > 0.3).double()
    avail[..., 0] = 1.0
    q_taken = q[..., 0]
    vals, log_count = module._joint_values(q, avail, s)  # 3^2 = 9 <= 100: exact enumeration
    pen = L.joint_penalty(vals, log_count, module.mixer(q_taken, s))
    brute = _brute_joint_lse(module.mixer, q[:, 0], avail[:, 0], s[:, 0])
    assert torch.allclose(pen[:, 0], brute - module.mixer(q_taken, s)[:, 0], atol=1e-9)
    # sampling branch (joint space 9 > N = 8): the importance-corrected estimate is unbiased in
    # exp-space and consistent; average many independent estimates of Σ exp Q
    module.cfg["joint_samples"] = 8
    for stratum in (True, False):  # with the greedy joint action as an exact stratum, and uniform draws only
        module.cfg["joint_greedy_stratum"] = stratum
        torch.manual_seed(5)
        sums = torch.stack([L.joint_penalty(*module._joint_values(q, avail, s), torch.zeros(B, 1)).exp()
                            for _ in range(3000)])
        assert torch.allclose(sums.mean(0)[:, 0].log(), brute, atol=0.03), stratum
    # the stratum is always in the estimate: every draw's LSE is at least Q_tot at the greedy joint action
    module.cfg["joint_greedy_stratum"] = True
    greedy = q.masked_fill(avail <= 0, -1e9).argmax(-1)
    q_star = module.mixer(q.gather(-1, greedy[..., None])[..., 0], s)
    for _ in range(20):
        est = L.joint_penalty(*module._joint_values(q, avail, s), torch.zeros(B, 1))
        assert (est >= q_star - 1e-9).all()


def test_additive_mixer_makes_the_joint_penalty_n_times_the_uniform_counterfactual_one():
    """With an additive Q_tot (VDN), log Σ_a exp Σ_i Q_i(a_i) = Σ_i LSE_j Q_i(j), so MACQL's joint penalty is
    exactly n × CFCQL's at uniform λ, values and gradients: MACQL at α/n is CFCQL at τ = 0 and α. This is
    why, on data whose learned Q_tot is close to additive, MACQL's best α is about n times smaller
    (docs/DATASETS_DESIGN.md §5)."""
    torch.manual_seed(6)
    B, n, A = 4, 3, 3
    mixer = VDNMixer()
    q = torch.randn(B, n, A, requires_grad=True)
    a = torch.randint(A, (B, n))
    avail = (torch.rand(B, n, A) > 0.3).double()
    avail.scatter_(-1, a[..., None], 1.0)
    q_taken = q.gather(-1, a[..., None])[..., 0]
    q_tot = mixer(q_taken, None)
    joint = _brute_joint_lse(mixer, q, avail, torch.zeros(B, 1)) - q_tot
    cf = L.cf_penalty(mixer.counterfactual(q, q_taken, None), q_tot, avail, torch.full((B, n), 1.0 / n))
    assert torch.allclose(joint, n * cf, atol=1e-10)
    (g_joint,) = torch.autograd.grad(joint.sum(), q, retain_graph=True)
    (g_cf,) = torch.autograd.grad(cf.sum(), q)
    assert torch.allclose(g_joint, n * g_cf, atol=1e-10)


def test_td_lambda_targets_closed_forms():
    r = torch.tensor([[1.0, 2.0, 3.0, 0.0]])
    qn = torch.tensor([[10.0, 20.0, 30.0, 99.0]])  # Q̄(s_{t+1}); step 3 is padding
    filled = torch.tensor([[1.0, 1.0, 1.0, 0.0]])
    term = torch.zeros(1, 4)
    g = 0.9
    # λ = 0: one-step targets
    assert torch.allclose(L.td_lambda_targets(r, term, filled, qn, g, 0.0)[:, :3], r[:, :3] + g * qn[:, :3])
    # λ = 1: Monte-Carlo return with a bootstrap at the (truncated) end
    G = L.td_lambda_targets(r, term, filled, qn, g, 1.0)
    assert G[0, 2].item() == pytest.approx(3 + g * 30)
    assert G[0, 0].item() == pytest.approx(1 + g * 2 + g**2 * 3 + g**3 * 30)
    # a terminal last step bootstraps nothing
    term2 = torch.tensor([[0.0, 0.0, 1.0, 0.0]])
    G2 = L.td_lambda_targets(r, term2, filled, qn, g, 0.6)
    assert G2[0, 2].item() == pytest.approx(3.0)
    lam = 0.6
    g1 = 2 + g * ((1 - lam) * 20 + lam * 3)
    assert G2[0, 1].item() == pytest.approx(g1)
    assert G2[0, 0].item() == pytest.approx(1 + g * ((1 - lam) * 10 + lam * g1))


def test_lambda_weights_limits_and_kl():
    kl = torch.tensor([[0.1, 2.0, 0.5]])
    assert torch.allclose(L.lambda_weights(kl, 0.0), torch.full((1, 3), 1 / 3))
    assert torch.equal(L.lambda_weights(kl, math.inf), torch.tensor([[0.0, 1.0, 0.0]]))
    assert torch.equal(L.lambda_weights(kl, -math.inf), torch.tensor([[1.0, 0.0, 0.0]]))
    assert torch.allclose(L.lambda_weights(kl, 2.0), torch.softmax(2.0 * kl, -1))
    # KL(μ‖β) on available actions only
    cf = torch.tensor([[1.0, 2.0, 50.0]])
    beta = torch.tensor([[0.0, 1.0, -50.0]])
    avail = torch.tensor([[1.0, 1.0, 0.0]])
    mu = torch.softmax(torch.tensor([1.0, 2.0]), -1)
    b = torch.softmax(torch.tensor([0.0, 1.0]), -1)
    assert L.kl_mu_beta(cf, beta, avail).item() == pytest.approx((mu * (mu / b).log()).sum().item())
