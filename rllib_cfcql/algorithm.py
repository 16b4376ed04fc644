"""CFCQL as a registered RLlib Algorithm.

The task's action space picks the variant: ``MultiDiscrete`` team actions train
the value-decomposition (mixer) variant, ``Box`` team actions the centralised
critic + deterministic actors variant (docs/ALGORITHM.md).
"""

from __future__ import annotations

import logging
import math
import os
import time
from typing import Any, Dict, Optional

import ray
from ray.rllib.algorithms.algorithm import Algorithm
from ray.rllib.algorithms.algorithm_config import AlgorithmConfig, NotProvided
from ray.rllib.core import DEFAULT_MODULE_ID
from ray.rllib.core.rl_module.rl_module import RLModuleSpec
from ray.rllib.utils.checkpoints import Checkpointable
from ray.util import log_once
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
from rllib_cfcql.data.offline import TeamOfflineData, check_card_matches
from rllib_cfcql.envs import TASKS, make_team_env
from rllib_cfcql.envs.base import TeamSpec, spec_from_spaces

logger = logging.getLogger(__name__)

PENALTIES = ("cf", "joint", "none")
MODES = ("cql", "bc")
MIXERS = ("qmix", "vdn")
BATCH_UNITS = ("episodes", "transitions")
CRITICS = ("central", "independent")
ACTOR_OBJECTIVES = ("auto", "counterfactual", "joint", "td3bc", "independent", "omar", "bc")
LAMBDA_MODELS = ("uniform", "vae")


def _absolute_paths(value):
    def fix(p):
        if isinstance(p, str) and "://" not in p and not os.path.isabs(p) and os.path.exists(p):
            return os.path.abspath(p)
        return p

    if isinstance(value, (list, tuple)):
        return [fix(p) for p in value]
    return fix(value)


class CFCQLConfig(AlgorithmConfig):
    r"""Configuration of CFCQL (and its baselines, by switches).

    Loss, per batch of dataset steps (docs/ALGORITHM.md; appendix eq. B.37)::

        L = ½·E[(Q_tot(s, a^D) − G^λ)²]
            + cql_alpha · E[ Σ_i λ_i(s)·LSE_{j ∈ avail_i} Q_tot(s, a^D with a^i := j) − Q_tot(s, a^D) ]

    with Double-Q TD(λ) returns G^λ (γ = ``gamma``, λ = ``td_lambda``) from
    hard-copied target networks, and λ(s) = softmax_i(cf_tau · KL(μ_i ‖ β_i)),
    μ_i = softmax_j of agent i's counterfactual Q_tot, β = a behaviour-cloning
    model pre-trained on the dataset. Sign: as in the reference code, the agent
    whose policy deviates most from the data gets the largest weight; appendix
    eq. B.39 prints exp(−τ·KL), which ``cf_tau < 0`` reproduces.

    Baselines from the same code:

    * ``penalty="joint"`` — MACQL: LSE over *joint* actions (``joint_samples``
      uniform samples from the available joint actions, importance-corrected;
      exact enumeration when the joint space is that small).
    * ``penalty="none"`` — offline QMIX/VDN without conservatism.
    * ``mode="bc"`` — behaviour cloning of the agent network (no Q-learning).

    Defaults follow the reference implementation: lr 1e-3 (Adam), grad-norm
    clip 10, batch 128 whole episodes, targets copied every 25 gradient steps,
    γ 0.99, TD(λ) 0.6, GRU agent of width 64, QMIX mixer (embed 32, hypernet
    64), α = 50.

    **Continuous actions** (a ``Box`` team action space; docs/ALGORITHM.md)::

        L_critic = Σ_k E[(Q_k(s, a^D) − y)²]
                   + cql_alpha · Σ_k E[ Σ_i λ_i · log∫exp Q_k(s, a^D_{-i}, a_i) da_i − Q_k(s, a^D) ]
        L_actor  = Σ_i E[ −Q_1(s, a^D with a_i := π_i(o_i)) + actor_l2·‖π_i(o_i)‖² ]

    y = r + γ(1 − terminated)·min_k Q̄_k(s', clip(π̄(o') + ε)), ε ~ N(0, target_noise²)
    clipped to ±target_noise_clip. log∫exp is estimated from ``cql_samples``
    uniform samples per agent (plus as many around the current and the
    next-state policy with ``cql_policy_samples``), each importance-corrected by
    its own proposal's density. λ is uniform (``lambda_model="uniform"``) or
    softmax_i(cf_tau·(−log β̂_i(π_i(o_i)|s))) from a conditional VAE of the data
    (``lambda_model="vae"``). Schedule: rounds of ``actor_update_interval``
    critic steps, the first also updating the actors, then one Polyak update
    (``polyak_tau``) of both targets. Baselines by switches:

    * MACQL: ``penalty="joint"`` (joint samples; actors step on Q(s, π(o))).
    * ICQL: ``critic="independent"`` (per-agent twin critics Q_i(o_i, a_i), each
      with its own CQL penalty; ``penalty="cf"`` means per-agent here).
    * OMAR: ``critic="independent", actor_objective="omar"`` (zeroth-order
      rectification of the actor toward the best action found around it).
    * MATD3+BC: ``penalty="none", actor_objective="td3bc"``.
    * BC: ``mode="bc"``.
    """

    def __init__(self, algo_class=None):
        super().__init__(algo_class=algo_class or CFCQL)
        # RLlib warns once per process that the algorithm "runs on the new API stack": CFCQL exists
        # only there, so the warning tells a user nothing they could act on
        log_once(f"{self.algo_class.__name__}_on_new_api_stack")
        self._is_online = False
        # --- CFCQL ---
        self.cql_alpha = 50.0  #: α, weight of the conservative penalty
        self.penalty = "cf"  #: "cf" (CFCQL) | "joint" (MACQL) | "none"
        self.mode = "cql"  #: "cql" (Q-learning + penalty) | "bc" (behaviour cloning)
        self.cf_tau = 1.0  #: τ in λ = softmax(τ·KL); 0 → uniform λ (no β); inf → one-hot
        self.td_lambda = 0.6  #: λ of the TD(λ) returns
        self.gamma = 0.99
        self.lr = 1e-3
        self.adam_eps = 1e-8
        self.grad_clip = 10.0
        self.grad_clip_by = "global_norm"
        self.target_update_interval = 25  #: hard target copy every N gradient steps
        self.joint_samples = 100  #: MACQL: joint actions sampled per state
        self.target_cache: Optional[bool] = None  #: cache target utilities per dataset shard (None = when cheaper)
        self.batch_unit: Optional[str] = None  #: "episodes" | "transitions"; None: episodes (discrete), transitions (continuous)
        self.train_batch_size_per_learner = 128
        self.num_gradient_steps_per_iteration = 100  #: gradient steps per learner per train()
        # --- networks ---
        self.agent_hidden = 64
        self.agent_rnn = True  #: GRU agent (reference) or MLP
        self.obs_last_action: Optional[bool] = None  #: None → same as agent_rnn
        self.obs_agent_id = True
        self.mixer = "qmix"  #: "qmix" | "vdn"
        self.mixer_embed = 32
        self.hyper_hidden = 64
        # --- behaviour model β (for λ) ---
        self.bc_pretrain_steps = 3000  #: max BC steps for β (early stopping on held-out episodes)
        self.bc_batch_size = 64
        self.bc_lr = 1e-3
        self.bc_patience = 10  #: stop after this many evaluations (every 50 steps) without improvement
        self.behaviour_cache_dir: Optional[str] = None  #: default ~/.cache/rllib_cfcql (or $RLLIB_CFCQL_CACHE)
        # --- continuous actions (centralised critic, deterministic actors) ---
        self.critic = "central"  #: "central" twin Q(s, a) | "independent" per-agent twin Q_i(o_i, a_i) (ICQL/OMAR)
        self.actor_objective = "auto"  #: see ACTOR_OBJECTIVES; auto follows penalty/critic/mode
        self.critic_hidden: Optional[int] = None  #: None → agent_hidden
        self.shared_actor = False  #: one actor for all agents (with agent id) instead of one per agent
        self.actor_lr: Optional[float] = None  #: None → lr
        self.critic_lr: Optional[float] = None  #: None → lr
        self.cql_samples = 10  #: uniform samples per agent slot (and per policy proposal)
        self.cql_policy_samples = False  #: also sample around the current / next-state policy (MuJoCo)
        self.cql_policy_std = 0.2
        self.target_noise = 0.05  #: TD3 target policy smoothing σ
        self.target_noise_clip = 0.5
        self.polyak_tau = 0.01
        self.actor_update_interval = 5  #: critic steps per round; the first updates the actors too
        self.actor_l2 = 1e-3
        self.td3bc_alpha = 2.5
        self.omar_coe = 0.7
        self.omar_iters = 3
        self.omar_samples = 20
        self.omar_elites = 5
        self.omar_sigma = 2.0
        self.lambda_model = "uniform"  #: "uniform" | "vae" (behaviour density from a conditional VAE)
        self.vae_hidden = 750
        self.vae_latent: Optional[int] = None  #: None → 2 · joint action dimension
        self.vae_lr = 1e-4
        self.vae_kl_weight = 0.5
        self.vae_pretrain_steps = 5000
        self.vae_batch_size = 256
        self.vae_samples = 20  #: importance samples L for log β̂_i
        # --- scoring / system ---
        self.reference_returns: Optional[Dict[str, float]] = None  #: {"random": R, "expert": R}; default: dataset card
        #: dataset-only training (no env): the team's shapes {n_agents, obs_dim, state_dim, n_actions[, continuous,
        #: episode_limit]} where the dataset has no card recording them (with a card, its `spec` is used)
        self.spec: Optional[Dict[str, Any]] = None
        #: train on a dataset whose files no longer match its card's content hash (the card's reference
        #: returns and statistics then describe other data)
        self.trust_dataset_card = False
        self.learner_torch_threads = 1  #: torch threads in a CPU learner process (0 = leave torch's default)
        #: dataset episodes (the first of each learner's shard) on which value calibration and policy
        #: support are measured every iteration (rllib_cfcql.diagnostics); 0 turns the diagnostics off
        self.diagnostics_episodes = 32
        # --- offline data / evaluation defaults ---
        self.offline_data_class = TeamOfflineData
        self.input_read_method = "auto"
        self.evaluation_interval = 5
        self.evaluation_duration = 32
        self.evaluation_duration_unit = "episodes"
        self.evaluation_config = {"explore": False}

    def __setattr__(self, key, value):
        # Make dataset paths absolute where the user states them: Tune trials run in
        # their own working directory, where a relative path would not resolve.
        if key == "input_" and value:
            value = _absolute_paths(value)
        super().__setattr__(key, value)

    def update_from_dict(self, config_dict, *args, **kwargs):
        """RLlib's update_from_dict, but an unknown key is an error, not a silent new attribute."""
        from rllib_cfcql.cli import allowed_config_keys

        if isinstance(config_dict, AlgorithmConfig):
            config_dict = config_dict.to_dict()
        allowed = allowed_config_keys(self) | set(self.to_dict()) | set(vars(self))
        unknown = [k for k in config_dict if k not in allowed and not str(k).startswith("__")]
        if unknown:
            import difflib

            hints = {k: difflib.get_close_matches(k, sorted(allowed), n=2) for k in unknown}
            raise ValueError(
                "CFCQLConfig: unknown config key(s) "
                + ", ".join(f"{k!r}" + (f" (did you mean {' or '.join(map(repr, h))}?)" if h else "") for k, h in hints.items())
            )
        return super().update_from_dict(config_dict, *args, **kwargs)

    def training(
        self,
        *,
        cql_alpha: Optional[float] = NotProvided,
        penalty: Optional[str] = NotProvided,
        mode: Optional[str] = NotProvided,
        cf_tau: Optional[float] = NotProvided,
        td_lambda: Optional[float] = NotProvided,
        adam_eps: Optional[float] = NotProvided,
        target_update_interval: Optional[int] = NotProvided,
        joint_samples: Optional[int] = NotProvided,
        target_cache: Optional[bool] = NotProvided,
        batch_unit: Optional[str] = NotProvided,
        num_gradient_steps_per_iteration: Optional[int] = NotProvided,
        agent_hidden: Optional[int] = NotProvided,
        agent_rnn: Optional[bool] = NotProvided,
        obs_last_action: Optional[bool] = NotProvided,
        obs_agent_id: Optional[bool] = NotProvided,
        mixer: Optional[str] = NotProvided,
        mixer_embed: Optional[int] = NotProvided,
        hyper_hidden: Optional[int] = NotProvided,
        bc_pretrain_steps: Optional[int] = NotProvided,
        bc_batch_size: Optional[int] = NotProvided,
        bc_lr: Optional[float] = NotProvided,
        bc_patience: Optional[int] = NotProvided,
        behaviour_cache_dir: Optional[str] = NotProvided,
        reference_returns: Optional[Dict[str, float]] = NotProvided,
        spec: Optional[Dict[str, Any]] = NotProvided,
        trust_dataset_card: Optional[bool] = NotProvided,
        learner_torch_threads: Optional[int] = NotProvided,
        diagnostics_episodes: Optional[int] = NotProvided,
        critic: Optional[str] = NotProvided,
        actor_objective: Optional[str] = NotProvided,
        critic_hidden: Optional[int] = NotProvided,
        shared_actor: Optional[bool] = NotProvided,
        actor_lr: Optional[float] = NotProvided,
        critic_lr: Optional[float] = NotProvided,
        cql_samples: Optional[int] = NotProvided,
        cql_policy_samples: Optional[bool] = NotProvided,
        cql_policy_std: Optional[float] = NotProvided,
        target_noise: Optional[float] = NotProvided,
        target_noise_clip: Optional[float] = NotProvided,
        polyak_tau: Optional[float] = NotProvided,
        actor_update_interval: Optional[int] = NotProvided,
        actor_l2: Optional[float] = NotProvided,
        td3bc_alpha: Optional[float] = NotProvided,
        omar_coe: Optional[float] = NotProvided,
        omar_iters: Optional[int] = NotProvided,
        omar_samples: Optional[int] = NotProvided,
        omar_elites: Optional[int] = NotProvided,
        omar_sigma: Optional[float] = NotProvided,
        lambda_model: Optional[str] = NotProvided,
        vae_hidden: Optional[int] = NotProvided,
        vae_latent: Optional[int] = NotProvided,
        vae_lr: Optional[float] = NotProvided,
        vae_kl_weight: Optional[float] = NotProvided,
        vae_pretrain_steps: Optional[int] = NotProvided,
        vae_batch_size: Optional[int] = NotProvided,
        vae_samples: Optional[int] = NotProvided,
        **kwargs,
    ) -> "CFCQLConfig":
        super().training(**kwargs)
        for name, value in list(locals().items()):
            if name not in ("self", "kwargs", "__class__") and value is not NotProvided:
                setattr(self, name, value)
        return self

    # ------------------------------------------------------------ derived
    @property
    def resolved_obs_last_action(self) -> bool:
        return self.agent_rnn if self.obs_last_action is None else bool(self.obs_last_action)

    @property
    def is_continuous(self) -> bool:
        """True when the team action space is a Box (set from the task by validate())."""
        import gymnasium as gym

        return isinstance(self.action_space, gym.spaces.Box)

    @property
    def resolved_batch_unit(self) -> str:
        if self.batch_unit is not None:
            return self.batch_unit
        return "transitions" if self.is_continuous else "episodes"

    @property
    def resolved_actor_objective(self) -> str:
        if self.actor_objective != "auto":
            return self.actor_objective
        if self.mode == "bc":
            return "bc"
        if self.critic == "independent":
            return "independent"
        return "counterfactual" if self.penalty == "cf" else "joint"

    @property
    def uses_behaviour_model(self) -> bool:
        return not self.is_continuous and self.mode == "cql" and self.penalty == "cf" and self.cf_tau != 0

    @property
    def uses_vae(self) -> bool:
        return (self.is_continuous and self.lambda_model == "vae" and self.cf_tau != 0
                and self.resolved_actor_objective != "bc" and self.critic == "central" and self.penalty == "cf")

    @property
    def _model_config_auto_includes(self) -> Dict[str, Any]:
        return super()._model_config_auto_includes | {
            "hidden": self.agent_hidden,
            "rnn": self.agent_rnn,
            "obs_last_action": self.resolved_obs_last_action,
            "obs_agent_id": self.obs_agent_id,
            "mixer": self.mixer,
            "mixer_embed": self.mixer_embed,
            "hyper_hidden": self.hyper_hidden,
            "mode": self.mode,
            "penalty": self.penalty,
            "joint_samples": self.joint_samples,
            "use_behaviour": self.uses_behaviour_model,
            # continuous variant
            "actor_hidden": self.agent_hidden,
            "critic_hidden": self.critic_hidden or self.agent_hidden,
            "shared_actor": self.shared_actor,
            "critic": self.critic,
            "actor_objective": self.resolved_actor_objective,
            "cql_samples": self.cql_samples,
            "cql_policy_samples": self.cql_policy_samples,
            "cql_policy_std": self.cql_policy_std,
            "target_noise": self.target_noise,
            "target_noise_clip": self.target_noise_clip,
            "lambda_model": "vae" if self.uses_vae else "uniform",
            "cf_tau": self.cf_tau,
            "vae_hidden": self.vae_hidden,
            "vae_latent": self.vae_latent,
            "vae_samples": self.vae_samples,
            "omar_iters": self.omar_iters,
            "omar_samples": self.omar_samples,
            "omar_elites": self.omar_elites,
            "omar_sigma": self.omar_sigma,
            "gamma": self.gamma,
        }

    def get_default_rl_module_spec(self) -> RLModuleSpec:
        if self.is_continuous:
            from rllib_cfcql.module_continuous import ContinuousCFCQLTorchRLModule

            return RLModuleSpec(module_class=ContinuousCFCQLTorchRLModule)
        from rllib_cfcql.module import CFCQLTorchRLModule

        return RLModuleSpec(module_class=CFCQLTorchRLModule)

    def get_default_learner_class(self):
        if self.is_continuous:
            from rllib_cfcql.learner_continuous import ContinuousCFCQLTorchLearner

            return ContinuousCFCQLTorchLearner
        from rllib_cfcql.learner import CFCQLTorchLearner

        return CFCQLTorchLearner

    # ------------------------------------------------------------ validation
    def _fail(self, field: str, value: Any, expected: str) -> None:
        raise ValueError(f"CFCQLConfig.{field}={value!r} is invalid: expected {expected}")

    def validate(self) -> None:
        self._validate_cfcql()
        super().validate()

    def _validate_cfcql(self) -> None:
        def number(field, lo=None, hi=None, integer=False, lo_open=False):
            v = getattr(self, field)
            ok = isinstance(v, (int, float)) and not isinstance(v, bool) and not (isinstance(v, float) and math.isnan(v))
            if ok and integer:
                ok = float(v).is_integer()
            if ok and lo is not None:
                ok = v > lo if lo_open else v >= lo
            if ok and hi is not None:
                ok = v <= hi
            if not ok:
                rng = f"{'(' if lo_open else '['}{lo if lo is not None else '-inf'}, {hi if hi is not None else 'inf'}]"
                self._fail(field, v, f"{'an integer' if integer else 'a number'} in {rng}")

        for field, allowed in (("penalty", PENALTIES), ("mode", MODES), ("mixer", MIXERS),
                               ("batch_unit", BATCH_UNITS + (None,)), ("critic", CRITICS),
                               ("actor_objective", ACTOR_OBJECTIVES), ("lambda_model", LAMBDA_MODELS)):
            if getattr(self, field) not in allowed:
                self._fail(field, getattr(self, field), f"one of {allowed}")
        number("cql_alpha", 0.0)
        number("td_lambda", 0.0, 1.0)
        number("gamma", 0.0, 1.0, lo_open=True)
        number("adam_eps", 0.0, lo_open=True)
        if not isinstance(self.cf_tau, (int, float)) or isinstance(self.cf_tau, bool) or math.isnan(self.cf_tau):
            self._fail("cf_tau", self.cf_tau, "a number (0 = uniform λ, inf = one-hot)")
        for field in ("target_update_interval", "joint_samples", "num_gradient_steps_per_iteration", "agent_hidden",
                      "mixer_embed", "hyper_hidden", "bc_batch_size", "bc_patience", "train_batch_size_per_learner"):
            number(field, 1, integer=True)
        number("bc_pretrain_steps", 0, integer=True)
        number("bc_lr", 0.0, lo_open=True)
        number("learner_torch_threads", 0, integer=True)
        number("diagnostics_episodes", 0, integer=True)
        if isinstance(self.lr, (int, float)):
            number("lr", 0.0, lo_open=True)
        if self.target_cache not in (None, True, False):
            self._fail("target_cache", self.target_cache, "None (automatic), True or False")
        self._validate_env_and_spaces()
        if self.is_continuous:
            self._validate_continuous(number)
        elif self.critic != "central" or self.actor_objective != "auto":
            self._fail("critic" if self.critic != "central" else "actor_objective",
                       self.critic if self.critic != "central" else self.actor_objective,
                       "the default for a discrete task (critic and actor_objective apply to continuous actions only)")
        if not self.is_continuous and self.resolved_batch_unit == "transitions" and (self.agent_rnn or self.resolved_obs_last_action):
            self._fail("batch_unit", self.batch_unit,
                       "'episodes' for a recurrent agent or obs_last_action=True (transitions carry no history); "
                       "set agent_rnn=False and obs_last_action=False to train on transitions")
        if self.reference_returns is not None:
            r = self.reference_returns
            if not (isinstance(r, dict) and set(r) == {"random", "expert"} and r["expert"] != r["random"]):
                self._fail("reference_returns", r, "a dict {'random': R_random, 'expert': R_expert} with R_expert != R_random")
        if not self.input_ or self.input_ == "sampler":
            self._fail("input_", self.input_, "the path(s) of a team dataset, e.g. .offline_data(input_=['offline_data/equal_line_n4'])")

    def _validate_env_and_spaces(self) -> None:
        if self.env is None:
            # dataset-only training: shapes from the dataset card or `spec`, no evaluation
            if self.observation_space is None or self.action_space is None:
                from rllib_cfcql.envs.base import team_action_space, team_observation_space

                spec = self.dataset_only_spec()
                self.observation_space, self.action_space = team_observation_space(spec), team_action_space(spec)
            if self.evaluation_interval:
                logger.info("CFCQL: no env, so no evaluation (evaluation_interval %s -> None)", self.evaluation_interval)
                self.evaluation_interval = None
            return
        if self.spec is not None:
            self._fail("spec", self.spec, "None when an env is given (the env defines the shapes)")
        if isinstance(self.env, str) and self.env in TASKS and self.observation_space is None:
            env = make_team_env(self.env, self.env_config)
            self.observation_space, self.action_space = env.observation_space, env.action_space
            env.close()
        if self.observation_space is None:
            self._fail("env", self.env, f"a registered team task ({sorted(TASKS)}), explicit observation/action spaces, "
                                        "or None to train from the dataset alone")

    def dataset_only_spec(self) -> TeamSpec:
        """The team shapes of a run without env: ``spec`` if given, else the dataset card's ``spec``."""
        from rllib_cfcql.data.offline import find_cards, resolve_inputs
        from rllib_cfcql.data.schema import DatasetError
        from rllib_cfcql.data.validate import card_team_spec, team_spec_from_mapping

        if not self.input_ or self.input_ == "sampler":
            self._fail("input_", self.input_, "the path(s) of a team dataset, e.g. .offline_data(input_=['my_logs'])")
        try:
            files, _ = resolve_inputs(self.input_)
            cards = find_cards(files)
            if self.spec is not None:
                spec = team_spec_from_mapping(self.spec, "CFCQLConfig.spec")
                for path, card in cards:
                    if card.get("spec") and card_team_spec(card, str(path)) != spec:
                        raise DatasetError(f"CFCQLConfig.spec={self.spec} disagrees with the card {path}: "
                                           f"spec {card['spec']}; leave spec unset to use the card's")
                return spec
            if not cards:
                raise DatasetError(f"no env and no {files[0].parent}/card.json: give the team's shapes with "
                                   "spec={'n_agents': n, 'obs_dim': O, 'state_dim': S, 'n_actions': A, "
                                   "'continuous': False}, or an env")
            path, card = cards[0]
            return card_team_spec(card, str(path))
        except DatasetError as e:
            raise ValueError(f"CFCQLConfig: cannot train from the dataset alone: {e}") from None

    def _validate_continuous(self, number) -> None:
        if self.resolved_batch_unit != "transitions":
            self._fail("batch_unit", self.batch_unit, "'transitions' (or None) for a continuous task: its actors and critics see single steps")
        obj = self.resolved_actor_objective
        if self.critic == "independent":
            if obj not in ("independent", "omar", "bc"):
                self._fail("actor_objective", self.actor_objective,
                           "'independent', 'omar' or 'auto' with critic='independent' (no central critic to step on)")
            if self.penalty == "joint":
                self._fail("penalty", self.penalty, "'cf' (per-agent CQL) or 'none' with critic='independent'")
        elif obj in ("independent", "omar"):
            self._fail("actor_objective", self.actor_objective, f"critic='independent' for {obj!r} (ICQL/OMAR have no central critic)")
        for field in ("cql_samples", "actor_update_interval", "omar_iters", "omar_samples", "vae_hidden",
                      "vae_pretrain_steps", "vae_batch_size", "vae_samples"):
            number(field, 1, integer=True)
        if self.omar_elites is None or not (1 <= self.omar_elites <= self.omar_samples):
            self._fail("omar_elites", self.omar_elites, f"an integer in [1, omar_samples={self.omar_samples}]")
        for field in ("cql_policy_std", "omar_sigma", "vae_lr", "td3bc_alpha"):
            number(field, 0.0, lo_open=True)
        for field in ("target_noise", "target_noise_clip", "actor_l2", "vae_kl_weight"):
            number(field, 0.0)
        number("polyak_tau", 0.0, 1.0, lo_open=True)
        number("omar_coe", 0.0, 1.0)
        for field in ("actor_lr", "critic_lr", "critic_hidden", "vae_latent"):
            if getattr(self, field) is not None:
                number(field, 0.0, lo_open=True, integer=field in ("critic_hidden", "vae_latent"))

    def team_spec(self) -> TeamSpec:
        return spec_from_spaces(self.observation_space, self.action_space)


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
        self.vae_info = None
        if self.config.uses_vae:
            from rllib_cfcql.behaviour import pretrain_vae

            state, self.vae_info = pretrain_vae(
                episodes, hidden=self.config.vae_hidden, latent=self.config.vae_latent, steps=self.config.vae_pretrain_steps,
                batch_size=self.config.vae_batch_size, lr=self.config.vae_lr, kl_weight=self.config.vae_kl_weight,
                seed=self.config.seed or 0, cache_dir=self.config.behaviour_cache_dir,
            )
            self.learner_group.foreach_learner(lambda learner, s=state: learner.set_vae_state(s))
        if self.config.uses_behaviour_model:
            from rllib_cfcql.behaviour import pretrain_behaviour

            model_cfg = self.config.model_config
            state, info = pretrain_behaviour(
                episodes, model_cfg=model_cfg, n_actions=spec.n_actions, steps=self.config.bc_pretrain_steps,
                batch_size=self.config.bc_batch_size, lr=self.config.bc_lr, seed=self.config.seed or 0,
                patience=self.config.bc_patience, cache_dir=self.config.behaviour_cache_dir,
            )
            self.behaviour_info = info
            self.learner_group.foreach_learner(lambda learner, s=state: learner.set_behaviour_state(s))
        else:
            self.behaviour_info = None
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

