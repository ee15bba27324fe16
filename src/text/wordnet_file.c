/* Reading WordNet 3.0's files: lines, index lines and data lines. The layout is in
 * wordnet_file.h. */
#include "wordnet_file.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "miniquant/fileio.h"

#define MAX_WORDNET_FILE ((size_t)64 << 20) /* data.noun, the largest, is 15 MB */

const char *mq_wn_dir(const mq_wordnet_t *wn) {
    return wn->dir ? wn->dir : MQ_WORDNET_DIR;
}

/* A file of wn held in memory, copied (NUL-terminated) into f; MQ_ERR_IO when wn has none of
 * that name. */
static int read_memory(mq_wn_lines_t *f, const mq_wordnet_t *wn, const char *name,
                       mq_error_t *err) {
    for (size_t i = 0; i < wn->n_files; i++) {
        if (strcmp(wn->files[i].name, name)) continue;
        size_t len = wn->files[i].len;
        if (len > MAX_WORDNET_FILE)
            return mq_error_set(err, MQ_ERR_FORMAT, "%s: %zu bytes, more than a WordNet file's %zu",
                                f->path, len, MAX_WORDNET_FILE);
        if (!(f->text = malloc(len + 1))) return mq_error_set(err, MQ_ERR_NOMEM, "out of memory");
        if (len) memcpy(f->text, wn->files[i].data, len);
        f->text[len] = '\0';
        f->len = len;
        return MQ_OK;
    }
    return mq_error_set(err, MQ_ERR_IO, "%s: not found", f->path);
}

int mq_wn_lines_open(mq_wn_lines_t *f, const mq_wordnet_t *wn, const char *name, mq_error_t *err) {
    memset(f, 0, sizeof *f);
    snprintf(f->path, sizeof f->path, "%s/%s", mq_wn_dir(wn), name);
    int rc;
    if (wn->files) {
        rc = read_memory(f, wn, name, err);
    } else if (!mq_file_exists(f->path)) {
        return mq_error_set(err, MQ_ERR_IO,
                            "%s: not found (WordNet 3.0 is in the Debian package wordnet-base)",
                            f->path);
    } else {
        rc = mq_read_file(f->path, MAX_WORDNET_FILE, &f->text, &f->len, err);
    }
    if (rc == MQ_OK && memchr(f->text, 0, f->len)) {
        size_t at = (size_t)((char *)memchr(f->text, 0, f->len) - f->text), line = 1;
        for (size_t i = 0; i < at; i++)
            line += f->text[i] == '\n';
        free(f->text);
        f->text = NULL;
        return mq_error_set(err, MQ_ERR_FORMAT, "%s: line %zu: NUL byte", f->path, line);
    }
    return rc;
}

void mq_wn_lines_close(mq_wn_lines_t *f) {
    free(f->text);
    f->text = NULL;
}

int mq_wn_lines_next(mq_wn_lines_t *f) {
    if (f->pos >= f->len) return 0;
    f->line = f->text + f->pos;
    const char *nl = memchr(f->line, '\n', f->len - f->pos);
    f->n = nl ? (size_t)(nl - f->line) : f->len - f->pos;
    f->pos += f->n + (nl ? 1 : 0);
    f->lineno++;
    while (f->n && (f->line[f->n - 1] == '\r' || f->line[f->n - 1] == ' '))
        f->n--;
    return 1;
}

int mq_wn_lines_is_header(const mq_wn_lines_t *f) {
    return f->n == 0 || f->line[0] == ' ';
}

int mq_wn_lines_fields(const mq_wn_lines_t *f, const char **start, size_t *len, int max) {
    int k = 0;
    for (size_t i = 0; i < f->n && k < max;) {
        while (i < f->n && f->line[i] == ' ')
            i++;
        if (i == f->n) break;
        size_t j = i;
        while (j < f->n && f->line[j] != ' ')
            j++;
        start[k] = f->line + i;
        len[k++] = j - i;
        i = j;
    }
    return k;
}

int mq_wn_lines_error(const mq_wn_lines_t *f, mq_error_t *err, const char *fmt, ...) {
    char what[768];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    return mq_error_set(err, MQ_ERR_FORMAT, "%s: line %zu: %s", f->path, f->lineno, what);
}

int mq_wn_number(const char *s, size_t n, int base, uint32_t *out) {
    if (n == 0 || n > 10) return 0;
    uint64_t v = 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        int d = c >= '0' && c <= '9'                 ? c - '0'
                : base == 16 && c >= 'a' && c <= 'f' ? c - 'a' + 10
                : base == 16 && c >= 'A' && c <= 'F' ? c - 'A' + 10
                                                     : -1;
        if (d < 0) return 0;
        v = v * (uint64_t)base + (uint64_t)d;
    }
    if (v > UINT32_MAX) return 0;
    *out = (uint32_t)v;
    return 1;
}

int mq_wn_count_parse(const mq_wn_lines_t *f, const char **lemma, size_t *lemma_len, int *ss_type,
                      uint32_t *count, mq_error_t *err) {
    const char *fs[4];
    size_t fl[4];
    int k = mq_wn_lines_fields(f, fs, fl, 4);
    const char *pct = k >= 1 ? memchr(fs[0], '%', fl[0]) : NULL;
    uint32_t sense;
    if (k != 3 || !pct || pct + 1 >= fs[0] + fl[0] || pct[1] < '1' || pct[1] > '5' ||
        !mq_wn_number(fs[1], fl[1], 10, &sense) || fl[2] > 9 ||
        !mq_wn_number(fs[2], fl[2], 10, count))
        return mq_wn_lines_error(f, err, "not \"lemma%%type:... sense_number count\"");
    *lemma = fs[0];
    *lemma_len = (size_t)(pct - fs[0]);
    *ss_type = pct[1] - '0';
    return MQ_OK;
}

/* The fields of a data line before its gloss, one at a time. */
typedef struct {
    const char *p, *end;
    const char *tok;
    size_t n;
} cursor_t;

static int next_field(cursor_t *c) {
    while (c->p < c->end && *c->p == ' ')
        c->p++;
    if (c->p == c->end) return 0;
    c->tok = c->p;
    while (c->p < c->end && *c->p != ' ')
        c->p++;
    c->n = (size_t)(c->p - c->tok);
    return 1;
}

static int field_number(cursor_t *c, int base, uint32_t *v) {
    return next_field(c) && mq_wn_number(c->tok, c->n, base, v);
}

int mq_wn_synset_parse(const mq_wn_lines_t *f, mq_wn_synset_t *s, mq_error_t *err) {
    const char *bar = NULL;
    for (size_t i = 0; i + 1 < f->n; i++)
        if (f->line[i] == '|' && f->line[i + 1] == ' ') {
            bar = f->line + i;
            break;
        }
    if (!bar && f->n && f->line[f->n - 1] == '|') bar = f->line + f->n - 1;
    if (!bar) return mq_wn_lines_error(f, err, "no gloss (\"| \") on the line");
    cursor_t c = {f->line, bar, NULL, 0};
    uint32_t v;
    if (!next_field(&c) || c.n != 8 || !mq_wn_number(c.tok, c.n, 10, &s->offset))
        return mq_wn_lines_error(f, err, "expected an 8-digit synset offset");
    if (!field_number(&c, 10, &s->lexfile) || s->lexfile > 63)
        return mq_wn_lines_error(f, err, "expected a lexicographer file number after the offset");
    if (!next_field(&c) || c.n != 1 || !strchr("nvasr", c.tok[0]))
        return mq_wn_lines_error(f, err, "expected a synset type (n v a s r)");
    s->ss_type = c.tok[0];
    if (!field_number(&c, 16, &v) || v == 0 || v >= MQ_WN_MAX_WORDS)
        return mq_wn_lines_error(f, err, "expected a word count (two hex digits, not 00)");
    s->n_words = (int)v;
    for (int i = 0; i < s->n_words; i++) {
        if (!next_field(&c))
            return mq_wn_lines_error(f, err, "%d words announced, %d found", s->n_words, i);
        s->word[i] = c.tok;
        s->word_len[i] = c.n;
        /* adjectives carry a syntactic marker: "long(a)", "elect(ip)" */
        const char *paren = memchr(c.tok, '(', c.n);
        if (paren && s->ss_type != 'n' && s->ss_type != 'v')
            s->word_len[i] = (size_t)(paren - c.tok);
        s->frames[i] = 0;
        if (!field_number(&c, 16, &v))
            return mq_wn_lines_error(f, err, "word %d has no lex_id", i + 1);
    }
    uint32_t p_cnt;
    if (!field_number(&c, 10, &p_cnt))
        return mq_wn_lines_error(f, err, "expected a pointer count after the words");
    s->usage = 0;
    for (uint32_t i = 0; i < p_cnt; i++) {
        if (!next_field(&c))
            return mq_wn_lines_error(f, err, "%u pointers announced, %u found", p_cnt, i);
        if (c.n == 2 && c.tok[0] == ';' && c.tok[1] == 'u') s->usage = 1;
        if (!next_field(&c) || c.n != 8 || !mq_wn_number(c.tok, c.n, 10, &v))
            return mq_wn_lines_error(f, err, "pointer %u: expected an 8-digit synset offset",
                                     i + 1);
        if (!next_field(&c) || c.n != 1 || !strchr("nvasr", c.tok[0]))
            return mq_wn_lines_error(f, err, "pointer %u: expected a part of speech", i + 1);
        if (!next_field(&c) || c.n != 4 || !mq_wn_number(c.tok, c.n, 16, &v))
            return mq_wn_lines_error(f, err, "pointer %u: expected source/target (4 hex digits)",
                                     i + 1);
    }
    uint32_t f_cnt = 0;
    if (next_field(&c)) {
        if (s->ss_type != 'v' || !mq_wn_number(c.tok, c.n, 10, &f_cnt))
            return mq_wn_lines_error(f, err, "unexpected field after the pointers");
        for (uint32_t i = 0; i < f_cnt; i++) {
            uint32_t fnum, wnum;
            if (!next_field(&c) || c.n != 1 || c.tok[0] != '+' || !field_number(&c, 10, &fnum) ||
                !field_number(&c, 16, &wnum))
                return mq_wn_lines_error(f, err, "frame %u: expected \"+ f_num w_num\"", i + 1);
            if (fnum == 0 || fnum > 63 || wnum > (uint32_t)s->n_words)
                return mq_wn_lines_error(f, err, "frame %u: frame %u of word %u out of range",
                                         i + 1, fnum, wnum);
            for (int w = 0; w < s->n_words; w++)
                if (wnum == 0 || (uint32_t)w + 1 == wnum) s->frames[w] |= (uint64_t)1 << fnum;
        }
        if (next_field(&c)) return mq_wn_lines_error(f, err, "unexpected field after the frames");
    }
    return MQ_OK;
}

int mq_wn_index_offsets(const mq_wn_lines_t *f, const char *const *fs, const size_t *fl, int k,
                        int *first, int *n, mq_error_t *err) {
    uint32_t synsets, pointers, v;
    if (k < 4 || !mq_wn_number(fs[2], fl[2], 10, &synsets) || synsets == 0 ||
        !mq_wn_number(fs[3], fl[3], 10, &pointers))
        return mq_wn_lines_error(f, err, "not \"lemma pos synset_cnt p_cnt ...\"");
    uint64_t want = 4 + (uint64_t)pointers + 2 + synsets;
    if ((uint64_t)k != want)
        return mq_wn_lines_error(f, err, "%d fields where synset_cnt %u and p_cnt %u make %llu", k,
                                 synsets, pointers, (unsigned long long)want);
    int at = 4 + (int)pointers;
    if (!mq_wn_number(fs[at], fl[at], 10, &v) || !mq_wn_number(fs[at + 1], fl[at + 1], 10, &v))
        return mq_wn_lines_error(f, err, "expected sense_cnt and tagsense_cnt");
    for (int i = at + 2; i < k; i++)
        if (fl[i] != 8 || !mq_wn_number(fs[i], fl[i], 10, &v))
            return mq_wn_lines_error(f, err, "expected 8-digit synset offsets");
    *first = at + 2;
    *n = (int)synsets;
    return MQ_OK;
}

int mq_wn_counts_add(const mq_wordnet_t *wn, mq_wn_count_slot_fn slot, void *ctx,
                     mq_error_t *err) {
    mq_wn_lines_t f;
    int rc = mq_wn_lines_open(&f, wn, "cntlist.rev", err);
    while (rc == MQ_OK && mq_wn_lines_next(&f)) {
        if (f.n == 0) continue;
        const char *lemma;
        size_t len;
        int type;
        uint32_t cnt;
        if ((rc = mq_wn_count_parse(&f, &lemma, &len, &type, &cnt, err))) break;
        uint32_t *dst = slot(ctx, lemma, len, type);
        if (dst) *dst = *dst > UINT32_MAX - cnt ? UINT32_MAX : *dst + cnt;
    }
    mq_wn_lines_close(&f);
    return rc;
}
