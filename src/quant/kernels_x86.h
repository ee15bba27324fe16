/* miniquant: code the AVX2 and AVX-512 kernel files share, in 256-bit AVX2 operations (which
 * every AVX-512 CPU runs). Private to src/quant; each function is inlined into its caller, whose
 * target attribute covers AVX2. */
#ifndef MINIQUANT_KERNELS_X86_H
#define MINIQUANT_KERNELS_X86_H

#include <immintrin.h>
#include <stdint.h>

#include "blocks.h"
#include "kernels_isa.h"

#define MQ_X86_INLINE static inline __attribute__((always_inline, target("avx2")))

/* Q6_K: half h's unsigned codes (0..63, value d sc (u - 32)) in column order, 32 weights a
 * vector: weights 32 j .. 32 j + 31 of the half in q[j]. The half's 64 bytes of low nibbles give
 * weights 0..63 (low nibbles) and 64..127 (high ones); its 32 bytes of high pairs give bits
 * 2j, 2j + 1 of each byte to q[j], as bits 4 and 5. */
MQ_X86_INLINE void mq_q6_half_codes(const uint8_t *blk, int h, __m256i *q) {
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

/* The FP32-activation K-quant kernels' work once per block b for each of WR rows: the block's
 * lines requested ahead (mq_prefetch_block), its scales and mins decoded. Q4_K and Q5_K (five):
 * ql[w], the row's 128 bytes of nibbles; hv[w], Q5_K's 32 bytes of fifth bits (else zero). */
MQ_X86_INLINE void mq_k45_block_rows(const mq_qweight_t *p, int five, int WR,
                                     const uint8_t *const *row, int b, const float *f16tab,
                                     float (*ds)[8], float (*dm)[8], const uint8_t **ql,
                                     __m256i *hv) {
    size_t bb = five ? MQ_Q5_K_BYTES : MQ_Q4_K_BYTES;
#pragma GCC unroll 4
    for (int w = 0; w < WR; w++) {
        const uint8_t *blk = row[w] + (size_t)b * bb;
        mq_prefetch_block(row[w], (size_t)b * bb, bb, p->row_bytes, WR);
        mq_kq45_scales(blk, f16tab, ds[w], dm[w]);
        ql[w] = blk + (five ? 48 : 16);
        hv[w] = five ? _mm256_loadu_si256((const __m256i *)(blk + 16)) : _mm256_setzero_si256();
    }
}

/* The same for Q2_K (three = 0) and Q3_K: qs[w], the row's 2-bit planes; hm[w], Q3_K's 32 bytes
 * of high-bit mask (else zero). */
MQ_X86_INLINE void mq_k23_block_rows(const mq_qweight_t *p, int three, int WR,
                                     const uint8_t *const *row, int b, const float *f16tab,
                                     float (*ds)[16], float (*dm)[16], const uint8_t **qs,
                                     __m256i *hm) {
    size_t bb = three ? MQ_Q3_K_BYTES : MQ_Q2_K_BYTES;
#pragma GCC unroll 4
    for (int w = 0; w < WR; w++) {
        const uint8_t *blk = row[w] + (size_t)b * bb;
        mq_prefetch_block(row[w], (size_t)b * bb, bb, p->row_bytes, WR);
        qs[w] = mq_kq23_scales(blk, three, f16tab, ds[w], dm[w]);
        hm[w] = three ? _mm256_loadu_si256((const __m256i *)blk) : _mm256_setzero_si256();
    }
}

#undef MQ_X86_INLINE

#endif
