/* miniquant sweep: every scheme measured on the same splits, the Pareto curve of size against
 * perplexity, and the verb-tense accuracy of each scheme. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "measure.h"
#include "miniquant/arch.h"
#include "miniquant/fileio.h"
#include "miniquant/progress.h"
#include "miniquant/report.h"

static const char ABOUT[] =
    "Measures every scheme on the same deterministic splits: test perplexity (default\n"
    "protocol) and its gap to fp32, verb-tense accuracy with its 95% interval, bytes in memory\n"
    "(the lab's accounting: codes as int8, scales included), bytes of the GGUF file that\n"
    "'miniquant export' writes, bits per Linear weight. GPTQ schemes are calibrated on 128\n"
    "sequences of the valid split. fp32 is always measured, first, as the baseline.\n"
    "Writes DIR/results.json, DIR/pareto.png (GGUF size against perplexity, the Pareto\n"
    "frontier drawn), DIR/verb_tense_accuracy.png and DIR/manifest.json; prints a table.\n";

#define MAX_SCHEMES 64

static double gap_pct(const cli_measure_t *r, const cli_measure_t *base) {
    return 100 * (r->ppl.ppl - base->ppl.ppl) / base->ppl.ppl;
}

/* on[i] = 1 when no other scheme is at most as large and at most as perplexed, and strictly
 * better in one of the two (size: the GGUF file). */
static void pareto_frontier(const cli_measure_t *r, int n, int *on) {
    for (int i = 0; i < n; i++) {
        on[i] = 1;
        for (int j = 0; j < n && on[i]; j++) {
            if (j == i) continue;
            int le = r[j].gguf.file <= r[i].gguf.file && r[j].ppl.ppl <= r[i].ppl.ppl;
            int lt = r[j].gguf.file < r[i].gguf.file || r[j].ppl.ppl < r[i].ppl.ppl;
            if (le && lt) on[i] = 0;
        }
    }
}

/* The y of a scheme on the Pareto plot: its perplexity gap to fp32 (res[0]) in percent, drawn on
 * a log scale, a gap at or below GAP_FLOOR at the floor (fp32 itself, fp16, the best INT8). */
#define GAP_FLOOR 1e-3
static double plot_gap(const cli_measure_t *r, const cli_measure_t *base) {
    return fmax(gap_pct(r, base), GAP_FLOOR);
}

/* pareto.png: x the GGUF file size (MB, log scale), y the perplexity gap to fp32 (%, log
 * scale); a labelled dot per scheme, filled on the frontier; the frontier as the staircase of
 * what can be reached. */
static int plot_pareto(const char *png, const cli_measure_t *r, int n, const int *on,
                       const char *title, mq_error_t *err) {
    enum { W = 1100, H = 680 };
    const double L = 0.09, R = 0.97, B = 0.11, T = 0.88; /* the plot area, screen fractions */
    double xmin = INFINITY, xmax = 0, ymin = INFINITY, ymax = -INFINITY;
    for (int i = 0; i < n; i++) {
        double x = r[i].gguf.file / 1e6;
        xmin = fmin(xmin, x), xmax = fmax(xmax, x);
        ymin = fmin(ymin, plot_gap(&r[i], r)), ymax = fmax(ymax, plot_gap(&r[i], r));
    }
    xmin /= 1.35, xmax *= 1.6, ymin /= 2.5, ymax *= 4;
    /* label boxes in graph fractions, from the font's size in pixels */
    enum { MAX_PTS = MAX_SCHEMES + 2 * MAX_SCHEMES * 101 };
    static double px[MAX_PTS], py[MAX_PTS];
    double w[MAX_SCHEMES], h[MAX_SCHEMES], lx[MAX_SCHEMES], ly[MAX_SCHEMES];
    int moved[MAX_SCHEMES];
    char text[MAX_SCHEMES][96];
    for (int i = 0; i < n; i++) {
        if (i == 0) snprintf(text[i], sizeof text[i], "%.40s%s", r[i].scheme.name,
                             r[i].skip_lm_head ? " (lm_head FP32)" : "");
        else snprintf(text[i], sizeof text[i], "%.40s%s %+.2f%%", r[i].scheme.name,
                      r[i].skip_lm_head ? " (lm_head FP32)" : "", gap_pct(&r[i], &r[0]));
        px[i] = log(r[i].gguf.file / 1e6 / xmin) / log(xmax / xmin);
        py[i] = log(plot_gap(&r[i], r) / ymin) / log(ymax / ymin);
        w[i] = (strlen(text[i]) * 6.9 + 6) / ((R - L) * W);
        h[i] = 17.0 / ((T - B) * H);
    }
    /* frontier points by size; each step holds its perplexity until the next point */
    int order[MAX_SCHEMES], nf = 0;
    for (int i = 0; i < n; i++)
        if (on[i]) order[nf++] = i;
    for (int a = 1; a < nf; a++)
        for (int b = a; b > 0 && r[order[b]].gguf.file < r[order[b - 1]].gguf.file; b--) {
            int t = order[b];
            order[b] = order[b - 1];
            order[b - 1] = t;
        }
    /* the staircase is an obstacle for the labels: samples along each step */
    int np = n;
    for (int k = 0; k < nf; k++) {
        double x0 = px[order[k]], y0 = py[order[k]], x1 = k + 1 < nf ? px[order[k + 1]] : 1,
               y1 = k + 1 < nf ? py[order[k + 1]] : y0;
        for (int t = 0; t <= 100; t++) px[np] = x0 + (x1 - x0) * t / 100.0, py[np++] = y0;
        for (int t = 0; t <= 100; t++) px[np] = x1, py[np++] = y0 + (y1 - y0) * t / 100.0;
    }
    mq_plot_place_labels(n, np, px, py, w, h, lx, ly, moved);

    mq_strbuf_t s = {0};
    mq_strbuf_printf(&s, "$pts << EOD\n");
    for (int i = 0; i < n; i++)
        mq_strbuf_printf(&s, "%.6f %.8g %d\n", r[i].gguf.file / 1e6, plot_gap(&r[i], r), on[i]);
    mq_strbuf_printf(&s, "EOD\n$front << EOD\n");
    for (int k = 0; k < nf; k++)
        mq_strbuf_printf(&s, "%.6f %.8g\n", r[order[k]].gguf.file / 1e6,
                         plot_gap(&r[order[k]], r));
    if (nf) mq_strbuf_printf(&s, "%.6f %.8g\n", xmax, plot_gap(&r[order[nf - 1]], r));
    mq_strbuf_printf(&s, "EOD\n");
    mq_strbuf_printf(&s,
                     "set title \"%s\"\n"
                     "set lmargin at screen %.2f\nset rmargin at screen %.2f\n"
                     "set bmargin at screen %.2f\nset tmargin at screen %.2f\n"
                     "set logscale xy\nset xrange [%.6f:%.6f]\nset yrange [%.8g:%.8g]\n"
                     "set format y '%%g'\n"
                     "set xlabel 'GGUF file size (MB = 10^6 bytes, log scale)'\n"
                     "set ylabel 'test perplexity gap to fp32 (%%, log scale; at or below "
                     "%g%%: drawn at it)'\n"
                     "set grid xtics ytics mxtics lc rgb '#dddddd'\nset mxtics 10\n"
                     "set xtics (2, 3, 4, 5, 6, 8, 10, 15, 20, 30, 50)\n"
                     "set key top right box opaque\n"
                     "set style textbox opaque noborder margins 1,1\n",
                     title, L, R, B, T, xmin, xmax, ymin, ymax, GAP_FLOOR);
    for (int i = 0; i < n; i++) {
        mq_strbuf_printf(&s, "set label %d \"%s\" at graph %.4f,%.4f left font ',10' boxed front\n", i + 1,
                         text[i], lx[i], ly[i]);
        if (moved[i]) {
            double ax = lx[i] < px[i] ? lx[i] + w[i] : lx[i];
            mq_strbuf_printf(&s,
                             "set arrow %d from graph %.4f,%.4f to graph %.4f,%.4f nohead "
                             "lc rgb '#888888' lw 0.6\n",
                             i + 1, ax, ly[i], px[i], py[i]);
        }
    }
    mq_strbuf_printf(&s,
                     "plot $front using 1:2 with steps lc rgb '#d62728' lw 1.5 dt 2 "
                     "title 'Pareto frontier (what a size can reach)', \\\n"
                     "     $pts using 1:($3 == 1 ? $2 : NaN) with points pt 7 ps 1.5 "
                     "lc rgb '#d62728' title 'on the frontier', \\\n"
                     "     $pts using 1:($3 == 0 ? $2 : NaN) with points pt 6 ps 1.5 lw 1.5 "
                     "lc rgb '#4c72b0' title 'dominated (another scheme is smaller and "
                     "better)'\n");
    int rc = s.oom ? mq_error_set(err, MQ_ERR_NOMEM, "out of memory")
                   : mq_plot_png(png, W, H, s.s, err);
    mq_strbuf_free(&s);
    return rc;
}

/* The accuracy of r over all items (k = 0) or the items of category k - 1. */
static const mq_mp_tally_t *task_tally(const cli_measure_t *r, int k, mq_mp_tally_t *all) {
    if (k > 0) return &r->verb.by_category[k - 1];
    *all = (mq_mp_tally_t){r->verb.n, r->verb.correct, r->verb.accuracy, r->verb.ci_low,
                           r->verb.ci_high, r->verb.chance};
    return all;
}

/* verb_tense_accuracy.png: one panel for all items and one per category, accuracy against
 * the file's bits per weight, round to nearest and GPTQ apart; a filled mark is a drop against
 * fp32 that McNemar's test finds significant (and is labelled), fp32 and chance drawn as
 * lines. */
static int plot_verbs(const char *png, const cli_measure_t *r, int n, const char *title,
                      mq_error_t *err) {
    mq_strbuf_t s = {0};
    mq_strbuf_printf(&s, "set multiplot layout 2,3 title \"%s\" font ',13'\n", title);
    int panels = 0;
    for (int k = 0; k <= MQ_VT_NUM_CATEGORIES; k++) {
        mq_mp_tally_t all;
        const mq_mp_tally_t *base = task_tally(&r[0], k, &all);
        if (base->n == 0) continue;
        panels++;
        double lo = 100 * base->chance;
        int n_sig = 0;
        mq_strbuf_printf(&s, "$d%d << EOD\n", k);
        for (int i = 1; i < n; i++) {
            const mq_mp_tally_t *t = task_tally(&r[i], k, &all);
            lo = fmin(lo, 100 * t->accuracy);
            n_sig += r[i].drop_significant[k] > 0;
            mq_strbuf_printf(&s, "%.5f %.4f %d %d\n", r[i].gguf.bits_per_weight,
                             100 * t->accuracy, r[i].drop_significant[k] > 0, r[i].scheme.gptq);
        }
        /* the labelled points apart: gnuplot fails on a label plot with no point */
        mq_strbuf_printf(&s, "EOD\n$s%d << EOD\n", k);
        for (int i = 1; i < n; i++)
            if (r[i].drop_significant[k] > 0)
                mq_strbuf_printf(&s, "%.5f %.4f \"%.40s\"\n", r[i].gguf.bits_per_weight,
                                 100 * task_tally(&r[i], k, &all)->accuracy, r[i].scheme.name);
        mq_strbuf_printf(&s, "EOD\n");
        char labels[128] = "";
        if (n_sig)
            snprintf(labels, sizeof labels,
                     ", \\\n     $s%d using 1:2:3 with labels left offset 0.6,0 font ',7' notitle",
                     k);
        base = task_tally(&r[0], k, &all);
        mq_strbuf_printf(
            &s,
            "set title \"%s: %zu items, chance %.1f%%\"\n"
            "set logscale x\nset xrange [1.8:40]\nset xtics (2, 3, 4, 5, 6, 8, 16, 32)\n"
            "set xlabel 'bits per weight (GGUF file, log scale)'\n"
            "set ylabel 'accuracy (%%)'\nset yrange [%.0f:100]\nset grid xtics ytics\n"
            "set key %s bottom right box opaque font ',8'\n"
            "plot %.4f with lines dt 2 lc rgb 'black' title 'fp32 %.2f%%', \\\n"
            "     %.4f with lines dt 3 lc rgb '#888888' title 'chance', \\\n"
            "     $d%d using 1:(($4 == 0 && $3 == 0) ? $2 : NaN) with points pt 6 ps 1.2 "
            "lc rgb '#4c72b0' title 'round to nearest', \\\n"
            "     $d%d using 1:(($4 == 0 && $3 == 1) ? $2 : NaN) with points pt 7 ps 1.2 "
            "lc rgb '#4c72b0' title 'round to nearest, significant drop', \\\n"
            "     $d%d using 1:(($4 == 1 && $3 == 0) ? $2 : NaN) with points pt 8 ps 1.2 "
            "lc rgb '#d62728' title 'GPTQ', \\\n"
            "     $d%d using 1:(($4 == 1 && $3 == 1) ? $2 : NaN) with points pt 9 ps 1.2 "
            "lc rgb '#d62728' title 'GPTQ, significant drop'%s\n",
            k ? mq_vt_category_name(k - 1) : "all items", base->n, 100 * base->chance,
            fmax(0, 5 * floor((lo - 3) / 5)), panels == 1 ? "on" : "off",
            100 * base->accuracy, 100 * base->accuracy, 100 * base->chance, k, k, k, k, labels);
    }
    mq_strbuf_printf(&s, "unset multiplot\n");
    int rc = s.oom ? mq_error_set(err, MQ_ERR_NOMEM, "out of memory")
                   : mq_plot_png(png, 1500, 900, s.s, err);
    mq_strbuf_free(&s);
    return rc;
}

/* Both plots of a sweep; res[0] is fp32. */
static int sweep_plots(const char *dir, const cli_measure_t *res, int n, const char *model_name,
                       size_t test_tokens, size_t verb_items, int skip, mq_error_t *err) {
    int on[MAX_SCHEMES];
    pareto_frontier(res, n, on);
    char path[4200], title[256];
    snprintf(title, sizeof title,
             "%s: file size against the perplexity gap to fp32, one dot per scheme (%zu test "
             "tokens)%s",
             model_name, test_tokens, skip ? ", lm_head FP32" : "");
    snprintf(path, sizeof path, "%s/pareto.png", dir);
    int rc = plot_pareto(path, res, n, on, title, err);
    if (rc) return rc;
    snprintf(title, sizeof title,
             "%s: verb-tense accuracy against bits per weight (%zu minimal pairs; filled: a "
             "significant drop against fp32, McNemar p < 0.05)",
             model_name, verb_items);
    snprintf(path, sizeof path, "%s/verb_tense_accuracy.png", dir);
    return plot_verbs(path, res, n, title, err);
}

/* A sweep as its results.json holds it: per scheme what the plots draw. */
typedef struct sweep_read {
    cli_measure_t res[MAX_SCHEMES];
    int n, skip;
    char model_name[80];
    size_t test_tokens, verb_items;
} sweep_read_t;

/* The verb-tense figures of a scheme's results (its "verb_tense" object) that the task plot
 * draws: over all items and per category, accuracy, chance, items, and whether the drop is
 * significant; what the object lacks stays 0 (-1 for significance). */
static void read_task(const cJSON *vt, cli_measure_t *m) {
    for (int k = 0; k <= MQ_VT_NUM_CATEGORIES; k++) {
        const cJSON *o = k ? cJSON_GetObjectItem(cJSON_GetObjectItem(vt, "categories"),
                                                 mq_vt_category_name(k - 1))
                           : vt;
        const cJSON *sig = cJSON_GetObjectItem(o, "drop_significant");
        m->drop_significant[k] = cJSON_IsBool(sig) ? (int8_t)cJSON_IsTrue(sig) : -1;
        double items = cJSON_GetNumberValue(cJSON_GetObjectItem(o, "items")),
               chance = cJSON_GetNumberValue(cJSON_GetObjectItem(o, "chance")),
               acc = cJSON_GetNumberValue(cJSON_GetObjectItem(o, "accuracy"));
        size_t n = items >= 1 && items < 1e12 ? (size_t)items : 0;
        chance = isfinite(chance) ? chance : 0;
        if (k == 0) {
            m->verb.n = n;
            m->verb.chance = chance;
        } else if (n && isfinite(acc)) {
            m->verb.by_category[k - 1] = (mq_mp_tally_t){.n = n, .accuracy = acc, .chance = chance};
        }
    }
}

static int sweep_read(const char *dir, sweep_read_t *r, mq_error_t *err) {
    memset(r, 0, sizeof *r);
    char path[4200];
    snprintf(path, sizeof path, "%s/results.json", dir);
    cJSON *root;
    int rc = mq_json_read(path, &root, err);
    if (rc) return rc;
    const cJSON *arr = cJSON_GetObjectItem(root, "schemes"), *it;
    const cJSON *ev = cJSON_GetObjectItem(root, "evaluation");
    cJSON_ArrayForEach(it, arr) {
        const cJSON *name = cJSON_GetObjectItem(it, "scheme"),
                    *vt = cJSON_GetObjectItem(it, "verb_tense");
        /* the numbers the plots draw: three of the scheme's, three of its verb_tense object */
        const cJSON *src[6] = {it, it, it, vt, vt, vt};
        static const char *const keys[6] = {"ppl",      "gguf_bytes", "gguf_bits_per_weight",
                                            "accuracy", "ci95_low",   "ci95_high"};
        double v[6] = {0};
        int ok = cJSON_IsString(name) && r->n < MAX_SCHEMES && cJSON_IsObject(vt);
        for (int k = 0; k < 6 && ok; k++) {
            const cJSON *x = cJSON_GetObjectItem(src[k], keys[k]);
            ok = cJSON_IsNumber(x);
            if (ok) v[k] = x->valuedouble;
        }
        cli_measure_t *m = &r->res[r->n];
        if (ok) ok = mq_scheme_parse(name->valuestring, &m->scheme, NULL) == MQ_OK;
        if (!ok) {
            rc = mq_error_set(err, MQ_ERR_FORMAT,
                              "%s: scheme entry %d is not one that miniquant sweep writes", path,
                              r->n + 1);
            break;
        }
        m->skip_lm_head = cJSON_IsTrue(cJSON_GetObjectItem(it, "skip_lm_head"));
        r->skip |= m->skip_lm_head;
        m->ppl.ppl = v[0];
        m->gguf.file = (size_t)v[1];
        m->gguf.bits_per_weight = v[2];
        m->verb.accuracy = v[3], m->verb.ci_low = v[4], m->verb.ci_high = v[5];
        read_task(vt, m);
        r->n++;
    }
    if (rc == MQ_OK && r->n == 0) rc = mq_error_set(err, MQ_ERR_FORMAT, "%s: no schemes", path);
    if (rc == MQ_OK && strcmp(r->res[0].scheme.name, "fp32"))
        rc = mq_error_set(err, MQ_ERR_FORMAT, "%s: the first scheme is %s, not fp32", path,
                          r->res[0].scheme.name);
    if (rc == MQ_OK) {
        const cJSON *t = cJSON_GetObjectItem(ev, "test_tokens"),
                    *vi = cJSON_GetObjectItem(ev, "verb_tense_items");
        const char *name = cJSON_GetStringValue(cJSON_GetObjectItem(root, "model_name"));
        if (!name) name = cJSON_GetStringValue(cJSON_GetObjectItem(root, "model"));
        snprintf(r->model_name, sizeof r->model_name, "%s", name ? name : "?");
        r->test_tokens = cJSON_IsNumber(t) ? (size_t)t->valuedouble : 0;
        r->verb_items = cJSON_IsNumber(vi) ? (size_t)vi->valuedouble : 0;
    }
    cJSON_Delete(root);
    return rc;
}

int cli_sweep_replot(const char *dir) {
    mq_error_t err = {0};
    static sweep_read_t r;
    int rc = sweep_read(dir, &r, &err);
    if (rc == MQ_OK)
        rc = sweep_plots(dir, r.res, r.n, r.model_name, r.test_tokens, r.verb_items, r.skip, &err);
    if (rc) return cli_fail(&err);
    printf("wrote %s/{pareto.png,verb_tense_accuracy.png}\n", dir);
    return 0;
}

/* The schemes every sweep measured, in the first one's order (fp32 left out): index into each
 * sweep's res, or -1. */
static int common_schemes(const sweep_read_t *const *r, int n_models, int (*idx)[MAX_SCHEMES]) {
    int n = 0;
    for (int i = 1; i < r[0]->n; i++) {
        int all = 1, at[8];
        for (int m = 0; m < n_models && all; m++) {
            at[m] = -1;
            for (int j = 1; j < r[m]->n && at[m] < 0; j++)
                if (!strcmp(r[m]->res[j].scheme.name, r[0]->res[i].scheme.name) &&
                    r[m]->res[j].skip_lm_head == r[0]->res[i].skip_lm_head)
                    at[m] = j;
            all = at[m] >= 0;
        }
        if (!all) continue;
        for (int m = 0; m < n_models; m++)
            idx[m][n] = at[m];
        n++;
    }
    return n;
}

int cli_sweep_compare(const char *const *dirs, int n_models, const char *png) {
    mq_error_t err = {0};
    if (n_models < 2 || n_models > 8) {
        mq_error_set(&err, MQ_ERR_ARG, "sweep comparison: 2 to 8 sweeps, not %d", n_models);
        return cli_fail(&err);
    }
    static sweep_read_t reads[8];
    const sweep_read_t *r[8];
    int rc = MQ_OK;
    for (int m = 0; m < n_models && rc == MQ_OK; m++) {
        rc = sweep_read(dirs[m], &reads[m], &err);
        r[m] = &reads[m];
    }
    if (rc) return cli_fail(&err);
    static int idx[8][MAX_SCHEMES];
    int n = common_schemes(r, n_models, idx);
    /* most bits first; equal bits in the sweep's order */
    for (int a = 1; a < n; a++)
        for (int b = a; b > 0 && r[0]->res[idx[0][b]].gguf.bits_per_weight >
                                     r[0]->res[idx[0][b - 1]].gguf.bits_per_weight;
             b--)
            for (int m = 0; m < n_models; m++) {
                int t = idx[m][b];
                idx[m][b] = idx[m][b - 1];
                idx[m][b - 1] = t;
            }
    if (n == 0) {
        mq_error_set(&err, MQ_ERR_ARG, "sweep comparison: %s and %s have no scheme in common",
                     dirs[0], dirs[1]);
        return cli_fail(&err);
    }
    /* the gap in percent, drawn on a log scale: a gap at or below FLOOR is drawn at it */
    const double FLOOR = 1e-4;
    static const char *const COLOUR[8] = {"#4c72b0", "#dd8452", "#55a868", "#c44e52",
                                          "#8172b3", "#937860", "#da8bc3", "#8c8c8c"};
    mq_strbuf_t s = {0};
    double hi = FLOOR;
    mq_strbuf_printf(&s, "$d << EOD\n");
    for (int i = 0; i < n; i++) {
        const cli_measure_t *a = &r[0]->res[idx[0][i]];
        mq_strbuf_printf(&s, "\"%s%s (%.2f)\"", a->scheme.name,
                         a->skip_lm_head ? ", lm_head FP32" : "", a->gguf.bits_per_weight);
        for (int m = 0; m < n_models; m++) {
            double gap = 100 * (r[m]->res[idx[m][i]].ppl.ppl / r[m]->res[0].ppl.ppl - 1);
            hi = fmax(hi, gap);
            mq_strbuf_printf(&s, " %.8g", fmax(gap, FLOOR));
        }
        mq_strbuf_printf(&s, "\n");
    }
    mq_strbuf_printf(&s, "EOD\n");
    mq_strbuf_printf(&s, "set title \"Perplexity gap to each model's own FP32, scheme by scheme (");
    for (int m = 0; m < n_models; m++)
        mq_strbuf_printf(&s, "%s%s", m ? " vs " : "", r[m]->model_name);
    mq_strbuf_printf(&s,
                     ")\\nin parentheses the bits per Linear weight in the GGUF file; a gap "
                     "at or below %g%% is drawn at %g%%\"\n"
                     "set ylabel 'test perplexity gap to FP32 (%%, log scale)'\n"
                     "set logscale y\nset yrange [%g:%g]\nset format y '%%g'\n"
                     "set style data histograms\nset style histogram clustered gap 1\n"
                     "set style fill solid 0.85 border -1\nset boxwidth 0.9\n"
                     "set grid ytics mytics lc rgb '#dddddd'\nset key top left box opaque\n"
                     "set xtics rotate by 40 right font ',9'\nset bmargin 8\n"
                     "plot ",
                     FLOOR, FLOOR, FLOOR, 3 * hi);
    for (int m = 0; m < n_models; m++)
        mq_strbuf_printf(&s, "%s$d using %d:xtic(1) lc rgb '%s' title '%s (FP32 %.4f)'",
                         m ? ", " : "", m + 2, COLOUR[m], r[m]->model_name, r[m]->res[0].ppl.ppl);
    mq_strbuf_printf(&s, "\n");
    rc = s.oom ? mq_error_set(&err, MQ_ERR_NOMEM, "out of memory")
               : mq_plot_png(png, 1400, 700, s.s, &err);
    mq_strbuf_free(&s);
    if (rc) return cli_fail(&err);

    printf("%-18s %7s", "scheme", "bpw");
    for (int m = 0; m < n_models; m++)
        printf(" %24s", r[m]->model_name);
    printf("\n%-18s %7s", "fp32", "32");
    for (int m = 0; m < n_models; m++)
        printf(" %14.4f %9s", r[m]->res[0].ppl.ppl, "");
    printf("\n");
    for (int i = 0; i < n; i++) {
        const cli_measure_t *a = &r[0]->res[idx[0][i]];
        printf("%-18s %7.3f", a->scheme.name, a->gguf.bits_per_weight);
        for (int m = 0; m < n_models; m++) {
            const cli_measure_t *x = &r[m]->res[idx[m][i]];
            printf(" %14.4f %+8.3f%%", x->ppl.ppl, 100 * (x->ppl.ppl / r[m]->res[0].ppl.ppl - 1));
        }
        printf("\n");
    }
    printf("wrote %s\n", png);
    return 0;
}

/* The task's knee in one family (gptq 0: round to nearest, 1: GPTQ) of res[1 .. n): the
 * scheme of fewest bits such that neither it nor any of the family with more bits drops
 * significantly against res[0]; -1 when the family has no such scheme. */
static int task_knee(const cli_measure_t *res, int n, int gptq) {
    int best = -1;
    for (int i = 1; i < n; i++) {
        if (res[i].scheme.gptq != gptq || res[i].drop_significant[0] != 0) continue;
        int clean = 1;
        for (int j = 1; j < n && clean; j++)
            if (res[j].scheme.gptq == gptq &&
                res[j].gguf.bits_per_weight > res[i].gguf.bits_per_weight)
                clean = res[j].drop_significant[0] == 0;
        if (clean && (best < 0 || res[i].gguf.bits_per_weight < res[best].gguf.bits_per_weight))
            best = i;
    }
    return best;
}

int cli_sweep(const char *model, const char *dir, const char *const *names, int skip,
              const char *command) {
    mq_error_t err = {0};
    /* fp32 first (the baseline), then the list without repeating it */
    mq_scheme_t schemes[MAX_SCHEMES];
    int n = 0;
    mq_scheme_parse("fp32", &schemes[n++], &err);
    for (int i = 0; names[i]; i++) {
        mq_scheme_t s;
        if (mq_scheme_parse(names[i], &s, &err)) return cli_fail(&err);
        int dup = 0;
        for (int j = 0; j < n; j++) dup |= !strcmp(schemes[j].name, s.name);
        if (dup) continue;
        if (n == MAX_SCHEMES) {
            mq_error_set(&err, MQ_ERR_ARG, "sweep: more than %d schemes", MAX_SCHEMES);
            return cli_fail(&err);
        }
        schemes[n++] = s;
    }
    cli_bench_t b;
    if (mq_mkdir_p(dir, &err) || cli_bench_open(&b, model, &err)) return cli_fail(&err);
    cli_measure_t res[MAX_SCHEMES];
    memset(res, 0, sizeof res);
    int rc = MQ_OK, done = 0;
    mq_progress_t bar;
    mq_progress_start(&bar, "schemes", n);
    mq_progress_mute(+1);
    for (int i = 0; i < n && rc == MQ_OK; i++) {
        mq_progress_update(&bar, i, schemes[i].name);
        rc = cli_measure(&b, &schemes[i], skip && i > 0, &res[i], &err);
        done += rc == MQ_OK;
    }
    mq_progress_mute(-1);
    if (rc == MQ_OK) mq_progress_finish(&bar, NULL);
    for (int i = 0; i < done; i++) {
        cli_paired_t pr;
        int paired = i && cli_measure_paired(&res[i], &res[0], &pr, &err) == MQ_OK;
        for (int k = 0; k <= MQ_VT_NUM_CATEGORIES; k++)
            res[i].drop_significant[k] =
                paired ? (int8_t)(k ? pr.by_category[k - 1] : pr.verb).drop_significant : -1;
    }
    int on[MAX_SCHEMES];
    pareto_frontier(res, done, on);

    char path[4200];
    if (rc == MQ_OK) {
        cJSON *ev, *root = cli_results_root("26-quant-curve", &b, &ev);
        char name[80];
        mq_arch_model_name(&b.m.cfg, name, sizeof name);
        cJSON_AddStringToObject(root, "model_name", name);
        cJSON_AddNumberToObject(ev, "gptq_calibration_tokens", (double)b.valid.n);
        cJSON_AddStringToObject(ev, "bytes", "in memory, as the lab counts them: numel x dtype "
                                             "size of every stored tensor (codes as int8)");
        cJSON_AddStringToObject(ev, "gguf_bytes", "size of the file miniquant export writes");
        cJSON_AddStringToObject(ev, "pareto", "frontier on (gguf_bytes, ppl): no other scheme "
                                              "is at most as large and at most as perplexed");
        cJSON *arr = cJSON_AddArrayToObject(root, "schemes");
        cJSON *front = cJSON_CreateArray();
        for (int i = 0; i < n; i++) {
            cJSON *o = cJSON_CreateObject();
            cJSON_AddStringToObject(o, "scheme", res[i].scheme.name);
            cJSON_AddBoolToObject(o, "skip_lm_head", res[i].skip_lm_head);
            cJSON_AddBoolToObject(o, "on_pareto_frontier", on[i]);
            cJSON *m = cli_measure_json(&res[i], i ? &res[0] : NULL);
            for (cJSON *c = m->child; c;) {
                cJSON *next = c->next;
                cJSON_AddItemToObject(o, c->string, cJSON_DetachItemViaPointer(m, c));
                c = next;
            }
            cJSON_Delete(m);
            cJSON_AddItemToArray(arr, o);
            if (on[i]) cJSON_AddItemToArray(front, cJSON_CreateString(res[i].scheme.name));
        }
        cJSON_AddItemToObject(root, "pareto_frontier", front);
        cJSON *knee = cJSON_AddObjectToObject(root, "task_knee");
        cJSON_AddStringToObject(knee, "definition",
                                "per family (round to nearest, GPTQ): the scheme of fewest GGUF "
                                "bits per weight whose verb-tense drop against fp32, and that of "
                                "every scheme of the family with more bits, is not significant "
                                "(McNemar p >= 0.05 or no net loss)");
        for (int g = 0; g < 2; g++) {
            int k = task_knee(res, done, g);
            cJSON *o = cJSON_AddObjectToObject(knee, g ? "gptq" : "rtn");
            if (k >= 0) {
                cJSON_AddStringToObject(o, "scheme", res[k].scheme.name);
                cJSON_AddNumberToObject(o, "gguf_bits_per_weight", res[k].gguf.bits_per_weight);
            }
        }
        snprintf(path, sizeof path, "%s/results.json", dir);
        rc = mq_json_write(path, root, &err);
        cJSON_Delete(root);
    }
    if (rc == MQ_OK) {
        char name[80];
        mq_arch_model_name(&b.m.cfg, name, sizeof name);
        rc = sweep_plots(dir, res, n, name, b.test.n, b.verbs.n_items, skip, &err);
    }
    if (rc == MQ_OK) {
        cJSON *cfg = cli_manifest_config(model, &b.m, &b.info, command);
        cJSON *list = cJSON_AddArrayToObject(cfg, "schemes");
        for (int i = 0; i < n; i++)
            cJSON_AddItemToArray(list, cJSON_CreateString(res[i].scheme.name));
        cJSON_AddBoolToObject(cfg, "skip_lm_head", skip);
        cJSON *man = mq_manifest(b.info.seed, cfg);
        snprintf(path, sizeof path, "%s/manifest.json", dir);
        rc = mq_json_write(path, man, &err);
        cJSON_Delete(man);
    }
    if (rc == MQ_OK) {
        printf("%-16s %10s %10s %19s %18s %9s %12s %12s %7s %s\n", "scheme", "perplexity",
               "gap", "gap 95% interval", "verb-tense (CI)", "McNemar p", "memory B", "GGUF B",
               "bpw", "frontier");
        for (int i = 0; i < n; i++) {
            char gap[32] = "-", ci[48] = "-", verb[32], p[24] = "-";
            cli_paired_t pr;
            if (i && cli_measure_paired(&res[i], &res[0], &pr, &err) == MQ_OK) {
                snprintf(gap, sizeof gap, "%+.3f%%%s", pr.gap.estimate,
                         pr.gap_significant ? "*" : "");
                snprintf(ci, sizeof ci, "[%+.3f, %+.3f]", pr.gap.lo, pr.gap.hi);
                snprintf(p, sizeof p, "%.3g%s", pr.verb.mcnemar_p,
                         pr.verb.mcnemar_p < 0.05 ? "*" : "");
            }
            snprintf(verb, sizeof verb, "%.2f%% +/-%.2f", 100 * res[i].verb.accuracy,
                     50 * (res[i].verb.ci_high - res[i].verb.ci_low));
            printf("%-16s %10.4f %10s %19s %18s %9s %12zu %12zu %7.3f %s\n", res[i].scheme.name,
                   res[i].ppl.ppl, gap, ci, verb, p, res[i].bytes.total, res[i].gguf.file,
                   res[i].bytes.bits_per_weight, on[i] ? "yes" : "");
        }
        printf("* the paired difference to fp32 is significant at 5%%: the gap's bootstrap "
               "interval (%d resamples of the windows) excludes 0; McNemar's exact test on the "
               "verb-tense items one scheme gets right and the other wrong\n",
               CLI_BOOT_RESAMPLES);
        cli_print_categories(res, n);
        for (int g = 0; g < 2; g++) {
            int k = task_knee(res, n, g);
            if (k >= 0)
                printf("knee (%s): %s at %.3f bits per weight is the fewest bits with no "
                       "significant verb-tense drop, nor any drop above it\n",
                       g ? "GPTQ" : "round to nearest", res[k].scheme.name,
                       res[k].gguf.bits_per_weight);
        }
        printf("wrote %s/{results.json,pareto.png,verb_tense_accuracy.png,manifest.json}\n",
               dir);
    }
    for (int i = 0; i < n; i++) cli_measure_free(&res[i]);
    cli_bench_close(&b);
    return rc ? cli_fail(&err) : 0;
}

int cmd_sweep(int argc, char **argv) {
    const char *model = NULL, *out = NULL;
    int skip = 0, replot = 0;
    long threads = 0;
    cli_scheme_list_t schemes = {.max = MAX_SCHEMES};
    cli_option_t opts[] = {
        {CLI_OPT_MODEL(&model, "the FP32 model"), .def = CLI_DEFAULT_MODEL},
        {.name = "out", .arg = "DIR", .str = &out, .def = "experiments/26-quant-curve",
         .help = "where the results go"},
        {CLI_OPT_SCHEMES(&schemes, "comma-separated scheme names"), .def = "all"},
        {CLI_OPT_SKIP_LM_HEAD(&skip)},
        {.name = "plots-only", .flag = &replot,
         .help = "redraw DIR's plots from DIR/results.json, measuring nothing"},
        {CLI_OPT_THREADS(&threads)},
        {0},
    };
    const cli_command_t cmd = {.name = "sweep", .about = ABOUT, .opts = opts};
    int rc = cli_parse(&cmd, argc, argv, NULL);
    if (rc != CLI_CONTINUE) return rc;
    if (replot) return cli_sweep_replot(out);
    const char *const *names = schemes.names;
    cli_set_threads((int)threads);
    return cli_sweep(model, out, names, skip, "miniquant sweep");
}
