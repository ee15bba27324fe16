/* miniquant: the command-line interface. Each subcommand lives in its own cmd_*.c file. */
#include <stdio.h>
#include <string.h>

#include "cli.h"

static const mq_command_t COMMANDS[] = {
    {"run", "the main job: corpus, tokenizer, training (once), every result", cmd_run},
    {"corpus", "build the WordNet corpus and its train/valid/test split", cmd_corpus},
    {"tokenizer", "train a BPE tokenizer; encode and decode with a GGUF's (BPE or SentencePiece)", cmd_tokenizer},
    {"train", "train MiniGPT or MiniLlama (tiny or default preset), resumable", cmd_train},
    {"synth", "a real model's shape (TinyLlama-1.1B, GPT-2 small) with random weights", cmd_synth},
    {"quantize", "quantize a model's Linear layers; per-layer error and bytes", cmd_quantize},
    {"pairs", "build the verb-tense minimal pairs, write them as BLiMP jsonl", cmd_pairs},
    {"experiment", "regenerate an experiment directory (int8-ptq, gguf-export, quant-curve)", cmd_experiment},
    {"eval", "perplexity of a model on the test split (default or llamacpp protocol)", cmd_eval},
    {"export", "quantize a model into a GGUF file (Q8_0/Q4_0 run in llama.cpp)", cmd_export},
    {"generate", "text from a model, KV-cached and sampled, with llama-cli's timings", cmd_generate},
    {"sweep", "every scheme measured: perplexity, verb-tense, bytes; the Pareto plot", cmd_sweep},
    {"bench", "benchmark the fused kernels and decoding against FP32", cmd_bench},
    {"roofline", "this machine's ceilings and a decode step per scheme on the roofline", cmd_roofline},
    {"gptq-toy", "GPTQ vs round to nearest on one synthetic layer (26-gptq-toy)", cmd_gptq_toy},
};

static void usage(FILE *fp) {
    fprintf(fp, "miniquant %s: weights-only post-training quantization of GPT models\n\n"
                "usage: miniquant <command> [options]   (miniquant <command> --help)\n\n"
                "commands:\n",
            MQ_VERSION);
    for (size_t i = 0; i < sizeof COMMANDS / sizeof COMMANDS[0]; i++)
        fprintf(fp, "  %-12s %s\n", COMMANDS[i].name, COMMANDS[i].summary);
}

int main(int argc, char **argv) {
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
        usage(stdout);
        return 0;
    }
    if (!strcmp(argv[1], "--version")) {
        printf("miniquant %s\n", MQ_VERSION);
        return 0;
    }
    for (size_t i = 0; i < sizeof COMMANDS / sizeof COMMANDS[0]; i++)
        if (!strcmp(argv[1], COMMANDS[i].name)) return COMMANDS[i].run(argc - 1, argv + 1);
    fprintf(stderr, "miniquant: unknown command '%s'\n\n", argv[1]);
    usage(stderr);
    return 2;
}
