/* miniquant bench: how fast the fused kernels and a quantized MiniGPT run, against FP32.
 *
 * bench kernels: every scheme's fused y = x W^T on MiniGPT's own Linear shapes and on a
 * 4096 x 14336 Linear, for one row of x (decode: matrix-vector) and 64 (prompt: matrix-matrix),
 * against OpenBLAS sgemv / sgemm on the FP32 weight, with this machine's memory bandwidth
 * (a STREAM triad over buffers much larger than the last-level cache) measured in the same run.
 * The schemes take turns inside every repetition, and the triad runs between them, so that the
 * noise of a shared machine hits all of them alike; figures are medians over the repetitions.
 * Weight bytes are the stored form's (the format's rows plus any separate FP16 scales); a shape
 * whose weights fit in the last-level cache is timed over repeated calls and so runs from cache.
 *
 * bench decode: tokens per second of greedy generation with a trained MiniGPT, per scheme.
 * MiniGPT keeps no KV cache, so each new token is a forward over the whole context so far (B =
 * 1, T = prompt + tokens generated): this measures the Linears at T rows (the prompt-shaped
 * kernels), attention, LayerNorm and the softmax over the vocabulary, as the model runs. */
#include <cblas.h>
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench_mulmat.h"
#include "bench_serve.h"
#include "cli.h"
#include "miniquant/checkpoint.h"
#include "miniquant/fileio.h"
#include "miniquant/kernels.h"
#include "miniquant/progress.h"
#include "miniquant/qmodel.h"
#include "miniquant/report.h"
#include "miniquant/rng.h"
#include "miniquant/roofline.h"

#define MAX_REPS 1000
#define PROMPT_ROWS 64
#define SAMPLE_SECONDS 2e-3 /* a timed sample repeats a call until it lasts about this long */

static const char ABOUT[] =
    "kernels: time, GB/s of weight bytes and GFLOP/s of every scheme's fused kernel on\n"
    "MiniGPT's Linear shapes (K x N = 256x768, 256x256, 256x1024, 1024x256, 256x4096) and on\n"
    "4096x14336, for 1 row of x (decode) and 64 (prompt), against OpenBLAS sgemv / sgemm on the\n"
    "FP32 weight, with the memory bandwidth (STREAM triad) measured in the same run; then, when\n"
    "the model exists, the decode benchmark below. Medians over the repetitions, the schemes\n"
    "interleaved in each. Rows marked +vnni (+int8 on AVX2) use int8 activations\n"
    "(AVX512-VNNI, or AVX2's vpmaddubsw; opt-in in evaluation through MQ_VNNI=1) and show\n"
    "their error against FP32 activations.\n"
    "\n"
    "decode: greedy generation of N tokens, one at a time, with the model quantized per scheme\n"
    "(fp32, int8_per_channel, int4_g64, nf4_g64, and the +vnni forms): tokens per second.\n"
    "Every step is a forward over the whole context (B = 1), without a KV cache.\n"
    "\n"
    "serve: llama-bench's measures on each --model file, as it is stored: pp N, a prompt of N\n"
    "random tokens through an empty KV cache at once, and tg N, N tokens one KV-cached decode\n"
    "step each; tokens per second, mean and standard deviation over the repetitions, each after\n"
    "an untimed warm-up. With LLAMA_CPP_BIN set to llama.cpp's bin folder, llama-bench runs the\n"
    "same test on the same file with the same threads (-r 1 each time), in turns with\n"
    "miniquant, and the table adds its tokens per second and the median ratio. miniquant runs\n"
    "its serving default where the CPU has VNNI: int8 activations in the prompt's products with\n"
    "Q8_0, Q4_0 and K-quant weights and in the decode steps' with Q4_0 and K-quant weights,\n"
    "FP32 activations everywhere else; MQ_VNNI=0 keeps FP32 activations throughout,\n"
    "MQ_VNNI=prompt uses int8 ones in the prompt only, MQ_VNNI=1 in every product of those\n"
    "formats.\n"
    "\n"
    "mulmat: the fused kernels against ggml's on the cases of llama.cpp's test-backend-ops\n"
    "perf -o MUL_MAT -b CPU (run from LLAMA_CPP_BIN to its end first, or read from --from):\n"
    "each case whose weight type miniquant stores (f32, f16, q8_0, q4_0, q2_K .. q6_K,\n"
    "iq4_nl; F32 activations) timed again with miniquant's kernels on the same shape and type\n"
    "(median of --reps samples), and the speed ratio. miniquant runs its serving default, as\n"
    "serve does (ggml's products quantize x to its Q8 types too). test-backend-ops uses all\n"
    "cores.\n";

static const char EPILOG[] =
    "MQ_KERNEL=scalar|avx2|avx512 forces a kernel version. Run on an idle machine.\n";

static const cli_sub_t SUBS[] = {
    {"kernels", NULL}, {"decode", NULL}, {"serve", NULL}, {"mulmat", NULL}, {NULL, NULL}};

/* ---------------------------------------------------------------------------------------------
 * memory bandwidth */

typedef struct stream {
    mq_stream_t buf;
    double triad[MAX_REPS * 16], read[MAX_REPS * 16];
    int samples;
} stream_t;

static int stream_init(stream_t *s, mq_error_t *err) {
    /* each array at least 4 times the last-level cache, and 64 MiB */
    size_t bytes = 4 * mq_llc_bytes();
    if (bytes < ((size_t)64 << 20)) bytes = (size_t)64 << 20;
    s->samples = 0;
    return mq_stream_init(&s->buf, 3 * bytes, err);
}

/* One triad a = b + q c (STREAM counts 3 arrays of bytes) and one read-only pass (a sum). */
static void stream_sample(stream_t *s) {
    double triad = mq_stream_triad(&s->buf, 1), read = mq_stream_read(&s->buf, 1);
    if (s->samples < MAX_REPS * 16) {
        s->triad[s->samples] = triad;
        s->read[s->samples] = read;
        s->samples++;
    }
}

static void stream_free(stream_t *s) {
    mq_stream_free(&s->buf);
}

/* ---------------------------------------------------------------------------------------------
 * kernels */

typedef struct shape {
    int K, N; /* in and out features: the weight is N x K */
} shape_t;

static const shape_t SHAPES[] = {{256, 768},  {256, 256},  {256, 1024},
                                 {1024, 256}, {256, 4096}, {4096, 14336}};
#define N_SHAPES (int)(sizeof SHAPES / sizeof SHAPES[0])

static const char *const KERNEL_SCHEMES[] = {
    "fp32", "fp16", "int8_per_channel", "int8_g64", "int4_g64", "int4_g128", "nf4_g64", NULL};
static const char *const A8_SCHEMES[] = {"int8_per_channel", "int4_g64", NULL};

typedef struct entry {
    const char *scheme;
    int a8;
    int base;               /* index of the entry holding the same weight (the a8 forms share it) */
    const mq_qweight_t *wp; /* the weight timed: w, or the base entry's */
    mq_qweight_t w;         /* the a8 forms read their base entry's */
    int inner[2];           /* calls per sample, per mode */
    double t[2][MAX_REPS];  /* seconds per call, per mode and repetition */
    double rel_err[2];      /* a8: ||y - y_fp|| / ||y_fp|| against FP32 activations */
} entry_t;

typedef struct kbench {
    int threads, reps, quick;
    mq_isa_t isa;
    int have_a8;
    stream_t bw;
    mq_progress_t prog;
    int64_t done;
    cJSON *rows; /* JSON array of results */
} kbench_t;

static double time_calls(const entry_t *e, int inner, const float *x, int rows, float *y) {
    double t0 = mq_now();
    for (int i = 0; i < inner; i++)
        mq_qweight_forward_with(e->wp, mq_kernels_isa(), e->a8, NULL, y, x, rows, NULL);
    return (mq_now() - t0) / inner;
}

static double rel_l2(const float *a, const float *b, size_t n) {
    double num = 0.0, den = 0.0;
    for (size_t i = 0; i < n; i++) {
        num += ((double)a[i] - b[i]) * ((double)a[i] - b[i]);
        den += (double)b[i] * b[i];
    }
    return den > 0.0 ? sqrt(num / den) : 0.0;
}

/* The label of a row with int8 activations: VNNI's on AVX-512, AVX2's vpmaddubsw otherwise. */
static const char *a8_label(mq_isa_t isa) {
    return isa == MQ_ISA_AVX512 ? " +vnni" : " +int8";
}

static void print_kernel_rows(const kbench_t *kb, const shape_t *sh, int mode, entry_t *e, int ne,
                              double triad, size_t llc) {
    int rows = mode ? PROMPT_ROWS : 1;
    double t_fp32 = mq_median(e[0].t[mode], kb->reps);
    for (int i = 0; i < ne; i++) {
        double t = mq_median(e[i].t[mode], kb->reps);
        size_t bytes = mq_qweight_stored_bytes(e[i].wp);
        double gbs = (double)bytes / t / 1e9;
        double gflops = 2.0 * rows * (double)sh->K * sh->N / t / 1e9;
        char label[48], err[32] = "";
        snprintf(label, sizeof label, "%s%s", e[i].scheme,
                 i == 0    ? (mode ? " (sgemm)" : " (sgemv)")
                 : e[i].a8 ? a8_label(kb->isa)
                           : "");
        if (e[i].a8) snprintf(err, sizeof err, "  err %.1e", e[i].rel_err[mode]);
        int cached = bytes <= llc && e[i].inner[mode] > 1;
        printf("%5dx%-6d %-7s %-24s %9.1f us %8.1f %7.2f %s %8.1f %7.2fx%s\n", sh->K, sh->N,
               mode ? "prompt" : "decode", label, t * 1e6, gbs, gbs / triad, cached ? "c" : " ",
               gflops, t_fp32 / t, err);
        cJSON *r = cJSON_CreateObject();
        cJSON_AddNumberToObject(r, "K", sh->K);
        cJSON_AddNumberToObject(r, "N", sh->N);
        cJSON_AddStringToObject(r, "mode", mode ? "prompt" : "decode");
        cJSON_AddNumberToObject(r, "x_rows", rows);
        cJSON_AddStringToObject(r, "scheme", e[i].scheme);
        cJSON_AddStringToObject(r, "kernel",
                                i == 0 ? (mode ? "openblas_sgemm" : "openblas_sgemv")
                                       : mq_isa_name(kb->isa));
        cJSON_AddBoolToObject(r, "int8_activations", e[i].a8);
        cJSON_AddNumberToObject(r, "weight_bytes", (double)bytes);
        cJSON_AddBoolToObject(r, "from_cache", cached);
        cJSON_AddNumberToObject(r, "calls_per_sample", e[i].inner[mode]);
        cJSON_AddNumberToObject(r, "seconds", t);
        cJSON_AddNumberToObject(r, "gb_per_s", gbs);
        cJSON_AddNumberToObject(r, "fraction_of_triad", gbs / triad);
        cJSON_AddNumberToObject(r, "fraction_of_read",
                                gbs / mq_median(kb->bw.read, kb->bw.samples));
        cJSON_AddNumberToObject(r, "gflop_per_s", gflops);
        cJSON_AddNumberToObject(r, "speedup_vs_fp32", t_fp32 / t);
        if (e[i].a8) cJSON_AddNumberToObject(r, "rel_err_vs_fp32_activations", e[i].rel_err[mode]);
        cJSON_AddItemToArray(kb->rows, r);
    }
}

/* Quantizes and packs every scheme of one shape; entries[0] is fp32. */
static int build_entries(const kbench_t *kb, const shape_t *sh, entry_t *e, int *ne,
                         mq_error_t *err) {
    size_t numel = (size_t)sh->N * sh->K;
    float *W = malloc(numel * sizeof *W);
    if (!W)
        return mq_error_set(err, MQ_ERR_NOMEM, "cannot allocate a %d x %d weight", sh->N, sh->K);
    mq_rng_t r;
    mq_rng_seed(&r, 1000 + (uint64_t)sh->K * 7 + (uint64_t)sh->N);
    for (size_t i = 0; i < numel; i++)
        W[i] = 0.02f * mq_rng_normal(&r);
    int n = 0, rc = MQ_OK;
    for (int i = 0; KERNEL_SCHEMES[i] && rc == MQ_OK; i++, n++) {
        mq_scheme_t s;
        memset(&e[n], 0, sizeof e[n]);
        e[n].scheme = KERNEL_SCHEMES[i];
        e[n].base = n;
        rc = mq_scheme_parse(e[n].scheme, &s, err);
        if (rc == MQ_OK) rc = mq_qweight_quantize(&e[n].w, &s, W, sh->N, sh->K, err);
    }
    for (int k = 0; k < n; k++)
        e[k].wp = &e[k].w;
    for (int i = 0; kb->have_a8 && A8_SCHEMES[i] && rc == MQ_OK; i++) {
        int base = -1;
        for (int k = 0; k < n; k++)
            if (!strcmp(e[k].scheme, A8_SCHEMES[i])) base = k;
        if (base < 0 || !mq_qweight_takes_a8(&e[base].w, kb->isa)) continue; /* AVX2: no Q8_0 */
        memset(&e[n], 0, sizeof e[n]);
        e[n].scheme = A8_SCHEMES[i];
        e[n].a8 = 1;
        e[n].base = base;
        e[n].wp = &e[base].w; /* shares the weight */
        n++;
    }
    free(W);
    *ne = n;
    return rc;
}

static void free_entries(entry_t *e, int ne) {
    for (int i = 0; i < ne; i++)
        if (e[i].base == i) mq_qweight_free(&e[i].w);
}

/* Times one shape in both modes. */
static int bench_shape(kbench_t *kb, const shape_t *sh, size_t llc, mq_error_t *err) {
    entry_t *e = calloc(16, sizeof *e);
    if (!e) return mq_error_set(err, MQ_ERR_NOMEM, "out of memory");
    int ne = 0, rc = build_entries(kb, sh, e, &ne, err);
    float *x = NULL, *y = NULL, *yref = NULL;
    if (rc == MQ_OK) {
        x = malloc((size_t)PROMPT_ROWS * sh->K * sizeof *x);
        y = malloc((size_t)PROMPT_ROWS * sh->N * sizeof *y);
        yref = malloc((size_t)PROMPT_ROWS * sh->N * sizeof *yref);
        if (!x || !y || !yref) rc = mq_error_set(err, MQ_ERR_NOMEM, "out of memory");
    }
    if (rc == MQ_OK) {
        mq_rng_t r;
        mq_rng_seed(&r, 77);
        for (size_t i = 0; i < (size_t)PROMPT_ROWS * sh->K; i++)
            x[i] = mq_rng_normal(&r);
    }
    for (int mode = 0; mode < 2 && rc == MQ_OK; mode++) {
        int rows = mode ? PROMPT_ROWS : 1;
        /* the error of int8 activations, and the calls per sample (one untimed call warms up) */
        for (int i = 0; i < ne; i++) {
            if (e[i].a8) {
                const entry_t *b = &e[e[i].base];
                size_t n = (size_t)rows * sh->N;
                mq_qweight_forward_with(b->wp, mq_kernels_isa(), 0, NULL, yref, x, rows, NULL);
                mq_qweight_forward_with(e[i].wp, mq_kernels_isa(), 1, NULL, y, x, rows, NULL);
                e[i].rel_err[mode] = rel_l2(y, yref, n);
            }
            double t = time_calls(&e[i], 1, x, rows, y);
            for (int k = 0; k < 4; k++) { /* the fastest of a few: a stall is not the call */
                double tk = time_calls(&e[i], 1, x, rows, y);
                t = tk < t ? tk : t;
            }
            int inner = (int)(SAMPLE_SECONDS / (t > 1e-9 ? t : 1e-9));
            /* weights near the cache's size are timed one call at a time, streamed from memory
             * (the other schemes' calls in between evict them) */
            if (mq_qweight_stored_bytes(e[i].wp) > llc / 4) inner = 1;
            e[i].inner[mode] = inner < 1 ? 1 : inner > 100000 ? 100000 : inner;
        }
        for (int rep = 0; rep < kb->reps; rep++) {
            for (int i = 0; i < ne; i++)
                e[i].t[mode][rep] = time_calls(&e[i], e[i].inner[mode], x, rows, y);
            stream_sample(&kb->bw);
            mq_progress_update(&kb->prog, ++kb->done, NULL);
        }
    }
    if (rc == MQ_OK) {
        double triad = mq_median(kb->bw.triad, kb->bw.samples);
        for (int mode = 0; mode < 2; mode++)
            print_kernel_rows(kb, sh, mode, e, ne, triad, llc);
        fflush(stdout);
    }
    free(x);
    free(y);
    free(yref);
    free_entries(e, ne);
    free(e);
    return rc;
}

/* ---------------------------------------------------------------------------------------------
 * decode */

static const char *const DECODE_SCHEMES[] = {"fp32", "int8_per_channel", "int4_g64", "nf4_g64",
                                             NULL};

typedef struct dentry {
    const char *scheme;
    int a8;
    mq_gpt_t m;
    mq_qmodel_t q;
    int quantized;
    int *tokens; /* the generated sequence of the last run */
    double t[MAX_REPS];
} dentry_t;

/* 1 when the int8-activation mode takes the scheme's weights (asked of its format's row, for
 * MiniGPT's rows of 256 inputs). */
static int scheme_takes_a8(const char *name) {
    mq_scheme_t s;
    if (mq_scheme_parse(name, &s, NULL)) return 0;
    return mq_format_takes_a8(mq_format_for(&s, 256, NULL), mq_kernels_isa());
}

/* The model an entry runs: its quantized model, or the FP32 one. */
static mq_gpt_t *run_model(dentry_t *d) {
    return d->quantized ? d->q.model : &d->m;
}

/* Greedy generation from tokens[0 .. plen): each step a forward over the context so far. */
static int generate(mq_gpt_t *m, int *tokens, int plen, int total, mq_error_t *err) {
    int V = m->cfg.vocab_size;
    for (int T = plen; T < total; T++) {
        int rc = mq_gpt_forward(m, tokens, NULL, 1, T, err);
        if (rc) return rc;
        const float *l = m->acts.logits + (size_t)(T - 1) * V;
        int best = 0;
        for (int v = 1; v < V; v++)
            if (l[v] > l[best]) best = v;
        tokens[T] = best;
    }
    return MQ_OK;
}

static int bench_decode(const char *model, int reps, int tokens, int progress_on, cJSON **out,
                        mq_error_t *err) {
    dentry_t d[8];
    int nd = 0, rc = MQ_OK, isa_a8 = mq_isa_supports_a8(mq_kernels_isa());
    memset(d, 0, sizeof d);
    for (int i = 0; DECODE_SCHEMES[i]; i++)
        for (int a8 = 0; a8 < 2; a8++) {
            if (a8 && (!isa_a8 || !scheme_takes_a8(DECODE_SCHEMES[i]))) continue;
            d[nd].scheme = DECODE_SCHEMES[i];
            d[nd++].a8 = a8;
        }
    mq_tokenizer_t *tok = NULL;
    int plen = 1, total = 0, prompt = 0;
    for (int i = 0; i < nd && rc == MQ_OK; i++) {
        rc = mq_checkpoint_load(model, &d[i].m, i == 0 ? &tok : NULL, NULL, err);
        if (rc) break;
        if (i == 0) {
            int32_t eot = tok ? mq_tokenizer_eot(tok) : -1;
            prompt = eot >= 0 ? eot : 0;
            int room = d[0].m.cfg.n_ctx - plen;
            total = plen + (tokens > 0 && tokens < room ? tokens : room);
        }
        d[i].tokens = calloc((size_t)total, sizeof(int));
        if (!d[i].tokens) rc = mq_error_set(err, MQ_ERR_NOMEM, "out of memory");
        if (rc == MQ_OK && strcmp(d[i].scheme, "fp32")) {
            mq_scheme_t s;
            rc = mq_scheme_parse(d[i].scheme, &s, err);
            if (rc == MQ_OK) rc = mq_qmodel_quantize(&d[i].q, &d[i].m, &s, NULL, err);
            d[i].quantized = rc == MQ_OK;
            if (rc == MQ_OK) d[i].q.fused = 1; /* the fused kernels, whatever MQ_REFERENCE says */
        }
        /* size the activations for the longest context once, outside the timing */
        if (rc == MQ_OK) rc = mq_gpt_forward(run_model(&d[i]), d[i].tokens, NULL, 1, total, err);
    }
    mq_tokenizer_free(tok);
    mq_isa_t isa = mq_kernels_isa();
    mq_progress_t prog;
    if (rc == MQ_OK && progress_on) mq_progress_start(&prog, "bench decode", (int64_t)reps * nd);
    for (int rep = 0; rep < reps && rc == MQ_OK; rep++)
        for (int i = 0; i < nd && rc == MQ_OK; i++) {
            rc = mq_kernels_select(isa, d[i].a8, err);
            d[i].tokens[0] = prompt;
            double t0 = mq_now();
            if (rc == MQ_OK) rc = generate(run_model(&d[i]), d[i].tokens, plen, total, err);
            d[i].t[rep] = mq_now() - t0;
            if (progress_on) mq_progress_update(&prog, (int64_t)rep * nd + i + 1, NULL);
        }
    mq_kernels_select(isa, 0, NULL);
    if (rc == MQ_OK && progress_on) mq_progress_finish(&prog, NULL);
    cJSON *res = NULL;
    if (rc == MQ_OK) {
        int gen = total - plen;
        double t_fp32 = mq_median(d[0].t, reps);
        printf("\n== end-to-end decode: %s, %d tokens generated one at a time after a %d-token "
               "prompt (context up to %d), greedy; median of %d runs\n",
               model, gen, plen, total, reps);
        printf("   (no KV cache: each step is a forward over the whole context, B = 1)\n");
        printf("%-26s %10s %10s %9s %14s\n", "scheme", "tokens/s", "ms/token", "vs fp32",
               "same tokens");
        res = cJSON_CreateObject();
        cJSON_AddStringToObject(res, "model", model);
        cJSON_AddNumberToObject(res, "prompt_tokens", plen);
        cJSON_AddNumberToObject(res, "generated_tokens", gen);
        cJSON_AddNumberToObject(res, "reps", reps);
        cJSON_AddStringToObject(res, "measures",
                                "greedy generation without a KV cache: every step is a forward "
                                "over the whole context (B = 1, T = prompt + generated so far)");
        cJSON *arr = cJSON_AddArrayToObject(res, "results");
        for (int i = 0; i < nd; i++) {
            double t = mq_median(d[i].t, reps);
            int same = 0;
            for (int k = plen; k < total; k++)
                same += d[i].tokens[k] == d[0].tokens[k];
            char label[48];
            snprintf(label, sizeof label, "%s%s", d[i].scheme,
                     d[i].a8 ? a8_label(mq_kernels_isa()) : "");
            printf("%-26s %10.1f %10.2f %8.2fx %8d / %d\n", label, gen / t, 1e3 * t / gen,
                   t_fp32 / t, same, gen);
            cJSON *r = cJSON_CreateObject();
            cJSON_AddStringToObject(r, "scheme", d[i].scheme);
            cJSON_AddBoolToObject(r, "int8_activations", d[i].a8);
            cJSON_AddNumberToObject(r, "tokens_per_s", gen / t);
            cJSON_AddNumberToObject(r, "ms_per_token", 1e3 * t / gen);
            cJSON_AddNumberToObject(r, "speedup_vs_fp32", t_fp32 / t);
            cJSON_AddNumberToObject(r, "tokens_matching_fp32", same);
            cJSON_AddItemToArray(arr, r);
        }
        fflush(stdout);
    }
    for (int i = 0; i < nd; i++) {
        if (d[i].quantized) mq_qmodel_free(&d[i].q);
        mq_gpt_free(&d[i].m);
        free(d[i].tokens);
    }
    *out = res;
    return rc;
}

/* ---------------------------------------------------------------------------------------------
 * the command */

typedef struct opts {
    int threads, reps, quick, tokens, no_decode, n_prompt, n_gen;
    const char *json, *model, *from, *save, *plot;
    cli_model_list_t models;
} opts_t;

static int write_json(const char *path, cJSON *root, const opts_t *o, const char *sub) {
    cJSON *cfg = cJSON_CreateObject();
    cJSON_AddStringToObject(cfg, "command", sub);
    cJSON_AddNumberToObject(cfg, "threads", o->threads);
    cJSON_AddNumberToObject(cfg, "reps", o->reps);
    cJSON_AddBoolToObject(cfg, "quick", o->quick);
    cJSON_AddItemToObject(root, "manifest", mq_manifest(0, cfg));
    mq_error_t err = {0};
    int rc = mq_json_write(path, root, &err);
    if (rc) return cli_fail(&err);
    fprintf(stderr, "bench: wrote %s\n", path);
    return 0;
}

int cmd_bench(int argc, char **argv) {
    opts_t o = {0};
    cli_option_t opts[] = {
        {CLI_OPT_THREADS(&o.threads)},
        {CLI_OPT_REPS(&o.reps, MAX_REPS, "9 for kernels, 5 for decode and serve")},
        {CLI_OPT_JSON(&o.json)},
        {.name = "quick",
         .flag = &o.quick,
         .help = "3 repetitions, without the 4096x14336 shape, 32 decode tokens",
         .subs = "kernels decode serve"},
        {CLI_OPT_MODELS(&o.models, "the trained model; serve: a model file, once or more"),
         .def_text = CLI_DEFAULT_MODEL, .subs = "kernels decode serve"},
        {.name = "n-prompt",
         .short_name = 'p',
         .arg = "N",
         .i = &o.n_prompt,
         .lo = -1,
         .hi = 1 << 20,
         .subs = "serve",
         .def_text = "the model's context, at most 512; -1: none",
         .help = "serve: the prompt's tokens (pp N)"},
        {.name = "n-gen",
         .short_name = 'n',
         .arg = "N",
         .i = &o.n_gen,
         .lo = -1,
         .hi = 1 << 20,
         .subs = "serve",
         .def_text = "the model's context, at most 128; -1: none",
         .help = "serve: tokens generated (tg N)"},
        {.name = "from",
         .arg = "FILE",
         .str = &o.from,
         .subs = "serve mulmat",
         .help = "mulmat: read test-backend-ops' output from FILE instead of running it; serve: "
                 "draw --plot from FILE, a --json of an earlier run, measuring nothing"},
        {.name = "plot",
         .arg = "FILE.png",
         .str = &o.plot,
         .subs = "serve",
         .help = "serve: draw each file's ratios to llama.cpp (needs LLAMA_CPP_BIN or --from)"},
        {.name = "save",
         .arg = "FILE",
         .str = &o.save,
         .subs = "mulmat",
         .help = "mulmat: keep test-backend-ops' output of the run in FILE"},
        {.name = "tokens",
         .arg = "N",
         .i = &o.tokens,
         .lo = 1,
         .hi = 1 << 20,
         .subs = "kernels decode",
         .def_text = "fill the context",
         .help = "tokens to generate"},
        {.name = "no-decode", .flag = &o.no_decode, .subs = "kernels", .help = "kernels only"},
        {0},
    };
    const cli_command_t cmd = {
        .name = "bench", .subs = SUBS, .about = ABOUT, .epilog = EPILOG, .opts = opts};
    cli_args_t args;
    int prc = cli_parse(&cmd, argc, argv, &args);
    if (prc != CLI_CONTINUE) return prc;
    const char *sub = args.sub;
    int is_kernels = !strcmp(sub, "kernels"), is_serve = !strcmp(sub, "serve"),
        is_mulmat = !strcmp(sub, "mulmat");
    if (!is_mulmat && o.save) return cli_usage_error(&cmd, "%s: --save is mulmat's", sub);
    if (!is_mulmat && !is_serve && o.from)
        return cli_usage_error(&cmd, "%s: --from is serve's and mulmat's", sub);
    if (!is_serve && o.plot) return cli_usage_error(&cmd, "%s: --plot is serve's", sub);
    if (is_serve && o.from && (!o.plot || o.models.n || o.json))
        return cli_usage_error(&cmd, "serve: --from FILE draws --plot from FILE, and only that");
    if (o.from && o.save)
        return cli_usage_error(&cmd, "mulmat: --save keeps a run's output; --from runs none");
    if (is_mulmat && o.models.n)
        return cli_usage_error(&cmd, "mulmat: no --model (the cases are ggml's)");
    if (o.models.n > 1 && !is_serve)
        return cli_usage_error(&cmd, "%s: one --model (serve takes several)", sub);
    o.model = o.models.n ? o.models.v[0] : NULL;
    if (!is_serve && (o.n_prompt || o.n_gen))
        return cli_usage_error(&cmd, "%s: --n-prompt and --n-gen are serve's", sub);
    if (!is_kernels && o.no_decode)
        return cli_usage_error(&cmd, "%s: --no-decode makes no sense here", sub);
    if (o.quick && !o.reps) o.reps = 3;
    if (!o.reps) o.reps = is_kernels ? 9 : 5;
    if (o.quick && !o.tokens) o.tokens = 32;
    cli_set_threads(o.threads);
    o.threads = omp_get_max_threads();
    mq_error_t err = {0};
    if (mq_kernels_init(&err)) return cli_fail(&err);
    const char *model = o.model ? o.model : CLI_DEFAULT_MODEL;
    cJSON *root = cJSON_CreateObject();
    cJSON_AddStringToObject(root, "kernel_version", mq_isa_name(mq_kernels_isa()));
    cJSON_AddNumberToObject(root, "threads", o.threads);
    int rc = MQ_OK;

    if (is_serve && o.from) {
        cJSON *j = NULL;
        rc = mq_json_read(o.from, &j, &err);
        if (rc == MQ_OK) rc = cli_bench_serve_plot(cJSON_GetObjectItem(j, "serve"), o.plot, &err);
        if (rc) mq_error_prefix(&err, "%s", o.from);
        cJSON_Delete(j);
        cJSON_Delete(root);
        if (rc) return cli_fail(&err);
        fprintf(stderr, "bench: wrote %s\n", o.plot);
        return 0;
    }
    if (is_serve) {
        const char *def[] = {CLI_DEFAULT_MODEL};
        cli_serve_opts_t so = {.models = o.models.n ? o.models.v : def,
                               .n_models = o.models.n ? o.models.n : 1,
                               .n_prompt = o.n_prompt,
                               .n_gen = o.n_gen,
                               .reps = o.reps};
        rc = cli_bench_serve(&so, root, &err);
        if (rc == MQ_OK && o.plot) {
            rc = cli_bench_serve_plot(cJSON_GetObjectItem(root, "serve"), o.plot, &err);
            if (rc == MQ_OK) fprintf(stderr, "bench: wrote %s\n", o.plot);
        }
    }
    if (is_mulmat) {
        cli_mulmat_opts_t mo = {.from = o.from, .save = o.save, .reps = o.reps};
        rc = cli_bench_mulmat(&mo, root, &err);
    }
    if (is_kernels) {
        kbench_t kb;
        memset(&kb, 0, sizeof kb);
        kb.threads = o.threads;
        kb.reps = o.reps;
        kb.quick = o.quick;
        kb.isa = mq_kernels_isa();
        kb.have_a8 = mq_isa_supports_a8(kb.isa);
        kb.rows = cJSON_CreateArray();
        size_t llc = mq_llc_bytes();
        rc = stream_init(&kb.bw, &err);
        int n_shapes = o.quick ? N_SHAPES - 1 : N_SHAPES;
        if (rc == MQ_OK) {
            printf("== fused kernels: %s%s, %d threads, median of %d runs (schemes interleaved in "
                   "each)\n",
                   mq_isa_name(kb.isa),
                   !kb.have_a8               ? ""
                   : kb.isa == MQ_ISA_AVX512 ? " (+vnni: int8 activations, AVX512-VNNI)"
                   : kb.isa == MQ_ISA_AVX2   ? " (+int8: int8 activations, vpmaddubsw)"
                                             : " (+int8: int8 activations)",
                   o.threads, o.reps);
            printf(
                "   K x N: y (rows, N) = x (rows, K) W^T; decode 1 row, prompt %d; GB/s of weight "
                "bytes (codes + FP16 scales), 'c' = from cache (fit in the %zu MiB LLC, call "
                "repeated)\n",
                PROMPT_ROWS, llc >> 20);
            printf("%-12s %-7s %-24s %12s %8s %7s   %8s %8s\n", "K x N", "mode", "scheme", "time",
                   "GB/s", "of BW", "GFLOP/s", "vs fp32");
            fflush(stdout);
            mq_progress_start(&kb.prog, "bench kernels", (int64_t)n_shapes * 2 * o.reps);
        }
        for (int s = 0; s < n_shapes && rc == MQ_OK; s++)
            rc = bench_shape(&kb, &SHAPES[s], llc, &err);
        if (rc == MQ_OK) {
            mq_progress_finish(&kb.prog, NULL);
            double triad = mq_median(kb.bw.triad, kb.bw.samples),
                   rd = mq_median(kb.bw.read, kb.bw.samples);
            printf("\n== memory bandwidth, %d threads, %zu MiB arrays, median of %d samples taken "
                   "between the kernels: triad %.1f GB/s (STREAM's count, 3 arrays), read %.1f "
                   "GB/s; 'of BW' above is GB/s / triad\n",
                   o.threads, (kb.bw.buf.n * sizeof(float)) >> 20, kb.bw.samples, triad, rd);
            cJSON *bw = cJSON_AddObjectToObject(root, "memory_bandwidth");
            cJSON_AddNumberToObject(bw, "triad_gb_per_s", triad);
            cJSON_AddNumberToObject(bw, "read_gb_per_s", rd);
            cJSON_AddNumberToObject(bw, "array_bytes", (double)(kb.bw.buf.n * sizeof(float)));
            cJSON_AddNumberToObject(bw, "llc_bytes", (double)llc);
            cJSON_AddNumberToObject(bw, "samples", kb.bw.samples);
            cJSON_AddItemToObject(root, "kernels", kb.rows);
            kb.rows = NULL;
            fflush(stdout);
        }
        cJSON_Delete(kb.rows);
        stream_free(&kb.bw);
    }
    int want_decode = !is_serve && !is_mulmat &&
                      (!is_kernels || (!o.no_decode && (o.model || mq_file_exists(model))));
    if (rc == MQ_OK && want_decode) {
        cJSON *dec = NULL;
        rc = bench_decode(model, is_kernels ? (o.reps < 5 ? o.reps : 5) : o.reps, o.tokens, 1, &dec,
                          &err);
        if (dec) cJSON_AddItemToObject(root, "decode", dec);
    } else if (rc == MQ_OK && is_kernels && !o.no_decode) {
        printf("\n(no end-to-end decode: %s does not exist; see --model)\n", model);
    }
    int ret = rc ? cli_fail(&err) : 0;
    if (!ret && o.json)
        ret = write_json(o.json, root, &o,
                         is_kernels  ? "bench kernels"
                         : is_serve  ? "bench serve"
                         : is_mulmat ? "bench mulmat"
                                     : "bench decode");
    cJSON_Delete(root);
    return ret;
}
