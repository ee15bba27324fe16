/* Measuring one quantization scheme on a model: perplexity, verb-tense accuracy, bytes. Shared
 * by the experiments and the sweep. */
#include "measure.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "miniquant/progress.h"

int cli_bench_open(cli_bench_t *b, const char *model_path, mq_error_t *err) {
    memset(b, 0, sizeof *b);
    b->model_path = model_path;
    int rc = mq_checkpoint_load(model_path, &b->m, &b->tok, &b->info, err);
    if (rc) return rc;
    b->saved = malloc(b->m.num_params * sizeof(float));
    if (!b->saved) {
        cli_bench_close(b);
        return mq_error_set(err, MQ_ERR_NOMEM, "out of memory");
    }
    memcpy(b->saved, b->m.params_memory, b->m.num_params * sizeof(float));
    rc = mq_corpus_load_wordnet(NULL, &b->corpus, err);
    if (rc == MQ_OK) rc = mq_dataset_encode(&b->corpus, MQ_SPLIT_TEST, b->tok, &b->test, err);
    if (rc == MQ_OK) {
        mq_verbtense_stats_t st;
        rc = mq_verbtense_build(&b->corpus, NULL, 0, &b->verbs, &st, err);
    }
    if (rc) cli_bench_close(b);
    return rc;
}

void cli_bench_close(cli_bench_t *b) {
    mq_mp_set_free(&b->verbs);
    mq_tokens_free(&b->test);
    mq_corpus_free(&b->corpus);
    mq_tokenizer_free(b->tok);
    mq_gpt_free(&b->m);
    free(b->saved);
    memset(b, 0, sizeof *b);
}

int cli_measure(cli_bench_t *b, const mq_scheme_t *s, int skip_lm_head, cli_measure_t *out,
                mq_error_t *err) {
    memset(out, 0, sizeof *out);
    out->scheme = *s;
    out->skip_lm_head = skip_lm_head;
    /* every measurement starts from the FP32 weights (quantizing rounds the embeddings) */
    memcpy(b->m.params_memory, b->saved, b->m.num_params * sizeof(float));
    mq_qmodel_t q = {0};
    mq_qmodel_opts_t o = {skip_lm_head, -1, 0};
    int quantized = s->kind != MQ_QK_FP32 || skip_lm_head;
    int rc = quantized ? mq_qmodel_apply(&q, &b->m, s, &o, err) : MQ_OK;
    if (rc) return rc;
    mq_model_bytes(&b->m, quantized ? &q : NULL, &out->bytes);
    out->item_correct = malloc(b->verbs.n_items ? b->verbs.n_items : 1);
    if (!out->item_correct) rc = mq_error_set(err, MQ_ERR_NOMEM, "out of memory");
    if (rc == MQ_OK)
        rc = mq_perplexity(&b->m, b->test.ids, b->test.n, MQ_PPL_DEFAULT, 0, 8, &out->ppl, err);
    if (rc == MQ_OK)
        rc = mq_mp_score(&b->m, b->tok, &b->verbs, out->item_correct, &out->verb, err);
    if (quantized) mq_qmodel_free(&q);
    memcpy(b->m.params_memory, b->saved, b->m.num_params * sizeof(float));
    if (rc) cli_measure_free(out);
    return rc;
}

void cli_measure_free(cli_measure_t *r) {
    free(r->item_correct);
    r->item_correct = NULL;
}

cJSON *cli_measure_json(const cli_measure_t *r, const cli_measure_t *base) {
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "ppl", r->ppl.ppl);
    cJSON_AddNumberToObject(o, "nll", r->ppl.nll);
    if (base) cJSON_AddNumberToObject(o, "ppl_gap_pct", 100 * (r->ppl.ppl - base->ppl.ppl) / base->ppl.ppl);
    cJSON_AddNumberToObject(o, "bytes", (double)r->bytes.total);
    cJSON_AddNumberToObject(o, "bits_per_weight", r->bytes.bits_per_weight);
    cJSON_AddItemToObject(o, "bytes_detail", cli_bytes_json(&r->bytes));
    cJSON *v = cJSON_AddObjectToObject(o, "verb_tense");
    cJSON_AddNumberToObject(v, "accuracy", r->verb.accuracy);
    cJSON_AddNumberToObject(v, "ci95_low", r->verb.ci_low);
    cJSON_AddNumberToObject(v, "ci95_high", r->verb.ci_high);
    cJSON_AddNumberToObject(v, "items", (double)r->verb.n);
    cJSON_AddNumberToObject(v, "correct", (double)r->verb.correct);
    if (base) {
        /* paired comparison with the baseline on the same items */
        size_t gained = 0, lost = 0;
        for (size_t i = 0; i < r->verb.n; i++) {
            gained += r->item_correct[i] && !base->item_correct[i];
            lost += !r->item_correct[i] && base->item_correct[i];
        }
        cJSON_AddNumberToObject(v, "drop_points", 100 * (base->verb.accuracy - r->verb.accuracy));
        cJSON_AddNumberToObject(v, "items_flipped_to_wrong", (double)lost);
        cJSON_AddNumberToObject(v, "items_flipped_to_right", (double)gained);
    }
    return o;
}
