#!/usr/bin/env bash
# The full-size dataset families of issue 13, made with the project's own collector from the bundled
# trained behaviour policies: MPE spread / tag / world (continuous) and spread (discrete) and
# MaMuJoCo HalfCheetah 2x3, each × random / medium-replay / medium / expert, >= STEPS transitions
# each (default 100 000; the reference uses 1 000 000). Output under benchmarks/data/families/
# (not in git). An existing family member is kept (delete it to make it again).
#
#   bash benchmarks/make_families.sh            # everything
#   STEPS=20000 bash benchmarks/make_families.sh mpe_spread_continuous
#
# NARROW=1 makes the narrow medium and expert members of the continuous MPE families instead (docs/
# DATASETS_DESIGN.md §7.2): the same trained policies acting on their mean plus N(0, NOISE²) noise (default
# 0.1), clipped, rather than sampling their wide PPO Gaussians; under benchmarks/data/families_det/.
#   NARROW=1 bash benchmarks/make_families.sh mpe_spread_continuous
set -euo pipefail
cd "$(dirname "$0")/.."
STEPS=${STEPS:-100000}
NARROW=${NARROW:-0}
NOISE=${NOISE:-0.1}
if [ "$NARROW" = 1 ]; then ROOT=${ROOT:-benchmarks/data/families_det}; else ROOT=${ROOT:-benchmarks/data/families}; fi
declare -A TASK=([mpe_spread_continuous]="mpe_spread {\"continuous_actions\": true}"
                 [mpe_tag_continuous]="mpe_tag {\"continuous_actions\": true}"
                 [mpe_world_continuous]="mpe_world {\"continuous_actions\": true}"
                 [mpe_spread_discrete]="mpe_spread {\"continuous_actions\": false}"
                 [mamujoco_halfcheetah_2x3]="mamujoco_halfcheetah_2x3 {}")
families=("$@")
[ ${#families[@]} -eq 0 ] && families=(mpe_spread_continuous mpe_tag_continuous mpe_world_continuous mpe_spread_discrete mamujoco_halfcheetah_2x3)
for fam in "${families[@]}"; do
  read -r task cfg <<<"${TASK[$fam]}"
  qualities=(random medium-replay medium expert) policy=()
  if [ "$NARROW" = 1 ]; then
    case $fam in mpe_*_continuous) ;; *) echo "NARROW=1: only the continuous MPE families, not $fam" >&2; exit 2 ;; esac
    qualities=(medium expert)
  fi
  for q in "${qualities[@]}"; do
    out="$ROOT/$fam/$q"
    if [ -f "$out/card.json" ]; then echo "keep $out"; continue; fi
    [ "$NARROW" = 1 ] && policy=(--policy "checkpoint:offline_data/policies/$fam/$q.pt@$NOISE")
    rllib-cfcql data collect --task "$task" --env-config "$cfg" --quality "$q" --behaviours trained \
      "${policy[@]}" --steps "$STEPS" --seed 13 --out "$out" --force --quiet
  done
done
