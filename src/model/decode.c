/* miniquant: KV-cached decoding, one token per step (B = 1, T = 1): the cache, the checks every
 * architecture's step shares, the one-region step's plan, the prompt's prefill, and the gpt2
 * step (llama's is in llama.c).
 *
 * The step is mq_gpt_forward's layer sequence for a single row: the token's Linears are
 * matrix-vector products (through the model's Linear replacement, so a quantized model runs its
 * fused kernels), and attention reads the keys and values that earlier steps left in the cache
 * instead of recomputing them.
 *
 * Each architecture has it twice. The per-operation step calls the layers one after another,
 * each opening its own parallel region (about 40 per token on MiniGPT, a few microseconds of
 * fork and join each, against Linears of a few microseconds). The one-region step runs the whole
 * token inside one OpenMP parallel region: each thread computes its share of every Linear's
 * output rows (the same kernels, so each output is the same number, computed by one thread in
 * the same order), its share of the attention heads, and the norms and residuals are done by one
 * thread while the others wait at the barrier that follows. */
#include <math.h>
#include <omp.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>

#include "miniquant/layers.h"
#include "miniquant/model.h"
#include "model_internal.h"

int mq_gpt_kv_init(mq_gpt_kv_t *kv, const mq_gpt_config_t *cfg, mq_error_t *err) {
    memset(kv, 0, sizeof *kv);
    int rc = mq_gpt_config_check(cfg, err);
    if (rc) return rc;
    size_t L = (size_t)cfg->n_layer, T = (size_t)cfg->n_ctx, C = (size_t)cfg->n_embd;
    size_t NH = (size_t)cfg->n_head, V = (size_t)cfg->vocab_size;
    size_t KV = (size_t)mq_arch_dim(cfg, MQ_DIM_KV), QKV = (size_t)mq_arch_dim(cfg, MQ_DIM_QKV);
    size_t F = (size_t)mq_arch_dim(cfg, MQ_DIM_F);
    /* k, v; x, ln, qkv, atty, proj, fch, fch_gelu; ln_mean, ln_rstd; att; logits; fcg */
    size_t sizes[] = {L * T * KV, L * T * KV, C, C, QKV, C, C, F, F, 1, 1, NH * T, V, F};
    float **ptrs[] = {&kv->k,       &kv->v,    &kv->x,      &kv->ln,       &kv->qkv,
                      &kv->atty,    &kv->proj, &kv->fch,    &kv->fch_gelu, &kv->ln_mean,
                      &kv->ln_rstd, &kv->att,  &kv->logits, &kv->fcg};
    size_t n = sizeof sizes / sizeof sizes[0], total = 0;
    for (size_t i = 0; i < n; i++)
        total += sizes[i];
    kv->memory = calloc(total, sizeof(float));
    if (!kv->memory)
        return mq_error_set(err, MQ_ERR_NOMEM, "cannot allocate a KV cache of %zu floats", total);
    float *p = kv->memory;
    for (size_t i = 0; i < n; i++) {
        *ptrs[i] = p;
        p += sizes[i];
    }
    kv->cap = cfg->n_ctx;
    return MQ_OK;
}

void mq_gpt_kv_free(mq_gpt_kv_t *kv) {
    free(kv->memory);
    free(kv->lin_out);
    if (kv->plan) free(kv->plan->item);
    free(kv->plan);
    free(kv->scratch);
    memset(kv, 0, sizeof *kv);
}

/* 16 floats as one vector (GCC's vector extension: one AVX-512 register, two AVX ones, or
 * scalar code, whichever the build targets). */
typedef float v16 __attribute__((vector_size(64)));
typedef float v8 __attribute__((vector_size(32)));
typedef float v4 __attribute__((vector_size(16)));

/* q . k over n: 16 lanes of partial sums, added in a tree (halves, then quarters, ...): no chain
 * of 16 scalar additions per position */
static inline float dot_hs(const float *q, const float *k, int n) {
    v16 acc = {0}, x, y;
    int i = 0;
    for (; i + 16 <= n; i += 16) {
        memcpy(&x, q + i, sizeof x);
        memcpy(&y, k + i, sizeof y);
        acc += x * y;
    }
    v8 a = __builtin_shufflevector(acc, acc, 0, 1, 2, 3, 4, 5, 6, 7);
    a += __builtin_shufflevector(acc, acc, 8, 9, 10, 11, 12, 13, 14, 15);
    v4 c = __builtin_shufflevector(a, a, 0, 1, 2, 3);
    c += __builtin_shufflevector(a, a, 4, 5, 6, 7);
    float s = (c[0] + c[2]) + (c[1] + c[3]);
    for (; i < n; i++)
        s += q[i] * k[i];
    return s;
}

void mq_model_attention_head(float *out, float *att, const float *q, const float *kc,
                             const float *vc, int T, int maxT, int NH, int NKV, int hs, int h) {
    int KV = NKV * hs, group = NH / NKV;
    float scale = 1.0f / sqrtf((float)hs);
    const float *qh = q + (size_t)h * hs;
    size_t ko = (size_t)(h / group) * hs;
    float *a = att + (size_t)h * maxT, maxv = -INFINITY;
    for (int t = 0; t < T; t++) {
        const float *kt = kc + (size_t)t * KV + ko;
        a[t] = dot_hs(qh, kt, hs) * scale;
        maxv = a[t] > maxv ? a[t] : maxv;
    }
    float sum = mq_softmax_numerators(a, a, T, maxv);
    /* the normalisation is applied once to the weighted sum, not to every weight; 16 outputs
       at a time are summed over the positions in registers, each in position order */
    float *oh = out + (size_t)h * hs;
    int i0 = 0;
    for (; i0 + 64 <= hs; i0 += 64) { /* four independent chains of 16, kept in registers */
        v16 acc0 = {0}, acc1 = {0}, acc2 = {0}, acc3 = {0};
        for (int t = 0; t < T; t++) {
            const float *vt = vc + (size_t)t * KV + ko + i0;
            v16 at = (v16){0} + a[t], x0, x1, x2, x3;
            memcpy(&x0, vt, sizeof x0);
            memcpy(&x1, vt + 16, sizeof x1);
            memcpy(&x2, vt + 32, sizeof x2);
            memcpy(&x3, vt + 48, sizeof x3);
            acc0 += at * x0;
            acc1 += at * x1;
            acc2 += at * x2;
            acc3 += at * x3;
        }
        memcpy(oh + i0, &acc0, sizeof acc0);
        memcpy(oh + i0 + 16, &acc1, sizeof acc1);
        memcpy(oh + i0 + 32, &acc2, sizeof acc2);
        memcpy(oh + i0 + 48, &acc3, sizeof acc3);
    }
    for (; i0 + 16 <= hs; i0 += 16) {
        float acc[16] = {0};
        for (int t = 0; t < T; t++) {
            const float *vt = vc + (size_t)t * KV + ko + i0;
            float at = a[t];
#pragma omp simd
            for (int i = 0; i < 16; i++)
                acc[i] += at * vt[i];
        }
        memcpy(oh + i0, acc, sizeof acc);
    }
    for (int i = i0; i < hs; i++) {
        float acc = 0.0f;
        for (int t = 0; t < T; t++)
            acc += a[t] * vc[(size_t)t * KV + ko + i];
        oh[i] = acc;
    }
    float inv = 1.0f / sum;
    for (int i = 0; i < hs; i++)
        oh[i] *= inv;
}

/* One query (NH heads) against the cache of one layer: kc, vc (maxT, KV) hold T positions. */
void mq_model_attention_step(float *out, float *att, const float *q, const float *kc,
                             const float *vc, int T, int maxT, int NH, int NKV, int hs) {
#pragma omp parallel for schedule(static) if (T * NKV * hs >= 65536)
    for (int h = 0; h < NH; h++)
        mq_model_attention_head(out, att, q, kc, vc, T, maxT, NH, NKV, hs, h);
}

/* ---------------------------------------------------------------------------------------------
 * the one-region step's plan */

/* A plain model's FP32 Linear: sgemv on the thread's rows (OpenBLAS runs it on the calling
 * thread inside a parallel region). */
static void f32_rows(const mq_step_linear_t *s, const float *x, const void *prep, float *out,
                     int o0, int o1, void *scratch) {
    (void)prep, (void)scratch;
    mq_matvec_rows(out, x, s->w, s->bias, s->cols, o0, o1);
}

static int plan_linear(mq_gpt_t *m, mq_linear_id_t id, mq_step_linear_t *s) {
    memset(s, 0, sizeof *s);
    if (m->linear_fn)
        return m->step_fn && m->step_pair == m->linear_fn ? m->step_fn(m->linear_ctx, id, s)
                                                          : MQ_ERR_UNSUPPORTED;
    float *bias;
    int OC, C;
    const float *w = mq_gpt_linear_weight(m, id, &bias, &OC, &C);
    if (!w) return MQ_ERR_ARG;
    *s = (mq_step_linear_t){
        .w = w, .bias = bias, .out_rows = OC, .cols = C, .granule = 32, .rows = f32_rows};
    return MQ_OK;
}

static size_t align64(size_t n) {
    return (n + 63) / 64 * 64;
}

/* Fills kv->plan for m: 1 when every Linear has a step form (memory allocated), 0 when the step
 * must run per operation, < 0 out of memory. */
static int make_plan(mq_gpt_t *m, mq_gpt_kv_t *kv, mq_error_t *err) {
    int n = mq_arch_n_linear(&m->cfg), nth = omp_get_max_threads();
    if (!kv->plan) {
        kv->plan = calloc(1, sizeof *kv->plan);
        if (kv->plan) kv->plan->item = calloc((size_t)n, sizeof *kv->plan->item);
        if (!kv->plan || !kv->plan->item)
            return mq_error_set(err, MQ_ERR_NOMEM, "decode: out of memory for the step's plan");
    }
    mq_step_plan_t *P = kv->plan;
    size_t prep = 0, thread = 0;
    for (int i = 0; i < n; i++) {
        mq_step_linear_t *s = &P->item[i].s;
        if (plan_linear(m, mq_arch_linear_id(&m->cfg, i), s) != MQ_OK || !s->rows || s->granule < 1)
            return 0;
        P->item[i].prep_off = prep;
        prep += align64(s->prep_bytes);
        if (s->thread_bytes > thread) thread = s->thread_bytes;
        /* about eight chunks a thread: few enough that taking one costs little, enough that a
           slower thread ends close to the others */
        int g = s->granule, want = (s->out_rows + 8 * nth - 1) / (8 * nth);
        P->item[i].chunk = (want + g - 1) / g * g;
    }
    P->n = n;
    P->n_counters = n + m->cfg.n_layer;
    P->prep_bytes = prep;
    P->thread_stride = 2 * align64((size_t)m->cfg.n_embd * sizeof(float)) + prep +
                       align64((size_t)n) + align64(thread);
    size_t sync = (size_t)(P->n_counters + nth) * sizeof *P->counters;
    size_t need = sync + (size_t)nth * P->thread_stride;
    if (need > kv->scratch_bytes) {
        free(kv->scratch);
        kv->scratch = aligned_alloc(64, need);
        kv->scratch_bytes = kv->scratch ? need : 0;
        if (!kv->scratch)
            return mq_error_set(err, MQ_ERR_NOMEM,
                                "decode: out of memory for %zu bytes of step scratch", need);
    }
    P->counters = kv->scratch;
    P->arrivals = P->counters + P->n_counters;
    P->threads = (char *)kv->scratch + sync;
    /* no thread is in a region: every count starts afresh */
    for (int i = 0; i < P->n_counters + nth; i++)
        atomic_init(&P->counters[i].v, 0u);
    return 1;
}

void mq_step_thread(mq_step_plan_t *P, int C, mq_step_thread_t *t) {
    t->tid = omp_get_thread_num();
    t->nth = omp_get_num_threads();
    t->epoch = 0;
    char *mem = P->threads + (size_t)t->tid * P->thread_stride;
    size_t c = align64((size_t)C * sizeof(float));
    t->x = (float *)mem;
    t->ln = (float *)(mem + c);
    t->prep = mem + 2 * c;
    t->prepped = (unsigned char *)(mem + 2 * c + P->prep_bytes);
    t->scratch = mem + 2 * c + P->prep_bytes + align64((size_t)P->n);
    memset(t->prepped, 0, (size_t)P->n);
}

void mq_step_barrier(const mq_step_plan_t *P, mq_step_thread_t *t) {
    unsigned e = ++t->epoch;
    atomic_store_explicit(&P->arrivals[t->tid].v, e, memory_order_release);
    for (int j = 0; j < t->nth; j++) {
        if (j == t->tid) continue;
        for (long spin = 0;
             (int)(atomic_load_explicit(&P->arrivals[j].v, memory_order_acquire) - e) < 0; spin++) {
#if defined(__x86_64__) || defined(__i386__)
            __builtin_ia32_pause();
#endif
            if (spin >= 1 << 14) sched_yield(); /* more threads than cores: let the others run */
        }
    }
}

void mq_step_prep(const mq_step_plan_t *P, int i, const float *x, mq_step_thread_t *t) {
    const mq_step_linear_t *s = &P->item[i].s;
    if (t->prepped[i]) return;
    if (s->prep) s->prep(s, x, t->prep + P->item[i].prep_off);
    t->prepped[i] = 1;
}

void mq_step_rows(const mq_step_plan_t *P, int i, const float *x, mq_step_thread_t *t, float *out,
                  int o0, int o1) {
    const mq_step_linear_t *s = &P->item[i].s;
    if (o0 >= o1) return;
    mq_step_prep(P, i, x, t);
    s->rows(s, x, s->prep ? t->prep + P->item[i].prep_off : NULL, out, o0, o1, t->scratch);
}

int mq_step_take(const mq_step_plan_t *P, int k, int n) {
    int item = (int)atomic_fetch_add_explicit(&P->counters[k].v, 1u, memory_order_relaxed);
    return item < n ? item : -1;
}

int mq_step_chunk(const mq_step_plan_t *P, int i, const float *x, mq_step_thread_t *t, float *out,
                  int *o0, int *o1) {
    int rows = P->item[i].s.out_rows, chunk = P->item[i].chunk;
    int k = mq_step_take(P, i, (rows + chunk - 1) / chunk);
    if (k < 0) return 0;
    *o0 = k * chunk;
    *o1 = *o0 + chunk < rows ? *o0 + chunk : rows;
    mq_step_rows(P, i, x, t, out, *o0, *o1);
    return 1;
}

/* The checks every use of a cache shares (what: the caller's name for messages). */
static int kv_ready(const mq_gpt_t *m, const mq_gpt_kv_t *kv, const char *what, mq_error_t *err) {
    if (!m->params_memory || !kv->memory)
        return mq_error_set(err, MQ_ERR_ARG, "%s: model or KV cache not initialised", what);
    if (kv->cap != m->cfg.n_ctx)
        return mq_error_set(err, MQ_ERR_ARG, "%s: the KV cache holds %d positions, the model %d",
                            what, kv->cap, m->cfg.n_ctx);
    return MQ_OK;
}

int mq_gpt_decode_step(mq_gpt_t *m, mq_gpt_kv_t *kv, int token, mq_error_t *err) {
    const mq_gpt_config_t *cfg = &m->cfg;
    int V = cfg->vocab_size, pos = kv->len, rc = kv_ready(m, kv, "decode", err);
    if (rc) return rc;
    if (pos < 0 || pos >= kv->cap)
        return mq_error_set(err, MQ_ERR_ARG, "decode: position %d is outside the context [0, %d)",
                            pos, kv->cap);
    if (token < 0 || token >= V)
        return mq_error_set(err, MQ_ERR_ARG, "decode: token %d is not a token id in [0, %d)", token,
                            V);
    const mq_arch_t *a = mq_arch(cfg->arch);
    int plan = kv->per_op ? 0 : make_plan(m, kv, err);
    if (plan < 0) return plan;
    if (plan)
        a->decode_region(m, kv, kv->plan, token);
    else if ((rc = a->decode_step(m, kv, token, err)))
        return rc;
    kv->len = pos + 1;
    return MQ_OK;
}

int mq_gpt_decode_linears(mq_gpt_t *m, mq_gpt_kv_t *kv, mq_error_t *err) {
    const mq_gpt_config_t *cfg = &m->cfg;
    int plan = kv_ready(m, kv, "decode", err);
    if (plan) return plan;
    plan = make_plan(m, kv, err);
    if (plan < 0) return plan;
    if (!plan)
        return mq_error_set(err, MQ_ERR_UNSUPPORTED,
                            "decode: this model's Linears have no one-region step form");
    mq_step_plan_t *P = kv->plan;
    int C = cfg->n_embd, F = mq_arch_dim(cfg, MQ_DIM_F);
    size_t rows = 0;
    for (int i = 0; i < P->n; i++) {
        const mq_step_linear_t *s = &P->item[i].s;
        if (s->cols != C && s->cols != F)
            return mq_error_set(err, MQ_ERR_ARG, "decode: Linear %d takes %d columns, not %d or %d",
                                i, s->cols, C, F);
        rows += (size_t)s->out_rows;
    }
    if (rows > kv->lin_out_n) { /* once per model: never inside a timed call but the first */
        free(kv->lin_out);
        kv->lin_out = malloc(rows * sizeof *kv->lin_out);
        kv->lin_out_n = kv->lin_out ? rows : 0;
        if (!kv->lin_out)
            return mq_error_set(err, MQ_ERR_NOMEM, "decode: out of memory for %zu outputs", rows);
    }
#pragma omp parallel
    {
        mq_step_thread_t t;
        mq_step_thread(P, C, &t);
        memcpy(t.ln, kv->ln, (size_t)C * sizeof(float));
        float *out = kv->lin_out;
        int o0, o1;
        for (int i = 0; i < P->n; i++) {
            const mq_step_linear_t *s = &P->item[i].s;
            const float *x = s->cols == C ? t.ln : kv->fch_gelu;
            while (mq_step_chunk(P, i, x, &t, out, &o0, &o1))
                ;
            out += s->out_rows;
        }
    }
    return MQ_OK;
}

int mq_gpt2_decode_step(mq_gpt_t *m, mq_gpt_kv_t *kv, int token, mq_error_t *err) {
    const mq_gpt_config_t *cfg = &m->cfg;
    int C = cfg->n_embd, NH = cfg->n_head, L = cfg->n_layer, F = cfg->n_ff, pos = kv->len, rc;
    mq_gpt_params_t p = m->params;
    size_t c = (size_t)C, TC = (size_t)kv->cap * C;
    mq_encoder_forward(kv->x, &token, p.wte, p.wpe + (size_t)pos * c, 1, 1, C);
    for (int l = 0; l < L; l++) {
        float *kc = kv->k + l * TC, *vc = kv->v + l * TC;
        mq_layernorm_forward(kv->ln, kv->ln_mean, kv->ln_rstd, kv->x, p.ln1w + l * c,
                             p.ln1b + l * c, 1, C);
        rc = mq_gpt_linear_forward(m, (mq_linear_id_t){MQ_P_QKVW, l}, kv->qkv, kv->ln, 1, err);
        if (rc) return rc;
        memcpy(kc + pos * c, kv->qkv + c, c * sizeof(float));
        memcpy(vc + pos * c, kv->qkv + 2 * c, c * sizeof(float));
        mq_model_attention_step(kv->atty, kv->att, kv->qkv, kc, vc, pos + 1, kv->cap, NH, NH,
                                C / NH);
        rc = mq_gpt_linear_forward(m, (mq_linear_id_t){MQ_P_ATTPROJW, l}, kv->proj, kv->atty, 1,
                                   err);
        if (rc) return rc;
        mq_residual_forward(kv->x, kv->x, kv->proj, C);
        mq_layernorm_forward(kv->ln, kv->ln_mean, kv->ln_rstd, kv->x, p.ln2w + l * c,
                             p.ln2b + l * c, 1, C);
        rc = mq_gpt_linear_forward(m, (mq_linear_id_t){MQ_P_FCW, l}, kv->fch, kv->ln, 1, err);
        if (rc) return rc;
        mq_gelu_forward(kv->fch_gelu, kv->fch, F);
        rc = mq_gpt_linear_forward(m, (mq_linear_id_t){MQ_P_FCPROJW, l}, kv->proj, kv->fch_gelu, 1,
                                   err);
        if (rc) return rc;
        mq_residual_forward(kv->x, kv->x, kv->proj, C);
    }
    mq_layernorm_forward(kv->ln, kv->ln_mean, kv->ln_rstd, kv->x, p.lnfw, p.lnfb, 1, C);
    return mq_gpt_linear_forward(m, (mq_linear_id_t){MQ_P_LMW, 0}, kv->logits, kv->ln, 1, err);
}

/* The step above in one parallel region; every check is done (mq_gpt_decode_step). Threads
 * meet at four barriers a layer. Between them each takes heads (their query, key and value rows
 * and their attention), then chunks of the attention output's rows, of the MLP's up projection
 * (with GELU) and of its down projection; each adds the outputs to its own copy of the residual
 * stream and norms it itself. */
void mq_gpt2_decode_region(mq_gpt_t *m, mq_gpt_kv_t *kv, mq_step_plan_t *P, int token) {
    const mq_gpt_config_t *cfg = &m->cfg;
    int C = cfg->n_embd, NH = cfg->n_head, L = cfg->n_layer, hs = C / NH, pos = kv->len;
    mq_gpt_params_t p = m->params;
    size_t c = (size_t)C, TC = (size_t)kv->cap * C;
#pragma omp parallel
    {
        mq_step_thread_t t;
        mq_step_thread(P, C, &t);
        int o0, o1;
        float mean, rstd;
        const float *te = p.wte + (size_t)token * c, *pe = p.wpe + (size_t)pos * c;
        for (int i = 0; i < C; i++)
            t.x[i] = te[i] + pe[i];
        mq_layernorm_row(t.ln, &mean, &rstd, t.x, p.ln1w, p.ln1b, C);
        for (int l = 0; l < L; l++) {
            float *kc = kv->k + l * TC, *vc = kv->v + l * TC;
            int i = 4 * l;
            for (int h; (h = mq_step_take(P, P->n + l, NH)) >= 0;) {
                for (int part = 0; part < 3; part++)
                    mq_step_rows(P, i, t.ln, &t, kv->qkv, part * C + h * hs,
                                 part * C + (h + 1) * hs);
                memcpy(kc + pos * c + h * hs, kv->qkv + c + h * hs, hs * sizeof(float));
                memcpy(vc + pos * c + h * hs, kv->qkv + 2 * c + h * hs, hs * sizeof(float));
                mq_model_attention_head(kv->atty, kv->att, kv->qkv, kc, vc, pos + 1, kv->cap, NH,
                                        NH, hs, h);
            }
            mq_step_barrier(P, &t);
            while (mq_step_chunk(P, i + 1, kv->atty, &t, kv->proj, &o0, &o1))
                ;
            mq_step_barrier(P, &t);
            for (int j = 0; j < C; j++)
                t.x[j] += kv->proj[j];
            mq_layernorm_row(t.ln, &mean, &rstd, t.x, p.ln2w + l * c, p.ln2b + l * c, C);
            while (mq_step_chunk(P, i + 2, t.ln, &t, kv->fch, &o0, &o1))
                mq_gelu_range(kv->fch_gelu, kv->fch, o0, o1);
            mq_step_barrier(P, &t);
            while (mq_step_chunk(P, i + 3, kv->fch_gelu, &t, kv->proj, &o0, &o1))
                ;
            mq_step_barrier(P, &t);
            for (int j = 0; j < C; j++)
                t.x[j] += kv->proj[j];
            if (l + 1 < L)
                mq_layernorm_row(t.ln, &mean, &rstd, t.x, p.ln1w + (l + 1) * c,
                                 p.ln1b + (l + 1) * c, C);
        }
        mq_layernorm_row(t.ln, &mean, &rstd, t.x, p.lnfw, p.lnfb, C);
        while (mq_step_chunk(P, 4 * L, t.ln, &t, kv->logits, &o0, &o1))
            ;
        if (t.tid == 0) memcpy(kv->x, t.x, c * sizeof(float));
    }
}

/* ---------------------------------------------------------------------------------------------
 * prefill */

int mq_gpt_prefill(mq_gpt_t *m, mq_gpt_kv_t *kv, const int *tokens, int n, mq_error_t *err) {
    const mq_gpt_config_t *cfg = &m->cfg;
    int rc = kv_ready(m, kv, "prefill", err);
    if (rc) return rc;
    if (kv->len != 0)
        return mq_error_set(err, MQ_ERR_ARG, "prefill: the cache holds %d positions, not 0",
                            kv->len);
    if (n < 1 || n > kv->cap)
        return mq_error_set(err, MQ_ERR_ARG, "prefill: %d tokens (need 1 to %d)", n, kv->cap);
    for (int i = 0; i < n; i++)
        if (tokens[i] < 0 || tokens[i] >= cfg->vocab_size)
            return mq_error_set(err, MQ_ERR_ARG,
                                "prefill: token %d is %d, not a token id in [0, %d)", i, tokens[i],
                                cfg->vocab_size);
    const mq_arch_t *a = mq_arch(cfg->arch);
    int C = cfg->n_embd, KV = mq_arch_dim(cfg, MQ_DIM_KV);
    float *x = malloc((size_t)n * C * sizeof *x);
    if (!x) return mq_error_set(err, MQ_ERR_NOMEM, "prefill: out of memory for %d rows", n);
    a->embed(m, tokens, 1, n, x);
    const float *res = x;
    for (int l = 0; l < cfg->n_layer; l++) {
        float *out;
        if ((rc = mq_gpt_block_forward(m, l, res, 1, n, &out, err))) break;
        a->cache_kv(m, l, n, kv->k + (size_t)l * kv->cap * KV, kv->v + (size_t)l * kv->cap * KV);
        res = out;
    }
    /* only the last token's logits: the head on one row */
    if (rc == MQ_OK && (rc = mq_gpt_head_forward(m, res + (size_t)(n - 1) * C, 1, err)) == MQ_OK) {
        memcpy(kv->logits, m->acts.logits, (size_t)cfg->vocab_size * sizeof *kv->logits);
        kv->len = n;
    }
    free(x);
    return rc;
}

void mq_gpt2_cache_kv(mq_gpt_t *m, int l, int n, float *kc, float *vc) {
    size_t c = (size_t)m->cfg.n_embd;
    const float *qkv = m->acts.qkv + (size_t)l * n * 3 * c;
    for (int t = 0; t < n; t++) {
        memcpy(kc + t * c, qkv + (t * 3 + 1) * c, c * sizeof(float));
        memcpy(vc + t * c, qkv + (t * 3 + 2) * c, c * sizeof(float));
    }
}
