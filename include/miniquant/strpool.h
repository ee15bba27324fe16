/* miniquant: a pool of NUL-terminated string copies that never move, and an index from such
 * strings to uint32 values (open addressing; keys are kept by pointer, not copied). */
#ifndef MINIQUANT_STRPOOL_H
#define MINIQUANT_STRPOOL_H

#include <stddef.h>
#include <stdint.h>

typedef struct mq_strpool {
    char **blocks;
    size_t n, cap, used;
} mq_strpool_t;

/* A NUL-terminated copy of s[0..n) that stays where it is until mq_strpool_free; NULL when out
 * of memory. */
char *mq_strpool_dup(mq_strpool_t *p, const char *s, size_t n);
void mq_strpool_free(mq_strpool_t *p);

typedef struct mq_strindex {
    const char **keys;
    uint32_t *vals;
    size_t n, cap; /* cap: 0 or a power of two */
} mq_strindex_t;

/* 1 and *val (val may be NULL) when k[0..len) is a key, else 0. */
int mq_strindex_get(const mq_strindex_t *m, const char *k, size_t len, uint32_t *val);
/* Inserts key (NUL-terminated, kept by pointer: it must outlive the index) with value v unless
 * present; *val (may be NULL) gets the stored value. MQ_OK or MQ_ERR_NOMEM. */
int mq_strindex_put(mq_strindex_t *m, const char *key, uint32_t v, uint32_t *val);
void mq_strindex_free(mq_strindex_t *m);

#endif
