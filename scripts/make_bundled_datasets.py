"""Regenerate the small datasets bundled in offline_data/ (fixed seeds).

    python scripts/make_bundled_datasets.py [--only NAME] [--force]

Two groups. The original three (below) and the quality *families*:
``offline_data/<task>_<variant>/<quality>`` for every MPE task × action variant ×
quality (random, medium-replay, medium, expert, mixed; behaviour from
rllib_cfcql.behaviour_policies.qualities) and MaMuJoCo HalfCheetah 2x3 (behaviour from the
committed trained policies). Small on purpose (tutorials and tests); the
full-size ones come from `rllib-cfcql data collect --quality Q --steps N`
(offline_data/README.md).

Each dataset is made by `rllib-cfcql data collect` logic (rllib_cfcql.data.collect.collect)
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

from rllib_cfcql.data.collect import collect

ROOT = Path(__file__).resolve().parents[1] / "offline_data"

BUNDLED = {
    "equal_line_n4": dict(task="equal_line", env_config={"n_agents": 4}, episodes=600, seed=1),
    "equal_line_n10": dict(task="equal_line", env_config={"n_agents": 10}, episodes=600, seed=2),
    "mpe_spread": dict(task="mpe_spread", env_config={}, episodes=300, seed=3),
}


QUALITIES = ("random", "medium-replay", "medium", "expert", "mixed")
FAMILIES: dict[str, dict] = {}
# episodes per dataset (continuous, discrete): mpe_world's state is 3x wider, so fewer episodes
for _k, (_task, _episodes) in enumerate((("mpe_spread", (40, 30)), ("mpe_tag", (40, 30)), ("mpe_world", (20, 15)))):
    for _variant, _cont in (("continuous", True), ("discrete", False)):
        for _j, _q in enumerate(QUALITIES):
            FAMILIES[f"{_task}_{_variant}/{_q}"] = dict(
                task=_task, env_config={"continuous_actions": _cont}, episodes=_episodes[0 if _cont else 1],
                seed=100 + 10 * _k + _j + (5 if _cont else 0), quality=_q)
for _j, _q in enumerate(QUALITIES):  # equal_line at n = 4, behaviour from policies/equal_line_n4_discrete
    FAMILIES[f"equal_line_n4_discrete/{_q}"] = dict(task="equal_line", env_config={"n_agents": 4}, episodes=40,
                                                    seed=300 + _j, quality=_q)
for _j, _q in enumerate(QUALITIES):
    FAMILIES[f"mamujoco_halfcheetah_2x3/{_q}"] = dict(task="mamujoco_halfcheetah_2x3", env_config={}, episodes=2,
                                                      seed=200 + _j, quality=_q)
# SMAX maps (need the [smax] extra). 2s3z: the four qualities of the project's PPO behaviour policies
# (offline_data/policies/smax_2s3z_discrete; full size: benchmarks/run_smax_ppo_compare.sh). The harder maps:
# JaxMARL's heuristic with 10 % random moves (it wins none of their battles), references scripted
# (the noise-free heuristic); the full-size comparison data: benchmarks/run_smax_compare.sh
for _j, _q in enumerate(("medium", "expert", "mixed", "medium-replay")):
    FAMILIES[f"smax_2s3z/{_q}"] = dict(task="smax_2s3z", env_config={}, episodes=40, seed=410 + _j, quality=_q)
FAMILIES["smax_5m_vs_6m/medium"] = dict(task="smax_5m_vs_6m", env_config={}, episodes=300, seed=402, quality="medium",
                                        policy="eps_expert:0.1", source="scripted")
FAMILIES["smax_3s_vs_5z/medium"] = dict(task="smax_3s_vs_5z", env_config={}, episodes=60, seed=403, quality="medium",
                                        policy="eps_expert:0.1", source="scripted")
FAMILIES["smax_6h_vs_8z/medium"] = dict(task="smax_6h_vs_8z", env_config={}, episodes=60, seed=404, quality="medium",
                                        policy="eps_expert:0.1", source="scripted")
# Equal_Line's decomposable family at n = 8 (docs/DATASETS_DESIGN.md §5): per agent and step the expert's
# move with p = 0.3, else hold; the full-size family (1 000 episodes per n): benchmarks/run_slot_distance_sweep.sh
FAMILIES["equal_line_slot_distance_n8/hesitant"] = dict(
    task="equal_line", env_config={"n_agents": 8, "reward": "slot_distance"}, episodes=300, seed=500,
    quality="hesitant", policy="hesitant:0.3", source="scripted")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--only", help="one name, or a prefix such as mpe_tag_continuous/")
    ap.add_argument("--families", action="store_true", help="only the quality families")
    ap.add_argument("--force", action="store_true")
    args = ap.parse_args()
    for name, spec in FAMILIES.items():
        if args.only and not name.startswith(args.only):
            continue
        if (ROOT / name / "card.json").exists() and not args.force:
            continue
        card = collect(**spec, out_dir=ROOT / name, fmt="parquet", force=args.force, progress=False,
                       reference_episodes=100)
        print(name, json.dumps({k: card[k] for k in ("transitions", "episodes", "return", "reference_returns",
                                                     "collection_seconds")}), flush=True)
    if args.families:
        return
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
