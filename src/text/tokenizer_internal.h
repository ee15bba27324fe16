/* miniquant: what the tokenizer's files share (private to src/text). tokenizer.c holds the
 * tokenizer (construction, pre-tokenization, encoding, decoding), tokenizer_spm.c
 * SentencePiece's encoding of a piece of text, bpe_train.c the learning of merges,
 * tokenizer_gguf.c the tokenizer's GGUF keys. */
#ifndef MINIQUANT_TEXT_TOKENIZER_INTERNAL_H
#define MINIQUANT_TEXT_TOKENIZER_INTERNAL_H

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>

#include "hashmap.h"
#include "miniquant/error.h"
#include "miniquant/gguf.h"
#include "miniquant/tokenizer.h"

struct mq_tokenizer {
    mq_tokenizer_model_t model;
    int32_t n_vocab;
    char *text; /* every token's stored text, NUL-terminated, back to back */
    size_t *text_off;
    uint32_t *text_len;
    char *bytes; /* every token's bytes (what it decodes to), back to back */
    size_t *bytes_off;
    uint32_t *bytes_len;
    int32_t *type;    /* MQ_TOKEN_* */
    float *score;     /* SentencePiece: each token's score */
    strmap_t by_text; /* stored text -> id; a repeated text maps to its last id, as in llama.cpp */
    int32_t byte_id[256]; /* SentencePiece: -1 for a byte the vocabulary cannot spell */
    int32_t n_merges;
    int32_t *merge; /* left, right ids of each merge, in rank order */
    u64map_t rank;  /* (left << 32 | right) -> (rank << 32 | result id) */
    int32_t eot, bos, eos, unk;
    int add_bos, add_eos, add_space_prefix;
    int32_t *special; /* control, unknown and user-defined tokens, longest first */
    uint8_t *strip;   /* NULL, or per token MQ_TOK_LSTRIP | MQ_TOK_RSTRIP */
    int32_t n_special;
    /* Pieces already encoded: raw bytes -> (offset << 32 | count) into cache_ids. Encoding is
     * logically const; the lock lets several threads encode with one tokenizer. */
    pthread_rwlock_t cache_lock;
    strmap_t cache;
    int32_t *cache_ids;
    size_t cache_n, cache_cap;
};

/* A special token that takes the whitespace before (LSTRIP) or after (RSTRIP) it in the text,
 * as llama.cpp marks the tokens of some models by name. */
enum { MQ_TOK_LSTRIP = 1, MQ_TOK_RSTRIP = 2 };

/* The id of the token whose stored text is s[0..len), or -1. */
static inline int32_t tok_lookup(const mq_tokenizer_t *t, const char *s, size_t len) {
    uint64_t v;
    return mq_strmap_get(&t->by_text, s, len, &v) ? (int32_t)v : -1;
}

static inline const char *tok_text(const mq_tokenizer_t *t, int32_t id) {
    return t->text + t->text_off[id];
}

/* ---- GPT-2's bytes -> unicode mapping (the way back is in tokenizer.c) ---- */

static inline int byte_is_printable(uint32_t b) {
    return (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174 && b <= 255);
}

/* bytes_to_unicode: the 188 printable bytes stand for themselves, the other 68 (0..32, 127..160,
 * 173) take U+0100.. in byte order, so every token is printable text without spaces. */
static inline uint32_t byte_to_cp(uint8_t b) {
    if (byte_is_printable(b)) return b;
    if (b <= 32) return 256u + b;
    if (b <= 160) return 256u + 33u + (b - 127u);
    return 256u + 67u; /* 173, the soft hyphen */
}

/* The mapped alphabet lies below U+0800: one or two bytes of UTF-8. */
static inline size_t put_cp(char *out, uint32_t cp) {
    if (cp < 0x80) {
        out[0] = (char)cp;
        return 1;
    }
    out[0] = (char)(0xC0 | (cp >> 6));
    out[1] = (char)(0x80 | (cp & 0x3F));
    return 2;
}

/* (left << 32 | right): the key of a pair of token ids. */
static inline uint64_t pair_key(int32_t a, int32_t b) {
    return (uint64_t)(uint32_t)a << 32 | (uint32_t)b;
}

/* Grows *buf (elements of size sz) to hold at least need elements. */
static inline int grow(void **buf, size_t *cap, size_t need, size_t sz) {
    if (need <= *cap) return MQ_OK;
    size_t c = *cap ? *cap : 16;
    while (c < need)
        c *= 2;
    void *p = realloc(*buf, c * sz);
    if (!p) return MQ_ERR_NOMEM;
    *buf = p;
    *cap = c;
    return MQ_OK;
}

/* ---- pre-tokenization (tokenizer.c) ---- */

typedef void (*piece_fn)(const char *start, size_t len, void *ctx);

/* Match data for GPT-2's pattern, which is compiled once per process. */
int mq_pretok_begin(pcre2_match_data **md, mq_error_t *err);
/* Calls piece for each piece of text[0..len), in order; the pieces cover the text. */
int mq_pretok_run(pcre2_match_data *md, const char *text, size_t len, piece_fn piece, void *ctx,
                  mq_error_t *err);

/* ---- construction (tokenizer.c) ---- */

/* Builds a tokenizer from a vocabulary in GGUF's form; every check of mq_tokenizer_from_gguf
 * happens here, so trained and loaded tokenizers go through the same path. */
int mq_tok_build(const mq_gguf_str_t *tokens, const int32_t *types, int64_t n,
                 const mq_gguf_str_t *merges, int64_t n_merges, const char *name,
                 mq_tokenizer_t **out, mq_error_t *err);

/* Builds a SentencePiece tokenizer: tokens, scores (NULL: 0), types (NULL: normal), the
 * settings; checked as mq_tokenizer_from_gguf checks a file. */
int mq_tok_build_spm(const mq_gguf_str_t *tokens, const float *scores, const int32_t *types,
                     int64_t n, const mq_spm_config_t *cfg, const char *name, mq_tokenizer_t **out,
                     mq_error_t *err);

/* ---- SentencePiece encoding (tokenizer_spm.c) ---- */

/* Appends the ids of text[0..len) (one fragment between special tokens) to *ids (*n used, *cap
 * allocated): a space first when prefix, spaces as U+2581, then the bigram merges. MQ_ERR_ARG
 * when a byte needs a byte token the vocabulary lacks (*bad_byte receives it). */
int mq_tok_spm_encode(const mq_tokenizer_t *t, const char *text, size_t len, int prefix,
                      int32_t **ids, size_t *n, size_t *cap, int *bad_byte);

/* Records a message naming the vocabulary's source and returns code (also when err is NULL). */
int mq_tok_vocab_err(mq_error_t *err, int code, const char *name, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* Prefixes err's message with name and returns code. */
int mq_tok_named(mq_error_t *err, int code, const char *name);
#define VOCAB_ERR(code, ...) mq_tok_vocab_err(err, code, name, __VA_ARGS__)

#endif
