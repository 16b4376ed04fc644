"""Dataset validation outside Ray: one data file, one dataset directory, or a training run's inputs.

* :func:`validate_dataset` — the full check of a dataset directory (``rllib-cfcql data validate``).
* :func:`preflight` — what ``rllib train`` checks before it starts Ray: every input file is
  readable and matches the team schema and the task's shapes, episodes are well-formed, and each
  card's content hash still matches its files (:func:`check_content_hash`). A bad dataset then fails
  with one line naming the file, row and problem instead of a trial traceback.
* :func:`card_team_spec` — the team shapes recorded in a card (dataset-only training).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Iterable

import pyarrow as pa
import pyarrow.json as pajson
import pyarrow.parquet as pq

from rllib_cfcql.data.schema import (
    PATH_COLUMN,
    DatasetError,
    EpisodeArrays,
    assemble_parts,
    columns_from_arrow,
)
from rllib_cfcql.data.writer import CARD_NAME, data_files, files_hash
from rllib_cfcql.envs.base import TeamSpec

#: The config field that lets a run train on data whose card no longer matches its files.
TRUST_OPTION = "trust_dataset_card"


def read_table(path: Path) -> pa.Table:
    """Read one data file in-process (pyarrow) with a `path` column, as ray.data does."""
    from rllib_cfcql.data.offline import check_file

    path = Path(path)
    check_file(path)
    try:
        t = pq.read_table(path) if path.suffix == ".parquet" else pajson.read_json(path)
    except Exception as e:
        raise DatasetError(f"{path}: cannot be read: {e}") from None
    return t.append_column(PATH_COLUMN, pa.array([str(path)] * t.num_rows))


def load_card(directory: Path) -> dict:
    p = Path(directory) / CARD_NAME
    if not p.exists():
        raise DatasetError(f"{directory}: no {CARD_NAME} (a team dataset is a directory with data-*.parquet|json and card.json)")
    try:
        with open(p) as f:
            card = json.load(f)
    except ValueError as e:
        raise DatasetError(f"{p}: not valid JSON ({e})") from None
    if not isinstance(card, dict):
        raise DatasetError(f"{p}: expected a JSON object, got {type(card).__name__}")
    return card


def card_team_spec(card: dict, where: str) -> TeamSpec:
    """The :class:`TeamSpec` a card records under ``spec`` (DatasetError naming ``where`` if absent/bad)."""
    spec = card.get("spec")
    if not isinstance(spec, dict):
        raise DatasetError(f"{where}: the card has no `spec` with the team's shapes "
                           "(n_agents, obs_dim, state_dim, n_actions, continuous)")
    return team_spec_from_mapping(spec, f"{where}: card field `spec`")


def team_spec_from_mapping(spec: Any, where: str) -> TeamSpec:
    """Checks a user-given shapes mapping and returns its :class:`TeamSpec`.

    Required: ``n_agents``, ``obs_dim``, ``state_dim``, ``n_actions`` (positive integers; for a
    continuous task ``n_actions`` is each agent's action dimension); optional: ``continuous``
    (bool, default False) and ``episode_limit`` (integer >= 0, default 0 = unknown).
    """
    if not isinstance(spec, dict):
        raise DatasetError(f"{where}: expected a mapping of the team's shapes, got {spec!r}")
    required = ("n_agents", "obs_dim", "state_dim", "n_actions")
    allowed = set(required) | {"continuous", "episode_limit"}
    unknown = sorted(set(spec) - allowed)
    if unknown:
        raise DatasetError(f"{where}: unknown key(s) {unknown}; allowed: {sorted(allowed)}")
    missing = [k for k in required if k not in spec]
    if missing:
        raise DatasetError(f"{where}: missing {missing} (needs {list(required)}, optional continuous, episode_limit)")
    out = {}
    for k in required + ("episode_limit",):
        v = spec.get(k, 0)
        lo = 0 if k in ("episode_limit", "state_dim") else 1
        if isinstance(v, bool) or not isinstance(v, (int, float)) or float(v) != int(v) or int(v) < lo:
            raise DatasetError(f"{where}: {k}={v!r}, expected an integer >= {lo}")
        out[k] = int(v)
    continuous = spec.get("continuous", False)
    if not isinstance(continuous, bool):
        raise DatasetError(f"{where}: continuous={continuous!r}, expected true or false")
    return TeamSpec(**out, continuous=continuous)


def dataset_spec(card: dict, where: str) -> TeamSpec:
    """The shapes a dataset is checked against: the registered task's, else the card's own."""
    from rllib_cfcql.envs import TASKS, make_team_env

    task = card.get("task")
    if task in TASKS:
        env = make_team_env(task, card.get("env_config") or {})
        spec = env.team_spec
        env.close()
        return spec
    return card_team_spec(card, where)


def check_content_hash(directory: Path, card: dict, trust: bool = False) -> None:
    """Refuses a dataset directory whose data files changed after its card was written.

    The card's statistics, reference returns (the normalised score) and β/VAE caches describe the
    data it was written for. ``trust=True`` (config ``trust_dataset_card=True``) skips the check.
    """
    expected = card.get("content_hash")
    if trust or not expected:
        return
    directory = Path(directory)
    files = data_files(directory)
    listed = card.get("files")
    if listed is not None and sorted(listed) != [f.name for f in files]:
        problem = f"its data files {[f.name for f in files]} differ from the card's list {sorted(listed)}"
    else:
        got = files_hash(files)
        if got == expected:
            return
        problem = f"the data files' content hash {got} differs from the card's {expected}"
    raise DatasetError(
        f"{directory}: {problem}: the files changed after the card was written, so its return statistics and "
        f"reference returns describe other data. Regenerate the dataset, or train anyway with "
        f"{TRUST_OPTION}=True (e.g. --config '{{\"{TRUST_OPTION}\": true}}')"
    )


def read_episodes(files: Iterable[Path], spec: TeamSpec) -> EpisodeArrays:
    """Read and validate data files in-process; episodes of different directories stay apart."""
    files = list(files)
    parts = [columns_from_arrow(read_table(f), spec) for f in files]
    return assemble_parts(parts, spec, str([str(f) for f in files]))


def validate_dataset(directory: str | Path, check_hash: bool = True) -> tuple[dict, EpisodeArrays]:
    """Full validation of a dataset directory; raises DatasetError on the first problem."""
    from rllib_cfcql.data.offline import check_file

    d = Path(directory)
    if not d.is_dir():
        raise DatasetError(f"{d}: not a dataset directory")
    card = load_card(d)
    spec = dataset_spec(card, str(d / CARD_NAME))
    files = data_files(d)
    if not files:
        raise DatasetError(f"{d}: no data-*.parquet or data-*.json files")
    listed = card.get("files")
    if listed is not None and sorted(listed) != [f.name for f in files]:
        raise DatasetError(f"{d}: files {[f.name for f in files]} differ from the card's list {sorted(listed)}")
    for f in files:  # a truncated/empty file is named as such, not only as a hash mismatch
        check_file(f)
    if check_hash and card.get("content_hash"):
        h = files_hash(files)
        if h != card["content_hash"]:
            raise DatasetError(f"{d}: content hash {h} does not match the card's {card['content_hash']} (files changed after collection)")
    ep = read_episodes(files, spec)
    for key, val in (("transitions", ep.num_transitions), ("episodes", ep.num_episodes)):
        if key in card and int(card[key]) != val:
            raise DatasetError(f"{d}: the card says {key}={card[key]} but the files hold {val}")
    return card, ep


def preflight(inputs: Any, spec: TeamSpec, task: Any = None, trust_card: bool = False) -> EpisodeArrays:
    """The checks a training run makes on its inputs, in-process and before Ray starts.

    ``inputs``: the config's ``input_`` (directories or files); ``spec``: the shapes the run trains
    with; ``task``: the config's env name (None for dataset-only training).
    """
    from rllib_cfcql.data.offline import check_card_matches, find_cards, resolve_inputs

    files, _ = resolve_inputs(inputs)
    for path, card in find_cards(files):
        check_card_matches(card, task, spec, where=str(path))
        check_content_hash(path.parent, card, trust=trust_card)
    return read_episodes(files, spec)
