/* miniquant: paired statistics, for comparing a quantized model with FP32 on the same items
 * and the same tokens.
 *
 *     double p = mq_mcnemar_exact(lost, gained);             // the task: discordant items
 *     mq_interval_t gap;
 *     mq_bootstrap_ppl_gap(nll_q, nll_fp32, tokens, n_windows, 2000, 26, 0.95, &gap, &err);
 */
#ifndef MINIQUANT_STATS_H
#define MINIQUANT_STATS_H

#include <stddef.h>
#include <stdint.h>

#include "miniquant/error.h"

/* McNemar's test, exact: of the items the two models disagree on, b are right under one only
 * and c under the other only. Returns the two-sided p-value of the binomial test of b against
 * Binomial(b + c, 1/2): the probability, when each discordant item is as likely to fall
 * either way, of a split at least as uneven (1 when b + c = 0; at most 1). */
double mq_mcnemar_exact(int64_t b, int64_t c);

typedef struct mq_interval {
    double estimate; /* the statistic on the data as they are */
    double lo, hi;   /* the percentile interval of its resamples */
    double level;    /* e.g. 0.95 */
    int resamples;
} mq_interval_t;

/* The perplexity gap of a model to a base on the same windows, in percent:
 * 100 (exp((sum nll - sum nll_base) / sum tokens) - 1), where window w holds tokens[w] scored
 * tokens whose negative log-likelihoods sum to nll[w] (nll_base[w] under the base). The
 * interval resamples whole windows with replacement (a paired block bootstrap: a window's
 * tokens stay together, and each resample takes the same windows for both models), with a
 * generator seeded by seed: the same inputs give the same interval. MQ_ERR_ARG when there is
 * no window, no token, resamples < 100 or level outside (0, 1). */
int mq_bootstrap_ppl_gap(const double *nll, const double *nll_base, const int64_t *tokens,
                         size_t n_windows, int resamples, uint64_t seed, double level,
                         mq_interval_t *out, mq_error_t *err);

#endif
