#!/usr/bin/env bash
# Regenerates this experiment (results.json, manifest.json; the .gguf files in
# models/gguf-export/) from the trained default MiniGPT, and in minillama-default/ from the
# default MiniLlama, with miniquant's own CLI. Run from anywhere.
set -euo pipefail
cd "$(dirname "$0")/../.."
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j"$(nproc)" --target miniquant_cli >/dev/null
[ -f models/minigpt-default.gguf ] || ./build/miniquant train --config default --out models/minigpt-default.gguf
./build/miniquant experiment gguf-export --model models/minigpt-default.gguf --out experiments/26-gguf-export
[ -f models/minillama-default.gguf ] ||
    ./build/miniquant train --config default --arch llama --out models/minillama-default.gguf
./build/miniquant experiment gguf-export --model models/minillama-default.gguf \
    --out experiments/26-gguf-export/minillama-default
