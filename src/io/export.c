/* Quantized MiniGPT models as GGUF files (the contract is in export.h).
 *
 * The exporter starts from the checkpoint's own GGUF (mq_gpt_to_gguf), so that an exported
 * model carries exactly the metadata, tokenizer and tensor names llama.cpp already reads in
 * MiniGPT checkpoints, and replaces only the tensors' types. A Linear's tensor is its weight's
 * bytes as they are (quant.h); the loader takes them as they are too, after checking every row
 * through its format (format.h): blocks that no miniquant quantizer could have written are
 * refused, so evaluating a reloaded file is evaluating the model that was exported. */
#include "miniquant/export.h"

#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "miniquant/arch.h"
#include "miniquant/checkpoint.h"
#include "io_internal.h"

static const char *type_name(int type) {
    const mq_ggml_type_info_t *ti = mq_ggml_type_info(type);
    return ti ? ti->name : "unknown";
}

/* ---------------------------------------------------------------------------------------------
 * the model's tensors */

static int is_stacked(const mq_gpt_config_t *c, int p) {
    return mq_arch(c->arch)->tensor[p].stacked;
}

/* The Linear (index as qmodel.h numbers them) whose weight, or bias, parameter p of layer l is;
 * -1 for the other parameters. */
static int linear_of(const mq_gpt_config_t *c, int p, int l, int *is_bias) {
    return mq_arch_linear_of(c, p, l, is_bias);
}

static void scales_name(const mq_gpt_config_t *c, int i, char *buf, size_t n) {
    char base[48];
    mq_qmodel_linear_name(c, i, base, sizeof base);
    snprintf(buf, n, "%s.scales", base);
}

/* ---------------------------------------------------------------------------------------------
 * export */

/* Copies every key/value of src into dst, keeping types and order. */
static int copy_metadata(const mq_gguf_t *src, mq_gguf_t *dst, mq_error_t *err) {
    for (int64_t i = 0; i < mq_gguf_n_kv(src); i++) {
        const char *key = mq_gguf_kv_key(src, i);
        int type = mq_gguf_kv_type(src, i), rc = MQ_OK;
        uint64_t u = 0;
        int64_t v = 0;
        switch (type) {
        case MQ_GGUF_UINT8:
        case MQ_GGUF_UINT16:
        case MQ_GGUF_UINT32:
        case MQ_GGUF_UINT64:
            rc = mq_gguf_get_u64(src, key, &u, err);
            if (rc) break;
            rc = type == MQ_GGUF_UINT8    ? mq_gguf_set_u8(dst, key, (uint8_t)u)
                 : type == MQ_GGUF_UINT16 ? mq_gguf_set_u16(dst, key, (uint16_t)u)
                 : type == MQ_GGUF_UINT32 ? mq_gguf_set_u32(dst, key, (uint32_t)u)
                                          : mq_gguf_set_u64(dst, key, u);
            break;
        case MQ_GGUF_INT8:
        case MQ_GGUF_INT16:
        case MQ_GGUF_INT32:
        case MQ_GGUF_INT64:
            rc = mq_gguf_get_i64(src, key, &v, err);
            if (rc) break;
            rc = type == MQ_GGUF_INT8    ? mq_gguf_set_i8(dst, key, (int8_t)v)
                 : type == MQ_GGUF_INT16 ? mq_gguf_set_i16(dst, key, (int16_t)v)
                 : type == MQ_GGUF_INT32 ? mq_gguf_set_i32(dst, key, (int32_t)v)
                                         : mq_gguf_set_i64(dst, key, v);
            break;
        case MQ_GGUF_FLOAT32: {
            float f;
            rc = mq_gguf_get_f32(src, key, &f, err);
            if (rc == MQ_OK) rc = mq_gguf_set_f32(dst, key, f);
            break;
        }
        case MQ_GGUF_FLOAT64: {
            double f;
            rc = mq_gguf_get_f64(src, key, &f, err);
            if (rc == MQ_OK) rc = mq_gguf_set_f64(dst, key, f);
            break;
        }
        case MQ_GGUF_BOOL: {
            int b;
            rc = mq_gguf_get_bool(src, key, &b, err);
            if (rc == MQ_OK) rc = mq_gguf_set_bool(dst, key, b);
            break;
        }
        case MQ_GGUF_STRING: {
            mq_gguf_str_t s;
            rc = mq_gguf_get_str(src, key, &s, err);
            if (rc == MQ_OK) rc = mq_gguf_set_str(dst, key, s.ptr);
            break;
        }
        case MQ_GGUF_ARRAY:
            if (mq_gguf_kv_arr_type(src, i) == MQ_GGUF_STRING) {
                const mq_gguf_str_t *strs;
                uint64_t n;
                rc = mq_gguf_get_arr_str(src, key, &strs, &n, err);
                if (rc) break;
                const char **p = malloc((n ? n : 1) * sizeof *p);
                if (!p) return mq_error_set(err, MQ_ERR_NOMEM, "out of memory");
                for (uint64_t k = 0; k < n; k++)
                    p[k] = strs[k].ptr;
                rc = mq_gguf_set_arr_str(dst, key, p, n);
                free(p);
            } else {
                int et;
                const void *data;
                uint64_t n;
                rc = mq_gguf_get_arr(src, key, &et, &data, &n, err);
                if (rc == MQ_OK) rc = mq_gguf_set_arr(dst, key, et, data, n);
            }
            break;
        default: rc = MQ_ERR_ARG; break;
        }
        if (rc) {
            if (err && err->code == MQ_OK) mq_error_set(err, rc, "cannot copy metadata");
            return mq_error_prefix(err, "metadata key %s", key);
        }
    }
    return MQ_OK;
}

/* A quantized model's layers must be what the file will claim they are. */
static int check_qmodel(const mq_qmodel_t *q, mq_error_t *err) {
    const mq_gpt_config_t *c = &q->model->cfg;
    int n = mq_qmodel_n_linear(c);
    if (q->n_linear != n || (n && (!q->ql || !q->active)))
        return mq_error_set(err, MQ_ERR_ARG,
                            "export: the quantized model has %d Linear layers, the model %d",
                            q->n_linear, n);
    const mq_scheme_t *s = &q->scheme;
    for (int i = 0; i < n; i++) {
        const mq_qweight_t *w = &q->ql[i].w;
        int OC, C;
        char name[48];
        mq_qmodel_linear_name(c, i, name, sizeof name);
        mq_gpt_linear_weight(q->model, mq_qmodel_linear_id(c, i), NULL, &OC, &C);
        if (!w->data) return mq_error_set(err, MQ_ERR_ARG, "export: %s holds no weights", name);
        if (w->rows != OC || w->cols != C)
            return mq_error_set(err, MQ_ERR_ARG, "export: %s is %d x %d, the model's %d x %d", name,
                                w->rows, w->cols, OC, C);
        if (!q->active[i] || q->recipe[0]) continue; /* a recipe's Linears each have their own */
        if (w->scheme.family != s->family || w->scheme.bits != s->bits ||
            w->scheme.gran != s->gran || (s->gran == MQ_QG_GROUP && w->scheme.group != s->group))
            return mq_error_set(err, MQ_ERR_ARG,
                                "export: %s is quantized with %s, the model with %s", name,
                                w->scheme.name, s->name);
    }
    return MQ_OK;
}

/* A quantized weight (and, for formats that keep them apart, its scales: Linear i's) as tensors
 * of g: the bytes as the layer holds them. */
static int add_weight(mq_gguf_t *g, const mq_gpt_config_t *c, int i, const char *name,
                      const mq_qweight_t *w, mq_error_t *err) {
    const mq_format_t *f = w->format;
    int64_t ne[2] = {f->ne0(&w->scheme, w->cols), w->rows};
    if (f->side_scales && i < 0)
        return mq_error_set(err, MQ_ERR_ARG,
                            "export: %s: format %s keeps its scales apart, "
                            "which only a Linear may",
                            name, f->name);
    int rc = mq_gguf_add_tensor(g, name, f->ggml_type, 2, ne, w->data, err);
    if (rc == MQ_OK && f->side_scales) {
        char sname[64];
        scales_name(c, i, sname, sizeof sname);
        int64_t ns = (int64_t)w->n_scales;
        rc = mq_gguf_add_tensor(g, sname, MQ_GGML_F16, 1, &ns, w->scales, err);
    }
    return rc;
}

/* llama.cpp's llama_ftype of the file: its quantized Linears' format's (the scheme's own format
 * when some Linears fell back to another), GUESSED when one of them is a format llama.cpp has no
 * name for. */
static uint32_t file_type(const mq_qmodel_t *q) {
    int ft = -1;
    if (q && q->recipe[0]) { /* the mixture's own, as llama-quantize names it */
        mq_recipe_t r;
        if (mq_recipe_parse(q->recipe, &q->model->cfg, &r, NULL)) return MQ_FTYPE_GUESSED;
        ft = r.llama_ftype;
        mq_recipe_free(&r);
        return (uint32_t)ft;
    }
    const mq_format_t *own = q ? mq_format_by_name(q->scheme.family->formats[0]) : NULL;
    for (int i = 0; q && i < q->n_linear; i++) {
        const mq_format_t *f = q->ql[i].w.format;
        if (!q->active[i]) continue;
        if (f->llama_ftype == MQ_FTYPE_GUESSED) return MQ_FTYPE_GUESSED;
        if (ft < 0 || f == own) ft = f->llama_ftype;
    }
    return ft < 0 ? MQ_FTYPE_ALL_F32 : (uint32_t)ft;
}

/* A recipe's file names every Linear's scheme and token_embd's. */
static int recipe_metadata(mq_gguf_t *g, const mq_qmodel_t *q) {
    const char **names = malloc((size_t)q->n_linear * sizeof *names);
    if (!names) return MQ_ERR_NOMEM;
    for (int i = 0; i < q->n_linear; i++)
        names[i] = q->active[i] ? q->ql[i].w.scheme.name : "fp32";
    int rc = mq_gguf_set_str(g, "miniquant.recipe", q->recipe);
    rc |= mq_gguf_set_arr_str(g, "miniquant.linear_schemes", names, (uint64_t)q->n_linear);
    if (q->embd.data) rc |= mq_gguf_set_str(g, "miniquant.token_embd_scheme", q->embd.scheme.name);
    free(names);
    return rc;
}

int mq_qmodel_to_gguf(const mq_gpt_t *m, const mq_qmodel_t *q, const mq_tokenizer_t *tok,
                      mq_gguf_t *g, mq_error_t *err) {
    mq_scheme_t fp32;
    mq_scheme_parse("fp32", &fp32, NULL);
    const mq_scheme_t *s = q ? &q->scheme : &fp32;
    if (q) m = q->model;
    if (!m) return mq_error_set(err, MQ_ERR_ARG, "export: no model");
    int rc = q ? check_qmodel(q, err) : MQ_OK;
    if (rc) return rc;
    mq_gguf_t *g0 = mq_gguf_new();
    if (!g0) return mq_error_set(err, MQ_ERR_NOMEM, "out of memory");
    rc = mq_gpt_to_gguf(m, tok, NULL, g0, err);
    if (rc == MQ_OK) rc = copy_metadata(g0, g, err);

    const mq_gpt_config_t *c = &m->cfg;
    float *half_buf = NULL;
    for (int p = 0; p < MQ_NUM_PARAMS && rc == MQ_OK; p++) {
        if (!mq_arch(c->arch)->tensor[p].gguf) continue;
        int nl = is_stacked(c, p) ? c->n_layer : 1;
        for (int l = 0; l < nl && rc == MQ_OK; l++) {
            char name[64];
            mq_arch_tensor_name(c, p, l, name, sizeof name);
            const mq_gguf_tensor_t *t = mq_gguf_find_tensor(g0, name);
            if (!t) {
                rc = mq_error_set(err, MQ_ERR_ARG, "export: the checkpoint has no tensor %s", name);
                break;
            }
            int is_bias, i = linear_of(c, p, l, &is_bias);
            const mq_qlinear_t *ql = q && i >= 0 ? &q->ql[i] : NULL;
            if (ql && !is_bias) {
                rc = add_weight(g, c, i, name, &ql->w, err);
            } else if (p == MQ_P_WTE && q && q->embd.data) {
                rc = add_weight(g, c, -1, name, &q->embd, err);
            } else if (ql && ql->bias) {
                /* the quantized forward adds the layer's own copy of the bias */
                rc = mq_gguf_add_tensor(g, name, MQ_GGML_F32, t->n_dims, t->ne, ql->bias, err);
            } else if ((p == MQ_P_WTE || p == MQ_P_WPE) && s->family->embeddings_f16) {
                size_t n = t->nbytes / sizeof(float);
                free(half_buf);
                half_buf = malloc(n * sizeof(mq_fp16_t));
                if (!half_buf) {
                    rc = mq_error_set(err, MQ_ERR_NOMEM, "export: out of memory for %s", name);
                    break;
                }
                mq_fp32_to_fp16_row(t->data, (mq_fp16_t *)half_buf, n);
                const mq_fp16_t *h = (const mq_fp16_t *)half_buf;
                for (size_t k = 0; k < n && rc == MQ_OK; k++)
                    if ((h[k] & 0x7c00u) == 0x7c00u)
                        rc = mq_error_set(err, MQ_ERR_ARG,
                                          "%s: tensor %s element (%zu, %zu) is %g, beyond FP16's "
                                          "65504 (the scheme stores it as f16)",
                                          m->source[0] ? m->source : "the model", name,
                                          k / (size_t)t->ne[0], k % (size_t)t->ne[0],
                                          (double)((const float *)t->data)[k]);
                if (rc) break;
                rc = mq_gguf_add_tensor(g, name, MQ_GGML_F16, t->n_dims, t->ne, half_buf, err);
            } else {
                rc = mq_gguf_add_tensor(g, name, MQ_GGML_F32, t->n_dims, t->ne, t->data, err);
            }
        }
    }
    free(half_buf);
    mq_gguf_free(g0);
    if (rc) return rc;
    rc |= mq_gguf_set_u32(g, "general.file_type", file_type(q));
    rc |= mq_gguf_set_str(g, "miniquant.scheme", s->name);
    rc |= mq_gguf_set_bool(g, "miniquant.skip_lm_head", q ? q->skip_lm_head : 0);
    rc |= mq_gguf_set_u32(g, "miniquant.export_version",
                          q && q->recipe[0] ? MQ_EXPORT_VERSION : MQ_EXPORT_VERSION_SCHEME);
    if (q && q->recipe[0] && rc == MQ_OK) rc = recipe_metadata(g, q);
    if (rc) return mq_error_set(err, MQ_ERR_NOMEM, "out of memory building GGUF metadata");
    return MQ_OK;
}

int mq_qmodel_save(const char *path, const mq_gpt_t *m, const mq_qmodel_t *q,
                   const mq_tokenizer_t *tok, mq_error_t *err) {
    mq_gguf_t *g = mq_gguf_new();
    if (!g) return mq_error_set(err, MQ_ERR_NOMEM, "out of memory");
    int rc = mq_qmodel_to_gguf(m, q, tok, g, err);
    if (rc == MQ_OK) rc = mq_gguf_write(g, path, err);
    mq_gguf_free(g);
    return rc;
}

/* ---------------------------------------------------------------------------------------------
 * load */

static int bad_shape(const char *file, const mq_gguf_tensor_t *t, int64_t ne0, int64_t ne1,
                     mq_error_t *err) {
    char want[64], have[64];
    if (ne1)
        snprintf(want, sizeof want, "[%lld, %lld]", (long long)ne0, (long long)ne1);
    else
        snprintf(want, sizeof want, "[%lld]", (long long)ne0);
    if (t->n_dims == 1)
        snprintf(have, sizeof have, "[%lld]", (long long)t->ne[0]);
    else
        snprintf(have, sizeof have, "[%lld, %lld%s]", (long long)t->ne[0], (long long)t->ne[1],
                 t->n_dims > 2 ? ", ..." : "");
    return mq_error_set(err, MQ_ERR_FORMAT, "%s: tensor %s (%s) has shape %s, expected %s", file,
                        t->name, type_name(t->type), have, want);
}

const mq_gguf_tensor_t *mq_io_param_tensor(const mq_gguf_t *g, const mq_gpt_config_t *cfg, int p,
                                           int l, char *name, size_t n) {
    if (mq_arch_tensor_name(cfg, p, l, name, n)) return NULL;
    const mq_gguf_tensor_t *t = mq_gguf_find_tensor(g, name);
    if (!t && p == MQ_P_LMW && cfg->arch == MQ_ARCH_LLAMA)
        t = mq_gguf_find_tensor(g, "token_embd.weight");
    return t;
}

/* n floats from a tensor whose data holds exactly n values: F32, F16, or (foreign files only)
 * a format whose blocks carry their own scales (ggml's Q8_0, Q4_0), dequantized as ggml does. */
int mq_io_read_floats(const char *file, const mq_gguf_tensor_t *t, int allow_blocks, float *dst,
                      size_t n, mq_error_t *err) {
    const mq_format_t *f = mq_format_of_ggml_type(t->type);
    if (!f || f->side_scales) return mq_format_refuse_type(err, file, t->name, t->type);
    if (f->block && !allow_blocks)
        return mq_error_set(err, MQ_ERR_FORMAT,
                            "%s: tensor %s has type %s, which is not allowed here (f32 or f16)",
                            file, t->name, type_name(t->type));
    const mq_ggml_type_info_t *ti = mq_ggml_type_info(t->type);
    size_t bs = (size_t)ti->block_size;
    if (n % bs || t->nbytes != n / bs * ti->type_size || n > (size_t)INT_MAX)
        return mq_error_set(err, MQ_ERR_FORMAT,
                            "%s: tensor %s holds %zu bytes, not %zu values of %s", file, t->name,
                            t->nbytes, n, type_name(t->type));
    f->dequantize_row(t->data, NULL, NULL, (int)n, (int)n, dst);
    return MQ_OK;
}

/* What the loader knows of the file being read. */
typedef struct loading {
    const mq_gguf_t *g;
    const char *file;
    mq_scheme_t scheme;
    int foreign; /* no miniquant.scheme: every tensor is dequantized into a plain model */
    int skip_lm_head;
    int borrow;                  /* the layers point into g's data, which outlives them */
    char recipe[40];             /* a recipe's file: its name, */
    mq_scheme_t *linear_schemes; /* each Linear's scheme (NULL otherwise) */
    int embd_quantized;          /* and token_embd's, when it is stored so */
    mq_scheme_t embd_scheme;
    const mq_gguf_tensor_t **seen; /* the tensors read, to find any the file should not hold */
    int64_t n_seen;
} loading_t;

/* Linear i of the file (tensor t) into q->ql[i], as its bytes. */
static int load_linear(loading_t *ld, mq_qmodel_t *q, int i, const mq_gguf_tensor_t *t,
                       mq_error_t *err) {
    const mq_scheme_t *s = ld->linear_schemes ? &ld->linear_schemes[i] : &ld->scheme;
    const mq_gpt_config_t *c = &q->model->cfg;
    int OC, C;
    mq_gpt_linear_weight(q->model, mq_qmodel_linear_id(c, i), NULL, &OC, &C);
    int is_head = mq_qmodel_linear_id(c, i).param == MQ_P_LMW;
    if (is_head && ld->skip_lm_head && t->type != MQ_GGML_F32)
        return mq_error_set(err, MQ_ERR_FORMAT,
                            "%s: miniquant.skip_lm_head is set but tensor %s is %s, not f32",
                            ld->file, t->name, type_name(t->type));
    mq_scheme_t fp32;
    mq_scheme_parse("fp32", &fp32, NULL);
    mq_qweight_t w;
    int rc, plain = ld->foreign || mq_scheme_is_identity(s) || t->type == MQ_GGML_F32;
    if (plain) {
        if (mq_scheme_is_identity(s) && !ld->foreign && t->type != MQ_GGML_F32)
            return mq_error_set(err, MQ_ERR_FORMAT,
                                "%s: tensor %s has type %s, but scheme fp32 stores it as f32",
                                ld->file, t->name, type_name(t->type));
        if (t->n_dims != 2 || t->ne[0] != C || t->ne[1] != OC)
            return bad_shape(ld->file, t, C, OC, err);
        if (t->type == MQ_GGML_F32) { /* as it is (the container checked its bytes against ne) */
            int bad_row;
            mq_row_fault_t fault;
            rc = mq_qweight_load(&w, &fp32, mq_format_for(&fp32, C, NULL), OC, C, t->data, NULL,
                                 ld->borrow, &bad_row, &fault, err);
        } else { /* a foreign file's F16 / Q8_0 / Q4_0: the plain model's FP32 weight */
            rc = mq_qweight_alloc(&w, &fp32, OC, C, err);
            if (rc == MQ_OK &&
                (rc = mq_io_read_floats(ld->file, t, 1, (float *)w.data, (size_t)OC * C, err)))
                mq_qweight_free(&w);
        }
        if (rc == MQ_OK) rc = mq_qmodel_set_linear(q, i, &w, err);
        q->active[i] = mq_scheme_is_identity(&ld->scheme) && !ld->foreign;
        return rc;
    }

    mq_error_t ferr = {0};
    const mq_format_t *f = mq_format_for(s, C, &ferr);
    if (!f) /* a scheme whose groups do not divide the rows: the file contradicts itself */
        return mq_error_set(err, MQ_ERR_FORMAT, "%s: tensor %s: %s", ld->file, t->name, ferr.msg);
    if (t->type != f->ggml_type)
        return mq_error_set(err, MQ_ERR_FORMAT,
                            "%s: tensor %s has type %s, but scheme %s stores it as %s (or f32 for "
                            "a Linear left in FP32)",
                            ld->file, t->name, type_name(t->type), s->name,
                            type_name(f->ggml_type));
    int64_t ne0 = f->ne0(s, C);
    if (t->n_dims != 2 || t->ne[0] != ne0 || t->ne[1] != OC)
        return bad_shape(ld->file, t, ne0, OC, err);
    size_t rb = f->row_bytes(s, C);
    if (t->nbytes != rb * (size_t)OC)
        return mq_error_set(err, MQ_ERR_FORMAT, "%s: tensor %s holds %zu bytes, expected %zu",
                            ld->file, t->name, t->nbytes, rb * (size_t)OC);
    const mq_fp16_t *side = NULL;
    char sname[64];
    if (f->side_scales) {
        size_t n_scales = mq_scheme_n_scales(s, OC, C);
        scales_name(c, i, sname, sizeof sname);
        const mq_gguf_tensor_t *ts = mq_gguf_find_tensor(ld->g, sname);
        if (!ts)
            return mq_error_set(err, MQ_ERR_FORMAT,
                                "%s: tensor %s is missing (scheme %s keeps the scales of %s there)",
                                ld->file, sname, s->name, t->name);
        ld->seen[ld->n_seen++] = ts;
        if (ts->type != MQ_GGML_F16)
            return mq_error_set(err, MQ_ERR_FORMAT, "%s: tensor %s has type %s, expected f16",
                                ld->file, sname, type_name(ts->type));
        if (ts->n_dims != 1 || ts->ne[0] != (int64_t)n_scales)
            return bad_shape(ld->file, ts, (int64_t)n_scales, 0, err);
        side = ts->data;
        for (size_t k = 0; k < n_scales; k++)
            if ((side[k] & 0x8000u) || (side[k] & 0x7c00u) == 0x7c00u)
                return mq_error_set(err, MQ_ERR_FORMAT,
                                    "%s: tensor %s: scale %zu is 0x%04x (%g), negative or not "
                                    "finite",
                                    ld->file, sname, k, side[k], (double)mq_fp16_to_fp32(side[k]));
    }
    int bad_row = 0;
    mq_row_fault_t fault;
    mq_error_t lerr = {0};
    rc = mq_qweight_load(&w, s, f, OC, C, t->data, side, ld->borrow, &bad_row, &fault, &lerr);
    if (rc == MQ_ERR_FORMAT)
        return mq_error_set(err, MQ_ERR_FORMAT, "%s: tensor %s: %s", ld->file, t->name, lerr.msg);
    if (rc) {
        if (err) *err = lerr;
        return rc;
    }
    return mq_qmodel_set_linear(q, i, &w, err);
}

/* A recipe's token_embd (tensor t) into q->embd, as its bytes, and its values into the lookup. */
static int load_embd(loading_t *ld, mq_qmodel_t *q, const mq_gguf_tensor_t *t, mq_error_t *err) {
    const mq_scheme_t *s = &ld->embd_scheme;
    const mq_gpt_config_t *c = &q->model->cfg;
    int rows = c->vocab_size, cols = c->n_embd;
    const mq_format_t *f = mq_format_for(s, cols, NULL);
    if (!f || f->side_scales)
        return mq_error_set(err, MQ_ERR_FORMAT,
                            "%s: miniquant.token_embd_scheme %s does not store rows of %d",
                            ld->file, s->name, cols);
    if (t->type != f->ggml_type)
        return mq_error_set(err, MQ_ERR_FORMAT,
                            "%s: tensor %s has type %s, but scheme %s stores it as %s", ld->file,
                            t->name, type_name(t->type), s->name, type_name(f->ggml_type));
    int64_t ne0 = f->ne0(s, cols);
    if (t->n_dims != 2 || t->ne[0] != ne0 || t->ne[1] != rows)
        return bad_shape(ld->file, t, ne0, rows, err);
    if (t->nbytes != f->row_bytes(s, cols) * (size_t)rows)
        return mq_error_set(err, MQ_ERR_FORMAT, "%s: tensor %s holds %zu bytes, expected %zu",
                            ld->file, t->name, t->nbytes, f->row_bytes(s, cols) * (size_t)rows);
    int bad_row = 0;
    mq_row_fault_t fault;
    mq_error_t lerr = {0};
    int rc = mq_qweight_load(&q->embd, s, f, rows, cols, t->data, NULL, ld->borrow, &bad_row,
                             &fault, &lerr);
    if (rc == MQ_ERR_FORMAT)
        return mq_error_set(err, MQ_ERR_FORMAT, "%s: tensor %s: %s", ld->file, t->name, lerr.msg);
    if (rc) {
        if (err) *err = lerr;
        return rc;
    }
    mq_qweight_dequantize(&q->embd, q->model->params.wte);
    return MQ_OK;
}

static int load_tensors(loading_t *ld, mq_qmodel_t *q, mq_error_t *err) {
    mq_gpt_t *m = q->model;
    const mq_gpt_config_t *c = &m->cfg;
    float **params = (float **)&m->params;
    for (int p = 0; p < MQ_NUM_PARAMS; p++) {
        if (!mq_arch(c->arch)->tensor[p].gguf) continue;
        int nl = is_stacked(c, p) ? c->n_layer : 1;
        int64_t rows, cols;
        mq_arch_param_shape(c, p, &rows, &cols);
        size_t slice = (size_t)(rows ? rows : 1) * (size_t)cols;
        for (int l = 0; l < nl; l++) {
            char name[64];
            const mq_gguf_tensor_t *t = mq_io_param_tensor(ld->g, c, p, l, name, sizeof name);
            if (!t)
                return mq_error_set(err, MQ_ERR_FORMAT, "%s: tensor %s is missing", ld->file, name);
            ld->seen[ld->n_seen++] = t;
            int is_bias, i = linear_of(c, p, l, &is_bias), rc;
            if (i >= 0 && !is_bias) {
                rc = load_linear(ld, q, i, t, err);
            } else if (p == MQ_P_WTE && ld->embd_quantized) {
                rc = load_embd(ld, q, t, err);
            } else {
                int ok = rows ? t->n_dims == 2 && t->ne[0] == cols && t->ne[1] == rows
                              : t->n_dims == 1 && t->ne[0] == cols;
                rc = ok ? mq_io_read_floats(ld->file, t, ld->foreign && rows, params[p] + l * slice,
                                            slice, err)
                        : bad_shape(ld->file, t, cols, rows, err);
            }
            if (rc) return rc;
        }
    }
    /* anything else in the file is not part of this format: refuse it rather than ignore it */
    for (int64_t k = 0; k < mq_gguf_n_tensors(ld->g); k++) {
        const mq_gguf_tensor_t *t = mq_gguf_tensor(ld->g, k);
        int64_t j = 0;
        while (j < ld->n_seen && ld->seen[j] != t)
            j++;
        if (j == ld->n_seen)
            return mq_error_set(err, MQ_ERR_FORMAT,
                                "%s: tensor %s is not part of a %s model of this shape", ld->file,
                                t->name, ld->scheme.name);
    }
    return MQ_OK;
}

/* The scheme a metadata string (key) names. */
static int scheme_of(const loading_t *ld, const char *key, const mq_gguf_str_t *name,
                     mq_scheme_t *out, mq_error_t *err) {
    mq_error_t perr = {0};
    if (strlen(name->ptr) != name->len || mq_scheme_parse(name->ptr, out, &perr))
        return mq_error_set(err, MQ_ERR_FORMAT, "%s: %s: %s", ld->file, key,
                            perr.code ? perr.msg : "the name holds a NUL byte");
    return MQ_OK;
}

static int read_scheme(loading_t *ld, mq_error_t *err) {
    mq_gguf_str_t name;
    int rc = mq_gguf_get_str(ld->g, "miniquant.scheme", &name, err);
    /* llama-quantize copies every key of its input, miniquant.scheme too, and adds
     * general.quantization_version: its output holds ggml's codes, not miniquant's */
    if (rc == MQ_OK && mq_gguf_find_key(ld->g, "general.quantization_version") >= 0)
        rc = MQ_ERR_NOT_FOUND;
    if (rc == MQ_ERR_NOT_FOUND) {
        ld->foreign = 1;
        mq_scheme_parse("fp32", &ld->scheme, NULL);
        mq_error_clear(err);
        return MQ_OK;
    }
    if (rc) return mq_error_prefix(err, "%s", ld->file);
    if ((rc = scheme_of(ld, "miniquant.scheme", &name, &ld->scheme, err))) return rc;
    uint32_t version = MQ_EXPORT_VERSION;
    rc = mq_gguf_get_u32(ld->g, "miniquant.export_version", &version, err);
    if (rc && rc != MQ_ERR_NOT_FOUND) return mq_error_prefix(err, "%s", ld->file);
    if (version > MQ_EXPORT_VERSION)
        return mq_error_set(err, MQ_ERR_UNSUPPORTED,
                            "%s: miniquant.export_version %u is newer than this reader (%d)",
                            ld->file, version, MQ_EXPORT_VERSION);
    rc = mq_gguf_get_bool(ld->g, "miniquant.skip_lm_head", &ld->skip_lm_head, err);
    if (rc && rc != MQ_ERR_NOT_FOUND) return mq_error_prefix(err, "%s", ld->file);
    mq_error_clear(err);
    return MQ_OK;
}

/* A recipe's file: every Linear's scheme (n_linear of them) and token_embd's. */
static int read_recipe(loading_t *ld, int n_linear, mq_error_t *err) {
    mq_gguf_str_t name;
    int rc = mq_gguf_get_str(ld->g, "miniquant.recipe", &name, err);
    if (rc == MQ_ERR_NOT_FOUND || ld->foreign) {
        mq_error_clear(err);
        return MQ_OK;
    }
    if (rc) return mq_error_prefix(err, "%s", ld->file);
    if (strlen(name.ptr) != name.len || name.len == 0 || name.len >= sizeof ld->recipe)
        return mq_error_set(err, MQ_ERR_FORMAT, "%s: miniquant.recipe is not a recipe's name",
                            ld->file);
    snprintf(ld->recipe, sizeof ld->recipe, "%s", name.ptr);
    const mq_gguf_str_t *names;
    uint64_t n;
    if ((rc = mq_gguf_get_arr_str(ld->g, "miniquant.linear_schemes", &names, &n, err)))
        return mq_error_prefix(err, "%s: recipe %s", ld->file, ld->recipe);
    if (n != (uint64_t)n_linear)
        return mq_error_set(err, MQ_ERR_FORMAT,
                            "%s: miniquant.linear_schemes has %llu names, the model %d Linears",
                            ld->file, (unsigned long long)n, n_linear);
    ld->linear_schemes = calloc((size_t)n_linear, sizeof *ld->linear_schemes);
    if (!ld->linear_schemes) return mq_error_set(err, MQ_ERR_NOMEM, "out of memory");
    for (int i = 0; i < n_linear; i++) {
        char key[48];
        snprintf(key, sizeof key, "miniquant.linear_schemes[%d]", i);
        if ((rc = scheme_of(ld, key, &names[i], &ld->linear_schemes[i], err))) return rc;
    }
    rc = mq_gguf_get_str(ld->g, "miniquant.token_embd_scheme", &name, err);
    if (rc == MQ_ERR_NOT_FOUND) {
        mq_error_clear(err);
        return MQ_OK;
    }
    if (rc) return mq_error_prefix(err, "%s", ld->file);
    if ((rc = scheme_of(ld, "miniquant.token_embd_scheme", &name, &ld->embd_scheme, err)))
        return rc;
    ld->embd_quantized = 1; /* its format is checked against the tensor when it is read */
    return MQ_OK;
}

/* The biases the loaded layers add, from the parameters just read (a layer is set before its
 * bias tensor is read, so its copy is refreshed here). */
static void bias_copies(mq_qmodel_t *q) {
    for (int i = 0; i < q->n_linear; i++) {
        float *bias;
        mq_gpt_linear_weight(q->model, mq_qmodel_linear_id(&q->model->cfg, i), &bias, NULL, NULL);
        if (!bias || !q->ql[i].bias) continue;
        memcpy(q->ql[i].bias, bias, (size_t)q->ql[i].out * sizeof(float));
    }
}

/* The first of n values that is not a finite number, or n. */
static size_t first_not_finite(const float *v, size_t n) {
    size_t k = 0;
    while (k < n && isfinite(v[k]))
        k++;
    return k;
}

static int not_finite(const char *file, const char *tensor, size_t row, size_t col, float v,
                      mq_error_t *err) {
    return mq_error_set(err, MQ_ERR_FORMAT,
                        "%s: tensor %s element (%zu, %zu) is %g, not a finite number", file,
                        tensor, row, col, (double)v);
}

/* One policy for every tensor read (Linear, embedding, norm, bias): each value, as decoded, is a
 * finite number. A scale of Inf or NaN in a block shows here as the values it multiplies. */
static int all_finite(const loading_t *ld, const mq_qmodel_t *q, mq_error_t *err) {
    const mq_gpt_t *m = q->model;
    const mq_gpt_config_t *c = &m->cfg;
    float *const *params = (float *const *)&m->params;
    char name[64];
    for (int p = 0; p < MQ_NUM_PARAMS; p++) {
        if (!mq_arch(c->arch)->tensor[p].gguf || mq_arch_is_linear_weight(c, p)) continue;
        int64_t rows, cols;
        mq_arch_param_shape(c, p, &rows, &cols);
        size_t slice = (size_t)(rows ? rows : 1) * (size_t)cols;
        for (int l = 0; l < (is_stacked(c, p) ? c->n_layer : 1); l++) {
            const float *v = params[p] + (size_t)l * slice;
            size_t k = first_not_finite(v, slice);
            if (k == slice) continue;
            mq_arch_tensor_name(c, p, l, name, sizeof name);
            return not_finite(ld->file, name, k / (size_t)cols, k % (size_t)cols, v[k], err);
        }
    }
    float *row = NULL;
    for (int i = 0; i < q->n_linear; i++) {
        const mq_qweight_t *w = &q->ql[i].w;
        float *grown = realloc(row, (size_t)w->cols * sizeof *row);
        if (!grown) {
            free(row);
            return mq_error_set(err, MQ_ERR_NOMEM, "out of memory");
        }
        row = grown;
        for (int r = 0; r < w->rows; r++) {
            mq_qweight_dequantize_row(w, r, row);
            size_t k = first_not_finite(row, (size_t)w->cols);
            if (k == (size_t)w->cols) continue;
            mq_qmodel_linear_name(c, i, name, sizeof name);
            char tensor[80];
            snprintf(tensor, sizeof tensor, "%s.weight", name);
            int rc = not_finite(ld->file, tensor, (size_t)r, k, row[k], err);
            free(row);
            return rc;
        }
    }
    free(row);
    return MQ_OK;
}

static int from_gguf(const mq_gguf_t *g, const char *name, int borrow, mq_qmodel_t *q,
                     mq_error_t *err) {
    memset(q, 0, sizeof *q);
    loading_t ld = {.g = g, .file = name, .borrow = borrow};
    int rc = read_scheme(&ld, err);
    if (rc) return rc;
    mq_gpt_config_t cfg;
    if ((rc = mq_gpt_config_from_gguf(g, name, &cfg, err))) return rc;
    if ((rc = mq_qmodel_init(q, &cfg, &ld.scheme, err))) return rc;
    q->skip_lm_head = ld.skip_lm_head;
    if ((rc = read_recipe(&ld, q->n_linear, err))) {
        free(ld.linear_schemes);
        mq_qmodel_free(q);
        return rc;
    }
    snprintf(q->recipe, sizeof q->recipe, "%s", ld.recipe);
    /* every parameter tensor, and a scales tensor per Linear at most */
    size_t max_seen = (size_t)MQ_NUM_PARAMS * (size_t)cfg.n_layer + (size_t)q->n_linear;
    ld.seen = malloc(max_seen * sizeof *ld.seen);
    if (!ld.seen) rc = mq_error_set(err, MQ_ERR_NOMEM, "out of memory");
    if (rc == MQ_OK) rc = load_tensors(&ld, q, err);
    if (rc == MQ_OK) bias_copies(q);
    if (rc == MQ_OK) rc = all_finite(&ld, q, err);
    if (rc == MQ_OK) snprintf(q->model->source, sizeof q->model->source, "%s", name);
    free(ld.seen);
    free(ld.linear_schemes);
    if (rc) {
        mq_qmodel_free(q);
        return rc;
    }
    mq_qmodel_ready(q);
    return MQ_OK;
}

int mq_qmodel_from_gguf(const mq_gguf_t *g, const char *name, mq_qmodel_t *q, mq_error_t *err) {
    return from_gguf(g, name, 0, q, err);
}

int mq_qmodel_from_gguf_borrowed(const mq_gguf_t *g, const char *name, mq_qmodel_t *q,
                                 mq_error_t *err) {
    return from_gguf(g, name, 1, q, err);
}

int mq_qmodel_load(const char *path, mq_qmodel_t *q, mq_tokenizer_t **tok, mq_error_t *err) {
    mq_gguf_t *g;
    if (tok) *tok = NULL;
    int rc = mq_gguf_read(path, &g, err);
    if (rc) return rc;
    /* the layers keep pointing into the file's bytes: loading is reading */
    rc = from_gguf(g, path, 1, q, err);
    if (rc) {
        mq_gguf_free(g);
        return rc;
    }
    q->file = g;
    if (tok) {
        rc = mq_tokenizer_from_gguf(g, path, tok, err);
        if (rc == MQ_OK && mq_tokenizer_n_vocab(*tok) != q->model->cfg.vocab_size) {
            rc = mq_error_set(err, MQ_ERR_FORMAT,
                              "%s: tokenizer has %d tokens but the model's vocabulary is %d", path,
                              mq_tokenizer_n_vocab(*tok), q->model->cfg.vocab_size);
            mq_tokenizer_free(*tok);
        }
        if (rc) {
            *tok = NULL;
            mq_qmodel_free(q);
        }
    }
    return rc;
}

int mq_qmodel_dequantize(const mq_qmodel_t *q, mq_gpt_t *m, mq_error_t *err) {
    int rc = mq_gpt_init(m, &q->model->cfg, err);
    if (rc) return rc;
    memcpy(m->params_memory, q->model->params_memory, m->num_params * sizeof(float));
    for (int i = 0; i < q->n_linear; i++) {
        float *W = mq_gpt_linear_weight(m, mq_qmodel_linear_id(&m->cfg, i), NULL, NULL, NULL);
        mq_qweight_dequantize(&q->ql[i].w, W);
    }
    return MQ_OK;
}

/* ---------------------------------------------------------------------------------------------
 * bytes */

/* Everything but the file's size. */
static int tensor_bytes(const mq_gguf_t *g, const char *name, mq_export_bytes_t *out,
                        mq_error_t *err) {
    memset(out, 0, sizeof *out);
    mq_gpt_config_t cfg;
    int rc = mq_gpt_config_from_gguf(g, name, &cfg, err);
    if (rc) return rc;
    int n = mq_qmodel_n_linear(&cfg);
    int counts[64] = {0}; /* by GGUF type (every type ggml defines is below 64) */
    for (int64_t k = 0; k < mq_gguf_n_tensors(g); k++) {
        const mq_gguf_tensor_t *t = mq_gguf_tensor(g, k);
        int linear = 0;
        for (int i = 0; i < n && !linear; i++) {
            char base[48];
            mq_qmodel_linear_name(&cfg, i, base, sizeof base);
            size_t bl = strlen(base);
            linear = !strncmp(t->name, base, bl) &&
                     (!strcmp(t->name + bl, ".weight") || !strcmp(t->name + bl, ".scales"));
        }
        if (linear && !strcmp(t->name + strlen(t->name) - 7, ".weight") && t->type >= 0 &&
            t->type < 64)
            counts[t->type]++;
        if (linear)
            out->linear += t->nbytes;
        else if (!strcmp(t->name, "token_embd.weight") || !strcmp(t->name, "position_embd.weight"))
            out->embedding += t->nbytes;
        else
            out->other += t->nbytes;
    }
    out->linear_params = 0;
    for (int i = 0; i < n; i++) {
        mq_linear_id_t id = mq_qmodel_linear_id(&cfg, i);
        int64_t rows, cols;
        mq_arch_param_shape(&cfg, id.param, &rows, &cols);
        out->linear_params += (size_t)rows * (size_t)cols;
    }
    out->bits_per_weight = 8.0 * (double)out->linear / (double)out->linear_params;
    out->linear_all_f32 = 1;
    size_t at = 0;
    for (int type = 0; type < 64; type++) {
        if (!counts[type]) continue;
        out->linear_all_f32 &= type == MQ_GGML_F32;
        if (at < sizeof out->linear_types)
            at += (size_t)snprintf(out->linear_types + at, sizeof out->linear_types - at,
                                   "%s%s x%d", at ? ", " : "", type_name(type), counts[type]);
    }
    return MQ_OK;
}

int mq_export_bytes(const mq_gguf_t *g, mq_export_bytes_t *out, mq_error_t *err) {
    int rc = tensor_bytes(g, "(gguf in memory)", out, err);
    if (rc) return rc;
    void *buf;
    size_t len;
    if ((rc = mq_gguf_write_mem(g, &buf, &len, err))) return rc;
    free(buf);
    out->file = len;
    return MQ_OK;
}

int mq_export_bytes_file(const char *path, mq_export_bytes_t *out, mq_error_t *err) {
    mq_gguf_t *g;
    int rc = mq_gguf_read(path, &g, err);
    if (rc) return rc;
    rc = mq_export_bytes_read(g, path, out, err);
    mq_gguf_free(g);
    return rc;
}

int mq_export_bytes_read(const mq_gguf_t *g, const char *path, mq_export_bytes_t *out,
                         mq_error_t *err) {
    int rc = tensor_bytes(g, path, out, err);
    if (rc) return rc;
    struct stat st;
    if (stat(path, &st) != 0) return mq_error_set(err, MQ_ERR_IO, "%s: cannot stat the file", path);
    out->file = (size_t)st.st_size;
    return MQ_OK;
}
