/* miniquant sweep and experiment quant-curve from the command line, on a small random llama model:
 * the paired statistics in results.json, and the side-by-side plot and table of sweeps. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "miniquant/arch.h"
#include "miniquant/checkpoint.h"
#include "miniquant/fileio.h"
#include "miniquant/pairs.h"
#include "miniquant/report.h"
#include "miniquant/stats.h"

static char dir[] = "/tmp/mq-sweep-XXXXXX";

static int run(const char *cmd) {
    int st = system(cmd);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* A random llama model at DIR/name.gguf with a generated SentencePiece vocabulary. */
static void write_model(const char *name) {
    mq_tokenizer_t *tok;
    mq_error_t err = {0};
    cr_assert_eq(mq_synth_vocabulary(300, &tok, &err), MQ_OK, "%s", err.msg);
    mq_gpt_config_t cfg = {.name = "custom",
                           .arch = MQ_ARCH_LLAMA,
                           .vocab_size = 300,
                           .n_ctx = 32,
                           .n_embd = 64,
                           .n_head = 4,
                           .n_layer = 1,
                           .n_head_kv = 2,
                           .n_ff = 128};
    char path[256];
    snprintf(path, sizeof path, "%s/%s.gguf", dir, name);
    cr_assert_eq(mq_synth_write(path, &cfg, tok, 5, &err), MQ_OK, "%s", err.msg);
    mq_tokenizer_free(tok);
}

static const cJSON *scheme_entry(const cJSON *root, const char *name) {
    const cJSON *it;
    cJSON_ArrayForEach(
        it,
        cJSON_GetObjectItem(
            root, "schemes")) if (!strcmp(cJSON_GetStringValue(cJSON_GetObjectItem(it, "scheme")),
                                          name)) return it;
    cr_assert_fail("no scheme %s", name);
    return NULL;
}

/* One sweep (fp32 and int2_g32 on a random llama model with a SentencePiece vocabulary: the
 * whole test split and verb-tense set, so kept to one scheme), then the side-by-side comparison
 * of it with a copy of itself under another name. */
Test(sweep, paired_statistics_and_sweeps_side_by_side) {
    cr_assert(mkdtemp(dir));
    write_model("b-llama");
    char cmd[2048];
    snprintf(
        cmd, sizeof cmd,
        "%s sweep --model %s/b-llama.gguf --schemes int2_g32 --threads 2 --out %s/curve/b-llama "
        "> %s/sweep.txt",
        MQ_CLI_PATH, dir, dir, dir);
    cr_assert_eq(run(cmd), 0, "%s", cmd);
    char path[512];
    snprintf(path, sizeof path, "%s/curve/b-llama/results.json", dir);
    cJSON *root;
    mq_error_t err = {0};
    cr_assert_eq(mq_json_read(path, &root, &err), MQ_OK, "%s", err.msg);
    const cJSON *s = scheme_entry(root, "int2_g32");
    const cJSON *ci = cJSON_GetObjectItem(s, "ppl_gap_pct_ci95"),
                *v = cJSON_GetObjectItem(s, "verb_tense");
    double gap = cJSON_GetObjectItem(s, "ppl_gap_pct")->valuedouble;
    cr_assert(cJSON_GetArraySize(ci) == 2, "%s", path);
    double lo = cJSON_GetArrayItem(ci, 0)->valuedouble, hi = cJSON_GetArrayItem(ci, 1)->valuedouble;
    cr_assert(lo <= gap && gap <= hi, "%g [%g, %g]", gap, lo, hi);
    /* a random model's perplexity may move either way; 2 bits move it far enough for the
     * paired interval to exclude 0 */
    cr_assert(cJSON_IsTrue(cJSON_GetObjectItem(s, "ppl_gap_significant")) && (lo > 0 || hi < 0),
              "int2: %g%% [%g, %g]", gap, lo, hi);
    double p = cJSON_GetObjectItem(v, "mcnemar_p")->valuedouble;
    cr_assert(p > 0 && p <= 1, "%g", p);
    /* McNemar's p is the one of the flips the file reports; a drop is significant when more
     * items were lost than gained */
    double lost = cJSON_GetObjectItem(v, "items_flipped_to_wrong")->valuedouble,
           gained = cJSON_GetObjectItem(v, "items_flipped_to_right")->valuedouble;
    cr_assert_float_eq(p, mq_mcnemar_exact((int64_t)lost, (int64_t)gained), 1e-12);
    cr_assert_eq(cJSON_IsTrue(cJSON_GetObjectItem(v, "drop_significant")),
                 lost > gained && p < 0.05);
    /* the categories split the items, the flips and the correct answers; each has its own test */
    double items = 0, correct = 0, lost_c = 0, gained_c = 0, chance = 0;
    int n_cat = 0;
    const cJSON *c;
    cJSON_ArrayForEach(c, cJSON_GetObjectItem(v, "categories")) {
        uint8_t id;
        cr_assert_eq(mq_vt_category_parse(c->string, &id, &err), MQ_OK, "%s", c->string);
        cr_assert_neq(id, MQ_VT_NONE);
        double ci_items = cJSON_GetObjectItem(c, "items")->valuedouble,
               cl = cJSON_GetObjectItem(c, "items_flipped_to_wrong")->valuedouble,
               cg = cJSON_GetObjectItem(c, "items_flipped_to_right")->valuedouble,
               cp = cJSON_GetObjectItem(c, "mcnemar_p")->valuedouble,
               cc = cJSON_GetObjectItem(c, "chance")->valuedouble;
        cr_assert(ci_items >= 300, "%s: %g items", c->string, ci_items);
        cr_assert(cc > 0.15 && cc <= 0.5, "%s: chance %g", c->string, cc);
        cr_assert_float_eq(cp, mq_mcnemar_exact((int64_t)cl, (int64_t)cg), 1e-12);
        cr_assert_eq(cJSON_IsTrue(cJSON_GetObjectItem(c, "drop_significant")), cl > cg && cp < 0.05);
        items += ci_items;
        correct += cJSON_GetObjectItem(c, "correct")->valuedouble;
        lost_c += cl, gained_c += cg, chance += cc * ci_items;
        n_cat++;
    }
    cr_assert_eq(n_cat, 4);
    cr_assert_float_eq(items, cJSON_GetObjectItem(v, "items")->valuedouble, 0.5);
    cr_assert_float_eq(correct, cJSON_GetObjectItem(v, "correct")->valuedouble, 0.5);
    cr_assert_float_eq(lost_c, lost, 0.5);
    cr_assert_float_eq(gained_c, gained, 0.5);
    cr_assert_float_eq(chance / items, cJSON_GetObjectItem(v, "chance")->valuedouble, 1e-9);
    /* the knee of round to nearest is int2_g32 exactly when its drop is not significant; GPTQ
     * was not swept */
    const cJSON *knee = cJSON_GetObjectItem(root, "task_knee");
    const char *rtn = cJSON_GetStringValue(cJSON_GetObjectItem(cJSON_GetObjectItem(knee, "rtn"),
                                                               "scheme"));
    if (cJSON_IsTrue(cJSON_GetObjectItem(v, "drop_significant")))
        cr_assert_null(rtn);
    else
        cr_assert(rtn && !strcmp(rtn, "int2_g32"));
    cr_assert_null(cJSON_GetObjectItem(cJSON_GetObjectItem(knee, "gptq"), "scheme"));
    cJSON_Delete(root);
    /* side by side with a copy of itself, drawn from the results */
    snprintf(cmd, sizeof cmd,
             "cp -r %s/curve/b-llama %s/curve/c-llama && cp %s/b-llama.gguf %s/c-llama.gguf", dir,
             dir, dir, dir);
    cr_assert_eq(run(cmd), 0, "%s", cmd);
    snprintf(cmd, sizeof cmd,
             "%s experiment quant-curve --plots-only --model %s/b-llama.gguf --model "
             "%s/c-llama.gguf --out %s/curve > %s/compare.txt",
             MQ_CLI_PATH, dir, dir, dir, dir);
    cr_assert_eq(run(cmd), 0, "%s", cmd);
    char *text;
    size_t len;
    snprintf(path, sizeof path, "%s/curve/architectures.png", dir);
    cr_assert_eq(mq_read_file(path, 0, &text, &len, &err), MQ_OK, "%s", err.msg);
    cr_assert(len > 1000 && !memcmp(text, "\x89PNG", 4), "%s is not a PNG", path);
    free(text);
    snprintf(path, sizeof path, "%s/compare.txt", dir);
    cr_assert_eq(mq_read_file(path, 0, &text, &len, &err), MQ_OK, "%s", err.msg);
    cr_assert(strstr(text, "int2_g32") && strstr(text, "fp32"), "%s", text);
    free(text);
    /* only quant-curve takes several models */
    snprintf(cmd, sizeof cmd,
             "%s experiment int8-ptq --model %s/b-llama.gguf --model %s/c-llama.gguf --out %s/x "
             "2> /dev/null",
             MQ_CLI_PATH, dir, dir, dir);
    cr_assert_eq(run(cmd), 2, "%s", cmd);
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    cr_assert_eq(run(cmd), 0);
}
