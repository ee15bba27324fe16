/* Tokenizer encoding on arbitrary text (any bytes, valid UTF-8 or not).
 *
 * The first byte picks the tokenizer (one learned by BPE, or the same vocabulary with a
 * user-defined and a control token added) and whether special tokens are parsed; the rest is
 * the text. Checked: GPT-2's pre-tokenization covers the text exactly, piece after piece; every
 * id is in the vocabulary; decode(encode(x)) == x. */
#include "fuzz.h"
#include "miniquant/tokenizer.h"

static mq_tokenizer_t *learned, *with_specials;

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc;
    (void)argv;
    fuzz_quiet();
    learned = fuzz_learned_tokenizer(320);
    with_specials = fuzz_with_specials(learned);
    return 0;
}

typedef struct cover {
    const char *text;
    size_t at;
} cover_t;

static void next_piece(const char *start, size_t len, void *ctx) {
    cover_t *c = ctx;
    FUZZ_CHECK(start == c->text + c->at && len > 0, "piece at %zu does not follow on",
               (size_t)(start - c->text));
    c->at += len;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    const mq_tokenizer_t *t = data[0] & 1 ? with_specials : learned;
    int flags = data[0] & 2 ? MQ_TOK_PARSE_SPECIAL : 0;
    const char *text = (const char *)data + 1;
    size_t len = size - 1;

    mq_error_t err = {0};
    cover_t c = {text, 0};
    FUZZ_CHECK(mq_pretokenize(text, len, next_piece, &c, &err) == MQ_OK, "%s", err.msg);
    FUZZ_CHECK(c.at == len, "the pieces cover %zu of %zu bytes", c.at, len);

    int32_t *ids;
    size_t n;
    FUZZ_CHECK(mq_tokenizer_encode(t, text, len, flags, &ids, &n, &err) == MQ_OK, "%s", err.msg);
    FUZZ_CHECK(n <= len, "%zu ids for %zu bytes", n, len);
    for (size_t i = 0; i < n; i++)
        FUZZ_CHECK(ids[i] >= 0 && ids[i] < mq_tokenizer_n_vocab(t), "id %d", ids[i]);
    char *back;
    size_t blen;
    FUZZ_CHECK(mq_tokenizer_decode(t, ids, n, &back, &blen, &err) == MQ_OK, "%s", err.msg);
    FUZZ_CHECK(blen == len && !memcmp(back, text, len), "decode(encode(x)) != x");
    free(back);
    free(ids);
    return 0;
}
