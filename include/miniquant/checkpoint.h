/* miniquant: model checkpoints as GGUF files that llama.cpp reads (its gpt2 and llama
 * architectures).
 *
 * The file holds general.architecture, the architecture's hyperparameters, the tensors under
 * llama.cpp's names (arch.h: token_embd, blk.N.attn_norm, attn_qkv or attn_q / attn_k /
 * attn_v, attn_output, ffn_norm, ffn_gate, ffn_up, ffn_down, output_norm, output ...) and the
 * tokenizer. The training state (a copy of the weights, the AdamW moments, the step: train.h)
 * lives beside it in "<model>.opt", so that the model file stays a plain llama.cpp model. */
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

/* A model file's metadata (architecture, hyperparameters, miniquant.* keys, info when
 * non-NULL) and tokenizer (when non-NULL), without tensors. */
int mq_gpt_gguf_metadata(const mq_gpt_config_t *cfg, const mq_tokenizer_t *tok,
                         const mq_ckpt_info_t *info, mq_gguf_t *g, mq_error_t *err);
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

/* Synthetic models: a real model's shape with random weights, written tensor by tensor so that
 * a model larger than memory can be made (peak memory about one tensor's rows in flight).
 * Matrices are N(0, 1/in) (the embedding rows N(0, 1)), so that activations and logits keep a
 * spread through the layers; norm weights are 1, biases 0. Deterministic for a seed. */
typedef struct mq_synth_shape {
    const char *name;
    mq_gpt_config_t cfg; /* vocab_size is the tokenizer's when one is given */
    const char *what;
} mq_synth_shape_t;
/* The shapes: tinyllama-1.1b, gpt2-small (NULL-terminated by name). */
const mq_synth_shape_t *mq_synth_shapes(void);
/* Writes a random model of cfg with tokenizer tok (its vocabulary cfg->vocab_size) to path,
 * F32, crash-safely; shows a progress bar. */
int mq_synth_write(const char *path, const mq_gpt_config_t *cfg, const mq_tokenizer_t *tok,
                   uint64_t seed, mq_error_t *err);
/* A SentencePiece vocabulary of n tokens (n >= 300): <unk>, <s>, </s>, the 256 byte tokens,
 * then single characters, U+2581 + character, and strings of lowercase letters, for a synthetic
 * model when no real tokenizer is given. */
int mq_synth_vocabulary(int n, mq_tokenizer_t **out, mq_error_t *err);

/* Writes the model file (crash-safely). */
int mq_checkpoint_save(const char *path, const mq_gpt_t *m, const mq_tokenizer_t *tok,
                       const mq_ckpt_info_t *info, mq_error_t *err);
/* Loads a model file; tok and info may be NULL. */
int mq_checkpoint_load(const char *path, mq_gpt_t *m, mq_tokenizer_t **tok, mq_ckpt_info_t *info,
                       mq_error_t *err);

#endif
