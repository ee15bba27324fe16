/* miniquant: a quantized MiniGPT, a model of its own beside the FP32 one it was made from.
 *
 * Every Linear (per block: qkv, attention output, MLP up, MLP down; then lm_head) is a
 * QuantizedLinear of one scheme (or, under a recipe, of its own scheme: recipe.h), or an F32
 * one where it stays FP32 (lm_head with skip_lm_head, the other layers of a one-layer
 * sensitivity run, every layer of a checkpoint); LayerNorm parameters and biases stay FP32, and
 * the token and position embeddings are rounded to FP16 where the scheme's family stores them
 * so (a recipe stores the token embedding in a block format, its values those of the lookup). Quantizing leaves the FP32 model untouched: the
 * quantized model holds its own non-Linear parameters, and its F32 layers read the FP32
 * model's weights (which must then outlive it). Its forward is q->model's, whose Linears all
 * run through the QuantizedLinears. */
#ifndef MINIQUANT_QMODEL_H
#define MINIQUANT_QMODEL_H

#include <stddef.h>

#include "miniquant/error.h"
#include "miniquant/model.h"
#include "miniquant/quant.h"
#include "miniquant/recipe.h"

/* Linears in forward order: index 4*l + {0 qkv, 1 attproj, 2 fc, 3 fcproj}, then 4*L lm_head. */
int mq_qmodel_n_linear(const mq_gpt_config_t *cfg);
mq_linear_id_t mq_qmodel_linear_id(const mq_gpt_config_t *cfg, int index);
/* The index of the Linear id names, or -1. */
int mq_qmodel_linear_index(const mq_gpt_config_t *cfg, mq_linear_id_t id);
/* "blk.2.ffn_up" style name of a Linear (llama.cpp's tensor name without ".weight"). */
void mq_qmodel_linear_name(const mq_gpt_config_t *cfg, int index, char *buf, size_t n);

typedef struct mq_qmodel {
    mq_scheme_t scheme; /* the scheme of every quantized Linear; a recipe's: its first Linear's */
    char recipe[40];    /* the recipe (recipe.h) each Linear's scheme comes from, or "" */
    int skip_lm_head;
    int n_linear;
    mq_qlinear_t *ql;  /* [n_linear]: every Linear, quantized or F32 */
    int *active;       /* [n_linear]: 1 where the Linear is quantized with the scheme */
    int fused;         /* 1: the fused kernels; 0: the reference path (dequantize, sgemm) */
    mq_gpt_t *model;   /* owned: the model to run (forward, decode step): the
                          non-Linear parameters as stored, its Linears routed through ql. Its
                          own Linear weights are not held (zero): read them through ql. */
    mq_qweight_t embd; /* a recipe's token embedding as stored (model->params.wte holds its
                          values for the lookup); data NULL when it is FP16 or FP32 */
    void *file;        /* owned: the GGUF a loaded model's layers point into, or NULL */
} mq_qmodel_t;

/* Options of mq_qmodel_quantize. */
typedef struct mq_qmodel_opts {
    int skip_lm_head;        /* keep lm_head FP32 (the LLM.int8() convention) */
    int only;                /* >= 0: quantize only this Linear (per-layer sensitivity); -1 all;
                                -2 none (every Linear F32: the start of GPTQ) */
    int keep_embeddings;     /* 1: do not round embeddings to FP16 (sensitivity) */
    const mq_recipe_t *recipe; /* each Linear's scheme and token_embd's (s is then ignored) */
} mq_qmodel_opts_t;

/* A new quantized model of m with scheme s (or opts->recipe) by round to nearest (GPTQ schemes
 * are built by gptq.h, which starts from this). m is not changed; it must outlive q. On failure
 * q holds nothing. */
int mq_qmodel_quantize(mq_qmodel_t *q, const mq_gpt_t *m, const mq_scheme_t *s,
                       const mq_qmodel_opts_t *opts, mq_error_t *err);
/* Stores the token embedding of q (model->params.wte, rows of n_embd) with scheme s, round to
 * nearest, and sets the lookup's values to the stored ones. */
int mq_qmodel_set_embd(mq_qmodel_t *q, const mq_scheme_t *s, mq_error_t *err);
/* Replaces Linear i of q with w (moved into the layer; w emptied) and marks it quantized. */
int mq_qmodel_set_linear(mq_qmodel_t *q, int i, mq_qweight_t *w, mq_error_t *err);
/* An empty quantized model of configuration cfg and scheme s (every layer unset, parameters
 * zero), for loaders to fill; its forward is wired once mq_qmodel_ready is called. */
int mq_qmodel_init(mq_qmodel_t *q, const mq_gpt_config_t *cfg, const mq_scheme_t *s,
                   mq_error_t *err);
/* Wires q->model's forward through q->ql (the fused kernels unless MQ_REFERENCE=1). */
void mq_qmodel_ready(mq_qmodel_t *q);
void mq_qmodel_free(mq_qmodel_t *q);

/* Where the bytes of a (quantized) model are, as the lab counts them: numel x dtype size of
 * every stored tensor. */
typedef struct mq_model_bytes {
    size_t linear;       /* Linear weights: codes + scales (or FP16/FP32 weights) */
    size_t bias;         /* Linear biases, FP32 */
    size_t embedding;    /* token + position embeddings: FP16 (FP32 for the fp32 scheme), a
                            recipe's token embedding as stored */
    size_t layernorm;    /* LayerNorm weights and biases, FP32 */
    size_t total;
    size_t linear_params; /* number of Linear weights */
    double bits_per_weight;        /* packed bits per Linear weight (codes at their width) */
    double bits_per_weight_memory; /* in-memory bits per Linear weight (codes as int8) */
} mq_model_bytes_t;

/* Bytes of the model m (q NULL: as FP32) or of the quantized model q (m may then be NULL). */
void mq_model_bytes(const mq_gpt_t *m, const mq_qmodel_t *q, mq_model_bytes_t *out);

#endif
