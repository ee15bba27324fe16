/* What miniquant's libFuzzer targets share.
 *
 * Each target feeds its input to one reader. A reader may refuse the input, but then it must
 * return an MQ_ERR_* code and leave a message that names the input (the spec's "a message
 * naming the file"); anything else, and every crash, leak, out-of-bounds access or undefined
 * behaviour the sanitizers see, stops the run with the input saved. */
#ifndef MINIQUANT_FUZZ_H
#define MINIQUANT_FUZZ_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "miniquant/error.h"
#include "miniquant/gguf.h"
#include "miniquant/lexicon.h"
#include "miniquant/progress.h"
#include "miniquant/tokenizer.h"

/* The name readers are given, which their messages must repeat. */
#define FUZZ_NAME "fuzz-input"

/* Stops the run (libFuzzer saves the input) when cond does not hold. */
#define FUZZ_CHECK(cond, ...)                                                                      \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "%s:%d: check failed: %s: ", __FILE__, __LINE__, #cond);               \
            fprintf(stderr, __VA_ARGS__);                                                          \
            fputc('\n', stderr);                                                                   \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

/* A refusal: a negative status, recorded in err with a message that names the input. */
static inline void fuzz_check_refusal(int rc, const mq_error_t *err, const char *name) {
    FUZZ_CHECK(rc < 0 && rc == err->code, "status %d, recorded %d: %s", rc, err->code, err->msg);
    FUZZ_CHECK(err->msg[0] != '\0', "status %d without a message", rc);
    FUZZ_CHECK(!name || strstr(err->msg, name), "the message does not name '%s': %s", name,
               err->msg);
}

/* The input as a NUL-terminated string (malloc'd). */
static inline char *fuzz_cstr(const uint8_t *data, size_t size) {
    char *s = malloc(size + 1);
    FUZZ_CHECK(s != NULL, "out of memory");
    if (size) memcpy(s, data, size);
    s[size] = '\0';
    return s;
}

/* Progress bars off: the targets call readers millions of times. */
static inline void fuzz_quiet(void) {
    mq_progress_mute(1);
}

/* The input read as a GGUF file, or NULL when the reader refused it (as it must: cleanly). */
static inline mq_gguf_t *fuzz_read_gguf(const uint8_t *data, size_t size) {
    mq_gguf_t *g = NULL;
    mq_error_t err = {0};
    int rc = mq_gguf_read_mem(data, size, FUZZ_NAME, &g, &err);
    if (rc) {
        fuzz_check_refusal(rc, &err, FUZZ_NAME);
        FUZZ_CHECK(g == NULL, "a refused file was returned");
    }
    return g;
}

/* The tokenizers the tokenizer targets and their seeds share: BPE learned on a few sentences
 * (vocab tokens), and the same vocabulary with a user-defined token "<|user|>" (always matched
 * in text) and a control token "<|ctl|>" (matched with MQ_TOK_PARSE_SPECIAL) added. */
static inline mq_tokenizer_t *fuzz_learned_tokenizer(int vocab) {
    static const char *const DOCS[] = {
        "the cat sat on the mat and the dog ran to the store",
        "she walks to the store every morning; he walked there yesterday",
        "they were walking home when it started to rain on the hills",
        "we've gone home, and the children aren't eating their lunch 1234567",
        "caf\xc3\xa9 na\xc3\xafve \xe2\x80\x94 \xe6\x97\xa5\xe6\x9c\xac \xf0\x9f\x98\x80 done",
    };
    size_t n = sizeof DOCS / sizeof DOCS[0], lens[sizeof DOCS / sizeof DOCS[0]];
    for (size_t i = 0; i < n; i++)
        lens[i] = strlen(DOCS[i]);
    mq_tokenizer_t *t = NULL;
    mq_error_t err = {0};
    FUZZ_CHECK(mq_tokenizer_train(DOCS, lens, n, vocab, &t, &err) == MQ_OK, "%s", err.msg);
    return t;
}

static inline mq_tokenizer_t *fuzz_with_specials(const mq_tokenizer_t *t) {
    int32_t n = mq_tokenizer_n_vocab(t), nm = mq_tokenizer_n_merges(t);
    const char **tokens = malloc((size_t)(n + 2) * sizeof *tokens);
    int32_t *types = malloc((size_t)(n + 2) * sizeof *types);
    const char **merges = malloc((size_t)(nm + 1) * sizeof *merges);
    char *mtext = malloc((size_t)(nm + 1) * 64);
    FUZZ_CHECK(tokens && types && merges && mtext, "out of memory");
    for (int32_t i = 0; i < n; i++) {
        tokens[i] = mq_tokenizer_token_text(t, i);
        types[i] = mq_tokenizer_token_type(t, i);
    }
    tokens[n] = "<|user|>";
    types[n] = MQ_TOKEN_USER_DEFINED;
    tokens[n + 1] = "<|ctl|>";
    types[n + 1] = MQ_TOKEN_CONTROL;
    for (int32_t r = 0; r < nm; r++) {
        int32_t a, b;
        FUZZ_CHECK(mq_tokenizer_merge(t, r, &a, &b) == MQ_OK, "merge %d", r);
        int len = snprintf(mtext + 64 * r, 64, "%s %s", mq_tokenizer_token_text(t, a),
                           mq_tokenizer_token_text(t, b));
        FUZZ_CHECK(len < 64, "merge %d is too long", r);
        merges[r] = mtext + 64 * r;
    }
    mq_tokenizer_t *out = NULL;
    mq_error_t err = {0};
    FUZZ_CHECK(mq_tokenizer_from_vocab(tokens, types, n + 2, merges, nm, "specials", &out, &err) ==
                   MQ_OK,
               "%s", err.msg);
    free(tokens);
    free(types);
    free(merges);
    free(mtext);
    return out;
}

/* A SentencePiece vocabulary made from a learned BPE one: <unk>, <s>, </s>, the 256 byte tokens
 * <0xXX>, U+2581 alone, then every learned token's bytes with spaces as U+2581, scored so that
 * earlier merges rank higher (and every tenth ties with the one before, so ties happen). */
static inline mq_tokenizer_t *fuzz_spm_tokenizer(const mq_tokenizer_t *bpe) {
    int32_t n = mq_tokenizer_n_vocab(bpe), m = 0;
    const char **tokens = malloc((size_t)(n + 260) * sizeof *tokens);
    float *scores = malloc((size_t)(n + 260) * sizeof *scores);
    int32_t *types = malloc((size_t)(n + 260) * sizeof *types);
    char *text = malloc((size_t)(n + 260) * 64);
    FUZZ_CHECK(tokens && scores && types && text, "out of memory");
    static const char *const SPECIAL[3] = {"<unk>", "<s>", "</s>"};
    for (int k = 0; k < 3; k++, m++)
        tokens[m] = SPECIAL[k], scores[m] = 0, types[m] = k ? MQ_TOKEN_CONTROL : MQ_TOKEN_UNKNOWN;
    for (int b = 0; b < 256; b++, m++) {
        snprintf(text + 64 * m, 64, "<0x%02X>", b);
        tokens[m] = text + 64 * m, scores[m] = 0, types[m] = MQ_TOKEN_BYTE;
    }
    tokens[m] = "\xe2\x96\x81", scores[m] = -1e6f, types[m++] = MQ_TOKEN_NORMAL;
    for (int32_t id = 256; id < n; id++) {
        if (mq_tokenizer_token_type(bpe, id) != MQ_TOKEN_NORMAL) continue;
        char *bytes;
        size_t len;
        FUZZ_CHECK(mq_tokenizer_decode(bpe, &id, 1, &bytes, &len, NULL) == MQ_OK, "decode");
        char *o = text + 64 * m;
        size_t k = 0;
        for (size_t i = 0; i < len && k + 4 < 64; i++) {
            if (bytes[i] == ' ') {
                memcpy(o + k, "\xe2\x96\x81", 3);
                k += 3;
            } else {
                o[k++] = bytes[i];
            }
        }
        o[k] = '\0';
        free(bytes);
        tokens[m] = o, scores[m] = -(float)(id % 10 == 0 ? id - 1 : id);
        types[m] = MQ_TOKEN_NORMAL;
        m++;
    }
    mq_spm_config_t cfg = {.add_space_prefix = 1, .add_bos = 1, .bos = 1, .eos = 2, .unk = 0};
    mq_tokenizer_t *out = NULL;
    mq_error_t err = {0};
    FUZZ_CHECK(mq_tokenizer_from_spm_vocab(tokens, scores, types, m, &cfg, "spm", &out, &err) ==
                   MQ_OK,
               "%s", err.msg);
    free(tokens);
    free(scores);
    free(types);
    free(text);
    return out;
}

/* Readers of a folder of files (WordNet's): the input holds the files in order, separated by
 * lines "@@@" (missing parts are empty files); the reader reads them from memory, named as in
 * the folder, under the folder name FUZZ_NAME. */
#define FUZZ_SEPARATOR "\n@@@\n"
#define FUZZ_MAX_FILES 16

/* Splits the input into the n files named names[0 .. n); files[] must hold n entries. */
static inline mq_wordnet_t fuzz_wordnet_split(const uint8_t *data, size_t size,
                                              const char *const *names, int n,
                                              mq_wn_file_t *files) {
    FUZZ_CHECK(n > 0 && n <= FUZZ_MAX_FILES, "%d files", n);
    const size_t sep_len = sizeof FUZZ_SEPARATOR - 1;
    const uint8_t *p = data, *end = data + size;
    for (int k = 0; k < n; k++) {
        const uint8_t *stop = end;
        if (k < n - 1)
            for (const uint8_t *q = p; q + sep_len <= end; q++)
                if (!memcmp(q, FUZZ_SEPARATOR, sep_len)) {
                    stop = q;
                    break;
                }
        files[k] = (mq_wn_file_t){names[k], (const char *)p, (size_t)(stop - p)};
        p = stop < end ? stop + sep_len : end;
    }
    return (mq_wordnet_t){.dir = FUZZ_NAME, .files = files, .n_files = (size_t)n};
}

#endif
