/* English word classes and common nouns from WordNet. The rules are in wordclass.h. */
#include "miniquant/wordclass.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "miniquant/corpus.h"
#include "miniquant/strpool.h"
#include "wordnet_file.h"

#define MAX_WORD 64           /* longer words are no lemma the classes are asked about */
#define MAX_INDEX_FIELDS 1024 /* an index line: lemma, pos, counts, pointers, offsets */

typedef struct {
    const char *lemma;
    uint32_t first_off, n_off; /* its synsets: offsets[first_off .. first_off + n_off) */
    uint32_t lineno;           /* in index.noun */
    uint32_t n_noun, n_adj;    /* SemCor counts */
    const char *exc_plural;    /* noun.exc's plural, or NULL */
    uint8_t listed;            /* its first synset lists it */
    uint8_t capital;           /* ... written with a capital (God, Jew) */
} noun_t;

/* A synset of data.noun. */
typedef struct {
    uint32_t offset;
    uint8_t lexfile, usage;
} synset_t;

struct mq_wordclass {
    mq_strpool_t pool;
    noun_t *nouns;
    size_t n_nouns, cap_nouns;
    mq_strindex_t noun_map;
    uint32_t *offsets;
    size_t n_offsets, cap_offsets;
    mq_strindex_t adj_map, adj_exc, plural_exc;
    synset_t *synsets;
    size_t n_synsets, cap_synsets;
    mq_common_noun_t *common; /* by lexicographer file, then count, then spelling */
    size_t n_common;
    size_t common_at[65]; /* common[common_at[f] .. common_at[f + 1]) are file f's */
};

void mq_wordclass_free(mq_wordclass_t *wc) {
    if (!wc) return;
    mq_strpool_free(&wc->pool);
    free(wc->nouns);
    mq_strindex_free(&wc->noun_map);
    free(wc->offsets);
    mq_strindex_free(&wc->adj_map);
    mq_strindex_free(&wc->adj_exc);
    mq_strindex_free(&wc->plural_exc);
    free(wc->synsets);
    free(wc->common);
    free(wc);
}

static int is_lower_word(const char *s, size_t n) {
    if (n == 0 || n >= MAX_WORD) return 0;
    for (size_t i = 0; i < n; i++)
        if (s[i] < 'a' || s[i] > 'z') return 0;
    return 1;
}

static int grow(void **p, size_t *cap, size_t need, size_t size) {
    if (need <= *cap) return MQ_OK;
    size_t c = *cap ? *cap : 1024;
    while (c < need)
        c *= 2;
    void *q = realloc(*p, c * size);
    if (!q) return MQ_ERR_NOMEM;
    *p = q;
    *cap = c;
    return MQ_OK;
}

static int nomem(mq_error_t *err) {
    return mq_error_set(err, MQ_ERR_NOMEM, "out of memory");
}

/* Adds s[0..n) to an index of spellings (its value unused). */
static int put_word(mq_wordclass_t *wc, mq_strindex_t *m, const char *s, size_t n) {
    if (mq_strindex_get(m, s, n, NULL)) return MQ_OK;
    const char *k = mq_strpool_dup(&wc->pool, s, n);
    return k ? mq_strindex_put(m, k, 0, NULL) : MQ_ERR_NOMEM;
}

/* ---------------------------------------------------------------------------------------------
 * the files */

static int load_index_noun(mq_wordclass_t *wc, const mq_wordnet_t *wn, mq_error_t *err) {
    const char **fs = malloc(MAX_INDEX_FIELDS * sizeof *fs);
    size_t *fl = malloc(MAX_INDEX_FIELDS * sizeof *fl);
    mq_wn_lines_t f = {0};
    int rc = fs && fl ? mq_wn_lines_open(&f, wn, "index.noun", err) : nomem(err);
    while (rc == MQ_OK && mq_wn_lines_next(&f)) {
        if (mq_wn_lines_is_header(&f)) continue;
        int k = mq_wn_lines_fields(&f, fs, fl, MAX_INDEX_FIELDS), first, count;
        if (k < 2 || fl[1] != 1 || fs[1][0] != 'n') {
            rc = mq_wn_lines_error(&f, err, "not \"lemma n ...\"");
            break;
        }
        if ((rc = mq_wn_index_offsets(&f, fs, fl, k, &first, &count, err))) break;
        if (!is_lower_word(fs[0], fl[0]) || mq_strindex_get(&wc->noun_map, fs[0], fl[0], NULL))
            continue;
        if (grow((void **)&wc->nouns, &wc->cap_nouns, wc->n_nouns + 1, sizeof *wc->nouns) ||
            grow((void **)&wc->offsets, &wc->cap_offsets, wc->n_offsets + (size_t)count,
                 sizeof *wc->offsets)) {
            rc = nomem(err);
            break;
        }
        noun_t *n = &wc->nouns[wc->n_nouns];
        memset(n, 0, sizeof *n);
        n->first_off = (uint32_t)wc->n_offsets;
        n->n_off = (uint32_t)count;
        n->lineno = (uint32_t)f.lineno;
        for (int i = 0; i < count; i++)
            mq_wn_number(fs[first + i], fl[first + i], 10, &wc->offsets[wc->n_offsets++]);
        if (!(n->lemma = mq_strpool_dup(&wc->pool, fs[0], fl[0])) ||
            mq_strindex_put(&wc->noun_map, n->lemma, (uint32_t)wc->n_nouns, NULL)) {
            rc = nomem(err);
            break;
        }
        wc->n_nouns++;
    }
    if (fs && fl) mq_wn_lines_close(&f);
    free(fs);
    free(fl);
    if (rc == MQ_OK && wc->n_nouns == 0)
        rc = mq_error_set(err, MQ_ERR_FORMAT, "%s: no noun lemmas", f.path);
    return rc;
}

static int load_index_adj(mq_wordclass_t *wc, const mq_wordnet_t *wn, mq_error_t *err) {
    mq_wn_lines_t f;
    int rc = mq_wn_lines_open(&f, wn, "index.adj", err);
    while (rc == MQ_OK && mq_wn_lines_next(&f)) {
        if (mq_wn_lines_is_header(&f)) continue;
        const char *fs[3];
        size_t fl[3];
        if (mq_wn_lines_fields(&f, fs, fl, 3) < 3 || fl[1] != 1 || fs[1][0] != 'a') {
            rc = mq_wn_lines_error(&f, err, "not \"lemma a synset_cnt ...\"");
            break;
        }
        if (is_lower_word(fs[0], fl[0]) && put_word(wc, &wc->adj_map, fs[0], fl[0]))
            rc = nomem(err);
    }
    mq_wn_lines_close(&f);
    return rc;
}

/* noun.exc and adj.exc: "form lemma [lemma...]". */
static int load_exc(mq_wordclass_t *wc, const mq_wordnet_t *wn, const char *name, int nouns,
                    mq_error_t *err) {
    mq_wn_lines_t f;
    int rc = mq_wn_lines_open(&f, wn, name, err);
    while (rc == MQ_OK && mq_wn_lines_next(&f)) {
        if (f.n == 0) continue;
        const char *fs[8];
        size_t fl[8];
        int k = mq_wn_lines_fields(&f, fs, fl, 8);
        if (k < 2) {
            rc = mq_wn_lines_error(&f, err, "not \"form lemma\"");
            break;
        }
        if (!is_lower_word(fs[0], fl[0])) continue;
        if (put_word(wc, nouns ? &wc->plural_exc : &wc->adj_exc, fs[0], fl[0])) {
            rc = nomem(err);
            break;
        }
        if (!nouns) continue;
        for (int j = 1; j < k; j++) {
            uint32_t id;
            if (!mq_strindex_get(&wc->noun_map, fs[j], fl[j], &id) || wc->nouns[id].exc_plural)
                continue;
            if (fl[0] == fl[j] && !memcmp(fs[0], fs[j], fl[0])) continue;
            if (!(wc->nouns[id].exc_plural = mq_strpool_dup(&wc->pool, fs[0], fl[0]))) {
                rc = nomem(err);
                break;
            }
        }
    }
    mq_wn_lines_close(&f);
    return rc;
}

/* cntlist.rev: a noun's counts as a noun and as an adjective (3 and 5). */
static uint32_t *count_slot(void *ctx, const char *lemma, size_t len, int type) {
    mq_wordclass_t *wc = ctx;
    uint32_t id;
    if (!(type == 1 || type == 3 || type == 5) || !mq_strindex_get(&wc->noun_map, lemma, len, &id))
        return NULL;
    noun_t *n = &wc->nouns[id];
    return type == 1 ? &n->n_noun : &n->n_adj;
}

static int load_counts(mq_wordclass_t *wc, const mq_wordnet_t *wn, mq_error_t *err) {
    return mq_wn_counts_add(wn, count_slot, wc, err);
}

static int cmp_synset(const void *a, const void *b) {
    const synset_t *x = a, *y = b;
    return x->offset < y->offset ? -1 : x->offset > y->offset;
}

static const synset_t *find_synset(const mq_wordclass_t *wc, uint32_t offset) {
    synset_t key = {offset, 0, 0};
    return wc->n_synsets ? bsearch(&key, wc->synsets, wc->n_synsets, sizeof key, cmp_synset) : NULL;
}

/* data.noun: each synset's lexicographer file and usage label, and how each lemma is written
 * in its first synset. */
static int load_data_noun(mq_wordclass_t *wc, const mq_wordnet_t *wn, mq_error_t *err) {
    mq_wn_lines_t f = {0};
    mq_wn_synset_t *s = malloc(sizeof *s);
    int rc = s ? mq_wn_lines_open(&f, wn, "data.noun", err) : nomem(err);
    int sorted = 1;
    while (rc == MQ_OK && mq_wn_lines_next(&f)) {
        if (mq_wn_lines_is_header(&f)) continue;
        if ((rc = mq_wn_synset_parse(&f, s, err))) break;
        if (s->ss_type != 'n') {
            rc = mq_wn_lines_error(&f, err, "synset type '%c' in a noun file", s->ss_type);
            break;
        }
        if (grow((void **)&wc->synsets, &wc->cap_synsets, wc->n_synsets + 1, sizeof *wc->synsets)) {
            rc = nomem(err);
            break;
        }
        if (wc->n_synsets && wc->synsets[wc->n_synsets - 1].offset >= s->offset) sorted = 0;
        wc->synsets[wc->n_synsets++] =
            (synset_t){s->offset, (uint8_t)s->lexfile, (uint8_t)s->usage};
        for (int w = 0; w < s->n_words; w++) {
            char low[MAX_WORD];
            size_t n = s->word_len[w];
            int capital = 0;
            if (n >= MAX_WORD) continue;
            for (size_t i = 0; i < n; i++) {
                char c = s->word[w][i];
                capital |= c >= 'A' && c <= 'Z';
                low[i] = c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c;
            }
            uint32_t id;
            if (!mq_strindex_get(&wc->noun_map, low, n, &id)) continue;
            noun_t *nn = &wc->nouns[id];
            if (wc->offsets[nn->first_off] != s->offset) continue;
            nn->listed = 1;
            nn->capital |= (uint8_t)capital;
        }
    }
    if (s) mq_wn_lines_close(&f);
    free(s);
    if (rc) return rc;
    if (!sorted) qsort(wc->synsets, wc->n_synsets, sizeof *wc->synsets, cmp_synset);
    for (size_t i = 1; i < wc->n_synsets; i++)
        if (wc->synsets[i].offset == wc->synsets[i - 1].offset)
            return mq_error_set(err, MQ_ERR_FORMAT, "%s: synset %08u appears twice", f.path,
                                wc->synsets[i].offset);
    for (size_t id = 0; id < wc->n_nouns; id++) {
        const noun_t *n = &wc->nouns[id];
        for (uint32_t i = 0; i < n->n_off; i++)
            if (!find_synset(wc, wc->offsets[n->first_off + i]))
                return mq_error_set(err, MQ_ERR_FORMAT,
                                    "%s/index.noun: line %u: synset %08u of \"%s\" is not in "
                                    "data.noun",
                                    mq_wn_dir(wn), n->lineno, wc->offsets[n->first_off + i],
                                    n->lemma);
        if (!n->listed)
            return mq_error_set(err, MQ_ERR_FORMAT,
                                "%s: synset %08u does not list \"%s\" (index.noun line %u)", f.path,
                                wc->offsets[n->first_off], n->lemma, n->lineno);
    }
    return MQ_OK;
}

/* ---------------------------------------------------------------------------------------------
 * word classes */

/* 1 when replacing suffix suf of w[0..n) by rep gives a word of m other than w. */
static int detaches_to(const mq_strindex_t *m, const char *w, size_t n, const char *suf,
                       const char *rep) {
    size_t ls = strlen(suf), lr = strlen(rep);
    if (n <= ls || memcmp(w + n - ls, suf, ls) || n - ls + lr >= MAX_WORD) return 0;
    char buf[MAX_WORD];
    memcpy(buf, w, n - ls);
    memcpy(buf + n - ls, rep, lr);
    size_t k = n - ls + lr;
    if (k == n && !memcmp(buf, w, n)) return 0;
    return mq_strindex_get(m, buf, k, NULL);
}

static const char *const NOUN_RULES[][2] = {{"s", ""},      {"ses", "s"},   {"xes", "x"},
                                            {"zes", "z"},   {"ches", "ch"}, {"shes", "sh"},
                                            {"men", "man"}, {"ies", "y"}};
static const char *const ADJ_RULES[][2] = {{"er", ""}, {"est", ""}, {"er", "e"}, {"est", "e"}};

unsigned mq_wordclass_of(const mq_wordclass_t *wc, const char *w, size_t n) {
    if (n == 0 || n >= MAX_WORD) return 0;
    unsigned cls = 0;
    if (mq_strindex_get(&wc->noun_map, w, n, NULL)) cls |= MQ_WORD_NOUN;
    if (mq_strindex_get(&wc->plural_exc, w, n, NULL))
        cls |= MQ_WORD_PLURAL;
    else
        for (size_t r = 0; r < sizeof NOUN_RULES / sizeof NOUN_RULES[0] && !(cls & MQ_WORD_PLURAL);
             r++)
            if (detaches_to(&wc->noun_map, w, n, NOUN_RULES[r][0], NOUN_RULES[r][1]))
                cls |= MQ_WORD_PLURAL;
    if (mq_strindex_get(&wc->adj_map, w, n, NULL) || mq_strindex_get(&wc->adj_exc, w, n, NULL))
        cls |= MQ_WORD_ADJ;
    else
        for (size_t r = 0; r < sizeof ADJ_RULES / sizeof ADJ_RULES[0] && !(cls & MQ_WORD_ADJ); r++)
            if (detaches_to(&wc->adj_map, w, n, ADJ_RULES[r][0], ADJ_RULES[r][1]))
                cls |= MQ_WORD_ADJ;
    return cls;
}

uint64_t mq_wordclass_noun_lexfiles(const mq_wordclass_t *wc, const char *w, size_t n) {
    uint32_t id;
    if (!mq_strindex_get(&wc->noun_map, w, n, &id)) return 0;
    uint64_t files = 0;
    const noun_t *nn = &wc->nouns[id];
    for (uint32_t i = 0; i < nn->n_off; i++) {
        const synset_t *s = find_synset(wc, wc->offsets[nn->first_off + i]);
        if (s) files |= (uint64_t)1 << s->lexfile;
    }
    return files;
}

static int ends(const char *w, size_t n, const char *suf) {
    size_t k = strlen(suf);
    return n >= k && !memcmp(w + n - k, suf, k);
}

static int is_vowel(char c) {
    return c == 'a' || c == 'e' || c == 'i' || c == 'o' || c == 'u';
}

/* -man nouns whose plural is -mans */
static const char *const MANS[] = {"human",  "shaman",  "talisman", "caiman",
                                   "cayman", "ottoman", "dragoman", "desman"};

int mq_wordclass_plural(const mq_wordclass_t *wc, const char *noun, char *buf, size_t cap) {
    size_t n = noun ? strlen(noun) : 0;
    if (!is_lower_word(noun, n)) return -1;
    uint32_t id;
    if (wc && mq_strindex_get(&wc->noun_map, noun, n, &id) && wc->nouns[id].exc_plural)
        return snprintf(buf, cap, "%s", wc->nouns[id].exc_plural);
    int listed = 0;
    for (size_t i = 0; i < sizeof MANS / sizeof MANS[0]; i++)
        listed |= !strcmp(noun, MANS[i]);
    if (ends(noun, n, "man") && !listed) return snprintf(buf, cap, "%.*smen", (int)(n - 3), noun);
    if (ends(noun, n, "s") || ends(noun, n, "x") || ends(noun, n, "z") || ends(noun, n, "ch") ||
        ends(noun, n, "sh"))
        return snprintf(buf, cap, "%ses", noun);
    if (n >= 2 && noun[n - 1] == 'y' && !is_vowel(noun[n - 2]))
        return snprintf(buf, cap, "%.*sies", (int)(n - 1), noun);
    return snprintf(buf, cap, "%ss", noun);
}

/* ---------------------------------------------------------------------------------------------
 * common nouns */

static int cmp_common(const void *a, const void *b) {
    const mq_common_noun_t *x = a, *y = b;
    if (x->n_noun != y->n_noun) return x->n_noun > y->n_noun ? -1 : 1;
    return strcmp(x->singular, y->singular);
}

/* A common noun of wc->nouns[id] (the rules in wordclass.h); its lexicographer file in *file. */
static int is_common(const mq_wordclass_t *wc, const noun_t *n, uint32_t *file) {
    size_t len = strlen(n->lemma);
    if (len < 3 || n->n_noun == 0 || n->capital) return 0;
    const synset_t *first = find_synset(wc, wc->offsets[n->first_off]);
    if (!first || first->usage) return 0;
    if (mq_wordclass_noun_lexfiles(wc, n->lemma, len) & ((uint64_t)1 << MQ_LEX_NOUN_GROUP))
        return 0;
    if (mq_wordclass_of(wc, n->lemma, len) & MQ_WORD_PLURAL) return 0;
    if (ends(n->lemma, len, "s") && !ends(n->lemma, len, "ss") && !ends(n->lemma, len, "us") &&
        !ends(n->lemma, len, "is"))
        return 0;
    *file = first->lexfile;
    return 1;
}

static int make_common(mq_wordclass_t *wc, mq_error_t *err) {
    size_t count[65] = {0};
    uint32_t *file = malloc((wc->n_nouns + 1) * sizeof *file);
    if (!file) return nomem(err);
    size_t n = 0;
    for (size_t id = 0; id < wc->n_nouns; id++) {
        file[id] = 64; /* not common */
        uint32_t fl;
        if (!is_common(wc, &wc->nouns[id], &fl)) continue;
        char plural[MAX_WORD + 8];
        int k = mq_wordclass_plural(wc, wc->nouns[id].lemma, plural, sizeof plural);
        if (k <= 0 || (size_t)k >= sizeof plural || !strcmp(plural, wc->nouns[id].lemma)) continue;
        file[id] = fl;
        count[fl]++;
        n++;
    }
    wc->common = malloc((n + 1) * sizeof *wc->common);
    if (!wc->common) {
        free(file);
        return nomem(err);
    }
    wc->common_at[0] = 0;
    for (int f = 0; f < 64; f++)
        wc->common_at[f + 1] = wc->common_at[f] + count[f];
    size_t at[64];
    memcpy(at, wc->common_at, sizeof at);
    int rc = MQ_OK;
    for (size_t id = 0; id < wc->n_nouns && rc == MQ_OK; id++) {
        if (file[id] == 64) continue;
        const noun_t *nn = &wc->nouns[id];
        char plural[MAX_WORD + 8];
        int k = mq_wordclass_plural(wc, nn->lemma, plural, sizeof plural);
        const char *p = mq_strpool_dup(&wc->pool, plural, (size_t)k);
        if (!p) rc = nomem(err);
        wc->common[at[file[id]]++] = (mq_common_noun_t){nn->lemma, p, nn->n_noun, nn->n_adj};
    }
    free(file);
    wc->n_common = n;
    for (int f = 0; f < 64 && rc == MQ_OK; f++)
        if (count[f] > 1)
            qsort(wc->common + wc->common_at[f], count[f], sizeof *wc->common, cmp_common);
    return rc;
}

size_t mq_wordclass_common_nouns(const mq_wordclass_t *wc, uint32_t lexfile,
                                 const mq_common_noun_t **out) {
    if (lexfile >= 64) {
        *out = NULL;
        return 0;
    }
    *out = wc->common + wc->common_at[lexfile];
    return wc->common_at[lexfile + 1] - wc->common_at[lexfile];
}

int mq_wordclass_load(const char *dir, mq_wordclass_t **out, mq_error_t *err) {
    mq_wordnet_t wn = {.dir = dir};
    return mq_wordclass_read(&wn, out, err);
}

int mq_wordclass_read(const mq_wordnet_t *wn, mq_wordclass_t **out, mq_error_t *err) {
    *out = NULL;
    mq_wordclass_t *wc = calloc(1, sizeof *wc);
    if (!wc) return nomem(err);
    int rc = load_index_noun(wc, wn, err);
    if (rc == MQ_OK) rc = load_index_adj(wc, wn, err);
    if (rc == MQ_OK) rc = load_exc(wc, wn, "noun.exc", 1, err);
    if (rc == MQ_OK) rc = load_exc(wc, wn, "adj.exc", 0, err);
    if (rc == MQ_OK) rc = load_counts(wc, wn, err);
    if (rc == MQ_OK) rc = load_data_noun(wc, wn, err);
    if (rc == MQ_OK) rc = make_common(wc, err);
    if (rc) {
        mq_wordclass_free(wc);
        return rc;
    }
    *out = wc;
    return MQ_OK;
}
