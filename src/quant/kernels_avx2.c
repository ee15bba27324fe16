/* miniquant: the AVX2 fused kernels (AVX2, FMA, F16C), for x86-64 CPUs without AVX-512.
 *
 * Every function carries its own target attribute, so a portable build holds these kernels and
 * the dispatcher runs them only on a CPU that has the instructions.
 *
 * The shapes follow the AVX-512 version with 8 lanes. Panels (int8 codes, 4-bit indices): a
 * panel's 16 rows are two vectors of 8 lanes; int8 codes are shifted out of their lane, int
 * 4-bit indices converted (s * u - 8 s in one FMA), nf4 ones go through two 8-entry permutes
 * and a blend on the index's bit 3. Halves (row-major): one x row runs two chains per row, 4
 * rows sharing each load of x, 8 rows reduced together; several x rows run tiles of 2 output
 * rows x up to 4 x rows (16 registers hold 8 accumulators and the expanded weights). */
#include <immintrin.h>
#include <stddef.h>
#include <string.h>

#include "kernels_isa.h"

#define T2 __attribute__((target("avx2,fma,f16c")))
#define INLINE static inline __attribute__((always_inline))

/* The formats as the loops see them: 4-bit int and nf4 expand differently here. */
enum { F_F16 = 0, F_Q8, F_Q4I, F_Q4N };

/* Lane k of the result is the sum of the 8 lanes of v[k]. */
INLINE T2 __m256 hsum8(const __m256 *v) {
    __m256 t0 = _mm256_hadd_ps(v[0], v[1]), t1 = _mm256_hadd_ps(v[2], v[3]);
    __m256 t2 = _mm256_hadd_ps(v[4], v[5]), t3 = _mm256_hadd_ps(v[6], v[7]);
    __m256 u0 = _mm256_hadd_ps(t0, t1), u1 = _mm256_hadd_ps(t2, t3);
    return _mm256_add_ps(_mm256_permute2f128_ps(u0, u1, 0x20),
                         _mm256_permute2f128_ps(u0, u1, 0x31));
}

/* ---------------------------------------------------------------------------------------------
 * halves, row-major (the functions keep a format argument: F_F16 is the only one) */

INLINE T2 const uint8_t *row_ptr(const mq_qpacked_t *p, int f, int o) {
    (void)f;
    return (const uint8_t *)(p->f16 + (size_t)o * (size_t)p->cols);
}

/* Unscaled weights 8u .. 8u+7 of a row. */
INLINE T2 __m256 w8(int f, const uint8_t *row, int u) {
    if (f == F_Q8)
        return _mm256_cvtepi32_ps(
            _mm256_cvtepi8_epi32(_mm_loadl_epi64((const __m128i *)(row + (size_t)u * 8))));
    return _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(row + (size_t)u * 16)));
}

/* A row's last n < 8 weights from unit u, zero-filled (nothing past the row is read). */
INLINE T2 __m256 w8_tail(int f, const uint8_t *row, int u, int n) {
    uint8_t buf[16] = {0};
    memcpy(buf, row + (size_t)u * (f == F_Q8 ? 8 : 16), (size_t)n * (f == F_Q8 ? 1 : 2));
    return w8(f, buf, 0);
}

/* x[8u .. 8u+n), zero-filled. */
INLINE T2 __m256 x_tail(const float *x, int u, int n) {
    static const int32_t ones[16] = {-1, -1, -1, -1, -1, -1, -1, -1, 0, 0, 0, 0, 0, 0, 0, 0};
    __m256i m = _mm256_loadu_si256((const __m256i *)(ones + 8 - n));
    return _mm256_maskload_ps(x + 8 * u, m);
}

INLINE T2 float scale_of(const mq_qpacked_t *p, int f, int o, int b) {
    if (f == F_F16) return 1.0f;
    return _cvtsh_ss(mq_kscale_ptr(p, o)[b]);
}

/* Blocks of a row: nb blocks of nu full units of 8, then (whole rows only) a partial unit. */
typedef struct blocks {
    int nb, nu, tail;
} blocks_t;

INLINE T2 blocks_t row_blocks(const mq_qpacked_t *p) {
    int C = p->cols, g = p->group;
    if (g == C) return (blocks_t){1, C / 8, C % 8};
    return (blocks_t){C / g, g / 8, 0};
}

/* v[w] = unreduced 8 lanes of row (o + w)'s dot product with x, w < WR; each 8 of x loaded
 * once for the WR rows. Per scale block two chains per row, their sum times the row's scale. */
INLINE T2 void dot_rows(const mq_qpacked_t *p, int f, int WR, blocks_t bl, int o, const float *x,
                        __m256 *v) {
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
            acc[w] = f == F_F16
                         ? _mm256_add_ps(acc[w], sum)
                         : _mm256_fmadd_ps(_mm256_set1_ps(scale_of(p, f, o + w, b)), sum, acc[w]);
        }
    }
#pragma GCC unroll 4
    for (int w = 0; w < WR; w++)
        v[w] = acc[w];
}

typedef void (*dot_rows_fn)(const mq_qpacked_t *p, int o, const float *x, __m256 *v);
#define DOT_FN(F, WR)                                                                              \
    static T2 void dot_##F##_##WR(const mq_qpacked_t *p, int o, const float *x, __m256 *v) {       \
        dot_rows(p, F, WR, row_blocks(p), o, x, v);                                                \
    }
DOT_FN(F_F16, 4)
DOT_FN(F_F16, 1)

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
INLINE T2 void tile(const mq_qpacked_t *p, int f, int WR, int R, const float *x, int ldx, int o,
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
        __m256 s[2], wv[2];
#pragma GCC unroll 2
        for (int w = 0; w < WR; w++)
            s[w] = _mm256_set1_ps(scale_of(p, f, o + w, b));
        int u = b * bl.nu, ue = u + bl.nu;
        for (; u < ue; u++) {
#pragma GCC unroll 2
            for (int w = 0; w < WR; w++)
                wv[w] = f == F_F16 ? w8(f, row[w], u) : _mm256_mul_ps(w8(f, row[w], u), s[w]);
            tile8(WR, R, wv, x, ldx, u, 0, acc);
        }
        if (bl.tail) {
#pragma GCC unroll 2
            for (int w = 0; w < WR; w++)
                wv[w] = _mm256_mul_ps(w8_tail(f, row[w], u, bl.tail), s[w]);
            tile8(WR, R, wv, x, ldx, u, bl.tail, acc);
        }
    }
#pragma GCC unroll 2
    for (int w = 0; w < WR; w++)
#pragma GCC unroll 4
        for (int r = 0; r < R; r++)
            v[w * 4 + r] = acc[w][r];
}

typedef void (*tile_fn)(const mq_qpacked_t *p, const float *x, int ldx, int o, __m256 *v);
#define TILE_FN(F, R, WR)                                                                          \
    static T2 void tile_##F##_##R##_##WR(const mq_qpacked_t *p, const float *x, int ldx, int o,    \
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

static T2 void rows_f16(const mq_qpacked_t *p, const float *x, int ldx, int N, const float *bias,
                        float *y, int o0, int o1) {
    // x is (N, C) with rows ldx apart, the weight is (OC, C), y is (N, OC)
    int OC = p->rows;
    __m256 v[8];
    float t[8];
    if (N == 1) {
        for (int o = o0; o < o1; o += 8) {
            int cnt = o1 - o < 8 ? o1 - o : 8, k = 0;
            for (; k + 4 <= cnt; k += 4)
                dot_F_F16_4(p, o + k, x, v + k);
            for (; k < cnt; k++)
                dot_F_F16_1(p, o + k, x, v + k);
            for (; k < 8; k++)
                v[k] = _mm256_setzero_ps();
            _mm256_storeu_ps(t, hsum8(v));
            for (int k = 0; k < cnt; k++)
                y[o + k] = t[k] + (bias ? bias[o + k] : 0.0f);
        }
        return;
    }
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
                    y[(size_t)(n0 + r) * OC + o + w] = t[w * 4 + r] + (bias ? bias[o + w] : 0.0f);
        }
        n0 += R;
    }
}

/* ---------------------------------------------------------------------------------------------
 * panels: rows 0-7 of a panel in bytes 0-31 of each chunk, rows 8-15 in bytes 32-63 */

/* The nf4 codebook's entries 0-7 and 8-15. */
typedef struct luts {
    __m256 lo, hi;
} luts_t;

/* Column k of a half chunk's 8 rows, times s (per lane): int8 code k of each lane, or the value
 * of 4-bit index k (int grids: s * u - 8 s in one FMA). */
INLINE T2 __m256 panel_col(int f, __m256i v, int k, luts_t lut, __m256 s) {
    if (f == F_Q8) {
        __m256i c = k == 3 ? v : _mm256_slli_epi32(v, 24 - 8 * k);
        return _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_srai_epi32(c, 24)), s);
    }
    int sh = 8 * (k & 3) + 4 * (k >> 2);
    __m256i idx = sh ? _mm256_srli_epi32(v, sh) : v;
    if (f == F_Q4I)
        return _mm256_fmadd_ps(_mm256_cvtepi32_ps(_mm256_and_si256(idx, _mm256_set1_epi32(15))), s,
                               _mm256_mul_ps(s, _mm256_set1_ps(-8.0f)));
    __m256 lo = _mm256_permutevar8x32_ps(lut.lo, idx), hi = _mm256_permutevar8x32_ps(lut.hi, idx);
    return _mm256_mul_ps(_mm256_blendv_ps(lo, hi, _mm256_castsi256_ps(_mm256_slli_epi32(idx, 28))),
                         s);
}

#define CPC(f) ((f) == F_Q8 ? 4 : 8)

typedef struct pblocks {
    int nb, cpb, last;
} pblocks_t;

INLINE T2 pblocks_t panel_blocks(const mq_qpacked_t *p) {
    int cpc = p->fmt == MQ_KF_Q8 ? 4 : 8, last = (p->cols + cpc - 1) / cpc;
    if (p->group == p->cols) return (pblocks_t){1, last, last};
    return (pblocks_t){p->nb, p->group / cpc, last};
}

/* The scales of rows 8h .. 8h+7 of panel q in block b. */
INLINE T2 __m256 panel_scales(const mq_qpacked_t *p, int q, int b, int h) {
    return _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(mq_panel_scale_ptr(p, q, b) + 8 * h)));
}

/* out[h * 4 + r] = rows 8h .. 8h+7 of panel q against x row r < R (ldx apart). One x row:
 * the block's sums times its scales; several: the weights times their scales, then FMAs. */
INLINE T2 void panel(const mq_qpacked_t *p, int f, pblocks_t bl, int R, int q, const float *x,
                     int ldx, __m256 *out) {
    const uint8_t *w = p->panel + (size_t)q * p->panel_bytes;
    luts_t lut = {_mm256_loadu_ps(p->lut), _mm256_loadu_ps(p->lut + 8)};
    const __m256 one = _mm256_set1_ps(1.0f);
    __m256 acc[2][4];
#pragma GCC unroll 4
    for (int r = 0; r < R; r++)
        acc[0][r] = acc[1][r] = _mm256_setzero_ps();
    for (int b = 0; b < bl.nb; b++) {
        __m256 s[2] = {panel_scales(p, q, b, 0), panel_scales(p, q, b, 1)}, g[2][2];
        if (R == 1) g[0][0] = g[0][1] = g[1][0] = g[1][1] = _mm256_setzero_ps();
        int c = b * bl.cpb, ce = c + bl.cpb < bl.last ? c + bl.cpb : bl.last;
        for (; c < ce; c++) {
            __m256i v[2] = {_mm256_loadu_si256((const __m256i *)(w + (size_t)c * 64)),
                            _mm256_loadu_si256((const __m256i *)(w + (size_t)c * 64 + 32))};
#pragma GCC unroll 8
            for (int k = 0; k < 8; k++) {
                if (k >= CPC(f)) break;
#pragma GCC unroll 2
                for (int h = 0; h < 2; h++) {
                    if (R == 1) { /* scale after the block's sum */
                        __m256 wk = panel_col(f, v[h], k, lut, one);
                        g[h][k & 1] =
                            _mm256_fmadd_ps(wk, _mm256_set1_ps(x[CPC(f) * c + k]), g[h][k & 1]);
                        continue;
                    }
                    __m256 wk = panel_col(f, v[h], k, lut, s[h]);
#pragma GCC unroll 4
                    for (int r = 0; r < R; r++)
                        acc[h][r] = _mm256_fmadd_ps(
                            wk, _mm256_set1_ps(x[(size_t)r * ldx + CPC(f) * c + k]), acc[h][r]);
                }
            }
        }
        if (R == 1)
            for (int h = 0; h < 2; h++)
                acc[h][0] = _mm256_fmadd_ps(s[h], _mm256_add_ps(g[h][0], g[h][1]), acc[h][0]);
    }
#pragma GCC unroll 4
    for (int r = 0; r < R; r++) {
        out[r] = acc[0][r];
        out[4 + r] = acc[1][r];
    }
}

typedef void (*panel_fn)(const mq_qpacked_t *p, pblocks_t bl, int q, const float *x, int ldx,
                         __m256 *out);
#define PANEL_FN(F, R)                                                                             \
    static T2 void panel_##F##_##R(const mq_qpacked_t *p, pblocks_t bl, int q, const float *x,     \
                                   int ldx, __m256 *out) {                                         \
        panel(p, F, bl, R, q, x, ldx, out);                                                        \
    }
PANEL_FN(F_Q8, 1)
PANEL_FN(F_Q8, 2)
PANEL_FN(F_Q8, 4)
PANEL_FN(F_Q4I, 1)
PANEL_FN(F_Q4I, 2)
PANEL_FN(F_Q4I, 4)
PANEL_FN(F_Q4N, 1)
PANEL_FN(F_Q4N, 2)
PANEL_FN(F_Q4N, 4)
/* [Q8, Q4 int, nf4][x rows: 1, 2, 4] */
static const panel_fn PANELS[3][3] = {{panel_F_Q8_1, panel_F_Q8_2, panel_F_Q8_4},
                                      {panel_F_Q4I_1, panel_F_Q4I_2, panel_F_Q4I_4},
                                      {panel_F_Q4N_1, panel_F_Q4N_2, panel_F_Q4N_4}};

/* y[16q + 8h .. +7] = v + bias, the rows that exist. */
INLINE T2 void panel_store(const mq_qpacked_t *p, int q, int h, __m256 v, const float *bias,
                           float *y) {
    static const int32_t ones[16] = {-1, -1, -1, -1, -1, -1, -1, -1, 0, 0, 0, 0, 0, 0, 0, 0};
    int o = 16 * q + 8 * h, left = p->rows - o;
    if (left <= 0) return;
    __m256i m = _mm256_loadu_si256((const __m256i *)(ones + 8 - (left < 8 ? left : 8)));
    if (bias) v = _mm256_add_ps(v, _mm256_maskload_ps(bias + o, m));
    _mm256_maskstore_ps(y + o, m, v);
}

static T2 void rows_panels(const mq_qpacked_t *p, const float *x, int ldx, int N, const float *bias,
                           float *y, int o0, int o1) {
    int OC = p->rows, q0 = o0 / 16, q1 = (o1 + 15) / 16;
    int fi = p->fmt == MQ_KF_Q8 ? 0 : p->nf4 ? 2 : 1;
    pblocks_t bl = panel_blocks(p);
    __m256 out[8];
    for (int n0 = 0; n0 < N;) {
        int left = N - n0, ri = left >= 4 ? 2 : left >= 2 ? 1 : 0, R = 1 << ri;
        for (int q = q0; q < q1; q++) {
            PANELS[fi][ri](p, bl, q, x + (size_t)n0 * ldx, ldx, out);
            for (int r = 0; r < R; r++)
                for (int h = 0; h < 2; h++)
                    panel_store(p, q, h, out[4 * h + r], bias, y + (size_t)(n0 + r) * OC);
        }
        n0 += R;
    }
}

static T2 void avx2_rows(const mq_qpacked_t *p, const float *x, int ldx, int N, const float *bias,
                         float *y, int o0, int o1) {
    if (p->fmt == MQ_KF_F16)
        rows_f16(p, x, ldx, N, bias, y, o0, o1);
    else
        rows_panels(p, x, ldx, N, bias, y, o0, o1);
}

const mq_kernel_ops_t mq_kernels_avx2_ops = {MQ_ISA_AVX2, avx2_rows, NULL};
