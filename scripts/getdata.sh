#!/bin/sh
# Gets a dataset into ./data (or $SEQLAB_DATA_OUT), laid out as seqlab looks
# for it (src/data/datasets.h): a local copy when there is one ($SEQLAB_DATA,
# then ../shared/data), otherwise a download from its public source, as the
# seeds' getdata.sh scripts fetch them. Every file is checked: by sha256 where
# the standard file's digest is known, else by its size and what it starts
# with (the digest found is printed so it can be compared with the source).
#   scripts/getdata.sh shakespeare | enwik8 | text8 | wikitext-2 | wikitext-103 | wikitext-103-raw | gpt2
#                      | glue-SST-2 | glue-CoLA | glue-STS-B | glue-RTE | glue-WNLI | all
#                      | imdb | cifar10 | lra-release | lra-listops | lra-pathfinder | speech-commands
#                      | speech-standin
set -eu

dest=${SEQLAB_DATA_OUT:-data}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

say() { echo "getdata: $*"; }
die() { echo "getdata: $*" >&2; exit 1; }

# download URL FILE: 0 when FILE now holds URL's content.
download() {
    say "downloading $1"
    if command -v curl >/dev/null 2>&1; then curl -fsSL --retry 2 -o "$2" "$1" 2>/dev/null
    elif command -v wget >/dev/null 2>&1; then wget -q -O "$2" "$1"
    else die "neither curl nor wget is installed (apt-get install curl)"
    fi
}

# fetch URL FILE WHAT: download or stop with what to do instead.
fetch() {
    download "$1" "$2" || die "cannot download $1 (no network?); put $3 there yourself, or point \$SEQLAB_DATA at a copy"
}

# local REL: copies REL from the first local data root that has it to $dest/REL.
local_copy() {
    for root in ${SEQLAB_DATA:-} ../shared/data; do
        [ -n "$root" ] && [ -f "$root/$1" ] || continue
        [ "$(cd "$root" && pwd)" = "$(mkdir -p "$dest" && cd "$dest" && pwd)" ] && return 0
        mkdir -p "$(dirname "$dest/$1")"
        cp "$root/$1" "$dest/$1.part" && mv "$dest/$1.part" "$dest/$1"
        say "$1: copied from $root"
        return 0
    done
    return 1
}

check_sha() { # file sha256
    echo "$2  $1" | sha256sum -c --status || die "$1: sha256 $(sha256sum "$1" | cut -c1-64), expected $2"
}

check_size() { # file bytes
    size=$(wc -c < "$1")
    [ "$size" -eq "$2" ] || die "$1: $size bytes, expected $2"
}

check_md5() { # file md5
    echo "$2  $1" | md5sum -c --status || die "$1: md5 $(md5sum "$1" | cut -c1-32), expected $2"
}

check_count() { # folder pattern count: the folder holds exactly count files matching pattern
    n=$(find "$1" -name "$2" -type f | wc -l)
    [ "$n" -eq "$3" ] || die "$1: $n files $2, expected $3 (an incomplete copy?)"
}

# untar_to ARCHIVE DESTINATION-FOLDER: unpacks a .tar.gz (or .gz tar) archive.
untar_to() {
    mkdir -p "$2"
    tar -xzf "$1" -C "$2" || die "$1: not a complete gzip'd tar archive"
}

# local_dir REL: links a folder REL of a local data root ($SEQLAB_DATA, ../shared/data) to $dest/REL.
local_dir() {
    for root in ${SEQLAB_DATA:-} ../shared/data; do
        [ -n "$root" ] && [ -d "$root/$1" ] || continue
        mkdir -p "$(dirname "$dest/$1")"
        ln -sfn "$(cd "$root/$1" && pwd)" "$dest/$1"
        say "$1: linked from $root"
        return 0
    done
    return 1
}

check_start() { # file text
    n=$(printf '%s' "$2" | wc -c)
    [ "$(head -c "$n" "$1")" = "$2" ] || die "$1 does not start with '$2': not the expected file"
}

unzip_to() { # zip folder-in-zip destination-folder
    command -v unzip >/dev/null 2>&1 || die "unzip is not installed (apt-get install unzip)"
    unzip -q -o "$1" -d "$tmp/unzipped"
    mkdir -p "$3"
    for f in "$tmp/unzipped/$2"/*; do mv "$f" "$3/"; done
    rm -rf "$tmp/unzipped"
}

shakespeare() {
    f=tinyshakespeare/input.txt
    if [ -f "$dest/$f" ] || local_copy "$f"; then :; else
        mkdir -p "$dest/tinyshakespeare"
        fetch https://raw.githubusercontent.com/karpathy/char-rnn/master/data/tinyshakespeare/input.txt "$dest/$f.part" "$dest/$f"
        mv "$dest/$f.part" "$dest/$f"
    fi
    check_sha "$dest/$f" 86c4e6aa9db7c042ec79f339dcb96d42b0075e16b8fc2e86bf0ca57e2dc565ed
    say "shakespeare: $dest/$f ready"
}

# mahoney NAME: enwik8 or text8 from mattmahoney.net, 10^8 bytes each.
mahoney() {
    f=$1/$1
    if [ ! -f "$dest/$f" ]; then
        fetch "http://mattmahoney.net/dc/$1.zip" "$tmp/$1.zip" "$dest/$f"
        unzip_to "$tmp/$1.zip" . "$dest/$1"
    fi
    check_size "$dest/$f" 100000000
}

# enwik8: the first 10^8 bytes of the 2006 English Wikipedia dump. Its first
# 4,154,399 bytes must be the slice in shared/data (sha256 d502ac7e...).
enwik8() {
    mahoney enwik8
    head -c 4154399 "$dest/$f" > "$tmp/prefix"
    check_sha "$tmp/prefix" d502ac7ecb9dd47a062e7d19b8dcd3c753b07c142e48b13dcd521cb747116bdd
    say "enwik8: $dest/$f ready (sha256 $(sha256sum "$dest/$f" | cut -c1-64))"
}

# text8: enwik8 cleaned to a-z and space (Mahoney), 10^8 characters.
text8() {
    mahoney text8
    check_start "$dest/$f" " anarchism originated as a term of abuse"
    say "text8: $dest/$f ready (sha256 $(sha256sum "$dest/$f" | cut -c1-64))"
}

# WikiText (Merity et al. 2016), from its public mirrors. The tokenised
# WikiText-2 valid/test files are the ones in shared/data (digests below).
wikitext() { # name zip folder-in-zip extension
    dir="$dest/$1"
    for split in train valid test; do local_copy "$1/wiki.$split.$4" || true; done
    if [ ! -f "$dir/wiki.train.$4" ] || [ ! -f "$dir/wiki.valid.$4" ] || [ ! -f "$dir/wiki.test.$4" ]; then
        ok=""
        for url in "https://wikitext.smerity.com/$2" "https://s3.amazonaws.com/research.metamind.io/wikitext/$2"; do
            if download "$url" "$tmp/$2"; then ok=1; break; fi
        done
        [ -n "$ok" ] || die "cannot download $2 (no network?); put wiki.{train,valid,test}.$4 in $dir yourself"
        unzip_to "$tmp/$2" "$3" "$dir"
    fi
    check_start "$dir/wiki.valid.$4" " "
    say "$1: $dir ready"
}

wikitext2() {
    wikitext wikitext-2 wikitext-2-v1.zip wikitext-2 tokens
    check_sha "$dest/wikitext-2/wiki.valid.tokens" f0737ed31fc1329026e95cb8b98e19c2a182c39c240ab909dc31abf2f8af58e8
    check_sha "$dest/wikitext-2/wiki.test.tokens" d790b833ef8cf03a90db7bf1271b7520b83c45ce07ba3c1a9699df81e239eca0
}

# GPT-2's BPE files as OpenAI publishes them (encoder.json: 50,257 ids;
# vocab.bpe: 50,000 merges), for tokenizer: bpe. seqlab also reads Hugging
# Face's names for the same files (vocab.json, merges.txt).
gpt2() {
    mkdir -p "$dest/gpt2"
    for f in encoder.json vocab.bpe; do
        [ -f "$dest/gpt2/$f" ] || local_copy "gpt2/$f" ||
            fetch "https://openaipublic.blob.core.windows.net/gpt-2/models/124M/$f" "$dest/gpt2/$f" "$dest/gpt2/$f"
    done
    check_sha "$dest/gpt2/encoder.json" 196139668be63f3b5d6574427317ae82f612a97c5d1cdaf36ed2256dbf636783
    check_sha "$dest/gpt2/vocab.bpe" 1ce1664773c50f3e0cc8842619a93edc4624525b728b188a9e0be33b7726adc5
    say "gpt2: $dest/gpt2 ready"
}

# A GLUE task (Wang et al. 2018) as the benchmark's download_glue_data.py
# fetches it: <task>/{train,dev,test}.tsv; train and dev checked by sha256.
glue() { # task train-sha256 dev-sha256
    dir="$dest/glue/$1"
    for split in train dev test; do local_copy "glue/$1/$split.tsv" || true; done
    if [ ! -f "$dir/train.tsv" ] || [ ! -f "$dir/dev.tsv" ]; then
        fetch "https://dl.fbaipublicfiles.com/glue/data/$1.zip" "$tmp/$1.zip" "$dir/{train,dev}.tsv"
        unzip_to "$tmp/$1.zip" "$1" "$dir"
    fi
    check_sha "$dir/train.tsv" "$2"
    check_sha "$dir/dev.tsv" "$3"
    say "glue $1: $dir ready"
}

# The LRA's Text task: IMDb reviews (Maas et al. 2011), the aclImdb folder.
imdb() {
    dir="$dest/lra/aclImdb"
    if [ ! -d "$dir/train/pos" ] && ! local_dir lra/aclImdb; then
        fetch https://ai.stanford.edu/~amaas/data/sentiment/aclImdb_v1.tar.gz "$tmp/imdb.tgz" "$dir"
        check_md5 "$tmp/imdb.tgz" 7c2ac02c03563afcf9b574c7e56c153a
        untar_to "$tmp/imdb.tgz" "$dest/lra"
    fi
    for part in train/pos train/neg test/pos test/neg; do check_count "$dir/$part" "*.txt" 12500; done
    say "imdb: $dir ready"
}

# The LRA's Image task: CIFAR-10's binary version (Krizhevsky 2009).
cifar10() {
    dir="$dest/lra/cifar-10-batches-bin"
    if [ ! -f "$dir/test_batch.bin" ] && ! local_dir lra/cifar-10-batches-bin; then
        fetch https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz "$tmp/cifar.tgz" "$dir"
        check_md5 "$tmp/cifar.tgz" c32a1d4ab5d03f1284b67883e8d87530
        untar_to "$tmp/cifar.tgz" "$dest/lra"
    fi
    for f in data_batch_1 data_batch_2 data_batch_3 data_batch_4 data_batch_5 test_batch; do
        check_size "$dir/$f.bin" 30730000
    done
    say "cifar10: $dir ready"
}

# The LRA release (Tay et al. 2021; about 7.7 GB): ListOps, the AAN pairs of Retrieval and the
# Pathfinder / Path-X images, laid out under $dest/lra/lra_release as the release unpacks.
lra_release() {
    dir="$dest/lra/lra_release"
    if [ ! -d "$dir/tsv_data" ] && ! local_dir lra/lra_release; then
        fetch https://storage.googleapis.com/long-range-arena/lra_release.gz "$tmp/lra.tgz" "$dir"
        untar_to "$tmp/lra.tgz" "$dest/lra"
    fi
    for f in listops-1000/basic_train.tsv listops-1000/basic_val.tsv listops-1000/basic_test.tsv \
             tsv_data/new_aan_pairs.train.tsv tsv_data/new_aan_pairs.eval.tsv tsv_data/new_aan_pairs.test.tsv; do
        [ -s "$dir/$f" ] || die "$dir/$f is missing: not the LRA release"
    done
    check_start "$dir/listops-1000/basic_val.tsv" "Source	Target"
    [ -d "$dir/pathfinder32/curv_contour_length_14/metadata" ] || die "$dir: no pathfinder32/curv_contour_length_14/metadata"
    mkdir -p "$dest/lra"
    ln -sfn "$(cd "$dir/listops-1000" && pwd)" "$dest/lra/listops"
    ln -sfn "$(cd "$dir/pathfinder32" && pwd)" "$dest/lra/pathfinder32"
    [ -d "$dir/pathfinder128" ] && ln -sfn "$(cd "$dir/pathfinder128" && pwd)" "$dest/lra/pathfinder128"
    say "lra-release: $dir ready (listops, aan, pathfinder linked under $dest/lra)"
}

# seqlab SUBCOMMAND...: the built binary (make), for the generated data sets.
seqlab() {
    [ -x ./seqlab ] || die "./seqlab is not built: run make first"
    ./seqlab "$@"
}

# Speech Commands v0.02 (Warden 2018): 105,829 one-second clips of 35 words, 16 kHz.
speech_commands() {
    dir="$dest/speech_commands"
    if [ ! -f "$dir/testing_list.txt" ] && ! local_dir speech_commands; then
        fetch http://download.tensorflow.org/data/speech_commands_v0.02.tar.gz "$tmp/sc.tgz" "$dir"
        check_sha "$tmp/sc.tgz" af14739ee7dc311471de98f5f9d2c9191b18aedfe957f4a6ff791c709868ff58
        untar_to "$tmp/sc.tgz" "$dir"
    fi
    check_count "$dir" "*.wav" 105835
    say "speech-commands: $dir ready"
}

case "${1:-}" in
imdb) imdb ;;
cifar10) cifar10 ;;
lra-release) lra_release ;;
lra-listops) seqlab data listops --out "$dest/lra/listops" ;;
lra-pathfinder) seqlab data pathfinder --out "$dest/lra/pathfinder32" ;;
speech-commands) speech_commands ;;
speech-standin) [ -f "$dest/speech_standin/testing_list.txt" ] && say "speech-standin: $dest/speech_standin ready" || scripts/speech_standin.sh "$dest/speech_standin" ;;
glue-SST-2) glue SST-2 48eac26399f8456935f81dd9e3a745c1430adb6c62e233ccfe22db4a0d15d1d1 \
                       54a9c12c77e402fc14d6a66a506f24d999f596b0176eb777c972cccc2f9cc4b0 ;;
glue-CoLA) glue CoLA cb368ebeb9f27d7ad03720d27ddc95687a311bdb100781a2fe59a5f5b1bc0624 \
                     8c013e21dc39957cac37378d87bebe225b694a0d5fe13eded66c2856628833fd ;;
glue-STS-B) glue STS-B 41c4d978b6162abdcada7e49a982211954cca5459c228db478af333124b257a2 \
                       fe7dc0632a5033562f3cadff991f6e8d9b9b6311861660e78c3c82eb7db67f59 ;;
glue-RTE) glue RTE 41e3a9b063433392343fad9e962cf2f58b681c78d8f71592f4186f0837246c5c \
                   80230dfa1347282e7b532b06a1004a76a710087541189bf874223ddf0e3819fb ;;
glue-WNLI) glue WNLI 9a88e9d54b6861cc796a088e9acf4f5f65064a9ef65ae6fa7a688b28391e5c9a \
                     cba00490596dd14be8cf53b4f53bb744abe3a7b89f81ab210528d80225338ed5 ;;
shakespeare) shakespeare ;;
enwik8) enwik8 ;;
text8) text8 ;;
wikitext-2) wikitext2 ;;
wikitext-103) wikitext wikitext-103 wikitext-103-v1.zip wikitext-103 tokens ;;
wikitext-103-raw) wikitext wikitext-103-raw wikitext-103-raw-v1.zip wikitext-103-raw raw ;;
gpt2) gpt2 ;;
all) shakespeare; enwik8; text8; wikitext2; wikitext wikitext-103 wikitext-103-v1.zip wikitext-103 tokens ;;
*)
    echo "usage: scripts/getdata.sh shakespeare | enwik8 | text8 | wikitext-2 | wikitext-103 | wikitext-103-raw | gpt2 | glue-SST-2 | glue-CoLA | glue-STS-B | glue-RTE | glue-WNLI | all | imdb | cifar10 | lra-release | lra-listops | lra-pathfinder | speech-commands | speech-standin" >&2
    exit 2
    ;;
esac
