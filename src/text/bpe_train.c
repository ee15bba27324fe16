/* miniquant: learning byte-level BPE merges on a corpus (mq_tokenizer_train, tokenizer.h).
 *
 * Pieces of the corpus are counted once; each distinct piece is a word of byte symbols that
 * shrinks in place as merges apply, and a heap of pair counts gives the next merge. */
#include "miniquant/tokenizer.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "miniquant/progress.h"
#include "tokenizer_internal.h"

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
    uint64_t *v = mq_u64map_find(&tr->pair_map, key);
    size_t p;
    if (v) {
        p = *v;
    } else {
        if (grow((void **)&tr->pair, &tr->cap_pair, tr->n_pair + 1, sizeof *tr->pair) ||
            grow((void **)&tr->heap, &tr->cap_heap, tr->n_heap + 1, sizeof *tr->heap) ||
            mq_u64map_put(&tr->pair_map, key, tr->n_pair))
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
        mq_strmap_put(&tr->tok_by_text, s, len, str_hash(s, len), tr->n_tok, NULL))
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
    smslot_t *e = mq_strmap_find(wc, start, len, h);
    if (e)
        e->val++;
    else if (mq_strmap_put(wc, start, len, h, 1, NULL))
        *status = MQ_ERR_NOMEM;
}

static void tr_free(trainer_t *tr) {
    free(tr->text);
    free(tr->text_off);
    mq_strmap_free(&tr->tok_by_text);
    free(tr->sym);
    free(tr->w_off);
    free(tr->w_len);
    free(tr->w_cnt);
    free(tr->w_stamp);
    free(tr->flag);
    for (size_t p = 0; p < tr->n_pair; p++)
        free(tr->pair[p].where);
    free(tr->pair);
    mq_u64map_free(&tr->pair_map);
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
    int rc = mq_pretok_begin(&md, err);
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
            rc = mq_pretok_run(md, docs[d], lens[d], count_piece, ctx, err);
        done += (int64_t)lens[d];
        if ((d & 1023) == 0) mq_progress_update(&pg, done, NULL);
    }
    mq_progress_finish(&pg, NULL);
    pcre2_match_data_free(md);
    if (!rc && status) rc = mq_error_set(err, status, "tokenizer: out of memory");
    if (!rc && wc.n > INT32_MAX / 2)
        rc = mq_error_set(err, MQ_ERR_UNSUPPORTED, "tokenizer: %zu distinct pieces", wc.n);
    if (rc) {
        mq_strmap_free(&wc);
        return rc;
    }

    size_t n_sym = 0, max_len = 1;
    for (size_t i = 0; i < wc.cap; i++) {
        if (!wc.slot[i].hash) continue;
        n_sym += wc.slot[i].len;
        if (wc.slot[i].len > max_len) max_len = wc.slot[i].len;
    }
    if (max_len > INT32_MAX) {
        mq_strmap_free(&wc);
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
        mq_strmap_free(&wc);
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
                mq_strmap_free(&wc);
                return mq_error_set(err, MQ_ERR_NOMEM, "tokenizer: out of memory");
            }
        off += e->len;
        w++;
    }
    mq_strmap_free(&wc);
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
        if (mq_strmap_get(&tr->tok_by_text, cat, la + lb, &v))
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
        rc = mq_tok_build(tok, types, (int64_t)n, mer, (int64_t)tr.n_merge, "trained vocabulary",
                          out, err);
    }
    free(tok);
    free(mer);
    free(types);
    free(mtext);
    tr_free(&tr);
    return rc;
}
