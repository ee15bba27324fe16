/* miniquant gptq-toy: GPTQ against round to nearest on one synthetic layer (spec section 4),
 * the experiment experiments/26-gptq-toy.
 *
 * W ~ N(0, 0.02^2) of 768 x 768 and 128 calibration inputs of 768 features, X ~ N(0, 1) and
 * X ~ Cauchy(0, 1), scheme int4_g64, GPTQ with miniquant's defaults (damp 0.01, blocks of 128,
 * no act-order). Per input distribution:
 *   - the loss tr((W - Q) H (W - Q)^T), H = X X^T / 128 (undamped), in total and per row, for
 *     RTN and GPTQ, and their ratio;
 *   - n_grid_changes: the share of weights whose GPTQ code differs from the RTN code;
 *   - the same loss on 8192 fresh inputs of the same distribution (held out): what the layer's
 *     error is on inputs it was not calibrated on;
 *   - what H looks like (share of its trace in the heaviest input columns) and how the per-row
 *     gain relates to the per-row RTN loss;
 *   - the wall time of GPTQ on the layer (Hessian, factorization, solve; median of 9 runs);
 *   - the ratios for 64 to 4096 calibration inputs (the first n of one pool);
 *   - the ratio on 10 other draws of the 128 inputs, without and with act-order (how much it
 *     depends on the draw).
 * Writes results.json, loss_curve.png (per-row loss by row, both distributions),
 * ratio_vs_samples.png and manifest.json. */
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "miniquant/fileio.h"
#include "miniquant/gptq.h"
#include "miniquant/progress.h"
#include "miniquant/report.h"
#include "miniquant/rng.h"

static const char ABOUT[] =
    "GPTQ against round to nearest on one synthetic 768 x 768 layer, W ~ N(0, 0.02^2), with 128\n"
    "calibration inputs X ~ N(0, 1) and X ~ Cauchy(0, 1), scheme int4_g64: the layer loss\n"
    "tr((W - Q) H (W - Q)^T) with H = X X^T / n, in total and per row, its ratio GPTQ / RTN, the\n"
    "share of weights GPTQ puts on another grid point than RTN, the loss on held-out inputs, the\n"
    "time per layer, and the ratio for 64 to 4096 calibration inputs.\n"
    "Writes results.json, loss_curve.png, ratio_vs_samples.png and manifest.json in DIR.\n";

enum { DIM = 768, N_CALIB = 128, N_HELD = 8192, N_POOL = 4096, TIME_RUNS = 9, N_SWEEP = 7,
       N_DRAWS = 10 };
static const int SWEEP_N[N_SWEEP] = {64, 128, 256, 512, 1024, 2048, 4096};
static const char *const DIST_NAME[2] = {"gaussian", "cauchy"};
static const char *const DIST_LABEL[2] = {"X ~ N(0, 1)", "X ~ Cauchy(0, 1)"};

typedef struct toy_case {
    double loss, loss_rtn, held, held_rtn, grid_changes;
    double *row_loss, *row_loss_rtn; /* [DIM] */
    double t_hessian, t_factor, t_solve, t_total, t_loss; /* medians, seconds */
    double trace_top1, trace_top8;    /* share of trace H in the 1 / 8 heaviest input columns */
    double row_ratio_q[5];            /* per-row GPTQ / RTN: min, p10, median, p90, max */
    double corr_rtn_gain;             /* Pearson, per row: RTN loss vs RTN - GPTQ loss */
    double corr_rtn_ratio;            /* Pearson, per row: RTN loss vs GPTQ / RTN */
    int rows_worse;                   /* rows whose GPTQ loss exceeds their RTN loss */
    double sweep_ratio[N_SWEEP], sweep_held[N_SWEEP], sweep_changes[N_SWEEP];
    /* other draws of the 128 calibration inputs: ratio without and with act-order */
    double draw_ratio[N_DRAWS], draw_ratio_act[N_DRAWS];
} toy_case_t;

/* Cauchy(0, 1) by inversion; u = 0 would be the pole. */
static float cauchy(mq_rng_t *r) {
    float u;
    do {
        u = mq_rng_uniform(r);
    } while (u == 0.0f);
    return (float)tan(M_PI * ((double)u - 0.5));
}

static void fill_inputs(mq_rng_t *r, int dist, float *X, size_t n) {
    for (size_t i = 0; i < n; i++)
        X[i] = dist ? cauchy(r) : mq_rng_normal(r);
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double pearson(const double *a, const double *b, int n) {
    double ma = 0.0, mb = 0.0;
    for (int i = 0; i < n; i++) {
        ma += a[i];
        mb += b[i];
    }
    ma /= n;
    mb /= n;
    double sab = 0.0, saa = 0.0, sbb = 0.0;
    for (int i = 0; i < n; i++) {
        sab += (a[i] - ma) * (b[i] - mb);
        saa += (a[i] - ma) * (a[i] - ma);
        sbb += (b[i] - mb) * (b[i] - mb);
    }
    return saa > 0.0 && sbb > 0.0 ? sab / sqrt(saa * sbb) : 0.0;
}

static int hessian_of(mq_gptq_hessian_t *h, const float *X, int n, mq_error_t *err) {
    int rc = mq_gptq_hessian_init(h, DIM, err);
    if (rc == MQ_OK) rc = mq_gptq_hessian_add(h, X, n, err);
    if (rc) mq_gptq_hessian_free(h);
    return rc;
}

/* The share of weights whose codes differ (the stored rows read back as codes); -1 when the
 * codes cannot be read. */
static double share_changed(const mq_qweight_t *a, const mq_qweight_t *b) {
    size_t n = (size_t)a->rows * a->cols, k = 0, ns = a->n_scales;
    int8_t *ca = malloc(n), *cb = malloc(n);
    mq_fp16_t *sa = malloc(ns * sizeof *sa), *sb = malloc(ns * sizeof *sb);
    int ok = ca && cb && sa && sb && mq_qweight_to_codes(a, ca, sa, NULL) == MQ_OK &&
             mq_qweight_to_codes(b, cb, sb, NULL) == MQ_OK;
    for (size_t i = 0; ok && i < n; i++)
        k += ca[i] != cb[i];
    free(ca);
    free(cb);
    free(sa);
    free(sb);
    return ok ? (double)k / (double)n : -1.0;
}

/* GPTQ and RTN on the first n inputs of the pool; losses on the calibration H and on held-out
 * inputs (hh); the GPTQ result is kept in res. */
static int compare(const float *W, const mq_qweight_t *rtn, const float *pool, int n,
                   const mq_gptq_hessian_t *hh, const mq_scheme_t *s, mq_gptq_result_t *res,
                   double *held, double *held_rtn, mq_error_t *err) {
    mq_gptq_hessian_t h;
    int rc = hessian_of(&h, pool, n, err);
    if (rc) return rc;
    rc = mq_gptq_quantize(W, DIM, DIM, &h, s, NULL, res, err);
    if (rc == MQ_OK) rc = mq_gptq_loss(W, &res->q, hh, NULL, held, err);
    if (rc == MQ_OK) rc = mq_gptq_loss(W, rtn, hh, NULL, held_rtn, err);
    if (rc) mq_gptq_result_free(res);
    mq_gptq_hessian_free(&h);
    return rc;
}

static int run_case(const float *W, const mq_qweight_t *rtn, int dist, mq_rng_t *rng,
                    const mq_scheme_t *s, toy_case_t *tc, mq_error_t *err) {
    memset(tc, 0, sizeof *tc);
    float *pool = malloc((size_t)N_POOL * DIM * sizeof *pool);
    float *held = malloc((size_t)N_HELD * DIM * sizeof *held);
    tc->row_loss = malloc(DIM * sizeof *tc->row_loss);
    tc->row_loss_rtn = malloc(DIM * sizeof *tc->row_loss_rtn);
    double *ratio = malloc(DIM * sizeof *ratio), *gain = malloc(DIM * sizeof *gain);
    double *diag = malloc(DIM * sizeof *diag);
    int rc = MQ_OK;
    if (!pool || !held || !tc->row_loss || !tc->row_loss_rtn || !ratio || !gain || !diag) {
        rc = mq_error_set(err, MQ_ERR_NOMEM, "gptq-toy: out of memory");
        goto done;
    }
    /* the calibration inputs are the first N_CALIB of the pool */
    fill_inputs(rng, dist, pool, (size_t)N_POOL * DIM);
    fill_inputs(rng, dist, held, (size_t)N_HELD * DIM);
    mq_gptq_hessian_t hh;
    if ((rc = hessian_of(&hh, held, N_HELD, err))) goto done;

    /* time per layer: Hessian, factorization and solve, without the report-only losses */
    double th[TIME_RUNS], tf[TIME_RUNS], ts[TIME_RUNS], tt[TIME_RUNS];
    mq_gptq_opts_t o;
    mq_gptq_opts_default(&o);
    o.losses = 0;
    for (int k = 0; k < TIME_RUNS && rc == MQ_OK; k++) {
        mq_gptq_hessian_t h;
        mq_gptq_result_t res;
        double t0 = mq_now();
        rc = hessian_of(&h, pool, N_CALIB, err);
        if (rc) break;
        double t1 = mq_now();
        rc = mq_gptq_quantize(W, DIM, DIM, &h, s, &o, &res, err);
        if (rc == MQ_OK) {
            th[k] = t1 - t0;
            tf[k] = res.t_factor;
            ts[k] = res.t_solve;
            tt[k] = th[k] + tf[k] + ts[k];
        }
        mq_gptq_result_free(&res);
        mq_gptq_hessian_free(&h);
    }
    if (rc) goto done_hh;
    tc->t_hessian = mq_median(th, TIME_RUNS);
    tc->t_factor = mq_median(tf, TIME_RUNS);
    tc->t_solve = mq_median(ts, TIME_RUNS);
    tc->t_total = mq_median(tt, TIME_RUNS);

    mq_gptq_result_t res;
    if ((rc = compare(W, rtn, pool, N_CALIB, &hh, s, &res, &tc->held, &tc->held_rtn, err)))
        goto done_hh;
    tc->loss = res.loss;
    tc->loss_rtn = res.loss_rtn;
    tc->t_loss = res.t_loss;
    tc->grid_changes = share_changed(&res.q, rtn);
    memcpy(tc->row_loss, res.row_loss, DIM * sizeof *tc->row_loss);
    memcpy(tc->row_loss_rtn, res.row_loss_rtn, DIM * sizeof *tc->row_loss_rtn);
    mq_gptq_result_free(&res);

    for (int i = 0; i < DIM; i++) {
        ratio[i] = tc->row_loss[i] / tc->row_loss_rtn[i];
        gain[i] = tc->row_loss_rtn[i] - tc->row_loss[i];
        tc->rows_worse += gain[i] < 0.0;
    }
    tc->corr_rtn_gain = pearson(tc->row_loss_rtn, gain, DIM);
    tc->corr_rtn_ratio = pearson(tc->row_loss_rtn, ratio, DIM);
    qsort(ratio, DIM, sizeof *ratio, cmp_double);
    tc->row_ratio_q[0] = ratio[0];
    tc->row_ratio_q[1] = ratio[DIM / 10];
    tc->row_ratio_q[2] = 0.5 * (ratio[DIM / 2 - 1] + ratio[DIM / 2]);
    tc->row_ratio_q[3] = ratio[DIM - 1 - DIM / 10];
    tc->row_ratio_q[4] = ratio[DIM - 1];

    {
        mq_gptq_hessian_t h;
        if ((rc = hessian_of(&h, pool, N_CALIB, err))) goto done_hh;
        double tr = 0.0;
        for (int i = 0; i < DIM; i++)
            tr += diag[i] = h.sum[(size_t)i * DIM + i];
        qsort(diag, DIM, sizeof *diag, cmp_double);
        double top8 = 0.0;
        for (int i = 0; i < 8; i++)
            top8 += diag[DIM - 1 - i];
        tc->trace_top1 = diag[DIM - 1] / tr;
        tc->trace_top8 = top8 / tr;
        mq_gptq_hessian_free(&h);
    }

    for (int k = 0; k < N_SWEEP && rc == MQ_OK; k++) {
        double hg, hr;
        rc = compare(W, rtn, pool, SWEEP_N[k], &hh, s, &res, &hg, &hr, err);
        if (rc) break;
        tc->sweep_ratio[k] = res.loss / res.loss_rtn;
        tc->sweep_held[k] = hg / hr;
        tc->sweep_changes[k] = share_changed(&res.q, rtn);
        mq_gptq_result_free(&res);
    }
    float *X = pool; /* the pool is no longer needed: its first rows take each draw */
    for (int k = 0; k < N_DRAWS && rc == MQ_OK; k++) {
        fill_inputs(rng, dist, X, (size_t)N_CALIB * DIM);
        mq_gptq_hessian_t h;
        if ((rc = hessian_of(&h, X, N_CALIB, err))) break;
        for (int act = 0; act < 2 && rc == MQ_OK; act++) {
            mq_gptq_opts_default(&o);
            o.act_order = act;
            rc = mq_gptq_quantize(W, DIM, DIM, &h, s, &o, &res, err);
            if (rc == MQ_OK) (act ? tc->draw_ratio_act : tc->draw_ratio)[k] = res.loss / res.loss_rtn;
            mq_gptq_result_free(&res);
        }
        mq_gptq_hessian_free(&h);
    }
done_hh:
    mq_gptq_hessian_free(&hh);
done:
    free(pool);
    free(held);
    free(ratio);
    free(gain);
    free(diag);
    return rc;
}

static void toy_case_free(toy_case_t *tc) {
    free(tc->row_loss);
    free(tc->row_loss_rtn);
    tc->row_loss = tc->row_loss_rtn = NULL;
}

static cJSON *case_json(const toy_case_t *tc) {
    cJSON *o = cJSON_CreateObject();
    cJSON *l = cJSON_AddObjectToObject(o, "loss");
    cJSON_AddNumberToObject(l, "rtn", tc->loss_rtn);
    cJSON_AddNumberToObject(l, "gptq", tc->loss);
    cJSON_AddNumberToObject(l, "ratio", tc->loss / tc->loss_rtn);
    cJSON_AddNumberToObject(o, "ratio", tc->loss / tc->loss_rtn);
    cJSON_AddNumberToObject(o, "n_grid_changes", tc->grid_changes);
    cJSON *hl = cJSON_AddObjectToObject(o, "held_out_loss");
    cJSON_AddNumberToObject(hl, "inputs", N_HELD);
    cJSON_AddNumberToObject(hl, "rtn", tc->held_rtn);
    cJSON_AddNumberToObject(hl, "gptq", tc->held);
    cJSON_AddNumberToObject(hl, "ratio", tc->held / tc->held_rtn);
    cJSON *pr = cJSON_AddObjectToObject(o, "per_row");
    static const char *const qn[5] = {"min", "p10", "median", "p90", "max"};
    cJSON *rq = cJSON_AddObjectToObject(pr, "ratio_quantiles");
    for (int i = 0; i < 5; i++)
        cJSON_AddNumberToObject(rq, qn[i], tc->row_ratio_q[i]);
    cJSON_AddNumberToObject(pr, "rows_worse_than_rtn", tc->rows_worse);
    cJSON_AddNumberToObject(pr, "corr_rtn_loss_vs_gain", tc->corr_rtn_gain);
    cJSON_AddNumberToObject(pr, "corr_rtn_loss_vs_ratio", tc->corr_rtn_ratio);
    cJSON *a = cJSON_AddArrayToObject(pr, "rtn");
    cJSON *b = cJSON_AddArrayToObject(pr, "gptq");
    for (int i = 0; i < DIM; i++) {
        cJSON_AddItemToArray(a, cJSON_CreateNumber(tc->row_loss_rtn[i]));
        cJSON_AddItemToArray(b, cJSON_CreateNumber(tc->row_loss[i]));
    }
    cJSON *hs = cJSON_AddObjectToObject(o, "hessian");
    cJSON_AddNumberToObject(hs, "trace_share_top1_column", tc->trace_top1);
    cJSON_AddNumberToObject(hs, "trace_share_top8_columns", tc->trace_top8);
    cJSON *t = cJSON_AddObjectToObject(o, "time_ms");
    cJSON_AddStringToObject(t, "note", "one layer, median of 9 runs; total = hessian + factor + "
                                       "solve; losses (RTN comparison, reports only) apart");
    cJSON_AddNumberToObject(t, "hessian", 1e3 * tc->t_hessian);
    cJSON_AddNumberToObject(t, "factor", 1e3 * tc->t_factor);
    cJSON_AddNumberToObject(t, "solve", 1e3 * tc->t_solve);
    cJSON_AddNumberToObject(t, "total", 1e3 * tc->t_total);
    cJSON_AddNumberToObject(t, "losses", 1e3 * tc->t_loss);
    cJSON *sw = cJSON_AddArrayToObject(o, "calibration_size_sweep");
    for (int k = 0; k < N_SWEEP; k++) {
        cJSON *e = cJSON_CreateObject();
        cJSON_AddNumberToObject(e, "n", SWEEP_N[k]);
        cJSON_AddNumberToObject(e, "ratio", tc->sweep_ratio[k]);
        cJSON_AddNumberToObject(e, "held_out_ratio", tc->sweep_held[k]);
        cJSON_AddNumberToObject(e, "n_grid_changes", tc->sweep_changes[k]);
        cJSON_AddItemToArray(sw, e);
    }
    cJSON *dr = cJSON_AddObjectToObject(o, "other_draws");
    cJSON_AddStringToObject(dr, "note", "the same W, 10 other draws of the 128 calibration "
                                        "inputs: loss ratio GPTQ / RTN");
    cJSON *d0 = cJSON_AddArrayToObject(dr, "ratio");
    cJSON *d1 = cJSON_AddArrayToObject(dr, "ratio_act_order");
    for (int k = 0; k < N_DRAWS; k++) {
        cJSON_AddItemToArray(d0, cJSON_CreateNumber(tc->draw_ratio[k]));
        cJSON_AddItemToArray(d1, cJSON_CreateNumber(tc->draw_ratio_act[k]));
    }
    return o;
}

/* Per-row loss by row index, RTN against GPTQ, one panel per input distribution (log y: the
 * two differ by an order of magnitude on Gaussian inputs). */
static int plot_rows(const char *png, const toy_case_t *tc, mq_error_t *err) {
    mq_strbuf_t s = {0};
    for (int d = 0; d < 2; d++) {
        mq_strbuf_printf(&s, "$%s << EOD\n", DIST_NAME[d]);
        for (int i = 0; i < DIM; i++)
            mq_strbuf_printf(&s, "%d %.6g %.6g\n", i, tc[d].row_loss_rtn[i], tc[d].row_loss[i]);
        mq_strbuf_printf(&s, "EOD\n");
    }
    mq_strbuf_printf(&s, "set multiplot layout 2,1 title \"GPTQ vs round to nearest (RTN) on "
                         "one 768 x 768 layer: int4_g64, W ~ N(0, 0.02²), 128 calibration "
                         "inputs\" font ',13'\n"
                         "set logscale y\nset format y '%%g'\nset mytics 10\n"
                         "set grid ytics mytics lc rgb '#e0e0e0', lc rgb '#f0f0f0'\n"
                         "set xrange [0:%d]\nset key top right opaque box\n"
                         "set xlabel 'output row r of W (index)'\n"
                         "set ylabel \"loss of row r: e H eᵀ, e = W[r] − Q[r]\\n"
                         "(mean squared error of output r, log scale)\"\n",
                     DIM - 1);
    for (int d = 0; d < 2; d++) {
        double r = tc[d].loss / tc[d].loss_rtn;
        mq_strbuf_printf(&s,
                         "set title \"%s: total loss GPTQ / RTN = %.3f; GPTQ puts %.1f%% of the "
                         "weights on another grid point than RTN\"\n"
                         "plot $%s using 1:2 with points pt 7 ps 0.4 lc rgb '#d62728' "
                         "title sprintf('RTN    total %%.4g', %.6g), \\\n"
                         "     $%s using 1:3 with points pt 7 ps 0.4 lc rgb '#1f77b4' "
                         "title sprintf('GPTQ  total %%.4g', %.6g)\n",
                         DIST_LABEL[d], r, 100.0 * tc[d].grid_changes, DIST_NAME[d],
                         tc[d].loss_rtn, DIST_NAME[d], tc[d].loss);
    }
    mq_strbuf_printf(&s, "unset multiplot\n");
    int rc = s.oom ? mq_error_set(err, MQ_ERR_NOMEM, "out of memory")
                   : mq_plot_png(png, 1200, 1000, s.s, err);
    mq_strbuf_free(&s);
    return rc;
}

/* Loss ratio GPTQ / RTN against the number of calibration inputs, on the calibration inputs
 * and on held-out ones. */
static int plot_sweep(const char *png, const toy_case_t *tc, mq_error_t *err) {
    mq_strbuf_t s = {0};
    mq_strbuf_printf(&s, "$d << EOD\n");
    for (int k = 0; k < N_SWEEP; k++)
        mq_strbuf_printf(&s, "%d %.6g %.6g %.6g %.6g\n", SWEEP_N[k], tc[0].sweep_ratio[k],
                         tc[0].sweep_held[k], tc[1].sweep_ratio[k], tc[1].sweep_held[k]);
    mq_strbuf_printf(&s, "EOD\n");
    mq_strbuf_printf(
        &s,
        "set title \"GPTQ / RTN layer loss against the number of calibration inputs\\n(768 x 768 "
        "layer, int4_g64; held out: %d fresh inputs of the same distribution)\"\n"
        "set logscale xy\nset format y '%%g'\nset xrange [48:5500]\n"
        "set xtics (64, 128, 256, 512, 768, 1024, 2048, 4096)\n"
        "set xlabel 'calibration inputs n (the layer has 768 inputs)'\n"
        "set ylabel 'loss ratio GPTQ / RTN (below 1: GPTQ better)'\n"
        "set grid xtics ytics mytics lc rgb '#dddddd'\nset key bottom right opaque box\n"
        "set arrow from 64,1 to 4096,1 nohead dt 2 lc rgb '#444444'\n"
        "set arrow from 768,graph 0 to 768,graph 1 nohead dt 3 lc rgb '#888888'\n"
        "plot $d using 1:2 with linespoints pt 7 lc rgb '#1f77b4' title 'N(0,1): calibration "
        "inputs', \\\n"
        "     $d using 1:3 with linespoints pt 6 dt 2 lc rgb '#1f77b4' title 'N(0,1): held out', "
        "\\\n"
        "     $d using 1:4 with linespoints pt 5 lc rgb '#ff7f0e' title 'Cauchy: calibration "
        "inputs', \\\n"
        "     $d using 1:5 with linespoints pt 4 dt 2 lc rgb '#ff7f0e' title 'Cauchy: held out'\n",
        N_HELD);
    int rc = s.oom ? mq_error_set(err, MQ_ERR_NOMEM, "out of memory")
                   : mq_plot_png(png, 1000, 650, s.s, err);
    mq_strbuf_free(&s);
    return rc;
}

static int write_outputs(const char *dir, uint64_t seed, const mq_scheme_t *s,
                         const toy_case_t *tc, mq_error_t *err) {
    char path[4200], date[32];
    mq_utc_now(date, sizeof date);
    mq_gptq_opts_t o;
    mq_gptq_opts_default(&o);
    cJSON *root = cJSON_CreateObject();
    cJSON_AddStringToObject(root, "experiment", "26-gptq-toy");
    cJSON_AddStringToObject(root, "date", date);
    cJSON_AddNumberToObject(root, "seed", (double)seed);
    cJSON_AddStringToObject(root, "scheme", s->name);
    cJSON_AddStringToObject(root, "weight", "768 x 768, N(0, 0.02^2)");
    cJSON_AddNumberToObject(root, "calibration_inputs", N_CALIB);
    cJSON_AddStringToObject(root, "loss",
                            "tr((W - Q) H (W - Q)^T), H = X X^T / n undamped: the mean over the "
                            "inputs of the squared output error ||(W - Q) x||^2");
    cJSON_AddNumberToObject(root, "threads", omp_get_max_threads());
    for (int d = 0; d < 2; d++)
        cJSON_AddItemToObject(root, DIST_NAME[d], case_json(&tc[d]));
    snprintf(path, sizeof path, "%s/results.json", dir);
    int rc = mq_json_write(path, root, err);
    cJSON_Delete(root);
    if (rc == MQ_OK) {
        snprintf(path, sizeof path, "%s/loss_curve.png", dir);
        rc = plot_rows(path, tc, err);
    }
    if (rc == MQ_OK) {
        snprintf(path, sizeof path, "%s/ratio_vs_samples.png", dir);
        rc = plot_sweep(path, tc, err);
    }
    if (rc == MQ_OK) {
        cJSON *cfg = cJSON_CreateObject();
        cJSON_AddStringToObject(cfg, "command", "miniquant gptq-toy");
        cJSON_AddStringToObject(cfg, "scheme", s->name);
        cJSON_AddNumberToObject(cfg, "rows", DIM);
        cJSON_AddNumberToObject(cfg, "cols", DIM);
        cJSON_AddNumberToObject(cfg, "weight_std", 0.02);
        cJSON_AddNumberToObject(cfg, "calibration_inputs", N_CALIB);
        cJSON_AddNumberToObject(cfg, "held_out_inputs", N_HELD);
        cJSON_AddNumberToObject(cfg, "damp", o.damp);
        cJSON_AddNumberToObject(cfg, "block", o.block);
        cJSON_AddBoolToObject(cfg, "act_order", o.act_order);
        cJSON_AddBoolToObject(cfg, "static_groups", o.static_groups);
        cJSON_AddNumberToObject(cfg, "timing_runs", TIME_RUNS);
        cJSON *man = mq_manifest(seed, cfg);
        snprintf(path, sizeof path, "%s/manifest.json", dir);
        rc = mq_json_write(path, man, err);
        cJSON_Delete(man);
    }
    return rc;
}

int cmd_gptq_toy(int argc, char **argv) {
    const char *dir = NULL;
    long seed = 0;
    cli_option_t opts[] = {
        {.name = "out", .arg = "DIR", .str = &dir, .def = "experiments/26-gptq-toy",
         .help = "the experiment directory"},
        {CLI_OPT_SEED(&seed, "random seed of W and X"), .def = "26"},
        {0},
    };
    const cli_command_t cmd = {.name = "gptq-toy", .about = ABOUT, .opts = opts};
    int prc = cli_parse(&cmd, argc, argv, NULL);
    if (prc != CLI_CONTINUE) return prc;

    mq_error_t err = {0};
    mq_scheme_t s;
    if (mq_scheme_parse("int4_g64", &s, &err) || mq_mkdir_p(dir, &err)) return cli_fail(&err);
    mq_rng_t rng;
    mq_rng_seed(&rng, (uint64_t)seed);
    float *W = malloc((size_t)DIM * DIM * sizeof *W);
    if (!W) {
        mq_error_set(&err, MQ_ERR_NOMEM, "gptq-toy: out of memory");
        return cli_fail(&err);
    }
    for (size_t i = 0; i < (size_t)DIM * DIM; i++)
        W[i] = 0.02f * mq_rng_normal(&rng);
    mq_qweight_t rtn;
    toy_case_t tc[2];
    memset(tc, 0, sizeof tc);
    int rc = mq_qweight_quantize(&rtn, &s, W, DIM, DIM, &err);
    for (int d = 0; d < 2 && rc == MQ_OK; d++) {
        fprintf(stderr, "gptq-toy: %s inputs\n", DIST_NAME[d]);
        /* each distribution its own stream, so either can be changed without moving the other */
        uint64_t key[2] = {(uint64_t)seed, (uint64_t)d + 1};
        mq_rng_t xr;
        mq_rng_seed(&xr, mq_hash64(key, sizeof key));
        rc = run_case(W, &rtn, d, &xr, &s, &tc[d], &err);
    }
    if (rc == MQ_OK) rc = write_outputs(dir, (uint64_t)seed, &s, tc, &err);
    if (rc == MQ_OK) {
        printf("%-9s %12s %12s %8s %9s %10s %10s %10s\n", "inputs", "RTN loss", "GPTQ loss",
               "ratio", "changed", "held-out", "ms/layer", "(+losses)");
        for (int d = 0; d < 2; d++)
            printf("%-9s %12.5g %12.5g %8.4f %8.2f%% %10.4f %10.2f %10.2f\n", DIST_NAME[d],
                   tc[d].loss_rtn, tc[d].loss, tc[d].loss / tc[d].loss_rtn,
                   100.0 * tc[d].grid_changes, tc[d].held / tc[d].held_rtn, 1e3 * tc[d].t_total,
                   1e3 * tc[d].t_loss);
        printf("wrote %s/{results.json,loss_curve.png,ratio_vs_samples.png,manifest.json}\n",
               dir);
    }
    mq_qweight_free(&rtn);
    for (int d = 0; d < 2; d++)
        toy_case_free(&tc[d]);
    free(W);
    return rc ? cli_fail(&err) : 0;
}
