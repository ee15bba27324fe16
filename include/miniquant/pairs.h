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
    const char *source; /* where the item comes from: a WordNet synset ("02604760-v"), a
                           verb-tense template ("template:agreement"), a BLiMP paradigm (its
                           "UID"), or NULL */
    size_t first_bad;   /* its alternatives are set->bad[first_bad .. first_bad + n_bad) */
    uint32_t n_bad;
    uint8_t infl;     /* MQ_INFL_* mask of the original verb form; 0 when unknown */
    uint8_t category; /* MQ_VT_* (what a verb-tense item tests); MQ_VT_NONE otherwise */
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

/* What a verb-tense item tests. Every alternative of an item is ungrammatical where it stands. */
enum {
    MQ_VT_NONE = 0,        /* not a verb-tense item (a BLiMP paradigm) */
    MQ_VT_AGREEMENT = 1,   /* present tense: 3rd singular against plural (walks / walk) after a
                              subject whose number is certain */
    MQ_VT_NONFINITE = 2,   /* the base form after a modal, infinitival "to" or do-support */
    MQ_VT_PARTICIPLE = 3,  /* the past participle after perfect "have" or passive "be" */
    MQ_VT_PROGRESSIVE = 4, /* the -ing form after progressive "be" */
};
#define MQ_VT_NUM_CATEGORIES 5
/* "none", "agreement", "non_finite", "participle", "progressive"; NULL out of range. */
const char *mq_vt_category_name(int category);
/* The category of a name (MQ_ERR_FORMAT for an unknown one). */
int mq_vt_category_parse(const char *name, uint8_t *category, mq_error_t *err);
/* 1 when the item was built from a template rather than found in text (source "template:..."). */
int mq_mp_item_is_template(const mq_mp_item_t *it);

/* Appends an item (strings are copied; lemma, source and bad_infl may be NULL). n_bad >= 1;
 * category is an MQ_VT_* value. */
int mq_mp_add(mq_mp_set_t *s, const char *good, const char *const *bad, const uint8_t *bad_infl,
              uint32_t n_bad, const char *lemma, uint8_t infl, uint8_t category,
              const char *source, mq_error_t *err);
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
 *   "category"         a verb-tense category's name (mq_vt_category_name; "none" when absent)
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
 * Clean minimal pairs in four categories (MQ_VT_*): every alternative offered is ungrammatical
 * in its sentence; a form that could be grammatical there (another tense of a finite verb, a
 * spelling that is also a noun or adjective where one could stand) is not offered. Two sources:
 *
 * 1. The usage examples (the double-quoted parts) of the test split's glosses, in corpus order,
 *    examples left to right, words left to right. A word (letters only, not joined to a letter,
 *    digit, hyphen or apostrophe; lowercase, or capitalised as the example's first word) that
 *    the lexicon reads as a verb form (a form of two verbs, neither twice as frequent, is
 *    skipped) gives an item when its context makes its form obligatory:
 *    - agreement: a present-tense form right after a subject of certain number: he / she / it
 *      before an -s form, I / we / you / they before a base form that SemCor uses mostly as a
 *      verb, or a noun phrase at the start of the example or a clause, determiner (singular:
 *      this, every, each, another; plural: these, those, many, several, few, both, two ...
 *      ten) + up to two adjectives (index.adj) + a noun (index.noun; its plural by noun.exc
 *      or the regular rule), whose number agrees with the determiner's. The one alternative is
 *      the other number's form.
 *    - non-finite: a base form after a lowercase modal (can could will would shall should may
 *      might must) not preceded by a determiner, after don't / doesn't / didn't or do / does /
 *      did + not, or after "to" when SemCor uses the word mostly as a verb; optionally across
 *      one adverb. Alternatives: the 3rd singular, past, participle and -ing spellings that
 *      differ from it; after "to" no -ing form (to is also a preposition) and no spelling that
 *      is a noun or adjective.
 *    - participle: a past-participle form after have / has / had / having (perfect) or after a
 *      form of be (passive), optionally across one adverb. Alternatives: base, 3rd singular,
 *      past when spelled apart from the participle; after have also -ing; base and 3rd
 *      singular only when neither spelling is a noun or adjective ("was open", "had plans").
 *    - progressive: an -ing form after a form of be. Alternatives: base and 3rd singular when
 *      not a noun or adjective, and the past when spelled apart from the participle ("was
 *      took"); never the participle (a passive is grammatical).
 *    Stricter than the above where a form could still be grammatical: no item after an
 *    inverted subject ("can I walk"), "it" and "you" as subjects only at the start of a clause,
 *    no singular subject right after "that" or "lest" (a subjunctive base form), no singular
 *    noun of time as subject ("this week prices rise"); an alternative spelling that any verb
 *    could fill there ("will found", "has got") is not offered, nor after have or be a past or
 *    -ing spelling that is a noun or adjective.
 *    The same example and word found under two synsets give one item.
 * 2. Templates over WordNet, BLiMP-style, marked by their source ("template:<category>"):
 *    subjects are person nouns (SemCor-frequent single-word nouns of noun.person, singular and
 *    plural), objects artifact nouns (noun.artifact); verbs are frequent single-word verbs whose
 *    most frequent sense has the frame "Somebody ----s something", with no sense taking two
 *    objects ("Somebody ----s somebody something") nor a copular frame, not a verb of state,
 *    perception, cognition, communication or emotion, and every form read back as that verb. So
 *    "The teacher opens the box." / "The teachers open the box." (agreement), "The teacher will
 *    open the box." (non-finite), "The teacher has opened the box." / "The box was opened by
 *    the teacher." (participle), "The teacher is opening the box." (progressive), with the
 *    alternatives of the same category as above. template_items items per category, drawn
 *    with a fixed seed (same WordNet, same set); no sentence twice.
 *
 * The good sentence is as written; an alternative replaces the one word by another inflection's
 * spelling, capitalised like it. Chance for an item with k alternatives is 1 / (k + 1). */
#define MQ_VT_TEMPLATE_ITEMS 450

typedef struct mq_verbtense_stats {
    size_t docs;          /* test-split documents */
    size_t examples;      /* quoted usage examples in them */
    size_t examples_used; /* examples that gave at least one item */
    /* verb forms found in examples and not made into an item, by reason */
    size_t skip_ambiguous;      /* a form of two verbs, neither clearly more frequent */
    size_t skip_context;        /* no context that makes the form obligatory */
    size_t skip_no_alternative; /* every alternative could be grammatical there */
    size_t skip_duplicate;      /* the same example and word from another synset */
    size_t alternatives_dropped; /* alternatives not offered because they could be grammatical */
    size_t from_examples[MQ_VT_NUM_CATEGORIES];  /* items by category */
    size_t from_templates[MQ_VT_NUM_CATEGORIES];
    size_t template_verbs, template_subjects, template_objects; /* lemmas the templates draw on */
    size_t items;
    size_t alternatives;
} mq_verbtense_stats_t;

/* Builds the set from the corpus's test split and the WordNet files in wordnet_dir
 * (MQ_WORDNET_DIR when NULL; the lexicon's word counts from c) with template_items template
 * items per category (MQ_ERR_FORMAT when WordNet gives too few nouns and verbs to draw that many
 * distinct sentences); stats may be NULL. */
int mq_verbtense_build(const mq_corpus_t *c, const char *wordnet_dir, size_t template_items,
                       mq_mp_set_t *out, mq_verbtense_stats_t *stats, mq_error_t *err);

/* ---------------------------------------------------------------------------------------------
 * Scoring */

/* Total log-probability (natural log) of each of n sentences under m. Sentences are batched,
 * grouped by length (up to MQ_MP_BATCH per forward); results do not depend on the batching
 * beyond FP32 summation order. An empty sentence scores 0. MQ_ERR_ARG when the tokenizer has no
 * <|endoftext|> or more tokens than the model's vocabulary. Shows a progress bar. */
#define MQ_MP_BATCH 32
int mq_sentence_logprob(mq_gpt_t *m, const mq_tokenizer_t *tok, const char *const *sents, size_t n,
                        double *logp, mq_error_t *err);

/* The items of one category (MQ_VT_*): counted as the whole set is. */
typedef struct mq_mp_tally {
    size_t n, correct;
    double accuracy, ci_low, ci_high, chance;
} mq_mp_tally_t;

typedef struct mq_mp_result {
    size_t n;       /* items */
    size_t correct; /* items whose good sentence beats every alternative */
    double accuracy;
    double ci_low, ci_high; /* 95% Wilson score interval of the accuracy */
    double chance;          /* expected accuracy of a random scorer: mean of 1 / (1 + n_bad) */
    size_t n_sentences;     /* distinct sentences scored */
    double seconds;
    mq_mp_tally_t by_category[MQ_VT_NUM_CATEGORIES]; /* a category without items has n 0 */
} mq_mp_result_t;

/* Scores every item of s; item_correct (may be NULL) receives 1 or 0 per item, for paired
 * comparisons between models. Each distinct sentence is scored once. */
int mq_mp_score(mq_gpt_t *m, const mq_tokenizer_t *tok, const mq_mp_set_t *s, uint8_t *item_correct,
                mq_mp_result_t *r, mq_error_t *err);

/* Wilson score interval of k successes in n trials at z standard deviations (1.96 for 95%);
 * [0, 1] when n is 0. */
void mq_wilson_interval(size_t k, size_t n, double z, double *lo, double *hi);

#endif
