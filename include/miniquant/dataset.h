/* miniquant: token streams of the corpus splits.
 *
 * A split's stream is, for each document in corpus order, the tokens of its text followed by
 * "\n", then <|endoftext|> (a LLaMA vocabulary, which has none: its end-of-sequence token). Training samples windows from the train stream; the default
 * perplexity protocol walks the test stream. */
#ifndef MINIQUANT_DATASET_H
#define MINIQUANT_DATASET_H

#include <stddef.h>
#include <stdint.h>

#include "miniquant/corpus.h"
#include "miniquant/error.h"
#include "miniquant/tokenizer.h"

typedef struct mq_tokens {
    int32_t *ids;
    size_t n;
} mq_tokens_t;

/* Encodes one split of the corpus (shows a progress bar). */
int mq_dataset_encode(const mq_corpus_t *c, mq_split_t split, const mq_tokenizer_t *tok,
                      mq_tokens_t *out, mq_error_t *err);
void mq_tokens_free(mq_tokens_t *t);

#endif
