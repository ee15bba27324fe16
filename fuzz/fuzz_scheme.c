/* Scheme names (mq_scheme_parse, what --scheme and miniquant.scheme go through) on arbitrary
 * strings.
 *
 * A refused name gets a message quoting the grammar. An accepted one is canonical (its parsed
 * name is the input) and works: a small Linear quantized with it keeps codes on the grid and
 * finite values, and the fused forward agrees with the reference forward. */
#include <math.h>

#include "fuzz.h"
#include "miniquant/export.h"
#include "miniquant/kernels.h"
#include "miniquant/quant.h"
#include "miniquant/rng.h"

#define ROWS 3
#define COLS 96 /* divisible by many group sizes, and by ggml's 32 */
#define N 2

static float W[ROWS * COLS], X[N * COLS], B[ROWS];

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc;
    (void)argv;
    mq_rng_t r;
    mq_rng_seed(&r, 7);
    for (int i = 0; i < ROWS * COLS; i++)
        W[i] = 0.05f * mq_rng_normal(&r);
    W[5] = 3.0f; /* an outlier */
    for (int c = 0; c < COLS; c++)
        W[COLS + c] = 0.0f; /* a zero row */
    for (int i = 0; i < N * COLS; i++)
        X[i] = mq_rng_normal(&r);
    for (int i = 0; i < ROWS; i++)
        B[i] = 0.1f * (float)i;
    return 0;
}

static void check_layer(const mq_scheme_t *s) {
    mq_qlinear_t ql;
    mq_error_t err = {0};
    int rc = mq_qlinear_from_linear(&ql, W, B, ROWS, COLS, s, &err);
    if (s->gran == MQ_QG_GROUP && COLS % s->group) {
        FUZZ_CHECK(rc == MQ_ERR_ARG && strstr(err.msg, "does not divide"),
                   "%s on %d columns: %d %s", s->name, COLS, rc, err.msg);
        return;
    }
    FUZZ_CHECK(rc == MQ_OK, "%s: %s", s->name, err.msg);
    const mq_qweight_t *q = &ql.w;
    FUZZ_CHECK(q->n_scales == mq_qweight_n_scales(s, ROWS, COLS), "%s: n_scales", s->name);
    if (s->kind == MQ_QK_INT || s->kind == MQ_QK_NF4) {
        int lo = s->kind == MQ_QK_NF4 ? 0 : -((1 << (s->bits - 1)) - 1);
        int hi = s->kind == MQ_QK_NF4 ? 15 : (1 << (s->bits - 1)) - 1;
        for (int i = 0; i < ROWS * COLS; i++)
            FUZZ_CHECK(q->codes[i] >= lo && q->codes[i] <= hi, "%s: code %d", s->name,
                       q->codes[i]);
    }
    float D[ROWS * COLS], ref[N * ROWS], fused[N * ROWS];
    mq_qweight_dequantize(q, D);
    double mag[N * ROWS] = {0};
    for (int i = 0; i < ROWS * COLS; i++)
        FUZZ_CHECK(isfinite(D[i]), "%s: value %d is %g", s->name, i, (double)D[i]);
    for (int n = 0; n < N; n++)
        for (int r = 0; r < ROWS; r++)
            for (int c = 0; c < COLS; c++)
                mag[n * ROWS + r] += fabs((double)X[n * COLS + c] * D[r * COLS + c]);
    FUZZ_CHECK(mq_qlinear_forward_ref(&ql, ref, X, N, &err) == MQ_OK, "%s: %s", s->name, err.msg);
    FUZZ_CHECK(mq_qlinear_forward(&ql, fused, X, N, &err) == MQ_OK, "%s: %s", s->name, err.msg);
    for (int i = 0; i < N * ROWS; i++)
        FUZZ_CHECK(fabs((double)ref[i] - fused[i]) <= 1e-5 * mag[i] + 1e-6,
                   "%s: output %d: reference %g, fused %g", s->name, i, (double)ref[i],
                   (double)fused[i]);
    int type = mq_export_tensor_type(s, COLS);
    FUZZ_CHECK(mq_ggml_type_info(type) != NULL, "%s: no GGUF type (%d)", s->name, type);
    mq_qlinear_free(&ql);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (memchr(data, 0, size)) return 0; /* no argument or GGUF string holds a NUL byte */
    char *name = fuzz_cstr(data, size);
    mq_scheme_t s, again;
    mq_error_t err = {0};
    int rc = mq_scheme_parse(name, &s, &err);
    if (rc) {
        fuzz_check_refusal(rc, &err, NULL);
        FUZZ_CHECK(rc == MQ_ERR_ARG && strstr(err.msg, mq_scheme_grammar()),
                   "the message does not give the grammar: %s", err.msg);
    } else {
        FUZZ_CHECK(!strcmp(s.name, name), "'%s' parses as '%s'", name, s.name);
        FUZZ_CHECK(mq_scheme_parse(s.name, &again, NULL) == MQ_OK && !memcmp(&s, &again, sizeof s),
                   "'%s' does not parse to itself", s.name);
        check_layer(&s);
    }
    free(name);
    return 0;
}
