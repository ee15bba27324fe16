/* miniquant: the fused kernels' dispatcher. Chooses the instruction set once, asks the weight's
 * format row for its kernels, quantizes activations for the int8-activation mode, transposes x
 * for the prompt path, and splits output rows across threads. The arithmetic lives in
 * kernels_<isa>.c. */
#include "miniquant/kernels.h"

#include <cpuid.h>
#include <math.h>
#include <omp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernels_isa.h"
#include "miniquant/layers.h"

/* Below this many multiply-adds a forward runs on the calling thread: waking the team costs
 * more than it saves. */
#define PAR_MIN_MACS (1 << 17)

static const char *const ISA_NAMES[MQ_ISA_COUNT] = {"scalar", "avx2", "avx512"};

/* Each ISA's generic prompt path, for formats whose row gives no gemm of their own. */
static const mq_gemm_panels_fn GEMM_PANELS[MQ_ISA_COUNT] = {NULL, mq_kavx2_gemm_panels,
                                                            mq_kavx512_gemm_panels};
/* The ISAs whose prompt path reads x in tiles, made once per forward. */
static const mq_x_tiles_fn X_TILES[MQ_ISA_COUNT] = {NULL, NULL, mq_kavx512_x_tiles};

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
    if (isa == MQ_ISA_AVX2) return mq_isa_supported(isa); /* vpmaddubsw */
    return isa == MQ_ISA_AVX512 && mq_isa_supported(isa) && __builtin_cpu_supports("avx512vnni") &&
           !hidden("vnni");
}

mq_isa_t mq_isa_best(void) {
    if (mq_isa_supported(MQ_ISA_AVX512)) return MQ_ISA_AVX512;
    if (mq_isa_supported(MQ_ISA_AVX2)) return MQ_ISA_AVX2;
    return MQ_ISA_SCALAR;
}

/* The lock guards the selection, touched once per forward, never inside the kernels. */
static pthread_mutex_t g_lock = PTHREAD_MUTEX_INITIALIZER;
static struct {
    int done;
    int rc;
    mq_error_t err;
    mq_isa_t isa;
    int a8;     /* MQ_A8_* */
    int a8_env; /* 1: MQ_VNNI chose it */
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
                            "int8 activations (MQ_VNNI=1) on the %s kernels need AVX512-VNNI, "
                            "which this CPU lacks (the avx2 and scalar kernels run them without)",
                            mq_isa_name(isa));
    return MQ_OK;
}

static void select_from_env(void) {
    mq_error_t *err = &g_sel.err;
    const char *k = getenv("MQ_KERNEL"), *v = getenv("MQ_VNNI");
    mq_isa_t isa = mq_isa_best();
    int a8 = 0, rc = mq_formats_check(err); /* a table row without its kernels never runs */
    if (rc == MQ_OK && k && *k && strcmp(k, "auto")) {
        rc = mq_isa_parse(k, &isa, err);
        if (rc)
            mq_error_prefix(err, "MQ_KERNEL");
        else
            rc = refuse(isa, 0, "MQ_KERNEL=", err);
    }
    if (rc == MQ_OK && v && *v && strcmp(v, "0")) {
        a8 = !strcmp(v, "1")        ? MQ_A8_ALL
             : !strcmp(v, "prompt") ? MQ_A8_PROMPT
             : !strcmp(v, "serve")  ? MQ_A8_SERVE
                                    : -1;
        if (a8 < 0)
            rc = mq_error_set(err, MQ_ERR_ARG, "MQ_VNNI takes 0, 1, prompt or serve, not \"%.32s\"",
                              v);
        else
            rc = refuse(isa, 1, "", err);
    }
    g_sel.isa = isa;
    g_sel.a8 = a8;
    g_sel.a8_env = v && *v;
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
    if (a8 < MQ_A8_OFF || a8 > MQ_A8_SERVE)
        return mq_error_set(err, MQ_ERR_ARG, "unknown int8-activation mode %d", a8);
    int rc = refuse(isa, a8, "", err);
    if (rc) return rc;
    pthread_mutex_lock(&g_lock);
    g_sel.isa = isa;
    g_sel.a8 = a8;
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

int mq_kernels_serving(void) {
    if (mq_kernels_init(NULL)) return MQ_A8_OFF;
    pthread_mutex_lock(&g_lock);
    if (!g_sel.a8_env && mq_isa_supports_a8(g_sel.isa) && g_sel.isa != MQ_ISA_SCALAR)
        g_sel.a8 = MQ_A8_SERVE;
    int a8 = g_sel.a8;
    pthread_mutex_unlock(&g_lock);
    return a8;
}

/* Appends the names of the formats whose kernels on isa have a8 (one_row 0), only a8_dot (one_row
 * 2: prompts of up to MQ_A8_DOT_ROWS rows) or, for one x row in mode a8, the int8 kernel it
 * takes (one_row 1). */
static size_t list_a8_formats(mq_isa_t isa, int a8, int one_row, char *buf, size_t cap, size_t n) {
    int any = 0;
    for (int i = 0; MQ_FORMATS[i]; i++) {
        const mq_format_kernels_t *k = &MQ_FORMATS[i]->kernels[isa];
        int takes = one_row == 1   ? k->a8_dot || (a8 == MQ_A8_ALL && k->a8)
                    : one_row == 2 ? k->a8_dot && !k->a8
                                   : k->a8 != NULL;
        if (!takes || k->forward || n >= cap) continue;
        n += (size_t)snprintf(buf + n, cap - n, "%s%s", any ? ", " : "", MQ_FORMATS[i]->name);
        any = 1;
    }
    if (!any && n < cap) n += (size_t)snprintf(buf + n, cap - n, "no format");
    return n;
}

const char *mq_kernels_a8_about(int a8, char *buf, size_t cap) {
    mq_isa_t isa = mq_kernels_isa();
    size_t n = 0;
    if (!cap) return buf;
    buf[0] = '\0';
    if (a8 <= MQ_A8_OFF || a8 > MQ_A8_SERVE || !mq_isa_supports_a8(isa)) {
        snprintf(buf, cap, "FP32");
        return buf;
    }
    char all[160], few[160]; /* formats with a panel kernel, and with only the one-row one */
    int has_all = list_a8_formats(isa, a8, 0, all, sizeof all, 0) && strcmp(all, "no format");
    int has_few = list_a8_formats(isa, a8, 2, few, sizeof few, 0) && strcmp(few, "no format");
    n += (size_t)snprintf(buf, cap, "int8 (%s) in prompts",
                          isa == MQ_ISA_AVX512 ? "VNNI"
                          : isa == MQ_ISA_AVX2 ? "vpmaddubsw"
                                               : "scalar");
    if (has_all || !has_few) n += (size_t)snprintf(buf + n, cap - n, " for %s", all);
    if (has_few && n < cap)
        n += (size_t)snprintf(buf + n, cap - n, "%s of up to %d rows for %s", has_all ? "," : "",
                              MQ_A8_DOT_ROWS, few);
    if (a8 != MQ_A8_PROMPT && n < cap) {
        n += (size_t)snprintf(buf + n, cap - n, "; in decode for ");
        n = list_a8_formats(isa, a8, 1, buf, cap, n);
    }
    if (n < cap) snprintf(buf + n, cap - n, "; FP32 otherwise");
    return buf;
}

int mq_kernels_reference_requested(void) {
    const char *r = getenv("MQ_REFERENCE");
    return r && !strcmp(r, "1");
}

/* ---------------------------------------------------------------------------------------------
 * forward */

/* Whether one x row of w on isa runs the row's own dot kernel rather than its forward. */
static int one_row_dot(const mq_qweight_t *w, mq_isa_t isa) {
    const mq_format_kernels_t *k = &w->format->kernels[isa];
    return !k->forward || (k->dot && k->dot != w->format->kernels[MQ_ISA_SCALAR].dot);
}

int mq_format_takes_a8(const mq_format_t *f, mq_isa_t isa) {
    if (!f || (int)isa < 0 || isa >= MQ_ISA_COUNT) return 0;
    const mq_format_kernels_t *k = &f->kernels[isa];
    return k->a8 != NULL || k->a8_dot != NULL;
}

int mq_qweight_takes_a8(const mq_qweight_t *w, mq_isa_t isa) {
    return mq_format_takes_a8(w->format, isa);
}

/* Bytes of x (N, C) in the int8-activation form. */
static size_t a8_bytes(int C, int N) {
    size_t nb = (size_t)N * (size_t)((C + MQ_QBLOCK - 1) / MQ_QBLOCK);
    return nb * (MQ_QBLOCK + 3 * sizeof(int32_t) + sizeof(float));
}

/* The int8-activation form of N rows of C columns laid out in mem (a8_bytes). */
static void a8_view(int C, int N, char *mem, mq_a8_t *xa) {
    int nblk = (C + MQ_QBLOCK - 1) / MQ_QBLOCK;
    size_t nb = (size_t)N * (size_t)nblk;
    xa->N = N;
    xa->nblk = nblk;
    xa->xq = (int8_t *)mem;
    xa->xsum = (int32_t *)(mem + nb * MQ_QBLOCK);
    xa->sx = (float *)(mem + nb * (MQ_QBLOCK + sizeof(int32_t)));
    xa->xsum16 = (int32_t *)(mem + nb * (MQ_QBLOCK + sizeof(int32_t) + sizeof(float)));
}

/* One x row of C columns in the int8-activation form (kernels_isa.h): block k's codes at
 * xq + 32 k, its sums at xsum[k] and xsum16[2k], xsum16[2k + 1], its scale at sx[k]. */
static void a8_row_scalar(const float *x, int C, int8_t *xq, int32_t *xsum, int32_t *xsum16,
                          float *sx) {
    for (int k = 0; k * MQ_QBLOCK < C; k++) {
        const float *xb = x + (size_t)k * MQ_QBLOCK;
        int len = C - k * MQ_QBLOCK;
        if (len > MQ_QBLOCK) len = MQ_QBLOCK;
        float amax = 0.0f;
        for (int i = 0; i < len; i++) {
            float a = fabsf(xb[i]);
            amax = a > amax ? a : amax;
        }
        float inv = amax > 0.0f ? 127.0f / amax : 0.0f;
        int8_t *q = xq + (size_t)k * MQ_QBLOCK;
        int32_t sum[2] = {0, 0};
        for (int i = 0; i < MQ_QBLOCK; i++) {
            float v = i < len ? nearbyintf(xb[i] * inv) : 0.0f;
            q[i] = v == v ? (int8_t)v : 0; /* a NaN input is not a code */
            sum[i / 16] += q[i];
        }
        xsum[k] = sum[0] + sum[1];
        xsum16[2 * k] = sum[0];
        xsum16[2 * k + 1] = sum[1];
        sx[k] = amax / 127.0f;
    }
}

void mq_a8_quantize_row(mq_isa_t isa, const float *x, int C, int8_t *xq, int32_t *xsum,
                        int32_t *xsum16, float *sx) {
    if (isa == MQ_ISA_AVX512 && mq_isa_supported(MQ_ISA_AVX512))
        mq_kavx512_a8_row(x, C, xq, xsum, xsum16, sx);
    else
        a8_row_scalar(x, C, xq, xsum, xsum16, sx);
}

/* Row n of x (N, C) into xa as isa does. */
static void a8_quantize_one(mq_isa_t isa, int C, const float *x, mq_a8_t *xa, int n) {
    size_t k = (size_t)n * (size_t)xa->nblk;
    mq_a8_quantize_row(isa, x + (size_t)n * C, C, xa->xq + k * MQ_QBLOCK, xa->xsum + k,
                       xa->xsum16 + 2 * k, xa->sx + k);
}

/* Quantizes x (N, C) into xa (kernels_isa.h) as isa does: rows in parallel when large, else on
 * the calling thread without opening a region (an OpenMP region even with if(0) sets up a team,
 * which inside the decode step's own region, once per Linear and thread, cost more than the
 * quantization). */
static void a8_quantize(mq_isa_t isa, int C, const float *x, mq_a8_t *xa) {
    if ((size_t)xa->N * (size_t)C < PAR_MIN_MACS) {
        for (int n = 0; n < xa->N; n++)
            a8_quantize_one(isa, C, x, xa, n);
        return;
    }
#pragma omp parallel for schedule(static)
    for (int n = 0; n < xa->N; n++)
        a8_quantize_one(isa, C, x, xa, n);
}

/* x (N, C) in the int8-activation form; one allocation (free xa->xq). */
static int a8_prepare(mq_isa_t isa, int C, const float *x, int N, mq_a8_t *xa, mq_error_t *err) {
    size_t bytes = a8_bytes(C, N);
    char *mem = mq_alloc_lines(bytes, 0);
    if (!mem)
        return mq_error_set(err, MQ_ERR_NOMEM, "cannot allocate %zu bytes of int8 activations",
                            bytes);
    a8_view(C, N, mem, xa);
    a8_quantize(isa, C, x, xa);
    return MQ_OK;
}

int mq_qweight_forward_with(const mq_qweight_t *w, mq_isa_t isa, int a8, const float *bias,
                            float *out, const float *inp, int N, mq_error_t *err) {
    if (!w || w->rows <= 0 || !w->data)
        return mq_error_set(err, MQ_ERR_ARG, "fused forward: no weight");
    if (N < 0) return mq_error_set(err, MQ_ERR_ARG, "fused forward: %d input rows", N);
    if (N == 0) return MQ_OK;
    if ((int)isa < 0 || isa >= MQ_ISA_COUNT)
        return mq_error_set(err, MQ_ERR_ARG, "unknown kernel version %d", (int)isa);
    int rc = refuse(isa, a8, "", err);
    if (rc) return rc;
    const mq_format_kernels_t *k = &w->format->kernels[isa];
    if (k->forward && !(N == 1 && one_row_dot(w, isa))) {
        k->forward(w, bias, out, inp, N);
        return MQ_OK;
    }
    int C = w->cols, OC = w->rows;
    mq_a8_t xa = {0};
    /* a few x rows take the format's one-row int8 kernel where it has one, row by row */
    mq_a8_fn a8_kernel = N <= MQ_A8_DOT_ROWS && k->a8_dot ? k->a8_dot : k->a8;
    int use_a8 = a8 && a8_kernel;
    /* panels take scale blocks of whole rows or 16s; other groups run the scalar reference */
    int panel_ok = w->group == C || w->group % 16 == 0;
    mq_gemm_panels_fn panels = N > 1 && !use_a8 && !k->gemm && panel_ok ? GEMM_PANELS[isa] : NULL;
    if (use_a8 && (rc = a8_prepare(isa, C, inp, N, &xa, err))) return rc;
    uint8_t *ab = NULL;
    if (use_a8 && !(ab = mq_alloc_lines((size_t)omp_get_max_threads() * MQ_A8_SCRATCH(C), 0))) {
        free(xa.xq);
        return mq_error_set(err, MQ_ERR_NOMEM, "fused forward: out of memory for int8 panels");
    }
    const float *x = inp, *xdot = inp;
    float *xpad = NULL, *wb = NULL, *xprep = NULL, *xt = NULL;
    if (N == 1 && !use_a8 && k->prep) { /* once for every row the dot kernel runs */
        if (!(xprep = malloc((size_t)C * sizeof *xprep))) {
            free(xa.xq);
            return mq_error_set(err, MQ_ERR_NOMEM, "fused forward: out of memory for x");
        }
        k->prep(w, inp, xprep);
        xdot = xprep;
    }
    int ldx = C, rows = N > 1 ? 4 * MQ_KROWS : MQ_KROWS;
    if (panels) {
        /* x rows a multiple of 4 KiB apart would all fall in one set of the L1 cache and evict
         * each other as a tile reads 16 of them: they are spaced by 64 more bytes */
        if (((size_t)C * sizeof(float)) % 4096 == 0) {
            ldx = C + 16;
            xpad = malloc((size_t)N * (size_t)ldx * sizeof *xpad);
            for (int n = 0; xpad && n < N; n++)
                memcpy(xpad + (size_t)n * ldx, inp + (size_t)n * C, (size_t)C * sizeof *xpad);
            x = xpad;
        }
        wb = mq_alloc_lines((size_t)omp_get_max_threads() * MQ_PANEL_SCRATCH(rows, C) * sizeof *wb,
                            0);
        if (X_TILES[isa]) /* a copy per thread: no line of it is written by one core, read by
                             another */
            xt = mq_alloc_lines((size_t)omp_get_max_threads() * (size_t)N * (size_t)C * sizeof *xt,
                                0);
        if (!wb || (ldx != C && !xpad) || (X_TILES[isa] && !xt)) {
            free(xt);
            free(xa.xq);
            free(xpad);
            free(wb);
            return mq_error_set(err, MQ_ERR_NOMEM, "fused forward: out of memory for panels");
        }
    }

    /* several x rows: larger blocks, so that x is streamed through the cache once per 128
     * output rows instead of per 32 */
    int nblk = (OC + rows - 1) / rows;
    double macs = (double)OC * (double)C * (double)N;
#pragma omp parallel if (macs >= PAR_MIN_MACS && nblk > 1)
    {
        float *xtt = xt ? xt + (size_t)omp_get_thread_num() * (size_t)N * (size_t)C : NULL;
        if (xt) X_TILES[isa](x, ldx, N, C, xtt); /* x in tiles, once per thread */
#pragma omp for schedule(static) nowait
        for (int b = 0; b < nblk; b++) {
            int o0 = b * rows, o1 = o0 + rows < OC ? o0 + rows : OC;
            if (use_a8)
                a8_kernel(w, &xa, out, o0, o1,
                          ab + (size_t)omp_get_thread_num() * MQ_A8_SCRATCH(C));
            else if (N == 1)
                k->dot(w, xdot, out, o0, o1);
            else if (panels)
                panels(w, x, ldx, xtt, N, out, o0, o1,
                       wb + (size_t)omp_get_thread_num() * MQ_PANEL_SCRATCH(rows, C));
            else
                (k->gemm ? k->gemm : w->format->kernels[MQ_ISA_SCALAR].gemm)(w, inp, C, N, out, o0,
                                                                             o1);
            if (bias)
                for (int n = 0; n < N; n++)
                    for (int o = o0; o < o1; o++)
                        out[(size_t)n * OC + o] += bias[o];
        }
    }
    free(xa.xq);
    free(ab);
    free(xpad);
    free(wb);
    free(xt);
    free(xprep);
    return MQ_OK;
}

int mq_qweight_forward(const mq_qweight_t *w, const float *bias, float *out, const float *inp,
                       int N, mq_error_t *err) {
    int rc = mq_kernels_init(err);
    if (rc) return rc;
    int a8 = g_sel.a8 == MQ_A8_ALL || (g_sel.a8 >= MQ_A8_PROMPT && N > 1) ||
             (g_sel.a8 == MQ_A8_SERVE && w && w->format && w->format->kernels[g_sel.isa].a8_dot);
    return mq_qweight_forward_with(w, g_sel.isa, a8, bias, out, inp, N, err);
}

int mq_qlinear_forward(const mq_qlinear_t *ql, float *out, const float *inp, int N,
                       mq_error_t *err) {
    // out is (N, OC), inp is (N, C), the weight is (OC, C)
    if (!ql || ql->w.rows <= 0) return mq_error_set(err, MQ_ERR_ARG, "QuantizedLinear: no weight");
    return mq_qweight_forward(&ql->w, ql->bias, out, inp, N, err);
}

/* ---------------------------------------------------------------------------------------------
 * F32 weights: OpenBLAS, the baseline */

void mq_kblas_forward(const mq_qweight_t *w, const float *bias, float *out, const float *inp,
                      int N) {
    int C = w->cols, OC = w->rows;
    const float *W = (const float *)w->data;
    if (N > 1) {
        mq_matmul_forward(out, inp, W, bias, N, C, OC);
        return;
    }
    mq_matvec_rows(out, inp, W, bias, C, 0, OC);
}

/* ---------------------------------------------------------------------------------------------
 * the decode step's form (model.h's mq_step_linear_t): one x row, the dispatcher's N = 1 path
 * above cut into each thread's rows. mode: the ISA, plus 256 for int8 activations. */

enum { STEP_A8 = 256 };

static void step_prep(const mq_step_linear_t *s, const float *x, void *prep) {
    const mq_qweight_t *w = s->w;
    if (s->mode & STEP_A8) {
        mq_a8_t xa;
        a8_view(w->cols, 1, prep, &xa);
        a8_quantize((mq_isa_t)(s->mode & (STEP_A8 - 1)), w->cols, x, &xa); /* one row */
    } else
        w->format->kernels[s->mode].prep(w, x, prep);
}

static void step_rows(const mq_step_linear_t *s, const float *x, const void *prep, float *out,
                      int o0, int o1, void *scratch) {
    const mq_qweight_t *w = s->w;
    const mq_format_kernels_t *k = &w->format->kernels[s->mode & (STEP_A8 - 1)];
    if (s->mode & STEP_A8) {
        mq_a8_t xa;
        a8_view(w->cols, 1, (char *)prep, &xa);
        (k->a8_dot ? k->a8_dot : k->a8)(w, &xa, out, o0, o1, scratch);
    } else if (!one_row_dot(w, s->mode)) { /* F32 on the scalar version: OpenBLAS, on the
                                               calling thread inside a parallel region, the bias
                                               added as mq_kblas_forward adds it */
        mq_matvec_rows(out, x, (const float *)w->data, s->bias, w->cols, o0, o1);
        return;
    } else
        k->dot(w, prep ? prep : x, out, o0, o1);
    if (s->bias)
        for (int o = o0; o < o1; o++)
            out[o] += s->bias[o];
}

int mq_qweight_step(const mq_qweight_t *w, const float *bias, mq_step_linear_t *out,
                    mq_error_t *err) {
    if (!w || w->rows <= 0 || !w->data)
        return mq_error_set(err, MQ_ERR_ARG, "decode step: no weight");
    int rc = mq_kernels_init(err);
    if (rc) return rc;
    mq_isa_t isa = g_sel.isa;
    const mq_format_kernels_t *k = &w->format->kernels[isa];
    int a8 = !k->forward && ((g_sel.a8 == MQ_A8_ALL && (k->a8 || k->a8_dot)) ||
                             (g_sel.a8 == MQ_A8_SERVE && k->a8_dot)); /* one x row */
    *out = (mq_step_linear_t){.w = w,
                              .bias = bias,
                              .mode = (int)isa | (a8 ? STEP_A8 : 0),
                              .a8 = a8,
                              .out_rows = w->rows,
                              .cols = w->cols,
                              .granule = MQ_KROWS,
                              .rows = step_rows};
    if (a8) {
        out->prep = step_prep;
        out->prep_bytes = a8_bytes(w->cols, 1);
        out->thread_bytes = MQ_A8_SCRATCH(w->cols);
    } else if (!k->forward && k->prep) {
        out->prep = step_prep;
        out->prep_bytes = (size_t)w->cols * sizeof(float);
    }
    return MQ_OK;
}
