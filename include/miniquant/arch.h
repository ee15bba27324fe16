/* miniquant: the model architectures, one row each (after llama.cpp's LLM_ARCH tables): what
 * the GGUF file calls the architecture, its tensors (their llama.cpp names, shapes and initial
 * values), its Linears in forward order, its hyperparameter keys, and the functions that run
 * it. Everything that walks a model's tensors or Linears (checkpoints, export, quantization,
 * GPTQ, recipes, the roofline) asks the row; only the row's own forward, backward and decode
 * functions know what a layer computes.
 *
 * Shapes are written in the model's dimensions (MQ_DIM_*): V vocabulary, T context, C width,
 * KV the width of keys and values (n_head_kv heads of C / NH), QKV = C + 2 KV, F the MLP width. */
#ifndef MINIQUANT_ARCH_H
#define MINIQUANT_ARCH_H

#include <stdint.h>

#include "miniquant/error.h"
#include "miniquant/model.h"

enum { MQ_DIM_NONE, MQ_DIM_V, MQ_DIM_T, MQ_DIM_C, MQ_DIM_KV, MQ_DIM_QKV, MQ_DIM_F };

/* How a tensor starts (mq_gpt_init_weights): N(0, 0.02); N(0, 0.02 / sqrt(2L)) for the
 * projections that add to the residual stream; ones (norm weights); zeros (biases). */
enum { MQ_INIT_NORMAL = 1, MQ_INIT_RESIDUAL, MQ_INIT_ONES, MQ_INIT_ZEROS };

typedef struct mq_arch_tensor {
    const char *gguf; /* llama.cpp's tensor name, a printf format of the layer when stacked;
                         NULL: the architecture has no such tensor (size 0) */
    int stacked;      /* one per layer */
    int rows, cols;   /* MQ_DIM_*; rows MQ_DIM_NONE for a vector of cols */
    int init;         /* MQ_INIT_* */
    int bias;         /* a Linear weight's bias parameter, or -1 */
} mq_arch_tensor_t;

typedef struct mq_arch {
    const char *name;   /* general.architecture, and the prefix of its hyperparameter keys */
    const char *family; /* what miniquant calls its models: "MiniGPT", "MiniLlama" */
    mq_arch_tensor_t tensor[MQ_NUM_PARAMS];
    int n_block_linears;
    int block_linear[8]; /* each layer's Linear weights in forward order (lm_head follows) */
    int rms_norm;        /* RMSNorm (llama) rather than LayerNorm */
    const char *eps_key; /* the norm epsilon's key after "<name>." */
    int rope;            /* rotary position embeddings: rope.freq_base, rope.dimension_count */
    /* The forward pass, in three parts over m->acts (sized for B, T): the embedding of tokens
     * (B*T) into out (B*T, C); layer l on the residual stream (B*T, C), its output left in
     * m->acts.residual3 + l*B*T*C; the final norm and the output Linear on N rows, the logits
     * left in m->acts.logits. */
    void (*embed)(mq_gpt_t *m, const int *tokens, int B, int T, float *out);
    int (*block)(mq_gpt_t *m, int l, int B, int T, const float *residual, mq_error_t *err);
    int (*head)(mq_gpt_t *m, const float *residual, int N, mq_error_t *err);
    /* The gradients of the mean loss of the last forward from d logits (m->grads_acts.logits)
     * down, accumulated into m->grads. */
    void (*backward)(mq_gpt_t *m);
    /* One KV-cached decoding step (model.h). */
    int (*decode_step)(mq_gpt_t *m, mq_gpt_kv_t *kv, int token, mq_error_t *err);
    /* The same step in one parallel region (decode.c), over the plan of its Linears. */
    void (*decode_region)(mq_gpt_t *m, mq_gpt_kv_t *kv, struct mq_step_plan *plan, int token);
    /* Copies the keys and values of layer l of the last forward over n positions (B = 1) into
     * the cache's kc, vc (maxT, KV) (prefill). */
    void (*cache_kv)(mq_gpt_t *m, int l, int n, float *kc, float *vc);
} mq_arch_t;

/* The row of architecture id, or NULL. */
const mq_arch_t *mq_arch(int id);
/* The row whose general.architecture is name, or NULL. */
const mq_arch_t *mq_arch_by_name(const char *name);
/* "gpt2, llama": the architectures miniquant runs, for messages. */
const char *mq_arch_names(void);

/* "MiniGPT-default", "MiniLlama-tiny": the family of cfg's architecture and its preset name
 * (without the "llama-" its MiniLlama presets start with). */
void mq_arch_model_name(const mq_gpt_config_t *cfg, char *buf, size_t n);

/* The size of dimension d (MQ_DIM_*) in a model of cfg (its zero fields taken as defaults); 1
 * for MQ_DIM_NONE. */
int64_t mq_arch_dim(const mq_gpt_config_t *cfg, int d);
/* One layer's slice of parameter p: rows x cols (rows 0 for vectors, both 0 when the
 * architecture has no such tensor). */
void mq_arch_param_shape(const mq_gpt_config_t *cfg, int p, int64_t *rows, int64_t *cols);
/* p's GGUF tensor name at layer l into buf; MQ_ERR_ARG when the architecture has none. */
int mq_arch_tensor_name(const mq_gpt_config_t *cfg, int p, int l, char *buf, size_t n);
/* The number of Linears of a model of cfg: each layer's, then lm_head. */
int mq_arch_n_linear(const mq_gpt_config_t *cfg);
/* Linear index (forward order) as an id, and back (-1 for an id that names none). */
mq_linear_id_t mq_arch_linear_id(const mq_gpt_config_t *cfg, int index);
int mq_arch_linear_index(const mq_gpt_config_t *cfg, mq_linear_id_t id);
/* "blk.2.ffn_up" style name of Linear index (the tensor name without ".weight"). */
void mq_arch_linear_name(const mq_gpt_config_t *cfg, int index, char *buf, size_t n);
/* Whether parameter p is a Linear weight of cfg's architecture (lm_head included). */
int mq_arch_is_linear_weight(const mq_gpt_config_t *cfg, int p);
/* The Linear whose weight (*is_bias 0) or bias (*is_bias 1) parameter p at layer l is, as an
 * index; -1 for other parameters. */
int mq_arch_linear_of(const mq_gpt_config_t *cfg, int p, int l, int *is_bias);

#endif
