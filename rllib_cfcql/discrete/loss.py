"""The discrete variant's loss: the maths as pure functions of tensors, and :func:`cfcql_loss`, which
assembles them from a config, a batch and a forward pass into named :class:`LossTerms`.

Shapes: ``B`` batch, ``T`` steps, ``n`` agents, ``A`` actions, ``N`` samples.
Masks: ``avail`` is 1 for available actions; ``filled`` is 1 for real steps.

Objective (docs/ALGORITHM.md, CFCQL(H), appendix eq. B.37)::

    L = α · E_s[ Σ_i λ_i · LSE_j Q_tot(s, a^D with a^i := j) − Q_tot(s, a^D) ]
        + ½ · E[(Q_tot(s, a^D) − G^λ)²]
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Dict

import torch
import torch.nn.functional as F

from rllib_cfcql import keys as K

NEG = -1e9  # large finite negative: masked entries vanish in softmax/LSE without NaN


def masked_mean(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    return (x * mask).sum() / mask.sum().clamp_min(1.0)


def td_lambda_targets(
    reward: torch.Tensor,
    terminated: torch.Tensor,
    filled: torch.Tensor,
    target_next: torch.Tensor,
    gamma: float,
    td_lambda: float,
) -> torch.Tensor:
    """λ-returns over padded episodes.

    reward, terminated, filled, target_next: [B, T]; ``target_next[:, t]`` is
    the target network's Q_tot at step t+1 (Double-Q action). Recursion:

        G_t = r_t + γ(1 − d_t)[(1 − λ) Q̄_{t+1} + λ·(f_{t+1} G_{t+1} + (1 − f_{t+1}) Q̄_{t+1})]

    so the return bootstraps fully from Q̄ after an episode's last real step
    (time-limit truncation) and not at all after a terminal step.
    """
    B, T = reward.shape
    G = torch.zeros_like(reward)
    nxt_G = torch.zeros_like(reward[:, 0])
    nxt_f = torch.zeros_like(reward[:, 0])
    for t in range(T - 1, -1, -1):  # loop over time only (recursion); vectorised over batch
        boot = (1.0 - td_lambda) * target_next[:, t] + td_lambda * (nxt_f * nxt_G + (1.0 - nxt_f) * target_next[:, t])
        G[:, t] = reward[:, t] + gamma * (1.0 - terminated[:, t]) * boot
        nxt_G, nxt_f = G[:, t], filled[:, t]
    return G


def masked_logsumexp(x: torch.Tensor, avail: torch.Tensor, dim: int = -1) -> torch.Tensor:
    return torch.logsumexp(x.masked_fill(avail <= 0, NEG), dim=dim)


def counterfactual_logsumexp(cf_q_tot: torch.Tensor, avail: torch.Tensor) -> torch.Tensor:
    """LSE_j Q_tot(s, a^D with slot i := j) over agent i's available actions.

    cf_q_tot, avail: [..., n, A] -> [..., n]
    """
    return masked_logsumexp(cf_q_tot, avail, dim=-1)


def cf_penalty(cf_q_tot: torch.Tensor, q_tot_taken: torch.Tensor, avail: torch.Tensor, lam: torch.Tensor) -> torch.Tensor:
    """Counterfactual penalty per step: Σ_i λ_i·LSE_j(cf) − Q_tot(s, a^D).

    cf_q_tot, avail [..., n, A]; q_tot_taken [...]; lam [..., n] -> [...]
    """
    return (lam * counterfactual_logsumexp(cf_q_tot, avail)).sum(-1) - q_tot_taken


def joint_penalty(joint_q_tot: torch.Tensor, log_count: torch.Tensor, q_tot_taken: torch.Tensor) -> torch.Tensor:
    """MACQL: log Σ_a exp Q_tot(s, a) over *joint* actions, minus Q_tot(s, a^D).

    ``joint_q_tot [N, ...]`` are Q_tot at N joint actions drawn uniformly from
    the available joint actions (or all of them when enumerated). The uniform
    importance correction makes the estimate consistent:
    LSE ≈ logsumexp_k Q_k − log N + log |available joint actions|.
    """
    N = joint_q_tot.shape[0]
    return torch.logsumexp(joint_q_tot, dim=0) - math.log(N) + log_count - q_tot_taken


def masked_softmax(x: torch.Tensor, avail: torch.Tensor) -> torch.Tensor:
    return torch.softmax(x.masked_fill(avail <= 0, NEG), dim=-1)


def masked_log_softmax(x: torch.Tensor, avail: torch.Tensor) -> torch.Tensor:
    return torch.log_softmax(x.masked_fill(avail <= 0, NEG), dim=-1)


def kl_mu_beta(cf_q_tot: torch.Tensor, beta_logits: torch.Tensor, avail: torch.Tensor) -> torch.Tensor:
    """KL(μ_i ‖ β_i) per agent, μ_i = softmax_j of the counterfactual Q_tot.

    [..., n, A] -> [..., n]; unavailable actions carry no mass.
    """
    log_mu = masked_log_softmax(cf_q_tot, avail)
    log_beta = masked_log_softmax(beta_logits, avail)
    mu = log_mu.exp() * (avail > 0)
    return (mu * (log_mu - log_beta) * (avail > 0)).sum(-1)


def lambda_weights(kl: torch.Tensor, tau: float) -> torch.Tensor:
    """λ = softmax_i(τ · KL(μ_i ‖ β_i)); τ = 0 → uniform, τ = inf → one-hot argmax.

    Follows the reference code's sign (the agent deviating most from the data
    gets the most weight); τ < 0 reproduces the sign printed in eq. B.39.
    Returned detached: λ weighs the penalty, it is not trained through.
    """
    kl = kl.detach()
    if math.isinf(tau):
        idx = kl.argmax(-1) if tau > 0 else kl.argmin(-1)
        return F.one_hot(idx, kl.shape[-1]).to(kl.dtype)
    return torch.softmax(tau * kl, dim=-1)


def bc_nll(logits: torch.Tensor, actions: torch.Tensor, avail: torch.Tensor) -> torch.Tensor:
    """Per-agent negative log-likelihood of dataset actions. [..., n, A] -> [..., n]."""
    logp = masked_log_softmax(logits, avail)
    return -logp.gather(-1, actions[..., None])[..., 0]


def bc_loss_and_accuracy(logits, actions, avail, filled):
    """Mean per-agent NLL of dataset actions and greedy accuracy over real steps.

    logits, avail [B, T, n, A]; actions [B, T, n]; filled [B, T] -> (nll, accuracy) scalars
    """
    nll = masked_mean(bc_nll(logits, actions, avail).mean(-1), filled)
    return nll, greedy_accuracy(logits, actions, avail, filled)


def greedy_accuracy(logits, actions, avail, filled):
    """Fraction of real agent-steps where the greedy available action equals the dataset's."""
    hit = (logits.masked_fill(avail <= 0, NEG).argmax(-1) == actions).float().mean(-1)  # [B, T]
    return masked_mean(hit, filled)


@dataclass(frozen=True)
class LossTerms:
    """The named terms of one loss evaluation (scalars) and the statistics logged with them."""

    total: torch.Tensor  # what is minimised: td + cql, or bc
    td: torch.Tensor  # ½·E[(Q_tot(s, a^D) − G^λ)²]
    penalty: torch.Tensor  # mean penalty before α
    cql: torch.Tensor  # α · penalty
    bc: torch.Tensor  # behaviour cloning NLL (mode "bc" only)
    stats: Dict[str, torch.Tensor] = field(default_factory=dict)


def cfcql_loss(config, batch: Dict[str, torch.Tensor], fwd: Dict[str, torch.Tensor]) -> LossTerms:
    """The named terms of one step from the module's forward pass (``fwd``) and the batch.

    Mode ``"bc"``: the NLL of the data actions. Otherwise TD(λ) on Q_tot plus α times the
    penalty chosen by ``config.penalty``: counterfactual (λ-weighted per-agent LSE), joint (MACQL)
    or none (offline QMIX/VDN).
    """
    actions, filled = batch[K.ACTIONS], batch[K.FILLED]
    T = actions.shape[1]
    avail = batch[K.ACTION_MASK][:, :T]  # [B, T, n, A]
    q = fwd[K.Q_AGENTS][:, :T]
    stats: Dict[str, torch.Tensor] = {}
    if config.mode == "bc":
        bc, acc = bc_loss_and_accuracy(q, actions, avail, filled)
        stats[K.BC_LOSS] = bc
        stats[K.POLICY_ACCURACY] = acc
        zero = bc.new_zeros(())
        return LossTerms(total=bc, td=zero, penalty=zero, cql=zero, bc=bc, stats=stats)

    q_tot = fwd[K.Q_TOT_TAKEN]  # [B, T]
    targets = td_lambda_targets(
        batch[K.REWARD], batch[K.TERMINATED], filled, fwd[K.TARGET_Q_TOT_NEXT], config.gamma, config.td_lambda
    )
    td = 0.5 * masked_mean((q_tot - targets.detach()) ** 2, filled)
    n = avail.shape[-2]
    if config.penalty == "cf":
        if K.BEHAVIOUR_LOGITS in batch:
            kl = kl_mu_beta(fwd[K.CF_Q_TOT].detach(), batch[K.BEHAVIOUR_LOGITS], avail)  # [B, T, n]
            lam = lambda_weights(kl, config.cf_tau)
            stats[K.BETA_ACCURACY] = greedy_accuracy(batch[K.BEHAVIOUR_LOGITS], actions, avail, filled)
        else:
            lam = torch.full(q_tot.shape + (n,), 1.0 / n, device=q_tot.device)
        pen = cf_penalty(fwd[K.CF_Q_TOT], q_tot, avail, lam)
        ent = -(lam * torch.log(lam.clamp_min(1e-12))).sum(-1)
        stats[K.LAMBDA_ENTROPY] = masked_mean(ent, filled)
        stats[K.LAMBDA_MAX] = masked_mean(lam.max(-1).values, filled)
    elif config.penalty == "joint":
        pen = joint_penalty(fwd[K.JOINT_Q_TOT], fwd[K.JOINT_LOG_COUNT], q_tot)
    else:
        pen = torch.zeros_like(q_tot)
    penalty = masked_mean(pen, filled)
    cql = config.cql_alpha * penalty
    total = td + cql
    stats.update({
        K.TD_LOSS: td,
        K.PENALTY: penalty,
        K.CQL_LOSS: cql,
        K.PENALTY_TO_TD: cql.detach() / td.detach().clamp_min(1e-8),
        K.Q_TOT_MEAN: masked_mean(q_tot.detach(), filled),
        K.TARGET_MEAN: masked_mean(targets, filled),
    })
    return LossTerms(total=total, td=td, penalty=penalty, cql=cql, bc=td.new_zeros(()), stats=stats)
