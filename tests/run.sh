#!/bin/sh
# Runs the whole test suite and prints one total line: the C unit tests
# (tests/unit), the command-line tests (tests/cli.sh), the MPI tests
# (tests/mpi.sh) and the fault tests (tests/faults.sh); then, when build-asan/
# holds the AddressSanitizer + UBSan build (make test builds it), the unit
# tests (with the leak check) and the command-line tests again under the sanitizers, and
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
    { "$@" 2>&1; echo "suite exit $?" >> "$log.status"; } | tee "$log"
    line=$(grep -E '^[0-9]+ passed, [0-9]+ failed' "$log" | tail -n 1)
    status=$(sed 's/suite exit //' "$log.status")
    rm -f "$log" "$log.status"
    if [ -z "$line" ]; then
        echo "$name: did not report its counts (crashed?)"
        failed=$((failed + 1))
        return
    fi
    set -- $(echo "$line" | tr -dc '0-9 ')
    passed=$((passed + $1)) failed=$((failed + $2)) skipped=$((skipped + ${3:-0}))
    # a failure after the count line, such as a leak report at exit
    if [ "$status" -ne 0 ] && [ "$2" -eq 0 ]; then
        echo "$name: exited $status after its tests passed"
        failed=$((failed + 1))
    fi
}

suite unit tests/unit
suite cli tests/cli.sh
suite mpi tests/mpi.sh
suite faults tests/faults.sh
if [ -x build-asan/unit ] && [ -x build-asan/seqlab ]; then
    # the unit tests free what they allocate: leaks fail them (the command-line
    # suite's error exits leave memory to the OS, so it runs without)
    suite "unit under ASan+UBSan" env ASAN_OPTIONS="$ASAN_OPTIONS:detect_leaks=1" \
        LSAN_OPTIONS="suppressions=$PWD/tests/lsan.supp:print_suppressions=0" build-asan/unit
    suite "cli under ASan+UBSan" env SEQLAB=build-asan/seqlab tests/cli.sh
    suite sanitize tests/sanitize.sh
else echo "skip the sanitized suites: no build-asan/ (make asan-build)"; skipped=$((skipped + 1)); fi
echo "$passed passed, $failed failed, $skipped skipped"
[ "$failed" -eq 0 ]
