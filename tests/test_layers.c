/* Tests of miniquant's MiniGPT layers: every backward against central finite differences, the
 * forwards against naive double-precision references, and the accumulate / overwrite contracts.
 *
 * Gradient checks use the scalar loss L = sum(out * R) for a fixed random R, so dL/dout = R is
 * what backward receives. Numeric derivatives are central differences in float with step eps;
 * the error measure is max_i |analytic_i - numeric_i| / max_i max(|analytic_i|, |numeric_i|),
 * the largest deviation relative to the gradient's scale, and must stay below GRAD_TOL. */
#include <criterion/criterion.h>
#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "miniquant/layers.h"
#include "miniquant/rng.h"

#define GRAD_TOL 1e-2
#define FD_EPS 1e-3f

/* ---------------------------------------------------------------------------------------------
 * helpers */

static float *randn(mq_rng_t *r, size_t n, float mean, float std) {
    float *x = malloc(n * sizeof(float));
    cr_assert(x);
    for (size_t i = 0; i < n; i++)
        x[i] = mean + std * mq_rng_normal(r);
    return x;
}

static float *zeros(size_t n) {
    float *x = calloc(n, sizeof(float));
    cr_assert(x);
    return x;
}

static float *copy(const float *x, size_t n) {
    float *y = malloc(n * sizeof(float));
    cr_assert(y);
    memcpy(y, x, n * sizeof(float));
    return y;
}

/* A forward pass to probe: fwd(ctx) recomputes out (n floats), L = sum(out * R). */
typedef struct objective {
    void (*fwd)(void *ctx);
    void *ctx;
    const float *out;
    const float *R;
    size_t n;
} objective_t;

static double objective_value(const objective_t *o) {
    o->fwd(o->ctx);
    double s = 0.0;
    for (size_t i = 0; i < o->n; i++)
        s += (double)o->out[i] * o->R[i];
    return s;
}

/* Compares analytic (n) with central differences of o over x (n), restoring x. */
static void expect_grad(const char *what, const objective_t *o, float *x, size_t n,
                        const float *analytic, float eps) {
    double maxdiff = 0.0, scale = 0.0;
    size_t worst = 0;
    for (size_t i = 0; i < n; i++) {
        float old = x[i];
        x[i] = old + eps;
        double lp = objective_value(o);
        x[i] = old - eps;
        double lm = objective_value(o);
        x[i] = old;
        /* the step actually taken, after rounding to float */
        double h = (double)(old + eps) - (double)(old - eps);
        double num = (lp - lm) / h;
        double diff = fabs(num - analytic[i]);
        if (diff > maxdiff) {
            maxdiff = diff;
            worst = i;
        }
        scale = fmax(scale, fmax(fabs(num), fabs((double)analytic[i])));
    }
    o->fwd(o->ctx);
    cr_assert(scale > 1e-2, "%s: gradient too small to test (%g)", what, scale);
    cr_expect(maxdiff / scale < GRAD_TOL,
              "%s: relative gradient error %.3g (element %zu: analytic %g) over scale %g", what,
              maxdiff / scale, worst, analytic[worst], scale);
}

/* result must equal before + delta (accumulation) up to rounding. */
static void expect_sum(const char *what, const float *result, const float *before,
                       const float *delta, size_t n) {
    for (size_t i = 0; i < n; i++) {
        float want = before[i] + delta[i];
        float tol = 1e-5f * (1.0f + fabsf(before[i]) + fabsf(delta[i]));
        if (fabsf(result[i] - want) > tol)
            cr_assert_fail("%s[%zu] = %g, expected %g + %g", what, i, result[i], before[i],
                           delta[i]);
    }
}

static void expect_close(const char *what, const float *got, const double *want, size_t n,
                         double rtol, double atol) {
    for (size_t i = 0; i < n; i++)
        if (fabs(got[i] - want[i]) > atol + rtol * fabs(want[i]))
            cr_assert_fail("%s[%zu] = %.9g, reference %.9g", what, i, got[i], want[i]);
}

/* ---------------------------------------------------------------------------------------------
 * encoder */

struct enc {
    float *out, *wte, *wpe;
    const int *inp;
    int B, T, C;
};
static void enc_fwd(void *p) {
    struct enc *e = p;
    mq_encoder_forward(e->out, e->inp, e->wte, e->wpe, e->B, e->T, e->C);
}

Test(layers, encoder_forward_and_backward) {
    mq_rng_t r;
    mq_rng_seed(&r, 1);
    enum { B = 2, T = 4, C = 20, V = 5, maxT = 6 };
    /* tokens repeat, within and across sequences, so the embedding gradient must sum */
    const int inp[B * T] = {3, 1, 3, 0, 1, 1, 4, 3};
    float *wte = randn(&r, V * C, 0, 1), *wpe = randn(&r, maxT * C, 0, 1);
    float *out = zeros(B * T * C), *R = randn(&r, B * T * C, 0, 1);
    struct enc e = {out, wte, wpe, inp, B, T, C};
    enc_fwd(&e);
    for (int b = 0; b < B; b++)
        for (int t = 0; t < T; t++)
            for (int c = 0; c < C; c++)
                cr_assert_eq(out[(b * T + t) * C + c],
                             wte[inp[b * T + t] * C + c] + wpe[t * C + c]);

    float *dwte = zeros(V * C), *dwpe = zeros(maxT * C);
    mq_encoder_backward(dwte, dwpe, R, inp, B, T, C);
    objective_t o = {enc_fwd, &e, out, R, B * T * C};
    /* the forward is linear, so a large step is exact */
    expect_grad("encoder dwte", &o, wte, V * C, dwte, 0.25f);
    expect_grad("encoder dwpe", &o, wpe, maxT * C, dwpe, 0.25f);
    for (int i = T * C; i < maxT * C; i++)
        cr_assert_eq(dwpe[i], 0.0f, "unused position got a gradient");
    for (int c = 0; c < C; c++)
        cr_assert_eq(dwte[2 * C + c], 0.0f, "unused token got a gradient");

    float *g0 = randn(&r, V * C, 0, 1), *g = copy(g0, V * C), *p0 = randn(&r, maxT * C, 0, 1),
          *p = copy(p0, maxT * C);
    mq_encoder_backward(g, p, R, inp, B, T, C);
    expect_sum("encoder dwte (accumulated)", g, g0, dwte, V * C);
    expect_sum("encoder dwpe (accumulated)", p, p0, dwpe, maxT * C);
    free(wte), free(wpe), free(out), free(R), free(dwte), free(dwpe), free(g0), free(g), free(p0),
        free(p);
}

/* ---------------------------------------------------------------------------------------------
 * layernorm */

struct ln {
    float *out, *mean, *rstd, *inp, *w, *b;
    int N, C;
};
static void ln_fwd(void *p) {
    struct ln *l = p;
    mq_layernorm_forward(l->out, l->mean, l->rstd, l->inp, l->w, l->b, l->N, l->C);
}

Test(layers, layernorm_forward_matches_reference) {
    mq_rng_t r;
    mq_rng_seed(&r, 2);
    enum { N = 5, C = 37 };
    float *inp = randn(&r, N * C, 3, 2), *w = randn(&r, C, 1, 0.3f), *b = randn(&r, C, 0, 0.3f);
    float *out = zeros(N * C), mean[N], rstd[N];
    struct ln l = {out, mean, rstd, inp, w, b, N, C};
    ln_fwd(&l);
    double ref[N * C], refmean[N], refrstd[N];
    for (int n = 0; n < N; n++) {
        double m = 0, v = 0;
        for (int c = 0; c < C; c++)
            m += inp[n * C + c];
        m /= C;
        for (int c = 0; c < C; c++)
            v += (inp[n * C + c] - m) * (inp[n * C + c] - m);
        v /= C;
        refmean[n] = m;
        refrstd[n] = 1.0 / sqrt(v + 1e-5);
        for (int c = 0; c < C; c++)
            ref[n * C + c] = (inp[n * C + c] - m) * refrstd[n] * w[c] + b[c];
    }
    expect_close("layernorm out", out, ref, N * C, 1e-5, 1e-5);
    expect_close("layernorm mean", mean, refmean, N, 1e-6, 1e-6);
    expect_close("layernorm rstd", rstd, refrstd, N, 1e-5, 0);
    free(inp), free(w), free(b), free(out);
}

Test(layers, layernorm_backward) {
    mq_rng_t r;
    mq_rng_seed(&r, 3);
    enum { N = 6, C = 24 };
    float *inp = randn(&r, N * C, 0.5f, 2), *w = randn(&r, C, 1, 0.3f), *b = randn(&r, C, 0, 0.3f);
    float *out = zeros(N * C), mean[N], rstd[N], *R = randn(&r, N * C, 0, 1);
    struct ln l = {out, mean, rstd, inp, w, b, N, C};
    ln_fwd(&l);
    float *dinp = zeros(N * C), *dw = zeros(C), *db = zeros(C);
    mq_layernorm_backward(dinp, dw, db, R, inp, w, mean, rstd, N, C);
    objective_t o = {ln_fwd, &l, out, R, N * C};
    expect_grad("layernorm dinp", &o, inp, N * C, dinp, FD_EPS);
    expect_grad("layernorm dweight", &o, w, C, dw, FD_EPS);
    expect_grad("layernorm dbias", &o, b, C, db, FD_EPS);

    float *d0 = randn(&r, N * C, 0, 1), *d = copy(d0, N * C), *w0 = randn(&r, C, 0, 1),
          *wg = copy(w0, C), *b0 = randn(&r, C, 0, 1), *bg = copy(b0, C);
    mq_layernorm_backward(d, wg, bg, R, inp, w, mean, rstd, N, C);
    expect_sum("layernorm dinp (accumulated)", d, d0, dinp, N * C);
    expect_sum("layernorm dweight (accumulated)", wg, w0, dw, C);
    expect_sum("layernorm dbias (accumulated)", bg, b0, db, C);
    free(inp), free(w), free(b), free(out), free(R), free(dinp), free(dw), free(db), free(d0),
        free(d), free(w0), free(wg), free(b0), free(bg);
}

/* The weight gradients reduce over rows; the result must not depend on the thread count. */
Test(layers, row_reductions_do_not_depend_on_threads) {
    mq_rng_t r;
    mq_rng_seed(&r, 4);
    enum { N = 300, C = 64, V = 7, OC = 48 };
    float *inp = randn(&r, N * C, 0, 1), *w = randn(&r, C, 1, 0.3f), *b = randn(&r, C, 0, 0.3f);
    float *out = zeros(N * C), mean[N], rstd[N], *dout = randn(&r, N * C, 0, 1);
    float *dout2 = randn(&r, N * OC, 0, 1);
    int tok[N];
    for (int i = 0; i < N; i++)
        tok[i] = (int)mq_rng_below(&r, V);
    mq_layernorm_forward(out, mean, rstd, inp, w, b, N, C);
    float *res[2][6];
    int saved = omp_get_max_threads();
    for (int k = 0; k < 2; k++) {
        omp_set_num_threads(k == 0 ? 1 : 3);
        float *dinp = zeros(N * C), *dw = zeros(C), *db = zeros(C), *dwte = zeros(V * C),
              *dwpe = zeros(20 * C), *dbias = zeros(OC);
        mq_layernorm_backward(dinp, dw, db, dout, inp, w, mean, rstd, N, C);
        /* T = 20 positions: dwpe sums 15 rows per position */
        mq_encoder_backward(dwte, dwpe, dout, tok, N / 20, 20, C);
        mq_matmul_backward(NULL, NULL, dbias, dout2, NULL, NULL, N, C, OC);
        res[k][0] = dw, res[k][1] = db, res[k][2] = dwte, res[k][3] = dinp, res[k][4] = dbias;
        res[k][5] = dwpe;
    }
    omp_set_num_threads(saved);
    size_t n[6] = {C, C, V * C, N * C, OC, 20 * C};
    for (int i = 0; i < 6; i++) {
        cr_assert(memcmp(res[0][i], res[1][i], n[i] * sizeof(float)) == 0,
                  "reduction %d differs between 1 and 3 threads", i);
        free(res[0][i]), free(res[1][i]);
    }
    free(inp), free(w), free(b), free(out), free(dout), free(dout2);
}

/* ---------------------------------------------------------------------------------------------
 * matmul */

struct mm {
    float *out, *inp, *w, *b;
    int N, C, OC;
};
static void mm_fwd(void *p) {
    struct mm *m = p;
    mq_matmul_forward(m->out, m->inp, m->w, m->b, m->N, m->C, m->OC);
}

Test(layers, matmul_forward_matches_reference) {
    mq_rng_t r;
    mq_rng_seed(&r, 5);
    enum { N = 7, C = 13, OC = 5 };
    float *inp = randn(&r, N * C, 0, 1), *w = randn(&r, OC * C, 0, 1), *b = randn(&r, OC, 0, 1);
    float *out = zeros(N * OC);
    for (int with_bias = 0; with_bias < 2; with_bias++) {
        mq_matmul_forward(out, inp, w, with_bias ? b : NULL, N, C, OC);
        double ref[N * OC];
        for (int n = 0; n < N; n++)
            for (int o = 0; o < OC; o++) {
                double s = with_bias ? b[o] : 0.0;
                for (int c = 0; c < C; c++)
                    s += (double)inp[n * C + c] * w[o * C + c];
                ref[n * OC + o] = s;
            }
        expect_close("matmul out", out, ref, N * OC, 1e-5, 1e-5);
    }
    free(inp), free(w), free(b), free(out);
}

static void check_matmul_backward(int with_bias) {
    mq_rng_t r;
    mq_rng_seed(&r, 6 + with_bias);
    enum { N = 9, C = 11, OC = 6 };
    float *inp = randn(&r, N * C, 0, 1), *w = randn(&r, OC * C, 0, 1), *b = randn(&r, OC, 0, 1);
    float *out = zeros(N * OC), *R = randn(&r, N * OC, 0, 1);
    struct mm m = {out, inp, w, with_bias ? b : NULL, N, C, OC};
    mm_fwd(&m);
    float *dinp = zeros(N * C), *dw = zeros(OC * C), *db = zeros(OC);
    mq_matmul_backward(dinp, dw, with_bias ? db : NULL, R, inp, w, N, C, OC);
    objective_t o = {mm_fwd, &m, out, R, N * OC};
    expect_grad("matmul dinp", &o, inp, N * C, dinp, 0.25f);
    expect_grad("matmul dweight", &o, w, OC * C, dw, 0.25f);
    if (with_bias)
        expect_grad("matmul dbias", &o, b, OC, db, 0.25f);
    else
        for (int i = 0; i < OC; i++)
            cr_assert_eq(db[i], 0.0f);

    float *d0 = randn(&r, N * C, 0, 1), *d = copy(d0, N * C), *w0 = randn(&r, OC * C, 0, 1),
          *wg = copy(w0, OC * C), *b0 = randn(&r, OC, 0, 1), *bg = copy(b0, OC);
    mq_matmul_backward(d, wg, with_bias ? bg : NULL, R, inp, w, N, C, OC);
    expect_sum("matmul dinp (accumulated)", d, d0, dinp, N * C);
    expect_sum("matmul dweight (accumulated)", wg, w0, dw, OC * C);
    if (with_bias) expect_sum("matmul dbias (accumulated)", bg, b0, db, OC);

    /* overwrite: dinp is replaced, the parameter gradients still accumulate */
    memcpy(d, d0, N * C * sizeof(float));
    memcpy(wg, w0, OC * C * sizeof(float));
    mq_matmul_backward_overwrite(d, wg, NULL, R, inp, w, N, C, OC);
    float *z = zeros(N * C);
    expect_sum("matmul dinp (overwritten)", d, z, dinp, N * C);
    expect_sum("matmul dweight (overwrite form)", wg, w0, dw, OC * C);
    free(inp), free(w), free(b), free(out), free(R), free(dinp), free(dw), free(db), free(d0),
        free(d), free(w0), free(wg), free(b0), free(bg), free(z);
}

Test(layers, matmul_backward_with_bias) {
    check_matmul_backward(1);
}
Test(layers, matmul_backward_without_bias) {
    check_matmul_backward(0);
}

/* Products large enough to be split by rows among threads (and one too small for it), against
 * a double-precision reference, with 1, 2 and 3 threads. */
Test(layers, matmul_split_among_threads) {
    mq_rng_t r;
    mq_rng_seed(&r, 14);
    enum { N = 389, C = 37, OC = 200 };
    float *inp = randn(&r, N * C, 0, 1), *w = randn(&r, OC * C, 0, 1), *b = randn(&r, OC, 0, 1);
    float *dout = randn(&r, N * OC, 0, 1), *out = zeros(N * OC);
    double *ref = malloc(sizeof(double) * N * OC), *rdinp = malloc(sizeof(double) * N * C),
           *rdw = malloc(sizeof(double) * OC * C), rdb[OC];
    for (int n = 0; n < N; n++)
        for (int o = 0; o < OC; o++) {
            double s = b[o];
            for (int c = 0; c < C; c++)
                s += (double)inp[n * C + c] * w[o * C + c];
            ref[n * OC + o] = s;
        }
    for (int n = 0; n < N; n++)
        for (int c = 0; c < C; c++) {
            double s = 0;
            for (int o = 0; o < OC; o++)
                s += (double)dout[n * OC + o] * w[o * C + c];
            rdinp[n * C + c] = s;
        }
    for (int o = 0; o < OC; o++) {
        rdb[o] = 0;
        for (int n = 0; n < N; n++)
            rdb[o] += dout[n * OC + o];
        for (int c = 0; c < C; c++) {
            double s = 0;
            for (int n = 0; n < N; n++)
                s += (double)dout[n * OC + o] * inp[n * C + c];
            rdw[o * C + c] = s;
        }
    }
    int saved = omp_get_max_threads();
    for (int nth = 1; nth <= 3; nth++) {
        omp_set_num_threads(nth);
        for (int rows = 1; rows <= N; rows += N - 1) {
            float *dinp = zeros(N * C), *dw = zeros(OC * C), *db = zeros(OC);
            mq_matmul_forward(out, inp, w, b, rows, C, OC);
            expect_close("split matmul out", out, ref, (size_t)rows * OC, 1e-5, 1e-4);
            mq_matmul_backward_overwrite(dinp, dw, db, dout, inp, w, N, C, OC);
            expect_close("split matmul dinp", dinp, rdinp, N * C, 1e-5, 1e-4);
            expect_close("split matmul dweight", dw, rdw, OC * C, 1e-5, 1e-3);
            expect_close("split matmul dbias", db, rdb, OC, 1e-5, 1e-3);
            free(dinp), free(dw), free(db);
        }
    }
    omp_set_num_threads(saved);
    free(inp), free(w), free(b), free(dout), free(out), free(ref), free(rdinp), free(rdw);
}

/* ---------------------------------------------------------------------------------------------
 * attention */

struct at {
    float *out, *att, *inp;
    int B, T, C, NH;
};
static void at_fwd(void *p) {
    struct at *a = p;
    mq_attention_forward(a->out, a->att, a->inp, a->B, a->T, a->C, a->NH);
}

Test(layers, attention_forward_matches_naive_loops) {
    mq_rng_t r;
    mq_rng_seed(&r, 8);
    enum { B = 1, T = 3, C = 4, NH = 2, hs = C / NH };
    float *inp = randn(&r, B * T * 3 * C, 0, 1), *out = zeros(B * T * C),
          *att = zeros(B * NH * T * T);
    struct at a = {out, att, inp, B, T, C, NH};
    at_fwd(&a);
    double ref[B * T * C];
    for (int h = 0; h < NH; h++)
        for (int t = 0; t < T; t++) {
            const float *q = inp + t * 3 * C + h * hs;
            double s[T], m = -INFINITY, sum = 0;
            for (int j = 0; j <= t; j++) {
                const float *k = inp + j * 3 * C + C + h * hs;
                s[j] = 0;
                for (int i = 0; i < hs; i++)
                    s[j] += (double)q[i] * k[i];
                s[j] /= sqrt((double)hs);
                m = fmax(m, s[j]);
            }
            for (int j = 0; j <= t; j++)
                sum += (s[j] = exp(s[j] - m));
            for (int j = 0; j < T; j++) {
                float p = att[(h * T + t) * T + j];
                if (j > t)
                    cr_assert_eq(p, 0.0f, "att[%d][%d] above the diagonal is %g", t, j, p);
                else
                    cr_assert_float_eq(p, s[j] / sum, 1e-6);
            }
            for (int i = 0; i < hs; i++) {
                double y = 0;
                for (int j = 0; j <= t; j++)
                    y += s[j] / sum * inp[j * 3 * C + 2 * C + h * hs + i];
                ref[t * C + h * hs + i] = y;
            }
        }
    expect_close("attention out", out, ref, B * T * C, 1e-5, 1e-6);

    /* causal: a change to the last token leaves every earlier output unchanged */
    float before[B * T * C];
    memcpy(before, out, sizeof before);
    for (int i = 0; i < 3 * C; i++)
        inp[(T - 1) * 3 * C + i] += 1.5f;
    at_fwd(&a);
    cr_assert(memcmp(before, out, (T - 1) * C * sizeof(float)) == 0, "a future token leaked");
    cr_assert(memcmp(before + (T - 1) * C, out + (T - 1) * C, C * sizeof(float)) != 0);
    free(inp), free(out), free(att);
}

Test(layers, attention_backward) {
    mq_rng_t r;
    mq_rng_seed(&r, 9);
    enum { B = 2, T = 5, C = 8, NH = 2 };
    size_t ni = B * T * 3 * C, no = B * T * C, na = B * NH * T * T;
    float *inp = randn(&r, ni, 0, 1), *out = zeros(no), *att = zeros(na), *R = randn(&r, no, 0, 1);
    struct at a = {out, att, inp, B, T, C, NH};
    at_fwd(&a);
    float *dinp = zeros(ni), *datt = zeros(na);
    mq_attention_backward(dinp, datt, R, inp, att, B, T, C, NH);
    objective_t o = {at_fwd, &a, out, R, no};
    expect_grad("attention dinp", &o, inp, ni, dinp, FD_EPS);

    float *d0 = randn(&r, ni, 0, 1), *d = copy(d0, ni), *z = zeros(ni);
    mq_attention_backward(d, datt, R, inp, att, B, T, C, NH);
    expect_sum("attention dinp (accumulated)", d, d0, dinp, ni);
    memcpy(d, d0, ni * sizeof(float));
    mq_attention_backward_overwrite(d, datt, R, inp, att, B, T, C, NH);
    expect_sum("attention dinp (overwritten)", d, z, dinp, ni);
    free(inp), free(out), free(att), free(R), free(dinp), free(datt), free(d0), free(d), free(z);
}

/* ---------------------------------------------------------------------------------------------
 * GELU and residual */

struct ge {
    float *out, *inp;
    int N;
};
static void ge_fwd(void *p) {
    struct ge *g = p;
    mq_gelu_forward(g->out, g->inp, g->N);
}

Test(layers, gelu_forward_and_backward) {
    mq_rng_t r;
    mq_rng_seed(&r, 10);
    enum { N = 203 };
    float *inp = randn(&r, N, 0, 2.5f), *out = zeros(N), *R = randn(&r, N, 0, 1);
    inp[0] = 0.0f, inp[1] = -12.0f, inp[2] = 12.0f, inp[3] = -100.0f, inp[4] = 100.0f;
    struct ge g = {out, inp, N};
    ge_fwd(&g);
    double ref[N];
    for (int i = 0; i < N; i++) {
        double x = inp[i];
        ref[i] = 0.5 * x * (1.0 + tanh(sqrt(2.0 / M_PI) * (x + 0.044715 * x * x * x)));
    }
    expect_close("gelu out", out, ref, N, 1e-5, 1e-7);

    float *dinp = zeros(N);
    mq_gelu_backward(dinp, inp, R, N);
    objective_t o = {ge_fwd, &g, out, R, N};
    expect_grad("gelu dinp", &o, inp, N, dinp, FD_EPS);

    float *d0 = randn(&r, N, 0, 1), *d = copy(d0, N), *z = zeros(N);
    mq_gelu_backward(d, inp, R, N);
    expect_sum("gelu dinp (accumulated)", d, d0, dinp, N);
    memcpy(d, R, N * sizeof(float));
    mq_gelu_backward_inplace(d, inp, N);
    expect_sum("gelu dinp (in place)", d, z, dinp, N);
    free(inp), free(out), free(R), free(dinp), free(d0), free(d), free(z);
}

struct re {
    float *out, *a, *b;
    int N;
};
static void re_fwd(void *p) {
    struct re *e = p;
    mq_residual_forward(e->out, e->a, e->b, e->N);
}

Test(layers, residual_forward_and_backward) {
    mq_rng_t r;
    mq_rng_seed(&r, 11);
    enum { N = 50 };
    float *x = randn(&r, N, 0, 1), *y = randn(&r, N, 0, 1), *out = zeros(N),
          *R = randn(&r, N, 0, 1);
    struct re e = {out, x, y, N};
    re_fwd(&e);
    for (int i = 0; i < N; i++)
        cr_assert_eq(out[i], x[i] + y[i]);
    float *dx0 = randn(&r, N, 0, 1), *dx = copy(dx0, N), *dy = zeros(N), *z = zeros(N);
    mq_residual_backward(dx, dy, R, N);
    expect_sum("residual dinp1 (accumulated)", dx, dx0, R, N);
    objective_t o = {re_fwd, &e, out, R, N};
    expect_grad("residual dinp1", &o, x, N, R, 0.25f);
    expect_grad("residual dinp2", &o, y, N, dy, 0.25f);
    free(x), free(y), free(out), free(R), free(dx0), free(dx), free(dy), free(z);
}

/* ---------------------------------------------------------------------------------------------
 * softmax and cross-entropy */

struct ce {
    float *losses, *probs, *logits;
    const int *targets;
    int N, V;
};
static void ce_fwd(void *p) {
    struct ce *c = p;
    mq_softmax_forward(c->probs, c->logits, c->N, c->V);
    mq_crossentropy_forward(c->losses, c->probs, c->targets, c->N, c->V);
}

Test(layers, softmax_crossentropy_forward) {
    mq_rng_t r;
    mq_rng_seed(&r, 12);
    enum { N = 4, V = 29 };
    float *logits = randn(&r, N * V, 0, 3), *probs = zeros(N * V), *p2 = zeros(N * V);
    float losses[N], l2[N];
    const int targets[N] = {0, 28, 5, 5};
    logits[3] = 80.0f; /* a large logit: still finite */
    struct ce c = {losses, probs, logits, targets, N, V};
    ce_fwd(&c);
    double ref[N * V], refloss[N];
    for (int n = 0; n < N; n++) {
        double m = -INFINITY, s = 0, psum = 0;
        for (int i = 0; i < V; i++)
            m = fmax(m, logits[n * V + i]);
        for (int i = 0; i < V; i++)
            s += exp(logits[n * V + i] - m);
        for (int i = 0; i < V; i++) {
            ref[n * V + i] = exp(logits[n * V + i] - m) / s;
            psum += probs[n * V + i];
        }
        refloss[n] = log(s) - (logits[n * V + targets[n]] - m);
        cr_assert_float_eq(psum, 1.0, 1e-5);
    }
    expect_close("softmax", probs, ref, N * V, 1e-5, 1e-12);
    /* the fused form: the same probabilities, the loss without rounding the probability */
    mq_softmax_crossentropy_forward(p2, l2, logits, targets, N, V);
    cr_assert(memcmp(probs, p2, N * V * sizeof(float)) == 0);
    for (int n = 0; n < N; n++) {
        cr_assert(isfinite(l2[n]));
        cr_assert_float_eq(l2[n], refloss[n], 1e-5 * (1 + refloss[n]), "loss %d", n);
        if (refloss[n] < 50) cr_assert_float_eq(losses[n], refloss[n], 1e-4 * (1 + refloss[n]));
    }
    free(logits), free(probs), free(p2);
}

Test(layers, crossentropy_softmax_backward) {
    mq_rng_t r;
    mq_rng_seed(&r, 13);
    enum { N = 5, V = 19 };
    float *logits = randn(&r, N * V, 0, 1.5f), *probs = zeros(N * V), losses[N];
    float *dlosses = randn(&r, N, 1, 0.5f);
    const int targets[N] = {0, 18, 3, 3, 7};
    struct ce c = {losses, probs, logits, targets, N, V};
    ce_fwd(&c);
    float *dlogits = zeros(N * V);
    mq_crossentropy_softmax_backward(dlogits, dlosses, probs, targets, N, V);
    objective_t o = {ce_fwd, &c, losses, dlosses, N};
    expect_grad("softmax+crossentropy dlogits", &o, logits, N * V, dlogits, FD_EPS);

    float *d0 = randn(&r, N * V, 0, 1), *d = copy(d0, N * V), *z = zeros(N * V);
    mq_crossentropy_softmax_backward(d, dlosses, probs, targets, N, V);
    expect_sum("dlogits (accumulated)", d, d0, dlogits, N * V);
    memcpy(d, d0, N * V * sizeof(float));
    mq_crossentropy_softmax_backward_overwrite(d, dlosses, probs, targets, N, V);
    expect_sum("dlogits (overwritten)", d, z, dlogits, N * V);
    free(logits), free(probs), free(dlosses), free(dlogits), free(d0), free(d), free(z);
}

/* ---------------------------------------------------------------------------------------------
 * llama's layers: RMSNorm, RoPE, grouped-query attention, SwiGLU */

struct rn {
    float *out, *rstd, *inp, *w;
    int N, C;
};
static void rn_fwd(void *p) {
    struct rn *a = p;
    mq_rmsnorm_forward(a->out, a->rstd, a->inp, a->w, a->N, a->C, 1e-5f);
}

Test(layers, rmsnorm_forward_and_backward) {
    mq_rng_t r;
    mq_rng_seed(&r, 21);
    enum { N = 6, C = 10 };
    float *inp = randn(&r, N * C, 0.3f, 1), *w = randn(&r, C, 1, 0.3f), *out = zeros(N * C),
          *rstd = zeros(N), *R = randn(&r, N * C, 0, 1);
    struct rn a = {out, rstd, inp, w, N, C};
    rn_fwd(&a);
    double ref[N * C];
    for (int n = 0; n < N; n++) {
        double ss = 0;
        for (int c = 0; c < C; c++)
            ss += (double)inp[n * C + c] * inp[n * C + c];
        double rs = 1.0 / sqrt(ss / C + 1e-5);
        for (int c = 0; c < C; c++)
            ref[n * C + c] = inp[n * C + c] * rs * w[c];
    }
    expect_close("rmsnorm out", out, ref, N * C, 1e-5, 1e-6);
    float *dinp = zeros(N * C), *dw = zeros(C);
    mq_rmsnorm_backward(dinp, dw, R, inp, w, rstd, N, C);
    objective_t o = {rn_fwd, &a, out, R, N * C};
    expect_grad("rmsnorm dinp", &o, inp, N * C, dinp, FD_EPS);
    expect_grad("rmsnorm dweight", &o, w, C, dw, FD_EPS);
    float *d0 = randn(&r, N * C, 0, 1), *d = copy(d0, N * C), *dw2 = zeros(C);
    mq_rmsnorm_backward(d, dw2, R, inp, w, rstd, N, C);
    expect_sum("rmsnorm dinp (accumulated)", d, d0, dinp, N * C);
    free(inp), free(w), free(out), free(rstd), free(R), free(dinp), free(dw), free(d0), free(d);
    free(dw2);
}

/* cos and sin of position t, pair i, for base 10000 and n_rot dimensions */
static float *rope_table(int T, int n_rot) {
    float *t = malloc((size_t)T * n_rot * sizeof(float));
    for (int p = 0; p < T; p++)
        for (int i = 0; i < n_rot / 2; i++) {
            double th = p * pow(10000.0, -2.0 * i / n_rot);
            t[(p * n_rot / 2 + i) * 2] = (float)cos(th);
            t[(p * n_rot / 2 + i) * 2 + 1] = (float)sin(th);
        }
    return t;
}

struct ro {
    float *x, *x0, *rope;
    int B, T, H, hs, n_rot;
};
static void ro_fwd(void *p) {
    struct ro *a = p;
    memcpy(a->x, a->x0, (size_t)a->B * a->T * a->H * a->hs * sizeof(float));
    mq_rope_forward(a->x, a->rope, a->B, a->T, a->H, a->hs, a->n_rot);
}

Test(layers, rope_rotates_adjacent_pairs_and_backward_turns_back) {
    mq_rng_t r;
    mq_rng_seed(&r, 22);
    enum { B = 2, T = 5, H = 3, hs = 8, n_rot = 6, n = B * T * H * hs };
    float *x0 = randn(&r, n, 0, 1), *x = zeros(n), *rope = rope_table(T, n_rot),
          *R = randn(&r, n, 0, 1);
    struct ro a = {x, x0, rope, B, T, H, hs, n_rot};
    ro_fwd(&a);
    double ref[n];
    for (int bt = 0; bt < B * T; bt++)
        for (int h = 0; h < H; h++)
            for (int i = 0; i < hs; i++) {
                const float *v = x0 + (bt * H + h) * hs;
                int t = bt % T, pair = i / 2;
                double th = t * pow(10000.0, -2.0 * pair / n_rot);
                if (i >= n_rot)
                    ref[(bt * H + h) * hs + i] = v[i]; /* past n_rot: unchanged */
                else if (i % 2 == 0)
                    ref[(bt * H + h) * hs + i] = v[i] * cos(th) - v[i + 1] * sin(th);
                else
                    ref[(bt * H + h) * hs + i] = v[i - 1] * sin(th) + v[i] * cos(th);
            }
    expect_close("rope out", x, ref, n, 1e-5, 1e-6);
    /* position 0 turns by nothing */
    cr_assert(memcmp(x, x0, H * hs * sizeof(float)) == 0);
    float *d = copy(R, n);
    mq_rope_backward(d, rope, B, T, H, hs, n_rot);
    objective_t o = {ro_fwd, &a, x, R, n};
    expect_grad("rope dx", &o, x0, n, d, FD_EPS);
    free(x0), free(x), free(rope), free(R), free(d);
}

struct sw {
    float *out, *g, *u;
    int N;
};
static void sw_fwd(void *p) {
    struct sw *a = p;
    mq_swiglu_forward(a->out, a->g, a->u, a->N);
}

Test(layers, swiglu_forward_and_backward) {
    mq_rng_t r;
    mq_rng_seed(&r, 23);
    enum { N = 101 };
    float *g = randn(&r, N, 0, 2.5f), *u = randn(&r, N, 0, 1), *out = zeros(N),
          *R = randn(&r, N, 0, 1);
    g[0] = 0.0f, g[1] = -30.0f, g[2] = 30.0f;
    struct sw a = {out, g, u, N};
    sw_fwd(&a);
    double ref[N];
    for (int i = 0; i < N; i++)
        ref[i] = (double)g[i] / (1.0 + exp(-(double)g[i])) * u[i];
    expect_close("swiglu out", out, ref, N, 1e-5, 1e-7);
    float *dg = zeros(N), *du = copy(R, N);
    mq_swiglu_backward(dg, du, du, g, u, N); /* dout and dup may be one buffer */
    objective_t o = {sw_fwd, &a, out, R, N};
    expect_grad("swiglu dgate", &o, g, N, dg, FD_EPS);
    expect_grad("swiglu dup", &o, u, N, du, FD_EPS);
    free(g), free(u), free(out), free(R), free(dg), free(du);
}

struct ga {
    float *out, *att, *q, *k, *v;
    int B, T, NH, NKV, hs;
};
static void ga_fwd(void *p) {
    struct ga *a = p;
    mq_attention_gqa_forward(a->out, a->att, a->q, a->k, a->v, a->B, a->T, a->NH, a->NKV, a->hs);
}

Test(layers, grouped_query_attention) {
    mq_rng_t r;
    mq_rng_seed(&r, 24);
    enum { B = 2, T = 4, NH = 4, NKV = 2, hs = 3, C = NH * hs, KV = NKV * hs };
    float *q = randn(&r, B * T * C, 0, 1), *k = randn(&r, B * T * KV, 0, 1),
          *v = randn(&r, B * T * KV, 0, 1), *out = zeros(B * T * C), *att = zeros(B * NH * T * T),
          *R = randn(&r, B * T * C, 0, 1);
    struct ga a = {out, att, q, k, v, B, T, NH, NKV, hs};
    ga_fwd(&a);
    /* each query head against the key/value head it shares, in double */
    double ref[B * T * C];
    for (int b = 0; b < B; b++)
        for (int h = 0; h < NH; h++)
            for (int t = 0; t < T; t++) {
                int kh = h / (NH / NKV);
                double s[T], m = -INFINITY, sum = 0;
                for (int j = 0; j <= t; j++) {
                    s[j] = 0;
                    for (int i = 0; i < hs; i++)
                        s[j] += (double)q[(b * T + t) * C + h * hs + i] *
                                k[(b * T + j) * KV + kh * hs + i];
                    s[j] /= sqrt((double)hs);
                    m = fmax(m, s[j]);
                }
                for (int j = 0; j <= t; j++)
                    sum += (s[j] = exp(s[j] - m));
                for (int i = 0; i < hs; i++) {
                    double y = 0;
                    for (int j = 0; j <= t; j++)
                        y += s[j] / sum * v[(b * T + j) * KV + kh * hs + i];
                    ref[(b * T + t) * C + h * hs + i] = y;
                }
            }
    expect_close("gqa out", out, ref, B * T * C, 1e-5, 1e-6);
    float *dq = zeros(B * T * C), *dk = zeros(B * T * KV), *dv = zeros(B * T * KV),
          *datt = zeros(B * NH * T * T);
    mq_attention_gqa_backward(dq, dk, dv, datt, R, q, k, v, att, B, T, NH, NKV, hs, 0.0f);
    objective_t o = {ga_fwd, &a, out, R, B * T * C};
    expect_grad("gqa dq", &o, q, B * T * C, dq, FD_EPS);
    expect_grad("gqa dk", &o, k, B * T * KV, dk, FD_EPS);
    expect_grad("gqa dv", &o, v, B * T * KV, dv, FD_EPS);
    /* beta 1 adds to what the buffers held */
    float *dk0 = randn(&r, B * T * KV, 0, 1), *dk1 = copy(dk0, B * T * KV);
    float *dq1 = zeros(B * T * C), *dv1 = zeros(B * T * KV);
    mq_attention_gqa_backward(dq1, dk1, dv1, datt, R, q, k, v, att, B, T, NH, NKV, hs, 1.0f);
    expect_sum("gqa dk (accumulated)", dk1, dk0, dk, B * T * KV);
    free(q), free(k), free(v), free(out), free(att), free(R), free(dq), free(dk), free(dv);
    free(datt), free(dk0), free(dk1), free(dq1), free(dv1);
}

/* With as many key/value heads as query heads and Q, K, V side by side in one buffer, the
 * grouped-query path is GPT-2's attention, bit for bit. */
Test(layers, grouped_query_attention_with_full_heads_is_gpt2s) {
    mq_rng_t r;
    mq_rng_seed(&r, 25);
    enum { B = 2, T = 6, C = 8, NH = 2, N = B * T };
    float *qkv = randn(&r, N * 3 * C, 0, 1), *out1 = zeros(N * C), *att1 = zeros(B * NH * T * T);
    mq_attention_forward(out1, att1, qkv, B, T, C, NH);
    float *q = zeros(N * C), *k = zeros(N * C), *v = zeros(N * C), *out2 = zeros(N * C),
          *att2 = zeros(B * NH * T * T);
    for (int i = 0; i < N; i++) {
        memcpy(q + i * C, qkv + i * 3 * C, C * sizeof(float));
        memcpy(k + i * C, qkv + i * 3 * C + C, C * sizeof(float));
        memcpy(v + i * C, qkv + i * 3 * C + 2 * C, C * sizeof(float));
    }
    mq_attention_gqa_forward(out2, att2, q, k, v, B, T, NH, NH, C / NH);
    cr_assert(memcmp(out1, out2, N * C * sizeof(float)) == 0);
    cr_assert(memcmp(att1, att2, B * NH * T * T * sizeof(float)) == 0);
    free(qkv), free(out1), free(att1), free(q), free(k), free(v), free(out2), free(att2);
}
