/* Synthetic models (checkpoint.h: mq_synth_*) and the streamed file they are written as: the
 * file loads as the shape asked for, its weights have the spread promised, a seed gives the same
 * bytes, and the generated SentencePiece vocabulary encodes and decodes text. Also llama-
 * perplexity's reading of a text for a vocabulary that begins sequences with BOS. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "files.h"
#include "miniquant/arch.h"
#include "miniquant/checkpoint.h"
#include "miniquant/eval.h"
#include "miniquant/export.h"

static mq_gpt_config_t small_llama(void) {
    return (mq_gpt_config_t){.name = "custom",
                             .vocab_size = 400,
                             .n_ctx = 16,
                             .n_embd = 64,
                             .n_head = 4,
                             .n_layer = 2,
                             .arch = MQ_ARCH_LLAMA,
                             .n_head_kv = 2,
                             .n_ff = 96};
}

Test(synth, writes_a_model_of_the_shape_with_the_promised_spread) {
    char dir[] = "/tmp/mq-synth-XXXXXX", a[256], b[256], c[256];
    cr_assert(mkdtemp(dir));
    snprintf(a, sizeof a, "%s/a.gguf", dir);
    snprintf(b, sizeof b, "%s/b.gguf", dir);
    snprintf(c, sizeof c, "%s/c.gguf", dir);
    mq_gpt_config_t cfg = small_llama();
    mq_tokenizer_t *tok;
    mq_error_t err = {0};
    cr_assert_eq(mq_synth_vocabulary(400, &tok, &err), MQ_OK, "%s", err.msg);
    cr_assert_eq(mq_synth_write(a, &cfg, tok, 7, &err), MQ_OK, "%s", err.msg);
    cr_assert_eq(mq_synth_write(b, &cfg, tok, 7, &err), MQ_OK, "%s", err.msg);
    cr_assert_eq(mq_synth_write(c, &cfg, tok, 8, &err), MQ_OK, "%s", err.msg);
    cr_assert(same_loaded(a, b, read_all), "the same seed gives the same file");
    cr_assert(!same_loaded(a, c, read_all), "another seed gives other weights");

    mq_gpt_t m;
    mq_tokenizer_t *t2;
    cr_assert_eq(mq_checkpoint_load(a, &m, &t2, NULL, &err), MQ_OK, "%s", err.msg);
    cr_assert(m.cfg.arch == MQ_ARCH_LLAMA && m.cfg.n_layer == 2 && m.cfg.n_embd == 64 &&
              m.cfg.n_head_kv == 2 && m.cfg.n_ff == 96 && m.cfg.vocab_size == 400);
    cr_assert_eq(mq_tokenizer_n_vocab(t2), 400);
    /* matrices N(0, 1/in), embeddings N(0, 1), norms 1 */
    float *const *params = (float *const *)&m.params;
    for (int p = 0; p < MQ_NUM_PARAMS; p++) {
        if (!m.param_sizes[p]) continue;
        int64_t rows, cols;
        mq_arch_param_shape(&m.cfg, p, &rows, &cols);
        double s = 0, s2 = 0;
        for (size_t i = 0; i < m.param_sizes[p]; i++)
            s += params[p][i], s2 += (double)params[p][i] * params[p][i];
        double n = (double)m.param_sizes[p], mean = s / n, sd = sqrt(s2 / n - mean * mean);
        if (!rows) {
            cr_assert(mean == 1.0 && sd == 0.0, "%s: norm weights are 1", mq_gpt_param_name(p));
            continue;
        }
        double want = p == MQ_P_WTE ? 1.0 : 1.0 / sqrt((double)cols);
        cr_assert(fabs(sd - want) < 0.05 * want, "%s: std %g, want %g", mq_gpt_param_name(p), sd,
                  want);
    }
    /* the model runs, and its predictions are far from uniform */
    int tokens[16];
    for (int i = 0; i < 16; i++)
        tokens[i] = (i * 37) % 400;
    cr_assert_eq(mq_gpt_forward(&m, tokens, tokens, 1, 16, &err), MQ_OK, "%s", err.msg);
    cr_assert(fabs(m.mean_loss - log(400.0)) > 0.5, "loss %g", m.mean_loss);
    mq_gpt_free(&m);
    mq_tokenizer_free(t2);
    mq_tokenizer_free(tok);
    remove(a), remove(b), remove(c), remove(dir);
}

Test(synth, generated_vocabulary_encodes_text) {
    mq_tokenizer_t *tok;
    mq_error_t err = {0};
    cr_assert_eq(mq_synth_vocabulary(32000, &tok, &err), MQ_OK, "%s", err.msg);
    cr_assert_eq(mq_tokenizer_n_vocab(tok), 32000);
    cr_assert_eq(mq_tokenizer_model(tok), MQ_TOKENIZER_SPM);
    const char *text = "the quick brown fox, 42 times; caf\xc3\xa9!";
    int32_t *ids;
    size_t n;
    cr_assert_eq(mq_tokenizer_encode(tok, text, strlen(text), 0, &ids, &n, &err), MQ_OK);
    cr_assert(n > 5 && n < strlen(text), "%zu ids", n);
    char *back;
    size_t bl;
    cr_assert_eq(mq_tokenizer_decode(tok, ids, n, &back, &bl, &err), MQ_OK);
    cr_assert_str_eq(back, text);
    free(ids), free(back);
    mq_tokenizer_free(tok);
    cr_assert_eq(mq_synth_vocabulary(100, &tok, &err), MQ_ERR_ARG);
    cr_assert_null(tok);
}

/* llama-perplexity adds BOS when the vocabulary asks for it, then puts BOS in place of every
 * chunk's first token; a vocabulary without add_bos is read as it is. */
Test(synth, llamacpp_protocol_tokens_begin_every_chunk_with_bos) {
    mq_tokenizer_t *tok;
    mq_error_t err = {0};
    cr_assert_eq(mq_synth_vocabulary(1000, &tok, &err), MQ_OK);
    const char *text = "abc def ghi jkl mno pqr stu vwx yz abc def ghi\n";
    int32_t *ids, *plain;
    size_t n, np;
    cr_assert_eq(mq_ppl_llamacpp_tokens(tok, text, strlen(text), 4, &ids, &n, &err), MQ_OK);
    cr_assert_eq(mq_tokenizer_encode(tok, text, strlen(text) - 1, 0, &plain, &np, &err), MQ_OK);
    cr_assert_eq(n, np + 1, "BOS, then the text without its final newline");
    for (size_t i = 0; i < n; i++)
        cr_assert_eq(ids[i], i % 4 == 0 ? mq_tokenizer_bos(tok) : plain[i - 1], "token %zu", i);
    free(ids), free(plain);
    mq_tokenizer_free(tok);
}

/* A llama file without output.weight ties the output to the token embedding, as llama.cpp reads
 * it (TinyLlama keeps its own; many smaller models do not). */
Test(synth, a_llama_file_without_output_ties_it_to_token_embd) {
    char dir[] = "/tmp/mq-tied-XXXXXX", path[256];
    cr_assert(mkdtemp(dir));
    snprintf(path, sizeof path, "%s/tied.gguf", dir);
    mq_gpt_config_t cfg = small_llama();
    mq_tokenizer_t *tok;
    mq_error_t err = {0};
    cr_assert_eq(mq_synth_vocabulary(400, &tok, &err), MQ_OK);
    mq_gpt_t m;
    cr_assert_eq(mq_gpt_init(&m, &cfg, &err), MQ_OK);
    mq_gpt_init_weights(&m, 3);
    mq_gguf_t *full = mq_gguf_new(), *tied = mq_gguf_new();
    cr_assert_eq(mq_gpt_to_gguf(&m, tok, NULL, full, &err), MQ_OK);
    cr_assert_eq(mq_gpt_gguf_metadata(&m.cfg, tok, NULL, tied, &err), MQ_OK);
    for (int64_t i = 0; i < mq_gguf_n_tensors(full); i++) {
        const mq_gguf_tensor_t *t = mq_gguf_tensor(full, i);
        if (strcmp(t->name, "output.weight"))
            cr_assert_eq(
                mq_gguf_add_tensor(tied, t->name, t->type, t->n_dims, t->ne, t->data, &err), MQ_OK);
    }
    cr_assert_eq(mq_gguf_write(tied, path, &err), MQ_OK);
    mq_gpt_t back;
    cr_assert_eq(mq_checkpoint_load(path, &back, NULL, NULL, &err), MQ_OK, "%s", err.msg);
    cr_assert(!memcmp(back.params.lmw, m.params.wte, m.param_sizes[MQ_P_WTE] * sizeof(float)),
              "the output Linear is the token embedding");
    mq_qmodel_t q;
    cr_assert_eq(mq_qmodel_load(path, &q, NULL, &err), MQ_OK, "%s", err.msg);
    mq_qmodel_free(&q);
    mq_gpt_free(&back);
    mq_gpt_free(&m);
    mq_gguf_free(full);
    mq_gguf_free(tied);
    mq_tokenizer_free(tok);
    remove(path), remove(dir);
}
