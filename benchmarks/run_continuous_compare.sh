#!/usr/bin/env bash
# CFCQL vs MACQL vs ICQL vs OMAR vs MATD3+BC on the four mpe_spread continuous qualities
# (datasets made with `rllib-cfcql data collect --quality Q --episodes 1000 --seed 11`, see offline_data/README.md).
# Usage: bash benchmarks/run_continuous_compare.sh "random medium-replay" ; bash ... "medium expert"
set -euo pipefail
declare -A ALPHA=([random]=0.5 [medium-replay]=1.0 [medium]=5.0 [expert]=2.5)  # reference α per quality
for q in $1; do
  python benchmarks/compare.py --dataset offline_data/full/mpe_spread_continuous/$q \
    --methods cfcql,macql,icql,omar,matd3bc --seeds 0,1,2 --steps ${STEPS:-2000} --eval-every 500 \
    --eval-episodes 32 --batch 256 --lr 0.01 --gamma 0.95 --grad-clip 0.5 --hidden 64 --alpha ${ALPHA[$q]} \
    --out benchmarks/results/compare_mpe_spread_continuous_${q}.json
done
