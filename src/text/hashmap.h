/* miniquant: the tokenizer's hash tables (private to src/text): byte strings -> uint64 and
 * uint64 -> uint64, open addressing with linear probing. */
#ifndef MINIQUANT_TEXT_HASHMAP_H
#define MINIQUANT_TEXT_HASHMAP_H

#include <stddef.h>
#include <stdint.h>

#include "miniquant/rng.h"

/* Byte strings -> uint64, open addressing with linear probing; the map owns copies of its keys
 * (NUL-terminated, back to back in one block). A stored hash of 0 marks an empty slot. */
typedef struct smslot {
    uint64_t hash;
    uint64_t val;
    size_t off;
    size_t len;
} smslot_t;

typedef struct strmap {
    smslot_t *slot;
    size_t cap, n; /* cap is 0 or a power of two */
    char *keys;
    size_t keys_len, keys_cap;
} strmap_t;

/* The hash of a key: never 0, which marks an empty slot. */
static inline uint64_t str_hash(const char *s, size_t len) {
    uint64_t h = mq_hash64(s, len);
    return h ? h : 1;
}

/* The slot of key s[0..len) whose hash is h (str_hash), or NULL when it is no key. */
smslot_t *mq_strmap_find(const strmap_t *m, const char *s, size_t len, uint64_t h);
/* Sets key s to val (adding the key when new); *slot (optional) receives its slot. */
int mq_strmap_put(strmap_t *m, const char *s, size_t len, uint64_t h, uint64_t val,
                  smslot_t **slot);
/* 1 and *val (val may be NULL) when s[0..len) is a key, else 0. */
int mq_strmap_get(const strmap_t *m, const char *s, size_t len, uint64_t *val);
void mq_strmap_free(strmap_t *m);

/* uint64 -> uint64; the key UINT64_MAX marks an empty slot (pair keys never reach it). */
typedef struct u64map {
    uint64_t *key, *val;
    size_t cap, n;
} u64map_t;

/* The value of key k, or NULL when k is no key. */
uint64_t *mq_u64map_find(const u64map_t *m, uint64_t k);
/* Sets key k to v (adding the key when new). */
int mq_u64map_put(u64map_t *m, uint64_t k, uint64_t v);
void mq_u64map_free(u64map_t *m);

#endif
