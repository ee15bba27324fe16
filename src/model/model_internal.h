/* miniquant: what the model module's files share (private to src/model): each architecture's
 * forward, backward and decoding step (named by its row in arch.c), and the path every Linear
 * of a forward pass takes. */
#ifndef MINIQUANT_MODEL_INTERNAL_H
#define MINIQUANT_MODEL_INTERNAL_H

#include <stdatomic.h>

#include "miniquant/arch.h"
#include "miniquant/model.h"

/* out (N, OC) = inp (N, C) @ weight^T + bias for Linear (param, layer), through m's Linear
 * replacement when it has one. */
int mq_model_linear(mq_gpt_t *m, int param, int layer, float *out, const float *inp,
                    const float *weight, const float *bias, int N, int C, int OC, mq_error_t *err);

/* One query (NH heads of hs) against a layer's cache: kc, vc (maxT, NKV * hs) hold T positions;
 * out (NH * hs); att (NH, maxT) scratch. */
void mq_model_attention_step(float *out, float *att, const float *q, const float *kc,
                             const float *vc, int T, int maxT, int NH, int NKV, int hs);

/* One query head h of the step above (the step runs them in turn or in parallel). */
void mq_model_attention_head(float *out, float *att, const float *q, const float *kc,
                             const float *vc, int T, int maxT, int NH, int NKV, int hs, int h);

/* The one-region step's Linears, in mq_arch_linear_id's order, and each thread's memory: its
 * own residual stream x and normed x ln (C each: every thread computes them, so that no thread
 * waits for another to do it), its prepared inputs (Linear i's at prep_off), a byte per Linear
 * saying whether it prepared it this step, and its kernels' scratch: thread_stride bytes a
 * thread. Work is handed out in chunks from counters, one per Linear and one per layer's heads,
 * so that a thread on a busier core takes fewer: which thread computes an output never changes
 * its value (each output row and head is computed whole, in a fixed order, by one thread). */
typedef struct mq_step_plan {
    struct mq_step_item {
        mq_step_linear_t s;
        size_t prep_off;
        int chunk; /* rows a counter hands out at once */
    } * item;
    int n, n_counters;
    size_t prep_bytes, thread_stride;
    char *threads;
    /* counters (n_linear Linears, then each layer's heads) and the barrier's arrival counts
       (one per thread), each on a cache line of its own */
    struct mq_step_counter {
        _Alignas(64) _Atomic unsigned v;
    } * counters, *arrivals;
} mq_step_plan_t;

/* A thread's view inside the region. */
typedef struct mq_step_thread {
    int tid, nth;
    unsigned epoch;         /* barriers passed */
    float *x, *ln;          /* (C) its copy of the residual stream, and of the normed x */
    char *prep;             /* its prepared inputs */
    unsigned char *prepped; /* (n) 1 where it prepared Linear i's x this step */
    void *scratch;          /* its kernels' scratch */
} mq_step_thread_t;

/* Called first by every thread of the region. */
void mq_step_thread(mq_step_plan_t *P, int C, mq_step_thread_t *t);
/* Linear i's x, prepared by this thread for its own rows the first time it asks this step. */
void mq_step_prep(const mq_step_plan_t *P, int i, const float *x, mq_step_thread_t *t);
/* Output rows [o0, o1) of Linear i, by this thread, from x (prepared first). */
void mq_step_rows(const mq_step_plan_t *P, int i, const float *x, mq_step_thread_t *t, float *out,
                  int o0, int o1);
/* Takes the next chunk of Linear i's output rows and computes it into out: 1 with the chunk in
 * [o0, o1), 0 when every chunk is taken. */
int mq_step_chunk(const mq_step_plan_t *P, int i, const float *x, mq_step_thread_t *t, float *out,
                  int *o0, int *o1);
/* Takes the next of n items from counter k (k >= n_linear: a layer's heads): the item, or -1. */
int mq_step_take(const mq_step_plan_t *P, int k, int n);
/* Every thread waits here until all have arrived; what each wrote before is then visible to
 * all. Each thread announces its arrival on a cache line of its own and reads the others'
 * (one line transfer per pair, not a chain of read-modify-writes on one shared line), spinning,
 * and yielding now and then when it waits long (more threads than cores). OpenMP's own barrier
 * ends in a futex system call, which costs more than a MiniGPT Linear on a virtual machine. */
void mq_step_barrier(const mq_step_plan_t *P, mq_step_thread_t *t);

void mq_gpt2_embed(mq_gpt_t *m, const int *tokens, int B, int T, float *out);
int mq_gpt2_block(mq_gpt_t *m, int l, int B, int T, const float *residual, mq_error_t *err);
int mq_gpt2_head(mq_gpt_t *m, const float *residual, int N, mq_error_t *err);
void mq_gpt2_backward(mq_gpt_t *m);
int mq_gpt2_decode_step(mq_gpt_t *m, mq_gpt_kv_t *kv, int token, mq_error_t *err);
void mq_gpt2_decode_region(mq_gpt_t *m, mq_gpt_kv_t *kv, mq_step_plan_t *P, int token);
void mq_gpt2_cache_kv(mq_gpt_t *m, int l, int n, float *kc, float *vc);

void mq_llama_embed(mq_gpt_t *m, const int *tokens, int B, int T, float *out);
int mq_llama_block(mq_gpt_t *m, int l, int B, int T, const float *residual, mq_error_t *err);
int mq_llama_head(mq_gpt_t *m, const float *residual, int N, mq_error_t *err);
void mq_llama_backward(mq_gpt_t *m);
int mq_llama_decode_step(mq_gpt_t *m, mq_gpt_kv_t *kv, int token, mq_error_t *err);
void mq_llama_decode_region(mq_gpt_t *m, mq_gpt_kv_t *kv, mq_step_plan_t *P, int token);
void mq_llama_cache_kv(mq_gpt_t *m, int l, int n, float *kc, float *vc);

#endif
