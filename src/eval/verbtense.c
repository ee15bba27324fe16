/* The verb-tense minimal pairs, built from the test split's usage examples with the verb
 * lexicon (lexicon.h). The rules are in pairs.h. */
#include "miniquant/pairs.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "miniquant/strpool.h"

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
    if (n >= MQ_VERB_MAX_WORD) return buf;
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
    mq_strpool_t keys; /* examples already used, as "text\x1fword offset" */
    mq_strindex_t seen;
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
    char w[MQ_VERB_MAX_WORD], p1[MQ_VERB_MAX_WORD], p2[MQ_VERB_MAX_WORD];
    for (size_t k = 0; k < n_tk && rc == MQ_OK; k++) {
        size_t s = tk[k].start, e = tk[k].end, len = e - s;
        /* a whole word: letters only, not part of a hyphenated, contracted or non-ASCII word */
        if (len >= MQ_VERB_MAX_WORD) continue;
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
        int r = mq_verb_lexicon_reading(b->lx, w, len, &lemma, &slots);
        if (r == 0) continue;
        *found_form = 1;
        if (r < 0) {
            b->st->skip_ambiguous++;
            continue;
        }
        mq_verb_lemma_t lm;
        mq_verb_lexicon_lemma(b->lx, lemma, &lm);
        const mq_verb_lemma_t *l = &lm;
        prev_word(ex, tk, k, p1);
        p2[0] = 0;
        if (MQ_IN_LIST(p1, ADVERBS)) prev_word(ex, tk, k - 1, p2);
        if (slots & MQ_INFL_BASE) {
            int verbish = l->n_verb > 0 && (uint64_t)l->n_verb >= (uint64_t)l->n_noun + l->n_adj;
            int ok = MQ_IN_LIST(p1, MODALS) || MQ_IN_LIST(p2, MODALS) ||
                     (verbish && (MQ_IN_LIST(p1, TO_SUBJECT) || MQ_IN_LIST(p2, TO_SUBJECT) ||
                                  (k == 0 && capital)));
            if (!ok) {
                b->st->skip_base_context++;
                continue;
            }
        } else {
            /* after a determiner an -s form is a plural noun and a past-only form ("a bit")
             * some other word; participles there are adjectives ("a broken vase") and stay */
            if ((slots & MQ_INFL_3SG || slots == MQ_INFL_PAST) &&
                (MQ_IN_LIST(p1, DETERMINERS) || all_digits(p1))) {
                b->st->skip_plural_det++;
                continue;
            }
            if ((b->flags & MQ_VT_SKIP_NOUN_PLURALS) && (slots & MQ_INFL_3SG) &&
                l->n_noun > l->n_verb && !MQ_IN_LIST(p1, PRONOUNS_3SG)) {
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
        if (mq_strindex_get(&b->seen, b->key.p, b->key.n, NULL)) {
            b->st->skip_duplicate++;
            continue;
        }
        const char *stored = mq_strpool_dup(&b->keys, b->key.p, b->key.n);
        if (!stored || mq_strindex_put(&b->seen, stored, 0, NULL)) {
            rc = MQ_ERR_NOMEM;
            break;
        }
        const char *bad[MQ_NUM_INFL];
        for (int j = 0; j < n_alt && rc == MQ_OK; j++) {
            char form[MQ_VERB_MAX_WORD];
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
    mq_strpool_free(&b.keys);
    mq_strindex_free(&b.seen);
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
