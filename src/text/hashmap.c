/* miniquant: the tokenizer's hash tables (see hashmap.h). */
#include "hashmap.h"

#include <stdlib.h>
#include <string.h>

#include "miniquant/error.h"

smslot_t *mq_strmap_find(const strmap_t *m, const char *s, size_t len, uint64_t h) {
    if (!m->cap) return NULL;
    size_t mask = m->cap - 1;
    for (size_t i = h & mask;; i = (i + 1) & mask) {
        smslot_t *e = &m->slot[i];
        if (!e->hash) return NULL;
        if (e->hash == h && e->len == len && memcmp(m->keys + e->off, s, len) == 0) return e;
    }
}

static int strmap_grow(strmap_t *m) {
    size_t cap = m->cap ? 2 * m->cap : 64;
    smslot_t *slot = calloc(cap, sizeof *slot);
    if (!slot) return MQ_ERR_NOMEM;
    for (size_t j = 0; j < m->cap; j++) {
        if (!m->slot[j].hash) continue;
        size_t i = m->slot[j].hash & (cap - 1);
        while (slot[i].hash)
            i = (i + 1) & (cap - 1);
        slot[i] = m->slot[j];
    }
    free(m->slot);
    m->slot = slot;
    m->cap = cap;
    return MQ_OK;
}

int mq_strmap_put(strmap_t *m, const char *s, size_t len, uint64_t h, uint64_t val,
                  smslot_t **slot) {
    smslot_t *e = mq_strmap_find(m, s, len, h);
    if (!e) {
        if (2 * (m->n + 1) > m->cap && strmap_grow(m)) return MQ_ERR_NOMEM;
        if (m->keys_len + len + 1 > m->keys_cap) {
            size_t cap = m->keys_cap ? m->keys_cap : 1024;
            while (m->keys_len + len + 1 > cap)
                cap *= 2;
            char *keys = realloc(m->keys, cap);
            if (!keys) return MQ_ERR_NOMEM;
            m->keys = keys;
            m->keys_cap = cap;
        }
        size_t i = h & (m->cap - 1);
        while (m->slot[i].hash)
            i = (i + 1) & (m->cap - 1);
        e = &m->slot[i];
        e->hash = h;
        e->off = m->keys_len;
        e->len = len;
        memcpy(m->keys + m->keys_len, s, len);
        m->keys[m->keys_len + len] = '\0';
        m->keys_len += len + 1;
        m->n++;
    }
    e->val = val;
    if (slot) *slot = e;
    return MQ_OK;
}

int mq_strmap_get(const strmap_t *m, const char *s, size_t len, uint64_t *val) {
    smslot_t *e = mq_strmap_find(m, s, len, str_hash(s, len));
    if (e && val) *val = e->val;
    return e != NULL;
}

void mq_strmap_free(strmap_t *m) {
    free(m->slot);
    free(m->keys);
    memset(m, 0, sizeof *m);
}

static uint64_t mix64(uint64_t x) {
    x ^= x >> 30;
    x *= 0xbf58476d1ce4e5b9ull;
    x ^= x >> 27;
    x *= 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

uint64_t *mq_u64map_find(const u64map_t *m, uint64_t k) {
    if (!m->cap) return NULL;
    size_t mask = m->cap - 1;
    for (size_t i = mix64(k) & mask;; i = (i + 1) & mask) {
        if (m->key[i] == k) return &m->val[i];
        if (m->key[i] == UINT64_MAX) return NULL;
    }
}

int mq_u64map_put(u64map_t *m, uint64_t k, uint64_t v) {
    uint64_t *p = mq_u64map_find(m, k);
    if (p) {
        *p = v;
        return MQ_OK;
    }
    if (2 * (m->n + 1) > m->cap) {
        size_t cap = m->cap ? 2 * m->cap : 64;
        uint64_t *key = malloc(cap * sizeof *key), *val = malloc(cap * sizeof *val);
        if (!key || !val) {
            free(key);
            free(val);
            return MQ_ERR_NOMEM;
        }
        memset(key, 0xFF, cap * sizeof *key);
        for (size_t j = 0; j < m->cap; j++) {
            if (m->key[j] == UINT64_MAX) continue;
            size_t i = mix64(m->key[j]) & (cap - 1);
            while (key[i] != UINT64_MAX)
                i = (i + 1) & (cap - 1);
            key[i] = m->key[j];
            val[i] = m->val[j];
        }
        free(m->key);
        free(m->val);
        m->key = key;
        m->val = val;
        m->cap = cap;
    }
    size_t i = mix64(k) & (m->cap - 1);
    while (m->key[i] != UINT64_MAX)
        i = (i + 1) & (m->cap - 1);
    m->key[i] = k;
    m->val[i] = v;
    m->n++;
    return MQ_OK;
}

void mq_u64map_free(u64map_t *m) {
    free(m->key);
    free(m->val);
    memset(m, 0, sizeof *m);
}
