/* Scheme names (mq_scheme_parse, what --scheme and miniquant.scheme go through) on arbitrary
 * strings.
 *
 * A refused name gets a message quoting the grammar. An accepted one is canonical (its parsed
 * name is the input) and works: a small Linear quantized with it is stored in the format
 * mq_format_for names, keeps codes on the grid and finite values that are exactly the grid's,
 * its bytes pass the loader's checks, and the fused forward agrees with the reference forward. */
#include <math.h>

#include "fuzz.h"
#include "miniquant/format.h"
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
    /* an _imat scheme quantizes under an importance (from calibration in the commands) */
    float imp[COLS];
    for (int c = 0; c < COLS; c++)
        imp[c] = 1.0f + (float)(c % 5);
    mq_qweight_t w;
    int rc = mq_qweight_quantize_imp(&w, s, W, ROWS, COLS, s->imat ? imp : NULL, &err);
    if (rc == MQ_OK) rc = mq_qlinear_from_weight(&ql, &w, B, &err);
    if (s->gran == MQ_QG_GROUP && COLS % s->group) {
        FUZZ_CHECK(rc == MQ_ERR_ARG && strstr(err.msg, "does not divide"),
                   "%s on %d columns: %d %s", s->name, COLS, rc, err.msg);
        return;
    }
    FUZZ_CHECK(rc == MQ_OK, "%s: %s", s->name, err.msg);
    const mq_qweight_t *q = &ql.w;
    const mq_format_t *f = mq_format_for(s, COLS, &err);
    FUZZ_CHECK(f && q->format == f, "%s: stored as %s, not %s", s->name, q->format->name,
               f ? f->name : err.msg);
    FUZZ_CHECK(mq_ggml_type_info(f->ggml_type) != NULL, "%s: no GGUF type (%d)", s->name,
               f->ggml_type);
    FUZZ_CHECK(q->n_scales == mq_scheme_n_scales(s, ROWS, COLS), "%s: n_scales", s->name);
    FUZZ_CHECK(q->row_bytes == f->row_bytes(s, COLS), "%s: row bytes", s->name);
    float D[ROWS * COLS], ref[N * ROWS], fused[N * ROWS];
    mq_qweight_dequantize(q, D);
    if (mq_scheme_has_grid(s)) {
        /* codes on the grid, and values exactly value(code, scale) */
        const mq_family_t *fam = s->family;
        int lo = fam->code_min(s->bits), hi = fam->code_max(s->bits), group = q->group;
        int8_t codes[ROWS * COLS];
        mq_fp16_t scales[ROWS * COLS];
        FUZZ_CHECK(mq_qweight_to_codes(q, codes, scales, &err) == MQ_OK, "%s: %s", s->name,
                   err.msg);
        for (int i = 0; i < ROWS * COLS; i++) {
            size_t k = s->gran == MQ_QG_TENSOR ? 0 : (size_t)i / (size_t)group;
            float v = fam->value(codes[i], mq_fp16_to_fp32(scales[k]), s->bits);
            FUZZ_CHECK(codes[i] >= lo && codes[i] <= hi, "%s: code %d", s->name, codes[i]);
            FUZZ_CHECK(!memcmp(&v, &D[i], sizeof v), "%s: value %d is %g, the grid's %g", s->name,
                       i, (double)D[i], (double)v);
        }
    }
    /* what the quantizer writes, the loader accepts */
    mq_qweight_t back;
    mq_row_fault_t fault;
    int bad_row = -1;
    FUZZ_CHECK(mq_qweight_load(&back, s, f, ROWS, COLS, q->data, q->scales, 1, &bad_row, &fault,
                               &err) == MQ_OK,
               "%s: the loader refuses row %d: %s", s->name, bad_row, err.msg);
    mq_qweight_free(&back);
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
