/* miniquant: English word classes from WordNet 3.0: which spellings are nouns (singular or
 * plural) and adjectives, and the common nouns of a lexicographer file (people, artifacts)
 * with their plurals and SemCor counts.
 *
 * Read from index.noun and index.adj (single-word lemmas of lowercase letters), noun.exc and
 * adj.exc (irregular plurals "children child", comparatives "better good"), cntlist.rev
 * (SemCor sense-tag counts) and data.noun (each sense's lexicographer file, how its words are
 * written, its usage labels). A word is
 *   a noun       when index.noun has it as a lemma;
 *   a plural     when noun.exc lists it as a plural, or WordNet's rules take it back to a noun
 *                lemma (-s, -ses -> -s, -xes -> -x, -zes -> -z, -ches -> -ch, -shes -> -sh,
 *                -men -> -man, -ies -> -y);
 *   an adjective when index.adj has it, adj.exc lists it, or -er / -est (after an e: -r / -st)
 *                takes it back to an adjective lemma (lower, finest).
 * Missing files are MQ_ERR_IO naming the path; malformed lines MQ_ERR_FORMAT "<file>: line N". */
#ifndef MINIQUANT_WORDCLASS_H
#define MINIQUANT_WORDCLASS_H

#include <stddef.h>
#include <stdint.h>

#include "miniquant/error.h"
#include "miniquant/lexicon.h"

enum {
    MQ_WORD_NOUN = 1 << 0,   /* a noun lemma: box, walking, glasses */
    MQ_WORD_PLURAL = 1 << 1, /* a noun's plural: boxes, children, glasses */
    MQ_WORD_ADJ = 1 << 2,    /* an adjective: open, broken, lower */
};

/* Lexicographer files of nouns (data.noun's second field). */
enum {
    MQ_LEX_NOUN_ARTIFACT = 6,
    MQ_LEX_NOUN_GROUP = 14,
    MQ_LEX_NOUN_PERSON = 18,
    MQ_LEX_NOUN_TIME = 28,
};

typedef struct mq_wordclass mq_wordclass_t;

/* Loads the six files from dir (MQ_WORDNET_DIR when NULL). */
int mq_wordclass_load(const char *dir, mq_wordclass_t **out, mq_error_t *err);
/* The same from wn's folder or memory (lexicon.h). */
int mq_wordclass_read(const mq_wordnet_t *wn, mq_wordclass_t **out, mq_error_t *err);
void mq_wordclass_free(mq_wordclass_t *wc);

/* The MQ_WORD_* classes of a lowercase word w[0..n); 0 when it is none of them. */
unsigned mq_wordclass_of(const mq_wordclass_t *wc, const char *w, size_t n);
/* Bit f for each lexicographer file f of the senses of noun lemma w[0..n); 0 when w is none. */
uint64_t mq_wordclass_noun_lexfiles(const mq_wordclass_t *wc, const char *w, size_t n);

/* The plural of a lowercase noun: noun.exc's when it lists one, else the regular rule (-es
 * after s x z ch sh, consonant + y -> -ies, -man -> -men but human, shaman, talisman, -s).
 * Returns the length (like snprintf), or -1 for an empty or non-lowercase word. */
int mq_wordclass_plural(const mq_wordclass_t *wc, const char *noun, char *buf, size_t n);

/* A common noun: a lemma of at least three letters that SemCor uses as a noun, whose most
 * frequent sense (index.noun's first) is written in lowercase and has no usage label (";u":
 * slang, slurs, obscenities), none of whose senses is a group (noun.group, whose number is not
 * certain: "the youth are"), that is no plural itself and does not end in a plural's -s (but
 * -ss, -us, -is), and whose plural is spelled apart from it. */
typedef struct mq_common_noun {
    const char *singular, *plural;
    uint32_t n_noun, n_adj; /* SemCor sense-tag counts as a noun and as an adjective */
} mq_common_noun_t;
/* The common nouns whose most frequent sense is in lexicographer file lexfile, by decreasing
 * noun count, then alphabetically; *out points into wc. Returns how many. */
size_t mq_wordclass_common_nouns(const mq_wordclass_t *wc, uint32_t lexfile,
                                 const mq_common_noun_t **out);

#endif
