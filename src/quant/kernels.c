/* miniquant: the fused kernels' dispatcher. Packs weights, chooses the instruction set once,
 * quantizes activations for the int8-activation mode, splits output rows across threads, and
 * keeps the packed forms of QuantizedLinears. The arithmetic lives in kernels_<isa>.c. */
#include "miniquant/kernels.h"

#include <cblas.h>
#include <cpuid.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "kernels_isa.h"
#include "miniquant/layers.h"

/* Below this many multiply-adds a forward runs on the calling thread: waking the team costs
 * more than it saves. */
#define PAR_MIN_MACS (1 << 17)

static const char *const ISA_NAMES[MQ_ISA_COUNT] = {"scalar", "avx2", "avx512"};

static const mq_kernel_ops_t *const ISA_OPS[MQ_ISA_COUNT] = {
    &mq_kernels_scalar_ops, &mq_kernels_avx2_ops, &mq_kernels_avx512_ops};

/* ---------------------------------------------------------------------------------------------
 * instruction sets and the selection */

const char *mq_isa_name(mq_isa_t isa) {
    return (int)isa >= 0 && isa < MQ_ISA_COUNT ? ISA_NAMES[isa] : "unknown";
}

int mq_isa_parse(const char *name, mq_isa_t *out, mq_error_t *err) {
    for (int i = 0; name && i < MQ_ISA_COUNT; i++)
        if (!strcmp(name, ISA_NAMES[i])) {
            *out = (mq_isa_t)i;
            return MQ_OK;
        }
    return mq_error_set(err, MQ_ERR_ARG,
                        "unknown kernel version \"%.64s\" (valid: scalar, avx2, "
                        "avx512)",
                        name ? name : "(null)");
}

/* MQ_CPU_HIDE (names separated by commas: avx2, avx512, vnni) makes a version count as
 * missing, so that the fallbacks and the refusals can be exercised on a CPU that has everything. */
static int hidden(const char *name) {
    const char *h = getenv("MQ_CPU_HIDE");
    size_t n = strlen(name);
    for (const char *p = h; p && *p; p += strcspn(p, ","), p += *p == ',')
        if (!strncmp(p, name, n) && (p[n] == ',' || p[n] == '\0')) return 1;
    return 0;
}

/* F16C is CPUID leaf 1, ECX bit 29; clang before 15 has no name for it in
 * __builtin_cpu_supports. Asked once: in a virtual machine CPUID traps to the hypervisor (about
 * 17 us on the KVM guests this was measured on). */
static int g_f16c;
static pthread_once_t g_f16c_once = PTHREAD_ONCE_INIT;
static void detect_f16c(void) {
    unsigned a, b, c, d;
    g_f16c = __get_cpuid(1, &a, &b, &c, &d) && (c & bit_F16C);
}
static int cpu_has_f16c(void) {
    pthread_once(&g_f16c_once, detect_f16c);
    return g_f16c;
}

int mq_isa_supported(mq_isa_t isa) {
    __builtin_cpu_init();
    if ((int)isa > 0 && isa < MQ_ISA_COUNT && hidden(ISA_NAMES[isa])) return 0;
    switch (isa) {
    case MQ_ISA_SCALAR: return 1;
    case MQ_ISA_AVX2:
        return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && cpu_has_f16c();
    case MQ_ISA_AVX512:
        return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
               __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq") &&
               __builtin_cpu_supports("fma") && cpu_has_f16c();
    default: return 0;
    }
}

int mq_isa_supports_a8(mq_isa_t isa) {
    if (isa == MQ_ISA_SCALAR) return 1;
    return isa == MQ_ISA_AVX512 && mq_isa_supported(isa) && __builtin_cpu_supports("avx512vnni") &&
           !hidden("vnni");
}

mq_isa_t mq_isa_best(void) {
    if (mq_isa_supported(MQ_ISA_AVX512)) return MQ_ISA_AVX512;
    if (mq_isa_supported(MQ_ISA_AVX2)) return MQ_ISA_AVX2;
    return MQ_ISA_SCALAR;
}

/* One lock guards the selection and the table of packed QuantizedLinears; both are touched once
 * per forward, never inside the kernels. */
static pthread_mutex_t g_lock = PTHREAD_MUTEX_INITIALIZER;
static struct {
    int done;
    int rc;
    mq_error_t err;
    mq_isa_t isa;
    int a8;
} g_sel;

static int refuse(mq_isa_t isa, int a8, const char *what, mq_error_t *err) {
    if (!mq_isa_supported(isa)) {
        char runs[64] = "scalar";
        for (int i = 1; i < MQ_ISA_COUNT; i++)
            if (mq_isa_supported((mq_isa_t)i)) {
                strcat(runs, ", ");
                strcat(runs, ISA_NAMES[i]);
            }
        return mq_error_set(err, MQ_ERR_UNSUPPORTED,
                            "%s%s: this CPU cannot run the %s kernels (it runs: %s)", what,
                            mq_isa_name(isa), mq_isa_name(isa), runs);
    }
    if (a8 && !mq_isa_supports_a8(isa))
        return mq_error_set(err, MQ_ERR_UNSUPPORTED,
                            "int8 activations (MQ_VNNI=1) need the avx512 kernels on a CPU with "
                            "AVX512-VNNI, or the scalar ones; not %s",
                            mq_isa_name(isa));
    return MQ_OK;
}

static void select_from_env(void) {
    mq_error_t *err = &g_sel.err;
    const char *k = getenv("MQ_KERNEL"), *v = getenv("MQ_VNNI");
    mq_isa_t isa = mq_isa_best();
    int a8 = 0, rc = MQ_OK;
    if (k && *k && strcmp(k, "auto")) {
        rc = mq_isa_parse(k, &isa, err);
        if (rc)
            mq_error_prefix(err, "MQ_KERNEL");
        else
            rc = refuse(isa, 0, "MQ_KERNEL=", err);
    }
    if (rc == MQ_OK && v && *v && strcmp(v, "0")) {
        if (strcmp(v, "1"))
            rc = mq_error_set(err, MQ_ERR_ARG, "MQ_VNNI takes 0 or 1, not \"%.32s\"", v);
        else {
            a8 = 1;
            rc = refuse(isa, 1, "", err);
        }
    }
    g_sel.isa = isa;
    g_sel.a8 = a8;
    g_sel.rc = rc;
    g_sel.done = 1;
}

int mq_kernels_init(mq_error_t *err) {
    pthread_mutex_lock(&g_lock);
    if (!g_sel.done) select_from_env();
    int rc = g_sel.rc;
    if (rc && err) *err = g_sel.err;
    pthread_mutex_unlock(&g_lock);
    return rc;
}

int mq_kernels_select(mq_isa_t isa, int a8, mq_error_t *err) {
    if ((int)isa < 0 || isa >= MQ_ISA_COUNT)
        return mq_error_set(err, MQ_ERR_ARG, "unknown kernel version %d", (int)isa);
    int rc = refuse(isa, a8, "", err);
    if (rc) return rc;
    pthread_mutex_lock(&g_lock);
    g_sel.isa = isa;
    g_sel.a8 = a8 ? 1 : 0;
    g_sel.rc = MQ_OK;
    g_sel.done = 1;
    pthread_mutex_unlock(&g_lock);
    return MQ_OK;
}

mq_isa_t mq_kernels_isa(void) {
    mq_kernels_init(NULL);
    return g_sel.isa;
}

int mq_kernels_a8(void) {
    mq_kernels_init(NULL);
    return g_sel.a8;
}

int mq_kernels_reference_requested(void) {
    const char *r = getenv("MQ_REFERENCE");
    return r && !strcmp(r, "1");
}

/* ---------------------------------------------------------------------------------------------
 * packed weights */

/* 64-byte aligned memory (C11's aligned_alloc wants a multiple of the alignment). */
static void *alloc64(size_t n) {
    return aligned_alloc(64, (n + 63) / 64 * 64);
}

/* Packed codes of at least 2 MiB go on huge pages where the kernel allows it: a decode streams
 * them once, and with 4 KiB pages the hardware prefetcher stops at every page boundary. */
static void *alloc_codes(size_t n) {
    const size_t huge = (size_t)2 << 20;
    if (n < huge) return alloc64(n);
    void *p = aligned_alloc(huge, (n + huge - 1) / huge * huge);
    if (p) madvise(p, (n + huge - 1) / huge * huge, MADV_HUGEPAGE);
    return p;
}

void mq_qpacked_free(mq_qpacked_t *p) {
    if (!p) return;
    free(p->panel);
    free(p->panel_scales);
    memset(p, 0, sizeof *p);
}

/* Copies the codes into panels (kernels.h): int8 codes as they are, or 4-bit indices (code + 8
 * on int grids, whose codes lie in [-8, 7]; the codebook index for nf4). Padding holds weights
 * of 0. */
static int pack_panels(mq_qpacked_t *p, const mq_qweight_t *w, mq_error_t *err) {
    int C = w->cols, R = w->rows, q4 = p->fmt == MQ_KF_Q4, nf4 = p->nf4;
    p->cols64 = 64 * ((C + 63) / 64);
    p->panels = (R + 15) / 16;
    p->nb = C / p->group;
    p->panel_bytes = (size_t)(q4 ? 8 : 16) * (size_t)p->cols64;
    size_t total = p->panel_bytes * (size_t)p->panels;
    size_t n_sc = (size_t)p->panels * (size_t)p->nb * 16;
    p->panel = alloc_codes(total);
    p->panel_scales = alloc64(n_sc * sizeof *p->panel_scales);
    if (!p->panel || !p->panel_scales)
        return mq_error_set(err, MQ_ERR_NOMEM, "cannot allocate %zu bytes of packed codes", total);
    int bad = 0, zero = !q4 ? 0 : nf4 ? 7 : 8;
#pragma omp parallel for schedule(static) reduction(| : bad) if (total >= PAR_MIN_MACS)
    for (int q = 0; q < p->panels; q++) {
        memset(p->panel + (size_t)q * p->panel_bytes, 0, p->panel_bytes);
        for (int r = 0; r < 16; r++) {
            int o = 16 * q + r;
            for (int b = 0; b < p->nb; b++)
                p->panel_scales[((size_t)q * p->nb + (size_t)b) * 16 + (size_t)r] =
                    o < R ? mq_kscale_ptr(p, o)[b] : 0;
            const int8_t *c = o < R ? w->codes + (size_t)o * C : NULL;
            for (int i = 0; i < p->cols64; i++) {
                int v = c && i < C ? c[i] : 0, sh;
                uint8_t *byte = (uint8_t *)mq_panel_byte(p, o, i, &sh);
                if (!q4) {
                    *byte = (uint8_t)v;
                    continue;
                }
                v = c && i < C ? (nf4 ? v : v + 8) : zero;
                bad |= v < 0 || v > 15;
                *byte |= (uint8_t)((v & 15) << sh);
            }
        }
    }
    if (bad)
        return mq_error_set(err, MQ_ERR_ARG, "scheme %.32s: a code lies outside its 4-bit grid",
                            w->scheme.name);
    return MQ_OK;
}

int mq_qpacked_init(mq_qpacked_t *p, const mq_qweight_t *w, mq_error_t *err) {
    if (!p) return mq_error_set(err, MQ_ERR_ARG, "no packed weight to fill");
    memset(p, 0, sizeof *p);
    if (!w || w->rows <= 0 || w->cols <= 0)
        return mq_error_set(err, MQ_ERR_ARG, "cannot pack an empty weight");
    const mq_scheme_t *s = &w->scheme;
    p->scheme = *s;
    p->rows = w->rows;
    p->cols = w->cols;
    p->group = w->cols;
    switch (s->kind) {
    case MQ_QK_FP32:
        p->fmt = MQ_KF_F32;
        p->f32 = w->full;
        break;
    case MQ_QK_FP16:
        p->fmt = MQ_KF_F16;
        p->f16 = w->half;
        break;
    case MQ_QK_INT:
    case MQ_QK_NF4:
        p->fmt = s->kind == MQ_QK_NF4 || s->bits <= 4 ? MQ_KF_Q4 : MQ_KF_Q8;
        p->nf4 = s->kind == MQ_QK_NF4;
        p->scales = w->scales;
        if (s->gran == MQ_QG_GROUP) {
            p->group = s->group;
            p->scale_stride = w->cols / s->group;
        } else {
            p->scale_stride = s->gran == MQ_QG_CHANNEL ? 1 : 0;
        }
        if (!w->scales || !w->codes || w->n_scales != mq_qweight_n_scales(s, w->rows, w->cols))
            return mq_error_set(err, MQ_ERR_ARG, "scheme %.32s: the weight has no codes or scales",
                                s->name);
        break;
    default: return mq_error_set(err, MQ_ERR_ARG, "scheme %.32s: unknown kind", s->name);
    }
    if ((p->fmt == MQ_KF_F32 && !p->f32) || (p->fmt == MQ_KF_F16 && !p->f16))
        return mq_error_set(err, MQ_ERR_ARG, "scheme %.32s: the weight holds no values", s->name);
    if (p->fmt == MQ_KF_Q8 || p->fmt == MQ_KF_Q4) {
        for (int u = 0; u < 16; u++)
            p->lut[u] = p->nf4 ? MQ_NF4_CODEBOOK[u] : (float)(u - 8);
        int rc = pack_panels(p, w, err);
        if (rc) {
            mq_qpacked_free(p);
            return rc;
        }
    }
    int whole_rows = p->group == p->cols;
    p->simd = p->fmt != MQ_KF_F32 && (whole_rows || p->group % 16 == 0);
    p->a8 = (p->fmt == MQ_KF_Q8 || (p->fmt == MQ_KF_Q4 && !p->nf4)) &&
            (whole_rows || p->group % 64 == 0);
    return MQ_OK;
}

size_t mq_qpacked_bytes(const mq_qpacked_t *p) {
    size_t numel = (size_t)p->rows * (size_t)p->cols;
    switch (p->fmt) {
    case MQ_KF_F32: return numel * sizeof(float);
    case MQ_KF_F16: return numel * sizeof(mq_fp16_t);
    default:
        return p->panel_bytes * (size_t)p->panels +
               (size_t)p->panels * (size_t)p->nb * 16 * sizeof(mq_fp16_t);
    }
}

/* ---------------------------------------------------------------------------------------------
 * forward */

/* Quantizes x (N, C) per block of 64 columns (see kernels_isa.h); one allocation. */
static int a8_prepare(const mq_qpacked_t *p, const float *x, int N, mq_a8_t *xa, mq_error_t *err) {
    int C = p->cols, nblk = (C + 63) / 64, off = p->fmt == MQ_KF_Q4 ? 8 : 128;
    size_t nb = (size_t)N * (size_t)nblk;
    size_t bytes = nb * (64 + sizeof(int32_t) + sizeof(float));
    char *mem = alloc64(bytes);
    if (!mem)
        return mq_error_set(err, MQ_ERR_NOMEM, "cannot allocate %zu bytes of int8 activations",
                            bytes);
    xa->N = N;
    xa->nblk = nblk;
    xa->xq = (int8_t *)mem;
    xa->csum = (int32_t *)(mem + nb * 64);
    xa->sx = (float *)(mem + nb * (64 + sizeof(int32_t)));
#pragma omp parallel for schedule(static) if (nb * 64 >= PAR_MIN_MACS)
    for (size_t k = 0; k < nb; k++) {
        const float *xb = x + (k / (size_t)nblk) * (size_t)C + (k % (size_t)nblk) * 64;
        int len = C - (int)(k % (size_t)nblk) * 64;
        if (len > 64) len = 64;
        float amax = 0.0f;
        for (int i = 0; i < len; i++) {
            float a = fabsf(xb[i]);
            amax = a > amax ? a : amax;
        }
        float inv = amax > 0.0f ? 127.0f / amax : 0.0f;
        int8_t *xq = xa->xq + k * 64;
        int32_t sum = 0;
        for (int i = 0; i < 64; i++) {
            float q = i < len ? nearbyintf(xb[i] * inv) : 0.0f;
            xq[i] = q == q ? (int8_t)q : 0; /* a NaN input is not a code */
            sum += xq[i];
        }
        xa->csum[k] = -off * sum;
        xa->sx[k] = amax / 127.0f;
    }
    return MQ_OK;
}

/* fp32 weights: the BLAS baseline. */
static void forward_blas(const mq_qpacked_t *p, const float *bias, float *out, const float *inp,
                         int N) {
    int C = p->cols, OC = p->rows;
    if (N > 1) {
        mq_matmul_forward(out, inp, p->f32, bias, N, C, OC);
        return;
    }
    if (bias) memcpy(out, bias, (size_t)OC * sizeof *out);
    cblas_sgemv(CblasRowMajor, CblasNoTrans, OC, C, 1.0f, p->f32, C, inp, 1, bias ? 1.0f : 0.0f,
                out, 1);
}

int mq_qpacked_forward_with(const mq_qpacked_t *p, mq_isa_t isa, int a8, const float *bias,
                            float *out, const float *inp, int N, mq_error_t *err) {
    if (!p || p->rows <= 0) return mq_error_set(err, MQ_ERR_ARG, "fused forward: no weight");
    if (N < 0) return mq_error_set(err, MQ_ERR_ARG, "fused forward: %d input rows", N);
    if (N == 0) return MQ_OK;
    if ((int)isa < 0 || isa >= MQ_ISA_COUNT)
        return mq_error_set(err, MQ_ERR_ARG, "unknown kernel version %d", (int)isa);
    int rc = refuse(isa, a8, "", err);
    if (rc) return rc;
    if (p->fmt == MQ_KF_F32) {
        forward_blas(p, bias, out, inp, N);
        return MQ_OK;
    }
    const mq_kernel_ops_t *ops = p->simd ? ISA_OPS[isa] : &mq_kernels_scalar_ops;
    mq_a8_t xa = {0};
    int use_a8 = a8 && p->a8 && ops->a8_rows;
    if (use_a8 && (rc = a8_prepare(p, inp, N, &xa, err))) return rc;
    /* Panels read x in chunks of up to 8 columns: pad the rows with zeros when C is not a
     * multiple of 8. Tiles read 8 or 16 x rows at once: rows a multiple of 4 KiB apart would all
     * fall in one set of the L1 cache and evict each other, so they are spaced by 64 more
     * bytes. */
    const float *x = inp;
    float *xpad = NULL;
    int C = p->cols, ldx = C;
    int c8 = (C + 7) / 8 * 8, aliased = N > 1 && (c8 * sizeof(float)) % 4096 == 0;
    int panels = p->fmt == MQ_KF_Q8 || p->fmt == MQ_KF_Q4;
    if (!use_a8 && ((panels && C % 8) || aliased)) {
        ldx = c8 + (aliased ? 16 : 0);
        xpad = calloc((size_t)N * (size_t)ldx, sizeof *xpad);
        if (!xpad) return mq_error_set(err, MQ_ERR_NOMEM, "out of memory");
        for (int n = 0; n < N; n++)
            memcpy(xpad + (size_t)n * ldx, inp + (size_t)n * C, (size_t)C * sizeof *xpad);
        x = xpad;
    }

    /* several x rows: larger blocks, so that x is streamed through the cache once per 128
     * output rows instead of per 32 */
    int OC = p->rows, rows = N > 1 ? 4 * MQ_KROWS : MQ_KROWS, nblk = (OC + rows - 1) / rows;
    double macs = (double)OC * (double)p->cols * (double)N;
#pragma omp parallel for schedule(static) if (macs >= PAR_MIN_MACS && nblk > 1)
    for (int b = 0; b < nblk; b++) {
        int o0 = b * rows, o1 = o0 + rows < OC ? o0 + rows : OC;
        if (use_a8)
            ops->a8_rows(p, &xa, bias, out, o0, o1);
        else
            ops->rows(p, x, ldx, N, bias, out, o0, o1);
    }
    free(xa.xq);
    free(xpad);
    return MQ_OK;
}

int mq_qpacked_forward(const mq_qpacked_t *p, const float *bias, float *out, const float *inp,
                       int N, mq_error_t *err) {
    int rc = mq_kernels_init(err);
    if (rc) return rc;
    return mq_qpacked_forward_with(p, g_sel.isa, g_sel.a8, bias, out, inp, N, err);
}

/* ---------------------------------------------------------------------------------------------
 * QuantizedLinear: the packed forms kept for mq_qlinear_forward, found by the layer's address
 * and checked against the buffers and shape they were built from. */

typedef struct packed_entry {
    const mq_qlinear_t *ql;
    const void *codes, *scales, *half, *full;
    int rows, cols;
    char scheme[32];
    mq_qpacked_t p;
} packed_entry_t;

static packed_entry_t *g_packed;
static int g_n_packed, g_cap_packed;

static int entry_matches(const packed_entry_t *e, const mq_qlinear_t *ql) {
    const mq_qweight_t *w = &ql->w;
    return e->ql == ql && e->codes == (const void *)w->codes &&
           e->scales == (const void *)w->scales && e->half == (const void *)w->half &&
           e->full == (const void *)w->full && e->rows == w->rows && e->cols == w->cols &&
           !strcmp(e->scheme, w->scheme.name);
}

/* Index of ql's entry, -1 if none; with g_lock held. */
static int entry_find(const mq_qlinear_t *ql) {
    for (int i = 0; i < g_n_packed; i++)
        if (g_packed[i].ql == ql) return i;
    return -1;
}

static void entry_remove(int i) {
    mq_qpacked_free(&g_packed[i].p);
    g_packed[i] = g_packed[--g_n_packed];
}

int mq_qlinear_pack(const mq_qlinear_t *ql, mq_error_t *err) {
    if (!ql || ql->w.rows <= 0) return mq_error_set(err, MQ_ERR_ARG, "no QuantizedLinear to pack");
    packed_entry_t e = {ql,         ql->w.codes, ql->w.scales, ql->w.half, ql->w.full,
                        ql->w.rows, ql->w.cols,  {0},          {0}};
    snprintf(e.scheme, sizeof e.scheme, "%s", ql->w.scheme.name);
    int rc = mq_qpacked_init(&e.p, &ql->w, err);
    if (rc) return rc;
    pthread_mutex_lock(&g_lock);
    int i = entry_find(ql);
    if (i >= 0) entry_remove(i);
    if (g_n_packed == g_cap_packed) {
        int cap = g_cap_packed ? 2 * g_cap_packed : 32;
        packed_entry_t *t = realloc(g_packed, (size_t)cap * sizeof *t);
        if (!t) {
            pthread_mutex_unlock(&g_lock);
            mq_qpacked_free(&e.p);
            return mq_error_set(err, MQ_ERR_NOMEM, "out of memory");
        }
        g_packed = t;
        g_cap_packed = cap;
    }
    g_packed[g_n_packed++] = e;
    pthread_mutex_unlock(&g_lock);
    return MQ_OK;
}

void mq_qlinear_unpack(const mq_qlinear_t *ql) {
    pthread_mutex_lock(&g_lock);
    int i = entry_find(ql);
    if (i >= 0) entry_remove(i);
    if (g_n_packed == 0) {
        free(g_packed);
        g_packed = NULL;
        g_cap_packed = 0;
    }
    pthread_mutex_unlock(&g_lock);
}

int mq_qlinear_forward(const mq_qlinear_t *ql, float *out, const float *inp, int N,
                       mq_error_t *err) {
    // out is (N, OC), inp is (N, C), the weight is (OC, C)
    if (!ql || ql->w.rows <= 0) return mq_error_set(err, MQ_ERR_ARG, "QuantizedLinear: no weight");
    if (N < 0) return mq_error_set(err, MQ_ERR_ARG, "QuantizedLinear: %d input rows", N);
    if (N == 0) return MQ_OK;
    int rc = mq_kernels_init(err);
    if (rc) return rc;
    mq_qpacked_t p;
    int kept = 0;
    pthread_mutex_lock(&g_lock);
    int i = entry_find(ql);
    if (i >= 0 && entry_matches(&g_packed[i], ql)) {
        p = g_packed[i].p; /* the buffers stay until mq_qlinear_unpack */
        kept = 1;
    }
    pthread_mutex_unlock(&g_lock);
    if (!kept && (rc = mq_qpacked_init(&p, &ql->w, err))) return rc;
    rc = mq_qpacked_forward_with(&p, g_sel.isa, g_sel.a8, ql->bias, out, inp, N, err);
    if (!kept) mq_qpacked_free(&p);
    return rc;
}
