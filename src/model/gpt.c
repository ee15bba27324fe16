/* miniquant: MiniGPT, forward, backward and AdamW in FP32 (the layout of llm.c's train_gpt2.c).
 *
 * Parameters, their gradients and the AdamW moments are each one array of num_params floats in
 * the order of the MQ_P_* enum. Activations are one allocation sized for the largest (B, T)
 * seen so far. The gradients of the activations are a second, much smaller allocation: backward
 * walks the layers from the top and each activation gradient has one consumer, so one buffer per
 * kind serves every layer, and the residual stream's gradient is accumulated in place (see
 * mq_gpt_backward). */
#include "miniquant/model.h"

#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "miniquant/layers.h"
#include "miniquant/rng.h"

/* ---------------------------------------------------------------------------------------------
 * configuration */

static const struct {
    const char *name;
    int n_ctx, n_embd, n_head, n_layer;
    const char *what;
} presets[] = {
    {"tiny", 64, 64, 2, 2, "tests; trains in seconds"},
    {"default", 128, 256, 4, 4, "every Linear input dimension a multiple of 256"},
};
#define NUM_PRESETS ((int)(sizeof presets / sizeof presets[0]))

/* Bounds that keep every size below in range of size_t and every per-call element count
 * (N * 4C at the largest (B, T) forward accepts) in range of int. */
#define MAX_VOCAB (1 << 22)
#define MAX_CTX (1 << 16)
#define MAX_EMBD (1 << 15)
#define MAX_LAYER 1024

int mq_gpt_preset(const char *name, int vocab_size, mq_gpt_config_t *cfg, mq_error_t *err) {
    for (int i = 0; i < NUM_PRESETS; i++) {
        if (!name || strcmp(name, presets[i].name) != 0) continue;
        memset(cfg, 0, sizeof *cfg);
        snprintf(cfg->name, sizeof cfg->name, "%s", presets[i].name);
        cfg->vocab_size = vocab_size;
        cfg->n_ctx = presets[i].n_ctx;
        cfg->n_embd = presets[i].n_embd;
        cfg->n_head = presets[i].n_head;
        cfg->n_layer = presets[i].n_layer;
        return mq_gpt_config_check(cfg, err);
    }
    char list[256] = "";
    size_t len = 0;
    for (int i = 0; i < NUM_PRESETS && len < sizeof list; i++)
        len += (size_t)snprintf(list + len, sizeof list - len, "%s%s (L=%d, C=%d, NH=%d, maxT=%d)",
                                i ? ", " : "", presets[i].name, presets[i].n_layer,
                                presets[i].n_embd, presets[i].n_head, presets[i].n_ctx);
    return mq_error_set(err, MQ_ERR_ARG, "unknown model preset '%s'; the presets are: %s",
                        name ? name : "(null)", list);
}

int mq_gpt_config_check(const mq_gpt_config_t *c, mq_error_t *err) {
    if (c->vocab_size < 1 || c->vocab_size > MAX_VOCAB)
        return mq_error_set(err, MQ_ERR_ARG, "model config: vocab_size %d is not in [1, %d]",
                            c->vocab_size, MAX_VOCAB);
    if (c->n_ctx < 1 || c->n_ctx > MAX_CTX)
        return mq_error_set(err, MQ_ERR_ARG, "model config: n_ctx %d is not in [1, %d]", c->n_ctx,
                            MAX_CTX);
    if (c->n_embd < 1 || c->n_embd > MAX_EMBD)
        return mq_error_set(err, MQ_ERR_ARG, "model config: n_embd %d is not in [1, %d]", c->n_embd,
                            MAX_EMBD);
    if (c->n_head < 1 || c->n_embd % c->n_head != 0)
        return mq_error_set(err, MQ_ERR_ARG,
                            "model config: n_head %d must be positive and divide n_embd %d",
                            c->n_head, c->n_embd);
    if (c->n_layer < 1 || c->n_layer > MAX_LAYER)
        return mq_error_set(err, MQ_ERR_ARG, "model config: n_layer %d is not in [1, %d]",
                            c->n_layer, MAX_LAYER);
    return MQ_OK;
}

/* ---------------------------------------------------------------------------------------------
 * parameters */

static const char *const param_names[MQ_NUM_PARAMS] = {
    "wte",  "wpe", "ln1w", "ln1b",    "qkvw",    "qkvb", "attprojw", "attprojb", "ln2w",
    "ln2b", "fcw", "fcb",  "fcprojw", "fcprojb", "lnfw", "lnfb",     "lmw"};

const char *mq_gpt_param_name(int param) {
    return param >= 0 && param < MQ_NUM_PARAMS ? param_names[param] : "?";
}

int mq_gpt_param_is_matrix(int param) {
    switch (param) {
    case MQ_P_WTE:
    case MQ_P_WPE:
    case MQ_P_QKVW:
    case MQ_P_ATTPROJW:
    case MQ_P_FCW:
    case MQ_P_FCPROJW:
    case MQ_P_LMW: return 1;
    default: return 0;
    }
}

static void fill_param_sizes(const mq_gpt_config_t *cfg, size_t *s) {
    size_t V = (size_t)cfg->vocab_size, maxT = (size_t)cfg->n_ctx, C = (size_t)cfg->n_embd,
           L = (size_t)cfg->n_layer;
    s[MQ_P_WTE] = V * C;
    s[MQ_P_WPE] = maxT * C;
    s[MQ_P_LN1W] = L * C;
    s[MQ_P_LN1B] = L * C;
    s[MQ_P_QKVW] = L * 3 * C * C;
    s[MQ_P_QKVB] = L * 3 * C;
    s[MQ_P_ATTPROJW] = L * C * C;
    s[MQ_P_ATTPROJB] = L * C;
    s[MQ_P_LN2W] = L * C;
    s[MQ_P_LN2B] = L * C;
    s[MQ_P_FCW] = L * 4 * C * C;
    s[MQ_P_FCB] = L * 4 * C;
    s[MQ_P_FCPROJW] = L * C * 4 * C;
    s[MQ_P_FCPROJB] = L * C;
    s[MQ_P_LNFW] = C;
    s[MQ_P_LNFB] = C;
    s[MQ_P_LMW] = V * C;
}

static void point_params(mq_gpt_params_t *p, float *mem, const size_t *sizes) {
    float **ptrs[MQ_NUM_PARAMS] = {&p->wte,  &p->wpe,      &p->ln1w,     &p->ln1b,    &p->qkvw,
                                   &p->qkvb, &p->attprojw, &p->attprojb, &p->ln2w,    &p->ln2b,
                                   &p->fcw,  &p->fcb,      &p->fcprojw,  &p->fcprojb, &p->lnfw,
                                   &p->lnfb, &p->lmw};
    for (int i = 0; i < MQ_NUM_PARAMS; i++) {
        *ptrs[i] = mem;
        mem += sizes[i];
    }
}

size_t mq_gpt_num_params(const mq_gpt_config_t *cfg) {
    size_t sizes[MQ_NUM_PARAMS], n = 0;
    fill_param_sizes(cfg, sizes);
    for (int i = 0; i < MQ_NUM_PARAMS; i++)
        n += sizes[i];
    return n;
}

int mq_gpt_init(mq_gpt_t *m, const mq_gpt_config_t *cfg, mq_error_t *err) {
    memset(m, 0, sizeof *m);
    int rc = mq_gpt_config_check(cfg, err);
    if (rc) return rc;
    m->cfg = *cfg;
    fill_param_sizes(cfg, m->param_sizes);
    m->num_params = mq_gpt_num_params(cfg);
    m->params_memory = calloc(m->num_params, sizeof(float));
    if (!m->params_memory)
        return mq_error_set(err, MQ_ERR_NOMEM, "out of memory for %zu model parameters",
                            m->num_params);
    point_params(&m->params, m->params_memory, m->param_sizes);
    m->mean_loss = -1.0f;
    return MQ_OK;
}

void mq_gpt_init_weights(mq_gpt_t *m, uint64_t seed) {
    mq_rng_t rng;
    mq_rng_seed(&rng, seed);
    float *p = m->params_memory;
    for (int i = 0; i < MQ_NUM_PARAMS; i++) {
        size_t n = m->param_sizes[i];
        if (mq_gpt_param_is_matrix(i)) {
            float std = 0.02f;
            /* the residual projections add to the stream once per block, twice per layer:
             * scaling them keeps the stream's variance from growing with depth (GPT-2) */
            if (i == MQ_P_ATTPROJW || i == MQ_P_FCPROJW)
                std = (float)(0.02 / sqrt(2.0 * m->cfg.n_layer));
            for (size_t j = 0; j < n; j++)
                p[j] = std * mq_rng_normal(&rng);
        } else {
            float v = (i == MQ_P_LN1W || i == MQ_P_LN2W || i == MQ_P_LNFW) ? 1.0f : 0.0f;
            for (size_t j = 0; j < n; j++)
                p[j] = v;
        }
        p += n;
    }
}

void mq_gpt_free(mq_gpt_t *m) {
    free(m->params_memory);
    free(m->grads_memory);
    free(m->m_memory);
    free(m->v_memory);
    free(m->acts_memory);
    free(m->grads_acts_memory);
    free(m->inputs);
    free(m->targets);
    memset(m, 0, sizeof *m);
}

float *mq_gpt_linear_weight(mq_gpt_t *m, mq_linear_id_t id, float **bias, int *OC, int *C) {
    size_t c = (size_t)m->cfg.n_embd;
    int l = id.layer;
    float *w = NULL, *b = NULL;
    size_t oc = 0, in = c;
    if (id.param == MQ_P_LMW) {
        if (l != 0) return NULL;
        w = m->params.lmw;
        oc = (size_t)m->cfg.vocab_size;
    } else {
        if (l < 0 || l >= m->cfg.n_layer) return NULL;
        switch (id.param) {
        case MQ_P_QKVW:
            oc = 3 * c;
            w = m->params.qkvw;
            b = m->params.qkvb;
            break;
        case MQ_P_ATTPROJW:
            oc = c;
            w = m->params.attprojw;
            b = m->params.attprojb;
            break;
        case MQ_P_FCW:
            oc = 4 * c;
            w = m->params.fcw;
            b = m->params.fcb;
            break;
        case MQ_P_FCPROJW:
            oc = c;
            in = 4 * c;
            w = m->params.fcprojw;
            b = m->params.fcprojb;
            break;
        default: return NULL;
        }
        w += (size_t)l * oc * in;
        b += (size_t)l * oc;
    }
    if (bias) *bias = b;
    if (OC) *OC = (int)oc;
    if (C) *C = (int)in;
    return w;
}

/* ---------------------------------------------------------------------------------------------
 * activations */

enum {
    A_ENCODED,
    A_LN1,
    A_LN1_MEAN,
    A_LN1_RSTD,
    A_QKV,
    A_ATTY,
    A_ATT,
    A_ATTPROJ,
    A_RESIDUAL2,
    A_LN2,
    A_LN2_MEAN,
    A_LN2_RSTD,
    A_FCH,
    A_FCH_GELU,
    A_FCPROJ,
    A_RESIDUAL3,
    A_LNF,
    A_LNF_MEAN,
    A_LNF_RSTD,
    A_LOGITS,
    A_PROBS,
    A_LOSSES
};

static void act_ptrs(mq_gpt_acts_t *a, float **ptrs[MQ_NUM_ACTS]) {
    float **p[MQ_NUM_ACTS] = {&a->encoded,   &a->ln1,      &a->ln1_mean, &a->ln1_rstd,  &a->qkv,
                              &a->atty,      &a->att,      &a->attproj,  &a->residual2, &a->ln2,
                              &a->ln2_mean,  &a->ln2_rstd, &a->fch,      &a->fch_gelu,  &a->fcproj,
                              &a->residual3, &a->lnf,      &a->lnf_mean, &a->lnf_rstd,  &a->logits,
                              &a->probs,     &a->losses};
    memcpy(ptrs, p, sizeof p);
}

static void fill_act_sizes(const mq_gpt_config_t *cfg, int B, int T, size_t *s) {
    size_t N = (size_t)B * T, C = (size_t)cfg->n_embd, L = (size_t)cfg->n_layer,
           NH = (size_t)cfg->n_head, V = (size_t)cfg->vocab_size;
    s[A_ENCODED] = N * C;
    s[A_LN1] = L * N * C;
    s[A_LN1_MEAN] = L * N;
    s[A_LN1_RSTD] = L * N;
    s[A_QKV] = L * N * 3 * C;
    s[A_ATTY] = L * N * C;
    s[A_ATT] = L * (size_t)B * NH * T * T;
    s[A_ATTPROJ] = L * N * C;
    s[A_RESIDUAL2] = L * N * C;
    s[A_LN2] = L * N * C;
    s[A_LN2_MEAN] = L * N;
    s[A_LN2_RSTD] = L * N;
    s[A_FCH] = L * N * 4 * C;
    s[A_FCH_GELU] = L * N * 4 * C;
    s[A_FCPROJ] = L * N * C;
    s[A_RESIDUAL3] = L * N * C;
    s[A_LNF] = N * C;
    s[A_LNF_MEAN] = N;
    s[A_LNF_RSTD] = N;
    s[A_LOGITS] = N * V;
    s[A_PROBS] = N * V;
    s[A_LOSSES] = N;
}

/* Makes the activations hold (B, T). act_sizes are capacities: they only grow, tensor by tensor,
 * so alternating between shapes does not reallocate each time. */
static int ensure_acts(mq_gpt_t *m, int B, int T, mq_error_t *err) {
    size_t need[MQ_NUM_ACTS];
    fill_act_sizes(&m->cfg, B, T, need);
    int grow = m->acts_memory == NULL;
    for (int i = 0; i < MQ_NUM_ACTS; i++)
        grow |= need[i] > m->act_sizes[i];
    if (!grow) return MQ_OK;
    size_t total = 0;
    for (int i = 0; i < MQ_NUM_ACTS; i++) {
        if (need[i] > m->act_sizes[i]) m->act_sizes[i] = need[i];
        total += m->act_sizes[i];
    }
    size_t cap_n = m->act_sizes[A_LOSSES];
    free(m->acts_memory);
    free(m->grads_acts_memory); /* its capacity follows act_sizes; backward reallocates it */
    free(m->inputs);
    free(m->targets);
    m->grads_acts_memory = NULL;
    memset(&m->grads_acts, 0, sizeof m->grads_acts);
    m->acts_memory = malloc(total * sizeof(float));
    m->inputs = malloc(cap_n * sizeof(int));
    m->targets = malloc(cap_n * sizeof(int));
    if (!m->acts_memory || !m->inputs || !m->targets) {
        free(m->acts_memory);
        free(m->inputs);
        free(m->targets);
        m->acts_memory = NULL;
        m->inputs = m->targets = NULL;
        memset(m->act_sizes, 0, sizeof m->act_sizes);
        memset(&m->acts, 0, sizeof m->acts);
        return mq_error_set(err, MQ_ERR_NOMEM, "out of memory for the activations at B=%d, T=%d", B,
                            T);
    }
    float **ptrs[MQ_NUM_ACTS];
    act_ptrs(&m->acts, ptrs);
    float *p = m->acts_memory;
    for (int i = 0; i < MQ_NUM_ACTS; i++) {
        *ptrs[i] = p;
        p += m->act_sizes[i];
    }
    return MQ_OK;
}

/* The gradients of the activations, at the capacity of the activations. Only these are set:
 * logits (N,V); lnf (N,C), shared by ln1 and ln2; residual3 (N,C), the residual stream;
 * fch (N,4C), shared by fch_gelu; qkv (N,3C); atty (N,C); att (B,NH,T,T) for one layer;
 * losses (N), the weight of each position in the mean loss. */
static int ensure_grads_acts(mq_gpt_t *m, mq_error_t *err) {
    if (m->grads_acts_memory) return MQ_OK;
    size_t C = (size_t)m->cfg.n_embd, V = (size_t)m->cfg.vocab_size, N = m->act_sizes[A_LOSSES];
    size_t att = m->act_sizes[A_ATT] / (size_t)m->cfg.n_layer;
    size_t sizes[8] = {N * V, N * C, N * C, N * 4 * C, N * 3 * C, N * C, att, N};
    size_t total = 0;
    for (int i = 0; i < 8; i++)
        total += sizes[i];
    float *p = malloc(total * sizeof(float));
    if (!p) return mq_error_set(err, MQ_ERR_NOMEM, "out of memory for the activation gradients");
    m->grads_acts_memory = p;
    mq_gpt_acts_t *g = &m->grads_acts;
    memset(g, 0, sizeof *g);
    g->logits = p;
    p += sizes[0];
    g->lnf = g->ln1 = g->ln2 = p;
    p += sizes[1];
    g->residual3 = p;
    p += sizes[2];
    g->fch = g->fch_gelu = p;
    p += sizes[3];
    g->qkv = p;
    p += sizes[4];
    g->atty = p;
    p += sizes[5];
    g->att = p;
    p += sizes[6];
    g->losses = p;
    return MQ_OK;
}

/* ---------------------------------------------------------------------------------------------
 * forward */

/* Every Linear of the forward pass goes through here, so that a replacement (a quantized
 * Linear) sees all of them. */
static int linear_forward(mq_gpt_t *m, int param, int layer, float *out, const float *inp,
                          const float *weight, const float *bias, int N, int C, int OC,
                          mq_error_t *err) {
    if (!m->linear_fn) {
        mq_matmul_forward(out, inp, weight, bias, N, C, OC);
        return MQ_OK;
    }
    mq_linear_id_t id = {param, layer};
    int rc = m->linear_fn(m->linear_ctx, id, out, inp, bias, N, C, OC);
    if (rc != MQ_OK)
        return mq_error_set(err, rc, "forward: the replacement Linear %s of layer %d failed (%s)",
                            mq_gpt_param_name(param), layer, mq_status_name(rc));
    return MQ_OK;
}

int mq_gpt_linear_forward(mq_gpt_t *m, mq_linear_id_t id, float *out, const float *inp, int N,
                          mq_error_t *err) {
    float *bias;
    int OC, C;
    const float *w = mq_gpt_linear_weight(m, id, &bias, &OC, &C);
    if (!w)
        return mq_error_set(err, MQ_ERR_ARG, "forward: %s of layer %d is not a Linear of the model",
                            mq_gpt_param_name(id.param), id.layer);
    return linear_forward(m, id.param, id.layer, out, inp, w, bias, N, C, OC, err);
}

static int check_tokens(const int *tok, size_t n, int V, const char *what, mq_error_t *err) {
    for (size_t i = 0; i < n; i++)
        if (tok[i] < 0 || tok[i] >= V)
            return mq_error_set(err, MQ_ERR_ARG,
                                "forward: %s[%zu] = %d is not a token id in [0, %d)", what, i,
                                tok[i], V);
    return MQ_OK;
}

int mq_gpt_forward(mq_gpt_t *m, const int *inputs, const int *targets, int B, int T,
                   mq_error_t *err) {
    const mq_gpt_config_t *cfg = &m->cfg;
    int V = cfg->vocab_size, C = cfg->n_embd, NH = cfg->n_head, L = cfg->n_layer;
    if (!m->params_memory) return mq_error_set(err, MQ_ERR_ARG, "forward: model not initialised");
    if (!inputs) return mq_error_set(err, MQ_ERR_ARG, "forward: no inputs");
    if (B < 1 || T < 1 || T > cfg->n_ctx)
        return mq_error_set(err, MQ_ERR_ARG, "forward: B=%d, T=%d (need B >= 1 and 1 <= T <= %d)",
                            B, T, cfg->n_ctx);
    /* the layers take element counts as int; N * 4C is the largest */
    if ((int64_t)B * T > INT_MAX / (4 * C))
        return mq_error_set(err, MQ_ERR_ARG, "forward: batch B=%d, T=%d too large", B, T);
    int N = B * T, rc;
    m->have_targets = 0;
    m->mean_loss = -1.0f;
    if ((rc = check_tokens(inputs, (size_t)N, V, "inputs", err))) return rc;
    if (targets && (rc = check_tokens(targets, (size_t)N, V, "targets", err))) return rc;
    if ((rc = ensure_acts(m, B, T, err))) return rc;
    m->B = B;
    m->T = T;
    memcpy(m->inputs, inputs, (size_t)N * sizeof(int));
    if (targets) memcpy(m->targets, targets, (size_t)N * sizeof(int));

    mq_gpt_params_t p = m->params;
    mq_gpt_acts_t a = m->acts;
    size_t NC = (size_t)N * C, TT = (size_t)B * NH * T * T, c = (size_t)C;
    mq_encoder_forward(a.encoded, inputs, p.wte, p.wpe, B, T, C);
    for (int l = 0; l < L; l++) {
        float *residual = l == 0 ? a.encoded : a.residual3 + (l - 1) * NC;
        float *ln1 = a.ln1 + l * NC, *ln1_mean = a.ln1_mean + l * N, *ln1_rstd = a.ln1_rstd + l * N;
        float *qkv = a.qkv + l * 3 * NC, *atty = a.atty + l * NC, *att = a.att + l * TT;
        float *attproj = a.attproj + l * NC, *residual2 = a.residual2 + l * NC;
        float *ln2 = a.ln2 + l * NC, *ln2_mean = a.ln2_mean + l * N, *ln2_rstd = a.ln2_rstd + l * N;
        float *fch = a.fch + l * 4 * NC, *fch_gelu = a.fch_gelu + l * 4 * NC;
        float *fcproj = a.fcproj + l * NC, *residual3 = a.residual3 + l * NC;

        mq_layernorm_forward(ln1, ln1_mean, ln1_rstd, residual, p.ln1w + l * c, p.ln1b + l * c, N,
                             C);
        rc = linear_forward(m, MQ_P_QKVW, l, qkv, ln1, p.qkvw + l * 3 * c * c, p.qkvb + l * 3 * c,
                            N, C, 3 * C, err);
        if (rc) return rc;
        mq_attention_forward(atty, att, qkv, B, T, C, NH);
        rc = linear_forward(m, MQ_P_ATTPROJW, l, attproj, atty, p.attprojw + l * c * c,
                            p.attprojb + l * c, N, C, C, err);
        if (rc) return rc;
        mq_residual_forward(residual2, residual, attproj, (int)NC);
        mq_layernorm_forward(ln2, ln2_mean, ln2_rstd, residual2, p.ln2w + l * c, p.ln2b + l * c, N,
                             C);
        rc = linear_forward(m, MQ_P_FCW, l, fch, ln2, p.fcw + l * 4 * c * c, p.fcb + l * 4 * c, N,
                            C, 4 * C, err);
        if (rc) return rc;
        mq_gelu_forward(fch_gelu, fch, (int)(4 * NC));
        rc = linear_forward(m, MQ_P_FCPROJW, l, fcproj, fch_gelu, p.fcprojw + l * 4 * c * c,
                            p.fcprojb + l * c, N, 4 * C, C, err);
        if (rc) return rc;
        mq_residual_forward(residual3, residual2, fcproj, (int)NC);
    }
    mq_layernorm_forward(a.lnf, a.lnf_mean, a.lnf_rstd, a.residual3 + (L - 1) * NC, p.lnfw, p.lnfb,
                         N, C);
    rc = linear_forward(m, MQ_P_LMW, 0, a.logits, a.lnf, p.lmw, NULL, N, C, V, err);
    if (rc) return rc;
    mq_softmax_crossentropy_forward(a.probs, targets ? a.losses : NULL, a.logits, targets, N, V);
    if (targets) {
        double sum = 0.0;
        for (int i = 0; i < N; i++)
            sum += a.losses[i];
        m->mean_loss = (float)(sum / N);
        m->have_targets = 1;
    }
    return MQ_OK;
}

/* ---------------------------------------------------------------------------------------------
 * backward */

int mq_gpt_zero_grad(mq_gpt_t *m, mq_error_t *err) {
    if (!m->params_memory) return mq_error_set(err, MQ_ERR_ARG, "zero_grad: model not initialised");
    if (!m->grads_memory) {
        m->grads_memory = calloc(m->num_params, sizeof(float));
        if (!m->grads_memory)
            return mq_error_set(err, MQ_ERR_NOMEM, "out of memory for %zu gradients",
                                m->num_params);
        point_params(&m->grads, m->grads_memory, m->param_sizes);
        return MQ_OK;
    }
    enum { CHUNKS = 64 };
    size_t n = m->num_params, chunk = (n + CHUNKS - 1) / CHUNKS;
#pragma omp parallel for schedule(static)
    for (int k = 0; k < CHUNKS; k++) {
        size_t i0 = (size_t)k * chunk, i1 = i0 + chunk < n ? i0 + chunk : n;
        if (i0 < i1) memset(m->grads_memory + i0, 0, (i1 - i0) * sizeof(float));
    }
    return MQ_OK;
}

/* The residual stream's gradient lives in one (N, C) buffer, dres. Walking down, it holds
 * d residual3[l]; that is also d fcproj[l], since residual3 = residual2 + fcproj; the MLP's
 * LayerNorm adds its part, making it d residual2[l] (= d attproj[l]); the attention's LayerNorm
 * adds its part, making it d residual3[l-1]. */
int mq_gpt_backward(mq_gpt_t *m, mq_error_t *err) {
    if (!m->have_targets)
        return mq_error_set(err, MQ_ERR_ARG, "backward: the last forward had no targets");
    int rc;
    if (!m->grads_memory && (rc = mq_gpt_zero_grad(m, err))) return rc;
    if ((rc = ensure_grads_acts(m, err))) return rc;
    const mq_gpt_config_t *cfg = &m->cfg;
    int B = m->B, T = m->T, N = B * T;
    int V = cfg->vocab_size, C = cfg->n_embd, NH = cfg->n_head, L = cfg->n_layer;
    size_t NC = (size_t)N * C, TT = (size_t)B * NH * T * T, c = (size_t)C;
    mq_gpt_params_t p = m->params, g = m->grads;
    mq_gpt_acts_t a = m->acts, ga = m->grads_acts;
    float *dres = ga.residual3, *dln = ga.lnf, *dfch = ga.fch, *dqkv = ga.qkv, *datty = ga.atty;

    float dloss = 1.0f / (float)N;
    for (int i = 0; i < N; i++)
        ga.losses[i] = dloss;
    mq_crossentropy_softmax_backward_overwrite(ga.logits, ga.losses, a.probs, m->targets, N, V);
    mq_matmul_backward_overwrite(dln, g.lmw, NULL, ga.logits, a.lnf, p.lmw, N, C, V);
    memset(dres, 0, NC * sizeof(float));
    mq_layernorm_backward(dres, g.lnfw, g.lnfb, dln, a.residual3 + (L - 1) * NC, p.lnfw, a.lnf_mean,
                          a.lnf_rstd, N, C);
    for (int l = L - 1; l >= 0; l--) {
        float *residual = l == 0 ? a.encoded : a.residual3 + (l - 1) * NC;
        float *ln1 = a.ln1 + l * NC, *ln1_mean = a.ln1_mean + l * N, *ln1_rstd = a.ln1_rstd + l * N;
        float *qkv = a.qkv + l * 3 * NC, *atty = a.atty + l * NC, *att = a.att + l * TT;
        float *residual2 = a.residual2 + l * NC;
        float *ln2 = a.ln2 + l * NC, *ln2_mean = a.ln2_mean + l * N, *ln2_rstd = a.ln2_rstd + l * N;
        float *fch = a.fch + l * 4 * NC, *fch_gelu = a.fch_gelu + l * 4 * NC;

        mq_matmul_backward_overwrite(dfch, g.fcprojw + l * 4 * c * c, g.fcprojb + l * c, dres,
                                     fch_gelu, p.fcprojw + l * 4 * c * c, N, 4 * C, C);
        mq_gelu_backward_inplace(dfch, fch, (int)(4 * NC));
        mq_matmul_backward_overwrite(dln, g.fcw + l * 4 * c * c, g.fcb + l * 4 * c, dfch, ln2,
                                     p.fcw + l * 4 * c * c, N, C, 4 * C);
        mq_layernorm_backward(dres, g.ln2w + l * c, g.ln2b + l * c, dln, residual2, p.ln2w + l * c,
                              ln2_mean, ln2_rstd, N, C);
        mq_matmul_backward_overwrite(datty, g.attprojw + l * c * c, g.attprojb + l * c, dres, atty,
                                     p.attprojw + l * c * c, N, C, C);
        mq_attention_backward_overwrite(dqkv, ga.att, datty, qkv, att, B, T, C, NH);
        mq_matmul_backward_overwrite(dln, g.qkvw + l * 3 * c * c, g.qkvb + l * 3 * c, dqkv, ln1,
                                     p.qkvw + l * 3 * c * c, N, C, 3 * C);
        mq_layernorm_backward(dres, g.ln1w + l * c, g.ln1b + l * c, dln, residual, p.ln1w + l * c,
                              ln1_mean, ln1_rstd, N, C);
    }
    mq_encoder_backward(g.wte, g.wpe, dres, m->inputs, B, T, C);
    return MQ_OK;
}

/* ---------------------------------------------------------------------------------------------
 * optimizer */

float mq_gpt_clip_grad_norm(mq_gpt_t *m, float max_norm) {
    if (!m->grads_memory) return 0.0f;
    /* a fixed number of chunks summed in order: the same norm for any thread count */
    enum { CHUNKS = 256 };
    double part[CHUNKS];
    const float *gr = m->grads_memory;
    size_t n = m->num_params, chunk = (n + CHUNKS - 1) / CHUNKS;
#pragma omp parallel for schedule(static)
    for (int k = 0; k < CHUNKS; k++) {
        size_t i0 = (size_t)k * chunk, i1 = i0 + chunk < n ? i0 + chunk : n;
        double s = 0.0;
#pragma omp simd reduction(+ : s)
        for (size_t i = i0; i < i1; i++)
            s += (double)gr[i] * gr[i];
        part[k] = s;
    }
    double total = 0.0;
    for (int k = 0; k < CHUNKS; k++)
        total += part[k];
    double norm = sqrt(total);
    if (max_norm > 0.0f && norm > max_norm) {
        float scale = (float)(max_norm / norm);
        float *gw = m->grads_memory;
#pragma omp parallel for simd schedule(static)
        for (size_t i = 0; i < n; i++)
            gw[i] *= scale;
    }
    return (float)norm;
}

int mq_gpt_adamw_update(mq_gpt_t *m, float lr, float beta1, float beta2, float eps,
                        float weight_decay, int t, mq_error_t *err) {
    if (!m->grads_memory) return mq_error_set(err, MQ_ERR_ARG, "adamw: no gradients");
    if (t < 1) return mq_error_set(err, MQ_ERR_ARG, "adamw: step %d (counts from 1)", t);
    if (!m->m_memory) m->m_memory = calloc(m->num_params, sizeof(float));
    if (!m->v_memory) m->v_memory = calloc(m->num_params, sizeof(float));
    if (!m->m_memory || !m->v_memory)
        return mq_error_set(err, MQ_ERR_NOMEM, "out of memory for the AdamW moments");
    /* bias corrections as reciprocals: one division per element instead of three */
    float ibc1 = (float)(1.0 / (1.0 - pow(beta1, t))), ibc2 = (float)(1.0 / (1.0 - pow(beta2, t)));
    /* one parallel region, no barrier between tensors: each thread takes its static share of
     * every tensor in turn */
#pragma omp parallel
    {
        size_t off = 0;
        for (int i = 0; i < MQ_NUM_PARAMS; i++) {
            size_t n = m->param_sizes[i];
            float wd = mq_gpt_param_is_matrix(i) ? weight_decay : 0.0f;
            float *w = m->params_memory + off, *gr = m->grads_memory + off;
            float *mm = m->m_memory + off, *vv = m->v_memory + off;
#pragma omp for simd schedule(static) nowait
            for (size_t j = 0; j < n; j++) {
                float gj = gr[j];
                float mj = beta1 * mm[j] + (1.0f - beta1) * gj;
                float vj = beta2 * vv[j] + (1.0f - beta2) * gj * gj;
                mm[j] = mj;
                vv[j] = vj;
                float mhat = mj * ibc1, vhat = vj * ibc2;
                w[j] -= lr * (mhat / (sqrtf(vhat) + eps) + wd * w[j]);
            }
            off += n;
        }
    }
    return MQ_OK;
}
