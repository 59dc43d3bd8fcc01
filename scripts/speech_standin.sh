#!/bin/sh
# speech_standin.sh — a spoken-digit stand-in for Speech Commands (Warden 2018,
# v0.02), made on this machine with espeak-ng and sox, in the release's layout
# (docs/data.md "Speech Commands"):
#
#   OUT_DIR/zero/ ... OUT_DIR/nine/     16 kHz mono 16-bit WAV files of exactly 1 s,
#                                       named <voice>_<speed>_<pitch>_<k>.wav
#   OUT_DIR/validation_list.txt         lines "<digit>/<file>.wav"
#   OUT_DIR/testing_list.txt            (training: every file in neither list)
#
# Clip i of a digit uses the combination j = i mod C of a voice (7 English
# accents x 8 espeak-ng variants = 56), a speed (5) and a pitch (9): voice j mod
# 56, speed j mod 5, pitch j mod 9 (56, 5 and 9 are coprime, so the C = 2520
# values of j are every combination once, and the first few hundred already
# spread over every voice, speed and pitch); k = i div C counts repeats. espeak-ng
# speaks the digit's name, sox trims the silence around the word, resamples to
# 16 kHz and normalises its peak to -1..-8 dB, then shifts the word inside the
# second and mixes in a quiet 1 s piece of white or pink noise (noise made once
# with a fixed seed). Peak, shift, noise piece and level follow from a hash of
# (digit, j, k): the same command writes the same bytes (for the same espeak-ng
# and sox versions, recorded in OUT_DIR/README.txt).
#
# The split is by combination j, the same for every digit: in each block of ten
# consecutive j one goes to validation, one to testing (positions rotating from
# block to block), so 10% / 10% of the clips, and a validation or test clip never
# shares its voice, speed and pitch with a training clip (repeats k of one
# combination stay in one split). With COUNT_PER_DIGIT >= 3 every split is
# non-empty (j = 0 train, 1 validation, 2 test).
#
# Usage: scripts/speech_standin.sh OUT_DIR [COUNT_PER_DIGIT]   (default 500)
# Environment: JOBS (parallel workers, default 2).
# The folder is built as OUT_DIR.partial.<pid> and renamed at the end; OUT_DIR
# must not exist yet.
set -eu

die() {
    echo "speech_standin: $*" >&2
    exit 1
}

usage() {
    echo "usage: scripts/speech_standin.sh OUT_DIR [COUNT_PER_DIGIT]" >&2
    echo "  e.g. scripts/speech_standin.sh data/speech_digits   (10 x 500 clips, 160 MB, about a minute on 2 cores)" >&2
    exit 2
}

if [ $# -lt 1 ] || [ $# -gt 2 ]; then usage; fi
case $1 in -h | --help) usage ;; esac
out=$1
while [ "${out%/}" != "$out" ] && [ "${out%/}" != "" ]; do out=${out%/}; done
count=${2:-500}
jobs=${JOBS:-2}
case $count in '' | *[!0-9]*) die "COUNT_PER_DIGIT must be a positive integer, not '$count'" ;; esac
case $jobs in '' | *[!0-9]*) die "JOBS must be a positive integer, not '$jobs'" ;; esac
[ "$count" -ge 1 ] || die "COUNT_PER_DIGIT must be at least 1"
[ "$jobs" -ge 1 ] || die "JOBS must be at least 1"
for tool in espeak-ng sox soxi; do
    command -v "$tool" >/dev/null 2>&1 ||
        die "'$tool' is missing: install espeak-ng and sox (Debian/Ubuntu: apt-get install espeak-ng sox)"
done
[ ! -e "$out" ] || die "'$out' already exists: remove it or name a new folder"

digits="zero one two three four five six seven eight nine"
accents="en en-us en-gb-x-rp en-gb-scotland en-gb-x-gbclan en-gb-x-gbcwmd en-029"
variants="- m1 m3 m7 f2 f3 f4 klatt" # "-": the accent's own voice
speeds="130 155 180 205 230"         # words per minute (espeak-ng -s)
pitches="20 28 36 44 52 60 68 76 84" # espeak-ng -p, 0..99
n_acc=7 n_var=8 n_speed=5 n_pitch=9
n_voice=$((n_acc * n_var))
n_comb=$((n_voice * n_speed * n_pitch))
rate=16000 # samples per clip too: 1 s

# espeak-ng silently falls back to its default voice on an unknown name, which
# would make two "different" voices the same audio: check every name first.
have_langs=$(espeak-ng --voices=en | awk 'NR > 1 { print $2 }')
have_vars=$(espeak-ng --voices=variant | awk 'NR > 1 { print $5 }')
for a in $accents; do
    echo "$have_langs" | grep -qx -- "$a" || die "espeak-ng has no voice '$a' (see espeak-ng --voices=en)"
done
for v in $variants; do
    [ "$v" = - ] || echo "$have_vars" | grep -qx -- "!v/$v" ||
        die "espeak-ng has no variant '$v' (see espeak-ng --voices=variant)"
done

# nth N WORDS...: the N-th (0-based) of the words, into $nth.
nth() {
    _n=$1
    shift
    shift "$_n"
    nth=$1
}

# combo J K: sets voice, speed, pitch and name of combination J, repeat K.
combo() {
    _v=$(($1 % n_voice))
    nth $((_v % n_acc)) $accents
    voice=$nth
    nth $((_v / n_acc)) $variants
    [ "$nth" = - ] || voice=$voice+$nth
    nth $(($1 % n_speed)) $speeds
    speed=$nth
    nth $(($1 % n_pitch)) $pitches
    pitch=$nth
    name=${voice}_${speed}_${pitch}_$2.wav
}

# split_of J: train, valid or test, into $split (see the opening comment).
split_of() {
    _b=$(($1 / 10)) _p=$(($1 % 10))
    if [ "$_p" -eq $(((3 * _b + 1) % 10)) ]; then
        split=valid
    elif [ "$_p" -eq $(((7 * _b + 2) % 10)) ]; then
        split="test"
    else
        split=train
    fi
}

# next_hash: steps the 31-bit LCG in $h and leaves 15 fresh bits in $r.
next_hash() {
    h=$(((h * 1103515245 + 12345) % 2147483648))
    r=$((h / 65536))
}

# clip D WORD I: writes clip I of digit D (WORD) into $tmp/WORD.
clip() {
    _j=$(($3 % n_comb)) _k=$(($3 / n_comb))
    combo "$_j" "$_k"
    h=$(($1 * 1000003 + _j * 7919 + _k * 104729 + 1))
    next_hash
    next_hash
    peak=$((1 + r % 8))
    next_hash
    noise=$((r % 16))
    next_hash
    level=$(printf '0.%03d' $((5 * (1 + r % 10)))) # 0.005 .. 0.050 of the noise piece
    next_hash
    espeak-ng -v "$voice" -s "$speed" -p "$pitch" --stdout "$2" |
        sox -R -D -t wav - "$scratch" silence 1 0.005 0.3% reverse silence 1 0.005 0.3% reverse \
            gain -6 rate "$rate" norm "-$peak" # gain: room for the resampler's overshoot
    len=$(soxi -s "$scratch")
    lead=0 # samples of silence before the word
    [ "$len" -ge "$rate" ] || lead=$((r % (rate - len + 1)))
    sox -R -D -M "$scratch" "$work/noise$noise.wav" -b 16 "$tmp/$2/$name" \
        delay "${lead}s" remix -m 1v1,2v"$level" trim 0 "${rate}s"
}

# worker W: the clips whose running number is W modulo $jobs.
worker() {
    scratch=$work/word$1.wav
    _d=0 _n=0
    for _word in $digits; do
        _i=0
        while [ "$_i" -lt "$count" ]; do
            [ $((_n % jobs)) -ne "$1" ] || clip "$_d" "$_word" "$_i"
            _i=$((_i + 1)) _n=$((_n + 1))
        done
        _d=$((_d + 1))
    done
}

start=$(date +%s)
tmp=$out.partial.$$
work=$tmp/.work
trap 'rm -rf "$tmp"' EXIT
trap 'exit 130' INT TERM
mkdir -p "$work"
for word in $digits; do mkdir "$tmp/$word"; done

# Sixteen 1 s noise pieces, eight white and eight pink, from seeded sox (-R).
sox -R -n -r "$rate" -b 16 -c 1 "$work/white.wav" synth 8 whitenoise
sox -R -n -r "$rate" -b 16 -c 1 "$work/pink.wav" synth 8 pinknoise
m=0
while [ $m -lt 8 ]; do
    sox -R "$work/white.wav" "$work/noise$m.wav" trim $((m * rate))s "${rate}s"
    sox -R "$work/pink.wav" "$work/noise$((m + 8)).wav" trim $((m * rate))s "${rate}s"
    m=$((m + 1))
done

pids=
w=0
while [ $w -lt "$jobs" ]; do
    worker $w &
    pids="$pids $!"
    w=$((w + 1))
done
failed=0
for pid in $pids; do wait "$pid" || failed=1; done
[ $failed -eq 0 ] || die "making the clips failed (messages above); nothing written to '$out'"

: >"$work/valid"
: >"$work/test"
for word in $digits; do
    i=0 n_valid=0 n_test=0
    while [ $i -lt "$count" ]; do
        combo $((i % n_comb)) $((i / n_comb))
        split_of $((i % n_comb))
        case $split in
        valid)
            echo "$word/$name" >>"$work/valid"
            n_valid=$((n_valid + 1))
            ;;
        test)
            echo "$word/$name" >>"$work/test"
            n_test=$((n_test + 1))
            ;;
        esac
        i=$((i + 1))
    done
    echo "  $word/: $count clips (train $((count - n_valid - n_test)), validation $n_valid, test $n_test)"
done
LC_ALL=C sort "$work/valid" >"$tmp/validation_list.txt"
LC_ALL=C sort "$work/test" >"$tmp/testing_list.txt"
{
    echo "A spoken-digit stand-in for Speech Commands v0.02, made by scripts/speech_standin.sh (seqlab)."
    echo "Command: scripts/speech_standin.sh OUT_DIR $count"
    echo "Tools: $(espeak-ng --version | sed -n '1s/ *Data at.*//p'); $(sox --version | sed -n '1s/^sox: *//p')"
    echo "Clips: 10 digits x $count, 16 kHz mono 16-bit PCM, 16000 samples each."
    echo "Voices: accents ($accents) x variants ($variants); speeds ($speeds); pitches ($pitches)."
} >"$tmp/README.txt"
rm -rf "$work"
mv "$tmp" "$out"
trap - EXIT
n_valid=$(wc -l <"$out/validation_list.txt")
n_test=$(wc -l <"$out/testing_list.txt")
echo "speech_standin: wrote $((10 * count)) clips to $out/ (zero/ .. nine/), validation_list.txt ($n_valid lines)," \
    "testing_list.txt ($n_test lines) and README.txt in $(($(date +%s) - start)) s"
