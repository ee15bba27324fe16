/* The block formats miniquant writes from the values (q2_k, q3_k, q4_k, q5_k, q6_k, iq4_nl and
 * their fallbacks q5_0, q5_1, q8_0, iq4_nl, f16): their scales are searched at least as well as ggml's
 * reference quantizers search them, written here after ggml-quants.c (the same sweeps, the same
 * rounding of the sub-block scales, nearest codes) and compared on the same weights by ggml's
 * own error weights; the importance-weighted variant lowers the error under its importance;
 * fallbacks, zero rows and the scheme names. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "miniquant/fp16.h"
#include "qhelpers.h"

#define ROWS 24
#define COLS 512

static float half(float v) {
    return mq_fp16_to_fp32(mq_fp32_to_fp16(v));
}

static int nint(float v) {
    return (int)nearbyintf(v);
}

static int clampi(int v, int lo, int hi) {
    return v < lo ? lo : v > hi ? hi : v;
}

/* Gaussian rows with a few outliers, as trained weights have. */
static float *weights(uint64_t seed) {
    float *W = randn_sd(seed, (size_t)ROWS * COLS, 0.05f);
    for (int r = 0; r < ROWS; r++)
        W[(size_t)r * COLS + (r * 37) % COLS] = 0.6f * (r % 2 ? 1.0f : -1.0f);
    return W;
}

/* The values miniquant's scheme gives W. */
static float *quantized(const char *name, const float *W, const float *imp) {
    mq_scheme_t s = scheme(name);
    mq_qweight_t q;
    mq_error_t err = {0};
    cr_assert_eq(mq_qweight_quantize_imp(&q, &s, W, ROWS, COLS, imp, &err), MQ_OK, "%s", err.msg);
    float *Y = malloc((size_t)ROWS * COLS * sizeof *Y);
    mq_qweight_dequantize(&q, Y);
    mq_qweight_free(&q);
    return Y;
}

/* sum_i w_i (x_i - y_i)^2 with ggml's weights: av_x + |x| per 32 (Q4_K, Q5_K), x^2 (Q3_K, Q6_K,
 * IQ4_NL), |x| (Q2_K), or imp_i (the importance alone). */
enum { W_RMS_ABS, W_SQUARE, W_ABS, W_IMP };
static double weighted_error(const float *X, const float *Y, int kind, const float *imp) {
    double e = 0;
    for (size_t b = 0; b < (size_t)ROWS * COLS; b += 32) {
        float s2 = 0;
        for (size_t i = b; i < b + 32; i++)
            s2 += X[i] * X[i];
        float av = sqrtf(s2 / 32);
        for (size_t i = b; i < b + 32; i++) {
            double d = (double)X[i] - Y[i];
            double w = kind == W_RMS_ABS ? av + fabsf(X[i])
                       : kind == W_SQUARE ? (double)X[i] * X[i]
                       : kind == W_ABS    ? fabsf(X[i])
                                          : imp[i % COLS];
            e += w * d * d;
        }
    }
    return e;
}

/* ---- ggml's reference quantizers, for the comparison ---- */

/* make_qkx2_quants(n, nmax, x, w, ..., rmin, 0.1, nstep, use_mad): a sub-block's scale and min
 * (n, rmin, nstep, use_mad: 32, -1, 20, 0 for Q4_K and Q5_K; 16, -0.5, 15, 1 for Q2_K). */
static float ggml_qkx2n(const float *x, const float *w, int n, int nmax, float rmin, int nstep,
                        int mad, float *the_min) {
    float min = x[0], max = x[0], sum_w = 0, sum_x = 0;
    for (int i = 0; i < n; i++) {
        min = x[i] < min ? x[i] : min;
        max = x[i] > max ? x[i] : max;
        sum_w += w[i];
        sum_x += w[i] * x[i];
    }
    if (min > 0) min = 0;
    if (max == min) {
        *the_min = -min;
        return 0;
    }
    float iscale = nmax / (max - min), scale = 1 / iscale, best = 0;
    for (int i = 0; i < n; i++) {
        int l = clampi(nint(iscale * (x[i] - min)), 0, nmax);
        float diff = scale * l + min - x[i];
        best += w[i] * (mad ? fabsf(diff) : diff * diff);
    }
    for (int is = 0; is <= nstep; is++) {
        iscale = (rmin + 0.1f * is + nmax) / (max - min);
        float sum_l = 0, sum_l2 = 0, sum_xl = 0;
        int L[32];
        for (int i = 0; i < n; i++) {
            L[i] = clampi(nint(iscale * (x[i] - min)), 0, nmax);
            sum_l += w[i] * L[i];
            sum_l2 += w[i] * L[i] * L[i];
            sum_xl += w[i] * L[i] * x[i];
        }
        float D = sum_w * sum_l2 - sum_l * sum_l;
        if (D > 0) {
            float s = (sum_w * sum_xl - sum_x * sum_l) / D, m = (sum_l2 * sum_x - sum_l * sum_xl) / D;
            if (m > 0) {
                m = 0;
                s = sum_xl / sum_l2;
            }
            float e = 0;
            for (int i = 0; i < n; i++) {
                float diff = s * L[i] + m - x[i];
                e += w[i] * (mad ? fabsf(diff) : diff * diff);
            }
            if (e < best) {
                best = e;
                scale = s;
                min = m;
            }
        }
    }
    *the_min = -min;
    return scale;
}

/* quantize_row_q4_K_ref / q5_K_ref's values of one 256-block. */
static void ggml_q4_k_values(const float *x, int nmax, float *y) {
    float scales[8], mins[8], w[32], max_scale = 0, max_min = 0;
    for (int j = 0; j < 8; j++) {
        float s2 = 0;
        for (int l = 0; l < 32; l++)
            s2 += x[32 * j + l] * x[32 * j + l];
        float av = sqrtf(s2 / 32);
        for (int l = 0; l < 32; l++)
            w[l] = av + fabsf(x[32 * j + l]);
        scales[j] = ggml_qkx2n(x + 32 * j, w, 32, nmax, -1.0f, 20, 0, &mins[j]);
        max_scale = scales[j] > max_scale ? scales[j] : max_scale;
        max_min = mins[j] > max_min ? mins[j] : max_min;
    }
    float inv_scale = max_scale > 0 ? 63.f / max_scale : 0, inv_min = max_min > 0 ? 63.f / max_min : 0;
    float d = half(max_scale / 63.f), dmin = half(max_min / 63.f);
    for (int j = 0; j < 8; j++) {
        int ls = clampi(nint(inv_scale * scales[j]), 0, 63), lm = clampi(nint(inv_min * mins[j]), 0, 63);
        float d1 = d * ls, m1 = dmin * lm;
        for (int l = 0; l < 32; l++) {
            int q = d1 ? clampi(nint((x[32 * j + l] + m1) / d1), 0, nmax) : 0;
            y[32 * j + l] = d1 * q - m1;
        }
    }
}

/* make_qx_quants(16, 32, x, L, 1, NULL) */
static float ggml_qx(const float *x) {
    float max = 0, amax = 0;
    for (int i = 0; i < 16; i++)
        if (fabsf(x[i]) > amax) {
            amax = fabsf(x[i]);
            max = x[i];
        }
    if (amax < 1e-15f) return 0;
    float iscale = -32 / max, sumlx = 0, suml2 = 0;
    for (int i = 0; i < 16; i++) {
        int l = clampi(nint(iscale * x[i]), -32, 31);
        sumlx += x[i] * x[i] * x[i] * l;
        suml2 += x[i] * x[i] * l * l;
    }
    float scale = suml2 ? sumlx / suml2 : 0, best = scale * sumlx;
    for (int is = -9; is <= 9; is++) {
        if (!is) continue;
        iscale = -(32 + 0.1f * is) / max;
        sumlx = suml2 = 0;
        for (int i = 0; i < 16; i++) {
            int l = clampi(nint(iscale * x[i]), -32, 31);
            sumlx += x[i] * x[i] * x[i] * l;
            suml2 += x[i] * x[i] * l * l;
        }
        if (suml2 > 0 && sumlx * sumlx > best * suml2) {
            scale = sumlx / suml2;
            best = scale * sumlx;
        }
    }
    return scale;
}

/* quantize_row_q6_K_ref's values of one 256-block. */
static void ggml_q6_k_values(const float *x, float *y) {
    float scales[16], max_scale = 0, amax = 0;
    for (int j = 0; j < 16; j++) {
        scales[j] = ggml_qx(x + 16 * j);
        if (fabsf(scales[j]) > amax) {
            amax = fabsf(scales[j]);
            max_scale = scales[j];
        }
    }
    memset(y, 0, 256 * sizeof *y);
    if (amax < 1e-15f) return;
    float iscale = -128.f / max_scale, d = half(1 / iscale);
    for (int j = 0; j < 16; j++) {
        int ls = nint(iscale * scales[j]);
        ls = ls < 127 ? ls : 127;
        float d1 = d * ls;
        for (int l = 0; l < 16; l++) {
            int q = d1 ? clampi(nint(x[16 * j + l] / d1), -32, 31) : 0;
            y[16 * j + l] = d1 * q;
        }
    }
}

/* quantize_row_q2_K_ref's values of one 256-block: weights |x|, mean absolute error sweeps,
 * 4-bit scales and mins. */
static void ggml_q2_k_values(const float *x, float *y) {
    float scales[16], mins[16], w[16], max_scale = 0, max_min = 0;
    for (int j = 0; j < 16; j++) {
        for (int l = 0; l < 16; l++)
            w[l] = fabsf(x[16 * j + l]);
        scales[j] = ggml_qkx2n(x + 16 * j, w, 16, 3, -0.5f, 15, 1, &mins[j]);
        max_scale = scales[j] > max_scale ? scales[j] : max_scale;
        max_min = mins[j] > max_min ? mins[j] : max_min;
    }
    float d = max_scale > 0 ? half(max_scale / 15) : 0, dmin = max_min > 0 ? half(max_min / 15) : 0;
    for (int j = 0; j < 16; j++) {
        int ls = max_scale > 0 ? nint(15 / max_scale * scales[j]) : 0;
        int lm = max_min > 0 ? nint(15 / max_min * mins[j]) : 0;
        float d1 = d * ls, m1 = dmin * lm;
        for (int l = 0; l < 16; l++) {
            int q = d1 ? clampi(nint((x[16 * j + l] + m1) / d1), 0, 3) : 0;
            y[16 * j + l] = d1 * q - m1;
        }
    }
}

/* make_q3_quants(16, 4, x, L, true): the least-squares scale (weights x^2) after coordinate
 * descent on the codes. */
static float ggml_q3(const float *x) {
    float max = 0, amax = 0;
    for (int i = 0; i < 16; i++)
        if (fabsf(x[i]) > amax) {
            amax = fabsf(x[i]);
            max = x[i];
        }
    if (amax < 1e-15f) return 0;
    float iscale = -4 / max, sumlx = 0, suml2 = 0;
    int L[16];
    for (int i = 0; i < 16; i++) {
        L[i] = clampi(nint(iscale * x[i]), -4, 3);
        float w = x[i] * x[i];
        sumlx += w * x[i] * L[i];
        suml2 += w * L[i] * L[i];
    }
    for (int itry = 0; itry < 5; itry++) {
        int changed = 0;
        for (int i = 0; i < 16; i++) {
            float w = x[i] * x[i], slx = sumlx - w * x[i] * L[i];
            if (slx > 0) {
                float sl2 = suml2 - w * L[i] * L[i];
                int nl = clampi(nint(x[i] * sl2 / slx), -4, 3);
                if (nl != L[i]) {
                    slx += w * x[i] * nl;
                    sl2 += w * nl * nl;
                    if (sl2 > 0 && slx * slx * suml2 > sumlx * sumlx * sl2) {
                        L[i] = nl;
                        sumlx = slx;
                        suml2 = sl2;
                        changed++;
                    }
                }
            }
        }
        if (!changed) break;
    }
    return sumlx / suml2;
}

/* quantize_row_q3_K_ref's values of one 256-block. */
static void ggml_q3_k_values(const float *x, float *y) {
    float scales[16], max_scale = 0, amax = 0;
    for (int j = 0; j < 16; j++) {
        scales[j] = ggml_q3(x + 16 * j);
        if (fabsf(scales[j]) > amax) {
            amax = fabsf(scales[j]);
            max_scale = scales[j];
        }
    }
    memset(y, 0, 256 * sizeof *y);
    if (!max_scale) return;
    float iscale = -32.f / max_scale, d = half(1 / iscale);
    for (int j = 0; j < 16; j++) {
        int ls = clampi(nint(iscale * scales[j]), -32, 31);
        float d1 = d * ls;
        for (int l = 0; l < 16; l++) {
            int q = d1 ? clampi(nint(x[16 * j + l] / d1), -4, 3) : 0;
            y[16 * j + l] = d1 * q;
        }
    }
}

static float *ggml_values(const float *W, void (*block)(const float *, float *)) {
    float *Y = malloc((size_t)ROWS * COLS * sizeof *Y);
    for (size_t b = 0; b < (size_t)ROWS * COLS; b += 256)
        block(W + b, Y + b);
    return Y;
}

static void q4_k_ref(const float *x, float *y) {
    ggml_q4_k_values(x, 15, y);
}
static void q5_k_ref(const float *x, float *y) {
    ggml_q4_k_values(x, 31, y);
}

Test(kquants, scales_are_searched_at_least_as_well_as_ggml_reference_quantizers) {
    static const struct {
        const char *scheme;
        void (*ref)(const float *, float *);
        int kind;
    } CASES[] = {{"q4_k", q4_k_ref, W_RMS_ABS},
                 {"q5_k", q5_k_ref, W_RMS_ABS},
                 {"q6_k", ggml_q6_k_values, W_SQUARE},
                 {"q3_k", ggml_q3_k_values, W_SQUARE},
                 {"q2_k", ggml_q2_k_values, W_ABS}};
    for (size_t c = 0; c < sizeof CASES / sizeof CASES[0]; c++)
        for (uint64_t seed = 1; seed <= 3; seed++) {
            float *W = weights(seed), *Y = quantized(CASES[c].scheme, W, NULL),
                  *R = ggml_values(W, CASES[c].ref);
            double mine = weighted_error(W, Y, CASES[c].kind, NULL),
                   ref = weighted_error(W, R, CASES[c].kind, NULL);
            cr_assert(mine <= ref, "%s, seed %d: error %g, ggml's reference %g", CASES[c].scheme,
                      (int)seed, mine, ref);
            cr_assert(mine > 0);
            free(W);
            free(Y);
            free(R);
        }
}

/* Every format's values are close to the weights (relative RMS error below its bound). */
Test(kquants, values_are_close_to_the_weights) {
    static const struct {
        const char *scheme;
        double bound;
    } CASES[] = {{"q4_k", 0.12}, {"q5_k", 0.06}, {"q6_k", 0.03},
                 {"iq4_nl", 0.12}, {"q3_k", 0.25}, {"q2_k", 0.45}};
    float *W = weights(7);
    for (size_t c = 0; c < sizeof CASES / sizeof CASES[0]; c++) {
        float *Y = quantized(CASES[c].scheme, W, NULL);
        double num = 0, den = 0;
        for (size_t i = 0; i < (size_t)ROWS * COLS; i++) {
            num += ((double)W[i] - Y[i]) * ((double)W[i] - Y[i]);
            den += (double)W[i] * W[i];
        }
        cr_assert(sqrt(num / den) < CASES[c].bound, "%s: relative error %g", CASES[c].scheme,
                  sqrt(num / den));
        free(Y);
    }
    free(W);
}

/* Under an importance that favours some inputs, the _imat variant's error weighed by that
 * importance is lower than the plain one's. */
Test(kquants, the_importance_lowers_the_error_it_weighs) {
    float imp[COLS];
    for (int c = 0; c < COLS; c++)
        imp[c] = c % 7 == 0 ? 50.0f : 0.5f + (float)(c % 3);
    float *W = weights(11);
    static const char *const SCHEMES[] = {"q4_k", "q5_k", "q6_k", "iq4_nl", "q3_k", "q2_k"};
    for (size_t k = 0; k < 6; k++) {
        char imat[32];
        snprintf(imat, sizeof imat, "%s_imat", SCHEMES[k]);
        float *A = quantized(SCHEMES[k], W, NULL), *B = quantized(imat, W, imp);
        double plain = weighted_error(W, A, W_IMP, imp), weighed = weighted_error(W, B, W_IMP, imp);
        cr_assert(weighed < plain, "%s: %g, plain %g", imat, weighed, plain);
        free(A);
        free(B);
    }
    /* without an importance an _imat scheme refuses to quantize */
    mq_scheme_t s = scheme("q4_k_imat");
    mq_qweight_t q;
    mq_error_t err = {0};
    cr_assert_eq(mq_qweight_quantize(&q, &s, W, ROWS, COLS, &err), MQ_ERR_ARG);
    cr_assert(strstr(err.msg, "importance"), "%s", err.msg);
    imp[3] = NAN;
    cr_assert_eq(mq_qweight_quantize_imp(&q, &s, W, ROWS, COLS, imp, &err), MQ_ERR_ARG);
    cr_assert(strstr(err.msg, "input 3"), "%s", err.msg);
    free(W);
}

/* Zero rows give zeros; rows no block divides take ggml's fallbacks, as llama-quantize does. */
Test(kquants, zero_rows_and_fallbacks) {
    static const struct {
        const char *scheme;
        int cols;
        const char *format;
    } CASES[] = {{"q4_k", 512, "q4_k"}, {"q4_k", 96, "q5_0"},  {"q4_k", 40, "f16"},
                 {"q5_k", 256, "q5_k"}, {"q5_k", 64, "q5_1"},  {"q6_k", 256, "q6_k"},
                 {"q6_k", 32, "q8_0"},  {"iq4_nl", 32, "iq4_nl"}, {"iq4_nl", 20, "f16"},
                 {"q3_k", 256, "q3_k"}, {"q3_k", 64, "iq4_nl"},  {"q2_k", 512, "q2_k"},
                 {"q2_k", 40, "f16"}};
    for (size_t c = 0; c < sizeof CASES / sizeof CASES[0]; c++) {
        int C = CASES[c].cols;
        mq_scheme_t s = scheme(CASES[c].scheme);
        float *W = calloc((size_t)3 * C, sizeof *W), *Y = malloc((size_t)3 * C * sizeof *Y);
        mq_qweight_t q;
        mq_error_t err = {0};
        cr_assert_eq(mq_qweight_quantize(&q, &s, W, 3, C, &err), MQ_OK, "%s", err.msg);
        cr_assert_str_eq(q.format->name, CASES[c].format, "%s, %d", CASES[c].scheme, C);
        mq_qweight_dequantize(&q, Y);
        for (int i = 0; i < 3 * C; i++)
            cr_assert(Y[i] == 0.0f, "%s, %d: value %d is %g", CASES[c].scheme, C, i, (double)Y[i]);
        mq_qweight_free(&q);
        free(W);
        free(Y);
    }
}

/* The fallbacks as ggml's reference writes them, by hand: q5_0 of -8 .. 7.5 in steps of 0.5
 * (the largest magnitude, -8, is -16 codes of d = 0.5: every weight exact) and q8_0 of
 * -63 .. 61 in steps of 4 (d = 63 / 127). */
Test(kquants, fallbacks_by_hand) {
    float W[32], Y[32];
    for (int i = 0; i < 32; i++)
        W[i] = -8.0f + 0.5f * (float)i;
    mq_scheme_t s = scheme("q4_k");
    mq_qweight_t q;
    mq_error_t err = {0};
    cr_assert_eq(mq_qweight_quantize(&q, &s, W, 1, 32, &err), MQ_OK, "%s", err.msg);
    cr_assert_str_eq(q.format->name, "q5_0");
    mq_qweight_dequantize(&q, Y);
    for (int i = 0; i < 32; i++)
        cr_assert(Y[i] == W[i], "q5_0 weight %d: %g", i, (double)Y[i]);
    mq_qweight_free(&q);
    s = scheme("q6_k");
    for (int i = 0; i < 32; i++)
        W[i] = (float)(i * 4 - 63); /* -63 .. 61: d = 63 / 127, 61 -> code 123 (122.97) */
    cr_assert_eq(mq_qweight_quantize(&q, &s, W, 1, 32, &err), MQ_OK, "%s", err.msg);
    cr_assert_str_eq(q.format->name, "q8_0");
    mq_qweight_dequantize(&q, Y);
    float d = half(63.0f / 127.0f);
    cr_assert(Y[0] == -127.0f * d && Y[31] == 123.0f * d, "%g %g", (double)Y[0], (double)Y[31]);
    mq_qweight_free(&q);
}

Test(kquants, scheme_names) {
    static const char *const OK[] = {"q4_k",      "q5_k",        "q6_k",     "iq4_nl",
                                     "q4_k_imat", "iq4_nl_imat", "q6_k_gptq"};
    for (size_t i = 0; i < sizeof OK / sizeof OK[0]; i++) {
        mq_scheme_t s = scheme(OK[i]);
        cr_assert_str_eq(s.name, OK[i]);
        cr_assert_eq(s.imat, strstr(OK[i], "_imat") != NULL);
        cr_assert_eq(s.gptq, strstr(OK[i], "_gptq") != NULL);
        cr_assert_eq(mq_scheme_calibrated(&s), s.imat || s.gptq);
    }
    static const char *const BAD[] = {"q4_k_g64",       "q4_kx",          "int4_g64_imat",
                                      "nf4_g64_imat",   "q4_k_imat_imat", "fp16_imat",
                                      "q8_k",           "q4_k_imat_gptq", "q4_k_gptq_imat",
                                      "fp16_gptq"};
    for (size_t i = 0; i < sizeof BAD / sizeof BAD[0]; i++) {
        mq_error_t err = {0};
        cr_assert_neq(mq_scheme_parse(BAD[i], NULL, &err), MQ_OK, "%s accepted", BAD[i]);
        cr_assert(strstr(err.msg, "q4_k[_imat|_gptq]"), "%s: %s", BAD[i], err.msg);
    }
}

/* GPTQ's hook: on a block's stored scales, nearest(w) writes the code nearest to w at its place
 * only, returns the value the dequantizer then gives there, maps a value of the grid to itself,
 * and is never farther from w than the code round to nearest chose for the block's own weight. */
Test(kquants, the_nearest_code_on_a_block_s_scales) {
    static const char *const NAMES[] = {"q4_k", "q5_k", "q6_k", "iq4_nl", "q3_k", "q2_k"};
    for (size_t k = 0; k < 6; k++) {
        const mq_format_t *f = format(NAMES[k]);
        cr_assert_not_null(f->nearest, "%s", NAMES[k]);
        int nb = f->block;
        mq_scheme_t s = scheme(NAMES[k]);
        float *x = randn_sd(40 + k, (size_t)nb, 0.05f), *w = randn_sd(50 + k, (size_t)nb, 0.02f);
        uint8_t blk[256], copy[256];
        float y0[256], y1[256];
        mq_qrow_t src = {x, NULL, NULL, nb, nb, NULL};
        f->encode_row(&src, &s, blk);
        f->dequantize_row(blk, NULL, &s, nb, nb, y0);
        for (int j = 0; j < nb; j++) {
            float target = x[j] + w[j];
            memcpy(copy, blk, f->block_bytes);
            float v = f->nearest(copy, j, target);
            f->dequantize_row(copy, NULL, &s, nb, nb, y1);
            cr_assert(y1[j] == v, "%s weight %d: returned %g, stored %g", NAMES[k], j, (double)v,
                      (double)y1[j]);
            for (int i = 0; i < nb; i++)
                cr_assert(i == j || y1[i] == y0[i], "%s: weight %d changed", NAMES[k], i);
            cr_assert(fabsf(target - v) <= fabsf(target - y0[j]) * (1 + 1e-6f) + 1e-12f,
                      "%s weight %d: %g is farther from %g than %g", NAMES[k], j, (double)v,
                      (double)target, (double)y0[j]);
            memcpy(copy, blk, f->block_bytes);
            cr_assert(f->nearest(copy, j, y0[j]) == y0[j], "%s weight %d", NAMES[k], j);
            cr_assert(!memcmp(copy, blk, f->block_bytes), "%s weight %d: code changed", NAMES[k],
                      j);
        }
        free(x);
        free(w);
    }
}
