/* The BLiMP jsonl reader (mq_blimp_parse, what mq_blimp_read runs on a file) on arbitrary
 * bytes. A set it accepts must hold what pairs.h promises: items with at least one
 * alternative, non-empty sentences without NUL bytes, no alternative equal to its good
 * sentence, and inflection masks of known bits. */
#include "fuzz.h"
#include "miniquant/pairs.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    mq_mp_set_t set;
    mq_error_t err = {0};
    int rc = mq_blimp_parse((const char *)data, size, FUZZ_NAME, &set, &err);
    if (rc) {
        fuzz_check_refusal(rc, &err, FUZZ_NAME);
        FUZZ_CHECK(set.n_items == 0 && set.items == NULL, "a refused set holds items");
        return 0;
    }
    const uint8_t all = (1 << MQ_NUM_INFL) - 1;
    FUZZ_CHECK(set.n_items > 0, "an accepted set without items");
    size_t n_bad = 0;
    for (size_t i = 0; i < set.n_items; i++) {
        const mq_mp_item_t *it = &set.items[i];
        FUZZ_CHECK(it->n_bad >= 1 && it->first_bad == n_bad, "item %zu: alternatives", i);
        FUZZ_CHECK(it->good[0] != '\0' && (it->infl & ~all) == 0, "item %zu", i);
        for (uint32_t j = 0; j < it->n_bad; j++) {
            const char *bad = set.bad[it->first_bad + j];
            FUZZ_CHECK(bad[0] != '\0' && strcmp(bad, it->good) != 0 &&
                           (set.bad_infl[it->first_bad + j] & ~all) == 0,
                       "item %zu, alternative %u", i, j);
        }
        n_bad += it->n_bad;
        if (it->lemma) FUZZ_CHECK(strlen(it->lemma) <= size, "item %zu: lemma", i);
        if (it->source) FUZZ_CHECK(strlen(it->source) <= size, "item %zu: source", i);
    }
    FUZZ_CHECK(n_bad == set.n_bad, "%zu alternatives counted, %zu held", n_bad, set.n_bad);
    mq_mp_set_free(&set);
    return 0;
}
