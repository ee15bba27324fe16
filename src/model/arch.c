/* miniquant: the architecture rows (see arch.h). Tensor names and hyperparameter keys are
 * llama.cpp's (LLM_TENSOR_NAMES, LLM_KV_NAMES in llama-arch.cpp) for its gpt2 and llama
 * architectures. */
#include "miniquant/arch.h"

#include <stdio.h>
#include <string.h>

#include "model_internal.h"

#define W(name, rows, cols, init, bias)                                                            \
    { name, 1, rows, cols, init, bias }
#define V1(name, cols, init)                                                                       \
    { name, 1, MQ_DIM_NONE, cols, init, -1 }
#define ABSENT                                                                                     \
    { NULL, 0, MQ_DIM_NONE, MQ_DIM_NONE, 0, -1 }

static const mq_arch_t
    ARCHS[MQ_NUM_ARCHS] =
        {
            [MQ_ARCH_GPT2] =
                {
                    .name = "gpt2",
                    .family = "MiniGPT",
                    .tensor =
                        {
                            [MQ_P_WTE] = {"token_embd.weight", 0, MQ_DIM_V, MQ_DIM_C,
                                          MQ_INIT_NORMAL, -1},
                            [MQ_P_WPE] = {"position_embd.weight", 0, MQ_DIM_T, MQ_DIM_C,
                                          MQ_INIT_NORMAL, -1},
                            [MQ_P_LN1W] = V1("blk.%d.attn_norm.weight", MQ_DIM_C, MQ_INIT_ONES),
                            [MQ_P_LN1B] = V1("blk.%d.attn_norm.bias", MQ_DIM_C, MQ_INIT_ZEROS),
                            [MQ_P_QKVW] = W("blk.%d.attn_qkv.weight", MQ_DIM_QKV, MQ_DIM_C,
                                            MQ_INIT_NORMAL, MQ_P_QKVB),
                            [MQ_P_QKVB] = V1("blk.%d.attn_qkv.bias", MQ_DIM_QKV, MQ_INIT_ZEROS),
                            [MQ_P_ATTPROJW] = W("blk.%d.attn_output.weight", MQ_DIM_C, MQ_DIM_C,
                                                MQ_INIT_RESIDUAL, MQ_P_ATTPROJB),
                            [MQ_P_ATTPROJB] =
                                V1("blk.%d.attn_output.bias", MQ_DIM_C, MQ_INIT_ZEROS),
                            [MQ_P_LN2W] = V1("blk.%d.ffn_norm.weight", MQ_DIM_C, MQ_INIT_ONES),
                            [MQ_P_LN2B] = V1("blk.%d.ffn_norm.bias", MQ_DIM_C, MQ_INIT_ZEROS),
                            [MQ_P_FCW] = W("blk.%d.ffn_up.weight", MQ_DIM_F, MQ_DIM_C,
                                           MQ_INIT_NORMAL, MQ_P_FCB),
                            [MQ_P_FCB] = V1("blk.%d.ffn_up.bias", MQ_DIM_F, MQ_INIT_ZEROS),
                            [MQ_P_FCPROJW] = W("blk.%d.ffn_down.weight", MQ_DIM_C, MQ_DIM_F,
                                               MQ_INIT_RESIDUAL, MQ_P_FCPROJB),
                            [MQ_P_FCPROJB] = V1("blk.%d.ffn_down.bias", MQ_DIM_C, MQ_INIT_ZEROS),
                            [MQ_P_LNFW] = {"output_norm.weight", 0,
                                           MQ_DIM_NONE, MQ_DIM_C, MQ_INIT_ONES, -1},
                            [MQ_P_LNFB] = {"output_norm.bias",
                                           0, MQ_DIM_NONE, MQ_DIM_C, MQ_INIT_ZEROS, -1},
                            [MQ_P_LMW] = {"output.weight", 0, MQ_DIM_V, MQ_DIM_C,
                                          MQ_INIT_NORMAL, -1},
                            [MQ_P_QW] = ABSENT,
                            [MQ_P_KW] = ABSENT,
                            [MQ_P_VW] = ABSENT,
                            [MQ_P_GATEW] = ABSENT,
                        },
                    .n_block_linears = 4,
                    .block_linear = {MQ_P_QKVW, MQ_P_ATTPROJW, MQ_P_FCW, MQ_P_FCPROJW},
                    .rms_norm = 0,
                    .eps_key = "attention.layer_norm_epsilon",
                    .rope = 0,
                    .embed = mq_gpt2_embed,
            .block = mq_gpt2_block,
            .head = mq_gpt2_head,
                    .backward = mq_gpt2_backward,
                    .decode_step = mq_gpt2_decode_step,
                    .decode_region = mq_gpt2_decode_region,
                    .cache_kv = mq_gpt2_cache_kv,
                },
            [MQ_ARCH_LLAMA] =
                {
                    .name = "llama",
                    .family = "MiniLlama",
                    .tensor =
                        {
                            [MQ_P_WTE] = {"token_embd.weight", 0, MQ_DIM_V, MQ_DIM_C,
                                          MQ_INIT_NORMAL, -1},
                            [MQ_P_WPE] = ABSENT,
                            [MQ_P_LN1W] = V1("blk.%d.attn_norm.weight", MQ_DIM_C, MQ_INIT_ONES),
                            [MQ_P_LN1B] = ABSENT,
                            [MQ_P_QKVW] = ABSENT,
                            [MQ_P_QKVB] = ABSENT,
                            [MQ_P_ATTPROJW] = W("blk.%d.attn_output.weight", MQ_DIM_C,
                                                MQ_DIM_C, MQ_INIT_RESIDUAL, -1),
                            [MQ_P_ATTPROJB] = ABSENT,
                            [MQ_P_LN2W] = V1("blk.%d.ffn_norm.weight", MQ_DIM_C, MQ_INIT_ONES),
                            [MQ_P_LN2B] = ABSENT,
                            [MQ_P_FCW] =
                                W("blk.%d.ffn_up.weight", MQ_DIM_F, MQ_DIM_C, MQ_INIT_NORMAL, -1),
                            [MQ_P_FCB] = ABSENT,
                            [MQ_P_FCPROJW] = W("blk.%d.ffn_down.weight", MQ_DIM_C, MQ_DIM_F,
                                               MQ_INIT_RESIDUAL, -1),
                            [MQ_P_FCPROJB] = ABSENT,
                            [MQ_P_LNFW] = {"output_norm.weight", 0, MQ_DIM_NONE, MQ_DIM_C,
                                           MQ_INIT_ONES, -1},
                            [MQ_P_LNFB] = ABSENT,
                            [MQ_P_LMW] = {"output.weight", 0, MQ_DIM_V, MQ_DIM_C, MQ_INIT_NORMAL,
                                          -1},
                            [MQ_P_QW] = W("blk.%d.attn_q.weight",
                                          MQ_DIM_C, MQ_DIM_C, MQ_INIT_NORMAL, -1),
                            [MQ_P_KW] = W("blk.%d.attn_k.weight", MQ_DIM_KV,
                                          MQ_DIM_C, MQ_INIT_NORMAL, -1),
                            [MQ_P_VW] = W("blk.%d.attn_v.weight", MQ_DIM_KV,
                                          MQ_DIM_C, MQ_INIT_NORMAL, -1),
                            [MQ_P_GATEW] =
                                W("blk.%d.ffn_gate.weight", MQ_DIM_F, MQ_DIM_C, MQ_INIT_NORMAL, -1),
                        },
                    .n_block_linears = 7,
                    .block_linear = {MQ_P_QW, MQ_P_KW, MQ_P_VW, MQ_P_ATTPROJW, MQ_P_GATEW, MQ_P_FCW,
                                     MQ_P_FCPROJW},
                    .rms_norm = 1,
                    .eps_key = "attention.layer_norm_rms_epsilon",
                    .rope = 1,
                    .embed = mq_llama_embed,
            .block = mq_llama_block,
            .head = mq_llama_head,
                    .backward = mq_llama_backward,
                    .decode_step = mq_llama_decode_step,
                    .decode_region = mq_llama_decode_region,
                    .cache_kv = mq_llama_cache_kv,
                },
};

const mq_arch_t *mq_arch(int id) {
    return id >= 0 && id < MQ_NUM_ARCHS ? &ARCHS[id] : NULL;
}

const mq_arch_t *mq_arch_by_name(const char *name) {
    for (int i = 0; i < MQ_NUM_ARCHS && name; i++)
        if (!strcmp(ARCHS[i].name, name)) return &ARCHS[i];
    return NULL;
}

const char *mq_arch_names(void) {
    return "gpt2, llama";
}

void mq_arch_model_name(const mq_gpt_config_t *cfg, char *buf, size_t n) {
    const mq_arch_t *a = mq_arch(cfg->arch);
    const char *preset = strncmp(cfg->name, "llama-", 6) ? cfg->name : cfg->name + 6;
    snprintf(buf, n, "%s-%s", a ? a->family : "?", preset);
}

int64_t mq_arch_dim(const mq_gpt_config_t *cfg, int d) {
    mq_gpt_config_t c = *cfg;
    mq_gpt_config_defaults(&c);
    int64_t C = c.n_embd, hs = c.n_head > 0 ? C / c.n_head : 0, KV = hs * c.n_head_kv;
    switch (d) {
    case MQ_DIM_V: return c.vocab_size;
    case MQ_DIM_T: return c.n_ctx;
    case MQ_DIM_C: return C;
    case MQ_DIM_KV: return KV;
    case MQ_DIM_QKV: return C + 2 * KV;
    case MQ_DIM_F: return c.n_ff;
    default: return 1;
    }
}

void mq_arch_param_shape(const mq_gpt_config_t *cfg, int p, int64_t *rows, int64_t *cols) {
    const mq_arch_t *a = mq_arch(cfg->arch);
    *rows = *cols = 0;
    if (!a || p < 0 || p >= MQ_NUM_PARAMS || !a->tensor[p].gguf) return;
    const mq_arch_tensor_t *t = &a->tensor[p];
    *rows = t->rows == MQ_DIM_NONE ? 0 : mq_arch_dim(cfg, t->rows);
    *cols = mq_arch_dim(cfg, t->cols);
}

int mq_arch_tensor_name(const mq_gpt_config_t *cfg, int p, int l, char *buf, size_t n) {
    const mq_arch_t *a = mq_arch(cfg->arch);
    if (!a || p < 0 || p >= MQ_NUM_PARAMS || !a->tensor[p].gguf) return MQ_ERR_ARG;
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-nonliteral"
    if (a->tensor[p].stacked)
        snprintf(buf, n, a->tensor[p].gguf, l);
    else
        snprintf(buf, n, "%s", a->tensor[p].gguf);
#pragma GCC diagnostic pop
    return MQ_OK;
}

int mq_arch_n_linear(const mq_gpt_config_t *cfg) {
    return mq_arch(cfg->arch)->n_block_linears * cfg->n_layer + 1;
}

mq_linear_id_t mq_arch_linear_id(const mq_gpt_config_t *cfg, int index) {
    const mq_arch_t *a = mq_arch(cfg->arch);
    int k = a->n_block_linears;
    if (index == k * cfg->n_layer) return (mq_linear_id_t){MQ_P_LMW, 0};
    return (mq_linear_id_t){a->block_linear[index % k], index / k};
}

int mq_arch_linear_index(const mq_gpt_config_t *cfg, mq_linear_id_t id) {
    const mq_arch_t *a = mq_arch(cfg->arch);
    int k = a->n_block_linears;
    if (id.param == MQ_P_LMW) return id.layer == 0 ? k * cfg->n_layer : -1;
    if (id.layer < 0 || id.layer >= cfg->n_layer) return -1;
    for (int j = 0; j < k; j++)
        if (a->block_linear[j] == id.param) return k * id.layer + j;
    return -1;
}

void mq_arch_linear_name(const mq_gpt_config_t *cfg, int index, char *buf, size_t n) {
    mq_linear_id_t id = mq_arch_linear_id(cfg, index);
    char full[96];
    if (mq_arch_tensor_name(cfg, id.param, id.layer, full, sizeof full)) full[0] = '\0';
    char *dot = strstr(full, ".weight");
    if (dot && dot[7] == '\0') *dot = '\0';
    snprintf(buf, n, "%s", full);
}

int mq_arch_linear_of(const mq_gpt_config_t *cfg, int p, int l, int *is_bias) {
    const mq_arch_t *a = mq_arch(cfg->arch);
    *is_bias = 0;
    if (!a || p < 0 || p >= MQ_NUM_PARAMS) return -1;
    int i = mq_arch_linear_index(cfg, (mq_linear_id_t){p, p == MQ_P_LMW ? 0 : l});
    if (i >= 0) return i;
    for (int j = 0; j < a->n_block_linears; j++)
        if (a->tensor[a->block_linear[j]].bias == p) {
            *is_bias = 1;
            return a->n_block_linears * l + j;
        }
    return -1;
}

int mq_arch_is_linear_weight(const mq_gpt_config_t *cfg, int p) {
    const mq_arch_t *a = mq_arch(cfg->arch);
    if (p == MQ_P_LMW) return 1;
    for (int j = 0; a && j < a->n_block_linears; j++)
        if (a->block_linear[j] == p) return 1;
    return 0;
}
