"""The TorchLearner of the continuous-action variant.

Same data path as the discrete learner (a resident shard sampled on the
learner's device, RLlib's ``_update`` per gradient step); what differs is the
update schedule of the reference (docs/ALGORITHM.md, "Reference settings"): rounds of
``actor_update_interval`` critic steps, the first of which also updates the
actors, followed by one Polyak update of the target actor and critic
(``polyak_tau``). A *gradient step* counts critic steps.

Two optimisers ("critic", "actor") with their own learning rates; RLlib clips
each one's gradients separately. On critic-only steps the actor's parameters
get no update at all (their gradients are dropped before the optimiser step,
so Adam's moments do not move either).
"""

from __future__ import annotations

from typing import Any, Dict

import torch
from ray.rllib.core import DEFAULT_MODULE_ID

from rllib_cfcql import diagnostics as D
from rllib_cfcql import keys as K
from rllib_cfcql import losses_continuous as LC
from rllib_cfcql.learner import CFCQLTorchLearner


class ContinuousCFCQLTorchLearner(CFCQLTorchLearner):
    def configure_optimizers_for_module(self, module_id, config=None) -> None:
        module = self._module[module_id].unwrapped()
        actor_params = list(module.actor.parameters())
        self.register_optimizer(
            module_id=module_id, optimizer_name="actor",
            optimizer=torch.optim.Adam(actor_params, eps=config.adam_eps, foreach=True),
            params=actor_params, lr_or_lr_schedule=config.actor_lr or config.lr,
        )
        if config.resolved_actor_objective != "bc":
            critic_params = list(module.critic.parameters())
            self.register_optimizer(
                module_id=module_id, optimizer_name="critic",
                optimizer=torch.optim.Adam(critic_params, eps=config.adam_eps, foreach=True),
                params=critic_params, lr_or_lr_schedule=config.critic_lr or config.lr,
            )

    def _should_cache_targets(self) -> bool:
        return False

    def diagnostics(self) -> Dict[str, torch.Tensor]:
        module = self.module[DEFAULT_MODULE_ID].unwrapped()
        st, idx = self.store, self._diag_idx
        filled = st.filled[idx] > 0
        tail = D.tail_weights(st.filled[idx], st.terminated[idx], float(self.config.gamma))
        T = st.actions.shape[1]
        return D.continuous_diagnostics(module, st.obs[idx, :T][filled], st.state[idx, :T][filled],
                                        st.actions[idx][filled], st.extras[K.MC_RETURN][idx][filled], tail[filled])

    def set_vae_state(self, state: Dict[str, Any]) -> None:
        module = self.module[DEFAULT_MODULE_ID].unwrapped()
        module.vae.load_state_dict({k: torch.as_tensor(v) for k, v in state.items()})
        module.vae.to(self._device)

    # ---------------------------------------------------------------- schedule
    def _is_actor_step(self) -> bool:
        if self.config.resolved_actor_objective == "bc":
            return True
        return self.num_grad_steps % int(self.config.actor_update_interval) == 0

    def _before_step(self, module) -> None:
        module.actor_step = self._is_actor_step()
        # DDP needs every trainable parameter in every backward pass
        module.touch_actor = max(1, int(self.config.num_learners or 0)) > 1

    def _after_step(self, module) -> None:
        if self.config.resolved_actor_objective == "bc":
            return
        if self.num_grad_steps % int(self.config.actor_update_interval) == 0:
            module.polyak_update(float(self.config.polyak_tau))
            self.num_target_updates += 1

    def apply_gradients(self, gradients_dict) -> None:
        module = self.module[DEFAULT_MODULE_ID].unwrapped()
        if not module.actor_step:
            actor_ids = {self.get_param_ref(p) for p in module.actor.parameters()}
            gradients_dict = {k: g for k, g in gradients_dict.items() if k not in actor_ids}
            for p in module.actor.parameters():
                p.grad = None
        super().apply_gradients(gradients_dict)

    def compute_gradients(self, loss_per_module, **kwargs):
        grads = super().compute_gradients(loss_per_module, **kwargs)
        return {k: g for k, g in grads.items() if g is not None}

    def compute_loss_for_module(self, *, module_id, config, batch, fwd_out) -> torch.Tensor:
        module = self.module[module_id].unwrapped()
        total, stats = compute_continuous_loss(config, batch, fwd_out, actor_step=module.actor_step)
        self.metrics.log_dict({k: v.detach() for k, v in stats.items()}, key=module_id, window=1)
        return total


def compute_continuous_loss(config, batch: Dict[str, torch.Tensor], fwd: Dict[str, torch.Tensor], actor_step: bool):
    """(critic loss + actor loss, stats). The two terms touch disjoint parameters (see the module)."""
    a_data = batch[K.ACTIONS][:, 0]  # [B, n, d]
    obj = config.resolved_actor_objective
    stats: Dict[str, torch.Tensor] = {}
    pi = fwd.get(K.PI_ACTIONS)
    if obj == "bc":
        bc = (pi - a_data).pow(2).sum(-1).mean(0).sum()
        stats[K.BC_LOSS] = bc
        return bc, stats

    # ---- critic
    q_data, y = fwd[K.Q_DATA], fwd[K.TD_TARGET]
    td = (q_data - y[None]).pow(2).mean(dim=tuple(range(1, q_data.dim()))).sum()  # Σ_k E[(Q_k − y)²]
    if K.CF_Q in fwd:
        lam = fwd[K.LAMBDA]
        pen = LC.cf_continuous_penalty(fwd[K.CF_Q], fwd[K.SAMPLE_LOG_DENSITY], q_data, lam)  # [2, B]
        stats[K.LAMBDA_MAX] = lam.max(-1).values.mean()
        stats[K.LAMBDA_ENTROPY] = -(lam * lam.clamp_min(1e-12).log()).sum(-1).mean()
    elif K.JOINT_Q in fwd:
        pen = LC.joint_continuous_penalty(fwd[K.JOINT_Q], fwd[K.SAMPLE_LOG_DENSITY], q_data)  # [2, B]
    elif K.IND_Q in fwd:
        pen = LC.independent_penalty(fwd[K.IND_Q], fwd[K.SAMPLE_LOG_DENSITY], q_data)  # [2, B, n]
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
        if obj == "td3bc":
            scale = config.td3bc_alpha / q_pi.abs().mean().detach().clamp_min(1e-6)
            actor = -scale * q_pi.mean() + (pi - a_data).pow(2).sum(-1).mean(0).sum()
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
    elif pi is not None:  # DDP: the actor takes part in every backward pass; its update is skipped
        total = total + 0.0 * pi.sum()
    return total, stats
