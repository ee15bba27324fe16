/* miniquant: per-layer sensitivity. Each Linear is quantized alone (every other layer and the
 * embeddings stay FP32) and the model's perplexity measured: which layer hurts most. */
#ifndef MINIQUANT_SENSITIVITY_H
#define MINIQUANT_SENSITIVITY_H

#include <stddef.h>
#include <stdint.h>

#include "miniquant/error.h"
#include "miniquant/eval.h"
#include "miniquant/model.h"
#include "miniquant/quant.h"

typedef struct mq_sensitivity {
    int n;               /* Linears, in forward order (mq_qmodel_linear_id) */
    char (*names)[32];   /* [n] "blk.0.attn_qkv", ..., "output" */
    double *ppl;         /* [n] perplexity with only that Linear quantized */
    double *gap_pct;     /* [n] 100 * (ppl - base) / base */
    double base_ppl;     /* FP32 */
} mq_sensitivity_t;

/* Perplexity (default protocol) of m with each Linear quantized alone by s. Progress bar. */
int mq_sensitivity_run(mq_gpt_t *m, const mq_scheme_t *s, const int32_t *tokens, size_t n,
                       mq_sensitivity_t *out, mq_error_t *err);
void mq_sensitivity_free(mq_sensitivity_t *s);

/* What an auto recipe (recipe.h) chooses from: cost[t * n_types + k], the mean KL divergence
 * from m's next-token distribution when tensor t alone (the Linears, then token_embd; every
 * other tensor FP32) is stored as type k of MQ_RECIPE_AUTO_TYPES, over n_windows windows of
 * n_ctx tokens of tokens (the default protocol); INFINITY where the type does not fit the
 * tensor's rows. method "" rounds to nearest; "_imat" and "_gptq" build each Linear so
 * (token_embd always to nearest) on the input Hessians of the FP32 model over 128 windows of
 * calib, as GPTQ lays them out. m's forward hook is borrowed during the calibration pass and
 * restored. Progress bar over the measurements. */
int mq_sensitivity_types(mq_gpt_t *m, const char *method, const int32_t *calib, size_t n_calib,
                         const int32_t *tokens, size_t n, int n_windows, double *cost,
                         mq_error_t *err);

#endif
