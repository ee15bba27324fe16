#!/usr/bin/env bash
# Regenerates this experiment (results.json, ppl_table.png, sensitivity.png, manifest.json)
# from the trained default MiniGPT (and MiniLlama, in minillama-default/)
# with miniquant's own CLI. Run from anywhere.
set -euo pipefail
cd "$(dirname "$0")/../.."
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j"$(nproc)" --target miniquant_cli >/dev/null
[ -f data/corpus/train.txt ] || ./build/miniquant corpus --out data/corpus
[ -f models/minigpt-default.gguf ] ||
    ./build/miniquant train --config default --out models/minigpt-default.gguf
[ -f models/minillama-default.gguf ] ||
    ./build/miniquant train --config default --arch llama --out models/minillama-default.gguf
./build/miniquant experiment int8-ptq --model models/minigpt-default.gguf --out experiments/26-int8-ptq
./build/miniquant experiment int8-ptq --model models/minillama-default.gguf \
    --out experiments/26-int8-ptq/minillama-default
