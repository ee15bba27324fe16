/* miniquant: training MiniGPT (AdamW, warmup + cosine schedule, gradient clipping).
 *
 * Deterministic for a given seed and thread count: the batch of step s is drawn from a random
 * stream seeded by (seed, s) alone, so a run resumed from a checkpoint at step s continues
 * exactly as the uninterrupted run would have. */
#ifndef MINIQUANT_TRAIN_H
#define MINIQUANT_TRAIN_H

#include <stddef.h>
#include <stdint.h>

#include "miniquant/checkpoint.h"
#include "miniquant/error.h"
#include "miniquant/gguf.h"
#include "miniquant/model.h"
#include "miniquant/tokenizer.h"

typedef struct mq_train_opts {
    int batch_size;      /* B */
    int seq_len;         /* T, at most the model's context */
    int64_t steps;       /* total optimizer steps */
    float lr;            /* peak learning rate */
    float min_lr_frac;   /* the cosine decays to lr * min_lr_frac */
    int64_t warmup;      /* linear warmup steps */
    float weight_decay;  /* AdamW's decoupled decay (matrices only) */
    float grad_clip;     /* global gradient norm bound (0: none) */
    float beta1, beta2, eps;
    uint64_t seed;
    int64_t eval_every;  /* validation loss every N steps (0: only at the end) */
    int eval_windows;    /* validation windows of T tokens per evaluation */
    int64_t ckpt_every;  /* checkpoint every N steps (0: only at the end) */
    const char *ckpt_path; /* model file; NULL: no checkpoints */
    const mq_tokenizer_t *tok; /* embedded in checkpoints */
    int64_t stop_at;     /* stop (with a checkpoint) after this step although the schedule
                            spans steps; 0: run to the end. Training in installments. */
} mq_train_opts_t;

/* Fills o with miniquant's defaults for a preset ("tiny" or "default"). */
void mq_train_defaults(const char *preset, mq_train_opts_t *o);

/* The training curve: loss of every step, validation loss at evaluation steps. */
typedef struct mq_train_log {
    float *loss;       /* [n_steps] */
    float *lr;         /* [n_steps] */
    float *grad_norm;  /* [n_steps] */
    int64_t n_steps;
    int64_t *val_step; /* [n_val] step after which validation ran */
    float *val_loss;   /* [n_val] */
    int64_t n_val;
    double seconds;    /* wall time spent training, across resumes */
    double tokens_per_s; /* of this run (not counting resumed history) */
} mq_train_log_t;

void mq_train_log_free(mq_train_log_t *log);

/* The learning rate at step s (0-based). */
float mq_train_lr(const mq_train_opts_t *o, int64_t s);

/* Trains m (already initialised or loaded) from step start_step to o->steps on the train
 * stream, evaluating on the validation stream. log holds the history up to start_step on entry
 * (empty for a fresh run) and is extended. With ckpt_path, writes the model, its optimizer state
 * and the log every ckpt_every steps and at the end. */
int mq_train(mq_gpt_t *m, const int32_t *train, size_t n_train, const int32_t *val,
             size_t n_val, const mq_train_opts_t *o, int64_t start_step, mq_train_log_t *log,
             mq_error_t *err);

/* Mean loss over the first n_windows non-overlapping windows of T tokens of a stream. */
int mq_eval_loss(mq_gpt_t *m, const int32_t *tokens, size_t n, int B, int T, int n_windows,
                 float *loss, mq_error_t *err);

/* "<model>.opt", the checkpoint --resume continues from: the weights, the AdamW moments, the
 * step, the run's length and seed (info; its seconds are the log's), the architecture and
 * preset, and the log, in one file renamed into place at once. mq_train writes it before the
 * model file, so after a kill between the two the model file lags one checkpoint behind and
 * the state holds the last complete checkpoint. */
int mq_train_state_save(const char *model_path, const mq_gpt_t *m, const mq_ckpt_info_t *info,
                        const mq_train_log_t *log, mq_error_t *err);
/* Loads it into m, initialised with the run's configuration (mq_gpt_init): its weights and
 * moments become m's, info and log the run's. A state of another architecture or preset is
 * MQ_ERR_ARG; a missing file MQ_ERR_IO (mq_file_exists tells a run with no checkpoint yet). */
int mq_train_state_load(const char *model_path, mq_gpt_t *m, mq_ckpt_info_t *info,
                        mq_train_log_t *log, mq_error_t *err);
/* The same from a state file already read; name is used in messages. */
int mq_train_state_from_gguf(const mq_gguf_t *g, const char *name, mq_gpt_t *m,
                             mq_ckpt_info_t *info, mq_train_log_t *log, mq_error_t *err);

#endif
