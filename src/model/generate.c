/* miniquant: sampling and the generation loop (see generate.h). */
#include "miniquant/generate.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "miniquant/progress.h"

int mq_sampler_init(mq_sampler_t *s, const mq_sampling_t *p, int n_vocab, mq_error_t *err) {
    memset(s, 0, sizeof *s);
    if (!(p->temp >= 0.0f) || p->top_k < 0 || !(p->top_p > 0.0f && p->top_p <= 1.0f) || n_vocab < 1)
        return mq_error_set(err, MQ_ERR_ARG,
                            "sampling: temperature %g, top-k %d, top-p %g for %d tokens (need "
                            "temperature >= 0, top-k >= 0, 0 < top-p <= 1)",
                            (double)p->temp, p->top_k, (double)p->top_p, n_vocab);
    s->p = *p;
    s->n_vocab = n_vocab;
    s->idx = malloc((size_t)n_vocab * sizeof *s->idx);
    s->prob = malloc((size_t)n_vocab * sizeof *s->prob);
    if (!s->idx || !s->prob) {
        mq_sampler_free(s);
        return mq_error_set(err, MQ_ERR_NOMEM, "sampling: out of memory");
    }
    mq_rng_seed(&s->rng, p->seed);
    return MQ_OK;
}

void mq_sampler_free(mq_sampler_t *s) {
    free(s->idx);
    free(s->prob);
    memset(s, 0, sizeof *s);
}

/* a before b: the larger logit, the lower id among equal ones */
static int better(const float *logits, int32_t a, int32_t b) {
    return logits[a] > logits[b] || (logits[a] == logits[b] && a < b);
}

/* Places t at the root of the heap idx[0 .. n) of the worst-first order and sifts it down. */
static void sift_down(const float *logits, int32_t *idx, int n, int32_t t) {
    int i = 0;
    for (;;) {
        int c = 2 * i + 1;
        if (c >= n) break;
        if (c + 1 < n && better(logits, idx[c], idx[c + 1])) c++; /* the worse child */
        if (!better(logits, t, idx[c])) break;
        idx[i] = idx[c];
        i = c;
    }
    idx[i] = t;
}

/* The k best of the V logits, best first, into idx[0 .. k): a heap of the k best seen with the
 * worst at its root, so a vocabulary of 50,000 costs V log k, not a sort of V. */
static void top_k(const float *logits, int V, int k, int32_t *idx) {
    int n = 0;
    for (int32_t t = 0; t < V; t++) {
        if (n < k) { /* sift up from the end */
            int i = n++;
            while (i > 0 && better(logits, idx[(i - 1) / 2], t)) {
                idx[i] = idx[(i - 1) / 2];
                i = (i - 1) / 2;
            }
            idx[i] = t;
        } else if (better(logits, t, idx[0])) { /* replaces the worst */
            sift_down(logits, idx, n, t);
        }
    }
    for (int end = n - 1; end > 0; end--) { /* the worst to the back, in turn: best first */
        int32_t worst = idx[0];
        sift_down(logits, idx, end, idx[end]);
        idx[end] = worst;
    }
}

/* prob[i] = softmax of logits[idx[i]] / temp over the n candidates (idx best first) */
static void softmax(const float *logits, const int32_t *idx, int n, float temp, float *prob) {
    double sum = 0.0, top = logits[idx[0]];
    for (int i = 0; i < n; i++) {
        prob[i] = (float)exp(((double)logits[idx[i]] - top) / temp);
        sum += prob[i];
    }
    for (int i = 0; i < n; i++)
        prob[i] = (float)(prob[i] / sum);
}

int32_t mq_sampler_next(mq_sampler_t *s, const float *logits) {
    int V = s->n_vocab;
    if (s->p.temp <= 0.0f) {
        int32_t best = 0;
        for (int32_t t = 1; t < V; t++)
            if (better(logits, t, best)) best = t;
        return best;
    }
    int n = s->p.top_k > 0 && s->p.top_k < V ? s->p.top_k : V;
    top_k(logits, V, n, s->idx);
    if (s->p.top_p < 1.0f) {
        /* as llama.cpp: on the probabilities before the temperature */
        softmax(logits, s->idx, n, 1.0f, s->prob);
        double cum = 0.0;
        int keep = 0;
        while (keep < n && cum < s->p.top_p)
            cum += s->prob[keep++];
        n = keep > 0 ? keep : 1;
    }
    softmax(logits, s->idx, n, s->p.temp, s->prob);
    double u = mq_rng_uniform(&s->rng), cum = 0.0;
    for (int i = 0; i < n; i++) {
        cum += s->prob[i];
        if (u < cum) return s->idx[i];
    }
    return s->idx[n - 1]; /* u above a sum rounded below 1 */
}

/* Feeds t[0 .. n) into kv (which must hold them), leaving the last one's logits: into an empty
 * cache all at once (the prompt kernels), else one step each. */
static int feed(mq_gpt_t *m, mq_gpt_kv_t *kv, const int32_t *t, size_t n, mq_error_t *err) {
    if (kv->len == 0 && n > 1) return mq_gpt_prefill(m, kv, t, (int)n, err);
    for (size_t i = 0; i < n; i++) {
        int rc = mq_gpt_decode_step(m, kv, t[i], err);
        if (rc) return rc;
    }
    return MQ_OK;
}

int mq_generate(mq_gpt_t *m, const int32_t *prompt, size_t n_prompt, int n_predict,
                const int32_t *stop, size_t n_stop, mq_sampler_t *s, mq_token_fn on_token,
                void *ctx, mq_generation_t *out, mq_error_t *err) {
    memset(out, 0, sizeof *out);
    int V = m->cfg.vocab_size;
    if (n_prompt == 0) return mq_error_set(err, MQ_ERR_ARG, "generate: an empty prompt");
    if (n_predict < 0) return mq_error_set(err, MQ_ERR_ARG, "generate: %d tokens", n_predict);
    if (s->n_vocab != V)
        return mq_error_set(err, MQ_ERR_ARG, "generate: a sampler of %d tokens for a model of %d",
                            s->n_vocab, V);
    for (size_t i = 0; i < n_prompt; i++)
        if (prompt[i] < 0 || prompt[i] >= V)
            return mq_error_set(err, MQ_ERR_ARG,
                                "generate: prompt token %zu is %d, not a token id in [0, %d)", i,
                                prompt[i], V);
    mq_gpt_kv_t kv;
    int rc = mq_gpt_kv_init(&kv, &m->cfg, err);
    if (rc) return rc;
    size_t n_hist = n_prompt, keep = (size_t)(kv.cap > 1 ? kv.cap / 2 : 1);
    int32_t *hist = malloc((n_prompt + (size_t)n_predict) * sizeof *hist);
    if (!hist) {
        mq_gpt_kv_free(&kv);
        return mq_error_set(err, MQ_ERR_NOMEM, "generate: out of memory");
    }
    memcpy(hist, prompt, n_prompt * sizeof *hist);
    /* a prompt longer than the context: its end, as after a shift */
    size_t from = n_prompt > (size_t)kv.cap ? n_prompt - keep : 0;
    out->shifts = from > 0;
    /* not timed, then rewound: the prompt and one step (threads started, weights and code in
     * cache; llama-cli's warm-up run) */
    rc = feed(m, &kv, hist + from, n_prompt - from, err);
    if (rc == MQ_OK && kv.len < kv.cap) rc = mq_gpt_decode_step(m, &kv, hist[from], err);
    kv.len = 0;
    double t0 = mq_now();
    if (rc == MQ_OK) rc = feed(m, &kv, hist + from, n_prompt - from, err);
    out->prompt_seconds = mq_now() - t0;
    out->prompt_tokens = (int)(n_prompt - from);
    for (int i = 0; rc == MQ_OK && i < n_predict; i++) {
        t0 = mq_now();
        int32_t tok = mq_sampler_next(s, kv.logits);
        out->sample_seconds += mq_now() - t0;
        int is_stop = 0;
        for (size_t k = 0; k < n_stop; k++)
            is_stop |= tok == stop[k];
        if (is_stop) {
            out->stopped = 1;
            break;
        }
        hist[n_hist++] = tok;
        out->tokens++;
        if ((on_token && on_token(ctx, tok)) || i == n_predict - 1) break;
        t0 = mq_now();
        if (kv.len == kv.cap) { /* full: the last half again, the new token at its end */
            kv.len = 0;
            rc = feed(m, &kv, hist + n_hist - keep, keep, err);
            out->prompt_seconds += mq_now() - t0;
            out->prompt_tokens += (int)keep;
            out->shifts++;
        } else {
            rc = mq_gpt_decode_step(m, &kv, tok, err);
            out->eval_seconds += mq_now() - t0;
            out->eval_steps++;
        }
    }
    free(hist);
    mq_gpt_kv_free(&kv);
    return rc;
}
