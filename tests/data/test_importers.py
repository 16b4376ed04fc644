"""`rllib-cfcql data convert --from authors-hdf5`: the CFCQL authors' PyMARL-layout HDF5
files → team dataset. Exact round trips (both `filled` conventions), the card's
provenance, one precise message per corruption class, and the CLI's exit codes.
No Ray session is started."""

from __future__ import annotations

import hashlib
import importlib.util
import json
import re
from pathlib import Path

import numpy as np
import pytest

h5py = pytest.importorskip("h5py")

from rllib_cfcql import keys as K  # noqa: E402
from rllib_cfcql.cli.data import main as data_main  # noqa: E402
from rllib_cfcql.data import importers  # noqa: E402
from rllib_cfcql.data.collect import reference_returns  # noqa: E402
from rllib_cfcql.data.importers import (  # noqa: E402
    IMPORTERS,
    convert_dataset,
    import_authors_hdf5,
)
from rllib_cfcql.data.schema import DatasetError, EpisodeArrays, episodes_to_rows  # noqa: E402
from rllib_cfcql.data.validate import validate_dataset  # noqa: E402
from rllib_cfcql.data.writer import files_hash  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
_spec = importlib.util.spec_from_file_location("make_importer_fixtures", REPO / "scripts" / "make_importer_fixtures.py")
fx = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(fx)

TASK = "equal_line"
ENV_CFG = {"n_agents": 3, "episode_limit": 10}
REFS = {"random": 0.25, "expert": 10.0}
LENGTHS = [10, 10, 4, 10, 10, 7, 6, 10]  # episodes 2 and 5 terminal, 6 cut (truncated), rest hit the limit


def _same(a: EpisodeArrays, b: EpisodeArrays) -> None:
    for name, want in b.as_dict().items():
        got = getattr(a, name)
        assert got.shape == want.shape, (name, got.shape, want.shape)
        assert got.dtype == want.dtype, (name, got.dtype, want.dtype)
        np.testing.assert_array_equal(got, want, err_msg=name)


@pytest.fixture(params=[False, True], ids=["real-steps", "bootstrap-filled"])
def authors_file(request, tmp_path):
    path = tmp_path / "equal_line_medium.h5"
    expected = fx.write_authors_fixture(path, bootstrap_filled=request.param)
    return path, expected, request.param


@pytest.fixture
def plain_file(tmp_path):
    path = tmp_path / "plain.h5"
    return path, fx.write_authors_fixture(path)


def _load(path: Path) -> dict[str, np.ndarray]:
    with h5py.File(path, "r") as f:
        return {k: f[k][()] for k in f.keys()}


def _rewrite(src: Path, dst: Path, change) -> Path:
    d = _load(src)
    change(d)
    with h5py.File(dst, "w") as f:
        for k, v in d.items():
            f.create_dataset(k, data=v)
    return dst


def _import(path, env_config=None):
    return import_authors_hdf5(path, task=TASK, env_config=dict(env_config or ENV_CFG))


# ---------------------------------------------------------------- the fixture itself
def test_fixture_is_in_the_authors_layout(authors_file):
    path, expected, boot = authors_file
    d = _load(path)
    assert sorted(d) == ["actions", "avail_actions", "filled", "obs", "probs", "reward", "state", "terminated"]
    assert d["state"].shape == (8, 11, 3)
    assert d["obs"].shape == (8, 11, 3, 4)
    assert d["actions"].shape == (8, 11, 3, 1) and d["actions"].dtype == np.int64
    assert d["avail_actions"].shape == (8, 11, 3, 11)
    for k in ("reward", "terminated", "filled"):
        assert d[k].shape == (8, 11, 1), k
    assert expected.lengths().tolist() == LENGTHS
    filled = d["filled"][..., 0]
    assert filled.sum(1).tolist() == [n + int(boot) for n in LENGTHS]
    assert filled[2].tolist() == [1] * (4 + boot) + [0] * (7 - boot)
    assert np.flatnonzero(d["terminated"][..., 0].any(1)).tolist() == [2, 5]
    assert d["terminated"][2, 3, 0] == 1 and d["terminated"][5, 6, 0] == 1
    # the bootstrap observation sits at index L, padding after it is zero (avail too)
    np.testing.assert_array_equal(d["obs"][2, 4], expected.obs[2, 4])
    assert np.abs(d["obs"][2, 4]).sum() > 0
    assert not d["obs"][2, 5:].any() and not d["avail_actions"][2, 5:].any()


# ---------------------------------------------------------------- exact round trips
def test_import_preserves_every_value_and_boundary(authors_file):
    path, expected, boot = authors_file
    info: dict = {}
    ep = import_authors_hdf5(path, task=TASK, env_config=ENV_CFG, info=info)
    _same(ep, expected)
    assert info == {"filled_convention": "bootstrap-filled" if boot else "real-steps", "episodes": 8,
                    "transitions": 67, "terminated_episodes": 2, "time_slots": 11}
    # cross-check against the raw file, index by index
    d = _load(path)
    for e, L in enumerate(LENGTHS):
        np.testing.assert_array_equal(ep.obs[e, : L + 1], d["obs"][e, : L + 1])
        np.testing.assert_array_equal(ep.state[e, : L + 1], d["state"][e, : L + 1])
        np.testing.assert_array_equal(ep.action_mask[e, : L + 1], d["avail_actions"][e, : L + 1])
        np.testing.assert_array_equal(ep.actions[e, :L], d["actions"][e, :L, :, 0])
        np.testing.assert_array_equal(ep.reward[e, :L], d["reward"][e, :L, 0])
        assert ep.filled[e].tolist() == [1.0] * L + [0.0] * (10 - L)
        # padding follows the schema: every action available (the file has zeros there)
        assert (ep.action_mask[e, L + 1:] == 1).all()
    rows = episodes_to_rows(ep)
    last = {int(e): i for i, e in enumerate(rows[K.EPISODE_ID])}  # index of each episode's last row
    assert [bool(rows[K.TERMINATED][last[e]]) for e in range(8)] == [False, False, True, False, False, True, False, False]
    assert [bool(rows[K.TRUNCATED][last[e]]) for e in range(8)] == [True, True, False, True, True, False, True, True]
    assert int(rows[K.TERMINATED].sum()) == 2 and int(rows[K.TRUNCATED].sum()) == 6


@pytest.mark.parametrize("fmt", ["parquet", "json"])
def test_convert_writes_a_dataset_that_validates_to_the_same_episodes(authors_file, tmp_path, fmt):
    path, expected, boot = authors_file
    out = tmp_path / f"out-{fmt}"
    card = convert_dataset("authors-hdf5", [path], out, task=TASK, env_config=ENV_CFG, fmt=fmt,
                           force=False, reference_returns=REFS)
    card2, ep = validate_dataset(out)
    _same(ep, expected)
    assert card2 == card == json.loads((out / "card.json").read_text())
    assert card["files"] == [f"data-00000.{fmt}"] and card["format"] == fmt
    assert card["content_hash"] == files_hash([out / f"data-00000.{fmt}"])
    assert (card["episodes"], card["transitions"]) == (8, 67)
    assert card["quality"] == "imported" and card["seed"] == -1
    assert card["behaviour_policy"] == f"imported from authors-hdf5: {path}"
    assert card["reference_returns"] == REFS
    assert card["task"] == TASK and card["env_config"] == ENV_CFG
    assert card["spec"] == {"n_agents": 3, "obs_dim": 4, "state_dim": 3, "n_actions": 11, "episode_limit": 10, "continuous": False}
    np.testing.assert_allclose(card["return"]["mean"], expected.returns().mean(), rtol=1e-6)
    sha = "sha256:" + hashlib.sha256(path.read_bytes()).hexdigest()
    assert card["source"] == {
        "kind": "authors-hdf5",
        "files": [{
            "path": str(path.resolve()), "name": "equal_line_medium.h5", "bytes": path.stat().st_size, "sha256": sha,
            "filled_convention": "bootstrap-filled" if boot else "real-steps", "episodes": 8, "transitions": 67,
            "terminated_episodes": 2, "time_slots": 11,
        }],
    }


def test_reference_returns_are_measured_when_not_given(plain_file, tmp_path):
    path, _ = plain_file
    card = convert_dataset("authors-hdf5", [path], tmp_path / "out", task=TASK, env_config=ENV_CFG)
    assert card["reference_returns"] == reference_returns(TASK, ENV_CFG, episodes=50, seed=10_000_019)
    assert card["reference_returns"]["expert"] > card["reference_returns"]["random"]


def test_several_inputs_are_concatenated_in_order(tmp_path):
    a, b = tmp_path / "a.h5", tmp_path / "b.h5"
    ea = fx.write_authors_fixture(a, episodes=8, seed=0)
    eb = fx.write_authors_fixture(b, episodes=3, seed=7, bootstrap_filled=True)  # episode 2 cut to 4, terminal
    card = convert_dataset("authors-hdf5", [a, b], tmp_path / "out", task=TASK, env_config=ENV_CFG,
                           reference_returns=REFS)
    _, ep = validate_dataset(tmp_path / "out")
    assert ep.num_episodes == card["episodes"] == 11
    assert ep.episode_ids.tolist() == list(range(11))
    _same(ep.select(np.arange(8)), ea)
    tail = ep.select(np.arange(8, 11))
    for name in ("obs", "state", "action_mask", "actions", "reward", "terminated", "filled"):
        np.testing.assert_array_equal(getattr(tail, name), getattr(eb, name), err_msg=name)
    assert [s["name"] for s in card["source"]["files"]] == ["a.h5", "b.h5"]
    assert [s["filled_convention"] for s in card["source"]["files"]] == ["real-steps", "bootstrap-filled"]
    assert card["source"]["files"][0]["sha256"] != card["source"]["files"][1]["sha256"]
    assert card["behaviour_policy"] == f"imported from authors-hdf5: {a}, {b}"
    with pytest.raises(DatasetError, match=r"the same input file is given twice"):
        convert_dataset("authors-hdf5", [a, a], tmp_path / "out2", task=TASK, env_config=ENV_CFG, reference_returns=REFS)


def test_importers_are_a_registry(plain_file, tmp_path, monkeypatch):
    path, expected = plain_file
    assert IMPORTERS["authors-hdf5"] is import_authors_hdf5
    calls = []

    def fake(p, *, task, env_config, info=None):
        calls.append((Path(p).name, task, env_config))
        info["note"] = "fake"
        return expected

    monkeypatch.setitem(importers.IMPORTERS, "fake-kind", fake)
    card = convert_dataset("fake-kind", [path], tmp_path / "out", task=TASK, env_config=ENV_CFG, reference_returns=REFS)
    assert calls == [("plain.h5", TASK, ENV_CFG)]
    assert card["source"]["kind"] == "fake-kind" and card["source"]["files"][0]["note"] == "fake"
    with pytest.raises(DatasetError, match=r"unknown importer 'omar'; known: \['authors-hdf5', 'fake-kind', 'og-marl-vault', 'omar-npy'\]"):
        convert_dataset("omar", [path], tmp_path / "o2", task=TASK, env_config=ENV_CFG)


# ---------------------------------------------------------------- corruption classes
def _raises(path: Path, pattern: str, env_config=None) -> str:
    with pytest.raises(DatasetError) as ei:
        _import(path, env_config)
    msg = str(ei.value)
    assert msg.startswith(f"{path}: "), msg
    assert re.search(pattern, msg), msg
    return msg


def test_missing_key(plain_file, tmp_path):
    src, _ = plain_file
    p = _rewrite(src, tmp_path / "bad.h5", lambda d: d.pop("reward"))
    _raises(p, r"^.*bad\.h5: dataset\(s\) \['reward'\] missing \(the authors' layout needs \['state', 'obs', "
               r"'actions', 'avail_actions', 'reward', 'terminated', 'filled'\]\); the file has \['actions', ")


def test_shapes_that_do_not_match_the_task(plain_file, tmp_path):
    src, _ = plain_file

    def wider_obs(d):
        d["obs"] = np.concatenate([d["obs"], np.zeros_like(d["obs"][..., :1])], axis=-1)

    p = _rewrite(src, tmp_path / "obs5.h5", wider_obs)
    _raises(p, r"dataset 'obs' has shape \(8, 11, 3, 5\): axis 3 \(obs_dim\) is 5, expected 4 for task 'equal_line' "
               r"with env_config \{\"episode_limit\": 10, \"n_agents\": 3\}.*layout \[N, T\+1, n_agents, obs_dim\] "
               r"\(does the file belong to another task or n_agents\?\)")
    # the right file against the wrong task configuration: 'state' is checked first
    _raises(src, r"dataset 'state' has shape \(8, 11, 3\): axis 2 \(state_dim\) is 3, expected 4 for task 'equal_line'",
            env_config={"n_agents": 4, "episode_limit": 10})

    def fewer_actions(d):
        d["avail_actions"] = d["avail_actions"][..., :10]

    p = _rewrite(src, tmp_path / "a10.h5", fewer_actions)
    _raises(p, r"dataset 'avail_actions' has shape \(8, 11, 3, 10\): axis 3 \(n_actions\) is 10, expected 11")

    def flat_actions(d):
        d["actions"] = d["actions"][..., 0]

    p = _rewrite(src, tmp_path / "flat.h5", flat_actions)
    _raises(p, r"dataset 'actions' has shape \(8, 11, 3\) \(3 axes\), expected \[N, T\+1, n_agents, 1\]")


def test_inconsistent_episode_count_or_length(plain_file, tmp_path):
    src, _ = plain_file
    p = _rewrite(src, tmp_path / "n.h5", lambda d: d.update(reward=d["reward"][:7]))
    _raises(p, r"dataset 'reward' has 7 episodes N \(axis 0\) but 'state' has 8 \(shapes \(7, 11, 1\) vs \(8, 11, 3\)\)")
    p = _rewrite(src, tmp_path / "t.h5", lambda d: d.update(filled=np.concatenate([d["filled"], d["filled"][:, :1] * 0], 1)))
    _raises(p, r"dataset 'filled' has 12 time steps T\+1 \(axis 1\) but 'state' has 11")


@pytest.mark.parametrize("key,index,value,shown", [
    ("reward", (3, 5, 0), np.nan, "nan"),
    ("reward", (0, 0, 0), np.inf, "inf"),
    ("obs", (4, 2, 1, 3), -np.inf, "-inf"),
    ("state", (7, 10, 2), np.nan, "nan"),
])
def test_nan_and_inf(plain_file, tmp_path, key, index, value, shown):
    src, _ = plain_file

    def poke(d):
        d[key] = d[key].copy()
        d[key][index] = value

    p = _rewrite(src, tmp_path / "nan.h5", poke)
    idx = ", ".join(map(str, index))
    _raises(p, rf"dataset '{key}' has non-finite value {shown} at index \[{idx}\] \(episode {index[0]}, t={index[1]}\); "
               r"NaN/inf are not allowed")


def test_actions_out_of_range_or_unavailable(plain_file, tmp_path):
    src, expected = plain_file
    a = int(expected.actions[1, 2, 0])

    def hide_taken(d):
        d["avail_actions"][1, 2, 0, a] = 0

    p = _rewrite(src, tmp_path / "avail.h5", hide_taken)
    _raises(p, rf"dataset 'actions' has {a} at index \[1, 2, 0, 0\] \(episode 1, t=2, agent 0\), "
               rf"which avail_actions\[1, 2, 0, {a}\] = 0 marks unavailable$")
    for bad in (11, -1):
        p = _rewrite(src, tmp_path / f"range{bad}.h5", lambda d: d["actions"].__setitem__((0, 3, 2, 0), bad))
        _raises(p, rf"dataset 'actions' has {bad} at index \[0, 3, 2, 0\] \(episode 0, t=3, agent 2\); "
                   r"expected 0 <= a < 11 \(n_actions of 'equal_line'\)")
    # an action in a padding slot is ignored (PyMARL leaves zeros or junk there)
    p = _rewrite(src, tmp_path / "pad.h5", lambda d: d["actions"].__setitem__((2, 8, 0, 0), 99))
    _same(_import(p), expected)

    def no_action(d):
        d["avail_actions"][6, 1, 2] = 0

    p = _rewrite(src, tmp_path / "none.h5", no_action)
    _raises(p, r"dataset 'avail_actions' marks no action available at index \[6, 1, 2\] \(episode 6, t=1, agent 2\)")
    p = _rewrite(src, tmp_path / "frac.h5", lambda d: d.update(actions=d["actions"].astype(np.float32) + 0.5))
    _raises(p, r"dataset 'actions' has non-integer value \d+\.5 at index \[0, 0, 0, 0\]$")


def test_broken_filled_pattern(plain_file, tmp_path):
    src, _ = plain_file
    p = _rewrite(src, tmp_path / "gap.h5", lambda d: d["filled"].__setitem__((3, 5, 0), 0))
    _raises(p, r"dataset 'filled' of episode 3 is not of the form 1\.\.1 0\.\.0: filled\[3, 6, 0\] = 1 after "
               r"filled\[3, 5, 0\] = 0 \(a gap inside the episode, or episodes spliced together\)")
    p = _rewrite(src, tmp_path / "start.h5", lambda d: d["filled"].__setitem__((4, 0, 0), 0))
    _raises(p, r"filled\[4, 1, 0\] = 1 after filled\[4, 0, 0\] = 0")
    p = _rewrite(src, tmp_path / "empty.h5", lambda d: d["filled"].__setitem__((1, slice(None), 0), 0))
    _raises(p, r"dataset 'filled' is 0 on every step of episode 1 \(filled\[1, :, 0\]\)")
    p = _rewrite(src, tmp_path / "half.h5", lambda d: d.update(filled=d["filled"] * 0.5))
    _raises(p, r"dataset 'filled' has value 0\.5 at index \[0, 0, 0\]; expected 0 or 1$")


def test_terminated_before_the_end(authors_file, tmp_path):
    src, _, boot = authors_file
    conv = "bootstrap-filled" if boot else "real-steps"
    p = _rewrite(src, tmp_path / "early.h5", lambda d: d["terminated"].__setitem__((0, 3, 0), 1))
    _raises(p, rf"dataset 'terminated' is 1 at index \[0, 3, 0\] \(episode 0, t=3\), before the episode's last real "
               rf"step t=9 \(filled convention '{conv}': .*\); only an episode's last step may be terminal")
    # one episode written with the other convention is reported, not silently shortened:
    # episode 5 (7 real steps) gets its terminal flag one slot early
    def shift(d):
        d["terminated"][5, 6, 0] = 0
        d["terminated"][5, 5, 0] = 1

    p = _rewrite(src, tmp_path / "shift.h5", shift)
    _raises(p, rf"dataset 'terminated' is 1 at index \[5, 5, 0\] \(episode 5, t=5\), before the episode's last real "
               rf"step t=6 \(filled convention '{conv}'")


def test_terminal_flag_on_the_filled_bootstrap_slot(tmp_path):
    src = tmp_path / "boot.h5"
    fx.write_authors_fixture(src, bootstrap_filled=True)
    p = _rewrite(src, tmp_path / "b.h5", lambda d: d["terminated"].__setitem__((2, 4, 0), 1))
    _raises(p, r"dataset 'terminated' is 1 at index \[2, 4, 0\] \(episode 2, t=4\), the episode's bootstrap step, "
               r"after its last real step t=3 \(filled convention 'bootstrap-filled'")


def test_unreadable_files(tmp_path):
    with pytest.raises(DatasetError, match=r"nope\.h5: no such file$"):
        _import(tmp_path / "nope.h5")
    junk = tmp_path / "junk.h5"
    junk.write_bytes(b"this is not HDF5\n" * 10)
    with pytest.raises(DatasetError, match=r"junk\.h5: not a readable HDF5 file \(truncated or corrupt\?\)"):
        _import(junk)


# ---------------------------------------------------------------- CLI
def _cli(*inputs, out, extra=()):
    return ["convert", "--from", "authors-hdf5", "--task", TASK, "--env-config", json.dumps(ENV_CFG),
            "--reference-returns", json.dumps(REFS), *extra, "--out", str(out), *map(str, inputs)]


def test_cli_success_refuse_overwrite_and_force(plain_file, tmp_path, capsys):
    path, expected = plain_file
    out = tmp_path / "converted"
    assert data_main(_cli(path, out=out, extra=("--format", "json"))) == 0
    line = capsys.readouterr().out.strip()
    assert "\n" not in line
    assert line.startswith(f"wrote {out}: 8 episodes, 67 transitions from 1 authors-hdf5 file(s), return ")
    assert line.endswith("(random 0.250, expert 10.000)")
    assert [p.name for p in sorted(out.iterdir())] == ["card.json", "data-00000.json"]
    assert data_main(_cli(path, out=out)) == 2
    assert capsys.readouterr().err.strip() == f"error: {out} exists and is not empty; pass --force to overwrite"
    assert data_main(_cli(path, out=out, extra=("--force",))) == 0
    capsys.readouterr()
    assert [p.name for p in sorted(out.iterdir())] == ["card.json", "data-00000.parquet"]
    assert data_main(["validate", str(out)]) == 0
    assert capsys.readouterr().out.strip() == f"OK: {out}: 8 episodes, 67 transitions, task {TASK}"
    _same(validate_dataset(out)[1], expected)


def test_cli_bad_input_exits_2_with_the_message(plain_file, tmp_path, capsys):
    src, _ = plain_file
    bad = _rewrite(src, tmp_path / "nan.h5", lambda d: d["reward"].__setitem__((3, 5, 0), np.nan))
    out = tmp_path / "never"
    assert data_main(_cli(bad, out=out)) == 2
    assert capsys.readouterr().err.strip() == (
        f"error: {bad}: dataset 'reward' has non-finite value nan at index [3, 5, 0] (episode 3, t=5); "
        "NaN/inf are not allowed"
    )
    assert not out.exists()  # nothing is written when an input is bad
    # a second, bad input: the good first file is not written either
    assert data_main(_cli(src, bad, out=out)) == 2
    assert "dataset 'reward' has non-finite value nan" in capsys.readouterr().err
    assert not out.exists()

    args = ["convert", "--from", "authors-hdf5", "--task", TASK, "--out", str(out), str(src)]
    assert data_main(args[:5] + ["--env-config", '{"n_agents": 4}'] + args[5:]) == 2
    assert "dataset 'state' has shape (8, 11, 3): axis 2 (state_dim) is 3, expected 4" in capsys.readouterr().err
    assert data_main(args + ["--reference-returns", '{"random": 1}']) == 2
    assert capsys.readouterr().err.strip() == (
        "error: reference returns must be an object with exactly the keys 'random' and 'expert', got {'random': 1}"
    )
    assert data_main(args + ["--reference-returns", "{oops"]) == 2
    assert capsys.readouterr().err.startswith("error: --reference-returns: invalid JSON (")
    assert data_main(args + ["--env-config", "[1]"]) == 2
    assert capsys.readouterr().err.strip() == "error: --env-config: expected a JSON object like '{\"key\": ...}', got list: '[1]'."
    # `data collect` parses --env-config the same way (one parser for every JSON flag)
    assert data_main(["collect", "--task", TASK, "--env-config", '{"n_agents": 3, "n_agents": 4}', "--episodes", "1",
                      "--out", str(tmp_path / "c")]) == 2
    assert capsys.readouterr().err.strip() == "error: --env-config: duplicate key 'n_agents' in the JSON object."
    assert data_main(["convert", "--from", "authors-hdf5", "--task", TASK, "--out", str(out),
                      str(tmp_path / "missing.h5")]) == 2
    assert capsys.readouterr().err.strip() == f"error: {tmp_path / 'missing.h5'}: no such file"
    with pytest.raises(SystemExit) as ei:  # argparse: an unknown --from kind
        data_main(["convert", "--from", "omar", "--task", TASK, "--out", str(out), str(src)])
    assert ei.value.code == 2
    assert "invalid choice: 'omar'" in capsys.readouterr().err
