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

/* One window: where it starts in the stream, how many input tokens, and the first position
 * whose prediction is scored. Position t predicts token start + t + 1. */
typedef struct {
    size_t start;
    int len;
    int first;
} window_t;

int mq_perplexity(mq_gpt_t *m, const int32_t *tokens, size_t n, mq_ppl_protocol_t protocol,
                  int n_ctx, int batch, mq_ppl_result_t *res, mq_error_t *err) {
    memset(res, 0, sizeof *res);
    if (n_ctx <= 0) n_ctx = m->cfg.n_ctx;
    if (n_ctx > m->cfg.n_ctx || n_ctx < 2)
        return mq_error_set(err, MQ_ERR_ARG, "context %d is outside 2..%d", n_ctx, m->cfg.n_ctx);
    if (batch <= 0) batch = 8;
    for (size_t i = 0; i < n; i++)
        if (tokens[i] < 0 || tokens[i] >= m->cfg.vocab_size)
            return mq_error_set(err, MQ_ERR_ARG, "token %d at %zu is outside the vocabulary",
                                tokens[i], i);

    /* Lay out the windows of the protocol. */
    size_t n_win;
    if (protocol == MQ_PPL_LLAMACPP) {
        if (n < 2 * (size_t)n_ctx)
            return mq_error_set(err, MQ_ERR_ARG,
                                "%zu tokens: the llamacpp protocol needs at least 2 x n_ctx = %d",
                                n, 2 * n_ctx);
        n_win = n / (size_t)n_ctx;
    } else {
        if (n < 2) return mq_error_set(err, MQ_ERR_ARG, "%zu tokens: nothing to score", n);
        n_win = (n - 1 + (size_t)n_ctx - 1) / (size_t)n_ctx;
    }
    window_t *win = malloc(n_win * sizeof *win);
    int *inp = malloc((size_t)batch * n_ctx * sizeof *inp);
    double *nll = malloc((size_t)batch * n_ctx * sizeof *nll);
    if (!win || !inp || !nll) {
        free(win);
        free(inp);
        free(nll);
        return mq_error_set(err, MQ_ERR_NOMEM, "out of memory");
    }
    for (size_t w = 0; w < n_win; w++) {
        size_t start = w * (size_t)n_ctx;
        if (protocol == MQ_PPL_LLAMACPP) {
            win[w] = (window_t){start, n_ctx, n_ctx / 2};
        } else {
            size_t left = n - 1 - start; /* tokens that can still be predicted */
            win[w] = (window_t){start, left < (size_t)n_ctx ? (int)left : n_ctx, 0};
        }
    }

    mq_progress_t pb;
    mq_progress_start(&pb, "perplexity", (int64_t)n_win);
    double t0 = mq_now(), sum = 0, sum2 = 0;
    int64_t count = 0;
    int rc = MQ_OK;
    const int V = m->cfg.vocab_size;
    for (size_t w0 = 0; w0 < n_win && rc == MQ_OK;) {
        /* Windows of one forward pass share a length (only the default protocol's last differs). */
        int T = win[w0].len, nb = 0;
        while (w0 + (size_t)nb < n_win && nb < batch && win[w0 + (size_t)nb].len == T) nb++;
        for (int b = 0; b < nb; b++)
            for (int t = 0; t < T; t++) inp[b * T + t] = tokens[win[w0 + (size_t)b].start + (size_t)t];
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
            }
        w0 += (size_t)nb;
        mq_progress_update(&pb, (int64_t)w0, NULL);
    }
    free(win);
    free(inp);
    free(nll);
    if (rc) return rc;
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
