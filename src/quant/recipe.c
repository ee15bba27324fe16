/* miniquant: recipes (recipe.h). llama.cpp's mixtures are rows of MIXTURES, read from
 * llama-quantize's rules (src/llama-quant.cpp, llama_tensor_get_type) for the tensors gpt2 and
 * llama models have (no mixture of experts); auto is a choice under a budget of bytes. */
#include "miniquant/recipe.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "miniquant/arch.h"
#include "miniquant/qmodel.h"

/* One of llama-quantize's file types: the type of each tensor role, NULL for the base type.
 * gpt2 has attn_qkv; llama has attn_q, attn_k, attn_v (attn_q, attn_k, ffn_gate and ffn_up take
 * the base type in every mixture here); attn_output and ffn_down follow the same rules in both. */
typedef struct mixture {
    const char *name;
    int llama_ftype;
    const char *base;   /* most tensors, token_embd included */
    const char *output; /* lm_head */
    const char *qkv;    /* gpt2's fused attn_qkv */
    const char *attn_output;
    const char *down;         /* every ffn_down */
    const char *down_more;    /* ffn_down of the layers llama.cpp's use_more_bits picks */
    const char *down_first8;  /* ffn_down of layers i < n_layer / 8 */
    const char *down_first16; /* ffn_down of layers i < n_layer / 16 */
    int first8_uncalibrated;  /* down_first8 only without calibration (imatrix) */
    const char *v;            /* every attn_v */
    const char *v_gqa4;       /* attn_v when n_head / n_head_kv >= 4 */
    const char *v_first2;     /* attn_v of layers i < 2 */
    const char *v_first4;     /* attn_v of layers i < 4 */
    const char *v_more;       /* attn_v of the layers use_more_bits picks */
} mixture_t;

static const mixture_t MIXTURES[] = {
    {.name = "q2_k",
     .llama_ftype = 10,
     .base = "q2_k",
     .output = "q6_k",
     .attn_output = "q3_k",
     .down = "q3_k",
     .v = "q3_k",
     .v_gqa4 = "q4_k"},
    {.name = "q3_k_s", .llama_ftype = 11, .base = "q3_k", .output = "q6_k"},
    {.name = "q3_k_m",
     .llama_ftype = 12,
     .base = "q3_k",
     .output = "q6_k",
     .qkv = "q4_k",
     .attn_output = "q4_k",
     .down = "q4_k",
     .down_first16 = "q5_k",
     .v = "q4_k",
     .v_first2 = "q5_k"},
    {.name = "q3_k_l",
     .llama_ftype = 13,
     .base = "q3_k",
     .output = "q6_k",
     .qkv = "q4_k",
     .attn_output = "q5_k",
     .down = "q5_k",
     .v = "q5_k"},
    {.name = "q4_k_s",
     .llama_ftype = 14,
     .base = "q4_k",
     .output = "q6_k",
     .down_first8 = "q5_k",
     .v_first4 = "q5_k"},
    {.name = "q4_k_m",
     .llama_ftype = 15,
     .base = "q4_k",
     .output = "q6_k",
     .qkv = "q5_k",
     .down_more = "q6_k",
     .v_more = "q6_k"},
    {.name = "q5_k_s", .llama_ftype = 16, .base = "q5_k", .output = "q6_k"},
    {.name = "q5_k_m",
     .llama_ftype = 17,
     .base = "q5_k",
     .output = "q6_k",
     .qkv = "q6_k",
     .down_more = "q6_k",
     .v_more = "q6_k"},
    {.name = "q6_k", .llama_ftype = 18, .base = "q6_k", .output = "q6_k"},
    {.name = "iq4_nl",
     .llama_ftype = 25,
     .base = "iq4_nl",
     .output = "q6_k",
     .down_first8 = "q5_k",
     .first8_uncalibrated = 1,
     .v_gqa4 = "q5_k"},
    {.name = "q4_0", .llama_ftype = 2, .base = "int4_g32", .output = "q6_k"},
    {.name = "q8_0", .llama_ftype = 7, .base = "int8_g32", .output = "int8_g32"},
};
#define N_MIXTURES ((int)(sizeof MIXTURES / sizeof MIXTURES[0]))

const char *const MQ_RECIPE_AUTO_TYPES[] = {"q2_k", "q3_k",     "q4_k", "q5_k",
                                            "q6_k", "int8_g32", NULL};

const char *mq_recipe_grammar(void) {
    static char buf[256];
    if (!buf[0]) {
        size_t at = 0;
        for (int i = 0; i < N_MIXTURES; i++)
            at += (size_t)snprintf(buf + at, sizeof buf - at, "%s, ", MIXTURES[i].name);
        snprintf(buf + at, sizeof buf - at, "auto (with a target), each [_imat|_gptq]");
    }
    return buf;
}

/* The name without its method suffix into stem; the suffix ("" or "_imat" / "_gptq"). */
static const char *split_method(const char *name, char *stem, size_t n) {
    size_t len = strlen(name);
    const char *method = "";
    if (len > 5 && (!strcmp(name + len - 5, "_imat") || !strcmp(name + len - 5, "_gptq"))) {
        method = name + len - 5;
        len -= 5;
    }
    snprintf(stem, n, "%.*s", (int)(len < n ? len : n - 1), name);
    return method;
}

int mq_recipe_is_auto(const char *name) {
    char stem[40];
    split_method(name, stem, sizeof stem);
    return !strcmp(stem, "auto");
}

const char *mq_recipe_method(const char *name) {
    char stem[40];
    return split_method(name, stem, sizeof stem);
}

int mq_recipe_check_name(const char *name, mq_error_t *err) {
    if (mq_recipe_is_auto(name)) return MQ_OK;
    /* any shape will do: a mixture's types do not depend on it */
    mq_gpt_config_t cfg = {.vocab_size = 256, .n_ctx = 8, .n_layer = 4, .n_head = 1, .n_embd = 256};
    mq_recipe_t r;
    int rc = mq_recipe_parse(name, &cfg, &r, err);
    if (rc == MQ_OK) mq_recipe_free(&r);
    return rc;
}

int mq_recipe_n_tensors(const mq_gpt_config_t *cfg) {
    return mq_qmodel_n_linear(cfg) + 1;
}

void mq_recipe_tensor_name(const mq_gpt_config_t *cfg, int t, char *buf, size_t n) {
    if (t == mq_qmodel_n_linear(cfg))
        snprintf(buf, n, "token_embd");
    else
        mq_qmodel_linear_name(cfg, t, buf, n);
}

void mq_recipe_tensor_shape(const mq_gpt_config_t *cfg, int t, int *rows, int *cols) {
    int64_t r, c;
    /* a Linear, or (after them) token_embd */
    int p = t < mq_qmodel_n_linear(cfg) ? mq_qmodel_linear_id(cfg, t).param : MQ_P_WTE;
    mq_arch_param_shape(cfg, p, &r, &c);
    *rows = (int)r;
    *cols = (int)c;
}

size_t mq_recipe_tensor_bytes(const mq_gpt_config_t *cfg, int t, const mq_scheme_t *s) {
    int rows, cols;
    mq_recipe_tensor_shape(cfg, t, &rows, &cols);
    const mq_format_t *f = mq_format_for(s, cols, NULL);
    if (!f) return 0;
    size_t b = f->row_bytes(s, cols) * (size_t)rows;
    if (f->side_scales) b += 2 * mq_scheme_n_scales(s, rows, cols);
    return b;
}

size_t mq_recipe_bytes(const mq_recipe_t *r, const mq_gpt_config_t *cfg, size_t *weights) {
    size_t bytes = 0, w = 0;
    int n = mq_recipe_n_tensors(cfg);
    for (int t = 0; t < n; t++) {
        int rows, cols;
        mq_recipe_tensor_shape(cfg, t, &rows, &cols);
        bytes += mq_recipe_tensor_bytes(cfg, t, t < r->n_linear ? &r->linear[t] : &r->embd);
        w += (size_t)rows * (size_t)cols;
    }
    if (weights) *weights = w;
    return bytes;
}

/* llama.cpp's use_more_bits: the first and last eighth of the layers and every third between. */
static int use_more_bits(int i, int n) {
    return i < n / 8 || i >= 7 * n / 8 || (i - n / 8) % 3 == 2;
}

/* The type of Linear t of a model of cfg under mixture x. */
static const char *mixture_type(const mixture_t *x, const mq_gpt_config_t *cfg, int t,
                                int calibrated) {
    mq_linear_id_t id = mq_qmodel_linear_id(cfg, t);
    int layer = id.layer, n_layer = cfg->n_layer;
    const char *type = NULL;
    switch (id.param) {
    case MQ_P_LMW: return x->output;
    case MQ_P_QKVW: type = x->qkv; break;
    case MQ_P_ATTPROJW: type = x->attn_output; break;
    case MQ_P_VW: /* llama.cpp counts attn_v tensors, one per layer */
        if (x->v_gqa4 && cfg->n_head >= 4 * cfg->n_head_kv)
            type = x->v_gqa4;
        else if (x->v_first2 && layer < 2)
            type = x->v_first2;
        else if (x->v_first4 && layer < 4)
            type = x->v_first4;
        else if (x->v_more && use_more_bits(layer, n_layer))
            type = x->v_more;
        else
            type = x->v;
        break;
    case MQ_P_FCPROJW:
        if (x->down_first16 && layer < n_layer / 16)
            type = x->down_first16;
        else if (x->down_first8 && layer < n_layer / 8 && !(x->first8_uncalibrated && calibrated))
            type = x->down_first8;
        else if (x->down_more && use_more_bits(layer, n_layer))
            type = x->down_more;
        else
            type = x->down;
        break;
    }
    return type ? type : x->base;
}

static int alloc_recipe(mq_recipe_t *r, const mq_gpt_config_t *cfg, mq_error_t *err) {
    memset(r, 0, sizeof *r);
    r->n_linear = mq_qmodel_n_linear(cfg);
    r->linear = calloc((size_t)r->n_linear, sizeof *r->linear);
    return r->linear ? MQ_OK : mq_error_set(err, MQ_ERR_NOMEM, "out of memory");
}

/* type + method as a scheme; a family that takes no _imat (the int grids) is rounded to
 * nearest when imat_optional. */
static int typed_scheme(const char *type, const char *method, int imat_optional, mq_scheme_t *s,
                        mq_error_t *err) {
    char name[48];
    snprintf(name, sizeof name, "%s%s", type, method);
    if (mq_scheme_parse(name, s, NULL) == MQ_OK) return MQ_OK;
    if (imat_optional && !strcmp(method, "_imat")) return mq_scheme_parse(type, s, err);
    return mq_error_set(err, MQ_ERR_ARG, "%s takes no %s (its tensors are %s)", type, method, type);
}

int mq_recipe_auto_scheme(int k, const char *method, mq_scheme_t *s, mq_error_t *err) {
    return typed_scheme(MQ_RECIPE_AUTO_TYPES[k], method, 1, s, err);
}

int mq_recipe_parse(const char *name, const mq_gpt_config_t *cfg, mq_recipe_t *r, mq_error_t *err) {
    memset(r, 0, sizeof *r);
    char stem[40];
    const char *method = split_method(name, stem, sizeof stem);
    const mixture_t *x = NULL;
    for (int i = 0; i < N_MIXTURES && !x; i++)
        if (!strcmp(MIXTURES[i].name, stem)) x = &MIXTURES[i];
    if (!x)
        return mq_error_set(err, MQ_ERR_ARG, "unknown recipe '%s' (recipes: %s)%s", name,
                            mq_recipe_grammar(),
                            mq_recipe_is_auto(name) ? ": auto needs a target" : "");
    int rc = alloc_recipe(r, cfg, err);
    if (rc) return rc;
    snprintf(r->name, sizeof r->name, "%s", name);
    snprintf(r->method, sizeof r->method, "%s", method);
    r->llama_ftype = x->llama_ftype;
    int calibrated = method[0] != 0;
    for (int t = 0; t < r->n_linear && rc == MQ_OK; t++)
        rc = typed_scheme(mixture_type(x, cfg, t, calibrated), method, 0, &r->linear[t], err);
    if (rc == MQ_OK) rc = mq_scheme_parse(x->base, &r->embd, err);
    if (rc) {
        mq_error_prefix(err, "recipe %s", name);
        mq_recipe_free(r);
    }
    return rc;
}

void mq_recipe_free(mq_recipe_t *r) {
    free(r->linear);
    memset(r, 0, sizeof *r);
}

#define UNIT 64 /* bytes per step of the dynamic programme */

int mq_recipe_choose(const mq_gpt_config_t *cfg, const double *cost, int n_types, double target_bpw,
                     const char *method, mq_recipe_t *r, double *total_cost, mq_error_t *err) {
    memset(r, 0, sizeof *r);
    int n_auto = 0;
    while (MQ_RECIPE_AUTO_TYPES[n_auto])
        n_auto++;
    if (n_types < 1 || n_types > n_auto)
        return mq_error_set(err, MQ_ERR_ARG, "auto: %d types, at most %d", n_types, n_auto);
    if (!(target_bpw > 0) || !isfinite(target_bpw))
        return mq_error_set(err, MQ_ERR_ARG,
                            "auto: the target must be a positive number of bits "
                            "per weight");
    int T = mq_recipe_n_tensors(cfg);
    mq_scheme_t *types = calloc((size_t)n_types, sizeof *types);
    size_t *units = calloc((size_t)T * n_types, sizeof *units);
    if (!types || !units) {
        free(types);
        free(units);
        return mq_error_set(err, MQ_ERR_NOMEM, "out of memory");
    }
    int rc = MQ_OK;
    for (int k = 0; k < n_types && rc == MQ_OK; k++)
        rc = mq_recipe_auto_scheme(k, method, &types[k], err);
    size_t weights = 0, min_bytes = 0;
    for (int t = 0; t < T && rc == MQ_OK; t++) {
        int rows, cols;
        mq_recipe_tensor_shape(cfg, t, &rows, &cols);
        weights += (size_t)rows * (size_t)cols;
        size_t least = SIZE_MAX;
        for (int k = 0; k < n_types; k++) {
            size_t b = mq_recipe_tensor_bytes(cfg, t, &types[k]);
            /* a type no format fits is never chosen; nor is a cost not measured */
            units[(size_t)t * n_types + k] =
                b && isfinite(cost[(size_t)t * n_types + k]) ? (b + UNIT - 1) / UNIT : 0;
            if (units[(size_t)t * n_types + k] && b < least) least = b;
        }
        if (least == SIZE_MAX) {
            char tn[48];
            mq_recipe_tensor_name(cfg, t, tn, sizeof tn);
            rc = mq_error_set(err, MQ_ERR_ARG, "auto: no type fits %s", tn);
        }
        min_bytes += least;
    }
    double budget_bytes = target_bpw * (double)weights / 8.0;
    if (rc == MQ_OK && (double)min_bytes > budget_bytes)
        rc = mq_error_set(err, MQ_ERR_ARG,
                          "auto: %.3f bits per weight is below the fewest the types allow (%.3f)",
                          target_bpw, 8.0 * (double)min_bytes / (double)weights);
    /* best[u]: the least cost of the tensors so far within u units; pick[t][u]: the type of
     * tensor t on that path */
    size_t U = rc == MQ_OK ? (size_t)(budget_bytes / UNIT) : 0;
    double *best = NULL, *next = NULL;
    signed char *pick = NULL;
    if (rc == MQ_OK) {
        best = malloc((U + 1) * sizeof *best);
        next = malloc((U + 1) * sizeof *next);
        pick = malloc((size_t)T * (U + 1));
        if (!best || !next || !pick) rc = mq_error_set(err, MQ_ERR_NOMEM, "out of memory");
    }
    if (rc == MQ_OK) {
        for (size_t u = 0; u <= U; u++)
            best[u] = 0;
        for (int t = 0; t < T; t++) {
            for (size_t u = 0; u <= U; u++) {
                next[u] = INFINITY;
                pick[(size_t)t * (U + 1) + u] = -1;
                for (int k = 0; k < n_types; k++) {
                    size_t w = units[(size_t)t * n_types + k];
                    if (!w || w > u || !isfinite(best[u - w])) continue;
                    double c = best[u - w] + cost[(size_t)t * n_types + k];
                    if (c < next[u]) {
                        next[u] = c;
                        pick[(size_t)t * (U + 1) + u] = (signed char)k;
                    }
                }
            }
            double *tmp = best;
            best = next;
            next = tmp;
        }
        if (!isfinite(best[U]))
            rc = mq_error_set(err, MQ_ERR_ARG,
                              "auto: no choice of types fits %.3f bits per weight (in steps of "
                              "%d bytes)",
                              target_bpw, UNIT);
    }
    if (rc == MQ_OK) rc = alloc_recipe(r, cfg, err);
    if (rc == MQ_OK) {
        snprintf(r->name, sizeof r->name, "auto%s", method);
        snprintf(r->method, sizeof r->method, "%s", method);
        r->llama_ftype = 1024; /* llama_ftype GUESSED: no file type of llama.cpp's */
        if (total_cost) *total_cost = best[U];
        size_t u = U;
        for (int t = T - 1; t >= 0; t--) {
            int k = pick[(size_t)t * (U + 1) + u];
            if (t < r->n_linear)
                r->linear[t] = types[k];
            else
                mq_scheme_parse(MQ_RECIPE_AUTO_TYPES[k], &r->embd, NULL); /* rounded to nearest */
            u -= units[(size_t)t * n_types + k];
        }
    }
    free(best);
    free(next);
    free(pick);
    free(types);
    free(units);
    return rc;
}
