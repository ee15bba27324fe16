/* Tests of miniquant's GGUF export of quantized models: exact round trips of every scheme (the
 * bytes of every Linear as its layer holds them, dequantized weights and logits bit for bit),
 * the format rows' Q8_0 / Q4_0 blocks checked against a decoder written here from the block
 * definitions, packed codes bit by bit, the layout and metadata of a file field by field, loading
 * that keeps pointing into the file, and hostile files (truncated, corrupted, blocks that
 * disagree with the scheme, missing tensors) that must fail with a message, never crash. */
#include <criterion/criterion.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "miniquant/arch.h"
#include "miniquant/checkpoint.h"
#include "miniquant/eval.h"
#include "miniquant/export.h"
#include "miniquant/fileio.h"
#include "miniquant/rng.h"
#include "qhelpers.h"

/* In the sanitizer build (MQ_SANITIZE), whether anything allocated so far is unreachable now:
 * LeakSanitizer's check of the moment, which fails the test where Criterion would only print
 * the report of the check at exit. Other builds cannot tell, and say no. */
#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/lsan_interface.h>
#define LEAKED() (__lsan_do_recoverable_leak_check() != 0)
#else
#define LEAKED() 0
#endif

/* ---------------------------------------------------------------------------------------------
 * helpers */

static const char *const SENTENCES[] = {
    "the cat sat on the mat and the dog ran to the store",
    "she walks to the store every morning; he walked there yesterday",
    "they were walking home when it started to rain on the hills",
    "we have gone home, and the children are eating their lunch",
    "a quantized model keeps its codes and scales, and the file keeps them too",
    "he had written letters to every friend he knew before the winter came",
};
#define N_SENTENCES (sizeof SENTENCES / sizeof SENTENCES[0])
#define VOCAB 320

static mq_tokenizer_t *small_tokenizer(void) {
    size_t lens[N_SENTENCES];
    for (size_t i = 0; i < N_SENTENCES; i++)
        lens[i] = strlen(SENTENCES[i]);
    mq_tokenizer_t *tok = NULL;
    mq_error_t err = {0};
    cr_assert_eq(mq_tokenizer_train(SENTENCES, lens, N_SENTENCES, VOCAB, &tok, &err), MQ_OK, "%s",
                 err.msg);
    return tok;
}

/* A random model of arch whose norm parameters and biases are not the init's constants, with
 * an all-zero row in a Linear (the zero-scale guard) and an all-zero group elsewhere; llama
 * with NH / 2 heads of keys and values and an MLP 3C wide. */
static void random_model_of(mq_gpt_t *m, int arch, int V, int maxT, int C, int NH, int L,
                            uint64_t seed) {
    mq_gpt_config_t cfg = {.name = "custom",
                           .arch = arch,
                           .vocab_size = V,
                           .n_ctx = maxT,
                           .n_embd = C,
                           .n_head = NH,
                           .n_layer = L};
    if (arch == MQ_ARCH_LLAMA) cfg.n_head_kv = NH / 2, cfg.n_ff = 3 * C;
    mq_error_t err = {0};
    cr_assert_eq(mq_gpt_init(m, &cfg, &err), MQ_OK, "%s", err.msg);
    mq_gpt_init_weights(m, seed);
    mq_rng_t r;
    mq_rng_seed(&r, seed + 1);
    for (int p = 0; p < MQ_NUM_PARAMS; p++) {
        if (mq_gpt_param_is_matrix(p)) continue;
        float *x = ((float **)&m->params)[p];
        for (size_t i = 0; i < m->param_sizes[p]; i++)
            x[i] += 0.1f * mq_rng_normal(&r);
    }
    float *first = arch == MQ_ARCH_LLAMA ? m->params.qw : m->params.qkvw;
    memset(first + 5 * (size_t)C, 0, (size_t)C * sizeof(float));
    memset(m->params.fcprojw + 64, 0, 64 * sizeof(float));
}

static void random_model(mq_gpt_t *m, int V, int maxT, int C, int NH, int L, uint64_t seed) {
    random_model_of(m, MQ_ARCH_GPT2, V, maxT, C, NH, L, seed);
}

static void quantize(mq_qmodel_t *q, const mq_gpt_t *m, const char *name, int skip) {
    mq_scheme_t s = scheme(name);
    mq_qmodel_opts_t o = {skip, -1, 0, NULL};
    mq_error_t err = {0};
    cr_assert_eq(mq_qmodel_quantize(q, m, &s, &o, &err), MQ_OK, "%s: %s", name, err.msg);
}

/* Serializes the export of q (of the FP32 model m when q is NULL) to a malloc'd buffer. */
static void export_mem(const mq_gpt_t *m, const mq_qmodel_t *q, const mq_tokenizer_t *tok,
                       void **buf, size_t *len) {
    mq_gguf_t *g = mq_gguf_new();
    mq_error_t err = {0};
    cr_assert_eq(mq_qmodel_to_gguf(m, q, tok, g, &err), MQ_OK, "%s", err.msg);
    cr_assert_eq(mq_gguf_write_mem(g, buf, len, &err), MQ_OK, "%s", err.msg);
    mq_gguf_free(g);
}

static mq_gguf_t *parse(const void *buf, size_t len) {
    mq_gguf_t *g = NULL;
    mq_error_t err = {0};
    cr_assert_eq(mq_gguf_read_mem(buf, len, "x.gguf", &g, &err), MQ_OK, "%s", err.msg);
    return g;
}

/* Loads a buffer; returns the status and leaves the message in err. The parsed file is freed
 * before returning: what loaded must not point into it. */
static int load_mem(const void *buf, size_t len, mq_qmodel_t *q, mq_error_t *err) {
    mq_gguf_t *g = NULL;
    int rc = mq_gguf_read_mem(buf, len, "hostile.gguf", &g, err);
    if (rc) return rc;
    rc = mq_qmodel_from_gguf(g, "hostile.gguf", q, err);
    mq_gguf_free(g);
    return rc;
}

/* The values of Linear i of q, malloc'd: what its forward multiplies by. */
static float *layer_values(const mq_qmodel_t *q, int i) {
    const mq_qweight_t *w = &q->ql[i].w;
    float *D = malloc((size_t)w->rows * w->cols * sizeof(float));
    cr_assert(D);
    mq_qweight_dequantize(w, D);
    return D;
}

/* The FP32 weight of Linear i of m. */
static const float *fp32_weight(const mq_gpt_t *m, int i, int *OC, int *C) {
    return mq_gpt_linear_weight((mq_gpt_t *)m, mq_qmodel_linear_id(&m->cfg, i), NULL, OC, C);
}

static int bits_equal(const float *a, const float *b, size_t n) {
    return memcmp(a, b, n * sizeof(float)) == 0;
}

static float *copy_params(const mq_gpt_t *m) {
    float *p = malloc(m->num_params * sizeof(float));
    cr_assert(p);
    memcpy(p, m->params_memory, m->num_params * sizeof(float));
    return p;
}

static void tensor_names(const mq_gpt_config_t *c, int i, char *weight, char *scales, size_t n) {
    char base[48];
    mq_qmodel_linear_name(c, i, base, sizeof base);
    snprintf(weight, n, "%s.weight", base);
    snprintf(scales, n, "%s.scales", base);
}

/* Where the data section of a serialized file starts: the writer pads the last tensor to the
 * alignment and ends the file there. */
static size_t data_start(const mq_gguf_t *g, size_t len) {
    size_t end = 0, a = mq_gguf_alignment(g);
    for (int64_t k = 0; k < mq_gguf_n_tensors(g); k++) {
        const mq_gguf_tensor_t *t = mq_gguf_tensor(g, k);
        size_t e = (size_t)t->offset + t->nbytes;
        end = e > end ? e : end;
    }
    end = (end + a - 1) / a * a;
    return len - end;
}

/* Byte offset in the file of a tensor's data. */
static size_t data_of(const void *buf, size_t len, const char *tensor) {
    mq_gguf_t *g = parse(buf, len);
    const mq_gguf_tensor_t *t = mq_gguf_find_tensor(g, tensor);
    cr_assert(t, "no tensor %s", tensor);
    size_t at = data_start(g, len) + (size_t)t->offset;
    mq_gguf_free(g);
    return at;
}

/* Byte offset of a GGUF string (length prefix + bytes) in the file: a key or a tensor name. */
static size_t string_at(const uint8_t *buf, size_t len, const char *s) {
    size_t n = strlen(s);
    for (size_t i = 0; i + 8 + n <= len; i++) {
        uint64_t l;
        memcpy(&l, buf + i, 8);
        if (l == n && memcmp(buf + i + 8, s, n) == 0) return i;
    }
    cr_assert_fail("string %s not found", s);
    return 0;
}

/* Offset of the type field of a tensor's info: after its name, n_dims and dimensions. */
static size_t tensor_type_at(const uint8_t *buf, size_t len, const char *tensor) {
    size_t at = string_at(buf, len, tensor) + 8 + strlen(tensor);
    uint32_t n_dims;
    memcpy(&n_dims, buf + at, 4);
    return at + 4 + 8 * (size_t)n_dims;
}

/* The codes and scales of a grid weight (malloc'd), as mq_qweight_from_codes takes them. */
static void codes_of(const mq_qweight_t *w, int8_t **codes, mq_fp16_t **scales) {
    *codes = malloc((size_t)w->rows * w->cols);
    *scales = malloc((w->n_scales ? w->n_scales : 1) * sizeof **scales);
    cr_assert(*codes && *scales);
    mq_error_t err = {0};
    cr_assert_eq(mq_qweight_to_codes(w, *codes, *scales, &err), MQ_OK, "%s", err.msg);
}

/* ---------------------------------------------------------------------------------------------
 * a decoder written from ggml-common.h's block definitions, independent of miniquant's */

static float ref_half(uint16_t h) {
    int sign = h >> 15, e = (h >> 10) & 31, f = h & 1023;
    float v;
    if (e == 0)
        v = ldexpf((float)f, -24);
    else if (e == 31)
        v = f ? NAN : INFINITY;
    else
        v = ldexpf((float)(f | 1024), e - 25);
    return sign ? -v : v;
}

/* block_q8_0 { ggml_half d; int8_t qs[32]; }: y = qs[j] * d */
static void ref_q8_0(const uint8_t *b, size_t nb, float *y) {
    for (size_t i = 0; i < nb; i++, b += 34) {
        float d = ref_half((uint16_t)(b[0] | b[1] << 8));
        for (int j = 0; j < 32; j++)
            y[32 * i + j] = (float)(int8_t)b[2 + j] * d;
    }
}

/* block_q4_0 { ggml_half d; uint8_t qs[16]; }: y[j] = ((qs[j] & 15) - 8) * d,
 * y[j + 16] = ((qs[j] >> 4) - 8) * d */
static void ref_q4_0(const uint8_t *b, size_t nb, float *y) {
    for (size_t i = 0; i < nb; i++, b += 18) {
        float d = ref_half((uint16_t)(b[0] | b[1] << 8));
        for (int j = 0; j < 16; j++) {
            y[32 * i + j] = (float)((b[2 + j] & 15) - 8) * d;
            y[32 * i + j + 16] = (float)((b[2 + j] >> 4) - 8) * d;
        }
    }
}

/* ---------------------------------------------------------------------------------------------
 * the rows of the format table: ggml's blocks and packed codes */

Test(blocks, q8_0_and_q4_0_rows_encode_decode_and_match_the_reference) {
    enum { NB = 37, COLS = NB * 32 };
    int8_t c8[COLS], c4[COLS], back[COLS];
    mq_fp16_t d[NB], dback[NB];
    mq_rng_t r;
    mq_rng_seed(&r, 3);
    for (int i = 0; i < COLS; i++) {
        c8[i] = (int8_t)((int)(mq_rng_uniform(&r) * 255) - 127);
        c4[i] = (int8_t)((int)(mq_rng_uniform(&r) * 15) - 7);
    }
    c8[0] = -127, c8[1] = 127, c4[0] = -7, c4[1] = 7; /* the ends of the grids */
    for (int i = 0; i < NB; i++)
        d[i] = mq_fp32_to_fp16(ldexpf(mq_rng_uniform(&r) + 0.01f, -(i % 30)));
    d[0] = 0;
    d[1] = 0x0001; /* the smallest subnormal */
    d[2] = 0x7bff; /* 65504 */

    /* a row of 32-groups: every block carries a scale of its own */
    const mq_format_t *q8 = format("q8_0"), *q4 = format("q4_0");
    mq_scheme_t s8 = scheme("int8_g32"), s4 = scheme("int4_g32");
    cr_assert_eq(q8->ggml_type, MQ_GGML_Q8_0);
    cr_assert_eq(q4->ggml_type, MQ_GGML_Q4_0);
    cr_assert(q8->block == 32 && q8->block_bytes == 34 && !q8->side_scales);
    cr_assert(q4->block == 32 && q4->block_bytes == 18 && !q4->side_scales);
    cr_assert_eq(q8->row_bytes(&s8, COLS), (size_t)NB * 34);
    cr_assert_eq(q4->row_bytes(&s4, COLS), (size_t)NB * 18);
    cr_assert_eq(q8->ne0(&s8, COLS), COLS);

    uint8_t b8[NB * 34], b4[NB * 18];
    float y[COLS], yref[COLS];
    mq_row_fault_t f;
    mq_qrow_t row8 = {NULL, c8, d, COLS, 32, NULL}, row4 = {NULL, c4, d, COLS, 32, NULL};
    q8->encode_row(&row8, &s8, b8);
    cr_assert_eq(q8->decode_row(b8, NULL, &s8, COLS, 32, back, dback, &f), 0, "%s", f.what);
    cr_assert(memcmp(back, c8, sizeof c8) == 0 && memcmp(dback, d, sizeof d) == 0);
    q8->dequantize_row(b8, NULL, &s8, COLS, 32, y);
    ref_q8_0(b8, NB, yref);
    cr_assert(bits_equal(y, yref, COLS));
    for (int i = 0; i < COLS; i++)
        cr_assert_eq(y[i], (float)c8[i] * mq_fp16_to_fp32(d[i / 32]));
    /* the layout itself: scale little-endian in bytes 0-1, codes after */
    cr_assert_eq(b8[34 * 5], d[5] & 0xff);
    cr_assert_eq(b8[34 * 5 + 1], d[5] >> 8);
    cr_assert_eq((int8_t)b8[34 * 5 + 2 + 7], c8[5 * 32 + 7]);
    /* a code off int8's grid is refused, naming its column */
    b8[34 * 5 + 2 + 7] = 0x80;
    cr_assert_eq(q8->decode_row(b8, NULL, &s8, COLS, 32, back, dback, &f), -1);
    cr_assert_eq(f.col, 5 * 32 + 7);
    cr_assert(strstr(f.what, "code -128 is outside [-127, 127]"), "%s", f.what);

    q4->encode_row(&row4, &s4, b4);
    cr_assert_eq(q4->decode_row(b4, NULL, &s4, COLS, 32, back, dback, &f), 0, "%s", f.what);
    cr_assert(memcmp(back, c4, sizeof c4) == 0 && memcmp(dback, d, sizeof d) == 0);
    q4->dequantize_row(b4, NULL, &s4, COLS, 32, y);
    ref_q4_0(b4, NB, yref);
    cr_assert(bits_equal(y, yref, COLS));
    /* element j < 16 in the low nibble of byte j, element j + 16 in its high nibble */
    cr_assert_eq(b4[18 * 3 + 2 + 4] & 15, c4[3 * 32 + 4] + 8);
    cr_assert_eq(b4[18 * 3 + 2 + 4] >> 4, c4[3 * 32 + 20] + 8);
    b4[18 * 3 + 2 + 4] &= 0xf0; /* nibble 0: code -8, not on int4's grid */
    cr_assert_eq(q4->decode_row(b4, NULL, &s4, COLS, 32, back, dback, &f), -1);
    cr_assert(strstr(f.what, "code -8 is outside [-7, 7]"), "%s", f.what);

    /* per channel: the 32-blocks of a row must all carry the row's scale */
    mq_scheme_t sc = scheme("int8_per_channel");
    mq_fp16_t one = mq_fp32_to_fp16(0.25f);
    mq_qrow_t rowc = {NULL, c8, &one, COLS, COLS, NULL};
    q8->encode_row(&rowc, &sc, b8);
    for (int b = 0; b < NB; b++)
        cr_assert(b8[34 * b] == (one & 0xff) && b8[34 * b + 1] == (one >> 8));
    cr_assert_eq(q8->decode_row(b8, NULL, &sc, COLS, COLS, back, dback, &f), 0, "%s", f.what);
    cr_assert_eq(dback[0], one);
    b8[34 * 3] ^= 1;
    cr_assert_eq(q8->decode_row(b8, NULL, &sc, COLS, COLS, back, dback, &f), -1);
    cr_assert_eq(f.col, 3 * 32);
    cr_assert(strstr(f.what, "blocks disagree with scheme int8_per_channel"), "%s", f.what);
}

Test(blocks, packed_rows_round_trip_for_every_width) {
    static const char *const GRIDS[] = {"int2", "int3", "int4", "int5", "int6",
                                        "int7", "int8", "nf3",  "nf4"};
    const mq_format_t *pk = format("packed");
    cr_assert_eq(pk->ggml_type, MQ_GGML_I8);
    cr_assert(pk->side_scales);
    int8_t codes[203], back[203];
    uint8_t row[256];
    mq_rng_t r;
    mq_rng_seed(&r, 5);
    for (size_t k = 0; k < sizeof GRIDS / sizeof GRIDS[0]; k++) {
        for (int n = 2; n <= 203; n += 13) {
            char name[32];
            snprintf(name, sizeof name, "%s_g%d", GRIDS[k], n);
            mq_scheme_t s = scheme(name);
            const mq_family_t *fam = s.family;
            int bits = s.bits, lo = fam->code_min(bits), hi = fam->code_max(bits);
            int off = fam->codebook ? 0 : 1 << (bits - 1);
            cr_assert_eq(hi - lo + 1, fam->codebook ? 1 << bits : (1 << bits) - 1, "%s", name);
            for (int i = 0; i < n; i++)
                codes[i] = (int8_t)(lo + (int)(mq_rng_uniform(&r) * (hi - lo + 1)));
            codes[0] = (int8_t)lo;
            codes[n - 1] = (int8_t)hi;
            size_t nbytes = pk->row_bytes(&s, n);
            cr_assert_eq(nbytes, ((size_t)n * bits + 7) / 8, "%s", name);
            cr_assert_eq(pk->ne0(&s, n), (int64_t)nbytes);
            mq_fp16_t sc = mq_fp32_to_fp16(0.375f), scb = 0;
            mq_qrow_t src = {NULL, codes, &sc, n, n, NULL};
            memset(row, 0xa5, sizeof row);
            pk->encode_row(&src, &s, row);
            cr_assert_eq(row[nbytes], 0xa5, "%s: written past the row", name);
            mq_row_fault_t f;
            cr_assert_eq(pk->decode_row(row, &sc, &s, n, n, back, &scb, &f), 0, "%s: %s", name,
                         f.what);
            cr_assert(memcmp(codes, back, (size_t)n) == 0, "%s", name);
            cr_assert_eq(scb, sc);
            /* field i at bits [i*b, i*b+b) from the least significant bit of byte 0: code +
             * 2^(b-1) for an int grid, the codebook index for nf */
            for (int i = 0; i < n; i++) {
                size_t bit = (size_t)i * (size_t)bits;
                unsigned v = row[bit / 8] | (bit / 8 + 1 < nbytes ? row[bit / 8 + 1] << 8 : 0);
                cr_assert_eq((int)((v >> (bit % 8)) & ((1u << bits) - 1)), codes[i] + off,
                             "%s field %d", name, i);
            }
            /* a row's values are the grid's, exactly */
            float y[203];
            pk->dequantize_row(row, &sc, &s, n, n, y);
            for (int i = 0; i < n; i++)
                cr_assert_eq(y[i], fam->value(codes[i], mq_fp16_to_fp32(sc), bits), "%s", name);
            if (((size_t)n * bits) % 8) {
                row[nbytes - 1] |= 0x80; /* a padding bit */
                cr_assert_eq(pk->decode_row(row, &sc, &s, n, n, back, &scb, &f), -1, "%s", name);
                cr_assert(strstr(f.what, "padding bits"), "%s: %s", name, f.what);
                row[nbytes - 1] &= 0x7f;
            }
            if (!fam->codebook) { /* field 0 is no code of an int grid */
                row[0] &= (uint8_t) ~((1u << bits) - 1);
                cr_assert_eq(pk->decode_row(row, &sc, &s, n, n, back, &scb, &f), -1, "%s", name);
                cr_assert(strstr(f.what, "field 0 is not a code"), "%s: %s", name, f.what);
            }
        }
    }
}

Test(export, tensor_types_follow_the_contract) {
    static const struct {
        const char *scheme;
        int cols, type;
        const char *format;
    } T[] = {
        {"fp32", 64, MQ_GGML_F32, "f32"},
        {"fp16", 64, MQ_GGML_F16, "f16"},
        {"int8_per_tensor", 64, MQ_GGML_Q8_0, "q8_0"},
        {"int8_per_channel", 96, MQ_GGML_Q8_0, "q8_0"},
        {"int8_g64", 128, MQ_GGML_Q8_0, "q8_0"},
        {"int8_g32_gptq", 64, MQ_GGML_Q8_0, "q8_0"},
        {"int4_per_channel", 64, MQ_GGML_Q4_0, "q4_0"},
        {"int4_g128", 256, MQ_GGML_Q4_0, "q4_0"},
        {"int4_g64_gptq", 64, MQ_GGML_Q4_0, "q4_0"},
        {"int8_g16", 64, MQ_GGML_I8, "packed"},
        {"int4_g48", 96, MQ_GGML_I8, "packed"},
        {"int8_per_channel", 48, MQ_GGML_I8, "packed"},
        {"int4_per_tensor", 40, MQ_GGML_I8, "packed"},
        {"int3_g64", 64, MQ_GGML_I8, "packed"},
        {"int5_per_channel", 64, MQ_GGML_I8, "packed"},
        {"int2_g32", 64, MQ_GGML_I8, "packed"},
        {"nf4_g64", 64, MQ_GGML_I8, "packed"},
        {"nf4_g32", 64, MQ_GGML_I8, "packed"},
        {"nf3_g32", 64, MQ_GGML_I8, "packed"},
        {"nf3_g64_gptq", 128, MQ_GGML_I8, "packed"},
    };
    for (size_t i = 0; i < sizeof T / sizeof T[0]; i++) {
        mq_scheme_t s = scheme(T[i].scheme);
        mq_error_t err = {0};
        const mq_format_t *f = mq_format_for(&s, T[i].cols, &err);
        cr_assert(f, "%s cols %d: %s", T[i].scheme, T[i].cols, err.msg);
        cr_assert_eq(f->ggml_type, T[i].type, "%s cols %d", T[i].scheme, T[i].cols);
        cr_assert_str_eq(f->name, T[i].format, "%s cols %d", T[i].scheme, T[i].cols);
        cr_assert_eq(mq_format_of_ggml_type(T[i].type), f);
    }
    /* a group that does not divide the row has no format */
    mq_scheme_t s = scheme("int4_g48");
    mq_error_t err = {0};
    cr_assert_null(mq_format_for(&s, 64, &err));
    cr_assert(strstr(err.msg, "group size 48 does not divide the row length 64"), "%s", err.msg);
    mq_error_t ok = {0};
    cr_assert_eq(mq_formats_check(&ok), MQ_OK, "%s", ok.msg);
}

/* ---------------------------------------------------------------------------------------------
 * round trips */

#define RT_C 128
#define RT_L 2
#define RT_T 16

static const int RT_TOKENS[2 * RT_T] = {1,  50,  99,  3,   7,  250, 300, 319, 0,   2,  64,
                                        65, 100, 200, 150, 42, 5,   6,   7,   8,   9,  10,
                                        11, 12,  13,  14,  15, 16,  17,  318, 317, 316};

/* The GGUF type a Linear of scheme s takes, from export.h's table (rows of RT_C or 4 RT_C). */
static const char *expected_linear_type(const mq_scheme_t *s) {
    if (mq_scheme_is_identity(s)) return "f32";
    if (!mq_scheme_has_grid(s)) return "f16";
    int blocks = s->gran != MQ_QG_GROUP || s->group % 32 == 0; /* RT_C is a multiple of 32 */
    int is_int = !strcmp(s->family->prefix, "int");
    if (is_int && s->bits == 8 && blocks) return "q8_0";
    if (is_int && s->bits == 4 && blocks) return "q4_0";
    return "i8";
}

/* Runs q's model on RT_TOKENS; the logits, malloc'd. */
static float *logits_of(const mq_qmodel_t *q) {
    mq_error_t err = {0};
    size_t nl = (size_t)2 * RT_T * q->model->cfg.vocab_size;
    cr_assert_eq(mq_gpt_forward(q->model, RT_TOKENS, NULL, 2, RT_T, &err), MQ_OK, "%s", err.msg);
    float *l = malloc(nl * sizeof(float));
    cr_assert(l);
    memcpy(l, q->model->acts.logits, nl * sizeof(float));
    return l;
}

static void round_trip(const char *name, int skip, int arch) {
    mq_gpt_t m, md;
    mq_qmodel_t q, q2;
    random_model_of(&m, arch, VOCAB, 32, RT_C, 2, RT_L, 11);
    float *before = copy_params(&m);
    quantize(&q, &m, name, skip);
    /* quantizing made a model of its own: the FP32 one is as it was, and runs as FP32 */
    cr_assert(bits_equal(before, m.params_memory, m.num_params), "%s: m changed", name);
    cr_assert_null(m.linear_fn, "%s", name);
    void *buf;
    size_t len;
    export_mem(&m, &q, NULL, &buf, &len);

    mq_error_t err = {0};
    cr_assert_eq(load_mem(buf, len, &q2, &err), MQ_OK, "%s: %s", name, err.msg);
    mq_gguf_t *g = parse(buf, len);
    const uint8_t *data = (const uint8_t *)buf + data_start(g, len);
    const mq_scheme_t *s = &q.scheme;
    cr_assert_str_eq(q2.scheme.name, s->name);
    cr_assert_eq(q2.skip_lm_head, skip);
    cr_assert_eq(q2.n_linear, q.n_linear);
    cr_assert_not_null(q2.model->linear_fn, "%s: the loaded model does not run its layers", name);
    cr_assert_null(q2.file, "%s: loading from memory keeps no file", name);
    cr_assert_eq(mq_qmodel_dequantize(&q2, &md, &err), MQ_OK, "%s", err.msg);
    for (int i = 0; i < q.n_linear; i++) {
        char tname[64], sname[64];
        tensor_names(&m.cfg, i, tname, sname, sizeof tname);
        const mq_gguf_tensor_t *t = mq_gguf_find_tensor(g, tname);
        cr_assert(t, "%s: no %s", name, tname);
        int head_skipped = skip && i == q.n_linear - 1;
        cr_assert_str_eq(mq_ggml_type_info(t->type)->name,
                         head_skipped ? "f32" : expected_linear_type(s), "%s %s", name, tname);
        cr_assert_eq(q.active[i], mq_scheme_is_identity(s) || !head_skipped, "%s %s", name, tname);
        cr_assert_eq(q2.active[i], q.active[i], "%s %s active", name, tname);

        /* the file holds the layer's bytes as they are, and loading gives them back */
        const mq_qweight_t *a = &q.ql[i].w, *b = &q2.ql[i].w;
        size_t nb = (size_t)a->rows * a->row_bytes;
        cr_assert_eq(t->type, a->format->ggml_type, "%s %s", name, tname);
        cr_assert_eq(t->nbytes, nb, "%s %s: %zu bytes, the layer %zu", name, tname, t->nbytes, nb);
        cr_assert(memcmp(data + t->offset, a->data, nb) == 0,
                  "%s %s: the file's bytes are not the layer's", name, tname);
        cr_assert(b->format == a->format && b->rows == a->rows && b->cols == a->cols &&
                      b->row_bytes == a->row_bytes && b->n_scales == a->n_scales,
                  "%s %s", name, tname);
        cr_assert(memcmp(a->data, b->data, nb) == 0, "%s %s: loaded bytes differ", name, tname);
        cr_assert_eq(b->borrowed, 0, "%s %s: a copy from memory must own its bytes", name, tname);
        const mq_gguf_tensor_t *ts = mq_gguf_find_tensor(g, sname);
        if (a->format->side_scales) {
            cr_assert(ts && ts->type == MQ_GGML_F16 && ts->nbytes == a->n_scales * 2, "%s %s", name,
                      sname);
            cr_assert(memcmp(data + ts->offset, a->scales, ts->nbytes) == 0,
                      "%s %s: the file's scales are not the layer's", name, sname);
            cr_assert(memcmp(a->scales, b->scales, ts->nbytes) == 0, "%s %s: loaded scales differ",
                      name, sname);
        } else {
            cr_assert(!ts && !a->scales && !b->scales, "%s %s: scales beside %s", name, sname,
                      a->format->name);
        }

        int OC, C;
        const float *W = fp32_weight(&m, i, &OC, &C);
        float *A = layer_values(&q, i), *B = layer_values(&q2, i);
        const float *W2 = fp32_weight(&md, i, NULL, NULL);
        cr_assert(bits_equal(A, B, (size_t)OC * C), "%s %s: dequantized weights differ", name,
                  tname);
        cr_assert(bits_equal(A, W2, (size_t)OC * C), "%s %s: mq_qmodel_dequantize differs", name,
                  tname);
        if (!q.active[i] || mq_scheme_is_identity(s)) /* a Linear left FP32 is m's weight */
            cr_assert(bits_equal(A, W, (size_t)OC * C), "%s %s", name, tname);
        if (!q.active[i])
            cr_assert_eq((const void *)a->data, (const void *)W, "%s %s: not read where it lies",
                         name, tname);
        free(A);
        free(B);
        if (q.ql[i].bias) cr_assert(bits_equal(q.ql[i].bias, q2.ql[i].bias, (size_t)OC));
    }
    /* every parameter that is not a Linear weight: embeddings (FP16-rounded where the scheme
     * stores them so), norms, biases */
    for (int p = 0; p < MQ_NUM_PARAMS; p++) {
        if (mq_gpt_param_is_matrix(p) && p != MQ_P_WTE && p != MQ_P_WPE) continue;
        const float *x = ((float **)&m.params)[p], *y = ((float **)&q.model->params)[p];
        cr_assert(bits_equal(y, ((float **)&q2.model->params)[p], m.param_sizes[p]),
                  "%s: parameter %s differs", name, mq_gpt_param_name(p));
        cr_assert(bits_equal(y, ((float **)&md.params)[p], m.param_sizes[p]));
        int rounded = (p == MQ_P_WTE || p == MQ_P_WPE) && s->family->embeddings_f16;
        for (size_t k = 0; k < m.param_sizes[p]; k++)
            cr_assert_eq(y[k], rounded ? mq_round_fp16(x[k]) : x[k], "%s: %s[%zu]", name,
                         mq_gpt_param_name(p), k);
    }
    /* the forward passes agree to the bit */
    size_t nl = (size_t)2 * RT_T * VOCAB;
    float *logits = logits_of(&q), *logits2 = logits_of(&q2);
    cr_assert(bits_equal(logits, logits2, nl), "%s: logits differ", name);
    for (size_t k = 0; k < nl; k++)
        cr_assert(isfinite(logits[k]));
    free(logits);
    free(logits2);
    /* exporting the reloaded model writes the same bytes again (no FP32 model needed) */
    void *buf2;
    size_t len2;
    export_mem(NULL, &q2, NULL, &buf2, &len2);
    cr_assert(len2 == len && memcmp(buf, buf2, len) == 0, "%s: the second export differs", name);
    free(buf2);
    mq_gguf_free(g);
    free(buf);
    free(before);
    mq_gpt_free(&md);
    mq_qmodel_free(&q2);
    mq_qmodel_free(&q);
    mq_gpt_free(&m);
}

Test(export, every_scheme_round_trips_exactly_in_both_architectures) {
    static const char *const SCHEMES[] = {
        "fp32",
        "fp16",
        "int8_per_tensor",
        "int8_per_channel",
        "int8_g64",
        "int8_g128",
        "int4_per_tensor",
        "int4_per_channel",
        "int4_g32",
        "int4_g64",
        "int4_g128",
        "int4_g64_gptq",
        "int2_g64",
        "int3_per_channel",
        "int5_g32",
        "int6_per_tensor",
        "int7_g128",
        "int2_per_tensor",
        "int8_g16",
        "int4_g16",
        "int4_g8",
        "nf4_g64",
        "nf4_g16",
        "nf4_g128",
        "nf3_g32",
        "nf3_g64",
        "nf3_g16",
    };
    for (int arch = 0; arch < MQ_NUM_ARCHS; arch++)
        for (size_t i = 0; i < sizeof SCHEMES / sizeof SCHEMES[0]; i++)
            round_trip(SCHEMES[i], 0, arch);
}

Test(export, skip_lm_head_round_trips_with_an_f32_head) {
    static const char *const SCHEMES[] = {"fp32",    "fp16",     "int8_per_channel", "int4_g64",
                                          "nf4_g64", "int3_g32", "nf3_g32"};
    for (size_t i = 0; i < sizeof SCHEMES / sizeof SCHEMES[0]; i++)
        round_trip(SCHEMES[i], 1, MQ_ARCH_GPT2);
}

/* The sum over m's Linears of the squared error of q's values. */
static double weight_error(const mq_gpt_t *m, const mq_qmodel_t *q) {
    double se = 0.0;
    for (int i = 0; i < q->n_linear; i++) {
        int OC, C;
        const float *W = fp32_weight(m, i, &OC, &C);
        float *D = layer_values(q, i);
        for (size_t k = 0; k < (size_t)OC * C; k++)
            se += ((double)W[k] - D[k]) * ((double)W[k] - D[k]);
        free(D);
    }
    return se;
}

/* NormalFloat-3: packed 3-bit codes on its codebook, a GUESSED file that miniquant loads back
 * bit for bit, pointing into the file, and that evaluates to the same perplexity. */
Test(export, nf3_exports_packed_reloads_bit_identical_and_evaluates) {
    char dir[] = "/tmp/mq_export_nf3_XXXXXX";
    cr_assert(mkdtemp(dir));
    char path[256];
    snprintf(path, sizeof path, "%s/nf3.gguf", dir);
    mq_tokenizer_t *tok = small_tokenizer(), *tok2 = NULL;
    mq_gpt_t m;
    mq_qmodel_t q, q2, q4, q2b;
    mq_error_t err = {0};
    random_model(&m, VOCAB, 32, RT_C, 2, RT_L, 91);
    quantize(&q, &m, "nf3_g32", 0);
    const mq_family_t *fam = q.scheme.family;
    cr_assert_eq(q.scheme.bits, 3);
    cr_assert_not_null(fam->codebook);

    /* every weight is the grid point nearest to its FP32 value: codebook[code] * scale */
    for (int i = 0; i < q.n_linear; i++) {
        const mq_qweight_t *w = &q.ql[i].w;
        cr_assert_str_eq(w->format->name, "packed");
        cr_assert_eq(w->row_bytes, ((size_t)w->cols * 3 + 7) / 8);
        cr_assert_eq(w->n_scales, (size_t)w->rows * w->cols / 32);
        int8_t *codes;
        mq_fp16_t *sc;
        codes_of(w, &codes, &sc);
        int OC, C;
        const float *W = fp32_weight(&m, i, &OC, &C);
        float *D = layer_values(&q, i);
        for (size_t k = 0; k < (size_t)OC * C; k++) {
            float scale = mq_fp16_to_fp32(sc[k / 32]);
            cr_assert(codes[k] >= 0 && codes[k] <= 7);
            cr_assert_eq(D[k], fam->codebook[codes[k]] * scale);
            /* (up to the rounding of the distances, which may be fused) */
            float e = fabsf(W[k] - D[k]);
            for (int c = 0; c < 8; c++)
                cr_assert_leq(e, fabsf(W[k] - fam->codebook[c] * scale) + 1e-6f * scale,
                              "Linear %d weight %zu: code %d, %d is nearer", i, k, codes[k], c);
        }
        free(codes);
        free(sc);
        free(D);
    }
    /* 8 levels lose more than NF4's 16 and less than int2's 3 */
    quantize(&q4, &m, "nf4_g32", 0);
    quantize(&q2b, &m, "int2_g32", 0);
    double e3 = weight_error(&m, &q), e4 = weight_error(&m, &q4), e2 = weight_error(&m, &q2b);
    cr_assert(e4 < e3 && e3 < e2, "squared error: nf4 %g, nf3 %g, int2 %g", e4, e3, e2);
    mq_qmodel_free(&q4);
    mq_qmodel_free(&q2b);

    cr_assert_eq(mq_qmodel_save(path, NULL, &q, tok, &err), MQ_OK, "%s", err.msg);
    mq_export_bytes_t eb;
    cr_assert_eq(mq_export_bytes_file(path, &eb, &err), MQ_OK, "%s", err.msg);
    cr_assert_float_eq(eb.bits_per_weight, 3.5, 1e-12, "%.6f bits per weight", eb.bits_per_weight);

    cr_assert_eq(mq_qmodel_load(path, &q2, &tok2, &err), MQ_OK, "%s", err.msg);
    const mq_gguf_t *file = q2.file;
    cr_assert_not_null(file);
    uint32_t ft;
    cr_assert_eq(mq_gguf_get_u32(file, "general.file_type", &ft, &err), MQ_OK, "%s", err.msg);
    cr_assert_eq(ft, MQ_FTYPE_GUESSED);
    cr_assert_str_eq(q2.scheme.name, "nf3_g32");
    for (int i = 0; i < q.n_linear; i++) {
        char tname[64], sname[64];
        tensor_names(&m.cfg, i, tname, sname, sizeof tname);
        const mq_gguf_tensor_t *t = mq_gguf_find_tensor(file, tname),
                               *ts = mq_gguf_find_tensor(file, sname);
        const mq_qweight_t *a = &q.ql[i].w, *b = &q2.ql[i].w;
        cr_assert(t && ts, "%s", tname);
        cr_assert_eq(t->type, MQ_GGML_I8);
        cr_assert_eq(t->ne[0], (int64_t)a->row_bytes);
        cr_assert(q2.active[i]);
        /* the layer is the file's bytes, where they lie */
        cr_assert_eq(b->borrowed, 1, "%s", tname);
        cr_assert_eq((const void *)b->data, t->data, "%s", tname);
        cr_assert_eq((const void *)b->scales, ts->data, "%s", sname);
        cr_assert(memcmp(a->data, b->data, (size_t)a->rows * a->row_bytes) == 0, "%s", tname);
        cr_assert(memcmp(a->scales, b->scales, a->n_scales * 2) == 0, "%s", sname);
    }
    /* and evaluates as the model that was exported */
    int32_t stream[300];
    mq_rng_t r;
    mq_rng_seed(&r, 92);
    for (int k = 0; k < 300; k++)
        stream[k] = (int32_t)mq_rng_below(&r, VOCAB);
    mq_ppl_result_t p1, p2;
    cr_assert_eq(mq_perplexity(q.model, stream, 300, MQ_PPL_DEFAULT, 0, 0, &p1, &err), MQ_OK, "%s",
                 err.msg);
    cr_assert_eq(mq_perplexity(q2.model, stream, 300, MQ_PPL_DEFAULT, 0, 0, &p2, &err), MQ_OK, "%s",
                 err.msg);
    cr_assert(isfinite(p1.ppl) && p1.ppl > 1.0, "perplexity %g", p1.ppl);
    cr_assert_eq(p1.ppl, p2.ppl);
    cr_assert_eq(p1.n_scored, 299);

    mq_tokenizer_free(tok);
    mq_tokenizer_free(tok2);
    mq_qmodel_free(&q2);
    cr_assert_null(q2.file);
    cr_assert_null(q2.ql);
    mq_qmodel_free(&q);
    mq_gpt_free(&m);
    unlink(path);
    rmdir(dir);
}

/* Loads path and checks that every Linear is want's bytes where the file holds them (side
 * scales too), runs it, and frees it. A function of its own, so that once it has returned no
 * pointer into what it loaded is left on the stack for the leak check to find. */
__attribute__((noinline)) static void load_run_free(const char *path, const mq_qmodel_t *want) {
    mq_qmodel_t q;
    mq_tokenizer_t *tok = NULL;
    mq_error_t err = {0};
    cr_assert_eq(mq_qmodel_load(path, &q, &tok, &err), MQ_OK, "%s", err.msg);
    cr_assert_not_null(q.file);
    cr_assert_str_eq(q.scheme.name, want->scheme.name);
    for (int i = 0; i < q.n_linear; i++) {
        char tname[64], sname[64];
        tensor_names(&q.model->cfg, i, tname, sname, sizeof tname);
        const mq_gguf_tensor_t *t = mq_gguf_find_tensor(q.file, tname),
                               *ts = mq_gguf_find_tensor(q.file, sname);
        const mq_qweight_t *a = &want->ql[i].w, *b = &q.ql[i].w;
        cr_assert(t && b->format == a->format && q.active[i] == want->active[i], "%s", tname);
        cr_assert_eq(b->borrowed, 1, "%s: copied, not read where it lies", tname);
        cr_assert_eq((const void *)b->data, t->data, "%s", tname);
        cr_assert(memcmp(a->data, b->data, (size_t)a->rows * a->row_bytes) == 0, "%s", tname);
        if (a->format->side_scales) {
            cr_assert(ts && (const void *)b->scales == ts->data, "%s", sname);
            cr_assert(memcmp(a->scales, b->scales, a->n_scales * 2) == 0, "%s", sname);
        }
    }
    float *l = logits_of(want), *l2 = logits_of(&q);
    cr_assert(bits_equal(l, l2, (size_t)2 * RT_T * VOCAB), "%s: logits differ", path);
    free(l);
    free(l2);
    mq_tokenizer_free(tok);
    mq_qmodel_free(&q);
    cr_assert(!q.file && !q.ql && !q.model && !q.active);
}

/* mq_qmodel_load keeps the file and points every layer into it (Q4_0 blocks, an F32 head,
 * packed codes with their scales); mq_qmodel_free frees the file with the rest. */
Test(export, loading_points_into_the_file_and_freeing_frees_it) {
    static const struct {
        const char *scheme;
        int skip;
    } CASES[] = {{"int4_g32", 1}, {"nf3_g32", 0}, {"int8_per_channel", 0}, {"fp16", 1}};
    char dir[] = "/tmp/mq_export_load_XXXXXX";
    cr_assert(mkdtemp(dir));
    char path[256];
    snprintf(path, sizeof path, "%s/q.gguf", dir);
    mq_tokenizer_t *tok = small_tokenizer();
    mq_gpt_t m;
    random_model(&m, VOCAB, 32, 64, 2, 1, 101);
    for (size_t k = 0; k < sizeof CASES / sizeof CASES[0]; k++) {
        mq_qmodel_t q;
        mq_error_t err = {0};
        quantize(&q, &m, CASES[k].scheme, CASES[k].skip);
        cr_assert_eq(mq_qmodel_save(path, NULL, &q, tok, &err), MQ_OK, "%s", err.msg);
        load_run_free(path, &q);
        cr_assert(!LEAKED(), "%s: freeing the loaded model left memory behind", CASES[k].scheme);
        mq_qmodel_free(&q);
    }
    mq_tokenizer_free(tok);
    mq_gpt_free(&m);
    unlink(path);
    rmdir(dir);
}

Test(export, files_keep_the_tokenizer_and_a_plain_checkpoint_reads_them) {
    char dir[] = "/tmp/mq_export_XXXXXX";
    cr_assert(mkdtemp(dir));
    char path[256], path16[256];
    snprintf(path, sizeof path, "%s/int4.gguf", dir);
    snprintf(path16, sizeof path16, "%s/fp16.gguf", dir);
    mq_tokenizer_t *tok = small_tokenizer(), *tok2 = NULL;
    mq_gpt_t m;
    mq_qmodel_t q, q2;
    mq_error_t err = {0};
    random_model(&m, VOCAB, 32, 64, 2, 1, 21);
    quantize(&q, &m, "int4_g32", 0);
    cr_assert_eq(mq_qmodel_save(path, &m, &q, tok, &err), MQ_OK, "%s", err.msg);
    cr_assert_eq(mq_qmodel_load(path, &q2, &tok2, &err), MQ_OK, "%s", err.msg);
    cr_assert_eq(mq_tokenizer_n_vocab(tok2), VOCAB);
    int32_t *a, *b;
    size_t na, nb;
    const char *text = "the children walked to the store";
    cr_assert_eq(mq_tokenizer_encode(tok, text, strlen(text), 0, &a, &na, &err), MQ_OK);
    cr_assert_eq(mq_tokenizer_encode(tok2, text, strlen(text), 0, &b, &nb, &err), MQ_OK);
    cr_assert(na == nb && memcmp(a, b, na * sizeof *a) == 0);
    free(a);
    free(b);
    /* the loaded layers are the file's Q4_0 blocks, where the file holds them */
    for (int i = 0; i < q2.n_linear; i++) {
        char tname[64], sname[64];
        tensor_names(&m.cfg, i, tname, sname, sizeof tname);
        const mq_gguf_tensor_t *t = mq_gguf_find_tensor(q2.file, tname);
        const mq_qweight_t *w = &q2.ql[i].w;
        cr_assert(t && q2.active[i]);
        cr_assert_str_eq(w->format->name, "q4_0");
        cr_assert(w->borrowed && (const void *)w->data == t->data, "%s", tname);
        cr_assert(memcmp(w->data, q.ql[i].w.data, t->nbytes) == 0, "%s", tname);
    }
    /* the plain checkpoint reader gives the values of a Q4_0 export, and of an fp16 one */
    mq_gpt_t m3;
    cr_assert_eq(mq_checkpoint_load(path, &m3, NULL, NULL, &err), MQ_OK, "%s", err.msg);
    float *Q = layer_values(&q, 0);
    cr_assert(bits_equal(Q, m3.params.qkvw, m.param_sizes[MQ_P_QKVW]));
    free(Q);
    mq_gpt_free(&m3);
    mq_qmodel_free(&q);
    quantize(&q, &m, "fp16", 0);
    cr_assert_eq(mq_qmodel_save(path16, &m, &q, tok, &err), MQ_OK, "%s", err.msg);
    cr_assert_eq(mq_checkpoint_load(path16, &m3, NULL, NULL, &err), MQ_OK, "%s", err.msg);
    float *A = layer_values(&q, 0);
    cr_assert(bits_equal(A, m3.params.qkvw, m.param_sizes[MQ_P_QKVW]));
    free(A);
    mq_gpt_free(&m3);

    mq_tokenizer_free(tok);
    mq_tokenizer_free(tok2);
    mq_qmodel_free(&q2);
    mq_qmodel_free(&q);
    mq_gpt_free(&m);
    unlink(path);
    unlink(path16);
    rmdir(dir);
}

/* ---------------------------------------------------------------------------------------------
 * the file itself */

static void check_layout(const char *name, const char *linear_type, uint32_t ftype, double bpw) {
    mq_gpt_t m;
    mq_qmodel_t q;
    mq_tokenizer_t *tok = small_tokenizer();
    random_model(&m, VOCAB, 32, RT_C, 2, RT_L, 31);
    quantize(&q, &m, name, 0);
    void *buf;
    size_t len;
    export_mem(&m, &q, tok, &buf, &len);
    int bits = q.scheme.bits;
    mq_gguf_t *g = parse(buf, len);
    mq_error_t err = {0};

    uint32_t u;
    mq_gguf_str_t str;
    int b;
    cr_assert_eq(mq_gguf_get_u32(g, "general.file_type", &u, &err), MQ_OK, "%s", err.msg);
    cr_assert_eq(u, ftype, "%s: file_type %u", name, u);
    cr_assert_eq(mq_gguf_kv_type(g, mq_gguf_find_key(g, "general.file_type")), MQ_GGUF_UINT32);
    cr_assert_eq(mq_gguf_get_str(g, "general.architecture", &str, &err), MQ_OK);
    cr_assert_str_eq(str.ptr, "gpt2");
    cr_assert_eq(mq_gguf_get_str(g, "miniquant.scheme", &str, &err), MQ_OK);
    cr_assert_str_eq(str.ptr, name);
    cr_assert_eq(mq_gguf_get_bool(g, "miniquant.skip_lm_head", &b, &err), MQ_OK);
    cr_assert_eq(b, 0);
    cr_assert_eq(mq_gguf_get_u32(g, "miniquant.export_version", &u, &err), MQ_OK);
    cr_assert_eq(u, 1);
    cr_assert_eq(mq_gguf_get_u32(g, "gpt2.embedding_length", &u, &err), MQ_OK);
    cr_assert_eq(u, RT_C);
    cr_assert_eq(mq_gguf_get_u32(g, "gpt2.block_count", &u, &err), MQ_OK);
    cr_assert_eq(u, RT_L);
    cr_assert_eq(mq_gguf_get_str(g, "tokenizer.ggml.model", &str, &err), MQ_OK);
    cr_assert_str_eq(str.ptr, "gpt2");

    size_t a = mq_gguf_alignment(g), d0 = data_start(g, len);
    cr_assert_eq(a, 32);
    cr_assert_eq(d0 % a, 0);
    cr_assert_eq(len % a, 0);
    int packed = !strcmp(linear_type, "i8");
    int64_t n_linear_tensors = 0;
    for (int64_t k = 0; k < mq_gguf_n_tensors(g); k++) {
        const mq_gguf_tensor_t *t = mq_gguf_tensor(g, k);
        const char *tn = mq_ggml_type_info(t->type)->name;
        cr_assert_eq(t->offset % a, 0, "%s misaligned", t->name);
        cr_assert(memcmp((const uint8_t *)buf + d0 + t->offset, t->data, t->nbytes) == 0);
        int embd =
            !strcmp(t->name, "token_embd.weight") || !strcmp(t->name, "position_embd.weight");
        int scales = strstr(t->name, ".scales") != NULL;
        int linear = t->n_dims == 2 && !embd;
        if (embd) {
            cr_assert_str_eq(tn, ftype == 0 ? "f32" : "f16", "%s", t->name);
        } else if (scales) {
            cr_assert(packed);
            cr_assert_str_eq(tn, "f16");
            cr_assert_eq(t->n_dims, 1);
            n_linear_tensors++;
        } else if (linear) {
            cr_assert_str_eq(tn, linear_type, "%s", t->name);
            int64_t cols = strstr(t->name, "ffn_down") ? 4 * RT_C : RT_C, rows = t->ne[1];
            size_t want = !strcmp(tn, "q8_0")   ? (size_t)(rows * cols / 32 * 34)
                          : !strcmp(tn, "q4_0") ? (size_t)(rows * cols / 32 * 18)
                          : !strcmp(tn, "f32")  ? (size_t)(rows * cols * 4)
                          : !strcmp(tn, "f16")  ? (size_t)(rows * cols * 2)
                                                : (size_t)(rows * ((cols * bits + 7) / 8));
            cr_assert_eq(t->ne[0], packed ? (cols * bits + 7) / 8 : cols, "%s", t->name);
            cr_assert_eq(t->nbytes, want, "%s: %zu bytes", t->name, t->nbytes);
            n_linear_tensors++;
        } else {
            cr_assert_str_eq(tn, "f32", "%s", t->name);
            cr_assert_eq(t->n_dims, 1);
        }
    }
    cr_assert_eq(n_linear_tensors, (4 * RT_L + 1) * (packed ? 2 : 1));
    mq_export_bytes_t eb;
    cr_assert_eq(mq_export_bytes(g, &eb, &err), MQ_OK, "%s", err.msg);
    cr_assert_eq(eb.file, len);
    cr_assert_eq(eb.linear_params, (size_t)RT_L * 12 * RT_C * RT_C + (size_t)VOCAB * RT_C);
    cr_assert_eq(eb.embedding, (size_t)(VOCAB + 32) * RT_C * (ftype == 0 ? 4 : 2));
    cr_assert_float_eq(eb.bits_per_weight, bpw, 1e-12, "%s: %.6f bits per weight", name,
                       eb.bits_per_weight);

    mq_gguf_free(g);
    free(buf);
    mq_tokenizer_free(tok);
    mq_qmodel_free(&q);
    mq_gpt_free(&m);
}

Test(export, layout_and_metadata_field_by_field) {
    check_layout("int8_per_channel", "q8_0", 7, 8.5);
    check_layout("int8_g64", "q8_0", 7, 8.5);
    check_layout("int4_g64", "q4_0", 2, 4.5);
    check_layout("int4_per_tensor", "q4_0", 2, 4.5);
    check_layout("fp16", "f16", 1, 16.0);
    check_layout("fp32", "f32", 0, 32.0);
    check_layout("nf4_g64", "i8", 1024, 4.25);
    check_layout("nf3_g64", "i8", 1024, 3.25);
    check_layout("int3_g32", "i8", 1024, 3.5);
}

/* ggml's K-quants and IQ4_NL as miniquant writes them: each Linear in its scheme's format, or
 * in the fallback llama-quantize takes when 256 does not divide its rows (here every Linear but
 * ffn_down, whose rows hold 4 x 128 inputs); file_type the scheme's own; the file reads back
 * to the same bytes, and ggml's dequantization of each tensor gives the layer's values. */
Test(export, k_quant_files_hold_each_linear_in_its_format_or_fallback) {
    static const struct {
        const char *scheme, *own, *fallback;
        uint32_t ftype;
    } CASES[] = {{"q4_k", "q4_K", "q5_0", 14},   {"q5_k", "q5_K", "q5_1", 16},
                 {"q6_k", "q6_K", "q8_0", 18},   {"iq4_nl", "iq4_nl", "iq4_nl", 25},
                 {"q3_k", "q3_K", "iq4_nl", 11}, {"q2_k", "q2_K", "iq4_nl", 10}};
    for (size_t c = 0; c < sizeof CASES / sizeof CASES[0]; c++) {
        mq_gpt_t m;
        mq_qmodel_t q, q2;
        random_model(&m, VOCAB, 32, RT_C, 2, RT_L, 33);
        quantize(&q, &m, CASES[c].scheme, 0);
        void *buf;
        size_t len;
        export_mem(&m, &q, NULL, &buf, &len);
        mq_gguf_t *g = parse(buf, len);
        uint32_t ft;
        cr_assert_eq(mq_gguf_get_u32(g, "general.file_type", &ft, NULL), MQ_OK);
        cr_assert_eq(ft, CASES[c].ftype, "%s: file_type %u", CASES[c].scheme, ft);
        for (int i = 0; i < q.n_linear; i++) {
            char base[48], tname[64];
            mq_qmodel_linear_name(&m.cfg, i, base, sizeof base);
            snprintf(tname, sizeof tname, "%s.weight", base);
            const mq_gguf_tensor_t *t = mq_gguf_find_tensor(g, tname);
            const char *want = t->ne[0] % 256 ? CASES[c].fallback : CASES[c].own;
            cr_assert_str_eq(mq_ggml_type_info(t->type)->name, want, "%s %s", CASES[c].scheme,
                             tname);
            size_t numel = (size_t)t->ne[0] * (size_t)t->ne[1];
            float *y = malloc(numel * sizeof *y), *values = layer_values(&q, i);
            mq_format_of_ggml_type(t->type)->dequantize_row(t->data, NULL, NULL, (int)numel,
                                                            (int)numel, y);
            cr_assert(bits_equal(y, values, numel), "%s %s", CASES[c].scheme, tname);
            free(y);
            free(values);
        }
        mq_error_t err = {0};
        cr_assert_eq(load_mem(buf, len, &q2, &err), MQ_OK, "%s", err.msg);
        cr_assert_str_eq(q2.scheme.name, CASES[c].scheme);
        for (int i = 0; i < q.n_linear; i++) {
            cr_assert_eq(q2.ql[i].w.format, q.ql[i].w.format);
            cr_assert(!memcmp(q2.ql[i].w.data, q.ql[i].w.data,
                              (size_t)q.ql[i].w.rows * q.ql[i].w.row_bytes));
        }
        mq_qmodel_free(&q2);
        mq_gguf_free(g);
        free(buf);
        mq_qmodel_free(&q);
        mq_gpt_free(&m);
    }
}

Test(export, q8_0_and_q4_0_files_decode_with_the_reference_decoder) {
    static const char *const SCHEMES[] = {"int8_per_channel", "int8_per_tensor",  "int8_g64",
                                          "int4_g64",         "int4_per_channel", "int4_g128"};
    for (size_t s = 0; s < sizeof SCHEMES / sizeof SCHEMES[0]; s++) {
        mq_gpt_t m;
        mq_qmodel_t q;
        random_model(&m, VOCAB, 32, RT_C, 2, 1, 41);
        quantize(&q, &m, SCHEMES[s], 0);
        void *buf;
        size_t len;
        export_mem(&m, &q, NULL, &buf, &len);
        mq_gguf_t *g = parse(buf, len);
        for (int i = 0; i < q.n_linear; i++) {
            char base[48], tname[64];
            mq_qmodel_linear_name(&m.cfg, i, base, sizeof base);
            snprintf(tname, sizeof tname, "%s.weight", base);
            const mq_gguf_tensor_t *t = mq_gguf_find_tensor(g, tname);
            size_t numel = (size_t)t->ne[0] * (size_t)t->ne[1];
            float *y = malloc(numel * sizeof(float)), *want = layer_values(&q, i);
            const uint8_t *raw = (const uint8_t *)buf + data_start(g, len) + t->offset;
            if (t->type == MQ_GGML_Q8_0)
                ref_q8_0(raw, numel / 32, y);
            else {
                cr_assert_eq(t->type, MQ_GGML_Q4_0);
                ref_q4_0(raw, numel / 32, y);
            }
            cr_assert(bits_equal(y, want, numel), "%s %s", SCHEMES[s], tname);
            free(y);
            free(want);
        }
        mq_gguf_free(g);
        free(buf);
        mq_qmodel_free(&q);
        mq_gpt_free(&m);
    }
}

/* A foreign file's layers: F32, not quantized, and their values those of the blocks. */
static void check_plain(const mq_qmodel_t *q2) {
    cr_assert_str_eq(q2->scheme.name, "fp32");
    for (int i = 0; i < q2->n_linear; i++) {
        cr_assert_eq(q2->active[i], 0);
        cr_assert_str_eq(q2->ql[i].w.format->name, "f32");
        cr_assert_eq(q2->ql[i].w.borrowed, 0);
    }
    mq_model_bytes_t mb;
    mq_model_bytes(NULL, q2, &mb);
    cr_assert_eq(mb.bits_per_weight, 32.0);
    float *l = logits_of(q2);
    for (size_t k = 0; k < (size_t)2 * RT_T * VOCAB; k++)
        cr_assert(isfinite(l[k]));
    free(l);
}

Test(export, a_file_without_the_scheme_key_loads_as_a_plain_model) {
    /* as llama-quantize's output would: Q8_0 tensors, no miniquant.scheme */
    mq_gpt_t m;
    mq_qmodel_t q, q2;
    random_model(&m, VOCAB, 32, 64, 2, 1, 51);
    quantize(&q, &m, "int8_per_channel", 0);
    void *buf;
    size_t len;
    export_mem(&m, &q, NULL, &buf, &len);
    uint8_t *p = buf;
    size_t k = string_at(p, len, "miniquant.scheme");
    p[k + 8 + strlen("miniquant.scheme") - 1] = 'X';
    mq_error_t err = {0};
    cr_assert_eq(load_mem(buf, len, &q2, &err), MQ_OK, "%s", err.msg);
    check_plain(&q2);
    for (int i = 0; i < q.n_linear; i++) {
        float *A = layer_values(&q, i), *B = layer_values(&q2, i);
        cr_assert(bits_equal(A, B, (size_t)q.ql[i].w.rows * q.ql[i].w.cols), "Linear %d", i);
        free(A);
        free(B);
    }
    free(buf);
    mq_qmodel_free(&q2);

    /* llama-quantize keeps miniquant.scheme but adds general.quantization_version; its
     * per-block scales would fail the per-channel check, so the file loads as ggml's */
    mq_gguf_t *g = mq_gguf_new();
    cr_assert_eq(mq_qmodel_to_gguf(&m, &q, NULL, g, &err), MQ_OK, "%s", err.msg);
    cr_assert_eq(mq_gguf_set_u32(g, "general.quantization_version", 2), MQ_OK);
    cr_assert_eq(mq_gguf_write_mem(g, &buf, &len, &err), MQ_OK);
    mq_gguf_free(g);
    p = buf;
    size_t d = data_of(buf, len, "blk.0.ffn_down.weight");
    p[d + 34] ^= 0x01; /* the second block of row 0 gets a scale of its own */
    cr_assert_eq(load_mem(buf, len, &q2, &err), MQ_OK, "%s", err.msg);
    check_plain(&q2);
    /* ffn_down is (64, 256): its values are ggml's dequantization of the blocks as they are */
    float *B = layer_values(&q2, 3), *want = malloc((size_t)64 * 256 * sizeof(float)),
          *A = layer_values(&q, 3);
    ref_q8_0(p + d, (size_t)64 * 256 / 32, want);
    cr_assert(bits_equal(B, want, (size_t)64 * 256));
    cr_assert(!bits_equal(A + 32, B + 32, 32), "block 1 of row 0 kept its old scale");
    cr_assert(bits_equal(A + 64, B + 64, (size_t)64 * 256 - 64));
    free(A);
    free(B);
    free(want);
    free(buf);
    mq_qmodel_free(&q2);
    mq_qmodel_free(&q);
    mq_gpt_free(&m);
}

/* A foreign file whose blk.0.ffn_down.weight (256 inputs, 64 rows) is of ggml type `type`
 * holding block bytes of a pattern (every half finite); *at: where its data starts. */
static void *foreign_with_type(int type, size_t *len, size_t *at) {
    mq_gpt_t m;
    random_model(&m, VOCAB, 32, 64, 2, 1, 61);
    void *buf;
    export_mem(&m, NULL, NULL, &buf, len);
    mq_gpt_free(&m);
    uint8_t *p = buf;
    size_t k = string_at(p, *len, "miniquant.scheme");
    p[k + 8 + strlen("miniquant.scheme") - 1] = 'X'; /* no scheme: another tool's file */
    *at = data_of(buf, *len, "blk.0.ffn_down.weight");
    uint32_t t = (uint32_t)type;
    memcpy(p + tensor_type_at(p, *len, "blk.0.ffn_down.weight"), &t, 4);
    size_t n = 0;
    cr_assert_eq(mq_ggml_nbytes(type, 2, (int64_t[]){256, 64}, &n, NULL), MQ_OK);
    for (size_t i = 0; i < n; i++) /* below 0x40: every FP16 and BF16 field is finite */
        p[*at + i] = (uint8_t)((i * 37 + (i >> 5) * 11 + 5) & 0x3f);
    return buf;
}

Test(export, files_of_every_type_miniquant_reads_load_dequantized_as_ggml_does) {
    static const int TYPES[] = {MQ_GGML_BF16, MQ_GGML_Q4_1,   MQ_GGML_Q5_0,  MQ_GGML_Q5_1,
                                MQ_GGML_Q2_K, MQ_GGML_Q3_K,   MQ_GGML_Q4_K,  MQ_GGML_Q5_K,
                                MQ_GGML_Q6_K, MQ_GGML_IQ4_NL, MQ_GGML_IQ4_XS};
    for (size_t i = 0; i < sizeof TYPES / sizeof TYPES[0]; i++) {
        size_t len, at;
        uint8_t *buf = foreign_with_type(TYPES[i], &len, &at);
        mq_qmodel_t q;
        mq_error_t err = {0};
        const char *name = mq_ggml_type_info(TYPES[i])->name;
        cr_assert_eq(load_mem(buf, len, &q, &err), MQ_OK, "%s: %s", name, err.msg);
        check_plain(&q);
        float *got = layer_values(&q, 3), *want = malloc((size_t)256 * 64 * sizeof(float));
        mq_format_of_ggml_type(TYPES[i])->dequantize_row(buf + at, NULL, NULL, 256 * 64, 256 * 64,
                                                         want);
        cr_assert(bits_equal(got, want, (size_t)256 * 64), "%s", name);
        free(got);
        free(want);
        mq_qmodel_free(&q);
        free(buf);
    }
}

Test(export, a_type_miniquant_does_not_read_is_refused_by_tensor_and_name) {
    static const int TYPES[] = {MQ_GGML_IQ2_XXS, MQ_GGML_Q8_K, MQ_GGML_TQ2_0, MQ_GGML_I8};
    for (size_t i = 0; i < sizeof TYPES / sizeof TYPES[0]; i++) {
        size_t len, at;
        uint8_t *buf = foreign_with_type(TYPES[i], &len, &at);
        mq_qmodel_t q;
        mq_error_t err = {0};
        cr_assert_neq(load_mem(buf, len, &q, &err), MQ_OK);
        char want[96];
        snprintf(want, sizeof want,
                 "tensor blk.0.ffn_down.weight has type %s, which miniquant does "
                 "not read",
                 mq_ggml_type_info(TYPES[i])->name);
        cr_assert(strstr(err.msg, "hostile.gguf: "), "%s", err.msg);
        cr_assert(strstr(err.msg, want), "%s", err.msg);
        cr_assert(strstr(err.msg, "q4_K"), "the types it reads are listed: %s", err.msg);
        free(buf);
    }
}

/* ---------------------------------------------------------------------------------------------
 * hostile files */

/* A small quantized file, no tokenizer: C = 32, one layer. */
static void small_file(const char *name, void **buf, size_t *len) {
    mq_gpt_t m;
    mq_qmodel_t q;
    random_model(&m, 64, 16, 32, 2, 1, 61);
    quantize(&q, &m, name, 0);
    export_mem(&m, &q, NULL, buf, len);
    mq_qmodel_free(&q);
    mq_gpt_free(&m);
}

static void expect_fail(const void *buf, size_t len, const char *needle) {
    mq_qmodel_t q;
    mq_error_t err = {0};
    int rc = load_mem(buf, len, &q, &err);
    cr_assert_neq(rc, MQ_OK, "a hostile file loaded (expected: %s)", needle);
    cr_assert(strstr(err.msg, "hostile.gguf"), "message does not name the file: %s", err.msg);
    cr_assert(strstr(err.msg, needle), "expected '%s' in: %s", needle, err.msg);
}

Test(hostile, truncation_at_every_offset) {
    static const char *const SCHEMES[] = {"int4_per_channel", "nf4_g32"};
    for (int s = 0; s < 2; s++) {
        void *buf;
        size_t len;
        small_file(SCHEMES[s], &buf, &len);
        for (size_t n = 0; n < len; n++) {
            mq_qmodel_t q;
            mq_error_t err = {0};
            int rc = load_mem(buf, n, &q, &err);
            cr_assert_neq(rc, MQ_OK, "%s truncated to %zu bytes loaded", SCHEMES[s], n);
            cr_assert(strstr(err.msg, "hostile.gguf"), "%s", err.msg);
        }
        free(buf);
    }
}

Test(hostile, every_corrupted_byte_fails_cleanly_or_loads) {
    static const char *const SCHEMES[] = {"int8_g32", "int3_per_channel"};
    for (int s = 0; s < 2; s++) {
        void *buf;
        size_t len;
        small_file(SCHEMES[s], &buf, &len);
        uint8_t *p = buf;
        int failed = 0;
        for (size_t k = 0; k < len; k += 1) {
            uint8_t keep = p[k];
            p[k] ^= (uint8_t)(k % 2 ? 0xff : 0x80);
            mq_qmodel_t q;
            mq_error_t err = {0};
            int rc = load_mem(buf, len, &q, &err);
            if (rc == MQ_OK) {
                /* what loads runs (one in 50: a forward costs 30 loads) */
                int tok = 0;
                if (k % 50 == 0)
                    cr_assert_eq(mq_gpt_forward(q.model, &tok, NULL, 1, 1, &err), MQ_OK, "%s",
                                 err.msg);
                mq_qmodel_free(&q);
            } else {
                failed++;
                cr_assert(strstr(err.msg, "hostile.gguf"), "%s", err.msg);
            }
            p[k] = keep;
        }
        cr_assert_gt(failed, 0);
        free(buf);
    }
}

Test(hostile, tensor_offsets_past_the_end_and_unknown_types) {
    void *buf;
    size_t len;
    small_file("int8_per_channel", &buf, &len);
    uint8_t *p = buf;
    size_t at = tensor_type_at(p, len, "output.weight");
    uint32_t type;
    uint64_t off, huge = (uint64_t)1 << 40;
    memcpy(&type, p + at, 4);
    cr_assert_eq(type, MQ_GGML_Q8_0);
    memcpy(&off, p + at + 4, 8);
    memcpy(p + at + 4, &huge, 8);
    expect_fail(buf, len, "output.weight");
    memcpy(p + at + 4, &off, 8);

    uint32_t unknown = 99;
    memcpy(p + at, &unknown, 4);
    expect_fail(buf, len, "unknown tensor type 99");
    /* a type ggml knows but the scheme does not use: i8 is smaller than q8_0, so the file is
     * still well-formed GGUF */
    uint32_t i8 = MQ_GGML_I8;
    memcpy(p + at, &i8, 4);
    expect_fail(buf, len, "scheme int8_per_channel stores it as q8_0");
    memcpy(p + at, &type, 4);

    mq_qmodel_t q;
    mq_error_t err = {0};
    cr_assert_eq(load_mem(buf, len, &q, &err), MQ_OK, "%s", err.msg);
    mq_qmodel_free(&q);
    free(buf);
}

Test(hostile, blocks_that_disagree_with_the_scheme) {
    void *buf;
    size_t len;
    small_file("int8_per_channel", &buf, &len);
    uint8_t *p = buf;
    /* ffn_down has 128 inputs: four blocks per row, which must share the row's scale */
    size_t d = data_of(buf, len, "blk.0.ffn_down.weight");
    p[d + 34] ^= 0x01;
    expect_fail(buf, len, "blocks disagree with scheme int8_per_channel");
    expect_fail(buf, len, "blk.0.ffn_down.weight");
    p[d + 34] ^= 0x01;
    uint8_t keep = p[d + 2 + 5];
    p[d + 2 + 5] = 0x80; /* -128: outside int8's [-127, 127] */
    expect_fail(buf, len, "code -128 is outside [-127, 127]");
    p[d + 2 + 5] = keep;
    p[d + 1] |= 0x80; /* a negative scale */
    p[d + 34 + 1] |= 0x80;
    p[d + 68 + 1] |= 0x80;
    p[d + 102 + 1] |= 0x80;
    expect_fail(buf, len, "negative or not finite");
    free(buf);

    small_file("int8_per_tensor", &buf, &len);
    p = buf;
    d = data_of(buf, len, "blk.0.attn_qkv.weight");
    p[d + 34 * 7] ^= 0x04; /* row 7's scale differs from row 0's */
    expect_fail(buf, len, "tensor's first block");
    free(buf);

    small_file("int4_per_channel", &buf, &len);
    p = buf;
    d = data_of(buf, len, "blk.0.ffn_up.weight");
    p[d + 2] &= 0xf0; /* nibble 0 is code -8, not on int4's grid */
    expect_fail(buf, len, "code -8 is outside [-7, 7]");
    free(buf);
}

Test(hostile, missing_or_wrong_scales_and_codes_of_packed_tensors) {
    void *buf;
    size_t len;
    small_file("nf4_g32", &buf, &len);
    uint8_t *p = buf;
    size_t at = string_at(p, len, "blk.0.attn_qkv.scales");
    p[at + 8 + strlen("blk.0.attn_qkv.scales") - 1] = 'z';
    expect_fail(buf, len, "tensor blk.0.attn_qkv.scales is missing");
    p[at + 8 + strlen("blk.0.attn_qkv.scales") - 1] = 's';
    /* a scales tensor of another type */
    at = tensor_type_at(p, len, "output.scales");
    uint32_t i8 = MQ_GGML_I8, f16 = MQ_GGML_F16;
    memcpy(p + at, &i8, 4);
    expect_fail(buf, len, "output.scales has type i8, expected f16");
    memcpy(p + at, &f16, 4);
    size_t d = data_of(buf, len, "blk.0.ffn_up.scales");
    p[d + 2 * 3 + 1] = 0x7c; /* scale 3 becomes infinite */
    expect_fail(buf, len, "negative or not finite");
    free(buf);

    small_file("int3_per_channel", &buf, &len);
    p = buf;
    d = data_of(buf, len, "blk.0.attn_output.weight");
    p[d] &= 0xf8; /* field 0 is no int3 code (codes are stored as code + 4) */
    expect_fail(buf, len, "field 0 is not a code of int3_per_channel");
    free(buf);
}

Test(hostile, metadata_that_contradicts_the_tensors) {
    void *buf;
    size_t len;
    small_file("int8_per_channel", &buf, &len);
    uint8_t *p = buf;
    /* the scheme's value: "int8_per_channel" -> "int8_per_chXnnel" */
    size_t at = string_at(p, len, "miniquant.scheme") + 8 + strlen("miniquant.scheme") + 4;
    cr_assert(memcmp(p + at + 8, "int8_per_channel", 16) == 0);
    p[at + 8 + 11] = 'X';
    expect_fail(buf, len, "miniquant.scheme: unknown quantization scheme");
    p[at + 8 + 11] = 'a';
    /* int4 where the blocks are q8_0 */
    memcpy(p + at + 8, "int4_per_channel", 16);
    expect_fail(buf, len, "stores it as q4_0");
    memcpy(p + at + 8, "int8_per_channel", 16);
    /* skip_lm_head claimed, but the head is quantized */
    at = string_at(p, len, "miniquant.skip_lm_head") + 8 + strlen("miniquant.skip_lm_head") + 4;
    cr_assert_eq(p[at], 0);
    p[at] = 1;
    expect_fail(buf, len, "skip_lm_head is set but tensor output.weight is q8_0");
    p[at] = 0;
    free(buf);

    /* a tensor the format has no place for */
    mq_gpt_t m;
    mq_qmodel_t q;
    random_model(&m, 64, 16, 32, 2, 1, 61);
    quantize(&q, &m, "int8_per_channel", 0);
    mq_gguf_t *g = mq_gguf_new();
    mq_error_t err = {0};
    cr_assert_eq(mq_qmodel_to_gguf(&m, &q, NULL, g, &err), MQ_OK, "%s", err.msg);
    int64_t ne = 96;
    mq_fp16_t s[96] = {0};
    cr_assert_eq(mq_gguf_add_tensor(g, "blk.0.attn_qkv.scales", MQ_GGML_F16, 1, &ne, s, &err),
                 MQ_OK);
    cr_assert_eq(mq_gguf_write_mem(g, &buf, &len, &err), MQ_OK);
    expect_fail(buf, len, "tensor blk.0.attn_qkv.scales is not part of");
    free(buf);
    mq_gguf_free(g);
    mq_qmodel_free(&q);
    mq_gpt_free(&m);
}

/* The exporter writes a quantized model's layers as they are: the FP32 model passed beside it
 * is not read (whatever it is), and layers that contradict the model's scheme, or hold nothing,
 * are refused with a message rather than written under a scheme they do not follow. */
Test(export, writes_the_layers_of_q_and_refuses_layers_that_are_not_its_scheme) {
    mq_gpt_t m, other;
    mq_qmodel_t q;
    random_model(&m, 64, 16, 32, 2, 1, 71);
    random_model(&other, 64, 16, 64, 2, 1, 72);
    quantize(&q, &m, "int4_g32", 0);
    void *a, *b;
    size_t na, nb;
    export_mem(NULL, &q, NULL, &a, &na);
    export_mem(&other, &q, NULL, &b, &nb);
    cr_assert(na == nb && memcmp(a, b, na) == 0, "the export read the FP32 model beside q");
    free(a);
    free(b);

    /* Linear 0 replaced by a weight of another scheme */
    mq_error_t err = {0};
    mq_scheme_t s8 = scheme("int8_per_channel");
    const float *W = fp32_weight(&m, 0, NULL, NULL);
    mq_qweight_t w;
    cr_assert_eq(mq_qweight_quantize(&w, &s8, W, 96, 32, &err), MQ_OK, "%s", err.msg);
    cr_assert_eq(mq_qmodel_set_linear(&q, 0, &w, &err), MQ_OK, "%s", err.msg);
    cr_assert_null(w.data, "set_linear takes the weight");
    mq_gguf_t *g = mq_gguf_new();
    cr_assert_eq(mq_qmodel_to_gguf(NULL, &q, NULL, g, &err), MQ_ERR_ARG);
    cr_assert(strstr(err.msg, "export: blk.0.attn_qkv is quantized with int8_per_channel, the "
                              "model with int4_g32"),
              "%s", err.msg);
    mq_gguf_free(g);
    /* a weight of another shape is refused before it reaches the model */
    mq_scheme_t s4 = scheme("int4_g32");
    cr_assert_eq(mq_qweight_quantize(&w, &s4, W, 32, 96, &err), MQ_OK, "%s", err.msg);
    cr_assert_eq(mq_qmodel_set_linear(&q, 1, &w, &err), MQ_ERR_ARG);
    cr_assert(strstr(err.msg, "Linear 1 is 32 x 32, the weight 32 x 96"), "%s", err.msg);
    mq_qweight_free(&w);
    /* the scheme's weight back in place, and a layer that holds nothing */
    cr_assert_eq(mq_qweight_quantize(&w, &s4, W, 96, 32, &err), MQ_OK, "%s", err.msg);
    cr_assert_eq(mq_qmodel_set_linear(&q, 0, &w, &err), MQ_OK, "%s", err.msg);
    mq_qlinear_free(&q.ql[2]);
    g = mq_gguf_new();
    cr_assert_eq(mq_qmodel_to_gguf(NULL, &q, NULL, g, &err), MQ_ERR_ARG);
    cr_assert(strstr(err.msg, "export: blk.0.ffn_up holds no weights"), "%s", err.msg);
    mq_gguf_free(g);
    mq_qmodel_free(&q);
    mq_gpt_free(&other);
    mq_gpt_free(&m);
}

/* ---------------------------------------------------------------------------------------------
 * the command */

static int run(const char *cmd) {
    int st = system(cmd);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

Test(cli, export_writes_a_file_that_loads_back) {
    char dir[] = "/tmp/mq_export_cli_XXXXXX";
    cr_assert(mkdtemp(dir));
    char model[256], out[256], cmd[1024];
    snprintf(model, sizeof model, "%s/m.gguf", dir);
    snprintf(out, sizeof out, "%s/q.gguf", dir);
    mq_tokenizer_t *tok = small_tokenizer();
    mq_gpt_t m;
    mq_qmodel_t q, q2, qc;
    mq_error_t err = {0};
    random_model(&m, VOCAB, 32, 64, 2, 1, 81);
    cr_assert_eq(mq_checkpoint_save(model, &m, tok, NULL, &err), MQ_OK, "%s", err.msg);

    /* a checkpoint loads as the plain model, its F32 weights read where the file holds them */
    cr_assert_eq(mq_qmodel_load(model, &qc, NULL, &err), MQ_OK, "%s", err.msg);
    cr_assert_str_eq(qc.scheme.name, "fp32");
    for (int i = 0; i < qc.n_linear; i++) {
        char tname[64], sname[64];
        tensor_names(&m.cfg, i, tname, sname, sizeof tname);
        const mq_gguf_tensor_t *t = mq_gguf_find_tensor(qc.file, tname);
        const mq_qweight_t *w = &qc.ql[i].w;
        int OC, C;
        const float *W = fp32_weight(&m, i, &OC, &C);
        cr_assert(t && !qc.active[i]);
        cr_assert_str_eq(w->format->name, "f32");
        cr_assert(w->borrowed && (const void *)w->data == t->data, "%s", tname);
        cr_assert(memcmp(w->data, W, (size_t)OC * C * sizeof(float)) == 0, "%s", tname);
    }
    mq_qmodel_free(&qc);

    snprintf(cmd, sizeof cmd, "%s export --help > /dev/null", MQ_CLI_PATH);
    cr_assert_eq(run(cmd), 0);
    snprintf(cmd, sizeof cmd, "%s export --model %s --scheme int9_g64 --out %s 2> /dev/null",
             MQ_CLI_PATH, model, out);
    cr_assert_eq(run(cmd), 2);
    snprintf(cmd, sizeof cmd,
             "%s export --model %s/none.gguf --scheme int4_g64 --out %s 2> /dev/null", MQ_CLI_PATH,
             dir, out);
    cr_assert_eq(run(cmd), 1);
    snprintf(cmd, sizeof cmd,
             "%s export --model %s --scheme int4_g32 --skip-lm-head --out %s > /dev/null",
             MQ_CLI_PATH, model, out);
    cr_assert_eq(run(cmd), 0);

    cr_assert_eq(mq_qmodel_load(out, &q2, NULL, &err), MQ_OK, "%s", err.msg);
    cr_assert_str_eq(q2.scheme.name, "int4_g32");
    cr_assert_eq(q2.skip_lm_head, 1);
    quantize(&q, &m, "int4_g32", 1);
    for (int i = 0; i < q.n_linear; i++) {
        const mq_qweight_t *a = &q.ql[i].w, *b = &q2.ql[i].w;
        cr_assert_eq(a->format, b->format, "Linear %d", i);
        cr_assert_eq(q2.active[i], i < q.n_linear - 1, "Linear %d", i);
        cr_assert(memcmp(a->data, b->data, (size_t)a->rows * a->row_bytes) == 0, "Linear %d", i);
        float *A = layer_values(&q, i), *B = layer_values(&q2, i);
        cr_assert(bits_equal(A, B, (size_t)a->rows * a->cols));
        free(A);
        free(B);
    }
    mq_tokenizer_free(tok);
    mq_qmodel_free(&q2);
    mq_qmodel_free(&q);
    mq_gpt_free(&m);
    unlink(model);
    unlink(out);
    rmdir(dir);
}

/* ---------------------------------------------------------------------------------------------
 * streaming: one layer at a time gives the file of the whole model in memory */

Test(export, streaming_writes_the_tensors_of_the_whole_model_export) {
    static const char *const schemes[] = {"int4_g32_gptq", "nf4_g16_gptq", "int8_per_channel",
                                          "q4_k_imat", "fp16"};
    char dir[] = "/tmp/mq-stream-export-XXXXXX", ckpt[256], a[256], b[256];
    cr_assert(mkdtemp(dir));
    snprintf(ckpt, sizeof ckpt, "%s/m.gguf", dir);
    snprintf(a, sizeof a, "%s/a.gguf", dir);
    snprintf(b, sizeof b, "%s/b.gguf", dir);
    mq_tokenizer_t *tok;
    mq_error_t err = {0};
    cr_assert_eq(mq_synth_vocabulary(300, &tok, &err), MQ_OK);
    int32_t calib[700];
    for (int i = 0; i < 700; i++)
        calib[i] = (i * 131 + 7) % 300;
    for (int arch = 0; arch < MQ_NUM_ARCHS; arch++) {
        mq_gpt_config_t cfg = {.name = "custom",
                               .vocab_size = 300,
                               .n_ctx = 16,
                               .n_embd = 64,
                               .n_head = 4,
                               .n_layer = 2,
                               .arch = arch};
        if (arch == MQ_ARCH_LLAMA) cfg.n_head_kv = 2, cfg.n_ff = 96;
        cr_assert_eq(mq_synth_write(ckpt, &cfg, tok, 3, &err), MQ_OK, "%s", err.msg);
        mq_gpt_t m;
        cr_assert_eq(mq_checkpoint_load(ckpt, &m, NULL, NULL, &err), MQ_OK, "%s", err.msg);
        for (size_t k = 0; k < sizeof schemes / sizeof *schemes; k++) {
            mq_scheme_t s;
            cr_assert_eq(mq_scheme_parse(schemes[k], &s, NULL), MQ_OK);
            mq_gptq_opts_t o;
            mq_gptq_opts_for(&s, &o);
            o.n_samples = 12;
            o.batch = 5; /* a last batch of 2 */
            mq_qmodel_t q;
            cr_assert_eq(mq_gptq_build_qmodel_with(&m, &s, 0, calib, 700, &o, &q, &err), MQ_OK,
                         "%s", err.msg);
            cr_assert_eq(mq_qmodel_save(a, &m, &q, tok, &err), MQ_OK, "%s", err.msg);
            mq_qmodel_free(&q);
            cr_assert_eq(mq_export_stream(ckpt, b, &s, calib, 700, 0, &o, &err), MQ_OK, "%s",
                         err.msg);
            mq_gguf_t *ga, *gb;
            cr_assert_eq(mq_gguf_read(a, &ga, NULL), MQ_OK);
            cr_assert_eq(mq_gguf_read(b, &gb, NULL), MQ_OK);
            cr_assert_eq(mq_gguf_n_tensors(ga), mq_gguf_n_tensors(gb), "%s", schemes[k]);
            cr_assert_eq(mq_gguf_n_kv(ga), mq_gguf_n_kv(gb), "%s", schemes[k]);
            for (int64_t i = 0; i < mq_gguf_n_tensors(ga); i++) {
                const mq_gguf_tensor_t *ta = mq_gguf_tensor(ga, i);
                const mq_gguf_tensor_t *tb = mq_gguf_find_tensor(gb, ta->name);
                cr_assert(tb, "arch %d %s: no %s", arch, schemes[k], ta->name);
                cr_assert(ta->type == tb->type && ta->nbytes == tb->nbytes &&
                              !memcmp(ta->ne, tb->ne, sizeof ta->ne) &&
                              !memcmp(ta->data, tb->data, ta->nbytes),
                          "arch %d %s: tensor %s differs", arch, schemes[k], ta->name);
            }
            for (int64_t i = 0; i < mq_gguf_n_kv(ga); i++)
                cr_assert_str_eq(mq_gguf_kv_key(ga, i), mq_gguf_kv_key(gb, i));
            mq_gguf_free(ga);
            mq_gguf_free(gb);
        }
        mq_gpt_free(&m);
    }
    mq_tokenizer_free(tok);
    remove(ckpt), remove(a), remove(b), remove(dir);
}
