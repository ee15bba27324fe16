#include "miniquant/checkpoint.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "io_internal.h"
#include "miniquant/arch.h"
#include "miniquant/export.h"
#include "miniquant/format.h"
#include "miniquant/fp16.h"

/* "<arch>.<key>" into buf. */
static const char *hkey(const mq_arch_t *a, const char *key, char *buf, size_t n) {
    snprintf(buf, n, "%s.%s", a->name, key);
    return buf;
}

int mq_gpt_gguf_metadata(const mq_gpt_config_t *c, const mq_tokenizer_t *tok,
                         const mq_ckpt_info_t *info, mq_gguf_t *g, mq_error_t *err) {
    const mq_arch_t *a = mq_arch(c->arch);
    char gname[64], k[96];
    mq_arch_model_name(c, gname, sizeof gname);
    int rc = 0;
    rc |= mq_gguf_set_str(g, "general.architecture", a->name);
    rc |= mq_gguf_set_str(g, "general.name", gname);
    rc |= mq_gguf_set_u32(g, "general.file_type", 0); /* all F32 */
    rc |= mq_gguf_set_u32(g, hkey(a, "context_length", k, sizeof k), (uint32_t)c->n_ctx);
    rc |= mq_gguf_set_u32(g, hkey(a, "embedding_length", k, sizeof k), (uint32_t)c->n_embd);
    rc |= mq_gguf_set_u32(g, hkey(a, "feed_forward_length", k, sizeof k), (uint32_t)c->n_ff);
    rc |= mq_gguf_set_u32(g, hkey(a, "block_count", k, sizeof k), (uint32_t)c->n_layer);
    rc |= mq_gguf_set_u32(g, hkey(a, "attention.head_count", k, sizeof k), (uint32_t)c->n_head);
    if (c->arch != MQ_ARCH_GPT2)
        rc |= mq_gguf_set_u32(g, hkey(a, "attention.head_count_kv", k, sizeof k),
                              (uint32_t)c->n_head_kv);
    rc |= mq_gguf_set_f32(g, hkey(a, a->eps_key, k, sizeof k), c->norm_eps);
    if (a->rope) {
        rc |= mq_gguf_set_f32(g, hkey(a, "rope.freq_base", k, sizeof k), c->rope_base);
        rc |= mq_gguf_set_u32(g, hkey(a, "rope.dimension_count", k, sizeof k), (uint32_t)c->n_rot);
    }
    rc |= mq_gguf_set_str(g, "miniquant.config", c->name);
    rc |= mq_gguf_set_str(g, "miniquant.version", MQ_VERSION);
    if (info) {
        rc |= mq_gguf_set_i64(g, "miniquant.train.step", info->step);
        rc |= mq_gguf_set_i64(g, "miniquant.train.total_steps", info->total_steps);
        rc |= mq_gguf_set_u64(g, "miniquant.train.seed", info->seed);
        rc |= mq_gguf_set_f64(g, "miniquant.train.seconds", info->train_seconds);
    }
    if (rc) return mq_error_set(err, MQ_ERR_NOMEM, "out of memory building GGUF metadata");
    if (tok && (rc = mq_tokenizer_to_gguf(tok, g, err))) return rc;
    return MQ_OK;
}

int mq_gpt_to_gguf(const mq_gpt_t *m, const mq_tokenizer_t *tok, const mq_ckpt_info_t *info,
                   mq_gguf_t *g, mq_error_t *err) {
    const mq_gpt_config_t *c = &m->cfg;
    const mq_arch_t *a = mq_arch(c->arch);
    int rc = mq_gpt_gguf_metadata(c, tok, info, g, err);
    if (rc) return rc;
    float *const *params = (float *const *)&m->params;
    for (int p = 0; p < MQ_NUM_PARAMS; p++) {
        if (!a->tensor[p].gguf) continue;
        int64_t rows, cols;
        mq_arch_param_shape(c, p, &rows, &cols);
        int nl = a->tensor[p].stacked ? c->n_layer : 1;
        size_t slice = (size_t)(rows ? rows : 1) * (size_t)cols;
        for (int l = 0; l < nl; l++) {
            char name[64];
            mq_arch_tensor_name(c, p, l, name, sizeof name);
            /* one policy with the loader's: no tensor holds a value that is not finite */
            const float *v = params[p] + (size_t)l * slice;
            for (size_t k = 0; k < slice; k++)
                if (!isfinite(v[k]))
                    return mq_error_set(err, MQ_ERR_ARG,
                                        "%s: tensor %s element (%zu, %zu) is %g, not a finite "
                                        "number",
                                        m->source[0] ? m->source : "the model", name,
                                        k / (size_t)cols, k % (size_t)cols, (double)v[k]);
            int64_t ne[2] = {cols, rows};
            rc = mq_gguf_add_tensor(g, name, MQ_GGML_F32, rows ? 2 : 1, ne,
                                    params[p] + (size_t)l * slice, err);
            if (rc) return rc;
        }
    }
    return MQ_OK;
}

static int get_hparam(const mq_gguf_t *g, const char *name, const char *key, int *out,
                      mq_error_t *err) {
    uint32_t v;
    int rc = mq_gguf_get_u32(g, key, &v, err);
    if (rc) return mq_error_prefix(err, "%s", name);
    if (v == 0 || v > (1u << 24))
        return mq_error_set(err, MQ_ERR_FORMAT, "%s: %s = %u is out of range", name, key, v);
    *out = (int)v;
    return MQ_OK;
}

int mq_gpt_config_from_gguf(const mq_gguf_t *g, const char *name, mq_gpt_config_t *cfg,
                            mq_error_t *err) {
    memset(cfg, 0, sizeof *cfg);
    mq_gguf_str_t arch;
    int rc = mq_gguf_get_str(g, "general.architecture", &arch, err);
    if (rc) return mq_error_prefix(err, "%s", name);
    const mq_arch_t *a = mq_arch_by_name(arch.ptr);
    if (!a)
        return mq_error_set(err, MQ_ERR_UNSUPPORTED,
                            "%s: architecture '%.64s' is not supported (miniquant reads %s)", name,
                            arch.ptr, mq_arch_names());
    cfg->arch = (int)(a - mq_arch(0));
    char k[96];
    if ((rc = get_hparam(g, name, hkey(a, "context_length", k, sizeof k), &cfg->n_ctx, err)) ||
        (rc = get_hparam(g, name, hkey(a, "embedding_length", k, sizeof k), &cfg->n_embd, err)) ||
        (rc = get_hparam(g, name, hkey(a, "feed_forward_length", k, sizeof k), &cfg->n_ff, err)) ||
        (rc = get_hparam(g, name, hkey(a, "block_count", k, sizeof k), &cfg->n_layer, err)) ||
        (rc = get_hparam(g, name, hkey(a, "attention.head_count", k, sizeof k), &cfg->n_head, err)))
        return rc;
    if (cfg->arch != MQ_ARCH_GPT2) {
        /* optional keys take llama.cpp's defaults: as many KV heads as heads, the head size
         * rotated, base 10000 */
        hkey(a, "attention.head_count_kv", k, sizeof k);
        if (mq_gguf_find_key(g, k) >= 0 && (rc = get_hparam(g, name, k, &cfg->n_head_kv, err)))
            return rc;
        hkey(a, "rope.dimension_count", k, sizeof k);
        if (mq_gguf_find_key(g, k) >= 0 && (rc = get_hparam(g, name, k, &cfg->n_rot, err)))
            return rc;
        hkey(a, "rope.freq_base", k, sizeof k);
        if (mq_gguf_find_key(g, k) >= 0 && (rc = mq_gguf_get_f32(g, k, &cfg->rope_base, err)))
            return mq_error_prefix(err, "%s", name);
        if ((rc = mq_gguf_get_f32(g, hkey(a, a->eps_key, k, sizeof k), &cfg->norm_eps, err)))
            return mq_error_prefix(err, "%s", name);
    } else {
        float eps;
        if (mq_gguf_get_f32(g, hkey(a, a->eps_key, k, sizeof k), &eps, NULL) == MQ_OK &&
            (eps < 0.99e-5f || eps > 1.01e-5f))
            return mq_error_set(err, MQ_ERR_UNSUPPORTED,
                                "%s: layer_norm_epsilon %g is not the 1e-5 MiniGPT uses", name,
                                eps);
    }
    const mq_gguf_tensor_t *wte = mq_gguf_find_tensor(g, "token_embd.weight");
    if (!wte || wte->n_dims != 2 || wte->ne[0] != cfg->n_embd || wte->ne[1] < 1 ||
        wte->ne[1] > (1 << 24))
        return mq_error_set(err, MQ_ERR_FORMAT,
                            "%s: tensor token_embd.weight is missing or not (%d x vocab)", name,
                            cfg->n_embd);
    cfg->vocab_size = (int)wte->ne[1];
    mq_gguf_str_t cname;
    if (mq_gguf_get_str(g, "miniquant.config", &cname, NULL) == MQ_OK)
        snprintf(cfg->name, sizeof cfg->name, "%s", cname.ptr);
    else
        snprintf(cfg->name, sizeof cfg->name, "custom");
    /* a configuration no model can have is a malformed file, not a bad argument */
    if (mq_gpt_config_check(cfg, err)) {
        mq_error_prefix(err, "%s", name);
        if (err) err->code = MQ_ERR_FORMAT;
        return MQ_ERR_FORMAT;
    }
    mq_gpt_config_defaults(cfg);
    /* The hyperparameters decide how much a loader allocates; a few bytes of metadata must not
     * make it allocate gigabytes. No tensor type miniquant reads stores a weight in less than
     * 2 bits, so the file's tensor data bounds the parameter count. (The bounds of
     * mq_gpt_config_check keep this sum far from overflowing.) */
    size_t n_params = mq_gpt_num_params(cfg), data_bytes = 0;
    for (int64_t i = 0; i < mq_gguf_n_tensors(g); i++)
        data_bytes += mq_gguf_tensor(g, i)->nbytes;
    if (n_params / 4 > data_bytes)
        return mq_error_set(err, MQ_ERR_FORMAT,
                            "%s: the hyperparameters describe %zu parameters, more than the %zu "
                            "bytes of tensor data in the file can hold",
                            name, n_params, data_bytes);
    return MQ_OK;
}

/* The tensor of parameter p, layer l, checked against the config: missing, of a type miniquant
 * does not read, or of another shape is an error. (The shape of packed codes, whose ne[0]
 * counts bytes, is the model loader's to check, with their scales.) */
static int param_tensor(const mq_gguf_t *g, const char *name, const mq_gpt_config_t *cfg, int p,
                        int l, const mq_gguf_tensor_t **out, mq_error_t *err) {
    int64_t rows, cols;
    mq_arch_param_shape(cfg, p, &rows, &cols);
    char tname[64];
    const mq_gguf_tensor_t *t = mq_io_param_tensor(g, cfg, p, l, tname, sizeof tname);
    if (!t) return mq_error_set(err, MQ_ERR_FORMAT, "%s: tensor %s is missing", name, tname);
    const mq_format_t *f = mq_format_of_ggml_type(t->type);
    if (!f) return mq_format_refuse_type(err, name, tname, t->type);
    if (!f->side_scales &&
        (t->n_dims != (rows ? 2 : 1) || t->ne[0] != cols || (rows && t->ne[1] != rows)))
        return mq_error_set(err, MQ_ERR_FORMAT,
                            "%s: tensor %s has shape [%lld, %lld], expected [%lld, %lld]", name,
                            tname, (long long)t->ne[0], (long long)(t->n_dims > 1 ? t->ne[1] : 1),
                            (long long)cols, (long long)(rows ? rows : 1));
    *out = t;
    return MQ_OK;
}

int mq_gpt_from_gguf(const mq_gguf_t *g, const char *name, mq_gpt_t *m, mq_error_t *err) {
    mq_gpt_config_t cfg;
    const mq_gguf_tensor_t *t;
    int rc = mq_gpt_config_from_gguf(g, name, &cfg, err);
    if (rc) return rc;
    /* every tensor checked before anything is allocated */
    const mq_arch_t *a = mq_arch(cfg.arch);
    for (int p = 0; p < MQ_NUM_PARAMS; p++)
        for (int l = 0; a->tensor[p].gguf && l < (a->tensor[p].stacked ? cfg.n_layer : 1); l++)
            if ((rc = param_tensor(g, name, &cfg, p, l, &t, err))) return rc;
    /* then the one reader of model files reads it, and its values become the FP32 model */
    mq_qmodel_t q;
    if ((rc = mq_qmodel_from_gguf_borrowed(g, name, &q, err))) return rc;
    rc = mq_qmodel_dequantize(&q, m, err);
    mq_qmodel_free(&q);
    if (rc == MQ_OK) snprintf(m->source, sizeof m->source, "%s", name);
    return rc;
}

int mq_checkpoint_save(const char *path, const mq_gpt_t *m, const mq_tokenizer_t *tok,
                       const mq_ckpt_info_t *info, mq_error_t *err) {
    mq_gguf_t *g = mq_gguf_new();
    if (!g) return mq_error_set(err, MQ_ERR_NOMEM, "out of memory");
    int rc = mq_gpt_to_gguf(m, tok, info, g, err);
    if (rc) mq_error_prefix(err, "%s: not written", path);
    if (rc == MQ_OK) rc = mq_gguf_write(g, path, err);
    mq_gguf_free(g);
    return rc;
}

int mq_checkpoint_load(const char *path, mq_gpt_t *m, mq_tokenizer_t **tok, mq_ckpt_info_t *info,
                       mq_error_t *err) {
    mq_gguf_t *g;
    int rc = mq_gguf_read(path, &g, err);
    if (rc) return rc;
    rc = mq_gpt_from_gguf(g, path, m, err);
    if (rc == MQ_OK && tok) {
        rc = mq_tokenizer_from_gguf(g, path, tok, err);
        if (rc == MQ_OK && mq_tokenizer_n_vocab(*tok) != m->cfg.vocab_size) {
            rc = mq_error_set(err, MQ_ERR_FORMAT,
                              "%s: tokenizer has %d tokens but the model's vocabulary is %d", path,
                              mq_tokenizer_n_vocab(*tok), m->cfg.vocab_size);
            mq_tokenizer_free(*tok);
        }
        if (rc) {
            *tok = NULL;
            mq_gpt_free(m);
        }
    }
    if (rc == MQ_OK && info) {
        memset(info, 0, sizeof *info);
        mq_gguf_get_i64(g, "miniquant.train.step", &info->step, NULL);
        mq_gguf_get_i64(g, "miniquant.train.total_steps", &info->total_steps, NULL);
        mq_gguf_get_u64(g, "miniquant.train.seed", &info->seed, NULL);
        mq_gguf_get_f64(g, "miniquant.train.seconds", &info->train_seconds, NULL);
    }
    mq_gguf_free(g);
    return rc;
}
