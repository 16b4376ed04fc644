#!/usr/bin/env bash
# Equal_Line n-scaling on the decomposable family (docs/DATASETS_DESIGN.md §5): reward slot_distance,
# behaviour hesitant:0.3 (per agent and step the expert move with p = 0.3, else hold; ε = 0.1),
# 1 000 episodes per n, made by the driver on first use. Every method: 4 000 steps of 256 transitions,
# QMIX mixer, hard target copies every T = 200 steps (T=25 is the library default; with it CFCQL and
# MACQL diverge in about half the runs at n ≥ 8, results/equal_line_slot_distance_t25_*), greedy
# evaluation every 1 000 steps on 32 episodes.
#   stage 1: the α sweep on seed 0 (CFCQL α 1 / 2 / 5, MACQL α 0.05 / 0.2 / 1 / 5), BC and offline QMIX;
#   stage 2: seeds 1 and 2 for every (n, method) at its best seed-0 final α (make_results.chosen_alpha);
#   stage 3: the grid's edges and the ends of n: MACQL α 0.02 (and 0.01 at n = 8, 16), CFCQL α 0.5 / 0.2,
#            offline QMIX at n = 12 / 16, and n = 2 / 20 (BC, offline QMIX, CFCQL α 0.5 / 1 / 2, MACQL
#            α 0.02 / 0.05 / 0.2 at n = 2 and α 0.05 at n = 20); then stage 2 again with NS="2 4 8 12 16 20".
# Two single-threaded jobs side by side; every run's JSON is written as it finishes and skipped on rerun.
#   bash benchmarks/run_slot_distance_sweep.sh 1 && bash benchmarks/run_slot_distance_sweep.sh 2
#   python benchmarks/make_results.py
set -euo pipefail
NS=${NS:-4 8 12 16}
T=${T:-200}
R=benchmarks/results/equal_line_slot_distance$([ "$T" = 200 ] || echo "_t$T")
run() { python benchmarks/equal_line_scaling.py --reward slot_distance --policy hesitant:0.3 \
          --steps 4000 --eval-every 1000 --eval-episodes 32 --target-update "$T" "$@"; }
csv() { echo "$*" | tr ' ' ','; }
stage=${1:-1}
if [ "$stage" = 1 ]; then
  run --seeds 0 --n "$(csv $NS)" --methods bc --out-dir ${R}_a1  # makes the datasets first
  ( for a in 0.05 0.2 5; do run --seeds 0 --n "$(csv $NS)" --methods macql --alpha $a --out-dir ${R}_a$a; done ) &
  ( for a in 1 2 5; do run --seeds 0 --n "$(csv $NS)" --methods cfcql --alpha $a --out-dir ${R}_a$a; done
    run --seeds 0 --n "$(csv $NS)" --methods macql --alpha 1 --out-dir ${R}_a1
    run --seeds 0 --n "$(csv $NS)" --methods none --out-dir ${R}_a1 ) &
  wait
elif [ "$stage" = 3 ]; then
  ( run --seeds 0 --n 4,8,12,16 --methods macql --alpha 0.02 --out-dir ${R}_a0.02
    run --seeds 0 --n 20 --methods macql --alpha 0.05 --out-dir ${R}_a0.05  # n = 20's data is there by now
    run --seeds 0 --n 8,16 --methods macql --alpha 0.01 --out-dir ${R}_a0.01 ) &
  ( run --seeds 0 --n 2,20 --methods bc --out-dir ${R}_a1  # makes the two new datasets first
    for a in 0.5 0.2; do run --seeds 0 --n 4,8,12,16 --methods cfcql --alpha $a --out-dir ${R}_a$a; done
    run --seeds 0 --n 2,12,16,20 --methods none --none-max-n 20 --out-dir ${R}_a1
    for a in 0.5 1 2; do run --seeds 0 --n 2,20 --methods cfcql --alpha $a --out-dir ${R}_a$a; done
    for a in 0.02 0.05 0.2; do run --seeds 0 --n 2 --methods macql --alpha $a --out-dir ${R}_a$a; done ) &
  wait
else
  best() {  # best seed-0 α of (n, method)
    PYTHONPATH=benchmarks python -c "import make_results as m
print(format(m.chosen_alpha(m._scaling_runs('$(basename $R)'))[($1, '$2')], 'g'))"; }
  ( for n in $NS; do a=$(best $n macql); run --seeds 1,2 --n $n --methods macql --alpha $a --out-dir ${R}_a$a; done ) &
  ( for n in $NS; do a=$(best $n cfcql); run --seeds 1,2 --n $n --methods cfcql --alpha $a --out-dir ${R}_a$a; done
    run --seeds 1,2 --n "$(csv $NS)" --methods bc,none --none-max-n 20 --out-dir ${R}_a1 ) &
  wait
fi
