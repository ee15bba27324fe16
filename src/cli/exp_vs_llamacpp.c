/* miniquant experiment vs-llamacpp: at each of llama-quantize's size points, its files (with and
 * without an importance matrix from the valid split) against miniquant's best file of no larger
 * size, all measured the same way: size, bits per weight, perplexity (miniquant's default
 * protocol and llama-perplexity's), and the KL divergence of each file's next-token distribution
 * from FP32's.
 *
 * llama.cpp runs when LLAMA_CPP_BIN names the folder of its binaries (llama-imatrix,
 * llama-quantize, llama-perplexity); its side is then recorded in DIR/llamacpp.json with the
 * commands. Without it, that record is read back and only miniquant's side is made again. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli.h"
#include "measure.h"
#include "miniquant/arch.h"
#include "miniquant/checkpoint.h"
#include "miniquant/dataset.h"
#include "miniquant/eval.h"
#include "miniquant/export.h"
#include "miniquant/fileio.h"
#include "miniquant/gptq.h"
#include "miniquant/progress.h"
#include "miniquant/recipe.h"
#include "miniquant/report.h"
#include "miniquant/sensitivity.h"

static const struct {
    const char *llama; /* llama-quantize's type name */
    const char *recipe; /* miniquant's mixture of the same name */
} POINTS[] = {{"Q8_0", "q8_0"},     {"Q6_K", "q6_k"},     {"Q5_K_M", "q5_k_m"},
              {"Q4_K_M", "q4_k_m"}, {"Q4_K_S", "q4_k_s"}, {"IQ4_NL", "iq4_nl"},
              {"Q4_0", "q4_0"},     {"Q3_K_M", "q3_k_m"}, {"Q2_K", "q2_k"}};
#define N_POINTS ((int)(sizeof POINTS / sizeof POINTS[0]))

/* What llama-perplexity --kl-divergence says of a file. */
typedef struct llama_kld {
    int ok;
    double ppl, ppl_err;   /* Mean PPL(Q): the file's perplexity, llama-perplexity -c n_ctx */
    double kld, kld_err, kld_p99, same_top, same_top_err; /* same_top in % */
} llama_kld_t;

/* One file of the comparison. */
typedef struct row {
    const char *tool;   /* "llama-quantize", "llama-quantize+imatrix", "miniquant" */
    int point;          /* index into POINTS */
    char name[48];      /* the type or recipe */
    char path[4400];
    size_t bytes;       /* the file's size */
    double bpw;         /* 8 * bytes / weights of the model's Linears and token_embd */
    mq_kld_result_t kl, kl_llama; /* miniquant's: default protocol, llamacpp protocol (test) */
    double kl_valid;    /* miniquant's candidates: default protocol on the valid split */
    int selected;       /* miniquant: the candidate chosen on the valid split */
    mq_kld_result_t vs_llama; /* the selected one against llama-quantize+imatrix's file */
    int has_vs_llama;
    llama_kld_t lp;
} row_t;

typedef struct ctx {
    mq_gpt_t m;
    mq_tokenizer_t *tok;
    mq_ckpt_info_t info;
    mq_tokens_t test, test_text, valid;
    const char *model, *dir, *bin;
    char files[4200];
    size_t weights;       /* weights of the Linears and token_embd */
    double base_ppl_llama; /* llama-perplexity's FP32 perplexity (final estimate) */
} ctx_t;

/* ---- running llama.cpp ---- */

/* Runs cmd through the shell with its output in log; MQ_ERR_IO naming both when it fails. */
static int run(const char *cmd, const char *log, mq_error_t *err) {
    char full[16384];
    snprintf(full, sizeof full, "%s > '%s' 2>&1", cmd, log);
    fprintf(stderr, "$ %s\n", cmd);
    int st = system(full);
    if (st != 0)
        return mq_error_set(err, MQ_ERR_IO, "'%s' failed (status %d); its output is in %s", cmd, st,
                            log);
    return MQ_OK;
}

/* The number after the first occurrence of key in text (after a ':' or '=' when one follows). */
static int number_after(const char *text, const char *key, double *v) {
    const char *p = strstr(text, key);
    if (!p) return 0;
    p += strlen(key);
    while (*p == ' ' || *p == ':' || *p == '=') p++;
    char *end;
    *v = strtod(p, &end);
    return end != p;
}

/* The number after "±" following key. */
static int error_after(const char *text, const char *key, double *v) {
    const char *p = strstr(text, key);
    if (!p || !(p = strstr(p, "\xc2\xb1"))) return 0;
    char *end;
    *v = strtod(p + 2, &end);
    return end != p + 2;
}

static int read_log(const char *log, char **text, mq_error_t *err) {
    size_t len;
    return mq_read_file(log, (size_t)1 << 26, text, &len, err);
}

static int llama_kld(const ctx_t *c, const char *file, const char *base_kld, const char *log,
                     llama_kld_t *out, mq_error_t *err) {
    char cmd[12000];
    snprintf(cmd, sizeof cmd,
             "'%s/llama-perplexity' -m '%s' --kl-divergence-base '%s' --kl-divergence -c %d",
             c->bin, file, base_kld, c->m.cfg.n_ctx);
    int rc = run(cmd, log, err);
    char *t = NULL;
    if (rc == MQ_OK) rc = read_log(log, &t, err);
    if (rc) return rc;
    memset(out, 0, sizeof *out);
    out->ok = number_after(t, "Mean PPL(Q)", &out->ppl) &&
              error_after(t, "Mean PPL(Q)", &out->ppl_err) &&
              number_after(t, "Mean    KLD:", &out->kld) &&
              error_after(t, "Mean    KLD:", &out->kld_err) &&
              number_after(t, "99.0%   KLD:", &out->kld_p99) &&
              number_after(t, "Same top p:", &out->same_top) &&
              error_after(t, "Same top p:", &out->same_top_err);
    free(t);
    if (!out->ok)
        return mq_error_set(err, MQ_ERR_FORMAT, "%s: no KL divergence statistics in the output",
                            log);
    return MQ_OK;
}

/* ---- measuring a file with miniquant ---- */

static size_t file_size(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 ? (size_t)st.st_size : 0;
}

static int measure_file(ctx_t *c, row_t *r, int valid_too, mq_error_t *err) {
    mq_qmodel_t q;
    int rc = mq_qmodel_load(r->path, &q, NULL, err);
    if (rc) return rc;
    r->bytes = file_size(r->path);
    mq_progress_mute(+1);
    rc = mq_kl_divergence(&c->m, q.model, c->test.ids, c->test.n, MQ_PPL_DEFAULT, 0, 8, &r->kl,
                          err);
    if (rc == MQ_OK)
        rc = mq_kl_divergence(&c->m, q.model, c->test_text.ids, c->test_text.n, MQ_PPL_LLAMACPP,
                              0, 8, &r->kl_llama, err);
    mq_kld_result_t kv;
    if (rc == MQ_OK && valid_too) {
        rc = mq_kl_divergence(&c->m, q.model, c->valid.ids, c->valid.n, MQ_PPL_DEFAULT, 0, 8, &kv,
                              err);
        r->kl_valid = kv.mean;
    }
    mq_progress_mute(-1);
    mq_qmodel_free(&q);
    if (rc == MQ_OK)
        fprintf(stderr, "  %-24s %-16s %9zu bytes  KL %.6f\n", r->tool, r->name, r->bytes,
                r->kl.mean);
    return rc;
}

/* ---- miniquant's files ---- */

/* Builds the recipe's model, writes it to path, and returns the file's size. */
static int write_recipe(ctx_t *c, const mq_recipe_t *rec, const char *path, size_t *bytes,
                        mq_error_t *err) {
    mq_qmodel_t q;
    mq_progress_mute(+1);
    int rc = mq_gptq_build_recipe(&c->m, rec, 0, c->valid.ids, c->valid.n, NULL, &q, err);
    mq_progress_mute(-1);
    if (rc) return rc;
    rc = mq_qmodel_save(path, &c->m, &q, c->tok, err);
    mq_qmodel_free(&q);
    *bytes = file_size(path);
    return rc;
}

/* auto_gptq under a budget of file bytes: the target from the bytes the file holds beyond the
 * recipe's tensors (overhead, measured on the mixture's file), lowered until the file fits. */
static int write_auto(ctx_t *c, const double *cost, int n_types, size_t budget, size_t overhead,
                      const char *path, size_t *bytes, double *target, mq_error_t *err) {
    long slack = 256;
    for (int tries = 0; tries < 6; tries++) {
        *target = 8.0 * ((double)budget - (double)overhead - (double)slack) / (double)c->weights;
        mq_recipe_t r;
        int rc = mq_recipe_choose(&c->m.cfg, cost, n_types, *target, "_gptq", &r, NULL,
                                  err);
        if (rc) return rc;
        rc = write_recipe(c, &r, path, bytes, err);
        mq_recipe_free(&r);
        if (rc) return rc;
        if (*bytes <= budget) return MQ_OK;
        slack += (long)(*bytes - budget) + 64;
    }
    return mq_error_set(err, MQ_ERR_ARG, "auto: no file of at most %zu bytes", budget);
}

/* ---- the record of llama.cpp's side ---- */

static double num(const cJSON *o, const char *key) {
    const cJSON *x = cJSON_GetObjectItemCaseSensitive(o, key);
    return cJSON_IsNumber(x) ? x->valuedouble : NAN;
}

static cJSON *llama_json(const llama_kld_t *l) {
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "ppl", l->ppl);
    cJSON_AddNumberToObject(o, "ppl_stderr", l->ppl_err);
    cJSON_AddNumberToObject(o, "kld_mean", l->kld);
    cJSON_AddNumberToObject(o, "kld_mean_stderr", l->kld_err);
    cJSON_AddNumberToObject(o, "kld_p99", l->kld_p99);
    cJSON_AddNumberToObject(o, "same_top_pct", l->same_top);
    cJSON_AddNumberToObject(o, "same_top_pct_stderr", l->same_top_err);
    return o;
}

static void llama_from_json(const cJSON *o, llama_kld_t *l) {
    memset(l, 0, sizeof *l);
    if (!cJSON_IsObject(o)) return;
    l->ok = 1;
    l->ppl = num(o, "ppl");
    l->ppl_err = num(o, "ppl_stderr");
    l->kld = num(o, "kld_mean");
    l->kld_err = num(o, "kld_mean_stderr");
    l->kld_p99 = num(o, "kld_p99");
    l->same_top = num(o, "same_top_pct");
    l->same_top_err = num(o, "same_top_pct_stderr");
}

static cJSON *row_json(const ctx_t *c, const row_t *r) {
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "point", POINTS[r->point].llama);
    cJSON_AddStringToObject(o, "tool", r->tool);
    cJSON_AddStringToObject(o, "name", r->name);
    cJSON_AddStringToObject(o, "file", r->path);
    cJSON_AddNumberToObject(o, "file_bytes", (double)r->bytes);
    cJSON_AddNumberToObject(o, "bits_per_weight_of_file",
                            8.0 * (double)r->bytes / (double)c->weights);
    cJSON_AddItemToObject(o, "kld_default_protocol", cli_kld_json(&r->kl));
    cJSON_AddItemToObject(o, "kld_llamacpp_protocol", cli_kld_json(&r->kl_llama));
    if (!strcmp(r->tool, "miniquant")) {
        cJSON_AddNumberToObject(o, "kld_valid_split", r->kl_valid);
        cJSON_AddBoolToObject(o, "selected", r->selected);
    }
    if (r->lp.ok) cJSON_AddItemToObject(o, "llama_perplexity", llama_json(&r->lp));
    if (r->has_vs_llama) {
        cJSON *v = cJSON_AddObjectToObject(o, "paired_with_llama_quantize_imatrix");
        cJSON_AddNumberToObject(v, "ln_ppl_ratio", r->vs_llama.ln_ppl_ratio);
        cJSON_AddNumberToObject(v, "ln_ppl_ratio_stderr", r->vs_llama.ln_ppl_ratio_stderr);
        cJSON_AddNumberToObject(v, "n_scored", (double)r->vs_llama.n_scored);
    }
    return o;
}

/* Reads DIR/llamacpp.json: llama.cpp's rows (2 per point) and its FP32 perplexity. */
static int read_record(ctx_t *c, row_t *rows, cJSON **record, mq_error_t *err) {
    char path[4300];
    snprintf(path, sizeof path, "%s/llamacpp.json", c->dir);
    int rc = mq_json_read(path, record, err);
    if (rc)
        return mq_error_prefix(err, "no recorded llama.cpp numbers (set LLAMA_CPP_BIN to the "
                                    "folder of llama.cpp's binaries to make them)");
    c->base_ppl_llama = num(*record, "fp32_llama_perplexity");
    const cJSON *arr = cJSON_GetObjectItemCaseSensitive(*record, "files");
    if (!cJSON_IsArray(arr) || cJSON_GetArraySize(arr) != 2 * N_POINTS)
        return mq_error_set(err, MQ_ERR_FORMAT, "%s: \"files\" does not hold %d files", path,
                            2 * N_POINTS);
    for (int i = 0; i < 2 * N_POINTS; i++) {
        const cJSON *o = cJSON_GetArrayItem(arr, i);
        row_t *r = &rows[i];
        const cJSON *name = cJSON_GetObjectItemCaseSensitive(o, "name");
        const cJSON *file = cJSON_GetObjectItemCaseSensitive(o, "file");
        if (!cJSON_IsString(name) || !cJSON_IsString(file) ||
            strcmp(name->valuestring, POINTS[i / 2].llama))
            return mq_error_set(err, MQ_ERR_FORMAT, "%s: files[%d] is not %s", path, i,
                                POINTS[i / 2].llama);
        r->point = i / 2;
        r->tool = i % 2 ? "llama-quantize+imatrix" : "llama-quantize";
        snprintf(r->name, sizeof r->name, "%s", name->valuestring);
        snprintf(r->path, sizeof r->path, "%s", file->valuestring);
        r->bytes = (size_t)num(o, "file_bytes");
        cli_kld_from_json(cJSON_GetObjectItemCaseSensitive(o, "kld_default_protocol"), &r->kl);
        cli_kld_from_json(cJSON_GetObjectItemCaseSensitive(o, "kld_llamacpp_protocol"),
                          &r->kl_llama);
        llama_from_json(cJSON_GetObjectItemCaseSensitive(o, "llama_perplexity"), &r->lp);
    }
    return MQ_OK;
}

/* ---- llama.cpp's side, made anew ---- */

static int llama_side(ctx_t *c, row_t *rows, const char *base_kld, cJSON **record,
                      mq_error_t *err) {
    char cmd[12000], log[4400], imat[4300], valid[4300], test[4300];
    snprintf(imat, sizeof imat, "%s/imatrix.dat", c->files);
    snprintf(valid, sizeof valid, "%s/corpus/valid.txt", c->files);
    snprintf(test, sizeof test, "%s/corpus/test.txt", c->files);
    cJSON *cmds = cJSON_CreateArray();
    *record = cJSON_CreateObject();
    const char *commit = getenv("LLAMA_CPP_COMMIT");
    cJSON_AddStringToObject(*record, "llama_cpp_commit", commit ? commit : "unknown");
    char date[32];
    mq_utc_now(date, sizeof date);
    cJSON_AddStringToObject(*record, "date", date);
    cJSON_AddItemToObject(*record, "commands", cmds);

    snprintf(cmd, sizeof cmd, "'%s/llama-imatrix' -m '%s' -f '%s' -o '%s' -c %d", c->bin,
             c->model, valid, imat, c->m.cfg.n_ctx);
    snprintf(log, sizeof log, "%s/imatrix.log", c->files);
    int rc = run(cmd, log, err);
    cJSON_AddItemToArray(cmds, cJSON_CreateString(cmd));
    snprintf(cmd, sizeof cmd, "'%s/llama-perplexity' -m '%s' -f '%s' -c %d --kl-divergence-base '%s'",
             c->bin, c->model, test, c->m.cfg.n_ctx, base_kld);
    snprintf(log, sizeof log, "%s/fp32-perplexity.log", c->files);
    if (rc == MQ_OK) rc = run(cmd, log, err);
    cJSON_AddItemToArray(cmds, cJSON_CreateString(cmd));
    char *t = NULL;
    if (rc == MQ_OK && (rc = read_log(log, &t, err)) == MQ_OK) {
        if (!number_after(t, "Final estimate: PPL", &c->base_ppl_llama))
            rc = mq_error_set(err, MQ_ERR_FORMAT, "%s: no final estimate", log);
        free(t);
    }
    cJSON_AddNumberToObject(*record, "fp32_llama_perplexity", c->base_ppl_llama);
    cJSON *files = cJSON_AddArrayToObject(*record, "files");
    for (int i = 0; i < 2 * N_POINTS && rc == MQ_OK; i++) {
        row_t *r = &rows[i];
        int p = i / 2, im = i % 2;
        r->point = p;
        r->tool = im ? "llama-quantize+imatrix" : "llama-quantize";
        snprintf(r->name, sizeof r->name, "%s", POINTS[p].llama);
        snprintf(r->path, sizeof r->path, "%s/llama-%s%s.gguf", c->files, POINTS[p].llama,
                 im ? "-imatrix" : "");
        if (im)
            snprintf(cmd, sizeof cmd, "'%s/llama-quantize' --imatrix '%s' '%s' '%s' %s", c->bin,
                     imat, c->model, r->path, POINTS[p].llama);
        else
            snprintf(cmd, sizeof cmd, "'%s/llama-quantize' '%s' '%s' %s", c->bin, c->model,
                     r->path, POINTS[p].llama);
        snprintf(log, sizeof log, "%s/llama-%s%s.quantize.log", c->files, POINTS[p].llama,
                 im ? "-imatrix" : "");
        rc = run(cmd, log, err);
        cJSON_AddItemToArray(cmds, cJSON_CreateString(cmd));
        snprintf(log, sizeof log, "%s/llama-%s%s.kld.log", c->files, POINTS[p].llama,
                 im ? "-imatrix" : "");
        if (rc == MQ_OK) rc = llama_kld(c, r->path, base_kld, log, &r->lp, err);
        if (rc == MQ_OK) rc = measure_file(c, r, 0, err);
        if (rc == MQ_OK) cJSON_AddItemToArray(files, row_json(c, r));
    }
    snprintf(cmd, sizeof cmd,
             "'%s/llama-perplexity' -m FILE --kl-divergence-base '%s' --kl-divergence -c %d",
             c->bin, base_kld, c->m.cfg.n_ctx);
    cJSON_AddItemToArray(cmds, cJSON_CreateString(cmd));
    return rc;
}

/* The selected one of a point's two candidates. */
static row_t *pick_best(row_t *a, row_t *b) { return a->selected ? a : b; }

/* llama-perplexity's numbers of miniquant's file r, as the record of the run that made llama.cpp's
 * side keeps them (the same code makes the same file). */
static void recorded_llama_run(const cJSON *record, row_t *r) {
    const cJSON *arr = cJSON_GetObjectItemCaseSensitive(record, "miniquant_files"), *o;
    cJSON_ArrayForEach(o, arr) {
        const cJSON *name = cJSON_GetObjectItemCaseSensitive(o, "name");
        const cJSON *point = cJSON_GetObjectItemCaseSensitive(o, "point");
        const cJSON *bytes = cJSON_GetObjectItemCaseSensitive(o, "file_bytes");
        if (cJSON_IsString(name) && cJSON_IsString(point) && cJSON_IsNumber(bytes) &&
            !strcmp(name->valuestring, r->name) && !strcmp(point->valuestring, POINTS[r->point].llama) &&
            (size_t)bytes->valuedouble == r->bytes)
            llama_from_json(cJSON_GetObjectItemCaseSensitive(o, "llama_perplexity"), &r->lp);
    }
}

/* miniquant's file against llama-quantize+imatrix's on the same tokens (test split, default
 * protocol): the paired per-token gap ln(PPL_miniquant / PPL_llama), when that file is here. */
static int paired_with_llama(ctx_t *c, const row_t *llama, row_t *mine, mq_error_t *err) {
    if (file_size(llama->path) != llama->bytes) return MQ_OK; /* not on this machine */
    mq_qmodel_t ql, qm;
    int rc = mq_qmodel_load(llama->path, &ql, NULL, err);
    if (rc) return rc;
    if ((rc = mq_qmodel_load(mine->path, &qm, NULL, err))) {
        mq_qmodel_free(&ql);
        return rc;
    }
    mq_progress_mute(+1);
    rc = mq_kl_divergence(ql.model, qm.model, c->test.ids, c->test.n, MQ_PPL_DEFAULT, 0, 8,
                          &mine->vs_llama, err);
    mq_progress_mute(-1);
    mine->has_vs_llama = rc == MQ_OK;
    mq_qmodel_free(&ql);
    mq_qmodel_free(&qm);
    return rc;
}

/* ---- the plot ---- */

static int plot_pareto(const ctx_t *c, const row_t *rows, int n, const char *png,
                       mq_error_t *err) {
    static const char *const TOOLS[3] = {"llama-quantize", "llama-quantize+imatrix", "miniquant"};
    mq_strbuf_t s = {0};
    for (int k = 0; k < 3; k++) {
        mq_strbuf_printf(&s, "$d%d << EOD\n", k);
        for (int p = 0; p < N_POINTS; p++)
            for (int i = 0; i < n; i++)
                if (rows[i].point == p && !strcmp(rows[i].tool, TOOLS[k]) &&
                    (k < 2 || rows[i].selected))
                    mq_strbuf_printf(&s, "%.6f %.8g\n", rows[i].bytes / 1048576.0,
                                     rows[i].kl.mean);
        mq_strbuf_printf(&s, "EOD\n");
    }
    /* one label per size above llama-quantize+imatrix's highest point there: size points of
     * the same bytes (Q4_K_S, IQ4_NL, Q4_0) share it */
    mq_strbuf_printf(&s, "$lab << EOD\n");
    for (int p = 0; p < N_POINTS; p++) {
        const row_t *r = &rows[2 * p + 1];
        int first = 1;
        double top = r->kl.mean;
        for (int q = 0; q < p; q++)
            if (rows[2 * q + 1].bytes == r->bytes) first = 0;
        if (!first) continue;
        char names[64] = "";
        for (int q = p; q < N_POINTS; q++) {
            const row_t *o = &rows[2 * q + 1];
            if (o->bytes != r->bytes) continue;
            if (o->kl.mean > top) top = o->kl.mean;
            size_t at = strlen(names);
            snprintf(names + at, sizeof names - at, "%s%s", at ? ", " : "", POINTS[q].llama);
        }
        mq_strbuf_printf(&s, "%.6f %.8g \"%s\"\n", r->bytes / 1048576.0, top, names);
    }
    mq_strbuf_printf(&s, "EOD\n");
    char model_name[80];
    mq_arch_model_name(&c->m.cfg, model_name, sizeof model_name);
    mq_strbuf_printf(
        &s,
        "set title \"%s: file size against KL divergence from FP32\\n(test split, %lld "
        "tokens, default protocol; miniquant's best file of no larger size than "
        "llama-quantize+imatrix's)\"\n"
        "set xlabel 'file size (MiB)'\nset ylabel 'mean KL divergence from FP32 (nats/token)'\n"
        "set logscale y\nset grid\nset key top right\nset format y '%%.0e'\n"
        "plot $d0 using 1:2 with linespoints pt 6 lw 1.5 lc rgb '#999999' title "
        "'llama-quantize', \\\n"
        "     $d1 using 1:2 with linespoints pt 4 lw 1.5 lc rgb '#4c72b0' title "
        "'llama-quantize + imatrix', \\\n"
        "     $d2 using 1:2 with linespoints pt 7 lw 2 lc rgb '#d62728' title 'miniquant', \\\n"
        "     $lab using 1:2:3 with labels offset 0,1.1 font ',9' notitle\n",
        model_name, (long long)rows[0].kl.n_scored);
    int rc = s.oom ? mq_error_set(err, MQ_ERR_NOMEM, "out of memory")
                   : mq_plot_png(png, 1100, 700, s.s, err);
    mq_strbuf_free(&s);
    return rc;
}

/* ---- the experiment ---- */

int cli_experiment_vs_llamacpp(const char *model, const char *dir) {
    mq_error_t err = {0};
    ctx_t c = {.model = model, .dir = dir, .bin = getenv("LLAMA_CPP_BIN")};
    if (c.bin && !c.bin[0]) c.bin = NULL;
    for (const char *p = model; *p; p++)
        if (*p == '\'') {
            mq_error_set(&err, MQ_ERR_ARG, "%s: a path with a quote is not passed to a shell",
                         model);
            return cli_fail(&err);
        }
    /* the files beside the model, in vs-llamacpp/<the model's stem> */
    char stem[256], beside[4096];
    cli_model_stem(model, stem, sizeof stem);
    cli_beside_model(model, "vs-llamacpp", beside, sizeof beside);
    snprintf(c.files, sizeof c.files, "%.4000s/%.190s", beside, stem);
    int n_rows = 2 * N_POINTS + 2 * N_POINTS; /* llama.cpp's two, miniquant's two candidates */
    row_t *rows = calloc((size_t)n_rows, sizeof *rows);
    mq_corpus_t corpus = {0};
    char *text = NULL, path[4400], base_kld[4300];
    size_t len = 0;
    cJSON *record = NULL;
    double *cost = NULL;
    int rc = rows ? MQ_OK : mq_error_set(&err, MQ_ERR_NOMEM, "out of memory");
    int have_model = 0;
    if (rc == MQ_OK) rc = mq_mkdir_p(dir, &err);
    if (rc == MQ_OK) rc = mq_mkdir_p(c.files, &err);
    if (rc == MQ_OK) rc = mq_checkpoint_load(model, &c.m, &c.tok, &c.info, &err);
    have_model = rc == MQ_OK;
    if (rc == MQ_OK) rc = mq_corpus_load_wordnet(NULL, &corpus, &err);
    if (rc == MQ_OK) rc = mq_dataset_encode(&corpus, MQ_SPLIT_TEST, c.tok, &c.test, &err);
    if (rc == MQ_OK) rc = mq_dataset_encode(&corpus, MQ_SPLIT_VALID, c.tok, &c.valid, &err);
    if (rc == MQ_OK) rc = mq_corpus_split_text(&corpus, MQ_SPLIT_TEST, &text, &len, &err);
    if (rc == MQ_OK) {
        rc = mq_ppl_llamacpp_tokens(c.tok, text, len, c.m.cfg.n_ctx, &c.test_text.ids,
                                    &c.test_text.n, &err);
    }
    if (rc == MQ_OK) {
        snprintf(path, sizeof path, "%s/corpus", c.files);
        rc = cli_write_corpus(&corpus, path, &err);
    }
    if (rc == MQ_OK) {
        for (int t = 0; t < mq_recipe_n_tensors(&c.m.cfg); t++) {
            int R, C;
            mq_recipe_tensor_shape(&c.m.cfg, t, &R, &C);
            c.weights += (size_t)R * C;
        }
        snprintf(base_kld, sizeof base_kld, "%s/fp32.kld", c.files);
        fprintf(stderr, "== llama.cpp: %s\n",
                c.bin ? c.bin : "LLAMA_CPP_BIN not set: its recorded numbers");
        rc = c.bin ? llama_side(&c, rows, base_kld, &record, &err)
                   : read_record(&c, rows, &record, &err);
    }

    /* miniquant's side: per point the mixture of the same name with GPTQ, and auto_gptq, each
     * no larger than llama-quantize+imatrix's file; the one closer to FP32 on the valid split
     * is miniquant's file at that size */
    int n_types = 0;
    while (MQ_RECIPE_AUTO_TYPES[n_types]) n_types++;
    if (rc == MQ_OK) {
        cost = malloc((size_t)mq_recipe_n_tensors(&c.m.cfg) * n_types * sizeof *cost);
        if (!cost) rc = mq_error_set(&err, MQ_ERR_NOMEM, "out of memory");
    }
    if (rc == MQ_OK) {
        fprintf(stderr, "== miniquant: the cost of each tensor at each type\n");
        rc = mq_sensitivity_types(&c.m, "_gptq", c.valid.ids, c.valid.n, c.valid.ids, c.valid.n,
                                  16, cost, &err);
    }
    row_t *mine = rows + 2 * N_POINTS;
    for (int p = 0; p < N_POINTS && rc == MQ_OK; p++) {
        size_t budget = rows[2 * p + 1].bytes;
        row_t *a = &mine[2 * p], *b = &mine[2 * p + 1];
        a->point = b->point = p;
        a->tool = b->tool = "miniquant";
        fprintf(stderr, "== miniquant at %s (at most %zu bytes)\n", POINTS[p].llama, budget);
        snprintf(a->name, sizeof a->name, "%s_gptq", POINTS[p].recipe);
        snprintf(a->path, sizeof a->path, "%s/miniquant-%s.gguf", c.files, a->name);
        mq_recipe_t r;
        rc = mq_recipe_parse(a->name, &c.m.cfg, &r, &err);
        size_t bytes_a = 0, bytes_b = 0;
        if (rc == MQ_OK) rc = write_recipe(&c, &r, a->path, &bytes_a, &err);
        size_t overhead = rc == MQ_OK ? bytes_a - mq_recipe_bytes(&r, &c.m.cfg, NULL) : 0;
        mq_recipe_free(&r);
        double target = 0;
        snprintf(b->path, sizeof b->path, "%s/miniquant-%s-auto_gptq.gguf", c.files,
                 POINTS[p].llama);
        if (rc == MQ_OK)
            rc = write_auto(&c, cost, n_types, budget, overhead, b->path, &bytes_b, &target, &err);
        snprintf(b->name, sizeof b->name, "auto_gptq %.3f", target);
        if (rc == MQ_OK) rc = measure_file(&c, a, 1, &err);
        if (rc == MQ_OK) rc = measure_file(&c, b, 1, &err);
        if (rc == MQ_OK) {
            /* a mixture file larger than the budget is not a candidate */
            int pick_b = a->bytes > budget || b->kl_valid < a->kl_valid;
            row_t *best = pick_b ? b : a;
            best->selected = 1;
            if (c.bin) {
                snprintf(path, sizeof path, "%s/miniquant-%s.kld.log", c.files, POINTS[p].llama);
                rc = llama_kld(&c, best->path, base_kld, path, &best->lp, &err);
            } else {
                recorded_llama_run(record, best);
            }
        }
        if (rc == MQ_OK) rc = paired_with_llama(&c, &rows[2 * p + 1], pick_best(a, b), &err);
    }
    if (rc == MQ_OK && c.bin) { /* llama.cpp's side, and what it said of miniquant's files */
        cJSON *mf = cJSON_AddArrayToObject(record, "miniquant_files");
        for (int i = 0; i < 2 * N_POINTS; i++)
            if (mine[i].selected) cJSON_AddItemToArray(mf, row_json(&c, &mine[i]));
        snprintf(path, sizeof path, "%s/llamacpp.json", dir);
        rc = mq_json_write(path, record, &err);
    }

    if (rc == MQ_OK) {
        cJSON *root = cJSON_CreateObject();
        char date[32];
        mq_utc_now(date, sizeof date);
        cJSON_AddStringToObject(root, "experiment", "26-vs-llamacpp");
        cJSON_AddStringToObject(root, "date", date);
        cJSON_AddStringToObject(root, "model", model);
        cJSON_AddNumberToObject(root, "weights_linears_and_token_embd", (double)c.weights);
        cJSON_AddBoolToObject(root, "llama_cpp_ran", c.bin != NULL);
        cJSON_AddNumberToObject(root, "fp32_llama_perplexity", c.base_ppl_llama);
        cJSON *ev = cJSON_AddObjectToObject(root, "evaluation");
        cJSON_AddStringToObject(ev, "kld_default_protocol",
                                "miniquant eval --kl-base: test split, windows of n_ctx over the "
                                "documents each followed by its separator; KL divergence of the "
                                "file's next-token distribution from FP32's, in double from the "
                                "full logits; ppl is the file's perplexity there");
        cJSON_AddStringToObject(ev, "kld_llamacpp_protocol",
                                "the same on llama-perplexity's protocol (test split as text, "
                                "chunks of n_ctx, second half scored)");
        cJSON_AddStringToObject(ev, "llama_perplexity",
                                "llama-perplexity --kl-divergence on the same file: ppl its Mean "
                                "PPL(Q), kld from its base file (log-probabilities kept within 16 "
                                "nats of the top, in 16-bit steps)");
        cJSON_AddStringToObject(ev, "paired_with_llama_quantize_imatrix",
                                "miniquant's selected file against llama-quantize+imatrix's at "
                                "the same point, on the same test tokens (default protocol): "
                                "mean per-token ln(PPL_miniquant / PPL_llama) and its standard "
                                "error");
        cJSON_AddStringToObject(ev, "selection",
                                "miniquant's candidates (the mixture of the same name with GPTQ, "
                                "auto_gptq under the budget) are chosen between by the mean KL "
                                "divergence on the valid split, never the test split");
        cJSON *arr = cJSON_AddArrayToObject(root, "files");
        for (int i = 0; i < n_rows; i++)
            cJSON_AddItemToArray(arr, row_json(&c, &rows[i]));
        snprintf(path, sizeof path, "%s/results.json", dir);
        rc = mq_json_write(path, root, &err);
        cJSON_Delete(root);
    }
    if (rc == MQ_OK) {
        snprintf(path, sizeof path, "%s/pareto.png", dir);
        rc = plot_pareto(&c, rows, n_rows, path, &err);
    }
    if (rc == MQ_OK) {
        cJSON *cfg = cli_manifest_config(model, &c.m, &c.info, "miniquant experiment vs-llamacpp");
        cJSON_AddStringToObject(cfg, "files_dir", c.files);
        cJSON *man = mq_manifest(c.info.seed, cfg);
        snprintf(path, sizeof path, "%s/manifest.json", dir);
        rc = mq_json_write(path, man, &err);
        cJSON_Delete(man);
    }
    if (rc == MQ_OK) {
        printf("%-7s %-23s %-18s %9s %6s %10s %9s %7s %9s %10s %10s\n", "point", "tool", "file",
               "bytes", "bpw", "KL", "KL 99%", "top", "ppl", "ppl llama", "lp ppl");
        for (int p = 0; p < N_POINTS; p++)
            for (int i = 0; i < n_rows; i++) {
                const row_t *r = &rows[i];
                if (r->point != p) continue;
                printf("%-7s %-23s %-18s %9zu %6.3f %10.6f %9.6f %6.2f%% %9.4f %10.4f %10.4f",
                       POINTS[p].llama, r->tool, r->name, r->bytes,
                       8.0 * (double)r->bytes / (double)c.weights, r->kl.mean, r->kl.p99,
                       100 * r->kl.same_top, r->kl.ppl, r->kl_llama.ppl,
                       r->lp.ok ? r->lp.ppl : NAN);
                if (r->has_vs_llama)
                    printf("  * ln(PPL/PPL_llama+imatrix) %+.5f +/- %.5f", r->vs_llama.ln_ppl_ratio,
                           r->vs_llama.ln_ppl_ratio_stderr);
                printf("\n");
            }
        printf("wrote %s/{results.json,pareto.png,manifest.json%s}; the files are in %s\n", dir,
               c.bin ? ",llamacpp.json" : "", c.files);
    }
    cJSON_Delete(record);
    free(cost);
    free(rows);
    free(text);
    mq_tokens_free(&c.test);
    mq_tokens_free(&c.test_text);
    mq_tokens_free(&c.valid);
    mq_corpus_free(&corpus);
    mq_tokenizer_free(c.tok);
    if (have_model) mq_gpt_free(&c.m);
    return rc ? cli_fail(&err) : 0;
}
