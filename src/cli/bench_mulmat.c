/* miniquant bench mulmat: the fused kernels against ggml's on ggml's own benchmark cases. It
 * runs llama.cpp's `test-backend-ops perf -o MUL_MAT -b CPU` (LLAMA_CPP_BIN), or reads a saved
 * output of it (--from), takes each case whose weight type miniquant stores (F32, F16, Q8_0,
 * Q4_0, the K-quants, IQ4_NL; activations F32), and times miniquant's y = x W^T on the same
 * shape and type, with the serving commands' activations (int8 where they pay with VNNI, as
 * ggml's CPU products quantize x to their Q8 types): the weight W is m x k (m outputs, k
 * inputs), x has n rows, n = 1 the decode
 * product (GEMV), larger n the prompt's (GEMM). test-backend-ops runs first, to its end, and
 * miniquant's kernels after it: the two never share the cores. */
#include <ctype.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench_mulmat.h"
#include "cli.h"
#include "miniquant/fileio.h"
#include "miniquant/kernels.h"
#include "miniquant/progress.h"
#include "miniquant/quant.h"
#include "miniquant/rng.h"

#define MAX_CASES 512

/* ggml's type names and the scheme whose weights miniquant stores as that type. */
static const struct {
    const char *ggml, *scheme;
} TYPES[] = {{"f32", "fp32"},  {"f16", "fp16"},     {"q8_0", "int8_g32"}, {"q4_0", "int4_g32"},
             {"q2_K", "q2_k"}, {"q3_K", "q3_k"},    {"q4_K", "q4_k"},     {"q5_K", "q5_k"},
             {"q6_K", "q6_k"}, {"iq4_nl", "iq4_nl"}};
#define N_TYPES (int)(sizeof TYPES / sizeof TYPES[0])

int cli_mulmat_parse_line(const char *line, cli_mulmat_case_t *c) {
    const char *p = strstr(line, "MUL_MAT(");
    if (!p) return 0;
    char ta[16], tb[16];
    int m, n, k, consumed = 0;
    if (sscanf(p, "MUL_MAT(type_a=%15[^,],type_b=%15[^,],m=%d,n=%d,k=%d,bs=[1,1],nr=[1,1]%n", ta,
               tb, &m, &n, &k, &consumed) != 5 ||
        consumed == 0)
        return 0;
    const char *q = strstr(p + consumed, "):");
    int runs;
    double us;
    if (!q || sscanf(q + 2, " %d runs - %lf us/run", &runs, &us) != 2) return 0;
    if (m < 1 || n < 1 || k < 1 || m > (1 << 20) || n > (1 << 16) || k > (1 << 20) || runs < 1 ||
        !(us > 0.0) || us > 1e12)
        return 0;
    memset(c, 0, sizeof *c);
    snprintf(c->type_a, sizeof c->type_a, "%s", ta);
    snprintf(c->type_b, sizeof c->type_b, "%s", tb);
    c->m = m;
    c->n = n;
    c->k = k;
    c->us_per_run = us;
    return 1;
}

/* The scheme of a ggml type name, or NULL. */
static const char *scheme_of(const char *ggml) {
    for (int i = 0; i < N_TYPES; i++)
        if (!strcmp(TYPES[i].ggml, ggml)) return TYPES[i].scheme;
    return NULL;
}

/* Reads the cases from fp; *n of them kept. */
static int read_cases(FILE *fp, const char *what, cli_mulmat_case_t *cases, int *n,
                      mq_error_t *err) {
    char line[1024];
    int lines = 0;
    *n = 0;
    while (fgets(line, sizeof line, fp)) {
        lines++;
        cli_mulmat_case_t c;
        if (!cli_mulmat_parse_line(line, &c) || strcmp(c.type_b, "f32") || !scheme_of(c.type_a))
            continue;
        if (*n >= MAX_CASES)
            return mq_error_set(err, MQ_ERR_ARG, "%s: more than %d MUL_MAT cases", what, MAX_CASES);
        cases[(*n)++] = c;
    }
    if (*n == 0)
        return mq_error_set(err, MQ_ERR_ARG,
                            "%s: no MUL_MAT case of a type miniquant stores in its %d lines", what,
                            lines);
    return MQ_OK;
}

/* A weight per (type, m, k), quantized once for every n. */
typedef struct weight {
    char type[16];
    int m, k;
    mq_qweight_t w;
} weight_t;

static int weight_for(weight_t *ws, int *nw, const cli_mulmat_case_t *c, mq_qweight_t **out,
                      mq_error_t *err) {
    for (int i = 0; i < *nw; i++)
        if (!strcmp(ws[i].type, c->type_a) && ws[i].m == c->m && ws[i].k == c->k) {
            *out = &ws[i].w;
            return MQ_OK;
        }
    size_t numel = (size_t)c->m * c->k;
    float *W = malloc(numel * sizeof *W);
    if (!W) return mq_error_set(err, MQ_ERR_NOMEM, "cannot allocate a %d x %d weight", c->m, c->k);
    mq_rng_t r;
    mq_rng_seed(&r, 42);
    for (size_t i = 0; i < numel; i++)
        W[i] = 0.02f * mq_rng_normal(&r);
    mq_scheme_t s;
    weight_t *w = &ws[*nw];
    memset(w, 0, sizeof *w);
    int rc = mq_scheme_parse(scheme_of(c->type_a), &s, err);
    if (rc == MQ_OK) rc = mq_qweight_quantize(&w->w, &s, W, c->m, c->k, err);
    free(W);
    if (rc) return rc;
    /* the type stored must be the case's: ggml names K-quants with a capital K */
    char lower[16];
    for (int i = 0; i < (int)sizeof lower; i++)
        lower[i] = (char)tolower((unsigned char)c->type_a[i]);
    if (strcmp(w->w.format->name, lower)) {
        mq_qweight_free(&w->w);
        return mq_error_set(err, MQ_ERR_UNSUPPORTED, "%s stores a %d x %d weight as %s, not %s",
                            s.name, c->m, c->k, w->w.format->name, lower);
    }
    snprintf(w->type, sizeof w->type, "%s", c->type_a);
    w->m = c->m;
    w->k = c->k;
    (*nw)++;
    *out = &w->w;
    return MQ_OK;
}

/* Microseconds per call: the median of reps calls after a warm-up, each sample at least 1 ms of
 * repeated calls. */
static double time_case(const mq_qweight_t *w, const float *x, int n, float *y, int reps) {
    mq_qweight_forward(w, NULL, y, x, n, NULL);
    double t0 = mq_now();
    mq_qweight_forward(w, NULL, y, x, n, NULL);
    double once = mq_now() - t0;
    int inner = once > 0 ? (int)(1e-3 / once) : 1;
    if (inner < 1) inner = 1;
    double t[64];
    if (reps > 64) reps = 64;
    for (int r = 0; r < reps; r++) {
        t0 = mq_now();
        for (int i = 0; i < inner; i++)
            mq_qweight_forward(w, NULL, y, x, n, NULL);
        t[r] = (mq_now() - t0) / inner;
    }
    return mq_median(t, reps) * 1e6;
}

/* Runs test-backend-ops (its output also kept in save when set) and reads its cases. */
static int run_tbo(const char *bin, const char *save, cli_mulmat_case_t *cases, int *n,
                   mq_error_t *err) {
    char exe[4096], qexe[8200], cmd[8300];
    snprintf(exe, sizeof exe, "%s/test-backend-ops", bin);
    if (!mq_file_exists(exe))
        return mq_error_set(err, MQ_ERR_IO, "LLAMA_CPP_BIN: %s does not exist", exe);
    if (cli_shell_quote(exe, qexe, sizeof qexe))
        return mq_error_set(err, MQ_ERR_ARG, "LLAMA_CPP_BIN: a path too long: %s", exe);
    snprintf(cmd, sizeof cmd, "%s perf -o MUL_MAT -b CPU 2>&1", qexe);
    fprintf(stderr, "bench mulmat: running %s perf -o MUL_MAT -b CPU (several minutes)\n", exe);
    /* the whole output first, then the cases: kept as it came when save is set */
    char *buf;
    size_t len;
    int status, rc = cli_run_capture(cmd, &buf, &len, &status, err);
    if (rc) return rc;
    if (status != 0) rc = mq_error_set(err, MQ_ERR_IO, "%s failed (exit status %d)", exe, status);
    if (rc == MQ_OK && save) rc = mq_write_file(save, buf, len, err);
    if (rc == MQ_OK) {
        FILE *in = fmemopen(buf, len, "r");
        rc = in ? read_cases(in, exe, cases, n, err)
                : mq_error_set(err, MQ_ERR_NOMEM, "out of memory");
        if (in) fclose(in);
    }
    free(buf);
    return rc;
}

int cli_bench_mulmat(const cli_mulmat_opts_t *o, cJSON *out, mq_error_t *err) {
    cli_mulmat_case_t *cases = calloc(MAX_CASES, sizeof *cases);
    weight_t *ws = calloc(MAX_CASES, sizeof *ws);
    int n = 0, nw = 0, rc = cases && ws ? MQ_OK : mq_error_set(err, MQ_ERR_NOMEM, "out of memory");
    const char *bin = getenv("LLAMA_CPP_BIN");
    if (rc == MQ_OK && o->from) {
        FILE *fp = fopen(o->from, "r");
        if (!fp)
            rc = mq_error_set(err, MQ_ERR_IO, "cannot open %s", o->from);
        else {
            rc = read_cases(fp, o->from, cases, &n, err);
            fclose(fp);
        }
    } else if (rc == MQ_OK && bin && *bin) {
        rc = run_tbo(bin, o->save, cases, &n, err);
    } else if (rc == MQ_OK) {
        rc = mq_error_set(err, MQ_ERR_ARG,
                          "bench mulmat needs llama.cpp's test-backend-ops: set LLAMA_CPP_BIN to "
                          "its folder, or give --from with a saved output of it");
    }
    if (rc == MQ_OK) rc = mq_kernels_init(err);
    char about[256] = "";
    if (rc == MQ_OK) {
        mq_kernels_a8_about(mq_kernels_serving(), about, sizeof about);
        printf("== MUL_MAT: llama.cpp's test-backend-ops perf cases (CPU backend, %s) against "
               "miniquant's fused kernels (%s, %d threads, median of %d), y (n x m) = x (n x k) "
               "W^T, W m x k of type_a, x F32; miniquant's activations %s\n",
               o->from ? o->from : "run first, to its end", mq_isa_name(mq_kernels_isa()),
               omp_get_max_threads(), o->reps, about);
        printf("| %-7s | %5s | %4s | %6s | %14s | %10s | %14s | %10s | %15s |\n", "type", "m", "n",
               "k", "ggml us/run", "GFLOP/s", "miniquant us", "GFLOP/s", "miniquant speed");
        printf("|---------|------:|-----:|-------:|---------------:|-----------:|---------------:|"
               "-----------:|----------------:|\n");
        fflush(stdout);
    }
    if (rc == MQ_OK) cJSON_AddStringToObject(out, "activations", about);
    cJSON *rows = rc == MQ_OK ? cJSON_AddArrayToObject(out, "mulmat") : NULL;
    mq_progress_t prog;
    mq_progress_start(&prog, "bench mulmat", n);
    float *x = NULL, *y = NULL;
    for (int i = 0; i < n && rc == MQ_OK; i++) {
        const cli_mulmat_case_t *c = &cases[i];
        mq_qweight_t *w = NULL;
        rc = weight_for(ws, &nw, c, &w, err);
        free(x);
        free(y);
        x = malloc((size_t)c->n * c->k * sizeof *x);
        y = malloc((size_t)c->n * c->m * sizeof *y);
        if (rc == MQ_OK && (!x || !y)) rc = mq_error_set(err, MQ_ERR_NOMEM, "out of memory");
        if (rc) break;
        mq_rng_t r;
        mq_rng_seed(&r, 7);
        for (size_t j = 0; j < (size_t)c->n * c->k; j++)
            x[j] = mq_rng_normal(&r);
        double us = time_case(w, x, c->n, y, o->reps);
        double flop = 2.0 * c->m * c->n * c->k;
        printf("| %-7s | %5d | %4d | %6d | %14.2f | %10.1f | %14.2f | %10.1f | %14.2fx |\n",
               c->type_a, c->m, c->n, c->k, c->us_per_run, flop / c->us_per_run * 1e-3, us,
               flop / us * 1e-3, c->us_per_run / us);
        fflush(stdout);
        cJSON *row = cJSON_CreateObject();
        cJSON_AddStringToObject(row, "type", c->type_a);
        cJSON_AddNumberToObject(row, "m", c->m);
        cJSON_AddNumberToObject(row, "n", c->n);
        cJSON_AddNumberToObject(row, "k", c->k);
        cJSON_AddNumberToObject(row, "ggml_us_per_run", c->us_per_run);
        cJSON_AddNumberToObject(row, "miniquant_us", us);
        cJSON_AddNumberToObject(row, "miniquant_speed_vs_ggml", c->us_per_run / us);
        cJSON_AddItemToArray(rows, row);
        mq_progress_update(&prog, i + 1, c->type_a);
    }
    if (rc == MQ_OK) mq_progress_finish(&prog, NULL);
    free(x);
    free(y);
    for (int i = 0; ws && i < nw; i++)
        mq_qweight_free(&ws[i].w);
    free(ws);
    free(cases);
    return rc;
}
