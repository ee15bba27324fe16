/* The verb-tense minimal pairs: items from the test split's usage examples and from templates
 * over WordNet, every alternative ungrammatical where it stands. The rules are in pairs.h. */
#include "miniquant/pairs.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "miniquant/rng.h"
#include "miniquant/strpool.h"
#include "miniquant/wordclass.h"

/* ---------------------------------------------------------------------------------------------
 * categories */

static const char *const CATEGORY_NAMES[MQ_VT_NUM_CATEGORIES] = {"none", "agreement", "non_finite",
                                                                 "participle", "progressive"};

const char *mq_vt_category_name(int category) {
    return category >= 0 && category < MQ_VT_NUM_CATEGORIES ? CATEGORY_NAMES[category] : NULL;
}

int mq_vt_category_parse(const char *name, uint8_t *category, mq_error_t *err) {
    for (int c = 0; name && c < MQ_VT_NUM_CATEGORIES; c++)
        if (!strcmp(name, CATEGORY_NAMES[c])) {
            *category = (uint8_t)c;
            return MQ_OK;
        }
    return mq_error_set(err, MQ_ERR_FORMAT,
                        "unknown verb-tense category \"%.64s\" (none, agreement, non_finite, "
                        "participle, progressive)",
                        name ? name : "");
}

#define TEMPLATE_PREFIX "template:"

int mq_mp_item_is_template(const mq_mp_item_t *it) {
    return it->source && !strncmp(it->source, TEMPLATE_PREFIX, strlen(TEMPLATE_PREFIX));
}

/* ---------------------------------------------------------------------------------------------
 * contexts: where a form is obligatory, which alternatives are offered there */

enum { CTX_AGREE_SG, CTX_AGREE_PL, CTX_MODAL, CTX_TO, CTX_HAVE, CTX_BE_PP, CTX_BE_ING, N_CTX };

#define B MQ_INFL_BASE
#define S MQ_INFL_3SG
#define P MQ_INFL_PAST
#define PP MQ_INFL_PP
#define ING MQ_INFL_ING

/* A context: the category it tests, the inflections whose spelling may replace the form, and
 * what would make a replacement grammatical there (then it is dropped): a spelling that any
 * verb uses for one of the inflections "grammatical" (will found, has got, was wound); with
 * no_noun_adj a spelling that is a noun or an adjective (to walks, was open, had funding);
 * with base_3sg_together the base and 3rd singular both when either is one (had plans). */
typedef struct {
    uint8_t category;
    uint8_t offered;
    uint8_t grammatical;
    uint8_t no_noun_adj;
    uint8_t base_3sg_together;
} context_t;

static const context_t CONTEXTS[N_CTX] = {
    [CTX_AGREE_SG] = {MQ_VT_AGREEMENT, B, S | P, 0, 0},         /* he walks: he walk */
    [CTX_AGREE_PL] = {MQ_VT_AGREEMENT, S, B | P, 0, 0},         /* they walk: they walks */
    [CTX_MODAL] = {MQ_VT_NONFINITE, S | P | PP | ING, B, 0, 0}, /* will walk, didn't walk */
    [CTX_TO] = {MQ_VT_NONFINITE, S | P | PP, B, 1, 0},          /* to walk: "to" is a preposition */
    [CTX_HAVE] = {MQ_VT_PARTICIPLE, B | S | P | ING, PP, 1, 1}, /* has gone */
    [CTX_BE_PP] = {MQ_VT_PARTICIPLE, B | S | P, PP | ING, 1, 1},   /* was taken */
    [CTX_BE_ING] = {MQ_VT_PROGRESSIVE, B | S | P, PP | ING, 1, 0}, /* is taking */
};

/* ---------------------------------------------------------------------------------------------
 * word lists */

static const char *const MODALS[] = {"can",    "could", "will",  "would", "shall",
                                     "should", "may",   "might", "must",  "cannot"};
static const char *const DO_FORMS[] = {"do", "does", "did"};
static const char *const HAVE_FORMS[] = {"have", "has", "had", "having"};
static const char *const BE_FORMS[] = {"am", "is", "are", "was", "were", "be", "been", "being"};
/* Adverbs that may stand between an auxiliary and the verb ("will surely fail"). */
static const char *const ADVERBS[] = {"not",       "never",    "always",    "also",    "just",
                                      "only",      "still",    "ever",      "even",    "really",
                                      "often",     "soon",     "sometimes", "usually", "surely",
                                      "certainly", "probably", "actually",  "already", "then",
                                      "finally",   "recently", "once",      "rarely",  "seldom"};
/* A modal after one of these is a noun (the can, his will, a must, free will). */
static const char *const DETERMINERS[] = {
    "a",   "an",   "the",   "this",  "that", "these", "those", "my",   "your", "his",  "her",
    "its", "our",  "their", "some",  "any",  "no",    "every", "each", "many", "much", "several",
    "few", "both", "such",  "other", "free", "good",  "ill",   "last", "own",  "two",  "three"};
static const char *const SINGULAR_DETERMINERS[] = {"this", "every", "each", "another"};
static const char *const PLURAL_DETERMINERS[] = {"these", "those", "many",  "several", "few",
                                                 "both",  "two",   "three", "four",    "five",
                                                 "six",   "seven", "eight", "nine",    "ten"};
/* Words after which a new clause (and so a subject) may start. */
static const char *const CONJUNCTIONS[] = {"and",      "but",   "so",     "because",  "when",
                                           "whenever", "if",    "while",  "although", "though",
                                           "whereas",  "where", "unless", "since",    "until"};
/* A singular subject after these may take a subjunctive base form ("insist that he go"). */
static const char *const SUBJUNCTIVE[] = {"that", "lest"};

/* ---------------------------------------------------------------------------------------------
 * the words of an example */

typedef struct {
    size_t start, end;          /* bytes of the example */
    char low[MQ_VERB_MAX_WORD]; /* lowercased, "" when too long; a contraction's full word:
                                   "did" for didn't, "are" for 're */
    uint8_t letters;            /* letters only */
    uint8_t lower;              /* written in lowercase */
    uint8_t capital;            /* a capital, then lowercase */
    uint8_t adjacent;           /* only spaces since the previous word */
    uint8_t joined;             /* touches a hyphen, an apostrophe or a non-ASCII byte */
    uint8_t clitic;             /* 're, 've, 's ... or the host of n't: no verb of its own */
    uint8_t neg;                /* ends in n't */
} word_t;

static int in_list(const char *w, const char *const *list, size_t n) {
    return w[0] && mq_word_in_list(w, list, n);
}
#define IN(w, list) in_list(w, list, sizeof list / sizeof list[0])

/* Splits ex[0..n) into words (w has room for n / 2 + 1); returns how many. Contractions become
 * their full words: "didn't" one word "did" with neg, "they're" two words "they" "are". */
static size_t split_words(const char *ex, size_t n, word_t *w) {
    size_t nw = 0;
    for (size_t i = 0; i < n;) {
        if (!isalnum((unsigned char)ex[i])) {
            i++;
            continue;
        }
        size_t j = i;
        while (j < n && isalnum((unsigned char)ex[j]))
            j++;
        size_t len = j - i;
        word_t *pw = nw ? &w[nw - 1] : NULL;
        if (pw && i >= 1 && ex[i - 1] == '\'' && pw->end == i - 1 && len <= 2) {
            char t[3] = {0};
            for (size_t k = 0; k < len; k++)
                t[k] = (char)tolower((unsigned char)ex[i + k]);
            size_t pl = strlen(pw->low);
            if (!strcmp(t, "t") && pl >= 2 && pw->low[pl - 1] == 'n' && !pw->clitic) {
                pw->low[pl - 1] = 0; /* didn -> did, isn -> is */
                if (!strcmp(pw->low, "ca")) strcpy(pw->low, "can");
                if (!strcmp(pw->low, "wo")) strcpy(pw->low, "will");
                if (!strcmp(pw->low, "sha")) strcpy(pw->low, "shall");
                pw->neg = pw->clitic = 1;
                pw->end = j;
                i = j;
                continue;
            }
            const char *full = !strcmp(t, "re")   ? "are"
                               : !strcmp(t, "m")  ? "am"
                               : !strcmp(t, "ve") ? "have"
                               : !strcmp(t, "ll") ? "will"
                               : !strcmp(t, "s")  ? "'s" /* is, has or a possessive */
                               : !strcmp(t, "d")  ? "'d" /* had or would */
                                                  : NULL;
            if (full) {
                pw->joined = 1;
                word_t *c = &w[nw++];
                memset(c, 0, sizeof *c);
                c->start = i - 1;
                c->end = j;
                strcpy(c->low, full);
                c->adjacent = c->clitic = c->joined = 1;
                i = j;
                continue;
            }
        }
        word_t *c = &w[nw++];
        memset(c, 0, sizeof *c);
        c->start = i;
        c->end = j;
        int letters = 1, upper = 0;
        for (size_t k = i; k < j; k++) {
            letters &= isalpha((unsigned char)ex[k]) != 0;
            upper += isupper((unsigned char)ex[k]) != 0;
        }
        c->letters = (uint8_t)letters;
        c->lower = upper == 0;
        c->capital = upper == 1 && isupper((unsigned char)ex[i]);
        if (letters && len < MQ_VERB_MAX_WORD)
            for (size_t k = 0; k < len; k++)
                c->low[k] = (char)tolower((unsigned char)ex[i + k]);
        char before = i > 0 ? ex[i - 1] : ' ', after = j < n ? ex[j] : ' ';
        c->joined = before == '-' || before == '\'' || after == '-' || after == '\'' ||
                    (unsigned char)before >= 0x80 || (unsigned char)after >= 0x80;
        c->adjacent = pw != NULL;
        for (size_t k = pw ? pw->end : 0; pw && k < i; k++)
            if (ex[k] != ' ') c->adjacent = 0;
        i = j;
    }
    return nw;
}

/* The word before w[k] when only spaces separate them, else -1. */
static long before(const word_t *w, long k) {
    return k > 0 && w[k].adjacent ? k - 1 : -1;
}

/* 1 when a clause may start at w[k]: the example's first word, after punctuation or a
 * conjunction. */
static int clause_start(const char *ex, const word_t *w, long k) {
    if (k == 0) return 1;
    for (size_t i = w[k - 1].end; i < w[k].start; i++)
        if (strchr(",;:()\".!?", ex[i]) || (unsigned char)ex[i] == 0xe2) return 1; /* 0xe2: — */
    return w[k].adjacent && IN(w[k - 1].low, CONJUNCTIONS);
}

/* Written as a function word is: lowercase, or capitalised as the example's first word. */
static int plain(const word_t *w, long k) {
    return w[k].lower || (k == 0 && w[k].capital);
}

/* ---------------------------------------------------------------------------------------------
 * one build */

typedef struct {
    char *p;
    size_t n, cap;
} buf_t;

/* b = a[0..na) m[0..nm) z[0..nz) */
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

typedef struct {
    const mq_verb_lexicon_t *lx;
    const mq_wordclass_t *wc;
    mq_mp_set_t *out;
    mq_verbtense_stats_t *st;
    mq_strpool_t examples; /* examples already read */
    mq_strindex_t seen_examples;
    mq_strindex_t goods; /* good sentences of the set (kept by the set) */
    buf_t bad[MQ_NUM_INFL];
} build_t;

static unsigned word_class(const build_t *b, const char *w) {
    return mq_wordclass_of(b->wc, w, strlen(w));
}

/* SemCor uses the lemma as a verb at least as often as as a noun and adjective together. */
static int mostly_verb(const mq_verb_lemma_t *l) {
    return l->n_verb > 0 && (uint64_t)l->n_verb >= (uint64_t)l->n_noun + l->n_adj;
}

/* The alternatives of the form good of lemma l in context ctx (other inflections' spellings,
 * each once, in inflection order, with the inflections each fills); *dropped counts those not
 * offered because they could be grammatical there. Returns how many. */
static int alternatives(const build_t *b, const mq_verb_lemma_t *l, const char *good, int ctx,
                        const char **alt, uint8_t *alt_infl, size_t *dropped) {
    const context_t *c = &CONTEXTS[ctx];
    int together =
        c->base_3sg_together && (word_class(b, l->forms[0]) || word_class(b, l->forms[1]));
    const char *seen[MQ_NUM_INFL];
    int n = 0, n_seen = 0;
    for (int s = 0; s < MQ_NUM_INFL; s++) {
        const char *f = l->forms[s];
        if (!(c->offered & (1 << s)) || !strcmp(f, good)) continue;
        int again = 0;
        for (int j = 0; j < n_seen; j++)
            again |= !strcmp(seen[j], f);
        if (again) continue;
        seen[n_seen++] = f;
        uint8_t mask = 0;
        for (int s2 = 0; s2 < MQ_NUM_INFL; s2++)
            if (!strcmp(l->forms[s2], f)) mask |= (uint8_t)(1 << s2);
        if ((mq_verb_lexicon_form_slots(b->lx, f, strlen(f)) & c->grammatical) ||
            (c->no_noun_adj && word_class(b, f)) || (together && (mask & (B | S)))) {
            (*dropped)++;
            continue;
        }
        alt[n] = f;
        alt_infl[n++] = mask;
    }
    return n;
}

/* An auxiliary stands right before w[k]: a subject there is inverted ("can I go", "does it
 * work"), and the verb after it is not finite. */
static int after_auxiliary(const word_t *w, long k) {
    long q = before(w, k);
    return q >= 0 && (IN(w[q].low, MODALS) || IN(w[q].low, DO_FORMS) || IN(w[q].low, HAVE_FORMS) ||
                      IN(w[q].low, BE_FORMS));
}

/* A subject of certain number ends at w[p]: 1 singular, 2 plural, 0 none. */
static int subject_number(const build_t *b, const char *ex, const word_t *w, long p) {
    const word_t *s = &w[p];
    int subjunctive = p > 0 && IN(w[p - 1].low, SUBJUNCTIVE);
    if (s->clitic || !s->letters || after_auxiliary(w, p)) return 0;
    if (!strcmp(s->low, "i")) return ex[s->start] == 'I' ? 2 : 0;
    if (plain(w, p)) {
        if (!strcmp(s->low, "he") || !strcmp(s->low, "she")) return subjunctive ? 0 : 1;
        if (!strcmp(s->low, "it")) return !subjunctive && clause_start(ex, w, p) ? 1 : 0;
        if (!strcmp(s->low, "we") || !strcmp(s->low, "they")) return 2;
        if (!strcmp(s->low, "you")) return clause_start(ex, w, p) ? 2 : 0;
    }
    /* determiner + up to two adjectives + noun, the number of all three the same */
    if (!s->lower) return 0;
    unsigned cls = word_class(b, s->low);
    int number = (cls & MQ_WORD_NOUN) && !(cls & MQ_WORD_PLURAL)   ? 1
                 : (cls & MQ_WORD_PLURAL) && !(cls & MQ_WORD_NOUN) ? 2
                                                                   : 0;
    /* "this week prices rise": a noun of time makes an adverbial, not a subject */
    if (number == 1 && (mq_wordclass_noun_lexfiles(b->wc, s->low, strlen(s->low)) &
                        ((uint64_t)1 << MQ_LEX_NOUN_TIME)))
        return 0;
    long k = p;
    for (int adjectives = 0; number;) {
        long d = before(w, k);
        if (d < 0 || w[d].clitic || !plain(w, d)) return 0;
        int sg = IN(w[d].low, SINGULAR_DETERMINERS), pl = IN(w[d].low, PLURAL_DETERMINERS);
        if (sg || pl) {
            if ((number == 1) != sg || !clause_start(ex, w, d) || after_auxiliary(w, d)) return 0;
            if (number == 1 && d > 0 && IN(w[d - 1].low, SUBJUNCTIVE)) return 0;
            return number;
        }
        if (adjectives == 2 || !w[d].lower || !(word_class(b, w[d].low) & MQ_WORD_ADJ)) return 0;
        adjectives++;
        k = d;
    }
    return 0;
}

static int is_modal(const word_t *w, long k) {
    long d = before(w, k);
    return k >= 0 && w[k].lower && IN(w[k].low, MODALS) && !(d >= 0 && IN(w[d].low, DETERMINERS));
}

static int is_be(const word_t *w, long k) {
    return k >= 0 && IN(w[k].low, BE_FORMS) && !(k == 0 && w[k].capital); /* "Is walking..." */
}

static int is_have(const word_t *w, long k) {
    return k >= 0 && IN(w[k].low, HAVE_FORMS);
}

/* The context that makes the form of w[k] (inflections slots, of lemma l) obligatory, or -1. */
static int context_of(const build_t *b, const char *ex, const word_t *w, long k, uint8_t slots,
                      const mq_verb_lemma_t *l) {
    long p = before(w, k);
    if (p < 0) return -1;
    long a = IN(w[p].low, ADVERBS) && !w[p].clitic ? before(w, p) : -1; /* across an adverb */
    if ((slots & ING) && is_be(w, p)) return CTX_BE_ING;
    if (slots & PP) {
        if (is_have(w, p) || is_have(w, a)) return CTX_HAVE;
        if (is_be(w, p) || is_be(w, a)) return CTX_BE_PP;
    }
    if (slots & B) {
        if (is_modal(w, p) || is_modal(w, a)) return CTX_MODAL;
        int do_p = IN(w[p].low, DO_FORMS), do_a = a >= 0 && IN(w[a].low, DO_FORMS);
        if ((do_p && w[p].neg) || (do_a && (w[a].neg || !strcmp(w[p].low, "not"))))
            return CTX_MODAL;
        if (mostly_verb(l) && (!strcmp(w[p].low, "to") || (a >= 0 && !strcmp(w[a].low, "to"))))
            return CTX_TO;
    }
    if (w[k].lower) {
        int number = subject_number(b, ex, w, p);
        if ((slots & S) && number == 1) return CTX_AGREE_SG;
        if ((slots & B) && number == 2 && mostly_verb(l)) return CTX_AGREE_PL;
    }
    return -1;
}

/* Adds an item: good with its word [at, at + len) replaced by each alternative. */
static int add_item(build_t *b, const char *good, size_t at, size_t len, int capital,
                    const char **alt, const uint8_t *alt_infl, int n_alt, const char *lemma,
                    uint8_t infl, uint8_t category, const char *source, mq_error_t *err) {
    size_t n = strlen(good);
    const char *bad[MQ_NUM_INFL];
    for (int j = 0; j < n_alt; j++) {
        char form[MQ_VERB_MAX_WORD];
        snprintf(form, sizeof form, "%s", alt[j]);
        if (capital) form[0] = (char)toupper((unsigned char)form[0]);
        if (buf_set(&b->bad[j], good, at, form, strlen(form), good + at + len, n - at - len))
            return mq_error_set(err, MQ_ERR_NOMEM, "out of memory");
        bad[j] = b->bad[j].p;
    }
    int rc =
        mq_mp_add(b->out, good, bad, alt_infl, (uint32_t)n_alt, lemma, infl, category, source, err);
    if (rc) return rc;
    const char *stored = b->out->items[b->out->n_items - 1].good;
    if (mq_strindex_put(&b->goods, stored, 0, NULL))
        return mq_error_set(err, MQ_ERR_NOMEM, "out of memory");
    b->st->items++;
    b->st->alternatives += (size_t)n_alt;
    return MQ_OK;
}

/* ---------------------------------------------------------------------------------------------
 * items from examples */

/* The items of one example ex[0..n) (NUL-terminated); returns how many, or an error < 0. */
static int example_items(build_t *b, const char *ex, size_t n, const char *source,
                         mq_error_t *err) {
    word_t *w = malloc((n / 2 + 1) * sizeof *w);
    if (!w) return mq_error_set(err, MQ_ERR_NOMEM, "out of memory");
    size_t nw = split_words(ex, n, w);
    int repeated = mq_strindex_get(&b->seen_examples, ex, n, NULL);
    if (!repeated) {
        const char *kept = mq_strpool_dup(&b->examples, ex, n);
        if (!kept || mq_strindex_put(&b->seen_examples, kept, 0, NULL)) {
            free(w);
            return mq_error_set(err, MQ_ERR_NOMEM, "out of memory");
        }
    }
    int made = 0, rc = MQ_OK;
    for (long k = 0; k < (long)nw && rc == MQ_OK; k++) {
        const word_t *v = &w[k];
        if (!v->letters || v->joined || v->clitic || !v->low[0]) continue;
        if (!v->lower && !(k == 0 && v->capital)) continue; /* names, acronyms */
        uint32_t id;
        uint8_t slots;
        int r = mq_verb_lexicon_reading(b->lx, v->low, strlen(v->low), &id, &slots);
        if (r == 0) continue;
        if (repeated) {
            b->st->skip_duplicate++;
            continue;
        }
        if (r < 0) {
            b->st->skip_ambiguous++;
            continue;
        }
        mq_verb_lemma_t l;
        mq_verb_lexicon_lemma(b->lx, id, &l);
        int ctx = context_of(b, ex, w, k, slots, &l);
        if (ctx < 0) {
            b->st->skip_context++;
            continue;
        }
        const char *alt[MQ_NUM_INFL];
        uint8_t alt_infl[MQ_NUM_INFL];
        int n_alt = alternatives(b, &l, v->low, ctx, alt, alt_infl, &b->st->alternatives_dropped);
        if (n_alt == 0) {
            b->st->skip_no_alternative++;
            continue;
        }
        uint8_t cat = CONTEXTS[ctx].category;
        rc = add_item(b, ex, v->start, v->end - v->start, !v->lower, alt, alt_infl, n_alt, l.lemma,
                      slots, cat, source, err);
        if (rc == MQ_OK) {
            b->st->from_examples[cat]++;
            made++;
        }
    }
    free(w);
    return rc ? rc : made;
}

static int build_examples(build_t *b, const mq_corpus_t *c, mq_error_t *err) {
    char *ex = NULL;
    size_t ex_cap = 0;
    int rc = MQ_OK;
    for (size_t d = 0; d < c->n_docs && rc == MQ_OK; d++) {
        const mq_doc_t *doc = &c->docs[d];
        if (doc->split != MQ_SPLIT_TEST) continue;
        b->st->docs++;
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
            b->st->examples++;
            int made = example_items(b, ex, n, source, err);
            if (made < 0)
                rc = made;
            else
                b->st->examples_used += made > 0;
        }
    }
    free(ex);
    return rc;
}

/* ---------------------------------------------------------------------------------------------
 * items from templates */

/* Templates draw on SemCor-frequent words: nouns used this often, verbs too. */
#define TEMPLATE_MIN_NOUN_COUNT 10
#define TEMPLATE_MIN_VERB_COUNT 10
#define TEMPLATE_SEED 0x76657262ull /* "verb" */

/* Lexicographer files of verbs mostly of state, whose progressive and passive are not English
 * ("is knowing the box"): cognition, communication (which takes clauses more than objects),
 * emotion, perception, stative. */
static const uint8_t STATIVE_FILES[] = {31, 32, 37, 39, 42};
/* Verbs of state filed elsewhere, and "get", whose passive and perfect are others' too. */
static const char *const STATIVE_VERBS[] = {"have", "own", "owe", "afford", "get"};
/* Person nouns that are terms of address, not nouns taking "the". */
static const char *const ADDRESS_TERMS[] = {"sir", "madam", "mister", "ma'am"};

/* One shape of template sentence: "The S [aux] V the O." or, passive, "The O aux V by the S.";
 * the subject in the plural with plural; the verb's inflection infl. */
typedef struct {
    uint8_t category, ctx, plural, passive, infl;
    const char *aux;
} variant_t;

static const variant_t VARIANTS[] = {
    {MQ_VT_AGREEMENT, CTX_AGREE_SG, 0, 0, S, NULL},
    {MQ_VT_AGREEMENT, CTX_AGREE_PL, 1, 0, B, NULL},
    {MQ_VT_NONFINITE, CTX_MODAL, 0, 0, B, "will"},
    {MQ_VT_NONFINITE, CTX_MODAL, 1, 0, B, "will"},
    {MQ_VT_NONFINITE, CTX_MODAL, 0, 0, B, "can"},
    {MQ_VT_NONFINITE, CTX_MODAL, 1, 0, B, "can"},
    {MQ_VT_NONFINITE, CTX_MODAL, 0, 0, B, "could"},
    {MQ_VT_NONFINITE, CTX_MODAL, 1, 0, B, "could"},
    {MQ_VT_NONFINITE, CTX_MODAL, 0, 0, B, "should"},
    {MQ_VT_NONFINITE, CTX_MODAL, 1, 0, B, "should"},
    {MQ_VT_NONFINITE, CTX_MODAL, 0, 0, B, "would"},
    {MQ_VT_NONFINITE, CTX_MODAL, 1, 0, B, "would"},
    {MQ_VT_NONFINITE, CTX_MODAL, 0, 0, B, "must"},
    {MQ_VT_NONFINITE, CTX_MODAL, 1, 0, B, "must"},
    {MQ_VT_NONFINITE, CTX_MODAL, 0, 0, B, "might"},
    {MQ_VT_NONFINITE, CTX_MODAL, 1, 0, B, "might"},
    {MQ_VT_NONFINITE, CTX_MODAL, 0, 0, B, "may"},
    {MQ_VT_NONFINITE, CTX_MODAL, 1, 0, B, "may"},
    {MQ_VT_NONFINITE, CTX_MODAL, 0, 0, B, "did not"},
    {MQ_VT_NONFINITE, CTX_MODAL, 1, 0, B, "did not"},
    {MQ_VT_PARTICIPLE, CTX_HAVE, 0, 0, PP, "has"},
    {MQ_VT_PARTICIPLE, CTX_HAVE, 1, 0, PP, "have"},
    {MQ_VT_PARTICIPLE, CTX_HAVE, 0, 0, PP, "had"},
    {MQ_VT_PARTICIPLE, CTX_HAVE, 1, 0, PP, "had"},
    {MQ_VT_PARTICIPLE, CTX_BE_PP, 0, 1, PP, "was"},
    {MQ_VT_PARTICIPLE, CTX_BE_PP, 1, 1, PP, "was"},
    {MQ_VT_PARTICIPLE, CTX_BE_PP, 0, 1, PP, "is"},
    {MQ_VT_PARTICIPLE, CTX_BE_PP, 1, 1, PP, "is"},
    {MQ_VT_PROGRESSIVE, CTX_BE_ING, 0, 0, ING, "is"},
    {MQ_VT_PROGRESSIVE, CTX_BE_ING, 1, 0, ING, "are"},
    {MQ_VT_PROGRESSIVE, CTX_BE_ING, 0, 0, ING, "was"},
    {MQ_VT_PROGRESSIVE, CTX_BE_ING, 1, 0, ING, "were"},
};
#define N_VARIANTS (sizeof VARIANTS / sizeof VARIANTS[0])

/* The words templates draw on, and which verbs have an alternative in each variant. */
typedef struct {
    const mq_common_noun_t **subjects, **objects;
    size_t n_subjects, n_objects;
    uint32_t *verbs;
    size_t n_verbs;
    uint32_t *by_variant[N_VARIANTS]; /* verb ids */
    size_t n_by_variant[N_VARIANTS];
} pools_t;

static void pools_free(pools_t *t) {
    free(t->subjects);
    free(t->objects);
    free(t->verbs);
    for (size_t v = 0; v < N_VARIANTS; v++)
        free(t->by_variant[v]);
}

static int bit_of(uint8_t infl) {
    int s = 0;
    while (s < MQ_NUM_INFL - 1 && !(infl & (1 << s)))
        s++;
    return s;
}

static int template_noun(const mq_common_noun_t *n, int person) {
    if (n->n_noun < TEMPLATE_MIN_NOUN_COUNT || n->n_adj > n->n_noun) return 0;
    return !person || !MQ_IN_LIST(n->singular, ADDRESS_TERMS);
}

/* A verb for templates: frequent, its most frequent sense "Somebody ----s something" and not
 * copular (frames 5, 6, 7), no sense with two objects (frame 14), not a verb of state, one
 * spelling per inflection, each read back as this verb. */
static int template_verb(const build_t *b, uint32_t id, const mq_verb_lemma_t *l) {
    if (l->n_verb < TEMPLATE_MIN_VERB_COUNT || !(l->frames_first & MQ_FRAME(8)) ||
        (l->frames_first & (MQ_FRAME(5) | MQ_FRAME(6) | MQ_FRAME(7))) ||
        (l->frames_any & MQ_FRAME(14)) || l->variant_slots || MQ_IN_LIST(l->lemma, STATIVE_VERBS))
        return 0;
    for (size_t i = 0; i < sizeof STATIVE_FILES; i++)
        if (l->lexfile_first == STATIVE_FILES[i]) return 0;
    for (int s = 0; s < MQ_NUM_INFL; s++) {
        uint32_t got;
        uint8_t slots;
        if (mq_verb_lexicon_reading(b->lx, l->forms[s], strlen(l->forms[s]), &got, &slots) != 1 ||
            got != id || !(slots & (1 << s)))
            return 0;
    }
    return 1;
}

static int make_pools(build_t *b, pools_t *t, mq_error_t *err) {
    memset(t, 0, sizeof *t);
    const mq_common_noun_t *nouns;
    for (int k = 0; k < 2; k++) {
        size_t n = mq_wordclass_common_nouns(
            b->wc, k == 0 ? MQ_LEX_NOUN_PERSON : MQ_LEX_NOUN_ARTIFACT, &nouns);
        const mq_common_noun_t **pool = malloc((n + 1) * sizeof *pool);
        if (!pool) return mq_error_set(err, MQ_ERR_NOMEM, "out of memory");
        size_t m = 0;
        for (size_t i = 0; i < n; i++)
            if (template_noun(&nouns[i], k == 0)) pool[m++] = &nouns[i];
        if (k == 0)
            t->subjects = pool, t->n_subjects = m;
        else
            t->objects = pool, t->n_objects = m;
    }
    size_t n_lemmas = mq_verb_lexicon_size(b->lx);
    int ok = (t->verbs = malloc((n_lemmas + 1) * sizeof *t->verbs)) != NULL;
    for (size_t v = 0; v < N_VARIANTS; v++)
        ok &= (t->by_variant[v] = malloc((n_lemmas + 1) * sizeof *t->by_variant[v])) != NULL;
    if (!ok) return mq_error_set(err, MQ_ERR_NOMEM, "out of memory");
    for (uint32_t id = 0; id < n_lemmas; id++) {
        mq_verb_lemma_t l;
        mq_verb_lexicon_lemma(b->lx, id, &l);
        if (!template_verb(b, id, &l)) continue;
        int used = 0;
        for (size_t v = 0; v < N_VARIANTS; v++) {
            const char *alt[MQ_NUM_INFL];
            uint8_t infl[MQ_NUM_INFL];
            size_t dropped = 0;
            const char *good = l.forms[bit_of(VARIANTS[v].infl)];
            if (alternatives(b, &l, good, VARIANTS[v].ctx, alt, infl, &dropped) > 0) {
                t->by_variant[v][t->n_by_variant[v]++] = id;
                used = 1;
            }
        }
        if (used) t->verbs[t->n_verbs++] = id;
    }
    b->st->template_verbs = t->n_verbs;
    b->st->template_subjects = t->n_subjects;
    b->st->template_objects = t->n_objects;
    return MQ_OK;
}

/* template_items distinct items of one category. */
static int build_category(build_t *b, const pools_t *t, uint8_t category, size_t template_items,
                          const char *dir, mq_error_t *err) {
    uint64_t per_verb = (uint64_t)t->n_subjects * t->n_objects, capacity = 0;
    for (size_t v = 0; v < N_VARIANTS; v++)
        if (VARIANTS[v].category == category) capacity += t->n_by_variant[v] * per_verb;
    const char *name = CATEGORY_NAMES[category];
    if (capacity < template_items)
        return mq_error_set(err, MQ_ERR_FORMAT,
                            "%s: WordNet gives only %llu distinct %s template sentences (%zu "
                            "verbs, %zu person nouns, %zu artifact nouns), %zu asked for",
                            dir, (unsigned long long)capacity, name, t->n_verbs, t->n_subjects,
                            t->n_objects, template_items);
    char source[64];
    snprintf(source, sizeof source, TEMPLATE_PREFIX "%s", name);
    mq_rng_t rng;
    mq_rng_seed(&rng, TEMPLATE_SEED + category);
    buf_t good = {0};
    size_t made = 0, tries = 0, max_tries = 16 * (size_t)capacity + 1024;
    int rc = MQ_OK;
    while (made < template_items && rc == MQ_OK) {
        if (++tries > max_tries) {
            rc = mq_error_set(err, MQ_ERR_FORMAT,
                              "%s: only %zu distinct %s template sentences found in %zu draws, "
                              "%zu asked for",
                              dir, made, name, max_tries, template_items);
            break;
        }
        uint64_t r = mq_rng_below(&rng, capacity);
        size_t v = 0;
        for (;; v++) {
            if (VARIANTS[v].category != category) continue;
            uint64_t block = t->n_by_variant[v] * per_verb;
            if (r < block) break;
            r -= block;
        }
        const variant_t *var = &VARIANTS[v];
        uint32_t id = t->by_variant[v][r / per_verb];
        r %= per_verb;
        const mq_common_noun_t *subj = t->subjects[r / t->n_objects],
                               *obj = t->objects[r % t->n_objects];
        mq_verb_lemma_t l;
        mq_verb_lexicon_lemma(b->lx, id, &l);
        const char *verb = l.forms[bit_of(var->infl)];
        const char *who = var->plural ? subj->plural : subj->singular;
        char head[256], tail[256];
        if (var->passive) {
            snprintf(head, sizeof head, "The %s %s ", obj->singular, var->aux);
            snprintf(tail, sizeof tail, " by the %s.", who);
        } else {
            snprintf(head, sizeof head, "The %s %s%s", who, var->aux ? var->aux : "",
                     var->aux ? " " : "");
            snprintf(tail, sizeof tail, " the %s.", obj->singular);
        }
        if (buf_set(&good, head, strlen(head), verb, strlen(verb), tail, strlen(tail))) {
            rc = mq_error_set(err, MQ_ERR_NOMEM, "out of memory");
            break;
        }
        if (mq_strindex_get(&b->goods, good.p, good.n, NULL)) continue;
        const char *alt[MQ_NUM_INFL];
        uint8_t alt_infl[MQ_NUM_INFL];
        size_t dropped = 0;
        int n_alt = alternatives(b, &l, verb, var->ctx, alt, alt_infl, &dropped);
        uint8_t infl = 0;
        for (int s = 0; s < MQ_NUM_INFL; s++)
            if (!strcmp(l.forms[s], verb)) infl |= (uint8_t)(1 << s);
        rc = add_item(b, good.p, strlen(head), strlen(verb), 0, alt, alt_infl, n_alt, l.lemma, infl,
                      category, source, err);
        if (rc == MQ_OK) {
            b->st->alternatives_dropped += dropped;
            b->st->from_templates[category]++;
            made++;
        }
    }
    free(good.p);
    return rc;
}

static int build_templates(build_t *b, size_t template_items, const char *dir, mq_error_t *err) {
    pools_t t;
    int rc = make_pools(b, &t, err);
    for (uint8_t c = 1; rc == MQ_OK && c < MQ_VT_NUM_CATEGORIES && template_items; c++)
        rc = build_category(b, &t, c, template_items, dir, err);
    pools_free(&t);
    return rc;
}

/* ---------------------------------------------------------------------------------------------
 * the set */

int mq_verbtense_build(const mq_corpus_t *c, const char *wordnet_dir, size_t template_items,
                       mq_mp_set_t *out, mq_verbtense_stats_t *stats, mq_error_t *err) {
    memset(out, 0, sizeof *out);
    const char *dir = wordnet_dir ? wordnet_dir : MQ_WORDNET_DIR;
    mq_verbtense_stats_t local;
    build_t b = {0};
    b.out = out;
    b.st = stats ? stats : &local;
    memset(b.st, 0, sizeof *b.st);
    mq_verb_lexicon_t *lx = NULL;
    mq_wordclass_t *wc = NULL;
    int rc = mq_verb_lexicon_load(dir, c, &lx, err);
    if (rc == MQ_OK) rc = mq_verb_lexicon_load_frames(lx, dir, err);
    if (rc == MQ_OK) rc = mq_wordclass_load(dir, &wc, err);
    b.lx = lx;
    b.wc = wc;
    if (rc == MQ_OK) rc = build_examples(&b, c, err);
    if (rc == MQ_OK) rc = build_templates(&b, template_items, dir, err);
    mq_strpool_free(&b.examples);
    mq_strindex_free(&b.seen_examples);
    mq_strindex_free(&b.goods);
    for (int j = 0; j < MQ_NUM_INFL; j++)
        free(b.bad[j].p);
    mq_verb_lexicon_free(lx);
    mq_wordclass_free(wc);
    if (rc == MQ_OK && out->n_items == 0)
        rc = mq_error_set(err, MQ_ERR_FORMAT,
                          "no verb-tense items: the corpus has no usable test-split examples "
                          "(%zu test documents, %zu examples) and no templates were asked for",
                          b.st->docs, b.st->examples);
    if (rc) mq_mp_set_free(out);
    return rc;
}
