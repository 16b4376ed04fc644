#!/usr/bin/env bash
# Pilot: does the continuous variant (a centralised critic Q(s, a_1..a_n), which no mixer factorises) show
# CFCQL's advantage over MACQL's joint penalty as n grows? MPE spread, continuous actions, behaviour
# hesitant:0.3 (per agent and step the scripted expert's steer with p = 0.3, else no force; σ = 0.1 action
# noise, ε = 0.1 random), 1 000 episodes (25 000 transitions) per n, made by `rllib-cfcql data collect`.
# Every method: 4 000 critic steps of 256 transitions, lr 0.01, γ 0.95, grad clip 0.5, width 64 (the
# reference's MPE settings, at a quarter of its batch and 40 % of its steps), evaluation every 1 000 steps on
# 32 episodes, seed 0; CFCQL and MACQL at α 1 and 5. One JSON per run, skipped when it exists.
#   bash benchmarks/run_spread_hesitant_pilot.sh        (NS="3 6" by default)
set -euo pipefail
NS=${NS:-3 6}
D=benchmarks/data/pilot
R=benchmarks/results/mpe_spread_c_hesitant0.3
mkdir -p "$R"
for n in $NS; do
  ds=$D/mpe_spread_c_n${n}_hesitant0.3
  [ -f "$ds/card.json" ] || rllib-cfcql data collect --task mpe_spread --env-config "{\"n_agents\": $n, \"continuous_actions\": true}" \
      --policy hesitant:0.3 --episodes 1000 --seed 0 --out "$ds"
  for ma in cfcql:1 macql:1 cfcql:5 macql:5 matd3bc:1 bc:1; do
    m=${ma%:*}; a=${ma#*:}
    out=$R/n${n}_${m}_a${a}_s0.json
    [ -f "$out" ] && continue
    python benchmarks/compare.py --dataset "$ds" --methods "$m" --seeds 0 --alpha "$a" --steps 4000 --eval-every 1000 \
      --eval-episodes 32 --batch 256 --lr 0.01 --gamma 0.95 --grad-clip 0.5 --hidden 64 --out "$out" | grep "seed 0"
  done
done
