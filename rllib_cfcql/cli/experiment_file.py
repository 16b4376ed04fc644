"""Ray-free parsing of tuned-example experiment files: YAML with a duplicate-key check, deep merging,
``grid_search`` conversion, key and stop-criteria validation. Errors are :class:`ConfigError`
naming the file, the key and what was expected."""

from __future__ import annotations

import difflib
import json
import math
import re
from dataclasses import dataclass, field
from typing import Any, Dict, Iterable, List, Mapping, Optional, Sequence, Tuple

import yaml


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
    "evaluation/env_runners/win_rate": "win rate",  # tasks that report battle_won (SMAX); absent elsewhere
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
WIN_RATE_KEY = "evaluation/env_runners/win_rate"


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

    config = _mapping(body, "config", f"{source}: `config` of experiment {name!r}")

    stop = body.get("stop")
    stop = validate_stop({} if stop is None else stop, source)

    checkpoint_config = _mapping(body, "checkpoint_config", f"{source}: `checkpoint_config`")
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


def _mapping(body: dict, key: str, where: str) -> dict:
    """``body[key]`` as a dict ({} when absent or null); anything else is a ConfigError naming ``where``."""
    value = body.get(key)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ConfigError(f"{where} must be a mapping, got {type(value).__name__}.")
    return value


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
