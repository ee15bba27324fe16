/* miniquant: the models, in FP32, of the architectures of arch.h: MiniGPT (gpt2) and MiniLlama
 * (llama).
 *
 * gpt2: token + learned position embeddings, L pre-LayerNorm blocks (LayerNorm eps 1e-5, fused
 * QKV Linear with bias, causal softmax attention scaled by 1/sqrt(head_dim), output projection,
 * MLP 4C with tanh GELU), final LayerNorm and an untied lm_head Linear (no bias, as GPT-2's).
 *
 * llama: token embeddings, L pre-RMSNorm blocks (eps from the configuration), Q, K and V Linears
 * without biases, rotary position embeddings on Q and K (llama.cpp's "normal" ordering: adjacent
 * pairs, the first n_rot dimensions of each head, base frequency rope_base), grouped-query
 * attention (n_head_kv heads of keys and values, each shared by n_head / n_head_kv query heads),
 * output projection, SwiGLU MLP (down(silu(gate x) * up x)), final RMSNorm and the output Linear.
 *
 * Parameters are one allocation with named pointers into it and a size table beside it
 * (llm.c's layout); so are gradients, AdamW moments and activations. */
#ifndef MINIQUANT_MODEL_H
#define MINIQUANT_MODEL_H

#include <stddef.h>
#include <stdint.h>

#include "miniquant/error.h"

/* The architectures, numbered as the rows of arch.h. */
typedef enum { MQ_ARCH_GPT2 = 0, MQ_ARCH_LLAMA = 1, MQ_NUM_ARCHS } mq_arch_id_t;

typedef struct mq_gpt_config {
    char name[32];  /* preset name ("tiny", "default", "llama-default", ...) or "custom" */
    int vocab_size; /* V */
    int n_ctx;      /* maxT, the context length */
    int n_embd;     /* C */
    int n_head;     /* NH */
    int n_layer;    /* L */
    /* The architecture and its further sizes. 0 in any of them is the architecture's default,
     * so that a GPT-2 configuration needs none: n_head_kv NH, n_ff 4C (gpt2) , n_rot C/NH,
     * rope_base 10000, norm_eps 1e-5. mq_gpt_config_defaults writes them out. */
    int arch;        /* mq_arch_id_t */
    int n_head_kv;   /* heads of keys and values (llama: divides NH) */
    int n_ff;        /* MLP width F (gpt2: 4C) */
    int n_rot;       /* llama: dimensions of each head that RoPE rotates (even, <= C/NH) */
    float rope_base; /* llama: RoPE's base frequency */
    float norm_eps;  /* LayerNorm's (gpt2: 1e-5) or RMSNorm's epsilon */
} mq_gpt_config_t;

/* Fills cfg with a named preset for a vocabulary of vocab_size tokens.
 *   tiny:          gpt2,  L=2, C=64,  NH=2, maxT=64         (tests; trains in seconds)
 *   default:       gpt2,  L=4, C=256, NH=4, maxT=128        (every Linear input dimension a
 *                                                            multiple of 256)
 *   llama-tiny:    llama, L=2, C=64,  NH=2, KV=1, F=192, maxT=64
 *   llama-default: llama, L=4, C=256, NH=4, KV=2, F=768, maxT=128 (MiniGPT default's parameter
 *                                                            count; inputs multiples of 256)
 * Unknown names: MQ_ERR_ARG with a message listing the presets. */
int mq_gpt_preset(const char *name, int vocab_size, mq_gpt_config_t *cfg, mq_error_t *err);
/* Writes out the architecture's defaults for the fields that are 0 (see mq_gpt_config_t). */
void mq_gpt_config_defaults(mq_gpt_config_t *cfg);
/* Checks a configuration (positive sizes, C divisible by NH, NH by n_head_kv, ...), its zero
 * fields taken as their defaults. */
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
    /* llama's own (size 0 in a gpt2 model, whose storage order is unchanged by them) */
    MQ_P_QW,    /* (L, C, C) */
    MQ_P_KW,    /* (L, KV, C), KV = n_head_kv * C / NH */
    MQ_P_VW,    /* (L, KV, C) */
    MQ_P_GATEW, /* (L, F, C) */
    MQ_NUM_PARAMS
};
/* In a llama model LN1W / LN2W / LNFW are the RMSNorm weights (attn_norm, ffn_norm,
 * output_norm), ATTPROJW the attention output, FCW ffn_up (F, C), FCPROJW ffn_down (C, F); the
 * biases, WPE and QKVW are empty. */

/* Named pointers into one allocation, in the enum's order (so it is also float *[MQ_NUM_PARAMS]).
 */
typedef struct mq_gpt_params {
    float *wte, *wpe, *ln1w, *ln1b, *qkvw, *qkvb, *attprojw, *attprojb, *ln2w, *ln2b, *fcw, *fcb,
        *fcprojw, *fcprojb, *lnfw, *lnfb, *lmw, *qw, *kw, *vw, *gatew;
} mq_gpt_params_t;

/* Activations of one forward pass at (B, T). A llama model keeps its RMSNorms in ln1 / ln2 /
 * lnf and their rstd (no mean), per layer Q (N,C), K (N,KV) and V (N,KV) one after another in
 * qkv (after RoPE), its MLP's up projection in fch, gate projection in fcg and
 * silu(gate) * up in fch_gelu. */
typedef struct mq_gpt_acts {
    float *encoded;   /* (B,T,C) */
    float *ln1;       /* (L,B,T,C) */
    float *ln1_mean;  /* (L,B,T) */
    float *ln1_rstd;  /* (L,B,T) */
    float *qkv;       /* (L,B,T,C+2KV) */
    float *atty;      /* (L,B,T,C) */
    float *att;       /* (L,B,NH,T,T) */
    float *attproj;   /* (L,B,T,C) */
    float *residual2; /* (L,B,T,C) */
    float *ln2;       /* (L,B,T,C) */
    float *ln2_mean;  /* (L,B,T) */
    float *ln2_rstd;  /* (L,B,T) */
    float *fch;       /* (L,B,T,F) */
    float *fch_gelu;  /* (L,B,T,F) */
    float *fcproj;    /* (L,B,T,C) */
    float *residual3; /* (L,B,T,C) */
    float *lnf;       /* (B,T,C) */
    float *lnf_mean;  /* (B,T) */
    float *lnf_rstd;  /* (B,T) */
    float *logits;    /* (B,T,V) */
    float *probs;     /* (B,T,V) */
    float *losses;    /* (B,T): -log p(target) per position */
    float *fcg;       /* (L,B,T,F) llama's gate projection */
} mq_gpt_acts_t;
#define MQ_NUM_ACTS 23

/* Which Linear of the model: the weight's parameter id and the layer (0 for lm_head). */
typedef struct mq_linear_id {
    int param; /* a Linear weight of the architecture (arch.h), MQ_P_LMW for lm_head */
    int layer;
} mq_linear_id_t;

/* A replacement for a Linear's forward (e.g. a quantized Linear): out (N,OC) = inp (N,C) @ W^T
 * + b. Returns MQ_OK or an error. Used by forward only (evaluation), never by backward. */
typedef int (*mq_linear_fn)(void *ctx, mq_linear_id_t id, float *out, const float *inp,
                            const float *bias, int N, int C, int OC);

/* A Linear as the one-region decode step runs it (mq_gpt_decode_step): one x row (cols), whose
 * output rows the step's threads share in multiples of granule. prep, when set, rearranges x
 * once per step into prep_bytes of scratch (one thread); then every thread runs rows on its
 * share [o0, o1), bias included, with thread_bytes of scratch of its own. Both run inside the
 * step's parallel region: neither allocates nor opens a parallel region of its own. */
typedef struct mq_step_linear {
    const void *w;     /* the weight, as prep and rows read it */
    const float *bias; /* (out_rows) or NULL */
    int mode;          /* what prep and rows need to know besides w (their kernel) */
    int a8;            /* 1: the products take x as int8 codes (kernels.h: VNNI) */
    int out_rows, cols, granule;
    size_t prep_bytes, thread_bytes;
    void (*prep)(const struct mq_step_linear *s, const float *x, void *prep);
    void (*rows)(const struct mq_step_linear *s, const float *x, const void *prep, float *out,
                 int o0, int o1, void *scratch);
} mq_step_linear_t;

/* The step form of a Linear replacement: fills *out for the Linear id; MQ_ERR_UNSUPPORTED when
 * the replacement has none (the step then runs one operation at a time). */
typedef int (*mq_step_linear_fn)(void *ctx, mq_linear_id_t id, mq_step_linear_t *out);

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
    int *inputs, *targets;    /* copies of the last batch (B,T) */
    int have_targets;
    float mean_loss; /* mean of acts.losses after a forward with targets, else -1 */
    /* optional Linear replacement for forward */
    mq_linear_fn linear_fn;
    void *linear_ctx;
    /* its step form (same ctx), used only while linear_fn is step_pair: code that swaps
       linear_fn for its own need not know about it */
    mq_step_linear_fn step_fn;
    mq_linear_fn step_pair;
    float *rope;      /* llama: (maxT, n_rot/2) pairs of cos and sin of each position's angles */
    char source[256]; /* the file the weights were read from, for messages ("": built here) */
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
/* The forward pass in parts, for work that holds one layer at a time (streaming quantization):
 * layer l on the residual stream x (B*T, C), its output in *out (inside m->acts, valid until the
 * next forward); the final norm and the output Linear on N rows of x, the logits in
 * m->acts.logits. */
int mq_gpt_block_forward(mq_gpt_t *m, int l, const float *x, int B, int T, float **out,
                         mq_error_t *err);
int mq_gpt_head_forward(mq_gpt_t *m, const float *x, int N, mq_error_t *err);

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
    float *k, *v; /* (L, maxT, KV) keys and values of positions 0 .. len-1 */
    float *x;     /* (C) the residual stream of the current token */
    float *ln, *qkv, *atty, *proj, *fch, *fch_gelu; /* (C), (QKV), (C), (C), (F), (F) */
    float *fcg;                                     /* (F) llama's gate */
    float *ln_mean, *ln_rstd;                       /* (1) */
    float *att;    /* (NH, maxT) attention weights of the current token */
    float *logits; /* (V) the logits of the last step */
    float *memory;
    /* 1: run each operation of a step on its own (each its own parallel region), the reference
       the one-region step is tested against; 0 (default): one parallel region per step */
    int per_op;
    struct mq_step_plan *plan; /* the one-region step's Linears, refreshed every step */
    void *scratch;             /* its preps and per-thread scratch */
    size_t scratch_bytes;
    float *lin_out; /* mq_gpt_decode_linears' outputs: every Linear's rows, in order */
    size_t lin_out_n;
} mq_gpt_kv_t;

/* Allocates an empty cache for cfg. */
int mq_gpt_kv_init(mq_gpt_kv_t *kv, const mq_gpt_config_t *cfg, mq_error_t *err);
void mq_gpt_kv_free(mq_gpt_kv_t *kv);
/* Runs token at position kv->len through m (its Linear replacement included), appends its keys
 * and values to the cache and leaves its logits in kv->logits. The whole step is one OpenMP
 * parallel region (threads meet at barriers between its operations) when every Linear has a
 * step form (a plain FP32 model, the fused kernels); otherwise, or with kv->per_op, each
 * operation runs on its own. Both give the same numbers for a quantized model; a plain FP32
 * model's one-row products run sgemv in the region, sgemm per operation. MQ_ERR_ARG when the cache
 * is full (len == maxT) or the token is not in [0, V). Lowering kv->len rewinds the cache: the next
 * step overwrites the entries from there on. */
int mq_gpt_decode_step(mq_gpt_t *m, mq_gpt_kv_t *kv, int token, mq_error_t *err);

/* Every Linear of one decode step once, as the one-region step runs them (one parallel region,
 * the same kernels, chunks of output rows from the same counters), with nothing else of the
 * step: no attention, norms or residual adds, and no barrier but the region's end instead of
 * one after each operation: what the Linears alone cost, against the step (the roofline). Each
 * Linear reads kv->ln (C columns) or kv->fch_gelu (the MLP's width) and writes its outputs,
 * bias added, into kv->lin_out, the Linears' rows one after another in the plan's order
 * (mq_arch_linear_id); kv->len, the cache and the step's buffers are untouched.
 * MQ_ERR_UNSUPPORTED when the model's Linears have no step form. */
int mq_gpt_decode_linears(mq_gpt_t *m, mq_gpt_kv_t *kv, mq_error_t *err);

/* Runs the n tokens of a prompt into an empty cache (kv->len 0) at once: every layer takes the
 * n rows together, as mq_gpt_forward does (a quantized model's Linears run their prompt
 * kernels), and leaves its keys and values in the cache; the logits of the last token end in
 * kv->logits, kv->len becomes n. The numbers are those of n decode steps up to FP32 rounding.
 * MQ_ERR_ARG when the cache is not empty or n is not in [1, maxT]. */
int mq_gpt_prefill(mq_gpt_t *m, mq_gpt_kv_t *kv, const int *tokens, int n, mq_error_t *err);

/* A parameter's name ("wte", "qkvw", ...), for messages and tables. */
const char *mq_gpt_param_name(int param);
/* 1 for 2-D tensors (per layer for stacked ones): embeddings and Linear weights. */
int mq_gpt_param_is_matrix(int param);

#endif
