#!/bin/sh
# bench/scaling_model.sh — the projected speed of data parallelism on N
# machines (docs/distributed.md), from a step time measured on one machine
# and the size of the gradients:
#   step(N) = compute / N + allreduce(N)      (one global batch shared by N machines)
#   allreduce(N) = 2 (N - 1) / N * bytes / bandwidth + 2 (N - 1) * latency   (ring all-reduce)
#   efficiency(N) = compute / (N * step(N))
# usage: bench/scaling_model.sh STEP_SECONDS PARAMETERS [NAME:GB_PER_S:LATENCY_US ...]
# e.g.   bench/scaling_model.sh 0.603 1924224 10GbE:1.1:50
set -eu
[ $# -ge 2 ] || { sed -n '2,9p' "$0" | sed 's/^# \{0,1\}//'; exit 2; }
step=$1 params=$2
shift 2
[ $# -gt 0 ] || set -- 1GbE:0.11:50 10GbE:1.1:50 25GbE:2.8:20 100G-IB:11:2
printf '| network | N = 2 | 4 | 8 | 16 | 32 |\n|---|---|---|---|---|---|\n'
for net in "$@"; do
    echo "$net" | awk -F: -v t="$step" -v p="$params" '{
        bytes = 4 * p; bw = $2 * 1e9; lat = $3 * 1e-6; line = "| " $1 " (" $2 " GB/s, " $3 " us)"
        for (n = 2; n <= 32; n *= 2) {
            comm = 2 * (n - 1) / n * bytes / bw + 2 * (n - 1) * lat
            eff = t / (n * (t / n + comm))
            line = line sprintf(" | %.0f%% (%.1f ms)", 100 * eff, 1e3 * comm)
        }
        print line " |" }'
done
