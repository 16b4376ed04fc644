#!/usr/bin/env bash
# The full-size dataset families of issue 13, made with the project's own collector from the bundled
# trained behaviour policies: MPE spread / tag / world (continuous) and spread (discrete) and
# MaMuJoCo HalfCheetah 2x3, each × random / medium-replay / medium / expert, >= STEPS transitions
# each (default 100 000; the reference uses 1 000 000). Output under benchmarks/data/families/
# (not in git). An existing family member is kept (delete it to make it again).
#
#   bash benchmarks/make_families.sh            # everything
#   STEPS=20000 bash benchmarks/make_families.sh mpe_spread_continuous
set -euo pipefail
cd "$(dirname "$0")/.."
STEPS=${STEPS:-100000}
ROOT=${ROOT:-benchmarks/data/families}
declare -A TASK=([mpe_spread_continuous]="mpe_spread {\"continuous_actions\": true}"
                 [mpe_tag_continuous]="mpe_tag {\"continuous_actions\": true}"
                 [mpe_world_continuous]="mpe_world {\"continuous_actions\": true}"
                 [mpe_spread_discrete]="mpe_spread {\"continuous_actions\": false}"
                 [mamujoco_halfcheetah_2x3]="mamujoco_halfcheetah_2x3 {}")
families=("$@")
[ ${#families[@]} -eq 0 ] && families=(mpe_spread_continuous mpe_tag_continuous mpe_world_continuous mpe_spread_discrete mamujoco_halfcheetah_2x3)
for fam in "${families[@]}"; do
  read -r task cfg <<<"${TASK[$fam]}"
  for q in random medium-replay medium expert; do
    out="$ROOT/$fam/$q"
    if [ -f "$out/card.json" ]; then echo "keep $out"; continue; fi
    rllib-cfcql data collect --task "$task" --env-config "$cfg" --quality "$q" --behaviours trained \
      --steps "$STEPS" --seed 13 --out "$out" --force --quiet
  done
done
