/* miniquant: IEEE 754 half precision (binary16) conversions.
 * Round-to-nearest-even, with NaN, infinities and subnormals handled exactly as the hardware
 * conversions (F16C's vcvtps2ph with rounding mode 0) do. */
#ifndef MINIQUANT_FP16_H
#define MINIQUANT_FP16_H

#include <stddef.h>
#include <stdint.h>

typedef uint16_t mq_fp16_t;

mq_fp16_t mq_fp32_to_fp16(float f);
float mq_fp16_to_fp32(mq_fp16_t h);

/* Rounds a float to the nearest half and back: the value an FP16 store would hold. */
static inline float mq_round_fp16(float f) { return mq_fp16_to_fp32(mq_fp32_to_fp16(f)); }

/* The float of every half, indexed by its bits (65,536 entries, 256 KiB), built on the first
 * call (thread-safe): a kernel reads a block's scale with one load instead of a conversion. */
const float *mq_fp16_table(void);

void mq_fp32_to_fp16_row(const float *x, mq_fp16_t *y, size_t n);
void mq_fp16_to_fp32_row(const mq_fp16_t *x, float *y, size_t n);

#endif
