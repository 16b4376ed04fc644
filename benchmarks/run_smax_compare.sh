#!/usr/bin/env bash
# SMAX: CFCQL vs MACQL vs BC vs offline QMIX on 2s3z and 5m_vs_6m (medium data), 3 seeds, win rate and
# return -> benchmarks/results/smax/*.json -> `python benchmarks/make_results.py` (RESULTS.md, section SMAX).
# Needs the [smax] extra. Data (1 000 battles per map, not in git; JaxMARL's heuristic with 10 % random moves,
# references scripted: uniform random and the noise-free heuristic):
#   rllib-cfcql data collect --task smax_2s3z --policy eps_expert:0.1 --quality medium --behaviours scripted \
#       --episodes 1000 --reference-episodes 50 --seed 0 --out benchmarks/data/smax_2s3z_medium
#   rllib-cfcql data collect --task smax_5m_vs_6m --policy eps_expert:0.1 --quality medium --behaviours scripted \
#       --episodes 1000 --reference-episodes 50 --seed 0 --out benchmarks/data/smax_5m_vs_6m_medium
# Two single-threaded jobs side by side on a 2-core machine; each JSON is rewritten as every run finishes.
set -euo pipefail
D=benchmarks/data
R=benchmarks/results/smax
run() { python benchmarks/compare.py --seeds 0,1,2 --eval-episodes 32 "$@"; }
P5=(--steps 5000 --eval-every 1000)
# 1. 2s3z, 5 000 steps: the α sweep (CFCQL 0.1 / 1 / 5, MACQL 1 / 5), BC and offline QMIX
( run --dataset $D/smax_2s3z_medium "${P5[@]}" --methods cfcql --alpha 1 --out $R/compare_smax_2s3z_medium_cfcql.json
  run --dataset $D/smax_2s3z_medium "${P5[@]}" --methods cfcql --alpha 0.1 --seeds 0 --out $R/compare_smax_2s3z_medium_cfcql_a0.1.json
  run --dataset $D/smax_2s3z_medium "${P5[@]}" --methods cfcql --alpha 5 --out $R/compare_smax_2s3z_medium_cfcql_a5.json
  run --dataset $D/smax_2s3z_medium "${P5[@]}" --methods macql --alpha 5 --out $R/compare_smax_2s3z_medium_macql_a5.json ) &
( run --dataset $D/smax_2s3z_medium "${P5[@]}" --methods bc,macql,none --alpha 1 --out $R/compare_smax_2s3z_medium_base.json
  # 2. the hard map, 5m_vs_6m, at α = 5
  run --dataset $D/smax_5m_vs_6m_medium "${P5[@]}" --methods cfcql,bc,macql,none --alpha 5 --out $R/compare_smax_5m_vs_6m_medium_a5.json ) &
wait
# 3. 2s3z, 20 000 steps at α = 5: does the lead hold with a longer budget?
P20=(--steps 20000 --eval-every 2500 --alpha 5)
run --dataset $D/smax_2s3z_medium "${P20[@]}" --methods cfcql,bc --out $R/compare_smax_2s3z_medium_20k_cfcql_bc.json &
run --dataset $D/smax_2s3z_medium "${P20[@]}" --methods macql --out $R/compare_smax_2s3z_medium_20k_macql.json &
wait
