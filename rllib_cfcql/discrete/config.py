"""The discrete variant's own settings: its fields and defaults, its model-config keys and its checks.

``CFCQLConfig`` hands the module only its own variant's keys (:func:`model_config`); a module built
directly (without a config) fills what it is not given from a default ``CFCQLConfig``
(:func:`rllib_cfcql.core.config.default_model_config`).
"""

from __future__ import annotations

from typing import Any, Dict

#: The fields only this variant reads, with their defaults: ``CFCQLConfig.__init__`` sets them and
#: ``CFCQLConfig.training``'s Args document them; a continuous task refuses any that departs from its default.
FIELDS: Dict[str, Any] = {
    # TD(λ) targets from hard-copied target networks
    "td_lambda": 0.6,
    "target_update_interval": 25,
    "joint_samples": 100,
    "joint_greedy_stratum": True,
    "target_cache": None,
    # the agent network and the mixer
    "agent_rnn": True,
    "obs_last_action": None,
    "obs_agent_id": True,
    "mixer": "qmix",
    "mixer_embed": 32,
    "hyper_hidden": 64,
    # the behaviour model β (for λ)
    "bc_pretrain_steps": 3000,
    "bc_batch_size": 64,
    "bc_lr": 1e-3,
    "bc_patience": 10,
}


def model_config(c) -> Dict[str, Any]:
    """The keys :class:`rllib_cfcql.discrete.module.CFCQLTorchRLModule` reads, from config ``c``."""
    return {
        "hidden": c.agent_hidden,
        "rnn": c.agent_rnn,
        "obs_last_action": c.resolved_obs_last_action,
        "obs_agent_id": c.obs_agent_id,
        "mixer": c.mixer,
        "mixer_embed": c.mixer_embed,
        "hyper_hidden": c.hyper_hidden,
        "mode": c.mode,
        "penalty": c.penalty,
        "joint_samples": c.joint_samples,
        "joint_greedy_stratum": c.joint_greedy_stratum,
        "use_behaviour": c.uses_behaviour_model,
    }


def validate(c, number) -> None:
    """The discrete checks of ``c.validate()`` (``number(field, lo, hi, integer, lo_open)`` fails naming the field)."""
    if not isinstance(c.joint_greedy_stratum, bool):
        c._fail("joint_greedy_stratum", c.joint_greedy_stratum, "True or False")
    if c.resolved_batch_unit == "transitions" and (c.agent_rnn or c.resolved_obs_last_action):
        c._fail("batch_unit", c.batch_unit,
                "'episodes' for a recurrent agent or obs_last_action=True (transitions carry no history); "
                "set agent_rnn=False and obs_last_action=False to train on transitions")

