/* miniquant roofline: this machine's ceilings, measured here, and where one KV-cached MiniGPT
 * decode step of each scheme sits under them.
 *
 * The ceilings and the accounting are the library's (roofline.h). Each scheme's model is
 * quantized as `bench decode` does it (round to nearest, the fused kernels) and decodes with a
 * KV cache: the timed step is the token at position T - 1 attending to T positions, repeated
 * (the cache rewound after each). The schemes take turns inside every repetition, so that the
 * noise of a shared machine hits all of them alike; figures are medians. */
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "cli.h"
#include "miniquant/checkpoint.h"
#include "miniquant/fileio.h"
#include "miniquant/kernels.h"
#include "miniquant/progress.h"
#include "miniquant/qmodel.h"
#include "miniquant/report.h"
#include "miniquant/roofline.h"

#define MAX_SCHEMES 32
#define MAX_REPS 1000
#define SAMPLE_SECONDS 5e-3 /* a timed sample repeats the step until it lasts about this long */

static const char ABOUT[] =
    "Measures this machine's ceilings (peak FP32 FLOP/s with an FMA loop, OpenBLAS sgemm beside\n"
    "it, the int8 dot products' peak of the kernels in force (vpdpbusd with AVX512-VNNI,\n"
    "vpmaddubsw on AVX2: the int8-activation kernels' roof), and\n"
    "STREAM triad / read bandwidth over a working set of 8 x the last-level cache and\n"
    "one the size of the largest step's bytes, which stay in cache from one step to the next),\n"
    "then times one KV-cached decode step of the model per scheme (B = 1, the token at\n"
    "position T - 1 attending to T positions, the fused kernels with the activations\n"
    "`generate` serves: MQ_VNNI chooses others) and places each\n"
    "on the roofline: FLOPs and bytes of the step (weights at the scheme's packed width plus\n"
    "scales, biases, LayerNorm, the embedding rows, KV cache reads and writes, activations),\n"
    "arithmetic intensity, achieved GFLOP/s and GB/s, the roof it sits under and the fraction\n"
    "of that roof achieved; then the step's Linears alone (every Linear once in one parallel\n"
    "region, the same kernels, no attention, norms or barriers): how much of their own roof the\n"
    "kernels reach inside the step. Medians over the repetitions.\n";

static const char EPILOG[] =
    "Schemes ending in _gptq are timed with their round-to-nearest codes: the same grid, packed\n"
    "form and kernel, so the same speed. Run on an idle machine with OMP_WAIT_POLICY=PASSIVE\n"
    "where the cores are shared.\n";

typedef struct opts {
    const char *model, *json, *plot;
    int threads, reps, quick, context;
    cli_scheme_list_t schemes;
} opts_t;

typedef struct point {
    const char *name;
    mq_scheme_t scheme;
    mq_gpt_t m;     /* the FP32 model q is made from: never the one timed */
    mq_qmodel_t q;  /* the scheme's model: timed() */
    int quantized;
    mq_gpt_kv_t kv;
    int token, calls;
    double t[MAX_REPS], tl[MAX_REPS]; /* the step; its Linears alone */
    mq_decode_cost_t cost;
    double flops_a8; /* the step's FLOPs in products that take x as int8 codes (VNNI) */
    double seconds, gflops, gbs;
    /* the Linears alone: their FLOPs over the weights' bytes, and their own roof */
    double lin_seconds, lin_intensity, lin_gflops, lin_roof;
    int in_cache;      /* the step's bytes fit in the last-level cache */
    double peak;       /* the step's compute roof: FP32 work at the FMA peak, int8 products at
                          theirs (mq_compute_roof) */
    double bw, ridge;  /* the bandwidth roof that applies, and its ridge point */
    double attainable; /* min(peak, intensity x bw) */
    int memory_bound;
} point_t;

/* The model whose step is timed: the scheme's, through its fused kernels. */
static mq_gpt_t *timed(point_t *p) {
    return p->q.model;
}

/* The FLOPs of q's Linears whose step form takes x as int8 codes: 2 per multiply-add. */
static double int8_flops(const mq_qmodel_t *q, mq_error_t *err) {
    double f = 0.0;
    for (int i = 0; i < q->n_linear; i++) {
        mq_step_linear_t s;
        if (mq_qweight_step(&q->ql[i].w, q->ql[i].bias, &s, err)) return -1.0;
        if (s.a8) f += 2.0 * (double)s.out_rows * (double)s.cols;
    }
    return f;
}

/* Loads the model for one scheme, quantizes it (fused kernels) and fills its KV cache up to the
 * timed position. */
static int prepare(point_t *p, const char *model, int prompt, int context, mq_error_t *err) {
    int rc = mq_checkpoint_load(model, &p->m, NULL, NULL, err);
    if (rc == MQ_OK) rc = mq_scheme_parse(p->name, &p->scheme, err);
    if (rc == MQ_OK) rc = mq_qmodel_quantize(&p->q, &p->m, &p->scheme, NULL, err);
    p->quantized = rc == MQ_OK;
    if (rc == MQ_OK) p->q.fused = 1; /* the fused kernels, whatever MQ_REFERENCE says */
    if (rc == MQ_OK) rc = mq_gpt_kv_init(&p->kv, &p->m.cfg, err);
    if (rc == MQ_OK) rc = mq_decode_prefill(timed(p), &p->kv, prompt, context, &p->token, err);
    if (rc == MQ_OK) rc = mq_decode_cost(&p->m.cfg, &p->scheme, context, &p->cost, err);
    if (rc == MQ_OK && (p->flops_a8 = int8_flops(&p->q, err)) < 0.0) rc = err->code;
    /* calls per sample: the fastest of a few single calls (a stall is not the step) */
    double best = 1e9, t;
    for (int k = 0; k < 5 && rc == MQ_OK; k++) {
        rc = mq_decode_step_seconds(timed(p), &p->kv, p->token, 1, &t, err);
        best = t < best ? t : best;
    }
    p->calls = best > 0.0 ? (int)(SAMPLE_SECONDS / best) : 1;
    p->calls = p->calls < 1 ? 1 : p->calls > 100000 ? 100000 : p->calls;
    if (rc) mq_error_prefix(err, "%s", p->name);
    return rc;
}

static void release(point_t *p) {
    mq_gpt_kv_free(&p->kv);
    if (p->quantized) mq_qmodel_free(&p->q);
    mq_gpt_free(&p->m);
}

/* The in-cache roof's working set: the largest step's bytes, which stay in cache from one step
 * to the next (at least 1 MiB; half the last-level cache when they are larger). Half of what the
 * system reports as the last-level cache can lie far beyond any one cache: a virtual machine may
 * report the whole socket's, and a chiplet's cores share only their own. */
static size_t cache_working_set(size_t step_bytes) {
    size_t llc = mq_llc_bytes(), ws = step_bytes > ((size_t)1 << 20) ? step_bytes : (size_t)1 << 20;
    return ws <= llc / 2 ? ws : llc / 2;
}

static double roof(double peak, double bw, double intensity) {
    return intensity * bw < peak ? intensity * bw : peak;
}

/* Where the point sits: under the in-cache roof when the step's bytes fit in the last-level
 * cache (the step repeats, so they stay there), under the DRAM roof otherwise. */
static void place(point_t *p, const mq_ceilings_t *c) {
    double intensity = p->cost.intensity;
    p->gflops = (double)p->cost.flops / p->seconds / 1e9;
    p->gbs = (double)p->cost.bytes / p->seconds / 1e9;
    p->in_cache = (size_t)p->cost.bytes <= c->llc_bytes;
    p->bw = p->in_cache ? c->cache_triad_gbs : c->dram_triad_gbs;
    p->peak = mq_compute_roof(c, (double)p->cost.flops - p->flops_a8, p->flops_a8);
    p->ridge = p->peak / p->bw;
    p->memory_bound = intensity < p->ridge;
    p->attainable = p->memory_bound ? intensity * p->bw : p->peak;
    /* the Linears alone, under the same bandwidth */
    double lin = (double)p->cost.flops_linear;
    p->lin_intensity = lin / (double)p->cost.bytes_weights;
    p->lin_gflops = lin / p->lin_seconds / 1e9;
    p->lin_roof = roof(mq_compute_roof(c, lin - p->flops_a8, p->flops_a8), p->bw, p->lin_intensity);
}

/* The 1-minute load average (-1 when unknown): other work running beside the measurement. */
static double load_average(void) {
    FILE *f = fopen("/proc/loadavg", "r");
    double v = -1.0;
    if (f) {
        if (fscanf(f, "%lf", &v) != 1) v = -1.0;
        fclose(f);
    }
    return v;
}

/* Says when the figures contradict each other or the machine was busy: a shared machine's
 * noise shows up as a low peak or bandwidth, never as a high one. */
static void print_noise_notes(const mq_ceilings_t *c, double load_before) {
    if (c->sgemm_gflops > c->peak_gflops)
        printf("   note: sgemm measured above the FMA peak: the machine was busy during the peak's "
               "samples, every figure here is suspect; run again on an idle machine\n");
    if (load_before > 0.5 * c->threads)
        printf("   note: load average %.2f before this run (%d threads used): other work shares "
               "the cores, so these figures may understate the machine\n",
               load_before, c->threads);
}

static void print_ceilings(const mq_ceilings_t *c) {
    printf("== ceilings: %d threads, median of %d samples each\n", c->threads, c->reps);
    printf("   peak FP32     %8.1f GFLOP/s   FMA loop (%s, 12 accumulators per thread): the "
           "compute roof\n",
           c->peak_gflops, mq_isa_name(c->isa));
    if (c->peak_int8_gops > 0.0)
        printf("   peak int8     %8.1f GOP/s     %s loop (%s int8 products, a multiply-add "
               "counts 2): the compute roof of products with int8 activations\n",
               c->peak_int8_gops, mq_int8_loop_name(c->int8_isa), mq_isa_name(c->int8_isa));
    printf("   sgemm         %8.1f GFLOP/s   OpenBLAS %d x %d x %d (%.0f%% of the peak)\n",
           c->sgemm_gflops, c->sgemm_n, c->sgemm_n, c->sgemm_n,
           100.0 * c->sgemm_gflops / c->peak_gflops);
    printf("   DRAM          %8.1f GB/s      triad (read-only %.1f GB/s), working set %zu MiB = "
           "%.0f x LLC; ridge %.2f FLOP/byte\n",
           c->dram_triad_gbs, c->dram_read_gbs, c->dram_bytes >> 20,
           (double)c->dram_bytes / (double)c->llc_bytes, c->peak_gflops / c->dram_triad_gbs);
    printf("   in-cache      %8.1f GB/s      triad (read-only %.1f GB/s), working set %.1f MiB = "
           "the largest step's bytes; ridge %.2f FLOP/byte\n",
           c->cache_triad_gbs, c->cache_read_gbs, (double)c->cache_bytes / (1 << 20),
           c->peak_gflops / c->cache_triad_gbs);
    printf("   last-level cache %zu MiB\n", c->llc_bytes >> 20);
}

static void print_points(const point_t *pts, int n, const char *model, int context,
                         const mq_ceilings_t *c) {
    const mq_gpt_config_t *cfg = &pts[0].m.cfg;
    char acts[256];
    printf("\n== one KV-cached decode step: %s (L=%d, C=%d, NH=%d, V=%d), B = 1, the token at "
           "position %d attending to %d positions; fused kernels (%s), activations as "
           "`generate` serves them: %s\n",
           model, cfg->n_layer, cfg->n_embd, cfg->n_head, cfg->vocab_size, context - 1, context,
           mq_isa_name(mq_kernels_isa()), mq_kernels_a8_about(mq_kernels_a8(), acts, sizeof acts));
    char vs[40];
    snprintf(vs, sizeof vs, "x %.30s", pts[0].name);
    printf("%-17s %6s %7s %6s %6s %7s %8s %6s %7s  %-16s %7s %6s %6s\n", "scheme", "MFLOP", "KiB",
           "FLOP/B", "tok/s", "us/tok", "GFLOP/s", "GB/s", vs, "sits under", "of roof", "DRAM",
           "cache");
    for (int i = 0; i < n; i++) {
        const point_t *p = &pts[i];
        char under[48];
        snprintf(under, sizeof under, "%s %s", p->in_cache ? "cache" : "DRAM",
                 p->memory_bound ? "memory" : "compute");
        double intensity = p->cost.intensity;
        printf("%-17s %6.2f %7.0f %6.3f %6.0f %7.1f %8.2f %6.2f %7.2f  %-16s %6.1f%% %5.0f%% "
               "%5.0f%%\n",
               p->name, (double)p->cost.flops / 1e6, (double)p->cost.bytes / 1024.0, intensity,
               1.0 / p->seconds, 1e6 * p->seconds, p->gflops, p->gbs, pts[0].seconds / p->seconds,
               under, 100.0 * p->gflops / p->attainable,
               100.0 * p->gflops / roof(p->peak, c->dram_triad_gbs, intensity),
               100.0 * p->gflops / roof(p->peak, c->cache_triad_gbs, intensity));
    }
    printf("\n   bytes per step (KiB): weights / params / embedding / KV cache / activations\n");
    for (int i = 0; i < n; i++) {
        const mq_decode_cost_t *k = &pts[i].cost;
        printf("   %-18s %9.1f %7.1f %7.1f %9.1f %9.1f   bytes / %s's: %.3f (memory-bound "
               "speed-up %.2fx)\n",
               pts[i].name, k->bytes_weights / 1024.0, k->bytes_params / 1024.0,
               k->bytes_embedding / 1024.0, k->bytes_kv / 1024.0, k->bytes_activations / 1024.0,
               pts[0].name, (double)k->bytes / (double)pts[0].cost.bytes,
               (double)pts[0].cost.bytes / (double)k->bytes);
    }
    printf(
        "\n   compute roof per scheme: FP32 work at the FMA peak, products with int8 activations "
        "at the int8 peak\n");
    for (int i = 0; i < n; i++) {
        const point_t *p = &pts[i];
        printf("   %-18s %8.1f GFLOP/s   int8 products: %.2f of %.2f MFLOP\n", p->name, p->peak,
               p->flops_a8 / 1e6, (double)p->cost.flops / 1e6);
    }
    printf(
        "\n   the step's Linears alone (every Linear once in one parallel region, the same kernels "
        "and row chunks; no attention, norms or barriers): their FLOPs over the weights' "
        "bytes, under the same roof\n");
    printf("   %-18s %8s %10s %8s %8s %9s\n", "scheme", "us", "of step", "FLOP/B", "GFLOP/s",
           "of roof");
    for (int i = 0; i < n; i++) {
        const point_t *p = &pts[i];
        printf("   %-18s %8.1f %9.0f%% %8.3f %8.2f %8.1f%%\n", p->name, 1e6 * p->lin_seconds,
               100.0 * p->lin_seconds / p->seconds, p->lin_intensity, p->lin_gflops,
               100.0 * p->lin_gflops / p->lin_roof);
    }
    printf(
        "\n   'sits under': the in-cache roof ('cache') when the step's bytes fit in the %zu MiB "
        "last-level cache (the step repeats, so they stay there), else DRAM; memory-bound "
        "when the intensity is below that roof's ridge point (compute roof / bandwidth). 'of roof' "
        "= achieved GFLOP/s / min(compute roof, intensity x bandwidth); DRAM and cache: the same "
        "against each roof. '%s' is the measured speed-up over the first scheme.\n",
        c->llc_bytes >> 20, vs);
    const char *wait = getenv("OMP_WAIT_POLICY");
    if (c->threads > 1 && wait && !strcasecmp(wait, "passive"))
        printf("\n   note: OMP_WAIT_POLICY=%s: each decode step opens a parallel region, which "
               "wakes the sleeping threads (the Linears alone too); these times measure that "
               "wake-up as well (compare --threads 1, or run without "
               "OMP_WAIT_POLICY).\n",
               wait);
}

static cJSON *ceilings_json(const mq_ceilings_t *c) {
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "threads", c->threads);
    cJSON_AddNumberToObject(o, "reps", c->reps);
    cJSON_AddStringToObject(o, "fma_version", mq_isa_name(c->isa));
    cJSON_AddNumberToObject(o, "peak_gflop_per_s", c->peak_gflops);
    cJSON_AddStringToObject(o, "peak_measured_by", "register-blocked FMA loop, every thread");
    cJSON_AddNumberToObject(o, "peak_int8_gop_per_s", c->peak_int8_gops);
    cJSON_AddStringToObject(o, "peak_int8_measured_by", mq_int8_loop_name(c->int8_isa));
    cJSON_AddNumberToObject(o, "sgemm_gflop_per_s", c->sgemm_gflops);
    cJSON_AddNumberToObject(o, "sgemm_n", c->sgemm_n);
    cJSON_AddNumberToObject(o, "llc_bytes", (double)c->llc_bytes);
    cJSON_AddNumberToObject(o, "dram_working_set_bytes", (double)c->dram_bytes);
    cJSON_AddNumberToObject(o, "dram_triad_gb_per_s", c->dram_triad_gbs);
    cJSON_AddNumberToObject(o, "dram_read_gb_per_s", c->dram_read_gbs);
    cJSON_AddNumberToObject(o, "cache_working_set_bytes", (double)c->cache_bytes);
    cJSON_AddNumberToObject(o, "cache_triad_gb_per_s", c->cache_triad_gbs);
    cJSON_AddNumberToObject(o, "cache_read_gb_per_s", c->cache_read_gbs);
    cJSON_AddNumberToObject(o, "dram_ridge_flop_per_byte", c->peak_gflops / c->dram_triad_gbs);
    cJSON_AddNumberToObject(o, "cache_ridge_flop_per_byte", c->peak_gflops / c->cache_triad_gbs);
    return o;
}

static cJSON *point_json(const point_t *p, const point_t *base, const mq_ceilings_t *c) {
    const mq_decode_cost_t *k = &p->cost;
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "scheme", p->name);
    cJSON_AddNumberToObject(o, "flops", (double)k->flops);
    cJSON_AddNumberToObject(o, "flops_linear", (double)k->flops_linear);
    cJSON_AddNumberToObject(o, "flops_attention", (double)k->flops_attention);
    cJSON_AddNumberToObject(o, "flops_other", (double)k->flops_other);
    cJSON_AddNumberToObject(o, "bytes", (double)k->bytes);
    cJSON_AddNumberToObject(o, "bytes_weights", (double)k->bytes_weights);
    cJSON_AddNumberToObject(o, "bytes_params", (double)k->bytes_params);
    cJSON_AddNumberToObject(o, "bytes_embedding", (double)k->bytes_embedding);
    cJSON_AddNumberToObject(o, "bytes_kv_cache", (double)k->bytes_kv);
    cJSON_AddNumberToObject(o, "bytes_activations", (double)k->bytes_activations);
    cJSON_AddNumberToObject(o, "intensity_flop_per_byte", k->intensity);
    cJSON_AddNumberToObject(o, "flops_int8_products", p->flops_a8);
    cJSON_AddNumberToObject(o, "compute_roof_gflop_per_s", p->peak);
    cJSON_AddNumberToObject(o, "seconds_per_token", p->seconds);
    cJSON_AddNumberToObject(o, "tokens_per_s", 1.0 / p->seconds);
    cJSON_AddNumberToObject(o, "calls_per_sample", p->calls);
    cJSON_AddNumberToObject(o, "gflop_per_s", p->gflops);
    cJSON_AddNumberToObject(o, "gb_per_s", p->gbs);
    cJSON_AddNumberToObject(o, "speedup_vs_first", base->seconds / p->seconds);
    cJSON_AddNumberToObject(o, "bytes_ratio_speedup_vs_first",
                            (double)base->cost.bytes / (double)k->bytes);
    cJSON_AddStringToObject(o, "memory_level", p->in_cache ? "cache" : "dram");
    cJSON_AddStringToObject(o, "bound", p->memory_bound ? "memory" : "compute");
    cJSON_AddNumberToObject(o, "ridge_flop_per_byte", p->ridge);
    cJSON_AddNumberToObject(o, "attainable_gflop_per_s", p->attainable);
    cJSON_AddNumberToObject(o, "fraction_of_roof", p->gflops / p->attainable);
    cJSON_AddNumberToObject(o, "fraction_of_dram_roof",
                            p->gflops / roof(p->peak, c->dram_triad_gbs, k->intensity));
    cJSON_AddNumberToObject(o, "fraction_of_cache_roof",
                            p->gflops / roof(p->peak, c->cache_triad_gbs, k->intensity));
    cJSON *lin = cJSON_AddObjectToObject(o, "linears_alone");
    cJSON_AddNumberToObject(lin, "seconds", p->lin_seconds);
    cJSON_AddNumberToObject(lin, "share_of_step", p->lin_seconds / p->seconds);
    cJSON_AddNumberToObject(lin, "intensity_flop_per_byte", p->lin_intensity);
    cJSON_AddNumberToObject(lin, "gflop_per_s", p->lin_gflops);
    cJSON_AddNumberToObject(lin, "roof_gflop_per_s", p->lin_roof);
    cJSON_AddNumberToObject(lin, "fraction_of_roof", p->lin_gflops / p->lin_roof);
    return o;
}

static int write_json(const char *path, const opts_t *o, const char *model, int context,
                      double load_before, const mq_ceilings_t *c, const point_t *pts, int n,
                      mq_error_t *err) {
    cJSON *root = cJSON_CreateObject();
    cJSON_AddItemToObject(root, "ceilings", ceilings_json(c));
    cJSON *d = cJSON_AddObjectToObject(root, "decode_step");
    cJSON_AddStringToObject(d, "model", model);
    cJSON_AddNumberToObject(d, "n_layer", pts[0].m.cfg.n_layer);
    cJSON_AddNumberToObject(d, "n_embd", pts[0].m.cfg.n_embd);
    cJSON_AddNumberToObject(d, "n_head", pts[0].m.cfg.n_head);
    cJSON_AddNumberToObject(d, "vocab_size", pts[0].m.cfg.vocab_size);
    cJSON_AddNumberToObject(d, "n_ctx", pts[0].m.cfg.n_ctx);
    cJSON_AddNumberToObject(d, "context", context);
    cJSON_AddStringToObject(d, "kernel_version", mq_isa_name(mq_kernels_isa()));
    char acts[256];
    cJSON_AddStringToObject(d, "activations",
                            mq_kernels_a8_about(mq_kernels_a8(), acts, sizeof acts));
    const char *wait = getenv("OMP_WAIT_POLICY");
    cJSON_AddStringToObject(d, "omp_wait_policy", wait ? wait : "(unset)");
    cJSON_AddNumberToObject(d, "load_average_before", load_before);
    cJSON_AddStringToObject(d, "measures",
                            "one KV-cached decode step, B = 1: the token at position context - 1 "
                            "attending to context positions, repeated with the cache rewound; "
                            "median over the repetitions");
    cJSON *arr = cJSON_AddArrayToObject(d, "schemes");
    for (int i = 0; i < n; i++)
        cJSON_AddItemToArray(arr, point_json(&pts[i], &pts[0], c));
    cJSON *cfg = cJSON_CreateObject();
    cJSON_AddStringToObject(cfg, "command", "roofline");
    cJSON_AddNumberToObject(cfg, "threads", c->threads);
    cJSON_AddNumberToObject(cfg, "reps", o->reps);
    cJSON_AddBoolToObject(cfg, "quick", o->quick);
    cJSON_AddItemToObject(root, "manifest", mq_manifest(0, cfg));
    int rc = mq_json_write(path, root, err);
    cJSON_Delete(root);
    return rc;
}

int cmd_roofline(int argc, char **argv) {
    opts_t o = {.schemes.max = MAX_SCHEMES};
    cli_option_t opts[] = {
        {CLI_OPT_MODEL(&o.model, "the trained model"), .def = CLI_DEFAULT_MODEL},
        {CLI_OPT_SCHEMES(&o.schemes, "comma-separated scheme names"),
         .def = "fp32,int8_per_channel,int4_g64"},
        {.name = "context", .arg = "T", .i = &o.context, .lo = 1, .hi = 1 << 16,
         .def_text = "the whole context, the last step of a full window",
         .help = "positions the step attends to, 1 .. the model's context"},
        {CLI_OPT_THREADS(&o.threads)},
        {CLI_OPT_REPS(&o.reps, MAX_REPS, "7; 3 with --quick")},
        {.name = "quick", .flag = &o.quick,
         .help = "fewer and shorter samples (a smoke run, noisier)"},
        {CLI_OPT_JSON(&o.json)},
        {.name = "plot", .arg = "FILE", .str = &o.plot,
         .help = "draw the roofline with the schemes' points (PNG)"},
        {0},
    };
    const cli_command_t cmd = {.name = "roofline", .about = ABOUT, .epilog = EPILOG, .opts = opts};
    int prc = cli_parse(&cmd, argc, argv, NULL);
    if (prc != CLI_CONTINUE) return prc;
    if (!o.reps) o.reps = o.quick ? 3 : 7;
    char buf[1024];
    const char *const *names = o.schemes.names;
    int n = o.schemes.n;
    cli_set_threads(o.threads);
    mq_error_t err = {0};
    if (mq_kernels_init(&err)) return cli_fail(&err);
    mq_kernels_serving(); /* the step as `generate` runs it */
    if (!mq_file_exists(o.model)) {
        mq_error_set(&err, MQ_ERR_NOT_FOUND, "%s: no such model (train one, or see --model)",
                     o.model);
        return cli_fail(&err);
    }

    /* the prompt token, and the context, from the model itself */
    mq_gpt_t probe;
    mq_tokenizer_t *tok = NULL;
    int rc = mq_checkpoint_load(o.model, &probe, &tok, NULL, &err);
    if (rc) return cli_fail(&err);
    int32_t eot = tok ? mq_tokenizer_eot(tok) : -1;
    int prompt = eot >= 0 ? eot : 0, n_ctx = probe.cfg.n_ctx;
    mq_tokenizer_free(tok);
    int context = o.context ? o.context : n_ctx;
    if (context > n_ctx) {
        mq_gpt_free(&probe);
        snprintf(buf, sizeof buf, "%d (the model's context is %d)", context, n_ctx);
        return cli_usage_error(&cmd, "--context %s is too long", buf);
    }
    /* every scheme must fit the model's shapes before anything is measured */
    size_t step_bytes = 0; /* the largest step's */
    for (int i = 0; i < n && rc == MQ_OK; i++) {
        mq_scheme_t s;
        mq_decode_cost_t cost;
        rc = mq_scheme_parse(names[i], &s, &err);
        if (rc == MQ_OK) rc = mq_decode_cost(&probe.cfg, &s, context, &cost, &err);
        if (rc == MQ_OK && (size_t)cost.bytes > step_bytes) step_bytes = (size_t)cost.bytes;
    }
    mq_gpt_free(&probe);
    if (rc) return cli_fail(&err);

    mq_ceiling_opts_t copts = {0};
    copts.reps = o.reps;
    copts.cache_bytes = cache_working_set(step_bytes);
    if (o.quick) {
        copts.fma_seconds = 0.03;
        copts.sgemm_n = 1024;
        copts.stream_seconds = 0.02;
    }
    point_t *pts = calloc((size_t)n, sizeof *pts);
    if (!pts) {
        mq_error_set(&err, MQ_ERR_NOMEM, "out of memory");
        return cli_fail(&err);
    }
    double load_before = load_average();
    mq_progress_t bar;
    int64_t done = 0;
    mq_progress_start(&bar, "roofline", mq_ceilings_steps(&copts) + n + (int64_t)o.reps * n);
    mq_ceilings_t cl;
    rc = mq_ceilings_measure(&cl, &copts, &bar, &err);
    done = bar.done;
    for (int i = 0; i < n && rc == MQ_OK; i++) {
        pts[i].name = names[i];
        rc = prepare(&pts[i], o.model, prompt, context, &err);
        mq_progress_update(&bar, ++done, names[i]);
    }
    for (int r = 0; r < o.reps && rc == MQ_OK; r++)
        for (int i = 0; i < n && rc == MQ_OK; i++) {
            rc = mq_decode_step_seconds(timed(&pts[i]), &pts[i].kv, pts[i].token, pts[i].calls,
                                        &pts[i].t[r], &err);
            if (rc == MQ_OK)
                rc = mq_decode_linears_seconds(timed(&pts[i]), &pts[i].kv, pts[i].calls,
                                               &pts[i].tl[r], &err);
            mq_progress_update(&bar, ++done, pts[i].name);
        }
    if (rc == MQ_OK) {
        mq_progress_finish(&bar, NULL);
        for (int i = 0; i < n; i++) {
            pts[i].seconds = mq_median(pts[i].t, o.reps);
            pts[i].lin_seconds = mq_median(pts[i].tl, o.reps);
            place(&pts[i], &cl);
        }
        print_ceilings(&cl);
        print_noise_notes(&cl, load_before);
        print_points(pts, n, o.model, context, &cl);
        fflush(stdout);
    }
    if (rc == MQ_OK && o.plot) {
        mq_roofline_point_t rp[MAX_SCHEMES];
        char notes[MAX_SCHEMES][96];
        for (int i = 0; i < n; i++) {
            const point_t *p = &pts[i];
            if (p->memory_bound)
                snprintf(notes[i], sizeof notes[i],
                         "%.0f%% of the %s roof (memory-bound); Linears alone %.0f%% of theirs",
                         100.0 * p->gflops / p->attainable, p->in_cache ? "in-cache" : "DRAM",
                         100.0 * p->lin_gflops / p->lin_roof);
            else
                snprintf(
                    notes[i], sizeof notes[i],
                    "%.0f%% of its compute roof (compute-bound); Linears alone %.0f%% of theirs",
                    100.0 * p->gflops / p->attainable, 100.0 * p->lin_gflops / p->lin_roof);
            rp[i] = (mq_roofline_point_t){p->name, p->cost.intensity, p->gflops, notes[i],
                                          p->flops_a8 > 0.0};
        }
        snprintf(buf, sizeof buf, "%s, B = 1, attending to %d positions; fused kernels (%s)",
                 o.model, context, mq_isa_name(mq_kernels_isa()));
        rc = mq_roofline_plot(o.plot, &cl, rp, n, buf, &err);
        if (rc == MQ_OK) fprintf(stderr, "roofline: wrote %s\n", o.plot);
    }
    if (rc == MQ_OK && o.json) {
        rc = write_json(o.json, &o, o.model, context, load_before, &cl, pts, n, &err);
        if (rc == MQ_OK) fprintf(stderr, "roofline: wrote %s\n", o.json);
    }
    for (int i = 0; i < n; i++)
        release(&pts[i]);
    free(pts);
    return rc ? cli_fail(&err) : 0;
}
