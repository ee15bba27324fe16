/* The verb lexicon's readers (WordNet's index.verb, verb.exc and cntlist.rev, through
 * mq_verb_lexicon_load) on arbitrary bytes.
 *
 * The input holds the three files in that order, separated by lines "@@@"; they are written to
 * a folder of their own, which the lexicon reads. A lexicon that loads must give every lemma's
 * paradigm as five non-empty forms. */
#define _GNU_SOURCE /* memmem, mkdtemp */
#include <sys/stat.h>
#include <unistd.h>

#include "fuzz.h"
#include "miniquant/lexicon.h"

#define SEPARATOR "\n@@@\n"

static char dir[64] = "/tmp/" FUZZ_NAME "-XXXXXX";
static const char *const FILES[3] = {"index.verb", "verb.exc", "cntlist.rev"};

static void write_part(const char *name, const uint8_t *p, size_t n) {
    char path[128];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    FUZZ_CHECK(f && (n == 0 || fwrite(p, 1, n, f) == n) && fclose(f) == 0, "cannot write %s", path);
}

static void remove_dir(void) {
    char path[128];
    for (int k = 0; k < 3; k++) {
        snprintf(path, sizeof path, "%s/%s", dir, FILES[k]);
        unlink(path);
    }
    rmdir(dir);
}

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc;
    (void)argv;
    fuzz_quiet();
    FUZZ_CHECK(mkdtemp(dir) != NULL, "cannot create a folder in /tmp");
    atexit(remove_dir);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const uint8_t *p = data, *end = data + size;
    for (int k = 0; k < 3; k++) {
        const uint8_t *sep =
            k < 2 ? memmem(p, (size_t)(end - p), SEPARATOR, sizeof SEPARATOR - 1) : NULL;
        const uint8_t *stop = sep ? sep : end;
        write_part(FILES[k], p, (size_t)(stop - p));
        p = sep ? sep + sizeof SEPARATOR - 1 : end;
    }
    mq_verb_lexicon_t *lx = NULL;
    mq_error_t err = {0};
    int rc = mq_verb_lexicon_load(dir, NULL, &lx, &err);
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
