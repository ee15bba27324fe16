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

#endif
