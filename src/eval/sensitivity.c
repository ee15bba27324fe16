#include "miniquant/sensitivity.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <math.h>

#include "miniquant/gptq.h"
#include "miniquant/layers.h"
#include "miniquant/progress.h"
#include "miniquant/qmodel.h"
#include "miniquant/recipe.h"

int mq_sensitivity_run(mq_gpt_t *m, const mq_scheme_t *s, const int32_t *tokens, size_t n,
                       mq_sensitivity_t *out, mq_error_t *err) {
    memset(out, 0, sizeof *out);
    int nl = mq_qmodel_n_linear(&m->cfg);
    out->n = nl;
    out->names = calloc((size_t)nl, sizeof *out->names);
    out->ppl = calloc((size_t)nl, sizeof *out->ppl);
    out->gap_pct = calloc((size_t)nl, sizeof *out->gap_pct);
    if (!out->names || !out->ppl || !out->gap_pct) {
        mq_sensitivity_free(out);
        return mq_error_set(err, MQ_ERR_NOMEM, "out of memory");
    }
    mq_progress_t pb;
    mq_ppl_result_t r;
    mq_progress_mute(+1); /* one bar over the layers tells the story */
    int rc = mq_perplexity(m, tokens, n, MQ_PPL_DEFAULT, 0, 8, &r, err);
    mq_progress_mute(-1);
    if (rc) goto done;
    out->base_ppl = r.ppl;
    mq_progress_start(&pb, "sensitivity", nl);
    for (int i = 0; i < nl && rc == MQ_OK; i++) {
        mq_qmodel_linear_name(&m->cfg, i, out->names[i], sizeof out->names[i]);
        mq_qmodel_t q;
        mq_qmodel_opts_t o = {0, i, 1, NULL};
        rc = mq_qmodel_quantize(&q, m, s, &o, err);
        if (rc) break;
        mq_progress_mute(+1);
        rc = mq_perplexity(q.model, tokens, n, MQ_PPL_DEFAULT, 0, 8, &r, err);
        mq_progress_mute(-1);
        mq_qmodel_free(&q);
        if (rc) break;
        out->ppl[i] = r.ppl;
        out->gap_pct[i] = 100.0 * (r.ppl - out->base_ppl) / out->base_ppl;
        char extra[64];
        snprintf(extra, sizeof extra, " %s %+.3f%%", out->names[i], out->gap_pct[i]);
        mq_progress_update(&pb, i + 1, extra);
    }
    if (rc == MQ_OK) mq_progress_finish(&pb, NULL);
done:
    if (rc) mq_sensitivity_free(out);
    return rc;
}

void mq_sensitivity_free(mq_sensitivity_t *s) {
    free(s->names);
    free(s->ppl);
    free(s->gap_pct);
    memset(s, 0, sizeof *s);
}

/* ---------------------------------------------------------------------------------------------
 * the cost of each tensor at each type, for auto recipes */

/* Every Linear's input Hessian from one pass of the FP32 model (each Linear reads the FP32
 * inputs, as when it alone is quantized). */
typedef struct hess_capture {
    mq_gpt_t *m;
    mq_gptq_hessian_t *h; /* [n_linear] */
    int status;
    mq_error_t err;
} hess_capture_t;

static int hess_linear(void *ctx, mq_linear_id_t id, float *out, const float *inp,
                       const float *bias, int N, int C, int OC) {
    hess_capture_t *cap = ctx;
    int i = mq_qmodel_linear_index(&cap->m->cfg, id);
    if (i < 0) return MQ_ERR_ARG;
    if (cap->status == MQ_OK) cap->status = mq_gptq_hessian_add(&cap->h[i], inp, N, &cap->err);
    const float *W = mq_gpt_linear_weight(cap->m, id, NULL, NULL, NULL);
    mq_matmul_forward(out, inp, W, bias, N, C, OC);
    return cap->status;
}

static int all_hessians(mq_gpt_t *m, const int32_t *calib, size_t n_calib, int n_seq,
                        mq_gptq_hessian_t *h, mq_error_t *err) {
    const mq_gpt_config_t *cfg = &m->cfg;
    int nl = mq_qmodel_n_linear(cfg), rc = MQ_OK;
    for (int i = 0; i < nl && rc == MQ_OK; i++) {
        int OC, C;
        mq_gpt_linear_weight(m, mq_qmodel_linear_id(cfg, i), NULL, &OC, &C);
        rc = mq_gptq_hessian_init(&h[i], C, err);
    }
    if (rc) return rc;
    int T = n_calib < (size_t)cfg->n_ctx ? (int)n_calib : cfg->n_ctx, batch = 16;
    int *inputs = malloc((size_t)batch * T * sizeof *inputs);
    if (!inputs) return mq_error_set(err, MQ_ERR_NOMEM, "out of memory");
    hess_capture_t cap = {.m = m, .h = h};
    mq_linear_fn saved_fn = m->linear_fn;
    void *saved_ctx = m->linear_ctx;
    m->linear_fn = hess_linear;
    m->linear_ctx = &cap;
    for (int s0 = 0; s0 < n_seq && rc == MQ_OK; s0 += batch) {
        int b = n_seq - s0 < batch ? n_seq - s0 : batch;
        mq_gptq_windows(calib, n_calib, T, n_seq, s0, b, inputs); /* as GPTQ lays them out */
        rc = mq_gpt_forward(m, inputs, NULL, b, T, err);
        if (cap.status) {
            rc = cap.status;
            if (err) *err = cap.err;
        }
    }
    m->linear_fn = saved_fn;
    m->linear_ctx = saved_ctx;
    free(inputs);
    return rc;
}

/* Linear i of m quantized with s (on its Hessian h for a calibrated scheme) into w. */
static int quantize_one(const mq_gpt_t *m, int i, const mq_scheme_t *s,
                        const mq_gptq_hessian_t *h, mq_qweight_t *w, mq_error_t *err) {
    int OC, C;
    const float *W =
        mq_gpt_linear_weight((mq_gpt_t *)m, mq_qmodel_linear_id(&m->cfg, i), NULL, &OC, &C);
    mq_gptq_opts_t o;
    mq_gptq_opts_for(s, &o);
    o.losses = 0;
    return mq_gptq_quantize_linear(W, OC, C, h, s, &o, w, err);
}

int mq_sensitivity_types(mq_gpt_t *m, const char *method, const int32_t *calib, size_t n_calib,
                         const int32_t *tokens, size_t n, int n_windows, double *cost,
                         mq_error_t *err) {
    const mq_gpt_config_t *cfg = &m->cfg;
    int nl = mq_qmodel_n_linear(cfg), nt = mq_recipe_n_tensors(cfg), n_types = 0;
    while (MQ_RECIPE_AUTO_TYPES[n_types])
        n_types++;
    int calibrated = method && method[0];
    if (calibrated && (!calib || !n_calib))
        return mq_error_set(err, MQ_ERR_ARG, "auto%s needs calibration tokens", method);
    size_t per = (size_t)cfg->n_ctx, want = (size_t)n_windows * per;
    if (n < per + 1 || n_windows < 1)
        return mq_error_set(err, MQ_ERR_ARG, "auto: %zu tokens to measure on, need %zu", n,
                            per + 1);
    if (want + 1 > n) want = (n - 1) / per * per;
    mq_scheme_t fp32, types[8];
    mq_scheme_parse("fp32", &fp32, NULL);
    for (int k = 0; k < n_types; k++)
        mq_recipe_auto_scheme(k, calibrated ? method : "", &types[k], NULL);
    mq_gptq_hessian_t *h = calloc((size_t)nl, sizeof *h);
    if (!h) return mq_error_set(err, MQ_ERR_NOMEM, "out of memory");
    int rc = MQ_OK;
    if (calibrated) {
        mq_progress_mute(+1);
        rc = all_hessians(m, calib, n_calib, 128, h, err);
        mq_progress_mute(-1);
    }
    mq_progress_t pb;
    if (rc == MQ_OK) mq_progress_start(&pb, "auto: sensitivity", (int64_t)nt * n_types);
    for (int t = 0; t < nt && rc == MQ_OK; t++) {
        mq_qmodel_t q;
        mq_qmodel_opts_t o = {0, -2, 1, NULL}; /* every Linear FP32, embeddings FP32 */
        if ((rc = mq_qmodel_quantize(&q, m, &fp32, &o, err))) break;
        char tn[48];
        mq_recipe_tensor_name(cfg, t, tn, sizeof tn);
        for (int k = 0; k < n_types && rc == MQ_OK; k++) {
            if (!mq_recipe_tensor_bytes(cfg, t, &types[k])) { /* no format fits its rows */
                cost[(size_t)t * n_types + k] = INFINITY;
                continue;
            }
            if (t < nl) {
                mq_qweight_t w;
                rc = quantize_one(m, t, &types[k], &h[t], &w, err);
                if (rc == MQ_OK) rc = mq_qmodel_set_linear(&q, t, &w, err);
            } else { /* token_embd: a lookup, rounded to nearest */
                mq_scheme_t plain;
                mq_scheme_parse(MQ_RECIPE_AUTO_TYPES[k], &plain, NULL);
                memcpy(q.model->params.wte, m->params.wte, m->param_sizes[MQ_P_WTE] * sizeof(float));
                rc = mq_qmodel_set_embd(&q, &plain, err);
            }
            mq_kld_result_t kr;
            mq_progress_mute(+1);
            if (rc == MQ_OK)
                rc = mq_kl_divergence(m, q.model, tokens, want + 1, MQ_PPL_DEFAULT, 0, 8, &kr,
                                      err);
            mq_progress_mute(-1);
            if (rc) {
                mq_error_prefix(err, "auto: %s as %s", tn, types[k].name);
                break;
            }
            cost[(size_t)t * n_types + k] = kr.mean;
            char extra[96];
            snprintf(extra, sizeof extra, "%.47s %.31s KL %.3g", tn, types[k].name, kr.mean);
            mq_progress_update(&pb, (int64_t)t * n_types + k + 1, extra);
        }
        mq_qmodel_free(&q);
    }
    if (rc == MQ_OK) mq_progress_finish(&pb, NULL);
    for (int i = 0; i < nl; i++)
        mq_gptq_hessian_free(&h[i]);
    free(h);
    return rc;
}
