"""Latency and load time of an exported CFCQL policy (``rllib-cfcql export``), without Ray.

    python benchmarks/export_latency.py                      # trains a tiny 10-agent checkpoint first
    python benchmarks/export_latency.py --policy my_policy   # an exported directory

Prints, for TorchScript and ONNX Runtime (one thread each): the load time measured in a fresh
process (import of torch / onnxruntime excluded, reported apart), and per-step latency for one agent
(B = 1) and for the whole team in one call (B = n_agents), median and 90th percentile over repeated
steps with the recurrent state carried. Writes benchmarks/results/export_latency.json.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

_LOAD = r"""
import json, sys, time
t0 = time.perf_counter()
import {lib}
t1 = time.perf_counter()
{load}
t2 = time.perf_counter()
print(json.dumps({{"import_s": t1 - t0, "load_s": t2 - t1}}))
"""


def make_policy(out: Path) -> Path:
    """A briefly trained GRU policy for the bundled 10-agent Equal_Line dataset (weights do not matter here)."""
    import ray

    from rllib_cfcql import CFCQLConfig
    from rllib_cfcql.export import export_policy

    ray.init(num_cpus=4, include_dashboard=False, log_to_driver=False)
    cfg = (CFCQLConfig().environment(None).offline_data(input_=[str(REPO / "offline_data/equal_line_n10")])
           .training(agent_rnn=True, obs_last_action=True, cf_tau=0.0, num_gradient_steps_per_iteration=5,
                     train_batch_size_per_learner=8))
    algo = cfg.build_algo()
    algo.train()
    ckpt = algo.save(str(out / "checkpoint")).checkpoint.path
    algo.stop()
    ray.shutdown()
    export_policy(ckpt, out / "policy")
    return out / "policy"


def load_times(policy: Path, repeats: int) -> dict:
    cases = {
        "torchscript": ("torch", f"torch.set_num_threads(1); m = torch.jit.load({str(policy / 'policy.pt')!r})"),
        "onnx": ("onnxruntime", "o = onnxruntime.SessionOptions(); o.intra_op_num_threads = 1; "
                                f"s = onnxruntime.InferenceSession({str(policy / 'policy.onnx')!r}, o)"),
    }
    out = {}
    for name, (lib, load) in cases.items():
        runs = []
        for _ in range(repeats):  # fresh processes, alternating formats would not matter: nothing is shared
            r = subprocess.run([sys.executable, "-c", _LOAD.format(lib=lib, load=load)], capture_output=True,
                               text=True, check=True)
            runs.append(json.loads(r.stdout.strip().splitlines()[-1]))
        out[name] = {k: sorted(x[k] for x in runs)[len(runs) // 2] for k in ("import_s", "load_s")}
    return out


def step_latency(policy: Path, steps: int) -> dict:
    import numpy as np
    import onnxruntime
    import torch

    torch.set_num_threads(1)
    meta = json.loads((policy / "policy.json").read_text())
    ts = torch.jit.load(str(policy / "policy.pt"))
    opts = onnxruntime.SessionOptions()
    opts.intra_op_num_threads = 1
    sess = onnxruntime.InferenceSession(str(policy / "policy.onnx"), opts)
    n = meta["n_agents"]
    rng = np.random.default_rng(0)
    results = {}
    for B in (1, n):
        obs = rng.normal(size=(steps, B, meta["obs_dim"])).astype(np.float32)
        idx = np.arange(B, dtype=np.int64) % n
        for name in ("torchscript", "onnx"):
            times = []
            if meta["kind"] == "discrete":
                h = np.zeros((B, meta["hidden"]), np.float32)
                prev = np.full(B, -1, np.int64)
                mask = np.ones((B, meta["n_actions"]), np.float32)
            for k in range(steps):
                t0 = time.perf_counter()
                if meta["kind"] == "discrete" and name == "torchscript":
                    with torch.no_grad():
                        a, ht, _ = ts(torch.from_numpy(obs[k]), torch.from_numpy(idx), torch.from_numpy(prev),
                                      torch.from_numpy(h), torch.from_numpy(mask))
                    a, h = a.numpy(), ht.numpy()
                elif meta["kind"] == "discrete":
                    a, h, _ = sess.run(None, {"obs": obs[k], "agent_index": idx, "prev_action": prev, "hidden": h,
                                              "action_mask": mask})
                elif name == "torchscript":
                    with torch.no_grad():
                        a = ts(torch.from_numpy(obs[k]), torch.from_numpy(idx)).numpy()
                else:
                    a = sess.run(None, {"obs": obs[k], "agent_index": idx})[0]
                times.append(time.perf_counter() - t0)
                if meta["kind"] == "discrete":
                    prev = a.astype(np.int64)
            warm = np.asarray(times[steps // 10:]) * 1e6  # drop the first 10 % (allocator / JIT warm-up)
            results[f"{name}_B{B}"] = {"median_us": float(np.median(warm)), "p90_us": float(np.percentile(warm, 90))}
    return {"n_agents": n, "kind": meta["kind"], "rnn": meta.get("rnn"), "steps": steps, **results}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--policy", help="an exported policy directory (default: train and export a 10-agent one)")
    ap.add_argument("--steps", type=int, default=2000)
    ap.add_argument("--load-repeats", type=int, default=5)
    ap.add_argument("--out", default=str(REPO / "benchmarks/results/export_latency.json"))
    a = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="cfcql-export-bench-"))
    policy = Path(a.policy) if a.policy else make_policy(tmp)
    loads = load_times(policy, a.load_repeats)
    lat = step_latency(policy, a.steps)
    n = lat["n_agents"]
    print(f"exported {lat['kind']} policy ({'GRU' if lat['rnn'] else 'MLP'} agents), {n}-agent team, 1 thread")
    print(f"{'format':<12} {'import (s)':>10} {'load (s)':>9} {'1 agent med/p90 (µs)':>22} "
          f"{f'{n} agents med/p90 (µs)':>24}")
    for name in ("torchscript", "onnx"):
        one, team = lat[f"{name}_B1"], lat[f"{name}_B{n}"]
        print(f"{name:<12} {loads[name]['import_s']:>10.2f} {loads[name]['load_s']:>9.3f} "
              f"{one['median_us']:>11.0f} / {one['p90_us']:<8.0f} {team['median_us']:>12.0f} / {team['p90_us']:<8.0f}")
    record = {"policy": str(policy), "load": loads, "latency": lat, "cpu": os.cpu_count(),
              "date": time.strftime("%Y-%m-%d")}
    Path(a.out).parent.mkdir(parents=True, exist_ok=True)
    Path(a.out).write_text(json.dumps(record, indent=2) + "\n")
    print(f"wrote {a.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
