/* miniquant: quantizing a model that need not fit in memory (export.h: mq_export_stream).
 *
 * The FP32 checkpoint is mapped, not read; the output is declared up front (every tensor's
 * type and shape follow from the scheme) and streamed. Between them one layer at a time is in
 * memory as a one-layer model: its weights read from the mapping, its Linears quantized in
 * forward order by gptq.h's mq_gptq_stream_block on the calibration windows' residual stream X,
 * which then moves on to the next layer. Peak memory: one layer's weights (FP32 and quantized),
 * X (windows x T x C), one Linear's Hessian and the activations of a batch of windows; the
 * output Linear's FP32 weight at the end. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "io_internal.h"
#include "miniquant/arch.h"
#include "miniquant/checkpoint.h"
#include "miniquant/export.h"
#include "miniquant/fp16.h"
#include "miniquant/gptq.h"
#include "miniquant/progress.h"

typedef struct stream_job {
    const char *in;
    const mq_gguf_t *g;
    mq_gpt_config_t cfg;
    const mq_arch_t *arch;
    const mq_scheme_t *s;
    mq_gguf_t *out;
    mq_gguf_stream_t *st;
} stream_job_t;

/* Parameter p of layer l from the file into dst (its slice's values). */
static int read_param(stream_job_t *j, int p, int l, float *dst, mq_error_t *err) {
    char name[64];
    int64_t rows, cols;
    mq_arch_param_shape(&j->cfg, p, &rows, &cols);
    const mq_gguf_tensor_t *t = mq_io_param_tensor(j->g, &j->cfg, p, l, name, sizeof name);
    if (!t) return mq_error_set(err, MQ_ERR_FORMAT, "%s: tensor %s is missing", j->in, name);
    int ok = rows ? t->n_dims == 2 && t->ne[0] == cols && t->ne[1] == rows
                  : t->n_dims == 1 && t->ne[0] == cols;
    if (!ok)
        return mq_error_set(err, MQ_ERR_FORMAT, "%s: tensor %s is not [%lld, %lld]", j->in, name,
                            (long long)cols, (long long)(rows ? rows : 1));
    int rc = mq_io_read_floats(j->in, t, 0, dst, (size_t)(rows ? rows : 1) * (size_t)cols, err);
    mq_gguf_release_tensor(j->g, t); /* read once: its pages need not stay resident */
    return rc;
}

/* Declares the output's tensors in the order they are streamed: the embeddings, each layer's
 * parameters in the architecture's order (a side-scale format's scales after its weight), the
 * final norm and the output Linear. *ftype: llama.cpp's file type of the Linears' formats. */
static int declare(stream_job_t *j, uint32_t *ftype, mq_error_t *err) {
    const mq_gpt_config_t *c = &j->cfg;
    const mq_format_t *own = mq_format_by_name(j->s->family->formats[0]);
    int ft = -1, rc = MQ_OK;
    for (int pass = 0; pass < 3 && rc == MQ_OK; pass++) {
        int nl = pass == 1 ? c->n_layer : 1;
        for (int l = 0; l < nl && rc == MQ_OK; l++) {
            for (int p = 0; p < MQ_NUM_PARAMS && rc == MQ_OK; p++) {
                const mq_arch_tensor_t *t = &j->arch->tensor[p];
                int embedding = p == MQ_P_WTE || p == MQ_P_WPE;
                /* pass 0: embeddings; 1: the layers; 2: the rest */
                if (!t->gguf || (pass == 0) != embedding || (pass == 1) != t->stacked) continue;
                char name[64];
                int64_t rows, cols;
                mq_arch_tensor_name(c, p, l, name, sizeof name);
                mq_arch_param_shape(c, p, &rows, &cols);
                int type = MQ_GGML_F32;
                if (embedding && j->s->family->embeddings_f16) type = MQ_GGML_F16;
                int64_t ne[2] = {cols, rows};
                if (mq_arch_is_linear_weight(c, p)) {
                    const mq_format_t *f = mq_format_for(j->s, (int)cols, err);
                    if (!f) return mq_error_prefix(err, "%s", name);
                    type = f->ggml_type;
                    ne[0] = f->ne0(j->s, (int)cols);
                    if (f->llama_ftype == MQ_FTYPE_GUESSED)
                        ft = -2;
                    else if (ft != -2 && (ft < 0 || f == own))
                        ft = f->llama_ftype;
                    rc = mq_gguf_declare_tensor(j->out, name, type, 2, ne, err);
                    if (rc == MQ_OK && f->side_scales) {
                        char sname[80], *dot = strstr(name, ".weight");
                        if (dot) *dot = '\0';
                        snprintf(sname, sizeof sname, "%s.scales", name);
                        int64_t ns = (int64_t)mq_scheme_n_scales(j->s, (int)rows, (int)cols);
                        rc = mq_gguf_declare_tensor(j->out, sname, MQ_GGML_F16, 1, &ns, err);
                    }
                    continue;
                }
                rc = mq_gguf_declare_tensor(j->out, name, type, rows ? 2 : 1, ne, err);
            }
        }
    }
    *ftype = ft == -2 ? MQ_FTYPE_GUESSED : ft < 0 ? MQ_FTYPE_ALL_F32 : (uint32_t)ft;
    return rc;
}

/* A quantized weight's bytes (and side scales) into the stream. */
static int put_weight(stream_job_t *j, const mq_qweight_t *w, mq_error_t *err) {
    int rc = mq_gguf_stream_write(j->st, w->data, (size_t)w->rows * w->row_bytes, err);
    if (rc == MQ_OK && w->format->side_scales)
        rc = mq_gguf_stream_write(j->st, w->scales, w->n_scales * sizeof(mq_fp16_t), err);
    return rc;
}

/* n floats into the stream as F32, or F16 when half. */
static int put_floats(stream_job_t *j, const float *x, size_t n, int half, mq_error_t *err) {
    if (!half) return mq_gguf_stream_write(j->st, x, n * sizeof *x, err);
    mq_fp16_t buf[4096];
    int rc = MQ_OK;
    for (size_t i = 0; i < n && rc == MQ_OK; i += 4096) {
        size_t k = n - i < 4096 ? n - i : 4096;
        mq_fp32_to_fp16_row(x + i, buf, k);
        rc = mq_gguf_stream_write(j->st, buf, k * sizeof *buf, err);
    }
    return rc;
}

int mq_export_stream(const char *in, const char *out, const mq_scheme_t *s, const int32_t *calib,
                     size_t n_calib, int calib_ctx, const mq_gptq_opts_t *opts, mq_error_t *err) {
    stream_job_t j = {.in = in, .s = s};
    int calibrated = s->gptq || s->imat;
    if (calibrated && (!calib || !n_calib))
        return mq_error_set(err, MQ_ERR_ARG, "scheme %s needs calibration tokens", s->name);
    mq_gguf_t *g;
    int rc = mq_gguf_read(in, &g, err);
    if (rc) return rc;
    j.g = g;
    mq_tokenizer_t *tok = NULL;
    mq_gpt_t m1 = {0};
    mq_qmodel_t q1 = {0};
    float *X = NULL, *wte = NULL, *W = NULL;
    int *inputs = NULL;
    mq_gptq_opts_t o;
    if (opts)
        o = *opts;
    else
        mq_gptq_opts_for(s, &o);
    if ((rc = mq_gpt_config_from_gguf(g, in, &j.cfg, err)) ||
        (rc = mq_tokenizer_from_gguf(g, in, &tok, err)))
        goto done;
    j.arch = mq_arch(j.cfg.arch);
    const mq_gpt_config_t *c = &j.cfg;
    int C = c->n_embd, V = c->vocab_size;
    int T = calib_ctx > 0 && calib_ctx < c->n_ctx ? calib_ctx : c->n_ctx;
    if (n_calib && (size_t)T > n_calib) T = (int)n_calib;
    int n_seq = o.n_samples, batch = o.batch < n_seq ? o.batch : n_seq;
    o.batch = batch;
    if (calibrated && (n_seq < 1 || batch < 1)) {
        rc = mq_error_set(err, MQ_ERR_ARG, "%d calibration windows in batches of %d", n_seq, batch);
        goto done;
    }

    /* the output: the checkpoint's metadata, as mq_qmodel_to_gguf writes it */
    j.out = mq_gguf_new();
    uint32_t ftype = 0;
    if (!j.out) rc = mq_error_set(err, MQ_ERR_NOMEM, "out of memory");
    if (rc == MQ_OK) rc = mq_gpt_gguf_metadata(c, tok, NULL, j.out, err);
    if (rc == MQ_OK) rc = declare(&j, &ftype, err);
    if (rc == MQ_OK &&
        (mq_gguf_set_u32(j.out, "general.file_type", ftype) ||
         mq_gguf_set_str(j.out, "miniquant.scheme", s->name) ||
         mq_gguf_set_bool(j.out, "miniquant.skip_lm_head", 0) ||
         mq_gguf_set_u32(j.out, "miniquant.export_version", MQ_EXPORT_VERSION_SCHEME)))
        rc = mq_error_set(err, MQ_ERR_NOMEM, "out of memory building GGUF metadata");
    if (rc == MQ_OK) rc = mq_gguf_stream_begin(j.out, out, &j.st, err);
    if (rc) goto done;

    /* a model of one layer (and no vocabulary to speak of) holds each layer in turn */
    mq_gpt_config_t c1 = *c;
    c1.n_layer = 1;
    c1.vocab_size = 1;
    if ((rc = mq_gpt_init(&m1, &c1, err))) goto done;
    int half = s->family->embeddings_f16;
    size_t NX = (size_t)n_seq * T * C;

    /* the embeddings: streamed out, and the calibration windows' first residual stream (the
     * rows rounded as the quantized model stores them) */
    wte = malloc((size_t)V * C * sizeof *wte);
    if (!wte) rc = mq_error_set(err, MQ_ERR_NOMEM, "out of memory for token_embd");
    if (rc == MQ_OK) rc = read_param(&j, MQ_P_WTE, 0, wte, err);
    if (rc == MQ_OK) rc = put_floats(&j, wte, (size_t)V * C, half, err);
    if (rc == MQ_OK && j.arch->tensor[MQ_P_WPE].gguf) {
        rc = read_param(&j, MQ_P_WPE, 0, m1.params.wpe, err);
        if (rc == MQ_OK) rc = put_floats(&j, m1.params.wpe, m1.param_sizes[MQ_P_WPE], half, err);
    }
    if (rc == MQ_OK && calibrated) {
        X = malloc(NX * sizeof *X);
        inputs = malloc((size_t)batch * T * sizeof *inputs);
        if (!X || !inputs) rc = mq_error_set(err, MQ_ERR_NOMEM, "out of memory for %zu floats", NX);
        for (size_t i = 0; half && rc == MQ_OK && i < (size_t)V * C; i++)
            wte[i] = mq_round_fp16(wte[i]);
        for (size_t i = 0; half && rc == MQ_OK && i < m1.param_sizes[MQ_P_WPE]; i++)
            m1.params.wpe[i] = mq_round_fp16(m1.params.wpe[i]);
        for (int s0 = 0; s0 < n_seq && rc == MQ_OK; s0 += batch) {
            int b = n_seq - s0 < batch ? n_seq - s0 : batch;
            mq_gptq_windows(calib, n_calib, T, n_seq, s0, b, inputs);
            for (int r = 0; r < b * T; r++) {
                if (inputs[r] < 0 || inputs[r] >= V) {
                    rc = mq_error_set(err, MQ_ERR_ARG, "calibration token %d is not in [0, %d)",
                                      inputs[r], V);
                    break;
                }
                float *x = X + ((size_t)s0 * T + r) * C;
                const float *e = wte + (size_t)inputs[r] * C;
                if (j.arch->tensor[MQ_P_WPE].gguf) {
                    const float *pe = m1.params.wpe + (size_t)(r % T) * C;
                    for (int k = 0; k < C; k++)
                        x[k] = e[k] + pe[k];
                } else {
                    memcpy(x, e, (size_t)C * sizeof *x);
                }
            }
        }
    }
    free(wte);
    wte = NULL;

    mq_progress_t pb;
    mq_progress_start(&pb, calibrated ? "gptq layers" : "quantize layers", c->n_layer + 1);
    float *const *p1 = (float *const *)&m1.params;
    mq_qmodel_opts_t qo = {.only = -2, .keep_embeddings = 1};
    for (int l = 0; l < c->n_layer && rc == MQ_OK; l++) {
        for (int p = 0; p < MQ_NUM_PARAMS && rc == MQ_OK; p++)
            if (j.arch->tensor[p].gguf && j.arch->tensor[p].stacked)
                rc = read_param(&j, p, l, p1[p], err);
        if (rc == MQ_OK) rc = mq_qmodel_quantize(&q1, &m1, s, &qo, err);
        if (rc) break;
        if (calibrated) {
            rc = mq_gptq_stream_block(&q1, s, &o, X, n_seq, T, err);
        } else {
            for (int i = 0; i + 1 < q1.n_linear && rc == MQ_OK; i++) {
                int OC, IC;
                const float *Wi =
                    mq_gpt_linear_weight(&m1, mq_qmodel_linear_id(&c1, i), NULL, &OC, &IC);
                mq_qweight_t w;
                rc = mq_qweight_quantize(&w, s, Wi, OC, IC, err);
                if (rc == MQ_OK) rc = mq_qmodel_set_linear(&q1, i, &w, err);
            }
        }
        /* the layer's tensors, in the order declared */
        for (int p = 0; p < MQ_NUM_PARAMS && rc == MQ_OK; p++) {
            if (!j.arch->tensor[p].gguf || !j.arch->tensor[p].stacked) continue;
            int is_bias, i = mq_arch_linear_of(&c1, p, 0, &is_bias);
            if (i >= 0 && !is_bias)
                rc = put_weight(&j, &q1.ql[i].w, err);
            else
                rc = put_floats(&j, p1[p], m1.param_sizes[p], 0, err);
        }
        mq_qmodel_free(&q1);
        if (rc) {
            mq_error_prefix(err, "layer %d", l);
            break;
        }
        char extra[32];
        snprintf(extra, sizeof extra, "layer %d", l);
        mq_progress_update(&pb, l + 1, extra);
    }

    /* the final norm and the output Linear */
    for (int p = 0; p < MQ_NUM_PARAMS && rc == MQ_OK; p++)
        if (j.arch->tensor[p].gguf && !j.arch->tensor[p].stacked && p != MQ_P_WTE &&
            p != MQ_P_WPE && p != MQ_P_LMW)
            rc = read_param(&j, p, 0, p1[p], err);
    W = rc == MQ_OK ? malloc((size_t)V * C * sizeof *W) : NULL;
    if (rc == MQ_OK && !W) rc = mq_error_set(err, MQ_ERR_NOMEM, "out of memory for output");
    if (rc == MQ_OK) rc = read_param(&j, MQ_P_LMW, 0, W, err);
    mq_qweight_t head = {0};
    if (rc == MQ_OK) rc = mq_qmodel_quantize(&q1, &m1, s, &qo, err);
    if (rc == MQ_OK)
        rc = calibrated ? mq_gptq_stream_head(&q1, W, V, s, &o, X, n_seq, T, &head, err)
                        : mq_qweight_quantize(&head, s, W, V, C, err);
    for (int p = 0; p < MQ_NUM_PARAMS && rc == MQ_OK; p++)
        if (j.arch->tensor[p].gguf && !j.arch->tensor[p].stacked && p != MQ_P_WTE &&
            p != MQ_P_WPE && p != MQ_P_LMW)
            rc = put_floats(&j, p1[p], m1.param_sizes[p], 0, err);
    if (rc == MQ_OK) rc = put_weight(&j, &head, err);
    mq_qweight_free(&head);
    if (rc == MQ_OK) {
        rc = mq_gguf_stream_end(j.st, err);
        j.st = NULL;
    }
    if (rc == MQ_OK) mq_progress_finish(&pb, "done");
done:
    mq_gguf_stream_abort(j.st);
    mq_qmodel_free(&q1);
    mq_gpt_free(&m1);
    mq_gguf_free(j.out);
    mq_tokenizer_free(tok);
    mq_gguf_free(g);
    free(X), free(W), free(wte), free(inputs);
    return rc;
}
