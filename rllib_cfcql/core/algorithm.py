"""CFCQL as a registered RLlib Algorithm.

The task's action space picks the variant: ``MultiDiscrete`` team actions train
the value-decomposition (mixer) variant, ``Box`` team actions the centralised
critic + deterministic actors variant (docs/ALGORITHM.md).
"""

from __future__ import annotations

import logging
import math
import time
from typing import Optional

import ray
from ray.rllib.algorithms.algorithm import Algorithm
from ray.rllib.core import DEFAULT_MODULE_ID
from ray.rllib.utils.checkpoints import Checkpointable
from ray.rllib.utils.metrics import (
    ENV_RUNNER_RESULTS,
    EPISODE_RETURN_MEAN,
    EVALUATION_RESULTS,
    LEARNER_RESULTS,
    LEARNER_UPDATE_TIMER,
    NUM_ENV_STEPS_SAMPLED_LIFETIME,
    TIMERS,
)

from rllib_cfcql import keys as K
from rllib_cfcql.core.config import CFCQLConfig
from rllib_cfcql.data.offline import TeamOfflineData, check_card_matches

logger = logging.getLogger(__name__)


class CFCQL(Algorithm):
    """Counterfactual Conservative Q-Learning (offline, cooperative; the task's action space picks the
    mixer variant for discrete actions or the centralised-critic variant for continuous ones)."""

    #: ``rllib train`` accepts ``env: null``: the shapes come from the dataset card or ``spec``
    trains_without_env = True

    @classmethod
    def get_default_config(cls) -> CFCQLConfig:
        return CFCQLConfig()

    @classmethod
    def default_resource_request(cls, config):
        """RLlib's request plus one CPU bundle for the ray.data reader.

        ray.data's listing/metadata tasks always ask for one CPU. Inside a Tune trial,
        whose placement group is otherwise fully used by the main process, EnvRunners and
        Learners, they would wait forever and ``train()`` would hang; the extra bundle is
        where they run (the read tasks themselves request no CPU).
        """
        from ray.tune.execution.placement_groups import PlacementGroupFactory

        pgf = super().default_resource_request(config)
        bundles = [dict(b) for b in pgf.bundles] + [{"CPU": 1}]
        return PlacementGroupFactory(bundles=bundles, strategy=pgf.strategy)

    def setup(self, config: CFCQLConfig) -> None:
        t0 = time.perf_counter()
        super().setup(config)
        spec = self.config.team_spec()
        od: TeamOfflineData = self.offline_data
        check_card_matches(od.card, self.config.env, spec, where=str(od.files[0].parent))
        episodes = od.load_episodes(spec)
        self.reference_returns = self.config.reference_returns or (od.card or {}).get("reference_returns")
        self.dataset_info = {
            "files": [str(f) for f in od.files],
            "rows": od.num_rows,
            "episodes": episodes.num_episodes,
            "transitions": episodes.num_transitions,
            "return_mean": float(episodes.returns().mean()),
            "read_seconds": round(od.read_seconds, 3),
        }
        from rllib_cfcql.core.pretrain import pretrain_for_config

        pre = pretrain_for_config(self.config, episodes, spec.n_actions, seed=self.config.seed or 0)
        self.vae_info = pre["vae"][1] if pre["vae"] else None
        self.behaviour_info = pre["behaviour"][1] if pre["behaviour"] else None
        if pre["vae"]:
            self.learner_group.foreach_learner(lambda learner, s=pre["vae"][0]: learner.set_vae_state(s))
        if pre["behaviour"]:
            self.learner_group.foreach_learner(lambda learner, s=pre["behaviour"][0]: learner.set_behaviour_state(s))
        data = ray.put(episodes) if self.learner_group.is_remote else episodes
        shards = max(1, self.config.num_learners)
        seed = self.config.seed or 0
        results = self.learner_group.foreach_learner(
            lambda learner, d=data, k=shards, s=seed: learner.set_dataset(d, k, s)
        )
        self.dataset_info["shards"] = self.learner_group._get_results(results)
        self.dataset_info["setup_seconds"] = round(time.perf_counter() - t0, 3)

    def training_step(self) -> None:
        steps = int(self.config.num_gradient_steps_per_iteration)
        with self.metrics.log_time((TIMERS, LEARNER_UPDATE_TIMER)):
            results = self.learner_group.foreach_learner(
                lambda learner, n=steps: learner.train_steps(n)
            )
            results = self.learner_group._get_results(results)
        self.metrics.aggregate(results, key=LEARNER_RESULTS)
        self.metrics.log_value(
            NUM_ENV_STEPS_SAMPLED_LIFETIME,
            steps * int(self.config.train_batch_size_per_learner) * max(1, self.config.num_learners),
            reduce="lifetime_sum",
        )

    # ------------------------------------------------------------ inference
    def get_module(self, module_id: str = DEFAULT_MODULE_ID):
        """The trained RLModule, whether or not the algorithm has EnvRunners.

        An offline algorithm has no training EnvRunners (RLlib's version would look there): this
        returns the learner's module when the learner runs in this process, else a copy built
        here with the first remote learner's current weights.
        """
        if self.env_runner is not None:
            return super().get_module(module_id)
        if self.learner_group.is_local:
            return self.learner_group._learner.module[module_id]
        from ray.rllib.core import COMPONENT_LEARNER, COMPONENT_RL_MODULE

        state = self.learner_group.get_state(components=f"{COMPONENT_LEARNER}/{COMPONENT_RL_MODULE}/{module_id}")
        module = self.config.get_rl_module_spec().build()
        module.set_state(state[COMPONENT_LEARNER][COMPONENT_RL_MODULE][module_id])
        return module.eval()

    def compute_single_action(self, observation=None, state=None, *, explore=None, **kwargs):
        """The team's greedy decentralised action for one team observation (RLlib's old-stack call,
        for the new stack's team module; works without EnvRunners).

        ``observation``: the team env's observation dict (``obs`` [n, O], ``action_mask`` [n, A] for
        discrete tasks, ``state`` ignored), or just the ``obs`` array (all actions available).
        Returns the joint action ([n] ints, or [n, d] floats in [-1, 1]); with ``state`` given
        (start from ``algo.get_module().get_initial_state()`` for a recurrent agent) returns
        ``(action, state_out, {})`` as RLlib's did, ``state_out`` to pass at the next step.
        """
        import numpy as np
        import torch

        if kwargs:
            raise TypeError(f"CFCQL.compute_single_action: unsupported argument(s) {sorted(kwargs)}")
        if explore:
            raise ValueError("CFCQL.compute_single_action: CFCQL's policy is greedy; explore=True is not supported")
        module = self.get_module()
        spec = self.config.team_spec()
        if isinstance(observation, dict):
            obs, mask = observation[K.OBS], observation.get(K.ACTION_MASK)
        else:
            obs, mask = observation, None
        obs = np.asarray(obs, np.float32)
        if obs.size != spec.n_agents * spec.obs_dim:
            raise ValueError(f"CFCQL.compute_single_action: obs has shape {obs.shape}, expected "
                             f"({spec.n_agents}, {spec.obs_dim})")
        device = next(module.parameters()).device
        o = torch.as_tensor(obs.reshape(1, spec.n_agents, spec.obs_dim), device=device)
        m = None
        if not spec.continuous:
            m = torch.ones(1, spec.n_agents, spec.n_actions, device=device) if mask is None else \
                torch.as_tensor(np.asarray(mask, np.float32).reshape(1, spec.n_agents, spec.n_actions), device=device)
        s_in = None
        if state:
            s_in = {k: torch.as_tensor(np.asarray(v), device=device).reshape(1, *np.shape(v)) for k, v in state.items()}
        elif module.is_stateful():
            s_in = {k: torch.as_tensor(v, device=device)[None] for k, v in module.get_initial_state().items()}
        with torch.no_grad():
            actions, s_out = module.greedy_step(o, m, s_in)
        action = actions[0].cpu().numpy()
        if state is None:
            return action
        return action, {k: v[0].cpu().numpy() for k, v in s_out.items()}, {}

    def restore_from_path(self, path, *args, **kwargs):
        # Algorithm.restore_from_path (Ray 2.60) syncs weights to `env_runner_group`, which an
        # offline algorithm does not have; restore the components directly instead (evaluation
        # EnvRunners receive the weights at every evaluate()).
        if self.env_runner_group is not None:
            return super().restore_from_path(path, *args, **kwargs)
        return Checkpointable.restore_from_path(self, path, *args, **kwargs)

    def normalized_score(self, episode_return: float) -> Optional[float]:
        refs = self.reference_returns
        if not refs or episode_return is None or (isinstance(episode_return, float) and math.isnan(episode_return)):
            return None
        return 100.0 * (episode_return - refs["random"]) / (refs["expert"] - refs["random"])

    def evaluate(self, *args, **kwargs):
        results = super().evaluate(*args, **kwargs)
        runner = results.get(EVALUATION_RESULTS, results).get(ENV_RUNNER_RESULTS) if isinstance(results, dict) else None
        if isinstance(runner, dict) and EPISODE_RETURN_MEAN in runner:
            score = self.normalized_score(runner[EPISODE_RETURN_MEAN])
            if score is not None:
                runner[K.NORMALIZED_SCORE] = score
        return results

