/* miniquant: the portable scalar kernels, the reference the SIMD versions are tested against.
 * They read any format through its row (values_row, block_scale); the summation order is the
 * one documented in miniquant/kernels.h, and every product is rounded before it is added (no
 * fused multiply-add), so the reference is the same on every compiler and CPU. */
#include <math.h>
#include <stddef.h>
#include <stdlib.h>

#include "kernels_isa.h"
#include "miniquant/fp16.h"

/* GCC would otherwise fuse a product with the sum it is added to (its default for GNU C); clang
 * fuses only within one expression, which the separate statements below rule out. */
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC optimize("fp-contract=off")
#endif

/* y[n * OC + o] for x rows n < N (ldx apart), rows [o0, o1). */
static void reference(const mq_qweight_t *w, const float *x, int ldx, int N, float *y, int o0,
                      int o1) {
    int C = w->cols, OC = w->rows, g = w->group, nb = C / g;
    const mq_format_t *f = w->format;
    float *v = malloc((size_t)C * sizeof *v);
    if (!v) { /* out of memory: outputs that cannot pass for results */
        for (int n = 0; n < N; n++)
            for (int o = o0; o < o1; o++)
                y[(size_t)n * OC + o] = NAN;
        return;
    }
    for (int o = o0; o < o1; o++) {
        const uint8_t *row = w->data + (size_t)o * w->row_bytes;
        const mq_fp16_t *sc = mq_qweight_row_scales(w, o);
        f->values_row(row, &w->scheme, C, v);
        for (int n = 0; n < N; n++) {
            const float *xn = x + (size_t)n * ldx;
            float acc = 0.0f;
            for (int b = 0; b < nb; b++) {
                float gsum = 0.0f;
                for (int i = b * g; i < (b + 1) * g; i++) {
                    float prod = v[i] * xn[i];
                    gsum += prod;
                }
                float scaled = f->block_scale(row, sc, g, b) * gsum;
                acc += scaled;
            }
            y[(size_t)n * OC + o] = acc;
        }
    }
    free(v);
}

void mq_kscalar_dot(const mq_qweight_t *w, const float *x, float *y, int o0, int o1) {
    reference(w, x, w->cols, 1, y, o0, o1);
}

void mq_kscalar_gemm(const mq_qweight_t *w, const float *x, int ldx, int N, float *y, int o0,
                     int o1) {
    reference(w, x, ldx, N, y, o0, o1);
}

void mq_kscalar_a8(const mq_qweight_t *w, const mq_a8_t *xa, float *y, int o0, int o1,
                   void *scratch) {
    (void)scratch;
    int C = w->cols, OC = w->rows, nblk = xa->nblk, g = w->group, nb = C / g;
    int per = g / MQ_QBLOCK; /* 32-column blocks per scale block */
    const mq_format_t *f = w->format;
    float *v = malloc((size_t)C * sizeof *v);
    if (!v) {
        for (int n = 0; n < xa->N; n++)
            for (int o = o0; o < o1; o++)
                y[(size_t)n * OC + o] = NAN;
        return;
    }
    for (int o = o0; o < o1; o++) {
        const uint8_t *row = w->data + (size_t)o * w->row_bytes;
        const mq_fp16_t *sc = mq_qweight_row_scales(w, o);
        f->values_row(row, &w->scheme, C, v); /* the integer codes, as floats */
        for (int n = 0; n < xa->N; n++) {
            float acc = 0.0f;
            for (int b = 0; b < nb; b++) {
                float gsum = 0.0f;
                for (int j = b * per; j < (b + 1) * per; j++) {
                    const int8_t *xq = xa->xq + ((size_t)n * nblk + j) * MQ_QBLOCK;
                    int32_t dot = 0;
                    for (int i = 0; i < MQ_QBLOCK; i++)
                        dot += (int32_t)v[j * MQ_QBLOCK + i] * xq[i];
                    float part = xa->sx[(size_t)n * nblk + j] * (float)dot;
                    gsum += part;
                }
                float scaled = f->block_scale(row, sc, g, b) * gsum;
                acc += scaled;
            }
            y[(size_t)n * OC + o] = acc;
        }
    }
    free(v);
}

void mq_kscalar_a8_unsigned(const mq_qweight_t *w, const mq_a8_t *xa, float *y, int o0, int o1,
                            void *scratch) {
    (void)scratch;
    int C = w->cols, OC = w->rows, nblk = xa->nblk, B = w->format->block;
    size_t bb = w->format->block_bytes;
    uint8_t u[256];
    float S[16], M[16];
    for (int o = o0; o < o1; o++) {
        const uint8_t *row = w->data + (size_t)o * w->row_bytes;
        for (int n = 0; n < xa->N; n++)
            y[(size_t)n * OC + o] = 0.0f;
        for (int b = 0; b < C / B; b++) {
            w->format->unsigned_block(row + (size_t)b * bb, u, S, M);
            for (int n = 0; n < xa->N; n++) {
                float acc = y[(size_t)n * OC + o];
                for (int j = 0; j < B / 16; j++) {
                    size_t k = (size_t)n * nblk + (size_t)(b * B + 16 * j) / MQ_QBLOCK;
                    const int8_t *xq = xa->xq + (size_t)n * nblk * MQ_QBLOCK + b * B + 16 * j;
                    int32_t dot = 0;
                    for (int i = 0; i < 16; i++)
                        dot += (int32_t)u[16 * j + i] * xq[i];
                    float su = S[j] * (float)dot;
                    float mx = M[j] * (float)xa->xsum16[2 * k + (j & 1)];
                    float part = su - mx;
                    float scaled = xa->sx[k] * part;
                    acc += scaled;
                }
                y[(size_t)n * OC + o] = acc;
            }
        }
    }
}

void mq_kvalues_dot(const mq_qweight_t *w, const float *x, float *y, int o0, int o1,
                    float (*dot)(const float *v, const float *x, int n)) {
    int C = w->cols;
    float stack[4096], *v = C <= 4096 ? stack : malloc((size_t)C * sizeof *v);
    if (!v || w->group != C) { /* scale blocks inside the row, or no memory: the reference */
        if (v && v != stack) free(v);
        mq_kscalar_dot(w, x, y, o0, o1);
        return;
    }
    for (int o = o0; o < o1; o++) {
        const uint8_t *row = w->data + (size_t)o * w->row_bytes;
        w->format->values_row(row, &w->scheme, C, v);
        y[o] = w->format->block_scale(row, mq_qweight_row_scales(w, o), C, 0) * dot(v, x, C);
    }
    if (v != stack) free(v);
}
