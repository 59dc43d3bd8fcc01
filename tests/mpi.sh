#!/bin/sh
# MPI data parallelism (src/train/dist.c): `mpirun -np 2 seqlab train` against
# one process at the same global batch. One process with batch_split 2 runs
# the micro-batches the two ranks run, so
#   - what depends only on the weights is equal to the bit: the first step's
#     loss, an evaluation, the first step's loss after a resume from one checkpoint;
#   - gradients, and so later steps, differ only by the order in which float sums
#     are added, so the allowed difference is measured, not guessed: it is the
#     difference between two single-process runs whose only difference is that
#     order (batch_split 1 against 2), times 10 (and at least 1e-7).
# Also: resume across rank counts, the streams' memory gathered into the
# checkpoint, labelled examples, a rank that fails stopping every rank with
# nothing damaged, and ranks that disagree on the config or the data.
cd "$(dirname "$0")/.." || exit 2
. tests/lib.sh

if ! command -v mpirun >/dev/null 2>&1; then skip "MPI tests" "no mpirun (scripts/deps.sh installs openmpi-bin)"; finish; fi
if ! ldd ./seqlab | grep -q libmpi; then skip "MPI tests" "./seqlab was built without MPI (make MPI=0)"; finish; fi
# --oversubscribe: two ranks may share fewer cores; the one thread each keeps the suite's time
# (no cross-memory attach between the ranks: a container may forbid it, and the sums are the same)
export OMPI_MCA_btl_vader_single_copy_mechanism=none
mpi2() { mpirun --allow-run-as-root --oversubscribe -np 2 "$@"; }

tiny_corpus "$tmp/corpus.txt" 5 3000
tiny_config "$tmp/tiny.yaml" "$tmp/corpus.txt"
cat >> "$tmp/tiny.yaml" <<YAML
eval_interval: 6
eval_max_batches: 6
dropout: 0.1
dropatt: 0.1
threads: 1
YAML

# "step loss grad_norm" of each training line; "step split loss" of each evaluation; line $2's "step loss"
step_loss() { sed -n "$2p" "$1" | cut -d' ' -f1,2; }
train_lines() { grep '"kind": "train"' "$1/metrics.jsonl" | sed 's/.*"step": \([0-9]*\), "loss": \([^,]*\),.*"grad_norm": \([^,]*\),.*/\1 \2 \3/'; }
eval_lines() { grep '"kind": "eval"' "$1/metrics.jsonl" | sed 's/.*"step": \([0-9]*\), "split": "\([a-z]*\)", "loss": \([^,]*\),.*/\1 \2 \3/'; }
# the largest relative difference between the numbers of two files of lines of the same shape
max_rel() { paste -d' ' "$1" "$2" | awk '{ h = NF / 2; for (i = 2; i <= h; i++) if ($i != $(i + h)) {
        d = $i - $(i + h); if (d < 0) d = -d; a = $i < 0 ? -$i : $i; if (a > 0 && d / a > m) m = d / a } }
        END { printf "%.3g\n", m + 0 }'; }
below() { awk -v a="$1" -v b="$2" 'BEGIN { exit !(a <= b) }'; }
# the tensors (names, dtypes, shapes, offsets) in a checkpoint's safetensors header
st_header() { len=$(head -c 8 "$1" | od -An -tu8 | tr -d ' ')
              tail -c +9 "$1" | head -c "$len" | grep -o '"[^"]*":{"dtype":"[A-Z0-9]*","shape":\[[0-9,]*\],"data_offsets":\[[0-9,]*\]}'; }

# ---- a language model: one process with batch_split 2 against two ranks ----
./seqlab train "$tmp/tiny.yaml" --batch_split 2 --out "$tmp/one" >/dev/null 2>"$tmp/one.err"
./seqlab train "$tmp/tiny.yaml" --batch_split 1 --out "$tmp/order" >/dev/null 2>"$tmp/order.err"
mpi2 ./seqlab train "$tmp/tiny.yaml" --out "$tmp/two" >"$tmp/two.out" 2>"$tmp/two.err"
train_lines "$tmp/one" > "$tmp/l_one"; train_lines "$tmp/order" > "$tmp/l_order"; train_lines "$tmp/two" > "$tmp/l_two"
if [ "$(wc -l < "$tmp/l_two")" -eq 12 ] && [ "$(step_loss "$tmp/l_one" 1)" = "$(step_loss "$tmp/l_two" 1)" ] \
   && grep -q "8 threads\|1 threads x 2 MPI ranks" "$tmp/two.err" && grep -q '"ranks": 2, "comm_s"' "$tmp/two/metrics.jsonl"
then ok "2 ranks: the first step's loss equals one process's to the bit (dropout on)"
else fail "2 ranks: first step" "$(head -2 "$tmp/l_one" "$tmp/l_two"; tail -3 "$tmp/two.err")"; fi
order=$(max_rel "$tmp/l_one" "$tmp/l_order")
tol=$(awk -v o="$order" 'BEGIN { t = 10 * o; printf "%.3g", t < 1e-7 ? 1e-7 : t }')
diff2=$(max_rel "$tmp/l_one" "$tmp/l_two")
if below "$diff2" "$tol"; then ok "2 ranks: 12 steps' losses and gradient norms within the reduction order's ($diff2 <= $tol)"
else fail "2 ranks: 12 steps within the reduction order's difference" "2 ranks $diff2, batch_split 1 against 2: $order"; fi
eval_lines "$tmp/one" > "$tmp/e_one"; eval_lines "$tmp/two" > "$tmp/e_two"
if [ -s "$tmp/e_two" ] && below "$(max_rel "$tmp/e_one" "$tmp/e_two")" "$tol"; then ok "2 ranks: evaluations during training within it too"
else fail "2 ranks: evaluations" "$(cat "$tmp/e_one" "$tmp/e_two")"; fi
if [ "$(grep -v '^batch_split:\|^out:' "$tmp/one/config.yaml")" = "$(grep -v '^batch_split:\|^out:' "$tmp/two/config.yaml")" ] && [ "$(grep -c . "$tmp/two/metrics.jsonl")" -eq 15 ] \
   && [ "$(st_header "$tmp/two/ckpt-12.safetensors" | wc -l)" -gt 20 ] \
   && [ "$(st_header "$tmp/one/ckpt-12.safetensors")" = "$(st_header "$tmp/two/ckpt-12.safetensors")" ] \
   && ! ls "$tmp/two" | grep -qv '^ckpt-[0-9]*.safetensors$\|^config.yaml$\|^metrics.jsonl$\|^vocab.json$'
then ok "2 ranks: one writer: the same run directory, checkpoint tensors and metrics lines as one process"
else fail "2 ranks: one writer" "$(ls "$tmp/two"; wc -l "$tmp/two/metrics.jsonl")"; fi

# evaluation: two ranks share the batches and add their sums in batch order
for split in valid test; do
    ./seqlab eval --run "$tmp/two" --split $split --eval_max_batches 0 > "$tmp/ev1" 2>&1
    mpi2 ./seqlab eval --run "$tmp/two" --split $split --eval_max_batches 0 > "$tmp/ev2" 2>&1
done
eval_lines "$tmp/two" | tail -4 > "$tmp/e_last"
if [ "$(sed -n 1p "$tmp/e_last" | cut -d' ' -f3)" = "$(sed -n 2p "$tmp/e_last" | cut -d' ' -f3)" ] \
   && [ "$(sed -n 3p "$tmp/e_last" | cut -d' ' -f3)" = "$(sed -n 4p "$tmp/e_last" | cut -d' ' -f3)" ] \
   && [ "$(grep -c "step 12" "$tmp/ev2")" -eq 1 ]
then ok "eval on 2 ranks equals eval in one process to the bit (valid and test, whole splits)"
else fail "eval on 2 ranks" "$(cat "$tmp/e_last" "$tmp/ev2")"; fi

# ---- resume across rank counts: checkpoints do not depend on the ranks ----
cp -r "$tmp/two" "$tmp/two_to_one" && rm "$tmp/two_to_one/ckpt-12.safetensors"
cp -r "$tmp/one" "$tmp/one_to_two" && rm "$tmp/one_to_two/ckpt-12.safetensors"
./seqlab train --resume "$tmp/two_to_one" --batch_split 2 >/dev/null 2>"$tmp/r1.err"
mpi2 ./seqlab train --resume "$tmp/one_to_two" >/dev/null 2>"$tmp/r2.err"
train_lines "$tmp/two_to_one" > "$tmp/l_21"; train_lines "$tmp/one_to_two" > "$tmp/l_12"
if [ "$(step_loss "$tmp/l_21" 10)" = "$(step_loss "$tmp/l_two" 10)" ] && [ "$(step_loss "$tmp/l_12" 10)" = "$(step_loss "$tmp/l_one" 10)" ] \
   && [ "$(wc -l < "$tmp/l_21")" -eq 12 ] && [ "$(wc -l < "$tmp/l_12")" -eq 12 ] \
   && below "$(max_rel "$tmp/l_two" "$tmp/l_21")" "$tol" && below "$(max_rel "$tmp/l_one" "$tmp/l_12")" "$tol"
then ok "resume a 2-rank run in 1 process and a 1-process run on 2 ranks: the first step to the bit, the rest within it"
else fail "resume across rank counts" "$(tail -n 3 "$tmp/l_two" "$tmp/l_21" "$tmp/l_one" "$tmp/l_12" "$tmp/r1.err" "$tmp/r2.err")"; fi

# ---- the streams' memory (adaptive span) and a mixture of experts: rows gathered into the checkpoint ----
bf="--arch sgfgfg --arch_grammar brainformer --mixer adaptive_span --mixer.attn_span 40 --mixer.adapt_span_ramp 8
    --mixer.adapt_span_loss 1e-5 --moe.num_experts 4 --moe.d_inner 32 --tgt_len 16 --max_step 9 --eval_interval 0"
# shellcheck disable=SC2086
./seqlab train "$tmp/tiny.yaml" $bf --batch_split 2 --out "$tmp/bf1" >/dev/null 2>&1
# shellcheck disable=SC2086
mpi2 ./seqlab train "$tmp/tiny.yaml" $bf --out "$tmp/bf2" >/dev/null 2>"$tmp/bf2.err"
cp -r "$tmp/bf2" "$tmp/bf2r" && rm "$tmp/bf2r/ckpt-9.safetensors" "$tmp/bf2r/ckpt-6.safetensors"
./seqlab train --resume "$tmp/bf2r" --batch_split 2 >/dev/null 2>&1
train_lines "$tmp/bf1" > "$tmp/l_bf1"; train_lines "$tmp/bf2" > "$tmp/l_bf2"; train_lines "$tmp/bf2r" > "$tmp/l_bf2r"
loads1=$(grep '"step": 1,' "$tmp/bf1/metrics.jsonl" | grep -o '"stats": .*moe.load.*')
loads2=$(grep '"step": 1,' "$tmp/bf2/metrics.jsonl" | grep -o '"stats": .*moe.load.*')
if [ "$(step_loss "$tmp/l_bf1" 1)" = "$(step_loss "$tmp/l_bf2" 1)" ] && [ -n "$loads1" ] && [ "$loads1" = "$loads2" ] \
   && [ "$(step_loss "$tmp/l_bf2r" 4)" = "$(step_loss "$tmp/l_bf2" 4)" ] && [ "$(wc -l < "$tmp/l_bf2r")" -eq 9 ] \
   && below "$(max_rel "$tmp/l_bf1" "$tmp/l_bf2")" 1e-4
then ok "adaptive span + moe on 2 ranks: step 1 (loss, expert loads) to the bit; memory rows of both ranks resume in 1"
else fail "adaptive span + moe on 2 ranks" "$(head -4 "$tmp/l_bf1" "$tmp/l_bf2" "$tmp/l_bf2r"; tail -3 "$tmp/bf2.err")"; fi

# ---- batch norm's running statistics: rank 0's are kept, so the weights' hash agrees at every checkpoint ----
if mpi2 ./seqlab train "$tmp/tiny.yaml" --residual.norm batchnorm --max_step 6 --eval_interval 0 --out "$tmp/bn" \
       >/dev/null 2>"$tmp/bn.err" && [ -f "$tmp/bn/ckpt-6.safetensors" ] && ./seqlab eval --run "$tmp/bn" >/dev/null 2>&1
then ok "batch norm on 2 ranks: the running statistics stay the same on both (checkpoints at steps 3 and 6)"
else fail "batch norm on 2 ranks" "$(tail -n 3 "$tmp/bn.err")"; fi

# ---- labelled examples: padded batches, their rows shared, predictions gathered ----
awk 'BEGIN { srand(9); print "sentence\tlabel"; for (i = 0; i < 300; i++) { n = 2 + int(rand() * 12); s = "";
        for (j = 0; j < n; j++) s = s (rand() < 0.5 ? "good " : "bad "); print s "\t" (rand() < 0.5) } }' > "$tmp/cls.tsv"
cls="--task classification --train_file $tmp/cls.tsv --valid_file $tmp/cls.tsv --tokenizer word --causal false
     --batch_size 8 --tgt_len 16 --max_step 4 --eval_batch_size 7 --eval_interval 2 --ckpt_interval 2"
# shellcheck disable=SC2086
./seqlab train $cls --arch sfsf --d_model 32 --n_head 2 --d_inner 64 --dropout 0.1 --threads 1 --batch_split 2 \
    --out "$tmp/cls1" >/dev/null 2>&1
# shellcheck disable=SC2086
mpi2 ./seqlab train $cls --arch sfsf --d_model 32 --n_head 2 --d_inner 64 --dropout 0.1 --threads 1 --out "$tmp/cls2" \
    >/dev/null 2>"$tmp/cls2.err"
./seqlab eval --run "$tmp/cls2" --predictions "$tmp/p1.tsv" > "$tmp/c1" 2>&1
mpi2 ./seqlab eval --run "$tmp/cls2" --predictions "$tmp/p2.tsv" > "$tmp/c2" 2>&1
train_lines "$tmp/cls1" > "$tmp/l_cls1"; train_lines "$tmp/cls2" > "$tmp/l_cls2"
if [ "$(step_loss "$tmp/l_cls1" 1)" = "$(step_loss "$tmp/l_cls2" 1)" ] && grep -q accuracy "$tmp/c1" \
   && cmp -s "$tmp/c1" "$tmp/c2" && cmp -s "$tmp/p1.tsv" "$tmp/p2.tsv" && [ "$(wc -l < "$tmp/p2.tsv")" -eq 301 ]
then ok "classification on 2 ranks: step 1 to the bit; eval's scores and predictions file equal one process's"
else fail "classification on 2 ranks" "$(cat "$tmp/c1" "$tmp/c2"; tail -3 "$tmp/cls2.err")"; fi

# ---- failures ----
# a rank that fails stops all: rank 1 runs in a folder whose corpus is missing (another machine's disk)
mkdir -p "$tmp/m0" "$tmp/m1"
cp "$tmp/corpus.txt" "$tmp/m0/corpus.txt"
cp -r "$tmp/one" "$tmp/keep"
sums_before=$(cat "$tmp/keep"/ckpt-*.safetensors | cksum)
mpirun --allow-run-as-root --oversubscribe -np 1 -wdir "$tmp/m0" "$PWD/seqlab" train "$tmp/tiny.yaml" --data corpus.txt \
    --out "$tmp/fail_run" : -np 1 -wdir "$tmp/m1" "$PWD/seqlab" train "$tmp/tiny.yaml" --data corpus.txt \
    --out "$tmp/fail_run" >"$tmp/f.out" 2>&1 &
pid=$!
( sleep 60; kill $pid 2>/dev/null ) & watchdog=$!
wait $pid; rc=$?
kill $watchdog 2>/dev/null
if [ $rc -ne 0 ] && [ $rc -lt 128 ] && grep -q "seqlab train: .*corpus.txt" "$tmp/f.out" && ! ls "$tmp/fail_run"/ckpt-* >/dev/null 2>&1
then ok "a rank whose data is missing stops every rank with its message and a non-zero exit"
else fail "a rank that fails stops all" "exit $rc: $(head -5 "$tmp/f.out")"; fi
# ranks that disagree on the config, during a resume: the checkpoints stay as they were
mpirun --allow-run-as-root --oversubscribe -np 1 ./seqlab train --resume "$tmp/keep" --max_step 20 : \
    -np 1 ./seqlab train --resume "$tmp/keep" --max_step 20 --lr 0.002 >"$tmp/f2.out" 2>&1 &
pid=$!
( sleep 60; kill $pid 2>/dev/null ) & watchdog=$!
wait $pid; rc=$?
kill $watchdog 2>/dev/null
if [ $rc -ne 0 ] && [ $rc -lt 128 ] && grep -q "rank 1's config differs from rank 0's at line [0-9]*: 'lr: 0.002' against 'lr: 0.003'" "$tmp/f2.out" \
   && [ "$(cat "$tmp/keep"/ckpt-*.safetensors | cksum)" = "$sums_before" ] && ./seqlab eval --run "$tmp/keep" >/dev/null 2>&1
then ok "ranks that disagree on the config stop with the differing line; the checkpoints are untouched"
else fail "ranks that disagree on the config" "exit $rc: $(head -5 "$tmp/f2.out")"; fi
# ranks whose data differ (another machine's copy of the corpus) would train on different vocabularies
head -c 20000 "$tmp/corpus.txt" | tr 'e' 'E' > "$tmp/m1/corpus.txt"
mpirun --allow-run-as-root --oversubscribe -np 1 -wdir "$tmp/m0" "$PWD/seqlab" train "$tmp/tiny.yaml" --data corpus.txt \
    --out "$tmp/fail3" : -np 1 -wdir "$tmp/m1" "$PWD/seqlab" train "$tmp/tiny.yaml" --data corpus.txt \
    --out "$tmp/fail3" >"$tmp/f3.out" 2>&1
rc=$?
if [ $rc -ne 0 ] && grep -q "rank 1's training data (its size, then its vocabulary) differs from rank 0's" "$tmp/f3.out"
then ok "ranks whose training data differ stop before training"
else fail "ranks whose data differ" "exit $rc: $(head -5 "$tmp/f3.out")"; fi
mpi2 ./seqlab train "$tmp/tiny.yaml" --batch_size 7 --out "$tmp/odd" >"$tmp/f4.out" 2>&1
if [ $? -ne 0 ] && grep -q "key 'batch_size' (7, the global batch) does not divide among 2 ranks" "$tmp/f4.out"
then ok "a global batch that does not divide among the ranks is refused"
else fail "a batch that does not divide" "$(head -3 "$tmp/f4.out")"; fi
mpi2 ./seqlab sample --run "$tmp/one" --prompt "the" --tokens 5 >"$tmp/f5.out" 2>&1
if [ $? -ne 0 ] && grep -q "seqlab sample: runs in one process" "$tmp/f5.out"; then ok "sample under mpirun says it runs in one process"
else fail "sample under mpirun" "$(head -3 "$tmp/f5.out")"; fi
finish
