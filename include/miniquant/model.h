/* miniquant: MiniGPT, a GPT-2 architecture model in FP32.
 *
 * Token + learned position embeddings, L pre-LayerNorm blocks (LayerNorm eps 1e-5, fused QKV
 * Linear with bias, causal softmax attention scaled by 1/sqrt(head_dim), output projection, MLP
 * 4C with tanh GELU), final LayerNorm and an untied lm_head Linear (no bias, as GPT-2's).
 *
 * Parameters are one allocation with named pointers into it and a size table beside it
 * (llm.c's layout); so are gradients, AdamW moments and activations. */
#ifndef MINIQUANT_MODEL_H
#define MINIQUANT_MODEL_H

#include <stddef.h>
#include <stdint.h>

#include "miniquant/error.h"

typedef struct mq_gpt_config {
    char name[32];  /* preset name ("tiny", "default") or "custom" */
    int vocab_size; /* V */
    int n_ctx;      /* maxT, the context length */
    int n_embd;     /* C */
    int n_head;     /* NH */
    int n_layer;    /* L */
} mq_gpt_config_t;

/* Fills cfg with a named preset for a vocabulary of vocab_size tokens.
 *   tiny:    L=2, C=64,  NH=2, maxT=64   (tests; trains in seconds)
 *   default: L=4, C=256, NH=4, maxT=128  (every Linear input dimension a multiple of 256)
 * Unknown names: MQ_ERR_ARG with a message listing the presets. */
int mq_gpt_preset(const char *name, int vocab_size, mq_gpt_config_t *cfg, mq_error_t *err);
/* Checks a configuration (positive sizes, C divisible by NH, ...). */
int mq_gpt_config_check(const mq_gpt_config_t *cfg, mq_error_t *err);

/* Parameter tensors, in storage order. Per-layer tensors are stacked over L. */
enum {
    MQ_P_WTE,      /* (V, C) */
    MQ_P_WPE,      /* (maxT, C) */
    MQ_P_LN1W,     /* (L, C) */
    MQ_P_LN1B,     /* (L, C) */
    MQ_P_QKVW,     /* (L, 3C, C) */
    MQ_P_QKVB,     /* (L, 3C) */
    MQ_P_ATTPROJW, /* (L, C, C) */
    MQ_P_ATTPROJB, /* (L, C) */
    MQ_P_LN2W,     /* (L, C) */
    MQ_P_LN2B,     /* (L, C) */
    MQ_P_FCW,      /* (L, 4C, C) */
    MQ_P_FCB,      /* (L, 4C) */
    MQ_P_FCPROJW,  /* (L, C, 4C) */
    MQ_P_FCPROJB,  /* (L, C) */
    MQ_P_LNFW,     /* (C) */
    MQ_P_LNFB,     /* (C) */
    MQ_P_LMW,      /* (V, C) */
    MQ_NUM_PARAMS
};

/* Named pointers into one allocation, in the enum's order (so it is also float *[MQ_NUM_PARAMS]). */
typedef struct mq_gpt_params {
    float *wte, *wpe, *ln1w, *ln1b, *qkvw, *qkvb, *attprojw, *attprojb, *ln2w, *ln2b, *fcw, *fcb,
        *fcprojw, *fcprojb, *lnfw, *lnfb, *lmw;
} mq_gpt_params_t;

/* Activations of one forward pass at (B, T). */
typedef struct mq_gpt_acts {
    float *encoded;   /* (B,T,C) */
    float *ln1;       /* (L,B,T,C) */
    float *ln1_mean;  /* (L,B,T) */
    float *ln1_rstd;  /* (L,B,T) */
    float *qkv;       /* (L,B,T,3C) */
    float *atty;      /* (L,B,T,C) */
    float *att;       /* (L,B,NH,T,T) */
    float *attproj;   /* (L,B,T,C) */
    float *residual2; /* (L,B,T,C) */
    float *ln2;       /* (L,B,T,C) */
    float *ln2_mean;  /* (L,B,T) */
    float *ln2_rstd;  /* (L,B,T) */
    float *fch;       /* (L,B,T,4C) */
    float *fch_gelu;  /* (L,B,T,4C) */
    float *fcproj;    /* (L,B,T,C) */
    float *residual3; /* (L,B,T,C) */
    float *lnf;       /* (B,T,C) */
    float *lnf_mean;  /* (B,T) */
    float *lnf_rstd;  /* (B,T) */
    float *logits;    /* (B,T,V) */
    float *probs;     /* (B,T,V) */
    float *losses;    /* (B,T): -log p(target) per position */
} mq_gpt_acts_t;
#define MQ_NUM_ACTS 22

/* Which Linear of the model: the weight's parameter id and the layer (0 for lm_head). */
typedef struct mq_linear_id {
    int param; /* MQ_P_QKVW, MQ_P_ATTPROJW, MQ_P_FCW, MQ_P_FCPROJW or MQ_P_LMW */
    int layer;
} mq_linear_id_t;

/* A replacement for a Linear's forward (e.g. a quantized Linear): out (N,OC) = inp (N,C) @ W^T
 * + b. Returns MQ_OK or an error. Used by forward only (evaluation), never by backward. */
typedef int (*mq_linear_fn)(void *ctx, mq_linear_id_t id, float *out, const float *inp,
                            const float *bias, int N, int C, int OC);

typedef struct mq_gpt {
    mq_gpt_config_t cfg;
    size_t param_sizes[MQ_NUM_PARAMS];
    size_t num_params;
    float *params_memory;
    mq_gpt_params_t params;
    /* training state, allocated on first use */
    float *grads_memory;
    mq_gpt_params_t grads;
    float *m_memory, *v_memory; /* AdamW moments */
    /* activations for the (B, T) of the last forward; reallocated when B*T grows */
    int B, T;
    size_t act_sizes[MQ_NUM_ACTS];
    float *acts_memory;
    mq_gpt_acts_t acts;
    float *grads_acts_memory;
    mq_gpt_acts_t grads_acts; /* backward's scratch: only some pointers set, one layer each */
    int *inputs, *targets; /* copies of the last batch (B,T) */
    int have_targets;
    float mean_loss; /* mean of acts.losses after a forward with targets, else -1 */
    /* optional Linear replacement for forward */
    mq_linear_fn linear_fn;
    void *linear_ctx;
} mq_gpt_t;

/* Number of parameters of a model of cfg (cfg must pass mq_gpt_config_check). */
size_t mq_gpt_num_params(const mq_gpt_config_t *cfg);
/* Allocates parameters (zeroed) for cfg. */
int mq_gpt_init(mq_gpt_t *m, const mq_gpt_config_t *cfg, mq_error_t *err);
/* GPT-2 initialisation: weights N(0, 0.02), the residual projections (attproj, fcproj) scaled by
 * 1/sqrt(2L), biases 0, LayerNorm weight 1 and bias 0. Deterministic for a seed. */
void mq_gpt_init_weights(mq_gpt_t *m, uint64_t seed);
void mq_gpt_free(mq_gpt_t *m);

/* Forward over inputs (B,T) with token ids in [0,V); T <= maxT. When targets is non-NULL,
 * computes per-position losses and mean_loss. Logits end in acts.logits, probabilities in
 * acts.probs. */
int mq_gpt_forward(mq_gpt_t *m, const int *inputs, const int *targets, int B, int T,
                   mq_error_t *err);
/* Zeroes parameter gradients (allocating them on first use). */
int mq_gpt_zero_grad(mq_gpt_t *m, mq_error_t *err);
/* Backward of the mean loss of the last forward (which must have had targets); accumulates into
 * the parameter gradients. */
int mq_gpt_backward(mq_gpt_t *m, mq_error_t *err);
/* Global L2 norm of the gradients; scales them to max_norm when above it (max_norm <= 0: only
 * measures). Returns the norm before clipping. */
float mq_gpt_clip_grad_norm(mq_gpt_t *m, float max_norm);
/* One AdamW step (t counts from 1). Weight decay applies to 2-D tensors only (embeddings and
 * Linear weights), not to biases or LayerNorm parameters. */
int mq_gpt_adamw_update(mq_gpt_t *m, float lr, float beta1, float beta2, float eps,
                        float weight_decay, int t, mq_error_t *err);

/* The FP32 weight (OC, C) of a Linear inside m->params_memory, with its bias (OC) in *bias
 * (NULL for lm_head) and its shape in *OC, *C; any of the three may be NULL. NULL for an id that
 * names no Linear of m. */
float *mq_gpt_linear_weight(mq_gpt_t *m, mq_linear_id_t id, float **bias, int *OC, int *C);

/* out (N, OC) = inp (N, C) @ W^T + b for the Linear id of m, through m's Linear replacement when
 * it has one (as forward does). MQ_ERR_ARG for an id that names no Linear of m. */
int mq_gpt_linear_forward(mq_gpt_t *m, mq_linear_id_t id, float *out, const float *inp, int N,
                          mq_error_t *err);

/* ---------------------------------------------------------------------------------------------
 * KV-cached decoding: one token at a time (B = 1), each step attending to the keys and values of
 * the positions before it, kept from their own steps, instead of a forward over the whole
 * context. The numbers are mq_gpt_forward's up to FP32 rounding (its attention uses sgemm and
 * a polynomial exp; this one dot products and expf). */
typedef struct mq_gpt_kv {
    int len;      /* positions held: the next step's token goes at position len */
    int cap;      /* maxT */
    float *k, *v; /* (L, maxT, C) keys and values of positions 0 .. len-1 */
    float *x;     /* (C) the residual stream of the current token */
    float *ln, *qkv, *atty, *proj, *fch, *fch_gelu; /* (C), (3C), (C), (C), (4C), (4C) */
    float *ln_mean, *ln_rstd;                       /* (1) */
    float *att;    /* (NH, maxT) attention weights of the current token */
    float *logits; /* (V) the logits of the last step */
    float *memory;
} mq_gpt_kv_t;

/* Allocates an empty cache for cfg. */
int mq_gpt_kv_init(mq_gpt_kv_t *kv, const mq_gpt_config_t *cfg, mq_error_t *err);
void mq_gpt_kv_free(mq_gpt_kv_t *kv);
/* Runs token at position kv->len through m (its Linear replacement included), appends its keys
 * and values to the cache and leaves its logits in kv->logits. MQ_ERR_ARG when the cache is full
 * (len == maxT) or the token is not in [0, V). Lowering kv->len rewinds the cache: the next step
 * overwrites the entries from there on. */
int mq_gpt_decode_step(mq_gpt_t *m, mq_gpt_kv_t *kv, int token, mq_error_t *err);

/* A parameter's name ("wte", "qkvw", ...), for messages and tables. */
const char *mq_gpt_param_name(int param);
/* 1 for 2-D tensors (per layer for stacked ones): embeddings and Linear weights. */
int mq_gpt_param_is_matrix(int param);

#endif
