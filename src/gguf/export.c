/* Quantized MiniGPT models as GGUF files (the contract is in export.h).
 *
 * The exporter starts from the checkpoint's own GGUF (mq_gpt_to_gguf), so that an exported
 * model carries exactly the metadata, tokenizer and tensor names llama.cpp already reads in
 * MiniGPT checkpoints, and replaces only the tensors' types. The loader rebuilds the codes and
 * scales from the blocks and refuses blocks that no miniquant quantizer could have written:
 * evaluating a reloaded file is then evaluating the model that was exported. */
#include "miniquant/export.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "miniquant/checkpoint.h"

/* ---------------------------------------------------------------------------------------------
 * how a Linear weight is stored: one row per storage, as ggml's type traits */

typedef struct storage storage_t;

/* What a row decoder needs to say where a bad block is. */
typedef struct where {
    const char *file, *tensor;
    mq_error_t *err;
} where_t;

struct storage {
    int type; /* GGUF tensor type */
    /* 1 when a weight of scheme s with rows of cols inputs is stored this way */
    int (*fits)(const mq_scheme_t *s, int cols);
    /* bytes of one stored row; the tensor's ne[0] is cols, or these bytes for packed codes */
    size_t (*row_bytes)(const mq_scheme_t *s, int cols);
    int packed;
    /* row r of w into dst; scratch holds cols bytes */
    void (*encode_row)(const mq_qweight_t *w, int r, uint8_t *dst, uint8_t *scratch);
    /* row r of w (allocated, and for packed codes its scales already read) from src */
    int (*decode_row)(const uint8_t *src, mq_qweight_t *w, int r, uint8_t *scratch,
                      const where_t *at);
};

static int qmax_of(const mq_scheme_t *s) {
    return (1 << (s->bits - 1)) - 1;
}

/* A 32-block never straddles two scale blocks. */
static int blocks_fit(const mq_scheme_t *s, int cols) {
    return cols % MQ_QBLOCK == 0 && (s->gran != MQ_QG_GROUP || s->group % MQ_QBLOCK == 0);
}

/* Scales miniquant writes are +0 or positive and finite (quant.c). */
static int scale_ok(mq_fp16_t h) {
    return (h & 0x8000u) == 0 && (h & 0x7c00u) != 0x7c00u;
}

static int bad_scale(const where_t *at, int r, int c, mq_fp16_t h) {
    return mq_error_set(at->err, MQ_ERR_FORMAT,
                        "%s: tensor %s: row %d, column %d: scale 0x%04x (%g) is negative or not "
                        "finite",
                        at->file, at->tensor, r, c, h, (double)mq_fp16_to_fp32(h));
}

/* -- F32 and F16: the weights themselves -- */

static int fits_f32(const mq_scheme_t *s, int cols) {
    (void)cols;
    return s->kind == MQ_QK_FP32;
}
static int fits_f16(const mq_scheme_t *s, int cols) {
    (void)cols;
    return s->kind == MQ_QK_FP16;
}
static size_t row_bytes_f32(const mq_scheme_t *s, int cols) {
    (void)s;
    return (size_t)cols * sizeof(float);
}
static size_t row_bytes_f16(const mq_scheme_t *s, int cols) {
    (void)s;
    return (size_t)cols * sizeof(mq_fp16_t);
}
static void encode_f32(const mq_qweight_t *w, int r, uint8_t *dst, uint8_t *scratch) {
    (void)scratch;
    memcpy(dst, w->full + (size_t)r * w->cols, (size_t)w->cols * sizeof(float));
}
static void encode_f16(const mq_qweight_t *w, int r, uint8_t *dst, uint8_t *scratch) {
    (void)scratch;
    memcpy(dst, w->half + (size_t)r * w->cols, (size_t)w->cols * sizeof(mq_fp16_t));
}
static int decode_f32(const uint8_t *src, mq_qweight_t *w, int r, uint8_t *scratch,
                      const where_t *at) {
    (void)scratch;
    (void)at;
    memcpy(w->full + (size_t)r * w->cols, src, (size_t)w->cols * sizeof(float));
    return MQ_OK;
}
static int decode_f16(const uint8_t *src, mq_qweight_t *w, int r, uint8_t *scratch,
                      const where_t *at) {
    (void)scratch;
    (void)at;
    memcpy(w->half + (size_t)r * w->cols, src, (size_t)w->cols * sizeof(mq_fp16_t));
    return MQ_OK;
}

/* -- Q8_0 and Q4_0: each 32-block carries the scale of its group, row or tensor -- */

static int fits_q8_0(const mq_scheme_t *s, int cols) {
    return s->kind == MQ_QK_INT && s->bits == 8 && blocks_fit(s, cols);
}
static int fits_q4_0(const mq_scheme_t *s, int cols) {
    return s->kind == MQ_QK_INT && s->bits == 4 && blocks_fit(s, cols);
}
static size_t row_bytes_q8_0(const mq_scheme_t *s, int cols) {
    (void)s;
    return (size_t)(cols / MQ_QBLOCK) * MQ_Q8_0_BLOCK_BYTES;
}
static size_t row_bytes_q4_0(const mq_scheme_t *s, int cols) {
    (void)s;
    return (size_t)(cols / MQ_QBLOCK) * MQ_Q4_0_BLOCK_BYTES;
}

static void encode_blocks(const mq_qweight_t *w, int r, uint8_t *dst, int q8) {
    int nb = w->cols / MQ_QBLOCK;
    const int8_t *codes = w->codes + (size_t)r * w->cols;
    for (int b = 0; b < nb; b++) {
        mq_fp16_t d = w->scales[mq_qweight_scale_index(w, r, b * MQ_QBLOCK)];
        if (q8)
            mq_q8_0_encode(codes + b * MQ_QBLOCK, &d, 1, dst + b * MQ_Q8_0_BLOCK_BYTES);
        else
            mq_q4_0_encode(codes + b * MQ_QBLOCK, &d, 1, dst + b * MQ_Q4_0_BLOCK_BYTES);
    }
}
static void encode_q8_0(const mq_qweight_t *w, int r, uint8_t *dst, uint8_t *scratch) {
    (void)scratch;
    encode_blocks(w, r, dst, 1);
}
static void encode_q4_0(const mq_qweight_t *w, int r, uint8_t *dst, uint8_t *scratch) {
    (void)scratch;
    encode_blocks(w, r, dst, 0);
}

/* Whether block b of row r is the first of its scale block in reading order: the blocks are
 * read row by row, so a later block must repeat the scale the first one recorded. */
static int first_of_scale(const mq_scheme_t *s, int r, int b) {
    switch (s->gran) {
    case MQ_QG_TENSOR: return r == 0 && b == 0;
    case MQ_QG_CHANNEL: return b == 0;
    default: return (b * MQ_QBLOCK) % s->group == 0;
    }
}

static const char *gran_word(const mq_scheme_t *s) {
    switch (s->gran) {
    case MQ_QG_TENSOR: return "tensor";
    case MQ_QG_CHANNEL: return "row";
    default: return "group";
    }
}

static int decode_blocks(const uint8_t *src, mq_qweight_t *w, int r, const where_t *at, int q8) {
    const mq_scheme_t *s = &w->scheme;
    int nb = w->cols / MQ_QBLOCK, qmax = qmax_of(s);
    int8_t *codes = w->codes + (size_t)r * w->cols;
    for (int b = 0; b < nb; b++) {
        mq_fp16_t d;
        int8_t *c = codes + b * MQ_QBLOCK;
        if (q8)
            mq_q8_0_decode(src + (size_t)b * MQ_Q8_0_BLOCK_BYTES, 1, c, &d);
        else
            mq_q4_0_decode(src + (size_t)b * MQ_Q4_0_BLOCK_BYTES, 1, c, &d);
        if (!scale_ok(d)) return bad_scale(at, r, b * MQ_QBLOCK, d);
        for (int j = 0; j < MQ_QBLOCK; j++)
            if (c[j] < -qmax || c[j] > qmax)
                return mq_error_set(at->err, MQ_ERR_FORMAT,
                                    "%s: tensor %s: row %d, column %d: code %d is outside "
                                    "[-%d, %d], the grid of %s",
                                    at->file, at->tensor, r, b * MQ_QBLOCK + j, c[j], qmax, qmax,
                                    s->name);
        mq_fp16_t *slot = &w->scales[mq_qweight_scale_index(w, r, b * MQ_QBLOCK)];
        if (first_of_scale(s, r, b))
            *slot = d;
        else if (*slot != d)
            return mq_error_set(at->err, MQ_ERR_FORMAT,
                                "%s: tensor %s: row %d, block %d has scale 0x%04x but its %s's "
                                "first block has 0x%04x: the blocks disagree with scheme %s",
                                at->file, at->tensor, r, b, d, gran_word(s), *slot, s->name);
    }
    return MQ_OK;
}
static int decode_q8_0(const uint8_t *src, mq_qweight_t *w, int r, uint8_t *scratch,
                       const where_t *at) {
    (void)scratch;
    return decode_blocks(src, w, r, at, 1);
}
static int decode_q4_0(const uint8_t *src, mq_qweight_t *w, int r, uint8_t *scratch,
                       const where_t *at) {
    (void)scratch;
    return decode_blocks(src, w, r, at, 0);
}

/* -- packed codes, with the scales in a tensor of their own -- */

static int fits_packed(const mq_scheme_t *s, int cols) {
    (void)cols;
    return s->kind == MQ_QK_INT || s->kind == MQ_QK_NF4;
}
static int field_bits(const mq_scheme_t *s) {
    return s->kind == MQ_QK_NF4 ? 4 : s->bits;
}
/* int codes are offset to be unsigned, as Q4_0's nibbles are; nf4 codes already are */
static int field_offset(const mq_scheme_t *s) {
    return s->kind == MQ_QK_NF4 ? 0 : 1 << (s->bits - 1);
}
static size_t row_bytes_packed(const mq_scheme_t *s, int cols) {
    return mq_packed_bytes((size_t)cols, field_bits(s));
}
static void encode_packed(const mq_qweight_t *w, int r, uint8_t *dst, uint8_t *scratch) {
    const int8_t *codes = w->codes + (size_t)r * w->cols;
    int off = field_offset(&w->scheme);
    for (int c = 0; c < w->cols; c++)
        scratch[c] = (uint8_t)(codes[c] + off);
    mq_pack_fields(scratch, (size_t)w->cols, field_bits(&w->scheme), dst);
}
static int decode_packed(const uint8_t *src, mq_qweight_t *w, int r, uint8_t *scratch,
                         const where_t *at) {
    const mq_scheme_t *s = &w->scheme;
    if (mq_unpack_fields(src, (size_t)w->cols, field_bits(s), scratch))
        return mq_error_set(at->err, MQ_ERR_FORMAT,
                            "%s: tensor %s: row %d: the padding bits after the last code are not 0",
                            at->file, at->tensor, r);
    int8_t *codes = w->codes + (size_t)r * w->cols;
    int off = field_offset(s);
    for (int c = 0; c < w->cols; c++) {
        if (s->kind == MQ_QK_INT && scratch[c] == 0)
            return mq_error_set(at->err, MQ_ERR_FORMAT,
                                "%s: tensor %s: row %d, column %d: field 0 is not a code of %s "
                                "(codes are stored as code + %d)",
                                at->file, at->tensor, r, c, s->name, off);
        codes[c] = (int8_t)(scratch[c] - off);
    }
    return MQ_OK;
}

enum { ST_F32, ST_F16, ST_Q8_0, ST_Q4_0, ST_PACKED, ST_COUNT };

/* In order of preference: the first row that fits a scheme is how it is stored. */
static const storage_t STORAGES[ST_COUNT] = {
    [ST_F32] = {MQ_GGML_F32, fits_f32, row_bytes_f32, 0, encode_f32, decode_f32},
    [ST_F16] = {MQ_GGML_F16, fits_f16, row_bytes_f16, 0, encode_f16, decode_f16},
    [ST_Q8_0] = {MQ_GGML_Q8_0, fits_q8_0, row_bytes_q8_0, 0, encode_q8_0, decode_q8_0},
    [ST_Q4_0] = {MQ_GGML_Q4_0, fits_q4_0, row_bytes_q4_0, 0, encode_q4_0, decode_q4_0},
    [ST_PACKED] = {MQ_GGML_TYPE_I8, fits_packed, row_bytes_packed, 1, encode_packed, decode_packed},
};

static const storage_t *storage_for(const mq_scheme_t *s, int cols) {
    for (int i = 0; i < ST_COUNT; i++)
        if (STORAGES[i].fits(s, cols)) return &STORAGES[i];
    return NULL;
}

int mq_export_tensor_type(const mq_scheme_t *s, int cols) {
    const storage_t *st = storage_for(s, cols);
    return st ? st->type : -1;
}

static const char *type_name(int type) {
    const mq_ggml_type_info_t *ti = mq_ggml_type_info(type);
    return ti ? ti->name : "unknown";
}

/* ---------------------------------------------------------------------------------------------
 * the model's tensors */

static int is_stacked(int p) {
    return p != MQ_P_WTE && p != MQ_P_WPE && p != MQ_P_LNFW && p != MQ_P_LNFB && p != MQ_P_LMW;
}

/* The Linear (index as qmodel.h numbers them) whose weight, or bias, parameter p of layer l is;
 * -1 for the other parameters. */
static int linear_of(const mq_gpt_config_t *c, int p, int l, int *is_bias) {
    static const int W[4] = {MQ_P_QKVW, MQ_P_ATTPROJW, MQ_P_FCW, MQ_P_FCPROJW};
    static const int B[4] = {MQ_P_QKVB, MQ_P_ATTPROJB, MQ_P_FCB, MQ_P_FCPROJB};
    *is_bias = 0;
    if (p == MQ_P_LMW) return 4 * c->n_layer;
    for (int k = 0; k < 4; k++) {
        if (p == W[k]) return 4 * l + k;
        if (p == B[k]) {
            *is_bias = 1;
            return 4 * l + k;
        }
    }
    return -1;
}

/* The shape of one layer's slice of parameter p: rows x cols, rows == 0 for vectors. */
static void slice_shape(const mq_gpt_t *m, int p, int64_t *rows, int64_t *cols) {
    size_t slice = m->param_sizes[p] / (size_t)(is_stacked(p) ? m->cfg.n_layer : 1);
    if (mq_gpt_param_is_matrix(p)) {
        *cols = p == MQ_P_FCPROJW ? 4 * (int64_t)m->cfg.n_embd : m->cfg.n_embd;
        *rows = (int64_t)slice / *cols;
    } else {
        *cols = (int64_t)slice;
        *rows = 0;
    }
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
static int check_qmodel(const mq_gpt_t *m, const mq_qmodel_t *q, mq_error_t *err) {
    int n = mq_qmodel_n_linear(&m->cfg);
    if (q->n_linear != n || (n && (!q->ql || !q->active)))
        return mq_error_set(err, MQ_ERR_ARG,
                            "export: the quantized model has %d Linear layers, the model %d",
                            q->n_linear, n);
    const mq_scheme_t *s = &q->scheme;
    for (int i = 0; i < n; i++) {
        if (!q->active[i]) continue;
        const mq_qweight_t *w = &q->ql[i].w;
        int OC, C;
        char name[48];
        mq_qmodel_linear_name(&m->cfg, i, name, sizeof name);
        mq_gpt_linear_weight((mq_gpt_t *)m, mq_qmodel_linear_id(&m->cfg, i), NULL, &OC, &C);
        if (w->rows != OC || w->cols != C)
            return mq_error_set(err, MQ_ERR_ARG, "export: %s is %d x %d, the model's %d x %d", name,
                                w->rows, w->cols, OC, C);
        if (w->scheme.kind != s->kind || w->scheme.bits != s->bits || w->scheme.gran != s->gran ||
            (s->gran == MQ_QG_GROUP && w->scheme.group != s->group))
            return mq_error_set(err, MQ_ERR_ARG,
                                "export: %s is quantized with %s, the model with %s", name,
                                w->scheme.name, s->name);
        int have = s->kind == MQ_QK_FP32 ? w->full != NULL
                   : s->kind == MQ_QK_FP16
                       ? w->half != NULL
                       : w->codes && w->scales && w->n_scales == mq_qweight_n_scales(s, OC, C);
        if (!have) return mq_error_set(err, MQ_ERR_ARG, "export: %s holds no weights", name);
    }
    return MQ_OK;
}

/* A quantized Linear's weight (and, for packed codes, its scales) as tensors of g. */
static int add_linear(mq_gguf_t *g, const mq_gpt_config_t *c, int i, const char *name,
                      const mq_qweight_t *w, int *packed, mq_error_t *err) {
    const storage_t *st = storage_for(&w->scheme, w->cols);
    size_t rb = st->row_bytes(&w->scheme, w->cols);
    uint8_t *buf = malloc(rb * (size_t)w->rows), *scratch = malloc((size_t)w->cols);
    int rc = MQ_OK;
    if (!buf || !scratch)
        rc = mq_error_set(err, MQ_ERR_NOMEM, "export: out of memory for %s", name);
    for (int r = 0; rc == MQ_OK && r < w->rows; r++)
        st->encode_row(w, r, buf + (size_t)r * rb, scratch);
    int64_t ne[2] = {st->packed ? (int64_t)rb : w->cols, w->rows};
    if (rc == MQ_OK) rc = mq_gguf_add_tensor(g, name, st->type, 2, ne, buf, err);
    if (rc == MQ_OK && st->packed) {
        char sname[64];
        scales_name(c, i, sname, sizeof sname);
        int64_t ns = (int64_t)w->n_scales;
        rc = mq_gguf_add_tensor(g, sname, MQ_GGML_F16, 1, &ns, w->scales, err);
        *packed = 1;
    }
    free(buf);
    free(scratch);
    return rc;
}

static uint32_t file_type(const mq_scheme_t *s, int any_packed) {
    if (any_packed) return MQ_FTYPE_GUESSED;
    switch (s->kind) {
    case MQ_QK_FP32: return MQ_FTYPE_ALL_F32;
    case MQ_QK_FP16: return MQ_FTYPE_MOSTLY_F16;
    default: return s->bits == 8 ? MQ_FTYPE_MOSTLY_Q8_0 : MQ_FTYPE_MOSTLY_Q4_0;
    }
}

int mq_qmodel_to_gguf(const mq_gpt_t *m, const mq_qmodel_t *q, const mq_tokenizer_t *tok,
                      mq_gguf_t *g, mq_error_t *err) {
    mq_scheme_t fp32;
    mq_scheme_parse("fp32", &fp32, NULL);
    const mq_scheme_t *s = q ? &q->scheme : &fp32;
    int rc = q ? check_qmodel(m, q, err) : MQ_OK;
    if (rc) return rc;
    mq_gguf_t *g0 = mq_gguf_new();
    if (!g0) return mq_error_set(err, MQ_ERR_NOMEM, "out of memory");
    rc = mq_gpt_to_gguf(m, tok, NULL, g0, err);
    if (rc == MQ_OK) rc = copy_metadata(g0, g, err);

    const mq_gpt_config_t *c = &m->cfg;
    float *half_buf = NULL;
    int any_packed = 0;
    for (int p = 0; p < MQ_NUM_PARAMS && rc == MQ_OK; p++) {
        int nl = is_stacked(p) ? c->n_layer : 1;
        for (int l = 0; l < nl && rc == MQ_OK; l++) {
            char name[64];
            mq_ckpt_tensor_name(p, l, name, sizeof name);
            const mq_gguf_tensor_t *t = mq_gguf_find_tensor(g0, name);
            if (!t) {
                rc = mq_error_set(err, MQ_ERR_ARG, "export: the checkpoint has no tensor %s", name);
                break;
            }
            int is_bias, i = linear_of(c, p, l, &is_bias);
            const mq_qlinear_t *ql = q && i >= 0 && q->active[i] ? &q->ql[i] : NULL;
            if (ql && !is_bias) {
                rc = add_linear(g, c, i, name, &ql->w, &any_packed, err);
            } else if (ql && ql->bias) {
                /* the quantized forward adds the layer's own copy of the bias */
                rc = mq_gguf_add_tensor(g, name, MQ_GGML_F32, t->n_dims, t->ne, ql->bias, err);
            } else if ((p == MQ_P_WTE || p == MQ_P_WPE) && s->kind != MQ_QK_FP32) {
                size_t n = t->nbytes / sizeof(float);
                free(half_buf);
                half_buf = malloc(n * sizeof(mq_fp16_t));
                if (!half_buf) {
                    rc = mq_error_set(err, MQ_ERR_NOMEM, "export: out of memory for %s", name);
                    break;
                }
                mq_fp32_to_fp16_row(t->data, (mq_fp16_t *)half_buf, n);
                rc = mq_gguf_add_tensor(g, name, MQ_GGML_F16, t->n_dims, t->ne, half_buf, err);
            } else {
                rc = mq_gguf_add_tensor(g, name, MQ_GGML_F32, t->n_dims, t->ne, t->data, err);
            }
        }
    }
    free(half_buf);
    mq_gguf_free(g0);
    if (rc) return rc;
    rc |= mq_gguf_set_u32(g, "general.file_type", file_type(s, any_packed));
    rc |= mq_gguf_set_str(g, "miniquant.scheme", s->name);
    rc |= mq_gguf_set_bool(g, "miniquant.skip_lm_head", q ? q->skip_lm_head : 0);
    rc |= mq_gguf_set_u32(g, "miniquant.export_version", MQ_EXPORT_VERSION);
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

/* n floats from a tensor of any type this reader knows, whose data holds exactly n values. */
static int read_floats(const char *file, const mq_gguf_tensor_t *t, int allow_blocks, float *dst,
                       size_t n, mq_error_t *err) {
    switch (t->type) {
    case MQ_GGML_F32:
        if (t->nbytes == n * sizeof(float)) {
            memcpy(dst, t->data, t->nbytes);
            return MQ_OK;
        }
        break;
    case MQ_GGML_F16:
        if (t->nbytes == n * sizeof(mq_fp16_t)) {
            mq_fp16_to_fp32_row(t->data, dst, n);
            return MQ_OK;
        }
        break;
    case MQ_GGML_Q8_0:
        if (!allow_blocks) goto unsupported;
        if (n % MQ_QBLOCK == 0 && t->nbytes == n / MQ_QBLOCK * MQ_Q8_0_BLOCK_BYTES) {
            mq_q8_0_dequantize(t->data, n / MQ_QBLOCK, dst);
            return MQ_OK;
        }
        break;
    case MQ_GGML_Q4_0:
        if (!allow_blocks) goto unsupported;
        if (n % MQ_QBLOCK == 0 && t->nbytes == n / MQ_QBLOCK * MQ_Q4_0_BLOCK_BYTES) {
            mq_q4_0_dequantize(t->data, n / MQ_QBLOCK, dst);
            return MQ_OK;
        }
        break;
    default: goto unsupported;
    }
    return mq_error_set(err, MQ_ERR_FORMAT, "%s: tensor %s holds %zu bytes, not %zu values of %s",
                        file, t->name, t->nbytes, n, type_name(t->type));
unsupported:
    return mq_error_set(
        err, MQ_ERR_FORMAT, "%s: tensor %s has type %s, which is not allowed here%s", file, t->name,
        type_name(t->type), allow_blocks ? " (f32, f16, q8_0 or q4_0)" : " (f32 or f16)");
}

/* What the loader knows of the file being read. */
typedef struct loading {
    const mq_gguf_t *g;
    const char *file;
    mq_scheme_t scheme;
    int foreign; /* no miniquant.scheme: every tensor is dequantized into the plain model */
    int skip_lm_head;
    const mq_gguf_tensor_t **seen; /* the tensors read, to find any the file should not hold */
    int64_t n_seen;
} loading_t;

/* Linear i of the file into q->ql[i] (when quantized) and into its FP32 weight in m. */
static int load_linear(loading_t *ld, mq_gpt_t *m, mq_qmodel_t *q, int i, const mq_gguf_tensor_t *t,
                       mq_error_t *err) {
    const mq_scheme_t *s = &ld->scheme;
    int OC, C;
    float *W = mq_gpt_linear_weight(m, mq_qmodel_linear_id(&m->cfg, i), NULL, &OC, &C);
    size_t numel = (size_t)OC * (size_t)C;
    int is_head = i == 4 * m->cfg.n_layer;
    const storage_t *st = storage_for(s, C);

    if (is_head && ld->skip_lm_head && t->type != MQ_GGML_F32)
        return mq_error_set(err, MQ_ERR_FORMAT,
                            "%s: miniquant.skip_lm_head is set but tensor %s is %s, not f32",
                            ld->file, t->name, type_name(t->type));
    int plain = ld->foreign || s->kind == MQ_QK_FP32 || t->type == MQ_GGML_F32;
    if (!plain && t->type != st->type)
        return mq_error_set(err, MQ_ERR_FORMAT,
                            "%s: tensor %s has type %s, but scheme %s stores it as %s (or f32 for "
                            "a Linear left in FP32)",
                            ld->file, t->name, type_name(t->type), s->name, type_name(st->type));
    size_t rb = plain ? 0 : st->row_bytes(s, C);
    int64_t ne0 = plain || !st->packed ? C : (int64_t)rb;
    if (t->n_dims != 2 || t->ne[0] != ne0 || t->ne[1] != OC)
        return bad_shape(ld->file, t, ne0, OC, err);
    if (plain) {
        if (s->kind == MQ_QK_FP32 && !ld->foreign && t->type != MQ_GGML_F32)
            return mq_error_set(err, MQ_ERR_FORMAT,
                                "%s: tensor %s has type %s, but scheme fp32 stores it as f32",
                                ld->file, t->name, type_name(t->type));
        return read_floats(ld->file, t, ld->foreign, W, numel, err);
    }
    if (t->nbytes != rb * (size_t)OC)
        return mq_error_set(err, MQ_ERR_FORMAT, "%s: tensor %s holds %zu bytes, expected %zu",
                            ld->file, t->name, t->nbytes, rb * (size_t)OC);

    mq_qlinear_t *ql = &q->ql[i];
    int rc = mq_qweight_alloc(&ql->w, s, OC, C, err);
    if (rc) {
        /* a scheme whose groups do not divide the rows: the file contradicts itself */
        mq_error_prefix(err, "%s: tensor %s", ld->file, t->name);
        if (rc == MQ_ERR_ARG) rc = MQ_ERR_FORMAT;
        if (err) err->code = rc;
        return rc;
    }
    ql->in = C;
    ql->out = OC;
    if (st->packed) {
        char sname[64];
        scales_name(&m->cfg, i, sname, sizeof sname);
        const mq_gguf_tensor_t *ts = mq_gguf_find_tensor(ld->g, sname);
        if (!ts)
            return mq_error_set(err, MQ_ERR_FORMAT,
                                "%s: tensor %s is missing (scheme %s keeps the scales of %s there)",
                                ld->file, sname, s->name, t->name);
        ld->seen[ld->n_seen++] = ts;
        if (ts->type != MQ_GGML_F16)
            return mq_error_set(err, MQ_ERR_FORMAT, "%s: tensor %s has type %s, expected f16",
                                ld->file, sname, type_name(ts->type));
        if (ts->n_dims != 1 || ts->ne[0] != (int64_t)ql->w.n_scales)
            return bad_shape(ld->file, ts, (int64_t)ql->w.n_scales, 0, err);
        memcpy(ql->w.scales, ts->data, ql->w.n_scales * sizeof(mq_fp16_t));
        for (size_t k = 0; k < ql->w.n_scales; k++)
            if (!scale_ok(ql->w.scales[k]))
                return mq_error_set(err, MQ_ERR_FORMAT,
                                    "%s: tensor %s: scale %zu is 0x%04x (%g), negative or not "
                                    "finite",
                                    ld->file, sname, k, ql->w.scales[k],
                                    (double)mq_fp16_to_fp32(ql->w.scales[k]));
    }
    uint8_t *scratch = malloc((size_t)C);
    if (!scratch) return mq_error_set(err, MQ_ERR_NOMEM, "out of memory");
    where_t at = {ld->file, t->name, err};
    const uint8_t *src = t->data;
    for (int r = 0; r < OC && rc == MQ_OK; r++)
        rc = st->decode_row(src + (size_t)r * rb, &ql->w, r, scratch, &at);
    free(scratch);
    if (rc) return rc;
    mq_qweight_dequantize(&ql->w, W);
    q->active[i] = 1;
    return MQ_OK;
}

static int load_tensors(loading_t *ld, mq_gpt_t *m, mq_qmodel_t *q, mq_error_t *err) {
    const mq_gpt_config_t *c = &m->cfg;
    float **params = (float **)&m->params;
    for (int p = 0; p < MQ_NUM_PARAMS; p++) {
        int nl = is_stacked(p) ? c->n_layer : 1;
        int64_t rows, cols;
        slice_shape(m, p, &rows, &cols);
        size_t slice = (size_t)(rows ? rows : 1) * (size_t)cols;
        for (int l = 0; l < nl; l++) {
            char name[64];
            mq_ckpt_tensor_name(p, l, name, sizeof name);
            const mq_gguf_tensor_t *t = mq_gguf_find_tensor(ld->g, name);
            if (!t)
                return mq_error_set(err, MQ_ERR_FORMAT, "%s: tensor %s is missing", ld->file, name);
            ld->seen[ld->n_seen++] = t;
            int is_bias, i = linear_of(c, p, l, &is_bias), rc;
            if (i >= 0 && !is_bias) {
                rc = load_linear(ld, m, q, i, t, err);
            } else {
                int ok = rows ? t->n_dims == 2 && t->ne[0] == cols && t->ne[1] == rows
                              : t->n_dims == 1 && t->ne[0] == cols;
                rc = ok ? read_floats(ld->file, t, ld->foreign && rows, params[p] + l * slice,
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
    mq_error_t perr = {0};
    if (strlen(name.ptr) != name.len || mq_scheme_parse(name.ptr, &ld->scheme, &perr))
        return mq_error_set(err, MQ_ERR_FORMAT, "%s: miniquant.scheme: %s", ld->file,
                            perr.code ? perr.msg : "the name holds a NUL byte");
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

int mq_qmodel_from_gguf(const mq_gguf_t *g, const char *name, mq_gpt_t *m, mq_qmodel_t *q,
                        mq_error_t *err) {
    memset(q, 0, sizeof *q);
    memset(m, 0, sizeof *m);
    loading_t ld = {.g = g, .file = name};
    int rc = read_scheme(&ld, err);
    if (rc) return rc;
    mq_gpt_config_t cfg;
    if ((rc = mq_gpt_config_from_gguf(g, name, &cfg, err))) return rc;
    if ((rc = mq_gpt_init(m, &cfg, err))) return rc;
    q->scheme = ld.scheme;
    q->skip_lm_head = ld.skip_lm_head;
    q->n_linear = mq_qmodel_n_linear(&cfg);
    q->ql = calloc((size_t)q->n_linear, sizeof *q->ql);
    q->active = calloc((size_t)q->n_linear, sizeof *q->active);
    /* every parameter tensor, and a scales tensor per Linear at most */
    size_t max_seen = (size_t)MQ_NUM_PARAMS * (size_t)cfg.n_layer + (size_t)q->n_linear;
    ld.seen = malloc(max_seen * sizeof *ld.seen);
    if (!q->ql || !q->active || !ld.seen) rc = mq_error_set(err, MQ_ERR_NOMEM, "out of memory");
    if (rc == MQ_OK) rc = load_tensors(&ld, m, q, err);
    free(ld.seen);
    int any_active = 0;
    for (int i = 0; rc == MQ_OK && i < q->n_linear; i++) {
        if (!q->active[i]) continue;
        any_active = 1;
        float *bias;
        mq_gpt_linear_weight(m, mq_qmodel_linear_id(&cfg, i), &bias, NULL, NULL);
        if (!bias) continue;
        q->ql[i].bias = malloc((size_t)q->ql[i].out * sizeof(float));
        if (!q->ql[i].bias)
            rc = mq_error_set(err, MQ_ERR_NOMEM, "out of memory");
        else
            memcpy(q->ql[i].bias, bias, (size_t)q->ql[i].out * sizeof(float));
    }
    if (rc) {
        mq_qmodel_free(q);
        mq_gpt_free(m);
        return rc;
    }
    if (any_active) mq_qmodel_install(q, m);
    return MQ_OK;
}

int mq_qmodel_load(const char *path, mq_gpt_t *m, mq_qmodel_t *q, mq_tokenizer_t **tok,
                   mq_error_t *err) {
    mq_gguf_t *g;
    if (tok) *tok = NULL;
    int rc = mq_gguf_read(path, &g, err);
    if (rc) return rc;
    rc = mq_qmodel_from_gguf(g, path, m, q, err);
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
            mq_qmodel_free(q);
            mq_gpt_free(m);
        }
    }
    mq_gguf_free(g);
    return rc;
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
        if (linear)
            out->linear += t->nbytes;
        else if (!strcmp(t->name, "token_embd.weight") || !strcmp(t->name, "position_embd.weight"))
            out->embedding += t->nbytes;
        else
            out->other += t->nbytes;
    }
    size_t C = (size_t)cfg.n_embd;
    out->linear_params = (size_t)cfg.n_layer * 12 * C * C + (size_t)cfg.vocab_size * C;
    out->bits_per_weight = 8.0 * (double)out->linear / (double)out->linear_params;
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
    rc = tensor_bytes(g, path, out, err);
    mq_gguf_free(g);
    if (rc) return rc;
    struct stat st;
    if (stat(path, &st) != 0) return mq_error_set(err, MQ_ERR_IO, "%s: cannot stat the file", path);
    out->file = (size_t)st.st_size;
    return MQ_OK;
}
