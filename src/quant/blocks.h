/* miniquant: ggml's block formats that miniquant reads, dequantized as ggml's dequantize_row_*
 * computes them (the same operations in the same order, so the same floats). Private to
 * src/quant: the format table (format.c) names them in its rows.
 *
 * Each function turns n weights (a multiple of its block) stored at src into y. The layouts
 * (ggml-common.h), d and m FP16 little-endian:
 *
 *   bf16    2 bytes a weight: the top half of an FP32.
 *   q4_1    32 weights, 20 bytes: d, m, 16 bytes of nibbles (weight j < 16 low nibble of byte j,
 *           j + 16 its high nibble); y = q * d + m.
 *   q5_0    32 weights, 22 bytes: d, qh (32 bits: the fifth bit of weight j is bit j), 16 bytes
 *           of low nibbles as q4_1; y = (q - 16) * d.
 *   q5_1    32 weights, 24 bytes: d, m, qh, nibbles; y = q * d + m.
 *   q2_K    256 weights, 84 bytes: 16 bytes of 4-bit scale | 4-bit min pairs, 64 bytes of 2-bit
 *           codes, d, dmin; sub-blocks of 16: y = d * sc * q - dmin * m.
 *   q3_K    256 weights, 110 bytes: 32 bytes of high bits (a set bit adds 4), 64 bytes of low 2
 *           bits, 12 bytes of 6-bit scales (offset 32), d; sub-blocks of 16:
 *           y = d * (sc - 32) * (q - 4).
 *   q4_K    256 weights, 144 bytes: d, dmin, 12 bytes of 6-bit scales and mins, 128 bytes of
 *           nibbles; sub-blocks of 32: y = d * sc * q - dmin * m.
 *   q5_K    256 weights, 176 bytes: d, dmin, 12 bytes of scales and mins, 32 bytes of fifth
 *           bits, 128 bytes of nibbles; as q4_K with 5-bit codes.
 *   q6_K    256 weights, 210 bytes: 128 bytes of low nibbles, 64 bytes of 2-bit highs, 16 int8
 *           scales, d; sub-blocks of 16: y = d * sc * (q - 32).
 *   iq4_nl  32 weights, 18 bytes: d, nibbles as q4_1 indexing a 16-value int8 codebook;
 *           y = d * book[q].
 *   iq4_xs  256 weights, 136 bytes: d, 2 bytes of scale high bits, 4 bytes of scale low
 *           nibbles, 128 bytes of nibbles; sub-blocks of 32: y = d * (ls - 32) * book[q]. */
#ifndef MINIQUANT_QUANT_BLOCKS_H
#define MINIQUANT_QUANT_BLOCKS_H

#include <stdint.h>

#include "miniquant/fp16.h"

#define MQ_QK_K 256 /* weights per K-quant super-block */

/* Bytes per block of each layout. */
enum {
    MQ_Q4_1_BYTES = 20,
    MQ_Q5_0_BYTES = 22,
    MQ_Q5_1_BYTES = 24,
    MQ_Q2_K_BYTES = 84,
    MQ_Q3_K_BYTES = 110,
    MQ_Q4_K_BYTES = 144,
    MQ_Q5_K_BYTES = 176,
    MQ_Q6_K_BYTES = 210,
    MQ_IQ4_NL_BYTES = 18,
    MQ_IQ4_XS_BYTES = 136,
};

/* The FP16 value at p (little-endian), widened exactly. */
static inline float mq_blocks_half_at(const uint8_t *p) {
    return mq_fp16_to_fp32((mq_fp16_t)(p[0] | (p[1] << 8)));
}

/* IQ4_NL's and IQ4_XS's codebook. */
extern const int8_t MQ_IQ4_BOOK[16];

void mq_blocks_bf16(const uint8_t *src, int n, float *y);
void mq_blocks_q4_1(const uint8_t *src, int n, float *y);
void mq_blocks_q5_0(const uint8_t *src, int n, float *y);
void mq_blocks_q5_1(const uint8_t *src, int n, float *y);
void mq_blocks_q2_k(const uint8_t *src, int n, float *y);
void mq_blocks_q3_k(const uint8_t *src, int n, float *y);
void mq_blocks_q4_k(const uint8_t *src, int n, float *y);
void mq_blocks_q5_k(const uint8_t *src, int n, float *y);
void mq_blocks_q6_k(const uint8_t *src, int n, float *y);
void mq_blocks_iq4_nl(const uint8_t *src, int n, float *y);
void mq_blocks_iq4_xs(const uint8_t *src, int n, float *y);

/* The same formats written from n FP32 weights x (a multiple of the block), imp their
 * importance (the diagonal of the layer's input Hessian, one per weight) or NULL
 * (blocks_quantize.c says how each searches its scales). Q5_0, Q5_1 and Q8_0 are written as
 * ggml's reference quantizers write them (they take no importance): they are the fallbacks of
 * rows that no K-quant block divides. */
void mq_blocks_quantize_q2_k(const float *x, const float *imp, int n, uint8_t *dst);
void mq_blocks_quantize_q3_k(const float *x, const float *imp, int n, uint8_t *dst);
void mq_blocks_quantize_q4_k(const float *x, const float *imp, int n, uint8_t *dst);
void mq_blocks_quantize_q5_k(const float *x, const float *imp, int n, uint8_t *dst);
void mq_blocks_quantize_q6_k(const float *x, const float *imp, int n, uint8_t *dst);
void mq_blocks_quantize_iq4_nl(const float *x, const float *imp, int n, uint8_t *dst);
void mq_blocks_quantize_q5_0(const float *x, const float *imp, int n, uint8_t *dst);
void mq_blocks_quantize_q5_1(const float *x, const float *imp, int n, uint8_t *dst);
void mq_blocks_quantize_q8_0(const float *x, const float *imp, int n, uint8_t *dst);

/* GPTQ's hook for those that search their scales (format.h: nearest): with the scales of the
 * block at blk written, weight j's code nearest to w is written and its value returned. */
float mq_blocks_nearest_q2_k(uint8_t *blk, int j, float w);
float mq_blocks_nearest_q3_k(uint8_t *blk, int j, float w);
float mq_blocks_nearest_q4_k(uint8_t *blk, int j, float w);
float mq_blocks_nearest_q5_k(uint8_t *blk, int j, float w);
float mq_blocks_nearest_q6_k(uint8_t *blk, int j, float w);
float mq_blocks_nearest_iq4_nl(uint8_t *blk, int j, float w);

/* A K-quant super-block (q2_K .. q6_K) in the int8-activation kernels' form: its 256 codes as
 * unsigned integers u (in column order) and, per 16 weights j, a scale S[j] and a min M[j] with
 * value = S[j] * u - M[j] (q2_K: u 0..3, S d sc, M dmin m; q3_K: u = q + 4 where the high bit is
 * set, 0..7, S d (sc - 32), M 4 S; q4_K / q5_K: u 0..15 / 0..31, the scale and min of the
 * weight's 32; q6_K: u 0..63, S d sc, M 32 S). The value is ggml's up to the rounding of one
 * product and one difference (tested). */
void mq_blocks_unsigned_q2_k(const uint8_t *blk, uint8_t *u, float *S, float *M);
void mq_blocks_unsigned_q3_k(const uint8_t *blk, uint8_t *u, float *S, float *M);
void mq_blocks_unsigned_q4_k(const uint8_t *blk, uint8_t *u, float *S, float *M);
void mq_blocks_unsigned_q5_k(const uint8_t *blk, uint8_t *u, float *S, float *M);
void mq_blocks_unsigned_q6_k(const uint8_t *blk, uint8_t *u, float *S, float *M);

/* Scale and min j (0..7) of a q4_K / q5_K super-block's 12 bytes of 6-bit pairs. */
void mq_blocks_k4_scale_min(const uint8_t *scales, int j, uint8_t *sc, uint8_t *m);

#endif
