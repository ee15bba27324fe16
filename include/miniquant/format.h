/* miniquant: the format table, after ggml's type traits.
 *
 * Two kinds of rows, both in src/quant/format.c and nowhere else:
 *
 *   a family  is what a scheme name says: its grammar (fp32, fp16, int{b}_..., nf4_g{N},
 *             q4_k, ...), its grid (how a block's FP16 scale is chosen from its largest
 *             magnitude, the nearest code of a weight given that scale, a code's value; none for
 *             the families whose formats search their own scales from the values, fp16 and
 *             ggml's K-quants) and the stored formats it may take, in order of preference;
 *   a format  is how a weight's bytes lie in memory and in a GGUF file (F32, F16, ggml's
 *             blocks, miniquant's packed codes): its GGUF type, block size and bytes, how a row
 *             of codes and scales (or of values) becomes bytes and back, how a row is
 *             dequantized, and its fused kernels per instruction set. A format no family lists
 *             is one miniquant only reads (BF16, Q4_1, Q2_K, Q3_K, IQ4_XS): its layout and its
 *             dequantization, which loading a file runs.
 *
 * A weight of scheme s whose rows hold cols inputs is stored in the first format of its family
 * that fits (mq_format_for). Everything that must choose among formats (the CLI, the sweep,
 * the exporter and loader, GPTQ, the kernels, the roofline, the tests) asks these rows; a
 * row missing a required entry is refused by mq_formats_check, which the kernels run once
 * before the first forward and a test runs on every build.
 *
 * Adding a format: a row in FORMATS (its encode/decode/dequantize and kernels), its name in
 * the family's list; adding a grid: a row in FAMILIES. */
#ifndef MINIQUANT_FORMAT_H
#define MINIQUANT_FORMAT_H

#include <stddef.h>
#include <stdint.h>

#include "miniquant/error.h"
#include "miniquant/fp16.h"

typedef struct mq_family mq_family_t;
typedef struct mq_format mq_format_t;

/* Granularity of a scheme's scales. */
typedef enum mq_qgran { MQ_QG_NONE = 0, MQ_QG_TENSOR, MQ_QG_CHANNEL, MQ_QG_GROUP } mq_qgran_t;

/* A parsed scheme name. */
typedef struct mq_scheme {
    char name[32];             /* canonical name, e.g. "int4_g64_gptq" */
    const mq_family_t *family; /* its row */
    int bits;                  /* 32, 16, 2..8 (int), 4 (nf4) */
    mq_qgran_t gran;           /* NONE for families without a grid (fp32, fp16) */
    int group;                 /* group size when gran == MQ_QG_GROUP */
    int gptq;                  /* 1: codes chosen by GPTQ (the grid is the same) */
    int imat;                  /* 1: scales searched under the importance of each input (the
                                  diagonal of the layer's input Hessian from calibration) */
} mq_scheme_t;

struct mq_family {
    const char *prefix;  /* "fp32", "fp16", "int", "nf4": a name starts with it */
    const char *grammar; /* for messages and help, e.g. "int{2..8}_{per_tensor|per_channel|g{N}}" */
    int min_bits, max_bits; /* bits follow the prefix when they differ ("int4"); else fixed */
    unsigned grans;         /* granularities the family takes: bit (1 << MQ_QG_*); 0: none */
    int embeddings_f16;     /* a model of this family stores its embeddings as F16 */
    int takes_imat;         /* the name may end in _imat or _gptq (a family whose formats
                               search their scales from the values, under an importance; GPTQ
                               fixes each block's scales so, then chooses its codes) */
    /* The grid; NULL for families that store values themselves (fp32, fp16), which take no
     * granularity and no _gptq.
     *   scale  the FP16 scale of a block whose largest magnitude is absmax: 0 for an all-zero
     *          block, never above 65504, at least 2^-24 for a non-zero block
     *   code   the code nearest to x / scale (ties as src/quant/format.c documents); a zero
     *          scale or a NaN x gives the code of 0
     *   value  a code's value: code * scale, or codebook[code] * scale */
    mq_fp16_t (*scale)(float absmax, int bits);
    int8_t (*code)(float x, float scale, int bits);
    float (*value)(int8_t code, float scale, int bits);
    /* The unrounded scale of a block whose largest magnitude is absmax (absmax / qmax, or
     * absmax): the quantizers refuse a weight whose ratio rounds beyond FP16's 65504. */
    float (*ratio)(float absmax, int bits);
    /* The code of 0, and the lowest and highest codes. */
    int code_zero;
    int (*code_min)(int bits);
    int (*code_max)(int bits);
    const float *codebook; /* 2^bits ascending values in [-1, 1] (codes are indices), or NULL
                              for a uniform integer grid (codes are signed integers) */
    const char *const *formats; /* names of the formats it may take, by preference; NULL-ended */
};

/* One row of a weight as the quantizers produce it, before its format stores it: the values
 * themselves (families without a grid), or codes with the FP16 scales of the row's blocks
 * (scales[k] for columns [k * group, (k + 1) * group); group = cols for per-tensor and
 * per-channel). */
typedef struct mq_qrow {
    const float *x;
    const int8_t *codes;
    const mq_fp16_t *scales;
    int cols, group;
    const float *imp; /* with x: the importance of each input (cols), or NULL */
} mq_qrow_t;

/* What a loader says about a row that no miniquant quantizer could have written. */
typedef struct mq_row_fault {
    int col;         /* first column concerned */
    char what[160];  /* e.g. "code -128 is outside [-127, 127]" */
} mq_row_fault_t;

typedef struct mq_qweight mq_qweight_t;
struct mq_a8;

/* Kernels of a format for one instruction set (the contracts are in src/quant/kernels_isa.h).
 * Each computes output rows [o0, o1) without the bias. */
typedef void (*mq_dot_fn)(const mq_qweight_t *w, const float *x, float *y, int o0, int o1);
typedef void (*mq_gemm_fn)(const mq_qweight_t *w, const float *x, int ldx, int N, float *y,
                           int o0, int o1);
typedef void (*mq_a8_fn)(const mq_qweight_t *w, const struct mq_a8 *xa, float *y, int o0,
                         int o1, void *scratch);
/* A whole forward, bias included, for formats that hand it to a library (F32: OpenBLAS). */
typedef void (*mq_forward_fn)(const mq_qweight_t *w, const float *bias, float *out,
                              const float *inp, int N);
/* One x row rearranged once per forward for a decode kernel that reads it so (xp: cols floats). */
typedef void (*mq_prep_fn)(const mq_qweight_t *w, const float *x, float *xp);
typedef struct mq_format_kernels {
    mq_forward_fn forward; /* when set, the whole call: no split into rows by the dispatcher;
                              one x row still takes dot where it is not the scalar one's */
    mq_dot_fn dot;   /* one x row (decode) */
    mq_gemm_fn gemm; /* several x rows (prompt); NULL: the ISA's generic path, which
                        dequantizes rows with dequantize_row and multiplies */
    mq_a8_fn a8;     /* int8 activations; NULL: the mode does not take this format here */
    mq_prep_fn prep; /* x for dot, made once per forward; NULL: dot reads x as it is */
    mq_a8_fn a8_dot; /* int8 activations for one x row, where they pay in decode too (the
                        serving default takes it); NULL: one x row runs a8 (MQ_VNNI=1) or dot */
} mq_format_kernels_t;

#define MQ_FORMAT_ISAS 3 /* scalar, avx2, avx512 (kernels.h's mq_isa_t) */

/* Block layouts the generic SIMD paths read straight from the bytes (every other format they
 * read through values_row and block_scale). */
typedef enum mq_kernel_layout {
    MQ_KL_NONE = 0,
    MQ_KL_Q8_0, /* ggml's block_q8_0 */
    MQ_KL_Q4_0, /* ggml's block_q4_0 */
} mq_kernel_layout_t;

struct mq_format {
    const char *name; /* "f32", "f16", "q8_0", "q4_0", "packed" */
    const char *about; /* for help texts: what it holds */
    const char *when;  /* for help texts: which weights it stores */
    int llama_cpp;     /* 1: llama.cpp loads and runs tensors of this type */
    int ggml_type;    /* the GGUF tensor type (MQ_GGML_*) */
    int block;        /* weights per block whose scale the block carries; 0: none, or side scales */
    size_t block_bytes;
    int side_scales;  /* 1: FP16 scales in a tensor "<base>.scales" beside "<base>.weight" */
    int llama_ftype;  /* general.file_type of a file whose Linears are all this format */
    int kernel_layout; /* mq_kernel_layout_t */
    /* 1 when a weight of scheme s with rows of cols inputs can be stored this way */
    int (*fits)(const mq_scheme_t *s, int cols);
    /* bytes of one stored row */
    size_t (*row_bytes)(const mq_scheme_t *s, int cols);
    /* the GGUF tensor's ne[0]: cols, or the row's bytes for formats stored as raw bytes */
    int64_t (*ne0)(const mq_scheme_t *s, int cols);
    /* a row (values or codes and scales) into its bytes; side scales are stored by the caller */
    void (*encode_row)(const mq_qrow_t *src, const mq_scheme_t *s, uint8_t *dst);
    /* grid formats: a stored row back into codes and the scales of its blocks (side scales are
     * passed in as scales_in for formats that keep them apart; NULL otherwise). Returns 0, or -1
     * with *fault filled when the bytes are not what a quantizer of scheme s writes (codes off
     * the grid, blocks of one scale block disagreeing, negative or non-finite scales). */
    int (*decode_row)(const uint8_t *src, const mq_fp16_t *scales_in, const mq_scheme_t *s,
                      int cols, int group, int8_t *codes, mq_fp16_t *scales,
                      mq_row_fault_t *fault);
    /* y[cols] = the row's values, exactly value(code, scale) of the family for every weight */
    void (*dequantize_row)(const uint8_t *src, const mq_fp16_t *scales, const mq_scheme_t *s,
                           int cols, int group, float *y);
    /* the unscaled value of each weight (code, codebook value or the value itself) and the
     * scale of scale block b: what the scalar reference kernel sums */
    void (*values_row)(const uint8_t *src, const mq_scheme_t *s, int cols, float *v);
    float (*block_scale)(const uint8_t *src, const mq_fp16_t *scales, int group, int b);
    /* Formats that search their scales from the values (encode_row with x): GPTQ's hook. With
     * the scales of one block already in blk (encode_row of the block's values), the code of
     * weight j of the block nearest to w is written into blk and its value returned, exactly
     * as dequantize_row gives it. NULL: GPTQ rounds such a weight to nearest with the
     * importance of its inputs instead. */
    float (*nearest)(uint8_t *blk, int j, float w);
    /* Block formats whose int8-activation kernels read integer codes with a scale and a min per
     * 16 weights (ggml's K-quants): one block (block weights) as unsigned codes u and, per 16
     * weights j, S[j] and M[j] with value = S[j] u - M[j]; NULL for the others. */
    void (*unsigned_block)(const uint8_t *blk, uint8_t *u, float *S, float *M);
    mq_format_kernels_t kernels[MQ_FORMAT_ISAS];
};

/* The families, in the order of the grammar; NULL-terminated. */
extern const mq_family_t *const MQ_FAMILIES[];
/* The formats; NULL-terminated. */
extern const mq_format_t *const MQ_FORMATS[];

/* The grammar of every family, for messages: "fp32, fp16, int{2..8}_{...}[_gptq], ...". */
const char *mq_scheme_grammar(void);
/* Parses a scheme name; MQ_ERR_ARG with a message quoting the grammar otherwise. Names are
 * accepted in canonical form only (lower case, no leading zeros). */
int mq_scheme_parse(const char *name, mq_scheme_t *out, mq_error_t *err);
/* Checks a scheme built by hand as strictly as a parsed one. */
int mq_scheme_check(const mq_scheme_t *s, mq_error_t *err);
/* 1 when building the scheme needs calibration inputs: _gptq, _imat. */
int mq_scheme_calibrated(const mq_scheme_t *s);
/* 1 when the family has a grid (codes and scales: int, nf4), 0 when it stores values. */
int mq_scheme_has_grid(const mq_scheme_t *s);
/* 1 for the scheme that keeps FP32 weights as they are (every Linear F32, embeddings F32). */
int mq_scheme_is_identity(const mq_scheme_t *s);
/* Columns per scale block of a weight of scheme s with rows of cols inputs (cols for
 * per-tensor, per-channel and families without a grid), and the number of scales it holds
 * (0 without a grid; 1 per-tensor, rows per-channel, rows * cols / group). */
int mq_scheme_group(const mq_scheme_t *s, int cols);
size_t mq_scheme_n_scales(const mq_scheme_t *s, int rows, int cols);

/* The format a weight of scheme s with rows of cols inputs is stored in; NULL with a message
 * when none fits (a group that does not divide the row). */
const mq_format_t *mq_format_for(const mq_scheme_t *s, int cols, mq_error_t *err);
/* The format of a GGUF tensor type that miniquant stores Linears in, or NULL. */
const mq_format_t *mq_format_of_ggml_type(int ggml_type);
/* The format named name ("q4_0"), or NULL. */
const mq_format_t *mq_format_by_name(const char *name);

/* 1 when schemes write the format (its row has fits and the writer's entries); 0 for formats
 * miniquant only reads, dequantizing them when a file is loaded. */
int mq_format_writes(const mq_format_t *f);
/* The GGUF types of every format a model file may hold, by ggml's names: "f32, f16, ...". */
const char *mq_formats_read_list(void);

/* Refuses a tensor of a GGUF type no format row reads: MQ_ERR_UNSUPPORTED naming the file,
 * the tensor and the type, and listing the types miniquant reads. */
int mq_format_refuse_type(mq_error_t *err, const char *file, const char *tensor, int ggml_type);

/* The table as help text: every family with its grammar and the formats it takes, and every
 * format's GGUF type and description (one line each). */
const char *mq_formats_help(void);

/* Refuses a table row that lacks an entry it needs (MQ_ERR_UNSUPPORTED naming the row and the
 * entry): one row, or the whole table. */
int mq_format_check_row(const mq_format_t *f, mq_error_t *err);
int mq_family_check_row(const mq_family_t *f, mq_error_t *err);
int mq_formats_check(mq_error_t *err);

/* The NF4 codebook: 16 values in [-1, 1], ascending, with an exact 0 at index 7. */
extern const float MQ_NF4_CODEBOOK[16];

#endif
