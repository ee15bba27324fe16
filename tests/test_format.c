/* Tests of the format table (format.h): the rows are complete and a row missing an entry is
 * refused; hand-worked Q8_0, Q4_0 and packed rows have exactly the bytes ggml's block_q8_0 /
 * block_q4_0 and miniquant's packed layout prescribe (export.h); codes -> bytes -> codes is the
 * identity for every family with a grid in every format it takes; and the NormalFloat-3 family.
 *
 * The expected bytes are written out by hand from the layouts:
 *   block_q8_0 { ggml_half d; int8_t qs[32]; }        value = qs[j] * d
 *   block_q4_0 { ggml_half d; uint8_t qs[16]; }       weight j < 16 in the low nibble of qs[j],
 *                                                     weight j + 16 in its high nibble,
 *                                                     value = (nibble - 8) * d
 *   packed: weight c is the b-bit field at bits [c b, c b + b) of the row, counted from the least
 *   significant bit of its first byte; field = code + 2^(b-1) (int), the codebook index (nf);
 *   the bits after the last field are 0; the FP16 scales lie apart.
 * Halves are little-endian: 0x3c01 (1 + 2^-10) is the bytes 01 3c. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "miniquant/format.h"
#include "miniquant/gguf.h"
#include "miniquant/kernels.h"
#include "miniquant/quant.h"
#include "miniquant/rng.h"
#include "qhelpers.h"

/* ---------------------------------------------------------------------------------------------
 * helpers */

static void assert_bytes(const uint8_t *got, const uint8_t *want, size_t n, const char *what) {
    for (size_t i = 0; i < n; i++)
        cr_assert_eq(got[i], want[i], "%s: byte %zu is 0x%02x, want 0x%02x", what, i, got[i],
                     want[i]);
}

/* The scale of weight (r, c) in the layout mq_qweight_from_codes takes. */
static size_t scale_index(const mq_scheme_t *s, int cols, int r, int c) {
    switch (s->gran) {
    case MQ_QG_TENSOR: return 0;
    case MQ_QG_CHANNEL: return (size_t)r;
    default: return (size_t)r * (size_t)(cols / s->group) + (size_t)(c / s->group);
    }
}

/* ---------------------------------------------------------------------------------------------
 * the rows */

Test(table, the_real_table_passes_its_check) {
    mq_error_t err = {0};
    cr_assert_eq(mq_formats_check(&err), MQ_OK, "%s", err.msg);
    int n = 0;
    for (int i = 0; MQ_FORMATS[i]; i++, n++) {
        cr_assert_eq(mq_format_check_row(MQ_FORMATS[i], &err), MQ_OK, "%s", err.msg);
        cr_assert_eq(mq_format_by_name(MQ_FORMATS[i]->name), MQ_FORMATS[i]);
        cr_assert_eq(mq_format_of_ggml_type(MQ_FORMATS[i]->ggml_type), MQ_FORMATS[i]);
    }
    cr_assert_eq(n, 16);
    for (int i = 0; MQ_FAMILIES[i]; i++)
        cr_assert_eq(mq_family_check_row(MQ_FAMILIES[i], &err), MQ_OK, "%s", err.msg);
    cr_assert_null(mq_format_by_name("q8_1"));
    cr_assert_null(mq_format_by_name(NULL));
    cr_assert_null(mq_format_of_ggml_type(MQ_GGML_Q8_1));
    cr_assert_null(mq_format_of_ggml_type(MQ_GGML_IQ2_XXS));
    cr_assert_str_eq(mq_formats_read_list(),
                     "f32, f16, q8_0, q4_0, bf16, q4_1, q5_0, q5_1, q2_K, q3_K, q4_K, q5_K, q6_K, "
                     "iq4_nl, iq4_xs");
}

/* ggml's types and blocks, as ggml defines them. */
Test(table, rows_carry_ggml_types_and_blocks) {
    static const struct {
        const char *name;
        int ggml_type, block;
        size_t block_bytes;
        int side_scales;
    } want[] = {
        {"f32", 0, 0, 0, 0},        {"f16", 1, 0, 0, 0},      {"q8_0", 8, 32, 34, 0},
        {"q4_0", 2, 32, 18, 0},     {"packed", 24, 0, 0, 1},  {"bf16", 30, 0, 0, 0},
        {"q4_1", 3, 32, 20, 0},     {"q5_0", 6, 32, 22, 0},   {"q5_1", 7, 32, 24, 0},
        {"q2_k", 10, 256, 84, 0},   {"q3_k", 11, 256, 110, 0}, {"q4_k", 12, 256, 144, 0},
        {"q5_k", 13, 256, 176, 0},  {"q6_k", 14, 256, 210, 0}, {"iq4_nl", 20, 32, 18, 0},
        {"iq4_xs", 23, 256, 136, 0},
    };
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        const mq_format_t *f = format(want[i].name);
        cr_assert_eq(f->ggml_type, want[i].ggml_type, "%s", want[i].name);
        cr_assert_eq(f->block, want[i].block, "%s", want[i].name);
        cr_assert_eq(f->block_bytes, want[i].block_bytes, "%s", want[i].name);
        cr_assert_eq(f->side_scales, want[i].side_scales, "%s", want[i].name);
    }
    cr_assert_eq(MQ_GGML_Q8_0, 8);
    cr_assert_eq(MQ_GGML_Q4_0, 2);
    cr_assert_eq(MQ_GGML_I8, 24);
}

/* A copy of row f with one entry taken out is refused, naming the row. */
static void assert_refused(const mq_format_t *copy, const char *entry) {
    mq_error_t err = {0};
    cr_assert_eq(mq_format_check_row(copy, &err), MQ_ERR_UNSUPPORTED, "%s without %s accepted",
                 copy->name, entry);
    char want[64];
    snprintf(want, sizeof want, "format table: %s has no", copy->name);
    cr_assert(strstr(err.msg, want), "%s without %s: %s", copy->name, entry, err.msg);
}

/* A row miniquant only reads needs its layout and its dequantization, and no writer's entry
 * without fits; a written row needs everything. */
Test(table, a_read_row_missing_an_entry_is_refused) {
    int n = 0;
    for (int i = 0; MQ_FORMATS[i]; i++) {
        const mq_format_t *f = MQ_FORMATS[i];
        if (mq_format_writes(f)) continue;
        n++;
        mq_format_t c = *f;
        cr_assert_eq(mq_format_check_row(&c, NULL), MQ_OK, "an unchanged copy of %s", f->name);
        c.dequantize_row = NULL;
        assert_refused(&c, "dequantize_row");
        c = *f;
        c.about = NULL;
        assert_refused(&c, "about");
        c = *f;
        c.block_bytes += 1;
        assert_refused(&c, "block bytes matching the GGUF type");
        c = *f;
        c.block = f->block ? f->block / 2 : 32;
        assert_refused(&c, "a block matching the GGUF type");
        c = *f;
        c.encode_row = format("q4_0")->encode_row; /* half a writer */
        assert_refused(&c, "encode_row without fits");
    }
    cr_assert_eq(n, 3);
}

Test(table, a_format_row_missing_an_entry_is_refused) {
    for (int i = 0; MQ_FORMATS[i]; i++) {
        const mq_format_t *f = MQ_FORMATS[i];
        if (!mq_format_writes(f)) continue;
        mq_format_t c = *f;
        cr_assert_eq(mq_format_check_row(&c, NULL), MQ_OK, "an unchanged copy of %s", f->name);
        c.dequantize_row = NULL;
        assert_refused(&c, "dequantize_row");
        c = *f;
        c.encode_row = NULL;
        assert_refused(&c, "encode_row");
        c = *f;
        c.row_bytes = NULL;
        assert_refused(&c, "row_bytes");
        c = *f;
        c.fits = NULL;
        assert_refused(&c, "fits");
        c = *f;
        c.values_row = NULL;
        assert_refused(&c, "values_row");
        c = *f;
        c.block_scale = NULL;
        assert_refused(&c, "block_scale");
        c = *f;
        c.kernels[MQ_ISA_SCALAR].dot = NULL;
        assert_refused(&c, "the scalar dot kernel");
        c = *f;
        c.kernels[MQ_ISA_SCALAR].gemm = NULL;
        assert_refused(&c, "the scalar gemm kernel");
        /* a decode kernel for every instruction set (F32 hands the forward to OpenBLAS) */
        for (int k = 0; k < MQ_FORMAT_ISAS; k++) {
            c = *f;
            c.kernels[k].dot = NULL;
            c.kernels[k].forward = NULL;
            assert_refused(&c, "a decode kernel");
        }
        if (f->block) {
            c = *f;
            c.block_bytes = 0;
            assert_refused(&c, "block_bytes");
        }
    }
}

static void assert_family_refused(const mq_family_t *copy, const char *entry) {
    mq_error_t err = {0};
    cr_assert_eq(mq_family_check_row(copy, &err), MQ_ERR_UNSUPPORTED, "%s without %s accepted",
                 copy->prefix, entry);
    char want[64];
    snprintf(want, sizeof want, "format table: %s has no", copy->prefix);
    cr_assert(strstr(err.msg, want), "%s without %s: %s", copy->prefix, entry, err.msg);
}

Test(table, a_family_row_missing_an_entry_is_refused) {
    static const char *const unknown[] = {"q8_1", NULL}, *const read_only[] = {"iq4_xs", NULL};
    static const char *const values_only[] = {"f32", NULL};
    for (int i = 0; MQ_FAMILIES[i]; i++) {
        const mq_family_t *f = MQ_FAMILIES[i];
        mq_family_t c = *f;
        cr_assert_eq(mq_family_check_row(&c, NULL), MQ_OK, "an unchanged copy of %s", f->prefix);
        c.formats = NULL;
        assert_family_refused(&c, "formats");
        c = *f;
        c.formats = unknown;
        assert_family_refused(&c, "a known format");
        c = *f;
        c.formats = read_only;
        assert_family_refused(&c, "a format miniquant writes");
        if (!f->code) {
            /* half a grid is no grid */
            const mq_family_t *grid = scheme("int4_g32").family;
            c = *f;
            c.scale = grid->scale;
            assert_family_refused(&c, "the rest of a grid");
            continue;
        }
        c = *f;
        c.code = NULL;
        assert_family_refused(&c, "code");
        c = *f;
        c.value = NULL;
        assert_family_refused(&c, "value");
        c = *f;
        c.scale = NULL;
        assert_family_refused(&c, "scale");
        c = *f;
        c.code_max = NULL;
        assert_family_refused(&c, "code_max");
        c = *f;
        c.grans = 0;
        assert_family_refused(&c, "granularities");
        /* a grid stored where no codes can be read back */
        c = *f;
        c.formats = values_only;
        assert_family_refused(&c, "a decoder");
    }
}

/* ---------------------------------------------------------------------------------------------
 * hand-worked rows */

Test(bytes, a_q8_0_block_is_ggmls_block_q8_0) {
    /* clang-format off */
    static const int8_t codes[32] = {
        -127, 127, 0, 1, -1, 2, -2, 3, -3, 64, -64, 100, -100,
        5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15,
        -16, -17, -18, -19, -20, -21, -22, -23};
    static const uint8_t want[34] = {
        0x01, 0x3c,                                                             /* d = 1 + 2^-10 */
        0x81, 0x7f, 0x00, 0x01, 0xff, 0x02, 0xfe, 0x03, 0xfd, 0x40, 0xc0, 0x64, 0x9c,   /* qs */
        0x05, 0x06, 0x07, 0x08, 0x09, 0x0a, 0x0b, 0x0c, 0x0d, 0x0e, 0x0f,
        0xf0, 0xef, 0xee, 0xed, 0xec, 0xeb, 0xea, 0xe9};
    /* clang-format on */
    const mq_fp16_t d = 0x3c01;
    cr_assert_eq(mq_fp16_to_fp32(d), 1.0009765625f);
    mq_scheme_t s = scheme("int8_per_channel");
    const mq_format_t *f = format("q8_0");
    cr_assert_eq(mq_format_for(&s, 32, NULL), f);
    cr_assert_eq(f->row_bytes(&s, 32), 34);
    cr_assert_eq(f->ne0(&s, 32), 32);

    uint8_t got[34];
    memset(got, 0xaa, sizeof got);
    mq_qrow_t row = {NULL, codes, &d, 32, 32, NULL};
    f->encode_row(&row, &s, got);
    assert_bytes(got, want, 34, "q8_0");

    float y[32];
    f->dequantize_row(want, NULL, &s, 32, 32, y);
    for (int j = 0; j < 32; j++)
        cr_assert_eq(y[j], (float)codes[j] * 1.0009765625f, "weight %d: %g", j, y[j]);
    int8_t back[32];
    mq_fp16_t sc = 0;
    mq_row_fault_t fault;
    cr_assert_eq(f->decode_row(want, NULL, &s, 32, 32, back, &sc, &fault), 0, "%s", fault.what);
    cr_assert_arr_eq(back, codes, 32);
    cr_assert_eq(sc, d);

    /* the same row as a 1 x 32 weight: its data is the block */
    mq_qweight_t q;
    mq_error_t err = {0};
    cr_assert_eq(mq_qweight_from_codes(&q, &s, 1, 32, codes, &d, &err), MQ_OK, "%s", err.msg);
    cr_assert_eq(q.format, f);
    cr_assert_null(q.scales);
    assert_bytes(q.data, want, 34, "q8_0 weight");
    mq_qweight_free(&q);
}

Test(bytes, q4_0_blocks_are_ggmls_block_q4_0) {
    /* two blocks of int4_g32, each with its own scale */
    /* clang-format off */
    static const int8_t codes[64] = {
        /* block 0: (j % 15) - 7 */
        -7, -6, -5, -4, -3, -2, -1, 0, 1, 2, 3, 4, 5, 6, 7, -7,
        -6, -5, -4, -3, -2, -1, 0, 1, 2, 3, 4, 5, 6, 7, -7, -6,
        /* block 1 */
        7, -7, 0, 1, -1, 2, -2, 3, -3, 4, -4, 5, -5, 6, -6, 0,
        -7, 7, 6, 5, 4, 3, 2, 1, 0, -1, -2, -3, -4, -5, -6, -7};
    /* per block: d, then qs[j] = (c[j] + 8) | (c[j + 16] + 8) << 4 */
    static const uint8_t want[36] = {
        0x01, 0x3c,                                                     /* d = 1 + 2^-10 */
        0x21, 0x32, 0x43, 0x54, 0x65, 0x76, 0x87, 0x98,
        0xa9, 0xba, 0xcb, 0xdc, 0xed, 0xfe, 0x1f, 0x21,
        0x55, 0x35,                                                     /* d = 0.333251953125 */
        0x1f, 0xf1, 0xe8, 0xd9, 0xc7, 0xba, 0xa6, 0x9b,
        0x85, 0x7c, 0x64, 0x5d, 0x43, 0x3e, 0x22, 0x18};
    /* clang-format on */
    const mq_fp16_t d[2] = {0x3c01, 0x3555};
    const float dv[2] = {1.0009765625f, 0.333251953125f};
    cr_assert_eq(mq_fp16_to_fp32(d[1]), dv[1]);
    mq_scheme_t s = scheme("int4_g32");
    const mq_format_t *f = format("q4_0");
    cr_assert_eq(mq_format_for(&s, 64, NULL), f);
    cr_assert_eq(f->row_bytes(&s, 64), 36);

    uint8_t got[36];
    memset(got, 0xaa, sizeof got);
    mq_qrow_t row = {NULL, codes, d, 64, 32, NULL};
    f->encode_row(&row, &s, got);
    assert_bytes(got, want, 36, "q4_0");

    float y[64];
    f->dequantize_row(want, NULL, &s, 64, 32, y);
    for (int j = 0; j < 64; j++)
        cr_assert_eq(y[j], (float)codes[j] * dv[j / 32], "weight %d: %g", j, y[j]);
    int8_t back[64];
    mq_fp16_t sc[2] = {0, 0};
    mq_row_fault_t fault;
    cr_assert_eq(f->decode_row(want, NULL, &s, 64, 32, back, sc, &fault), 0, "%s", fault.what);
    cr_assert_arr_eq(back, codes, 64);
    cr_assert(sc[0] == d[0] && sc[1] == d[1]);

    /* a per-channel row of two blocks: both carry the row's scale */
    mq_scheme_t pc = scheme("int4_per_channel");
    mq_qrow_t row1 = {NULL, codes, d + 1, 64, 64, NULL};
    f->encode_row(&row1, &pc, got);
    cr_assert(got[0] == 0x55 && got[1] == 0x35 && got[18] == 0x55 && got[19] == 0x35);
    assert_bytes(got + 2, want + 2, 16, "q4_0 per channel, block 0");
    assert_bytes(got + 20, want + 20, 16, "q4_0 per channel, block 1");
}

Test(bytes, packed_int3_fields_are_lsb_first) {
    /* fields = code + 4: 1 2 3 4 5 6 7 4 7 1, 3 bits each from bit 0: 30 bits in 4 bytes */
    static const int8_t codes[10] = {-3, -2, -1, 0, 1, 2, 3, 0, 3, -3};
    static const uint8_t want[4] = {0xd1, 0x58, 0x9f, 0x0f};
    const mq_fp16_t d = 0x3800; /* 0.5 */
    mq_scheme_t s = scheme("int3_per_channel");
    const mq_format_t *f = format("packed");
    cr_assert_eq(mq_format_for(&s, 10, NULL), f);
    cr_assert_eq(f->row_bytes(&s, 10), 4);
    cr_assert_eq(f->ne0(&s, 10), 4);

    uint8_t got[4];
    memset(got, 0xaa, sizeof got);
    mq_qrow_t row = {NULL, codes, &d, 10, 10, NULL};
    f->encode_row(&row, &s, got);
    assert_bytes(got, want, 4, "int3");
    float y[10];
    f->dequantize_row(want, &d, &s, 10, 10, y);
    for (int j = 0; j < 10; j++)
        cr_assert_eq(y[j], 0.5f * (float)codes[j], "weight %d: %g", j, y[j]);
    int8_t back[10];
    mq_fp16_t sc = 0;
    mq_row_fault_t fault;
    cr_assert_eq(f->decode_row(want, &d, &s, 10, 10, back, &sc, &fault), 0, "%s", fault.what);
    cr_assert_arr_eq(back, codes, 10);
    cr_assert_eq(sc, d);

    /* two rows as a weight: the data is the rows, the scales lie apart */
    int8_t codes2[20];
    memcpy(codes2, codes, 10);
    memcpy(codes2 + 10, codes, 10);
    mq_fp16_t d2[2] = {0x3800, 0x3c00};
    mq_qweight_t q;
    mq_error_t err = {0};
    cr_assert_eq(mq_qweight_from_codes(&q, &s, 2, 10, codes2, d2, &err), MQ_OK, "%s", err.msg);
    cr_assert_eq(q.row_bytes, 4);
    assert_bytes(q.data, want, 4, "int3 weight row 0");
    assert_bytes(q.data + 4, want, 4, "int3 weight row 1");
    cr_assert(q.scales && q.n_scales == 2 && q.scales[0] == d2[0] && q.scales[1] == d2[1]);
    cr_assert_eq(mq_qweight_stored_bytes(&q), 2 * 4 + 2 * 2);
    mq_qweight_free(&q);
}

Test(bytes, packed_nf3_fields_are_codebook_indices) {
    /* fields = indices 7 3 0 5 1 6 2 4 3 7, two groups of 5 */
    static const int8_t codes[10] = {7, 3, 0, 5, 1, 6, 2, 4, 3, 7};
    static const uint8_t want[4] = {0x1f, 0x1a, 0x8b, 0x3b};
    const mq_fp16_t d[2] = {0x3c00, 0x4000}; /* 1, 2 */
    mq_scheme_t s = scheme("nf3_g5");
    const mq_format_t *f = format("packed");
    cr_assert_eq(mq_format_for(&s, 10, NULL), f);
    uint8_t got[4];
    memset(got, 0xaa, sizeof got);
    mq_qrow_t row = {NULL, codes, d, 10, 5, NULL};
    f->encode_row(&row, &s, got);
    assert_bytes(got, want, 4, "nf3");
    const float *cb = s.family->codebook;
    float y[10];
    f->dequantize_row(want, d, &s, 10, 5, y);
    for (int j = 0; j < 10; j++)
        cr_assert_eq(y[j], cb[codes[j]] * (j < 5 ? 1.0f : 2.0f), "weight %d: %g", j, y[j]);
    int8_t back[10];
    mq_fp16_t sc[2];
    mq_row_fault_t fault;
    cr_assert_eq(f->decode_row(want, d, &s, 10, 5, back, sc, &fault), 0, "%s", fault.what);
    cr_assert_arr_eq(back, codes, 10);
}

/* Bytes no quantizer of the scheme writes are refused by decode_row, with the column. */
Test(bytes, decode_row_refuses_what_no_quantizer_writes) {
    mq_row_fault_t fault;
    int8_t codes[64];
    mq_fp16_t sc[2];
    const mq_fp16_t one = 0x3c00, neg = 0xbc00;

    /* packed int3: field 0 is not a code; padding bits after the last field must be 0 */
    mq_scheme_t s3 = scheme("int3_per_channel");
    const mq_format_t *p = format("packed");
    uint8_t r3[4] = {0xd1, 0x58, 0x9f, 0x0f};
    r3[1] &= (uint8_t)~0x0e; /* field 3 (bits 9..11) = 0 */
    cr_assert_eq(p->decode_row(r3, &one, &s3, 10, 10, codes, sc, &fault), -1);
    cr_assert_eq(fault.col, 3);
    uint8_t pad[4] = {0xd1, 0x58, 0x9f, 0x4f};
    cr_assert_eq(p->decode_row(pad, &one, &s3, 10, 10, codes, sc, &fault), -1);
    cr_assert(strstr(fault.what, "padding"), "%s", fault.what);
    uint8_t ok[4] = {0xd1, 0x58, 0x9f, 0x0f};
    cr_assert_eq(p->decode_row(ok, &neg, &s3, 10, 10, codes, sc, &fault), -1, "negative scale");

    /* q8_0: -128 is off the grid [-127, 127] */
    mq_scheme_t s8 = scheme("int8_per_channel");
    uint8_t b8[34] = {0x00, 0x3c};
    b8[2 + 7] = 0x80;
    cr_assert_eq(format("q8_0")->decode_row(b8, NULL, &s8, 32, 32, codes, sc, &fault), -1);
    cr_assert_eq(fault.col, 7);
    cr_assert(strstr(fault.what, "-128"), "%s", fault.what);

    /* q4_0: nibble 0 (code -8) is off the int4 grid; two blocks of one row disagree on its
     * scale */
    mq_scheme_t s4 = scheme("int4_per_channel");
    uint8_t b4[36];
    memset(b4, 0x88, sizeof b4);
    b4[0] = b4[18] = 0x00;
    b4[1] = b4[19] = 0x3c;
    cr_assert_eq(format("q4_0")->decode_row(b4, NULL, &s4, 64, 64, codes, sc, &fault), 0, "%s",
                 fault.what);
    b4[19] = 0x40;
    cr_assert_eq(format("q4_0")->decode_row(b4, NULL, &s4, 64, 64, codes, sc, &fault), -1);
    cr_assert_eq(fault.col, 32);
    b4[19] = 0x3c;
    b4[2 + 4] = 0x80; /* weight 4 of block 0: nibble 0 */
    cr_assert_eq(format("q4_0")->decode_row(b4, NULL, &s4, 64, 64, codes, sc, &fault), -1);
    cr_assert_eq(fault.col, 4);
}

/* ---------------------------------------------------------------------------------------------
 * codes -> bytes -> codes, every family with a grid, every format it takes */

/* q = RTN of a random weight; its codes and scales read back and stored again give the same
 * bytes; every dequantized weight is the family's value(code, scale), and what the scalar
 * reference sums (values_row times block_scale) is that value too. */
static void roundtrip(const mq_scheme_t *s, int rows, int cols, uint64_t seed) {
    const mq_family_t *fam = s->family;
    float *W = randn_sd(seed, (size_t)rows * cols, 1.0f);
    mq_qweight_t q, q2;
    mq_error_t err = {0};
    cr_assert_eq(mq_qweight_quantize(&q, s, W, rows, cols, &err), MQ_OK, "%s: %s", s->name,
                 err.msg);
    const mq_format_t *f = q.format;
    cr_assert_eq(q.row_bytes, f->row_bytes(s, cols));
    cr_assert_eq(mq_qweight_stored_bytes(&q),
                 (size_t)rows * q.row_bytes + (f->side_scales ? 2 * q.n_scales : 0));
    cr_assert_eq(q.n_scales, mq_scheme_n_scales(s, rows, cols));
    cr_assert_eq(q.scales != NULL, f->side_scales != 0);

    int8_t *codes = malloc((size_t)rows * cols);
    mq_fp16_t *scales = malloc(q.n_scales * sizeof *scales);
    float *D = malloc((size_t)rows * cols * sizeof *D), *v = malloc((size_t)cols * sizeof *v);
    cr_assert(codes && scales && D && v);
    cr_assert_eq(mq_qweight_to_codes(&q, codes, scales, &err), MQ_OK, "%s: %s", s->name, err.msg);
    cr_assert_eq(mq_qweight_from_codes(&q2, s, rows, cols, codes, scales, &err), MQ_OK, "%s: %s",
                 s->name, err.msg);
    cr_assert_eq(q2.format, f);
    cr_assert_eq(memcmp(q.data, q2.data, (size_t)rows * q.row_bytes), 0, "%s %dx%d: bytes differ",
                 s->name, rows, cols);
    if (q.scales)
        cr_assert_eq(memcmp(q.scales, q2.scales, q.n_scales * 2), 0, "%s: scales differ", s->name);

    int lo = fam->code_min(s->bits), hi = fam->code_max(s->bits);
    mq_qweight_dequantize(&q, D);
    for (int r = 0; r < rows; r++) {
        const uint8_t *row = q.data + (size_t)r * q.row_bytes;
        f->values_row(row, s, cols, v);
        for (int c = 0; c < cols; c++) {
            size_t i = (size_t)r * cols + c;
            float sc = mq_fp16_to_fp32(scales[scale_index(s, cols, r, c)]);
            cr_assert(codes[i] >= lo && codes[i] <= hi, "%s: code %d", s->name, codes[i]);
            cr_assert_eq(D[i], fam->value(codes[i], sc, s->bits), "%s (%d, %d): %g", s->name, r, c,
                         D[i]);
            float bs = f->block_scale(row, mq_qweight_row_scales(&q, r), q.group, c / q.group);
            cr_assert_eq(bs, sc, "%s (%d, %d): block scale", s->name, r, c);
            cr_assert_eq(v[c] * bs, D[i], "%s (%d, %d): values_row", s->name, r, c);
        }
    }
    free(codes);
    free(scales);
    free(D);
    free(v);
    free(W);
    mq_qweight_free(&q);
    mq_qweight_free(&q2);
}

Test(roundtrip, codes_bytes_codes_for_every_family_and_format) {
    static const struct {
        mq_qgran_t gran;
        int group;
    } grans[] = {{MQ_QG_TENSOR, 0},
                 {MQ_QG_CHANNEL, 0},
                 {MQ_QG_GROUP, 8},
                 {MQ_QG_GROUP, 32},
                 {MQ_QG_GROUP, 64}};
    static const int COLS[] = {64, 96, 40};
    int tried = 0;
    for (int i = 0; MQ_FAMILIES[i]; i++) {
        const mq_family_t *fam = MQ_FAMILIES[i];
        if (!fam->code) continue;
        int covered[8] = {0}, n_formats = 0;
        while (fam->formats[n_formats])
            n_formats++;
        cr_assert_leq(n_formats, 8);
        for (int b = fam->min_bits; b <= fam->max_bits; b++)
            for (int g = 0; g < 5; g++) {
                if (!(fam->grans & (1u << grans[g].gran))) continue;
                for (int k = 0; k < 3; k++) {
                    int cols = COLS[k];
                    if (grans[g].group && cols % grans[g].group) continue;
                    char name[32], bits[4] = "";
                    if (fam->min_bits != fam->max_bits) snprintf(bits, sizeof bits, "%d", b);
                    if (grans[g].gran == MQ_QG_GROUP)
                        snprintf(name, sizeof name, "%s%s_g%d", fam->prefix, bits, grans[g].group);
                    else
                        snprintf(name, sizeof name, "%s%s_%s", fam->prefix, bits,
                                 grans[g].gran == MQ_QG_TENSOR ? "per_tensor" : "per_channel");
                    mq_scheme_t s = scheme(name);
                    mq_error_t err = {0};
                    const mq_format_t *f = mq_format_for(&s, cols, &err);
                    cr_assert(f, "%s with rows of %d: %s", name, cols, err.msg);
                    int j = 0;
                    while (j < n_formats && strcmp(fam->formats[j], f->name))
                        j++;
                    cr_assert_lt(j, n_formats, "%s is stored as %s, not one of its formats", name,
                                 f->name);
                    covered[j]++;
                    roundtrip(&s, 5, cols, 1000 + (uint64_t)tried);
                    tried++;
                }
            }
        for (int j = 0; j < n_formats; j++)
            cr_assert_gt(covered[j], 0, "%s: no scheme was stored as %s", fam->prefix,
                         fam->formats[j]);
    }
    /* int: 7 widths x (3 + 3 + 3 + 2 + 1) shapes; nf4 and nf3: groups only, 3 + 2 + 1 */
    cr_assert_eq(tried, 7 * 12 + 6 + 6);
}

/* A weight without a grid holds no codes. */
Test(roundtrip, values_formats_hold_no_codes) {
    float W[4 * 8];
    for (int i = 0; i < 32; i++)
        W[i] = 0.1f * (float)i;
    static const char *names[] = {"fp32", "fp16"};
    for (int k = 0; k < 2; k++) {
        mq_scheme_t s = scheme(names[k]);
        mq_qweight_t q;
        cr_assert_eq(mq_qweight_quantize(&q, &s, W, 4, 8, NULL), MQ_OK);
        cr_assert_null(q.format->decode_row, "%s", names[k]);
        int8_t codes[32] = {0};
        mq_fp16_t sc[1] = {0};
        mq_error_t err = {0};
        cr_assert_eq(mq_qweight_to_codes(&q, codes, sc, &err), MQ_ERR_ARG, "%s", names[k]);
        mq_qweight_free(&q);
        mq_qweight_t q2;
        cr_assert_eq(mq_qweight_from_codes(&q2, &s, 4, 8, codes, sc, &err), MQ_ERR_ARG);
        cr_assert_null(q2.data);
    }
}

/* ---------------------------------------------------------------------------------------------
 * NormalFloat-3 */

Test(nf3, parses_to_its_family) {
    mq_scheme_t s = scheme("nf3_g64");
    cr_assert_str_eq(s.name, "nf3_g64");
    cr_assert_str_eq(s.family->prefix, "nf3");
    cr_assert_eq(s.bits, 3);
    cr_assert_eq(s.gran, MQ_QG_GROUP);
    cr_assert_eq(s.group, 64);
    cr_assert_eq(s.gptq, 0);
    cr_assert(mq_scheme_has_grid(&s));
    cr_assert_not(mq_scheme_is_identity(&s));
    cr_assert_str_eq(mq_format_for(&s, 128, NULL)->name, "packed");
    cr_assert_eq(mq_format_for(&s, 128, NULL)->row_bytes(&s, 128), 48);
    cr_assert(strstr(mq_scheme_grammar(), "nf3"), "%s", mq_scheme_grammar());
    cr_assert(strstr(mq_scheme_grammar(), s.family->grammar));

    static const char *const bad[] = {"nf3_per_channel", "nf3_per_tensor", "nf3_g1", "nf3"};
    for (int i = 0; i < 4; i++) {
        mq_error_t err = {0};
        cr_assert_eq(mq_scheme_parse(bad[i], NULL, &err), MQ_ERR_ARG, "%s accepted", bad[i]);
        cr_assert(strstr(err.msg, bad[i]) && strstr(err.msg, mq_scheme_grammar()), "%s", err.msg);
    }
}

Test(nf3, codebook_grid_and_codes) {
    const mq_family_t *f = scheme("nf3_g64").family;
    const float *cb = f->codebook;
    cr_assert(cb);
    cr_assert_eq(f->code_min(3), 0);
    cr_assert_eq(f->code_max(3), 7);
    cr_assert_eq(f->code_zero, 3);
    cr_assert_eq(cb[0], -1.0f);
    cr_assert_eq(cb[3], 0.0f);
    cr_assert_eq(cb[7], 1.0f);
    for (int i = 0; i < 7; i++)
        cr_assert_lt(cb[i], cb[i + 1], "not ascending at %d", i);
    /* QLoRA's construction with 3 bits: Phi^-1 of 4 (positive) and 3 (negative) evenly spaced
     * probabilities from 0.9677083 (bitsandbytes' offset) down to 0.5, over the largest; worked
     * out apart from the library */
    static const double want[8] = {-1.0,       -0.47862916, -0.21714182, 0.0,
                                   0.16093017, 0.33791519,  0.56261697,  1.0};
    for (int i = 0; i < 8; i++)
        cr_assert_float_eq(cb[i], want[i], 2e-7, "NF3[%d] = %.9g", i, cb[i]);
    /* every other positive probability of NF4's 8 is one of NF3's 4: the same values */
    for (int i = 4; i < 8; i++)
        cr_assert_float_eq(cb[i], MQ_NF4_CODEBOOK[2 * i + 1], 1e-7, "NF3[%d]", i);
    for (int i = 0; i < 8; i++) {
        cr_assert(cb[i] >= -1.0f && cb[i] <= 1.0f);
        cr_assert_eq(f->code(cb[i], 1.0f, 3), i);
        cr_assert_eq(f->code(0.5f * cb[i], 0.5f, 3), i);
        cr_assert_eq(f->value((int8_t)i, 2.0f, 3), 2.0f * cb[i]);
    }
    /* 3 negative and 4 positive values around an exact zero, as NF4 has 7 and 8 */
    for (float sc = 0.25f; sc < 100.0f; sc *= 3.0f)
        cr_assert_eq(f->value(3, sc, 3), 0.0f);
    /* the scale is the block's absmax; an exact midpoint goes to the lower value */
    cr_assert_eq(f->scale(3.0f, 3), mq_fp32_to_fp16(3.0f));
    cr_assert_eq(f->scale(0.0f, 3), 0);
    float mid = 0.5f * (cb[3] + cb[4]);
    cr_assert_eq(f->code(mid, 1.0f, 3), 3);
    cr_assert_eq(f->code(nextafterf(mid, 1.0f), 1.0f, 3), 4);
    cr_assert_eq(f->code(5.0f, 1.0f, 3), 7);
    cr_assert_eq(f->code(-5.0f, 1.0f, 3), 0);
    cr_assert_eq(f->code(1.0f, 0.0f, 3), 3);
    cr_assert_eq(f->code(NAN, 1.0f, 3), 3);

    /* a quantized weight's codes are indices 0..7, and use all eight */
    mq_scheme_t s = scheme("nf3_g64");
    float *W = randn_sd(77, 16 * 128, 1.0f);
    mq_qweight_t q;
    cr_assert_eq(mq_qweight_quantize(&q, &s, W, 16, 128, NULL), MQ_OK);
    int8_t *codes = malloc(16 * 128);
    mq_fp16_t sc[32];
    cr_assert(codes);
    cr_assert_eq(mq_qweight_to_codes(&q, codes, sc, NULL), MQ_OK);
    int seen[8] = {0};
    for (int i = 0; i < 16 * 128; i++) {
        cr_assert(codes[i] >= 0 && codes[i] <= 7, "code %d", codes[i]);
        seen[codes[i]]++;
    }
    for (int i = 0; i < 8; i++)
        cr_assert_gt(seen[i], 0, "code %d never used", i);
    /* the largest weight of each group is its scale: code 0 or 7 */
    for (int g = 0; g < 32; g++) {
        int ends = 0;
        for (int i = 64 * g; i < 64 * g + 64; i++)
            ends += codes[i] == 0 || codes[i] == 7;
        cr_assert_gt(ends, 0, "group %d", g);
    }
    cr_assert_eq(mq_qweight_stored_bytes(&q), 16 * 48 + 2 * 32);
    free(codes);
    free(W);
    mq_qweight_free(&q);
}
