/* The tokenizer loader (mq_tokenizer_from_gguf, what every tokenizer and model file goes
 * through) on arbitrary bytes.
 *
 * A BPE vocabulary it accepts must keep the tokenizer's promise, decode(encode(x)) == x for
 * every byte string (tried on the input's own bytes, with and without special tokens). A
 * SentencePiece vocabulary, whose promise depends on its tokens, must encode any text to ids in
 * the vocabulary (or refuse a byte it has no token for) and decode them. Both must survive being
 * stored and loaded again: the same tokens, merges, special ids and encodings. */
#include "fuzz.h"
#include "miniquant/tokenizer.h"

static const char SAMPLE[] = "he walked to the store; \"she writes\" <|endoftext|> 42\n\xff\xfe";

/* Encodes text, checks the ids and the round trip; returns the ids (malloc'd). */
static int32_t *round_trip(const mq_tokenizer_t *t, const char *text, size_t len, int flags,
                           size_t *n) {
    int32_t *ids;
    char *back;
    size_t blen;
    mq_error_t err = {0};
    int spm = mq_tokenizer_model(t) == MQ_TOKENIZER_SPM;
    int rc = mq_tokenizer_encode(t, text, len, flags, &ids, n, &err);
    if (spm && rc == MQ_ERR_ARG && strstr(err.msg, "no token for")) return NULL;
    FUZZ_CHECK(rc == MQ_OK, "encode: %s", err.msg);
    for (size_t i = 0; i < *n; i++)
        FUZZ_CHECK(ids[i] >= 0 && ids[i] < mq_tokenizer_n_vocab(t), "id %d", ids[i]);
    FUZZ_CHECK(mq_tokenizer_decode(t, ids, *n, &back, &blen, &err) == MQ_OK, "decode: %s",
               err.msg);
    if (!spm)
        FUZZ_CHECK(blen == len && !memcmp(back, text, len),
                   "decode(encode(x)) != x (%zu -> %zu bytes)", len, blen);
    free(back);
    return ids;
}

static void store_and_reload(const mq_tokenizer_t *t) {
    mq_gguf_t *g = mq_gguf_new(), *g2 = NULL;
    mq_error_t err = {0};
    FUZZ_CHECK(g && mq_tokenizer_to_gguf(t, g, &err) == MQ_OK, "store: %s", err.msg);
    void *buf;
    size_t len;
    FUZZ_CHECK(mq_gguf_write_mem(g, &buf, &len, &err) == MQ_OK, "write: %s", err.msg);
    FUZZ_CHECK(mq_gguf_read_mem(buf, len, "stored", &g2, &err) == MQ_OK, "read: %s", err.msg);
    mq_tokenizer_t *t2 = NULL;
    FUZZ_CHECK(mq_tokenizer_from_gguf(g2, "stored", &t2, &err) == MQ_OK,
               "a stored tokenizer does not load: %s", err.msg);
    FUZZ_CHECK(mq_tokenizer_n_vocab(t2) == mq_tokenizer_n_vocab(t) &&
                   mq_tokenizer_n_merges(t2) == mq_tokenizer_n_merges(t) &&
                   mq_tokenizer_eot(t2) == mq_tokenizer_eot(t) &&
                   mq_tokenizer_bos(t2) == mq_tokenizer_bos(t) &&
                   mq_tokenizer_eos(t2) == mq_tokenizer_eos(t) &&
                   mq_tokenizer_model(t2) == mq_tokenizer_model(t),
               "the stored tokenizer differs");
    for (int32_t i = 0; i < mq_tokenizer_n_vocab(t); i++)
        FUZZ_CHECK(!strcmp(mq_tokenizer_token_text(t, i), mq_tokenizer_token_text(t2, i)) &&
                       mq_tokenizer_token_type(t, i) == mq_tokenizer_token_type(t2, i),
                   "token %d differs", i);
    size_t na, nb;
    int32_t *a = round_trip(t, SAMPLE, sizeof SAMPLE - 1, MQ_TOK_PARSE_SPECIAL, &na);
    int32_t *b = round_trip(t2, SAMPLE, sizeof SAMPLE - 1, MQ_TOK_PARSE_SPECIAL, &nb);
    FUZZ_CHECK((!a && !b) || (a && b && na == nb && !memcmp(a, b, na * sizeof *a)),
               "the stored tokenizer encodes otherwise");
    free(a);
    free(b);
    mq_tokenizer_free(t2);
    mq_gguf_free(g2);
    mq_gguf_free(g);
    free(buf);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    mq_gguf_t *g = fuzz_read_gguf(data, size);
    if (!g) return 0;
    mq_error_t err = {0};
    mq_tokenizer_t *t = NULL;
    int rc = mq_tokenizer_from_gguf(g, FUZZ_NAME, &t, &err);
    if (rc) {
        fuzz_check_refusal(rc, &err, FUZZ_NAME);
        FUZZ_CHECK(t == NULL, "a refused tokenizer was returned");
    } else {
        size_t n;
        free(round_trip(t, (const char *)data, size, 0, &n));
        free(round_trip(t, (const char *)data, size, MQ_TOK_PARSE_SPECIAL, &n));
        store_and_reload(t);
        mq_tokenizer_free(t);
    }
    mq_gguf_free(g);
    return 0;
}
