/* miniquant: the GPTQ solver for one Linear (the conventions are in include/miniquant/gptq.h).
 *
 * Notation (the paper's, with the reference implementation's names):
 *   W   (rows, cols)  the weight, worked on in double as Wp, its columns in solve order
 *   H   (cols, cols)  X X^T / n, the layer's Hessian up to a factor 2
 *   U   (cols, cols)  upper triangular, H^-1 = U^T U (the Cholesky factor of the inverse, after
 *                     damping and in solve order); U[j][j] is the paper's [H^-1]_jj^(1/2) and
 *                     row j carries column j's error to the later columns.
 * Column j: q = round(w_j); err = (w_j - q) / U[j][j]; w_k -= err * U[j][k] for k > j.
 *
 * U without inverting twice: with J the reversal permutation and J H J = L L^T (Cholesky),
 * H^-1 = (J L^-T J)(J L^-1 J), and J L^-1 J is upper triangular with a positive diagonal, so by
 * uniqueness it is U. One factorization and one triangular inverse (2/3 n^3 flops) instead of
 * the reference's factorization, inverse and second factorization (4/3 n^3). */
#include "miniquant/gptq.h"

#include <cblas.h>
#include <lapacke.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "miniquant/fp16.h"
#include "miniquant/progress.h"

#define PAR_MIN_WORK 32768 /* rows x block below which threads cost more than they save */
#define ROW_TILE 8         /* rows solved side by side (8 x 128 doubles stay in L1) */
#define MAX_FORMAT_BLOCK 256 /* the largest block of a format with its own scale search */

void mq_gptq_opts_default(mq_gptq_opts_t *o) {
    o->damp = 0.01;
    o->block = 128;
    o->act_order = 0;
    o->static_groups = 0;
    o->losses = 1;
    o->n_samples = 128;
    o->batch = 16;
}

/* ---------------------------------------------------------------------------------------------
 * Hessian */

int mq_gptq_hessian_init(mq_gptq_hessian_t *h, int cols, mq_error_t *err) {
    memset(h, 0, sizeof *h);
    if (cols <= 0) return mq_error_set(err, MQ_ERR_ARG, "gptq: Hessian of %d columns", cols);
    h->sum = calloc((size_t)cols * (size_t)cols, sizeof *h->sum);
    if (!h->sum)
        return mq_error_set(err, MQ_ERR_NOMEM, "gptq: cannot allocate a %d x %d Hessian", cols,
                            cols);
    h->cols = cols;
    return MQ_OK;
}

void mq_gptq_hessian_free(mq_gptq_hessian_t *h) {
    if (!h) return;
    free(h->sum);
    memset(h, 0, sizeof *h);
}

int mq_gptq_hessian_add(mq_gptq_hessian_t *h, const float *X, int N, mq_error_t *err) {
    // X is (N, cols); sum (cols, cols) += X^T X, upper triangle
    if (!h || !h->sum || N < 0 || (N > 0 && !X))
        return mq_error_set(err, MQ_ERR_ARG, "gptq: bad Hessian update (%d rows)", N);
    if (N == 0) return MQ_OK;
    int n = h->cols;
    float *part = malloc((size_t)n * (size_t)n * sizeof *part);
    if (!part) return mq_error_set(err, MQ_ERR_NOMEM, "gptq: out of memory for the Hessian");
    cblas_ssyrk(CblasRowMajor, CblasUpper, CblasTrans, n, N, 1.0f, X, n, 0.0f, part, n);
#pragma omp parallel for schedule(static) if ((size_t)n * n >= PAR_MIN_WORK)
    for (int i = 0; i < n; i++)
        for (int j = i; j < n; j++)
            h->sum[(size_t)i * n + j] += part[(size_t)i * n + j];
    free(part);
    h->n += (size_t)N;
    return MQ_OK;
}

/* H[i][j] from the upper-triangle sums */
static inline double hess_at(const mq_gptq_hessian_t *h, int i, int j) {
    int a = i < j ? i : j, b = i < j ? j : i;
    return h->sum[(size_t)a * h->cols + b] / (double)h->n;
}

/* ---------------------------------------------------------------------------------------------
 * losses */

/* row_loss[k][r] = e_r^T H e_r for the residuals E_k = W - deq(q_k) of nq quantized weights,
 * all in one symmetric product. FP32 products, double sums: the losses are reports, not
 * inputs of the solve. */
static int losses(const float *W, const mq_qweight_t *const *q, int nq,
                  const mq_gptq_hessian_t *h, double *const *row_loss, double *total,
                  mq_error_t *err) {
    int rows = q[0]->rows, n = q[0]->cols;
    size_t rn = (size_t)rows * n, nn = (size_t)n * n;
    float *E = calloc((size_t)nq * rn, sizeof *E), *EH = malloc((size_t)nq * rn * sizeof *EH);
    float *Hf = malloc(nn * sizeof *Hf);
    if (!E || !EH || !Hf) {
        free(E);
        free(EH);
        free(Hf);
        return mq_error_set(err, MQ_ERR_NOMEM, "gptq: out of memory for the losses");
    }
    double inv_n = h->n > 0 ? 1.0 / (double)h->n : 0.0;
    for (size_t i = 0; i < nn; i++)
        Hf[i] = (float)(h->sum[i] * inv_n); /* ssymm reads the upper triangle only */
    for (int k = 0; k < nq; k++) {
        float *Ek = E + (size_t)k * rn;
        mq_qweight_dequantize(q[k], Ek);
        for (size_t i = 0; i < rn; i++)
            Ek[i] = W[i] - Ek[i];
    }
    cblas_ssymm(CblasRowMajor, CblasRight, CblasUpper, nq * rows, n, 1.0f, Hf, n, E, n, 0.0f, EH,
                n);
    for (int k = 0; k < nq; k++) {
        double t = 0.0;
        for (int r = 0; r < rows; r++) {
            const float *e = E + (size_t)k * rn + (size_t)r * n, *eh = EH + (size_t)k * rn +
                                                                      (size_t)r * n;
            double s = 0.0;
            for (int c = 0; c < n; c++)
                s += (double)e[c] * eh[c];
            if (row_loss && row_loss[k]) row_loss[k][r] = s;
            t += s;
        }
        total[k] = t;
    }
    free(E);
    free(EH);
    free(Hf);
    return MQ_OK;
}

int mq_gptq_loss(const float *W, const mq_qweight_t *q, const mq_gptq_hessian_t *h,
                 double *row_loss, double *total, mq_error_t *err) {
    if (!W || !q || !q->rows || !h || !h->sum || h->cols != q->cols || !total)
        return mq_error_set(err, MQ_ERR_ARG, "gptq loss: mismatched or missing arguments");
    const mq_qweight_t *qs[1] = {q};
    double *rl[1] = {row_loss};
    return losses(W, qs, 1, h, rl, total, err);
}

/* ---------------------------------------------------------------------------------------------
 * the solver */

/* Everything one solve needs, shared by the row workers. */
typedef struct solver {
    const mq_family_t *tr;    /* the grid: scale, code and value */
    int bits, rows, n, group; /* group: columns per scale block (n for per-tensor/channel) */
    int n_groups;             /* scale blocks per row */
    int per_tensor;
    int dynamic;              /* 1: a group's scales are computed when it is first reached */
    const int *perm;          /* perm[p]: original column solved at position p */
    const int *invperm;       /* invperm[c]: position of original column c */
    const int *first;         /* first[g]: position at which group g is first reached */
    double *Wp;               /* (rows, n) in solve order */
    const double *U;          /* (n, n) upper */
    double *E;                /* (rows, block): the errors of the current block */
    int ldE;
    int8_t *codes;            /* (rows, n) in original column order */
    mq_fp16_t *scales;        /* 1 (per-tensor) or (rows, n_groups) */
    /* a format that searches its own scales (format.h: nearest): the rows' bytes, each block's
     * scales chosen when the block is first reached, under the inputs' importance */
    const mq_format_t *fmt;
    const mq_scheme_t *scheme;
    uint8_t *bytes;           /* (rows, row_bytes) */
    size_t row_bytes;
    const float *imp;         /* (n) diag H, original column order */
} solver_t;

/* Scales of group g of row r, computed at position p of block [i1, i2) from the current
 * weights of the group's columns. A column at position k >= i2 has not yet received this
 * block's errors (they arrive in the lazy update): they are added here for the absmax only. */
static void group_scale(const solver_t *S, int r, int g, int p, int i1, int i2) {
    const double *w = S->Wp + (size_t)r * S->n, *e = S->E + (size_t)r * S->ldE;
    double amax = 0.0;
    float x[MAX_FORMAT_BLOCK];
    for (int c = g * S->group; c < (g + 1) * S->group; c++) {
        int k = S->invperm[c];
        double v = w[k];
        if (k >= i2)
            for (int t = i1; t < p; t++)
                v -= e[t - i1] * S->U[(size_t)t * S->n + k];
        amax = fabs(v) > amax ? fabs(v) : amax;
        if (S->fmt) x[c - g * S->group] = (float)v;
    }
    if (S->fmt) { /* the block's scales (and provisional codes) as the format searches them */
        mq_qrow_t src = {x, NULL, NULL, S->group, S->group, S->imp + (size_t)g * S->group};
        S->fmt->encode_row(&src, S->scheme, S->bytes + (size_t)r * S->row_bytes +
                                                (size_t)g * S->fmt->block_bytes);
        return;
    }
    S->scales[(size_t)r * S->n_groups + g] = S->tr->scale((float)amax, S->bits);
}

/* Columns [i1, i2) of rows [r0, r1), one column after the other, each error reaching the rest
 * of the block at once; the errors are kept in E for the lazy update of the later blocks. The
 * rows of a tile are independent: going through them column by column, rather than one row at
 * a time, lets the processor overlap their chains of dependent operations (round, error,
 * update, load of the next column), and reuses each row of U across the tile. */
static void solve_tile_block(const solver_t *S, int r0, int r1, int i1, int i2) {
    double err[ROW_TILE];
    float scale[ROW_TILE];
    int g_prev = -1;
    for (int p = i1; p < i2; p++) {
        int c = S->perm[p], g = c / S->group;
        const double *restrict u = S->U + (size_t)p * S->n;
        int new_scale = S->dynamic && S->first[g] == p;
        if (new_scale)
            for (int r = r0; r < r1; r++)
                group_scale(S, r, g, p, i1, i2);
        if (S->fmt) { /* the nearest value on the block's stored grid */
            for (int r = r0; r < r1; r++) {
                double x = S->Wp[(size_t)r * S->n + p];
                uint8_t *blk = S->bytes + (size_t)r * S->row_bytes +
                               (size_t)g * S->fmt->block_bytes;
                double e = (x - (double)S->fmt->nearest(blk, c % S->group, (float)x)) / u[p];
                S->E[(size_t)r * S->ldE + (p - i1)] = e;
                err[r - r0] = e;
            }
            goto update;
        }
        if (new_scale || g != g_prev)
            for (int r = r0; r < r1; r++)
                scale[r - r0] = mq_fp16_to_fp32(
                    S->scales[S->per_tensor ? 0 : (size_t)r * S->n_groups + g]);
        g_prev = g;
        /* the rows' roundings first, independent of each other, then their updates */
        for (int r = r0; r < r1; r++) {
            double x = S->Wp[(size_t)r * S->n + p];
            float sc = scale[r - r0];
            int8_t code = S->tr->code((float)x, sc, S->bits);
            double e = (x - (double)S->tr->value(code, sc, S->bits)) / u[p];
            S->codes[(size_t)r * S->n + c] = code;
            S->E[(size_t)r * S->ldE + (p - i1)] = e;
            err[r - r0] = e;
        }
    update:;
        /* from a multiple of 8 columns into the block: the columns before p + 1 are done and
         * never read again, so the loop can run whole vectors */
        int k0 = i1 + ((p + 1 - i1) & ~7);
        for (int r = r0; r < r1; r++) {
            double *restrict w = S->Wp + (size_t)r * S->n;
            double e = err[r - r0];
#pragma omp simd
            for (int k = k0; k < i2; k++)
                w[k] -= e * u[k];
        }
    }
}

/* Sorting by descending diag H with the index as tie-break (qsort is not stable). */
typedef struct diag_idx {
    double d;
    int i;
} diag_idx_t;

static int cmp_diag(const void *a, const void *b) {
    const diag_idx_t *x = a, *y = b;
    if (x->d != y->d) return x->d > y->d ? -1 : 1;
    return (x->i > y->i) - (x->i < y->i);
}

/* U of the damped H in solve order, by the reversed Cholesky (see the top of the file). The
 * column-major calls on the row-major array are deliberate: the matrix is symmetric, and the
 * factor then lands in the row-major lower triangle as L^-1 without any transposing copy.
 * dpotrf2 is LAPACK's recursive Cholesky: at this size its few large BLAS calls share two
 * threads better than OpenBLAS's own blocked potrf. */
static int factor(const mq_gptq_hessian_t *h, const int *perm, const unsigned char *dead,
                  double damp, double *U, mq_error_t *err) {
    int n = h->cols;
    double mean = 0.0;
    for (int i = 0; i < n; i++)
        mean += dead[i] ? 1.0 : hess_at(h, i, i);
    mean /= n;
    double *R = malloc((size_t)n * n * sizeof *R);
    if (!R) return mq_error_set(err, MQ_ERR_NOMEM, "gptq: out of memory for H^-1");
    for (int a = 0; a < n; a++) {
        int ia = perm[n - 1 - a];
        for (int b = 0; b <= a; b++) {
            int ib = perm[n - 1 - b];
            double v = dead[ia] || dead[ib] ? (ia == ib) : hess_at(h, ia, ib);
            R[(size_t)a * n + b] = v;
        }
        R[(size_t)a * n + a] += damp * mean;
    }
    lapack_int info = LAPACKE_dpotrf2(LAPACK_COL_MAJOR, 'U', n, R, n);
    if (info == 0) info = LAPACKE_dtrtri(LAPACK_COL_MAJOR, 'U', 'N', n, R, n);
    if (info != 0) {
        free(R);
        if (info > 0)
            return mq_error_set(err, MQ_ERR_ARG,
                                "gptq: the damped Hessian is not positive definite (pivot %d "
                                "of %d); raise the damping (now %g)",
                                (int)info, n, damp);
        return mq_error_set(err, MQ_ERR_ARG, "gptq: LAPACK argument %d rejected", (int)-info);
    }
    /* U[i][j] = (L^-1)[n-1-i][n-1-j] for j >= i */
    for (int i = 0; i < n; i++) {
        double *u = U + (size_t)i * n;
        memset(u, 0, (size_t)i * sizeof *u);
        const double *l = R + (size_t)(n - 1 - i) * n;
        for (int j = i; j < n; j++)
            u[j] = l[n - 1 - j];
    }
    free(R);
    return MQ_OK;
}

void mq_gptq_result_free(mq_gptq_result_t *res) {
    if (!res) return;
    mq_qweight_free(&res->q);
    free(res->row_loss);
    free(res->row_loss_rtn);
    memset(res, 0, sizeof *res);
}

static int check_inputs(const float *W, int rows, int cols, const mq_gptq_hessian_t *h,
                        const mq_scheme_t *s, const mq_gptq_opts_t *o, mq_error_t *err) {
    if (!W || rows <= 0 || cols <= 0)
        return mq_error_set(err, MQ_ERR_ARG, "gptq: no weight, or a %d x %d one", rows, cols);
    if (!s || mq_scheme_check(s, NULL) || (!mq_scheme_has_grid(s) && !s->family->takes_imat))
        return mq_error_set(err, MQ_ERR_ARG, "gptq: scheme %.32s has no grid to choose codes on",
                            s ? s->name : "(none)");
    if (s->gran == MQ_QG_GROUP && cols % s->group)
        return mq_error_set(err, MQ_ERR_ARG,
                            "scheme %.32s: group size %d does not divide the row length %d",
                            s->name, s->group, cols);
    if (!h || !h->sum || h->cols != cols)
        return mq_error_set(err, MQ_ERR_ARG, "gptq: Hessian of %d columns for a weight of %d",
                            h ? h->cols : 0, cols);
    if (h->n == 0) return mq_error_set(err, MQ_ERR_ARG, "gptq: no calibration rows in H");
    if (!(o->damp >= 0.0 && o->damp < 1e6) || o->block < 1)
        return mq_error_set(err, MQ_ERR_ARG, "gptq: damp %g and block %d (need damp >= 0, "
                            "block >= 1)", o->damp, o->block);
    size_t rn = (size_t)rows * cols;
    for (size_t i = 0; i < rn; i++)
        if (!isfinite(W[i]))
            return mq_error_set(err, MQ_ERR_ARG, "gptq: weight (%zu, %zu) is %g, not finite",
                                i / (size_t)cols, i % (size_t)cols, (double)W[i]);
    for (int i = 0; i < cols; i++)
        for (int j = i; j < cols; j++)
            if (!isfinite(h->sum[(size_t)i * cols + j]))
                return mq_error_set(err, MQ_ERR_ARG, "gptq: Hessian entry (%d, %d) is not finite",
                                    i, j);
    return MQ_OK;
}

int mq_gptq_quantize(const float *W, int rows, int cols, const mq_gptq_hessian_t *h,
                     const mq_scheme_t *s, const mq_gptq_opts_t *o, mq_gptq_result_t *res,
                     mq_error_t *err) {
    mq_gptq_opts_t def;
    mq_gptq_opts_default(&def);
    if (!o) o = &def;
    if (!res) return mq_error_set(err, MQ_ERR_ARG, "gptq: no result to fill");
    memset(res, 0, sizeof *res);
    int rc = check_inputs(W, rows, cols, h, s, o, err);
    if (rc) return rc;

    int n = cols, B = o->block < n ? o->block : n;
    size_t rn = (size_t)rows * n;
    solver_t S = {0};
    /* a format that searches its own scales: each block's, when GPTQ first reaches it */
    const mq_format_t *bf = mq_scheme_has_grid(s) ? NULL : mq_format_for(s, cols, err);
    if (!mq_scheme_has_grid(s) && !bf) return err ? err->code : MQ_ERR_ARG;
    float *imp = malloc((size_t)n * sizeof *imp);
    if (!imp) return mq_error_set(err, MQ_ERR_NOMEM, "gptq: out of memory");
    for (int c = 0; c < n; c++)
        imp[c] = (float)hess_at(h, c, c);
    S.tr = s->family;
    S.bits = s->bits;
    S.rows = rows;
    S.n = n;
    S.per_tensor = s->gran == MQ_QG_TENSOR;
    S.group = bf ? (bf->block ? bf->block : n) : s->gran == MQ_QG_GROUP ? s->group : n;
    S.n_groups = n / S.group;
    S.dynamic = (bf || s->gran == MQ_QG_GROUP) && !o->static_groups;
    S.ldE = B;
    S.fmt = bf && bf->nearest ? bf : NULL;
    S.scheme = s;
    S.imp = imp;
    size_t n_scales = mq_scheme_n_scales(s, rows, cols);
    if (bf && !bf->nearest) { /* a fallback GPTQ does not take: round to nearest under imp */
        rc = mq_qweight_quantize_imp(&res->q, s, W, rows, cols, imp, err);
        free(imp);
        if (rc == MQ_OK && o->losses) rc = mq_gptq_loss(W, &res->q, h, NULL, &res->loss, err);
        res->loss_rtn = res->loss;
        if (rc) mq_gptq_result_free(res);
        return rc;
    }
    if (S.fmt) {
        S.row_bytes = bf->row_bytes(s, cols);
        S.bytes = calloc((size_t)rows, S.row_bytes);
        if (!S.bytes) {
            free(imp);
            return mq_error_set(err, MQ_ERR_NOMEM, "gptq: out of memory");
        }
        /* static groups: every block's scales searched once from W as it is (under imp) */
        for (int r = 0; !S.dynamic && r < rows; r++) {
            mq_qrow_t src = {W + (size_t)r * cols, NULL, NULL, cols, cols, imp};
            bf->encode_row(&src, s, S.bytes + (size_t)r * S.row_bytes);
        }
    }
    int *perm = malloc((size_t)n * sizeof *perm), *invperm = malloc((size_t)n * sizeof *invperm);
    int *first = malloc((size_t)S.n_groups * sizeof *first);
    unsigned char *dead = malloc((size_t)n);
    diag_idx_t *di = malloc((size_t)n * sizeof *di);
    double *Wp = malloc(rn * sizeof *Wp), *U = malloc((size_t)n * n * sizeof *U);
    double *E = malloc((size_t)rows * B * sizeof *E);
    int8_t *codes = calloc(rn, 1);
    mq_fp16_t *scales = calloc(n_scales ? n_scales : 1, sizeof *scales);
    S.codes = codes;
    S.scales = scales;
    if (!perm || !codes || !scales || !invperm || !first || !dead || !di || !Wp || !U || !E) {
        rc = mq_error_set(err, MQ_ERR_NOMEM, "gptq: out of memory for a %d x %d weight", rows, n);
        goto done;
    }

    for (int i = 0; i < n; i++) {
        di[i].d = hess_at(h, i, i);
        di[i].i = i;
        dead[i] = !(di[i].d > 0.0);
        res->n_dead += dead[i];
        if (dead[i]) di[i].d = 1.0; /* what the dead input's diagonal becomes */
    }
    if (o->act_order) qsort(di, (size_t)n, sizeof *di, cmp_diag);
    for (int p = 0; p < n; p++) {
        perm[p] = di[p].i;
        invperm[di[p].i] = p;
    }
    for (int g = 0; g < S.n_groups; g++) {
        first[g] = n;
        for (int c = g * S.group; c < (g + 1) * S.group; c++)
            first[g] = invperm[c] < first[g] ? invperm[c] : first[g];
    }
    S.perm = perm;
    S.invperm = invperm;
    S.first = first;

    /* Wp: W with the dead inputs zeroed, columns in solve order; the up-front scales */
    double t0 = mq_now();
    for (int r = 0; r < rows; r++)
        for (int p = 0; p < n; p++) {
            int c = perm[p];
            Wp[(size_t)r * n + p] = dead[c] ? 0.0 : (double)W[(size_t)r * n + c];
        }
    if (!S.dynamic && !S.fmt) {
        float tmax = 0.0f;
        for (int r = 0; r < rows; r++)
            for (int g = 0; g < S.n_groups; g++) {
                float amax = 0.0f;
                for (int c = g * S.group; c < (g + 1) * S.group; c++) {
                    float a = dead[c] ? 0.0f : fabsf(W[(size_t)r * n + c]);
                    amax = a > amax ? a : amax;
                }
                tmax = amax > tmax ? amax : tmax;
                if (!S.per_tensor)
                    scales[(size_t)r * S.n_groups + g] = S.tr->scale(amax, S.bits);
            }
        if (S.per_tensor) scales[0] = S.tr->scale(tmax, S.bits);
    }
    rc = factor(h, perm, dead, o->damp, U, err);
    if (rc) goto done;
    double t1 = mq_now();
    res->t_factor = t1 - t0;

    S.Wp = Wp;
    S.U = U;
    S.E = E;
    for (int i1 = 0; i1 < n; i1 += B) {
        int i2 = i1 + B < n ? i1 + B : n;
        int n_tiles = (rows + ROW_TILE - 1) / ROW_TILE;
#pragma omp parallel for schedule(static) if ((size_t)rows * B >= PAR_MIN_WORK)
        for (int t = 0; t < n_tiles; t++)
            solve_tile_block(&S, t * ROW_TILE, t * ROW_TILE + ROW_TILE < rows ? t * ROW_TILE + ROW_TILE : rows, i1, i2);
        if (i2 < n)
            cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, rows, n - i2, i2 - i1, -1.0, E,
                        B, U + (size_t)i1 * n + i2, n, 1.0, Wp + i2, n);
    }
    double t2 = mq_now();
    res->t_solve = t2 - t1;
    /* the codes into the scheme's stored format, or the blocks as they are */
    if (S.fmt) {
        rc = mq_qweight_alloc(&res->q, s, rows, cols, err);
        if (rc == MQ_OK) memcpy(res->q.data, S.bytes, (size_t)rows * S.row_bytes);
    } else {
        rc = mq_qweight_from_codes(&res->q, s, rows, cols, codes, scales, err);
    }
    if (rc) goto done;

    if (o->losses) {
        mq_qweight_t rtn;
        res->row_loss = malloc((size_t)rows * sizeof *res->row_loss);
        res->row_loss_rtn = malloc((size_t)rows * sizeof *res->row_loss_rtn);
        if (!res->row_loss || !res->row_loss_rtn) {
            rc = mq_error_set(err, MQ_ERR_NOMEM, "gptq: out of memory for the losses");
            goto done;
        }
        /* round to nearest (a format that searches its scales searches them under the same
         * importance GPTQ's blocks are chosen with) */
        rc = mq_qweight_quantize_imp(&rtn, s, W, rows, cols, S.fmt ? imp : NULL, err);
        if (rc) goto done;
        const mq_qweight_t *qs[2] = {&res->q, &rtn};
        double *rl[2] = {res->row_loss, res->row_loss_rtn}, tot[2];
        rc = losses(W, qs, 2, h, rl, tot, err);
        mq_qweight_free(&rtn);
        res->loss = tot[0];
        res->loss_rtn = tot[1];
        res->t_loss = mq_now() - t2;
    }

done:
    free(imp);
    free(S.bytes);
    free(perm);
    free(invperm);
    free(first);
    free(dead);
    free(di);
    free(Wp);
    free(U);
    free(E);
    free(codes);
    free(scales);
    if (rc) mq_gptq_result_free(res);
    return rc;
}
