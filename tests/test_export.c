/* Tests of miniquant's GGUF export of quantized models: exact round trips of every scheme
 * (codes, scales, dequantized weights and logits bit for bit), ggml's Q8_0 / Q4_0 blocks checked
 * against a decoder written here from the block definitions, the layout and metadata of a file
 * field by field, and hostile files (truncated, corrupted, blocks that disagree with the
 * scheme, missing tensors) that must fail with a message, never crash. */
#include <criterion/criterion.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "miniquant/checkpoint.h"
#include "miniquant/export.h"
#include "miniquant/fileio.h"
#include "miniquant/rng.h"

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

/* A random MiniGPT whose LayerNorm parameters and biases are not the init's constants, with an
 * all-zero row in a Linear (the zero-scale guard) and an all-zero group elsewhere. */
static void random_model(mq_gpt_t *m, int V, int maxT, int C, int NH, int L, uint64_t seed) {
    mq_gpt_config_t cfg = {"custom", V, maxT, C, NH, L};
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
    memset(m->params.qkvw + 5 * (size_t)C, 0, (size_t)C * sizeof(float));
    memset(m->params.fcprojw + 64, 0, 64 * sizeof(float));
}

static mq_scheme_t scheme(const char *name) {
    mq_scheme_t s;
    mq_error_t err = {0};
    cr_assert_eq(mq_scheme_parse(name, &s, &err), MQ_OK, "%s: %s", name, err.msg);
    return s;
}

static void quantize(mq_qmodel_t *q, mq_gpt_t *m, const char *name, int skip) {
    mq_scheme_t s = scheme(name);
    mq_qmodel_opts_t o = {skip, -1, 0};
    mq_error_t err = {0};
    cr_assert_eq(mq_qmodel_apply(q, m, &s, &o, &err), MQ_OK, "%s: %s", name, err.msg);
}

/* Serializes the export of (m, q) to a malloc'd buffer. */
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

/* Loads a buffer; returns the status and leaves the message in err. */
static int load_mem(const void *buf, size_t len, mq_gpt_t *m, mq_qmodel_t *q, mq_error_t *err) {
    mq_gguf_t *g = NULL;
    int rc = mq_gguf_read_mem(buf, len, "hostile.gguf", &g, err);
    if (rc) return rc;
    rc = mq_qmodel_from_gguf(g, "hostile.gguf", m, q, err);
    mq_gguf_free(g);
    return rc;
}

/* The effective FP32 weight of Linear i: what the quantized forward multiplies by. */
static float *effective_weight(mq_gpt_t *m, const mq_qmodel_t *q, int i) {
    int OC, C;
    float *W = mq_gpt_linear_weight(m, mq_qmodel_linear_id(&m->cfg, i), NULL, &OC, &C);
    float *D = malloc((size_t)OC * C * sizeof(float));
    cr_assert(D);
    if (q && q->n_linear && q->active[i])
        mq_qweight_dequantize(&q->ql[i].w, D);
    else
        memcpy(D, W, (size_t)OC * C * sizeof(float));
    return D;
}

static int bits_equal(const float *a, const float *b, size_t n) {
    return memcmp(a, b, n * sizeof(float)) == 0;
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
 * block codecs and packed fields */

Test(blocks, q8_0_and_q4_0_encode_decode_and_match_the_reference) {
    enum { NB = 37 };
    int8_t c8[NB * 32], c4[NB * 32], back[NB * 32];
    mq_fp16_t d[NB], dback[NB];
    mq_rng_t r;
    mq_rng_seed(&r, 3);
    for (int i = 0; i < NB * 32; i++) {
        c8[i] = (int8_t)((int)(mq_rng_uniform(&r) * 256) - 128);
        c4[i] = (int8_t)((int)(mq_rng_uniform(&r) * 16) - 8);
    }
    for (int i = 0; i < NB; i++)
        d[i] = mq_fp32_to_fp16(ldexpf(mq_rng_uniform(&r) + 0.01f, -(i % 30)));
    d[0] = 0;
    d[1] = 0x0001; /* the smallest subnormal */
    d[2] = 0x7bff; /* 65504 */

    uint8_t b8[NB * 34], b4[NB * 18];
    float y[NB * 32], yref[NB * 32];
    mq_q8_0_encode(c8, d, NB, b8);
    mq_q8_0_decode(b8, NB, back, dback);
    cr_assert(memcmp(back, c8, sizeof c8) == 0 && memcmp(dback, d, sizeof d) == 0);
    mq_q8_0_dequantize(b8, NB, y);
    ref_q8_0(b8, NB, yref);
    cr_assert(bits_equal(y, yref, NB * 32));
    for (int i = 0; i < NB * 32; i++)
        cr_assert_eq(y[i], (float)c8[i] * mq_fp16_to_fp32(d[i / 32]));
    /* the layout itself: scale little-endian in bytes 0-1, codes after */
    cr_assert_eq(b8[34 * 5], d[5] & 0xff);
    cr_assert_eq(b8[34 * 5 + 1], d[5] >> 8);
    cr_assert_eq((int8_t)b8[34 * 5 + 2 + 7], c8[5 * 32 + 7]);

    mq_q4_0_encode(c4, d, NB, b4);
    mq_q4_0_decode(b4, NB, back, dback);
    cr_assert(memcmp(back, c4, sizeof c4) == 0 && memcmp(dback, d, sizeof d) == 0);
    mq_q4_0_dequantize(b4, NB, y);
    ref_q4_0(b4, NB, yref);
    cr_assert(bits_equal(y, yref, NB * 32));
    /* element j < 16 in the low nibble of byte j, element j + 16 in its high nibble */
    cr_assert_eq(b4[18 * 3 + 2 + 4] & 15, c4[3 * 32 + 4] + 8);
    cr_assert_eq(b4[18 * 3 + 2 + 4] >> 4, c4[3 * 32 + 20] + 8);
}

Test(blocks, packed_fields_round_trip_for_every_width) {
    uint8_t f[203], back[203], packed[256];
    mq_rng_t r;
    mq_rng_seed(&r, 5);
    for (int bits = 1; bits <= 8; bits++) {
        for (size_t n = 1; n <= 203; n += 13) {
            for (size_t i = 0; i < n; i++)
                f[i] = (uint8_t)(mq_rng_uniform(&r) * (1 << bits));
            memset(packed, 0xa5, sizeof packed);
            mq_pack_fields(f, n, bits, packed);
            size_t nbytes = mq_packed_bytes(n, bits);
            cr_assert_eq(nbytes, (n * bits + 7) / 8);
            cr_assert_eq(mq_unpack_fields(packed, n, bits, back), 0);
            cr_assert(memcmp(f, back, n) == 0, "bits %d n %zu", bits, n);
            /* field i at bits [i*b, i*b+b) from the least significant bit of byte 0 */
            size_t i = n / 2, bit = i * (size_t)bits;
            unsigned v = packed[bit / 8] | (bit / 8 + 1 < nbytes ? packed[bit / 8 + 1] << 8 : 0);
            cr_assert_eq((v >> (bit % 8)) & ((1u << bits) - 1), f[i]);
            if ((n * bits) % 8) {
                packed[nbytes - 1] |= 0x80; /* a padding bit */
                cr_assert_eq(mq_unpack_fields(packed, n, bits, back), -1);
            }
        }
    }
}

Test(export, tensor_types_follow_the_contract) {
    static const struct {
        const char *scheme;
        int cols, type;
    } T[] = {
        {"fp32", 64, MQ_GGML_F32},
        {"fp16", 64, MQ_GGML_F16},
        {"int8_per_tensor", 64, MQ_GGML_Q8_0},
        {"int8_per_channel", 96, MQ_GGML_Q8_0},
        {"int8_g64", 128, MQ_GGML_Q8_0},
        {"int8_g32_gptq", 64, MQ_GGML_Q8_0},
        {"int4_per_channel", 64, MQ_GGML_Q4_0},
        {"int4_g128", 256, MQ_GGML_Q4_0},
        {"int4_g64_gptq", 64, MQ_GGML_Q4_0},
        {"int8_g16", 64, MQ_GGML_TYPE_I8},
        {"int4_g48", 96, MQ_GGML_TYPE_I8},
        {"int8_per_channel", 48, MQ_GGML_TYPE_I8},
        {"int4_per_tensor", 40, MQ_GGML_TYPE_I8},
        {"int3_g64", 64, MQ_GGML_TYPE_I8},
        {"int5_per_channel", 64, MQ_GGML_TYPE_I8},
        {"int2_g32", 64, MQ_GGML_TYPE_I8},
        {"nf4_g64", 64, MQ_GGML_TYPE_I8},
        {"nf4_g32", 64, MQ_GGML_TYPE_I8},
    };
    for (size_t i = 0; i < sizeof T / sizeof T[0]; i++) {
        mq_scheme_t s = scheme(T[i].scheme);
        cr_assert_eq(mq_export_tensor_type(&s, T[i].cols), T[i].type, "%s cols %d", T[i].scheme,
                     T[i].cols);
    }
}

/* ---------------------------------------------------------------------------------------------
 * round trips */

#define RT_C 128
#define RT_L 2
#define RT_T 16

static const int RT_TOKENS[2 * RT_T] = {1,  50,  99,  3,   7,  250, 300, 319, 0,   2,  64,
                                        65, 100, 200, 150, 42, 5,   6,   7,   8,   9,  10,
                                        11, 12,  13,  14,  15, 16,  17,  318, 317, 316};

static const char *expected_linear_type(const mq_scheme_t *s) {
    if (s->kind == MQ_QK_FP32) return "f32";
    if (s->kind == MQ_QK_FP16) return "f16";
    int blocks = s->gran != MQ_QG_GROUP || s->group % 32 == 0; /* RT_C is a multiple of 32 */
    if (s->kind == MQ_QK_INT && s->bits == 8 && blocks) return "q8_0";
    if (s->kind == MQ_QK_INT && s->bits == 4 && blocks) return "q4_0";
    return "i8";
}

static void round_trip(const char *name, int skip) {
    mq_gpt_t m, m2;
    mq_qmodel_t q, q2;
    random_model(&m, VOCAB, 32, RT_C, 2, RT_L, 11);
    quantize(&q, &m, name, skip);
    void *buf;
    size_t len;
    export_mem(&m, &q, NULL, &buf, &len);

    mq_error_t err = {0};
    cr_assert_eq(load_mem(buf, len, &m2, &q2, &err), MQ_OK, "%s: %s", name, err.msg);
    mq_gguf_t *g = parse(buf, len);
    const mq_scheme_t *s = &q.scheme;
    cr_assert_str_eq(q2.scheme.name, s->name);
    cr_assert_eq(q2.skip_lm_head, skip);
    cr_assert_eq(q2.n_linear, q.n_linear);
    int plain = s->kind == MQ_QK_FP32;
    cr_assert_eq(m2.linear_fn != NULL, !plain, "%s: installed", name);
    for (int i = 0; i < q.n_linear; i++) {
        char base[48], tname[64];
        mq_qmodel_linear_name(&m.cfg, i, base, sizeof base);
        snprintf(tname, sizeof tname, "%s.weight", base);
        const mq_gguf_tensor_t *t = mq_gguf_find_tensor(g, tname);
        int head_skipped = skip && i == q.n_linear - 1;
        cr_assert_str_eq(mq_ggml_type_info(t->type)->name,
                         head_skipped ? "f32" : expected_linear_type(s), "%s %s", name, tname);
        cr_assert_eq(q2.active[i], plain ? 0 : q.active[i], "%s %s active", name, base);
        const mq_qweight_t *a = &q.ql[i].w, *b = &q2.ql[i].w;
        if (q2.active[i] && s->kind != MQ_QK_FP16) {
            size_t numel = (size_t)a->rows * a->cols;
            cr_assert_eq(b->n_scales, a->n_scales);
            cr_assert(memcmp(a->codes, b->codes, numel) == 0, "%s %s codes", name, base);
            cr_assert(memcmp(a->scales, b->scales, a->n_scales * 2) == 0, "%s %s scales", name,
                      base);
        }
        float *A = effective_weight(&m, &q, i), *B = effective_weight(&m2, &q2, i);
        int OC, C;
        float *W2 = mq_gpt_linear_weight(&m2, mq_qmodel_linear_id(&m.cfg, i), NULL, &OC, &C);
        cr_assert(bits_equal(A, B, (size_t)OC * C), "%s %s: dequantized weights differ", name,
                  base);
        cr_assert(bits_equal(A, W2, (size_t)OC * C), "%s %s: the model's FP32 copy differs", name,
                  base);
        free(A);
        free(B);
        if (q2.active[i] && q.ql[i].bias)
            cr_assert(bits_equal(q.ql[i].bias, q2.ql[i].bias, (size_t)OC));
    }
    /* every parameter that is not a Linear weight: embeddings (FP16-rounded), norms, biases */
    for (int p = 0; p < MQ_NUM_PARAMS; p++) {
        if (mq_gpt_param_is_matrix(p) && p != MQ_P_WTE && p != MQ_P_WPE) continue;
        cr_assert(bits_equal(((float **)&m.params)[p], ((float **)&m2.params)[p], m.param_sizes[p]),
                  "%s: parameter %s differs", name, mq_gpt_param_name(p));
    }
    /* the forward passes agree to the bit */
    size_t nl = (size_t)2 * RT_T * VOCAB;
    cr_assert_eq(mq_gpt_forward(&m, RT_TOKENS, NULL, 2, RT_T, &err), MQ_OK, "%s", err.msg);
    float *logits = malloc(nl * sizeof(float));
    memcpy(logits, m.acts.logits, nl * sizeof(float));
    cr_assert_eq(mq_gpt_forward(&m2, RT_TOKENS, NULL, 2, RT_T, &err), MQ_OK, "%s", err.msg);
    cr_assert(bits_equal(logits, m2.acts.logits, nl), "%s: logits differ", name);
    for (size_t k = 0; k < nl; k++)
        cr_assert(isfinite(logits[k]));

    free(logits);
    /* exporting the reloaded model writes the same bytes again */
    void *buf2;
    size_t len2;
    export_mem(&m2, &q2, NULL, &buf2, &len2);
    cr_assert(len2 == len && memcmp(buf, buf2, len) == 0, "%s: the second export differs", name);
    free(buf2);
    mq_gguf_free(g);
    free(buf);
    mq_qmodel_free(&q2);
    mq_gpt_free(&m2);
    mq_qmodel_free(&q);
    mq_gpt_free(&m);
}

Test(export, every_scheme_round_trips_exactly) {
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
    };
    for (size_t i = 0; i < sizeof SCHEMES / sizeof SCHEMES[0]; i++)
        round_trip(SCHEMES[i], 0);
}

Test(export, skip_lm_head_round_trips_with_an_f32_head) {
    static const char *const SCHEMES[] = {"fp32",     "fp16",    "int8_per_channel",
                                          "int4_g64", "nf4_g64", "int3_g32"};
    for (size_t i = 0; i < sizeof SCHEMES / sizeof SCHEMES[0]; i++)
        round_trip(SCHEMES[i], 1);
}

Test(export, files_keep_the_tokenizer_and_a_plain_checkpoint_reads_them) {
    char dir[] = "/tmp/mq_export_XXXXXX";
    cr_assert(mkdtemp(dir));
    char path[256], path16[256];
    snprintf(path, sizeof path, "%s/int4.gguf", dir);
    snprintf(path16, sizeof path16, "%s/fp16.gguf", dir);
    mq_tokenizer_t *tok = small_tokenizer(), *tok2 = NULL;
    mq_gpt_t m, m2;
    mq_qmodel_t q, q2;
    mq_error_t err = {0};
    random_model(&m, VOCAB, 32, 64, 2, 1, 21);
    quantize(&q, &m, "int4_g32", 0);
    cr_assert_eq(mq_qmodel_save(path, &m, &q, tok, &err), MQ_OK, "%s", err.msg);
    cr_assert_eq(mq_qmodel_load(path, &m2, &q2, &tok2, &err), MQ_OK, "%s", err.msg);
    cr_assert_eq(mq_tokenizer_n_vocab(tok2), VOCAB);
    int32_t *a, *b;
    size_t na, nb;
    const char *text = "the children walked to the store";
    cr_assert_eq(mq_tokenizer_encode(tok, text, strlen(text), 0, &a, &na, &err), MQ_OK);
    cr_assert_eq(mq_tokenizer_encode(tok2, text, strlen(text), 0, &b, &nb, &err), MQ_OK);
    cr_assert(na == nb && memcmp(a, b, na * sizeof *a) == 0);
    free(a);
    free(b);
    /* the plain checkpoint reader refuses Q4_0 with a message, and reads an fp16 export */
    mq_gpt_t m3;
    cr_assert_neq(mq_checkpoint_load(path, &m3, NULL, NULL, &err), MQ_OK);
    cr_assert(strstr(err.msg, "q4_0"), "%s", err.msg);
    mq_qmodel_free(&q);
    quantize(&q, &m, "fp16", 0);
    cr_assert_eq(mq_qmodel_save(path16, &m, &q, tok, &err), MQ_OK, "%s", err.msg);
    cr_assert_eq(mq_checkpoint_load(path16, &m3, NULL, NULL, &err), MQ_OK, "%s", err.msg);
    float *A = effective_weight(&m, &q, 0);
    cr_assert(bits_equal(A, m3.params.qkvw, m.param_sizes[MQ_P_QKVW]));
    free(A);
    mq_gpt_free(&m3);

    mq_tokenizer_free(tok);
    mq_tokenizer_free(tok2);
    mq_qmodel_free(&q2);
    mq_gpt_free(&m2);
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
                                                : (size_t)(rows * cols / 2);
            cr_assert_eq(t->ne[0], packed ? cols / 2 : cols, "%s", t->name);
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
            float *y = malloc(numel * sizeof(float)), *want = effective_weight(&m, &q, i);
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

Test(export, a_file_without_the_scheme_key_loads_as_a_plain_model) {
    /* as llama-quantize's output would: Q8_0 tensors, no miniquant.scheme */
    mq_gpt_t m, m2;
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
    cr_assert_eq(load_mem(buf, len, &m2, &q2, &err), MQ_OK, "%s", err.msg);
    cr_assert_str_eq(q2.scheme.name, "fp32");
    cr_assert_null(m2.linear_fn);
    for (int i = 0; i < q.n_linear; i++) {
        cr_assert_eq(q2.active[i], 0);
        float *A = effective_weight(&m, &q, i), *B = effective_weight(&m2, &q2, i);
        int OC, C;
        mq_gpt_linear_weight(&m, mq_qmodel_linear_id(&m.cfg, i), NULL, &OC, &C);
        cr_assert(bits_equal(A, B, (size_t)OC * C));
        free(A);
        free(B);
    }
    mq_model_bytes_t mb;
    mq_model_bytes(&m2, &q2, &mb); /* must not touch layers that are not there */
    cr_assert_eq(mb.bits_per_weight, 32.0);
    free(buf);
    mq_qmodel_free(&q2);
    mq_gpt_free(&m2);

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
    cr_assert_eq(load_mem(buf, len, &m2, &q2, &err), MQ_OK, "%s", err.msg);
    cr_assert_str_eq(q2.scheme.name, "fp32");
    cr_assert_null(m2.linear_fn);
    free(buf);
    mq_qmodel_free(&q2);
    mq_gpt_free(&m2);
    mq_qmodel_free(&q);
    mq_gpt_free(&m);
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
    mq_gpt_t m;
    mq_qmodel_t q;
    mq_error_t err = {0};
    int rc = load_mem(buf, len, &m, &q, &err);
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
            mq_gpt_t m;
            mq_qmodel_t q;
            mq_error_t err = {0};
            int rc = load_mem(buf, n, &m, &q, &err);
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
            mq_gpt_t m;
            mq_qmodel_t q;
            mq_error_t err = {0};
            int rc = load_mem(buf, len, &m, &q, &err);
            if (rc == MQ_OK) {
                mq_qmodel_free(&q);
                mq_gpt_free(&m);
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
    uint32_t i8 = MQ_GGML_TYPE_I8;
    memcpy(p + at, &i8, 4);
    expect_fail(buf, len, "scheme int8_per_channel stores it as q8_0");
    memcpy(p + at, &type, 4);

    mq_gpt_t m;
    mq_qmodel_t q;
    mq_error_t err = {0};
    cr_assert_eq(load_mem(buf, len, &m, &q, &err), MQ_OK, "%s", err.msg);
    mq_qmodel_free(&q);
    mq_gpt_free(&m);
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
    uint32_t i8 = MQ_GGML_TYPE_I8, f16 = MQ_GGML_F16;
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

Test(export, refuses_a_quantized_model_that_is_not_the_models) {
    mq_gpt_t m, other;
    mq_qmodel_t q;
    random_model(&m, 64, 16, 32, 2, 1, 71);
    random_model(&other, 64, 16, 64, 2, 1, 71);
    quantize(&q, &m, "int4_g32", 0);
    mq_gguf_t *g = mq_gguf_new();
    mq_error_t err = {0};
    cr_assert_eq(mq_qmodel_to_gguf(&other, &q, NULL, g, &err), MQ_ERR_ARG);
    cr_assert(strstr(err.msg, "export:"), "%s", err.msg);
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
    mq_gpt_t m, m2;
    mq_qmodel_t q, q2;
    mq_error_t err = {0};
    random_model(&m, VOCAB, 32, 64, 2, 1, 81);
    cr_assert_eq(mq_checkpoint_save(model, &m, tok, NULL, &err), MQ_OK, "%s", err.msg);

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

    cr_assert_eq(mq_qmodel_load(out, &m2, &q2, NULL, &err), MQ_OK, "%s", err.msg);
    cr_assert_str_eq(q2.scheme.name, "int4_g32");
    cr_assert_eq(q2.skip_lm_head, 1);
    quantize(&q, &m, "int4_g32", 1);
    for (int i = 0; i < q.n_linear; i++) {
        float *A = effective_weight(&m, &q, i), *B = effective_weight(&m2, &q2, i);
        int OC, C;
        mq_gpt_linear_weight(&m, mq_qmodel_linear_id(&m.cfg, i), NULL, &OC, &C);
        cr_assert(bits_equal(A, B, (size_t)OC * C));
        free(A);
        free(B);
    }
    mq_tokenizer_free(tok);
    mq_qmodel_free(&q2);
    mq_gpt_free(&m2);
    mq_qmodel_free(&q);
    mq_gpt_free(&m);
    unlink(model);
    unlink(out);
    rmdir(dir);
}
