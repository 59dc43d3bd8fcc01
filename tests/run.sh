#!/bin/sh
# Runs the whole test suite and prints one total line: the C unit tests
# (tests/unit), the command-line tests (tests/cli.sh), the MPI tests
# (tests/mpi.sh) and the fault tests (tests/faults.sh); then, when build-asan/
# holds the AddressSanitizer + UBSan build (make test builds it), the unit
# tests and the command-line tests again under the sanitizers, and
# tests/sanitize.sh (a leak check of a whole cycle, bad inputs).
cd "$(dirname "$0")/.." || exit 2
passed=0 failed=0 skipped=0
# a failed allocation reports out of memory as without the sanitizers; a sanitizer's report exits 86
export ASAN_OPTIONS=detect_leaks=0:allocator_may_return_null=1:exitcode=86 UBSAN_OPTIONS=print_stacktrace=1:exitcode=86

# suite NAME CMD...: runs one suite and adds its count line to the totals
suite() {
    name=$1
    shift
    log=$(mktemp)
    "$@" 2>&1 | tee "$log"
    line=$(grep -E '^[0-9]+ passed, [0-9]+ failed' "$log" | tail -n 1)
    rm -f "$log"
    if [ -z "$line" ]; then
        echo "$name: did not report its counts (crashed?)"
        failed=$((failed + 1))
        return
    fi
    set -- $(echo "$line" | tr -dc '0-9 ')
    passed=$((passed + $1)) failed=$((failed + $2)) skipped=$((skipped + ${3:-0}))
}

suite unit tests/unit
suite cli tests/cli.sh
suite mpi tests/mpi.sh
suite faults tests/faults.sh
if [ -x build-asan/unit ] && [ -x build-asan/seqlab ]; then
    suite "unit under ASan+UBSan" build-asan/unit
    suite "cli under ASan+UBSan" env SEQLAB=build-asan/seqlab tests/cli.sh
    suite sanitize tests/sanitize.sh
else echo "skip the sanitized suites: no build-asan/ (make asan-build)"; skipped=$((skipped + 1)); fi
echo "$passed passed, $failed failed, $skipped skipped"
[ "$failed" -eq 0 ]
