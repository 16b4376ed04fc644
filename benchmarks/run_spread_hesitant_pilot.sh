#!/usr/bin/env bash
# Continuous n-scaling: does the continuous variant (a centralised critic Q(s, a_1..a_n), which no mixer
# factorises) show CFCQL's advantage over MACQL's joint penalty as n grows? MPE spread, continuous actions,
# behaviour hesitant:0.3 (per agent and step the scripted expert's steer with p = 0.3, else no force;
# σ = 0.1 action noise, ε = 0.1 random), 1 000 episodes (25 000 transitions) per n, made by
# `rllib-cfcql data collect`. Every method: 4 000 critic steps of 256 transitions, lr 0.01, γ 0.95, grad clip
# 0.5, width 64 (the reference's MPE settings at a quarter of its batch and 40 % of its steps), evaluation
# every 1 000 steps on 32 episodes. One JSON per run, skipped when it exists.
#   stage grid:  seed 0, CFCQL and MACQL at every α of ALPHAS, MATD3+BC and BC;
#   stage seeds: seeds 1 and 2 of every method, CFCQL and MACQL at their best seed-0 final α.
#   NS="3 6 9" bash benchmarks/run_spread_hesitant_pilot.sh grid && NS="3 6 9" bash benchmarks/run_spread_hesitant_pilot.sh seeds
# POLYAK (target-network rate, default the reference's 0.01) and STEPS (default 4 000) change the protocol; a
# non-default value writes to its own results directory (…_tau<POLYAK>, …_steps<STEPS>). METHODS restricts the
# grid stage to some of "cfcql macql matd3bc bc".
set -euo pipefail
NS=${NS:-3 6}
ALPHAS=${ALPHAS:-1 5 0.3 0.1 0.03}
POLYAK=${POLYAK:-0.01}
STEPS=${STEPS:-4000}
METHODS=${METHODS:-cfcql macql matd3bc bc}
D=benchmarks/data/pilot
R=benchmarks/results/mpe_spread_c_hesitant0.3
[ "$POLYAK" = 0.01 ] || R=${R}_tau$POLYAK
[ "$STEPS" = 4000 ] || R=${R}_steps$STEPS
mkdir -p "$R"
run() {  # n method alpha seed
  local ds=$D/mpe_spread_c_n$1_hesitant0.3 out=$R/n$1_$2_a$3_s$4.json
  [ -f "$ds/card.json" ] || rllib-cfcql data collect --task mpe_spread --env-config "{\"n_agents\": $1, \"continuous_actions\": true}" \
      --policy hesitant:0.3 --episodes 1000 --seed 0 --out "$ds"
  [ -f "$out" ] && return 0
  python benchmarks/compare.py --dataset "$ds" --methods "$2" --seeds "$4" --alpha "$3" --steps "$STEPS" --eval-every 1000 \
    --eval-episodes 32 --batch 256 --lr 0.01 --gamma 0.95 --grad-clip 0.5 --hidden 64 --polyak-tau "$POLYAK" --out "$out" | grep "seed $4"
}
best() {  # n method -> the α of the best seed-0 final score
  python - "$R" "$1" "$2" <<'PY'
import json, pathlib, re, sys
r, n, m = pathlib.Path(sys.argv[1]), sys.argv[2], sys.argv[3]
runs = [(json.loads(f.read_text())["rows"][0]["final"], re.search(r"_a([0-9.]+)_s0", f.name).group(1))
        for f in r.glob(f"n{n}_{m}_a*_s0.json")]
print(max(runs)[1])
PY
}
for n in $NS; do
  if [ "${1:-grid}" = grid ]; then
    for a in $ALPHAS; do
      for m in cfcql macql; do [[ " $METHODS " == *" $m "* ]] && run "$n" "$m" "$a" 0; done
    done
    for m in matd3bc bc; do [[ " $METHODS " == *" $m "* ]] && run "$n" "$m" 1 0; done
  else
    for s in 1 2; do
      run "$n" cfcql "$(best "$n" cfcql)" "$s"; run "$n" macql "$(best "$n" macql)" "$s"
      run "$n" matd3bc 1 "$s"; run "$n" bc 1 "$s"
    done
  fi
done
