#!/bin/sh
# Command-line tests of ./seqlab: end to end (train, eval, sample), resume
# equals an uninterrupted run, equivalences (batch_split, threads) and bad
# input, which must give a clear message and a non-zero exit, never a crash.
# SEQLAB=build-asan/seqlab runs them against the sanitized build (tests/run.sh).
cd "$(dirname "$0")/.." || exit 2
. tests/lib.sh

tiny_corpus "$tmp/corpus.txt" 3 3000
tiny_config "$tmp/tiny.yaml" "$tmp/corpus.txt"
cat >> "$tmp/tiny.yaml" <<YAML
eval_interval: 6
eval_max_batches: 4
dropout: 0.1
dropatt: 0.1
threads: 2
YAML

train() { "$seqlab" train "$tmp/tiny.yaml" "$@" >"$tmp/train.out" 2>"$tmp/train.err"; }
loss_lines() { grep '"kind": "train"' "$1/metrics.jsonl" | sed 's/.*"step": \([0-9]*\), "loss": \([^,]*\),.*/\1 \2/'; }

# ---- end to end ----
if train --out "$tmp/full"; then ok "train runs"; else fail "train runs" "$(cat "$tmp/train.err")"; fi
if [ -f "$tmp/full/config.yaml" ] && [ -f "$tmp/full/vocab.json" ] && ls "$tmp/full"/ckpt-12.safetensors >/dev/null 2>&1 \
   && grep -q '"split": "test"' "$tmp/full/metrics.jsonl"; then ok "run directory complete"
else fail "run directory complete" "$(ls "$tmp/full")"; fi
if "$seqlab" eval --run "$tmp/full" --split test >"$tmp/eval.out" 2>&1 && grep -q "bpc" "$tmp/eval.out"; then ok "eval"
else fail "eval" "$(cat "$tmp/eval.out")"; fi
# init_from: the run's weights start a model of twice the length (the position table tiled)
if "$seqlab" train "$tmp/tiny.yaml" --init_from "$tmp/full" --max_len 64 --tgt_len 64 --max_step 2 \
       --out "$tmp/longer" >"$tmp/longer.out" 2>&1 \
   && grep -q "init_from .*full: [1-9][0-9]* parameters loaded, reshaped: pos_embed.weight (max_len 64" "$tmp/longer.out" \
   && ls "$tmp/longer"/ckpt-2.safetensors >/dev/null 2>&1
then ok "init_from a run, positions tiled to a longer max_len"
else fail "init_from" "$(tail -5 "$tmp/longer.out")"; fi
expect_error "init_from a run that does not exist" "init_from': cannot read '.*nowhere'" \
    "$seqlab" train "$tmp/tiny.yaml" --init_from "$tmp/nowhere" --out "$tmp/bad_init"
expect_error "init_from a model of another width" "init_from: .* has embed.weight as .*, the model needs" \
    "$seqlab" train "$tmp/tiny.yaml" --init_from "$tmp/full" --d_model 48 --out "$tmp/bad_init2"
if "$seqlab" sample --run "$tmp/full" --prompt "the " --tokens 50 --seed 3 >"$tmp/s1" 2>&1 \
   && "$seqlab" sample --run "$tmp/full" --prompt "the " --tokens 50 --seed 3 >"$tmp/s2" 2>&1 \
   && cmp -s "$tmp/s1" "$tmp/s2" && [ "$(head -c 4 "$tmp/s1")" = "the " ] && [ "$(wc -m < "$tmp/s1")" -ge 54 ]; then
    ok "sample is seeded and continues the prompt"
else fail "sample is seeded and continues the prompt" "$(cat "$tmp/s1")"; fi

# ---- resume equals an uninterrupted run ----
# resume_equals NAME RUN: the run's directory as it was after the checkpoint
# of step 6 (later checkpoints gone, metrics already logged past it) resumed
# must log the loss lines of the uninterrupted run
resume_equals() {
    name=$1 run=$2
    cp -r "$run" "$run.part" && rm "$run.part/ckpt-9.safetensors" "$run.part/ckpt-12.safetensors"
    "$seqlab" train --resume "$run.part" >/dev/null 2>"$tmp/resume.err"
    loss_lines "$run" > "$tmp/l_full"
    loss_lines "$run.part" > "$tmp/l_part"
    if [ -s "$tmp/l_full" ] && cmp -s "$tmp/l_full" "$tmp/l_part"; then ok "$name"
    else fail "$name" "$(diff "$tmp/l_full" "$tmp/l_part" | head; cat "$tmp/resume.err")"; fi
}
resume_equals "resume: loss lines identical to an uninterrupted run" "$tmp/full"

# ---- a checkpoint of format version 1 (written before buffers and frozen parameters) ----
# tests/golden/ckpt_v1: 4 steps on the first 3000 bytes of tiny shakespeare, whose
# evaluation then gave valid loss 3.9569 (its metrics.jsonl)
if [ -f ../shared/data/tinyshakespeare/input.txt ]; then
    head -c 3000 ../shared/data/tinyshakespeare/input.txt > "$tmp/tiny3000.txt"
    # evaluation appends to the run's metrics.jsonl: work on copies, never on the committed golden
    cp -r tests/golden/ckpt_v1 "$tmp/v1eval"
    cp -r tests/golden/ckpt_v1 "$tmp/v1resume"
    if "$seqlab" eval --run "$tmp/v1eval" --data "$tmp/tiny3000.txt" --split valid 2>&1 | grep -q "loss 3.9569 nats"
    then ok "version-1 checkpoint evaluates as when it was written"
    else fail "version-1 checkpoint evaluates" "$("$seqlab" eval --run "$tmp/v1eval" --data "$tmp/tiny3000.txt" 2>&1)"; fi
    if "$seqlab" train --resume "$tmp/v1resume" --data "$tmp/tiny3000.txt" --max_step 6 >/dev/null 2>"$tmp/v1.err" \
       && [ -f "$tmp/v1resume/ckpt-6.safetensors" ]; then ok "training resumes from a version-1 checkpoint"
    else fail "resume from a version-1 checkpoint" "$(tail -3 "$tmp/v1.err")"; fi
else skip "version-1 checkpoint" "no tiny shakespeare in ../shared/data"; fi

# ---- a seed trainer's flags without a config file select that trainer's model and training ----
"$seqlab" train --attn_type 34 --n_layer 1 --d_model 32 --n_head 2 --d_head 16 --d_inner 64 --dropout 0.2 \
    --data "$tmp/corpus.txt" --tokenizer char --max_step 1 --tgt_len 16 --eval_tgt_len 16 --batch_size 2 \
    --eval_max_batches 1 --out "$tmp/profile" >"$tmp/profile.out" 2>&1
if grep -q '^norm: "post"' "$tmp/profile/config.yaml" && grep -q '^pos: "sinusoidal_reversed"' "$tmp/profile/config.yaml" \
   && grep -q '^emb_scale: "sqrt_d"' "$tmp/profile/config.yaml" && grep -q '^activation: "relu"' "$tmp/profile/config.yaml" \
   && grep -q '^optim: "adam"' "$tmp/profile/config.yaml" && grep -q '^clip: 0.25' "$tmp/profile/config.yaml" \
   && grep -q '^scheduler: "cosine_txl"' "$tmp/profile/config.yaml" && grep -q '^eval_batch_size: 10' "$tmp/profile/config.yaml" \
   && grep -q '^out_dropout: 0.2' "$tmp/profile/config.yaml" && grep -q '^head_bias: true' "$tmp/profile/config.yaml"
then ok "seed flags without a config build the FMMformer trainer's model (post-LN, ReLU, reversed positions, Adam, clip 0.25)"
else fail "seed flags select the FMMformer trainer's profile" "$(cat "$tmp/profile.out")"; fi
"$seqlab" train "$tmp/tiny.yaml" --attn_type 34 --max_step 1 --out "$tmp/noprofile" >/dev/null 2>&1
if grep -q '^norm: "pre"' "$tmp/noprofile/config.yaml" && grep -q '^mixer: "linear"' "$tmp/noprofile/config.yaml"
then ok "with a config file the seed flag only sets its key"
else fail "a seed flag beside a config file" "$(grep -E '^(norm|mixer):' "$tmp/noprofile/config.yaml")"; fi

# ---- equivalences within rounding (tests/tolerance.h) ----
# Micro-batches and thread counts change only the order of float32 additions.
# One forward of tiny.yaml's model sums over 4 sublayers x (3 C + F + 2 T) +
# C + V terms (C 32, F 64, T 32, V about 20: 948); its loss may move by
# 2 x terms x 2^-24 x loss. Each later step adds as much again through its
# update (Adam's normalised step keeps the gradient's relative error), so
# step s allows s times that.
close_losses() { # file file
    paste -d' ' "$1" "$2" | awk '{ d = $2 - $4; if (d < 0) d = -d; tol = $1 * 2 * 948 * 2^-24 * $2
        if (d > tol || $1 != $3) bad = 1 } END { exit (NR == 0 || bad) }'
}
train --out "$tmp/split4" --batch_split 4 && loss_lines "$tmp/split4" > "$tmp/l_split4"
if close_losses "$tmp/l_full" "$tmp/l_split4"; then ok "batch_split 4 equals batch_split 1 (within rounding)"
else fail "batch_split 4 equals batch_split 1" "$(paste "$tmp/l_full" "$tmp/l_split4" | head -4)"; fi
train --out "$tmp/t1" --threads 1 && loss_lines "$tmp/t1" > "$tmp/l_t1"
if close_losses "$tmp/l_full" "$tmp/l_t1"; then ok "1 thread equals 2 threads (within rounding)"
else fail "1 thread equals 2 threads" "$(paste "$tmp/l_full" "$tmp/l_t1" | head -4)"; fi

# ---- bad input ----
# bf16 products need AVX512-BF16: oneDNN told to use no more than AVX-512 core plays a CPU without it
expect_error "precision bf16 on a CPU without AVX512-BF16" "bf16 needs (a CPU with AVX512-BF16|the oneDNN build)" \
    env ONEDNN_MAX_CPU_ISA=AVX512_CORE "$seqlab" train "$tmp/tiny.yaml" --precision bf16 --out "$tmp/bad_bf16"
expect_error "unknown precision" "precision.*must be one of fp32\|bf16" "$seqlab" train "$tmp/tiny.yaml" --precision fp16
expect_error "missing data file" "cannot open data file '.*nowhere.txt'" \
    "$seqlab" train "$tmp/tiny.yaml" --data "$tmp/nowhere.txt" --out "$tmp/bad1"
: > "$tmp/empty.txt"
expect_error "empty data file" "empty.txt' is empty" "$seqlab" train "$tmp/tiny.yaml" --data "$tmp/empty.txt" --out "$tmp/bad2"
printf 'd_modle: 32\n' > "$tmp/typo.yaml"
# every shipped config checks (keys, sections, model) without reading data; a typo fails the check
bad_configs=""
for f in configs/*.yaml configs/*/*.yaml configs/*/*/*.yaml; do
    "$seqlab" train "$f" --check >/dev/null 2>"$tmp/check.err" || bad_configs="$bad_configs $f: $(cat "$tmp/check.err")"
done
if [ -z "$bad_configs" ]; then ok "every config in configs/ passes train --check"
else fail "train --check of configs/" "$bad_configs"; fi
printf 'base: %s/configs/nystromformer/nystrom-512.yaml\nmixer: {num_landmark: 32}\n' "$(pwd)" > "$tmp/typo3.yaml"
expect_error "train --check refuses a module key typo" "did you mean 'mixer.num_landmarks'" \
    "$seqlab" train "$tmp/typo3.yaml" --check
expect_error "unknown key in YAML names file, line and closest key" "typo.yaml:1.*did you mean 'd_model'" \
    "$seqlab" train "$tmp/typo.yaml"
printf 'mixer:\n  name: band\n  diag_sise: 4\n' > "$tmp/typo2.yaml"
expect_error "unknown module key names file, line and closest key" "typo2.yaml:3.*did you mean 'mixer.diag_size'" \
    "$seqlab" train "$tmp/typo2.yaml" --data "$tmp/nowhere.txt"
expect_error "module key out of range from a dotted flag" "key 'mixer.dropatt' \(--mixer.dropatt\) must be in" \
    "$seqlab" train "$tmp/tiny.yaml" --mixer.dropatt 2 --out "$tmp/bad_range"
expect_error "unknown flag suggests the closest key" "did you mean '--batch_size'" "$seqlab" train "$tmp/tiny.yaml" --batch_sise 4
expect_error "wrong value type" "batch_size.*integer" "$seqlab" train "$tmp/tiny.yaml" --batch_size many
expect_error "resume without checkpoint" "no checkpoint" "$seqlab" train --resume "$tmp"
expect_error "lm_batching windows only for task lm" "lm_batching' windows is for task lm, not mlm" \
    "$seqlab" train "$tmp/tiny.yaml" --task mlm --lm_batching windows --out "$tmp/bad_windows"
if "$seqlab" train "$tmp/tiny.yaml" --lm_batching windows --max_step 6 --out "$tmp/windows" >/dev/null 2>"$tmp/windows.err" \
   && grep -q '"kind": "eval", "step": 6' "$tmp/windows/metrics.jsonl"; then ok "lm_batching windows trains and evaluates"
else fail "lm_batching windows trains and evaluates" "$(tail -3 "$tmp/windows.err")"; fi
expect_error "fresh run over an existing run" "already holds checkpoints" "$seqlab" train "$tmp/tiny.yaml" --out "$tmp/full"
mkdir -p "$tmp/trunc" && cp "$tmp/full/config.yaml" "$tmp/full/vocab.json" "$tmp/trunc/"
head -c 3000 "$tmp/full/ckpt-12.safetensors" > "$tmp/trunc/ckpt-12.safetensors"
expect_error "truncated checkpoint" "truncated" "$seqlab" eval --run "$tmp/trunc"
mkdir -p "$tmp/shape" && cp "$tmp/full/vocab.json" "$tmp/full/ckpt-12.safetensors" "$tmp/shape/"
sed 's/^d_model: .*/d_model: 48/' "$tmp/full/config.yaml" > "$tmp/shape/config.yaml"
expect_error "checkpoint of another model shape" "shape" "$seqlab" eval --run "$tmp/shape"
expect_error "prompt symbol outside the vocabulary" "not in the vocabulary" \
    "$seqlab" sample --run "$tmp/full" --prompt "QXZ" --tokens 5
expect_error "sequence longer than max_len" "longer than max_len" "$seqlab" train "$tmp/tiny.yaml" --max_len 16 --out "$tmp/bad3"
printf 'not a safetensors file at all, just text\n' > "$tmp/trunc/ckpt-12.safetensors"
expect_error "foreign checkpoint file" "not a safetensors" "$seqlab" eval --run "$tmp/trunc"

# ---- datasets: prepare once, train from the token files ----
shared=../shared/data
if [ -d "$shared/wikitext-2" ]; then
    if "$seqlab" data prepare --dataset wikitext-2 --train_file "$shared/wikitext-2/wiki.valid.tokens" \
        --valid_file "$shared/wikitext-2/wiki.test.tokens" --test_file "$shared/wikitext-2/wiki.test.tokens" \
        --out "$tmp/wt2" >"$tmp/prep.out" 2>&1 && grep -q "word vocabulary 13777 | train 217646, valid 245569" "$tmp/prep.out"
    then ok "data prepare: WikiText-2 word level, published token counts"
    else fail "data prepare: WikiText-2" "$(cat "$tmp/prep.out")"; fi
    if "$seqlab" train --dataset wikitext-2 --data "$tmp/wt2" --arch sf --d_model 32 --n_head 2 --d_inner 64 \
        --batch_size 4 --tgt_len 32 --max_step 3 --eval_max_batches 2 --adaptive --cutoffs 2000,6000 \
        --out "$tmp/wt2run" >"$tmp/wt2.out" 2>&1 && grep -q '"split": "test", .*"ppl"' "$tmp/wt2run/metrics.jsonl" \
        && "$seqlab" eval --run "$tmp/wt2run" --split valid --eval_max_batches 2 2>&1 | grep -q "ppl"
    then ok "word-level run from prepared token files (adaptive softmax) reports perplexity"
    else fail "word-level run from prepared token files" "$(tail -5 "$tmp/wt2.out")"; fi
    head -c 1000 "$tmp/wt2/train.bin" > "$tmp/short.bin" && cp "$tmp/short.bin" "$tmp/wt2/train.bin"
    expect_error "truncated token file" "train.bin' is truncated" \
        "$seqlab" train --dataset wikitext-2 --data "$tmp/wt2" --out "$tmp/bad4"
    expect_error "prepared data of another dataset" "holds dataset 'wikitext-2'" \
        "$seqlab" train --dataset enwik8 --data "$tmp/wt2" --out "$tmp/bad5"
fi
# the seed's FMMformer 2-kernel + Band_20 command line, word for word, on a stand-in WikiText-103 folder
# (WikiText-2's valid text as its train split), with a few flags after it to make it small
if [ -d "$shared/wikitext-2" ]; then
    mkdir -p "$tmp/data/wikitext-103"
    cp "$shared/wikitext-2/wiki.valid.tokens" "$tmp/data/wikitext-103/wiki.train.tokens"
    cp "$shared/wikitext-2/wiki.valid.tokens" "$shared/wikitext-2/wiki.test.tokens" "$tmp/data/wikitext-103/"
    if "$seqlab" train --cuda --data "$tmp/data/wikitext-103/" --dataset wt103 --adaptive --n_layer 16 --d_model 128 \
        --n_head 8 --d_head 16 --d_inner 2048 --dropout 0.1 --dropatt 0.0 --optim adam --lr 0.00025 --warmup_step 2000 \
        --max_step 500000 --attn_type 201 --tgt_len 256 --mem_len 0 --eval_tgt_len 256 --batch_size 96 --diag_size 20 \
        --sparse_ratio 2.5 --kernels 'elu' 'elu_flip' --multi_gpu --use_wandb --project_name 'fmmformer' \
        --job_name 'fmmformer-2-kernel-band-20' --work_dir "$tmp/seedrun" \
        --n_layer 1 --d_inner 64 --batch_size 2 --tgt_len 16 --eval_tgt_len 16 --max_step 2 --eval_max_batches 1 \
        --cutoffs 2000,6000 >"$tmp/seed.out" 2>&1 \
        && grep -q "ignoring options of the seed trainers.*--cuda --use_wandb --project_name --job_name" "$tmp/seed.out" \
        && grep -q -- "--multi_gpu: this is one process; seqlab trains on every MPI rank" "$tmp/seed.out" \
        && grep -q '^mixer: "fmm"' "$tmp/seedrun/config.yaml" && grep -q '^kernels: "elu,elu_flip"' "$tmp/seedrun/config.yaml" \
        && grep -q '^adaptive_softmax: true' "$tmp/seedrun/config.yaml" && grep -q '^dataset: "wikitext-103"' "$tmp/seedrun/config.yaml"
    then ok "a seed command line runs with only the program replaced"
    else fail "a seed command line runs" "$(tail -5 "$tmp/seed.out")"; fi
fi
SEQLAB_DATA_OUT="$tmp/got" scripts/getdata.sh shakespeare >"$tmp/get.out" 2>&1
if cmp -s "$tmp/got/tinyshakespeare/input.txt" "$shared/tinyshakespeare/input.txt"; then ok "getdata: local copy, sha256 checked"
else fail "getdata: local copy" "$(cat "$tmp/get.out")"; fi
expect_error "unknown dataset" "must be one of" "$seqlab" train --dataset wikitext-9
expect_error "seed flag with a value seqlab does not have" "attn_type.*'24' is not supported" \
    "$seqlab" train "$tmp/tiny.yaml" --attn_type 24

# ---- bench: one JSON object per grid point, with the fields tools read ----
if "$seqlab" bench --arch sf --d_model 32 --n_head 2 --d_inner 64 --mixers softmax,band:diag_size=3 --lengths 16,32 \
    --tokens 64 --steps 2 >"$tmp/bench.json" 2>"$tmp/bench.err" && [ "$(wc -l < "$tmp/bench.json")" -eq 4 ] \
    && grep -q '^band:diag_size=3 *32 *2 ' "$tmp/bench.err"; then
    missing=""
    for key in impl mixer tgt_len batch_size tokens_per_step step_seconds median_s min_s max_s forward_s backward_s \
               tok_per_s gflops sgemm_gflops peak_fraction gen_tok_per_s arena_mb peak_rss_mb; do
        [ "$(grep -c "\"$key\": " "$tmp/bench.json")" -eq 4 ] || missing="$missing $key"
    done
    if [ -z "$missing" ] && { ! command -v python3 >/dev/null 2>&1 || python3 -c '
import json, sys
for line in open(sys.argv[1]):
    r = json.loads(line)
    assert r["min_s"] <= r["median_s"] <= r["max_s"] and r["tokens_per_step"] == 64 and r["batch_size"] * r["tgt_len"] == 64
' "$tmp/bench.json"; }; then ok "bench grid: JSON lines with every field, and the table"
    else fail "bench grid JSON" "missing:$missing"; fi
else fail "bench grid" "$(tail -3 "$tmp/bench.err")"; fi
if "$seqlab" plot --bench "$tmp/bench.json" --y tok_per_s --out "$tmp/speed.svg" \
    && "$seqlab" plot --runs "$tmp/full,$tmp/split4" --x time --out "$tmp/loss.svg" \
    && grep -q "</svg>" "$tmp/speed.svg" && grep -q "full valid" "$tmp/loss.svg" \
    && { ! command -v python3 >/dev/null 2>&1 || python3 -c 'import sys, xml.etree.ElementTree as E; [E.parse(f) for f in sys.argv[1:]]' \
         "$tmp/speed.svg" "$tmp/loss.svg"; }; then ok "plot: bench and run charts are valid SVG"
else fail "plot charts"; fi
expect_error "plot of a missing run" "cannot open.*nowhere/metrics.jsonl" "$seqlab" plot --runs "$tmp/nowhere" --out "$tmp/x.svg"
expect_error "bench grid length not dividing the tokens" "must be positive and divide --tokens" \
    "$seqlab" bench --arch sf --d_model 32 --n_head 2 --mixers softmax --lengths 30 --tokens 64

# ---- tasks beyond the causal LM ----
if [ -d "$shared/glue/SST-2" ]; then
    head -2001 "$shared/glue/SST-2/train.tsv" > "$tmp/sst_train.tsv"
    if "$seqlab" train --task classification --train_file "$tmp/sst_train.tsv" --valid_file "$shared/glue/SST-2/dev.tsv" \
           --tokenizer word --causal false --arch sf --d_model 32 --n_head 2 --tgt_len 32 --batch_size 16 --max_step 30 \
           --eval_interval 0 --out "$tmp/sst" >"$tmp/sst.out" 2>&1 \
       && grep -q '"split": "valid", "loss": [0-9.]*, "accuracy": 0\.[0-9]*, "f1": .*"mcc": .*"examples": 872' "$tmp/sst/metrics.jsonl" \
       && "$seqlab" eval --run "$tmp/sst" 2>&1 | grep -q "accuracy 0\.[0-9]* | f1"
    then ok "classification (SST-2 TSV): trains, reports dev accuracy, F1 and MCC, seqlab eval reads the run"
    else fail "classification (SST-2)" "$(tail -3 "$tmp/sst.out")"; fi
    # GLUE submission files: the unlabelled test split gets one prediction per line; on the dev split the
    # predictions reproduce the accuracy eval reports
    n_test=$(($(wc -l < "$shared/glue/SST-2/test.tsv") - 1))
    if "$seqlab" eval --run "$tmp/sst" --split test --test_file "$shared/glue/SST-2/test.tsv" \
           --predictions "$tmp/sst_test.tsv" >"$tmp/pred.out" 2>&1 \
       && [ "$(head -1 "$tmp/sst_test.tsv")" = "$(printf 'index\tprediction')" ] \
       && [ "$(awk -F'\t' 'NR > 1 && ($2 == 0 || $2 == 1) && $1 == NR - 2' "$tmp/sst_test.tsv" | wc -l)" -eq "$n_test" ] \
       && "$seqlab" eval --run "$tmp/sst" --split valid --predictions "$tmp/sst_dev.tsv" >"$tmp/dev.out" 2>&1 \
       && acc=$(awk -F'\t' 'NR == FNR { if (FNR > 1) label[FNR - 2] = $2; next }
                            FNR > 1 { n++; hit += ($2 == label[$1]) } END { printf "%.4f", hit / n }' \
                "$shared/glue/SST-2/dev.tsv" "$tmp/sst_dev.tsv") \
       && grep -q "accuracy $acc " "$tmp/dev.out"
    then ok "eval --predictions: GLUE submission files, consistent with the reported accuracy"
    else fail "eval --predictions" "$(cat "$tmp/pred.out" "$tmp/dev.out" 2>/dev/null | tail -4)"; fi
    # --epoch (the Nystromformer GLUE flag, key epochs): 2,000 examples in batches of 16 are 125 steps an epoch
    if "$seqlab" train --task classification --train_file "$tmp/sst_train.tsv" --tokenizer word --causal false \
           --arch sf --d_model 16 --n_head 2 --tgt_len 32 --batch_size 16 --epoch 1 --max_step 7 --eval_interval 0 \
           --out "$tmp/sst_epoch" >"$tmp/epoch.out" 2>&1 \
       && [ -f "$tmp/sst_epoch/ckpt-125.safetensors" ] && grep -q '"step": 125' "$tmp/sst_epoch/metrics.jsonl"
    then ok "--epoch sets max_step to whole passes over the training data"
    else fail "--epoch" "$(tail -3 "$tmp/epoch.out")"; fi
    # the seed's --task MRPC: the task's files and columns from the data roots; eval_interval -1: every epoch
    if [ -d "$shared/glue/MRPC" ] && SEQLAB_DATA="$shared" "$seqlab" train --task MRPC --tokenizer word --causal false \
           --arch sf --d_model 16 --n_head 2 --tgt_len 64 --batch_size 128 --epoch 2 --eval_interval -1 \
           --out "$tmp/mrpc" >"$tmp/mrpc.out" 2>&1 \
       && [ "$(grep -c '"split": "valid", "loss": [0-9.]*, "accuracy": .*"f1": .*"best_f1": .*"examples": 408' "$tmp/mrpc/metrics.jsonl")" -eq 2 ] \
       && grep -q '"step": 29, "split": "valid"' "$tmp/mrpc/metrics.jsonl"
    then ok "--task MRPC: the GLUE task's files and columns, F1 and accuracy at the end of each epoch"
    else fail "--task MRPC" "$(tail -3 "$tmp/mrpc.out")"; fi
    expect_error "classification without its text column" "no column 'review' \\(key text_column\\)" \
        "$seqlab" train --task classification --train_file "$tmp/sst_train.tsv" --text_column review --out "$tmp/bad_col"
fi
# WikiHop in the release's JSON format: two questions, windows of 32 tokens; the predictions name each question
cat > "$tmp/wikihop.json" <<'JSON'
[{"id": "WH_dev_0", "query": "located_in the tower", "candidates": ["paris", "rome"], "answer": "paris",
  "supports": ["the tower stands in paris by the river", "rome is far from the tower and the river", "paris is a city"]},
 {"id": "WH_dev_1", "query": "born_in ada", "candidates": ["london", "paris", "rome"], "answer": "london",
  "supports": ["ada was born in london", "london is a city by a river"]}]
JSON
if "$seqlab" train --task wikihop --train_file "$tmp/wikihop.json" --valid_file "$tmp/wikihop.json" --tokenizer word \
       --causal false --arch sf --d_model 16 --n_head 2 --tgt_len 32 --batch_size 2 --max_step 6 --eval_interval 0 \
       --out "$tmp/wikihop" >"$tmp/wikihop.out" 2>&1 \
   && grep -q '"split": "valid", "loss": [0-9.]*, "accuracy": .*"window_accuracy": .*"questions": 2, "windows": [2-9]' "$tmp/wikihop/metrics.jsonl" \
   && "$seqlab" eval --run "$tmp/wikihop" --predictions "$tmp/answers.json" >"$tmp/wh_eval.out" 2>&1 \
   && grep -q '"WH_dev_0": "\(paris\|rome\)"' "$tmp/answers.json" && grep -q '"WH_dev_1": "\(london\|paris\|rome\)"' "$tmp/answers.json"
then ok "wikihop: trains on the release's JSON, reports question and window accuracy, writes the answers"
else fail "wikihop" "$(tail -3 "$tmp/wikihop.out" "$tmp/wh_eval.out" 2>/dev/null)"; fi
echo '[{"id": "x", "query": "q", "candidates": ["a"], "answer": "b", "supports": []}]' > "$tmp/bad_wh.json"
expect_error "wikihop with an answer that is no candidate" "bad_wh.json: question 1 \\(id 'x'\\): the answer is none of the candidates" \
    "$seqlab" train --task wikihop --train_file "$tmp/bad_wh.json" --tokenizer word --out "$tmp/bad_wh"
if [ -d "$shared/wikitext-2" ]; then
    if "$seqlab" train --task mlm --dataset text --tokenizer word --train_file "$shared/wikitext-2/wiki.valid.tokens" \
           --valid_file "$shared/wikitext-2/wiki.test.tokens" --test_file "$shared/wikitext-2/wiki.test.tokens" \
           --causal false --arch sf --d_model 32 --n_head 2 --tgt_len 64 --batch_size 8 --max_step 10 --eval_interval 0 \
           --eval_max_batches 4 --out "$tmp/mlm" >"$tmp/mlm.out" 2>&1 \
       && grep -q '"split": "valid", "loss": [0-9.]*, "ppl": [0-9.]*, "masked_tokens": [1-9]' "$tmp/mlm/metrics.jsonl"
    then ok "masked LM (WikiText-2): trains and reports the masked tokens' loss"
    else fail "masked LM" "$(tail -3 "$tmp/mlm.out")"; fi
    # the first evaluation batch as the model saw it, with its loss: one batch evaluated, so the
    # file's loss_sum / scored is the loss eval prints, and scored the tokens it counts
    "$seqlab" eval --run "$tmp/mlm" --eval_max_batches 1 --save_batch "$tmp/batch.safetensors" >"$tmp/saved.out" 2>&1
    header=$(head -c 4000 "$tmp/batch.safetensors" 2>/dev/null | tr -d '\000')
    sum=$(echo "$header" | grep -o '"loss_sum":"[^"]*"' | cut -d'"' -f4)
    scored=$(echo "$header" | grep -o '"scored":"[^"]*"' | cut -d'"' -f4)
    if [ -n "$sum" ] && grep -q "loss $(awk -v s="$sum" -v n="$scored" 'BEGIN { printf "%.4f", s / n }') nats .* $scored tokens" "$tmp/saved.out" \
       && echo "$header" | grep -q '"ids":{"dtype":"I32","shape":\[8,64\]'
    then ok "eval --save_batch writes the masked batch and its loss"
    else fail "eval --save_batch" "$(cat "$tmp/saved.out"; echo "$header" | head -c 400)"; fi
    expect_error "--save_batch of a task other than mlm" "masked-LM batches only" \
        "$seqlab" eval --run "$tmp/full" --save_batch "$tmp/lm_batch.safetensors"
fi

# ---- the Brainformer seed's model, small: adaptive span with its memory, mixtures of experts shared in a layer ----
bf="--arch sgfgfg.sgfgfg --arch_grammar brainformer --mixer adaptive_span --mixer.attn_span 80 --mixer.adapt_span_ramp 8
    --mixer.adapt_span_loss 1e-5 --mixer.adapt_span_cache true --moe.num_experts 4 --moe.d_inner 32 --norm post
    --residual.dropout 0 --optim adagrad --clip_mode per_tensor --clip 0.03 --lr 0.07 --scheduler constant_from_zero
    --warmup_step 4 --tgt_len 16"
# shellcheck disable=SC2086
if train $bf --out "$tmp/bf" && grep -q "s0 g1 f2 g1 f2 g1 s3 g4 f5 g4 f5 g4" "$tmp/train.err" \
   && grep -q '"blocks.1.moe.load.3"' "$tmp/bf/metrics.jsonl"; then
    ok "brainformer: adaptive span + moe train, sharing printed, expert loads logged"
else fail "brainformer: adaptive span + moe train" "$(tail -3 "$tmp/train.err")"; fi
resume_equals "brainformer: resume (with the streams' memory) equals an uninterrupted run" "$tmp/bf"
if "$seqlab" eval --run "$tmp/bf" --split test >"$tmp/bf_eval" 2>&1 && grep -q bpc "$tmp/bf_eval" \
   && "$seqlab" sample --run "$tmp/bf" --prompt "the " --tokens 20 >"$tmp/bf_sample" 2>&1; then
    ok "brainformer: eval and sample"
else fail "brainformer: eval and sample" "$(cat "$tmp/bf_eval" "$tmp/bf_sample")"; fi
expect_error "moe: top_k above num_experts" "top_k' = 9 is more than num_experts 4" \
    "$seqlab" train "$tmp/tiny.yaml" --arch sg --moe.num_experts 4 --moe.top_k 9 --out "$tmp/bad_moe"
expect_error "moe: the schedule without smoedropout" "smoedropout_apply_schedule" \
    "$seqlab" train "$tmp/tiny.yaml" --arch sg --moe.smoedropout_apply_schedule true --out "$tmp/bad_moe2"
expect_error "per-tensor clipping with adamw" "clip_mode.*adagrad" \
    "$seqlab" train "$tmp/tiny.yaml" --clip_mode per_tensor --out "$tmp/bad_clip"
expect_error "adaptive span: heads not dividing the width" "not divisible by n_head" \
    "$seqlab" train "$tmp/tiny.yaml" --mixer adaptive_span --n_head 3 --out "$tmp/bad_span"

# ---- ListOps generated as the LRA release lays it out, read by the ListOps configs ----
if "$seqlab" data listops --out "$tmp/lo" --n_train 30 --n_valid 4 --n_test 4 --data_seed 2 >/dev/null 2>&1 \
   && [ "$(head -n 1 "$tmp/lo/basic_train.tsv")" = "$(printf 'Source\tTarget')" ] \
   && [ "$(wc -l < "$tmp/lo/basic_train.tsv")" -eq 31 ] && [ "$(wc -l < "$tmp/lo/basic_test.tsv")" -eq 5 ] \
   && "$seqlab" data listops --out "$tmp/lo2" --n_train 30 --n_valid 4 --n_test 4 --data_seed 2 >/dev/null 2>&1 \
   && cmp -s "$tmp/lo/basic_train.tsv" "$tmp/lo2/basic_train.tsv"; then
    ok "data listops: the release's files, seeded"
else fail "data listops" "$(ls -l "$tmp/lo" 2>&1)"; fi
expect_error "data listops: a negative count" "n_train' expects a count" "$seqlab" data listops --out "$tmp/lo3" --n_train -4
expect_error "data listops: no --out" "folder to write with" "$seqlab" data listops

# ---- Pathfinder generated as the LRA release lays it out, read by format pathfinder ----
pf="$tmp/pf/curv_contour_length_14"
if "$seqlab" data pathfinder --out "$tmp/pf" --n 24 --data_seed 3 >"$tmp/pf.out" 2>&1 \
   && grep -q "pathfinder -> $pf | 24 images of 32x32" "$tmp/pf.out" \
   && [ "$(wc -l < "$pf/metadata/0.npy")" -eq 24 ] && [ "$(awk '{ s += $4 } END { print s }' "$pf/metadata/0.npy")" -eq 12 ] \
   && [ "$(head -n 1 "$pf/metadata/0.npy" | cut -d' ' -f1,2,3)" = "imgs/0 sample_0.png 0" ] && [ -f "$pf/imgs/0/sample_23.png" ] \
   && "$seqlab" data pathfinder --out "$tmp/pf2" --n 24 --data_seed 3 >/dev/null 2>&1 \
   && cmp -s "$pf/metadata/0.npy" "$tmp/pf2/curv_contour_length_14/metadata/0.npy" \
   && cmp -s "$pf/imgs/0/sample_7.png" "$tmp/pf2/curv_contour_length_14/imgs/0/sample_7.png"; then
    ok "data pathfinder: the release's layout, half positive, seeded"
else fail "data pathfinder" "$(cat "$tmp/pf.out"; ls "$pf" "$pf/imgs/0" 2>&1 | head)"; fi
if "$seqlab" train configs/lra/s5/pathfinder.yaml --data "$pf" --arch ss --d_model 16 --mixer.ssm_size 8 --mixer.blocks 1 \
       --batch_size 2 --max_step 2 --eval_interval 0 --threads 1 --out "$tmp/pf_run" >"$tmp/pf_run.out" 2>&1 \
   && grep -q '"split": "test"' "$tmp/pf_run/metrics.jsonl"; then ok "data pathfinder: format pathfinder trains on it"
else fail "data pathfinder: format pathfinder trains on it" "$(tail -3 "$tmp/pf_run.out")"; fi
if "$seqlab" data pathfinder --out "$tmp/px" --size 128 --contour_length 6 --n 2 >/dev/null 2>&1 \
   && [ -f "$tmp/px/curv_baseline/imgs/0/sample_1.png" ] && [ "$(wc -l < "$tmp/px/curv_baseline/metadata/0.npy")" -eq 2 ]; then
    ok "data pathfinder: Path-X, curv_baseline"
else fail "data pathfinder: Path-X, curv_baseline" "$(ls -R "$tmp/px" 2>&1 | head)"; fi
expect_error "data pathfinder: a size not 32 or 128" "size' expects 32 or 128" "$seqlab" data pathfinder --out "$tmp/pf3" --size 64
expect_error "data pathfinder: a contour length not 6, 9 or 14" "contour_length' expects 6, 9 or 14" \
    "$seqlab" data pathfinder --out "$tmp/pf3" --contour_length 10
expect_error "data pathfinder: no images" "n' expects a count" "$seqlab" data pathfinder --out "$tmp/pf3" --n 0
expect_error "data pathfinder: no --out" "folder to write with" "$seqlab" data pathfinder --n 2
expect_error "data listops: a pathfinder option" "options of 'seqlab data pathfinder'" "$seqlab" data listops --out "$tmp/lo4" --n 5
# ---- the spoken-digit stand-in for Speech Commands (scripts/speech_standin.sh) ----
# COUNT 3: clip 0 of each digit goes to training, 1 to validation, 2 to test,
# so every split and both lists are non-empty (COUNT 2 leaves testing_list.txt empty).
if ! command -v espeak-ng >/dev/null 2>&1 || ! command -v sox >/dev/null 2>&1; then
    skip "speech_standin" "espeak-ng or sox is not installed"
elif ! sh scripts/speech_standin.sh "$tmp/sd" 3 >"$tmp/sd.out" 2>&1; then
    fail "speech_standin runs" "$(cat "$tmp/sd.out")"
else
    ok "speech_standin runs"
    bad=
    for d in zero one two three four five six seven eight nine; do
        [ "$(ls "$tmp/sd/$d" | grep -c '\.wav$')" -eq 3 ] || bad="$bad $d/"
    done
    [ "$(ls "$tmp/sd" | wc -l)" -eq 13 ] || bad="$bad (entries: $(ls "$tmp/sd" | tr '\n' ' '))"
    if [ -z "$bad" ] && grep -q "wrote 30 clips" "$tmp/sd.out"; then ok "speech_standin: ten digit folders of 3 clips"
    else fail "speech_standin: ten digit folders of 3 clips" "bad:$bad; $(cat "$tmp/sd.out")"; fi
    bad=
    for l in validation_list.txt testing_list.txt; do
        [ "$(wc -l <"$tmp/sd/$l")" -eq 10 ] || bad="$bad $l has $(wc -l <"$tmp/sd/$l") lines;"
        while read -r clip; do [ -f "$tmp/sd/$clip" ] || bad="$bad $l names missing $clip;"; done <"$tmp/sd/$l"
    done
    both=$(sort "$tmp/sd/validation_list.txt" "$tmp/sd/testing_list.txt" | uniq -d)
    held=$(cut -d/ -f2 "$tmp/sd/validation_list.txt" "$tmp/sd/testing_list.txt" | sed 's/_[0-9]*\.wav$//' | sort -u)
    for combo in $held; do # voice_speed_pitch of a held-out clip never in training
        for f in "$tmp/sd"/*/"${combo}"_*.wav; do
            grep -qx "$(basename "$(dirname "$f")")/$(basename "$f")" "$tmp/sd/validation_list.txt" \
                "$tmp/sd/testing_list.txt" || bad="$bad $f shares its voice, speed and pitch with held-out clips;"
        done
    done
    if [ -z "$bad" ] && [ -z "$both" ]; then ok "speech_standin: lists name existing clips, disjoint by combination"
    else fail "speech_standin: lists name existing clips, disjoint by combination" "$bad in both: $both"; fi
    wav=$(ls "$tmp/sd/seven"/*.wav | head -n 1)
    info="$(soxi -r "$wav") $(soxi -c "$wav") $(soxi -b "$wav") $(soxi -s "$wav") $(soxi -e "$wav")"
    if [ "$info" = "16000 1 16 16000 Signed Integer PCM" ]; then ok "speech_standin: 16 kHz mono 16-bit clips of 1 s"
    else fail "speech_standin: 16 kHz mono 16-bit clips of 1 s" "$wav: rate, channels, bits, samples, encoding: $info"; fi
    # S5 on the stand-in through format speech_commands, in frames of 16 samples: trains, evaluates test
    if "$seqlab" train configs/lra/hour/speech_s5.yaml --data "$tmp/sd" --max_step 2 --batch_size 2 --eval_batch_size 5 \
           --eval_interval 0 --out "$tmp/sd-s5" >"$tmp/sd-s5.out" 2>&1 \
       && grep -q '"split": "test".*"accuracy"' "$tmp/sd-s5/metrics.jsonl"; then ok "speech_standin: S5 trains on it (format speech_commands)"
    else fail "speech_standin: S5 trains on it (format speech_commands)" "$(tail -n 3 "$tmp/sd-s5.out")"; fi
    expect_error "speech_commands: audio as token ids" "holds audio: give encoder linear" \
        "$seqlab" train configs/lra/hour/speech_s5.yaml --data "$tmp/sd" --encoder tokens --max_step 1 --out "$tmp/bad"
    if sh scripts/speech_standin.sh "$tmp/sd2" 3 >/dev/null 2>&1 && diff -r "$tmp/sd" "$tmp/sd2" >"$tmp/sd.diff" 2>&1
    then ok "speech_standin: the same bytes twice"
    else fail "speech_standin: the same bytes twice" "$(head -n 5 "$tmp/sd.diff")"; fi
    expect_error "speech_standin: an existing output folder" "sd' already exists" sh scripts/speech_standin.sh "$tmp/sd" 2
    expect_error "speech_standin: a count that is not a number" "COUNT_PER_DIGIT must be a positive integer, not 'ten'" \
        sh scripts/speech_standin.sh "$tmp/sd3" ten
    expect_error "speech_standin: no arguments" "usage: scripts/speech_standin.sh OUT_DIR" sh scripts/speech_standin.sh
    mkdir -p "$tmp/nobin"
    expect_error "speech_standin: espeak-ng missing" "'espeak-ng' is missing: install espeak-ng and sox" \
        env PATH="$tmp/nobin" /bin/sh scripts/speech_standin.sh "$tmp/sd3" 2
    [ ! -e "$tmp/sd3" ] && ! ls -d "$tmp"/sd3.partial.* >/dev/null 2>&1 && ok "speech_standin: a refused run leaves nothing" \
        || fail "speech_standin: a refused run leaves nothing" "$(ls -d "$tmp"/sd3* 2>&1)"
fi

# ---- MEGA and SeqBoat: the configs train, evaluate and generate; bad keys are refused ----
for m in mega seqboat; do
    if "$seqlab" train configs/enwik8-hour/$m.yaml --dataset text --data "$tmp/corpus.txt" --tgt_len 64 \
           --batch_size 2 --max_step 3 --eval_interval 0 --eval_max_batches 2 --threads 1 --out "$tmp/$m" \
           >"$tmp/$m.out" 2>&1 && "$seqlab" sample --run "$tmp/$m" --prompt "the cat " --tokens 40 --seed 3 >"$tmp/$m.sample" 2>&1 \
       && [ "$(wc -c <"$tmp/$m.sample")" -ge 30 ]; then ok "$m: train, evaluate and sample (recurrent step)"
    else fail "$m: train, evaluate and sample (recurrent step)" "$(tail -3 "$tmp/$m.out" "$tmp/$m.sample")"; fi
done
# the LRA configs at their lengths and widths on a generated ListOps-format file (2 steps of 2)
awk 'BEGIN { srand(5); print "Source\tTarget"; for (i = 0; i < 6; i++) { s = "";
             n = 400 + int(rand() * 1500); for (j = 0; j < n; j++) s = s (j % 3 ? int(rand() * 10) : "[MAX") " ";
             print s "\t" int(rand() * 10) } }' > "$tmp/listops.tsv"
for m in mega seqboat; do
    if "$seqlab" train configs/lra/$m/listops.yaml --train_file "$tmp/listops.tsv" --valid_file "$tmp/listops.tsv" \
           --test_file "" --batch_size 2 --max_step 2 --eval_interval 0 --threads 1 --out "$tmp/lra-$m" \
           >"$tmp/lra-$m.out" 2>&1 && grep -q '"split": "valid"' "$tmp/lra-$m/metrics.jsonl"; then ok "$m: the LRA ListOps config runs"
    else fail "$m: the LRA ListOps config runs" "$(tail -3 "$tmp/lra-$m.out")"; fi
done
expect_error "seqboat: local_pos without a window" "local_pos.*chunk_size" \
    "$seqlab" train configs/enwik8-hour/seqboat.yaml --dataset text --data "$tmp/corpus.txt" --mixer.chunk_size 0 \
    --mixer.local_pos true --max_step 1 --out "$tmp/bad"
expect_error "mega: simple bias shorter than the span" "max_positions" \
    "$seqlab" train configs/enwik8-hour/mega.yaml --dataset text --data "$tmp/corpus.txt" --mixer.rel_pos simple \
    --mixer.chunk_size 0 --mixer.max_positions 16 --tgt_len 64 --max_step 1 --out "$tmp/bad"
expect_error "mega: unknown attention function" "attention.*softmax.*relu2.*laplace|laplace" \
    "$seqlab" train configs/enwik8-hour/mega.yaml --dataset text --data "$tmp/corpus.txt" --mixer.attention sigmoid \
    --max_step 1 --out "$tmp/bad"

# ---- bf16 against fp32: the demo's model and data, a shorter run ----
# bf16 rounds the products' inputs to 8 significant bits; over a training run
# that is noise well under the 1% the two validation losses may differ by.
if [ -f "$shared/tinyshakespeare/input.txt" ] && "$seqlab" bench --arch sf --d_model 64 --n_head 2 --tgt_len 32 \
       --batch_size 2 --steps 1 --gen_tokens 0 --precision bf16 >/dev/null 2>&1; then
    for p in fp32 bf16; do
        "$seqlab" train configs/shakespeare.yaml --data "$shared/tinyshakespeare/input.txt" --dataset text \
            --max_step 150 --warmup_step 20 --eval_interval 150 --eval_max_batches 20 --precision $p \
            --out "$tmp/demo_$p" >"$tmp/demo_$p.out" 2>&1
    done
    v32=$(grep '"split": "valid"' "$tmp/demo_fp32/metrics.jsonl" | tail -1 | sed 's/.*"loss": \([^,]*\),.*/\1/')
    v16=$(grep '"split": "valid"' "$tmp/demo_bf16/metrics.jsonl" | tail -1 | sed 's/.*"loss": \([^,]*\),.*/\1/')
    if [ -n "$v32" ] && [ -n "$v16" ] && awk -v a="$v32" -v b="$v16" 'BEGIN { d = a - b; if (d < 0) d = -d; exit !(d <= 0.01 * a) }'
    then ok "bf16 training reaches the fp32 validation loss within 1% ($v16 vs $v32)"
    else fail "bf16 training against fp32" "valid loss bf16 '$v16', fp32 '$v32'; $(tail -2 "$tmp/demo_bf16.out")"; fi
else skip "bf16 training against fp32" "no bf16 products on this machine, or no tiny shakespeare in $shared"; fi

finish
