/* Tests of miniquant's quantization schemes: the name grammar, the families' grids (scales,
 * codes, ties, zero / tiny / huge blocks), round-trip error on Gaussian weights, bytes (the lab's
 * accounting and the stored bytes) and bits per weight, and QuantizedLinear against a naive
 * double-precision reference. The stored formats themselves are tested in test_format.c.
 *
 * Round-trip error is ||W - deq(q(W))||_F / ||W||_F on a seeded 256 x 512 matrix of N(0, 1). */
#include <criterion/criterion.h>
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "miniquant/quant.h"
#include "miniquant/rng.h"
#include "qhelpers.h"

#define ROWS 256
#define COLS 512

/* ---------------------------------------------------------------------------------------------
 * helpers */

static void quantize(mq_qweight_t *q, const char *name, const float *W, int rows, int cols) {
    mq_scheme_t s = scheme(name);
    mq_error_t err = {0};
    cr_assert_eq(mq_qweight_quantize(q, &s, W, rows, cols, &err), MQ_OK, "%s: %s", name, err.msg);
}

static const mq_family_t *family(const char *prefix) {
    for (int i = 0; MQ_FAMILIES[i]; i++)
        if (!strcmp(MQ_FAMILIES[i]->prefix, prefix)) return MQ_FAMILIES[i];
    cr_assert_fail("no family %s in the table", prefix);
    return NULL;
}

/* Where the scale of weight (r, c) lies in the layout mq_qweight_from_codes takes: one scale,
 * one per row, or row-major per group (quant.h), worked out here from the scheme alone. */
static size_t scale_index(const mq_qweight_t *q, int r, int c) {
    switch (q->scheme.gran) {
    case MQ_QG_TENSOR: return 0;
    case MQ_QG_CHANNEL: return (size_t)r;
    default: return (size_t)r * (size_t)(q->cols / q->scheme.group) + (size_t)(c / q->scheme.group);
    }
}

/* The codes (rows x cols) and scales (n_scales) a grid weight's bytes hold. */
static void codes_of(const mq_qweight_t *q, int8_t **codes, mq_fp16_t **scales) {
    *codes = malloc((size_t)q->rows * q->cols);
    *scales = malloc((q->n_scales ? q->n_scales : 1) * sizeof(mq_fp16_t));
    cr_assert(*codes && *scales);
    mq_error_t err = {0};
    cr_assert_eq(mq_qweight_to_codes(q, *codes, *scales, &err), MQ_OK, "%s: %s", q->scheme.name,
                 err.msg);
}

static float *dequantized(const mq_qweight_t *q) {
    float *D = malloc((size_t)q->rows * q->cols * sizeof(float));
    cr_assert(D);
    mq_qweight_dequantize(q, D);
    return D;
}

/* ||A - B||_F / ||A||_F over rows [r0, r1) */
static double rel_err_rows(const float *A, const float *B, int r0, int r1, int cols) {
    double num = 0.0, den = 0.0;
    for (size_t i = (size_t)r0 * cols; i < (size_t)r1 * cols; i++) {
        double d = (double)A[i] - B[i];
        num += d * d;
        den += (double)A[i] * A[i];
    }
    return sqrt(num / den);
}

static double roundtrip_err(const char *name, const float *W, int rows, int cols) {
    mq_qweight_t q;
    quantize(&q, name, W, rows, cols);
    float *D = dequantized(&q);
    double e = rel_err_rows(W, D, 0, rows, cols);
    free(D);
    mq_qweight_free(&q);
    return e;
}

/* ---------------------------------------------------------------------------------------------
 * scheme names */

Test(scheme, standard_schemes_parse_to_their_fields) {
    static const struct {
        const char *name;
        const char *family;
        int bits;
        mq_qgran_t gran;
        int group, gptq;
    } want[] = {
        {"fp32", "fp32", 32, MQ_QG_NONE, 0, 0},
        {"fp16", "fp16", 16, MQ_QG_NONE, 0, 0},
        {"int8_per_tensor", "int", 8, MQ_QG_TENSOR, 0, 0},
        {"int8_per_channel", "int", 8, MQ_QG_CHANNEL, 0, 0},
        {"int4_g64", "int", 4, MQ_QG_GROUP, 64, 0},
        {"int4_g128", "int", 4, MQ_QG_GROUP, 128, 0},
        {"int4_g64_gptq", "int", 4, MQ_QG_GROUP, 64, 1},
        {"int4_g128_gptq", "int", 4, MQ_QG_GROUP, 128, 1},
        {"nf4_g64", "nf4", 4, MQ_QG_GROUP, 64, 0},
    };
    size_t n = 0;
    while (MQ_STANDARD_SCHEMES[n])
        n++;
    cr_assert_eq(n, sizeof want / sizeof want[0]);
    for (size_t i = 0; i < n; i++) {
        cr_assert_str_eq(MQ_STANDARD_SCHEMES[i], want[i].name);
        mq_scheme_t s = scheme(want[i].name);
        cr_assert_str_eq(s.name, want[i].name);
        cr_assert_eq(s.family, family(want[i].family), "%s", want[i].name);
        cr_assert_eq(s.bits, want[i].bits, "%s", want[i].name);
        cr_assert_eq(s.gran, want[i].gran, "%s", want[i].name);
        cr_assert_eq(s.group, want[i].group, "%s", want[i].name);
        cr_assert_eq(s.gptq, want[i].gptq, "%s", want[i].name);
        cr_assert_eq(mq_scheme_check(&s, NULL), MQ_OK, "%s", want[i].name);
        cr_assert_eq(mq_scheme_has_grid(&s), i >= 2, "%s", want[i].name);
        cr_assert_eq(mq_scheme_is_identity(&s), i == 0, "%s", want[i].name);
    }
}

Test(scheme, general_grammar) {
    static const char *grans[] = {"per_tensor", "per_channel", "g32", "g100", "g4096"};
    const mq_family_t *fint = family("int");
    for (int b = 2; b <= 8; b++)
        for (int g = 0; g < 5; g++)
            for (int gptq = 0; gptq < 2; gptq++) {
                char name[64];
                snprintf(name, sizeof name, "int%d_%s%s", b, grans[g], gptq ? "_gptq" : "");
                mq_scheme_t s = scheme(name);
                cr_assert_str_eq(s.name, name);
                cr_assert_eq(s.family, fint);
                cr_assert_eq(s.bits, b);
                cr_assert_eq(s.gptq, gptq);
                cr_assert_eq(s.gran, g == 0 ? MQ_QG_TENSOR : g == 1 ? MQ_QG_CHANNEL : MQ_QG_GROUP);
                cr_assert_eq(s.group, g < 2 ? 0 : atoi(grans[g] + 1), "%s", name);
            }
    mq_scheme_t s = scheme("nf4_g32");
    cr_assert(s.family == family("nf4") && s.bits == 4 && s.gran == MQ_QG_GROUP && s.group == 32 &&
              !s.gptq);
    s = scheme("nf4_g128_gptq");
    cr_assert(s.family == family("nf4") && s.group == 128 && s.gptq);
    cr_assert_str_eq(s.name, "nf4_g128_gptq");
    s = scheme("nf3_g16_gptq");
    cr_assert(s.family == family("nf3") && s.bits == 3 && s.group == 16 && s.gptq);
    cr_assert_str_eq(s.name, "nf3_g16_gptq");
    s = scheme("int3_g2");
    cr_assert_eq(s.group, 2);
}

Test(scheme, malformed_names_are_rejected_with_the_grammar) {
    static const char *bad[] = {
        "int9_g64",
        "int4_g",
        "int4_g0",
        "nf4_per_channel",
        "nf4_per_tensor",
        "int4",
        "Q4_0",
        "",
        "int4_g64_gptq_gptq",
        "int1_g64",
        "int10_g64",
        "int4_g1",
        "int4_g064",
        "INT4_G64",
        "int4_per_row",
        "fp8",
        "int4_g64_",
        "int4_g-64",
        "int4_g64 ",
        "nf4",
        "int4_g9999999999",
        "fp32_gptq",
        "int8_per_tensorx",
        "gptq",
        "nf8_g64",
        "nf3_per_channel",
        "nf3_per_tensor",
        "nf3",
        "nf33_g64",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        mq_error_t err = {0};
        mq_scheme_t s;
        cr_assert_eq(mq_scheme_parse(bad[i], &s, &err), MQ_ERR_ARG, "\"%s\" was accepted", bad[i]);
        char quoted[80];
        snprintf(quoted, sizeof quoted, "\"%s\"", bad[i]);
        cr_assert(strstr(err.msg, quoted), "message does not name %s: %s", quoted, err.msg);
        cr_assert(strstr(err.msg, mq_scheme_grammar()), "no grammar in: %s", err.msg);
    }
    mq_error_t err = {0};
    cr_assert_eq(mq_scheme_parse(NULL, NULL, &err), MQ_ERR_ARG);
}

/* ---------------------------------------------------------------------------------------------
 * the grids */

/* The families' rows: a grid is all of scale / code / value / ratio / code range or none of
 * them, and only the NormalFloat families carry a codebook. */
Test(traits, table_and_codebook) {
    static const struct {
        const char *prefix;
        int grid, codebook;
    } want[] = {{"fp32", 0, 0}, {"fp16", 0, 0},   {"int", 1, 0},  {"nf4", 1, 1},
                {"nf3", 1, 1},  {"q2_k", 0, 0},   {"q3_k", 0, 0}, {"q4_k", 0, 0},
                {"q5_k", 0, 0}, {"q6_k", 0, 0},   {"iq4_nl", 0, 0}};
    int n = 0;
    while (MQ_FAMILIES[n])
        n++;
    cr_assert_eq(n, 11);
    for (int k = 0; k < n; k++) {
        const mq_family_t *f = MQ_FAMILIES[k];
        cr_assert_str_eq(f->prefix, want[k].prefix);
        cr_assert(f->grammar && strstr(mq_scheme_grammar(), f->grammar), "%s", f->prefix);
        cr_assert(f->formats && f->formats[0], "%s", f->prefix);
        cr_assert_eq(f->scale != NULL, want[k].grid, "%s", f->prefix);
        cr_assert_eq(f->code != NULL, want[k].grid, "%s", f->prefix);
        cr_assert_eq(f->value != NULL, want[k].grid, "%s", f->prefix);
        cr_assert_eq(f->ratio != NULL, want[k].grid, "%s", f->prefix);
        cr_assert_eq(f->code_min != NULL && f->code_max != NULL, want[k].grid, "%s", f->prefix);
        cr_assert_eq(f->grans != 0, want[k].grid, "%s", f->prefix);
        cr_assert_eq(f->codebook != NULL, want[k].codebook, "%s", f->prefix);
    }
    cr_assert_eq(family("nf4")->codebook, MQ_NF4_CODEBOOK);
    cr_assert_eq(family("nf4")->code_zero, 7);
    cr_assert_eq(family("int")->code_zero, 0);
    cr_assert_eq(MQ_NF4_CODEBOOK[0], -1.0f);
    cr_assert_eq(MQ_NF4_CODEBOOK[7], 0.0f);
    cr_assert_eq(MQ_NF4_CODEBOOK[15], 1.0f);
    for (int i = 0; i < 15; i++)
        cr_assert_lt(MQ_NF4_CODEBOOK[i], MQ_NF4_CODEBOOK[i + 1]);
    cr_assert_float_eq(MQ_NF4_CODEBOOK[1], -0.6961928f, 1e-7);
    cr_assert_float_eq(MQ_NF4_CODEBOOK[8], 0.0795803f, 1e-7);
}

Test(traits, int_scale_code_value_and_ties) {
    const mq_family_t *t = family("int");
    cr_assert_eq(t->scale(7.0f, 4), mq_fp32_to_fp16(1.0f));
    cr_assert_eq(t->scale(127.0f, 8), mq_fp32_to_fp16(1.0f));
    cr_assert_eq(t->scale(1.0f, 2), mq_fp32_to_fp16(1.0f)); /* qmax = 1 */
    /* rounded to FP16 before use: 0.1 / 7 is not a half */
    cr_assert_eq(t->scale(0.1f, 4), mq_fp32_to_fp16(0.1f / 7.0f));
    cr_assert_eq(t->scale(0.0f, 4), 0);
    cr_assert_eq(t->scale(1e-12f, 4), 0x0001); /* tiny block: smallest positive half */
    cr_assert_eq(t->scale(1e12f, 8), 0x7bff);  /* clamped to the largest finite half */
    cr_assert_eq(t->scale(INFINITY, 8), 0x7bff);
    cr_assert_eq(t->ratio(14.0f, 4), 2.0f); /* unrounded absmax / qmax */
    cr_assert_eq(t->ratio(254.0f, 8), 2.0f);
    /* ties go away from zero */
    cr_assert_eq(t->code(2.5f, 1.0f, 4), 3);
    cr_assert_eq(t->code(-2.5f, 1.0f, 4), -3);
    cr_assert_eq(t->code(0.5f, 1.0f, 4), 1);
    cr_assert_eq(t->code(-0.5f, 1.0f, 4), -1);
    cr_assert_eq(t->code(0.49f, 1.0f, 4), 0);
    /* clamped to [-qmax, qmax] */
    for (int b = 2; b <= 8; b++) {
        int qmax = (1 << (b - 1)) - 1;
        cr_assert_eq(t->code_max(b), qmax);
        cr_assert_eq(t->code_min(b), -qmax);
        cr_assert_eq(t->code(1000.0f, 1.0f, b), qmax);
        cr_assert_eq(t->code(-1000.0f, 1.0f, b), -qmax);
        cr_assert_eq(t->code(INFINITY, 1.0f, b), qmax);
    }
    /* no division by a zero scale, no NaN code */
    cr_assert_eq(t->code(1.0f, 0.0f, 4), 0);
    cr_assert_eq(t->code(NAN, 1.0f, 4), 0);
    cr_assert_eq(t->value(-7, 0.25f, 4), -1.75f);
    cr_assert_eq(t->value(0, 0.0f, 4), 0.0f);
}

Test(traits, nf4_scale_code_value_and_ties) {
    const mq_family_t *t = family("nf4");
    cr_assert_eq(t->scale(3.0f, 4), mq_fp32_to_fp16(3.0f));
    cr_assert_eq(t->scale(0.0f, 4), 0);
    cr_assert_eq(t->scale(1e-12f, 4), 0x0001);
    cr_assert_eq(t->scale(1e9f, 4), 0x7bff);
    cr_assert_eq(t->ratio(3.0f, 4), 3.0f);
    cr_assert_eq(t->code_min(4), 0);
    cr_assert_eq(t->code_max(4), 15);
    for (int i = 0; i < 16; i++) {
        cr_assert_eq(t->code(MQ_NF4_CODEBOOK[i], 1.0f, 4), i);
        cr_assert_eq(t->code(2.0f * MQ_NF4_CODEBOOK[i], 2.0f, 4), i);
        cr_assert_eq(t->value((int8_t)i, 2.0f, 4), 2.0f * MQ_NF4_CODEBOOK[i]);
    }
    /* an exact midpoint goes to the lower value; just above it, to the upper one */
    float mid = 0.5f * (MQ_NF4_CODEBOOK[7] + MQ_NF4_CODEBOOK[8]);
    cr_assert_eq(t->code(mid, 1.0f, 4), 7);
    cr_assert_eq(t->code(nextafterf(mid, 1.0f), 1.0f, 4), 8);
    cr_assert_eq(t->code(5.0f, 1.0f, 4), 15);
    cr_assert_eq(t->code(-5.0f, 1.0f, 4), 0);
    cr_assert_eq(t->code(1.0f, 0.0f, 4), 7); /* zero scale: the code of 0 */
    cr_assert_eq(t->code(NAN, 1.0f, 4), 7);
}

/* Every stored code is in range and is the nearest grid point to w / scale, every scale is the
 * FP16 of the block's absmax (over qmax), and every dequantized value is exactly value(code,
 * scale): the numbers that export writes. The codes and scales are read back from the
 * weight's bytes (mq_qweight_to_codes). */
static void check_codes(const char *name, const float *W, int rows, int cols) {
    mq_qweight_t q;
    quantize(&q, name, W, rows, cols);
    const mq_family_t *t = q.scheme.family;
    const float *cb = t->codebook;
    int bits = q.scheme.bits, ncb = 1 << bits;
    int qmax = cb ? 0 : (1 << (bits - 1)) - 1;
    float *D = dequantized(&q);
    float *row = malloc((size_t)cols * sizeof(float));
    cr_assert(row);
    int8_t *codes;
    mq_fp16_t *scales;
    codes_of(&q, &codes, &scales);

    /* block absmax recomputed here, independently of quant.c's block walk */
    float *amax = calloc(q.n_scales, sizeof(float));
    cr_assert(amax);
    for (int r = 0; r < rows; r++)
        for (int c = 0; c < cols; c++) {
            size_t si = scale_index(&q, r, c);
            cr_assert_lt(si, q.n_scales);
            float a = fabsf(W[(size_t)r * cols + c]);
            amax[si] = a > amax[si] ? a : amax[si];
        }
    for (size_t si = 0; si < q.n_scales; si++)
        cr_assert_eq(scales[si], mq_fp32_to_fp16(cb ? amax[si] : amax[si] / qmax), "%s: scale %zu",
                     name, si);

    for (int r = 0; r < rows; r++) {
        mq_qweight_dequantize_row(&q, r, row);
        for (int c = 0; c < cols; c++) {
            size_t i = (size_t)r * cols + c;
            int code = codes[i];
            float s = mq_fp16_to_fp32(scales[scale_index(&q, r, c)]);
            if (cb) {
                cr_assert(code >= 0 && code < ncb, "%s: code %d", name, code);
                float x = W[i] / s, d = fabsf(x - cb[code]);
                for (int j = 0; j < ncb; j++)
                    cr_assert_leq(d, fabsf(x - cb[j]), "%s: not nearest", name);
                cr_assert_eq(D[i], cb[code] * s);
            } else {
                cr_assert(code >= -qmax && code <= qmax, "%s: code %d", name, code);
                if (code > -qmax && code < qmax)
                    cr_assert_leq(fabsf(W[i] / s - code), 0.5f, "%s: not nearest", name);
                cr_assert_eq(D[i], (float)code * s, "%s", name);
            }
            cr_assert_eq(D[i], t->value((int8_t)code, s, bits));
            cr_assert_eq(row[c], D[i]);
        }
    }
    free(codes);
    free(scales);
    free(amax);
    free(row);
    free(D);
    mq_qweight_free(&q);
}

Test(quant, codes_in_range_nearest_and_values_exact) {
    int rows = 24, cols = 128;
    float *W = randn_sd(3, (size_t)rows * cols, 1.0f);
    char name[32];
    for (int b = 2; b <= 8; b++) {
        static const char *grans[] = {"per_tensor", "per_channel", "g32"};
        for (int g = 0; g < 3; g++) {
            snprintf(name, sizeof name, "int%d_%s", b, grans[g]);
            check_codes(name, W, rows, cols);
        }
    }
    check_codes("nf4_g32", W, rows, cols);
    check_codes("nf4_g128", W, rows, cols);
    check_codes("nf3_g32", W, rows, cols);
    check_codes("nf3_g64", W, rows, cols);
    check_codes("int4_g64_gptq", W, rows, cols); /* RTN start for GPTQ */
    /* rows of 40 inputs: int8 and int4 leave Q8_0 / Q4_0 for the packed format */
    check_codes("int8_per_channel", W, rows, 40);
    check_codes("int4_per_tensor", W, rows, 40);
    check_codes("int4_g20", W, rows, 40);
    free(W);
}

Test(quant, fp16_is_round_to_nearest_half) {
    float *W = randn_sd(4, 64 * 32, 1.0f);
    mq_qweight_t q;
    quantize(&q, "fp16", W, 64, 32);
    float *D = dequantized(&q);
    for (int i = 0; i < 64 * 32; i++)
        cr_assert_eq(D[i], mq_round_fp16(W[i]));
    free(D);
    mq_qweight_free(&q);
    quantize(&q, "fp32", W, 64, 32);
    D = dequantized(&q);
    cr_assert_eq(memcmp(D, W, 64 * 32 * sizeof(float)), 0);
    free(D);
    mq_qweight_free(&q);
    free(W);
}

/* ---------------------------------------------------------------------------------------------
 * round-trip error */

/* Bounds on N(0, 1) weights. A uniform grid of step s has RMS error s / sqrt(12), and the step
 * is absmax / qmax; the mean absmax of n Gaussians is 2.60 (n = 64), 2.83 (128), 3.25 (512), so
 * the expected errors are int4_g64 0.107, int4_g128 0.117, int4_per_channel 0.134,
 * int8_per_channel 0.0074, int3_g64 0.250; int8_per_tensor hangs on the single largest of
 * 131072 weights (4.4 to 5.5, so 0.010 to 0.013). fp16 keeps 11 significant bits: ~2.1e-4.
 * Measured with this seed in the comments (seeds 1..8 agree to within 2%, per-tensor to within
 * 30%); each bound is ~8% above the expectation, so a qmax one too small (int4: 6), a truncating
 * round (about twice the error) or a scale from the wrong block fails. */
static const struct {
    const char *name;
    double bound;
} ROUNDTRIP[] = {
    {"fp16", 2.5e-4},             /* measured 2.07e-4 */
    {"int8_per_tensor", 0.0145},  /* measured 0.0109 */
    {"int8_per_channel", 0.0081}, /* measured 0.00747 */
    {"int4_g64", 0.116},          /* measured 0.1079 */
    {"int4_g128", 0.127},         /* measured 0.1178 */
    {"int4_per_channel", 0.146},  /* measured 0.1354 */
    {"nf4_g64", 0.100},           /* measured 0.0920 */
    {"int3_g64", 0.272},          /* measured 0.2517; expected 0.250 */
    {"nf3_g64", 0.218},           /* measured 0.2017 */
};

Test(quant, roundtrip_error_bounds_and_ordering) {
    float *W = randn_sd(7, (size_t)ROWS * COLS, 1.0f);
    double e[sizeof ROUNDTRIP / sizeof ROUNDTRIP[0]];
    int verbose = !getenv("MQ_QUIET");
    for (size_t i = 0; i < sizeof ROUNDTRIP / sizeof ROUNDTRIP[0]; i++) {
        e[i] = roundtrip_err(ROUNDTRIP[i].name, W, ROWS, COLS);
        if (verbose) fprintf(stderr, "round-trip %-18s %.6f\n", ROUNDTRIP[i].name, e[i]);
        cr_assert_lt(e[i], ROUNDTRIP[i].bound, "%s: %g", ROUNDTRIP[i].name, e[i]);
        cr_assert_gt(e[i], 0.0);
    }
    cr_assert_eq(roundtrip_err("fp32", W, ROWS, COLS), 0.0);
    /* int8 < int4, and finer groups are better: g64 < g128 < per_channel */
    cr_assert_lt(e[2] * 10, e[3]);
    cr_assert_lt(e[3], e[4]);
    cr_assert_lt(e[4], e[5]);
    cr_assert_lt(e[2], e[1]);
    /* NF4 matches the normal distribution better than the uniform int4 grid at equal bytes, and
     * NF3 better than int3; a bit more is worth more than the grid's shape */
    cr_assert_lt(e[6], e[3]);
    cr_assert_lt(e[8], 0.85 * e[7]);
    cr_assert_lt(e[6], e[8]);
    free(W);
}

Test(quant, per_channel_beats_per_tensor_with_an_outlier_row) {
    float *W = randn_sd(8, (size_t)ROWS * COLS, 1.0f);
    int out_row = 17;
    for (int c = 0; c < COLS; c++)
        W[(size_t)out_row * COLS + c] *= 100.0f;
    mq_qweight_t qt, qc;
    quantize(&qt, "int8_per_tensor", W, ROWS, COLS);
    quantize(&qc, "int8_per_channel", W, ROWS, COLS);
    float *Dt = dequantized(&qt), *Dc = dequantized(&qc);
    /* on the ordinary rows the tensor scale is ~100x too coarse: most of their codes round to 0 */
    double et = rel_err_rows(W, Dt, out_row + 1, ROWS, COLS);
    double ec = rel_err_rows(W, Dc, out_row + 1, ROWS, COLS);
    cr_assert_gt(et, 30.0 * ec, "per-tensor %g vs per-channel %g", et, ec);
    cr_assert_lt(ec, 0.0075);
    /* over the whole matrix too, though the outlier row dominates the norm */
    cr_assert_gt(rel_err_rows(W, Dt, 0, ROWS, COLS), 5.0 * rel_err_rows(W, Dc, 0, ROWS, COLS));
    free(Dt);
    free(Dc);
    mq_qweight_free(&qt);
    mq_qweight_free(&qc);
    free(W);
}

/* ---------------------------------------------------------------------------------------------
 * zero, tiny and huge blocks; bad shapes */

Test(quant, zero_rows_and_groups_give_zeros_not_nan) {
    int rows = 8, cols = 64;
    float *W = randn_sd(9, (size_t)rows * cols, 1.0f);
    memset(W + 3 * cols, 0, cols * sizeof(float));    /* row 3 */
    memset(W + 5 * cols + 32, 0, 32 * sizeof(float)); /* second group of row 5 */
    static const char *names[] = {"int4_g32", "nf4_g32", "int8_per_channel", "int2_g32", "nf3_g32"};
    for (int k = 0; k < 5; k++) {
        mq_qweight_t q;
        quantize(&q, names[k], W, rows, cols);
        int8_t *codes;
        mq_fp16_t *sc;
        codes_of(&q, &codes, &sc);
        cr_assert_eq(sc[scale_index(&q, 3, 0)], 0, "%s", names[k]);
        if (q.scheme.gran == MQ_QG_GROUP)
            cr_assert_eq(sc[scale_index(&q, 5, 32)], 0, "%s", names[k]);
        /* the code of 0 in every zero block */
        for (int c = 0; c < cols; c++)
            cr_assert_eq(codes[3 * cols + c], q.scheme.family->code_zero, "%s", names[k]);
        free(codes);
        free(sc);
        float *D = dequantized(&q);
        for (int i = 0; i < rows * cols; i++)
            cr_assert(isfinite(D[i]), "%s: element %d", names[k], i);
        for (int c = 0; c < cols; c++)
            cr_assert_eq(D[3 * cols + c], 0.0f, "%s", names[k]);
        for (int c = 32; c < cols; c++)
            cr_assert_eq(D[5 * cols + c], 0.0f, "%s", names[k]);

        /* the zero row's output is exactly 0 without a bias */
        mq_qlinear_t ql;
        mq_error_t err = {0};
        cr_assert_eq(mq_qlinear_from_linear(&ql, W, NULL, rows, cols, &q.scheme, &err), MQ_OK);
        float x[2 * 64], y[2 * 8];
        for (int i = 0; i < 2 * cols; i++)
            x[i] = (float)(i % 7) - 3.0f;
        cr_assert_eq(mq_qlinear_forward_ref(&ql, y, x, 2, &err), MQ_OK);
        for (int i = 0; i < 2 * rows; i++)
            cr_assert(isfinite(y[i]));
        cr_assert_eq(y[3], 0.0f);
        cr_assert_eq(y[rows + 3], 0.0f);
        mq_qlinear_free(&ql);
        free(D);
        mq_qweight_free(&q);
    }

    /* an all-zero matrix, per tensor */
    float Z[4 * 16] = {0};
    mq_qweight_t q;
    quantize(&q, "int8_per_tensor", Z, 4, 16);
    int8_t *codes;
    mq_fp16_t *sc;
    codes_of(&q, &codes, &sc);
    cr_assert_eq(sc[0], 0);
    free(codes);
    free(sc);
    float *D = dequantized(&q);
    for (int i = 0; i < 64; i++)
        cr_assert_eq(D[i], 0.0f);
    free(D);
    mq_qweight_free(&q);
    free(W);
}

Test(quant, tiny_blocks_keep_a_positive_scale_and_finite_codes) {
    /* absmax / qmax far below the smallest half: the scale becomes 2^-24, not 0 */
    float W[2 * 32];
    for (int i = 0; i < 64; i++)
        W[i] = (i % 2 ? -1.0f : 1.0f) * 1e-9f * (float)(i + 1);
    W[40] = 1e-7f; /* second row: up to 1.7 steps of 2^-24 */
    static const char *names[] = {"int4_g32", "int8_per_channel", "nf4_g32", "nf3_g32"};
    for (int k = 0; k < 4; k++) {
        mq_qweight_t q;
        quantize(&q, names[k], W, 2, 32);
        float *D = dequantized(&q);
        int8_t *codes;
        mq_fp16_t *sc;
        codes_of(&q, &codes, &sc);
        for (size_t s = 0; s < q.n_scales; s++)
            cr_assert_gt(sc[s], 0, "%s", names[k]);
        free(codes);
        free(sc);
        for (int i = 0; i < 64; i++) {
            cr_assert(isfinite(D[i]));
            cr_assert_leq(fabsf(D[i] - W[i]), 1e-7f, "%s: %g vs %g", names[k], D[i], W[i]);
        }
        free(D);
        mq_qweight_free(&q);
    }
}

Test(quant, non_finite_and_oversized_weights_are_errors) {
    float W[4 * 32];
    for (int i = 0; i < 128; i++)
        W[i] = 0.01f * (float)(i - 64);
    mq_error_t err = {0};
    mq_qweight_t q;

    W[2 * 32 + 5] = NAN;
    mq_scheme_t s = scheme("int8_per_channel");
    cr_assert_eq(mq_qweight_quantize(&q, &s, W, 4, 32, &err), MQ_ERR_ARG);
    cr_assert(strstr(err.msg, "(2, 5)"), "%s", err.msg);
    cr_assert_null(q.data);
    cr_assert_null(q.scales);
    W[2 * 32 + 5] = INFINITY;
    s = scheme("fp32");
    cr_assert_eq(mq_qweight_quantize(&q, &s, W, 4, 32, &err), MQ_ERR_ARG);
    W[2 * 32 + 5] = 0.0f;

    /* int8: the scale 1e7 / 127 = 78740 is beyond FP16 */
    W[7] = 1e7f;
    s = scheme("int8_per_channel");
    cr_assert_eq(mq_qweight_quantize(&q, &s, W, 4, 32, &err), MQ_ERR_ARG);
    cr_assert(strstr(err.msg, "65504"), "%s", err.msg);
    /* int4: 1e5 / 7 fits */
    W[7] = 1e5f;
    s = scheme("int4_g32");
    cr_assert_eq(mq_qweight_quantize(&q, &s, W, 4, 32, &err), MQ_OK, "%s", err.msg);
    mq_qweight_free(&q);
    /* but not as a half or an NF4 scale */
    s = scheme("fp16");
    cr_assert_eq(mq_qweight_quantize(&q, &s, W, 4, 32, &err), MQ_ERR_ARG);
    s = scheme("nf4_g32");
    cr_assert_eq(mq_qweight_quantize(&q, &s, W, 4, 32, &err), MQ_ERR_ARG);
    cr_assert(strstr(err.msg, "65504"), "%s", err.msg);
    cr_assert_null(q.data);
    cr_assert_null(q.scales);
    mq_qweight_free(&q); /* harmless after a failure */
}

Test(quant, group_that_does_not_divide_the_row_is_an_error) {
    float *W = randn_sd(10, 10 * 100, 1.0f);
    mq_error_t err = {0};
    mq_qweight_t q;
    mq_scheme_t s = scheme("int4_g64");
    cr_assert_eq(mq_qweight_quantize(&q, &s, W, 10, 100, &err), MQ_ERR_ARG);
    cr_assert(strstr(err.msg, "group size 64 does not divide the row length 100"), "%s", err.msg);
    cr_assert_null(q.data);
    cr_assert_null(q.scales);
    cr_assert_null(mq_format_for(&s, 100, NULL));

    mq_qlinear_t ql;
    s = scheme("nf4_g64");
    cr_assert_eq(mq_qlinear_from_linear(&ql, W, NULL, 10, 100, &s, &err), MQ_ERR_ARG);
    cr_assert(strstr(err.msg, "64") && strstr(err.msg, "100"), "%s", err.msg);
    cr_assert_eq(mq_scheme_n_scales(&s, 10, 100), 0);

    /* a hand-built scheme is checked like a parsed one */
    s = scheme("int4_g50");
    s.bits = 9;
    cr_assert_eq(mq_qweight_alloc(&q, &s, 10, 100, &err), MQ_ERR_ARG);
    s = scheme("int4_g50");
    cr_assert_eq(mq_qweight_alloc(&q, &s, 10, 0, &err), MQ_ERR_ARG);
    cr_assert_eq(mq_qweight_alloc(&q, &s, 10, 100, &err), MQ_OK);
    cr_assert_eq(q.n_scales, 20);
    cr_assert_eq(mq_scheme_n_scales(&s, 10, 100), 20);
    cr_assert_eq(q.group, 50);
    /* groups of 50 do not fit Q4_0's 32-blocks: the packed format, 4 bits a weight */
    cr_assert_str_eq(q.format->name, "packed");
    cr_assert_eq(q.row_bytes, 50);
    cr_assert(q.data && q.scales);
    mq_qweight_free(&q);
    free(W);
}

/* ---------------------------------------------------------------------------------------------
 * bytes */

/* Two counts of a 64 x 256 weight: the lab's accounting (codes as int8 + 2 bytes a scale, which
 * the reports use) and the bytes actually held, its format's rows: Q8_0 34 and Q4_0 18 bytes per
 * 32 weights, packed codes ceil(256 * b / 8) bytes a row plus the FP16 scales beside them. */
Test(quant, bytes_and_bits_per_weight_are_exact) {
    int rows = 64, cols = 256;
    size_t numel = (size_t)rows * cols;
    float *W = randn_sd(11, numel, 1.0f);
    static const struct {
        const char *name;
        size_t bytes;
        double bpw;
        const char *format;
        size_t stored;
    } want[] = {
        {"fp32", 4 * 16384, 32.0, "f32", 4 * 16384},
        {"fp16", 2 * 16384, 16.0, "f16", 2 * 16384},
        {"int8_per_tensor", 16384 + 2, 8.0 + 16.0 / 16384, "q8_0", 64 * 8 * 34},
        {"int8_per_channel", 16384 + 2 * 64, 8.0625, "q8_0", 64 * 8 * 34},
        {"int8_g64", 16384 + 2 * 64 * 4, 8.25, "q8_0", 64 * 8 * 34},
        {"int4_g64", 16384 + 2 * 64 * 4, 4.25, "q4_0", 64 * 8 * 18},
        {"int4_g128", 16384 + 2 * 64 * 2, 4.125, "q4_0", 64 * 8 * 18},
        {"int4_g64_gptq", 16384 + 2 * 64 * 4, 4.25, "q4_0", 64 * 8 * 18},
        {"nf4_g64", 16384 + 2 * 64 * 4, 4.25, "packed", 64 * 128 + 2 * 64 * 4},
        {"int2_g32", 16384 + 2 * 64 * 8, 2.5, "packed", 64 * 64 + 2 * 64 * 8},
        {"int3_per_tensor", 16384 + 2, 3.0 + 16.0 / 16384, "packed", 64 * 96 + 2},
        {"int4_g16", 16384 + 2 * 64 * 16, 5.0, "packed", 64 * 128 + 2 * 64 * 16},
        {"nf3_g64", 16384 + 2 * 64 * 4, 3.25, "packed", 64 * 96 + 2 * 64 * 4},
    };
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        mq_qweight_t q;
        quantize(&q, want[i].name, W, rows, cols);
        cr_assert_eq(mq_qweight_bytes(&q), want[i].bytes, "%s: %zu", want[i].name,
                     mq_qweight_bytes(&q));
        cr_assert_eq(mq_qweight_bits_per_weight(&q), want[i].bpw, "%s: %g", want[i].name,
                     mq_qweight_bits_per_weight(&q));
        cr_assert_str_eq(q.format->name, want[i].format, "%s", want[i].name);
        cr_assert_eq(mq_qweight_stored_bytes(&q), want[i].stored, "%s: %zu stored", want[i].name,
                     mq_qweight_stored_bytes(&q));
        mq_qweight_free(&q);
    }
    /* int8 per channel: a quarter of fp32, plus one FP16 scale per row */
    mq_qweight_t q8, q32;
    quantize(&q8, "int8_per_channel", W, rows, cols);
    quantize(&q32, "fp32", W, rows, cols);
    cr_assert_eq(mq_qweight_bytes(&q8), mq_qweight_bytes(&q32) / 4 + 2 * (size_t)rows);
    mq_qweight_free(&q8);
    mq_qweight_free(&q32);
    free(W);
}

Test(qlinear, holds_its_stored_bytes_and_bias_only) {
    int out = 48, in = 128;
    float *W = randn_sd(12, (size_t)out * in, 1.0f), *b = randn_sd(13, out, 1.0f);
    /* row bytes worked out from the formats: Q8_0 4 x 34, Q4_0 4 x 18, packed 128 * b / 8 */
    static const struct {
        const char *name;
        const char *format;
        size_t row_bytes;
        int side_scales;
    } want[] = {
        {"int8_per_tensor", "q8_0", 136, 0},
        {"int8_per_channel", "q8_0", 136, 0},
        {"int4_g64", "q4_0", 72, 0},
        {"int4_g64_gptq", "q4_0", 72, 0},
        {"nf4_g64", "packed", 64, 1},
        {"int3_g32", "packed", 48, 1},
        {"nf3_g32", "packed", 48, 1},
        {"fp16", "f16", 256, 0},
        {"fp32", "f32", 512, 0},
    };
    for (size_t k = 0; k < sizeof want / sizeof want[0]; k++) {
        mq_qlinear_t ql;
        mq_error_t err = {0};
        mq_scheme_t s = scheme(want[k].name);
        cr_assert_eq(mq_qlinear_from_linear(&ql, W, b, out, in, &s, &err), MQ_OK, "%s", err.msg);
        cr_assert_str_eq(ql.w.format->name, want[k].format, "%s", want[k].name);
        cr_assert_eq(ql.w.row_bytes, want[k].row_bytes, "%s", want[k].name);
        cr_assert(ql.w.data && ql.bias);
        cr_assert_not(ql.w.borrowed);
        /* scales beside the codes only where the format's blocks do not carry them */
        cr_assert_eq(ql.w.scales != NULL, want[k].side_scales, "%s", want[k].name);
        cr_assert_neq(ql.bias, b); /* its own copy */
        cr_assert_eq(memcmp(ql.bias, b, (size_t)out * sizeof *b), 0);
        cr_assert_eq(ql.in, in);
        cr_assert_eq(ql.out, out);
        size_t held =
            (size_t)out * want[k].row_bytes + (want[k].side_scales ? 2 * ql.w.n_scales : 0);
        cr_assert_eq(mq_qweight_stored_bytes(&ql.w), held, "%s", want[k].name);
        /* the lab's accounting: codes as int8, 2 bytes a scale; FP16 / FP32 values as they are */
        size_t lab = s.bits >= 16 ? (size_t)out * in * (size_t)(s.bits / 8)
                                  : (size_t)out * in + 2 * ql.w.n_scales;
        cr_assert_eq(mq_qlinear_bytes(&ql), lab + 4 * (size_t)out, "%s", want[k].name);
        mq_qlinear_free(&ql);
        cr_assert_null(ql.w.data);
        cr_assert_null(ql.bias);
        mq_qlinear_free(&ql); /* harmless twice */
        cr_assert_eq(mq_qlinear_from_linear(&ql, W, NULL, out, in, &s, &err), MQ_OK);
        cr_assert_null(ql.bias);
        cr_assert_eq(mq_qlinear_bytes(&ql), lab);
        mq_qlinear_free(&ql);
    }
    free(W);
    free(b);
}

/* ---------------------------------------------------------------------------------------------
 * QuantizedLinear forward */

Test(qlinear, forward_matches_naive_reference) {
    int out = 40, in = 96;
    float *W = randn_sd(14, (size_t)out * in, 1.0f), *b = randn_sd(15, out, 1.0f), *x = randn_sd(16, 7 * (size_t)in, 1.0f);
    /* with how close each quantized weight must be to W (relative Frobenius error) */
    static const char *names[] = {"fp32",     "fp16",    "int8_per_channel", "int8_per_tensor",
                                  "int4_g32", "nf4_g32", "int4_g32_gptq",    "int3_g32",
                                  "nf3_g32"};
    static const double close[] = {1e-7, 1e-3, 0.01, 0.02, 0.15, 0.15, 0.15, 0.25, 0.25};
    enum { N_NAMES = sizeof names / sizeof names[0] };
    float *y = malloc((7 * (size_t)out + 16) * sizeof(float));
    cr_assert(y);
    for (int k = 0; k < N_NAMES; k++)
        for (int with_bias = 0; with_bias < 2; with_bias++) {
            mq_qlinear_t ql;
            mq_error_t err = {0};
            mq_scheme_t s = scheme(names[k]);
            cr_assert_eq(mq_qlinear_from_linear(&ql, W, with_bias ? b : NULL, out, in, &s, &err),
                         MQ_OK, "%s", err.msg);
            float *D = dequantized(&ql.w);
            static const int Ns[] = {1, 7};
            for (int t = 0; t < 2; t++) {
                int N = Ns[t];
                /* sentinels after the N x out output must survive */
                for (size_t i = 0; i < 7 * (size_t)out + 16; i++)
                    y[i] = -12345.0f;
                cr_assert_eq(mq_qlinear_forward_ref(&ql, y, x, N, &err), MQ_OK, "%s", err.msg);
                for (size_t i = (size_t)N * out; i < 7 * (size_t)out + 16; i++)
                    cr_assert_eq(y[i], -12345.0f, "%s: wrote past N x out", names[k]);
                for (int n = 0; n < N; n++)
                    for (int o = 0; o < out; o++) {
                        double ref = with_bias ? b[o] : 0.0, mag = fabs(ref);
                        for (int c = 0; c < in; c++) {
                            double p = (double)x[(size_t)n * in + c] * D[(size_t)o * in + c];
                            ref += p;
                            mag += fabs(p);
                        }
                        /* FP32 summation over 96 terms: a few ulp of the magnitude */
                        cr_assert_leq(fabs(y[(size_t)n * out + o] - ref), 1e-6 * mag + 1e-7,
                                      "%s N=%d (%d, %d): %g vs %g", names[k], N, n, o,
                                      y[(size_t)n * out + o], ref);
                    }
            }
            /* and the quantized weight is close to W: the forward used it, not something else */
            double e = rel_err_rows(W, D, 0, out, in);
            cr_assert_lt(e, close[k], "%s: %g", names[k], e);
            free(D);
            mq_qlinear_free(&ql);
        }
    mq_qlinear_t ql;
    mq_scheme_t s = scheme("int8_per_channel");
    cr_assert_eq(mq_qlinear_from_linear(&ql, W, b, out, in, &s, NULL), MQ_OK);
    cr_assert_eq(mq_qlinear_forward_ref(&ql, y, x, 0, NULL), MQ_OK);
    mq_qlinear_free(&ql);
    free(y);
    free(x);
    free(b);
    free(W);
}

/* ---------------------------------------------------------------------------------------------
 * determinism */

Test(quant, deterministic_across_runs_and_thread_counts) {
    float *W = randn_sd(17, (size_t)ROWS * COLS, 1.0f); /* large enough for the threaded loops */
    static const char *names[] = {"int8_per_tensor",  "int4_g64", "nf4_g64",
                                  "int8_per_channel", "nf3_g64",  "int3_per_channel"};
    int nth = omp_get_max_threads();
    for (int k = 0; k < 6; k++) {
        mq_qweight_t a, b, c;
        quantize(&a, names[k], W, ROWS, COLS);
        quantize(&b, names[k], W, ROWS, COLS);
        omp_set_num_threads(1);
        quantize(&c, names[k], W, ROWS, COLS);
        omp_set_num_threads(nth);
        size_t bytes = (size_t)ROWS * a.row_bytes;
        cr_assert_eq(a.n_scales, b.n_scales);
        cr_assert_eq(a.row_bytes, c.row_bytes);
        cr_assert_eq(memcmp(a.data, b.data, bytes), 0, "%s", names[k]);
        cr_assert_eq(memcmp(a.data, c.data, bytes), 0, "%s", names[k]);
        cr_assert_eq(a.scales != NULL, a.format->side_scales != 0, "%s", names[k]);
        if (a.scales) {
            cr_assert_eq(memcmp(a.scales, b.scales, a.n_scales * 2), 0, "%s", names[k]);
            cr_assert_eq(memcmp(a.scales, c.scales, a.n_scales * 2), 0, "%s", names[k]);
        }
        mq_qweight_free(&a);
        mq_qweight_free(&b);
        mq_qweight_free(&c);
    }
    free(W);
}
