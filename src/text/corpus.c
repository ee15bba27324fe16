#include "miniquant/corpus.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "miniquant/fileio.h"
#include "miniquant/rng.h"

/* WordNet's data files are ~15 MB in all; anything far larger is not WordNet. */
#define MAX_DATA_FILE (256u << 20)

mq_split_t mq_corpus_split_of(char pos, uint32_t offset) {
    char key[32];
    int n = snprintf(key, sizeof key, "%c:%08u", pos, (unsigned)offset);
    uint64_t h = mq_hash64(key, (uint64_t)n) % 100;
    if (h < 90) return MQ_SPLIT_TRAIN;
    if (h < 95) return MQ_SPLIT_VALID;
    return MQ_SPLIT_TEST;
}

const char *mq_split_name(mq_split_t s) {
    static const char *names[] = {"train", "valid", "test"};
    return (unsigned)s < MQ_NUM_SPLITS ? names[s] : "?";
}

int mq_split_parse(const char *name, mq_split_t *out, mq_error_t *err) {
    if (!strcmp(name, "train")) *out = MQ_SPLIT_TRAIN;
    else if (!strcmp(name, "valid") || !strcmp(name, "validation")) *out = MQ_SPLIT_VALID;
    else if (!strcmp(name, "test")) *out = MQ_SPLIT_TEST;
    else
        return mq_error_set(err, MQ_ERR_ARG, "unknown split '%s' (valid: train, valid, test)",
                            name);
    return MQ_OK;
}

typedef struct {
    char *buf;
    size_t len, cap;
} arena_t;

/* An arena for the documents of a text of len bytes: they are pieces of its lines, each with a
 * NUL for its newline, so len + 1 bytes hold them all and the arena never moves. */
static int arena_reserve(arena_t *a, size_t len) {
    a->buf = malloc(len + 1);
    a->cap = a->buf ? len + 1 : 0;
    return a->buf ? MQ_OK : MQ_ERR_NOMEM;
}

static int arena_push(arena_t *a, const char *s, size_t n, size_t *at) {
    if (a->len + n + 1 > a->cap) {
        size_t cap = a->cap ? a->cap : 4096;
        while (a->len + n + 1 > cap) cap *= 2;
        char *nb = realloc(a->buf, cap);
        if (!nb) return MQ_ERR_NOMEM;
        a->buf = nb;
        a->cap = cap;
    }
    *at = a->len;
    memcpy(a->buf + a->len, s, n);
    a->buf[a->len + n] = '\0';
    a->len += n + 1;
    return MQ_OK;
}

/* Documents are kept as arena offsets until parsing ends (the arena moves as it grows). */
typedef struct {
    size_t at;
    uint32_t len, offset;
    char pos;
} pending_t;

typedef struct {
    pending_t *v;
    size_t n, cap;
} pending_vec_t;

static int pending_push(pending_vec_t *p, pending_t d) {
    if (p->n == p->cap) {
        size_t cap = p->cap ? 2 * p->cap : 4096;
        pending_t *nv = realloc(p->v, cap * sizeof *nv);
        if (!nv) return MQ_ERR_NOMEM;
        p->v = nv;
        p->cap = cap;
    }
    p->v[p->n++] = d;
    return MQ_OK;
}

/* Parses one line "offset lex_filenum ss_type ... | gloss". Returns MQ_OK and fills d, or an
 * error describing the line. */
static int parse_line(const char *line, size_t n, const char *name, size_t lineno, char pos_hint,
                      arena_t *arena, pending_vec_t *out, mq_error_t *err) {
    size_t i = 0;
    uint64_t off = 0;
    size_t digits = 0;
    while (i < n && isdigit((unsigned char)line[i])) {
        off = off * 10 + (uint64_t)(line[i] - '0');
        if (off > UINT32_MAX)
            return mq_error_set(err, MQ_ERR_FORMAT, "%s: line %zu: synset offset too large", name,
                                lineno);
        i++;
        digits++;
    }
    if (digits != 8 || i >= n || line[i] != ' ')
        return mq_error_set(err, MQ_ERR_FORMAT,
                            "%s: line %zu: expected an 8-digit synset offset at column 1", name,
                            lineno);
    /* skip lex_filenum */
    i++;
    while (i < n && isdigit((unsigned char)line[i])) i++;
    if (i + 2 >= n || line[i] != ' ')
        return mq_error_set(err, MQ_ERR_FORMAT, "%s: line %zu: missing synset type", name,
                            lineno);
    char ss = line[i + 1];
    if (!strchr("nvasr", ss) || line[i + 2] != ' ')
        return mq_error_set(err, MQ_ERR_FORMAT, "%s: line %zu: bad synset type '%c'", name,
                            lineno, ss);
    char pos = ss == 's' ? 'a' : ss;
    if (pos_hint && pos != pos_hint)
        return mq_error_set(err, MQ_ERR_FORMAT,
                            "%s: line %zu: synset type '%c' in a data file of type '%c'", name,
                            lineno, ss, pos_hint);
    const char *bar = NULL;
    for (size_t k = i; k + 1 < n; k++)
        if (line[k] == '|' && line[k + 1] == ' ') {
            bar = line + k;
            break;
        }
    if (!bar)
        return mq_error_set(err, MQ_ERR_FORMAT, "%s: line %zu: no gloss (\"| \") on the line",
                            name, lineno);
    const char *g = bar + 2;
    const char *end = line + n;
    while (g < end && (*g == ' ' || *g == '\t')) g++;
    while (end > g && isspace((unsigned char)end[-1])) end--;
    size_t glen = (size_t)(end - g);
    if (glen == 0) return MQ_OK; /* a synset without gloss is no document */
    if (memchr(g, '\0', glen))
        return mq_error_set(err, MQ_ERR_FORMAT, "%s: line %zu: NUL byte in the gloss", name,
                            lineno);
    if (glen > UINT32_MAX)
        return mq_error_set(err, MQ_ERR_FORMAT, "%s: line %zu: gloss too long", name, lineno);
    size_t at;
    if (arena_push(arena, g, glen, &at) || pending_push(out, (pending_t){at, (uint32_t)glen,
                                                                         (uint32_t)off, pos}))
        return mq_error_set(err, MQ_ERR_NOMEM, "%s: out of memory", name);
    return MQ_OK;
}

/* Appends the pending documents over their (final) arena to c, which then owns the arena.
 * split < 0: each document's split comes from its synset. */
static int adopt(mq_corpus_t *c, arena_t *arena, pending_vec_t *p, int split, mq_error_t *err) {
    mq_doc_t *docs = realloc(c->docs, (c->n_docs + p->n + 1) * sizeof *docs);
    char **arenas = realloc(c->arenas, (c->n_arenas + 1) * sizeof *arenas);
    if (docs) c->docs = docs;
    if (arenas) c->arenas = arenas;
    if (!docs || !arenas) return mq_error_set(err, MQ_ERR_NOMEM, "out of memory");
    for (size_t k = 0; k < p->n; k++) {
        pending_t *q = &p->v[k];
        int s = split >= 0 ? split : (int)mq_corpus_split_of(q->pos, q->offset);
        docs[c->n_docs + k] = (mq_doc_t){arena->buf + q->at, q->len, q->offset, q->pos,
                                         (uint8_t)s};
    }
    c->n_docs += p->n;
    c->arenas[c->n_arenas++] = arena->buf;
    arena->buf = NULL;
    return MQ_OK;
}

int mq_corpus_parse_data(const char *text, size_t len, const char *name, char pos_hint,
                         mq_corpus_t *c, mq_error_t *err) {
    arena_t arena = {0};
    pending_vec_t pend = {0};
    size_t lineno = 0;
    int rc = MQ_OK;
    if (arena_reserve(&arena, len)) rc = mq_error_set(err, MQ_ERR_NOMEM, "%s: out of memory", name);
    for (size_t pos = 0; pos < len && rc == MQ_OK;) {
        const char *nl = memchr(text + pos, '\n', len - pos);
        size_t end = nl ? (size_t)(nl - text) : len;
        lineno++;
        const char *line = text + pos;
        size_t n = end - pos;
        /* The license header lines start with two spaces; blank lines are ignored. */
        if (n > 0 && !(n >= 2 && line[0] == ' ' && line[1] == ' '))
            rc = parse_line(line, n, name, lineno, pos_hint, &arena, &pend, err);
        pos = end + 1;
    }
    if (rc == MQ_OK) rc = adopt(c, &arena, &pend, -1, err);
    free(arena.buf);
    free(pend.v);
    return rc;
}

int mq_corpus_load_wordnet(const char *dir, mq_corpus_t *c, mq_error_t *err) {
    static const struct {
        const char *file;
        char pos;
    } FILES[] = {{"data.noun", 'n'}, {"data.verb", 'v'}, {"data.adj", 'a'}, {"data.adv", 'r'}};
    if (!dir) dir = MQ_WORDNET_DIR;
    memset(c, 0, sizeof *c);
    for (size_t f = 0; f < 4; f++) {
        char path[4096];
        snprintf(path, sizeof path, "%s/%s", dir, FILES[f].file);
        if (!mq_file_exists(path)) {
            mq_corpus_free(c);
            return mq_error_set(err, MQ_ERR_IO,
                                "%s: not found; WordNet 3.0 is not installed (install the Debian "
                                "package wordnet-base: apt-get install wordnet-base, or run "
                                "scripts/setup.sh)",
                                path);
        }
        char *text;
        size_t len;
        int rc = mq_read_file(path, MAX_DATA_FILE, &text, &len, err);
        if (rc == MQ_OK) rc = mq_corpus_parse_data(text, len, path, FILES[f].pos, c, err);
        free(text);
        if (rc) {
            mq_corpus_free(c);
            return rc;
        }
    }
    return MQ_OK;
}

int mq_corpus_parse_text(const char *text, size_t len, const char *name, mq_split_t split,
                         mq_corpus_t *c, mq_error_t *err) {
    arena_t arena = {0};
    pending_vec_t pend = {0};
    size_t lineno = 0;
    int rc = MQ_OK;
    if (arena_reserve(&arena, len)) rc = mq_error_set(err, MQ_ERR_NOMEM, "%s: out of memory", name);
    for (size_t pos = 0; pos < len && rc == MQ_OK;) {
        const char *nl = memchr(text + pos, '\n', len - pos);
        size_t end = nl ? (size_t)(nl - text) : len;
        lineno++;
        size_t n = end - pos, at;
        if (memchr(text + pos, '\0', n))
            rc = mq_error_set(err, MQ_ERR_FORMAT, "%s: line %zu: NUL byte", name, lineno);
        else if (n > UINT32_MAX)
            rc = mq_error_set(err, MQ_ERR_FORMAT, "%s: line %zu: line too long", name, lineno);
        else if (n > 0 && (arena_push(&arena, text + pos, n, &at) ||
                           pending_push(&pend, (pending_t){at, (uint32_t)n, (uint32_t)lineno, 0})))
            rc = mq_error_set(err, MQ_ERR_NOMEM, "%s: out of memory", name);
        pos = end + 1;
    }
    if (rc == MQ_OK) rc = adopt(c, &arena, &pend, (int)split, err);
    free(arena.buf);
    free(pend.v);
    return rc;
}

int mq_corpus_load_text(const char *path, mq_split_t split, mq_corpus_t *c, mq_error_t *err) {
    memset(c, 0, sizeof *c);
    char *text;
    size_t len;
    int rc = mq_read_file(path, MAX_DATA_FILE, &text, &len, err);
    if (rc) return rc;
    rc = mq_corpus_parse_text(text, len, path, split, c, err);
    free(text);
    if (rc) mq_corpus_free(c);
    return rc;
}

void mq_corpus_free(mq_corpus_t *c) {
    for (size_t i = 0; i < c->n_arenas; i++) free(c->arenas[i]);
    free(c->arenas);
    free(c->docs);
    memset(c, 0, sizeof *c);
}

static size_t count_words(const char *s, size_t n) {
    size_t words = 0;
    int in = 0;
    for (size_t i = 0; i < n; i++) {
        int sp = isspace((unsigned char)s[i]);
        if (!sp && !in) words++;
        in = !sp;
    }
    return words;
}

void mq_corpus_stats(const mq_corpus_t *c, mq_split_stats_t *stats) {
    memset(stats, 0, MQ_NUM_SPLITS * sizeof *stats);
    for (size_t i = 0; i < c->n_docs; i++) {
        mq_split_stats_t *s = &stats[c->docs[i].split];
        s->docs++;
        s->bytes += c->docs[i].len + 1;
        s->words += count_words(c->docs[i].text, c->docs[i].len);
    }
}

int mq_corpus_split_text(const mq_corpus_t *c, mq_split_t split, char **text, size_t *len,
                         mq_error_t *err) {
    size_t total = 0;
    for (size_t i = 0; i < c->n_docs; i++)
        if (c->docs[i].split == split) total += c->docs[i].len + 1;
    char *buf = malloc(total + 1);
    if (!buf) return mq_error_set(err, MQ_ERR_NOMEM, "out of memory for %zu bytes", total);
    size_t at = 0;
    for (size_t i = 0; i < c->n_docs; i++) {
        if (c->docs[i].split != split) continue;
        memcpy(buf + at, c->docs[i].text, c->docs[i].len);
        at += c->docs[i].len;
        buf[at++] = '\n';
    }
    buf[at] = '\0';
    *text = buf;
    *len = at;
    return MQ_OK;
}
