/* miniquant: SentencePiece's encoding of one fragment of text (see tokenizer.h), as llama.cpp's
 * llm_tokenizer_spm_session computes it.
 *
 * Facts this file relies on, from llama.cpp's llama-vocab.cpp:
 * - The fragment, with a space first when asked, has every ' ' replaced by U+2581.
 * - Symbols start as one per UTF-8 character, whose length is read from its first byte alone
 *   (1 for ASCII and stray continuation bytes, 2, 3 or 4 for lead bytes), cut at the end.
 * - Every adjacent pair whose joined text is a token (of any type) is a candidate with that
 *   token's score. The candidate of highest score is merged, the leftmost (smallest left symbol)
 *   on ties; a candidate whose symbols changed since it was made is skipped. The merged symbol's
 *   pairs with its neighbours become candidates.
 * - A final symbol whose text is a token is that token; any other is written byte by byte as
 *   the byte tokens <0xXX> (or a one-byte token of that byte). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "tokenizer_internal.h"

typedef struct spm_sym {
    uint32_t off, n; /* n is 0 once merged into the symbol on its left */
    int32_t prev, next;
} spm_sym_t;

typedef struct spm_pair {
    float score;
    int32_t left, right;
    uint32_t size; /* bytes of the two symbols when the candidate was made */
} spm_pair_t;

typedef struct spm {
    const mq_tokenizer_t *t;
    const char *s;
    spm_sym_t *sym;
    spm_pair_t *heap;
    size_t n_heap;
} spm_t;

/* a is merged before b */
static int pair_first(const spm_pair_t *a, const spm_pair_t *b) {
    return a->score > b->score || (a->score == b->score && a->left < b->left);
}

static void spm_push(spm_t *m, int32_t left, int32_t right) {
    if (left < 0 || right < 0) return;
    const spm_sym_t *l = &m->sym[left], *r = &m->sym[right];
    int32_t id = tok_lookup(m->t, m->s + l->off, (size_t)l->n + r->n);
    if (id < 0) return;
    spm_pair_t p = {m->t->score[id], left, right, l->n + r->n};
    size_t i = m->n_heap++;
    while (i > 0 && pair_first(&p, &m->heap[(i - 1) / 2])) {
        m->heap[i] = m->heap[(i - 1) / 2];
        i = (i - 1) / 2;
    }
    m->heap[i] = p;
}

static spm_pair_t spm_pop(spm_t *m) {
    spm_pair_t top = m->heap[0], last = m->heap[--m->n_heap];
    size_t i = 0, n = m->n_heap;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= n) break;
        if (c + 1 < n && pair_first(&m->heap[c + 1], &m->heap[c])) c++;
        if (!pair_first(&m->heap[c], &last)) break;
        m->heap[i] = m->heap[c];
        i = c;
    }
    if (n) m->heap[i] = last;
    return top;
}

/* The length of the UTF-8 character that starts with byte b, from b alone. */
static uint32_t utf8_len(unsigned char b) {
    static const uint8_t len[16] = {1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 3, 4};
    return len[b >> 4];
}

int mq_tok_spm_encode(const mq_tokenizer_t *t, const char *text, size_t len, int prefix,
                      int32_t **ids, size_t *n, size_t *cap, int *bad_byte) {
    size_t spaces = prefix;
    for (size_t i = 0; i < len; i++)
        spaces += text[i] == ' ';
    size_t sl = len + prefix + 2 * spaces; /* each space becomes three bytes */
    if (sl > UINT32_MAX / 2) return MQ_ERR_UNSUPPORTED;
    char *s = malloc(sl ? sl : 1);
    spm_t m = {.t = t, .s = s};
    m.sym = malloc((sl ? sl : 1) * sizeof *m.sym);
    /* each merge adds at most two candidates to the sl - 1 it starts with */
    m.heap = malloc((3 * sl + 1) * sizeof *m.heap);
    int rc = MQ_OK;
    if (!s || !m.sym || !m.heap) {
        rc = MQ_ERR_NOMEM;
        goto done;
    }
    size_t at = 0;
    if (prefix) {
        memcpy(s, "\xe2\x96\x81", 3);
        at = 3;
    }
    for (size_t i = 0; i < len; i++) {
        if (text[i] == ' ') {
            memcpy(s + at, "\xe2\x96\x81", 3);
            at += 3;
        } else {
            s[at++] = text[i];
        }
    }
    int32_t n_sym = 0;
    for (uint32_t off = 0; off < sl; n_sym++) {
        uint32_t k = utf8_len((unsigned char)s[off]);
        if (k > sl - off) k = (uint32_t)(sl - off);
        m.sym[n_sym] = (spm_sym_t){off, k, n_sym - 1, off + k < sl ? n_sym + 1 : -1};
        off += k;
    }
    for (int32_t i = 1; i < n_sym; i++)
        spm_push(&m, i - 1, i);
    while (m.n_heap) {
        spm_pair_t p = spm_pop(&m);
        spm_sym_t *l = &m.sym[p.left], *r = &m.sym[p.right];
        if (l->n == 0 || r->n == 0 || l->n + r->n != p.size) continue; /* stale */
        l->n += r->n;
        r->n = 0;
        l->next = r->next;
        if (r->next >= 0) m.sym[r->next].prev = p.left;
        spm_push(&m, l->prev, p.left);
        spm_push(&m, p.left, l->next);
    }
    for (int32_t i = n_sym ? 0 : -1; i >= 0; i = m.sym[i].next) {
        const spm_sym_t *y = &m.sym[i];
        int32_t id = tok_lookup(t, s + y->off, y->n);
        if (grow((void **)ids, cap, *n + (id >= 0 ? 1 : y->n), sizeof **ids)) {
            rc = MQ_ERR_NOMEM;
            goto done;
        }
        if (id >= 0) {
            (*ids)[(*n)++] = id;
            continue;
        }
        for (uint32_t j = 0; j < y->n; j++) {
            unsigned char b = (unsigned char)s[y->off + j];
            if (t->byte_id[b] < 0) {
                *bad_byte = b;
                rc = MQ_ERR_ARG;
                goto done;
            }
            (*ids)[(*n)++] = t->byte_id[b];
        }
    }
done:
    free(s);
    free(m.sym);
    free(m.heap);
    return rc;
}
