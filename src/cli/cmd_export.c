/* miniquant export: a quantized model as a GGUF file llama.cpp runs; and the experiment that
 * measures every scheme's file (size, bits per weight, round trip, perplexity of the reloaded
 * file). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

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
#include "miniquant/qmodel.h"
#include "miniquant/recipe.h"
#include "miniquant/report.h"
#include "miniquant/sensitivity.h"

static const char ABOUT[] =
    "Quantizes a model's Linear layers (round to nearest; GPTQ for the _gptq schemes; round to\n"
    "nearest under each input's importance for the _imat ones: both calibrated on 128\n"
    "sequences of the valid split) and writes them as GGUF, each Linear's bytes as the\n"
    "quantized layer holds them (the formats are listed below). The embeddings\n"
    "are stored FP16 (FP32 for fp32), LayerNorm parameters and biases FP32. The file is read\n"
    "back and its dequantized weights compared with the in-memory ones.\n"
    "\n"
    "--recipe gives each tensor its own type instead, token_embd included: llama-quantize's\n"
    "mixtures by its names (q4_k_m: attn_qkv q5_k, some ffn_down and output q6_k, the rest\n"
    "q4_k), or auto --target-bpw B: each tensor's type from q2_k .. q6_k and q8_0, chosen from\n"
    "the KL divergence from FP32 measured with that tensor alone quantized (16 windows of the\n"
    "valid split) so that the Linears and token_embd take at most B bits per weight with the\n"
    "least summed divergence.\n";

static const char *recipe_values(void) {
    static char buf[320];
    snprintf(buf, sizeof buf, "valid: %s", mq_recipe_grammar());
    return buf;
}

/* The costs auto chooses from, as a JSON file: method, types, and per tensor its name and its
 * cost at each type. */
static int write_costs(const char *path, const mq_gpt_config_t *c, const char *model,
                       const char *method, const double *cost, int n_types, mq_error_t *err) {
    cJSON *root = cJSON_CreateObject();
    cJSON_AddStringToObject(root, "model", model);
    cJSON_AddStringToObject(root, "method", method);
    cJSON_AddStringToObject(root, "cost",
                            "mean KL divergence from FP32 (nats per token) with "
                            "the tensor alone stored as the type, 16 windows of "
                            "the valid split");
    cJSON *types = cJSON_AddArrayToObject(root, "types");
    for (int k = 0; k < n_types; k++)
        cJSON_AddItemToArray(types, cJSON_CreateString(MQ_RECIPE_AUTO_TYPES[k]));
    cJSON *tensors = cJSON_AddArrayToObject(root, "tensors");
    for (int t = 0; t < mq_recipe_n_tensors(c); t++) {
        cJSON *o = cJSON_CreateObject();
        char tn[48];
        mq_recipe_tensor_name(c, t, tn, sizeof tn);
        cJSON_AddStringToObject(o, "name", tn);
        cJSON *arr = cJSON_AddArrayToObject(o, "costs");
        for (int k = 0; k < n_types; k++) { /* a type that does not fit: null */
            double v = cost[(size_t)t * n_types + k];
            cJSON_AddItemToArray(arr, isfinite(v) ? cJSON_CreateNumber(v) : cJSON_CreateNull());
        }
        cJSON_AddItemToArray(tensors, o);
    }
    int rc = mq_json_write(path, root, err);
    cJSON_Delete(root);
    return rc;
}

/* Reads what write_costs wrote, checking that it is this model's shape, method and types. */
static int read_costs(const char *path, const mq_gpt_config_t *c, const char *method, double *cost,
                      int n_types, mq_error_t *err) {
    cJSON *root;
    int rc = mq_json_read(path, &root, err);
    if (rc) return rc;
    const cJSON *m = cJSON_GetObjectItemCaseSensitive(root, "method");
    const cJSON *types = cJSON_GetObjectItemCaseSensitive(root, "types");
    const cJSON *tensors = cJSON_GetObjectItemCaseSensitive(root, "tensors");
    int T = mq_recipe_n_tensors(c);
    if (!cJSON_IsString(m) || strcmp(m->valuestring, method))
        rc = mq_error_set(err, MQ_ERR_FORMAT, "%s: the costs are not of method '%s'", path, method);
    else if (!cJSON_IsArray(types) || cJSON_GetArraySize(types) != n_types)
        rc = mq_error_set(err, MQ_ERR_FORMAT, "%s: \"types\" is not the %d types of auto", path,
                          n_types);
    else if (!cJSON_IsArray(tensors) || cJSON_GetArraySize(tensors) != T)
        rc = mq_error_set(err, MQ_ERR_FORMAT, "%s: \"tensors\" does not hold the model's %d", path,
                          T);
    for (int k = 0; rc == MQ_OK && k < n_types; k++) {
        const cJSON *x = cJSON_GetArrayItem(types, k);
        if (!cJSON_IsString(x) || strcmp(x->valuestring, MQ_RECIPE_AUTO_TYPES[k]))
            rc = mq_error_set(err, MQ_ERR_FORMAT, "%s: types[%d] is not %s", path, k,
                              MQ_RECIPE_AUTO_TYPES[k]);
    }
    for (int t = 0; rc == MQ_OK && t < T; t++) {
        const cJSON *o = cJSON_GetArrayItem(tensors, t);
        const cJSON *name = cJSON_GetObjectItemCaseSensitive(o, "name");
        const cJSON *arr = cJSON_GetObjectItemCaseSensitive(o, "costs");
        char tn[48];
        mq_recipe_tensor_name(c, t, tn, sizeof tn);
        if (!cJSON_IsString(name) || strcmp(name->valuestring, tn) || !cJSON_IsArray(arr) ||
            cJSON_GetArraySize(arr) != n_types) {
            rc = mq_error_set(err, MQ_ERR_FORMAT, "%s: tensors[%d] is not %s with %d costs", path,
                              t, tn, n_types);
            break;
        }
        for (int k = 0; k < n_types; k++) {
            const cJSON *v = cJSON_GetArrayItem(arr, k);
            if (cJSON_IsNull(v)) {
                cost[(size_t)t * n_types + k] = INFINITY;
            } else if (cJSON_IsNumber(v) && v->valuedouble >= 0 && isfinite(v->valuedouble)) {
                cost[(size_t)t * n_types + k] = v->valuedouble;
            } else {
                rc =
                    mq_error_set(err, MQ_ERR_FORMAT, "%s: %s costs[%d] is not a cost", path, tn, k);
                break;
            }
        }
    }
    cJSON_Delete(root);
    return rc;
}

/* The recipe named name: one of llama.cpp's mixtures, or auto chosen from measurements on the
 * valid split (calib) under target_bpw, the measurements read from costs_path when it exists and
 * written there otherwise. */
static int build_recipe(const char *name, double target_bpw, const char *costs_path,
                        const char *model, mq_gpt_t *m, const mq_tokens_t *calib, mq_recipe_t *r,
                        mq_error_t *err) {
    if (!mq_recipe_is_auto(name)) return mq_recipe_parse(name, &m->cfg, r, err);
    int n_types = 0;
    while (MQ_RECIPE_AUTO_TYPES[n_types])
        n_types++;
    const char *method = mq_recipe_method(name);
    double *cost = malloc((size_t)mq_recipe_n_tensors(&m->cfg) * n_types * sizeof *cost);
    if (!cost) return mq_error_set(err, MQ_ERR_NOMEM, "out of memory");
    int rc;
    if (costs_path && access(costs_path, F_OK) == 0) {
        rc = read_costs(costs_path, &m->cfg, method, cost, n_types, err);
        if (rc == MQ_OK) fprintf(stderr, "auto: the costs measured before, from %s\n", costs_path);
    } else {
        rc = mq_sensitivity_types(m, method, calib->ids, calib->n, calib->ids, calib->n, 16, cost,
                                  err);
        if (rc == MQ_OK && costs_path)
            rc = write_costs(costs_path, &m->cfg, model, method, cost, n_types, err);
    }
    double sum = 0;
    if (rc == MQ_OK)
        rc = mq_recipe_choose(&m->cfg, cost, n_types, target_bpw, method, r, &sum, err);
    if (rc == MQ_OK) {
        size_t weights, bytes = mq_recipe_bytes(r, &m->cfg, &weights);
        printf(
            "auto: %.4f bits per weight of %.4f, summed KL divergence of the tensors alone %.5f\n",
            8.0 * (double)bytes / (double)weights, target_bpw, sum);
    }
    free(cost);
    return rc;
}

/* The weight Linear i of q multiplies by, dequantized. */
static int effective_weight(const mq_qmodel_t *q, int i, float **out, size_t *numel,
                            mq_error_t *err) {
    const mq_qweight_t *w = &q->ql[i].w;
    *numel = (size_t)w->rows * (size_t)w->cols;
    *out = malloc(*numel * sizeof(float));
    if (!*out) return mq_error_set(err, MQ_ERR_NOMEM, "out of memory");
    mq_qweight_dequantize(w, *out);
    return MQ_OK;
}

/* Compares a model with its reloaded copy: every parameter the forward uses. */
typedef struct roundtrip {
    double max_abs_diff;
    size_t n_diff; /* weights whose bits differ */
    size_t n;
} roundtrip_t;

static int compare_models(const mq_qmodel_t *qa, const mq_qmodel_t *qb, roundtrip_t *rt,
                          mq_error_t *err) {
    memset(rt, 0, sizeof *rt);
    const mq_gpt_t *a = qa->model, *b = qb->model;
    int n = mq_qmodel_n_linear(&a->cfg);
    for (int i = 0; i < n; i++) {
        float *x, *y;
        size_t numel;
        int rc = effective_weight(qa, i, &x, &numel, err);
        if (rc) return rc;
        if ((rc = effective_weight(qb, i, &y, &numel, err))) {
            free(x);
            return rc;
        }
        for (size_t k = 0; k < numel; k++) {
            double d = fabs((double)x[k] - (double)y[k]);
            if (memcmp(&x[k], &y[k], sizeof(float)) != 0) {
                rt->n_diff++;
                if (!(d <= rt->max_abs_diff)) rt->max_abs_diff = d; /* NaN counts as a difference */
            }
        }
        rt->n += numel;
        free(x);
        free(y);
    }
    for (int p = 0; p < MQ_NUM_PARAMS; p++) {
        if (mq_gpt_param_is_matrix(p) && p != MQ_P_WTE && p != MQ_P_WPE) continue;
        const float *x = ((float *const *)&a->params)[p], *y = ((float *const *)&b->params)[p];
        for (size_t k = 0; k < a->param_sizes[p]; k++) {
            if (memcmp(&x[k], &y[k], sizeof(float)) != 0) {
                double d = fabs((double)x[k] - (double)y[k]);
                rt->n_diff++;
                if (!(d <= rt->max_abs_diff)) rt->max_abs_diff = d;
            }
        }
        rt->n += a->param_sizes[p];
    }
    return MQ_OK;
}

/* What a written file holds, read from it once: its bytes, the types of a Linear weight and
 * of lm_head, general.file_type, and the model itself (q2; loaded set when it must be freed). */
typedef struct read_back {
    mq_export_bytes_t bytes;
    char linear_type[16], head_type[16];
    int llama_cpp_runs; /* every tensor of the file is of a type llama.cpp runs */
    uint32_t file_type;
} read_back_t;

static const char *tensor_type_name(const mq_gguf_t *g, const char *name) {
    const mq_gguf_tensor_t *t = mq_gguf_find_tensor(g, name);
    const mq_ggml_type_info_t *ti = t ? mq_ggml_type_info(t->type) : NULL;
    return ti ? ti->name : "?";
}

static int read_back(const char *path, read_back_t *rb, mq_qmodel_t *q2, int *loaded,
                     mq_error_t *err) {
    mq_gguf_t *g;
    int rc = mq_gguf_read(path, &g, err);
    if (rc) return rc;
    rc = mq_export_bytes(g, &rb->bytes, err); /* .file: the size mq_gguf_write wrote */
    /* the first Linear of the architecture the file names (blk.0.attn_qkv, blk.0.attn_q) */
    mq_gpt_config_t cfg;
    char first[80] = "?";
    if (mq_gpt_config_from_gguf(g, path, &cfg, NULL) == MQ_OK) {
        mq_arch_linear_name(&cfg, 0, first, sizeof first - 8);
        strcat(first, ".weight");
    }
    snprintf(rb->linear_type, sizeof rb->linear_type, "%s", tensor_type_name(g, first));
    snprintf(rb->head_type, sizeof rb->head_type, "%s", tensor_type_name(g, "output.weight"));
    rb->llama_cpp_runs = 1;
    for (int64_t k = 0; k < mq_gguf_n_tensors(g); k++) {
        const mq_format_t *f = mq_format_of_ggml_type(mq_gguf_tensor(g, k)->type);
        rb->llama_cpp_runs &= f && f->llama_cpp;
    }
    rb->file_type = 0;
    mq_gguf_get_u32(g, "general.file_type", &rb->file_type, NULL);
    if (rc == MQ_OK) *loaded = (rc = mq_qmodel_from_gguf(g, path, q2, err)) == MQ_OK;
    mq_gguf_free(g);
    return rc;
}

/* export --stream: the model read one layer at a time (export.h: mq_export_stream). */
static int export_stream(const char *model, const char *out, const mq_scheme_t *s,
                         const char *act_order, int static_groups, int calib_ctx) {
    mq_error_t err = {0};
    mq_tokens_t calib = {0};
    int rc = MQ_OK;
    double t0 = mq_now();
    if (mq_scheme_calibrated(s)) {
        mq_tokenizer_t *tok;
        if ((rc = cli_load_tokenizer(model, &tok, &err)) == MQ_OK) {
            rc = cli_calibration_tokens(tok, &calib, &err);
            mq_tokenizer_free(tok);
        }
    }
    mq_gptq_opts_t go;
    mq_gptq_opts_for(s, &go);
    if (act_order) go.act_order = !strcmp(act_order, "on");
    go.static_groups = static_groups;
    if (rc == MQ_OK)
        rc = mq_export_stream(model, out, s, calib.ids, calib.n, calib_ctx > 0 ? calib_ctx : 256,
                              &go, &err);
    mq_tokens_free(&calib);
    if (rc) return cli_fail(&err);
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    struct stat st;
    long long bytes = stat(out, &st) == 0 ? (long long)st.st_size : -1;
    printf("wrote %s: scheme %s, %lld bytes, layer by layer in %.1f s, peak resident memory "
           "%.1f MiB\n",
           out, s->name, bytes, mq_now() - t0, (double)ru.ru_maxrss / 1024.0);
    return 0;
}

int cmd_export(int argc, char **argv) {
    const char *model = NULL, *scheme_name = NULL, *recipe_name = NULL, *out = NULL,
               *act_order = NULL, *costs = NULL;
    int skip = 0, static_groups = 0, stream = 0;
    long threads = 0, calib_ctx = 0;
    double target_bpw = 0;
    cli_option_t opts[] = {
        {CLI_OPT_MODEL(&model, "the FP32 model (GGUF, gpt2 or llama architecture)"), .required = 1},
        {CLI_OPT_SCHEME(&scheme_name, "how the Linear layers are quantized (or --recipe)")},
        {.name = "recipe",
         .arg = "NAME",
         .str = &recipe_name,
         .values = recipe_values,
         .help = "each tensor's type, token_embd included (instead of --scheme)"},
        {.name = "target-bpw",
         .arg = "B",
         .d = &target_bpw,
         .lo = 1,
         .hi = 32,
         .help = "--recipe auto: bits per weight of the Linears and token_embd, at most"},
        {.name = "costs",
         .arg = "FILE.json",
         .str = &costs,
         .help = "--recipe auto: the measured costs, read from FILE when it exists (the same "
                 "model, method and types), else measured and written there"},
        {CLI_OPT_SKIP_LM_HEAD(&skip)},
        {.name = "act-order",
         .arg = "on|off",
         .str = &act_order,
         .def_text = "on for q2_k .. q6_k and iq4_nl, off for the int and nf grids",
         .help = "_gptq: the columns by descending diag H"},
        {.name = "static-groups",
         .flag = &static_groups,
         .help = "_gptq: every group's (block's) scales from the weights before GPTQ, not when "
                 "it is first reached"},
        {.name = "out",
         .arg = "FILE.gguf",
         .str = &out,
         .required = 1,
         .help = "the quantized GGUF file to write"},
        {.name = "stream",
         .flag = &stream,
         .help = "one layer at a time from the mapped file, for models larger than memory "
                 "(--scheme only; prints time and peak memory instead of the checks)"},
        {.name = "calib-ctx",
         .arg = "N",
         .l = &calib_ctx,
         .lo = 2,
         .hi = 1 << 20,
         .def_text = "the model's context, at most 256 with --stream",
         .help = "_gptq, _imat with --stream: tokens per calibration window"},
        {CLI_OPT_THREADS(&threads)},
        {0},
    };
    const cli_command_t cmd = {
        .name = "export", .about = ABOUT, .epilog = mq_formats_help(), .opts = opts};
    int rc = cli_parse(&cmd, argc, argv, NULL);
    if (rc != CLI_CONTINUE) return rc;
    mq_error_t err = {0};
    mq_scheme_t s;
    if (!scheme_name == !recipe_name)
        return cli_usage_error(&cmd, "give --scheme or --recipe, one of them");
    if (recipe_name && mq_recipe_is_auto(recipe_name) != (target_bpw > 0))
        return cli_usage_error(&cmd, target_bpw > 0 ? "--target-bpw goes with --recipe auto"
                                                    : "--recipe auto needs --target-bpw");
    if (scheme_name && target_bpw > 0)
        return cli_usage_error(&cmd, "--target-bpw goes with --recipe auto");
    if (scheme_name && mq_scheme_parse(scheme_name, &s, &err))
        return cli_usage_error(&cmd, "%s", err.msg);
    mq_recipe_t recipe = {0};
    if (recipe_name && mq_recipe_check_name(recipe_name, &err))
        return cli_usage_error(&cmd, "%s", err.msg);
    if (act_order && strcmp(act_order, "on") && strcmp(act_order, "off"))
        return cli_usage_error(&cmd, "--act-order takes on or off, not '%s'", act_order);
    if (stream && (recipe_name || skip))
        return cli_usage_error(&cmd, "--stream takes a --scheme, without --skip-lm-head");
    if (calib_ctx && !stream) return cli_usage_error(&cmd, "--calib-ctx goes with --stream");
    cli_set_threads((int)threads);
    if (stream) return export_stream(model, out, &s, act_order, static_groups, (int)calib_ctx);

    mq_gpt_t m = {0};
    mq_qmodel_t q = {0}, q2 = {0};
    mq_tokenizer_t *tok = NULL;
    if ((rc = mq_checkpoint_load(model, &m, &tok, NULL, &err))) return cli_fail(&err);
    mq_tokens_t calib = {0};
    /* auto measures on the valid split even when it rounds to nearest */
    int calibrated = recipe_name
                         ? mq_recipe_is_auto(recipe_name) || mq_recipe_method(recipe_name)[0]
                         : mq_scheme_calibrated(&s);
    if (calibrated) rc = cli_calibration_tokens(tok, &calib, &err);
    if (rc == MQ_OK && recipe_name) {
        rc = build_recipe(recipe_name, target_bpw, costs, model, &m, &calib, &recipe, &err);
        if (rc == MQ_OK) s = recipe.linear[0];
    }
    mq_gptq_opts_t go;
    const mq_gptq_opts_t *gop = &go;
    mq_gptq_opts_for(&s, &go);
    if (act_order) go.act_order = !strcmp(act_order, "on");
    go.static_groups = static_groups;
    if (recipe_name && !act_order && !static_groups) gop = NULL; /* each Linear's own */
    if (rc == MQ_OK && recipe_name)
        rc = mq_gptq_build_recipe(&m, &recipe, skip, calib.ids, calib.n, gop, &q, &err);
    else if (rc == MQ_OK)
        rc = mq_gptq_build_qmodel_with(&m, &s, skip, calib.ids, calib.n, &go, &q, &err);
    mq_tokens_free(&calib);
    if (rc == MQ_OK) rc = mq_qmodel_save(out, &m, &q, tok, &err);
    int loaded = 0;
    roundtrip_t rt = {0};
    read_back_t rb = {0};
    const mq_export_bytes_t *eb = &rb.bytes;
    if (rc == MQ_OK) rc = read_back(out, &rb, &q2, &loaded, &err);
    if (rc == MQ_OK) rc = compare_models(&q, &q2, &rt, &err);
    if (rc == MQ_OK && rt.n_diff)
        rc = mq_error_set(&err, MQ_ERR_FORMAT,
                          "%s: reading the file back gives %zu weights that differ from the "
                          "exported model (max |diff| %g)",
                          out, rt.n_diff, rt.max_abs_diff);
    if (rc == MQ_OK) {
        const char *lt = rb.linear_type;
        int runs = rb.llama_cpp_runs;
        if (recipe_name)
            printf("wrote %s: recipe %s%s, %zu bytes\n", out, recipe.name,
                   skip ? " (lm_head FP32)" : "", eb->file);
        else
            printf("wrote %s: scheme %s%s, %zu bytes\n", out, s.name, skip ? " (lm_head FP32)" : "",
                   eb->file);
        printf("  Linear weights  %-5s %10zu bytes, %.4f bits per weight (%zu weights)\n", lt,
               eb->linear, eb->bits_per_weight, eb->linear_params);
        if (strchr(eb->linear_types, ',')) printf("                  %s\n", eb->linear_types);
        if (recipe_name) {
            size_t weights, bytes = mq_recipe_bytes(&recipe, &m.cfg, &weights);
            printf("  recipe          %.4f bits per weight of the Linears and token_embd (%zu "
                   "bytes, %zu weights)\n",
                   8.0 * (double)bytes / (double)weights, bytes, weights);
        }
        for (int i = 0; recipe_name && i < q.n_linear; i++) {
            char base[48];
            mq_qmodel_linear_name(&m.cfg, i, base, sizeof base);
            printf("    %-18s %s\n", base, q.active[i] ? q.ql[i].w.scheme.name : "fp32");
        }
        /* a Linear whose rows its scheme's format does not fit took the next one: the format
         * is not the one of a row that every block and group divides */
        for (int i = 0; i < q.n_linear; i++) {
            const mq_qweight_t *w = &q.ql[i].w;
            int whole = 256 * (w->scheme.group > 0 ? w->scheme.group : 1);
            const mq_format_t *first = mq_format_for(&w->scheme, whole, NULL);
            if (!q.active[i] || !first || w->format == first) continue;
            char base[48];
            mq_qmodel_linear_name(&m.cfg, i, base, sizeof base);
            printf("  fallback        %s.weight is %s: its rows of %d inputs are not whole %s "
                   "blocks of %d\n",
                   base, w->format->name, w->cols, first->name, first->block);
        }
        if (q.embd.data)
            printf("  embeddings      %-5s %10zu bytes (token_embd %s, position_embd f16)\n",
                   q.embd.format->name, eb->embedding, q.embd.scheme.name);
        else
            printf("  embeddings      %-5s %10zu bytes\n", s.family->embeddings_f16 ? "f16" : "f32",
                   eb->embedding);
        printf("  norms, biases   f32   %10zu bytes\n", eb->other);
        printf("round trip: all %zu parameters read back bit-identical (max |diff| 0)\n", rt.n);
        printf("llama.cpp: %s\n", runs ? "loads and runs this file (llama-cli, llama-perplexity)"
                                       : "cannot run this file (miniquant-specific packed "
                                         "tensors; miniquant reads it)");
    }
    if (loaded) mq_qmodel_free(&q2);
    mq_qmodel_free(&q);
    mq_recipe_free(&recipe);
    mq_tokenizer_free(tok);
    mq_gpt_free(&m);
    return rc ? cli_fail(&err) : 0;
}

/* ---------------------------------------------------------------------------------------------
 * experiments/26-gguf-export */

typedef struct run_result {
    mq_scheme_t scheme;
    int skip_lm_head;
    char path[4096 + 256 + 64]; /* files_dir, model stem, scheme and suffix */
    read_back_t file;           /* what the written file holds */
    mq_model_bytes_t memory;    /* the lab's accounting of the same model */
    roundtrip_t rt;
    mq_ppl_result_t ppl, ppl_llamacpp;
} run_result_t;

/* One scheme: quantize, export, reload, compare, evaluate the reloaded file. */
static int run_one(const mq_gpt_t *m, const mq_tokenizer_t *tok, const char *files_dir,
                   const char *stem, const mq_tokens_t *test, const mq_tokens_t *test_text,
                   const mq_tokens_t *calib, run_result_t *r, mq_error_t *err) {
    mq_qmodel_t q = {0}, q2 = {0};
    int rc = mq_gptq_build_qmodel(m, &r->scheme, r->skip_lm_head, calib->ids, calib->n, &q, err);
    if (rc) return rc;
    snprintf(r->path, sizeof r->path, "%s/%s-%s%s.gguf", files_dir, stem, r->scheme.name,
             r->skip_lm_head ? "-lmhead-fp32" : "");
    mq_model_bytes(m, &q, &r->memory);
    rc = mq_qmodel_save(r->path, m, &q, tok, err);
    int loaded = 0;
    if (rc == MQ_OK) rc = read_back(r->path, &r->file, &q2, &loaded, err);
    if (rc == MQ_OK) rc = compare_models(&q, &q2, &r->rt, err);
    mq_qmodel_free(&q);
    if (rc == MQ_OK)
        rc = mq_perplexity(q2.model, test->ids, test->n, MQ_PPL_DEFAULT, 0, 8, &r->ppl, err);
    if (rc == MQ_OK)
        rc = mq_perplexity(q2.model, test_text->ids, test_text->n, MQ_PPL_LLAMACPP, 0, 8,
                           &r->ppl_llamacpp, err);
    if (loaded) mq_qmodel_free(&q2);
    return rc;
}

static cJSON *run_json(const run_result_t *r, const run_result_t *base) {
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "scheme", r->scheme.name);
    cJSON_AddBoolToObject(o, "skip_lm_head", r->skip_lm_head);
    cJSON_AddStringToObject(o, "file", r->path);
    cJSON_AddNumberToObject(o, "file_bytes", (double)r->file.bytes.file);
    cJSON_AddStringToObject(o, "linear_type", r->file.linear_type);
    cJSON_AddStringToObject(o, "lm_head_type", r->file.head_type);
    cJSON_AddNumberToObject(o, "general_file_type", r->file.file_type);
    cJSON_AddBoolToObject(o, "llama_cpp_runs", r->file.llama_cpp_runs);
    cJSON *fb = cJSON_AddObjectToObject(o, "file_tensor_bytes");
    cJSON_AddNumberToObject(fb, "linear", (double)r->file.bytes.linear);
    cJSON_AddNumberToObject(fb, "embedding", (double)r->file.bytes.embedding);
    cJSON_AddNumberToObject(fb, "layernorm_and_bias", (double)r->file.bytes.other);
    cJSON_AddNumberToObject(o, "bits_per_weight", r->file.bytes.bits_per_weight);
    cJSON_AddNumberToObject(o, "bits_per_weight_packed_accounting", r->memory.bits_per_weight);
    cJSON_AddNumberToObject(o, "memory_bytes", (double)r->memory.total);
    cJSON_AddNumberToObject(o, "roundtrip_max_abs_diff", r->rt.max_abs_diff);
    cJSON_AddNumberToObject(o, "roundtrip_params_differing", (double)r->rt.n_diff);
    cJSON_AddNumberToObject(o, "roundtrip_params_compared", (double)r->rt.n);
    cJSON_AddNumberToObject(o, "ppl", r->ppl.ppl);
    cJSON_AddNumberToObject(o, "nll", r->ppl.nll);
    if (base)
        cJSON_AddNumberToObject(o, "ppl_gap_pct",
                                100 * (r->ppl.ppl - base->ppl.ppl) / base->ppl.ppl);
    cJSON_AddNumberToObject(o, "ppl_llamacpp", r->ppl_llamacpp.ppl);
    if (base)
        cJSON_AddNumberToObject(o, "ppl_llamacpp_gap_pct",
                                100 * (r->ppl_llamacpp.ppl - base->ppl_llamacpp.ppl) /
                                    base->ppl_llamacpp.ppl);
    return o;
}

int cli_experiment_gguf_export_runs(const char *model, const char *dir, const char *files_dir,
                                    const char *const *schemes, const char *const *skip_schemes) {
    mq_error_t err = {0};
    char fdir[4096], stem[256];
    if (!files_dir)
        cli_beside_model(model, "gguf-export", fdir, sizeof fdir); /* models/ is not in git */
    else
        snprintf(fdir, sizeof fdir, "%s", files_dir);
    cli_model_stem(model, stem, sizeof stem);

    /* the runs: every scheme with lm_head quantized, then the skip_schemes with it FP32 */
    size_t n_runs = 0, n_a = 0, n_b = 0;
    while (schemes && schemes[n_a])
        n_a++;
    while (skip_schemes && skip_schemes[n_b])
        n_b++;
    run_result_t *res = calloc(n_a + n_b + 1, sizeof *res);
    if (!res) {
        mq_error_set(&err, MQ_ERR_NOMEM, "out of memory");
        return cli_fail(&err);
    }
    for (size_t i = 0; i < n_a + n_b; i++) {
        const char *name = i < n_a ? schemes[i] : skip_schemes[i - n_a];
        if (mq_scheme_parse(name, &res[n_runs].scheme, &err)) {
            free(res);
            return cli_fail(&err);
        }
        res[n_runs++].skip_lm_head = i >= n_a;
    }

    mq_gpt_t m = {0};
    mq_tokenizer_t *tok = NULL;
    mq_ckpt_info_t info = {0};
    mq_corpus_t corpus = {0};
    mq_tokens_t test = {0}, test_text = {0}, calib = {0};
    char *text = NULL;
    size_t len = 0;
    int rc = mq_mkdir_p(dir, &err);
    if (rc == MQ_OK) rc = mq_mkdir_p(fdir, &err);
    if (rc == MQ_OK) rc = mq_checkpoint_load(model, &m, &tok, &info, &err);
    int have_model = rc == MQ_OK;
    if (rc == MQ_OK) rc = mq_corpus_load_wordnet(NULL, &corpus, &err);
    if (rc == MQ_OK) rc = mq_dataset_encode(&corpus, MQ_SPLIT_TEST, tok, &test, &err);
    if (rc == MQ_OK) rc = mq_dataset_encode(&corpus, MQ_SPLIT_VALID, tok, &calib, &err);
    if (rc == MQ_OK) rc = mq_corpus_split_text(&corpus, MQ_SPLIT_TEST, &text, &len, &err);
    if (rc == MQ_OK) {
        rc =
            mq_ppl_llamacpp_tokens(tok, text, len, m.cfg.n_ctx, &test_text.ids, &test_text.n, &err);
    }
    int base = -1;
    for (size_t i = 0; i < n_runs && rc == MQ_OK; i++) {
        fprintf(stderr, "== %s%s\n", res[i].scheme.name,
                res[i].skip_lm_head ? " (lm_head FP32)" : "");
        rc = run_one(&m, tok, fdir, stem, &test, &test_text, &calib, &res[i], &err);
        if (rc == MQ_OK && base < 0 && mq_scheme_is_identity(&res[i].scheme) &&
            !res[i].skip_lm_head)
            base = (int)i;
        if (rc == MQ_OK && res[i].rt.n_diff)
            rc = mq_error_set(&err, MQ_ERR_FORMAT,
                              "%s: %zu parameters read back differ from the exported model",
                              res[i].path, res[i].rt.n_diff);
    }
    char path[4200], date[32];
    mq_utc_now(date, sizeof date);
    if (rc == MQ_OK) {
        const run_result_t *b = base >= 0 ? &res[base] : NULL;
        cJSON *root = cJSON_CreateObject();
        cJSON_AddStringToObject(root, "experiment", "26-gguf-export");
        cJSON_AddStringToObject(root, "date", date);
        cJSON_AddStringToObject(root, "model", model);
        cJSON_AddNumberToObject(root, "model_params", (double)m.num_params);
        cJSON_AddStringToObject(root, "files_dir", fdir);
        cJSON *ev = cJSON_AddObjectToObject(root, "evaluation");
        cJSON_AddStringToObject(ev, "ppl",
                                "perplexity of the model read back from the file: test "
                                "split, default protocol (non-overlapping windows of "
                                "the context length)");
        cJSON_AddStringToObject(ev, "ppl_llamacpp",
                                "the same model, llama-perplexity's protocol on the test split's "
                                "text (final newline dropped): compare with llama-perplexity -f "
                                "test.txt -c n_ctx");
        cJSON_AddNumberToObject(ev, "n_ctx", m.cfg.n_ctx);
        cJSON_AddNumberToObject(ev, "test_tokens", (double)test.n);
        cJSON_AddNumberToObject(ev, "test_text_tokens", (double)test_text.n);
        cJSON_AddStringToObject(ev, "bits_per_weight",
                                "8 x bytes of the Linear weight tensors in the file (scales "
                                "included) / Linear weights");
        cJSON_AddStringToObject(ev, "roundtrip",
                                "every parameter of the reloaded model compared "
                                "with the in-memory quantized model, bit by bit");
        cJSON *arr = cJSON_AddArrayToObject(root, "runs");
        for (size_t i = 0; i < n_runs; i++)
            cJSON_AddItemToArray(arr, run_json(&res[i], b));
        snprintf(path, sizeof path, "%s/results.json", dir);
        rc = mq_json_write(path, root, &err);
        cJSON_Delete(root);
    }
    if (rc == MQ_OK) {
        cJSON *cfg = cli_manifest_config(model, &m, &info, "miniquant experiment gguf-export");
        cJSON_AddNumberToObject(cfg, "export_version", MQ_EXPORT_VERSION_SCHEME);
        cJSON_AddStringToObject(cfg, "files_dir", fdir);
        cJSON *man = mq_manifest(info.seed, cfg);
        snprintf(path, sizeof path, "%s/manifest.json", dir);
        rc = mq_json_write(path, man, &err);
        cJSON_Delete(man);
    }
    if (rc == MQ_OK) {
        printf("%-18s %-8s %-6s %10s %8s %10s %10s %12s\n", "scheme", "lm_head", "type", "bytes",
               "bpw", "roundtrip", "ppl", "ppl_llamacpp");
        for (size_t i = 0; i < n_runs; i++)
            printf("%-18s %-8s %-6s %10zu %8.4f %10g %10.4f %12.4f\n", res[i].scheme.name,
                   res[i].skip_lm_head || mq_scheme_is_identity(&res[i].scheme)
                       ? "FP32"
                       : res[i].file.head_type,
                   res[i].file.linear_type, res[i].file.bytes.file,
                   res[i].file.bytes.bits_per_weight, res[i].rt.max_abs_diff, res[i].ppl.ppl,
                   res[i].ppl_llamacpp.ppl);
        printf("wrote %s/{results.json,manifest.json}; the GGUF files are in %s\n", dir, fdir);
    }
    free(res);
    free(text);
    mq_tokens_free(&test);
    mq_tokens_free(&test_text);
    mq_tokens_free(&calib);
    mq_corpus_free(&corpus);
    mq_tokenizer_free(tok);
    if (have_model) mq_gpt_free(&m);
    return rc ? cli_fail(&err) : 0;
}

int cli_experiment_gguf_export(const char *model, const char *dir) {
    /* every standard scheme; plus lm_head kept FP32 for the two schemes llama.cpp users reach
     * for first */
    static const char *const skip[] = {"int8_per_channel", "int4_g64", NULL};
    return cli_experiment_gguf_export_runs(model, dir, NULL, MQ_STANDARD_SCHEMES, skip);
}
