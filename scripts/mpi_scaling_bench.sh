#!/usr/bin/env bash
# 1 rank against 2 ranks, one thread each (SCALING.md): the ViT demo task for one epoch and 12
# SmolLM2 steps; rank 0 ends each run with the all-reduce count, bytes and times. Needs OpenMPI,
# the assets (`cargo xtask assets vit vtab llm llm-data`), and the cores to itself.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release -p wegeft-vision --bin train-vit --features flex,mpi
cargo build --release -p wegeft-llm --bin train-llm --features flex,mpi
bin="${CARGO_TARGET_DIR:-target}/release"
out="$(mktemp -d)"
root=""; [ "$(id -u)" = 0 ] && root="--allow-run-as-root"
for ranks in 1 2; do
    mpirun $root -n "$ranks" "$bin/train-vit" --tasks cats_dogs --epochs 1 --warmup-epochs 0 --threads 1 --out "$out/vit$ranks" > "$out/vit$ranks.log" 2>&1
    grep -h "train img/s\|^MPI:" "$out/vit$ranks.log"
    mpirun $root -n "$ranks" "$bin/train-llm" --train-limit 96 --eval-limit 4 --max-new-tokens 8 --threads 1 --out "$out/llm$ranks" > "$out/llm$ranks.log" 2>&1
    grep -h "exact match .*->\|^MPI:" "$out/llm$ranks.log"
done
echo "runs and logs: $out"
