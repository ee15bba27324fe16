/* miniquant: the format table (format.h): the scheme families with their grids, and the stored
 * formats with their bytes and kernels. This is the only file that tells formats apart.
 *
 * Conventions every format reproduces, because miniquant evaluates exactly what it exports:
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
 *  - Scales never leave the finite FP16 range: scale() clamps to 65504. The quantizers do not
 *    rely on that clamp silently: they reject a weight whose block would need a larger scale
 *    (max_abs), and NaN and infinite weights, with a message naming the element.
 *
 * Scheme names: "nf4_per_channel" and "nf4_per_tensor" are rejected. NF4's codebook is built for
 * the normal distribution of a small block; one absmax for a whole row or tensor would put
 * almost every weight in the few codes near zero, and no ggml or bitsandbytes format stores it.
 * Names are accepted only in canonical form (no leading zeros, lower case), so a scheme has one
 * name in every report.
 *
 * Stored formats (the GGUF contract is in export.h):
 *   f32, f16   the values, row-major.
 *   q8_0       ggml's block_q8_0: per 32 weights the FP16 scale d, then 32 int8 codes.
 *   q4_0       ggml's block_q4_0: d, then 16 bytes; weight j < 16 of the block in the low nibble
 *              of byte j, weight j + 16 in its high nibble; nibble = code + 8.
 *              Every 32-block carries the scale of the group, row or tensor it lies in.
 *   packed     every other grid: row r is ceil(cols * b / 8) bytes, weight c the unsigned b-bit
 *              field at bits [c * b, c * b + b) counted from the least significant bit of the
 *              row's first byte, the bits after the last field 0; field = code + 2^(b-1) for
 *              int grids (so field 0 is not a code), the codebook index for nf4. The scales are
 *              a separate FP16 tensor. */
#include "miniquant/format.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "blocks.h"
#include "kernels_isa.h"
#include "miniquant/gguf.h"

#define FP16_MAX_FINITE ((mq_fp16_t)0x7bffu)   /* 65504 */
#define FP16_MIN_POSITIVE ((mq_fp16_t)0x0001u) /* 2^-24 */
#define FP16_INF ((mq_fp16_t)0x7c00u)
#define MAX_GROUP_DIGITS 9 /* keeps N below INT_MAX and the name within mq_scheme_t.name */
#define QBLOCK 32          /* weights per Q8_0 / Q4_0 block */

/* ---------------------------------------------------------------------------------------------
 * grids */

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

static float int_ratio(float absmax, int bits) {
    return absmax / (float)int_qmax(bits);
}

static mq_fp16_t int_scale(float absmax, int bits) {
    return scale_from_ratio(absmax, int_ratio(absmax, bits));
}

static int8_t int_code(float x, float scale, int bits) {
    if (!(scale > 0.0f)) return 0;
    float q = roundf(x / scale);
    if (q != q) return 0;
    float qmax = (float)int_qmax(bits);
    if (q > qmax) q = qmax;
    if (q < -qmax) q = -qmax;
    return (int8_t)q;
}

static float int_value(int8_t code, float scale, int bits) {
    (void)bits;
    return (float)code * scale;
}

static int int_code_max(int bits) {
    return int_qmax(bits);
}

static int int_code_min(int bits) {
    return -int_qmax(bits);
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

static int8_t nf4_code(float x, float scale, int bits) {
    (void)bits;
    if (!(scale > 0.0f)) return NF4_ZERO_CODE;
    float q = x / scale;
    if (q != q) return NF4_ZERO_CODE;
    int c = 0;
    for (int i = 0; i < 15; i++)
        c += q > nf4_mid[i];
    return (int8_t)c;
}

static float nf4_value(int8_t code, float scale, int bits) {
    (void)bits;
    return MQ_NF4_CODEBOOK[code & 15] * scale;
}

static float nf4_ratio(float absmax, int bits) {
    (void)bits;
    return absmax;
}

static int nf4_code_max(int bits) {
    (void)bits;
    return 15;
}

static int nf4_code_min(int bits) {
    (void)bits;
    return 0;
}

/* NormalFloat-3, built as QLoRA builds NF4 (normal quantiles at offset 0.9677, 4 positive
 * values, 3 negative and an exact 0, scaled to [-1, 1]): 3 bits, one FP16 absmax per group. */
#define NF3_0 -1.0f
#define NF3_1 -0.47862916f
#define NF3_2 -0.21714182f
#define NF3_3 0.0f
#define NF3_4 0.16093017f
#define NF3_5 0.33791519f
#define NF3_6 0.56261697f
#define NF3_7 1.0f
static const float NF3_CODEBOOK[8] = {NF3_0, NF3_1, NF3_2, NF3_3, NF3_4, NF3_5, NF3_6, NF3_7};
static const float nf3_mid[7] = {
    NF4_MID(NF3_0, NF3_1), NF4_MID(NF3_1, NF3_2), NF4_MID(NF3_2, NF3_3), NF4_MID(NF3_3, NF3_4),
    NF4_MID(NF3_4, NF3_5), NF4_MID(NF3_5, NF3_6), NF4_MID(NF3_6, NF3_7)};

static int8_t nf3_code(float x, float scale, int bits) {
    (void)bits;
    if (!(scale > 0.0f)) return 3;
    float q = x / scale;
    if (q != q) return 3;
    int c = 0;
    for (int i = 0; i < 7; i++)
        c += q > nf3_mid[i];
    return (int8_t)c;
}

static float nf3_value(int8_t code, float scale, int bits) {
    (void)bits;
    return NF3_CODEBOOK[code & 7] * scale;
}

static int nf3_code_max(int bits) {
    (void)bits;
    return 7;
}

/* ---------------------------------------------------------------------------------------------
 * families */

#define GRAN(g) (1u << (g))

static const char *const FMT_F32[] = {"f32", NULL};
static const char *const FMT_F16[] = {"f16", NULL};
static const char *const FMT_INT[] = {"q8_0", "q4_0", "packed", NULL};
static const char *const FMT_NF[] = {"packed", NULL};

static const mq_family_t FAM_FP32 = {
    .prefix = "fp32", .grammar = "fp32", .min_bits = 32, .max_bits = 32, .formats = FMT_F32};
static const mq_family_t FAM_FP16 = {.prefix = "fp16",
                                     .grammar = "fp16",
                                     .min_bits = 16,
                                     .max_bits = 16,
                                     .embeddings_f16 = 1,
                                     .formats = FMT_F16};
static const mq_family_t FAM_INT = {
    .prefix = "int",
    .grammar = "int{2..8}_{per_tensor|per_channel|g{N}}[_gptq]",
    .min_bits = 2,
    .max_bits = 8,
    .grans = GRAN(MQ_QG_TENSOR) | GRAN(MQ_QG_CHANNEL) | GRAN(MQ_QG_GROUP),
    .embeddings_f16 = 1,
    .scale = int_scale,
    .code = int_code,
    .value = int_value,
    .ratio = int_ratio,
    .code_min = int_code_min,
    .code_max = int_code_max,
    .formats = FMT_INT,
};
static const mq_family_t FAM_NF4 = {
    .prefix = "nf4",
    .grammar = "nf4_g{N}[_gptq]",
    .min_bits = 4,
    .max_bits = 4,
    .grans = GRAN(MQ_QG_GROUP),
    .embeddings_f16 = 1,
    .scale = nf4_scale,
    .code = nf4_code,
    .value = nf4_value,
    .ratio = nf4_ratio,
    .code_zero = NF4_ZERO_CODE,
    .code_min = nf4_code_min,
    .code_max = nf4_code_max,
    .codebook = MQ_NF4_CODEBOOK,
    .formats = FMT_NF,
};
static const mq_family_t FAM_NF3 = {
    .prefix = "nf3",
    .grammar = "nf3_g{N}[_gptq]",
    .min_bits = 3,
    .max_bits = 3,
    .grans = GRAN(MQ_QG_GROUP),
    .embeddings_f16 = 1,
    .scale = nf4_scale, /* absmax, as NF4 */
    .code = nf3_code,
    .value = nf3_value,
    .ratio = nf4_ratio,
    .code_zero = 3,
    .code_min = nf4_code_min,
    .code_max = nf3_code_max,
    .codebook = NF3_CODEBOOK,
    .formats = FMT_NF,
};

/* ggml's block formats, written from the values: each searches its own scales (blocks.h), and
 * a row no block of it divides falls back as llama-quantize's does (then F16). */
static const char *const FMT_Q2_K[] = {"q2_k", "iq4_nl", "f16", NULL};
static const char *const FMT_Q3_K[] = {"q3_k", "iq4_nl", "f16", NULL};
static const char *const FMT_Q4_K[] = {"q4_k", "q5_0", "f16", NULL};
static const char *const FMT_Q5_K[] = {"q5_k", "q5_1", "f16", NULL};
static const char *const FMT_Q6_K[] = {"q6_k", "q8_0", "f16", NULL};
static const char *const FMT_IQ4_NL[] = {"iq4_nl", "f16", NULL};
#define BLOCK_FAMILY(VAR, PREFIX, BITS, FORMATS)                                                   \
    static const mq_family_t VAR = {.prefix = PREFIX,                                              \
                                    .grammar = PREFIX "[_imat|_gptq]",                             \
                                    .min_bits = BITS,                                              \
                                    .max_bits = BITS,                                              \
                                    .embeddings_f16 = 1,                                           \
                                    .takes_imat = 1,                                               \
                                    .formats = FORMATS}
BLOCK_FAMILY(FAM_Q2_K, "q2_k", 2, FMT_Q2_K);
BLOCK_FAMILY(FAM_Q3_K, "q3_k", 3, FMT_Q3_K);
BLOCK_FAMILY(FAM_Q4_K, "q4_k", 4, FMT_Q4_K);
BLOCK_FAMILY(FAM_Q5_K, "q5_k", 5, FMT_Q5_K);
BLOCK_FAMILY(FAM_Q6_K, "q6_k", 6, FMT_Q6_K);
BLOCK_FAMILY(FAM_IQ4_NL, "iq4_nl", 4, FMT_IQ4_NL);
#undef BLOCK_FAMILY

const mq_family_t *const MQ_FAMILIES[] = {&FAM_FP32, &FAM_FP16, &FAM_INT,    &FAM_NF4,
                                          &FAM_NF3,  &FAM_Q2_K, &FAM_Q3_K,   &FAM_Q4_K,
                                          &FAM_Q5_K, &FAM_Q6_K, &FAM_IQ4_NL, NULL};

/* ---------------------------------------------------------------------------------------------
 * scheme names */

const char *mq_scheme_grammar(void) {
    static char buf[256];
    if (!buf[0]) {
        size_t n = 0;
        for (int i = 0; MQ_FAMILIES[i]; i++)
            n += (size_t)snprintf(buf + n, sizeof buf - n, "%s%s", i ? ", " : "",
                                  MQ_FAMILIES[i]->grammar);
        snprintf(buf + n, sizeof buf - n, " (N >= 2)");
    }
    return buf;
}

static int parse_fail(mq_error_t *err, const char *name, const char *why) {
    return mq_error_set(err, MQ_ERR_ARG, "unknown quantization scheme \"%.100s\" (%s); valid: %s",
                        name, why, mq_scheme_grammar());
}

/* The canonical name; the longest, "int8_g999999999_gptq", fits mq_scheme_t.name. */
static void scheme_set_name(mq_scheme_t *s) {
    const mq_family_t *f = s->family;
    char bits[8] = "", gran[16] = "";
    if (f->min_bits != f->max_bits) snprintf(bits, sizeof bits, "%d", s->bits);
    switch (s->gran) {
    case MQ_QG_TENSOR: snprintf(gran, sizeof gran, "_per_tensor"); break;
    case MQ_QG_CHANNEL: snprintf(gran, sizeof gran, "_per_channel"); break;
    case MQ_QG_GROUP: snprintf(gran, sizeof gran, "_g%d", s->group); break;
    default: break;
    }
    /* never both (mq_scheme_check) */
    snprintf(s->name, sizeof s->name, "%s%s%s%s", f->prefix, bits, gran,
             s->gptq   ? "_gptq"
             : s->imat ? "_imat"
                       : "");
}

int mq_scheme_parse(const char *name, mq_scheme_t *out, mq_error_t *err) {
    if (!name) return parse_fail(err, "(null)", "no name given");
    mq_scheme_t s;
    memset(&s, 0, sizeof s);
    const char *p = NULL;
    for (int i = 0; MQ_FAMILIES[i] && !p; i++) {
        const mq_family_t *f = MQ_FAMILIES[i];
        size_t n = strlen(f->prefix);
        if (strncmp(name, f->prefix, n)) continue;
        s.family = f;
        p = name + n;
    }
    if (!p) return parse_fail(err, name, "not a known grid");
    const mq_family_t *f = s.family;
    if (f->min_bits != f->max_bits) {
        if (!(p[0] >= '0' + f->min_bits && p[0] <= '0' + f->max_bits) || p[1] != '_') {
            char why[96];
            snprintf(why, sizeof why, "expected %s{%d..%d}_ then a granularity, as in %s4_g64",
                     f->prefix, f->min_bits, f->max_bits, f->prefix);
            return parse_fail(err, name, why);
        }
        s.bits = p[0] - '0';
        p++;
    } else {
        s.bits = f->min_bits;
    }
    if (!f->grans) {
        if (f->takes_imat && !strcmp(p, "_imat"))
            s.imat = 1;
        else if (f->takes_imat && !strcmp(p, "_gptq"))
            s.gptq = 1;
        else if (*p)
            return parse_fail(err, name, "unexpected text after the name");
        scheme_set_name(&s);
        if (out) *out = s;
        return MQ_OK;
    }
    if (*p++ != '_') return parse_fail(err, name, "the granularity must follow an underscore");

    if (strncmp(p, "per_tensor", 10) == 0 || strncmp(p, "per_channel", 11) == 0) {
        s.gran = p[4] == 't' ? MQ_QG_TENSOR : MQ_QG_CHANNEL;
        if (!(f->grans & GRAN(s.gran))) {
            char why[64];
            snprintf(why, sizeof why, "%s takes one scale per group, %s_g{N}", f->prefix,
                     f->prefix);
            return parse_fail(err, name, why);
        }
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

int mq_scheme_check(const mq_scheme_t *s, mq_error_t *err) {
    if (!s) return mq_error_set(err, MQ_ERR_ARG, "no quantization scheme given");
    const mq_family_t *f = s->family;
    int known = 0;
    for (int i = 0; MQ_FAMILIES[i]; i++)
        known |= MQ_FAMILIES[i] == f;
    if (!known) return mq_error_set(err, MQ_ERR_ARG, "scheme %.32s: unknown family", s->name);
    if (s->bits < f->min_bits || s->bits > f->max_bits)
        return mq_error_set(err, MQ_ERR_ARG, "scheme %.32s: %d bits (%s takes %d..%d)", s->name,
                            s->bits, f->prefix, f->min_bits, f->max_bits);
    if (s->imat && !f->takes_imat)
        return mq_error_set(err, MQ_ERR_ARG, "scheme %.32s: %s takes no _imat", s->name, f->prefix);
    if (s->imat && s->gptq)
        return mq_error_set(err, MQ_ERR_ARG, "scheme %.32s: _imat or _gptq, not both", s->name);
    if (!f->grans)
        return s->gran == MQ_QG_NONE && (!s->gptq || f->takes_imat)
                   ? MQ_OK
                   : mq_error_set(err, MQ_ERR_ARG, "scheme %.32s: %s takes no granularity", s->name,
                                  f->prefix);
    if (s->gran == MQ_QG_NONE || !(f->grans & GRAN(s->gran)))
        return mq_error_set(err, MQ_ERR_ARG, "scheme %.32s: no granularity %s takes", s->name,
                            f->prefix);
    if (s->gran == MQ_QG_GROUP && s->group < 2)
        return mq_error_set(err, MQ_ERR_ARG, "scheme %.32s: group size %d (must be >= 2)", s->name,
                            s->group);
    return MQ_OK;
}

int mq_scheme_calibrated(const mq_scheme_t *s) {
    return s && (s->gptq || s->imat);
}

int mq_scheme_has_grid(const mq_scheme_t *s) {
    return s && s->family && s->family->code != NULL;
}

int mq_scheme_is_identity(const mq_scheme_t *s) {
    return s && s->family == &FAM_FP32;
}

int mq_scheme_group(const mq_scheme_t *s, int cols) {
    return s->gran == MQ_QG_GROUP ? s->group : cols;
}

size_t mq_scheme_n_scales(const mq_scheme_t *s, int rows, int cols) {
    if (!s || rows <= 0 || cols <= 0 || !mq_scheme_has_grid(s)) return 0;
    switch (s->gran) {
    case MQ_QG_TENSOR: return 1;
    case MQ_QG_CHANNEL: return (size_t)rows;
    case MQ_QG_GROUP:
        if (s->group < 1 || cols % s->group != 0) return 0;
        return (size_t)rows * (size_t)(cols / s->group);
    default: return 0;
    }
}

/* ---------------------------------------------------------------------------------------------
 * formats: little-endian halves */

static inline mq_fp16_t load_half(const uint8_t *p) {
    return (mq_fp16_t)(p[0] | (p[1] << 8));
}

static inline void store_half(uint8_t *p, mq_fp16_t h) {
    p[0] = (uint8_t)(h & 0xff);
    p[1] = (uint8_t)(h >> 8);
}

/* Scales miniquant writes are +0 or positive and finite. */
static int scale_ok(mq_fp16_t h) {
    return (h & 0x8000u) == 0 && (h & 0x7c00u) != 0x7c00u;
}

static int fault(mq_row_fault_t *f, int col, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int fault(mq_row_fault_t *f, int col, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    f->col = col;
    vsnprintf(f->what, sizeof f->what, fmt, ap);
    va_end(ap);
    return -1;
}

static int fault_scale(mq_row_fault_t *f, int col, mq_fp16_t h) {
    return fault(f, col, ", column %d: scale 0x%04x (%g) is negative or not finite", col, h,
                 (double)mq_fp16_to_fp32(h));
}

static int64_t ne0_cols(const mq_scheme_t *s, int cols) {
    (void)s;
    return cols;
}

/* -- f32 and f16: the values themselves -- */

static int fits_f32(const mq_scheme_t *s, int cols) {
    (void)cols;
    return s->family == &FAM_FP32;
}
/* fp16, and the last fallback of the block families (a row no block of theirs divides) */
static int fits_f16(const mq_scheme_t *s, int cols) {
    (void)cols;
    return s->family == &FAM_FP16 || (s->family->takes_imat && !mq_scheme_has_grid(s));
}
static size_t row_bytes_f32(const mq_scheme_t *s, int cols) {
    (void)s;
    return (size_t)cols * sizeof(float);
}
static size_t row_bytes_f16(const mq_scheme_t *s, int cols) {
    (void)s;
    return (size_t)cols * sizeof(mq_fp16_t);
}
static void encode_f32(const mq_qrow_t *src, const mq_scheme_t *s, uint8_t *dst) {
    (void)s;
    memcpy(dst, src->x, (size_t)src->cols * sizeof(float));
}
static void encode_f16(const mq_qrow_t *src, const mq_scheme_t *s, uint8_t *dst) {
    (void)s;
    mq_fp32_to_fp16_row(src->x, (mq_fp16_t *)dst, (size_t)src->cols);
}
static void dequantize_f32(const uint8_t *src, const mq_fp16_t *scales, const mq_scheme_t *s,
                           int cols, int group, float *y) {
    (void)scales, (void)s, (void)group;
    memcpy(y, src, (size_t)cols * sizeof(float));
}
static void dequantize_f16(const uint8_t *src, const mq_fp16_t *scales, const mq_scheme_t *s,
                           int cols, int group, float *y) {
    (void)scales, (void)s, (void)group;
    mq_fp16_to_fp32_row((const mq_fp16_t *)src, y, (size_t)cols);
}
static void values_f32(const uint8_t *src, const mq_scheme_t *s, int cols, float *v) {
    dequantize_f32(src, NULL, s, cols, cols, v);
}
static void values_f16(const uint8_t *src, const mq_scheme_t *s, int cols, float *v) {
    dequantize_f16(src, NULL, s, cols, cols, v);
}
static float scale_one(const uint8_t *src, const mq_fp16_t *scales, int group, int b) {
    (void)src, (void)scales, (void)group, (void)b;
    return 1.0f;
}

/* -- q8_0 and q4_0: each 32-block carries the scale of its group, row or tensor -- */

/* A 32-block never straddles two scale blocks. */
static int blocks_fit(const mq_scheme_t *s, int cols) {
    return cols % QBLOCK == 0 && (s->gran != MQ_QG_GROUP || s->group % QBLOCK == 0);
}
static int fits_q8_0(const mq_scheme_t *s, int cols) {
    if (s->family == &FAM_Q6_K) return cols % QBLOCK == 0; /* Q6_K's fallback, from the values */
    return s->family == &FAM_INT && s->bits == 8 && blocks_fit(s, cols);
}
static int fits_q4_0(const mq_scheme_t *s, int cols) {
    return s->family == &FAM_INT && s->bits == 4 && blocks_fit(s, cols);
}
static size_t row_bytes_q8_0(const mq_scheme_t *s, int cols) {
    (void)s;
    return (size_t)(cols / QBLOCK) * MQ_Q8_0_BYTES;
}
static size_t row_bytes_q4_0(const mq_scheme_t *s, int cols) {
    (void)s;
    return (size_t)(cols / QBLOCK) * MQ_Q4_0_BYTES;
}

static void encode_q8_0(const mq_qrow_t *src, const mq_scheme_t *s, uint8_t *dst) {
    (void)s;
    if (!src->codes) { /* from the values, as ggml writes them */
        mq_blocks_quantize_q8_0(src->x, NULL, src->cols, dst);
        return;
    }
    for (int b = 0; b < src->cols / QBLOCK; b++) {
        uint8_t *blk = dst + (size_t)b * MQ_Q8_0_BYTES;
        store_half(blk, src->scales[b * QBLOCK / src->group]);
        memcpy(blk + 2, src->codes + b * QBLOCK, QBLOCK);
    }
}

static void encode_q4_0(const mq_qrow_t *src, const mq_scheme_t *s, uint8_t *dst) {
    (void)s;
    enum { H = QBLOCK / 2 };
    for (int b = 0; b < src->cols / QBLOCK; b++) {
        uint8_t *blk = dst + (size_t)b * MQ_Q4_0_BYTES;
        const int8_t *c = src->codes + b * QBLOCK;
        store_half(blk, src->scales[b * QBLOCK / src->group]);
        for (int j = 0; j < H; j++)
            blk[2 + j] = (uint8_t)(((c[j] + 8) & 0x0f) | (((c[j + H] + 8) & 0x0f) << 4));
    }
}

static const char *gran_word(const mq_scheme_t *s) {
    switch (s->gran) {
    case MQ_QG_TENSOR: return "tensor";
    case MQ_QG_CHANNEL: return "row";
    default: return "group";
    }
}

/* The 32 codes and the scale of block b of a q8_0 / q4_0 row. */
static mq_fp16_t block_codes(const uint8_t *src, int q8, int b, int8_t *c) {
    if (q8) {
        const uint8_t *blk = src + (size_t)b * MQ_Q8_0_BYTES;
        memcpy(c, blk + 2, QBLOCK);
        return load_half(blk);
    }
    const uint8_t *blk = src + (size_t)b * MQ_Q4_0_BYTES;
    for (int j = 0; j < QBLOCK / 2; j++) {
        c[j] = (int8_t)((blk[2 + j] & 0x0f) - 8);
        c[j + QBLOCK / 2] = (int8_t)((blk[2 + j] >> 4) - 8);
    }
    return load_half(blk);
}

/* scales_in, when given, holds the scale every block must carry (per-tensor rows after the
 * first): blocks are read row by row, so a later block repeats what the first one recorded. */
static int decode_blocks(const uint8_t *src, const mq_fp16_t *scales_in, const mq_scheme_t *s,
                         int cols, int group, int8_t *codes, mq_fp16_t *scales, mq_row_fault_t *f,
                         int q8) {
    int qmax = int_qmax(s->bits);
    for (int b = 0; b < cols / QBLOCK; b++) {
        int8_t *c = codes + b * QBLOCK;
        mq_fp16_t d = block_codes(src, q8, b, c);
        if (!scale_ok(d)) return fault_scale(f, b * QBLOCK, d);
        for (int j = 0; j < QBLOCK; j++)
            if (c[j] < -qmax || c[j] > qmax)
                return fault(f, b * QBLOCK + j,
                             ", column %d: code %d is outside [-%d, %d], the grid of %s",
                             b * QBLOCK + j, c[j], qmax, qmax, s->name);
        int k = b * QBLOCK / group;
        if (!scales_in && b * QBLOCK % group == 0) scales[k] = d;
        mq_fp16_t want = scales_in ? scales_in[k] : scales[k];
        if (d != want)
            return fault(f, b * QBLOCK,
                         ", block %d has scale 0x%04x but its %s's first block has 0x%04x: the "
                         "blocks disagree with scheme %s",
                         b, d, gran_word(s), want, s->name);
        scales[k] = d;
    }
    return 0;
}
static int decode_q8_0(const uint8_t *src, const mq_fp16_t *scales_in, const mq_scheme_t *s,
                       int cols, int group, int8_t *codes, mq_fp16_t *scales, mq_row_fault_t *f) {
    return decode_blocks(src, scales_in, s, cols, group, codes, scales, f, 1);
}
static int decode_q4_0(const uint8_t *src, const mq_fp16_t *scales_in, const mq_scheme_t *s,
                       int cols, int group, int8_t *codes, mq_fp16_t *scales, mq_row_fault_t *f) {
    return decode_blocks(src, scales_in, s, cols, group, codes, scales, f, 0);
}

/* As ggml's dequantize_row_q8_0 / _q4_0: code * d per weight. */
static void dequantize_q8_0(const uint8_t *src, const mq_fp16_t *scales, const mq_scheme_t *s,
                            int cols, int group, float *y) {
    (void)scales, (void)s, (void)group;
    for (int b = 0; b < cols / QBLOCK; b++) {
        const uint8_t *blk = src + (size_t)b * MQ_Q8_0_BYTES;
        float d = mq_fp16_to_fp32(load_half(blk));
        for (int j = 0; j < QBLOCK; j++)
            y[b * QBLOCK + j] = (float)(int8_t)blk[2 + j] * d;
    }
}
static void dequantize_q4_0(const uint8_t *src, const mq_fp16_t *scales, const mq_scheme_t *s,
                            int cols, int group, float *y) {
    (void)scales, (void)s, (void)group;
    enum { H = QBLOCK / 2 };
    for (int b = 0; b < cols / QBLOCK; b++) {
        const uint8_t *blk = src + (size_t)b * MQ_Q4_0_BYTES;
        float d = mq_fp16_to_fp32(load_half(blk));
        for (int j = 0; j < H; j++) {
            y[b * QBLOCK + j] = (float)((blk[2 + j] & 0x0f) - 8) * d;
            y[b * QBLOCK + j + H] = (float)((blk[2 + j] >> 4) - 8) * d;
        }
    }
}
static void values_q8_0(const uint8_t *src, const mq_scheme_t *s, int cols, float *v) {
    (void)s;
    for (int b = 0; b < cols / QBLOCK; b++)
        for (int j = 0; j < QBLOCK; j++)
            v[b * QBLOCK + j] = (float)(int8_t)src[(size_t)b * MQ_Q8_0_BYTES + 2 + j];
}
static void values_q4_0(const uint8_t *src, const mq_scheme_t *s, int cols, float *v) {
    (void)s;
    int8_t c[QBLOCK];
    for (int b = 0; b < cols / QBLOCK; b++) {
        block_codes(src, 0, b, c);
        for (int j = 0; j < QBLOCK; j++)
            v[b * QBLOCK + j] = (float)c[j];
    }
}
/* The scale of scale block b: the one its first 32-block carries. */
static float scale_q8_0(const uint8_t *src, const mq_fp16_t *scales, int group, int b) {
    (void)scales;
    return mq_fp16_to_fp32(load_half(src + (size_t)(b * group / QBLOCK) * MQ_Q8_0_BYTES));
}
static float scale_q4_0(const uint8_t *src, const mq_fp16_t *scales, int group, int b) {
    (void)scales;
    return mq_fp16_to_fp32(load_half(src + (size_t)(b * group / QBLOCK) * MQ_Q4_0_BYTES));
}

/* -- packed codes, with the scales in a tensor of their own -- */

static int fits_packed(const mq_scheme_t *s, int cols) {
    (void)cols;
    return mq_scheme_has_grid(s);
}
/* int codes are offset to be unsigned, as Q4_0's nibbles are; codebook indices already are */
static int field_offset(const mq_scheme_t *s) {
    return s->family->codebook ? 0 : 1 << (s->bits - 1);
}
static size_t row_bytes_packed(const mq_scheme_t *s, int cols) {
    return ((size_t)cols * (size_t)s->bits + 7) / 8;
}
static int64_t ne0_packed(const mq_scheme_t *s, int cols) {
    return (int64_t)row_bytes_packed(s, cols);
}

/* Fields go into a 16-bit window so that one that straddles a byte boundary is two stores. */
static void encode_packed(const mq_qrow_t *src, const mq_scheme_t *s, uint8_t *dst) {
    int bits = s->bits, off = field_offset(s);
    memset(dst, 0, row_bytes_packed(s, src->cols));
    unsigned mask = (1u << bits) - 1;
    for (int i = 0; i < src->cols; i++) {
        size_t bit = (size_t)i * (size_t)bits;
        unsigned v = ((unsigned)(src->codes[i] + off) & mask) << (bit % 8);
        dst[bit / 8] |= (uint8_t)(v & 0xff);
        if ((bit % 8) + (size_t)bits > 8) dst[bit / 8 + 1] |= (uint8_t)(v >> 8);
    }
}

static inline unsigned packed_field(const uint8_t *src, int bits, int i) {
    size_t bit = (size_t)i * (size_t)bits;
    unsigned v = src[bit / 8];
    if ((bit % 8) + (size_t)bits > 8) v |= (unsigned)src[bit / 8 + 1] << 8;
    return (v >> (bit % 8)) & ((1u << bits) - 1);
}

static int decode_packed(const uint8_t *src, const mq_fp16_t *scales_in, const mq_scheme_t *s,
                         int cols, int group, int8_t *codes, mq_fp16_t *scales, mq_row_fault_t *f) {
    int bits = s->bits, off = field_offset(s), is_int = !s->family->codebook;
    size_t used = (size_t)cols * (size_t)bits, nbytes = row_bytes_packed(s, cols);
    if (used % 8 && (src[nbytes - 1] >> (used % 8)) != 0)
        return fault(f, cols, ": the padding bits after the last code are not 0");
    for (int c = 0; c < cols; c++) {
        unsigned v = packed_field(src, bits, c);
        if (is_int && v == 0)
            return fault(f, c,
                         ", column %d: field 0 is not a code of %s (codes are stored as "
                         "code + %d)",
                         c, s->name, off);
        codes[c] = (int8_t)((int)v - off);
    }
    for (int k = 0; k < cols / group; k++) {
        if (!scale_ok(scales_in[k])) return fault_scale(f, k * group, scales_in[k]);
        scales[k] = scales_in[k];
    }
    return 0;
}

static void values_packed(const uint8_t *src, const mq_scheme_t *s, int cols, float *v) {
    int bits = s->bits, off = field_offset(s);
    const float *cb = s->family->codebook;
    for (int c = 0; c < cols; c++) {
        unsigned u = packed_field(src, bits, c);
        v[c] = cb ? cb[u] : (float)((int)u - off);
    }
}

static void dequantize_packed(const uint8_t *src, const mq_fp16_t *scales, const mq_scheme_t *s,
                              int cols, int group, float *y) {
    int bits = s->bits, off = field_offset(s);
    const float *cb = s->family->codebook;
    for (int b = 0; b < cols / group; b++) {
        float d = mq_fp16_to_fp32(scales[b]), lut[256];
        if (cb) /* the products once per block, not per weight */
            for (int j = 0; j < 1 << bits; j++)
                lut[j] = cb[j] * d;
        for (int c = b * group; c < (b + 1) * group; c++) {
            unsigned u = packed_field(src, bits, c);
            y[c] = cb ? lut[u] : (float)((int)u - off) * d;
        }
    }
}

static float scale_packed(const uint8_t *src, const mq_fp16_t *scales, int group, int b) {
    (void)src, (void)group;
    return mq_fp16_to_fp32(scales[b]);
}

/* -- ggml's other block formats: read, every weight dequantized as ggml does (blocks.h) -- */

#define READ_DEQUANTIZE(FN)                                                                        \
    static void dequantize_##FN(const uint8_t *src, const mq_fp16_t *scales, const mq_scheme_t *s, \
                                int cols, int group, float *y) {                                   \
        (void)scales, (void)s, (void)group;                                                        \
        mq_blocks_##FN(src, cols, y);                                                              \
    }
READ_DEQUANTIZE(bf16)
READ_DEQUANTIZE(q4_1)
READ_DEQUANTIZE(q5_0)
READ_DEQUANTIZE(q5_1)
READ_DEQUANTIZE(q2_k)
READ_DEQUANTIZE(q3_k)
READ_DEQUANTIZE(q4_k)
READ_DEQUANTIZE(q5_k)
READ_DEQUANTIZE(q6_k)
READ_DEQUANTIZE(iq4_nl)
READ_DEQUANTIZE(iq4_xs)
#undef READ_DEQUANTIZE

/* ---------------------------------------------------------------------------------------------
 * the table */

/* The kernels of a grid format: the scalar reference on every row, its own SIMD decode kernels,
 * the ISA's generic prompt path (gemm NULL), int8 activations where given: a8 for prompts,
 * a8_dot (here the same kernel, which takes a few x rows one by one) where they pay in decode
 * too. */
#define KERNELS(avx2_dot, avx512_dot, scalar_a8, avx512_a8, scalar_a8_dot, avx512_a8_dot,          \
                avx2_a8_dot)                                                                       \
    {                                                                                              \
        [MQ_ISA_SCALAR] = {NULL, mq_kscalar_dot, mq_kscalar_gemm, scalar_a8, NULL, scalar_a8_dot}, \
        [MQ_ISA_AVX2] = {NULL, avx2_dot, NULL, NULL, NULL, avx2_a8_dot},                           \
        [MQ_ISA_AVX512] = {NULL, avx512_dot, NULL, avx512_a8, NULL, avx512_a8_dot},                \
    }

static const mq_format_t FORMAT_F32 = {
    .about = "the FP32 values as they are",
    .when = "fp32, and any Linear left in FP32",
    .llama_cpp = 1,
    .name = "f32",
    .ggml_type = MQ_GGML_F32,
    .llama_ftype = 0,
    .fits = fits_f32,
    .row_bytes = row_bytes_f32,
    .ne0 = ne0_cols,
    .encode_row = encode_f32,
    .dequantize_row = dequantize_f32,
    .values_row = values_f32,
    .block_scale = scale_one,
    /* OpenBLAS: sgemm for several x rows on every instruction set; one x row: sgemv on the
       scalar one, the SIMD versions' own dot kernels (faster on short rows, measured) */
    .kernels = {[MQ_ISA_SCALAR] = {mq_kblas_forward, mq_kscalar_dot, mq_kscalar_gemm, NULL, NULL},
                [MQ_ISA_AVX2] = {mq_kblas_forward, mq_kavx2_dot_f32, NULL, NULL, NULL},
                [MQ_ISA_AVX512] = {mq_kblas_forward, mq_kavx512_dot_f32, NULL, NULL, NULL}},
};

static const mq_format_t FORMAT_F16 = {
    .about = "IEEE half values",
    .when = "fp16",
    .llama_cpp = 1,
    .name = "f16",
    .ggml_type = MQ_GGML_F16,
    .llama_ftype = 1,
    .fits = fits_f16,
    .row_bytes = row_bytes_f16,
    .ne0 = ne0_cols,
    .encode_row = encode_f16,
    .dequantize_row = dequantize_f16,
    .values_row = values_f16,
    .block_scale = scale_one,
    .kernels = {[MQ_ISA_SCALAR] = {NULL, mq_kscalar_dot, mq_kscalar_gemm, NULL, NULL},
                [MQ_ISA_AVX2] = {NULL, mq_kavx2_dot_f16, mq_kavx2_gemm_f16, NULL, NULL},
                [MQ_ISA_AVX512] = {NULL, mq_kavx512_dot_f16, mq_kavx512_gemm_f16, NULL, NULL}},
};

static const mq_format_t FORMAT_Q8_0 = {
    .about = "ggml's 32-blocks of int8 codes and an FP16 scale",
    .when = "int8 grids whose rows and groups are multiples of 32",
    .llama_cpp = 1,
    .name = "q8_0",
    .ggml_type = MQ_GGML_Q8_0,
    .block = QBLOCK,
    .block_bytes = MQ_Q8_0_BYTES,
    .llama_ftype = 7,
    .kernel_layout = MQ_KL_Q8_0,
    .fits = fits_q8_0,
    .row_bytes = row_bytes_q8_0,
    .ne0 = ne0_cols,
    .encode_row = encode_q8_0,
    .decode_row = decode_q8_0,
    .dequantize_row = dequantize_q8_0,
    .values_row = values_q8_0,
    .block_scale = scale_q8_0,
    /* decode keeps FP32 activations: where the weights come from DRAM its int8 one-row kernel
       is slower (26-serve) */
    .kernels = KERNELS(mq_kavx2_dot_q8_0, mq_kavx512_dot_q8_0, mq_kscalar_a8, mq_kavx512_a8_q8_0,
                       NULL, NULL, NULL),
};

static const mq_format_t FORMAT_Q4_0 = {
    .about = "ggml's 32-blocks of 4-bit codes and an FP16 scale",
    .when = "int4 grids whose rows and groups are multiples of 32",
    .llama_cpp = 1,
    .name = "q4_0",
    .ggml_type = MQ_GGML_Q4_0,
    .block = QBLOCK,
    .block_bytes = MQ_Q4_0_BYTES,
    .llama_ftype = 2,
    .kernel_layout = MQ_KL_Q4_0,
    .fits = fits_q4_0,
    .row_bytes = row_bytes_q4_0,
    .ne0 = ne0_cols,
    .encode_row = encode_q4_0,
    .decode_row = decode_q4_0,
    .dequantize_row = dequantize_q4_0,
    .values_row = values_q4_0,
    .block_scale = scale_q4_0,
    /* int8 activations pay in decode too, in cache and from DRAM (26-serve) */
    .kernels = KERNELS(mq_kavx2_dot_q4_0, mq_kavx512_dot_q4_0, mq_kscalar_a8, mq_kavx512_a8_q4_0,
                       mq_kscalar_a8, mq_kavx512_a8_q4_0, mq_kavx2_a8_q4_0),
};

static const mq_format_t FORMAT_PACKED = {
    .about = "miniquant's codes packed at their bit width, FP16 scales in <name>.scales",
    .when = "every other grid (nf4, nf3, int2/3/5/6/7, other groups)",
    .llama_cpp = 0,
    .name = "packed",
    .ggml_type = MQ_GGML_I8,
    .side_scales = 1,
    .llama_ftype = 1024,
    .fits = fits_packed,
    .row_bytes = row_bytes_packed,
    .ne0 = ne0_packed,
    .encode_row = encode_packed,
    .decode_row = decode_packed,
    .dequantize_row = dequantize_packed,
    .values_row = values_packed,
    .block_scale = scale_packed,
    .kernels = {[MQ_ISA_SCALAR] = {NULL, mq_kscalar_dot, mq_kscalar_gemm, NULL, NULL},
                [MQ_ISA_AVX2] = {NULL, mq_kavx2_dot_packed, NULL, NULL, NULL},
                [MQ_ISA_AVX512] = {NULL, mq_kavx512_dot_packed, NULL, NULL,
                                   mq_kavx512_prep_packed}},
};

/* Formats miniquant reads and no scheme writes yet: a weight of a file in one of them is
 * dequantized to FP32 when the file is loaded (export.h). */
#define READ_ROW(VAR, NAME, TYPE, BLOCK, BYTES, FN, ABOUT)                                         \
    static const mq_format_t VAR = {                                                               \
        .name = NAME,                                                                              \
        .about = ABOUT,                                                                            \
        .when = "read from files other tools write (dequantized to FP32 on loading)",              \
        .llama_cpp = 1,                                                                            \
        .ggml_type = TYPE,                                                                         \
        .block = BLOCK,                                                                            \
        .block_bytes = BYTES,                                                                      \
        .dequantize_row = dequantize_##FN,                                                         \
    }
READ_ROW(FORMAT_BF16, "bf16", MQ_GGML_BF16, 0, 0, bf16, "bfloat16 values, the top half of FP32");
READ_ROW(FORMAT_Q4_1, "q4_1", MQ_GGML_Q4_1, 32, MQ_Q4_1_BYTES, q4_1,
         "ggml's 32-blocks of 4-bit codes with an FP16 scale and min");
READ_ROW(FORMAT_IQ4_XS, "iq4_xs", MQ_GGML_IQ4_XS, MQ_QK_K, MQ_IQ4_XS_BYTES, iq4_xs,
         "ggml's 256-blocks of IQ4_NL indices, 6-bit scales per 32");
#undef READ_ROW

/* Block formats written from the values (blocks.h): a row is whole blocks; values_row gives the
 * values themselves (the scale of the scalar reference is 1, the whole row one scale block). */
#define WRITE_ROW(VAR, NAME, TYPE, BLOCK, BYTES, FN, FTYPE, NEAREST, AVX2_DOT, AVX512_DOT,         \
                  UNSIGNED, SCALAR_A8, AVX512_A8, AVX2_A8, ABOUT, WHEN)                            \
    static int fits_##FN(const mq_scheme_t *s, int cols) {                                         \
        /* a block family lists it: its own, or another's fallback (mq_format_for) */              \
        return s->family->takes_imat && cols % (BLOCK) == 0;                                       \
    }                                                                                              \
    static size_t row_bytes_##FN(const mq_scheme_t *s, int cols) {                                 \
        (void)s;                                                                                   \
        return (size_t)(cols / (BLOCK)) * (BYTES);                                                 \
    }                                                                                              \
    static void encode_##FN(const mq_qrow_t *src, const mq_scheme_t *s, uint8_t *dst) {            \
        (void)s;                                                                                   \
        mq_blocks_quantize_##FN(src->x, src->imp, src->cols, dst);                                 \
    }                                                                                              \
    static void values_##FN(const uint8_t *src, const mq_scheme_t *s, int cols, float *v) {        \
        (void)s;                                                                                   \
        mq_blocks_##FN(src, cols, v);                                                              \
    }                                                                                              \
    static const mq_format_t VAR = {                                                               \
        .name = NAME,                                                                              \
        .about = ABOUT,                                                                            \
        .when = WHEN,                                                                              \
        .llama_cpp = 1,                                                                            \
        .ggml_type = TYPE,                                                                         \
        .block = BLOCK,                                                                            \
        .block_bytes = BYTES,                                                                      \
        .llama_ftype = FTYPE,                                                                      \
        .fits = fits_##FN,                                                                         \
        .row_bytes = row_bytes_##FN,                                                               \
        .ne0 = ne0_cols,                                                                           \
        .encode_row = encode_##FN,                                                                 \
        .dequantize_row = dequantize_##FN,                                                         \
        .values_row = values_##FN,                                                                 \
        .block_scale = scale_one,                                                                  \
        .nearest = NEAREST,                                                                        \
        .unsigned_block = UNSIGNED,                                                                \
        .kernels = {[MQ_ISA_SCALAR] = {NULL, mq_kscalar_dot, mq_kscalar_gemm, SCALAR_A8, NULL,     \
                                       SCALAR_A8},                                                 \
                    [MQ_ISA_AVX2] = {NULL, AVX2_DOT, NULL, NULL, NULL, AVX2_A8},                   \
                    [MQ_ISA_AVX512] = {NULL, AVX512_DOT, NULL, NULL, NULL, AVX512_A8}},            \
    }
WRITE_ROW(FORMAT_Q2_K, "q2_k", MQ_GGML_Q2_K, MQ_QK_K, MQ_Q2_K_BYTES, q2_k, 10,
          mq_blocks_nearest_q2_k, mq_kavx2_dot_q2_k, mq_kavx512_dot_q2_k, mq_blocks_unsigned_q2_k,
          mq_kscalar_a8_unsigned, mq_kavx512_a8_q2_k, mq_kavx2_a8_q2_k,
          "ggml's 256-blocks of 2-bit codes, 4-bit scales and mins per 16",
          "q2_k, rows of multiples of 256");
WRITE_ROW(FORMAT_Q3_K, "q3_k", MQ_GGML_Q3_K, MQ_QK_K, MQ_Q3_K_BYTES, q3_k, 11,
          mq_blocks_nearest_q3_k, mq_kavx2_dot_q3_k, mq_kavx512_dot_q3_k, mq_blocks_unsigned_q3_k,
          mq_kscalar_a8_unsigned, mq_kavx512_a8_q3_k, mq_kavx2_a8_q3_k,
          "ggml's 256-blocks of 3-bit codes, 6-bit scales per 16",
          "q3_k, rows of multiples of 256");
WRITE_ROW(FORMAT_Q4_K, "q4_k", MQ_GGML_Q4_K, MQ_QK_K, MQ_Q4_K_BYTES, q4_k, 14,
          mq_blocks_nearest_q4_k, mq_kavx2_dot_q4_k, mq_kavx512_dot_q4_k, mq_blocks_unsigned_q4_k,
          mq_kscalar_a8_unsigned, mq_kavx512_a8_q4_k, mq_kavx2_a8_q4_k,
          "ggml's 256-blocks of 4-bit codes, 6-bit scales and mins per 32",
          "q4_k, rows of multiples of 256");
WRITE_ROW(FORMAT_Q5_K, "q5_k", MQ_GGML_Q5_K, MQ_QK_K, MQ_Q5_K_BYTES, q5_k, 16,
          mq_blocks_nearest_q5_k, mq_kavx2_dot_q5_k, mq_kavx512_dot_q5_k, mq_blocks_unsigned_q5_k,
          mq_kscalar_a8_unsigned, mq_kavx512_a8_q5_k, mq_kavx2_a8_q5_k,
          "ggml's 256-blocks of 5-bit codes, 6-bit scales and mins per 32",
          "q5_k, rows of multiples of 256");
WRITE_ROW(FORMAT_Q6_K, "q6_k", MQ_GGML_Q6_K, MQ_QK_K, MQ_Q6_K_BYTES, q6_k, 18,
          mq_blocks_nearest_q6_k, mq_kavx2_dot_q6_k, mq_kavx512_dot_q6_k, mq_blocks_unsigned_q6_k,
          mq_kscalar_a8_unsigned, mq_kavx512_a8_q6_k, mq_kavx2_a8_q6_k,
          "ggml's 256-blocks of 6-bit codes, 8-bit scales per 16",
          "q6_k, rows of multiples of 256");
WRITE_ROW(FORMAT_IQ4_NL, "iq4_nl", MQ_GGML_IQ4_NL, 32, MQ_IQ4_NL_BYTES, iq4_nl, 25,
          mq_blocks_nearest_iq4_nl, mq_kavx2_dot_iq4_nl, mq_kavx512_dot_iq4_nl, NULL, NULL, NULL,
          NULL, "ggml's 32-blocks of 4-bit indices into a non-linear codebook, an FP16 scale",
          "iq4_nl; q2_k's and q3_k's rows that 256 does not divide");
WRITE_ROW(FORMAT_Q5_0, "q5_0", MQ_GGML_Q5_0, 32, MQ_Q5_0_BYTES, q5_0, 8, NULL, mq_kavx2_dot_values,
          mq_kavx512_dot_values, NULL, NULL, NULL, NULL,
          "ggml's 32-blocks of 5-bit codes and an FP16 scale",
          "q4_k's rows that 256 does not divide");
WRITE_ROW(FORMAT_Q5_1, "q5_1", MQ_GGML_Q5_1, 32, MQ_Q5_1_BYTES, q5_1, 9, NULL, mq_kavx2_dot_values,
          mq_kavx512_dot_values, NULL, NULL, NULL, NULL,
          "ggml's 32-blocks of 5-bit codes with an FP16 scale and min",
          "q5_k's rows that 256 does not divide");
#undef WRITE_ROW

const mq_format_t *const MQ_FORMATS[] = {
    &FORMAT_F32,    &FORMAT_F16,  &FORMAT_Q8_0, &FORMAT_Q4_0, &FORMAT_PACKED,
    &FORMAT_BF16,   &FORMAT_Q4_1, &FORMAT_Q5_0, &FORMAT_Q5_1, &FORMAT_Q2_K,
    &FORMAT_Q3_K,   &FORMAT_Q4_K, &FORMAT_Q5_K, &FORMAT_Q6_K, &FORMAT_IQ4_NL,
    &FORMAT_IQ4_XS, NULL};

int mq_format_writes(const mq_format_t *f) {
    return f && f->fits != NULL;
}

int mq_format_refuse_type(mq_error_t *err, const char *file, const char *tensor, int ggml_type) {
    const mq_ggml_type_info_t *ti = mq_ggml_type_info(ggml_type);
    return mq_error_set(err, MQ_ERR_UNSUPPORTED,
                        "%s: tensor %s has type %s, which miniquant does not read (it reads %s)",
                        file, tensor, ti ? ti->name : "unknown", mq_formats_read_list());
}

const char *mq_formats_read_list(void) {
    static char buf[256];
    if (buf[0]) return buf;
    size_t n = 0;
    for (int i = 0; MQ_FORMATS[i] && n < sizeof buf; i++) {
        const mq_ggml_type_info_t *ti = mq_ggml_type_info(MQ_FORMATS[i]->ggml_type);
        if (MQ_FORMATS[i]->side_scales) continue; /* miniquant's own, not a type of its own */
        n += (size_t)snprintf(buf + n, sizeof buf - n, "%s%s", n ? ", " : "", ti->name);
    }
    return buf;
}

const char *mq_formats_help(void) {
    static char buf[4096];
    if (buf[0]) return buf;
    size_t n = 0;
    n += (size_t)snprintf(
        buf + n, sizeof buf - n,
        "Each Linear is stored in the first format of its scheme's family that fits:\n");
    for (int i = 0; MQ_FAMILIES[i] && n < sizeof buf; i++) {
        const mq_family_t *f = MQ_FAMILIES[i];
        n += (size_t)snprintf(buf + n, sizeof buf - n, "  %s: ", f->grammar);
        for (int k = 0; f->formats[k] && n < sizeof buf; k++)
            n += (size_t)snprintf(buf + n, sizeof buf - n, "%s%s", k ? ", then " : "",
                                  f->formats[k]);
        n += (size_t)snprintf(buf + n, sizeof buf - n, "\n");
    }
    for (int i = 0; MQ_FORMATS[i] && n < sizeof buf; i++) {
        const mq_format_t *f = MQ_FORMATS[i];
        n += (size_t)snprintf(buf + n, sizeof buf - n, "  %-7s %s;\n          %s%s\n", f->name,
                              f->about, f->when,
                              !mq_format_writes(f) ? ""
                              : f->llama_cpp       ? " (llama.cpp runs it)"
                                                   : " (miniquant only)");
    }
    return buf;
}

const mq_format_t *mq_format_by_name(const char *name) {
    for (int i = 0; name && MQ_FORMATS[i]; i++)
        if (!strcmp(MQ_FORMATS[i]->name, name)) return MQ_FORMATS[i];
    return NULL;
}

const mq_format_t *mq_format_of_ggml_type(int ggml_type) {
    for (int i = 0; MQ_FORMATS[i]; i++)
        if (MQ_FORMATS[i]->ggml_type == ggml_type) return MQ_FORMATS[i];
    return NULL;
}

const mq_format_t *mq_format_for(const mq_scheme_t *s, int cols, mq_error_t *err) {
    if (mq_scheme_check(s, err)) return NULL;
    if (cols <= 0) {
        mq_error_set(err, MQ_ERR_ARG, "scheme %.32s: rows of %d inputs", s->name, cols);
        return NULL;
    }
    if (s->gran == MQ_QG_GROUP && cols % s->group != 0) {
        mq_error_set(err, MQ_ERR_ARG,
                     "scheme %.32s: group size %d does not divide the row length %d", s->name,
                     s->group, cols);
        return NULL;
    }
    for (int i = 0; s->family->formats[i]; i++) {
        const mq_format_t *f = mq_format_by_name(s->family->formats[i]);
        if (f && f->fits(s, cols)) return f;
    }
    mq_error_set(err, MQ_ERR_ARG, "scheme %.32s: no stored format takes rows of %d inputs", s->name,
                 cols);
    return NULL;
}

#define NEED(row, cond, what)                                                                      \
    if (!(cond))                                                                                   \
    return mq_error_set(err, MQ_ERR_UNSUPPORTED, "format table: %s has no %s", row, what)

int mq_format_check_row(const mq_format_t *f, mq_error_t *err) {
    NEED(f->name ? f->name : "(a row without a name)", f->name && f->about && f->when,
         "name and description");
    NEED(f->name, mq_ggml_type_info(f->ggml_type), "GGUF type the container knows");
    if (!mq_format_writes(f)) { /* read: the layout and its dequantization are enough */
        NEED(f->name, f->dequantize_row, "dequantization");
        NEED(f->name,
             f->block ? f->block_bytes && mq_ggml_type_info(f->ggml_type)->block_size == f->block &&
                            mq_ggml_type_info(f->ggml_type)->type_size == f->block_bytes
                      : !f->block_bytes && mq_ggml_type_info(f->ggml_type)->block_size == 1,
             "block matching its GGUF type");
        NEED(f->name, !f->encode_row && !f->decode_row && !f->side_scales,
             "writer entries without fits (a read row has none)");
        return MQ_OK;
    }
    NEED(f->name, f->row_bytes && f->ne0 && f->encode_row, "storage entries");
    NEED(f->name, f->dequantize_row && f->values_row && f->block_scale, "dequantization");
    NEED(f->name, f->kernels[MQ_ISA_SCALAR].dot && f->kernels[MQ_ISA_SCALAR].gemm,
         "scalar reference kernel");
    NEED(f->name, !f->block || f->block_bytes, "block bytes");
    for (int k = 0; k < MQ_FORMAT_ISAS; k++)
        NEED(f->name, f->kernels[k].dot || f->kernels[k].forward,
             "decode kernel for an instruction set");
    int a8 = 0, a8_dot = 0; /* int8-activation kernels need their scalar reference */
    for (int k = 0; k < MQ_FORMAT_ISAS; k++) {
        a8 |= f->kernels[k].a8 != NULL;
        a8_dot |= f->kernels[k].a8_dot != NULL;
    }
    NEED(f->name, !(a8 || a8_dot) || f->kernels[MQ_ISA_SCALAR].a8,
         "scalar int8-activation reference");
    NEED(f->name, !a8_dot || f->kernels[MQ_ISA_SCALAR].a8_dot, "scalar one-row int8 reference");
    NEED(f->name, !f->unsigned_block || (f->block == 256 && f->block_bytes),
         "256-blocks for its unsigned reader");
    return MQ_OK;
}

int mq_family_check_row(const mq_family_t *fam, mq_error_t *err) {
    NEED(fam->prefix, fam->grammar && fam->formats && fam->formats[0], "formats");
    for (int k = 0; fam->formats[k]; k++)
        NEED(fam->prefix, mq_format_writes(mq_format_by_name(fam->formats[k])),
             "known format that it writes");
    int grid =
        fam->scale && fam->code && fam->value && fam->ratio && fam->code_min && fam->code_max;
    NEED(fam->prefix, grid || (!fam->scale && !fam->code && !fam->value && !fam->grans),
         "complete grid");
    NEED(fam->prefix, !grid || fam->grans, "granularity");
    NEED(fam->prefix,
         !fam->codebook || (grid && fam->code_min(fam->max_bits) == 0 &&
                            fam->code_max(fam->max_bits) == (1 << fam->max_bits) - 1),
         "codebook matching its codes");
    for (int k = 0; grid && fam->formats[k]; k++)
        NEED(fam->prefix, mq_format_by_name(fam->formats[k])->decode_row,
             "decoder in each of its formats");
    return MQ_OK;
}

int mq_formats_check(mq_error_t *err) {
    int rc = MQ_OK;
    for (int i = 0; MQ_FORMATS[i] && rc == MQ_OK; i++) {
        rc = mq_format_check_row(MQ_FORMATS[i], err);
        if (rc == MQ_OK && mq_format_of_ggml_type(MQ_FORMATS[i]->ggml_type) != MQ_FORMATS[i])
            rc = mq_error_set(err, MQ_ERR_UNSUPPORTED, "format table: %s shares its GGUF type",
                              MQ_FORMATS[i]->name);
    }
    for (int i = 0; MQ_FAMILIES[i] && rc == MQ_OK; i++)
        rc = mq_family_check_row(MQ_FAMILIES[i], err);
    return rc;
}
#undef NEED
