#!/usr/bin/env bash
# Regenerates this experiment (results.json, pareto.png, manifest.json; the .gguf files in
# models/vs-llamacpp/<model>/) from the trained default MiniGPT, and in minillama-default/ from
# the default MiniLlama, with miniquant's own CLI. Run from anywhere.
#
# With LLAMA_CPP_BIN set to the folder of llama.cpp's binaries (llama-imatrix, llama-quantize,
# llama-perplexity; built by hand outside this repository), llama.cpp's side is made again too
# and recorded in llamacpp.json (with LLAMA_CPP_COMMIT, the commit it was built from, when set).
# Without it, the recorded llama.cpp numbers in llamacpp.json are kept and only miniquant's
# files are made and measured again.
set -euo pipefail
cd "$(dirname "$0")/../.."
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j"$(nproc)" --target miniquant_cli >/dev/null
[ -f models/minigpt-default.gguf ] || ./build/miniquant train --config default --out models/minigpt-default.gguf
[ -f models/minillama-default.gguf ] ||
    ./build/miniquant train --config default --arch llama --out models/minillama-default.gguf
./build/miniquant experiment vs-llamacpp --model models/minigpt-default.gguf --out experiments/26-vs-llamacpp
./build/miniquant experiment vs-llamacpp --model models/minillama-default.gguf \
    --out experiments/26-vs-llamacpp/minillama-default
