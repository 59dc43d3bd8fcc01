#!/bin/sh
# Runs the whole test suite: the C unit tests (tests/unit) and the
# command-line tests (tests/cli.sh), the MPI tests (tests/mpi.sh) and the
# fault tests (tests/faults.sh), then the sanitized unit tests and
# tests/sanitize.sh when build-asan/ holds them (make test builds them), and
# prints one total line.
cd "$(dirname "$0")/.." || exit 2
passed=0 failed=0 skipped=0
# the unit tests again under AddressSanitizer and UBSan (make asan-build), then the command line under them
asan_unit=build-asan/unit
[ -x $asan_unit ] || asan_unit=""
for suite in "tests/unit" "tests/cli.sh" "tests/mpi.sh" "tests/faults.sh" $asan_unit "tests/sanitize.sh"; do
    log=$(mktemp)
    ASAN_OPTIONS=detect_leaks=0:allocator_may_return_null=1 ./$suite 2>&1 | tee "$log"
    line=$(grep -E '^[0-9]+ passed, [0-9]+ failed' "$log" | tail -n 1)
    rm -f "$log"
    if [ -z "$line" ]; then
        echo "$suite: did not report its counts (crashed?)"
        failed=$((failed + 1))
        continue
    fi
    set -- $(echo "$line" | tr -dc '0-9 ')
    passed=$((passed + $1)) failed=$((failed + $2)) skipped=$((skipped + ${3:-0}))
done
echo "$passed passed, $failed failed, $skipped skipped"
[ "$failed" -eq 0 ]
