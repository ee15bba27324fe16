#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "miniquant/eval.h"
#include "miniquant/fileio.h"
#include "miniquant/pairs.h"

#define WORDNET MQ_TEST_DATA "/wordnet"
#define PAIRS MQ_TEST_DATA "/pairs"

/* ---------------------------------------------------------------------------------------------
 * inflection */

Test(pairs, regular_inflection_rules) {
    static const struct {
        const char *lemma, *s3, *past, *ing;
    } T[] = {
        {"walk", "walks", "walked", "walking"},
        {"try", "tries", "tried", "trying"},
        {"stop", "stops", "stopped", "stopping"},
        {"make", "makes", "maked", "making"},
        {"watch", "watches", "watched", "watching"},
        {"pass", "passes", "passed", "passing"},
        {"fix", "fixes", "fixed", "fixing"},
        {"buzz", "buzzes", "buzzed", "buzzing"},
        {"wish", "wishes", "wished", "wishing"},
        {"go", "goes", "goed", "going"},
        {"echo", "echoes", "echoed", "echoing"},
        {"radio", "radios", "radioed", "radioing"},
        {"play", "plays", "played", "playing"},
        {"cry", "cries", "cried", "crying"},
        {"die", "dies", "died", "dying"},
        {"tie", "ties", "tied", "tying"},
        {"agree", "agrees", "agreed", "agreeing"},
        {"see", "sees", "seed", "seeing"},
        {"hoe", "hoes", "hoed", "hoeing"},
        {"dye", "dyes", "dyed", "dyeing"},
        {"visit", "visits", "visited", "visiting"},
        {"open", "opens", "opened", "opening"},
        {"quit", "quits", "quitted", "quitting"},
        {"beat", "beats", "beated", "beating"},
        {"snow", "snows", "snowed", "snowing"},
        {"run", "runs", "runned", "running"},
        {"plan", "plans", "planned", "planning"},
        {"yap", "yaps", "yapped", "yapping"},
        {"equip", "equips", "equiped", "equiping"},
        {"have", "haves", "haved", "having"},
    };
    char buf[64];
    for (size_t i = 0; i < sizeof T / sizeof T[0]; i++) {
        cr_assert_gt(mq_verb_regular_form(T[i].lemma, MQ_INFL_BASE, buf, sizeof buf), 0);
        cr_expect_str_eq(buf, T[i].lemma);
        mq_verb_regular_form(T[i].lemma, MQ_INFL_3SG, buf, sizeof buf);
        cr_expect_str_eq(buf, T[i].s3, "3sg of %s", T[i].lemma);
        mq_verb_regular_form(T[i].lemma, MQ_INFL_PAST, buf, sizeof buf);
        cr_expect_str_eq(buf, T[i].past, "past of %s", T[i].lemma);
        mq_verb_regular_form(T[i].lemma, MQ_INFL_PP, buf, sizeof buf);
        cr_expect_str_eq(buf, T[i].past, "past participle of %s", T[i].lemma);
        mq_verb_regular_form(T[i].lemma, MQ_INFL_ING, buf, sizeof buf);
        cr_expect_str_eq(buf, T[i].ing, "-ing of %s", T[i].lemma);
    }
    cr_expect_eq(mq_verb_regular_form("Walk", MQ_INFL_3SG, buf, sizeof buf), -1);
    cr_expect_eq(mq_verb_regular_form("", MQ_INFL_3SG, buf, sizeof buf), -1);
    cr_expect_eq(mq_verb_regular_form("walk", MQ_INFL_PAST | MQ_INFL_ING, buf, sizeof buf), -1);
    /* snprintf's contract: the length needed, truncated output */
    cr_expect_eq(mq_verb_regular_form("walk", MQ_INFL_ING, buf, 4), 7);
    cr_expect_str_eq(buf, "wal");
}

static mq_verb_lexicon_t *fixture_lexicon(const mq_corpus_t *freq) {
    mq_verb_lexicon_t *lx = NULL;
    mq_error_t err = {0};
    cr_assert_eq(mq_verb_lexicon_load(WORDNET, freq, &lx, &err), MQ_OK, "%s", err.msg);
    return lx;
}

static void expect_paradigm(const mq_verb_lexicon_t *lx, const char *lemma, const char *s3,
                            const char *past, const char *pp, const char *ing) {
    const char *f[MQ_NUM_INFL];
    cr_assert_eq(mq_verb_paradigm(lx, lemma, f), MQ_OK, "%s is not in the lexicon", lemma);
    cr_expect_str_eq(f[0], lemma);
    cr_expect_str_eq(f[1], s3, "3sg of %s", lemma);
    cr_expect_str_eq(f[2], past, "past of %s", lemma);
    cr_expect_str_eq(f[3], pp, "past participle of %s", lemma);
    cr_expect_str_eq(f[4], ing, "-ing of %s", lemma);
}

Test(pairs, paradigms_combine_rules_verb_exc_and_tables) {
    mq_verb_lexicon_t *lx = fixture_lexicon(NULL);
    expect_paradigm(lx, "walk", "walks", "walked", "walked", "walking");
    expect_paradigm(lx, "try", "tries", "tried", "tried", "trying");
    expect_paradigm(lx, "stop", "stops", "stopped", "stopped", "stopping");
    expect_paradigm(lx, "make", "makes", "made", "made", "making");
    expect_paradigm(lx, "go", "goes", "went", "gone", "going");
    expect_paradigm(lx, "run", "runs", "ran", "run", "running");
    expect_paradigm(lx, "come", "comes", "came", "come", "coming");
    expect_paradigm(lx, "see", "sees", "saw", "seen", "seeing");
    expect_paradigm(lx, "watch", "watches", "watched", "watched", "watching");
    expect_paradigm(lx, "have", "has", "had", "had", "having");
    expect_paradigm(lx, "eat", "eats", "ate", "eaten", "eating");
    expect_paradigm(lx, "begin", "begins", "began", "begun", "beginning");
    expect_paradigm(lx, "bite", "bites", "bit", "bitten", "biting");
    expect_paradigm(lx, "know", "knows", "knew", "known", "knowing");
    expect_paradigm(lx, "lie", "lies", "lay", "lain", "lying");
    expect_paradigm(lx, "find", "finds", "found", "found", "finding");
    expect_paradigm(lx, "admit", "admits", "admitted", "admitted", "admitting");
    expect_paradigm(lx, "put", "puts", "put", "put", "putting");
    expect_paradigm(lx, "cut", "cuts", "cut", "cut", "cutting");
    expect_paradigm(lx, "read", "reads", "read", "read", "reading");
    expect_paradigm(lx, "quit", "quits", "quit", "quit", "quitting");
    expect_paradigm(lx, "beat", "beats", "beat", "beaten", "beating");
    expect_paradigm(lx, "die", "dies", "died", "died", "dying");
    expect_paradigm(lx, "agree", "agrees", "agreed", "agreed", "agreeing");
    /* without word counts verb.exc's spelling wins */
    expect_paradigm(lx, "learn", "learns", "learnt", "learnt", "learning");
    const char *f[MQ_NUM_INFL];
    cr_expect_eq(mq_verb_paradigm(lx, "be", f), MQ_ERR_NOT_FOUND);       /* eight forms */
    cr_expect_eq(mq_verb_paradigm(lx, "can", f), MQ_ERR_NOT_FOUND);      /* a modal */
    cr_expect_eq(mq_verb_paradigm(lx, "walk_out", f), MQ_ERR_NOT_FOUND); /* not one word */
    cr_expect_eq(mq_verb_paradigm(lx, "co-opt", f), MQ_ERR_NOT_FOUND);
    cr_expect_eq(mq_verb_paradigm(lx, "store", f), MQ_ERR_NOT_FOUND);
    cr_expect_eq(mq_verb_lexicon_size(lx), 45); /* 46 one-word lemmas but be */
    mq_verb_lexicon_free(lx);
}

Test(pairs, corpus_word_counts_choose_spellings) {
    /* "learned" is used more than "learnt"; "seed" more than "saw", but "seed" is a verb of
     * its own, so it is no evidence for a past of see */
    const char *text = "00000001 29 v 01 x 0 000 | we learned it; \"they learned and learned\"; "
                       "\"she learnt\"; \"seed the lawn\"; \"seed\"; \"I saw it\"\n";
    mq_corpus_t c = {0};
    mq_error_t err = {0};
    cr_assert_eq(mq_corpus_parse_data(text, strlen(text), "freq", 'v', &c, &err), MQ_OK, "%s",
                 err.msg);
    mq_verb_lexicon_t *lx = fixture_lexicon(&c);
    expect_paradigm(lx, "learn", "learns", "learned", "learned", "learning");
    expect_paradigm(lx, "see", "sees", "saw", "seen", "seeing");
    mq_verb_lexicon_free(lx);
    mq_corpus_free(&c);
}

/* ---------------------------------------------------------------------------------------------
 * the verb-tense set */

static void fixture_corpus(mq_corpus_t *c) {
    char *text;
    size_t len;
    mq_error_t err = {0};
    cr_assert_eq(mq_read_file(PAIRS "/data.verb", 0, &text, &len, &err), MQ_OK, "%s", err.msg);
    memset(c, 0, sizeof *c);
    cr_assert_eq(mq_corpus_parse_data(text, len, "data.verb", 'v', c, &err), MQ_OK, "%s", err.msg);
    free(text);
    for (size_t i = 0; i < c->n_docs; i++)
        c->docs[i].split = c->docs[i].offset == 9 ? MQ_SPLIT_TRAIN : MQ_SPLIT_TEST;
}

typedef struct {
    const char *good, *lemma;
    uint8_t infl;
    const char *bad[5];
    uint8_t bad_infl[5];
} expected_t;

#define B MQ_INFL_BASE
#define S MQ_INFL_3SG
#define P MQ_INFL_PAST
#define PP MQ_INFL_PP
#define I MQ_INFL_ING

/* Worked out by hand from tests/data/pairs/data.verb and the fixture WordNet. */
static const expected_t EXPECTED[] = {
    {"he walked to the store",
     "walk",
     P | PP,
     {"he walk to the store", "he walks to the store", "he walking to the store"},
     {B, S, I}},
    {"they put it away", "put", B | P | PP, {"they puts it away", "they putting it away"}, {S, I}},
    {"she runs every morning",
     "run",
     S,
     {"she run every morning", "she ran every morning", "she running every morning"},
     {B | PP, P, I}},
    {"they have gone home",
     "have",
     B,
     {"they has gone home", "they had gone home", "they having gone home"},
     {S, P | PP, I}},
    {"they have gone home",
     "go",
     PP,
     {"they have go home", "they have goes home", "they have went home", "they have going home"},
     {B, S, P, I}},
    {"I saw the ship on the horizon",
     "see",
     P,
     {"I see the ship on the horizon", "I sees the ship on the horizon",
      "I seen the ship on the horizon", "I seeing the ship on the horizon"},
     {B, S, PP, I}},
    {"Go away", "go", B, {"Goes away", "Went away", "Gone away", "Going away"}, {S, P, PP, I}},
    {"his plans failed",
     "fail",
     P | PP,
     {"his plans fail", "his plans fails", "his plans failing"},
     {B, S, I}},
    {"we can't stop now",
     "stop",
     B,
     {"we can't stops now", "we can't stopped now", "we can't stopping now"},
     {S, P | PP, I}},
    {"the children were trying hard",
     "try",
     I,
     {"the children were try hard", "the children were tries hard", "the children were tried hard"},
     {B, S, P | PP}},
    {"He watches birds",
     "watch",
     S,
     {"He watch birds", "He watched birds", "He watching birds"},
     {B, P | PP, I}},
    {"He watches birds",
     "bird",
     S,
     {"He watches bird", "He watches birded", "He watches birding"},
     {B, P | PP, I}},
    {"she found the axes in the shed",
     "find",
     P | PP,
     {"she find the axes in the shed", "she finds the axes in the shed",
      "she finding the axes in the shed"},
     {B, S, I}},
    {"She has eaten",
     "have",
     S,
     {"She have eaten", "She had eaten", "She having eaten"},
     {B, P | PP, I}},
    {"She has eaten",
     "eat",
     PP,
     {"She has eat", "She has eats", "She has ate", "She has eating"},
     {B, S, P, I}},
    {"making bread is easy",
     "make",
     I,
     {"make bread is easy", "makes bread is easy", "made bread is easy"},
     {B, S, P | PP}},
    {"we had begun to walk to school",
     "have",
     P | PP,
     {"we have begun to walk to school", "we has begun to walk to school",
      "we having begun to walk to school"},
     {B, S, I}},
    {"we had begun to walk to school",
     "begin",
     PP,
     {"we had begin to walk to school", "we had begins to walk to school",
      "we had began to walk to school", "we had beginning to walk to school"},
     {B, S, P, I}},
    {"we had begun to walk to school",
     "walk",
     B,
     {"we had begun to walks to school", "we had begun to walked to school",
      "we had begun to walking to school"},
     {S, P | PP, I}},
};
#define N_EXPECTED (sizeof EXPECTED / sizeof EXPECTED[0])

static void expect_items(const mq_mp_set_t *s, int skip_bird) {
    size_t k = 0;
    for (size_t e = 0; e < N_EXPECTED; e++) {
        const expected_t *x = &EXPECTED[e];
        if (skip_bird && !strcmp(x->lemma, "bird")) continue;
        cr_assert_lt(k, s->n_items, "missing item %zu (%s)", e, x->good);
        const mq_mp_item_t *it = &s->items[k++];
        cr_expect_str_eq(it->good, x->good);
        cr_expect_str_eq(it->lemma, x->lemma, "item %zu", e);
        cr_expect_eq(it->infl, x->infl, "item %zu (%s): infl %d", e, x->good, it->infl);
        uint32_t n = 0;
        while (n < 5 && x->bad[n])
            n++;
        cr_assert_eq(it->n_bad, n, "item %zu (%s): %u alternatives", e, x->good, it->n_bad);
        for (uint32_t j = 0; j < n; j++) {
            cr_expect_str_eq(s->bad[it->first_bad + j], x->bad[j], "item %zu", e);
            cr_expect_eq(s->bad_infl[it->first_bad + j], x->bad_infl[j], "item %zu alt %u", e, j);
        }
    }
    cr_expect_eq(s->n_items, k);
}

Test(pairs, verbtense_fixture_gives_the_hand_checked_items) {
    mq_corpus_t c;
    fixture_corpus(&c);
    mq_mp_set_t s = {0};
    mq_verbtense_stats_t st;
    mq_error_t err = {0};
    cr_assert_eq(mq_verbtense_build(&c, WORDNET, 0, &s, &st, &err), MQ_OK, "%s", err.msg);
    expect_items(&s, 0);
    cr_expect_str_eq(s.items[0].source, "00000001-v");
    cr_expect_str_eq(s.items[N_EXPECTED - 1].source, "00000008-v");
    cr_expect_eq(st.docs, 10); /* 00000009 is in the training split */
    cr_expect_eq(st.examples, 17);
    cr_expect_eq(st.examples_used, 14);
    cr_expect_eq(st.no_verb_form, 1);      /* "a well-known fact" */
    cr_expect_eq(st.all_skipped, 2);       /* "she put the book down", the repeated example */
    cr_expect_eq(st.skip_ambiguous, 1);    /* axes: ax or axe */
    cr_expect_eq(st.skip_base_context, 4); /* ship, put, book, shed */
    cr_expect_eq(st.skip_plural_det, 1);   /* his plans */
    cr_expect_eq(st.skip_duplicate, 1);
    cr_expect_eq(st.skip_plural_noun, 0);
    cr_expect_eq(st.items, N_EXPECTED);
    cr_expect_eq(st.items_base, 5);
    mq_mp_set_free(&s);

    /* the stricter set drops "birds", a plural noun that is also a verb form */
    cr_assert_eq(mq_verbtense_build(&c, WORDNET, MQ_VT_SKIP_NOUN_PLURALS, &s, &st, &err), MQ_OK,
                 "%s", err.msg);
    expect_items(&s, 1);
    cr_expect_eq(st.skip_plural_noun, 1);
    mq_mp_set_free(&s);
    mq_corpus_free(&c);
}

Test(pairs, verbtense_is_deterministic_and_round_trips_through_blimp) {
    mq_corpus_t c;
    fixture_corpus(&c);
    mq_mp_set_t a = {0}, b = {0}, r = {0};
    mq_error_t err = {0};
    cr_assert_eq(mq_verbtense_build(&c, WORDNET, 0, &a, NULL, &err), MQ_OK, "%s", err.msg);
    cr_assert_eq(mq_verbtense_build(&c, WORDNET, 0, &b, NULL, &err), MQ_OK, "%s", err.msg);
    char pa[] = "/tmp/mq_pairs_XXXXXX", pb[] = "/tmp/mq_pairs_XXXXXX";
    int fa = mkstemp(pa), fb = mkstemp(pb);
    cr_assert(fa >= 0 && fb >= 0);
    close(fa);
    close(fb);
    cr_assert_eq(mq_blimp_write(pa, &a, &err), MQ_OK, "%s", err.msg);
    cr_assert_eq(mq_blimp_write(pb, &b, &err), MQ_OK, "%s", err.msg);
    char *ta, *tb;
    size_t la, lb;
    cr_assert_eq(mq_read_file(pa, 0, &ta, &la, NULL), MQ_OK);
    cr_assert_eq(mq_read_file(pb, 0, &tb, &lb, NULL), MQ_OK);
    cr_expect_eq(la, lb);
    cr_expect(la == lb && !memcmp(ta, tb, la), "two builds differ");
    size_t lines = 0;
    for (size_t i = 0; i < la; i++)
        lines += ta[i] == '\n';
    cr_expect_eq(lines, a.n_bad); /* one line per (good, bad) pair */
    free(ta);
    free(tb);

    /* reading the file back regroups each item's alternatives, metadata included */
    cr_assert_eq(mq_blimp_read(pa, &r, &err), MQ_OK, "%s", err.msg);
    expect_items(&r, 0);
    for (size_t i = 0; i < r.n_items; i++)
        cr_expect_str_eq(r.items[i].source, a.items[i].source);
    unlink(pa);
    unlink(pb);
    mq_mp_set_free(&a);
    mq_mp_set_free(&b);
    mq_mp_set_free(&r);
    mq_corpus_free(&c);
}

Test(pairs, verbtense_reports_missing_and_malformed_wordnet) {
    mq_corpus_t c;
    fixture_corpus(&c);
    mq_mp_set_t s = {0};
    mq_error_t err = {0};
    cr_expect_eq(mq_verbtense_build(&c, PAIRS, 0, &s, NULL, &err), MQ_ERR_IO);
    cr_expect(strstr(err.msg, "index.verb") && strstr(err.msg, "wordnet-base"), "%s", err.msg);
    cr_expect_eq(s.n_items, 0);

    /* a directory of malformed files: each error names the file and the line */
    char dir[] = "/tmp/mq_wn_XXXXXX";
    cr_assert(mkdtemp(dir));
    char path[256];
    static const struct {
        const char *index, *cnt, *exc, *file;
        int line;
    } BAD[] = {
        {"  header\nwalk v 1\nrun\n", "", "", "index.verb", 3},
        {"walk x 1\n", "", "", "index.verb", 1},
        {"walk v 1\n", "walk%2:38:00:: 1 50\nwalk 1 2\n", "", "cntlist.rev", 2},
        {"walk v 1\n", "walk%9:38:00:: 1 50\n", "", "cntlist.rev", 1},
        {"walk v 1\n", "walk%2:38:00:: 1 5x\n", "", "cntlist.rev", 1},
        {"walk v 1\n", "walk%2:38:00:: 1 12345678901\n", "", "cntlist.rev", 1},
        {"walk v 1\n", "", "walked walk\nwalked\n", "verb.exc", 2},
        {"walk v 1\n", "", "wal\0ked walk\n", "verb.exc", 1},
    };
    for (size_t k = 0; k < sizeof BAD / sizeof BAD[0]; k++) {
        const char *texts[3] = {BAD[k].index, BAD[k].cnt, BAD[k].exc};
        const char *names[3] = {"index.verb", "cntlist.rev", "verb.exc"};
        for (int f = 0; f < 3; f++) {
            snprintf(path, sizeof path, "%s/%s", dir, names[f]);
            size_t len = strlen(texts[f]);
            if (f == 2 && k == 7) len = 13; /* the NUL inside */
            cr_assert_eq(mq_write_file(path, texts[f], len, &err), MQ_OK, "%s", err.msg);
        }
        mq_verb_lexicon_t *lx = NULL;
        cr_expect_eq(mq_verb_lexicon_load(dir, NULL, &lx, &err), MQ_ERR_FORMAT, "case %zu", k);
        cr_expect_null(lx);
        char want[64];
        snprintf(want, sizeof want, "%s: line %d:", BAD[k].file, BAD[k].line);
        cr_expect(strstr(err.msg, want), "case %zu: '%s' lacks '%s'", k, err.msg, want);
    }
    /* an index with no usable lemma */
    snprintf(path, sizeof path, "%s/index.verb", dir);
    cr_assert_eq(mq_write_file(path, "walk_out v 1\n", 13, &err), MQ_OK);
    mq_verb_lexicon_t *lx = NULL;
    cr_expect_eq(mq_verb_lexicon_load(dir, NULL, &lx, &err), MQ_ERR_FORMAT);
    const char *names[3] = {"index.verb", "cntlist.rev", "verb.exc"};
    for (int f = 0; f < 3; f++) {
        snprintf(path, sizeof path, "%s/%s", dir, names[f]);
        unlink(path);
    }
    rmdir(dir);

    /* a corpus without test-split examples gives no set, and says so */
    for (size_t i = 0; i < c.n_docs; i++)
        c.docs[i].split = MQ_SPLIT_TRAIN;
    cr_expect_eq(mq_verbtense_build(&c, WORDNET, 0, &s, NULL, &err), MQ_ERR_FORMAT);
    cr_expect(strstr(err.msg, "no verb-tense items"), "%s", err.msg);
    mq_corpus_free(&c);
}

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
                           MQ_INFL_PAST | MQ_INFL_PP, "00000001-v", &err),
                 MQ_OK);
    cr_assert_eq(
        mq_mp_add(&s, "caf\xc3\xa9 \\ tab\there\nline one", bad2, NULL, 1, NULL, 0, NULL, &err),
        MQ_OK);
    /* the same good sentence again, a separate item */
    cr_assert_eq(mq_mp_add(&s, "He walked \"home\"", bad1 + 1, infl1 + 1, 1, "walk", MQ_INFL_PAST,
                           NULL, &err),
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
    "they were walking home when it started to rain on the hills and the dog ran to the store "
    "every morning",
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
    size_t want = 0;
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
        cr_assert_eq(mq_mp_add(&s, pool[g], bad, NULL, 4, NULL, 0, NULL, &err), MQ_OK);
        want_item[s.n_items - 1] = (uint8_t)ok;
        want += (size_t)ok;
        /* and against each one alone */
        for (int b = 0; b < 5; b++)
            if (b != g) {
                cr_assert_eq(mq_mp_add(&s, pool[g], &pool[b], NULL, 1, NULL, 0, NULL, &err), MQ_OK);
                want_item[s.n_items - 1] = lp[g] > lp[b];
                want += lp[g] > lp[b];
            }
    }
    cr_assert_eq(mq_mp_add(&s, pool[0], &pool[0], NULL, 1, NULL, 0, NULL, &err), MQ_OK);
    want_item[s.n_items - 1] = 0;
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
                               0, NULL, &err),
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
    cr_expect_eq(mq_mp_add(&s, "x", NULL, NULL, 1, NULL, 0, NULL, &err), MQ_ERR_ARG);
    const char *none[1] = {NULL};
    cr_expect_eq(mq_mp_add(&s, "x", none, NULL, 1, NULL, 0, NULL, &err), MQ_ERR_ARG);
    cr_expect_eq(mq_mp_add(&s, "x", none, NULL, 0, NULL, 0, NULL, &err), MQ_ERR_ARG);
    free(large);
    mq_mp_set_free(&s);
    mq_mp_set_free(&s); /* twice is harmless */
}

Test(pairs, verbtense_handles_long_examples_and_odd_text) {
    /* an example longer than the storage blocks, twice (the second is a repeat), then
     * examples with non-ASCII, digits and punctuation around verb forms */
    size_t n = 100000;
    char *ex = malloc(n + 16), *line = malloc(2 * n + 512);
    size_t e = (size_t)sprintf(ex, "he walked ");
    for (size_t i = 0; i < n; i++)
        ex[e++] = i % 2 ? ' ' : 'z';
    ex[e] = 0;
    size_t k =
        (size_t)sprintf(line,
                        "00000001 29 v 01 x 0 000 | gloss; \"%s\"; \"%s\"; \"caf\xc3\xa9walked "
                        "walked\xc3\xa9 3walked walked3 (walked) WALKED Walked\"\n",
                        ex, ex);
    free(ex);
    mq_corpus_t c = {0};
    mq_error_t err = {0};
    cr_assert_eq(mq_corpus_parse_data(line, k, "long", 'v', &c, &err), MQ_OK, "%s", err.msg);
    c.docs[0].split = MQ_SPLIT_TEST;
    mq_mp_set_t s = {0};
    mq_verbtense_stats_t st;
    cr_assert_eq(mq_verbtense_build(&c, WORDNET, 0, &s, &st, &err), MQ_OK, "%s", err.msg);
    cr_expect_eq(st.examples, 3);
    cr_expect_eq(st.skip_duplicate, 1);
    /* the long example, then only "(walked)": the others are joined to other characters,
     * capitalised inside the example or in capitals */
    cr_assert_eq(s.n_items, 2);
    cr_expect_eq(strlen(s.items[0].good), 10 + n - 1);
    cr_expect_eq(strncmp(s.items[0].good, "he walked z", 11), 0);
    cr_expect_eq(strncmp(s.bad[s.items[0].first_bad], "he walk z", 9), 0);
    cr_expect(strstr(s.bad[s.items[1].first_bad], " (walk) WALKED"), "%s",
              s.bad[s.items[1].first_bad]);
    mq_mp_set_free(&s);
    mq_corpus_free(&c);
    free(line);
}
