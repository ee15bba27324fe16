/* miniquant: paired statistics (stats.h). */
#include "miniquant/stats.h"

#include <math.h>
#include <stdlib.h>

#include "miniquant/rng.h"

/* log C(n, k) */
static double log_choose(int64_t n, int64_t k) {
    return lgamma((double)n + 1) - lgamma((double)k + 1) - lgamma((double)(n - k) + 1);
}

double mq_mcnemar_exact(int64_t b, int64_t c) {
    int64_t n = b + c, k = b < c ? b : c;
    if (n <= 0) return 1;
    /* P(X <= k) for X ~ Binomial(n, 1/2), summed from the largest term down */
    double tail = 0, log_half_n = (double)n * log(0.5);
    for (int64_t i = k; i >= 0; i--) {
        double term = exp(log_choose(n, i) + log_half_n);
        tail += term;
        if (term < 1e-300) break;
    }
    double p = 2 * tail;
    return p < 1 ? p : 1;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* The q-quantile of n sorted values, linear between the neighbouring ranks. */
static double quantile(const double *v, int n, double q) {
    double at = q * (n - 1);
    int i = (int)floor(at);
    if (i >= n - 1) return v[n - 1];
    return v[i] + (at - i) * (v[i + 1] - v[i]);
}

static double gap_pct(double diff, double tokens) { return 100 * expm1(diff / tokens); }

int mq_bootstrap_ppl_gap(const double *nll, const double *nll_base, const int64_t *tokens,
                         size_t n_windows, int resamples, uint64_t seed, double level,
                         mq_interval_t *out, mq_error_t *err) {
    if (n_windows == 0) return mq_error_set(err, MQ_ERR_ARG, "bootstrap: no window");
    if (resamples < 100)
        return mq_error_set(err, MQ_ERR_ARG, "bootstrap: %d resamples, at least 100",
                            resamples);
    if (!(level > 0 && level < 1))
        return mq_error_set(err, MQ_ERR_ARG, "bootstrap: level %g is outside (0, 1)", level);
    double diff = 0, n = 0;
    for (size_t w = 0; w < n_windows; w++) {
        diff += nll[w] - nll_base[w];
        n += (double)tokens[w];
    }
    if (!(n > 0)) return mq_error_set(err, MQ_ERR_ARG, "bootstrap: no scored token");
    double *stat = malloc((size_t)resamples * sizeof *stat);
    if (!stat) return mq_error_set(err, MQ_ERR_NOMEM, "out of memory");
    mq_rng_t r;
    mq_rng_seed(&r, seed);
    for (int k = 0; k < resamples; k++) {
        double d = 0, t = 0;
        for (size_t i = 0; i < n_windows; i++) {
            size_t w = (size_t)mq_rng_below(&r, n_windows);
            d += nll[w] - nll_base[w];
            t += (double)tokens[w];
        }
        stat[k] = t > 0 ? gap_pct(d, t) : 0;
    }
    qsort(stat, (size_t)resamples, sizeof *stat, cmp_double);
    *out = (mq_interval_t){.estimate = gap_pct(diff, n),
                           .lo = quantile(stat, resamples, (1 - level) / 2),
                           .hi = quantile(stat, resamples, 1 - (1 - level) / 2),
                           .level = level,
                           .resamples = resamples};
    free(stat);
    return MQ_OK;
}
