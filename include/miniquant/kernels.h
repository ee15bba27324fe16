/* miniquant: fused kernels for QuantizedLinear, y (N, OC) = x (N, C) @ deq(W)^T + b, computed
 * from the weight's stored bytes (quant.h: the rows of its format, as in its GGUF tensor):
 * weights are expanded in registers or in a small per-thread buffer, never materialised whole
 * in FP32.
 *
 * Versions: AVX-512 (F/BW/VL/DQ, and VNNI for the int8-activation mode), AVX2 + FMA + F16C, and
 * portable scalar C, which is the reference the others are tested against. One is chosen once,
 * on first use, from the CPU's features; MQ_KERNEL=scalar|avx2|avx512 in the environment forces
 * one (a version the CPU lacks is refused with a message, never silently replaced). Which code
 * runs for a weight is its format's row (format.h: kernels[isa]). Output rows are split across
 * OpenMP threads (static schedule); every output is computed by one thread in a fixed order, so
 * results do not depend on the thread count. F32 weights run OpenBLAS's sgemm for several x
 * rows on every version, and for one x row their own dot kernel on AVX2 and AVX-512 (OpenBLAS's
 * sgemv on the scalar version).
 *
 * Summation order of the scalar reference (every product rounded before it is added):
 *   for each x row n and output row o:
 *     acc = 0
 *     for each scale block b in column order:
 *       gsum = 0;  for each column i of the block in order: gsum += v(o, i) * x[n][i]
 *       acc += s(o, b) * gsum
 *     y[n][o] = acc + bias[o]
 *   v is the code (int) or codebook value (nf4, nf3) or the half (fp16, whose "scale" is 1), s
 *   the FP16 scale as FP32.
 * The SIMD versions, for several x rows (prompt), copy each 16 (AVX-512) or 8 (AVX2) output
 * rows of their share into a float panel (the rows' unscaled values column by column, one lane
 * per row, read straight from the blocks' bytes), and run each output as one FMA chain over the
 * columns in order of the weights times their scales (v * s, the reference path's value):
 * y[n][o] = fma(v s, x[n][C-1], ... fma(v s, x[n][0], 0)); a last single x row of an odd
 * batch, on AVX-512, runs four chains per scale block (column i in chain i % 4), their sum times
 * the scales. For one x row (decode) they read the blocks in row order: per output row lanes of
 * partial sums, each block's values times its scale, reduced at the end (F16: the same for
 * both; IQ4_NL: Q4_0's kernel with its codebook; ggml's K-quants: each 256-block's sub-block
 * scales (and mins) decoded once per row, 16 (AVX-512) or 8 (AVX2) codes widened at a time, each
 * sub-block's sum times its scale, the mins times the sums of x; Q5_0 and Q5_1, whose scale
 * block is the whole row, read a row's values through their format's reader, then one dot
 * product).
 * Their results agree with the scalar reference within FP32 summation error,
 * |y - y_ref| <= 1e-5 * sum_i |x_i| |w_i| (tested). The SIMD versions take weights whose scale
 * blocks are whole rows or multiples of 16 columns; a weight with another group size (e.g.
 * g24) runs the scalar kernels whatever the selection.
 *
 * Int8-activation mode ("a8"; MQ_VNNI=1 or mq_kernels_select for every product, MQ_VNNI=prompt
 * for products of several x rows only, MQ_VNNI=serve for those and the K-quants' products of
 * one x row, the serving commands' default, mq_kernels_serving): each x row is quantized
 * per block of 32 columns, xq = round-half-even(x * 127 / max|x_block|), scale max / 127, and
 * the products are integer dot products (AVX-512 VNNI's vpdpbusd; on AVX2 vpmaddubsw and
 * vpmaddwd, whose 16-bit pair sums the codes' ranges keep from saturating), exact per block:
 *   y[n][o] = sum_b s(o, b) * sum_{blocks j in b} sx[n][j] * (sum_{i in j} c(o, i) xq[n][i]).
 * It applies to the formats whose row gives an a8 kernel (ggml's Q8_0 and Q4_0: int8 and int4
 * grids in 32-blocks; up to 3 x rows run their one-row kernel row by row, more share a panel)
 * or an a8_dot one for one x row (ggml's K-quants, read as unsigned codes with a scale S and a
 * min M per 16 weights: y += sx * (S * sum(u xq) - M * sum(xq)) per 16; run row by row for up
 * to 64 x rows, more keep FP32 activations); other weights run the FP32-activation kernels.
 * AVX2 has the one-row kernels of Q4_0 and the K-quants only: its Q8_0 products, and its prompts
 * beyond 64 rows, keep FP32 activations. Its error against the FP32 path is bounded by
 * sum_j (max|x_j| / 254) * sum_{i in j} |w_i| (the rounding of x, tested) plus summation error.
 * It needs AVX512-VNNI on the AVX-512 version; AVX2 and the scalar version (the reference) run
 * it on any CPU that runs them. */
#ifndef MINIQUANT_KERNELS_H
#define MINIQUANT_KERNELS_H

#include <stddef.h>
#include <stdint.h>

#include "miniquant/error.h"
#include "miniquant/model.h"
#include "miniquant/quant.h"

/* ---------------------------------------------------------------------------------------------
 * instruction sets and the selection */

typedef enum mq_isa { MQ_ISA_SCALAR = 0, MQ_ISA_AVX2, MQ_ISA_AVX512, MQ_ISA_COUNT } mq_isa_t;

/* "scalar", "avx2", "avx512". */
const char *mq_isa_name(mq_isa_t isa);
/* The ISA of a name; MQ_ERR_ARG listing the names otherwise. */
int mq_isa_parse(const char *name, mq_isa_t *out, mq_error_t *err);
/* 1 when this CPU (and OS) runs the version: avx2 needs AVX2, FMA and F16C; avx512 needs
 * AVX512 F, BW, VL and DQ (and FMA, F16C). Scalar always. MQ_CPU_HIDE=avx512[,avx2][,vnni] in
 * the environment makes versions count as missing (to exercise fallbacks and refusals). */
int mq_isa_supported(mq_isa_t isa);
/* 1 when the int8-activation mode can run on isa (scalar; avx2; avx512 with AVX512-VNNI). */
int mq_isa_supports_a8(mq_isa_t isa);
/* The best version this CPU runs. */
mq_isa_t mq_isa_best(void);

/* Int8-activation modes: off, every product, products of several x rows (prompts) only,
 * prompts and the one-row products of the formats whose row gives an a8_dot kernel (where int8
 * activations pay in decode too: Q4_0 and ggml's K-quants; their prompts of up to 64 rows take
 * it too). */
enum { MQ_A8_OFF = 0, MQ_A8_ALL = 1, MQ_A8_PROMPT = 2, MQ_A8_SERVE = 3 };

/* Makes the selection from the environment and the CPU, once: MQ_KERNEL (unset or "auto": the
 * best), MQ_VNNI=0|1|prompt|serve (int8 activations: off, MQ_A8_ALL, MQ_A8_PROMPT, MQ_A8_SERVE).
 * Later calls return
 * the first outcome. A forced version the CPU lacks, an unknown name, or MQ_VNNI on with the
 * avx512 kernels without VNNI is MQ_ERR_UNSUPPORTED / MQ_ERR_ARG with a message; forwards then fail
 * with the same message. Called by every forward. */
int mq_kernels_init(mq_error_t *err);
/* Replaces the selection (tests, benchmarks): a8 one of MQ_A8_*; refuses what the CPU cannot
 * run. */
int mq_kernels_select(mq_isa_t isa, int a8, mq_error_t *err);
/* The serving commands' default (generate, bench serve): MQ_A8_SERVE when the selected version
 * runs int8 activations (AVX-512 with VNNI, or AVX2) and MQ_VNNI does not choose: int8 activations
 * for prompts, and in decode for the formats whose int8 one-row kernel is faster than their FP32
 * one (Q4_0 and the K-quants: their FP32 kernels turn every code into a float); Q8_0 decode keeps
 * FP32 activations (slower with int8 ones where its weights come from DRAM). Returns the mode in
 * force. */
int mq_kernels_serving(void);
/* What mode a8 does with the selected version, in words for a report ("FP32", or "int8 (VNNI)
 * in prompts for q8_0, q4_0; in decode for q2_k, ...; FP32 otherwise"), written into buf. */
const char *mq_kernels_a8_about(int a8, char *buf, size_t cap);
/* The selection in force (after mq_kernels_init succeeded); the a8 mode is one of MQ_A8_*. */
mq_isa_t mq_kernels_isa(void);
int mq_kernels_a8(void);
/* 1 when MQ_REFERENCE=1: evaluation should use the reference path (dequantize + sgemm). */
int mq_kernels_reference_requested(void);

/* ---------------------------------------------------------------------------------------------
 * forward */

/* out (N, OC) = inp (N, C) @ deq(w)^T + bias (OC, may be NULL), with the selected version. */
int mq_qweight_forward(const mq_qweight_t *w, const float *bias, float *out, const float *inp,
                       int N, mq_error_t *err);
/* The same with a given version and mode (refused when the CPU cannot run it; a8 = 1 falls back
 * to FP32 activations for a weight the mode does not take). */
int mq_qweight_forward_with(const mq_qweight_t *w, mq_isa_t isa, int a8, const float *bias,
                            float *out, const float *inp, int N, mq_error_t *err);
/* 1 when the int8-activation mode takes w on isa: its format has an int8 kernel there (for
 * several x rows, or for one; mq_format_takes_a8). */
int mq_qweight_takes_a8(const mq_qweight_t *w, mq_isa_t isa);
int mq_format_takes_a8(const mq_format_t *f, mq_isa_t isa);

/* One x row of C columns in the int8-activation form as isa's kernels make it: per block k of
 * 32 columns (the last zero-padded) its codes at xq + 32 k, round-half-even(x * 127 / max|x|),
 * their sum xsum[k] and the sums of its halves xsum16[2k], xsum16[2k + 1], and its scale
 * sx[k] = max|x| / 127 (NaN inputs give code 0). Every version makes the same bytes (tested). */
void mq_a8_quantize_row(mq_isa_t isa, const float *x, int C, int8_t *xq, int32_t *xsum,
                        int32_t *xsum16, float *sx);

/* The decode step's form of w (model.h): the N = 1 path of mq_qweight_forward with the
 * selected version and mode, run by each thread of the step's parallel region on its share of
 * output rows, so every output is the same number as mq_qweight_forward's. */
int mq_qweight_step(const mq_qweight_t *w, const float *bias, mq_step_linear_t *out,
                    mq_error_t *err);

/* QuantizedLinear's fused path beside mq_qlinear_forward_ref: same shapes, the same numbers up
 * to FP32 summation order (or the int8-activation error, in that mode). */
int mq_qlinear_forward(const mq_qlinear_t *ql, float *out, const float *inp, int N,
                       mq_error_t *err);

#endif
