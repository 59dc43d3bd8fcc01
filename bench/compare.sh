#!/bin/sh
# Side-by-side training speed: seqlab and PyTorch (Debian's python3-torch,
# bench/torch/lm_bench.py) on the same model, run alternately RUNS times each
# (every run: WARMUP untimed steps, then STEPS timed ones), medians reported.
# Writes docs/benchmarks.md (the table) and bench/results/*.jsonl (raw runs).
#   bench/compare.sh                 # the foundation benchmark config
#   RUNS=5 THREADS=2 bench/compare.sh
set -eu
cd "$(dirname "$0")/.."
RUNS=${RUNS:-3} STEPS=${STEPS:-3} WARMUP=${WARMUP:-1} THREADS=${THREADS:-2}
scripts/deps.sh python3-torch python3-numpy
[ -x ./seqlab ] || make seqlab
mkdir -p bench/results
out=bench/results/lm_softmax.jsonl
: > "$out"
shape="--n_layer 4 --d_model 256 --n_head 4 --d_inner 1024 --tgt_len 256 --batch_size 64"
for run in $(seq "$RUNS"); do
    echo "run $run/$RUNS: seqlab" >&2
    ./seqlab bench $shape --threads "$THREADS" --steps "$STEPS" --warmup "$WARMUP" >> "$out"
    echo "run $run/$RUNS: pytorch" >&2
    OMP_NUM_THREADS=$THREADS /usr/bin/python3 bench/torch/lm_bench.py $shape --threads "$THREADS" \
        --steps "$STEPS" --warmup "$WARMUP" >> "$out"
done
/usr/bin/python3 bench/report.py "$out" > docs/benchmarks.md
cat docs/benchmarks.md
