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

/* pareto.png: x the GGUF file size (MB, log scale), y the test perplexity; a labelled dot per
 * scheme, filled on the frontier; the frontier as the staircase of what can be reached. */
static int plot_pareto(const char *png, const cli_measure_t *r, int n, const int *on,
                       const char *title, mq_error_t *err) {
    enum { W = 1100, H = 680 };
    const double L = 0.09, R = 0.97, B = 0.11, T = 0.88; /* the plot area, screen fractions */
    double xmin = INFINITY, xmax = 0, ymin = INFINITY, ymax = -INFINITY;
    for (int i = 0; i < n; i++) {
        double x = r[i].gguf.file / 1e6;
        xmin = fmin(xmin, x), xmax = fmax(xmax, x);
        ymin = fmin(ymin, r[i].ppl.ppl), ymax = fmax(ymax, r[i].ppl.ppl);
    }
    double ypad = fmax(0.14 * (ymax - ymin), 0.002 * ymax);
    xmin /= 1.35, xmax *= 1.6, ymin -= ypad, ymax += ypad;
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
        py[i] = (r[i].ppl.ppl - ymin) / (ymax - ymin);
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
        mq_strbuf_printf(&s, "%.6f %.6f %d\n", r[i].gguf.file / 1e6, r[i].ppl.ppl, on[i]);
    mq_strbuf_printf(&s, "EOD\n$front << EOD\n");
    for (int k = 0; k < nf; k++)
        mq_strbuf_printf(&s, "%.6f %.6f\n", r[order[k]].gguf.file / 1e6, r[order[k]].ppl.ppl);
    if (nf) mq_strbuf_printf(&s, "%.6f %.6f\n", xmax, r[order[nf - 1]].ppl.ppl);
    mq_strbuf_printf(&s, "EOD\n");
    mq_strbuf_printf(&s,
                     "set title \"%s\"\n"
                     "set lmargin at screen %.2f\nset rmargin at screen %.2f\n"
                     "set bmargin at screen %.2f\nset tmargin at screen %.2f\n"
                     "set logscale x\nset xrange [%.6f:%.6f]\nset yrange [%.6f:%.6f]\n"
                     "set xlabel 'GGUF file size (MB = 10^6 bytes, log scale)'\n"
                     "set ylabel 'test perplexity (lower is better)'\n"
                     "set grid xtics ytics mxtics lc rgb '#dddddd'\nset mxtics 10\n"
                     "set xtics (2, 3, 4, 5, 6, 8, 10, 15, 20, 30, 50)\n"
                     "set key top right box opaque\n"
                     "set style textbox opaque noborder margins 1,1\n",
                     title, L, R, B, T, xmin, xmax, ymin, ymax);
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

/* verb_tense_accuracy.png: a bar per scheme with its 95% interval, fp32's accuracy dashed. */
static int plot_verbs(const char *png, const cli_measure_t *r, int n, const char *title,
                      mq_error_t *err) {
    double hi = 0;
    for (int i = 0; i < n; i++) hi = fmax(hi, 100 * r[i].verb.ci_high);
    mq_strbuf_t s = {0};
    mq_strbuf_printf(&s, "$d << EOD\n");
    for (int i = 0; i < n; i++)
        mq_strbuf_printf(&s, "%d \"%.40s%s\" %.4f %.4f %.4f\n", i, r[i].scheme.name,
                         r[i].skip_lm_head ? " (lm_head FP32)" : "", 100 * r[i].verb.accuracy,
                         100 * r[i].verb.ci_low, 100 * r[i].verb.ci_high);
    mq_strbuf_printf(&s, "EOD\n");
    mq_strbuf_printf(
        &s,
        "set title \"%s\"\n"
        "set ylabel 'verb-tense accuracy (%%)'\n"
        "set xlabel 'scheme'\n"
        "set style fill solid 0.8 border -1\nset boxwidth 0.65\nset grid ytics\n"
        "set key top right box opaque\n"
        "set xtics rotate by 30 right\nset bmargin 7\nset xrange [-0.7:%d.7]\n"
        "set yrange [0:%.1f]\nset ytics 10\n"
        "plot $d using 1:3:xtic(2) with boxes lc rgb '#4c72b0' title 'accuracy', \\\n"
        "     $d using 1:4:(0):($5 - $4) with vectors heads size 0.08,90 lc rgb 'black' "
        "lw 1.2 title '95%% Wilson interval', \\\n"
        "     %.4f with lines dt 2 lc rgb '#d62728' title 'fp32', \\\n"
        "     $d using 1:5:(sprintf('%%.2f', $3)) with labels offset 0,0.8 font ',9' notitle\n",
        title, n - 1, 10 * ceil((hi + 15) / 10), 100 * r[0].verb.accuracy);
    int rc = s.oom ? mq_error_set(err, MQ_ERR_NOMEM, "out of memory")
                   : mq_plot_png(png, 1000, 600, s.s, err);
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
             "%s: size against test perplexity, one dot per scheme (%zu test tokens)%s",
             model_name, test_tokens, skip ? ", lm_head FP32" : "");
    snprintf(path, sizeof path, "%s/pareto.png", dir);
    int rc = plot_pareto(path, res, n, on, title, err);
    if (rc) return rc;
    snprintf(title, sizeof title,
             "%s: verb-tense accuracy per scheme (%zu items from the test split)", model_name,
             verb_items);
    snprintf(path, sizeof path, "%s/verb_tense_accuracy.png", dir);
    return plot_verbs(path, res, n, title, err);
}

/* --plots-only: the plots again from a sweep's results.json. */
static int sweep_replot(const char *dir) {
    mq_error_t err = {0};
    char path[4200];
    snprintf(path, sizeof path, "%s/results.json", dir);
    cJSON *root;
    if (mq_json_read(path, &root, &err)) return cli_fail(&err);
    static cli_measure_t res[MAX_SCHEMES];
    int n = 0, skip = 0, rc = MQ_OK;
    const cJSON *arr = cJSON_GetObjectItem(root, "schemes"), *it;
    const cJSON *ev = cJSON_GetObjectItem(root, "evaluation");
    cJSON_ArrayForEach(it, arr) {
        const cJSON *name = cJSON_GetObjectItem(it, "scheme"),
                    *vt = cJSON_GetObjectItem(it, "verb_tense");
        /* the numbers the plots draw: two of the scheme's, three of its verb_tense object */
        const cJSON *src[5] = {it, it, vt, vt, vt};
        static const char *const keys[5] = {"ppl", "gguf_bytes", "accuracy", "ci95_low",
                                            "ci95_high"};
        double v[5] = {0};
        int ok = cJSON_IsString(name) && n < MAX_SCHEMES && cJSON_IsObject(vt);
        for (int k = 0; k < 5 && ok; k++) {
            const cJSON *x = cJSON_GetObjectItem(src[k], keys[k]);
            ok = cJSON_IsNumber(x);
            if (ok) v[k] = x->valuedouble;
        }
        if (ok) ok = mq_scheme_parse(name->valuestring, &res[n].scheme, &err) == MQ_OK;
        if (!ok) {
            rc = mq_error_set(&err, MQ_ERR_FORMAT,
                              "%s: scheme entry %d is not one that miniquant sweep writes", path,
                              n + 1);
            break;
        }
        res[n].skip_lm_head = cJSON_IsTrue(cJSON_GetObjectItem(it, "skip_lm_head"));
        skip |= res[n].skip_lm_head;
        res[n].ppl.ppl = v[0];
        res[n].gguf.file = (size_t)v[1];
        res[n].verb.accuracy = v[2], res[n].verb.ci_low = v[3], res[n].verb.ci_high = v[4];
        n++;
    }
    if (rc == MQ_OK && n == 0)
        rc = mq_error_set(&err, MQ_ERR_FORMAT, "%s: no schemes", path);
    if (rc == MQ_OK) {
        const cJSON *t = cJSON_GetObjectItem(ev, "test_tokens"),
                    *vi = cJSON_GetObjectItem(ev, "verb_tense_items");
        const char *model = cJSON_GetStringValue(cJSON_GetObjectItem(root, "model"));
        /* models/minigpt-<config>.gguf, models/minillama-<config>.gguf */
        char name[80] = "?", config[64];
        static const char *const FAMILY[2][2] = {{"minigpt-", "MiniGPT"},
                                                 {"minillama-", "MiniLlama"}};
        for (int f = 0; f < 2; f++)
            if (model && strstr(model, FAMILY[f][0]) &&
                sscanf(strstr(model, FAMILY[f][0]) + strlen(FAMILY[f][0]), "%63[^.]", config) == 1)
                snprintf(name, sizeof name, "%s-%s", FAMILY[f][1], config);
        rc = sweep_plots(dir, res, n, name, cJSON_IsNumber(t) ? (size_t)t->valuedouble : 0,
                         cJSON_IsNumber(vi) ? (size_t)vi->valuedouble : 0, skip, &err);
    }
    cJSON_Delete(root);
    if (rc) return cli_fail(&err);
    printf("wrote %s/{pareto.png,verb_tense_accuracy.png}\n", dir);
    return 0;
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
    int on[MAX_SCHEMES];
    pareto_frontier(res, done, on);

    char path[4200];
    if (rc == MQ_OK) {
        cJSON *ev, *root = cli_results_root("26-quant-curve", &b, &ev);
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
        printf("%-16s %10s %9s %17s %12s %12s %7s %s\n", "scheme", "perplexity", "gap",
               "verb-tense (CI)", "memory B", "GGUF B", "bpw", "frontier");
        for (int i = 0; i < n; i++) {
            char gap[32], verb[32];
            if (i) snprintf(gap, sizeof gap, "%+.3f%%", gap_pct(&res[i], &res[0]));
            else snprintf(gap, sizeof gap, "-");
            snprintf(verb, sizeof verb, "%.2f%% +/-%.2f", 100 * res[i].verb.accuracy,
                     50 * (res[i].verb.ci_high - res[i].verb.ci_low));
            printf("%-16s %10.4f %9s %17s %12zu %12zu %7.3f %s\n", res[i].scheme.name,
                   res[i].ppl.ppl, gap, verb, res[i].bytes.total, res[i].gguf.file,
                   res[i].bytes.bits_per_weight, on[i] ? "yes" : "");
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
    if (replot) return sweep_replot(out);
    const char *const *names = schemes.names;
    cli_set_threads((int)threads);
    return cli_sweep(model, out, names, skip, "miniquant sweep");
}
