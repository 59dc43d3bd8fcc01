#!/bin/sh
# The benchmarks of docs/benchmarks.md, seqlab and PyTorch (Debian's
# python3-torch, bench/torch/*.py) side by side in one run. Raw results go to
# bench/results/*.jsonl (one JSON object per run), the report to
# docs/benchmarks.md (bench/report.py).
#   bench/compare.sh            # every part (hours on 2 cores)
#   bench/compare.sh gemm       # GEMM libraries on seqlab's products (OpenBLAS, BLIS, oneDNN)
#   bench/compare.sh lm         # softmax LM, T = 256: seqlab fp32 and bf16, PyTorch
#   bench/compare.sh gen        # one-token generation at batch 1, fp32 and bf16 weights: seqlab vs PyTorch's KV-cache loop
#   bench/compare.sh scaling    # seqlab, every mixer, T = 256 .. 64K at 65,536 tokens per step
#   bench/compare.sh mixers     # every mixer next to PyTorch, T = 256 .. 16K at 16,384 tokens per step
#   bench/compare.sh moe        # mixture of experts: its GEMMs against the sgemm peak, 16 experts top 2 vs dense
#   bench/compare.sh span       # adaptive-span attention: tokens/s against the spans (trimming)
#   RUNS=5 THREADS=2 bench/compare.sh lm
# gemm and lm run twice: with OPENBLAS_CORETYPE as the environment has it and
# with the other setting (Haswell when it is unset, unset when it is set), since
# machines of the project's kind differ in it and it changes OpenBLAS's kernels
# (PyTorch's BLAS; seqlab's GEMM backend is oneDNN and should not care).
# The scaling and mixers parts can add runs to their results instead of
# starting afresh (APPEND=1), for some mixers (LABELS) and, mixers, lengths
# (LENGTHS) only:
#   APPEND=1 RUNS=1 LABELS="band20 fmm2k20" LENGTHS="4096" bench/compare.sh mixers
#   APPEND=1 LABELS="s5 hyena hyenas5" bench/compare.sh scaling
# The default LABELS are the causal mixers of the LM benchmark; the encoder
# mixers run when named: softmax_bidir (bidirectional softmax) and nystrom
# (64 landmarks, the 33-tap convolution of the seed's 512 model):
#   APPEND=1 LABELS="softmax_bidir nystrom" bench/compare.sh scaling
# and MEGA and SeqBoat (chunks / windows of 256; seqlab only: no PyTorch form of them here):
#   APPEND=1 LABELS="mega seqboat" bench/compare.sh scaling
set -eu
cd "$(dirname "$0")/.."
RUNS=${RUNS:-3} THREADS=${THREADS:-2} TORCH_MEM_GB=${TORCH_MEM_GB:-16}
LABELS=${LABELS:-softmax linear band5 band20 fmm2k20 s5 hyena hyenas5} LENGTHS=${LENGTHS:-256 1024 4096 16384}
APPEND=${APPEND:-0}
scripts/deps.sh python3-torch python3-numpy libopenblas0-openmp libblis4-openmp
[ -x ./seqlab ] || make seqlab
mkdir -p bench/results
model="--n_layer 4 --d_model 256 --n_head 4 --d_inner 1024"
SETTINGS="${OPENBLAS_CORETYPE:-unset} $([ -n "${OPENBLAS_CORETYPE:-}" ] && echo unset || echo Haswell)"

# with_setting SETTING CMD...: CMD (a program or a function of this script) with
# OPENBLAS_CORETYPE unset or set to SETTING, in a subshell.
with_setting() (
    setting=$1
    shift
    if [ "$setting" = unset ]; then unset OPENBLAS_CORETYPE; else export OPENBLAS_CORETYPE="$setting"; fi
    "$@"
)

# tag LABEL: prefixes each JSON line with the environment setting it ran under
tag() { sed "s/^{/{\"openblas_coretype\": \"$1\", /"; }

# torch_run ARGS...: one PyTorch training run, its address space capped so that a form
# whose T x T (or T x d x d) tensors do not fit fails alone instead of the machine.
torch_run() {
    ( ulimit -v $((TORCH_MEM_GB * 1024 * 1024)); OMP_NUM_THREADS=$THREADS /usr/bin/python3 bench/torch/lm_bench.py \
        --threads "$THREADS" "$@" ) || echo "{\"impl\": \"pytorch\", \"failed\": true, \"args\": \"$*\"}"
}

gemm() {
    make bench/gemm_backends
    out=bench/results/gemm_backends.jsonl
    : > "$out"
    for setting in $SETTINGS; do
        echo "gemm: OPENBLAS_CORETYPE $setting" >&2
        with_setting "$setting" bench/gemm_backends --threads "$THREADS" --repeats 7 | tag "$setting" >> "$out"
    done
}

lm() {
    out=bench/results/lm_softmax.jsonl
    : > "$out"
    shape="$model --tgt_len 256 --batch_size 64"
    for setting in $SETTINGS; do
        for run in $(seq "$RUNS"); do
            echo "lm, OPENBLAS_CORETYPE $setting, run $run/$RUNS: seqlab fp32, seqlab bf16, pytorch" >&2
            for precision in fp32 bf16; do
                with_setting "$setting" ./seqlab bench $shape --threads "$THREADS" --steps 3 --warmup 1 --gen_tokens 0 \
                    --precision "$precision" | tag "$setting" >> "$out" || true
            done
            with_setting "$setting" torch_run $shape --steps 3 --warmup 1 | tag "$setting" >> "$out"
        done
    done
}

# One-token generation at batch 1 after a context: softmax (K/V cache),
# linear attention (O(1) state), MEGA and SeqBoat (EMA state and the chunk's
# or window's keys), each with fp32 and bf16 weights in the steps, and
# PyTorch's KV-cache loop.
gen() {
    out=bench/results/generation.jsonl
    : > "$out"
    for run in $(seq "$RUNS"); do
        for T in 1024 4096 16384; do
            echo "gen run $run/$RUNS: context $T" >&2
            for label in softmax linear mega seqboat; do
                for precision in fp32 bf16; do
                    # shellcheck disable=SC2046
                    ./seqlab bench $model $(mixer_keys "$label" 2) --tgt_len "$T" --max_len "$T" --batch_size 1 \
                        --steps 1 --warmup 1 --gen_tokens 512 --threads "$THREADS" --precision "$precision" >> "$out" ||
                        echo "{\"impl\": \"seqlab\", \"mixer\": \"$label\", \"tgt_len\": $T, \"precision\": \"$precision\", \"failed\": true}" >> "$out"
                done
            done
            OMP_NUM_THREADS=$THREADS /usr/bin/python3 bench/torch/gen_bench.py --threads "$THREADS" --context "$T" \
                --new_tokens 512 --repeats 1 >> "$out"
        done
    done
}

# The mixers of the FMMformer seed: name, seqlab keys, PyTorch keys.
MIXERS="softmax||
linear||
band5|--mixer band --diag_size 5|--mixer band --diag_size 5
band20|--mixer band --diag_size 20|--mixer band --diag_size 20
fmm2k20|--mixer fmm --diag_size 20 --kernels elu,elu_flip|--mixer fmm --diag_size 20 --kernels elu,elu_flip
s5|--mixer s5 --mixer.ssm_size 256 --mixer.blocks 8 --mixer.activation half_glu1|--mixer s5 --mixer_keys ssm_size=256,blocks=8,activation=half_glu1
hyena|--mixer hyena|--mixer hyena
hyenas5|--mixer hyena --mixer.filter.name s5 --mixer.filter.ssm_size 128 --mixer.filter.blocks 32 --mixer.filter.conj_sym false|--mixer hyena --mixer_keys filter.name=s5,filter.ssm_size=128,filter.blocks=32,filter.conj_sym=false
softmax_bidir|--causal false|--causal false
nystrom|--mixer nystrom --causal false --mixer.num_landmarks 64 --mixer.conv_kernel_size 33|--mixer nystrom --causal false --mixer_keys num_landmarks=64,conv_kernel_size=33
mega|--mixer mega --mixer.chunk_size 256|
seqboat|--mixer seqboat --mixer.chunk_size 256 --mixer.rel_pos rotary|"

mixer_keys() { # label column(2 seqlab, 3 torch)
    echo "$MIXERS" | awk -F'|' -v l="$1" -v c="$2" '$1 == l { if ($c == "" && l != "softmax") print "--mixer " l; else print $c }'
}

scaling() {
    out=bench/results/mixers_scaling.jsonl
    [ "$APPEND" = 1 ] || : > "$out"
    for label in $LABELS; do
        for T in 256 1024 4096 16384 65536; do
            case $label in softmax*) [ "$T" -gt 16384 ] && continue ;; esac # O(T^2): minutes per step
            echo "scaling: $label T=$T" >&2
            # shellcheck disable=SC2046
            ./seqlab bench $model $(mixer_keys "$label" 2) --tgt_len "$T" --max_len "$T" --batch_size $((65536 / T)) \
                --recompute_ffn true --threads "$THREADS" --steps 3 --warmup 1 \
                | sed "s/^{/{\"label\": \"$label\", /" >> "$out" || echo "{\"label\": \"$label\", \"tgt_len\": $T, \"failed\": true}" >> "$out"
        done
    done
}

# The CPU's model name, kept in each mixers row: APPEND may add rows measured
# on another machine to a table, and the report says which rows ran where.
cpu_name() { sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1 | tr -d '/&\\"'; }

mixers() {
    out=bench/results/mixers_torch.jsonl
    [ "$APPEND" = 1 ] || : > "$out"
    cpu=$(cpu_name)
    for run in $(seq "$RUNS"); do
        for label in $LABELS; do
            for T in $LENGTHS; do
                shape="$model --tgt_len $T --batch_size $((16384 / T))"
                echo "mixers run $run/$RUNS: $label T=$T" >&2
                # shellcheck disable=SC2046
                ./seqlab bench $shape --max_len "$T" $(mixer_keys "$label" 2) --threads "$THREADS" --steps 3 --warmup 1 \
                    --gen_tokens 0 | sed "s/^{/{\"label\": \"$label\", \"cpu\": \"$cpu\", /" >> "$out"
                # shellcheck disable=SC2046
                torch_run $shape $(mixer_keys "$label" 3) --steps 2 --warmup 1 \
                    | sed "s/^{/{\"label\": \"$label\", \"cpu\": \"$cpu\", \"tgt_len\": $T, /" >> "$out"
                if [ "$label" = linear ]; then
                    torch_run $shape --mixer linear --linear_impl cumsum --steps 2 --warmup 1 \
                        | sed "s/^{/{\"label\": \"linear-cumsum\", \"cpu\": \"$cpu\", \"tgt_len\": $T, /" >> "$out"
                fi
            done
        done
    done
}

# The mixture of experts at the enwik8_smoe shapes (d_model 256, experts of
# 256, E 16, top 2, 16,384 tokens per forward): its expert GEMMs against the
# in-process sgemm peak (bench/moe_gemm), and a 4-layer model with a MoE in
# every layer next to the dense model with the same active parameters (an
# MLP of 512: two experts of 256 per token), softmax attention over T = 512.
moe() {
    out=bench/results/moe.jsonl
    : > "$out"
    make bench/moe_gemm >&2
    shape="--d_model 256 --n_head 4 --tgt_len 512 --batch_size 32 --dropout 0 --steps 3 --warmup 1 --gen_tokens 0"
    for run in $(seq "$RUNS"); do
        echo "moe run $run/$RUNS" >&2
        OMP_NUM_THREADS=$THREADS bench/moe_gemm | sed 's/^{/{"part": "gemm", /' >> "$out"
        # shellcheck disable=SC2086
        ./seqlab bench $shape --arch sgsgsgsg --d_inner 256 --moe.num_experts 16 --moe.top_k 2 --threads "$THREADS" \
            | sed 's/^{/{"part": "model", "label": "moe16top2", /' >> "$out"
        # shellcheck disable=SC2086
        ./seqlab bench $shape --arch sfsfsfsf --d_inner 512 --threads "$THREADS" \
            | sed 's/^{/{"part": "model", "label": "dense512", /' >> "$out"
    done
}

# The adaptive-span attention (S = 2048, blocks of 512, 16 rows, 2 layers of
# d_model 256 with an MLP of 1024) at initial spans z = 0, 1/4, 1/2, 1 (the
# distances computed: 64, 576, 1088, 2048 after the trimming in steps of 64)
# and without adaptive span (every head the full 2048, no mask).
span() {
    out=bench/results/adaptive_span.jsonl
    : > "$out"
    shape="--arch sfsf --mixer adaptive_span --mixer.attn_span 2048 --d_model 256 --n_head 8 --d_inner 1024
           --tgt_len 512 --batch_size 16 --norm post --pos none --steps 3 --warmup 1 --gen_tokens 0"
    for run in $(seq "$RUNS"); do
        echo "span run $run/$RUNS" >&2
        for z in 0 0.25 0.5 1 off; do
            if [ "$z" = off ]; then keys="--mixer.adapt_span false"; else keys="--mixer.adapt_span_init $z"; fi
            # shellcheck disable=SC2086
            ./seqlab bench $shape $keys --threads "$THREADS" | sed "s/^{/{\"span_init\": \"$z\", /" >> "$out"
        done
    done
}

case "${1:-all}" in
gemm) gemm ;;
lm) lm ;;
gen) gen ;;
scaling) scaling ;;
mixers) mixers ;;
moe) moe ;;
span) span ;;
all) gemm; lm; gen; scaling; mixers; moe; span ;;
*) echo "usage: bench/compare.sh [gemm|lm|gen|scaling|mixers|moe|span|all]" >&2; exit 2 ;;
esac
mkdir -p docs/img
if [ -s bench/results/mixers_scaling.jsonl ]; then
    for y in tok_per_s peak_rss_mb gen_tok_per_s; do
        ./seqlab plot --bench bench/results/mixers_scaling.jsonl --y "$y" --out "docs/img/scaling_$y.svg" \
            --title "seqlab, 4 layers, d_model 256, 65,536 tokens per step: $y"
    done
fi
/usr/bin/python3 bench/report.py > docs/benchmarks.md
echo "bench/compare.sh: wrote docs/benchmarks.md" >&2
