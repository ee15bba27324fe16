/* miniquant: weights-only quantization schemes and QuantizedLinear.
 *
 * Every scheme is symmetric and applies to a Linear weight W[rows = out][cols = in]. Codes are
 * stored as int8 and scales as FP16, so what is evaluated is exactly what is exported.
 *
 *   fp32                    the weight itself (baseline)
 *   fp16                    weights rounded to IEEE half
 *   int{b}_per_tensor       b in 2..8: one scale max|W| / qmax, codes in [-qmax, qmax],
 *                           qmax = 2^(b-1) - 1 (127 for 8 bits, 7 for 4)
 *   int{b}_per_channel      one scale per output row
 *   int{b}_g{N}             one scale per group of N consecutive inputs in a row
 *   nf4_g{N}                NormalFloat-4 (QLoRA's 16 normal quantiles), absmax per group of N
 *                           (groups only: nf4_per_tensor / nf4_per_channel are not schemes)
 *   any of the int/nf4 ones with the suffix _gptq: the same grid, weights chosen by GPTQ
 * N >= 2. Names are accepted in canonical form only (lower case, no leading zeros).
 *
 * Rounding, ties and the guards of zero, tiny and huge blocks are documented at the top of
 * src/quant/quant.c; the GGUF exporter, GPTQ and the fused kernels reproduce them.
 *
 * One table row per grid family (ggml's type traits): the CLI, the sweep, the exporter and the
 * tests walk it. */
#ifndef MINIQUANT_QUANT_H
#define MINIQUANT_QUANT_H

#include <stddef.h>
#include <stdint.h>

#include "miniquant/error.h"
#include "miniquant/fp16.h"

typedef enum mq_qkind { MQ_QK_FP32 = 0, MQ_QK_FP16, MQ_QK_INT, MQ_QK_NF4, MQ_QK_COUNT } mq_qkind_t;
typedef enum mq_qgran { MQ_QG_NONE = 0, MQ_QG_TENSOR, MQ_QG_CHANNEL, MQ_QG_GROUP } mq_qgran_t;

typedef struct mq_scheme {
    char name[32];   /* canonical name, e.g. "int4_g64_gptq" */
    mq_qkind_t kind;
    int bits;        /* 32, 16, 2..8 (int), 4 (nf4) */
    mq_qgran_t gran; /* NONE for fp32/fp16 */
    int group;       /* group size when gran == MQ_QG_GROUP */
    int gptq;        /* 1: codes chosen by GPTQ (the grid is the same) */
} mq_scheme_t;

/* The grammar, for messages: "fp32, fp16, int{2..8}_{per_tensor|per_channel|g{N}}[_gptq],
 * nf4_g{N}[_gptq] (N >= 2)". */
const char *mq_scheme_grammar(void);
/* Parses a scheme name; MQ_ERR_ARG with a message quoting the grammar otherwise. */
int mq_scheme_parse(const char *name, mq_scheme_t *out, mq_error_t *err);
/* The schemes of the spec's sweep, in order (NULL-terminated). */
extern const char *const MQ_STANDARD_SCHEMES[];

/* One row per grid family. fp32 and fp16 store the weights themselves: their scale, code and
 * value pointers are NULL. */
typedef struct mq_qkind_traits {
    mq_qkind_t kind;
    const char *name;
    /* The scale of a block whose largest magnitude is absmax, already rounded to FP16 (0 for an
     * all-zero block: its codes are all 0 and dequantize to 0, never NaN). Always finite: never
     * above 65504, and at least 2^-24 for a non-zero block. */
    mq_fp16_t (*scale)(float absmax, int bits);
    /* The code nearest to x / scale on the grid, ties as documented in quant.c; int codes are
     * clamped to [-qmax, qmax], nf4 codes are in [0, 15]. A zero scale (or a NaN x) gives the
     * code of 0. */
    int8_t (*code)(float x, float scale, int bits);
    /* The value of a code: code * scale (int) or NF4[code] * scale (nf4). */
    float (*value)(int8_t code, float scale, int bits);
} mq_qkind_traits_t;

/* The row of kind k; NULL when k is not a kind. */
const mq_qkind_traits_t *mq_qkind_traits(mq_qkind_t k);

/* The NF4 codebook: 16 values in [-1, 1], ascending, with an exact 0. */
extern const float MQ_NF4_CODEBOOK[16];

/* A quantized weight: codes and FP16 scales, no FP32 copy (except for the fp32 scheme, whose
 * "codes" are the weight). */
typedef struct mq_qweight {
    mq_scheme_t scheme;
    int rows, cols;
    int8_t *codes;      /* rows*cols (int, nf4) */
    mq_fp16_t *scales;  /* n_scales (int, nf4) */
    size_t n_scales;    /* 1, rows, or rows * cols/group */
    mq_fp16_t *half;    /* rows*cols (fp16) */
    float *full;        /* rows*cols (fp32) */
} mq_qweight_t;

/* Number of scale blocks (0 for fp32 / fp16, or when the group does not divide cols) and the
 * block that element (r, c) belongs to. */
size_t mq_qweight_n_scales(const mq_scheme_t *s, int rows, int cols);
size_t mq_qweight_scale_index(const mq_qweight_t *q, int r, int c);

/* Allocates storage for a scheme and shape (codes and scales zeroed); q is overwritten, not
 * freed. A group size that does not divide cols is MQ_ERR_ARG with a clear message. On failure
 * q holds nothing (mq_qweight_free on it is harmless). */
int mq_qweight_alloc(mq_qweight_t *q, const mq_scheme_t *s, int rows, int cols, mq_error_t *err);
/* Round-to-nearest quantization of W (rows x cols, row-major) into q (allocated here, as by
 * mq_qweight_alloc). For a _gptq scheme this is the RTN starting point; GPTQ fills codes and
 * scales itself. MQ_ERR_ARG, naming the element, for a NaN or infinite weight, and for a weight
 * too large for the scheme's FP16 range (|w| > 65504 * qmax, or > 65504 for fp16 / nf4). */
int mq_qweight_quantize(mq_qweight_t *q, const mq_scheme_t *s, const float *W, int rows,
                        int cols, mq_error_t *err);
void mq_qweight_free(mq_qweight_t *q);
/* W (rows x cols) = dequantized weight: exactly value(code, scale) of the traits, element by
 * element. The row form takes 0 <= r < rows. */
void mq_qweight_dequantize(const mq_qweight_t *q, float *W);
void mq_qweight_dequantize_row(const mq_qweight_t *q, int r, float *row);

/* Bytes as the lab defines them: numel x dtype size of every stored tensor (codes as int8,
 * scales as FP16). */
size_t mq_qweight_bytes(const mq_qweight_t *q);
/* Bits per weight when codes are packed at their bit width (b + 16 * n_scales / numel; 16 and
 * 32 for fp16 / fp32): what a packed file such as GGUF needs. */
double mq_qweight_bits_per_weight(const mq_qweight_t *q);

/* QuantizedLinear: y (N, out) = x (N, in) @ deq(W)^T + b, same shape and dtype (FP32) as the
 * Linear it replaces. Holds the quantized weight and an FP32 copy of the bias, nothing else. */
typedef struct mq_qlinear {
    mq_qweight_t w;
    float *bias; /* [out] or NULL */
    int in, out;
} mq_qlinear_t;

int mq_qlinear_from_linear(mq_qlinear_t *ql, const float *W, const float *bias, int out, int in,
                           const mq_scheme_t *s, mq_error_t *err);
void mq_qlinear_free(mq_qlinear_t *ql);
/* The reference path: dequantize into a temporary buffer, sgemm, add bias, free the buffer. */
int mq_qlinear_forward_ref(const mq_qlinear_t *ql, float *out, const float *inp, int N,
                           mq_error_t *err);
/* Bytes held (weight + bias). */
size_t mq_qlinear_bytes(const mq_qlinear_t *ql);

#endif
