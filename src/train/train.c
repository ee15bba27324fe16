#include "miniquant/train.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "miniquant/arch.h"
#include "miniquant/checkpoint.h"
#include "miniquant/progress.h"
#include "miniquant/rng.h"

void mq_train_defaults(const char *preset, mq_train_opts_t *o) {
    memset(o, 0, sizeof *o);
    int tiny = preset && (!strcmp(preset, "tiny") || !strcmp(preset, "llama-tiny"));
    o->batch_size = tiny ? 8 : 16;
    o->seq_len = tiny ? 64 : 128;
    o->steps = tiny ? 300 : 1600;
    o->lr = tiny ? 3e-3f : 2e-3f;
    o->min_lr_frac = 0.1f;
    o->warmup = tiny ? 20 : 100;
    o->weight_decay = 0.1f;
    o->grad_clip = 1.0f;
    o->beta1 = 0.9f;
    o->beta2 = 0.95f;
    o->eps = 1e-8f;
    o->seed = 1337;
    o->eval_every = tiny ? 100 : 200;
    o->eval_windows = tiny ? 32 : 128;
    o->ckpt_every = tiny ? 0 : 200;
}

void mq_train_log_free(mq_train_log_t *log) {
    free(log->loss);
    free(log->lr);
    free(log->grad_norm);
    free(log->val_step);
    free(log->val_loss);
    memset(log, 0, sizeof *log);
}

float mq_train_lr(const mq_train_opts_t *o, int64_t s) {
    if (s < o->warmup) return o->lr * (float)(s + 1) / (float)o->warmup;
    double span = (double)(o->steps - o->warmup);
    double frac = span > 0 ? (double)(s - o->warmup) / span : 1.0;
    if (frac > 1) frac = 1;
    double min_lr = o->lr * o->min_lr_frac;
    return (float)(min_lr + 0.5 * (1.0 + cos(M_PI * frac)) * (o->lr - min_lr));
}

/* The batch of step s: B windows of T+1 tokens at positions drawn from (seed, s). */
static void sample_batch(const int32_t *tokens, size_t n, int B, int T, uint64_t seed, int64_t s,
                         int *inputs, int *targets) {
    mq_rng_t rng;
    mq_rng_seed(&rng, seed ^ (0x9e3779b97f4a7c15ull * (uint64_t)(s + 1)));
    for (int b = 0; b < B; b++) {
        size_t start = (size_t)mq_rng_below(&rng, (uint64_t)(n - (size_t)T - 1));
        for (int t = 0; t < T; t++) {
            inputs[b * T + t] = tokens[start + (size_t)t];
            targets[b * T + t] = tokens[start + (size_t)t + 1];
        }
    }
}

int mq_eval_loss(mq_gpt_t *m, const int32_t *tokens, size_t n, int B, int T, int n_windows,
                 float *loss, mq_error_t *err) {
    if (n < (size_t)T + 1) return mq_error_set(err, MQ_ERR_ARG, "too few tokens to evaluate");
    size_t avail = (n - 1) / (size_t)T;
    if ((size_t)n_windows > avail) n_windows = (int)avail;
    int *inp = malloc((size_t)B * T * sizeof *inp), *tgt = malloc((size_t)B * T * sizeof *tgt);
    if (!inp || !tgt) {
        free(inp);
        free(tgt);
        return mq_error_set(err, MQ_ERR_NOMEM, "out of memory");
    }
    double sum = 0;
    int64_t count = 0;
    int rc = MQ_OK;
    for (int w0 = 0; w0 < n_windows && rc == MQ_OK; w0 += B) {
        int nb = n_windows - w0 < B ? n_windows - w0 : B;
        for (int b = 0; b < nb; b++)
            for (int t = 0; t < T; t++) {
                size_t at = (size_t)(w0 + b) * T + (size_t)t;
                inp[b * T + t] = tokens[at];
                tgt[b * T + t] = tokens[at + 1];
            }
        rc = mq_gpt_forward(m, inp, tgt, nb, T, err);
        for (int i = 0; rc == MQ_OK && i < nb * T; i++) sum += m->acts.losses[i];
        count += (int64_t)nb * T;
    }
    free(inp);
    free(tgt);
    if (rc == MQ_OK) *loss = (float)(sum / (double)count);
    return rc;
}

static int log_reserve(mq_train_log_t *log, int64_t steps) {
    float *a = realloc(log->loss, (size_t)steps * sizeof *a);
    if (a) log->loss = a;
    float *b = realloc(log->lr, (size_t)steps * sizeof *b);
    if (b) log->lr = b;
    float *c = realloc(log->grad_norm, (size_t)steps * sizeof *c);
    if (c) log->grad_norm = c;
    return a && b && c ? MQ_OK : MQ_ERR_NOMEM;
}

static int log_val(mq_train_log_t *log, int64_t step, float loss) {
    int64_t *s = realloc(log->val_step, (size_t)(log->n_val + 1) * sizeof *s);
    if (s) log->val_step = s;
    float *l = realloc(log->val_loss, (size_t)(log->n_val + 1) * sizeof *l);
    if (l) log->val_loss = l;
    if (!s || !l) return MQ_ERR_NOMEM;
    log->val_step[log->n_val] = step;
    log->val_loss[log->n_val] = loss;
    log->n_val++;
    return MQ_OK;
}

static int checkpoint(const mq_gpt_t *m, const mq_train_opts_t *o, int64_t step,
                      const mq_train_log_t *log, mq_error_t *err) {
    mq_ckpt_info_t info = {step, o->steps, o->seed, log->seconds};
    /* The state, weights included, is the checkpoint and goes first: its rename is the one
     * commit point. A kill before the model file follows leaves that file one checkpoint
     * behind, which --resume does not read. */
    int rc = mq_train_state_save(o->ckpt_path, m, &info, log, err);
    if (rc == MQ_OK) rc = mq_checkpoint_save(o->ckpt_path, m, o->tok, &info, err);
    return rc;
}

int mq_train(mq_gpt_t *m, const int32_t *train, size_t n_train, const int32_t *val,
             size_t n_val, const mq_train_opts_t *o, int64_t start_step, mq_train_log_t *log,
             mq_error_t *err) {
    const int B = o->batch_size, T = o->seq_len;
    if (B < 1 || T < 2 || T > m->cfg.n_ctx)
        return mq_error_set(err, MQ_ERR_ARG, "batch %d x sequence %d does not fit context %d", B,
                            T, m->cfg.n_ctx);
    if (n_train < (size_t)T + 2)
        return mq_error_set(err, MQ_ERR_ARG, "the training stream has only %zu tokens", n_train);
    if (o->steps < 1 || start_step < 0 || start_step > o->steps)
        return mq_error_set(err, MQ_ERR_ARG, "bad step range %lld..%lld", (long long)start_step,
                            (long long)o->steps);
    if (log->n_steps != start_step)
        return mq_error_set(err, MQ_ERR_ARG, "the log has %lld steps, resuming at %lld",
                            (long long)log->n_steps, (long long)start_step);
    for (size_t i = 0; i < n_train; i++)
        if (train[i] < 0 || train[i] >= m->cfg.vocab_size)
            return mq_error_set(err, MQ_ERR_ARG, "token %d at %zu is outside the vocabulary",
                                train[i], i);
    if (log_reserve(log, o->steps)) return mq_error_set(err, MQ_ERR_NOMEM, "out of memory");

    int *inputs = malloc((size_t)B * T * sizeof *inputs);
    int *targets = malloc((size_t)B * T * sizeof *targets);
    if (!inputs || !targets) {
        free(inputs);
        free(targets);
        return mq_error_set(err, MQ_ERR_NOMEM, "out of memory");
    }
    mq_progress_t pb;
    mq_progress_start(&pb, "train", o->steps);
    pb.done = start_step;
    double t0 = mq_now(), seconds0 = log->seconds;
    float val_loss = NAN;
    int rc = MQ_OK;
    int64_t end = o->stop_at > 0 && o->stop_at < o->steps ? o->stop_at : o->steps;
    /* resumed where nothing is left to train: the model file, which a kill may have left one
     * checkpoint behind its state, is written again from it */
    if (start_step >= end) {
        if (o->ckpt_path) rc = checkpoint(m, o, start_step, log, err);
        mq_progress_finish(&pb, "");
    }
    for (int64_t s = start_step; s < end && rc == MQ_OK; s++) {
        sample_batch(train, n_train, B, T, o->seed, s, inputs, targets);
        rc = mq_gpt_forward(m, inputs, targets, B, T, err);
        if (rc == MQ_OK) rc = mq_gpt_zero_grad(m, err);
        if (rc == MQ_OK) rc = mq_gpt_backward(m, err);
        if (rc) break;
        float norm = mq_gpt_clip_grad_norm(m, o->grad_clip);
        float lr = mq_train_lr(o, s);
        rc = mq_gpt_adamw_update(m, lr, o->beta1, o->beta2, o->eps, o->weight_decay, (int)(s + 1),
                                 err);
        if (rc) break;
        log->loss[s] = m->mean_loss;
        log->lr[s] = lr;
        log->grad_norm[s] = norm;
        log->n_steps = s + 1;
        log->seconds = seconds0 + (mq_now() - t0);

        /* validation at the end of the schedule; a checkpoint also where an installment stops */
        int final = s + 1 == o->steps, last = final || s + 1 == end;
        if (val && ((o->eval_every && (s + 1) % o->eval_every == 0) || final)) {
            rc = mq_eval_loss(m, val, n_val, B, T, o->eval_windows, &val_loss, err);
            if (rc == MQ_OK && log_val(log, s + 1, val_loss))
                rc = mq_error_set(err, MQ_ERR_NOMEM, "out of memory");
            if (rc) break;
        }
        if (o->ckpt_path && ((o->ckpt_every && (s + 1) % o->ckpt_every == 0) || last))
            if ((rc = checkpoint(m, o, s + 1, log, err))) break;

        double el = mq_now() - t0;
        log->tokens_per_s = (double)(s + 1 - start_step) * B * T / (el > 0 ? el : 1e-9);
        char extra[96];
        snprintf(extra, sizeof extra, " loss %.3f val %.3f lr %.2e %.0f tok/s", m->mean_loss,
                 val_loss, lr, log->tokens_per_s);
        mq_progress_update(&pb, s + 1, extra);
        if (last) mq_progress_finish(&pb, extra);
    }
    free(inputs);
    free(targets);
    return rc;
}

/* ---- the training state beside a model: "<model>.opt" ---- */

static void state_path(const char *model_path, char *buf, size_t n) {
    snprintf(buf, n, "%s.opt", model_path);
}

int mq_train_state_save(const char *model_path, const mq_gpt_t *m, const mq_ckpt_info_t *info,
                        const mq_train_log_t *log, mq_error_t *err) {
    int64_t step = info->step;
    if (!m->m_memory || !m->v_memory)
        return mq_error_set(err, MQ_ERR_ARG, "no optimizer state to save");
    char path[4200];
    state_path(model_path, path, sizeof path);
    mq_gguf_t *g = mq_gguf_new();
    if (!g) return mq_error_set(err, MQ_ERR_NOMEM, "out of memory");
    int64_t ne[1] = {(int64_t)m->num_params};
    int rc = mq_gguf_set_str(g, "general.architecture", "miniquant-train-state");
    rc |= mq_gguf_set_i64(g, "miniquant.train.step", step);
    rc |= mq_gguf_set_u64(g, "miniquant.train.num_params", m->num_params);
    rc |= mq_gguf_set_i64(g, "miniquant.train.total_steps", info->total_steps);
    rc |= mq_gguf_set_u64(g, "miniquant.train.seed", info->seed);
    rc |= mq_gguf_set_f64(g, "miniquant.train.seconds", log->seconds);
    rc |= mq_gguf_set_str(g, "miniquant.train.arch", mq_arch(m->cfg.arch)->name);
    rc |= mq_gguf_set_str(g, "miniquant.train.config", m->cfg.name);
    rc |= mq_gguf_set_arr(g, "miniquant.log.loss", MQ_GGUF_FLOAT32, log->loss, (uint64_t)step);
    rc |= mq_gguf_set_arr(g, "miniquant.log.lr", MQ_GGUF_FLOAT32, log->lr, (uint64_t)step);
    rc |= mq_gguf_set_arr(g, "miniquant.log.grad_norm", MQ_GGUF_FLOAT32, log->grad_norm,
                          (uint64_t)step);
    rc |= mq_gguf_set_arr(g, "miniquant.log.val_step", MQ_GGUF_INT64, log->val_step,
                          (uint64_t)log->n_val);
    rc |= mq_gguf_set_arr(g, "miniquant.log.val_loss", MQ_GGUF_FLOAT32, log->val_loss,
                          (uint64_t)log->n_val);
    if (rc) rc = mq_error_set(err, MQ_ERR_NOMEM, "out of memory");
    if (rc == MQ_OK)
        rc = mq_gguf_add_tensor(g, "weights", MQ_GGML_F32, 1, ne, m->params_memory, err);
    if (rc == MQ_OK) rc = mq_gguf_add_tensor(g, "adamw.m", MQ_GGML_F32, 1, ne, m->m_memory, err);
    if (rc == MQ_OK) rc = mq_gguf_add_tensor(g, "adamw.v", MQ_GGML_F32, 1, ne, m->v_memory, err);
    if (rc == MQ_OK) rc = mq_gguf_write(g, path, err);
    mq_gguf_free(g);
    return rc;
}

/* Copies a numeric array of the expected type and length out of g. */
static int get_array(const mq_gguf_t *g, const char *path, const char *key, int type,
                     size_t elem, uint64_t n, void **out, mq_error_t *err) {
    int t;
    const void *data;
    uint64_t len;
    int rc = mq_gguf_get_arr(g, key, &t, &data, &len, err);
    if (rc) return mq_error_prefix(err, "%s", path);
    if (t != type || len != n)
        return mq_error_set(err, MQ_ERR_FORMAT, "%s: %s has %llu entries of type %d, expected %llu",
                            path, key, (unsigned long long)len, t, (unsigned long long)n);
    *out = malloc(n ? n * elem : 1);
    if (!*out) return mq_error_set(err, MQ_ERR_NOMEM, "out of memory");
    if (n) memcpy(*out, data, n * elem);
    return MQ_OK;
}

/* The run's architecture and preset, as the state names them, against m's. */
static int same_config(const mq_gguf_t *g, const char *path, const mq_gpt_t *m,
                       mq_error_t *err) {
    mq_gguf_str_t arch, config;
    int rc = mq_gguf_get_str(g, "miniquant.train.arch", &arch, err);
    if (rc == MQ_OK) rc = mq_gguf_get_str(g, "miniquant.train.config", &config, err);
    if (rc) return mq_error_prefix(err, "%s", path);
    const char *want = mq_arch(m->cfg.arch)->name;
    if (strcmp(arch.ptr, want) != 0 || strcmp(config.ptr, m->cfg.name) != 0)
        return mq_error_set(err, MQ_ERR_ARG,
                            "%s: the state is of a %.32s model of configuration %.32s, not %s %s",
                            path, arch.ptr, config.ptr, want, m->cfg.name);
    return MQ_OK;
}

int mq_train_state_from_gguf(const mq_gguf_t *g, const char *path, mq_gpt_t *m,
                             mq_ckpt_info_t *info, mq_train_log_t *log, mq_error_t *err) {
    memset(log, 0, sizeof *log);
    memset(info, 0, sizeof *info);
    uint64_t np = 0;
    int64_t st = 0;
    int rc = mq_gguf_get_i64(g, "miniquant.train.step", &st, err);
    if (rc == MQ_OK) rc = mq_gguf_get_u64(g, "miniquant.train.num_params", &np, err);
    if (rc == MQ_OK) rc = mq_gguf_get_i64(g, "miniquant.train.total_steps", &info->total_steps, err);
    if (rc == MQ_OK) rc = mq_gguf_get_u64(g, "miniquant.train.seed", &info->seed, err);
    if (rc == MQ_OK) rc = mq_gguf_get_f64(g, "miniquant.train.seconds", &log->seconds, err);
    if (rc) mq_error_prefix(err, "%s", path);
    if (rc == MQ_OK) rc = same_config(g, path, m, err);
    if (rc == MQ_OK && np != m->num_params)
        rc = mq_error_set(err, MQ_ERR_FORMAT,
                          "%s: optimizer state for %llu parameters, the model has %zu", path,
                          (unsigned long long)np, m->num_params);
    else if (rc == MQ_OK && (st < 0 || st > (int64_t)1 << 40 || info->total_steps < st))
        rc = mq_error_set(err, MQ_ERR_FORMAT, "%s: bad step %lld of %lld", path, (long long)st,
                          (long long)info->total_steps);
    const mq_gguf_tensor_t *t[3] = {NULL, NULL, NULL};
    static const char *const names[3] = {"weights", "adamw.m", "adamw.v"};
    for (int i = 0; i < 3 && rc == MQ_OK; i++) {
        t[i] = mq_gguf_find_tensor(g, names[i]);
        if (!t[i] || t[i]->type != MQ_GGML_F32 || t[i]->nbytes != np * sizeof(float))
            rc = mq_error_set(err, MQ_ERR_FORMAT, "%s: tensor %s missing or of the wrong size",
                              path, names[i]);
    }
    for (int i = 0; i < 3 && rc == MQ_OK; i++) {
        const float *v = t[i]->data;
        for (uint64_t k = 0; k < np && rc == MQ_OK; k++)
            if (!isfinite(v[k]))
                rc = mq_error_set(err, MQ_ERR_FORMAT, "%s: tensor %s element %llu is %g, not a "
                                  "finite number", path, names[i], (unsigned long long)k,
                                  (double)v[k]);
    }
    if (rc == MQ_OK) {
        int64_t nval = -1;
        int t;
        const void *d;
        uint64_t len;
        if (mq_gguf_get_arr(g, "miniquant.log.val_step", &t, &d, &len, NULL) == MQ_OK)
            nval = (int64_t)len;
        rc = get_array(g, path, "miniquant.log.loss", MQ_GGUF_FLOAT32, 4, (uint64_t)st,
                       (void **)&log->loss, err);
        if (rc == MQ_OK)
            rc = get_array(g, path, "miniquant.log.lr", MQ_GGUF_FLOAT32, 4, (uint64_t)st,
                           (void **)&log->lr, err);
        if (rc == MQ_OK)
            rc = get_array(g, path, "miniquant.log.grad_norm", MQ_GGUF_FLOAT32, 4, (uint64_t)st,
                           (void **)&log->grad_norm, err);
        if (rc == MQ_OK && nval < 0)
            rc = mq_error_set(err, MQ_ERR_FORMAT, "%s: miniquant.log.val_step missing", path);
        if (rc == MQ_OK)
            rc = get_array(g, path, "miniquant.log.val_step", MQ_GGUF_INT64, 8, (uint64_t)nval,
                           (void **)&log->val_step, err);
        if (rc == MQ_OK)
            rc = get_array(g, path, "miniquant.log.val_loss", MQ_GGUF_FLOAT32, 4, (uint64_t)nval,
                           (void **)&log->val_loss, err);
        log->n_steps = st;
        log->n_val = nval;
    }
    if (rc == MQ_OK) {
        if (!m->m_memory) m->m_memory = calloc(m->num_params, sizeof(float));
        if (!m->v_memory) m->v_memory = calloc(m->num_params, sizeof(float));
        if (!m->m_memory || !m->v_memory) rc = mq_error_set(err, MQ_ERR_NOMEM, "out of memory");
    }
    if (rc == MQ_OK) {
        memcpy(m->params_memory, t[0]->data, t[0]->nbytes);
        memcpy(m->m_memory, t[1]->data, t[1]->nbytes);
        memcpy(m->v_memory, t[2]->data, t[2]->nbytes);
        info->step = st;
        info->train_seconds = log->seconds;
    } else {
        mq_train_log_free(log);
    }
    return rc;
}

int mq_train_state_load(const char *model_path, mq_gpt_t *m, mq_ckpt_info_t *info,
                        mq_train_log_t *log, mq_error_t *err) {
    char path[4200];
    state_path(model_path, path, sizeof path);
    memset(log, 0, sizeof *log);
    mq_gguf_t *g;
    int rc = mq_gguf_read(path, &g, err);
    if (rc) return rc;
    rc = mq_train_state_from_gguf(g, path, m, info, log, err);
    mq_gguf_free(g);
    return rc;
}
