/* The verb lexicon's readers (WordNet's index.verb, verb.exc and cntlist.rev, through
 * mq_verb_lexicon_load) on arbitrary bytes.
 *
 * The input holds the three files in that order, separated by lines "@@@", which the lexicon
 * reads from memory. A lexicon that loads must give every lemma's
 * paradigm as five non-empty forms. */
#include "fuzz.h"
#include "miniquant/lexicon.h"

static const char *const FILES[3] = {"index.verb", "verb.exc", "cntlist.rev"};

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc;
    (void)argv;
    fuzz_quiet();
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    mq_wn_file_t files[3];
    mq_wordnet_t wn = fuzz_wordnet_split(data, size, FILES, 3, files);
    mq_verb_lexicon_t *lx = NULL;
    mq_error_t err = {0};
    int rc = mq_verb_lexicon_read(&wn, NULL, &lx, &err);
    if (rc) {
        fuzz_check_refusal(rc, &err, FUZZ_NAME);
        FUZZ_CHECK(lx == NULL, "a refused lexicon was returned");
        return 0;
    }
    FUZZ_CHECK(mq_verb_lexicon_size(lx) > 0, "an empty lexicon");
    static const char *const LEMMAS[] = {"walk", "go", "run", "put", "see", "a", "zz"};
    for (size_t i = 0; i < sizeof LEMMAS / sizeof LEMMAS[0]; i++) {
        const char *forms[MQ_NUM_INFL];
        if (mq_verb_paradigm(lx, LEMMAS[i], forms) != MQ_OK) continue;
        for (int s = 0; s < MQ_NUM_INFL; s++)
            FUZZ_CHECK(forms[s] && forms[s][0], "%s: form %d", LEMMAS[i], s);
    }
    mq_verb_lexicon_free(lx);
    return 0;
}
