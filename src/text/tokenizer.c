/* miniquant: byte-level BPE in the GPT-2 convention (see tokenizer.h).
 *
 * Facts this file relies on, all from GPT-2's encoder.py and llama.cpp's llama-vocab.cpp:
 * - A token's stored text is its bytes mapped one by one through bytes_to_unicode.
 * - Encoding a pre-tokenized piece starts from one symbol per byte and repeatedly merges the
 *   adjacent pair of lowest merge rank, the leftmost one on ties. llama.cpp does exactly this with
 *   a priority queue; for merge tables learned by BPE (each merge's parts exist before it) it
 *   gives the same ids as GPT-2's bpe(), which merges every occurrence of the best pair at once.
 * - llama.cpp's token types: 1 normal, 3 control (matched in text only when parsing special
 *   tokens), 4 user-defined (always matched); control and user-defined tokens decode literally. */
#define _GNU_SOURCE /* memmem */
#include "miniquant/tokenizer.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "miniquant/progress.h"
#include "miniquant/rng.h"

/* ---- GPT-2's byte <-> unicode mapping ---- */

static int byte_is_printable(uint32_t b) {
    return (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174 && b <= 255);
}

/* bytes_to_unicode: the 188 printable bytes stand for themselves, the other 68 (0..32, 127..160,
 * 173) take U+0100.. in byte order, so every token is printable text without spaces. */
static uint32_t byte_to_cp(uint8_t b) {
    if (byte_is_printable(b)) return b;
    if (b <= 32) return 256u + b;
    if (b <= 160) return 256u + 33u + (b - 127u);
    return 256u + 67u; /* 173, the soft hyphen */
}

static int cp_to_byte(uint32_t cp) {
    if (cp < 256) return byte_is_printable(cp) ? (int)cp : -1;
    if (cp < 256 + 33) return (int)(cp - 256);
    if (cp < 256 + 67) return (int)(cp - 256 - 33 + 127);
    if (cp == 256 + 67) return 173;
    return -1;
}

/* The mapped alphabet lies below U+0800: one or two bytes of UTF-8. */
static size_t put_cp(char *out, uint32_t cp) {
    if (cp < 0x80) {
        out[0] = (char)cp;
        return 1;
    }
    out[0] = (char)(0xC0 | (cp >> 6));
    out[1] = (char)(0x80 | (cp & 0x3F));
    return 2;
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

/* ---- hash maps ---- */

/* Byte strings -> uint64, open addressing with linear probing; the map owns copies of its keys
 * (NUL-terminated, back to back in one block). A stored hash of 0 marks an empty slot. */
typedef struct smslot {
    uint64_t hash;
    uint64_t val;
    size_t off;
    size_t len;
} smslot_t;

typedef struct strmap {
    smslot_t *slot;
    size_t cap, n; /* cap is 0 or a power of two */
    char *keys;
    size_t keys_len, keys_cap;
} strmap_t;

static uint64_t str_hash(const char *s, size_t len) {
    uint64_t h = mq_hash64(s, len);
    return h ? h : 1;
}

static smslot_t *strmap_find(const strmap_t *m, const char *s, size_t len, uint64_t h) {
    if (!m->cap) return NULL;
    size_t mask = m->cap - 1;
    for (size_t i = h & mask;; i = (i + 1) & mask) {
        smslot_t *e = &m->slot[i];
        if (!e->hash) return NULL;
        if (e->hash == h && e->len == len && memcmp(m->keys + e->off, s, len) == 0) return e;
    }
}

static int strmap_grow(strmap_t *m) {
    size_t cap = m->cap ? 2 * m->cap : 64;
    smslot_t *slot = calloc(cap, sizeof *slot);
    if (!slot) return MQ_ERR_NOMEM;
    for (size_t j = 0; j < m->cap; j++) {
        if (!m->slot[j].hash) continue;
        size_t i = m->slot[j].hash & (cap - 1);
        while (slot[i].hash)
            i = (i + 1) & (cap - 1);
        slot[i] = m->slot[j];
    }
    free(m->slot);
    m->slot = slot;
    m->cap = cap;
    return MQ_OK;
}

/* Sets key s to val (adding the key when new); *slot (optional) receives its slot. */
static int strmap_put(strmap_t *m, const char *s, size_t len, uint64_t h, uint64_t val,
                      smslot_t **slot) {
    smslot_t *e = strmap_find(m, s, len, h);
    if (!e) {
        if (2 * (m->n + 1) > m->cap && strmap_grow(m)) return MQ_ERR_NOMEM;
        if (m->keys_len + len + 1 > m->keys_cap) {
            size_t cap = m->keys_cap ? m->keys_cap : 1024;
            while (m->keys_len + len + 1 > cap)
                cap *= 2;
            char *keys = realloc(m->keys, cap);
            if (!keys) return MQ_ERR_NOMEM;
            m->keys = keys;
            m->keys_cap = cap;
        }
        size_t i = h & (m->cap - 1);
        while (m->slot[i].hash)
            i = (i + 1) & (m->cap - 1);
        e = &m->slot[i];
        e->hash = h;
        e->off = m->keys_len;
        e->len = len;
        memcpy(m->keys + m->keys_len, s, len);
        m->keys[m->keys_len + len] = '\0';
        m->keys_len += len + 1;
        m->n++;
    }
    e->val = val;
    if (slot) *slot = e;
    return MQ_OK;
}

static int strmap_get(const strmap_t *m, const char *s, size_t len, uint64_t *val) {
    smslot_t *e = strmap_find(m, s, len, str_hash(s, len));
    if (e && val) *val = e->val;
    return e != NULL;
}

static void strmap_free(strmap_t *m) {
    free(m->slot);
    free(m->keys);
    memset(m, 0, sizeof *m);
}

/* uint64 -> uint64; the key UINT64_MAX marks an empty slot (pair keys never reach it). */
typedef struct u64map {
    uint64_t *key, *val;
    size_t cap, n;
} u64map_t;

static uint64_t mix64(uint64_t x) {
    x ^= x >> 30;
    x *= 0xbf58476d1ce4e5b9ull;
    x ^= x >> 27;
    x *= 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

static uint64_t *u64map_find(const u64map_t *m, uint64_t k) {
    if (!m->cap) return NULL;
    size_t mask = m->cap - 1;
    for (size_t i = mix64(k) & mask;; i = (i + 1) & mask) {
        if (m->key[i] == k) return &m->val[i];
        if (m->key[i] == UINT64_MAX) return NULL;
    }
}

static int u64map_put(u64map_t *m, uint64_t k, uint64_t v) {
    uint64_t *p = u64map_find(m, k);
    if (p) {
        *p = v;
        return MQ_OK;
    }
    if (2 * (m->n + 1) > m->cap) {
        size_t cap = m->cap ? 2 * m->cap : 64;
        uint64_t *key = malloc(cap * sizeof *key), *val = malloc(cap * sizeof *val);
        if (!key || !val) {
            free(key);
            free(val);
            return MQ_ERR_NOMEM;
        }
        memset(key, 0xFF, cap * sizeof *key);
        for (size_t j = 0; j < m->cap; j++) {
            if (m->key[j] == UINT64_MAX) continue;
            size_t i = mix64(m->key[j]) & (cap - 1);
            while (key[i] != UINT64_MAX)
                i = (i + 1) & (cap - 1);
            key[i] = m->key[j];
            val[i] = m->val[j];
        }
        free(m->key);
        free(m->val);
        m->key = key;
        m->val = val;
        m->cap = cap;
    }
    size_t i = mix64(k) & (m->cap - 1);
    while (m->key[i] != UINT64_MAX)
        i = (i + 1) & (m->cap - 1);
    m->key[i] = k;
    m->val[i] = v;
    m->n++;
    return MQ_OK;
}

static void u64map_free(u64map_t *m) {
    free(m->key);
    free(m->val);
    memset(m, 0, sizeof *m);
}

static uint64_t pair_key(int32_t a, int32_t b) {
    return (uint64_t)(uint32_t)a << 32 | (uint32_t)b;
}

/* Grows *buf (elements of size sz) to hold at least need elements. */
static int grow(void **buf, size_t *cap, size_t need, size_t sz) {
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

typedef void (*piece_fn)(const char *start, size_t len, void *ctx);

static int pretok_begin(pcre2_match_data **md, mq_error_t *err) {
    pthread_once(&g_re_once, re_init);
    if (!g_re)
        return mq_error_set(err, MQ_ERR_UNSUPPORTED, "pre-tokenizer: PCRE2 rejects the pattern %s",
                            g_re_msg);
    *md = pcre2_match_data_create_from_pattern(g_re, NULL);
    if (!*md) return mq_error_set(err, MQ_ERR_NOMEM, "pre-tokenizer: out of memory");
    return MQ_OK;
}

static int pretok_run(pcre2_match_data *md, const char *text, size_t len, piece_fn piece, void *ctx,
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
    int rc = pretok_begin(&md, err);
    if (rc) return rc;
    rc = pretok_run(md, text, len, piece, ctx, err);
    pcre2_match_data_free(md);
    return rc;
}

/* ---- the tokenizer ---- */

/* Longest piece whose ids are remembered, and bounds on what the cache may hold. */
enum { CACHE_MAX_PIECE = 128, CACHE_MAX_ENTRIES = 1 << 20, CACHE_MAX_IDS = 1 << 23 };

struct mq_tokenizer {
    int32_t n_vocab;
    char *text; /* every token's stored text, NUL-terminated, back to back */
    size_t *text_off;
    uint32_t *text_len;
    char *bytes; /* every token's bytes (what it decodes to), back to back */
    size_t *bytes_off;
    uint32_t *bytes_len;
    int32_t *type;    /* MQ_TOKEN_* */
    strmap_t by_text; /* stored text -> id; a repeated text maps to its last id, as in llama.cpp */
    int32_t byte_id[256];
    int32_t n_merges;
    int32_t *merge; /* left, right ids of each merge, in rank order */
    u64map_t rank;  /* (left << 32 | right) -> (rank << 32 | result id) */
    int32_t eot, bos, eos;
    int32_t *special; /* control and user-defined tokens, longest first */
    int32_t n_special;
    /* Pieces already encoded: raw bytes -> (offset << 32 | count) into cache_ids. Encoding is
     * logically const; the lock lets several threads encode with one tokenizer. */
    pthread_rwlock_t cache_lock;
    strmap_t cache;
    int32_t *cache_ids;
    size_t cache_n, cache_cap;
};

static int type_is_literal(int32_t type) {
    return type == MQ_TOKEN_UNKNOWN || type == MQ_TOKEN_CONTROL || type == MQ_TOKEN_USER_DEFINED ||
           type == MQ_TOKEN_UNUSED;
}

static const char *tok_text(const mq_tokenizer_t *t, int32_t id) {
    return t->text + t->text_off[id];
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
    strmap_free(&t->by_text);
    free(t->merge);
    u64map_free(&t->rank);
    free(t->special);
    pthread_rwlock_destroy(&t->cache_lock);
    strmap_free(&t->cache);
    free(t->cache_ids);
    free(t);
}

int mq_tokenizer_n_vocab(const mq_tokenizer_t *t) {
    return t->n_vocab;
}
int32_t mq_tokenizer_eot(const mq_tokenizer_t *t) {
    return t->eot;
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

static int32_t lookup(const mq_tokenizer_t *t, const char *s, size_t len) {
    uint64_t v;
    return strmap_get(&t->by_text, s, len, &v) ? (int32_t)v : -1;
}

static int cmp_special(const void *pa, const void *pb, void *pt) {
    const mq_tokenizer_t *t = pt;
    int32_t a = *(const int32_t *)pa, b = *(const int32_t *)pb;
    if (t->text_len[a] != t->text_len[b]) return t->text_len[a] > t->text_len[b] ? -1 : 1;
    return (a > b) - (a < b);
}

/* Records a message naming the vocabulary's source and returns code (also when err is NULL). */
static int vocab_err(mq_error_t *err, int code, const char *name, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static int vocab_err(mq_error_t *err, int code, const char *name, const char *fmt, ...) {
    char msg[sizeof err->msg];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    mq_error_set(err, code, "%s: %s", name, msg);
    return code;
}

static int named(mq_error_t *err, int code, const char *name) {
    mq_error_prefix(err, "%s", name);
    return code;
}

#define VOCAB_ERR(code, ...) vocab_err(err, code, name, __VA_ARGS__)

/* Builds a tokenizer from a vocabulary in GGUF's form; every check of mq_tokenizer_from_gguf
 * happens here, so trained and loaded tokenizers go through the same path. */
static int tok_build(const mq_gguf_str_t *tokens, const int32_t *types, int64_t n,
                     const mq_gguf_str_t *merges, int64_t n_merges, const char *name,
                     mq_tokenizer_t **out, mq_error_t *err) {
    *out = NULL;
    if (n < 256 || n > INT32_MAX / 2)
        return VOCAB_ERR(MQ_ERR_FORMAT, "tokenizer.ggml.tokens: %lld tokens (need 256 .. %d)",
                         (long long)n, INT32_MAX / 2);
    if (n_merges < 0 || n_merges > INT32_MAX / 2)
        return VOCAB_ERR(MQ_ERR_FORMAT, "tokenizer.ggml.merges: %lld merges", (long long)n_merges);
    mq_tokenizer_t *t = calloc(1, sizeof *t);
    if (!t) return mq_error_set(err, MQ_ERR_NOMEM, "tokenizer: out of memory");
    if (pthread_rwlock_init(&t->cache_lock, NULL)) {
        free(t);
        return mq_error_set(err, MQ_ERR_NOMEM, "tokenizer: cannot create a lock");
    }
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
        size_t nb = 0;
        for (size_t p = 0; p < len;) {
            uint32_t cp;
            size_t k = get_cp(s + p, len - p, &cp);
            int b = k ? cp_to_byte(cp) : -1;
            if (!k || (!type_is_literal(type) && b < 0)) {
                rc = VOCAB_ERR(MQ_ERR_FORMAT, "tokenizer.ggml.tokens[%lld]: %s at byte %zu",
                               (long long)i,
                               !k ? "invalid UTF-8" : "character outside GPT-2's byte alphabet", p);
                goto fail;
            }
            if (!type_is_literal(type)) t->bytes[boff + nb++] = (char)b;
            p += k;
        }
        if (type_is_literal(type)) {
            memcpy(t->bytes + boff, s, len);
            nb = len;
        }
        t->bytes_len[i] = (uint32_t)nb;
        boff += nb;
        if (strmap_put(&t->by_text, (const char *)s, len, str_hash((const char *)s, len),
                       (uint64_t)i, NULL)) {
            rc = mq_error_set(err, MQ_ERR_NOMEM, "tokenizer: out of memory");
            goto fail;
        }
    }

    for (int b = 0; b < 256; b++) {
        char buf[2];
        size_t k = put_cp(buf, byte_to_cp((uint8_t)b));
        int32_t id = lookup(t, buf, k);
        if (id < 0 || type_is_literal(t->type[id])) {
            rc = VOCAB_ERR(MQ_ERR_FORMAT, "tokenizer.ggml.tokens: no normal token for byte 0x%02x",
                           b);
            goto fail;
        }
        t->byte_id[b] = id;
    }
    t->eot = lookup(t, MQ_EOT_TEXT, strlen(MQ_EOT_TEXT));
    t->bos = t->eos = t->eot;
    for (int32_t i = 0; i < t->n_vocab; i++)
        if (t->type[i] == MQ_TOKEN_CONTROL || t->type[i] == MQ_TOKEN_USER_DEFINED)
            t->special[t->n_special++] = i;
    qsort_r(t->special, t->n_special, sizeof *t->special, cmp_special, t);

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
        } else if ((a = lookup(t, s, sp - s)) < 0) {
            why = "its left token is not in the vocabulary";
        } else if ((b = lookup(t, sp + 1, len - (sp + 1 - s))) < 0) {
            why = "its right token is not in the vocabulary";
        } else {
            memcpy(cat, s, sp - s);
            memcpy(cat + (sp - s), sp + 1, len - (sp + 1 - s));
            c = lookup(t, cat, len - 1);
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
        if (!u64map_find(&t->rank, pair_key(a, b)) &&
            u64map_put(&t->rank, pair_key(a, b), (uint64_t)r << 32 | (uint32_t)c)) {
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
    int rc =
        tok_build(s, types, n_tokens, s + n_tokens, n_merges, name ? name : "vocabulary", out, err);
    free(s);
    return rc;
}

/* ---- encoding ---- */

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
    const uint64_t *v = u64map_find(&e->t->rank, pair_key(sym[left].id, sym[right].id));
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
        smslot_t *c = strmap_find(&t->cache, start, len, h);
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
        !strmap_find(&t->cache, start, len, h) &&
        !grow((void **)&t->cache_ids, &t->cache_cap, t->cache_n + k, sizeof *t->cache_ids)) {
        memcpy(t->cache_ids + t->cache_n, e->ids + first, k * sizeof *e->ids);
        if (!strmap_put(&t->cache, start, len, h, (uint64_t)t->cache_n << 32 | k, NULL))
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
        if (t->type[id] == MQ_TOKEN_CONTROL && !(flags & MQ_TOK_PARSE_SPECIAL)) continue;
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
            f[i + 2] = (frag_t){at + tl, end - at - tl, -1};
            f[i + 1] = (frag_t){at, tl, id};
            f[i].len = at - f[i].start;
        }
    }
    *out = f;
    *n_out = n;
    return MQ_OK;
}

int mq_tokenizer_encode(const mq_tokenizer_t *t, const char *text, size_t len, int flags,
                        int32_t **ids, size_t *n_ids, mq_error_t *err) {
    *ids = NULL;
    *n_ids = 0;
    if (flags & ~MQ_TOK_PARSE_SPECIAL)
        return mq_error_set(err, MQ_ERR_ARG, "tokenizer: unknown encode flags 0x%x", flags);
    if (!text && len) return mq_error_set(err, MQ_ERR_ARG, "tokenizer: NULL text");
    enc_t e = {.t = (mq_tokenizer_t *)t};
    frag_t *f = NULL;
    size_t nf = 0;
    pcre2_match_data *md = NULL;
    int rc = pretok_begin(&md, err);
    if (rc) return rc;
    if (split_special(t, text, len, flags, &f, &nf)) {
        rc = mq_error_set(err, MQ_ERR_NOMEM, "tokenizer: out of memory");
        goto done;
    }
    for (size_t i = 0; i < nf && !rc; i++) {
        if (f[i].id >= 0) {
            if (grow((void **)&e.ids, &e.cap, e.n + 1, sizeof *e.ids))
                e.status = MQ_ERR_NOMEM;
            else
                e.ids[e.n++] = f[i].id;
        } else {
            rc = pretok_run(md, text + f[i].start, f[i].len, enc_piece, &e, err);
        }
        if (!rc && e.status)
            rc = mq_error_set(err, e.status, "tokenizer: %s",
                              e.status == MQ_ERR_NOMEM ? "out of memory" : "piece too long");
    }
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
        memcpy(s + p, t->bytes + t->bytes_off[ids[i]], t->bytes_len[ids[i]]);
        p += t->bytes_len[ids[i]];
    }
    s[p] = '\0';
    *text = s;
    *len = p;
    return MQ_OK;
}

/* ---- training ---- */

typedef struct tr_pair {
    int32_t a, b;
    int64_t count; /* occurrences in the corpus, weighted by word counts */
    int32_t heap_pos;
    int32_t last_word; /* last word added to where, to skip repeats */
    int32_t *where;    /* words that contain (or once contained) the pair */
    int32_t n_where, cap_where;
} tr_pair_t;

typedef struct trainer {
    /* tokens learned so far: stored text, back to back */
    char *text;
    size_t text_len, text_cap;
    size_t *text_off;
    size_t n_tok, cap_tok;
    strmap_t tok_by_text;
    /* unique pieces of the corpus, as symbol ids; a word shrinks in place as merges apply */
    int32_t *sym;
    size_t *w_off;
    int32_t *w_len;
    int64_t *w_cnt;
    int32_t *w_stamp; /* merge step that last rewrote the word */
    int32_t n_words;
    uint8_t *flag; /* scratch, one per symbol of the longest word */
    tr_pair_t *pair;
    size_t n_pair, cap_pair;
    u64map_t pair_map; /* (a << 32 | b) -> index in pair */
    int32_t *heap;     /* max-heap of pair indices */
    size_t n_heap, cap_heap;
    int32_t *merge; /* left, right ids per merge */
    size_t n_merge, cap_merge;
} trainer_t;

static const char *tr_text(const trainer_t *tr, int32_t id) {
    return tr->text + tr->text_off[id];
}

/* The heap's order: more frequent first; ties go to the pair whose left token's text, then
 * right token's text, is smaller (strcmp), so training never depends on hash or memory order. */
static int tr_before(const trainer_t *tr, int32_t p, int32_t q) {
    const tr_pair_t *x = &tr->pair[p], *y = &tr->pair[q];
    if (x->count != y->count) return x->count > y->count;
    int c = x->a == y->a ? 0 : strcmp(tr_text(tr, x->a), tr_text(tr, y->a));
    if (c) return c < 0;
    return strcmp(tr_text(tr, x->b), tr_text(tr, y->b)) < 0;
}

static void heap_set(trainer_t *tr, size_t i, int32_t p) {
    tr->heap[i] = p;
    tr->pair[p].heap_pos = (int32_t)i;
}

static void heap_up(trainer_t *tr, size_t i) {
    int32_t p = tr->heap[i];
    while (i > 0 && tr_before(tr, p, tr->heap[(i - 1) / 2])) {
        heap_set(tr, i, tr->heap[(i - 1) / 2]);
        i = (i - 1) / 2;
    }
    heap_set(tr, i, p);
}

static void heap_down(trainer_t *tr, size_t i) {
    int32_t p = tr->heap[i];
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= tr->n_heap) break;
        if (c + 1 < tr->n_heap && tr_before(tr, tr->heap[c + 1], tr->heap[c])) c++;
        if (!tr_before(tr, tr->heap[c], p)) break;
        heap_set(tr, i, tr->heap[c]);
        i = c;
    }
    heap_set(tr, i, p);
}

/* Adds delta occurrences of (a, b); a positive delta also records word w as containing it. */
static int tr_count(trainer_t *tr, int32_t a, int32_t b, int64_t delta, int32_t w) {
    uint64_t key = pair_key(a, b);
    uint64_t *v = u64map_find(&tr->pair_map, key);
    size_t p;
    if (v) {
        p = *v;
    } else {
        if (grow((void **)&tr->pair, &tr->cap_pair, tr->n_pair + 1, sizeof *tr->pair) ||
            grow((void **)&tr->heap, &tr->cap_heap, tr->n_heap + 1, sizeof *tr->heap) ||
            u64map_put(&tr->pair_map, key, tr->n_pair))
            return MQ_ERR_NOMEM;
        p = tr->n_pair++;
        tr->pair[p] = (tr_pair_t){.a = a, .b = b, .last_word = -1};
        heap_set(tr, tr->n_heap++, (int32_t)p);
    }
    tr_pair_t *q = &tr->pair[p];
    q->count += delta;
    if (delta > 0 && q->last_word != w) {
        size_t cap = q->cap_where;
        if (grow((void **)&q->where, &cap, (size_t)q->n_where + 1, sizeof *q->where))
            return MQ_ERR_NOMEM;
        q->cap_where = (int32_t)cap;
        q->where[q->n_where++] = w;
        q->last_word = w;
    }
    if (delta > 0)
        heap_up(tr, q->heap_pos);
    else
        heap_down(tr, q->heap_pos);
    return MQ_OK;
}

static int tr_add_token(trainer_t *tr, const char *s, size_t len, int32_t *id) {
    if (grow((void **)&tr->text, &tr->text_cap, tr->text_len + len + 1, 1) ||
        grow((void **)&tr->text_off, &tr->cap_tok, tr->n_tok + 1, sizeof *tr->text_off) ||
        strmap_put(&tr->tok_by_text, s, len, str_hash(s, len), tr->n_tok, NULL))
        return MQ_ERR_NOMEM;
    tr->text_off[tr->n_tok] = tr->text_len;
    memcpy(tr->text + tr->text_len, s, len);
    tr->text[tr->text_len + len] = '\0';
    tr->text_len += len + 1;
    *id = (int32_t)tr->n_tok++;
    return MQ_OK;
}

/* Rewrites every (a, b) of word w as c, left to right, and updates the pair counts of only the
 * pairs that touch a rewritten place. */
static int tr_merge_word(trainer_t *tr, int32_t w, int32_t a, int32_t b, int32_t c) {
    int32_t *s = tr->sym + tr->w_off[w];
    int32_t len = tr->w_len[w];
    int64_t n = tr->w_cnt[w];
    uint8_t *flag = tr->flag; /* 1: left of a rewritten pair, 2: its right */
    int found = 0;
    memset(flag, 0, len);
    for (int32_t i = 0; i + 1 < len;) {
        if (s[i] == a && s[i + 1] == b) {
            flag[i] = 1;
            flag[i + 1] = 2;
            found = 1;
            i += 2;
        } else {
            i++;
        }
    }
    if (!found) return MQ_OK;
    for (int32_t j = 0; j + 1 < len; j++)
        if ((flag[j] || flag[j + 1]) && tr_count(tr, s[j], s[j + 1], -n, w)) return MQ_ERR_NOMEM;
    /* In place: the write index never passes the read index; flag now marks new symbols. */
    int32_t k = 0;
    for (int32_t i = 0; i < len; k++) {
        if (flag[i] == 1) {
            s[k] = c;
            flag[k] = 1;
            i += 2;
        } else {
            s[k] = s[i];
            flag[k] = 0;
            i++;
        }
    }
    tr->w_len[w] = k;
    for (int32_t j = 0; j + 1 < k; j++)
        if ((flag[j] || flag[j + 1]) && tr_count(tr, s[j], s[j + 1], n, w)) return MQ_ERR_NOMEM;
    return MQ_OK;
}

static void count_piece(const char *start, size_t len, void *ctx) {
    strmap_t *wc = ((void **)ctx)[0];
    int *status = ((void **)ctx)[1];
    if (*status) return;
    uint64_t h = str_hash(start, len);
    smslot_t *e = strmap_find(wc, start, len, h);
    if (e)
        e->val++;
    else if (strmap_put(wc, start, len, h, 1, NULL))
        *status = MQ_ERR_NOMEM;
}

static void tr_free(trainer_t *tr) {
    free(tr->text);
    free(tr->text_off);
    strmap_free(&tr->tok_by_text);
    free(tr->sym);
    free(tr->w_off);
    free(tr->w_len);
    free(tr->w_cnt);
    free(tr->w_stamp);
    free(tr->flag);
    for (size_t p = 0; p < tr->n_pair; p++)
        free(tr->pair[p].where);
    free(tr->pair);
    u64map_free(&tr->pair_map);
    free(tr->heap);
    free(tr->merge);
}

/* Counts the corpus's pieces and lays out each distinct piece as byte symbols (ids 0..255, the
 * byte tokens in byte order, already added), with the counts of all adjacent pairs. */
static int tr_load(trainer_t *tr, const char *const *docs, const size_t *lens, size_t n_docs,
                   mq_error_t *err) {
    strmap_t wc = {0};
    int status = MQ_OK;
    void *ctx[2] = {&wc, &status};
    pcre2_match_data *md;
    int rc = pretok_begin(&md, err);
    if (rc) return rc;
    int64_t total = 0;
    for (size_t d = 0; d < n_docs; d++)
        total += (int64_t)lens[d];
    mq_progress_t pg;
    mq_progress_start(&pg, "tokenizer: pieces", total);
    int64_t done = 0;
    for (size_t d = 0; d < n_docs && !rc && !status; d++) {
        if (!docs[d] && lens[d])
            rc = mq_error_set(err, MQ_ERR_ARG, "tokenizer: document %zu is NULL", d);
        else
            rc = pretok_run(md, docs[d], lens[d], count_piece, ctx, err);
        done += (int64_t)lens[d];
        if ((d & 1023) == 0) mq_progress_update(&pg, done, NULL);
    }
    mq_progress_finish(&pg, NULL);
    pcre2_match_data_free(md);
    if (!rc && status) rc = mq_error_set(err, status, "tokenizer: out of memory");
    if (!rc && wc.n > INT32_MAX / 2)
        rc = mq_error_set(err, MQ_ERR_UNSUPPORTED, "tokenizer: %zu distinct pieces", wc.n);
    if (rc) {
        strmap_free(&wc);
        return rc;
    }

    size_t n_sym = 0, max_len = 1;
    for (size_t i = 0; i < wc.cap; i++) {
        if (!wc.slot[i].hash) continue;
        n_sym += wc.slot[i].len;
        if (wc.slot[i].len > max_len) max_len = wc.slot[i].len;
    }
    if (max_len > INT32_MAX) {
        strmap_free(&wc);
        return mq_error_set(err, MQ_ERR_UNSUPPORTED, "tokenizer: a piece of %zu bytes", max_len);
    }
    tr->n_words = (int32_t)wc.n;
    tr->sym = malloc((n_sym ? n_sym : 1) * sizeof *tr->sym);
    tr->w_off = malloc((wc.n ? wc.n : 1) * sizeof *tr->w_off);
    tr->w_len = malloc((wc.n ? wc.n : 1) * sizeof *tr->w_len);
    tr->w_cnt = malloc((wc.n ? wc.n : 1) * sizeof *tr->w_cnt);
    tr->w_stamp = malloc((wc.n ? wc.n : 1) * sizeof *tr->w_stamp);
    tr->flag = malloc(max_len);
    if (!tr->sym || !tr->w_off || !tr->w_len || !tr->w_cnt || !tr->w_stamp || !tr->flag) {
        strmap_free(&wc);
        return mq_error_set(err, MQ_ERR_NOMEM, "tokenizer: out of memory");
    }
    size_t off = 0;
    int32_t w = 0;
    for (size_t i = 0; i < wc.cap; i++) {
        const smslot_t *e = &wc.slot[i];
        if (!e->hash) continue;
        const unsigned char *s = (const unsigned char *)wc.keys + e->off;
        tr->w_off[w] = off;
        tr->w_len[w] = (int32_t)e->len;
        tr->w_cnt[w] = (int64_t)e->val;
        tr->w_stamp[w] = -1;
        for (size_t j = 0; j < e->len; j++)
            tr->sym[off + j] = s[j];
        for (size_t j = 0; j + 1 < e->len; j++)
            if (tr_count(tr, s[j], s[j + 1], (int64_t)e->val, w)) {
                strmap_free(&wc);
                return mq_error_set(err, MQ_ERR_NOMEM, "tokenizer: out of memory");
            }
        off += e->len;
        w++;
    }
    strmap_free(&wc);
    return MQ_OK;
}

/* Learns merges until the vocabulary (with <|endoftext|>) has vocab_size tokens. */
static int tr_learn(trainer_t *tr, int vocab_size, mq_error_t *err) {
    char *cat = NULL;
    size_t cat_cap = 0;
    mq_progress_t pg;
    mq_progress_start(&pg, "tokenizer: merges", vocab_size - 257);
    int rc = MQ_OK;
    for (int32_t step = 0; tr->n_tok < (size_t)vocab_size - 1; step++) {
        if (!tr->n_heap || tr->pair[tr->heap[0]].count <= 0) {
            rc = mq_error_set(err, MQ_ERR_ARG,
                              "tokenizer: the corpus allows only %zu tokens, %d were asked for",
                              tr->n_tok + 1, vocab_size);
            break;
        }
        int32_t p = tr->heap[0];
        int32_t a = tr->pair[p].a, b = tr->pair[p].b;
        size_t la = strlen(tr_text(tr, a)), lb = strlen(tr_text(tr, b));
        if (grow((void **)&cat, &cat_cap, la + lb + 1, 1) ||
            grow((void **)&tr->merge, &tr->cap_merge, 2 * tr->n_merge + 2, sizeof *tr->merge)) {
            rc = mq_error_set(err, MQ_ERR_NOMEM, "tokenizer: out of memory");
            break;
        }
        memcpy(cat, tr_text(tr, a), la);
        memcpy(cat + la, tr_text(tr, b), lb);
        /* Two different merges can spell the same text ("ab"+"c", "a"+"bc"): the later one maps
         * to the existing token, so there are then more merges than learned tokens. */
        uint64_t v;
        int32_t c;
        if (strmap_get(&tr->tok_by_text, cat, la + lb, &v))
            c = (int32_t)v;
        else if (tr_add_token(tr, cat, la + lb, &c)) {
            rc = mq_error_set(err, MQ_ERR_NOMEM, "tokenizer: out of memory");
            break;
        }
        tr->merge[2 * tr->n_merge] = a;
        tr->merge[2 * tr->n_merge + 1] = b;
        tr->n_merge++;
        /* The pair's word list is detached first: rewriting words adds pairs and may move the
         * pair array. */
        int32_t *where = tr->pair[p].where, n_where = tr->pair[p].n_where;
        tr->pair[p].where = NULL;
        tr->pair[p].n_where = tr->pair[p].cap_where = 0;
        for (int32_t i = 0; i < n_where && !rc; i++) {
            int32_t w = where[i];
            if (tr->w_stamp[w] == step) continue;
            tr->w_stamp[w] = step;
            if (tr_merge_word(tr, w, a, b, c))
                rc = mq_error_set(err, MQ_ERR_NOMEM, "tokenizer: out of memory");
        }
        free(where);
        mq_progress_update(&pg, (int64_t)tr->n_tok - 256, NULL);
    }
    mq_progress_finish(&pg, NULL);
    free(cat);
    return rc;
}

int mq_tokenizer_train(const char *const *docs, const size_t *lens, size_t n_docs, int vocab_size,
                       mq_tokenizer_t **out, mq_error_t *err) {
    *out = NULL;
    if (vocab_size < 257 || vocab_size > (1 << 24))
        return mq_error_set(err, MQ_ERR_ARG,
                            "tokenizer: vocabulary size %d (need 257 .. %d: 256 bytes, merges, "
                            "<|endoftext|>)",
                            vocab_size, 1 << 24);
    if (n_docs && (!docs || !lens))
        return mq_error_set(err, MQ_ERR_ARG, "tokenizer: NULL documents");
    trainer_t tr = {0};
    int rc = MQ_OK;
    for (int b = 0; b < 256 && !rc; b++) {
        char buf[2];
        int32_t id;
        if (tr_add_token(&tr, buf, put_cp(buf, byte_to_cp((uint8_t)b)), &id))
            rc = mq_error_set(err, MQ_ERR_NOMEM, "tokenizer: out of memory");
    }
    if (!rc) rc = tr_load(&tr, docs, lens, n_docs, err);
    if (!rc) rc = tr_learn(&tr, vocab_size, err);
    if (rc) {
        tr_free(&tr);
        return rc;
    }
    /* The vocabulary in GGUF's form: learned tokens, then <|endoftext|>; merges as "a b". */
    size_t n = tr.n_tok + 1, merge_bytes = 0;
    for (size_t r = 0; r < tr.n_merge; r++)
        merge_bytes +=
            strlen(tr_text(&tr, tr.merge[2 * r])) + strlen(tr_text(&tr, tr.merge[2 * r + 1])) + 2;
    mq_gguf_str_t *tok = malloc(n * sizeof *tok);
    mq_gguf_str_t *mer = malloc((tr.n_merge + 1) * sizeof *mer);
    int32_t *types = malloc(n * sizeof *types);
    char *mtext = malloc(merge_bytes + 1);
    if (!tok || !mer || !types || !mtext) {
        rc = mq_error_set(err, MQ_ERR_NOMEM, "tokenizer: out of memory");
    } else {
        for (size_t i = 0; i < tr.n_tok; i++) {
            tok[i] = (mq_gguf_str_t){tr_text(&tr, (int32_t)i), strlen(tr_text(&tr, (int32_t)i))};
            types[i] = MQ_TOKEN_NORMAL;
        }
        tok[n - 1] = (mq_gguf_str_t){MQ_EOT_TEXT, strlen(MQ_EOT_TEXT)};
        types[n - 1] = MQ_TOKEN_CONTROL;
        char *p = mtext;
        for (size_t r = 0; r < tr.n_merge; r++) {
            int k = sprintf(p, "%s %s", tr_text(&tr, tr.merge[2 * r]),
                            tr_text(&tr, tr.merge[2 * r + 1]));
            mer[r] = (mq_gguf_str_t){p, (uint64_t)k};
            p += k + 1;
        }
        rc = tok_build(tok, types, (int64_t)n, mer, (int64_t)tr.n_merge, "trained vocabulary", out,
                       err);
    }
    free(tok);
    free(mer);
    free(types);
    free(mtext);
    tr_free(&tr);
    return rc;
}

/* ---- GGUF ---- */

static const char *const GPT2_PRE[] = {
    "gpt-2",      "phi-2",        "jina-es",     "jina-de", "gigachat", "jina-v1-en", "jina-v2-es",
    "jina-v2-de", "jina-v2-code", "roberta-bpe", "mpt",     "olmo",     "jais"};

int mq_tokenizer_to_gguf(const mq_tokenizer_t *t, mq_gguf_t *g, mq_error_t *err) {
    const char **tok = malloc(t->n_vocab * sizeof *tok);
    const char **mer = malloc(((size_t)t->n_merges + 1) * sizeof *mer);
    size_t mbytes = 0;
    for (int32_t r = 0; r < t->n_merges; r++)
        mbytes += t->text_len[t->merge[2 * r]] + t->text_len[t->merge[2 * r + 1]] + 2;
    char *mtext = malloc(mbytes + 1);
    int rc = MQ_OK;
    const char *key = "";
    if (!tok || !mer || !mtext) {
        rc = mq_error_set(err, MQ_ERR_NOMEM, "tokenizer: out of memory");
        goto done;
    }
    for (int32_t i = 0; i < t->n_vocab; i++)
        tok[i] = tok_text(t, i);
    char *p = mtext;
    for (int32_t r = 0; r < t->n_merges; r++) {
        mer[r] = p;
        p +=
            sprintf(p, "%s %s", tok_text(t, t->merge[2 * r]), tok_text(t, t->merge[2 * r + 1])) + 1;
    }
    if ((rc = mq_gguf_set_str(g, key = "tokenizer.ggml.model", "gpt2")) ||
        (rc = mq_gguf_set_str(g, key = "tokenizer.ggml.pre", "gpt-2")) ||
        (rc = mq_gguf_set_arr_str(g, key = "tokenizer.ggml.tokens", tok, t->n_vocab)) ||
        (rc = mq_gguf_set_arr(g, key = "tokenizer.ggml.token_type", MQ_GGUF_INT32, t->type,
                              t->n_vocab)) ||
        (rc = mq_gguf_set_arr_str(g, key = "tokenizer.ggml.merges", mer, t->n_merges)) ||
        (t->bos >= 0 && (rc = mq_gguf_set_u32(g, key = "tokenizer.ggml.bos_token_id", t->bos))) ||
        (t->eos >= 0 && (rc = mq_gguf_set_u32(g, key = "tokenizer.ggml.eos_token_id", t->eos))) ||
        (rc = mq_gguf_set_bool(g, key = "tokenizer.ggml.add_bos_token", 0)) ||
        (rc = mq_gguf_set_bool(g, key = "tokenizer.ggml.add_eos_token", 0)))
        mq_error_set(err, rc, "tokenizer: cannot store %s: %s", key, mq_status_name(rc));
done:
    free(tok);
    free(mer);
    free(mtext);
    return rc;
}

int mq_tokenizer_from_gguf(const mq_gguf_t *g, const char *name, mq_tokenizer_t **out,
                           mq_error_t *err) {
    *out = NULL;
    if (!name) name = "GGUF";
    mq_gguf_str_t model, pre;
    int rc = mq_gguf_get_str(g, "tokenizer.ggml.model", &model, err);
    if (rc) return named(err, rc, name);
    if (strcmp(model.ptr, "gpt2") != 0)
        return VOCAB_ERR(MQ_ERR_UNSUPPORTED,
                         "tokenizer.ggml.model is \"%.64s\"; only \"gpt2\" (byte-level BPE) is "
                         "supported",
                         model.ptr);
    /* A file without tokenizer.ggml.pre is taken to split as GPT-2 did (llama.cpp would warn and
     * use its "default" split); a named pre-tokenizer must be one that uses GPT-2's regex. */
    rc = mq_gguf_get_str(g, "tokenizer.ggml.pre", &pre, err);
    if (rc && rc != MQ_ERR_NOT_FOUND) return named(err, rc, name);
    if (!rc) {
        size_t k = 0, n_pre = sizeof GPT2_PRE / sizeof *GPT2_PRE;
        while (k < n_pre && strcmp(pre.ptr, GPT2_PRE[k]) != 0)
            k++;
        if (k == n_pre)
            return VOCAB_ERR(MQ_ERR_UNSUPPORTED,
                             "tokenizer.ggml.pre is \"%.64s\"; only pre-tokenizers that split "
                             "with GPT-2's regex (e.g. \"gpt-2\") are supported",
                             pre.ptr);
    }
    const mq_gguf_str_t *tokens, *merges;
    uint64_t n, n_merges;
    if ((rc = mq_gguf_get_arr_str(g, "tokenizer.ggml.tokens", &tokens, &n, err)) ||
        (rc = mq_gguf_get_arr_str(g, "tokenizer.ggml.merges", &merges, &n_merges, err)))
        return named(err, rc, name);
    if (n < 256 || n > INT32_MAX / 2 || n_merges > INT32_MAX / 2)
        return VOCAB_ERR(MQ_ERR_FORMAT, "%llu tokens and %llu merges (need 256 .. %d tokens)",
                         (unsigned long long)n, (unsigned long long)n_merges, INT32_MAX / 2);
    int32_t *types = NULL;
    int et;
    const void *tdata;
    uint64_t nt;
    rc = mq_gguf_get_arr(g, "tokenizer.ggml.token_type", &et, &tdata, &nt, err);
    if (rc && rc != MQ_ERR_NOT_FOUND) return named(err, rc, name);
    if (!rc) {
        if (et != MQ_GGUF_INT32 || nt != n)
            return VOCAB_ERR(MQ_ERR_FORMAT,
                             "tokenizer.ggml.token_type: %llu elements of type %d, expected %llu "
                             "int32",
                             (unsigned long long)nt, et, (unsigned long long)n);
        types = malloc(n * sizeof *types);
        if (!types) return mq_error_set(err, MQ_ERR_NOMEM, "tokenizer: out of memory");
        memcpy(types, tdata, n * sizeof *types); /* the file's data need not be aligned */
    }
    rc = tok_build(tokens, types, (int64_t)n, merges, (int64_t)n_merges, name, out, err);
    free(types);
    if (rc) return rc;
    static const char *const id_keys[2] = {"tokenizer.ggml.bos_token_id",
                                           "tokenizer.ggml.eos_token_id"};
    int32_t *ids[2] = {&(*out)->bos, &(*out)->eos};
    for (int k = 0; k < 2; k++) {
        uint32_t id;
        rc = mq_gguf_get_u32(g, id_keys[k], &id, err);
        if (rc == MQ_ERR_NOT_FOUND) continue;
        if (!rc && id >= n)
            rc = mq_error_set(err, MQ_ERR_FORMAT, "%s is %u, outside the vocabulary", id_keys[k],
                              id);
        if (rc) {
            mq_tokenizer_free(*out);
            *out = NULL;
            return named(err, rc, name);
        }
        *ids[k] = (int32_t)id;
    }
    mq_error_clear(err);
    return MQ_OK;
}
