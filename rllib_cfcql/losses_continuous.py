"""Loss math of the continuous-action variant, as pure functions of tensors.

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

import torch


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
