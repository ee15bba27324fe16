/* miniquant: fused kernels for QuantizedLinear, y (N, OC) = x (N, C) @ deq(W)^T + b, computed
 * from the stored codes and scales: weights are expanded in registers, never materialised in
 * FP32.
 *
 * Versions: AVX-512 (F/BW/VL/DQ, and VNNI for the int8-activation mode), AVX2 + FMA + F16C, and
 * portable scalar C, which is the reference the others are tested against. One is chosen once,
 * on first use, from the CPU's features; MQ_KERNEL=scalar|avx2|avx512 in the environment forces
 * one (a version the CPU lacks is refused with a message, never silently replaced). Output rows
 * are split across OpenMP threads (static schedule); every output is computed by one thread in
 * a fixed order, so results do not depend on the thread count.
 *
 * Packed forms (mq_qpacked_t), one per family of schemes:
 *   MQ_KF_F32  fp32: the weight itself; OpenBLAS sgemv (N = 1) or sgemm.
 *   MQ_KF_F16  fp16: the halves of the mq_qweight_t, as they are (borrowed).
 *   MQ_KF_Q8   int5..int8: the int8 codes, unpacked, in panels (owned; below).
 *   MQ_KF_Q4   int2..int4 and nf4: 4-bit indices, two per byte, in panels (owned). The index
 *              u is code + 8 for int grids and the codebook index for nf4; lut[u] is its value
 *              (u - 8, or MQ_NF4_CODEBOOK[u]).
 * Panels hold 16 output rows, so that the 16 lanes of a vector are 16 rows: no horizontal sums,
 * one vector of 16 scales per scale block, and one FP32 multiply per 16 rows where the
 * int8-activation mode converts an integer block sum. Rows are padded to a multiple of 16 and
 * columns to cols64 (a multiple of 64) with zero weights. Panel q (rows 16q .. 16q+15) takes
 * panel_bytes at panel + q * panel_bytes, as chunks of 64 bytes in which lane r (bytes 4r ..
 * 4r+3) belongs to row 16q + r:
 *   MQ_KF_Q8  chunk c = columns 4c .. 4c+3; byte 4r + i holds column 4c + i.
 *   MQ_KF_Q4  chunk c = columns 8c .. 8c+7; byte 4r + i holds column 8c + i in its low nibble
 *             and column 8c + 4 + i in its high nibble.
 * Their scales are copied beside them, per panel and scale block, 16 rows together:
 * panel_scales[(q * nb + b) * 16 + r], nb = scale blocks per row.
 * A scale block is `group` consecutive columns (group = C for per-tensor and per-channel). Panels
 * are self-contained once built (`scales` points at the mq_qweight_t's, block b of row r at
 * scales[r * scale_stride + b], for packing only). fp32 and fp16 weights are borrowed as they
 * are: their mq_qweight_t must outlive the packed form and not change. Panels cost memory
 * beside the mq_qweight_t's int8 codes: 1 byte per weight (int8) or 1/2 (4-bit).
 *
 * Summation order of the scalar reference (the other versions differ only in FP32 rounding):
 *   for each x row n and output row o:
 *     acc = 0
 *     for each scale block b in column order:
 *       gsum = 0;  for each column i of the block in order: gsum += v(o, i) * x[n][i]
 *       acc += s(o, b) * gsum
 *     y[n][o] = acc + bias[o]
 *   v is the code (int) or codebook value (nf4) or the half (fp16, whose "scale" is 1), s the
 *   FP16 scale as FP32. The AVX2 and AVX-512 versions keep lanes of partial sums (on panels one
 *   lane per output row, each summing its columns in order in up to four interleaved chains);
 *   for one x row they apply the scale per block as above, for several they multiply the
 *   weights by their scale in registers (v * s, the reference path's dequantized value) once
 *   per tile of x rows, then accumulate. Their results agree with the scalar reference within
 *   FP32 summation error, |y - y_ref| <= 1e-5 * sum_i |x_i| |w_i| (tested).
 *   The SIMD versions take blocks that are whole rows or multiples of 16 columns; a weight with
 *   another group size (e.g. g24) runs the scalar kernel whatever the selection.
 *
 * Int8-activation mode ("a8", opt-in: MQ_VNNI=1 or mq_kernels_select): each x row is quantized
 * per block of 64 columns, xq = round-half-even(x * 127 / max|x_block|), scale max / 127, and
 * the products are integer dot products (AVX-512 VNNI vpdpbusd), exact per block; the block's
 * integer sum is converted, multiplied by sx, summed over the scale block, times its scale:
 *   y[n][o] = sum_b s(o, b) * sum_{blocks j in b} sx[n][j] * (sum_{i in j} c(o, i) xq[n][i]).
 * It applies to int grids (MQ_KF_Q8, MQ_KF_Q4 except nf4) whose scale blocks are whole rows or
 * multiples of 64 columns; other weights run the FP32-activation kernels. Its error against the
 * FP32 path is bounded by sum_j (max|x_j| / 254) * sum_{i in j} |w_i| (the rounding of x, tested)
 * plus summation error. It needs AVX512-VNNI, or the scalar version (the reference). */
#ifndef MINIQUANT_KERNELS_H
#define MINIQUANT_KERNELS_H

#include <stddef.h>
#include <stdint.h>

#include "miniquant/error.h"
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
/* 1 when the int8-activation mode can run on isa (scalar; avx512 with AVX512-VNNI). */
int mq_isa_supports_a8(mq_isa_t isa);
/* The best version this CPU runs. */
mq_isa_t mq_isa_best(void);

/* Makes the selection from the environment and the CPU, once: MQ_KERNEL (unset or "auto": the
 * best), MQ_VNNI=1 (int8 activations). Later calls return the first outcome. A forced version
 * the CPU lacks, an unknown name, or MQ_VNNI=1 without VNNI is MQ_ERR_UNSUPPORTED / MQ_ERR_ARG
 * with a message; forwards then fail with the same message. Called by every forward. */
int mq_kernels_init(mq_error_t *err);
/* Replaces the selection (tests, benchmarks); refuses what the CPU cannot run. */
int mq_kernels_select(mq_isa_t isa, int a8, mq_error_t *err);
/* The selection in force (after mq_kernels_init succeeded). */
mq_isa_t mq_kernels_isa(void);
int mq_kernels_a8(void);
/* 1 when MQ_REFERENCE=1: evaluation should use the reference path (dequantize + sgemm). */
int mq_kernels_reference_requested(void);

/* ---------------------------------------------------------------------------------------------
 * packed weights */

typedef enum mq_kfmt { MQ_KF_F32 = 0, MQ_KF_F16, MQ_KF_Q8, MQ_KF_Q4 } mq_kfmt_t;

typedef struct mq_qpacked {
    mq_kfmt_t fmt;
    mq_scheme_t scheme;
    int rows, cols;          /* OC, C */
    int group;               /* columns per scale block (C for per-tensor and per-channel) */
    int scale_stride;        /* scales per row (0: per-tensor) */
    const mq_fp16_t *scales; /* the mq_qweight_t's, while packing; NULL for fp32 / fp16 */
    const float *f32;        /* MQ_KF_F32, borrowed */
    const mq_fp16_t *f16;    /* MQ_KF_F16, borrowed */
    uint8_t *panel;          /* MQ_KF_Q8, MQ_KF_Q4, owned: panels x panel_bytes */
    mq_fp16_t *panel_scales; /* MQ_KF_Q8, MQ_KF_Q4, owned: panels x nb x 16 */
    int panels, cols64, nb;  /* panels of 16 rows, padded columns, scale blocks per row */
    size_t panel_bytes;      /* 16 * cols64 (MQ_KF_Q8), 8 * cols64 (MQ_KF_Q4) */
    float lut[16];           /* MQ_KF_Q4: value of each 4-bit index */
    int nf4;                 /* MQ_KF_Q4 holds nf4 indices (no int8-activation mode) */
    int simd;                /* the SIMD versions take this weight (see above) */
    int a8;                  /* the int8-activation mode takes this weight */
} mq_qpacked_t;

/* Builds the packed form of w (any scheme); fp32 / fp16 forms borrow from w (see above). On
 * failure p holds nothing (mq_qpacked_free on it is harmless). */
int mq_qpacked_init(mq_qpacked_t *p, const mq_qweight_t *w, mq_error_t *err);
void mq_qpacked_free(mq_qpacked_t *p);
/* Bytes a forward reads from the weight: codes at their packed width (padding included) plus
 * scales. */
size_t mq_qpacked_bytes(const mq_qpacked_t *p);

/* out (N, OC) = inp (N, C) @ W^T + bias (OC, may be NULL), with the selected version. */
int mq_qpacked_forward(const mq_qpacked_t *p, const float *bias, float *out, const float *inp,
                       int N, mq_error_t *err);
/* The same with a given version and mode (refused when the CPU cannot run it; a8 = 1 falls back
 * to FP32 activations for a weight the mode does not take). */
int mq_qpacked_forward_with(const mq_qpacked_t *p, mq_isa_t isa, int a8, const float *bias,
                            float *out, const float *inp, int N, mq_error_t *err);

/* ---------------------------------------------------------------------------------------------
 * QuantizedLinear's fused path */

/* The fast path beside mq_qlinear_forward_ref: same shapes, the same numbers up to FP32
 * summation order (or the int8-activation error, in that mode). Uses the packed form kept by
 * mq_qlinear_pack for ql; without one, packs for the call (correct, and slower: a pass over
 * the codes per call). */
int mq_qlinear_forward(const mq_qlinear_t *ql, float *out, const float *inp, int N,
                       mq_error_t *err);
/* Keeps a packed form of ql for mq_qlinear_forward (replacing an older one). It borrows from
 * ql: call mq_qlinear_unpack before ql is freed or its codes change. */
int mq_qlinear_pack(const mq_qlinear_t *ql, mq_error_t *err);
void mq_qlinear_unpack(const mq_qlinear_t *ql);

#endif
