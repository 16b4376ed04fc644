"""The continuous variant's TorchLearner: the reference's update schedule (docs/ALGORITHM.md,
"Reference settings").

Rounds of ``actor_update_interval`` critic steps, the first of which also updates the actors,
each round followed by one Polyak update of the target actor and critic (``polyak_tau``). A
*gradient step* counts critic steps. The step's ``actor_step`` flag travels in the batch
(:data:`rllib_cfcql.keys.ACTOR_STEP`), where the module reads it.

Two optimisers ("critic", "actor") with their own learning rates; RLlib clips each one's gradients
separately. On critic-only steps the actor's parameters get no update at all (their gradients are
dropped before the optimiser step, so Adam's moments do not move either).

The resident shard and the step loop are :class:`rllib_cfcql.core.resident_learner.ResidentLearner`'s;
the loss is :func:`rllib_cfcql.continuous.loss.continuous_loss`.
"""

from __future__ import annotations

from typing import Any, Dict

import torch

from rllib_cfcql import diagnostics as D
from rllib_cfcql import keys as K
from rllib_cfcql.continuous import loss as LC
from rllib_cfcql.core.resident_learner import ResidentLearner


class ContinuousCFCQLTorchLearner(ResidentLearner):
    def build(self) -> None:
        super().build()
        self._actor_step = True

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

    def diagnostics(self) -> Dict[str, torch.Tensor]:
        st, idx = self.store, self._diag_idx
        filled = st.filled[idx] > 0
        tail = D.tail_weights(st.filled[idx], st.terminated[idx], float(self.config.gamma))
        T = st.actions.shape[1]
        return D.continuous_diagnostics(self.team_module, st.obs[idx, :T][filled], st.state[idx, :T][filled],
                                        st.actions[idx][filled], st.extras[K.MC_RETURN][idx][filled], tail[filled])

    def set_vae_state(self, state: Dict[str, Any]) -> None:
        module = self.team_module
        module.vae.load_state_dict({k: torch.as_tensor(v) for k, v in state.items()})
        module.vae.to(self._device)

    # ---------------------------------------------------------------- schedule
    def _is_actor_step(self) -> bool:
        if self.config.resolved_actor_objective == "bc":
            return True
        return self.num_grad_steps % int(self.config.actor_update_interval) == 0

    def _step_flags(self) -> Dict[str, Any]:
        self._actor_step = self._is_actor_step()
        # DDP needs every trainable parameter in every backward pass
        return {K.ACTOR_STEP: self._actor_step, K.TOUCH_ACTOR: max(1, int(self.config.num_learners or 0)) > 1,
                K.ACTOR_BC: self.num_grad_steps < int(self.config.actor_bc_warmup)}

    def _after_step(self) -> None:
        if self.config.resolved_actor_objective == "bc":
            return
        if self.num_grad_steps % int(self.config.actor_update_interval) == 0:
            self.team_module.polyak_update(float(self.config.polyak_tau))
            self.num_target_updates += 1

    def apply_gradients(self, gradients_dict) -> None:
        if not self._actor_step:
            module = self.team_module
            actor_ids = {self.get_param_ref(p) for p in module.actor.parameters()}
            gradients_dict = {k: g for k, g in gradients_dict.items() if k not in actor_ids}
            for p in module.actor.parameters():
                p.grad = None
        super().apply_gradients(gradients_dict)

    def compute_gradients(self, loss_per_module, **kwargs):
        grads = super().compute_gradients(loss_per_module, **kwargs)
        return {k: g for k, g in grads.items() if g is not None}

    def compute_loss_for_module(self, *, module_id, config, batch, fwd_out) -> torch.Tensor:
        terms = LC.continuous_loss(config, batch, fwd_out)
        self.metrics.log_dict({k: v.detach() for k, v in terms.stats.items()}, key=module_id, window=1)
        return terms.total
