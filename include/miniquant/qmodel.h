/* miniquant: a MiniGPT whose Linear layers are QuantizedLinear.
 *
 * Every Linear (per block: qkv, attention output, MLP up, MLP down; then lm_head) is replaced
 * by a QuantizedLinear of one scheme; LayerNorm parameters and biases stay FP32, and the token
 * and position embeddings are rounded to FP16 in every scheme but fp32 (as they are stored).
 * The model's forward then runs through the quantized layers (m->linear_fn). */
#ifndef MINIQUANT_QMODEL_H
#define MINIQUANT_QMODEL_H

#include <stddef.h>

#include "miniquant/error.h"
#include "miniquant/model.h"
#include "miniquant/quant.h"

/* Linears in forward order: index 4*l + {0 qkv, 1 attproj, 2 fc, 3 fcproj}, then 4*L lm_head. */
int mq_qmodel_n_linear(const mq_gpt_config_t *cfg);
mq_linear_id_t mq_qmodel_linear_id(const mq_gpt_config_t *cfg, int index);
/* "blk.2.ffn_up" style name of a Linear (llama.cpp's tensor name without ".weight"). */
void mq_qmodel_linear_name(const mq_gpt_config_t *cfg, int index, char *buf, size_t n);

typedef struct mq_qmodel {
    mq_scheme_t scheme;
    int skip_lm_head;
    int n_linear;
    mq_qlinear_t *ql;  /* [n_linear]; ql[i].w.rows == 0 where the Linear stays FP32 */
    int *active;       /* [n_linear]: 1 where the quantized layer replaces the Linear */
    int fused;         /* 1: the fast fused kernels (when the build has them); 0: reference */
    mq_gpt_t *model;
} mq_qmodel_t;

/* Options of mq_qmodel_apply. */
typedef struct mq_qmodel_opts {
    int skip_lm_head;        /* keep lm_head FP32 (the LLM.int8() convention) */
    int only;                /* >= 0: quantize only this Linear (per-layer sensitivity) */
    int keep_embeddings;     /* 1: do not round embeddings to FP16 (sensitivity) */
} mq_qmodel_opts_t;

/* Quantizes m's Linears with scheme s (round to nearest; GPTQ schemes are built elsewhere and
 * installed with mq_qmodel_install) and routes m's forward through them. Rounds m's embeddings
 * to FP16 in place unless keep_embeddings or s is fp32. */
int mq_qmodel_apply(mq_qmodel_t *q, mq_gpt_t *m, const mq_scheme_t *s,
                    const mq_qmodel_opts_t *opts, mq_error_t *err);
/* Routes m's forward through q (whose layers were filled by the caller). */
void mq_qmodel_install(mq_qmodel_t *q, mq_gpt_t *m);
/* Detaches from the model (its forward uses the FP32 weights again) and frees the layers. */
void mq_qmodel_free(mq_qmodel_t *q);

/* Where the bytes of a (quantized) model are, as the lab counts them: numel x dtype size of
 * every stored tensor. */
typedef struct mq_model_bytes {
    size_t linear;       /* Linear weights: codes + scales (or FP16/FP32 weights) */
    size_t bias;         /* Linear biases, FP32 */
    size_t embedding;    /* token + position embeddings: FP16 (FP32 for the fp32 scheme) */
    size_t layernorm;    /* LayerNorm weights and biases, FP32 */
    size_t total;
    size_t linear_params; /* number of Linear weights */
    double bits_per_weight;        /* packed bits per Linear weight (codes at their width) */
    double bits_per_weight_memory; /* in-memory bits per Linear weight (codes as int8) */
} mq_model_bytes_t;

/* Bytes of m under q (NULL: the FP32 model). */
void mq_model_bytes(const mq_gpt_t *m, const mq_qmodel_t *q, mq_model_bytes_t *out);

#endif
