/* miniquant: minimal pairs, the verb-tense task and BLiMP files.
 *
 * A minimal-pair set is a list of items, each an attested ("good") sentence and one or more
 * "bad" alternatives that differ from it in one place. A model gets an item right when the good
 * sentence has a strictly higher total log-probability than every alternative (ties are wrong).
 *
 * Sentences are scored as a training document starts: tokens = [<|endoftext|>] + encode(s) (a
 * vocabulary without <|endoftext|> puts its beginning-of-sequence token first, else its
 * end-of-sequence one), and log p(s) = sum over the sentence's tokens of log p(token | the
 * tokens before it). A sentence
 * longer than the model's context is scored in windows of n_ctx tokens advancing by n_ctx / 2,
 * every token once, each with at least n_ctx / 2 tokens of context (only the first window
 * starts at the EOT), so nothing is truncated. */
#ifndef MINIQUANT_PAIRS_H
#define MINIQUANT_PAIRS_H

#include <stddef.h>
#include <stdint.h>

#include "miniquant/corpus.h"
#include "miniquant/error.h"
#include "miniquant/lexicon.h"
#include "miniquant/model.h"
#include "miniquant/strpool.h"
#include "miniquant/tokenizer.h"

/* ---------------------------------------------------------------------------------------------
 * Sets */

typedef struct mq_mp_item {
    const char *good;   /* the attested sentence */
    const char *lemma;  /* verb-tense items: the verb's lemma; NULL otherwise */
    const char *source; /* where the item comes from: a WordNet synset ("02604760-v"), a BLiMP
                           paradigm (its "UID"), or NULL */
    size_t first_bad;   /* its alternatives are set->bad[first_bad .. first_bad + n_bad) */
    uint32_t n_bad;
    uint8_t infl; /* MQ_INFL_* mask of the original verb form; 0 when unknown */
} mq_mp_item_t;

typedef struct mq_mp_set {
    mq_mp_item_t *items;
    size_t n_items;
    const char **bad;  /* all alternatives, item by item */
    uint8_t *bad_infl; /* MQ_INFL_* mask of the form each alternative puts in; 0 when unknown */
    size_t n_bad;
    /* storage, owned by the set */
    size_t items_cap, bad_cap;
    mq_strpool_t strings;
} mq_mp_set_t;

/* Appends an item (strings are copied; lemma, source and bad_infl may be NULL). n_bad >= 1. */
int mq_mp_add(mq_mp_set_t *s, const char *good, const char *const *bad, const uint8_t *bad_infl,
              uint32_t n_bad, const char *lemma, uint8_t infl, const char *source, mq_error_t *err);
void mq_mp_set_free(mq_mp_set_t *s);

/* Inflection names: "base", "3sg", "past", "past_participle", "ing"; a mask is written as its
 * names joined by '+' in that order ("past+past_participle"). mq_infl_format returns the
 * length it needed (like snprintf); mq_infl_parse reads that form back (MQ_ERR_FORMAT for an
 * unknown name). */
const char *mq_infl_name(int bit);
int mq_infl_format(uint8_t mask, char *buf, size_t n);
int mq_infl_parse(const char *text, uint8_t *mask, mq_error_t *err);

/* ---------------------------------------------------------------------------------------------
 * BLiMP jsonl files
 *
 * One JSON object per line with string fields "sentence_good" and "sentence_bad"; other fields
 * are ignored except these optional ones, which miniquant writes:
 *   "item_id"          integer >= 0: consecutive lines with the same item_id (and the same
 *                      sentence_good) are one item with several alternatives; ids never decrease
 *   "source", "lemma"  strings ("UID", BLiMP's paradigm name, is the source when there is none)
 *   "inflection_good", "inflection_bad"   inflection masks in mq_infl_format's form
 * Blank lines are skipped. Rejected with MQ_ERR_FORMAT and "<file>: line N: <what>": invalid
 * JSON or a line that is not one object, a missing, non-string or empty sentence, the same
 * sentence good and bad, a NUL byte (raw or escaped), a line over MQ_BLIMP_MAX_LINE bytes, a
 * file with no pair at all. */
#define MQ_BLIMP_MAX_LINE 65536
#define MQ_BLIMP_MAX_FILE ((size_t)1 << 30)

/* Reads a file into out (which must be zeroed or freed; on failure it is left empty). */
int mq_blimp_read(const char *path, mq_mp_set_t *out, mq_error_t *err);
/* Parses len bytes of jsonl text; name is used in messages. */
int mq_blimp_parse(const char *text, size_t len, const char *name, mq_mp_set_t *out,
                   mq_error_t *err);
/* Writes one line per (good, bad) pair, crash-safely; an item with k alternatives gives k lines
 * sharing its item_id, and pair_id numbers the lines. */
int mq_blimp_write(const char *path, const mq_mp_set_t *s, mq_error_t *err);

/* ---------------------------------------------------------------------------------------------
 * The verb-tense set
 *
 * Built from the usage examples (the double-quoted parts) of the test split's glosses, in corpus
 * order, examples left to right, words left to right; one item per verb form found, so an
 * example can give several items. A word (letters only, not joined to a letter, digit, hyphen
 * or apostrophe; lowercase, or capitalised as the example's first word) is a verb form when
 * the lexicon recognises it; when it is a form of two verbs (found: find / found) the verb with
 * at least twice the other's SemCor verb count is taken, otherwise the word is skipped. Then:
 *  - a non-base form (walks, walked, gone, walking) is kept, except an -s form right after a
 *    determiner, possessive or number ("his plans", "two words"), a plural noun, and a form
 *    that can only be a past there ("a bit"); participles stay ("a broken vase");
 *  - a base form (also "put", "run") is kept only where it cannot be a noun: after a modal or
 *    do ("can go", "didn't like", "please sign"), optionally across one adverb ("will surely
 *    fail"); after "to" or I/you/we/they, or as the example's first word (an imperative), when
 *    SemCor uses the word as a verb at least as often as a noun and adjective together ("to
 *    take" yes, "to school" no).
 * The good sentence is the example as written; the alternatives replace that one word by each
 * other inflection's spelling (base, 3sg, past, past participle, -ing, in that order) that
 * differs from it, capitalised like it. With MQ_VT_SKIP_NOUN_PLURALS, -s forms of verbs that
 * SemCor uses more often as nouns ("papers", "flowers") are skipped too unless right after
 * he/she/it: fewer, cleaner items. WordNet 3.0's test split gives 2,027 items (6,273
 * alternatives) from 1,457 of its 2,468 examples, or 1,792 with MQ_VT_SKIP_NOUN_PLURALS. */
enum { MQ_VT_SKIP_NOUN_PLURALS = 1 };

typedef struct mq_verbtense_stats {
    size_t docs;          /* test-split documents */
    size_t examples;      /* quoted usage examples in them */
    size_t examples_used; /* examples that gave at least one item */
    size_t no_verb_form;  /* examples with no word the lexicon recognises */
    size_t all_skipped;   /* examples whose verb forms were all skipped */
    /* words skipped, by reason */
    size_t skip_ambiguous;    /* a form of two verbs, neither clearly more frequent */
    size_t skip_base_context; /* a base form where it may be a noun or adjective */
    size_t skip_plural_det;   /* an -s form (or a past-only one) after a determiner */
    size_t skip_plural_noun;  /* an -s form of a mostly-noun lemma (MQ_VT_SKIP_NOUN_PLURALS) */
    size_t skip_no_alternative;
    size_t skip_duplicate; /* the same example and word from another synset */
    size_t items;
    size_t items_base; /* items whose original form is a base form */
    size_t alternatives;
} mq_verbtense_stats_t;

/* Builds the set with a loaded lexicon; stats may be NULL. */
int mq_verbtense_build_lex(const mq_corpus_t *c, const mq_verb_lexicon_t *lx, int flags,
                           mq_mp_set_t *out, mq_verbtense_stats_t *stats, mq_error_t *err);
/* Loads the lexicon from wordnet_dir (MQ_WORDNET_DIR when NULL; word counts from c) and builds. */
int mq_verbtense_build(const mq_corpus_t *c, const char *wordnet_dir, int flags, mq_mp_set_t *out,
                       mq_verbtense_stats_t *stats, mq_error_t *err);

/* ---------------------------------------------------------------------------------------------
 * Scoring */

/* Total log-probability (natural log) of each of n sentences under m. Sentences are batched,
 * grouped by length (up to MQ_MP_BATCH per forward); results do not depend on the batching
 * beyond FP32 summation order. An empty sentence scores 0. MQ_ERR_ARG when the tokenizer has no
 * <|endoftext|> or more tokens than the model's vocabulary. Shows a progress bar. */
#define MQ_MP_BATCH 32
int mq_sentence_logprob(mq_gpt_t *m, const mq_tokenizer_t *tok, const char *const *sents, size_t n,
                        double *logp, mq_error_t *err);

typedef struct mq_mp_result {
    size_t n;       /* items */
    size_t correct; /* items whose good sentence beats every alternative */
    double accuracy;
    double ci_low, ci_high; /* 95% Wilson score interval of the accuracy */
    size_t n_sentences;     /* distinct sentences scored */
    double seconds;
} mq_mp_result_t;

/* Scores every item of s; item_correct (may be NULL) receives 1 or 0 per item, for paired
 * comparisons between models. Each distinct sentence is scored once. */
int mq_mp_score(mq_gpt_t *m, const mq_tokenizer_t *tok, const mq_mp_set_t *s, uint8_t *item_correct,
                mq_mp_result_t *r, mq_error_t *err);

/* Wilson score interval of k successes in n trials at z standard deviations (1.96 for 95%);
 * [0, 1] when n is 0. */
void mq_wilson_interval(size_t k, size_t n, double z, double *lo, double *hi);

#endif
