/* miniquant: what each instruction-set file of the fused kernels provides to the dispatcher
 * (kernels.c). Private to src/quant. */
#ifndef MINIQUANT_KERNELS_ISA_H
#define MINIQUANT_KERNELS_ISA_H

#include <stdint.h>

#include "miniquant/kernels.h"

/* Output rows handled by one call, shared out among the threads: a multiple of 16, so that a
 * call covers whole panels and whole sets of accumulators. */
#define MQ_KROWS 32

/* x quantized for the int8-activation mode, built once per forward by kernels.c. Each x row has
 * nblk blocks of 64 columns (the last padded with zeros); block k = n * nblk + j holds
 *   xq    64 int8 codes, xq = round-half-even(x * 127 / max|x_block|), in column order,
 *   sx    the block's scale, max|x_block| / 127,
 *   csum  -off * (sum of the block's xq), which removes the offset that makes the weights
 *         unsigned for vpdpbusd (off = 128 for int8 codes, 8 for 4-bit indices). */
typedef struct mq_a8 {
    int N, nblk;
    int8_t *xq;    /* N * nblk * 64 */
    int32_t *csum; /* N * nblk */
    float *sx;     /* N * nblk */
} mq_a8_t;

/* y rows [o0, o1) of out (N, OC) for FP32 activations x (N rows, ldx apart; for panels ldx is
 * a multiple of 8 and columns C .. ldx hold zeros, as kernels.c arranges). o0 is a multiple of
 * MQ_KROWS. */
typedef void (*mq_rows_fn)(const mq_qpacked_t *p, const float *x, int ldx, int N, const float *bias,
                           float *y, int o0, int o1);
/* The same from quantized activations. */
typedef void (*mq_a8_rows_fn)(const mq_qpacked_t *p, const mq_a8_t *xa, const float *bias, float *y,
                              int o0, int o1);

typedef struct mq_kernel_ops {
    mq_isa_t isa;
    mq_rows_fn rows;       /* for p->simd weights (the scalar one takes every weight) */
    mq_a8_rows_fn a8_rows; /* NULL: no int8-activation mode */
} mq_kernel_ops_t;

extern const mq_kernel_ops_t mq_kernels_scalar_ops;
extern const mq_kernel_ops_t mq_kernels_avx2_ops;
extern const mq_kernel_ops_t mq_kernels_avx512_ops;

/* The FP16 scales of row o (block b at [b]) as the mq_qweight_t holds them. */
static inline const mq_fp16_t *mq_kscale_ptr(const mq_qpacked_t *p, int o) {
    return p->scales + (size_t)o * (size_t)p->scale_stride;
}

/* The 16 scales of block b of panel q, one per row. */
static inline const mq_fp16_t *mq_panel_scale_ptr(const mq_qpacked_t *p, int q, int b) {
    return p->panel_scales + ((size_t)q * (size_t)p->nb + (size_t)b) * 16;
}

/* The byte holding weight (o, i) in a panel, and the shift to its nibble (MQ_KF_Q4). */
static inline const uint8_t *mq_panel_byte(const mq_qpacked_t *p, int o, int i, int *shift) {
    const uint8_t *panel = p->panel + (size_t)(o >> 4) * p->panel_bytes + 4 * (size_t)(o & 15);
    if (p->fmt == MQ_KF_Q8) {
        *shift = 0;
        return panel + (size_t)(i >> 2) * 64 + (size_t)(i & 3);
    }
    *shift = (i & 4) ? 4 : 0;
    return panel + (size_t)(i >> 3) * 64 + (size_t)(i & 3);
}

#endif
