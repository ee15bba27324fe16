/* miniquant: GGUF version 3 files (ggml's docs/gguf.md), read and written.
 *
 * A mq_gguf_t is a whole file in memory: metadata key/values of every GGUF value type (arrays
 * included), tensor infos and tensor data. Reading checks every length, count, offset and
 * dimension against the file's size and against overflow before using it: a truncated,
 * corrupted or hostile file gives MQ_ERR_FORMAT with a message naming the file, the byte offset
 * and what was wrong, never a crash. Writing goes through a temporary file renamed into place.
 *
 * Byte order is little-endian. Tensor data is aligned to general.alignment (default 32).
 *
 * What the reader accepts, where GGUF leaves room: general.alignment must be a u32 and a nonzero
 * power of two (as ggml checks); nested arrays are rejected; keys and tensor names may not hold
 * NUL bytes (string values may); a dimension may be 0 (as in ggml); tensors may sit in any
 * order with gaps, but must be aligned, must not overlap, and the file must hold each tensor's
 * data and its padding to the alignment. The writer lays tensors out in order, each at the next
 * multiple of the alignment, and pads the end of the file to it, as ggml's writer does; a file
 * without tensors ends right after its metadata (it has no data section to align). */
#ifndef MINIQUANT_GGUF_H
#define MINIQUANT_GGUF_H

#include <stddef.h>
#include <stdint.h>

#include "miniquant/error.h"

#define MQ_GGUF_MAGIC 0x46554747u /* "GGUF" read as a little-endian uint32 */
#define MQ_GGUF_VERSION 3
#define MQ_GGUF_DEFAULT_ALIGNMENT 32
#define MQ_GGUF_MAX_DIMS 4

/* Metadata value types, numbered as in the GGUF specification. */
typedef enum mq_gguf_vtype {
    MQ_GGUF_UINT8 = 0,
    MQ_GGUF_INT8 = 1,
    MQ_GGUF_UINT16 = 2,
    MQ_GGUF_INT16 = 3,
    MQ_GGUF_UINT32 = 4,
    MQ_GGUF_INT32 = 5,
    MQ_GGUF_FLOAT32 = 6,
    MQ_GGUF_BOOL = 7,
    MQ_GGUF_STRING = 8,
    MQ_GGUF_ARRAY = 9,
    MQ_GGUF_UINT64 = 10,
    MQ_GGUF_INT64 = 11,
    MQ_GGUF_FLOAT64 = 12,
    MQ_GGUF_VTYPE_COUNT
} mq_gguf_vtype_t;

/* Tensor data types, numbered as ggml's enum ggml_type. */
typedef enum mq_ggml_type {
    MQ_GGML_F32 = 0,
    MQ_GGML_F16 = 1,
    MQ_GGML_Q4_0 = 2,
    MQ_GGML_Q4_1 = 3,
    MQ_GGML_Q5_0 = 6,
    MQ_GGML_Q5_1 = 7,
    MQ_GGML_Q8_0 = 8,
    MQ_GGML_Q8_1 = 9,
    MQ_GGML_Q2_K = 10,
    MQ_GGML_Q3_K = 11,
    MQ_GGML_Q4_K = 12,
    MQ_GGML_Q5_K = 13,
    MQ_GGML_Q6_K = 14,
    MQ_GGML_Q8_K = 15,
    MQ_GGML_IQ2_XXS = 16,
    MQ_GGML_IQ2_XS = 17,
    MQ_GGML_IQ3_XXS = 18,
    MQ_GGML_IQ1_S = 19,
    MQ_GGML_IQ4_NL = 20,
    MQ_GGML_IQ3_S = 21,
    MQ_GGML_IQ2_S = 22,
    MQ_GGML_IQ4_XS = 23,
    MQ_GGML_I8 = 24, /* plain int8 elements: miniquant's packed codes (see export.h) */
    MQ_GGML_I16 = 25,
    MQ_GGML_I32 = 26,
    MQ_GGML_I64 = 27,
    MQ_GGML_F64 = 28,
    MQ_GGML_IQ1_M = 29,
    MQ_GGML_BF16 = 30,
    MQ_GGML_TQ1_0 = 34,
    MQ_GGML_TQ2_0 = 35,
} mq_ggml_type_t;

/* One row per tensor type a GGUF file may hold: ggml's type traits (block size and bytes), so
 * that the container reads any file; which types a model may hold is the format table's
 * business (format.h). */
typedef struct mq_ggml_type_info {
    int type;          /* mq_ggml_type_t */
    const char *name;  /* ggml's name: "f32", "q4_0", "q6_K", "iq4_nl", ... */
    int block_size;    /* elements per block (1 for f32/f16) */
    size_t type_size;  /* bytes per block */
} mq_ggml_type_info_t;

/* The traits of a type, or NULL for a type miniquant does not know. */
const mq_ggml_type_info_t *mq_ggml_type_info(int type);

/* A string as GGUF stores it: length-prefixed, may hold any bytes. ptr is NUL-terminated too. */
typedef struct mq_gguf_str {
    const char *ptr;
    uint64_t len;
} mq_gguf_str_t;

typedef struct mq_gguf_tensor {
    const char *name;
    int type;                     /* mq_ggml_type_t */
    int n_dims;                   /* 1..MQ_GGUF_MAX_DIMS */
    int64_t ne[MQ_GGUF_MAX_DIMS]; /* ne[0] is the contiguous (innermost) dimension, as in ggml;
                                     unused dimensions are 1. A Linear W[out][in] has
                                     ne = {in, out}. */
    uint64_t offset;              /* offset of the data within the data section: as read, or,
                                     once tensors are added or general.alignment is set,
                                     where the writer will put it */
    size_t nbytes;                /* bytes of data */
    const void *data;             /* the tensor's bytes, aligned in memory to at least
                                     min(16, alignment) */
} mq_gguf_tensor_t;

typedef struct mq_gguf mq_gguf_t;

/* An empty file (no keys, no tensors). NULL when out of memory. */
mq_gguf_t *mq_gguf_new(void);
void mq_gguf_free(mq_gguf_t *g);

/* Reads and validates a whole GGUF file. A regular file of MQ_GGUF_MAP_MIN bytes or more is
 * mapped (mmap, private) instead of copied, so tensor data is read from the page cache as it is
 * first used; a smaller one is read into memory. Either way the result owns the bytes and the
 * tensors point into them. */
#define MQ_GGUF_MAP_MIN ((size_t)1 << 20)
int mq_gguf_read(const char *path, mq_gguf_t **out, mq_error_t *err);
/* 1 when g's bytes are a mapping of its file. */
int mq_gguf_mapped(const mq_gguf_t *g);
/* A mapped file's pages of tensor t given back to the system once it has been read (they are
 * read again from the file if touched), so that reading a file larger than memory tensor by
 * tensor keeps only the tensors in use resident. Nothing for a file read into memory. The
 * tensor's data must not have been written to. */
void mq_gguf_release_tensor(const mq_gguf_t *g, const mq_gguf_tensor_t *t);
/* The same from a buffer; name is used in messages. The buffer is copied. */
int mq_gguf_read_mem(const void *buf, size_t len, const char *name, mq_gguf_t **out,
                     mq_error_t *err);

/* Writes the file crash-safely (temporary file + rename). */
int mq_gguf_write(const mq_gguf_t *g, const char *path, mq_error_t *err);
/* Serializes to a malloc'd buffer (what mq_gguf_write would write). */
int mq_gguf_write_mem(const mq_gguf_t *g, void **buf, size_t *len, mq_error_t *err);

/* Writing a file whose tensors do not fit in memory: declare them (mq_gguf_declare_tensor),
 * begin the stream (the header and the metadata are written), write every tensor's bytes in
 * declaration order, in pieces of any size (the padding between tensors is added), then end it
 * (crash-safe, as mq_gguf_write) or abort it (the destination untouched). g must outlive the
 * stream and not change. */
typedef struct mq_gguf_stream mq_gguf_stream_t;
int mq_gguf_stream_begin(const mq_gguf_t *g, const char *path, mq_gguf_stream_t **out,
                         mq_error_t *err);
int mq_gguf_stream_write(mq_gguf_stream_t *s, const void *data, size_t n, mq_error_t *err);
/* MQ_ERR_ARG (and the stream aborted) when a tensor is short of bytes. Frees s. */
int mq_gguf_stream_end(mq_gguf_stream_t *s, mq_error_t *err);
void mq_gguf_stream_abort(mq_gguf_stream_t *s);

/* ---- metadata ---- */

/* Setters add the key, or replace the value of an existing key with the same name (keeping its
 * place in the key order). They return MQ_OK, MQ_ERR_ARG or MQ_ERR_NOMEM; on failure g is
 * unchanged. */
int mq_gguf_set_u8(mq_gguf_t *g, const char *key, uint8_t v);
int mq_gguf_set_i8(mq_gguf_t *g, const char *key, int8_t v);
int mq_gguf_set_u16(mq_gguf_t *g, const char *key, uint16_t v);
int mq_gguf_set_i16(mq_gguf_t *g, const char *key, int16_t v);
int mq_gguf_set_u32(mq_gguf_t *g, const char *key, uint32_t v);
int mq_gguf_set_i32(mq_gguf_t *g, const char *key, int32_t v);
int mq_gguf_set_u64(mq_gguf_t *g, const char *key, uint64_t v);
int mq_gguf_set_i64(mq_gguf_t *g, const char *key, int64_t v);
int mq_gguf_set_f32(mq_gguf_t *g, const char *key, float v);
int mq_gguf_set_f64(mq_gguf_t *g, const char *key, double v);
int mq_gguf_set_bool(mq_gguf_t *g, const char *key, int v);
int mq_gguf_set_str(mq_gguf_t *g, const char *key, const char *v);
/* An array of a numeric or bool element type; data holds n packed elements of that type. */
int mq_gguf_set_arr(mq_gguf_t *g, const char *key, int elem_type, const void *data, uint64_t n);
/* An array of strings (NUL-terminated). */
int mq_gguf_set_arr_str(mq_gguf_t *g, const char *key, const char *const *strs, uint64_t n);

int64_t mq_gguf_n_kv(const mq_gguf_t *g);
const char *mq_gguf_kv_key(const mq_gguf_t *g, int64_t i);
int mq_gguf_kv_type(const mq_gguf_t *g, int64_t i);     /* mq_gguf_vtype_t */
int mq_gguf_kv_arr_type(const mq_gguf_t *g, int64_t i); /* element type of an ARRAY */
/* Index of key, or -1 when absent. */
int64_t mq_gguf_find_key(const mq_gguf_t *g, const char *key);
/* The alignment in effect: general.alignment, or MQ_GGUF_DEFAULT_ALIGNMENT when absent. Setting
 * general.alignment to anything but a u32 nonzero power of two fails with MQ_ERR_ARG. */
size_t mq_gguf_alignment(const mq_gguf_t *g);

/* Typed getters: MQ_ERR_NOT_FOUND when the key is absent, MQ_ERR_FORMAT when its type does not
 * fit (messages name the key). Integer getters accept any integer type whose value fits; the
 * float getters accept f32 and f64 when the value converts exactly. */
int mq_gguf_get_u32(const mq_gguf_t *g, const char *key, uint32_t *out, mq_error_t *err);
int mq_gguf_get_i32(const mq_gguf_t *g, const char *key, int32_t *out, mq_error_t *err);
int mq_gguf_get_u64(const mq_gguf_t *g, const char *key, uint64_t *out, mq_error_t *err);
int mq_gguf_get_i64(const mq_gguf_t *g, const char *key, int64_t *out, mq_error_t *err);
int mq_gguf_get_f32(const mq_gguf_t *g, const char *key, float *out, mq_error_t *err);
int mq_gguf_get_f64(const mq_gguf_t *g, const char *key, double *out, mq_error_t *err);
int mq_gguf_get_bool(const mq_gguf_t *g, const char *key, int *out, mq_error_t *err);
int mq_gguf_get_str(const mq_gguf_t *g, const char *key, mq_gguf_str_t *out, mq_error_t *err);
/* A numeric/bool array: its element type, packed data and length (data stays owned by g). */
int mq_gguf_get_arr(const mq_gguf_t *g, const char *key, int *elem_type, const void **data,
                    uint64_t *n, mq_error_t *err);
/* A string array (owned by g). */
int mq_gguf_get_arr_str(const mq_gguf_t *g, const char *key, const mq_gguf_str_t **strs,
                        uint64_t *n, mq_error_t *err);

/* ---- tensors ---- */

/* Adds a tensor; data (mq_ggml row bytes x rows) is copied. ne[0] must be a multiple of the
 * type's block size. Names must be unique and shorter than 64 bytes (GGUF's limit). */
int mq_gguf_add_tensor(mq_gguf_t *g, const char *name, int type, int n_dims, const int64_t *ne,
                       const void *data, mq_error_t *err);
/* Adds a tensor's name, type and shape without data, for a stream to write. mq_gguf_write and
 * mq_gguf_write_mem refuse a file with such a tensor. */
int mq_gguf_declare_tensor(mq_gguf_t *g, const char *name, int type, int n_dims,
                           const int64_t *ne, mq_error_t *err);
int64_t mq_gguf_n_tensors(const mq_gguf_t *g);
/* The i-th tensor, or NULL when i is out of range. Valid until the next mq_gguf_add_tensor. */
const mq_gguf_tensor_t *mq_gguf_tensor(const mq_gguf_t *g, int64_t i);
/* The tensor named name, or NULL. */
const mq_gguf_tensor_t *mq_gguf_find_tensor(const mq_gguf_t *g, const char *name);

/* Bytes of a tensor of this type and shape, with overflow checks; MQ_ERR_FORMAT when ne[0] is
 * not a multiple of the block size, a dimension is negative, or the product overflows. */
int mq_ggml_nbytes(int type, int n_dims, const int64_t *ne, size_t *out, mq_error_t *err);

#endif
