/* Minimal-pair sets, BLiMP jsonl files and scoring sentences by log-probability. */
#include "miniquant/pairs.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "miniquant/eval.h"
#include "miniquant/fileio.h"
#include "miniquant/progress.h"
#include "miniquant/rng.h"

/* ---------------------------------------------------------------------------------------------
 * sets */

int mq_mp_add(mq_mp_set_t *s, const char *good, const char *const *bad, const uint8_t *bad_infl,
              uint32_t n_bad, const char *lemma, uint8_t infl, uint8_t category,
              const char *source, mq_error_t *err) {
    if (!good || !bad || n_bad == 0)
        return mq_error_set(err, MQ_ERR_ARG, "a minimal pair needs a good and a bad sentence");
    if (category >= MQ_VT_NUM_CATEGORIES)
        return mq_error_set(err, MQ_ERR_ARG, "verb-tense category %u out of range", category);
    for (uint32_t j = 0; j < n_bad; j++)
        if (!bad[j]) return mq_error_set(err, MQ_ERR_ARG, "bad sentence %u is NULL", j);
    if (s->n_items == s->items_cap) {
        size_t cap = s->items_cap ? 2 * s->items_cap : 256;
        mq_mp_item_t *it = realloc(s->items, cap * sizeof *it);
        if (!it) return mq_error_set(err, MQ_ERR_NOMEM, "out of memory for %zu items", cap);
        s->items = it;
        s->items_cap = cap;
    }
    if (s->n_bad + n_bad > s->bad_cap) {
        size_t cap = s->bad_cap ? 2 * s->bad_cap : 1024;
        while (cap < s->n_bad + n_bad)
            cap *= 2;
        const char **b = realloc((void *)s->bad, cap * sizeof *b);
        if (!b) return mq_error_set(err, MQ_ERR_NOMEM, "out of memory for %zu sentences", cap);
        s->bad = b;
        uint8_t *bi = realloc(s->bad_infl, cap);
        if (!bi) return mq_error_set(err, MQ_ERR_NOMEM, "out of memory for %zu sentences", cap);
        s->bad_infl = bi;
        s->bad_cap = cap;
    }
    mq_mp_item_t it = {0};
    it.good = mq_strpool_dup(&s->strings, good, strlen(good));
    it.lemma = lemma ? mq_strpool_dup(&s->strings, lemma, strlen(lemma)) : NULL;
    it.source = source ? mq_strpool_dup(&s->strings, source, strlen(source)) : NULL;
    if (!it.good || (lemma && !it.lemma) || (source && !it.source))
        return mq_error_set(err, MQ_ERR_NOMEM, "out of memory for sentences");
    it.first_bad = s->n_bad;
    it.n_bad = n_bad;
    it.infl = infl;
    it.category = category;
    for (uint32_t j = 0; j < n_bad; j++) {
        const char *b = mq_strpool_dup(&s->strings, bad[j], strlen(bad[j]));
        if (!b) return mq_error_set(err, MQ_ERR_NOMEM, "out of memory for sentences");
        s->bad[s->n_bad + j] = b;
        s->bad_infl[s->n_bad + j] = bad_infl ? bad_infl[j] : 0;
    }
    s->n_bad += n_bad;
    s->items[s->n_items++] = it;
    return MQ_OK;
}

void mq_mp_set_free(mq_mp_set_t *s) {
    if (!s) return;
    mq_strpool_free(&s->strings);
    free(s->items);
    free((void *)s->bad);
    free(s->bad_infl);
    memset(s, 0, sizeof *s);
}

/* ---------------------------------------------------------------------------------------------
 * inflection names */

static const char *const INFL_NAMES[MQ_NUM_INFL] = {"base", "3sg", "past", "past_participle",
                                                    "ing"};

const char *mq_infl_name(int bit) {
    for (int i = 0; i < MQ_NUM_INFL; i++)
        if (bit == 1 << i) return INFL_NAMES[i];
    return NULL;
}

int mq_infl_format(uint8_t mask, char *buf, size_t n) {
    size_t len = 0;
    if (n) buf[0] = 0;
    for (int i = 0; i < MQ_NUM_INFL; i++) {
        if (!(mask & (1 << i))) continue;
        int w = snprintf(len < n ? buf + len : NULL, len < n ? n - len : 0, "%s%s", len ? "+" : "",
                         INFL_NAMES[i]);
        len += (size_t)w;
    }
    return (int)len;
}

int mq_infl_parse(const char *text, uint8_t *mask, mq_error_t *err) {
    *mask = 0;
    const char *p = text;
    while (*p) {
        const char *e = strchr(p, '+');
        size_t n = e ? (size_t)(e - p) : strlen(p);
        int found = -1;
        for (int i = 0; i < MQ_NUM_INFL; i++)
            if (strlen(INFL_NAMES[i]) == n && !memcmp(INFL_NAMES[i], p, n)) found = i;
        if (found < 0)
            return mq_error_set(err, MQ_ERR_FORMAT,
                                "unknown inflection '%.*s' in '%.64s' (valid: base, 3sg, past, "
                                "past_participle, ing, joined by '+')",
                                (int)(n > 64 ? 64 : n), p, text);
        *mask |= (uint8_t)(1 << found);
        if (!e) break;
        p = e + 1;
        if (!*p) return mq_error_set(err, MQ_ERR_FORMAT, "inflection '%.64s' ends in '+'", text);
    }
    if (!*mask) return mq_error_set(err, MQ_ERR_FORMAT, "empty inflection");
    return MQ_OK;
}

/* ---------------------------------------------------------------------------------------------
 * BLiMP jsonl */

/* Whether a JSON line escapes a NUL ("\u0000") inside a string: cJSON would decode it into a
 * C string cut short there, so the sentence read would not be the one in the file. */
static int json_escapes_nul(const char *s, size_t n) {
    int in_str = 0;
    for (size_t i = 0; i < n; i++) {
        if (!in_str) {
            if (s[i] == '"') in_str = 1;
        } else if (s[i] == '\\') {
            if (i + 5 < n && s[i + 1] == 'u' && !memcmp(s + i + 2, "0000", 4)) return 1;
            i++; /* the escaped character */
        } else if (s[i] == '"') {
            in_str = 0;
        }
    }
    return 0;
}

/* A required non-empty string field. */
static int get_sentence(const cJSON *obj, const char *key, const char **out, const char *name,
                        size_t line, mq_error_t *err) {
    const cJSON *f = cJSON_GetObjectItemCaseSensitive(obj, key);
    if (!f) return mq_error_set(err, MQ_ERR_FORMAT, "%s: line %zu: no \"%s\"", name, line, key);
    if (!cJSON_IsString(f) || !f->valuestring)
        return mq_error_set(err, MQ_ERR_FORMAT, "%s: line %zu: \"%s\" is not a string", name, line,
                            key);
    if (!f->valuestring[0])
        return mq_error_set(err, MQ_ERR_FORMAT, "%s: line %zu: \"%s\" is empty", name, line, key);
    *out = f->valuestring;
    return MQ_OK;
}

/* An optional string field: *out stays NULL when it is absent. */
static int get_opt_string(const cJSON *obj, const char *key, const char **out, const char *name,
                          size_t line, mq_error_t *err) {
    const cJSON *f = cJSON_GetObjectItemCaseSensitive(obj, key);
    *out = NULL;
    if (!f) return MQ_OK;
    if (!cJSON_IsString(f) || !f->valuestring)
        return mq_error_set(err, MQ_ERR_FORMAT, "%s: line %zu: \"%s\" is not a string", name, line,
                            key);
    *out = f->valuestring;
    return MQ_OK;
}

/* An item being assembled from consecutive lines; its strings point into parsed JSON that is
 * kept until the item is stored. */
typedef struct {
    cJSON **docs;
    const char **bad;
    uint8_t *bad_infl;
    uint32_t n, cap;
    const char *good, *lemma, *source;
    uint8_t infl, category;
    int64_t id; /* -1: none */
} pending_t;

static void pending_clear(pending_t *p) {
    for (uint32_t i = 0; i < p->n; i++)
        cJSON_Delete(p->docs[i]);
    p->n = 0;
    p->good = p->lemma = p->source = NULL;
    p->infl = p->category = 0;
    p->id = -1;
}

static int pending_flush(pending_t *p, mq_mp_set_t *out, mq_error_t *err) {
    int rc = MQ_OK;
    if (p->n)
        rc = mq_mp_add(out, p->good, p->bad, p->bad_infl, p->n, p->lemma, p->infl, p->category,
                       p->source, err);
    pending_clear(p);
    return rc;
}

static int pending_push(pending_t *p, cJSON *doc, const char *bad, uint8_t bad_infl,
                        mq_error_t *err) {
    if (p->n == p->cap) {
        uint32_t cap = p->cap ? 2 * p->cap : 8;
        cJSON **d = realloc(p->docs, cap * sizeof *d);
        if (d) p->docs = d;
        const char **b = realloc((void *)p->bad, cap * sizeof *b);
        if (b) p->bad = b;
        uint8_t *bi = realloc(p->bad_infl, cap);
        if (bi) p->bad_infl = bi;
        if (!d || !b || !bi) {
            cJSON_Delete(doc);
            return mq_error_set(err, MQ_ERR_NOMEM, "out of memory");
        }
        p->cap = cap;
    }
    p->docs[p->n] = doc;
    p->bad[p->n] = bad;
    p->bad_infl[p->n] = bad_infl;
    p->n++;
    return MQ_OK;
}

/* Parses one non-blank line into the pending item (flushing it first when the line starts a
 * new item). */
static int parse_line(const char *line, size_t n, const char *name, size_t lineno, pending_t *pend,
                      mq_mp_set_t *out, mq_error_t *err) {
    if (json_escapes_nul(line, n))
        return mq_error_set(err, MQ_ERR_FORMAT, "%s: line %zu: a string escapes a NUL (\\u0000)",
                            name, lineno);
    const char *end = NULL;
    cJSON *doc = cJSON_ParseWithLengthOpts(line, n, &end, 0);
    if (!doc) {
        size_t col = end && end >= line && end <= line + n ? (size_t)(end - line) + 1 : 1;
        return mq_error_set(err, MQ_ERR_FORMAT, "%s: line %zu: invalid JSON at column %zu", name,
                            lineno, col);
    }
    for (const char *q = end; q < line + n; q++)
        if (*q != ' ' && *q != '\t' && *q != '\r') {
            cJSON_Delete(doc);
            return mq_error_set(err, MQ_ERR_FORMAT,
                                "%s: line %zu: text after the JSON object at column %zu", name,
                                lineno, (size_t)(q - line) + 1);
        }
    if (!cJSON_IsObject(doc)) {
        cJSON_Delete(doc);
        return mq_error_set(err, MQ_ERR_FORMAT, "%s: line %zu: not a JSON object", name, lineno);
    }
    const char *good = NULL, *bad = NULL, *lemma = NULL, *source = NULL, *uid = NULL;
    const char *ig = NULL, *ib = NULL, *cat = NULL;
    int rc = get_sentence(doc, "sentence_good", &good, name, lineno, err);
    if (!rc) rc = get_sentence(doc, "sentence_bad", &bad, name, lineno, err);
    if (!rc) rc = get_opt_string(doc, "lemma", &lemma, name, lineno, err);
    if (!rc) rc = get_opt_string(doc, "source", &source, name, lineno, err);
    if (!rc) rc = get_opt_string(doc, "UID", &uid, name, lineno, err);
    if (!rc) rc = get_opt_string(doc, "inflection_good", &ig, name, lineno, err);
    if (!rc) rc = get_opt_string(doc, "inflection_bad", &ib, name, lineno, err);
    if (!rc) rc = get_opt_string(doc, "category", &cat, name, lineno, err);
    uint8_t infl_good = 0, infl_bad = 0, category = MQ_VT_NONE;
    if (!rc && cat && (rc = mq_vt_category_parse(cat, &category, err)))
        mq_error_prefix(err, "%s: line %zu: \"category\"", name, lineno);
    if (!rc && ig && (rc = mq_infl_parse(ig, &infl_good, err)))
        mq_error_prefix(err, "%s: line %zu: \"inflection_good\"", name, lineno);
    if (!rc && ib && (rc = mq_infl_parse(ib, &infl_bad, err)))
        mq_error_prefix(err, "%s: line %zu: \"inflection_bad\"", name, lineno);
    if (!rc && !strcmp(good, bad))
        rc =
            mq_error_set(err, MQ_ERR_FORMAT,
                         "%s: line %zu: sentence_good and sentence_bad are the same", name, lineno);
    int64_t id = -1;
    const cJSON *jid = cJSON_GetObjectItemCaseSensitive(doc, "item_id");
    if (!rc && jid) {
        double v = jid->valuedouble;
        if (!cJSON_IsNumber(jid) || !(v >= 0 && v <= 9007199254740992.0) || v != floor(v))
            rc = mq_error_set(err, MQ_ERR_FORMAT,
                              "%s: line %zu: \"item_id\" is not an integer >= 0", name, lineno);
        else
            id = (int64_t)v;
    }
    if (!rc && id >= 0 && pend->n && pend->id >= 0 && id < pend->id)
        rc = mq_error_set(err, MQ_ERR_FORMAT,
                          "%s: line %zu: item_id %lld after %lld (ids must not decrease)", name,
                          lineno, (long long)id, (long long)pend->id);
    int same_item = !rc && id >= 0 && pend->n && id == pend->id;
    if (same_item && strcmp(good, pend->good))
        rc = mq_error_set(err, MQ_ERR_FORMAT,
                          "%s: line %zu: item_id %lld repeats with another sentence_good", name,
                          lineno, (long long)id);
    else if (same_item && category != pend->category)
        rc = mq_error_set(err, MQ_ERR_FORMAT,
                          "%s: line %zu: item_id %lld repeats with another category", name,
                          lineno, (long long)id);
    if (rc) {
        cJSON_Delete(doc);
        return rc;
    }
    if (!same_item) {
        if ((rc = pending_flush(pend, out, err))) {
            cJSON_Delete(doc);
            return rc;
        }
        pend->good = good;
        pend->lemma = lemma;
        pend->source = source ? source : uid;
        pend->infl = infl_good;
        pend->category = category;
        pend->id = id;
    }
    return pending_push(pend, doc, bad, infl_bad, err);
}

int mq_blimp_parse(const char *text, size_t len, const char *name, mq_mp_set_t *out,
                   mq_error_t *err) {
    memset(out, 0, sizeof *out);
    pending_t pend = {0};
    pend.id = -1;
    int rc = MQ_OK;
    size_t lineno = 0;
    for (size_t pos = 0; pos < len && rc == MQ_OK;) {
        lineno++;
        const char *line = text + pos;
        const char *nl = memchr(line, '\n', len - pos);
        size_t n = nl ? (size_t)(nl - line) : len - pos;
        pos += n + (nl ? 1 : 0);
        if (n > MQ_BLIMP_MAX_LINE) {
            rc = mq_error_set(err, MQ_ERR_FORMAT, "%s: line %zu: longer than %d bytes", name,
                              lineno, MQ_BLIMP_MAX_LINE);
            break;
        }
        if (memchr(line, 0, n)) {
            rc = mq_error_set(err, MQ_ERR_FORMAT, "%s: line %zu: NUL byte", name, lineno);
            break;
        }
        size_t k = 0;
        while (k < n && (line[k] == ' ' || line[k] == '\t' || line[k] == '\r'))
            k++;
        if (k == n) continue; /* blank */
        rc = parse_line(line, n, name, lineno, &pend, out, err);
    }
    if (rc == MQ_OK) rc = pending_flush(&pend, out, err);
    pending_clear(&pend);
    free(pend.docs);
    free((void *)pend.bad);
    free(pend.bad_infl);
    if (rc == MQ_OK && out->n_items == 0)
        rc = mq_error_set(err, MQ_ERR_FORMAT, "%s: no minimal pairs (%zu lines)", name, lineno);
    if (rc) mq_mp_set_free(out);
    return rc;
}

int mq_blimp_read(const char *path, mq_mp_set_t *out, mq_error_t *err) {
    memset(out, 0, sizeof *out);
    char *text;
    size_t len;
    int rc = mq_read_file(path, MQ_BLIMP_MAX_FILE, &text, &len, err);
    if (rc) return rc;
    rc = mq_blimp_parse(text, len, path, out, err);
    free(text);
    return rc;
}

/* One output line; NULL when out of memory. */
static char *pair_line(const mq_mp_set_t *s, size_t i, uint32_t j, size_t pair_id) {
    const mq_mp_item_t *it = &s->items[i];
    char infl[64];
    cJSON *o = cJSON_CreateObject();
    int ok = o && cJSON_AddStringToObject(o, "sentence_good", it->good) &&
             cJSON_AddStringToObject(o, "sentence_bad", s->bad[it->first_bad + j]) &&
             cJSON_AddNumberToObject(o, "item_id", (double)i) &&
             cJSON_AddNumberToObject(o, "pair_id", (double)pair_id);
    if (ok && it->source) ok = cJSON_AddStringToObject(o, "source", it->source) != NULL;
    if (ok && it->lemma) ok = cJSON_AddStringToObject(o, "lemma", it->lemma) != NULL;
    if (ok && it->category)
        ok = cJSON_AddStringToObject(o, "category", mq_vt_category_name(it->category)) != NULL;
    if (ok && it->infl) {
        mq_infl_format(it->infl, infl, sizeof infl);
        ok = cJSON_AddStringToObject(o, "inflection_good", infl) != NULL;
    }
    if (ok && s->bad_infl[it->first_bad + j]) {
        mq_infl_format(s->bad_infl[it->first_bad + j], infl, sizeof infl);
        ok = cJSON_AddStringToObject(o, "inflection_bad", infl) != NULL;
    }
    char *line = ok ? cJSON_PrintUnformatted(o) : NULL;
    cJSON_Delete(o);
    return line;
}

int mq_blimp_write(const char *path, const mq_mp_set_t *s, mq_error_t *err) {
    for (size_t i = 0; i < s->n_items; i++)
        if (s->items[i].n_bad == 0)
            return mq_error_set(err, MQ_ERR_ARG, "%s: item %zu has no bad sentence", path, i);
    mq_atomic_file_t f;
    int rc = mq_atomic_open(&f, path, err);
    if (rc) return rc;
    size_t pair_id = 0;
    for (size_t i = 0; i < s->n_items && rc == MQ_OK; i++)
        for (uint32_t j = 0; j < s->items[i].n_bad && rc == MQ_OK; j++) {
            char *line = pair_line(s, i, j, pair_id++);
            if (!line)
                rc = mq_error_set(err, MQ_ERR_NOMEM, "%s: out of memory", path);
            else if (fputs(line, f.fp) == EOF || fputc('\n', f.fp) == EOF)
                rc = mq_error_set(err, MQ_ERR_IO, "%s: write failed: %s", path, strerror(errno));
            free(line);
        }
    if (rc) {
        mq_atomic_abort(&f);
        return rc;
    }
    return mq_atomic_commit(&f, err);
}

/* ---------------------------------------------------------------------------------------------
 * scoring */

/* One forward row: input tokens [start, start + n_in) of a sentence, predicting positions
 * start + 1 .. start + n_in; positions before first are context only (already scored by the
 * sentence's previous window). */
typedef struct {
    size_t sent;
    uint32_t start, n_in, first;
} row_t;

static int cmp_row_len(const void *a, const void *b) {
    const row_t *x = *(const row_t *const *)a, *y = *(const row_t *const *)b;
    if (x->n_in != y->n_in) return x->n_in < y->n_in ? -1 : 1;
    return x < y ? -1 : x > y;
}

/* Forwards at most this many tokens (B x T) at once: the activations of the default model at
 * 2048 tokens take about 150 MB. */
#define MP_MAX_BATCH_TOKENS 2048

int mq_sentence_logprob(mq_gpt_t *m, const mq_tokenizer_t *tok, const char *const *sents, size_t n,
                        double *logp, mq_error_t *err) {
    const int V = m->cfg.vocab_size, maxT = m->cfg.n_ctx;
    /* a sentence starts as a document does: after <|endoftext|>, or in a LLaMA vocabulary
     * after the beginning-of-sequence token (else the end-of-sequence one) */
    int32_t eot = mq_tokenizer_eot(tok);
    if (eot < 0) eot = mq_tokenizer_bos(tok);
    if (eot < 0) eot = mq_tokenizer_eos(tok);
    if (eot < 0)
        return mq_error_set(err, MQ_ERR_ARG,
                            "the tokenizer has no %s and no beginning- or end-of-sequence token "
                            "to start sentences with",
                            MQ_EOT_TEXT);
    if (mq_tokenizer_n_vocab(tok) > V)
        return mq_error_set(err, MQ_ERR_ARG, "the tokenizer has %d tokens, the model only %d",
                            mq_tokenizer_n_vocab(tok), V);
    if (maxT < 2) return mq_error_set(err, MQ_ERR_ARG, "context %d is too short", maxT);
    for (size_t i = 0; i < n; i++)
        logp[i] = 0;

    /* Encode every sentence into one token array, EOT first. */
    size_t *off = malloc((n + 1) * sizeof *off);
    int32_t *toks = NULL;
    row_t *rows = NULL;
    row_t **order = NULL;
    double *row_lp = NULL;
    int *inp = NULL;
    size_t n_tok = 0, cap_tok = 0, n_rows = 0, cap_rows = 0;
    int rc = off ? MQ_OK : mq_error_set(err, MQ_ERR_NOMEM, "out of memory");
    for (size_t i = 0; i < n && rc == MQ_OK; i++) {
        int32_t *ids = NULL;
        size_t n_ids = 0;
        rc = mq_tokenizer_encode(tok, sents[i], strlen(sents[i]), 0, &ids, &n_ids, err);
        if (rc) break;
        if (n_ids >= UINT32_MAX / 2) {
            free(ids);
            rc = mq_error_set(err, MQ_ERR_ARG, "sentence %zu is too long (%zu tokens)", i, n_ids);
            break;
        }
        if (n_tok + n_ids + 1 > cap_tok) {
            size_t cap = cap_tok ? cap_tok : 4096;
            while (cap < n_tok + n_ids + 1)
                cap *= 2;
            int32_t *t = realloc(toks, cap * sizeof *t);
            if (!t) {
                free(ids);
                rc = mq_error_set(err, MQ_ERR_NOMEM, "out of memory for %zu tokens", cap);
                break;
            }
            toks = t;
            cap_tok = cap;
        }
        off[i] = n_tok;
        toks[n_tok++] = eot;
        if (n_ids) memcpy(toks + n_tok, ids, n_ids * sizeof *ids);
        n_tok += n_ids;
        free(ids);

        /* Its rows: one when it fits, else overlapping windows (see the header). */
        uint32_t N = (uint32_t)(n_ids + 1), done = 0, stride = (uint32_t)maxT / 2;
        while (done < N - 1) {
            row_t r;
            if (done == 0) {
                r.start = 0;
                r.n_in = N - 1 < (uint32_t)maxT ? N - 1 : (uint32_t)maxT;
                r.first = 1;
            } else {
                uint32_t last = done + stride < N - 1 ? done + stride : N - 1;
                r.start = last - (uint32_t)maxT;
                r.n_in = (uint32_t)maxT;
                r.first = done + 1;
            }
            r.sent = i;
            done = r.start + r.n_in;
            if (n_rows == cap_rows) {
                size_t cap = cap_rows ? 2 * cap_rows : 1024;
                row_t *nr = realloc(rows, cap * sizeof *nr);
                if (!nr) {
                    rc = mq_error_set(err, MQ_ERR_NOMEM, "out of memory");
                    break;
                }
                rows = nr;
                cap_rows = cap;
            }
            rows[n_rows++] = r;
        }
    }
    if (rc == MQ_OK && n_rows) {
        order = malloc(n_rows * sizeof *order);
        row_lp = calloc(n_rows, sizeof *row_lp);
        inp =
            malloc((size_t)(maxT > MP_MAX_BATCH_TOKENS ? maxT : MP_MAX_BATCH_TOKENS) * sizeof *inp);
        if (!order || !row_lp || !inp) rc = mq_error_set(err, MQ_ERR_NOMEM, "out of memory");
    }
    if (rc == MQ_OK && n_rows) {
        /* Rows of similar length share a forward pass; padding (EOT) follows each row, and
         * causal attention keeps it from reaching the positions that are scored. */
        for (size_t r = 0; r < n_rows; r++)
            order[r] = &rows[r];
        qsort(order, n_rows, sizeof *order, cmp_row_len);
        mq_progress_t pb;
        mq_progress_start(&pb, "scoring sentences", (int64_t)n_rows);
        for (size_t r0 = 0; r0 < n_rows && rc == MQ_OK;) {
            int T = (int)order[r0]->n_in, B = 0;
            while (r0 + (size_t)B < n_rows && B < MQ_MP_BATCH) {
                int t = (int)order[r0 + (size_t)B]->n_in; /* ascending: the batch's longest */
                if (B > 0 && (size_t)(B + 1) * (size_t)t > MP_MAX_BATCH_TOKENS) break;
                T = t;
                B++;
            }
            for (int b = 0; b < B; b++) {
                const row_t *r = order[r0 + (size_t)b];
                const int32_t *src = toks + off[r->sent] + r->start;
                for (int t = 0; t < T; t++)
                    inp[b * T + t] = t < (int)r->n_in ? src[t] : eot;
            }
            rc = mq_gpt_forward(m, inp, NULL, B, T, err);
            if (rc) break;
            for (int b = 0; b < B; b++) {
                const row_t *r = order[r0 + (size_t)b];
                const int32_t *src = toks + off[r->sent] + r->start;
                double lp = 0;
                /* position q predicts token q + 1 of the row */
                for (int q = (int)(r->first - r->start) - 1; q < (int)r->n_in; q++) {
                    size_t at = ((size_t)b * T + (size_t)q) * (size_t)V;
                    int32_t target = src[q + 1];
                    /* the forward's softmax holds p(target); the logits are the fallback when
                     * it underflowed */
                    float p = m->acts.probs[at + (size_t)target];
                    lp -= p > 1e-30f ? -log((double)p)
                                     : mq_nll_from_logits(m->acts.logits + at, V, target);
                }
                row_lp[r - rows] = lp;
            }
            r0 += (size_t)B;
            mq_progress_update(&pb, (int64_t)r0, NULL);
        }
        if (rc == MQ_OK) mq_progress_finish(&pb, NULL);
        /* rows were made sentence by sentence, so each sentence sums its windows in order */
        for (size_t r = 0; r < n_rows && rc == MQ_OK; r++)
            logp[rows[r].sent] += row_lp[r];
    }
    free(off);
    free(toks);
    free(rows);
    free(order);
    free(row_lp);
    free(inp);
    return rc;
}

void mq_wilson_interval(size_t k, size_t n, double z, double *lo, double *hi) {
    if (n == 0) {
        *lo = 0;
        *hi = 1;
        return;
    }
    double nn = (double)n, p = (double)k / nn, z2 = z * z;
    double denom = 1 + z2 / nn;
    double center = (p + z2 / (2 * nn)) / denom;
    double half = z / denom * sqrt(p * (1 - p) / nn + z2 / (4 * nn * nn));
    *lo = center - half < 0 ? 0 : center - half;
    *hi = center + half > 1 ? 1 : center + half;
}

/* z of a two-sided 95% interval */
#define WILSON_Z95 1.959963984540054

/* Distinct sentences of a set: an open-addressing table from text to index. */
typedef struct {
    const char **text;
    size_t n;
    size_t *slot; /* index + 1, 0 empty */
    size_t cap;   /* power of two */
} uniq_t;

static size_t uniq_add(uniq_t *u, const char *s) {
    uint64_t h = mq_hash64(s, strlen(s));
    size_t mask = u->cap - 1;
    for (size_t i = (size_t)h & mask;; i = (i + 1) & mask) {
        if (!u->slot[i]) {
            u->text[u->n] = s;
            u->slot[i] = ++u->n;
            return u->n - 1;
        }
        if (!strcmp(u->text[u->slot[i] - 1], s)) return u->slot[i] - 1;
    }
}

int mq_mp_score(mq_gpt_t *m, const mq_tokenizer_t *tok, const mq_mp_set_t *s, uint8_t *item_correct,
                mq_mp_result_t *r, mq_error_t *err) {
    memset(r, 0, sizeof *r);
    if (s->n_items == 0) return mq_error_set(err, MQ_ERR_ARG, "no minimal pairs to score");
    double t0 = mq_now();
    size_t n_sent = s->n_items + s->n_bad;
    uniq_t u = {0};
    u.cap = 16;
    while (u.cap < 2 * n_sent)
        u.cap *= 2;
    u.text = malloc(n_sent * sizeof *u.text);
    u.slot = calloc(u.cap, sizeof *u.slot);
    size_t *idx = malloc(n_sent * sizeof *idx); /* goods first, then every alternative */
    double *lp = malloc(n_sent * sizeof *lp);
    int rc = MQ_OK;
    if (!u.text || !u.slot || !idx || !lp) rc = mq_error_set(err, MQ_ERR_NOMEM, "out of memory");
    if (rc == MQ_OK) {
        for (size_t i = 0; i < s->n_items; i++)
            idx[i] = uniq_add(&u, s->items[i].good);
        for (size_t j = 0; j < s->n_bad; j++)
            idx[s->n_items + j] = uniq_add(&u, s->bad[j]);
        rc = mq_sentence_logprob(m, tok, u.text, u.n, lp, err);
    }
    if (rc == MQ_OK) {
        for (size_t i = 0; i < s->n_items; i++) {
            const mq_mp_item_t *it = &s->items[i];
            double good = lp[idx[i]];
            int ok = 1;
            for (uint32_t j = 0; j < it->n_bad; j++)
                if (!(good > lp[idx[s->n_items + it->first_bad + j]])) ok = 0;
            r->correct += (size_t)ok;
            r->chance += 1.0 / (1.0 + it->n_bad);
            int c = it->category < MQ_VT_NUM_CATEGORIES ? it->category : MQ_VT_NONE;
            r->by_category[c].n++;
            r->by_category[c].correct += (size_t)ok;
            r->by_category[c].chance += 1.0 / (1.0 + it->n_bad);
            if (item_correct) item_correct[i] = (uint8_t)ok;
        }
        r->n = s->n_items;
        r->accuracy = (double)r->correct / (double)r->n;
        r->chance /= (double)r->n;
        mq_wilson_interval(r->correct, r->n, WILSON_Z95, &r->ci_low, &r->ci_high);
        for (int c = 0; c < MQ_VT_NUM_CATEGORIES; c++) {
            if (!r->by_category[c].n) continue;
            double n = (double)r->by_category[c].n;
            r->by_category[c].accuracy = (double)r->by_category[c].correct / n;
            r->by_category[c].chance /= n;
            mq_wilson_interval(r->by_category[c].correct, r->by_category[c].n, WILSON_Z95,
                               &r->by_category[c].ci_low, &r->by_category[c].ci_high);
        }
        r->n_sentences = u.n;
        r->seconds = mq_now() - t0;
    }
    free((void *)u.text);
    free(u.slot);
    free(idx);
    free(lp);
    return rc;
}
