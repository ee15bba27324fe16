/* miniquant: the AVX-512 fused kernels (AVX512 F/BW/VL/DQ; the int8-activation ones also VNNI).
 *
 * Every function carries its own target attribute, so a portable build holds these kernels and
 * the dispatcher runs them only on a CPU that has the instructions. They read the weight's
 * stored rows (quant.h) as they are.
 *
 * One x row (decode): per output row 16-lane partial sums over the columns, 4 rows sharing each
 * load of x, 16 rows reduced together at the end. Halves are converted 16 at a time; ggml's
 * Q8_0 blocks sign-extend their 32 codes, Q4_0 blocks split their 16 bytes into low and high
 * nibbles whose values come from a 16-entry table (vpermps); miniquant's 4-bit packed codes
 * (two per byte, in column order) are interleaved back into column order first and read from
 * the grid's table (int: u - 8, nf4: the codebook). The block's sum is multiplied by its scale.
 *
 * Several x rows (prompt): F16 runs tiles of 2 output rows x up to 8 x rows on row-major
 * halves; every other format is dequantized row by row into a buffer (the exact values v * s)
 * and multiplied with x transposed, 16 x rows in the lanes, 4 output rows x up to 64 x rows per
 * tile, each output one FMA chain over the columns in order.
 *
 * Int8 activations (VNNI): vpdpbusd multiplies unsigned by signed bytes, so Q8_0 codes enter
 * with an offset of 128 and Q4_0 nibbles as they are (code + 8); the offset times the sum of
 * the block's activations is taken back from the block's integer sum. */
#include <immintrin.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "kernels_isa.h"

#define T512 __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,fma,f16c")))
#define T512V __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,avx512vnni,fma,f16c")))
#define INLINE static inline __attribute__((always_inline))

/* Weight bytes are requested this far ahead of their use: the hardware prefetcher stops at page
 * boundaries, and a decode streams every byte once. */
#define PF_BYTES 8192

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

/* v[w] = unreduced 16 lanes of row (o + w)'s dot product with x, w < WR. Each 16 of x is loaded
 * once for the WR rows (x is read from cache 4 bytes per weight otherwise); two chains per row. */
INLINE T512 void f16_rows(const mq_qweight_t *p, int WR, int o, const float *x, __m512 *v) {
    int C = p->cols, nh = C / 16, tail = C % 16;
    const mq_fp16_t *row[4];
    __m512 g0[4], g1[4];
#pragma GCC unroll 4
    for (int w = 0; w < WR; w++) {
        row[w] = (const mq_fp16_t *)p->data + (size_t)(o + w) * (size_t)C;
        g0[w] = g1[w] = _mm512_setzero_ps();
    }
    int h = 0;
    for (; h + 2 <= nh; h += 2) {
        __m512 x0 = _mm512_loadu_ps(x + 16 * h), x1 = _mm512_loadu_ps(x + 16 * h + 16);
        __asm__("" : "+v"(x0), "+v"(x1)); /* one load for every row (see tile16) */
#pragma GCC unroll 4
        for (int w = 0; w < WR; w++) {
            _mm_prefetch((const char *)(row[w] + 16 * h) + PF_BYTES, _MM_HINT_T0);
            g0[w] = _mm512_fmadd_ps(h16(row[w], h), x0, g0[w]);
            g1[w] = _mm512_fmadd_ps(h16(row[w], h + 1), x1, g1[w]);
        }
    }
    if (h < nh) {
        __m512 x0 = _mm512_loadu_ps(x + 16 * h);
#pragma GCC unroll 4
        for (int w = 0; w < WR; w++)
            g0[w] = _mm512_fmadd_ps(h16(row[w], h), x0, g0[w]);
        h++;
    }
    if (tail) {
        __mmask16 m = (__mmask16)((1u << tail) - 1);
        __m512 x0 = _mm512_maskz_loadu_ps(m, x + 16 * h);
#pragma GCC unroll 4
        for (int w = 0; w < WR; w++)
            g1[w] = _mm512_fmadd_ps(h16_tail(row[w], h, m), x0, g1[w]);
    }
#pragma GCC unroll 4
    for (int w = 0; w < WR; w++)
        v[w] = _mm512_add_ps(g0[w], g1[w]);
}

static T512 void f16_rows_4(const mq_qweight_t *p, int o, const float *x, __m512 *v) {
    f16_rows(p, 4, o, x, v);
}
static T512 void f16_rows_1(const mq_qweight_t *p, int o, const float *x, __m512 *v) {
    f16_rows(p, 1, o, x, v);
}

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
    __m512 v[16];
    float t[16];
    for (int o = o0; o < o1; o += 16) {
        int cnt = o1 - o < 16 ? o1 - o : 16, k = 0;
        for (; k + 4 <= cnt; k += 4)
            f16_rows_4(p, o + k, x, v + k);
        for (; k < cnt; k++)
            f16_rows_1(p, o + k, x, v + k);
        for (; k < 16; k++)
            v[k] = _mm512_setzero_ps();
        _mm512_storeu_ps(t, hsum16(v));
        for (k = 0; k < cnt; k++)
            y[o + k] = t[k];
    }
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

INLINE T512 float half_at(const uint8_t *p) {
    uint16_t h;
    memcpy(&h, p, sizeof h);
    return _cvtsh_ss(h);
}

/* Q4_0's values, code = nibble - 8, as a table vpermps reads with the low 4 bits of each lane. */
INLINE T512 __m512 q4_lut(void) {
    return _mm512_setr_ps(-8, -7, -6, -5, -4, -3, -2, -1, 0, 1, 2, 3, 4, 5, 6, 7);
}

/* v[w] = unreduced 16 lanes of row (o + w)'s dot product with x, w < WR, for Q8_0 (q8) or Q4_0
 * rows, two chains per row. Q4_0: the 16 bytes of a block widened to 16 lanes, whose low nibble
 * (weights 0-15) and, shifted, high nibble (weights 16-31) index the block's table of values
 * times d; Q8_0: the codes sign-extended and times d. */
INLINE T512 void blocks_rows(const mq_qweight_t *p, int q8, int WR, int o, const float *x,
                             __m512 *v) {
    int nb = p->cols / MQ_QBLOCK;
    size_t bb = q8 ? MQ_Q8_0_BYTES : MQ_Q4_0_BYTES;
    const uint8_t *row[4];
    __m512 a0[4], a1[4];
    const __m512 lut = q4_lut();
#pragma GCC unroll 4
    for (int w = 0; w < WR; w++) {
        row[w] = p->data + (size_t)(o + w) * p->row_bytes;
        a0[w] = a1[w] = _mm512_setzero_ps();
    }
    for (int b = 0; b < nb; b++) {
        __m512 x0 = _mm512_loadu_ps(x + MQ_QBLOCK * b), x1 = _mm512_loadu_ps(x + MQ_QBLOCK * b + 16);
        __asm__("" : "+v"(x0), "+v"(x1)); /* one load for every row */
#pragma GCC unroll 4
        for (int w = 0; w < WR; w++) {
            const uint8_t *blk = row[w] + (size_t)b * bb;
            _mm_prefetch((const char *)blk + PF_BYTES, _MM_HINT_T0);
            __m512 d = _mm512_set1_ps(half_at(blk)), c0, c1;
            if (q8) {
                c0 = _mm512_mul_ps(d, _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(
                                          _mm_loadu_si128((const __m128i *)(blk + 2)))));
                c1 = _mm512_mul_ps(d, _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(
                                          _mm_loadu_si128((const __m128i *)(blk + 18)))));
            } else {
                __m512i q = _mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i *)(blk + 2)));
                __m512 ld = _mm512_mul_ps(lut, d);
                c0 = _mm512_permutexvar_ps(q, ld);
                c1 = _mm512_permutexvar_ps(_mm512_srli_epi32(q, 4), ld);
            }
            a0[w] = _mm512_fmadd_ps(c0, x0, a0[w]);
            a1[w] = _mm512_fmadd_ps(c1, x1, a1[w]);
        }
    }
#pragma GCC unroll 4
    for (int w = 0; w < WR; w++)
        v[w] = _mm512_add_ps(a0[w], a1[w]);
}

/* The same for 4-bit packed codes (two per byte, column order) with side scales per group of g
 * columns, g a multiple of 32. xd is x de-interleaved per 32 columns (even columns, then odd):
 * the low nibbles of 16 bytes are the even weights, the high ones the odd. */
INLINE T512 void packed4_rows(const mq_qweight_t *p, int WR, int o, const float *xd, __m512 lut,
                              __m512 *v) {
    int C = p->cols, g = p->group, nb = C / g, tensor = p->scheme.gran == MQ_QG_TENSOR;
    const uint8_t *row[4];
    const mq_fp16_t *sc[4];
    __m512 a0[4], a1[4];
#pragma GCC unroll 4
    for (int w = 0; w < WR; w++) {
        row[w] = p->data + (size_t)(o + w) * p->row_bytes;
        sc[w] = mq_qweight_row_scales(p, o + w);
        a0[w] = a1[w] = _mm512_setzero_ps();
    }
    for (int b = 0; b < nb; b++) {
        __m512 ls[4];
#pragma GCC unroll 4
        for (int w = 0; w < WR; w++)
            ls[w] = _mm512_mul_ps(lut, _mm512_set1_ps(_cvtsh_ss(tensor ? sc[w][0] : sc[w][b])));
        for (int c = b * g; c < (b + 1) * g; c += 32) {
            __m512 x0 = _mm512_loadu_ps(xd + c), x1 = _mm512_loadu_ps(xd + c + 16);
            __asm__("" : "+v"(x0), "+v"(x1));
#pragma GCC unroll 4
            for (int w = 0; w < WR; w++) {
                const uint8_t *by = row[w] + c / 2;
                _mm_prefetch((const char *)by + PF_BYTES, _MM_HINT_T0);
                __m512i q = _mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i *)by));
                a0[w] = _mm512_fmadd_ps(_mm512_permutexvar_ps(q, ls[w]), x0, a0[w]);
                a1[w] = _mm512_fmadd_ps(_mm512_permutexvar_ps(_mm512_srli_epi32(q, 4), ls[w]), x1,
                                        a1[w]);
            }
        }
    }
#pragma GCC unroll 4
    for (int w = 0; w < WR; w++)
        v[w] = _mm512_add_ps(a0[w], a1[w]);
}

/* The dot kernels over 16 rows at a time: 4 rows per call of the row functions, then one
 * reduction of the 16. */
typedef void (*rows_fn)(const mq_qweight_t *p, int WR, int o, const float *x, __m512 lut,
                        __m512 *v);

#define ROWS_FN(NAME, CALL)                                                                        \
    static T512 void NAME(const mq_qweight_t *p, int WR, int o, const float *x, __m512 lut,      \
                          __m512 *v) {                                                             \
        (void)lut;                                                                                 \
        if (WR == 4)                                                                               \
            CALL(4);                                                                               \
        else                                                                                       \
            CALL(1);                                                                               \
    }
#define Q8_CALL(WR) blocks_rows(p, 1, WR, o, x, v)
#define Q4_CALL(WR) blocks_rows(p, 0, WR, o, x, v)
#define P4_CALL(WR) packed4_rows(p, WR, o, x, lut, v)
ROWS_FN(rows_q8, Q8_CALL)
ROWS_FN(rows_q4, Q4_CALL)
ROWS_FN(rows_p4, P4_CALL)

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

void T512 mq_kavx512_dot_q8_0(const mq_qweight_t *p, const float *x, float *y, int o0, int o1) {
    dot_16s(p, rows_q8, _mm512_setzero_ps(), x, y, o0, o1);
}

void T512 mq_kavx512_dot_q4_0(const mq_qweight_t *p, const float *x, float *y, int o0, int o1) {
    dot_16s(p, rows_q4, _mm512_setzero_ps(), x, y, o0, o1);
}

/* The grid's value of each of the 16 fields of a 4-bit packed weight, read by the format's own
 * row reader. */
INLINE T512 __m512 packed4_lut(const mq_qweight_t *p) {
    static const uint8_t fields[8] = {0x10, 0x32, 0x54, 0x76, 0x98, 0xba, 0xdc, 0xfe};
    float t[16];
    p->format->values_row(fields, &p->scheme, 16, t);
    return _mm512_loadu_ps(t);
}

/* Packed codes: 4-bit grids whose groups are whole 32s run fused (x de-interleaved once per
 * call); other widths and groups go through the scalar reference. */
void T512 mq_kavx512_dot_packed(const mq_qweight_t *p, const float *x, float *y, int o0, int o1) {
    int C = p->cols;
    if (p->scheme.bits != 4 || p->group % 32) {
        mq_kscalar_dot(p, x, y, o0, o1);
        return;
    }
    float *xd = malloc((size_t)C * sizeof *xd);
    if (!xd) {
        mq_kscalar_dot(p, x, y, o0, o1);
        return;
    }
    const __m512i even = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
    const __m512i odd = _mm512_add_epi32(even, _mm512_set1_epi32(1));
    for (int c = 0; c < C; c += 32) {
        __m512 a = _mm512_loadu_ps(x + c), b = _mm512_loadu_ps(x + c + 16);
        _mm512_storeu_ps(xd + c, _mm512_permutex2var_ps(a, even, b));
        _mm512_storeu_ps(xd + c + 16, _mm512_permutex2var_ps(a, odd, b));
    }
    dot_16s(p, rows_p4, packed4_lut(p), xd, y, o0, o1);
    free(xd);
}

/* ---------------------------------------------------------------------------------------------
 * dequantized rows, exactly the reference's values v * s */

/* Row r of a Q8_0 / Q4_0 weight, or of a 4-bit packed one whose groups are whole 32s, into y;
 * other formats through their row's dequantize_row. */
static T512 void deq_row(const mq_qweight_t *p, int r, float *y) {
    int C = p->cols, nb = C / MQ_QBLOCK;
    const uint8_t *row = p->data + (size_t)r * p->row_bytes;
    const mq_format_t *f = p->format;
    if (f->block && f->block_bytes == MQ_Q4_0_BYTES) {
        const __m512 lut = q4_lut();
        for (int b = 0; b < nb; b++) {
            const uint8_t *blk = row + (size_t)b * MQ_Q4_0_BYTES;
            __m512 ld = _mm512_mul_ps(lut, _mm512_set1_ps(half_at(blk)));
            __m512i q = _mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i *)(blk + 2)));
            _mm512_storeu_ps(y + MQ_QBLOCK * b, _mm512_permutexvar_ps(q, ld));
            _mm512_storeu_ps(y + MQ_QBLOCK * b + 16,
                             _mm512_permutexvar_ps(_mm512_srli_epi32(q, 4), ld));
        }
    } else if (f->block && f->block_bytes == MQ_Q8_0_BYTES) {
        for (int b = 0; b < nb; b++) {
            const uint8_t *blk = row + (size_t)b * MQ_Q8_0_BYTES;
            __m512 d = _mm512_set1_ps(half_at(blk));
            for (int h = 0; h < 2; h++)
                _mm512_storeu_ps(y + MQ_QBLOCK * b + 16 * h,
                                 _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_loadu_si128(
                                                   (const __m128i *)(blk + 2 + 16 * h)))),
                                               d));
        }
    } else if (f->side_scales && p->scheme.bits == 4 && p->group % 32 == 0) {
        const __m512 lut = packed4_lut(p);
        const __m512i lo_idx =
            _mm512_setr_epi32(0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23);
        const __m512i hi_idx = _mm512_add_epi32(lo_idx, _mm512_set1_epi32(8));
        const mq_fp16_t *sc = mq_qweight_row_scales(p, r);
        int tensor = p->scheme.gran == MQ_QG_TENSOR;
        for (int c = 0; c < C; c += 32) {
            __m512 ls = _mm512_mul_ps(lut, _mm512_set1_ps(_cvtsh_ss(sc[tensor ? 0 : c / p->group])));
            __m512i q = _mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i *)(row + c / 2)));
            __m512 ev = _mm512_permutexvar_ps(q, ls), od = _mm512_permutexvar_ps(_mm512_srli_epi32(q, 4), ls);
            _mm512_storeu_ps(y + c, _mm512_permutex2var_ps(ev, lo_idx, od));
            _mm512_storeu_ps(y + c + 16, _mm512_permutex2var_ps(ev, hi_idx, od));
        }
    } else {
        mq_qweight_dequantize_row(p, r, y);
    }
}

/* ---------------------------------------------------------------------------------------------
 * several x rows: dequantized rows against x transposed */

/* t[w * 64 + n - n0] for output rows w < WR of wb (rows C floats apart) and x rows n0 + 16 k ..,
 * k < K: each one FMA chain over the columns in order. */
INLINE T512 void deq_tile(int WR, int K, const float *wb, int C, const float *xt, int ldt, int n0,
                          float *t) {
    __m512 acc[4][4];
#pragma GCC unroll 4
    for (int w = 0; w < WR; w++)
#pragma GCC unroll 4
        for (int k = 0; k < K; k++)
            acc[w][k] = _mm512_setzero_ps();
    for (int i = 0; i < C; i++) {
        const float *xr = xt + (size_t)i * ldt + n0;
        __m512 xv[4];
#pragma GCC unroll 4
        for (int k = 0; k < K; k++)
            xv[k] = _mm512_loadu_ps(xr + 16 * k);
#pragma GCC unroll 4
        for (int w = 0; w < WR; w++) {
            __m512 wv = _mm512_set1_ps(wb[(size_t)w * C + i]);
#pragma GCC unroll 4
            for (int k = 0; k < K; k++)
                acc[w][k] = _mm512_fmadd_ps(wv, xv[k], acc[w][k]);
        }
    }
#pragma GCC unroll 4
    for (int w = 0; w < WR; w++)
#pragma GCC unroll 4
        for (int k = 0; k < K; k++)
            _mm512_storeu_ps(t + w * 64 + 16 * k, acc[w][k]);
}

#define DEQ_FN(WR, K)                                                                              \
    static T512 void deq_##WR##_##K(const float *wb, int C, const float *xt, int ldt, int n0,     \
                                    float *t) {                                                    \
        deq_tile(WR, K, wb, C, xt, ldt, n0, t);                                                    \
    }
DEQ_FN(1, 1)
DEQ_FN(1, 2)
DEQ_FN(1, 3)
DEQ_FN(1, 4)
DEQ_FN(4, 1)
DEQ_FN(4, 2)
DEQ_FN(4, 3)
DEQ_FN(4, 4)
typedef void (*deq_fn)(const float *wb, int C, const float *xt, int ldt, int n0, float *t);
/* [4 output rows][vectors of x rows - 1] */
static const deq_fn DEQ_TILES[2][4] = {{deq_1_1, deq_1_2, deq_1_3, deq_1_4},
                                       {deq_4_1, deq_4_2, deq_4_3, deq_4_4}};

void T512 mq_kavx512_gemm_deq(const mq_qweight_t *p, const float *xt, int ldt, int N, float *y,
                              int o0, int o1, float *wb) {
    int C = p->cols, OC = p->rows;
    for (int o = o0; o < o1; o++)
        deq_row(p, o, wb + (size_t)(o - o0) * C);
    /* 64 x rows at a time, so that their columns stay in cache across the output rows; the
     * outputs of 16 rows gathered in t and written to y a row of 16 at a time */
    float t[16 * 64];
    for (int n0 = 0; n0 < N; n0 += 64) {
        int K = (N - n0 + 15) / 16, nn = N - n0 < 64 ? N - n0 : 64;
        if (K > 4) K = 4;
        for (int o16 = o0; o16 < o1; o16 += 16) {
            int oe = o16 + 16 < o1 ? o16 + 16 : o1, o = o16;
            for (; o + 4 <= oe; o += 4)
                DEQ_TILES[1][K - 1](wb + (size_t)(o - o0) * C, C, xt, ldt, n0, t + (o - o16) * 64);
            for (; o < oe; o++)
                DEQ_TILES[0][K - 1](wb + (size_t)(o - o0) * C, C, xt, ldt, n0, t + (o - o16) * 64);
            for (int n = 0; n < nn; n++)
                for (int j = 0; j < oe - o16; j++)
                    y[(size_t)(n0 + n) * OC + o16 + j] = t[j * 64 + n];
        }
    }
}

/* ---------------------------------------------------------------------------------------------
 * int8 activations (VNNI) */

/* Row o against x row n: per 32-block an integer dot product of the unsigned weights (code +
 * off) with xq, the offset taken back, times sx and the block's d. */
INLINE T512V float a8_row(const mq_qweight_t *p, int q8, int o, const mq_a8_t *xa, int n) {
    int nb = p->cols / MQ_QBLOCK;
    size_t bb = q8 ? MQ_Q8_0_BYTES : MQ_Q4_0_BYTES;
    const uint8_t *row = p->data + (size_t)o * p->row_bytes;
    const int8_t *xq = xa->xq + (size_t)n * xa->nblk * MQ_QBLOCK;
    const float *sx = xa->sx + (size_t)n * xa->nblk;
    const int32_t *xs = xa->xsum + (size_t)n * xa->nblk;
    const __m256i flip = _mm256_set1_epi8((char)0x80);
    const __m128i lo4 = _mm_set1_epi8(0x0f);
    __m256 acc = _mm256_setzero_ps();
    for (int b = 0; b < nb; b++) {
        const uint8_t *blk = row + (size_t)b * bb;
        __m256i u;
        if (q8) {
            u = _mm256_xor_si256(_mm256_loadu_si256((const __m256i *)(blk + 2)), flip);
        } else {
            __m128i q = _mm_loadu_si128((const __m128i *)(blk + 2));
            u = _mm256_set_m128i(_mm_and_si128(_mm_srli_epi16(q, 4), lo4), _mm_and_si128(q, lo4));
        }
        __m256i d = _mm256_dpbusd_epi32(_mm256_setzero_si256(), u,
                                        _mm256_loadu_si256((const __m256i *)(xq + 32 * b)));
        /* the 8 partial sums, less the offset, as one float lane each; summed at the end */
        int off = q8 ? 128 : 8;
        __m256 f = _mm256_cvtepi32_ps(d);
        float corr = (float)(-off * xs[b]);
        f = _mm256_add_ps(f, _mm256_setr_ps(corr, 0, 0, 0, 0, 0, 0, 0));
        acc = _mm256_fmadd_ps(_mm256_set1_ps(sx[b] * half_at(blk)), f, acc);
    }
    __m128 h = _mm_add_ps(_mm256_castps256_ps128(acc), _mm256_extractf128_ps(acc, 1));
    h = _mm_add_ps(h, _mm_movehl_ps(h, h));
    h = _mm_add_ss(h, _mm_movehdup_ps(h));
    return _mm_cvtss_f32(h);
}

INLINE T512V void a8_rows(const mq_qweight_t *p, int q8, const mq_a8_t *xa, float *y, int o0,
                          int o1) {
    int OC = p->rows;
    for (int n = 0; n < xa->N; n++)
        for (int o = o0; o < o1; o++)
            y[(size_t)n * OC + o] = a8_row(p, q8, o, xa, n);
}

void T512V mq_kavx512_a8_q8_0(const mq_qweight_t *p, const mq_a8_t *xa, float *y, int o0, int o1) {
    a8_rows(p, 1, xa, y, o0, o1);
}

void T512V mq_kavx512_a8_q4_0(const mq_qweight_t *p, const mq_a8_t *xa, float *y, int o0, int o1) {
    a8_rows(p, 0, xa, y, o0, o1);
}
