/* miniquant: code the AVX2 and AVX-512 kernel files share, in 256-bit AVX2 operations (which
 * every AVX-512 CPU runs). Private to src/quant; each function is inlined into its caller, whose
 * target attribute covers AVX2. */
#ifndef MINIQUANT_KERNELS_X86_H
#define MINIQUANT_KERNELS_X86_H

#include <immintrin.h>
#include <stdint.h>

/* Q6_K: half h's unsigned codes (0..63, value d sc (u - 32)) in column order, 32 weights a
 * vector: weights 32 j .. 32 j + 31 of the half in q[j]. The half's 64 bytes of low nibbles give
 * weights 0..63 (low nibbles) and 64..127 (high ones); its 32 bytes of high pairs give bits
 * 2j, 2j + 1 of each byte to q[j], as bits 4 and 5. */
static inline __attribute__((always_inline, target("avx2"))) void
mq_q6_half_codes(const uint8_t *blk, int h, __m256i *q) {
    const __m256i m4 = _mm256_set1_epi8(0x0F), m3 = _mm256_set1_epi8(3);
    const uint8_t *ql = blk + 64 * h;
    __m256i l0 = _mm256_loadu_si256((const __m256i *)ql);
    __m256i l1 = _mm256_loadu_si256((const __m256i *)(ql + 32));
    __m256i hb = _mm256_loadu_si256((const __m256i *)(blk + 128 + 32 * h));
    q[0] = _mm256_or_si256(_mm256_and_si256(l0, m4), _mm256_slli_epi16(_mm256_and_si256(hb, m3), 4));
    q[1] = _mm256_or_si256(_mm256_and_si256(l1, m4),
                           _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(hb, 2), m3), 4));
    q[2] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l0, 4), m4),
                           _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(hb, 4), m3), 4));
    q[3] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l1, 4), m4),
                           _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(hb, 6), m3), 4));
}

#endif
