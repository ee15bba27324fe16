/* miniquant: GPTQ, weights chosen by second-order error compensation (Frantar et al., 2022).
 *
 * For a Linear W (rows = out, cols = in, row-major W[out][in]) and calibration inputs x (rows
 * of length cols, the activations the Linear sees), GPTQ minimises the layer's output error
 * tr((W - Q) H (W - Q)^T), H = X X^T / n, one column at a time: each column is rounded to the
 * scheme's grid and its rounding error is spread over the columns not yet quantized through
 * the upper Cholesky factor of H^-1.
 *
 *   H          sum over calibration rows of x x^T, divided by their count n. The reference
 *              implementation uses 2/n; a scale of H changes neither the damping (relative to
 *              mean diag H) nor the error propagation (ratios of H^-1 entries), so the codes
 *              are the same. With 1/n the loss below is the mean over calibration rows of the
 *              squared output error ||(W - Q) x||^2.
 *   dead       inputs with diag H == 0 (never active in calibration): H[i][i] = 1 and W[:, i] = 0,
 *              as the reference does; their codes are those of 0.
 *   damping    H += damp * mean(diag H) * I (after the dead inputs are set), damp 0.01.
 *   act-order  columns in order of descending diag H (ties by index), codes un-permuted at the
 *              end.
 *   groups     scale blocks are always the scheme's own: groups of consecutive ORIGINAL columns,
 *              so that the result is an ordinary mq_qweight_t that every exporter reads. A
 *              group's scales are computed when the solver reaches the first of its columns
 *              (in solve order) from the current, error-updated weights of all its columns;
 *              with static groups they are computed once, from W before any update (after dead
 *              inputs are zeroed). Without act-order the two orders coincide with the reference
 *              implementation; with act-order the reference's non-static groups follow the
 *              permuted order and could not be stored as the scheme's groups, which is why
 *              miniquant's follow the original columns. Per-channel is one group spanning the
 *              row (its scale comes from W itself); per-tensor has one scale for the whole
 *              matrix, computed up front from max|W|.
 *   rounding   through the family's grid (format.h): scale(absmax, bits) then
 *              code(w, scale, bits), exactly as round to nearest does, so a GPTQ weight is a
 *              point of the same grid.
 *
 * The solve runs in double precision, in blocks of `block` columns: within a block the errors
 * are propagated column by column, to the later columns of the block; the block's errors reach
 * all the columns after it in one matrix product (lazy batch update). This gives the codes of
 * the plain column-by-column algorithm. Deterministic for a given thread count. */
#ifndef MINIQUANT_GPTQ_H
#define MINIQUANT_GPTQ_H

#include <stddef.h>
#include <stdint.h>

#include "miniquant/error.h"
#include "miniquant/model.h"
#include "miniquant/qmodel.h"
#include "miniquant/quant.h"

typedef struct mq_gptq_opts {
    double damp;       /* relative damping of H (default 0.01); >= 0 */
    int block;         /* columns per lazy-update block (default 128) */
    int act_order;     /* 1: columns by descending diag H (default 0) */
    int static_groups; /* 1: group scales from W before any update (default 0) */
    int losses;        /* 1: compute loss, row_loss and the RTN comparison (default 1) */
    int n_samples;     /* full model: calibration sequences (default 128) */
    int batch;         /* full model: sequences per forward pass (default 16) */
} mq_gptq_opts_t;

/* miniquant's defaults, as listed above. */
void mq_gptq_opts_default(mq_gptq_opts_t *o);

/* H accumulated over calibration rows: sum[i][j] = sum over rows of x_i x_j (j >= i: the upper
 * triangle, row-major, is the only one read or kept), n rows so far. Plain data: a caller may
 * also fill sum and n itself. */
typedef struct mq_gptq_hessian {
    int cols;
    size_t n;
    double *sum; /* cols x cols */
} mq_gptq_hessian_t;

int mq_gptq_hessian_init(mq_gptq_hessian_t *h, int cols, mq_error_t *err);
/* The calibration windows of a model's GPTQ: window s0 .. s0 + b - 1 of n_seq, each T tokens,
 * evenly spaced over the n_tokens of calib (first and last included), into inputs (b x T). */
void mq_gptq_windows(const int32_t *calib, size_t n_tokens, int T, int n_seq, int s0, int b,
                     int *inputs);
/* Adds the N rows of X (N, cols). Each call's products are summed in FP32 (one BLAS syrk) and
 * added to the running sums in double. */
int mq_gptq_hessian_add(mq_gptq_hessian_t *h, const float *X, int N, mq_error_t *err);
void mq_gptq_hessian_free(mq_gptq_hessian_t *h);

typedef struct mq_gptq_result {
    mq_qweight_t q; /* the codes and scales in the scheme's stored format, as a
                       QuantizedLinear holds them */
    int n_dead;     /* dead inputs */
    /* With opts.losses: tr((W - Q) H (W - Q)^T) with H = X X^T / n undamped (dead inputs at 0),
     * W the original weight, in total and per row; the same for round to nearest on the same
     * scheme. NULL / 0 otherwise. */
    double loss, loss_rtn;
    double *row_loss, *row_loss_rtn; /* [rows] */
    /* seconds spent: damping + factorization of H^-1, the blocked solve, the losses */
    double t_factor, t_solve, t_loss;
} mq_gptq_result_t;

/* GPTQ of W (rows x cols, row-major, finite) on H for scheme s (an int or nf4 grid: the _gptq
 * flag is not needed). o NULL: the defaults. res is overwritten, not freed. MQ_ERR_ARG for a
 * bad shape, scheme, non-finite weight or Hessian, or an H + damping that is not positive
 * definite (then raise damp). */
int mq_gptq_quantize(const float *W, int rows, int cols, const mq_gptq_hessian_t *h,
                     const mq_scheme_t *s, const mq_gptq_opts_t *o, mq_gptq_result_t *res,
                     mq_error_t *err);
void mq_gptq_result_free(mq_gptq_result_t *res);

/* row_loss[r] (may be NULL) and *total = tr((W - deq(q)) H (W - deq(q))^T) with H = sum / n. */
int mq_gptq_loss(const float *W, const mq_qweight_t *q, const mq_gptq_hessian_t *h,
                 double *row_loss, double *total, mq_error_t *err);

/* What GPTQ did to one Linear of a model. */
typedef struct mq_gptq_layer_stats {
    int quantized;          /* 0 where the Linear stayed FP32 (lm_head with skip_lm_head) */
    int rows, cols, n_dead;
    double loss, loss_rtn;  /* as in mq_gptq_result_t, on this Linear's calibration inputs */
    double seconds;         /* calibration forward passes + GPTQ */
} mq_gptq_layer_stats_t;

/* GPTQ of every Linear of m with scheme s (int or nf4 grid; stored with the _gptq suffix).
 *
 * Calibration: o->n_samples windows of T = min(n_ctx, n_calib_tokens) tokens, evenly spaced
 * over calib (the caller passes the validation split's stream), run o->batch at a time.
 * The Linears are quantized in forward order (mq_qmodel_linear_id), each on the inputs it sees
 * when every Linear before it is already quantized, so later layers compensate for the errors
 * of earlier ones. The passes run on the quantized model's own parameters, embeddings rounded
 * to FP16 as mq_qmodel_quantize rounds them, so the calibration inputs are those of the
 * quantized model. skip_lm_head keeps lm_head FP32.
 *
 * On success out is a new quantized model as mq_qmodel_quantize makes one (m must outlive it);
 * stats (may be NULL) receives mq_qmodel_n_linear entries. m is never changed. On failure out
 * holds nothing. A progress bar shows the layers. */
int mq_gptq_quantize_model(const mq_gpt_t *m, const mq_scheme_t *s, const int32_t *calib,
                           size_t n_calib_tokens, const mq_gptq_opts_t *o, int skip_lm_head,
                           mq_qmodel_t *out, mq_gptq_layer_stats_t *stats, mq_error_t *err);

/* The quantized model of any scheme, built the way its name says: GPTQ (with the default
 * options, act-order for the block formats that search their scales, calibrated on calib) when
 * s->gptq; round to nearest under the inputs' importance (diag H from calib) when s->imat;
 * round to nearest (mq_qmodel_quantize) otherwise, calib may be NULL then. The same contract as
 * above. */
/* The same with GPTQ's options (NULL: mq_gptq_opts_for the scheme). */
int mq_gptq_build_qmodel_with(const mq_gpt_t *m, const mq_scheme_t *s, int skip_lm_head,
                              const int32_t *calib, size_t n_calib_tokens,
                              const mq_gptq_opts_t *o, mq_qmodel_t *out, mq_error_t *err);
/* The options GPTQ takes for scheme s: the defaults, with act-order for the block formats that
 * search their scales (q4_k, ...). */
void mq_gptq_opts_for(const mq_scheme_t *s, mq_gptq_opts_t *o);
/* One Linear W (OC x C) of any scheme, on its input Hessian h: GPTQ with options o for _gptq,
 * round to nearest under the importance diag H / n for _imat, round to nearest otherwise (h
 * unused). q is overwritten, not freed. */
int mq_gptq_quantize_linear(const float *W, int OC, int C, const mq_gptq_hessian_t *h,
                            const mq_scheme_t *s, const mq_gptq_opts_t *o, mq_qweight_t *q,
                            mq_error_t *err);
/* The quantized model of a recipe (recipe.h): each Linear built as its own scheme says, in
 * forward order on the inputs of the quantized model (its token embedding stored as the recipe
 * says), the uncalibrated ones rounded to nearest. o NULL: each Linear's mq_gptq_opts_for. calib
 * may be NULL when no Linear is calibrated. The same contract as above. */
int mq_gptq_build_recipe(const mq_gpt_t *m, const mq_recipe_t *r, int skip_lm_head,
                         const int32_t *calib, size_t n_calib_tokens, const mq_gptq_opts_t *o,
                         mq_qmodel_t *out, mq_error_t *err);
int mq_gptq_build_qmodel(const mq_gpt_t *m, const mq_scheme_t *s, int skip_lm_head,
                         const int32_t *calib, size_t n_calib_tokens, mq_qmodel_t *out,
                         mq_error_t *err);

/* Streaming quantization, one layer at a time. q is the quantized model of a one-layer model m1
 * (mq_qmodel_quantize with opts.only = -2: every Linear reading m1's FP32 weight) holding one
 * layer's weights and non-Linear parameters. X holds n_seq calibration windows of T rows (C
 * wide): the residual stream entering the layer, as the whole model's calibration computes it.
 * Each of the layer's Linears in forward order is quantized with s (GPTQ with o, importance-
 * weighted, or round to nearest) on the inputs it sees with the Linears before it quantized,
 * and X becomes the layer's output under the quantized Linears. The same codes as
 * mq_gptq_build_qmodel gives that layer of the whole model, for the same windows and o->batch. */
int mq_gptq_stream_block(mq_qmodel_t *q, const mq_scheme_t *s, const mq_gptq_opts_t *o, float *X,
                         int n_seq, int T, mq_error_t *err);
/* The output Linear W (V x C) on the final norm of X (the stream after the last layer), q's
 * model holding the final norm; the result into out (the caller frees it). */
int mq_gptq_stream_head(mq_qmodel_t *q, const float *W, int V, const mq_scheme_t *s,
                        const mq_gptq_opts_t *o, float *X, int n_seq, int T, mq_qweight_t *out,
                        mq_error_t *err);

#endif
