#!/bin/sh
# Fuzzes every target of tests/fuzz for hours, in the background, at the
# lowest priority (it takes only idle cores): JOBS loops, each running the
# targets in turn for TURN seconds at a time, until killed or until each
# target has had HOURS hours. Every turn appends "target<TAB>seconds<TAB>crashes
# so far" to build-fuzz/fuzz_log.tsv; `scripts/fuzz_long.sh --report` sums it.
#   scripts/fuzz_long.sh [HOURS] [JOBS] [TURN]     defaults: 1 hour, 2 loops, 600 s
set -eu
cd "$(dirname "$0")/.."
log=build-fuzz/fuzz_log.tsv
if [ "${1:-}" = --report ]; then
    awk -F'\t' '{ s[$1] += $2; c[$1] = $3 } END { for (t in s) printf "%-18s %6.2f h  crashes %d\n", t, s[t] / 3600, c[t] }' "$log" | sort
    exit 0
fi
hours=${1:-1} jobs=${2:-2} turn=${3:-600}
make -s $(ls tests/fuzz/fuzz_*.c | sed 's|tests/fuzz/\(.*\)\.c|build-fuzz/\1|')
targets=$(ls tests/fuzz/fuzz_*.c | sed 's|tests/fuzz/\(.*\)\.c|\1|')
done_seconds() { awk -F'\t' -v t="$1" '$1 == t { s += $2 } END { print s + 0 }' "$log" 2>/dev/null || echo 0; }
loop() { # loop K: the targets K, K + jobs, ...
    i=0
    while :; do
        left=0
        for t in $targets; do
            i=$((i + 1))
            [ $(( (i - 1) % jobs )) -eq "$1" ] || continue
            [ "$(done_seconds "$t")" -lt $((hours * 3600)) ] || continue
            left=1
            mkdir -p "build-fuzz/corpus/$t"
            start=$(date +%s)
            ASAN_OPTIONS=allocator_may_return_null=1 nice -n 19 "build-fuzz/$t" -max_total_time="$turn" \
                -rss_limit_mb=4096 -artifact_prefix="build-fuzz/crash-$t-" "build-fuzz/corpus/$t" "tests/fuzz/corpus/$t" \
                >"build-fuzz/$t.log" 2>&1 || true
            printf '%s\t%s\t%s\n' "$t" $(( $(date +%s) - start )) "$(ls build-fuzz/crash-"$t"-* 2>/dev/null | wc -l)" >> "$log"
        done
        [ "$left" -eq 1 ] || break
    done
}
k=0
while [ $k -lt "$jobs" ]; do loop $k & k=$((k + 1)); done
wait
