#!/usr/bin/env bash
# Regenerates this experiment (results.json, ppl_table.png, sensitivity.png, manifest.json)
# from the trained default MiniGPT with miniquant's own CLI. Run from anywhere.
set -euo pipefail
cd "$(dirname "$0")/../.."
[ -x build/miniquant ] || { cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null && cmake --build build -j"$(nproc)" --target miniquant_cli; }
[ -f models/minigpt-default.gguf ] || ./build/miniquant train --config default
./build/miniquant experiment int8-ptq --model models/minigpt-default.gguf --out experiments/26-int8-ptq
