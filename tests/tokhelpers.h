/* What the tokenizer tests share. Header-only. */
#ifndef MINIQUANT_TESTS_TOKHELPERS_H
#define MINIQUANT_TESTS_TOKHELPERS_H

#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "miniquant/gguf.h"
#include "miniquant/tokenizer.h"

/* Fails the test unless text encodes (with flags) to exactly want[0..n). */
static inline void expect_ids(const mq_tokenizer_t *t, const char *text, int flags,
                              const int32_t *want, size_t n) {
    int32_t *ids;
    size_t n_ids;
    mq_error_t err = {0};
    cr_assert_eq(mq_tokenizer_encode(t, text, strlen(text), flags, &ids, &n_ids, &err), MQ_OK, "%s",
                 err.msg);
    cr_assert_eq(n_ids, n, "\"%s\": %zu ids, expected %zu", text, n_ids, n);
    for (size_t i = 0; i < n; i++)
        cr_assert_eq(ids[i], want[i], "\"%s\": id %zu is %d, expected %d", text, i, ids[i],
                     want[i]);
    free(ids);
}

/* Fails the test unless loading the tokenizer of g is refused with code and a message naming
 * "bad.gguf" and part. Frees g. */
static inline void expect_rejected(mq_gguf_t *g, int code, const char *part) {
    mq_tokenizer_t *t = (mq_tokenizer_t *)1;
    mq_error_t err = {0};
    cr_assert_eq(mq_tokenizer_from_gguf(g, "bad.gguf", &t, &err), code, "%s", err.msg);
    cr_assert_null(t);
    cr_assert(strstr(err.msg, "bad.gguf") && strstr(err.msg, part), "message: %s", err.msg);
    mq_gguf_free(g);
}

#endif
