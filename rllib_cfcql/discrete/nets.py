"""Networks: the parameter-shared agent network and the mixers.

Shapes use ``B`` batch, ``T`` time, ``n`` agents, ``A`` actions, ``S`` state,
``E`` mixer embedding.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F


def previous_actions_onehot(actions: torch.Tensor, obs: torch.Tensor, n_actions: int) -> torch.Tensor:
    """actions [B, T, n], obs [B, T+1, n, O] -> one-hot previous action [B, T+1, n, A].

    The previous action at step t is the action of step t-1 (zeros at t = 0).
    """
    B, T1, n = obs.shape[:3]
    prev = torch.zeros(B, T1, n, n_actions, device=obs.device, dtype=obs.dtype)
    prev[:, 1:] = F.one_hot(actions, n_actions).to(obs.dtype)
    return prev


def build_agent_inputs(obs: torch.Tensor, prev_onehot: torch.Tensor | None, last_action: bool, agent_id: bool) -> torch.Tensor:
    """obs [B, T, n, O] ⊕ previous action one-hot ⊕ agent id one-hot -> [B, T, n, in]."""
    parts = [obs]
    if last_action:
        parts.append(prev_onehot)
    if agent_id:
        B, T, n, _ = obs.shape
        parts.append(torch.eye(n, device=obs.device, dtype=obs.dtype).expand(B, T, n, n))
    return torch.cat(parts, dim=-1)


def episode_agent_inputs(obs: torch.Tensor, actions: torch.Tensor, n_actions: int, last_action: bool, agent_id: bool) -> torch.Tensor:
    """Agent inputs for whole episodes: obs [B, T+1, n, O], actions [B, T, n]."""
    prev = previous_actions_onehot(actions, obs, n_actions) if last_action else None
    return build_agent_inputs(obs, prev, last_action, agent_id)


class AgentNet(nn.Module):
    """Per-agent utility (or logits) network, parameters shared across agents.

    Input per agent: own observation ⊕ one-hot previous action (optional) ⊕
    one-hot agent id. ``rnn=True``: Linear→ReLU→GRU→Linear, unrolled over the
    whole episode from a zero hidden state (the reference architecture);
    ``rnn=False``: Linear→ReLU→Linear→ReLU→Linear.
    """

    def __init__(self, input_dim: int, n_actions: int, hidden: int = 64, rnn: bool = True):
        super().__init__()
        self.rnn = rnn
        self.hidden = hidden
        self.fc1 = nn.Linear(input_dim, hidden)
        if rnn:
            self.gru = nn.GRU(hidden, hidden, batch_first=True)
        else:
            self.fc_mid = nn.Linear(hidden, hidden)
        self.fc2 = nn.Linear(hidden, n_actions)

    def forward(self, x: torch.Tensor, h0: torch.Tensor | None = None):
        """x: [B, T, n, in] -> (out [B, T, n, A], h_last [B, n, H] or None)."""
        B, T, n, _ = x.shape
        z = F.relu(self.fc1(x))
        if self.rnn:
            # [B, T, n, H] -> [B*n, T, H]: one GRU sequence per agent
            z = z.permute(0, 2, 1, 3).reshape(B * n, T, self.hidden)
            h = None if h0 is None else h0.reshape(1, B * n, self.hidden).contiguous()
            z, h_last = self.gru(z, h)
            z = z.reshape(B, n, T, self.hidden).permute(0, 2, 1, 3)
            return self.fc2(z), h_last.reshape(B, n, self.hidden)
        z = F.relu(self.fc_mid(z))
        return self.fc2(z), None


class _QMixCounterfactual(torch.autograd.Function):
    """Fused QMIX counterfactual evaluation with a hand-written backward.

    P = pre ⊕ δ ⊗ W1 (per agent i, action j, embedding e), H = ELU(P),
    out = H · w2. Only H is kept for backward: ELU'(P) = 1 where H > 0 and
    H + 1 = exp(P) elsewhere, i.e. min(H + 1, 1). This cuts the memory
    traffic of the plain autograd version, which dominates the cost of the
    exact counterfactual penalty (M·n·A·E elements per step).
    """

    @staticmethod
    def forward(ctx, pre, delta, w1, w2):
        # pre [M, E], delta [M, n, A], w1 [M, n, E], w2 [M, E]
        M, n, A = delta.shape
        # outer product then in-place add: faster than a 3-way broadcast addcmul on CPU
        H = delta[..., None] * w1[:, :, None, :]  # [M, n, A, E]
        H.add_(pre[:, None, None, :])
        F.elu(H, inplace=True)
        out = (H * w2[:, None, None, :]).sum(-1)  # [M, n, A]
        ctx.save_for_backward(H, delta, w1, w2)
        return out

    @staticmethod
    def backward(ctx, g):
        H, delta, w1, w2 = ctx.saved_tensors
        M, n, A, E = H.shape
        g = g.contiguous()
        # dL/dw2 = Σ_{i,j} g·H
        d_w2 = torch.bmm(g.view(M, 1, n * A), H.view(M, n * A, E)).view(M, E)
        # dL/dP = g·w2·ELU'(P)
        D = H.add(1.0).clamp_max_(1.0)
        D.mul_(g[..., None]).mul_(w2[:, None, None, :])
        d_pre = D.sum(dim=(1, 2))
        d_delta = torch.bmm(D.view(M * n, A, E), w1.reshape(M * n, E, 1)).view(M, n, A)
        d_w1 = (D * delta[..., None]).sum(2)  # [M, n, E]
        return d_pre, d_delta, d_w1, d_w2


class VDNMixer(nn.Module):
    """Q_tot = Σ_i Q_i."""

    def forward(self, q: torch.Tensor, state: torch.Tensor) -> torch.Tensor:
        """q: [..., n], state: [..., S] -> [...]."""
        return q.sum(-1)

    def counterfactual(self, q_all: torch.Tensor, q_taken: torch.Tensor, state: torch.Tensor) -> torch.Tensor:
        """Q_tot with agent i's slot set to action j, others at their taken actions.

        q_all [..., n, A], q_taken [..., n] -> [..., n, A]
        """
        return q_taken.sum(-1)[..., None, None] + (q_all - q_taken[..., None])

    def sampled(self, q_samples: torch.Tensor, state: torch.Tensor) -> torch.Tensor:
        """q_samples [N, ..., n] -> [N, ...]."""
        return q_samples.sum(-1)


class QMixer(nn.Module):
    """QMIX monotonic mixer with state-conditioned hypernetworks (reference sizes).

    Q_tot = ELU(q·|W1(s)| + b1(s)) · |w2(s)| + b2(s)
    """

    def __init__(self, n_agents: int, state_dim: int, embed: int = 32, hyper_hidden: int = 64):
        super().__init__()
        self.n_agents, self.embed = n_agents, embed
        self.hyper_w1 = nn.Sequential(nn.Linear(state_dim, hyper_hidden), nn.ReLU(), nn.Linear(hyper_hidden, n_agents * embed))
        self.hyper_b1 = nn.Linear(state_dim, embed)
        self.hyper_w2 = nn.Sequential(nn.Linear(state_dim, hyper_hidden), nn.ReLU(), nn.Linear(hyper_hidden, embed))
        self.hyper_b2 = nn.Sequential(nn.Linear(state_dim, embed), nn.ReLU(), nn.Linear(embed, 1))

    def _weights(self, state: torch.Tensor):
        lead = state.shape[:-1]
        w1 = self.hyper_w1(state).abs().reshape(*lead, self.n_agents, self.embed)  # [..., n, E]
        b1 = self.hyper_b1(state)  # [..., E]
        w2 = self.hyper_w2(state).abs()  # [..., E]
        b2 = self.hyper_b2(state)[..., 0]  # [...]
        return w1, b1, w2, b2

    def forward(self, q: torch.Tensor, state: torch.Tensor) -> torch.Tensor:
        w1, b1, w2, b2 = self._weights(state)
        pre = (q[..., None] * w1).sum(-2) + b1  # [..., E]
        return (F.elu(pre) * w2).sum(-1) + b2

    def counterfactual(self, q_all: torch.Tensor, q_taken: torch.Tensor, state: torch.Tensor) -> torch.Tensor:
        """Exact Q_tot(s, a^D with slot i := j) for all i, j, in O(n·A·E) per state.

        The first layer is linear in q, so changing slot i only shifts the
        pre-activation by W1[i]·(q_i(j) − q_i(a_i)); the mixer is never re-run
        per agent (the reference re-runs it n·A times, O(n²·A·E)).
        q_all [..., n, A], q_taken [..., n] -> [..., n, A]
        """
        w1, b1, w2, b2 = self._weights(state)
        lead = q_taken.shape[:-1]
        pre = (q_taken[..., None] * w1).sum(-2) + b1  # [..., E]
        delta = q_all - q_taken[..., None]  # [..., n, A]
        M = int(np.prod(lead)) if lead else 1  # flatten leading dims: [..., X] -> [M, X]
        out = _QMixCounterfactual.apply(
            pre.reshape(M, self.embed),
            delta.reshape(M, self.n_agents, -1),
            w1.reshape(M, self.n_agents, self.embed),
            w2.reshape(M, self.embed),
        )
        return out.reshape(*lead, self.n_agents, -1) + b2[..., None, None]

    def counterfactual_reference(self, q_all: torch.Tensor, q_taken: torch.Tensor, state: torch.Tensor) -> torch.Tensor:
        """Plain-autograd version of :meth:`counterfactual` (for tests)."""
        w1, b1, w2, b2 = self._weights(state)
        pre = (q_taken[..., None] * w1).sum(-2) + b1
        delta = q_all - q_taken[..., None]
        # [..., 1, 1, E] + [..., n, A, 1] * [..., n, 1, E] -> [..., n, A, E]
        pre_cf = pre[..., None, None, :] + delta[..., None] * w1[..., :, None, :]
        return (F.elu(pre_cf) * w2[..., None, None, :]).sum(-1) + b2[..., None, None]

    def sampled(self, q_samples: torch.Tensor, state: torch.Tensor) -> torch.Tensor:
        """q_samples [N, ..., n] at one state per [...] -> [N, ...]; hypernets run once."""
        w1, b1, w2, b2 = self._weights(state)
        pre = (q_samples[..., None] * w1).sum(-2) + b1
        return (F.elu(pre) * w2).sum(-1) + b2


def build_mixer(kind: str, n_agents: int, state_dim: int, embed: int, hyper_hidden: int) -> nn.Module:
    if kind == "qmix":
        return QMixer(n_agents, state_dim, embed, hyper_hidden)
    if kind == "vdn":
        return VDNMixer()
    raise ValueError(f"mixer must be 'qmix' or 'vdn', got {kind!r}")
