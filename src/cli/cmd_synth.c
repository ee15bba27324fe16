/* miniquant synth: a real model's shape with random weights, written tensor by tensor. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "miniquant/arch.h"
#include "miniquant/checkpoint.h"
#include "miniquant/progress.h"

static const char ABOUT[] =
    "Writes a synthetic model: the shape of a real model (--shape) with random weights, FP32,\n"
    "as a GGUF file that llama.cpp and every miniquant command read. Matrices are N(0, 1/in),\n"
    "token embeddings N(0, 1), norm weights 1, so activations and logits keep a spread; the\n"
    "file is written tensor by tensor, so a model larger than memory can be made. The\n"
    "tokenizer is --tokenizer's (its vocabulary sets the model's), or a generated SentencePiece\n"
    "vocabulary of the shape's size. Shapes:\n";

int cmd_synth(int argc, char **argv) {
    const char *shape = NULL, *out = NULL, *tok_path = NULL;
    long layers = 0, seed = 0;
    int rc;
    cli_option_t opts[] = {
        {.name = "shape",
         .arg = "NAME",
         .str = &shape,
         .required = 1,
         .help = "the shape: tinyllama-1.1b or gpt2-small"},
        {.name = "out", .arg = "FILE.gguf", .str = &out, .required = 1, .help = "the model file"},
        {.name = "layers",
         .arg = "N",
         .l = &layers,
         .lo = 1,
         .hi = 1024,
         .def_text = "the shape's",
         .help = "keep only the first N layers"},
        {.name = "tokenizer",
         .arg = "FILE.gguf",
         .str = &tok_path,
         .help = "take the tokenizer of this GGUF (e.g. llama.cpp's "
                 "models/ggml-vocab-llama-spm.gguf)"},
        {CLI_OPT_SEED(&seed, "random seed"), .def_text = "1"},
        {0},
    };
    char about[2048];
    size_t at = (size_t)snprintf(about, sizeof about, "%s", ABOUT);
    for (const mq_synth_shape_t *s = mq_synth_shapes(); s->name && at < sizeof about; s++)
        at += (size_t)snprintf(about + at, sizeof about - at, "  %-15s %s\n", s->name, s->what);
    const cli_command_t cmd = {.name = "synth", .about = about, .opts = opts};
    if ((rc = cli_parse(&cmd, argc, argv, NULL)) != CLI_CONTINUE) return rc;
    const mq_synth_shape_t *sh = mq_synth_shapes();
    while (sh->name && strcmp(sh->name, shape) != 0)
        sh++;
    if (!sh->name) return cli_usage_error(&cmd, "--shape %s: no such shape", shape);
    mq_gpt_config_t cfg = sh->cfg;
    if (layers > 0) {
        if (layers > cfg.n_layer)
            return cli_usage_error(&cmd, "--layers %ld: %s has %d", layers, sh->name, cfg.n_layer);
        cfg.n_layer = (int)layers;
    }
    mq_error_t err = {0};
    mq_tokenizer_t *tok = NULL;
    rc = tok_path ? cli_load_tokenizer(tok_path, &tok, &err)
                  : mq_synth_vocabulary(cfg.vocab_size, &tok, &err);
    if (rc) return cli_fail(&err);
    cfg.vocab_size = mq_tokenizer_n_vocab(tok);
    if ((rc = cli_mkdir_parent(out, &err))) {
        mq_tokenizer_free(tok);
        return cli_fail(&err);
    }
    double t0 = mq_now();
    rc = mq_synth_write(out, &cfg, tok, seed > 0 ? (uint64_t)seed : 1, &err);
    mq_tokenizer_free(tok);
    if (rc) return cli_fail(&err);
    mq_gpt_config_defaults(&cfg);
    printf("wrote %s: %s shape, %s, %d layers, C=%d, F=%d, %d heads (%d of keys and values), "
           "%d tokens, %zu parameters (%.2f GB F32) in %.1f s\n",
           out, sh->name, mq_arch(cfg.arch)->name, cfg.n_layer, cfg.n_embd, cfg.n_ff, cfg.n_head,
           cfg.n_head_kv, cfg.vocab_size, mq_gpt_num_params(&cfg),
           (double)mq_gpt_num_params(&cfg) * 4e-9, mq_now() - t0);
    return 0;
}
