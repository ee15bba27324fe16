/* miniquant: reading WordNet 3.0's files (private to src/text): their lines with line numbers
 * for messages, and the synset lines of the data.* files.
 *
 * A missing file is MQ_ERR_IO naming its path (and the Debian package); anything malformed is
 * MQ_ERR_FORMAT as "<path>: line N: <what>". */
#ifndef MINIQUANT_WORDNET_FILE_H
#define MINIQUANT_WORDNET_FILE_H

#include <stddef.h>
#include <stdint.h>

#include "miniquant/error.h"
#include "miniquant/lexicon.h"

typedef struct mq_wn_lines {
    char *text;
    size_t len, pos, lineno;
    const char *line; /* the current line, without its newline and trailing spaces */
    size_t n;
    char path[4200];
} mq_wn_lines_t;

/* The folder wn's files are named in (MQ_WORDNET_DIR when it gives none). */
const char *mq_wn_dir(const mq_wordnet_t *wn);
/* Reads wn's file name whole, from its folder or its memory (a NUL byte in it is an error). */
int mq_wn_lines_open(mq_wn_lines_t *f, const mq_wordnet_t *wn, const char *name, mq_error_t *err);
/* Moves to the next line; 0 at the end of the file. */
int mq_wn_lines_next(mq_wn_lines_t *f);
/* 1 for a line to skip: empty, or a licence header line (two leading spaces). */
int mq_wn_lines_is_header(const mq_wn_lines_t *f);
/* Splits the current line at spaces into up to max fields (start, length); returns how many. */
int mq_wn_lines_fields(const mq_wn_lines_t *f, const char **start, size_t *len, int max);
/* MQ_ERR_FORMAT with "<path>: line N: " and the message. */
int mq_wn_lines_error(const mq_wn_lines_t *f, mq_error_t *err, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void mq_wn_lines_close(mq_wn_lines_t *f);

/* Reads an unsigned number written in base (10 or 16) in s[0..n); 0 when it is not one (or
 * does not fit in 32 bits). */
int mq_wn_number(const char *s, size_t n, int base, uint32_t *out);

/* A line of cntlist.rev, "lemma%ss_type:lex_filenum:lex_id:head_word:head_id sense_number
 * tag_cnt": the lemma (pointing into the line), its synset type (1 noun, 2 verb, 3 adjective,
 * 4 adverb, 5 adjective satellite) and its SemCor tag count. */
int mq_wn_count_parse(const mq_wn_lines_t *f, const char **lemma, size_t *lemma_len, int *ss_type,
                      uint32_t *count, mq_error_t *err);

/* Reads wn's cntlist.rev and adds each line's count, saturating, to the counter slot() returns
 * for its lemma and synset type (NULL: not counted). */
typedef uint32_t *(*mq_wn_count_slot_fn)(void *ctx, const char *lemma, size_t lemma_len,
                                         int ss_type);
int mq_wn_counts_add(const mq_wordnet_t *wn, mq_wn_count_slot_fn slot, void *ctx, mq_error_t *err);

/* One synset line of a data.* file:
 *   offset lex_filenum ss_type w_cnt (word lex_id)*w_cnt p_cnt (symbol offset pos src_tgt)*p_cnt
 *   [f_cnt (+ f_num w_num)*f_cnt]  | gloss
 * (frames only in data.verb). */
#define MQ_WN_MAX_WORDS 256 /* w_cnt is two hex digits */
typedef struct mq_wn_synset {
    uint32_t offset;
    uint32_t lexfile; /* lexicographer file: noun.person is 18, noun.artifact 6, verb.motion 38 */
    char ss_type;     /* n v a s r */
    int n_words;
    const char *word[MQ_WN_MAX_WORDS]; /* as written (case kept, adjective markers cut) */
    size_t word_len[MQ_WN_MAX_WORDS];
    int usage;                        /* it has a usage-domain pointer (";u": slang, slurs...) */
    uint64_t frames[MQ_WN_MAX_WORDS]; /* verbs: bit f when frame f (1..63) applies to word i */
} mq_wn_synset_t;

/* Parses the current line of f (not a header line) into s; the words point into the line. */
int mq_wn_synset_parse(const mq_wn_lines_t *f, mq_wn_synset_t *s, mq_error_t *err);

/* The synset offsets of an index.* line "lemma pos synset_cnt p_cnt (symbol)*p_cnt sense_cnt
 * tagsense_cnt (offset)*synset_cnt", most frequent sense first: *first is the first offset's
 * field among the line's fields (fs, fl from mq_wn_lines_fields, k of them), *n their count. */
int mq_wn_index_offsets(const mq_wn_lines_t *f, const char *const *fs, const size_t *fl, int k,
                        int *first, int *n, mq_error_t *err);

#endif
