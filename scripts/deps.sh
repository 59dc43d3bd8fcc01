#!/bin/sh
# Makes sure the Debian packages seqlab needs are installed. As root it
# installs what is missing with apt-get; otherwise it prints the command and
# fails. Extra packages can be asked for: scripts/deps.sh python3-torch
set -eu

# libopenmpi-dev, openmpi-bin: MPI data parallelism (mpirun -np N seqlab train ...);
# libdnnl-dev: oneDNN, the default GEMM backend (libopenblas-openmp-dev for `make GEMM=openblas`);
# liblapacke-dev: the HiPPO eigenvectors of S5's initialisation; libfftw3-dev: long convolutions;
# libpng-dev: Pathfinder's images; libsndfile1-dev: Speech Commands' WAV files; espeak-ng, sox: the spoken-digit
# stand-in for Speech Commands (scripts/speech_standin.sh)
need="gcc make pkg-config libopenmpi-dev openmpi-bin libdnnl-dev libyaml-dev libpcre2-dev liblapacke-dev libfftw3-dev libpng-dev libsndfile1-dev espeak-ng sox $*"
missing=""
for pkg in $need; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing="$missing $pkg"
done
[ -z "$missing" ] && exit 0

if [ "$(id -u)" = 0 ]; then
    echo "seqlab: installing$missing"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends $missing
else
    echo "seqlab: missing Debian packages:$missing" >&2
    echo "install them with:  sudo apt-get install -y$missing" >&2
    exit 1
fi
