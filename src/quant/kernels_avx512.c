/* miniquant: the AVX-512 fused kernels (AVX512 F/BW/VL/DQ; the int8-activation ones also VNNI).
 *
 * Every function carries its own target attribute, so a portable build holds these kernels and
 * the dispatcher runs them only on a CPU that has the instructions. They read the weight's
 * stored rows (quant.h) as they are.
 *
 * One x row (decode): per output row 16-lane partial sums over the columns, 4 rows sharing each
 * load of x, 16 rows reduced together at the end; each row's bytes are requested ahead, and
 * past a row's end the next group's (mq_prefetch_rows). Halves are converted 16 at a time; ggml's
 * Q8_0 blocks sign-extend their 32 codes, Q4_0 blocks widen their 16 bytes to 16 lanes whose
 * low and (shifted) high nibbles index the 16 codes (vpermps), and the block's sum is scaled by
 * d read from a table of every half's float (mq_fp16_table); miniquant's 4-bit packed codes
 * (two per byte, in column order) are read the same way against x de-interleaved once per call
 * (even columns, then odd), the grid's table being u - 8 (int) or the codebook, times the
 * group's scale.
 *
 * Several x rows (prompt): F16 runs tiles of 2 output rows x up to 8 x rows on row-major
 * halves. Q8_0, Q4_0 and 4-bit packed rows are read 16 output rows at a time through a byte
 * panel: their bytes transposed (byte j of the 16 rows side by side) with the rows' block
 * scales beside them, each column widened and looked up in the tile; x is laid out column by
 * column once per tile. Other grids go through a float panel (unscaled values column by column,
 * one lane per row). Either way each output is one FMA chain over the columns of v * s against
 * x broadcast, up to 16 x rows a tile, and a last single x row runs four chains per scale
 * block: the same sums, bit for bit, whichever panel.
 *
 * Int8 activations (VNNI): vpdpbusd multiplies unsigned by signed bytes, so Q8_0 codes enter
 * with an offset of 128 and Q4_0 nibbles as they are (code + 8); the offset times the sum of
 * the block's activations starts the block's integer sum. One x row: two blocks a vector, four
 * rows sharing the x side. Several: 16 rows' codes transposed once into an int8 panel (one lane
 * per row, 4 columns a dword) in the thread's scratch, then every x row runs 8 vpdpbusd a
 * block against it. */
#include <immintrin.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "blocks.h"
#include "kernels_isa.h"
#include "kernels_x86.h"

#define T512 __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,fma,f16c")))
#define T512V __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,avx512vnni,fma,f16c")))
#define INLINE static inline __attribute__((always_inline))

/* Lane k of the result is the sum of the 16 lanes of v[k]. */
INLINE T512 __m512 hsum16(const __m512 *v) {
    __m512 t[8], u[4], w[2];
    for (int i = 0; i < 8; i++) /* per 128-bit lane: [a0+a2, b0+b2, a1+a3, b1+b3] */
        t[i] = _mm512_add_ps(_mm512_unpacklo_ps(v[2 * i], v[2 * i + 1]),
                             _mm512_unpackhi_ps(v[2 * i], v[2 * i + 1]));
    for (int i = 0; i < 4; i++) { /* per 128-bit lane: the four inputs' lane sums */
        __m512d a = _mm512_castps_pd(t[2 * i]), b = _mm512_castps_pd(t[2 * i + 1]);
        u[i] = _mm512_add_ps(_mm512_castpd_ps(_mm512_unpacklo_pd(a, b)),
                             _mm512_castpd_ps(_mm512_unpackhi_pd(a, b)));
    }
    for (int i = 0; i < 2; i++)
        w[i] = _mm512_add_ps(_mm512_shuffle_f32x4(u[2 * i], u[2 * i + 1], _MM_SHUFFLE(2, 0, 2, 0)),
                             _mm512_shuffle_f32x4(u[2 * i], u[2 * i + 1], _MM_SHUFFLE(3, 1, 3, 1)));
    return _mm512_add_ps(_mm512_shuffle_f32x4(w[0], w[1], _MM_SHUFFLE(2, 0, 2, 0)),
                         _mm512_shuffle_f32x4(w[0], w[1], _MM_SHUFFLE(3, 1, 3, 1)));
}

/* The dot kernels over 16 rows at a time: 4 rows per call of the row functions (lut: the 4-bit
 * formats' values, unused by the others), then one reduction of the 16. */
typedef void (*rows_fn)(const mq_qweight_t *p, int WR, int o, const float *x, __m512 lut,
                        __m512 *v);

#define ROWS_FN(NAME, CALL)                                                                        \
    static T512 void NAME(const mq_qweight_t *p, int WR, int o, const float *x, __m512 lut,        \
                          __m512 *v) {                                                             \
        (void)lut;                                                                                 \
        if (WR == 4)                                                                               \
            CALL(4);                                                                               \
        else                                                                                       \
            CALL(1);                                                                               \
    }
INLINE T512 void dot_16s(const mq_qweight_t *p, rows_fn fn, __m512 lut, const float *x, float *y,
                         int o0, int o1) {
    __m512 v[16];
    float t[16];
    for (int o = o0; o < o1; o += 16) {
        int cnt = o1 - o < 16 ? o1 - o : 16, k = 0;
        for (; k + 4 <= cnt; k += 4)
            fn(p, 4, o + k, x, lut, v + k);
        for (; k < cnt; k++)
            fn(p, 1, o + k, x, lut, v + k);
        for (; k < 16; k++)
            v[k] = _mm512_setzero_ps();
        _mm512_storeu_ps(t, hsum16(v));
        for (k = 0; k < cnt; k++)
            y[o + k] = t[k];
    }
}

/* ---------------------------------------------------------------------------------------------
 * halves, row-major */

/* Halves 16h .. 16h+15 of a row. */
INLINE T512 __m512 h16(const mq_fp16_t *row, int h) {
    return _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(row + (size_t)h * 16)));
}

/* The same for a row's last, partial 16 (lanes outside m are 0, nothing past the row is read). */
INLINE T512 __m512 h16_tail(const mq_fp16_t *row, int h, __mmask16 m) {
    return _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(m, row + (size_t)h * 16));
}

/* Weights 16h .. 16h+15 of a row of halves (half) or floats, as floats. */
INLINE T512 __m512 w16(const void *row, int half, int h) {
    return half ? h16(row, h) : _mm512_loadu_ps((const float *)row + (size_t)h * 16);
}
INLINE T512 __m512 w16_tail(const void *row, int half, int h, __mmask16 m) {
    return half ? h16_tail(row, h, m)
                : _mm512_maskz_loadu_ps(m, (const float *)row + (size_t)h * 16);
}

/* v[w] = unreduced 16 lanes of row (o + w)'s dot product with x, w < WR, for rows of halves
 * (half) or floats. Each 16 of x is loaded once for the WR rows (x is read from cache 4 bytes
 * per weight otherwise); two chains per row. */
INLINE T512 void float_rows(const mq_qweight_t *p, int half, int WR, int o, const float *x,
                            __m512 *v) {
    int C = p->cols, nh = C / 16, tail = C % 16;
    size_t es = half ? sizeof(mq_fp16_t) : sizeof(float), rb = (size_t)C * es;
    const char *row[4];
    __m512 g0[4], g1[4];
#pragma GCC unroll 4
    for (int w = 0; w < WR; w++) {
        row[w] = (const char *)p->data + (size_t)(o + w) * rb;
        g0[w] = g1[w] = _mm512_setzero_ps();
    }
    int h = 0;
    for (; h + 2 <= nh; h += 2) {
        __m512 x0 = _mm512_loadu_ps(x + 16 * h), x1 = _mm512_loadu_ps(x + 16 * h + 16);
        __asm__("" : "+v"(x0), "+v"(x1)); /* one load for every row (see tile16) */
#pragma GCC unroll 4
        for (int w = 0; w < WR; w++) {
            mq_prefetch_rows_l2(row[w], (size_t)h * 16 * es, rb, WR);
            if (!half) /* 128 bytes of floats a step: both lines */
                mq_prefetch_rows_l2(row[w], (size_t)h * 16 * es + 64, rb, WR);
            g0[w] = _mm512_fmadd_ps(w16(row[w], half, h), x0, g0[w]);
            g1[w] = _mm512_fmadd_ps(w16(row[w], half, h + 1), x1, g1[w]);
        }
    }
    if (h < nh) {
        __m512 x0 = _mm512_loadu_ps(x + 16 * h);
#pragma GCC unroll 4
        for (int w = 0; w < WR; w++)
            g0[w] = _mm512_fmadd_ps(w16(row[w], half, h), x0, g0[w]);
        h++;
    }
    if (tail) {
        __mmask16 m = (__mmask16)((1u << tail) - 1);
        __m512 x0 = _mm512_maskz_loadu_ps(m, x + 16 * h);
#pragma GCC unroll 4
        for (int w = 0; w < WR; w++)
            g1[w] = _mm512_fmadd_ps(w16_tail(row[w], half, h, m), x0, g1[w]);
    }
#pragma GCC unroll 4
    for (int w = 0; w < WR; w++)
        v[w] = _mm512_add_ps(g0[w], g1[w]);
}

#define F16_CALL(WR) float_rows(p, 1, WR, o, x, v)
#define F32_CALL(WR) float_rows(p, 0, WR, o, x, v)
ROWS_FN(rows_f16, F16_CALL)
ROWS_FN(rows_f32, F32_CALL)

/* One 16 of the tile: WR rows' weights against R x rows. */
INLINE T512 void tile16(int WR, int R, __m512 wv[2], const float *x, int ldx, int h, __mmask16 m,
                        int masked, __m512 acc[2][8]) {
#pragma GCC unroll 8
    for (int r = 0; r < R; r++) {
        const float *xr = x + (size_t)r * ldx + 16 * h;
        __m512 xv = masked ? _mm512_maskz_loadu_ps(m, xr) : _mm512_loadu_ps(xr);
        /* keeps x in a register for every weight row: folded into each FMA instead, its loads
         * (one 64-byte load per cycle) would bound the tile below the FMA rate */
        __asm__("" : "+v"(xv));
#pragma GCC unroll 2
        for (int w = 0; w < WR; w++)
            acc[w][r] = _mm512_fmadd_ps(wv[w], xv, acc[w][r]);
    }
}

/* v[w * 8 + r] = unreduced dot product of weight row o + w with x row r (x: the tile's first
 * row; rows ldx apart). */
INLINE T512 void f16_tile(const mq_qweight_t *p, int WR, int R, const float *x, int ldx, int o,
                          __m512 *v) {
    int C = p->cols, nh = C / 16, tail = C % 16;
    const mq_fp16_t *row[2];
    __m512 acc[2][8], wv[2];
#pragma GCC unroll 2
    for (int w = 0; w < WR; w++) {
        row[w] = (const mq_fp16_t *)p->data + (size_t)(o + w) * (size_t)C;
#pragma GCC unroll 8
        for (int r = 0; r < R; r++)
            acc[w][r] = _mm512_setzero_ps();
    }
    int h = 0;
    for (; h < nh; h++) {
#pragma GCC unroll 2
        for (int w = 0; w < WR; w++)
            wv[w] = h16(row[w], h);
        tile16(WR, R, wv, x, ldx, h, 0, 0, acc);
    }
    if (tail) {
        __mmask16 m = (__mmask16)((1u << tail) - 1);
#pragma GCC unroll 2
        for (int w = 0; w < WR; w++)
            wv[w] = h16_tail(row[w], h, m);
        tile16(WR, R, wv, x, ldx, h, m, 1, acc);
    }
#pragma GCC unroll 2
    for (int w = 0; w < WR; w++)
#pragma GCC unroll 8
        for (int r = 0; r < R; r++)
            v[w * 8 + r] = acc[w][r];
}

typedef void (*tile_fn)(const mq_qweight_t *p, const float *x, int ldx, int o, __m512 *v);
#define TILE_FN(R, WR)                                                                             \
    static T512 void f16_tile_##R##_##WR(const mq_qweight_t *p, const float *x, int ldx, int o,    \
                                         __m512 *v) {                                              \
        f16_tile(p, WR, R, x, ldx, o, v);                                                          \
    }
TILE_FN(1, 1)
TILE_FN(1, 2)
TILE_FN(2, 1)
TILE_FN(2, 2)
TILE_FN(4, 1)
TILE_FN(4, 2)
TILE_FN(8, 1)
TILE_FN(8, 2)
/* [x rows: 1, 2, 4, 8][weight rows: 1, 2] */
static const tile_fn F16_TILES[4][2] = {{f16_tile_1_1, f16_tile_1_2},
                                        {f16_tile_2_1, f16_tile_2_2},
                                        {f16_tile_4_1, f16_tile_4_2},
                                        {f16_tile_8_1, f16_tile_8_2}};

void T512 mq_kavx512_dot_f16(const mq_qweight_t *p, const float *x, float *y, int o0, int o1) {
    dot_16s(p, rows_f16, _mm512_setzero_ps(), x, y, o0, o1);
}

void T512 mq_kavx512_dot_f32(const mq_qweight_t *p, const float *x, float *y, int o0, int o1) {
    dot_16s(p, rows_f32, _mm512_setzero_ps(), x, y, o0, o1);
}

void T512 mq_kavx512_gemm_f16(const mq_qweight_t *p, const float *x, int ldx, int N, float *y,
                              int o0, int o1) {
    // x is (N, C) with rows ldx apart, the weight is (OC, C), y is (N, OC)
    int OC = p->rows;
    __m512 v[16];
    float t[16];
    for (int n0 = 0; n0 < N;) {
        int left = N - n0, ri = left >= 8 ? 3 : left >= 4 ? 2 : left >= 2 ? 1 : 0, R = 1 << ri;
        for (int o = o0; o < o1; o += 2) {
            int WR = o1 - o >= 2 ? 2 : 1;
            for (int k = 0; k < 16; k++)
                v[k] = _mm512_setzero_ps();
            F16_TILES[ri][WR - 1](p, x + (size_t)n0 * ldx, ldx, o, v);
            _mm512_storeu_ps(t, hsum16(v));
            for (int w = 0; w < WR; w++)
                for (int r = 0; r < R; r++)
                    y[(size_t)(n0 + r) * OC + o + w] = t[w * 8 + r];
        }
        n0 += R;
    }
}

/* ---------------------------------------------------------------------------------------------
 * quantized rows, one x row */

/* Q4_0's values, code = nibble - 8, as a table vpermps reads with the low 4 bits of each lane. */
INLINE T512 __m512 q4_lut(void) {
    return _mm512_setr_ps(-8, -7, -6, -5, -4, -3, -2, -1, 0, 1, 2, 3, 4, 5, 6, 7);
}

/* IQ4_NL's values: its codebook, indexed by the nibble (blocks.h). */
INLINE T512 __m512 iq4_lut(void) {
    return _mm512_cvtepi32_ps(
        _mm512_cvtepi8_epi32(_mm_loadu_si128((const __m128i *)(const void *)MQ_IQ4_BOOK)));
}

/* v[w] = unreduced 16 lanes of row (o + w)'s dot product with x, w < WR, for Q8_0 (q8) rows, or
 * Q4_0 and IQ4_NL ones (one layout: d, then 16 bytes of nibbles; lut: the nibble's value). Each
 * block's unscaled sum, then times d: the 16 bytes of nibbles widened to 16 lanes, whose low
 * nibble (weights 0-15) and, shifted, high nibble (weights 16-31) index the table of values;
 * Q8_0's codes sign-extended. d is read from the table of every half's float (mq_fp16_table),
 * a load folded into the multiply-add instead of a broadcast and a conversion per block. */
INLINE T512 void blocks_rows(const mq_qweight_t *p, int q8, int WR, int o, const float *x,
                             __m512 lut, __m512 *v) {
    int nb = p->cols / MQ_QBLOCK;
    size_t bb = p->format->block_bytes;
    const uint8_t *row[4];
    const float *f16tab = mq_fp16_table();
    __m512 a0[4];
#pragma GCC unroll 4
    for (int w = 0; w < WR; w++) {
        row[w] = p->data + (size_t)(o + w) * p->row_bytes;
        a0[w] = _mm512_setzero_ps();
    }
    for (int b = 0; b < nb; b++) {
        __m512 x0 = _mm512_loadu_ps(x + MQ_QBLOCK * b),
               x1 = _mm512_loadu_ps(x + MQ_QBLOCK * b + 16);
        __asm__("" : "+v"(x0), "+v"(x1)); /* one load for every row */
#pragma GCC unroll 4
        for (int w = 0; w < WR; w++) {
            const uint8_t *blk = row[w] + (size_t)b * bb;
            if (q8)
                mq_prefetch_rows_l2(row[w], (size_t)b * bb, p->row_bytes, WR);
            else
                mq_prefetch_rows(row[w], (size_t)b * bb, p->row_bytes, WR);
            uint16_t h;
            memcpy(&h, blk, sizeof h);
            __m512 sum;
            if (q8) {
                __m512 c0 = _mm512_cvtepi32_ps(
                    _mm512_cvtepi8_epi32(_mm_loadu_si128((const __m128i *)(blk + 2))));
                __m512 c1 = _mm512_cvtepi32_ps(
                    _mm512_cvtepi8_epi32(_mm_loadu_si128((const __m128i *)(blk + 18))));
                sum = _mm512_fmadd_ps(c1, x1, _mm512_mul_ps(c0, x0));
            } else {
                __m512i q = _mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i *)(blk + 2)));
                sum = _mm512_fmadd_ps(_mm512_permutexvar_ps(_mm512_srli_epi32(q, 4), lut), x1,
                                      _mm512_mul_ps(_mm512_permutexvar_ps(q, lut), x0));
            }
            /* d from the table: a load folded into the multiply-add, no conversion */
            a0[w] = _mm512_fmadd_ps(_mm512_set1_ps(f16tab[h]), sum, a0[w]);
        }
    }
#pragma GCC unroll 4
    for (int w = 0; w < WR; w++)
        v[w] = a0[w];
}

/* The same for 4-bit packed codes (two per byte, column order) with side scales per group of g
 * columns, g a multiple of 32. xd is x de-interleaved per 32 columns (even columns, then odd):
 * the low nibbles of 16 bytes are the even weights, the high ones the odd. */
INLINE T512 void packed4_rows(const mq_qweight_t *p, int WR, int o, const float *xd, __m512 lut,
                              __m512 *v) {
    int C = p->cols, g = p->group, tensor = p->scheme.gran == MQ_QG_TENSOR;
    const float *f16tab = mq_fp16_table();
    const uint8_t *row[4];
    const mq_fp16_t *sc[4];
    __m512 a0[4];
    const mq_fp16_t *sc0 = mq_qweight_row_scales(p, o);
    size_t sc_step = tensor ? 0 : (size_t)(C / g);
#pragma GCC unroll 4
    for (int w = 0; w < WR; w++) {
        row[w] = p->data + (size_t)(o + w) * p->row_bytes;
        sc[w] = sc0 + (size_t)w * sc_step;
        a0[w] = _mm512_setzero_ps();
    }
    /* each 32 columns' unscaled sum, then times the group's scale (gb: the group of c, counted
     * without a division) */
    for (int c = 0, gb = 0, gnext = g; c < C; c += 32) {
        if (c == gnext) {
            gb += !tensor;
            gnext += g;
        }
        __m512 x0 = _mm512_loadu_ps(xd + c), x1 = _mm512_loadu_ps(xd + c + 16);
        __asm__("" : "+v"(x0), "+v"(x1));
#pragma GCC unroll 4
        for (int w = 0; w < WR; w++) {
            const uint8_t *by = row[w] + c / 2;
            if (!(c & 127)) /* once per 64 bytes */
                mq_prefetch_rows(row[w], (size_t)c / 2, p->row_bytes, WR);
            __m512i q = _mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i *)by));
            __m512 sum = _mm512_fmadd_ps(_mm512_permutexvar_ps(_mm512_srli_epi32(q, 4), lut), x1,
                                         _mm512_mul_ps(_mm512_permutexvar_ps(q, lut), x0));
            a0[w] = _mm512_fmadd_ps(_mm512_set1_ps(f16tab[sc[w][gb]]), sum, a0[w]);
        }
    }
#pragma GCC unroll 4
    for (int w = 0; w < WR; w++)
        v[w] = a0[w];
}

#define Q8_CALL(WR) blocks_rows(p, 1, WR, o, x, lut, v)
#define Q4_CALL(WR) blocks_rows(p, 0, WR, o, x, lut, v)
#define P4_CALL(WR) packed4_rows(p, WR, o, x, lut, v)
ROWS_FN(rows_q8, Q8_CALL)
ROWS_FN(rows_q4, Q4_CALL)
ROWS_FN(rows_p4, P4_CALL)

void T512 mq_kavx512_dot_q8_0(const mq_qweight_t *p, const float *x, float *y, int o0, int o1) {
    dot_16s(p, rows_q8, _mm512_setzero_ps(), x, y, o0, o1);
}

void T512 mq_kavx512_dot_q4_0(const mq_qweight_t *p, const float *x, float *y, int o0, int o1) {
    dot_16s(p, rows_q4, q4_lut(), x, y, o0, o1);
}

void T512 mq_kavx512_dot_iq4_nl(const mq_qweight_t *p, const float *x, float *y, int o0, int o1) {
    dot_16s(p, rows_q4, iq4_lut(), x, y, o0, o1);
}

/* ggml's K-quants, one 256-block of each of WR rows at a time, x as it is.
 *
 * Q4_K and Q5_K: 8 sub-blocks of 32, each with a 6-bit scale and min (d sc, dmin m): a
 * sub-block adds d sc (sum of q x) - dmin m (sum of x); the nibbles of 32 bytes are two
 * sub-blocks (low: 2i, high: 2i + 1), Q5_K's fifth bit of weight l of sub-block k being bit k of
 * qh[l]. Q6_K: two halves of 128, each from 64 bytes of low nibbles and 32 of high bit pairs,
 * codes minus 32, a signed 8-bit scale per 16 weights times d. Bytes are widened 16 at a time
 * and converted to floats. */
INLINE T512 __m512 lo16f(__m256i b) { /* bytes 0..15 as floats (unsigned) */
    return _mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(_mm256_castsi256_si128(b)));
}
INLINE T512 __m512 hi16f(__m256i b) { /* bytes 16..31 */
    return _mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(_mm256_extracti128_si256(b, 1)));
}
INLINE T512 __m512 lo16s(__m256i b) { /* bytes 0..15 as floats (signed) */
    return _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm256_castsi256_si128(b)));
}
INLINE T512 __m512 hi16s(__m256i b) {
    return _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm256_extracti128_si256(b, 1)));
}

/* The first of WR rows from o, their sums started at 0 (v: one 16-lane sum per row). */
INLINE T512 void rows_begin(const mq_qweight_t *p, int WR, int o, const uint8_t **row, __m512 *v) {
    for (int w = 0; w < WR; w++) {
        row[w] = p->data + (size_t)(o + w) * p->row_bytes;
        v[w] = _mm512_setzero_ps();
    }
}

INLINE T512 void k45_rows(const mq_qweight_t *p, int five, int WR, int o, const float *x,
                          __m512 *v) {
    int nb = p->cols / MQ_QK_K;
    const float *f16tab = mq_fp16_table();
    const __m256i m4 = _mm256_set1_epi8(0x0F), sixteen = _mm256_set1_epi8(16);
    const uint8_t *row[4];
    rows_begin(p, WR, o, row, v);
    for (int b = 0; b < nb; b++) {
        const float *xb = x + (size_t)b * MQ_QK_K;
        float ds[4][8], dm[4][8];
        const uint8_t *ql[4];
        __m256i hv[4];
        mq_k45_block_rows(p, five, WR, row, b, f16tab, ds, dm, ql, hv);
        for (int k = 0; k < 8; k += 2) { /* x and its sub-block sums, once for the rows */
            const float *xs = xb + 32 * k;
            __m512 x0 = _mm512_loadu_ps(xs), x1 = _mm512_loadu_ps(xs + 16);
            __m512 x2 = _mm512_loadu_ps(xs + 32), x3 = _mm512_loadu_ps(xs + 48);
            __m512 xa = _mm512_add_ps(x0, x1), xc = _mm512_add_ps(x2, x3);
#pragma GCC unroll 4
            for (int w = 0; w < WR; w++) {
                __m256i q = _mm256_loadu_si256((const __m256i *)(ql[w] + 16 * k));
                __m256i lo = _mm256_and_si256(q, m4);
                __m256i hi = _mm256_and_si256(_mm256_srli_epi16(q, 4), m4);
                if (five) {
                    __mmask32 b0 = _mm256_test_epi8_mask(hv[w], _mm256_set1_epi8((char)(1 << k)));
                    __mmask32 b1 =
                        _mm256_test_epi8_mask(hv[w], _mm256_set1_epi8((char)(1 << (k + 1))));
                    lo = _mm256_mask_add_epi8(lo, b0, lo, sixteen);
                    hi = _mm256_mask_add_epi8(hi, b1, hi, sixteen);
                }
                __m512 s0 = _mm512_fmadd_ps(hi16f(lo), x1, _mm512_mul_ps(lo16f(lo), x0));
                __m512 s1 = _mm512_fmadd_ps(hi16f(hi), x3, _mm512_mul_ps(lo16f(hi), x2));
                v[w] = _mm512_fmadd_ps(_mm512_set1_ps(ds[w][k]), s0, v[w]);
                v[w] = _mm512_fnmadd_ps(_mm512_set1_ps(dm[w][k]), xa, v[w]);
                v[w] = _mm512_fmadd_ps(_mm512_set1_ps(ds[w][k + 1]), s1, v[w]);
                v[w] = _mm512_fnmadd_ps(_mm512_set1_ps(dm[w][k + 1]), xc, v[w]);
            }
        }
    }
}

INLINE T512 void k6_rows(const mq_qweight_t *p, int WR, int o, const float *x, __m512 *v) {
    int nb = p->cols / MQ_QK_K;
    const float *f16tab = mq_fp16_table();
    const __m256i off = _mm256_set1_epi8(32);
    const uint8_t *row[4];
    rows_begin(p, WR, o, row, v);
    for (int b = 0; b < nb; b++) {
        float d[4];
        const uint8_t *blk[4];
#pragma GCC unroll 4
        for (int w = 0; w < WR; w++) {
            blk[w] = row[w] + (size_t)b * MQ_Q6_K_BYTES;
            mq_prefetch_block(row[w], (size_t)b * MQ_Q6_K_BYTES, MQ_Q6_K_BYTES, p->row_bytes, WR);
            uint16_t hd;
            memcpy(&hd, blk[w] + 208, 2);
            d[w] = f16tab[hd];
        }
        for (int h = 0; h < 2; h++) {
            const float *xh = x + (size_t)b * MQ_QK_K + 128 * h;
            __m256i q[4][4];
            float sc[4][8];
#pragma GCC unroll 4
            for (int w = 0; w < WR; w++) { /* the rows' codes of this half, minus 32 */
                const int8_t *s8 = (const int8_t *)(blk[w] + 192) + 8 * h;
                for (int j = 0; j < 8; j++)
                    sc[w][j] = d[w] * (float)s8[j];
                mq_q6_half_codes(blk[w], h, q[w]);
                for (int j = 0; j < 4; j++)
                    q[w][j] = _mm256_sub_epi8(q[w][j], off);
            }
            for (int j = 0; j < 4; j++) { /* weights 32 j .. 32 j + 31 of the half */
                __m512 xa = _mm512_loadu_ps(xh + 32 * j), xe = _mm512_loadu_ps(xh + 32 * j + 16);
#pragma GCC unroll 4
                for (int w = 0; w < WR; w++) {
                    __m512 a = _mm512_mul_ps(lo16s(q[w][j]), xa);
                    __m512 e = _mm512_mul_ps(hi16s(q[w][j]), xe);
                    v[w] = _mm512_fmadd_ps(_mm512_set1_ps(sc[w][2 * j]), a, v[w]);
                    v[w] = _mm512_fmadd_ps(_mm512_set1_ps(sc[w][2 * j + 1]), e, v[w]);
                }
            }
        }
    }
}

#define Q4K_CALL(WR) k45_rows(p, 0, WR, o, x, v)
#define Q5K_CALL(WR) k45_rows(p, 1, WR, o, x, v)
#define Q6K_CALL(WR) k6_rows(p, WR, o, x, v)
ROWS_FN(rows_q4k, Q4K_CALL)
ROWS_FN(rows_q5k, Q5K_CALL)
ROWS_FN(rows_q6k, Q6K_CALL)

void T512 mq_kavx512_dot_q4_k(const mq_qweight_t *p, const float *x, float *y, int o0, int o1) {
    dot_16s(p, rows_q4k, _mm512_setzero_ps(), x, y, o0, o1);
}

void T512 mq_kavx512_dot_q5_k(const mq_qweight_t *p, const float *x, float *y, int o0, int o1) {
    dot_16s(p, rows_q5k, _mm512_setzero_ps(), x, y, o0, o1);
}

void T512 mq_kavx512_dot_q6_k(const mq_qweight_t *p, const float *x, float *y, int o0, int o1) {
    dot_16s(p, rows_q6k, _mm512_setzero_ps(), x, y, o0, o1);
}

/* Q2_K (three = 0) and Q3_K: per 128 weights 32 bytes of 2-bit planes, plane j (shift 2j) of
 * bytes 0..15 and of bytes 16..31 being sub-blocks of 16 with their own scale. Q2_K: 4-bit
 * scale and min per sub-block (d sc q - dmin m); Q3_K: a 6-bit scale minus 32 times d, and the
 * code minus 4 where the weight's bit of hmask (bit 4 h + j of hm[l]) is clear. */
INLINE T512 void k23_rows(const mq_qweight_t *p, int three, int WR, int o, const float *x,
                          __m512 *v) {
    int nb = p->cols / MQ_QK_K;
    const float *f16tab = mq_fp16_table();
    const __m256i m3 = _mm256_set1_epi8(3), four = _mm256_set1_epi8(4);
    const uint8_t *row[4];
    rows_begin(p, WR, o, row, v);
    for (int b = 0; b < nb; b++) {
        float ds[4][16], dm[4][16];
        const uint8_t *qs[4];
        __m256i hm[4];
        mq_k23_block_rows(p, three, WR, row, b, f16tab, ds, dm, qs, hm);
        const float *xb = x + (size_t)b * MQ_QK_K;
        for (int h = 0; h < 2; h++) {
            __m256i qv[4];
#pragma GCC unroll 4
            for (int w = 0; w < WR; w++)
                qv[w] = _mm256_loadu_si256((const __m256i *)(qs[w] + 32 * h));
            for (int j = 0; j < 4; j++) {
                const float *xs = xb + 128 * h + 32 * j;
                __m512 x0 = _mm512_loadu_ps(xs), x1 = _mm512_loadu_ps(xs + 16);
                int is = 8 * h + 2 * j;
#pragma GCC unroll 4
                for (int w = 0; w < WR; w++) {
                    __m256i c = _mm256_and_si256(_mm256_srli_epi16(qv[w], 2 * j), m3);
                    __m512 s0, s1;
                    if (three) {
                        __mmask32 set = _mm256_test_epi8_mask(
                            hm[w], _mm256_set1_epi8((char)(1 << (4 * h + j))));
                        c = _mm256_mask_sub_epi8(c, ~set, c, four);
                        s0 = _mm512_mul_ps(lo16s(c), x0);
                        s1 = _mm512_mul_ps(hi16s(c), x1);
                    } else {
                        s0 = _mm512_mul_ps(lo16f(c), x0);
                        s1 = _mm512_mul_ps(hi16f(c), x1);
                        v[w] = _mm512_fnmadd_ps(_mm512_set1_ps(dm[w][is]), x0, v[w]);
                        v[w] = _mm512_fnmadd_ps(_mm512_set1_ps(dm[w][is + 1]), x1, v[w]);
                    }
                    v[w] = _mm512_fmadd_ps(_mm512_set1_ps(ds[w][is]), s0, v[w]);
                    v[w] = _mm512_fmadd_ps(_mm512_set1_ps(ds[w][is + 1]), s1, v[w]);
                }
            }
        }
    }
}

#define Q2K_CALL(WR) k23_rows(p, 0, WR, o, x, v)
#define Q3K_CALL(WR) k23_rows(p, 1, WR, o, x, v)
ROWS_FN(rows_q2k, Q2K_CALL)
ROWS_FN(rows_q3k, Q3K_CALL)

void T512 mq_kavx512_dot_q2_k(const mq_qweight_t *p, const float *x, float *y, int o0, int o1) {
    dot_16s(p, rows_q2k, _mm512_setzero_ps(), x, y, o0, o1);
}

void T512 mq_kavx512_dot_q3_k(const mq_qweight_t *p, const float *x, float *y, int o0, int o1) {
    dot_16s(p, rows_q3k, _mm512_setzero_ps(), x, y, o0, o1);
}

/* The grid's value of each of the 16 fields of a 4-bit packed weight, read by the format's own
 * row reader. */
INLINE T512 __m512 packed4_lut(const mq_qweight_t *p) {
    static const uint8_t fields[8] = {0x10, 0x32, 0x54, 0x76, 0x98, 0xba, 0xdc, 0xfe};
    float t[16];
    p->format->values_row(fields, &p->scheme, 16, t);
    return _mm512_loadu_ps(t);
}

/* 4-bit packed weights whose groups are whole 32s read x de-interleaved per 32 columns (even
 * columns, then odd), made once per forward; other packed weights read x as it is. */
static int packed_fused(const mq_qweight_t *p) {
    return p->scheme.bits == 4 && p->group % 32 == 0;
}

void T512 mq_kavx512_prep_packed(const mq_qweight_t *p, const float *x, float *xp) {
    int C = p->cols;
    if (!packed_fused(p)) {
        memcpy(xp, x, (size_t)C * sizeof *xp);
        return;
    }
    const __m512i even =
        _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
    const __m512i odd = _mm512_add_epi32(even, _mm512_set1_epi32(1));
    for (int c = 0; c < C; c += 32) {
        __m512 a = _mm512_loadu_ps(x + c), b = _mm512_loadu_ps(x + c + 16);
        _mm512_storeu_ps(xp + c, _mm512_permutex2var_ps(a, even, b));
        _mm512_storeu_ps(xp + c + 16, _mm512_permutex2var_ps(a, odd, b));
    }
}

/* x as mq_kavx512_prep_packed made it: the fused 4-bit path, or the scalar reference. */
void T512 mq_kavx512_dot_packed(const mq_qweight_t *p, const float *x, float *y, int o0, int o1) {
    if (packed_fused(p))
        dot_16s(p, rows_p4, packed4_lut(p), x, y, o0, o1);
    else
        mq_kscalar_dot(p, x, y, o0, o1);
}

/* ---------------------------------------------------------------------------------------------
 * several x rows: panels of 16 rows as floats */

/* 16 rows of 16 floats (rows ld apart) transposed into 16 rows of 16 (16 apart). */
INLINE T512 void transpose16(const float *src, size_t ld, float *dst) {
    __m512 r[16], t[16];
    for (int i = 0; i < 16; i++)
        r[i] = _mm512_loadu_ps(src + (size_t)i * ld);
    for (int i = 0; i < 8; i++) {
        t[2 * i] = _mm512_unpacklo_ps(r[2 * i], r[2 * i + 1]);
        t[2 * i + 1] = _mm512_unpackhi_ps(r[2 * i], r[2 * i + 1]);
    }
    for (int i = 0; i < 4; i++)
        for (int j = 0; j < 2; j++) {
            __m512d a = _mm512_castps_pd(t[4 * i + j]), b = _mm512_castps_pd(t[4 * i + j + 2]);
            r[4 * i + 2 * j] = _mm512_castpd_ps(_mm512_unpacklo_pd(a, b));
            r[4 * i + 2 * j + 1] = _mm512_castpd_ps(_mm512_unpackhi_pd(a, b));
        }
    /* r[4i + k] now holds, in each 128-bit lane l, element k of rows 4i..4i+3 at columns 4l+k */
    for (int i = 0; i < 2; i++)
        for (int k = 0; k < 4; k++) {
            t[8 * i + k] = _mm512_shuffle_f32x4(r[8 * i + k], r[8 * i + 4 + k], 0x88);
            t[8 * i + 4 + k] = _mm512_shuffle_f32x4(r[8 * i + k], r[8 * i + 4 + k], 0xdd);
        }
    for (int k = 0; k < 8; k++) {
        r[k] = _mm512_shuffle_f32x4(t[k], t[8 + k], 0x88);
        r[8 + k] = _mm512_shuffle_f32x4(t[k], t[8 + k], 0xdd);
    }
    /* r[c] is now column c of the block */
    for (int c = 0; c < 16; c++)
        _mm512_storeu_ps(dst + (size_t)c * 16, r[c]);
}

/* 16 rows of 16 bytes transposed into dst (64-byte aligned): dst[16 j + r] = byte j of row r.
 * Four rows a vector (rows k, k + 4, k + 8, k + 12 in its 128-bit lanes), two unpacks leave
 * bytes 4i .. 4i + 3 of four rows per dword, and one dword permute per vector gathers each
 * byte's 16 rows in order. */
INLINE T512 void transpose16x16_bytes_to(const uint8_t *const *src, uint8_t *dst) {
    __m512i z[4], t[4];
    for (int k = 0; k < 4; k++) {
        z[k] = _mm512_castsi128_si512(_mm_loadu_si128((const __m128i *)src[k]));
        z[k] = _mm512_inserti32x4(z[k], _mm_loadu_si128((const __m128i *)src[k + 4]), 1);
        z[k] = _mm512_inserti32x4(z[k], _mm_loadu_si128((const __m128i *)src[k + 8]), 2);
        z[k] = _mm512_inserti32x4(z[k], _mm_loadu_si128((const __m128i *)src[k + 12]), 3);
    }
    t[0] = _mm512_unpacklo_epi8(z[0], z[1]); /* lane L: bytes 0-7 of rows 4L, 4L + 1 */
    t[1] = _mm512_unpackhi_epi8(z[0], z[1]);
    t[2] = _mm512_unpacklo_epi8(z[2], z[3]);
    t[3] = _mm512_unpackhi_epi8(z[2], z[3]);
    const __m512i gather = _mm512_setr_epi32(0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15);
    __m512i u[4] = {_mm512_unpacklo_epi16(t[0], t[2]), _mm512_unpackhi_epi16(t[0], t[2]),
                    _mm512_unpacklo_epi16(t[1], t[3]), _mm512_unpackhi_epi16(t[1], t[3])};
    for (int k = 0; k < 4; k++) /* u[k], lane L, dword i: byte 4k + i of rows 4L .. 4L + 3 */
        _mm512_store_si512(dst + 64 * k, _mm512_permutexvar_epi32(gather, u[k]));
}

/* Panel of rows o16 .. o16 + 15: P[i * 16 + r] the unscaled value of (o16 + r, i), S[b * 16 + r]
 * the scale of its block b (rows past the end: 0), for the formats byte panels do not take:
 * 4-bit packed rows straight from their bytes (transposed in registers, groups of 16 or other
 * sizes), any other through a row buffer (tmp, 16 * C floats) and a float transpose. */
static T512 void build_panel(const mq_qweight_t *p, int o16, int nb, float *P, float *S,
                             float *tmp) {
    int C = p->cols, g = C / nb;
    const mq_format_t *f = p->format;
    int p4 = f->side_scales && p->scheme.bits == 4 && C % 32 == 0;
    static const uint8_t zeros[16];
    for (int r = 0; r < 16; r++) {
        int o = o16 + r;
        if (o >= p->rows) {
            for (int b = 0; b < nb; b++)
                S[b * 16 + r] = 0.0f;
            if (!p4) memset(tmp + (size_t)r * C, 0, (size_t)C * sizeof *tmp);
            continue;
        }
        const uint8_t *row = p->data + (size_t)o * p->row_bytes;
        const mq_fp16_t *sc = mq_qweight_row_scales(p, o);
        for (int b = 0; b < nb; b++)
            S[b * 16 + r] = f->block_scale(row, sc, g, b);
        if (!p4) f->values_row(row, &p->scheme, C, tmp + (size_t)r * C);
    }
    if (p4) { /* 16 bytes of a row: weights 2j (low nibble of byte j) and 2j + 1 (high) */
        const __m512 lut = packed4_lut(p);
        for (int c = 0; c < C; c += 32) {
            const uint8_t *src[16];
            _Alignas(64) uint8_t col[256];
            for (int r = 0; r < 16; r++)
                src[r] =
                    o16 + r < p->rows ? p->data + (size_t)(o16 + r) * p->row_bytes + c / 2 : zeros;
            transpose16x16_bytes_to(src, col);
            float *dst = P + (size_t)c * 16;
            for (int j = 0; j < 16; j++) {
                __m512i u = _mm512_cvtepu8_epi32(_mm_load_si128((const __m128i *)(col + 16 * j)));
                _mm512_storeu_ps(dst + 16 * (2 * j), _mm512_permutexvar_ps(u, lut));
                _mm512_storeu_ps(dst + 16 * (2 * j + 1),
                                 _mm512_permutexvar_ps(_mm512_srli_epi32(u, 4), lut));
            }
        }
        return;
    }
    int c = 0;
    for (; c + 16 <= C; c += 16)
        transpose16(tmp + c, (size_t)C, P + (size_t)c * 16);
    for (; c < C; c++)
        for (int r = 0; r < 16; r++)
            P[(size_t)c * 16 + r] = tmp[(size_t)r * C + c];
}

/* out[r] = the panel against x rows r < R (ldx apart): a column's 16 weights times their scales,
 * then one FMA per x row, every output one chain over the columns in order. */
INLINE T512 void ptile(int R, const float *P, const float *S, int nb, int g, const float *x,
                       int ldx, __m512 *out) {
    __m512 acc[16];
#pragma GCC unroll 16
    for (int r = 0; r < R; r++)
        acc[r] = _mm512_setzero_ps();
    for (int b = 0; b < nb; b++) {
        __m512 s = _mm512_loadu_ps(S + 16 * b);
        int i = b * g, e = (b + 1) * g;
        /* 8 columns a step: the 16 x rows' addresses are formed once per step */
        for (; i + 8 <= e; i += 8) {
            const float *xi = x + i;
#pragma GCC unroll 8
            for (int k = 0; k < 8; k++) {
                __m512 wk = _mm512_mul_ps(_mm512_loadu_ps(P + (size_t)(i + k) * 16), s);
#pragma GCC unroll 16
                for (int r = 0; r < R; r++)
                    acc[r] = _mm512_fmadd_ps(wk, _mm512_set1_ps(xi[(size_t)r * ldx + k]), acc[r]);
            }
        }
        for (; i < e; i++) {
            __m512 wk = _mm512_mul_ps(_mm512_loadu_ps(P + (size_t)i * 16), s);
#pragma GCC unroll 16
            for (int r = 0; r < R; r++)
                acc[r] = _mm512_fmadd_ps(wk, _mm512_set1_ps(x[(size_t)r * ldx + i]), acc[r]);
        }
    }
#pragma GCC unroll 16
    for (int r = 0; r < R; r++)
        out[r] = acc[r];
}

/* One x row against the panel: per scale block four chains (column i in chain i % 4), their sum
 * times the 16 scales. */
INLINE T512 __m512 pdot(const float *P, const float *S, int nb, int g, const float *x) {
    __m512 acc = _mm512_setzero_ps();
    for (int b = 0; b < nb; b++) {
        __m512 c[4] = {_mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_setzero_ps(),
                       _mm512_setzero_ps()};
        for (int i = b * g; i < (b + 1) * g; i++)
            c[i & 3] = _mm512_fmadd_ps(_mm512_loadu_ps(P + (size_t)i * 16), _mm512_set1_ps(x[i]),
                                       c[i & 3]);
        __m512 sum = _mm512_add_ps(_mm512_add_ps(c[0], c[1]), _mm512_add_ps(c[2], c[3]));
        acc = _mm512_fmadd_ps(_mm512_loadu_ps(S + 16 * b), sum, acc);
    }
    return acc;
}

typedef void (*ptile_fn)(const float *P, const float *S, int nb, int g, const float *x, int ldx,
                         __m512 *out);
#define PTILE_FN(R)                                                                                \
    static T512 void ptile_##R(const float *P, const float *S, int nb, int g, const float *x,      \
                               int ldx, __m512 *out) {                                             \
        if (R == 1)                                                                                \
            out[0] = pdot(P, S, nb, g, x);                                                         \
        else                                                                                       \
            ptile(R, P, S, nb, g, x, ldx, out);                                                    \
    }
PTILE_FN(1)
PTILE_FN(2)
PTILE_FN(4)
PTILE_FN(8)
PTILE_FN(16)
/* [x rows: 1, 2, 4, 8, 16] */
static const ptile_fn PTILES[5] = {ptile_1, ptile_2, ptile_4, ptile_8, ptile_16};

/* Byte panels: Q8_0, Q4_0 and 4-bit packed rows keep their bytes, 16 rows transposed (byte j of
 * the 16 rows' 32-column unit side by side, 16 bytes), 256 bytes a unit (512 for Q8_0's 32
 * codes); the tiles widen one byte per row to 16 lanes and read its value (vpermps on the code
 * table, or a sign extension) as they go, column by column in order: the same values and the
 * same chains as the float panels, at an eighth of their bytes and without their stores. */
enum { BP_Q8 = 1, BP_Q4 = 2, BP_P4 = 3 };

static int byte_panel_kind(const mq_qweight_t *p) {
    const mq_format_t *f = p->format;
    if (p->group % 32 && p->group != p->cols) return 0;
    if (f->kernel_layout == MQ_KL_Q8_0) return BP_Q8;
    if (f->kernel_layout == MQ_KL_Q4_0) return BP_Q4;
    if (f->side_scales && p->scheme.bits == 4 && p->cols % 32 == 0 && p->group % 32 == 0)
        return BP_P4;
    return 0;
}

/* Rows o16 .. o16 + 15 (past the end: zero bytes, scale 0) into B and their scales into S. */
static T512 void build_byte_panel(const mq_qweight_t *p, int kind, int o16, int nb, uint8_t *B,
                                  float *S) {
    int C = p->cols, g = C / nb, units = C / 32;
    size_t bb = kind == BP_Q8 ? MQ_Q8_0_BYTES : MQ_Q4_0_BYTES, ub = kind == BP_Q8 ? 512 : 256;
    const float *f16tab = mq_fp16_table();
    static const uint8_t zeros[MQ_Q8_0_BYTES];
    for (int r = 0; r < 16; r++) {
        int o = o16 + r;
        const uint8_t *row = o < p->rows ? p->data + (size_t)o * p->row_bytes : NULL;
        const mq_fp16_t *sc = row ? mq_qweight_row_scales(p, o) : NULL;
        for (int b = 0; b < nb; b++) {
            float v = 0.0f;
            if (row && kind == BP_P4) {
                v = f16tab[sc[p->scheme.gran == MQ_QG_TENSOR ? 0 : b]];
            } else if (row) { /* d at the head of the scale block's first 32-block */
                uint16_t h;
                memcpy(&h, row + (size_t)(b * (g / MQ_QBLOCK)) * bb, sizeof h);
                v = f16tab[h];
            }
            S[b * 16 + r] = v;
        }
    }
    for (int u = 0; u < units; u++)
        for (int half = 0; half < (kind == BP_Q8 ? 2 : 1); half++) {
            const uint8_t *src[16];
            for (int r = 0; r < 16; r++) {
                const uint8_t *row = p->data + (size_t)(o16 + r) * p->row_bytes;
                src[r] = o16 + r >= p->rows ? zeros
                         : kind == BP_P4    ? row + (size_t)u * 16
                                            : row + (size_t)u * bb + 2 + 16 * half;
            }
            transpose16x16_bytes_to(src, B + (size_t)u * ub + 256 * half);
        }
}

/* Column c of the 32-column unit at U, unscaled, one lane per row. */
INLINE T512 __m512 byte_col(int kind, const uint8_t *U, int c, __m512 lut) {
    if (kind == BP_Q8)
        return _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(
            _mm_load_si128((const __m128i *)(U + 256 * (c >> 4) + 16 * (c & 15)))));
    /* Q4_0: byte j holds columns j (low nibble) and j + 16; packed: 2j and 2j + 1 */
    int j = kind == BP_Q4 ? c & 15 : c >> 1, hi = kind == BP_Q4 ? c >> 4 : c & 1;
    __m512i v = _mm512_cvtepu8_epi32(_mm_load_si128((const __m128i *)(U + 16 * j)));
    return _mm512_permutexvar_ps(hi ? _mm512_srli_epi32(v, 4) : v, lut);
}

/* out[r] = the byte panel against x rows r < R, as ptile: a column's 16 weights times their
 * scales, then one FMA per x row, every output one chain over the columns in order; R = 1: as
 * pdot, four chains per scale block. xt holds the R x rows column by column (xt[c * R + r]), so
 * every broadcast is one base address and a constant offset. */
INLINE T512 void btile(int kind, int R, const uint8_t *B, const float *S, int nb, int g,
                       const float *xt, __m512 lut, __m512 *out) {
    size_t ub = kind == BP_Q8 ? 512 : 256;
    __m512 acc[16];
#pragma GCC unroll 16
    for (int r = 0; r < R; r++)
        acc[r] = _mm512_setzero_ps();
    for (int b = 0; b < nb; b++) {
        __m512 s = _mm512_loadu_ps(S + 16 * b);
        __m512 c4[4] = {_mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_setzero_ps(),
                        _mm512_setzero_ps()};
        for (int u = b * g / 32; u < (b + 1) * g / 32; u++) {
            const uint8_t *U = B + (size_t)u * ub;
            const float *xc = xt + (size_t)u * 32 * R;
#pragma GCC unroll 32
            for (int c = 0; c < 32; c++) {
                __m512 v = byte_col(kind, U, c, lut);
                if (R == 1) {
                    c4[c & 3] = _mm512_fmadd_ps(v, _mm512_set1_ps(xc[c]), c4[c & 3]);
                } else {
                    __m512 wk = _mm512_mul_ps(v, s);
#pragma GCC unroll 16
                    for (int r = 0; r < R; r++)
                        acc[r] = _mm512_fmadd_ps(wk, _mm512_set1_ps(xc[c * R + r]), acc[r]);
                }
            }
        }
        if (R == 1)
            acc[0] = _mm512_fmadd_ps(
                s, _mm512_add_ps(_mm512_add_ps(c4[0], c4[1]), _mm512_add_ps(c4[2], c4[3])), acc[0]);
    }
#pragma GCC unroll 16
    for (int r = 0; r < R; r++)
        out[r] = acc[r];
}

typedef void (*btile_fn)(const uint8_t *B, const float *S, int nb, int g, const float *xt,
                         __m512 lut, __m512 *out);
#define BTILE_FN(K, R)                                                                             \
    static T512 void btile_##K##_##R(const uint8_t *B, const float *S, int nb, int g,              \
                                     const float *xt, __m512 lut, __m512 *out) {                   \
        btile(BP_##K, R, B, S, nb, g, xt, lut, out);                                               \
    }
#define BTILE_FNS(K) BTILE_FN(K, 1) BTILE_FN(K, 2) BTILE_FN(K, 4) BTILE_FN(K, 8) BTILE_FN(K, 16)
BTILE_FNS(Q8)
BTILE_FNS(Q4)
BTILE_FNS(P4)
/* [kind][x rows: 1, 2, 4, 8, 16] */
static const btile_fn BTILES[4][5] = {
    {NULL},
    {btile_Q8_1, btile_Q8_2, btile_Q8_4, btile_Q8_8, btile_Q8_16},
    {btile_Q4_1, btile_Q4_2, btile_Q4_4, btile_Q4_8, btile_Q4_16},
    {btile_P4_1, btile_P4_2, btile_P4_4, btile_P4_8, btile_P4_16}};

/* x rows per tile as the prompt kernels take them: 16 while 16 remain, then 8, 4, 2, 1. */
INLINE int tile_rows(int left) {
    return left >= 16 ? 16 : left >= 8 ? 8 : left >= 4 ? 4 : left >= 2 ? 2 : 1;
}

/* Each tile of R x rows (starting at row n0) column by column at xt + n0 * C: xt[c * R + r]. */
void T512 mq_kavx512_x_tiles(const float *x, int ldx, int N, int C, float *xt) {
    for (int n0 = 0; n0 < N;) {
        int R = tile_rows(N - n0), c = 0;
        float *t = xt + (size_t)n0 * C;
        if (R == 16)
            for (; c + 16 <= C; c += 16)
                transpose16(x + (size_t)n0 * ldx + c, (size_t)ldx, t + (size_t)c * 16);
        for (; c < C; c++)
            for (int r = 0; r < R; r++)
                t[(size_t)c * R + r] = x[(size_t)(n0 + r) * ldx + c];
        n0 += R;
    }
}

static T512 void gemm_byte_panels(const mq_qweight_t *p, int kind, const float *xt, int N, float *y,
                                  int o0, int o1, float *wb) {
    int C = p->cols, OC = p->rows, nb = p->group == C ? 1 : C / p->group, g = C / nb;
    int np = (o1 - o0 + 15) / 16;
    size_t pbytes = (size_t)(C / 32) * (kind == BP_Q8 ? 512 : 256);
    /* wb (64-byte aligned): the scales, then the byte panels */
    float *S = wb;
    uint8_t *B = (uint8_t *)(((uintptr_t)(S + (size_t)np * 16 * nb) + 63) & ~(uintptr_t)63);
    for (int q = 0; q < np; q++)
        build_byte_panel(p, kind, o0 + 16 * q, nb, B + (size_t)q * pbytes, S + (size_t)q * 16 * nb);
    const __m512 lut = kind == BP_Q4   ? q4_lut()
                       : kind == BP_P4 ? packed4_lut(p)
                                       : _mm512_setzero_ps();
    __m512 out[16];
    for (int n0 = 0; n0 < N;) {
        int R = tile_rows(N - n0), ri = R == 16 ? 4 : R == 8 ? 3 : R == 4 ? 2 : R == 2 ? 1 : 0;
        for (int q = 0; q < np; q++) {
            int o = o0 + 16 * q, cnt = OC - o < 16 ? OC - o : 16;
            __mmask16 m = (__mmask16)(cnt >= 16 ? 0xffff : (1u << cnt) - 1);
            BTILES[kind][ri](B + (size_t)q * pbytes, S + (size_t)q * 16 * nb, nb, g,
                             xt + (size_t)n0 * C, lut, out);
            for (int r = 0; r < R; r++)
                _mm512_mask_storeu_ps(y + (size_t)(n0 + r) * OC + o, m, out[r]);
        }
        n0 += R;
    }
}

void T512 mq_kavx512_gemm_panels(const mq_qweight_t *p, const float *x, int ldx, const float *xt,
                                 int N, float *y, int o0, int o1, float *wb) {
    int kind = byte_panel_kind(p);
    if (kind) {
        gemm_byte_panels(p, kind, xt, N, y, o0, o1, wb);
        return;
    }
    int C = p->cols, OC = p->rows, nb = p->group == C ? 1 : C / p->group, g = C / nb;
    int np = (o1 - o0 + 15) / 16;
    float *P = wb, *S = P + (size_t)np * 16 * C, *tmp = S + (size_t)np * 16 * nb;
    for (int q = 0; q < np; q++)
        build_panel(p, o0 + 16 * q, nb, P + (size_t)q * 16 * C, S + (size_t)q * 16 * nb, tmp);
    __m512 out[16];
    for (int n0 = 0; n0 < N;) {
        int left = N - n0, ri = left >= 16 ? 4 : left >= 8 ? 3 : left >= 4 ? 2 : left >= 2 ? 1 : 0;
        int R = 1 << ri;
        for (int q = 0; q < np; q++) {
            int o = o0 + 16 * q, cnt = OC - o < 16 ? OC - o : 16;
            __mmask16 m = (__mmask16)(cnt >= 16 ? 0xffff : (1u << cnt) - 1);
            PTILES[ri](P + (size_t)q * 16 * C, S + (size_t)q * 16 * nb, nb, g, x + (size_t)n0 * ldx,
                       ldx, out);
            for (int r = 0; r < R; r++)
                _mm512_mask_storeu_ps(y + (size_t)(n0 + r) * OC + o, m, out[r]);
        }
        n0 += R;
    }
}

/* ---------------------------------------------------------------------------------------------
 * int8 activations (VNNI) */

/* Q8_0, one x row, rows o .. o + WR - 1: two 32-blocks a vector, their unsigned codes (code +
 * 128) against the two blocks of xq in one vpdpbusd started by the offset's correction (lanes 0
 * and 8), converted, times d * sx of each half; the 16 lanes summed at the end. The x side
 * (codes, correction, sx) is made once for the WR rows. An odd last block runs with an empty
 * second half. */
INLINE T512V void a8_dot_rows_q8(const mq_qweight_t *p, int WR, int o, const mq_a8_t *xa,
                                 float *y) {
    int nb = p->cols / MQ_QBLOCK, off = 128;
    size_t bb = MQ_Q8_0_BYTES;
    const float *f16tab = mq_fp16_table();
    static const uint8_t zeros[MQ_Q8_0_BYTES];
    const __m512i flip = _mm512_set1_epi8((char)0x80);
    const uint8_t *row[4];
    __m512 acc[4];
    rows_begin(p, WR, o, row, acc);
    for (int b = 0; b < nb; b += 2) {
        int two = b + 1 < nb;
        __m512i xv = two ? _mm512_loadu_si512(xa->xq + (size_t)b * MQ_QBLOCK)
                         : _mm512_castsi256_si512(_mm256_loadu_si256(
                               (const __m256i *)(xa->xq + (size_t)b * MQ_QBLOCK)));
        if (!two) xv = _mm512_inserti64x4(xv, _mm256_setzero_si256(), 1);
        __m512i corr = _mm512_maskz_set1_epi32(0x0001, -off * xa->xsum[b]);
        if (two) corr = _mm512_mask_set1_epi32(corr, 0x0100, -off * xa->xsum[b + 1]);
        __m512 sxv = _mm512_mask_blend_ps(0xFF00, _mm512_set1_ps(xa->sx[b]),
                                          _mm512_set1_ps(two ? xa->sx[b + 1] : 0.0f));
#pragma GCC unroll 4
        for (int w = 0; w < WR; w++) {
            const uint8_t *b0 = row[w] + (size_t)b * bb, *b1 = two ? b0 + bb : zeros;
            mq_prefetch_rows(row[w], (size_t)b * bb, p->row_bytes, WR);
            __m512i u = _mm512_inserti64x4(
                _mm512_castsi256_si512(_mm256_loadu_si256((const __m256i *)(b0 + 2))),
                _mm256_loadu_si256((const __m256i *)(b1 + 2)), 1);
            u = _mm512_xor_si512(u, flip);
            uint16_t h0, h1;
            memcpy(&h0, b0, sizeof h0);
            memcpy(&h1, b1, sizeof h1);
            __m512 d = _mm512_mask_blend_ps(0xFF00, _mm512_set1_ps(f16tab[h0]),
                                            _mm512_set1_ps(f16tab[h1]));
            acc[w] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(_mm512_dpbusd_epi32(corr, u, xv)),
                                     _mm512_mul_ps(d, sxv), acc[w]);
        }
    }
#pragma GCC unroll 4
    for (int w = 0; w < WR; w++)
        y[o + w] = _mm512_reduce_add_ps(acc[w]);
}

/* Q4_0, one x row, four blocks a vector: the 128-bit lane l of a vector is block b + l of one
 * row (its 16 bytes of nibbles: the low ones columns 0-15, the high ones 16-31) against the same
 * lanes of xq, in vpdpbusd started by the offset's correction (lane 0 of each block's four),
 * converted, times the four blocks' d * sx (the row's four d picked from one load by a permute
 * of halves), into one accumulator per row; 16 rows' accumulators reduced together at the end.
 * Four vectors of 16 bytes a row make fewer operations per weight than one block pair a vector,
 * and a short row pays one 16th of a reduction. The x side (codes, correction, sx of four
 * blocks) is made once for the WR rows; blocks past the row's end are zero lanes. */
typedef struct a8x4 {
    __m512i lo, hi, corr;
    __m512 sx;
    int n; /* blocks in the group, 1 .. 4 */
} a8x4_t;

INLINE T512V a8x4_t a8_x4(const mq_a8_t *xa, int b, int nb) {
    a8x4_t g;
    g.n = nb - b < 4 ? nb - b : 4;
    __mmask64 ma = g.n >= 2 ? ~(__mmask64)0 : ((__mmask64)1 << 32) - 1;
    __mmask64 mb = g.n >= 4 ? ~(__mmask64)0 : g.n == 3 ? ((__mmask64)1 << 32) - 1 : 0;
    __mmask16 mn = (__mmask16)((1u << g.n) - 1);
    const int8_t *xq = xa->xq + (size_t)b * MQ_QBLOCK;
    __m512i a = _mm512_maskz_loadu_epi8(ma, xq), c = _mm512_maskz_loadu_epi8(mb, xq + 64);
    g.lo = _mm512_shuffle_i32x4(a, c, _MM_SHUFFLE(2, 0, 2, 0));
    g.hi = _mm512_shuffle_i32x4(a, c, _MM_SHUFFLE(3, 1, 3, 1));
    /* nibble = code + 8: minus 8 times the block's sum of xq */
    g.corr = _mm512_sub_epi32(
        _mm512_setzero_si512(),
        _mm512_slli_epi32(
            _mm512_maskz_expand_epi32(0x1111, _mm512_maskz_loadu_epi32(mn, xa->xsum + b)), 3));
    const __m512i spread = _mm512_setr_epi32(0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3);
    g.sx = _mm512_permutexvar_ps(spread, _mm512_maskz_loadu_ps(mn, xa->sx + b));
    return g;
}

/* 16 bytes at each of p + l * step, l < n, in lane l (the others zero). */
INLINE T512V __m512i lanes4(const uint8_t *p, size_t step, int n) {
    __m512i v = _mm512_castsi128_si512(_mm_loadu_si128((const __m128i *)p));
    if (n == 4) {
        v = _mm512_inserti32x4(v, _mm_loadu_si128((const __m128i *)(p + step)), 1);
        v = _mm512_inserti32x4(v, _mm_loadu_si128((const __m128i *)(p + 2 * step)), 2);
        return _mm512_inserti32x4(v, _mm_loadu_si128((const __m128i *)(p + 3 * step)), 3);
    }
    v = _mm512_zextsi128_si512(_mm512_castsi512_si128(v));
    if (n > 1) v = _mm512_inserti32x4(v, _mm_loadu_si128((const __m128i *)(p + step)), 1);
    if (n > 2) v = _mm512_inserti32x4(v, _mm_loadu_si128((const __m128i *)(p + 2 * step)), 2);
    return v;
}

/* v[w] = unreduced 16 lanes of row (o + w)'s dot product with x, w < WR (at most 4). */
INLINE T512V void a8_rows_q4(const mq_qweight_t *p, int WR, int o, const mq_a8_t *xa, __m512 *v) {
    enum { BB = MQ_Q4_0_BYTES, H = MQ_Q4_0_BYTES / 2 };
    int nb = p->cols / MQ_QBLOCK;
    const __m512i nib = _mm512_set1_epi8(0x0F);
    /* the halves of d of blocks b .. b + 3 (bytes 0, 18, 36, 54 of the group), four times each */
    const __m512i pick =
        _mm512_set_epi16(0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 3 * H, 3 * H, 3 * H, 3 * H,
                         2 * H, 2 * H, 2 * H, 2 * H, H, H, H, H, 0, 0, 0, 0);
    const uint8_t *row[4];
    __m512 acc[4];
    rows_begin(p, WR, o, row, acc);
    for (int b = 0; b < nb; b += 4) {
        a8x4_t g = a8_x4(xa, b, nb);
        size_t span = (size_t)g.n * BB; /* the group's bytes; d of its last block is in 64 */
        __mmask64 m = span >= 64 ? ~(__mmask64)0 : ((__mmask64)1 << span) - 1;
#pragma GCC unroll 4
        for (int w = 0; w < WR; w++) {
            const uint8_t *blk = row[w] + (size_t)b * BB;
            mq_prefetch_rows(row[w], (size_t)b * BB, p->row_bytes, WR);
            __m512i c = lanes4(blk + 2, BB, g.n);
            __m512i lo = _mm512_and_si512(c, nib);
            __m512i hi = _mm512_and_si512(_mm512_srli_epi16(c, 4), nib);
            __m512i dh = _mm512_permutexvar_epi16(pick, _mm512_maskz_loadu_epi8(m, blk));
            __m512 d = _mm512_mul_ps(_mm512_cvtph_ps(_mm512_castsi512_si256(dh)), g.sx);
            __m512i dp = _mm512_dpbusd_epi32(_mm512_dpbusd_epi32(g.corr, lo, g.lo), hi, g.hi);
            acc[w] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(dp), d, acc[w]);
        }
    }
#pragma GCC unroll 4
    for (int w = 0; w < WR; w++)
        v[w] = acc[w];
}

/* Rows o0 .. o1 - 1 of Q4_0 against one x row, 16 at a time: four rows a pass, one reduction of
 * 16. (Eight rows a pass were faster in cache, slower from DRAM: 16 streams of weights on 2
 * threads.) */
INLINE T512V void a8_dot16s_q4(const mq_qweight_t *p, const mq_a8_t *xa, float *y, int o0, int o1) {
    __m512 v[16];
    float t[16];
    for (int o = o0; o < o1; o += 16) {
        int cnt = o1 - o < 16 ? o1 - o : 16, k = 0;
        for (; k + 4 <= cnt; k += 4)
            a8_rows_q4(p, 4, o + k, xa, v + k);
        for (; k < cnt; k++)
            a8_rows_q4(p, 1, o + k, xa, v + k);
        for (; k < 16; k++)
            v[k] = _mm512_setzero_ps();
        _mm512_storeu_ps(t, hsum16(v));
        for (k = 0; k < cnt; k++)
            y[o + k] = t[k];
    }
}

/* Rows o16 .. o16 + 15 of Q8_0 (q8) or Q4_0 blocks as unsigned bytes with one lane per row
 * (kernels_isa.h's offsets: code + 128, nibble = code + 8): for block b, 8 chunks of 64 bytes,
 * chunk i holding columns 4i .. 4i + 3 of the 16 rows (dword r: row o16 + r), at A + 512 b; the
 * rows' d at S[16 b + r] (rows past the end: zero bytes, d 0). Each 16 bytes of a row go into a
 * 128-bit lane with three other rows' (rows r, r + 4, r + 8, r + 12), and a 4 x 4 transpose of
 * dwords in every lane puts dword i of rows 4L .. 4L + 3 in lane L of vector i. */
static T512V void build_a8_panel(const mq_qweight_t *p, int q8, int o16, uint8_t *A, float *S) {
    int nb = p->cols / MQ_QBLOCK;
    size_t bb = q8 ? MQ_Q8_0_BYTES : MQ_Q4_0_BYTES;
    const float *f16tab = mq_fp16_table();
    static const uint8_t zeros[MQ_Q8_0_BYTES];
    const uint8_t *row[16];
    for (int r = 0; r < 16; r++)
        row[r] = o16 + r < p->rows ? p->data + (size_t)(o16 + r) * p->row_bytes : NULL;
    const __m512i nib = _mm512_set1_epi8(0x0F), flip = _mm512_set1_epi8((char)0x80);
    for (int b = 0; b < nb; b++) {
        const uint8_t *blk[16];
        for (int r = 0; r < 16; r++) {
            blk[r] = row[r] ? row[r] + (size_t)b * bb : zeros;
            uint16_t h;
            memcpy(&h, blk[r], sizeof h);
            S[16 * b + r] = row[r] ? f16tab[h] : 0.0f;
        }
        uint8_t *dst = A + (size_t)b * 512;
        for (int half = 0; half < (q8 ? 2 : 1); half++) {
            __m512i z[4], t[4], T[4];
            for (int k = 0; k < 4; k++) {
                size_t at = 2 + 16 * (size_t)half; /* the codes' 16 bytes */
                z[k] = _mm512_castsi128_si512(_mm_loadu_si128((const __m128i *)(blk[k] + at)));
                z[k] = _mm512_inserti32x4(z[k], _mm_loadu_si128((const __m128i *)(blk[k + 4] + at)),
                                          1);
                z[k] = _mm512_inserti32x4(z[k], _mm_loadu_si128((const __m128i *)(blk[k + 8] + at)),
                                          2);
                z[k] = _mm512_inserti32x4(z[k],
                                          _mm_loadu_si128((const __m128i *)(blk[k + 12] + at)), 3);
            }
            t[0] = _mm512_unpacklo_epi32(z[0], z[1]);
            t[1] = _mm512_unpackhi_epi32(z[0], z[1]);
            t[2] = _mm512_unpacklo_epi32(z[2], z[3]);
            t[3] = _mm512_unpackhi_epi32(z[2], z[3]);
            T[0] = _mm512_unpacklo_epi64(t[0], t[2]);
            T[1] = _mm512_unpackhi_epi64(t[0], t[2]);
            T[2] = _mm512_unpacklo_epi64(t[1], t[3]);
            T[3] = _mm512_unpackhi_epi64(t[1], t[3]);
            for (int i = 0; i < 4; i++) {
                if (q8) {
                    _mm512_store_si512(dst + 64 * (4 * half + i), _mm512_xor_si512(T[i], flip));
                } else { /* low nibbles: columns 4i ..; high: 16 + 4i .. */
                    _mm512_store_si512(dst + 64 * i, _mm512_and_si512(T[i], nib));
                    _mm512_store_si512(dst + 64 * (4 + i),
                                       _mm512_and_si512(_mm512_srli_epi16(T[i], 4), nib));
                }
            }
        }
    }
}

/* 4 activations as one int32, broadcast. */
INLINE T512V __m512i bcast4(const int8_t *x) {
    int32_t v;
    memcpy(&v, x, sizeof v);
    return _mm512_set1_epi32(v);
}

/* out[r] = the 16 rows of the panel against x rows n0 + r, r < R: per block and x row an
 * integer sum of 8 vpdpbusd (4 columns of the 16 rows each, in 4 chains) started by the offset's
 * correction, converted, times d * sx. */
INLINE T512V void a8_tile(int q8, int R, const uint8_t *A, const float *S, int nb,
                          const mq_a8_t *xa, int n0, __m512 *out) {
    int off = q8 ? 128 : 8;
    __m512 acc[4];
#pragma GCC unroll 4
    for (int r = 0; r < R; r++)
        acc[r] = _mm512_setzero_ps();
    for (int b = 0; b < nb; b++) {
        const uint8_t *Ab = A + (size_t)b * 512;
        __m512i is[4][4];
        const int8_t *xq[4];
#pragma GCC unroll 4
        for (int r = 0; r < R; r++) {
            size_t k = (size_t)(n0 + r) * xa->nblk + (size_t)b;
            xq[r] = xa->xq + k * MQ_QBLOCK;
            is[r][0] = _mm512_set1_epi32(-off * xa->xsum[k]);
            is[r][1] = is[r][2] = is[r][3] = _mm512_setzero_si512();
        }
#pragma GCC unroll 8
        for (int i = 0; i < 8; i++) {
            __m512i u = _mm512_load_si512(Ab + 64 * i);
#pragma GCC unroll 4
            for (int r = 0; r < R; r++)
                is[r][i & 3] = _mm512_dpbusd_epi32(is[r][i & 3], u, bcast4(xq[r] + 4 * i));
        }
        __m512 d = _mm512_loadu_ps(S + 16 * b);
#pragma GCC unroll 4
        for (int r = 0; r < R; r++) {
            __m512i t = _mm512_add_epi32(_mm512_add_epi32(is[r][0], is[r][1]),
                                         _mm512_add_epi32(is[r][2], is[r][3]));
            float sx = xa->sx[(size_t)(n0 + r) * xa->nblk + (size_t)b];
            acc[r] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(t), _mm512_mul_ps(d, _mm512_set1_ps(sx)),
                                     acc[r]);
        }
    }
#pragma GCC unroll 4
    for (int r = 0; r < R; r++)
        out[r] = acc[r];
}

typedef void (*a8_tile_fn)(const uint8_t *A, const float *S, int nb, const mq_a8_t *xa, int n0,
                           __m512 *out);
#define A8_TILE_FN(NAME, Q8, R)                                                                    \
    static T512V void NAME(const uint8_t *A, const float *S, int nb, const mq_a8_t *xa, int n0,    \
                           __m512 *out) {                                                          \
        a8_tile(Q8, R, A, S, nb, xa, n0, out);                                                     \
    }
A8_TILE_FN(a8_q4_1, 0, 1)
A8_TILE_FN(a8_q4_4, 0, 4)
A8_TILE_FN(a8_q8_1, 1, 1)
A8_TILE_FN(a8_q8_4, 1, 4)
/* [q8][x rows: 1, 4] */
static const a8_tile_fn A8_TILES[2][2] = {{a8_q4_1, a8_q4_4}, {a8_q8_1, a8_q8_4}};

/* One x row: row by row (a panel would be read once). Several: each 16 rows of the share made
 * into a panel once, then run against every x row. */
INLINE T512V void a8_rows(const mq_qweight_t *p, int q8, const mq_a8_t *xa, float *y, int o0,
                          int o1, void *scratch) {
    int OC = p->rows, N = xa->N, nb = p->cols / MQ_QBLOCK;
    if (N <= MQ_A8_FEW_ROWS) {
        for (int n = 0; n < N; n++) {
            size_t k = (size_t)n * (size_t)xa->nblk;
            mq_a8_t xn = {1,          xa->nblk,          xa->xq + k * MQ_QBLOCK, xa->xsum + k,
                          xa->sx + k, xa->xsum16 + 2 * k};
            float *yn = y + (size_t)n * OC;
            if (!q8) {
                a8_dot16s_q4(p, &xn, yn, o0, o1);
                continue;
            }
            int o = o0;
            for (; o + 4 <= o1; o += 4)
                a8_dot_rows_q8(p, 4, o, &xn, yn);
            for (; o < o1; o++)
                a8_dot_rows_q8(p, 1, o, &xn, yn);
        }
        return;
    }
    uint8_t *A = (uint8_t *)(((uintptr_t)scratch + 63) & ~(uintptr_t)63);
    float *S = (float *)(A + (size_t)nb * 512);
    __m512 out[4];
    for (int o = o0; o < o1; o += 16) {
        int cnt = o1 - o < 16 ? o1 - o : 16;
        __mmask16 m = (__mmask16)(cnt >= 16 ? 0xffff : (1u << cnt) - 1);
        build_a8_panel(p, q8, o, A, S);
        for (int n0 = 0; n0 < N;) {
            int R = N - n0 >= 4 ? 4 : 1;
            A8_TILES[q8][R == 4](A, S, nb, xa, n0, out);
            for (int r = 0; r < R; r++)
                _mm512_mask_storeu_ps(y + (size_t)(n0 + r) * OC + o, m, out[r]);
            n0 += R;
        }
    }
}

void T512V mq_kavx512_a8_q8_0(const mq_qweight_t *p, const mq_a8_t *xa, float *y, int o0, int o1,
                              void *scratch) {
    a8_rows(p, 1, xa, y, o0, o1, scratch);
}

void T512V mq_kavx512_a8_q4_0(const mq_qweight_t *p, const mq_a8_t *xa, float *y, int o0, int o1,
                              void *scratch) {
    a8_rows(p, 0, xa, y, o0, o1, scratch);
}

/* Per 32 columns: the largest magnitude (NaNs passed over: vmaxps returns its second operand
 * when either is NaN), the codes x * (127 / max) rounded half to even by the conversion (the
 * default rounding mode), NaN products (NaN or infinite x) as 0, then packed to bytes. */
void T512 mq_kavx512_a8_row(const float *x, int C, int8_t *xq, int32_t *xsum, int32_t *xsum16,
                            float *sx) {
    for (int k = 0; k * MQ_QBLOCK < C; k++) {
        int len = C - k * MQ_QBLOCK;
        __mmask16 m0 = (__mmask16)(len >= 16 ? 0xFFFF : (1u << len) - 1);
        __mmask16 m1 = (__mmask16)(len >= 32 ? 0xFFFF : len > 16 ? (1u << (len - 16)) - 1 : 0);
        const float *xb = x + (size_t)k * MQ_QBLOCK;
        __m512 a = _mm512_maskz_loadu_ps(m0, xb), b = _mm512_maskz_loadu_ps(m1, xb + 16);
        __m512 mx = _mm512_max_ps(_mm512_abs_ps(a), _mm512_setzero_ps());
        mx = _mm512_max_ps(_mm512_abs_ps(b), mx);
        float amax = _mm512_reduce_max_ps(mx);
        float inv = amax > 0.0f ? 127.0f / amax : 0.0f;
        __m512 qa = _mm512_mul_ps(a, _mm512_set1_ps(inv)),
               qb = _mm512_mul_ps(b, _mm512_set1_ps(inv));
        __m512i ia = _mm512_maskz_cvtps_epi32(_mm512_cmp_ps_mask(qa, qa, _CMP_ORD_Q), qa);
        __m512i ib = _mm512_maskz_cvtps_epi32(_mm512_cmp_ps_mask(qb, qb, _CMP_ORD_Q), qb);
        _mm_storeu_si128((__m128i *)(xq + (size_t)k * MQ_QBLOCK), _mm512_cvtepi32_epi8(ia));
        _mm_storeu_si128((__m128i *)(xq + (size_t)k * MQ_QBLOCK + 16), _mm512_cvtepi32_epi8(ib));
        int32_t s0 = _mm512_reduce_add_epi32(ia), s1 = _mm512_reduce_add_epi32(ib);
        xsum[k] = s0 + s1;
        xsum16[2 * k] = s0;
        xsum16[2 * k + 1] = s1;
        sx[k] = amax / 127.0f;
    }
}

/* ggml's K-quants with int8 activations, one x row at a time (a8_dot). Per 256-block the x
 * side (its 256 codes in four vectors of 64, and per 16 weights j the sx of j's 32 and sx times
 * xsum16) is made once for 4 rows; each row's block becomes its unsigned codes in column order
 * (blocks.h: value = S[j] u - M[j]) in four vectors of 64, and S and M as 16 lanes. One vpdpbusd
 * per 64 codes gives 16 lane sums of 4 products, lane l of vector c belonging to 16 4c + l / 4;
 * each is converted and multiplied by its S times sx (one vpermps picks them), and the mins
 * come off as M times sx * xsum16, all in one 16-lane sum per row. */
typedef struct {
    __m512i q[4];
    __m512 sx, xs;
} ka8_x_t;

enum { KA8_Q2, KA8_Q3, KA8_Q4, KA8_Q5, KA8_Q6 };

INLINE T512V void ka8_x(const int8_t *xq, const float *sx, const int32_t *xsum16, int b,
                        ka8_x_t *x) {
    const __m512i half = _mm512_set_epi32(7, 7, 6, 6, 5, 5, 4, 4, 3, 3, 2, 2, 1, 1, 0, 0);
#pragma GCC unroll 4
    for (int c = 0; c < 4; c++)
        x->q[c] = _mm512_loadu_si512(xq + (size_t)b * MQ_QK_K + 64 * c);
    x->sx = _mm512_permutexvar_ps(half, _mm512_castps256_ps512(_mm256_loadu_ps(sx + 8 * b)));
    x->xs = _mm512_mul_ps(x->sx, _mm512_cvtepi32_ps(_mm512_loadu_si512(xsum16 + 16 * b)));
}

/* A 256-bit load in both halves of a vector. */
INLINE T512V __m512i both_halves(const uint8_t *p) {
    return _mm512_broadcast_i64x4(_mm256_loadu_si256((const __m256i *)p));
}

/* A constant per half (16-bit lanes for shifts, bytes for bit tests). */
INLINE T512V __m512i halves16(short lo, short hi) {
    return _mm512_inserti64x4(_mm512_set1_epi16(lo), _mm256_set1_epi16(hi), 1);
}
INLINE T512V __m512i halves8(int lo, int hi) {
    return _mm512_inserti64x4(_mm512_set1_epi8((char)lo), _mm256_set1_epi8((char)hi), 1);
}

/* Q2_K (three = 0) and Q3_K: the codes of half h's planes j and j + 1 (j even) are 32 bytes of
 * 2-bit fields, shifted by 2j in the first half of the vector, 2j + 2 in the second; Q3_K adds
 * 4 where bit 4h + j (+ 1) of the high-bit mask is set. */
INLINE T512V void ka8_unpack_q23(const uint8_t *blk, int three, const float *f16tab, __m512i *u,
                                 __m512 *S, __m512 *M) {
    const __m512i m3 = _mm512_set1_epi8(3), four = _mm512_set1_epi8(4);
    const uint8_t *qs = blk + (three ? 32 : 16);
    __m512i hm = three ? both_halves(blk) : _mm512_setzero_si512();
#pragma GCC unroll 2
    for (int h = 0; h < 2; h++) {
        __m512i q = both_halves(qs + 32 * h);
#pragma GCC unroll 2
        for (int j = 0; j < 4; j += 2) {
            __m512i c = _mm512_and_si512(
                _mm512_srlv_epi16(q, halves16((short)(2 * j), (short)(2 * j + 2))), m3);
            if (three) {
                __mmask64 set =
                    _mm512_test_epi8_mask(hm, halves8(1 << (4 * h + j), 1 << (4 * h + j + 1)));
                c = _mm512_mask_add_epi8(c, set, c, four);
            }
            u[2 * h + j / 2] = c;
        }
    }
    if (three) { /* scale i: low 4 bits in byte i (i < 8) or i - 8's high nibble, high 2 bits
                    in byte 8 + i % 4 at bit 2 (i / 4) */
        uint16_t hd;
        memcpy(&hd, blk + 108, 2);
        __m512i e = _mm512_cvtepu8_epi32(_mm_maskz_loadu_epi8(0x0FFF, blk + 96));
        const __m512i ia = _mm512_set_epi32(7, 6, 5, 4, 3, 2, 1, 0, 7, 6, 5, 4, 3, 2, 1, 0);
        const __m512i sa = _mm512_set_epi32(4, 4, 4, 4, 4, 4, 4, 4, 0, 0, 0, 0, 0, 0, 0, 0);
        const __m512i ib = _mm512_set_epi32(11, 10, 9, 8, 11, 10, 9, 8, 11, 10, 9, 8, 11, 10, 9, 8);
        const __m512i sb = _mm512_set_epi32(6, 6, 6, 6, 4, 4, 4, 4, 2, 2, 2, 2, 0, 0, 0, 0);
        __m512i lo = _mm512_and_si512(_mm512_srlv_epi32(_mm512_permutexvar_epi32(ia, e), sa),
                                      _mm512_set1_epi32(0xF));
        __m512i hi = _mm512_and_si512(_mm512_srlv_epi32(_mm512_permutexvar_epi32(ib, e), sb),
                                      _mm512_set1_epi32(3));
        __m512i sc =
            _mm512_sub_epi32(_mm512_or_si512(lo, _mm512_slli_epi32(hi, 4)), _mm512_set1_epi32(32));
        *S = _mm512_mul_ps(_mm512_set1_ps(f16tab[hd]), _mm512_cvtepi32_ps(sc));
        *M = _mm512_mul_ps(_mm512_set1_ps(4.0f), *S);
    } else {
        uint16_t hd, hmn;
        memcpy(&hd, blk + 80, 2);
        memcpy(&hmn, blk + 82, 2);
        __m512i e = _mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i *)blk));
        *S = _mm512_mul_ps(_mm512_set1_ps(f16tab[hd]),
                           _mm512_cvtepi32_ps(_mm512_and_si512(e, _mm512_set1_epi32(0xF))));
        *M =
            _mm512_mul_ps(_mm512_set1_ps(f16tab[hmn]), _mm512_cvtepi32_ps(_mm512_srli_epi32(e, 4)));
    }
}

/* Q4_K (five = 0) and Q5_K: the 32 bytes of sub-blocks 2c and 2c + 1 in both halves, the low
 * nibbles kept in the first, the high ones in the second; Q5_K adds 16 where bit 2c (2c + 1)
 * of qh is set. The 6-bit scale and min of sub-block k (lanes 2k, 2k + 1):
 *   k < 4:  sc = q[k] & 63,                        m = q[k + 4] & 63
 *   k >= 4: sc = (q[k + 4] & 15) | (q[k - 4] >> 6) << 4,  m = (q[k + 4] >> 4) | (q[k] >> 6) << 4 */
INLINE T512V void ka8_unpack_q45(const uint8_t *blk, int five, const float *f16tab, __m512i *u,
                                 __m512 *S, __m512 *M) {
    const __m512i m4 = _mm512_set1_epi8(0x0F), sixteen = _mm512_set1_epi8(16);
    const uint8_t *ql = blk + (five ? 48 : 16);
    __m512i qh = five ? both_halves(blk + 16) : _mm512_setzero_si512();
#pragma GCC unroll 4
    for (int c = 0; c < 4; c++) {
        __m512i v =
            _mm512_and_si512(_mm512_srlv_epi16(both_halves(ql + 32 * c), halves16(0, 4)), m4);
        if (five)
            v = _mm512_mask_add_epi8(
                v, _mm512_test_epi8_mask(qh, halves8(1 << (2 * c), 1 << (2 * c + 1))), v, sixteen);
        u[c] = v;
    }
    uint16_t hd, hm;
    memcpy(&hd, blk, 2);
    memcpy(&hm, blk + 2, 2);
    __m512i e = _mm512_cvtepu8_epi32(_mm_maskz_loadu_epi8(0x0FFF, blk + 4));
    /* lane t: sub-block k = t / 2 */
    const __m512i ia = _mm512_set_epi32(11, 11, 10, 10, 9, 9, 8, 8, 3, 3, 2, 2, 1, 1, 0, 0);
    const __m512i ib = _mm512_set_epi32(3, 3, 2, 2, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0);
    const __m512i im = _mm512_set_epi32(11, 11, 10, 10, 9, 9, 8, 8, 7, 7, 6, 6, 5, 5, 4, 4);
    const __m512i ibm = _mm512_set_epi32(7, 7, 6, 6, 5, 5, 4, 4, 0, 0, 0, 0, 0, 0, 0, 0);
    const __m512i low6 =
        _mm512_set_epi32(15, 15, 15, 15, 15, 15, 15, 15, 63, 63, 63, 63, 63, 63, 63, 63);
    const __m512i sm = _mm512_set_epi32(4, 4, 4, 4, 4, 4, 4, 4, 0, 0, 0, 0, 0, 0, 0, 0);
    const __m512i top =
        _mm512_set_epi32(0x30, 0x30, 0x30, 0x30, 0x30, 0x30, 0x30, 0x30, 0, 0, 0, 0, 0, 0, 0, 0);
    __m512i sc = _mm512_or_si512(
        _mm512_and_si512(_mm512_permutexvar_epi32(ia, e), low6),
        _mm512_and_si512(_mm512_srli_epi32(_mm512_permutexvar_epi32(ib, e), 2), top));
    __m512i mn = _mm512_or_si512(
        _mm512_and_si512(_mm512_srlv_epi32(_mm512_permutexvar_epi32(im, e), sm), low6),
        _mm512_and_si512(_mm512_srli_epi32(_mm512_permutexvar_epi32(ibm, e), 2), top));
    *S = _mm512_mul_ps(_mm512_set1_ps(f16tab[hd]), _mm512_cvtepi32_ps(sc));
    *M = _mm512_mul_ps(_mm512_set1_ps(f16tab[hm]), _mm512_cvtepi32_ps(mn));
}

/* Q6_K: half h's 64 bytes of low nibbles give weights 0..63 of the half (low nibbles) and
 * 64..127 (high ones); the 32 bytes of high pairs, in both halves, give bits 2k, 2k + 1 for
 * weights 32k .. 32k + 31, moved to bits 4 and 5. */
INLINE T512V void ka8_unpack_q6(const uint8_t *blk, const float *f16tab, __m512i *u, __m512 *S,
                                __m512 *M) {
    const __m512i m4 = _mm512_set1_epi8(0x0F), top = _mm512_set1_epi8(0x30);
#pragma GCC unroll 2
    for (int h = 0; h < 2; h++) {
        __m512i l = _mm512_loadu_si512(blk + 64 * h), q = both_halves(blk + 128 + 32 * h);
        u[2 * h] = _mm512_or_si512(_mm512_and_si512(l, m4),
                                   _mm512_and_si512(_mm512_sllv_epi16(q, halves16(4, 2)), top));
        u[2 * h + 1] = _mm512_or_si512(_mm512_and_si512(_mm512_srli_epi16(l, 4), m4),
                                       _mm512_and_si512(_mm512_srlv_epi16(q, halves16(0, 2)), top));
    }
    uint16_t hd;
    memcpy(&hd, blk + 208, 2);
    *S = _mm512_mul_ps(
        _mm512_set1_ps(f16tab[hd]),
        _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_loadu_si128((const __m128i *)(blk + 192)))));
    *M = _mm512_mul_ps(_mm512_set1_ps(32.0f), *S);
}

/* Rows o .. o + WR - 1 against x row n. */
INLINE T512V void ka8_rows(const mq_qweight_t *p, int kind, int WR, int o, const mq_a8_t *xa, int n,
                           float *y) {
    int nb = p->cols / MQ_QK_K;
    size_t bb = p->format->block_bytes, k0 = (size_t)n * (size_t)xa->nblk;
    const int8_t *xq = xa->xq + k0 * MQ_QBLOCK;
    const float *f16tab = mq_fp16_table();
    const uint8_t *row[4];
    __m512 acc[4];
    __m512i pick[4]; /* lane l of vector c: the factor of 16 4c + l / 4 */
#pragma GCC unroll 4
    for (int c = 0; c < 4; c++)
        pick[c] =
            _mm512_add_epi32(_mm512_set1_epi32(4 * c),
                             _mm512_set_epi32(3, 3, 3, 3, 2, 2, 2, 2, 1, 1, 1, 1, 0, 0, 0, 0));
    rows_begin(p, WR, o, row, acc);
    for (int b = 0; b < nb; b++) {
        ka8_x_t x;
        ka8_x(xq, xa->sx + k0, xa->xsum16 + 2 * k0, b, &x);
#pragma GCC unroll 4
        for (int w = 0; w < WR; w++) {
            const uint8_t *blk = row[w] + (size_t)b * bb;
            mq_prefetch_block(row[w], (size_t)b * bb, bb, p->row_bytes, WR);
            __m512i u[4];
            __m512 S, M;
            switch (kind) {
            case KA8_Q2: ka8_unpack_q23(blk, 0, f16tab, u, &S, &M); break;
            case KA8_Q3: ka8_unpack_q23(blk, 1, f16tab, u, &S, &M); break;
            case KA8_Q4: ka8_unpack_q45(blk, 0, f16tab, u, &S, &M); break;
            case KA8_Q5: ka8_unpack_q45(blk, 1, f16tab, u, &S, &M); break;
            default: ka8_unpack_q6(blk, f16tab, u, &S, &M); break;
            }
            __m512 ss = _mm512_mul_ps(S, x.sx), a = _mm512_fnmadd_ps(M, x.xs, acc[w]);
#pragma GCC unroll 4
            for (int c = 0; c < 4; c++) {
                __m512i d = _mm512_dpbusd_epi32(_mm512_setzero_si512(), u[c], x.q[c]);
                a = _mm512_fmadd_ps(_mm512_cvtepi32_ps(d), _mm512_permutexvar_ps(pick[c], ss), a);
            }
            acc[w] = a;
        }
    }
#pragma GCC unroll 4
    for (int w = 0; w < WR; w++)
        y[(size_t)n * p->rows + o + w] = _mm512_reduce_add_ps(acc[w]);
}

#define KA8_KERNEL(NAME, KIND)                                                                     \
    void T512V NAME(const mq_qweight_t *p, const mq_a8_t *xa, float *y, int o0, int o1,            \
                    void *scratch) {                                                               \
        (void)scratch;                                                                             \
        for (int n = 0; n < xa->N; n++) {                                                          \
            int o = o0;                                                                            \
            for (; o + 4 <= o1; o += 4)                                                            \
                ka8_rows(p, KIND, 4, o, xa, n, y);                                                 \
            for (; o < o1; o++)                                                                    \
                ka8_rows(p, KIND, 1, o, xa, n, y);                                                 \
        }                                                                                          \
    }
KA8_KERNEL(mq_kavx512_a8_q2_k, KA8_Q2)
KA8_KERNEL(mq_kavx512_a8_q3_k, KA8_Q3)
KA8_KERNEL(mq_kavx512_a8_q4_k, KA8_Q4)
KA8_KERNEL(mq_kavx512_a8_q5_k, KA8_Q5)
KA8_KERNEL(mq_kavx512_a8_q6_k, KA8_Q6)
#undef KA8_KERNEL

/* Any format whose scale block is the whole row (the rest of ggml's types): the row's values
 * through the format's reader (mq_kvalues_dot), then this dot product, four chains of 16. */
static float T512 dot_floats(const float *v, const float *x, int C) {
    __m512 a[4] = {_mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_setzero_ps(),
                   _mm512_setzero_ps()};
    int i = 0;
    for (; i + 64 <= C; i += 64)
        for (int j = 0; j < 4; j++)
            a[j] = _mm512_fmadd_ps(_mm512_loadu_ps(v + i + 16 * j), _mm512_loadu_ps(x + i + 16 * j),
                                   a[j]);
    for (; i + 16 <= C; i += 16)
        a[0] = _mm512_fmadd_ps(_mm512_loadu_ps(v + i), _mm512_loadu_ps(x + i), a[0]);
    float s =
        _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(a[0], a[1]), _mm512_add_ps(a[2], a[3])));
    for (; i < C; i++)
        s += v[i] * x[i];
    return s;
}

void T512 mq_kavx512_dot_values(const mq_qweight_t *p, const float *x, float *y, int o0, int o1) {
    mq_kvalues_dot(p, x, y, o0, o1, dot_floats);
}
