#!/usr/bin/env bash
# Regenerates this experiment from the trained default MiniGPT and MiniLlama with miniquant's
# own CLI: per model minigpt-default/ and minillama-default/ (results.json, pareto.png,
# verb_tense_accuracy.png, roofline.json, roofline_overlay.png, manifest.json), and
# architectures.png, the two side by side. Run from anywhere.
set -euo pipefail
cd "$(dirname "$0")/../.."
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j"$(nproc)" --target miniquant_cli >/dev/null
[ -f data/corpus/train.txt ] || ./build/miniquant corpus --out data/corpus
[ -f models/minigpt-default.gguf ] ||
    ./build/miniquant train --config default --out models/minigpt-default.gguf
[ -f models/minillama-default.gguf ] ||
    ./build/miniquant train --config default --arch llama --out models/minillama-default.gguf
./build/miniquant experiment quant-curve --model models/minigpt-default.gguf \
    --model models/minillama-default.gguf --out experiments/26-quant-curve
