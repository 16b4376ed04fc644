"""Resume after a crash and fail cleanly: `rllib train --resume` after a real `kill -9`; a bad dataset
fails before Ray starts with one line and exit 2; a changed dataset is refused unless trusted; wrong
column types are named; progress in logs stays a few lines."""

from __future__ import annotations

import glob
import io
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from rllib_cfcql import keys as K
from rllib_cfcql.data.schema import DatasetError
from rllib_cfcql.data.validate import preflight, validate_dataset
from rllib_cfcql.progress import LogProgress
from tests.conftest import REPO

DATA = REPO / "offline_data" / "equal_line_n4"


def _yaml(path: Path, data: Path, iterations: int) -> Path:
    path.write_text(
        "resume-me:\n  env: null\n  run: CFCQL\n"
        f"  stop: {{training_iteration: {iterations}}}\n  config:\n    input_: [{data}]\n"
        "    agent_rnn: false\n    obs_last_action: false\n    batch_unit: transitions\n    cf_tau: 0.0\n"
        "    num_gradient_steps_per_iteration: 100\n    seed: 0\n"
    )
    return path


def _train_cmd(yaml_file: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "rllib_cfcql", "train", "--file", str(yaml_file), "--ray-num-cpus", "4", *extra]


def _kill_session(proc: subprocess.Popen) -> None:
    """kill -9 the run's whole session (driver and the Ray processes it started)."""
    sid = os.getsid(proc.pid)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    deadline = time.time() + 20
    while time.time() < deadline:
        ps = subprocess.run(["ps", "-eo", "pid=,sid="], capture_output=True, text=True).stdout.split("\n")
        left = [int(p) for p, s in (line.split() for line in ps if line.strip()) if int(s) == sid]
        if not left:
            return
        for pid in left:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        time.sleep(0.5)


@pytest.mark.ray  # trains in a subprocess that starts its own Ray
def test_resume_continues_a_killed_run_from_its_last_checkpoint(tmp_path):
    """`rllib train` (env: null) killed with SIGKILL after its second checkpoint; `--resume` restores the
    trial from a checkpoint and finishes; the summary of a run without env reports training metrics."""
    yaml_file = _yaml(tmp_path / "r.yaml", DATA, iterations=12)
    log = open(tmp_path / "run1.log", "w")
    proc = subprocess.Popen(_train_cmd(yaml_file, "--checkpoint-freq", "2"), cwd=tmp_path, stdout=log,
                            stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.time() + 400
        while not glob.glob(str(tmp_path / "results/resume-me/*/checkpoint_000001")):
            assert proc.poll() is None, (tmp_path / "run1.log").read_text()[-3000:]
            assert time.time() < deadline, "no second checkpoint within 400 s"
            time.sleep(0.2)
        time.sleep(3)  # the experiment state (which checkpoint is the latest) is saved every 2 s
    finally:
        _kill_session(proc)
    trial = Path(glob.glob(str(tmp_path / "results/resume-me/*/result.json"))[0]).parent
    killed_at = [json.loads(line)["training_iteration"] for line in open(trial / "result.json")][-1]
    assert killed_at < 12

    out = subprocess.run(_train_cmd(yaml_file, "--resume"), cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    assert "resuming" in out.stdout and "[TERMINATED]" in out.stdout
    # a run without env: no evaluation, and the summary reports training metrics and the checkpoint
    summary = out.stdout[out.stdout.index("== resume-me"):]
    assert "evaluation         : off (no env: trained from the dataset alone)" in summary
    assert "td_loss" in summary and "iterations         : 12" in summary
    ckpt = summary.split("last checkpoint    : ")[1].split()[0]
    assert ckpt.startswith(str(tmp_path / "results")) and (Path(ckpt) / "rllib_checkpoint.json").is_file()
    rows = [json.loads(line) for line in open(trial / "result.json")]
    resumed = [r for r in rows if r["iterations_since_restore"] != r["training_iteration"]]
    first = resumed[0]
    # the restored trial continued after a checkpointed iteration (every 2), not from iteration 1
    assert first["iterations_since_restore"] == 1 and first["training_iteration"] > 1
    assert (first["training_iteration"] - 1) % 2 == 0
    assert rows[-1]["training_iteration"] == 12
    # an experiment that does not exist is a usage error, before Ray
    out = subprocess.run(_train_cmd(yaml_file, "--resume", str(tmp_path / "nope")), cwd=tmp_path, capture_output=True,
                         text=True, timeout=300)
    assert out.returncode == 2 and "holds no Tune experiment to resume" in out.stderr


def _corrupt_copy(tmp_path: Path, change) -> Path:
    d = tmp_path / "bad"
    shutil.copytree(DATA, d)
    f = sorted(d.glob("data-*.parquet"))[0]
    pq.write_table(change(pq.read_table(f)), f)
    return d


def test_a_bad_dataset_fails_before_ray_starts_with_one_line(tmp_path):
    def unavailable_action(t):  # row 3: agent 0's action marked unavailable in its mask
        masks = t.column(K.ACTION_MASK).to_pylist()
        a = t.column(K.ACTIONS)[3].as_py()[0]
        masks[3][a] = 0.0
        return t.set_column(t.column_names.index(K.ACTION_MASK), K.ACTION_MASK, pa.array(masks, pa.list_(pa.float32())))

    d = _corrupt_copy(tmp_path, unavailable_action)
    yaml_file = _yaml(tmp_path / "bad.yaml", d, iterations=1)
    out = subprocess.run(_train_cmd(yaml_file, "--config", '{"trust_dataset_card": true}'), cwd=tmp_path,
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 2
    errors = [line for line in out.stderr.splitlines() if "error" in line.lower()]
    assert len(errors) == 1, out.stderr
    assert "data-00000.parquet" in errors[0] and "which its action_mask marks unavailable" in errors[0]
    assert "Traceback" not in out.stderr and "Started a local Ray instance" not in out.stderr + out.stdout


def test_a_changed_dataset_is_refused_unless_trusted(ray_session, tmp_path):
    """The card's content hash no longer matches: `rllib train` (preflight) and the algorithm itself
    refuse, naming the option; trust_dataset_card=True trains."""
    from rllib_cfcql import CFCQLConfig

    d = _corrupt_copy(tmp_path, lambda t: t.set_column(
        t.column_names.index(K.REWARD), K.REWARD, pc.add(t.column(K.REWARD), pa.scalar(1.0, pa.float32()))))
    spec = validate_dataset(DATA)[1]  # noqa: F841 - the original still validates
    cfg = (CFCQLConfig().environment(None).offline_data(input_=[str(d)])
           .training(agent_rnn=False, obs_last_action=False, batch_unit="transitions", cf_tau=0.0,
                     num_gradient_steps_per_iteration=5))
    cfg.validate()
    with pytest.raises(DatasetError, match=r"content hash .* differs from the card's .*trust_dataset_card=True"):
        preflight(cfg.input_, cfg.team_spec(), None)
    with pytest.raises(Exception, match=r"trust_dataset_card=True"):
        cfg.build_algo()
    preflight(cfg.input_, cfg.team_spec(), None, trust_card=True)
    algo = cfg.copy().training(trust_dataset_card=True).build_algo()
    try:
        assert algo.train()["training_iteration"] == 1
    finally:
        algo.stop()
    # a file added next to the card's is a change too
    shutil.copy(sorted(d.glob("data-*.parquet"))[0], d / "data-00099.parquet")
    with pytest.raises(DatasetError, match=r"data files .* differ from the card's list"):
        preflight(cfg.input_, cfg.team_spec(), None)


@pytest.mark.parametrize("column, make, expected", [
    (K.REWARD, lambda t: pc.cast(t.column(K.REWARD), pa.string()), r"column 'reward' has type string, expected float32"),
    (K.TERMINATED, lambda t: pc.cast(t.column(K.TERMINATED), pa.float64()),
     r"column 'terminated' has type double, expected bool \(or integers 0/1\)"),
    (K.ACTIONS, lambda t: pc.cast(t.column(K.ACTIONS), pa.list_(pa.float32())),
     r"column 'actions' has type list<(item|element): float>, expected list<int64>"),
    (K.OBS, lambda t: pc.cast(t.column(K.OBS), pa.list_(pa.string())), r"column 'obs' has type list<(item|element): string>"),
    (K.EPISODE_ID, lambda t: pc.cast(t.column(K.EPISODE_ID), pa.float64()), r"column 'episode_id' has type double, expected int64"),
])
def test_a_column_of_the_wrong_type_is_refused_by_name(tmp_path, column, make, expected):
    d = _corrupt_copy(tmp_path, lambda t: t.set_column(t.column_names.index(column), column, make(t)))
    with pytest.raises(DatasetError, match=expected):
        validate_dataset(d, check_hash=False)


def test_integer_flags_and_rewards_are_accepted_as_their_values(tmp_path):
    def ints(t):
        t = t.set_column(t.column_names.index(K.TERMINATED), K.TERMINATED, pc.cast(t.column(K.TERMINATED), pa.int8()))
        return t.set_column(t.column_names.index(K.REWARD), K.REWARD, pc.cast(t.column(K.REWARD), pa.float64()))

    d = _corrupt_copy(tmp_path, ints)
    _, ep = validate_dataset(d, check_hash=False)
    _, ref = validate_dataset(DATA)
    assert ep.num_transitions == ref.num_transitions and (ep.terminated == ref.terminated).all()
    bad = _corrupt_copy(tmp_path / "x", lambda t: t.set_column(
        t.column_names.index(K.TRUNCATED), K.TRUNCATED, pa.array([2] * t.num_rows, pa.int64())))
    with pytest.raises(DatasetError, match=r"column 'truncated' is 2 at row 0, expected a bool"):
        validate_dataset(bad, check_hash=False)


def test_progress_in_a_log_is_a_few_lines():
    buf = io.StringIO()
    bar = LogProgress(3000, "pre-training behaviour model β (BC)", file=buf)
    for step in range(3000):
        bar.update(1)
        if step % 50 == 0:
            bar.set_postfix(val_nll="0.5")
    bar.close()
    lines = buf.getvalue().splitlines()
    assert len(lines) == 5  # start, 25 %, 50 %, 75 %, done
    assert lines[0].endswith("0/3000 steps") and "done, 3000 steps" in lines[-1] and "val_nll=0.5" in lines[-1]
    assert "\r" not in buf.getvalue()
