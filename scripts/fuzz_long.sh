#!/bin/sh
# Fuzzes every target of tests/fuzz for hours, in the background, at the
# lowest priority (it takes only idle cores): JOBS loops, each taking the
# target that has had the fewest seconds so far and is not being fuzzed by
# another loop, for TURN seconds at a time, until killed or until every
# target has had HOURS hours. Every turn appends
#   target<TAB>wall seconds<TAB>crashes so far<TAB>CPU seconds
# to build-fuzz/fuzz_log.tsv. CPU seconds are what count: a turn starved by
# other work on the machine gets its wall time but not its CPU time.
# Hours fuzzed before this log began (an earlier machine) may be listed as
# "target<TAB>seconds" in build-fuzz/fuzz_earlier.tsv; they count towards
# HOURS and the report shows them apart. `touch build-fuzz/stop` ends the
# loops after their running turns (a fuzzer sent SIGTERM ends its turn now,
# and the turn is logged). Inputs grow to 64 KiB, past any line buffer.
#   scripts/fuzz_long.sh [HOURS] [JOBS] [TURN]     defaults: 1 hour, 2 loops, 600 s
#   scripts/fuzz_long.sh --report
set -eu
cd "$(dirname "$0")/.."
log=build-fuzz/fuzz_log.tsv earlier=build-fuzz/fuzz_earlier.tsv
touch "$log" "$earlier"
if [ "${1:-}" = --report ]; then
    printf "%-18s %9s %9s %9s %9s  %s\n" target earlier wall CPU "earlier+CPU" crashes
    awk -F'\t' 'FNR == NR { e[$1] += $2; next }
                { w[$1] += $2; c[$1] = $3; u[$1] += $4 }
                END { for (t in e) w[t] += 0; for (t in w) printf "%-18s %7.2f h %7.2f h %7.2f h %7.2f h  %d\n", t, e[t] / 3600, w[t] / 3600, u[t] / 3600, (e[t] + u[t]) / 3600, c[t] }' \
        "$earlier" "$log" | sort
    exit 0
fi
hours=${1:-1} jobs=${2:-2} turn=${3:-600}
command -v /usr/bin/time >/dev/null || { echo "fuzz_long.sh: needs GNU time (apt-get install time)" >&2; exit 1; }
make -s fuzz-deps $(ls tests/fuzz/fuzz_*.c | sed 's|tests/fuzz/\(.*\)\.c|build-fuzz/\1|')
targets=$(ls tests/fuzz/fuzz_*.c | sed 's|tests/fuzz/\(.*\)\.c|\1|')
rm -rf build-fuzz/busy build-fuzz/stop && mkdir -p build-fuzz/busy
# The targets write each input to a file: in memory (/dev/shm) where there is one.
tmp=${TMPDIR:-/tmp}; [ -d /dev/shm ] && [ -w /dev/shm ] && tmp=/dev/shm

# Prints the target with the fewest seconds (earlier + CPU) under HOURS that
# no loop holds, and the seconds it still needs, and holds it (mkdir is
# atomic); prints nothing when none is left or when asked to stop.
take_target() {
    [ ! -e build-fuzz/stop ] || return 0
    for t in $(awk -F'\t' -v list="$targets" 'BEGIN { n = split(list, ts, /[ \n]+/); for (i = 1; i <= n; i++) s[ts[i]] = 0 }
                   FNR == NR { s[$1] += $2; next } { s[$1] += $4 }
                   END { for (t in s) if (t != "") print s[t], t }' "$earlier" "$log" |
               sort -n | awk -v max=$((hours * 3600)) '$1 < max { print $2 ":" max - $1 }'); do
        mkdir "build-fuzz/busy/${t%:*}" 2>/dev/null && { echo "$t"; return; }
    done
}

loop() {
    while next=$(take_target) && [ -n "$next" ]; do
        t=${next%:*} seconds=${next#*:}
        [ "$seconds" -le "$turn" ] || seconds=$turn  # the last turn only as long as needed
        mkdir -p "build-fuzz/corpus/$t"
        start=$(date +%s)
        TMPDIR=$tmp ASAN_OPTIONS=allocator_may_return_null=1 /usr/bin/time -f '%U %S' -o "build-fuzz/$t.time" \
            nice -n 19 "build-fuzz/$t" -max_total_time="$seconds" -max_len=65536 -rss_limit_mb=4096 \
            -artifact_prefix="build-fuzz/crash-$t-" "build-fuzz/corpus/$t" "tests/fuzz/corpus/$t" \
            >"build-fuzz/$t.log" 2>&1 || true
        cpu=$(awk 'END { printf "%d", $1 + $2 }' "build-fuzz/$t.time")
        printf '%s\t%s\t%s\t%s\n' "$t" $(( $(date +%s) - start )) "$(ls build-fuzz/crash-"$t"-* 2>/dev/null | wc -l)" "$cpu" >> "$log"
        rmdir "build-fuzz/busy/$t"
    done
}
k=0
while [ $k -lt "$jobs" ]; do loop & k=$((k + 1)); sleep 1; done
wait
