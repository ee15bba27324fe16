/* miniquant: text generation with the KV-cached decoder: a sampler (greedy, or top-k, top-p and
 * temperature in llama.cpp's order) and the loop that feeds a prompt, samples, and feeds each
 * sampled token back, one decode step per token.
 *
 * The sampler follows llama.cpp's default chain: top-k on the logits, then top-p on their
 * softmax, then the temperature, then a draw from the softmax of what is left. At temperature 0
 * it is greedy: the largest logit, the lowest id among equal ones, and no random number is
 * drawn. The same seed and logits give the same tokens on every machine. */
#ifndef MINIQUANT_GENERATE_H
#define MINIQUANT_GENERATE_H

#include <stddef.h>
#include <stdint.h>

#include "miniquant/error.h"
#include "miniquant/model.h"
#include "miniquant/rng.h"

typedef struct mq_sampling {
    float temp;    /* 0: greedy */
    int top_k;     /* keep the k largest logits; 0: all */
    float top_p;   /* then the fewest of them whose probability reaches top_p; 1: all */
    uint64_t seed; /* the draws' random stream */
} mq_sampling_t;

typedef struct mq_sampler {
    mq_sampling_t p;
    int n_vocab;
    mq_rng_t rng;
    int32_t *idx; /* [n_vocab] candidates, best first */
    float *prob;  /* [n_vocab] their probabilities */
} mq_sampler_t;

/* MQ_ERR_ARG for a negative temperature or top_k, top_p outside (0, 1], or n_vocab < 1. */
int mq_sampler_init(mq_sampler_t *s, const mq_sampling_t *p, int n_vocab, mq_error_t *err);
/* The next token for logits (n_vocab values; not changed). */
int32_t mq_sampler_next(mq_sampler_t *s, const float *logits);
void mq_sampler_free(mq_sampler_t *s);

/* Called with each generated token as soon as it is sampled; non-zero stops the generation. */
typedef int (*mq_token_fn)(void *ctx, int32_t token);

/* What a generation did and how long it took (the step times as llama.cpp's llama_perf
 * reports them: the prompt's steps, then one step per generated token but the last). */
typedef struct mq_generation {
    int prompt_tokens; /* tokens fed before the first draw, re-fed context included */
    int tokens;        /* tokens generated */
    int eval_steps;    /* decode steps of generated tokens */
    int shifts;        /* times the context was full and its last half re-fed */
    int stopped;       /* 1: a stop token ended it (not passed to on_token) */
    double prompt_seconds, eval_seconds, sample_seconds;
} mq_generation_t;

/* Feeds prompt[0 .. n_prompt) to m through a new KV cache, all at once (mq_gpt_prefill; after
 * an untimed warm-up of the prompt and one step), then samples up to n_predict tokens, each
 * passed to on_token and fed back by a decode step. A token in stop[0 ..
 * n_stop) ends the generation without being passed on. When the cache is full, its last half of the
 * tokens so far is fed again, at once, into an empty cache (the context shifts; the earlier tokens
 * are forgotten) and generation goes on. MQ_ERR_ARG for an empty prompt, a prompt token outside the
 * vocabulary or n_predict < 0. */
int mq_generate(mq_gpt_t *m, const int32_t *prompt, size_t n_prompt, int n_predict,
                const int32_t *stop, size_t n_stop, mq_sampler_t *s, mq_token_fn on_token,
                void *ctx, mq_generation_t *out, mq_error_t *err);

#endif
