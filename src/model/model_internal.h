/* miniquant: what the model module's files share (private to src/model): each architecture's
 * forward, backward and decoding step (named by its row in arch.c), and the path every Linear
 * of a forward pass takes. */
#ifndef MINIQUANT_MODEL_INTERNAL_H
#define MINIQUANT_MODEL_INTERNAL_H

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

void mq_gpt2_embed(mq_gpt_t *m, const int *tokens, int B, int T, float *out);
int mq_gpt2_block(mq_gpt_t *m, int l, int B, int T, const float *residual, mq_error_t *err);
int mq_gpt2_head(mq_gpt_t *m, const float *residual, int N, mq_error_t *err);
void mq_gpt2_backward(mq_gpt_t *m);
int mq_gpt2_decode_step(mq_gpt_t *m, mq_gpt_kv_t *kv, int token, mq_error_t *err);

void mq_llama_embed(mq_gpt_t *m, const int *tokens, int B, int T, float *out);
int mq_llama_block(mq_gpt_t *m, int l, int B, int T, const float *residual, mq_error_t *err);
int mq_llama_head(mq_gpt_t *m, const float *residual, int N, mq_error_t *err);
void mq_llama_backward(mq_gpt_t *m);
int mq_llama_decode_step(mq_gpt_t *m, mq_gpt_kv_t *kv, int token, mq_error_t *err);

#endif
