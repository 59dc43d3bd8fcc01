#!/bin/sh
# Gets a dataset into ./data (or $SEQLAB_DATA_OUT): a local copy when there is
# one ($SEQLAB_DATA, then ../shared/data), otherwise a download from the
# public source; the file's sha256 is checked either way.
#   scripts/getdata.sh shakespeare
set -eu

dest=${SEQLAB_DATA_OUT:-data}

fetch() { # name relative-path url sha256
    name=$1 rel=$2 url=$3 sum=$4
    out="$dest/$rel"
    if [ -f "$out" ] && echo "$sum  $out" | sha256sum -c --status; then
        echo "getdata: $name: $out is present"
        return 0
    fi
    mkdir -p "$(dirname "$out")"
    for root in ${SEQLAB_DATA:-} ../shared/data; do
        if [ -f "$root/$rel" ]; then
            cp "$root/$rel" "$out.part"
            break
        fi
    done
    if [ ! -f "$out.part" ]; then
        echo "getdata: $name: downloading $url"
        if command -v curl >/dev/null 2>&1; then curl -fsSL -o "$out.part" "$url"
        elif command -v wget >/dev/null 2>&1; then wget -q -O "$out.part" "$url"
        else echo "getdata: neither curl nor wget is installed" >&2; exit 1
        fi
    fi
    if ! echo "$sum  $out.part" | sha256sum -c --status; then
        rm -f "$out.part"
        echo "getdata: $name: sha256 mismatch for $rel (expected $sum)" >&2
        exit 1
    fi
    mv "$out.part" "$out"
    echo "getdata: $name: $out ready"
}

case "${1:-}" in
shakespeare)
    fetch "tiny shakespeare" tinyshakespeare/input.txt \
        https://raw.githubusercontent.com/karpathy/char-rnn/master/data/tinyshakespeare/input.txt \
        86c4e6aa9db7c042ec79f339dcb96d42b0075e16b8fc2e86bf0ca57e2dc565ed
    ;;
*)
    echo "usage: scripts/getdata.sh shakespeare" >&2
    exit 2
    ;;
esac
