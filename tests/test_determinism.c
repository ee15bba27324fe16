/* Determinism: the same work with the same seed and thread count writes the same bytes.
 * Training writes the same model and .opt files (but for the wall-clock seconds they record),
 * exporting writes the same GGUF (and so does exporting the model loaded back from it), a
 * results JSON is the same but for its date and timings, and the CLI run twice writes the same
 * files. */
#include <criterion/criterion.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "files.h"
#include "fixture.h"
#include "miniquant/checkpoint.h"
#include "miniquant/eval.h"
#include "miniquant/export.h"
#include "miniquant/report.h"

static mq_tokenizer_t *tok;
static mq_tokens_t stream;
static char dir[] = "/tmp/mq-determinism-XXXXXX";

static void setup(void) {
    fixture_stream(&tok, &stream);
    cr_assert(mkdtemp(dir));
    omp_set_num_threads(2); /* the same thread count for every run of a test */
}

static void teardown(void) {
    remove_dir(dir);
    mq_tokens_free(&stream);
    mq_tokenizer_free(tok);
}

TestSuite(determinism, .init = setup, .fini = teardown);

static void in_dir(char *buf, size_t n, const char *name) {
    snprintf(buf, n, "%s/%s", dir, name);
}

/* Trains the fixture model for a few steps from scratch, checkpointing to path. */
static void train_to(const char *path) {
    mq_gpt_t m = {0};
    fixture_model(&m, 11);
    mq_train_opts_t o;
    fixture_opts(&o, 8, tok);
    o.eval_every = 4;
    o.ckpt_every = 4;
    o.ckpt_path = path;
    mq_train_log_t log = {0};
    mq_error_t err = {0};
    cr_assert_eq(mq_train(&m, stream.ids, stream.n, stream.ids, stream.n, &o, 0, &log, &err),
                 MQ_OK, "%s", err.msg);
    mq_train_log_free(&log);
    mq_gpt_free(&m);
}

Test(determinism, training_twice_writes_the_same_model_and_state) {
    char a[256], b[256], opt_a[300], opt_b[300];
    in_dir(a, sizeof a, "a.gguf");
    in_dir(b, sizeof b, "b.gguf");
    snprintf(opt_a, sizeof opt_a, "%s.opt", a);
    snprintf(opt_b, sizeof opt_b, "%s.opt", b);
    train_to(a);
    train_to(b);
    cr_assert(same_gguf_untimed(a, b), "two identical training runs wrote different models");
    cr_assert(same_gguf_untimed(opt_a, opt_b), "two identical training runs wrote different .opt");
}

/* The fixture model, quantized with scheme and exported to path; with reload, the file is
 * loaded and exported again to path (a loaded model writes the bytes it was read from). */
static void export_to(const char *scheme, int skip_lm_head, int reload, const char *path) {
    mq_gpt_t m = {0};
    fixture_model(&m, 12);
    mq_scheme_t s;
    mq_error_t err = {0};
    cr_assert_eq(mq_scheme_parse(scheme, &s, &err), MQ_OK, "%s", err.msg);
    mq_qmodel_t q;
    mq_qmodel_opts_t qo = {skip_lm_head, -1, 0, NULL};
    cr_assert_eq(mq_qmodel_quantize(&q, &m, &s, &qo, &err), MQ_OK, "%s", err.msg);
    cr_assert_eq(mq_qmodel_save(path, &m, &q, tok, &err), MQ_OK, "%s", err.msg);
    mq_qmodel_free(&q);
    mq_gpt_free(&m);
    if (reload) {
        mq_tokenizer_t *t2 = NULL;
        cr_assert_eq(mq_qmodel_load(path, &q, &t2, &err), MQ_OK, "%s", err.msg);
        cr_assert_eq(mq_qmodel_save(path, NULL, &q, t2, &err), MQ_OK, "%s", err.msg);
        mq_tokenizer_free(t2);
        mq_qmodel_free(&q);
    }
}

Test(determinism, exporting_twice_writes_the_same_bytes) {
    static const char *const SCHEMES[] = {"fp32",     "fp16",    "int8_per_channel",
                                          "int4_g32", "nf4_g32", "int3_per_channel",
                                          "nf3_g32",  "nf3_g16"};
    for (size_t i = 0; i < sizeof SCHEMES / sizeof SCHEMES[0]; i++) {
        char a[256], b[256];
        in_dir(a, sizeof a, "qa.gguf");
        in_dir(b, sizeof b, "qb.gguf");
        export_to(SCHEMES[i], i % 2, 0, a);
        export_to(SCHEMES[i], i % 2, 0, b);
        cr_assert(same_bytes(a, b), "%s: two exports differ", SCHEMES[i]);
        /* a file written over itself from the model loaded out of it */
        export_to(SCHEMES[i], i % 2, 1, b);
        cr_assert(same_bytes(a, b), "%s: the reloaded model exports differently", SCHEMES[i]);
    }
}

/* Removes, at every depth, the members that say when or how fast: a date and timings. */
static void drop_timings(cJSON *node) {
    static const char *const TIMING[] = {"date", "seconds", "tokens_per_s"};
    for (cJSON *c = node ? node->child : NULL, *next; c; c = next) {
        next = c->next;
        int timing = 0;
        for (size_t k = 0; c->string && k < sizeof TIMING / sizeof TIMING[0]; k++)
            timing |= strstr(c->string, TIMING[k]) != NULL;
        if (timing)
            cJSON_Delete(cJSON_DetachItemViaPointer(node, c));
        else
            drop_timings(c);
    }
}

/* Quantizes the fixture model, measures its perplexity on the fixture stream and writes the
 * results as the experiments do: numbers, timings and the manifest. */
static void results_to(const char *path) {
    mq_gpt_t m = {0};
    fixture_model(&m, 13);
    mq_scheme_t s;
    mq_error_t err = {0};
    mq_scheme_parse("int4_g32", &s, NULL);
    mq_qmodel_t q;
    cr_assert_eq(mq_qmodel_quantize(&q, &m, &s, NULL, &err), MQ_OK, "%s", err.msg);
    mq_ppl_result_t r;
    cr_assert_eq(mq_perplexity(q.model, stream.ids, stream.n, MQ_PPL_DEFAULT, 0, 0, &r, &err),
                 MQ_OK, "%s", err.msg);
    mq_model_bytes_t b;
    mq_model_bytes(NULL, &q, &b);
    cJSON *root = cJSON_CreateObject(), *res = cJSON_AddObjectToObject(root, "int4_g32");
    cJSON_AddNumberToObject(res, "ppl", r.ppl);
    cJSON_AddNumberToObject(res, "nll_stderr", r.nll_stderr);
    cJSON_AddNumberToObject(res, "bytes", (double)b.total);
    cJSON_AddNumberToObject(res, "bits_per_weight", b.bits_per_weight);
    cJSON_AddNumberToObject(res, "seconds", r.seconds);
    cJSON *cfg = cJSON_CreateObject();
    cJSON_AddStringToObject(cfg, "scheme", s.name);
    cJSON_AddItemToObject(root, "manifest", mq_manifest(13, cfg));
    cr_assert_eq(mq_json_write(path, root, &err), MQ_OK, "%s", err.msg);
    cJSON_Delete(root);
    mq_qmodel_free(&q);
    mq_gpt_free(&m);
}

Test(determinism, results_json_is_the_same_but_for_date_and_timings) {
    char a[256], b[256];
    in_dir(a, sizeof a, "ra.json");
    in_dir(b, sizeof b, "rb.json");
    results_to(a);
    results_to(b);
    cJSON *ja, *jb;
    mq_error_t err = {0};
    cr_assert_eq(mq_json_read(a, &ja, &err), MQ_OK, "%s", err.msg);
    cr_assert_eq(mq_json_read(b, &jb, &err), MQ_OK, "%s", err.msg);
    cr_assert(cJSON_GetObjectItemCaseSensitive(ja, "int4_g32"));
    drop_timings(ja);
    drop_timings(jb);
    cr_assert(cJSON_Compare(ja, jb, 1), "two identical runs wrote different results");
    cJSON_Delete(ja);
    cJSON_Delete(jb);
}

/* ---------------------------------------------------------------------------------------------
 * the command, run twice */

static int run(const char *cmd) {
    int st = system(cmd);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

Test(determinism, the_cli_run_twice_writes_the_same_files) {
    char model[256], cmd[2048];
    in_dir(model, sizeof model, "model.gguf");
    mq_gpt_t m = {0};
    fixture_model(&m, 14);
    mq_error_t err = {0};
    cr_assert_eq(mq_checkpoint_save(model, &m, tok, NULL, &err), MQ_OK, "%s", err.msg);
    mq_gpt_free(&m);
    for (int k = 0; k < 2; k++) {
        snprintf(cmd, sizeof cmd,
                 "%s quantize --model %s --scheme int4_g32 --json %s/quantize-%d.json "
                 "> %s/quantize-%d.txt",
                 MQ_CLI_PATH, model, dir, k, dir, k);
        cr_assert_eq(run(cmd), 0, "%s", cmd);
        snprintf(cmd, sizeof cmd,
                 "%s export --model %s --scheme nf4_g32 --threads 2 --out %s/export-%d.gguf "
                 "> /dev/null",
                 MQ_CLI_PATH, model, dir, k);
        cr_assert_eq(run(cmd), 0, "%s", cmd);
    }
    static const char *const OUTPUTS[] = {"quantize-%d.json", "quantize-%d.txt", "export-%d.gguf"};
    for (size_t i = 0; i < sizeof OUTPUTS / sizeof OUTPUTS[0]; i++) {
        char name[64], a[256], b[256];
        snprintf(name, sizeof name, OUTPUTS[i], 0);
        in_dir(a, sizeof a, name);
        snprintf(name, sizeof name, OUTPUTS[i], 1);
        in_dir(b, sizeof b, name);
        cr_assert(same_bytes(a, b), "%s and %s differ", a, b);
    }
}
