#define _GNU_SOURCE /* memmem */
/* Tokenizer encoding on arbitrary text (any bytes, valid UTF-8 or not).
 *
 * The first byte picks the tokenizer (one learned by BPE, the same vocabulary with a
 * user-defined and a control token added, or a SentencePiece vocabulary made from it) and
 * whether special tokens are parsed and added; the rest is the text. Checked: GPT-2's
 * pre-tokenization covers the text exactly, piece after piece; every id is in the vocabulary;
 * decode(encode(x)) == x (for SentencePiece: when x is valid UTF-8 without U+2581, and no
 * control token is parsed, the cases where llama.cpp's SentencePiece encoding keeps it too). */
#include "fuzz.h"
#include "miniquant/tokenizer.h"

static mq_tokenizer_t *learned, *with_specials, *spm;

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc;
    (void)argv;
    fuzz_quiet();
    learned = fuzz_learned_tokenizer(320);
    with_specials = fuzz_with_specials(learned);
    spm = fuzz_spm_tokenizer(learned);
    return 0;
}

/* Whether text is valid UTF-8 (no overlongs, surrogates or values past U+10FFFF). */
static int valid_utf8(const char *text, size_t len) {
    const unsigned char *s = (const unsigned char *)text;
    for (size_t i = 0; i < len;) {
        unsigned c = s[i];
        size_t k = c < 0x80 ? 1 : (c & 0xE0) == 0xC0 ? 2 : (c & 0xF0) == 0xE0 ? 3
                 : (c & 0xF8) == 0xF0                ? 4
                                                     : 0;
        if (!k || i + k > len) return 0;
        uint32_t cp = k == 1 ? c : c & (0x7F >> k);
        for (size_t j = 1; j < k; j++) {
            if ((s[i + j] & 0xC0) != 0x80) return 0;
            cp = cp << 6 | (s[i + j] & 0x3F);
        }
        static const uint32_t MIN[5] = {0, 0, 0x80, 0x800, 0x10000};
        if (cp < MIN[k] || cp > 0x10FFFF || (cp >= 0xD800 && cp < 0xE000)) return 0;
        i += k;
    }
    return 1;
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
    const mq_tokenizer_t *t = data[0] & 4 ? spm : data[0] & 1 ? with_specials : learned;
    int flags = (data[0] & 2 ? MQ_TOK_PARSE_SPECIAL : 0) | (data[0] & 8 ? MQ_TOK_ADD_SPECIAL : 0);
    const char *text = (const char *)data + 1;
    size_t len = size - 1;

    mq_error_t err = {0};
    cover_t c = {text, 0};
    FUZZ_CHECK(mq_pretokenize(text, len, next_piece, &c, &err) == MQ_OK, "%s", err.msg);
    FUZZ_CHECK(c.at == len, "the pieces cover %zu of %zu bytes", c.at, len);

    int32_t *ids;
    size_t n;
    FUZZ_CHECK(mq_tokenizer_encode(t, text, len, flags, &ids, &n, &err) == MQ_OK, "%s", err.msg);
    int bos = t == spm && (flags & MQ_TOK_ADD_SPECIAL);
    if (bos) FUZZ_CHECK(n >= 1 && ids[0] == mq_tokenizer_bos(t), "no beginning-of-sequence token");
    /* SentencePiece: a space is 3 bytes of U+2581, and the prefix adds one */
    FUZZ_CHECK(n <= (t == spm ? 3 * len + 3 + bos : len), "%zu ids for %zu bytes", n, len);
    for (size_t i = 0; i < n; i++)
        FUZZ_CHECK(ids[i] >= 0 && ids[i] < mq_tokenizer_n_vocab(t), "id %d", ids[i]);
    char *back;
    size_t blen;
    FUZZ_CHECK(mq_tokenizer_decode(t, ids + bos, n - bos, &back, &blen, &err) == MQ_OK, "%s",
               err.msg);
    if (t != spm || (valid_utf8(text, len) && !memmem(text, len, "\xe2\x96\x81", 3) &&
                     !(flags & MQ_TOK_PARSE_SPECIAL)))
        FUZZ_CHECK(blen == len && !memcmp(back, text, len), "decode(encode(x)) != x");
    free(back);
    free(ids);
    return 0;
}
