/* miniquant bench serve: llama-bench's two measures on model files. pp N: a prompt of N tokens
 * through an empty KV cache at once (mq_gpt_prefill); tg N: N tokens, one decode step each,
 * from an empty cache. Tokens are random (the first the vocabulary's sequence start when it adds
 * one), nothing is sampled, every repetition starts with an untimed warm-up of its test, as
 * llama-bench does. With LLAMA_CPP_BIN set, llama-bench runs the same test on the same file
 * with the same threads, one repetition per invocation, taking turns with miniquant's: both
 * then meet the same noise of a shared machine, and the ratio of each pair is kept. */
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <cjson/cJSON.h>

#include "bench_serve.h"
#include "cli.h"
#include "miniquant/export.h"
#include "miniquant/fileio.h"
#include "miniquant/kernels.h"
#include "miniquant/progress.h"
#include "miniquant/report.h"
#include "miniquant/rng.h"
#include "miniquant/tokenizer.h"

#define MAX_SERVE_REPS 100

typedef struct serve_test {
    const char *name; /* "pp" or "tg" */
    int n;
    double mq[MAX_SERVE_REPS], lc[MAX_SERVE_REPS]; /* tokens per second per repetition */
    int reps;
} serve_test_t;

/* Mean and sample standard deviation of v[0 .. n). */
static void mean_sd(const double *v, int n, double *mean, double *sd) {
    double s = 0.0, ss = 0.0;
    for (int i = 0; i < n; i++)
        s += v[i];
    *mean = n > 0 ? s / n : 0.0;
    for (int i = 0; i < n; i++)
        ss += (v[i] - *mean) * (v[i] - *mean);
    *sd = n > 1 ? sqrt(ss / (n - 1)) : 0.0;
}

/* One repetition of miniquant's test: warm-up, then the timed run; tokens per second. */
static int run_mq(mq_gpt_t *m, mq_gpt_kv_t *kv, const int *tok, const serve_test_t *t, double *tps,
                  mq_error_t *err) {
    int pp = t->name[0] == 'p', rc;
    for (int timed = 0; timed < 2; timed++) {
        kv->len = 0;
        double t0 = mq_now();
        if (pp) {
            /* llama-bench warms up with the whole prompt (up to its batch of 2048) */
            rc = mq_gpt_prefill(m, kv, tok, t->n, err);
        } else {
            int n = timed ? t->n : 1; /* and with one generated token */
            rc = MQ_OK;
            for (int i = 0; i < n && rc == MQ_OK; i++)
                rc = mq_gpt_decode_step(m, kv, tok[i], err);
        }
        if (rc) return rc;
        if (timed) *tps = t->n / (mq_now() - t0);
    }
    return MQ_OK;
}

int cli_llama_bench_parse(const char *json, double *tps, char *type, size_t type_n) {
    cJSON *root = cJSON_Parse(json), *first = cJSON_GetArrayItem(root, 0);
    cJSON *ts = cJSON_GetObjectItem(first, "avg_ts"),
          *mt = cJSON_GetObjectItem(first, "model_type");
    int rc = -1;
    if (cJSON_IsArray(root) && cJSON_IsNumber(ts) && ts->valuedouble > 0 &&
        ts->valuedouble < 1e12) {
        *tps = ts->valuedouble;
        if (type && type_n && !type[0] && cJSON_IsString(mt))
            snprintf(type, type_n, "%s", mt->valuestring);
        rc = 0;
    }
    cJSON_Delete(root);
    return rc;
}

/* One invocation of llama-bench: one repetition of the test on the file; its tokens per second,
 * and the first time its description of the model. */
static int run_llama_bench(const char *bin, const char *file, const serve_test_t *t, int threads,
                           double *tps, char *type, size_t type_n, mq_error_t *err) {
    char qbin[4200], qfile[4200], cmd[9000];
    char exe[4096];
    snprintf(exe, sizeof exe, "%s/llama-bench", bin);
    if (!mq_file_exists(exe))
        return mq_error_set(err, MQ_ERR_IO, "LLAMA_CPP_BIN: %s does not exist", exe);
    if (cli_shell_quote(exe, qbin, sizeof qbin) || cli_shell_quote(file, qfile, sizeof qfile))
        return mq_error_set(err, MQ_ERR_ARG, "a path too long for the command line: %s", file);
    int pp = t->name[0] == 'p';
    snprintf(cmd, sizeof cmd, "%s -m %s -p %d -n %d -r 1 -t %d -o json 2>/dev/null", qbin, qfile,
             pp ? t->n : 0, pp ? 0 : t->n, threads);
    char *out;
    size_t len;
    int status, rc = cli_run_capture(cmd, &out, &len, &status, err);
    if (rc) return rc;
    if (status != 0 || cli_llama_bench_parse(out, tps, type, type_n) != 0)
        rc = mq_error_set(err, MQ_ERR_IO, "llama-bench failed on %s (exit status %d): %.200s", file,
                          status, len ? out : "no output");
    free(out);
    return rc;
}

static void print_header(int with_lc) {
    printf("| %-36s | %10s | %8s | %7s | %6s | %18s |", "model file", "size MiB", "params M",
           "threads", "test", "miniquant t/s");
    if (with_lc) printf(" %18s | %-18s | %13s |", "llama.cpp t/s", "llama.cpp type", "ratio (med)");
    printf("\n|%s|%s|%s|%s|%s|%s|", "--------------------------------------",
           "-----------:", "---------:", "--------:", "--------:", "-------------------:");
    if (with_lc)
        printf("%s|%s|%s|", "-------------------:", "--------------------", "--------------:");
    printf("\n");
}

/* The median of the repetitions' ratios miniquant / llama.cpp. */
static double median_ratio(const serve_test_t *t) {
    double r[MAX_SERVE_REPS];
    for (int i = 0; i < t->reps; i++)
        r[i] = t->mq[i] / t->lc[i];
    return mq_median(r, t->reps);
}

int cli_bench_serve(const cli_serve_opts_t *o, cJSON *out, mq_error_t *err) {
    const char *bin = getenv("LLAMA_CPP_BIN");
    int with_lc = bin && *bin, threads = omp_get_max_threads(), rc = MQ_OK;
    int a8 = mq_kernels_serving();
    char about[256];
    if (o->reps > MAX_SERVE_REPS)
        return mq_error_set(err, MQ_ERR_ARG, "at most %d repetitions", MAX_SERVE_REPS);
    printf("== bench serve: llama-bench's pp (a prompt at once) and tg (one token at a time), "
           "tokens per second, mean ± sd over %d repetitions, %d threads, miniquant's "
           "activations %s%s\n",
           o->reps, threads, mq_kernels_a8_about(a8, about, sizeof about),
           with_lc ? "; llama-bench on the same file in turns with miniquant, ratio = median of "
                     "the repetitions' miniquant / llama.cpp"
                   : " (set LLAMA_CPP_BIN to llama.cpp's bin folder to run llama-bench beside)");
    print_header(with_lc);
    fflush(stdout);
    cJSON *rows = cJSON_AddArrayToObject(out, "serve");
    int n_tests = (o->n_prompt >= 0) + (o->n_gen >= 0);
    mq_progress_t prog;
    int64_t done = 0;
    mq_progress_start(&prog, "bench serve", (int64_t)o->n_models * n_tests * o->reps);
    for (int f = 0; f < o->n_models && rc == MQ_OK; f++) {
        const char *file = o->models[f];
        mq_qmodel_t q = {0};
        mq_tokenizer_t *tok = NULL;
        if ((rc = mq_qmodel_load(file, &q, &tok, err))) break;
        mq_gpt_t *m = q.model;
        int T = m->cfg.n_ctx, V = m->cfg.vocab_size;
        serve_test_t tests[2];
        int nt = 0, np = o->n_prompt ? o->n_prompt : (T < 512 ? T : 512),
            ng = o->n_gen ? o->n_gen : (T < 128 ? T : 128);
        if (np > 0) tests[nt++] = (serve_test_t){.name = "pp", .n = np};
        if (ng > 0) tests[nt++] = (serve_test_t){.name = "tg", .n = ng};
        for (int i = 0; i < nt; i++)
            if (tests[i].n > T)
                rc = mq_error_set(err, MQ_ERR_ARG,
                                  "%s: %s %d needs %d positions; the model's context is %d", file,
                                  tests[i].name, tests[i].n, tests[i].n, T);
        mq_gpt_kv_t kv = {0};
        int *ids = malloc((size_t)T * sizeof *ids);
        if (rc == MQ_OK && !ids) rc = mq_error_set(err, MQ_ERR_NOMEM, "out of memory");
        if (rc == MQ_OK) rc = mq_gpt_kv_init(&kv, &m->cfg, err);
        if (rc == MQ_OK) {
            mq_rng_t r;
            mq_rng_seed(&r, 1);
            for (int i = 0; i < T; i++)
                ids[i] = (int)mq_rng_below(&r, (uint64_t)V);
            if (tok && mq_tokenizer_adds_bos(tok) && mq_tokenizer_bos(tok) >= 0)
                ids[0] = mq_tokenizer_bos(tok);
        }
        char type[64] = "";
        for (int i = 0; i < nt && rc == MQ_OK; i++) {
            serve_test_t *t = &tests[i];
            for (int k = 0; k < o->reps && rc == MQ_OK; k++) {
                rc = run_mq(m, &kv, ids, t, &t->mq[k], err);
                if (rc == MQ_OK && with_lc)
                    rc = run_llama_bench(bin, file, t, threads, &t->lc[k], type, sizeof type, err);
                if (rc == MQ_OK) t->reps = k + 1;
                mq_progress_update(&prog, ++done, NULL);
            }
        }
        struct stat sb;
        double mib = stat(file, &sb) == 0 ? (double)sb.st_size / (1 << 20) : 0.0;
        double params = (double)mq_gpt_num_params(&m->cfg) / 1e6;
        const char *slash = strrchr(file, '/');
        for (int i = 0; i < nt && rc == MQ_OK; i++) {
            serve_test_t *t = &tests[i];
            double mm, ms, lm = 0, ls = 0;
            char test[24], cell[40];
            mean_sd(t->mq, t->reps, &mm, &ms);
            snprintf(test, sizeof test, "%s%d", t->name, t->n);
            snprintf(cell, sizeof cell, "%.1f ± %.1f", mm, ms);
            printf("| %-36s | %10.2f | %8.2f | %7d | %6s | %18s |", slash ? slash + 1 : file, mib,
                   params, threads, test, cell);
            cJSON *row = cJSON_CreateObject();
            cJSON_AddStringToObject(row, "model", file);
            cJSON_AddNumberToObject(row, "file_bytes", mib * (1 << 20));
            cJSON_AddNumberToObject(row, "params", params * 1e6);
            cJSON_AddStringToObject(row, "scheme", q.recipe[0] ? q.recipe : q.scheme.name);
            cJSON_AddNumberToObject(row, "threads", threads);
            cJSON_AddStringToObject(row, "activations", about);
            cJSON_AddStringToObject(row, "test", test);
            cJSON_AddItemToObject(row, "miniquant_tokens_per_s",
                                  cJSON_CreateDoubleArray(t->mq, t->reps));
            cJSON_AddNumberToObject(row, "miniquant_mean", mm);
            cJSON_AddNumberToObject(row, "miniquant_sd", ms);
            if (with_lc) {
                mean_sd(t->lc, t->reps, &lm, &ls);
                snprintf(cell, sizeof cell, "%.1f ± %.1f", lm, ls);
                double ratio = median_ratio(t);
                printf(" %18s | %-18s | %13.2f |", cell, type, ratio);
                cJSON_AddItemToObject(row, "llamacpp_tokens_per_s",
                                      cJSON_CreateDoubleArray(t->lc, t->reps));
                cJSON_AddNumberToObject(row, "llamacpp_mean", lm);
                cJSON_AddNumberToObject(row, "llamacpp_sd", ls);
                cJSON_AddStringToObject(row, "llamacpp_model_type", type);
                cJSON_AddNumberToObject(row, "ratio_median", ratio);
            }
            printf("\n");
            fflush(stdout);
            cJSON_AddItemToArray(rows, row);
        }
        free(ids);
        mq_gpt_kv_free(&kv);
        mq_tokenizer_free(tok);
        mq_qmodel_free(&q);
    }
    if (rc == MQ_OK) mq_progress_finish(&prog, NULL);
    return rc;
}

int cli_bench_serve_plot(const cJSON *rows, const char *png, mq_error_t *err) {
    int n = cJSON_GetArraySize(rows), drawn = 0;
    mq_strbuf_t sc = {0};
    mq_strbuf_printf(
        &sc, "set title \"miniquant's tokens per second over llama.cpp's on the same file "
             "(median of the paired ratios)\" font ',12'\n"
             "set logscale y 2\nset yrange [0.25:8]\nset ytics (0.25, 0.5, 1, 2, 4, 8)\n"
             "set grid ytics\nset ylabel 'miniquant / llama.cpp'\n"
             "set style data histograms\nset style histogram clustered gap 1\n"
             "set style fill solid 0.85 border -1\nset boxwidth 0.9\n"
             "set xtics rotate by -45 left font ',9' nomirror\nset key top right\nset rmargin 10\n"
             "set arrow from graph 0, first 1 to graph 1, first 1 nohead lw 2 lc rgb "
             "'black' front\n"
             "$d << EOD\n");
    for (int i = 0; i + 1 < n; i++) { /* the file's pp row, then its tg row */
        const cJSON *pp = cJSON_GetArrayItem(rows, i), *tg = cJSON_GetArrayItem(rows, i + 1);
        const cJSON *f = cJSON_GetObjectItem(pp, "model"), *f2 = cJSON_GetObjectItem(tg, "model");
        const cJSON *rp = cJSON_GetObjectItem(pp, "ratio_median"),
                    *rt = cJSON_GetObjectItem(tg, "ratio_median");
        const cJSON *tp = cJSON_GetObjectItem(pp, "test"), *tt = cJSON_GetObjectItem(tg, "test");
        if (!cJSON_IsString(f) || !cJSON_IsString(f2) || strcmp(f->valuestring, f2->valuestring) ||
            !cJSON_IsNumber(rp) || !cJSON_IsNumber(rt) || !cJSON_IsString(tp) ||
            !cJSON_IsString(tt) || tp->valuestring[0] != 'p' || tt->valuestring[0] != 't')
            continue;
        const char *slash = strrchr(f->valuestring, '/'),
                   *name = slash ? slash + 1 : f->valuestring;
        char label[128];
        snprintf(label, sizeof label, "%s", name);
        char *dot = strstr(label, ".gguf");
        if (dot) *dot = 0;
        for (char *c = label; *c; c++) /* gnuplot reads _ as a subscript */
            if (*c == '_') *c = '-';
        mq_strbuf_printf(&sc, "\"%s\" %.4f %.4f\n", label, rp->valuedouble, rt->valuedouble);
        drawn++;
        i++;
    }
    mq_strbuf_printf(&sc, "EOD\nplot $d using 2:xtic(1) title 'prompt (pp)' lc rgb '#4c72b0', "
                          "'' using 3 title 'generation (tg)' lc rgb '#dd8452'\n");
    int rc = drawn == 0 ? mq_error_set(err, MQ_ERR_ARG,
                                       "bench serve: no file with llama.cpp's pp and tg to plot")
             : sc.oom   ? mq_error_set(err, MQ_ERR_NOMEM, "out of memory for the plot")
                        : mq_plot_png(png, 1200, 650, sc.s, err);
    mq_strbuf_free(&sc);
    return rc;
}
