/* miniquant: the FP32 model (model.h) of any architecture of arch.h: configuration, parameters,
 * activations, the forward and backward passes around each architecture's layers, AdamW; and
 * the gpt2 architecture's layers, forward and backward (the layout of llm.c's train_gpt2.c).
 *
 * Parameters, their gradients and the AdamW moments are each one array of num_params floats in
 * the order of the MQ_P_* enum (the tensors an architecture lacks take no room). Activations are
 * one allocation sized for the largest (B, T) seen so far. The gradients of the activations are a
 * second, much smaller allocation: backward walks the layers from the top and each activation
 * gradient has one consumer, so one buffer per kind serves every layer, and the residual stream's
 * gradient is accumulated in place (see mq_gpt_backward). */
#include "miniquant/model.h"

#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "miniquant/layers.h"
#include "miniquant/rng.h"
#include "model_internal.h"

/* ---------------------------------------------------------------------------------------------
 * configuration */

static const struct {
    const char *name;
    int arch, n_ctx, n_embd, n_head, n_layer, n_head_kv, n_ff;
    const char *what;
} presets[] = {
    {"tiny", MQ_ARCH_GPT2, 64, 64, 2, 2, 0, 0, "tests; trains in seconds"},
    {"default", MQ_ARCH_GPT2, 128, 256, 4, 4, 0, 0,
     "every Linear input dimension a multiple of 256"},
    {"llama-tiny", MQ_ARCH_LLAMA, 64, 64, 2, 2, 1, 192, "tests; trains in seconds"},
    {"llama-default", MQ_ARCH_LLAMA, 128, 256, 4, 4, 2, 768,
     "MiniGPT default's parameters; every Linear input dimension a multiple of 256"},
};
#define NUM_PRESETS ((int)(sizeof presets / sizeof presets[0]))

/* Bounds that keep every size below in range of size_t and every per-call element count
 * (N x the widest activation at the largest (B, T) forward accepts) in range of int. */
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
        cfg->arch = presets[i].arch;
        cfg->n_ctx = presets[i].n_ctx;
        cfg->n_embd = presets[i].n_embd;
        cfg->n_head = presets[i].n_head;
        cfg->n_layer = presets[i].n_layer;
        cfg->n_head_kv = presets[i].n_head_kv;
        cfg->n_ff = presets[i].n_ff;
        mq_gpt_config_defaults(cfg);
        return mq_gpt_config_check(cfg, err);
    }
    char list[512] = "";
    size_t len = 0;
    for (int i = 0; i < NUM_PRESETS && len < sizeof list; i++)
        len += (size_t)snprintf(list + len, sizeof list - len,
                                "%s%s (%s, L=%d, C=%d, NH=%d, maxT=%d)", i ? ", " : "",
                                presets[i].name, mq_arch(presets[i].arch)->name, presets[i].n_layer,
                                presets[i].n_embd, presets[i].n_head, presets[i].n_ctx);
    return mq_error_set(err, MQ_ERR_ARG, "unknown model preset '%s'; the presets are: %s",
                        name ? name : "(null)", list);
}

void mq_gpt_config_defaults(mq_gpt_config_t *c) {
    if (c->n_head_kv == 0) c->n_head_kv = c->n_head;
    if (c->n_ff == 0) c->n_ff = 4 * c->n_embd;
    if (c->n_rot == 0 && c->n_head > 0) c->n_rot = c->n_embd / c->n_head;
    if (c->rope_base == 0.0f) c->rope_base = 10000.0f;
    if (c->norm_eps == 0.0f) c->norm_eps = 1e-5f;
}

int mq_gpt_config_check(const mq_gpt_config_t *cfg, mq_error_t *err) {
    if (!mq_arch(cfg->arch))
        return mq_error_set(err, MQ_ERR_ARG, "model config: architecture %d is not one of %s",
                            cfg->arch, mq_arch_names());
    mq_gpt_config_t full = *cfg;
    mq_gpt_config_defaults(&full);
    const mq_gpt_config_t *c = &full;
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
    if (c->n_ff < 1 || c->n_ff > 16 * MAX_EMBD)
        return mq_error_set(err, MQ_ERR_ARG, "model config: n_ff %d is not in [1, %d]", c->n_ff,
                            16 * MAX_EMBD);
    if (!(c->norm_eps > 0.0f && c->norm_eps < 1.0f))
        return mq_error_set(err, MQ_ERR_ARG, "model config: norm_eps %g is not in (0, 1)",
                            c->norm_eps);
    if (c->arch == MQ_ARCH_GPT2) {
        /* GPT-2's layers: one fused QKV of 3C, LayerNorm at 1e-5 */
        if (c->n_head_kv != c->n_head || c->norm_eps != 1e-5f)
            return mq_error_set(err, MQ_ERR_ARG,
                                "model config: gpt2 needs n_head_kv = n_head (%d, not %d) and "
                                "norm_eps 1e-5 (not %g)",
                                c->n_head, c->n_head_kv, c->norm_eps);
        return MQ_OK;
    }
    int hs = c->n_embd / c->n_head;
    if (c->n_head_kv < 1 || c->n_head % c->n_head_kv != 0)
        return mq_error_set(err, MQ_ERR_ARG,
                            "model config: n_head_kv %d must be positive and divide n_head %d",
                            c->n_head_kv, c->n_head);
    if (c->n_rot < 2 || c->n_rot > hs || c->n_rot % 2)
        return mq_error_set(err, MQ_ERR_ARG,
                            "model config: n_rot %d must be even and in [2, %d] (the head size)",
                            c->n_rot, hs);
    if (!(c->rope_base > 1.0f && c->rope_base < 1e12f))
        return mq_error_set(err, MQ_ERR_ARG, "model config: rope_base %g is not in (1, 1e12)",
                            c->rope_base);
    return MQ_OK;
}

/* ---------------------------------------------------------------------------------------------
 * parameters */

static const char *const param_names[MQ_NUM_PARAMS] = {
    "wte",      "wpe",  "ln1w", "ln1b", "qkvw", "qkvb",    "attprojw",
    "attprojb", "ln2w", "ln2b", "fcw",  "fcb",  "fcprojw", "fcprojb",
    "lnfw",     "lnfb", "lmw",  "qw",   "kw",   "vw",      "gatew"};

const char *mq_gpt_param_name(int param) {
    return param >= 0 && param < MQ_NUM_PARAMS ? param_names[param] : "?";
}

int mq_gpt_param_is_matrix(int param) {
    for (int a = 0; a < MQ_NUM_ARCHS; a++) {
        const mq_arch_tensor_t *t =
            param >= 0 && param < MQ_NUM_PARAMS ? &mq_arch(a)->tensor[param] : NULL;
        if (t && t->gguf && t->rows != MQ_DIM_NONE) return 1;
    }
    return 0;
}

static void fill_param_sizes(const mq_gpt_config_t *cfg, size_t *s) {
    const mq_arch_t *a = mq_arch(cfg->arch);
    for (int p = 0; p < MQ_NUM_PARAMS; p++) {
        int64_t rows, cols;
        mq_arch_param_shape(cfg, p, &rows, &cols);
        s[p] = (size_t)(rows ? rows : 1) * (size_t)cols *
               (size_t)(a->tensor[p].stacked ? cfg->n_layer : 1);
    }
}

_Static_assert(sizeof(mq_gpt_params_t) == MQ_NUM_PARAMS * sizeof(float *),
               "mq_gpt_params_t is one pointer per parameter, in the enum's order");

static void point_params(mq_gpt_params_t *p, float *mem, const size_t *sizes) {
    float **ptrs = (float **)p; /* the struct is float *[MQ_NUM_PARAMS] in the enum's order */
    for (int i = 0; i < MQ_NUM_PARAMS; i++) {
        ptrs[i] = mem;
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

/* RoPE's angles, as llama.cpp's rope cache computes them for freq_scale 1 and no YaRN:
 * position p, pair i rotates by p * base^(-2i / n_rot). */
static int rope_cache(mq_gpt_t *m, mq_error_t *err) {
    int T = m->cfg.n_ctx, half = m->cfg.n_rot / 2;
    m->rope = malloc((size_t)T * half * 2 * sizeof(float));
    if (!m->rope) return mq_error_set(err, MQ_ERR_NOMEM, "out of memory for the RoPE table");
    float theta_scale = powf(m->cfg.rope_base, -2.0f / (float)m->cfg.n_rot);
    for (int t = 0; t < T; t++) {
        float theta = (float)t;
        for (int i = 0; i < half; i++) {
            m->rope[((size_t)t * half + i) * 2] = cosf(theta);
            m->rope[((size_t)t * half + i) * 2 + 1] = sinf(theta);
            theta *= theta_scale;
        }
    }
    return MQ_OK;
}

int mq_gpt_init(mq_gpt_t *m, const mq_gpt_config_t *cfg, mq_error_t *err) {
    memset(m, 0, sizeof *m);
    int rc = mq_gpt_config_check(cfg, err);
    if (rc) return rc;
    m->cfg = *cfg;
    mq_gpt_config_defaults(&m->cfg);
    fill_param_sizes(&m->cfg, m->param_sizes);
    m->num_params = mq_gpt_num_params(&m->cfg);
    m->params_memory = calloc(m->num_params, sizeof(float));
    if (!m->params_memory)
        return mq_error_set(err, MQ_ERR_NOMEM, "out of memory for %zu model parameters",
                            m->num_params);
    point_params(&m->params, m->params_memory, m->param_sizes);
    m->mean_loss = -1.0f;
    if (mq_arch(m->cfg.arch)->rope && (rc = rope_cache(m, err))) {
        mq_gpt_free(m);
        return rc;
    }
    return MQ_OK;
}

void mq_gpt_init_weights(mq_gpt_t *m, uint64_t seed) {
    mq_rng_t rng;
    mq_rng_seed(&rng, seed);
    float *p = m->params_memory;
    const mq_arch_t *a = mq_arch(m->cfg.arch);
    for (int i = 0; i < MQ_NUM_PARAMS; i++) {
        size_t n = m->param_sizes[i];
        int init = a->tensor[i].init;
        if (init == MQ_INIT_NORMAL || init == MQ_INIT_RESIDUAL) {
            float std = 0.02f;
            /* the residual projections add to the stream once per block, twice per layer:
             * scaling them keeps the stream's variance from growing with depth (GPT-2) */
            if (init == MQ_INIT_RESIDUAL) std = (float)(0.02 / sqrt(2.0 * m->cfg.n_layer));
            for (size_t j = 0; j < n; j++)
                p[j] = std * mq_rng_normal(&rng);
        } else {
            float v = init == MQ_INIT_ONES ? 1.0f : 0.0f;
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
    free(m->rope);
    memset(m, 0, sizeof *m);
}

float *mq_gpt_linear_weight(mq_gpt_t *m, mq_linear_id_t id, float **bias, int *OC, int *C) {
    if (mq_arch_linear_index(&m->cfg, id) < 0) return NULL;
    const mq_arch_tensor_t *t = &mq_arch(m->cfg.arch)->tensor[id.param];
    int64_t rows, cols;
    mq_arch_param_shape(&m->cfg, id.param, &rows, &cols);
    float *const *params = (float *const *)&m->params;
    float *w = params[id.param] + (size_t)id.layer * (size_t)rows * (size_t)cols;
    float *b = t->bias >= 0 ? params[t->bias] + (size_t)id.layer * (size_t)rows : NULL;
    if (bias) *bias = b;
    if (OC) *OC = (int)rows;
    if (C) *C = (int)cols;
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
    A_LOSSES,
    A_FCG
};

static void act_ptrs(mq_gpt_acts_t *a, float **ptrs[MQ_NUM_ACTS]) {
    float **p[MQ_NUM_ACTS] = {&a->encoded,   &a->ln1,      &a->ln1_mean, &a->ln1_rstd,  &a->qkv,
                              &a->atty,      &a->att,      &a->attproj,  &a->residual2, &a->ln2,
                              &a->ln2_mean,  &a->ln2_rstd, &a->fch,      &a->fch_gelu,  &a->fcproj,
                              &a->residual3, &a->lnf,      &a->lnf_mean, &a->lnf_rstd,  &a->logits,
                              &a->probs,     &a->losses,   &a->fcg};
    memcpy(ptrs, p, sizeof p);
}

static void fill_act_sizes(const mq_gpt_config_t *cfg, int B, int T, size_t *s) {
    size_t N = (size_t)B * T, C = (size_t)cfg->n_embd, L = (size_t)cfg->n_layer,
           NH = (size_t)cfg->n_head, V = (size_t)cfg->vocab_size;
    size_t QKV = (size_t)mq_arch_dim(cfg, MQ_DIM_QKV), F = (size_t)mq_arch_dim(cfg, MQ_DIM_F);
    int rms = mq_arch(cfg->arch)->rms_norm;
    s[A_ENCODED] = N * C;
    s[A_LN1] = L * N * C;
    s[A_LN1_MEAN] = rms ? 0 : L * N;
    s[A_LN1_RSTD] = L * N;
    s[A_QKV] = L * N * QKV;
    s[A_ATTY] = L * N * C;
    s[A_ATT] = L * (size_t)B * NH * T * T;
    s[A_ATTPROJ] = L * N * C;
    s[A_RESIDUAL2] = L * N * C;
    s[A_LN2] = L * N * C;
    s[A_LN2_MEAN] = rms ? 0 : L * N;
    s[A_LN2_RSTD] = L * N;
    s[A_FCH] = L * N * F;
    s[A_FCH_GELU] = L * N * F;
    s[A_FCPROJ] = L * N * C;
    s[A_RESIDUAL3] = L * N * C;
    s[A_LNF] = N * C;
    s[A_LNF_MEAN] = rms ? 0 : N;
    s[A_LNF_RSTD] = N;
    s[A_LOGITS] = N * V;
    s[A_PROBS] = N * V;
    s[A_LOSSES] = N;
    s[A_FCG] = cfg->arch == MQ_ARCH_LLAMA ? L * N * F : 0;
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
 * fch (N,F), shared by fch_gelu; qkv (N,QKV); atty (N,C); att (B,NH,T,T) for one layer;
 * losses (N), the weight of each position in the mean loss; llama: fcg (N,F). */
static int ensure_grads_acts(mq_gpt_t *m, mq_error_t *err) {
    if (m->grads_acts_memory) return MQ_OK;
    size_t C = (size_t)m->cfg.n_embd, V = (size_t)m->cfg.vocab_size, N = m->act_sizes[A_LOSSES];
    size_t F = (size_t)mq_arch_dim(&m->cfg, MQ_DIM_F);
    size_t QKV = (size_t)mq_arch_dim(&m->cfg, MQ_DIM_QKV);
    size_t att = m->act_sizes[A_ATT] / (size_t)m->cfg.n_layer;
    size_t sizes[9] = {N * V, N * C,   N * C,
                       N * F, N * QKV, N * C,
                       att,   N,       m->cfg.arch == MQ_ARCH_LLAMA ? N * F : 0};
    size_t total = 0;
    for (int i = 0; i < 9; i++)
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
    p += sizes[7];
    g->fcg = sizes[8] ? p : NULL;
    return MQ_OK;
}

/* ---------------------------------------------------------------------------------------------
 * forward */

/* Every Linear of the forward pass goes through here, so that a replacement (a quantized
 * Linear) sees all of them. */
int mq_model_linear(mq_gpt_t *m, int param, int layer, float *out, const float *inp,
                    const float *weight, const float *bias, int N, int C, int OC, mq_error_t *err) {
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
    return mq_model_linear(m, id.param, id.layer, out, inp, w, bias, N, C, OC, err);
}

static int check_tokens(const int *tok, size_t n, int V, const char *what, mq_error_t *err) {
    for (size_t i = 0; i < n; i++)
        if (tok[i] < 0 || tok[i] >= V)
            return mq_error_set(err, MQ_ERR_ARG,
                                "forward: %s[%zu] = %d is not a token id in [0, %d)", what, i,
                                tok[i], V);
    return MQ_OK;
}

static int arch_forward(mq_gpt_t *m, int B, int T, mq_error_t *err);

int mq_gpt_forward(mq_gpt_t *m, const int *inputs, const int *targets, int B, int T,
                   mq_error_t *err) {
    const mq_gpt_config_t *cfg = &m->cfg;
    int V = cfg->vocab_size;
    if (!m->params_memory) return mq_error_set(err, MQ_ERR_ARG, "forward: model not initialised");
    if (!inputs) return mq_error_set(err, MQ_ERR_ARG, "forward: no inputs");
    if (B < 1 || T < 1 || T > cfg->n_ctx)
        return mq_error_set(err, MQ_ERR_ARG, "forward: B=%d, T=%d (need B >= 1 and 1 <= T <= %d)",
                            B, T, cfg->n_ctx);
    /* the layers take element counts as int; N times the widest activation is the largest */
    int64_t widest = mq_arch_dim(cfg, MQ_DIM_F);
    if (mq_arch_dim(cfg, MQ_DIM_QKV) > widest) widest = mq_arch_dim(cfg, MQ_DIM_QKV);
    if ((int64_t)B * T > INT_MAX / widest)
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

    if ((rc = arch_forward(m, B, T, err))) return rc;
    mq_gpt_acts_t a = m->acts;
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

int mq_gpt2_block(mq_gpt_t *m, int l, int B, int T, const float *residual, mq_error_t *err) {
    const mq_gpt_config_t *cfg = &m->cfg;
    int C = cfg->n_embd, NH = cfg->n_head, F = cfg->n_ff, N = B * T, rc;
    mq_gpt_params_t p = m->params;
    mq_gpt_acts_t a = m->acts;
    size_t NC = (size_t)N * C, TT = (size_t)B * NH * T * T, c = (size_t)C, f = (size_t)F;
    float *ln1 = a.ln1 + l * NC, *ln1_mean = a.ln1_mean + l * N, *ln1_rstd = a.ln1_rstd + l * N;
    float *qkv = a.qkv + l * 3 * NC, *atty = a.atty + l * NC, *att = a.att + l * TT;
    float *attproj = a.attproj + l * NC, *residual2 = a.residual2 + l * NC;
    float *ln2 = a.ln2 + l * NC, *ln2_mean = a.ln2_mean + l * N, *ln2_rstd = a.ln2_rstd + l * N;
    float *fch = a.fch + l * f * N, *fch_gelu = a.fch_gelu + l * f * N;
    float *fcproj = a.fcproj + l * NC, *residual3 = a.residual3 + l * NC;

    mq_layernorm_forward(ln1, ln1_mean, ln1_rstd, residual, p.ln1w + l * c, p.ln1b + l * c, N, C);
    rc = mq_model_linear(m, MQ_P_QKVW, l, qkv, ln1, p.qkvw + l * 3 * c * c, p.qkvb + l * 3 * c, N,
                         C, 3 * C, err);
    if (rc) return rc;
    mq_attention_forward(atty, att, qkv, B, T, C, NH);
    rc = mq_model_linear(m, MQ_P_ATTPROJW, l, attproj, atty, p.attprojw + l * c * c,
                         p.attprojb + l * c, N, C, C, err);
    if (rc) return rc;
    mq_residual_forward(residual2, residual, attproj, (int)NC);
    mq_layernorm_forward(ln2, ln2_mean, ln2_rstd, residual2, p.ln2w + l * c, p.ln2b + l * c, N, C);
    rc = mq_model_linear(m, MQ_P_FCW, l, fch, ln2, p.fcw + l * f * c, p.fcb + l * f, N, C, F, err);
    if (rc) return rc;
    mq_gelu_forward(fch_gelu, fch, (int)(f * N));
    rc = mq_model_linear(m, MQ_P_FCPROJW, l, fcproj, fch_gelu, p.fcprojw + l * f * c,
                         p.fcprojb + l * c, N, F, C, err);
    if (rc) return rc;
    mq_residual_forward(residual3, residual2, fcproj, (int)NC);
    return MQ_OK;
}

void mq_gpt2_embed(mq_gpt_t *m, const int *tokens, int B, int T, float *out) {
    mq_encoder_forward(out, tokens, m->params.wte, m->params.wpe, B, T, m->cfg.n_embd);
}

int mq_gpt2_head(mq_gpt_t *m, const float *residual, int N, mq_error_t *err) {
    mq_gpt_params_t p = m->params;
    mq_gpt_acts_t a = m->acts;
    int C = m->cfg.n_embd, V = m->cfg.vocab_size;
    mq_layernorm_forward(a.lnf, a.lnf_mean, a.lnf_rstd, residual, p.lnfw, p.lnfb, N, C);
    return mq_model_linear(m, MQ_P_LMW, 0, a.logits, a.lnf, p.lmw, NULL, N, C, V, err);
}

/* The architecture's layers, in turn, over m->inputs. */
static int arch_forward(mq_gpt_t *m, int B, int T, mq_error_t *err) {
    const mq_arch_t *a = mq_arch(m->cfg.arch);
    size_t NC = (size_t)B * T * m->cfg.n_embd;
    a->embed(m, m->inputs, B, T, m->acts.encoded);
    for (int l = 0; l < m->cfg.n_layer; l++) {
        const float *residual = l == 0 ? m->acts.encoded : m->acts.residual3 + (l - 1) * NC;
        int rc = a->block(m, l, B, T, residual, err);
        if (rc) return rc;
    }
    return a->head(m, m->acts.residual3 + (size_t)(m->cfg.n_layer - 1) * NC, B * T, err);
}

int mq_gpt_block_forward(mq_gpt_t *m, int l, const float *x, int B, int T, float **out,
                         mq_error_t *err) {
    if (!m->params_memory || l < 0 || l >= m->cfg.n_layer || B < 1 || T < 1 || T > m->cfg.n_ctx)
        return mq_error_set(err, MQ_ERR_ARG, "block forward: layer %d, B=%d, T=%d", l, B, T);
    int rc = ensure_acts(m, B, T, err);
    if (rc) return rc;
    m->B = B;
    m->T = T;
    m->have_targets = 0;
    rc = mq_arch(m->cfg.arch)->block(m, l, B, T, x, err);
    if (rc) return rc;
    *out = m->acts.residual3 + (size_t)l * B * T * m->cfg.n_embd;
    return MQ_OK;
}

int mq_gpt_head_forward(mq_gpt_t *m, const float *x, int N, mq_error_t *err) {
    /* activations for N rows: windows of the context, as many as N needs */
    int T = N < m->cfg.n_ctx ? N : m->cfg.n_ctx, rc = ensure_acts(m, (N + T - 1) / T, T, err);
    if (rc) return rc;
    return mq_arch(m->cfg.arch)->head(m, x, N, err);
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

int mq_gpt_backward(mq_gpt_t *m, mq_error_t *err) {
    if (!m->have_targets)
        return mq_error_set(err, MQ_ERR_ARG, "backward: the last forward had no targets");
    int rc;
    if (!m->grads_memory && (rc = mq_gpt_zero_grad(m, err))) return rc;
    if ((rc = ensure_grads_acts(m, err))) return rc;
    int N = m->B * m->T, V = m->cfg.vocab_size;
    mq_gpt_acts_t ga = m->grads_acts;
    float dloss = 1.0f / (float)N;
    for (int i = 0; i < N; i++)
        ga.losses[i] = dloss;
    mq_crossentropy_softmax_backward_overwrite(ga.logits, ga.losses, m->acts.probs, m->targets, N,
                                               V);
    mq_arch(m->cfg.arch)->backward(m);
    return MQ_OK;
}

/* The residual stream's gradient lives in one (N, C) buffer, dres. Walking down, it holds
 * d residual3[l]; that is also d fcproj[l], since residual3 = residual2 + fcproj; the MLP's
 * LayerNorm adds its part, making it d residual2[l] (= d attproj[l]); the attention's LayerNorm
 * adds its part, making it d residual3[l-1]. */
void mq_gpt2_backward(mq_gpt_t *m) {
    const mq_gpt_config_t *cfg = &m->cfg;
    int B = m->B, T = m->T, N = B * T;
    int V = cfg->vocab_size, C = cfg->n_embd, NH = cfg->n_head, L = cfg->n_layer, F = cfg->n_ff;
    size_t NC = (size_t)N * C, TT = (size_t)B * NH * T * T, c = (size_t)C, f = (size_t)F;
    mq_gpt_params_t p = m->params, g = m->grads;
    mq_gpt_acts_t a = m->acts, ga = m->grads_acts;
    float *dres = ga.residual3, *dln = ga.lnf, *dfch = ga.fch, *dqkv = ga.qkv, *datty = ga.atty;

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
        float *fch = a.fch + l * f * N, *fch_gelu = a.fch_gelu + l * f * N;

        mq_matmul_backward_overwrite(dfch, g.fcprojw + l * f * c, g.fcprojb + l * c, dres, fch_gelu,
                                     p.fcprojw + l * f * c, N, F, C);
        mq_gelu_backward_inplace(dfch, fch, (int)(f * N));
        mq_matmul_backward_overwrite(dln, g.fcw + l * f * c, g.fcb + l * f, dfch, ln2,
                                     p.fcw + l * f * c, N, C, F);
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
