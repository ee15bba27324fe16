/* miniquant: byte-level BPE in the GPT-2 convention (see tokenizer.h): building a tokenizer
 * from a vocabulary, pre-tokenization, encoding and decoding. Learning merges is in
 * bpe_train.c, the GGUF keys in tokenizer_gguf.c, the hash tables in hashmap.c.
 *
 * Facts this file relies on, all from GPT-2's encoder.py and llama.cpp's llama-vocab.cpp:
 * - A token's stored text is its bytes mapped one by one through bytes_to_unicode.
 * - Encoding a pre-tokenized piece starts from one symbol per byte and repeatedly merges the
 *   adjacent pair of lowest merge rank, the leftmost one on ties. llama.cpp does exactly this with
 *   a priority queue; for merge tables learned by BPE (each merge's parts exist before it) it
 *   gives the same ids as GPT-2's bpe(), which merges every occurrence of the best pair at once.
 * - llama.cpp's token types: 1 normal, 3 control (matched in text only when parsing special
 *   tokens), 4 user-defined (always matched); control and user-defined tokens decode literally. */
#define _GNU_SOURCE /* memmem, qsort_r */
#include "miniquant/tokenizer.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tokenizer_internal.h"

/* ---- GPT-2's unicode -> bytes mapping (bytes_to_unicode is in tokenizer_internal.h) ---- */

static int cp_to_byte(uint32_t cp) {
    if (cp < 256) return byte_is_printable(cp) ? (int)cp : -1;
    if (cp < 256 + 33) return (int)(cp - 256);
    if (cp < 256 + 67) return (int)(cp - 256 - 33 + 127);
    if (cp == 256 + 67) return 173;
    return -1;
}

/* Decodes one strictly valid UTF-8 character (no overlongs, surrogates or values past
 * U+10FFFF); returns its length, 0 when s does not start with one. */
static size_t get_cp(const unsigned char *s, size_t len, uint32_t *cp) {
    if (len == 0) return 0;
    uint32_t c = s[0];
    if (c < 0x80) {
        *cp = c;
        return 1;
    }
    size_t n;
    uint32_t min;
    if ((c & 0xE0) == 0xC0)
        n = 2, c &= 0x1F, min = 0x80;
    else if ((c & 0xF0) == 0xE0)
        n = 3, c &= 0x0F, min = 0x800;
    else if ((c & 0xF8) == 0xF0)
        n = 4, c &= 0x07, min = 0x10000;
    else
        return 0;
    if (len < n) return 0;
    for (size_t i = 1; i < n; i++) {
        if ((s[i] & 0xC0) != 0x80) return 0;
        c = (c << 6) | (s[i] & 0x3F);
    }
    if (c < min || c > 0x10FFFF || (c >= 0xD800 && c < 0xE000)) return 0;
    *cp = c;
    return n;
}

/* ---- pre-tokenization ---- */

/* GPT-2's pattern. \s is spelled out as Unicode's White_Space property, which is what GPT-2's
 * Python regex and llama.cpp use: PCRE2's \s also takes U+180E (a format character since
 * Unicode 6.3). */
#define WS                                                                                         \
    "\\t-\\r "                                                                                     \
    "\\x{85}\\x{A0}\\x{1680}\\x{2000}-\\x{200A}\\x{2028}\\x{2029}\\x{202F}\\x{205F}\\x{3000}"
static const char GPT2_PATTERN[] = "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^" WS
                                   "\\p{L}\\p{N}]+|[" WS "]+(?![^" WS "])|[" WS "]+";
#undef WS

static pthread_once_t g_re_once = PTHREAD_ONCE_INIT;
static pcre2_code *g_re;
static char g_re_msg[256];

static void re_init(void) {
    int code;
    PCRE2_SIZE off;
    /* MATCH_INVALID_UTF lets any bytes be matched: invalid sequences are never part of a match,
     * and the subject is not re-validated on every call. */
    g_re = pcre2_compile((PCRE2_SPTR)GPT2_PATTERN, PCRE2_ZERO_TERMINATED,
                         PCRE2_UTF | PCRE2_UCP | PCRE2_MATCH_INVALID_UTF, &code, &off, NULL);
    if (!g_re) {
        PCRE2_UCHAR buf[200];
        pcre2_get_error_message(code, buf, sizeof buf);
        snprintf(g_re_msg, sizeof g_re_msg, "at offset %zu: %s", (size_t)off, (char *)buf);
        return;
    }
    /* Without JIT (e.g. no executable memory) pcre2_match interprets: slower, same pieces. */
    pcre2_jit_compile(g_re, PCRE2_JIT_COMPLETE);
}

int mq_pretok_begin(pcre2_match_data **md, mq_error_t *err) {
    pthread_once(&g_re_once, re_init);
    if (!g_re)
        return mq_error_set(err, MQ_ERR_UNSUPPORTED, "pre-tokenizer: PCRE2 rejects the pattern %s",
                            g_re_msg);
    *md = pcre2_match_data_create_from_pattern(g_re, NULL);
    if (!*md) return mq_error_set(err, MQ_ERR_NOMEM, "pre-tokenizer: out of memory");
    return MQ_OK;
}

int mq_pretok_run(pcre2_match_data *md, const char *text, size_t len, piece_fn piece, void *ctx,
                  mq_error_t *err) {
    size_t pos = 0;
    while (pos < len) {
        int rc = pcre2_match(g_re, (PCRE2_SPTR)text, len, pos, 0, md, NULL);
        size_t s = len, e = len;
        if (rc >= 0) {
            const PCRE2_SIZE *ov = pcre2_get_ovector_pointer(md);
            s = ov[0];
            e = ov[1];
        } else if (rc != PCRE2_ERROR_NOMATCH) {
            PCRE2_UCHAR buf[200];
            pcre2_get_error_message(rc, buf, sizeof buf);
            return mq_error_set(err, MQ_ERR_UNSUPPORTED, "pre-tokenizer: at byte %zu: %s", pos,
                                (char *)buf);
        }
        /* Every valid character matches some alternative, so what is skipped is invalid UTF-8:
         * one piece per byte. */
        for (; pos < s; pos++)
            piece(text + pos, 1, ctx);
        if (e > s) piece(text + s, e - s, ctx);
        pos = e > pos ? e : pos + 1;
    }
    return MQ_OK;
}

int mq_pretokenize(const char *text, size_t len, piece_fn piece, void *ctx, mq_error_t *err) {
    if (!text && len) return mq_error_set(err, MQ_ERR_ARG, "pre-tokenizer: NULL text");
    pcre2_match_data *md;
    int rc = mq_pretok_begin(&md, err);
    if (rc) return rc;
    rc = mq_pretok_run(md, text, len, piece, ctx, err);
    pcre2_match_data_free(md);
    return rc;
}

/* ---- the tokenizer ---- */

static int type_is_literal(int32_t type) {
    return type == MQ_TOKEN_UNKNOWN || type == MQ_TOKEN_CONTROL || type == MQ_TOKEN_USER_DEFINED ||
           type == MQ_TOKEN_UNUSED;
}

void mq_tokenizer_free(mq_tokenizer_t *t) {
    if (!t) return;
    free(t->text);
    free(t->text_off);
    free(t->text_len);
    free(t->bytes);
    free(t->bytes_off);
    free(t->bytes_len);
    free(t->type);
    free(t->score);
    free(t->strip);
    mq_strmap_free(&t->by_text);
    free(t->merge);
    mq_u64map_free(&t->rank);
    free(t->special);
    pthread_rwlock_destroy(&t->cache_lock);
    mq_strmap_free(&t->cache);
    free(t->cache_ids);
    free(t);
}

int mq_tokenizer_n_vocab(const mq_tokenizer_t *t) {
    return t->n_vocab;
}
int32_t mq_tokenizer_eot(const mq_tokenizer_t *t) {
    return t->eot;
}
int32_t mq_tokenizer_bos(const mq_tokenizer_t *t) {
    return t->bos;
}
int32_t mq_tokenizer_eos(const mq_tokenizer_t *t) {
    return t->eos;
}
int mq_tokenizer_adds_bos(const mq_tokenizer_t *t) {
    return t->add_bos && t->bos >= 0;
}
mq_tokenizer_model_t mq_tokenizer_model(const mq_tokenizer_t *t) {
    return t->model;
}
const char *mq_tokenizer_model_name(const mq_tokenizer_t *t) {
    return t->model == MQ_TOKENIZER_SPM ? "llama" : "gpt2";
}
int mq_tokenizer_n_merges(const mq_tokenizer_t *t) {
    return t->n_merges;
}

const char *mq_tokenizer_token_text(const mq_tokenizer_t *t, int32_t id) {
    return id >= 0 && id < t->n_vocab ? tok_text(t, id) : NULL;
}

int32_t mq_tokenizer_token_type(const mq_tokenizer_t *t, int32_t id) {
    return id >= 0 && id < t->n_vocab ? t->type[id] : -1;
}

int mq_tokenizer_merge(const mq_tokenizer_t *t, int rank, int32_t *left, int32_t *right) {
    if (rank < 0 || rank >= t->n_merges) return MQ_ERR_ARG;
    *left = t->merge[2 * rank];
    *right = t->merge[2 * rank + 1];
    return MQ_OK;
}

static int cmp_special(const void *pa, const void *pb, void *pt) {
    const mq_tokenizer_t *t = pt;
    int32_t a = *(const int32_t *)pa, b = *(const int32_t *)pb;
    if (t->text_len[a] != t->text_len[b]) return t->text_len[a] > t->text_len[b] ? -1 : 1;
    return (a > b) - (a < b);
}

int mq_tok_vocab_err(mq_error_t *err, int code, const char *name, const char *fmt, ...) {
    char msg[sizeof err->msg];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    mq_error_set(err, code, "%s: %s", name, msg);
    return code;
}

int mq_tok_named(mq_error_t *err, int code, const char *name) {
    mq_error_prefix(err, "%s", name);
    return code;
}

/* SentencePiece's space, U+2581, in UTF-8. */
#define SPM_SPACE "\xe2\x96\x81"

static int hex_digit(unsigned char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return -1;
}

/* What token s[0..len) of type `type` decodes to, written to out (at most len bytes): its length,
 * or -1 with *why (and *at, the byte) when the token cannot be. */
static long token_bytes(mq_tokenizer_model_t model, const unsigned char *s, size_t len,
                        int32_t type, char *out, const char **why, size_t *at) {
    *at = 0;
    if (model == MQ_TOKENIZER_SPM) {
        switch (type) {
        case MQ_TOKEN_NORMAL: {
            size_t nb = 0;
            for (size_t p = 0; p < len;) {
                if (len - p >= 3 && !memcmp(s + p, SPM_SPACE, 3)) {
                    out[nb++] = ' ';
                    p += 3;
                } else {
                    out[nb++] = (char)s[p++];
                }
            }
            return (long)nb;
        }
        case MQ_TOKEN_BYTE: {
            int hi = len == 6 ? hex_digit(s[3]) : -1, lo = len == 6 ? hex_digit(s[4]) : -1;
            if (len != 6 || memcmp(s, "<0x", 3) || s[5] != '>' || hi < 0 || lo < 0) {
                *why = "a byte token not spelled <0xXX>";
                return -1;
            }
            out[0] = (char)(hi << 4 | lo);
            return 1;
        }
        case MQ_TOKEN_UNUSED:
        case MQ_TOKEN_UNDEFINED: return 0; /* llama.cpp's token_to_piece writes nothing for them */
        default:
            memcpy(out, s, len); /* control, unknown, user-defined: their text */
            return (long)len;
        }
    }
    if (type_is_literal(type)) {
        memcpy(out, s, len);
        return (long)len;
    }
    size_t nb = 0;
    for (size_t p = 0; p < len;) {
        uint32_t cp;
        size_t k = get_cp(s + p, len - p, &cp);
        int b = k ? cp_to_byte(cp) : -1;
        if (!k || b < 0) {
            *why = !k ? "invalid UTF-8" : "character outside GPT-2's byte alphabet";
            *at = p;
            return -1;
        }
        out[nb++] = (char)b;
        p += k;
    }
    return (long)nb;
}

/* A new tokenizer of the given model holding tokens[0..n) with their types (NULL: normal): texts,
 * the bytes each decodes to, the text -> id map, and the special tokens longest first. Byte ids,
 * scores and merges are the caller's. */
static int tok_new(mq_tokenizer_model_t model, const mq_gguf_str_t *tokens, const int32_t *types,
                   int64_t n, int64_t n_merges, const char *name, mq_tokenizer_t **out,
                   mq_error_t *err) {
    *out = NULL;
    int64_t min = model == MQ_TOKENIZER_BPE ? 256 : 1;
    if (n < min || n > INT32_MAX / 2)
        return VOCAB_ERR(MQ_ERR_FORMAT, "tokenizer.ggml.tokens: %lld tokens (need %lld .. %d)",
                         (long long)n, (long long)min, INT32_MAX / 2);
    if (n_merges < 0 || n_merges > INT32_MAX / 2)
        return VOCAB_ERR(MQ_ERR_FORMAT, "tokenizer.ggml.merges: %lld merges", (long long)n_merges);
    mq_tokenizer_t *t = calloc(1, sizeof *t);
    if (!t) return mq_error_set(err, MQ_ERR_NOMEM, "tokenizer: out of memory");
    if (pthread_rwlock_init(&t->cache_lock, NULL)) {
        free(t);
        return mq_error_set(err, MQ_ERR_NOMEM, "tokenizer: cannot create a lock");
    }
    t->model = model;
    t->eot = t->bos = t->eos = t->unk = -1;
    int rc = MQ_OK;
    size_t text_total = 0, bytes_total = 0;
    for (int64_t i = 0; i < n; i++) {
        text_total += tokens[i].len + 1;
        bytes_total += tokens[i].len;
    }
    t->n_vocab = (int32_t)n;
    t->text = malloc(text_total);
    t->bytes = malloc(bytes_total + 1);
    t->text_off = malloc(n * sizeof *t->text_off);
    t->text_len = malloc(n * sizeof *t->text_len);
    t->bytes_off = malloc(n * sizeof *t->bytes_off);
    t->bytes_len = malloc(n * sizeof *t->bytes_len);
    t->type = malloc(n * sizeof *t->type);
    t->merge = malloc((n_merges ? n_merges : 1) * 2 * sizeof *t->merge);
    t->special = malloc(n * sizeof *t->special);
    if (!t->text || !t->bytes || !t->text_off || !t->text_len || !t->bytes_off || !t->bytes_len ||
        !t->type || !t->merge || !t->special) {
        rc = mq_error_set(err, MQ_ERR_NOMEM, "tokenizer: out of memory");
        goto fail;
    }

    size_t toff = 0, boff = 0;
    for (int64_t i = 0; i < n; i++) {
        const unsigned char *s = (const unsigned char *)tokens[i].ptr;
        size_t len = tokens[i].len;
        int32_t type = types ? types[i] : MQ_TOKEN_NORMAL;
        if (type < 0 || type > MQ_TOKEN_BYTE) {
            rc = VOCAB_ERR(MQ_ERR_FORMAT, "tokenizer.ggml.token_type[%lld]: unknown type %d",
                           (long long)i, type);
            goto fail;
        }
        if (len == 0 || len > UINT32_MAX / 2 || memchr(s, 0, len)) {
            rc = VOCAB_ERR(MQ_ERR_FORMAT, "tokenizer.ggml.tokens[%lld]: %s", (long long)i,
                           len == 0 ? "empty token" : "token holds a NUL byte or is too long");
            goto fail;
        }
        t->text_off[i] = toff;
        t->text_len[i] = (uint32_t)len;
        t->bytes_off[i] = boff;
        t->type[i] = type;
        memcpy(t->text + toff, s, len);
        t->text[toff + len] = '\0';
        toff += len + 1;
        const char *why = NULL;
        size_t at;
        long nb = token_bytes(model, s, len, type, t->bytes + boff, &why, &at);
        if (nb < 0) {
            rc = VOCAB_ERR(MQ_ERR_FORMAT, "tokenizer.ggml.tokens[%lld]: %s at byte %zu",
                           (long long)i, why, at);
            goto fail;
        }
        t->bytes_len[i] = (uint32_t)nb;
        boff += (size_t)nb;
        if (mq_strmap_put(&t->by_text, (const char *)s, len, str_hash((const char *)s, len),
                          (uint64_t)i, NULL)) {
            rc = mq_error_set(err, MQ_ERR_NOMEM, "tokenizer: out of memory");
            goto fail;
        }
    }
    /* llama.cpp's cache of special tokens: control, unknown and user-defined ones */
    for (int32_t i = 0; i < t->n_vocab; i++)
        if (t->type[i] == MQ_TOKEN_CONTROL || t->type[i] == MQ_TOKEN_USER_DEFINED ||
            t->type[i] == MQ_TOKEN_UNKNOWN)
            t->special[t->n_special++] = i;
    qsort_r(t->special, t->n_special, sizeof *t->special, cmp_special, t);
    *out = t;
    return MQ_OK;
fail:
    mq_tokenizer_free(t);
    return rc;
}

int mq_tok_build_spm(const mq_gguf_str_t *tokens, const float *scores, const int32_t *types,
                     int64_t n, const mq_spm_config_t *cfg, const char *name, mq_tokenizer_t **out,
                     mq_error_t *err) {
    mq_tokenizer_t *t;
    int rc = tok_new(MQ_TOKENIZER_SPM, tokens, types, n, 0, name, &t, err);
    if (rc) return rc;
    if (!(t->score = malloc(n * sizeof *t->score))) {
        mq_tokenizer_free(t);
        return mq_error_set(err, MQ_ERR_NOMEM, "tokenizer: out of memory");
    }
    for (int64_t i = 0; i < n; i++) {
        float s = scores ? scores[i] : 0.0f;
        if (s != s) {
            mq_tokenizer_free(t);
            return VOCAB_ERR(MQ_ERR_FORMAT, "tokenizer.ggml.scores[%lld] is not a number",
                             (long long)i);
        }
        t->score[i] = s;
    }
    const struct {
        const char *key;
        int32_t id, *dst;
    } ids[3] = {{"bos_token_id", cfg->bos, &t->bos},
                {"eos_token_id", cfg->eos, &t->eos},
                {"unknown_token_id", cfg->unk, &t->unk}};
    for (int k = 0; k < 3; k++) {
        if (ids[k].id < -1 || ids[k].id >= t->n_vocab) {
            mq_tokenizer_free(t);
            return VOCAB_ERR(MQ_ERR_FORMAT, "tokenizer.ggml.%s is %d, outside the vocabulary",
                             ids[k].key, ids[k].id);
        }
        *ids[k].dst = ids[k].id;
    }
    t->add_space_prefix = !!cfg->add_space_prefix;
    t->add_bos = !!cfg->add_bos;
    t->add_eos = !!cfg->add_eos;
    /* byte fallback, as llama.cpp's byte_to_token: <0xXX>, else the byte as a one-byte token */
    static const char hex[] = "0123456789ABCDEF";
    for (int b = 0; b < 256; b++) {
        char buf[6] = {'<', '0', 'x', hex[b >> 4], hex[b & 15], '>'}, one = (char)b;
        int32_t id = tok_lookup(t, buf, sizeof buf);
        t->byte_id[b] = id >= 0 ? id : tok_lookup(t, &one, 1);
    }
    t->eot = tok_lookup(t, MQ_EOT_TEXT, strlen(MQ_EOT_TEXT));
    *out = t;
    return MQ_OK;
}

int mq_tok_build(const mq_gguf_str_t *tokens, const int32_t *types, int64_t n,
                 const mq_gguf_str_t *merges, int64_t n_merges, const char *name,
                 mq_tokenizer_t **out, mq_error_t *err) {
    mq_tokenizer_t *t;
    int rc = tok_new(MQ_TOKENIZER_BPE, tokens, types, n, n_merges, name, &t, err);
    if (rc) return rc;
    for (int b = 0; b < 256; b++) {
        char buf[2];
        size_t k = put_cp(buf, byte_to_cp((uint8_t)b));
        int32_t id = tok_lookup(t, buf, k);
        if (id < 0 || type_is_literal(t->type[id])) {
            rc = VOCAB_ERR(MQ_ERR_FORMAT, "tokenizer.ggml.tokens: no normal token for byte 0x%02x",
                           b);
            goto fail;
        }
        t->byte_id[b] = id;
    }
    t->eot = tok_lookup(t, MQ_EOT_TEXT, strlen(MQ_EOT_TEXT));
    t->bos = t->eos = t->eot;
    size_t max_merge = 1;
    for (int64_t r = 0; r < n_merges; r++)
        if (merges[r].len > max_merge) max_merge = merges[r].len;
    char *cat = malloc(max_merge);
    if (!cat) {
        rc = mq_error_set(err, MQ_ERR_NOMEM, "tokenizer: out of memory");
        goto fail;
    }
    for (int64_t r = 0; r < n_merges; r++) {
        const char *s = merges[r].ptr;
        size_t len = merges[r].len;
        const char *sp = memchr(s, ' ', len);
        const char *why = NULL;
        int32_t a = -1, b = -1, c = -1;
        if (!sp || sp == s || sp == s + len - 1 || memchr(sp + 1, ' ', len - (sp + 1 - s))) {
            why = "not two tokens separated by one space";
        } else if ((a = tok_lookup(t, s, sp - s)) < 0) {
            why = "its left token is not in the vocabulary";
        } else if ((b = tok_lookup(t, sp + 1, len - (sp + 1 - s))) < 0) {
            why = "its right token is not in the vocabulary";
        } else {
            memcpy(cat, s, sp - s);
            memcpy(cat + (sp - s), sp + 1, len - (sp + 1 - s));
            c = tok_lookup(t, cat, len - 1);
            if (c < 0)
                why = "the joined token is not in the vocabulary";
            else if (type_is_literal(t->type[c]))
                why = "the joined token is not a normal token";
        }
        if (why) {
            free(cat);
            rc = VOCAB_ERR(MQ_ERR_FORMAT, "tokenizer.ggml.merges[%lld] \"%.*s\": %s", (long long)r,
                           (int)(len < 200 ? len : 200), s, why);
            goto fail;
        }
        t->merge[2 * r] = a;
        t->merge[2 * r + 1] = b;
        /* A repeated merge keeps its first rank, as llama.cpp's bpe_ranks.emplace does. */
        if (!mq_u64map_find(&t->rank, pair_key(a, b)) &&
            mq_u64map_put(&t->rank, pair_key(a, b), (uint64_t)r << 32 | (uint32_t)c)) {
            free(cat);
            rc = mq_error_set(err, MQ_ERR_NOMEM, "tokenizer: out of memory");
            goto fail;
        }
    }
    free(cat);
    t->n_merges = (int32_t)n_merges;
    *out = t;
    return MQ_OK;
fail:
    mq_tokenizer_free(t);
    return rc;
}

int mq_tokenizer_from_vocab(const char *const *tokens, const int32_t *types, int32_t n_tokens,
                            const char *const *merges, int32_t n_merges, const char *name,
                            mq_tokenizer_t **out, mq_error_t *err) {
    *out = NULL;
    if (n_tokens < 0 || n_merges < 0 || (n_tokens && !tokens) || (n_merges && !merges))
        return mq_error_set(err, MQ_ERR_ARG, "tokenizer: bad vocabulary arguments");
    mq_gguf_str_t *s = malloc(((size_t)n_tokens + n_merges + 1) * sizeof *s);
    if (!s) return mq_error_set(err, MQ_ERR_NOMEM, "tokenizer: out of memory");
    for (int32_t i = 0; i < n_tokens; i++)
        s[i] = (mq_gguf_str_t){tokens[i], strlen(tokens[i])};
    for (int32_t i = 0; i < n_merges; i++)
        s[n_tokens + i] = (mq_gguf_str_t){merges[i], strlen(merges[i])};
    int rc = mq_tok_build(s, types, n_tokens, s + n_tokens, n_merges, name ? name : "vocabulary",
                          out, err);
    free(s);
    return rc;
}

int mq_tokenizer_from_spm_vocab(const char *const *tokens, const float *scores,
                                const int32_t *types, int32_t n_tokens, const mq_spm_config_t *cfg,
                                const char *name, mq_tokenizer_t **out, mq_error_t *err) {
    *out = NULL;
    if (n_tokens < 0 || (n_tokens && !tokens) || !cfg)
        return mq_error_set(err, MQ_ERR_ARG, "tokenizer: bad vocabulary arguments");
    mq_gguf_str_t *s = malloc(((size_t)n_tokens + 1) * sizeof *s);
    if (!s) return mq_error_set(err, MQ_ERR_NOMEM, "tokenizer: out of memory");
    for (int32_t i = 0; i < n_tokens; i++)
        s[i] = (mq_gguf_str_t){tokens[i], strlen(tokens[i])};
    int rc =
        mq_tok_build_spm(s, scores, types, n_tokens, cfg, name ? name : "vocabulary", out, err);
    free(s);
    return rc;
}

/* ---- encoding ---- */

/* Longest piece whose ids are remembered, and bounds on what the cache may hold. */
enum { CACHE_MAX_PIECE = 128, CACHE_MAX_ENTRIES = 1 << 20, CACHE_MAX_IDS = 1 << 23 };

typedef struct bpe_sym {
    int32_t id; /* -1 once merged into its left neighbour */
    int32_t prev, next;
} bpe_sym_t;

typedef struct bpe_pair {
    uint32_t rank;
    int32_t left, right; /* symbol indices */
    int32_t left_id, right_id, result;
} bpe_pair_t;

typedef struct enc {
    mq_tokenizer_t *t;
    int32_t *ids;
    size_t n, cap;
    bpe_sym_t *sym;
    size_t sym_cap;
    bpe_pair_t *heap;
    size_t n_heap, heap_cap;
    int status;
} enc_t;

static int pair_less(const bpe_pair_t *x, const bpe_pair_t *y) {
    return x->rank < y->rank || (x->rank == y->rank && x->left < y->left);
}

static void bpe_push(enc_t *e, int32_t left, int32_t right) {
    if (left < 0 || right < 0) return;
    const bpe_sym_t *sym = e->sym;
    const uint64_t *v = mq_u64map_find(&e->t->rank, pair_key(sym[left].id, sym[right].id));
    if (!v) return;
    bpe_pair_t p = {(uint32_t)(*v >> 32), left, right, sym[left].id, sym[right].id, (int32_t)*v};
    size_t i = e->n_heap++;
    while (i > 0 && pair_less(&p, &e->heap[(i - 1) / 2])) {
        e->heap[i] = e->heap[(i - 1) / 2];
        i = (i - 1) / 2;
    }
    e->heap[i] = p;
}

static bpe_pair_t bpe_pop(enc_t *e) {
    bpe_pair_t top = e->heap[0], last = e->heap[--e->n_heap];
    size_t i = 0, n = e->n_heap;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= n) break;
        if (c + 1 < n && pair_less(&e->heap[c + 1], &e->heap[c])) c++;
        if (!pair_less(&e->heap[c], &last)) break;
        e->heap[i] = e->heap[c];
        i = c;
    }
    if (n) e->heap[i] = last;
    return top;
}

/* Appends the ids of one piece: one symbol per byte, then merges by rank. */
static int bpe_piece(enc_t *e, const unsigned char *s, size_t len) {
    if (len == 0) return MQ_OK;
    if (len > INT32_MAX / 4) return MQ_ERR_UNSUPPORTED;
    /* Each merge adds at most two pairs to the len - 1 it starts with. */
    if (grow((void **)&e->sym, &e->sym_cap, len, sizeof *e->sym) ||
        grow((void **)&e->heap, &e->heap_cap, 3 * len, sizeof *e->heap) ||
        grow((void **)&e->ids, &e->cap, e->n + len, sizeof *e->ids))
        return MQ_ERR_NOMEM;
    bpe_sym_t *sym = e->sym;
    for (size_t i = 0; i < len; i++)
        sym[i] =
            (bpe_sym_t){e->t->byte_id[s[i]], (int32_t)i - 1, i + 1 < len ? (int32_t)i + 1 : -1};
    e->n_heap = 0;
    for (size_t i = 1; i < len; i++)
        bpe_push(e, (int32_t)i - 1, (int32_t)i);
    while (e->n_heap) {
        bpe_pair_t p = bpe_pop(e);
        bpe_sym_t *l = &sym[p.left], *r = &sym[p.right];
        if (l->id != p.left_id || r->id != p.right_id || l->next != p.right) continue; /* stale */
        l->id = p.result;
        r->id = -1;
        l->next = r->next;
        if (r->next >= 0) sym[r->next].prev = p.left;
        bpe_push(e, l->prev, p.left);
        bpe_push(e, p.left, l->next);
    }
    for (int32_t i = 0; i >= 0; i = sym[i].next)
        e->ids[e->n++] = sym[i].id;
    return MQ_OK;
}

static void enc_piece(const char *start, size_t len, void *ctx) {
    enc_t *e = ctx;
    if (e->status) return;
    mq_tokenizer_t *t = e->t;
    uint64_t h = 0;
    if (len <= CACHE_MAX_PIECE) {
        h = str_hash(start, len);
        pthread_rwlock_rdlock(&t->cache_lock);
        smslot_t *c = mq_strmap_find(&t->cache, start, len, h);
        if (c) {
            size_t off = c->val >> 32, k = c->val & 0xFFFFFFFFu;
            if (grow((void **)&e->ids, &e->cap, e->n + k, sizeof *e->ids)) {
                e->status = MQ_ERR_NOMEM;
            } else {
                memcpy(e->ids + e->n, t->cache_ids + off, k * sizeof *e->ids);
                e->n += k;
            }
            pthread_rwlock_unlock(&t->cache_lock);
            return;
        }
        pthread_rwlock_unlock(&t->cache_lock);
    }
    size_t first = e->n;
    e->status = bpe_piece(e, (const unsigned char *)start, len);
    if (e->status || len > CACHE_MAX_PIECE) return;
    size_t k = e->n - first;
    pthread_rwlock_wrlock(&t->cache_lock);
    /* The cache only speeds things up: when full or out of memory, pieces go uncached. */
    if (t->cache.n < CACHE_MAX_ENTRIES && t->cache_n + k <= CACHE_MAX_IDS &&
        !mq_strmap_find(&t->cache, start, len, h) &&
        !grow((void **)&t->cache_ids, &t->cache_cap, t->cache_n + k, sizeof *t->cache_ids)) {
        memcpy(t->cache_ids + t->cache_n, e->ids + first, k * sizeof *e->ids);
        if (!mq_strmap_put(&t->cache, start, len, h, (uint64_t)t->cache_n << 32 | k, NULL))
            t->cache_n += k;
    }
    pthread_rwlock_unlock(&t->cache_lock);
}

typedef struct frag {
    size_t start, len;
    int32_t id; /* a special token, or -1 for text */
} frag_t;

/* Splits text around special tokens as llama.cpp does: the longest special token first, each
 * splitting the text that earlier ones left, leftmost occurrences first. */
static int split_special(const mq_tokenizer_t *t, const char *text, size_t len, int flags,
                         frag_t **out, size_t *n_out) {
    size_t n = 1, cap = 4;
    frag_t *f = malloc(cap * sizeof *f);
    if (!f) return MQ_ERR_NOMEM;
    f[0] = (frag_t){0, len, -1};
    for (int32_t k = 0; k < t->n_special; k++) {
        int32_t id = t->special[k];
        if (t->type[id] != MQ_TOKEN_USER_DEFINED && !(flags & MQ_TOK_PARSE_SPECIAL)) continue;
        const char *tk = tok_text(t, id);
        size_t tl = t->text_len[id];
        for (size_t i = 0; i < n; i++) {
            if (f[i].id >= 0) continue;
            const char *hit = memmem(text + f[i].start, f[i].len, tk, tl);
            if (!hit) continue;
            size_t at = hit - text, end = f[i].start + f[i].len;
            if (grow((void **)&f, &cap, n + 2, sizeof *f)) {
                free(f);
                return MQ_ERR_NOMEM;
            }
            /* [before][token][after]; "after" is searched again on the next iteration. */
            memmove(f + i + 3, f + i + 1, (n - i - 1) * sizeof *f);
            n += 2;
            /* llama.cpp's lstrip / rstrip: whitespace before / after the token goes with it */
            size_t left = at - f[i].start, right = at + tl;
            if (t->strip && (t->strip[id] & MQ_TOK_LSTRIP))
                while (left > 0 && isspace((unsigned char)text[f[i].start + left - 1]))
                    left--;
            if (t->strip && (t->strip[id] & MQ_TOK_RSTRIP))
                while (right < end && isspace((unsigned char)text[right]))
                    right++;
            f[i + 2] = (frag_t){right, end - right, -1};
            f[i + 1] = (frag_t){at, tl, id};
            f[i].len = left;
        }
    }
    *out = f;
    *n_out = n;
    return MQ_OK;
}

/* Appends one id, recording running out of memory in e->status. */
static void enc_push(enc_t *e, int32_t id) {
    if (grow((void **)&e->ids, &e->cap, e->n + 1, sizeof *e->ids))
        e->status = MQ_ERR_NOMEM;
    else
        e->ids[e->n++] = id;
}

int mq_tokenizer_encode(const mq_tokenizer_t *t, const char *text, size_t len, int flags,
                        int32_t **ids, size_t *n_ids, mq_error_t *err) {
    *ids = NULL;
    *n_ids = 0;
    if (flags & ~(MQ_TOK_PARSE_SPECIAL | MQ_TOK_ADD_SPECIAL))
        return mq_error_set(err, MQ_ERR_ARG, "tokenizer: unknown encode flags 0x%x", flags);
    if (!text && len) return mq_error_set(err, MQ_ERR_ARG, "tokenizer: NULL text");
    int add_bos = (flags & MQ_TOK_ADD_SPECIAL) && t->add_bos,
        add_eos = (flags & MQ_TOK_ADD_SPECIAL) && t->add_eos;
    if ((add_bos && t->bos < 0) || (add_eos && t->eos < 0))
        return mq_error_set(err, MQ_ERR_ARG,
                            "tokenizer: the vocabulary asks for a %s token but has none",
                            add_bos && t->bos < 0 ? "beginning-of-sequence" : "end-of-sequence");
    enc_t e = {.t = (mq_tokenizer_t *)t};
    frag_t *f = NULL;
    size_t nf = 0;
    pcre2_match_data *md = NULL;
    int rc = t->model == MQ_TOKENIZER_BPE ? mq_pretok_begin(&md, err) : MQ_OK;
    if (rc) return rc;
    if (split_special(t, text, len, flags, &f, &nf)) {
        rc = mq_error_set(err, MQ_ERR_NOMEM, "tokenizer: out of memory");
        goto done;
    }
    if (add_bos) enc_push(&e, t->bos);
    int prev_special = 1; /* SentencePiece's space prefix goes before the text after a special */
    for (size_t i = 0; i < nf && !rc && !e.status; i++) {
        if (f[i].id >= 0) {
            enc_push(&e, f[i].id);
            prev_special = 1;
        } else if (t->model == MQ_TOKENIZER_BPE) {
            rc = mq_pretok_run(md, text + f[i].start, f[i].len, enc_piece, &e, err);
        } else if (f[i].len) { /* llama.cpp keeps no empty fragment */
            int bad = -1;
            e.status =
                mq_tok_spm_encode(t, text + f[i].start, f[i].len,
                                  t->add_space_prefix && prev_special, &e.ids, &e.n, &e.cap, &bad);
            if (e.status == MQ_ERR_ARG)
                rc = mq_error_set(err, MQ_ERR_ARG,
                                  "tokenizer: the text holds byte 0x%02x, which the vocabulary "
                                  "has no token for (no byte token <0x%02X>)",
                                  bad, bad);
            prev_special = 0;
        }
    }
    if (add_eos && !rc && !e.status) enc_push(&e, t->eos);
    if (!rc && e.status)
        rc = mq_error_set(err, e.status, "tokenizer: %s",
                          e.status == MQ_ERR_NOMEM ? "out of memory" : "piece too long");
done:
    pcre2_match_data_free(md);
    free(f);
    free(e.sym);
    free(e.heap);
    if (rc) {
        free(e.ids);
        return rc;
    }
    *ids = e.ids ? e.ids : malloc(sizeof *e.ids);
    if (!*ids) return mq_error_set(err, MQ_ERR_NOMEM, "tokenizer: out of memory");
    *n_ids = e.n;
    return MQ_OK;
}

int mq_tokenizer_decode(const mq_tokenizer_t *t, const int32_t *ids, size_t n_ids, char **text,
                        size_t *len, mq_error_t *err) {
    *text = NULL;
    *len = 0;
    size_t total = 0;
    for (size_t i = 0; i < n_ids; i++) {
        if (ids[i] < 0 || ids[i] >= t->n_vocab)
            return mq_error_set(err, MQ_ERR_ARG,
                                "tokenizer: token %zu has id %d, outside the vocabulary 0..%d", i,
                                ids[i], t->n_vocab - 1);
        total += t->bytes_len[ids[i]];
    }
    char *s = malloc(total + 1);
    if (!s) return mq_error_set(err, MQ_ERR_NOMEM, "tokenizer: out of memory");
    size_t p = 0;
    for (size_t i = 0; i < n_ids; i++) {
        const char *b = t->bytes + t->bytes_off[ids[i]];
        size_t k = t->bytes_len[ids[i]];
        if (i == 0 && t->add_space_prefix && k && b[0] == ' ') { /* the prefix space */
            b++;
            k--;
        }
        memcpy(s + p, b, k);
        p += k;
    }
    s[p] = '\0';
    *text = s;
    *len = p;
    return MQ_OK;
}
