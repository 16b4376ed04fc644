"""Every file in tuned_examples/ loads (no duplicate/unknown keys) and validates."""

from __future__ import annotations

import pytest

from rllib_cfcql.cli.experiment_file import load_experiment_file
from rllib_cfcql.cli.tune_run import build_param_space

from .conftest import REPO

FILES = sorted((REPO / "tuned_examples").glob("*.yaml"))


def test_there_are_tuned_examples():
    names = {f.name for f in FILES}
    assert {"cfcql-mpe.yaml", "cfcql-equal-line.yaml"} <= names


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_tuned_example_loads_and_validates(path, monkeypatch):
    monkeypatch.chdir(REPO)
    spec = load_experiment_file(str(path))
    assert spec.run == "CFCQL"
    algo_cls, param_space, first = build_param_space(spec, validate=True)
    first.validate()
    assert first.input_ and all(str(p).startswith(str(REPO)) for p in first.input_)
