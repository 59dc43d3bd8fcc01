#!/bin/sh
# The demo: tiny shakespeare at character level, trained from scratch, then
# validation bpc and a 300-character sample. Run by `make demo`.
set -eu
scripts/getdata.sh shakespeare
run=runs/demo
rm -rf "$run"
./seqlab train configs/shakespeare.yaml --out "$run"
./seqlab eval --run "$run" --split valid
echo "---- sample ----"
./seqlab sample --run "$run" --prompt "ROMEO:" --tokens 300 --top_k 40 --temperature 0.8 --seed 7
