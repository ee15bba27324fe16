/* Tests of MiniGPT as a whole: the gradient of the full model against finite differences, a
 * short training run that must learn, bitwise determinism, the Linear replacement hook, presets
 * and argument checks. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "miniquant/layers.h"
#include "miniquant/model.h"
#include "miniquant/rng.h"

static mq_gpt_config_t custom_config(int V, int maxT, int C, int NH, int L) {
    mq_gpt_config_t cfg;
    memset(&cfg, 0, sizeof cfg);
    strcpy(cfg.name, "custom");
    cfg.vocab_size = V;
    cfg.n_ctx = maxT;
    cfg.n_embd = C;
    cfg.n_head = NH;
    cfg.n_layer = L;
    return cfg;
}

static void init_model(mq_gpt_t *m, const mq_gpt_config_t *cfg, uint64_t seed) {
    mq_error_t err = {0};
    int rc = mq_gpt_init(m, cfg, &err);
    cr_assert_eq(rc, MQ_OK, "%s", err.msg);
    mq_gpt_init_weights(m, seed);
}

static void random_tokens(mq_rng_t *r, int *tok, int n, int V) {
    for (int i = 0; i < n; i++)
        tok[i] = (int)mq_rng_below(r, (uint64_t)V);
}

/* ---------------------------------------------------------------------------------------------
 * gradient of the whole model */

static double model_loss(mq_gpt_t *m, const int *x, const int *y, int B, int T) {
    mq_error_t err = {0};
    int rc = mq_gpt_forward(m, x, y, B, T, &err);
    cr_assert_eq(rc, MQ_OK, "%s", err.msg);
    /* in double from the per-position losses, to keep the differences clean */
    double s = 0.0;
    for (int i = 0; i < B * T; i++)
        s += m->acts.losses[i];
    return s / (B * T);
}

/* For every parameter tensor, the analytic gradient of the mean loss at a sample of elements
 * (the largest gradients and random ones) against central differences with step 5e-3. Error
 * measure: max |analytic - numeric| over the sample, relative to the tensor's largest analytic
 * gradient; bound 1e-2. Weights are drawn larger than GPT-2's init so that every tensor's
 * gradient is well above float rounding of the loss. */
static void gradient_check(const mq_gpt_config_t *cfg_in) {
    mq_gpt_config_t cfg = *cfg_in;
    mq_gpt_t m;
    init_model(&m, &cfg, 7);
    mq_rng_t r;
    mq_rng_seed(&r, 99);
    float *p = m.params_memory;
    for (int i = 0; i < MQ_NUM_PARAMS; i++) {
        int ln_weight = i == MQ_P_LN1W || i == MQ_P_LN2W || i == MQ_P_LNFW;
        float std = mq_gpt_param_is_matrix(i) ? 0.4f : 0.1f;
        for (size_t j = 0; j < m.param_sizes[i]; j++)
            p[j] = (ln_weight ? 1.0f : 0.0f) + std * mq_rng_normal(&r);
        p += m.param_sizes[i];
    }
    enum { B = 2, T = 5 };
    int x[B * T], y[B * T];
    random_tokens(&r, x, B * T, cfg.vocab_size);
    random_tokens(&r, y, B * T, cfg.vocab_size);

    mq_error_t err = {0};
    model_loss(&m, x, y, B, T);
    cr_assert_eq(mq_gpt_zero_grad(&m, &err), MQ_OK);
    cr_assert_eq(mq_gpt_backward(&m, &err), MQ_OK, "%s", err.msg);
    float *grads = malloc(m.num_params * sizeof(float));
    memcpy(grads, m.grads_memory, m.num_params * sizeof(float));

    const float eps = 5e-3f;
    size_t off = 0;
    for (int i = 0; i < MQ_NUM_PARAMS; i++) {
        size_t n = m.param_sizes[i];
        if (n == 0) continue; /* a tensor of the other architecture */
        float *w = m.params_memory + off;
        const float *g = grads + off;
        double scale = 0.0;
        size_t top[3] = {0, 0, 0};
        for (size_t j = 0; j < n; j++) {
            scale = fmax(scale, fabs(g[j]));
            if (fabsf(g[j]) > fabsf(g[top[0]]))
                top[2] = top[1], top[1] = top[0], top[0] = j;
            else if (fabsf(g[j]) > fabsf(g[top[1]]))
                top[2] = top[1], top[1] = j;
            else if (fabsf(g[j]) > fabsf(g[top[2]]))
                top[2] = j;
        }
        cr_assert(scale > 1e-4, "%s: gradient too small to test (%g)", mq_gpt_param_name(i), scale);
        double maxdiff = 0.0;
        for (int k = 0; k < 12; k++) {
            size_t j = k < 3 ? top[k] : (size_t)mq_rng_below(&r, n);
            float old = w[j];
            w[j] = old + eps;
            double lp = model_loss(&m, x, y, B, T);
            w[j] = old - eps;
            double lm = model_loss(&m, x, y, B, T);
            w[j] = old;
            double num = (lp - lm) / ((double)(old + eps) - (double)(old - eps));
            maxdiff = fmax(maxdiff, fabs(num - g[j]));
        }
        cr_expect(maxdiff / scale < 1e-2, "%s: relative gradient error %.3g (scale %g)",
                  mq_gpt_param_name(i), maxdiff / scale, scale);
        off += n;
    }

    /* backward accumulates; zero_grad resets */
    model_loss(&m, x, y, B, T);
    cr_assert_eq(mq_gpt_backward(&m, &err), MQ_OK);
    for (size_t j = 0; j < m.num_params; j++)
        cr_assert(fabsf(m.grads_memory[j] - 2.0f * grads[j]) <= 1e-5f * (1e-3f + fabsf(grads[j])),
                  "gradient %zu did not accumulate", j);
    cr_assert_eq(mq_gpt_zero_grad(&m, &err), MQ_OK);
    for (size_t j = 0; j < m.num_params; j++)
        cr_assert_eq(m.grads_memory[j], 0.0f);
    free(grads);
    mq_gpt_free(&m);
}

Test(gpt, gradient_matches_finite_differences) {
    mq_gpt_config_t cfg = custom_config(17, 8, 8, 2, 2);
    gradient_check(&cfg);
}

/* MiniLlama: grouped-query attention (4 heads sharing 2 of keys and values), RoPE on part of
 * each head, SwiGLU of an MLP width that is no multiple of C. */
Test(llama, gradient_matches_finite_differences) {
    mq_gpt_config_t cfg = custom_config(17, 8, 16, 4, 2);
    cfg.arch = MQ_ARCH_LLAMA;
    cfg.n_head_kv = 2;
    cfg.n_ff = 24;
    cfg.n_rot = 2;
    gradient_check(&cfg);
}

/* ---------------------------------------------------------------------------------------------
 * training */

/* A token stream that is pseudo-random but learnable: every token determines the next through
 * a fixed random permutation, so a bigram model reaches zero loss. */
static int *make_stream(int n, int V, uint64_t seed) {
    mq_rng_t r;
    mq_rng_seed(&r, seed);
    int *perm = malloc(V * sizeof(int)), *s = malloc(n * sizeof(int));
    for (int i = 0; i < V; i++)
        perm[i] = i;
    for (int i = V - 1; i > 0; i--) {
        int j = (int)mq_rng_below(&r, (uint64_t)i + 1), t = perm[i];
        perm[i] = perm[j], perm[j] = t;
    }
    s[0] = 0;
    for (int i = 1; i < n; i++)
        s[i] = perm[s[i - 1]];
    free(perm);
    return s;
}

/* Trains for `steps` AdamW steps on windows of the stream; returns the losses per step. */
static void train(mq_gpt_t *m, const int *stream, int n, int B, int T, int steps, uint64_t seed,
                  float *losses) {
    mq_rng_t r;
    mq_rng_seed(&r, seed);
    int *x = malloc(B * T * sizeof(int)), *y = malloc(B * T * sizeof(int));
    mq_error_t err = {0};
    for (int s = 0; s < steps; s++) {
        for (int b = 0; b < B; b++) {
            int start = (int)mq_rng_below(&r, (uint64_t)(n - T - 1));
            memcpy(x + b * T, stream + start, T * sizeof(int));
            memcpy(y + b * T, stream + start + 1, T * sizeof(int));
        }
        cr_assert_eq(mq_gpt_forward(m, x, y, B, T, &err), MQ_OK, "%s", err.msg);
        losses[s] = m->mean_loss;
        cr_assert_eq(mq_gpt_zero_grad(m, &err), MQ_OK);
        cr_assert_eq(mq_gpt_backward(m, &err), MQ_OK, "%s", err.msg);
        float norm = mq_gpt_clip_grad_norm(m, 1.0f);
        cr_assert(isfinite(norm) && norm > 0.0f);
        cr_assert_eq(mq_gpt_adamw_update(m, 3e-3f, 0.9f, 0.95f, 1e-8f, 0.1f, s + 1, &err), MQ_OK,
                     "%s", err.msg);
    }
    free(x);
    free(y);
}

Test(gpt, training_lowers_the_loss) {
    mq_error_t err = {0};
    mq_gpt_config_t cfg;
    cr_assert_eq(mq_gpt_preset("tiny", 32, &cfg, &err), MQ_OK, "%s", err.msg);
    mq_gpt_t m;
    init_model(&m, &cfg, 1);
    enum { N = 2048, B = 4, T = 32, STEPS = 100 };
    int *stream = make_stream(N, cfg.vocab_size, 5);
    float losses[STEPS];
    train(&m, stream, N, B, T, STEPS, 11, losses);
    /* the initial loss is about log(32) = 3.47 */
    cr_assert(fabsf(losses[0] - logf(32.0f)) < 0.3f, "initial loss %g", losses[0]);
    float last = 0.0f;
    for (int s = STEPS - 5; s < STEPS; s++)
        last += losses[s] / 5;
    cr_assert(last < 0.25f * losses[0] && last < 0.5f, "loss went from %g to %g", losses[0], last);
    free(stream);
    mq_gpt_free(&m);
}

Test(gpt, training_is_deterministic) {
    mq_error_t err = {0};
    mq_gpt_config_t cfg;
    cr_assert_eq(mq_gpt_preset("tiny", 32, &cfg, &err), MQ_OK);
    /* B*T = 256 rows: large enough for the matmuls to be split among threads */
    enum { N = 1024, B = 8, T = 32, STEPS = 8 };
    int *stream = make_stream(N, cfg.vocab_size, 6);
    mq_gpt_t m[2];
    float losses[2][STEPS];
    for (int k = 0; k < 2; k++) {
        init_model(&m[k], &cfg, 42);
        train(&m[k], stream, N, B, T, STEPS, 3, losses[k]);
    }
    size_t bytes = m[0].num_params * sizeof(float);
    cr_assert(memcmp(losses[0], losses[1], sizeof losses[0]) == 0, "losses differ");
    cr_assert(memcmp(m[0].params_memory, m[1].params_memory, bytes) == 0, "weights differ");
    cr_assert(memcmp(m[0].grads_memory, m[1].grads_memory, bytes) == 0, "gradients differ");
    cr_assert(memcmp(m[0].m_memory, m[1].m_memory, bytes) == 0, "AdamW moments differ");
    cr_assert(memcmp(m[0].v_memory, m[1].v_memory, bytes) == 0, "AdamW moments differ");
    /* and a different seed gives different weights */
    mq_gpt_t other;
    init_model(&other, &cfg, 43);
    cr_assert(memcmp(other.params_memory, m[0].params_memory, bytes) != 0);
    mq_gpt_free(&other);
    mq_gpt_free(&m[0]);
    mq_gpt_free(&m[1]);
    free(stream);
}

/* ---------------------------------------------------------------------------------------------
 * the Linear replacement hook */

struct hook {
    mq_gpt_t *m;
    float add; /* added to every output of lm_head */
    int calls[MQ_NUM_PARAMS];
    int fail_on; /* a param id whose replacement fails, or -1 */
    int bad_shape;
};

static int hook_linear(void *ctx, mq_linear_id_t id, float *out, const float *inp,
                       const float *bias, int N, int C, int OC) {
    struct hook *h = ctx;
    h->calls[id.param]++;
    if (id.param == h->fail_on) return MQ_ERR_UNSUPPORTED;
    float *b = NULL;
    int oc = 0, c = 0;
    float *w = mq_gpt_linear_weight(h->m, id, &b, &oc, &c);
    if (!w || oc != OC || c != C || b != bias) {
        h->bad_shape++;
        return MQ_ERR_ARG;
    }
    mq_matmul_forward(out, inp, w, bias, N, C, OC);
    if (id.param == MQ_P_LMW)
        for (size_t i = 0; i < (size_t)N * OC; i++)
            out[i] += h->add;
    return MQ_OK;
}

Test(gpt, linear_hook) {
    mq_gpt_config_t cfg = custom_config(23, 16, 16, 2, 3);
    mq_gpt_t m;
    init_model(&m, &cfg, 3);
    enum { B = 2, T = 9 };
    int x[B * T], y[B * T];
    mq_rng_t r;
    mq_rng_seed(&r, 4);
    random_tokens(&r, x, B * T, cfg.vocab_size);
    random_tokens(&r, y, B * T, cfg.vocab_size);
    mq_error_t err = {0};
    size_t nl = (size_t)B * T * cfg.vocab_size;

    cr_assert_eq(mq_gpt_forward(&m, x, y, B, T, &err), MQ_OK);
    float *ref = malloc(nl * sizeof(float));
    memcpy(ref, m.acts.logits, nl * sizeof(float));
    float ref_loss = m.mean_loss;

    struct hook h = {.m = &m, .fail_on = -1};
    m.linear_fn = hook_linear;
    m.linear_ctx = &h;
    cr_assert_eq(mq_gpt_forward(&m, x, y, B, T, &err), MQ_OK, "%s", err.msg);
    cr_assert_eq(h.bad_shape, 0);
    cr_assert(memcmp(ref, m.acts.logits, nl * sizeof(float)) == 0,
              "an identical replacement changed the logits");
    cr_assert_eq(m.mean_loss, ref_loss);
    int per_layer[] = {MQ_P_QKVW, MQ_P_ATTPROJW, MQ_P_FCW, MQ_P_FCPROJW};
    for (int i = 0; i < 4; i++)
        cr_assert_eq(h.calls[per_layer[i]], cfg.n_layer);
    cr_assert_eq(h.calls[MQ_P_LMW], 1);

    /* a replacement that shifts every logit leaves the probabilities but not the logits */
    h.add = 0.5f;
    cr_assert_eq(mq_gpt_forward(&m, x, y, B, T, &err), MQ_OK);
    for (size_t i = 0; i < nl; i++)
        cr_assert_float_eq(m.acts.logits[i], ref[i] + 0.5f, 1e-5f, "logit %zu", i);
    cr_assert_float_eq(m.mean_loss, ref_loss, 1e-4f);

    /* errors of the replacement reach the caller, naming the Linear */
    h.add = 0.0f;
    h.fail_on = MQ_P_FCPROJW;
    cr_assert_eq(mq_gpt_forward(&m, x, y, B, T, &err), MQ_ERR_UNSUPPORTED);
    cr_assert(strstr(err.msg, "fcprojw"), "%s", err.msg);
    cr_assert_eq(m.have_targets, 0);
    cr_assert_neq(mq_gpt_backward(&m, &err), MQ_OK);

    m.linear_fn = NULL;
    cr_assert_eq(mq_gpt_forward(&m, x, y, B, T, &err), MQ_OK);
    cr_assert(memcmp(ref, m.acts.logits, nl * sizeof(float)) == 0);
    free(ref);
    mq_gpt_free(&m);
}

/* ---------------------------------------------------------------------------------------------
 * forward contract */

Test(gpt, forward_without_targets_and_changing_shapes) {
    mq_gpt_config_t cfg = custom_config(19, 12, 16, 4, 2);
    mq_gpt_t m;
    init_model(&m, &cfg, 8);
    mq_rng_t r;
    mq_rng_seed(&r, 9);
    int x[4 * 12], y[4 * 12];
    random_tokens(&r, x, 4 * 12, cfg.vocab_size);
    random_tokens(&r, y, 4 * 12, cfg.vocab_size);
    mq_error_t err = {0};
    int V = cfg.vocab_size;

    /* a small batch, then a larger one (activations grow), then the small one again */
    cr_assert_eq(mq_gpt_forward(&m, x, y, 1, 5, &err), MQ_OK);
    float small[5 * 19], loss_small = m.mean_loss;
    memcpy(small, m.acts.logits, sizeof small);
    for (int i = 0; i < 5; i++) {
        double p = m.acts.probs[i * V + y[i]];
        cr_assert_float_eq(m.acts.losses[i], -log(p), 1e-4);
    }
    cr_assert_eq(mq_gpt_forward(&m, x, y, 4, 12, &err), MQ_OK);
    cr_assert_eq(m.B, 4);
    cr_assert_eq(m.T, 12);
    cr_assert(m.mean_loss > 0);
    /* the first positions of the first row see the same context as before */
    for (int i = 0; i < 5 * V; i++)
        cr_assert_float_eq(m.acts.logits[i], small[i], 1e-5f);
    cr_assert_eq(mq_gpt_forward(&m, x, NULL, 1, 5, &err), MQ_OK);
    cr_assert_eq(m.mean_loss, -1.0f);
    cr_assert_eq(m.have_targets, 0);
    cr_assert(memcmp(small, m.acts.logits, sizeof small) == 0);
    for (int i = 0; i < 5; i++) {
        double s = 0;
        for (int v = 0; v < V; v++)
            s += m.acts.probs[i * V + v];
        cr_assert_float_eq(s, 1.0, 1e-5);
    }
    cr_assert_eq(mq_gpt_backward(&m, &err), MQ_ERR_ARG, "backward needs targets");
    cr_assert_eq(mq_gpt_forward(&m, x, y, 1, 5, &err), MQ_OK);
    cr_assert_eq(m.mean_loss, loss_small);

    /* bad arguments */
    cr_assert_eq(mq_gpt_forward(&m, x, y, 1, 13, &err), MQ_ERR_ARG);
    cr_assert_eq(mq_gpt_forward(&m, x, y, 0, 5, &err), MQ_ERR_ARG);
    int bad[3] = {1, 19, 2};
    cr_assert_eq(mq_gpt_forward(&m, bad, NULL, 1, 3, &err), MQ_ERR_ARG);
    cr_assert(strstr(err.msg, "inputs[1]"), "%s", err.msg);
    bad[1] = -1;
    cr_assert_eq(mq_gpt_forward(&m, x, bad, 1, 3, &err), MQ_ERR_ARG);
    cr_assert(strstr(err.msg, "targets[1]"), "%s", err.msg);
    mq_gpt_free(&m);
}

/* ---------------------------------------------------------------------------------------------
 * configuration, parameters, initialisation */

Test(gpt, presets_and_config_check) {
    mq_error_t err = {0};
    mq_gpt_config_t cfg;
    cr_assert_eq(mq_gpt_preset("tiny", 300, &cfg, &err), MQ_OK);
    cr_assert_str_eq(cfg.name, "tiny");
    cr_assert(cfg.n_layer == 2 && cfg.n_embd == 64 && cfg.n_head == 2 && cfg.n_ctx == 64);
    cr_assert_eq(cfg.vocab_size, 300);
    cr_assert_eq(mq_gpt_preset("default", 4096, &cfg, &err), MQ_OK);
    cr_assert(cfg.n_layer == 4 && cfg.n_embd == 256 && cfg.n_head == 4 && cfg.n_ctx == 128);
    cr_assert_eq(mq_gpt_preset("huge", 4096, &cfg, &err), MQ_ERR_ARG);
    cr_assert(strstr(err.msg, "huge") && strstr(err.msg, "tiny") && strstr(err.msg, "default"),
              "%s", err.msg);
    cr_assert_eq(mq_gpt_preset("tiny", 0, &cfg, &err), MQ_ERR_ARG);

    mq_gpt_config_t c = custom_config(10, 8, 12, 5, 1);
    cr_assert_eq(mq_gpt_config_check(&c, &err), MQ_ERR_ARG, "C not divisible by NH");
    c = custom_config(10, 8, 12, 4, 0);
    cr_assert_eq(mq_gpt_config_check(&c, &err), MQ_ERR_ARG);
    c = custom_config(10, -1, 12, 4, 1);
    cr_assert_eq(mq_gpt_config_check(&c, &err), MQ_ERR_ARG);
    c = custom_config(10, 8, 12, 4, 1);
    cr_assert_eq(mq_gpt_config_check(&c, &err), MQ_OK);
    mq_gpt_t m;
    c.n_head = 0;
    cr_assert_eq(mq_gpt_init(&m, &c, &err), MQ_ERR_ARG);
    mq_gpt_free(&m);
}

Test(gpt, parameters_and_init) {
    mq_gpt_config_t cfg = custom_config(500, 32, 64, 4, 3);
    mq_gpt_t m;
    init_model(&m, &cfg, 5);
    size_t V = 500, T = 32, C = 64, L = 3;
    size_t want = V * C + T * C + L * (12 * C * C + 13 * C) + 2 * C + V * C;
    cr_assert_eq(m.num_params, want);
    cr_assert_eq(m.param_sizes[MQ_P_QKVW], L * 3 * C * C);
    cr_assert_eq(m.params.lmw + V * C, m.params_memory + m.num_params);
    cr_assert_str_eq(mq_gpt_param_name(MQ_P_ATTPROJW), "attprojw");
    cr_assert_str_eq(mq_gpt_param_name(MQ_P_LMW), "lmw");
    cr_assert(mq_gpt_param_is_matrix(MQ_P_WPE) && !mq_gpt_param_is_matrix(MQ_P_QKVB) &&
              !mq_gpt_param_is_matrix(MQ_P_LNFW));

    /* N(0, 0.02), the residual projections scaled by 1/sqrt(2L); LayerNorm 1 and 0; biases 0 */
    float *p = m.params_memory;
    for (int i = 0; i < MQ_NUM_PARAMS; i++) {
        size_t n = m.param_sizes[i];
        if (n == 0) continue; /* a tensor of the other architecture */
        double s = 0, s2 = 0;
        for (size_t j = 0; j < n; j++)
            s += p[j], s2 += (double)p[j] * p[j];
        double mean = s / n, std = sqrt(s2 / n - mean * mean);
        if (mq_gpt_param_is_matrix(i)) {
            double target = 0.02;
            if (i == MQ_P_ATTPROJW || i == MQ_P_FCPROJW) target /= sqrt(2.0 * L);
            cr_assert(fabs(std - target) < 0.1 * target, "%s std %g", mq_gpt_param_name(i), std);
            cr_assert(fabs(mean) < 0.1 * target, "%s mean %g", mq_gpt_param_name(i), mean);
        } else {
            int ln_weight = i == MQ_P_LN1W || i == MQ_P_LN2W || i == MQ_P_LNFW;
            for (size_t j = 0; j < n; j++)
                cr_assert_eq(p[j], ln_weight ? 1.0f : 0.0f);
        }
        p += n;
    }

    /* the Linear accessor */
    float *b;
    int oc, c;
    float *w = mq_gpt_linear_weight(&m, (mq_linear_id_t){MQ_P_FCPROJW, 2}, &b, &oc, &c);
    cr_assert(w == m.params.fcprojw + 2 * C * 4 * C && b == m.params.fcprojb + 2 * C);
    cr_assert(oc == (int)C && c == (int)(4 * C));
    w = mq_gpt_linear_weight(&m, (mq_linear_id_t){MQ_P_LMW, 0}, &b, &oc, &c);
    cr_assert(w == m.params.lmw && b == NULL && oc == (int)V && c == (int)C);
    cr_assert_null(mq_gpt_linear_weight(&m, (mq_linear_id_t){MQ_P_QKVW, 3}, NULL, NULL, NULL));
    cr_assert_null(mq_gpt_linear_weight(&m, (mq_linear_id_t){MQ_P_LN1W, 0}, NULL, NULL, NULL));

    /* same seed, same weights */
    mq_gpt_t m2;
    init_model(&m2, &cfg, 5);
    cr_assert(memcmp(m.params_memory, m2.params_memory, m.num_params * sizeof(float)) == 0);
    mq_gpt_free(&m2);
    mq_gpt_free(&m);
}

Test(gpt, adamw_and_clipping) {
    mq_gpt_config_t cfg = custom_config(11, 4, 8, 2, 1);
    mq_gpt_t m;
    init_model(&m, &cfg, 2);
    mq_error_t err = {0};
    cr_assert_eq(mq_gpt_adamw_update(&m, 1e-3f, 0.9f, 0.99f, 1e-8f, 0.0f, 1, &err), MQ_ERR_ARG,
                 "no gradients yet");
    cr_assert_eq(mq_gpt_zero_grad(&m, &err), MQ_OK);
    cr_assert_eq(mq_gpt_clip_grad_norm(&m, 1.0f), 0.0f);
    for (size_t i = 0; i < m.num_params; i++)
        m.grads_memory[i] = (i % 2 ? 3.0f : -4.0f);
    double norm = sqrt((double)m.num_params * 12.5);
    cr_assert_float_eq(mq_gpt_clip_grad_norm(&m, 0.0f), norm, 1e-4 * norm, "no clipping at 0");
    cr_assert_float_eq(mq_gpt_clip_grad_norm(&m, 2.0f), norm, 1e-4 * norm);
    cr_assert_float_eq(mq_gpt_clip_grad_norm(&m, 1e9f), 2.0f, 1e-5f);

    /* the first AdamW step moves every parameter by about lr against its gradient's sign, and
     * decays only the matrices */
    float *before = malloc(m.num_params * sizeof(float));
    memcpy(before, m.params_memory, m.num_params * sizeof(float));
    float lr = 1e-2f, wd = 0.5f;
    cr_assert_eq(mq_gpt_adamw_update(&m, lr, 0.9f, 0.99f, 1e-8f, wd, 1, &err), MQ_OK);
    size_t off = 0;
    for (int p = 0; p < MQ_NUM_PARAMS; p++) {
        float d = mq_gpt_param_is_matrix(p) ? wd : 0.0f;
        for (size_t j = 0; j < m.param_sizes[p]; j++) {
            size_t i = off + j;
            float sign = m.grads_memory[i] > 0 ? 1.0f : -1.0f;
            float want = before[i] - lr * (sign + d * before[i]);
            cr_assert_float_eq(m.params_memory[i], want, 1e-6f, "%s[%zu]", mq_gpt_param_name(p), j);
        }
        off += m.param_sizes[p];
    }
    cr_assert_eq(mq_gpt_adamw_update(&m, lr, 0.9f, 0.99f, 1e-8f, wd, 0, &err), MQ_ERR_ARG);
    free(before);
    mq_gpt_free(&m);
}
