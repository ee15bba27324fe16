/* miniquant: English verb forms from WordNet 3.0 (index.verb, verb.exc, cntlist.rev).
 *
 * Lemmas are the single-word ([a-z]+) entries of index.verb. Each inflection has candidate
 * spellings: the regular rule's (3rd singular -s/-es/-ies; past and past participle -ed with
 * e-drop, y -> ied and consonant doubling for consonant-vowel-consonant monosyllables; -ing with
 * e-drop, ie -> ying and the same doubling) and verb.exc's irregular forms, sorted into slots:
 * "-ing" forms, "-s" forms (has), "-ed" forms (past and participle), and the rest by shape: a form
 * ending in -n/-ne where the lemma does not (gone, seen, written, done) is the participle, and of
 * vowel-changing pairs the u-form (begun, drunk, sung) is; any other is past and participle
 * (made, taught, held). verb.exc omits verbs whose past is spelled as the base, so a table of
 * them is built in (put, cut, hit, read, set, ...), as is the come/run family whose participle
 * is the base (come, become, run, overrun ...). A slot's spelling is the candidate used most in
 * the corpus given to the lexicon (learned over learnt, made over maked), a participle-shaped
 * form first for the participle (shown over showed); a regular spelling that is also another
 * verb's form ("seed" for see, "singed" for sing) does not count as used. A word is recognised
 * as a form of the lemma when it is an attested candidate or a chosen spelling; a regular
 * spelling that lost ("maked", "singed" for sing) is not. The irregular past of get, strike and
 * tread is also their participle (has got, has struck). "be" (eight forms, not five) and the
 * modals can, may, must, shall, will are left out.
 * SemCor sense-tag counts (cntlist.rev) say how often each lemma is used as a verb, noun and
 * adjective; the verb-tense builder uses them to tell verbs from nouns. On request the lexicon
 * also reads each lemma's verb frames (index.verb's synsets, data.verb's frame lists). */
#ifndef MINIQUANT_LEXICON_H
#define MINIQUANT_LEXICON_H

#include <stddef.h>
#include <stdint.h>

#include "miniquant/corpus.h"
#include "miniquant/error.h"

/* The inflections of an English verb, as bits of a mask: one spelling may fill several
 * ("walked" is past and past participle; "put" is base, past and past participle). */
enum {
    MQ_INFL_BASE = 1 << 0, /* walk */
    MQ_INFL_3SG = 1 << 1,  /* walks */
    MQ_INFL_PAST = 1 << 2, /* walked */
    MQ_INFL_PP = 1 << 3,   /* walked (past participle) */
    MQ_INFL_ING = 1 << 4,  /* walking */
};
#define MQ_NUM_INFL 5

/* Lemmas and forms are shorter than this many bytes; a longer word is no verb form. */
#define MQ_VERB_MAX_WORD 64

/* 1 when w is one of the n words of list; MQ_IN_LIST takes a static array. */
int mq_word_in_list(const char *w, const char *const *list, size_t n);
#define MQ_IN_LIST(w, list) mq_word_in_list(w, list, sizeof list / sizeof list[0])

typedef struct mq_verb_lexicon mq_verb_lexicon_t;

/* Where WordNet's files are read from: the folder dir (MQ_WORDNET_DIR when NULL), or, when
 * files is set, the n_files files held in memory, each named as in the folder ("index.verb";
 * one that is not there is missing) and called "<dir>/<name>" in messages. */
typedef struct mq_wn_file {
    const char *name;
    const char *data;
    size_t len;
} mq_wn_file_t;
typedef struct mq_wordnet {
    const char *dir;
    const mq_wn_file_t *files;
    size_t n_files;
} mq_wordnet_t;

/* Loads index.verb, verb.exc and cntlist.rev from dir (MQ_WORDNET_DIR when NULL). freq (may be
 * NULL) is the corpus whose word counts choose among spellings; without it, verb.exc's wins. */
int mq_verb_lexicon_load(const char *dir, const mq_corpus_t *freq, mq_verb_lexicon_t **out,
                         mq_error_t *err);
/* The same from wn's folder or memory. */
int mq_verb_lexicon_read(const mq_wordnet_t *wn, const mq_corpus_t *freq, mq_verb_lexicon_t **out,
                         mq_error_t *err);
void mq_verb_lexicon_free(mq_verb_lexicon_t *lx);
size_t mq_verb_lexicon_size(const mq_verb_lexicon_t *lx);
/* The five forms of a lemma, forms[i] for inflection bit 1 << i (pointers into the lexicon).
 * MQ_ERR_NOT_FOUND when lemma is not a verb of the lexicon. */
int mq_verb_paradigm(const mq_verb_lexicon_t *lx, const char *lemma,
                     const char *forms[MQ_NUM_INFL]);
/* The regular rule's spelling of one inflection (a single MQ_INFL_* bit) of a lowercase lemma,
 * irregular verbs not considered. Returns the length (like snprintf), or -1 for a bad argument. */
int mq_verb_regular_form(const char *lemma, int infl, char *buf, size_t n);

/* A lemma of the lexicon, by id (0 .. mq_verb_lexicon_size - 1): its text, the spelling of each
 * inflection (forms[i] for bit 1 << i) and its SemCor sense-tag counts as a verb, a noun and an
 * adjective. The strings point into the lexicon. */
typedef struct mq_verb_lemma {
    const char *lemma;
    const char *forms[MQ_NUM_INFL];
    uint32_t n_verb, n_noun, n_adj;
    uint8_t variant_slots; /* MQ_INFL_* filled by two recognised spellings (learned, learnt) */
    /* after mq_verb_lexicon_load_frames (0 before): the lexicographer file of the most frequent
     * sense (verb.motion is 38) and bit f for each data.verb frame f that applies to the lemma
     * in that sense / in any sense (frame 8 "Somebody ----s something", 14 "Somebody ----s
     * somebody something") */
    uint8_t lexfile_first;
    uint64_t frames_first, frames_any;
} mq_verb_lemma_t;
void mq_verb_lexicon_lemma(const mq_verb_lexicon_t *lx, uint32_t id, mq_verb_lemma_t *out);
/* The id of a lemma; MQ_ERR_NOT_FOUND when it is not a verb of the lexicon. */
int mq_verb_lexicon_id(const mq_verb_lexicon_t *lx, const char *lemma, uint32_t *id);

/* Frame numbers of data.verb, as bits of mq_verb_lemma_t's frames. */
#define MQ_FRAME(f) ((uint64_t)1 << (f))
/* Reads index.verb (each lemma's synsets, most frequent first) and data.verb (the frames of
 * each synset's words, "+ f_num w_num", w_num 00 for every word) from dir (MQ_WORDNET_DIR when
 * NULL). MQ_ERR_IO for a missing file, MQ_ERR_FORMAT ("<file>: line N: ...") for a malformed
 * line, a synset that index.verb names and data.verb lacks or that does not list the lemma. */
int mq_verb_lexicon_load_frames(mq_verb_lexicon_t *lx, const char *dir, mq_error_t *err);
int mq_verb_lexicon_read_frames(mq_verb_lexicon_t *lx, const mq_wordnet_t *wn, mq_error_t *err);

/* The verb that a lowercase word w[0..n) is a recognised form of: 1 with *lemma (its id) and
 * *slots (the MQ_INFL_* the form fills); 0 when the word is no verb form; -1 when it is a form
 * of two or more verbs and the one with the largest SemCor verb count has none, or less than
 * twice the next one's. */
int mq_verb_lexicon_reading(const mq_verb_lexicon_t *lx, const char *w, size_t n, uint32_t *lemma,
                            uint8_t *slots);
/* The MQ_INFL_* that a lowercase word w[0..n) fills as a recognised form of any verb (the union
 * over all verbs: "found" is past and participle of find and the base of found); 0 for none. */
uint8_t mq_verb_lexicon_form_slots(const mq_verb_lexicon_t *lx, const char *w, size_t n);

#endif
