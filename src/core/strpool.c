/* miniquant: string pool and string index (see strpool.h). */
#include "miniquant/strpool.h"

#include <stdlib.h>
#include <string.h>

#include "miniquant/error.h"
#include "miniquant/rng.h"

#define POOL_BLOCK 65536

char *mq_strpool_dup(mq_strpool_t *p, const char *s, size_t n) {
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

void mq_strpool_free(mq_strpool_t *p) {
    for (size_t i = 0; i < p->n; i++)
        free(p->blocks[i]);
    free(p->blocks);
    memset(p, 0, sizeof *p);
}

static size_t find_slot(const mq_strindex_t *m, const char *k, size_t len) {
    size_t mask = m->cap - 1;
    for (size_t i = (size_t)mq_hash64(k, len) & mask;; i = (i + 1) & mask)
        if (!m->keys[i] || (!strncmp(m->keys[i], k, len) && m->keys[i][len] == 0)) return i;
}

int mq_strindex_get(const mq_strindex_t *m, const char *k, size_t len, uint32_t *val) {
    if (!m->cap) return 0;
    size_t i = find_slot(m, k, len);
    if (!m->keys[i]) return 0;
    if (val) *val = m->vals[i];
    return 1;
}

int mq_strindex_put(mq_strindex_t *m, const char *key, uint32_t v, uint32_t *val) {
    if (2 * (m->n + 1) > m->cap) {
        size_t cap = m->cap ? 2 * m->cap : 1024;
        mq_strindex_t nm = {calloc(cap, sizeof *nm.keys), malloc(cap * sizeof *nm.vals), 0, cap};
        if (!nm.keys || !nm.vals) {
            free((void *)nm.keys);
            free(nm.vals);
            return MQ_ERR_NOMEM;
        }
        for (size_t i = 0; i < m->cap; i++)
            if (m->keys[i]) {
                size_t j = find_slot(&nm, m->keys[i], strlen(m->keys[i]));
                nm.keys[j] = m->keys[i];
                nm.vals[j] = m->vals[i];
            }
        nm.n = m->n;
        free((void *)m->keys);
        free(m->vals);
        *m = nm;
    }
    size_t i = find_slot(m, key, strlen(key));
    if (!m->keys[i]) {
        m->keys[i] = key;
        m->vals[i] = v;
        m->n++;
    }
    if (val) *val = m->vals[i];
    return MQ_OK;
}

void mq_strindex_free(mq_strindex_t *m) {
    free((void *)m->keys);
    free(m->vals);
    memset(m, 0, sizeof *m);
}
