/* Measuring one quantization scheme on a model: perplexity, verb-tense accuracy, bytes. Shared
 * by the experiments and the sweep. */
#include "measure.h"

#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "miniquant/gptq.h"
#include "miniquant/progress.h"
#include "miniquant/report.h"
#include "miniquant/stats.h"

int cli_bench_open(cli_bench_t *b, const char *model_path, mq_error_t *err) {
    memset(b, 0, sizeof *b);
    b->model_path = model_path;
    int rc = mq_checkpoint_load(model_path, &b->m, &b->tok, &b->info, err);
    if (rc) return rc;
    rc = mq_corpus_load_wordnet(NULL, &b->corpus, err);
    if (rc == MQ_OK) rc = mq_dataset_encode(&b->corpus, MQ_SPLIT_TEST, b->tok, &b->test, err);
    if (rc == MQ_OK) rc = mq_dataset_encode(&b->corpus, MQ_SPLIT_VALID, b->tok, &b->valid, err);
    if (rc == MQ_OK) {
        mq_verbtense_stats_t st;
        rc = mq_verbtense_build(&b->corpus, NULL, MQ_VT_TEMPLATE_ITEMS, &b->verbs, &st, err);
    }
    if (rc) cli_bench_close(b);
    return rc;
}

void cli_bench_close(cli_bench_t *b) {
    mq_mp_set_free(&b->verbs);
    mq_tokens_free(&b->test);
    mq_tokens_free(&b->valid);
    mq_corpus_free(&b->corpus);
    mq_tokenizer_free(b->tok);
    mq_gpt_free(&b->m);
    memset(b, 0, sizeof *b);
}

int cli_measure(cli_bench_t *b, const mq_scheme_t *s, int skip_lm_head, cli_measure_t *out,
                mq_error_t *err) {
    memset(out, 0, sizeof *out);
    out->scheme = *s;
    out->skip_lm_head = skip_lm_head;
    mq_qmodel_t q = {0};
    int quantized = !mq_scheme_is_identity(s) || skip_lm_head;
    double t0 = mq_now();
    int rc = quantized ? mq_gptq_build_qmodel(&b->m, s, skip_lm_head, b->valid.ids, b->valid.n,
                                              &q, err)
                       : MQ_OK;
    if (rc) return rc;
    out->quantize_seconds = mq_now() - t0;
    mq_gpt_t *run = quantized ? q.model : &b->m; /* the FP32 model itself is never changed */
    mq_model_bytes(&b->m, quantized ? &q : NULL, &out->bytes);
    /* the file's size, from the GGUF built in memory */
    mq_gguf_t *g = mq_gguf_new();
    if (!g) rc = mq_error_set(err, MQ_ERR_NOMEM, "out of memory");
    if (rc == MQ_OK) rc = mq_qmodel_to_gguf(&b->m, quantized ? &q : NULL, b->tok, g, err);
    if (rc == MQ_OK) rc = mq_export_bytes(g, &out->gguf, err);
    mq_gguf_free(g);
    if (rc == MQ_OK && !(out->item_correct = malloc(b->verbs.n_items ? b->verbs.n_items : 1)))
        rc = mq_error_set(err, MQ_ERR_NOMEM, "out of memory");
    if (rc == MQ_OK)
        rc = mq_perplexity_windows(run, b->test.ids, b->test.n, MQ_PPL_DEFAULT, 0, 8, &out->ppl,
                                   &out->window_nll, &out->window_tokens, err);
    if (rc == MQ_OK) rc = mq_mp_score(run, b->tok, &b->verbs, out->item_correct, &out->verb, err);
    out->verbs = &b->verbs;
    if (quantized) mq_qmodel_free(&q);
    if (rc) cli_measure_free(out);
    return rc;
}

void cli_measure_free(cli_measure_t *r) {
    free(r->item_correct);
    free(r->window_nll);
    free(r->window_tokens);
    r->item_correct = NULL;
    r->window_nll = NULL;
    r->window_tokens = NULL;
}

int cli_measure_paired(const cli_measure_t *r, const cli_measure_t *base, cli_paired_t *out,
                       mq_error_t *err) {
    memset(out, 0, sizeof *out);
    if (r->ppl.n_windows != base->ppl.n_windows || r->verb.n != base->verb.n)
        return mq_error_set(err, MQ_ERR_ARG, "%s and %s were not measured on the same windows "
                                             "and items", r->scheme.name, base->scheme.name);
    int rc = mq_bootstrap_ppl_gap(r->window_nll, base->window_nll, r->window_tokens,
                                  (size_t)r->ppl.n_windows, CLI_BOOT_RESAMPLES, CLI_BOOT_SEED,
                                  0.95, &out->gap, err);
    if (rc) return rc;
    out->gap_significant = out->gap.lo > 0 || out->gap.hi < 0;
    for (size_t i = 0; i < r->verb.n; i++) {
        int gained = r->item_correct[i] && !base->item_correct[i];
        int lost = !r->item_correct[i] && base->item_correct[i];
        int c = r->verbs ? r->verbs->items[i].category : MQ_VT_NONE;
        out->verb.gained += (size_t)gained;
        out->verb.lost += (size_t)lost;
        out->by_category[c].gained += (size_t)gained;
        out->by_category[c].lost += (size_t)lost;
    }
    for (int c = -1; c < MQ_VT_NUM_CATEGORIES; c++) {
        cli_flips_t *f = c < 0 ? &out->verb : &out->by_category[c];
        f->mcnemar_p = mq_mcnemar_exact((int64_t)f->lost, (int64_t)f->gained);
        f->drop_significant = f->lost > f->gained && f->mcnemar_p < 0.05;
    }
    return MQ_OK;
}

/* The accuracy figures of some items, and with flips their paired comparison. */
static void add_accuracy(cJSON *v, size_t n, size_t correct, double accuracy, double lo,
                         double hi, double chance, double base_accuracy, const cli_flips_t *f) {
    cJSON_AddNumberToObject(v, "accuracy", accuracy);
    cJSON_AddNumberToObject(v, "ci95_low", lo);
    cJSON_AddNumberToObject(v, "ci95_high", hi);
    cJSON_AddNumberToObject(v, "items", (double)n);
    cJSON_AddNumberToObject(v, "correct", (double)correct);
    cJSON_AddNumberToObject(v, "chance", chance);
    if (!f) return;
    cJSON_AddNumberToObject(v, "drop_points", 100 * (base_accuracy - accuracy));
    cJSON_AddNumberToObject(v, "items_flipped_to_wrong", (double)f->lost);
    cJSON_AddNumberToObject(v, "items_flipped_to_right", (double)f->gained);
    cJSON_AddNumberToObject(v, "mcnemar_p", f->mcnemar_p);
    cJSON_AddBoolToObject(v, "drop_significant", f->drop_significant);
}

cJSON *cli_measure_json(const cli_measure_t *r, const cli_measure_t *base) {
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "ppl", r->ppl.ppl);
    cJSON_AddNumberToObject(o, "nll", r->ppl.nll);
    cli_paired_t pr;
    mq_error_t err = {0};
    int paired = base && cli_measure_paired(r, base, &pr, &err) == MQ_OK;
    if (base && !paired) cJSON_AddStringToObject(o, "paired_error", err.msg);
    if (paired) {
        cJSON_AddNumberToObject(o, "ppl_gap_pct", pr.gap.estimate);
        cJSON *ci = cJSON_AddArrayToObject(o, "ppl_gap_pct_ci95");
        cJSON_AddItemToArray(ci, cJSON_CreateNumber(pr.gap.lo));
        cJSON_AddItemToArray(ci, cJSON_CreateNumber(pr.gap.hi));
        cJSON_AddBoolToObject(o, "ppl_gap_significant", pr.gap_significant);
    }
    cJSON_AddNumberToObject(o, "bytes", (double)r->bytes.total);
    cJSON_AddNumberToObject(o, "bits_per_weight", r->bytes.bits_per_weight);
    cJSON_AddItemToObject(o, "bytes_detail", cli_bytes_json(&r->bytes));
    cJSON_AddNumberToObject(o, "gguf_bytes", (double)r->gguf.file);
    cJSON_AddNumberToObject(o, "gguf_bits_per_weight", r->gguf.bits_per_weight);
    cJSON_AddNumberToObject(o, "quantize_seconds", r->quantize_seconds);
    const mq_mp_result_t *vr = &r->verb;
    cJSON *v = cJSON_AddObjectToObject(o, "verb_tense");
    add_accuracy(v, vr->n, vr->correct, vr->accuracy, vr->ci_low, vr->ci_high, vr->chance,
                 paired ? base->verb.accuracy : 0, paired ? &pr.verb : NULL);
    cJSON *cats = cJSON_AddObjectToObject(v, "categories");
    for (int c = 0; c < MQ_VT_NUM_CATEGORIES; c++) {
        if (!vr->by_category[c].n) continue;
        const mq_mp_tally_t *k = &vr->by_category[c];
        add_accuracy(cJSON_AddObjectToObject(cats, mq_vt_category_name(c)), k->n, k->correct,
                     k->accuracy, k->ci_low, k->ci_high, k->chance,
                     paired ? base->verb.by_category[c].accuracy : 0,
                     paired ? &pr.by_category[c] : NULL);
    }
    return o;
}

/* Verb-tense accuracy by category, each scheme's drop against the first marked when it is
 * significant. */
void cli_print_categories(const cli_measure_t *res, int n) {
    const mq_mp_result_t *v0 = &res[0].verb;
    printf("\nverb-tense accuracy by category (%%; chance:");
    for (int c = 0; c < MQ_VT_NUM_CATEGORIES; c++)
        if (v0->by_category[c].n)
            printf(" %s %.1f", mq_vt_category_name(c), 100 * v0->by_category[c].chance);
    printf(")\n%-34s", "scheme");
    for (int c = 0; c < MQ_VT_NUM_CATEGORIES; c++)
        if (v0->by_category[c].n)
            printf(" %*s", 18, mq_vt_category_name(c));
    printf("\n%-34s", "items");
    for (int c = 0; c < MQ_VT_NUM_CATEGORIES; c++)
        if (v0->by_category[c].n) printf(" %18zu", v0->by_category[c].n);
    printf("\n");
    for (int i = 0; i < n; i++) {
        cli_paired_t pr;
        mq_error_t err = {0};
        int paired = i && cli_measure_paired(&res[i], &res[0], &pr, &err) == MQ_OK;
        char name[48];
        snprintf(name, sizeof name, "%s%s", res[i].scheme.name,
                 res[i].skip_lm_head ? " (lm_head FP32)" : "");
        printf("%-34s", name);
        for (int c = 0; c < MQ_VT_NUM_CATEGORIES; c++) {
            if (!v0->by_category[c].n) continue;
            char cell[40];
            const mq_mp_tally_t *t = &res[i].verb.by_category[c];
            if (paired)
                snprintf(cell, sizeof cell, "%.2f (+%d/-%d)%s", 100 * t->accuracy,
                         (int)pr.by_category[c].gained, (int)pr.by_category[c].lost,
                         pr.by_category[c].drop_significant ? "*" : " ");
            else
                snprintf(cell, sizeof cell, "%.2f ", 100 * t->accuracy);
            printf(" %18s", cell);
        }
        printf("\n");
    }
    printf("(+gained/-lost: items right only under the scheme / only under %s; * a drop "
           "significant at 5%% by McNemar's exact test)\n", res[0].scheme.name);
}

cJSON *cli_manifest_config(const char *model_path, const mq_gpt_t *m, const mq_ckpt_info_t *info,
                           const char *command) {
    cJSON *cfg = cJSON_CreateObject();
    cJSON_AddStringToObject(cfg, "model", model_path);
    cJSON_AddStringToObject(cfg, "model_config", m->cfg.name);
    cJSON_AddNumberToObject(cfg, "vocab_size", m->cfg.vocab_size);
    cJSON_AddNumberToObject(cfg, "n_ctx", m->cfg.n_ctx);
    cJSON_AddNumberToObject(cfg, "n_embd", m->cfg.n_embd);
    cJSON_AddNumberToObject(cfg, "n_layer", m->cfg.n_layer);
    cJSON_AddNumberToObject(cfg, "n_head", m->cfg.n_head);
    cJSON_AddNumberToObject(cfg, "train_steps", (double)info->step);
    cJSON_AddStringToObject(cfg, "command", command);
    return cfg;
}

cJSON *cli_results_root(const char *experiment, const cli_bench_t *b, cJSON **evaluation) {
    char date[32];
    mq_utc_now(date, sizeof date);
    cJSON *root = cJSON_CreateObject();
    cJSON_AddStringToObject(root, "experiment", experiment);
    cJSON_AddStringToObject(root, "date", date);
    cJSON_AddStringToObject(root, "model", b->model_path);
    cJSON_AddNumberToObject(root, "model_params", (double)b->m.num_params);
    cJSON *ev = cJSON_AddObjectToObject(root, "evaluation");
    cJSON_AddStringToObject(ev, "ppl", "test split, default protocol (non-overlapping windows "
                                       "of the context length)");
    cJSON_AddNumberToObject(ev, "test_tokens", (double)b->test.n);
    cJSON_AddNumberToObject(ev, "verb_tense_items", (double)b->verbs.n_items);
    *evaluation = ev;
    return root;
}

static const struct {
    const char *key;
    size_t off;
} KLD_FIELDS[] = {
    {"mean", offsetof(mq_kld_result_t, mean)},
    {"mean_stderr", offsetof(mq_kld_result_t, mean_stderr)},
    {"median", offsetof(mq_kld_result_t, median)},
    {"p99", offsetof(mq_kld_result_t, p99)},
    {"p999", offsetof(mq_kld_result_t, p999)},
    {"max", offsetof(mq_kld_result_t, max)},
    {"same_top", offsetof(mq_kld_result_t, same_top)},
    {"same_top_stderr", offsetof(mq_kld_result_t, same_top_stderr)},
    {"ln_ppl_ratio", offsetof(mq_kld_result_t, ln_ppl_ratio)},
    {"ln_ppl_ratio_stderr", offsetof(mq_kld_result_t, ln_ppl_ratio_stderr)},
    {"ppl", offsetof(mq_kld_result_t, ppl)},
    {"ppl_base", offsetof(mq_kld_result_t, ppl_base)},
};
#define N_KLD_FIELDS (sizeof KLD_FIELDS / sizeof KLD_FIELDS[0])

cJSON *cli_kld_json(const mq_kld_result_t *k) {
    cJSON *o = cJSON_CreateObject();
    for (size_t i = 0; i < N_KLD_FIELDS; i++)
        cJSON_AddNumberToObject(o, KLD_FIELDS[i].key,
                                *(const double *)((const char *)k + KLD_FIELDS[i].off));
    cJSON_AddNumberToObject(o, "n_scored", (double)k->n_scored);
    return o;
}

void cli_kld_from_json(const cJSON *o, mq_kld_result_t *k) {
    memset(k, 0, sizeof *k);
    for (size_t i = 0; i < N_KLD_FIELDS; i++) {
        const cJSON *x = cJSON_GetObjectItemCaseSensitive(o, KLD_FIELDS[i].key);
        *(double *)((char *)k + KLD_FIELDS[i].off) = cJSON_IsNumber(x) ? x->valuedouble : NAN;
    }
    const cJSON *n = cJSON_GetObjectItemCaseSensitive(o, "n_scored");
    k->n_scored = cJSON_IsNumber(n) ? (int64_t)n->valuedouble : 0;
}
