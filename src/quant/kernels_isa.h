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

/* Weight bytes are requested this far ahead of their use by the decode kernels: the hardware
 * prefetcher stops at page boundaries, and a decode streams every byte once. */
#define MQ_PF_BYTES 4096

/* The line to prefetch for a row read in a group of WR consecutive rows, at byte pos of WR
 * parallel streams: MQ_PF_BYTES further along the same row, or, past its end, at the same place
 * in the row WR below (the next group's), so a group starts warm. */
static inline const char *mq_prefetch_at(const void *row, size_t pos, size_t row_bytes, int WR) {
    size_t off = pos + MQ_PF_BYTES;
    if (off >= row_bytes) off += (size_t)(WR - 1) * row_bytes;
    return (const char *)row + off;
}

/* That line into L1 (the int8-activation kernels and the 4-bit and K-quant ones), or into L2
 * (the FP32-activation kernels of F32, F16 and Q8_0 rows). Measured with bench serve tg on an
 * AMD EPYC (family 25, 2 threads, 6 pairs in turns, the AVX-512 kernels): into L2, F32, F16 and
 * Q8_0 decode GPT-2-small's weights from DRAM 1.15x, 1.59x and 1.30x as fast as into L1, while
 * MiniGPT's, in the last-level cache, run 1.42x, 0.95x and 0.80x; the int8-activation kernels
 * lose with it (Q4_0 on GPT-2-small about 0.75x) and keep L1. */
static inline void mq_prefetch_rows(const void *row, size_t pos, size_t row_bytes, int WR) {
    __builtin_prefetch(mq_prefetch_at(row, pos, row_bytes, WR), 0, 3);
}
static inline void mq_prefetch_rows_l2(const void *row, size_t pos, size_t row_bytes, int WR) {
    __builtin_prefetch(mq_prefetch_at(row, pos, row_bytes, WR), 0, 2);
}

/* Every line of a block of `bytes` at pos (mq_prefetch_rows): ggml's K-quant blocks are 84 to
 * 210 bytes, and one request per block left most of their lines to the hardware (GPT-2-small's
 * Q6_K generation 1.53x as fast with every line requested, Q4_K 1.40x, Q5_K 1.22x: bench serve,
 * AMD EPYC family 25). */
static inline void mq_prefetch_block(const void *row, size_t pos, size_t bytes, size_t row_bytes,
                                     int WR) {
    for (size_t l = 0; l < bytes; l += 64)
        mq_prefetch_rows(row, pos + l, row_bytes, WR);
}

/* ggml's K-quant block scales as floats, decoded once per block by every version's kernels
 * (f16tab: mq_fp16_table). Q4_K and Q5_K: the 8 sub-blocks' d sc and dmin m from the 6-bit
 * scales and mins packed in 12 bytes. */
static inline void mq_kq45_scales(const uint8_t *blk, const float *f16tab, float *ds, float *dm) {
    uint16_t hd, hm;
    memcpy(&hd, blk, 2);
    memcpy(&hm, blk + 2, 2);
    const float d = f16tab[hd], dmin = f16tab[hm];
    const uint8_t *qs = blk + 4; /* 8 6-bit scales and mins in 12 bytes */
    for (int j = 0; j < 4; j++) {
        ds[j] = d * (float)(qs[j] & 63);
        dm[j] = dmin * (float)(qs[j + 4] & 63);
        ds[j + 4] = d * (float)((qs[j + 8] & 0xF) | ((qs[j] >> 6) << 4));
        dm[j + 4] = dmin * (float)((qs[j + 8] >> 4) | ((qs[j + 4] >> 6) << 4));
    }
}

/* Q2_K (three = 0) and Q3_K: the 16 sub-blocks' scales, d sc (Q3_K: d (sc - 32), its 6-bit
 * scales packed in 12 bytes) and Q2_K's mins dmin m; returns the block's 2-bit planes. */
static inline const uint8_t *mq_kq23_scales(const uint8_t *blk, int three, const float *f16tab,
                                            float *ds, float *dm) {
    if (three) {
        uint16_t hd;
        memcpy(&hd, blk + 108, 2);
        const float d = f16tab[hd];
        const uint8_t *s12 = blk + 96;
        for (int i = 0; i < 16; i++) {
            int lo = i < 8 ? s12[i] & 0xF : s12[i - 8] >> 4;
            int hi = (s12[8 + i % 4] >> (2 * (i / 4))) & 3;
            ds[i] = d * (float)((lo | hi << 4) - 32);
        }
        return blk + 32;
    }
    uint16_t hd, hmn;
    memcpy(&hd, blk + 80, 2);
    memcpy(&hmn, blk + 82, 2);
    const float d = f16tab[hd], dmin = f16tab[hmn];
    for (int i = 0; i < 16; i++) {
        ds[i] = d * (float)(blk[i] & 0xF);
        dm[i] = dmin * (float)(blk[i] >> 4);
    }
    return blk + 16;
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
void mq_kavx2_dot_q2_k(const mq_qweight_t *w, const float *x, float *y, int o0, int o1);
void mq_kavx2_dot_q3_k(const mq_qweight_t *w, const float *x, float *y, int o0, int o1);
void mq_kavx2_dot_q4_k(const mq_qweight_t *w, const float *x, float *y, int o0, int o1);
void mq_kavx2_dot_q5_k(const mq_qweight_t *w, const float *x, float *y, int o0, int o1);
void mq_kavx2_dot_q6_k(const mq_qweight_t *w, const float *x, float *y, int o0, int o1);
/* int8 activations for one x row at a time (a8_dot), through vpmaddubsw and vpmaddwd */
void mq_kavx2_a8_q4_0(const mq_qweight_t *w, const mq_a8_t *xa, float *y, int o0, int o1,
                      void *scratch);
void mq_kavx2_a8_q2_k(const mq_qweight_t *w, const mq_a8_t *xa, float *y, int o0, int o1,
                      void *scratch);
void mq_kavx2_a8_q3_k(const mq_qweight_t *w, const mq_a8_t *xa, float *y, int o0, int o1,
                      void *scratch);
void mq_kavx2_a8_q4_k(const mq_qweight_t *w, const mq_a8_t *xa, float *y, int o0, int o1,
                      void *scratch);
void mq_kavx2_a8_q5_k(const mq_qweight_t *w, const mq_a8_t *xa, float *y, int o0, int o1,
                      void *scratch);
void mq_kavx2_a8_q6_k(const mq_qweight_t *w, const mq_a8_t *xa, float *y, int o0, int o1,
                      void *scratch);
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
