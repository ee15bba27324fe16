/* miniquant: the roofline of this machine and where a MiniGPT decode step sits under it.
 *
 * Ceilings, measured by miniquant itself on the OpenMP thread count in force:
 *   peak FP32 FLOP/s   a register-blocked FMA loop (12 independent accumulator vectors per
 *                      thread, no memory traffic) in the widest version this CPU runs: AVX-512,
 *                      AVX2 + FMA, or portable C. This is the compute roof. OpenBLAS sgemm on an
 *                      n x n x n product is measured beside it, as what a real kernel attains.
 *   peak int8 OP/s     the same loop of the int8 products the int8-activation kernels of the
 *                      version in force run (kernels.h): vpdpbusd on AVX-512 with VNNI (64
 *                      multiply-adds of bytes per instruction), vpmaddubsw, vpmaddwd and an add
 *                      on AVX2 (32 per three), each multiply-add counted 2, as FLOPs are.
 *   bandwidth          a STREAM triad a = b + q c (GB/s counted as STREAM does: 3 arrays, the
 *                      write-allocate read of a not counted) and a read-only sum, over a working
 *                      set (the three arrays) well above the last-level cache (DRAM) and one
 *                      inside it (in-cache; the roofline command sizes it as its largest decode
 *                      step's bytes, which is where those bytes sit between steps).
 * Every figure is the median of repeated samples.
 *
 * Arithmetic intensity of one decode step (mq_decode_cost): one token at position T - 1,
 * attending to T positions (T - 1 read from the KV cache, its own written to it), B = 1. FLOPs
 * count a multiply-add as 2 and every other arithmetic operation (add, multiply, compare, exp,
 * division) as 1:
 *   Linear (OC x C)            2 C OC, + OC for its bias (lm_head has none)
 *   attention, per layer       4 T C (the q.k and weights.v dot products) + 5 NH T (per score:
 *                              scale, max, subtract, exp, sum) + C + NH (normalise, 1 / sum)
 *   LayerNorm of C             8 C (mean 1, variance 3, normalise and affine 4)
 *   GELU (tanh form) of 4C     9 per element
 *   residual adds, embedding   C each (2 residual adds per layer, 1 embedding add)
 * Bytes count every tensor read or written once, at its stored type:
 *   weights       every Linear as stored, which is what the fused kernels read: its format's
 *                 rows (format.h: row_bytes, e.g. 18 bytes per 32 weights for Q4_0) plus the
 *                 FP16 scales of formats that keep them apart (mq_qweight_stored_bytes).
 *   params        Linear biases and LayerNorm weights and biases, FP32
 *   embedding     the token's row of wte and the position's row of wpe: FP16 (FP32 for fp32),
 *                 as the schemes store them
 *   kv            per layer, the token's key and value written (2 C) and T keys and values read
 *                 back (2 T C, its own included), FP32
 *   activations   every op's FP32 inputs and outputs: per layer 38 C (LayerNorm 2 C twice,
 *                 qkv 4 C, attention 4 C (q, the new k and v, its output), attention output
 *                 Linear 2 C, residual adds 3 C twice, MLP up 5 C, GELU 8 C, MLP down 5 C), then
 *                 the final LayerNorm 2 C, lm_head C + V and the embedding sum C. The NH x T
 *                 attention weights stay in registers and L1 and are not counted.
 * Arithmetic intensity = FLOPs / bytes. */
#ifndef MINIQUANT_ROOFLINE_H
#define MINIQUANT_ROOFLINE_H

#include <stddef.h>
#include <stdint.h>

#include "miniquant/error.h"
#include "miniquant/kernels.h"
#include "miniquant/model.h"
#include "miniquant/progress.h"
#include "miniquant/quant.h"

/* The last-level cache as the kernel describes it in sysfs (sysconf's figure can be the whole
 * socket's in a virtual machine), else sysconf's, else 32 MiB. */
size_t mq_llc_bytes(void);

/* ---------------------------------------------------------------------------------------------
 * bandwidth: STREAM-style buffers */

typedef struct mq_stream {
    float *a, *b, *c;
    size_t n; /* floats per array */
} mq_stream_t;

/* Three arrays of working_set / 3 bytes each (at least 1024 floats), filled in parallel so
 * that each thread's pages lie where it runs. */
int mq_stream_init(mq_stream_t *s, size_t working_set, mq_error_t *err);
void mq_stream_free(mq_stream_t *s);
/* GB/s of `passes` triads a = b + q c timed together (3 arrays counted per pass). */
double mq_stream_triad(mq_stream_t *s, int passes);
/* GB/s of `passes` read-only passes over a (a sum), timed together. */
double mq_stream_read(mq_stream_t *s, int passes);

/* ---------------------------------------------------------------------------------------------
 * the ceilings */

typedef struct mq_ceiling_opts {
    int reps;              /* samples per figure (0: 7) */
    double fma_seconds;    /* length of one FMA sample (0: 0.1 s) */
    int sgemm_n;           /* sgemm shape n x n x n (0: 2048) */
    size_t dram_bytes;     /* DRAM working set (0: 8 x the LLC, at least 256 MiB) */
    size_t cache_bytes;    /* in-cache working set (0: LLC / 2) */
    double stream_seconds; /* a bandwidth sample repeats passes to last about this long (0:
                              0.05 s) */
} mq_ceiling_opts_t;

typedef struct mq_ceilings {
    int threads;
    mq_isa_t isa;        /* the FMA loop's version */
    double peak_gflops;  /* FMA loop: the compute roof */
    double peak_int8_gops; /* int8 products' roof (mq_peak_int8_sample); 0: none measured */
    mq_isa_t int8_isa;     /* the kernels' version whose int8 products it measures */
    double sgemm_gflops; /* OpenBLAS sgemm */
    int sgemm_n;
    size_t llc_bytes, dram_bytes, cache_bytes; /* working sets: three arrays together */
    double dram_triad_gbs, dram_read_gbs;
    double cache_triad_gbs, cache_read_gbs;
    int reps;
} mq_ceilings_t;

/* Total steps mq_ceilings_measure reports to its progress bar for opts. */
int64_t mq_ceilings_steps(const mq_ceiling_opts_t *opts);
/* Measures the ceilings (opts may be NULL: the defaults). prog, when non-NULL and started by
 * the caller, advances by one per sample from its current count. */
int mq_ceilings_measure(mq_ceilings_t *c, const mq_ceiling_opts_t *opts, mq_progress_t *prog,
                        mq_error_t *err);
/* GFLOP/s of one FMA sample of about `seconds` on every thread, with version isa (which this
 * CPU must run, see mq_isa_supported). */
double mq_peak_fma_sample(mq_isa_t isa, double seconds);
/* G-operations/s (a multiply-add counts 2) of one sample of about `seconds` on every thread of
 * the int8 dot-product loop of version isa (AVX-512: vpdpbusd; AVX2: vpmaddubsw, vpmaddwd); 0
 * when isa has no int8-activation kernels on this CPU (mq_isa_supports_a8) or is scalar. */
double mq_peak_int8_sample(mq_isa_t isa, double seconds);
/* The instructions of that loop on isa, in words ("vpdpbusd"). */
const char *mq_int8_loop_name(mq_isa_t isa);
/* The compute roof of work of flops_fp32 FP32 operations and flops_int8 operations of int8
 * products, each at its own peak: their sum over the least time they take together,
 * (flops_fp32 + flops_int8) / (flops_fp32 / peak + flops_int8 / peak_int8), in GFLOP/s. The
 * FP32 peak when there are no int8 products or no int8 peak was measured. */
double mq_compute_roof(const mq_ceilings_t *c, double flops_fp32, double flops_int8);

/* ---------------------------------------------------------------------------------------------
 * the decode step */

typedef struct mq_decode_cost {
    int context; /* T: positions attended */
    int64_t flops, flops_linear, flops_attention, flops_other;
    int64_t bytes, bytes_weights, bytes_params, bytes_embedding, bytes_kv, bytes_activations;
    double intensity; /* FLOP / byte */
} mq_decode_cost_t;

/* FLOPs and bytes of one decode step of a model of config cfg with every Linear (lm_head
 * included) in scheme s, attending to T = context positions (1 <= context <= maxT), as the
 * header describes. MQ_ERR_ARG for a context out of range or a group size that does not
 * divide a Linear's input width. */
int mq_decode_cost(const mq_gpt_config_t *cfg, const mq_scheme_t *s, int context,
                   mq_decode_cost_t *out, mq_error_t *err);

/* Fills kv with the first context - 1 tokens of greedy generation from `prompt` (kv->len =
 * context - 1 on return) and leaves in *next the token of position context - 1: the step
 * mq_decode_step_seconds times. */
int mq_decode_prefill(mq_gpt_t *m, mq_gpt_kv_t *kv, int prompt, int context, int *next,
                      mq_error_t *err);
/* Seconds per step of `calls` decode steps of token at position kv->len (the cache is rewound
 * after each, so every call is the same step), after one untimed step that brings the model's
 * bytes back into the cache. */
int mq_decode_step_seconds(mq_gpt_t *m, mq_gpt_kv_t *kv, int token, int calls, double *seconds,
                           mq_error_t *err);

/* Seconds per call of `calls` runs of the step's Linears alone (mq_gpt_decode_linears), after
 * one untimed run: the kernels' own ceiling inside the step, without its attention, norms and
 * barriers. */
int mq_decode_linears_seconds(mq_gpt_t *m, mq_gpt_kv_t *kv, int calls, double *seconds,
                              mq_error_t *err);

/* ---------------------------------------------------------------------------------------------
 * the plot */

typedef struct mq_roofline_point {
    const char *label; /* beside the dot, e.g. the scheme's name */
    double intensity;  /* FLOP / byte, > 0 */
    double gflops;     /* achieved GFLOP/s, > 0 */
    const char *note;  /* appended to the point's key entry (may be NULL) */
    int int8;          /* 1: some of its products take int8 activations (the int8 peak applies) */
} mq_roofline_point_t;

/* Draws the roofline (log-log: arithmetic intensity against GFLOP/s) with the DRAM and in-cache
 * triad roofs, the FMA peak and the sgemm line, each labelled (and, when a point has int8
 * products and the int8 peak was measured, that peak and the bandwidth roofs up to it, dashed),
 * and a labelled dot per point
 * (with its figures in a key below the plot), into png. subtitle (may be NULL) is a second title
 * line. Quotes and backslashes in the texts are dropped. */
int mq_roofline_plot(const char *png, const mq_ceilings_t *c, const mq_roofline_point_t *pts, int n,
                     const char *subtitle, mq_error_t *err);

#endif
