/* miniquant: what each instruction-set file of the fused kernels provides to the dispatcher
 * (kernels.c). Private to src/quant. */
#ifndef MINIQUANT_KERNELS_ISA_H
#define MINIQUANT_KERNELS_ISA_H

#include <stdint.h>

#include "miniquant/kernels.h"

/* Output rows handled by one call: a multiple of 16 so that every version can reduce a full set
 * of accumulators at once; the threads share these blocks. */
#define MQ_KROWS 32

/* x quantized for the int8-activation mode, built once per forward by kernels.c. Each x row has
 * nblk blocks of 64 columns (the last padded with zeros); block j of row n holds
 *   xq    64 int8 codes, in the lane order of the weight format (mq_a8_pos),
 *   corr  16 int32: -off * (sum of xq[4l .. 4l+3]) for lane l, where off is the offset that
 *         makes the weight codes unsigned for vpdpbusd (8 for 4-bit indices, 128 for int8),
 *   sx    the block's scale, max|x| / 127. */
typedef struct mq_a8 {
    int N, nblk;
    int8_t *xq;    /* N * nblk * 64 */
    int32_t *corr; /* N * nblk * 16 */
    float *sx;     /* N * nblk */
} mq_a8_t;

/* Where column i (0..63) of a block sits in xq. Q4 keeps the order in which one 32-byte load of
 * two chunks expands (low nibbles, then high nibbles): columns 0-15, 32-47, 16-31, 48-63. */
static inline int mq_a8_pos(int q4, int i) {
    if (!q4) return i;
    return (i & 15) | ((i & 16) << 1) | ((i & 32) >> 1);
}

/* y rows [o0, o1) of out (N, OC) for FP32 activations x (N, C). */
typedef void (*mq_rows_fn)(const mq_qpacked_t *p, const float *x, int N, const float *bias,
                           float *y, int o0, int o1);
/* The same from quantized activations. */
typedef void (*mq_a8_rows_fn)(const mq_qpacked_t *p, const mq_a8_t *xa, const float *bias,
                              float *y, int o0, int o1);

typedef struct mq_kernel_ops {
    mq_isa_t isa;
    mq_rows_fn rows;       /* for p->simd weights (the scalar one takes every weight) */
    mq_a8_rows_fn a8_rows; /* NULL: no int8-activation mode */
} mq_kernel_ops_t;

extern const mq_kernel_ops_t mq_kernels_scalar_ops;
extern const mq_kernel_ops_t mq_kernels_avx2_ops;
extern const mq_kernel_ops_t mq_kernels_avx512_ops;

/* The FP16 scales of row o (block b at [b]). */
static inline const mq_fp16_t *mq_kscale_ptr(const mq_qpacked_t *p, int o) {
    return p->scales + (size_t)o * (size_t)p->scale_stride;
}

#endif
