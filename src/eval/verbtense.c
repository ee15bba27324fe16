/* English verb forms from WordNet (index.verb, verb.exc, cntlist.rev) and the verb-tense
 * minimal pairs built from the test split's usage examples. The rules are in pairs.h. */
#include "miniquant/pairs.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "miniquant/fileio.h"
#include "miniquant/rng.h"

#define MAX_WORD 64 /* lemmas and forms are shorter; longer words are skipped */
#define MAX_WORDNET_FILE ((size_t)64 << 20) /* index.verb is 0.5 MB, cntlist.rev 1 MB */

/* ---------------------------------------------------------------------------------------------
 * strings: a pool of NUL-terminated copies, and a map from string to uint32 */

typedef struct {
    char **blocks;
    size_t n, cap, used;
} pool_t;

#define POOL_BLOCK 65536

static char *pool_strndup(pool_t *p, const char *s, size_t n) {
    int big = n + 1 > POOL_BLOCK;
    if (big || p->n == 0 || p->used + n + 1 > POOL_BLOCK) {
        if (p->n == p->cap) {
            size_t cap = p->cap ? 2 * p->cap : 16;
            char **b = realloc(p->blocks, cap * sizeof *b);
            if (!b) return NULL;
            p->blocks = b;
            p->cap = cap;
        }
        char *blk = malloc(big ? n + 1 : POOL_BLOCK);
        if (!blk) return NULL;
        if (big) {
            /* a block of its own, kept before the block being filled */
            p->blocks[p->n] = blk;
            if (p->n > 0) {
                p->blocks[p->n] = p->blocks[p->n - 1];
                p->blocks[p->n - 1] = blk;
            } else {
                p->used = POOL_BLOCK; /* full: the next string opens a block */
            }
            p->n++;
            memcpy(blk, s, n);
            blk[n] = 0;
            return blk;
        }
        p->blocks[p->n++] = blk;
        p->used = 0;
    }
    char *d = p->blocks[p->n - 1] + p->used;
    memcpy(d, s, n);
    d[n] = 0;
    p->used += n + 1;
    return d;
}

static void pool_free(pool_t *p) {
    for (size_t i = 0; i < p->n; i++)
        free(p->blocks[i]);
    free(p->blocks);
    memset(p, 0, sizeof *p);
}

/* Open addressing; keys point at strings owned elsewhere (a pool). */
typedef struct {
    const char **keys;
    uint32_t *vals;
    size_t n, cap; /* cap: 0 or a power of two */
} smap_t;

static size_t smap_slot(const smap_t *m, const char *k, size_t len) {
    size_t mask = m->cap - 1;
    for (size_t i = (size_t)mq_hash64(k, len) & mask;; i = (i + 1) & mask)
        if (!m->keys[i] || (!strncmp(m->keys[i], k, len) && m->keys[i][len] == 0)) return i;
}

/* 1 and *val when k[0..len) is a key. */
static int smap_get(const smap_t *m, const char *k, size_t len, uint32_t *val) {
    if (!m->cap) return 0;
    size_t i = smap_slot(m, k, len);
    if (!m->keys[i]) return 0;
    if (val) *val = m->vals[i];
    return 1;
}

/* Inserts key (NUL-terminated, kept by pointer) unless present; *val gets the stored value. */
static int smap_put(smap_t *m, const char *key, uint32_t v, uint32_t *val) {
    if (2 * (m->n + 1) > m->cap) {
        size_t cap = m->cap ? 2 * m->cap : 1024;
        smap_t nm = {calloc(cap, sizeof *nm.keys), malloc(cap * sizeof *nm.vals), 0, cap};
        if (!nm.keys || !nm.vals) {
            free((void *)nm.keys);
            free(nm.vals);
            return MQ_ERR_NOMEM;
        }
        for (size_t i = 0; i < m->cap; i++)
            if (m->keys[i]) {
                size_t j = smap_slot(&nm, m->keys[i], strlen(m->keys[i]));
                nm.keys[j] = m->keys[i];
                nm.vals[j] = m->vals[i];
            }
        nm.n = m->n;
        free((void *)m->keys);
        free(m->vals);
        *m = nm;
    }
    size_t i = smap_slot(m, key, strlen(key));
    if (!m->keys[i]) {
        m->keys[i] = key;
        m->vals[i] = v;
        m->n++;
    }
    if (val) *val = m->vals[i];
    return MQ_OK;
}

static void smap_free(smap_t *m) {
    free((void *)m->keys);
    free(m->vals);
    memset(m, 0, sizeof *m);
}

/* ---------------------------------------------------------------------------------------------
 * regular inflection */

static int is_vowel_at(const char *w, size_t i) {
    char c = w[i];
    if (c == 'a' || c == 'e' || c == 'i' || c == 'o') return 1;
    if (c == 'u') return !(i > 0 && w[i - 1] == 'q');     /* the u of "qu" is part of a consonant */
    if (c == 'y') return i > 0 && !is_vowel_at(w, i - 1); /* cry, but yell and play */
    return 0;
}

static int vowel_groups(const char *w, size_t n) {
    int groups = 0, prev = 0;
    for (size_t i = 0; i < n; i++) {
        int v = is_vowel_at(w, i);
        groups += v && !prev;
        prev = v;
    }
    return groups;
}

/* A one-syllable word ending consonant-vowel-consonant doubles its last consonant before -ed
 * and -ing (stop, stopped); w, x and y never double. Longer words double only when stressed on
 * the last syllable (admit, admitted), which spelling does not show: verb.exc lists those. */
static int doubles_final(const char *w, size_t n) {
    if (n < 3) return 0;
    char c = w[n - 1];
    if (c == 'w' || c == 'x' || c == 'y' || is_vowel_at(w, n - 1)) return 0;
    if (!is_vowel_at(w, n - 2) || is_vowel_at(w, n - 3)) return 0;
    return vowel_groups(w, n) == 1;
}

static int ends_with(const char *w, size_t n, const char *suf) {
    size_t k = strlen(suf);
    return n >= k && !memcmp(w + n - k, suf, k);
}

int mq_verb_regular_form(const char *lemma, int infl, char *buf, size_t cap) {
    size_t n = lemma ? strlen(lemma) : 0;
    if (n == 0) return -1;
    for (size_t i = 0; i < n; i++)
        if (lemma[i] < 'a' || lemma[i] > 'z') return -1;
    int cons_y = n >= 2 && lemma[n - 1] == 'y' && !is_vowel_at(lemma, n - 2);
    switch (infl) {
    case MQ_INFL_BASE: return snprintf(buf, cap, "%s", lemma);
    case MQ_INFL_3SG:
        if (ends_with(lemma, n, "s") || ends_with(lemma, n, "x") || ends_with(lemma, n, "z") ||
            ends_with(lemma, n, "ch") || ends_with(lemma, n, "sh"))
            return snprintf(buf, cap, "%ses", lemma);
        if (cons_y) return snprintf(buf, cap, "%.*sies", (int)(n - 1), lemma);
        if (n >= 2 && lemma[n - 1] == 'o' && !is_vowel_at(lemma, n - 2))
            return snprintf(buf, cap, "%ses", lemma); /* goes, echoes */
        return snprintf(buf, cap, "%ss", lemma);
    case MQ_INFL_PAST:
    case MQ_INFL_PP:
        if (lemma[n - 1] == 'e') return snprintf(buf, cap, "%sd", lemma);
        if (cons_y) return snprintf(buf, cap, "%.*sied", (int)(n - 1), lemma);
        if (doubles_final(lemma, n)) return snprintf(buf, cap, "%s%ced", lemma, lemma[n - 1]);
        return snprintf(buf, cap, "%sed", lemma);
    case MQ_INFL_ING:
        if (ends_with(lemma, n, "ie")) return snprintf(buf, cap, "%.*sying", (int)(n - 2), lemma);
        /* the e stays after e, o and y (seeing, hoeing, dyeing) and in one-letter stems */
        if (lemma[n - 1] == 'e' && n > 2 && !strchr("eoy", lemma[n - 2]))
            return snprintf(buf, cap, "%.*sing", (int)(n - 1), lemma);
        if (doubles_final(lemma, n)) return snprintf(buf, cap, "%s%cing", lemma, lemma[n - 1]);
        return snprintf(buf, cap, "%sing", lemma);
    default: return -1;
    }
}

/* Verbs whose past and past participle are spelled as the base: verb.exc has no line for a
 * form equal to its lemma, so they would otherwise get "putted" and "readed". */
static const char *const SAME_PAST[] = {
    "beat",      "beset",    "bet",     "bid",       "broadcast", "burst",     "cast",    "cost",
    "cut",       "forecast", "hit",     "hurt",      "inset",     "input",     "let",     "lipread",
    "miscast",   "misread",  "offset",  "outbid",    "output",    "outspread", "overbid", "preset",
    "proofread", "put",      "quit",    "read",      "recast",    "reread",    "reset",   "rid",
    "set",       "shed",     "shut",    "simulcast", "slit",      "split",     "spread",  "sublet",
    "telecast",  "thrust",   "typeset", "undercut",  "underbid",  "upset",
};
/* Verbs whose past participle is the base (has come, has run). */
static const char *const PP_IS_BASE[] = {"become",   "come",    "forerun", "misbecome", "outrun",
                                         "overcome", "overrun", "rerun",   "run"};
/* Left out: "be" has eight forms, not five, and the modals' forms are auxiliaries. */
static const char *const NOT_VERBS[] = {"be", "can", "may", "must", "shall", "will"};

static int in_list(const char *w, const char *const *list, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (!strcmp(w, list[i])) return 1;
    return 0;
}
#define IN_LIST(w, list) in_list(w, list, sizeof list / sizeof list[0])

/* ---------------------------------------------------------------------------------------------
 * the lexicon */

/* A spelling that may fill some inflections of a lemma. */
typedef struct {
    const char *form;
    uint32_t lemma;
    uint32_t form_id;   /* index of the spelling in the lexicon's form table */
    uint32_t next;      /* next candidate with the same spelling, + 1 (0: none) */
    uint8_t slots;      /* MQ_INFL_* it is a candidate for */
    uint8_t attested;   /* the lemma itself, from verb.exc or from the tables above */
    uint8_t participle; /* an irregular form shaped as a participle (gone, begun) */
    uint8_t recognized; /* a form of the lemma when met in text */
} cand_t;

typedef struct {
    const char *lemma;
    const char *forms[MQ_NUM_INFL];
    uint32_t first_cand, n_cand;
    uint32_t n_verb, n_noun, n_adj; /* SemCor sense-tag counts */
} lemma_t;

struct mq_verb_lexicon {
    pool_t pool;
    lemma_t *lemmas;
    size_t n_lemmas, cap_lemmas;
    smap_t lemma_map; /* lemma -> index */
    cand_t *cands;
    size_t n_cands, cap_cands;
    smap_t form_map;      /* spelling -> form id */
    uint32_t *form_head;  /* form id -> first candidate + 1 */
    uint32_t *form_count; /* form id -> uses in the corpus */
    size_t n_forms, cap_forms;
};

void mq_verb_lexicon_free(mq_verb_lexicon_t *lx) {
    if (!lx) return;
    pool_free(&lx->pool);
    free(lx->lemmas);
    smap_free(&lx->lemma_map);
    free(lx->cands);
    smap_free(&lx->form_map);
    free(lx->form_head);
    free(lx->form_count);
    free(lx);
}

size_t mq_verb_lexicon_size(const mq_verb_lexicon_t *lx) {
    return lx->n_lemmas;
}

static int is_lower_word(const char *s, size_t n) {
    if (n == 0 || n >= MAX_WORD) return 0;
    for (size_t i = 0; i < n; i++)
        if (s[i] < 'a' || s[i] > 'z') return 0;
    return 1;
}

/* The lines of a WordNet file, with its name and line numbers for messages. */
typedef struct {
    char *text;
    size_t len, pos, lineno;
    const char *line;
    size_t n;
    char path[4200];
} lines_t;

static int lines_open(lines_t *f, const char *dir, const char *name, mq_error_t *err) {
    memset(f, 0, sizeof *f);
    snprintf(f->path, sizeof f->path, "%s/%s", dir, name);
    if (!mq_file_exists(f->path))
        return mq_error_set(err, MQ_ERR_IO,
                            "%s: not found (WordNet 3.0 is in the Debian package wordnet-base)",
                            f->path);
    int rc = mq_read_file(f->path, MAX_WORDNET_FILE, &f->text, &f->len, err);
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

static int lines_next(lines_t *f) {
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

/* Splits the current line at spaces into up to max fields (start, length). */
static int lines_fields(const lines_t *f, const char **start, size_t *len, int max) {
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

static int load_index(mq_verb_lexicon_t *lx, const char *dir, mq_error_t *err) {
    lines_t f;
    int rc = lines_open(&f, dir, "index.verb", err);
    while (rc == MQ_OK && lines_next(&f)) {
        if (f.n == 0 || f.line[0] == ' ') continue; /* licence header */
        const char *fs[2];
        size_t fl[2];
        if (lines_fields(&f, fs, fl, 2) < 2 || fl[1] != 1 || fs[1][0] != 'v') {
            rc = mq_error_set(err, MQ_ERR_FORMAT, "%s: line %zu: not \"lemma v ...\"", f.path,
                              f.lineno);
            break;
        }
        /* multiword (walk_out), hyphenated and odd lemmas cannot be one word of a sentence */
        if (!is_lower_word(fs[0], fl[0])) continue;
        char w[MAX_WORD];
        memcpy(w, fs[0], fl[0]);
        w[fl[0]] = 0;
        if (IN_LIST(w, NOT_VERBS) || smap_get(&lx->lemma_map, w, fl[0], NULL)) continue;
        if (lx->n_lemmas == lx->cap_lemmas) {
            size_t cap = lx->cap_lemmas ? 2 * lx->cap_lemmas : 4096;
            lemma_t *l = realloc(lx->lemmas, cap * sizeof *l);
            if (!l) {
                rc = mq_error_set(err, MQ_ERR_NOMEM, "out of memory");
                break;
            }
            lx->lemmas = l;
            lx->cap_lemmas = cap;
        }
        lemma_t *l = &lx->lemmas[lx->n_lemmas];
        memset(l, 0, sizeof *l);
        if (!(l->lemma = pool_strndup(&lx->pool, w, fl[0])) ||
            smap_put(&lx->lemma_map, l->lemma, (uint32_t)lx->n_lemmas, NULL)) {
            rc = mq_error_set(err, MQ_ERR_NOMEM, "out of memory");
            break;
        }
        lx->n_lemmas++;
    }
    free(f.text);
    if (rc == MQ_OK && lx->n_lemmas == 0)
        rc = mq_error_set(err, MQ_ERR_FORMAT, "%s: no verb lemmas", f.path);
    return rc;
}

/* cntlist.rev lines: "lemma%ss_type:... sense_number tag_cnt". */
static int load_counts(mq_verb_lexicon_t *lx, const char *dir, mq_error_t *err) {
    lines_t f;
    int rc = lines_open(&f, dir, "cntlist.rev", err);
    while (rc == MQ_OK && lines_next(&f)) {
        if (f.n == 0) continue;
        const char *fs[4];
        size_t fl[4];
        int k = lines_fields(&f, fs, fl, 4);
        const char *pct = k >= 1 ? memchr(fs[0], '%', fl[0]) : NULL;
        int ok = k == 3 && pct && pct + 1 < fs[0] + fl[0] && pct[1] >= '1' && pct[1] <= '5' &&
                 fl[2] <= 9;
        uint32_t cnt = 0;
        for (size_t i = 0; ok && i < fl[2]; i++) {
            if (fs[2][i] < '0' || fs[2][i] > '9')
                ok = 0;
            else
                cnt = cnt * 10 + (uint32_t)(fs[2][i] - '0');
        }
        if (!ok) {
            rc = mq_error_set(err, MQ_ERR_FORMAT,
                              "%s: line %zu: not \"lemma%%type:... sense_number count\"", f.path,
                              f.lineno);
            break;
        }
        uint32_t id;
        if (!smap_get(&lx->lemma_map, fs[0], (size_t)(pct - fs[0]), &id)) continue;
        lemma_t *l = &lx->lemmas[id];
        uint32_t *dst = pct[1] == '2'   ? &l->n_verb
                        : pct[1] == '1' ? &l->n_noun
                        : pct[1] == '4' ? NULL
                                        : &l->n_adj; /* 3 and 5: adjectives, satellites */
        if (dst) *dst = *dst > UINT32_MAX - cnt ? UINT32_MAX : *dst + cnt;
    }
    free(f.text);
    return rc;
}

/* An irregular form of verb.exc, waiting for its lemma's candidates to be made. */
typedef struct {
    uint32_t lemma, order;
    const char *form;
} exc_t;

static int cmp_exc(const void *a, const void *b) {
    const exc_t *x = a, *y = b;
    if (x->lemma != y->lemma) return x->lemma < y->lemma ? -1 : 1;
    return x->order < y->order ? -1 : x->order > y->order;
}

static int load_exc(mq_verb_lexicon_t *lx, const char *dir, exc_t **out, size_t *n_out,
                    mq_error_t *err) {
    lines_t f;
    exc_t *e = NULL;
    size_t n = 0, cap = 0;
    int rc = lines_open(&f, dir, "verb.exc", err);
    while (rc == MQ_OK && lines_next(&f)) {
        if (f.n == 0) continue;
        const char *fs[8];
        size_t fl[8];
        int k = lines_fields(&f, fs, fl, 8);
        if (k < 2) {
            rc = mq_error_set(err, MQ_ERR_FORMAT, "%s: line %zu: not \"form lemma\"", f.path,
                              f.lineno);
            break;
        }
        if (!is_lower_word(fs[0], fl[0])) continue;
        for (int j = 1; j < k && rc == MQ_OK; j++) {
            uint32_t id;
            if (!smap_get(&lx->lemma_map, fs[j], fl[j], &id)) continue;
            if (fl[0] == fl[j] && !memcmp(fs[0], fs[j], fl[0])) continue;
            if (n == cap) {
                cap = cap ? 2 * cap : 1024;
                exc_t *ne = realloc(e, cap * sizeof *ne);
                if (!ne) {
                    rc = mq_error_set(err, MQ_ERR_NOMEM, "out of memory");
                    break;
                }
                e = ne;
            }
            e[n].lemma = id;
            e[n].order = (uint32_t)n;
            if (!(e[n].form = pool_strndup(&lx->pool, fs[0], fl[0])))
                rc = mq_error_set(err, MQ_ERR_NOMEM, "out of memory");
            n++;
        }
    }
    free(f.text);
    if (rc) {
        free(e);
        return rc;
    }
    if (n) qsort(e, n, sizeof *e, cmp_exc);
    *out = e;
    *n_out = n;
    return MQ_OK;
}

/* Adds (or merges into the lemma's candidate of the same spelling) one candidate. */
static int add_cand(mq_verb_lexicon_t *lx, uint32_t lemma, const char *form, uint8_t slots,
                    int attested, int participle) {
    lemma_t *l = &lx->lemmas[lemma];
    for (uint32_t i = l->first_cand; i < l->first_cand + l->n_cand; i++)
        if (!strcmp(lx->cands[i].form, form)) {
            lx->cands[i].slots |= slots;
            lx->cands[i].attested |= (uint8_t)attested;
            lx->cands[i].participle |= (uint8_t)participle;
            return MQ_OK;
        }
    if (lx->n_cands == lx->cap_cands) {
        size_t cap = lx->cap_cands ? 2 * lx->cap_cands : 16384;
        cand_t *c = realloc(lx->cands, cap * sizeof *c);
        if (!c) return MQ_ERR_NOMEM;
        lx->cands = c;
        lx->cap_cands = cap;
    }
    const char *stored = pool_strndup(&lx->pool, form, strlen(form));
    if (!stored) return MQ_ERR_NOMEM;
    uint32_t id;
    if (smap_put(&lx->form_map, stored, (uint32_t)lx->n_forms, &id)) return MQ_ERR_NOMEM;
    if (id == lx->n_forms) { /* a new spelling */
        if (lx->n_forms == lx->cap_forms) {
            size_t cap = lx->cap_forms ? 2 * lx->cap_forms : 16384;
            uint32_t *h = realloc(lx->form_head, cap * sizeof *h);
            if (h) lx->form_head = h;
            uint32_t *c = realloc(lx->form_count, cap * sizeof *c);
            if (c) lx->form_count = c;
            if (!h || !c) return MQ_ERR_NOMEM;
            lx->cap_forms = cap;
        }
        lx->form_head[id] = 0;
        lx->form_count[id] = 0;
        lx->n_forms++;
    }
    cand_t *c = &lx->cands[lx->n_cands];
    *c = (cand_t){
        stored, lemma, id, lx->form_head[id], slots, (uint8_t)attested, (uint8_t)participle, 0};
    lx->form_head[id] = (uint32_t)(++lx->n_cands);
    l->n_cand++;
    return MQ_OK;
}

/* A form that ends like a participle (-n, -ne) where its lemma does not: gone, seen, done. */
static int ends_n(const char *w) {
    size_t n = strlen(w);
    return ends_with(w, n, "n") || ends_with(w, n, "ne");
}

/* The candidates of one lemma: the lemma, the regular spellings, the tables' and verb.exc's
 * forms (exc[0..n_exc) are this lemma's, in file order). */
static int make_cands(mq_verb_lexicon_t *lx, uint32_t id, const exc_t *exc, size_t n_exc) {
    lemma_t *l = &lx->lemmas[id];
    const char *L = l->lemma;
    char buf[MAX_WORD + 8];
    l->first_cand = (uint32_t)lx->n_cands;
    int same_past = IN_LIST(L, SAME_PAST), pp_base = IN_LIST(L, PP_IS_BASE), rc;
    uint8_t base_slots =
        MQ_INFL_BASE | (same_past ? MQ_INFL_PAST | MQ_INFL_PP : 0) | (pp_base ? MQ_INFL_PP : 0);
    if ((rc = add_cand(lx, id, L, base_slots, 1, 0))) return rc;
    mq_verb_regular_form(L, MQ_INFL_3SG, buf, sizeof buf);
    if ((rc = add_cand(lx, id, buf, MQ_INFL_3SG, 0, 0))) return rc;
    if (!same_past) {
        mq_verb_regular_form(L, MQ_INFL_PAST, buf, sizeof buf);
        if ((rc = add_cand(lx, id, buf, MQ_INFL_PAST | (pp_base ? 0 : MQ_INFL_PP), 0, 0)))
            return rc;
    }
    mq_verb_regular_form(L, MQ_INFL_ING, buf, sizeof buf);
    if ((rc = add_cand(lx, id, buf, MQ_INFL_ING, 0, 0))) return rc;

    /* verb.exc: -ing, -s and -ed forms by their ending; the rest (went, gone, made) by shape */
    const char *irr[32];
    int n_irr = 0;
    for (size_t i = 0; i < n_exc; i++) {
        const char *f = exc[i].form;
        size_t n = strlen(f);
        if (ends_with(f, n, "ing"))
            rc = add_cand(lx, id, f, MQ_INFL_ING, 1, 0);
        else if (ends_with(f, n, "s") && !ends_with(f, n, "ss"))
            rc = add_cand(lx, id, f, MQ_INFL_3SG, 1, 0);
        else if (ends_with(f, n, "ed"))
            rc = add_cand(lx, id, f, MQ_INFL_PAST | (pp_base ? 0 : MQ_INFL_PP), 1, 0);
        else if (n_irr < 32)
            irr[n_irr++] = f;
        if (rc) return rc;
    }
    int part[32] = {0}, n_part = 0;
    for (int i = 0; i < n_irr; i++)
        if (ends_n(irr[i]) && !ends_n(L)) part[i] = 1, n_part++;
    /* of vowel-changing forms (began / begun, drank / drunk) the u-form is the participle */
    int n_rest = n_irr - n_part, n_u = 0;
    for (int i = 0; i < n_irr; i++)
        if (!part[i] && strchr(irr[i], 'u') && !strchr(L, 'u')) n_u++;
    if (n_rest >= 2 && n_u > 0 && n_u < n_rest)
        for (int i = 0; i < n_irr; i++)
            if (!part[i] && strchr(irr[i], 'u') && !strchr(L, 'u')) part[i] = 1, n_part++;
    for (int i = 0; i < n_irr; i++) {
        uint8_t slots = part[i] ? MQ_INFL_PP : MQ_INFL_PAST | (n_part || pp_base ? 0 : MQ_INFL_PP);
        if ((rc = add_cand(lx, id, irr[i], slots, 1, part[i]))) return rc;
    }
    return MQ_OK;
}

/* How many times the corpus uses a candidate's spelling, as evidence for it: a regular
 * spelling that is also another verb's candidate ("seed" for see, "singed" for sing) counts
 * as unused. */
static uint32_t cand_uses(const mq_verb_lexicon_t *lx, const cand_t *c) {
    if (!c->attested)
        for (uint32_t k = lx->form_head[c->form_id]; k; k = lx->cands[k - 1].next)
            if (lx->cands[k - 1].lemma != c->lemma) return 0;
    return lx->form_count[c->form_id];
}

/* Chooses each inflection's spelling among a lemma's candidates, then marks which candidates
 * count as forms when met in text. */
static void choose_forms(mq_verb_lexicon_t *lx, uint32_t id) {
    lemma_t *l = &lx->lemmas[id];
    uint8_t canonical_of[64] = {0};
    for (int s = 0; s < MQ_NUM_INFL; s++) {
        int bit = 1 << s;
        const cand_t *best = NULL;
        uint32_t best_i = 0;
        for (uint32_t i = l->first_cand; i < l->first_cand + l->n_cand; i++) {
            const cand_t *c = &lx->cands[i];
            if (!(c->slots & bit)) continue;
            int better = !best;
            if (!better && bit == MQ_INFL_PP && c->participle != best->participle)
                better = c->participle > best->participle;
            else if (!better && cand_uses(lx, c) != cand_uses(lx, best))
                better = cand_uses(lx, c) > cand_uses(lx, best);
            else if (!better && c->attested != best->attested)
                better = c->attested > best->attested;
            else if (!better)
                better = strcmp(c->form, best->form) < 0;
            if (better) best = c, best_i = i;
        }
        l->forms[s] = best->form; /* every slot has the regular candidate or the lemma */
        if (best_i - l->first_cand < 64) canonical_of[best_i - l->first_cand] |= (uint8_t)bit;
    }
    for (uint32_t i = l->first_cand; i < l->first_cand + l->n_cand; i++)
        lx->cands[i].recognized =
            lx->cands[i].attested || (i - l->first_cand < 64 && canonical_of[i - l->first_cand]);
}

/* Counts the corpus's uses of every candidate spelling (words lowercased). */
static void count_forms(mq_verb_lexicon_t *lx, const mq_corpus_t *c) {
    char w[MAX_WORD];
    for (size_t d = 0; d < c->n_docs; d++) {
        const char *t = c->docs[d].text;
        size_t n = c->docs[d].len;
        for (size_t i = 0; i < n;) {
            if (!isalpha((unsigned char)t[i])) {
                i++;
                continue;
            }
            size_t j = i;
            while (j < n && isalpha((unsigned char)t[j]))
                j++;
            if (j - i < MAX_WORD) {
                for (size_t k = i; k < j; k++)
                    w[k - i] = (char)tolower((unsigned char)t[k]);
                uint32_t id;
                if (smap_get(&lx->form_map, w, j - i, &id) && lx->form_count[id] < UINT32_MAX)
                    lx->form_count[id]++;
            }
            i = j;
        }
    }
}

int mq_verb_lexicon_load(const char *dir, const mq_corpus_t *freq, mq_verb_lexicon_t **out,
                         mq_error_t *err) {
    *out = NULL;
    if (!dir) dir = MQ_WORDNET_DIR;
    mq_verb_lexicon_t *lx = calloc(1, sizeof *lx);
    if (!lx) return mq_error_set(err, MQ_ERR_NOMEM, "out of memory");
    exc_t *exc = NULL;
    size_t n_exc = 0;
    int rc = load_index(lx, dir, err);
    if (rc == MQ_OK) rc = load_counts(lx, dir, err);
    if (rc == MQ_OK) rc = load_exc(lx, dir, &exc, &n_exc, err);
    for (size_t id = 0, e = 0; rc == MQ_OK && id < lx->n_lemmas; id++) {
        size_t e1 = e;
        while (e1 < n_exc && exc[e1].lemma == id)
            e1++;
        if (make_cands(lx, (uint32_t)id, n_exc ? exc + e : NULL, e1 - e))
            rc = mq_error_set(err, MQ_ERR_NOMEM, "out of memory");
        e = e1;
    }
    free(exc);
    if (rc == MQ_OK && freq) count_forms(lx, freq);
    for (size_t id = 0; rc == MQ_OK && id < lx->n_lemmas; id++)
        choose_forms(lx, (uint32_t)id);
    if (rc) {
        mq_verb_lexicon_free(lx);
        return rc;
    }
    *out = lx;
    return MQ_OK;
}

int mq_verb_paradigm(const mq_verb_lexicon_t *lx, const char *lemma,
                     const char *forms[MQ_NUM_INFL]) {
    uint32_t id;
    if (!smap_get(&lx->lemma_map, lemma, strlen(lemma), &id)) return MQ_ERR_NOT_FOUND;
    for (int s = 0; s < MQ_NUM_INFL; s++)
        forms[s] = lx->lemmas[id].forms[s];
    return MQ_OK;
}

/* ---------------------------------------------------------------------------------------------
 * building the set */

static const char *const DETERMINERS[] = {
    "a",    "an",      "the",   "this",  "these", "those", "my",      "your",     "his",
    "her",  "its",     "our",   "their", "some",  "any",   "no",      "every",    "each",
    "many", "several", "few",   "both",  "such",  "other", "two",     "three",    "four",
    "five", "six",     "seven", "eight", "nine",  "ten",   "hundred", "thousand",
};
/* Words after which a base form is a verb: modals, do-support, "n't" (for don't, can't...). */
static const char *const MODALS[] = {"can",    "could", "will",  "would", "shall",
                                     "should", "may",   "might", "must",  "do",
                                     "does",   "did",   "n't",   "please"};
/* Words after which a base form is a verb when it is mostly one. */
static const char *const TO_SUBJECT[] = {"to", "i", "you", "we", "they"};
/* Adverbs that may stand between those words and the verb ("will surely fail"). */
static const char *const ADVERBS[] = {"not",       "never",    "always",    "also",    "just",
                                      "only",      "still",    "ever",      "even",    "really",
                                      "often",     "soon",     "sometimes", "usually", "surely",
                                      "certainly", "probably", "actually",  "then"};
static const char *const PRONOUNS_3SG[] = {"he", "she", "it"};

/* A word of an example: bytes [start, end). */
typedef struct {
    size_t start, end;
} span_t;

/* The word that governs token k's context: token k - 1 lowercased when only spaces separate
 * them, with "didn't" read as "n't"; "" at the start of a clause. */
static const char *prev_word(const char *ex, const span_t *tk, size_t k, char *buf) {
    buf[0] = 0;
    if (k == 0) return buf;
    const span_t *p = &tk[k - 1];
    for (size_t i = p->end; i < tk[k].start; i++)
        if (ex[i] != ' ') return buf;
    size_t n = p->end - p->start;
    if (n == 1 && ex[p->start] == 't' && k >= 2 && p->start >= 1 && ex[p->start - 1] == '\'' &&
        tk[k - 2].end == p->start - 1 && ex[tk[k - 2].end - 1] == 'n')
        return strcpy(buf, "n't");
    if (n >= MAX_WORD) return buf;
    for (size_t i = 0; i < n; i++)
        buf[i] = (char)tolower((unsigned char)ex[p->start + i]);
    buf[n] = 0;
    return buf;
}

static int all_digits(const char *w) {
    if (!*w) return 0;
    for (; *w; w++)
        if (!isdigit((unsigned char)*w)) return 0;
    return 1;
}

/* The verb a recognised word belongs to: the lemma's index and the word's slots. 0 when the
 * word is no verb form, -1 when it is a form of two verbs and neither clearly dominates. */
static int reading_of(const mq_verb_lexicon_t *lx, const char *w, size_t n, uint32_t *lemma,
                      uint8_t *slots) {
    uint32_t fid;
    if (!smap_get(&lx->form_map, w, n, &fid)) return 0;
    const cand_t *best = NULL;
    uint32_t second = 0;
    for (uint32_t k = lx->form_head[fid]; k; k = lx->cands[k - 1].next) {
        const cand_t *c = &lx->cands[k - 1];
        if (!c->recognized) continue;
        uint32_t v = lx->lemmas[c->lemma].n_verb;
        if (!best || v > lx->lemmas[best->lemma].n_verb) {
            if (best) second = lx->lemmas[best->lemma].n_verb;
            best = c;
        } else if (v > second) {
            second = v;
        }
    }
    if (!best) return 0;
    int several = 0;
    for (uint32_t k = lx->form_head[fid]; k; k = lx->cands[k - 1].next)
        several += lx->cands[k - 1].recognized;
    if (several > 1) {
        uint32_t v = lx->lemmas[best->lemma].n_verb;
        if (v == 0 || v < 2 * (uint64_t)second) return -1;
    }
    *lemma = best->lemma;
    *slots = best->slots;
    return 1;
}

/* A growable byte buffer for one sentence. */
typedef struct {
    char *p;
    size_t n, cap;
} buf_t;

static int buf_set(buf_t *b, const char *a, size_t na, const char *m, size_t nm, const char *z,
                   size_t nz) {
    size_t need = na + nm + nz + 1;
    if (need > b->cap) {
        char *p = realloc(b->p, need);
        if (!p) return MQ_ERR_NOMEM;
        b->p = p;
        b->cap = need;
    }
    memcpy(b->p, a, na);
    memcpy(b->p + na, m, nm);
    memcpy(b->p + na + nm, z, nz);
    b->n = need - 1;
    b->p[b->n] = 0;
    return MQ_OK;
}

/* State of one build. */
typedef struct {
    const mq_verb_lexicon_t *lx;
    int flags;
    mq_mp_set_t *out;
    mq_verbtense_stats_t *st;
    pool_t keys; /* examples already used, as "text\x1fword offset" */
    smap_t seen;
    buf_t bad[MQ_NUM_INFL];
    buf_t key;
} build_t;

/* Items of one example (ex[0..n), NUL-terminated). Returns the number made, or an error < 0. */
static int example_items(build_t *b, const char *ex, size_t n, const char *source, int *found_form,
                         mq_error_t *err) {
    span_t *tk = malloc((n / 2 + 1) * sizeof *tk);
    if (!tk) return mq_error_set(err, MQ_ERR_NOMEM, "out of memory");
    size_t n_tk = 0;
    for (size_t i = 0; i < n;) {
        if (!isalnum((unsigned char)ex[i])) {
            i++;
            continue;
        }
        size_t j = i;
        while (j < n && isalnum((unsigned char)ex[j]))
            j++;
        tk[n_tk++] = (span_t){i, j};
        i = j;
    }
    int made = 0, rc = MQ_OK;
    char w[MAX_WORD], p1[MAX_WORD], p2[MAX_WORD];
    for (size_t k = 0; k < n_tk && rc == MQ_OK; k++) {
        size_t s = tk[k].start, e = tk[k].end, len = e - s;
        /* a whole word: letters only, not part of a hyphenated, contracted or non-ASCII word */
        if (len >= MAX_WORD) continue;
        int letters = 1, upper = 0;
        for (size_t i = s; i < e; i++) {
            if (!isalpha((unsigned char)ex[i])) letters = 0;
            upper += isupper((unsigned char)ex[i]) != 0;
        }
        if (!letters) continue;
        char before = s > 0 ? ex[s - 1] : ' ', after = e < n ? ex[e] : ' ';
        if (before == '-' || before == '\'' || after == '-' || after == '\'' ||
            (unsigned char)before >= 0x80 || (unsigned char)after >= 0x80)
            continue;
        int capital = upper == 1 && isupper((unsigned char)ex[s]);
        if (upper && !(capital && k == 0)) continue; /* names, acronyms */
        for (size_t i = 0; i < len; i++)
            w[i] = (char)tolower((unsigned char)ex[s + i]);
        w[len] = 0;

        uint32_t lemma;
        uint8_t slots;
        int r = reading_of(b->lx, w, len, &lemma, &slots);
        if (r == 0) continue;
        *found_form = 1;
        if (r < 0) {
            b->st->skip_ambiguous++;
            continue;
        }
        const lemma_t *l = &b->lx->lemmas[lemma];
        prev_word(ex, tk, k, p1);
        p2[0] = 0;
        if (IN_LIST(p1, ADVERBS)) prev_word(ex, tk, k - 1, p2);
        if (slots & MQ_INFL_BASE) {
            int verbish = l->n_verb > 0 && (uint64_t)l->n_verb >= (uint64_t)l->n_noun + l->n_adj;
            int ok = IN_LIST(p1, MODALS) || IN_LIST(p2, MODALS) ||
                     (verbish &&
                      (IN_LIST(p1, TO_SUBJECT) || IN_LIST(p2, TO_SUBJECT) || (k == 0 && capital)));
            if (!ok) {
                b->st->skip_base_context++;
                continue;
            }
        } else {
            /* after a determiner an -s form is a plural noun and a past-only form ("a bit")
             * some other word; participles there are adjectives ("a broken vase") and stay */
            if ((slots & MQ_INFL_3SG || slots == MQ_INFL_PAST) &&
                (IN_LIST(p1, DETERMINERS) || all_digits(p1))) {
                b->st->skip_plural_det++;
                continue;
            }
            if ((b->flags & MQ_VT_SKIP_NOUN_PLURALS) && (slots & MQ_INFL_3SG) &&
                l->n_noun > l->n_verb && !IN_LIST(p1, PRONOUNS_3SG)) {
                b->st->skip_plural_noun++;
                continue;
            }
        }

        /* the other inflections' spellings, each once, in slot order */
        const char *alt[MQ_NUM_INFL];
        uint8_t alt_infl[MQ_NUM_INFL];
        int n_alt = 0;
        for (int sl = 0; sl < MQ_NUM_INFL; sl++) {
            const char *f = l->forms[sl];
            if ((slots & (1 << sl)) || !strcmp(f, w)) continue;
            int j = 0;
            while (j < n_alt && strcmp(alt[j], f))
                j++;
            if (j == n_alt) {
                alt[n_alt] = f;
                alt_infl[n_alt++] = 0;
            }
            alt_infl[j] |= (uint8_t)(1 << sl);
        }
        if (n_alt == 0) {
            b->st->skip_no_alternative++;
            continue;
        }
        char off[32];
        int no = snprintf(off, sizeof off, "\x1f%zu", s);
        if ((rc = buf_set(&b->key, ex, n, off, (size_t)no, "", 0))) break;
        if (smap_get(&b->seen, b->key.p, b->key.n, NULL)) {
            b->st->skip_duplicate++;
            continue;
        }
        const char *stored = pool_strndup(&b->keys, b->key.p, b->key.n);
        if (!stored || smap_put(&b->seen, stored, 0, NULL)) {
            rc = MQ_ERR_NOMEM;
            break;
        }
        const char *bad[MQ_NUM_INFL];
        for (int j = 0; j < n_alt && rc == MQ_OK; j++) {
            char form[MAX_WORD];
            size_t fl = strlen(alt[j]);
            memcpy(form, alt[j], fl + 1);
            if (capital) form[0] = (char)toupper((unsigned char)form[0]);
            rc = buf_set(&b->bad[j], ex, s, form, fl, ex + e, n - e);
            bad[j] = b->bad[j].p;
        }
        if (rc) break;
        if ((rc = mq_mp_add(b->out, ex, bad, alt_infl, (uint32_t)n_alt, l->lemma, slots, source,
                            err)))
            break;
        made++;
        b->st->items++;
        b->st->items_base += (slots & MQ_INFL_BASE) != 0;
        b->st->alternatives += (size_t)n_alt;
    }
    free(tk);
    if (rc == MQ_ERR_NOMEM && (!err || err->code != MQ_ERR_NOMEM))
        rc = mq_error_set(err, MQ_ERR_NOMEM, "out of memory");
    return rc ? rc : made;
}

int mq_verbtense_build_lex(const mq_corpus_t *c, const mq_verb_lexicon_t *lx, int flags,
                           mq_mp_set_t *out, mq_verbtense_stats_t *stats, mq_error_t *err) {
    memset(out, 0, sizeof *out);
    mq_verbtense_stats_t local;
    build_t b = {0};
    b.lx = lx;
    b.flags = flags;
    b.out = out;
    b.st = stats ? stats : &local;
    memset(b.st, 0, sizeof *b.st);
    char *ex = NULL;
    size_t ex_cap = 0;
    int rc = MQ_OK;
    for (size_t d = 0; d < c->n_docs && rc == MQ_OK; d++) {
        const mq_doc_t *doc = &c->docs[d];
        if (doc->split != MQ_SPLIT_TEST) continue;
        b.st->docs++;
        char source[32];
        snprintf(source, sizeof source, "%08u-%c", (unsigned)doc->offset, doc->pos);
        /* usage examples: the text between each pair of double quotes */
        const char *t = doc->text, *end = t + doc->len;
        while (rc == MQ_OK) {
            const char *q0 = memchr(t, '"', (size_t)(end - t));
            if (!q0) break;
            const char *q1 = memchr(q0 + 1, '"', (size_t)(end - q0 - 1));
            if (!q1) break;
            t = q1 + 1;
            const char *a = q0 + 1, *z = q1;
            while (a < z && isspace((unsigned char)*a))
                a++;
            while (z > a && isspace((unsigned char)z[-1]))
                z--;
            if (a == z || memchr(a, 0, (size_t)(z - a))) continue;
            size_t n = (size_t)(z - a);
            if (n + 1 > ex_cap) {
                char *p = realloc(ex, n + 1);
                if (!p) {
                    rc = mq_error_set(err, MQ_ERR_NOMEM, "out of memory");
                    break;
                }
                ex = p;
                ex_cap = n + 1;
            }
            memcpy(ex, a, n);
            ex[n] = 0;
            b.st->examples++;
            int found = 0;
            int made = example_items(&b, ex, n, source, &found, err);
            if (made < 0) {
                rc = made;
                break;
            }
            if (made)
                b.st->examples_used++;
            else if (found)
                b.st->all_skipped++;
            else
                b.st->no_verb_form++;
        }
    }
    free(ex);
    pool_free(&b.keys);
    smap_free(&b.seen);
    for (int j = 0; j < MQ_NUM_INFL; j++)
        free(b.bad[j].p);
    free(b.key.p);
    if (rc == MQ_OK && out->n_items == 0)
        rc = mq_error_set(err, MQ_ERR_FORMAT,
                          "no verb-tense items: the corpus has no usable test-split examples "
                          "(%zu test documents, %zu examples)",
                          b.st->docs, b.st->examples);
    if (rc) mq_mp_set_free(out);
    return rc;
}

int mq_verbtense_build(const mq_corpus_t *c, const char *wordnet_dir, int flags, mq_mp_set_t *out,
                       mq_verbtense_stats_t *stats, mq_error_t *err) {
    memset(out, 0, sizeof *out);
    mq_verb_lexicon_t *lx;
    int rc = mq_verb_lexicon_load(wordnet_dir, c, &lx, err);
    if (rc) return rc;
    rc = mq_verbtense_build_lex(c, lx, flags, out, stats, err);
    mq_verb_lexicon_free(lx);
    return rc;
}
