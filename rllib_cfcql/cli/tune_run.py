"""The Ray part of ``rllib train``: resolve the algorithm, build Tune's param space, check the
datasets before Ray starts, run the Tuner and print the summary. Ray is imported lazily."""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
from typing import Any, Dict, List, Mapping, Optional, Tuple

from rllib_cfcql.cli.experiment_file import (
    EVAL_RETURN_KEY,
    NORMALIZED_SCORE_KEY,
    REPORTER_METRICS,
    TRAINING_SUMMARY_METRICS,
    WIN_RATE_KEY,
    ConfigError,
    ExperimentSpec,
    _check_positive_int,
    _did_you_mean,
    apply_overrides,
    check_config_keys,
    convert_search_spaces,
    first_grid_point,
    grid_search_paths,
    is_grid_search,
    load_experiment_file,
)
from rllib_cfcql.core.config_keys import (
    allowed_config_keys,
)


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
        win = _lookup(metrics, WIN_RATE_KEY)
        if win is not None:
            print(f"  win rate           : {_fmt_num(win)}", file=out)
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
