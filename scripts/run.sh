#!/usr/bin/env bash
# Sets up miniquant's packages, builds it, and runs the main job: `miniquant run` (corpus,
# tokenizer, training when no model exists, every experiment). Extra arguments go to it.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j"$(nproc)" --target miniquant_cli
exec ./build/miniquant run "$@"
