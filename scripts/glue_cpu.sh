#!/bin/sh
# GLUE fine-tuning of the CPU-scale Nystromformer encoder (docs/encoders.md):
# every task of TASKS from the masked-LM run of configs/nystromformer/cpu-mlm.yaml
# and, beside it, the same model and budget from scratch; the best dev score of
# each run is printed at the end (accuracy, F1 and MCC; Pearson and Spearman
# for STS-B). Runs go to runs/nystrom-cpu-<task>{,-scratch}.
#   seqlab train configs/nystromformer/cpu-mlm.yaml --out runs/nystrom-cpu-mlm   # first (40 minutes)
#   scripts/glue_cpu.sh                          # SST-2 MRPC CoLA STS-B RTE, 3 epochs each, both starts
#   TASKS=SST-2 EPOCHS=1 scripts/glue_cpu.sh     # (an SST-2 epoch is 2,105 steps, about 14 minutes here)
#   TASKS="MRPC RTE" SCRATCH=0 scripts/glue_cpu.sh   # the pretrained encoder only
set -eu
cd "$(dirname "$0")/.."
TASKS=${TASKS:-SST-2 MRPC CoLA STS-B RTE}
EPOCHS=${EPOCHS:-3} SCRATCH=${SCRATCH:-1}
PRETRAINED=${PRETRAINED:-runs/nystrom-cpu-mlm}
SEQLAB_DATA=${SEQLAB_DATA:-../shared/data}
export SEQLAB_DATA

for t in $TASKS; do
    for init in "$PRETRAINED" ""; do
        out=runs/nystrom-cpu-$t
        [ -n "$init" ] || out=$out-scratch
        [ -n "$init" ] || [ "$SCRATCH" = 1 ] || continue
        [ -f "$out/metrics.jsonl" ] && continue
        ./seqlab train configs/nystromformer/cpu-sst2.yaml --task "$t" --init_from "$init" --epochs "$EPOCHS" \
            --out "$out" 2>"$out.log"
    done
done

# The best dev scores of a run: its last valid line's best_* fields.
best() {
    grep '"split": "valid"' "$1/metrics.jsonl" | tail -1 | tr ',' '\n' | grep '"best_' | sed 's/ *"best_\([a-z0-9]*\)": \(.*\)/\1 \2/' |
        awk '{ printf "%s%s %.4f", sep, $1, $2; sep = ", " }'
}
echo "| task | pretrained (best dev) | from scratch (best dev) |"
echo "|---|---|---|"
for t in $TASKS; do
    scratch=-
    [ -f "runs/nystrom-cpu-$t-scratch/metrics.jsonl" ] && scratch=$(best "runs/nystrom-cpu-$t-scratch")
    echo "| $t | $(best "runs/nystrom-cpu-$t") | $scratch |"
done
