/* Paired statistics: McNemar's exact test against the binomial computed another way, the
 * bootstrap interval of the perplexity gap (its estimate, its determinism, its coverage), and
 * the per-window sums perplexity gives it. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "miniquant/eval.h"
#include "miniquant/rng.h"
#include "miniquant/stats.h"

/* 2 P(X <= min(b, c)) for X ~ Binomial(b + c, 1/2), by Pascal's triangle in long double. */
static double mcnemar_by_pascal(int b, int c) {
    int n = b + c, k = b < c ? b : c;
    long double *row = calloc((size_t)n + 1, sizeof *row);
    row[0] = 1;
    for (int i = 1; i <= n; i++) { /* row i from row i - 1, right to left */
        for (int j = i; j > 0; j--)
            row[j] = (row[j] + row[j - 1]) / 2;
        row[0] /= 2;
    }
    long double tail = 0;
    for (int j = 0; j <= k; j++)
        tail += row[j];
    free(row);
    double p = (double)(2 * tail);
    return p < 1 ? p : 1;
}

Test(stats, mcnemar_worked_values) {
    cr_assert_eq(mq_mcnemar_exact(0, 0), 1.0);
    cr_assert_eq(mq_mcnemar_exact(5, 5), 1.0);
    cr_assert_float_eq(mq_mcnemar_exact(0, 10), 2.0 / 1024, 1e-15);
    cr_assert_float_eq(mq_mcnemar_exact(2, 8), 2 * 56.0 / 1024, 1e-14); /* 1 + 10 + 45 */
    cr_assert_float_eq(mq_mcnemar_exact(8, 2), mq_mcnemar_exact(2, 8), 1e-15);
    /* 20 against 31 discordant items: not significant at 5%; 10 against 40: significant */
    cr_assert_gt(mq_mcnemar_exact(20, 31), 0.05);
    cr_assert_lt(mq_mcnemar_exact(10, 40), 0.001);
}

Test(stats, mcnemar_is_the_binomial_tail) {
    for (int b = 0; b <= 60; b += 3)
        for (int c = 0; c <= 60; c += 7) {
            double want = mcnemar_by_pascal(b, c), got = mq_mcnemar_exact(b, c);
            cr_assert(fabs(got - want) <= 1e-12 + 1e-9 * want, "b %d c %d: %.17g, want %.17g", b,
                      c, got, want);
        }
    /* large counts stay finite and ordered */
    double p1 = mq_mcnemar_exact(1000, 1100), p2 = mq_mcnemar_exact(1000, 1200);
    cr_assert(p1 > 0 && p1 < 1 && p2 < p1, "%g %g", p1, p2);
}

/* n windows of 64 tokens whose per-token NLL differences have mean shift and spread sd. */
static void windows(mq_rng_t *r, int n, double shift, double sd, double *a, double *b,
                    int64_t *t) {
    for (int w = 0; w < n; w++) {
        t[w] = 64;
        b[w] = 64 * 4.0 + 3 * mq_rng_normal(r);
        a[w] = b[w] + 64 * shift + sd * 8 * mq_rng_normal(r);
    }
}

Test(stats, bootstrap_estimate_and_determinism) {
    enum { N = 300 };
    double a[N], b[N];
    int64_t t[N];
    mq_rng_t r;
    mq_rng_seed(&r, 3);
    windows(&r, N, 0.01, 0.1, a, b, t);
    double diff = 0;
    for (int w = 0; w < N; w++)
        diff += a[w] - b[w];
    mq_interval_t x, y;
    mq_error_t err = {0};
    cr_assert_eq(mq_bootstrap_ppl_gap(a, b, t, N, 1000, 7, 0.95, &x, &err), MQ_OK, "%s", err.msg);
    cr_assert_float_eq(x.estimate, 100 * expm1(diff / (64.0 * N)), 1e-12);
    cr_assert(x.lo < x.estimate && x.estimate < x.hi, "%g [%g, %g]", x.estimate, x.lo, x.hi);
    cr_assert(x.lo > 0, "a shift of 0.01 nats per token is seen: [%g, %g]", x.lo, x.hi);
    cr_assert_eq(mq_bootstrap_ppl_gap(a, b, t, N, 1000, 7, 0.95, &y, &err), MQ_OK);
    cr_assert(x.lo == y.lo && x.hi == y.hi, "the same seed gives the same interval");
    /* every window the same difference: nothing to resample */
    for (int w = 0; w < N; w++)
        a[w] = b[w] + 0.5;
    cr_assert_eq(mq_bootstrap_ppl_gap(a, b, t, N, 200, 7, 0.95, &x, &err), MQ_OK);
    cr_assert_float_eq(x.lo, x.estimate, 1e-9);
    cr_assert_float_eq(x.hi, x.estimate, 1e-9);
    /* bad arguments */
    cr_assert_eq(mq_bootstrap_ppl_gap(a, b, t, 0, 200, 7, 0.95, &x, &err), MQ_ERR_ARG);
    cr_assert_eq(mq_bootstrap_ppl_gap(a, b, t, N, 10, 7, 0.95, &x, &err), MQ_ERR_ARG);
    cr_assert_eq(mq_bootstrap_ppl_gap(a, b, t, N, 200, 7, 1.0, &x, &err), MQ_ERR_ARG);
}

/* Over 200 data sets with a known gap, the 95% interval holds it about 95% of the time; with
 * no gap, it excludes 0 about 5% of the time. */
Test(stats, bootstrap_interval_covers_the_true_gap) {
    enum { N = 200, SETS = 200 };
    double a[N], b[N];
    int64_t t[N];
    mq_rng_t r;
    mq_rng_seed(&r, 11);
    const double shift = 0.004, truth = 100 * expm1(shift);
    int covered = 0, false_alarm = 0;
    for (int k = 0; k < SETS; k++) {
        mq_interval_t x;
        mq_error_t err = {0};
        windows(&r, N, shift, 0.2, a, b, t);
        cr_assert_eq(mq_bootstrap_ppl_gap(a, b, t, N, 400, (uint64_t)k, 0.95, &x, &err), MQ_OK);
        covered += x.lo <= truth && truth <= x.hi;
        windows(&r, N, 0, 0.2, a, b, t);
        cr_assert_eq(mq_bootstrap_ppl_gap(a, b, t, N, 400, (uint64_t)k, 0.95, &x, &err), MQ_OK);
        false_alarm += x.lo > 0 || x.hi < 0;
    }
    cr_assert(covered >= 180 && covered <= 198, "covered %d of %d", covered, SETS);
    cr_assert(false_alarm <= 20, "0 excluded %d of %d times", false_alarm, SETS);
}

Test(stats, perplexity_windows_sum_to_the_perplexity) {
    mq_gpt_config_t cfg = {
        .name = "custom", .vocab_size = 40, .n_ctx = 16, .n_embd = 16, .n_head = 2, .n_layer = 1};
    mq_gpt_t m;
    mq_error_t err = {0};
    cr_assert_eq(mq_gpt_init(&m, &cfg, &err), MQ_OK, "%s", err.msg);
    mq_gpt_init_weights(&m, 5);
    int32_t tok[300];
    for (int i = 0; i < 300; i++)
        tok[i] = (i * 7 + i / 5) % 40;
    for (int p = 0; p < 2; p++) {
        mq_ppl_result_t res, plain;
        double *wn;
        int64_t *wt;
        cr_assert_eq(mq_perplexity_windows(&m, tok, 300, (mq_ppl_protocol_t)p, 0, 3, &res, &wn, &wt,
                                           &err),
                     MQ_OK, "%s", err.msg);
        cr_assert_eq(mq_perplexity(&m, tok, 300, (mq_ppl_protocol_t)p, 0, 3, &plain, &err), MQ_OK);
        cr_assert_eq(res.ppl, plain.ppl);
        double s = 0;
        int64_t n = 0;
        for (int w = 0; w < res.n_windows; w++)
            s += wn[w], n += wt[w];
        cr_assert_eq(n, res.n_scored);
        cr_assert_float_eq(s / (double)n, res.nll, 1e-12);
        free(wn);
        free(wt);
    }
    mq_gpt_free(&m);
}
