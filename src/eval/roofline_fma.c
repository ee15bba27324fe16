/* miniquant: the FMA loops that measure the peak FP32 FLOP/s, one per instruction set.
 *
 * Each thread updates 12 independent accumulator vectors, acc = acc * m + c, from registers
 * only: 12 chains hide the latency of the FMA units (4 cycles, up to 2 issued a cycle on
 * current x86 cores, so at least 8 chains are needed). The accumulators converge to
 * c / (1 - m), so nothing overflows or turns denormal. Each version carries its own target
 * attribute, so a portable build holds all of them; the caller picks one the CPU runs. */
#include <immintrin.h>
#include <omp.h>

#include "miniquant/progress.h"
#include "miniquant/roofline.h"

#define CHAINS 12
#define FMA_M 0.999999f
#define FMA_C 1e-7f

#define T512 __attribute__((target("avx512f")))
#define TVNNI __attribute__((target("avx512f,avx512vnni")))
#define T2 __attribute__((target("avx2,fma")))

static T512 float fma_avx512(long iters) {
    __m512 acc[CHAINS];
    const __m512 m = _mm512_set1_ps(FMA_M), c = _mm512_set1_ps(FMA_C);
    for (int k = 0; k < CHAINS; k++)
        acc[k] = _mm512_set1_ps((float)k);
    for (long i = 0; i < iters; i++) {
#pragma GCC unroll 12
        for (int k = 0; k < CHAINS; k++)
            acc[k] = _mm512_fmadd_ps(acc[k], m, c);
    }
    for (int k = 1; k < CHAINS; k++)
        acc[0] = _mm512_add_ps(acc[0], acc[k]);
    return _mm512_reduce_add_ps(acc[0]);
}

static T2 float fma_avx2(long iters) {
    __m256 acc[CHAINS];
    const __m256 m = _mm256_set1_ps(FMA_M), c = _mm256_set1_ps(FMA_C);
    for (int k = 0; k < CHAINS; k++)
        acc[k] = _mm256_set1_ps((float)k);
    for (long i = 0; i < iters; i++) {
#pragma GCC unroll 12
        for (int k = 0; k < CHAINS; k++)
            acc[k] = _mm256_fmadd_ps(acc[k], m, c);
    }
    float out[8];
    for (int k = 1; k < CHAINS; k++)
        acc[0] = _mm256_add_ps(acc[0], acc[k]);
    _mm256_storeu_ps(out, acc[0]);
    return out[0] + out[1] + out[2] + out[3] + out[4] + out[5] + out[6] + out[7];
}

/* The int8 dot-product loop: 12 chains of vpdpbusd, each instruction 64 multiply-adds of
 * unsigned by signed bytes into 16 int32 lanes (the int8 kernels' inner product). The bytes
 * come from the caller (never constants the compiler could fold); the sums wrap harmlessly. */
static TVNNI float dot_int8_vnni(long iters, int seed) {
    __m512i acc[CHAINS];
    const __m512i u = _mm512_set1_epi8((char)(1 + (seed & 1))), s = _mm512_set1_epi8(-1);
    for (int k = 0; k < CHAINS; k++)
        acc[k] = _mm512_set1_epi32(k);
    for (long i = 0; i < iters; i++) {
#pragma GCC unroll 12
        for (int k = 0; k < CHAINS; k++)
            acc[k] = _mm512_dpbusd_epi32(acc[k], u, s);
    }
    for (int k = 1; k < CHAINS; k++)
        acc[0] = _mm512_add_epi32(acc[0], acc[k]);
    return (float)_mm512_reduce_add_epi32(acc[0]);
}

/* AVX2's int8 products, as its int8-activation kernels run them: vpmaddubsw (32 multiply-adds
 * into pairs) then vpmaddwd (the pairs into 8 int32 lanes) and an add per chain. The codes pass
 * through an empty asm each iteration and every chain has its own activations, so no product is
 * computed once for all. */
static T2 float dot_int8_avx2(long iters, int seed) {
    __m256i acc[CHAINS], s[CHAINS];
    __m256i u = _mm256_set1_epi8((char)(1 + (seed & 1)));
    const __m256i ones = _mm256_set1_epi16(1);
    for (int k = 0; k < CHAINS; k++) {
        acc[k] = _mm256_set1_epi32(k);
        s[k] = _mm256_set1_epi8((char)(k - 6));
    }
    for (long i = 0; i < iters; i++) {
        __asm__("" : "+x"(u));
#pragma GCC unroll 12
        for (int k = 0; k < CHAINS; k++)
            acc[k] =
                _mm256_add_epi32(acc[k], _mm256_madd_epi16(_mm256_maddubs_epi16(u, s[k]), ones));
    }
    for (int k = 1; k < CHAINS; k++)
        acc[0] = _mm256_add_epi32(acc[0], acc[k]);
    int32_t out[8];
    _mm256_storeu_si256((__m256i *)out, acc[0]);
    return (float)(out[0] + out[1] + out[2] + out[3] + out[4] + out[5] + out[6] + out[7]);
}

/* Portable C: 12 scalar chains, which the compiler may keep scalar or vectorise. */
static float fma_scalar(long iters) {
    float acc[CHAINS];
    for (int k = 0; k < CHAINS; k++)
        acc[k] = (float)k;
    for (long i = 0; i < iters; i++)
        for (int k = 0; k < CHAINS; k++)
            acc[k] = acc[k] * FMA_M + FMA_C;
    float s = 0.0f;
    for (int k = 0; k < CHAINS; k++)
        s += acc[k];
    return s;
}

/* FP32 lanes of one accumulator. */
static int lanes(mq_isa_t isa) {
    return isa == MQ_ISA_AVX512 ? 16 : isa == MQ_ISA_AVX2 ? 8 : 1;
}

/* LOOP_INT8 and LOOP_INT8_AVX2 stand for the int8 dot-product loops in place of an instruction
 * set's FMA loop. */
#define LOOP_INT8 (-1)
#define LOOP_INT8_AVX2 (-2)

static float fma_run(int isa, long iters, int seed) {
    switch (isa) {
    case LOOP_INT8: return dot_int8_vnni(iters, seed);
    case LOOP_INT8_AVX2: return dot_int8_avx2(iters, seed);
    case MQ_ISA_AVX512: return fma_avx512(iters);
    case MQ_ISA_AVX2: return fma_avx2(iters);
    default: return fma_scalar(iters);
    }
}

/* Seconds of iters iterations on every thread at once; *threads is the team's size. */
static double fma_parallel(int isa, long iters, int *threads) {
    volatile float sink = 0.0f;
    double t0 = mq_now();
#pragma omp parallel
    {
        float r = fma_run(isa, iters, omp_get_thread_num());
#pragma omp atomic
        sink += r;
#pragma omp single nowait
        *threads = omp_get_num_threads();
    }
    (void)sink;
    return mq_now() - t0;
}

/* Operations per second of loop isa (an mq_isa_t or LOOP_INT8) over about `seconds` on every
 * thread; a multiply-add counts 2. */
static double loop_sample(int isa, double seconds) {
    /* size the sample from a short trial, so that it lasts about `seconds` */
    long iters = 1 << 14;
    int threads = 1;
    double t = fma_parallel(isa, iters, &threads);
    while (t < 2e-3 && iters < (1L << 40)) {
        iters *= 4;
        t = fma_parallel(isa, iters, &threads);
    }
    double want = (double)iters * seconds / (t > 1e-9 ? t : 1e-9);
    iters = want < 1.0 ? 1 : want > 1e13 ? (long)1e13 : (long)want;
    t = fma_parallel(isa, iters, &threads);
    double per_iter = isa == LOOP_INT8        ? 64.0
                      : isa == LOOP_INT8_AVX2 ? 32.0
                                              : (double)lanes((mq_isa_t)isa);
    return 2.0 * CHAINS * per_iter * (double)iters * threads / t / 1e9;
}

double mq_peak_fma_sample(mq_isa_t isa, double seconds) {
    return loop_sample((int)isa, seconds);
}

double mq_peak_int8_sample(mq_isa_t isa, double seconds) {
    if (isa == MQ_ISA_SCALAR || !mq_isa_supports_a8(isa)) return 0.0;
    return loop_sample(isa == MQ_ISA_AVX512 ? LOOP_INT8 : LOOP_INT8_AVX2, seconds);
}
