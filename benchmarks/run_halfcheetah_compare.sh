#!/usr/bin/env bash
# CFCQL vs MACQL on HalfCheetah 2x3 medium. Data (full-size, not in git):
#   rllib-cfcql data collect --task mamujoco_halfcheetah_2x3 --quality medium --episodes 50 --seed 21 \
#       --reference-episodes 20 --out offline_data/full/mamujoco_halfcheetah_2x3/medium
set -euo pipefail
python benchmarks/compare.py --dataset offline_data/full/mamujoco_halfcheetah_2x3/medium --methods cfcql,macql \
  --seeds 0,1,2 --steps ${STEPS:-1000} --eval-every 500 --eval-episodes 3 --batch 256 --lr 3e-4 --gamma 0.99 \
  --grad-clip 0.5 --hidden 256 --alpha 1.0 --polyak-tau 0.005 --policy-samples \
  --out benchmarks/results/compare_mamujoco_halfcheetah_2x3_medium.json
