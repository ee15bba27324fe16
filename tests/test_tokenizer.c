#include <criterion/criterion.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "miniquant/gguf.h"
#include "miniquant/rng.h"
#include "miniquant/tokenizer.h"
#include "tokhelpers.h"

/* A small English sample to train on: contractions, numbers, punctuation, a few non-ASCII words
 * and the kind of glosses the real corpus holds. */
static const char *const SAMPLE[] = {
    "a domesticated carnivorous mammal that typically has a long snout; \"the dog barked all "
    "night\"",
    "move fast by using one's feet, with one foot off the ground at any given time; \"Don't run "
    "-- you'll be out of breath\"",
    "the act of walking somewhere; \"he walked to the store\" \"they'd walked 42 miles by noon\"",
    "(physics) a thermodynamic quantity equivalent to the capacity of a physical system to do "
    "work; the units of energy are joules or ergs",
    "I'm sure they'll come back in 1999 and again in 2001, won't they? She's right; we've seen "
    "it.",
    "a written account of what was said at a meeting -- minutes, notes, 3.5 pages!!! and more...",
    "Hello world!  Hello   world!\tTabs\tand\nnewlines\n\n  and trailing spaces   ",
    "the café served crème brûlée; naïve visitors paid 12 € for it (or ¥1500)",
    "make a mistake or incorrect statement; \"I was wrong when I said it would rain\"",
    "cause to move by pulling; \"draw a wagon\" \"pull a sled\" \"they're pulling it now\"",
    "the quality of being able to perform; a quality that permits or facilitates achievement",
    "an event that occurs when something passes from one state or phase to another; \"the "
    "change was intended to increase sales\"",
    "having the leading role; \"the chief engineer checked the engines twice\"",
    "in a rapid manner; \"she walked rapidly\" \"he climbed quickly and reached the top first\"",
};
#define N_SAMPLE (sizeof SAMPLE / sizeof *SAMPLE)

static mq_tokenizer_t *train_sample(int vocab) {
    size_t lens[N_SAMPLE];
    for (size_t i = 0; i < N_SAMPLE; i++)
        lens[i] = strlen(SAMPLE[i]);
    mq_tokenizer_t *t = NULL;
    mq_error_t err = {0};
    int rc = mq_tokenizer_train(SAMPLE, lens, N_SAMPLE, vocab, &t, &err);
    cr_assert_eq(rc, MQ_OK, "train: %s", err.msg);
    return t;
}

/* GPT-2's bytes_to_unicode written out independently of the library, as in encoder.py. */
static void gpt2_byte_text(int b, char out[3]) {
    int cs[256], bs[256], n = 0, extra = 0;
    for (int i = '!'; i <= '~'; i++)
        bs[n] = cs[n] = i, n++;
    for (int i = 0xA1; i <= 0xAC; i++)
        bs[n] = cs[n] = i, n++;
    for (int i = 0xAE; i <= 0xFF; i++)
        bs[n] = cs[n] = i, n++;
    for (int i = 0; i < 256; i++) {
        int found = 0;
        for (int j = 0; j < n; j++)
            found |= bs[j] == i;
        if (!found) bs[n] = i, cs[n] = 256 + extra++, n++;
    }
    int cp = -1;
    for (int j = 0; j < 256; j++)
        if (bs[j] == b) cp = cs[j];
    if (cp < 0x80) {
        out[0] = (char)cp;
        out[1] = 0;
    } else {
        out[0] = (char)(0xC0 | (cp >> 6));
        out[1] = (char)(0x80 | (cp & 0x3F));
        out[2] = 0;
    }
}

/* ---- pre-tokenization ---- */

typedef struct pieces {
    char *p[256];
    size_t len[256];
    int n;
} pieces_t;

static void collect(const char *s, size_t len, void *ctx) {
    pieces_t *ps = ctx;
    cr_assert_lt(ps->n, 256);
    ps->p[ps->n] = malloc(len + 1);
    memcpy(ps->p[ps->n], s, len);
    ps->p[ps->n][len] = 0;
    ps->len[ps->n++] = len;
}

/* Asserts the exact pieces of text (given with its length, NULs allowed); the expected list
 * ends with NULL. */
static void expect_pieces_n(const char *text, size_t len, const char *const *want) {
    pieces_t ps = {0};
    mq_error_t err = {0};
    cr_assert_eq(mq_pretokenize(text, len, collect, &ps, &err), MQ_OK, "%s", err.msg);
    int n = 0;
    while (want[n])
        n++;
    cr_assert_eq(ps.n, n, "\"%s\": %d pieces, expected %d", text, ps.n, n);
    size_t covered = 0;
    for (int i = 0; i < n; i++) {
        size_t wl = strlen(want[i]) ? strlen(want[i]) : 1; /* "" stands for a NUL byte */
        cr_assert(ps.len[i] == wl && memcmp(ps.p[i], want[i], wl) == 0,
                  "\"%s\": piece %d is \"%s\", expected \"%s\"", text, i, ps.p[i], want[i]);
        covered += ps.len[i];
        free(ps.p[i]);
    }
    cr_assert_eq(covered, len);
}

static void expect_pieces(const char *text, const char *const *want) {
    expect_pieces_n(text, strlen(text), want);
}

Test(pretokenize, contractions) {
    expect_pieces("I'm", (const char *[]){"I", "'m", NULL});
    expect_pieces("they'll", (const char *[]){"they", "'ll", NULL});
    expect_pieces("don't", (const char *[]){"don", "'t", NULL});
    expect_pieces("I'm sure they'll say we've and you'd and it's and we're",
                  (const char *[]){"I", "'m", " sure", " they", "'ll", " say", " we", "'ve", " and",
                                   " you", "'d", " and", " it", "'s", " and", " we", "'re", NULL});
    /* The contraction alternatives are lower-case only, as in GPT-2. */
    expect_pieces("DON'T", (const char *[]){"DON", "'", "T", NULL});
    expect_pieces("rock 'n' roll", (const char *[]){"rock", " '", "n", "'", " roll", NULL});
}

Test(pretokenize, numbers_and_punctuation) {
    expect_pieces("in 1999 and 42", (const char *[]){"in", " 1999", " and", " 42", NULL});
    expect_pieces("3.14, 2,000", (const char *[]){"3", ".", "14", ",", " 2", ",", "000", NULL});
    expect_pieces("hello!!! world...", (const char *[]){"hello", "!!!", " world", "...", NULL});
    expect_pieces("(physics) \"quoted\"",
                  (const char *[]){"(", "physics", ")", " \"", "quoted", "\"", NULL});
    expect_pieces("abc123def", (const char *[]){"abc", "123", "def", NULL});
}

Test(pretokenize, whitespace) {
    /* Runs of whitespace leave their last space to the next word; at the end they stay whole. */
    expect_pieces("a  b\n\n c   ", (const char *[]){"a", " ", " b", "\n\n", " c", "   ", NULL});
    expect_pieces("  hello", (const char *[]){" ", " hello", NULL});
    expect_pieces("\t\tx", (const char *[]){"\t", "\t", "x", NULL});
    expect_pieces("x\n", (const char *[]){"x", "\n", NULL});
    expect_pieces(" ", (const char *[]){" ", NULL});
    expect_pieces("", (const char *[]){NULL});
    expect_pieces("a \n b", (const char *[]){"a", " \n", " b", NULL});
}

Test(pretokenize, unicode_and_invalid_bytes) {
    expect_pieces("naïve café crème",
                  (const char *[]){"na\xc3\xafve", " caf\xc3\xa9", " cr\xc3\xa8me", NULL});
    /* U+3000 and U+00A0 are whitespace; U+180E is not (Unicode's White_Space, as llama.cpp). */
    expect_pieces("a\xe3\x80\x80"
                  "b",
                  (const char *[]){"a", "\xe3\x80\x80", "b", NULL});
    expect_pieces("a\xe1\xa0\x8e b", (const char *[]){"a", "\xe1\xa0\x8e", " b", NULL});
    /* Invalid UTF-8: every invalid byte is a piece of its own. */
    expect_pieces("ab\xff\xfe  cd", (const char *[]){"ab", "\xff", "\xfe", " ", " cd", NULL});
    expect_pieces("x \xe2\x82", (const char *[]){"x", " ", "\xe2", "\x82", NULL});
    expect_pieces("\xed\xa0\x80"
                  "a",
                  (const char *[]){"\xed", "\xa0", "\x80", "a", NULL});
    /* A NUL byte is a character like any other ("" stands for it). */
    expect_pieces_n("a\0b", 3, (const char *[]){"a", "", "b", NULL});
}

/* ---- a hand-written merge table ---- */

static mq_tokenizer_t *tiny_vocab(void) {
    /* ids 0..255: the byte tokens in byte order, then the merges' results, then the EOT. */
    static char bytes[256][3];
    const char *tokens[265];
    int32_t types[265];
    for (int b = 0; b < 256; b++) {
        gpt2_byte_text(b, bytes[b]);
        tokens[b] = bytes[b];
        types[b] = MQ_TOKEN_NORMAL;
    }
    const char *learned[] = {"he", "ll", "hell", "\xc4\xa0w", "or", "\xc4\xa0wor", "el", "aa"};
    for (int i = 0; i < 8; i++)
        tokens[256 + i] = learned[i], types[256 + i] = MQ_TOKEN_NORMAL;
    tokens[264] = MQ_EOT_TEXT;
    types[264] = MQ_TOKEN_CONTROL;
    const char *merges[] = {"h e", "l l",          "he ll", "\xc4\xa0 w",
                            "o r", "\xc4\xa0w or", "e l",   "a a"};
    mq_tokenizer_t *t = NULL;
    mq_error_t err = {0};
    cr_assert_eq(mq_tokenizer_from_vocab(tokens, types, 265, merges, 8, "tiny", &t, &err), MQ_OK,
                 "%s", err.msg);
    return t;
}

Test(bpe, byte_tokens_are_gpt2s_mapping) {
    mq_tokenizer_t *t = train_sample(300);
    for (int b = 0; b < 256; b++) {
        char want[3];
        gpt2_byte_text(b, want);
        cr_assert_str_eq(mq_tokenizer_token_text(t, b), want, "byte %d", b);
    }
    cr_assert_str_eq(mq_tokenizer_token_text(t, ' '), "\xc4\xa0");  /* U+0120 'Ġ' */
    cr_assert_str_eq(mq_tokenizer_token_text(t, '\n'), "\xc4\x8a"); /* U+010A 'Ċ' */
    cr_assert_str_eq(mq_tokenizer_token_text(t, 0xAD), "\xc5\x83"); /* U+0143, the last one */
    mq_tokenizer_free(t);
}

Test(bpe, known_merge_table) {
    mq_tokenizer_t *t = tiny_vocab();
    /* "hello world" splits into "hello" and " world".
     * "hello": h e l l o; the pairs with ranks are (h,e)=0 and (l,l)=1, (e,l)=6:
     *   rank 0 -> he l l o; rank 1 -> he ll o; (he,ll) rank 2 -> hell o. ids 258, 'o'=111.
     * " world": Ġ w o r l d; (Ġ,w)=3 -> Ġw o r l d; (o,r)=4 -> Ġw or l d; (Ġw,or)=5 -> Ġwor l d.
     *   ids 261, 'l'=108, 'd'=100. */
    expect_ids(t, "hello world", 0, (int32_t[]){258, 111, 261, 108, 100}, 5);
    /* "ell": (e,l) is leftmost but (l,l) has the lower rank: e ll, not el l. */
    expect_ids(t, "ell", 0, (int32_t[]){'e', 257}, 2);
    /* "elo": only (e,l) applies. */
    expect_ids(t, "elo", 0, (int32_t[]){262, 'o'}, 2);
    /* Equal ranks go left to right: aa a, then aa aa. */
    expect_ids(t, "aaa", 0, (int32_t[]){263, 'a'}, 2);
    expect_ids(t, "aaaa", 0, (int32_t[]){263, 263}, 2);
    /* The special token is text unless asked for. */
    expect_ids(t, "hello<|endoftext|>", MQ_TOK_PARSE_SPECIAL, (int32_t[]){258, 111, 264}, 3);
    expect_ids(t, "<|endoftext|>", 0,
               (int32_t[]){'<', '|', 'e', 'n', 'd', 'o', 'f', 't', 'e', 'x', 't', '|', '>'}, 13);
    cr_assert_eq(mq_tokenizer_eot(t), 264);
    cr_assert_eq(mq_tokenizer_token_type(t, 264), MQ_TOKEN_CONTROL);
    cr_assert_eq(mq_tokenizer_n_merges(t), 8);
    int32_t l, r;
    cr_assert_eq(mq_tokenizer_merge(t, 2, &l, &r), MQ_OK);
    cr_assert(l == 256 && r == 257);
    mq_tokenizer_free(t);
}

Test(bpe, bad_ids_and_flags_are_errors) {
    mq_tokenizer_t *t = tiny_vocab();
    char *text;
    size_t len;
    int32_t *ids;
    size_t n;
    mq_error_t err = {0};
    cr_assert_eq(mq_tokenizer_decode(t, (int32_t[]){1, 265}, 2, &text, &len, &err), MQ_ERR_ARG);
    cr_assert(strstr(err.msg, "265"), "%s", err.msg);
    cr_assert_eq(mq_tokenizer_decode(t, (int32_t[]){-1}, 1, &text, &len, &err), MQ_ERR_ARG);
    cr_assert_eq(mq_tokenizer_encode(t, "a", 1, 8, &ids, &n, &err), MQ_ERR_ARG);
    cr_assert_null(mq_tokenizer_token_text(t, 265));
    cr_assert_eq(mq_tokenizer_decode(t, (int32_t[]){258, 264}, 2, &text, &len, NULL), MQ_OK);
    cr_assert_str_eq(text, "hell<|endoftext|>");
    cr_assert_eq(len, 17);
    free(text);
    mq_tokenizer_free(t);
}

/* ---- round trips ---- */

static void expect_round_trip(const mq_tokenizer_t *t, const char *s, size_t len, int flags) {
    int32_t *ids;
    size_t n;
    char *back;
    size_t blen;
    mq_error_t err = {0};
    cr_assert_eq(mq_tokenizer_encode(t, s, len, flags, &ids, &n, &err), MQ_OK, "%s", err.msg);
    cr_assert_eq(mq_tokenizer_decode(t, ids, n, &back, &blen, &err), MQ_OK, "%s", err.msg);
    cr_assert(blen == len && memcmp(back, s, len) == 0 && back[blen] == 0,
              "round trip of %zu bytes gave %zu bytes", len, blen);
    free(ids);
    free(back);
}

static size_t random_text(mq_rng_t *r, char *buf, size_t max) {
    static const char *const ws[] = {" ", "\t", "\n", "\r", "\v", "\f", "\xc2\xa0", "a", "'"};
    size_t len = mq_rng_below(r, max / 4);
    int mode = (int)mq_rng_below(r, 5);
    size_t n = 0;
    while (n < len) {
        if (mode == 0) { /* any bytes: invalid UTF-8, NULs */
            buf[n++] = (char)mq_rng_below(r, 256);
        } else if (mode == 1) { /* whitespace runs */
            const char *w = ws[mq_rng_below(r, 9)];
            memcpy(buf + n, w, strlen(w));
            n += strlen(w);
        } else if (mode == 2) { /* printable ASCII */
            buf[n++] = (char)(32 + mq_rng_below(r, 95));
        } else if (mode == 3) { /* valid UTF-8 of every length */
            uint32_t cp = (uint32_t)mq_rng_below(r, 0x110000);
            if (cp >= 0xD800 && cp < 0xE000) cp = 'x';
            if (cp < 0x80)
                buf[n++] = (char)cp;
            else if (cp < 0x800) {
                buf[n++] = (char)(0xC0 | (cp >> 6));
                buf[n++] = (char)(0x80 | (cp & 0x3F));
            } else if (cp < 0x10000) {
                buf[n++] = (char)(0xE0 | (cp >> 12));
                buf[n++] = (char)(0x80 | ((cp >> 6) & 0x3F));
                buf[n++] = (char)(0x80 | (cp & 0x3F));
            } else {
                buf[n++] = (char)(0xF0 | (cp >> 18));
                buf[n++] = (char)(0x80 | ((cp >> 12) & 0x3F));
                buf[n++] = (char)(0x80 | ((cp >> 6) & 0x3F));
                buf[n++] = (char)(0x80 | (cp & 0x3F));
            }
        } else { /* English with a few bytes flipped */
            const char *s = SAMPLE[mq_rng_below(r, N_SAMPLE)];
            size_t k = strlen(s);
            memcpy(buf + n, s, k);
            if (mq_rng_below(r, 2)) buf[n + mq_rng_below(r, k)] = (char)mq_rng_below(r, 256);
            n += k;
        }
    }
    return n;
}

Test(roundtrip, random_bytes_and_english) {
    mq_tokenizer_t *t = train_sample(400);
    mq_rng_t r;
    mq_rng_seed(&r, 7);
    enum { MAX = 4096 };
    char *buf = malloc(MAX + 64);
    for (int i = 0; i < 400; i++) {
        size_t n = random_text(&r, buf, MAX);
        expect_round_trip(t, buf, n, 0);
        expect_round_trip(t, buf, n, MQ_TOK_PARSE_SPECIAL);
    }
    for (size_t i = 0; i < N_SAMPLE; i++)
        expect_round_trip(t, SAMPLE[i], strlen(SAMPLE[i]), 0);
    free(buf);

    /* long runs: one huge piece each */
    size_t big = 200000;
    char *run = malloc(big + 1);
    const char fill[] = {' ', '\n', 'e', '\xff', '\0', '!'};
    for (size_t k = 0; k < sizeof fill; k++) {
        memset(run, fill[k], big);
        run[big] = 'x';
        expect_round_trip(t, run, big + 1, 0);
    }
    free(run);
    expect_round_trip(t, "", 0, 0);
    const char *s = "end<|endoftext|>start <|endoftext|><|endoftext|>";
    expect_round_trip(t, s, strlen(s), MQ_TOK_PARSE_SPECIAL);
    mq_tokenizer_free(t);
}

Test(roundtrip, english_compresses) {
    mq_tokenizer_t *t = train_sample(500);
    size_t bytes = 0, tokens = 0;
    for (size_t i = 0; i < N_SAMPLE; i++) {
        int32_t *ids;
        size_t n;
        cr_assert_eq(mq_tokenizer_encode(t, SAMPLE[i], strlen(SAMPLE[i]), 0, &ids, &n, NULL),
                     MQ_OK);
        for (size_t k = 0; k < n; k++)
            cr_assert(ids[k] >= 0 && ids[k] < 499);
        bytes += strlen(SAMPLE[i]);
        tokens += n;
        free(ids);
    }
    /* 243 merges learned on this very text leave well under one token per two bytes. */
    cr_assert_lt(tokens * 2, bytes, "%zu tokens for %zu bytes", tokens, bytes);
    mq_tokenizer_free(t);
}

typedef struct enc_job {
    const mq_tokenizer_t *t;
    const char *text;
    size_t len;
    int32_t *ids;
    size_t n;
} enc_job_t;

static void *encode_job(void *p) {
    enc_job_t *j = p;
    for (int rep = 0; rep < 3; rep++) {
        free(j->ids);
        if (mq_tokenizer_encode(j->t, j->text, j->len, 0, &j->ids, &j->n, NULL)) j->ids = NULL;
    }
    return NULL;
}

Test(roundtrip, threads_share_one_tokenizer) {
    mq_tokenizer_t *t = train_sample(400);
    mq_rng_t r;
    mq_rng_seed(&r, 11);
    char *buf = malloc(40000);
    size_t len = 0;
    while (len < 30000)
        len += random_text(&r, buf + len, 4096);
    int32_t *ref;
    size_t n_ref;
    cr_assert_eq(mq_tokenizer_encode(t, buf, len, 0, &ref, &n_ref, NULL), MQ_OK);
    mq_tokenizer_free(t);
    t = train_sample(400); /* a cold cache, filled by the threads at once */
    enc_job_t jobs[4];
    pthread_t th[4];
    for (int i = 0; i < 4; i++) {
        jobs[i] = (enc_job_t){t, buf, len, NULL, 0};
        cr_assert_eq(pthread_create(&th[i], NULL, encode_job, &jobs[i]), 0);
    }
    for (int i = 0; i < 4; i++) {
        pthread_join(th[i], NULL);
        cr_assert_not_null(jobs[i].ids);
        cr_assert(jobs[i].n == n_ref && memcmp(jobs[i].ids, ref, n_ref * sizeof *ref) == 0);
        free(jobs[i].ids);
    }
    free(ref);
    free(buf);
    mq_tokenizer_free(t);
}

/* ---- training ---- */

/* Reference BPE training: recount every pair after each merge, take the most frequent, ties to
 * the smaller (left text, right text), rewrite every word left to right. Only for small inputs. */
typedef struct naive {
    char *tok[1024];
    int n_tok;
    int *word[4096];
    int wlen[4096];
    int n_words;
    int merges[1024][2];
    int n_merges;
} naive_t;

static void naive_piece(const char *s, size_t len, void *ctx) {
    naive_t *nv = ctx;
    cr_assert_lt(nv->n_words, 4096);
    int *w = malloc(len * sizeof *w);
    for (size_t i = 0; i < len; i++)
        w[i] = (unsigned char)s[i];
    nv->word[nv->n_words] = w;
    nv->wlen[nv->n_words++] = (int)len;
}

static void naive_train(naive_t *nv, int vocab) {
    for (int b = 0; b < 256; b++) {
        nv->tok[b] = malloc(3);
        gpt2_byte_text(b, nv->tok[b]);
    }
    nv->n_tok = 256;
    for (size_t i = 0; i < N_SAMPLE; i++)
        cr_assert_eq(mq_pretokenize(SAMPLE[i], strlen(SAMPLE[i]), naive_piece, nv, NULL), MQ_OK);
    long *count = calloc((size_t)vocab * vocab, sizeof *count);
    while (nv->n_tok < vocab - 1) {
        memset(count, 0, (size_t)vocab * vocab * sizeof *count);
        for (int w = 0; w < nv->n_words; w++)
            for (int i = 0; i + 1 < nv->wlen[w]; i++)
                count[nv->word[w][i] * vocab + nv->word[w][i + 1]]++;
        int best = -1;
        for (int p = 0; p < vocab * vocab; p++) {
            if (!count[p]) continue;
            if (best < 0 || count[p] > count[best]) {
                best = p;
            } else if (count[p] == count[best]) {
                int c = strcmp(nv->tok[p / vocab], nv->tok[best / vocab]);
                if (!c) c = strcmp(nv->tok[p % vocab], nv->tok[best % vocab]);
                if (c < 0) best = p;
            }
        }
        cr_assert_geq(best, 0);
        int a = best / vocab, b = best % vocab;
        char *cat = malloc(strlen(nv->tok[a]) + strlen(nv->tok[b]) + 1);
        strcpy(cat, nv->tok[a]);
        strcat(cat, nv->tok[b]);
        int c = 0;
        while (c < nv->n_tok && strcmp(nv->tok[c], cat) != 0)
            c++;
        if (c == nv->n_tok)
            nv->tok[nv->n_tok++] = cat;
        else
            free(cat);
        nv->merges[nv->n_merges][0] = a;
        nv->merges[nv->n_merges++][1] = b;
        for (int w = 0; w < nv->n_words; w++) {
            int k = 0;
            for (int i = 0; i < nv->wlen[w]; k++) {
                if (i + 1 < nv->wlen[w] && nv->word[w][i] == a && nv->word[w][i + 1] == b) {
                    nv->word[w][k] = c;
                    i += 2;
                } else {
                    nv->word[w][k] = nv->word[w][i++];
                }
            }
            nv->wlen[w] = k;
        }
    }
    free(count);
}

Test(train, matches_reference_bpe) {
    enum { VOCAB = 420 };
    naive_t *nv = calloc(1, sizeof *nv);
    naive_train(nv, VOCAB);
    mq_tokenizer_t *t = train_sample(VOCAB);
    cr_assert_eq(mq_tokenizer_n_merges(t), nv->n_merges);
    for (int r = 0; r < nv->n_merges; r++) {
        int32_t a, b;
        cr_assert_eq(mq_tokenizer_merge(t, r, &a, &b), MQ_OK);
        cr_assert_str_eq(mq_tokenizer_token_text(t, a), nv->tok[nv->merges[r][0]], "merge %d", r);
        cr_assert_str_eq(mq_tokenizer_token_text(t, b), nv->tok[nv->merges[r][1]], "merge %d", r);
    }
    for (int i = 0; i < nv->n_tok; i++) {
        cr_assert_str_eq(mq_tokenizer_token_text(t, i), nv->tok[i], "token %d", i);
        free(nv->tok[i]);
    }
    for (int w = 0; w < nv->n_words; w++)
        free(nv->word[w]);
    free(nv);
    mq_tokenizer_free(t);
}

Test(train, deterministic_with_requested_size_and_eot_last) {
    mq_tokenizer_t *a = train_sample(450), *b = train_sample(450);
    cr_assert_eq(mq_tokenizer_n_vocab(a), 450);
    cr_assert_eq(mq_tokenizer_n_vocab(b), 450);
    cr_assert_eq(mq_tokenizer_eot(a), 449);
    cr_assert_str_eq(mq_tokenizer_token_text(a, 449), MQ_EOT_TEXT);
    cr_assert_eq(mq_tokenizer_token_type(a, 449), MQ_TOKEN_CONTROL);
    cr_assert_eq(mq_tokenizer_token_type(a, 300), MQ_TOKEN_NORMAL);
    cr_assert_eq(mq_tokenizer_n_merges(a), mq_tokenizer_n_merges(b));
    for (int i = 0; i < 450; i++)
        cr_assert_str_eq(mq_tokenizer_token_text(a, i), mq_tokenizer_token_text(b, i));
    for (int r = 0; r < mq_tokenizer_n_merges(a); r++) {
        int32_t la, ra, lb, rb;
        mq_tokenizer_merge(a, r, &la, &ra);
        mq_tokenizer_merge(b, r, &lb, &rb);
        cr_assert(la == lb && ra == rb);
    }
    mq_tokenizer_free(a);
    mq_tokenizer_free(b);
}

Test(train, bad_sizes_are_errors) {
    size_t lens[1] = {5};
    const char *docs[1] = {"hello"};
    mq_tokenizer_t *t = NULL;
    mq_error_t err = {0};
    cr_assert_eq(mq_tokenizer_train(docs, lens, 1, 256, &t, &err), MQ_ERR_ARG);
    cr_assert_null(t);
    /* "hello" holds 4 merges at most. */
    cr_assert_eq(mq_tokenizer_train(docs, lens, 1, 262, &t, &err), MQ_ERR_ARG);
    cr_assert(strstr(err.msg, "262"), "%s", err.msg);
    cr_assert_eq(mq_tokenizer_train(docs, lens, 1, 261, &t, &err), MQ_OK, "%s", err.msg);
    expect_ids(t, "hello", 0, (int32_t[]){259}, 1);
    mq_tokenizer_free(t);
    /* 257: no merges, only bytes and the EOT. */
    cr_assert_eq(mq_tokenizer_train(docs, lens, 0, 257, &t, &err), MQ_OK, "%s", err.msg);
    expect_ids(t, "hi", 0, (int32_t[]){'h', 'i'}, 2);
    mq_tokenizer_free(t);
}

/* ---- GGUF ---- */

Test(gguf, write_read_encodes_identically) {
    mq_tokenizer_t *t = train_sample(400);
    mq_gguf_t *g = mq_gguf_new();
    mq_error_t err = {0};
    cr_assert_eq(mq_tokenizer_to_gguf(t, g, &err), MQ_OK, "%s", err.msg);
    void *buf;
    size_t len;
    cr_assert_eq(mq_gguf_write_mem(g, &buf, &len, &err), MQ_OK, "%s", err.msg);
    mq_gguf_t *g2;
    cr_assert_eq(mq_gguf_read_mem(buf, len, "tok.gguf", &g2, &err), MQ_OK, "%s", err.msg);
    mq_tokenizer_t *t2;
    cr_assert_eq(mq_tokenizer_from_gguf(g2, "tok.gguf", &t2, &err), MQ_OK, "%s", err.msg);

    mq_gguf_str_t s;
    cr_assert_eq(mq_gguf_get_str(g2, "tokenizer.ggml.model", &s, &err), MQ_OK);
    cr_assert_str_eq(s.ptr, "gpt2");
    cr_assert_eq(mq_gguf_get_str(g2, "tokenizer.ggml.pre", &s, &err), MQ_OK);
    cr_assert_str_eq(s.ptr, "gpt-2");
    uint32_t id;
    int flag;
    cr_assert_eq(mq_gguf_get_u32(g2, "tokenizer.ggml.eos_token_id", &id, &err), MQ_OK);
    cr_assert_eq(id, 399);
    cr_assert_eq(mq_gguf_get_u32(g2, "tokenizer.ggml.bos_token_id", &id, &err), MQ_OK);
    cr_assert_eq(id, 399);
    cr_assert_eq(mq_gguf_get_bool(g2, "tokenizer.ggml.add_bos_token", &flag, &err), MQ_OK);
    cr_assert_eq(flag, 0);
    int et;
    const void *data;
    uint64_t n;
    cr_assert_eq(mq_gguf_get_arr(g2, "tokenizer.ggml.token_type", &et, &data, &n, &err), MQ_OK);
    cr_assert(et == MQ_GGUF_INT32 && n == 400);
    int32_t last;
    memcpy(&last, (const char *)data + 399 * 4, 4);
    cr_assert_eq(last, MQ_TOKEN_CONTROL);
    const mq_gguf_str_t *merges;
    cr_assert_eq(mq_gguf_get_arr_str(g2, "tokenizer.ggml.merges", &merges, &n, &err), MQ_OK);
    cr_assert_eq(n, (uint64_t)mq_tokenizer_n_merges(t));
    int32_t a, b;
    mq_tokenizer_merge(t, 0, &a, &b);
    char want[64];
    snprintf(want, sizeof want, "%s %s", mq_tokenizer_token_text(t, a),
             mq_tokenizer_token_text(t, b));
    cr_assert_str_eq(merges[0].ptr, want);

    cr_assert_eq(mq_tokenizer_n_vocab(t2), 400);
    cr_assert_eq(mq_tokenizer_eot(t2), 399);
    mq_rng_t r;
    mq_rng_seed(&r, 3);
    char *text = malloc(8192);
    for (int i = 0; i < 100; i++) {
        size_t tl = random_text(&r, text, 8192);
        int32_t *i1, *i2;
        size_t n1, n2;
        cr_assert_eq(mq_tokenizer_encode(t, text, tl, MQ_TOK_PARSE_SPECIAL, &i1, &n1, NULL), MQ_OK);
        cr_assert_eq(mq_tokenizer_encode(t2, text, tl, MQ_TOK_PARSE_SPECIAL, &i2, &n2, NULL),
                     MQ_OK);
        cr_assert(n1 == n2 && memcmp(i1, i2, n1 * sizeof *i1) == 0);
        free(i1);
        free(i2);
    }
    free(text);
    free(buf);
    mq_gguf_free(g);
    mq_gguf_free(g2);
    mq_tokenizer_free(t);
    mq_tokenizer_free(t2);
}

/* A file with the 256 byte tokens, "he", and the given merges; tokens[extra_at] is replaced by
 * extra when extra is not NULL. */
static mq_gguf_t *vocab_gguf(const char *const *merges, int n_merges, int extra_at,
                             const char *extra) {
    static char bytes[256][3];
    const char *tokens[257];
    for (int b = 0; b < 256; b++) {
        gpt2_byte_text(b, bytes[b]);
        tokens[b] = bytes[b];
    }
    tokens[256] = "he";
    if (extra) tokens[extra_at] = extra;
    int32_t types[257];
    for (int i = 0; i < 257; i++)
        types[i] = MQ_TOKEN_NORMAL;
    mq_gguf_t *g = mq_gguf_new();
    cr_assert_eq(mq_gguf_set_str(g, "tokenizer.ggml.model", "gpt2"), MQ_OK);
    cr_assert_eq(mq_gguf_set_str(g, "tokenizer.ggml.pre", "gpt-2"), MQ_OK);
    cr_assert_eq(mq_gguf_set_arr_str(g, "tokenizer.ggml.tokens", tokens, 257), MQ_OK);
    cr_assert_eq(mq_gguf_set_arr(g, "tokenizer.ggml.token_type", MQ_GGUF_INT32, types, 257), MQ_OK);
    cr_assert_eq(mq_gguf_set_arr_str(g, "tokenizer.ggml.merges", merges, n_merges), MQ_OK);
    return g;
}

Test(gguf, bad_vocabularies_are_rejected) {
    const char *good[] = {"h e"};
    mq_gguf_t *g = vocab_gguf(good, 1, 0, NULL);
    mq_tokenizer_t *t;
    cr_assert_eq(mq_tokenizer_from_gguf(g, "ok.gguf", &t, NULL), MQ_OK);
    expect_ids(t, "hehe", 0, (int32_t[]){256, 256}, 2);
    mq_tokenizer_free(t);
    mq_gguf_free(g);

    expect_rejected(vocab_gguf((const char *[]){"h e", "h zz"}, 2, 0, NULL), MQ_ERR_FORMAT,
                    "tokenizer.ggml.merges[1]");
    expect_rejected(vocab_gguf((const char *[]){"h e", "e h"}, 2, 0, NULL), MQ_ERR_FORMAT,
                    "tokenizer.ggml.merges[1]"); /* "eh" is not a token */
    expect_rejected(vocab_gguf((const char *[]){"h  e"}, 1, 0, NULL), MQ_ERR_FORMAT,
                    "tokenizer.ggml.merges[0]");
    expect_rejected(vocab_gguf((const char *[]){"he"}, 1, 0, NULL), MQ_ERR_FORMAT,
                    "tokenizer.ggml.merges[0]");
    /* the merge quoted in the message cannot reach the terminal as an escape sequence or a
     * second line */
    expect_rejected(vocab_gguf((const char *[]){"\x1b[2J n\nfake: ok"}, 1, 0, NULL), MQ_ERR_FORMAT,
                    "merges[0] \"\\x1b[2J n\\nfake: ok\"");
    /* A raw space is not in GPT-2's alphabet (it is stored as U+0120). */
    expect_rejected(vocab_gguf(good, 1, 256, "h e"), MQ_ERR_FORMAT, "tokenizer.ggml.tokens[256]");
    expect_rejected(vocab_gguf(good, 1, 256, "\xff"), MQ_ERR_FORMAT, "tokenizer.ggml.tokens[256]");
    /* Byte 0x41 without its token. */
    expect_rejected(vocab_gguf(good, 1, 'A', "AA"), MQ_ERR_FORMAT, "0x41");

    g = vocab_gguf(good, 1, 0, NULL);
    mq_gguf_set_str(g, "tokenizer.ggml.model", "bert");
    expect_rejected(g, MQ_ERR_UNSUPPORTED, "bert");
    g = vocab_gguf(good, 1, 0, NULL);
    mq_gguf_set_str(g, "tokenizer.ggml.pre", "llama-bpe");
    expect_rejected(g, MQ_ERR_UNSUPPORTED, "llama-bpe");
    g = vocab_gguf(good, 1, 0, NULL);
    int32_t types[3] = {1, 1, 1};
    mq_gguf_set_arr(g, "tokenizer.ggml.token_type", MQ_GGUF_INT32, types, 3);
    expect_rejected(g, MQ_ERR_FORMAT, "token_type");
    g = vocab_gguf(good, 1, 0, NULL);
    mq_gguf_set_u32(g, "tokenizer.ggml.eos_token_id", 257);
    expect_rejected(g, MQ_ERR_FORMAT, "eos_token_id");
    g = mq_gguf_new();
    expect_rejected(g, MQ_ERR_NOT_FOUND, "tokenizer.ggml.model");
}
