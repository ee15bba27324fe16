/* miniquant: synthetic models of real models' shapes (checkpoint.h), written as a stream. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "miniquant/arch.h"
#include "miniquant/checkpoint.h"
#include "miniquant/progress.h"
#include "miniquant/rng.h"

static const mq_synth_shape_t SHAPES[] = {
    {"tinyllama-1.1b",
     {.name = "tinyllama-1.1b",
      .vocab_size = 32000,
      .n_ctx = 2048,
      .n_embd = 2048,
      .n_head = 32,
      .n_layer = 22,
      .arch = MQ_ARCH_LLAMA,
      .n_head_kv = 4,
      .n_ff = 5632,
      .n_rot = 64,
      .rope_base = 10000.0f,
      .norm_eps = 1e-5f},
     "llama, L=22, C=2048, F=5632, 32 heads, 4 KV heads, 32,000 tokens"},
    {"gpt2-small",
     {.name = "gpt2-small",
      .vocab_size = 50257,
      .n_ctx = 1024,
      .n_embd = 768,
      .n_head = 12,
      .n_layer = 12,
      .arch = MQ_ARCH_GPT2},
     "gpt2, L=12, C=768, F=3072, 12 heads, 50,257 tokens"},
    {NULL, {.name = ""}, NULL},
};

const mq_synth_shape_t *mq_synth_shapes(void) {
    return SHAPES;
}

int mq_synth_vocabulary(int n, mq_tokenizer_t **out, mq_error_t *err) {
    *out = NULL;
    if (n < 300 || n > 1 << 22)
        return mq_error_set(err, MQ_ERR_ARG, "synthetic vocabulary: %d tokens (need 300 .. %d)", n,
                            1 << 22);
    char *text = malloc((size_t)n * 16);
    const char **tokens = malloc((size_t)n * sizeof *tokens);
    float *scores = malloc((size_t)n * sizeof *scores);
    int32_t *types = malloc((size_t)n * sizeof *types);
    if (!text || !tokens || !scores || !types) {
        free(text), free(tokens), free(scores), free(types);
        return mq_error_set(err, MQ_ERR_NOMEM, "out of memory");
    }
    int k = 0;
    static const char *const SPECIAL[3] = {"<unk>", "<s>", "</s>"};
    for (; k < 3; k++)
        tokens[k] = SPECIAL[k], types[k] = k ? MQ_TOKEN_CONTROL : MQ_TOKEN_UNKNOWN;
    for (int b = 0; b < 256; b++, k++) {
        snprintf(text + 16 * k, 16, "<0x%02X>", b);
        tokens[k] = text + 16 * k, types[k] = MQ_TOKEN_BYTE;
    }
    /* printable ASCII, then U+2581 before each, then lowercase strings of 2, 3, 4 letters, each
     * also after U+2581, until n */
    for (int c = 33; c < 127 && k < n; c++, k++) {
        snprintf(text + 16 * k, 16, "%c", c);
        tokens[k] = text + 16 * k, types[k] = MQ_TOKEN_NORMAL;
    }
    for (int c = 33; c < 127 && k < n; c++, k++) {
        snprintf(text + 16 * k, 16, "\xe2\x96\x81%c", c);
        tokens[k] = text + 16 * k, types[k] = MQ_TOKEN_NORMAL;
    }
    if (k < n) {
        tokens[k] = text + 16 * k, types[k] = MQ_TOKEN_NORMAL;
        snprintf(text + 16 * k, 16, "\xe2\x96\x81");
        k++;
    }
    for (int len = 2; k < n && len <= 4; len++) {
        int count = 1;
        for (int i = 0; i < len; i++)
            count *= 26;
        for (int i = 0; i < count && k < n; i++) {
            for (int sp = 0; sp < 2 && k < n; sp++, k++) {
                char word[8];
                for (int j = 0, v = i; j < len; j++, v /= 26)
                    word[len - 1 - j] = (char)('a' + v % 26);
                word[len] = '\0';
                snprintf(text + 16 * k, 16, "%s%s", sp ? "\xe2\x96\x81" : "", word);
                tokens[k] = text + 16 * k, types[k] = MQ_TOKEN_NORMAL;
            }
        }
    }
    /* the longer strings come later and score lower: merges prefer the common short ones */
    for (int i = 0; i < n; i++)
        scores[i] = i < 259 ? 0.0f : -(float)(i - 259) / 100.0f;
    mq_spm_config_t cfg = {.add_space_prefix = 1, .add_bos = 1, .bos = 1, .eos = 2, .unk = 0};
    int rc = k == n ? mq_tokenizer_from_spm_vocab(tokens, scores, types, n, &cfg,
                                                  "synthetic vocabulary", out, err)
                    : mq_error_set(err, MQ_ERR_ARG, "synthetic vocabulary: at most %d tokens", k);
    free(text), free(tokens), free(scores), free(types);
    return rc;
}

int mq_synth_write(const char *path, const mq_gpt_config_t *cfg_in, const mq_tokenizer_t *tok,
                   uint64_t seed, mq_error_t *err) {
    mq_gpt_config_t cfg = *cfg_in;
    mq_gpt_config_defaults(&cfg);
    int rc = mq_gpt_config_check(&cfg, err);
    if (rc) return rc;
    if (!tok || mq_tokenizer_n_vocab(tok) != cfg.vocab_size)
        return mq_error_set(err, MQ_ERR_ARG, "synth: the tokenizer has %d tokens, the model %d",
                            tok ? mq_tokenizer_n_vocab(tok) : 0, cfg.vocab_size);
    const mq_arch_t *a = mq_arch(cfg.arch);
    /* the metadata as a checkpoint's, from an empty model of one layer's shape */
    mq_gguf_t *g = mq_gguf_new();
    if (!g) return mq_error_set(err, MQ_ERR_NOMEM, "out of memory");
    rc = mq_gpt_gguf_metadata(&cfg, tok, NULL, g, err);
    size_t total = 0, max_row = 0;
    for (int p = 0; p < MQ_NUM_PARAMS && rc == MQ_OK; p++) {
        if (!a->tensor[p].gguf) continue;
        int64_t rows, cols;
        mq_arch_param_shape(&cfg, p, &rows, &cols);
        for (int l = 0; l < (a->tensor[p].stacked ? cfg.n_layer : 1) && rc == MQ_OK; l++) {
            char name[64];
            mq_arch_tensor_name(&cfg, p, l, name, sizeof name);
            int64_t ne[2] = {cols, rows};
            rc = mq_gguf_declare_tensor(g, name, MQ_GGML_F32, rows ? 2 : 1, ne, err);
            total += (size_t)(rows ? rows : 1) * (size_t)cols;
        }
        if ((size_t)cols > max_row) max_row = (size_t)cols;
    }
    mq_gguf_stream_t *s = NULL;
    if (rc == MQ_OK) rc = mq_gguf_stream_begin(g, path, &s, err);
    /* rows go out in blocks of about 4 MiB */
    size_t block = (4u << 20) / sizeof(float) / max_row + 1;
    float *buf = rc == MQ_OK ? malloc(block * max_row * sizeof *buf) : NULL;
    if (rc == MQ_OK && !buf) rc = mq_error_set(err, MQ_ERR_NOMEM, "out of memory");
    mq_progress_t pb;
    mq_progress_start(&pb, "synth", (int64_t)(total >> 20));
    size_t written = 0;
    for (int p = 0, t = 0; p < MQ_NUM_PARAMS && rc == MQ_OK; p++) {
        if (!a->tensor[p].gguf) continue;
        int64_t rows, cols;
        mq_arch_param_shape(&cfg, p, &rows, &cols);
        int init = a->tensor[p].init;
        float std = p == MQ_P_WTE ? 1.0f : 1.0f / sqrtf((float)cols);
        for (int l = 0; l < (a->tensor[p].stacked ? cfg.n_layer : 1) && rc == MQ_OK; l++, t++) {
            mq_rng_t r;
            mq_rng_seed(&r, seed * 1000003u + (uint64_t)t);
            for (int64_t r0 = 0; r0 < (rows ? rows : 1) && rc == MQ_OK; r0 += (int64_t)block) {
                int64_t nr = (rows ? rows : 1) - r0 < (int64_t)block ? (rows ? rows : 1) - r0
                                                                     : (int64_t)block;
                size_t n = (size_t)nr * (size_t)cols;
                for (size_t i = 0; i < n; i++)
                    buf[i] = init == MQ_INIT_ONES    ? 1.0f
                             : init == MQ_INIT_ZEROS ? 0.0f
                                                     : std * mq_rng_normal(&r);
                rc = mq_gguf_stream_write(s, buf, n * sizeof *buf, err);
                written += n;
                mq_progress_update(&pb, (int64_t)(written >> 20), NULL);
            }
        }
    }
    free(buf);
    if (rc == MQ_OK) {
        rc = mq_gguf_stream_end(s, err);
        s = NULL;
    }
    mq_gguf_stream_abort(s);
    if (rc == MQ_OK) mq_progress_finish(&pb, NULL);
    mq_gguf_free(g);
    return rc;
}
