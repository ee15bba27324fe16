/* Tests of miniquant's fused kernels, which read a weight's stored bytes: every version this CPU
 * runs, on every format of the table, against the portable scalar one and the reference path
 * (dequantize + sgemm), the QuantizedLinear and qmodel integration, the int8-activation mode's
 * error bound, and the choice of version.
 *
 * Tolerance of "the same numbers up to FP32 summation order": for every output,
 *   |y - y_ref| <= 1e-5 * sum_i |x_i| |w_i|  (+ 1e-6 * |bias|)
 * where w is the dequantized weight: FP32 summation of C products, in any order, errs by at
 * most about C * 2^-24 of that sum; 1e-5 leaves room for C in the hundreds.
 *
 * Shapes are chosen not to fit the vector widths or blocks: 37 and 70 output rows (not
 * multiples of 16, 32 or 2), 37 and 130 columns (not multiples of 16 or 32: int8 and int4 then
 * leave Q8_0 / Q4_0 for the packed format), groups of 10, 13, 16, 24 and 48 (packed) beside
 * groups of 32 and their multiples (Q8_0 / Q4_0), 1, 2, 3, 17 and 64 x rows (the decode kernels
 * and every tile remainder of the prompt path). */
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
#include "qhelpers.h"

#define TOL 1e-5

/* ---------------------------------------------------------------------------------------------
 * helpers */

/* A QuantizedLinear of a seeded random weight (and bias when with_bias). */
static void make_linear(mq_qlinear_t *ql, const char *name, int OC, int C, int with_bias,
                        uint64_t seed) {
    float *W = randn_sd(seed, (size_t)OC * C, 0.05f);
    float *b = with_bias ? randn_sd(seed + 1, (size_t)OC, 0.5f) : NULL;
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

/* Runs w with a version into a fresh buffer. */
static float *run(const mq_qweight_t *w, mq_isa_t isa, int a8, const float *bias, const float *x,
                  int N) {
    float *y = malloc((size_t)N * w->rows * sizeof *y);
    cr_assert(y);
    mq_error_t err = {0};
    cr_assert_eq(mq_qweight_forward_with(w, isa, a8, bias, y, x, N, &err), MQ_OK, "%s %s: %s",
                 w->scheme.name, mq_isa_name(isa), err.msg);
    return y;
}

/* The reference path (dequantize + sgemm) into a fresh buffer. */
static float *run_ref(const mq_qlinear_t *ql, const float *x, int N) {
    float *y = malloc((size_t)N * ql->out * sizeof *y);
    cr_assert(y);
    mq_error_t err = {0};
    cr_assert_eq(mq_qlinear_forward_ref(ql, y, x, N, &err), MQ_OK, "%s", err.msg);
    return y;
}

/* A scheme with the shapes it is tested on, and the format it must land in. */
typedef struct kcase {
    const char *scheme;
    int OC, C;
    const char *format;
} kcase_t;

static const kcase_t CASES[] = {
    {"int8_per_tensor", 37, 64, "q8_0"},
    {"int8_per_tensor", 70, 130, "packed"},
    {"int8_per_channel", 37, 37, "packed"},
    {"int8_per_channel", 70, 160, "q8_0"},
    {"int8_g32", 37, 96, "q8_0"},
    {"int8_g64", 37, 192, "q8_0"},
    {"int4_per_tensor", 37, 96, "q4_0"},
    {"int4_per_channel", 37, 37, "packed"},
    {"int4_per_channel", 70, 160, "q4_0"},
    {"int4_g32", 37, 96, "q4_0"},
    {"int4_g64", 37, 192, "q4_0"},
    {"int4_g128", 37, 384, "q4_0"},
    {"nf4_g64", 37, 192, "packed"},
    {"nf4_g32", 70, 96, "packed"},
    {"nf4_g10", 37, 130, "packed"},
    {"nf3_g64", 37, 192, "packed"},
    {"nf3_g10", 70, 130, "packed"},
    {"fp16", 37, 37, "f16"},
    {"fp16", 70, 130, "f16"},
    {"fp32", 37, 37, "f32"},
    {"fp32", 70, 130, "f32"},
    {"int3_g48", 37, 96, "packed"},
    {"int3_per_channel", 37, 37, "packed"},
    {"int2_g16", 37, 96, "packed"},
    {"int6_per_channel", 37, 130, "packed"},
    {"int5_g64", 70, 192, "packed"},
    {"int7_g13", 37, 130, "packed"},
    {"int4_g24", 37, 96, "packed"},
    {"int4_g16", 37, 48, "packed"},
    {"int8_g96", 37, 192, "q8_0"},
    {"int8_g48", 37, 96, "packed"},
    {"int4_g64", 37, 1024, "q4_0"},
    {"int8_per_channel", 37, 1024, "q8_0"}, /* rows 1 KiB apart */
    {"q4_k", 37, 512, "q4_k"},
    {"q4_k", 37, 96, "q5_0"},     /* 256 does not divide the rows: ggml's fallback */
    {"q5_k", 70, 256, "q5_k"},
    {"q5_k", 37, 64, "q5_1"},
    {"q6_k", 37, 256, "q6_k"},
    {"q6_k", 37, 160, "q8_0"},
    {"iq4_nl", 37, 96, "iq4_nl"},
    {"iq4_nl", 37, 40, "f16"},    /* not even 32 */
    {"q3_k", 37, 256, "q3_k"},
    {"q3_k", 37, 96, "iq4_nl"},
    {"q2_k", 70, 512, "q2_k"},
};
#define N_CASES (sizeof CASES / sizeof CASES[0])
static const int ROWS_OF_X[] = {1, 2, 3, 17, 64};
#define N_ROWS_OF_X (sizeof ROWS_OF_X / sizeof *ROWS_OF_X)

/* ---------------------------------------------------------------------------------------------
 * versions against the scalar reference and the reference path */

Test(kernels, the_cases_cover_every_format) {
    for (int f = 0; MQ_FORMATS[f]; f++) {
        if (!mq_format_writes(MQ_FORMATS[f])) continue; /* read formats are dequantized */
        int n = 0;
        for (size_t c = 0; c < N_CASES; c++)
            n += !strcmp(CASES[c].format, MQ_FORMATS[f]->name);
        cr_assert_gt(n, 0, "no case is stored as %s", MQ_FORMATS[f]->name);
    }
    for (size_t c = 0; c < N_CASES; c++) {
        mq_scheme_t s = scheme(CASES[c].scheme);
        const mq_format_t *f = mq_format_for(&s, CASES[c].C, NULL);
        cr_assert(f && !strcmp(f->name, CASES[c].format), "%s with rows of %d: %s, not %s",
                  CASES[c].scheme, CASES[c].C, f ? f->name : "(none)", CASES[c].format);
    }
}

/* Every version this CPU runs, on every format, for N = 1 (the decode kernels), 2, 3, 17, 64
 * (the prompt path and its tile remainders), agrees with the scalar reference and with the
 * reference path within the documented bound. */
Test(kernels, every_version_matches_the_scalar_one_and_the_reference_path) {
    int simd = 0;
    for (size_t c = 0; c < N_CASES; c++) {
        for (int with_bias = 0; with_bias < 2; with_bias++) {
            mq_qlinear_t ql;
            make_linear(&ql, CASES[c].scheme, CASES[c].OC, CASES[c].C, with_bias, 11 + c);
            cr_assert_str_eq(ql.w.format->name, CASES[c].format);
            for (size_t k = 0; k < N_ROWS_OF_X; k++) {
                int N = ROWS_OF_X[k];
                float *x = randn_sd(100 + c * 7 + (size_t)k, (size_t)N * ql.in, 1.0f);
                double *scale = abs_dot(&ql, x, N);
                float *yr = run_ref(&ql, x, N);
                float *ys = run(&ql.w, MQ_ISA_SCALAR, 0, ql.bias, x, N);
                char what[128];
                snprintf(what, sizeof what, "%s (%s) %dx%d N=%d bias=%d scalar vs reference",
                         CASES[c].scheme, CASES[c].format, ql.out, ql.in, N, with_bias);
                assert_close(ys, yr, scale, ql.bias, N, ql.out, TOL, what);
                for (int isa = MQ_ISA_AVX2; isa < MQ_ISA_COUNT; isa++) {
                    if (!mq_isa_supported((mq_isa_t)isa)) continue;
                    float *y = run(&ql.w, (mq_isa_t)isa, 0, ql.bias, x, N);
                    snprintf(what, sizeof what, "%s (%s) %dx%d N=%d bias=%d %s vs scalar",
                             CASES[c].scheme, CASES[c].format, ql.out, ql.in, N, with_bias,
                             mq_isa_name((mq_isa_t)isa));
                    assert_close(y, ys, scale, ql.bias, N, ql.out, TOL, what);
                    snprintf(what, sizeof what, "%s (%s) %dx%d N=%d bias=%d %s vs reference",
                             CASES[c].scheme, CASES[c].format, ql.out, ql.in, N, with_bias,
                             mq_isa_name((mq_isa_t)isa));
                    assert_close(y, yr, scale, ql.bias, N, ql.out, TOL, what);
                    free(y);
                    simd++;
                }
                free(ys);
                free(yr);
                free(scale);
                free(x);
            }
            mq_qlinear_free(&ql);
        }
    }
    int n_simd = mq_isa_supported(MQ_ISA_AVX2) + mq_isa_supported(MQ_ISA_AVX512);
    cr_assert_eq(simd, n_simd * (int)(2 * N_CASES * N_ROWS_OF_X));
}

/* Which format a weight is stored in, and which take int8 activations, is the table's: Q8_0 and
 * Q4_0 (32-blocks of an int8 / int4 grid) and the K-quants on the scalar and AVX-512 versions,
 * nothing on AVX2. */
Test(kernels, formats_and_int8_activations_follow_the_table) {
    static const struct {
        const char *scheme;
        int C;
        const char *format;
        int a8;
    } want[] = {
        {"int4_g64", 192, "q4_0", 1},
        {"int4_g32", 96, "q4_0", 1},
        {"int4_g24", 96, "packed", 0},
        {"int8_per_channel", 37, "packed", 0},
        {"int8_per_channel", 64, "q8_0", 1},
        {"nf4_g64", 192, "packed", 0},
        {"nf3_g64", 192, "packed", 0},
        {"fp16", 37, "f16", 0},
        {"int8_g96", 192, "q8_0", 1},
        {"int8_g128", 256, "q8_0", 1},
        {"int8_g48", 96, "packed", 0},
        {"int3_g64", 192, "packed", 0},
        {"int4_per_tensor", 160, "q4_0", 1},
        {"fp32", 37, "f32", 0},
        {"q4_k", 256, "q4_k", 1},
        {"q6_k", 512, "q6_k", 1},
        {"q4_k", 96, "q5_0", 0},
        {"iq4_nl", 64, "iq4_nl", 0},
    };
    for (size_t i = 0; i < sizeof want / sizeof *want; i++) {
        mq_qlinear_t ql;
        make_linear(&ql, want[i].scheme, 5, want[i].C, 0, 3);
        cr_assert_str_eq(ql.w.format->name, want[i].format, "%s", want[i].scheme);
        cr_assert_eq(mq_qweight_takes_a8(&ql.w, MQ_ISA_SCALAR), want[i].a8, "%s", want[i].scheme);
        cr_assert_eq(mq_qweight_takes_a8(&ql.w, MQ_ISA_AVX512), want[i].a8, "%s", want[i].scheme);
        /* AVX2: the one-row kernels of Q4_0 and the K-quants; Q8_0 keeps FP32 activations */
        int avx2 = want[i].a8 && strcmp(want[i].format, "q8_0");
        cr_assert_eq(mq_qweight_takes_a8(&ql.w, MQ_ISA_AVX2), avx2, "%s", want[i].scheme);
        cr_assert_eq(mq_qweight_takes_a8(&ql.w, MQ_ISA_COUNT), 0);
        mq_qlinear_free(&ql);
    }
}

/* One output, two scale blocks: acc = s0 * (sum of block 0) + s1 * (sum of block 1), with the
 * codes and scales read back from the stored bytes; in the packed format (groups of 16) and in
 * Q4_0 (groups of 32). */
Test(kernels, the_scalar_kernel_follows_the_documented_order) {
    static const struct {
        const char *scheme, *format;
        int g;
    } cases[] = {{"int4_g16", "packed", 16}, {"int4_g32", "q4_0", 32}, {"int8_g32", "q8_0", 32}};
    for (int k = 0; k < 3; k++) {
        int C = 2 * cases[k].g;
        float W[64], x[64];
        for (int i = 0; i < C; i++) {
            W[i] = (i < cases[k].g ? 0.1f : 3.0f) * (float)((i % 7) - 3);
            x[i] = 0.25f * (float)(i % 5) - 0.5f;
        }
        mq_qlinear_t ql;
        mq_scheme_t s = scheme(cases[k].scheme);
        cr_assert_eq(mq_qlinear_from_linear(&ql, W, NULL, 1, C, &s, NULL), MQ_OK);
        cr_assert_str_eq(ql.w.format->name, cases[k].format);
        int8_t codes[64];
        mq_fp16_t sc[2];
        cr_assert_eq(mq_qweight_to_codes(&ql.w, codes, sc, NULL), MQ_OK);
        cr_assert_neq(sc[0], sc[1]);
        float acc = 0.0f;
        for (int b = 0; b < 2; b++) {
            float g = 0.0f;
            for (int i = cases[k].g * b; i < cases[k].g * (b + 1); i++)
                g += (float)codes[i] * x[i];
            acc += mq_fp16_to_fp32(sc[b]) * g;
        }
        cr_assert_gt(fabsf(acc), 1.0f);
        float *y = run(&ql.w, MQ_ISA_SCALAR, 0, NULL, x, 1);
        cr_assert_float_eq(y[0], acc, 1e-6f * fabsf(acc) + 1e-7f, "%s: %.9g vs %.9g",
                           cases[k].scheme, y[0], acc);
        free(y);
        mq_qlinear_free(&ql);
    }
}

/* The AVX-512 prompt path, byte panels or float panels, sums in one order: x rows in tiles of
 * 16, 8, 4, 2 (each output a chain over the columns in order of fma(v * s, x)) and a last single
 * row in four chains per scale block, ((c0 + c1) + (c2 + c3)) times s. Computed here from the
 * format's own values and scales, it must match bit for bit. */
static float panel_order_dot(const float *v, const float *s, int nb, int g, const float *x,
                             int single) {
    float acc = 0.0f;
    for (int b = 0; b < nb; b++) {
        if (single) {
            float c[4] = {0.0f, 0.0f, 0.0f, 0.0f};
            for (int i = b * g; i < (b + 1) * g; i++)
                c[i & 3] = fmaf(v[i], x[i], c[i & 3]);
            float sum = (c[0] + c[1]) + (c[2] + c[3]);
            acc = fmaf(s[b], sum, acc);
        } else {
            for (int i = b * g; i < (b + 1) * g; i++) {
                float wk = v[i] * s[b];
                acc = fmaf(wk, x[i], acc);
            }
        }
    }
    return acc;
}

Test(kernels, avx512_prompt_sums_in_the_panel_order) {
    if (!mq_isa_supported(MQ_ISA_AVX512)) return; /* nothing of this path runs here */
    static const kcase_t cases[] = {
        {"int4_g64", 37, 192, "q4_0"},         {"int4_per_channel", 37, 192, "q4_0"},
        {"int8_per_channel", 37, 192, "q8_0"}, {"int8_g32", 37, 192, "q8_0"},
        {"nf4_g64", 37, 192, "packed"},        {"nf4_g16", 37, 192, "packed"},
        {"int3_g32", 37, 192, "packed"},
    };
    const int N = 17; /* a tile of 16, then a single row */
    for (size_t c = 0; c < sizeof cases / sizeof *cases; c++) {
        mq_qlinear_t ql;
        make_linear(&ql, cases[c].scheme, cases[c].OC, cases[c].C, 0, 51 + c);
        cr_assert_str_eq(ql.w.format->name, cases[c].format);
        const mq_qweight_t *w = &ql.w;
        int C = w->cols, nb = w->group == C ? 1 : C / w->group, g = C / nb;
        float *x = randn_sd(61 + c, (size_t)N * C, 1.0f), *y = run(w, MQ_ISA_AVX512, 0, NULL, x, N);
        float *v = malloc((size_t)C * sizeof *v), *sc = malloc((size_t)nb * sizeof *sc);
        cr_assert(v && sc);
        for (int o = 0; o < w->rows; o++) {
            const uint8_t *row = w->data + (size_t)o * w->row_bytes;
            w->format->values_row(row, &w->scheme, C, v);
            for (int b = 0; b < nb; b++)
                sc[b] = w->format->block_scale(row, mq_qweight_row_scales(w, o), g, b);
            for (int n = 0; n < N; n++) {
                float want = panel_order_dot(v, sc, nb, g, x + (size_t)n * C, n == N - 1);
                float got = y[(size_t)n * w->rows + o];
                cr_assert(memcmp(&got, &want, sizeof got) == 0, "%s: y[%d][%d] = %.9g, want %.9g",
                          cases[c].scheme, n, o, (double)got, (double)want);
            }
        }
        free(v);
        free(sc);
        free(x);
        free(y);
        mq_qlinear_free(&ql);
    }
}

/* Output rows are shared out among the threads, each computed by one in a fixed order: 1 and 3
 * threads give the same bits, for every version and every format of miniquant's kernels, with
 * int8 activations too. F32 weights are OpenBLAS's: its sgemm on a share of the x rows may sum
 * in another order (the last bits of N = 64 outputs change with the thread count), so they are
 * held to the summation bound instead. 300 x 512 is above the size from which a forward runs
 * threaded. */
Test(kernels, results_do_not_depend_on_the_thread_count) {
    static const char *names[] = {
        "int4_g64", "int8_per_channel", "nf4_g64", "nf3_g64", "int3_g32", "fp16", "fp32"};
    int nth = omp_get_max_threads();
    for (int i = 0; i < 7; i++) {
        mq_qlinear_t ql;
        make_linear(&ql, names[i], 300, 512, 1, 5);
        int blas = ql.w.format->kernels[MQ_ISA_SCALAR].forward != NULL;
        cr_assert_eq(blas, !strcmp(names[i], "fp32"), "%s", names[i]);
        for (int N = 1; N <= 64; N += 63) {
            float *x = randn_sd(9, (size_t)N * 512, 1.0f);
            double *scale = blas ? abs_dot(&ql, x, N) : NULL;
            for (int isa = 0; isa < MQ_ISA_COUNT; isa++)
                for (int a8 = 0; a8 < 2; a8++) {
                    if (!mq_isa_supported((mq_isa_t)isa)) continue;
                    if (a8 && !mq_isa_supports_a8((mq_isa_t)isa)) continue;
                    omp_set_num_threads(1);
                    float *y1 = run(&ql.w, (mq_isa_t)isa, a8, ql.bias, x, N);
                    omp_set_num_threads(3);
                    float *y3 = run(&ql.w, (mq_isa_t)isa, a8, ql.bias, x, N);
                    char what[96];
                    snprintf(what, sizeof what, "%s %s a8=%d N=%d", names[i],
                             mq_isa_name((mq_isa_t)isa), a8, N);
                    if (blas)
                        assert_close(y3, y1, scale, ql.bias, N, 300, TOL, what);
                    else
                        cr_assert_arr_eq(y1, y3, (size_t)N * 300 * sizeof(float), "%s", what);
                    free(y1);
                    free(y3);
                }
            free(scale);
            free(x);
        }
        mq_qlinear_free(&ql);
    }
    omp_set_num_threads(nth);
}

/* ---------------------------------------------------------------------------------------------
 * int8 activations */

/* The rounding of x per 32-column block moves each x_i by at most max|x_block| / 254, so
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
            for (int j = 0; j * 32 < C; j++) {
                double amax = 0.0, wsum = 0.0;
                for (int i = j * 32; i < C && i < j * 32 + 32; i++) {
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

/* The scalar int8-activation forward of ql on x (N rows) against the FP32 one: every output
 * within the rounding bound, and not all equal. Returns the scalar a8 outputs (free them), the
 * mean relative error of the outputs from x row skip on in *mean_rel, and abs_dot's scale. */
static float *check_a8_bound(const mq_qlinear_t *ql, const float *x, int N, const char *name,
                             int skip, double *mean_rel, double **scale_out) {
    double *scale = abs_dot(ql, x, N), *bound = a8_bound(ql, x, N);
    float *yf = run(&ql->w, MQ_ISA_SCALAR, 0, ql->bias, x, N);
    float *ys = run(&ql->w, MQ_ISA_SCALAR, 1, ql->bias, x, N);
    double mean = 0.0, worst = 0.0;
    for (size_t k = 0; k < (size_t)N * ql->out; k++) {
        double d = fabs((double)ys[k] - yf[k]);
        cr_assert(d <= bound[k] + TOL * scale[k], "%s N=%d: a8 error %.3g > bound %.3g", name, N, d,
                  bound[k]);
        worst = fmax(worst, d / scale[k]);
        if (k >= (size_t)skip * ql->out) mean += d / scale[k];
    }
    *mean_rel = mean / ((double)(N - skip) * ql->out);
    cr_assert_gt(worst, 0.0, "%s: the int8 activations changed nothing", name);
    free(yf);
    free(bound);
    *scale_out = scale;
    return ys;
}

Test(kernels, int8_activations_stay_within_their_rounding_bound) {
    static const kcase_t a8_cases[] = {
        {"int8_per_channel", 37, 160, "q8_0"}, {"int8_per_tensor", 37, 64, "q8_0"},
        {"int8_g64", 70, 192, "q8_0"},         {"int8_g32", 37, 96, "q8_0"},
        {"int4_g64", 37, 192, "q4_0"},         {"int4_g128", 37, 384, "q4_0"},
        {"int4_per_channel", 37, 160, "q4_0"}, {"int4_g32", 70, 96, "q4_0"},
    };
    for (size_t c = 0; c < sizeof a8_cases / sizeof *a8_cases; c++) {
        mq_qlinear_t ql;
        make_linear(&ql, a8_cases[c].scheme, a8_cases[c].OC, a8_cases[c].C, 1, 31 + c);
        cr_assert_str_eq(ql.w.format->name, a8_cases[c].format);
        cr_assert(mq_qweight_takes_a8(&ql.w, MQ_ISA_SCALAR), "%s", a8_cases[c].scheme);
        for (int N = 1; N <= 13; N += N == 1 ? 2 : 10) { /* one row, a few (row by row), a panel */
            float *x = randn_sd(300 + c, (size_t)N * ql.in, 1.0f);
            if (N > 1) x[3] = 9.0f; /* an outlier in row 0 widens its block's step */
            double mean, *scale;
            float *ys = check_a8_bound(&ql, x, N, a8_cases[c].scheme, N > 1, &mean, &scale);
            /* without the outlier, on average far below half a step (1/254 of a block's max |x|) */
            cr_assert_lt(mean, 1.0 / 508, "%s: mean relative error %.3g", a8_cases[c].scheme, mean);
            for (int isa = 1; isa < MQ_ISA_COUNT; isa++) {
                if (!mq_isa_supports_a8((mq_isa_t)isa)) continue;
                /* the integer dot products are exact: only FP32 summation differs. AVX-512 has
                   both formats' kernels, AVX2 Q4_0's one-row kernel (Q8_0 keeps FP32 there) */
                int q4 = !strcmp(a8_cases[c].format, "q4_0");
                cr_assert_eq(mq_qweight_takes_a8(&ql.w, (mq_isa_t)isa), isa == MQ_ISA_AVX512 || q4);
                if (!mq_qweight_takes_a8(&ql.w, (mq_isa_t)isa)) continue;
                float *yv = run(&ql.w, (mq_isa_t)isa, 1, ql.bias, x, N);
                char what[96];
                snprintf(what, sizeof what, "%s N=%d %s a8 vs scalar a8", a8_cases[c].scheme, N,
                         mq_isa_name((mq_isa_t)isa));
                assert_close(yv, ys, scale, ql.bias, N, ql.out, TOL, what);
                free(yv);
            }
            free(ys);
            free(scale);
            free(x);
        }
        mq_qlinear_free(&ql);
    }
}

/* x in the int8-activation form: the same codes, sums and scales from every version, with
 * ties, a zero block, NaN and infinite inputs and a partial last block among them. */
Test(kernels, int8_activation_rows_are_the_same_bytes_on_every_version) {
    enum { C = 200 }; /* 6 whole blocks and 8 columns */
    float *x = randn_sd(105, C, 3.0f);
    for (int i = 32; i < 64; i++)
        x[i] = 0.0f;
    x[70] = NAN;
    x[100] = INFINITY;
    x[130] = 127.0f; /* with 0.5 and 1.5 below: ties at 127 / max */
    x[131] = 0.5f;
    x[132] = 1.5f;
    x[133] = -2.5f;
    int8_t q[2][224];
    int32_t sum[2][7], sum16[2][14];
    float sx[2][7];
    mq_a8_quantize_row(MQ_ISA_SCALAR, x, C, q[0], sum[0], sum16[0], sx[0]);
    cr_assert_eq(q[0][131], 0, "0.5 rounds to even");
    cr_assert_eq(q[0][132], 2, "1.5 rounds to even");
    cr_assert_eq(q[0][133], -2, "-2.5 rounds to even");
    cr_assert_eq(q[0][70], 0, "NaN is not a code");
    cr_assert_eq(sx[0][1], 0.0f);
    cr_assert_eq(sum[0][4], sum16[0][8] + sum16[0][9]);
    for (int i = C; i < 224; i++)
        cr_assert_eq(q[0][i], 0, "padding %d", i);
    for (int isa = 1; isa < MQ_ISA_COUNT; isa++) {
        if (!mq_isa_supported((mq_isa_t)isa)) continue;
        memset(q[1], 0x55, sizeof q[1]);
        mq_a8_quantize_row((mq_isa_t)isa, x, C, q[1], sum[1], sum16[1], sx[1]);
        cr_assert_arr_eq(q[0], q[1], sizeof q[0], "%s codes", mq_isa_name((mq_isa_t)isa));
        cr_assert_arr_eq(sum[0], sum[1], sizeof sum[0]);
        cr_assert_arr_eq(sum16[0], sum16[1], sizeof sum16[0]);
        cr_assert_arr_eq(sx[0], sx[1], sizeof sx[0]);
    }
    free(x);
}

/* ggml's K-quants: int8 activations through each block's unsigned codes with a scale and a min
 * per 16 (blocks.h). The reader gives ggml's values; the scalar reference stays within the
 * rounding bound of x; the AVX-512 and AVX2 one-row kernels agree with it within FP32 summation
 * error; up to 64 x rows take them, row by row, more keep FP32 activations. */
Test(kernels, k_quant_unsigned_blocks_give_ggml_values) {
    static const char *names[] = {"q2_k", "q3_k", "q4_k", "q5_k", "q6_k"};
    for (int i = 0; i < 5; i++) {
        mq_qlinear_t ql;
        make_linear(&ql, names[i], 9, 512, 0, 61 + i);
        cr_assert_str_eq(ql.w.format->name, names[i]);
        cr_assert(ql.w.format->unsigned_block, "%s", names[i]);
        float *W = malloc((size_t)9 * 512 * sizeof *W);
        cr_assert(W);
        mq_qweight_dequantize(&ql.w, W);
        int nonzero_min = 0;
        for (int o = 0; o < 9; o++)
            for (int b = 0; b < 2; b++) {
                uint8_t u[256];
                float S[16], M[16];
                const uint8_t *blk =
                    ql.w.data + (size_t)o * ql.w.row_bytes + (size_t)b * ql.w.format->block_bytes;
                ql.w.format->unsigned_block(blk, u, S, M);
                for (int j = 0; j < 256; j++) {
                    float want = W[(size_t)o * 512 + 256 * b + j];
                    float got = S[j / 16] * (float)u[j] - M[j / 16];
                    /* one product and one difference rounded apart from ggml's */
                    float tol = 2e-7f * (fabsf(S[j / 16]) * 64.0f + fabsf(M[j / 16]));
                    cr_assert(fabsf(got - want) <= tol, "%s row %d weight %d: %g, ggml %g",
                              names[i], o, 256 * b + j, got, want);
                    nonzero_min |= M[j / 16] != 0.0f;
                }
            }
        cr_assert(nonzero_min, "%s: every min is 0", names[i]);
        free(W);
        mq_qlinear_free(&ql);
    }
}

Test(kernels, k_quant_int8_activations_stay_within_their_rounding_bound) {
    static const char *names[] = {"q2_k", "q3_k", "q4_k", "q5_k", "q6_k"};
    for (int i = 0; i < 5; i++) {
        mq_qlinear_t ql;
        make_linear(&ql, names[i], 37, 768, 1, 71 + i);
        cr_assert_str_eq(ql.w.format->name, names[i]);
        cr_assert(mq_qweight_takes_a8(&ql.w, MQ_ISA_SCALAR), "%s", names[i]);
        for (int N = 1; N <= 67; N += N == 1 ? 2 : 64) {
            float *x = randn_sd(310 + i, (size_t)N * ql.in, 1.0f);
            double mean, *scale;
            float *ys = check_a8_bound(&ql, x, N, names[i], 0, &mean, &scale);
            cr_assert_lt(mean, 1.0 / 508, "%s: mean relative error %.3g", names[i], mean);
            for (int isa = 1; isa < MQ_ISA_COUNT; isa++) {
                if (!mq_isa_supports_a8((mq_isa_t)isa)) continue;
                cr_assert(mq_qweight_takes_a8(&ql.w, (mq_isa_t)isa));
                float *yv = run(&ql.w, (mq_isa_t)isa, 1, ql.bias, x, N);
                char what[96];
                snprintf(what, sizeof what, "%s N=%d %s a8", names[i], N,
                         mq_isa_name((mq_isa_t)isa));
                if (N <= 64) /* the one-row kernel per x row: only FP32 summation differs */
                    assert_close(yv, ys, scale, ql.bias, N, ql.out, TOL, what);
                else { /* many x rows: the FP32 prompt path, as without the mode */
                    float *y0 = run(&ql.w, (mq_isa_t)isa, 0, ql.bias, x, N);
                    cr_assert_arr_eq(yv, y0, (size_t)N * ql.out * sizeof(float), "%s", what);
                    free(y0);
                }
                free(yv);
            }
            free(ys);
            free(scale);
            free(x);
        }
        mq_qlinear_free(&ql);
    }
}

/* Packed, NF4 / NF3 and FP16 / FP32 weights run FP32 activations in the a8 mode: the same bits
 * as without it, on every version that has the mode. */
Test(kernels, int8_activations_leave_other_weights_on_fp32_activations) {
    static const kcase_t cases[] = {
        {"nf4_g64", 37, 192, "packed"},
        {"nf3_g64", 37, 192, "packed"},
        {"int3_g64", 37, 192, "packed"},
        {"int4_g24", 37, 96, "packed"},
        {"int8_per_channel", 37, 130, "packed"},
        {"fp16", 37, 192, "f16"},
        {"fp32", 37, 192, "f32"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        mq_qlinear_t ql;
        make_linear(&ql, cases[i].scheme, cases[i].OC, cases[i].C, 1, 41);
        cr_assert_str_eq(ql.w.format->name, cases[i].format);
        cr_assert_not(mq_qweight_takes_a8(&ql.w, MQ_ISA_SCALAR), "%s", cases[i].scheme);
        cr_assert_not(mq_qweight_takes_a8(&ql.w, MQ_ISA_AVX512), "%s", cases[i].scheme);
        for (int N = 1; N <= 3; N += 2) {
            float *x = randn_sd(43, (size_t)N * ql.in, 1.0f);
            for (int isa = 0; isa < MQ_ISA_COUNT; isa++) {
                if (!mq_isa_supports_a8((mq_isa_t)isa)) continue;
                float *y0 = run(&ql.w, (mq_isa_t)isa, 0, ql.bias, x, N);
                float *y1 = run(&ql.w, (mq_isa_t)isa, 1, ql.bias, x, N);
                cr_assert_arr_eq(y0, y1, (size_t)N * ql.out * sizeof(float), "%s %s N=%d",
                                 cases[i].scheme, mq_isa_name((mq_isa_t)isa), N);
                free(y0);
                free(y1);
            }
            free(x);
        }
        mq_qlinear_free(&ql);
    }
}

/* ---------------------------------------------------------------------------------------------
 * QuantizedLinear and the qmodel */

Test(kernels, qlinear_forward_matches_the_reference) {
    static const char *names[] = {"fp32",    "fp16",    "int8_per_channel", "int4_g64",
                                  "nf4_g64", "nf3_g64", "int3_g64",         "int4_g24"};
    for (int i = 0; i < 8; i++) {
        mq_qlinear_t ql;
        make_linear(&ql, names[i], 70, 192, 1, 51);
        for (int N = 1; N <= 64; N += 63) {
            float *x = randn_sd(53, (size_t)N * 192, 1.0f);
            double *scale = abs_dot(&ql, x, N);
            float *yr = run_ref(&ql, x, N), *y = malloc((size_t)N * 70 * sizeof *y);
            mq_error_t err = {0};
            cr_assert_eq(mq_qlinear_forward(&ql, y, x, N, &err), MQ_OK, "%s", err.msg);
            assert_close(y, yr, scale, ql.bias, N, 70, TOL, names[i]);
            /* the layer's own path is the weight's, with the layer's bias */
            float *yw = run(&ql.w, mq_kernels_isa(), mq_kernels_a8(), ql.bias, x, N);
            cr_assert_arr_eq(y, yw, (size_t)N * 70 * sizeof(float), "%s", names[i]);
            free(yw);
            free(y);
            free(yr);
            free(scale);
            free(x);
        }
        mq_qlinear_free(&ql);
    }
}

/* No registry: a forward reads the weight it is given. Two QuantizedLinears of the same weight
 * give the same bits, and one whose bytes are replaced at the same address gives the new
 * weight's output, not the old one's. */
Test(kernels, forwards_read_the_weight_they_are_given) {
    mq_qlinear_t a, b, c;
    make_linear(&a, "int4_g64", 40, 128, 1, 61);
    make_linear(&b, "int4_g64", 40, 128, 1, 61);
    make_linear(&c, "int4_g64", 40, 128, 1, 62);
    cr_assert_neq(a.w.data, b.w.data);
    cr_assert_eq(memcmp(a.w.data, b.w.data, 40 * a.w.row_bytes), 0);
    float *x = randn_sd(63, 3 * 128, 1.0f);
    for (int N = 1; N <= 3; N += 2) {
        float ya[3 * 40], yb[3 * 40], yc[3 * 40], yr[3 * 40];
        cr_assert_eq(mq_qlinear_forward(&a, ya, x, N, NULL), MQ_OK);
        cr_assert_eq(mq_qlinear_forward(&b, yb, x, N, NULL), MQ_OK);
        cr_assert_arr_eq(ya, yb, (size_t)N * 40 * sizeof(float), "N=%d", N);
        cr_assert_eq(mq_qlinear_forward(&c, yc, x, N, NULL), MQ_OK);
        /* a's address now holds c's bytes */
        memcpy(a.w.data, c.w.data, 40 * a.w.row_bytes);
        memcpy(a.bias, c.bias, 40 * sizeof(float));
        cr_assert_eq(mq_qlinear_forward(&a, ya, x, N, NULL), MQ_OK);
        cr_assert_arr_eq(ya, yc, (size_t)N * 40 * sizeof(float), "N=%d: a stale weight", N);
        cr_assert_eq(mq_qlinear_forward_ref(&c, yr, x, N, NULL), MQ_OK);
        int differ = 0;
        for (int k = 0; k < N * 40; k++) {
            cr_assert_float_eq(ya[k], yr[k], 1e-4f);
            differ |= ya[k] != yb[k];
        }
        cr_assert(differ, "the two weights give the same output: the test shows nothing");
        memcpy(a.w.data, b.w.data, 40 * a.w.row_bytes); /* back to a's weight */
        memcpy(a.bias, b.bias, 40 * sizeof(float));
    }
    free(x);
    mq_qlinear_free(&a);
    mq_qlinear_free(&b);
    mq_qlinear_free(&c);
}

/* Freeing: a weight that borrows its bytes leaves them to their owner; freeing twice is
 * harmless (the sanitizer build checks that nothing leaks or is freed twice). */
Test(kernels, freeing_is_clean) {
    mq_qlinear_t ql;
    make_linear(&ql, "nf4_g32", 20, 64, 1, 65);
    size_t nd = 20 * ql.w.row_bytes;
    uint8_t *data = malloc(nd);
    mq_fp16_t *sc = malloc(ql.w.n_scales * sizeof *sc);
    cr_assert(data && sc);
    memcpy(data, ql.w.data, nd);
    memcpy(sc, ql.w.scales, ql.w.n_scales * sizeof *sc);
    mq_qweight_t w;
    int bad_row = -1;
    mq_row_fault_t fault;
    mq_error_t err = {0};
    cr_assert_eq(
        mq_qweight_load(&w, &ql.w.scheme, ql.w.format, 20, 64, data, sc, 1, &bad_row, &fault, &err),
        MQ_OK, "%s", err.msg);
    cr_assert(w.borrowed && w.data == data && w.scales == sc);
    float x[64], y1[20], y2[20];
    for (int i = 0; i < 64; i++)
        x[i] = 0.1f * (float)(i % 9) - 0.4f;
    cr_assert_eq(mq_qweight_forward(&w, ql.bias, y1, x, 1, &err), MQ_OK, "%s", err.msg);
    cr_assert_eq(mq_qlinear_forward(&ql, y2, x, 1, &err), MQ_OK, "%s", err.msg);
    cr_assert_arr_eq(y1, y2, sizeof y1);
    mq_qweight_free(&w);
    cr_assert_null(w.data);
    mq_qweight_free(&w);
    cr_assert_eq(data[0], ql.w.data[0]); /* still the owner's */
    free(data);
    free(sc);
    mq_qlinear_free(&ql);
    mq_qlinear_free(&ql);
    cr_assert_null(ql.w.data);
    cr_assert_null(ql.w.scales);
    cr_assert_null(ql.bias);
}

Test(kernels, bad_arguments_are_refused) {
    mq_qlinear_t ql;
    make_linear(&ql, "int4_g64", 4, 64, 0, 71);
    mq_error_t err = {0};
    float x[64] = {0}, y[4];
    cr_assert_eq(mq_qweight_forward_with(&ql.w, MQ_ISA_SCALAR, 0, NULL, y, x, -1, &err),
                 MQ_ERR_ARG);
    cr_assert_eq(mq_qweight_forward_with(&ql.w, MQ_ISA_SCALAR, 0, NULL, y, x, 0, &err), MQ_OK);
    cr_assert_eq(mq_qweight_forward_with(&ql.w, MQ_ISA_COUNT, 0, NULL, y, x, 1, &err), MQ_ERR_ARG);
    cr_assert_eq(mq_qweight_forward_with(NULL, MQ_ISA_SCALAR, 0, NULL, y, x, 1, &err), MQ_ERR_ARG);
    mq_qweight_t empty = {0};
    cr_assert_eq(mq_qweight_forward(&empty, NULL, y, x, 1, &err), MQ_ERR_ARG);
    mq_qlinear_t none = {0};
    cr_assert_eq(mq_qlinear_forward(&none, y, x, 1, &err), MQ_ERR_ARG);

    /* a code beyond the 4-bit grid never becomes a weight: from codes, or from stored bytes */
    int8_t codes[4 * 64];
    mq_fp16_t sc[4];
    cr_assert_eq(mq_qweight_to_codes(&ql.w, codes, sc, &err), MQ_OK, "%s", err.msg);
    codes[5] = 9;
    mq_qweight_t w;
    cr_assert_eq(mq_qweight_from_codes(&w, &ql.w.scheme, 4, 64, codes, sc, &err), MQ_ERR_ARG);
    cr_assert(strstr(err.msg, "code 9") && strstr(err.msg, "[-7, 7]"), "%s", err.msg);
    cr_assert_null(w.data);
    size_t nd = 4 * ql.w.row_bytes;
    uint8_t *bytes = malloc(nd);
    cr_assert(bytes);
    memcpy(bytes, ql.w.data, nd);
    bytes[ql.w.row_bytes + 2] &= 0xf0; /* row 1, weight 0: nibble 0 is code -8 */
    int bad_row = -1;
    mq_row_fault_t fault;
    cr_assert_eq(mq_qweight_load(&w, &ql.w.scheme, ql.w.format, 4, 64, bytes, NULL, 0, &bad_row,
                                 &fault, &err),
                 MQ_ERR_FORMAT);
    cr_assert_eq(bad_row, 1);
    cr_assert(strstr(err.msg, "grid"), "%s", err.msg);
    cr_assert_null(w.data);
    free(bytes);
    mq_qlinear_free(&ql);
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

/* The quantized model is a model of its own: its logits through the fused kernels match the
 * reference path's, they are not the FP32 model's (its Linears are really quantized), and the
 * FP32 model it was made from gives the same bits before and after. */
Test(kernels, the_qmodel_runs_the_fused_path_by_default) {
    mq_gpt_t m;
    tiny_model(&m);
    int tok[20];
    for (int t = 0; t < 20; t++)
        tok[t] = (t * 37) % 96;
    float *orig = logits(&m, tok, 20);
    size_t n = (size_t)20 * m.cfg.vocab_size;
    static const char *names[] = {"int8_per_channel", "int4_g64", "nf4_g32",
                                  "nf3_g32",          "int3_g16", "fp16"};
    for (int i = 0; i < 6; i++) {
        mq_qmodel_t q;
        mq_scheme_t s = scheme(names[i]);
        mq_qmodel_opts_t opts = {0, -1, 1, NULL};
        mq_error_t err = {0};
        cr_assert_eq(mq_qmodel_quantize(&q, &m, &s, &opts, &err), MQ_OK, "%s", err.msg);
        cr_assert_eq(q.fused, 1);
        cr_assert(q.model && q.model != &m);
        for (int k = 0; k < q.n_linear; k++)
            cr_assert(q.active[k] && !q.ql[k].w.borrowed, "%s: Linear %d", names[i], k);
        float *fused = logits(q.model, tok, 20);
        q.fused = 0;
        float *ref = logits(q.model, tok, 20);
        double num = 0.0, den = 0.0, dq = 0.0;
        for (size_t k = 0; k < n; k++) {
            num += ((double)fused[k] - ref[k]) * ((double)fused[k] - ref[k]);
            den += (double)ref[k] * ref[k];
            dq += ((double)orig[k] - ref[k]) * ((double)orig[k] - ref[k]);
        }
        cr_assert_lt(sqrt(num / den), 1e-5, "%s: fused and reference logits differ by %.3g",
                     names[i], sqrt(num / den));
        cr_assert_gt(sqrt(dq / den), 1e-4, "%s: the quantized logits are the FP32 ones", names[i]);
        float *after = logits(&m, tok, 20);
        cr_assert_arr_eq(after, orig, n * sizeof *orig, "%s changed the FP32 model", names[i]);
        free(after);
        free(fused);
        free(ref);
        mq_qmodel_free(&q);
    }
    free(orig);
    mq_gpt_free(&m);
}

/* only = -2: every Linear F32, borrowing the FP32 model's weights, none marked quantized; the
 * logits are the FP32 model's (embeddings kept FP32 here). */
Test(kernels, a_qmodel_of_no_quantized_linear_borrows_the_fp32_weights) {
    mq_gpt_t m;
    tiny_model(&m);
    int tok[12];
    for (int t = 0; t < 12; t++)
        tok[t] = (t * 11) % 96;
    float *orig = logits(&m, tok, 12);
    mq_qmodel_t q;
    mq_scheme_t s = scheme("int4_g64");
    mq_qmodel_opts_t opts = {0, -2, 1, NULL};
    cr_assert_eq(mq_qmodel_quantize(&q, &m, &s, &opts, NULL), MQ_OK);
    for (int k = 0; k < q.n_linear; k++) {
        int OC, C;
        const float *W = mq_gpt_linear_weight(&m, mq_qmodel_linear_id(&m.cfg, k), NULL, &OC, &C);
        cr_assert_not(q.active[k]);
        cr_assert(q.ql[k].w.borrowed);
        cr_assert_str_eq(q.ql[k].w.format->name, "f32");
        cr_assert_eq((const void *)q.ql[k].w.data, (const void *)W);
    }
    float *l = logits(q.model, tok, 12);
    size_t n = (size_t)12 * m.cfg.vocab_size;
    for (size_t k = 0; k < n; k++)
        cr_assert_float_eq(l[k], orig[k], 1e-5f * (1.0f + fabsf(orig[k])));
    free(l);
    free(orig);
    mq_qmodel_free(&q);
    mq_gpt_free(&m);
}

Test(kernels, mq_reference_selects_the_reference_path) {
    setenv("MQ_REFERENCE", "1", 1);
    mq_gpt_t m;
    tiny_model(&m);
    mq_qmodel_t q;
    mq_scheme_t s = scheme("int4_g64");
    cr_assert_eq(mq_qmodel_quantize(&q, &m, &s, NULL, NULL), MQ_OK);
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
    float *x = randn_sd(83, 3 * 192, 1.0f), y[3 * 37];
    cr_assert_eq(mq_qweight_forward(&ql.w, ql.bias, y, x, 3, &err), MQ_OK, "%s", err.msg);
    float *ys = run(&ql.w, MQ_ISA_SCALAR, 0, ql.bias, x, 3);
    cr_assert_arr_eq(y, ys, sizeof y);
    free(ys);
    free(x);
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
    cr_assert_eq(mq_qweight_forward_with(&ql.w, MQ_ISA_AVX512, 0, NULL, y, x, 1, &err),
                 MQ_ERR_UNSUPPORTED);
    /* and the automatic choice falls back */
    cr_assert_neq(mq_isa_best(), MQ_ISA_AVX512);
    cr_assert_eq(mq_kernels_select(mq_isa_best(), 0, &err), MQ_OK);
    cr_assert_eq(mq_qweight_forward(&ql.w, NULL, y, x, 1, &err), MQ_OK, "%s", err.msg);
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
    /* AVX2's int8 products need no VNNI */
    cr_assert_eq(mq_isa_supports_a8(MQ_ISA_AVX2), mq_isa_supported(MQ_ISA_AVX2));
    if (mq_isa_supported(MQ_ISA_AVX2))
        cr_assert_eq(mq_kernels_select(MQ_ISA_AVX2, 1, &err), MQ_OK, "%s", err.msg);
    if (mq_isa_supported(MQ_ISA_AVX512)) {
        cr_assert_eq(mq_kernels_select(MQ_ISA_AVX512, 1, &err), MQ_ERR_UNSUPPORTED);
        cr_assert(strstr(err.msg, "VNNI") && strstr(err.msg, "avx512"), "%s", err.msg);
    }
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
    cr_assert(mq_qweight_takes_a8(&ql.w, mq_isa_best()));
    float *x = randn_sd(95, 192, 1.0f), y[37];
    cr_assert_eq(mq_qweight_forward(&ql.w, ql.bias, y, x, 1, NULL), MQ_OK);
    float *ya8 = run(&ql.w, mq_isa_best(), 1, ql.bias, x, 1);
    float *yf = run(&ql.w, mq_isa_best(), 0, ql.bias, x, 1);
    cr_assert_arr_eq(y, ya8, sizeof y);
    int differ = 0;
    for (int o = 0; o < 37; o++)
        differ |= y[o] != yf[o];
    cr_assert(differ, "the int8-activation forward is the FP32 one");
    free(yf);
    free(ya8);
    free(x);
    mq_qlinear_free(&ql);
}

/* MQ_VNNI=prompt: int8 activations for several x rows, FP32 ones for one (decode); without
 * MQ_VNNI the serving default chooses it where VNNI runs it, and MQ_VNNI=0 keeps it off. */
static void check_prompt_mode(mq_isa_t isa) {
    mq_qlinear_t ql;
    make_linear(&ql, "int8_g32", 21, 96, 1, 97);
    float *x = randn_sd(99, 3 * 96, 1.0f), y[3 * 21];
    for (int N = 1; N <= 3; N += 2) {
        cr_assert_eq(mq_qweight_forward(&ql.w, ql.bias, y, x, N, NULL), MQ_OK);
        float *ya8 = run(&ql.w, isa, 1, ql.bias, x, N), *yf = run(&ql.w, isa, 0, ql.bias, x, N);
        cr_assert_arr_eq(y, N > 1 ? ya8 : yf, (size_t)N * 21 * sizeof *y, "N = %d", N);
        int differ = 0;
        for (int o = 0; o < N * 21; o++)
            differ |= ya8[o] != yf[o];
        cr_assert(differ, "the int8-activation forward is the FP32 one");
        if (N == 1) { /* a decode step keeps FP32 activations, and its form says so */
            mq_step_linear_t st;
            cr_assert_eq(mq_qweight_step(&ql.w, ql.bias, &st, NULL), MQ_OK);
            cr_assert_not(st.a8);
        }
        free(ya8);
        free(yf);
    }
    free(x);
    mq_qlinear_free(&ql);
}

Test(dispatch, mq_vnni_prompt_quantizes_only_prompt_activations) {
    setenv("MQ_VNNI", "prompt", 1);
    setenv("MQ_KERNEL", "scalar", 1); /* the scalar version has the mode on every CPU */
    cr_assert_eq(mq_kernels_init(NULL), MQ_OK);
    cr_assert_eq(mq_kernels_a8(), MQ_A8_PROMPT);
    check_prompt_mode(MQ_ISA_SCALAR);
    cr_assert_eq(mq_kernels_serving(), MQ_A8_PROMPT, "MQ_VNNI chose");
    setenv("MQ_VNNI", "often", 1);
    cr_assert_eq(mq_kernels_select(MQ_ISA_SCALAR, MQ_A8_SERVE + 1, NULL), MQ_ERR_ARG);
}

/* MQ_VNNI=serve: as prompt, and one x row of a K-quant or of Q4_0 takes its int8 one-row
 * kernel (its decode steps too), where Q8_0's one row keeps FP32 activations. */
static void check_serve_one_row(mq_isa_t isa, const char *scheme) {
    mq_qlinear_t ql;
    make_linear(&ql, scheme, 21, 256, 1, 101);
    float *x = randn_sd(103, 256, 1.0f), y[21];
    cr_assert_eq(mq_qweight_forward(&ql.w, ql.bias, y, x, 1, NULL), MQ_OK);
    float *ya8 = run(&ql.w, isa, 1, ql.bias, x, 1), *yf = run(&ql.w, isa, 0, ql.bias, x, 1);
    cr_assert_arr_eq(y, ya8, sizeof y);
    int differ = 0;
    for (int o = 0; o < 21; o++)
        differ |= ya8[o] != yf[o];
    cr_assert(differ, "the int8-activation forward is the FP32 one");
    /* the decode step's form takes the same kernel */
    mq_step_linear_t st;
    cr_assert_eq(mq_qweight_step(&ql.w, ql.bias, &st, NULL), MQ_OK);
    cr_assert(st.prep && st.prep_bytes > 0, "the step quantizes x once");
    cr_assert(st.a8, "the step's form says it takes int8 activations");
    void *prep = malloc(st.prep_bytes), *scratch = malloc(st.thread_bytes + 1);
    float ys[21];
    st.prep(&st, x, prep);
    st.rows(&st, x, prep, ys, 0, 21, scratch);
    cr_assert_arr_eq(ys, ya8, sizeof ys);
    free(prep);
    free(scratch);
    free(ya8);
    free(yf);
    free(x);
    mq_qlinear_free(&ql);
}

static void check_serve_mode(mq_isa_t isa) {
    check_prompt_mode(isa);
    check_serve_one_row(isa, "q4_k");
    check_serve_one_row(isa, "int4_g32"); /* Q4_0 */
}

Test(dispatch, mq_vnni_serve_adds_the_k_quants_decode) {
    setenv("MQ_VNNI", "serve", 1);
    setenv("MQ_KERNEL", "scalar", 1);
    cr_assert_eq(mq_kernels_init(NULL), MQ_OK);
    cr_assert_eq(mq_kernels_a8(), MQ_A8_SERVE);
    check_serve_mode(MQ_ISA_SCALAR);
    char about[256];
    mq_kernels_a8_about(MQ_A8_SERVE, about, sizeof about);
    cr_assert(strstr(about, "in prompts for q8_0, q4_0, q2_k") &&
                  strstr(about, "decode for q4_0, q2_k"),
              "%s", about);
    cr_assert_not(strstr(strstr(about, "decode"), "q8_0"), "%s", about);
}

Test(dispatch, the_serving_default_is_int8_where_vnni_runs_it) {
    cr_assert_eq(mq_kernels_init(NULL), MQ_OK);
    cr_assert_eq(mq_kernels_a8(), MQ_A8_OFF, "evaluation keeps FP32 activations");
    int want = mq_isa_supports_a8(mq_isa_best()) && mq_isa_best() != MQ_ISA_SCALAR ? MQ_A8_SERVE
                                                                                   : MQ_A8_OFF;
    cr_assert_eq(mq_kernels_serving(), want);
    if (want == MQ_A8_SERVE) check_serve_mode(mq_isa_best());
}

Test(dispatch, mq_vnni_0_keeps_the_serving_default_off) {
    setenv("MQ_VNNI", "0", 1);
    cr_assert_eq(mq_kernels_serving(), MQ_A8_OFF);
}

Test(dispatch, an_unknown_mq_vnni_is_refused) {
    setenv("MQ_VNNI", "often", 1);
    mq_error_t err = {0};
    cr_assert_eq(mq_kernels_init(&err), MQ_ERR_ARG);
    cr_assert(strstr(err.msg, "0, 1, prompt or serve") && strstr(err.msg, "often"), "%s", err.msg);
}
