/* miniquant: ggml's block formats written from FP32 weights (blocks.h).
 *
 * The K-quants and IQ4_NL choose their scales by search, as ggml's reference quantizers do, and
 * then search further on the grid that is actually stored:
 *
 *  1. Each sub-block's float scale (and min) is fitted as ggml fits it: a sweep of candidate
 *     inverse scales, each followed by the weighted least-squares scale (and min) of the codes
 *     it rounds to, the best kept by weighted squared error (the sweep of ggml's reference
 *     quantizer, or of its importance-weighted one when there is an importance).
 *  2. The super-block scale(s) d (and dmin) follow from the largest sub-block scale (and min),
 *     as ggml's do; a neighbouring value of d either side is tried too, then of dmin.
 *  3. Then, with d and dmin as they round to FP16, every sub-block's integer scale (and min) is
 *     searched one step either side of its rounded value, the codes re-rounded for each
 *     candidate, and the one with the least weighted squared error of the values as ggml
 *     dequantizes them is kept. ggml stops at rounding the float scale: its choice is among the candidates, so the
 *     error here is never larger for the same d and dmin.
 *
 * Q2_K, Q4_K and Q5_K are affine (a scale and a min per sub-block), Q3_K and Q6_K symmetric.
 *
 * The error weights are ggml's: without an importance matrix av_x + |x| (Q4_K, Q5_K, with av_x
 * the sub-block's RMS), |x| (Q2_K) or x^2 (Q3_K, Q6_K, IQ4_NL); with one, imp_i * sqrt(sigma2 + x_i^2), sigma2
 * twice the super-block's mean square. Every function writes n weights (a multiple of its
 * block) into dst. */
#include <math.h>
#include <string.h>

#include "blocks.h"
#include "miniquant/fp16.h"

#define GROUP_MAX_EPS 1e-15f

/* ggml's nearest_int: round half to even (the default rounding mode). */
static inline int nint(float v) {
    return (int)nearbyintf(v);
}

static inline void put_half(uint8_t *p, float v) {
    mq_fp16_t h = mq_fp32_to_fp16(v);
    p[0] = (uint8_t)(h & 0xff);
    p[1] = (uint8_t)(h >> 8);
}

static inline float half_of(float v) {
    return mq_fp16_to_fp32(mq_fp32_to_fp16(v));
}

static inline int clampi(int v, int lo, int hi) {
    return v < lo ? lo : v > hi ? hi : v;
}

/* The error weights of a super-block of n weights at x (imp: its importance, or NULL) for
 * sub-blocks of sub weights: ggml's choices (see the top of the file). */
static void error_weights(const float *x, const float *imp, int n, int sub, int rms_plus_abs,
                          float *w) {
    float sum_x2 = 0;
    for (int i = 0; i < n; i++)
        sum_x2 += x[i] * x[i];
    float sigma2 = 2 * sum_x2 / (float)n;
    for (int j = 0; j < n; j += sub) {
        float sb_x2 = 0;
        for (int i = j; i < j + sub; i++)
            sb_x2 += x[i] * x[i];
        float av_x = sqrtf(sb_x2 / (float)sub);
        for (int i = j; i < j + sub; i++)
            w[i] = imp              ? imp[i] * sqrtf(sigma2 + x[i] * x[i])
                   : rms_plus_abs ? av_x + fabsf(x[i])
                                  : x[i] * x[i];
    }
}

/* ---------------------------------------------------------------------------------------------
 * affine sub-blocks (Q2_K, Q4_K, Q5_K): value = d * ls * q - dmin * lm, q in [0, nmax] */

/* One affine K-quant: sub-blocks of sub weights, codes up to nmax, integer scales and mins up to
 * lmax, ggml's error weights (av_x + |x|, or |x| for Q2_K) and its two sweeps (without and with
 * an importance matrix). */
typedef struct affine_kind {
    int sub, nsub, nmax, lmax, abs_weights;
    float sweep[2][2]; /* rmin, rdelta */
    int steps[2];
} affine_kind_t;

static const affine_kind_t Q2_K = {16, 16, 3, 15, 1, {{-0.5f, 0.1f}, {-0.9f, 0.05f}}, {15, 36}};
static const affine_kind_t Q4_K = {32, 8, 15, 63, 0, {{-1.0f, 0.1f}, {-0.9f, 0.05f}}, {20, 36}};
static const affine_kind_t Q5_K = {32, 8, 31, 63, 0, {{-1.0f, 0.1f}, {-0.9f, 0.05f}}, {20, 36}};

/* The weighted least-squares (scale, min) of a sub-block over a sweep of inverse scales, as
 * ggml's make_qkx2/qkx3_quants: returns the scale (>= 0), *mn the min to subtract (>= 0). */
static float affine_fit(const float *x, const float *w, int n, int nmax, float rmin, float rdelta,
                        int nstep, float *mn, float *best_err) {
    float lo = x[0], hi = x[0], sum_w = 0, sum_x = 0;
    for (int i = 0; i < n; i++) {
        lo = x[i] < lo ? x[i] : lo;
        hi = x[i] > hi ? x[i] : hi;
        sum_w += w[i];
        sum_x += w[i] * x[i];
    }
    if (lo > 0) lo = 0;
    if (hi <= lo) {
        *mn = -lo;
        *best_err = 0;
        return 0;
    }
    float iscale = (float)nmax / (hi - lo), scale = 1 / iscale, min = lo, best = 0;
    for (int i = 0; i < n; i++) {
        int l = clampi(nint(iscale * (x[i] - lo)), 0, nmax);
        float diff = scale * (float)l + lo - x[i];
        best += w[i] * diff * diff;
    }
    for (int is = 0; is <= nstep; is++) {
        float isc = (rmin + rdelta * (float)is + (float)nmax) / (hi - lo);
        float sum_l = 0, sum_l2 = 0, sum_xl = 0;
        int L[32];
        for (int i = 0; i < n; i++) {
            int l = clampi(nint(isc * (x[i] - lo)), 0, nmax);
            L[i] = l;
            sum_l += w[i] * (float)l;
            sum_l2 += w[i] * (float)l * (float)l;
            sum_xl += w[i] * (float)l * x[i];
        }
        float D = sum_w * sum_l2 - sum_l * sum_l;
        if (!(D > 0)) continue;
        float s = (sum_w * sum_xl - sum_x * sum_l) / D, m = (sum_l2 * sum_x - sum_l * sum_xl) / D;
        if (m > 0) {
            m = 0;
            s = sum_xl / sum_l2;
        }
        float e = 0;
        for (int i = 0; i < n; i++) {
            float diff = s * (float)L[i] + m - x[i];
            e += w[i] * diff * diff;
        }
        if (e < best) {
            best = e;
            scale = s;
            min = m;
        }
    }
    *mn = -min;
    *best_err = best;
    return scale;
}

/* The codes of a sub-block on the stored grid (d1 = d * ls, m1 = dmin * lm), and their weighted
 * squared error with the values as ggml dequantizes them. */
static float affine_codes(const float *x, const float *w, int n, int nmax, float d1, float m1,
                          uint8_t *L) {
    float e = 0;
    for (int i = 0; i < n; i++) {
        int l = d1 > 0 ? clampi(nint((x[i] + m1) / d1), 0, nmax) : 0;
        if (L) L[i] = (uint8_t)l;
        float diff = d1 * (float)l - m1 - x[i];
        e += w[i] * diff * diff;
    }
    return e;
}

/* One affine super-block as stored. */
typedef struct affine_sb {
    float d, dmin;      /* as stored (FP16 values) */
    uint8_t ls[16], lm[16];
    uint8_t L[MQ_QK_K]; /* codes */
    float err;
} affine_sb_t;

/* The best integer scale and min of each sub-block for the super-block scales d, dmin. */
static void affine_refine(const affine_kind_t *k, const float *x, const float *w,
                          const float *scales, const float *mins, float d, float dmin,
                          affine_sb_t *sb) {
    sb->d = d;
    sb->dmin = dmin;
    sb->err = 0;
    for (int j = 0; j < k->nsub; j++) {
        const float *xj = x + k->sub * j, *wj = w + k->sub * j;
        int ls0 = d > 0 ? clampi(nint(scales[j] / d), 0, k->lmax) : 0;
        int lm0 = dmin > 0 ? clampi(nint(mins[j] / dmin), 0, k->lmax) : 0;
        float best = INFINITY;
        int bl = ls0, bm = lm0;
        for (int ls = ls0 - 1; ls <= ls0 + 1; ls++) {
            if (ls < 0 || ls > k->lmax || (ls == 0 && ls0 != 0)) continue;
            for (int lm = lm0 - 1; lm <= lm0 + 1; lm++) {
                if (lm < 0 || lm > k->lmax) continue;
                float e = affine_codes(xj, wj, k->sub, k->nmax, d * (float)ls, dmin * (float)lm,
                                       NULL);
                if (e < best) {
                    best = e;
                    bl = ls;
                    bm = lm;
                }
            }
        }
        sb->ls[j] = (uint8_t)bl;
        sb->lm[j] = (uint8_t)bm;
        sb->err += affine_codes(xj, wj, k->sub, k->nmax, d * (float)bl, dmin * (float)bm,
                                sb->L + k->sub * j);
    }
}

/* Error weights of an affine super-block: ggml's. */
static void affine_weights(const affine_kind_t *k, const float *x, const float *imp, float *w) {
    if (!k->abs_weights || imp) {
        error_weights(x, imp, MQ_QK_K, k->sub, 1, w);
        return;
    }
    for (int i = 0; i < MQ_QK_K; i++)
        w[i] = fabsf(x[i]);
}

/* Searches one affine super-block. */
static void affine_superblock(const affine_kind_t *k, const float *x, const float *imp,
                              affine_sb_t *out) {
    float w[MQ_QK_K], scales[16], mins[16];
    affine_weights(k, x, imp, w);
    float max_scale = 0, max_min = 0;
    /* ggml's sweep: its reference quantizer's without an importance, its importance-weighted
     * quantizer's with one */
    int t = imp != NULL;
    for (int j = 0; j < k->nsub; j++) {
        float e;
        scales[j] = affine_fit(x + k->sub * j, w + k->sub * j, k->sub, k->nmax, k->sweep[t][0],
                               k->sweep[t][1], k->steps[t], &mins[j], &e);
        max_scale = scales[j] > max_scale ? scales[j] : max_scale;
        max_min = mins[j] > max_min ? mins[j] : max_min;
    }
    /* d and dmin from the largest scale and min (ggml's), then a step either side of d, then
     * of dmin with the best d */
    static const float STEP[] = {0.0f, 0.5f, -0.5f};
    float step_d = 0;
    out->err = INFINITY;
    for (int pass = 0; pass < 2; pass++)
        for (size_t a = pass; a < sizeof STEP / sizeof STEP[0]; a++) {
            float sd = pass ? step_d : STEP[a], sm = pass ? STEP[a] : 0.0f;
            float d = max_scale > 0 ? half_of(max_scale / ((float)k->lmax + sd)) : 0;
            float dmin = max_min > 0 ? half_of(max_min / ((float)k->lmax + sm)) : 0;
            affine_sb_t c;
            affine_refine(k, x, w, scales, mins, d, dmin, &c);
            if (c.err < out->err) {
                *out = c;
                if (!pass) step_d = sd;
            }
        }
}

/* The 12 bytes of 6-bit scales and mins. */
static void k4_pack(const uint8_t *ls, const uint8_t *lm, uint8_t *q) {
    for (int j = 0; j < 4; j++) {
        q[j] = (uint8_t)(ls[j] | (ls[j + 4] >> 4) << 6);
        q[j + 4] = (uint8_t)(lm[j] | (lm[j + 4] >> 4) << 6);
        q[j + 8] = (uint8_t)((ls[j + 4] & 15) | (lm[j + 4] & 15) << 4);
    }
}

static void k_encode(const float *x, const float *imp, int n, uint8_t *dst, int five) {
    size_t bytes = five ? MQ_Q5_K_BYTES : MQ_Q4_K_BYTES;
    for (int b = 0; b < n / MQ_QK_K; b++, dst += bytes) {
        const float *xb = x + (size_t)b * MQ_QK_K;
        affine_sb_t sb;
        affine_superblock(five ? &Q5_K : &Q4_K, xb, imp ? imp + (size_t)b * MQ_QK_K : NULL, &sb);
        memset(dst, 0, bytes);
        put_half(dst, sb.d);
        put_half(dst + 2, sb.dmin);
        k4_pack(sb.ls, sb.lm, dst + 4);
        uint8_t *qh = dst + 16, *ql = dst + (five ? 48 : 16);
        for (int g = 0; g < 4; g++)
            for (int l = 0; l < 32; l++) {
                int lo = sb.L[64 * g + l], hi = sb.L[64 * g + 32 + l];
                ql[32 * g + l] = (uint8_t)((lo & 15) | (hi & 15) << 4);
                if (five) qh[l] |= (uint8_t)(((lo >> 4) << (2 * g)) | ((hi >> 4) << (2 * g + 1)));
            }
    }
}

void mq_blocks_quantize_q4_k(const float *x, const float *imp, int n, uint8_t *dst) {
    k_encode(x, imp, n, dst, 0);
}

void mq_blocks_quantize_q5_k(const float *x, const float *imp, int n, uint8_t *dst) {
    k_encode(x, imp, n, dst, 1);
}

/* Q2_K: 16 bytes of scale | min << 4, then weight 128 h + 32 k + 16 p + l in bits 2 k of code
 * byte 32 h + 16 p + l, then d and dmin. */
void mq_blocks_quantize_q2_k(const float *x, const float *imp, int n, uint8_t *dst) {
    for (int b = 0; b < n / MQ_QK_K; b++, dst += MQ_Q2_K_BYTES) {
        affine_sb_t sb;
        affine_superblock(&Q2_K, x + (size_t)b * MQ_QK_K, imp ? imp + (size_t)b * MQ_QK_K : NULL,
                          &sb);
        memset(dst, 0, MQ_Q2_K_BYTES);
        for (int j = 0; j < 16; j++)
            dst[j] = (uint8_t)(sb.ls[j] | sb.lm[j] << 4);
        for (int w = 0; w < MQ_QK_K; w++) {
            int h = w / 128, k = (w % 128) / 32, r = w % 32;
            dst[16 + 32 * h + r] |= (uint8_t)(sb.L[w] << (2 * k));
        }
        put_half(dst + 80, sb.d);
        put_half(dst + 82, sb.dmin);
    }
}

/* ---------------------------------------------------------------------------------------------
 * symmetric sub-blocks of 16 (Q3_K, Q6_K): value = d * ls * q, q in [-nmax, nmax - 1], ls a
 * signed integer in [-lmax, lmax - 1], the largest scale stored as -lmax */

/* ggml's make_qx_quants: the weighted least-squares scale of codes in [-nmax, nmax - 1], the
 * sign chosen so that the largest magnitude takes -nmax, over a sweep of 19 inverse scales; and
 * the coordinate descent of make_q3_quants on the codes of the first. Returns the best scale by
 * the least-squares error of its codes. */
static float symmetric_fit(const float *x, const float *w, int n, int nmax) {
    float amax = 0, max = 0;
    for (int i = 0; i < n; i++)
        if (fabsf(x[i]) > amax) {
            amax = fabsf(x[i]);
            max = x[i];
        }
    if (amax < GROUP_MAX_EPS) return 0;
    float best_s = 0, best = -1;
    for (int is = -9; is <= 9; is++) {
        float iscale = -((float)nmax + 0.1f * (float)is) / max, sumlx = 0, suml2 = 0;
        for (int i = 0; i < n; i++) {
            int l = clampi(nint(iscale * x[i]), -nmax, nmax - 1);
            sumlx += w[i] * x[i] * (float)l;
            suml2 += w[i] * (float)l * (float)l;
        }
        if (suml2 > 0 && (best < 0 || sumlx * sumlx > best * suml2)) {
            best_s = sumlx / suml2;
            best = best_s * sumlx;
        }
    }
    /* coordinate descent from the codes of -nmax / max */
    int L[16];
    float sumlx = 0, suml2 = 0, iscale = -(float)nmax / max;
    for (int i = 0; i < n; i++) {
        L[i] = clampi(nint(iscale * x[i]), -nmax, nmax - 1);
        sumlx += w[i] * x[i] * (float)L[i];
        suml2 += w[i] * (float)L[i] * (float)L[i];
    }
    for (int itry = 0; itry < 5; itry++) {
        int changed = 0;
        for (int i = 0; i < n; i++) {
            float slx = sumlx - w[i] * x[i] * (float)L[i];
            if (!(slx > 0)) continue;
            float sl2 = suml2 - w[i] * (float)L[i] * (float)L[i];
            int nl = clampi(nint(x[i] * sl2 / slx), -nmax, nmax - 1);
            if (nl == L[i]) continue;
            slx += w[i] * x[i] * (float)nl;
            sl2 += w[i] * (float)nl * (float)nl;
            if (sl2 > 0 && slx * slx * suml2 > sumlx * sumlx * sl2) {
                L[i] = nl;
                sumlx = slx;
                suml2 = sl2;
                changed++;
            }
        }
        if (!changed) break;
    }
    if (suml2 > 0 && (best < 0 || sumlx * sumlx > best * suml2)) best_s = sumlx / suml2;
    return best_s;
}

static float symmetric_codes(const float *x, const float *w, int n, int nmax, float d1,
                             int8_t *L) {
    float e = 0;
    for (int i = 0; i < n; i++) {
        int l = d1 != 0 ? clampi(nint(x[i] / d1), -nmax, nmax - 1) : 0;
        if (L) L[i] = (int8_t)l;
        float diff = d1 * (float)l - x[i];
        e += w[i] * diff * diff;
    }
    return e;
}

/* Searches a symmetric super-block: *d (as stored), ls[16], L[256]; returns 0 for an all-zero
 * super-block (d 0, everything 0). */
static int symmetric_superblock(const float *x, const float *imp, int nmax, int lmax, float *d_out,
                                int8_t *ls_out, int8_t *L_out) {
    float w[MQ_QK_K], scales[16], max_scale = 0, amax = 0;
    error_weights(x, imp, MQ_QK_K, 16, 0, w);
    for (int j = 0; j < 16; j++) {
        scales[j] = symmetric_fit(x + 16 * j, w + 16 * j, 16, nmax);
        if (fabsf(scales[j]) > amax) {
            amax = fabsf(scales[j]);
            max_scale = scales[j];
        }
    }
    if (amax < GROUP_MAX_EPS) return 0;
    int8_t L[MQ_QK_K];
    float best_err = INFINITY;
    static const float STEP[] = {0.0f, 0.5f, -0.5f, 1.0f, -1.0f};
    for (size_t a = 0; a < sizeof STEP / sizeof STEP[0]; a++) {
        /* ggml: the largest scale becomes -lmax */
        float d = half_of(max_scale / -((float)lmax + STEP[a])), err = 0;
        if (d == 0) continue;
        int8_t ls[16];
        for (int j = 0; j < 16; j++) {
            int l0 = clampi(nint(scales[j] / d), -lmax, lmax - 1), bl = l0;
            float best = INFINITY;
            for (int l = l0 - 2; l <= l0 + 2; l++) {
                if (l < -lmax || l > lmax - 1) continue;
                float e = symmetric_codes(x + 16 * j, w + 16 * j, 16, nmax, d * (float)l, NULL);
                if (e < best) {
                    best = e;
                    bl = l;
                }
            }
            ls[j] = (int8_t)bl;
            err += symmetric_codes(x + 16 * j, w + 16 * j, 16, nmax, d * (float)bl, L + 16 * j);
        }
        if (err < best_err) {
            best_err = err;
            *d_out = d;
            memcpy(ls_out, ls, sizeof ls);
            memcpy(L_out, L, sizeof L);
        }
    }
    return best_err < INFINITY;
}

/* ql: 64 bytes per 128 weights, weight 32 k + l (k < 4) nibble k / 2 of byte 32 (k % 2) + l;
 * qh: bits 2 k of byte l; the 16 int8 scales; d. */
void mq_blocks_quantize_q6_k(const float *x, const float *imp, int n, uint8_t *dst) {
    for (int b = 0; b < n / MQ_QK_K; b++, dst += MQ_Q6_K_BYTES) {
        float d = 0;
        int8_t ls[16] = {0}, L[MQ_QK_K] = {0};
        memset(dst, 0, MQ_Q6_K_BYTES);
        if (!symmetric_superblock(x + (size_t)b * MQ_QK_K, imp ? imp + (size_t)b * MQ_QK_K : NULL,
                                  32, 128, &d, ls, L))
            continue;
        uint8_t *ql = dst, *qh = dst + 128;
        for (int h = 0; h < 2; h++)
            for (int k = 0; k < 4; k++)
                for (int l = 0; l < 32; l++) {
                    int q = L[128 * h + 32 * k + l] + 32;
                    ql[64 * h + 32 * (k % 2) + l] |= (uint8_t)((q & 15) << (4 * (k / 2)));
                    qh[32 * h + l] |= (uint8_t)((q >> 4) << (2 * k));
                }
        memcpy(dst + 192, ls, 16);
        put_half(dst + 208, d);
    }
}

/* Q3_K: 32 bytes of high bits (weight 128 h + 32 k + 16 p + l: bit 4 h + k of byte 16 p + l,
 * set for q >= 0), 64 bytes of the low 2 bits (q + 4, bits 2 k of byte 32 h + 16 p + l), the
 * 16 scales + 32 in 12 bytes, d. */
void mq_blocks_quantize_q3_k(const float *x, const float *imp, int n, uint8_t *dst) {
    for (int b = 0; b < n / MQ_QK_K; b++, dst += MQ_Q3_K_BYTES) {
        float d = 0;
        int8_t ls[16] = {0}, L[MQ_QK_K] = {0};
        memset(dst, 0, MQ_Q3_K_BYTES);
        int nonzero = symmetric_superblock(x + (size_t)b * MQ_QK_K,
                                           imp ? imp + (size_t)b * MQ_QK_K : NULL, 4, 32, &d, ls,
                                           L);
        for (int w = 0; w < MQ_QK_K; w++) {
            int h = w / 128, k = (w % 128) / 32, r = w % 32, u = L[w] + 4;
            dst[32 + 32 * h + r] |= (uint8_t)((u & 3) << (2 * k));
            if (u >> 2) dst[r] |= (uint8_t)(1u << (4 * h + k));
        }
        uint8_t *s12 = dst + 96;
        for (int i = 0; i < 16; i++) {
            int v = nonzero ? ls[i] + 32 : 32;
            if (i < 8) s12[i] |= (uint8_t)(v & 15);
            else s12[i - 8] |= (uint8_t)((v & 15) << 4);
            s12[8 + i % 4] |= (uint8_t)((v >> 4) << (2 * (i / 4)));
        }
        put_half(dst + 108, d);
    }
}

/* ---------------------------------------------------------------------------------------------
 * IQ4_NL: value = d * book[q] per 32 */

static int book_index(float v) {
    if (v <= MQ_IQ4_BOOK[0]) return 0;
    if (v >= MQ_IQ4_BOOK[15]) return 15;
    int lo = 0, hi = 15;
    while (hi - lo > 1) {
        int mid = (lo + hi) / 2;
        if (v < MQ_IQ4_BOOK[mid]) hi = mid;
        else lo = mid;
    }
    return v - MQ_IQ4_BOOK[hi - 1] < MQ_IQ4_BOOK[hi] - v ? hi - 1 : hi;
}

static float book_codes(const float *x, const float *w, int n, float d, uint8_t *L) {
    float e = 0;
    for (int i = 0; i < n; i++) {
        int l = d != 0 ? book_index(x[i] / d) : 8;
        if (L) L[i] = (uint8_t)l;
        float diff = d * (float)MQ_IQ4_BOOK[l] - x[i];
        e += w[i] * diff * diff;
    }
    return e;
}

void mq_blocks_quantize_iq4_nl(const float *x, const float *imp, int n, uint8_t *dst) {
    for (int b = 0; b < n / 32; b++, dst += MQ_IQ4_NL_BYTES) {
        const float *xb = x + (size_t)b * 32;
        float w[32], amax = 0, max = 0;
        error_weights(xb, imp ? imp + (size_t)b * 32 : NULL, 32, 32, 0, w);
        for (int i = 0; i < 32; i++)
            if (fabsf(xb[i]) > amax) {
                amax = fabsf(xb[i]);
                max = xb[i];
            }
        memset(dst, 0, MQ_IQ4_NL_BYTES);
        uint8_t L[32];
        if (amax < GROUP_MAX_EPS) {
            for (int j = 0; j < 16; j++)
                dst[2 + j] = 8 | 8 << 4; /* index 8: value 1 * d = 0 */
            continue;
        }
        /* ggml's sweep of 15 inverse scales, each with its least-squares d, for either sign
         * (the largest weight near -127 or near +113; ggml starts from the second and sweeps
         * the first); every candidate d then scored as stored (FP16), with the codes
         * re-rounded */
        float best = INFINITY, best_d = 0;
        for (int t = 0; t < 30; t++) {
            int itry = t % 15 - 7;
            float sign = t < 15 ? 1.0f : -1.0f;
            float id = sign * ((float)itry + (float)MQ_IQ4_BOOK[0]) / max, sumqx = 0, sumq2 = 0;
            for (int i = 0; i < 32; i++) {
                float q = (float)MQ_IQ4_BOOK[book_index(id * xb[i])];
                sumqx += w[i] * q * xb[i];
                sumq2 += w[i] * q * q;
            }
            float cands[2] = {sumq2 > 0 ? sumqx / sumq2 : 0, 1 / id};
            for (int c = 0; c < 2; c++) {
                float d = half_of(cands[c]);
                if (d == 0 || !isfinite(d)) continue;
                float e = book_codes(xb, w, 32, d, NULL);
                if (e < best) {
                    best = e;
                    best_d = d;
                }
            }
        }
        book_codes(xb, w, 32, best_d, L);
        put_half(dst, best_d);
        for (int j = 0; j < 16; j++)
            dst[2 + j] = (uint8_t)(L[j] | L[j + 16] << 4);
    }
}

/* ---------------------------------------------------------------------------------------------
 * the fallbacks of rows no K-quant block divides, as ggml's reference quantizers write them */

void mq_blocks_quantize_q5_0(const float *x, const float *imp, int n, uint8_t *dst) {
    (void)imp;
    for (int b = 0; b < n / 32; b++, dst += MQ_Q5_0_BYTES) {
        const float *xb = x + (size_t)b * 32;
        float amax = 0, max = 0;
        for (int i = 0; i < 32; i++)
            if (fabsf(xb[i]) > amax) {
                amax = fabsf(xb[i]);
                max = xb[i];
            }
        float d = max / -16, id = d != 0 ? 1.0f / d : 0.0f;
        put_half(dst, d);
        uint32_t qh = 0;
        for (int j = 0; j < 16; j++) {
            int x0 = clampi((int)(xb[j] * id + 16.5f), 0, 31);
            int x1 = clampi((int)(xb[j + 16] * id + 16.5f), 0, 31);
            dst[6 + j] = (uint8_t)((x0 & 15) | (x1 & 15) << 4);
            qh |= (uint32_t)(x0 >> 4) << j | (uint32_t)(x1 >> 4) << (j + 16);
        }
        for (int i = 0; i < 4; i++)
            dst[2 + i] = (uint8_t)(qh >> (8 * i));
    }
}

void mq_blocks_quantize_q5_1(const float *x, const float *imp, int n, uint8_t *dst) {
    (void)imp;
    for (int b = 0; b < n / 32; b++, dst += MQ_Q5_1_BYTES) {
        const float *xb = x + (size_t)b * 32;
        float lo = xb[0], hi = xb[0];
        for (int i = 1; i < 32; i++) {
            lo = xb[i] < lo ? xb[i] : lo;
            hi = xb[i] > hi ? xb[i] : hi;
        }
        float d = (hi - lo) / 31, id = d != 0 ? 1.0f / d : 0.0f;
        put_half(dst, d);
        put_half(dst + 2, lo);
        uint32_t qh = 0;
        for (int j = 0; j < 16; j++) {
            int x0 = clampi((int)((xb[j] - lo) * id + 0.5f), 0, 31);
            int x1 = clampi((int)((xb[j + 16] - lo) * id + 0.5f), 0, 31);
            dst[8 + j] = (uint8_t)((x0 & 15) | (x1 & 15) << 4);
            qh |= (uint32_t)(x0 >> 4) << j | (uint32_t)(x1 >> 4) << (j + 16);
        }
        for (int i = 0; i < 4; i++)
            dst[4 + i] = (uint8_t)(qh >> (8 * i));
    }
}

void mq_blocks_quantize_q8_0(const float *x, const float *imp, int n, uint8_t *dst) {
    (void)imp;
    for (int b = 0; b < n / 32; b++, dst += 34) {
        const float *xb = x + (size_t)b * 32;
        float amax = 0;
        for (int i = 0; i < 32; i++)
            amax = fabsf(xb[i]) > amax ? fabsf(xb[i]) : amax;
        float d = amax / 127, id = d != 0 ? 1.0f / d : 0.0f;
        put_half(dst, d);
        for (int i = 0; i < 32; i++)
            dst[2 + i] = (uint8_t)(int8_t)roundf(xb[i] * id);
    }
}

/* ---------------------------------------------------------------------------------------------
 * GPTQ's hook: the nearest code of one weight on a block's stored scales (blocks.h). The value
 * returned is the one the dequantizer computes: the same operations on the same floats. */

/* Q4_K / Q5_K: sub-block j / 32's d1 = d * ls, m1 = dmin * lm; q = round((w + m1) / d1). */
static float k_nearest(uint8_t *blk, int j, float w, int five) {
    int sub = j / 32, g = j / 64, l = j % 32, hi = sub & 1, nmax = five ? 31 : 15;
    uint8_t sc, m;
    mq_blocks_k4_scale_min(blk + 4, sub, &sc, &m);
    const float d1 = mq_blocks_half_at(blk) * sc, m1 = mq_blocks_half_at(blk + 2) * m;
    int q = d1 > 0 ? clampi(nint((w + m1) / d1), 0, nmax) : 0;
    uint8_t *ql = blk + (five ? 48 : 16) + 32 * g + l;
    *ql = (uint8_t)(hi ? (*ql & 0x0f) | (q & 15) << 4 : (*ql & 0xf0) | (q & 15));
    if (five) {
        uint8_t bit = (uint8_t)(1u << sub), *qh = blk + 16 + l;
        *qh = (uint8_t)(q >> 4 ? *qh | bit : *qh & ~bit);
    }
    return d1 * (float)((q & 15) + (five && (q >> 4) ? 16 : 0)) - m1;
}

float mq_blocks_nearest_q4_k(uint8_t *blk, int j, float w) {
    return k_nearest(blk, j, w, 0);
}

float mq_blocks_nearest_q5_k(uint8_t *blk, int j, float w) {
    return k_nearest(blk, j, w, 1);
}

/* Q6_K: weight j = 128 h + 32 k + l, scale 8 h + 2 k + l / 16, q = round(w / (d * sc)) + 32. */
float mq_blocks_nearest_q6_k(uint8_t *blk, int j, float w) {
    int h = j / 128, k = (j % 128) / 32, l = j % 32;
    int8_t sc = (int8_t)blk[192 + 8 * h + 2 * k + l / 16];
    const float d = mq_blocks_half_at(blk + 208), d1 = d * sc;
    int q = d1 != 0 ? clampi(nint(w / d1), -32, 31) : 0, u = q + 32;
    uint8_t *ql = blk + 64 * h + 32 * (k % 2) + l, *qh = blk + 128 + 32 * h + l;
    int shift = 4 * (k / 2);
    *ql = (uint8_t)((*ql & ~(0x0f << shift)) | (u & 15) << shift);
    *qh = (uint8_t)((*qh & ~(3 << (2 * k))) | (u >> 4) << (2 * k));
    return d * sc * (int8_t)(u - 32);
}

/* IQ4_NL: the codebook value nearest to w / d. */
float mq_blocks_nearest_iq4_nl(uint8_t *blk, int j, float w) {
    const float d = mq_blocks_half_at(blk);
    int q = d != 0 ? book_index(w / d) : 8;
    uint8_t *b = blk + 2 + j % 16;
    *b = (uint8_t)(j < 16 ? (*b & 0xf0) | q : (*b & 0x0f) | q << 4);
    return d * MQ_IQ4_BOOK[q];
}

/* Q2_K: sub-block j / 16's d1 = d * (sc & 15), m1 = dmin * (sc >> 4); q = round((w + m1) / d1). */
float mq_blocks_nearest_q2_k(uint8_t *blk, int j, float w) {
    const uint8_t sc = blk[j / 16];
    const float dl = mq_blocks_half_at(blk + 80) * (sc & 0xF), ml = mq_blocks_half_at(blk + 82) * (sc >> 4);
    int q = dl > 0 ? clampi(nint((w + ml) / dl), 0, 3) : 0;
    int h = j / 128, k = (j % 128) / 32, r = j % 32;
    uint8_t *b = blk + 16 + 32 * h + r;
    *b = (uint8_t)((*b & ~(3 << (2 * k))) | q << (2 * k));
    return dl * (float)(int8_t)q - ml;
}

/* Q3_K: scale j / 16 (its 6 bits from the 12 bytes, minus 32); q = round(w / (d * sc)). */
float mq_blocks_nearest_q3_k(uint8_t *blk, int j, float w) {
    int i = j / 16, h = j / 128, k = (j % 128) / 32, r = j % 32;
    const uint8_t *s12 = blk + 96;
    int lo = i < 8 ? s12[i] & 0xF : s12[i - 8] >> 4, hi = (s12[8 + i % 4] >> (2 * (i / 4))) & 3;
    const float dl = mq_blocks_half_at(blk + 108) * (float)((int8_t)(lo | hi << 4) - 32);
    int q = dl != 0 ? clampi(nint(w / dl), -4, 3) : 0, u = q + 4;
    uint8_t *low = blk + 32 + 32 * h + r, bit = (uint8_t)(1u << (4 * h + k));
    *low = (uint8_t)((*low & ~(3 << (2 * k))) | (u & 3) << (2 * k));
    blk[r] = (uint8_t)(u >> 2 ? blk[r] | bit : blk[r] & ~bit);
    return dl * ((int8_t)(u & 3) - ((u >> 2) ? 0 : 4));
}
