/* miniquant: evaluation. Perplexity on a token stream under two protocols:
 *
 *  MQ_PPL_DEFAULT   non-overlapping windows of the model's context length; every token but the
 *                   first is scored once (the last window may be shorter).
 *  MQ_PPL_LLAMACPP  llama.cpp's llama-perplexity: floor(n / n_ctx) chunks of n_ctx tokens, each
 *                   evaluated from an empty context, and only the second half of each chunk
 *                   scored (positions n_ctx/2 .. n_ctx-2 predicting the next token). With the
 *                   same tokens and n_ctx the numbers are comparable with llama.cpp's. */
#ifndef MINIQUANT_EVAL_H
#define MINIQUANT_EVAL_H

#include <stddef.h>
#include <stdint.h>

#include "miniquant/error.h"
#include "miniquant/model.h"
#include "miniquant/tokenizer.h"

typedef enum mq_ppl_protocol { MQ_PPL_DEFAULT = 0, MQ_PPL_LLAMACPP = 1 } mq_ppl_protocol_t;

/* Parses "default" / "llamacpp"; MQ_ERR_ARG listing the names otherwise. */
int mq_ppl_protocol_parse(const char *name, mq_ppl_protocol_t *out, mq_error_t *err);
const char *mq_ppl_protocol_name(mq_ppl_protocol_t p);

typedef struct mq_ppl_result {
    double ppl;        /* exp(mean negative log-likelihood) */
    double nll;        /* mean negative log-likelihood, nats per token */
    double nll_stderr; /* standard error of the mean NLL */
    int64_t n_scored;  /* tokens scored */
    int64_t n_tokens;  /* tokens in the stream */
    int n_windows;     /* windows (chunks) evaluated */
    int n_ctx;         /* window length */
    double seconds;
} mq_ppl_result_t;

/* Perplexity of tokens under m. n_ctx <= 0 means the model's context length; batch windows
 * are evaluated together (batch <= 0: 8). Shows a progress bar. */
int mq_perplexity(mq_gpt_t *m, const int32_t *tokens, size_t n, mq_ppl_protocol_t protocol,
                  int n_ctx, int batch, mq_ppl_result_t *res, mq_error_t *err);
/* The same, also giving per window the sum of its scored tokens' negative log-likelihoods and
 * their count: arrays of res->n_windows malloc'd into *window_nll and *window_tokens (either
 * may be NULL; the caller frees), in the windows' order, for paired statistics
 * (stats.h: mq_bootstrap_ppl_gap). The sums are the same numbers res is made of. */
int mq_perplexity_windows(mq_gpt_t *m, const int32_t *tokens, size_t n,
                          mq_ppl_protocol_t protocol, int n_ctx, int batch, mq_ppl_result_t *res,
                          double **window_nll, int64_t **window_tokens, mq_error_t *err);

/* A text's tokens as llama-perplexity -f reads the file for chunks of n_ctx: one final newline
 * dropped, encoded with the vocabulary's special tokens added (add_special: a LLaMA vocabulary's
 * BOS first), and, when the vocabulary begins sequences with BOS, every chunk's first token
 * replaced by BOS as llama-perplexity does before evaluating it. ids malloc'd. */
int mq_ppl_llamacpp_tokens(const mq_tokenizer_t *tok, const char *text, size_t len, int n_ctx,
                           int32_t **ids, size_t *n, mq_error_t *err);

/* How far a model's next-token distributions are from a base model's on the same windows and
 * tokens, as llama-perplexity --kl-divergence reports it: per scored token KL(P_base || P_model)
 * in nats, whether the two most likely tokens agree, and the paired difference of the two
 * negative log-likelihoods. */
typedef struct mq_kld_result {
    double mean, mean_stderr;      /* KL divergence, nats per token */
    double median, p99, p999, max; /* its quantiles (nearest rank) */
    double same_top, same_top_stderr; /* share of tokens whose most likely token is the base's */
    double ln_ppl_ratio, ln_ppl_ratio_stderr; /* mean of nll - nll_base: ln(PPL / PPL_base) */
    double ppl, ppl_base;
    int64_t n_scored;
    int n_windows, n_ctx;
    double seconds;
} mq_kld_result_t;

/* KL divergence of m from base over the windows of the protocol (n_ctx, batch as for
 * mq_perplexity). The two models must share the vocabulary. Shows a progress bar. */
int mq_kl_divergence(mq_gpt_t *base, mq_gpt_t *m, const int32_t *tokens, size_t n,
                     mq_ppl_protocol_t protocol, int n_ctx, int batch, mq_kld_result_t *res,
                     mq_error_t *err);

/* -log softmax(logits)[target] for one row of V logits, in double. */
double mq_nll_from_logits(const float *logits, int V, int target);

#endif
