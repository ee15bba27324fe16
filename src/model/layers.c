/* miniquant: the models' layers, forward and backward, in FP32.
 *
 * Linear layers and the per-head products of attention go through OpenBLAS's sgemm; the rest
 * are OpenMP loops with static schedules. Nothing here is reduced in an order that depends on
 * timing: reductions over rows (bias and LayerNorm weight gradients, embedding gradients where
 * tokens repeat) give each thread a range of columns and walk the rows in order, so the result
 * does not even depend on the thread count. */
#include "miniquant/layers.h"

#include <cblas.h>
#include <math.h>
#include <omp.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

/* ---------------------------------------------------------------------------------------------
 * helpers */

/* exp(x) with a relative error of a few ulp, written so that the loops calling it vectorise:
 * libm's expf does not without -ffast-math, and softmax and GELU spend most of their time here.
 * Cephes' polynomial; 2^n is built in the exponent bits. Inputs are clamped to [-87, 88], so
 * the result never overflows and very negative inputs give ~1e-38 instead of 0. */
static inline float exp_fast(float x) {
    x = x < -87.0f ? -87.0f : x;
    x = x > 88.0f ? 88.0f : x;
    /* adding 1.5 * 2^23 rounds to an integer, which then sits in the low mantissa bits */
    float t = x * 1.44269504088896341f + 12582912.0f;
    float n = t - 12582912.0f;
    float r = x - n * 0.693359375f;
    r = r - n * -2.12194440e-4f;
    float p = 1.9875691500e-4f;
    p = p * r + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    p = p * r * r + r + 1.0f;
    /* unsigned, so that a NaN x (a model with NaN weights) gives NaN, not undefined behaviour */
    uint32_t ti;
    memcpy(&ti, &t, sizeof ti);
    uint32_t e = (ti - 0x4B400000u + 127u) << 23;
    float s;
    memcpy(&s, &e, sizeof s);
    return p * s;
}

float mq_softmax_numerators(float *out, const float *a, int n, float maxv) {
    float sum = 0.0f;
#pragma omp simd reduction(+ : sum)
    for (int j = 0; j < n; j++) {
        float e = exp_fast(a[j] - maxv);
        out[j] = e;
        sum += e;
    }
    return sum;
}

/* This thread's share [*i0, *i1) of n rows or columns, in blocks of 16 so that threads writing
 * columns never share a 64-byte line. Called inside a parallel region. */
static void thread_share(int n, int *i0, int *i1) {
    int nth = omp_get_num_threads(), tid = omp_get_thread_num();
    int nblk = (n + 15) / 16;
    int b0 = (int)((int64_t)nblk * tid / nth), b1 = (int)((int64_t)nblk * (tid + 1) / nth);
    *i0 = b0 * 16 < n ? b0 * 16 : n;
    *i1 = b1 * 16 < n ? b1 * 16 : n;
}

/* dbias (OC) += column sums of dout (N, OC): this thread's columns, rows in order. Called inside
 * a parallel region. */
static void colsum_share(float *dbias, const float *dout, int N, int OC) {
    int c0, c1;
    thread_share(OC, &c0, &c1);
    for (int n = 0; n < N; n++) {
        const float *d = dout + (size_t)n * OC;
#pragma omp simd
        for (int o = c0; o < c1; o++)
            dbias[o] += d[o];
    }
}

/* ---------------------------------------------------------------------------------------------
 * encoder */

void mq_encoder_forward(float *out, const int *inp, const float *wte, const float *wpe, int B,
                        int T, int C) {
    // out is (B,T,C), inp is (B,T), wte is (V,C), wpe is (maxT,C)
#pragma omp parallel for schedule(static)
    for (int bt = 0; bt < B * T; bt++) {
        float *o = out + (size_t)bt * C;
        const float *te = wte + (size_t)inp[bt] * C;
        const float *pe = wpe + (size_t)(bt % T) * C;
#pragma omp simd
        for (int c = 0; c < C; c++)
            o[c] = te[c] + pe[c];
    }
}

void mq_encoder_backward(float *dwte, float *dwpe, const float *dout, const int *inp, int B, int T,
                         int C) {
    // dwte is (V,C), dwpe is (maxT,C), dout is (B,T,C), inp is (B,T)
#pragma omp parallel
    {
        int c0, c1;
        thread_share(C, &c0, &c1);
        for (int bt = 0; bt < B * T; bt++) {
            const float *d = dout + (size_t)bt * C;
            float *dte = dwte + (size_t)inp[bt] * C;
            float *dpe = dwpe + (size_t)(bt % T) * C;
#pragma omp simd
            for (int c = c0; c < c1; c++) {
                dte[c] += d[c];
                dpe[c] += d[c];
            }
        }
    }
}

/* ---------------------------------------------------------------------------------------------
 * layernorm */

void mq_layernorm_row(float *o, float *mean, float *rstd, const float *x, const float *weight,
                      const float *bias, int C) {
    float s = 0.0f;
#pragma omp simd reduction(+ : s)
    for (int c = 0; c < C; c++)
        s += x[c];
    float m = s / (float)C;
    /* two passes: the variance of a row with a large mean stays accurate */
    float v = 0.0f;
#pragma omp simd reduction(+ : v)
    for (int c = 0; c < C; c++)
        v += (x[c] - m) * (x[c] - m);
    float rs = 1.0f / sqrtf(v / (float)C + 1e-5f);
#pragma omp simd
    for (int c = 0; c < C; c++)
        o[c] = (x[c] - m) * rs * weight[c] + bias[c];
    *mean = m;
    *rstd = rs;
}

void mq_layernorm_forward(float *out, float *mean, float *rstd, const float *inp,
                          const float *weight, const float *bias, int N, int C) {
    // out is (N,C), mean and rstd are (N), inp is (N,C), weight and bias are (C)
#pragma omp parallel for schedule(static)
    for (int n = 0; n < N; n++)
        mq_layernorm_row(out + (size_t)n * C, mean + n, rstd + n, inp + (size_t)n * C, weight, bias,
                         C);
}

void mq_layernorm_backward(float *dinp, float *dweight, float *dbias, const float *dout,
                           const float *inp, const float *weight, const float *mean,
                           const float *rstd, int N, int C) {
    // dinp is (N,C), dweight and dbias are (C), dout and inp are (N,C), mean and rstd are (N)
#pragma omp parallel
    {
#pragma omp for schedule(static) nowait
        for (int n = 0; n < N; n++) {
            const float *x = inp + (size_t)n * C, *d = dout + (size_t)n * C;
            float *dx = dinp + (size_t)n * C;
            float m = mean[n], rs = rstd[n];
            float dnorm_mean = 0.0f, dnorm_norm_mean = 0.0f;
#pragma omp simd reduction(+ : dnorm_mean, dnorm_norm_mean)
            for (int c = 0; c < C; c++) {
                float dnorm = weight[c] * d[c];
                dnorm_mean += dnorm;
                dnorm_norm_mean += dnorm * (x[c] - m) * rs;
            }
            dnorm_mean /= (float)C;
            dnorm_norm_mean /= (float)C;
#pragma omp simd
            for (int c = 0; c < C; c++) {
                float xhat = (x[c] - m) * rs;
                dx[c] += (weight[c] * d[c] - dnorm_mean - xhat * dnorm_norm_mean) * rs;
            }
        }
        /* no barrier between the two passes: the column pass reads only what the row pass reads */
        int c0, c1;
        thread_share(C, &c0, &c1);
        for (int n = 0; n < N; n++) {
            const float *x = inp + (size_t)n * C, *d = dout + (size_t)n * C;
            float m = mean[n], rs = rstd[n];
#pragma omp simd
            for (int c = c0; c < c1; c++) {
                dbias[c] += d[c];
                dweight[c] += (x[c] - m) * rs * d[c];
            }
        }
    }
}

/* ---------------------------------------------------------------------------------------------
 * matmul
 *
 * The products are split by rows among the threads here rather than inside OpenBLAS: each
 * thread calls sgemm on its block of rows (single-threaded inside the parallel region), so the
 * threads never wait on each other within a product, and the two products of the backward pass
 * and the bias gradient share one parallel region with a single barrier at its end. On a machine
 * whose cores are also busy with other work, the synchronisation inside a threaded sgemm can cost
 * more than the product itself (and on an idle one the split is still a few percent faster). Each
 * thread packs the whole other operand, so the split needs enough rows per thread to pay for that;
 * smaller products go to OpenBLAS as a whole. */

#define SPLIT_MIN_ROWS 64

static int split_rows(int rows) {
    int nth = omp_get_max_threads();
    return nth > 1 && !omp_in_parallel() && rows >= SPLIT_MIN_ROWS * nth;
}

void mq_matvec_rows(float *out, const float *x, const float *weight, const float *bias, int C,
                    int o0, int o1) {
    if (o1 <= o0) return;
    if (bias) memcpy(out + o0, bias + o0, (size_t)(o1 - o0) * sizeof *out);
    cblas_sgemv(CblasRowMajor, CblasNoTrans, o1 - o0, C, 1.0f, weight + (size_t)o0 * C, C, x, 1,
                bias ? 1.0f : 0.0f, out + o0, 1);
}

void mq_matmul_forward(float *out, const float *inp, const float *weight, const float *bias, int N,
                       int C, int OC) {
    // out is (N,OC), inp is (N,C), weight is (OC,C), bias is (OC) or NULL
    /* sgemm with beta = 1 adds onto the bias rows: no separate pass to add the bias */
    float beta = bias ? 1.0f : 0.0f;
    if (!split_rows(N)) {
        if (bias)
            for (int n = 0; n < N; n++)
                memcpy(out + (size_t)n * OC, bias, (size_t)OC * sizeof(float));
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, N, OC, C, 1.0f, inp, C, weight, C,
                    beta, out, OC);
        return;
    }
#pragma omp parallel
    {
        int n0, n1;
        thread_share(N, &n0, &n1);
        if (bias)
            for (int n = n0; n < n1; n++)
                memcpy(out + (size_t)n * OC, bias, (size_t)OC * sizeof(float));
        if (n1 > n0)
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, n1 - n0, OC, C, 1.0f,
                        inp + (size_t)n0 * C, C, weight, C, beta, out + (size_t)n0 * OC, OC);
    }
}

static void matmul_backward(float *dinp, float *dweight, float *dbias, const float *dout,
                            const float *inp, const float *weight, int N, int C, int OC,
                            float dinp_beta) {
    // dinp is (N,C), dweight is (OC,C), dbias is (OC), dout is (N,OC), inp is (N,C)
    int split_dinp = dinp && split_rows(N), split_dweight = dweight && split_rows(OC);
    if (split_dinp || split_dweight || dbias) {
#pragma omp parallel
        {
            int r0, r1;
            if (split_dinp) {
                // dinp (N,C) = dout (N,OC) @ weight (OC,C), this thread's rows of N
                thread_share(N, &r0, &r1);
                if (r1 > r0)
                    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, r1 - r0, C, OC, 1.0f,
                                dout + (size_t)r0 * OC, OC, weight, C, dinp_beta,
                                dinp + (size_t)r0 * C, C);
            }
            if (split_dweight) {
                // dweight (OC,C) += dout^T (OC,N) @ inp (N,C), this thread's rows of OC
                thread_share(OC, &r0, &r1);
                if (r1 > r0)
                    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, r1 - r0, C, N, 1.0f,
                                dout + r0, OC, inp, C, 1.0f, dweight + (size_t)r0 * C, C);
            }
            if (dbias) colsum_share(dbias, dout, N, OC);
        }
    }
    if (dinp && !split_dinp)
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, N, C, OC, 1.0f, dout, OC, weight, C,
                    dinp_beta, dinp, C);
    if (dweight && !split_dweight)
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, OC, C, N, 1.0f, dout, OC, inp, C, 1.0f,
                    dweight, C);
}

void mq_matmul_backward(float *dinp, float *dweight, float *dbias, const float *dout,
                        const float *inp, const float *weight, int N, int C, int OC) {
    matmul_backward(dinp, dweight, dbias, dout, inp, weight, N, C, OC, 1.0f);
}

void mq_matmul_backward_overwrite(float *dinp, float *dweight, float *dbias, const float *dout,
                                  const float *inp, const float *weight, int N, int C, int OC) {
    matmul_backward(dinp, dweight, dbias, dout, inp, weight, N, C, OC, 0.0f);
}

/* ---------------------------------------------------------------------------------------------
 * attention
 *
 * One (b, h) pair at a time, the pairs shared among threads; each pair's products are sgemm
 * calls, which OpenBLAS runs single-threaded inside the parallel region. They compute the full
 * T x T score matrix although only its lower triangle is used: at T = 128, hs = 64 that is still
 * two to three times faster than vectorised loops over the triangle. The masked entries of att are
 * stored as zeros, so the products with att need no mask. */

/* Attention over Q (rows ldq apart), K and V (rows ldk apart), NH query heads of hs, NKV key and
 * value heads (query head h reads key/value head h / (NH / NKV)), out rows ldo apart. Batch b's
 * rows start at b * T rows of each. */
typedef struct attn_args {
    const float *q, *k, *v;
    int ldq, ldk, ldo;
    int B, T, NH, NKV, hs;
} attn_args_t;

static void attention_fwd(float *out, float *att, const attn_args_t *x) {
    int B = x->B, T = x->T, NH = x->NH, hs = x->hs, group = x->NH / x->NKV;
    float scale = 1.0f / sqrtf((float)hs);
#pragma omp parallel for schedule(static)
    for (int bh = 0; bh < B * NH; bh++) {
        int b = bh / NH, h = bh % NH, kh = h / group;
        const float *q = x->q + (size_t)b * T * x->ldq + (size_t)h * hs;
        const float *k = x->k + (size_t)b * T * x->ldk + (size_t)kh * hs;
        const float *v = x->v + (size_t)b * T * x->ldk + (size_t)kh * hs;
        float *a = att + (size_t)bh * T * T;
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, T, T, hs, scale, q, x->ldq, k, x->ldk,
                    0.0f, a, T);
        for (int t = 0; t < T; t++) {
            float *row = a + (size_t)t * T;
            float maxv = -INFINITY;
            for (int j = 0; j <= t; j++)
                maxv = row[j] > maxv ? row[j] : maxv;
            float inv = 1.0f / mq_softmax_numerators(row, row, t + 1, maxv);
#pragma omp simd
            for (int j = 0; j <= t; j++)
                row[j] *= inv;
            for (int j = t + 1; j < T; j++)
                row[j] = 0.0f;
        }
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, T, hs, T, 1.0f, a, T, v, x->ldk,
                    0.0f, out + (size_t)b * T * x->ldo + (size_t)h * hs, x->ldo);
    }
}

void mq_attention_forward(float *out, float *att, const float *inp, int B, int T, int C, int NH) {
    // out is (B,T,C), att is (B,NH,T,T), inp is (B,T,3C) holding Q,K,V
    attn_args_t x = {inp, inp + C, inp + 2 * C, 3 * C, 3 * C, C, B, T, NH, NH, C / NH};
    attention_fwd(out, att, &x);
}

void mq_attention_gqa_forward(float *out, float *att, const float *q, const float *k,
                              const float *v, int B, int T, int NH, int NKV, int hs) {
    attn_args_t x = {q, k, v, NH * hs, NKV * hs, NH * hs, B, T, NH, NKV, hs};
    attention_fwd(out, att, &x);
}

/* dq, dk, dv at the strides of q, k, v. The query heads that share a key/value head are one
 * task, their contributions to dk and dv added in head order; beta 0 overwrites dq, dk, dv,
 * beta 1 accumulates. */
static void attention_bwd(float *dq, float *dk, float *dv, float *datt, const float *dout,
                          const float *att, const attn_args_t *x, float beta) {
    int B = x->B, T = x->T, NH = x->NH, hs = x->hs, group = x->NH / x->NKV;
    float scale = 1.0f / sqrtf((float)hs);
#pragma omp parallel for schedule(static)
    for (int bk = 0; bk < B * x->NKV; bk++) {
        int b = bk / x->NKV, kh = bk % x->NKV;
        size_t koff = (size_t)b * T * x->ldk + (size_t)kh * hs;
        const float *k = x->k + koff, *v = x->v + koff;
        float *dkh = dk + koff, *dvh = dv + koff;
        for (int g = 0; g < group; g++) {
            int h = kh * group + g, bh = b * NH + h;
            float bkv = g == 0 ? beta : 1.0f;
            size_t qoff = (size_t)b * T * x->ldq + (size_t)h * hs;
            const float *q = x->q + qoff;
            float *dqh = dq + qoff;
            const float *a = att + (size_t)bh * T * T;
            float *da = datt + (size_t)bh * T * T;
            const float *dy = dout + (size_t)b * T * x->ldo + (size_t)h * hs;
            // da (T,T) = dy @ v^T; dv (T,hs) = a^T @ dy
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, T, T, hs, 1.0f, dy, x->ldo, v,
                        x->ldk, 0.0f, da, T);
            cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, T, hs, T, 1.0f, a, T, dy, x->ldo,
                        bkv, dvh, x->ldk);
            /* softmax backward, turning da into the gradient of the scaled scores */
            for (int t = 0; t < T; t++) {
                const float *arow = a + (size_t)t * T;
                float *drow = da + (size_t)t * T;
                float s = 0.0f;
#pragma omp simd reduction(+ : s)
                for (int j = 0; j <= t; j++)
                    s += arow[j] * drow[j];
#pragma omp simd
                for (int j = 0; j <= t; j++)
                    drow[j] = arow[j] * (drow[j] - s) * scale;
                for (int j = t + 1; j < T; j++)
                    drow[j] = 0.0f;
            }
            // dq = da @ k; dk = da^T @ q
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, T, hs, T, 1.0f, da, T, k, x->ldk,
                        beta, dqh, x->ldq);
            cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, T, hs, T, 1.0f, da, T, q, x->ldq,
                        bkv, dkh, x->ldk);
        }
    }
}

void mq_attention_backward(float *dinp, float *datt, const float *dout, const float *inp,
                           const float *att, int B, int T, int C, int NH) {
    attn_args_t x = {inp, inp + C, inp + 2 * C, 3 * C, 3 * C, C, B, T, NH, NH, C / NH};
    attention_bwd(dinp, dinp + C, dinp + 2 * C, datt, dout, att, &x, 1.0f);
}

void mq_attention_backward_overwrite(float *dinp, float *datt, const float *dout, const float *inp,
                                     const float *att, int B, int T, int C, int NH) {
    attn_args_t x = {inp, inp + C, inp + 2 * C, 3 * C, 3 * C, C, B, T, NH, NH, C / NH};
    attention_bwd(dinp, dinp + C, dinp + 2 * C, datt, dout, att, &x, 0.0f);
}

void mq_attention_gqa_backward(float *dq, float *dk, float *dv, float *datt, const float *dout,
                               const float *q, const float *k, const float *v, const float *att,
                               int B, int T, int NH, int NKV, int hs, float beta) {
    attn_args_t x = {q, k, v, NH * hs, NKV * hs, NH * hs, B, T, NH, NKV, hs};
    attention_bwd(dq, dk, dv, datt, dout, att, &x, beta);
}

/* ---------------------------------------------------------------------------------------------
 * RMSNorm, as llama.cpp's rms_norm then a multiplication by the weight: the mean square summed
 * in double. */

void mq_rmsnorm_row(float *o, float *rstd, const float *x, const float *weight, int C, float eps) {
    double ss = 0.0;
    for (int c = 0; c < C; c++)
        ss += (double)(x[c] * x[c]);
    float rs = 1.0f / sqrtf((float)(ss / C) + eps);
#pragma omp simd
    for (int c = 0; c < C; c++)
        o[c] = x[c] * rs * weight[c];
    *rstd = rs;
}

void mq_rmsnorm_forward(float *out, float *rstd, const float *inp, const float *weight, int N,
                        int C, float eps) {
#pragma omp parallel for schedule(static)
    for (int n = 0; n < N; n++)
        mq_rmsnorm_row(out + (size_t)n * C, rstd + n, inp + (size_t)n * C, weight, C, eps);
}

void mq_rmsnorm_backward(float *dinp, float *dweight, const float *dout, const float *inp,
                         const float *weight, const float *rstd, int N, int C) {
    // y = x r w, r = (mean(x^2) + eps)^-1/2: dx = r (dy w) - r^3 x mean(dy w x)
#pragma omp parallel
    {
#pragma omp for schedule(static) nowait
        for (int n = 0; n < N; n++) {
            const float *x = inp + (size_t)n * C, *d = dout + (size_t)n * C;
            float *dx = dinp + (size_t)n * C;
            float rs = rstd[n], dot = 0.0f;
#pragma omp simd reduction(+ : dot)
            for (int c = 0; c < C; c++)
                dot += d[c] * weight[c] * x[c];
            float k = dot / (float)C * rs * rs * rs;
#pragma omp simd
            for (int c = 0; c < C; c++)
                dx[c] += rs * d[c] * weight[c] - k * x[c];
        }
        int c0, c1;
        thread_share(C, &c0, &c1);
        for (int n = 0; n < N; n++) {
            const float *x = inp + (size_t)n * C, *d = dout + (size_t)n * C;
            float rs = rstd[n];
#pragma omp simd
            for (int c = c0; c < c1; c++)
                dweight[c] += x[c] * rs * d[c];
        }
    }
}

/* ---------------------------------------------------------------------------------------------
 * RoPE, llama.cpp's "normal" ordering: in each head, the pairs (2i, 2i + 1) for i < n_rot / 2
 * turn by the angle of (position, i) in rope; the other dimensions pass. */

void mq_rope_row(float *x, const float *cs, int n_heads, int hs, int n_rot) {
    int half = n_rot / 2;
    for (int h = 0; h < n_heads; h++) {
        float *xh = x + (size_t)h * hs;
        for (int i = 0; i < half; i++) {
            float c = cs[2 * i], s = cs[2 * i + 1], x0 = xh[2 * i], x1 = xh[2 * i + 1];
            xh[2 * i] = x0 * c - x1 * s;
            xh[2 * i + 1] = x0 * s + x1 * c;
        }
    }
}

void mq_rope_forward(float *x, const float *rope, int B, int T, int n_heads, int hs, int n_rot) {
    int half = n_rot / 2;
#pragma omp parallel for schedule(static)
    for (int bt = 0; bt < B * T; bt++)
        mq_rope_row(x + (size_t)bt * n_heads * hs, rope + (size_t)(bt % T) * half * 2, n_heads, hs,
                    n_rot);
}

void mq_rope_backward(float *d, const float *rope, int B, int T, int n_heads, int hs, int n_rot) {
    int half = n_rot / 2;
#pragma omp parallel for schedule(static)
    for (int bt = 0; bt < B * T; bt++) {
        const float *cs = rope + (size_t)(bt % T) * half * 2;
        for (int h = 0; h < n_heads; h++) {
            float *dh = d + ((size_t)bt * n_heads + h) * hs;
            for (int i = 0; i < half; i++) {
                float c = cs[2 * i], s = cs[2 * i + 1], d0 = dh[2 * i], d1 = dh[2 * i + 1];
                dh[2 * i] = d0 * c + d1 * s;
                dh[2 * i + 1] = -d0 * s + d1 * c;
            }
        }
    }
}

/* ---------------------------------------------------------------------------------------------
 * SwiGLU: out = silu(gate) * up, silu(g) = g / (1 + exp(-g)) */

static inline float swiglu(float g, float u) {
    return g / (1.0f + exp_fast(-g)) * u;
}

void mq_swiglu_forward(float *out, const float *gate, const float *up, int N) {
#pragma omp parallel for simd schedule(static)
    for (int i = 0; i < N; i++)
        out[i] = swiglu(gate[i], up[i]);
}

void mq_swiglu_range(float *out, const float *gate, const float *up, int i0, int i1) {
#pragma omp simd
    for (int i = i0; i < i1; i++)
        out[i] = swiglu(gate[i], up[i]);
}

void mq_swiglu_backward(float *dgate, float *dup, const float *dout, const float *gate,
                        const float *up, int N) {
#pragma omp parallel for simd schedule(static)
    for (int i = 0; i < N; i++) {
        float g = gate[i], sg = 1.0f / (1.0f + exp_fast(-g)), d = dout[i];
        dup[i] = d * g * sg;
        dgate[i] = d * up[i] * sg * (1.0f + g * (1.0f - sg));
    }
}

/* ---------------------------------------------------------------------------------------------
 * GELU, tanh approximation: 0.5 x (1 + tanh(u)) with u = sqrt(2/pi) (x + 0.044715 x^3).
 * Since 0.5 (1 + tanh(u)) = sigmoid(2u), it is computed as x * sigmoid(2u): one exp, no
 * cancellation near u = 0, and the derivative of tanh follows from the sigmoid s as
 * 0.5 (1 - tanh^2 u) = 2 s (1 - s). */

#define GELU_K0 0.7978845608028654f /* sqrt(2/pi) */
#define GELU_K1 0.044715f

static inline float gelu(float x) {
    float u = GELU_K0 * (x + GELU_K1 * x * x * x);
    return x / (1.0f + exp_fast(-2.0f * u));
}

void mq_gelu_forward(float *out, const float *inp, int N) {
    // out and inp are (N)
#pragma omp parallel for simd schedule(static)
    for (int i = 0; i < N; i++)
        out[i] = gelu(inp[i]);
}

void mq_gelu_range(float *out, const float *inp, int i0, int i1) {
#pragma omp simd
    for (int i = i0; i < i1; i++)
        out[i] = gelu(inp[i]);
}

static inline float gelu_grad(float x) {
    float u = GELU_K0 * (x + GELU_K1 * x * x * x);
    float s = 1.0f / (1.0f + exp_fast(-2.0f * u));
    float du = GELU_K0 * (1.0f + 3.0f * GELU_K1 * x * x);
    return s + 2.0f * x * s * (1.0f - s) * du;
}

void mq_gelu_backward(float *dinp, const float *inp, const float *dout, int N) {
    // dinp, inp and dout are (N)
#pragma omp parallel for simd schedule(static)
    for (int i = 0; i < N; i++)
        dinp[i] += gelu_grad(inp[i]) * dout[i];
}

void mq_gelu_backward_inplace(float *d, const float *inp, int N) {
    // d and inp are (N)
#pragma omp parallel for simd schedule(static)
    for (int i = 0; i < N; i++)
        d[i] *= gelu_grad(inp[i]);
}

/* ---------------------------------------------------------------------------------------------
 * residual */

void mq_residual_forward(float *out, const float *inp1, const float *inp2, int N) {
    // out, inp1 and inp2 are (N)
#pragma omp parallel for simd schedule(static)
    for (int i = 0; i < N; i++)
        out[i] = inp1[i] + inp2[i];
}

void mq_residual_backward(float *dinp1, float *dinp2, const float *dout, int N) {
    // dinp1, dinp2 and dout are (N)
#pragma omp parallel for simd schedule(static)
    for (int i = 0; i < N; i++) {
        dinp1[i] += dout[i];
        dinp2[i] += dout[i];
    }
}

/* ---------------------------------------------------------------------------------------------
 * softmax and cross-entropy */

void mq_softmax_crossentropy_forward(float *probs, float *losses, const float *logits,
                                     const int *targets, int N, int V) {
    // probs is (N,V), losses is (N), logits is (N,V), targets is (N)
#pragma omp parallel for schedule(static)
    for (int n = 0; n < N; n++) {
        const float *z = logits + (size_t)n * V;
        float *p = probs + (size_t)n * V;
        float maxv = -INFINITY;
#pragma omp simd reduction(max : maxv)
        for (int i = 0; i < V; i++)
            maxv = z[i] > maxv ? z[i] : maxv;
        float sum = mq_softmax_numerators(p, z, V, maxv), inv = 1.0f / sum;
#pragma omp simd
        for (int i = 0; i < V; i++)
            p[i] *= inv;
        if (losses && targets) losses[n] = logf(sum) - (z[targets[n]] - maxv);
    }
}

void mq_softmax_forward(float *probs, const float *logits, int N, int V) {
    mq_softmax_crossentropy_forward(probs, NULL, logits, NULL, N, V);
}

void mq_crossentropy_forward(float *losses, const float *probs, const int *targets, int N, int V) {
    // losses is (N), probs is (N,V), targets is (N)
    for (int n = 0; n < N; n++)
        losses[n] = -logf(probs[(size_t)n * V + targets[n]]);
}

static void crossentropy_softmax_backward(float *dlogits, const float *dlosses, const float *probs,
                                          const int *targets, int N, int V, int accumulate) {
    // dlogits is (N,V), dlosses is (N), probs is (N,V), targets is (N)
#pragma omp parallel for schedule(static)
    for (int n = 0; n < N; n++) {
        float *dz = dlogits + (size_t)n * V;
        const float *p = probs + (size_t)n * V;
        float dl = dlosses[n];
        if (accumulate) {
#pragma omp simd
            for (int i = 0; i < V; i++)
                dz[i] += p[i] * dl;
        } else {
#pragma omp simd
            for (int i = 0; i < V; i++)
                dz[i] = p[i] * dl;
        }
        dz[targets[n]] -= dl;
    }
}

void mq_crossentropy_softmax_backward(float *dlogits, const float *dlosses, const float *probs,
                                      const int *targets, int N, int V) {
    crossentropy_softmax_backward(dlogits, dlosses, probs, targets, N, V, 1);
}

void mq_crossentropy_softmax_backward_overwrite(float *dlogits, const float *dlosses,
                                                const float *probs, const int *targets, int N,
                                                int V) {
    crossentropy_softmax_backward(dlogits, dlosses, probs, targets, N, V, 0);
}
