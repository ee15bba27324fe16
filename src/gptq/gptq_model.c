/* miniquant: GPTQ of a whole MiniGPT, Linear by Linear in forward order (and the calibrated
 * round to nearest of _imat schemes, which needs the same inputs).
 *
 * Linear i is quantized on the inputs it sees when the Linears before it are already quantized
 * (the reference's sequential mode): for each i, the calibration windows run forward through
 * the model, the Linears before i through their GPTQ weights, and i's input is accumulated into
 * its Hessian as it passes. Nothing after Linear i changes that input, so the forward pass
 * stops there: the passes cost about half of n_linear full ones and the largest Linear,
 * lm_head, runs once. Only the Hessian is kept, never the activations of all windows.
 *
 * The quantized model starts as round to nearest starts it (mq_qmodel_quantize with no layer
 * quantized: the embeddings rounded to FP16, every Linear reading the FP32 weight); each GPTQ
 * result then replaces its layer. The FP32 model is never changed. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "miniquant/gptq.h"
#include "miniquant/layers.h"
#include "miniquant/progress.h"

/* Returned by the capturing Linear to end a forward pass once the wanted input is recorded;
 * told apart from a real failure by capture_t.seen. */
#define STOP_FORWARD MQ_ERR_UNSUPPORTED

typedef struct capture {
    mq_gpt_t *model;
    const mq_qmodel_t *q;
    int target; /* index of the Linear whose inputs are accumulated */
    mq_gptq_hessian_t *h;
    int seen;
    int status;
    mq_error_t err;
} capture_t;

/* The Linears before the target run through the reference path (dequantize, then matmul),
 * which defines what a QuantizedLinear computes (an F32 one is its own weight). */
static int capture_linear(void *ctx, mq_linear_id_t id, float *out, const float *inp,
                          const float *bias, int N, int C, int OC) {
    (void)bias, (void)C, (void)OC;
    capture_t *cap = ctx;
    int i = mq_qmodel_linear_index(&cap->model->cfg, id);
    if (i < 0) return MQ_ERR_ARG;
    if (i != cap->target) return mq_qlinear_forward_ref(&cap->q->ql[i], out, inp, N, NULL);
    cap->status = mq_gptq_hessian_add(cap->h, inp, N, &cap->err);
    cap->seen = cap->status == MQ_OK;
    return STOP_FORWARD;
}

void mq_gptq_windows(const int32_t *calib, size_t n_tokens, int T, int n_seq, int s0, int b,
                     int *inputs) {
    for (int k = 0; k < b; k++) {
        size_t start =
            n_seq > 1 ? (size_t)(s0 + k) * (n_tokens - (size_t)T) / (size_t)(n_seq - 1) : 0;
        for (int t = 0; t < T; t++)
            inputs[(size_t)k * T + t] = (int)calib[start + (size_t)t];
    }
}

/* After a forward pass with the capture in place (status rc, its error ferr): MQ_OK when it
 * stopped at the target Linear having added its inputs, else the error to return. */
static int stopped_at_target(const capture_t *cap, int rc, const mq_error_t *ferr,
                             mq_error_t *err) {
    if (rc == MQ_OK)
        return mq_error_set(err, MQ_ERR_ARG, "gptq: the forward pass never reached Linear %d",
                            cap->target);
    if (cap->seen) return MQ_OK;
    if (cap->status != MQ_OK) {
        if (err) *err = cap->err;
        return cap->status;
    }
    if (err) *err = *ferr;
    return rc;
}

/* Accumulates the Hessian of Linear `target` over the calibration windows. */
static int calibrate(mq_gpt_t *m, capture_t *cap, const int32_t *calib, size_t n_tokens, int T,
                     int n_seq, int batch, int *inputs, mq_error_t *err) {
    for (int s0 = 0; s0 < n_seq; s0 += batch) {
        int b = n_seq - s0 < batch ? n_seq - s0 : batch;
        mq_gptq_windows(calib, n_tokens, T, n_seq, s0, b, inputs);
        mq_error_t ferr = {0};
        cap->seen = 0;
        int rc = stopped_at_target(cap, mq_gpt_forward(m, inputs, NULL, b, T, &ferr), &ferr, err);
        if (rc) return rc;
    }
    return MQ_OK;
}

int mq_gptq_quantize_linear(const float *W, int OC, int C, const mq_gptq_hessian_t *h,
                            const mq_scheme_t *s, const mq_gptq_opts_t *o, mq_qweight_t *q,
                            mq_error_t *err) {
    if (s->gptq) {
        mq_gptq_result_t res = {0};
        int rc = mq_gptq_quantize(W, OC, C, h, s, o, &res, err);
        if (rc == MQ_OK) {
            *q = res.q;
            memset(&res.q, 0, sizeof res.q);
        }
        mq_gptq_result_free(&res);
        return rc;
    }
    float *imp = NULL;
    if (s->imat) { /* diag H: the mean square of each input, what llama-imatrix collects */
        imp = malloc((size_t)C * sizeof *imp);
        if (!imp) return mq_error_set(err, MQ_ERR_NOMEM, "out of memory");
        for (int c = 0; c < C; c++)
            imp[c] = h->n ? (float)(h->sum[(size_t)c * C + c] / (double)h->n) : 1.0f;
    }
    int rc = mq_qweight_quantize_imp(q, s, W, OC, C, imp, err);
    free(imp);
    return rc;
}

/* GPTQ (or the importance-weighted round to nearest) of every Linear whose scheme is calibrated:
 * one scheme for all (uniform) or each its own (r). o NULL: each Linear's own defaults
 * (mq_gptq_opts_for). */
static int build(const mq_gpt_t *m, const mq_scheme_t *uniform, const mq_recipe_t *r,
                 const int32_t *calib, size_t n_calib_tokens, const mq_gptq_opts_t *o,
                 int skip_lm_head, mq_qmodel_t *out, mq_gptq_layer_stats_t *stats,
                 mq_error_t *err) {
    mq_gptq_opts_t def;
    mq_gptq_opts_default(&def);
    const mq_gptq_opts_t *run = o ? o : &def; /* calibration windows and batches */
    if (!m || !m->params_memory || !out)
        return mq_error_set(err, MQ_ERR_ARG, "gptq: no model or no quantized model to fill");
    memset(out, 0, sizeof *out);
    const mq_scheme_t *s = uniform;
    if (!r && (!s || (!mq_scheme_has_grid(s) && !s->family->takes_imat)))
        return mq_error_set(err, MQ_ERR_ARG, "gptq: scheme %.32s has no grid to choose codes on",
                            s ? s->name : "(none)");
    if (!calib || n_calib_tokens == 0)
        return mq_error_set(err, MQ_ERR_ARG, "gptq: no calibration tokens");
    if (run->n_samples < 1 || run->batch < 1)
        return mq_error_set(err, MQ_ERR_ARG, "gptq: %d calibration sequences in batches of %d",
                            run->n_samples, run->batch);
    mq_scheme_t sg = r ? r->linear[0] : *s;
    if (!r && !sg.gptq && !sg.imat) {
        sg.gptq = 1;
        snprintf(sg.name, sizeof sg.name, "%.26s_gptq", s->name);
    }
    int T = n_calib_tokens < (size_t)m->cfg.n_ctx ? (int)n_calib_tokens : m->cfg.n_ctx;
    int batch = run->batch < run->n_samples ? run->batch : run->n_samples;

    int *inputs = malloc((size_t)batch * T * sizeof *inputs);
    int *want = calloc((size_t)mq_qmodel_n_linear(&m->cfg), sizeof *want);
    if (!inputs || !want) {
        free(inputs);
        free(want);
        return mq_error_set(err, MQ_ERR_NOMEM, "gptq: out of memory");
    }

    /* every Linear FP32 at first (a recipe's: rounded to nearest, which its uncalibrated ones
     * keep); the forward passes run on the quantized model's own parameters (embeddings
     * rounded or stored as the recipe says), so the calibration inputs are the quantized
     * model's */
    mq_qmodel_opts_t qo = {.skip_lm_head = skip_lm_head, .only = r ? -1 : -2, .recipe = r};
    int rc = mq_qmodel_quantize(out, m, &sg, &qo, err);
    if (rc) {
        free(inputs);
        free(want);
        return rc;
    }
    int nl = out->n_linear, n_pending = 0;
    for (int i = 0; i < nl; i++) {
        want[i] = !(skip_lm_head && i == nl - 1) && (!r || mq_scheme_calibrated(&r->linear[i]));
        n_pending += want[i];
        if (stats) memset(&stats[i], 0, sizeof stats[i]);
    }
    out->skip_lm_head = skip_lm_head;

    mq_gpt_t *qm = out->model;
    capture_t cap = {.model = qm, .q = out};
    qm->linear_fn = capture_linear;
    qm->linear_ctx = &cap;
    mq_progress_t bar;
    char label[64];
    snprintf(label, sizeof label, "%s %s", sg.gptq ? "gptq" : "calibrate", r ? r->name : sg.name);
    mq_progress_start(&bar, label, n_pending);
    int done = 0;
    for (int i = 0; i < nl && rc == MQ_OK; i++) {
        if (!want[i]) continue;
        double t0 = mq_now();
        char name[64];
        mq_qmodel_linear_name(&m->cfg, i, name, sizeof name);
        int OC, C;
        const float *W =
            mq_gpt_linear_weight((mq_gpt_t *)m, mq_qmodel_linear_id(&m->cfg, i), NULL, &OC, &C);
        mq_gptq_hessian_t h;
        mq_gptq_result_t res = {0};
        rc = mq_gptq_hessian_init(&h, C, err);
        if (rc == MQ_OK) {
            cap.target = i;
            cap.h = &h;
            cap.status = MQ_OK;
            rc = calibrate(qm, &cap, calib, n_calib_tokens, T, run->n_samples, batch, inputs, err);
        }
        const mq_scheme_t *si = r ? &r->linear[i] : &sg;
        mq_gptq_opts_t oi;
        if (o)
            oi = *o;
        else
            mq_gptq_opts_for(si, &oi);
        if (rc == MQ_OK && !si->gptq)
            rc = mq_gptq_quantize_linear(W, OC, C, &h, si, &oi, &res.q, err);
        else if (rc == MQ_OK)
            rc = mq_gptq_quantize(W, OC, C, &h, si, &oi, &res, err);
        if (rc == MQ_OK) rc = mq_qmodel_set_linear(out, i, &res.q, err);
        if (rc == MQ_OK && stats)
            stats[i] = (mq_gptq_layer_stats_t){
                1, OC, C, res.n_dead, res.loss, res.loss_rtn, mq_now() - t0};
        if (rc == MQ_OK) {
            char extra[128];
            if (oi.losses && si->gptq)
                snprintf(extra, sizeof extra, "%s loss %.3g (RTN %.3g)", name, res.loss,
                         res.loss_rtn);
            else
                snprintf(extra, sizeof extra, "%s", name);
            mq_progress_update(&bar, ++done, extra);
        } else {
            mq_error_prefix(err, "%s", name);
        }
        mq_gptq_result_free(&res);
        mq_gptq_hessian_free(&h);
    }
    mq_progress_finish(&bar, rc == MQ_OK ? "done" : "failed");
    free(inputs);
    free(want);
    if (rc) {
        mq_qmodel_free(out);
        return rc;
    }
    mq_qmodel_ready(out);
    return MQ_OK;
}

int mq_gptq_quantize_model(const mq_gpt_t *m, const mq_scheme_t *s, const int32_t *calib,
                           size_t n_calib_tokens, const mq_gptq_opts_t *o, int skip_lm_head,
                           mq_qmodel_t *out, mq_gptq_layer_stats_t *stats, mq_error_t *err) {
    mq_gptq_opts_t def;
    mq_gptq_opts_default(&def);
    return build(m, s, NULL, calib, n_calib_tokens, o ? o : &def, skip_lm_head, out, stats, err);
}

int mq_gptq_build_recipe(const mq_gpt_t *m, const mq_recipe_t *r, int skip_lm_head,
                         const int32_t *calib, size_t n_calib_tokens, const mq_gptq_opts_t *opts,
                         mq_qmodel_t *out, mq_error_t *err) {
    int calibrated = 0;
    for (int i = 0; i < r->n_linear; i++)
        calibrated |= mq_scheme_calibrated(&r->linear[i]);
    if (!calibrated) {
        mq_qmodel_opts_t o = {.skip_lm_head = skip_lm_head, .only = -1, .recipe = r};
        return mq_qmodel_quantize(out, m, NULL, &o, err);
    }
    if (!calib || n_calib_tokens == 0)
        return mq_error_set(err, MQ_ERR_ARG, "recipe %s needs calibration tokens", r->name);
    return build(m, NULL, r, calib, n_calib_tokens, opts, skip_lm_head, out, NULL, err);
}

int mq_gptq_build_qmodel(const mq_gpt_t *m, const mq_scheme_t *s, int skip_lm_head,
                         const int32_t *calib, size_t n_calib_tokens, mq_qmodel_t *out,
                         mq_error_t *err) {
    return mq_gptq_build_qmodel_with(m, s, skip_lm_head, calib, n_calib_tokens, NULL, out, err);
}

void mq_gptq_opts_for(const mq_scheme_t *s, mq_gptq_opts_t *o) {
    mq_gptq_opts_default(o);
    /* the block formats that search their scales take the columns by descending diag H: on the
     * default MiniGPT it lowers the KL divergence from FP32 by 16-17% (README, "GPTQ on
     * the K-quants"); the int grids keep the reference's order */
    o->act_order = s && !mq_scheme_has_grid(s);
}

int mq_gptq_build_qmodel_with(const mq_gpt_t *m, const mq_scheme_t *s, int skip_lm_head,
                              const int32_t *calib, size_t n_calib_tokens,
                              const mq_gptq_opts_t *opts, mq_qmodel_t *out, mq_error_t *err) {
    if (!s->gptq && !s->imat) {
        mq_qmodel_opts_t o = {skip_lm_head, -1, 0, NULL};
        return mq_qmodel_quantize(out, m, s, &o, err);
    }
    if (!calib || n_calib_tokens == 0)
        return mq_error_set(err, MQ_ERR_ARG, "scheme %s needs calibration tokens for %s", s->name,
                            s->gptq ? "GPTQ" : "the importance of its inputs");
    mq_gptq_opts_t o;
    if (opts)
        o = *opts;
    else
        mq_gptq_opts_for(s, &o);
    return mq_gptq_quantize_model(m, s, calib, n_calib_tokens, &o, skip_lm_head, out, NULL, err);
}

/* ---------------------------------------------------------------------------------------------
 * one layer at a time (streaming quantization) */

/* Runs batches of b windows of X (n_seq x T x C) through layer 0 of q's model (head: its final
 * norm and output Linear) with the capture in place: each batch stops at the target Linear
 * after adding its inputs to h; target -1 runs every Linear through the reference path and
 * writes the layer's output back into X. */
static int stream_pass(mq_qmodel_t *q, capture_t *cap, int head, float *X, int n_seq, int T,
                       int batch, mq_error_t *err) {
    mq_gpt_t *qm = q->model;
    size_t C = (size_t)qm->cfg.n_embd;
    for (int s0 = 0; s0 < n_seq; s0 += batch) {
        int b = n_seq - s0 < batch ? n_seq - s0 : batch;
        float *x = X + (size_t)s0 * T * C, *out;
        mq_error_t ferr = {0};
        cap->seen = 0;
        int rc = head ? mq_gpt_head_forward(qm, x, b * T, &ferr)
                      : mq_gpt_block_forward(qm, 0, x, b, T, &out, &ferr);
        if (cap->target < 0) {
            if (rc) {
                if (err) *err = ferr;
                return rc;
            }
            memcpy(x, out, (size_t)b * T * C * sizeof *x);
            continue;
        }
        if ((rc = stopped_at_target(cap, rc, &ferr, err))) return rc;
    }
    return MQ_OK;
}

/* Linear i of q (weight W, OC x C) on its inputs over X, quantized with s into *w. */
static int stream_linear(mq_qmodel_t *q, int i, const float *W, int OC, int C, int head,
                         const mq_scheme_t *s, const mq_gptq_opts_t *o, float *X, int n_seq, int T,
                         mq_qweight_t *w, mq_error_t *err) {
    mq_gptq_hessian_t h;
    int rc = mq_gptq_hessian_init(&h, C, err);
    if (rc) return rc;
    capture_t cap = {.model = q->model, .q = q, .target = i, .h = &h};
    q->model->linear_fn = capture_linear;
    q->model->linear_ctx = &cap;
    if (s->gptq || s->imat) rc = stream_pass(q, &cap, head, X, n_seq, T, o->batch, err);
    mq_gptq_opts_t oi = *o;
    oi.losses = 0; /* the codes do not depend on them */
    if (rc == MQ_OK) rc = mq_gptq_quantize_linear(W, OC, C, &h, s, &oi, w, err);
    mq_gptq_hessian_free(&h);
    return rc;
}

int mq_gptq_stream_block(mq_qmodel_t *q, const mq_scheme_t *s, const mq_gptq_opts_t *o, float *X,
                         int n_seq, int T, mq_error_t *err) {
    mq_gpt_t *m = q->model;
    int k = mq_qmodel_n_linear(&m->cfg) - 1, rc = MQ_OK;
    if (m->cfg.n_layer != 1) return mq_error_set(err, MQ_ERR_ARG, "gptq: not a one-layer model");
    for (int i = 0; i < k && rc == MQ_OK; i++) {
        /* the FP32 weight the layer borrows (mq_qmodel_quantize with no Linear quantized) */
        const mq_qweight_t *w = &q->ql[i].w;
        if (!mq_scheme_is_identity(&w->scheme))
            return mq_error_set(err, MQ_ERR_ARG, "gptq: Linear %d is quantized already", i);
        mq_qweight_t qw;
        rc = stream_linear(q, i, (const float *)w->data, w->rows, w->cols, 0, s, o, X, n_seq, T,
                           &qw, err);
        if (rc == MQ_OK) rc = mq_qmodel_set_linear(q, i, &qw, err);
        if (rc) {
            char name[64];
            mq_qmodel_linear_name(&m->cfg, i, name, sizeof name);
            mq_error_prefix(err, "%s", name);
        }
    }
    if (rc) return rc;
    /* the layer's output under its quantized Linears (the reference path, as the whole-model
     * calibration computes the next layer's inputs) */
    capture_t cap = {.model = m, .q = q, .target = -1};
    m->linear_fn = capture_linear;
    m->linear_ctx = &cap;
    return stream_pass(q, &cap, 0, X, n_seq, T, o->batch, err);
}

int mq_gptq_stream_head(mq_qmodel_t *q, const float *W, int V, const mq_scheme_t *s,
                        const mq_gptq_opts_t *o, float *X, int n_seq, int T, mq_qweight_t *out,
                        mq_error_t *err) {
    mq_gpt_t *m = q->model;
    int k = mq_qmodel_n_linear(&m->cfg) - 1;
    int rc = stream_linear(q, k, W, V, m->cfg.n_embd, 1, s, o, X, n_seq, T, out, err);
    return rc ? mq_error_prefix(err, "output") : MQ_OK;
}
