#include "miniquant/eval.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "miniquant/progress.h"

int mq_ppl_protocol_parse(const char *name, mq_ppl_protocol_t *out, mq_error_t *err) {
    if (!strcmp(name, "default")) *out = MQ_PPL_DEFAULT;
    else if (!strcmp(name, "llamacpp") || !strcmp(name, "llama.cpp")) *out = MQ_PPL_LLAMACPP;
    else
        return mq_error_set(err, MQ_ERR_ARG,
                            "unknown perplexity protocol '%s' (valid: default, llamacpp)", name);
    return MQ_OK;
}

const char *mq_ppl_protocol_name(mq_ppl_protocol_t p) {
    return p == MQ_PPL_LLAMACPP ? "llamacpp" : "default";
}

double mq_nll_from_logits(const float *logits, int V, int target) {
    float mx = logits[0];
    for (int v = 1; v < V; v++)
        if (logits[v] > mx) mx = logits[v];
    double sum = 0;
    for (int v = 0; v < V; v++) sum += exp((double)(logits[v] - mx));
    return log(sum) - (double)(logits[target] - mx);
}

int mq_ppl_llamacpp_tokens(const mq_tokenizer_t *tok, const char *text, size_t len, int n_ctx,
                           int32_t **ids, size_t *n, mq_error_t *err) {
    if (len && text[len - 1] == '\n') len--;
    int rc = mq_tokenizer_encode(tok, text, len, MQ_TOK_ADD_SPECIAL, ids, n, err);
    if (rc || !mq_tokenizer_adds_bos(tok) || n_ctx < 1) return rc;
    for (size_t i = 0; i < *n; i += (size_t)n_ctx)
        (*ids)[i] = mq_tokenizer_bos(tok);
    return MQ_OK;
}

/* One window: where it starts in the stream, how many input tokens, and the first position
 * whose prediction is scored. Position t predicts token start + t + 1. */
typedef struct {
    size_t start;
    int len;
    int first;
} window_t;

/* The windows of a protocol over n tokens (malloc'd in *out, their count in *n_out), after the
 * arguments are checked against m. */
static int layout_windows(const mq_gpt_t *m, const int32_t *tokens, size_t n,
                          mq_ppl_protocol_t protocol, int *n_ctx, int *batch, window_t **out,
                          size_t *n_out, mq_error_t *err) {
    if (*n_ctx <= 0) *n_ctx = m->cfg.n_ctx;
    if (*n_ctx > m->cfg.n_ctx || *n_ctx < 2)
        return mq_error_set(err, MQ_ERR_ARG, "context %d is outside 2..%d", *n_ctx, m->cfg.n_ctx);
    if (*batch <= 0) *batch = 8;
    int C = *n_ctx;
    for (size_t i = 0; i < n; i++)
        if (tokens[i] < 0 || tokens[i] >= m->cfg.vocab_size)
            return mq_error_set(err, MQ_ERR_ARG, "token %d at %zu is outside the vocabulary",
                                tokens[i], i);
    size_t n_win;
    if (protocol == MQ_PPL_LLAMACPP) {
        if (n < 2 * (size_t)C)
            return mq_error_set(err, MQ_ERR_ARG,
                                "%zu tokens: the llamacpp protocol needs at least 2 x n_ctx = %d",
                                n, 2 * C);
        n_win = n / (size_t)C;
    } else {
        if (n < 2) return mq_error_set(err, MQ_ERR_ARG, "%zu tokens: nothing to score", n);
        n_win = (n - 1 + (size_t)C - 1) / (size_t)C;
    }
    window_t *win = malloc(n_win * sizeof *win);
    if (!win) return mq_error_set(err, MQ_ERR_NOMEM, "out of memory");
    for (size_t w = 0; w < n_win; w++) {
        size_t start = w * (size_t)C;
        if (protocol == MQ_PPL_LLAMACPP) {
            win[w] = (window_t){start, C, C / 2};
        } else {
            size_t left = n - 1 - start; /* tokens that can still be predicted */
            win[w] = (window_t){start, left < (size_t)C ? (int)left : C, 0};
        }
    }
    *out = win;
    *n_out = n_win;
    return MQ_OK;
}

/* The windows of one forward pass from w0 (they share a length: only the default protocol's
 * last differs), their tokens into inp. */
static int batch_windows(const window_t *win, size_t n_win, size_t w0, int batch,
                         const int32_t *tokens, int *inp) {
    int T = win[w0].len, nb = 0;
    while (w0 + (size_t)nb < n_win && nb < batch && win[w0 + (size_t)nb].len == T) nb++;
    for (int b = 0; b < nb; b++)
        for (int t = 0; t < T; t++)
            inp[b * T + t] = tokens[win[w0 + (size_t)b].start + (size_t)t];
    return nb;
}

int mq_perplexity(mq_gpt_t *m, const int32_t *tokens, size_t n, mq_ppl_protocol_t protocol,
                  int n_ctx, int batch, mq_ppl_result_t *res, mq_error_t *err) {
    return mq_perplexity_windows(m, tokens, n, protocol, n_ctx, batch, res, NULL, NULL, err);
}

int mq_perplexity_windows(mq_gpt_t *m, const int32_t *tokens, size_t n,
                          mq_ppl_protocol_t protocol, int n_ctx, int batch, mq_ppl_result_t *res,
                          double **window_nll, int64_t **window_tokens, mq_error_t *err) {
    memset(res, 0, sizeof *res);
    if (window_nll) *window_nll = NULL;
    if (window_tokens) *window_tokens = NULL;
    window_t *win = NULL;
    size_t n_win = 0;
    int rc = layout_windows(m, tokens, n, protocol, &n_ctx, &batch, &win, &n_win, err);
    if (rc) return rc;
    int *inp = malloc((size_t)batch * n_ctx * sizeof *inp);
    double *nll = malloc((size_t)batch * n_ctx * sizeof *nll);
    double *wsum = window_nll ? calloc(n_win, sizeof *wsum) : NULL;
    int64_t *wcount = window_tokens ? calloc(n_win, sizeof *wcount) : NULL;
    if (!inp || !nll || (window_nll && !wsum) || (window_tokens && !wcount)) {
        free(win);
        free(inp);
        free(nll);
        free(wsum);
        free(wcount);
        return mq_error_set(err, MQ_ERR_NOMEM, "out of memory");
    }

    mq_progress_t pb;
    mq_progress_start(&pb, "perplexity", (int64_t)n_win);
    double t0 = mq_now(), sum = 0, sum2 = 0;
    int64_t count = 0;
    const int V = m->cfg.vocab_size;
    for (size_t w0 = 0; w0 < n_win && rc == MQ_OK;) {
        int T = win[w0].len, nb = batch_windows(win, n_win, w0, batch, tokens, inp);
        rc = mq_gpt_forward(m, inp, NULL, nb, T, err);
        if (rc) break;
        /* Scored positions: [first, last) of each window. NLLs are computed in parallel and
         * summed in order, so the result does not depend on thread timing. */
        const int first = win[w0].first, last = protocol == MQ_PPL_LLAMACPP ? T - 1 : T;
#pragma omp parallel for collapse(2) schedule(static)
        for (int b = 0; b < nb; b++)
            for (int t = first; t < last; t++)
            {
                /* the forward pass's softmax already holds p(target); the logits are the
                 * fallback when it underflowed */
                size_t row = ((size_t)b * T + t) * V;
                int32_t target = tokens[win[w0 + (size_t)b].start + (size_t)t + 1];
                float p = m->acts.probs[row + target];
                nll[b * T + t] = p > 1e-30f ? -log((double)p)
                                            : mq_nll_from_logits(m->acts.logits + row, V, target);
            }
        for (int b = 0; b < nb; b++)
            for (int t = first; t < last; t++) {
                sum += nll[b * T + t];
                sum2 += nll[b * T + t] * nll[b * T + t];
                count++;
                if (wsum) wsum[w0 + (size_t)b] += nll[b * T + t];
                if (wcount) wcount[w0 + (size_t)b]++;
            }
        w0 += (size_t)nb;
        mq_progress_update(&pb, (int64_t)w0, NULL);
    }
    free(win);
    free(inp);
    free(nll);
    if (rc == MQ_OK && !isfinite(sum))
        rc = mq_error_set(err, MQ_ERR_FORMAT,
                          "%s%sthe loss is %g, not a finite number: the model's outputs "
                          "overflow or are not numbers",
                          m->source, m->source[0] ? ": " : "", sum / (double)count);
    if (rc) {
        free(wsum);
        free(wcount);
        return rc;
    }
    if (window_nll) *window_nll = wsum;
    if (window_tokens) *window_tokens = wcount;
    mq_progress_finish(&pb, NULL);
    double mean = sum / (double)count;
    double var = sum2 / (double)count - mean * mean;
    res->nll = mean;
    res->ppl = exp(mean);
    res->nll_stderr = count > 1 && var > 0 ? sqrt(var / (double)(count - 1)) : 0;
    res->n_scored = count;
    res->n_tokens = (int64_t)n;
    res->n_windows = (int)n_win;
    res->n_ctx = n_ctx;
    res->seconds = mq_now() - t0;
    return MQ_OK;
}

/* ---------------------------------------------------------------------------------------------
 * KL divergence from a base model */

/* log-sum-exp of a row of V logits, in double. */
static double lse_row(const float *x, int V) {
    float mx = x[0];
    for (int v = 1; v < V; v++)
        mx = x[v] > mx ? x[v] : mx;
    double sum = 0;
    for (int v = 0; v < V; v++)
        sum += exp((double)(x[v] - mx));
    return (double)mx + log(sum);
}

static int argmax_row(const float *x, int V) {
    int best = 0;
    for (int v = 1; v < V; v++)
        if (x[v] > x[best]) best = v;
    return best;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* The value at quantile q of n sorted values (nearest rank). */
static double quantile(const double *sorted, size_t n, double q) {
    size_t k = (size_t)ceil(q * (double)n);
    return sorted[k ? k - 1 : 0];
}

int mq_kl_divergence(mq_gpt_t *base, mq_gpt_t *m, const int32_t *tokens, size_t n,
                     mq_ppl_protocol_t protocol, int n_ctx, int batch, mq_kld_result_t *res,
                     mq_error_t *err) {
    memset(res, 0, sizeof *res);
    if (base->cfg.vocab_size != m->cfg.vocab_size || base->cfg.n_ctx < m->cfg.n_ctx)
        return mq_error_set(err, MQ_ERR_ARG,
                            "the base model (vocabulary %d, context %d) does not fit the model "
                            "(vocabulary %d, context %d)",
                            base->cfg.vocab_size, base->cfg.n_ctx, m->cfg.vocab_size,
                            m->cfg.n_ctx);
    window_t *win = NULL;
    size_t n_win = 0;
    int rc = layout_windows(m, tokens, n, protocol, &n_ctx, &batch, &win, &n_win, err);
    if (rc) return rc;
    const int V = m->cfg.vocab_size;
    size_t max_scored = n_win * (size_t)n_ctx;
    int *inp = malloc((size_t)batch * n_ctx * sizeof *inp);
    float *lb = malloc((size_t)batch * n_ctx * (size_t)V * sizeof *lb);
    double *kld = malloc(max_scored * sizeof *kld), *dnll = malloc(max_scored * sizeof *dnll);
    double *nllb = malloc(max_scored * sizeof *nllb);
    unsigned char *same = malloc(max_scored);
    if (!inp || !lb || !kld || !dnll || !nllb || !same) {
        rc = mq_error_set(err, MQ_ERR_NOMEM, "out of memory for the base model's logits");
        goto out;
    }
    mq_progress_t pb;
    mq_progress_start(&pb, "kl-divergence", (int64_t)n_win);
    double t0 = mq_now();
    size_t count = 0;
    for (size_t w0 = 0; w0 < n_win && rc == MQ_OK;) {
        int T = win[w0].len, nb = batch_windows(win, n_win, w0, batch, tokens, inp);
        rc = mq_gpt_forward(base, inp, NULL, nb, T, err);
        if (rc) break;
        memcpy(lb, base->acts.logits, (size_t)nb * T * (size_t)V * sizeof *lb);
        rc = mq_gpt_forward(m, inp, NULL, nb, T, err);
        if (rc) break;
        const int first = win[w0].first, last = protocol == MQ_PPL_LLAMACPP ? T - 1 : T;
        const int per = last - first;
        /* each scored token's values land in its own slot: the order of the results does not
         * depend on the threads */
#pragma omp parallel for collapse(2) schedule(static)
        for (int b = 0; b < nb; b++)
            for (int t = first; t < last; t++) {
                size_t row = ((size_t)b * T + t) * V, k = count + (size_t)b * per + (t - first);
                const float *xb = lb + row, *xq = m->acts.logits + row;
                double lse_b = lse_row(xb, V), lse_q = lse_row(xq, V), kl = 0;
                for (int v = 0; v < V; v++) {
                    double log_pb = (double)xb[v] - lse_b, log_pq = (double)xq[v] - lse_q;
                    kl += exp(log_pb) * (log_pb - log_pq);
                }
                int32_t target = tokens[win[w0 + (size_t)b].start + (size_t)t + 1];
                kld[k] = kl;
                nllb[k] = lse_b - (double)xb[target];
                dnll[k] = (lse_q - (double)xq[target]) - nllb[k];
                same[k] = argmax_row(xb, V) == argmax_row(xq, V);
            }
        count += (size_t)nb * (size_t)per;
        w0 += (size_t)nb;
        mq_progress_update(&pb, (int64_t)w0, NULL);
    }
    if (rc) goto out;
    mq_progress_finish(&pb, NULL);
    double sk = 0, sk2 = 0, sd = 0, sd2 = 0, sb = 0, ss = 0;
    for (size_t k = 0; k < count; k++) {
        sk += kld[k];
        sk2 += kld[k] * kld[k];
        sd += dnll[k];
        sd2 += dnll[k] * dnll[k];
        sb += nllb[k];
        ss += same[k];
    }
    double N = (double)count;
    res->n_scored = (int64_t)count;
    res->n_windows = (int)n_win;
    res->n_ctx = n_ctx;
    res->mean = sk / N;
    res->mean_stderr = count > 1 ? sqrt(fmax(sk2 / N - res->mean * res->mean, 0) / (N - 1)) : 0;
    res->same_top = ss / N;
    res->same_top_stderr = count > 1 ? sqrt(res->same_top * (1 - res->same_top) / (N - 1)) : 0;
    res->ln_ppl_ratio = sd / N;
    res->ln_ppl_ratio_stderr =
        count > 1 ? sqrt(fmax(sd2 / N - res->ln_ppl_ratio * res->ln_ppl_ratio, 0) / (N - 1)) : 0;
    res->ppl_base = exp(sb / N);
    res->ppl = exp((sb + sd) / N);
    qsort(kld, count, sizeof *kld, cmp_double);
    res->median = quantile(kld, count, 0.5);
    res->p99 = quantile(kld, count, 0.99);
    res->p999 = quantile(kld, count, 0.999);
    res->max = kld[count - 1];
    res->seconds = mq_now() - t0;
out:
    free(win);
    free(inp);
    free(lb);
    free(kld);
    free(dnll);
    free(nllb);
    free(same);
    return rc;
}
