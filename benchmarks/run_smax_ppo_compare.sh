#!/usr/bin/env bash
# SMAX with the project's PPO behaviour policies (docs/SMAX.md, "Behaviour policies trained with PPO"):
# the four qualities of a map, then CFCQL vs MACQL vs BC vs offline QMIX on each, 3 seeds, win rate and
# return -> benchmarks/results/smax/*.json -> `python benchmarks/make_results.py` (RESULTS.md, section SMAX).
# Needs the [smax] extra and the map's committed policies (offline_data/policies/smax_<map>_discrete).
#   MAP=2s3z QUALITIES="medium-replay mixed" bash benchmarks/run_smax_ppo_compare.sh
# Data: 1 000 battles per quality (the full-size 5 000 is the same command with --episodes 5000), not in git.
# Run two of these side by side on a 2-core machine (one MAP / QUALITIES each); every JSON is rewritten as
# each run finishes, so a stopped run loses only the run in progress.
set -euo pipefail
MAP=${MAP:-2s3z}
QUALITIES=${QUALITIES:-"medium-replay mixed medium expert"}
ALPHA=${ALPHA:-5}
EPISODES=${EPISODES:-1000}
D=benchmarks/data
R=benchmarks/results/smax
declare -A SEED=([medium-replay]=21 [mixed]=22 [medium]=23 [expert]=24)  # one data seed per quality
for q in $QUALITIES; do
  data=$D/smax_${MAP}_${q}_ppo
  seed=${SEED[$q]}
  [ -f "$data/card.json" ] || rllib-cfcql data collect --task "smax_$MAP" --quality "$q" --episodes "$EPISODES" \
      --reference-episodes 50 --seed "$seed" --out "$data"
  python benchmarks/compare.py --dataset "$data" --methods cfcql,macql,bc,none --alpha "$ALPHA" --seeds 0,1,2 \
      --steps 5000 --eval-every 1000 --eval-episodes 32 --out "$R/compare_smax_${MAP}_${q}_ppo_a${ALPHA}.json"
done
