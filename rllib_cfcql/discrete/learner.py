"""The discrete variant's TorchLearner: one Adam over the agent network and the mixer, hard target
copies every ``target_update_interval`` gradient steps, and (when it saves work) a cache of the
target network's utilities over the whole shard, refreshed at every copy.

The resident shard and the step loop are :class:`rllib_cfcql.core.resident_learner.ResidentLearner`'s;
the loss is :func:`rllib_cfcql.discrete.loss.cfcql_loss`.
"""

from __future__ import annotations

from typing import Any, Dict

import torch

from rllib_cfcql import diagnostics as D
from rllib_cfcql import keys as K
from rllib_cfcql.core.resident_learner import ResidentLearner
from rllib_cfcql.discrete import loss as L


class CFCQLTorchLearner(ResidentLearner):
    def build(self) -> None:
        super().build()
        self.cache_targets = False

    def configure_optimizers_for_module(self, module_id, config=None) -> None:
        module = self._module[module_id].unwrapped()
        params = list(module.agent.parameters())
        if config.mode != "bc":
            params += list(module.mixer.parameters())
        optimizer = torch.optim.Adam(params, eps=config.adam_eps, foreach=True)
        self.register_optimizer(module_id=module_id, optimizer=optimizer, params=params, lr_or_lr_schedule=config.lr)

    # ---------------------------------------------------------------- shard extras
    def _prepare_shard(self) -> None:
        if self.config.uses_behaviour_model:
            module = self.team_module
            logits = torch.zeros(*self.store.actions.shape, module.n_actions, device=self._device)
            for idx, chunk in self.store.iter_episode_chunks(256):
                logits[idx] = module.behaviour_logits(chunk)
            self.store.add_extra(K.BEHAVIOUR_LOGITS, logits)
        self.cache_targets = self._should_cache_targets()
        if self.cache_targets:
            self._refresh_target_cache()

    def _should_cache_targets(self) -> bool:
        """Cache the target net's utilities for the whole shard when recomputing them at every
        target copy costs fewer forward rows than evaluating the target net on every batch."""
        setting = self.config.target_cache
        if self.config.mode == "bc" or setting is False:
            return False
        if setting is True:
            return True
        E, T = self.store.actions.shape[:2]
        per_copy = E * (T + 1)
        bs = int(self.config.train_batch_size_per_learner)
        per_step = bs * (T + 1) if self.store.unit == "episodes" else 2 * bs
        return per_copy < per_step * int(self.config.target_update_interval)

    @torch.no_grad()
    def _refresh_target_cache(self) -> None:
        module = self.team_module
        q = torch.empty(*self.store.obs.shape[:3], module.n_actions, device=self._device)
        for idx, chunk in self.store.iter_episode_chunks(256):
            q[idx] = module.target_utilities(chunk)
        self.store.add_extra(K.TARGET_Q_AGENTS, q)

    def set_behaviour_state(self, state: Dict[str, Any]) -> None:
        module = self.team_module
        module.behaviour.load_state_dict({k: torch.as_tensor(v) for k, v in state.items()})
        module.behaviour.to(self._device)

    # ---------------------------------------------------------------- schedule
    def _after_step(self) -> None:
        """Hard target copy every ``target_update_interval`` gradient steps."""
        if self.config.mode != "bc" and self.num_grad_steps % self.config.target_update_interval == 0:
            self.team_module.sync_targets()
            self.num_target_updates += 1
            if self.cache_targets:
                self._refresh_target_cache()

    def _after_restore(self) -> None:
        if self.store is not None and self.cache_targets:
            self._refresh_target_cache()  # restored target weights

    def diagnostics(self) -> Dict[str, torch.Tensor]:
        """Value calibration and policy support on the fixed diagnostic episodes (see rllib_cfcql.diagnostics)."""
        batch = self.store.episodes(self._diag_idx)
        tail = D.tail_weights(batch[K.FILLED], batch[K.TERMINATED], float(self.config.gamma))
        return D.discrete_diagnostics(self.team_module, batch, batch[K.MC_RETURN], tail)

    # ---------------------------------------------------------------- loss
    def compute_loss_for_module(self, *, module_id, config, batch, fwd_out) -> torch.Tensor:
        terms = L.cfcql_loss(config, batch, fwd_out)
        self.metrics.log_dict({k: v.detach() for k, v in terms.stats.items()}, key=module_id, window=1)
        return terms.total
