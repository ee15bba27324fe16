/* The corpus readers on arbitrary bytes: WordNet data files (mq_corpus_parse_data, what
 * mq_corpus_load_wordnet runs on each of data.{noun,verb,adj,adv}) and the split text files
 * of data/corpus (mq_corpus_parse_text, what mq_corpus_load_text runs).
 *
 * The first byte picks the reader and, for data files, the part of speech the file claims;
 * the rest is the file. Documents read must be what corpus.h says: NUL-terminated text of the
 * recorded length, without NUL bytes or trailing whitespace (data files), of a known part of
 * speech and split; and the split texts must hold each document and its newline. */
#include <ctype.h>

#include "fuzz.h"
#include "miniquant/corpus.h"

static void check_corpus(const mq_corpus_t *c, int from_data) {
    size_t bytes[MQ_NUM_SPLITS] = {0};
    for (size_t i = 0; i < c->n_docs; i++) {
        const mq_doc_t *d = &c->docs[i];
        FUZZ_CHECK(d->len > 0 && strlen(d->text) == d->len, "document %zu: length", i);
        FUZZ_CHECK(d->split < MQ_NUM_SPLITS, "document %zu: split %u", i, d->split);
        if (from_data) {
            FUZZ_CHECK(strchr("nvar", d->pos) && d->split == mq_corpus_split_of(d->pos, d->offset),
                       "document %zu: part of speech or split", i);
            FUZZ_CHECK(!isspace((unsigned char)d->text[d->len - 1]), "document %zu ends in a space",
                       i);
        }
        bytes[d->split] += d->len + 1;
    }
    mq_split_stats_t stats[MQ_NUM_SPLITS];
    mq_corpus_stats(c, stats);
    for (int s = 0; s < MQ_NUM_SPLITS; s++) {
        char *text;
        size_t len;
        mq_error_t err = {0};
        FUZZ_CHECK(mq_corpus_split_text(c, (mq_split_t)s, &text, &len, &err) == MQ_OK, "%s",
                   err.msg);
        FUZZ_CHECK(len == bytes[s] && stats[s].bytes == bytes[s] && text[len] == '\0',
                   "split %d: %zu bytes, expected %zu", s, len, bytes[s]);
        free(text);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static const char HINTS[] = {0, 'n', 'v', 'a', 'r'};
    if (size < 1) return 0;
    const char *text = (const char *)data + 1;
    size_t len = size - 1;
    mq_corpus_t c;
    memset(&c, 0, sizeof c);
    mq_error_t err = {0};
    int from_data = data[0] < 128;
    int rc = from_data
                 ? mq_corpus_parse_data(text, len, FUZZ_NAME, HINTS[data[0] % sizeof HINTS], &c, &err)
                 : mq_corpus_parse_text(text, len, FUZZ_NAME, (mq_split_t)(data[0] % MQ_NUM_SPLITS),
                                        &c, &err);
    if (rc) {
        fuzz_check_refusal(rc, &err, FUZZ_NAME);
    } else {
        check_corpus(&c, from_data);
    }
    mq_corpus_free(&c);
    return 0;
}
