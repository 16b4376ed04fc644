"""`rllib-cfcql data convert --from omar-npy | og-marl-vault`: OMAR / CFCQL-continuous
per-agent .npy folders and OG-MARL flashbax vaults → team dataset. Exact round trips
(values and episode boundaries) through convert → validate → reading back, the
options, and one precise message per bad input. Fixtures are written at test time
by scripts/make_stream_importer_fixtures.py (vaults with flashbax's own writer; the
vault tests are skipped where the optional `og-marl` extra is not installed).
No Ray session is started."""

from __future__ import annotations

import hashlib
import importlib.util
import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest

from rllib_cfcql.cli.data import main as data_main
from rllib_cfcql.data.importers import (
    IMPORTERS,
    convert_dataset,
    import_og_marl_vault,
    import_omar_npy,
)
from rllib_cfcql.data.schema import DatasetError, EpisodeArrays
from rllib_cfcql.data.validate import validate_dataset

REPO = Path(__file__).resolve().parents[2]
_spec = importlib.util.spec_from_file_location(
    "make_stream_importer_fixtures", REPO / "scripts" / "make_stream_importer_fixtures.py")
fx = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(fx)

MPE = "mpe_spread"
CONT = {"continuous_actions": True}
REFS = {"random": -5.0, "expert": 40.0}
OMAR_LENGTHS = [25, 25, 10, 25, 25, 25]  # episode 2 ends early on a done flag (terminated)
HAS_FLASHBAX = importlib.util.find_spec("flashbax") is not None


def _same(a: EpisodeArrays, b: EpisodeArrays, reward_atol: float = 0.0) -> None:
    """Exactly equal; ``reward_atol``: vaults hold the agents' rewards in float32 (jax), so their
    mean is the team reward up to float32 rounding."""
    for name, want in b.as_dict().items():
        got = getattr(a, name)
        assert got.shape == want.shape, (name, got.shape, want.shape)
        assert got.dtype == want.dtype, (name, got.dtype, want.dtype)
        if name == "reward" and reward_atol:
            np.testing.assert_allclose(got, want, rtol=0, atol=reward_atol, err_msg=name)
        else:
            np.testing.assert_array_equal(got, want, err_msg=name)


def _raises(call, pattern: str, starts: Path | None = None) -> str:
    with pytest.raises(DatasetError) as ei:
        call()
    msg = str(ei.value)
    if starts is not None:
        assert msg.startswith(f"{starts}: "), msg
    assert re.search(pattern, msg), msg
    return msg


# ================================================================ omar-npy
@pytest.fixture
def omar(tmp_path):
    folder = tmp_path / "simple_spread" / "medium" / "seed_0_data"
    return folder, fx.write_omar_fixture(folder)


def _omar(path, **kw):
    return import_omar_npy(path, task=MPE, env_config=dict(CONT), **kw)


def test_omar_fixture_is_in_the_omar_layout(omar):
    folder, expected = omar
    assert sorted(p.name for p in folder.iterdir()) == sorted(
        f"{k}_{i}.npy" for k in ("obs", "acs", "rews", "next_obs", "dones") for i in range(3))
    N = sum(OMAR_LENGTHS)
    for i in range(3):
        obs, acs = np.load(folder / f"obs_{i}.npy"), np.load(folder / f"acs_{i}.npy")
        assert obs.shape == (N, 18) and obs.dtype == np.float64  # OMAR's buffer holds float64
        assert acs.shape == (N, 2) and np.abs(acs).max() <= 1.0
        assert np.load(folder / f"rews_{i}.npy").shape == (N,)
        dones = np.load(folder / f"dones_{i}.npy")
        assert np.flatnonzero(dones).tolist() == (np.cumsum(OMAR_LENGTHS) - 1).tolist()
    assert expected.lengths().tolist() == OMAR_LENGTHS


@pytest.mark.parametrize("variant", [
    {}, {"dones_at_limit": False}, {"column_rewards": True}, {"with_states": True}],
    ids=["dones-at-limit", "no-done-at-limit", "rewards-Nx1", "states-files"])
def test_omar_import_preserves_every_value_and_boundary(tmp_path, variant):
    folder = tmp_path / "seed_0_data"
    expected = fx.write_omar_fixture(folder, **variant)
    info: dict = {}
    ep = _omar(folder, info=info)
    _same(ep, expected)
    assert ep.lengths().tolist() == OMAR_LENGTHS
    assert ep.terminated.sum(1).tolist() == [0, 0, 1, 0, 0, 0]  # the 25-step ones are truncated (time limit)
    # cross-check against the raw files: row r of obs_i is agent i's obs at (episode, t)
    obs1 = np.load(folder / "obs_1.npy")
    rews = np.stack([np.load(folder / f"rews_{i}.npy").reshape(-1) for i in range(3)])
    np.testing.assert_array_equal(ep.obs[3, 7, 1], obs1[25 + 25 + 10 + 7].astype(np.float32))
    np.testing.assert_array_equal(ep.obs[2, 10, 1], np.load(folder / "next_obs_1.npy")[50 + 9].astype(np.float32))
    assert ep.reward[1, 4] == np.float32(rews[:, 25 + 4].mean())  # team reward = mean over agents
    if variant.get("with_states"):
        np.testing.assert_array_equal(ep.state[0, 3], np.load(folder / "states_2.npy")[3].astype(np.float32))
        assert info["state_source"] == "states_0.npy / next_states_0.npy"
    else:  # mpe2's state() of simple_spread is the agents' observations concatenated in agent order
        np.testing.assert_array_equal(ep.state, ep.obs.reshape(*ep.obs.shape[:2], -1))
        assert info["state_source"] == "concatenated observations (mpe2's state() layout)"
    assert {k: info[k] for k in ("rows", "episode_length", "episodes", "transitions", "terminated_episodes",
                                 "done_flags", "done_at_limit", "actions_clipped")} == {
        "rows": 135, "episode_length": 25, "episodes": 6, "transitions": 135, "terminated_episodes": 1,
        "done_flags": 6 if variant.get("dones_at_limit", True) else 1, "done_at_limit": "truncated",
        "actions_clipped": 0}
    assert "OMAR's reward" in info["comparability"]


def test_omar_convert_cli_validate_and_read_back(omar, tmp_path, capsys):
    folder, expected = omar
    out = tmp_path / "converted"
    args = ["convert", "--from", "omar-npy", "--task", MPE, "--env-config", json.dumps(CONT),
            "--reference-returns", json.dumps(REFS), "--out", str(out), str(folder.parent)]  # parent: one seed folder
    assert data_main(args) == 0
    assert capsys.readouterr().out.startswith(f"wrote {out}: 6 episodes, 135 transitions from 1 omar-npy file(s)")
    assert data_main(["validate", str(out)]) == 0
    assert capsys.readouterr().out.strip() == f"OK: {out}: 6 episodes, 135 transitions, task {MPE}"
    card, ep = validate_dataset(out)
    _same(ep, expected)
    assert card["spec"] == {"n_agents": 3, "obs_dim": 18, "state_dim": 54, "n_actions": 2, "episode_limit": 25,
                            "continuous": True}
    src = card["source"]
    assert src["kind"] == "omar-npy" and "options" not in src
    (entry,) = src["files"]
    assert entry["path"] == str(folder.parent.resolve()) and entry["folder"] == str(folder)
    assert entry["files"] == 15 and entry["bytes"] == sum(p.stat().st_size for p in folder.iterdir())
    h = hashlib.sha256()
    for p in sorted(folder.iterdir()):
        h.update(p.name.encode() + b"\0" + p.read_bytes())
    assert entry["sha256"] == "sha256:" + h.hexdigest()
    assert (entry["episodes"], entry["transitions"], entry["terminated_episodes"]) == (6, 135, 1)


def test_omar_seed_folders_and_options(tmp_path):
    root = tmp_path / "medium"
    e0 = fx.write_omar_fixture(root / "seed_0_data", episodes=3, seed=0)
    e1 = fx.write_omar_fixture(root / "seed_1_data", episodes=2, seed=5)
    _raises(lambda: _omar(root), r"holds several seed folders \['seed_0_data', 'seed_1_data'\].*\"seed\": K", root)
    _same(_omar(root, seed=1), e1)
    _same(_omar(root / "seed_0_data", seed=0), e0)
    _raises(lambda: _omar(root, seed=7), r"no seed_7_data folder \(found \['seed_0_data', 'seed_1_data'\]\)", root)
    # options through convert: chosen seed, unknown names refused
    card = convert_dataset("omar-npy", [root], tmp_path / "o1", task=MPE, env_config=CONT, reference_returns=REFS,
                           importer_options={"seed": 1})
    assert card["episodes"] == 2 and card["source"]["options"] == {"seed": 1}
    assert card["source"]["files"][0]["folder"] == str(root / "seed_1_data")
    _raises(lambda: convert_dataset("omar-npy", [root], tmp_path / "o2", task=MPE, env_config=CONT,
                                    reference_returns=REFS, importer_options={"bogus": 1}),
            r"importer 'omar-npy' has no option\(s\) \['bogus'\]; it accepts \['episode_length', 'done_at_limit', 'seed'\]")


def test_omar_done_at_limit_and_episode_length(tmp_path):
    with_dones = tmp_path / "a"
    fx.write_omar_fixture(with_dones)
    ep = _omar(with_dones, done_at_limit="terminated")  # OMAR's own TD semantics: every done is terminal
    assert ep.terminated.sum(1).tolist() == [1] * 6
    no_dones = tmp_path / "b"
    fx.write_omar_fixture(no_dones, dones_at_limit=False)
    ep = _omar(no_dones, done_at_limit="terminated")  # no flag at the limit: still a time-limit cut
    assert ep.terminated.sum(1).tolist() == [0, 0, 1, 0, 0, 0]
    # a wrong episode_length joins two episodes: the first row where next_obs != obs of the next row is named
    _raises(lambda: _omar(no_dones, episode_length=15),
            r"^[^:]*: row 24 differs from obs_0\.npy row 25 \(max \|difference\| [\d.e+-]+\) inside episode 1 "
            r"\(rows 15\.\.29\); episodes are cut every episode_length=15 rows and after done flags", no_dones / "next_obs_0.npy")
    _raises(lambda: _omar(no_dones, episode_length=30),
            r"135 rows do not split into episodes: the last 15 rows \(rows 120\.\.134\) end without a done flag before "
            r"episode_length=30 \(a truncated file, or the wrong episode_length\?\)$", no_dones)
    _raises(lambda: _omar(no_dones, episode_length=0), r"'episode_length' must be a positive integer, got 0")
    _raises(lambda: _omar(no_dones, done_at_limit="maybe"), r"'done_at_limit' must be one of \['truncated', 'terminated'\]")


# ---------------------------------------------------------------- omar-npy: bad inputs
def _edit(folder: Path, name: str, change) -> Path:
    x = np.load(folder / name)
    x = change(x)
    if x is None:
        raise AssertionError("change must return the new array")
    np.save(folder / name, x)
    return folder / name


def test_omar_missing_and_extra_agent_files(omar):
    folder, _ = omar
    (folder / "acs_1.npy").unlink()
    _raises(lambda: _omar(folder), r"missing; the OMAR layout needs obs_<i>\.npy, acs_<i>\.npy, rews_<i>\.npy, "
                                   r"next_obs_<i>\.npy, dones_<i>\.npy for every agent i < n_agents=3", folder / "acs_1.npy")
    shutil.copy(folder / "acs_0.npy", folder / "acs_1.npy")
    shutil.copy(folder / "obs_0.npy", folder / "obs_3.npy")
    _raises(lambda: _omar(folder), r"holds files of agent\(s\) \[3\] \(e\.g\. obs_3\.npy\), but task 'mpe_spread' .* "
                                   r"has n_agents=3, numbered 0\.\.2", folder)
    (folder / "obs_3.npy").unlink()
    shutil.copy(folder / "obs_0.npy", folder / "states_0.npy")  # once a states file exists, all are needed
    _raises(lambda: _omar(folder), r"missing; .*states_<i>\.npy, next_states_<i>\.npy for every agent .*once any",
            folder / "next_states_0.npy")


def test_omar_mismatched_row_counts(omar):
    folder, _ = omar
    f = _edit(folder, "rews_2.npy", lambda x: x[:-1])
    _raises(lambda: _omar(folder), r"134 rows, but obs_0\.npy has 135; every file must hold one row per team step", f)


def test_omar_obs_dim_not_matching_the_task(omar, tmp_path):
    folder, _ = omar
    d, f = _case(folder, tmp_path, "obs_1.npy", lambda x: x[:, :16])
    _raises(lambda: _omar(d), r"shape \(135, 16\): axis 1 \(obs_dim\) is 16, expected 18 for task 'mpe_spread' "
                              r"with env_config \{\"continuous_actions\": true\}", f)
    d, f = _case(folder, tmp_path, "acs_0.npy", lambda x: np.concatenate([x, x], 1))
    _raises(lambda: _omar(d), r"shape \(135, 4\): axis 1 \(action dimension\) is 4, expected 2", f)
    d, f = _case(folder, tmp_path, "dones_0.npy", lambda x: np.stack([x, x], 1))
    _raises(lambda: _omar(d), r"shape \(135, 2\), expected \[N\] or \[N, 1\]", f)
    # the same folder read as a 4-agent team: agent 3's files are missing
    _raises(lambda: import_omar_npy(folder, task=MPE, env_config={**CONT, "n_agents": 4}),
            r"missing; the OMAR layout needs", folder / "obs_3.npy")


def _set(index, value):
    def change(x):
        x = x.copy()
        x[index] = value
        return x
    return change


def _case(folder: Path, tmp_path: Path, name: str, change) -> tuple[Path, Path]:
    """A copy of the fixture folder with one file changed; returns (folder, changed file)."""
    case = tmp_path / f"case-{len(list(tmp_path.glob('case-*')))}"
    shutil.copytree(folder, case)
    return case, _edit(case, name, change)


def test_omar_nan_actions_dones_and_unreadable(omar, tmp_path):
    folder, _ = omar
    d, f = _case(folder, tmp_path, "obs_0.npy", _set((7, 3), np.nan))
    _raises(lambda: _omar(d), r"non-finite value nan at row 7, column 3; NaN/inf are not allowed", f)
    d, f = _case(folder, tmp_path, "rews_1.npy", _set(40, np.inf))
    _raises(lambda: _omar(d), r"non-finite value inf at row 40; NaN/inf", f)
    d, f = _case(folder, tmp_path, "acs_2.npy", _set((11, 1), 1.5))
    _raises(lambda: _omar(d), r"value 1\.5 at row 11, column 1, expected a value in \[-1, 1\] \(OMAR's and CFCQL's "
                              r"actors clamp", f)
    d, f = _case(folder, tmp_path, "acs_2.npy", _set((11, 1), 1.0 + 5e-6))  # float noise: clipped, counted
    info: dict = {}
    ep = _omar(d, info=info)
    assert info["actions_clipped"] == 1 and ep.actions[0, 11, 2, 1] == 1.0
    d, f = _case(folder, tmp_path, "dones_1.npy", _set(3, 1.0))
    _raises(lambda: _omar(d), r"row 3 is 1\.0 but dones_0\.npy row 3 is 0\.0; every agent's done flags must agree", f)
    d, f = _case(folder, tmp_path, "dones_1.npy", _set(3, 2.0))
    _raises(lambda: _omar(d), r"value 2\.0 at row 3; expected 0 or 1", f)
    raw = (folder / "obs_2.npy").read_bytes()
    (folder / "obs_2.npy").write_bytes(raw[: len(raw) // 2])
    _raises(lambda: _omar(folder), r"not a readable \.npy file \(truncated or corrupt\?\)", folder / "obs_2.npy")


def test_omar_row_count_and_continuity(omar, tmp_path):
    folder, _ = omar
    for i in range(3):  # the last row (with its done flag) is lost from every file
        for k in ("obs", "acs", "rews", "next_obs", "dones"):
            _edit(folder, f"{k}_{i}.npy", lambda x: x[:-1])
    _raises(lambda: _omar(folder), r"134 rows do not split into episodes: the last 24 rows \(rows 110\.\.133\) end without "
                                   r"a done flag before episode_length=25 \(a truncated file", folder)
    other = tmp_path / "dup"
    fx.write_omar_fixture(other, dones_at_limit=False)
    for i in range(3):  # row 5 duplicated in every file
        for k in ("obs", "acs", "rews", "next_obs", "dones"):
            _edit(other, f"{k}_{i}.npy", lambda x: np.insert(x, 5, x[5], axis=0))
    _raises(lambda: _omar(other), r"row 5 differs from obs_0\.npy row 6 .* inside episode 0 \(rows 0\.\.24\)",
            other / "next_obs_0.npy")


def test_omar_refuses_discrete_tasks_and_bad_paths(omar, tmp_path):
    folder, _ = omar
    _raises(lambda: import_omar_npy(folder, task=MPE, env_config={}),
            r"omar-npy datasets hold continuous actions, but task 'mpe_spread' .* is discrete \(pass --env-config "
            r"'\{\"continuous_actions\": true\}'\)", folder)
    _raises(lambda: import_omar_npy(folder, task="equal_line", env_config={"n_agents": 3}), r"is discrete$", folder)
    _raises(lambda: _omar(tmp_path / "nope"), r"no such directory$", tmp_path / "nope")
    _raises(lambda: _omar(folder / "obs_0.npy"), r"is a file; omar-npy reads a folder", folder / "obs_0.npy")
    (tmp_path / "empty").mkdir()
    _raises(lambda: _omar(tmp_path / "empty"), r"holds neither OMAR files .* nor seed_<k>_data folders", tmp_path / "empty")


def test_omar_states_must_agree(tmp_path):
    folder = tmp_path / "s"
    fx.write_omar_fixture(folder, with_states=True)
    x = np.load(folder / "states_1.npy")
    f = _edit(folder, "states_1.npy", _set((30, 2), x[30, 2] + 0.5))
    _raises(lambda: _omar(folder), r"row 30 differs from states_0\.npy row 30 \(max \|difference\| 0\.5\); every agent's "
                                   r"copy of the global state must agree", f)


def test_registry_and_cli_choices():
    assert IMPORTERS["omar-npy"] is import_omar_npy and IMPORTERS["og-marl-vault"] is import_og_marl_vault


# ================================================================ og-marl-vault
VAULT_ATOL = 1e-6
needs_flashbax = pytest.mark.skipif(not HAS_FLASHBAX, reason="flashbax not installed (pip install 'rllib-cfcql[og-marl]')")


def test_vault_without_flashbax_names_the_extra(tmp_path, monkeypatch):
    import sys

    for mod in ("flashbax", "flashbax.vault"):  # as if the og-marl extra were not installed
        monkeypatch.setitem(sys.modules, mod, None)
    loc = tmp_path / "vaults" / "x.vlt" / "Good"
    loc.mkdir(parents=True)
    (loc / "metadata.json").write_text("{}")
    _raises(lambda: import_og_marl_vault(loc, task="equal_line", env_config={"n_agents": 3}),
            r"reading OG-MARL vaults needs flashbax .*pip install 'rllib-cfcql\[og-marl\]'", loc)


@needs_flashbax
@pytest.mark.parametrize("task,kw", [
    ("equal_line", {}),
    ("mpe_spread", {"episodes": 4, "streams": 2, "terminal_cut": False}),
    ("mpe_spread", {"episodes": 4, "with_state": False}),
], ids=["equal_line-legals-state", "mpe-continuous-2-streams", "mpe-continuous-no-state"])
def test_vault_convert_validate_and_read_back(tmp_path, task, kw, capsys):
    loc, expected, env_config = fx.write_vault_fixture(tmp_path / "vaults", task=task, **kw)
    info: dict = {}
    _same(import_og_marl_vault(loc, task=task, env_config=env_config, info=info), expected, reward_atol=VAULT_ATOL)
    out = tmp_path / "converted"
    args = ["convert", "--from", "og-marl-vault", "--task", task, "--env-config", json.dumps(env_config),
            "--reference-returns", json.dumps(REFS), "--out", str(out), str(loc)]
    assert data_main(args) == 0
    capsys.readouterr()
    card, ep = validate_dataset(out)
    _same(ep, expected, reward_atol=VAULT_ATOL)
    entry = card["source"]["files"][0]
    assert card["source"]["kind"] == "og-marl-vault" and entry["vault"] == str(loc)
    assert entry["files"] == sum(1 for p in loc.rglob("*") if p.is_file())
    assert entry["reader"].startswith("flashbax ")
    n_trunc = int(expected.num_episodes - expected.terminated.sum())
    assert entry["truncated_last_steps_dropped"] == n_trunc == ep.num_episodes - entry["terminated_episodes"]
    assert entry["transitions"] == info["steps"] - n_trunc == ep.num_transitions
    assert entry["state_source"] == ("infos.state" if kw.get("with_state", True)
                                     else "concatenated observations (mpe2's state() layout)")
    if task == "equal_line":  # 8 episodes, 2 terminal (kept whole), 6 truncated (lose their last step)
        assert ep.lengths().tolist() == [9, 9, 4, 9, 9, 7, 5, 9]
        assert entry["legals_source"] == "infos.legals"
    else:
        assert entry["streams"] == kw.get("streams", 1) and entry["legals_source"] == "continuous task"


def _vault(tmp_path, change=None, task="equal_line", name="v.vlt", **kw):
    ep, env_config = fx.vault_fixture_rollout(task, **kw)
    exp = fx.vault_experience(ep)
    if change is not None:
        change(exp)
    return fx.write_vault(tmp_path / "vaults", name, exp), ep, env_config


@needs_flashbax
def test_vault_uid_selection_and_legals_absent(tmp_path):
    ep, cfg = fx.vault_fixture_rollout("equal_line")
    a = fx.write_vault(tmp_path / "vaults", "el.vlt", fx.vault_experience(ep), vault_uid="Good")
    fx.write_vault(tmp_path / "vaults", "el.vlt", fx.vault_experience(ep, with_legals=False), vault_uid="Poor")
    parent = a.parent
    _raises(lambda: import_og_marl_vault(parent, task="equal_line", env_config=cfg),
            r"holds several vault uids \['Good', 'Poor'\]; .*\"vault_uid\": \"NAME\"", parent)
    _same(import_og_marl_vault(parent, task="equal_line", env_config=cfg, vault_uid="Good"), fx.expected_from_vault(ep),
          reward_atol=VAULT_ATOL)
    info: dict = {}
    poor = import_og_marl_vault(parent, task="equal_line", env_config=cfg, vault_uid="Poor", info=info)
    assert info["legals_source"] == "absent: every action available" and (poor.action_mask == 1).all()
    _raises(lambda: import_og_marl_vault(parent, task="equal_line", env_config=cfg, vault_uid="Medium"),
            r"no vault uid 'Medium' .*found \['Good', 'Poor'\]", parent)
    _raises(lambda: import_og_marl_vault(tmp_path, task="equal_line", env_config=cfg),
            r"not a flashbax vault: no metadata\.json", tmp_path)


@needs_flashbax
def test_vault_missing_leaf_and_shapes(tmp_path):
    loc, _, cfg = _vault(tmp_path, lambda e: e.pop("truncations"))
    _raises(lambda: import_og_marl_vault(loc, task="equal_line", env_config=cfg),
            r"the vault has no \['truncations'\] \(it holds \['actions', 'infos\.legals', 'infos\.state', 'observations', "
            r"'rewards', 'terminals'\]\)", loc)
    loc, _, cfg = _vault(tmp_path, name="w.vlt")
    _raises(lambda: import_og_marl_vault(loc, task="equal_line", env_config={"n_agents": 4, "episode_limit": 10}),
            r"'observations' has shape \(1, 67, 3, 4\): axis 2 \(n_agents\) is 3, expected 4 for task 'equal_line'", loc)
    _raises(lambda: import_og_marl_vault(loc, task=MPE, env_config=CONT),
            r"'observations' has shape \(1, 67, 3, 4\): axis 3 \(obs_dim\) is 4, expected 18", loc)


@needs_flashbax
def test_vault_values(tmp_path):
    def nan(e):
        e["rewards"][0, 5, 1] = np.nan

    loc, _, cfg = _vault(tmp_path, nan, name="nan.vlt")
    _raises(lambda: import_og_marl_vault(loc, task="equal_line", env_config=cfg),
            r"'rewards' has non-finite value nan at index \[0, 5, 1\] \(stream 0, step 5\)", loc)

    def unavailable(e):
        a = int(e["actions"][0, 3, 1])
        e["infos"]["legals"][0, 3, 1, a] = 0.0

    loc, _, cfg = _vault(tmp_path, unavailable, name="ill.vlt")
    _raises(lambda: import_og_marl_vault(loc, task="equal_line", env_config=cfg),
            r"'actions' has \d+ at index \[0, 3, 1\] \(stream 0, step 3, agent 1\), which infos\.legals\[0, 3, 1, \d+\] = 0 "
            r"marks unavailable", loc)

    def outside(e):
        e["actions"][0, 8, 2, 0] = -1.25

    loc, _, cfg = _vault(tmp_path, outside, task=MPE, name="cont.vlt", episodes=2)
    _raises(lambda: import_og_marl_vault(loc, task=MPE, env_config=cfg),
            r"'actions' has -1\.25 at index \[0, 8, 2, 0\] \(stream 0, step 8, agent 2\), expected a value in \[-1, 1\]", loc)


@needs_flashbax
def test_vault_incomplete_tail_and_corruption(tmp_path):
    def open_end(e):
        e["truncations"][0, -1] = 0.0

    loc, ep, cfg = _vault(tmp_path, open_end, name="tail.vlt")
    _raises(lambda: import_og_marl_vault(loc, task="equal_line", env_config=cfg),
            r"stream 0: steps 57\.\.66 come after the last episode end .*\"drop_incomplete_tail\": true", loc)
    info: dict = {}
    got = import_og_marl_vault(loc, task="equal_line", env_config=cfg, drop_incomplete_tail=True, info=info)
    assert got.num_episodes == 7 and info["incomplete_tail_steps_dropped"] == 10
    _same(got, fx.expected_from_vault(ep.select(np.arange(7))), reward_atol=VAULT_ATOL)
    for p in (loc / "d").iterdir():  # the data files of the store are gone
        p.unlink()
    _raises(lambda: import_og_marl_vault(loc, task="equal_line", env_config=cfg),
            r"the vault cannot be read \(truncated or corrupt\?\)", loc)
    (loc / "metadata.json").write_text('{"version": 1.2')
    _raises(lambda: import_og_marl_vault(loc, task="equal_line", env_config=cfg),
            r"metadata\.json: not a flashbax vault metadata file \(truncated or corrupt\?\)", loc / "metadata.json")


HAS_JAXMARL = importlib.util.find_spec("jaxmarl") is not None


@needs_flashbax
@pytest.mark.skipif(not HAS_JAXMARL, reason='the smax tasks need the optional extra: pip install -e ".[smax]"')
def test_starcraft_vault_onto_a_dataset_only_task(tmp_path):
    """A vault recorded on a StarCraft-like task (SMAX 2s3z here, standing in for a SMAC vault) imported
    with --task none: shapes from the vault, no env, no reference returns; then CFCQL without an env
    takes its shapes from the card."""
    from rllib_cfcql import CFCQLConfig
    from rllib_cfcql.envs import make_team_env

    loc, expected, env_config = fx.write_vault_fixture(tmp_path / "vaults", task="smax_2s3z", episodes=3)
    out = tmp_path / "converted"
    assert data_main(["convert", "--from", "og-marl-vault", "--task", "none", "--out", str(out), str(loc)]) == 0
    card, ep = validate_dataset(out)
    _same(ep, expected, reward_atol=VAULT_ATOL)
    spec = make_team_env("smax_2s3z", env_config).team_spec
    assert card["task"] is None and "reference_returns" not in card
    got = {k: card["spec"][k] for k in ("n_agents", "obs_dim", "state_dim", "n_actions", "continuous")}
    assert got == {"n_agents": 5, "obs_dim": spec.obs_dim, "state_dim": spec.state_dim, "n_actions": 10,
                   "continuous": False}
    cfg = CFCQLConfig().environment(None).offline_data(input_=[str(out)])
    cfg.validate()
    assert cfg.team_spec().n_agents == 5 and cfg.team_spec().n_actions == 10 and cfg.evaluation_interval is None
    # a discrete vault without legals cannot say how many actions there are
    exp = fx.vault_experience(fx.vault_fixture_rollout("smax_2s3z", episodes=2)[0], with_legals=False)
    bare = fx.write_vault(tmp_path / "vaults", "bare.vlt", exp)
    _raises(lambda: import_og_marl_vault(bare, task=None, env_config={}), r"needs 'infos.legals'", bare)
    with pytest.raises(DatasetError, match="needs --task"):
        convert_dataset("omar-npy", [str(loc)], tmp_path / "x", task=None, env_config={})
