"""Shared fixtures.

* ``ray_session``: one Ray instance for the whole test session (importing RLlib
  and starting Ray cost ~15 s on 2 cores). Ray gets 6 logical CPUs so that the
  driver learner, remote learners and evaluation EnvRunners cannot starve each
  other; ray.data read tasks request no CPU at all.
* ``tiny_dataset``: factory writing small deterministic team datasets with the
  project's own writer.
* The behaviour-model cache goes to a per-session temp dir.

Tiers (markers, pyproject.toml): every test that uses ``ray_session`` (directly or through
another fixture) is marked ``ray`` here, and the two that train in a subprocess are marked by hand.
``pytest -m "not ray and not learning"`` runs the Ray-free tiers alone (unit and component: loss
maths, modules, learners, envs, data layer; about 3 minutes on 2 cores). ``learning`` runs are
opt-in (``pytest -m learning``). The directories mirror the package: tests/core, discrete,
continuous, data, envs, behaviour_policies, cli.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest

_CACHE = tempfile.mkdtemp(prefix="cfcql-cache-")
os.environ.setdefault("RLLIB_CFCQL_CACHE", _CACHE)
os.environ.setdefault("RAY_DEDUP_LOGS", "0")
os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")

REPO = Path(__file__).resolve().parents[1]


def pytest_collection_modifyitems(config, items):
    for item in items:
        if "ray_session" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.ray)


@pytest.fixture(scope="session")
def ray_session():
    import ray

    if not ray.is_initialized():
        ray.init(num_cpus=6, include_dashboard=False, log_to_driver=False, configure_logging=False)
    yield ray
    ray.shutdown()


@pytest.fixture(scope="session")
def tiny_dataset(tmp_path_factory):
    """make(name, task, env_config, episodes, fmt, policy, seed) -> dataset dir (cached per args)."""
    from rllib_cfcql.data.collect import collect

    made: dict = {}

    def make(task="equal_line", env_config=None, episodes=12, fmt="parquet", policy="mixed_agents:0.5", seed=0):
        env_config = dict(env_config or {"n_agents": 3, "episode_limit": 10})
        key = (task, tuple(sorted(env_config.items())), episodes, fmt, policy, seed)
        if key not in made:
            out = tmp_path_factory.mktemp(f"ds-{task}-{fmt}")
            collect(task=task, env_config=env_config, policy=policy, episodes=episodes, seed=seed, out_dir=out,
                    fmt=fmt, reference_episodes=8, progress=False, force=True)
            made[key] = out
        return made[key]

    return make


def check_score_and_checkpoint_round_trip(algo, result, tmp_path, task, env_config, grad_steps, next_grad_steps):
    """What every Algorithm smoke test asserts after its iterations: the evaluation's normalised score follows
    from the references, and a checkpoint restores the same weights, step counter and greedy policy, and
    trains on from there (``grad_steps`` before, ``next_grad_steps`` after one more iteration)."""
    import math

    import numpy as np
    import torch
    from ray.rllib.algorithms.algorithm import Algorithm

    from rllib_cfcql import keys as K
    from rllib_cfcql.evaluation import evaluate_module

    ev = result["evaluation"]["env_runners"]
    assert ev["num_episodes"] >= 2 and math.isfinite(ev["episode_return_mean"])
    refs = algo.reference_returns
    assert ev[K.NORMALIZED_SCORE] == pytest.approx(
        100 * (ev["episode_return_mean"] - refs["random"]) / (refs["expert"] - refs["random"]))
    ckpt = algo.save(str(tmp_path / "ckpt")).checkpoint.path
    m1 = algo.learner_group._learner.module["default_policy"].unwrapped()
    restored = Algorithm.from_checkpoint(ckpt)
    try:
        m2 = restored.learner_group._learner.module["default_policy"].unwrapped()
        for (k, a), (_, b) in zip(m1.state_dict().items(), m2.state_dict().items()):
            assert torch.equal(a, b), k
        assert restored.learner_group._learner.num_grad_steps == grad_steps
        np.testing.assert_array_equal(evaluate_module(m1, task, env_config, 3), evaluate_module(m2, task, env_config, 3))
        r2 = restored.train()
        assert r2["learners"]["__all_modules__"][K.NUM_GRAD_STEPS] == next_grad_steps
    finally:
        restored.stop()
