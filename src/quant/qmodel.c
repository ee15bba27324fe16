#include "miniquant/qmodel.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "miniquant/arch.h"
#include "miniquant/fp16.h"
#include "miniquant/gguf.h"
#include "miniquant/kernels.h"
#include "miniquant/layers.h"

int mq_qmodel_n_linear(const mq_gpt_config_t *cfg) {
    return mq_arch_n_linear(cfg);
}

mq_linear_id_t mq_qmodel_linear_id(const mq_gpt_config_t *cfg, int index) {
    return mq_arch_linear_id(cfg, index);
}

void mq_qmodel_linear_name(const mq_gpt_config_t *cfg, int index, char *buf, size_t n) {
    mq_arch_linear_name(cfg, index, buf, n);
}

int mq_qmodel_linear_index(const mq_gpt_config_t *cfg, mq_linear_id_t id) {
    return mq_arch_linear_index(cfg, id);
}

/* q->model's forward calls this for every Linear. */
static int qmodel_linear(void *ctx, mq_linear_id_t id, float *out, const float *inp,
                         const float *bias, int N, int C, int OC) {
    (void)bias, (void)C, (void)OC; /* the layer holds its own copy of the bias */
    mq_qmodel_t *q = ctx;
    int i = mq_qmodel_linear_index(&q->model->cfg, id);
    if (i < 0 || !q->ql[i].w.data) return MQ_ERR_ARG;
    if (q->fused) return mq_qlinear_forward(&q->ql[i], out, inp, N, NULL);
    return mq_qlinear_forward_ref(&q->ql[i], out, inp, N, NULL);
}

/* Its step form: the fused kernels' (the reference path has none). */
static int qmodel_step(void *ctx, mq_linear_id_t id, mq_step_linear_t *out) {
    mq_qmodel_t *q = ctx;
    int i = mq_qmodel_linear_index(&q->model->cfg, id);
    if (i < 0 || !q->ql[i].w.data) return MQ_ERR_ARG;
    if (!q->fused) return MQ_ERR_UNSUPPORTED;
    return mq_qweight_step(&q->ql[i].w, q->ql[i].bias, out, NULL);
}

void mq_qmodel_ready(mq_qmodel_t *q) {
    q->fused = !mq_kernels_reference_requested();
    q->model->linear_fn = qmodel_linear;
    q->model->linear_ctx = q;
    q->model->step_fn = qmodel_step;
    q->model->step_pair = qmodel_linear;
}

int mq_qmodel_init(mq_qmodel_t *q, const mq_gpt_config_t *cfg, const mq_scheme_t *s,
                   mq_error_t *err) {
    memset(q, 0, sizeof *q);
    int rc = mq_scheme_check(s, err);
    if (rc) return rc;
    q->scheme = *s;
    q->n_linear = mq_qmodel_n_linear(cfg);
    q->ql = calloc((size_t)q->n_linear, sizeof *q->ql);
    q->active = calloc((size_t)q->n_linear, sizeof *q->active);
    q->model = calloc(1, sizeof *q->model);
    if (!q->ql || !q->active || !q->model) {
        mq_qmodel_free(q);
        return mq_error_set(err, MQ_ERR_NOMEM, "out of memory");
    }
    /* the Linear weights' share of the allocation is never written, so its pages are never
     * touched (calloc maps large blocks on demand) */
    rc = mq_gpt_init(q->model, cfg, err);
    if (rc) {
        free(q->model);
        q->model = NULL;
        mq_qmodel_free(q);
    }
    return rc;
}

int mq_qmodel_set_linear(mq_qmodel_t *q, int i, mq_qweight_t *w, mq_error_t *err) {
    if (i < 0 || i >= q->n_linear) return mq_error_set(err, MQ_ERR_ARG, "no Linear %d", i);
    float *bias;
    int OC, C;
    mq_gpt_linear_weight(q->model, mq_qmodel_linear_id(&q->model->cfg, i), &bias, &OC, &C);
    if (w->rows != OC || w->cols != C)
        return mq_error_set(err, MQ_ERR_ARG, "Linear %d is %d x %d, the weight %d x %d", i, OC, C,
                            w->rows, w->cols);
    mq_qlinear_t ql;
    int rc = mq_qlinear_from_weight(&ql, w, bias, err);
    if (rc) return rc;
    mq_qlinear_free(&q->ql[i]);
    q->ql[i] = ql;
    q->active[i] = !mq_scheme_is_identity(&ql.w.scheme) || mq_scheme_is_identity(&q->scheme);
    return MQ_OK;
}

/* Linear i of q as the FP32 weight of m, read where it lies. */
static int borrow_fp32(mq_qmodel_t *q, const mq_gpt_t *m, int i, mq_error_t *err) {
    int OC, C;
    const float *W =
        mq_gpt_linear_weight((mq_gpt_t *)m, mq_qmodel_linear_id(&m->cfg, i), NULL, &OC, &C);
    mq_scheme_t fp32;
    mq_qweight_t w;
    int bad_row;
    mq_row_fault_t fault;
    mq_scheme_parse("fp32", &fp32, NULL);
    int rc = mq_qweight_load(&w, &fp32, mq_format_for(&fp32, C, NULL), OC, C, (const uint8_t *)W,
                             NULL, 1, &bad_row, &fault, err);
    if (rc == MQ_OK) rc = mq_qmodel_set_linear(q, i, &w, err);
    q->active[i] = mq_scheme_is_identity(&q->scheme);
    return rc;
}

/* Prefixes err with what it is about: the model's file (when it came from one) and the tensor. */
static int prefix_source(const mq_gpt_t *m, const char *tensor, mq_error_t *err) {
    if (m->source[0]) return mq_error_prefix(err, "%s: %s", m->source, tensor);
    return mq_error_prefix(err, "%s", tensor);
}

int mq_qmodel_set_embd(mq_qmodel_t *q, const mq_scheme_t *s, mq_error_t *err) {
    const mq_gpt_config_t *c = &q->model->cfg;
    mq_qweight_t w;
    int rc = mq_qweight_quantize(&w, s, q->model->params.wte, c->vocab_size, c->n_embd, err);
    if (rc) return prefix_source(q->model, "token_embd", err);
    mq_qweight_free(&q->embd);
    q->embd = w;
    mq_qweight_dequantize(&q->embd, q->model->params.wte);
    return MQ_OK;
}

int mq_qmodel_quantize(mq_qmodel_t *q, const mq_gpt_t *m, const mq_scheme_t *s,
                       const mq_qmodel_opts_t *opts, mq_error_t *err) {
    mq_qmodel_opts_t def = {0, -1, 0, NULL};
    if (!opts) opts = &def;
    const mq_recipe_t *r = opts->recipe;
    if (r && r->n_linear != mq_qmodel_n_linear(&m->cfg))
        return mq_error_set(err, MQ_ERR_ARG, "recipe %s has %d Linears, the model %d", r->name,
                            r->n_linear, mq_qmodel_n_linear(&m->cfg));
    int rc = mq_qmodel_init(q, &m->cfg, r ? &r->linear[0] : s, err);
    if (rc) return rc;
    if (r) snprintf(q->recipe, sizeof q->recipe, "%s", r->name);
    snprintf(q->model->source, sizeof q->model->source, "%s", m->source);
    q->skip_lm_head = opts->skip_lm_head;
    /* the non-Linear parameters, as this scheme stores them */
    float **dst = (float **)&q->model->params, *const *src = (float *const *)&m->params;
    for (int p = 0; p < MQ_NUM_PARAMS; p++)
        if (!mq_arch_is_linear_weight(&m->cfg, p))
            memcpy(dst[p], src[p], m->param_sizes[p] * sizeof(float));
    if (q->scheme.family->embeddings_f16 && !opts->keep_embeddings) {
        /* wte and wpe are adjacent in the parameter block; a recipe stores wte itself */
        size_t n0 = r ? m->param_sizes[MQ_P_WTE] : 0;
        size_t n = m->param_sizes[MQ_P_WTE] + m->param_sizes[MQ_P_WPE];
        float *e = q->model->params.wte;
        for (size_t k = n0; k < n && rc == MQ_OK; k++) {
            e[k] = mq_round_fp16(e[k]);
            if (!isfinite(e[k])) {
                int wpe = k >= m->param_sizes[MQ_P_WTE];
                size_t at = wpe ? k - m->param_sizes[MQ_P_WTE] : k;
                char name[64];
                mq_arch_tensor_name(&m->cfg, wpe ? MQ_P_WPE : MQ_P_WTE, 0, name, sizeof name);
                rc = mq_error_set(err, MQ_ERR_ARG,
                                  "%s: tensor %s element (%zu, %zu) is %g, beyond FP16's 65504 "
                                  "(scheme %s stores it as f16)",
                                  m->source[0] ? m->source : "the model", name,
                                  at / (size_t)m->cfg.n_embd, at % (size_t)m->cfg.n_embd,
                                  (double)src[MQ_P_WTE][k], q->scheme.name);
            }
        }
    }
    if (rc == MQ_OK && r && !opts->keep_embeddings) rc = mq_qmodel_set_embd(q, &r->embd, err);
    for (int i = 0; i < q->n_linear && rc == MQ_OK; i++) {
        int is_head = mq_qmodel_linear_id(&m->cfg, i).param == MQ_P_LMW;
        if (opts->only == -2 || (opts->only >= 0 && i != opts->only) ||
            (is_head && opts->skip_lm_head)) {
            rc = borrow_fp32(q, m, i, err);
            continue;
        }
        float *bias;
        int OC, C;
        const float *W =
            mq_gpt_linear_weight((mq_gpt_t *)m, mq_qmodel_linear_id(&m->cfg, i), &bias, &OC, &C);
        mq_qweight_t w;
        rc = mq_qweight_quantize(&w, r ? &r->linear[i] : s, W, OC, C, err);
        if (rc == MQ_OK) rc = mq_qmodel_set_linear(q, i, &w, err);
        if (rc) {
            char name[64];
            mq_qmodel_linear_name(&m->cfg, i, name, sizeof name);
            prefix_source(m, name, err);
        }
    }
    if (rc) {
        mq_qmodel_free(q);
        return rc;
    }
    mq_qmodel_ready(q);
    return MQ_OK;
}

void mq_qmodel_free(mq_qmodel_t *q) {
    for (int i = 0; q->ql && i < q->n_linear; i++)
        mq_qlinear_free(&q->ql[i]);
    if (q->model) {
        mq_gpt_free(q->model);
        free(q->model);
    }
    free(q->ql);
    free(q->active);
    mq_qweight_free(&q->embd);
    mq_gguf_free(q->file);
    memset(q, 0, sizeof *q);
}

void mq_model_bytes(const mq_gpt_t *m, const mq_qmodel_t *q, mq_model_bytes_t *out) {
    memset(out, 0, sizeof *out);
    if (q) m = q->model;
    const mq_gpt_config_t *c = &m->cfg;
    int f16_embeddings = q && q->scheme.family->embeddings_f16;
    size_t packed_bits = 0;
    int n = mq_qmodel_n_linear(c);
    for (int i = 0; i < n; i++) {
        mq_linear_id_t id = mq_qmodel_linear_id(c, i);
        int OC, C;
        float *bias;
        mq_gpt_linear_weight((mq_gpt_t *)m, id, &bias, &OC, &C);
        size_t numel = (size_t)OC * (size_t)C;
        out->linear_params += numel;
        if (bias) out->bias += (size_t)OC * sizeof(float);
        if (q && q->active[i]) {
            out->linear += mq_qweight_bytes(&q->ql[i].w);
            packed_bits += (size_t)(mq_qweight_bits_per_weight(&q->ql[i].w) * (double)numel + 0.5);
        } else {
            out->linear += numel * sizeof(float);
            packed_bits += numel * 32;
        }
    }
    size_t es = f16_embeddings ? 2 : sizeof(float);
    out->embedding = q && q->embd.data
                         ? mq_qweight_stored_bytes(&q->embd) + m->param_sizes[MQ_P_WPE] * es
                         : (m->param_sizes[MQ_P_WTE] + m->param_sizes[MQ_P_WPE]) * es;
    out->layernorm =
        (m->param_sizes[MQ_P_LN1W] + m->param_sizes[MQ_P_LN1B] + m->param_sizes[MQ_P_LN2W] +
         m->param_sizes[MQ_P_LN2B] + m->param_sizes[MQ_P_LNFW] + m->param_sizes[MQ_P_LNFB]) *
        sizeof(float);
    out->total = out->linear + out->bias + out->embedding + out->layernorm;
    out->bits_per_weight = (double)packed_bits / (double)out->linear_params;
    out->bits_per_weight_memory = 8.0 * (double)out->linear / (double)out->linear_params;
}
