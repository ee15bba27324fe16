/* miniquant experiment: regenerates an experiment directory's results, plots and manifest. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "measure.h"
#include "miniquant/arch.h"
#include "miniquant/fileio.h"
#include "miniquant/report.h"
#include "miniquant/sensitivity.h"

static const char ABOUT[] =
    "Regenerates an experiment: results.json, its plots (PNG) and manifest.json in DIR.\n"
    "\n"
    "  int8-ptq   fp32 vs int8_per_tensor vs int8_per_channel (lm_head quantized or FP32):\n"
    "             test perplexity, verb-tense accuracy, bytes; per-layer sensitivity.\n"
    "             Writes results.json, ppl_table.png, sensitivity.png, manifest.json\n"
    "             (default DIR experiments/26-int8-ptq)\n"
    "\n"
    "  gguf-export every scheme (GPTQ too) exported to GGUF (Q8_0/Q4_0 where ggml has\n"
    "             the grid), read back and compared with the in-memory model (round-trip\n"
    "             error), evaluated from the file; writes results.json, manifest.json (default DIR\n"
    "             experiments/26-gguf-export; the .gguf files go beside the model)\n"
    "\n"
    "  quant-curve every scheme (miniquant sweep: the spec's, the K-quants, 3 and 2 bits; each\n"
    "             by round to nearest and by GPTQ) on each model given (default: MiniGPT and\n"
    "             MiniLlama, models/mini{gpt,llama}-default.gguf): perplexity, verb-tense\n"
    "             accuracy, bytes, the Pareto frontier; and the roofline of this machine with\n"
    "             the model's decode step placed on it (miniquant roofline). Writes per model\n"
    "             DIR/<model file's name>/{results.json, pareto.png, verb_tense_accuracy.png,\n"
    "             roofline.json, roofline_overlay.png, manifest.json, sensitivity.json,\n"
    "             sensitivity.png (each Linear alone in int4_g64)}; with two models or more,\n"
    "             DIR/architectures.png, the gap of each scheme side by side (default DIR\n"
    "             experiments/26-quant-curve)\n"
    "\n"
    "  vs-llamacpp at each of llama-quantize's size points (Q8_0 .. Q2_K), its files with and\n"
    "             without an importance matrix against miniquant's best file of no larger size\n"
    "             (the mixture of the same name with GPTQ, or auto_gptq): size, KL divergence\n"
    "             from FP32, perplexity by both protocols. llama.cpp runs when LLAMA_CPP_BIN\n"
    "             names its binaries (recorded in DIR/llamacpp.json, LLAMA_CPP_COMMIT too);\n"
    "             otherwise that record is read back. Writes results.json, pareto.png,\n"
    "             manifest.json (default DIR experiments/26-vs-llamacpp; the files go beside\n"
    "             the model, in vs-llamacpp/<model file's name>/)\n";

/* A table as a picture: rows of cells drawn as text, the header bold, rules between. */
static int plot_table(const char *png, const char *title, int ncol, const char *const *head,
                      char (*cells)[64], int nrow, const double *colx, mq_error_t *err) {
    mq_strbuf_t s = {0};
    double top = 0.80, dy = 0.72 / (nrow + 0.6);
    mq_strbuf_printf(&s, "unset border\nunset tics\nunset key\nset xrange [0:1]\nset yrange [0:1]\n"
                         "set margins 0,0,0,0\n");
    mq_strbuf_printf(&s, "set label 1 '%s' at 0.5,0.95 center font 'DejaVu Sans,13'\n", title);
    int id = 2;
    for (int c = 0; c < ncol; c++)
        mq_strbuf_printf(&s, "set label %d '%s' at %.3f,%.3f %s font 'DejaVu Sans:Bold,11'\n",
                         id++, head[c], colx[c], top, c == 0 ? "left" : "right");
    for (int r = 0; r < nrow; r++)
        for (int c = 0; c < ncol; c++)
            mq_strbuf_printf(&s, "set label %d '%s' at %.3f,%.3f %s\n", id++, cells[r * ncol + c],
                             colx[c], top - (r + 1) * dy, c == 0 ? "left" : "right");
    mq_strbuf_printf(&s, "set arrow 1 from 0.02,%.3f to 0.98,%.3f nohead lw 1.5\n", top - dy / 2,
                     top - dy / 2);
    mq_strbuf_printf(&s, "set arrow 2 from 0.02,%.3f to 0.98,%.3f nohead lw 0.8 lc rgb '#999999'\n",
                     top - (nrow + 0.5) * dy, top - (nrow + 0.5) * dy);
    mq_strbuf_printf(&s, "plot NaN\n");
    int rc = s.oom ? mq_error_set(err, MQ_ERR_NOMEM, "out of memory")
                   : mq_plot_png(png, 1100, 140 + 56 * (nrow + 1), s.s, err);
    mq_strbuf_free(&s);
    return rc;
}

static int plot_sensitivity(const char *png, const mq_sensitivity_t *sv, const char *scheme,
                            mq_error_t *err) {
    mq_strbuf_t s = {0};
    mq_strbuf_printf(&s, "$d << EOD\n");
    int worst = 0;
    for (int i = 0; i < sv->n; i++) {
        mq_strbuf_printf(&s, "%d \"%s\" %.6f\n", i, sv->names[i], sv->gap_pct[i]);
        if (sv->gap_pct[i] > sv->gap_pct[worst]) worst = i;
    }
    mq_strbuf_printf(&s, "EOD\n");
    mq_strbuf_printf(
        &s,
        "set title \"Per-layer sensitivity: %s applied to one Linear at a time\\n(all other layers "
        "and the embeddings FP32; FP32 test perplexity %.3f)\"\n"
        "set ylabel 'test perplexity increase over FP32 (%%)'\n"
        "set xlabel 'quantized Linear layer'\n"
        "set style fill solid 0.85 border -1\nset boxwidth 0.7\nset grid ytics\nunset key\n"
        "set xtics rotate by 40 right font ',10'\nset bmargin 8\nset xrange [-0.7:%d.7]\n"
        "set yrange [*:*]\nset offsets 0,0,graph 0.08,0\n"
        "plot $d using 1:3:xtic(2) with boxes lc rgb '#4c72b0', \\\n"
        "     $d using ($1==%d?$1:NaN):3 with boxes lc rgb '#d62728', \\\n"
        "     $d using 1:($3 >= 0 ? $3 : NaN):(sprintf('%%+.3f', $3)) with labels offset 0,0.8 "
        "font ',8', \\\n"
        "     $d using 1:($3 < 0 ? $3 : NaN):(sprintf('%%+.3f', $3)) with labels offset 0,-0.8 "
        "font ',8'\n",
        scheme, sv->base_ppl, sv->n - 1, worst);
    int rc = s.oom ? mq_error_set(err, MQ_ERR_NOMEM, "out of memory")
                   : mq_plot_png(png, 1000, 600, s.s, err);
    mq_strbuf_free(&s);
    return rc;
}

/* {scheme, what, fp32_ppl, layers: [{name, ppl, ppl_gap_pct}], sum_of_gaps_pct} */
static cJSON *sensitivity_json(const mq_sensitivity_t *sv, const char *scheme) {
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "scheme", scheme);
    cJSON_AddStringToObject(o, "what", "test perplexity (default protocol) with one Linear "
                                       "quantized, every other tensor FP32");
    cJSON_AddNumberToObject(o, "fp32_ppl", sv->base_ppl);
    double sum = 0;
    cJSON *arr = cJSON_AddArrayToObject(o, "layers");
    for (int i = 0; i < sv->n; i++) {
        cJSON *l = cJSON_CreateObject();
        cJSON_AddStringToObject(l, "name", sv->names[i]);
        cJSON_AddNumberToObject(l, "ppl", sv->ppl[i]);
        cJSON_AddNumberToObject(l, "ppl_gap_pct", sv->gap_pct[i]);
        cJSON_AddItemToArray(arr, l);
        sum += sv->gap_pct[i];
    }
    cJSON_AddNumberToObject(o, "sum_of_gaps_pct", sum);
    return o;
}

static int int8_ptq(const char *model, const char *dir) {
    mq_error_t err = {0};
    cli_bench_t b;
    if (mq_mkdir_p(dir, &err) || cli_bench_open(&b, model, &err)) return cli_fail(&err);
    static const struct {
        const char *scheme;
        int skip;
    } RUNS[] = {{"fp32", 0},
                {"int8_per_tensor", 0},
                {"int8_per_tensor", 1},
                {"int8_per_channel", 0},
                {"int8_per_channel", 1}};
    enum { NRUN = 5 };
    cli_measure_t res[NRUN];
    memset(res, 0, sizeof res);
    int rc = MQ_OK;
    for (int i = 0; i < NRUN && rc == MQ_OK; i++) {
        mq_scheme_t s;
        mq_scheme_parse(RUNS[i].scheme, &s, &err);
        fprintf(stderr, "== %s%s\n", RUNS[i].scheme, RUNS[i].skip ? " (lm_head FP32)" : "");
        rc = cli_measure(&b, &s, RUNS[i].skip, &res[i], &err);
    }
    mq_sensitivity_t sv = {0};
    mq_scheme_t sens_scheme;
    mq_scheme_parse("int8_per_tensor", &sens_scheme, &err);
    if (rc == MQ_OK) {
        fprintf(stderr, "== per-layer sensitivity (%s)\n", sens_scheme.name);
        rc = mq_sensitivity_run(&b.m, &sens_scheme, b.test.ids, b.test.n, &sv, &err);
    }
    char path[4200];
    if (rc == MQ_OK) {
        cJSON *ev, *root = cli_results_root("26-int8-ptq", &b, &ev);
        (void)ev;
        cJSON *schemes = cJSON_AddObjectToObject(root, "schemes");
        cJSON_AddItemToObject(schemes, "fp32", cli_measure_json(&res[0], NULL));
        for (int i = 1; i < NRUN; i += 2) {
            cJSON *o = cli_measure_json(&res[i], &res[0]);
            cJSON_AddItemToObject(o, "lm_head_fp32", cli_measure_json(&res[i + 1], &res[0]));
            cJSON_AddItemToObject(schemes, RUNS[i].scheme, o);
        }
        double gpt = 100 * (res[1].ppl.ppl - res[0].ppl.ppl) / res[0].ppl.ppl;
        double gpc = 100 * (res[3].ppl.ppl - res[0].ppl.ppl) / res[0].ppl.ppl;
        cJSON_AddNumberToObject(root, "per_channel_gap_over_per_tensor_gap", gpt != 0 ? gpc / gpt : 0);
        cJSON_AddItemToObject(root, "sensitivity", sensitivity_json(&sv, sens_scheme.name));
        snprintf(path, sizeof path, "%s/results.json", dir);
        rc = mq_json_write(path, root, &err);
        cJSON_Delete(root);
    }
    if (rc == MQ_OK) {
        const char *head[] = {"scheme", "lm_head", "test perplexity", "gap vs fp32",
                              "verb-tense (change, McNemar p)", "size", "bits/weight"};
        const double colx[] = {0.02, 0.23, 0.36, 0.48, 0.76, 0.86, 0.98};
        char cells[NRUN * 7][64];
        for (int i = 0; i < NRUN; i++) {
            char(*c)[64] = cells + i * 7;
            snprintf(c[0], 64, "%s", RUNS[i].scheme);
            snprintf(c[1], 64, "%s", i == 0 ? "FP32" : RUNS[i].skip ? "FP32" : "quantized");
            snprintf(c[2], 64, "%.3f", res[i].ppl.ppl);
            if (i == 0) snprintf(c[3], 64, "-");
            else snprintf(c[3], 64, "%+.3f%%", 100 * (res[i].ppl.ppl - res[0].ppl.ppl) / res[0].ppl.ppl);
            cli_paired_t pr;
            if (i && cli_measure_paired(&res[i], &res[0], &pr, &err) == MQ_OK)
                snprintf(c[4], 64, "%.2f%% (%+.2f pt, p %.2g)", 100 * res[i].verb.accuracy,
                         100 * (res[i].verb.accuracy - res[0].verb.accuracy), pr.verb.mcnemar_p);
            else
                snprintf(c[4], 64, "%.2f%% [%.2f, %.2f]", 100 * res[i].verb.accuracy,
                         100 * res[i].verb.ci_low, 100 * res[i].verb.ci_high);
            snprintf(c[5], 64, "%.2f MiB", res[i].bytes.total / 1048576.0);
            snprintf(c[6], 64, "%.2f", res[i].bytes.bits_per_weight);
        }
        char title[256];
        char model_name[80];
        mq_arch_model_name(&b.m.cfg, model_name, sizeof model_name);
        snprintf(title, sizeof title, "INT8 weight-only PTQ of %s (%zu test tokens, %zu "
                 "verb-tense items)", model_name, b.test.n, b.verbs.n_items);
        snprintf(path, sizeof path, "%s/ppl_table.png", dir);
        rc = plot_table(path, title, 7, head, cells, NRUN, colx, &err);
    }
    if (rc == MQ_OK) {
        snprintf(path, sizeof path, "%s/sensitivity.png", dir);
        rc = plot_sensitivity(path, &sv, sens_scheme.name, &err);
    }
    if (rc == MQ_OK) {
        cJSON *cfg = cli_manifest_config(model, &b.m, &b.info, "miniquant experiment int8-ptq");
        cJSON *man = mq_manifest(b.info.seed, cfg);
        snprintf(path, sizeof path, "%s/manifest.json", dir);
        rc = mq_json_write(path, man, &err);
        cJSON_Delete(man);
    }
    if (rc == MQ_OK) {
        printf("%-18s %-10s %12s %10s %22s %12s\n", "scheme", "lm_head", "perplexity", "gap",
               "verb-tense acc", "bytes");
        for (int i = 0; i < NRUN; i++)
            printf("%-18s %-10s %12.4f %+9.3f%% %13.2f%% +/-%4.2f %12zu\n", RUNS[i].scheme,
                   i == 0 || RUNS[i].skip ? "FP32" : "quantized", res[i].ppl.ppl,
                   100 * (res[i].ppl.ppl - res[0].ppl.ppl) / res[0].ppl.ppl,
                   100 * res[i].verb.accuracy, 50 * (res[i].verb.ci_high - res[i].verb.ci_low),
                   res[i].bytes.total);
        cli_print_categories(res, NRUN);
        printf("wrote %s/{results.json,ppl_table.png,sensitivity.png,manifest.json}\n", dir);
    }
    for (int i = 0; i < NRUN; i++) cli_measure_free(&res[i]);
    mq_sensitivity_free(&sv);
    cli_bench_close(&b);
    return rc ? cli_fail(&err) : 0;
}

/* What quant-curve sweeps: the spec's schemes, then the low-bit end (3 and 2 bits per group),
 * the K-quants and IQ4_NL, each by round to nearest and by GPTQ. */
static const char *const CURVE_EXTRA[] = {
    "int3_g64", "int3_g64_gptq", "int2_g64", "int2_g64_gptq", "q2_k",   "q2_k_gptq",
    "q3_k",     "q3_k_gptq",     "q4_k",     "q4_k_gptq",     "q5_k",   "q5_k_gptq",
    "q6_k",     "q6_k_gptq",     "iq4_nl",   "iq4_nl_gptq",   NULL};

/* Which Linear a scheme hurts: each quantized alone (the rest FP32), the perplexity gap; written
 * to dir/sensitivity.json and drawn to dir/sensitivity.png. */
static int layer_sensitivity(const char *model, const char *scheme, const char *dir) {
    mq_error_t err = {0};
    mq_scheme_t s;
    cli_bench_t b;
    if (mq_scheme_parse(scheme, &s, &err) || cli_bench_open(&b, model, &err))
        return cli_fail(&err);
    mq_sensitivity_t sv = {0};
    fprintf(stderr, "== per-layer sensitivity (%s): %s\n", s.name, model);
    int rc = mq_sensitivity_run(&b.m, &s, b.test.ids, b.test.n, &sv, &err);
    char path[1100];
    if (rc == MQ_OK) {
        cJSON *root = sensitivity_json(&sv, s.name);
        cJSON_AddStringToObject(root, "model", model);
        snprintf(path, sizeof path, "%.1000s/sensitivity.json", dir);
        rc = mq_json_write(path, root, &err);
        cJSON_Delete(root);
    }
    if (rc == MQ_OK) {
        snprintf(path, sizeof path, "%.1000s/sensitivity.png", dir);
        rc = plot_sensitivity(path, &sv, s.name, &err);
    }
    if (rc == MQ_OK) printf("wrote %s/{sensitivity.json,sensitivity.png}\n", dir);
    mq_sensitivity_free(&sv);
    cli_bench_close(&b);
    return rc ? cli_fail(&err) : 0;
}

/* experiments/26-quant-curve: per model the sweep of every scheme, the roofline with its decode
 * step placed on it and which Linear int4_g64 hurts; the models side by side. */
static int quant_curve(const char *const *models, int n_models, const char *dir, int replot) {
    const char *names[CLI_MAX_SCHEMES + 1];
    int n = 0;
    for (int i = 0; MQ_STANDARD_SCHEMES[i]; i++)
        names[n++] = MQ_STANDARD_SCHEMES[i];
    for (int i = 0; CURVE_EXTRA[i]; i++)
        names[n++] = CURVE_EXTRA[i];
    names[n] = NULL;
    char sub[CLI_MAX_MODELS][1024];
    const char *subs[CLI_MAX_MODELS];
    for (int m = 0; m < n_models; m++) {
        char stem[256];
        cli_model_stem(models[m], stem, sizeof stem);
        subs[m] = sub[m];
        if ((size_t)snprintf(sub[m], sizeof sub[m], "%s/%s", dir, stem) >= sizeof sub[m]) {
            mq_error_t err = {0};
            mq_error_set(&err, MQ_ERR_ARG, "quant-curve: the path %s/%s is too long", dir, stem);
            return cli_fail(&err);
        }
        for (int k = 0; k < m; k++)
            if (!strcmp(sub[k], sub[m])) {
                mq_error_t err = {0};
                mq_error_set(&err, MQ_ERR_ARG, "quant-curve: %s and %s would share %s",
                             models[k], models[m], sub[m]);
                return cli_fail(&err);
            }
    }
    for (int m = 0; m < n_models; m++) {
        if (replot) {
            int rc = cli_sweep_replot(sub[m]);
            if (rc) return rc;
            continue;
        }
        fprintf(stderr, "quant-curve: %s\n", models[m]);
        int rc = cli_sweep(models[m], sub[m], names, 0, "miniquant experiment quant-curve");
        if (rc) return rc;
        char json[1100], png[1100];
        snprintf(json, sizeof json, "%.1023s/roofline.json", sub[m]);
        snprintf(png, sizeof png, "%.1023s/roofline_overlay.png", sub[m]);
        char *argv[] = {"roofline", "--model", (char *)models[m], "--json", json, "--plot", png,
                        NULL};
        if ((rc = cmd_roofline(7, argv))) return rc;
        if ((rc = layer_sensitivity(models[m], "int4_g64", sub[m]))) return rc;
    }
    if (n_models < 2) return 0;
    char png[1100];
    snprintf(png, sizeof png, "%s/architectures.png", dir);
    return cli_sweep_compare(subs, n_models, png);
}

int cmd_experiment(int argc, char **argv) {
    const char *out = NULL;
    int replot = 0;
    cli_model_list_t models = {0};
    cli_option_t opts[] = {
        {CLI_OPT_MODELS(&models, "the FP32 model; quant-curve takes it more than once"),
         .def_text = CLI_DEFAULT_MODEL "; quant-curve: it and models/minillama-default.gguf"},
        {.name = "out", .arg = "DIR", .str = &out, .def_text = "per experiment, above",
         .help = "the experiment directory"},
        {.name = "plots-only", .flag = &replot,
         .help = "quant-curve: redraw the sweeps' plots and architectures.png from the "
                 "results.json files, measuring nothing (the roofline is left as it is)"},
        {0},
    };
    const cli_command_t cmd = {.name = "experiment", .args = "NAME", .about = ABOUT, .opts = opts};
    cli_args_t args;
    int prc = cli_parse(&cmd, argc, argv, &args);
    if (prc != CLI_CONTINUE) return prc;
    if (args.n != 1)
        return cli_usage_error(&cmd,
                               "name one experiment (valid: int8-ptq, gguf-export, quant-curve, "
                               "vs-llamacpp)");
    const char *name = args.v[0];
    if (!strcmp(name, "quant-curve")) {
        static const char *const BOTH[] = {CLI_DEFAULT_MODEL, "models/minillama-default.gguf"};
        const char *dir = out ? out : "experiments/26-quant-curve";
        return models.n ? quant_curve(models.v, models.n, dir, replot)
                        : quant_curve(BOTH, 2, dir, replot);
    }
    if (replot) return cli_usage_error(&cmd, "--plots-only goes with quant-curve");
    if (models.n > 1)
        return cli_usage_error(&cmd, "%s takes one --model (quant-curve takes several)", name);
    const char *model = models.n ? models.v[0] : CLI_DEFAULT_MODEL;
    if (!strcmp(name, "int8-ptq")) return int8_ptq(model, out ? out : "experiments/26-int8-ptq");
    if (!strcmp(name, "gguf-export"))
        return cli_experiment_gguf_export(model, out ? out : "experiments/26-gguf-export");
    if (!strcmp(name, "vs-llamacpp"))
        return cli_experiment_vs_llamacpp(model, out ? out : "experiments/26-vs-llamacpp");
    return cli_usage_error(&cmd,
                           "unknown experiment '%s' (valid: int8-ptq, gguf-export, quant-curve, "
                           "vs-llamacpp)",
                           name);
}
