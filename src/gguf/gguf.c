/* miniquant: GGUF version 3 files, read and written (contract in include/miniquant/gguf.h).
 *
 * Reading parses a whole file held in memory through one bounds-checked cursor: every count is
 * checked against the bytes that remain before anything is allocated for it, so a hostile file
 * cannot make miniquant allocate more than a small multiple of its own size. Writing runs one
 * serializer twice (once to measure, once to emit) so that the file and memory outputs cannot
 * drift apart. */
#include "miniquant/gguf.h"

#include <fcntl.h>
#include <float.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "miniquant/fileio.h"

/* Values and tensor data are kept in the file's byte order and used in place. */
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "miniquant's GGUF code assumes a little-endian host"
#endif

#define ALIGNMENT_KEY "general.alignment"
#define MAX_NAME 64 /* ggml's GGML_MAX_NAME: a tensor name and its NUL must fit in 64 bytes */
/* The fewest bytes a key/value (8 length + 4 type + 1 value) and a tensor info (8 length +
 * 4 n_dims + 8 ne + 4 type + 8 offset) can take: the bounds on n_kv and n_tensors. */
#define MIN_KV_BYTES 13
#define MIN_TENSOR_INFO_BYTES 32

/* ---- type tables ---- */

static const mq_ggml_type_info_t ggml_types[] = {
    {MQ_GGML_F32, "f32", 1, 4},
    {MQ_GGML_F16, "f16", 1, 2},
    {MQ_GGML_Q4_0, "q4_0", 32, 18}, /* fp16 scale + 16 bytes of nibbles */
    {MQ_GGML_Q4_1, "q4_1", 32, 20},
    {MQ_GGML_Q5_0, "q5_0", 32, 22},
    {MQ_GGML_Q5_1, "q5_1", 32, 24},
    {MQ_GGML_Q8_0, "q8_0", 32, 34}, /* fp16 scale + 32 int8 */
    {MQ_GGML_Q8_1, "q8_1", 32, 36},
    {MQ_GGML_Q2_K, "q2_K", 256, 84},
    {MQ_GGML_Q3_K, "q3_K", 256, 110},
    {MQ_GGML_Q4_K, "q4_K", 256, 144},
    {MQ_GGML_Q5_K, "q5_K", 256, 176},
    {MQ_GGML_Q6_K, "q6_K", 256, 210},
    {MQ_GGML_Q8_K, "q8_K", 256, 292},
    {MQ_GGML_IQ2_XXS, "iq2_xxs", 256, 66},
    {MQ_GGML_IQ2_XS, "iq2_xs", 256, 74},
    {MQ_GGML_IQ3_XXS, "iq3_xxs", 256, 98},
    {MQ_GGML_IQ1_S, "iq1_s", 256, 50},
    {MQ_GGML_IQ4_NL, "iq4_nl", 32, 18},
    {MQ_GGML_IQ3_S, "iq3_s", 256, 110},
    {MQ_GGML_IQ2_S, "iq2_s", 256, 82},
    {MQ_GGML_IQ4_XS, "iq4_xs", 256, 136},
    {MQ_GGML_I8, "i8", 1, 1}, /* miniquant's packed codes (export.h) */
    {MQ_GGML_I16, "i16", 1, 2},
    {MQ_GGML_I32, "i32", 1, 4},
    {MQ_GGML_I64, "i64", 1, 8},
    {MQ_GGML_F64, "f64", 1, 8},
    {MQ_GGML_IQ1_M, "iq1_m", 256, 56},
    {MQ_GGML_BF16, "bf16", 1, 2},
    {MQ_GGML_TQ1_0, "tq1_0", 256, 54},
    {MQ_GGML_TQ2_0, "tq2_0", 256, 66},
};

const mq_ggml_type_info_t *mq_ggml_type_info(int type) {
    for (size_t i = 0; i < sizeof ggml_types / sizeof ggml_types[0]; i++)
        if (ggml_types[i].type == type) return &ggml_types[i];
    return NULL;
}

/* Name and element size of each value type; STRING and ARRAY have no fixed size. */
/* clang-format off */
static const struct {
    const char *name;
    size_t size;
} vtypes[MQ_GGUF_VTYPE_COUNT] = {
    [MQ_GGUF_UINT8]   = {"u8", 1},
    [MQ_GGUF_INT8]    = {"i8", 1},
    [MQ_GGUF_UINT16]  = {"u16", 2},
    [MQ_GGUF_INT16]   = {"i16", 2},
    [MQ_GGUF_UINT32]  = {"u32", 4},
    [MQ_GGUF_INT32]   = {"i32", 4},
    [MQ_GGUF_FLOAT32] = {"f32", 4},
    [MQ_GGUF_BOOL]    = {"bool", 1},
    [MQ_GGUF_STRING]  = {"string", 0},
    [MQ_GGUF_ARRAY]   = {"array", 0},
    [MQ_GGUF_UINT64]  = {"u64", 8},
    [MQ_GGUF_INT64]   = {"i64", 8},
    [MQ_GGUF_FLOAT64] = {"f64", 8},
};
/* clang-format on */

static const char *vtype_name(int t) {
    return t >= 0 && t < MQ_GGUF_VTYPE_COUNT ? vtypes[t].name : "unknown";
}

static int is_fixed_vtype(int t) {
    return t >= 0 && t < MQ_GGUF_VTYPE_COUNT && vtypes[t].size > 0;
}

static int mul_overflows(size_t a, size_t b, size_t *out) {
    if (b && a > SIZE_MAX / b) return 1;
    *out = a * b;
    return 0;
}

/* Bytes from pos up to the next multiple of a (a power of two). */
static size_t pad_len(size_t pos, size_t a) {
    return (a - pos % a) % a;
}

/* n bytes copied into a new NUL-terminated buffer, or NULL when out of memory. */
static char *dup_bytes(const void *p, size_t n) {
    char *s = malloc(n + 1);
    if (!s) return NULL;
    if (n) memcpy(s, p, n);
    s[n] = '\0';
    return s;
}

static int is_valid_alignment(uint32_t a) {
    return a != 0 && (a & (a - 1)) == 0;
}

int mq_ggml_nbytes(int type, int n_dims, const int64_t *ne, size_t *out, mq_error_t *err) {
    const mq_ggml_type_info_t *ti = mq_ggml_type_info(type);
    if (!ti) return mq_error_set(err, MQ_ERR_FORMAT, "unknown tensor type %d", type);
    if (n_dims < 1 || n_dims > MQ_GGUF_MAX_DIMS)
        return mq_error_set(err, MQ_ERR_FORMAT, "n_dims %d is not in 1..%d", n_dims,
                            MQ_GGUF_MAX_DIMS);
    /* ggml requires the element count to fit in int64 as well as the bytes in size_t */
    int64_t nelem = 1;
    for (int j = 0; j < n_dims; j++) {
        if (ne[j] < 0)
            return mq_error_set(err, MQ_ERR_FORMAT, "ne[%d] = %lld is negative", j,
                                (long long)ne[j]);
        if (ne[j] && nelem > INT64_MAX / ne[j])
            return mq_error_set(err, MQ_ERR_FORMAT, "the element count overflows int64");
        nelem *= ne[j];
    }
    if (ne[0] % ti->block_size)
        return mq_error_set(err, MQ_ERR_FORMAT,
                            "ne[0] = %lld is not a multiple of %s's block size %d",
                            (long long)ne[0], ti->name, ti->block_size);
    size_t bytes;
    if (mul_overflows((size_t)(ne[0] / ti->block_size), ti->type_size, &bytes))
        return mq_error_set(err, MQ_ERR_FORMAT, "the byte size overflows");
    for (int j = 1; j < n_dims; j++)
        if (mul_overflows(bytes, (size_t)ne[j], &bytes))
            return mq_error_set(err, MQ_ERR_FORMAT, "the byte size overflows");
    *out = bytes;
    return MQ_OK;
}

/* ---- the in-memory file ---- */

typedef struct kv {
    char *key;
    int type;            /* mq_gguf_vtype_t */
    int arr_type;        /* element type of an ARRAY, -1 otherwise */
    uint64_t n;          /* elements: 1 for a scalar */
    void *data;          /* n packed elements of a fixed-size type */
    mq_gguf_str_t *strs; /* n strings, for STRING and arrays of STRING */
} kv_t;

typedef struct tensor {
    mq_gguf_tensor_t t;
    char *name; /* t.name */
    void *own;  /* the data of an added tensor; read tensors point into the file buffer */
} tensor_t;

struct mq_gguf {
    kv_t *kv;
    int64_t n_kv, cap_kv;
    tensor_t *tensors;
    int64_t n_tensors, cap_tensors;
    char *file;    /* the bytes a read file came from */
    size_t mapped; /* their length when mapped from the file (munmap), 0 when malloc'd */
};

mq_gguf_t *mq_gguf_new(void) {
    return calloc(1, sizeof(mq_gguf_t));
}

static void kv_free_value(kv_t *kv) {
    if (kv->strs)
        for (uint64_t i = 0; i < kv->n; i++)
            free((void *)kv->strs[i].ptr);
    free(kv->strs);
    free(kv->data);
    kv->strs = NULL;
    kv->data = NULL;
}

void mq_gguf_free(mq_gguf_t *g) {
    if (!g) return;
    for (int64_t i = 0; i < g->n_kv; i++) {
        free(g->kv[i].key);
        kv_free_value(&g->kv[i]);
    }
    for (int64_t i = 0; i < g->n_tensors; i++) {
        free(g->tensors[i].name);
        free(g->tensors[i].own);
    }
    free(g->kv);
    free(g->tensors);
    if (g->mapped)
        munmap(g->file, g->mapped);
    else
        free(g->file);
    free(g);
}

static const kv_t *find_kv(const mq_gguf_t *g, const char *key) {
    int64_t i = mq_gguf_find_key(g, key);
    return i < 0 ? NULL : &g->kv[i];
}

static size_t alignment_of(const mq_gguf_t *g) {
    const kv_t *kv = find_kv(g, ALIGNMENT_KEY);
    if (kv && kv->type == MQ_GGUF_UINT32) {
        uint32_t a;
        memcpy(&a, kv->data, 4);
        if (is_valid_alignment(a)) return a;
    }
    return MQ_GGUF_DEFAULT_ALIGNMENT;
}

/* The writer packs tensors in order, each starting at the next multiple of the alignment; this
 * keeps every tensor's offset equal to where the writer will put it. */
static void relayout(mq_gguf_t *g) {
    size_t a = alignment_of(g), off = 0;
    for (int64_t i = 0; i < g->n_tensors; i++) {
        g->tensors[i].t.offset = off;
        off += g->tensors[i].t.nbytes + pad_len(g->tensors[i].t.nbytes, a);
    }
}

/* ---- reading ---- */

typedef struct reader {
    const uint8_t *p;
    size_t len, pos;
    const char *name; /* the file's name, for messages */
    mq_error_t *err;
} reader_t;

static int fail(reader_t *r, size_t at, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int fail(reader_t *r, size_t at, const char *fmt, ...) {
    char msg[768];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return mq_error_set(r->err, MQ_ERR_FORMAT, "%s: offset %zu: %s", r->name, at, msg);
}

static int no_memory(reader_t *r) {
    return mq_error_set(r->err, MQ_ERR_NOMEM, "%s: out of memory", r->name);
}

static size_t left(const reader_t *r) {
    return r->len - r->pos;
}

static int read_raw(reader_t *r, void *dst, size_t n, const char *what) {
    if (n > left(r)) {
        memset(dst, 0, n); /* a defined value even on failure, for the compiler's flow analysis */
        return fail(r, r->pos, "truncated: %s needs %zu bytes, %zu remain", what, n, left(r));
    }
    memcpy(dst, r->p + r->pos, n);
    r->pos += n;
    return MQ_OK;
}

static int read_u32(reader_t *r, uint32_t *v, const char *what) {
    return read_raw(r, v, 4, what);
}
static int read_u64(reader_t *r, uint64_t *v, const char *what) {
    return read_raw(r, v, 8, what);
}

/* A GGUF string (u64 length, bytes), returned malloc'd with a NUL appended. */
static int read_str(reader_t *r, mq_gguf_str_t *s, const char *what) {
    size_t at = r->pos;
    uint64_t n;
    int rc = read_u64(r, &n, what);
    if (rc) return rc;
    if (n > left(r))
        return fail(r, at, "%s: string length %llu is more than the %zu bytes that remain", what,
                    (unsigned long long)n, left(r));
    char *buf = dup_bytes(r->p + r->pos, (size_t)n);
    if (!buf) return no_memory(r);
    r->pos += n;
    s->ptr = buf;
    s->len = n;
    return MQ_OK;
}

/* n elements of type et; count_at is where the count (or, for a scalar, the value) starts. */
static int read_elems(reader_t *r, kv_t *kv, int et, uint64_t n, size_t count_at,
                      const char *what) {
    if (et == MQ_GGUF_STRING) {
        if (n > left(r) / 8)
            return fail(r, count_at, "%s: %llu strings cannot fit in the %zu bytes that remain",
                        what, (unsigned long long)n, left(r));
        kv->strs = calloc(n ? n : 1, sizeof *kv->strs);
        if (!kv->strs) return no_memory(r);
        kv->n = n;
        for (uint64_t i = 0; i < n; i++) {
            int rc = read_str(r, &kv->strs[i], what);
            if (rc) return rc;
        }
        return MQ_OK;
    }
    size_t size = vtypes[et].size;
    if (n > left(r) / size)
        return fail(r, count_at, "truncated: %s needs %llu x %zu bytes, %zu remain", what,
                    (unsigned long long)n, size, left(r));
    kv->data = malloc(n ? n * size : 1);
    if (!kv->data) return no_memory(r);
    kv->n = n;
    const uint8_t *src = r->p + r->pos;
    if (et == MQ_GGUF_BOOL)
        for (uint64_t i = 0; i < n; i++)
            if (src[i] > 1)
                return fail(r, r->pos + i, "%s: bool value %u is neither 0 nor 1", what, src[i]);
    memcpy(kv->data, src, n * size);
    r->pos += n * size;
    return MQ_OK;
}

static int read_kv(reader_t *r, kv_t *kv) {
    size_t at = r->pos;
    mq_gguf_str_t key = {NULL, 0};
    int rc = read_str(r, &key, "key");
    if (rc) return rc;
    kv->key = (char *)key.ptr;
    if (strlen(kv->key) != key.len) return fail(r, at, "key contains a NUL byte");
    char what[160];
    snprintf(what, sizeof what, "key '%.100s'", kv->key);

    size_t type_at = r->pos;
    uint32_t type;
    if ((rc = read_u32(r, &type, what))) return rc;
    if (type >= MQ_GGUF_VTYPE_COUNT)
        return fail(r, type_at, "%s: unknown value type %u", what, type);
    kv->type = (int)type;
    kv->arr_type = -1;
    int et = (int)type;
    uint64_t n = 1;
    if (type == MQ_GGUF_ARRAY) {
        size_t et_at = r->pos;
        uint32_t t;
        if ((rc = read_u32(r, &t, what))) return rc;
        if (t >= MQ_GGUF_VTYPE_COUNT)
            return fail(r, et_at, "%s: unknown array element type %u", what, t);
        if (t == MQ_GGUF_ARRAY) return fail(r, et_at, "%s: nested arrays are not supported", what);
        kv->arr_type = et = (int)t;
        if ((rc = read_u64(r, &n, what))) return rc;
    }
    size_t value_at = r->pos - (type == MQ_GGUF_ARRAY ? 8 : 0);
    if ((rc = read_elems(r, kv, et, n, value_at, what))) return rc;

    if (strcmp(kv->key, ALIGNMENT_KEY) == 0) {
        if (kv->type != MQ_GGUF_UINT32)
            return fail(r, type_at, "%s is of type %s; it must be u32", ALIGNMENT_KEY,
                        vtype_name(kv->type));
        uint32_t a;
        memcpy(&a, kv->data, 4);
        if (!is_valid_alignment(a))
            return fail(r, value_at, "%s = %u is not a nonzero power of two", ALIGNMENT_KEY, a);
    }
    return MQ_OK;
}

/* Where a tensor info's fields sit in the file, for messages about checks made later. */
typedef struct info_pos {
    size_t name_at, ne_at, offset_at;
} info_pos_t;

static int read_tensor_info(reader_t *r, tensor_t *te, info_pos_t *pos) {
    pos->name_at = r->pos;
    mq_gguf_str_t name = {NULL, 0};
    int rc = read_str(r, &name, "tensor name");
    if (rc) return rc;
    te->name = (char *)name.ptr;
    te->t.name = te->name;
    if (name.len >= MAX_NAME)
        return fail(r, pos->name_at, "tensor name '%.64s...' is %llu bytes; at most %d allowed",
                    te->name, (unsigned long long)name.len, MAX_NAME - 1);
    if (strlen(te->name) != name.len)
        return fail(r, pos->name_at, "tensor name contains a NUL byte");
    char what[96];
    snprintf(what, sizeof what, "tensor '%s'", te->name);

    size_t at = r->pos;
    uint32_t n_dims;
    if ((rc = read_u32(r, &n_dims, what))) return rc;
    if (n_dims < 1 || n_dims > MQ_GGUF_MAX_DIMS)
        return fail(r, at, "%s: n_dims %u is not in 1..%d", what, n_dims, MQ_GGUF_MAX_DIMS);
    te->t.n_dims = (int)n_dims;
    pos->ne_at = r->pos;
    for (int j = 0; j < MQ_GGUF_MAX_DIMS; j++) {
        uint64_t v = 1;
        at = r->pos;
        if (j < (int)n_dims && (rc = read_u64(r, &v, what))) return rc;
        if (v > INT64_MAX)
            return fail(r, at, "%s: ne[%d] = %llu is larger than int64 allows", what, j,
                        (unsigned long long)v);
        te->t.ne[j] = (int64_t)v;
    }

    at = r->pos;
    uint32_t type;
    if ((rc = read_u32(r, &type, what))) return rc;
    if (!mq_ggml_type_info((int)type)) return fail(r, at, "%s: unknown tensor type %u", what, type);
    te->t.type = (int)type;
    mq_error_t e;
    if (mq_ggml_nbytes(te->t.type, te->t.n_dims, te->t.ne, &te->t.nbytes, &e))
        return fail(r, pos->ne_at, "%s: %s", what, e.msg);

    pos->offset_at = r->pos;
    return read_u64(r, &te->t.offset, what);
}

typedef struct by_name {
    const char *name;
    int64_t i;
} by_name_t;

static int cmp_by_name(const void *a, const void *b) {
    const by_name_t *x = a, *y = b;
    int c = strcmp(x->name, y->name);
    return c ? c : (x->i > y->i) - (x->i < y->i);
}

/* The index of the later of two equal names, or -1; sorting keeps this O(n log n) for files
 * with very many keys or tensors. */
static int64_t find_duplicate(by_name_t *v, int64_t n) {
    qsort(v, (size_t)n, sizeof *v, cmp_by_name);
    int64_t dup = -1;
    for (int64_t i = 1; i < n; i++)
        if (strcmp(v[i - 1].name, v[i].name) == 0 && (dup < 0 || v[i].i < dup)) dup = v[i].i;
    return dup;
}

typedef struct by_offset {
    uint64_t offset;
    size_t nbytes;
    int64_t i;
} by_offset_t;

static int cmp_by_offset(const void *a, const void *b) {
    const by_offset_t *x = a, *y = b;
    if (x->offset != y->offset) return x->offset < y->offset ? -1 : 1;
    return (x->i > y->i) - (x->i < y->i);
}

static int check_keys(reader_t *r, mq_gguf_t *g, const size_t *key_at) {
    by_name_t *v = malloc((size_t)(g->n_kv ? g->n_kv : 1) * sizeof *v);
    if (!v) return no_memory(r);
    for (int64_t i = 0; i < g->n_kv; i++)
        v[i] = (by_name_t){g->kv[i].key, i};
    int64_t d = find_duplicate(v, g->n_kv);
    free(v);
    if (d >= 0) return fail(r, key_at[d], "duplicate key '%.100s'", g->kv[d].key);
    return MQ_OK;
}

/* Names, alignment, bounds and overlap of the tensors, once the data section's start is known. */
static int check_tensors(reader_t *r, mq_gguf_t *g, const info_pos_t *pos, size_t alignment) {
    size_t info_end = r->pos, data_start = info_end + pad_len(info_end, alignment);
    /* A file without tensors has no data section, and writers (ggml's among them, e.g. for
     * llama.cpp's vocabulary-only files) may end it without the padding. */
    if (g->n_tensors == 0 && data_start > r->len) data_start = r->len;
    if (data_start > r->len)
        return fail(r, info_end, "truncated: the data section starts at %zu, the file ends at %zu",
                    data_start, r->len);
    size_t data_len = r->len - data_start;
    int64_t n = g->n_tensors;
    for (int64_t i = 0; i < n; i++) {
        mq_gguf_tensor_t *t = &g->tensors[i].t;
        if (t->offset % alignment)
            return fail(r, pos[i].offset_at, "tensor '%s': offset %llu is not a multiple of %s %zu",
                        t->name, (unsigned long long)t->offset, ALIGNMENT_KEY, alignment);
        if (t->offset > data_len || t->nbytes > data_len - t->offset)
            return fail(r, pos[i].offset_at,
                        "tensor '%s': %zu bytes at offset %llu run past the end of the %zu-byte "
                        "data section",
                        t->name, t->nbytes, (unsigned long long)t->offset, data_len);
        size_t end = (size_t)t->offset + t->nbytes;
        if (pad_len(end, alignment) > data_len - end)
            return fail(r, pos[i].offset_at,
                        "tensor '%s': truncated: its padding to %zu bytes "
                        "runs past the end of the file",
                        t->name, alignment);
        t->data = r->p + data_start + t->offset;
    }

    int rc = MQ_OK;
    size_t cap = (size_t)(n ? n : 1);
    by_name_t *names = malloc(cap * sizeof *names);
    by_offset_t *offs = malloc(cap * sizeof *offs);
    if (!names || !offs) {
        rc = no_memory(r);
        goto done;
    }
    for (int64_t i = 0; i < n; i++) {
        names[i] = (by_name_t){g->tensors[i].t.name, i};
        offs[i] = (by_offset_t){g->tensors[i].t.offset, g->tensors[i].t.nbytes, i};
    }
    int64_t d = find_duplicate(names, n);
    if (d >= 0) {
        rc = fail(r, pos[d].name_at, "duplicate tensor name '%s'", g->tensors[d].t.name);
        goto done;
    }
    qsort(offs, (size_t)n, sizeof *offs, cmp_by_offset);
    uint64_t end = 0;
    int64_t owner = -1;
    for (int64_t k = 0; k < n; k++) {
        if (offs[k].nbytes == 0) continue;
        if (owner >= 0 && offs[k].offset < end) {
            rc = fail(r, pos[offs[k].i].offset_at, "tensor '%s' overlaps tensor '%s'",
                      g->tensors[offs[k].i].t.name, g->tensors[owner].t.name);
            goto done;
        }
        if (offs[k].offset + offs[k].nbytes > end) {
            end = offs[k].offset + offs[k].nbytes;
            owner = offs[k].i;
        }
    }
done:
    free(names);
    free(offs);
    return rc;
}

static int parse(reader_t *r, mq_gguf_t *g) {
    uint32_t magic, version;
    uint64_t n_tensors, n_kv;
    int rc = read_u32(r, &magic, "magic");
    if (rc) return rc;
    if (magic != MQ_GGUF_MAGIC) {
        const uint8_t *m = r->p;
        return fail(r, 0, "bad magic %02x %02x %02x %02x (not a GGUF file)", m[0], m[1], m[2],
                    m[3]);
    }
    if ((rc = read_u32(r, &version, "version"))) return rc;
    if (version != MQ_GGUF_VERSION)
        return fail(r, 4, "GGUF version %u is not supported (only %d)", version, MQ_GGUF_VERSION);
    if ((rc = read_u64(r, &n_tensors, "tensor count"))) return rc;
    if ((rc = read_u64(r, &n_kv, "key/value count"))) return rc;
    if (n_tensors > left(r) / MIN_TENSOR_INFO_BYTES)
        return fail(r, 8, "%llu tensors cannot fit in the %zu bytes that remain",
                    (unsigned long long)n_tensors, left(r));
    if (n_kv > left(r) / MIN_KV_BYTES)
        return fail(r, 16, "%llu key/values cannot fit in the %zu bytes that remain",
                    (unsigned long long)n_kv, left(r));

    size_t *key_at = malloc((size_t)(n_kv ? n_kv : 1) * sizeof *key_at);
    info_pos_t *pos = malloc((size_t)(n_tensors ? n_tensors : 1) * sizeof *pos);
    g->kv = calloc((size_t)(n_kv ? n_kv : 1), sizeof *g->kv);
    g->tensors = calloc((size_t)(n_tensors ? n_tensors : 1), sizeof *g->tensors);
    if (!key_at || !pos || !g->kv || !g->tensors) {
        rc = no_memory(r);
        goto done;
    }
    g->cap_kv = (int64_t)n_kv;
    g->cap_tensors = (int64_t)n_tensors;
    for (uint64_t i = 0; i < n_kv; i++) {
        key_at[i] = r->pos;
        g->n_kv++; /* counted before filling so that mq_gguf_free releases a half-read entry */
        if ((rc = read_kv(r, &g->kv[i]))) goto done;
    }
    if ((rc = check_keys(r, g, key_at))) goto done;
    for (uint64_t i = 0; i < n_tensors; i++) {
        g->n_tensors++;
        if ((rc = read_tensor_info(r, &g->tensors[i], &pos[i]))) goto done;
    }
    rc = check_tensors(r, g, pos, alignment_of(g));
done:
    free(key_at);
    free(pos);
    return rc;
}

/* Parses buf (len bytes, owned by the result on success and on failure; mapped: buf is a
 * mapping of len bytes, else malloc'd). */
static int read_owned(char *buf, size_t len, int mapped, const char *name, mq_gguf_t **out,
                      mq_error_t *err) {
    *out = NULL;
    mq_gguf_t *g = mq_gguf_new();
    if (!g) {
        if (mapped)
            munmap(buf, len);
        else
            free(buf);
        return mq_error_set(err, MQ_ERR_NOMEM, "%s: out of memory", name);
    }
    g->file = buf;
    g->mapped = mapped ? len : 0;
    reader_t r = {(const uint8_t *)buf, len, 0, name, err};
    int rc = parse(&r, g);
    if (rc) {
        mq_gguf_free(g);
        return rc;
    }
    *out = g;
    return MQ_OK;
}

/* A regular file of at least MQ_GGUF_MAP_MIN bytes, mapped privately (pages read when first
 * touched, written copies private); NULL when it is smaller, not regular or cannot be mapped,
 * and the caller reads it instead. */
static char *map_file(const char *path, size_t *len) {
    int fd = open(path, O_RDONLY);
    if (fd < 0) return NULL;
    struct stat st;
    void *p = MAP_FAILED;
    if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && (uint64_t)st.st_size >= MQ_GGUF_MAP_MIN &&
        (uint64_t)st.st_size <= SIZE_MAX) {
        *len = (size_t)st.st_size;
        p = mmap(NULL, *len, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
    }
    close(fd);
    return p == MAP_FAILED ? NULL : p;
}

int mq_gguf_read(const char *path, mq_gguf_t **out, mq_error_t *err) {
    char *buf;
    size_t len;
    *out = NULL;
    if ((buf = map_file(path, &len))) return read_owned(buf, len, 1, path, out, err);
    int rc = mq_read_file(path, 0, &buf, &len, err);
    if (rc) return rc;
    return read_owned(buf, len, 0, path, out, err);
}

int mq_gguf_mapped(const mq_gguf_t *g) {
    return g && g->mapped > 0;
}

int mq_gguf_read_mem(const void *buf, size_t len, const char *name, mq_gguf_t **out,
                     mq_error_t *err) {
    *out = NULL;
    if (!name) name = "<memory>";
    if (!buf && len) return mq_error_set(err, MQ_ERR_ARG, "%s: NULL buffer", name);
    char *copy = malloc(len + 1);
    if (!copy) return mq_error_set(err, MQ_ERR_NOMEM, "%s: out of memory", name);
    if (len) memcpy(copy, buf, len);
    return read_owned(copy, len, 0, name, out, err);
}

void mq_gguf_release_tensor(const mq_gguf_t *g, const mq_gguf_tensor_t *t) {
    if (!g->mapped || !t || !t->data) return;
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    uintptr_t a = (uintptr_t)t->data, e = a + t->nbytes;
    uintptr_t a0 = (a + page - 1) / page * page, e0 = e / page * page;
    /* only pages that lie wholly inside the tensor; a private mapping reads them again from the
     * file if they are touched later */
    if (e0 > a0) madvise((void *)a0, e0 - a0, MADV_DONTNEED);
}

/* ---- writing ---- */

/* Emits to a buffer, to a file, or (both NULL) only counts bytes. */
typedef struct writer {
    uint8_t *buf;
    FILE *fp;
    size_t pos;
    int failed;
} writer_t;

static void put(writer_t *w, const void *p, size_t n) {
    if (!n) return;
    if (w->buf)
        memcpy(w->buf + w->pos, p, n);
    else if (w->fp && !w->failed && fwrite(p, 1, n, w->fp) != n)
        w->failed = 1;
    w->pos += n;
}

static void put_u32(writer_t *w, uint32_t v) {
    put(w, &v, 4);
}
static void put_u64(writer_t *w, uint64_t v) {
    put(w, &v, 8);
}

static void put_str(writer_t *w, const char *s, uint64_t len) {
    put_u64(w, len);
    put(w, s, (size_t)len);
}

static void put_padding(writer_t *w, size_t a) {
    static const uint8_t zeros[256];
    for (size_t n = pad_len(w->pos, a); n > 0;) {
        size_t k = n < sizeof zeros ? n : sizeof zeros;
        put(w, zeros, k);
        n -= k;
    }
}

/* Everything before the first tensor's data: the header, the metadata, the tensor infos and the
 * data section's alignment. */
static void serialize_header(const mq_gguf_t *g, writer_t *w) {
    size_t a = alignment_of(g);
    put_u32(w, MQ_GGUF_MAGIC);
    put_u32(w, MQ_GGUF_VERSION);
    put_u64(w, (uint64_t)g->n_tensors);
    put_u64(w, (uint64_t)g->n_kv);
    for (int64_t i = 0; i < g->n_kv; i++) {
        const kv_t *kv = &g->kv[i];
        put_str(w, kv->key, strlen(kv->key));
        put_u32(w, (uint32_t)kv->type);
        int et = kv->type;
        if (kv->type == MQ_GGUF_ARRAY) {
            et = kv->arr_type;
            put_u32(w, (uint32_t)et);
            put_u64(w, kv->n);
        }
        if (et == MQ_GGUF_STRING)
            for (uint64_t j = 0; j < kv->n; j++)
                put_str(w, kv->strs[j].ptr, kv->strs[j].len);
        else
            put(w, kv->data, (size_t)kv->n * vtypes[et].size);
    }
    /* Offsets are recomputed rather than taken from t.offset so that a file read with gaps
     * between tensors is written packed. */
    size_t off = 0;
    for (int64_t i = 0; i < g->n_tensors; i++) {
        const mq_gguf_tensor_t *t = &g->tensors[i].t;
        put_str(w, t->name, strlen(t->name));
        put_u32(w, (uint32_t)t->n_dims);
        for (int j = 0; j < t->n_dims; j++)
            put_u64(w, (uint64_t)t->ne[j]);
        put_u32(w, (uint32_t)t->type);
        put_u64(w, off);
        off += t->nbytes + pad_len(t->nbytes, a);
    }
    /* A file without tensors has no data section to align: it ends after its metadata, as
     * ggml's vocabulary-only files do (and a general.alignment of 2^31 read from a small file
     * does not make its copy 2 GiB). */
    if (g->n_tensors) put_padding(w, a);
}

static void serialize(const mq_gguf_t *g, writer_t *w) {
    size_t a = alignment_of(g);
    serialize_header(g, w);
    for (int64_t i = 0; i < g->n_tensors; i++) {
        put(w, g->tensors[i].t.data, g->tensors[i].t.nbytes);
        put_padding(w, a);
    }
}

int mq_gguf_write_mem(const mq_gguf_t *g, void **buf, size_t *len, mq_error_t *err) {
    *buf = NULL;
    *len = 0;
    for (int64_t i = 0; i < g->n_tensors; i++)
        if (!g->tensors[i].t.data && g->tensors[i].t.nbytes)
            return mq_error_set(err, MQ_ERR_ARG, "tensor %s has no data (write it by stream)",
                                g->tensors[i].t.name);
    writer_t count = {0};
    serialize(g, &count);
    writer_t w = {malloc(count.pos ? count.pos : 1), NULL, 0, 0};
    if (!w.buf) return mq_error_set(err, MQ_ERR_NOMEM, "cannot allocate %zu bytes", count.pos);
    serialize(g, &w);
    *buf = w.buf;
    *len = w.pos;
    return MQ_OK;
}

int mq_gguf_write(const mq_gguf_t *g, const char *path, mq_error_t *err) {
    for (int64_t i = 0; i < g->n_tensors; i++)
        if (!g->tensors[i].t.data && g->tensors[i].t.nbytes)
            return mq_error_set(err, MQ_ERR_ARG, "%s: tensor %s has no data (write it by stream)",
                                path, g->tensors[i].t.name);
    mq_atomic_file_t f;
    int rc = mq_atomic_open(&f, path, err);
    if (rc) return rc;
    writer_t w = {NULL, f.fp, 0, 0};
    serialize(g, &w);
    if (w.failed) {
        mq_atomic_abort(&f);
        return mq_error_set(err, MQ_ERR_IO, "%s: write failed", path);
    }
    return mq_atomic_commit(&f, err);
}

struct mq_gguf_stream {
    const mq_gguf_t *g;
    mq_atomic_file_t f;
    writer_t w;
    int64_t tensor; /* the tensor being written */
    size_t done;    /* its bytes written so far */
};

int mq_gguf_stream_begin(const mq_gguf_t *g, const char *path, mq_gguf_stream_t **out,
                         mq_error_t *err) {
    *out = NULL;
    mq_gguf_stream_t *s = calloc(1, sizeof *s);
    if (!s) return mq_error_set(err, MQ_ERR_NOMEM, "out of memory");
    int rc = mq_atomic_open(&s->f, path, err);
    if (rc) {
        free(s);
        return rc;
    }
    s->g = g;
    s->w = (writer_t){NULL, s->f.fp, 0, 0};
    serialize_header(g, &s->w);
    if (s->w.failed) {
        mq_gguf_stream_abort(s);
        return mq_error_set(err, MQ_ERR_IO, "%s: write failed", path);
    }
    *out = s;
    return MQ_OK;
}

int mq_gguf_stream_write(mq_gguf_stream_t *s, const void *data, size_t n, mq_error_t *err) {
    const mq_gguf_t *g = s->g;
    size_t a = alignment_of(g);
    while (n > 0) {
        if (s->tensor >= g->n_tensors)
            return mq_error_set(err, MQ_ERR_ARG, "%s: %zu bytes past the last tensor", s->f.path,
                                n);
        size_t left = g->tensors[s->tensor].t.nbytes - s->done, k = n < left ? n : left;
        put(&s->w, data, k);
        data = (const char *)data + k;
        n -= k;
        s->done += k;
        if (s->done == g->tensors[s->tensor].t.nbytes) {
            put_padding(&s->w, a);
            s->tensor++;
            s->done = 0;
        }
    }
    if (s->w.failed) return mq_error_set(err, MQ_ERR_IO, "%s: write failed", s->f.path);
    return MQ_OK;
}

int mq_gguf_stream_end(mq_gguf_stream_t *s, mq_error_t *err) {
    /* tensors of no bytes are complete without a write */
    while (s->tensor < s->g->n_tensors && s->g->tensors[s->tensor].t.nbytes == 0) {
        put_padding(&s->w, alignment_of(s->g));
        s->tensor++;
    }
    int rc;
    if (s->tensor < s->g->n_tensors) {
        rc = mq_error_set(err, MQ_ERR_ARG, "%s: tensor %s was not written", s->f.path,
                          s->g->tensors[s->tensor].t.name);
        mq_gguf_stream_abort(s);
        return rc;
    }
    if (s->w.failed) {
        rc = mq_error_set(err, MQ_ERR_IO, "%s: write failed", s->f.path);
        mq_gguf_stream_abort(s);
        return rc;
    }
    rc = mq_atomic_commit(&s->f, err);
    free(s);
    return rc;
}

void mq_gguf_stream_abort(mq_gguf_stream_t *s) {
    if (!s) return;
    mq_atomic_abort(&s->f);
    free(s);
}

/* ---- metadata ---- */

/* Sets key to a value of type (arr_type for arrays): n packed elements at data, or n strings
 * at strs. The value is built in full before the old one is dropped, so a failure leaves g
 * unchanged. */
static int set_kv(mq_gguf_t *g, const char *key, int type, int arr_type, const void *data,
                  uint64_t n, const char *const *strs) {
    if (!g || !key) return MQ_ERR_ARG;
    int et = type == MQ_GGUF_ARRAY ? arr_type : type;
    if (et == MQ_GGUF_STRING ? (n && !strs) : (!is_fixed_vtype(et) || (n && !data)))
        return MQ_ERR_ARG;
    if (strcmp(key, ALIGNMENT_KEY) == 0) {
        uint32_t a = 0;
        if (type == MQ_GGUF_UINT32) memcpy(&a, data, 4);
        if (!is_valid_alignment(a)) return MQ_ERR_ARG;
    }
    kv_t v = {NULL, type, type == MQ_GGUF_ARRAY ? arr_type : -1, n, NULL, NULL};
    if (et == MQ_GGUF_STRING) {
        for (uint64_t i = 0; i < n; i++)
            if (!strs[i]) return MQ_ERR_ARG;
        if (n > SIZE_MAX / sizeof *v.strs) return MQ_ERR_NOMEM;
        v.strs = calloc((size_t)(n ? n : 1), sizeof *v.strs);
        if (!v.strs) return MQ_ERR_NOMEM;
        for (uint64_t i = 0; i < n; i++) {
            v.strs[i].len = strlen(strs[i]);
            v.strs[i].ptr = dup_bytes(strs[i], v.strs[i].len);
            if (!v.strs[i].ptr) {
                kv_free_value(&v);
                return MQ_ERR_NOMEM;
            }
        }
    } else {
        size_t bytes;
        if (n > SIZE_MAX || mul_overflows((size_t)n, vtypes[et].size, &bytes)) return MQ_ERR_NOMEM;
        v.data = malloc(bytes ? bytes : 1);
        if (!v.data) return MQ_ERR_NOMEM;
        if (bytes) memcpy(v.data, data, bytes);
        if (et == MQ_GGUF_BOOL) /* a GGUF bool is exactly 0 or 1 */
            for (size_t i = 0; i < bytes; i++)
                ((uint8_t *)v.data)[i] = ((uint8_t *)v.data)[i] != 0;
    }

    int64_t i = mq_gguf_find_key(g, key);
    if (i >= 0) {
        v.key = g->kv[i].key;
        kv_free_value(&g->kv[i]);
        g->kv[i] = v;
    } else {
        if (g->n_kv == g->cap_kv) {
            int64_t cap = g->cap_kv ? 2 * g->cap_kv : 16;
            kv_t *p = realloc(g->kv, (size_t)cap * sizeof *p);
            if (!p) {
                kv_free_value(&v);
                return MQ_ERR_NOMEM;
            }
            g->kv = p;
            g->cap_kv = cap;
        }
        v.key = dup_bytes(key, strlen(key));
        if (!v.key) {
            kv_free_value(&v);
            return MQ_ERR_NOMEM;
        }
        g->kv[g->n_kv++] = v;
    }
    if (strcmp(key, ALIGNMENT_KEY) == 0) relayout(g);
    return MQ_OK;
}

int mq_gguf_set_u8(mq_gguf_t *g, const char *key, uint8_t v) {
    return set_kv(g, key, MQ_GGUF_UINT8, -1, &v, 1, NULL);
}
int mq_gguf_set_i8(mq_gguf_t *g, const char *key, int8_t v) {
    return set_kv(g, key, MQ_GGUF_INT8, -1, &v, 1, NULL);
}
int mq_gguf_set_u16(mq_gguf_t *g, const char *key, uint16_t v) {
    return set_kv(g, key, MQ_GGUF_UINT16, -1, &v, 1, NULL);
}
int mq_gguf_set_i16(mq_gguf_t *g, const char *key, int16_t v) {
    return set_kv(g, key, MQ_GGUF_INT16, -1, &v, 1, NULL);
}
int mq_gguf_set_u32(mq_gguf_t *g, const char *key, uint32_t v) {
    return set_kv(g, key, MQ_GGUF_UINT32, -1, &v, 1, NULL);
}
int mq_gguf_set_i32(mq_gguf_t *g, const char *key, int32_t v) {
    return set_kv(g, key, MQ_GGUF_INT32, -1, &v, 1, NULL);
}
int mq_gguf_set_u64(mq_gguf_t *g, const char *key, uint64_t v) {
    return set_kv(g, key, MQ_GGUF_UINT64, -1, &v, 1, NULL);
}
int mq_gguf_set_i64(mq_gguf_t *g, const char *key, int64_t v) {
    return set_kv(g, key, MQ_GGUF_INT64, -1, &v, 1, NULL);
}
int mq_gguf_set_f32(mq_gguf_t *g, const char *key, float v) {
    return set_kv(g, key, MQ_GGUF_FLOAT32, -1, &v, 1, NULL);
}
int mq_gguf_set_f64(mq_gguf_t *g, const char *key, double v) {
    return set_kv(g, key, MQ_GGUF_FLOAT64, -1, &v, 1, NULL);
}
int mq_gguf_set_bool(mq_gguf_t *g, const char *key, int v) {
    uint8_t b = v != 0;
    return set_kv(g, key, MQ_GGUF_BOOL, -1, &b, 1, NULL);
}
int mq_gguf_set_str(mq_gguf_t *g, const char *key, const char *v) {
    if (!v) return MQ_ERR_ARG;
    return set_kv(g, key, MQ_GGUF_STRING, -1, NULL, 1, &v);
}
int mq_gguf_set_arr(mq_gguf_t *g, const char *key, int elem_type, const void *data, uint64_t n) {
    if (!is_fixed_vtype(elem_type)) return MQ_ERR_ARG;
    return set_kv(g, key, MQ_GGUF_ARRAY, elem_type, data, n, NULL);
}
int mq_gguf_set_arr_str(mq_gguf_t *g, const char *key, const char *const *strs, uint64_t n) {
    return set_kv(g, key, MQ_GGUF_ARRAY, MQ_GGUF_STRING, NULL, n, strs);
}

int64_t mq_gguf_n_kv(const mq_gguf_t *g) {
    return g->n_kv;
}

const char *mq_gguf_kv_key(const mq_gguf_t *g, int64_t i) {
    return i >= 0 && i < g->n_kv ? g->kv[i].key : NULL;
}

int mq_gguf_kv_type(const mq_gguf_t *g, int64_t i) {
    return i >= 0 && i < g->n_kv ? g->kv[i].type : -1;
}

int mq_gguf_kv_arr_type(const mq_gguf_t *g, int64_t i) {
    return i >= 0 && i < g->n_kv ? g->kv[i].arr_type : -1;
}

int64_t mq_gguf_find_key(const mq_gguf_t *g, const char *key) {
    if (!g || !key) return -1;
    for (int64_t i = 0; i < g->n_kv; i++)
        if (strcmp(g->kv[i].key, key) == 0) return i;
    return -1;
}

size_t mq_gguf_alignment(const mq_gguf_t *g) {
    return alignment_of(g);
}

static void describe_type(const kv_t *kv, char *buf, size_t size) {
    if (kv->type == MQ_GGUF_ARRAY)
        snprintf(buf, size, "an array of %s", vtype_name(kv->arr_type));
    else
        snprintf(buf, size, "%s", vtype_name(kv->type));
}

static int lookup(const mq_gguf_t *g, const char *key, const kv_t **kv, mq_error_t *err) {
    *kv = find_kv(g, key);
    if (!*kv) return mq_error_set(err, MQ_ERR_NOT_FOUND, "key '%s' not found", key ? key : "");
    return MQ_OK;
}

static int wrong_type(const kv_t *kv, const char *wanted, mq_error_t *err) {
    char have[48];
    describe_type(kv, have, sizeof have);
    return mq_error_set(err, MQ_ERR_FORMAT, "key '%s' is %s, not %s", kv->key, have, wanted);
}

/* An integer value as sign and magnitude, so that every range check below is exact. */
static int int_value(const mq_gguf_t *g, const char *key, const char *wanted, int *neg,
                     uint64_t *mag, mq_error_t *err) {
    const kv_t *kv;
    int rc = lookup(g, key, &kv, err);
    if (rc) return rc;
    int64_t s = 0;
    uint64_t u = 0;
    int is_signed = 1;
    switch (kv->type) {
    case MQ_GGUF_UINT8:
        u = *(const uint8_t *)kv->data;
        is_signed = 0;
        break;
    case MQ_GGUF_UINT16:
        u = *(const uint16_t *)kv->data;
        is_signed = 0;
        break;
    case MQ_GGUF_UINT32:
        u = *(const uint32_t *)kv->data;
        is_signed = 0;
        break;
    case MQ_GGUF_UINT64:
        u = *(const uint64_t *)kv->data;
        is_signed = 0;
        break;
    case MQ_GGUF_INT8: s = *(const int8_t *)kv->data; break;
    case MQ_GGUF_INT16: s = *(const int16_t *)kv->data; break;
    case MQ_GGUF_INT32: s = *(const int32_t *)kv->data; break;
    case MQ_GGUF_INT64: s = *(const int64_t *)kv->data; break;
    default: return wrong_type(kv, wanted, err);
    }
    *neg = is_signed && s < 0;
    *mag = !is_signed ? u : s < 0 ? (uint64_t)(-(s + 1)) + 1 : (uint64_t)s;
    return MQ_OK;
}

static int no_fit(const char *key, int neg, uint64_t mag, const char *wanted, mq_error_t *err) {
    return mq_error_set(err, MQ_ERR_FORMAT, "key '%s': value %s%llu does not fit in %s", key,
                        neg ? "-" : "", (unsigned long long)mag, wanted);
}

int mq_gguf_get_u32(const mq_gguf_t *g, const char *key, uint32_t *out, mq_error_t *err) {
    int neg;
    uint64_t mag;
    int rc = int_value(g, key, "an integer", &neg, &mag, err);
    if (rc) return rc;
    if (neg || mag > UINT32_MAX) return no_fit(key, neg, mag, "u32", err);
    *out = (uint32_t)mag;
    return MQ_OK;
}

int mq_gguf_get_u64(const mq_gguf_t *g, const char *key, uint64_t *out, mq_error_t *err) {
    int neg;
    uint64_t mag;
    int rc = int_value(g, key, "an integer", &neg, &mag, err);
    if (rc) return rc;
    if (neg) return no_fit(key, neg, mag, "u64", err);
    *out = mag;
    return MQ_OK;
}

int mq_gguf_get_i64(const mq_gguf_t *g, const char *key, int64_t *out, mq_error_t *err) {
    int neg;
    uint64_t mag;
    int rc = int_value(g, key, "an integer", &neg, &mag, err);
    if (rc) return rc;
    if (mag > (uint64_t)INT64_MAX + neg) return no_fit(key, neg, mag, "i64", err);
    *out = neg ? -(int64_t)(mag - 1) - 1 : (int64_t)mag;
    return MQ_OK;
}

int mq_gguf_get_i32(const mq_gguf_t *g, const char *key, int32_t *out, mq_error_t *err) {
    int neg;
    uint64_t mag;
    int rc = int_value(g, key, "an integer", &neg, &mag, err);
    if (rc) return rc;
    if (mag > (uint64_t)INT32_MAX + neg) return no_fit(key, neg, mag, "i32", err);
    *out = (int32_t)(neg ? -(int64_t)mag : (int64_t)mag);
    return MQ_OK;
}

int mq_gguf_get_f64(const mq_gguf_t *g, const char *key, double *out, mq_error_t *err) {
    const kv_t *kv;
    int rc = lookup(g, key, &kv, err);
    if (rc) return rc;
    if (kv->type == MQ_GGUF_FLOAT64) {
        memcpy(out, kv->data, 8);
    } else if (kv->type == MQ_GGUF_FLOAT32) {
        float f;
        memcpy(&f, kv->data, 4);
        *out = f;
    } else {
        return wrong_type(kv, "f32 or f64", err);
    }
    return MQ_OK;
}

int mq_gguf_get_f32(const mq_gguf_t *g, const char *key, float *out, mq_error_t *err) {
    const kv_t *kv;
    int rc = lookup(g, key, &kv, err);
    if (rc) return rc;
    if (kv->type == MQ_GGUF_FLOAT32) {
        memcpy(out, kv->data, 4);
        return MQ_OK;
    }
    if (kv->type != MQ_GGUF_FLOAT64) return wrong_type(kv, "f32", err);
    double d;
    memcpy(&d, kv->data, 8);
    /* an f64 is accepted only when no precision is lost (NaN included) */
    if (!isnan(d) && !isinf(d) && (d > FLT_MAX || d < -FLT_MAX || (double)(float)d != d))
        return mq_error_set(err, MQ_ERR_FORMAT, "key '%s': f64 value %.17g is not exactly an f32",
                            key, d);
    *out = (float)d;
    return MQ_OK;
}

int mq_gguf_get_bool(const mq_gguf_t *g, const char *key, int *out, mq_error_t *err) {
    const kv_t *kv;
    int rc = lookup(g, key, &kv, err);
    if (rc) return rc;
    if (kv->type != MQ_GGUF_BOOL) return wrong_type(kv, "bool", err);
    *out = *(const uint8_t *)kv->data;
    return MQ_OK;
}

int mq_gguf_get_str(const mq_gguf_t *g, const char *key, mq_gguf_str_t *out, mq_error_t *err) {
    const kv_t *kv;
    int rc = lookup(g, key, &kv, err);
    if (rc) return rc;
    if (kv->type != MQ_GGUF_STRING) return wrong_type(kv, "string", err);
    *out = kv->strs[0];
    return MQ_OK;
}

int mq_gguf_get_arr(const mq_gguf_t *g, const char *key, int *elem_type, const void **data,
                    uint64_t *n, mq_error_t *err) {
    const kv_t *kv;
    int rc = lookup(g, key, &kv, err);
    if (rc) return rc;
    if (kv->type != MQ_GGUF_ARRAY || kv->arr_type == MQ_GGUF_STRING)
        return wrong_type(kv, "a numeric or bool array", err);
    *elem_type = kv->arr_type;
    *data = kv->data;
    *n = kv->n;
    return MQ_OK;
}

int mq_gguf_get_arr_str(const mq_gguf_t *g, const char *key, const mq_gguf_str_t **strs,
                        uint64_t *n, mq_error_t *err) {
    const kv_t *kv;
    int rc = lookup(g, key, &kv, err);
    if (rc) return rc;
    if (kv->type != MQ_GGUF_ARRAY || kv->arr_type != MQ_GGUF_STRING)
        return wrong_type(kv, "an array of string", err);
    *strs = kv->strs;
    *n = kv->n;
    return MQ_OK;
}

/* ---- tensors ---- */

/* A tensor with a copy of data, or (declared only) without data. */
static int add_tensor(mq_gguf_t *g, const char *name, int type, int n_dims, const int64_t *ne,
                      const void *data, int declared, mq_error_t *err) {
    if (!g || !name || !ne) return mq_error_set(err, MQ_ERR_ARG, "NULL argument");
    size_t len = strlen(name);
    if (len >= MAX_NAME)
        return mq_error_set(err, MQ_ERR_ARG, "tensor name '%s' is %zu bytes; at most %d allowed",
                            name, len, MAX_NAME - 1);
    if (mq_gguf_find_tensor(g, name))
        return mq_error_set(err, MQ_ERR_ARG, "duplicate tensor name '%s'", name);
    if (n_dims < 1 || n_dims > MQ_GGUF_MAX_DIMS)
        return mq_error_set(err, MQ_ERR_ARG, "tensor '%s': n_dims %d is not in 1..%d", name, n_dims,
                            MQ_GGUF_MAX_DIMS);
    tensor_t te = {{0}, NULL, NULL};
    te.t.type = type;
    te.t.n_dims = n_dims;
    for (int j = 0; j < MQ_GGUF_MAX_DIMS; j++)
        te.t.ne[j] = j < n_dims ? ne[j] : 1;
    mq_error_t e;
    if (mq_ggml_nbytes(type, n_dims, te.t.ne, &te.t.nbytes, &e))
        return mq_error_set(err, MQ_ERR_ARG, "tensor '%s': %s", name, e.msg);
    if (!declared && !data && te.t.nbytes)
        return mq_error_set(err, MQ_ERR_ARG, "tensor '%s': NULL data", name);

    if (g->n_tensors == g->cap_tensors) {
        int64_t cap = g->cap_tensors ? 2 * g->cap_tensors : 16;
        tensor_t *p = realloc(g->tensors, (size_t)cap * sizeof *p);
        if (!p) return mq_error_set(err, MQ_ERR_NOMEM, "out of memory");
        g->tensors = p;
        g->cap_tensors = cap;
    }
    te.name = dup_bytes(name, len);
    te.own = declared ? NULL : malloc(te.t.nbytes ? te.t.nbytes : 1);
    if (!te.name || (!declared && !te.own)) {
        free(te.name);
        free(te.own);
        return mq_error_set(err, MQ_ERR_NOMEM, "tensor '%s': cannot allocate %zu bytes", name,
                            te.t.nbytes);
    }
    if (te.own && te.t.nbytes) memcpy(te.own, data, te.t.nbytes);
    te.t.name = te.name;
    te.t.data = te.own;
    g->tensors[g->n_tensors++] = te;
    relayout(g);
    return MQ_OK;
}

int mq_gguf_add_tensor(mq_gguf_t *g, const char *name, int type, int n_dims, const int64_t *ne,
                       const void *data, mq_error_t *err) {
    return add_tensor(g, name, type, n_dims, ne, data, 0, err);
}

int mq_gguf_declare_tensor(mq_gguf_t *g, const char *name, int type, int n_dims, const int64_t *ne,
                           mq_error_t *err) {
    return add_tensor(g, name, type, n_dims, ne, NULL, 1, err);
}

int64_t mq_gguf_n_tensors(const mq_gguf_t *g) {
    return g->n_tensors;
}

const mq_gguf_tensor_t *mq_gguf_tensor(const mq_gguf_t *g, int64_t i) {
    return i >= 0 && i < g->n_tensors ? &g->tensors[i].t : NULL;
}

const mq_gguf_tensor_t *mq_gguf_find_tensor(const mq_gguf_t *g, const char *name) {
    if (!g || !name) return NULL;
    for (int64_t i = 0; i < g->n_tensors; i++)
        if (strcmp(g->tensors[i].t.name, name) == 0) return &g->tensors[i].t;
    return NULL;
}
