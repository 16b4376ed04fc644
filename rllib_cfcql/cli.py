"""Command-line entry points: ``rllib train`` and ``rllib-cfcql``.

Ray >= 2.42 no longer ships the ``rllib`` command-line tool, so this package
installs its own.  It runs old-style RLlib "tuned example" YAML files::

    rllib train --file tuned_examples/cfcql-mpe.yaml \
        --stop '{"training_iteration": 50}' --config '{"lr": 0.0003}'

A tuned-example file holds exactly one experiment::

    my-experiment:
        env: <registered env name>
        run: CFCQL
        stop: {training_iteration: 100}
        config: {lr: 0.0003, ...}
        # optional:
        checkpoint_config: {checkpoint_frequency: 10}
        num_samples: 1

The module is split in two halves:

* pure helpers (YAML loading with a duplicate-key check, deep merging,
  ``grid_search`` conversion, key and stop-criteria validation) which need
  neither Ray nor RLlib and raise :class:`ConfigError` on bad input, and
* the Ray part (:func:`build_param_space`, :func:`run_train`), which imports
  Ray lazily so that ``rllib --help`` stays fast.
"""

from __future__ import annotations

import argparse
import difflib
import json
import math
import os
import re
import sys
from dataclasses import dataclass, field
from typing import Any, Dict, Iterable, List, Mapping, Optional, Sequence, Tuple

import yaml

__all__ = [
    "ConfigError",
    "ExperimentSpec",
    "EXPERIMENT_KEYS",
    "CHECKPOINT_CONFIG_KEYS",
    "KNOWN_STOP_KEYS",
    "REPORTER_METRICS",
    "UniqueKeyLoader",
    "load_yaml",
    "parse_experiment",
    "load_experiment_file",
    "parse_json_option",
    "deep_merge",
    "is_grid_search",
    "convert_search_spaces",
    "grid_search_paths",
    "first_grid_point",
    "check_config_keys",
    "validate_stop",
    "apply_overrides",
    "allowed_config_keys",
    "resolve_algorithm_class",
    "build_param_space",
    "run_train",
    "rllib_main",
    "cfcql_main",
]


class ConfigError(Exception):
    """A user error in a tuned-example file or a command-line option.

    The message is meant to be printed as-is (no traceback).
    """


# ---------------------------------------------------------------------------
# Constants
# ---------------------------------------------------------------------------

#: Keys allowed on the experiment level of a tuned-example file.
EXPERIMENT_KEYS = ("env", "run", "stop", "config", "checkpoint_config", "num_samples")

#: Keys allowed inside an experiment's ``checkpoint_config`` (fields of
#: ``ray.tune.CheckpointConfig``).
CHECKPOINT_CONFIG_KEYS = (
    "checkpoint_frequency",
    "checkpoint_at_end",
    "num_to_keep",
    "checkpoint_score_attribute",
    "checkpoint_score_order",
)

#: Single-segment (top-level) result keys accepted as stop criteria.  Any
#: nested metric may be given as a "/"-joined path, e.g.
#: ``evaluation/env_runners/episode_return_mean``.
KNOWN_STOP_KEYS = (
    "training_iteration",
    "time_total_s",
    "time_this_iter_s",
    "time_since_restore",
    "iterations_since_restore",
    "num_env_steps_sampled_lifetime",
    "num_env_steps_trained_lifetime",
    "num_episodes_lifetime",
)

# Old API-stack metric names and what to use instead.
_LEGACY_STOP_KEYS = {
    "episode_reward_mean": "env_runners/episode_return_mean",
    "episode_return_mean": "env_runners/episode_return_mean",
    "evaluation/episode_reward_mean": "evaluation/env_runners/episode_return_mean",
    "timesteps_total": "num_env_steps_sampled_lifetime",
    "episodes_total": "num_episodes_lifetime",
}

#: Metrics shown by the progress reporter: result path -> column title.
REPORTER_METRICS = {
    "training_iteration": "iter",
    "time_total_s": "total time (s)",
    "learners/default_policy/td_loss": "td_loss",
    "learners/default_policy/penalty": "penalty",
    "evaluation/env_runners/episode_return_mean": "eval return",
    "evaluation/env_runners/normalized_score": "norm. score",
}

#: What the summary of a run without evaluation reports: result path -> title.
TRAINING_SUMMARY_METRICS = {
    "learners/default_policy/td_loss": "td_loss",
    "learners/default_policy/penalty": "penalty",
    "learners/default_policy/bc_loss": "bc_loss",
    "learners/default_policy/critic_loss": "critic_loss",
    "learners/default_policy/actor_loss": "actor_loss",
    "num_env_steps_sampled_lifetime": "samples trained",
}

EVAL_RETURN_KEY = "evaluation/env_runners/episode_return_mean"
NORMALIZED_SCORE_KEY = "evaluation/env_runners/normalized_score"

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

_GRID = "grid_search"


# ---------------------------------------------------------------------------
# YAML loading
# ---------------------------------------------------------------------------


class UniqueKeyLoader(yaml.SafeLoader):
    """``yaml.SafeLoader`` that rejects duplicate mapping keys.

    Also parses exponent-only floats such as ``3e-4`` as floats (plain YAML 1.1
    needs a dot, ``3.0e-4``, and would otherwise return the string "3e-4").
    """

    #: Shown in error messages; set per load by :func:`load_yaml`.
    source = "<string>"

    def construct_mapping(self, node, deep=False):
        if isinstance(node, yaml.MappingNode):
            seen: Dict[Any, int] = {}
            for key_node, _ in node.value:
                if key_node.tag == "tag:yaml.org,2002:merge":
                    continue  # `<<: *anchor` merges may be overridden legally.
                key = self.construct_object(key_node, deep=True)
                try:
                    hash(key)
                except TypeError:
                    continue  # SafeLoader raises its own error for this.
                line = key_node.start_mark.line + 1
                if key in seen:
                    raise ConfigError(
                        f"{self.source}:{line}: duplicate key {key!r} "
                        f"(first defined on line {seen[key]}). "
                        "Each key may appear only once per mapping."
                    )
                seen[key] = line
        return super().construct_mapping(node, deep=deep)


UniqueKeyLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?[0-9][0-9_]*[eE][-+]?[0-9]+$"),
    list("-+0123456789"),
)


def load_yaml(stream: Any, source: str = "<string>") -> Any:
    """Parses YAML text (or an open file) with :class:`UniqueKeyLoader`.

    Raises:
        ConfigError: on duplicate keys or YAML syntax errors; the message names
            ``source`` and the line.
    """
    loader_cls = type("_UniqueKeyLoader", (UniqueKeyLoader,), {"source": source})
    loader = loader_cls(stream)
    try:
        return loader.get_single_data()
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        where = f"{source}:{mark.line + 1}" if mark is not None else source
        problem = " ".join(p for p in (e.context, e.problem) if p)
        raise ConfigError(f"{where}: invalid YAML: {problem}") from None
    except yaml.YAMLError as e:
        raise ConfigError(f"{source}: invalid YAML: {e}") from None
    finally:
        loader.dispose()


# ---------------------------------------------------------------------------
# Experiment spec
# ---------------------------------------------------------------------------


@dataclass
class ExperimentSpec:
    """One experiment of a tuned-example file (raw, before Ray is involved).

    ``stop`` is flat ("/"-joined metric paths -> numbers).  ``config`` is the
    raw config mapping; ``{grid_search: [...]}`` markers are still plain dicts
    (see :func:`convert_search_spaces`).
    """

    name: str
    run: str
    env: Any = None
    stop: Dict[str, float] = field(default_factory=dict)
    config: Dict[str, Any] = field(default_factory=dict)
    checkpoint_config: Dict[str, Any] = field(default_factory=dict)
    num_samples: Optional[int] = None
    source: str = "<string>"


def _suggest(word: str, candidates: Iterable[str], n: int = 3) -> List[str]:
    return difflib.get_close_matches(word, sorted(set(candidates)), n=n, cutoff=0.6)


def _did_you_mean(word: str, candidates: Iterable[str]) -> str:
    matches = _suggest(word, candidates)
    if not matches:
        return ""
    return " (did you mean " + " or ".join(repr(m) for m in matches) + "?)"


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _check_positive_int(value: Any, what: str, minimum: int) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
        raise ConfigError(f"{what} must be an integer >= {minimum}, got {value!r}")
    return value


def parse_experiment(data: Any, source: str = "<string>") -> ExperimentSpec:
    """Validates the structure of a parsed tuned-example file.

    Args:
        data: The object returned by :func:`load_yaml`.
        source: File name for error messages.

    Returns:
        The single experiment as an :class:`ExperimentSpec` (stop criteria
        validated and flattened; config keys NOT yet checked against an
        algorithm config).
    """
    if data is None:
        raise ConfigError(f"{source}: the file is empty; expected one experiment.")
    if not isinstance(data, dict):
        raise ConfigError(
            f"{source}: expected a mapping `<experiment_name>: {{env: ..., run: ..., "
            f"stop: ..., config: ...}}` at the top level, got {type(data).__name__}."
        )
    if len(data) == 0:
        raise ConfigError(f"{source}: the file defines no experiment.")
    if len(data) > 1:
        names = ", ".join(repr(k) for k in data)
        raise ConfigError(
            f"{source}: the file defines {len(data)} experiments ({names}); "
            "exactly one experiment per file is supported."
        )
    (name, body), = data.items()
    if not isinstance(name, str) or not name:
        raise ConfigError(f"{source}: the experiment name must be a string, got {name!r}.")
    if not isinstance(body, dict):
        raise ConfigError(
            f"{source}: experiment {name!r} must be a mapping with keys "
            f"{', '.join(EXPERIMENT_KEYS)}; got {type(body).__name__}."
        )
    unknown = [k for k in body if k not in EXPERIMENT_KEYS]
    if unknown:
        details = "; ".join(f"{k!r}{_did_you_mean(str(k), EXPERIMENT_KEYS)}" for k in unknown)
        raise ConfigError(
            f"{source}: unknown key(s) in experiment {name!r}: {details}. "
            f"Allowed experiment-level keys are: {', '.join(EXPERIMENT_KEYS)}. "
            "Algorithm settings belong under `config:`."
        )

    run = body.get("run")
    if not isinstance(run, str) or not run:
        raise ConfigError(
            f"{source}: experiment {name!r} needs `run: <algorithm name>` "
            f"(e.g. `run: CFCQL`), got {run!r}."
        )

    env = body.get("env")
    if env is not None and not isinstance(env, str) and not is_grid_search(env):
        raise ConfigError(
            f"{source}: `env` must be a registered env name (string), got {env!r}."
        )

    config = body.get("config")
    if config is None:
        config = {}
    if not isinstance(config, dict):
        raise ConfigError(
            f"{source}: `config` of experiment {name!r} must be a mapping, "
            f"got {type(config).__name__}."
        )

    stop = body.get("stop")
    stop = validate_stop({} if stop is None else stop, source)

    checkpoint_config = body.get("checkpoint_config")
    if checkpoint_config is None:
        checkpoint_config = {}
    if not isinstance(checkpoint_config, dict):
        raise ConfigError(
            f"{source}: `checkpoint_config` must be a mapping, "
            f"got {type(checkpoint_config).__name__}."
        )
    bad = [k for k in checkpoint_config if k not in CHECKPOINT_CONFIG_KEYS]
    if bad:
        details = "; ".join(
            f"{k!r}{_did_you_mean(str(k), CHECKPOINT_CONFIG_KEYS)}" for k in bad
        )
        raise ConfigError(
            f"{source}: unknown key(s) in `checkpoint_config`: {details}. "
            f"Allowed: {', '.join(CHECKPOINT_CONFIG_KEYS)}."
        )

    num_samples = body.get("num_samples")
    if num_samples is not None:
        _check_positive_int(num_samples, f"{source}: `num_samples`", 1)

    return ExperimentSpec(
        name=name,
        run=run,
        env=env,
        stop=stop,
        config=config,
        checkpoint_config=dict(checkpoint_config),
        num_samples=num_samples,
        source=source,
    )


def load_experiment_file(path: str) -> ExperimentSpec:
    """Reads and parses a tuned-example YAML file (see :func:`parse_experiment`)."""
    try:
        with open(path, "r", encoding="utf-8") as f:
            data = load_yaml(f, source=path)
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such file.") from None
    except IsADirectoryError:
        raise ConfigError(f"{path}: is a directory, expected a YAML file.") from None
    except OSError as e:
        raise ConfigError(f"{path}: cannot read file: {e.strerror or e}") from None
    return parse_experiment(data, source=path)


# ---------------------------------------------------------------------------
# Command-line JSON overrides and merging
# ---------------------------------------------------------------------------


def parse_json_option(text: str, flag: str) -> Dict[str, Any]:
    """Parses the JSON object given to a command-line flag (e.g. ``--config``).

    Rejects invalid JSON, non-object JSON and duplicate keys, naming ``flag``.
    """

    def _pairs(pairs):
        out: Dict[str, Any] = {}
        for k, v in pairs:
            if k in out:
                raise ConfigError(f"{flag}: duplicate key {k!r} in the JSON object.")
            out[k] = v
        return out

    try:
        value = json.loads(text, object_pairs_hook=_pairs)
    except json.JSONDecodeError as e:
        raise ConfigError(
            f"{flag}: invalid JSON ({e.msg} at line {e.lineno} column {e.colno}): "
            f"{text!r}. Pass a JSON object, e.g. {flag} '{{\"key\": 1}}' "
            "(mind the shell quoting)."
        ) from None
    if not isinstance(value, dict):
        raise ConfigError(
            f"{flag}: expected a JSON object like '{{\"key\": ...}}', "
            f"got {type(value).__name__}: {text!r}."
        )
    return value


def is_grid_search(value: Any) -> bool:
    """True for a mapping of exactly the form ``{"grid_search": [...]}``."""
    return isinstance(value, dict) and len(value) == 1 and _GRID in value


def deep_merge(base: Mapping[str, Any], override: Mapping[str, Any]) -> Dict[str, Any]:
    """Returns ``base`` updated by ``override``; nested dicts are merged.

    A ``{grid_search: [...]}`` marker on either side is treated as a value,
    not as a dict to merge into (it replaces / is replaced as a whole).
    Neither input is modified.
    """
    result: Dict[str, Any] = {k: v for k, v in base.items()}
    for key, value in override.items():
        old = result.get(key)
        if (
            isinstance(old, dict)
            and isinstance(value, dict)
            and not is_grid_search(old)
            and not is_grid_search(value)
        ):
            result[key] = deep_merge(old, value)
        else:
            result[key] = value
    return result


# ---------------------------------------------------------------------------
# Search spaces
# ---------------------------------------------------------------------------


def _fmt_path(path: Sequence[Any]) -> str:
    out = ""
    for p in path:
        if isinstance(p, int) and not isinstance(p, bool):
            out += f"[{p}]"
        else:
            out += ("." if out else "") + str(p)
    return out


def _contains_grid_search(value: Any) -> bool:
    if isinstance(value, dict):
        return _GRID in value or any(_contains_grid_search(v) for v in value.values())
    if isinstance(value, list):
        return any(_contains_grid_search(v) for v in value)
    return False


def convert_search_spaces(value: Any, path: str = "config") -> Any:
    """Replaces every ``{grid_search: [...]}`` mapping by ``tune.grid_search``.

    Works recursively through dicts and lists and returns a new structure
    (the input is not modified).  Values without markers are returned as-is.

    Raises:
        ConfigError: for a ``grid_search`` key next to other keys, a
            ``grid_search`` value that is not a non-empty list, or a
            ``grid_search`` nested inside the options of another one.
    """
    return _convert(value, [path])


def _convert(value: Any, path: List[Any]) -> Any:
    if isinstance(value, dict):
        if _GRID in value:
            where = _fmt_path(path)
            if len(value) != 1:
                others = ", ".join(repr(k) for k in value if k != _GRID)
                raise ConfigError(
                    f"{where}: `grid_search` must be the only key of its mapping "
                    f"(found also {others}). Write `{{grid_search: [...]}}` as the "
                    "whole value of the setting to search over."
                )
            options = value[_GRID]
            if not isinstance(options, list) or not options:
                raise ConfigError(
                    f"{where}: `grid_search` needs a non-empty list of values, "
                    f"got {options!r}."
                )
            if any(_contains_grid_search(o) for o in options):
                raise ConfigError(
                    f"{where}: nested `grid_search` inside the options of another "
                    "`grid_search` is not supported."
                )
            from ray import tune  # lazy: only needed when a grid is present

            return tune.grid_search(list(options))
        return {k: _convert(v, path + [k]) for k, v in value.items()}
    if isinstance(value, list):
        return [_convert(v, path + [i]) for i, v in enumerate(value)]
    return value


def grid_search_paths(value: Any, prefix: Tuple[Any, ...] = ()) -> List[Tuple[Any, ...]]:
    """Paths (tuples of keys / list indices) of all grid-search markers."""
    if is_grid_search(value):
        return [prefix]
    out: List[Tuple[Any, ...]] = []
    if isinstance(value, dict):
        for k, v in value.items():
            out.extend(grid_search_paths(v, prefix + (k,)))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            out.extend(grid_search_paths(v, prefix + (i,)))
    return out


def first_grid_point(value: Any) -> Any:
    """Replaces every grid-search marker by its first option (new structure)."""
    if is_grid_search(value):
        options = value[_GRID]
        return first_grid_point(options[0]) if isinstance(options, list) and options else None
    if isinstance(value, dict):
        return {k: first_grid_point(v) for k, v in value.items()}
    if isinstance(value, list):
        return [first_grid_point(v) for v in value]
    return value


# ---------------------------------------------------------------------------
# Validation against known keys / stop criteria
# ---------------------------------------------------------------------------


def check_config_keys(
    config: Mapping[Any, Any],
    allowed: Iterable[str],
    source: str,
    where: str = "config",
) -> None:
    """Raises ConfigError if ``config`` has a top-level key not in ``allowed``.

    The message lists every unknown key with close matches (difflib), and
    names ``source`` (file name or command-line flag) and ``where``.
    If ``config`` has an ``evaluation_config`` mapping, its keys are checked
    against the same ``allowed`` set.
    """
    allowed = set(allowed)
    unknown = [k for k in config if not isinstance(k, str) or k not in allowed]
    if unknown:
        lines = []
        for k in unknown:
            if not isinstance(k, str):
                lines.append(f"  {k!r}: keys must be strings")
            else:
                lines.append(f"  {k!r}{_did_you_mean(k, allowed)}")
        plural = "s" if len(unknown) > 1 else ""
        raise ConfigError(
            f"{source}: unknown key{plural} in `{where}`:\n"
            + "\n".join(lines)
            + "\nValid keys are the fields of the algorithm's config object "
            "(AlgorithmConfig.to_dict())."
        )
    eval_cfg = config.get("evaluation_config")
    if isinstance(eval_cfg, dict) and not is_grid_search(eval_cfg):
        check_config_keys(eval_cfg, allowed, source, where=f"{where}.evaluation_config")


def _flatten_stop(stop: Mapping[Any, Any], source: str, prefix: str = "") -> Dict[str, Any]:
    flat: Dict[str, Any] = {}
    for key, value in stop.items():
        if not isinstance(key, str) or not key:
            raise ConfigError(f"{source}: stop criterion keys must be strings, got {key!r}.")
        full = f"{prefix}/{key}" if prefix else key
        if isinstance(value, dict):
            if not value:
                raise ConfigError(f"{source}: stop criterion {full!r} is an empty mapping.")
            flat.update(_flatten_stop(value, source, full))
        else:
            flat[full] = value
    return flat


def validate_stop(stop: Any, source: str = "<string>") -> Dict[str, float]:
    """Validates stop criteria and returns them flat ("/"-joined keys).

    Accepts the top-level result keys in :data:`KNOWN_STOP_KEYS` and any
    nested metric, written either as a "/"-joined path ("a/b/c") or as nested
    mappings.  Every value must be a (non-bool, non-NaN) number.
    """
    if not isinstance(stop, dict):
        raise ConfigError(
            f"{source}: `stop` must be a mapping of metric -> number, "
            f"got {type(stop).__name__}: {stop!r}."
        )
    flat = _flatten_stop(stop, source)
    for key, value in flat.items():
        segments = key.split("/")
        if any(not s for s in segments):
            raise ConfigError(
                f"{source}: stop criterion {key!r} has an empty path segment; "
                "nested metrics are written as 'a/b/c'."
            )
        if key in _LEGACY_STOP_KEYS:
            raise ConfigError(
                f"{source}: stop criterion {key!r} is an old-API-stack metric "
                f"that RLlib no longer reports; use {_LEGACY_STOP_KEYS[key]!r}."
            )
        if len(segments) == 1 and key not in KNOWN_STOP_KEYS:
            raise ConfigError(
                f"{source}: unknown stop criterion {key!r}"
                f"{_did_you_mean(key, KNOWN_STOP_KEYS)}. Top-level stop keys "
                f"are: {', '.join(KNOWN_STOP_KEYS)}; nested metrics are written as "
                "a '/'-joined path such as 'evaluation/env_runners/episode_return_mean'."
            )
        if not _is_number(value) or (isinstance(value, float) and math.isnan(value)):
            raise ConfigError(
                f"{source}: stop criterion {key!r} must be a number, got {value!r}"
                f" ({type(value).__name__})."
            )
    return flat


def apply_overrides(
    spec: ExperimentSpec,
    stop_json: Optional[str] = None,
    config_json: Optional[str] = None,
) -> Tuple[ExperimentSpec, Dict[str, Any]]:
    """Merges ``--stop`` / ``--config`` JSON over the file's stop / config.

    Returns the merged spec and the parsed ``--config`` object (so callers can
    attribute unknown keys to ``--config`` rather than to the file).
    """
    stop = dict(spec.stop)
    if stop_json is not None:
        stop.update(validate_stop(parse_json_option(stop_json, "--stop"), "--stop"))
    cli_config: Dict[str, Any] = {}
    config = spec.config
    if config_json is not None:
        cli_config = parse_json_option(config_json, "--config")
        config = deep_merge(config, cli_config)
    merged = ExperimentSpec(
        name=spec.name,
        run=spec.run,
        env=spec.env,
        stop=stop,
        config=config,
        checkpoint_config=dict(spec.checkpoint_config),
        num_samples=spec.num_samples,
        source=spec.source,
    )
    return merged, cli_config


# ---------------------------------------------------------------------------
# Ray / RLlib part (lazy imports)
# ---------------------------------------------------------------------------


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


def resolve_algorithm_class(run: str, source: str = "<string>") -> type:
    """Returns the Algorithm class registered with Tune under ``run``."""
    import rllib_cfcql

    rllib_cfcql.register()  # registers "CFCQL" and the team envs
    from ray.tune.error import TuneError
    from ray.tune.registry import get_trainable_cls

    known: List[str] = ["CFCQL"]
    try:
        from ray.rllib.algorithms.registry import ALGORITHMS

        known += list(ALGORITHMS)
    except ImportError:  # pragma: no cover
        ALGORITHMS = {}

    try:
        cls = get_trainable_cls(run)
    except TuneError:
        cls = None
    except ImportError:
        # Looking up a name that is not registered yet makes Tune import every
        # built-in RLlib algorithm; one of them may need an optional package
        # (e.g. DreamerV3 needs Pillow).  Import just the one asked for.
        cls = None
        if run in ALGORITHMS:
            cls = ALGORITHMS[run]()[0]
    if cls is None:
        raise ConfigError(
            f"{source}: unknown algorithm `run: {run}`{_did_you_mean(run, known)}. "
            f"Known algorithms: {', '.join(sorted(set(known)))}."
        )
    if not hasattr(cls, "get_default_config"):
        raise ConfigError(
            f"{source}: `run: {run}` is a Tune trainable but not an RLlib Algorithm."
        )
    return cls


def _check_env_name(env: Any, source: str) -> None:
    """Errors early for an env name that RLlib could not resolve at all."""
    if not isinstance(env, str) or any(c in env for c in ".:/"):
        return  # class paths / "module:Env-v0" ids are resolved by RLlib itself.
    from ray.tune.registry import ENV_CREATOR, _global_registry

    if _global_registry.contains(ENV_CREATOR, env):
        return
    try:
        import gymnasium

        if env in gymnasium.envs.registry:
            return
        gym_ids = list(gymnasium.envs.registry.keys())
    except ImportError:  # pragma: no cover
        gym_ids = []
    registered: List[str] = []
    try:  # best effort, only used for the suggestion
        registered = [k for (cat, k) in _global_registry._to_flush if cat == ENV_CREATOR]
    except Exception:  # pragma: no cover
        pass
    hint = _did_you_mean(env, registered + gym_ids)
    names = f" Registered env names: {', '.join(sorted(registered))}." if registered else ""
    raise ConfigError(
        f"{source}: unknown env {env!r}{hint}: it is neither registered with "
        f"`ray.tune.registry.register_env` nor a gymnasium id.{names}"
    )


def build_param_space(
    spec: ExperimentSpec,
    cli_config: Optional[Mapping[str, Any]] = None,
    validate: bool = True,
) -> Tuple[type, Dict[str, Any], Any]:
    """Builds Tune's ``param_space`` for ``spec`` (no ``ray.init`` needed).

    Steps: resolve ``spec.run`` to an Algorithm class, check config keys
    against :func:`allowed_config_keys` of its default config, apply ``env``
    with ``config.environment()`` and the rest with ``update_from_dict``, and
    (if ``validate``) call ``config.validate()`` -- on the first grid point
    when the config contains ``grid_search`` markers.

    Returns:
        (algorithm class, param_space dict for Tune, the AlgorithmConfig of
        the first grid point).
    """
    source = spec.source
    algo_cls = resolve_algorithm_class(spec.run, source)
    default_config = algo_cls.get_default_config()
    allowed = allowed_config_keys(default_config)

    raw = dict(spec.config)
    file_keys = {k: v for k, v in raw.items() if not cli_config or k not in cli_config}
    check_config_keys(file_keys, allowed, source)
    if cli_config:
        check_config_keys(cli_config, allowed, "--config")

    env = spec.env
    if "env" in raw:
        if cli_config and "env" in cli_config:
            env = None  # `--config '{"env": ...}'` overrides the file's `env`.
        if env is not None and raw["env"] != env:
            raise ConfigError(
                f"{source}: env given twice with different values: "
                f"`env: {env}` (experiment) and `config.env: {raw['env']}`."
            )
        env = raw.pop("env")
    if env is None and not getattr(algo_cls, "trains_without_env", False):
        raise ConfigError(
            f"{source}: experiment {spec.name!r} has no `env`; add `env: <name>`."
        )
    env_config = raw.pop("env_config", None)

    # Convert (and thereby validate) grid-search markers.
    converted_env = convert_search_spaces(env, "env")
    converted_env_config = convert_search_spaces(env_config, "config.env_config")
    converted = convert_search_spaces(raw, "config")
    has_grid = bool(
        grid_search_paths(env) or grid_search_paths(env_config) or grid_search_paths(raw)
    )

    def _make(point_env, point_env_config, point_rest):
        cfg = algo_cls.get_default_config()
        kwargs = {"env": point_env}
        if point_env_config is not None:
            kwargs["env_config"] = point_env_config
        cfg.environment(**kwargs)
        cfg.update_from_dict(point_rest)
        return cfg

    env0 = first_grid_point(env)
    for e in ([env0] if not is_grid_search(env) else env["grid_search"]):
        _check_env_name(e, source)
    try:
        config0 = _make(env0, first_grid_point(env_config), first_grid_point(raw))
    except Exception as e:  # noqa: BLE001 -- turn RLlib errors into a clean message
        raise ConfigError(f"{source}: cannot apply config: {type(e).__name__}: {e}") from None

    param_space = config0.to_dict()
    if has_grid:
        # Re-insert the settings that contain grid-search markers, under the
        # user's own key and *last* in the dict, so that Algorithm's
        # `update_from_dict(resolved_config)` applies them after (and on top
        # of) the first-point values already in `param_space`.
        entries: List[Tuple[str, Any]] = []
        if grid_search_paths(env):
            entries.append(("env", converted_env))
        if grid_search_paths(env_config):
            entries.append(("env_config", converted_env_config))
        for key, value in converted.items():
            if grid_search_paths(raw[key]):
                entries.append((key, value))
        for key, value in entries:
            param_space.pop(key, None)
            param_space[key] = value

    if validate:
        try:
            config0.validate()
        except Exception as e:  # noqa: BLE001
            msg = str(e).strip()
            msg = msg.replace(
                "\nTo suppress all validation errors, set "
                "`config.experimental(_validate_config=False)` at your own risk.",
                "",
            )
            where = " (first grid-search point)" if has_grid else ""
            raise ConfigError(f"{source}: invalid config{where}: {msg}") from None
    return algo_cls, param_space, config0


def _lookup(result: Mapping[str, Any], path: str) -> Any:
    node: Any = result
    for part in path.split("/"):
        if not isinstance(node, Mapping) or part not in node:
            return None
        node = node[part]
    return node


def _fmt_num(value: Any) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, float):
        if math.isnan(value):
            return "n/a"
        return f"{value:.4g}"
    return str(value)


def _best_and_last_eval(result: Any) -> Tuple[Any, Any, Any, Any]:
    """(best eval return, its iteration, last eval return, its iteration)."""
    df = getattr(result, "metrics_dataframe", None)
    if df is None or EVAL_RETURN_KEY not in getattr(df, "columns", ()):
        return None, None, None, None
    col = df[EVAL_RETURN_KEY].dropna()
    if col.empty:
        return None, None, None, None
    it = df["training_iteration"] if "training_iteration" in df.columns else None
    best_idx = col.idxmax()
    last_idx = col.index[-1]
    best_it = int(it[best_idx]) if it is not None else None
    last_it = int(it[last_idx]) if it is not None else None
    return float(col[best_idx]), best_it, float(col[last_idx]), last_it


def _format_params(config: Mapping[str, Any], paths: List[Tuple[Any, ...]]) -> str:
    parts = []
    for path in paths:
        node: Any = config
        try:
            for p in path:
                node = node[p]
        except (KeyError, IndexError, TypeError):
            continue
        parts.append(f"{'/'.join(str(p) for p in path)}={node!r}")
    return ", ".join(parts)


def _print_error(r: Any, out) -> None:
    err_file = os.path.join(str(r.path), "error.txt") if r.path else None
    if err_file and os.path.exists(err_file):
        print(f"  error file         : {err_file}", file=out)
    first = str(r.error).strip().splitlines()
    print(f"  error              : {first[-1] if first else type(r.error).__name__}", file=out)


def _print_summary(result_grid: Any, spec: ExperimentSpec, grid_paths, out=None, evaluated: bool = True) -> int:
    """Prints a per-trial summary; returns 1 if any trial errored, else 0.

    ``evaluated=False`` (a run without env): training metrics instead of evaluation returns.
    """
    out = out or sys.stdout
    results = list(result_grid)
    n_err = 0
    print("", file=out)
    print(
        f"== {spec.name}: {len(results)} trial(s), results in "
        f"{getattr(result_grid, 'experiment_path', '?')} ==",
        file=out,
    )
    for r in results:
        metrics = r.metrics or {}
        name = os.path.basename(str(r.path)) if getattr(r, "path", None) else "trial"
        status = "ERROR" if r.error else "TERMINATED"
        if r.error:
            n_err += 1
        print(f"\nTrial {name}  [{status}]", file=out)
        params = _format_params(r.config or {}, grid_paths) if grid_paths else ""
        if params:
            print(f"  params             : {params}", file=out)
        print(f"  iterations         : {_fmt_num(metrics.get('training_iteration'))}", file=out)
        if not evaluated:
            print("  evaluation         : off (no env: trained from the dataset alone)", file=out)
            for key, title in TRAINING_SUMMARY_METRICS.items():
                value = _lookup(metrics, key)
                if value is not None:
                    print(f"  {title:<19}: {_fmt_num(value)}", file=out)
            ckpt = getattr(r, "checkpoint", None)
            print(f"  last checkpoint    : {ckpt.path if ckpt is not None else 'none'}", file=out)
            if r.error:
                _print_error(r, out)
            continue
        best, best_it, last, last_it = _best_and_last_eval(r)
        final = _lookup(metrics, EVAL_RETURN_KEY)
        if final is None and last is not None:
            final_s = f"{_fmt_num(last)} (iteration {last_it})"
        else:
            final_s = _fmt_num(final)
        print(f"  final eval return  : {final_s}", file=out)
        print(f"  normalized score   : {_fmt_num(_lookup(metrics, NORMALIZED_SCORE_KEY))}", file=out)
        best_s = _fmt_num(best) + (f" (iteration {best_it})" if best_it is not None else "")
        print(f"  best eval return   : {best_s}", file=out)
        ckpt = getattr(r, "checkpoint", None)
        print(f"  last checkpoint    : {ckpt.path if ckpt is not None else 'none'}", file=out)
        if r.error:
            _print_error(r, out)
    print("", file=out)
    if n_err:
        print(f"{n_err} of {len(results)} trial(s) errored.", file=out)
    return 1 if n_err else 0


def _init_ray(num_cpus: Optional[int]) -> None:
    import ray

    if ray.is_initialized():
        return
    address = os.environ.get("RAY_ADDRESS")
    if address:
        # `ray job submit -- rllib train ...` and cluster shells set RAY_ADDRESS.
        ray.init(address="auto", ignore_reinit_error=True)
    else:
        n = num_cpus if num_cpus is not None else max(os.cpu_count() or 1, 4)
        # address="local": always a fresh instance of the requested size; a bare ray.init()
        # would silently join another local Ray already running on this machine
        ray.init(address="local", num_cpus=n, include_dashboard=False, ignore_reinit_error=True)


def _check_cluster_fits(algo_cls: Any, config: Any) -> Optional[str]:
    """Refuse to start a trial that can never be scheduled (it would sit PENDING forever)."""
    import ray

    try:
        pgf = algo_cls.default_resource_request(config)
        need = sum(b.get("CPU", 0) for b in pgf.bundles)
        need_gpu = sum(b.get("GPU", 0) for b in pgf.bundles)
    except Exception:  # noqa: BLE001 - algorithms without a resource request
        return None
    have = ray.cluster_resources()
    if need > have.get("CPU", 0) or need_gpu > have.get("GPU", 0):
        return (
            f"one trial needs {need:g} logical CPUs and {need_gpu:g} GPUs (main process, learners, "
            f"env runners, data reader), but Ray has {have.get('CPU', 0):g} CPUs and {have.get('GPU', 0):g} GPUs; "
            "start Ray with more logical CPUs (--ray-num-cpus) or lower num_learners / "
            "evaluation_num_env_runners"
        )
    return None


def check_datasets(config0: Any, param_space: Mapping[str, Any]) -> None:
    """Validates every dataset a run would read, in this process and before Ray starts
    (:func:`rllib_cfcql.data.validate.preflight`): a bad file fails as one ConfigError line naming
    the file, row and problem. Grid-search points over ``input_`` are each checked."""
    if not hasattr(config0, "team_spec"):
        return  # not a team-dataset algorithm
    from rllib_cfcql.data.schema import DatasetError
    from rllib_cfcql.data.validate import preflight

    inputs = [config0.input_]
    for key in ("input_", "input"):
        value = param_space.get(key)
        if isinstance(value, Mapping) and "grid_search" in value:
            inputs = list(value["grid_search"])
    for inp in inputs:
        try:
            preflight(inp, config0.team_spec(), config0.env, bool(getattr(config0, "trust_dataset_card", False)))
        except DatasetError as e:
            raise ConfigError(f"dataset: {e}") from None


def run_train(args: argparse.Namespace) -> int:
    """Implements ``rllib train`` for parsed ``args``; returns the exit code.

    Raises:
        ConfigError: for any problem with the file or the options.
    """
    if args.checkpoint_freq is not None:
        _check_positive_int(args.checkpoint_freq, "--checkpoint-freq", 0)
    if args.num_samples is not None:
        _check_positive_int(args.num_samples, "--num-samples", 1)

    spec = load_experiment_file(args.file)
    spec, cli_config = apply_overrides(spec, args.stop, args.config)
    name = args.name or spec.name

    algo_cls, param_space, config0 = build_param_space(spec, cli_config)
    grid_paths = grid_search_paths(param_space)
    if not args.no_dataset_check:
        check_datasets(config0, param_space)

    ckpt = dict(spec.checkpoint_config)
    if args.checkpoint_freq is not None:
        ckpt["checkpoint_frequency"] = args.checkpoint_freq
    ckpt.setdefault("checkpoint_frequency", 0)
    ckpt.setdefault("checkpoint_at_end", True)
    num_samples = args.num_samples or spec.num_samples or 1

    storage_path = args.storage_path or "./results"
    if "://" not in storage_path:
        storage_path = os.path.abspath(os.path.expanduser(storage_path))
    resume_path = None
    if args.resume is not None:
        resume_path = args.resume or os.path.join(storage_path, name)
        if "://" not in resume_path:
            resume_path = os.path.abspath(os.path.expanduser(resume_path))
            if not os.path.exists(os.path.join(resume_path, "tuner.pkl")):
                raise ConfigError(
                    f"--resume: {resume_path} holds no Tune experiment to resume (no tuner.pkl); "
                    "give the experiment directory printed by the interrupted run "
                    "(<storage-path>/<name>)"
                )

    if args.dry_run:
        print(f"experiment   : {name}  (from {spec.source})")
        print(f"algorithm    : {algo_cls.__name__}")
        print(f"env          : {param_space.get('env')!r}")
        print(f"stop         : {json.dumps(spec.stop)}")
        print(f"num_samples  : {num_samples}")
        if grid_paths:
            print("grid search  : " + ", ".join("/".join(map(str, p)) for p in grid_paths))
        print(f"checkpoint   : {ckpt}")
        print(f"storage_path : {storage_path}")
        if resume_path:
            print(f"resume       : {resume_path}")
        print("config OK (validated; --dry-run, nothing was run).")
        return 0

    # Use the classic reporter (its table is compact and configurable); the
    # newer AIR output ignores custom reporters.  RAY_AIR_NEW_OUTPUT=1 in the
    # environment keeps the new output.
    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")
    # Tune saves the experiment state (which trial checkpoint is the latest: what --resume restores)
    # at most every 10 s by default; a crash in that window would resume from an older checkpoint
    os.environ.setdefault("TUNE_GLOBAL_CHECKPOINT_S", "2")

    from ray import tune

    try:
        _init_ray(args.ray_num_cpus)
    except Exception as e:  # noqa: BLE001
        where = os.environ.get("RAY_ADDRESS")
        target = f"the Ray cluster at RAY_ADDRESS={where}" if where else "a local Ray instance"
        print(f"rllib train: error: could not start {target}: {e}", file=sys.stderr)
        return 1

    problem = _check_cluster_fits(algo_cls, config0)
    if problem:
        print(f"rllib train: error: {problem}", file=sys.stderr)
        return 2

    reporter = None
    if os.environ.get("RAY_AIR_NEW_OUTPUT") == "0":
        reporter = tune.CLIReporter(
            metric_columns=dict(REPORTER_METRICS),
            max_report_frequency=10,
            print_intermediate_tables=True,
            max_column_length=24,
        )

    verbose = min(1 + (args.verbose or 0), 3)
    if resume_path:
        # Tune's restore: unfinished (e.g. killed) trials continue from their last checkpoint,
        # with the stop criteria, checkpointing and param space of the interrupted run
        print(f"resuming {resume_path} from its last checkpoints")
        tuner = tune.Tuner.restore(resume_path, trainable=algo_cls, param_space=param_space,
                                   resume_unfinished=True, resume_errored=True)
    else:
        tuner = tune.Tuner(
            algo_cls,
            param_space=param_space,
            tune_config=tune.TuneConfig(num_samples=num_samples),
            run_config=tune.RunConfig(
                name=name,
                storage_path=storage_path,
                stop=spec.stop or None,
                checkpoint_config=tune.CheckpointConfig(**ckpt),
                verbose=verbose,
                progress_reporter=reporter,
            ),
        )
    result_grid = tuner.fit()
    evaluated = bool(getattr(config0, "evaluation_interval", None))
    return _print_summary(result_grid, spec, grid_paths, evaluated=evaluated)


# ---------------------------------------------------------------------------
# Argument parsing / entry points
# ---------------------------------------------------------------------------

_TRAIN_DESCRIPTION = """\
Train an algorithm from an RLlib tuned-example YAML file with Ray Tune.

The file holds exactly one experiment:

  <experiment_name>:
    env: <registered env name>       # or null: train from the dataset alone
    run: CFCQL
    stop: {training_iteration: 100}
    config: {lr: 0.0003, ...}
    checkpoint_config: {checkpoint_frequency: 10}   # optional
    num_samples: 1                                   # optional

Any value under `config` may be `{grid_search: [a, b, ...]}`. The dataset is read
and validated before Ray starts. `--resume` continues an interrupted experiment.
Exit codes: 0 success, 1 a trial failed, 2 usage, config or dataset error.
"""


def _add_train_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("-f", "--file", required=True, metavar="FILE.yaml",
                   help="tuned-example YAML file with one experiment")
    p.add_argument("--stop", metavar="JSON",
                   help="JSON object merged over the file's `stop`, "
                        "e.g. '{\"training_iteration\": 10}'")
    p.add_argument("--config", metavar="JSON",
                   help="JSON object deep-merged over the file's `config`, "
                        "e.g. '{\"lr\": 0.0003}'")
    p.add_argument("--storage-path", metavar="DIR",
                   help="where Tune writes results and checkpoints (default: ./results)")
    p.add_argument("--checkpoint-freq", type=int, metavar="N",
                   help="checkpoint every N iterations (default: from the file, "
                        "else 0 = only at the end)")
    p.add_argument("--num-samples", type=int, metavar="N",
                   help="repeat every grid point N times (default: from the file, else 1)")
    p.add_argument("--name", help="experiment name (default: the key in the file)")
    p.add_argument("--ray-num-cpus", type=int, metavar="N",
                   help="logical CPUs for a local Ray instance "
                        "(default: max(cpu_count, 4); ignored with RAY_ADDRESS)")
    p.add_argument("--resume", nargs="?", const="", default=None, metavar="DIR",
                   help="continue an interrupted experiment from its last checkpoints (Tune's restore); "
                        "DIR defaults to <storage-path>/<name>")
    p.add_argument("--no-dataset-check", action="store_true",
                   help="skip reading and validating the dataset before Ray starts")
    p.add_argument("--dry-run", action="store_true",
                   help="load and validate the file, the options and the dataset, then exit")
    p.add_argument("-v", "--verbose", action="count", default=0,
                   help="more Tune output (-v: trial results, -vv: full results)")


def _run_train_cli(args: argparse.Namespace, prog: str) -> int:
    try:
        return run_train(args)
    except ConfigError as e:
        print(f"{prog}: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"{prog}: interrupted", file=sys.stderr)
        return 130


def rllib_main(argv: Optional[List[str]] = None) -> int:
    """Entry point of the ``rllib`` command (``rllib train --file ...``)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = argparse.ArgumentParser(
        prog="rllib",
        description="RLlib command line (provided by rllib-cfcql for Ray >= 2.42).",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    train = sub.add_parser(
        "train", help="train from a tuned-example YAML file",
        description=_TRAIN_DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _add_train_arguments(train)
    args = parser.parse_args(argv)
    return _run_train_cli(args, "rllib train")


def cfcql_main(argv: Optional[List[str]] = None) -> int:
    """Entry point of the ``rllib-cfcql`` command (``train`` and ``data``)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == "export":
        from rllib_cfcql.export import main as export_main

        return int(export_main(argv[1:]) or 0)
    if argv and argv[0] == "data":
        try:
            from rllib_cfcql.data.commands import main as data_main
        except ModuleNotFoundError as e:
            if e.name not in ("rllib_cfcql.data", "rllib_cfcql.data.commands"):
                raise
            print(f"rllib-cfcql data: error: not available ({e})", file=sys.stderr)
            return 2
        return int(data_main(argv[1:]) or 0)
    parser = argparse.ArgumentParser(
        prog="rllib-cfcql",
        description="CFCQL for RLlib: training and offline-data tools.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    train = sub.add_parser(
        "train", help="train from a tuned-example YAML file (same as `rllib train`)",
        description=_TRAIN_DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _add_train_arguments(train)
    sub.add_parser(
        "data", help="offline-dataset tools (see `rllib-cfcql data --help`)",
        add_help=False,
    )
    sub.add_parser(
        "export", help="export a checkpoint's policy to TorchScript/ONNX (see `rllib-cfcql export --help`)",
        add_help=False,
    )
    args = parser.parse_args(argv)
    return _run_train_cli(args, "rllib-cfcql train")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(rllib_main())
