/* miniquant: quantized weights and QuantizedLinear, generic over the format table (format.h):
 * nothing here tells one format from another; the rows do. */
#include "miniquant/quant.h"

#include <float.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernels_isa.h"
#include "miniquant/layers.h"

#define PAR_MIN_ELEMS 65536 /* below this, starting threads costs more than it saves */

const char *const MQ_STANDARD_SCHEMES[] = {
    "fp32",      "fp16",          "int8_per_tensor", "int8_per_channel", "int4_g64",
    "int4_g128", "int4_g64_gptq", "int4_g128_gptq",  "nf4_g64",          NULL,
};

/* ---------------------------------------------------------------------------------------------
 * quantized weights */

void mq_qweight_free(mq_qweight_t *q) {
    if (!q) return;
    if (!q->borrowed) {
        free(q->data);
        free(q->scales);
    }
    q->data = NULL;
    q->scales = NULL;
    q->borrowed = 0;
}

/* Shape, format and sizes of q, nothing allocated. */
static int qweight_init(mq_qweight_t *q, const mq_scheme_t *s, int rows, int cols,
                        mq_error_t *err) {
    if (!q) return mq_error_set(err, MQ_ERR_ARG, "no quantized weight to fill");
    memset(q, 0, sizeof *q);
    int rc = mq_scheme_check(s, err);
    if (rc) return rc;
    if (rows <= 0 || cols <= 0)
        return mq_error_set(err, MQ_ERR_ARG, "scheme %.32s: invalid weight shape %d x %d", s->name,
                            rows, cols);
    const mq_format_t *f = mq_format_for(s, cols, err);
    if (!f) return err ? err->code : MQ_ERR_ARG;
    q->scheme = *s;
    q->format = f;
    q->rows = rows;
    q->cols = cols;
    /* a block format written from values (q8_0 as q6_k's fallback) carries a scale per block */
    q->group = !mq_scheme_has_grid(s) && f->block ? f->block : mq_scheme_group(s, cols);
    q->row_bytes = f->row_bytes(s, cols);
    q->n_scales = mq_scheme_n_scales(s, rows, cols);
    return MQ_OK;
}

int mq_qweight_alloc(mq_qweight_t *q, const mq_scheme_t *s, int rows, int cols, mq_error_t *err) {
    int rc = qweight_init(q, s, rows, cols, err);
    if (rc) return rc;
    int ok = q->row_bytes == 0 || (size_t)rows <= SIZE_MAX / q->row_bytes; /* as calloc checks */
    q->data = ok ? mq_alloc_lines((size_t)rows * q->row_bytes, 1) : NULL;
    ok = q->data != NULL;
    if (ok && q->format->side_scales) ok = (q->scales = calloc(q->n_scales, 2)) != NULL;
    if (!ok) {
        mq_qweight_free(q);
        return mq_error_set(err, MQ_ERR_NOMEM, "scheme %.32s: cannot allocate a %d x %d weight",
                            s->name, rows, cols);
    }
    return MQ_OK;
}

/* The scales of row r within a scales array laid out as mq_qweight_from_codes takes it (one for
 * per-tensor, one per row, or one per group row by row), and how many a row has. */
static const mq_fp16_t *row_scales_of(const mq_qweight_t *q, const mq_fp16_t *scales, int r) {
    return q->scheme.gran == MQ_QG_TENSOR ? scales
                                          : scales + (size_t)r * (size_t)(q->cols / q->group);
}
static size_t row_n_scales(const mq_qweight_t *q) {
    return q->scheme.gran == MQ_QG_TENSOR ? 1 : (size_t)(q->cols / q->group);
}

const mq_fp16_t *mq_qweight_row_scales(const mq_qweight_t *q, int r) {
    return q->scales ? row_scales_of(q, q->scales, r) : NULL;
}

/* Row r of codes and scales into q's bytes (and side scales). */
static void store_row(mq_qweight_t *q, int r, const int8_t *codes, const mq_fp16_t *sc) {
    mq_qrow_t src = {NULL, codes, sc, q->cols, q->group, NULL};
    q->format->encode_row(&src, &q->scheme, q->data + (size_t)r * q->row_bytes);
    if (q->scales && (q->scheme.gran != MQ_QG_TENSOR || r == 0))
        memcpy((mq_fp16_t *)mq_qweight_row_scales(q, r), sc, row_n_scales(q) * 2);
}

/* The largest |w| of a block, and whether the block holds a NaN or an infinity. */
static inline float block_absmax(const float *w, int n, int *bad) {
    float m = 0.0f;
    int b = 0;
    for (int i = 0; i < n; i++) {
        float a = fabsf(w[i]);
        b |= !(a <= FLT_MAX);
        m = a > m ? a : m;
    }
    *bad |= b;
    return m;
}

/* Rejects NaN / infinite weights and weights whose scale would leave the FP16 range, naming the
 * first offender, so that the parallel quantization below cannot fail. */
static int check_weights(const mq_scheme_t *s, const float *W, int rows, int cols,
                         float *absmax_out, mq_error_t *err) {
    size_t numel = (size_t)rows * (size_t)cols;
    float amax = 0.0f;
    int bad = 0;
#pragma omp parallel for schedule(static) reduction(max : amax) reduction(| : bad) \
    if (numel >= PAR_MIN_ELEMS)
    for (int r = 0; r < rows; r++) {
        float m = block_absmax(W + (size_t)r * cols, cols, &bad);
        amax = m > amax ? m : amax;
    }
    if (bad) {
        for (size_t i = 0; i < numel; i++)
            if (!isfinite(W[i]))
                return mq_error_set(err, MQ_ERR_ARG,
                                    "scheme %.32s: weight (%zu, %zu) is %g, not a finite number",
                                    s->name, i / (size_t)cols, i % (size_t)cols, (double)W[i]);
    }
    /* fp16 rounding is monotonic, so the largest weight decides whether any scale overflows */
    const mq_family_t *f = s->family;
    float need = f->ratio ? f->ratio(amax, s->bits) : amax;
    if (!mq_scheme_is_identity(s) && mq_fp32_to_fp16(need) >= 0x7c00u)
        return mq_error_set(err, MQ_ERR_ARG,
                            "scheme %.32s: max|W| = %g needs %s %g, beyond FP16's 65504", s->name,
                            (double)amax, f->ratio ? "a scale" : "the value", (double)need);
    *absmax_out = amax;
    return MQ_OK;
}

int mq_qweight_quantize(mq_qweight_t *q, const mq_scheme_t *s, const float *W, int rows, int cols,
                        mq_error_t *err) {
    return mq_qweight_quantize_imp(q, s, W, rows, cols, NULL, err);
}

int mq_qweight_quantize_imp(mq_qweight_t *q, const mq_scheme_t *s, const float *W, int rows,
                            int cols, const float *imp, mq_error_t *err) {
    int rc = mq_qweight_alloc(q, s, rows, cols, err);
    if (rc) return rc;
    if (!W) {
        mq_qweight_free(q);
        return mq_error_set(err, MQ_ERR_ARG, "scheme %.32s: no weight given", s->name);
    }
    if (s->imat && !imp) {
        mq_qweight_free(q);
        return mq_error_set(err, MQ_ERR_ARG,
                            "scheme %.32s: needs the importance of each input, from calibration",
                            s->name);
    }
    for (int c = 0; imp && c < cols; c++)
        if (!(imp[c] >= 0.0f && imp[c] <= FLT_MAX)) {
            mq_qweight_free(q);
            return mq_error_set(err, MQ_ERR_ARG,
                                "scheme %.32s: the importance of input %d is %g, not a finite "
                                "number >= 0",
                                s->name, c, (double)imp[c]);
        }
    float amax = 0.0f;
    rc = check_weights(s, W, rows, cols, &amax, err);
    if (rc) {
        mq_qweight_free(q);
        return rc;
    }
    size_t numel = (size_t)rows * (size_t)cols;
    const mq_family_t *f = s->family;
    if (!mq_scheme_has_grid(s)) {
#pragma omp parallel for schedule(static) if (numel >= PAR_MIN_ELEMS)
        for (int r = 0; r < rows; r++) {
            mq_qrow_t src = {W + (size_t)r * cols, NULL, NULL, cols, cols, imp};
            q->format->encode_row(&src, s, q->data + (size_t)r * q->row_bytes);
        }
        return MQ_OK;
    }
    mq_fp16_t tensor_scale = s->gran == MQ_QG_TENSOR ? f->scale(amax, s->bits) : 0;
    int bc = q->group, nb = cols / bc, nomem = 0;
#pragma omp parallel if (numel >= PAR_MIN_ELEMS) reduction(| : nomem)
    {
        int8_t *codes = malloc((size_t)cols);
        mq_fp16_t *sc = malloc((size_t)nb * sizeof *sc);
        nomem = !codes || !sc;
#pragma omp for schedule(static)
        for (int r = 0; r < rows; r++) {
            if (nomem) continue;
            const float *w = W + (size_t)r * cols;
            for (int b = 0; b < nb; b++) {
                const float *wb = w + (size_t)b * bc;
                int unused = 0;
                sc[b] = s->gran == MQ_QG_TENSOR ? tensor_scale
                                                : f->scale(block_absmax(wb, bc, &unused), s->bits);
                /* the codes of the stored (rounded) scale */
                float scale = mq_fp16_to_fp32(sc[b]);
                for (int i = 0; i < bc; i++)
                    codes[b * bc + i] = f->code(wb[i], scale, s->bits);
            }
            store_row(q, r, codes, sc);
        }
        free(codes);
        free(sc);
    }
    if (nomem) {
        mq_qweight_free(q);
        return mq_error_set(err, MQ_ERR_NOMEM, "scheme %.32s: out of memory", s->name);
    }
    return MQ_OK;
}

int mq_qweight_from_codes(mq_qweight_t *q, const mq_scheme_t *s, int rows, int cols,
                          const int8_t *codes, const mq_fp16_t *scales, mq_error_t *err) {
    int rc = mq_qweight_alloc(q, s, rows, cols, err);
    if (rc) return rc;
    if (!mq_scheme_has_grid(s) || !codes || !scales) {
        mq_qweight_free(q);
        return mq_error_set(err, MQ_ERR_ARG, "scheme %.32s: no codes and scales to store",
                            s->name);
    }
    int lo = s->family->code_min(s->bits), hi = s->family->code_max(s->bits);
    for (size_t i = 0; i < (size_t)rows * (size_t)cols; i++)
        if (codes[i] < lo || codes[i] > hi) {
            mq_qweight_free(q);
            return mq_error_set(err, MQ_ERR_ARG, "scheme %.32s: code %d at (%zu, %zu) is "
                                "outside [%d, %d]", s->name, codes[i], i / (size_t)cols,
                                i % (size_t)cols, lo, hi);
        }
    for (int r = 0; r < rows; r++)
        store_row(q, r, codes + (size_t)r * cols, row_scales_of(q, scales, r));
    return MQ_OK;
}

int mq_qweight_to_codes(const mq_qweight_t *q, int8_t *codes, mq_fp16_t *scales,
                        mq_error_t *err) {
    if (!q || !q->data || !q->format->decode_row || !mq_scheme_has_grid(&q->scheme))
        return mq_error_set(err, MQ_ERR_ARG, "scheme %.32s: the weight holds no codes",
                            q ? q->scheme.name : "(none)");
    mq_fp16_t *row_sc = malloc((size_t)(q->cols / q->group) * sizeof *row_sc);
    if (!row_sc) return mq_error_set(err, MQ_ERR_NOMEM, "out of memory");
    int rc = MQ_OK;
    for (int r = 0; r < q->rows && rc == MQ_OK; r++) {
        mq_row_fault_t f;
        if (q->format->decode_row(q->data + (size_t)r * q->row_bytes, mq_qweight_row_scales(q, r),
                                  &q->scheme, q->cols, q->group, codes + (size_t)r * q->cols,
                                  row_sc, &f))
            rc = mq_error_set(err, MQ_ERR_ARG, "scheme %.32s: row %d%s", q->scheme.name, r,
                              f.what);
        else if (q->scheme.gran != MQ_QG_TENSOR || r == 0)
            memcpy((mq_fp16_t *)row_scales_of(q, scales, r), row_sc, row_n_scales(q) * 2);
    }
    free(row_sc);
    return rc;
}

int mq_qweight_load(mq_qweight_t *q, const mq_scheme_t *s, const mq_format_t *f, int rows,
                    int cols, const uint8_t *data, const mq_fp16_t *side_scales, int borrow,
                    int *bad_row, mq_row_fault_t *fault, mq_error_t *err) {
    int rc = qweight_init(q, s, rows, cols, err);
    if (rc) return rc;
    if (q->format != f)
        return mq_error_set(err, MQ_ERR_FORMAT, "scheme %.32s is stored as %s, not %s", s->name,
                            q->format->name, f->name);
    if (f->side_scales && !side_scales)
        return mq_error_set(err, MQ_ERR_FORMAT, "scheme %.32s: the scales are missing", s->name);
    if (borrow) {
        q->data = (uint8_t *)data;
        q->scales = f->side_scales ? (mq_fp16_t *)side_scales : NULL;
        q->borrowed = 1;
    } else {
        size_t nd = (size_t)rows * q->row_bytes;
        q->data = mq_alloc_lines(nd, 0);
        if (q->data) memcpy(q->data, data, nd);
        if (f->side_scales && (q->scales = malloc(q->n_scales * 2)))
            memcpy(q->scales, side_scales, q->n_scales * 2);
        if (!q->data || (f->side_scales && !q->scales)) {
            mq_qweight_free(q);
            return mq_error_set(err, MQ_ERR_NOMEM, "out of memory");
        }
    }
    /* values, or blocks written from values (their scales searched, any codes possible):
     * nothing a loader could refuse */
    if (!f->decode_row || !mq_scheme_has_grid(s)) return MQ_OK;
    int nb = cols / q->group;
    int8_t *codes = malloc((size_t)cols);
    mq_fp16_t *sc = malloc((size_t)nb * sizeof *sc), tensor_scale = 0;
    if (!codes || !sc) rc = mq_error_set(err, MQ_ERR_NOMEM, "out of memory");
    for (int r = 0; r < rows && rc == MQ_OK; r++) {
        /* blocks carrying a per-tensor scale must all carry the first row's */
        const mq_fp16_t *in = f->side_scales ? mq_qweight_row_scales(q, r)
                              : s->gran == MQ_QG_TENSOR && r > 0 ? &tensor_scale
                                                                 : NULL;
        if (f->decode_row(q->data + (size_t)r * q->row_bytes, in, s, cols, q->group, codes, sc,
                          fault)) {
            *bad_row = r;
            rc = mq_error_set(err, MQ_ERR_FORMAT, "row %d%s", r, fault->what);
        }
        if (r == 0) tensor_scale = sc[0];
    }
    free(codes);
    free(sc);
    if (rc) mq_qweight_free(q);
    return rc;
}

void mq_qweight_dequantize_row(const mq_qweight_t *q, int r, float *row) {
    q->format->dequantize_row(q->data + (size_t)r * q->row_bytes, mq_qweight_row_scales(q, r),
                              &q->scheme, q->cols, q->group, row);
}

void mq_qweight_dequantize(const mq_qweight_t *q, float *W) {
    size_t numel = (size_t)q->rows * (size_t)q->cols;
#pragma omp parallel for schedule(static) if (numel >= PAR_MIN_ELEMS)
    for (int r = 0; r < q->rows; r++)
        mq_qweight_dequantize_row(q, r, W + (size_t)r * q->cols);
}

size_t mq_qweight_bytes(const mq_qweight_t *q) {
    if (!mq_scheme_has_grid(&q->scheme)) return mq_qweight_stored_bytes(q); /* values, blocks */
    return (size_t)q->rows * (size_t)q->cols * sizeof(int8_t) + q->n_scales * sizeof(mq_fp16_t);
}

size_t mq_qweight_stored_bytes(const mq_qweight_t *q) {
    return (size_t)q->rows * q->row_bytes + (q->format->side_scales ? q->n_scales * 2 : 0);
}

double mq_qweight_bits_per_weight(const mq_qweight_t *q) {
    double numel = (double)q->rows * (double)q->cols;
    if (!mq_scheme_has_grid(&q->scheme))
        return numel > 0 ? 8.0 * (double)mq_qweight_stored_bytes(q) / numel : 0.0;
    return numel > 0 ? q->scheme.bits + 16.0 * (double)q->n_scales / numel : 0.0;
}

/* ---------------------------------------------------------------------------------------------
 * QuantizedLinear */

void mq_qlinear_free(mq_qlinear_t *ql) {
    if (!ql) return;
    mq_qweight_free(&ql->w);
    free(ql->bias);
    ql->bias = NULL;
}

int mq_qlinear_from_weight(mq_qlinear_t *ql, mq_qweight_t *w, const float *bias,
                           mq_error_t *err) {
    if (!ql || !w) return mq_error_set(err, MQ_ERR_ARG, "no QuantizedLinear to fill");
    memset(ql, 0, sizeof *ql);
    ql->w = *w;
    memset(w, 0, sizeof *w);
    ql->in = ql->w.cols;
    ql->out = ql->w.rows;
    if (bias) {
        ql->bias = malloc((size_t)ql->out * sizeof *ql->bias);
        if (!ql->bias) {
            mq_qlinear_free(ql);
            return mq_error_set(err, MQ_ERR_NOMEM, "cannot allocate a bias of %d", ql->out);
        }
        memcpy(ql->bias, bias, (size_t)ql->out * sizeof *bias);
    }
    return MQ_OK;
}

int mq_qlinear_from_linear(mq_qlinear_t *ql, const float *W, const float *bias, int out, int in,
                           const mq_scheme_t *s, mq_error_t *err) {
    if (!ql) return mq_error_set(err, MQ_ERR_ARG, "no QuantizedLinear to fill");
    memset(ql, 0, sizeof *ql);
    mq_qweight_t w;
    int rc = mq_qweight_quantize(&w, s, W, out, in, err);
    if (rc) return rc;
    return mq_qlinear_from_weight(ql, &w, bias, err);
}

int mq_qlinear_forward_ref(const mq_qlinear_t *ql, float *out, const float *inp, int N,
                           mq_error_t *err) {
    // out is (N, OC), inp is (N, C), the weight is (OC, C)
    if (N < 0) return mq_error_set(err, MQ_ERR_ARG, "QuantizedLinear: %d input rows", N);
    if (N == 0) return MQ_OK;
    int C = ql->in, OC = ql->out;
    /* a weight stored as FP32 values is its own dequantization */
    if (mq_scheme_is_identity(&ql->w.scheme)) {
        mq_matmul_forward(out, inp, (const float *)ql->w.data, ql->bias, N, C, OC);
        return MQ_OK;
    }
    float *Wd = malloc((size_t)OC * (size_t)C * sizeof *Wd);
    if (!Wd)
        return mq_error_set(err, MQ_ERR_NOMEM, "QuantizedLinear: cannot allocate %d x %d floats",
                            OC, C);
    mq_qweight_dequantize(&ql->w, Wd);
    mq_matmul_forward(out, inp, Wd, ql->bias, N, C, OC);
    free(Wd);
    return MQ_OK;
}

size_t mq_qlinear_bytes(const mq_qlinear_t *ql) {
    return mq_qweight_bytes(&ql->w) + (ql->bias ? (size_t)ql->out * sizeof(float) : 0);
}
