"""How wide is a continuous dataset's behaviour? (docs/DATASETS_DESIGN.md §7.2)

For each dataset (a directory written by ``rllib-cfcql data collect``) and the trained Gaussian
policy that made it, prints and stores:

- the share of logged action components on the box's boundary (|a| >= 0.99) and the mean |a|;
- the policy's own mean and standard deviation on the logged observations (percentiles);
- how often a logged component has the sign of the policy's mean there (1.0: the data follows the
  policy's intent; 0.5: the sign is noise).

    python benchmarks/behaviour_width.py \\
        benchmarks/data/families/mpe_spread_continuous/medium=offline_data/policies/mpe_spread_continuous/medium.pt \\
        benchmarks/data/families/mpe_spread_continuous/expert=offline_data/policies/mpe_spread_continuous/expert.pt \\
        --out benchmarks/results/behaviour_width_mpe_spread.json
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np


def width(dataset: Path, policy_path: Path, steps: int) -> dict:
    import pyarrow.parquet as pq
    import torch

    from rllib_cfcql.behaviour_policies.checkpoint import CheckpointPolicy

    files = sorted(dataset.glob("*.parquet"))
    if not files:
        raise SystemExit(f"{dataset}: no .parquet files (expected a directory written by `rllib-cfcql data collect`)")
    card = json.loads((dataset / "card.json").read_text())
    n = int(card["spec"]["n_agents"])
    t = pq.read_table(files[0], columns=["obs", "actions"]).slice(0, steps)
    obs = np.asarray(t.column("obs").to_pylist(), np.float32).reshape(len(t), n, -1)
    act = np.asarray(t.column("actions").to_pylist(), np.float32).reshape(len(t), n, -1)
    pol = CheckpointPolicy(policy_path)
    if pol.dist == "categorical" or pol.input == "state":
        raise SystemExit(f"{policy_path}: expected a per-agent Gaussian policy (continuous actions, local observations)")
    d = act.shape[-1]
    x = np.concatenate([pol.agent_inputs(o) for o in obs])  # [T·n, input]: one forward pass for every step
    with torch.no_grad():
        out = pol.dist_inputs(torch.from_numpy(x)).numpy().reshape(len(obs), n, -1)
    mean, std = out[..., :d], np.exp(out[..., d:])
    pct = lambda x: dict(zip(("p10", "p50", "p90"), np.percentile(x, [10, 50, 90]).round(3).tolist()))  # noqa: E731
    return {
        "dataset": str(dataset), "policy": str(policy_path), "behaviour": card.get("behaviour_policy"),
        "transitions": int(len(t)), "return": card["return"]["mean"],
        "boundary_share": float((np.abs(act) >= 0.99).mean()), "mean_abs_action": float(np.abs(act).mean()),
        "policy_abs_mean": pct(np.abs(mean)), "policy_std": pct(std),
        "sign_agreement": float((np.sign(act) == np.sign(mean)).mean()),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("pairs", nargs="+", metavar="DATASET=POLICY.pt")
    ap.add_argument("--steps", type=int, default=4000, help="logged steps read from each dataset's first file")
    ap.add_argument("--out", default=None, help="JSON file for the figures")
    a = ap.parse_args()
    rows = []
    for pair in a.pairs:
        if "=" not in pair:
            raise SystemExit(f"{pair!r}: expected DATASET=POLICY.pt")
        ds, pol = pair.split("=", 1)
        r = width(Path(ds), Path(pol), a.steps)
        rows.append(r)
        print(f"{ds}: return {r['return']:.3f}, boundary {r['boundary_share']:.3f}, mean |a| {r['mean_abs_action']:.3f}, "
              f"policy |mean| {r['policy_abs_mean']}, std {r['policy_std']}, sign agreement {r['sign_agreement']:.3f}")
    if a.out:
        Path(a.out).parent.mkdir(parents=True, exist_ok=True)
        Path(a.out).write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
