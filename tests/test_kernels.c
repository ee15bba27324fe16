/* Tests of miniquant's fused kernels: every SIMD version against the portable scalar one, the
 * scalar one against the reference path (dequantize + sgemm), the QuantizedLinear and qmodel
 * integration, the int8-activation mode's error bound, and the choice of version.
 *
 * Tolerance of "the same numbers up to FP32 summation order": for every output,
 *   |y - y_ref| <= 1e-5 * sum_i |x_i| |w_i|  (+ 1e-6 * |bias|)
 * where w is the dequantized weight: FP32 summation of C products, in any order, errs by at
 * most about C * 2^-24 of that sum; 1e-5 leaves room for C in the hundreds.
 *
 * Shapes are chosen not to fit the vector widths or blocks: 37 and 70 output rows (not
 * multiples of 16, 32 or 2), 37 and 130 columns for whole-row scales, 96 columns with groups of
 * 32 (not a multiple of 64), 1, 3, 13 and 64 x rows (every tile remainder). */
#include <criterion/criterion.h>
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "miniquant/kernels.h"
#include "miniquant/model.h"
#include "miniquant/qmodel.h"
#include "miniquant/quant.h"
#include "miniquant/rng.h"

#define TOL 1e-5

/* ---------------------------------------------------------------------------------------------
 * helpers */

static float *randn(uint64_t seed, size_t n, float sd) {
    mq_rng_t r;
    mq_rng_seed(&r, seed);
    float *x = malloc(n * sizeof(float));
    cr_assert(x);
    for (size_t i = 0; i < n; i++)
        x[i] = sd * mq_rng_normal(&r);
    return x;
}

static mq_scheme_t scheme(const char *name) {
    mq_scheme_t s;
    mq_error_t err = {0};
    cr_assert_eq(mq_scheme_parse(name, &s, &err), MQ_OK, "%s: %s", name, err.msg);
    return s;
}

/* A QuantizedLinear of a seeded random weight (and bias when with_bias). */
static void make_linear(mq_qlinear_t *ql, const char *name, int OC, int C, int with_bias,
                        uint64_t seed) {
    float *W = randn(seed, (size_t)OC * C, 0.05f);
    float *b = with_bias ? randn(seed + 1, (size_t)OC, 0.5f) : NULL;
    mq_scheme_t s = scheme(name);
    mq_error_t err = {0};
    cr_assert_eq(mq_qlinear_from_linear(ql, W, b, OC, C, &s, &err), MQ_OK, "%s: %s", name, err.msg);
    free(W);
    free(b);
}

/* scale[n * OC + o] = sum_i |x[n][i]| |w[o][i]| (dequantized weight), the tolerance's yardstick. */
static double *abs_dot(const mq_qlinear_t *ql, const float *x, int N) {
    int OC = ql->out, C = ql->in;
    float *W = malloc((size_t)OC * C * sizeof *W);
    double *s = malloc((size_t)N * OC * sizeof *s);
    cr_assert(W && s);
    mq_qweight_dequantize(&ql->w, W);
    for (int n = 0; n < N; n++)
        for (int o = 0; o < OC; o++) {
            double a = 0.0;
            for (int i = 0; i < C; i++)
                a += fabs((double)x[(size_t)n * C + i] * W[(size_t)o * C + i]);
            s[(size_t)n * OC + o] = a;
        }
    free(W);
    return s;
}

static void assert_close(const float *y, const float *want, const double *scale, const float *bias,
                         int N, int OC, double tol, const char *what) {
    for (int n = 0; n < N; n++)
        for (int o = 0; o < OC; o++) {
            size_t k = (size_t)n * OC + o;
            double bound = tol * scale[k] + 1e-6 * (bias ? fabs(bias[o]) : 0.0) + 1e-30;
            cr_assert(fabs((double)y[k] - want[k]) <= bound,
                      "%s: y[%d][%d] = %.9g, want %.9g (bound %.3g)", what, n, o, (double)y[k],
                      (double)want[k], bound);
        }
}

/* Runs p with a version into a fresh buffer. */
static float *run(const mq_qpacked_t *p, mq_isa_t isa, int a8, const float *bias, const float *x,
                  int N) {
    float *y = malloc((size_t)N * p->rows * sizeof *y);
    cr_assert(y);
    mq_error_t err = {0};
    cr_assert_eq(mq_qpacked_forward_with(p, isa, a8, bias, y, x, N, &err), MQ_OK, "%s", err.msg);
    return y;
}

/* A scheme with the shapes it is tested on. */
typedef struct kcase {
    const char *scheme;
    int OC, C;
} kcase_t;

static const kcase_t CASES[] = {
    {"int8_per_tensor", 37, 37},
    {"int8_per_tensor", 70, 130},
    {"int8_per_channel", 37, 37},
    {"int8_per_channel", 70, 130},
    {"int8_g32", 37, 96},
    {"int8_g64", 37, 192},
    {"int4_per_channel", 37, 37},
    {"int4_per_channel", 70, 130},
    {"int4_g32", 37, 96},
    {"int4_g64", 37, 192},
    {"int4_g128", 37, 384},
    {"nf4_g64", 37, 192},
    {"nf4_g32", 70, 96},
    {"fp16", 37, 37},
    {"fp16", 70, 130},
    {"int3_g48", 37, 96},
    {"int2_g16", 37, 96},
    {"int6_per_channel", 37, 130},
    {"int5_g64", 70, 192},
    {"int4_g24", 37, 96},
    {"int8_g96", 37, 192},
    {"int4_g64", 37, 1024},
    {"int8_per_channel", 37, 1024}, /* rows 4 KiB apart */
};
#define N_CASES (sizeof CASES / sizeof CASES[0])
static const int ROWS_OF_X[] = {1, 3, 13, 64};

/* ---------------------------------------------------------------------------------------------
 * versions against the scalar reference */

Test(kernels, every_simd_version_matches_the_scalar_one) {
    int tested = 0;
    for (size_t c = 0; c < N_CASES; c++) {
        for (int with_bias = 0; with_bias < 2; with_bias++) {
            mq_qlinear_t ql;
            make_linear(&ql, CASES[c].scheme, CASES[c].OC, CASES[c].C, with_bias, 11 + c);
            mq_qpacked_t p;
            mq_error_t err = {0};
            cr_assert_eq(mq_qpacked_init(&p, &ql.w, &err), MQ_OK, "%s", err.msg);
            for (size_t k = 0; k < sizeof ROWS_OF_X / sizeof *ROWS_OF_X; k++) {
                int N = ROWS_OF_X[k];
                float *x = randn(100 + c * 7 + (size_t)k, (size_t)N * ql.in, 1.0f);
                double *scale = abs_dot(&ql, x, N);
                float *ys = run(&p, MQ_ISA_SCALAR, 0, ql.bias, x, N);
                for (int isa = MQ_ISA_AVX2; isa < MQ_ISA_COUNT; isa++) {
                    if (!mq_isa_supported((mq_isa_t)isa)) continue;
                    float *y = run(&p, (mq_isa_t)isa, 0, ql.bias, x, N);
                    char what[96];
                    snprintf(what, sizeof what, "%s %dx%d N=%d bias=%d %s", CASES[c].scheme, ql.out,
                             ql.in, N, with_bias, mq_isa_name((mq_isa_t)isa));
                    assert_close(y, ys, scale, ql.bias, N, ql.out, TOL, what);
                    free(y);
                    tested++;
                }
                free(ys);
                free(scale);
                free(x);
            }
            mq_qpacked_free(&p);
            mq_qlinear_free(&ql);
        }
    }
    if (mq_isa_supported(MQ_ISA_AVX2)) cr_assert_gt(tested, 0);
}

Test(kernels, simd_versions_take_blocks_of_16_columns_and_whole_rows) {
    static const struct {
        const char *scheme;
        int C, simd, a8;
    } want[] = {
        {"int4_g64", 192, 1, 1},        {"int4_g32", 96, 1, 0},   {"int4_g24", 96, 0, 0},
        {"int8_per_channel", 37, 1, 1}, {"nf4_g64", 192, 1, 0},   {"fp16", 37, 1, 0},
        {"int8_g96", 192, 1, 0},        {"int8_g128", 256, 1, 1}, {"fp32", 37, 0, 0},
    };
    for (size_t i = 0; i < sizeof want / sizeof *want; i++) {
        mq_qlinear_t ql;
        make_linear(&ql, want[i].scheme, 5, want[i].C, 0, 3);
        mq_qpacked_t p;
        cr_assert_eq(mq_qpacked_init(&p, &ql.w, NULL), MQ_OK);
        cr_assert_eq(p.simd, want[i].simd, "%s", want[i].scheme);
        cr_assert_eq(p.a8, want[i].a8, "%s", want[i].scheme);
        mq_qpacked_free(&p);
        mq_qlinear_free(&ql);
    }
}

Test(kernels, scalar_fused_path_matches_the_reference_path) {
    for (size_t c = 0; c < N_CASES; c++) {
        mq_qlinear_t ql;
        make_linear(&ql, CASES[c].scheme, CASES[c].OC, CASES[c].C, 1, 21 + c);
        mq_qpacked_t p;
        cr_assert_eq(mq_qpacked_init(&p, &ql.w, NULL), MQ_OK);
        for (size_t k = 0; k < sizeof ROWS_OF_X / sizeof *ROWS_OF_X; k++) {
            int N = ROWS_OF_X[k];
            float *x = randn(200 + c + (size_t)k, (size_t)N * ql.in, 1.0f);
            double *scale = abs_dot(&ql, x, N);
            float *yr = malloc((size_t)N * ql.out * sizeof *yr);
            cr_assert_eq(mq_qlinear_forward_ref(&ql, yr, x, N, NULL), MQ_OK);
            float *ys = run(&p, MQ_ISA_SCALAR, 0, ql.bias, x, N);
            char what[96];
            snprintf(what, sizeof what, "%s %dx%d N=%d scalar vs reference", CASES[c].scheme,
                     ql.out, ql.in, N);
            assert_close(ys, yr, scale, ql.bias, N, ql.out, TOL, what);
            free(ys);
            free(yr);
            free(scale);
            free(x);
        }
        mq_qpacked_free(&p);
        mq_qlinear_free(&ql);
    }
}

Test(kernels, the_scalar_kernel_follows_the_documented_order) {
    /* one output, two groups of 16: acc = s0 * (sum of group 0) + s1 * (sum of group 1) */
    float W[32], x[32];
    for (int i = 0; i < 32; i++) {
        W[i] = (i < 16 ? 0.1f : 3.0f) * (float)((i % 7) - 3);
        x[i] = 0.25f * (float)(i % 5) - 0.5f;
    }
    mq_qlinear_t ql;
    mq_scheme_t s = scheme("int4_g16");
    cr_assert_eq(mq_qlinear_from_linear(&ql, W, NULL, 1, 32, &s, NULL), MQ_OK);
    mq_qpacked_t p;
    cr_assert_eq(mq_qpacked_init(&p, &ql.w, NULL), MQ_OK);
    float acc = 0.0f;
    for (int b = 0; b < 2; b++) {
        float g = 0.0f;
        for (int i = 16 * b; i < 16 * b + 16; i++)
            g += (float)ql.w.codes[i] * x[i];
        acc += mq_fp16_to_fp32(ql.w.scales[b]) * g;
    }
    float *y = run(&p, MQ_ISA_SCALAR, 0, NULL, x, 1);
    cr_assert_float_eq(y[0], acc, 1e-6f * fabsf(acc) + 1e-7f);
    free(y);
    mq_qpacked_free(&p);
    mq_qlinear_free(&ql);
}

Test(kernels, results_do_not_depend_on_the_thread_count) {
    mq_qlinear_t ql;
    make_linear(&ql, "int4_g64", 300, 256, 1, 5);
    mq_qpacked_t p;
    cr_assert_eq(mq_qpacked_init(&p, &ql.w, NULL), MQ_OK);
    for (int N = 1; N <= 64; N += 63) {
        float *x = randn(9, (size_t)N * 256, 1.0f);
        omp_set_num_threads(1);
        float *y1 = run(&p, mq_isa_best(), 0, ql.bias, x, N);
        omp_set_num_threads(3);
        float *y3 = run(&p, mq_isa_best(), 0, ql.bias, x, N);
        cr_assert_arr_eq(y1, y3, (size_t)N * 300 * sizeof(float), "N=%d", N);
        free(y1);
        free(y3);
        free(x);
    }
    mq_qpacked_free(&p);
    mq_qlinear_free(&ql);
}

/* ---------------------------------------------------------------------------------------------
 * int8 activations */

/* The rounding of x per 64-column block moves each x_i by at most max|x_block| / 254, so
 * |y_a8 - y| <= sum_blocks (max|x_block| / 254) * sum_{i in block} |w_i|. */
static double *a8_bound(const mq_qlinear_t *ql, const float *x, int N) {
    int OC = ql->out, C = ql->in;
    float *W = malloc((size_t)OC * C * sizeof *W);
    double *bd = malloc((size_t)N * OC * sizeof *bd);
    cr_assert(W && bd);
    mq_qweight_dequantize(&ql->w, W);
    for (int n = 0; n < N; n++)
        for (int o = 0; o < OC; o++) {
            double b = 0.0;
            for (int j = 0; j * 64 < C; j++) {
                double amax = 0.0, wsum = 0.0;
                for (int i = j * 64; i < C && i < j * 64 + 64; i++) {
                    amax = fmax(amax, fabs(x[(size_t)n * C + i]));
                    wsum += fabs(W[(size_t)o * C + i]);
                }
                b += amax / 254.0 * wsum;
            }
            bd[(size_t)n * OC + o] = b;
        }
    free(W);
    return bd;
}

Test(kernels, int8_activations_stay_within_their_rounding_bound) {
    static const kcase_t a8_cases[] = {
        {"int8_per_channel", 37, 130}, {"int8_per_tensor", 37, 37}, {"int8_g64", 70, 192},
        {"int4_g64", 37, 192},         {"int4_g128", 37, 384},      {"int4_per_channel", 37, 130},
        {"int3_g64", 37, 128},
    };
    for (size_t c = 0; c < sizeof a8_cases / sizeof *a8_cases; c++) {
        mq_qlinear_t ql;
        make_linear(&ql, a8_cases[c].scheme, a8_cases[c].OC, a8_cases[c].C, 1, 31 + c);
        mq_qpacked_t p;
        cr_assert_eq(mq_qpacked_init(&p, &ql.w, NULL), MQ_OK);
        cr_assert(p.a8, "%s", a8_cases[c].scheme);
        for (int N = 1; N <= 13; N += 12) {
            float *x = randn(300 + c, (size_t)N * ql.in, 1.0f);
            if (N > 1) x[3] = 9.0f; /* an outlier in row 0 widens its block's step */
            double *scale = abs_dot(&ql, x, N), *bound = a8_bound(&ql, x, N);
            float *yf = run(&p, MQ_ISA_SCALAR, 0, ql.bias, x, N);
            float *ys = run(&p, MQ_ISA_SCALAR, 1, ql.bias, x, N);
            double worst = 0.0, mean = 0.0;
            for (size_t k = 0; k < (size_t)N * ql.out; k++) {
                double d = fabs((double)ys[k] - yf[k]);
                cr_assert(d <= bound[k] + TOL * scale[k], "%s N=%d: a8 error %.3g > bound %.3g",
                          a8_cases[c].scheme, N, d, bound[k]);
                worst = fmax(worst, d / scale[k]);
                if (N == 1 || k >= (size_t)ql.out) mean += d / scale[k];
            }
            mean /= (double)(N == 1 ? 1 : N - 1) * ql.out;
            cr_assert_gt(worst, 0.0, "%s: the int8 activations changed nothing",
                         a8_cases[c].scheme);
            /* without the outlier, on average far below half a step (1/254 of a block's max |x|) */
            cr_assert_lt(mean, 1.0 / 508, "%s: mean relative error %.3g", a8_cases[c].scheme, mean);
            if (mq_isa_supports_a8(MQ_ISA_AVX512)) {
                /* the integer dot products are exact: only FP32 summation differs */
                float *yv = run(&p, MQ_ISA_AVX512, 1, ql.bias, x, N);
                char what[96];
                snprintf(what, sizeof what, "%s N=%d avx512 a8 vs scalar a8", a8_cases[c].scheme,
                         N);
                assert_close(yv, ys, scale, ql.bias, N, ql.out, TOL, what);
                free(yv);
            }
            free(yf);
            free(ys);
            free(scale);
            free(bound);
            free(x);
        }
        mq_qpacked_free(&p);
        mq_qlinear_free(&ql);
    }
}

Test(kernels, int8_activations_leave_other_weights_on_fp32_activations) {
    static const char *names[] = {"nf4_g64", "int4_g32", "fp16"};
    for (int i = 0; i < 3; i++) {
        mq_qlinear_t ql;
        make_linear(&ql, names[i], 37, 192, 1, 41);
        mq_qpacked_t p;
        cr_assert_eq(mq_qpacked_init(&p, &ql.w, NULL), MQ_OK);
        cr_assert_not(p.a8);
        float *x = randn(43, 3 * 192, 1.0f);
        float *y0 = run(&p, MQ_ISA_SCALAR, 0, ql.bias, x, 3);
        float *y1 = run(&p, MQ_ISA_SCALAR, 1, ql.bias, x, 3);
        cr_assert_arr_eq(y0, y1, 3 * 37 * sizeof(float), "%s", names[i]);
        free(y0);
        free(y1);
        free(x);
        mq_qpacked_free(&p);
        mq_qlinear_free(&ql);
    }
}

/* ---------------------------------------------------------------------------------------------
 * QuantizedLinear and the qmodel */

Test(kernels, qlinear_forward_matches_the_reference_packed_or_not) {
    static const char *names[] = {"fp32", "fp16", "int8_per_channel", "int4_g64", "nf4_g64"};
    for (int i = 0; i < 5; i++) {
        mq_qlinear_t ql;
        make_linear(&ql, names[i], 70, 192, 1, 51);
        for (int N = 1; N <= 64; N += 63) {
            float *x = randn(53, (size_t)N * 192, 1.0f);
            double *scale = abs_dot(&ql, x, N);
            float *yr = malloc((size_t)N * 70 * sizeof *yr),
                  *y = malloc((size_t)N * 70 * sizeof *y);
            mq_error_t err = {0};
            cr_assert_eq(mq_qlinear_forward_ref(&ql, yr, x, N, &err), MQ_OK);
            cr_assert_eq(mq_qlinear_forward(&ql, y, x, N, &err), MQ_OK, "%s", err.msg);
            assert_close(y, yr, scale, ql.bias, N, 70, TOL, names[i]);
            cr_assert_eq(mq_qlinear_pack(&ql, &err), MQ_OK, "%s", err.msg);
            cr_assert_eq(mq_qlinear_pack(&ql, &err), MQ_OK, "packing twice replaces");
            cr_assert_eq(mq_qlinear_forward(&ql, y, x, N, &err), MQ_OK, "%s", err.msg);
            assert_close(y, yr, scale, ql.bias, N, 70, TOL, names[i]);
            mq_qlinear_unpack(&ql);
            mq_qlinear_unpack(&ql); /* harmless */
            free(y);
            free(yr);
            free(scale);
            free(x);
        }
        mq_qlinear_free(&ql);
    }
}

Test(kernels, a_changed_layer_is_not_served_a_stale_packed_form) {
    mq_qlinear_t a, b;
    make_linear(&a, "int4_g64", 8, 64, 0, 61);
    cr_assert_eq(mq_qlinear_pack(&a, NULL), MQ_OK);
    /* the same address now holds another weight: its buffers differ, so it is packed afresh */
    make_linear(&b, "int4_g64", 8, 64, 0, 62);
    mq_qlinear_t saved = a;
    a = b;
    float *x = randn(63, 64, 1.0f), y[8], yr[8];
    cr_assert_eq(mq_qlinear_forward(&a, y, x, 1, NULL), MQ_OK);
    cr_assert_eq(mq_qlinear_forward_ref(&a, yr, x, 1, NULL), MQ_OK);
    for (int o = 0; o < 8; o++)
        cr_assert_float_eq(y[o], yr[o], 1e-4f);
    mq_qlinear_unpack(&a);
    mq_qlinear_free(&saved);
    mq_qlinear_free(&b);
    free(x);
}

Test(kernels, bad_arguments_are_refused) {
    mq_qlinear_t ql;
    make_linear(&ql, "int4_g64", 4, 64, 0, 71);
    mq_qpacked_t p;
    mq_error_t err = {0};
    float x[64] = {0}, y[4];
    cr_assert_eq(mq_qpacked_init(&p, &ql.w, &err), MQ_OK);
    cr_assert_eq(mq_qpacked_forward_with(&p, MQ_ISA_SCALAR, 0, NULL, y, x, -1, &err), MQ_ERR_ARG);
    cr_assert_eq(mq_qpacked_forward_with(&p, MQ_ISA_SCALAR, 0, NULL, y, x, 0, &err), MQ_OK);
    cr_assert_eq(mq_qpacked_forward_with(&p, MQ_ISA_COUNT, 0, NULL, y, x, 1, &err), MQ_ERR_ARG);
    mq_qpacked_free(&p);
    ql.w.codes[5] = 9; /* beyond the 4-bit grid */
    cr_assert_eq(mq_qpacked_init(&p, &ql.w, &err), MQ_ERR_ARG);
    cr_assert(strstr(err.msg, "grid"), "%s", err.msg);
    mq_qpacked_free(&p);
    mq_qlinear_free(&ql);
    cr_assert_eq(mq_qpacked_init(&p, NULL, &err), MQ_ERR_ARG);
}

static void tiny_model(mq_gpt_t *m) {
    mq_gpt_config_t cfg;
    cr_assert_eq(mq_gpt_preset("tiny", 96, &cfg, NULL), MQ_OK);
    cr_assert_eq(mq_gpt_init(m, &cfg, NULL), MQ_OK);
    mq_gpt_init_weights(m, 7);
}

static float *logits(mq_gpt_t *m, const int *tok, int T) {
    mq_error_t err = {0};
    cr_assert_eq(mq_gpt_forward(m, tok, NULL, 1, T, &err), MQ_OK, "%s", err.msg);
    size_t n = (size_t)T * m->cfg.vocab_size;
    float *l = malloc(n * sizeof *l);
    cr_assert(l);
    memcpy(l, m->acts.logits, n * sizeof *l);
    return l;
}

Test(kernels, the_qmodel_runs_the_fused_path_by_default) {
    mq_gpt_t m;
    tiny_model(&m);
    int tok[20];
    for (int t = 0; t < 20; t++)
        tok[t] = (t * 37) % 96;
    static const char *names[] = {"int8_per_channel", "int4_g64", "nf4_g32", "fp16"};
    for (int i = 0; i < 4; i++) {
        mq_qmodel_t q;
        mq_scheme_t s = scheme(names[i]);
        mq_qmodel_opts_t opts = {0, -1, 1};
        cr_assert_eq(mq_qmodel_apply(&q, &m, &s, &opts, NULL), MQ_OK);
        cr_assert_eq(q.fused, 1);
        float *fused = logits(&m, tok, 20);
        q.fused = 0;
        float *ref = logits(&m, tok, 20);
        size_t n = (size_t)20 * m.cfg.vocab_size;
        double num = 0.0, den = 0.0;
        for (size_t k = 0; k < n; k++) {
            num += ((double)fused[k] - ref[k]) * ((double)fused[k] - ref[k]);
            den += (double)ref[k] * ref[k];
        }
        cr_assert_lt(sqrt(num / den), 1e-5, "%s: fused and reference logits differ by %.3g",
                     names[i], sqrt(num / den));
        free(fused);
        free(ref);
        mq_qmodel_free(&q);
    }
    mq_gpt_free(&m);
}

Test(kernels, mq_reference_selects_the_reference_path) {
    setenv("MQ_REFERENCE", "1", 1);
    mq_gpt_t m;
    tiny_model(&m);
    mq_qmodel_t q;
    mq_scheme_t s = scheme("int4_g64");
    cr_assert_eq(mq_qmodel_apply(&q, &m, &s, NULL, NULL), MQ_OK);
    cr_assert_eq(q.fused, 0);
    mq_qmodel_free(&q);
    mq_gpt_free(&m);
    unsetenv("MQ_REFERENCE");
}

/* ---------------------------------------------------------------------------------------------
 * the choice of version (each Criterion test runs in its own process, so the first selection
 * of each test is made from the environment it sets) */

Test(dispatch, the_chosen_version_runs_on_this_cpu) {
    unsetenv("MQ_KERNEL");
    unsetenv("MQ_VNNI");
    cr_assert_eq(mq_kernels_init(NULL), MQ_OK);
    cr_assert(mq_isa_supported(mq_kernels_isa()));
    cr_assert_eq(mq_kernels_isa(), mq_isa_best());
    cr_assert_eq(mq_kernels_a8(), 0);
    cr_assert(mq_isa_supported(MQ_ISA_SCALAR));
    mq_isa_t isa;
    cr_assert_eq(mq_isa_parse("avx2", &isa, NULL), MQ_OK);
    cr_assert_eq(isa, MQ_ISA_AVX2);
    cr_assert_str_eq(mq_isa_name(MQ_ISA_AVX512), "avx512");
}

Test(dispatch, mq_kernel_forces_the_scalar_version) {
    setenv("MQ_KERNEL", "scalar", 1);
    mq_error_t err = {0};
    cr_assert_eq(mq_kernels_init(&err), MQ_OK, "%s", err.msg);
    cr_assert_eq(mq_kernels_isa(), MQ_ISA_SCALAR);
    /* and forwards run it: equal to the scalar version bit for bit */
    mq_qlinear_t ql;
    make_linear(&ql, "int4_g64", 37, 192, 1, 81);
    mq_qpacked_t p;
    cr_assert_eq(mq_qpacked_init(&p, &ql.w, NULL), MQ_OK);
    float *x = randn(83, 3 * 192, 1.0f), y[3 * 37];
    cr_assert_eq(mq_qpacked_forward(&p, ql.bias, y, x, 3, &err), MQ_OK, "%s", err.msg);
    float *ys = run(&p, MQ_ISA_SCALAR, 0, ql.bias, x, 3);
    cr_assert_arr_eq(y, ys, sizeof y);
    free(ys);
    free(x);
    mq_qpacked_free(&p);
    mq_qlinear_free(&ql);
}

Test(dispatch, a_version_the_cpu_lacks_is_refused) {
    setenv("MQ_CPU_HIDE", "avx512", 1);
    setenv("MQ_KERNEL", "avx512", 1);
    mq_error_t err = {0};
    cr_assert_not(mq_isa_supported(MQ_ISA_AVX512));
    cr_assert_eq(mq_kernels_init(&err), MQ_ERR_UNSUPPORTED);
    cr_assert(strstr(err.msg, "MQ_KERNEL=avx512") && strstr(err.msg, "cannot run"), "%s", err.msg);
    /* forwards fail with the same message instead of running something else */
    mq_qlinear_t ql;
    make_linear(&ql, "int8_per_channel", 4, 32, 0, 91);
    float x[32] = {0}, y[4];
    mq_error_t ferr = {0};
    cr_assert_eq(mq_qlinear_forward(&ql, y, x, 1, &ferr), MQ_ERR_UNSUPPORTED);
    cr_assert_str_eq(ferr.msg, err.msg);
    /* explicit requests are refused too */
    cr_assert_eq(mq_kernels_select(MQ_ISA_AVX512, 0, &err), MQ_ERR_UNSUPPORTED);
    mq_qpacked_t p;
    cr_assert_eq(mq_qpacked_init(&p, &ql.w, NULL), MQ_OK);
    cr_assert_eq(mq_qpacked_forward_with(&p, MQ_ISA_AVX512, 0, NULL, y, x, 1, &err),
                 MQ_ERR_UNSUPPORTED);
    /* and the automatic choice falls back */
    cr_assert_neq(mq_isa_best(), MQ_ISA_AVX512);
    cr_assert_eq(mq_kernels_select(mq_isa_best(), 0, &err), MQ_OK);
    cr_assert_eq(mq_qpacked_forward(&p, NULL, y, x, 1, &err), MQ_OK);
    mq_qpacked_free(&p);
    mq_qlinear_free(&ql);
}

Test(dispatch, unknown_names_and_int8_activations_without_vnni_are_refused) {
    setenv("MQ_KERNEL", "neon", 1);
    mq_error_t err = {0};
    cr_assert_eq(mq_kernels_init(&err), MQ_ERR_ARG);
    cr_assert(strstr(err.msg, "neon") && strstr(err.msg, "avx512"), "%s", err.msg);
    cr_assert_eq(mq_kernels_select(MQ_ISA_SCALAR, 1, &err), MQ_OK, "scalar has the a8 mode");
    cr_assert_eq(mq_kernels_a8(), 1);
    setenv("MQ_CPU_HIDE", "vnni", 1);
    cr_assert_not(mq_isa_supports_a8(MQ_ISA_AVX512));
    cr_assert_not(mq_isa_supports_a8(MQ_ISA_AVX2));
    cr_assert_eq(mq_kernels_select(MQ_ISA_AVX2, 1, &err), MQ_ERR_UNSUPPORTED);
    cr_assert(strstr(err.msg, "VNNI"), "%s", err.msg);
}

Test(dispatch, mq_vnni_turns_on_int8_activations) {
    setenv("MQ_VNNI", "1", 1);
    if (!mq_isa_supports_a8(mq_isa_best())) {
        cr_assert_eq(mq_kernels_init(NULL), MQ_ERR_UNSUPPORTED);
        return;
    }
    cr_assert_eq(mq_kernels_init(NULL), MQ_OK);
    cr_assert_eq(mq_kernels_a8(), 1);
    mq_qlinear_t ql;
    make_linear(&ql, "int4_g64", 37, 192, 1, 93);
    mq_qpacked_t p;
    cr_assert_eq(mq_qpacked_init(&p, &ql.w, NULL), MQ_OK);
    float *x = randn(95, 192, 1.0f), y[37];
    cr_assert_eq(mq_qpacked_forward(&p, ql.bias, y, x, 1, NULL), MQ_OK);
    float *ya8 = run(&p, mq_isa_best(), 1, ql.bias, x, 1);
    cr_assert_arr_eq(y, ya8, sizeof y);
    free(ya8);
    free(x);
    mq_qpacked_free(&p);
    mq_qlinear_free(&ql);
}
