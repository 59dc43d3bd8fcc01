#!/bin/sh
# The encoder table of docs/encoders.md: five token mixers in the CPU-scale
# Nystromformer encoder (configs/nystromformer/cpu-encoder.yaml), each
# pretrained with masked LM for the same number of steps on the same text,
# then fine-tuned on SST-2 for the same number of steps (cpu-finetune.yaml's
# recipe; an epoch is 2,105 steps), and timed at
# T = 512 and 4,096 (seqlab bench, training steps on random tokens). Results
# go to runs/table-<mixer>-{mlm,sst2} and bench/results/encoders.jsonl; the
# table is printed at the end.
#   scripts/encoder_table.sh                     # every mixer (about 30 minutes on 2 cores)
#   MIXERS="softmax s5" MLM_STEPS=600 FT_STEPS=2105 scripts/encoder_table.sh
#   DATA=path/to/enwik8 scripts/encoder_table.sh # the text (default: the shared 4 MB enwik8 prefix)
set -eu
cd "$(dirname "$0")/.."
MIXERS=${MIXERS:-softmax nystrom linear fmm s5}
MLM_STEPS=${MLM_STEPS:-200} FT_STEPS=${FT_STEPS:-300}
DATA=${DATA:-../shared/data/enwik8/enwik8.first4154399}
SEQLAB_DATA=${SEQLAB_DATA:-../shared/data}
export SEQLAB_DATA

# Each mixer's keys: the encoder's mixer section as flags.
mixer_flags() {
    case $1 in
    softmax) echo "--mixer softmax" ;;
    nystrom) echo "--mixer nystrom --mixer.d_head 64 --mixer.num_landmarks 16 --mixer.conv_kernel_size 9" ;;
    linear) echo "--mixer linear" ;;
    fmm) echo "--mixer fmm --diag_size 20 --sparse_ratio 2.5 --kernels elu,elu_flip" ;;
    s5) echo "--mixer s5 --mixer.bidirectional true --mixer.ssm_size 128 --mixer.blocks 8" ;;
    *) echo "unknown mixer $1" >&2; exit 2 ;;
    esac
}
# The same keys as a bench grid item (name:key=value:..., '+' for a list's commas).
grid_item() {
    case $1 in
    nystrom) echo "nystrom:mixer.d_head=64:mixer.num_landmarks=16:mixer.conv_kernel_size=9" ;;
    fmm) echo "fmm:diag_size=20:sparse_ratio=2.5:kernels=elu+elu_flip" ;;
    s5) echo "s5:mixer.bidirectional=true:mixer.ssm_size=128:mixer.blocks=8" ;;
    *) echo "$1" ;;
    esac
}

mkdir -p runs bench/results
items=""
for m in $MIXERS; do
    flags=$(mixer_flags "$m")
    if [ ! -f "runs/table-$m-mlm/metrics.jsonl" ]; then
        # shellcheck disable=SC2086
        ./seqlab train configs/nystromformer/cpu-encoder.yaml $flags --dataset text --data "$DATA" \
            --max_step "$MLM_STEPS" --eval_interval "$MLM_STEPS" --ckpt_interval "$MLM_STEPS" \
            --out "runs/table-$m-mlm" 2>"runs/table-$m-mlm.log"
    fi
    if [ ! -f "runs/table-$m-sst2/metrics.jsonl" ]; then
        # shellcheck disable=SC2086
        ./seqlab train configs/nystromformer/cpu-finetune.yaml $flags --init_from "runs/table-$m-mlm" --epochs 0 \
            --max_step "$FT_STEPS" --eval_interval "$FT_STEPS" --out "runs/table-$m-sst2" 2>"runs/table-$m-sst2.log"
    fi
    items="$items${items:+,}$(grid_item "$m")"
done
./seqlab bench configs/nystromformer/cpu-encoder.yaml --max_len 4096 --mixers "$items" --lengths 512,4096 --tokens 8192 --steps 3 \
    --gen_tokens 0 >bench/results/encoders.jsonl

# The last value of "key" on the metrics lines matching `pattern`.
last() { grep "$2" "$1" | tail -1 | sed "s/.*\"$3\": \\([^,}]*\\).*/\\1/"; }
echo "| mixer | MLM valid loss ($MLM_STEPS steps) | MLM minutes | SST-2 dev accuracy ($FT_STEPS steps) | tokens/s T=512 | T=4096 | peak GiB T=512 | T=4096 |"
echo "|---|---|---|---|---|---|---|---|"
for m in $MIXERS; do
    mlm=runs/table-$m-mlm/metrics.jsonl
    row=$(python3 - "$m" <<'EOF'
import json, sys
rows = [json.loads(l) for l in open("bench/results/encoders.jsonl")]
def pick(T, key):
    for r in rows:
        if r.get("mixer") == sys.argv[1] and r.get("tgt_len") == T:
            return r.get(key)
    return None
tps = [pick(T, "tok_per_s") for T in (512, 4096)]
mem = [pick(T, "peak_rss_mb") for T in (512, 4096)]
print(" | ".join(["%.0f" % v if v else "-" for v in tps] + ["%.2f" % (v / 1024) if v else "-" for v in mem]))
EOF
)
    printf '| %s | %s | %.1f | %s | %s |\n' "$m" "$(last "$mlm" '"split": "valid"' loss)" \
        "$(echo "$(last "$mlm" '"kind": "train"' elapsed_s) / 60" | bc -l)" \
        "$(last "runs/table-$m-sst2/metrics.jsonl" '"split": "valid"' best_accuracy)" "$row"
done
