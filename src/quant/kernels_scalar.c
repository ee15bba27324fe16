/* miniquant: the portable scalar fused kernels, the reference the SIMD versions are tested
 * against. The summation order is the one documented in miniquant/kernels.h. */
#include <stddef.h>

#include "kernels_isa.h"
#include "miniquant/fp16.h"

/* The 4-bit index of weight (o, i) (MQ_KF_Q4). */
static inline int weight_index(const mq_qpacked_t *p, int o, int i) {
    int sh;
    uint8_t b = *mq_panel_byte(p, o, i, &sh);
    return b >> sh & 15;
}

/* The signed integer code of weight (o, i) (int grids only). */
static inline int weight_code(const mq_qpacked_t *p, int o, int i) {
    int sh;
    if (p->fmt == MQ_KF_Q8) return (int8_t)*mq_panel_byte(p, o, i, &sh);
    return weight_index(p, o, i) - 8;
}

/* The unscaled value of weight (o, i): code, codebook value or half. */
static inline float weight_value(const mq_qpacked_t *p, int o, int i) {
    switch (p->fmt) {
    case MQ_KF_Q8: return (float)weight_code(p, o, i);
    case MQ_KF_Q4: return p->lut[weight_index(p, o, i)];
    case MQ_KF_F16: return mq_fp16_to_fp32(p->f16[(size_t)o * p->cols + i]);
    default: return p->f32[(size_t)o * p->cols + i];
    }
}

static float block_scale(const mq_qpacked_t *p, int o, int b) {
    if (p->fmt == MQ_KF_F16 || p->fmt == MQ_KF_F32) return 1.0f;
    return mq_fp16_to_fp32(mq_panel_scale_ptr(p, o >> 4, b)[o & 15]);
}

static void scalar_rows(const mq_qpacked_t *p, const float *x, int ldx, int N, const float *bias,
                        float *y, int o0, int o1) {
    // x is (N, C) with rows ldx apart, the weight is (OC, C), y is (N, OC)
    int C = p->cols, OC = p->rows, g = p->group, nb = C / g;
    for (int o = o0; o < o1; o++) {
        for (int n = 0; n < N; n++) {
            const float *xn = x + (size_t)n * ldx;
            float acc = 0.0f;
            for (int b = 0; b < nb; b++) {
                float gsum = 0.0f;
                for (int i = b * g; i < (b + 1) * g; i++)
                    gsum += weight_value(p, o, i) * xn[i];
                acc += block_scale(p, o, b) * gsum;
            }
            y[(size_t)n * OC + o] = acc + (bias ? bias[o] : 0.0f);
        }
    }
}

static void scalar_a8_rows(const mq_qpacked_t *p, const mq_a8_t *xa, const float *bias, float *y,
                           int o0, int o1) {
    int C = p->cols, OC = p->rows, nblk = xa->nblk;
    /* a row-wide scale block spans every 64-column block; otherwise group / 64 of them */
    int per_block = p->group == C ? nblk : p->group / 64;
    for (int o = o0; o < o1; o++) {
        for (int n = 0; n < xa->N; n++) {
            float acc = 0.0f;
            for (int b = 0; b * per_block < nblk; b++) {
                float gsum = 0.0f;
                for (int j = b * per_block; j < (b + 1) * per_block; j++) {
                    const int8_t *xq = xa->xq + ((size_t)n * nblk + j) * 64;
                    int32_t dot = 0;
                    for (int i = 0; i < 64 && j * 64 + i < C; i++)
                        dot += weight_code(p, o, j * 64 + i) * xq[i];
                    gsum += xa->sx[(size_t)n * nblk + j] * (float)dot;
                }
                acc += block_scale(p, o, b) * gsum;
            }
            y[(size_t)n * OC + o] = acc + (bias ? bias[o] : 0.0f);
        }
    }
}

const mq_kernel_ops_t mq_kernels_scalar_ops = {MQ_ISA_SCALAR, scalar_rows, scalar_a8_rows};
