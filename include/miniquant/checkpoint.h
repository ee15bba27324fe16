/* miniquant: MiniGPT checkpoints as GGUF files that llama.cpp's gpt2 architecture reads.
 *
 * The file holds general.architecture = "gpt2", the gpt2.* hyperparameters, the tensors under
 * llama.cpp's names (token_embd, position_embd, blk.N.attn_norm / attn_qkv / attn_output /
 * ffn_norm / ffn_up / ffn_down, output_norm, output) and the tokenizer. Training state
 * (AdamW moments, step) lives beside it in "<model>.opt" so that the model file stays a plain
 * llama.cpp model. */
#ifndef MINIQUANT_CHECKPOINT_H
#define MINIQUANT_CHECKPOINT_H

#include <stdint.h>

#include "miniquant/error.h"
#include "miniquant/gguf.h"
#include "miniquant/model.h"
#include "miniquant/tokenizer.h"

/* What a checkpoint records about the run that made it (miniquant.train.* keys). */
typedef struct mq_ckpt_info {
    int64_t step;        /* optimizer steps done */
    int64_t total_steps; /* steps the run was asked for */
    uint64_t seed;
    double train_seconds; /* wall time spent training so far */
} mq_ckpt_info_t;

/* Builds the GGUF of a model: metadata, tokenizer (when tok is non-NULL) and F32 tensors. */
int mq_gpt_to_gguf(const mq_gpt_t *m, const mq_tokenizer_t *tok, const mq_ckpt_info_t *info,
                   mq_gguf_t *g, mq_error_t *err);
/* Reads the config of a gpt2 GGUF (hyperparameters + tensor shapes checked). */
int mq_gpt_config_from_gguf(const mq_gguf_t *g, const char *name, mq_gpt_config_t *cfg,
                            mq_error_t *err);
/* Initialises m from a gpt2 GGUF: a checkpoint, or a quantized file of any type miniquant reads
 * (format.h), whose values become m's FP32 weights; a tensor of a type miniquant does not read
 * is MQ_ERR_UNSUPPORTED naming it and its type. Every tensor is checked before anything is
 * allocated; the file is then read by the one reader of model files (export.h:
 * mq_qmodel_from_gguf) and its values copied into m. name is used in messages. */
int mq_gpt_from_gguf(const mq_gguf_t *g, const char *name, mq_gpt_t *m, mq_error_t *err);

/* Writes the model file (crash-safely). */
int mq_checkpoint_save(const char *path, const mq_gpt_t *m, const mq_tokenizer_t *tok,
                       const mq_ckpt_info_t *info, mq_error_t *err);
/* Loads a model file; tok and info may be NULL. */
int mq_checkpoint_load(const char *path, mq_gpt_t *m, mq_tokenizer_t **tok, mq_ckpt_info_t *info,
                       mq_error_t *err);

#endif
