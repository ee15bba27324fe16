#include "miniquant/fp16.h"

#include <string.h>
#include <threads.h>

static inline uint32_t f32_bits(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    return u;
}

static inline float bits_f32(uint32_t u) {
    float f;
    memcpy(&f, &u, 4);
    return f;
}

mq_fp16_t mq_fp32_to_fp16(float f) {
    uint32_t x = f32_bits(f);
    uint32_t sign = (x >> 16) & 0x8000u;
    uint32_t exp = (x >> 23) & 0xffu;
    uint32_t man = x & 0x7fffffu;

    if (exp == 0xffu) { /* Inf or NaN: keep NaN quiet and non-zero */
        if (man) return (mq_fp16_t)(sign | 0x7e00u | (man >> 13));
        return (mq_fp16_t)(sign | 0x7c00u);
    }
    int e = (int)exp - 127 + 15;
    if (e >= 31) return (mq_fp16_t)(sign | 0x7c00u); /* overflow to infinity */
    if (e <= 0) {
        /* subnormal half (or zero): shift the full significand, round to nearest even */
        if (e < -10) return (mq_fp16_t)sign;
        uint32_t m = man | 0x800000u;
        int shift = 14 - e; /* 14..24 */
        uint32_t half = m >> shift;
        uint32_t rem = m & ((1u << shift) - 1);
        uint32_t mid = 1u << (shift - 1);
        if (rem > mid || (rem == mid && (half & 1u))) half++;
        return (mq_fp16_t)(sign | half);
    }
    uint32_t h = ((uint32_t)e << 10) | (man >> 13);
    uint32_t rem = man & 0x1fffu;
    if (rem > 0x1000u || (rem == 0x1000u && (h & 1u))) h++; /* may carry into the exponent */
    return (mq_fp16_t)(sign | h);
}

float mq_fp16_to_fp32(mq_fp16_t h) {
    uint32_t sign = ((uint32_t)h & 0x8000u) << 16;
    uint32_t exp = ((uint32_t)h >> 10) & 0x1fu;
    uint32_t man = (uint32_t)h & 0x3ffu;
    if (exp == 0) {
        if (man == 0) return bits_f32(sign);
        /* subnormal: value = man * 2^-24, exact in float */
        float v = (float)man * 5.9604644775390625e-8f;
        return sign ? -v : v;
    }
    if (exp == 31) return bits_f32(sign | 0x7f800000u | (man << 13));
    return bits_f32(sign | ((exp - 15 + 127) << 23) | (man << 13));
}

void mq_fp32_to_fp16_row(const float *x, mq_fp16_t *y, size_t n) {
    for (size_t i = 0; i < n; i++) y[i] = mq_fp32_to_fp16(x[i]);
}

void mq_fp16_to_fp32_row(const mq_fp16_t *x, float *y, size_t n) {
    for (size_t i = 0; i < n; i++) y[i] = mq_fp16_to_fp32(x[i]);
}

static float fp16_table[65536];
static once_flag fp16_table_once = ONCE_FLAG_INIT;

static void fp16_table_build(void) {
    for (uint32_t h = 0; h < 65536; h++)
        fp16_table[h] = mq_fp16_to_fp32((mq_fp16_t)h);
}

const float *mq_fp16_table(void) {
    call_once(&fp16_table_once, fp16_table_build);
    return fp16_table;
}
