"""The TorchLearner base both variants share: a resident dataset shard and RLlib's own update step.

The Learner holds its shard of the dataset (:class:`EpisodeStore`, on the learner's device) and
runs ``num_steps`` gradient steps per call of :meth:`ResidentLearner.train_steps`, each through
RLlib's ``_update`` (forward_train → compute_losses → gradients → clipping → optimiser), so DDP,
gradient clipping, learning-rate schedules, metrics and checkpointing are RLlib's.

A variant supplies its optimisers, its loss (``compute_loss_for_module``), its diagnostics and its
schedule through three hooks:

* :meth:`_prepare_shard` — per-step extras computed once over the shard (β logits, target cache);
* :meth:`_step_flags` — keys added to each step's batch that steer the module's forward pass
  (the continuous variant's ``actor_step``); the module reads them from the batch;
* :meth:`_after_step` — what follows a gradient step (hard target copies, Polyak updates).

Gradient steps and target updates are counted here and saved with the learner's state.
"""

from __future__ import annotations

import time
from typing import Any, Dict

import numpy as np
import torch
from ray.rllib.core import DEFAULT_MODULE_ID
from ray.rllib.core.learner.torch.torch_learner import TorchLearner
from ray.rllib.utils.metrics import ALL_MODULES

from rllib_cfcql import diagnostics as D
from rllib_cfcql import keys as K
from rllib_cfcql.data.schema import EpisodeArrays
from rllib_cfcql.core.malloc import keep_freed_memory
from rllib_cfcql.data.store import EpisodeStore


class ResidentLearner(TorchLearner):
    def build(self) -> None:
        if self.config.learner_torch_threads and not torch.cuda.is_available():
            # RLlib sets this only in its worker processes; a driver-side learner on a
            # small CPU box otherwise oversubscribes cores (measured 2.4x slower on 2 cores).
            torch.set_num_threads(int(self.config.learner_torch_threads))
        # glibc hands a step's large temporaries back to the OS and faults them in again next step
        self.malloc_settings = (keep_freed_memory() if self.config.learner_keep_freed_memory
                                and not torch.cuda.is_available() else {})
        super().build()
        self.store: EpisodeStore | None = None
        self.num_grad_steps = 0
        self.num_target_updates = 0
        self._diag_idx = None

    @property
    def team_module(self):
        """The (single) team RLModule, unwrapped from DDP."""
        return self.module[DEFAULT_MODULE_ID].unwrapped()

    # ---------------------------------------------------------------- data
    def set_dataset(self, episodes: EpisodeArrays | Any, num_shards: int, seed: int) -> Dict[str, int]:
        """Keep this learner's shard (episodes k, k+num_shards, ...) on its device."""
        if not isinstance(episodes, EpisodeArrays):  # an ObjectRef from the driver
            import ray

            episodes = ray.get(episodes)
        k = int(getattr(self, "_learner_index", 0) or 0)
        shard = episodes.select(np.arange(k, episodes.num_episodes, max(1, num_shards)))
        self.store = EpisodeStore(shard, self._device, unit=self.config.resolved_batch_unit, seed=seed + 1000 * k)
        self._prepare_shard()
        # diagnostics (rllib_cfcql.diagnostics): Monte-Carlo returns of every step, and a fixed set of episodes
        self.store.add_extra(K.MC_RETURN, D.mc_returns(self.store.reward, self.store.filled, float(self.config.gamma)))
        n_diag = min(int(self.config.diagnostics_episodes), self.store.num_episodes)
        self._diag_idx = torch.arange(n_diag, device=self._device) if n_diag else None
        return {"learner_index": k, "episodes": shard.num_episodes, "transitions": shard.num_transitions}

    # ---------------------------------------------------------------- hooks
    def _prepare_shard(self) -> None:
        """Per-step extras computed once over the new shard (``self.store``)."""

    def _step_flags(self) -> Dict[str, Any]:
        """Keys added to the next step's batch (read by the module's forward_train)."""
        return {}

    def _after_step(self) -> None:
        """After each gradient step (``self.num_grad_steps`` already counts it)."""

    def _after_restore(self) -> None:
        """After :meth:`set_state` restored weights and counters."""

    def diagnostics(self) -> Dict[str, torch.Tensor]:
        """Value calibration and policy support on the fixed diagnostic episodes."""
        return {}

    # ---------------------------------------------------------------- training
    def train_steps(self, num_steps: int, timesteps: Dict[str, Any] | None = None) -> Dict[str, Any]:
        """Run ``num_steps`` gradient steps on minibatches sampled from the shard."""
        if self.store is None:
            raise RuntimeError(f"{type(self).__name__}.train_steps called before set_dataset()")
        timesteps = timesteps or {}
        self.before_gradient_based_update(timesteps=timesteps)
        bs = int(self.config.train_batch_size_per_learner)
        loss = None
        t_sample = t_update = 0.0
        for _ in range(int(num_steps)):
            t0 = time.perf_counter()
            batch = self.store.sample(bs)
            batch.update(self._step_flags())
            t1 = time.perf_counter()
            _, loss_per_module, _ = self._update({DEFAULT_MODULE_ID: batch})
            t_update += time.perf_counter() - t1
            t_sample += t1 - t0
            self.num_grad_steps += 1
            self._after_step()
            loss = loss_per_module[DEFAULT_MODULE_ID]
        if loss is not None:
            self.metrics.log_value((DEFAULT_MODULE_ID, self.TOTAL_LOSS_KEY), loss.detach(), window=1)
        self.metrics.log_value((ALL_MODULES, K.NUM_GRAD_STEPS), self.num_grad_steps, reduce="max")
        self.metrics.log_value((ALL_MODULES, K.NUM_TARGET_UPDATES), self.num_target_updates, reduce="max")
        self.metrics.log_value((ALL_MODULES, "num_samples_trained"), num_steps * bs, reduce="sum")
        # where the time goes: drawing minibatches from the resident store vs. the update itself
        self.metrics.log_value((ALL_MODULES, K.SAMPLE_TIME), t_sample, reduce="sum")
        self.metrics.log_value((ALL_MODULES, K.UPDATE_TIME), t_update, reduce="sum")
        if self._diag_idx is not None:
            for key, value in self.diagnostics().items():
                self.metrics.log_value((DEFAULT_MODULE_ID, key), value.detach(), window=1)
        self.after_gradient_based_update(timesteps=timesteps)
        return self.metrics.reduce()

    # ---------------------------------------------------------------- state
    def get_state(self, components=None, *, not_components=None, **kwargs):
        state = super().get_state(components, not_components=not_components, **kwargs)
        state["cfcql_counters"] = {"num_grad_steps": self.num_grad_steps, "num_target_updates": self.num_target_updates}
        return state

    def set_state(self, state) -> None:
        super().set_state(state)
        counters = state.get("cfcql_counters")
        if counters:
            self.num_grad_steps = int(counters["num_grad_steps"])
            self.num_target_updates = int(counters["num_target_updates"])
        self._after_restore()
