/* miniquant: ggml's block formats, dequantized (blocks.h). Every value is computed with the
 * operations of ggml's dequantize_row_* in their order: an FP16 d and m are widened exactly, an
 * integer code is converted to float, and products and sums are rounded where ggml's are. */
#include "blocks.h"

#include <string.h>

#include "miniquant/fp16.h"

const int8_t MQ_IQ4_BOOK[16] = {-127, -104, -83, -65, -49, -35, -22, -10,
                                1,    13,   25,  38,  53,  69,  89,  113};

static inline uint32_t u32_at(const uint8_t *p) {
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

void mq_blocks_bf16(const uint8_t *src, int n, float *y) {
    for (int i = 0; i < n; i++) {
        uint32_t bits = (uint32_t)(src[2 * i] | (src[2 * i + 1] << 8)) << 16;
        memcpy(&y[i], &bits, sizeof bits);
    }
}

void mq_blocks_q4_1(const uint8_t *src, int n, float *y) {
    for (int b = 0; b < n / 32; b++, src += MQ_Q4_1_BYTES, y += 32) {
        const float d = mq_blocks_half_at(src), m = mq_blocks_half_at(src + 2);
        const uint8_t *qs = src + 4;
        for (int j = 0; j < 16; j++) {
            const int x0 = qs[j] & 0x0F, x1 = qs[j] >> 4;
            y[j] = x0 * d + m;
            y[j + 16] = x1 * d + m;
        }
    }
}

/* The fifth bits of q5_0 and q5_1: weight j's is bit j of qh. */
static inline void q5_codes(uint32_t qh, const uint8_t *qs, int j, int *x0, int *x1) {
    *x0 = (qs[j] & 0x0F) | (int)(((qh >> j) << 4) & 0x10);
    *x1 = (qs[j] >> 4) | (int)((qh >> (j + 12)) & 0x10);
}

void mq_blocks_q5_0(const uint8_t *src, int n, float *y) {
    for (int b = 0; b < n / 32; b++, src += MQ_Q5_0_BYTES, y += 32) {
        const float d = mq_blocks_half_at(src);
        const uint32_t qh = u32_at(src + 2);
        for (int j = 0; j < 16; j++) {
            int x0, x1;
            q5_codes(qh, src + 6, j, &x0, &x1);
            y[j] = (x0 - 16) * d;
            y[j + 16] = (x1 - 16) * d;
        }
    }
}

void mq_blocks_q5_1(const uint8_t *src, int n, float *y) {
    for (int b = 0; b < n / 32; b++, src += MQ_Q5_1_BYTES, y += 32) {
        const float d = mq_blocks_half_at(src), m = mq_blocks_half_at(src + 2);
        const uint32_t qh = u32_at(src + 4);
        for (int j = 0; j < 16; j++) {
            int x0, x1;
            q5_codes(qh, src + 8, j, &x0, &x1);
            y[j] = x0 * d + m;
            y[j + 16] = x1 * d + m;
        }
    }
}

/* q2_K: each 32 bytes of codes hold 128 weights, four 2-bit planes of 32; the first 16 bytes'
 * plane and the last 16's are sub-blocks of their own. */
void mq_blocks_q2_k(const uint8_t *src, int n, float *y) {
    for (int b = 0; b < n / MQ_QK_K; b++, src += MQ_Q2_K_BYTES) {
        const uint8_t *sc = src, *q = src + 16;
        const float d = mq_blocks_half_at(src + 80), min = mq_blocks_half_at(src + 82);
        int is = 0;
        for (int half = 0; half < 2; half++, q += 32)
            for (int shift = 0; shift < 8; shift += 2)
                for (int part = 0; part < 2; part++) {
                    const uint8_t s = sc[is++];
                    const float dl = d * (s & 0xF), ml = min * (s >> 4);
                    for (int l = 0; l < 16; l++)
                        *y++ = dl * ((int8_t)((q[l + 16 * part] >> shift) & 3)) - ml;
                }
    }
}

/* q3_K's 16 scales: the low 4 bits of scale i from byte i (i < 8) or the high nibble of byte
 * i - 8; its high 2 bits from byte 8 + i % 4, bits 2 (i / 4) and up. */
static void q3_k_scales(const uint8_t *s12, int8_t *sc) {
    for (int i = 0; i < 16; i++) {
        int lo = i < 8 ? s12[i] & 0xF : s12[i - 8] >> 4;
        int hi = (s12[8 + i % 4] >> (2 * (i / 4))) & 3;
        sc[i] = (int8_t)(lo | hi << 4);
    }
}

void mq_blocks_q3_k(const uint8_t *src, int n, float *y) {
    for (int b = 0; b < n / MQ_QK_K; b++, src += MQ_Q3_K_BYTES) {
        const uint8_t *hm = src, *q = src + 32;
        int8_t sc[16];
        q3_k_scales(src + 96, sc);
        const float d_all = mq_blocks_half_at(src + 108);
        uint8_t m = 1;
        int is = 0;
        for (int half = 0; half < 2; half++, q += 32)
            for (int shift = 0; shift < 8; shift += 2, m <<= 1)
                for (int part = 0; part < 2; part++) {
                    const float dl = d_all * (sc[is++] - 32);
                    for (int l = 16 * part; l < 16 * part + 16; l++)
                        *y++ = dl * ((int8_t)((q[l] >> shift) & 3) - ((hm[l] & m) ? 0 : 4));
                }
    }
}

void mq_blocks_k4_scale_min(const uint8_t *q, int j, uint8_t *sc, uint8_t *m) {
    if (j < 4) {
        *sc = q[j] & 63;
        *m = q[j + 4] & 63;
    } else {
        *sc = (uint8_t)((q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4));
        *m = (uint8_t)((q[j + 4] >> 4) | ((q[j] >> 6) << 4));
    }
}

/* q4_K and q5_K: 64 weights per 32 bytes of nibbles, the low nibbles sub-block 2i, the high
 * ones 2i + 1; q5_K's fifth bit of weight l of sub-block k is bit k of qh[l]. */
static void k_blocks(const uint8_t *src, int n, float *y, int five) {
    size_t bytes = five ? MQ_Q5_K_BYTES : MQ_Q4_K_BYTES;
    for (int b = 0; b < n / MQ_QK_K; b++, src += bytes) {
        const float d = mq_blocks_half_at(src), min = mq_blocks_half_at(src + 2);
        const uint8_t *scales = src + 4, *qh = src + 16, *ql = src + (five ? 48 : 16);
        for (int k = 0; k < 8; k += 2, ql += 32) {
            uint8_t sc, m;
            mq_blocks_k4_scale_min(scales, k, &sc, &m);
            const float d1 = d * sc, m1 = min * m;
            mq_blocks_k4_scale_min(scales, k + 1, &sc, &m);
            const float d2 = d * sc, m2 = min * m;
            for (int l = 0; l < 32; l++)
                *y++ = d1 * ((ql[l] & 0xF) + (five && (qh[l] >> k & 1) ? 16 : 0)) - m1;
            for (int l = 0; l < 32; l++)
                *y++ = d2 * ((ql[l] >> 4) + (five && (qh[l] >> (k + 1) & 1) ? 16 : 0)) - m2;
        }
    }
}

void mq_blocks_q4_k(const uint8_t *src, int n, float *y) {
    k_blocks(src, n, y, 0);
}

void mq_blocks_q5_k(const uint8_t *src, int n, float *y) {
    k_blocks(src, n, y, 1);
}

/* q6_K: per 128 weights 64 bytes of low nibbles and 32 of high pairs; weight l + 32 k of the
 * 128 (k < 4) takes nibble k / 2 of ql[l + 32 (k % 2)] and bits 2k of qh[l]; scale
 * 8 h + l / 16 + 2 k. */
void mq_blocks_q6_k(const uint8_t *src, int n, float *y) {
    for (int b = 0; b < n / MQ_QK_K; b++, src += MQ_Q6_K_BYTES) {
        const float d = mq_blocks_half_at(src + 208);
        const uint8_t *ql = src, *qh = src + 128;
        const int8_t *sc = (const int8_t *)(src + 192);
        for (int h = 0; h < 2; h++, y += 128, ql += 64, qh += 32, sc += 8)
            for (int l = 0; l < 32; l++) {
                const int is = l / 16;
                const int8_t q1 = (int8_t)((ql[l] & 0xF) | (((qh[l] >> 0) & 3) << 4)) - 32;
                const int8_t q2 = (int8_t)((ql[l + 32] & 0xF) | (((qh[l] >> 2) & 3) << 4)) - 32;
                const int8_t q3 = (int8_t)((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32;
                const int8_t q4 = (int8_t)((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32;
                y[l] = d * sc[is] * q1;
                y[l + 32] = d * sc[is + 2] * q2;
                y[l + 64] = d * sc[is + 4] * q3;
                y[l + 96] = d * sc[is + 6] * q4;
            }
    }
}

/* ---------------------------------------------------------------------------------------------
 * K-quant super-blocks as unsigned codes with a scale and a min per 16 weights (blocks.h) */

void mq_blocks_unsigned_q2_k(const uint8_t *blk, uint8_t *u, float *S, float *M) {
    const float d = mq_blocks_half_at(blk + 80), min = mq_blocks_half_at(blk + 82);
    const uint8_t *q = blk + 16;
    for (int j = 0; j < 16; j++) { /* sub-block j: half j / 8, plane (j / 2) % 4, part j % 2 */
        S[j] = d * (float)(blk[j] & 0xF);
        M[j] = min * (float)(blk[j] >> 4);
        const uint8_t *qj = q + 32 * (j / 8) + 16 * (j % 2);
        for (int l = 0; l < 16; l++)
            u[16 * j + l] = (uint8_t)((qj[l] >> (2 * ((j / 2) % 4))) & 3);
    }
}

void mq_blocks_unsigned_q3_k(const uint8_t *blk, uint8_t *u, float *S, float *M) {
    const uint8_t *hm = blk, *q = blk + 32;
    int8_t sc[16];
    q3_k_scales(blk + 96, sc);
    const float d = mq_blocks_half_at(blk + 108);
    for (int j = 0; j < 16; j++) {
        S[j] = d * (float)(sc[j] - 32);
        M[j] = 4.0f * S[j];
        int plane = (j / 2) % 4, off = 16 * (j % 2);
        uint8_t bit = (uint8_t)(1u << (4 * (j / 8) + plane));
        for (int l = 0; l < 16; l++) {
            int c = (q[32 * (j / 8) + off + l] >> (2 * plane)) & 3;
            u[16 * j + l] = (uint8_t)(c + ((hm[off + l] & bit) ? 4 : 0));
        }
    }
}

static void unsigned_k45(const uint8_t *blk, uint8_t *u, float *S, float *M, int five) {
    const float d = mq_blocks_half_at(blk), min = mq_blocks_half_at(blk + 2);
    const uint8_t *qh = blk + 16, *ql = blk + (five ? 48 : 16);
    for (int k = 0; k < 8; k++) { /* sub-block k of 32: nibble k % 2 of bytes 32 (k / 2) .. */
        uint8_t sc, m;
        mq_blocks_k4_scale_min(blk + 4, k, &sc, &m);
        S[2 * k] = S[2 * k + 1] = d * (float)sc;
        M[2 * k] = M[2 * k + 1] = min * (float)m;
        for (int l = 0; l < 32; l++) {
            int c = (ql[32 * (k / 2) + l] >> (4 * (k % 2))) & 0xF;
            u[32 * k + l] = (uint8_t)(c + (five && (qh[l] >> k & 1) ? 16 : 0));
        }
    }
}

void mq_blocks_unsigned_q4_k(const uint8_t *blk, uint8_t *u, float *S, float *M) {
    unsigned_k45(blk, u, S, M, 0);
}

void mq_blocks_unsigned_q5_k(const uint8_t *blk, uint8_t *u, float *S, float *M) {
    unsigned_k45(blk, u, S, M, 1);
}

void mq_blocks_unsigned_q6_k(const uint8_t *blk, uint8_t *u, float *S, float *M) {
    const float d = mq_blocks_half_at(blk + 208);
    const int8_t *sc = (const int8_t *)(blk + 192);
    for (int j = 0; j < 16; j++) {
        S[j] = d * (float)sc[j];
        M[j] = 32.0f * S[j];
    }
    for (int h = 0; h < 2; h++) /* weight 128 h + 32 k + l as mq_blocks_q6_k reads it */
        for (int k = 0; k < 4; k++)
            for (int l = 0; l < 32; l++) {
                const uint8_t *ql = blk + 64 * h, *qh = blk + 128 + 32 * h;
                int lo = (ql[l + 32 * (k % 2)] >> (4 * (k / 2))) & 0xF;
                u[128 * h + 32 * k + l] = (uint8_t)(lo | ((qh[l] >> (2 * k)) & 3) << 4);
            }
}

void mq_blocks_iq4_nl(const uint8_t *src, int n, float *y) {
    for (int b = 0; b < n / 32; b++, src += MQ_IQ4_NL_BYTES, y += 32) {
        const float d = mq_blocks_half_at(src);
        for (int j = 0; j < 16; j++) {
            y[j] = d * MQ_IQ4_BOOK[src[2 + j] & 0xf];
            y[j + 16] = d * MQ_IQ4_BOOK[src[2 + j] >> 4];
        }
    }
}

void mq_blocks_iq4_xs(const uint8_t *src, int n, float *y) {
    for (int b = 0; b < n / MQ_QK_K; b++, src += MQ_IQ4_XS_BYTES) {
        const float d = mq_blocks_half_at(src);
        const unsigned scales_h = (unsigned)(src[2] | (src[3] << 8));
        const uint8_t *scales_l = src + 4, *qs = src + 8;
        for (int ib = 0; ib < 8; ib++, y += 32, qs += 16) {
            const int ls = ((scales_l[ib / 2] >> 4 * (ib % 2)) & 0xf) |
                           (int)(((scales_h >> 2 * ib) & 3) << 4);
            const float dl = d * (ls - 32);
            for (int j = 0; j < 16; j++) {
                y[j] = dl * MQ_IQ4_BOOK[qs[j] & 0xf];
                y[j + 16] = dl * MQ_IQ4_BOOK[qs[j] >> 4];
            }
        }
    }
}
