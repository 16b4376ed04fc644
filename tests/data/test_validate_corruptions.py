"""`rllib-cfcql data validate` end to end: every corruption class of a dataset written by the
project's writer (discrete equal_line and continuous mpe_spread) exits 1 with its own message
naming the file. The table-level checks of tests/data/test_data.py (schema functions on one
Arrow table) are not repeated; here each corruption goes through the CLI on a real dataset
directory whose card hash is updated to the corrupted files (as a producer that wrote bad
data would have it), so the structural check, not the hash, must catch it. No Ray session.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from rllib_cfcql import keys as K
from rllib_cfcql.cli.data import main as data_main
from rllib_cfcql.data.collect import collect
from rllib_cfcql.data.schema import DatasetError
from rllib_cfcql.data.validate import validate_dataset
from rllib_cfcql.data.writer import CARD_NAME, data_files, files_hash

TASKS = {
    "equal_line": {"n_agents": 3, "episode_limit": 10},
    "mpe_spread": {"continuous_actions": True},
}
_made: dict = {}


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    """dataset(task, fmt) -> a pristine directory written by collect.collect (4 episodes)."""

    def make(task: str, fmt: str = "parquet") -> Path:
        if (task, fmt) not in _made:
            out = tmp_path_factory.mktemp(f"{task}-{fmt}")
            collect(task=task, env_config=TASKS[task], policy="mixed_agents:0.5", episodes=4, seed=3, out_dir=out,
                    fmt=fmt, reference_episodes=2, progress=False, force=True)
            _made[task, fmt] = out
        return _made[task, fmt]

    return make


@pytest.fixture(params=sorted(TASKS))
def task(request):
    return request.param


def _copy(src: Path, tmp_path: Path, name: str = "ds") -> Path:
    d = tmp_path / name
    shutil.copytree(src, d)
    return d


def _card(d: Path) -> dict:
    return json.loads((d / CARD_NAME).read_text())


def _write_card(d: Path, card: dict) -> None:
    (d / CARD_NAME).write_text(json.dumps(card, indent=2))


def _rehash(d: Path) -> None:
    card = _card(d)
    card["content_hash"] = files_hash(data_files(d))
    _write_card(d, card)


def _corrupt(d: Path, change) -> Path:
    """Rewrite data-00000.parquet through ``change(table) -> table`` and re-hash the card."""
    path = d / "data-00000.parquet"
    pq.write_table(change(pq.read_table(path)), path)
    _rehash(d)
    return path


def _set_rows(table: pa.Table, name: str, edit) -> pa.Table:
    """Apply ``edit(rows)`` to the column's Python rows (a list, changed in place)."""
    rows = table.column(name).to_pylist()
    edit(rows)
    i = table.column_names.index(name)
    field = table.schema.field(name)
    return table.set_column(i, field, pa.array(rows, type=field.type))


def _invalid(d: Path, pattern: str, capsys) -> str:
    """validate exits 1; its message (CLI and validate_dataset alike) matches ``pattern``."""
    assert data_main(["validate", str(d)]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("INVALID: "), err
    msg = err[len("INVALID: "):]
    assert re.search(pattern, msg), msg
    with pytest.raises(DatasetError) as ei:
        validate_dataset(d)
    assert str(ei.value) == msg
    return msg


def _file(d: Path, name: str = "data-00000.parquet") -> str:
    return re.escape(str(d / name))


def test_pristine_datasets_validate(dataset, task, capsys):
    d = dataset(task)
    assert data_main(["validate", str(d)]) == 0
    card = _card(d)
    assert capsys.readouterr().out.strip() == (
        f"OK: {d}: {card['episodes']} episodes, {card['transitions']} transitions, task {task}")
    assert card["spec"]["continuous"] == (task == "mpe_spread")
    cols = pq.read_table(d / "data-00000.parquet").column_names
    assert (K.ACTION_MASK in cols) == (task == "equal_line")  # continuous datasets have no mask columns


# ---------------------------------------------------------------- missing column, wrong width, NaN
def test_missing_column(dataset, task, tmp_path, capsys):
    d = _copy(dataset(task), tmp_path)
    _corrupt(d, lambda t: t.drop_columns([K.ACTIONS]))
    _invalid(d, rf"^{_file(d)}: column\(s\) \['actions'\] missing \(the team schema needs \[", capsys)


def test_wrong_list_width(dataset, task, tmp_path, capsys):
    d = _copy(dataset(task), tmp_path)
    spec = _card(d)["spec"]
    col, width = ((K.ACTIONS, spec["n_agents"] * spec["n_actions"]) if task == "mpe_spread"
                  else (K.OBS, spec["n_agents"] * spec["obs_dim"]))
    _corrupt(d, lambda t: _set_rows(t, col, lambda rows: rows.__setitem__(3, rows[3][:-1])))
    _invalid(d, rf"^{_file(d)}: column '{col}' has {width - 1} values at row 3, expected {width} for task shapes",
             capsys)


def test_nan(dataset, task, tmp_path, capsys):
    d = _copy(dataset(task), tmp_path)
    col = K.ACTIONS if task == "mpe_spread" else K.NEXT_STATE  # (reward/obs NaN: tests/data/test_data.py)

    def edit(rows):
        rows[5] = [float("nan")] + rows[5][1:]

    _corrupt(d, lambda t: _set_rows(t, col, edit))
    _invalid(d, rf"^{_file(d)}: column '{col}' has non-finite value nan at row 5 \(episode_id=0, t=5\); "
                r"NaN/inf are not allowed", capsys)


# ---------------------------------------------------------------- actions
def test_action_outside_the_mask_or_the_box(dataset, task, tmp_path, capsys):
    d = _copy(dataset(task), tmp_path)
    table = pq.read_table(d / "data-00000.parquet")
    if task == "mpe_spread":
        def edit(rows):
            rows[7] = list(rows[7])
            rows[7][2 * 1 + 1] = 1.5  # agent 1, dimension 1

        _corrupt(d, lambda t: _set_rows(t, K.ACTIONS, edit))
        _invalid(d, rf"^{_file(d)}: episode_id=0 t=7: column 'actions': agent 1 action dimension 1 is 1\.5, expected "
                    r"a value in \[-1, 1\]", capsys)
        return
    A = _card(d)["spec"]["n_actions"]
    taken = table.column(K.ACTIONS).to_pylist()[7][1]

    def unavailable(rows):
        rows[7] = list(rows[7])
        rows[7][1 * A + taken] = 0.0

    _corrupt(d, lambda t: _set_rows(t, K.ACTION_MASK, unavailable))
    _invalid(d, rf"^{_file(d)}: episode_id=0 t=7: column 'actions': agent 1 took action {taken}, which its "
                r"action_mask marks unavailable", capsys)

    def half(rows):
        rows[2] = list(rows[2])
        rows[2][0] = 0.5

    d2 = _copy(dataset(task), tmp_path, "half")
    _corrupt(d2, lambda t: _set_rows(t, K.ACTION_MASK, half))
    _invalid(d2, rf"^{_file(d2)}: episode_id=0 t=2: column 'action_mask' must contain only 0/1", capsys)


# ---------------------------------------------------------------- episode boundaries
def _take(table: pa.Table, rows: list[int]) -> pa.Table:
    return table.take(pa.array(rows))


def test_duplicated_row(dataset, task, tmp_path, capsys):
    d = _copy(dataset(task), tmp_path)
    _corrupt(d, lambda t: _take(t, list(range(5)) + [4] + list(range(5, t.num_rows))))
    _invalid(d, rf"^{_file(d)}: episode_id=0 t=4: steps must run 0\.\.L-1 without gaps or duplicates; expected t=5: "
                r"step t=4 occurs more than once \(duplicated row\)", capsys)


def test_dropped_rows(dataset, task, tmp_path, capsys):
    d = _copy(dataset(task), tmp_path)
    _corrupt(d, lambda t: _take(t, [r for r in range(t.num_rows) if r not in (3, 4)]))
    _invalid(d, rf"^{_file(d)}: episode_id=0 t=5: steps must run 0\.\.L-1 without gaps or duplicates; expected t=3: "
                r"step\(s\) t=3\.\.4 are missing \(dropped rows\)", capsys)
    # the last row of episode 0 dropped: the episode now ends open
    d2 = _copy(dataset(task), tmp_path, "lastrow")
    ep0 = pq.read_table(d2 / "data-00000.parquet").column(K.EPISODE_ID).to_pylist().count(0)
    _corrupt(d2, lambda t: _take(t, [r for r in range(t.num_rows) if r != ep0 - 1]))
    _invalid(d2, rf"^{_file(d2)}: episode_id=0 t={ep0 - 2}: the episode's last row has neither terminated nor "
                 r"truncated set \(truncated file, or an episode split across datasets\)", capsys)


def test_rows_of_two_episodes_spliced(dataset, task, tmp_path, capsys):
    d = _copy(dataset(task), tmp_path)

    def splice(t):  # episode 1's rows relabelled as the continuation of episode 0 (its flags dropped)
        ids = t.column(K.EPISODE_ID).to_pylist()
        ts = t.column(K.T).to_pylist()
        n0 = ids.count(0)
        t = _set_rows(t, K.T, lambda rows: [rows.__setitem__(r, n0 + ts[r]) for r in range(len(rows)) if ids[r] == 1])
        t = _set_rows(t, K.EPISODE_ID, lambda rows: [rows.__setitem__(r, 0) for r in range(len(rows)) if ids[r] == 1])
        t = _set_rows(t, K.TERMINATED, lambda rows: rows.__setitem__(n0 - 1, False))
        return _set_rows(t, K.TRUNCATED, lambda rows: rows.__setitem__(n0 - 1, False))

    _corrupt(d, splice)
    _invalid(d, rf"^{_file(d)}: episode_id=0 t=\d+: column 'next_obs' differs from 'obs' of the next step "
                r"\(broken episode boundary", capsys)


# ---------------------------------------------------------------- card vs files
def test_hash_mismatch(dataset, task, tmp_path, capsys):
    d = _copy(dataset(task), tmp_path)
    card = _card(d)
    card["content_hash"] = "sha256:" + "0" * 64
    _write_card(d, card)
    real = files_hash(data_files(d))
    _invalid(d, rf"^{re.escape(str(d))}: content hash {real} does not match the card's sha256:0{{64}} "
                r"\(files changed after collection\)$", capsys)
    assert data_main(["validate", "--no-hash", str(d)]) == 0  # the files themselves are fine
    capsys.readouterr()


def test_card_counts_and_file_list(dataset, task, tmp_path, capsys):
    d = _copy(dataset(task), tmp_path)
    card = _card(d)
    card["transitions"] += 1
    _write_card(d, card)
    _invalid(d, rf"^{re.escape(str(d))}: the card says transitions={card['transitions']} but the files hold "
                rf"{card['transitions'] - 1}$", capsys)
    d2 = _copy(dataset(task), tmp_path, "renamed")
    (d2 / "data-00000.parquet").rename(d2 / "data-00001.parquet")
    _invalid(d2, r"files \['data-00001\.parquet'\] differ from the card's list \['data-00000\.parquet'\]", capsys)


# ---------------------------------------------------------------- truncated / empty files
def test_truncated_parquet_is_named_as_such(dataset, task, tmp_path, capsys):
    d = _copy(dataset(task), tmp_path)
    f = d / "data-00000.parquet"
    raw = f.read_bytes()
    f.write_bytes(raw[: len(raw) - 100])  # the footer is gone; the card keeps the original hash
    _invalid(d, rf"^{_file(d)}: not a readable Parquet file \(truncated or corrupt\?\)", capsys)
    f.write_bytes(b"")
    _invalid(d, rf"^{_file(d)}: file is empty$", capsys)


def test_truncated_json(dataset, tmp_path, capsys):
    d = _copy(dataset("mpe_spread", "json"), tmp_path)
    f = d / "data-00000.json"
    text = f.read_text()
    f.write_text(text[: len(text) - 50])
    _invalid(d, rf"^{_file(d, 'data-00000.json')}: the last line is not a complete JSON object \(truncated file\?\)",
             capsys)
    # cut exactly at a line end: every line parses, the last episode has lost its final rows
    d2 = _copy(dataset("mpe_spread", "json"), tmp_path, "cut-lines")
    f2 = d2 / "data-00000.json"
    lines = f2.read_text().splitlines(keepends=True)
    f2.write_text("".join(lines[:-3]))
    _rehash(d2)
    _invalid(d2, rf"^{_file(d2, 'data-00000.json')}: episode_id=3 t=21: the episode's last row has neither "
                 r"terminated nor truncated set \(truncated file", capsys)
