/* miniquant: the llama architecture's layers (MiniLlama, and the LLaMA family's GGUF files),
 * forward, backward and the KV-cached decoding step, as llama.cpp's llm_build_llama computes
 * them: RMSNorm (the file's epsilon), Q, K and V Linears, RoPE on Q and K ("normal" ordering,
 * the file's base frequency and dimension count), grouped-query causal attention scaled by
 * 1/sqrt(head size), the output Linear, a residual; RMSNorm, SwiGLU (down(silu(gate) * up)), a
 * residual; the final RMSNorm and the output Linear.
 *
 * Activations (model.h): ln1 / ln2 / lnf hold the RMSNorms' outputs and rstd their reciprocal
 * root mean squares; a layer's qkv holds Q (N,C), then K (N,KV), then V (N,KV), Q and K after
 * RoPE; fcg the gate, fch the up projection, fch_gelu silu(gate) * up. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <omp.h>

#include "miniquant/layers.h"
#include "model_internal.h"

int mq_llama_block(mq_gpt_t *m, int l, int B, int T, const float *residual, mq_error_t *err) {
    const mq_gpt_config_t *cfg = &m->cfg;
    int C = cfg->n_embd, NH = cfg->n_head, NKV = cfg->n_head_kv, F = cfg->n_ff, N = B * T,
        hs = C / NH, KV = NKV * hs, rc;
    float eps = cfg->norm_eps;
    mq_gpt_params_t p = m->params;
    mq_gpt_acts_t a = m->acts;
    size_t NC = (size_t)N * C, NQKV = (size_t)N * (C + 2 * KV), NF = (size_t)N * F;
    size_t TT = (size_t)B * NH * T * T, c = (size_t)C, kv = (size_t)KV, f = (size_t)F;
    float *ln1 = a.ln1 + l * NC, *ln1_rstd = a.ln1_rstd + l * N;
    float *q = a.qkv + l * NQKV, *k = q + NC, *v = k + (size_t)N * kv;
    float *atty = a.atty + l * NC, *att = a.att + l * TT;
    float *attproj = a.attproj + l * NC, *residual2 = a.residual2 + l * NC;
    float *ln2 = a.ln2 + l * NC, *ln2_rstd = a.ln2_rstd + l * N;
    float *gate = a.fcg + l * NF, *up = a.fch + l * NF, *sw = a.fch_gelu + l * NF;
    float *down = a.fcproj + l * NC, *residual3 = a.residual3 + l * NC;

    mq_rmsnorm_forward(ln1, ln1_rstd, residual, p.ln1w + l * c, N, C, eps);
    if ((rc = mq_model_linear(m, MQ_P_QW, l, q, ln1, p.qw + l * c * c, NULL, N, C, C, err)) ||
        (rc = mq_model_linear(m, MQ_P_KW, l, k, ln1, p.kw + l * kv * c, NULL, N, C, KV, err)) ||
        (rc = mq_model_linear(m, MQ_P_VW, l, v, ln1, p.vw + l * kv * c, NULL, N, C, KV, err)))
        return rc;
    mq_rope_forward(q, m->rope, B, T, NH, hs, cfg->n_rot);
    mq_rope_forward(k, m->rope, B, T, NKV, hs, cfg->n_rot);
    mq_attention_gqa_forward(atty, att, q, k, v, B, T, NH, NKV, hs);
    rc = mq_model_linear(m, MQ_P_ATTPROJW, l, attproj, atty, p.attprojw + l * c * c, NULL, N, C, C,
                         err);
    if (rc) return rc;
    mq_residual_forward(residual2, residual, attproj, (int)NC);
    mq_rmsnorm_forward(ln2, ln2_rstd, residual2, p.ln2w + l * c, N, C, eps);
    if ((rc = mq_model_linear(m, MQ_P_GATEW, l, gate, ln2, p.gatew + l * f * c, NULL, N, C, F,
                              err)) ||
        (rc = mq_model_linear(m, MQ_P_FCW, l, up, ln2, p.fcw + l * f * c, NULL, N, C, F, err)))
        return rc;
    mq_swiglu_forward(sw, gate, up, (int)NF);
    rc = mq_model_linear(m, MQ_P_FCPROJW, l, down, sw, p.fcprojw + l * f * c, NULL, N, F, C, err);
    if (rc) return rc;
    mq_residual_forward(residual3, residual2, down, (int)NC);
    return MQ_OK;
}

void mq_llama_embed(mq_gpt_t *m, const int *tokens, int B, int T, float *out) {
    size_t c = (size_t)m->cfg.n_embd;
    for (int i = 0; i < B * T; i++)
        memcpy(out + (size_t)i * c, m->params.wte + (size_t)tokens[i] * c, c * sizeof(float));
}

int mq_llama_head(mq_gpt_t *m, const float *residual, int N, mq_error_t *err) {
    mq_gpt_params_t p = m->params;
    mq_gpt_acts_t a = m->acts;
    int C = m->cfg.n_embd, V = m->cfg.vocab_size;
    mq_rmsnorm_forward(a.lnf, a.lnf_rstd, residual, p.lnfw, N, C, m->cfg.norm_eps);
    return mq_model_linear(m, MQ_P_LMW, 0, a.logits, a.lnf, p.lmw, NULL, N, C, V, err);
}

/* The residual stream's gradient is one (N, C) buffer, as in the gpt2 backward (gpt.c). The
 * gradient of the up projection shares fch's buffer with silu(gate) * up's: swiglu's backward
 * reads d(silu(gate) * up) before it writes d up, element by element. */
void mq_llama_backward(mq_gpt_t *m) {
    const mq_gpt_config_t *cfg = &m->cfg;
    int B = m->B, T = m->T, N = B * T;
    int V = cfg->vocab_size, C = cfg->n_embd, NH = cfg->n_head, NKV = cfg->n_head_kv,
        L = cfg->n_layer, F = cfg->n_ff, hs = C / NH, KV = NKV * hs;
    size_t NC = (size_t)N * C, NQKV = (size_t)N * (C + 2 * KV), NF = (size_t)N * F;
    size_t TT = (size_t)B * NH * T * T, c = (size_t)C, kv = (size_t)KV, f = (size_t)F;
    mq_gpt_params_t p = m->params, g = m->grads;
    mq_gpt_acts_t a = m->acts, ga = m->grads_acts;
    float *dres = ga.residual3, *dln = ga.lnf, *dsw = ga.fch, *dgate = ga.fcg, *datty = ga.atty;
    float *dq = ga.qkv, *dk = dq + NC, *dv = dk + (size_t)N * kv;

    mq_matmul_backward_overwrite(dln, g.lmw, NULL, ga.logits, a.lnf, p.lmw, N, C, V);
    memset(dres, 0, NC * sizeof(float));
    mq_rmsnorm_backward(dres, g.lnfw, dln, a.residual3 + (L - 1) * NC, p.lnfw, a.lnf_rstd, N, C);
    for (int l = L - 1; l >= 0; l--) {
        float *residual = l == 0 ? a.encoded : a.residual3 + (l - 1) * NC;
        float *ln1 = a.ln1 + l * NC, *ln1_rstd = a.ln1_rstd + l * N;
        float *q = a.qkv + l * NQKV, *k = q + NC, *v = k + (size_t)N * kv;
        float *atty = a.atty + l * NC, *att = a.att + l * TT;
        float *residual2 = a.residual2 + l * NC;
        float *ln2 = a.ln2 + l * NC, *ln2_rstd = a.ln2_rstd + l * N;
        float *gate = a.fcg + l * NF, *up = a.fch + l * NF, *sw = a.fch_gelu + l * NF;

        /* MLP: down, swiglu, then gate and up both read ln2 */
        mq_matmul_backward_overwrite(dsw, g.fcprojw + l * f * c, NULL, dres, sw,
                                     p.fcprojw + l * f * c, N, F, C);
        mq_swiglu_backward(dgate, dsw, dsw, gate, up, (int)NF);
        mq_matmul_backward_overwrite(dln, g.gatew + l * f * c, NULL, dgate, ln2,
                                     p.gatew + l * f * c, N, C, F);
        mq_matmul_backward(dln, g.fcw + l * f * c, NULL, dsw, ln2, p.fcw + l * f * c, N, C, F);
        mq_rmsnorm_backward(dres, g.ln2w + l * c, dln, residual2, p.ln2w + l * c, ln2_rstd, N, C);
        /* attention: output, attention, RoPE, then Q, K and V all read ln1 */
        mq_matmul_backward_overwrite(datty, g.attprojw + l * c * c, NULL, dres, atty,
                                     p.attprojw + l * c * c, N, C, C);
        mq_attention_gqa_backward(dq, dk, dv, ga.att, datty, q, k, v, att, B, T, NH, NKV, hs, 0.0f);
        mq_rope_backward(dq, m->rope, B, T, NH, hs, cfg->n_rot);
        mq_rope_backward(dk, m->rope, B, T, NKV, hs, cfg->n_rot);
        mq_matmul_backward_overwrite(dln, g.qw + l * c * c, NULL, dq, ln1, p.qw + l * c * c, N, C,
                                     C);
        mq_matmul_backward(dln, g.kw + l * kv * c, NULL, dk, ln1, p.kw + l * kv * c, N, C, KV);
        mq_matmul_backward(dln, g.vw + l * kv * c, NULL, dv, ln1, p.vw + l * kv * c, N, C, KV);
        mq_rmsnorm_backward(dres, g.ln1w + l * c, dln, residual, p.ln1w + l * c, ln1_rstd, N, C);
    }
    /* token embeddings: the rows the inputs picked, in input order (a repeated token's rows
     * are added in the same order whatever the thread count) */
    for (int i = 0; i < N; i++) {
        float *gw = g.wte + (size_t)m->inputs[i] * c;
        const float *d = dres + (size_t)i * c;
#pragma omp simd
        for (int j = 0; j < C; j++)
            gw[j] += d[j];
    }
}

int mq_llama_decode_step(mq_gpt_t *m, mq_gpt_kv_t *kv, int token, mq_error_t *err) {
    const mq_gpt_config_t *cfg = &m->cfg;
    int C = cfg->n_embd, NH = cfg->n_head, NKV = cfg->n_head_kv, L = cfg->n_layer, F = cfg->n_ff,
        hs = C / NH, KV = NKV * hs, pos = kv->len, rc;
    float eps = cfg->norm_eps;
    mq_gpt_params_t p = m->params;
    size_t c = (size_t)C, TKV = (size_t)kv->cap * KV;
    const float *rope = m->rope + (size_t)pos * (cfg->n_rot / 2) * 2;
    memcpy(kv->x, p.wte + (size_t)token * c, c * sizeof(float));
    float *q = kv->qkv, *k = q + C, *v = k + KV;
    for (int l = 0; l < L; l++) {
        float *kc = kv->k + l * TKV, *vc = kv->v + l * TKV;
        mq_rmsnorm_forward(kv->ln, kv->ln_rstd, kv->x, p.ln1w + l * c, 1, C, eps);
        if ((rc = mq_gpt_linear_forward(m, (mq_linear_id_t){MQ_P_QW, l}, q, kv->ln, 1, err)) ||
            (rc = mq_gpt_linear_forward(m, (mq_linear_id_t){MQ_P_KW, l}, k, kv->ln, 1, err)) ||
            (rc = mq_gpt_linear_forward(m, (mq_linear_id_t){MQ_P_VW, l}, v, kv->ln, 1, err)))
            return rc;
        mq_rope_forward(q, rope, 1, 1, NH, hs, cfg->n_rot);
        mq_rope_forward(k, rope, 1, 1, NKV, hs, cfg->n_rot);
        memcpy(kc + (size_t)pos * KV, k, (size_t)KV * sizeof(float));
        memcpy(vc + (size_t)pos * KV, v, (size_t)KV * sizeof(float));
        mq_model_attention_step(kv->atty, kv->att, q, kc, vc, pos + 1, kv->cap, NH, NKV, hs);
        rc = mq_gpt_linear_forward(m, (mq_linear_id_t){MQ_P_ATTPROJW, l}, kv->proj, kv->atty, 1,
                                   err);
        if (rc) return rc;
        mq_residual_forward(kv->x, kv->x, kv->proj, C);
        mq_rmsnorm_forward(kv->ln, kv->ln_rstd, kv->x, p.ln2w + l * c, 1, C, eps);
        if ((rc = mq_gpt_linear_forward(m, (mq_linear_id_t){MQ_P_GATEW, l}, kv->fcg, kv->ln, 1,
                                        err)) ||
            (rc = mq_gpt_linear_forward(m, (mq_linear_id_t){MQ_P_FCW, l}, kv->fch, kv->ln, 1, err)))
            return rc;
        mq_swiglu_forward(kv->fch_gelu, kv->fcg, kv->fch, F);
        rc = mq_gpt_linear_forward(m, (mq_linear_id_t){MQ_P_FCPROJW, l}, kv->proj, kv->fch_gelu, 1,
                                   err);
        if (rc) return rc;
        mq_residual_forward(kv->x, kv->x, kv->proj, C);
    }
    mq_rmsnorm_forward(kv->ln, kv->ln_rstd, kv->x, p.lnfw, 1, C, eps);
    return mq_gpt_linear_forward(m, (mq_linear_id_t){MQ_P_LMW, 0}, kv->logits, kv->ln, 1, err);
}

/* The step above in one parallel region, as gpt2's (decode.c). Linears of layer l in the plan:
 * 7l + {0 q, 1 k, 2 v, 3 attention output, 4 gate, 5 up, 6 down}, then lm_head. A thread takes
 * a key-value head: its keys and values, the queries of the heads that read them, and their
 * attention; then chunks of the rows of the attention output, of gate and up together (with
 * SwiGLU), and of down. */
void mq_llama_decode_region(mq_gpt_t *m, mq_gpt_kv_t *kv, mq_step_plan_t *P, int token) {
    const mq_gpt_config_t *cfg = &m->cfg;
    int C = cfg->n_embd, NH = cfg->n_head, NKV = cfg->n_head_kv, L = cfg->n_layer, hs = C / NH,
        KV = NKV * hs, group = NH / NKV, pos = kv->len;
    float eps = cfg->norm_eps;
    mq_gpt_params_t p = m->params;
    size_t c = (size_t)C, TKV = (size_t)kv->cap * KV;
    const float *rope = m->rope + (size_t)pos * (cfg->n_rot / 2) * 2;
    float *q = kv->qkv, *k = q + C, *v = k + KV;
#pragma omp parallel
    {
        mq_step_thread_t t;
        mq_step_thread(P, C, &t);
        int o0, o1;
        float rstd;
        memcpy(t.x, p.wte + (size_t)token * c, c * sizeof(float));
        mq_rmsnorm_row(t.ln, &rstd, t.x, p.ln1w, C, eps);
        for (int l = 0; l < L; l++) {
            float *kc = kv->k + l * TKV, *vc = kv->v + l * TKV;
            int i = 7 * l;
            for (int g; (g = mq_step_take(P, P->n + l, NKV)) >= 0;) {
                mq_step_rows(P, i + 1, t.ln, &t, k, g * hs, (g + 1) * hs);
                mq_step_rows(P, i + 2, t.ln, &t, v, g * hs, (g + 1) * hs);
                mq_rope_row(k + g * hs, rope, 1, hs, cfg->n_rot);
                memcpy(kc + (size_t)pos * KV + g * hs, k + g * hs, hs * sizeof(float));
                memcpy(vc + (size_t)pos * KV + g * hs, v + g * hs, hs * sizeof(float));
                for (int h = g * group; h < (g + 1) * group; h++) {
                    mq_step_rows(P, i, t.ln, &t, q, h * hs, (h + 1) * hs);
                    mq_rope_row(q + h * hs, rope, 1, hs, cfg->n_rot);
                    mq_model_attention_head(kv->atty, kv->att, q, kc, vc, pos + 1, kv->cap, NH, NKV,
                                            hs, h);
                }
            }
            mq_step_barrier(P, &t);
            while (mq_step_chunk(P, i + 3, kv->atty, &t, kv->proj, &o0, &o1))
                ;
            mq_step_barrier(P, &t);
            for (int j = 0; j < C; j++)
                t.x[j] += kv->proj[j];
            mq_rmsnorm_row(t.ln, &rstd, t.x, p.ln2w + l * c, C, eps);
            while (mq_step_chunk(P, i + 4, t.ln, &t, kv->fcg, &o0, &o1)) {
                mq_step_rows(P, i + 5, t.ln, &t, kv->fch, o0, o1);
                mq_swiglu_range(kv->fch_gelu, kv->fcg, kv->fch, o0, o1);
            }
            mq_step_barrier(P, &t);
            while (mq_step_chunk(P, i + 6, kv->fch_gelu, &t, kv->proj, &o0, &o1))
                ;
            mq_step_barrier(P, &t);
            for (int j = 0; j < C; j++)
                t.x[j] += kv->proj[j];
            if (l + 1 < L) mq_rmsnorm_row(t.ln, &rstd, t.x, p.ln1w + (l + 1) * c, C, eps);
        }
        mq_rmsnorm_row(t.ln, &rstd, t.x, p.lnfw, C, eps);
        while (mq_step_chunk(P, 7 * L, t.ln, &t, kv->logits, &o0, &o1))
            ;
        if (t.tid == 0) memcpy(kv->x, t.x, c * sizeof(float));
    }
}

void mq_llama_cache_kv(mq_gpt_t *m, int l, int n, float *kc, float *vc) {
    const mq_gpt_config_t *cfg = &m->cfg;
    size_t C = (size_t)cfg->n_embd, KV = (size_t)mq_arch_dim(cfg, MQ_DIM_KV);
    const float *k = m->acts.qkv + (size_t)l * n * (C + 2 * KV) + (size_t)n * C;
    memcpy(kc, k, (size_t)n * KV * sizeof(float));
    memcpy(vc, k + (size_t)n * KV, (size_t)n * KV * sizeof(float));
}
