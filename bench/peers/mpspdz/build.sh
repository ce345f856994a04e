#!/usr/bin/env bash
# Builds MP-SPDZ's replicated-ring party (the CPU peer of issue 14) in the given source tree (the public repository
# data61/MP-SPDZ; commit 3a0a7b1 for the figures in bench/results/latency.md) and puts this folder's programs and
# run_bench.sh beside it. About 8 minutes on 2 cores. Needs the Debian packages:
#   clang libboost-dev libboost-system-dev libboost-filesystem-dev libboost-iostreams-dev libboost-thread-dev
#   libgmp-dev libsodium-dev libssl-dev libntl-dev automake libtool yasm
# usage: build.sh MPSPDZ_DIR
set -euo pipefail
mp=$1
here=$(cd "$(dirname "$0")" && pwd)
cd "$mp"
echo "ARCH = -march=native" > CONFIG.mine
make -j"$(nproc)" replicated-ring-party.x
Scripts/setup-ssl.sh 3
cp "$here"/bench_*.mpc Programs/Source/
cp "$here"/run_bench.sh .
mkdir -p Player-Data
# inputs: party 0 the values (ReLU, LeNet's image), party 1 the matmul's second operand; plain numbers
python3 -c 'import random; random.seed(1); print(" ".join(str(random.uniform(-1, 1)) for _ in range(1_100_000)))' \
  > Player-Data/Input-P0-0
cp Player-Data/Input-P0-0 Player-Data/Input-P1-0
for prog in "bench_relu 1000000 20 63" "bench_lenet 1" "bench_lenet 64" "bench_matmul 512"; do
  ./compile.py -E ring -b 100000 $prog
done
