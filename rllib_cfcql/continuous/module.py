"""The CFCQL RLModule for continuous actions (docs/ALGORITHM.md, "Reference settings").

Deterministic tanh actors (one per agent, or shared) act from their own
observations; a centralised twin critic Q_{1,2}(s, a_1..a_n) (or, for the
ICQL/OMAR baselines, per-agent twin critics Q_{1,2,i}(o_i, a_i)) is trained
with TD3-style smoothed targets and a conservative penalty.

``forward_train`` returns every tensor the loss needs for one gradient step:
critic values at the data, the target critics at the next state, penalty samples and — on
actor steps (``batch[K.ACTOR_STEP]``, set by the learner) —
the actor objective, evaluated through *detached* critic weights so the
actor term can never move the critic (and the critic terms never see the
actors' outputs except through detached samples). The learner composes the
loss from these (:func:`rllib_cfcql.continuous.loss.continuous_loss`).
"""

from __future__ import annotations

import copy
from typing import Any, Dict

import torch
from ray.rllib.core.columns import Columns
from ray.rllib.core.rl_module.apis import InferenceOnlyAPI
from ray.rllib.core.rl_module.torch.torch_rl_module import TorchRLModule

from rllib_cfcql import keys as K
from rllib_cfcql.continuous import config as variant_config
from rllib_cfcql.continuous import loss as LC
from rllib_cfcql.continuous.nets import (
    Actors,
    CentralTwinCritic,
    ConditionalVAE,
    IndependentTwinCritics,
)
from rllib_cfcql.core.config import default_model_config
from rllib_cfcql.discrete.module import DirectActionsMixin


class ContinuousCFCQLTorchRLModule(DirectActionsMixin, TorchRLModule, InferenceOnlyAPI):
    def setup(self):
        cfg = {**default_model_config(variant_config.model_config), **(self.model_config or {})}
        self.cfg = cfg
        self.n_agents, self.obs_dim = self.observation_space[K.OBS].shape
        self.state_dim = self.observation_space[K.STATE].shape[0]
        self.act_dim = int(self.action_space.shape[-1])
        n, O, S, d = self.n_agents, self.obs_dim, self.state_dim, self.act_dim
        self.actor = Actors(n, O, d, cfg["actor_hidden"], shared=cfg["shared_actor"])
        if self.inference_only:
            return
        if cfg["critic"] == "central":
            self.critic = CentralTwinCritic(n, S, d, cfg["critic_hidden"])
        else:
            self.critic = IndependentTwinCritics(n, O, d, cfg["critic_hidden"])
        if cfg["actor_objective"] == "bc":  # behaviour cloning trains the actors only
            self.critic.requires_grad_(False)
        self.target_actor = copy.deepcopy(self.actor).requires_grad_(False)
        self.target_critic = copy.deepcopy(self.critic).requires_grad_(False)
        # behaviour density for λ: pre-trained before CFCQL starts, never trained by its loss
        self.vae = (
            ConditionalVAE(S, n, d, cfg["vae_hidden"], cfg["vae_latent"]).requires_grad_(False)
            if cfg["lambda_model"] == "vae" else None
        )

    # ---------------------------------------------------------------- training
    def _forward_train(self, batch: Dict[str, Any], **kwargs) -> Dict[str, Any]:
        cfg = self.cfg
        obs, state = batch[K.OBS][:, 0], batch[K.STATE][:, 0]  # [B, n, O], [B, S]
        next_obs, next_state = batch[K.OBS][:, 1], batch[K.STATE][:, 1]
        a_data = batch[K.ACTIONS][:, 0]  # [B, n, d]
        out: Dict[str, torch.Tensor] = {}
        central = cfg["critic"] == "central"
        actor_step = bool(batch.get(K.ACTOR_STEP, True))

        pi = None
        if actor_step or batch.get(K.TOUCH_ACTOR, False) or cfg["actor_objective"] == "bc":
            pre = self.actor.pre_tanh(obs)  # [B, n, d], with gradient (actor term only)
            pi = torch.tanh(pre)
            out[K.PI_ACTIONS], out[K.PI_PREACT] = pi, pre
        if cfg["actor_objective"] == "bc":
            return out

        # --- critic at the data; target critics at the next state (the loss builds the TD3 target)
        out[K.Q_DATA] = self.critic(state, a_data) if central else self.critic(obs, a_data)  # [2, B] | [2, B, n]
        with torch.no_grad():
            a_next = LC.smoothed_target_actions(self.target_actor(next_obs), cfg["target_noise"], cfg["target_noise_clip"])
            out[K.TARGET_Q_NEXT] = (self.target_critic(next_state, a_next) if central  # [2, B]
                                    else self.target_critic(next_obs, a_next))  # [2, B, n]

        # --- conservative penalty samples (no gradient to the actors: samples are detached)
        if cfg["penalty"] != "none":
            B, n, d = a_data.shape
            means = []
            if cfg["cql_policy_samples"]:
                with torch.no_grad():
                    means = [pi.detach() if pi is not None else self.actor(obs), self.actor(next_obs)]
            if central and cfg["penalty"] == "cf":
                samples, logp = LC.sample_slot_actions((B, n), d, cfg["cql_samples"], device=obs.device,
                                                       policy_means=means, policy_std=cfg["cql_policy_std"])
                out[K.CF_Q] = self.critic.counterfactual(state, a_data, samples)  # [2, M, B, n]
                out[K.SAMPLE_LOG_DENSITY] = logp  # [M, B, n]
                out[K.LAMBDA] = self._lambda(state, obs, a_data, pi)
            elif central:  # MACQL: joint samples; the joint density is the product over agents
                samples, logp = LC.sample_slot_actions((B, n), d, cfg["cql_samples"], device=obs.device,
                                                       policy_means=means, policy_std=cfg["cql_policy_std"])
                out[K.JOINT_Q] = self.critic.at_samples(state, samples)  # [2, M, B]
                out[K.SAMPLE_LOG_DENSITY] = logp.sum(-1)  # [M, B]
            else:  # ICQL / OMAR: each agent's own critic over its own action
                samples, logp = LC.sample_slot_actions((B, n), d, cfg["cql_samples"], device=obs.device,
                                                       policy_means=means, policy_std=cfg["cql_policy_std"])
                out[K.IND_Q] = self.critic(obs[None], samples)  # [2, M, B, n]
                out[K.SAMPLE_LOG_DENSITY] = logp  # [M, B, n]

        # --- actor objective through detached critic weights
        if actor_step:
            obj = cfg["actor_objective"]
            if obj == "counterfactual":  # agent i's action in the data joint action, others at the data
                out[K.ACTOR_Q] = self.critic.counterfactual(state, a_data, pi[None], detach=True)[0, 0]  # [B, n]
            elif obj in ("joint", "td3bc"):
                out[K.ACTOR_Q] = self.critic(state, pi, detach=True)[0]  # [B]
            else:  # independent, omar
                out[K.ACTOR_Q] = self.critic(obs, pi, detach=True)[0]  # [B, n]
                if obj == "omar":
                    out[K.OMAR_TARGET] = self._omar_search(obs, pi.detach())
        return out

    @torch.no_grad()
    def _lambda(self, state, obs, a_data, pi) -> torch.Tensor:
        B, n = a_data.shape[:2]
        if self.vae is None or self.cfg["cf_tau"] == 0:
            return torch.full((B, n), 1.0 / n, device=state.device)
        pi = pi.detach() if pi is not None else self.actor(obs)
        log_lik = self.vae.agent_log_likelihood(state, a_data, pi, self.cfg["vae_samples"])
        return LC.lambda_from_log_likelihood(log_lik, float(self.cfg["cf_tau"]))

    @torch.no_grad()
    def _omar_search(self, obs: torch.Tensor, mu: torch.Tensor) -> torch.Tensor:
        """OMAR's zeroth-order rectification: iterative Gaussian (CEM-style) search around the
        policy action for a higher Q_{1,i}(o_i, ·); returns the best action found [B, n, d]."""
        cfg = self.cfg
        best_a = mu
        best_q = self.critic(obs, mu)[0]  # [B, n]
        sigma = torch.full_like(mu, float(cfg["omar_sigma"]))
        for _ in range(int(cfg["omar_iters"])):
            a = (mu[None] + sigma[None] * torch.randn(int(cfg["omar_samples"]), *mu.shape, device=mu.device)).clamp(-1, 1)
            q = self.critic(obs[None], a)[0]  # [P, B, n]
            top_q, top_i = q.topk(int(cfg["omar_elites"]), dim=0)  # [E, B, n]
            elites = a.gather(0, top_i[..., None].expand(-1, -1, -1, a.shape[-1]))
            mu, sigma = elites.mean(0), elites.std(0) + 1e-6
            better = top_q[0] > best_q
            best_a = torch.where(better[..., None], elites[0], best_a)
            best_q = torch.maximum(best_q, top_q[0])
        return best_a

    # ---------------------------------------------------------------- targets
    @torch.no_grad()
    def polyak_update(self, tau: float) -> None:
        for tgt, src in ((self.target_actor, self.actor), (self.target_critic, self.critic)):
            for pt, ps in zip(tgt.parameters(), src.parameters()):
                pt.lerp_(ps, tau)

    # ---------------------------------------------------------------- acting
    def is_stateful(self) -> bool:
        return False

    def greedy_step(self, obs: torch.Tensor, avail: torch.Tensor | None = None, state_in=None):
        """obs [B, n, O] -> (deterministic actions [B, n, d], {}): the discrete module's signature."""
        return self.actor(obs), {}

    def _forward_inference(self, batch: Dict[str, Any], **kwargs) -> Dict[str, Any]:
        obs = batch[Columns.OBS][K.OBS]
        with torch.no_grad():
            return {Columns.ACTIONS: self.actor(obs)}

    def get_non_inference_attributes(self) -> list[str]:
        return ["critic", "target_actor", "target_critic", "vae"]

