/* miniquant: weights-only quantization schemes and QuantizedLinear.
 *
 * Every scheme is symmetric and applies to a Linear weight W[rows = out][cols = in]:
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
 *   q2_k .. q6_k, iq4_nl    ggml's K-quants and IQ4_NL, written as llama.cpp reads them, their
 *                           scales searched from the values (src/quant/blocks_quantize.c); with
 *                           the suffix _imat the search weighs each input by its importance (the
 *                           diagonal of the layer's input Hessian from calibration), with _gptq
 *                           GPTQ chooses the codes on each block's scales searched so. A row that
 *                           256 (32 for iq4_nl) does not divide falls back as llama-quantize's
 *                           does: iq4_nl, q5_0, q5_1, q8_0, then f16
 * N >= 2. The families, their grids and the formats a weight is stored in are the rows of the
 * format table (format.h); rounding, ties and the guards of zero, tiny and huge blocks are
 * documented at the top of src/quant/format.c.
 *
 * A quantized weight IS its stored bytes: the rows of its format (ggml's Q8_0 / Q4_0 blocks,
 * miniquant's packed codes with their FP16 scales beside them, or F16 / F32 values), exactly the
 * data of its GGUF tensor. Kernels read those bytes; export writes them; loading reads them. */
#ifndef MINIQUANT_QUANT_H
#define MINIQUANT_QUANT_H

#include <stddef.h>
#include <stdint.h>

#include "miniquant/error.h"
#include "miniquant/format.h"
#include "miniquant/fp16.h"

/* The schemes of the spec's sweep, in order (NULL-terminated). */
extern const char *const MQ_STANDARD_SCHEMES[];

/* A quantized weight: its format's rows. */
struct mq_qweight {
    mq_scheme_t scheme;
    const mq_format_t *format;
    int rows, cols;
    int group;          /* columns per scale block: the scheme's group, or cols */
    size_t row_bytes;   /* bytes of one stored row */
    uint8_t *data;      /* rows * row_bytes: the GGUF tensor's data */
    mq_fp16_t *scales;  /* the "<base>.scales" tensor of formats that keep scales apart; NULL
                           otherwise (the blocks carry them) */
    size_t n_scales;    /* scales of the scheme: 0 (fp32, fp16), 1, rows or rows * cols / group */
    int borrowed;       /* 1: data and scales belong to a file kept alive elsewhere */
};

/* Allocates zeroed storage for a scheme and shape; q is overwritten, not freed. A group size
 * that does not divide cols is MQ_ERR_ARG with a clear message. On failure q holds nothing
 * (mq_qweight_free on it is harmless). */
int mq_qweight_alloc(mq_qweight_t *q, const mq_scheme_t *s, int rows, int cols, mq_error_t *err);
/* Round-to-nearest quantization of W (rows x cols, row-major) into q (allocated here). For a
 * _gptq scheme this is the RTN starting point. MQ_ERR_ARG, naming the element, for a NaN or
 * infinite weight, and for a weight too large for the scheme's FP16 range. */
int mq_qweight_quantize(mq_qweight_t *q, const mq_scheme_t *s, const float *W, int rows,
                        int cols, mq_error_t *err);
/* The same with imp (cols values, or NULL): the importance of each input, under which the block
 * formats that search their scales (q4_k, ...) weigh their errors; an _imat scheme needs it. */
int mq_qweight_quantize_imp(mq_qweight_t *q, const mq_scheme_t *s, const float *W, int rows,
                            int cols, const float *imp, mq_error_t *err);
/* q (allocated here) from codes (rows x cols) on the scheme's grid and their scales
 * (mq_scheme_n_scales of them: 1, one per row, or row-major per group), as GPTQ chooses them. */
int mq_qweight_from_codes(mq_qweight_t *q, const mq_scheme_t *s, int rows, int cols,
                          const int8_t *codes, const mq_fp16_t *scales, mq_error_t *err);
/* The codes and scales of a grid weight (laid out as mq_qweight_from_codes takes them). */
int mq_qweight_to_codes(const mq_qweight_t *q, int8_t *codes, mq_fp16_t *scales, mq_error_t *err);
/* q (allocated here unless borrow) from a stored tensor's bytes: data holds rows * row_bytes
 * bytes, side_scales the scales of formats that keep them apart. Every row is checked as a
 * loader must (codes on the grid, consistent blocks, finite non-negative scales); on a row
 * no quantizer of s could have written, MQ_ERR_FORMAT with *bad_row and fault filled. borrow:
 * q points into data and side_scales, which must outlive it. */
int mq_qweight_load(mq_qweight_t *q, const mq_scheme_t *s, const mq_format_t *f, int rows,
                    int cols, const uint8_t *data, const mq_fp16_t *side_scales, int borrow,
                    int *bad_row, mq_row_fault_t *fault, mq_error_t *err);
void mq_qweight_free(mq_qweight_t *q);

/* The side scales of row r (its first block's; the single one for per-tensor); NULL for
 * formats whose blocks carry their scales. */
const mq_fp16_t *mq_qweight_row_scales(const mq_qweight_t *q, int r);
/* W (rows x cols) = dequantized weight: exactly value(code, scale) of the grid, element by
 * element. The row form takes 0 <= r < rows. */
void mq_qweight_dequantize(const mq_qweight_t *q, float *W);
void mq_qweight_dequantize_row(const mq_qweight_t *q, int r, float *row);

/* Bytes as the lab defines them: numel x dtype size of every stored tensor (codes as int8,
 * scales as FP16), computed from the scheme. */
size_t mq_qweight_bytes(const mq_qweight_t *q);
/* Bytes actually held and stored in GGUF: rows * row_bytes plus the side scales. */
size_t mq_qweight_stored_bytes(const mq_qweight_t *q);
/* Bits per weight when codes are packed at their bit width (b + 16 * n_scales / numel; 16 and
 * 32 for fp16 / fp32), as the lab counts them. */
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
/* Takes w (moved into ql, w emptied) and a copy of bias. */
int mq_qlinear_from_weight(mq_qlinear_t *ql, mq_qweight_t *w, const float *bias,
                           mq_error_t *err);
void mq_qlinear_free(mq_qlinear_t *ql);
/* The reference path: dequantize into a temporary buffer, sgemm, add bias, free the buffer. */
int mq_qlinear_forward_ref(const mq_qlinear_t *ql, float *out, const float *inp, int N,
                           mq_error_t *err);
/* Bytes held as the lab counts them (weight + bias). */
size_t mq_qlinear_bytes(const mq_qlinear_t *ql);

#endif
