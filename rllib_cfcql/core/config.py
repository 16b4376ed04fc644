"""CFCQLConfig: every setting of CFCQL and of the baselines it runs by switches, with its checks.

The task's action space picks the variant (``MultiDiscrete``: the mixer variant in
:mod:`rllib_cfcql.discrete`; ``Box``: the centralised-critic variant in :mod:`rllib_cfcql.continuous`).
The algorithm is described in docs/ALGORITHM.md."""

from __future__ import annotations

import copy
import logging
import math
import os
from typing import Any, Dict, Optional

from ray.rllib.algorithms.algorithm_config import AlgorithmConfig, NotProvided
from ray.rllib.core.rl_module.rl_module import RLModuleSpec
from ray.util import log_once

from rllib_cfcql.continuous import config as continuous_config
from rllib_cfcql.core.callbacks import TeamMetricsCallback
from rllib_cfcql.data.offline import TeamOfflineData
from rllib_cfcql.discrete import config as discrete_config
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
        L_actor  = Σ_i E[ −Q_1(s, a^D with a_i := π_i(o_i)) + actor_l2·‖π_i(o_i)‖² + actor_preact_l2·‖y_i‖² ]

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
        if algo_class is None:
            from rllib_cfcql.core.algorithm import CFCQL as algo_class
        super().__init__(algo_class=algo_class)
        # RLlib warns once per process that the algorithm "runs on the new API stack": CFCQL exists
        # only there, so the warning tells a user nothing they could act on
        log_once(f"{self.algo_class.__name__}_on_new_api_stack")
        self._is_online = False
        # every setting is documented once, in training()'s Args
        # --- shared by both variants ---
        self.cql_alpha = 50.0
        self.penalty = "cf"
        self.mode = "cql"
        self.cf_tau = 1.0
        self.gamma = 0.99
        self.lr = 1e-3
        self.adam_eps = 1e-8
        self.grad_clip = 10.0
        self.grad_clip_by = "global_norm"
        self.batch_unit: Optional[str] = None
        self.train_batch_size_per_learner = 128
        self.num_gradient_steps_per_iteration = 100
        self.agent_hidden = 64
        self.behaviour_cache_dir: Optional[str] = None
        # --- each variant's own fields, defined in discrete/config.py and continuous/config.py ---
        for name, default in {**discrete_config.FIELDS, **continuous_config.FIELDS}.items():
            setattr(self, name, copy.copy(default))
        # --- scoring / system ---
        self.reference_returns: Optional[Dict[str, float]] = None
        self.spec: Optional[Dict[str, Any]] = None
        self.trust_dataset_card = False
        self.learner_torch_threads = 1
        self.learner_keep_freed_memory = True
        self.diagnostics_episodes = 32
        # --- offline data / evaluation defaults ---
        self.offline_data_class = TeamOfflineData
        self.input_read_method = "auto"
        self.evaluation_interval = 5
        self.evaluation_duration = 32
        self.evaluation_duration_unit = "episodes"
        self.evaluation_config = {"explore": False}
        # the battle win rate of tasks that report one (SMAX), next to the return
        self.callbacks_class = TeamMetricsCallback

    def __setattr__(self, key, value):
        # Make dataset paths absolute where the user states them: Tune trials run in
        # their own working directory, where a relative path would not resolve.
        if key == "input_" and value:
            value = _absolute_paths(value)
        super().__setattr__(key, value)

    def update_from_dict(self, config_dict, *args, **kwargs):
        """RLlib's update_from_dict, but an unknown key is an error, not a silent new attribute."""
        from rllib_cfcql.core.config_keys import allowed_config_keys

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
        joint_greedy_stratum: Optional[bool] = NotProvided,
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
        learner_keep_freed_memory: Optional[bool] = NotProvided,
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
        actor_preact_l2: Optional[float] = NotProvided,
        actor_bc_warmup: Optional[int] = NotProvided,
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
        """Sets the training settings; every argument not given keeps its value (defaults in brackets).

        Each setting is documented here, once. RLlib's own ``training()`` arguments (``lr`` [1e-3],
        ``gamma`` [0.99], ``grad_clip`` [10], ``train_batch_size_per_learner`` [128], ...) pass
        through ``**kwargs``. *Discrete* settings apply to ``MultiDiscrete`` team actions (the mixer
        variant, :mod:`rllib_cfcql.discrete`), *continuous* ones to ``Box`` team actions (the
        centralised-critic variant, :mod:`rllib_cfcql.continuous`); the others to both.

        Args:
            cql_alpha: α, the weight of the conservative penalty in the loss [50].
            penalty: "cf" (CFCQL: Σ_i λ_i·LSE over agent i's actions, the others at the data),
                "joint" (MACQL: LSE over joint actions) or "none" (offline QMIX/VDN; MATD3+BC) ["cf"].
            mode: "cql" (Q-learning with the penalty) or "bc" (behaviour cloning, no Q-learning) ["cql"].
            cf_tau: τ of λ = softmax_i(τ·D_i), D_i = KL(μ_i ‖ β_i) (discrete) or −log β̂_i(π_i(o_i)|s)
                (continuous, VAE); 0 → uniform λ = 1/n, inf → one-hot argmax, < 0 → eq. B.39's sign [1].
            td_lambda: discrete: λ of the Double-Q TD(λ) returns G^λ (1-step TD at 0) [0.6].
            adam_eps: Adam's ε, every optimiser [1e-8].
            target_update_interval: discrete: gradient steps between hard target copies [25].
            joint_samples: discrete MACQL: joint actions sampled uniformly per state for the joint LSE
                (importance-corrected; enumerated exactly when the joint space has ≤ this many) [100].
            joint_greedy_stratum: discrete MACQL, sampled: add the greedy joint action as an exact stratum of
                the joint LSE (the uniform draws estimate the rest), so the action the max backup
                bootstraps from is always penalised; False: uniform draws only [True].
            target_cache: discrete: keep the target network's utilities for the whole shard, refreshed
                at every copy (True / False; None: when that is fewer forward rows than per batch) [None].
            batch_unit: "episodes" (whole episodes, the reference's discrete batches; needed by a GRU and
                TD(λ)) or "transitions" (single steps, 1-step TD); None: episodes for discrete,
                transitions for continuous [None].
            num_gradient_steps_per_iteration: gradient steps (critic steps for continuous) per learner
                per ``train()`` call [100].
            agent_hidden: width of each agent network (discrete) / actor (continuous) [64].
            agent_rnn: discrete: GRU agent network (the reference) or an MLP [True].
            obs_last_action: discrete: append the agent's previous action (one-hot) to its input;
                None: the same as ``agent_rnn`` [None].
            obs_agent_id: discrete: append the agent's index (one-hot) to its input [True].
            mixer: discrete: "qmix" (monotonic, state-conditioned hypernetworks) or "vdn" (sum) ["qmix"].
            mixer_embed: discrete QMIX: width of the mixing layer [32].
            hyper_hidden: discrete QMIX: width of the hypernetworks' hidden layer [64].
            bc_pretrain_steps: discrete: most behaviour-cloning steps for β, the behaviour model of λ
                (early stopping on held-out episodes) [3000].
            bc_batch_size: discrete: β's batch, in episodes [64].
            bc_lr: discrete: β's Adam learning rate [1e-3].
            bc_patience: discrete: stop β's training after this many evaluations (every 50 steps)
                without a better held-out NLL [10].
            behaviour_cache_dir: where pre-trained β / VAE weights are cached by dataset content hash;
                None: $RLLIB_CFCQL_CACHE or ~/.cache/rllib_cfcql [None].
            reference_returns: {"random": R, "expert": R} for normalised scores 100·(R − R_random) /
                (R_expert − R_random); None: the dataset card's [None].
            spec: dataset-only training (``env: null``): the team's shapes {n_agents, obs_dim, state_dim,
                n_actions[, continuous, episode_limit]} where the dataset has no card recording them [None].
            trust_dataset_card: train on a dataset whose files no longer match its card's content hash
                (the card's reference returns and statistics then describe other data) [False].
            learner_torch_threads: torch threads in a CPU learner process; 0 leaves torch's default [1].
            learner_keep_freed_memory: CPU learner on glibc: keep freed blocks below 1 GiB in the heap instead of
                returning them to the OS after every step (``mallopt``; rllib_cfcql.core.malloc). Halves a
                continuous CFCQL step with policy samples at the reference's MPE shape here; a process then holds the memory of
                its largest step. ``MALLOC_*`` environment variables win [True].
            diagnostics_episodes: dataset episodes (the first of each learner's shard) on which value
                calibration and policy support are measured every iteration (docs/DIAGNOSTICS.md);
                0 turns the diagnostics off [32].
            critic: continuous: "central" twin Q_k(s, a_1..a_n) or "independent" per-agent twin
                Q_k,i(o_i, a_i) (ICQL / OMAR) ["central"].
            actor_objective: continuous: "counterfactual" (Σ_i −Q_1(s, a^D with a_i := π_i(o_i))),
                "joint" (−Q_1(s, π(o))), "td3bc", "independent", "omar" or "bc"; "auto" follows
                ``penalty`` / ``critic`` / ``mode`` ["auto"].
            critic_hidden: continuous: critic width; None: ``agent_hidden`` [None].
            shared_actor: continuous: one actor for every agent (with the agent's index appended) [False].
            actor_lr: continuous: the actors' Adam learning rate; None: ``lr`` [None].
            critic_lr: continuous: the critics' Adam learning rate; None: ``lr`` [None].
            cql_samples: continuous: uniform samples per agent slot (and per policy proposal) for the
                importance-sampled log∫exp Q [10].
            cql_policy_samples: continuous: also sample around the current and the next-state policy,
                N(π(o), cql_policy_std²) (the reference's MuJoCo setting) [False].
            cql_policy_std: continuous: σ of those policy proposals [0.2].
            target_noise: continuous: TD3 target-policy smoothing σ [0.05].
            target_noise_clip: continuous: clip of that noise, ± [0.5].
            polyak_tau: continuous: Polyak rate of both targets, once per round [0.01].
            actor_update_interval: continuous: critic steps per round; the first also updates the
                actors [5].
            actor_l2: continuous: weight of Σ_i ‖π_i(o_i)‖² in the actor loss [1e-3].
            actor_preact_l2: continuous: weight of Σ_i ‖y_i‖², y_i the actor's output before its tanh, in the
                actor loss (rlkit's pre-activation weight). ‖π‖² has no gradient once tanh saturates; this
                one grows with y and pulls a saturated actor back to where the critic's gradient reaches it
                (docs/DATASETS_DESIGN.md §7). 0 = off, as in the reference [0].
            actor_bc_warmup: continuous: for the first this many critic steps the actor steps clone the data
                (Σ_i ‖π_i(o_i) − a_i^D‖², the regularisers kept) instead of climbing the critic, which is
                still untrained (the CQL authors' policy_eval_start). 0 = off, as in the reference [0].
            td3bc_alpha: continuous MATD3+BC: α of TD3+BC, λ = α / mean|Q| on the Q term [2.5].
            omar_coe: continuous OMAR: weight of the rectification term, (1 − c)·(−Q) + c·‖π − a*‖² [0.7].
            omar_iters: continuous OMAR: iterations of the Gaussian search for a* [3].
            omar_samples: continuous OMAR: samples per iteration [20].
            omar_elites: continuous OMAR: elites kept per iteration [5].
            omar_sigma: continuous OMAR: initial σ of the search [2.0].
            lambda_model: continuous: "uniform" λ or "vae" (λ from a conditional VAE's behaviour
                density) ["uniform"].
            vae_hidden: continuous: width of the VAE [750].
            vae_latent: continuous: VAE latent size; None: 2 × joint action dimension [None].
            vae_lr: continuous: VAE Adam learning rate [1e-4].
            vae_kl_weight: continuous: β_KL of the VAE's ELBO [0.5].
            vae_pretrain_steps: continuous: VAE pre-training steps (early stopping on held-out data) [5000].
            vae_batch_size: continuous: VAE batch, in transitions [256].
            vae_samples: continuous: importance samples L per estimate of log β̂_i [20].

        Returns:
            This config, updated.
        """
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
        """RLlib's keys plus this variant's own (``rllib_cfcql.{discrete,continuous}.config``)."""
        variant = continuous_config if self.is_continuous else discrete_config
        return super()._model_config_auto_includes | variant.model_config(self)

    def get_default_rl_module_spec(self) -> RLModuleSpec:
        if self.is_continuous:
            from rllib_cfcql.continuous.module import ContinuousCFCQLTorchRLModule

            return RLModuleSpec(module_class=ContinuousCFCQLTorchRLModule)
        from rllib_cfcql.discrete.module import CFCQLTorchRLModule

        return RLModuleSpec(module_class=CFCQLTorchRLModule)

    def get_default_learner_class(self):
        if self.is_continuous:
            from rllib_cfcql.continuous.learner import ContinuousCFCQLTorchLearner

            return ContinuousCFCQLTorchLearner
        from rllib_cfcql.discrete.learner import CFCQLTorchLearner

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
        if not isinstance(self.learner_keep_freed_memory, bool):
            self._fail("learner_keep_freed_memory", self.learner_keep_freed_memory, "True or False")
        number("diagnostics_episodes", 0, integer=True)
        if isinstance(self.lr, (int, float)):
            number("lr", 0.0, lo_open=True)
        if self.target_cache not in (None, True, False):
            self._fail("target_cache", self.target_cache, "None (automatic), True or False")
        self._validate_env_and_spaces()
        variant, other = (continuous_config, discrete_config) if self.is_continuous else (discrete_config, continuous_config)
        kind = "continuous" if self.is_continuous else "discrete"
        for field, default in other.FIELDS.items():  # a setting of the other variant would be ignored: refuse it
            if getattr(self, field) != default:
                applies = "continuous" if other is continuous_config else "discrete"
                self._fail(field, getattr(self, field), f"its default {default!r}: {field!r} applies to {applies} actions "
                           f"only, and this task's actions are {kind}")
        variant.validate(self, number)
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
                from rllib_cfcql.envs.base import (
                    team_action_space,
                    team_observation_space,
                )

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

    def team_spec(self) -> TeamSpec:
        return spec_from_spaces(self.observation_space, self.action_space)


def default_model_config(model_config) -> Dict[str, Any]:
    """``model_config(CFCQLConfig())``: a variant's module keys at the config's defaults (what a module
    built without a config falls back to)."""
    return model_config(CFCQLConfig())
