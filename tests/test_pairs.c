#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "miniquant/eval.h"
#include "miniquant/fileio.h"
#include "miniquant/pairs.h"

#define PAIRS MQ_TEST_DATA "/pairs"
/* ---------------------------------------------------------------------------------------------
 * BLiMP files */

Test(pairs, blimp_reads_a_valid_file) {
    mq_mp_set_t s = {0};
    mq_error_t err = {0};
    cr_assert_eq(mq_blimp_read(PAIRS "/blimp.jsonl", &s, &err), MQ_OK, "%s", err.msg);
    cr_assert_eq(s.n_items, 4);
    cr_assert_eq(s.n_bad, 4);
    cr_expect_str_eq(s.items[0].good, "Whose hat should Tonya wear?");
    cr_expect_str_eq(s.bad[0], "Whose should Tonya wear hat?");
    cr_expect_str_eq(s.items[0].source, "left_branch_island_simple_question");
    cr_expect_str_eq(s.items[1].good, "The \"caf\xc3\xa9\" owner says \\ hello.");
    cr_expect_str_eq(s.bad[1], "The \"caf\xc3\xa9\" owner say \\ hello.");
    cr_expect_str_eq(
        s.items[2].good,
        "Die na\xc3\xafve Frau \xe2\x80\x94 \xe6\x97\xa5\xe6\x9c\xac \xe2\x80\x94 sings.");
    cr_expect_null(s.items[2].source);
    cr_expect_str_eq(s.items[3].good, "A tab\there, a newline\nthere."); /* a CRLF line */
    for (size_t i = 0; i < 4; i++) {
        cr_expect_eq(s.items[i].n_bad, 1);
        cr_expect_eq(s.items[i].first_bad, i);
        cr_expect_null(s.items[i].lemma);
        cr_expect_eq(s.items[i].infl, 0);
    }
    mq_mp_set_free(&s);
    cr_expect_eq(mq_blimp_read(PAIRS "/no-such-file.jsonl", &s, &err), MQ_ERR_IO);
}

static void expect_rejected(const char *text, size_t len, int line, const char *what) {
    mq_mp_set_t s = {0};
    mq_error_t err = {0};
    int rc = mq_blimp_parse(text, len, "x.jsonl", &s, &err);
    cr_expect_eq(rc, MQ_ERR_FORMAT, "accepted: %.80s", text);
    char want[64];
    if (line > 0)
        snprintf(want, sizeof want, "x.jsonl: line %d: ", line);
    else
        snprintf(want, sizeof want, "x.jsonl: ");
    cr_expect(!strncmp(err.msg, want, strlen(want)), "'%s' does not start with '%s'", err.msg,
              want);
    cr_expect(strstr(err.msg, what), "'%s' does not say '%s'", err.msg, what);
    cr_expect_eq(s.n_items, 0);
    cr_expect_null(s.items);
}
#define REJECT(text, line, what) expect_rejected(text, sizeof(text) - 1, line, what)

#define OK_LINE "{\"sentence_good\": \"a b\", \"sentence_bad\": \"b a\"}\n"

Test(pairs, blimp_rejects_malformed_lines_with_their_number) {
    REJECT(OK_LINE "{\"sentence_good\": \"a b\", \"sentence_bad\": \"b a\"\n", 2, "invalid JSON");
    REJECT(OK_LINE "\n" OK_LINE "not json\n", 4, "invalid JSON at column 1");
    REJECT(OK_LINE "{\"sentence_good\": \"a\", \"sentence_bad\": \"b\"} x\n", 2,
           "text after the JSON object");
    REJECT(OK_LINE "{\"sentence_good\": \"a\", \"sentence_bad\": \"b\"}{}\n", 2, "text after");
    REJECT("[\"a\", \"b\"]\n", 1, "not a JSON object");
    REJECT("\"a\"\n", 1, "not a JSON object");
    REJECT(OK_LINE OK_LINE "{\"sentence_good\": \"a b\"}\n", 3, "no \"sentence_bad\"");
    REJECT("{\"sentence_bad\": \"a b\"}\n", 1, "no \"sentence_good\"");
    REJECT("{\"sentence_good\": 3, \"sentence_bad\": \"b\"}\n", 1,
           "\"sentence_good\" is not a string");
    REJECT("{\"sentence_good\": \"a\", \"sentence_bad\": null}\n", 1,
           "\"sentence_bad\" is not a string");
    REJECT("{\"sentence_good\": \"\", \"sentence_bad\": \"b\"}\n", 1, "is empty");
    REJECT("{\"sentence_good\": \"a\", \"sentence_bad\": \"a\"}\n", 1, "are the same");
    REJECT(OK_LINE "{\"sentence_good\": \"a\\u0000b\", \"sentence_bad\": \"b\"}\n", 2,
           "escapes a NUL");
    REJECT(OK_LINE "{\"sentence_good\": \"a\0b\", \"sentence_bad\": \"b\"}\n", 2, "NUL byte");
    REJECT("{\"sentence_good\": \"a\", \"sentence_bad\": \"b\", \"lemma\": 7}\n", 1,
           "\"lemma\" is not a string");
    REJECT("{\"sentence_good\": \"a\", \"sentence_bad\": \"b\", \"inflection_bad\": \"pasta\"}\n",
           1, "unknown inflection 'pasta'");
    REJECT("{\"sentence_good\": \"a\", \"sentence_bad\": \"b\", \"item_id\": -1}\n", 1,
           "\"item_id\" is not an integer");
    REJECT("{\"sentence_good\": \"a\", \"sentence_bad\": \"b\", \"item_id\": 1.5}\n", 1,
           "\"item_id\" is not an integer");
    REJECT("{\"sentence_good\": \"a\", \"sentence_bad\": \"b\", \"item_id\": \"1\"}\n", 1,
           "\"item_id\" is not an integer");
    REJECT("{\"sentence_good\": \"a\", \"sentence_bad\": \"b\", \"item_id\": 2}\n"
           "{\"sentence_good\": \"a\", \"sentence_bad\": \"c\", \"item_id\": 1}\n",
           2, "must not decrease");
    REJECT("{\"sentence_good\": \"a\", \"sentence_bad\": \"b\", \"item_id\": 2}\n"
           "{\"sentence_good\": \"x\", \"sentence_bad\": \"c\", \"item_id\": 2}\n",
           2, "repeats with another sentence_good");
    REJECT("{\"sentence_good\": \"a\", \"sentence_bad\": \"b\", \"category\": \"tense\"}\n", 1,
           "\"category\"");
    REJECT("{\"sentence_good\": \"a\", \"sentence_bad\": \"b\", \"category\": 2}\n", 1,
           "\"category\" is not a string");
    REJECT("{\"sentence_good\": \"a\", \"sentence_bad\": \"b\", \"item_id\": 2, "
           "\"category\": \"agreement\"}\n"
           "{\"sentence_good\": \"a\", \"sentence_bad\": \"c\", \"item_id\": 2}\n",
           2, "repeats with another category");
    /* no pairs at all */
    REJECT("", 0, "no minimal pairs");
    REJECT("\n  \n\r\n", 0, "no minimal pairs");
    /* a deeply nested document is refused by cJSON's nesting limit, not by the stack */
    char *deep = malloc(40000);
    memset(deep, '[', 39999);
    deep[39999] = 0;
    expect_rejected(deep, 39999, 1, "invalid JSON");
    free(deep);
    /* a line longer than the bound */
    size_t n = MQ_BLIMP_MAX_LINE + 100;
    char *lng = malloc(n + 256);
    size_t k = (size_t)snprintf(lng, 128, "%s{\"sentence_good\": \"", OK_LINE);
    memset(lng + k, 'a', n);
    k += n;
    k += (size_t)snprintf(lng + k, 128, "\", \"sentence_bad\": \"b\"}\n");
    expect_rejected(lng, k, 2, "longer than");
    free(lng);
}

Test(pairs, blimp_truncations_never_crash) {
    /* every prefix of a valid file is either read or rejected with a message */
    char *text;
    size_t len;
    cr_assert_eq(mq_read_file(PAIRS "/blimp.jsonl", 0, &text, &len, NULL), MQ_OK);
    for (size_t cut = 0; cut <= len; cut++) {
        char *copy = malloc(cut ? cut : 1); /* exactly cut bytes: a read past them is caught */
        memcpy(copy, text, cut);
        mq_mp_set_t s = {0};
        mq_error_t err = {0};
        int rc = mq_blimp_parse(copy, cut, "t.jsonl", &s, &err);
        if (rc) {
            cr_expect_eq(rc, MQ_ERR_FORMAT);
            cr_expect(strstr(err.msg, "t.jsonl: "), "%s", err.msg);
        } else {
            cr_expect_gt(s.n_items, 0);
        }
        mq_mp_set_free(&s);
        free(copy);
    }
    free(text);
}

Test(pairs, blimp_write_then_read_round_trips) {
    mq_mp_set_t s = {0}, r = {0};
    mq_error_t err = {0};
    const char *bad1[] = {"He walk \"home\"", "He walks \"home\"", "He walking \"home\""};
    const uint8_t infl1[] = {MQ_INFL_BASE, MQ_INFL_3SG, MQ_INFL_ING};
    const char *bad2[] = {"caf\xc3\xa9 \\ tab\there\nline two"};
    cr_assert_eq(mq_mp_add(&s, "He walked \"home\"", bad1, infl1, 3, "walk",
                           MQ_INFL_PAST | MQ_INFL_PP, MQ_VT_PARTICIPLE, "00000001-v", &err),
                 MQ_OK);
    cr_assert_eq(
        mq_mp_add(&s, "caf\xc3\xa9 \\ tab\there\nline one", bad2, NULL, 1, NULL, 0, 0, NULL, &err),
        MQ_OK);
    /* the same good sentence again, a separate item */
    cr_assert_eq(mq_mp_add(&s, "He walked \"home\"", bad1 + 1, infl1 + 1, 1, "walk", MQ_INFL_PAST,
                           MQ_VT_AGREEMENT, "template:agreement", &err),
                 MQ_OK);
    char path[] = "/tmp/mq_blimp_XXXXXX";
    int fd = mkstemp(path);
    cr_assert(fd >= 0);
    close(fd);
    cr_assert_eq(mq_blimp_write(path, &s, &err), MQ_OK, "%s", err.msg);
    cr_assert_eq(mq_blimp_read(path, &r, &err), MQ_OK, "%s", err.msg);
    cr_assert_eq(r.n_items, s.n_items);
    cr_assert_eq(r.n_bad, s.n_bad);
    for (size_t i = 0; i < s.n_items; i++) {
        const mq_mp_item_t *a = &s.items[i], *b = &r.items[i];
        cr_expect_str_eq(b->good, a->good);
        cr_expect_eq(b->n_bad, a->n_bad);
        cr_expect_eq(b->first_bad, a->first_bad);
        cr_expect_eq(b->infl, a->infl);
        cr_expect_eq(b->category, a->category, "item %zu", i);
        cr_expect((!a->lemma && !b->lemma) ||
                  (a->lemma && b->lemma && !strcmp(a->lemma, b->lemma)));
        cr_expect((!a->source && !b->source) ||
                  (a->source && b->source && !strcmp(a->source, b->source)));
    }
    for (size_t j = 0; j < s.n_bad; j++) {
        cr_expect_str_eq(r.bad[j], s.bad[j]);
        cr_expect_eq(r.bad_infl[j], s.bad_infl[j]);
    }
    mq_mp_set_free(&r);
    unlink(path);

    /* a write into a missing folder fails cleanly */
    cr_expect_eq(mq_blimp_write("/nonexistent-dir/x.jsonl", &s, &err), MQ_ERR_IO);
    mq_mp_set_free(&s);
}

Test(pairs, inflection_names_round_trip) {
    char buf[64];
    for (int mask = 1; mask < 32; mask++) {
        cr_assert_lt(mq_infl_format((uint8_t)mask, buf, sizeof buf), (int)sizeof buf);
        uint8_t back;
        cr_assert_eq(mq_infl_parse(buf, &back, NULL), MQ_OK, "%s", buf);
        cr_expect_eq(back, mask);
    }
    mq_infl_format(MQ_INFL_PAST | MQ_INFL_PP, buf, sizeof buf);
    cr_expect_str_eq(buf, "past+past_participle");
    cr_expect_eq(mq_infl_format(MQ_INFL_PAST | MQ_INFL_PP, buf, 5), 20);
    cr_expect_str_eq(buf, "past");
    uint8_t m;
    cr_expect_eq(mq_infl_parse("", &m, NULL), MQ_ERR_FORMAT);
    cr_expect_eq(mq_infl_parse("past+", &m, NULL), MQ_ERR_FORMAT);
    cr_expect_eq(mq_infl_parse("past++ing", &m, NULL), MQ_ERR_FORMAT);
    cr_expect_str_eq(mq_infl_name(MQ_INFL_ING), "ing");
    cr_expect_null(mq_infl_name(3));
}

/* ---------------------------------------------------------------------------------------------
 * scoring */

static const char *const TRAIN_TEXT[] = {
    "the cat sat on the mat and the dog ran to the store",
    "she walks to the store every morning; he walked there yesterday",
    "they were walking home when it started to rain on the hills",
    "we have gone home, and the children are eating their lunch",
};

static mq_tokenizer_t *small_tokenizer(void) {
    size_t lens[4];
    for (int i = 0; i < 4; i++)
        lens[i] = strlen(TRAIN_TEXT[i]);
    mq_tokenizer_t *tok = NULL;
    mq_error_t err = {0};
    cr_assert_eq(mq_tokenizer_train(TRAIN_TEXT, lens, 4, 300, &tok, &err), MQ_OK, "%s", err.msg);
    return tok;
}

static void random_model(mq_gpt_t *m, int V, int maxT) {
    mq_gpt_config_t cfg = {
        .name = "custom", .vocab_size = V, .n_ctx = maxT, .n_embd = 16, .n_head = 2, .n_layer = 2};
    mq_error_t err = {0};
    cr_assert_eq(mq_gpt_init(m, &cfg, &err), MQ_OK, "%s", err.msg);
    mq_gpt_init_weights(m, 7);
    /* larger output weights than the init so that predictions are far from uniform */
    for (size_t i = 0; i < m->param_sizes[MQ_P_LMW]; i++)
        m->params.lmw[i] *= 20;
}

/* log p(tokens[p] | tokens[start .. p)) by one forward pass of that context alone. */
static double token_logprob(mq_gpt_t *m, const int32_t *tokens, int start, int p) {
    int inp[256];
    for (int i = start; i < p; i++)
        inp[i - start] = tokens[i];
    mq_error_t err = {0};
    cr_assert_eq(mq_gpt_forward(m, inp, NULL, 1, p - start, &err), MQ_OK, "%s", err.msg);
    const float *lg = m->acts.logits + (size_t)(p - start - 1) * m->cfg.vocab_size;
    double mx = lg[0], z = 0;
    for (int v = 1; v < m->cfg.vocab_size; v++)
        mx = lg[v] > mx ? lg[v] : mx;
    for (int v = 0; v < m->cfg.vocab_size; v++)
        z += exp((double)lg[v] - mx);
    return (double)lg[tokens[p]] - mx - log(z);
}

/* A sentence scored the slow way: each token from its own forward pass, with the whole prefix
 * when it fits, else the window the header describes (it ends at the scored token's window end
 * and spans n_ctx tokens). */
static double naive_logprob(mq_gpt_t *m, const mq_tokenizer_t *tok, const char *s) {
    int32_t *ids;
    size_t n_ids;
    mq_error_t err = {0};
    cr_assert_eq(mq_tokenizer_encode(tok, s, strlen(s), 0, &ids, &n_ids, &err), MQ_OK);
    int N = (int)n_ids + 1, ctx = m->cfg.n_ctx, S = ctx / 2;
    cr_assert_leq(N, 256);
    int32_t tokens[256];
    tokens[0] = mq_tokenizer_eot(tok);
    memcpy(tokens + 1, ids, n_ids * sizeof *ids);
    free(ids);
    double sum = 0;
    int done = 0;
    for (int p = 1; p < N; p++) {
        int start = 0;
        if (p > ctx) {
            /* the window that scores p: windows after the first end S tokens apart */
            while (done < p)
                done = done == 0 ? ctx : (done + S < N - 1 ? done + S : N - 1);
            start = done - ctx;
            cr_assert_geq(p - start, ctx - S, "token %d has too little context", p);
        }
        sum += token_logprob(m, tokens, start, p);
    }
    return sum;
}

static const char *const SENTS[] = {
    "he walked to the store",
    "he walks to the store",
    "the cat sat on the mat",
    ("they were walking home when it started to rain on the hills and the dog ran to the store "
     "every morning"),
    "",
    "x",
    "we have gone home",
    "we have went home",
};
#define N_SENTS (sizeof SENTS / sizeof SENTS[0])

Test(pairs, sentence_logprob_equals_the_naive_computation) {
    mq_tokenizer_t *tok = small_tokenizer();
    mq_gpt_t m = {0};
    random_model(&m, mq_tokenizer_n_vocab(tok), 16);
    /* the long sentence needs several windows of 16 tokens */
    int32_t *ids;
    size_t n_ids;
    cr_assert_eq(mq_tokenizer_encode(tok, SENTS[3], strlen(SENTS[3]), 0, &ids, &n_ids, NULL),
                 MQ_OK);
    cr_assert_gt(n_ids, 40);
    free(ids);

    double lp[N_SENTS];
    mq_error_t err = {0};
    cr_assert_eq(mq_sentence_logprob(&m, tok, SENTS, N_SENTS, lp, &err), MQ_OK, "%s", err.msg);
    for (size_t i = 0; i < N_SENTS; i++) {
        double want = naive_logprob(&m, tok, SENTS[i]);
        cr_expect(fabs(lp[i] - want) < 1e-4, "'%s': %.6f vs naive %.6f", SENTS[i], lp[i], want);
        cr_expect_leq(lp[i], 0);
    }
    cr_expect_eq(lp[4], 0.0); /* nothing to score */
    cr_expect_lt(lp[5], 0.0);

    /* one sentence at a time, and in another order, give the same numbers */
    for (size_t i = 0; i < N_SENTS; i++) {
        double one;
        cr_assert_eq(mq_sentence_logprob(&m, tok, &SENTS[i], 1, &one, &err), MQ_OK);
        cr_expect(fabs(one - lp[i]) < 1e-4, "'%s' alone: %.6f vs %.6f", SENTS[i], one, lp[i]);
    }
    const char *rev[N_SENTS];
    double lr[N_SENTS];
    for (size_t i = 0; i < N_SENTS; i++)
        rev[i] = SENTS[N_SENTS - 1 - i];
    cr_assert_eq(mq_sentence_logprob(&m, tok, rev, N_SENTS, lr, &err), MQ_OK);
    for (size_t i = 0; i < N_SENTS; i++)
        cr_expect(fabs(lr[N_SENTS - 1 - i] - lp[i]) < 1e-4);

    /* many sentences: more than one batch, mixed lengths */
    enum { MANY = 100 };
    const char *many[MANY];
    double lm[MANY];
    for (int i = 0; i < MANY; i++)
        many[i] = SENTS[(i * 7) % N_SENTS];
    cr_assert_eq(mq_sentence_logprob(&m, tok, many, MANY, lm, &err), MQ_OK);
    for (int i = 0; i < MANY; i++)
        cr_expect(fabs(lm[i] - lp[(i * 7) % N_SENTS]) < 1e-4);

    /* a tokenizer larger than the model's vocabulary is refused */
    mq_gpt_t small = {0};
    random_model(&small, 257, 16);
    cr_expect_eq(mq_sentence_logprob(&small, tok, SENTS, 1, lp, &err), MQ_ERR_ARG);
    cr_expect(strstr(err.msg, "300 tokens"), "%s", err.msg);
    mq_gpt_free(&small);
    mq_gpt_free(&m);
    mq_tokenizer_free(tok);
}

Test(pairs, wilson_interval_on_known_counts) {
    double lo, hi;
    mq_wilson_interval(80, 100, 1.959963984540054, &lo, &hi);
    cr_expect_float_eq(lo, 0.711171, 1e-5);
    cr_expect_float_eq(hi, 0.866633, 1e-5);
    mq_wilson_interval(0, 10, 1.959963984540054, &lo, &hi);
    cr_expect_float_eq(lo, 0.0, 1e-12);
    cr_expect_float_eq(hi, 0.277533, 1e-5);
    mq_wilson_interval(10, 10, 1.959963984540054, &lo, &hi);
    cr_expect_float_eq(lo, 0.722467, 1e-5);
    cr_expect_float_eq(hi, 1.0, 1e-12);
    mq_wilson_interval(0, 0, 1.96, &lo, &hi);
    cr_expect(lo == 0 && hi == 1);
}

Test(pairs, score_counts_items_won_and_ties_as_wrong) {
    mq_tokenizer_t *tok = small_tokenizer();
    mq_gpt_t m = {0};
    random_model(&m, mq_tokenizer_n_vocab(tok), 16);
    mq_mp_set_t s = {0};
    mq_error_t err = {0};
    /* every ordered pair of distinct sentences, plus a tie */
    const char *pool[] = {SENTS[0], SENTS[1], SENTS[2], SENTS[6], SENTS[7]};
    double lp[5];
    cr_assert_eq(mq_sentence_logprob(&m, tok, pool, 5, lp, &err), MQ_OK);
    size_t want = 0, cat_n[MQ_VT_NUM_CATEGORIES] = {0}, cat_ok[MQ_VT_NUM_CATEGORIES] = {0};
    double cat_chance[MQ_VT_NUM_CATEGORIES] = {0};
    uint8_t want_item[32];
    for (int g = 0; g < 5; g++) {
        /* good against the other four at once */
        const char *bad[4];
        int nb = 0, ok = 1;
        for (int b = 0; b < 5; b++)
            if (b != g) {
                bad[nb++] = pool[b];
                if (!(lp[g] > lp[b])) ok = 0;
            }
        cr_assert_eq(mq_mp_add(&s, pool[g], bad, NULL, 4, NULL, 0, 0, NULL, &err), MQ_OK);
        want_item[s.n_items - 1] = (uint8_t)ok;
        want += (size_t)ok;
        cat_n[0]++, cat_ok[0] += (size_t)ok, cat_chance[0] += 1.0 / 5;
        /* and against each one alone */
        for (int b = 0; b < 5; b++)
            if (b != g) {
                /* these in the categories by the good sentence */
                uint8_t c = (uint8_t)(g % MQ_VT_NUM_CATEGORIES);
                cr_assert_eq(mq_mp_add(&s, pool[g], &pool[b], NULL, 1, NULL, 0, c, NULL, &err),
                             MQ_OK);
                want_item[s.n_items - 1] = lp[g] > lp[b];
                want += lp[g] > lp[b];
                cat_n[c]++, cat_ok[c] += lp[g] > lp[b], cat_chance[c] += 1.0 / 2;
            }
    }
    cr_assert_eq(mq_mp_add(&s, pool[0], &pool[0], NULL, 1, NULL, 0, 0, NULL, &err), MQ_OK);
    want_item[s.n_items - 1] = 0;
    cat_n[0]++, cat_chance[0] += 1.0 / 2;
    cr_assert_eq(s.n_items, 26);
    cr_expect_eq(want, 5 * 4 / 2 + 1, "pairwise: exactly one of each two wins"); /* + the best */

    mq_mp_result_t r;
    uint8_t got[26];
    cr_assert_eq(mq_mp_score(&m, tok, &s, got, &r, &err), MQ_OK, "%s", err.msg);
    cr_expect_eq(r.n, 26);
    cr_expect_eq(r.correct, want);
    cr_expect_float_eq(r.accuracy, (double)want / 26, 1e-12);
    double lo, hi;
    mq_wilson_interval(want, 26, 1.959963984540054, &lo, &hi);
    cr_expect_float_eq(r.ci_low, lo, 1e-12);
    cr_expect_float_eq(r.ci_high, hi, 1e-12);
    cr_expect_eq(r.n_sentences, 5); /* each distinct sentence scored once */
    cr_expect_float_eq(r.chance, (5 * 0.2 + 21 * 0.5) / 26, 1e-12);
    for (int c = 0; c < MQ_VT_NUM_CATEGORIES; c++) {
        cr_expect_eq(r.by_category[c].n, cat_n[c], "category %d", c);
        cr_expect_eq(r.by_category[c].correct, cat_ok[c], "category %d", c);
        cr_expect_float_eq(r.by_category[c].accuracy, (double)cat_ok[c] / (double)cat_n[c], 1e-12);
        cr_expect_float_eq(r.by_category[c].chance, cat_chance[c] / (double)cat_n[c], 1e-12);
        mq_wilson_interval(cat_ok[c], cat_n[c], 1.959963984540054, &lo, &hi);
        cr_expect_float_eq(r.by_category[c].ci_low, lo, 1e-12);
        cr_expect_float_eq(r.by_category[c].ci_high, hi, 1e-12);
    }
    for (size_t i = 0; i < 26; i++)
        cr_expect_eq(got[i], want_item[i], "item %zu", i);

    mq_mp_set_t empty = {0};
    cr_expect_eq(mq_mp_score(&m, tok, &empty, NULL, &r, &err), MQ_ERR_ARG);
    mq_mp_set_free(&s);
    mq_gpt_free(&m);
    mq_tokenizer_free(tok);
}

Test(pairs, sets_hold_many_and_large_strings) {
    /* strings larger than a storage block, between many small ones, all stay intact */
    mq_mp_set_t s = {0};
    mq_error_t err = {0};
    size_t big = 200000;
    char *large = malloc(big + 1);
    for (size_t i = 0; i < big; i++)
        large[i] = (char)('a' + i % 26);
    large[big] = 0;
    char good[32], bad[32];
    for (int i = 0; i < 5000; i++) {
        snprintf(good, sizeof good, "good %d", i);
        snprintf(bad, sizeof bad, "bad %d", i);
        const char *b[2] = {bad, large};
        cr_assert_eq(mq_mp_add(&s, i % 1000 == 0 ? large : good, b, NULL, i % 7 == 0 ? 2 : 1, NULL,
                               0, 0, NULL, &err),
                     MQ_OK);
    }
    cr_assert_eq(s.n_items, 5000);
    for (int i = 0; i < 5000; i++) {
        const mq_mp_item_t *it = &s.items[i];
        snprintf(good, sizeof good, "good %d", i);
        snprintf(bad, sizeof bad, "bad %d", i);
        cr_assert_str_eq(it->good, i % 1000 == 0 ? large : good);
        cr_assert_str_eq(s.bad[it->first_bad], bad);
        cr_assert_eq(it->n_bad, i % 7 == 0 ? 2u : 1u);
        if (it->n_bad == 2) cr_assert_str_eq(s.bad[it->first_bad + 1], large);
    }
    cr_expect_eq(mq_mp_add(&s, "x", NULL, NULL, 1, NULL, 0, 0, NULL, &err), MQ_ERR_ARG);
    const char *none[1] = {NULL};
    cr_expect_eq(mq_mp_add(&s, "x", none, NULL, 1, NULL, 0, 0, NULL, &err), MQ_ERR_ARG);
    cr_expect_eq(mq_mp_add(&s, "x", none, NULL, 0, NULL, 0, 0, NULL, &err), MQ_ERR_ARG);
    free(large);
    mq_mp_set_free(&s);
    mq_mp_set_free(&s); /* twice is harmless */
}
