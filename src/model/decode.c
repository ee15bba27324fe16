/* miniquant: KV-cached decoding, one token per step (B = 1, T = 1): the cache, the checks every
 * architecture's step shares, and the gpt2 step (llama's is in llama.c).
 *
 * The step is mq_gpt_forward's layer sequence for a single row: the token's Linears are
 * matrix-vector products (through the model's Linear replacement, so a quantized model runs its
 * fused kernels), and attention reads the keys and values that earlier steps left in the cache
 * instead of recomputing them. */
#include <math.h>
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
    memset(kv, 0, sizeof *kv);
}

/* One query (NH heads) against the cache of one layer: kc, vc (maxT, KV) hold T positions. */
void mq_model_attention_step(float *out, float *att, const float *q, const float *kc,
                             const float *vc, int T, int maxT, int NH, int NKV, int hs) {
    int KV = NKV * hs, group = NH / NKV;
    float scale = 1.0f / sqrtf((float)hs);
#pragma omp parallel for schedule(static) if (T * KV >= 65536)
    for (int h = 0; h < NH; h++) {
        const float *qh = q + (size_t)h * hs;
        size_t ko = (size_t)(h / group) * hs;
        float *a = att + (size_t)h * maxT, maxv = -INFINITY;
        for (int t = 0; t < T; t++) {
            const float *kt = kc + (size_t)t * KV + ko;
            float dot = 0.0f;
#pragma omp simd reduction(+ : dot)
            for (int i = 0; i < hs; i++)
                dot += qh[i] * kt[i];
            a[t] = dot * scale;
            maxv = a[t] > maxv ? a[t] : maxv;
        }
        float sum = 0.0f;
        for (int t = 0; t < T; t++) {
            a[t] = expf(a[t] - maxv);
            sum += a[t];
        }
        /* the normalisation is applied once to the weighted sum, not to every weight */
        float *oh = out + (size_t)h * hs;
        for (int i = 0; i < hs; i++)
            oh[i] = 0.0f;
        for (int t = 0; t < T; t++) {
            const float *vt = vc + (size_t)t * KV + ko;
#pragma omp simd
            for (int i = 0; i < hs; i++)
                oh[i] += a[t] * vt[i];
        }
        float inv = 1.0f / sum;
        for (int i = 0; i < hs; i++)
            oh[i] *= inv;
    }
}

int mq_gpt_decode_step(mq_gpt_t *m, mq_gpt_kv_t *kv, int token, mq_error_t *err) {
    const mq_gpt_config_t *cfg = &m->cfg;
    int V = cfg->vocab_size, pos = kv->len;
    if (!m->params_memory || !kv->memory)
        return mq_error_set(err, MQ_ERR_ARG, "decode: model or KV cache not initialised");
    if (kv->cap != cfg->n_ctx)
        return mq_error_set(err, MQ_ERR_ARG,
                            "decode: the KV cache holds %d positions, the model "
                            "%d",
                            kv->cap, cfg->n_ctx);
    if (pos < 0 || pos >= kv->cap)
        return mq_error_set(err, MQ_ERR_ARG, "decode: position %d is outside the context [0, %d)",
                            pos, kv->cap);
    if (token < 0 || token >= V)
        return mq_error_set(err, MQ_ERR_ARG, "decode: token %d is not a token id in [0, %d)", token,
                            V);
    int rc = mq_arch(cfg->arch)->decode_step(m, kv, token, err);
    if (rc) return rc;
    kv->len = pos + 1;
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
