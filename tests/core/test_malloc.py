"""CPU learners keep a step's freed blocks in the heap (rllib_cfcql.core.malloc): the settings take effect
in a real process (page faults of re-filling a freed 64 MB block), yield to the user's MALLOC_* variables,
and are applied by the learner's build unless turned off."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from rllib_cfcql import CFCQLConfig
from rllib_cfcql.core.malloc import keep_freed_memory

REPO = Path(__file__).resolve().parents[2]
GLIBC = bool(keep_freed_memory())  # applied to this (test) process too: it only raises thresholds

_PROBE = r"""
import json, resource, sys, torch
from rllib_cfcql.core.malloc import keep_freed_memory
applied = keep_freed_memory() if sys.argv[1] == "keep" else {}
n = 16 << 20  # 16 Mi float32 = 64 MB: above glibc's largest dynamic mmap threshold (32 MB)
faults = []
for _ in range(12):  # a training loop's pattern: the same large temporaries allocated, touched and freed
    f0 = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    x = torch.ones(n); y = x * 2; del x, y
    faults.append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - f0)
print(json.dumps({"applied": applied, "faults": faults[6:], "pages": 2 * n * 4 // resource.getpagesize()}))
"""


def _probe(mode: str, **env) -> dict:
    e = {k: v for k, v in os.environ.items() if not k.startswith("MALLOC_")}
    e.update(env)
    out = subprocess.run([sys.executable, "-c", _PROBE, mode], capture_output=True, text=True, env=e, cwd=REPO,
                         check=True).stdout
    return json.loads(out.strip().splitlines()[-1])


@pytest.mark.skipif(not GLIBC, reason="mallopt is glibc's")
def test_freed_block_is_reused_without_page_faults():
    plain, kept = _probe("plain"), _probe("keep")
    assert kept["applied"] == {"MALLOC_MMAP_THRESHOLD_": True, "MALLOC_TRIM_THRESHOLD_": True, "MALLOC_TOP_PAD_": True}
    # without the settings the two 64 MB blocks are unmapped on free and every page faults in again, every round
    assert min(plain["faults"]) >= 0.9 * plain["pages"], plain
    # with them, once warm, the blocks stay in the heap: the next round touches pages that are already mapped
    assert max(kept["faults"]) <= 0.05 * kept["pages"], kept


@pytest.mark.skipif(not GLIBC, reason="mallopt is glibc's")
def test_user_malloc_variables_win():
    r = _probe("keep", MALLOC_TRIM_THRESHOLD_="131072")
    assert r["applied"] == {"MALLOC_MMAP_THRESHOLD_": True, "MALLOC_TRIM_THRESHOLD_": False, "MALLOC_TOP_PAD_": True}


def _cfg(**training):
    ds = REPO / "offline_data" / "mpe_spread_continuous" / "medium"
    card = json.loads((ds / "card.json").read_text())
    return (CFCQLConfig().environment(card["task"], env_config=card["env_config"]).offline_data(input_=[str(ds)])
            .training(train_batch_size_per_learner=32, **training).debugging(seed=0))


@pytest.mark.skipif(not GLIBC, reason="mallopt is glibc's")
def test_cpu_learner_applies_the_settings_unless_turned_off():
    on = _cfg()
    on.validate()  # resolves the team's spaces
    on = on.build_learner(env=None)
    assert set(on.malloc_settings) == {"MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_", "MALLOC_TOP_PAD_"}
    assert all(on.malloc_settings[k] != (k in os.environ) for k in on.malloc_settings)
    off = _cfg(learner_keep_freed_memory=False)
    off.validate()
    assert off.build_learner(env=None).malloc_settings == {}


def test_setting_must_be_a_bool():
    with pytest.raises(ValueError, match=r"CFCQLConfig\.learner_keep_freed_memory='yes' is invalid: expected True or False"):
        _cfg(learner_keep_freed_memory="yes").validate()
