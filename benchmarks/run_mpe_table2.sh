#!/usr/bin/env bash
# The paper's MPE Table 2 shape at the reference's training settings (docs/ALGORITHM.md §3, issue 13):
# continuous MPE, batch 1 024, 10 000 critic steps (the reference's 2 001 rounds of 5), hidden 64, γ 0.95,
# grad clip 0.5, Polyak 0.01, lr 0.01 (spread) / 0.001 (tag, world), α per task × quality from the
# reference's table (the same α for CFCQL and MACQL), greedy evaluation every 1 000 steps on 32 episodes.
# Data: the 100 000-transition families of `benchmarks/make_families.sh` (the reference uses 1 000 000).
#
# One JSON per (task, quality, method, seed) under benchmarks/results/mpe_table2/, written when the run
# ends and skipped when it exists, so a stopped sweep resumes; a run another job is making (its .lock) is
# skipped too, so two single-threaded jobs side by side can walk the same list:
#   bash benchmarks/make_families.sh mpe_spread_continuous
#   TASK=mpe_spread SEEDS="0 1" bash benchmarks/run_mpe_table2.sh
#   python benchmarks/make_results.py
# JOB=a runs only CFCQL, JOB=b only the others (to split the work over two shells by hand).
set -euo pipefail
cd "$(dirname "$0")/.."
TASK=${TASK:-mpe_spread}
SEEDS=${SEEDS:-0 1 2}
QUALITIES=${QUALITIES:-random medium-replay medium expert}
STEPS=${STEPS:-10000}
OUT=benchmarks/results/mpe_table2
DATA=${DATA:-benchmarks/data/families}
declare -A ALPHA=([mpe_spread.random]=0.5 [mpe_spread.medium-replay]=1.0 [mpe_spread.medium]=5.0 [mpe_spread.expert]=2.5
                  [mpe_tag.random]=0.5 [mpe_tag.medium-replay]=0.5 [mpe_tag.medium]=0.6 [mpe_tag.expert]=2.0
                  [mpe_world.random]=0.5 [mpe_world.medium-replay]=0.5 [mpe_world.medium]=0.32 [mpe_world.expert]=0.3)
declare -A LR=([mpe_spread]=0.01 [mpe_tag]=0.001 [mpe_world]=0.001)
mkdir -p "$OUT"

run() {  # run QUALITY METHOD SEED [LABEL-SUFFIX compare.py flags]
  local q=$1 m=$2 s=$3 suffix=${4:-}; shift 3; [ $# -gt 0 ] && shift
  local f="$OUT/${TASK}_${q}_${m}${suffix}_s${s}.json"
  [ -f "$f" ] && { echo "keep $f"; return; }
  # a run another job has started is left to it (a killed job leaves its .lock: delete it to run again)
  ( set -o noclobber; echo $$ > "$f.lock" ) 2>/dev/null || { echo "busy $f"; return; }
  python benchmarks/compare.py --dataset "$DATA/${TASK}_continuous/$q" --methods "$m" --seeds "$s" \
    --steps "$STEPS" --eval-every 1000 --eval-episodes 32 --batch 1024 --lr "${LR[$TASK]}" --gamma 0.95 \
    --grad-clip 0.5 --hidden 64 --polyak-tau 0.01 --alpha "${ALPHA[$TASK.$q]}" "$@" --out "$f.part" \
    && mv "$f.part" "$f"
  rm -f "$f.lock"
}

job_a() { for q in $QUALITIES; do for s in $SEEDS; do run "$q" cfcql "$s"; done; done; }
job_b() {
  for q in $QUALITIES; do
    for s in $SEEDS; do run "$q" macql "$s"; done
    for m in matd3bc bc; do for s in $SEEDS; do run "$q" $m "$s"; done; done
  done
}
# JOB=ps / ps_b: CFCQL / MACQL with penalty samples around the current and next-state policy as well as
# the uniform ones (MuJoCo's setting; label suffix "-ps"), on PS_QUALITIES (default medium expert).
job_ps() { for s in $SEEDS; do for q in ${PS_QUALITIES:-medium expert}; do run "$q" "$1" "$s" -ps --policy-samples; done; done; }
# JOB=pre / pre_b: CFCQL / MACQL with the actors' pre-tanh output penalised (actor_preact_l2 1e-3; label
# "-pre"), on PRE_QUALITIES (default medium expert): a saturated tanh keeps a gradient.
job_pre() { for s in $SEEDS; do for q in ${PRE_QUALITIES:-medium expert}; do run "$q" "$1" "$s" -pre --actor-preact-l2 1e-3; done; done; }
# JOB=pspre / pspre_b: both of the above at once (label "-ps-pre").
job_pspre() { for s in $SEEDS; do for q in ${PRE_QUALITIES:-medium expert}; do
  run "$q" "$1" "$s" -ps-pre --policy-samples --actor-preact-l2 1e-3; done; done; }
# JOB=warm / warm_b: the actors clone the data for the first 2 000 critic steps (actor_bc_warmup, CQL's
# policy_eval_start) and keep the pre-tanh penalty (label "-warm").
job_warm() { for s in $SEEDS; do for q in ${PRE_QUALITIES:-medium expert}; do
  run "$q" "$1" "$s" -warm --actor-bc-warmup 2000 --actor-preact-l2 1e-3; done; done; }
# JOB=pswarm / pswarm_b: -warm with the policy samples as well (label "-ps-warm").
job_pswarm() { for s in $SEEDS; do for q in ${PRE_QUALITIES:-medium expert}; do
  run "$q" "$1" "$s" -ps-warm --policy-samples --actor-bc-warmup 2000 --actor-preact-l2 1e-3; done; done; }
# JOB=ablation: on one quality (ABL_Q, default medium-replay) and seed 0, which of CFCQL's two differences
# from MACQL matters — the penalty or the actor step — and whether a smaller actor lr changes the picture.
ablation() {  # ablation LABEL METHOD [compare.py flags]
  local label=$1 m=$2 q=${ABL_Q:-medium-replay}; shift 2  # ABL_Q: the quality
  local f="benchmarks/results/mpe_table2_ablation/${TASK}_${q}_${label}_s0.json"
  [ -f "$f" ] && { echo "keep $f"; return; }
  mkdir -p "$(dirname "$f")"
  python benchmarks/compare.py --dataset "$DATA/${TASK}_continuous/$q" --methods "$m" --seeds 0 \
    --steps "$STEPS" --eval-every 1000 --eval-episodes 32 --batch 1024 --lr "${LR[$TASK]}" --gamma 0.95 \
    --grad-clip 0.5 --hidden 64 --polyak-tau 0.01 --alpha "${ALPHA[$TASK.$q]}" "$@" --out "$f.part" && mv "$f.part" "$f"
}
job_ablation() {
  ablation macql-cf-actor macql --actor-objective counterfactual
  ablation macql-actor-lr0.001 macql --actor-lr 0.001
  ablation cfcql-joint-actor cfcql --actor-objective joint
  ablation cfcql-actor-lr0.001 cfcql --actor-lr 0.001
  ABL_Q=medium ablation macql-policy-samples macql --policy-samples  # penalty samples at π (MuJoCo's setting)
}
case "${JOB:-both}" in
  a) job_a ;;
  b) job_b ;;
  ablation) job_ablation ;;
  ps) job_ps cfcql ;;
  ps_b) job_ps macql ;;
  pre) job_pre cfcql ;;
  pre_b) job_pre macql ;;
  pspre) job_pspre cfcql ;;
  pspre_b) job_pspre macql ;;
  warm) job_warm cfcql ;;
  warm_b) job_warm macql ;;
  pswarm) job_pswarm cfcql ;;
  pswarm_b) job_pswarm macql ;;
  *) job_a > "$DATA/table2_${TASK}_job_a.log" 2>&1 & job_b > "$DATA/table2_${TASK}_job_b.log" 2>&1 & wait ;;
esac
