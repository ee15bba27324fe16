/* Helpers the quantization tests share: a scheme or format by name (the test fails when it does
 * not exist) and seeded Gaussian vectors. */
#ifndef MINIQUANT_TESTS_QHELPERS_H
#define MINIQUANT_TESTS_QHELPERS_H

#include <criterion/criterion.h>
#include <stdint.h>
#include <stdlib.h>

#include "miniquant/format.h"
#include "miniquant/quant.h"
#include "miniquant/rng.h"

static inline mq_scheme_t scheme(const char *name) {
    mq_scheme_t s;
    mq_error_t err = {0};
    cr_assert_eq(mq_scheme_parse(name, &s, &err), MQ_OK, "%s: %s", name, err.msg);
    return s;
}

static inline const mq_format_t *format(const char *name) {
    const mq_format_t *f = mq_format_by_name(name);
    cr_assert(f, "no format %s", name);
    return f;
}

/* n values of sd times a standard normal, from a generator seeded with seed (malloc'd). */
static inline float *randn_sd(uint64_t seed, size_t n, float sd) {
    mq_rng_t r;
    mq_rng_seed(&r, seed);
    float *x = malloc(n * sizeof(float));
    cr_assert(x);
    for (size_t i = 0; i < n; i++)
        x[i] = sd * mq_rng_normal(&r);
    return x;
}

#endif
