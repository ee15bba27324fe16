/* miniquant: this machine's roofline (ceilings measured here), the cost of a MiniGPT decode
 * step, and the plot that puts the two together. The FMA loops are in roofline_fma.c. */
#include "miniquant/roofline.h"

#include <cblas.h>
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "miniquant/arch.h"
#include "miniquant/report.h"

size_t mq_llc_bytes(void) {
    size_t best = 0;
    for (int i = 0; i < 8; i++) {
        char path[96];
        snprintf(path, sizeof path, "/sys/devices/system/cpu/cpu0/cache/index%d/size", i);
        FILE *f = fopen(path, "r");
        if (!f) continue;
        unsigned long v = 0;
        char unit = 0;
        if (fscanf(f, "%lu%c", &v, &unit) >= 1) {
            size_t b = v * (unit == 'K' ? 1024ul : unit == 'M' ? 1024ul * 1024 : 1ul);
            if (b > best) best = b;
        }
        fclose(f);
    }
    if (best) return best;
    long l3 = sysconf(_SC_LEVEL3_CACHE_SIZE);
    return l3 > 0 ? (size_t)l3 : (size_t)32 << 20;
}

/* ---------------------------------------------------------------------------------------------
 * bandwidth */

int mq_stream_init(mq_stream_t *s, size_t working_set, mq_error_t *err) {
    size_t n = working_set / 3 / sizeof(float);
    if (n < 1024) n = 1024;
    s->n = n;
    s->a = malloc(n * sizeof(float));
    s->b = malloc(n * sizeof(float));
    s->c = malloc(n * sizeof(float));
    if (!s->a || !s->b || !s->c) {
        mq_stream_free(s);
        return mq_error_set(err, MQ_ERR_NOMEM,
                            "cannot allocate 3 arrays of %zu MiB for the "
                            "bandwidth",
                            (n * sizeof(float)) >> 20);
    }
    long nl = (long)n;
    float *a = s->a, *b = s->b, *c = s->c;
#pragma omp parallel for schedule(static)
    for (long i = 0; i < nl; i++) {
        a[i] = 0.0f;
        b[i] = 1.0f;
        c[i] = 2.0f;
    }
    return MQ_OK;
}

void mq_stream_free(mq_stream_t *s) {
    free(s->a);
    free(s->b);
    free(s->c);
    memset(s, 0, sizeof *s);
}

double mq_stream_triad(mq_stream_t *s, int passes) {
    long n = (long)s->n;
    float *a = s->a, q = 0.5f;
    const float *b = s->b, *c = s->c;
    double t0 = mq_now();
    for (int p = 0; p < passes; p++) {
#pragma omp parallel for simd schedule(static)
        for (long i = 0; i < n; i++)
            a[i] = b[i] + q * c[i];
    }
    double t = mq_now() - t0;
    return 3.0 * (double)n * sizeof(float) * passes / (t > 1e-12 ? t : 1e-12) / 1e9;
}

/* 16 floats as one vector (GCC's vector extension: one AVX-512 register, two AVX ones, or
 * scalar code, whichever the build targets). */
typedef float v16 __attribute__((vector_size(64)));

/* Sums a into four vectors of 16 lanes kept in registers (independent chains, so neither the
 * adds' latency nor a store to memory bounds the read). */
static float sum_lanes(const float *a, long n) {
    float total = 0.0f;
    long blocks = n / 64;
#pragma omp parallel reduction(+ : total)
    {
        v16 acc0 = {0}, acc1 = {0}, acc2 = {0}, acc3 = {0}, x0, x1, x2, x3;
#pragma omp for schedule(static)
        for (long b = 0; b < blocks; b++) {
            const float *p = a + b * 64;
            memcpy(&x0, p, sizeof x0);
            memcpy(&x1, p + 16, sizeof x1);
            memcpy(&x2, p + 32, sizeof x2);
            memcpy(&x3, p + 48, sizeof x3);
            acc0 += x0;
            acc1 += x1;
            acc2 += x2;
            acc3 += x3;
        }
        v16 acc = (acc0 + acc1) + (acc2 + acc3);
        for (int j = 0; j < 16; j++)
            total += acc[j];
    }
    for (long i = blocks * 64; i < n; i++)
        total += a[i];
    return total;
}

double mq_stream_read(mq_stream_t *s, int passes) {
    long n = (long)s->n;
    float total = 0.0f;
    double t0 = mq_now();
    for (int p = 0; p < passes; p++)
        total += sum_lanes(s->a, n);
    double t = mq_now() - t0;
    if (total < 0.0f) fprintf(stderr, "%g", (double)total); /* keeps the sums alive */
    return (double)n * sizeof(float) * passes / (t > 1e-12 ? t : 1e-12) / 1e9;
}

/* Passes of a triad that last about `seconds` (after one untimed pass that warms up). */
static int stream_passes(mq_stream_t *s, double seconds) {
    mq_stream_triad(s, 1);
    double gbs = mq_stream_triad(s, 1);
    double t = 3.0 * (double)s->n * sizeof(float) / (gbs * 1e9);
    double p = seconds / (t > 1e-9 ? t : 1e-9);
    return p < 1.0 ? 1 : p > 1e6 ? 1000000 : (int)p;
}

/* ---------------------------------------------------------------------------------------------
 * the ceilings */

static mq_ceiling_opts_t resolve_opts(const mq_ceiling_opts_t *o, size_t llc) {
    mq_ceiling_opts_t r = o ? *o : (mq_ceiling_opts_t){0};
    if (r.reps < 1) r.reps = 7;
    if (r.fma_seconds <= 0.0) r.fma_seconds = 0.1;
    if (r.sgemm_n < 1) r.sgemm_n = 2048;
    if (!r.dram_bytes) {
        r.dram_bytes = 8 * llc;
        if (r.dram_bytes < ((size_t)256 << 20)) r.dram_bytes = (size_t)256 << 20;
    }
    if (!r.cache_bytes) r.cache_bytes = llc / 2;
    if (r.stream_seconds <= 0.0) r.stream_seconds = 0.05;
    return r;
}

/* figures sampled per repetition: the FMA and int8 peaks, sgemm, DRAM (triad and read), in-cache
 * (both) */
#define STEPS_PER_REP 4

int64_t mq_ceilings_steps(const mq_ceiling_opts_t *opts) {
    return (int64_t)STEPS_PER_REP * resolve_opts(opts, 1).reps;
}

int mq_ceilings_measure(mq_ceilings_t *c, const mq_ceiling_opts_t *opts, mq_progress_t *prog,
                        mq_error_t *err) {
    memset(c, 0, sizeof *c);
    c->llc_bytes = mq_llc_bytes();
    mq_ceiling_opts_t o = resolve_opts(opts, c->llc_bytes);
    c->threads = omp_get_max_threads();
    c->isa = mq_isa_best();
    c->int8_isa = mq_kernels_isa(); /* the int8 products the kernels in force run */
    c->sgemm_n = o.sgemm_n;
    c->reps = o.reps;
    size_t nn = (size_t)o.sgemm_n * (size_t)o.sgemm_n;
    float *A = malloc(nn * sizeof *A), *B = malloc(nn * sizeof *B), *Cm = malloc(nn * sizeof *Cm);
    double *peak = calloc((size_t)o.reps * 7, sizeof *peak);
    mq_stream_t dram = {0}, cache = {0};
    int rc = MQ_OK;
    if (!A || !B || !Cm || !peak)
        rc = mq_error_set(err, MQ_ERR_NOMEM, "cannot allocate the %d x %d sgemm operands",
                          o.sgemm_n, o.sgemm_n);
    if (rc == MQ_OK) rc = mq_stream_init(&dram, o.dram_bytes, err);
    if (rc == MQ_OK) rc = mq_stream_init(&cache, o.cache_bytes, err);
    if (rc == MQ_OK) {
        double *gemm = peak + o.reps, *dt = gemm + o.reps, *dr = dt + o.reps, *ct = dr + o.reps,
               *cr = ct + o.reps, *peak8 = cr + o.reps;
        for (size_t i = 0; i < nn; i++) {
            A[i] = (float)((i * 7) % 13) * 0.01f;
            B[i] = (float)((i * 5) % 11) * 0.01f;
        }
        int n = o.sgemm_n;
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, n, n, 1.0f, A, n, B, n, 0.0f, Cm,
                    n); /* warm-up: threads started, pages touched */
        int dpass = stream_passes(&dram, o.stream_seconds);
        int cpass = stream_passes(&cache, o.stream_seconds);
        int64_t done = prog ? prog->done : 0;
        /* the figures take turns in every repetition, so a noisy spell hits all of them */
        for (int r = 0; r < o.reps; r++) {
            peak[r] = mq_peak_fma_sample(c->isa, o.fma_seconds);
            peak8[r] = mq_peak_int8_sample(c->int8_isa, o.fma_seconds);
            if (prog) mq_progress_update(prog, ++done, NULL);
            double t0 = mq_now();
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, n, n, 1.0f, A, n, B, n, 0.0f,
                        Cm, n);
            gemm[r] = 2.0 * (double)n * n * n / (mq_now() - t0) / 1e9;
            if (prog) mq_progress_update(prog, ++done, NULL);
            dt[r] = mq_stream_triad(&dram, dpass);
            dr[r] = mq_stream_read(&dram, dpass);
            if (prog) mq_progress_update(prog, ++done, NULL);
            ct[r] = mq_stream_triad(&cache, cpass);
            cr[r] = mq_stream_read(&cache, cpass);
            if (prog) mq_progress_update(prog, ++done, NULL);
        }
        c->peak_gflops = mq_median(peak, o.reps);
        c->peak_int8_gops = mq_median(peak8, o.reps);
        c->sgemm_gflops = mq_median(gemm, o.reps);
        c->dram_triad_gbs = mq_median(dt, o.reps);
        c->dram_read_gbs = mq_median(dr, o.reps);
        c->cache_triad_gbs = mq_median(ct, o.reps);
        c->cache_read_gbs = mq_median(cr, o.reps);
        c->dram_bytes = 3 * dram.n * sizeof(float);
        c->cache_bytes = 3 * cache.n * sizeof(float);
    }
    mq_stream_free(&dram);
    mq_stream_free(&cache);
    free(A);
    free(B);
    free(Cm);
    free(peak);
    return rc;
}

const char *mq_int8_loop_name(mq_isa_t isa) {
    return isa == MQ_ISA_AVX512 ? "vpdpbusd"
           : isa == MQ_ISA_AVX2 ? "vpmaddubsw + vpmaddwd"
                                : "none";
}

double mq_compute_roof(const mq_ceilings_t *c, double flops_fp32, double flops_int8) {
    if (!(flops_int8 > 0.0) || !(c->peak_int8_gops > 0.0)) return c->peak_gflops;
    double t = flops_fp32 / c->peak_gflops + flops_int8 / c->peak_int8_gops;
    return (flops_fp32 + flops_int8) / t;
}

/* ---------------------------------------------------------------------------------------------
 * the decode step's FLOPs and bytes, walked in the order the step runs (src/model/decode.c) */

typedef struct walk {
    mq_decode_cost_t *c;
    const mq_scheme_t *s;
    int bad_group; /* a Linear input width the scheme's group does not divide */
} walk_t;

#define F32 ((int64_t)sizeof(float))

/* Bytes of an OC x C weight as stored, which the fused kernels read (see the header). */
static int64_t weight_bytes(walk_t *w, int64_t OC, int64_t C) {
    const mq_scheme_t *s = w->s;
    const mq_format_t *f = mq_format_for(s, (int)C, NULL);
    if (!f) {
        w->bad_group = (int)C;
        return 0;
    }
    int64_t side = f->side_scales ? 2 * (int64_t)mq_scheme_n_scales(s, (int)OC, (int)C) : 0;
    return OC * (int64_t)f->row_bytes(s, (int)C) + side;
}

static void linear(walk_t *w, int64_t OC, int64_t C, int has_bias) {
    mq_decode_cost_t *c = w->c;
    c->flops_linear += 2 * C * OC + (has_bias ? OC : 0);
    c->bytes_weights += weight_bytes(w, OC, C);
    if (has_bias) c->bytes_params += F32 * OC;
    c->bytes_activations += F32 * (C + OC);
}

static void layernorm(walk_t *w, int64_t C) {
    w->c->flops_other += 8 * C;
    w->c->bytes_params += F32 * 2 * C;
    w->c->bytes_activations += F32 * 2 * C;
}

static void residual(walk_t *w, int64_t C) {
    w->c->flops_other += C;
    w->c->bytes_activations += F32 * 3 * C;
}

int mq_decode_cost(const mq_gpt_config_t *cfg, const mq_scheme_t *s, int context,
                   mq_decode_cost_t *out, mq_error_t *err) {
    memset(out, 0, sizeof *out);
    int rc = mq_gpt_config_check(cfg, err);
    if (rc) return rc;
    if (context < 1 || context > cfg->n_ctx)
        return mq_error_set(err, MQ_ERR_ARG, "decode cost: context %d is outside [1, %d]", context,
                            cfg->n_ctx);
    int64_t C = cfg->n_embd, NH = cfg->n_head, V = cfg->vocab_size, T = context;
    int64_t KV = mq_arch_dim(cfg, MQ_DIM_KV), F = mq_arch_dim(cfg, MQ_DIM_F);
    int gpt2 = cfg->arch == MQ_ARCH_GPT2;
    walk_t w = {out, s, 0};
    out->context = context;
    /* the token's (and gpt2's position's) embedding rows, added */
    out->bytes_embedding = (gpt2 ? 2 : 1) * C * (s->family->embeddings_f16 ? 2 : F32);
    out->flops_other += C;
    out->bytes_activations += F32 * C;
    for (int l = 0; l < cfg->n_layer; l++) {
        layernorm(&w, C); /* RMSNorm costs about as much */
        if (gpt2) {
            linear(&w, 3 * C, C, 1);
        } else {
            linear(&w, C, C, 0);
            linear(&w, KV, C, 0);
            linear(&w, KV, C, 0);
            out->flops_other += 3 * (C + KV); /* RoPE: a 2 x 2 rotation per pair */
            out->bytes_activations += F32 * 2 * (C + KV);
        }
        /* attention: the new key and value into the cache, T of each read back */
        out->flops_attention += 4 * T * C + 5 * NH * T + C + NH;
        out->bytes_kv += F32 * (2 * KV + 2 * T * KV);
        out->bytes_activations += F32 * 4 * C;
        linear(&w, C, C, gpt2);
        residual(&w, C);
        layernorm(&w, C);
        if (gpt2) {
            linear(&w, F, C, 1);
            out->flops_other += 9 * F; /* GELU */
            out->bytes_activations += F32 * 2 * F;
        } else {
            linear(&w, F, C, 0);
            linear(&w, F, C, 0);
            out->flops_other += 7 * F; /* SwiGLU: silu(gate) * up */
            out->bytes_activations += F32 * 3 * F;
        }
        linear(&w, C, F, gpt2);
        residual(&w, C);
    }
    layernorm(&w, C);
    linear(&w, V, C, 0);
    if (w.bad_group)
        return mq_error_set(err, MQ_ERR_ARG,
                            "decode cost: scheme %.32s: group %d does not divide the Linear "
                            "input width %d",
                            s->name, s->group, w.bad_group);
    out->flops = out->flops_linear + out->flops_attention + out->flops_other;
    out->bytes = out->bytes_weights + out->bytes_params + out->bytes_embedding + out->bytes_kv +
                 out->bytes_activations;
    out->intensity = (double)out->flops / (double)out->bytes;
    return MQ_OK;
}

/* ---------------------------------------------------------------------------------------------
 * timing the decode step */

static int argmax(const float *v, int n) {
    int best = 0;
    for (int i = 1; i < n; i++)
        if (v[i] > v[best]) best = i;
    return best;
}

int mq_decode_prefill(mq_gpt_t *m, mq_gpt_kv_t *kv, int prompt, int context, int *next,
                      mq_error_t *err) {
    if (context < 1 || context > m->cfg.n_ctx)
        return mq_error_set(err, MQ_ERR_ARG, "decode: context %d is outside [1, %d]", context,
                            m->cfg.n_ctx);
    kv->len = 0;
    int token = prompt;
    for (int pos = 0; pos < context - 1; pos++) {
        int rc = mq_gpt_decode_step(m, kv, token, err);
        if (rc) return rc;
        token = argmax(kv->logits, m->cfg.vocab_size);
    }
    *next = token;
    return MQ_OK;
}

int mq_decode_step_seconds(mq_gpt_t *m, mq_gpt_kv_t *kv, int token, int calls, double *seconds,
                           mq_error_t *err) {
    int pos = kv->len;
    if (calls < 1) calls = 1;
    /* one untimed step first: whatever ran before left its own bytes in the cache, and the
       timed steps start with the model's back */
    int rc = mq_gpt_decode_step(m, kv, token, err);
    kv->len = pos;
    double t0 = mq_now();
    for (int i = 0; i < calls && rc == MQ_OK; i++) {
        kv->len = pos;
        rc = mq_gpt_decode_step(m, kv, token, err);
    }
    *seconds = (mq_now() - t0) / calls;
    kv->len = pos;
    return rc;
}

int mq_decode_linears_seconds(mq_gpt_t *m, mq_gpt_kv_t *kv, int calls, double *seconds,
                              mq_error_t *err) {
    if (calls < 1) calls = 1;
    int rc = mq_gpt_decode_linears(m, kv, err); /* untimed: the weights back in cache */
    double t0 = mq_now();
    for (int i = 0; i < calls && rc == MQ_OK; i++)
        rc = mq_gpt_decode_linears(m, kv, err);
    *seconds = (mq_now() - t0) / calls;
    return rc;
}

/* ---------------------------------------------------------------------------------------------
 * the plot */

/* The plot area is fixed in screen fractions, so that label boxes can be computed in pixels. */
#define PLOT_W 1200
#define PLOT_L 0.075
#define PLOT_R 0.975
#define PLOT_T 0.9
#define CHAR_W 7.2  /* pixels per character of the 10-point labels, with a margin */
#define CHAR_H 14.0 /* pixels per line */

static const char *const POINT_COLORS[] = {"#d62728", "#2ca02c", "#9467bd", "#8c564b", "#e377c2",
                                           "#17becf", "#bcbd22", "#7f7f7f", "#ff7f0e", "#1f77b4"};
#define N_COLORS (int)(sizeof POINT_COLORS / sizeof POINT_COLORS[0])

/* Boxes in pixels of the plot area (x right, y up). */
typedef struct box {
    double x0, x1, y0, y1;
} box_t;

static double overlap(const box_t *a, const box_t *b) {
    double w = fmin(a->x1, b->x1) - fmax(a->x0, b->x0), h = fmin(a->y1, b->y1) - fmax(a->y0, b->y0);
    return w > 0 && h > 0 ? w * h : 0.0;
}

static double floor_decade(double v) {
    return pow(10.0, floor(log10(v)));
}
static double ceil_decade(double v) {
    return pow(10.0, ceil(log10(v)));
}

/* Copies s without the characters that would end a gnuplot string. */
static void plain(char *out, size_t n, const char *s) {
    size_t k = 0;
    for (; s && *s && k + 1 < n; s++)
        if (*s != '"' && *s != '\'' && *s != '\\' && *s != '\n') out[k++] = *s;
    out[k] = '\0';
}

typedef struct axes {
    double xmin, xmax, ymin, ymax; /* data ranges (log axes) */
    double w, h;                   /* plot area, pixels */
} axes_t;

static double px_x(const axes_t *a, double x) {
    return a->w * log10(x / a->xmin) / log10(a->xmax / a->xmin);
}
static double px_y(const axes_t *a, double y) {
    return a->h * log10(y / a->ymin) / log10(a->ymax / a->ymin);
}
static double data_x(const axes_t *a, double px) {
    return a->xmin * pow(a->xmax / a->xmin, px / a->w);
}
static double data_y(const axes_t *a, double py) {
    return a->ymin * pow(a->ymax / a->ymin, py / a->h);
}

/* Places each point's label beside its dot: the first of several spots (right, left, then
 * rows above and below on either side) that overlaps no dot, no roof line and no label placed
 * before, else the spot that overlaps least. Writes gnuplot label commands. */
static int place_labels(mq_strbuf_t *s, const axes_t *ax, const mq_ceilings_t *c,
                        const mq_roofline_point_t *pts, int n) {
    const double step = 6.0; /* the roof lines as small boxes every 6 pixels */
    int per_line = (int)(ax->w / step) + 1, np = 0;
    box_t *placed = calloc((size_t)(2 * n + 4 * per_line), sizeof *placed);
    if (!placed) return MQ_ERR_NOMEM;
    for (int k = 0; k < per_line; k++) {
        double px = k * step, x = data_x(ax, px), P = c->peak_gflops;
        double ys[4] = {fmin(P, x * c->cache_triad_gbs), fmin(P, x * c->dram_triad_gbs), P,
                        c->sgemm_gflops};
        for (int l = 0; l < 4; l++) {
            double py = ys[l] > 0.0 ? px_y(ax, ys[l]) : -1e9;
            placed[np++] = (box_t){px - 3, px + 3, py - 3, py + 3};
        }
    }
    for (int i = 0; i < n; i++) { /* the dots, 12 pixels across */
        double x = px_x(ax, pts[i].intensity), y = px_y(ax, pts[i].gflops);
        placed[np++] = (box_t){x - 7, x + 7, y - 7, y + 7};
    }
    for (int i = 0; i < n; i++) {
        char label[64];
        plain(label, sizeof label, pts[i].label);
        double x = px_x(ax, pts[i].intensity), y = px_y(ax, pts[i].gflops);
        double w = CHAR_W * (double)strlen(label) + 4, h = CHAR_H;
        box_t best = {0, 0, 0, 0};
        double best_cost = -1.0;
        int best_left = 0;
        for (int k = 0; k < 18 && best_cost != 0.0; k++) {
            int left = k % 2, row = (k / 2 + 1) / 2 * ((k / 2) % 2 ? 1 : -1); /* 0, 1, -1, 2 ... */
            double x0 = left ? x - 10 - w : x + 10, yc = y + row * 1.05 * h;
            box_t b = {x0, x0 + w, yc - h / 2, yc + h / 2};
            double cost = 0.0;
            for (int j = 0; j < np; j++)
                cost += overlap(&b, &placed[j]);
            if (b.x0 < 0 || b.x1 > ax->w || b.y0 < 0 || b.y1 > ax->h) cost += w * h;
            cost += 1e-3 * (abs(row) + left); /* near and to the right, all else equal */
            if (cost < 1e-2) cost = 0.0;
            if (best_cost < 0 || cost < best_cost) {
                best_cost = cost;
                best = b;
                best_left = left;
            }
        }
        placed[np++] = best;
        double yc = 0.5 * (best.y0 + best.y1);
        mq_strbuf_printf(s, "set label \"%s\" at %.6g,%.6g %s front font ',10' tc rgb '%s'\n",
                         label, data_x(ax, best_left ? best.x1 : best.x0), data_y(ax, yc),
                         best_left ? "right" : "left", POINT_COLORS[i % N_COLORS]);
        /* a leader line when the label sits a row or more away from its dot */
        if (fabs(yc - y) > h * 0.9)
            mq_strbuf_printf(s,
                             "set arrow from %.6g,%.6g to %.6g,%.6g nohead lw 0.6 lc rgb '%s' "
                             "back\n",
                             pts[i].intensity, pts[i].gflops,
                             data_x(ax, best_left ? best.x1 + 2 : best.x0 - 2), data_y(ax, yc),
                             POINT_COLORS[i % N_COLORS]);
    }
    free(placed);
    return MQ_OK;
}

/* Text along a bandwidth slope (y = bw x, at angle degrees on screen), just above it, beginning
 * near where the line enters the plot. The text is centred on its anchor, so that a rotation
 * rounded by the terminal drifts from the line by half as much at either end. */
static void slope_label(mq_strbuf_t *s, const axes_t *ax, double bw, double angle,
                        const char *color, const char *text) {
    double enter = ax->ymin / bw > ax->xmin ? ax->ymin / bw : ax->xmin;
    double th = angle * M_PI / 180.0, lift = 13.0, half = 0.5 * 6.5 * (double)strlen(text);
    double px = px_x(ax, enter) + 20 + half * cos(th), py = px_y(ax, data_x(ax, px) * bw);
    mq_strbuf_printf(
        s, "set label \"%s\" at %.6g,%.6g center rotate by %.2f font ',10' tc rgb '%s' front\n",
        text, data_x(ax, px - sin(th) * lift), data_y(ax, py + cos(th) * lift), angle, color);
}

int mq_roofline_plot(const char *png, const mq_ceilings_t *c, const mq_roofline_point_t *pts, int n,
                     const char *subtitle, mq_error_t *err) {
    double P = c->peak_gflops, Bd = c->dram_triad_gbs, Bc = c->cache_triad_gbs;
    if (!(P > 0.0) || !(Bd > 0.0) || !(Bc > 0.0))
        return mq_error_set(err, MQ_ERR_ARG, "%s: the ceilings are not measured", png);
    for (int i = 0; i < n; i++)
        if (!(pts[i].intensity > 0.0) || !(pts[i].gflops > 0.0))
            return mq_error_set(err, MQ_ERR_ARG,
                                "%s: point %s has no positive intensity and "
                                "GFLOP/s",
                                png, pts[i].label);
    /* the int8 peak, drawn when a point's products reach it */
    double Pi = 0.0;
    for (int i = 0; i < n; i++)
        if (pts[i].int8 && c->peak_int8_gops > P) Pi = c->peak_int8_gops;
    /* the key, below the plot, details the four roofs (five with the int8 peak) and the points */
    int key_rows = 4 + (Pi > 0.0) + n;
    int height = 690 + 18 * key_rows;
    double bottom = (85.0 + 18.0 * key_rows) / height;
    axes_t ax = {
        0.1, 100.0, 1.0, 2.5 * fmax(P, Pi), (PLOT_R - PLOT_L) * PLOT_W, (PLOT_T - bottom) * height};
    for (int i = 0; i < n; i++) {
        if (pts[i].intensity / 2 < ax.xmin) ax.xmin = floor_decade(pts[i].intensity / 2);
        if (pts[i].intensity * 3 > ax.xmax) ax.xmax = ceil_decade(pts[i].intensity * 3);
        if (pts[i].gflops / 1.5 < ax.ymin) ax.ymin = floor_decade(pts[i].gflops / 1.5);
    }
    if (2 * fmax(P, Pi) / Bd > ax.xmax) ax.xmax = ceil_decade(2 * fmax(P, Pi) / Bd);
    if (ax.xmin * Bd < ax.ymin) ax.ymin = floor_decade(ax.xmin * Bd);

    char sub[512];
    plain(sub, sizeof sub, subtitle);
    mq_strbuf_t s = {0};
    for (int i = 0; i < n; i++)
        mq_strbuf_printf(&s, "$p%d << EOD\n%.6g %.6g\nEOD\n", i, pts[i].intensity, pts[i].gflops);
    mq_strbuf_printf(&s, "P = %.6g\nBd = %.6g\nBc = %.6g\nS = %.6g\nmin(a, b) = a < b ? a : b\n", P,
                     Bd, Bc, c->sgemm_gflops);
    mq_strbuf_printf(&s,
                     "set title \"Roofline of this machine (%d threads) and one decode step of "
                     "the model per scheme%s%s\" font ',13'\n",
                     c->threads, sub[0] ? "\\n" : "", sub);
    mq_strbuf_printf(&s,
                     "set lmargin at screen %g\nset rmargin at screen %g\n"
                     "set tmargin at screen %g\nset bmargin at screen %g\n"
                     "set logscale xy\nset xrange [%g:%g]\nset yrange [%g:%g]\n"
                     "set format x '%%g'\nset format y '%%g'\nset mxtics 10\nset mytics 10\n"
                     "set grid xtics ytics lc rgb '#d8d8d8', lc rgb '#d8d8d8'\n"
                     "set xlabel 'arithmetic intensity (FLOP/byte)'\n"
                     "set ylabel 'GFLOP/s (a multiply-add counts 2)'\n"
                     "set key at screen %g, screen %g left top vertical maxrows %d Left reverse "
                     "samplen 2 spacing 1.1 font ',10' width -1\n"
                     "set samples 500\n",
                     PLOT_L, PLOT_R, PLOT_T, bottom, ax.xmin, ax.xmax, ax.ymin, ax.ymax, PLOT_L,
                     bottom - 60.0 / height, key_rows);
    /* the roofs, labelled along their lines: slopes at the left end, flat lines at the right */
    double angle =
        atan2(ax.h / log10(ax.ymax / ax.ymin), ax.w / log10(ax.xmax / ax.xmin)) * 180.0 / M_PI;
    char text[160];
    snprintf(text, sizeof text, "in-cache %.1f GB/s", Bc);
    slope_label(&s, &ax, Bc, angle, "#d46a00", text);
    snprintf(text, sizeof text, "DRAM %.1f GB/s", Bd);
    slope_label(&s, &ax, Bd, angle, "#1f77b4", text);
    double rx = data_x(&ax, ax.w - 8);
    mq_strbuf_printf(&s,
                     "set label \"peak FP32 %.1f GFLOP/s\" at %.6g,%.6g right font ',10' front\n",
                     P, rx, P * data_y(&ax, 11) / ax.ymin);
    mq_strbuf_printf(&s,
                     "set label \"sgemm %.1f GFLOP/s\" at %.6g,%.6g right font ',10' tc rgb "
                     "'#555555' front\n",
                     c->sgemm_gflops, rx, c->sgemm_gflops / (data_y(&ax, 11) / ax.ymin));
    if (Pi > 0.0)
        mq_strbuf_printf(&s,
                         "set label \"peak int8 %.1f GOP/s\" at %.6g,%.6g right font ',10' tc rgb "
                         "'#8c2d04' front\n",
                         Pi, rx, Pi * data_y(&ax, 11) / ax.ymin);
    if (place_labels(&s, &ax, c, pts, n)) s.oom = 1;
    mq_strbuf_printf(
        &s,
        "plot min(P, x * Bc) lw 2.5 lc rgb '#ff7f0e' title 'in-cache roof: triad %.1f GB/s, %zu "
        "MiB of the %zu MiB LLC; ridge %.2f FLOP/byte', \\\n"
        "     min(P, x * Bd) lw 2.5 lc rgb '#1f77b4' title 'DRAM roof: triad %.1f GB/s, %zu MiB "
        "working set; ridge %.2f FLOP/byte', \\\n"
        "     P lw 2 lc rgb '#222222' title 'peak FP32: %.1f GFLOP/s, FMA loop (%s)', \\\n"
        "     S dt 2 lw 1.5 lc rgb '#777777' title 'OpenBLAS sgemm %d x %d x %d: %.1f GFLOP/s'",
        Bc, c->cache_bytes >> 20, c->llc_bytes >> 20, P / Bc, Bd, c->dram_bytes >> 20, P / Bd, P,
        mq_isa_name(c->isa), c->sgemm_n, c->sgemm_n, c->sgemm_n, c->sgemm_gflops);
    if (Pi > 0.0) /* above the FP32 peak: the int8 peak and the bandwidth roofs rising to it */
        mq_strbuf_printf(
            &s,
            ", \\\n     x * Bc > P ? min(%.6g, x * Bc) : 1/0 dt 3 lw 2 lc rgb '#8c2d04' "
            "title 'peak int8: %.1f GOP/s, %s loop (products with int8 "
            "activations); the bandwidth roofs up to it', \\\n"
            "     x * Bd > P ? min(%.6g, x * Bd) : 1/0 dt 3 lw 2 lc rgb '#8c2d04' "
            "notitle",
            Pi, Pi, mq_int8_loop_name(c->int8_isa), Pi);
    for (int i = 0; i < n; i++) {
        char label[64], note[128];
        plain(label, sizeof label, pts[i].label);
        plain(note, sizeof note, pts[i].note);
        mq_strbuf_printf(&s,
                         ", \\\n     $p%d using 1:2 with points pt 7 ps 1.6 lc rgb '%s' title "
                         "'%s: %.2f FLOP/byte, %.2f GFLOP/s%s%s'",
                         i, POINT_COLORS[i % N_COLORS], label, pts[i].intensity, pts[i].gflops,
                         note[0] ? ", " : "", note);
    }
    mq_strbuf_printf(&s, "\n");
    int rc = s.oom ? mq_error_set(err, MQ_ERR_NOMEM, "out of memory")
                   : mq_plot_png(png, PLOT_W, height, s.s, err);
    mq_strbuf_free(&s);
    return rc;
}
