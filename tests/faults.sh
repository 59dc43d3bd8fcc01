#!/bin/sh
# Reliability (docs/reliability.md): a diverging run stops with a message and
# no checkpoint of ruined weights; plans too large for the machine and data
# too small are refused before anything big is allocated; a file-size limit
# (as a full disk) during a checkpoint leaves the previous one intact;
# SIGKILL at random moments while checkpointing never breaks --resume;
# SIGINT/SIGTERM save a checkpoint and exit cleanly.
cd "$(dirname "$0")/.." || exit 2
. tests/lib.sh

tiny_corpus "$tmp/corpus.txt" 7 3000
tiny_config "$tmp/tiny.yaml" "$tmp/corpus.txt"
cat >> "$tmp/tiny.yaml" <<YAML
eval_interval: 0
eval_max_batches: 2
threads: 1
YAML
# every line of a metrics.jsonl is JSON (no nan or inf), and the newest checkpoint of a run loads and evaluates finite
json_clean() { ! grep -qE ': -?(nan|inf)' "$1/metrics.jsonl"; }
newest_loads() { ./seqlab eval --run "$1" --eval_max_batches 1 >"$tmp/newest.out" 2>&1 && grep -q "loss [0-9]" "$tmp/newest.out"; }

# ---- divergence ----
./seqlab train "$tmp/tiny.yaml" --lr 1e4 --clip 0 --ckpt_interval 1 --out "$tmp/div" >/dev/null 2>"$tmp/div.err"
rc=$?
if [ $rc -eq 1 ] && grep -q "seqlab train: step [0-9]*: loss .*not finite. Stopped before its update, so no checkpoint holds its result. The newest checkpoint is $tmp/div/ckpt-[0-9]*.safetensors" "$tmp/div.err" \
   && json_clean "$tmp/div" && newest_loads "$tmp/div" && [ "$(ls "$tmp/div" | grep -c ckpt-)" -ge 1 ]
then ok "a diverging run (lr 1e4, no clip) stops with exit 1 naming the step and the newest checkpoint, which loads"
else fail "a diverging run stops" "exit $rc: $(tail -n 2 "$tmp/div.err"; tail -n 1 "$tmp/newest.out")"; fi
./seqlab train "$tmp/tiny.yaml" --lr 1e4 --clip 0 --ckpt_interval 1 --nonfinite skip --max_skipped 3 --out "$tmp/skip" \
    >/dev/null 2>"$tmp/skip.err"
rc=$?
if [ $rc -eq 1 ] && [ "$(grep -c 'skipped (nonfinite: skip' "$tmp/skip.err")" -eq 3 ] \
   && grep -q '"grad_norm": null, .*"skipped": 3' "$tmp/skip/metrics.jsonl" \
   && grep -q "after max_skipped non-finite steps in a row" "$tmp/skip.err" && json_clean "$tmp/skip" && newest_loads "$tmp/skip"
then ok "nonfinite skip: skipped steps take no update, are counted in metrics.jsonl (null, not nan), and max_skipped in a row stop"
else fail "nonfinite skip" "exit $rc: $(tail -n 3 "$tmp/skip.err"; tail -n 1 "$tmp/skip/metrics.jsonl")"; fi

expect_error "nonfinite: a value other than stop or skip" "key 'nonfinite'.*stop\|skip" \
    ./seqlab train "$tmp/tiny.yaml" --nonfinite ignore --out "$tmp/bad_nonfinite"
expect_error "max_skipped: not positive" "max_skipped" ./seqlab train "$tmp/tiny.yaml" --max_skipped 0 --out "$tmp/bad_skip"

# ---- refused before the big allocations (each within seconds) ----
expect_error "a model larger than the machine's memory is refused with the bytes and the keys" \
    "parameters need [0-9.]+ GiB .* more than this machine's [0-9.]+ GiB: make it smaller \(keys d_model" \
    timeout 30 ./seqlab train "$tmp/tiny.yaml" --d_model 65536 --n_head 4 --out "$tmp/huge"
awk 'BEGIN { srand(8); for (i = 0; i < 120000; i++) print "the cat sat on a mat and then ran off to see" }' > "$tmp/big.txt"
expect_error "activations larger than the machine's memory are refused with the bytes and the keys" \
    "activations of 32 rows of 65536 tokens need [0-9.]+ GiB, more than this machine's .* lower batch_size" \
    timeout 30 ./seqlab train "$tmp/tiny.yaml" --data "$tmp/big.txt" --batch_size 32 --tgt_len 65536 --max_len 65536 \
    --d_model 1024 --n_head 8 --out "$tmp/wide"
expect_error "a sequence longer than the data is refused before the model is built" \
    "the train split has [0-9]+ tokens, too few for 8 rows of 100000000 tokens" \
    timeout 30 ./seqlab train "$tmp/tiny.yaml" --tgt_len 100000000 --max_len 100000000 --out "$tmp/long"
printf 'ab' > "$tmp/two.txt"
expect_error "data prepare of a 2-byte file: the held-out splits would be empty" \
    "'.*two.txt' is too short to hold out a valid split: valid_fraction 0.05 of it is 0 bytes" \
    timeout 30 ./seqlab data prepare --dataset text --src "$tmp/two.txt" --out "$tmp/two_prep"
[ ! -e "$tmp/two_prep" ] && ok "... and it writes nothing" || fail "data prepare of a 2-byte file wrote files" "$(ls "$tmp/two_prep")"

# ---- a file-size limit (a full disk) during a checkpoint: the run stops, the previous checkpoints stay ----
./seqlab train "$tmp/tiny.yaml" --max_step 6 --out "$tmp/disk" >/dev/null 2>&1
sums=$(cat "$tmp/disk"/ckpt-*.safetensors | cksum)
size=$(wc -c < "$tmp/disk/ckpt-6.safetensors")
# ulimit -f counts blocks of 1024 bytes in bash, 512 in dash: half the checkpoint's size either way
(ulimit -f $((size / 2048)) && exec ./seqlab train --resume "$tmp/disk" --max_step 12) >/dev/null 2>"$tmp/disk.err"
rc=$?
if [ $rc -eq 1 ] && grep -q "cannot write '$tmp/disk/ckpt-9.safetensors.tmp.[0-9]*' (temporary file for .*ckpt-9.safetensors'): File too large" "$tmp/disk.err" \
   && [ "$(cat "$tmp/disk"/ckpt-*.safetensors | cksum)" = "$sums" ] && ! ls "$tmp/disk" | grep -q tmp \
   && ! ls "$tmp/disk/ckpt-9.safetensors" >/dev/null 2>&1 && newest_loads "$tmp/disk"
then ok "a file-size limit during a checkpoint: exit 1 naming the file, earlier checkpoints untouched and loadable, no temporary left"
else fail "a file-size limit during a checkpoint" "exit $rc: $(tail -n 2 "$tmp/disk.err"; ls "$tmp/disk")"; fi
if ./seqlab train --resume "$tmp/disk" --max_step 12 >/dev/null 2>&1 && [ -f "$tmp/disk/ckpt-12.safetensors" ]; then
    ok "... and with room again the run resumes to its end"
else fail "resume after the file-size limit"; fi

# ---- SIGKILL at random moments while checkpointing (every step, a model whose checkpoint takes a while) ----
big="--d_model 128 --n_head 4 --d_inner 512 --arch sfsfsfsf --ckpt_interval 1 --keep_checkpoints 2 --max_step 100000"
# shellcheck disable=SC2086
./seqlab train "$tmp/tiny.yaml" $big --max_step 1 --out "$tmp/kill" >/dev/null 2>&1
midwrite=0 broken=""
for i in $(seq 20); do
    ./seqlab train --resume "$tmp/kill" --max_step 100000 >/dev/null 2>&1 &
    pid=$!
    sleep "$(awk -v i="$i" 'BEGIN { srand(i); printf "%.3f", 0.3 + rand() * 0.5 }')"
    kill -9 $pid 2>/dev/null
    wait $pid 2>/dev/null
    ls "$tmp/kill" | grep -q '\.tmp\.' && midwrite=$((midwrite + 1))
    newest_loads "$tmp/kill" || broken="$broken $i"
done
./seqlab train --resume "$tmp/kill" --max_step "$(($(ls "$tmp/kill" | sed -n 's/^ckpt-\([0-9]*\)\.safetensors$/\1/p' | sort -n | tail -n 1) + 2))" \
    >/dev/null 2>"$tmp/kill.err"
rc=$?
if [ -z "$broken" ] && [ $rc -eq 0 ] && ! ls "$tmp/kill" | grep -q '\.tmp\.'; then ok "SIGKILL 20 times at random moments (checkpoint every step; $midwrite killed mid-write): the newest checkpoint always loads, --resume works, temporaries removed"
else fail "SIGKILL while checkpointing" "broken after kills:$broken; resume exit $rc; mid-write $midwrite: $(tail -n 2 "$tmp/kill.err"; ls "$tmp/kill")"; fi

# ---- SIGINT and SIGTERM save a checkpoint of the last step and exit; the resumed run equals an uninterrupted one ----
long="--max_step 3000 --ckpt_interval 0 --log_interval 50"
# shellcheck disable=SC2086
./seqlab train "$tmp/tiny.yaml" $long --out "$tmp/whole" >/dev/null 2>&1
for sig in INT TERM; do
    # shellcheck disable=SC2086
    ./seqlab train "$tmp/tiny.yaml" $long --out "$tmp/sig$sig" >/dev/null 2>"$tmp/sig.err" &
    pid=$!
    sleep 1
    kill -$sig $pid
    wait $pid
    rc=$?
    step=$(ls "$tmp/sig$sig" | sed -n 's/^ckpt-\([0-9]*\)\.safetensors$/\1/p')
    ./seqlab train --resume "$tmp/sig$sig" >/dev/null 2>&1
    grep '"kind": "train"' "$tmp/whole/metrics.jsonl" | sed 's/"tok_per_s.*//' > "$tmp/l_whole"
    grep '"kind": "train"' "$tmp/sig$sig/metrics.jsonl" | sed 's/"tok_per_s.*//' > "$tmp/l_sig"
    expect=$((128 + $([ $sig = INT ] && echo 2 || echo 15)))
    if [ $rc -eq $expect ] && [ -n "$step" ] && [ "$step" -gt 1 ] && [ "$step" -lt 3000 ] \
       && grep -q "seqlab train: .* at step $step: checkpoint saved in $tmp/sig$sig; continue with --resume" "$tmp/sig.err" \
       && cmp -s "$tmp/l_whole" "$tmp/l_sig"
    then ok "SIG$sig: checkpoint of step $step saved, exit $expect; resumed, the loss lines equal an uninterrupted run's"
    else fail "SIG$sig saves and exits" "exit $rc (want $expect), step '$step': $(tail -n 1 "$tmp/sig.err"; diff "$tmp/l_whole" "$tmp/l_sig" | head -n 3)"; fi
done
finish
