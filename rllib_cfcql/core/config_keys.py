"""The top-level keys an RLlib ``AlgorithmConfig.update_from_dict`` accepts (Ray-free).

Used by :class:`rllib_cfcql.core.config.CFCQLConfig` and by the experiment-file checks."""

from __future__ import annotations

from typing import Any

# Spellings that RLlib's ``AlgorithmConfig.update_from_dict`` translates to a
# differently named attribute (see ``AlgorithmConfig._translate_special_keys``
# and ``to_dict``).  A key from this list is accepted if it, or the attribute
# it maps to, is a field of the config object.
_KEY_ALIASES = {
    "input": "input_",
    "input_": "input",
    "lambda": "lambda_",
    "lambda_": "lambda",
    "callbacks": "callbacks_class",
    "callbacks_class": "callbacks",
    "framework": "framework_str",
    "framework_str": "framework",
    "create_env_on_driver": "create_env_on_local_worker",
    "create_env_on_local_worker": "create_env_on_driver",
    "custom_eval_function": "custom_evaluation_function",
    "custom_evaluation_function": "custom_eval_function",
    "num_workers": "num_env_runners",
    "num_cpus_for_driver": "num_cpus_for_main_process",
}


def _is_settable_property(cls: type, name: str) -> bool:
    import inspect

    attr = inspect.getattr_static(cls, name, None)
    return isinstance(attr, property) and attr.fset is not None


def allowed_config_keys(config_obj: Any) -> set:
    """Top-level keys ``update_from_dict`` accepts for this config object.

    ``config_obj.to_dict()`` keys, plus the alternative spellings RLlib
    translates (``input_``/``input``, ``lambda_``/``lambda``, ``num_workers``,
    ...) and public settable properties that back a private field
    (``train_batch_size_per_learner`` for ``_train_batch_size_per_learner``),
    plus the legacy ``multiagent`` dict.
    """
    keys = set(config_obj.to_dict().keys())
    fields = set(vars(config_obj).keys())
    known = keys | fields
    for alias, target in _KEY_ALIASES.items():
        if alias in known or target in known:
            keys.add(alias)
    cls = type(config_obj)
    for k in list(known):
        if k.startswith("_") and not k.startswith("__") and _is_settable_property(cls, k[1:]):
            keys.add(k[1:])
    keys.add("multiagent")  # handled specially by update_from_dict
    keys.discard("algo_class")
    keys.discard("_is_frozen")
    return keys
