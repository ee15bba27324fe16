/* Tests of KV-cached decoding (src/model/decode.c): every step's logits are the full forward's
 * at that position, in FP32 and through a quantized model's fused kernels; rewinding repeats a
 * step exactly; a full cache and bad tokens are refused. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "miniquant/arch.h"
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

/* ---------------------------------------------------------------------------------------------
 * the one-region step and the prefill */

#include <omp.h>

/* arch's model with 2 heads of C / 2 (llama: 1 key-value head): C = 160 takes attention's 64-
 * and 16-wide paths (the small model's heads of 8 the scalar tail), C = 256 the K-quants. */
static void wide_model(mq_gpt_t *m, int arch, int C) {
    mq_gpt_config_t cfg = {.name = "custom",
                           .arch = arch,
                           .vocab_size = 70,
                           .n_ctx = 10,
                           .n_embd = C,
                           .n_head = 2,
                           .n_layer = 2};
    if (arch == MQ_ARCH_LLAMA) {
        cfg.n_head_kv = 1;
        cfg.n_ff = 256;
        cfg.n_rot = C / 2;
    }
    mq_error_t err = {0};
    cr_assert_eq(mq_gpt_init(m, &cfg, &err), MQ_OK, "%s", err.msg);
    mq_gpt_init_weights(m, 5);
    for (size_t i = 0; i < m->num_params; i++)
        m->params_memory[i] *= 3.0f;
}

/* Every position's logits of one token sequence, decoded step by step per operation (per_op)
 * or in one region, with nth threads: T x V, malloc'ed. */
static float *decoded(mq_gpt_t *m, int per_op, int nth) {
    int T = m->cfg.n_ctx, V = m->cfg.vocab_size;
    float *l = malloc((size_t)T * V * sizeof *l);
    cr_assert(l);
    mq_gpt_kv_t kv;
    mq_error_t err = {0};
    cr_assert_eq(mq_gpt_kv_init(&kv, &m->cfg, &err), MQ_OK, "%s", err.msg);
    kv.per_op = per_op;
    int saved = omp_get_max_threads();
    omp_set_num_threads(nth);
    for (int t = 0; t < T; t++) {
        cr_assert_eq(mq_gpt_decode_step(m, &kv, (7 * t + 3) % V, &err), MQ_OK, "%s", err.msg);
        memcpy(l + (size_t)t * V, kv.logits, (size_t)V * sizeof *l);
    }
    omp_set_num_threads(saved);
    cr_assert_eq(kv.plan != NULL, !per_op, "the one-region step %s",
                 per_op ? "ran" : "did not run");
    mq_gpt_kv_free(&kv);
    return l;
}

/* A quantized model's one-region step computes every output with the kernels of the
 * per-operation step, so its logits are those bit for bit, with any number of threads; F32
 * weights (sgemv on each thread's rows in the region; sgemm, or sgemv on OpenBLAS's threads, per
 * operation) agree to FP32 rounding. The region's logits never depend on the thread count. */
static int region_vs_per_op(mq_gpt_t *m) {
    int ran = 0;
    static const char *const schemes[] = {
        "fp32", "int8_per_channel", "int4_g32", "fp16", "nf4_g16", "q4_k", "q6_k", NULL};
    size_t n = (size_t)m->cfg.n_ctx * m->cfg.vocab_size;
    float *ref = decoded(m, 1, 2);
    for (int nth = 1; nth <= 3; nth++) {
        float *one = decoded(m, 0, nth);
        double e = logits_gap(ref, one, n);
        cr_assert(e < 1e-5, "FP32 model, %d threads: relative difference %g", nth, e);
        free(one);
    }
    float *one1 = decoded(m, 0, 1), *one3 = decoded(m, 0, 3);
    cr_assert_arr_eq(one1, one3, n * sizeof *one1, "FP32 model: 1 and 3 threads differ");
    free(one1);
    free(one3);
    free(ref);
    for (int k = 0; schemes[k]; k++) {
        mq_scheme_t s;
        mq_qmodel_t q;
        mq_error_t err = {0};
        cr_assert_eq(mq_scheme_parse(schemes[k], &s, &err), MQ_OK);
        if (mq_qmodel_quantize(&q, m, &s, NULL, &err) != MQ_OK) {
            /* K-quants need columns in 256s: the small models' 32 and 160 do not take them */
            cr_assert(strstr(err.msg, "256"), "%s: %s", schemes[k], err.msg);
            continue;
        }
        /* F32 weights run sgemv in both, on the whole matrix with OpenBLAS's threads per
           operation, on each thread's rows in the region: FP32 rounding apart */
        int f32 = s.bits == 32;
        ref = decoded(q.model, 1, 2);
        float *one1 = decoded(q.model, 0, 1);
        for (int nth = 1; nth <= 4; nth++) {
            float *one = decoded(q.model, 0, nth);
            if (f32) {
                double e = logits_gap(ref, one, n);
                cr_assert(e < 1e-5, "%s, %d threads: relative difference %g", schemes[k], nth, e);
            } else
                cr_assert_arr_eq(ref, one, n * sizeof *one, "%s, %d threads: not the per-op logits",
                                 schemes[k], nth);
            cr_assert_arr_eq(one1, one, n * sizeof *one, "%s: 1 and %d threads differ", schemes[k],
                             nth);
            free(one);
        }
        free(one1);
        free(ref);
        mq_qmodel_free(&q);
        ran++;
    }
    return ran;
}

Test(decode, one_region_step_is_the_per_operation_step) {
    for (int arch = 0; arch < MQ_NUM_ARCHS; arch++) {
        mq_gpt_t m;
        arch_model(&m, arch);
        region_vs_per_op(&m);
        mq_gpt_free(&m);
        for (int C = 160; C <= 256; C += 96) {
            wide_model(&m, arch, C);
            int ran = region_vs_per_op(&m);
            if (C == 256) cr_assert_eq(ran, 7, "arch %d: %d of 7 schemes ran", arch, ran);
            mq_gpt_free(&m);
        }
    }
}

/* A replacement Linear without a step form (GPTQ's capture, sensitivity) makes the step run
 * per operation, so the replacement sees every Linear. */
static int counted_linear(void *ctx, mq_linear_id_t id, float *out, const float *inp,
                          const float *bias, int N, int C, int OC) {
    (void)id, (void)bias, (void)inp;
    ++*(int *)ctx;
    memset(out, 0, (size_t)N * OC * sizeof *out);
    (void)C;
    return MQ_OK;
}

Test(decode, a_replacement_without_step_form_sees_every_linear) {
    mq_gpt_t m;
    small_model(&m);
    int calls = 0;
    m.linear_fn = counted_linear;
    m.linear_ctx = &calls;
    mq_gpt_kv_t kv;
    mq_error_t err = {0};
    cr_assert_eq(mq_gpt_kv_init(&kv, &m.cfg, &err), MQ_OK);
    cr_assert_eq(mq_gpt_decode_step(&m, &kv, 3, &err), MQ_OK, "%s", err.msg);
    cr_assert_eq(calls, 4 * m.cfg.n_layer + 1);
    mq_gpt_kv_free(&kv);
    mq_gpt_free(&m);
}

/* The prompt at once: the last token's logits and the cache are those of one step per token
 * (FP32 rounding), on both architectures, plain and quantized; the steps after it agree too;
 * a cache that is not empty and bad lengths are refused. */
Test(decode, prefill_is_the_steps) {
    for (int arch = 0; arch < MQ_NUM_ARCHS; arch++) {
        for (int quant = 0; quant < 2; quant++) {
            mq_gpt_t m;
            arch_model(&m, arch);
            mq_qmodel_t q;
            mq_gpt_t *run = &m;
            mq_error_t err = {0};
            if (quant) {
                mq_scheme_t s;
                cr_assert_eq(mq_scheme_parse("int4_g32", &s, &err), MQ_OK);
                cr_assert_eq(mq_qmodel_quantize(&q, &m, &s, NULL, &err), MQ_OK, "%s", err.msg);
                run = q.model;
            }
            int V = m.cfg.vocab_size, T = m.cfg.n_ctx, n = 7, tok[16];
            for (int t = 0; t < T; t++)
                tok[t] = (3 * t + 1) % V;
            mq_gpt_kv_t a, b;
            cr_assert_eq(mq_gpt_kv_init(&a, &m.cfg, &err), MQ_OK);
            cr_assert_eq(mq_gpt_kv_init(&b, &m.cfg, &err), MQ_OK);
            for (int t = 0; t < n; t++)
                cr_assert_eq(mq_gpt_decode_step(run, &a, tok[t], &err), MQ_OK, "%s", err.msg);
            cr_assert_eq(mq_gpt_prefill(run, &b, tok, n, &err), MQ_OK, "%s", err.msg);
            cr_assert_eq(b.len, n);
            double e = logits_gap(a.logits, b.logits, (size_t)V);
            cr_assert(e < 1e-5, "arch %d quant %d: last logits differ by %g", arch, quant, e);
            size_t kvn = (size_t)mq_arch_dim(&m.cfg, MQ_DIM_KV);
            for (int l = 0; l < m.cfg.n_layer; l++) {
                size_t off = (size_t)l * T * kvn;
                e = logits_gap(a.k + off, b.k + off, (size_t)n * kvn);
                cr_assert(e < 1e-5, "arch %d layer %d: keys differ by %g", arch, l, e);
                e = logits_gap(a.v + off, b.v + off, (size_t)n * kvn);
                cr_assert(e < 1e-5, "arch %d layer %d: values differ by %g", arch, l, e);
            }
            for (int t = n; t < T; t++) {
                cr_assert_eq(mq_gpt_decode_step(run, &a, tok[t], &err), MQ_OK);
                cr_assert_eq(mq_gpt_decode_step(run, &b, tok[t], &err), MQ_OK);
                e = logits_gap(a.logits, b.logits, (size_t)V);
                cr_assert(e < 1e-5, "arch %d: step %d after the prefill differs by %g", arch, t, e);
            }
            cr_assert_eq(mq_gpt_prefill(run, &b, tok, 1, &err), MQ_ERR_ARG);
            cr_assert(strstr(err.msg, "not 0"), "%s", err.msg);
            b.len = 0;
            cr_assert_eq(mq_gpt_prefill(run, &b, tok, 0, &err), MQ_ERR_ARG);
            cr_assert_eq(mq_gpt_prefill(run, &b, tok, T + 1, &err), MQ_ERR_ARG);
            tok[2] = V;
            cr_assert_eq(mq_gpt_prefill(run, &b, tok, 3, &err), MQ_ERR_ARG);
            cr_assert(strstr(err.msg, "token 2"), "%s", err.msg);
            cr_assert_eq(b.len, 0);
            mq_gpt_kv_free(&a);
            mq_gpt_kv_free(&b);
            if (quant) mq_qmodel_free(&q);
            mq_gpt_free(&m);
        }
    }
}

/* The step's Linears alone (the roofline's kernel ceiling): each Linear's outputs are those of
 * its own forward on the same x row, bit for bit (the same kernel per output row), on both
 * architectures and any thread count; the cache and its length are untouched. */
Test(decode, the_linears_alone_are_each_linears_products) {
    for (int arch = 0; arch < MQ_NUM_ARCHS; arch++) {
        mq_gpt_t m;
        wide_model(&m, arch, 160); /* the MLP's width is not C on either architecture */
        mq_scheme_t s;
        mq_qmodel_t q;
        mq_gpt_kv_t kv;
        mq_error_t err = {0};
        cr_assert_eq(mq_scheme_parse("int4_g32", &s, &err), MQ_OK);
        cr_assert_eq(mq_qmodel_quantize(&q, &m, &s, NULL, &err), MQ_OK, "%s", err.msg);
        cr_assert_eq(mq_gpt_kv_init(&kv, &m.cfg, &err), MQ_OK, "%s", err.msg);
        cr_assert_eq(mq_gpt_decode_step(q.model, &kv, 3, &err), MQ_OK, "%s", err.msg);
        int C = m.cfg.n_embd, F = mq_arch_dim(&m.cfg, MQ_DIM_F),
            KV = mq_arch_dim(&m.cfg, MQ_DIM_KV);
        size_t cache = (size_t)m.cfg.n_layer * m.cfg.n_ctx * KV;
        float *k0 = malloc(cache * sizeof *k0), *v0 = malloc(cache * sizeof *v0);
        cr_assert(k0 && v0);
        memcpy(k0, kv.k, cache * sizeof *k0);
        memcpy(v0, kv.v, cache * sizeof *v0);
        mq_rng_t r;
        mq_rng_seed(&r, 9);
        for (int i = 0; i < C; i++)
            kv.ln[i] = mq_rng_normal(&r);
        for (int i = 0; i < F; i++)
            kv.fch_gelu[i] = mq_rng_normal(&r);
        for (int nth = 1; nth <= 3; nth++) {
            int saved = omp_get_max_threads();
            omp_set_num_threads(nth);
            cr_assert_eq(mq_gpt_decode_linears(q.model, &kv, &err), MQ_OK, "%s", err.msg);
            omp_set_num_threads(saved);
            cr_assert_eq(kv.len, 1);
            cr_assert_arr_eq(kv.k, k0, cache * sizeof *k0, "the keys changed");
            cr_assert_arr_eq(kv.v, v0, cache * sizeof *v0, "the values changed");
            size_t off = 0;
            int n = mq_arch_n_linear(&m.cfg), in_f = 0;
            for (int i = 0; i < n; i++) {
                mq_linear_id_t id = mq_arch_linear_id(&m.cfg, i);
                int OC, IC;
                cr_assert(mq_gpt_linear_weight(&m, id, NULL, &OC, &IC));
                float *want = malloc((size_t)OC * sizeof *want);
                cr_assert(want);
                in_f += IC == F;
                cr_assert_eq(mq_gpt_linear_forward(q.model, id, want, IC == C ? kv.ln : kv.fch_gelu,
                                                   1, &err),
                             MQ_OK, "%s", err.msg);
                cr_assert_arr_eq(kv.lin_out + off, want, (size_t)OC * sizeof *want,
                                 "arch %d, %d threads: Linear %d's outputs", arch, nth, i);
                off += (size_t)OC;
                free(want);
            }
            cr_assert_eq(in_f, m.cfg.n_layer, "one Linear a layer reads the MLP's hidden row");
        }
        free(k0);
        free(v0);
        mq_gpt_kv_free(&kv);
        mq_qmodel_free(&q);
        mq_gpt_free(&m);
    }
}
