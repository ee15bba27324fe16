#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "miniquant/eval.h"
#include "miniquant/fileio.h"
#include "miniquant/pairs.h"
#include "miniquant/wordclass.h"

#define WORDNET MQ_TEST_DATA "/wordnet"
#define PAIRS MQ_TEST_DATA "/pairs"

#define B MQ_INFL_BASE
#define S MQ_INFL_3SG
#define P MQ_INFL_PAST
#define PP MQ_INFL_PP
#define I MQ_INFL_ING

/* ---------------------------------------------------------------------------------------------
 * inflection */

Test(verbtense, regular_inflection_rules) {
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

Test(verbtense, paradigms_combine_rules_verb_exc_and_tables) {
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
    cr_expect_eq(mq_verb_lexicon_size(lx), 54); /* 55 one-word lemmas but be */
    mq_verb_lexicon_free(lx);
}

Test(verbtense, corpus_word_counts_choose_spellings) {
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

Test(verbtense, lexicon_knows_every_verbs_slots_and_variant_spellings) {
    mq_verb_lexicon_t *lx = fixture_lexicon(NULL);
    /* "found": past and participle of find, base of found; "saw": past of see, base of saw */
    cr_expect_eq(mq_verb_lexicon_form_slots(lx, "found", 5), B | P | PP);
    cr_expect_eq(mq_verb_lexicon_form_slots(lx, "saw", 3), B | P);
    cr_expect_eq(mq_verb_lexicon_form_slots(lx, "walks", 5), S);
    cr_expect_eq(mq_verb_lexicon_form_slots(lx, "maked", 5), 0); /* a spelling that lost */
    cr_expect_eq(mq_verb_lexicon_form_slots(lx, "zzz", 3), 0);
    uint32_t id;
    mq_verb_lemma_t l;
    cr_assert_eq(mq_verb_lexicon_id(lx, "beat", &id), MQ_OK);
    mq_verb_lexicon_lemma(lx, id, &l);
    cr_expect_eq(l.variant_slots, PP); /* has beat, has beaten */
    cr_assert_eq(mq_verb_lexicon_id(lx, "walk", &id), MQ_OK);
    mq_verb_lexicon_lemma(lx, id, &l);
    cr_expect_eq(l.variant_slots, 0);
    cr_expect_eq(l.frames_first, 0); /* frames not loaded */
    cr_expect_eq(mq_verb_lexicon_id(lx, "be", &id), MQ_ERR_NOT_FOUND);
    mq_verb_lexicon_free(lx);

    /* get's irregular past is a participle too: has got, has gotten */
    char dir[] = "/tmp/mq_lex_XXXXXX", path[256];
    cr_assert(mkdtemp(dir));
    static const char *const FILES[3][2] = {{"index.verb", "get v 1 1 @ 1 0 00000001\n"},
                                            {"verb.exc", "got get\ngotten get\n"},
                                            {"cntlist.rev", "get%2:40:00:: 1 700\n"}};
    mq_error_t err = {0};
    for (int f = 0; f < 3; f++) {
        snprintf(path, sizeof path, "%s/%s", dir, FILES[f][0]);
        cr_assert_eq(mq_write_file(path, FILES[f][1], strlen(FILES[f][1]), &err), MQ_OK);
    }
    cr_assert_eq(mq_verb_lexicon_load(dir, NULL, &lx, &err), MQ_OK, "%s", err.msg);
    expect_paradigm(lx, "get", "gets", "got", "gotten", "getting");
    cr_expect_eq(mq_verb_lexicon_form_slots(lx, "got", 3), P | PP);
    cr_assert_eq(mq_verb_lexicon_id(lx, "get", &id), MQ_OK);
    mq_verb_lexicon_lemma(lx, id, &l);
    cr_expect_eq(l.variant_slots, PP);
    mq_verb_lexicon_free(lx);
    for (int f = 0; f < 3; f++) {
        snprintf(path, sizeof path, "%s/%s", dir, FILES[f][0]);
        unlink(path);
    }
    rmdir(dir);
}

Test(verbtense, lexicon_reads_verb_frames_of_the_first_and_every_sense) {
    mq_verb_lexicon_t *lx = fixture_lexicon(NULL);
    mq_error_t err = {0};
    cr_assert_eq(mq_verb_lexicon_load_frames(lx, WORDNET, &err), MQ_OK, "%s", err.msg);
    static const struct {
        const char *lemma;
        uint64_t first;
        uint8_t lexfile;
    } T[] = {
        {"eat", MQ_FRAME(8), 34},
        {"give", MQ_FRAME(8) | MQ_FRAME(14), 40}, /* "+ 14 01": give, the synset's first word */
        {"find", MQ_FRAME(8), 40},                /* the second word: frame 8 only */
        {"walk", MQ_FRAME(2), 38},
        {"make", MQ_FRAME(8) | MQ_FRAME(14), 36},
        {"stop", MQ_FRAME(1) | MQ_FRAME(2), 30},
    };
    for (size_t i = 0; i < sizeof T / sizeof T[0]; i++) {
        uint32_t id;
        mq_verb_lemma_t l;
        cr_assert_eq(mq_verb_lexicon_id(lx, T[i].lemma, &id), MQ_OK);
        mq_verb_lexicon_lemma(lx, id, &l);
        cr_expect_eq(l.frames_first, T[i].first, "%s: frames %llx", T[i].lemma,
                     (unsigned long long)l.frames_first);
        cr_expect_eq(l.frames_any, T[i].first, "%s", T[i].lemma); /* one sense each */
        cr_expect_eq(l.lexfile_first, T[i].lexfile, "%s", T[i].lemma);
    }
    mq_verb_lexicon_free(lx);
}

/* ---------------------------------------------------------------------------------------------
 * word classes */

static mq_wordclass_t *fixture_wordclass(void) {
    mq_wordclass_t *wc = NULL;
    mq_error_t err = {0};
    cr_assert_eq(mq_wordclass_load(WORDNET, &wc, &err), MQ_OK, "%s", err.msg);
    return wc;
}

/* The fixture's WordNet files read into memory, as mq_wordnet_t names them. */
static const char *const MEM_FILES[] = {"index.verb", "verb.exc",   "cntlist.rev",
                                        "data.verb",  "index.noun", "index.adj",
                                        "noun.exc",   "adj.exc",    "data.noun"};
#define N_MEM_FILES (sizeof MEM_FILES / sizeof MEM_FILES[0])

static mq_wordnet_t memory_wordnet(mq_wn_file_t files[N_MEM_FILES], char *texts[N_MEM_FILES]) {
    mq_error_t err = {0};
    for (size_t f = 0; f < N_MEM_FILES; f++) {
        char path[512];
        size_t len;
        snprintf(path, sizeof path, "%s/%s", WORDNET, MEM_FILES[f]);
        cr_assert_eq(mq_read_file(path, 1 << 24, &texts[f], &len, &err), MQ_OK, "%s", err.msg);
        files[f] = (mq_wn_file_t){MEM_FILES[f], texts[f], len};
    }
    return (mq_wordnet_t){.dir = "memory", .files = files, .n_files = N_MEM_FILES};
}

Test(verbtense, wordnet_read_from_memory_as_from_the_folder) {
    mq_wn_file_t files[N_MEM_FILES];
    char *texts[N_MEM_FILES];
    mq_wordnet_t wn = memory_wordnet(files, texts);
    mq_error_t err = {0};
    mq_verb_lexicon_t *mem = NULL, *disk = fixture_lexicon(NULL);
    cr_assert_eq(mq_verb_lexicon_read(&wn, NULL, &mem, &err), MQ_OK, "%s", err.msg);
    cr_assert_eq(mq_verb_lexicon_read_frames(mem, &wn, &err), MQ_OK, "%s", err.msg);
    cr_assert_eq(mq_verb_lexicon_load_frames(disk, WORDNET, &err), MQ_OK, "%s", err.msg);
    cr_assert_eq(mq_verb_lexicon_size(mem), mq_verb_lexicon_size(disk));
    cr_assert_gt(mq_verb_lexicon_size(mem), 10);
    for (uint32_t id = 0; id < mq_verb_lexicon_size(mem); id++) {
        mq_verb_lemma_t a, b;
        mq_verb_lexicon_lemma(mem, id, &a);
        mq_verb_lexicon_lemma(disk, id, &b);
        cr_expect_str_eq(a.lemma, b.lemma);
        for (int i = 0; i < MQ_NUM_INFL; i++)
            cr_expect_str_eq(a.forms[i], b.forms[i], "%s: form %d", a.lemma, i);
        cr_expect(a.n_verb == b.n_verb && a.n_noun == b.n_noun && a.n_adj == b.n_adj &&
                      a.frames_first == b.frames_first && a.frames_any == b.frames_any &&
                      a.lexfile_first == b.lexfile_first,
                  "%s: counts or frames differ", a.lemma);
    }
    mq_verb_lexicon_free(mem);
    mq_verb_lexicon_free(disk);

    mq_wordclass_t *wm = NULL, *wd = fixture_wordclass();
    cr_assert_eq(mq_wordclass_read(&wn, &wm, &err), MQ_OK, "%s", err.msg);
    static const uint32_t LEXFILES[] = {MQ_LEX_NOUN_ARTIFACT, MQ_LEX_NOUN_PERSON};
    for (size_t k = 0; k < 2; k++) {
        const mq_common_noun_t *a, *b;
        size_t n = mq_wordclass_common_nouns(wm, LEXFILES[k], &a);
        cr_assert_eq(n, mq_wordclass_common_nouns(wd, LEXFILES[k], &b));
        cr_expect_gt(n, 0);
        for (size_t i = 0; i < n; i++) {
            cr_expect_str_eq(a[i].singular, b[i].singular);
            cr_expect_str_eq(a[i].plural, b[i].plural);
            cr_expect_eq(mq_wordclass_of(wm, a[i].singular, strlen(a[i].singular)),
                         mq_wordclass_of(wd, b[i].singular, strlen(b[i].singular)));
        }
    }
    mq_wordclass_free(wm);
    mq_wordclass_free(wd);

    /* a file missing from memory, and a malformed one: named as "<dir>/<file>" */
    wn.n_files = 2; /* no cntlist.rev */
    cr_expect_eq(mq_verb_lexicon_read(&wn, NULL, &mem, &err), MQ_ERR_IO);
    cr_expect(strstr(err.msg, "memory/cntlist.rev: not found"), "%s", err.msg);
    cr_expect_null(mem);
    wn.n_files = N_MEM_FILES;
    files[1] = (mq_wn_file_t){"verb.exc", "walked walk\nwalked\n", 19};
    cr_expect_eq(mq_verb_lexicon_read(&wn, NULL, &mem, &err), MQ_ERR_FORMAT);
    cr_expect(strstr(err.msg, "memory/verb.exc: line 2:"), "%s", err.msg);
    files[1] = (mq_wn_file_t){"verb.exc", "wal\0ked walk\n", 13};
    cr_expect_eq(mq_verb_lexicon_read(&wn, NULL, &mem, &err), MQ_ERR_FORMAT);
    cr_expect(strstr(err.msg, "memory/verb.exc: line 1: NUL byte"), "%s", err.msg);
    cr_expect_null(mem);
    for (size_t f = 0; f < N_MEM_FILES; f++)
        free(texts[f]);
}

Test(verbtense, wordclass_tells_nouns_plurals_and_adjectives) {
    mq_wordclass_t *wc = fixture_wordclass();
    static const struct {
        const char *w;
        unsigned cls;
    } T[] = {
        {"box", MQ_WORD_NOUN},
        {"boxes", MQ_WORD_PLURAL},    /* -xes */
        {"walks", MQ_WORD_PLURAL},    /* -s */
        {"children", MQ_WORD_PLURAL}, /* noun.exc */
        {"axes", MQ_WORD_PLURAL},
        {"women", MQ_WORD_PLURAL}, /* -men */
        {"opening", MQ_WORD_NOUN},
        {"clothes", MQ_WORD_NOUN}, /* a lemma: "clothe" is no noun */
        {"open", MQ_WORD_ADJ},
        {"older", MQ_WORD_ADJ},  /* adj.exc */
        {"oldest", MQ_WORD_ADJ}, /* -est */
        {"general", MQ_WORD_NOUN | MQ_WORD_ADJ},
        {"eat", 0},
        {"eating", 0},
        {"planning", 0},
        {"zzz", 0},
    };
    for (size_t i = 0; i < sizeof T / sizeof T[0]; i++)
        cr_expect_eq(mq_wordclass_of(wc, T[i].w, strlen(T[i].w)), T[i].cls, "%s: %u", T[i].w,
                     mq_wordclass_of(wc, T[i].w, strlen(T[i].w)));
    cr_expect_eq(mq_wordclass_noun_lexfiles(wc, "youth", 5),
                 (1ull << MQ_LEX_NOUN_PERSON) | (1ull << MQ_LEX_NOUN_GROUP));
    cr_expect_eq(mq_wordclass_noun_lexfiles(wc, "week", 4), 1ull << MQ_LEX_NOUN_TIME);
    cr_expect_eq(mq_wordclass_noun_lexfiles(wc, "weeks", 5), 0);

    static const char *const PLURALS[][2] = {
        {"child", "children"},  {"woman", "women"}, {"human", "humans"}, {"box", "boxes"},
        {"church", "churches"}, {"lady", "ladies"}, {"boy", "boys"},     {"dog", "dogs"}};
    char buf[64];
    for (size_t i = 0; i < sizeof PLURALS / sizeof PLURALS[0]; i++) {
        cr_expect_eq(mq_wordclass_plural(wc, PLURALS[i][0], buf, sizeof buf),
                     (int)strlen(PLURALS[i][1]));
        cr_expect_str_eq(buf, PLURALS[i][1]);
    }
    cr_expect_eq(mq_wordclass_plural(wc, "", buf, sizeof buf), -1);
    cr_expect_eq(mq_wordclass_plural(wc, "Dog", buf, sizeof buf), -1);
    mq_wordclass_free(wc);
}

Test(verbtense, wordclass_lists_common_nouns_of_people_and_artifacts) {
    mq_wordclass_t *wc = fixture_wordclass();
    /* by count, then spelling; not god (written God), bastard (a usage label), youth (also a
     * group) nor clothes (a plural's -s) */
    static const char *const PEOPLE[][2] = {{"child", "children"},   {"teacher", "teachers"},
                                            {"doctor", "doctors"},   {"sir", "sirs"},
                                            {"woman", "women"},      {"guard", "guards"},
                                            {"general", "generals"}, {"hermit", "hermits"}};
    static const char *const ARTIFACTS[] = {"house", "door", "box", "ship", "car", "chair"};
    const mq_common_noun_t *n;
    size_t k = mq_wordclass_common_nouns(wc, MQ_LEX_NOUN_PERSON, &n);
    cr_assert_eq(k, sizeof PEOPLE / sizeof PEOPLE[0]);
    for (size_t i = 0; i < k; i++) {
        cr_expect_str_eq(n[i].singular, PEOPLE[i][0]);
        cr_expect_str_eq(n[i].plural, PEOPLE[i][1]);
    }
    cr_expect_eq(n[0].n_noun, 50);
    cr_expect_eq(n[6].n_adj, 50); /* general */
    k = mq_wordclass_common_nouns(wc, MQ_LEX_NOUN_ARTIFACT, &n);
    cr_assert_eq(k, sizeof ARTIFACTS / sizeof ARTIFACTS[0]);
    for (size_t i = 0; i < k; i++)
        cr_expect_str_eq(n[i].singular, ARTIFACTS[i]);
    cr_expect_eq(mq_wordclass_common_nouns(wc, MQ_LEX_NOUN_TIME, &n), 0); /* no SemCor counts */
    cr_expect_eq(mq_wordclass_common_nouns(wc, 64, &n), 0);
    mq_wordclass_free(wc);
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

Test(verbtense, category_names_parse_back) {
    for (int k = 0; k < MQ_VT_NUM_CATEGORIES; k++) {
        uint8_t c = 99;
        cr_assert_not_null(mq_vt_category_name(k));
        cr_expect_eq(mq_vt_category_parse(mq_vt_category_name(k), &c, NULL), MQ_OK);
        cr_expect_eq(c, k);
    }
    cr_expect_str_eq(mq_vt_category_name(MQ_VT_NONFINITE), "non_finite");
    cr_expect_null(mq_vt_category_name(-1));
    cr_expect_null(mq_vt_category_name(MQ_VT_NUM_CATEGORIES));
    uint8_t c = 7;
    mq_error_t err = {0};
    cr_expect_eq(mq_vt_category_parse("tense", &c, &err), MQ_ERR_FORMAT);
    cr_expect(strstr(err.msg, "\"tense\"") && strstr(err.msg, "non_finite"), "%s", err.msg);
    cr_expect_eq(c, 7);
    mq_mp_item_t it = {0};
    cr_expect_eq(mq_mp_item_is_template(&it), 0);
    it.source = "template:agreement";
    cr_expect_eq(mq_mp_item_is_template(&it), 1);
    it.source = "00000001-v";
    cr_expect_eq(mq_mp_item_is_template(&it), 0);
    it.source = "template";
    cr_expect_eq(mq_mp_item_is_template(&it), 0);
}

typedef struct {
    const char *good, *lemma;
    uint8_t category, infl;
    const char *bad[5];
    uint8_t bad_infl[5];
} expected_t;

#define AGR MQ_VT_AGREEMENT
#define NF MQ_VT_NONFINITE
#define PART MQ_VT_PARTICIPLE
#define PROG MQ_VT_PROGRESSIVE

/* Worked out by hand from tests/data/pairs/data.verb and the fixture WordNet. The examples
 * that give no item, and why:
 *   "we gave them a book"        gave: a finite past ("we give" would be as good); book: no context
 *   "they walk to school"        school: "to school", a noun by SemCor
 *   "he puts it away"            "he put" is a past: no ungrammatical alternative
 *   "I see the ship"             ship: after "the"
 *   "unpaid wages piled up"      wages: an -s form after an adjective, a plural noun
 *   "a broken vase"              broken: a participle after a determiner, an adjective
 *   "can I walk home"            an inverted subject: "walk" is not finite
 *   "the door was opened"        open is an adjective ("was open"), opened the participle
 *   "he is walking home"         walk, walks are nouns; walked is a participle (a passive)
 *   "he walks to the store"      again, under another synset
 *   "this week prices rise"      "this week" is an adverbial of time, not the subject
 *   "she found the axes ..."     found: a past; axes: ax or axe; shed: after "the"
 *   "Go away"                    no context
 * Dropped alternatives: "he put" (a past), "to walks" (a noun), "will found" (found is a verb),
 * "have plan", "have plans" (nouns), "was open", "was opens" (open is an adjective), "is walk",
 * "is walks" (nouns), "is walked" (a passive): 10. */
static const expected_t EXPECTED[] = {
    {"he walks to the store", "walk", AGR, S, {"he walk to the store"}, {B}},
    {"they walk to school", "walk", AGR, B, {"they walks to school"}, {S}},
    {"they put it away", "put", AGR, B | P | PP, {"they puts it away"}, {S}},
    {"I see the ship", "see", AGR, B, {"I sees the ship"}, {S}},
    {"you will walk home",
     "walk",
     NF,
     B,
     {"you will walks home", "you will walked home", "you will walking home"},
     {S, P | PP, I}},
    /* after "to": no -ing form, no noun (walks) */
    {"I want to walk", "walk", NF, B, {"I want to walked"}, {P | PP}},
    /* "will found" is English: found is a verb */
    {"you will find it", "find", NF, B, {"you will finds it", "you will finding it"}, {S, I}},
    {"he didn't stop",
     "stop",
     NF,
     B,
     {"he didn't stops", "he didn't stopped", "he didn't stopping"},
     {S, P | PP, I}},
    {"Do not stop",
     "stop",
     NF,
     B,
     {"Do not stops", "Do not stopped", "Do not stopping"},
     {S, P | PP, I}},
    {"she has eaten", "have", AGR, S, {"she have eaten"}, {B}},
    {"she has eaten",
     "eat",
     PART,
     PP,
     {"she has eat", "she has eats", "she has ate", "she has eating"},
     {B, S, P, I}},
    {"they have planned a trip", "have", AGR, B, {"they has planned a trip"}, {S}},
    /* "have plan(s)": nouns, not offered */
    {"they have planned a trip", "plan", PART, P | PP, {"they have planning a trip"}, {I}},
    /* after a passive "be" no -ing form */
    {"the cake was eaten",
     "eat",
     PART,
     PP,
     {"the cake was eat", "the cake was eats", "the cake was ate"},
     {B, S, P}},
    /* after a progressive "be" no participle */
    {"the children were eating lunch",
     "eat",
     PROG,
     I,
     {"the children were eat lunch", "the children were eats lunch", "the children were ate lunch"},
     {B, S, P}},
    {"every old dog barks", "bark", AGR, S, {"every old dog bark"}, {B}},
    {"these dogs bark loudly", "bark", AGR, B, {"these dogs barks loudly"}, {S}},
};
#define N_EXPECTED (sizeof EXPECTED / sizeof EXPECTED[0])
static const char *const EXPECTED_SOURCE[N_EXPECTED] = {
    "00000001-v", "00000002-v", "00000002-v", "00000003-v", "00000004-v", "00000004-v",
    "00000004-v", "00000005-v", "00000005-v", "00000006-v", "00000006-v", "00000006-v",
    "00000006-v", "00000007-v", "00000008-v", "00000010-v", "00000010-v"};

/* The first N_EXPECTED items of s are the hand-checked ones. */
static void expect_items(const mq_mp_set_t *s) {
    cr_assert_geq(s->n_items, N_EXPECTED);
    for (size_t e = 0; e < N_EXPECTED; e++) {
        const expected_t *x = &EXPECTED[e];
        const mq_mp_item_t *it = &s->items[e];
        cr_expect_str_eq(it->good, x->good, "item %zu", e);
        cr_expect_str_eq(it->lemma, x->lemma, "item %zu (%s)", e, x->good);
        cr_expect_str_eq(it->source, EXPECTED_SOURCE[e], "item %zu (%s)", e, x->good);
        cr_expect_eq(it->category, x->category, "item %zu (%s): category %d", e, x->good,
                     it->category);
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
}

Test(verbtense, verbtense_fixture_gives_the_hand_checked_items) {
    mq_corpus_t c;
    fixture_corpus(&c);
    mq_mp_set_t s = {0};
    mq_verbtense_stats_t st;
    mq_error_t err = {0};
    cr_assert_eq(mq_verbtense_build(&c, WORDNET, 0, &s, &st, &err), MQ_OK, "%s", err.msg);
    expect_items(&s);
    cr_expect_eq(s.n_items, N_EXPECTED);
    cr_expect_eq(st.docs, 11);     /* 00000009 is in the training split */
    cr_expect_eq(st.examples, 26); /* 00000012's quote is not closed */
    cr_expect_eq(st.examples_used, 15);
    cr_expect_eq(st.skip_context, 11);
    cr_expect_eq(st.skip_ambiguous, 1);      /* axes */
    cr_expect_eq(st.skip_no_alternative, 3); /* he puts, was opened, is walking */
    cr_expect_eq(st.skip_duplicate, 1);      /* walks, in the repeated example */
    cr_expect_eq(st.alternatives_dropped, 10);
    static const size_t BY_CATEGORY[MQ_VT_NUM_CATEGORIES] = {0, 8, 5, 3, 1};
    for (int k = 0; k < MQ_VT_NUM_CATEGORIES; k++) {
        cr_expect_eq(st.from_examples[k], BY_CATEGORY[k], "category %d", k);
        cr_expect_eq(st.from_templates[k], 0);
    }
    cr_expect_eq(st.items, N_EXPECTED);
    cr_expect_eq(st.alternatives, s.n_bad);
    cr_expect_eq(s.n_bad, 31);
    mq_mp_set_free(&s);
    mq_corpus_free(&c);
}

/* Splits s at spaces into at most 32 words. */
static int words_of(const char *s, char w[32][64]) {
    int n = 0;
    while (*s && n < 32) {
        const char *e = strchr(s, ' ');
        size_t len = e ? (size_t)(e - s) : strlen(s);
        snprintf(w[n++], 64, "%.*s", (int)len, s);
        s += len + (e != NULL);
    }
    return n;
}

static int in_words(const char *w, const char *const *list, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (!strcmp(w, list[i])) return 1;
    return 0;
}

Test(verbtense, templates_draw_distinct_sentences_from_wordnet) {
    mq_corpus_t c;
    fixture_corpus(&c);
    mq_mp_set_t s = {0}, again = {0};
    mq_verbtense_stats_t st;
    mq_error_t err = {0};
    const size_t N = 40;
    cr_assert_eq(mq_verbtense_build(&c, WORDNET, N, &s, &st, &err), MQ_OK, "%s", err.msg);
    expect_items(&s); /* the examples first, unchanged */
    /* templates draw on eat, break, carry, find, open, put, wash; not on see, watch (verbs of
     * perception), know, learn, plan, read (cognition), give and make (two objects), saw (read
     * back as see), beat (has beat, has beaten), have (a verb of state), walk, run, stop ...
     * (intransitive), hoe (rare) */
    static const char *const VERBS[] = {"eat", "break", "carry", "find", "open", "put", "wash"};
    static const char *const PEOPLE[] = {"teacher",  "teachers", "doctor", "doctors", "child",
                                         "children", "woman",    "women",  "guard",   "guards"};
    static const char *const THINGS[] = {"house", "door", "box", "ship", "car", "chair"};
    cr_expect_eq(st.template_verbs, 7);
    cr_expect_eq(st.template_subjects, 5); /* not sir (a term of address), general (mostly an
                                              adjective), hermit (rare) */
    cr_expect_eq(st.template_objects, 6);
    size_t per_category[MQ_VT_NUM_CATEGORIES] = {0}, total_bad = 0;
    int verb_seen[7] = {0}, person_seen[10] = {0};
    for (size_t i = 0; i < s.n_items; i++) {
        const mq_mp_item_t *it = &s.items[i];
        total_bad += it->n_bad;
        /* an example gives an item per verb form; a template sentence is drawn once */
        for (size_t j = 0; j < i && mq_mp_item_is_template(it); j++)
            cr_expect_str_neq(s.items[j].good, it->good, "item %zu repeats item %zu", i, j);
        if (!mq_mp_item_is_template(it)) {
            cr_expect_lt(i, N_EXPECTED, "templates come after the examples");
            continue;
        }
        cr_expect_geq(i, N_EXPECTED);
        per_category[it->category]++;
        char want[64];
        snprintf(want, sizeof want, "template:%s", mq_vt_category_name(it->category));
        cr_expect_str_eq(it->source, want);
        cr_expect(in_words(it->lemma, VERBS, 7), "template verb %s", it->lemma);
        for (int v = 0; v < 7; v++)
            verb_seen[v] |= !strcmp(it->lemma, VERBS[v]);
        /* "The S ... the O." or "The O was V by the S.": every noun is one of the pools' */
        char gw[32][64], bw[32][64];
        int ng = words_of(it->good, gw);
        cr_assert_geq(ng, 4);
        cr_expect_str_eq(gw[0], "The");
        cr_expect_eq(it->good[strlen(it->good) - 1], '.');
        char last[64];
        snprintf(last, sizeof last, "%.*s", (int)strlen(gw[ng - 1]) - 1, gw[ng - 1]);
        int passive = ng >= 3 && !strcmp(gw[ng - 3], "by");
        const char *subject = passive ? last : gw[1], *object = passive ? gw[1] : last;
        cr_expect(in_words(subject, PEOPLE, 10), "subject %s in %s", subject, it->good);
        cr_expect(in_words(object, THINGS, 6), "object %s in %s", object, it->good);
        for (int p = 0; p < 10; p++)
            person_seen[p] |= !strcmp(subject, PEOPLE[p]);
        /* each alternative changes exactly one word: the verb */
        for (uint32_t j = 0; j < it->n_bad; j++) {
            const char *bad = s.bad[it->first_bad + j];
            int nb = words_of(bad, bw), differ = 0;
            cr_assert_eq(nb, ng, "%s / %s", it->good, bad);
            for (int k = 0; k < ng; k++)
                differ += strcmp(gw[k], bw[k]) != 0;
            cr_expect_eq(differ, 1, "%s / %s", it->good, bad);
        }
    }
    for (int k = 1; k < MQ_VT_NUM_CATEGORIES; k++) {
        cr_expect_eq(per_category[k], N, "category %d", k);
        cr_expect_eq(st.from_templates[k], N);
    }
    for (int v = 0; v < 7; v++)
        cr_expect(verb_seen[v], "%s never drawn", VERBS[v]);
    for (int p = 0; p < 10; p++)
        cr_expect(person_seen[p], "%s never drawn", PEOPLE[p]);
    /* the counts add up */
    size_t sum = 0;
    for (int k = 0; k < MQ_VT_NUM_CATEGORIES; k++)
        sum += st.from_examples[k] + st.from_templates[k];
    cr_expect_eq(st.items, s.n_items);
    cr_expect_eq(sum, s.n_items);
    cr_expect_eq(st.alternatives, s.n_bad);
    cr_expect_eq(total_bad, s.n_bad);
    cr_expect_eq(s.n_items, N_EXPECTED + 4 * N);

    /* the same WordNet gives the same set */
    cr_assert_eq(mq_verbtense_build(&c, WORDNET, N, &again, NULL, &err), MQ_OK, "%s", err.msg);
    cr_assert_eq(again.n_items, s.n_items);
    cr_assert_eq(again.n_bad, s.n_bad);
    for (size_t i = 0; i < s.n_items; i++) {
        cr_expect_str_eq(again.items[i].good, s.items[i].good);
        cr_expect_eq(again.items[i].category, s.items[i].category);
    }
    for (size_t j = 0; j < s.n_bad; j++)
        cr_expect_str_eq(again.bad[j], s.bad[j]);
    mq_mp_set_free(&s);
    mq_mp_set_free(&again);

    /* more distinct sentences than the fixture's words make */
    cr_expect_eq(mq_verbtense_build(&c, WORDNET, 100000, &s, NULL, &err), MQ_ERR_FORMAT);
    cr_expect(strstr(err.msg, "agreement template sentences") && strstr(err.msg, "100000"), "%s",
              err.msg);
    cr_expect_eq(s.n_items, 0);
    mq_corpus_free(&c);
}

Test(verbtense, verbtense_round_trips_through_blimp) {
    mq_corpus_t c;
    fixture_corpus(&c);
    mq_mp_set_t a = {0}, r = {0};
    mq_error_t err = {0};
    cr_assert_eq(mq_verbtense_build(&c, WORDNET, 5, &a, NULL, &err), MQ_OK, "%s", err.msg);
    char path[] = "/tmp/mq_pairs_XXXXXX";
    int fd = mkstemp(path);
    cr_assert(fd >= 0);
    close(fd);
    cr_assert_eq(mq_blimp_write(path, &a, &err), MQ_OK, "%s", err.msg);
    char *text;
    size_t len, lines = 0;
    cr_assert_eq(mq_read_file(path, 0, &text, &len, NULL), MQ_OK);
    for (size_t i = 0; i < len; i++)
        lines += text[i] == '\n';
    cr_expect_eq(lines, a.n_bad); /* one line per (good, bad) pair */
    free(text);

    /* reading the file back regroups each item's alternatives, metadata included */
    cr_assert_eq(mq_blimp_read(path, &r, &err), MQ_OK, "%s", err.msg);
    expect_items(&r);
    cr_assert_eq(r.n_items, a.n_items);
    cr_assert_eq(r.n_bad, a.n_bad);
    for (size_t i = 0; i < r.n_items; i++) {
        const mq_mp_item_t *x = &a.items[i], *y = &r.items[i];
        cr_expect_str_eq(y->good, x->good);
        cr_expect_str_eq(y->lemma, x->lemma);
        cr_expect_str_eq(y->source, x->source);
        cr_expect_eq(y->infl, x->infl, "item %zu", i);
        cr_expect_eq(y->category, x->category, "item %zu: category %d, written %d", i, y->category,
                     x->category);
        cr_expect_eq(mq_mp_item_is_template(y), mq_mp_item_is_template(x));
        cr_assert_eq(y->n_bad, x->n_bad);
        for (uint32_t j = 0; j < x->n_bad; j++) {
            cr_expect_str_eq(r.bad[y->first_bad + j], a.bad[x->first_bad + j]);
            cr_expect_eq(r.bad_infl[y->first_bad + j], a.bad_infl[x->first_bad + j]);
        }
    }
    unlink(path);
    mq_mp_set_free(&a);
    mq_mp_set_free(&r);
    mq_corpus_free(&c);
}

/* ---------------------------------------------------------------------------------------------
 * bad WordNet files */

static const char *const WORDNET_FILES[] = {"index.verb", "verb.exc",   "cntlist.rev",
                                            "data.verb",  "index.noun", "index.adj",
                                            "noun.exc",   "adj.exc",    "data.noun"};
#define N_WORDNET_FILES (sizeof WORDNET_FILES / sizeof WORDNET_FILES[0])

/* Copies the fixture WordNet into dir. */
static void copy_wordnet(const char *dir) {
    for (size_t f = 0; f < N_WORDNET_FILES; f++) {
        char src[512], dst[512], *text;
        size_t len;
        snprintf(src, sizeof src, "%s/%s", WORDNET, WORDNET_FILES[f]);
        snprintf(dst, sizeof dst, "%s/%s", dir, WORDNET_FILES[f]);
        cr_assert_eq(mq_read_file(src, 0, &text, &len, NULL), MQ_OK, "%s", src);
        cr_assert_eq(mq_write_file(dst, text, len, NULL), MQ_OK, "%s", dst);
        free(text);
    }
}

/* Writes dir/name as the fixture's file with its first `from` replaced by `to`; returns the
 * line of the change. */
static int corrupt(const char *dir, const char *name, const char *from, const char *to) {
    char src[512], dst[512], *text;
    size_t len;
    snprintf(src, sizeof src, "%s/%s", WORDNET, name);
    snprintf(dst, sizeof dst, "%s/%s", dir, name);
    cr_assert_eq(mq_read_file(src, 0, &text, &len, NULL), MQ_OK);
    char *at = strstr(text, from);
    cr_assert_not_null(at, "%s has no '%s'", name, from);
    int line = 1;
    for (char *p = text; p < at; p++)
        line += *p == '\n';
    size_t nf = strlen(from), nt = strlen(to);
    char *out = malloc(len - nf + nt + 1);
    memcpy(out, text, (size_t)(at - text));
    memcpy(out + (at - text), to, nt);
    memcpy(out + (at - text) + nt, at + nf, len - (size_t)(at - text) - nf);
    cr_assert_eq(mq_write_file(dst, out, len - nf + nt, NULL), MQ_OK);
    free(out);
    free(text);
    return line;
}

Test(verbtense, verbtense_reports_missing_and_malformed_wordnet) {
    mq_corpus_t c;
    fixture_corpus(&c);
    mq_mp_set_t s = {0};
    mq_error_t err = {0};
    cr_expect_eq(mq_verbtense_build(&c, PAIRS, 0, &s, NULL, &err), MQ_ERR_IO);
    cr_expect(strstr(err.msg, "index.verb") && strstr(err.msg, "wordnet-base"), "%s", err.msg);
    cr_expect_eq(s.n_items, 0);
    mq_wordclass_t *wc = NULL;
    cr_expect_eq(mq_wordclass_load(PAIRS, &wc, &err), MQ_ERR_IO);
    cr_expect(strstr(err.msg, "index.noun"), "%s", err.msg);
    cr_expect_null(wc);

    char dir[] = "/tmp/mq_wn_XXXXXX", path[512];
    cr_assert(mkdtemp(dir));
    copy_wordnet(dir);
    cr_assert_eq(mq_verbtense_build(&c, dir, 2, &s, NULL, &err), MQ_OK, "%s", err.msg);
    mq_mp_set_free(&s);
    /* each file missing */
    for (size_t f = 0; f < N_WORDNET_FILES; f++) {
        snprintf(path, sizeof path, "%s/%s", dir, WORDNET_FILES[f]);
        unlink(path);
        cr_expect_eq(mq_verbtense_build(&c, dir, 2, &s, NULL, &err), MQ_ERR_IO, "%s",
                     WORDNET_FILES[f]);
        cr_expect(strstr(err.msg, path) && strstr(err.msg, "wordnet-base"), "%s: %s",
                  WORDNET_FILES[f], err.msg);
        cr_expect_eq(s.n_items, 0);
        copy_wordnet(dir);
    }
    /* malformed lines: each error names the file and the line */
    static const struct {
        const char *file, *from, *to, *what;
    } BAD[] = {
        {"data.verb", "00000212 34 v 01 eat 0 000 01 + 08 00",
         "00000212 34 v 01 eat 0 000 01 + 08 02", "frame 1"},
        {"data.verb", "00000212 34 v 01 eat 0 000", "00000212 34 v 02 eat 0 000", "pointer count"},
        {"data.verb", "00000212 34 v 01 eat 0", "00000212 34 v 01 ate 0", "does not list \"eat\""},
        {"data.verb", "00000212 34 v 01 eat 0 000 01 + 08 00", "00000212 34 v 01 eat 0 000 01 + 08",
         "frame 1"},
        {"index.verb", "eat v 1 1 @ 1 0 00000212", "eat v 2 1 @ 1 0 00000212", "synset_cnt 2"},
        {"index.verb", "eat v 1 1 @ 1 0 00000212", "eat v 1 1 @ 1 0 00000213",
         "synset 00000213 of \"eat\" is not in data.verb"},
        {"index.noun", "box n 1 1 @ 1 0 00000100", "box n 1 1 @ 1 0 0000010x", "8-digit"},
        {"index.noun", "box n 1 1 @ 1 0 00000100", "box n 1 1 @ 1 0 00000101",
         "synset 00000101 of \"box\" is not in data.noun"},
        {"index.noun", "box n", "box x", "not \"lemma n"},
        {"data.noun", ";u 00000459 n 0000", ";u 00000459 n 00", "pointer 1"},
        {"data.noun", "00000237 04 n 05", "00000237 04 n 06", "lex_id"},
        {"data.noun", "00000237 04 n", "00000237 04 v", "noun file"},
        {"index.adj", "open a 1", "open", "not \"lemma a"},
        {"noun.exc", "children child", "children", "not \"form lemma\""},
        {"adj.exc", "older old", "older", "not \"form lemma\""},
        {"cntlist.rev", "box%1:06:00:: 1 30", "box%1:06:00:: 1 3x", "sense_number count"},
    };
    for (size_t k = 0; k < sizeof BAD / sizeof BAD[0]; k++) {
        int line = corrupt(dir, BAD[k].file, BAD[k].from, BAD[k].to);
        cr_expect_eq(mq_verbtense_build(&c, dir, 2, &s, NULL, &err), MQ_ERR_FORMAT, "case %zu", k);
        char want[64];
        snprintf(want, sizeof want, "%s: line %d:", BAD[k].file, line);
        cr_expect(strstr(err.msg, want) && strstr(err.msg, BAD[k].what),
                  "case %zu: '%s' lacks '%s' or '%s'", k, err.msg, want, BAD[k].what);
        cr_expect_eq(s.n_items, 0);
        copy_wordnet(dir);
    }
    for (size_t f = 0; f < N_WORDNET_FILES; f++) {
        snprintf(path, sizeof path, "%s/%s", dir, WORDNET_FILES[f]);
        unlink(path);
    }
    rmdir(dir);

    /* the lexicon's own files: each error names the file and the line */
    cr_assert(mkdtemp(strcpy(dir, "/tmp/mq_wn_XXXXXX")));
    static const struct {
        const char *index, *cnt, *exc, *file;
        int line;
    } LEX[] = {
        {"  header\nwalk v 1\nrun\n", "", "", "index.verb", 3},
        {"walk x 1\n", "", "", "index.verb", 1},
        {"walk v 1\n", "walk%2:38:00:: 1 50\nwalk 1 2\n", "", "cntlist.rev", 2},
        {"walk v 1\n", "walk%9:38:00:: 1 50\n", "", "cntlist.rev", 1},
        {"walk v 1\n", "walk%2:38:00:: 1 5x\n", "", "cntlist.rev", 1},
        {"walk v 1\n", "walk%2:38:00:: 1 12345678901\n", "", "cntlist.rev", 1},
        {"walk v 1\n", "", "walked walk\nwalked\n", "verb.exc", 2},
        {"walk v 1\n", "", "wal\0ked walk\n", "verb.exc", 1},
    };
    for (size_t k = 0; k < sizeof LEX / sizeof LEX[0]; k++) {
        const char *texts[3] = {LEX[k].index, LEX[k].cnt, LEX[k].exc};
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
        snprintf(want, sizeof want, "%s: line %d:", LEX[k].file, LEX[k].line);
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

    /* a corpus without test-split examples and no templates gives no set, and says so */
    for (size_t i = 0; i < c.n_docs; i++)
        c.docs[i].split = MQ_SPLIT_TRAIN;
    cr_expect_eq(mq_verbtense_build(&c, WORDNET, 0, &s, NULL, &err), MQ_ERR_FORMAT);
    cr_expect(strstr(err.msg, "no verb-tense items"), "%s", err.msg);
    /* templates alone are a set */
    mq_verbtense_stats_t st;
    cr_expect_eq(mq_verbtense_build(&c, WORDNET, 3, &s, &st, &err), MQ_OK, "%s", err.msg);
    cr_expect_eq(s.n_items, 12);
    cr_expect_eq(st.docs, 0);
    mq_mp_set_free(&s);
    mq_corpus_free(&c);
}

Test(verbtense, verbtense_handles_long_examples_and_odd_text) {
    /* an example longer than the storage blocks, twice (the second is a repeat), then one
     * whose verb forms are joined to other characters, capitalised inside the example or in
     * capitals, all but the last */
    size_t n = 100000;
    char *ex = malloc(n + 16), *line = malloc(2 * n + 1024);
    size_t e = (size_t)sprintf(ex, "he will walk ");
    for (size_t i = 0; i < n; i++)
        ex[e++] = i % 2 ? ' ' : 'z';
    ex[e] = 0;
    size_t k = (size_t)sprintf(
        line,
        "00000001 29 v 01 x 0 000 | gloss; \"%s\"; \"%s\"; \"we will caf\xc3\xa9walk, we will "
        "walk\xc3\xa9, we will 3walk, we will walk3, we will WALK, we will Walk, we will walk-on, "
        "we will walk's, we will walk\"\n",
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
    cr_assert_eq(s.n_items, 2);
    cr_expect_eq(strlen(s.items[0].good), 13 + n - 1);
    cr_expect_eq(strncmp(s.items[0].good, "he will walk z", 14), 0);
    cr_expect_eq(strncmp(s.bad[s.items[0].first_bad], "he will walks z", 15), 0);
    const char *bad = s.bad[s.items[1].first_bad];
    size_t bl = strlen(bad);
    cr_expect(bl > 13 && !strcmp(bad + bl - 13, "we will walks"), "%s", bad);
    cr_expect(strstr(bad, "we will caf\xc3\xa9walk, we will walk\xc3\xa9,"), "%s", bad);
    mq_mp_set_free(&s);
    mq_corpus_free(&c);
    free(line);
}
