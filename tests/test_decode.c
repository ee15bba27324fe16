/* Tests of KV-cached decoding (src/model/decode.c): every step's logits are the full forward's
 * at that position, in FP32 and through a quantized model's fused kernels; rewinding repeats a
 * step exactly; a full cache and bad tokens are refused. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "miniquant/model.h"
#include "models.h"
#include "miniquant/qmodel.h"
#include "miniquant/rng.h"

/* V = 50, maxT = 12; llama: RoPE on 4 of each head's 8 dimensions */
static void arch_model(mq_gpt_t *m, int arch) {
    random_model(m, arch, 50, 12, 4, 11);
}

static void small_model(mq_gpt_t *m) {
    arch_model(m, MQ_ARCH_GPT2);
}

/* max |decode - forward| over every position's logits, relative to the largest logit. */
static double decode_vs_forward(mq_gpt_t *m) {
    int T = m->cfg.n_ctx, V = m->cfg.vocab_size;
    int tok[64];
    mq_rng_t r;
    mq_rng_seed(&r, 3);
    for (int t = 0; t < T; t++)
        tok[t] = (int)mq_rng_below(&r, (uint64_t)V);
    mq_error_t err = {0};
    cr_assert_eq(mq_gpt_forward(m, tok, NULL, 1, T, &err), MQ_OK, "%s", err.msg);
    float *full = malloc((size_t)T * V * sizeof *full);
    cr_assert(full);
    memcpy(full, m->acts.logits, (size_t)T * V * sizeof *full);
    mq_gpt_kv_t kv;
    cr_assert_eq(mq_gpt_kv_init(&kv, &m->cfg, &err), MQ_OK, "%s", err.msg);
    double worst = 0.0, scale = 0.0;
    for (int t = 0; t < T; t++) {
        cr_assert_eq(mq_gpt_decode_step(m, &kv, tok[t], &err), MQ_OK, "%s", err.msg);
        cr_assert_eq(kv.len, t + 1);
        for (int v = 0; v < V; v++) {
            double d = fabs((double)kv.logits[v] - full[(size_t)t * V + v]);
            worst = d > worst ? d : worst;
            scale = fabs(full[(size_t)t * V + v]) > scale ? fabs(full[(size_t)t * V + v]) : scale;
        }
    }
    /* the cache is full now */
    cr_assert_eq(mq_gpt_decode_step(m, &kv, tok[0], &err), MQ_ERR_ARG);
    mq_gpt_kv_free(&kv);
    free(full);
    cr_assert(scale > 0.1, "logits too small to compare (%g)", scale);
    return worst / scale;
}

Test(decode, matches_forward_fp32) {
    for (int arch = 0; arch < MQ_NUM_ARCHS; arch++) {
        mq_gpt_t m;
        arch_model(&m, arch);
        double e = decode_vs_forward(&m);
        cr_assert(e < 1e-5, "architecture %d: relative difference %g", arch, e);
        mq_gpt_free(&m);
    }
}

/* The logits of a full forward of m on a fixed sequence (T x V, malloc'ed). */
static float *forward_logits(mq_gpt_t *m) {
    int T = m->cfg.n_ctx, V = m->cfg.vocab_size, tok[64];
    for (int t = 0; t < T; t++)
        tok[t] = (5 * t + 2) % V;
    mq_error_t err = {0};
    cr_assert_eq(mq_gpt_forward(m, tok, NULL, 1, T, &err), MQ_OK, "%s", err.msg);
    float *l = malloc((size_t)T * V * sizeof *l);
    cr_assert(l);
    memcpy(l, m->acts.logits, (size_t)T * V * sizeof *l);
    return l;
}

/* max |a - b| over n logits, relative to the largest of a's. */
static double logits_gap(const float *a, const float *b, size_t n) {
    double worst = 0.0, scale = 0.0;
    for (size_t i = 0; i < n; i++) {
        worst = fmax(worst, fabs((double)a[i] - b[i]));
        scale = fmax(scale, fabs(a[i]));
    }
    return worst / scale;
}

/* Through the quantized model's fused kernels (one x row here, T rows in forward; Q8_0, Q4_0,
 * packed and F16 weights): FP32 summation order only. The quantized model is its own: its
 * logits are not the FP32 model's, and the FP32 model still decodes as before. */
static void quantized_decode(int arch) {
    static const char *const schemes[] = {"int8_per_channel", "int4_g32", "fp16", "nf4_g16",
                                          "nf3_g32",          "int3_g16", NULL};
    mq_gpt_t m;
    arch_model(&m, arch);
    size_t n = (size_t)m.cfg.n_ctx * m.cfg.vocab_size;
    float *fp32 = forward_logits(&m);
    for (int k = 0; schemes[k]; k++) {
        mq_scheme_t s;
        mq_qmodel_t q;
        mq_error_t err = {0};
        cr_assert_eq(mq_scheme_parse(schemes[k], &s, &err), MQ_OK);
        cr_assert_eq(mq_qmodel_quantize(&q, &m, &s, NULL, &err), MQ_OK, "%s", err.msg);
        q.fused = 1;
        double e = decode_vs_forward(q.model);
        cr_assert(e < 1e-5, "%s: relative difference %g", schemes[k], e);
        float *ql = forward_logits(q.model);
        double gap = logits_gap(fp32, ql, n);
        cr_assert(gap > 1e-4, "%s: the quantized logits are the FP32 ones (%g)", schemes[k], gap);
        free(ql);
        mq_qmodel_free(&q);
        float *after = forward_logits(&m);
        cr_assert_arr_eq(after, fp32, n * sizeof *fp32, "%s changed the FP32 model", schemes[k]);
        free(after);
        e = decode_vs_forward(&m);
        cr_assert(e < 1e-5, "%s: the FP32 model after quantizing: relative difference %g",
                  schemes[k], e);
    }
    free(fp32);
    mq_gpt_free(&m);
}

Test(decode, matches_forward_quantized) {
    quantized_decode(MQ_ARCH_GPT2);
}

Test(decode, matches_forward_quantized_llama) {
    quantized_decode(MQ_ARCH_LLAMA);
}

Test(decode, rewind_repeats_the_step) {
    mq_gpt_t m;
    small_model(&m);
    mq_gpt_kv_t kv;
    mq_error_t err = {0};
    int V = m.cfg.vocab_size;
    cr_assert_eq(mq_gpt_kv_init(&kv, &m.cfg, &err), MQ_OK);
    for (int t = 0; t < 5; t++)
        cr_assert_eq(mq_gpt_decode_step(&m, &kv, 7 * t + 1, &err), MQ_OK, "%s", err.msg);
    float *first = malloc((size_t)V * sizeof *first);
    cr_assert(first);
    memcpy(first, kv.logits, (size_t)V * sizeof *first);
    for (int rep = 0; rep < 3; rep++) {
        kv.len = 4;
        cr_assert_eq(mq_gpt_decode_step(&m, &kv, 29, &err), MQ_OK);
        cr_assert_eq(kv.len, 5);
        cr_assert_eq(memcmp(first, kv.logits, (size_t)V * sizeof *first), 0,
                     "the same step gives the same logits");
    }
    cr_assert_eq(mq_gpt_decode_step(&m, &kv, V, &err), MQ_ERR_ARG);
    cr_assert(strstr(err.msg, "token 50"), "%s", err.msg);
    cr_assert_eq(mq_gpt_decode_step(&m, &kv, -1, &err), MQ_ERR_ARG);
    cr_assert_eq(kv.len, 5, "a refused step leaves the cache as it was");
    free(first);
    mq_gpt_kv_free(&kv);
    mq_gpt_free(&m);
}

/* The Linear dispatch names what it refuses. */
Test(decode, linear_forward_refuses_non_linear) {
    mq_gpt_t m;
    small_model(&m);
    float in[32] = {0}, out[128];
    mq_error_t err = {0};
    cr_assert_eq(mq_gpt_linear_forward(&m, (mq_linear_id_t){MQ_P_WTE, 0}, out, in, 1, &err),
                 MQ_ERR_ARG);
    cr_assert(strstr(err.msg, "wte"), "%s", err.msg);
    cr_assert_eq(mq_gpt_linear_forward(&m, (mq_linear_id_t){MQ_P_QKVW, 2}, out, in, 1, &err),
                 MQ_ERR_ARG);
    cr_assert_eq(mq_gpt_linear_forward(&m, (mq_linear_id_t){MQ_P_FCW, 1}, out, in, 1, &err), MQ_OK,
                 "%s", err.msg);
    mq_gpt_free(&m);
}
