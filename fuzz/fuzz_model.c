/* The model loaders on arbitrary bytes: mq_qmodel_from_gguf (quantized files and checkpoints,
 * what mq_qmodel_load runs after reading), mq_gpt_from_gguf (the FP32 checkpoint loader of
 * mq_checkpoint_load), the tokenizer they load beside the model, and the bytes accounting.
 *
 * A model that loads must run a forward step, its grid layers must give their codes back, and
 * it must survive export: exported and loaded again its layers hold the same bytes (and side
 * scales), and a second export writes the same file. When both loaders accept a file they must
 * agree on every weight. */
#include "fuzz.h"
#include "miniquant/checkpoint.h"
#include "miniquant/export.h"

static void forward_one_token(mq_gpt_t *m) {
    int tok = 0;
    mq_error_t err = {0};
    int rc = mq_gpt_forward(m, &tok, &tok, 1, 1, &err);
    FUZZ_CHECK(rc == MQ_OK, "forward on a loaded model: %s", err.msg);
}

static void export_mem(const mq_qmodel_t *q, void **buf, size_t *len) {
    mq_gguf_t *g = mq_gguf_new();
    mq_error_t err = {0};
    FUZZ_CHECK(g && mq_qmodel_to_gguf(NULL, q, NULL, g, &err) == MQ_OK, "export: %s", err.msg);
    FUZZ_CHECK(mq_gguf_write_mem(g, buf, len, &err) == MQ_OK, "write: %s", err.msg);
    mq_gguf_free(g);
}

static int load_mem(const void *buf, size_t len, mq_qmodel_t *q, mq_error_t *err) {
    mq_gguf_t *g;
    int rc = mq_gguf_read_mem(buf, len, "exported", &g, err);
    if (rc) return rc;
    rc = mq_qmodel_from_gguf(g, "exported", q, err);
    mq_gguf_free(g);
    return rc;
}

static void same_layers(const mq_qmodel_t *a, const mq_qmodel_t *b) {
    FUZZ_CHECK(!strcmp(a->scheme.name, b->scheme.name) && a->n_linear == b->n_linear &&
                   a->skip_lm_head == b->skip_lm_head,
               "scheme %s -> %s", a->scheme.name, b->scheme.name);
    FUZZ_CHECK(!strcmp(a->recipe, b->recipe), "recipe %s -> %s", a->recipe, b->recipe);
    FUZZ_CHECK(!a->embd.data == !b->embd.data, "token_embd's format appeared or vanished");
    if (a->embd.data)
        FUZZ_CHECK(a->embd.format == b->embd.format &&
                       !memcmp(a->embd.data, b->embd.data, (size_t)a->embd.rows * a->embd.row_bytes),
                   "token_embd: bytes changed");
    /* a plain model (fp32, read from a file without miniquant.scheme) is written as an fp32
     * file, whose Linears all count as quantized with fp32 */
    int plain = mq_scheme_is_identity(&a->scheme);
    for (int i = 0; i < a->n_linear; i++) {
        FUZZ_CHECK(b->active[i] == (a->active[i] || plain), "Linear %d changed state", i);
        const mq_qweight_t *x = &a->ql[i].w, *y = &b->ql[i].w;
        FUZZ_CHECK(x->format == y->format && x->rows == y->rows && x->cols == y->cols &&
                       x->row_bytes == y->row_bytes && x->n_scales == y->n_scales,
                   "Linear %d changed format or shape", i);
        FUZZ_CHECK(!memcmp(x->data, y->data, (size_t)x->rows * x->row_bytes),
                   "Linear %d: bytes changed", i);
        FUZZ_CHECK(!x->scales == !y->scales, "Linear %d: side scales appeared or vanished", i);
        if (x->scales)
            FUZZ_CHECK(!memcmp(x->scales, y->scales, x->n_scales * sizeof *x->scales),
                       "Linear %d: scales changed", i);
    }
}

/* Every grid layer decodes: the loader checked each row as the decoder reads it. */
static void layers_decode(const mq_qmodel_t *q) {
    for (int i = 0; i < q->n_linear; i++) {
        const mq_qweight_t *w = &q->ql[i].w;
        FUZZ_CHECK(w->data != NULL && !w->borrowed, "Linear %d: no bytes of its own", i);
        if (!w->format->decode_row || !mq_scheme_has_grid(&w->scheme)) continue;
        int8_t *codes = malloc((size_t)w->rows * (size_t)w->cols);
        mq_fp16_t *scales = malloc(w->n_scales * sizeof *scales);
        mq_error_t err = {0};
        FUZZ_CHECK(codes && scales, "out of memory");
        FUZZ_CHECK(mq_qweight_to_codes(w, codes, scales, &err) == MQ_OK,
                   "Linear %d loaded but does not decode: %s", i, err.msg);
        free(codes);
        free(scales);
    }
}

/* Export, load, export again: the loaded layers are the exported ones, and the second file is
 * the first byte for byte. */
static void check_export_round_trip(const mq_qmodel_t *q) {
    void *f1, *f2;
    size_t n1, n2;
    export_mem(q, &f1, &n1);
    mq_qmodel_t q2;
    mq_error_t err = {0};
    FUZZ_CHECK(load_mem(f1, n1, &q2, &err) == MQ_OK, "an exported model does not load: %s",
               err.msg);
    same_layers(q, &q2);
    export_mem(&q2, &f2, &n2);
    FUZZ_CHECK(n1 == n2 && !memcmp(f1, f2, n1), "export is not stable under load + export");
    free(f1);
    free(f2);
    mq_qmodel_free(&q2);
}

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc;
    (void)argv;
    fuzz_quiet();
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    mq_gguf_t *g = fuzz_read_gguf(data, size);
    if (!g) return 0;
    mq_error_t err = {0};
    int rc;

    mq_gpt_t m1, m2;
    mq_qmodel_t q;
    int loaded = mq_qmodel_from_gguf(g, FUZZ_NAME, &q, &err) == MQ_OK;
    if (!loaded) {
        fuzz_check_refusal(err.code, &err, FUZZ_NAME);
        FUZZ_CHECK(!q.ql && !q.model, "a refused file left a model behind");
    } else {
        FUZZ_CHECK(q.n_linear == mq_qmodel_n_linear(&q.model->cfg), "n_linear %d", q.n_linear);
        mq_model_bytes_t mb;
        mq_model_bytes(NULL, &q, &mb);
        layers_decode(&q);
        check_export_round_trip(&q);
        FUZZ_CHECK(mq_qmodel_dequantize(&q, &m1, &err) == MQ_OK, "dequantize: %s", err.msg);
        mq_tokenizer_t *tok = NULL;
        mq_error_t terr = {0};
        rc = mq_tokenizer_from_gguf(g, FUZZ_NAME, &tok, &terr);
        if (rc) fuzz_check_refusal(rc, &terr, FUZZ_NAME);
        mq_tokenizer_free(tok);
    }

    mq_error_t err2 = {0};
    if (mq_gpt_from_gguf(g, FUZZ_NAME, &m2, &err2) == MQ_OK) {
        /* the model loader refuses more (tensors a model has no place for, a bad scheme) */
        if (loaded)
            FUZZ_CHECK(m2.num_params == m1.num_params &&
                           !memcmp(m2.params_memory, m1.params_memory,
                                   m1.num_params * sizeof(float)),
                       "the two loaders read different weights");
        forward_one_token(&m2);
        mq_gpt_free(&m2);
    } else {
        fuzz_check_refusal(err2.code, &err2, FUZZ_NAME);
    }
    if (loaded) {
        forward_one_token(q.model);
        mq_qmodel_free(&q);
        mq_gpt_free(&m1);
    }

    mq_export_bytes_t eb;
    mq_error_t err3 = {0};
    rc = mq_export_bytes(g, &eb, &err3);
    if (rc) fuzz_check_refusal(rc, &err3, NULL);
    mq_gguf_free(g);
    return 0;
}
