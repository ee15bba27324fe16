/* miniquant: the AVX2 fused kernels (AVX2, FMA, F16C), for x86-64 CPUs without AVX-512.
 *
 * Every function carries its own target attribute, so a portable build holds these kernels and
 * the dispatcher runs them only on a CPU that has the instructions. The shapes follow the
 * AVX-512 version (kernels_avx512.c) with 8 lanes. Halves (row-major): one x row runs two chains
 * per row, 4 rows sharing each load of x, 8 rows reduced together; several x rows run tiles of 2
 * output rows x up to 4 x rows. Q8_0 codes are sign-extended 8 at a time; Q4_0 nibbles are
 * split, made signed (nibble - 8) as bytes and converted; 4-bit packed codes are interleaved
 * into column order and read from the grid's 16-entry table with two 8-entry permutes and a
 * blend on the field's bit 3; ggml's K-quants decode each 256-block's scales once per row and
 * widen 8 codes at a time, as the AVX-512 kernels do with 16. One x row requests each row's
 * bytes ahead (mq_prefetch_rows), as the AVX-512 kernels do. Several x rows of a quantized
 * weight: 8 output rows at a time
 * copied into a float panel (unscaled values column by column, one lane per row) with their block
 * scales, then each output one FMA chain over the columns of v * s, up to 8 x rows a tile. */
#include <immintrin.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "blocks.h"
#include "kernels_isa.h"
#include "kernels_x86.h"

#define T2 __attribute__((target("avx2,fma,f16c")))
#define INLINE static inline __attribute__((always_inline))

/* The formats as the loops of the halves see them. */
enum { F_F16 = 0, F_F32 };

/* Lane k of the result is the sum of the 8 lanes of v[k]. */
INLINE T2 __m256 hsum8(const __m256 *v) {
    __m256 t0 = _mm256_hadd_ps(v[0], v[1]), t1 = _mm256_hadd_ps(v[2], v[3]);
    __m256 t2 = _mm256_hadd_ps(v[4], v[5]), t3 = _mm256_hadd_ps(v[6], v[7]);
    __m256 u0 = _mm256_hadd_ps(t0, t1), u1 = _mm256_hadd_ps(t2, t3);
    return _mm256_add_ps(_mm256_permute2f128_ps(u0, u1, 0x20),
                         _mm256_permute2f128_ps(u0, u1, 0x31));
}

/* The dot kernels over 8 rows at a time: 4 rows per call of the row functions (lut: the 4-bit
 * values, floats for packed weights, bytes for Q4_0 and IQ4_NL; unused by the others), then one
 * reduction of the 8. */
typedef void (*rows_fn)(const mq_qweight_t *p, int WR, int o, const float *x, const void *lut,
                        __m256 *v);

INLINE T2 void dot_8s(const mq_qweight_t *p, rows_fn fn, const void *lut, const float *x, float *y,
                      int o0, int o1) {
    __m256 v[8];
    float t[8];
    for (int o = o0; o < o1; o += 8) {
        int cnt = o1 - o < 8 ? o1 - o : 8, k = 0;
        for (; k + 4 <= cnt; k += 4)
            fn(p, 4, o + k, x, lut, v + k);
        for (; k < cnt; k++)
            fn(p, 1, o + k, x, lut, v + k);
        for (; k < 8; k++)
            v[k] = _mm256_setzero_ps();
        _mm256_storeu_ps(t, hsum8(v));
        for (k = 0; k < cnt; k++)
            y[o + k] = t[k];
    }
}

/* ---------------------------------------------------------------------------------------------
 * halves and floats, row-major (the functions keep a format argument: F_F16 for both prompt
 * and decode, F_F32 for decode) */

/* Bytes of one weight. */
INLINE T2 size_t elem_bytes(int f) {
    return f == F_F32 ? sizeof(float) : sizeof(mq_fp16_t);
}

INLINE T2 const uint8_t *row_ptr(const mq_qweight_t *p, int f, int o) {
    return (const uint8_t *)p->data + (size_t)o * (size_t)p->cols * elem_bytes(f);
}

/* Unscaled weights 8u .. 8u+7 of a row. */
INLINE T2 __m256 w8(int f, const uint8_t *row, int u) {
    if (f == F_F32) return _mm256_loadu_ps((const float *)(const void *)row + (size_t)u * 8);
    return _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(row + (size_t)u * 16)));
}

/* A row's last n < 8 weights from unit u, zero-filled (nothing past the row is read). */
INLINE T2 __m256 w8_tail(int f, const uint8_t *row, int u, int n) {
    _Alignas(32) uint8_t buf[32] = {0};
    memcpy(buf, row + (size_t)u * 8 * elem_bytes(f), (size_t)n * elem_bytes(f));
    return w8(f, buf, 0);
}

/* x[8u .. 8u+n), zero-filled. */
INLINE T2 __m256 x_tail(const float *x, int u, int n) {
    static const int32_t ones[16] = {-1, -1, -1, -1, -1, -1, -1, -1, 0, 0, 0, 0, 0, 0, 0, 0};
    __m256i m = _mm256_loadu_si256((const __m256i *)(ones + 8 - n));
    return _mm256_maskload_ps(x + 8 * u, m);
}

/* Blocks of a row: nb blocks of nu full units of 8, then (whole rows only) a partial unit. */
typedef struct blocks {
    int nb, nu, tail;
} blocks_t;

INLINE T2 blocks_t row_blocks(const mq_qweight_t *p) {
    int C = p->cols, g = p->group;
    if (g == C) return (blocks_t){1, C / 8, C % 8};
    return (blocks_t){C / g, g / 8, 0};
}

/* v[w] = unreduced 8 lanes of row (o + w)'s dot product with x, w < WR; each 8 of x loaded
 * once for the WR rows. Per block two chains per row, their sum added to the row's. */
INLINE T2 void dot_rows(const mq_qweight_t *p, int f, int WR, blocks_t bl, int o, const float *x,
                        __m256 *v) {
    size_t es = elem_bytes(f), rb = (size_t)p->cols * es;
    const uint8_t *row[4];
    __m256 acc[4], g0[4], g1[4];
#pragma GCC unroll 4
    for (int w = 0; w < WR; w++) {
        row[w] = row_ptr(p, f, o + w);
        acc[w] = _mm256_setzero_ps();
    }
    for (int b = 0; b < bl.nb; b++) {
#pragma GCC unroll 4
        for (int w = 0; w < WR; w++)
            g0[w] = g1[w] = _mm256_setzero_ps();
        int u = b * bl.nu, ue = u + bl.nu;
        for (; u + 2 <= ue; u += 2) {
            __m256 x0 = _mm256_loadu_ps(x + 8 * u), x1 = _mm256_loadu_ps(x + 8 * u + 8);
            __asm__("" : "+x"(x0), "+x"(x1)); /* one load for every row */
#pragma GCC unroll 4
            for (int w = 0; w < WR; w++) {
                if (f == F_F32 || u % 4 == 0) /* F32 and F16 rows (the callers): 64 bytes
                                                 of floats a step, 32 of halves */
                    mq_prefetch_rows_l2(row[w], (size_t)u * 8 * es, rb, WR);
                g0[w] = _mm256_fmadd_ps(w8(f, row[w], u), x0, g0[w]);
                g1[w] = _mm256_fmadd_ps(w8(f, row[w], u + 1), x1, g1[w]);
            }
        }
        if (u < ue) {
            __m256 x0 = _mm256_loadu_ps(x + 8 * u);
#pragma GCC unroll 4
            for (int w = 0; w < WR; w++)
                g0[w] = _mm256_fmadd_ps(w8(f, row[w], u), x0, g0[w]);
            u++;
        }
        if (bl.tail) {
            __m256 x0 = x_tail(x, u, bl.tail);
#pragma GCC unroll 4
            for (int w = 0; w < WR; w++)
                g1[w] = _mm256_fmadd_ps(w8_tail(f, row[w], u, bl.tail), x0, g1[w]);
        }
#pragma GCC unroll 4
        for (int w = 0; w < WR; w++) {
            __m256 sum = _mm256_add_ps(g0[w], g1[w]);
            acc[w] = _mm256_add_ps(acc[w], sum);
        }
    }
#pragma GCC unroll 4
    for (int w = 0; w < WR; w++)
        v[w] = acc[w];
}

/* A rows_fn that runs CALL(WR) with WR a constant, 4 or 1, so each inlines its own loop. */
#define ROWS_FN(NAME, CALL)                                                                        \
    static T2 void NAME(const mq_qweight_t *p, int WR, int o, const float *x, const void *lut,     \
                        __m256 *v) {                                                               \
        (void)lut;                                                                                 \
        if (WR == 4)                                                                               \
            CALL(4);                                                                               \
        else                                                                                       \
            CALL(1);                                                                               \
    }
#define F16_CALL(WR) dot_rows(p, F_F16, WR, row_blocks(p), o, x, v)
#define F32_CALL(WR) dot_rows(p, F_F32, WR, row_blocks(p), o, x, v)
ROWS_FN(rows_f16, F16_CALL)
ROWS_FN(rows_f32, F32_CALL)

INLINE T2 void tile8(int WR, int R, const __m256 *wv, const float *x, int ldx, int u, int tail,
                     __m256 acc[2][4]) {
#pragma GCC unroll 4
    for (int r = 0; r < R; r++) {
        const float *xr = x + (size_t)r * ldx;
        __m256 xv = tail ? x_tail(xr, u, tail) : _mm256_loadu_ps(xr + 8 * u);
        __asm__("" : "+x"(xv)); /* one load of x for both weight rows (see kernels_avx512.c) */
#pragma GCC unroll 2
        for (int w = 0; w < WR; w++)
            acc[w][r] = _mm256_fmadd_ps(wv[w], xv, acc[w][r]);
    }
}

/* v[w * 4 + r] = unreduced dot product of weight row o + w with x row r (rows ldx apart). */
INLINE T2 void tile(const mq_qweight_t *p, int f, int WR, int R, const float *x, int ldx, int o,
                    __m256 *v) {
    blocks_t bl = row_blocks(p);
    const uint8_t *row[2];
    __m256 acc[2][4];
#pragma GCC unroll 2
    for (int w = 0; w < WR; w++) {
        row[w] = row_ptr(p, f, o + w);
#pragma GCC unroll 4
        for (int r = 0; r < R; r++)
            acc[w][r] = _mm256_setzero_ps();
    }
    for (int b = 0; b < bl.nb; b++) {
        __m256 wv[2];
        int u = b * bl.nu, ue = u + bl.nu;
        for (; u < ue; u++) {
#pragma GCC unroll 2
            for (int w = 0; w < WR; w++)
                wv[w] = w8(f, row[w], u);
            tile8(WR, R, wv, x, ldx, u, 0, acc);
        }
        if (bl.tail) {
#pragma GCC unroll 2
            for (int w = 0; w < WR; w++)
                wv[w] = w8_tail(f, row[w], u, bl.tail);
            tile8(WR, R, wv, x, ldx, u, bl.tail, acc);
        }
    }
#pragma GCC unroll 2
    for (int w = 0; w < WR; w++)
#pragma GCC unroll 4
        for (int r = 0; r < R; r++)
            v[w * 4 + r] = acc[w][r];
}

typedef void (*tile_fn)(const mq_qweight_t *p, const float *x, int ldx, int o, __m256 *v);
#define TILE_FN(F, R, WR)                                                                          \
    static T2 void tile_##F##_##R##_##WR(const mq_qweight_t *p, const float *x, int ldx, int o,    \
                                         __m256 *v) {                                              \
        tile(p, F, WR, R, x, ldx, o, v);                                                           \
    }
#define TILE_FNS(F)                                                                                \
    TILE_FN(F, 1, 1)                                                                               \
    TILE_FN(F, 1, 2) TILE_FN(F, 2, 1) TILE_FN(F, 2, 2) TILE_FN(F, 4, 1) TILE_FN(F, 4, 2)
TILE_FNS(F_F16)
#define TILE_ROW(F)                                                                                \
    {                                                                                              \
        {tile_##F##_1_1, tile_##F##_1_2}, {tile_##F##_2_1, tile_##F##_2_2},                        \
            {tile_##F##_4_1, tile_##F##_4_2},                                                      \
    }
/* [x rows: 1, 2, 4][weight rows: 1, 2] */
static const tile_fn TILES[3][2] = TILE_ROW(F_F16);

void T2 mq_kavx2_dot_f16(const mq_qweight_t *p, const float *x, float *y, int o0, int o1) {
    dot_8s(p, rows_f16, NULL, x, y, o0, o1);
}

void T2 mq_kavx2_dot_f32(const mq_qweight_t *p, const float *x, float *y, int o0, int o1) {
    dot_8s(p, rows_f32, NULL, x, y, o0, o1);
}

void T2 mq_kavx2_gemm_f16(const mq_qweight_t *p, const float *x, int ldx, int N, float *y, int o0,
                          int o1) {
    // x is (N, C) with rows ldx apart, the weight is (OC, C), y is (N, OC)
    int OC = p->rows;
    __m256 v[8];
    float t[8];
    for (int n0 = 0; n0 < N;) {
        int left = N - n0, ri = left >= 4 ? 2 : left >= 2 ? 1 : 0, R = 1 << ri;
        for (int o = o0; o < o1; o += 2) {
            int WR = o1 - o >= 2 ? 2 : 1;
            for (int k = 0; k < 8; k++)
                v[k] = _mm256_setzero_ps();
            TILES[ri][WR - 1](p, x + (size_t)n0 * ldx, ldx, o, v);
            _mm256_storeu_ps(t, hsum8(v));
            for (int w = 0; w < WR; w++)
                for (int r = 0; r < R; r++)
                    y[(size_t)(n0 + r) * OC + o + w] = t[w * 4 + r];
        }
        n0 += R;
    }
}

/* ---------------------------------------------------------------------------------------------
 * quantized rows, one x row */

INLINE T2 float half_at(const uint8_t *p) {
    uint16_t h;
    memcpy(&h, p, sizeof h);
    return _cvtsh_ss(h);
}

/* 8 signed bytes as floats. */
INLINE T2 __m256 i8x8(__m128i v) {
    return _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(v));
}

/* Q4_0's values, code = nibble - 8, by nibble. */
static const int8_t Q4_BOOK[16] = {-8, -7, -6, -5, -4, -3, -2, -1, 0, 1, 2, 3, 4, 5, 6, 7};

/* v[w] = unreduced 8 lanes of row (o + w)'s dot product with x for Q8_0 (q8) rows, or Q4_0 and
 * IQ4_NL ones (one layout: d, then 16 bytes of nibbles; book: each nibble's value as a byte,
 * looked up by pshufb): per 32-block four FMAs into the block's sum, then the sum times the
 * block's d. */
INLINE T2 void blocks_rows(const mq_qweight_t *p, int q8, int WR, int o, const float *x,
                           const int8_t *book16, __m256 *v) {
    int nb = p->cols / MQ_QBLOCK;
    size_t bb = p->format->block_bytes;
    const uint8_t *row[4];
    __m256 acc[4];
    const __m128i lo4 = _mm_set1_epi8(0x0f);
    const __m128i book = q8 ? lo4 : _mm_loadu_si128((const __m128i *)(const void *)book16);
#pragma GCC unroll 4
    for (int w = 0; w < WR; w++) {
        row[w] = p->data + (size_t)(o + w) * p->row_bytes;
        acc[w] = _mm256_setzero_ps();
    }
    for (int b = 0; b < nb; b++) {
        const float *xb = x + MQ_QBLOCK * b;
#pragma GCC unroll 4
        for (int w = 0; w < WR; w++) {
            const uint8_t *blk = row[w] + (size_t)b * bb;
            if (q8)
                mq_prefetch_rows_l2(row[w], (size_t)b * bb, p->row_bytes, WR);
            else
                mq_prefetch_rows(row[w], (size_t)b * bb, p->row_bytes, WR);
            __m128i c0, c1; /* codes 0-15 and 16-31 as signed bytes */
            if (q8) {
                c0 = _mm_loadu_si128((const __m128i *)(blk + 2));
                c1 = _mm_loadu_si128((const __m128i *)(blk + 18));
            } else {
                __m128i q = _mm_loadu_si128((const __m128i *)(blk + 2));
                c0 = _mm_shuffle_epi8(book, _mm_and_si128(q, lo4));
                c1 = _mm_shuffle_epi8(book, _mm_and_si128(_mm_srli_epi16(q, 4), lo4));
            }
            __m256 s = _mm256_mul_ps(i8x8(c0), _mm256_loadu_ps(xb));
            s = _mm256_fmadd_ps(i8x8(_mm_srli_si128(c0, 8)), _mm256_loadu_ps(xb + 8), s);
            s = _mm256_fmadd_ps(i8x8(c1), _mm256_loadu_ps(xb + 16), s);
            s = _mm256_fmadd_ps(i8x8(_mm_srli_si128(c1, 8)), _mm256_loadu_ps(xb + 24), s);
            acc[w] = _mm256_fmadd_ps(_mm256_set1_ps(half_at(blk)), s, acc[w]);
        }
    }
#pragma GCC unroll 4
    for (int w = 0; w < WR; w++)
        v[w] = acc[w];
}

/* The grid's value of 8 4-bit fields (in the low 4 bits of 8 bytes) from its 16-entry table. */
INLINE T2 __m256 nib8(__m128i u, __m256 lo, __m256 hi) {
    __m256i idx = _mm256_cvtepu8_epi32(u);
    __m256 a = _mm256_permutevar8x32_ps(lo, idx), b = _mm256_permutevar8x32_ps(hi, idx);
    return _mm256_blendv_ps(a, b, _mm256_castsi256_ps(_mm256_slli_epi32(idx, 28)));
}

/* 4-bit packed codes (two per byte, column order) with side scales per group of g columns, g a
 * multiple of 16. */
INLINE T2 void packed4_rows(const mq_qweight_t *p, int WR, int o, const float *x, __m256 lo,
                            __m256 hi, __m256 *v) {
    int C = p->cols, g = p->group, nb = C / g;
    const uint8_t *row[4];
    const mq_fp16_t *sc[4];
    __m256 acc[4], gs[4];
    const __m128i lo4 = _mm_set1_epi8(0x0f);
#pragma GCC unroll 4
    for (int w = 0; w < WR; w++) {
        row[w] = p->data + (size_t)(o + w) * p->row_bytes;
        sc[w] = mq_qweight_row_scales(p, o + w);
        acc[w] = _mm256_setzero_ps();
    }
    for (int b = 0; b < nb; b++) {
#pragma GCC unroll 4
        for (int w = 0; w < WR; w++)
            gs[w] = _mm256_setzero_ps();
        for (int c = b * g; c < (b + 1) * g; c += 16) {
            __m256 x0 = _mm256_loadu_ps(x + c), x1 = _mm256_loadu_ps(x + c + 8);
#pragma GCC unroll 4
            for (int w = 0; w < WR; w++) {
                if (c % 128 == 0) /* a line of codes */
                    mq_prefetch_rows(row[w], (size_t)c / 2, p->row_bytes, WR);
                __m128i q = _mm_loadl_epi64((const __m128i *)(row[w] + c / 2));
                __m128i u = _mm_unpacklo_epi8(_mm_and_si128(q, lo4),
                                              _mm_and_si128(_mm_srli_epi16(q, 4), lo4));
                gs[w] = _mm256_fmadd_ps(nib8(u, lo, hi), x0, gs[w]);
                gs[w] = _mm256_fmadd_ps(nib8(_mm_srli_si128(u, 8), lo, hi), x1, gs[w]);
            }
        }
#pragma GCC unroll 4
        for (int w = 0; w < WR; w++) {
            float s = _cvtsh_ss(p->scheme.gran == MQ_QG_TENSOR ? sc[w][0] : sc[w][b]);
            acc[w] = _mm256_fmadd_ps(_mm256_set1_ps(s), gs[w], acc[w]);
        }
    }
#pragma GCC unroll 4
    for (int w = 0; w < WR; w++)
        v[w] = acc[w];
}

#define Q8_CALL(WR) blocks_rows(p, 1, WR, o, x, NULL, v)
#define Q4_CALL(WR) blocks_rows(p, 0, WR, o, x, lut, v)
ROWS_FN(rows_q8, Q8_CALL)
ROWS_FN(rows_q4, Q4_CALL)
static T2 void rows_p4(const mq_qweight_t *p, int WR, int o, const float *x, const void *lut,
                       __m256 *v) {
    const float *t = lut;
    __m256 lo = _mm256_loadu_ps(t), hi = _mm256_loadu_ps(t + 8);
    if (WR == 4)
        packed4_rows(p, 4, o, x, lo, hi, v);
    else
        packed4_rows(p, 1, o, x, lo, hi, v);
}

void T2 mq_kavx2_dot_q8_0(const mq_qweight_t *p, const float *x, float *y, int o0, int o1) {
    dot_8s(p, rows_q8, NULL, x, y, o0, o1);
}

void T2 mq_kavx2_dot_q4_0(const mq_qweight_t *p, const float *x, float *y, int o0, int o1) {
    dot_8s(p, rows_q4, Q4_BOOK, x, y, o0, o1);
}

void T2 mq_kavx2_dot_iq4_nl(const mq_qweight_t *p, const float *x, float *y, int o0, int o1) {
    dot_8s(p, rows_q4, MQ_IQ4_BOOK, x, y, o0, o1);
}

/* Packed codes: 4-bit grids with groups of whole 16s run fused; other widths and groups go
 * through the scalar reference. */
void T2 mq_kavx2_dot_packed(const mq_qweight_t *p, const float *x, float *y, int o0, int o1) {
    if (p->scheme.bits != 4 || p->group % 16) {
        mq_kscalar_dot(p, x, y, o0, o1);
        return;
    }
    /* the grid's value of each of the 16 fields, read by the format's own row reader */
    static const uint8_t fields[8] = {0x10, 0x32, 0x54, 0x76, 0x98, 0xba, 0xdc, 0xfe};
    float t[16];
    p->format->values_row(fields, &p->scheme, 16, t);
    dot_8s(p, rows_p4, t, x, y, o0, o1);
}

/* ggml's K-quants, one 256-block of each of WR rows at a time, x as it is: the AVX-512 kernels'
 * order (kernels_avx512.c) in 8 lanes. Bytes are widened 8 at a time and converted to floats; a
 * sub-block's sum over its codes times x is scaled by its d sc, and its min (dmin m) times the
 * sum of its x is taken off. */
INLINE T2 __m256 u8x8(__m128i v) { /* 8 unsigned bytes as floats */
    return _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(v));
}

/* The sum over 16 codes c (bytes 16 h .. 16 h + 15 of q) times x[0..16): signed or unsigned. */
INLINE T2 __m256 dot16(__m256i q, int h, int sgn, const float *x) {
    __m128i b = h ? _mm256_extracti128_si256(q, 1) : _mm256_castsi256_si128(q);
    __m256 a = sgn ? i8x8(b) : u8x8(b),
           e = sgn ? i8x8(_mm_srli_si128(b, 8)) : u8x8(_mm_srli_si128(b, 8));
    return _mm256_fmadd_ps(e, _mm256_loadu_ps(x + 8), _mm256_mul_ps(a, _mm256_loadu_ps(x)));
}

/* The lanes of 32 bytes of q where (hv & bit) is set, as 0xff. */
INLINE T2 __m256i bit_set(__m256i hv, int bit) {
    const __m256i m = _mm256_set1_epi8((char)(1 << bit));
    return _mm256_cmpeq_epi8(_mm256_and_si256(hv, m), m);
}

/* The rows' first byte pointers, their sums started at 0 (v: one 8-lane sum per row). */
INLINE T2 void rows_begin(const mq_qweight_t *p, int WR, int o, const uint8_t **row, __m256 *v) {
    for (int w = 0; w < WR; w++) {
        row[w] = p->data + (size_t)(o + w) * p->row_bytes;
        v[w] = _mm256_setzero_ps();
    }
}

/* Q4_K and Q5_K (five): per pair of sub-blocks 32 bytes of nibbles (low: 2i, high: 2i + 1),
 * Q5_K's fifth bit of weight l of sub-block k being bit k of qh[l]. */
INLINE T2 void k45_rows(const mq_qweight_t *p, int five, int WR, int o, const float *x, __m256 *v) {
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
        for (int k = 0; k < 8; k += 2) { /* the sums of x, once for the rows */
            const float *xs = xb + 32 * k;
            __m256 xa =
                _mm256_add_ps(_mm256_add_ps(_mm256_loadu_ps(xs), _mm256_loadu_ps(xs + 8)),
                              _mm256_add_ps(_mm256_loadu_ps(xs + 16), _mm256_loadu_ps(xs + 24)));
            __m256 xc =
                _mm256_add_ps(_mm256_add_ps(_mm256_loadu_ps(xs + 32), _mm256_loadu_ps(xs + 40)),
                              _mm256_add_ps(_mm256_loadu_ps(xs + 48), _mm256_loadu_ps(xs + 56)));
#pragma GCC unroll 4
            for (int w = 0; w < WR; w++) {
                __m256i q = _mm256_loadu_si256((const __m256i *)(ql[w] + 16 * k));
                __m256i lo = _mm256_and_si256(q, m4);
                __m256i hi = _mm256_and_si256(_mm256_srli_epi16(q, 4), m4);
                if (five) {
                    lo = _mm256_add_epi8(lo, _mm256_and_si256(bit_set(hv[w], k), sixteen));
                    hi = _mm256_add_epi8(hi, _mm256_and_si256(bit_set(hv[w], k + 1), sixteen));
                }
                __m256 s0 = _mm256_add_ps(dot16(lo, 0, 0, xs), dot16(lo, 1, 0, xs + 16));
                __m256 s1 = _mm256_add_ps(dot16(hi, 0, 0, xs + 32), dot16(hi, 1, 0, xs + 48));
                v[w] = _mm256_fmadd_ps(_mm256_set1_ps(ds[w][k]), s0, v[w]);
                v[w] = _mm256_fnmadd_ps(_mm256_set1_ps(dm[w][k]), xa, v[w]);
                v[w] = _mm256_fmadd_ps(_mm256_set1_ps(ds[w][k + 1]), s1, v[w]);
                v[w] = _mm256_fnmadd_ps(_mm256_set1_ps(dm[w][k + 1]), xc, v[w]);
            }
        }
    }
}

/* Q6_K: two halves of 128, each from 64 bytes of low nibbles and 32 of high bit pairs, codes
 * minus 32, a signed 8-bit scale per 16 weights times d. */
INLINE T2 void k6_rows(const mq_qweight_t *p, int WR, int o, const float *x, __m256 *v) {
    int nb = p->cols / MQ_QK_K;
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
            d[w] = mq_blocks_half_at(blk[w] + 208);
        }
        for (int h = 0; h < 2; h++) {
            const float *xh = x + (size_t)b * MQ_QK_K + 128 * h;
#pragma GCC unroll 4
            for (int w = 0; w < WR; w++) { /* the row's codes of this half, minus 32 */
                const int8_t *s8 = (const int8_t *)(blk[w] + 192) + 8 * h;
                __m256i q[4];
                mq_q6_half_codes(blk[w], h, q);
                for (int j = 0; j < 4; j++) { /* weights 32 j .. 32 j + 31 of the half */
                    __m256i c = _mm256_sub_epi8(q[j], off);
                    v[w] = _mm256_fmadd_ps(_mm256_set1_ps(d[w] * (float)s8[2 * j]),
                                           dot16(c, 0, 1, xh + 32 * j), v[w]);
                    v[w] = _mm256_fmadd_ps(_mm256_set1_ps(d[w] * (float)s8[2 * j + 1]),
                                           dot16(c, 1, 1, xh + 32 * j + 16), v[w]);
                }
            }
        }
    }
}

/* Q2_K (three = 0) and Q3_K: per 128 weights 32 bytes of 2-bit planes, plane j (shift 2j) of
 * bytes 0..15 and of bytes 16..31 being sub-blocks of 16 with their own scale; Q3_K's code is
 * minus 4 where the weight's bit of hmask (bit 4 h + j of hm[l]) is clear. */
INLINE T2 void k23_rows(const mq_qweight_t *p, int three, int WR, int o, const float *x,
                        __m256 *v) {
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
            for (int j = 0; j < 4; j++) {
                const float *xs = xb + 128 * h + 32 * j;
                int is = 8 * h + 2 * j;
                __m256 x0 = _mm256_setzero_ps(), x1 = x0;
                if (!three) { /* the sums of x of the two sub-blocks, for the mins */
                    x0 = _mm256_add_ps(_mm256_loadu_ps(xs), _mm256_loadu_ps(xs + 8));
                    x1 = _mm256_add_ps(_mm256_loadu_ps(xs + 16), _mm256_loadu_ps(xs + 24));
                }
#pragma GCC unroll 4
                for (int w = 0; w < WR; w++) {
                    __m256i qv = _mm256_loadu_si256((const __m256i *)(qs[w] + 32 * h));
                    __m256i c = _mm256_and_si256(_mm256_srli_epi16(qv, 2 * j), m3);
                    if (three)
                        c = _mm256_sub_epi8(c,
                                            _mm256_andnot_si256(bit_set(hm[w], 4 * h + j), four));
                    else {
                        v[w] = _mm256_fnmadd_ps(_mm256_set1_ps(dm[w][is]), x0, v[w]);
                        v[w] = _mm256_fnmadd_ps(_mm256_set1_ps(dm[w][is + 1]), x1, v[w]);
                    }
                    v[w] = _mm256_fmadd_ps(_mm256_set1_ps(ds[w][is]), dot16(c, 0, three, xs), v[w]);
                    v[w] = _mm256_fmadd_ps(_mm256_set1_ps(ds[w][is + 1]),
                                           dot16(c, 1, three, xs + 16), v[w]);
                }
            }
        }
    }
}

#define Q2K_CALL(WR) k23_rows(p, 0, WR, o, x, v)
#define Q3K_CALL(WR) k23_rows(p, 1, WR, o, x, v)
#define Q4K_CALL(WR) k45_rows(p, 0, WR, o, x, v)
#define Q5K_CALL(WR) k45_rows(p, 1, WR, o, x, v)
#define Q6K_CALL(WR) k6_rows(p, WR, o, x, v)
ROWS_FN(rows_q2k, Q2K_CALL)
ROWS_FN(rows_q3k, Q3K_CALL)
ROWS_FN(rows_q4k, Q4K_CALL)
ROWS_FN(rows_q5k, Q5K_CALL)
ROWS_FN(rows_q6k, Q6K_CALL)

void T2 mq_kavx2_dot_q2_k(const mq_qweight_t *p, const float *x, float *y, int o0, int o1) {
    dot_8s(p, rows_q2k, NULL, x, y, o0, o1);
}

void T2 mq_kavx2_dot_q3_k(const mq_qweight_t *p, const float *x, float *y, int o0, int o1) {
    dot_8s(p, rows_q3k, NULL, x, y, o0, o1);
}

void T2 mq_kavx2_dot_q4_k(const mq_qweight_t *p, const float *x, float *y, int o0, int o1) {
    dot_8s(p, rows_q4k, NULL, x, y, o0, o1);
}

void T2 mq_kavx2_dot_q5_k(const mq_qweight_t *p, const float *x, float *y, int o0, int o1) {
    dot_8s(p, rows_q5k, NULL, x, y, o0, o1);
}

void T2 mq_kavx2_dot_q6_k(const mq_qweight_t *p, const float *x, float *y, int o0, int o1) {
    dot_8s(p, rows_q6k, NULL, x, y, o0, o1);
}

/* ---------------------------------------------------------------------------------------------
 * int8 activations, one x row at a time (a8_dot; kernels_isa.h's mq_a8_t)
 *
 * Without VNNI, vpmaddubsw multiplies the weights' unsigned codes by the signed activations and
 * adds pairs into 16-bit lanes (the codes' ranges keep them from saturating: at most
 * 2 * 63 * 127), and vpmaddwd adds those pairs into 8 int32 lanes of 4 products each: the lanes
 * AVX-512's vpdpbusd gives. Every integer sum is exact, as there. */
INLINE T2 __m256i dot4(__m256i u, __m256i x) {
    return _mm256_madd_epi16(_mm256_maddubs_epi16(u, x), _mm256_set1_epi16(1));
}

/* The a8 kernels over 8 rows at a time for each x row: 4 rows per call of the row functions,
 * which return each row's unreduced lanes in v and a part to take off its sum in off. */
typedef void (*a8_rows_fn)(const mq_qweight_t *p, int WR, int o, const mq_a8_t *xa, int n,
                           __m256 *v, float *off);

INLINE T2 void a8_dot_8s(const mq_qweight_t *p, a8_rows_fn fn, const mq_a8_t *xa, float *y, int o0,
                         int o1) {
    __m256 v[8];
    float t[8], off[8];
    for (int n = 0; n < xa->N; n++)
        for (int o = o0; o < o1; o += 8) {
            int cnt = o1 - o < 8 ? o1 - o : 8, k = 0;
            for (; k + 4 <= cnt; k += 4)
                fn(p, 4, o + k, xa, n, v + k, off + k);
            for (; k < cnt; k++)
                fn(p, 1, o + k, xa, n, v + k, off + k);
            for (; k < 8; k++)
                v[k] = _mm256_setzero_ps();
            _mm256_storeu_ps(t, hsum8(v));
            for (k = 0; k < cnt; k++)
                y[(size_t)n * p->rows + o + k] = t[k] - off[k];
        }
}

/* Q4_0: per 32-block the 16 bytes' low nibbles (weights 0..15) and high ones (16..31) are the
 * unsigned codes c + 8 in column order; the block's lanes times d sx go into the row's sum, and
 * 8 d sx xsum comes off at the end. */
INLINE T2 void a8_rows_q4(const mq_qweight_t *p, int WR, int o, const mq_a8_t *xa, int n, __m256 *v,
                          float *off) {
    int nb = p->cols / MQ_QBLOCK;
    size_t k0 = (size_t)n * (size_t)xa->nblk;
    const int8_t *xq = xa->xq + k0 * MQ_QBLOCK;
    const float *sx = xa->sx + k0, *f16tab = mq_fp16_table();
    const int32_t *xsum = xa->xsum + k0;
    const __m128i m4 = _mm_set1_epi8(0x0F);
    const uint8_t *row[4];
    rows_begin(p, WR, o, row, v);
#pragma GCC unroll 4
    for (int w = 0; w < WR; w++)
        off[w] = 0.0f;
    for (int b = 0; b < nb; b++) {
        __m256i xv = _mm256_loadu_si256((const __m256i *)(xq + (size_t)b * MQ_QBLOCK));
#pragma GCC unroll 4
        for (int w = 0; w < WR; w++) {
            const uint8_t *blk = row[w] + (size_t)b * MQ_Q4_0_BYTES;
            mq_prefetch_rows(row[w], (size_t)b * MQ_Q4_0_BYTES, p->row_bytes, WR);
            uint16_t h;
            memcpy(&h, blk, sizeof h);
            float t = f16tab[h] * sx[b];
            __m128i q = _mm_loadu_si128((const __m128i *)(blk + 2));
            __m256i u = _mm256_inserti128_si256(_mm256_castsi128_si256(_mm_and_si128(q, m4)),
                                                _mm_and_si128(_mm_srli_epi16(q, 4), m4), 1);
            v[w] = _mm256_fmadd_ps(_mm256_set1_ps(t), _mm256_cvtepi32_ps(dot4(u, xv)), v[w]);
            off[w] += t * (float)(8 * xsum[b]);
        }
    }
}

/* ggml's K-quants: per 256-block each row's unsigned codes in column order (blocks.h: value =
 * S[g] u - M[g] per 16 weights g) in 8 vectors of 32, S and M as two vectors of 8 floats,
 * decoded with vector operations (the scales' bytes in 32-bit lanes, shifted and masked per
 * lane). The 8 lanes of code vector c belong to groups 2c (lanes 0-3) and 2c + 1 (4-7); each
 * lane is converted and multiplied by its group's S times sx (one vpermps picks them), and the
 * mins come off as M times sx xsum16 (the AVX-512 kernels' order, in 8 lanes). */
enum { KA8_Q2, KA8_Q3, KA8_Q4, KA8_Q5, KA8_Q6 };

/* 8 bytes at p as 8 int32 lanes (unsigned). */
INLINE T2 __m256i u8x8i(const uint8_t *p) {
    return _mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)p));
}

/* Lanes 0-3 of v in pairs (0, 0, 1, 1, ...) (hi = 0) or lanes 4-7 (hi = 1): 8 figures of 32
 * weights each as 16 of 16. */
INLINE T2 __m256 pairs(__m256 v, int hi) {
    return _mm256_permutevar8x32_ps(v, hi ? _mm256_setr_epi32(4, 4, 5, 5, 6, 6, 7, 7)
                                          : _mm256_setr_epi32(0, 0, 1, 1, 2, 2, 3, 3));
}

/* Q4_K's and Q5_K's 8 6-bit scales (sc) and mins (m) from the 12 bytes q:
 *   k < 4:  sc = q[k] & 63,                            m = q[k + 4] & 63
 *   k >= 4: sc = (q[k + 4] & 15) | (q[k - 4] >> 6) << 4, m = (q[k + 4] >> 4) | (q[k] >> 6) << 4 */
INLINE T2 void k45_scales8(const uint8_t *q, __m256i *sc, __m256i *m) {
    const __m256i low = _mm256_setr_epi32(63, 63, 63, 63, 15, 15, 15, 15);
    const __m256i top = _mm256_setr_epi32(0, 0, 0, 0, 0x30, 0x30, 0x30, 0x30);
    __m256i a = u8x8i(q), b = u8x8i(q + 4); /* lanes q[k], q[k + 4] */
    __m256i c = _mm256_permutevar8x32_epi32(a, _mm256_setr_epi32(0, 1, 2, 3, 0, 1, 2, 3));
    *sc = _mm256_or_si256(_mm256_and_si256(_mm256_blend_epi32(a, b, 0xF0), low),
                          _mm256_and_si256(_mm256_slli_epi32(_mm256_srli_epi32(c, 6), 4), top));
    *m = _mm256_or_si256(
        _mm256_and_si256(_mm256_srlv_epi32(b, _mm256_setr_epi32(0, 0, 0, 0, 4, 4, 4, 4)), low),
        _mm256_and_si256(_mm256_slli_epi32(_mm256_srli_epi32(a, 6), 4), top));
}

INLINE T2 void ka8_unpack(int kind, const uint8_t *blk, const float *f16tab, __m256i *u, __m256 *S,
                          __m256 *M) {
    const __m256i m4 = _mm256_set1_epi8(0x0F), m3 = _mm256_set1_epi8(3);
    if (kind == KA8_Q4 || kind == KA8_Q5) {
        int five = kind == KA8_Q5;
        const uint8_t *ql = blk + (five ? 48 : 16);
        __m256i qh =
            five ? _mm256_loadu_si256((const __m256i *)(blk + 16)) : _mm256_setzero_si256();
        const __m256i sixteen = _mm256_set1_epi8(16);
#pragma GCC unroll 4
        for (int i = 0; i < 4; i++) {
            __m256i q = _mm256_loadu_si256((const __m256i *)(ql + 32 * i));
            u[2 * i] = _mm256_and_si256(q, m4);
            u[2 * i + 1] = _mm256_and_si256(_mm256_srli_epi16(q, 4), m4);
            if (five) {
                u[2 * i] = _mm256_add_epi8(u[2 * i], _mm256_and_si256(bit_set(qh, 2 * i), sixteen));
                u[2 * i + 1] = _mm256_add_epi8(u[2 * i + 1],
                                               _mm256_and_si256(bit_set(qh, 2 * i + 1), sixteen));
            }
        }
        uint16_t hd, hm;
        memcpy(&hd, blk, 2);
        memcpy(&hm, blk + 2, 2);
        __m256i sc, mn;
        k45_scales8(blk + 4, &sc, &mn);
        __m256 s8 = _mm256_mul_ps(_mm256_set1_ps(f16tab[hd]), _mm256_cvtepi32_ps(sc));
        __m256 m8 = _mm256_mul_ps(_mm256_set1_ps(f16tab[hm]), _mm256_cvtepi32_ps(mn));
        S[0] = pairs(s8, 0), S[1] = pairs(s8, 1), M[0] = pairs(m8, 0), M[1] = pairs(m8, 1);
    } else if (kind == KA8_Q6) {
        mq_q6_half_codes(blk, 0, u);
        mq_q6_half_codes(blk, 1, u + 4);
        const float d = mq_blocks_half_at(blk + 208);
#pragma GCC unroll 2
        for (int i = 0; i < 2; i++) {
            __m256i e = _mm256_cvtepi8_epi32(_mm_loadl_epi64((const __m128i *)(blk + 192 + 8 * i)));
            S[i] = _mm256_mul_ps(_mm256_set1_ps(d), _mm256_cvtepi32_ps(e));
            M[i] = _mm256_mul_ps(_mm256_set1_ps(32.0f), S[i]);
        }
    } else {
        int three = kind == KA8_Q3;
        const uint8_t *qs = blk + (three ? 32 : 16);
        __m256i hmask = three ? _mm256_loadu_si256((const __m256i *)blk) : _mm256_setzero_si256();
        const __m256i four = _mm256_set1_epi8(4);
#pragma GCC unroll 2
        for (int h = 0; h < 2; h++) {
            __m256i q = _mm256_loadu_si256((const __m256i *)(qs + 32 * h));
#pragma GCC unroll 4
            for (int j = 0; j < 4; j++) {
                __m256i c = _mm256_and_si256(_mm256_srli_epi16(q, 2 * j), m3);
                if (three)
                    c = _mm256_add_epi8(c, _mm256_and_si256(bit_set(hmask, 4 * h + j), four));
                u[4 * h + j] = c;
            }
        }
        if (three) { /* scale i: low 4 bits in byte i (i < 8) or i - 8's high nibble, high 2
                        bits in byte 8 + i % 4 at bit 2 (i / 4); minus 32 */
            const uint8_t *s12 = blk + 96;
            int32_t h4;
            memcpy(&h4, s12 + 8, 4); /* bytes 8..11: the block ends 2 bytes after them */
            __m256i e = u8x8i(s12), hb = _mm256_cvtepu8_epi32(_mm_cvtsi32_si128(h4));
            hb = _mm256_permutevar8x32_epi32(hb, _mm256_setr_epi32(0, 1, 2, 3, 0, 1, 2, 3));
            const float d = mq_blocks_half_at(blk + 108);
#pragma GCC unroll 2
            for (int i = 0; i < 2; i++) {
                __m256i lo =
                    i ? _mm256_srli_epi32(e, 4) : _mm256_and_si256(e, _mm256_set1_epi32(15));
                __m256i sh = _mm256_add_epi32(_mm256_set1_epi32(4 * i),
                                              _mm256_setr_epi32(0, 0, 0, 0, 2, 2, 2, 2));
                __m256i hi = _mm256_and_si256(_mm256_srlv_epi32(hb, sh), _mm256_set1_epi32(3));
                __m256i sc = _mm256_sub_epi32(_mm256_or_si256(lo, _mm256_slli_epi32(hi, 4)),
                                              _mm256_set1_epi32(32));
                S[i] = _mm256_mul_ps(_mm256_set1_ps(d), _mm256_cvtepi32_ps(sc));
                M[i] = _mm256_mul_ps(_mm256_set1_ps(4.0f), S[i]);
            }
        } else {
            const float d = mq_blocks_half_at(blk + 80), dmin = mq_blocks_half_at(blk + 82);
#pragma GCC unroll 2
            for (int i = 0; i < 2; i++) {
                __m256i e = u8x8i(blk + 8 * i);
                S[i] =
                    _mm256_mul_ps(_mm256_set1_ps(d),
                                  _mm256_cvtepi32_ps(_mm256_and_si256(e, _mm256_set1_epi32(15))));
                M[i] = _mm256_mul_ps(_mm256_set1_ps(dmin),
                                     _mm256_cvtepi32_ps(_mm256_srli_epi32(e, 4)));
            }
        }
    }
}

INLINE T2 void ka8_rows(const mq_qweight_t *p, int kind, int WR, int o, const mq_a8_t *xa, int n,
                        __m256 *v, float *off) {
    int nb = p->cols / MQ_QK_K;
    size_t bb = p->format->block_bytes, k0 = (size_t)n * (size_t)xa->nblk;
    const int8_t *xq = xa->xq + k0 * MQ_QBLOCK;
    const float *sx = xa->sx + k0, *f16tab = mq_fp16_table();
    const int32_t *xsum16 = xa->xsum16 + 2 * k0;
    const uint8_t *row[4];
    __m256i pick[4]; /* lane l of vector c: the factor of group 2 (c % 4) + l / 4 */
#pragma GCC unroll 4
    for (int c = 0; c < 4; c++)
        pick[c] =
            _mm256_add_epi32(_mm256_set1_epi32(2 * c), _mm256_setr_epi32(0, 0, 0, 0, 1, 1, 1, 1));
    rows_begin(p, WR, o, row, v);
#pragma GCC unroll 4
    for (int w = 0; w < WR; w++)
        off[w] = 0.0f;
    for (int b = 0; b < nb; b++) {
        /* the x side, once for the rows: per group its 32's sx, and sx xsum16 */
        __m256 sx8 = _mm256_loadu_ps(sx + 8 * b), sg[2], xs[2];
#pragma GCC unroll 2
        for (int i = 0; i < 2; i++) {
            sg[i] = pairs(sx8, i);
            xs[i] = _mm256_mul_ps(sg[i], _mm256_cvtepi32_ps(_mm256_loadu_si256(
                                             (const __m256i *)(xsum16 + 16 * b + 8 * i))));
        }
#pragma GCC unroll 4
        for (int w = 0; w < WR; w++) {
            const uint8_t *blk = row[w] + (size_t)b * bb;
            mq_prefetch_block(row[w], (size_t)b * bb, bb, p->row_bytes, WR);
            __m256i u[8];
            __m256 S[2], M[2];
            ka8_unpack(kind, blk, f16tab, u, S, M);
            __m256 ss[2] = {_mm256_mul_ps(S[0], sg[0]), _mm256_mul_ps(S[1], sg[1])};
            __m256 a = _mm256_fnmadd_ps(M[0], xs[0], v[w]);
            a = _mm256_fnmadd_ps(M[1], xs[1], a);
#pragma GCC unroll 8
            for (int c = 0; c < 8; c++) {
                __m256i xv =
                    _mm256_loadu_si256((const __m256i *)(xq + (size_t)b * MQ_QK_K + 32 * c));
                __m256 f = _mm256_permutevar8x32_ps(ss[c / 4], pick[c % 4]);
                a = _mm256_fmadd_ps(_mm256_cvtepi32_ps(dot4(u[c], xv)), f, a);
            }
            v[w] = a;
        }
    }
}

#define A8_ROWS_FN(NAME, CALL)                                                                     \
    static T2 void NAME(const mq_qweight_t *p, int WR, int o, const mq_a8_t *xa, int n, __m256 *v, \
                        float *off) {                                                              \
        if (WR == 4)                                                                               \
            CALL(4);                                                                               \
        else                                                                                       \
            CALL(1);                                                                               \
    }
#define A8Q4_CALL(WR) a8_rows_q4(p, WR, o, xa, n, v, off)
#define KA8_CALL(KIND, WR) ka8_rows(p, KIND, WR, o, xa, n, v, off)
#define KA8Q2_CALL(WR) KA8_CALL(KA8_Q2, WR)
#define KA8Q3_CALL(WR) KA8_CALL(KA8_Q3, WR)
#define KA8Q4_CALL(WR) KA8_CALL(KA8_Q4, WR)
#define KA8Q5_CALL(WR) KA8_CALL(KA8_Q5, WR)
#define KA8Q6_CALL(WR) KA8_CALL(KA8_Q6, WR)
A8_ROWS_FN(a8_rows_fn_q4, A8Q4_CALL)
A8_ROWS_FN(ka8_rows_q2, KA8Q2_CALL)
A8_ROWS_FN(ka8_rows_q3, KA8Q3_CALL)
A8_ROWS_FN(ka8_rows_q4, KA8Q4_CALL)
A8_ROWS_FN(ka8_rows_q5, KA8Q5_CALL)
A8_ROWS_FN(ka8_rows_q6, KA8Q6_CALL)

#define A8_KERNEL(NAME, ROWS)                                                                      \
    void T2 NAME(const mq_qweight_t *p, const mq_a8_t *xa, float *y, int o0, int o1,               \
                 void *scratch) {                                                                  \
        (void)scratch;                                                                             \
        a8_dot_8s(p, ROWS, xa, y, o0, o1);                                                         \
    }
A8_KERNEL(mq_kavx2_a8_q4_0, a8_rows_fn_q4)
A8_KERNEL(mq_kavx2_a8_q2_k, ka8_rows_q2)
A8_KERNEL(mq_kavx2_a8_q3_k, ka8_rows_q3)
A8_KERNEL(mq_kavx2_a8_q4_k, ka8_rows_q4)
A8_KERNEL(mq_kavx2_a8_q5_k, ka8_rows_q5)
A8_KERNEL(mq_kavx2_a8_q6_k, ka8_rows_q6)
#undef A8_KERNEL

/* ---------------------------------------------------------------------------------------------
 * several x rows: panels of 8 rows as floats */

/* Unscaled values of row r (codes as floats, codebook values): SIMD for Q8_0 and Q4_0 rows,
 * the row's values_row otherwise. */
static T2 void row_values(const mq_qweight_t *p, int r, float *v) {
    int C = p->cols, nb = C / MQ_QBLOCK;
    const uint8_t *row = p->data + (size_t)r * p->row_bytes;
    const mq_format_t *f = p->format;
    int q4 = f->kernel_layout == MQ_KL_Q4_0;
    if (!(q4 || (f->kernel_layout == MQ_KL_Q8_0))) {
        f->values_row(row, &p->scheme, C, v);
        return;
    }
    const __m128i lo4 = _mm_set1_epi8(0x0f), eight = _mm_set1_epi8(8);
    for (int b = 0; b < nb; b++) {
        __m128i c0, c1;
        if (q4) {
            __m128i q = _mm_loadu_si128((const __m128i *)(row + (size_t)b * MQ_Q4_0_BYTES + 2));
            c0 = _mm_sub_epi8(_mm_and_si128(q, lo4), eight);
            c1 = _mm_sub_epi8(_mm_and_si128(_mm_srli_epi16(q, 4), lo4), eight);
        } else {
            c0 = _mm_loadu_si128((const __m128i *)(row + (size_t)b * MQ_Q8_0_BYTES + 2));
            c1 = _mm_loadu_si128((const __m128i *)(row + (size_t)b * MQ_Q8_0_BYTES + 18));
        }
        float *o = v + MQ_QBLOCK * b;
        _mm256_storeu_ps(o, i8x8(c0));
        _mm256_storeu_ps(o + 8, i8x8(_mm_srli_si128(c0, 8)));
        _mm256_storeu_ps(o + 16, i8x8(c1));
        _mm256_storeu_ps(o + 24, i8x8(_mm_srli_si128(c1, 8)));
    }
}

/* 8 rows of 8 floats (rows ld apart) transposed into 8 rows of 8 (8 apart). */
INLINE T2 void transpose8(const float *src, size_t ld, float *dst) {
    __m256 r[8], t[8];
    for (int i = 0; i < 8; i++)
        r[i] = _mm256_loadu_ps(src + (size_t)i * ld);
    for (int i = 0; i < 4; i++) {
        t[2 * i] = _mm256_unpacklo_ps(r[2 * i], r[2 * i + 1]);
        t[2 * i + 1] = _mm256_unpackhi_ps(r[2 * i], r[2 * i + 1]);
    }
    for (int i = 0; i < 2; i++)
        for (int j = 0; j < 2; j++) {
            r[4 * i + 2 * j] = _mm256_shuffle_ps(t[4 * i + j], t[4 * i + j + 2], 0x44);
            r[4 * i + 2 * j + 1] = _mm256_shuffle_ps(t[4 * i + j], t[4 * i + j + 2], 0xee);
        }
    /* r[4i + k] holds, per 128-bit lane l, element k of rows 4i..4i+3 at column 4l + k */
    for (int k = 0; k < 4; k++) {
        _mm256_storeu_ps(dst + (size_t)k * 8, _mm256_permute2f128_ps(r[k], r[4 + k], 0x20));
        _mm256_storeu_ps(dst + (size_t)(4 + k) * 8, _mm256_permute2f128_ps(r[k], r[4 + k], 0x31));
    }
}

/* Panel of rows o8 .. o8 + 7: P[i * 8 + r] the unscaled value of (o8 + r, i), S[b * 8 + r] the
 * scale of its block b (rows past the end: 0). tmp holds 8 * C floats. */
static T2 void build_panel(const mq_qweight_t *p, int o8, int nb, float *P, float *S, float *tmp) {
    int C = p->cols, g = C / nb;
    for (int r = 0; r < 8; r++) {
        int o = o8 + r;
        float *v = tmp + (size_t)r * C;
        if (o >= p->rows) {
            memset(v, 0, (size_t)C * sizeof *v);
            for (int b = 0; b < nb; b++)
                S[b * 8 + r] = 0.0f;
            continue;
        }
        row_values(p, o, v);
        const uint8_t *row = p->data + (size_t)o * p->row_bytes;
        const mq_fp16_t *sc = mq_qweight_row_scales(p, o);
        for (int b = 0; b < nb; b++)
            S[b * 8 + r] = p->format->block_scale(row, sc, g, b);
    }
    int c = 0;
    for (; c + 8 <= C; c += 8)
        transpose8(tmp + c, (size_t)C, P + (size_t)c * 8);
    for (; c < C; c++)
        for (int r = 0; r < 8; r++)
            P[(size_t)c * 8 + r] = tmp[(size_t)r * C + c];
}

/* out[r] = the panel against x rows r < R (ldx apart): a column's 8 weights times their scales,
 * then one FMA per x row, every output one chain over the columns in order. */
INLINE T2 void ptile(int R, const float *P, const float *S, int nb, int g, const float *x, int ldx,
                     __m256 *out) {
    __m256 acc[8];
#pragma GCC unroll 8
    for (int r = 0; r < R; r++)
        acc[r] = _mm256_setzero_ps();
    for (int b = 0; b < nb; b++) {
        __m256 s = _mm256_loadu_ps(S + 8 * b);
        for (int i = b * g; i < (b + 1) * g; i++) {
            __m256 wk = _mm256_mul_ps(_mm256_loadu_ps(P + (size_t)i * 8), s);
#pragma GCC unroll 8
            for (int r = 0; r < R; r++)
                acc[r] = _mm256_fmadd_ps(wk, _mm256_broadcast_ss(x + (size_t)r * ldx + i), acc[r]);
        }
    }
#pragma GCC unroll 8
    for (int r = 0; r < R; r++)
        out[r] = acc[r];
}

typedef void (*ptile_fn)(const float *P, const float *S, int nb, int g, const float *x, int ldx,
                         __m256 *out);
#define PTILE_FN(R)                                                                                \
    static T2 void ptile_##R(const float *P, const float *S, int nb, int g, const float *x,        \
                             int ldx, __m256 *out) {                                               \
        ptile(R, P, S, nb, g, x, ldx, out);                                                        \
    }
PTILE_FN(1)
PTILE_FN(2)
PTILE_FN(4)
PTILE_FN(8)
/* [x rows: 1, 2, 4, 8] */
static const ptile_fn PTILES[4] = {ptile_1, ptile_2, ptile_4, ptile_8};

void T2 mq_kavx2_gemm_panels(const mq_qweight_t *p, const float *x, int ldx, const float *xt, int N,
                             float *y, int o0, int o1, float *wb) {
    (void)xt;
    int C = p->cols, OC = p->rows, nb = p->group == C ? 1 : C / p->group, g = C / nb;
    int np = (o1 - o0 + 7) / 8;
    float *P = wb, *S = P + (size_t)np * 8 * C, *tmp = S + (size_t)np * 8 * nb;
    for (int q = 0; q < np; q++)
        build_panel(p, o0 + 8 * q, nb, P + (size_t)q * 8 * C, S + (size_t)q * 8 * nb, tmp);
    __m256 out[8];
    float t[8];
    for (int n0 = 0; n0 < N;) {
        int left = N - n0, ri = left >= 8 ? 3 : left >= 4 ? 2 : left >= 2 ? 1 : 0, R = 1 << ri;
        for (int q = 0; q < np; q++) {
            int o = o0 + 8 * q, cnt = OC - o < 8 ? OC - o : 8;
            PTILES[ri](P + (size_t)q * 8 * C, S + (size_t)q * 8 * nb, nb, g, x + (size_t)n0 * ldx,
                       ldx, out);
            for (int r = 0; r < R; r++) {
                float *yr = y + (size_t)(n0 + r) * OC + o;
                if (cnt == 8) {
                    _mm256_storeu_ps(yr, out[r]);
                } else {
                    _mm256_storeu_ps(t, out[r]);
                    memcpy(yr, t, (size_t)cnt * sizeof *t);
                }
            }
        }
        n0 += R;
    }
}

/* Any format whose scale block is the whole row: as mq_kavx512_dot_values, four chains of 8. */
static float T2 dot_floats(const float *v, const float *x, int C) {
    __m256 a[4] = {_mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps(),
                   _mm256_setzero_ps()};
    int i = 0;
    for (; i + 32 <= C; i += 32)
        for (int j = 0; j < 4; j++)
            a[j] = _mm256_fmadd_ps(_mm256_loadu_ps(v + i + 8 * j), _mm256_loadu_ps(x + i + 8 * j),
                                   a[j]);
    __m256 t = _mm256_add_ps(_mm256_add_ps(a[0], a[1]), _mm256_add_ps(a[2], a[3]));
    __m128 h = _mm_add_ps(_mm256_castps256_ps128(t), _mm256_extractf128_ps(t, 1));
    h = _mm_add_ps(h, _mm_movehl_ps(h, h));
    h = _mm_add_ss(h, _mm_movehdup_ps(h));
    float s = _mm_cvtss_f32(h);
    for (; i < C; i++)
        s += v[i] * x[i];
    return s;
}

void T2 mq_kavx2_dot_values(const mq_qweight_t *p, const float *x, float *y, int o0, int o1) {
    mq_kvalues_dot(p, x, y, o0, o1, dot_floats);
}
