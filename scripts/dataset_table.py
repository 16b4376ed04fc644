"""Print the task × quality table of datasets from their cards (markdown).

    python scripts/dataset_table.py offline_data [offline_data/full] [--json-sizes]
    python scripts/dataset_table.py --policies offline_data/policies


One row per dataset directory (a directory holding card.json): transitions,
episodes, return mean ± std, normalised score of the data, the random and
expert reference returns, collection time, and the size on disk; with
``--json-sizes`` the same data is also written as JSON lines to a temporary
directory to report the Parquet vs JSON size side by side.

With ``--policies`` it prints the trained behaviour policies instead (one row per
``<task>_<variant>`` directory written by ``rllib-cfcql behaviour train-shared``): PPO env
steps and wall time, the sampled evaluation returns of random / medium / expert and the
expert's deterministic one, next to the task's scripted expert (same reference seeds).
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path


def dir_size(d: Path) -> int:
    return sum(p.stat().st_size for p in d.iterdir() if p.name.startswith("data-"))


def json_size(d: Path) -> int:
    from rllib_cfcql.data.validate import validate_dataset
    from rllib_cfcql.data.writer import write_dataset

    _, ep = validate_dataset(d, check_hash=False)
    with tempfile.TemporaryDirectory() as tmp:
        files = write_dataset(Path(tmp) / "j", ep, fmt="json")
        return sum(f.stat().st_size for f in files)


def policy_table(root: Path, episodes: int = 100) -> None:
    from rllib_cfcql.data.collect import rollout
    from rllib_cfcql.envs import make_team_env

    print("| policies | PPO env steps (medium / expert) | wall s (expert) | random | medium (sampled) | "
          "expert (sampled) | expert (deterministic) | scripted expert |")
    print("|---|---|---|---|---|---|---|---|")
    for d in sorted(p.parent for p in root.glob("*/replay.json")):
        med = json.loads((d / "medium.json").read_text())
        exp = json.loads((d / "expert.json").read_text())
        if "eval_return_sampled" not in exp:  # HalfCheetah's centralised policies: no sampled evaluation
            continue
        env = make_team_env(exp["task"], exp["env_config"])
        scripted = float(rollout(env, "expert", episodes, seed=10_000_019).returns().mean())
        print(f"| `{d}` | {med['env_steps']} / {exp['env_steps']} | {exp['wall_seconds']:.0f} | "
              f"{exp['random_return']:.2f} | {med['eval_return_sampled']:.2f} | {exp['eval_return_sampled']:.2f} | "
              f"{exp['eval_return']:.2f} | {scripted:.2f} |", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("roots", nargs="+")
    ap.add_argument("--json-sizes", action="store_true")
    ap.add_argument("--policies", action="store_true", help="the roots hold trained policies: print their table")
    a = ap.parse_args()
    if a.policies:
        for root in a.roots:
            policy_table(Path(root))
        return
    # a root's full/ sub-folder (offline_data/full: not in git) is listed only when named as a root itself
    cards = sorted(p for root in a.roots for p in Path(root).rglob("card.json")
                   if Path(root).name == "full" or "full" not in p.relative_to(root).parts[:1])
    head = "| dataset | task | quality | behaviour | transitions | episodes | return mean ± std | normalised | R_random / R_expert | collect s | Parquet MB |"
    sep = "|---|---|---|---|---|---|---|---|---|---|---|"
    if a.json_sizes:
        head += " JSON MB |"
        sep += "---|"
    print(head)
    print(sep)
    for c in cards:
        card = json.loads(c.read_text())
        d = c.parent
        refs = card["reference_returns"]
        r = card["return"]
        norm = 100 * (r["mean"] - refs["random"]) / (refs["expert"] - refs["random"])
        variant = "continuous" if card["spec"].get("continuous") else "discrete"
        row = (f"| `{d}` | {card['task']} ({variant}) | {card['quality']} | `{card['behaviour_policy']}` | "
               f"{card['transitions']} | {card['episodes']} | {r['mean']:.2f} ± {r['std']:.2f} | {norm:.1f} | "
               f"{refs['random']:.2f} / {refs['expert']:.2f} | {card.get('collection_seconds', float('nan')):.1f} | "
               f"{dir_size(d) / 1e6:.2f} |")
        if a.json_sizes:
            row += f" {json_size(d) / 1e6:.2f} |"
        print(row, flush=True)


if __name__ == "__main__":
    main()
