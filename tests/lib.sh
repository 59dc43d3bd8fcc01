# tests/lib.sh — what the shell suites (cli.sh, mpi.sh, faults.sh,
# sanitize.sh) share, sourced after `cd` to the repository: a temporary
# directory removed at exit, the ok/skip/fail counters and the closing count
# line, and a small deterministic corpus with a tiny model's config.
# the binary under test: ./seqlab, or the sanitized build-asan/seqlab (tests/run.sh)
seqlab=${SEQLAB:-./seqlab}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
passed=0 failed=0 skipped=0
ok()   { passed=$((passed + 1)); echo "ok   $1"; }
skip() { skipped=$((skipped + 1)); echo "skip $1: $2"; }
fail() { failed=$((failed + 1)); echo "FAIL $1"; [ -n "${2:-}" ] && echo "$2" | sed 's/^/     /'; }
# The count line tests/run.sh adds up; the exit status says whether all passed.
finish() {
    echo "$passed passed, $failed failed, $skipped skipped"
    [ "$failed" -eq 0 ]
    exit
}

# expect_error NAME PATTERN CMD...: the command must exit 1 or 2 (not crash,
# not time out, not trip a sanitizer) and print a message matching PATTERN on stderr.
expect_error() {
    name=$1 pattern=$2
    shift 2
    "$@" >"$tmp/out" 2>"$tmp/err"
    rc=$?
    if [ $rc -ne 1 ] && [ $rc -ne 2 ]; then fail "$name" "exit code $rc: $(head -n 20 "$tmp/err")"
    elif ! grep -qiE "$pattern" "$tmp/err"; then fail "$name" "message does not match /$pattern/: $(cat "$tmp/err")"
    else ok "$name"; fi
}

# tiny_corpus FILE SEED LINES: lines of a few words in varying order.
tiny_corpus() {
    awk -v seed="$2" -v lines="$3" 'BEGIN { srand(seed);
        split("the cat sat on a mat and then ran off to see her friend at home", w, " ");
        for (i = 0; i < lines; i++) { n = 3 + int(rand() * 6); s = "";
            for (j = 0; j < n; j++) s = s w[1 + int(rand() * 16)] " "; print s } }' > "$1"
}

# tiny_config FILE CORPUS: a 2-layer, width-32 character model on CORPUS,
# 12 steps of 8 x 32 tokens, a checkpoint every 3; a suite appends its
# evaluation, dropout and thread keys.
tiny_config() {
    cat > "$1" <<YAML
data: $2
tokenizer: char
arch: sfsf
d_model: 32
n_head: 2
d_inner: 64
batch_size: 8
tgt_len: 32
max_step: 12
lr: 0.003
warmup_step: 3
log_interval: 1
ckpt_interval: 3
keep_checkpoints: 10
YAML
}
