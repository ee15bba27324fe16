/* English verb forms from WordNet (index.verb, verb.exc, cntlist.rev). The rules are in
 * lexicon.h. */
#include "miniquant/lexicon.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "miniquant/strpool.h"
#include "wordnet_file.h"

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
/* Verbs whose irregular past is also a past participle beside the participle-shaped one
 * (has got / has gotten, has struck / was stricken, has trod / has trodden). */
static const char *const PAST_ALSO_PP[] = {"get", "strike", "tread"};
/* Left out: "be" has eight forms, not five, and the modals' forms are auxiliaries. */
static const char *const NOT_VERBS[] = {"be", "can", "may", "must", "shall", "will"};

int mq_word_in_list(const char *w, const char *const *list, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (!strcmp(w, list[i])) return 1;
    return 0;
}

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
    uint8_t variant_slots;          /* inflections with two recognised spellings */
    uint8_t lexfile_first;          /* lexicographer file of the most frequent sense */
    uint64_t frames_first, frames_any;
} lemma_t;

struct mq_verb_lexicon {
    mq_strpool_t pool;
    lemma_t *lemmas;
    size_t n_lemmas, cap_lemmas;
    mq_strindex_t lemma_map; /* lemma -> index */
    cand_t *cands;
    size_t n_cands, cap_cands;
    mq_strindex_t form_map; /* spelling -> form id */
    uint32_t *form_head;    /* form id -> first candidate + 1 */
    uint32_t *form_count;   /* form id -> uses in the corpus */
    size_t n_forms, cap_forms;
};

void mq_verb_lexicon_free(mq_verb_lexicon_t *lx) {
    if (!lx) return;
    mq_strpool_free(&lx->pool);
    free(lx->lemmas);
    mq_strindex_free(&lx->lemma_map);
    free(lx->cands);
    mq_strindex_free(&lx->form_map);
    free(lx->form_head);
    free(lx->form_count);
    free(lx);
}

size_t mq_verb_lexicon_size(const mq_verb_lexicon_t *lx) {
    return lx->n_lemmas;
}

static int is_lower_word(const char *s, size_t n) {
    if (n == 0 || n >= MQ_VERB_MAX_WORD) return 0;
    for (size_t i = 0; i < n; i++)
        if (s[i] < 'a' || s[i] > 'z') return 0;
    return 1;
}

static int load_index(mq_verb_lexicon_t *lx, const mq_wordnet_t *wn, mq_error_t *err) {
    mq_wn_lines_t f;
    int rc = mq_wn_lines_open(&f, wn, "index.verb", err);
    while (rc == MQ_OK && mq_wn_lines_next(&f)) {
        if (f.n == 0 || f.line[0] == ' ') continue; /* licence header */
        const char *fs[2];
        size_t fl[2];
        if (mq_wn_lines_fields(&f, fs, fl, 2) < 2 || fl[1] != 1 || fs[1][0] != 'v') {
            rc = mq_error_set(err, MQ_ERR_FORMAT, "%s: line %zu: not \"lemma v ...\"", f.path,
                              f.lineno);
            break;
        }
        /* multiword (walk_out), hyphenated and odd lemmas cannot be one word of a sentence */
        if (!is_lower_word(fs[0], fl[0])) continue;
        char w[MQ_VERB_MAX_WORD];
        memcpy(w, fs[0], fl[0]);
        w[fl[0]] = 0;
        if (MQ_IN_LIST(w, NOT_VERBS) || mq_strindex_get(&lx->lemma_map, w, fl[0], NULL)) continue;
        if (lx->n_lemmas == lx->cap_lemmas) {
            size_t cap = lx->cap_lemmas ? 2 * lx->cap_lemmas : 64;
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
        if (!(l->lemma = mq_strpool_dup(&lx->pool, w, fl[0])) ||
            mq_strindex_put(&lx->lemma_map, l->lemma, (uint32_t)lx->n_lemmas, NULL)) {
            rc = mq_error_set(err, MQ_ERR_NOMEM, "out of memory");
            break;
        }
        lx->n_lemmas++;
    }
    mq_wn_lines_close(&f);
    if (rc == MQ_OK && lx->n_lemmas == 0)
        rc = mq_error_set(err, MQ_ERR_FORMAT, "%s: no verb lemmas", f.path);
    return rc;
}

/* cntlist.rev: a lemma's counts as a verb, a noun and an adjective (3 and 5: adjectives,
 * satellites). */
static uint32_t *count_slot(void *ctx, const char *lemma, size_t len, int type) {
    mq_verb_lexicon_t *lx = ctx;
    uint32_t id;
    if (type == 4 || !mq_strindex_get(&lx->lemma_map, lemma, len, &id)) return NULL;
    lemma_t *l = &lx->lemmas[id];
    return type == 2 ? &l->n_verb : type == 1 ? &l->n_noun : &l->n_adj;
}

static int load_counts(mq_verb_lexicon_t *lx, const mq_wordnet_t *wn, mq_error_t *err) {
    return mq_wn_counts_add(wn, count_slot, lx, err);
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

static int load_exc(mq_verb_lexicon_t *lx, const mq_wordnet_t *wn, exc_t **out, size_t *n_out,
                    mq_error_t *err) {
    mq_wn_lines_t f;
    exc_t *e = NULL;
    size_t n = 0, cap = 0;
    int rc = mq_wn_lines_open(&f, wn, "verb.exc", err);
    while (rc == MQ_OK && mq_wn_lines_next(&f)) {
        if (f.n == 0) continue;
        const char *fs[8];
        size_t fl[8];
        int k = mq_wn_lines_fields(&f, fs, fl, 8);
        if (k < 2) {
            rc = mq_error_set(err, MQ_ERR_FORMAT, "%s: line %zu: not \"form lemma\"", f.path,
                              f.lineno);
            break;
        }
        if (!is_lower_word(fs[0], fl[0])) continue;
        for (int j = 1; j < k && rc == MQ_OK; j++) {
            uint32_t id;
            if (!mq_strindex_get(&lx->lemma_map, fs[j], fl[j], &id)) continue;
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
            if (!(e[n].form = mq_strpool_dup(&lx->pool, fs[0], fl[0])))
                rc = mq_error_set(err, MQ_ERR_NOMEM, "out of memory");
            n++;
        }
    }
    mq_wn_lines_close(&f);
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
        size_t cap = lx->cap_cands ? 2 * lx->cap_cands : 256;
        cand_t *c = realloc(lx->cands, cap * sizeof *c);
        if (!c) return MQ_ERR_NOMEM;
        lx->cands = c;
        lx->cap_cands = cap;
    }
    const char *stored = mq_strpool_dup(&lx->pool, form, strlen(form));
    if (!stored) return MQ_ERR_NOMEM;
    uint32_t id;
    if (mq_strindex_put(&lx->form_map, stored, (uint32_t)lx->n_forms, &id)) return MQ_ERR_NOMEM;
    if (id == lx->n_forms) { /* a new spelling */
        if (lx->n_forms == lx->cap_forms) {
            size_t cap = lx->cap_forms ? 2 * lx->cap_forms : 256;
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
    char buf[MQ_VERB_MAX_WORD + 8];
    l->first_cand = (uint32_t)lx->n_cands;
    int same_past = MQ_IN_LIST(L, SAME_PAST), pp_base = MQ_IN_LIST(L, PP_IS_BASE), rc;
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
    int past_pp = MQ_IN_LIST(L, PAST_ALSO_PP);
    for (int i = 0; i < n_irr; i++) {
        uint8_t slots = part[i] ? MQ_INFL_PP
                                : MQ_INFL_PAST | (past_pp || !(n_part || pp_base) ? MQ_INFL_PP : 0);
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
    int spellings[MQ_NUM_INFL] = {0};
    for (uint32_t i = l->first_cand; i < l->first_cand + l->n_cand; i++) {
        cand_t *c = &lx->cands[i];
        c->recognized = c->attested || (i - l->first_cand < 64 && canonical_of[i - l->first_cand]);
        for (int s = 0; s < MQ_NUM_INFL && c->recognized; s++)
            spellings[s] += (c->slots >> s) & 1;
    }
    for (int s = 0; s < MQ_NUM_INFL; s++)
        if (spellings[s] > 1) l->variant_slots |= (uint8_t)(1 << s);
}

/* Counts the corpus's uses of every candidate spelling (words lowercased). */
static void count_forms(mq_verb_lexicon_t *lx, const mq_corpus_t *c) {
    char w[MQ_VERB_MAX_WORD];
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
            if (j - i < MQ_VERB_MAX_WORD) {
                for (size_t k = i; k < j; k++)
                    w[k - i] = (char)tolower((unsigned char)t[k]);
                uint32_t id;
                if (mq_strindex_get(&lx->form_map, w, j - i, &id) &&
                    lx->form_count[id] < UINT32_MAX)
                    lx->form_count[id]++;
            }
            i = j;
        }
    }
}

int mq_verb_lexicon_load(const char *dir, const mq_corpus_t *freq, mq_verb_lexicon_t **out,
                         mq_error_t *err) {
    mq_wordnet_t wn = {.dir = dir};
    return mq_verb_lexicon_read(&wn, freq, out, err);
}

int mq_verb_lexicon_read(const mq_wordnet_t *wn, const mq_corpus_t *freq, mq_verb_lexicon_t **out,
                         mq_error_t *err) {
    *out = NULL;
    mq_verb_lexicon_t *lx = calloc(1, sizeof *lx);
    if (!lx) return mq_error_set(err, MQ_ERR_NOMEM, "out of memory");
    exc_t *exc = NULL;
    size_t n_exc = 0;
    int rc = load_index(lx, wn, err);
    if (rc == MQ_OK) rc = load_counts(lx, wn, err);
    if (rc == MQ_OK) rc = load_exc(lx, wn, &exc, &n_exc, err);
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
    if (!mq_strindex_get(&lx->lemma_map, lemma, strlen(lemma), &id)) return MQ_ERR_NOT_FOUND;
    for (int s = 0; s < MQ_NUM_INFL; s++)
        forms[s] = lx->lemmas[id].forms[s];
    return MQ_OK;
}

void mq_verb_lexicon_lemma(const mq_verb_lexicon_t *lx, uint32_t id, mq_verb_lemma_t *out) {
    const lemma_t *l = &lx->lemmas[id];
    out->lemma = l->lemma;
    for (int s = 0; s < MQ_NUM_INFL; s++)
        out->forms[s] = l->forms[s];
    out->n_verb = l->n_verb;
    out->n_noun = l->n_noun;
    out->n_adj = l->n_adj;
    out->variant_slots = l->variant_slots;
    out->lexfile_first = l->lexfile_first;
    out->frames_first = l->frames_first;
    out->frames_any = l->frames_any;
}

int mq_verb_lexicon_id(const mq_verb_lexicon_t *lx, const char *lemma, uint32_t *id) {
    return mq_strindex_get(&lx->lemma_map, lemma, strlen(lemma), id) ? MQ_OK : MQ_ERR_NOT_FOUND;
}

uint8_t mq_verb_lexicon_form_slots(const mq_verb_lexicon_t *lx, const char *w, size_t n) {
    uint32_t fid;
    uint8_t slots = 0;
    if (!mq_strindex_get(&lx->form_map, w, n, &fid)) return 0;
    for (uint32_t k = lx->form_head[fid]; k; k = lx->cands[k - 1].next)
        if (lx->cands[k - 1].recognized) slots |= lx->cands[k - 1].slots;
    return slots;
}

int mq_verb_lexicon_reading(const mq_verb_lexicon_t *lx, const char *w, size_t n, uint32_t *lemma,
                            uint8_t *slots) {
    uint32_t fid;
    if (!mq_strindex_get(&lx->form_map, w, n, &fid)) return 0;
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

/* ---------------------------------------------------------------------------------------------
 * verb frames (index.verb's synsets, data.verb's frames) */

/* A synset of a lemma, by index.verb. */
typedef struct {
    uint32_t offset, lemma, rank; /* rank 0: the most frequent sense */
    uint32_t lineno;              /* of index.verb */
    uint32_t found;
} sense_t;

static int cmp_sense(const void *a, const void *b) {
    const sense_t *x = a, *y = b;
    if (x->offset != y->offset) return x->offset < y->offset ? -1 : 1;
    return x->lemma < y->lemma ? -1 : x->lemma > y->lemma;
}

#define MAX_INDEX_FIELDS 1024

static int read_senses(mq_verb_lexicon_t *lx, const mq_wordnet_t *wn, sense_t **out, size_t *n_out,
                       mq_error_t *err) {
    mq_wn_lines_t f;
    sense_t *v = NULL;
    size_t n = 0, cap = 0;
    const char **fs = malloc(MAX_INDEX_FIELDS * sizeof *fs);
    size_t *fl = malloc(MAX_INDEX_FIELDS * sizeof *fl);
    int rc = fs && fl ? mq_wn_lines_open(&f, wn, "index.verb", err)
                      : mq_error_set(err, MQ_ERR_NOMEM, "out of memory");
    while (rc == MQ_OK && mq_wn_lines_next(&f)) {
        if (mq_wn_lines_is_header(&f)) continue;
        int k = mq_wn_lines_fields(&f, fs, fl, MAX_INDEX_FIELDS), first, count;
        uint32_t id;
        if (k < 2 || !mq_strindex_get(&lx->lemma_map, fs[0], fl[0], &id)) continue;
        if ((rc = mq_wn_index_offsets(&f, fs, fl, k, &first, &count, err))) break;
        for (int i = 0; i < count; i++) {
            if (n == cap) {
                cap = cap ? 2 * cap : 256;
                sense_t *nv = realloc(v, cap * sizeof *nv);
                if (!nv) {
                    rc = mq_error_set(err, MQ_ERR_NOMEM, "out of memory");
                    break;
                }
                v = nv;
            }
            uint32_t off = 0;
            mq_wn_number(fs[first + i], fl[first + i], 10, &off);
            v[n++] = (sense_t){off, id, (uint32_t)i, (uint32_t)f.lineno, 0};
        }
    }
    if (fs && fl) mq_wn_lines_close(&f);
    free(fs);
    free(fl);
    if (rc) {
        free(v);
        return rc;
    }
    if (n) qsort(v, n, sizeof *v, cmp_sense);
    *out = v;
    *n_out = n;
    return MQ_OK;
}

int mq_verb_lexicon_load_frames(mq_verb_lexicon_t *lx, const char *dir, mq_error_t *err) {
    mq_wordnet_t wn = {.dir = dir};
    return mq_verb_lexicon_read_frames(lx, &wn, err);
}

int mq_verb_lexicon_read_frames(mq_verb_lexicon_t *lx, const mq_wordnet_t *wn, mq_error_t *err) {
    sense_t *senses;
    size_t n_senses;
    int rc = read_senses(lx, wn, &senses, &n_senses, err);
    if (rc) return rc;
    for (size_t i = 0; i < lx->n_lemmas; i++) {
        lx->lemmas[i].frames_first = lx->lemmas[i].frames_any = 0;
        lx->lemmas[i].lexfile_first = 0;
    }
    mq_wn_lines_t f;
    mq_wn_synset_t *s = malloc(sizeof *s);
    rc = s ? mq_wn_lines_open(&f, wn, "data.verb", err)
           : mq_error_set(err, MQ_ERR_NOMEM, "out of memory");
    while (rc == MQ_OK && mq_wn_lines_next(&f)) {
        if (mq_wn_lines_is_header(&f)) continue;
        if ((rc = mq_wn_synset_parse(&f, s, err))) break;
        if (s->ss_type != 'v') {
            rc = mq_wn_lines_error(&f, err, "synset type '%c' in a verb file", s->ss_type);
            break;
        }
        /* the senses of this synset: a run of the sorted table */
        size_t lo = 0, hi = n_senses;
        while (lo < hi) {
            size_t mid = lo + (hi - lo) / 2;
            if (senses[mid].offset < s->offset)
                lo = mid + 1;
            else
                hi = mid;
        }
        for (size_t i = lo; i < n_senses && senses[i].offset == s->offset && rc == MQ_OK; i++) {
            lemma_t *l = &lx->lemmas[senses[i].lemma];
            size_t len = strlen(l->lemma);
            int w = 0;
            while (w < s->n_words &&
                   !(s->word_len[w] == len && !strncasecmp(s->word[w], l->lemma, len)))
                w++;
            if (w == s->n_words) {
                rc = mq_wn_lines_error(&f, err,
                                       "synset %08u does not list \"%s\" (index.verb line %u)",
                                       s->offset, l->lemma, senses[i].lineno);
                break;
            }
            senses[i].found = 1;
            l->frames_any |= s->frames[w];
            if (senses[i].rank == 0) {
                l->frames_first = s->frames[w];
                l->lexfile_first = (uint8_t)s->lexfile;
            }
        }
    }
    if (s) mq_wn_lines_close(&f);
    free(s);
    for (size_t i = 0; rc == MQ_OK && i < n_senses; i++)
        if (!senses[i].found)
            rc = mq_error_set(err, MQ_ERR_FORMAT,
                              "%s/index.verb: line %u: synset %08u of \"%s\" is not in data.verb",
                              mq_wn_dir(wn), senses[i].lineno, senses[i].offset,
                              lx->lemmas[senses[i].lemma].lemma);
    free(senses);
    for (size_t i = 0; rc && i < lx->n_lemmas; i++) {
        lx->lemmas[i].frames_first = lx->lemmas[i].frames_any = 0;
        lx->lemmas[i].lexfile_first = 0;
    }
    return rc;
}
