"""The team dataset: writer → Parquet/JSON → ray.data (RLlib's OfflineData) → episodes,
and every bad-input case with its message."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from rllib_cfcql import CFCQLConfig
from rllib_cfcql import keys as K
from rllib_cfcql.cli.data import main as data_main
from rllib_cfcql.data.offline import TeamOfflineData
from rllib_cfcql.data.schema import DatasetError, assemble_episodes, columns_from_arrow
from rllib_cfcql.data.validate import read_table, validate_dataset
from rllib_cfcql.data.writer import _write_json, data_files
from rllib_cfcql.envs import make_team_env

ENV_CFG = {"n_agents": 3, "episode_limit": 10}
SPEC = make_team_env("equal_line", ENV_CFG).team_spec


def offline(path, **kw):
    cfg = CFCQLConfig().environment("equal_line", env_config=ENV_CFG).offline_data(input_=path, **kw)
    return TeamOfflineData(cfg)


# ---------------------------------------------------------------- round trips through ray.data
@pytest.mark.parametrize("fmt", ["parquet", "json"])
def test_every_row_written_is_read_back_through_ray_data(ray_session, tiny_dataset, fmt):
    d = tiny_dataset(env_config=ENV_CFG, episodes=12, fmt=fmt, seed=1)
    card, direct = validate_dataset(d)
    od = offline([str(d)])
    assert od.config.input_read_method in ("auto", None)  # the user's config is not mutated
    ep = od.load_episodes(SPEC)
    assert od.num_rows == card["transitions"] == ep.num_transitions
    assert ep.num_episodes == card["episodes"] == 12
    order = np.argsort(ep.episode_ids)
    for name, arr in direct.as_dict().items():
        if name != "episode_ids":
            np.testing.assert_array_equal(getattr(ep, name)[order], arr, err_msg=name)
    np.testing.assert_allclose(ep.returns().mean(), card["return"]["mean"], rtol=1e-5)


def test_parquet_and_json_give_identical_episodes(ray_session, tiny_dataset):
    a = offline([str(tiny_dataset(env_config=ENV_CFG, fmt="parquet", seed=2))]).load_episodes(SPEC)
    b = offline([str(tiny_dataset(env_config=ENV_CFG, fmt="json", seed=2))]).load_episodes(SPEC)
    for name in ("obs", "state", "action_mask", "actions", "reward", "filled", "terminated"):
        np.testing.assert_allclose(getattr(a, name), getattr(b, name), err_msg=name)


def test_two_directories_keep_their_episodes_apart(ray_session, tiny_dataset):
    d1 = tiny_dataset(env_config=ENV_CFG, episodes=12, seed=1)
    d2 = tiny_dataset(env_config=ENV_CFG, episodes=7, seed=5)
    ep = offline([str(d1), str(d2)]).load_episodes(SPEC)
    assert ep.num_episodes == 19  # both start at episode_id 0 and are not merged


# ---------------------------------------------------------------- bad input
@pytest.fixture
def table(tiny_dataset):
    d = tiny_dataset(env_config=ENV_CFG, episodes=6, seed=4)
    return read_table(data_files(d)[0])


def _err(table, match):
    with pytest.raises(DatasetError, match=match):
        assemble_episodes(columns_from_arrow(table, SPEC), SPEC)


def _set(table, name, values):
    i = table.column_names.index(name)
    return table.set_column(i, name, pa.array(values, type=table.schema.field(name).type))


def test_missing_column(table):
    _err(table.drop_columns([K.REWARD]), r"data-00000.parquet: column\(s\) \['reward'\] missing")


def test_shapes_that_do_not_match_the_task(table):
    spec4 = make_team_env("equal_line", {"n_agents": 4}).team_spec
    with pytest.raises(DatasetError, match=r"column 'obs' has 12 values at row 0, expected 20 .*n_agents"):
        columns_from_arrow(table, spec4)


@pytest.mark.parametrize("col,bad", [(K.REWARD, float("nan")), (K.REWARD, float("inf")), (K.OBS, float("nan"))])
def test_nan_inf(table, col, bad):
    rows = table.column(col).to_pylist()
    if col == K.OBS:
        rows[3] = [bad] + rows[3][1:]
    else:
        rows[3] = bad
    _err(_set(table, col, rows), rf"column '{col}' has non-finite value .* at row 3")


def test_action_outside_its_mask_and_out_of_range(table):
    masks = table.column(K.ACTION_MASK).to_pylist()
    acts = table.column(K.ACTIONS).to_pylist()
    A = SPEC.n_actions
    masks[2] = list(masks[2])
    masks[2][1 * A + acts[2][1]] = 0.0  # agent 1's taken action marked unavailable
    _err(_set(table, K.ACTION_MASK, masks), r"agent 1 took action \d+, which its action_mask marks unavailable")
    acts[5] = [0, A, 0]
    _err(_set(table, K.ACTIONS, acts), rf"agent 1 took action {A}, expected 0 <= a < {A}")


def test_broken_episode_boundaries(table):
    t = table.column(K.T).to_pylist()
    t[4] = t[4] + 1  # gap
    _err(_set(table, K.T, t), r"steps must run 0..L-1 without gaps")
    term, trunc = table.column(K.TERMINATED).to_pylist(), table.column(K.TRUNCATED).to_pylist()
    last = [i for i, (a, b) in enumerate(zip(term, trunc)) if a or b][0]
    term[last] = trunc[last] = False
    _err(_set(_set(table, K.TERMINATED, term), K.TRUNCATED, trunc), r"last row has neither terminated nor truncated")
    nxt = table.column(K.NEXT_OBS).to_pylist()
    nxt[0] = [v + 1.0 for v in nxt[0]]
    _err(_set(table, K.NEXT_OBS, nxt), r"'next_obs' differs from 'obs' of the next step")


def test_empty_truncated_and_missing_files(ray_session, tiny_dataset, tmp_path):
    src = tiny_dataset(env_config=ENV_CFG, episodes=6, seed=4)
    with pytest.raises(DatasetError, match=r"does-not-exist: dataset path does not exist"):
        offline([str(tmp_path / "does-not-exist")])
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "data-00000.parquet").write_bytes(b"")
    with pytest.raises(DatasetError, match=r"data-00000.parquet: file is empty"):
        offline([str(empty)])
    trunc = tmp_path / "trunc"
    trunc.mkdir()
    raw = (src / "data-00000.parquet").read_bytes()
    (trunc / "data-00000.parquet").write_bytes(raw[: len(raw) // 2])
    with pytest.raises(DatasetError, match=r"not a readable Parquet file \(truncated or corrupt\?\)"):
        offline([str(trunc)])
    tj = tmp_path / "truncjson"
    tj.mkdir()
    _write_json(read_table(data_files(src)[0]).drop_columns(["path"]), tj / "data-00000.json")
    text = (tj / "data-00000.json").read_text()
    (tj / "data-00000.json").write_text(text[: len(text) - 40])
    with pytest.raises(DatasetError, match=r"data-00000.json: the last line is not a complete JSON object"):
        offline([str(tj)])
    nodata = tmp_path / "nodata"
    nodata.mkdir()
    with pytest.raises(DatasetError, match=r"holds no .parquet/.json/.jsonl data files"):
        offline([str(nodata)])


def test_errors_from_ray_data_name_the_file(ray_session, tiny_dataset, tmp_path):
    src = tiny_dataset(env_config=ENV_CFG, episodes=6, seed=4)
    bad = tmp_path / "bad"
    bad.mkdir()
    t = read_table(data_files(src)[0]).drop_columns(["path", K.STATE])
    pq.write_table(t, bad / "data-00000.parquet")
    od = offline([str(bad)])
    with pytest.raises(DatasetError, match=r"bad/data-00000.parquet: column\(s\) \['state'\] missing"):
        od.load_episodes(SPEC)


def test_validate_command_catches_hash_mismatch_and_reports_ok(tiny_dataset, tmp_path, capsys):
    src = tiny_dataset(env_config=ENV_CFG, episodes=6, seed=4)
    assert data_main(["validate", str(src)]) == 0
    assert "OK:" in capsys.readouterr().out
    d = tmp_path / "tampered"
    shutil.copytree(src, d)
    t = pq.read_table(d / "data-00000.parquet")
    t = t.set_column(t.column_names.index(K.REWARD), K.REWARD, pc.add(t.column(K.REWARD), pa.scalar(1.0, pa.float32())))
    pq.write_table(t, d / "data-00000.parquet")
    assert data_main(["validate", str(d)]) == 1
    assert "content hash" in capsys.readouterr().err
    card = json.loads((d / "card.json").read_text())
    # a task name that is not registered is a user's own system: its card's `spec` gives the shapes
    card["task"] = "nope"
    (d / "card.json").write_text(json.dumps(card))
    assert data_main(["validate", str(d)]) == 1
    assert "content hash" in capsys.readouterr().err
    del card["spec"]
    (d / "card.json").write_text(json.dumps(card))
    assert data_main(["validate", str(d)]) == 1
    assert "card has no `spec`" in capsys.readouterr().err


def test_collect_refuses_to_overwrite_and_is_deterministic(tmp_path, capsys):
    args = ["collect", "--task", "equal_line", "--env-config", json.dumps(ENV_CFG), "--episodes", "4",
            "--seed", "9", "--quiet"]
    assert data_main(args + ["--out", str(tmp_path / "a")]) == 0
    assert data_main(args + ["--out", str(tmp_path / "a")]) == 2
    assert "--force" in capsys.readouterr().err
    assert data_main(args + ["--out", str(tmp_path / "b")]) == 0
    h = [json.loads((tmp_path / x / "card.json").read_text())["content_hash"] for x in "ab"]
    assert h[0] == h[1]
    assert data_main(["inspect", str(tmp_path / "a")]) == 0
    assert "reference returns" in capsys.readouterr().out


def test_card_task_and_shape_mismatch_is_rejected(ray_session, tiny_dataset):
    from rllib_cfcql.data.offline import check_card_matches

    d = tiny_dataset(env_config=ENV_CFG, episodes=6, seed=4)
    card = json.loads((Path(d) / "card.json").read_text())
    with pytest.raises(DatasetError, match=r"the card says task 'equal_line' but the config's env is 'mpe_spread'"):
        check_card_matches(card, "mpe_spread", SPEC)
    spec5 = make_team_env("equal_line", {"n_agents": 5}).team_spec
    with pytest.raises(DatasetError, match=r"n_agents: dataset 3 vs run 5"):
        check_card_matches(card, "equal_line", spec5)
