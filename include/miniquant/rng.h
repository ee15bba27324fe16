/* miniquant: a small deterministic random number generator (xoshiro256** seeded by splitmix64).
 * The same seed gives the same stream on every machine. */
#ifndef MINIQUANT_RNG_H
#define MINIQUANT_RNG_H

#include <stdint.h>

typedef struct mq_rng {
    uint64_t s[4];
} mq_rng_t;

void mq_rng_seed(mq_rng_t *r, uint64_t seed);
uint64_t mq_rng_u64(mq_rng_t *r);
/* Uniform in [0, 1) with 24 random bits. */
float mq_rng_uniform(mq_rng_t *r);
/* Uniform integer in [0, n), n > 0, without modulo bias. */
uint64_t mq_rng_below(mq_rng_t *r, uint64_t n);
/* Standard normal (Box-Muller). */
float mq_rng_normal(mq_rng_t *r);

/* 64-bit FNV-1a hash of bytes: stable across machines, used for deterministic splits. */
uint64_t mq_hash64(const void *data, uint64_t len);

#endif
