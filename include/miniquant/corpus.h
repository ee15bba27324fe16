/* miniquant: the corpus, the glosses of WordNet 3.0 (Debian package wordnet-base).
 *
 * Each synset of /usr/share/wordnet/data.{noun,verb,adj,adv} is one document: its gloss, the
 * definitions and quoted usage examples after "| " (e.g. `move fast; "he ran to the store"`).
 * Documents are split into train / validation / test by a hash of the synset's identity
 * (part of speech + offset), 90 / 5 / 5: the split of a synset never depends on what else is in
 * the corpus, and test is never seen in training or calibration. */
#ifndef MINIQUANT_CORPUS_H
#define MINIQUANT_CORPUS_H

#include <stddef.h>
#include <stdint.h>

#include "miniquant/error.h"

#define MQ_WORDNET_DIR "/usr/share/wordnet"

typedef enum mq_split { MQ_SPLIT_TRAIN = 0, MQ_SPLIT_VALID = 1, MQ_SPLIT_TEST = 2 } mq_split_t;
#define MQ_NUM_SPLITS 3

typedef struct mq_doc {
    const char *text; /* the gloss, NUL-terminated, without trailing whitespace */
    uint32_t len;
    uint32_t offset;  /* the synset's byte offset in its data file */
    char pos;         /* 'n', 'v', 'a' (adjectives, satellites included) or 'r' */
    uint8_t split;    /* mq_split_t */
} mq_doc_t;

typedef struct mq_corpus {
    mq_doc_t *docs;
    size_t n_docs;
    char **arenas; /* the documents' text, one block per file parsed */
    size_t n_arenas;
} mq_corpus_t;

typedef struct mq_split_stats {
    size_t docs, words, bytes;
} mq_split_stats_t;

/* Which split a synset belongs to. */
mq_split_t mq_corpus_split_of(char pos, uint32_t offset);
const char *mq_split_name(mq_split_t s); /* "train", "valid", "test" */
/* Parses "train"/"valid"/"validation"/"test"; MQ_ERR_ARG listing the names otherwise. */
int mq_split_parse(const char *name, mq_split_t *out, mq_error_t *err);

/* Loads the four data files from dir (MQ_WORDNET_DIR when NULL). A missing installation is an
 * error that names the package to install; a malformed line names the file and line. */
int mq_corpus_load_wordnet(const char *dir, mq_corpus_t *c, mq_error_t *err);
/* Parses one data file's text (for tests and fuzzing); name is used in messages. Appends. */
int mq_corpus_parse_data(const char *text, size_t len, const char *name, char pos_hint,
                         mq_corpus_t *c, mq_error_t *err);
void mq_corpus_free(mq_corpus_t *c);

/* Document, word and byte counts per split (stats has MQ_NUM_SPLITS entries). */
void mq_corpus_stats(const mq_corpus_t *c, mq_split_stats_t *stats);

/* The documents of one split as text, each followed by "\n" (malloc'd, NUL-terminated). This is
 * the text file given to llama.cpp, and, with <|endoftext|> after each document, the stream the
 * model trains on. */
int mq_corpus_split_text(const mq_corpus_t *c, mq_split_t split, char **text, size_t *len,
                         mq_error_t *err);

/* Reads a split's text file (one document per line) back into documents of that split. */
int mq_corpus_load_text(const char *path, mq_split_t split, mq_corpus_t *c, mq_error_t *err);
/* The same from len bytes of text (for tests and fuzzing); name is used in messages. Appends. */
int mq_corpus_parse_text(const char *text, size_t len, const char *name, mq_split_t split,
                         mq_corpus_t *c, mq_error_t *err);

#endif
