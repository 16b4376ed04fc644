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
OUT=${OUT:-benchmarks/results/mpe_table2}
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
# JOB=<variant> / <variant>_b: CFCQL / MACQL with one of the §7.1 variants (label suffix "-<variant>"),
# on PRE_QUALITIES (default medium expert). ps: penalty samples around the current and next-state policy
# as well as the uniform ones (MuJoCo's setting); pre: the actors' pre-tanh output penalised
# (actor_preact_l2 1e-3); warm: pre, and the actors clone the data for the first 2 000 critic steps
# (actor_bc_warmup, CQL's policy_eval_start); ps-pre, ps-warm: both.
PRE="--actor-preact-l2 1e-3" WARM="--actor-bc-warmup 2000 --actor-preact-l2 1e-3"
declare -A VARIANT=([ps]="--policy-samples" [pre]="$PRE" [ps-pre]="--policy-samples $PRE" [warm]="$WARM"
                    [ps-warm]="--policy-samples $WARM")
declare -A JOBS=([ps]=ps [pre]=pre [pspre]=ps-pre [warm]=warm [pswarm]=ps-warm)  # JOB name -> variant
job_variant() {  # job_variant VARIANT METHOD
  local s q
  # shellcheck disable=SC2086  # the flags are words
  for s in $SEEDS; do for q in ${PRE_QUALITIES:-${PS_QUALITIES:-medium expert}}; do run "$q" "$2" "$s" "-$1" ${VARIANT[$1]}; done; done
}
# JOB=ablation: on one quality (ABL_Q, default medium-replay) and seed 0, which of CFCQL's two differences
# from MACQL matters — the penalty or the actor step — and whether a smaller actor lr changes the picture.
ablation() {  # ablation LABEL METHOD [compare.py flags]; LABEL is METHOD-<suffix>
  local label=$1 m=$2; shift 2
  mkdir -p benchmarks/results/mpe_table2_ablation
  OUT=benchmarks/results/mpe_table2_ablation run "${ABL_Q:-medium-replay}" "$m" 0 "-${label#"$m"-}" "$@"  # ABL_Q: the quality
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
  ps|pre|pspre|warm|pswarm) job_variant "${JOBS[$JOB]}" cfcql ;;
  ps_b|pre_b|pspre_b|warm_b|pswarm_b) job_variant "${JOBS[${JOB%_b}]}" macql ;;
  *) job_a > "$DATA/table2_${TASK}_job_a.log" 2>&1 & job_b > "$DATA/table2_${TASK}_job_b.log" 2>&1 & wait ;;
esac
