"""The continuous variant's own settings: its fields and defaults, its model-config keys and its checks.

``CFCQLConfig`` hands the module only its own variant's keys (:func:`model_config`); a module built
directly (without a config) fills what it is not given from a default ``CFCQLConfig``
(:func:`rllib_cfcql.core.config.default_model_config`).
γ is not a module setting: the loss builds the TD3 target with ``config.gamma``.
"""

from __future__ import annotations

from typing import Any, Dict

#: The fields only this variant reads, with their defaults: ``CFCQLConfig.__init__`` sets them and
#: ``CFCQLConfig.training``'s Args document them; a discrete task refuses any that departs from its default.
FIELDS: Dict[str, Any] = {
    # centralised twin critics, deterministic actors, TD3 targets
    "critic": "central",
    "actor_objective": "auto",
    "critic_hidden": None,
    "shared_actor": False,
    "actor_lr": None,
    "critic_lr": None,
    "cql_samples": 10,
    "cql_policy_samples": False,
    "cql_policy_std": 0.2,
    "target_noise": 0.05,
    "target_noise_clip": 0.5,
    "polyak_tau": 0.01,
    "actor_update_interval": 5,
    "actor_l2": 1e-3,
    "actor_preact_l2": 0.0,
    "actor_bc_warmup": 0,
    # the baselines" actor objectives
    "td3bc_alpha": 2.5,
    "omar_coe": 0.7,
    "omar_iters": 3,
    "omar_samples": 20,
    "omar_elites": 5,
    "omar_sigma": 2.0,
    # λ from a conditional VAE of the data
    "lambda_model": "uniform",
    "vae_hidden": 750,
    "vae_latent": None,
    "vae_lr": 1e-4,
    "vae_kl_weight": 0.5,
    "vae_pretrain_steps": 5000,
    "vae_batch_size": 256,
    "vae_samples": 20,
}


def model_config(c) -> Dict[str, Any]:
    """The keys :class:`rllib_cfcql.continuous.module.ContinuousCFCQLTorchRLModule` reads, from config ``c``."""
    return {
        "actor_hidden": c.agent_hidden,
        "critic_hidden": c.critic_hidden or c.agent_hidden,
        "shared_actor": c.shared_actor,
        "critic": c.critic,
        "penalty": c.penalty,
        "actor_objective": c.resolved_actor_objective,
        "cql_samples": c.cql_samples,
        "cql_policy_samples": c.cql_policy_samples,
        "cql_policy_std": c.cql_policy_std,
        "target_noise": c.target_noise,
        "target_noise_clip": c.target_noise_clip,
        "lambda_model": "vae" if c.uses_vae else "uniform",
        "cf_tau": c.cf_tau,
        "vae_hidden": c.vae_hidden,
        "vae_latent": c.vae_latent,
        "vae_samples": c.vae_samples,
        "omar_iters": c.omar_iters,
        "omar_samples": c.omar_samples,
        "omar_elites": c.omar_elites,
        "omar_sigma": c.omar_sigma,
    }


def validate(c, number) -> None:
    """The continuous checks of ``c.validate()`` (``number(field, lo, hi, integer, lo_open)`` fails naming the field)."""
    if c.resolved_batch_unit != "transitions":
        c._fail("batch_unit", c.batch_unit, "'transitions' (or None) for a continuous task: its actors and critics see single steps")
    obj = c.resolved_actor_objective
    if c.critic == "independent":
        if obj not in ("independent", "omar", "bc"):
            c._fail("actor_objective", c.actor_objective,
                "'independent', 'omar' or 'auto' with critic='independent' (no central critic to step on)")
        if c.penalty == "joint":
            c._fail("penalty", c.penalty, "'cf' (per-agent CQL) or 'none' with critic='independent'")
    elif obj in ("independent", "omar"):
        c._fail("actor_objective", c.actor_objective, f"critic='independent' for {obj!r} (ICQL/OMAR have no central critic)")
    number("actor_bc_warmup", 0, integer=True)
    for field in ("cql_samples", "actor_update_interval", "omar_iters", "omar_samples", "vae_hidden",
                  "vae_pretrain_steps", "vae_batch_size", "vae_samples"):
        number(field, 1, integer=True)
    if c.omar_elites is None or not (1 <= c.omar_elites <= c.omar_samples):
        c._fail("omar_elites", c.omar_elites, f"an integer in [1, omar_samples={c.omar_samples}]")
    for field in ("cql_policy_std", "omar_sigma", "vae_lr", "td3bc_alpha"):
        number(field, 0.0, lo_open=True)
    for field in ("target_noise", "target_noise_clip", "actor_l2", "actor_preact_l2", "vae_kl_weight"):
        number(field, 0.0)
    number("polyak_tau", 0.0, 1.0, lo_open=True)
    number("omar_coe", 0.0, 1.0)
    for field in ("actor_lr", "critic_lr", "critic_hidden", "vae_latent"):
        if getattr(c, field) is not None:
            number(field, 0.0, lo_open=True, integer=field in ("critic_hidden", "vae_latent"))

