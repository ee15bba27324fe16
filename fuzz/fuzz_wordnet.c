/* The WordNet readers the verb-tense set needs beyond the verb lexicon, on arbitrary bytes: the
 * verb frames (index.verb and data.verb through mq_verb_lexicon_load_frames, on a lexicon read
 * from the same index.verb, verb.exc and cntlist.rev) and the word classes (index.noun,
 * index.adj, noun.exc, adj.exc, cntlist.rev and data.noun through mq_wordclass_load).
 *
 * The input holds index.verb, verb.exc, cntlist.rev, data.verb, index.noun, index.adj,
 * noun.exc, adj.exc and data.noun in that order, separated by lines "@@@", which the readers
 * read from memory. What loads must answer queries: every common
 * noun has a non-empty singular and plural, spelled apart, and every plural the rules give is
 * non-empty. */
#include "fuzz.h"
#include "miniquant/lexicon.h"
#include "miniquant/wordclass.h"

static const char *const FILES[9] = {"index.verb", "verb.exc",   "cntlist.rev",
                                     "data.verb",  "index.noun", "index.adj",
                                     "noun.exc",   "adj.exc",    "data.noun"};

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc;
    (void)argv;
    fuzz_quiet();
    return 0;
}

static void check_word_classes(const mq_wordclass_t *wc) {
    static const char *const WORDS[] = {"box",   "boxes",   "child", "children", "open",
                                        "lower", "teacher", "walks", "a",        "zz"};
    char buf[128];
    for (size_t i = 0; i < sizeof WORDS / sizeof WORDS[0]; i++) {
        (void)mq_wordclass_of(wc, WORDS[i], strlen(WORDS[i]));
        (void)mq_wordclass_noun_lexfiles(wc, WORDS[i], strlen(WORDS[i]));
        int n = mq_wordclass_plural(wc, WORDS[i], buf, sizeof buf);
        FUZZ_CHECK(n > 0 && (size_t)n == strlen(buf), "plural of %s: %d", WORDS[i], n);
    }
    static const uint32_t LEXFILES[] = {MQ_LEX_NOUN_ARTIFACT, MQ_LEX_NOUN_PERSON, 63, 200};
    for (size_t i = 0; i < sizeof LEXFILES / sizeof LEXFILES[0]; i++) {
        const mq_common_noun_t *nouns;
        size_t n = mq_wordclass_common_nouns(wc, LEXFILES[i], &nouns);
        for (size_t k = 0; k < n; k++)
            FUZZ_CHECK(nouns[k].singular[0] && nouns[k].plural[0] &&
                           strcmp(nouns[k].singular, nouns[k].plural),
                       "common noun %zu of file %u", k, LEXFILES[i]);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    mq_wn_file_t files[9];
    mq_wordnet_t wn = fuzz_wordnet_split(data, size, FILES, 9, files);
    mq_error_t err = {0};
    mq_verb_lexicon_t *lx = NULL;
    int rc = mq_verb_lexicon_read(&wn, NULL, &lx, &err);
    if (rc == MQ_OK) {
        rc = mq_verb_lexicon_read_frames(lx, &wn, &err);
        if (rc) fuzz_check_refusal(rc, &err, FUZZ_NAME);
        mq_verb_lexicon_free(lx);
    } else {
        fuzz_check_refusal(rc, &err, FUZZ_NAME);
    }
    mq_wordclass_t *wc = NULL;
    err = (mq_error_t){0};
    rc = mq_wordclass_read(&wn, &wc, &err);
    if (rc) {
        fuzz_check_refusal(rc, &err, FUZZ_NAME);
        FUZZ_CHECK(wc == NULL, "a refused word-class table was returned");
        return 0;
    }
    check_word_classes(wc);
    mq_wordclass_free(wc);
    return 0;
}
