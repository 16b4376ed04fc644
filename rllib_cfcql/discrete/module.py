"""The CFCQL RLModule for discrete actions (team as one RLlib agent).

Training (``forward_train``) evaluates everything the loss needs in one pass,
so that DDP sees every trainable parameter used: online per-agent utilities,
Q_tot at the dataset joint action, Double-Q target values, the
counterfactual Q_tot for every agent × action (vectorised, see
:meth:`QMixer.counterfactual`) and sampled joint-action values for MACQL.
β's logits for λ are not computed here: the learner precomputes them once per dataset shard.

Inference (``forward_inference``) is decentralised: agent i takes the greedy
available action of its own utility, computed from its own observation, its
previous action and its own recurrent state only.
"""

from __future__ import annotations

import copy
import math
from typing import Any, Dict

import numpy as np
import torch
import torch.nn.functional as F
from ray.rllib.core.columns import Columns
from ray.rllib.core.rl_module.apis import InferenceOnlyAPI
from ray.rllib.core.rl_module.torch.torch_rl_module import TorchRLModule
from ray.util import log_once

from rllib_cfcql import keys as K
from rllib_cfcql.core.config import default_model_config
from rllib_cfcql.discrete import config as variant_config
from rllib_cfcql.discrete.loss import NEG
from rllib_cfcql.discrete.nets import (
    AgentNet,
    build_agent_inputs,
    build_mixer,
    episode_agent_inputs,
)

# RLlib 2.60's RLModule.__init__ builds a deprecated RLModuleConfig for every module, new-style
# constructor or not, and warns about it once per process: nothing a user of this module can change
log_once("RLModule(config=[RLModuleConfig object])")

H_STATE = "h"
PREV_ACTION = "prev_action"


class DirectActionsMixin:
    """The modules compute actions directly (greedy / deterministic): no action distributions;
    exploration acts like inference (offline training never samples the env for data)."""

    def _forward_exploration(self, batch: Dict[str, Any], **kwargs) -> Dict[str, Any]:
        return self._forward_inference(batch, **kwargs)

    def get_inference_action_dist_cls(self):
        return None

    def get_exploration_action_dist_cls(self):
        return None

    def get_train_action_dist_cls(self):
        return None


class CFCQLTorchRLModule(DirectActionsMixin, TorchRLModule, InferenceOnlyAPI):
    def setup(self):
        cfg = {**default_model_config(variant_config.model_config), **(self.model_config or {})}
        self.cfg = cfg
        obs_space = self.observation_space
        self.n_agents, self.obs_dim = obs_space[K.OBS].shape
        self.state_dim = obs_space[K.STATE].shape[0]
        self.n_actions = int(self.action_space.nvec[0])
        in_dim = self.obs_dim + (self.n_actions if cfg["obs_last_action"] else 0) + (
            self.n_agents if cfg["obs_agent_id"] else 0
        )
        self.agent = AgentNet(in_dim, self.n_actions, cfg["hidden"], cfg["rnn"])
        if self.inference_only:
            return
        self.mixer = build_mixer(cfg["mixer"], self.n_agents, self.state_dim, cfg["mixer_embed"], cfg["hyper_hidden"])
        if cfg["mode"] == "bc":
            # unused by the BC loss: frozen, so DDP does not wait for its gradients
            self.mixer.requires_grad_(False)
        self.target_agent = copy.deepcopy(self.agent).requires_grad_(False)
        self.target_mixer = copy.deepcopy(self.mixer).requires_grad_(False)
        # beta: same architecture, trained by BC before CFCQL starts (never by the CFCQL loss)
        self.behaviour = AgentNet(in_dim, self.n_actions, cfg["hidden"], cfg["rnn"]).requires_grad_(False)

    # ---------------------------------------------------------------- inputs
    def episode_inputs(self, batch: Dict[str, torch.Tensor]) -> torch.Tensor:
        return episode_agent_inputs(
            batch[K.OBS], batch[K.ACTIONS], self.n_actions, self.cfg["obs_last_action"], self.cfg["obs_agent_id"]
        )

    # ---------------------------------------------------------------- training
    def _forward_train(self, batch: Dict[str, Any], **kwargs) -> Dict[str, Any]:
        cfg = self.cfg
        x = self.episode_inputs(batch)  # [B, T+1, n, in]
        avail = batch[K.ACTION_MASK]  # [B, T+1, n, A]
        actions = batch[K.ACTIONS]  # [B, T, n]
        state = batch[K.STATE]  # [B, T+1, S]
        T = actions.shape[1]
        q, _ = self.agent(x)  # [B, T+1, n, A]
        out = {K.Q_AGENTS: q}
        if cfg["mode"] == "bc":
            return out
        q_taken = q[:, :T].gather(-1, actions[..., None])[..., 0]  # [B, T, n]
        out[K.Q_TOT_TAKEN] = self.mixer(q_taken, state[:, :T])  # [B, T]
        with torch.no_grad():
            if K.TARGET_Q_AGENTS in batch:  # the learner's per-dataset cache (refreshed at every target copy)
                tq = batch[K.TARGET_Q_AGENTS]
            else:
                tq, _ = self.target_agent(x)  # [B, T+1, n, A]
            # Double Q: the online net picks the greedy *available* action, the target net evaluates it
            a_star = q.detach().masked_fill(avail <= 0, NEG).argmax(-1, keepdim=True)
            tq_star = tq.gather(-1, a_star)[..., 0]  # [B, T+1, n]
            out[K.TARGET_Q_TOT_NEXT] = self.target_mixer(tq_star[:, 1:], state[:, 1:])  # [B, T]
        if cfg["penalty"] == "cf":
            out[K.CF_Q_TOT] = self.mixer.counterfactual(q[:, :T], q_taken, state[:, :T])  # [B, T, n, A]
        elif cfg["penalty"] == "joint":
            out[K.JOINT_Q_TOT], out[K.JOINT_LOG_COUNT] = self._joint_values(q[:, :T], avail[:, :T], state[:, :T])
        return out

    def _joint_values(self, q: torch.Tensor, avail: torch.Tensor, state: torch.Tensor):
        """Q_tot at joint actions: all of them when |A|^n <= joint_samples, else
        joint_samples uniform draws from the available joint actions.

        q, avail [B, T, n, A] -> ([N, B, T], log-count [B, T])
        """
        n, A, N = self.n_agents, self.n_actions, int(self.cfg["joint_samples"])
        log_count = torch.log(avail.sum(-1).clamp_min(1.0)).sum(-1)  # [B, T]
        if A**n <= N:
            grid = torch.cartesian_prod(*[torch.arange(A, device=q.device)] * n).reshape(-1, n)  # [A^n, n]
            idx = grid[:, None, None, :].expand(-1, *q.shape[:2], n)  # [A^n, B, T, n]
            ok = avail.expand(idx.shape[0], *avail.shape).gather(-1, idx[..., None])[..., 0].prod(-1)  # [A^n, B, T]
            qs = q.expand(idx.shape[0], *q.shape).gather(-1, idx[..., None])[..., 0]  # [A^n, B, T, n]
            vals = self.mixer.sampled(qs, state)
            # exact enumeration: unavailable joint actions drop out; N·exp(...) cancels the −log N correction
            vals = vals.masked_fill(ok <= 0, NEG) + math.log(idx.shape[0]) - log_count
            return vals, log_count
        # uniform over each agent's available actions, independently
        probs = avail / avail.sum(-1, keepdim=True).clamp_min(1.0)  # [B, T, n, A]
        idx = torch.multinomial(probs.reshape(-1, A), N, replacement=True)  # [B*T*n, N]
        idx = idx.reshape(*q.shape[:3], N).permute(3, 0, 1, 2)  # [N, B, T, n]
        qs = q.expand(N, *q.shape).gather(-1, idx[..., None])[..., 0]  # [N, B, T, n]
        vals = self.mixer.sampled(qs, state)  # [N, B, T]
        if not self.cfg["joint_greedy_stratum"]:
            return vals, log_count
        # the greedy joint action a* (per-agent argmax: the argmax of a monotonic Q_tot) as an exact
        # stratum: Σ_a exp Q = exp Q(a*) + Σ_{a≠a*} exp Q, the rest estimated by the uniform draws
        # that are not a* (unbiased: C·mean_k exp Q(a_k)·1[a_k ≠ a*]). Without it, N draws out of
        # |A|^n almost never contain the action the max backup bootstraps from, and nothing pushes
        # its value down. joint_penalty computes logsumexp − log(N + 1) + log C over the N + 1 entries
        # returned, so entry 0 carries + log(N + 1) − log C and the draws + log((N + 1)/N).
        greedy = q.masked_fill(avail <= 0, NEG).argmax(-1)  # [B, T, n]
        q_star = self.mixer.sampled(q.gather(-1, greedy[..., None])[..., 0][None], state)  # [1, B, T]
        vals = vals.masked_fill((idx == greedy[None]).all(-1), NEG) + math.log((N + 1) / N)
        return torch.cat([q_star + math.log(N + 1) - log_count[None], vals]), log_count

    @torch.no_grad()
    def target_utilities(self, batch: Dict[str, torch.Tensor]) -> torch.Tensor:
        """Target network's per-agent utilities on dataset episodes [B, T+1, n, A]."""
        return self.target_agent(self.episode_inputs(batch))[0]

    @torch.no_grad()
    def behaviour_logits(self, batch: Dict[str, torch.Tensor]) -> torch.Tensor:
        """β's logits on dataset episodes [B, T, n, A]. β sees only dataset inputs, so
        the learner evaluates it once per dataset instead of once per gradient step."""
        T = batch[K.ACTIONS].shape[1]
        return self.behaviour(self.episode_inputs(batch))[0][:, :T]

    # ---------------------------------------------------------------- acting
    def is_stateful(self) -> bool:
        return bool(self.cfg["rnn"] or self.cfg["obs_last_action"])

    def get_initial_state(self) -> Dict[str, Any]:
        if not self.is_stateful():
            return {}
        return {
            H_STATE: np.zeros((self.n_agents, self.cfg["hidden"]), np.float32),
            PREV_ACTION: np.zeros((self.n_agents, self.n_actions), np.float32),
        }

    def greedy_step(self, obs: torch.Tensor, avail: torch.Tensor, state_in: Dict[str, torch.Tensor] | None):
        """obs [B, n, O], avail [B, n, A] -> (actions [B, n], state_out)."""
        prev = state_in[PREV_ACTION] if state_in else None
        x = build_agent_inputs(
            obs[:, None], None if prev is None else prev[:, None], self.cfg["obs_last_action"], self.cfg["obs_agent_id"]
        )  # [B, 1, n, in]
        h0 = state_in[H_STATE] if (state_in and self.cfg["rnn"]) else None
        q, h = self.agent(x, h0)
        actions = q[:, 0].masked_fill(avail <= 0, NEG).argmax(-1)  # [B, n]
        state_out = {}
        if self.is_stateful():
            state_out = {
                H_STATE: h if h is not None else state_in[H_STATE],
                PREV_ACTION: F.one_hot(actions, self.n_actions).to(obs.dtype),
            }
        return actions, state_out

    def _forward_inference(self, batch: Dict[str, Any], **kwargs) -> Dict[str, Any]:
        team_obs = batch[Columns.OBS]
        obs, avail = team_obs[K.OBS], team_obs[K.ACTION_MASK]
        time_rank = obs.dim() == 4  # stateful modules get [B, T=1, ...] from the env-to-module connector
        if time_rank:
            obs, avail = obs[:, 0], avail[:, 0]
        with torch.no_grad():
            actions, state_out = self.greedy_step(obs, avail, batch.get(Columns.STATE_IN))
        out = {Columns.ACTIONS: actions[:, None] if time_rank else actions}
        if self.is_stateful():
            out[Columns.STATE_OUT] = state_out
        return out

    # ---------------------------------------------------------------- targets
    @torch.no_grad()
    def sync_targets(self) -> None:
        """Hard copy of the online networks into the target networks."""
        self.target_agent.load_state_dict(self.agent.state_dict())
        self.target_mixer.load_state_dict(self.mixer.state_dict())

    def get_non_inference_attributes(self) -> list[str]:
        return ["mixer", "target_agent", "target_mixer", "behaviour"]

