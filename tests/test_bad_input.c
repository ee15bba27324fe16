/* Bad input that the fuzz targets (fuzz/) found or the audit of the readers turned up, kept as
 * regression tests: each input is refused with a message naming the file and what is wrong,
 * or, where it is valid, read and used without undefined behaviour. The inputs the fuzzers
 * found are in tests/data/fuzz/. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "miniquant/checkpoint.h"
#include "miniquant/corpus.h"
#include "miniquant/eval.h"
#include "miniquant/export.h"
#include "miniquant/pairs.h"
#include "miniquant/train.h"

#define FUZZ_DATA MQ_TEST_DATA "/fuzz"

static void expect_refusal(int rc, const mq_error_t *err, int code, const char *name,
                           const char *needle) {
    cr_assert_eq(rc, code, "status %d (%s), expected %d", rc, err->msg, code);
    cr_assert(strstr(err->msg, name), "the message does not name %s: %s", name, err->msg);
    cr_assert(strstr(err->msg, needle), "expected '%s' in: %s", needle, err->msg);
}

/* ---------------------------------------------------------------------------------------------
 * found by fuzz_model and fuzz_lexicon */

/* An fp16 model whose blk.0.ffn_down.weight holds NaN halves: one policy for values that are
 * not finite, at load: refused naming the file, the tensor and the element. The forward pass
 * on NaN weights in memory must still give NaN, not undefined behaviour (exp_fast shifted the
 * bits of a NaN as a signed int). */
Test(fuzz_found, a_model_with_nan_weights_is_refused_and_nan_in_memory_runs) {
    const char *path = FUZZ_DATA "/model-fp16-nan-weights.gguf";
    mq_gpt_t m2;
    mq_qmodel_t q;
    mq_error_t err = {0};
    expect_refusal(mq_qmodel_load(path, &q, NULL, &err), &err, MQ_ERR_FORMAT, path,
                   "tensor blk.0.ffn_down.weight element (2, 29) is -nan, not a finite number");
    expect_refusal(mq_checkpoint_load(path, &m2, NULL, NULL, &err), &err, MQ_ERR_FORMAT, path,
                   "tensor blk.0.ffn_down.weight element (2, 29) is -nan");
    mq_gpt_config_t cfg = {
        .name = "custom", .vocab_size = 8, .n_ctx = 4, .n_embd = 32, .n_head = 2, .n_layer = 1};
    cr_assert_eq(mq_gpt_init(&m2, &cfg, &err), MQ_OK);
    mq_gpt_init_weights(&m2, 1);
    m2.params.fcprojw[5] = NAN;
    int tok = 0;
    cr_assert_eq(mq_gpt_forward(&m2, &tok, &tok, 1, 1, &err), MQ_OK, "%s", err.msg);
    cr_assert(isnan(m2.mean_loss));
    mq_gpt_free(&m2);
}

/* A 356-byte file without tensors whose general.alignment is 2^30: valid (it has no data
 * section to align), but writing it again padded the end to the alignment, a 1 GiB copy. */
Test(fuzz_found, a_tensorless_file_with_a_huge_alignment_rewrites_small) {
    const char *path = FUZZ_DATA "/gguf-tensorless-huge-alignment.gguf";
    mq_gguf_t *g, *back;
    mq_error_t err = {0};
    cr_assert_eq(mq_gguf_read(path, &g, &err), MQ_OK, "%s", err.msg);
    cr_assert_eq(mq_gguf_n_tensors(g), 0);
    cr_assert_eq(mq_gguf_alignment(g), (size_t)1 << 30);
    void *buf;
    size_t len;
    cr_assert_eq(mq_gguf_write_mem(g, &buf, &len, &err), MQ_OK, "%s", err.msg);
    cr_assert_leq(len, 356);
    cr_assert_eq(mq_gguf_read_mem(buf, len, "copy", &back, &err), MQ_OK, "%s", err.msg);
    cr_assert_eq(mq_gguf_n_kv(back), mq_gguf_n_kv(g));
    free(buf);
    mq_gguf_free(back);
    mq_gguf_free(g);
}

/* index.verb with lemmas, verb.exc and cntlist.rev empty: no irregular form at all (the
 * lexicon added an offset to a NULL array of them). */
Test(fuzz_found, a_lexicon_without_irregular_forms_loads) {
    mq_verb_lexicon_t *lx;
    mq_error_t err = {0};
    cr_assert_eq(mq_verb_lexicon_load(FUZZ_DATA "/lexicon-empty-verb-exc", NULL, &lx, &err), MQ_OK,
                 "%s", err.msg);
    cr_assert_gt(mq_verb_lexicon_size(lx), 0);
    const char *forms[MQ_NUM_INFL];
    cr_assert_eq(mq_verb_paradigm(lx, "agree", forms), MQ_OK);
    cr_assert_str_eq(forms[1], "agrees");
    cr_assert_str_eq(forms[2], "agreed");
    mq_verb_lexicon_free(lx);
}

/* ---------------------------------------------------------------------------------------------
 * found by the audit: sizes a file states */

/* A 64 KiB gpt2 file whose hyperparameters describe 13 trillion parameters (1024 layers of
 * width 32768): the loaders allocated them before looking for the tensors. Now the parameter
 * count is checked against the tensor data the file holds. */
static void *parameter_bomb(size_t *len) {
    const uint32_t C = 32768;
    mq_gguf_t *g = mq_gguf_new();
    cr_assert(g);
    int rc = mq_gguf_set_str(g, "general.architecture", "gpt2");
    rc |= mq_gguf_set_u32(g, "gpt2.context_length", 65536);
    rc |= mq_gguf_set_u32(g, "gpt2.embedding_length", C);
    rc |= mq_gguf_set_u32(g, "gpt2.feed_forward_length", 4 * C);
    rc |= mq_gguf_set_u32(g, "gpt2.block_count", 1024);
    rc |= mq_gguf_set_u32(g, "gpt2.attention.head_count", 1);
    cr_assert_eq(rc, MQ_OK);
    int64_t ne[2] = {C, 1};
    mq_fp16_t *wte = calloc(C, sizeof *wte);
    mq_error_t err = {0};
    cr_assert_eq(mq_gguf_add_tensor(g, "token_embd.weight", MQ_GGML_F16, 2, ne, wte, &err), MQ_OK,
                 "%s", err.msg);
    void *buf;
    cr_assert_eq(mq_gguf_write_mem(g, &buf, len, &err), MQ_OK, "%s", err.msg);
    free(wte);
    mq_gguf_free(g);
    return buf;
}

Test(bounds, hyperparameters_beyond_the_file_are_refused_before_allocating) {
    size_t len;
    void *buf = parameter_bomb(&len);
    cr_assert_lt(len, 70000);
    mq_gguf_t *g;
    mq_error_t err = {0};
    cr_assert_eq(mq_gguf_read_mem(buf, len, "bomb.gguf", &g, &err), MQ_OK, "%s", err.msg);
    mq_gpt_t m;
    mq_qmodel_t q;
    expect_refusal(mq_qmodel_from_gguf(g, "bomb.gguf", &q, &err), &err, MQ_ERR_FORMAT, "bomb.gguf",
                   "more than the 65536 bytes of tensor data");
    cr_assert(q.ql == NULL && q.model == NULL, "a refused file left a model behind");
    expect_refusal(mq_gpt_from_gguf(g, "bomb.gguf", &m, &err), &err, MQ_ERR_FORMAT, "bomb.gguf",
                   "hyperparameters describe");
    mq_gguf_free(g);
    free(buf);
}

/* A checkpoint whose hyperparameters fit its data but which lacks a tensor, or holds one of a
 * type miniquant does not read: refused with the tensor's name (before anything is allocated).
 * One of a type it reads (q8_0) gives its values. */
Test(bounds, a_checkpoint_missing_a_tensor_names_it) {
    mq_gpt_config_t cfg = {
        .name = "custom", .vocab_size = 8, .n_ctx = 4, .n_embd = 32, .n_head = 2, .n_layer = 1};
    mq_gpt_t m;
    mq_error_t err = {0};
    cr_assert_eq(mq_gpt_init(&m, &cfg, &err), MQ_OK);
    mq_gguf_t *g = mq_gguf_new(), *g2 = mq_gguf_new();
    cr_assert_eq(mq_gpt_to_gguf(&m, NULL, NULL, g, &err), MQ_OK, "%s", err.msg);
    /* the same file without blk.0.ffn_up.bias, and with output.weight as q8_0, then q8_1 */
    for (int64_t i = 0; i < mq_gguf_n_kv(g); i++) {
        mq_gguf_str_t s;
        uint32_t u;
        float f;
        const char *key = mq_gguf_kv_key(g, i);
        if (mq_gguf_get_str(g, key, &s, NULL) == MQ_OK)
            mq_gguf_set_str(g2, key, s.ptr);
        else if (mq_gguf_get_u32(g, key, &u, NULL) == MQ_OK)
            mq_gguf_set_u32(g2, key, u);
        else if (mq_gguf_get_f32(g, key, &f, NULL) == MQ_OK)
            mq_gguf_set_f32(g2, key, f);
    }
    for (int64_t i = 0; i < mq_gguf_n_tensors(g); i++) {
        const mq_gguf_tensor_t *t = mq_gguf_tensor(g, i);
        if (!strcmp(t->name, "blk.0.ffn_up.bias")) continue;
        cr_assert_eq(mq_gguf_add_tensor(g2, t->name, t->type, t->n_dims, t->ne, t->data, &err),
                     MQ_OK);
    }
    mq_gpt_t back;
    expect_refusal(mq_gpt_from_gguf(g2, "holes.gguf", &back, &err), &err, MQ_ERR_FORMAT,
                   "holes.gguf", "tensor blk.0.ffn_up.bias is missing");
    mq_gguf_free(g2);
    for (int type = MQ_GGML_Q8_0; type <= MQ_GGML_Q8_1; type++) {
        g2 = mq_gguf_new();
        for (int64_t i = 0; i < mq_gguf_n_kv(g); i++) {
            uint32_t u;
            mq_gguf_str_t s;
            const char *key = mq_gguf_kv_key(g, i);
            if (mq_gguf_get_str(g, key, &s, NULL) == MQ_OK)
                mq_gguf_set_str(g2, key, s.ptr);
            else if (mq_gguf_get_u32(g, key, &u, NULL) == MQ_OK)
                mq_gguf_set_u32(g2, key, u);
        }
        for (int64_t i = 0; i < mq_gguf_n_tensors(g); i++) {
            const mq_gguf_tensor_t *t = mq_gguf_tensor(g, i);
            if (strcmp(t->name, "output.weight")) {
                cr_assert_eq(
                    mq_gguf_add_tensor(g2, t->name, t->type, t->n_dims, t->ne, t->data, &err),
                    MQ_OK);
            } else { /* one block of 32 weights per row, scale 0 */
                const mq_ggml_type_info_t *ti = mq_ggml_type_info(type);
                cr_assert(ti && t->ne[0] == ti->block_size);
                uint8_t *blocks = calloc((size_t)t->ne[1], ti->type_size);
                cr_assert_eq(mq_gguf_add_tensor(g2, t->name, type, 2, t->ne, blocks, &err), MQ_OK);
                free(blocks);
            }
        }
        if (type == MQ_GGML_Q8_0) {
            cr_assert_eq(mq_gpt_from_gguf(g2, "q8.gguf", &back, &err), MQ_OK, "%s", err.msg);
            int OC, C;
            const float *W =
                mq_gpt_linear_weight(&back, (mq_linear_id_t){MQ_P_LMW, 0}, NULL, &OC, &C);
            for (int k = 0; k < OC * C; k++)
                cr_assert(W[k] == 0.0f);
            mq_gpt_free(&back);
        } else {
            expect_refusal(mq_gpt_from_gguf(g2, "q8.gguf", &back, &err), &err, MQ_ERR_UNSUPPORTED,
                           "q8.gguf", "output.weight has type q8_1, which miniquant does not read");
        }
        mq_gguf_free(g2);
    }
    mq_gguf_free(g);
    mq_gpt_free(&m);
}

/* ---------------------------------------------------------------------------------------------
 * one policy for values that are not finite: at load, at quantization and export, at evaluation */

static void tiny_model(mq_gpt_t *m) {
    mq_gpt_config_t cfg = {
        .name = "custom", .vocab_size = 8, .n_ctx = 4, .n_embd = 32, .n_head = 2, .n_layer = 1};
    mq_error_t err = {0};
    cr_assert_eq(mq_gpt_init(m, &cfg, &err), MQ_OK, "%s", err.msg);
    mq_gpt_init_weights(m, 3);
}

Test(non_finite, a_nan_norm_weight_in_a_file_is_refused_naming_file_tensor_and_element) {
    mq_gpt_t m, back;
    tiny_model(&m);
    mq_gguf_t *g = mq_gguf_new();
    mq_error_t err = {0};
    cr_assert_eq(mq_gpt_to_gguf(&m, NULL, NULL, g, &err), MQ_OK, "%s", err.msg);
    float *w = (float *)mq_gguf_find_tensor(g, "blk.0.attn_norm.weight")->data;
    w[3] = NAN;
    expect_refusal(mq_gpt_from_gguf(g, "norm.gguf", &back, &err), &err, MQ_ERR_FORMAT, "norm.gguf",
                   "tensor blk.0.attn_norm.weight element (0, 3) is nan, not a finite number");
    w[3] = 1;
    float *b = (float *)mq_gguf_find_tensor(g, "blk.0.ffn_up.bias")->data;
    b[7] = -INFINITY;
    expect_refusal(mq_gpt_from_gguf(g, "bias.gguf", &back, &err), &err, MQ_ERR_FORMAT, "bias.gguf",
                   "tensor blk.0.ffn_up.bias element (0, 7) is -inf");
    mq_gguf_free(g);
    mq_gpt_free(&m);
}

Test(non_finite, an_embedding_beyond_fp16_is_refused_where_it_would_be_stored_as_fp16) {
    mq_gpt_t m;
    tiny_model(&m);
    snprintf(m.source, sizeof m.source, "big.gguf");
    m.params.wte[2 * 32 + 5] = 1e10f;
    mq_scheme_t s;
    mq_qmodel_t q;
    mq_error_t err = {0};
    cr_assert_eq(mq_scheme_parse("int4_g32", &s, &err), MQ_OK);
    expect_refusal(mq_qmodel_quantize(&q, &m, &s, NULL, &err), &err, MQ_ERR_ARG, "big.gguf",
                   "tensor token_embd.weight element (2, 5) is 1e+10, beyond FP16's 65504");
    /* fp32 keeps it, and a checkpoint of it is written and read back */
    char path[] = "/tmp/mq-big-XXXXXX";
    int fd = mkstemp(path);
    close(fd);
    cr_assert_eq(mq_checkpoint_save(path, &m, NULL, NULL, &err), MQ_OK, "%s", err.msg);
    /* a model that is not finite is not written, and the old file stays */
    m.params.lnfb[1] = NAN;
    expect_refusal(mq_checkpoint_save(path, &m, NULL, NULL, &err), &err, MQ_ERR_ARG, path,
                   "tensor output_norm.bias element (0, 1) is nan");
    mq_gpt_t back;
    cr_assert_eq(mq_checkpoint_load(path, &back, NULL, NULL, &err), MQ_OK, "%s", err.msg);
    cr_assert_eq(back.params.wte[2 * 32 + 5], 1e10f);
    cr_assert_str_eq(back.source, path);
    mq_gpt_free(&back);
    unlink(path);
    mq_gpt_free(&m);
}

Test(non_finite, an_evaluation_whose_loss_is_not_finite_is_an_error) {
    mq_gpt_t m;
    tiny_model(&m);
    snprintf(m.source, sizeof m.source, "huge.gguf");
    /* finite weights whose logits overflow */
    for (size_t k = 0; k < m.param_sizes[MQ_P_LNFW]; k++) m.params.lnfw[k] = 3e38f;
    int32_t tokens[16] = {1, 2, 3, 4, 5, 6, 7, 0, 1, 2, 3, 4, 5, 6, 7, 0};
    mq_ppl_result_t res;
    mq_error_t err = {0};
    expect_refusal(mq_perplexity(&m, tokens, 16, MQ_PPL_DEFAULT, 4, 2, &res, &err), &err,
                   MQ_ERR_FORMAT, "huge.gguf", "not a finite number");
    mq_gpt_free(&m);
}

/* The training state of one model offered to another, and one whose log is shorter than its
 * step count. */
Test(bounds, training_state_that_does_not_fit_the_model_is_refused) {
    mq_gpt_config_t cfg = {.name = "custom",
                           .vocab_size = 8,
                           .n_ctx = 4,
                           .n_embd = 8,
                           .n_head = 1,
                           .n_layer = 1},
                    other = {.name = "custom",
                             .vocab_size = 8,
                             .n_ctx = 4,
                             .n_embd = 16,
                             .n_head = 1,
                             .n_layer = 1};
    mq_gpt_t m, m2;
    mq_error_t err = {0};
    cr_assert_eq(mq_gpt_init(&m, &cfg, &err), MQ_OK);
    cr_assert_eq(mq_gpt_init(&m2, &other, &err), MQ_OK);
    m.m_memory = calloc(m.num_params, sizeof(float));
    m.v_memory = calloc(m.num_params, sizeof(float));
    float loss[2] = {1, 2};
    mq_train_log_t log = {loss, loss, loss, 2, NULL, NULL, 0, 0, 0};
    char dir[] = "/tmp/mq-state-XXXXXX", path[256], opt[300];
    cr_assert(mkdtemp(dir));
    snprintf(path, sizeof path, "%s/m.gguf", dir);
    snprintf(opt, sizeof opt, "%s.opt", path);
    mq_ckpt_info_t info = {2, 10, 7, 0}, got;
    cr_assert_eq(mq_train_state_save(path, &m, &info, &log, &err), MQ_OK, "%s", err.msg);
    mq_train_log_t back;
    expect_refusal(mq_train_state_load(path, &m2, &got, &back, &err), &err, MQ_ERR_FORMAT, opt,
                   "optimizer state for");
    /* of another preset or architecture */
    snprintf(m2.cfg.name, sizeof m2.cfg.name, "tiny");
    expect_refusal(mq_train_state_load(path, &m2, &got, &back, &err), &err, MQ_ERR_ARG, opt,
                   "configuration custom, not gpt2 tiny");
    /* the log holds 2 steps; a state claiming 3 is refused */
    mq_gguf_t *g;
    cr_assert_eq(mq_gguf_read(opt, &g, &err), MQ_OK, "%s", err.msg);
    cr_assert_eq(mq_gguf_set_i64(g, "miniquant.train.step", 3), MQ_OK);
    expect_refusal(mq_train_state_from_gguf(g, "state.opt", &m, &got, &back, &err), &err,
                   MQ_ERR_FORMAT, "state.opt", "miniquant.log.loss has 2 entries");
    /* a weight that is not a finite number */
    cr_assert_eq(mq_gguf_set_i64(g, "miniquant.train.step", 2), MQ_OK);
    float *w = (float *)mq_gguf_find_tensor(g, "weights")->data;
    w[5] = NAN;
    expect_refusal(mq_train_state_from_gguf(g, "state.opt", &m, &got, &back, &err), &err,
                   MQ_ERR_FORMAT, "state.opt", "tensor weights element 5 is nan");
    mq_gguf_free(g);
    remove(opt);
    remove(dir);
    mq_gpt_free(&m);
    mq_gpt_free(&m2);
}

/* A split text file (data/corpus) with a NUL byte: the line is named. */
Test(bounds, a_corpus_text_with_a_nul_byte_names_the_line) {
    static const char TEXT[] = "first document\nsecond\0document\n";
    mq_corpus_t c = {0};
    mq_error_t err = {0};
    expect_refusal(
        mq_corpus_parse_text(TEXT, sizeof TEXT - 1, "train.txt", MQ_SPLIT_TRAIN, &c, &err), &err,
        MQ_ERR_FORMAT, "train.txt", "line 2: NUL byte");
    mq_corpus_free(&c);
    cr_assert_eq(mq_corpus_parse_text(TEXT, 15, "train.txt", MQ_SPLIT_VALID, &c, &err), MQ_OK);
    cr_assert_eq(c.n_docs, 1u);
    cr_assert_str_eq(c.docs[0].text, "first document");
    cr_assert_eq(c.docs[0].split, MQ_SPLIT_VALID);
    mq_corpus_free(&c);
}
