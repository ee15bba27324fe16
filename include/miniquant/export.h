/* miniquant: quantized MiniGPT models as GGUF files, and back.
 *
 * The format's contract
 * ---------------------
 * A quantized model is a gpt2 GGUF file with the metadata, tokenizer and tensor names of a
 * MiniGPT checkpoint (checkpoint.h), in which the tensors are stored as follows.
 *
 *   tensor                                       type
 *   token_embd.weight, position_embd.weight      F16 (F32 for the fp32 scheme)
 *   LayerNorm weights and biases, Linear biases  F32
 *   Linear weights (blk.N.attn_qkv, blk.N.attn_output, blk.N.ffn_up, blk.N.ffn_down and
 *   output, each "<base>.weight"), by scheme:
 *     fp32                                       F32
 *     fp16                                       F16
 *     int8_per_tensor, int8_per_channel, int8_g{N}  Q8_0, when N and the row length are
 *                                                multiples of 32
 *     int4_per_tensor, int4_per_channel, int4_g{N}  Q4_0, likewise
 *     every other int{2..8}_*, and nf4_g{N}      packed codes: "<base>.weight" of type I8
 *                                                (ggml type 24) + "<base>.scales" of type F16
 *     q2_k .. q6_k (and _imat, _gptq)            Q2_K .. Q6_K (ggml's blocks as they are);
 *                                                rows that 256 does not divide: IQ4_NL (q2_k,
 *                                                q3_k), Q5_0, Q5_1, Q8_0, and F16 when 32
 *                                                does not divide them
 *     iq4_nl (and _imat, _gptq)                  IQ4_NL; F16 when 32 does not divide the rows
 *   output.weight when miniquant.skip_lm_head    F32
 *
 * A recipe's file (recipe.h) stores each Linear as its own scheme says, and token_embd in the
 * format of its scheme (Q2_K .. Q6_K, IQ4_NL, Q4_0, Q8_0 ...); it adds miniquant.recipe (string,
 * e.g. "q4_k_m_gptq"), miniquant.linear_schemes (array of strings, one scheme name per Linear
 * in the order blk.0.attn_qkv, blk.0.attn_output, blk.0.ffn_up, blk.0.ffn_down, blk.1..., output;
 * "fp32" for a Linear left in FP32) and miniquant.token_embd_scheme (string), and is
 * export_version 2 (a file of one scheme is 1). Its miniquant.scheme is its first Linear's, and
 * general.file_type the mixture's llama_ftype (1024 GUESSED for auto).
 *
 * A Linear weight stored as F32 in a file whose scheme is not fp32 is a Linear left in FP32.
 * _gptq schemes are stored as the scheme without the suffix would be: GPTQ picks other codes on
 * the same grid.
 *
 * Q8_0 (ggml's block_q8_0, 34 bytes per 32 weights): the FP16 scale d, then 32 int8 codes;
 * value = code * d. Q4_0 (block_q4_0, 18 bytes per 32 weights): the FP16 scale d, then 16
 * bytes; weight j < 16 of the block is in the low nibble of byte j, weight j + 16 in its high
 * nibble; value = (nibble - 8) * d, so nibble = code + 8. Every 32-block of a row carries the
 * scale of the group, row or tensor it lies in, and the codes are miniquant's codes as they are,
 * so ggml's dequantization gives miniquant's values bit for bit. The blocks of one group, row
 * or tensor must all carry the same scale, int8 codes lie in [-127, 127] and int4 nibbles in
 * [1, 15]; the reader checks all three.
 *
 * Packed codes: "<base>.weight" has ne = {ceil(cols * b / 8), rows} bytes (b = the scheme's
 * bits, 4 for nf4). Row r starts at byte r * ne[0]; its weight c is the unsigned b-bit field
 * in bits [c * b, c * b + b) of the row, counted from the least significant bit of the row's
 * first byte; the bits after the last field are 0. For int{b}: field = code + 2^(b-1), in
 * [1, 2^b - 1] (0 is not a code). For nf4: field = the index of the NF4 codebook value (quant.h).
 * "<base>.scales" is 1-D with the weight's n_scales FP16 scales: 1 (per_tensor), rows
 * (per_channel) or rows * cols / N (g{N}, row-major: row r's group k at r * cols / N + k).
 *
 * Every scale is finite and not negative (0 for an all-zero block); the reader checks. Values
 * are code * scale (int) and NF4[code] * scale (nf4) in FP32, as quant.h computes them.
 *
 * Metadata added to the checkpoint's: general.file_type = llama.cpp's llama_ftype (0 ALL_F32
 * for fp32, 1 MOSTLY_F16 for fp16, 7 MOSTLY_Q8_0 for int8, 2 MOSTLY_Q4_0 for int4, 10, 11, 14,
 * 16, 18 and 25 for q2_k, q3_k, q4_k, q5_k, q6_k and iq4_nl, 1024 GUESSED when any Linear is
 * packed), miniquant.scheme (string, the canonical scheme name),
 * miniquant.skip_lm_head (bool) and miniquant.export_version (u32, 1).
 *
 * llama.cpp loads and runs the files of fp32, fp16, int8_* and int4_* schemes whose Linears
 * are all F32/F16/Q8_0/Q4_0, and of the K-quant and IQ4_NL schemes; it refuses files with packed
 * tensors. A gpt2 file without
 * miniquant.scheme (a checkpoint), or with general.quantization_version (llama-quantize's
 * output, which copies its input's keys, miniquant.scheme included), loads as a plain FP32
 * model, its F16 / Q8_0 / Q4_0 tensors dequantized (other ggml types are refused). */
#ifndef MINIQUANT_EXPORT_H
#define MINIQUANT_EXPORT_H

#include <stddef.h>
#include <stdint.h>

#include "miniquant/error.h"
#include "miniquant/format.h"
#include "miniquant/fp16.h"
#include "miniquant/gguf.h"
#include "miniquant/model.h"
#include "miniquant/gptq.h"
#include "miniquant/qmodel.h"
#include "miniquant/quant.h"
#include "miniquant/tokenizer.h"

#define MQ_EXPORT_VERSION 2        /* the newest this reader reads: a recipe's file */
#define MQ_EXPORT_VERSION_SCHEME 1 /* a file of one scheme */
#define MQ_FTYPE_ALL_F32 0         /* llama_ftype values of general.file_type */
#define MQ_FTYPE_GUESSED 1024

/* ---- the exporter and the loader ---- */

/* Builds the GGUF of a model: the checkpoint's metadata and tokenizer (tok may be NULL), the
 * tensors as the contract says, every Linear's bytes as its layer holds them. q is a quantized
 * model (mq_qmodel_quantize, GPTQ, or loaded); NULL exports the FP32 model m as the fp32
 * scheme (m is ignored when q is given). */
int mq_qmodel_to_gguf(const mq_gpt_t *m, const mq_qmodel_t *q, const mq_tokenizer_t *tok,
                      mq_gguf_t *g, mq_error_t *err);
/* The same, written crash-safely to path. */
int mq_qmodel_save(const char *path, const mq_gpt_t *m, const mq_qmodel_t *q,
                   const mq_tokenizer_t *tok, mq_error_t *err);

/* The quantized model of a gpt2 GGUF (name is used in messages), its layers' bytes copied from
 * g and checked row by row. A file of the fp32 scheme, or one that miniquant's exporter did not
 * write (no miniquant.scheme, or general.quantization_version present), gives the plain model:
 * scheme fp32, every Linear F32 (a foreign file's F16 / Q8_0 / Q4_0 tensors dequantized), no
 * layer active unless the file says fp32. Free with mq_qmodel_free. On failure q holds nothing. */
int mq_qmodel_from_gguf(const mq_gguf_t *g, const char *name, mq_qmodel_t *q, mq_error_t *err);
/* The same with the layers pointing into g's tensor data, which must outlive q. */
int mq_qmodel_from_gguf_borrowed(const mq_gguf_t *g, const char *name, mq_qmodel_t *q,
                                 mq_error_t *err);
/* Reads path; the layers point into the file's bytes, which q keeps. Loads its tokenizer too
 * when tok is non-NULL. */
int mq_qmodel_load(const char *path, mq_qmodel_t *q, mq_tokenizer_t **tok, mq_error_t *err);

/* Quantizes the FP32 model file in (gpt2 or llama, F32 or F16 tensors) into the file out, one
 * layer at a time: the file is mapped, each layer read, quantized (on the calibration windows
 * of calib as they pass through the already quantized layers, for a _gptq or _imat scheme) and
 * written before the next, so that peak memory is about one layer's working set plus the
 * windows' activations (o->n_samples windows of calib_ctx tokens, at most the context; o NULL:
 * mq_gptq_opts_for). The file is the one mq_qmodel_save writes for the scheme, with its tensors
 * layer by layer; for the same windows its Linears are the same bytes. Uniform schemes only (no
 * recipe, lm_head quantized). Shows a progress bar. */
int mq_export_stream(const char *in, const char *out, const mq_scheme_t *s, const int32_t *calib,
                     size_t n_calib, int calib_ctx, const mq_gptq_opts_t *o, mq_error_t *err);
/* The FP32 model of q's values (every Linear dequantized), e.g. to quantize a loaded file again:
 * m is initialised here. */
int mq_qmodel_dequantize(const mq_qmodel_t *q, mq_gpt_t *m, mq_error_t *err);

/* Where the bytes of an exported file are. */
typedef struct mq_export_bytes {
    size_t file;            /* the whole file */
    size_t linear;          /* tensor data of the Linear weights (and their .scales) */
    size_t embedding;       /* tensor data of token_embd and position_embd */
    size_t other;           /* tensor data of LayerNorm parameters and biases */
    size_t linear_params;   /* weights in the Linears */
    double bits_per_weight; /* 8 * linear / linear_params */
    char linear_types[192]; /* the Linear weights' GGUF types by count: "q4_K x12, q6_K x5" */
    int linear_all_f32;     /* 1 when every Linear weight is F32 */
} mq_export_bytes_t;

/* The bytes of a gpt2 GGUF in memory (file is then the size mq_gguf_write would write) or on
 * disk. */
int mq_export_bytes(const mq_gguf_t *g, mq_export_bytes_t *out, mq_error_t *err);
int mq_export_bytes_file(const char *path, mq_export_bytes_t *out, mq_error_t *err);
/* The same for g, already read from path (the file's size from the file system). */
int mq_export_bytes_read(const mq_gguf_t *g, const char *path, mq_export_bytes_t *out,
                         mq_error_t *err);

#endif
