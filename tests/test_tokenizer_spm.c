#include <criterion/criterion.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "miniquant/gguf.h"
#include "miniquant/rng.h"
#include "miniquant/tokenizer.h"
#include "tokhelpers.h"
#include "cli.h"

#define SP "\xe2\x96\x81" /* U+2581, SentencePiece's space */

/* ---- a hand-made vocabulary ----
 * 0 <unk>, 1 <s>, 2 </s>, 3 .. 258 the byte tokens <0x00> .. <0xFF>, then normal tokens. */
enum { BYTE0 = 3, T_SP = 259, T_A, T_B, T_C, T_AB, T_BC, T_SPA, T_SPAB, T_BA, N_HAND };

static const char *const HAND_NORMAL[] = {SP, "a", "b", "c", "ab", "bc", SP "a", SP "ab", "ba"};
static const float HAND_SCORE[] = {-1.0f, -2.0f, -2.0f, -2.0f, -3.0f, -2.5f, -1.5f, -4.0f, -3.0f};

static mq_tokenizer_t *hand_vocab(int with_bytes) {
    static char bytes[256][8];
    const char *tokens[N_HAND];
    float scores[N_HAND];
    int32_t types[N_HAND];
    tokens[0] = "<unk>", types[0] = MQ_TOKEN_UNKNOWN;
    tokens[1] = "<s>", types[1] = MQ_TOKEN_CONTROL;
    tokens[2] = "</s>", types[2] = MQ_TOKEN_CONTROL;
    for (int b = 0; b < 256; b++) {
        snprintf(bytes[b], sizeof bytes[b], with_bytes ? "<0x%02X>" : "[unused%d]", b);
        tokens[BYTE0 + b] = bytes[b];
        types[BYTE0 + b] = with_bytes ? MQ_TOKEN_BYTE : MQ_TOKEN_UNUSED;
    }
    for (int i = 0; i < N_HAND - T_SP; i++) {
        tokens[T_SP + i] = HAND_NORMAL[i];
        types[T_SP + i] = MQ_TOKEN_NORMAL;
    }
    for (int i = 0; i < N_HAND; i++)
        scores[i] = i >= T_SP ? HAND_SCORE[i - T_SP] : 0.0f;
    mq_spm_config_t cfg = {.add_space_prefix = 1, .add_bos = 1, .bos = 1, .eos = 2, .unk = 0};
    mq_tokenizer_t *t = NULL;
    mq_error_t err = {0};
    cr_assert_eq(mq_tokenizer_from_spm_vocab(tokens, scores, types, N_HAND, &cfg, "hand", &t, &err),
                 MQ_OK, "%s", err.msg);
    return t;
}

static void expect_decoded(const mq_tokenizer_t *t, const int32_t *ids, size_t n,
                           const char *want) {
    char *text;
    size_t len;
    mq_error_t err = {0};
    cr_assert_eq(mq_tokenizer_decode(t, ids, n, &text, &len, &err), MQ_OK, "%s", err.msg);
    cr_assert(len == strlen(want) && !memcmp(text, want, len), "decoded \"%s\", expected \"%s\"",
              text, want);
    free(text);
}

Test(spm, known_vocabulary) {
    mq_tokenizer_t *t = hand_vocab(1);
    cr_assert_eq(mq_tokenizer_model(t), MQ_TOKENIZER_SPM);
    cr_assert_str_eq(mq_tokenizer_model_name(t), "llama");
    cr_assert(mq_tokenizer_bos(t) == 1 && mq_tokenizer_eos(t) == 2 && mq_tokenizer_eot(t) == -1);
    /* "abc" is "▁abc": candidates ▁a (-1.5), bc (-2.5), ab (-3). ▁a first, then bc; ab is then
     * stale and ▁a+bc is no token. */
    expect_ids(t, "abc", 0, (int32_t[]){T_SPA, T_BC}, 2);
    /* "bab": ba and ab tie at -3; the leftmost, ba, goes first. "▁b" is no token. */
    expect_ids(t, "bab", 0, (int32_t[]){T_SP, T_BA, T_B}, 3);
    /* Spaces are U+2581 and the first takes the prefix: "▁a▁b". */
    expect_ids(t, "a b", 0, (int32_t[]){T_SPA, T_SP, T_B}, 3);
    expect_ids(t, " a", 0, (int32_t[]){T_SP, T_SPA}, 2);
    /* No token for "é": its bytes' tokens (byte fallback). */
    expect_ids(t, "\xc3\xa9", 0, (int32_t[]){T_SP, BYTE0 + 0xC3, BYTE0 + 0xA9}, 3);
    /* A lead byte cut short by the text's end is one symbol of the bytes that are left. */
    expect_ids(t,
               "\xe2"
               "a",
               0, (int32_t[]){T_SP, BYTE0 + 0xE2, BYTE0 + 'a'}, 3);
    expect_ids(t, "", 0, NULL, 0);
    expect_ids(t, "", MQ_TOK_ADD_SPECIAL, (int32_t[]){1}, 1);
    expect_ids(t, "a", MQ_TOK_ADD_SPECIAL, (int32_t[]){1, T_SPA}, 2);
    /* Control texts are text unless asked for; after a control token the prefix comes again. */
    expect_ids(t, "<s>", 0, (int32_t[]){T_SP, BYTE0 + '<', BYTE0 + 's', BYTE0 + '>'}, 4);
    expect_ids(t, "a</s>b", MQ_TOK_PARSE_SPECIAL, (int32_t[]){T_SPA, 2, T_SP, T_B}, 4);
    expect_ids(t, "</s></s>", MQ_TOK_PARSE_SPECIAL, (int32_t[]){2, 2}, 2);
    expect_ids(t, "<unk>", MQ_TOK_PARSE_SPECIAL, (int32_t[]){0}, 1);
    /* Decoding: U+2581 is a space, the first token's leading space is the prefix's. */
    expect_decoded(t, (int32_t[]){T_SPA, T_BC}, 2, "abc");
    expect_decoded(t, (int32_t[]){T_SP, T_SPA}, 2, " a");
    expect_decoded(t, (int32_t[]){1, T_SPA}, 2, "<s> a");
    expect_decoded(t, (int32_t[]){T_SP, BYTE0 + 0xC3, BYTE0 + 0xA9}, 3, "\xc3\xa9");
    mq_tokenizer_free(t);
}

Test(spm, a_byte_without_a_token_is_an_error) {
    mq_tokenizer_t *t = hand_vocab(0);
    int32_t *ids;
    size_t n;
    mq_error_t err = {0};
    cr_assert_eq(mq_tokenizer_encode(t, "ad", 2, 0, &ids, &n, &err), MQ_ERR_ARG);
    cr_assert(strstr(err.msg, "0x64"), "%s", err.msg);
    expect_ids(t, "ab", 0, (int32_t[]){T_SPAB}, 1); /* ▁a (-1.5), then ▁a + b = ▁ab (-4) */
    /* unused tokens decode to nothing, as llama.cpp's token_to_piece */
    expect_decoded(t, (int32_t[]){T_A, BYTE0 + 7}, 2, "a");
    mq_tokenizer_free(t);
}

/* ---- the bigram merges against a direct reading of the rule ---- */

typedef struct naive_vocab {
    const char **text;
    const float *score;
    int n;
} naive_vocab_t;

static int naive_lookup(const naive_vocab_t *v, const char *s, size_t len) {
    for (int i = 0; i < v->n; i++)
        if (strlen(v->text[i]) == len && !memcmp(v->text[i], s, len)) return i;
    return -1;
}

/* Merges the best adjacent pair (highest score, leftmost on ties) until none is a token, scanning
 * every pair each time; symbols that are no token become byte tokens (ids 0..255 here). */
static size_t naive_encode(const naive_vocab_t *v, const char *text, int32_t *out) {
    if (!*text) return 0; /* llama.cpp keeps no empty fragment */
    char s[1024];
    size_t sl = 3;
    memcpy(s, SP, 3);
    for (const char *p = text; *p; p++) {
        if (*p == ' ') {
            memcpy(s + sl, SP, 3);
            sl += 3;
        } else {
            s[sl++] = *p;
        }
    }
    size_t start[1024], len[1024], n = 0;
    for (size_t o = 0; o < sl; n++) {
        unsigned char b = (unsigned char)s[o];
        size_t k = b < 0xC0 ? 1 : b < 0xE0 ? 2 : b < 0xF0 ? 3 : 4;
        if (k > sl - o) k = sl - o;
        start[n] = o, len[n] = k;
        o += k;
    }
    for (;;) {
        int best = -1;
        float bs = 0;
        for (size_t i = 0; i + 1 < n; i++) {
            int id = naive_lookup(v, s + start[i], len[i] + len[i + 1]);
            if (id >= 0 && (best < 0 || v->score[id] > bs)) best = (int)i, bs = v->score[id];
        }
        if (best < 0) break;
        len[best] += len[best + 1];
        memmove(start + best + 1, start + best + 2, (n - best - 2) * sizeof *start);
        memmove(len + best + 1, len + best + 2, (n - best - 2) * sizeof *len);
        n--;
    }
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        int id = naive_lookup(v, s + start[i], len[i]);
        if (id >= 0) {
            out[k++] = id;
        } else {
            for (size_t j = 0; j < len[i]; j++)
                out[k++] = (unsigned char)s[start[i] + j];
        }
    }
    return k;
}

Test(spm, merges_match_a_direct_reading_of_the_rule) {
    static const char *const alphabet[] = {"a", "b", "c", SP, "\xc3\xa9"};
    mq_rng_t r;
    mq_rng_seed(&r, 11);
    for (int round = 0; round < 20; round++) {
        /* 256 byte tokens, the five symbols, then up to 60 distinct strings of 2..4 symbols with
         * scores from three values, so that ties happen. */
        static char bytes[256][8], extra[64][16];
        const char *text[256 + 5 + 64];
        float score[256 + 5 + 64];
        int32_t type[256 + 5 + 64];
        int n = 0;
        for (int b = 0; b < 256; b++, n++) {
            snprintf(bytes[b], sizeof bytes[b], "<0x%02X>", b);
            text[n] = bytes[b], score[n] = 0, type[n] = MQ_TOKEN_BYTE;
        }
        for (int a = 0; a < 5; a++, n++)
            text[n] = alphabet[a], score[n] = -10.0f - a, type[n] = MQ_TOKEN_NORMAL;
        naive_vocab_t v = {text, score, 0};
        for (int e = 0; e < 60; e++) {
            int k = 2 + (int)mq_rng_below(&r, 3);
            extra[e][0] = 0;
            for (int j = 0; j < k; j++)
                strcat(extra[e], alphabet[mq_rng_below(&r, 5)]);
            v.n = n;
            if (naive_lookup(&v, extra[e], strlen(extra[e])) >= 0) continue;
            text[n] = extra[e], score[n] = -(float)(1 + mq_rng_below(&r, 3)),
            type[n] = MQ_TOKEN_NORMAL;
            n++;
        }
        v.n = n;
        mq_spm_config_t cfg = {.add_space_prefix = 1, .bos = -1, .eos = -1, .unk = -1};
        mq_tokenizer_t *t;
        mq_error_t err = {0};
        cr_assert_eq(mq_tokenizer_from_spm_vocab(text, score, type, n, &cfg, "random", &t, &err),
                     MQ_OK, "%s", err.msg);
        for (int s = 0; s < 50; s++) {
            static const char *const chars[] = {"a", "b", "c", " ", "\xc3\xa9", "d"};
            char str[200] = "";
            int k = (int)mq_rng_below(&r, 40);
            for (int j = 0; j < k; j++)
                strcat(str, chars[mq_rng_below(&r, 6)]);
            int32_t want[1024], *ids;
            size_t nw = naive_encode(&v, str, want), ni;
            cr_assert_eq(mq_tokenizer_encode(t, str, strlen(str), 0, &ids, &ni, &err), MQ_OK);
            cr_assert(ni == nw && !memcmp(ids, want, nw * sizeof *ids),
                      "round %d, \"%s\": %zu ids against %zu", round, str, ni, nw);
            free(ids);
        }
        mq_tokenizer_free(t);
    }
}

Test(spm, decode_inverts_encode) {
    mq_tokenizer_t *t = hand_vocab(1);
    mq_rng_t r;
    mq_rng_seed(&r, 5);
    char buf[1024];
    for (int i = 0; i < 500; i++) {
        /* valid UTF-8 (a lead byte before a space would swallow part of its U+2581, in
         * llama.cpp as here) without U+2581 and '<' (control texts) */
        size_t len = 0, n_chars = mq_rng_below(&r, 200);
        for (size_t j = 0; j < n_chars; j++) {
            uint32_t cp;
            switch (mq_rng_below(&r, 5)) {
            case 0: cp = 1 + (uint32_t)mq_rng_below(&r, 0x7F); break;
            case 1: cp = 0x80 + (uint32_t)mq_rng_below(&r, 0x780); break;
            case 2: cp = 0x800 + (uint32_t)mq_rng_below(&r, 0xF800); break;
            case 3: cp = 0x10000 + (uint32_t)mq_rng_below(&r, 0x100000); break;
            default: cp = (uint32_t) "ab c"[mq_rng_below(&r, 4)];
            }
            if (cp == '<' || cp == 0x2581 || (cp >= 0xD800 && cp < 0xE000)) cp = 'a';
            if (cp < 0x80) {
                buf[len++] = (char)cp;
            } else if (cp < 0x800) {
                buf[len++] = (char)(0xC0 | cp >> 6);
                buf[len++] = (char)(0x80 | (cp & 0x3F));
            } else if (cp < 0x10000) {
                buf[len++] = (char)(0xE0 | cp >> 12);
                buf[len++] = (char)(0x80 | (cp >> 6 & 0x3F));
                buf[len++] = (char)(0x80 | (cp & 0x3F));
            } else {
                buf[len++] = (char)(0xF0 | cp >> 18);
                buf[len++] = (char)(0x80 | (cp >> 12 & 0x3F));
                buf[len++] = (char)(0x80 | (cp >> 6 & 0x3F));
                buf[len++] = (char)(0x80 | (cp & 0x3F));
            }
        }
        int32_t *ids;
        size_t n;
        char *back;
        size_t blen;
        cr_assert_eq(mq_tokenizer_encode(t, buf, len, 0, &ids, &n, NULL), MQ_OK);
        cr_assert_eq(mq_tokenizer_decode(t, ids, n, &back, &blen, NULL), MQ_OK);
        cr_assert(blen == len && !memcmp(back, buf, len), "case %d: %zu bytes back of %zu", i, blen,
                  len);
        free(ids);
        free(back);
    }
    mq_tokenizer_free(t);
}

/* ---- GGUF ---- */

static mq_gguf_t *hand_gguf(void) {
    mq_tokenizer_t *t = hand_vocab(1);
    mq_gguf_t *g = mq_gguf_new();
    mq_error_t err = {0};
    cr_assert_eq(mq_tokenizer_to_gguf(t, g, &err), MQ_OK, "%s", err.msg);
    mq_tokenizer_free(t);
    return g;
}

Test(spm, gguf_round_trip_and_llama_defaults) {
    mq_gguf_t *g = hand_gguf();
    mq_gguf_str_t s;
    cr_assert_eq(mq_gguf_get_str(g, "tokenizer.ggml.model", &s, NULL), MQ_OK);
    cr_assert_str_eq(s.ptr, "llama");
    int flag;
    cr_assert_eq(mq_gguf_get_bool(g, "tokenizer.ggml.add_space_prefix", &flag, NULL), MQ_OK);
    cr_assert_eq(flag, 1);
    void *buf;
    size_t len;
    cr_assert_eq(mq_gguf_write_mem(g, &buf, &len, NULL), MQ_OK);
    mq_gguf_t *g2;
    cr_assert_eq(mq_gguf_read_mem(buf, len, "spm.gguf", &g2, NULL), MQ_OK);
    mq_tokenizer_t *t;
    mq_error_t err = {0};
    cr_assert_eq(mq_tokenizer_from_gguf(g2, "spm.gguf", &t, &err), MQ_OK, "%s", err.msg);
    expect_ids(t, "abc", MQ_TOK_ADD_SPECIAL, (int32_t[]){1, T_SPA, T_BC}, 3);
    expect_ids(t, "bab", 0, (int32_t[]){T_SP, T_BA, T_B}, 3);
    mq_tokenizer_free(t);
    mq_gguf_free(g2);
    free(buf);

    /* Without the optional keys: llama.cpp's defaults (bos 1, eos 2, prefix, add bos). Without
     * scores every pair ties, so merges go left to right. */
    mq_gguf_t *bare = mq_gguf_new();
    const char *tokens[] = {"<unk>", "<s>", "</s>", SP "a", "a", SP, "b", "ab"};
    mq_gguf_set_str(bare, "tokenizer.ggml.model", "llama");
    mq_gguf_set_arr_str(bare, "tokenizer.ggml.tokens", tokens, 8);
    cr_assert_eq(mq_tokenizer_from_gguf(bare, "bare.gguf", &t, &err), MQ_OK, "%s", err.msg);
    expect_ids(t, "ab", MQ_TOK_ADD_SPECIAL, (int32_t[]){1, 3, 6}, 3);
    cr_assert_eq(mq_tokenizer_eos(t), 2);
    mq_tokenizer_free(t);
    mq_gguf_set_bool(bare, "tokenizer.ggml.add_space_prefix", 0);
    mq_gguf_set_bool(bare, "tokenizer.ggml.add_bos_token", 0);
    cr_assert_eq(mq_tokenizer_from_gguf(bare, "bare.gguf", &t, &err), MQ_OK, "%s", err.msg);
    expect_ids(t, "ab", MQ_TOK_ADD_SPECIAL, (int32_t[]){7}, 1);
    mq_tokenizer_free(t);
    mq_gguf_free(bare);
    mq_gguf_free(g);
}

Test(spm, bad_vocabularies_are_rejected) {
    mq_gguf_t *g = hand_gguf();
    float scores[N_HAND] = {0};
    scores[T_AB] = 0.0f / 0.0f;
    mq_gguf_set_arr(g, "tokenizer.ggml.scores", MQ_GGUF_FLOAT32, scores, N_HAND);
    expect_rejected(g, MQ_ERR_FORMAT, "tokenizer.ggml.scores[263]");
    g = hand_gguf();
    mq_gguf_set_arr(g, "tokenizer.ggml.scores", MQ_GGUF_FLOAT32, scores, 5);
    expect_rejected(g, MQ_ERR_FORMAT, "tokenizer.ggml.scores");
    g = hand_gguf();
    mq_gguf_set_arr(g, "tokenizer.ggml.scores", MQ_GGUF_INT32, scores, N_HAND);
    expect_rejected(g, MQ_ERR_FORMAT, "float32");
    g = hand_gguf();
    mq_gguf_set_u32(g, "tokenizer.ggml.bos_token_id", N_HAND);
    expect_rejected(g, MQ_ERR_FORMAT, "bos_token_id");
    /* a byte token must be spelled <0xXX> */
    g = hand_gguf();
    const mq_gguf_str_t *tok;
    uint64_t n;
    cr_assert_eq(mq_gguf_get_arr_str(g, "tokenizer.ggml.tokens", &tok, &n, NULL), MQ_OK);
    const char *texts[N_HAND];
    for (uint64_t i = 0; i < n; i++)
        texts[i] = tok[i].ptr;
    texts[BYTE0 + 5] = "<0xZ5>";
    mq_gguf_t *g2 = mq_gguf_new();
    mq_gguf_set_str(g2, "tokenizer.ggml.model", "llama");
    mq_gguf_set_arr_str(g2, "tokenizer.ggml.tokens", texts, n);
    int32_t types[N_HAND];
    for (int i = 0; i < N_HAND; i++)
        types[i] = i >= BYTE0 && i < T_SP ? MQ_TOKEN_BYTE : MQ_TOKEN_NORMAL;
    mq_gguf_set_arr(g2, "tokenizer.ggml.token_type", MQ_GGUF_INT32, types, N_HAND);
    mq_gguf_free(g);
    expect_rejected(g2, MQ_ERR_FORMAT, "tokenizer.ggml.tokens[8]");
}

/* llama.cpp marks the special tokens of Phi-3 models (by general.name) to take the whitespace
 * after them, except <unk>, <s> and <|endoftext|>; others keep it. */
Test(spm, phi3_special_tokens_take_the_whitespace_after_them) {
    const char *tokens[] = {"<unk>", "<s>", "</s>", "<|user|>", SP, "h", "i", SP "hi", "hi"};
    int32_t types[] = {
        MQ_TOKEN_UNKNOWN, MQ_TOKEN_CONTROL, MQ_TOKEN_CONTROL, MQ_TOKEN_USER_DEFINED, 1, 1, 1, 1, 1};
    float scores[] = {0, 0, 0, 0, -3, -3, -3, -1, -2};
    for (int phi = 0; phi < 2; phi++) {
        mq_gguf_t *g = mq_gguf_new();
        mq_gguf_set_str(g, "general.name", phi ? "Phi-3 mini 4k" : "Llama 2");
        mq_gguf_set_str(g, "tokenizer.ggml.model", "llama");
        mq_gguf_set_arr_str(g, "tokenizer.ggml.tokens", tokens, 9);
        mq_gguf_set_arr(g, "tokenizer.ggml.token_type", MQ_GGUF_INT32, types, 9);
        mq_gguf_set_arr(g, "tokenizer.ggml.scores", MQ_GGUF_FLOAT32, scores, 9);
        mq_tokenizer_t *t;
        mq_error_t err = {0};
        cr_assert_eq(mq_tokenizer_from_gguf(g, "phi.gguf", &t, &err), MQ_OK, "%s", err.msg);
        if (phi) {
            expect_ids(t, "<|user|>  hi", 0, (int32_t[]){3, 7}, 2);
            expect_ids(t, "</s> hi", MQ_TOK_PARSE_SPECIAL, (int32_t[]){2, 7}, 2);
            expect_ids(t, "<s> hi", MQ_TOK_PARSE_SPECIAL, (int32_t[]){1, 4, 7}, 3);
        } else {
            expect_ids(t, "<|user|>  hi", 0, (int32_t[]){3, 4, 4, 7}, 4);
            expect_ids(t, "</s> hi", MQ_TOK_PARSE_SPECIAL, (int32_t[]){2, 4, 7}, 3);
        }
        mq_tokenizer_free(t);
        mq_gguf_free(g);
    }
}

/* ---- the CLI: encode --add-special, and check against llama.cpp's vocabulary test files ---- */

static void write_text(const char *path, const char *text) {
    FILE *f = fopen(path, "wb");
    cr_assert(f);
    fputs(text, f);
    fclose(f);
}

Test(spm, cli_encodes_and_checks_a_vocabulary_test_file) {
    char dir[] = "/tmp/mq-spm-XXXXXX", path[256], args[512], out[4096];
    cr_assert(mkdtemp(dir));
    snprintf(path, sizeof path, "%s/vocab.gguf", dir);
    mq_gguf_t *g = hand_gguf();
    cr_assert_eq(mq_gguf_write(g, path, NULL), MQ_OK);
    mq_gguf_free(g);
    snprintf(args, sizeof args, "tokenizer encode --model %s --add-special a b", path);
    cr_assert_eq(run_cli(args, out, sizeof out), 0);
    cr_assert_str_eq(out, "1 265 259 261\n");
    snprintf(args, sizeof args, "tokenizer decode --model %s 1 265 259 261", path);
    cr_assert_eq(run_cli(args, out, sizeof out), 0);
    cr_assert_str_eq(out, "<s> a b");

    /* three texts in llama.cpp's layout; the last expected line is wrong on purpose */
    char inp[300], outp[300];
    snprintf(inp, sizeof inp, "%s.inp", path);
    snprintf(outp, sizeof outp, "%s.out", path);
    write_text(inp, "abc\n__ggml_vocab_test__\n\n__ggml_vocab_test__\nbab");
    write_text(outp, " 265 264\n\n 259 267 261\n");
    snprintf(args, sizeof args, "tokenizer check --model %s", path);
    cr_assert_eq(run_cli(args, out, sizeof out), 0, "%s", out);
    cr_assert(strstr(out, "3 of 3 test texts"), "%s", out);
    write_text(outp, " 265 264\n\n 259 267 262\n");
    cr_assert_eq(run_cli(args, out, sizeof out), 1, "%s", out);
    cr_assert(strstr(out, "2 of 3 test texts") && strstr(out, "case 3"), "%s", out);
    write_text(outp, " 265 264\n");
    cr_assert_eq(run_cli(args, out, sizeof out), 1, "fewer lines than texts");
    remove(inp);
    remove(outp);
    remove(path);
    remove(dir);
}
