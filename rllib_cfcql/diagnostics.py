"""Training diagnostics: is the learned value conservative, and where does the greedy policy go?

Every ``train()`` iteration each learner evaluates, on a fixed set of its dataset's episodes
(``diagnostics_episodes``, the first of its shard; 0 turns them off), and logs under
``learners/default_policy/diag_*``:

* ``diag_q_data`` — mean learned value at the dataset's own actions: Q_tot(s, a^D) (discrete) or
  the first critic Q_1(s, a^D) (continuous), over every logged step of the set;
* ``diag_mc_return`` — the discounted Monte-Carlo return from the same steps, Σ_k γ^k r_{t+k} up
  to the episode's end (no bootstrap), and ``diag_q_minus_mc`` the mean gap. A conservative method
  should sit below it, a method without penalty above it. The MC return stops at a time limit, so
  for truncated episodes it misses γ^{L−t}·V(s_L): ``diag_tail_weight`` is the mean γ^{L−t} over the
  steps of truncated episodes (0 where every episode terminated), the share of value the comparison
  cannot see, and ``diag_q_minus_mc_resolved`` the gap on the steps where that share is at most
  ``RESOLVED_TAIL`` (NaN where there are none: with γ = 0.99 and 25-step time limits, no step
  qualifies, and Q above the MC return is then no evidence of over-estimation);
* ``diag_q_greedy`` — mean value of the greedy (policy) joint action; ``diag_greedy_in_data`` the
  fraction of steps where the greedy joint action *is* the logged one, and on those steps
  ``diag_q_greedy_minus_mc`` (NaN when there are none);
* ``diag_agent_agreement`` — fraction of per-agent greedy actions equal to the logged action
  (continuous: within ``SUPPORT_RADIUS`` in every dimension);
* discrete with β: ``diag_beta_support`` — fraction of per-agent greedy actions to which the
  behaviour model gives at least ``SUPPORT_PROB`` probability (the policy stays where the data
  has support), and ``diag_beta_prob`` their mean β probability;
* ``penalty_to_td`` (per gradient step, from the loss): α·penalty / TD loss.
"""

from __future__ import annotations

from typing import Dict

import torch

from rllib_cfcql import keys as K
from rllib_cfcql.discrete.loss import NEG, masked_log_softmax, masked_mean

#: β probability at or above which a greedy action counts as supported by the data
SUPPORT_PROB = 0.01
#: a step's MC return "resolves" its value when the unseen tail weight γ^{L−t} is at most this
RESOLVED_TAIL = 0.05
#: continuous: |π_i(o_i) − a_i^D| ≤ this in every dimension counts as the logged action
SUPPORT_RADIUS = 0.1
# |π| at or above this is a saturated tanh (its gradient 1 − π² ≤ 0.02): the actor can hardly move back
SATURATION = 0.99


def mc_returns(reward: torch.Tensor, filled: torch.Tensor, gamma: float) -> torch.Tensor:
    """Discounted return-to-go within each logged episode: G_t = r_t + γ·G_{t+1}, G = 0 past the end.

    reward, filled [E, T] -> [E, T] (0 on padding).
    """
    G = torch.zeros_like(reward)
    running = torch.zeros_like(reward[:, 0])
    for t in range(reward.shape[1] - 1, -1, -1):
        running = (reward[:, t] + gamma * running) * filled[:, t]
        G[:, t] = running
    return G


def tail_weights(filled: torch.Tensor, terminated: torch.Tensor, gamma: float) -> torch.Tensor:
    """γ^{L−t} for the steps of episodes cut by a time limit (0 in terminated episodes). [E, T]."""
    lengths = filled.sum(1, keepdim=True)
    t = torch.arange(filled.shape[1], device=filled.device, dtype=filled.dtype)[None]
    ended = (terminated * filled).sum(1, keepdim=True) > 0
    w = torch.pow(torch.as_tensor(gamma, dtype=filled.dtype, device=filled.device), lengths - t)
    return w * filled * (~ended).to(filled.dtype)


def _gap_on(mask: torch.Tensor, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    if mask.sum() == 0:
        return torch.tensor(float("nan"), device=a.device)
    return masked_mean(a - b, mask)


@torch.no_grad()
def discrete_diagnostics(module, batch: Dict[str, torch.Tensor], mc: torch.Tensor, tail: torch.Tensor) -> Dict[str, torch.Tensor]:
    """Diagnostics of the mixer variant on whole episodes (``batch`` from ``EpisodeStore.episodes``)."""
    actions, filled = batch[K.ACTIONS], batch[K.FILLED]
    T = actions.shape[1]
    avail = batch[K.ACTION_MASK][:, :T]
    state = batch[K.STATE][:, :T]
    q, _ = module.agent(module.episode_inputs(batch))
    q = q[:, :T]  # [B, T, n, A]
    greedy = q.masked_fill(avail <= 0, NEG).argmax(-1)  # [B, T, n]
    out: Dict[str, torch.Tensor] = {}
    agree = (greedy == actions).float()  # [B, T, n]
    out[K.DIAG_AGENT_AGREEMENT] = masked_mean(agree.mean(-1), filled)
    if module.cfg["mode"] != "bc":
        q_data = module.mixer(q.gather(-1, actions[..., None])[..., 0], state)  # [B, T]
        q_greedy = module.mixer(q.gather(-1, greedy[..., None])[..., 0], state)
        joint = agree.prod(-1) * filled  # the greedy joint action is the logged one
        out.update({
            K.DIAG_Q_DATA: masked_mean(q_data, filled),
            K.DIAG_Q_GREEDY: masked_mean(q_greedy, filled),
            K.DIAG_Q_MINUS_MC: masked_mean(q_data - mc, filled),
            K.DIAG_Q_MINUS_MC_RESOLVED: _gap_on(filled * (tail <= RESOLVED_TAIL), q_data, mc),
            K.DIAG_GREEDY_IN_DATA: masked_mean(joint, filled),
            K.DIAG_Q_GREEDY_MINUS_MC: _gap_on(joint, q_greedy, mc),
        })
    out[K.DIAG_MC_RETURN] = masked_mean(mc, filled)
    out[K.DIAG_TAIL_WEIGHT] = (tail.sum() / filled.sum().clamp_min(1.0))
    if K.BEHAVIOUR_LOGITS in batch:
        p = masked_log_softmax(batch[K.BEHAVIOUR_LOGITS], avail).exp()
        p_greedy = p.gather(-1, greedy[..., None])[..., 0]  # [B, T, n]
        out[K.DIAG_BETA_SUPPORT] = masked_mean((p_greedy >= SUPPORT_PROB).float().mean(-1), filled)
        out[K.DIAG_BETA_PROB] = masked_mean(p_greedy.mean(-1), filled)
    return out


@torch.no_grad()
def continuous_diagnostics(module, obs: torch.Tensor, state: torch.Tensor, actions: torch.Tensor,
                           mc: torch.Tensor, tail: torch.Tensor) -> Dict[str, torch.Tensor]:
    """Diagnostics of the actor-critic variant on dataset steps: obs [N, n, O], state [N, S],
    actions [N, n, d], mc and tail [N]."""
    pi = module.actor(obs)  # [N, n, d]
    agree = ((pi - actions).abs() <= SUPPORT_RADIUS).all(-1).float()  # [N, n]
    out = {K.DIAG_AGENT_AGREEMENT: agree.mean(), K.DIAG_MC_RETURN: mc.mean(), K.DIAG_TAIL_WEIGHT: tail.mean(),
           K.DIAG_ACTOR_SATURATION: (pi.abs() >= SATURATION).float().mean()}
    if not hasattr(module, "critic"):
        return out
    central = module.cfg["critic"] == "central"
    crit = (lambda a: module.critic(state, a)[0]) if central else (lambda a: module.critic(obs, a)[0].mean(-1))
    q_data, q_pi = crit(actions), crit(pi)  # [N]
    joint = agree.prod(-1)
    out.update({
        K.DIAG_Q_DATA: q_data.mean(),
        K.DIAG_Q_GREEDY: q_pi.mean(),
        K.DIAG_Q_MINUS_MC: (q_data - mc).mean(),
        K.DIAG_Q_MINUS_MC_RESOLVED: _gap_on((tail <= RESOLVED_TAIL).float(), q_data, mc),
        K.DIAG_GREEDY_IN_DATA: joint.mean(),
        K.DIAG_Q_GREEDY_MINUS_MC: _gap_on(joint, q_pi, mc),
    })
    return out
