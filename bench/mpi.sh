#!/bin/sh
# bench/mpi.sh — data parallelism on one machine: the training speed of
#   1 process x 1 thread, 1 process x T threads, and T MPI ranks x 1 thread
# (T = the cores), on the softmax LM of configs/enwik8-hour/softmax.yaml and
# the Brainformer SMoE model (configs/brainformer/enwik8_smoe.yaml: adaptive
# span with its memory, 16 experts top 2) at batch 16 x 512, with the
# seconds per step the ranks spend in MPI's collectives. Each setting runs
# REPEATS times (default 3), one after the other, nothing else running; the
# speed is the median of the log lines' tokens/s after the first 10 steps.
# Then MPI_Allreduce's time against the message size (bench/allreduce.c), over
# shared memory and over TCP on the loopback.
#   bench/mpi.sh [REPEATS]      -> bench/results/mpi.jsonl, allreduce.jsonl (docs/distributed.md)
#   bench/mpi.sh allreduce      -> only the second
# Reads the enwik8 slice from $SEQLAB_DATA or ../shared/data (scripts/getdata.sh enwik8 fetches enwik8).
set -eu
cd "$(dirname "$0")/.."
repeats=${1:-3}
root=${SEQLAB_DATA:-../shared/data}
data=$root/enwik8/enwik8.first4154399
[ -f "$data" ] || data=data/enwik8/enwik8
[ -f "$data" ] || { echo "bench/mpi.sh: no enwik8 in $root or data/ (scripts/getdata.sh enwik8)" >&2; exit 1; }
cores=$(nproc)
out=bench/results/mpi.jsonl
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
mkdir -p bench/results
common="--data $data --max_step 25 --log_interval 5 --eval_interval 0 --eval_max_batches 1 --ckpt_interval 0"

# run NAME SETTING CONFIG ARGS...: one training run; appends its log lines from step 10 on to $tmp/NAME.SETTING
run() {
    name=$1 setting=$2 config=$3
    shift 3
    rm -rf "$tmp/run"
    case $setting in
        1x1) ./seqlab train "$config" $common "$@" --threads 1 --out "$tmp/run" ;;
        1x$cores) ./seqlab train "$config" $common "$@" --threads "$cores" --out "$tmp/run" ;;
        ${cores}x1) mpirun --allow-run-as-root -np "$cores" ./seqlab train "$config" $common "$@" --threads 1 --out "$tmp/run" ;;
    esac >/dev/null 2>"$tmp/err" || { cat "$tmp/err" >&2; exit 1; }
    grep '"kind": "train"' "$tmp/run/metrics.jsonl" | awk -F'"step": ' '{ split($2, a, ","); if (a[1] + 0 >= 10) print }' \
        >> "$tmp/$name.$setting"
}

# median FILE FIELD: the median of a numeric JSON field over the lines
median() { sed -n "s/.*\"$2\": \([0-9.e+-]*\).*/\1/p" "$1" | sort -g | awk '{ v[NR] = $1 } END { print NR ? v[int((NR + 1) / 2)] : 0 }'; }

bench_model() {
    name=$1 config=$2
    shift 2
    for r in $(seq "$repeats"); do
        for setting in 1x1 "1x$cores" "${cores}x1"; do run "$name" "$setting" "$config" "$@"; done
    done
    for setting in 1x1 "1x$cores" "${cores}x1"; do
        ranks=${setting%x*} threads=${setting#*x}
        comm=0
        [ "$ranks" -gt 1 ] && comm=$(median "$tmp/$name.$setting" comm_s)
        printf '{"model": "%s", "ranks": %s, "threads": %s, "tok_per_s": %s, "comm_s_per_step": %s, "lines": %s}\n' \
            "$name" "$ranks" "$threads" "$(median "$tmp/$name.$setting" tok_per_s)" "$comm" \
            "$(wc -l < "$tmp/$name.$setting")" | tee -a "$out"
    done
}

allreduce() {
    make -s bench/allreduce
    for transport in shm tcp; do
        mca=""
        [ $transport = tcp ] && mca="--mca btl self,tcp"
        # shellcheck disable=SC2086
        mpirun --allow-run-as-root -np "$cores" $mca bench/allreduce | sed "s/^{/{\"transport\": \"$transport\", /"
    done | tee bench/results/allreduce.jsonl
}
if [ "$repeats" = allreduce ]; then allreduce; exit 0; fi

: > "$out"
bench_model softmax configs/enwik8-hour/softmax.yaml
allreduce
bench_model smoe configs/brainformer/enwik8_smoe.yaml --batch_size 16 --batch_split 1 --max_micro_step 0
