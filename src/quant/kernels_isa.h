/* miniquant: the kernels each instruction-set file provides, which the format table
 * (format.c) names in its rows and the dispatcher (kernels.c) calls. Private to src/quant.
 *
 * Contracts (every function computes output rows [o0, o1), without the bias):
 *   dot    y[o] = row o of w . x, one x row (C floats).
 *   gemm   y[n * OC + o] = row o of w . x row n, for n < N; x rows ldx floats apart.
 *   a8     y[n * OC + o] from the quantized x rows of xa (int8 activations), with a scratch of
 *          MQ_A8_SCRATCH(cols) bytes of its own.
 * The generic prompt path of an ISA (mq_k<isa>_gemm_panels) takes any grid format whose scale
 * blocks are whole rows or multiples of 16 columns: it copies each 16 (AVX-512) or 8 (AVX2)
 * output rows of its share into a panel in a per-thread scratch buffer (AVX-512: the rows' bytes
 * transposed for Q8_0, Q4_0 and 4-bit packed rows, else unscaled values column by column, one
 * lane per row, with the rows' block scales beside them), then runs every output as one FMA
 * chain over the columns in order. */
#ifndef MINIQUANT_KERNELS_ISA_H
#define MINIQUANT_KERNELS_ISA_H

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "miniquant/kernels.h"
#include "miniquant/quant.h"

/* n bytes starting a cache line (C11's aligned_alloc wants a multiple of the alignment), zeroed
 * when asked; NULL when out of memory or n is too large. A weight's bytes start a line, so the
 * decode kernels' 64-byte loads of F32 and F16 rows, whose lengths are multiples of 64 bytes,
 * each read one line (calloc's large blocks start 16 bytes into a page). */
static inline void *mq_alloc_lines(size_t n, int zero) {
    if (n > SIZE_MAX - 64) return NULL;
    size_t a = (n ? n + 63 : 64) / 64 * 64;
    void *p = aligned_alloc(64, a);
    if (p && zero) memset(p, 0, a);
    return p;
}

#define MQ_QBLOCK 32     /* weights per Q8_0 / Q4_0 block */
#define MQ_Q8_0_BYTES 34 /* ggml's block_q8_0: FP16 d, 32 int8 codes */
#define MQ_Q4_0_BYTES 18 /* ggml's block_q4_0: FP16 d, 16 bytes of nibbles */

/* Output rows handled by one call of a kernel, shared out among the threads: a multiple of 16. */
#define MQ_KROWS 32

/* x quantized for the int8-activation mode, built once per forward by kernels.c. Each x row has
 * nblk blocks of 32 columns (the last padded with zeros); block k = n * nblk + j holds
 *   xq    32 int8 codes, xq = round-half-even(x * 127 / max|x_block|), in column order,
 *   sx    the block's scale, max|x_block| / 127,
 *   xsum  the sum of the block's xq (removes the offset that makes weights unsigned),
 *   xsum16  the sums of its two halves of 16 (the mins of ggml's K-quants' 16-weight blocks). */
typedef struct mq_a8 {
    int N, nblk;
    int8_t *xq;      /* N * nblk * 32 */
    int32_t *xsum;   /* N * nblk */
    float *sx;       /* N * nblk */
    int32_t *xsum16; /* N * nblk * 2 */
} mq_a8_t;

/* Up to this many x rows Q8_0's and Q4_0's int8-activation kernels run their one-row kernel
 * per x row (a panel of the weights' codes costs more than it saves, measured); more share a
 * panel. */
#ifndef MQ_A8_FEW_ROWS
#define MQ_A8_FEW_ROWS 3
#endif
/* Up to this many x rows a format with a one-row int8 kernel (a8_dot) runs it per x row in the
 * int8-activation modes (the K-quants: faster than their FP32 prompt path up to about 64 rows
 * of a 4096-wide weight, measured); more take its a8 kernel, or FP32 activations. */
#ifndef MQ_A8_DOT_ROWS
#define MQ_A8_DOT_ROWS 64
#endif

/* Per-thread scratch of an int8-activation kernel (bytes): 16 rows' codes transposed and their
 * block scales. */
#define MQ_A8_SCRATCH(C) (16 * (size_t)(C) + 16 * ((size_t)(C) / 32 + 1) * sizeof(float) + 64)

/* The generic prompt path; wb holds MQ_PANEL_SCRATCH(rows, C) floats for a share of rows; xt,
 * when the ISA lays x out in tiles (mq_x_tiles_fn), is that layout, made once per forward by
 * each thread for all its shares. */
typedef void (*mq_gemm_panels_fn)(const mq_qweight_t *w, const float *x, int ldx, const float *xt,
                                  int N, float *y, int o0, int o1, float *wb);
/* x (N rows, ldx apart) into xt (N * C floats) in the tiles its gemm_panels reads. */
typedef void (*mq_x_tiles_fn)(const float *x, int ldx, int N, int C, float *xt);
#define MQ_PANEL_SCRATCH(rows, C)                                                                  \
    (((size_t)(rows) + 16) * (size_t)(C) + ((size_t)(rows) + 16) * ((size_t)(C) / 16 + 1) +        \
     16 * (size_t)(C))

/* OpenBLAS (F32 weights, every ISA): mq_matmul_forward for several x rows, sgemv for one (the
 * SIMD versions run their own dot kernel for one, format.c) */
void mq_kblas_forward(const mq_qweight_t *w, const float *bias, float *out, const float *inp,
                      int N);

/* scalar: the reference, any format (a row buffer it cannot allocate gives NaN outputs) */
void mq_kscalar_dot(const mq_qweight_t *w, const float *x, float *y, int o0, int o1);
void mq_kscalar_gemm(const mq_qweight_t *w, const float *x, int ldx, int N, float *y, int o0,
                     int o1);
void mq_kscalar_a8(const mq_qweight_t *w, const mq_a8_t *xa, float *y, int o0, int o1,
                   void *scratch);
/* The same for formats read through unsigned_block (K-quants): per 16 weights j of a block,
 *   part = S[j] * (sum u xq) - M[j] * xsum16,   y += sx * part   (sx of the 32 holding j). */
void mq_kscalar_a8_unsigned(const mq_qweight_t *w, const mq_a8_t *xa, float *y, int o0, int o1,
                            void *scratch);

/* AVX2 */
void mq_kavx2_dot_f16(const mq_qweight_t *w, const float *x, float *y, int o0, int o1);
void mq_kavx2_dot_f32(const mq_qweight_t *w, const float *x, float *y, int o0, int o1);
void mq_kavx2_gemm_f16(const mq_qweight_t *w, const float *x, int ldx, int N, float *y, int o0,
                       int o1);
void mq_kavx2_dot_q8_0(const mq_qweight_t *w, const float *x, float *y, int o0, int o1);
void mq_kavx2_dot_q4_0(const mq_qweight_t *w, const float *x, float *y, int o0, int o1);
void mq_kavx2_dot_iq4_nl(const mq_qweight_t *w, const float *x, float *y, int o0, int o1);
/* Formats whose scale block is the whole row: each row's values through the format's reader,
 * then dot (an ISA's), times the row's scale; other weights run mq_kscalar_dot. */
void mq_kvalues_dot(const mq_qweight_t *w, const float *x, float *y, int o0, int o1,
                    float (*dot)(const float *v, const float *x, int n));
void mq_kavx2_dot_values(const mq_qweight_t *w, const float *x, float *y, int o0, int o1);
void mq_kavx2_dot_packed(const mq_qweight_t *w, const float *x, float *y, int o0, int o1);
void mq_kavx2_gemm_panels(const mq_qweight_t *w, const float *x, int ldx, const float *xt, int N,
                          float *y, int o0, int o1, float *wb);

/* AVX-512 */
void mq_kavx512_dot_f16(const mq_qweight_t *w, const float *x, float *y, int o0, int o1);
void mq_kavx512_dot_f32(const mq_qweight_t *w, const float *x, float *y, int o0, int o1);
void mq_kavx512_gemm_f16(const mq_qweight_t *w, const float *x, int ldx, int N, float *y, int o0,
                         int o1);
void mq_kavx512_dot_q8_0(const mq_qweight_t *w, const float *x, float *y, int o0, int o1);
void mq_kavx512_dot_q4_0(const mq_qweight_t *w, const float *x, float *y, int o0, int o1);
void mq_kavx512_dot_iq4_nl(const mq_qweight_t *w, const float *x, float *y, int o0, int o1);
void mq_kavx512_dot_q2_k(const mq_qweight_t *w, const float *x, float *y, int o0, int o1);
void mq_kavx512_dot_q3_k(const mq_qweight_t *w, const float *x, float *y, int o0, int o1);
void mq_kavx512_dot_q4_k(const mq_qweight_t *w, const float *x, float *y, int o0, int o1);
void mq_kavx512_dot_q5_k(const mq_qweight_t *w, const float *x, float *y, int o0, int o1);
void mq_kavx512_dot_q6_k(const mq_qweight_t *w, const float *x, float *y, int o0, int o1);
void mq_kavx512_dot_values(const mq_qweight_t *w, const float *x, float *y, int o0, int o1);
void mq_kavx512_dot_packed(const mq_qweight_t *w, const float *x, float *y, int o0, int o1);
void mq_kavx512_prep_packed(const mq_qweight_t *w, const float *x, float *xp);
void mq_kavx512_gemm_panels(const mq_qweight_t *w, const float *x, int ldx, const float *xt, int N,
                            float *y, int o0, int o1, float *wb);
void mq_kavx512_x_tiles(const float *x, int ldx, int N, int C, float *xt);
void mq_kavx512_a8_q8_0(const mq_qweight_t *w, const mq_a8_t *xa, float *y, int o0, int o1,
                        void *scratch);
void mq_kavx512_a8_q4_0(const mq_qweight_t *w, const mq_a8_t *xa, float *y, int o0, int o1,
                        void *scratch);
/* mq_a8_quantize_row's AVX-512 version: the same bytes as the scalar one. */
void mq_kavx512_a8_row(const float *x, int C, int8_t *xq, int32_t *xsum, int32_t *xsum16,
                       float *sx);
/* K-quants, one x row (a8_dot): per row and 256-block the codes unsigned in four vectors of 64,
 * one vpdpbusd each against x's codes, each lane's sum (4 weights) times its 16's S and its 32's
 * sx, the mins times sx * xsum16, in one 16-lane sum per row. */
void mq_kavx512_a8_q2_k(const mq_qweight_t *w, const mq_a8_t *xa, float *y, int o0, int o1,
                        void *scratch);
void mq_kavx512_a8_q3_k(const mq_qweight_t *w, const mq_a8_t *xa, float *y, int o0, int o1,
                        void *scratch);
void mq_kavx512_a8_q4_k(const mq_qweight_t *w, const mq_a8_t *xa, float *y, int o0, int o1,
                        void *scratch);
void mq_kavx512_a8_q5_k(const mq_qweight_t *w, const mq_a8_t *xa, float *y, int o0, int o1,
                        void *scratch);
void mq_kavx512_a8_q6_k(const mq_qweight_t *w, const mq_a8_t *xa, float *y, int o0, int o1,
                        void *scratch);

#endif
