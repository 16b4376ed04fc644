"""Networks of the continuous-action variant, batched over agents and twins.

Every "k independent MLPs of the same shape" (one actor per agent, the twin
critics, one twin pair per agent for independent critics) is a single
:class:`BatchedMLP` whose weights carry a leading ``k`` axis, so all of them
run in one ``baddbmm`` per layer instead of a Python loop.

The centralised critic's first layer is linear in the concatenated input
``[s, a_1, ..., a_n]``, so it is split into a state part and per-agent action
parts. Evaluating Q at many joint actions that differ from the dataset action
in one agent's slot (the counterfactual penalty and the counterfactual policy
step) then costs one small ``[d × H]`` product per sample instead of a full
first layer over the state.
"""

from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F


class BatchedLinear(nn.Module):
    """``k`` independent linear layers: x [k, B, in] -> [k, B, out]."""

    def __init__(self, k: int, in_dim: int, out_dim: int, init_range: float | None = None):
        super().__init__()
        bound = init_range if init_range is not None else 1.0 / math.sqrt(in_dim)
        self.weight = nn.Parameter(torch.empty(k, in_dim, out_dim).uniform_(-bound, bound))
        self.bias = nn.Parameter(torch.empty(k, 1, out_dim).uniform_(-bound, bound))

    def forward(self, x: torch.Tensor, detach: bool = False) -> torch.Tensor:
        w, b = (self.weight.detach(), self.bias.detach()) if detach else (self.weight, self.bias)
        return torch.baddbmm(b, x, w)


class BatchedMLP(nn.Module):
    """``k`` MLPs ``in -> hidden -> ... -> out`` with ReLU, batched on a leading axis."""

    def __init__(self, k: int, in_dim: int, hidden: int, out_dim: int, layers: int = 2, out_init: float | None = None):
        super().__init__()
        dims = [in_dim] + [hidden] * layers
        self.hidden_layers = nn.ModuleList(BatchedLinear(k, a, b) for a, b in zip(dims[:-1], dims[1:]))
        self.out = BatchedLinear(k, dims[-1], out_dim, init_range=out_init)
        self.k = k

    def tail(self, h: torch.Tensor, start: int = 1, detach: bool = False) -> torch.Tensor:
        """Continue from the pre-activation of hidden layer ``start - 1``: h [k, B, hidden]."""
        h = F.relu(h)
        for layer in self.hidden_layers[start:]:
            h = F.relu(layer(h, detach))
        return self.out(h, detach)

    def forward(self, x: torch.Tensor, detach: bool = False) -> torch.Tensor:
        return self.tail(self.hidden_layers[0](x, detach), 1, detach)


class Actors(nn.Module):
    """Deterministic tanh actors: obs [..., n, O] -> actions [..., n, d] in [-1, 1].

    ``shared=False``: one network per agent (the reference). ``shared=True``: one
    network for all agents, with the agent's one-hot id appended to its input.
    Agent i's action depends only on its own observation either way.
    """

    def __init__(self, n_agents: int, obs_dim: int, act_dim: int, hidden: int, shared: bool = False,
                 out_init: float = 3e-3):
        super().__init__()
        self.n, self.d, self.shared = n_agents, act_dim, shared
        in_dim = obs_dim + (n_agents if shared else 0)
        self.mlp = BatchedMLP(1 if shared else n_agents, in_dim, hidden, act_dim, out_init=out_init)

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self.pre_tanh(obs))

    def pre_tanh(self, obs: torch.Tensor) -> torch.Tensor:
        """The output layer before the tanh: obs [..., n, O] -> [..., n, d]."""
        lead = obs.shape[:-2]
        x = obs.reshape(-1, self.n, obs.shape[-1]).transpose(0, 1)  # [n, B, O]
        if self.shared:
            eye = torch.eye(self.n, device=obs.device, dtype=obs.dtype)[:, None].expand(-1, x.shape[1], -1)
            x = torch.cat([x, eye], -1).reshape(1, -1, x.shape[-1] + self.n)  # [1, n*B, O+n]
            y = self.mlp(x).reshape(self.n, -1, self.d)
        else:
            y = self.mlp(x)
        return y.transpose(0, 1).reshape(*lead, self.n, self.d)


class CentralTwinCritic(nn.Module):
    """Q_{1,2}(s, a_1..a_n) (TD3's twin critics) with a split first layer.

    ``first_state(s)`` [2, B, H] + ``first_action(a)`` [2, ..., B, H] is the
    first layer's pre-activation; ``tail`` finishes the network.
    """

    def __init__(self, n_agents: int, state_dim: int, act_dim: int, hidden: int, layers: int = 2):
        super().__init__()
        self.n, self.d, self.S, self.H = n_agents, act_dim, state_dim, hidden
        self.mlp = BatchedMLP(2, state_dim + n_agents * act_dim, hidden, 1, layers=layers)

    def _w(self, detach: bool):
        first = self.mlp.hidden_layers[0]
        w, b = (first.weight.detach(), first.bias.detach()) if detach else (first.weight, first.bias)
        return w[:, : self.S], w[:, self.S :], b  # [2, S, H], [2, n*d, H], [2, 1, H]

    def first_state(self, state: torch.Tensor, detach: bool = False) -> torch.Tensor:
        ws, _, b = self._w(detach)
        return torch.baddbmm(b, state[None].expand(2, -1, -1), ws)  # [2, B, H]

    def first_action(self, actions: torch.Tensor, detach: bool = False) -> torch.Tensor:
        """actions [..., B, n, d] -> [2, ..., B, H]."""
        _, wa, _ = self._w(detach)
        flat = actions.reshape(*actions.shape[:-2], self.n * self.d)
        return torch.einsum("...j,kjh->k...h", flat, wa)

    def tail(self, pre: torch.Tensor, detach: bool = False) -> torch.Tensor:
        """pre [2, ..., H] -> Q [2, ...]."""
        shape = pre.shape[:-1]
        return self.mlp.tail(pre.reshape(2, -1, self.H), 1, detach).reshape(shape)

    def forward(self, state: torch.Tensor, actions: torch.Tensor, detach: bool = False) -> torch.Tensor:
        """state [B, S], actions [B, n, d] -> [2, B]."""
        return self.tail(self.first_state(state, detach) + self.first_action(actions, detach), detach)

    def at_samples(self, state: torch.Tensor, samples: torch.Tensor, detach: bool = False) -> torch.Tensor:
        """Joint actions samples [M, B, n, d] -> Q [2, M, B] (the state part computed once)."""
        pre = self.first_state(state, detach)[:, None] + self.first_action(samples, detach)
        return self.tail(pre, detach)

    def counterfactual(self, state: torch.Tensor, data_actions: torch.Tensor, slot_actions: torch.Tensor,
                       detach: bool = False) -> torch.Tensor:
        """Q at a^D with agent i's slot replaced: slot_actions [M, B, n, d] (entry [m, b, i] is the
        action put in slot i) -> Q [2, M, B, n], entry [k, m, b, i] = Q_k(s_b, a^D_b with a_i := slot[m, b, i]).

        The first-layer pre-activation is base(s, a^D) + (a_i − a_i^D)·W_{a_i}: one [d × H] product per
        sample, laid out [2, n, M, B, H] so that every later op (bmm, ReLU, the broadcast's backward
        reduction over the leading axes) runs on contiguous memory."""
        _, wa, _ = self._w(detach)
        M, B, n, d = slot_actions.shape
        base = self.first_state(state, detach) + self.first_action(data_actions, detach)  # [2, B, H]
        diff = (slot_actions - data_actions[None]).permute(2, 0, 1, 3).reshape(n, M * B, d)  # [n, M*B, d]
        w = wa.reshape(2 * n, d, self.H)  # [(k, i), d, H]
        delta = torch.bmm(diff.repeat(2, 1, 1), w).reshape(2, n, M, B, self.H)
        q = self.tail(base[:, None, None] + delta, detach)  # [2, n, M, B]
        return q.permute(0, 2, 3, 1)


class IndependentTwinCritics(nn.Module):
    """Per-agent twin critics Q_{k,i}(o_i, a_i) (ICQL / OMAR): no central critic."""

    def __init__(self, n_agents: int, obs_dim: int, act_dim: int, hidden: int, layers: int = 2):
        super().__init__()
        self.n, self.d = n_agents, act_dim
        self.mlp = BatchedMLP(2 * n_agents, obs_dim + act_dim, hidden, 1, layers=layers)

    def forward(self, obs: torch.Tensor, actions: torch.Tensor, detach: bool = False) -> torch.Tensor:
        """obs [..., B, n, O] broadcastable against actions [..., B, n, d] -> Q [2, ..., B, n]."""
        lead = torch.broadcast_shapes(obs.shape[:-1], actions.shape[:-1])  # (..., B, n)
        x = torch.cat([obs.expand(*lead, obs.shape[-1]), actions.expand(*lead, self.d)], -1)
        x = x.reshape(-1, self.n, x.shape[-1]).transpose(0, 1)  # [n, R, O+d]
        q = self.mlp(x.repeat(2, 1, 1), detach)[..., 0]  # [2n, R]
        return q.reshape(2, self.n, -1).transpose(1, 2).reshape(2, *lead)


class ConditionalVAE(nn.Module):
    """Conditional VAE of the behaviour's joint action given the state, p(a | s).

    Encoder q(z | s, a) and decoder p(a | z, s) = N(tanh-mean(z, s), σ²) with a
    learned per-dimension σ, prior N(0, I). Trained on the ELBO (with
    ``kl_weight``); :meth:`agent_log_likelihood` estimates each agent's
    marginal log-likelihood by importance sampling.
    """

    def __init__(self, state_dim: int, n_agents: int, act_dim: int, hidden: int = 750, latent: int | None = None):
        super().__init__()
        self.n, self.d = n_agents, act_dim
        a_dim = n_agents * act_dim
        self.latent = int(latent or 2 * a_dim)
        self.enc = nn.Sequential(nn.Linear(state_dim + a_dim, hidden), nn.ReLU(), nn.Linear(hidden, hidden), nn.ReLU(),
                                 nn.Linear(hidden, 2 * self.latent))
        self.dec = nn.Sequential(nn.Linear(state_dim + self.latent, hidden), nn.ReLU(), nn.Linear(hidden, hidden),
                                 nn.ReLU(), nn.Linear(hidden, a_dim))
        self.log_std = nn.Parameter(torch.full((a_dim,), math.log(0.3)))

    def encode(self, state: torch.Tensor, actions: torch.Tensor):
        mu, log_std = self.enc(torch.cat([state, actions.flatten(-2)], -1)).chunk(2, -1)
        return mu, log_std.clamp(-6.0, 2.0)

    def decode_mean(self, state: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self.dec(torch.cat([state, z], -1)))

    def _dec_log_std(self) -> torch.Tensor:
        return self.log_std.clamp(-5.0, 1.0)

    def elbo_loss(self, state: torch.Tensor, actions: torch.Tensor, kl_weight: float) -> tuple[torch.Tensor, torch.Tensor]:
        """Returns (loss, reconstruction NLL)."""
        mu, log_std = self.encode(state, actions)
        z = mu + log_std.exp() * torch.randn_like(mu)
        mean = self.decode_mean(state, z)
        nll = -_normal_log_prob(actions.flatten(-2), mean, self._dec_log_std()).sum(-1).mean()
        kl = 0.5 * (mu.pow(2) + (2 * log_std).exp() - 1.0 - 2 * log_std).sum(-1).mean()
        return nll + kl_weight * kl, nll

    @torch.no_grad()
    def agent_log_likelihood(self, state: torch.Tensor, data_actions: torch.Tensor, agent_actions: torch.Tensor,
                             samples: int = 20) -> torch.Tensor:
        """log β̂_i(a_i | s) for every agent: state [B, S], data_actions / agent_actions [B, n, d] -> [B, n].

        For agent i the proposal is q(z | s, a^D with slot i := a_i); the decoder's
        Gaussian is diagonal given z, so agent i's marginal density is exact given z:
        log β̂_i = log (1/L) Σ_l N(a_i; μ_i(z_l, s), σ_i²)·p(z_l)/q(z_l | ·).
        """
        B, n, d = data_actions.shape
        eye = torch.eye(n, device=state.device, dtype=torch.bool)[:, None, :, None]  # [n(slot), 1, n, 1]
        joint = torch.where(eye, agent_actions[None], data_actions[None])  # [n, B, n, d]
        s = state[None].expand(n, -1, -1)
        mu, log_std = self.encode(s, joint)  # [n, B, Z]
        eps = torch.randn(samples, *mu.shape, device=state.device)
        z = mu + log_std.exp() * eps  # [L, n, B, Z]
        mean = self.decode_mean(s[None].expand(samples, -1, -1, -1), z).reshape(samples, n, B, n, d)
        idx = torch.arange(n, device=state.device)
        mean_i = mean[:, idx, :, idx]  # [n, L, B, d]: agent i's slot of the decoding for proposal i
        ls = self._dec_log_std().reshape(n, d)[:, None, None, :]
        log_px = _normal_log_prob(agent_actions.transpose(0, 1)[:, None], mean_i, ls).sum(-1)  # [n, L, B]
        log_pz = _normal_log_prob(z, torch.zeros_like(z), torch.zeros_like(z)).sum(-1)  # [L, n, B]
        log_qz = _normal_log_prob(z, mu[None], log_std[None]).sum(-1)
        w = log_px + (log_pz - log_qz).transpose(0, 1)  # [n, L, B]
        return (torch.logsumexp(w, 1) - math.log(samples)).transpose(0, 1)  # [B, n]


def _normal_log_prob(x: torch.Tensor, mean: torch.Tensor, log_std: torch.Tensor) -> torch.Tensor:
    return -0.5 * ((x - mean) / log_std.exp()).pow(2) - log_std - 0.5 * math.log(2 * math.pi)
