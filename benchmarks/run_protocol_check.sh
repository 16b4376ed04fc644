#!/usr/bin/env bash
# Issue-3 protocol check: CFCQL vs MACQL vs BC on each task's *bundled* medium-replay data
# (continuous variants), 3 seeds, a short fixed budget: shows collect -> card -> train -> normalised score end to end.
set -euo pipefail
STEPS=${STEPS:-300}
for task in mpe_spread mpe_tag mpe_world; do
  python benchmarks/compare.py --dataset offline_data/${task}_continuous/medium-replay --methods cfcql,macql,bc \
    --seeds 0,1,2 --steps $STEPS --eval-every $STEPS --eval-episodes 16 --batch 256 --lr 0.001 --gamma 0.95 \
    --grad-clip 0.5 --hidden 64 --alpha 1.0 --out benchmarks/results/protocol_${task}_continuous_medium-replay.json
done

python benchmarks/compare.py --dataset offline_data/mamujoco_halfcheetah_2x3/medium-replay --methods cfcql,macql,bc \
  --seeds 0,1,2 --steps $STEPS --eval-every $STEPS --eval-episodes 1 --batch 256 --lr 3e-4 --gamma 0.99 \
  --grad-clip 0.5 --hidden 256 --alpha 0.4 --polyak-tau 0.005 --policy-samples \
  --out benchmarks/results/protocol_mamujoco_halfcheetah_2x3_medium-replay.json
