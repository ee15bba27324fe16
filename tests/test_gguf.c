/* Tests of miniquant's GGUF reader and writer: round trips of every value type and tensor type,
 * byte-exact determinism, and rejection of truncated, corrupted and hostile files with a
 * message that names the offending offset. */
#include <criterion/criterion.h>

#include <dirent.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "miniquant/fileio.h"
#include "miniquant/gguf.h"

/* ---- a byte builder for hand-made files ---- */

typedef struct {
    uint8_t *p;
    size_t len, cap;
} bb_t;

static void bb_put(bb_t *b, const void *d, size_t n) {
    if (b->len + n > b->cap) {
        b->cap = (b->len + n) * 2 + 64;
        b->p = realloc(b->p, b->cap);
        cr_assert(b->p);
    }
    if (n) memcpy(b->p + b->len, d, n);
    b->len += n;
}
static void bb_u8(bb_t *b, uint8_t v) {
    bb_put(b, &v, 1);
}
static void bb_u32(bb_t *b, uint32_t v) {
    bb_put(b, &v, 4);
}
static void bb_u64(bb_t *b, uint64_t v) {
    bb_put(b, &v, 8);
}
static void bb_strn(bb_t *b, const char *s, uint64_t n) {
    bb_u64(b, n);
    bb_put(b, s, (size_t)n);
}
static void bb_str(bb_t *b, const char *s) {
    bb_strn(b, s, strlen(s));
}
static void bb_zeros(bb_t *b, size_t n) {
    while (n--)
        bb_u8(b, 0);
}
static void bb_pad(bb_t *b, size_t a) {
    bb_zeros(b, (a - b->len % a) % a);
}
static void bb_header(bb_t *b, uint64_t n_tensors, uint64_t n_kv) {
    bb_put(b, "GGUF", 4);
    bb_u32(b, 3);
    bb_u64(b, n_tensors);
    bb_u64(b, n_kv);
}

/* Where each field of a hand-written tensor info starts. */
typedef struct {
    size_t name, n_dims, ne, type, offset;
} tpos_t;

static void bb_tinfo(bb_t *b, const char *name, uint32_t n_dims, const uint64_t *ne, uint32_t type,
                     uint64_t offset, tpos_t *pos) {
    tpos_t p;
    p.name = b->len;
    bb_str(b, name);
    p.n_dims = b->len;
    bb_u32(b, n_dims);
    p.ne = b->len;
    for (uint32_t j = 0; j < n_dims; j++)
        bb_u64(b, ne[j]);
    p.type = b->len;
    bb_u32(b, type);
    p.offset = b->len;
    bb_u64(b, offset);
    if (pos) *pos = p;
}

/* Asserts that reading b fails as a format error whose message starts with the file name and
 * the offset at, and mentions phrase. */
static void expect_bad(const bb_t *b, size_t at, const char *phrase) {
    mq_gguf_t *g = (mq_gguf_t *)1;
    mq_error_t err;
    mq_error_clear(&err);
    int rc = mq_gguf_read_mem(b->p, b->len, "test.gguf", &g, &err);
    cr_assert_eq(rc, MQ_ERR_FORMAT, "rc %d (%s), expected a format error mentioning '%s'", rc,
                 err.msg, phrase);
    cr_assert_null(g);
    char want[64];
    snprintf(want, sizeof want, "test.gguf: offset %zu: ", at);
    cr_assert(strncmp(err.msg, want, strlen(want)) == 0, "message '%s' does not start with '%s'",
              err.msg, want);
    cr_assert(strstr(err.msg, phrase), "message '%s' does not mention '%s'", err.msg, phrase);
}

static mq_gguf_t *read_ok(const void *buf, size_t len) {
    mq_gguf_t *g = NULL;
    mq_error_t err;
    mq_error_clear(&err);
    int rc = mq_gguf_read_mem(buf, len, "test.gguf", &g, &err);
    cr_assert_eq(rc, MQ_OK, "read failed: %s", err.msg);
    cr_assert_not_null(g);
    return g;
}

static void write_ok(const mq_gguf_t *g, void **buf, size_t *len) {
    mq_error_t err;
    mq_error_clear(&err);
    int rc = mq_gguf_write_mem(g, buf, len, &err);
    cr_assert_eq(rc, MQ_OK, "write failed: %s", err.msg);
}

static mq_gguf_t *round_trip(const mq_gguf_t *g) {
    void *buf;
    size_t len;
    write_ok(g, &buf, &len);
    mq_gguf_t *h = read_ok(buf, len);
    free(buf);
    return h;
}

static void fill_random(void *p, size_t n, uint32_t seed) {
    uint8_t *b = p;
    for (size_t i = 0; i < n; i++) {
        seed = seed * 1664525u + 1013904223u;
        b[i] = (uint8_t)(seed >> 24);
    }
}

/* ---- type traits ---- */

Test(gguf, type_table) {
    const mq_ggml_type_info_t *t = mq_ggml_type_info(MQ_GGML_Q8_0);
    cr_assert_not_null(t);
    cr_assert_str_eq(t->name, "q8_0");
    cr_assert_eq(t->block_size, 32);
    cr_assert_eq(t->type_size, 34);
    t = mq_ggml_type_info(MQ_GGML_Q4_0);
    cr_assert_eq(t->block_size, 32);
    cr_assert_eq(t->type_size, 18);
    cr_assert_eq(mq_ggml_type_info(MQ_GGML_F32)->type_size, 4);
    cr_assert_eq(mq_ggml_type_info(MQ_GGML_F16)->type_size, 2);
    /* every type ggml defines, with ggml's names, block sizes and block bytes (ggml-common.h) */
    static const struct {
        int type;
        const char *name;
        int block;
        size_t bytes;
    } ggml[] = {{3, "q4_1", 32, 20},      {6, "q5_0", 32, 22},      {7, "q5_1", 32, 24},
                {9, "q8_1", 32, 36},      {10, "q2_K", 256, 84},    {11, "q3_K", 256, 110},
                {12, "q4_K", 256, 144},   {13, "q5_K", 256, 176},   {14, "q6_K", 256, 210},
                {15, "q8_K", 256, 292},   {16, "iq2_xxs", 256, 66}, {17, "iq2_xs", 256, 74},
                {18, "iq3_xxs", 256, 98}, {19, "iq1_s", 256, 50},   {20, "iq4_nl", 32, 18},
                {21, "iq3_s", 256, 110},  {22, "iq2_s", 256, 82},   {23, "iq4_xs", 256, 136},
                {24, "i8", 1, 1},         {25, "i16", 1, 2},        {26, "i32", 1, 4},
                {27, "i64", 1, 8},        {28, "f64", 1, 8},        {29, "iq1_m", 256, 56},
                {30, "bf16", 1, 2},       {34, "tq1_0", 256, 54},   {35, "tq2_0", 256, 66}};
    for (size_t i = 0; i < sizeof ggml / sizeof ggml[0]; i++) {
        t = mq_ggml_type_info(ggml[i].type);
        cr_assert_not_null(t, "type %d", ggml[i].type);
        cr_assert_str_eq(t->name, ggml[i].name);
        cr_assert_eq(t->block_size, ggml[i].block, "%s", ggml[i].name);
        cr_assert_eq(t->type_size, ggml[i].bytes, "%s", ggml[i].name);
    }
    /* numbers ggml retired or never used */
    static const int retired[] = {4, 5, 31, 32, 33, 36, 37, 38, 39, -1};
    for (size_t i = 0; i < sizeof retired / sizeof retired[0]; i++)
        cr_assert_null(mq_ggml_type_info(retired[i]), "type %d", retired[i]);
}

Test(gguf, nbytes) {
    size_t n = 0;
    mq_error_t err;
    cr_assert_eq(mq_ggml_nbytes(MQ_GGML_F32, 2, (int64_t[]){3, 2}, &n, &err), MQ_OK);
    cr_assert_eq(n, 24);
    cr_assert_eq(mq_ggml_nbytes(MQ_GGML_F16, 3, (int64_t[]){5, 2, 3}, &n, &err), MQ_OK);
    cr_assert_eq(n, 60);
    cr_assert_eq(mq_ggml_nbytes(MQ_GGML_Q8_0, 2, (int64_t[]){64, 3}, &n, &err), MQ_OK);
    cr_assert_eq(n, 2 * 34 * 3);
    cr_assert_eq(mq_ggml_nbytes(MQ_GGML_Q4_0, 1, (int64_t[]){32}, &n, &err), MQ_OK);
    cr_assert_eq(n, 18);
    cr_assert_eq(mq_ggml_nbytes(MQ_GGML_F32, 2, (int64_t[]){0, 7}, &n, &err), MQ_OK);
    cr_assert_eq(n, 0);
    cr_assert_eq(mq_ggml_nbytes(MQ_GGML_Q8_0, 1, (int64_t[]){33}, &n, &err), MQ_ERR_FORMAT);
    cr_assert(strstr(err.msg, "block size 32"), "%s", err.msg);
    cr_assert_eq(mq_ggml_nbytes(MQ_GGML_F32, 2, (int64_t[]){4, -1}, &n, &err), MQ_ERR_FORMAT);
    cr_assert_eq(mq_ggml_nbytes(MQ_GGML_F32, 2, (int64_t[]){1LL << 32, 1LL << 32}, &n, &err),
                 MQ_ERR_FORMAT);
    cr_assert_eq(mq_ggml_nbytes(MQ_GGML_F32, 1, (int64_t[]){1LL << 62}, &n, &err), MQ_ERR_FORMAT);
    cr_assert_eq(mq_ggml_nbytes(4, 1, (int64_t[]){32}, &n, &err), MQ_ERR_FORMAT);
    cr_assert_eq(mq_ggml_nbytes(MQ_GGML_Q4_K, 2, (int64_t[]){512, 3}, &n, &err), MQ_OK);
    cr_assert_eq(n, 2 * 144 * 3);
    cr_assert_eq(mq_ggml_nbytes(MQ_GGML_Q6_K, 1, (int64_t[]){384}, &n, &err), MQ_ERR_FORMAT);
    cr_assert(strstr(err.msg, "block size 256"), "%s", err.msg);
    cr_assert_eq(mq_ggml_nbytes(MQ_GGML_F32, 5, (int64_t[]){1, 1, 1, 1, 1}, &n, &err),
                 MQ_ERR_FORMAT);
}

/* ---- metadata ---- */

Test(gguf, scalars_round_trip) {
    mq_gguf_t *g = mq_gguf_new();
    cr_assert_eq(mq_gguf_set_u8(g, "t.u8", 250), MQ_OK);
    cr_assert_eq(mq_gguf_set_i8(g, "t.i8", -120), MQ_OK);
    cr_assert_eq(mq_gguf_set_u16(g, "t.u16", 65000), MQ_OK);
    cr_assert_eq(mq_gguf_set_i16(g, "t.i16", -32000), MQ_OK);
    cr_assert_eq(mq_gguf_set_u32(g, "t.u32", 4000000000u), MQ_OK);
    cr_assert_eq(mq_gguf_set_i32(g, "t.i32", -2000000000), MQ_OK);
    cr_assert_eq(mq_gguf_set_f32(g, "t.f32", 3.25f), MQ_OK);
    cr_assert_eq(mq_gguf_set_bool(g, "t.bool", 7), MQ_OK);
    cr_assert_eq(mq_gguf_set_str(g, "t.str", "hello gguf"), MQ_OK);
    uint8_t one = 1;
    cr_assert_eq(mq_gguf_set_arr(g, "t.arr", MQ_GGUF_UINT8, &one, 1), MQ_OK);
    cr_assert_eq(mq_gguf_set_u64(g, "t.u64", (1ULL << 63) + 5), MQ_OK);
    cr_assert_eq(mq_gguf_set_i64(g, "t.i64", INT64_MIN + 1), MQ_OK);
    cr_assert_eq(mq_gguf_set_f64(g, "t.f64", -1e300), MQ_OK);

    mq_gguf_t *h = round_trip(g);
    cr_assert_eq(mq_gguf_n_kv(h), MQ_GGUF_VTYPE_COUNT);
    /* the keys were set in type order, and the order survives */
    for (int64_t i = 0; i < mq_gguf_n_kv(h); i++)
        cr_assert_eq(mq_gguf_kv_type(h, i), (int)i);
    cr_assert_str_eq(mq_gguf_kv_key(h, 0), "t.u8");
    cr_assert_null(mq_gguf_kv_key(h, 13));
    cr_assert_eq(mq_gguf_kv_type(h, -1), -1);

    mq_error_t err;
    int32_t i32;
    uint32_t u32;
    int64_t i64;
    uint64_t u64;
    cr_assert_eq(mq_gguf_get_u32(h, "t.u8", &u32, &err), MQ_OK);
    cr_assert_eq(u32, 250);
    cr_assert_eq(mq_gguf_get_i32(h, "t.i8", &i32, &err), MQ_OK);
    cr_assert_eq(i32, -120);
    cr_assert_eq(mq_gguf_get_u32(h, "t.u16", &u32, &err), MQ_OK);
    cr_assert_eq(u32, 65000);
    cr_assert_eq(mq_gguf_get_i32(h, "t.i16", &i32, &err), MQ_OK);
    cr_assert_eq(i32, -32000);
    cr_assert_eq(mq_gguf_get_u32(h, "t.u32", &u32, &err), MQ_OK);
    cr_assert_eq(u32, 4000000000u);
    cr_assert_eq(mq_gguf_get_i32(h, "t.i32", &i32, &err), MQ_OK);
    cr_assert_eq(i32, -2000000000);
    cr_assert_eq(mq_gguf_get_u64(h, "t.u64", &u64, &err), MQ_OK);
    cr_assert_eq(u64, (1ULL << 63) + 5);
    cr_assert_eq(mq_gguf_get_i64(h, "t.i64", &i64, &err), MQ_OK);
    cr_assert_eq(i64, INT64_MIN + 1);
    float f;
    double d;
    cr_assert_eq(mq_gguf_get_f32(h, "t.f32", &f, &err), MQ_OK);
    cr_assert_eq(f, 3.25f);
    cr_assert_eq(mq_gguf_get_f64(h, "t.f64", &d, &err), MQ_OK);
    cr_assert_eq(d, -1e300);
    int b = 0;
    cr_assert_eq(mq_gguf_get_bool(h, "t.bool", &b, &err), MQ_OK);
    cr_assert_eq(b, 1);
    mq_gguf_str_t s;
    cr_assert_eq(mq_gguf_get_str(h, "t.str", &s, &err), MQ_OK);
    cr_assert_eq(s.len, 10);
    cr_assert_str_eq(s.ptr, "hello gguf");
    mq_gguf_free(g);
    mq_gguf_free(h);
}

Test(gguf, arrays_round_trip) {
    static const int types[] = {MQ_GGUF_UINT8,  MQ_GGUF_INT8,  MQ_GGUF_UINT16,  MQ_GGUF_INT16,
                                MQ_GGUF_UINT32, MQ_GGUF_INT32, MQ_GGUF_FLOAT32, MQ_GGUF_BOOL,
                                MQ_GGUF_UINT64, MQ_GGUF_INT64, MQ_GGUF_FLOAT64};
    static const size_t sizes[] = {1, 1, 2, 2, 4, 4, 4, 1, 8, 8, 8};
    enum { NT = sizeof types / sizeof types[0], N = 37 };
    uint8_t data[NT][N * 8];
    mq_gguf_t *g = mq_gguf_new();
    char key[32];
    for (int k = 0; k < NT; k++) {
        fill_random(data[k], sizeof data[k], 100u + (uint32_t)k);
        if (types[k] == MQ_GGUF_BOOL)
            for (int i = 0; i < N; i++)
                data[k][i] &= 1;
        snprintf(key, sizeof key, "arr.%d", types[k]);
        cr_assert_eq(mq_gguf_set_arr(g, key, types[k], data[k], N), MQ_OK);
    }
    const char *strs[] = {"alpha", "", "a longer string with spaces", "\xc3\xa9t\xc3\xa9"};
    cr_assert_eq(mq_gguf_set_arr_str(g, "arr.str", strs, 4), MQ_OK);
    cr_assert_eq(mq_gguf_set_arr(g, "arr.empty", MQ_GGUF_INT32, NULL, 0), MQ_OK);
    cr_assert_eq(mq_gguf_set_arr_str(g, "arr.str_empty", NULL, 0), MQ_OK);
    /* nested arrays and string elements through the numeric setter are refused */
    cr_assert_eq(mq_gguf_set_arr(g, "bad", MQ_GGUF_ARRAY, data[0], 1), MQ_ERR_ARG);
    cr_assert_eq(mq_gguf_set_arr(g, "bad", MQ_GGUF_STRING, data[0], 1), MQ_ERR_ARG);
    cr_assert_eq(mq_gguf_set_arr(g, "bad", 13, data[0], 1), MQ_ERR_ARG);
    cr_assert_eq(mq_gguf_find_key(g, "bad"), -1);

    mq_gguf_t *h = round_trip(g);
    cr_assert_eq(mq_gguf_n_kv(h), NT + 3);
    mq_error_t err;
    for (int k = 0; k < NT; k++) {
        snprintf(key, sizeof key, "arr.%d", types[k]);
        int64_t i = mq_gguf_find_key(h, key);
        cr_assert_eq(mq_gguf_kv_type(h, i), MQ_GGUF_ARRAY);
        cr_assert_eq(mq_gguf_kv_arr_type(h, i), types[k]);
        int et = -1;
        const void *p;
        uint64_t n;
        cr_assert_eq(mq_gguf_get_arr(h, key, &et, &p, &n, &err), MQ_OK, "%s", err.msg);
        cr_assert_eq(et, types[k]);
        cr_assert_eq(n, N);
        cr_assert(memcmp(p, data[k], N * sizes[k]) == 0, "array %s differs", key);
    }
    const mq_gguf_str_t *ss;
    uint64_t n;
    cr_assert_eq(mq_gguf_get_arr_str(h, "arr.str", &ss, &n, &err), MQ_OK);
    cr_assert_eq(n, 4);
    for (int i = 0; i < 4; i++) {
        cr_assert_eq(ss[i].len, strlen(strs[i]));
        cr_assert_str_eq(ss[i].ptr, strs[i]);
    }
    cr_assert_eq(mq_gguf_get_arr_str(h, "arr.str_empty", &ss, &n, &err), MQ_OK);
    cr_assert_eq(n, 0);
    int et;
    const void *p;
    cr_assert_eq(mq_gguf_get_arr(h, "arr.empty", &et, &p, &n, &err), MQ_OK);
    cr_assert_eq(et, MQ_GGUF_INT32);
    cr_assert_eq(n, 0);
    mq_gguf_free(g);
    mq_gguf_free(h);
}

Test(gguf, replace_key_keeps_one_entry) {
    mq_gguf_t *g = mq_gguf_new();
    cr_assert_eq(mq_gguf_set_u32(g, "a", 1), MQ_OK);
    cr_assert_eq(mq_gguf_set_str(g, "k", "first"), MQ_OK);
    cr_assert_eq(mq_gguf_set_u32(g, "z", 2), MQ_OK);
    cr_assert_eq(mq_gguf_set_u32(g, "k", 5), MQ_OK);
    const char *s[] = {"x", "y"};
    cr_assert_eq(mq_gguf_set_arr_str(g, "k", s, 2), MQ_OK);
    cr_assert_eq(mq_gguf_set_f32(g, "k", 0.5f), MQ_OK);
    cr_assert_eq(mq_gguf_n_kv(g), 3);
    cr_assert_eq(mq_gguf_find_key(g, "k"), 1, "a replaced key keeps its place");
    mq_gguf_t *h = round_trip(g);
    cr_assert_eq(mq_gguf_n_kv(h), 3);
    float f;
    mq_error_t err;
    cr_assert_eq(mq_gguf_get_f32(h, "k", &f, &err), MQ_OK);
    cr_assert_eq(f, 0.5f);
    mq_gguf_free(g);
    mq_gguf_free(h);
}

Test(gguf, integer_getters_check_fit) {
    mq_gguf_t *g = mq_gguf_new();
    mq_gguf_set_u8(g, "u8", 200);
    mq_gguf_set_i8(g, "neg", -1);
    mq_gguf_set_u64(g, "big", 1ULL << 40);
    mq_gguf_set_u64(g, "max", UINT64_MAX);
    mq_gguf_set_i64(g, "min", INT64_MIN);
    mq_gguf_set_i32(g, "i32min", INT32_MIN);
    mq_gguf_set_i64(g, "below", (int64_t)INT32_MIN - 1);
    mq_gguf_set_u32(g, "u32max", UINT32_MAX);
    mq_gguf_set_str(g, "name", "gpt2");
    mq_gguf_set_bool(g, "flag", 1);
    mq_gguf_set_f32(g, "f", 3.5f);
    mq_gguf_set_f64(g, "tenth", 0.1);
    mq_gguf_set_f64(g, "half", 0.5);
    mq_gguf_set_arr(g, "arr", MQ_GGUF_UINT8, (uint8_t[]){1, 2}, 2);
    const char *s[] = {"x"};
    mq_gguf_set_arr_str(g, "strs", s, 1);

    mq_error_t err;
    int32_t i32;
    uint32_t u32;
    int64_t i64;
    uint64_t u64;
    cr_assert_eq(mq_gguf_get_i32(g, "u8", &i32, &err), MQ_OK);
    cr_assert_eq(i32, 200);
    cr_assert_eq(mq_gguf_get_u64(g, "u8", &u64, &err), MQ_OK);
    cr_assert_eq(u64, 200);
    cr_assert_eq(mq_gguf_get_u32(g, "neg", &u32, &err), MQ_ERR_FORMAT);
    cr_assert(strstr(err.msg, "'neg'") && strstr(err.msg, "-1"), "%s", err.msg);
    cr_assert_eq(mq_gguf_get_u64(g, "neg", &u64, &err), MQ_ERR_FORMAT);
    cr_assert_eq(mq_gguf_get_i64(g, "neg", &i64, &err), MQ_OK);
    cr_assert_eq(i64, -1);
    cr_assert_eq(mq_gguf_get_u32(g, "big", &u32, &err), MQ_ERR_FORMAT);
    cr_assert_eq(mq_gguf_get_i64(g, "big", &i64, &err), MQ_OK);
    cr_assert_eq(i64, 1LL << 40);
    cr_assert_eq(mq_gguf_get_i64(g, "max", &i64, &err), MQ_ERR_FORMAT);
    cr_assert_eq(mq_gguf_get_i64(g, "min", &i64, &err), MQ_OK);
    cr_assert_eq(i64, INT64_MIN);
    cr_assert_eq(mq_gguf_get_i32(g, "min", &i32, &err), MQ_ERR_FORMAT);
    cr_assert_eq(mq_gguf_get_i32(g, "i32min", &i32, &err), MQ_OK);
    cr_assert_eq(i32, INT32_MIN);
    cr_assert_eq(mq_gguf_get_i32(g, "below", &i32, &err), MQ_ERR_FORMAT);
    cr_assert_eq(mq_gguf_get_u32(g, "u32max", &u32, &err), MQ_OK);
    cr_assert_eq(u32, UINT32_MAX);
    cr_assert_eq(mq_gguf_get_i32(g, "u32max", &i32, &err), MQ_ERR_FORMAT);

    /* wrong types name the key; absent keys are NOT_FOUND */
    cr_assert_eq(mq_gguf_get_u32(g, "name", &u32, &err), MQ_ERR_FORMAT);
    cr_assert(strstr(err.msg, "'name'"), "%s", err.msg);
    cr_assert_eq(mq_gguf_get_u32(g, "flag", &u32, &err), MQ_ERR_FORMAT);
    cr_assert_eq(mq_gguf_get_u32(g, "f", &u32, &err), MQ_ERR_FORMAT);
    cr_assert_eq(mq_gguf_get_u32(g, "absent", &u32, &err), MQ_ERR_NOT_FOUND);
    cr_assert(strstr(err.msg, "absent"), "%s", err.msg);

    float f;
    double d;
    int b;
    mq_gguf_str_t str;
    cr_assert_eq(mq_gguf_get_f64(g, "f", &d, &err), MQ_OK);
    cr_assert_eq(d, 3.5);
    cr_assert_eq(mq_gguf_get_f32(g, "tenth", &f, &err), MQ_ERR_FORMAT);
    cr_assert_eq(mq_gguf_get_f32(g, "half", &f, &err), MQ_OK);
    cr_assert_eq(f, 0.5f);
    cr_assert_eq(mq_gguf_get_f32(g, "u8", &f, &err), MQ_ERR_FORMAT);
    cr_assert_eq(mq_gguf_get_bool(g, "u8", &b, &err), MQ_ERR_FORMAT);
    cr_assert_eq(mq_gguf_get_str(g, "u8", &str, &err), MQ_ERR_FORMAT);
    cr_assert_eq(mq_gguf_get_str(g, "strs", &str, &err), MQ_ERR_FORMAT);
    int et;
    const void *p;
    const mq_gguf_str_t *ss;
    uint64_t n;
    cr_assert_eq(mq_gguf_get_arr(g, "strs", &et, &p, &n, &err), MQ_ERR_FORMAT);
    cr_assert_eq(mq_gguf_get_arr_str(g, "arr", &ss, &n, &err), MQ_ERR_FORMAT);
    cr_assert_eq(mq_gguf_get_arr(g, "u8", &et, &p, &n, &err), MQ_ERR_FORMAT);
    mq_gguf_free(g);
}

Test(gguf, strings_with_nul_bytes) {
    /* built by hand: the setters take C strings, but a file may hold any bytes */
    bb_t b = {0};
    bb_header(&b, 0, 2);
    bb_str(&b, "s");
    bb_u32(&b, MQ_GGUF_STRING);
    bb_strn(&b, "a\0b", 3);
    bb_str(&b, "arr");
    bb_u32(&b, MQ_GGUF_ARRAY);
    bb_u32(&b, MQ_GGUF_STRING);
    bb_u64(&b, 3);
    bb_strn(&b, "x\0", 2);
    bb_strn(&b, "", 0);
    bb_strn(&b, "\0\0\0", 3);
    /* no tensors, so no data section: the file ends here, unpadded, as ggml's do */

    mq_gguf_t *g = read_ok(b.p, b.len);
    mq_error_t err;
    mq_gguf_str_t s;
    cr_assert_eq(mq_gguf_get_str(g, "s", &s, &err), MQ_OK);
    cr_assert_eq(s.len, 3);
    cr_assert(memcmp(s.ptr, "a\0b", 4) == 0, "the value keeps its NUL and is NUL-terminated");
    const mq_gguf_str_t *ss;
    uint64_t n;
    cr_assert_eq(mq_gguf_get_arr_str(g, "arr", &ss, &n, &err), MQ_OK);
    cr_assert_eq(n, 3);
    cr_assert_eq(ss[0].len, 2);
    cr_assert_eq(ss[1].len, 0);
    cr_assert_eq(ss[2].len, 3);
    cr_assert(memcmp(ss[2].ptr, "\0\0\0", 4) == 0);

    void *out;
    size_t len;
    write_ok(g, &out, &len);
    cr_assert_eq(len, b.len);
    cr_assert(memcmp(out, b.p, len) == 0, "rewriting a file miniquant's writer could have made "
                                          "gives the same bytes");
    free(out);
    mq_gguf_free(g);
    free(b.p);
}

/* ---- tensors ---- */

typedef struct {
    const char *name;
    int type, n_dims;
    int64_t ne[4];
    size_t nbytes;
    uint8_t *data;
} tspec_t;

static void make_tensors(tspec_t *t) {
    float f32[15];
    for (int i = 0; i < 15; i++)
        f32[i] = (float)i * 0.37f - 2.0f;
    f32[3] = -0.0f;
    f32[4] = 1e-40f; /* subnormal */
    uint32_t nan_payload = 0x7fc12345u;
    memcpy(&f32[5], &nan_payload, 4);
    f32[6] = INFINITY;
    t[0] = (tspec_t){"blk.0.attn_qkv.weight", MQ_GGML_F32, 2, {5, 3, 1, 1}, 60, malloc(60)};
    memcpy(t[0].data, f32, 60);
    t[1] = (tspec_t){"token_embd_norm.weight", MQ_GGML_F16, 1, {7, 1, 1, 1}, 14, malloc(14)};
    fill_random(t[1].data, 14, 7);
    t[2] = (tspec_t){"blk.0.ffn_up.weight", MQ_GGML_Q8_0, 2, {64, 2, 1, 1}, 136, malloc(136)};
    fill_random(t[2].data, 136, 8);
    t[3] = (tspec_t){"blk.0.ffn_down.weight", MQ_GGML_Q4_0, 3, {32, 3, 2, 1}, 108, malloc(108)};
    fill_random(t[3].data, 108, 9);
}

static size_t padded(size_t n, size_t a) {
    return (n + a - 1) / a * a;
}

/* Writes the four tensors with the given alignment (0: default) and checks the file's layout
 * and a bit-exact read back. */
static void check_tensor_round_trip(uint32_t alignment) {
    tspec_t t[4];
    make_tensors(t);
    mq_gguf_t *g = mq_gguf_new();
    mq_gguf_set_str(g, "general.architecture", "gpt2");
    mq_error_t err;
    for (int i = 0; i < 4; i++)
        cr_assert_eq(
            mq_gguf_add_tensor(g, t[i].name, t[i].type, t[i].n_dims, t[i].ne, t[i].data, &err),
            MQ_OK, "%s", err.msg);
    /* set after the tensors: the layout must follow */
    if (alignment) cr_assert_eq(mq_gguf_set_u32(g, "general.alignment", alignment), MQ_OK);
    size_t a = alignment ? alignment : 32;
    cr_assert_eq(mq_gguf_alignment(g), a);

    void *buf;
    size_t len;
    write_ok(g, &buf, &len);
    const uint8_t *file = buf;
    cr_assert_eq(len % a, 0, "the file ends padded to the alignment");
    size_t data_bytes = 0;
    for (int i = 0; i < 4; i++)
        data_bytes += padded(t[i].nbytes, a);
    size_t ds = len - data_bytes;
    cr_assert_eq(ds % a, 0, "data section starts at %zu, not aligned to %zu", ds, a);

    mq_gguf_t *h = read_ok(buf, len);
    cr_assert_eq(mq_gguf_alignment(h), a);
    cr_assert_eq(mq_gguf_n_tensors(h), 4);
    uint64_t expect_off = 0;
    for (int i = 0; i < 4; i++) {
        const mq_gguf_tensor_t *r = mq_gguf_tensor(h, i);
        cr_assert_str_eq(r->name, t[i].name);
        cr_assert_eq(r->type, t[i].type);
        cr_assert_eq(r->n_dims, t[i].n_dims);
        for (int j = 0; j < 4; j++)
            cr_assert_eq(r->ne[j], t[i].ne[j]);
        cr_assert_eq(r->nbytes, t[i].nbytes);
        cr_assert_eq(r->offset % a, 0);
        cr_assert_eq(r->offset, expect_off);
        cr_assert_eq(mq_gguf_tensor(g, i)->offset, expect_off, "the builder's offsets match");
        cr_assert(memcmp(r->data, t[i].data, t[i].nbytes) == 0, "tensor %s differs", t[i].name);
        cr_assert(memcmp(file + ds + r->offset, t[i].data, t[i].nbytes) == 0);
        /* padding after each tensor is zeros */
        for (size_t k = r->offset + r->nbytes; k < padded(r->offset + r->nbytes, a); k++)
            cr_assert_eq(file[ds + k], 0);
        expect_off += padded(t[i].nbytes, a);
    }
    cr_assert_eq(mq_gguf_find_tensor(h, t[2].name), mq_gguf_tensor(h, 2));
    cr_assert_null(mq_gguf_find_tensor(h, "missing"));
    cr_assert_null(mq_gguf_tensor(h, 4));

    void *again;
    size_t len2;
    write_ok(h, &again, &len2);
    cr_assert_eq(len2, len);
    cr_assert(memcmp(again, buf, len) == 0, "read then write gives the same bytes");
    free(again);
    free(buf);
    mq_gguf_free(g);
    mq_gguf_free(h);
    for (int i = 0; i < 4; i++)
        free(t[i].data);
}

Test(gguf, tensors_round_trip_default_alignment) {
    check_tensor_round_trip(0);
}
Test(gguf, tensors_round_trip_alignment_64) {
    check_tensor_round_trip(64);
}
Test(gguf, tensors_round_trip_alignment_8) {
    check_tensor_round_trip(8);
}

Test(gguf, empty_tensor_round_trip) {
    mq_gguf_t *g = mq_gguf_new();
    mq_error_t err;
    cr_assert_eq(mq_gguf_add_tensor(g, "empty", MQ_GGML_F32, 2, (int64_t[]){0, 4}, NULL, &err),
                 MQ_OK, "%s", err.msg);
    cr_assert_eq(
        mq_gguf_add_tensor(g, "one", MQ_GGML_F32, 1, (int64_t[]){1}, (float[]){2.5f}, &err), MQ_OK);
    mq_gguf_t *h = round_trip(g);
    cr_assert_eq(mq_gguf_tensor(h, 0)->nbytes, 0);
    cr_assert_eq(mq_gguf_tensor(h, 0)->ne[0], 0);
    cr_assert_eq(mq_gguf_tensor(h, 1)->offset, 0, "an empty tensor takes no room");
    cr_assert_eq(*(const float *)mq_gguf_tensor(h, 1)->data, 2.5f);
    mq_gguf_free(g);
    mq_gguf_free(h);
}

Test(gguf, add_tensor_rejects_bad_arguments) {
    mq_gguf_t *g = mq_gguf_new();
    mq_error_t err;
    float x[64] = {0};
    cr_assert_eq(mq_gguf_add_tensor(g, "w", MQ_GGML_F32, 1, (int64_t[]){64}, x, &err), MQ_OK);
    cr_assert_eq(mq_gguf_add_tensor(g, "w", MQ_GGML_F32, 1, (int64_t[]){64}, x, &err), MQ_ERR_ARG);
    cr_assert(strstr(err.msg, "duplicate"), "%s", err.msg);
    char name[65];
    memset(name, 'n', 64);
    name[64] = '\0';
    cr_assert_eq(mq_gguf_add_tensor(g, name, MQ_GGML_F32, 1, (int64_t[]){1}, x, &err), MQ_ERR_ARG);
    name[63] = '\0';
    cr_assert_eq(mq_gguf_add_tensor(g, name, MQ_GGML_F32, 1, (int64_t[]){1}, x, &err), MQ_OK,
                 "63 bytes is GGUF's longest name");
    cr_assert_eq(mq_gguf_add_tensor(g, "q", MQ_GGML_Q8_0, 1, (int64_t[]){48}, x, &err), MQ_ERR_ARG);
    cr_assert(strstr(err.msg, "block size"), "%s", err.msg);
    cr_assert_eq(mq_gguf_add_tensor(g, "t", 5, 1, (int64_t[]){1}, x, &err), MQ_ERR_ARG);
    cr_assert_eq(mq_gguf_add_tensor(g, "d", MQ_GGML_F32, 5, (int64_t[]){1, 1, 1, 1, 1}, x, &err),
                 MQ_ERR_ARG);
    cr_assert_eq(mq_gguf_add_tensor(g, "n", MQ_GGML_F32, 1, (int64_t[]){4}, NULL, &err),
                 MQ_ERR_ARG);
    cr_assert_eq(mq_gguf_n_tensors(g), 2);
    mq_gguf_free(g);
}

Test(gguf, alignment_setter_rejects_invalid) {
    mq_gguf_t *g = mq_gguf_new();
    cr_assert_eq(mq_gguf_set_u32(g, "general.alignment", 0), MQ_ERR_ARG);
    cr_assert_eq(mq_gguf_set_u32(g, "general.alignment", 3), MQ_ERR_ARG);
    cr_assert_eq(mq_gguf_set_u64(g, "general.alignment", 64), MQ_ERR_ARG);
    cr_assert_eq(mq_gguf_set_str(g, "general.alignment", "64"), MQ_ERR_ARG);
    cr_assert_eq(mq_gguf_n_kv(g), 0);
    cr_assert_eq(mq_gguf_set_u32(g, "general.alignment", 16), MQ_OK);
    cr_assert_eq(mq_gguf_set_u32(g, "general.alignment", 12), MQ_ERR_ARG);
    cr_assert_eq(mq_gguf_alignment(g), 16, "a refused setter leaves the old value");
    mq_gguf_free(g);
}

/* A small file with a bit of everything, made by miniquant's writer. */
static void small_file(void **buf, size_t *len) {
    mq_gguf_t *g = mq_gguf_new();
    mq_gguf_set_str(g, "general.architecture", "gpt2");
    mq_gguf_set_u32(g, "gpt2.context_length", 128);
    mq_gguf_set_bool(g, "flag", 1);
    mq_gguf_set_arr(g, "ints", MQ_GGUF_INT16, (int16_t[]){-1, 2, -3}, 3);
    const char *toks[] = {"a", "bc", ""};
    mq_gguf_set_arr_str(g, "tokens", toks, 3);
    mq_error_t err;
    float w[8] = {1, 2, 3, 4, 5, 6, 7, 8};
    cr_assert_eq(mq_gguf_add_tensor(g, "w", MQ_GGML_F32, 2, (int64_t[]){4, 2}, w, &err), MQ_OK);
    uint8_t q[34];
    fill_random(q, sizeof q, 3);
    cr_assert_eq(mq_gguf_add_tensor(g, "q", MQ_GGML_Q8_0, 1, (int64_t[]){32}, q, &err), MQ_OK);
    write_ok(g, buf, len);
    mq_gguf_free(g);
}

Test(gguf, file_write_matches_memory) {
    void *mem;
    size_t len;
    small_file(&mem, &len);
    mq_gguf_t *g = read_ok(mem, len);

    char dir[] = "/tmp/mq_test_gguf_XXXXXX";
    cr_assert_not_null(mkdtemp(dir));
    char path[256];
    snprintf(path, sizeof path, "%s/model.gguf", dir);
    mq_error_t err;
    cr_assert_eq(mq_gguf_write(g, path, &err), MQ_OK, "%s", err.msg);
    char *disk;
    size_t dlen;
    cr_assert_eq(mq_read_file(path, 0, &disk, &dlen, &err), MQ_OK);
    cr_assert_eq(dlen, len);
    cr_assert(memcmp(disk, mem, len) == 0, "the file and write_mem differ");

    mq_gguf_t *h = NULL;
    cr_assert_eq(mq_gguf_read(path, &h, &err), MQ_OK, "%s", err.msg);
    void *again;
    size_t alen;
    write_ok(h, &again, &alen);
    cr_assert_eq(alen, len);
    cr_assert(memcmp(again, mem, len) == 0);

    /* only the destination remains: no temporary file is left behind */
    DIR *d = opendir(dir);
    int entries = 0;
    for (struct dirent *e; (e = readdir(d));)
        if (e->d_name[0] != '.') entries++;
    closedir(d);
    cr_assert_eq(entries, 1);
    mq_gguf_free(h);

    cr_assert_eq(mq_gguf_read("/nonexistent/dir/x.gguf", &h, &err), MQ_ERR_IO);
    cr_assert_null(h);
    unlink(path);
    rmdir(dir);
    free(disk);
    free(again);
    free(mem);
    mq_gguf_free(g);
}

/* A file of MQ_GGUF_MAP_MIN bytes or more is mapped, a smaller one read; both give the same
 * keys, tensors and bytes, and a mapped file's tensors can be written to without touching it. */
Test(gguf, large_files_are_mapped) {
    char dir[] = "/tmp/mq_test_gguf_XXXXXX";
    cr_assert_not_null(mkdtemp(dir));
    size_t sizes[2] = {1000, MQ_GGUF_MAP_MIN / 4 + 1000}; /* floats: under and over the bound */
    for (int k = 0; k < 2; k++) {
        size_t n = sizes[k];
        float *v = malloc(n * sizeof *v);
        cr_assert_not_null(v);
        for (size_t i = 0; i < n; i++)
            v[i] = (float)i * 0.5f - 7.0f;
        mq_gguf_t *g = mq_gguf_new();
        int64_t ne[1] = {(int64_t)n};
        cr_assert_eq(mq_gguf_set_str(g, "general.name", "mapped"), MQ_OK);
        mq_error_t err = {0};
        cr_assert_eq(mq_gguf_add_tensor(g, "t", MQ_GGML_F32, 1, ne, v, &err), MQ_OK, "%s", err.msg);
        char path[256];
        snprintf(path, sizeof path, "%s/f%d.gguf", dir, k);
        cr_assert_eq(mq_gguf_write(g, path, &err), MQ_OK, "%s", err.msg);
        mq_gguf_t *h = NULL;
        cr_assert_eq(mq_gguf_read(path, &h, &err), MQ_OK, "%s", err.msg);
        cr_assert_eq(mq_gguf_mapped(h), k == 1, "%zu floats", n);
        cr_assert_eq(mq_gguf_n_tensors(h), 1);
        const mq_gguf_tensor_t *t = mq_gguf_tensor(h, 0);
        cr_assert_eq(t->nbytes, n * sizeof *v);
        cr_assert(memcmp(t->data, v, t->nbytes) == 0);
        mq_gguf_str_t name;
        cr_assert_eq(mq_gguf_get_str(h, "general.name", &name, &err), MQ_OK);
        cr_assert(name.len == 6 && !memcmp(name.ptr, "mapped", 6));
        /* given back after reading, the pages read the same again, from the file */
        mq_gguf_release_tensor(h, t);
        cr_assert(memcmp(t->data, v, t->nbytes) == 0);
        ((float *)t->data)[0] = 1e9f; /* private: the file keeps its bytes */
        mq_gguf_t *again = NULL;
        cr_assert_eq(mq_gguf_read(path, &again, &err), MQ_OK, "%s", err.msg);
        cr_assert_eq(((const float *)mq_gguf_tensor(again, 0)->data)[0], v[0]);
        mq_gguf_free(again);
        mq_gguf_free(h);
        mq_gguf_free(g);
        unlink(path);
        free(v);
    }
    rmdir(dir);
}

Test(gguf, output_is_deterministic) {
    void *a, *b;
    size_t la, lb;
    small_file(&a, &la);
    small_file(&b, &lb);
    cr_assert_eq(la, lb);
    cr_assert(memcmp(a, b, la) == 0);
    free(a);
    free(b);
}

/* ---- truncated and corrupted files ---- */

Test(gguf, every_prefix_is_rejected) {
    void *buf;
    size_t len;
    small_file(&buf, &len);
    for (size_t n = 0; n < len; n++) {
        mq_gguf_t *g = (mq_gguf_t *)1;
        mq_error_t err;
        int rc = mq_gguf_read_mem(buf, n, "test.gguf", &g, &err);
        cr_assert_eq(rc, MQ_ERR_FORMAT, "prefix of %zu bytes: rc %d", n, rc);
        cr_assert_null(g);
        size_t at;
        cr_assert_eq(sscanf(err.msg, "test.gguf: offset %zu: ", &at), 1, "%s", err.msg);
        cr_assert(at <= n, "prefix of %zu bytes blamed on offset %zu: %s", n, at, err.msg);
    }
    free(buf);
}

Test(gguf, corrupted_bytes_never_crash) {
    void *buf;
    size_t len;
    small_file(&buf, &len);
    uint8_t *copy = malloc(len);
    static const uint8_t masks[] = {0xff, 0x01, 0x80, 0x40};
    int rejected = 0;
    for (size_t i = 0; i < len; i++) {
        for (size_t m = 0; m < sizeof masks; m++) {
            memcpy(copy, buf, len);
            copy[i] ^= masks[m];
            mq_gguf_t *g = NULL;
            mq_error_t err;
            int rc = mq_gguf_read_mem(copy, len, "test.gguf", &g, &err);
            cr_assert(rc == MQ_OK || rc == MQ_ERR_FORMAT, "byte %zu ^ %#x: rc %d", i, masks[m], rc);
            if (rc == MQ_OK) {
                void *out;
                size_t olen;
                write_ok(g, &out, &olen);
                free(out);
                mq_gguf_free(g);
            } else {
                rejected++;
            }
        }
    }
    cr_assert_gt(rejected, 0);
    free(copy);
    free(buf);
}

Test(gguf, bad_magic) {
    bb_t b = {0};
    bb_header(&b, 0, 0);
    memcpy(b.p, "GGUG", 4);
    bb_pad(&b, 32);
    expect_bad(&b, 0, "magic");
    free(b.p);
}

Test(gguf, unsupported_versions) {
    for (uint32_t v = 1; v <= 4; v++) {
        if (v == 3) continue;
        bb_t b = {0};
        bb_header(&b, 0, 0);
        memcpy(b.p + 4, &v, 4);
        bb_pad(&b, 32);
        expect_bad(&b, 4, "version");
        free(b.p);
    }
}

Test(gguf, huge_counts) {
    bb_t b = {0};
    bb_header(&b, 1ULL << 40, 0);
    bb_zeros(&b, 64);
    expect_bad(&b, 8, "tensors cannot fit");
    free(b.p);

    b = (bb_t){0};
    bb_header(&b, 0, UINT64_MAX);
    bb_zeros(&b, 64);
    expect_bad(&b, 16, "key/values cannot fit");
    free(b.p);
}

Test(gguf, key_length_past_end) {
    bb_t b = {0};
    bb_header(&b, 0, 1);
    bb_u64(&b, 1000); /* key length */
    bb_put(&b, "abc", 3);
    bb_zeros(&b, 16);
    expect_bad(&b, 24, "string length 1000");
    free(b.p);

    b = (bb_t){0};
    bb_header(&b, 0, 1);
    bb_u64(&b, UINT64_MAX);
    bb_zeros(&b, 16);
    expect_bad(&b, 24, "string length");
    free(b.p);
}

Test(gguf, value_string_length_past_end) {
    bb_t b = {0};
    bb_header(&b, 0, 1);
    bb_str(&b, "name");
    bb_u32(&b, MQ_GGUF_STRING);
    size_t at = b.len;
    bb_u64(&b, 1ULL << 62);
    bb_put(&b, "gpt2", 4);
    expect_bad(&b, at, "key 'name'");
    free(b.p);
}

Test(gguf, array_count_huge) {
    static const uint32_t types[] = {MQ_GGUF_UINT8, MQ_GGUF_FLOAT64, MQ_GGUF_STRING, MQ_GGUF_BOOL};
    for (size_t k = 0; k < sizeof types / sizeof types[0]; k++) {
        bb_t b = {0};
        bb_header(&b, 0, 1);
        bb_str(&b, "arr");
        bb_u32(&b, MQ_GGUF_ARRAY);
        bb_u32(&b, types[k]);
        size_t at = b.len;
        bb_u64(&b, 1ULL << 62);
        bb_zeros(&b, 64);
        expect_bad(&b, at, "key 'arr'");
        free(b.p);
    }
}

Test(gguf, unknown_value_types) {
    bb_t b = {0};
    bb_header(&b, 0, 1);
    bb_str(&b, "k");
    size_t at = b.len;
    bb_u32(&b, 13);
    bb_zeros(&b, 16);
    expect_bad(&b, at, "unknown value type 13");
    free(b.p);

    b = (bb_t){0};
    bb_header(&b, 0, 1);
    bb_str(&b, "k");
    bb_u32(&b, MQ_GGUF_ARRAY);
    at = b.len;
    bb_u32(&b, 0x80000000u);
    bb_zeros(&b, 16);
    expect_bad(&b, at, "unknown array element type");
    free(b.p);
}

Test(gguf, nested_arrays_rejected) {
    bb_t b = {0};
    bb_header(&b, 0, 1);
    bb_str(&b, "nest");
    bb_u32(&b, MQ_GGUF_ARRAY);
    size_t at = b.len;
    bb_u32(&b, MQ_GGUF_ARRAY);
    bb_u64(&b, 1);
    bb_u32(&b, MQ_GGUF_UINT8);
    bb_u64(&b, 1);
    bb_u8(&b, 1);
    bb_pad(&b, 32);
    expect_bad(&b, at, "nested arrays");
    free(b.p);
}

Test(gguf, bool_must_be_0_or_1) {
    bb_t b = {0};
    bb_header(&b, 0, 1);
    bb_str(&b, "flag");
    bb_u32(&b, MQ_GGUF_BOOL);
    size_t at = b.len;
    bb_u8(&b, 2);
    bb_pad(&b, 32);
    expect_bad(&b, at, "bool value 2");
    free(b.p);

    b = (bb_t){0};
    bb_header(&b, 0, 1);
    bb_str(&b, "flags");
    bb_u32(&b, MQ_GGUF_ARRAY);
    bb_u32(&b, MQ_GGUF_BOOL);
    bb_u64(&b, 4);
    bb_u8(&b, 1);
    bb_u8(&b, 0);
    at = b.len;
    bb_u8(&b, 0xff);
    bb_u8(&b, 1);
    bb_pad(&b, 32);
    expect_bad(&b, at, "bool value 255");
    free(b.p);
}

Test(gguf, duplicate_keys_rejected) {
    bb_t b = {0};
    bb_header(&b, 0, 3);
    bb_str(&b, "a");
    bb_u32(&b, MQ_GGUF_UINT8);
    bb_u8(&b, 1);
    bb_str(&b, "b");
    bb_u32(&b, MQ_GGUF_UINT8);
    bb_u8(&b, 2);
    size_t at = b.len;
    bb_str(&b, "a");
    bb_u32(&b, MQ_GGUF_UINT32);
    bb_u32(&b, 3);
    bb_pad(&b, 32);
    expect_bad(&b, at, "duplicate key 'a'");
    free(b.p);
}

Test(gguf, nul_in_key_rejected) {
    bb_t b = {0};
    bb_header(&b, 0, 1);
    bb_strn(&b, "a\0b", 3);
    bb_u32(&b, MQ_GGUF_UINT8);
    bb_u8(&b, 1);
    bb_pad(&b, 32);
    expect_bad(&b, 24, "NUL");
    free(b.p);
}

static void alignment_file(bb_t *b, uint32_t type, uint64_t value, size_t *type_at,
                           size_t *value_at) {
    bb_header(b, 0, 1);
    bb_str(b, "general.alignment");
    *type_at = b->len;
    bb_u32(b, type);
    *value_at = b->len;
    if (type == MQ_GGUF_UINT64)
        bb_u64(b, value);
    else
        bb_u32(b, (uint32_t)value);
    bb_pad(b, 64);
}

Test(gguf, bad_alignment_rejected) {
    size_t type_at, value_at;
    for (uint32_t v = 0; v <= 3; v += 3) {
        bb_t b = {0};
        alignment_file(&b, MQ_GGUF_UINT32, v, &type_at, &value_at);
        expect_bad(&b, value_at, "power of two");
        free(b.p);
    }
    bb_t b = {0};
    alignment_file(&b, MQ_GGUF_UINT64, 64, &type_at, &value_at);
    expect_bad(&b, type_at, "must be u32");
    free(b.p);

    b = (bb_t){0};
    alignment_file(&b, MQ_GGUF_UINT32, 64, &type_at, &value_at);
    mq_gguf_t *g = read_ok(b.p, b.len);
    cr_assert_eq(mq_gguf_alignment(g), 64);
    mq_gguf_free(g);
    free(b.p);
}

/* A file with no keys, the given tensor infos (written by fn) and data_len bytes of data. */
static void tensor_file(bb_t *b, int n_tensors, void (*infos)(bb_t *, tpos_t *), tpos_t *pos,
                        size_t data_len) {
    bb_header(b, (uint64_t)n_tensors, 0);
    infos(b, pos);
    bb_pad(b, 32);
    bb_zeros(b, data_len);
}

static void info_ndims0(bb_t *b, tpos_t *p) {
    bb_tinfo(b, "t", 0, NULL, 0, 0, p);
}
static void info_ndims5(bb_t *b, tpos_t *p) {
    bb_tinfo(b, "t", 5, (uint64_t[]){1, 1, 1, 1, 1}, 0, 0, p);
}
static void info_ne_huge(bb_t *b, tpos_t *p) {
    bb_tinfo(b, "t", 1, (uint64_t[]){1ULL << 62}, 0, 0, p);
}
static void info_ne_product(bb_t *b, tpos_t *p) {
    bb_tinfo(b, "t", 3, (uint64_t[]){1ULL << 20, 1ULL << 22, 1ULL << 22}, 0, 0, p);
}
static void info_ne_sign(bb_t *b, tpos_t *p) {
    bb_tinfo(b, "t", 2, (uint64_t[]){4, 1ULL << 63}, 0, 0, p);
}
static void info_ne0_block(bb_t *b, tpos_t *p) {
    bb_tinfo(b, "t", 2, (uint64_t[]){48, 2}, MQ_GGML_Q8_0, 0, p);
}
static void info_type99(bb_t *b, tpos_t *p) {
    bb_tinfo(b, "odd.weight", 1, (uint64_t[]){4}, 99, 0, p);
}

Test(gguf, bad_tensor_shapes_and_types) {
    tpos_t p;
    bb_t b = {0};
    tensor_file(&b, 1, info_ndims0, &p, 64);
    expect_bad(&b, p.n_dims, "n_dims 0");
    free(b.p);
    b = (bb_t){0};
    tensor_file(&b, 1, info_ndims5, &p, 64);
    expect_bad(&b, p.n_dims, "n_dims 5");
    free(b.p);
    b = (bb_t){0};
    tensor_file(&b, 1, info_ne_huge, &p, 64);
    expect_bad(&b, p.ne, "overflow");
    free(b.p);
    b = (bb_t){0};
    tensor_file(&b, 1, info_ne_product, &p, 64);
    expect_bad(&b, p.ne, "overflow");
    free(b.p);
    b = (bb_t){0};
    tensor_file(&b, 1, info_ne_sign, &p, 64);
    expect_bad(&b, p.ne + 8, "ne[1]");
    free(b.p);
    b = (bb_t){0};
    tensor_file(&b, 1, info_ne0_block, &p, 256);
    expect_bad(&b, p.ne, "block size 32");
    free(b.p);
    b = (bb_t){0};
    tensor_file(&b, 1, info_type99, &p, 64);
    expect_bad(&b, p.type, "tensor 'odd.weight': unknown tensor type 99");
    free(b.p);
}

static void info_past_end(bb_t *b, tpos_t *p) {
    bb_tinfo(b, "t", 1, (uint64_t[]){16}, 0, 32, p);
}
static void info_offset_huge(bb_t *b, tpos_t *p) {
    bb_tinfo(b, "t", 1, (uint64_t[]){16}, 0, UINT64_MAX - 31, p);
}
static void info_misaligned(bb_t *b, tpos_t *p) {
    bb_tinfo(b, "t", 1, (uint64_t[]){4}, 0, 16, p);
}
static void info_overlap(bb_t *b, tpos_t *p) {
    bb_tinfo(b, "a", 1, (uint64_t[]){16}, 0, 0, NULL);
    bb_tinfo(b, "b", 1, (uint64_t[]){8}, 0, 32, p);
}
static void info_contained(bb_t *b, tpos_t *p) {
    bb_tinfo(b, "small", 1, (uint64_t[]){4}, 0, 64, p);
    bb_tinfo(b, "big", 1, (uint64_t[]){64}, 0, 0, NULL);
}
static void info_dup_names(bb_t *b, tpos_t *p) {
    bb_tinfo(b, "w", 1, (uint64_t[]){8}, 0, 0, NULL);
    bb_tinfo(b, "w", 1, (uint64_t[]){8}, 0, 32, p);
}
static void info_long_name(bb_t *b, tpos_t *p) {
    char name[65];
    memset(name, 'x', 64);
    name[64] = '\0';
    bb_tinfo(b, name, 1, (uint64_t[]){8}, 0, 0, p);
}
static void info_gapped(bb_t *b, tpos_t *p) {
    bb_tinfo(b, "second", 1, (uint64_t[]){8}, 0, 96, p);
    bb_tinfo(b, "first", 1, (uint64_t[]){8}, 0, 0, NULL);
}

Test(gguf, bad_tensor_offsets) {
    tpos_t p;
    bb_t b = {0};
    tensor_file(&b, 1, info_past_end, &p, 64);
    expect_bad(&b, p.offset, "past the end");
    free(b.p);
    b = (bb_t){0};
    tensor_file(&b, 1, info_offset_huge, &p, 64);
    expect_bad(&b, p.offset, "past the end");
    free(b.p);
    b = (bb_t){0};
    tensor_file(&b, 1, info_misaligned, &p, 64);
    expect_bad(&b, p.offset, "not a multiple of general.alignment 32");
    free(b.p);
    b = (bb_t){0};
    tensor_file(&b, 2, info_overlap, &p, 64);
    expect_bad(&b, p.offset, "tensor 'b' overlaps tensor 'a'");
    free(b.p);
    b = (bb_t){0};
    tensor_file(&b, 2, info_contained, &p, 256);
    expect_bad(&b, p.offset, "tensor 'small' overlaps tensor 'big'");
    free(b.p);
    b = (bb_t){0};
    tensor_file(&b, 2, info_dup_names, &p, 64);
    expect_bad(&b, p.name, "duplicate tensor name 'w'");
    free(b.p);
    b = (bb_t){0};
    tensor_file(&b, 1, info_long_name, &p, 64);
    expect_bad(&b, p.name, "at most 63");
    free(b.p);
}

Test(gguf, gapped_unordered_tensors_read_and_rewrite_packed) {
    tpos_t p;
    bb_t b = {0};
    tensor_file(&b, 2, info_gapped, &p, 128);
    size_t ds = b.len - 128;
    for (int i = 0; i < 32; i++)
        b.p[ds + i] = (uint8_t)(i + 1); /* "first" */
    for (int i = 0; i < 32; i++)
        b.p[ds + 96 + i] = (uint8_t)(200 + i); /* "second" */
    mq_gguf_t *g = read_ok(b.p, b.len);
    const mq_gguf_tensor_t *second = mq_gguf_tensor(g, 0), *first = mq_gguf_tensor(g, 1);
    cr_assert_eq(second->offset, 96);
    cr_assert_eq(((const uint8_t *)second->data)[0], 200);
    cr_assert_eq(((const uint8_t *)first->data)[31], 32);

    mq_gguf_t *h = round_trip(g);
    cr_assert_eq(mq_gguf_tensor(h, 0)->offset, 0);
    cr_assert_eq(mq_gguf_tensor(h, 1)->offset, 32);
    cr_assert(memcmp(mq_gguf_tensor(h, 0)->data, second->data, 32) == 0);
    cr_assert(memcmp(mq_gguf_tensor(h, 1)->data, first->data, 32) == 0);
    mq_gguf_free(g);
    mq_gguf_free(h);
    free(b.p);
}

Test(gguf, missing_padding_rejected) {
    /* a tensor of 8 bytes: its data fits, the padding to 32 does not */
    tpos_t p;
    bb_t b = {0};
    bb_header(&b, 1, 0);
    bb_tinfo(&b, "t", 1, (uint64_t[]){2}, 0, 0, &p);
    bb_pad(&b, 32);
    bb_zeros(&b, 8);
    expect_bad(&b, p.offset, "padding");
    free(b.p);

    /* the header's padding before the data section, when there is a data section */
    b = (bb_t){0};
    bb_header(&b, 1, 0);
    bb_tinfo(&b, "t", 1, (uint64_t[]){2}, 0, 0, &p);
    size_t end = b.len;
    expect_bad(&b, end, "data section");
    free(b.p);

    /* a file without tensors has no data section: ggml writes vocabulary-only files that end
     * right after the metadata, and they are valid */
    b = (bb_t){0};
    bb_header(&b, 0, 1);
    bb_str(&b, "k");
    bb_u32(&b, MQ_GGUF_UINT8);
    bb_u8(&b, 1);
    mq_gguf_t *g = NULL;
    mq_error_t err = {0};
    cr_assert_eq(mq_gguf_read_mem(b.p, b.len, "vocab-only", &g, &err), MQ_OK, "%s", err.msg);
    cr_assert_eq(mq_gguf_n_kv(g), 1);
    mq_gguf_free(g);
    free(b.p);
}

/* A streamed file is byte for byte the file mq_gguf_write makes of the same tensors, whatever
 * the pieces; a short tensor or an abort leaves the destination as it was. */
Test(gguf, stream_writes_what_write_writes) {
    static float a[37], b[256];
    static int8_t c[3 * 34];
    for (int i = 0; i < 37; i++)
        a[i] = (float)i / 3.0f;
    for (int i = 0; i < 256; i++)
        b[i] = (float)-i;
    for (int i = 0; i < 3 * 34; i++)
        c[i] = (int8_t)i;
    const int64_t na[1] = {37}, nb[2] = {32, 8}, nc[2] = {32, 3}, none[1] = {0};
    mq_gguf_t *full = mq_gguf_new(), *decl = mq_gguf_new();
    for (int k = 0; k < 2; k++) {
        mq_gguf_t *g = k ? decl : full;
        cr_assert_eq(mq_gguf_set_str(g, "general.architecture", "test"), MQ_OK);
        cr_assert_eq(mq_gguf_set_u32(g, "general.alignment", 64), MQ_OK);
    }
    cr_assert_eq(mq_gguf_add_tensor(full, "a", MQ_GGML_F32, 1, na, a, NULL), MQ_OK);
    cr_assert_eq(mq_gguf_add_tensor(full, "empty", MQ_GGML_F32, 1, none, a, NULL), MQ_OK);
    cr_assert_eq(mq_gguf_add_tensor(full, "b", MQ_GGML_F32, 2, nb, b, NULL), MQ_OK);
    cr_assert_eq(mq_gguf_add_tensor(full, "c", MQ_GGML_Q8_0, 2, nc, c, NULL), MQ_OK);
    cr_assert_eq(mq_gguf_declare_tensor(decl, "a", MQ_GGML_F32, 1, na, NULL), MQ_OK);
    cr_assert_eq(mq_gguf_declare_tensor(decl, "empty", MQ_GGML_F32, 1, none, NULL), MQ_OK);
    cr_assert_eq(mq_gguf_declare_tensor(decl, "b", MQ_GGML_F32, 2, nb, NULL), MQ_OK);
    cr_assert_eq(mq_gguf_declare_tensor(decl, "c", MQ_GGML_Q8_0, 2, nc, NULL), MQ_OK);
    void *want;
    size_t want_len;
    cr_assert_eq(mq_gguf_write_mem(full, &want, &want_len, NULL), MQ_OK);
    mq_error_t err = {0};
    void *dummy;
    size_t dl;
    cr_assert_eq(mq_gguf_write_mem(decl, &dummy, &dl, &err), MQ_ERR_ARG, "declared, no data");

    char dir[] = "/tmp/mq-stream-XXXXXX", path[256];
    cr_assert(mkdtemp(dir));
    snprintf(path, sizeof path, "%s/s.gguf", dir);
    mq_gguf_stream_t *s;
    cr_assert_eq(mq_gguf_stream_begin(decl, path, &s, &err), MQ_OK, "%s", err.msg);
    /* a's bytes and the first 10 of b's in one piece, then b's rest and c in pieces of 7 */
    unsigned char joined[37 * 4 + 10];
    memcpy(joined, a, sizeof a);
    memcpy(joined + sizeof a, b, 10);
    cr_assert_eq(mq_gguf_stream_write(s, joined, sizeof joined, &err), MQ_OK, "%s", err.msg);
    unsigned char rest[256 * 4 - 10 + sizeof c];
    memcpy(rest, (const char *)b + 10, sizeof b - 10);
    memcpy(rest + sizeof b - 10, c, sizeof c);
    for (size_t off = 0; off < sizeof rest; off += 7)
        cr_assert_eq(mq_gguf_stream_write(s, rest + off,
                                          off + 7 < sizeof rest ? 7 : sizeof rest - off, &err),
                     MQ_OK, "%s", err.msg);
    cr_assert_eq(mq_gguf_stream_write(s, c, 1, &err), MQ_ERR_ARG, "past the last tensor");
    cr_assert_eq(mq_gguf_stream_end(s, &err), MQ_OK, "%s", err.msg);
    char *got;
    size_t got_len;
    cr_assert_eq(mq_read_file(path, 0, &got, &got_len, NULL), MQ_OK);
    cr_assert(got_len == want_len && !memcmp(got, want, want_len), "%zu bytes, want %zu", got_len,
              want_len);
    free(got);

    /* short of bytes: refused, the file from before still there */
    cr_assert_eq(mq_gguf_stream_begin(decl, path, &s, &err), MQ_OK);
    cr_assert_eq(mq_gguf_stream_write(s, a, sizeof a, &err), MQ_OK);
    cr_assert_eq(mq_gguf_stream_end(s, &err), MQ_ERR_ARG);
    cr_assert(strstr(err.msg, "tensor b"), "%s", err.msg);
    cr_assert_eq(mq_gguf_stream_begin(decl, path, &s, &err), MQ_OK);
    mq_gguf_stream_abort(s);
    cr_assert_eq(mq_read_file(path, 0, &got, &got_len, NULL), MQ_OK);
    cr_assert(got_len == want_len && !memcmp(got, want, want_len));
    free(got);
    DIR *d = opendir(dir);
    int entries = 0;
    for (struct dirent *e; (e = readdir(d));)
        entries += e->d_name[0] != '.';
    closedir(d);
    cr_assert_eq(entries, 1, "no temporary file left behind");
    remove(path);
    remove(dir);
    free(want);
    mq_gguf_free(full);
    mq_gguf_free(decl);
}
