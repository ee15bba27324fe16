#!/usr/bin/env bash
# Regenerates this experiment: serving speed, miniquant against llama.cpp on the same files.
# Makes (when absent) the default MiniGPT's files and a GPT-2-small-shaped model with random
# weights, each stored as F32, F16, Q8_0, Q4_0 and the K-quants (models/serve/), then runs
# `miniquant bench serve` on all of them with 2 threads: table.md (stdout) and results.json
# (with the manifest). Set LLAMA_CPP_BIN to the folder of llama.cpp's binaries (llama-bench;
# built by hand outside this repository) for llama-bench's numbers beside miniquant's; without
# it only miniquant's are measured; set LLAMA_CPP_AVX2_BIN to an AVX2-only llama.cpp's for the
# AVX2 kernels' table (avx2/). Run from anywhere, on an otherwise idle machine.
set -euo pipefail
cd "$(dirname "$0")/../.."
out=experiments/26-serve
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j"$(nproc)" --target miniquant_cli >/dev/null
[ -f data/corpus/train.txt ] || ./build/miniquant corpus --out data/corpus
[ -f models/minigpt-default.gguf ] ||
    ./build/miniquant train --config default --out models/minigpt-default.gguf
mkdir -p models/serve
[ -f models/serve/gpt2-small-f32.gguf ] ||
    ./build/miniquant synth --shape gpt2-small --out models/serve/gpt2-small-f32.gguf
# scheme, and the GGUF type its Linears are stored as
schemes="fp32:f32 fp16:f16 int8_g32:q8_0 int4_g32:q4_0 q2_k:q2_k q3_k:q3_k q4_k:q4_k q5_k:q5_k q6_k:q6_k"
files=()
for model in minigpt-default serve/gpt2-small; do
    src=models/$model.gguf
    [ "$model" = serve/gpt2-small ] && src=models/serve/gpt2-small-f32.gguf
    name=$(basename "$model")
    for pair in $schemes; do
        scheme=${pair%%:*} type=${pair##*:}
        file=models/serve/$name-$type.gguf
        if [ "$src" != "$file" ] && [ ! -f "$file" ]; then
            ./build/miniquant export --model "$src" --scheme "$scheme" --out "$file" >/dev/null
        fi
        files+=(--model "$file")
    done
done
./build/miniquant bench serve "${files[@]}" --threads 2 --reps 5 --json "$out/results.json" \
    | tee "$out/table.md"
# the two formats with int8 activations: FP32 activations throughout (MQ_VNNI=0), and int8 ones
# in decode too (MQ_VNNI=1), against the default above (int8 in the prompt only)
q80q40=(--model models/serve/minigpt-default-q8_0.gguf --model models/serve/minigpt-default-q4_0.gguf
        --model models/serve/gpt2-small-q8_0.gguf --model models/serve/gpt2-small-q4_0.gguf)
for v in 0 1; do
    MQ_VNNI=$v ./build/miniquant bench serve "${q80q40[@]}" --threads 2 --reps 5 \
        --json "$out/results-vnni$v.json" | tee "$out/table-vnni$v.md"
done
# the K-quants on GPT-2-small with int8 activations in the prompt only (MQ_VNNI=prompt, FP32
# ones in decode), against the default above (int8 in their decode too)
kq=()
for t in q2_k q3_k q4_k q5_k q6_k; do kq+=(--model models/serve/gpt2-small-$t.gguf); done
MQ_VNNI=prompt ./build/miniquant bench serve "${kq[@]}" --threads 2 --reps 5 \
    --json "$out/results-vnni-prompt.json" | tee "$out/table-vnni-prompt.md"
# the kernels against ggml's on test-backend-ops' MUL_MAT cases (runs it first: about half an
# hour on 2 cores), with LLAMA_CPP_BIN only
if [ -n "${LLAMA_CPP_BIN:-}" ]; then
    ./build/miniquant bench mulmat --threads 2 --reps 5 --json "$out/mulmat.json" | tee "$out/mulmat.md"
fi
# the plot of the serve table's ratios, from its results
./build/miniquant bench serve --from "$out/results.json" --plot "$out/serve.png"
# the same table with the AVX2 kernels (MQ_KERNEL=avx2, as on a CPU without AVX-512) against a
# llama.cpp built for AVX2 alone (cmake -DGGML_NATIVE=OFF -DGGML_AVX512=OFF; its bin folder in
# LLAMA_CPP_AVX2_BIN), when that is set
if [ -n "${LLAMA_CPP_AVX2_BIN:-}" ]; then
    mkdir -p "$out/avx2"
    MQ_KERNEL=avx2 LLAMA_CPP_BIN=$LLAMA_CPP_AVX2_BIN ./build/miniquant bench serve "${files[@]}" \
        --threads 2 --reps 5 --json "$out/avx2/results.json" | tee "$out/avx2/table.md"
    ./build/miniquant bench serve --from "$out/avx2/results.json" --plot "$out/avx2/serve.png"
fi
