#include "miniquant/qmodel.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "miniquant/fp16.h"
#include "miniquant/kernels.h"
#include "miniquant/layers.h"

static const int BLOCK_LINEARS[4] = {MQ_P_QKVW, MQ_P_ATTPROJW, MQ_P_FCW, MQ_P_FCPROJW};
static const char *const BLOCK_NAMES[4] = {"attn_qkv", "attn_output", "ffn_up", "ffn_down"};

int mq_qmodel_n_linear(const mq_gpt_config_t *cfg) { return 4 * cfg->n_layer + 1; }

mq_linear_id_t mq_qmodel_linear_id(const mq_gpt_config_t *cfg, int index) {
    if (index == 4 * cfg->n_layer) return (mq_linear_id_t){MQ_P_LMW, 0};
    return (mq_linear_id_t){BLOCK_LINEARS[index % 4], index / 4};
}

void mq_qmodel_linear_name(const mq_gpt_config_t *cfg, int index, char *buf, size_t n) {
    if (index == 4 * cfg->n_layer) snprintf(buf, n, "output");
    else snprintf(buf, n, "blk.%d.%s", index / 4, BLOCK_NAMES[index % 4]);
}

static int index_of(const mq_gpt_config_t *cfg, mq_linear_id_t id) {
    if (id.param == MQ_P_LMW) return 4 * cfg->n_layer;
    for (int k = 0; k < 4; k++)
        if (BLOCK_LINEARS[k] == id.param) return 4 * id.layer + k;
    return -1;
}

/* The model's forward calls this for every Linear. */
static int qmodel_linear(void *ctx, mq_linear_id_t id, float *out, const float *inp,
                         const float *bias, int N, int C, int OC) {
    mq_qmodel_t *q = ctx;
    int i = index_of(&q->model->cfg, id);
    if (i < 0 || !q->active[i]) {
        const float *W = mq_gpt_linear_weight(q->model, id, NULL, NULL, NULL);
        if (!W) return MQ_ERR_ARG;
        mq_matmul_forward(out, inp, W, bias, N, C, OC);
        return MQ_OK;
    }
    if (q->fused) return mq_qlinear_forward(&q->ql[i], out, inp, N, NULL);
    return mq_qlinear_forward_ref(&q->ql[i], out, inp, N, NULL);
}

void mq_qmodel_install(mq_qmodel_t *q, mq_gpt_t *m) {
    q->model = m;
    /* the fused kernels unless MQ_REFERENCE=1; callers may set q->fused = 0 afterwards. A layer
     * that cannot be packed here (out of memory) is packed per call instead. */
    q->fused = !mq_kernels_reference_requested();
    for (int i = 0; q->fused && i < q->n_linear; i++)
        if (q->active[i]) mq_qlinear_pack(&q->ql[i], NULL);
    m->linear_fn = qmodel_linear;
    m->linear_ctx = q;
}

static int qmodel_alloc(mq_qmodel_t *q, const mq_gpt_t *m, mq_error_t *err) {
    q->n_linear = mq_qmodel_n_linear(&m->cfg);
    q->ql = calloc((size_t)q->n_linear, sizeof *q->ql);
    q->active = calloc((size_t)q->n_linear, sizeof *q->active);
    if (!q->ql || !q->active) {
        free(q->ql);
        free(q->active);
        return mq_error_set(err, MQ_ERR_NOMEM, "out of memory");
    }
    return MQ_OK;
}

int mq_qmodel_apply(mq_qmodel_t *q, mq_gpt_t *m, const mq_scheme_t *s,
                    const mq_qmodel_opts_t *opts, mq_error_t *err) {
    mq_qmodel_opts_t def = {0, -1, 0};
    if (!opts) opts = &def;
    memset(q, 0, sizeof *q);
    q->scheme = *s;
    q->skip_lm_head = opts->skip_lm_head;
    int rc = qmodel_alloc(q, m, err);
    if (rc) return rc;
    for (int i = 0; i < q->n_linear && rc == MQ_OK; i++) {
        int is_head = i == 4 * m->cfg.n_layer;
        if ((opts->only >= 0 && i != opts->only) || (is_head && opts->skip_lm_head)) continue;
        float *bias;
        int OC, C;
        const float *W = mq_gpt_linear_weight(m, mq_qmodel_linear_id(&m->cfg, i), &bias, &OC, &C);
        rc = mq_qlinear_from_linear(&q->ql[i], W, bias, OC, C, s, err);
        if (rc) {
            char name[64];
            mq_qmodel_linear_name(&m->cfg, i, name, sizeof name);
            mq_error_prefix(err, "%s", name);
        } else {
            q->active[i] = 1;
        }
    }
    if (rc) {
        mq_qmodel_free(q);
        return rc;
    }
    if (s->kind != MQ_QK_FP32 && !opts->keep_embeddings) {
        size_t n = m->param_sizes[MQ_P_WTE] + m->param_sizes[MQ_P_WPE];
        float *e = m->params.wte; /* wte and wpe are adjacent in the parameter block */
        for (size_t k = 0; k < n; k++) e[k] = mq_round_fp16(e[k]);
    }
    mq_qmodel_install(q, m);
    return MQ_OK;
}

void mq_qmodel_free(mq_qmodel_t *q) {
    if (q->model && q->model->linear_ctx == q) {
        q->model->linear_fn = NULL;
        q->model->linear_ctx = NULL;
    }
    for (int i = 0; q->ql && i < q->n_linear; i++) {
        mq_qlinear_unpack(&q->ql[i]);
        mq_qlinear_free(&q->ql[i]);
    }
    free(q->ql);
    free(q->active);
    memset(q, 0, sizeof *q);
}

void mq_model_bytes(const mq_gpt_t *m, const mq_qmodel_t *q, mq_model_bytes_t *out) {
    memset(out, 0, sizeof *out);
    const mq_gpt_config_t *c = &m->cfg;
    int fp32 = !q || q->scheme.kind == MQ_QK_FP32;
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
    out->embedding =
        (m->param_sizes[MQ_P_WTE] + m->param_sizes[MQ_P_WPE]) * (fp32 ? sizeof(float) : 2);
    out->layernorm = (m->param_sizes[MQ_P_LN1W] + m->param_sizes[MQ_P_LN1B] +
                      m->param_sizes[MQ_P_LN2W] + m->param_sizes[MQ_P_LN2B] +
                      m->param_sizes[MQ_P_LNFW] + m->param_sizes[MQ_P_LNFB]) *
                     sizeof(float);
    out->total = out->linear + out->bias + out->embedding + out->layernorm;
    out->bits_per_weight = (double)packed_bits / (double)out->linear_params;
    out->bits_per_weight_memory = 8.0 * (double)out->linear / (double)out->linear_params;
}
