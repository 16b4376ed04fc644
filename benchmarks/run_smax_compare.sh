#!/usr/bin/env bash
# SMAX 2s3z medium: CFCQL vs MACQL vs BC vs offline QMIX, 3 seeds, win rate and return.
# Needs the [smax] extra. Data (1 000 episodes, ~30 MB, not in git; JaxMARL's heuristic with 10 % random moves):
#   rllib-cfcql data collect --task smax_2s3z --policy eps_expert:0.1 --quality medium --episodes 1000 \
#       --reference-episodes 50 --seed 0 --out benchmarks/data/smax_2s3z_medium
# Two single-threaded jobs side by side on a 2-core machine; each writes its JSON as every run finishes.
set -euo pipefail
DATA=${DATA:-benchmarks/data/smax_2s3z_medium}
ARGS=(--dataset "$DATA" --seeds 0,1,2 --steps ${STEPS:-5000} --eval-every 1000 --eval-episodes 32 --alpha ${ALPHA:-1})
python benchmarks/compare.py "${ARGS[@]}" --methods cfcql --out benchmarks/results/smax/compare_smax_2s3z_medium_cfcql.json &
python benchmarks/compare.py "${ARGS[@]}" --methods bc,macql,none --out benchmarks/results/smax/compare_smax_2s3z_medium_base.json &
wait
