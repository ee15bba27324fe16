/* miniquant: the AVX-512 fused kernels (AVX512 F/BW/VL/DQ; the int8-activation ones also VNNI).
 *
 * Every function carries its own target attribute, so a portable build holds these kernels and
 * the dispatcher runs them only on a CPU that has the instructions.
 *
 * Panels (int8 codes, 4-bit indices; kernels.h): the 16 lanes are 16 output rows, so results
 * need no horizontal sums and a scale block's 16 scales are one vector. Column k of a 64-byte
 * chunk is a shift or two away: int8 codes by shifting byte k of each lane to the top and back
 * (arithmetic), 4-bit indices by one shift, after which vpermps on the 16-entry table reads the
 * low 4 bits of each lane. One x row (decode): per scale block four chains of column products
 * against x broadcast, their sum times the 16 scales. Several x rows (prompt): the weights of a
 * column times their scales once, then one FMA per x row, up to 16 x rows.
 *
 * Halves (fp16, row-major as stored): per output row 16-lane partial sums, 4 rows sharing each
 * load of x, 16 rows reduced together (decode); tiles of 2 output rows x up to 8 x rows
 * (prompt), each 16 weights converted once per tile.
 *
 * Int8 activations (VNNI): vpdpbusd multiplies unsigned by signed bytes, so the weights enter
 * with an offset (int8 code + 128, 4-bit index = code + 8) and a correction computed from x
 * alone (kernels_isa.h) starts each block's integer sum. One vpdpbusd takes 4 columns of the 16
 * rows against 4 broadcast activations; one conversion and multiply per 64 columns serves all
 * 16 rows. */
#include <immintrin.h>
#include <stddef.h>
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
INLINE T512 void f16_rows(const mq_qpacked_t *p, int WR, int o, const float *x, __m512 *v) {
    int C = p->cols, nh = C / 16, tail = C % 16;
    const mq_fp16_t *row[4];
    __m512 g0[4], g1[4];
#pragma GCC unroll 4
    for (int w = 0; w < WR; w++) {
        row[w] = p->f16 + (size_t)(o + w) * (size_t)C;
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

static T512 void f16_rows_4(const mq_qpacked_t *p, int o, const float *x, __m512 *v) {
    f16_rows(p, 4, o, x, v);
}
static T512 void f16_rows_1(const mq_qpacked_t *p, int o, const float *x, __m512 *v) {
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
INLINE T512 void f16_tile(const mq_qpacked_t *p, int WR, int R, const float *x, int ldx, int o,
                          __m512 *v) {
    int C = p->cols, nh = C / 16, tail = C % 16;
    const mq_fp16_t *row[2];
    __m512 acc[2][8], wv[2];
#pragma GCC unroll 2
    for (int w = 0; w < WR; w++) {
        row[w] = p->f16 + (size_t)(o + w) * (size_t)C;
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

typedef void (*tile_fn)(const mq_qpacked_t *p, const float *x, int ldx, int o, __m512 *v);
#define TILE_FN(R, WR)                                                                             \
    static T512 void f16_tile_##R##_##WR(const mq_qpacked_t *p, const float *x, int ldx, int o,    \
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

static T512 void rows_f16(const mq_qpacked_t *p, const float *x, int ldx, int N, const float *bias,
                          float *y, int o0, int o1) {
    // x is (N, C) with rows ldx apart, the weight is (OC, C), y is (N, OC)
    int OC = p->rows;
    __m512 v[16];
    float t[16];
    if (N == 1) {
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
                y[o + k] = t[k] + (bias ? bias[o + k] : 0.0f);
        }
        return;
    }
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
                    y[(size_t)(n0 + r) * OC + o + w] = t[w * 8 + r] + (bias ? bias[o + w] : 0.0f);
        }
        n0 += R;
    }
}

/* ---------------------------------------------------------------------------------------------
 * panels */

/* Columns per 64-byte chunk. */
#define CPC(fmt) ((fmt) == MQ_KF_Q4 ? 8 : 4)

/* Column k of a chunk's 16 rows, unscaled: int8 code k of each lane (shifted to the top, then
 * arithmetically back), or the table's value of 4-bit index k. */
INLINE T512 __m512 panel_col(int fmt, __m512i v, int k, __m512 lut) {
    if (fmt == MQ_KF_Q8) {
        __m512i c = k == 3 ? v : _mm512_slli_epi32(v, (unsigned)(24 - 8 * k));
        return _mm512_cvtepi32_ps(_mm512_srai_epi32(c, 24));
    }
    int sh = 8 * (k & 3) + 4 * (k >> 2);
    return _mm512_permutexvar_ps(sh ? _mm512_srli_epi32(v, (unsigned)sh) : v, lut);
}

/* The panel's scale blocks as the loops see them: nb blocks of cpb chunks (a whole-row block
 * stops at the last chunk holding a column < C). */
typedef struct pblocks {
    int nb, cpb, last;
} pblocks_t;

INLINE T512 pblocks_t panel_blocks(const mq_qpacked_t *p) {
    int cpc = CPC(p->fmt), last = (p->cols + cpc - 1) / cpc;
    if (p->group == p->cols) return (pblocks_t){1, last, last};
    return (pblocks_t){p->nb, p->group / cpc, last};
}

INLINE T512 __m512 panel_scales(const mq_qpacked_t *p, int q, int b) {
    return _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)mq_panel_scale_ptr(p, q, b)));
}

/* Panel q against one x row: lane r is row 16q + r's dot product. Per scale block four chains
 * of columns, their sum times the 16 scales. */
INLINE T512 __m512 panel_dot(const mq_qpacked_t *p, int fmt, pblocks_t bl, int q, const float *x,
                             __m512 lut) {
    const uint8_t *w = p->panel + (size_t)q * p->panel_bytes;
    __m512 acc = _mm512_setzero_ps();
    for (int b = 0; b < bl.nb; b++) {
        int c = b * bl.cpb, ce = c + bl.cpb < bl.last ? c + bl.cpb : bl.last;
        __m512 g[4] = {_mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_setzero_ps(),
                       _mm512_setzero_ps()};
        for (; c < ce; c++) {
            _mm_prefetch((const char *)w + (size_t)c * 64 + PF_BYTES, _MM_HINT_T0);
            __m512i v = _mm512_loadu_si512(w + (size_t)c * 64);
#pragma GCC unroll 8
            for (int k = 0; k < 8; k++)
                if (k < CPC(fmt))
                    g[k & 3] = _mm512_fmadd_ps(panel_col(fmt, v, k, lut),
                                               _mm512_set1_ps(x[CPC(fmt) * c + k]), g[k & 3]);
        }
        __m512 sum = _mm512_add_ps(_mm512_add_ps(g[0], g[1]), _mm512_add_ps(g[2], g[3]));
        acc = _mm512_fmadd_ps(panel_scales(p, q, b), sum, acc);
    }
    return acc;
}

/* out[r] = panel q against x rows r < R (ldx apart): a column's weights times their scales
 * once, then one FMA per x row. */
INLINE T512 void panel_tile(const mq_qpacked_t *p, int fmt, pblocks_t bl, int R, int q,
                            const float *x, int ldx, __m512 lut, __m512 *out) {
    const uint8_t *w = p->panel + (size_t)q * p->panel_bytes;
    __m512 acc[16];
#pragma GCC unroll 16
    for (int r = 0; r < R; r++)
        acc[r] = _mm512_setzero_ps();
    for (int b = 0; b < bl.nb; b++) {
        __m512 s = panel_scales(p, q, b);
        int c = b * bl.cpb, ce = c + bl.cpb < bl.last ? c + bl.cpb : bl.last;
        for (; c < ce; c++) {
            __m512i v = _mm512_loadu_si512(w + (size_t)c * 64);
#pragma GCC unroll 8
            for (int k = 0; k < 8; k++) {
                if (k >= CPC(fmt)) break;
                __m512 wk = _mm512_mul_ps(panel_col(fmt, v, k, lut), s);
#pragma GCC unroll 16
                for (int r = 0; r < R; r++)
                    acc[r] = _mm512_fmadd_ps(
                        wk, _mm512_set1_ps(x[(size_t)r * ldx + CPC(fmt) * c + k]), acc[r]);
            }
        }
    }
#pragma GCC unroll 16
    for (int r = 0; r < R; r++)
        out[r] = acc[r];
}

/* [Q4][x rows: 1, 2, 4, 8, 16]; R = 0 is the one-row dot product. */
typedef void (*panel_fn)(const mq_qpacked_t *p, pblocks_t bl, int q, const float *x, int ldx,
                         __m512 *out);
#define PANEL_FN(F, R)                                                                             \
    static T512 void panel_##F##_##R(const mq_qpacked_t *p, pblocks_t bl, int q, const float *x,   \
                                     int ldx, __m512 *out) {                                       \
        __m512 lut = _mm512_loadu_ps(p->lut);                                                      \
        if (R == 0)                                                                                \
            out[0] = panel_dot(p, MQ_KF_##F, bl, q, x, lut);                                       \
        else                                                                                       \
            panel_tile(p, MQ_KF_##F, bl, R, q, x, ldx, lut, out);                                  \
    }
PANEL_FN(Q8, 0)
PANEL_FN(Q8, 2)
PANEL_FN(Q8, 4)
PANEL_FN(Q8, 8)
PANEL_FN(Q8, 16)
PANEL_FN(Q4, 0)
PANEL_FN(Q4, 2)
PANEL_FN(Q4, 4)
PANEL_FN(Q4, 8)
PANEL_FN(Q4, 16)
static const panel_fn PANELS[2][5] = {
    {panel_Q8_0, panel_Q8_2, panel_Q8_4, panel_Q8_8, panel_Q8_16},
    {panel_Q4_0, panel_Q4_2, panel_Q4_4, panel_Q4_8, panel_Q4_16}};

/* y[16q .. 16q+15] = v + bias, the rows that exist. */
INLINE T512 void panel_store(const mq_qpacked_t *p, int q, __m512 v, const float *bias, float *y) {
    int left = p->rows - 16 * q;
    __mmask16 m = (__mmask16)(left >= 16 ? 0xffff : (1u << left) - 1);
    if (bias) v = _mm512_add_ps(v, _mm512_maskz_loadu_ps(m, bias + 16 * q));
    _mm512_mask_storeu_ps(y + 16 * q, m, v);
}

static T512 void rows_panels(const mq_qpacked_t *p, const float *x, int ldx, int N,
                             const float *bias, float *y, int o0, int o1) {
    int OC = p->rows, q0 = o0 / 16, q1 = (o1 + 15) / 16, q4 = p->fmt == MQ_KF_Q4;
    pblocks_t bl = panel_blocks(p);
    __m512 out[16];
    for (int n0 = 0; n0 < N;) {
        int left = N - n0, ri = left >= 16 ? 4 : left >= 8 ? 3 : left >= 4 ? 2 : left >= 2 ? 1 : 0;
        int R = 1 << ri;
        for (int q = q0; q < q1; q++) {
            PANELS[q4][ri](p, bl, q, x + (size_t)n0 * ldx, ldx, out);
            for (int r = 0; r < R; r++)
                panel_store(p, q, out[r], bias, y + (size_t)(n0 + r) * OC);
        }
        n0 += R;
    }
}

static T512 void avx512_rows(const mq_qpacked_t *p, const float *x, int ldx, int N,
                             const float *bias, float *y, int o0, int o1) {
    if (p->fmt == MQ_KF_F16)
        rows_f16(p, x, ldx, N, bias, y, o0, o1);
    else
        rows_panels(p, x, ldx, N, bias, y, o0, o1);
}

/* ---------------------------------------------------------------------------------------------
 * int8 activations (VNNI) */

/* 4 activations as one int32, broadcast. */
INLINE T512V __m512i bcast4(const int8_t *x) {
    int32_t v;
    memcpy(&v, x, sizeof v);
    return _mm512_set1_epi32(v);
}

/* out[r] = panel q against x rows n0 + r, r < R. Per 64-column block j and x row: an integer
 * sum over 16 vpdpbusd (4 columns of the 16 rows each, in 4 chains) started by the correction,
 * converted and times sx[j]; per scale block that sum times the 16 rows' scales. */
INLINE T512V void a8_panel(const mq_qpacked_t *p, int fmt, int R, const mq_a8_t *xa, int n0, int q,
                           __m512 *out) {
    enum { CH = 4 };
    int nblk = xa->nblk, whole = p->group == p->cols;
    int per = whole ? nblk : p->group / 64, ng = whole ? 1 : p->nb;
    const uint8_t *w = p->panel + (size_t)q * p->panel_bytes;
    const __m512i nib = _mm512_set1_epi8(0x0F), flip = _mm512_set1_epi8((char)0x80);
    __m512 acc[4], g[4];
#pragma GCC unroll 4
    for (int r = 0; r < R; r++)
        acc[r] = _mm512_setzero_ps();
    for (int b = 0; b < ng; b++) {
#pragma GCC unroll 4
        for (int r = 0; r < R; r++)
            g[r] = _mm512_setzero_ps();
        for (int j = b * per; j < (b + 1) * per; j++) {
            __m512i ia[4][CH];
            const int8_t *xj[4];
#pragma GCC unroll 4
            for (int r = 0; r < R; r++) {
                size_t k = (size_t)(n0 + r) * nblk + (size_t)j;
                xj[r] = xa->xq + k * 64;
                ia[r][0] = _mm512_set1_epi32(xa->csum[k]);
                ia[r][1] = ia[r][2] = ia[r][3] = _mm512_setzero_si512();
            }
            const uint8_t *wj = w + (size_t)j * (fmt == MQ_KF_Q4 ? 512 : 1024);
#pragma GCC unroll 16
            for (int i = 0; i < 16; i++) { /* 4 columns each */
                __m512i u;
                if (fmt == MQ_KF_Q8) {
                    if ((i & 3) == 0)
                        _mm_prefetch((const char *)wj + (size_t)i * 64 + PF_BYTES, _MM_HINT_T0);
                    u = _mm512_xor_si512(_mm512_loadu_si512(wj + (size_t)i * 64), flip);
                } else {
                    __m512i v = _mm512_loadu_si512(wj + (size_t)(i >> 1) * 64);
                    if ((i & 7) == 0)
                        _mm_prefetch((const char *)wj + (size_t)(i >> 1) * 64 + PF_BYTES,
                                     _MM_HINT_T0);
                    u = _mm512_and_si512((i & 1) ? _mm512_srli_epi16(v, 4) : v, nib);
                }
#pragma GCC unroll 4
                for (int r = 0; r < R; r++)
                    ia[r][i % CH] = _mm512_dpbusd_epi32(ia[r][i % CH], u, bcast4(xj[r] + 4 * i));
            }
#pragma GCC unroll 4
            for (int r = 0; r < R; r++) {
                __m512i is = _mm512_add_epi32(_mm512_add_epi32(ia[r][0], ia[r][1]),
                                              _mm512_add_epi32(ia[r][2], ia[r][3]));
                __m512 sx = _mm512_set1_ps(xa->sx[(size_t)(n0 + r) * nblk + j]);
                g[r] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(is), sx, g[r]);
            }
        }
        __m512 s = panel_scales(p, q, b);
#pragma GCC unroll 4
        for (int r = 0; r < R; r++)
            acc[r] = _mm512_fmadd_ps(s, g[r], acc[r]);
    }
#pragma GCC unroll 4
    for (int r = 0; r < R; r++)
        out[r] = acc[r];
}

typedef void (*a8_fn)(const mq_qpacked_t *p, const mq_a8_t *xa, int n0, int q, __m512 *out);
#define A8_FN(F, R)                                                                                \
    static T512V void a8_##F##_##R(const mq_qpacked_t *p, const mq_a8_t *xa, int n0, int q,        \
                                   __m512 *out) {                                                  \
        a8_panel(p, MQ_KF_##F, R, xa, n0, q, out);                                                 \
    }
A8_FN(Q8, 1)
A8_FN(Q8, 4)
A8_FN(Q4, 1)
A8_FN(Q4, 4)
/* [Q4][x rows: 1, 4] */
static const a8_fn A8_PANELS[2][2] = {{a8_Q8_1, a8_Q8_4}, {a8_Q4_1, a8_Q4_4}};

static T512V void avx512_a8_rows(const mq_qpacked_t *p, const mq_a8_t *xa, const float *bias,
                                 float *y, int o0, int o1) {
    int OC = p->rows, N = xa->N, q0 = o0 / 16, q1 = (o1 + 15) / 16, q4 = p->fmt == MQ_KF_Q4;
    __m512 out[4];
    for (int n0 = 0; n0 < N;) {
        int R = N - n0 >= 4 ? 4 : 1;
        for (int q = q0; q < q1; q++) {
            A8_PANELS[q4][R == 4](p, xa, n0, q, out);
            for (int r = 0; r < R; r++)
                panel_store(p, q, out[r], bias, y + (size_t)(n0 + r) * OC);
        }
        n0 += R;
    }
}

const mq_kernel_ops_t mq_kernels_avx512_ops = {MQ_ISA_AVX512, avx512_rows, avx512_a8_rows};
