/* Tests of miniquant's GPTQ: the blocked solver against the plain column-by-column algorithm
 * written out here, GPTQ against round to nearest (better on a correlated Hessian, identical on
 * H = I), singular Hessians, argument checks, and the whole-model quantization of a tiny trained
 * MiniGPT (its calibration loss and output error against RTN, determinism, and the FP32 model
 * left as it was). */
#include <criterion/criterion.h>
#include <lapacke.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "miniquant/gptq.h"
#include "miniquant/rng.h"

/* ---------------------------------------------------------------------------------------------
 * helpers */

static mq_scheme_t scheme(const char *name) {
    mq_scheme_t s;
    mq_error_t err = {0};
    cr_assert_eq(mq_scheme_parse(name, &s, &err), MQ_OK, "%s: %s", name, err.msg);
    return s;
}

static float *randn(mq_rng_t *r, size_t n, float std) {
    float *x = malloc(n * sizeof *x);
    cr_assert(x);
    for (size_t i = 0; i < n; i++)
        x[i] = std * mq_rng_normal(r);
    return x;
}

/* X (n, cols) with correlated columns: each column mixes its own noise with its neighbours'
 * and with a few shared factors, scaled unevenly, as the activations of a trained layer are. */
static float *correlated_inputs(uint64_t seed, int n, int cols) {
    mq_rng_t r;
    mq_rng_seed(&r, seed);
    float *Z = randn(&r, (size_t)n * (cols + 4), 1.0f);
    float *X = malloc((size_t)n * cols * sizeof *X);
    cr_assert(X);
    for (int t = 0; t < n; t++)
        for (int c = 0; c < cols; c++) {
            const float *z = Z + (size_t)t * (cols + 4);
            float v = z[c] + 0.8f * z[(c + 1) % cols] + 0.5f * z[cols + c % 4];
            X[(size_t)t * cols + c] = v * (0.2f + (float)(c % 7));
        }
    free(Z);
    return X;
}

static void hessian_of(mq_gptq_hessian_t *h, const float *X, int n, int cols) {
    mq_error_t err = {0};
    cr_assert_eq(mq_gptq_hessian_init(h, cols, &err), MQ_OK, "%s", err.msg);
    /* in two calls, so that the running sum and count are exercised */
    int n1 = n / 3;
    cr_assert_eq(mq_gptq_hessian_add(h, X, n1, &err), MQ_OK, "%s", err.msg);
    cr_assert_eq(mq_gptq_hessian_add(h, X + (size_t)n1 * cols, n - n1, &err), MQ_OK, "%s",
                 err.msg);
    cr_assert_eq(h->n, (size_t)n);
}

/* The codes and scales of a weight (malloc'd), as mq_qweight_from_codes lays them out. */
typedef struct codes {
    int8_t *c;
    mq_fp16_t *s;
} codes_t;

static codes_t codes_of(const mq_qweight_t *w) {
    codes_t k = {malloc((size_t)w->rows * w->cols), malloc(w->n_scales * sizeof(mq_fp16_t))};
    cr_assert(k.c && k.s);
    mq_error_t err = {0};
    cr_assert_eq(mq_qweight_to_codes(w, k.c, k.s, &err), MQ_OK, "%s", err.msg);
    return k;
}

static void codes_free(codes_t *k) {
    free(k->c);
    free(k->s);
}

/* Whether two weights are stored alike, byte for byte (codes and scales then agree). */
static int same_weight(const mq_qweight_t *a, const mq_qweight_t *b) {
    return a->format == b->format && a->rows == b->rows && a->cols == b->cols &&
           a->row_bytes == b->row_bytes && a->n_scales == b->n_scales &&
           !memcmp(a->data, b->data, (size_t)a->rows * a->row_bytes) &&
           (!a->scales) == (!b->scales) &&
           (!a->scales || !memcmp(a->scales, b->scales, a->n_scales * sizeof *a->scales));
}

static void run_gptq(mq_gptq_result_t *res, const float *W, int rows, int cols,
                     const mq_gptq_hessian_t *h, const char *name, const mq_gptq_opts_t *o) {
    mq_scheme_t s = scheme(name);
    mq_error_t err = {0};
    int rc = mq_gptq_quantize(W, rows, cols, h, &s, o, res, &err);
    cr_assert_eq(rc, MQ_OK, "%s: %s", name, err.msg);
}

/* ---------------------------------------------------------------------------------------------
 * the plain algorithm, column by column, straight from the paper and the reference code:
 * H^-1 by Cholesky, inverse and a second (upper) Cholesky; every column's error reaches every
 * later column at once; group scales from the current weights when a group is first reached. */

typedef struct ref_out {
    int8_t *codes;
    mq_fp16_t *scales;
} ref_out_t;

static void reference_gptq(const float *W0, int rows, int n, const mq_gptq_hessian_t *h,
                           const mq_scheme_t *s, double damp, int act_order, int static_groups,
                           ref_out_t *out) {
    const mq_family_t *tr = s->family;
    int group = s->gran == MQ_QG_GROUP ? s->group : n, ng = n / group;
    size_t n_scales = s->gran == MQ_QG_TENSOR ? 1 : (size_t)rows * ng;
    out->codes = calloc((size_t)rows * n, 1);
    out->scales = calloc(n_scales, sizeof *out->scales);
    double *H = malloc((size_t)n * n * sizeof *H), *W = malloc((size_t)rows * n * sizeof *W);
    int *perm = malloc((size_t)n * sizeof *perm), *inv = malloc((size_t)n * sizeof *inv);
    cr_assert(out->codes && out->scales && H && W && perm && inv);
    for (int i = 0; i < n; i++)
        for (int j = 0; j < n; j++) {
            int a = i < j ? i : j, b = i < j ? j : i;
            H[(size_t)i * n + j] = h->sum[(size_t)a * n + b] / (double)h->n;
        }
    for (size_t i = 0; i < (size_t)rows * n; i++)
        W[i] = W0[i];
    for (int i = 0; i < n; i++)
        if (H[(size_t)i * n + i] == 0.0) {
            H[(size_t)i * n + i] = 1.0;
            for (int r = 0; r < rows; r++)
                W[(size_t)r * n + i] = 0.0;
        }
    /* up-front scales: per tensor, per channel, static groups */
    int dynamic = s->gran == MQ_QG_GROUP && !static_groups;
    if (!dynamic) {
        double tmax = 0.0;
        for (int r = 0; r < rows; r++)
            for (int g = 0; g < ng; g++) {
                double amax = 0.0;
                for (int c = g * group; c < (g + 1) * group; c++)
                    amax = fmax(amax, fabs(W[(size_t)r * n + c]));
                tmax = fmax(tmax, amax);
                if (s->gran != MQ_QG_TENSOR)
                    out->scales[(size_t)r * ng + g] = tr->scale((float)amax, s->bits);
            }
        if (s->gran == MQ_QG_TENSOR) out->scales[0] = tr->scale((float)tmax, s->bits);
    }
    /* act-order: descending diag H, ties by index (insertion sort is stable) */
    for (int i = 0; i < n; i++)
        perm[i] = i;
    if (act_order)
        for (int i = 1; i < n; i++) {
            int v = perm[i], j = i;
            while (j > 0 && H[(size_t)perm[j - 1] * n + perm[j - 1]] < H[(size_t)v * n + v]) {
                perm[j] = perm[j - 1];
                j--;
            }
            perm[j] = v;
        }
    for (int i = 0; i < n; i++)
        inv[perm[i]] = i;
    double *Hp = malloc((size_t)n * n * sizeof *Hp);
    cr_assert(Hp);
    double mean = 0.0;
    for (int i = 0; i < n; i++)
        mean += H[(size_t)i * n + i];
    mean /= n;
    for (int i = 0; i < n; i++)
        for (int j = 0; j < n; j++)
            Hp[(size_t)i * n + j] = H[(size_t)perm[i] * n + perm[j]] + (i == j ? damp * mean : 0.0);
    cr_assert_eq(LAPACKE_dpotrf(LAPACK_ROW_MAJOR, 'L', n, Hp, n), 0);
    cr_assert_eq(LAPACKE_dpotri(LAPACK_ROW_MAJOR, 'L', n, Hp, n), 0);
    for (int i = 0; i < n; i++)
        for (int j = i + 1; j < n; j++)
            Hp[(size_t)i * n + j] = Hp[(size_t)j * n + i];
    cr_assert_eq(LAPACKE_dpotrf(LAPACK_ROW_MAJOR, 'U', n, Hp, n), 0);
    const double *U = Hp;

    double *w = malloc((size_t)n * sizeof *w);
    unsigned char *seen = malloc((size_t)ng);
    cr_assert(w && seen);
    for (int r = 0; r < rows; r++) {
        memset(seen, 0, (size_t)ng);
        for (int j = 0; j < n; j++)
            w[j] = W[(size_t)r * n + perm[j]];
        for (int j = 0; j < n; j++) {
            int c = perm[j], g = c / group;
            size_t si = s->gran == MQ_QG_TENSOR ? 0 : (size_t)r * ng + g;
            if (dynamic && !seen[g]) {
                double amax = 0.0;
                for (int c2 = g * group; c2 < (g + 1) * group; c2++)
                    amax = fmax(amax, fabs(w[inv[c2]]));
                out->scales[si] = tr->scale((float)amax, s->bits);
                seen[g] = 1;
            }
            float scale = mq_fp16_to_fp32(out->scales[si]);
            int8_t code = tr->code((float)w[j], scale, s->bits);
            double err = (w[j] - tr->value(code, scale, s->bits)) / U[(size_t)j * n + j];
            out->codes[(size_t)r * n + c] = code;
            for (int k = j + 1; k < n; k++)
                w[k] -= err * U[(size_t)j * n + k];
        }
    }
    free(H);
    free(W);
    free(Hp);
    free(perm);
    free(inv);
    free(w);
    free(seen);
}

/* ---------------------------------------------------------------------------------------------
 * the solver */

/* 64 x 300 with blocks of 128 (the last block partial), groups that straddle block boundaries
 * (60, 75, 100), per channel, per tensor, nf4 and 3 bits, each plain, with act-order, with
 * static groups and with both; a dead input column. Codes and scales must be those of the
 * plain algorithm, element for element. */
Test(gptq, blocked_solver_matches_column_by_column) {
    enum { ROWS = 64, COLS = 300, N = 400 };
    mq_rng_t r;
    mq_rng_seed(&r, 11);
    float *W = randn(&r, (size_t)ROWS * COLS, 0.02f);
    float *X = correlated_inputs(12, N, COLS);
    for (int t = 0; t < N; t++)
        X[(size_t)t * COLS + 37] = 0.0f; /* a dead input */
    mq_gptq_hessian_t h;
    hessian_of(&h, X, N, COLS);
    static const char *const names[] = {"int4_g60", "int4_g75",         "int4_g100",
                                        "int8_per_channel", "int4_per_tensor", "nf4_g50",
                                        "int3_g30", "int2_g150"};
    static const int blocks[] = {128, 128, 128, 128, 128, 128, 128, 37};
    int mismatched_vs_rtn = 0;
    for (size_t k = 0; k < sizeof names / sizeof names[0]; k++)
        for (int mode = 0; mode < 4; mode++) {
            mq_gptq_opts_t o;
            mq_gptq_opts_default(&o);
            o.block = blocks[k];
            o.act_order = mode & 1;
            o.static_groups = (mode >> 1) & 1;
            o.losses = 0;
            mq_gptq_result_t res;
            run_gptq(&res, W, ROWS, COLS, &h, names[k], &o);
            cr_assert_eq(res.n_dead, 1);
            mq_scheme_t s = scheme(names[k]);
            ref_out_t ref;
            reference_gptq(W, ROWS, COLS, &h, &s, o.damp, o.act_order, o.static_groups, &ref);
            /* stored in the scheme's format, as round to nearest stores it */
            mq_error_t err = {0};
            cr_assert_eq(res.q.format, mq_format_for(&s, COLS, &err), "%s", names[k]);
            cr_assert_eq(res.q.n_scales, mq_scheme_n_scales(&s, ROWS, COLS));
            codes_t got = codes_of(&res.q);
            for (size_t i = 0; i < res.q.n_scales; i++)
                cr_assert_eq(got.s[i], ref.scales[i], "%s mode %d: scale %zu: %04x vs %04x",
                             names[k], mode, i, got.s[i], ref.scales[i]);
            for (size_t i = 0; i < (size_t)ROWS * COLS; i++)
                cr_assert_eq(got.c[i], ref.codes[i], "%s mode %d: code (%zu, %zu): %d vs %d",
                             names[k], mode, i / COLS, i % COLS, got.c[i], ref.codes[i]);
            /* the dead input's codes are those of 0 */
            for (int row = 0; row < ROWS; row++)
                cr_assert_eq(got.c[(size_t)row * COLS + 37], s.family->code(0.0f, 1.0f, s.bits));
            /* and GPTQ did move weights off their RTN grid points */
            mq_qweight_t rtn;
            cr_assert_eq(mq_qweight_quantize(&rtn, &s, W, ROWS, COLS, &err), MQ_OK);
            codes_t want = codes_of(&rtn);
            for (size_t i = 0; i < (size_t)ROWS * COLS; i++)
                mismatched_vs_rtn += want.c[i] != got.c[i];
            codes_free(&want);
            codes_free(&got);
            mq_qweight_free(&rtn);
            free(ref.codes);
            free(ref.scales);
            mq_gptq_result_free(&res);
        }
    cr_assert_gt(mismatched_vs_rtn, 1000);
    mq_gptq_hessian_free(&h);
    free(W);
    free(X);
}

/* The block size changes the order of the floating-point sums only. */
Test(gptq, block_size_does_not_change_the_codes) {
    enum { ROWS = 48, COLS = 256, N = 300 };
    mq_rng_t r;
    mq_rng_seed(&r, 5);
    float *W = randn(&r, (size_t)ROWS * COLS, 1.0f);
    float *X = correlated_inputs(6, N, COLS);
    mq_gptq_hessian_t h;
    hessian_of(&h, X, N, COLS);
    mq_gptq_opts_t o;
    mq_gptq_opts_default(&o);
    o.act_order = 1;
    mq_gptq_result_t a, b;
    o.block = 1;
    run_gptq(&a, W, ROWS, COLS, &h, "int4_g64", &o);
    o.block = 1000;
    run_gptq(&b, W, ROWS, COLS, &h, "int4_g64", &o);
    cr_assert(same_weight(&a.q, &b.q));
    cr_assert_eq(a.loss, b.loss);
    mq_gptq_result_free(&a);
    mq_gptq_result_free(&b);
    mq_gptq_hessian_free(&h);
    free(W);
    free(X);
}

/* On correlated inputs GPTQ's layer loss is well below RTN's, for every grid and option; the
 * losses reported agree with mq_gptq_loss and with a direct double-precision sum. */
Test(gptq, beats_rtn_on_a_correlated_hessian) {
    enum { ROWS = 96, COLS = 192, N = 512 };
    mq_rng_t r;
    mq_rng_seed(&r, 21);
    float *W = randn(&r, (size_t)ROWS * COLS, 0.02f);
    float *X = correlated_inputs(22, N, COLS);
    mq_gptq_hessian_t h;
    hessian_of(&h, X, N, COLS);
    static const char *const names[] = {"int4_g64", "int4_per_channel", "int8_per_tensor",
                                        "nf4_g64", "int3_g32"};
    for (size_t k = 0; k < sizeof names / sizeof names[0]; k++)
        for (int mode = 0; mode < 3; mode++) {
            mq_gptq_opts_t o;
            mq_gptq_opts_default(&o);
            o.act_order = mode >= 1;
            o.static_groups = mode == 2;
            mq_gptq_result_t res;
            run_gptq(&res, W, ROWS, COLS, &h, names[k], &o);
            cr_assert(res.loss > 0.0 && res.loss < 0.8 * res.loss_rtn,
                      "%s mode %d: loss %g vs RTN %g", names[k], mode, res.loss, res.loss_rtn);
            double sum = 0.0, sum_rtn = 0.0;
            for (int i = 0; i < ROWS; i++) {
                sum += res.row_loss[i];
                sum_rtn += res.row_loss_rtn[i];
            }
            cr_assert_float_eq(sum, res.loss, 1e-9 * res.loss);
            cr_assert_float_eq(sum_rtn, res.loss_rtn, 1e-9 * res.loss_rtn);

            /* tr(E H E^T) directly, in double, from the X rows: mean of ||E x||^2 */
            float *D = malloc((size_t)ROWS * COLS * sizeof *D);
            mq_qweight_dequantize(&res.q, D);
            double direct = 0.0;
            for (int t = 0; t < N; t++)
                for (int i = 0; i < ROWS; i++) {
                    double y = 0.0;
                    for (int c = 0; c < COLS; c++)
                        y += ((double)W[(size_t)i * COLS + c] - D[(size_t)i * COLS + c]) *
                             X[(size_t)t * COLS + c];
                    direct += y * y;
                }
            direct /= N;
            cr_assert(fabs(direct - res.loss) < 1e-4 * direct, "%s: loss %g, direct %g",
                      names[k], res.loss, direct);
            double again;
            mq_error_t err = {0};
            cr_assert_eq(mq_gptq_loss(W, &res.q, &h, NULL, &again, &err), MQ_OK, "%s", err.msg);
            cr_assert_float_eq(again, res.loss, 1e-12 * res.loss);
            free(D);
            mq_gptq_result_free(&res);
        }
    mq_gptq_hessian_free(&h);
    free(W);
    free(X);
}

/* GPTQ on ggml's K-quants and IQ4_NL: each block's scales chosen under diag H when the block is
 * first reached, the codes on that grid by GPTQ. Its loss is well below round to nearest's
 * under the same importance, the stored bytes give the values the loss was computed on, and a
 * row 256 does not divide (the q5_0 fallback, which has no nearest hook) is round to nearest
 * under diag H. */
Test(gptq, k_quants_beat_their_importance_weighted_rtn) {
    enum { ROWS = 48, COLS = 512, N = 768 };
    mq_rng_t r;
    mq_rng_seed(&r, 31);
    float *W = randn(&r, (size_t)ROWS * COLS, 0.02f);
    float *X = correlated_inputs(32, N, COLS);
    mq_gptq_hessian_t h;
    hessian_of(&h, X, N, COLS);
    static const char *const names[] = {"q4_k_gptq", "q5_k_gptq", "q6_k_gptq", "iq4_nl_gptq",
                                        "q3_k_gptq", "q2_k_gptq"};
    for (size_t k = 0; k < sizeof names / sizeof names[0]; k++)
        for (int act = 0; act < 2; act++) {
            mq_gptq_opts_t o;
            mq_gptq_opts_default(&o);
            o.act_order = act;
            mq_gptq_result_t res;
            run_gptq(&res, W, ROWS, COLS, &h, names[k], &o);
            cr_assert(res.loss > 0.0 && res.loss < 0.8 * res.loss_rtn,
                      "%s act_order %d: loss %g vs RTN %g", names[k], act, res.loss,
                      res.loss_rtn);
            double again;
            mq_error_t err = {0};
            cr_assert_eq(mq_gptq_loss(W, &res.q, &h, NULL, &again, &err), MQ_OK, "%s", err.msg);
            cr_assert_float_eq(again, res.loss, 1e-12 * res.loss);
            char fmt[8];
            snprintf(fmt, sizeof fmt, "%.*s", (int)(strchr(names[k], '_') - names[k]) +
                                                  (names[k][0] == 'i' ? 3 : 2), names[k]);
            cr_assert_str_eq(res.q.format->name, fmt);
            mq_gptq_result_free(&res);
        }
    /* 96 inputs: q4_k's fallback, q5_0, is round to nearest under diag H */
    mq_gptq_hessian_t h96;
    hessian_of(&h96, X, N, 96);
    float *W96 = randn(&r, (size_t)ROWS * 96, 0.02f);
    mq_gptq_result_t res;
    run_gptq(&res, W96, ROWS, 96, &h96, "q4_k_gptq", NULL);
    cr_assert_str_eq(res.q.format->name, "q5_0");
    mq_qweight_t rtn;
    mq_error_t err = {0};
    mq_scheme_t s = scheme("q4_k_gptq");
    float imp[96];
    for (int c = 0; c < 96; c++)
        imp[c] = (float)(h96.sum[(size_t)c * 96 + c] / (double)h96.n);
    cr_assert_eq(mq_qweight_quantize_imp(&rtn, &s, W96, ROWS, 96, imp, &err), MQ_OK, "%s",
                 err.msg);
    cr_assert(!memcmp(rtn.data, res.q.data, (size_t)ROWS * rtn.row_bytes));
    mq_qweight_free(&rtn);
    mq_gptq_result_free(&res);
    mq_gptq_hessian_free(&h96);
    mq_gptq_hessian_free(&h);
    free(W96);
    free(W);
    free(X);
}

/* With H = I no error can be compensated (U is diagonal): GPTQ is round to nearest, code for
 * code and scale for scale, and the losses are equal. */
Test(gptq, identity_hessian_gives_rtn) {
    enum { ROWS = 40, COLS = 256 };
    mq_rng_t r;
    mq_rng_seed(&r, 31);
    float *W = randn(&r, (size_t)ROWS * COLS, 0.05f);
    mq_gptq_hessian_t h;
    mq_error_t err = {0};
    cr_assert_eq(mq_gptq_hessian_init(&h, COLS, &err), MQ_OK);
    for (int i = 0; i < COLS; i++)
        h.sum[(size_t)i * COLS + i] = 3.0;
    h.n = 3;
    static const char *const names[] = {"int4_g64", "int8_per_channel", "int4_per_tensor",
                                        "nf4_g32", "int2_g128"};
    for (size_t k = 0; k < sizeof names / sizeof names[0]; k++)
        for (int act = 0; act < 2; act++) {
            mq_gptq_opts_t o;
            mq_gptq_opts_default(&o);
            o.act_order = act;
            mq_gptq_result_t res;
            run_gptq(&res, W, ROWS, COLS, &h, names[k], &o);
            mq_qweight_t rtn;
            mq_scheme_t s = scheme(names[k]);
            cr_assert_eq(mq_qweight_quantize(&rtn, &s, W, ROWS, COLS, &err), MQ_OK);
            cr_assert(same_weight(&res.q, &rtn), "%s act-order %d", names[k], act);
            cr_assert_float_eq(res.loss, res.loss_rtn, 1e-12 * res.loss_rtn);
            mq_qweight_free(&rtn);
            mq_gptq_result_free(&res);
        }
    mq_gptq_hessian_free(&h);
    free(W);
}

static void assert_finite_result(const mq_gptq_result_t *res, int rows, const char *what) {
    const mq_scheme_t *s = &res->q.scheme;
    int lo = s->family->code_min(s->bits), hi = s->family->code_max(s->bits);
    codes_t k = codes_of(&res->q);
    for (size_t i = 0; i < (size_t)rows * res->q.cols; i++)
        cr_assert(k.c[i] >= lo && k.c[i] <= hi, "%s", what);
    for (size_t i = 0; i < res->q.n_scales; i++)
        cr_assert(isfinite(mq_fp16_to_fp32(k.s[i])), "%s", what);
    codes_free(&k);
    cr_assert(isfinite(res->loss) && res->loss >= 0.0, "%s: loss %g", what, res->loss);
    for (int i = 0; i < rows; i++)
        cr_assert(isfinite(res->row_loss[i]) && isfinite(res->row_loss_rtn[i]), "%s", what);
}

/* Dead inputs, fewer calibration rows than inputs (rank 16 of 128), all inputs dead, and an
 * exactly singular H without damping (refused with a message). */
Test(gptq, singular_hessians) {
    enum { ROWS = 32, COLS = 128, N = 16 };
    mq_rng_t r;
    mq_rng_seed(&r, 41);
    float *W = randn(&r, (size_t)ROWS * COLS, 0.02f);
    float *X = randn(&r, (size_t)N * COLS, 1.0f);
    for (int t = 0; t < N; t++)
        X[(size_t)t * COLS + 5] = X[(size_t)t * COLS + 90] = 0.0f;
    mq_gptq_hessian_t h;
    hessian_of(&h, X, N, COLS);
    for (int act = 0; act < 2; act++) {
        mq_gptq_opts_t o;
        mq_gptq_opts_default(&o);
        o.act_order = act;
        mq_gptq_result_t res;
        run_gptq(&res, W, ROWS, COLS, &h, "int4_g32", &o);
        cr_assert_eq(res.n_dead, 2);
        assert_finite_result(&res, ROWS, "rank-deficient");
        cr_assert_lt(res.loss, res.loss_rtn);
        codes_t k = codes_of(&res.q);
        for (int i = 0; i < ROWS; i++) {
            cr_assert_eq(k.c[(size_t)i * COLS + 5], 0);
            cr_assert_eq(k.c[(size_t)i * COLS + 90], 0);
        }
        codes_free(&k);
        mq_gptq_result_free(&res);
    }

    /* no damping: H itself is singular */
    mq_gptq_opts_t o;
    mq_gptq_opts_default(&o);
    o.damp = 0.0;
    mq_scheme_t s = scheme("int4_g32");
    mq_gptq_result_t res;
    mq_error_t err = {0};
    cr_assert_eq(mq_gptq_quantize(W, ROWS, COLS, &h, &s, &o, &res, &err), MQ_ERR_ARG);
    cr_assert(strstr(err.msg, "positive definite"), "%s", err.msg);
    cr_assert_null(res.q.data);

    /* every input dead: W is zeroed, H = I */
    memset(h.sum, 0, (size_t)COLS * COLS * sizeof *h.sum);
    run_gptq(&res, W, ROWS, COLS, &h, "int4_g32", NULL);
    cr_assert_eq(res.n_dead, COLS);
    assert_finite_result(&res, ROWS, "all dead");
    codes_t k = codes_of(&res.q);
    for (size_t i = 0; i < (size_t)ROWS * COLS; i++)
        cr_assert_eq(k.c[i], 0);
    codes_free(&k);
    cr_assert_eq(res.loss, 0.0);
    mq_gptq_result_free(&res);
    mq_gptq_hessian_free(&h);
    free(W);
    free(X);
}

Test(gptq, bad_arguments) {
    enum { ROWS = 8, COLS = 64 };
    mq_rng_t r;
    mq_rng_seed(&r, 51);
    float *W = randn(&r, (size_t)ROWS * COLS, 1.0f);
    float *X = randn(&r, (size_t)10 * COLS, 1.0f);
    mq_gptq_hessian_t h;
    hessian_of(&h, X, 10, COLS);
    mq_gptq_result_t res;
    mq_error_t err = {0};
    mq_scheme_t s = scheme("int4_g64"), f16 = scheme("fp16"), g48 = scheme("int4_g48");
    cr_assert_eq(mq_gptq_quantize(W, ROWS, COLS, &h, &f16, NULL, &res, &err), MQ_ERR_ARG);
    cr_assert(strstr(err.msg, "fp16"), "%s", err.msg);
    cr_assert_eq(mq_gptq_quantize(W, ROWS, COLS, &h, &g48, NULL, &res, &err), MQ_ERR_ARG);
    cr_assert(strstr(err.msg, "does not divide"), "%s", err.msg);
    cr_assert_eq(mq_gptq_quantize(W, ROWS, COLS - 1, &h, &s, NULL, &res, &err), MQ_ERR_ARG);
    mq_gptq_opts_t o;
    mq_gptq_opts_default(&o);
    o.damp = -1.0;
    cr_assert_eq(mq_gptq_quantize(W, ROWS, COLS, &h, &s, &o, &res, &err), MQ_ERR_ARG);
    W[3 * COLS + 7] = NAN;
    cr_assert_eq(mq_gptq_quantize(W, ROWS, COLS, &h, &s, NULL, &res, &err), MQ_ERR_ARG);
    cr_assert(strstr(err.msg, "(3, 7)"), "%s", err.msg);
    W[3 * COLS + 7] = 0.0f;
    h.n = 0;
    cr_assert_eq(mq_gptq_quantize(W, ROWS, COLS, &h, &s, NULL, &res, &err), MQ_ERR_ARG);
    cr_assert_eq(mq_gptq_hessian_add(&h, NULL, 3, &err), MQ_ERR_ARG);
    mq_gptq_hessian_free(&h);
    free(W);
    free(X);
}

/* ---------------------------------------------------------------------------------------------
 * the whole model */

static mq_gpt_config_t tiny_config(void) {
    mq_gpt_config_t cfg;
    memset(&cfg, 0, sizeof cfg);
    strcpy(cfg.name, "custom");
    cfg.vocab_size = 48;
    cfg.n_ctx = 16;
    cfg.n_embd = 64;
    cfg.n_head = 2;
    cfg.n_layer = 2;
    return cfg;
}

/* A stream with structure a small model learns quickly: short arithmetic runs with random
 * starts and steps, separated by token 0. */
static int32_t *toy_stream(uint64_t seed, size_t n, int V) {
    mq_rng_t r;
    mq_rng_seed(&r, seed);
    int32_t *s = malloc(n * sizeof *s);
    cr_assert(s);
    size_t i = 0;
    while (i < n) {
        int a = 1 + (int)mq_rng_below(&r, (uint64_t)(V - 1)), d = 1 + (int)mq_rng_below(&r, 3);
        int len = 3 + (int)mq_rng_below(&r, 6);
        for (int k = 0; k < len && i < n; k++)
            s[i++] = 1 + (a - 1 + k * d) % (V - 1);
        if (i < n) s[i++] = 0;
    }
    return s;
}

static void train(mq_gpt_t *m, const int32_t *stream, size_t n, int steps) {
    enum { B = 16 };
    int T = m->cfg.n_ctx;
    int x[B * 16], y[B * 16];
    mq_rng_t r;
    mq_rng_seed(&r, 77);
    mq_error_t err = {0};
    for (int step = 1; step <= steps; step++) {
        for (int b = 0; b < B; b++) {
            size_t st = mq_rng_below(&r, n - (size_t)T - 1);
            for (int t = 0; t < T; t++) {
                x[b * T + t] = stream[st + t];
                y[b * T + t] = stream[st + t + 1];
            }
        }
        cr_assert_eq(mq_gpt_forward(m, x, y, B, T, &err), MQ_OK, "%s", err.msg);
        cr_assert_eq(mq_gpt_zero_grad(m, &err), MQ_OK);
        cr_assert_eq(mq_gpt_backward(m, &err), MQ_OK, "%s", err.msg);
        mq_gpt_clip_grad_norm(m, 1.0f);
        cr_assert_eq(mq_gpt_adamw_update(m, 3e-3f, 0.9f, 0.95f, 1e-8f, 0.0f, step, &err), MQ_OK);
    }
}

/* Mean cross-entropy over windows of the stream and, when ref is given, the mean squared
 * difference of the logits from ref (the FP32 model's, same windows). */
static double evaluate(mq_gpt_t *m, const int32_t *stream, size_t n, int windows, float *logits,
                       const float *ref, double *mse) {
    int T = m->cfg.n_ctx, V = m->cfg.vocab_size;
    int x[16], y[16];
    mq_error_t err = {0};
    double loss = 0.0, se = 0.0;
    for (int w = 0; w < windows; w++) {
        size_t st = (size_t)w * (n - (size_t)T - 1) / (size_t)(windows - 1);
        for (int t = 0; t < T; t++) {
            x[t] = stream[st + t];
            y[t] = stream[st + t + 1];
        }
        cr_assert_eq(mq_gpt_forward(m, x, y, 1, T, &err), MQ_OK, "%s", err.msg);
        loss += m->mean_loss;
        float *lg = logits + (size_t)w * T * V;
        memcpy(lg, m->acts.logits, (size_t)T * V * sizeof *lg);
        if (ref)
            for (size_t i = 0; i < (size_t)T * V; i++) {
                double d = (double)lg[i] - ref[(size_t)w * T * V + i];
                se += d * d;
            }
    }
    if (mse) *mse = se / ((double)windows * T * V);
    return loss / windows;
}

/* Whether m's parameters are still those saved in before, bit for bit. */
static int unchanged(const mq_gpt_t *m, const float *before) {
    return m->linear_fn == NULL &&
           memcmp(m->params_memory, before, m->num_params * sizeof(float)) == 0;
}

/* A tiny MiniGPT trained for a few hundred steps, quantized to int3_g16 (coarse enough that the
 * difference is far above noise) by RTN and by GPTQ on a calibration stream; evaluated on that
 * stream and on held-out windows. GPTQ must not lose to RTN, two runs must agree, and neither
 * may touch the FP32 model they start from. */
Test(gptq_model, beats_rtn_and_is_deterministic) {
    mq_gpt_config_t cfg = tiny_config();
    mq_gpt_t base;
    mq_error_t err = {0};
    cr_assert_eq(mq_gpt_init(&base, &cfg, &err), MQ_OK);
    mq_gpt_init_weights(&base, 3);
    size_t n_train = 20000, n_calib = 4000;
    int32_t *train_s = toy_stream(1, n_train, cfg.vocab_size);
    int32_t *calib = toy_stream(2, n_calib, cfg.vocab_size);
    train(&base, train_s, n_train, 300);
    float *before = malloc(base.num_params * sizeof(float));
    cr_assert(before);
    memcpy(before, base.params_memory, base.num_params * sizeof(float));

    enum { WINDOWS = 64 };
    size_t nlog = (size_t)WINDOWS * cfg.n_ctx * cfg.vocab_size;
    float *ref = malloc(nlog * sizeof *ref), *tmp = malloc(nlog * sizeof *tmp);
    double loss_fp32 = evaluate(&base, calib, n_calib, WINDOWS, ref, NULL, NULL);
    cr_assert_lt(loss_fp32, 2.5, "the tiny model did not learn (loss %g)", loss_fp32);

    /* round to nearest, built the way its name says */
    mq_scheme_t s = scheme("int3_g16_gptq"), s_rtn = scheme("int3_g16");
    mq_qmodel_t qr, qg, qg2;
    cr_assert_eq(mq_gptq_build_qmodel(&base, &s_rtn, 0, NULL, 0, &qr, &err), MQ_OK, "%s", err.msg);
    cr_assert(unchanged(&base, before), "round to nearest changed the FP32 model");
    cr_assert_eq(mq_gptq_build_qmodel(&base, &s, 0, NULL, 0, &qg, &err), MQ_ERR_ARG);
    cr_assert(strstr(err.msg, "needs calibration tokens"), "%s", err.msg);

    mq_gptq_opts_t o;
    mq_gptq_opts_default(&o);
    o.n_samples = 64;
    o.batch = 24; /* not a divisor of n_samples: the last batch is short */
    int nl = mq_qmodel_n_linear(&cfg);
    mq_gptq_layer_stats_t st[9];
    cr_assert_eq(nl, 9);
    int rc = mq_gptq_quantize_model(&base, &s, calib, n_calib, &o, 0, &qg, st, &err);
    cr_assert_eq(rc, MQ_OK, "%s", err.msg);
    cr_assert(unchanged(&base, before), "GPTQ changed the FP32 model");
    cr_assert_str_eq(qg.scheme.name, "int3_g16_gptq");
    cr_assert_eq(qg.model->linear_ctx, &qg);
    cr_assert_neq(qg.model, &base);
    for (int i = 0; i < nl; i++) {
        cr_assert(qg.active[i] && st[i].quantized);
        cr_assert_eq(qg.ql[i].w.format, qr.ql[i].w.format, "Linear %d", i);
        cr_assert_eq(qg.ql[i].w.scheme.family, s.family);
        cr_assert(st[i].loss <= st[i].loss_rtn, "Linear %d: %g vs %g", i, st[i].loss,
                  st[i].loss_rtn);
    }
    /* the embeddings are rounded to FP16 as RTN rounds them, in the quantized models only */
    size_t ne = base.param_sizes[MQ_P_WTE] + base.param_sizes[MQ_P_WPE];
    cr_assert_eq(memcmp(qg.model->params.wte, qr.model->params.wte, ne * sizeof(float)), 0);
    int rounded = 0;
    for (size_t k = 0; k < ne; k++) {
        cr_assert_eq(qg.model->params.wte[k], mq_round_fp16(base.params.wte[k]));
        rounded += qg.model->params.wte[k] != base.params.wte[k];
    }
    cr_assert_gt(rounded, 0);
    mq_model_bytes_t br, bg;
    mq_model_bytes(NULL, &qr, &br);
    mq_model_bytes(NULL, &qg, &bg);
    cr_assert_eq(br.total, bg.total);

    double mse_r, mse_g;
    double loss_r = evaluate(qr.model, calib, n_calib, WINDOWS, tmp, ref, &mse_r);
    double loss_g = evaluate(qg.model, calib, n_calib, WINDOWS, tmp, ref, &mse_g);
    cr_assert(isfinite(loss_g));
    cr_assert_leq(loss_g, loss_r, "calibration loss: GPTQ %g, RTN %g (FP32 %g)", loss_g, loss_r,
                  loss_fp32);
    cr_assert_lt(mse_g, mse_r, "logit error: GPTQ %g, RTN %g", mse_g, mse_r);
    /* on held-out windows too */
    int32_t *held = toy_stream(9, n_calib, cfg.vocab_size);
    evaluate(&base, held, n_calib, WINDOWS, ref, NULL, NULL);
    evaluate(qr.model, held, n_calib, WINDOWS, tmp, ref, &mse_r);
    evaluate(qg.model, held, n_calib, WINDOWS, tmp, ref, &mse_g);
    cr_assert_lt(mse_g, mse_r, "held-out logit error: GPTQ %g, RTN %g", mse_g, mse_r);
    cr_assert(unchanged(&base, before), "running the quantized models changed the FP32 one");

    /* deterministic; skip_lm_head leaves lm_head FP32, m's own weight */
    rc = mq_gptq_quantize_model(&base, &s, calib, n_calib, &o, 1, &qg2, NULL, &err);
    cr_assert_eq(rc, MQ_OK, "%s", err.msg);
    cr_assert_eq(qg2.active[nl - 1], 0);
    cr_assert_str_eq(qg2.ql[nl - 1].w.format->name, "f32");
    cr_assert_eq((const void *)qg2.ql[nl - 1].w.data, (const void *)base.params.lmw);
    for (int i = 0; i < nl - 1; i++)
        cr_assert(same_weight(&qg.ql[i].w, &qg2.ql[i].w), "Linear %d", i);

    /* a failure leaves the model as it was and the quantized model empty */
    mq_qmodel_t qf;
    mq_scheme_t bad = scheme("int4_g48"); /* does not divide C = 64 */
    rc = mq_gptq_quantize_model(&base, &bad, calib, n_calib, &o, 0, &qf, NULL, &err);
    cr_assert_eq(rc, MQ_ERR_ARG);
    cr_assert(strstr(err.msg, "does not divide"), "%s", err.msg);
    cr_assert(qf.ql == NULL && qf.model == NULL && qf.active == NULL);
    cr_assert(unchanged(&base, before));

    mq_qmodel_free(&qr);
    mq_qmodel_free(&qg);
    mq_qmodel_free(&qg2);
    cr_assert(unchanged(&base, before));
    mq_gpt_free(&base);
    free(before);
    free(train_s);
    free(calib);
    free(held);
    free(ref);
    free(tmp);
}
