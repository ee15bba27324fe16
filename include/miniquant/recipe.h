/* miniquant: recipes, the scheme of every tensor of a model.
 *
 * A scheme (quant.h) quantizes every Linear alike and keeps the token embedding FP16. A recipe
 * gives each tensor its own: the Linears (in mq_qmodel_linear_id order) and token_embd, which
 * a recipe stores in a block format too. Two kinds:
 *
 *   llama.cpp's mixtures, by the name llama-quantize gives its file types, lower case:
 *     q2_k, q3_k_s, q3_k_m, q3_k_l, q4_k_s, q4_k_m, q5_k_s, q5_k_m, q6_k, iq4_nl, q4_0, q8_0
 *   with llama-quantize's per-tensor rules for a model of this shape (src/llama-quant.cpp's
 *   llama_tensor_get_type for gpt2, which fuses attn_q/k/v into attn_qkv): the type the name
 *   says for most tensors, token_embd included; output (lm_head) q6_k (q8_0 for q8_0); more
 *   bits for attn_qkv, attn_output and some ffn_down layers where the mixture says so (the
 *   table in src/quant/recipe.c). Row lengths a type's block does not divide fall back as
 *   quant.h says. q4_0 and q8_0 are miniquant's int4_g32 and int8_g32, stored as Q4_0 / Q8_0.
 *
 *   auto: each tensor's type chosen from measured sensitivity (sensitivity.h) so that the
 *     tensors the recipe stores (Linears and token_embd) take at most a target number of bits
 *     per weight, with the lowest summed KL divergence from FP32.
 *
 * A recipe name may end in _imat or _gptq: every Linear is then built so (token_embd, a lookup
 * with no inputs to calibrate on, is always rounded to nearest). The position embedding stays
 * FP16, LayerNorm parameters and biases FP32. */
#ifndef MINIQUANT_RECIPE_H
#define MINIQUANT_RECIPE_H

#include <stddef.h>

#include "miniquant/error.h"
#include "miniquant/format.h"
#include "miniquant/model.h"

typedef struct mq_recipe {
    char name[40];       /* canonical name: "q4_k_m_gptq", "auto_gptq" */
    char method[8];      /* "", "_imat" or "_gptq" */
    int llama_ftype;     /* general.file_type of its files (1024 GUESSED for auto) */
    int n_linear;
    mq_scheme_t *linear; /* [n_linear] */
    mq_scheme_t embd;    /* token_embd's scheme, rounded to nearest */
} mq_recipe_t;

/* The grammar, for messages and help: "q2_k, q3_k_s, ..., auto[_imat|_gptq]". */
const char *mq_recipe_grammar(void);
/* 1 when name (without a method suffix) is auto. */
int mq_recipe_is_auto(const char *name);
/* The method suffix of a recipe's name: "", "_imat" or "_gptq". */
const char *mq_recipe_method(const char *name);
/* MQ_ERR_ARG, quoting the grammar, unless name is a recipe's (a mixture, or auto) with a method
 * its types take. */
int mq_recipe_check_name(const char *name, mq_error_t *err);
/* One of llama.cpp's mixtures for a model of configuration cfg. An auto name is MQ_ERR_ARG
 * here: it is built by mq_recipe_choose from measurements. r is overwritten; free it with
 * mq_recipe_free. */
int mq_recipe_parse(const char *name, const mq_gpt_config_t *cfg, mq_recipe_t *r,
                    mq_error_t *err);
void mq_recipe_free(mq_recipe_t *r);

/* The types auto chooses among (scheme names without the method; NULL-terminated), from the
 * fewest bits to the most. */
extern const char *const MQ_RECIPE_AUTO_TYPES[];
/* The scheme auto stores a Linear of type k as under method ("", "_imat", "_gptq"): the type with
 * the method, or the type alone (round to nearest) where its family takes no _imat (q8_0). */
int mq_recipe_auto_scheme(int k, const char *method, mq_scheme_t *s, mq_error_t *err);

/* Tensors a recipe gives a scheme: the Linears, then token_embd. */
int mq_recipe_n_tensors(const mq_gpt_config_t *cfg);
/* "blk.0.ffn_up", ..., "output", "token_embd". */
void mq_recipe_tensor_name(const mq_gpt_config_t *cfg, int t, char *buf, size_t n);
/* Rows and inputs (columns) of tensor t. */
void mq_recipe_tensor_shape(const mq_gpt_config_t *cfg, int t, int *rows, int *cols);
/* Bytes tensor t takes stored with scheme s (its format, fallbacks included); 0 when no format
 * fits. */
size_t mq_recipe_tensor_bytes(const mq_gpt_config_t *cfg, int t, const mq_scheme_t *s);
/* Bytes of every tensor of r, and the weights they hold: bits per weight = 8 * bytes / weights. */
size_t mq_recipe_bytes(const mq_recipe_t *r, const mq_gpt_config_t *cfg, size_t *weights);

/* auto: cost[t * n_types + k] is the measured cost (KL divergence from FP32) of tensor t stored
 * with type k of MQ_RECIPE_AUTO_TYPES (n_types of them), the other tensors left as they were.
 * Chooses the types that minimise the summed cost with bytes (mq_recipe_bytes) at most
 * target_bpw bits per weight: an exact dynamic programme over the bytes in units of 64. r is
 * the recipe auto{method}, *total_cost (may be NULL) its summed cost; MQ_ERR_ARG when even the
 * fewest bits exceed the target. */
int mq_recipe_choose(const mq_gpt_config_t *cfg, const double *cost, int n_types,
                     double target_bpw, const char *method, mq_recipe_t *r, double *total_cost,
                     mq_error_t *err);

#endif
