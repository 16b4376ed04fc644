#!/usr/bin/env bash
# Issue-3 protocol check: CFCQL vs MACQL vs BC on each task's *bundled* medium-replay data
# (both action variants of the MPE tasks, equal_line with 4 agents, and HalfCheetah 2x3), 3 seeds, a
# short fixed budget:
# shows collect -> card -> train -> normalised score (from the card's references) end to end.
#   bash benchmarks/run_protocol_check.sh            # every task
#   TASKS="mpe_tag" bash benchmarks/run_protocol_check.sh
#   FULL_REPLAY=1 TASKS="mpe_spread mpe_tag mpe_world" bash benchmarks/run_protocol_check.sh
# FULL_REPLAY=1 runs the continuous MPE check on the full recorded PPO replay instead
# (offline_data/full/<task>_continuous/medium-replay-ppo, 40 000-260 000 transitions, written by
# rllib-cfcql behaviour train-shared --medium-replay-dir; not in git): the bundled sets hold 500-1000
# transitions, too few for a continuous critic (see benchmarks/RESULTS.md).
set -euo pipefail
STEPS=${STEPS:-300}            # discrete and HalfCheetah
CONT_STEPS=${CONT_STEPS:-1000}  # continuous MPE: its actors need more steps (actor updates every 5th step)
TASKS=${TASKS:-"equal_line_n4 mpe_spread mpe_tag mpe_world mamujoco_halfcheetah_2x3"}
VARIANTS=${VARIANTS:-"continuous discrete"}
EL_STEPS=${EL_STEPS:-3000}     # equal_line: 50-step episodes whose return is the final minimum spacing
for task in $TASKS; do
  if [[ "$task" == equal_line_* ]]; then
    # discrete mixer variant with the Equal_Line tuned examples' settings (alpha 20, gamma 0.99)
    python benchmarks/compare.py --dataset offline_data/${task}_discrete/medium-replay --methods cfcql,macql,bc \
      --seeds 0,1,2 --steps $EL_STEPS --eval-every 1000 --eval-episodes 16 --batch 256 --lr 0.0005 --gamma 0.99 \
      --grad-clip 10 --hidden 64 --alpha 20 --out benchmarks/results/protocol_${task}_discrete_medium-replay.json
    continue
  fi
  if [ "$task" = mamujoco_halfcheetah_2x3 ]; then
    python benchmarks/compare.py --dataset offline_data/mamujoco_halfcheetah_2x3/medium-replay --methods cfcql,macql,bc \
      --seeds 0,1,2 --steps $STEPS --eval-every $STEPS --eval-episodes 1 --batch 256 --lr 3e-4 --gamma 0.99 \
      --grad-clip 0.5 --hidden 256 --alpha 0.4 --polyak-tau 0.005 --policy-samples \
      --out benchmarks/results/protocol_mamujoco_halfcheetah_2x3_medium-replay.json
    continue
  fi
  # continuous: centralised counterfactual critic (MATD3-style actors)
  cont_data=offline_data/${task}_continuous/medium-replay
  cont_out=protocol_${task}_continuous_medium-replay
  if [ "${FULL_REPLAY:-0}" = 1 ]; then
    cont_data=offline_data/full/${task}_continuous/medium-replay-ppo
    cont_out=protocol_full_${task}_continuous_medium-replay-ppo
  fi
  if [[ " $VARIANTS " == *" continuous "* ]] && [ -d "$cont_data" ]; then
    python benchmarks/compare.py --dataset "$cont_data" --methods cfcql,macql,bc \
      --seeds 0,1,2 --steps $CONT_STEPS --eval-every $CONT_STEPS --eval-episodes 16 --batch 256 --lr 0.01 --gamma 0.95 \
      --grad-clip 0.5 --hidden 64 --alpha 1.0 --out benchmarks/results/${cont_out}.json
  fi
  [ "${FULL_REPLAY:-0}" = 1 ] && continue
  # discrete: mixer variant (QMIX mixer, MLP agents on transitions)
  if [[ " $VARIANTS " == *" discrete "* ]] && [ -d offline_data/${task}_discrete ]; then
    python benchmarks/compare.py --dataset offline_data/${task}_discrete/medium-replay --methods cfcql,macql,bc \
      --seeds 0,1,2 --steps $STEPS --eval-every $STEPS --eval-episodes 16 --batch 256 --lr 0.0005 --gamma 0.95 \
      --grad-clip 10 --hidden 64 --alpha 1.0 --out benchmarks/results/protocol_${task}_discrete_medium-replay.json
  fi
done
