#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "miniquant/eval.h"
#include "miniquant/rng.h"

static void random_model(mq_gpt_t *m, int V, int T) {
    mq_gpt_config_t cfg = {
        .name = "custom", .vocab_size = V, .n_ctx = T, .n_embd = 16, .n_head = 2, .n_layer = 1};
    mq_error_t err = {0};
    cr_assert_eq(mq_gpt_init(m, &cfg, &err), MQ_OK, "%s", err.msg);
    mq_gpt_init_weights(m, 11);
    /* larger output weights than the init so that predictions are far from uniform */
    for (size_t i = 0; i < m->param_sizes[MQ_P_LMW]; i++)
        m->params.lmw[i] *= 20;
}

static int32_t *random_tokens(size_t n, int V) {
    mq_rng_t r;
    mq_rng_seed(&r, 5);
    int32_t *t = malloc(n * sizeof *t);
    for (size_t i = 0; i < n; i++)
        t[i] = (int32_t)mq_rng_below(&r, (uint64_t)V);
    return t;
}

Test(perplexity, nll_from_logits_matches_the_definition) {
    float logits[4] = {1.0f, -2.0f, 0.5f, 3.0f};
    double z = exp(1.0) + exp(-2.0) + exp(0.5) + exp(3.0);
    cr_assert_float_eq(mq_nll_from_logits(logits, 4, 2), -log(exp(0.5) / z), 1e-12);
    float big[2] = {1000.0f, 0.0f}; /* no overflow */
    cr_assert_float_eq(mq_nll_from_logits(big, 2, 0), 0.0, 1e-12);
}

Test(perplexity, uniform_model_has_perplexity_V_under_both_protocols) {
    mq_gpt_t m = {0};
    random_model(&m, 50, 16);
    memset(m.params.lmw, 0, m.param_sizes[MQ_P_LMW] * sizeof(float)); /* logits all zero */
    int32_t *t = random_tokens(203, 50);
    mq_ppl_result_t r;
    mq_error_t err = {0};
    cr_assert_eq(mq_perplexity(&m, t, 203, MQ_PPL_DEFAULT, 0, 4, &r, &err), MQ_OK, "%s", err.msg);
    cr_assert_float_eq(r.ppl, 50.0, 50.0 * 1e-6); /* p = 1/50 held in float */
    cr_assert_eq(r.n_scored, 202);                /* every token but the first */
    cr_assert_eq(r.n_windows, 13);                /* ceil(202 / 16): the last window is shorter */
    cr_assert_eq(mq_perplexity(&m, t, 203, MQ_PPL_LLAMACPP, 0, 4, &r, &err), MQ_OK, "%s", err.msg);
    cr_assert_float_eq(r.ppl, 50.0, 50.0 * 1e-6); /* p = 1/50 held in float */
    cr_assert_eq(r.n_windows, 12);                /* floor(203 / 16) chunks */
    cr_assert_eq(r.n_scored, 12 * (16 - 1 - 8));  /* positions 8..14 of each chunk */
    free(t);
    mq_gpt_free(&m);
}

/* The protocols computed the slow way: one window per forward pass. */
static double naive_ppl(mq_gpt_t *m, const int32_t *t, size_t n, int T, int llamacpp) {
    double sum = 0;
    long count = 0;
    mq_error_t err = {0};
    size_t nw = llamacpp ? n / T : (n - 1 + T - 1) / T;
    for (size_t w = 0; w < nw; w++) {
        size_t start = w * T;
        int len = llamacpp ? T : (int)((n - 1 - start) < (size_t)T ? n - 1 - start : (size_t)T);
        int inp[64];
        for (int i = 0; i < len; i++)
            inp[i] = t[start + i];
        cr_assert_eq(mq_gpt_forward(m, inp, NULL, 1, len, &err), MQ_OK);
        int first = llamacpp ? T / 2 : 0, last = llamacpp ? T - 1 : len;
        for (int i = first; i < last; i++) {
            const float *lg = m->acts.logits + (size_t)i * m->cfg.vocab_size;
            float mx = lg[0];
            for (int v = 1; v < m->cfg.vocab_size; v++)
                mx = lg[v] > mx ? lg[v] : mx;
            double z = 0;
            for (int v = 0; v < m->cfg.vocab_size; v++)
                z += exp((double)lg[v] - mx);
            sum += -((double)lg[t[start + i + 1]] - mx - log(z));
            count++;
        }
    }
    return exp(sum / count);
}

Test(perplexity, batched_protocols_equal_the_naive_computation) {
    mq_gpt_t m = {0};
    random_model(&m, 40, 16);
    int32_t *t = random_tokens(301, 40);
    mq_error_t err = {0};
    for (int llamacpp = 0; llamacpp < 2; llamacpp++) {
        double want = naive_ppl(&m, t, 301, 16, llamacpp);
        cr_assert(fabs(want - 40) > 1, "the model should not be uniform (%g)", want);
        for (int batch = 1; batch <= 7; batch += 3) {
            mq_ppl_result_t r;
            cr_assert_eq(mq_perplexity(&m, t, 301, llamacpp ? MQ_PPL_LLAMACPP : MQ_PPL_DEFAULT, 0,
                                       batch, &r, &err),
                         MQ_OK, "%s", err.msg);
            cr_assert(fabs(r.ppl - want) / want < 1e-5, "protocol %d batch %d: %g vs %g", llamacpp,
                      batch, r.ppl, want);
        }
    }
    free(t);
    mq_gpt_free(&m);
}

Test(perplexity, rejects_bad_input) {
    mq_gpt_t m = {0};
    random_model(&m, 40, 16);
    int32_t t[40] = {0};
    mq_ppl_result_t r;
    mq_error_t err = {0};
    cr_assert_eq(mq_perplexity(&m, t, 20, MQ_PPL_LLAMACPP, 0, 4, &r, &err),
                 MQ_ERR_ARG); /* < 2 ctx */
    t[3] = 40;
    cr_assert_eq(mq_perplexity(&m, t, 40, MQ_PPL_DEFAULT, 0, 4, &r, &err), MQ_ERR_ARG);
    cr_assert(strstr(err.msg, "outside the vocabulary"));
    mq_ppl_protocol_t p;
    cr_assert_eq(mq_ppl_protocol_parse("wikitext", &p, &err), MQ_ERR_ARG);
    cr_assert(strstr(err.msg, "default, llamacpp"));
    mq_gpt_free(&m);
}

/* KL(P_base || P) of one row of logits each, the definition in double. */
static double kl_row(const float *a, const float *b, int V) {
    double za = 0, zb = 0, kl = 0;
    for (int v = 0; v < V; v++) {
        za += exp((double)a[v]);
        zb += exp((double)b[v]);
    }
    for (int v = 0; v < V; v++) {
        double pa = exp((double)a[v]) / za, pb = exp((double)b[v]) / zb;
        kl += pa * log(pa / pb);
    }
    return kl;
}

/* A model against itself is 0 everywhere; against a perturbed copy, the mean KL divergence
 * over the scored tokens of both protocols equals the definition computed token by token from
 * one window at a time, and the perplexities are each model's own. */
Test(perplexity, kl_divergence_from_a_base_model) {
    const int V = 40, T = 16;
    mq_gpt_t a = {0}, b = {0};
    random_model(&a, V, T);
    random_model(&b, V, T);
    mq_rng_t r;
    mq_rng_seed(&r, 9);
    for (size_t i = 0; i < b.param_sizes[MQ_P_LMW]; i++)
        b.params.lmw[i] += 0.3f * mq_rng_normal(&r);
    size_t n = 75;
    int32_t *t = random_tokens(n, V);
    mq_error_t err = {0};
    mq_kld_result_t k;
    cr_assert_eq(mq_kl_divergence(&a, &a, t, n, MQ_PPL_DEFAULT, 0, 3, &k, &err), MQ_OK, "%s",
                 err.msg);
    cr_assert(k.mean == 0.0 && k.max == 0.0 && k.same_top == 1.0 && k.ln_ppl_ratio == 0.0);
    for (int proto = 0; proto < 2; proto++) {
        cr_assert_eq(mq_kl_divergence(&a, &b, t, n, (mq_ppl_protocol_t)proto, 0, 3, &k, &err),
                     MQ_OK, "%s", err.msg);
        double sum = 0;
        int64_t count = 0;
        size_t n_win = proto ? n / T : (n - 1 + T - 1) / T;
        for (size_t w = 0; w < n_win; w++) {
            size_t start = w * T;
            int len = proto ? T : (int)(n - 1 - start < (size_t)T ? n - 1 - start : (size_t)T);
            int in[16];
            for (int i = 0; i < len; i++)
                in[i] = t[start + (size_t)i];
            cr_assert_eq(mq_gpt_forward(&a, in, NULL, 1, len, &err), MQ_OK);
            float *la = malloc((size_t)len * V * sizeof *la);
            memcpy(la, a.acts.logits, (size_t)len * V * sizeof *la);
            cr_assert_eq(mq_gpt_forward(&b, in, NULL, 1, len, &err), MQ_OK);
            for (int p = proto ? T / 2 : 0; p < (proto ? T - 1 : len); p++, count++)
                sum += kl_row(la + (size_t)p * V, b.acts.logits + (size_t)p * V, V);
            free(la);
        }
        cr_assert_eq(k.n_scored, count);
        /* batches of 3 windows and single windows may differ in the last bits of a logit */
        cr_assert(fabs(k.mean - sum / (double)count) <= 1e-6 * sum / (double)count,
                  "protocol %d: %.12g, by hand %.12g", proto, k.mean, sum / (double)count);
        cr_assert(k.mean > 0 && k.median <= k.p99 && k.p99 <= k.p999 && k.p999 <= k.max);
        mq_ppl_result_t pa, pb;
        cr_assert_eq(mq_perplexity(&a, t, n, (mq_ppl_protocol_t)proto, 0, 3, &pa, &err), MQ_OK);
        cr_assert_eq(mq_perplexity(&b, t, n, (mq_ppl_protocol_t)proto, 0, 3, &pb, &err), MQ_OK);
        cr_assert(fabs(k.ppl_base / pa.ppl - 1) < 1e-6 && fabs(k.ppl / pb.ppl - 1) < 1e-6,
                  "%g %g, %g %g", k.ppl_base, pa.ppl, k.ppl, pb.ppl);
        cr_assert(fabs(k.ln_ppl_ratio - log(pb.ppl / pa.ppl)) < 1e-6); /* float softmax there */
    }
    /* models of other vocabularies are refused */
    mq_gpt_t c = {0};
    random_model(&c, V + 1, T);
    cr_assert_eq(mq_kl_divergence(&a, &c, t, n, MQ_PPL_DEFAULT, 0, 3, &k, &err), MQ_ERR_ARG);
    cr_assert(strstr(err.msg, "vocabulary"), "%s", err.msg);
    free(t);
    mq_gpt_free(&a);
    mq_gpt_free(&b);
    mq_gpt_free(&c);
}
