#!/bin/sh
# The seven FMMformer seed configs (configs/fmmformer/) for STEPS training
# steps under two seqlab binaries, loss lines compared bit for bit: the check
# that a refactoring left the seed models' numerics untouched. The data is a
# stand-in WikiText-103 (WikiText-2's valid split as train, its test split as
# valid and test; ../shared/data or $SEQLAB_DATA) with the adaptive softmax
# cutoffs scaled to its vocabulary, and a smaller batch so that it runs in
# minutes; both binaries see exactly the same command lines.
#   tests/ref/fmm_seed_bitwise.sh OLD_SEQLAB NEW_SEQLAB
set -eu
old=$1 new=$2 STEPS=${STEPS:-20}
cd "$(dirname "$0")/../.."
shared=${SEQLAB_DATA:-../shared/data}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
"$new" data prepare --dataset wikitext-103 --train_file "$shared/wikitext-2/wiki.valid.tokens" \
    --valid_file "$shared/wikitext-2/wiki.test.tokens" --test_file "$shared/wikitext-2/wiki.test.tokens" \
    --out "$tmp/wt" >/dev/null 2>&1
status=0
for cfg in configs/fmmformer/softmax.yaml configs/fmmformer/linear.yaml configs/fmmformer/band5.yaml \
           configs/fmmformer/band20.yaml configs/fmmformer/fmm-1kernel-band5.yaml \
           configs/fmmformer/fmm-1kernel-band20.yaml configs/fmmformer/fmm-2kernel-band20.yaml; do
    name=$(basename "$cfg" .yaml)
    for which in old new; do
        bin=$old
        [ "$which" = new ] && bin=$new
        "$bin" train "$cfg" --data "$tmp/wt" --cutoffs 2000,6000 --batch_size 8 --max_step "$STEPS" --log_interval 1 \
            --eval_interval 0 --eval_max_batches 1 --threads 2 --out "$tmp/$name-$which" >/dev/null 2>"$tmp/$name-$which.err" \
            || { echo "$name ($which): failed: $(tail -1 "$tmp/$name-$which.err")"; status=1; }
        grep '"kind": "train"' "$tmp/$name-$which/metrics.jsonl" | sed 's/.*"step": \([0-9]*\), "loss": \([^,]*\),.*/\1 \2/' \
            > "$tmp/$name-$which.loss"
    done
    if [ -s "$tmp/$name-old.loss" ] && cmp -s "$tmp/$name-old.loss" "$tmp/$name-new.loss"; then
        echo "$name: $(wc -l < "$tmp/$name-new.loss") loss lines identical (step $STEPS loss $(tail -1 "$tmp/$name-new.loss" | cut -d' ' -f2))"
    else
        echo "$name: DIFFERENT"; paste "$tmp/$name-old.loss" "$tmp/$name-new.loss" | head -5; status=1
    fi
done
exit $status
