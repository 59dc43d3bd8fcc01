#!/bin/sh
# The command line under AddressSanitizer and UBSan (build-asan/seqlab, made
# by `make test` or `make asan`): one whole train / eval / sample cycle with
# LeakSanitizer on, and a representative set of bad inputs (each must exit 1
# or 2 with its message). Any sanitizer report fails the test. The whole
# command-line suite under the sanitizers would double `make test`'s time;
# these cover the paths that allocate, read files and fail.
cd "$(dirname "$0")/.." || exit 2
. tests/lib.sh
san=build-asan/seqlab
if [ ! -x $san ]; then skip "sanitizers" "no $san (make asan)"; finish; fi
# allocator_may_return_null: a failed allocation is reported as out of memory, as without the sanitizer;
# the suppressions are the OpenMP runtime's and oneDNN's own one-time allocations
export ASAN_OPTIONS=allocator_may_return_null=1:detect_leaks=1:exitcode=86 UBSAN_OPTIONS=print_stacktrace=1:exitcode=86
export LSAN_OPTIONS="suppressions=$PWD/tests/lsan.supp:print_suppressions=0"
clean() { ! grep -qE "ERROR: (AddressSanitizer|LeakSanitizer)|runtime error|SUMMARY: " "$1"; }

tiny_corpus "$tmp/corpus.txt" 4 2000
tiny="--data $tmp/corpus.txt --tokenizer char --arch sfsf --d_model 32 --n_head 2 --d_inner 64 --batch_size 4
      --tgt_len 32 --max_step 6 --eval_interval 3 --eval_max_batches 2 --ckpt_interval 3 --dropout 0.1 --threads 2"

# shellcheck disable=SC2086
if $san train $tiny --out "$tmp/run" >"$tmp/train.out" 2>&1 && clean "$tmp/train.out" \
   && $san eval --run "$tmp/run" --split test >"$tmp/eval.out" 2>&1 && clean "$tmp/eval.out" && grep -q bpc "$tmp/eval.out" \
   && $san sample --run "$tmp/run" --prompt "the " --tokens 20 >"$tmp/sample.out" 2>&1 && clean "$tmp/sample.out"
then ok "sanitizers: train, eval and sample with no leak, overflow or undefined behaviour"
else fail "sanitizers: train, eval, sample" "$(grep -E -A12 'ERROR|runtime error' "$tmp"/*.out | head -40)"; fi
# shellcheck disable=SC2086
if $san train --resume "$tmp/run" --max_step 9 >"$tmp/resume.out" 2>&1 && clean "$tmp/resume.out"; then
    ok "sanitizers: resume"
else fail "sanitizers: resume" "$(grep -E -A12 'ERROR|runtime error' "$tmp/resume.out" | head -30)"; fi

# a bad input: exit 1 or 2 with its message (a sanitizer's report exits 86)
bad_input() {
    name=$1 pattern=$2
    shift 2
    expect_error "sanitizers: $name" "$pattern" $san "$@"
}
head -c 3000 "$tmp/run/ckpt-9.safetensors" > "$tmp/trunc.safetensors"
cp -r "$tmp/run" "$tmp/trunc" && cp "$tmp/trunc.safetensors" "$tmp/trunc/ckpt-9.safetensors"
cp -r "$tmp/run" "$tmp/foreign" && cp "$tmp/corpus.txt" "$tmp/foreign/ckpt-9.safetensors"
printf 'ab' > "$tmp/two.txt"
printf 'd_modle: 32\n' > "$tmp/typo.yaml"
# shellcheck disable=SC2086
bad_input "a missing data file" "cannot|does not exist|no such" train $tiny --data "$tmp/nothing.txt" --out "$tmp/b1"
bad_input "a config typo" "unknown key 'd_modle'.*typo.yaml:1" train "$tmp/typo.yaml" --out "$tmp/b2"
bad_input "a truncated checkpoint" "ckpt-9.safetensors" eval --run "$tmp/trunc"
bad_input "a foreign checkpoint" "ckpt-9.safetensors" eval --run "$tmp/foreign"
# shellcheck disable=SC2086
bad_input "a diverging run" "not finite. Stopped before its update" train $tiny --lr 1e4 --clip 0 --max_step 40 --out "$tmp/b3"
# shellcheck disable=SC2086
bad_input "a model larger than the machine" "parameters need [0-9.]+ GiB" train $tiny --d_model 65536 --n_head 4 --out "$tmp/b4"
bad_input "a file too short to hold out splits" "too short to hold out" data prepare --dataset text --src "$tmp/two.txt" --out "$tmp/b5"
finish
