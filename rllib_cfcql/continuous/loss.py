"""The continuous variant's loss: the maths as pure functions of tensors, and :func:`continuous_loss`,
which assembles them into named :class:`ContinuousLossTerms`.

docs/ALGORITHM.md. Shapes: ``B`` batch, ``n`` agents, ``d`` action dims per
agent, ``M`` sampled actions, ``K = 2`` twin critics.

Conservative penalty (CQL(H) with importance sampling). For one agent slot,
``log ∫ exp Q(s, a) da`` over the action box is estimated from samples
``a_j ~ p_g`` of several proposals ``g`` (uniform on [-1, 1]^d, current
policy + noise, next-state policy + noise), each corrected by *its own*
proposal's log-density:

    LSE_j (Q(s, a_j) − log p_{g(j)}(a_j)) − log M

which is the log of the average of the per-proposal importance-sampling
estimates (each unbiased for ∫ exp Q). For a uniform proposal on [-1, 1]^d,
−log p = d·log 2, so a constant Q = c gives exactly c + d·log 2 = log ∫ e^c.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Dict

import torch

from rllib_cfcql import keys as K


def uniform_log_density(d: int) -> float:
    """log density of the uniform distribution on [-1, 1]^d."""
    return -d * math.log(2.0)


def gaussian_log_density(x: torch.Tensor, mean: torch.Tensor, std: float) -> torch.Tensor:
    """log N(x; mean, std² I), summed over the last axis (clipping to the box is ignored)."""
    d = x.shape[-1]
    return -0.5 * ((x - mean) / std).pow(2).sum(-1) - d * (math.log(std) + 0.5 * math.log(2 * math.pi))


def sample_slot_actions(
    shape: tuple[int, ...], d: int, num: int, *, generator: torch.Generator | None = None,
    device=None, policy_means: list[torch.Tensor] = (), policy_std: float = 0.2,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Proposal samples for one action slot per ``shape`` entry.

    Returns (samples [M, *shape, d], log_density [M, *shape]) with ``num``
    uniform samples followed by ``num`` samples around each policy mean
    (``policy_means``: tensors [*shape, d]; actions clipped to [-1, 1]).
    """
    u = torch.rand((num, *shape, d), generator=generator, device=device) * 2.0 - 1.0
    parts, logp = [u], [torch.full((num, *shape), uniform_log_density(d), device=u.device)]
    for mean in policy_means:
        noise = torch.randn((num, *shape, d), generator=generator, device=u.device) * policy_std
        a = (mean.detach()[None] + noise).clamp(-1.0, 1.0)
        parts.append(a)
        # density of the proposal that drew them: N(mean, std²) (the clip is ignored, as in CQL)
        logp.append(gaussian_log_density(a, mean.detach()[None], policy_std))
    return torch.cat(parts, 0), torch.cat(logp, 0)


def is_logsumexp(q_samples: torch.Tensor, log_density: torch.Tensor, dim: int) -> torch.Tensor:
    """Importance-sampled log ∫ exp Q: LSE over ``dim`` of (Q − log p) − log M."""
    m = q_samples.shape[dim]
    return torch.logsumexp(q_samples - log_density, dim=dim) - math.log(m)


def cf_continuous_penalty(q_cf: torch.Tensor, log_density: torch.Tensor, q_data: torch.Tensor,
                          lam: torch.Tensor) -> torch.Tensor:
    """CFCQL's counterfactual penalty per critic and state.

    q_cf [K, M, B, n] (Q with agent i's slot at sample m, others at the data),
    log_density [M, B, n], q_data [K, B], lam [B, n] (rows sum to 1) -> [K, B]:
    Σ_i λ_i·(log ∫ exp Q(s, a^D_{-i}, ·)) − Q(s, a^D).
    """
    lse = is_logsumexp(q_cf, log_density[None], dim=1)  # [K, B, n]
    return (lam[None] * lse).sum(-1) - q_data


def joint_continuous_penalty(q_joint: torch.Tensor, log_density: torch.Tensor, q_data: torch.Tensor) -> torch.Tensor:
    """MACQL: q_joint [K, M, B] at sampled joint actions, log_density [M, B] -> [K, B]."""
    return is_logsumexp(q_joint, log_density[None], dim=1) - q_data


def independent_penalty(q_samples: torch.Tensor, log_density: torch.Tensor, q_data: torch.Tensor) -> torch.Tensor:
    """ICQL: per-agent CQL(H). q_samples [K, M, B, n], log_density [M, B, n], q_data [K, B, n] -> [K, B, n]."""
    return is_logsumexp(q_samples, log_density[None], dim=1) - q_data


def td3_target(reward: torch.Tensor, terminated: torch.Tensor, q_next: torch.Tensor, gamma: float) -> torch.Tensor:
    """y = r + γ(1 − terminated)·min_k Q̄_k(s', a'). q_next [K, B, ...] -> [B, ...]."""
    return reward + gamma * (1.0 - terminated) * q_next.min(0).values


def smoothed_target_actions(actions: torch.Tensor, noise_std: float, noise_clip: float,
                            generator: torch.Generator | None = None) -> torch.Tensor:
    """TD3 target policy smoothing: clip(π̄(o') + clip(N(0, σ²), ±c), −1, 1)."""
    noise = torch.randn(actions.shape, generator=generator, device=actions.device) * noise_std
    return (actions + noise.clamp(-noise_clip, noise_clip)).clamp(-1.0, 1.0)


def lambda_from_log_likelihood(log_lik: torch.Tensor, tau: float) -> torch.Tensor:
    """λ = softmax_i(τ · (−log β̂_i)): the agent whose policy action is least likely under the
    data gets the largest weight. τ = 0 gives uniform λ, τ = inf one-hot on the least likely."""
    n = log_lik.shape[-1]
    if tau == 0:
        return torch.full_like(log_lik, 1.0 / n)
    if math.isinf(tau):
        idx = (log_lik if tau > 0 else -log_lik).argmin(-1)
        return torch.nn.functional.one_hot(idx, n).to(log_lik.dtype)
    return torch.softmax(-tau * log_lik, dim=-1)


@dataclass(frozen=True)
class ContinuousLossTerms:
    """The named terms of one loss evaluation (scalars) and the statistics logged with them."""

    total: torch.Tensor  # critic + actor (they touch disjoint parameters)
    td: torch.Tensor  # Σ_k E[(Q_k(s, a^D) − y)²]
    penalty: torch.Tensor  # Σ_k E_s[penalty] before α
    critic: torch.Tensor  # td + α · penalty
    actor: torch.Tensor  # the actor objective (0 on critic-only steps)
    stats: Dict[str, torch.Tensor] = field(default_factory=dict)


def continuous_loss(config, batch: Dict[str, torch.Tensor], fwd: Dict[str, torch.Tensor]) -> ContinuousLossTerms:
    """The named terms of one step: critic (TD3 target + α · penalty) and, on actor steps
    (``batch[K.ACTOR_STEP]``), the actor objective. The two touch disjoint parameters (see the module)."""
    a_data = batch[K.ACTIONS][:, 0]  # [B, n, d]
    actor_step = bool(batch.get(K.ACTOR_STEP, True))
    zero = a_data.new_zeros(())
    obj = config.resolved_actor_objective
    stats: Dict[str, torch.Tensor] = {}
    pi = fwd.get(K.PI_ACTIONS)
    # Σ_i E‖π_i − a_i^D‖²: the BC objective, TD3+BC's anchor and the warm-up's objective
    bc = (pi - a_data).pow(2).sum(-1).mean(0).sum() if pi is not None else zero
    if obj == "bc":
        stats[K.BC_LOSS] = bc
        return ContinuousLossTerms(total=bc, td=zero, penalty=zero, critic=zero, actor=bc, stats=stats)

    # ---- critic
    q_data = fwd[K.Q_DATA]
    reward, term = batch[K.REWARD][:, 0], batch[K.TERMINATED][:, 0]  # [B]
    if q_data.dim() == 3:  # independent critics [2, B, n]: the team reward for every agent
        reward, term = reward[:, None], term[:, None]
    y = td3_target(reward, term, fwd[K.TARGET_Q_NEXT], config.gamma)
    td = (q_data - y[None]).pow(2).mean(dim=tuple(range(1, q_data.dim()))).sum()  # Σ_k E[(Q_k − y)²]
    if K.CF_Q in fwd:
        lam = fwd[K.LAMBDA]
        pen = cf_continuous_penalty(fwd[K.CF_Q], fwd[K.SAMPLE_LOG_DENSITY], q_data, lam)  # [2, B]
        stats[K.LAMBDA_MAX] = lam.max(-1).values.mean()
        stats[K.LAMBDA_ENTROPY] = -(lam * lam.clamp_min(1e-12).log()).sum(-1).mean()
    elif K.JOINT_Q in fwd:
        pen = joint_continuous_penalty(fwd[K.JOINT_Q], fwd[K.SAMPLE_LOG_DENSITY], q_data)  # [2, B]
    elif K.IND_Q in fwd:
        pen = independent_penalty(fwd[K.IND_Q], fwd[K.SAMPLE_LOG_DENSITY], q_data)  # [2, B, n]
    else:
        pen = torch.zeros_like(q_data)
    penalty = pen.mean(1).sum(0).sum()  # Σ_k (Σ_i for independent critics) E_s[...]
    critic_loss = td + config.cql_alpha * penalty
    stats.update({K.TD_LOSS: td, K.PENALTY: penalty, K.CRITIC_LOSS: critic_loss, K.Q_DATA_MEAN: q_data[0].mean().detach(),
                  K.TARGET_MEAN: y.mean(),
                  K.PENALTY_TO_TD: (config.cql_alpha * penalty).detach() / td.detach().clamp_min(1e-8)})
    total = critic_loss

    # ---- actor
    if actor_step:
        q_pi = fwd[K.ACTOR_Q]  # [B, n] per-agent objectives or [B] joint
        reg = config.actor_l2 * pi.pow(2).sum(-1).mean(0).sum()
        if config.actor_preact_l2:  # keeps a saturated tanh where its gradient is not zero
            reg = reg + config.actor_preact_l2 * fwd[K.PI_PREACT].pow(2).sum(-1).mean(0).sum()
        if batch.get(K.ACTOR_BC, False):  # warm-up (CQL's policy_eval_start): clone the data, the critic learns
            actor = bc + reg
        elif obj == "td3bc":
            scale = config.td3bc_alpha / q_pi.abs().mean().detach().clamp_min(1e-6)
            actor = -scale * q_pi.mean() + bc
        elif obj == "omar":
            c = config.omar_coe
            rect = (pi - fwd[K.OMAR_TARGET]).pow(2).sum(-1)  # [B, n]
            actor = ((1.0 - c) * -q_pi + c * rect).mean(0).sum() + reg
        elif q_pi.dim() == 2:  # counterfactual / independent: Σ_i E[−Q(agent i's action)]
            actor = -q_pi.mean(0).sum() + reg
        else:  # joint
            actor = -q_pi.mean() + reg
        stats[K.ACTOR_LOSS] = actor
        stats[K.ACTOR_Q_MEAN] = q_pi.mean().detach()
        total = total + actor
    else:
        actor = zero
        if pi is not None:  # DDP: the actor takes part in every backward pass; its update is skipped
            total = total + 0.0 * pi.sum()
    return ContinuousLossTerms(total=total, td=td, penalty=penalty, critic=critic_loss, actor=actor, stats=stats)
