/* miniquant: quantization schemes, their grids, quantized weights and QuantizedLinear.
 *
 * Conventions that every consumer of the codes (GPTQ, the GGUF exporter and reader, the fused
 * kernels) must reproduce, because miniquant evaluates exactly what it exports:
 *
 *  - INT, b bits: qmax = 2^(b-1) - 1. The scale is absmax / qmax rounded to FP16 FIRST, and the
 *    codes are computed against that rounded scale, so the stored pair (code, scale) is the whole
 *    truth: value = code * scale, a product that is exact in FP32 (7-bit code x 11-bit
 *    significand). code = clamp(round(x / scale), -qmax, qmax) where round() is C's roundf:
 *    halfway cases go AWAY from zero (2.5 -> 3, -2.5 -> -3), as ggml's Q8_0 / Q4_0 quantizers do.
 *    The clamp matters because the FP16 scale can round below absmax / qmax.
 *  - NF4: scale = absmax rounded to FP16; code = index of the codebook value nearest to
 *    x / scale; on an exact tie between two neighbours the LOWER one wins (the comparisons are
 *    strict, as in bitsandbytes' decision tree). value = NF4[code] * scale in FP32.
 *  - An all-zero block has scale 0, codes 0 (NF4: the index of 0.0) and values 0; no division
 *    is made by a zero scale anywhere.
 *  - A non-zero block so small that its FP16 scale would round to 0 (absmax / qmax below 2^-25)
 *    gets the smallest positive half, 2^-24, instead: its codes are then small, finite and still
 *    the nearest grid points, which beats flushing the block to zero.
 *  - Scales never leave the finite FP16 range: traits' scale() clamps to 65504. The quantizers
 *    do not rely on that clamp silently: mq_qweight_quantize rejects a weight whose block would
 *    need a larger scale (|w| > about 65504 * qmax), and rejects NaN and infinite weights, with
 *    a message naming the element.
 *
 * Scheme names: "nf4_per_channel" and "nf4_per_tensor" are rejected. NF4's codebook is built for
 * the normal distribution of a small block; one absmax for a whole row or tensor would put
 * almost every weight in the few codes near zero, and no ggml or bitsandbytes format stores it.
 * Names are accepted only in canonical form (no leading zeros, lower case), so a scheme has one
 * name in every report. */
#include "miniquant/quant.h"

#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "miniquant/layers.h"

#define FP16_MAX_FINITE ((mq_fp16_t)0x7bffu)   /* 65504 */
#define FP16_MIN_POSITIVE ((mq_fp16_t)0x0001u) /* 2^-24 */
#define FP16_INF ((mq_fp16_t)0x7c00u)
#define MAX_GROUP_DIGITS 9  /* keeps N below INT_MAX and the name within mq_scheme_t.name */
#define PAR_MIN_ELEMS 65536 /* below this, starting threads costs more than it saves */

/* ---------------------------------------------------------------------------------------------
 * scheme names */

const char *const MQ_STANDARD_SCHEMES[] = {
    "fp32",      "fp16",          "int8_per_tensor", "int8_per_channel", "int4_g64",
    "int4_g128", "int4_g64_gptq", "int4_g128_gptq",  "nf4_g64",          NULL,
};

const char *mq_scheme_grammar(void) {
    return "fp32, fp16, int{2..8}_{per_tensor|per_channel|g{N}}[_gptq], nf4_g{N}[_gptq] "
           "(N >= 2)";
}

static int parse_fail(mq_error_t *err, const char *name, const char *why) {
    return mq_error_set(err, MQ_ERR_ARG, "unknown quantization scheme \"%.100s\" (%s); valid: %s",
                        name, why, mq_scheme_grammar());
}

/* The canonical name; the longest, "int8_g999999999_gptq", fits mq_scheme_t.name. */
static void scheme_set_name(mq_scheme_t *s) {
    char gran[16];
    switch (s->gran) {
    case MQ_QG_TENSOR: snprintf(gran, sizeof gran, "per_tensor"); break;
    case MQ_QG_CHANNEL: snprintf(gran, sizeof gran, "per_channel"); break;
    default: snprintf(gran, sizeof gran, "g%d", s->group); break;
    }
    snprintf(s->name, sizeof s->name, "%s%c_%s%s", s->kind == MQ_QK_NF4 ? "nf" : "int",
             (char)('0' + s->bits), gran, s->gptq ? "_gptq" : "");
}

int mq_scheme_parse(const char *name, mq_scheme_t *out, mq_error_t *err) {
    if (!name) return parse_fail(err, "(null)", "no name given");
    mq_scheme_t s;
    memset(&s, 0, sizeof s);
    if (strcmp(name, "fp32") == 0 || strcmp(name, "fp16") == 0) {
        s.kind = name[2] == '3' ? MQ_QK_FP32 : MQ_QK_FP16;
        s.bits = s.kind == MQ_QK_FP32 ? 32 : 16;
        s.gran = MQ_QG_NONE;
        snprintf(s.name, sizeof s.name, "%s", name);
        if (out) *out = s;
        return MQ_OK;
    }

    const char *p = name;
    if (strncmp(p, "nf4_", 4) == 0) {
        s.kind = MQ_QK_NF4;
        s.bits = 4;
        p += 4;
    } else if (strncmp(p, "int", 3) == 0) {
        s.kind = MQ_QK_INT;
        p += 3;
        if (!(p[0] >= '2' && p[0] <= '8') || p[1] != '_')
            return parse_fail(err, name, "expected int{2..8}_ then a granularity, as in int4_g64");
        s.bits = p[0] - '0';
        p += 2;
    } else {
        return parse_fail(err, name, "not a known grid");
    }

    if (strncmp(p, "per_tensor", 10) == 0 || strncmp(p, "per_channel", 11) == 0) {
        if (s.kind == MQ_QK_NF4)
            return parse_fail(err, name, "nf4 takes one scale per group, nf4_g{N}");
        s.gran = p[4] == 't' ? MQ_QG_TENSOR : MQ_QG_CHANNEL;
        p += s.gran == MQ_QG_TENSOR ? 10 : 11;
    } else if (p[0] == 'g') {
        p++;
        int nd = 0;
        long long g = 0;
        while (p[nd] >= '0' && p[nd] <= '9' && nd <= MAX_GROUP_DIGITS)
            g = g * 10 + (p[nd++] - '0');
        if (nd == 0 || nd > MAX_GROUP_DIGITS || (p[0] == '0') || g < 2)
            return parse_fail(err, name, "the group size must be an integer >= 2, as in g64");
        s.gran = MQ_QG_GROUP;
        s.group = (int)g;
        p += nd;
    } else {
        return parse_fail(err, name, "the granularity must be per_tensor, per_channel or g{N}");
    }

    if (strcmp(p, "_gptq") == 0) {
        s.gptq = 1;
    } else if (*p != '\0') {
        return parse_fail(err, name, "unexpected text after the granularity");
    }
    scheme_set_name(&s);
    if (out) *out = s;
    return MQ_OK;
}

/* A hand-built mq_scheme_t is checked as strictly as a parsed one. */
static int scheme_check(const mq_scheme_t *s, mq_error_t *err) {
    if (!s) return mq_error_set(err, MQ_ERR_ARG, "no quantization scheme given");
    switch (s->kind) {
    case MQ_QK_FP32:
    case MQ_QK_FP16: return MQ_OK;
    case MQ_QK_INT:
        if (s->bits < 2 || s->bits > 8)
            return mq_error_set(err, MQ_ERR_ARG, "scheme %.32s: %d bits (integer grids take 2..8)",
                                s->name, s->bits);
        break;
    case MQ_QK_NF4:
        if (s->gran != MQ_QG_GROUP)
            return mq_error_set(err, MQ_ERR_ARG, "scheme %.32s: nf4 needs a group size", s->name);
        break;
    default: return mq_error_set(err, MQ_ERR_ARG, "scheme %.32s: unknown kind", s->name);
    }
    if (s->gran != MQ_QG_TENSOR && s->gran != MQ_QG_CHANNEL && s->gran != MQ_QG_GROUP)
        return mq_error_set(err, MQ_ERR_ARG, "scheme %.32s: no granularity", s->name);
    if (s->gran == MQ_QG_GROUP && s->group < 2)
        return mq_error_set(err, MQ_ERR_ARG, "scheme %.32s: group size %d (must be >= 2)", s->name,
                            s->group);
    return MQ_OK;
}

/* ---------------------------------------------------------------------------------------------
 * grids: the traits table */

/* QLoRA's NormalFloat-4 values (bitsandbytes' table), as FP32 constants so that the midpoints
 * below are constant expressions too. */
#define NF4_0 -1.0f
#define NF4_1 -0.6961928009986877f
#define NF4_2 -0.5250730514526367f
#define NF4_3 -0.39491748809814453f
#define NF4_4 -0.28444138169288635f
#define NF4_5 -0.18477343022823334f
#define NF4_6 -0.09105003625154495f
#define NF4_7 0.0f
#define NF4_8 0.07958029955625534f
#define NF4_9 0.16093020141124725f
#define NF4_10 0.24611230194568634f
#define NF4_11 0.33791524171829224f
#define NF4_12 0.44070982933044434f
#define NF4_13 0.5626170039176941f
#define NF4_14 0.7229568362236023f
#define NF4_15 1.0f

const float MQ_NF4_CODEBOOK[16] = {NF4_0, NF4_1, NF4_2,  NF4_3,  NF4_4,  NF4_5,  NF4_6,  NF4_7,
                                   NF4_8, NF4_9, NF4_10, NF4_11, NF4_12, NF4_13, NF4_14, NF4_15};
#define NF4_ZERO_CODE 7

static inline int int_qmax(int bits) {
    return (1 << (bits - 1)) - 1;
}

/* FP16 of a positive ratio, kept inside (0, 65504]; 0 only for a zero block. */
static inline mq_fp16_t scale_from_ratio(float absmax, float ratio) {
    if (!(absmax > 0.0f)) return 0;
    mq_fp16_t h = mq_fp32_to_fp16(ratio);
    if (h == 0) return FP16_MIN_POSITIVE;
    if (h >= FP16_INF) return FP16_MAX_FINITE; /* the ratio overflowed FP16, or absmax is inf */
    return h;
}

static mq_fp16_t int_scale(float absmax, int bits) {
    return scale_from_ratio(absmax, absmax / (float)int_qmax(bits));
}

static inline int8_t int_code_inline(float x, float scale, int qmax) {
    if (!(scale > 0.0f)) return 0;
    float q = roundf(x / scale);
    if (q != q) return 0;
    if (q > (float)qmax) q = (float)qmax;
    if (q < (float)-qmax) q = (float)-qmax;
    return (int8_t)q;
}

static int8_t int_code(float x, float scale, int bits) {
    return int_code_inline(x, scale, int_qmax(bits));
}

static float int_value(int8_t code, float scale, int bits) {
    (void)bits;
    return (float)code * scale;
}

static mq_fp16_t nf4_scale(float absmax, int bits) {
    (void)bits;
    return scale_from_ratio(absmax, absmax);
}

/* Midpoints between neighbouring codebook values: the code is how many of them lie strictly
 * below x / scale, so an exact midpoint goes to the lower value. */
#define NF4_MID(a, b) (0.5f * ((a) + (b)))
static const float nf4_mid[15] = {
    NF4_MID(NF4_0, NF4_1),   NF4_MID(NF4_1, NF4_2),   NF4_MID(NF4_2, NF4_3),
    NF4_MID(NF4_3, NF4_4),   NF4_MID(NF4_4, NF4_5),   NF4_MID(NF4_5, NF4_6),
    NF4_MID(NF4_6, NF4_7),   NF4_MID(NF4_7, NF4_8),   NF4_MID(NF4_8, NF4_9),
    NF4_MID(NF4_9, NF4_10),  NF4_MID(NF4_10, NF4_11), NF4_MID(NF4_11, NF4_12),
    NF4_MID(NF4_12, NF4_13), NF4_MID(NF4_13, NF4_14), NF4_MID(NF4_14, NF4_15),
};

static inline int8_t nf4_code_inline(float x, float scale) {
    if (!(scale > 0.0f)) return NF4_ZERO_CODE;
    float q = x / scale;
    if (q != q) return NF4_ZERO_CODE;
    int c = 0;
    for (int i = 0; i < 15; i++)
        c += q > nf4_mid[i];
    return (int8_t)c;
}

static int8_t nf4_code(float x, float scale, int bits) {
    (void)bits;
    return nf4_code_inline(x, scale);
}

static float nf4_value(int8_t code, float scale, int bits) {
    (void)bits;
    return MQ_NF4_CODEBOOK[code & 15] * scale;
}

/* fp32 and fp16 store the weights themselves: there is no scale or code to compute. */
static const mq_qkind_traits_t TRAITS[MQ_QK_COUNT] = {
    [MQ_QK_FP32] = {MQ_QK_FP32, "fp32", NULL, NULL, NULL},
    [MQ_QK_FP16] = {MQ_QK_FP16, "fp16", NULL, NULL, NULL},
    [MQ_QK_INT] = {MQ_QK_INT, "int", int_scale, int_code, int_value},
    [MQ_QK_NF4] = {MQ_QK_NF4, "nf4", nf4_scale, nf4_code, nf4_value},
};

const mq_qkind_traits_t *mq_qkind_traits(mq_qkind_t k) {
    if ((int)k < 0 || k >= MQ_QK_COUNT) return NULL;
    return &TRAITS[k];
}

/* ---------------------------------------------------------------------------------------------
 * quantized weights */

/* Columns per scale block within a row (the whole row for per-tensor and per-channel). */
static int block_cols(const mq_scheme_t *s, int cols) {
    return s->gran == MQ_QG_GROUP ? s->group : cols;
}

size_t mq_qweight_n_scales(const mq_scheme_t *s, int rows, int cols) {
    if (!s || rows <= 0 || cols <= 0) return 0;
    if (s->kind != MQ_QK_INT && s->kind != MQ_QK_NF4) return 0;
    switch (s->gran) {
    case MQ_QG_TENSOR: return 1;
    case MQ_QG_CHANNEL: return (size_t)rows;
    case MQ_QG_GROUP:
        if (s->group < 1 || cols % s->group != 0) return 0;
        return (size_t)rows * (size_t)(cols / s->group);
    default: return 0;
    }
}

size_t mq_qweight_scale_index(const mq_qweight_t *q, int r, int c) {
    switch (q->scheme.gran) {
    case MQ_QG_TENSOR: return 0;
    case MQ_QG_CHANNEL: return (size_t)r;
    case MQ_QG_GROUP:
        return (size_t)r * (size_t)(q->cols / q->scheme.group) + (size_t)(c / q->scheme.group);
    default: return 0;
    }
}

void mq_qweight_free(mq_qweight_t *q) {
    if (!q) return;
    free(q->codes);
    free(q->scales);
    free(q->half);
    free(q->full);
    q->codes = NULL;
    q->scales = NULL;
    q->half = NULL;
    q->full = NULL;
    q->n_scales = 0;
}

int mq_qweight_alloc(mq_qweight_t *q, const mq_scheme_t *s, int rows, int cols, mq_error_t *err) {
    if (!q) return mq_error_set(err, MQ_ERR_ARG, "no quantized weight to fill");
    memset(q, 0, sizeof *q);
    int rc = scheme_check(s, err);
    if (rc) return rc;
    if (rows <= 0 || cols <= 0)
        return mq_error_set(err, MQ_ERR_ARG, "scheme %.32s: invalid weight shape %d x %d", s->name,
                            rows, cols);
    if (s->gran == MQ_QG_GROUP && (s->kind == MQ_QK_INT || s->kind == MQ_QK_NF4) &&
        cols % s->group != 0)
        return mq_error_set(err, MQ_ERR_ARG,
                            "scheme %.32s: group size %d does not divide the row length %d",
                            s->name, s->group, cols);
    q->scheme = *s;
    q->rows = rows;
    q->cols = cols;
    size_t numel = (size_t)rows * (size_t)cols;
    int ok;
    switch (s->kind) {
    case MQ_QK_FP32: ok = (q->full = calloc(numel, sizeof *q->full)) != NULL; break;
    case MQ_QK_FP16: ok = (q->half = calloc(numel, sizeof *q->half)) != NULL; break;
    default:
        q->n_scales = mq_qweight_n_scales(s, rows, cols);
        q->codes = calloc(numel, sizeof *q->codes);
        q->scales = calloc(q->n_scales, sizeof *q->scales);
        ok = q->codes && q->scales;
        break;
    }
    if (!ok) {
        mq_qweight_free(q);
        return mq_error_set(err, MQ_ERR_NOMEM, "scheme %.32s: cannot allocate a %d x %d weight",
                            s->name, rows, cols);
    }
    return MQ_OK;
}

/* The largest |w| of a block, and whether the block holds a NaN or an infinity. */
static inline float block_absmax(const float *w, int n, int *bad) {
    float m = 0.0f;
    int b = 0;
    for (int i = 0; i < n; i++) {
        float a = fabsf(w[i]);
        b |= !(a <= FLT_MAX);
        m = a > m ? a : m;
    }
    *bad |= b;
    return m;
}

/* Rejects NaN / infinite weights and weights whose scale would leave the FP16 range, naming the
 * first offender, so that the parallel quantization below cannot fail. */
static int check_weights(const mq_scheme_t *s, const float *W, int rows, int cols,
                         float *absmax_out, mq_error_t *err) {
    size_t numel = (size_t)rows * (size_t)cols;
    float amax = 0.0f;
    int bad = 0;
#pragma omp parallel for schedule(static) reduction(max                                            \
                                                    : amax)                                        \
    reduction(|                                                                                    \
              : bad) if (numel >= PAR_MIN_ELEMS)
    for (int r = 0; r < rows; r++) {
        float m = block_absmax(W + (size_t)r * cols, cols, &bad);
        amax = m > amax ? m : amax;
    }
    if (bad) {
        for (size_t i = 0; i < numel; i++)
            if (!isfinite(W[i]))
                return mq_error_set(err, MQ_ERR_ARG,
                                    "scheme %.32s: weight (%zu, %zu) is %g, not a finite number",
                                    s->name, i / (size_t)cols, i % (size_t)cols, (double)W[i]);
    }
    /* fp16 rounding is monotonic, so the largest weight decides whether any scale overflows */
    float need = amax;
    if (s->kind == MQ_QK_INT) need = amax / (float)int_qmax(s->bits);
    if (s->kind != MQ_QK_FP32 && mq_fp32_to_fp16(need) == FP16_INF)
        return mq_error_set(
            err, MQ_ERR_ARG, "scheme %.32s: max|W| = %g needs %s %g, beyond FP16's 65504", s->name,
            (double)amax, s->kind == MQ_QK_FP16 ? "the value" : "a scale", (double)need);
    *absmax_out = amax;
    return MQ_OK;
}

/* Codes of one block against its stored scale; the scale is read back from FP16 so the codes
 * are those of the rounded scale. */
static inline void quantize_block(const mq_qweight_t *q, const float *w, int8_t *codes, int n,
                                  mq_fp16_t hscale) {
    float scale = mq_fp16_to_fp32(hscale);
    if (q->scheme.kind == MQ_QK_INT) {
        int qmax = int_qmax(q->scheme.bits);
        for (int i = 0; i < n; i++)
            codes[i] = int_code_inline(w[i], scale, qmax);
    } else {
        for (int i = 0; i < n; i++)
            codes[i] = nf4_code_inline(w[i], scale);
    }
}

int mq_qweight_quantize(mq_qweight_t *q, const mq_scheme_t *s, const float *W, int rows, int cols,
                        mq_error_t *err) {
    int rc = mq_qweight_alloc(q, s, rows, cols, err);
    if (rc) return rc;
    if (!W) {
        mq_qweight_free(q);
        return mq_error_set(err, MQ_ERR_ARG, "scheme %.32s: no weight given", s->name);
    }
    float amax = 0.0f;
    rc = check_weights(s, W, rows, cols, &amax, err);
    if (rc) {
        mq_qweight_free(q);
        return rc;
    }
    size_t numel = (size_t)rows * (size_t)cols;
    const mq_qkind_traits_t *tr = mq_qkind_traits(s->kind);

    if (s->kind == MQ_QK_FP32) {
        memcpy(q->full, W, numel * sizeof *W);
        return MQ_OK;
    }
    if (s->kind == MQ_QK_FP16) {
#pragma omp parallel for schedule(static) if (numel >= PAR_MIN_ELEMS)
        for (int r = 0; r < rows; r++)
            mq_fp32_to_fp16_row(W + (size_t)r * cols, q->half + (size_t)r * cols, (size_t)cols);
        return MQ_OK;
    }
    if (s->gran == MQ_QG_TENSOR) q->scales[0] = tr->scale(amax, s->bits);

    int bc = block_cols(s, cols), nb = cols / bc;
#pragma omp parallel for schedule(static) if (numel >= PAR_MIN_ELEMS)
    for (int r = 0; r < rows; r++) {
        const float *w = W + (size_t)r * cols;
        int8_t *codes = q->codes + (size_t)r * cols;
        for (int b = 0; b < nb; b++) {
            const float *wb = w + (size_t)b * bc;
            size_t si = mq_qweight_scale_index(q, r, b * bc);
            if (s->gran != MQ_QG_TENSOR) {
                int unused = 0;
                q->scales[si] = tr->scale(block_absmax(wb, bc, &unused), s->bits);
            }
            quantize_block(q, wb, codes + (size_t)b * bc, bc, q->scales[si]);
        }
    }
    return MQ_OK;
}

void mq_qweight_dequantize_row(const mq_qweight_t *q, int r, float *row) {
    int cols = q->cols;
    size_t off = (size_t)r * (size_t)cols;
    switch (q->scheme.kind) {
    case MQ_QK_FP32: memcpy(row, q->full + off, (size_t)cols * sizeof *row); return;
    case MQ_QK_FP16: mq_fp16_to_fp32_row(q->half + off, row, (size_t)cols); return;
    default: break;
    }
    int bc = block_cols(&q->scheme, cols), nb = cols / bc;
    const int8_t *codes = q->codes + off;
    for (int b = 0; b < nb; b++) {
        float scale = mq_fp16_to_fp32(q->scales[mq_qweight_scale_index(q, r, b * bc)]);
        const int8_t *cb = codes + (size_t)b * bc;
        float *ob = row + (size_t)b * bc;
        /* the same products as the traits' value(), written out so that they vectorise */
        if (q->scheme.kind == MQ_QK_INT) {
#pragma omp simd
            for (int i = 0; i < bc; i++)
                ob[i] = (float)cb[i] * scale;
        } else {
            float lut[16]; /* the 16 products, once per block instead of once per weight */
            for (int j = 0; j < 16; j++)
                lut[j] = MQ_NF4_CODEBOOK[j] * scale;
            for (int i = 0; i < bc; i++)
                ob[i] = lut[cb[i] & 15];
        }
    }
}

void mq_qweight_dequantize(const mq_qweight_t *q, float *W) {
    size_t numel = (size_t)q->rows * (size_t)q->cols;
#pragma omp parallel for schedule(static) if (numel >= PAR_MIN_ELEMS)
    for (int r = 0; r < q->rows; r++)
        mq_qweight_dequantize_row(q, r, W + (size_t)r * q->cols);
}

size_t mq_qweight_bytes(const mq_qweight_t *q) {
    size_t numel = (size_t)q->rows * (size_t)q->cols;
    switch (q->scheme.kind) {
    case MQ_QK_FP32: return numel * sizeof(float);
    case MQ_QK_FP16: return numel * sizeof(mq_fp16_t);
    default: return numel * sizeof(int8_t) + q->n_scales * sizeof(mq_fp16_t);
    }
}

double mq_qweight_bits_per_weight(const mq_qweight_t *q) {
    double numel = (double)q->rows * (double)q->cols;
    switch (q->scheme.kind) {
    case MQ_QK_FP32: return 32.0;
    case MQ_QK_FP16: return 16.0;
    default: {
        int bits = q->scheme.kind == MQ_QK_NF4 ? 4 : q->scheme.bits;
        return numel > 0 ? bits + 16.0 * (double)q->n_scales / numel : 0.0;
    }
    }
}

/* ---------------------------------------------------------------------------------------------
 * QuantizedLinear */

void mq_qlinear_free(mq_qlinear_t *ql) {
    if (!ql) return;
    mq_qweight_free(&ql->w);
    free(ql->bias);
    ql->bias = NULL;
}

int mq_qlinear_from_linear(mq_qlinear_t *ql, const float *W, const float *bias, int out, int in,
                           const mq_scheme_t *s, mq_error_t *err) {
    if (!ql) return mq_error_set(err, MQ_ERR_ARG, "no QuantizedLinear to fill");
    memset(ql, 0, sizeof *ql);
    int rc = mq_qweight_quantize(&ql->w, s, W, out, in, err);
    if (rc) return rc;
    ql->in = in;
    ql->out = out;
    if (bias) {
        ql->bias = malloc((size_t)out * sizeof *ql->bias);
        if (!ql->bias) {
            mq_qlinear_free(ql);
            return mq_error_set(err, MQ_ERR_NOMEM, "cannot allocate a bias of %d", out);
        }
        memcpy(ql->bias, bias, (size_t)out * sizeof *bias);
    }
    return MQ_OK;
}

int mq_qlinear_forward_ref(const mq_qlinear_t *ql, float *out, const float *inp, int N,
                           mq_error_t *err) {
    // out is (N, OC), inp is (N, C), the weight is (OC, C)
    if (N < 0) return mq_error_set(err, MQ_ERR_ARG, "QuantizedLinear: %d input rows", N);
    if (N == 0) return MQ_OK;
    int C = ql->in, OC = ql->out;
    /* fp32 stores the weight as is: nothing to dequantize */
    if (ql->w.scheme.kind == MQ_QK_FP32) {
        mq_matmul_forward(out, inp, ql->w.full, ql->bias, N, C, OC);
        return MQ_OK;
    }
    float *Wd = malloc((size_t)OC * (size_t)C * sizeof *Wd);
    if (!Wd)
        return mq_error_set(err, MQ_ERR_NOMEM, "QuantizedLinear: cannot allocate %d x %d floats",
                            OC, C);
    mq_qweight_dequantize(&ql->w, Wd);
    mq_matmul_forward(out, inp, Wd, ql->bias, N, C, OC);
    free(Wd);
    return MQ_OK;
}

size_t mq_qlinear_bytes(const mq_qlinear_t *ql) {
    return mq_qweight_bytes(&ql->w) + (ql->bias ? (size_t)ql->out * sizeof(float) : 0);
}
