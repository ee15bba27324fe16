#!/usr/bin/env bash
# Regenerates this experiment (results.json, loss_curve.png, ratio_vs_samples.png,
# manifest.json): GPTQ against round to nearest on one synthetic 768 x 768 layer; needs no
# model or corpus,
# with miniquant's own CLI. Run from anywhere.
set -euo pipefail
cd "$(dirname "$0")/../.."
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j"$(nproc)" --target miniquant_cli >/dev/null
./build/miniquant gptq-toy --seed 26 --out experiments/26-gptq-toy
