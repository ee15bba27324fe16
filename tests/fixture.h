/* The small training setup that tests of training share: a tokenizer of 300 tokens learned on
 * the WordNet fixture (tests/data/wordnet), the fixture's documents as one token stream, a
 * 2-layer model of that vocabulary, and training options that keep a run to a second. */
#ifndef MINIQUANT_TESTS_FIXTURE_H
#define MINIQUANT_TESTS_FIXTURE_H

#include <criterion/criterion.h>

#include "miniquant/corpus.h"
#include "miniquant/dataset.h"
#include "miniquant/model.h"
#include "miniquant/train.h"

#define FIXTURE_VOCAB 300

/* All splits of the fixture count as training text, so that the sample is big enough. */
static inline void fixture_stream(mq_tokenizer_t **tok, mq_tokens_t *stream) {
    mq_corpus_t c;
    mq_error_t err = {0};
    cr_assert_eq(mq_corpus_load_wordnet(MQ_TEST_DATA "/wordnet", &c, &err), MQ_OK, "%s", err.msg);
    const char *docs[64];
    size_t lens[64];
    cr_assert(c.n_docs <= 64);
    for (size_t i = 0; i < c.n_docs; i++) {
        docs[i] = c.docs[i].text;
        lens[i] = c.docs[i].len;
        c.docs[i].split = MQ_SPLIT_TRAIN;
    }
    cr_assert_eq(mq_tokenizer_train(docs, lens, c.n_docs, FIXTURE_VOCAB, tok, &err), MQ_OK, "%s",
                 err.msg);
    cr_assert_eq(mq_dataset_encode(&c, MQ_SPLIT_TRAIN, *tok, stream, &err), MQ_OK, "%s", err.msg);
    mq_corpus_free(&c);
}

static inline void fixture_model(mq_gpt_t *m, uint64_t seed) {
    mq_gpt_config_t cfg = {.name = "custom",
                           .vocab_size = FIXTURE_VOCAB,
                           .n_ctx = 32,
                           .n_embd = 32,
                           .n_head = 2,
                           .n_layer = 2};
    mq_error_t err = {0};
    cr_assert_eq(mq_gpt_init(m, &cfg, &err), MQ_OK, "%s", err.msg);
    mq_gpt_init_weights(m, seed);
}

static inline void fixture_opts(mq_train_opts_t *o, int64_t steps, const mq_tokenizer_t *tok) {
    mq_train_defaults("tiny", o);
    o->batch_size = 4;
    o->seq_len = 32;
    o->steps = steps;
    o->warmup = 5;
    o->lr = 3e-3f;
    o->eval_every = 0;
    o->eval_windows = 4;
    o->tok = tok;
}

#endif
