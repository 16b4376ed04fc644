"""Regenerate the small datasets bundled in offline_data/ (fixed seeds).

    python scripts/make_bundled_datasets.py [--only NAME] [--force]

Each dataset is made by `rllib-cfcql data collect` logic (rllib_cfcql.data.writer.collect)
and carries a card.json. The behaviour is `medium_expert:0.3`: in every episode each
agent is independently the scripted expert (p = 0.3) or the scripted medium policy,
with ε = 0.1 random moves. Behaviour cloning lands near medium; the all-expert joint
behaviour is rare (0.3^n of episodes): the regime where conservatism matters and
joint-action conservatism (MACQL) over-penalises as n grows.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from rllib_cfcql.data.writer import collect

ROOT = Path(__file__).resolve().parents[1] / "offline_data"

BUNDLED = {
    "equal_line_n4": dict(task="equal_line", env_config={"n_agents": 4}, episodes=600, seed=1),
    "equal_line_n10": dict(task="equal_line", env_config={"n_agents": 10}, episodes=600, seed=2),
    "mpe_spread": dict(task="mpe_spread", env_config={}, episodes=300, seed=3),
}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--only", choices=sorted(BUNDLED))
    ap.add_argument("--force", action="store_true")
    args = ap.parse_args()
    for name, spec in BUNDLED.items():
        if args.only and name != args.only:
            continue
        card = collect(
            **spec, policy="medium_expert:0.3", quality="medium-expert-mix", out_dir=ROOT / name,
            fmt="parquet", force=args.force, progress=True,
        )
        print(name, json.dumps({k: card[k] for k in ("transitions", "episodes", "return", "reference_returns")}))


if __name__ == "__main__":
    main()
