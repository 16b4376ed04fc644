"""A learner's steps/s with ``learner_keep_freed_memory`` on and off (rllib_cfcql.core.malloc), side by side.

Used by ``throughput.py`` and ``throughput_continuous.py`` (``--malloc-ab ROUNDS``): the script reruns
itself in fresh processes, on / off alternating with the order flipped every round (a process's heap
cannot be put back once it has kept its blocks, so the settings never share a process). Each child
prints one line ``AB_RATES {"case": learner steps/s, ...}``; the medians and their ratio are printed
and written to ``--out``.
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
from pathlib import Path

PREFIX = "AB_RATES "


def report(rates: dict) -> None:
    """The child's side: one parseable line of learner steps/s per case."""
    print(PREFIX + json.dumps(rates), flush=True)


def run(script: str, child_args: list[str], rounds: int, out: str | None = None) -> list[dict]:
    per = {"on": [], "off": []}
    for r in range(rounds):
        for mode in (("on", "off") if r % 2 == 0 else ("off", "on")):
            stdout = subprocess.run([sys.executable, script, *child_args, "--keep-freed-memory", mode],
                                    capture_output=True, text=True, check=True).stdout
            rates = json.loads(next(line for line in stdout.splitlines() if line.startswith(PREFIX))[len(PREFIX):])
            per[mode].append(rates)
            print(f"round {r} keep-freed-memory {mode:3s}: learner steps/s "
                  + ", ".join(f"{k} {v:.2f}" for k, v in rates.items()), flush=True)
    rows = []
    for case in per["on"][0]:
        on, off = (statistics.median(x[case] for x in per[m]) for m in ("on", "off"))
        rows.append({"case": case, "on": on, "off": off, "ratio": round(on / off, 2)})
        print(f"{case:36s} median learner steps/s: on {on:.2f}, off {off:.2f}, on/off {on / off:.2f}x")
    if out:
        Path(out).parent.mkdir(parents=True, exist_ok=True)
        Path(out).write_text(json.dumps({"rounds": rounds, "child_args": child_args, "per_round": per, "rows": rows},
                                        indent=1))
    return rows
