/* The GGUF reader on arbitrary bytes.
 *
 * A file it accepts is then read the way the loaders read it: every key through every typed
 * getter, every tensor's bytes touched (so ASan checks they lie inside the file). It must also
 * survive a round trip: written again and read back, it is the same file, and writing that
 * gives the same bytes. */
#include "fuzz.h"
#include "miniquant/gguf.h"

static void read_every_key(const mq_gguf_t *g) {
    for (int64_t i = 0; i < mq_gguf_n_kv(g); i++) {
        const char *key = mq_gguf_kv_key(g, i);
        FUZZ_CHECK(key && mq_gguf_find_key(g, key) == i, "key %lld", (long long)i);
        mq_error_t err = {0};
        uint32_t u32;
        int32_t i32;
        uint64_t u64, n;
        int64_t i64;
        float f32;
        double f64;
        int b, et;
        mq_gguf_str_t s;
        const void *data;
        const mq_gguf_str_t *strs;
        /* each getter either fits the value's type or says why not */
        int rcs[] = {
            mq_gguf_get_u32(g, key, &u32, &err),
            mq_gguf_get_i32(g, key, &i32, &err),
            mq_gguf_get_u64(g, key, &u64, &err),
            mq_gguf_get_i64(g, key, &i64, &err),
            mq_gguf_get_f32(g, key, &f32, &err),
            mq_gguf_get_f64(g, key, &f64, &err),
            mq_gguf_get_bool(g, key, &b, &err),
            mq_gguf_get_str(g, key, &s, &err),
            mq_gguf_get_arr(g, key, &et, &data, &n, &err),
            mq_gguf_get_arr_str(g, key, &strs, &n, &err),
        };
        for (size_t k = 0; k < sizeof rcs / sizeof rcs[0]; k++)
            FUZZ_CHECK(rcs[k] == MQ_OK || rcs[k] == MQ_ERR_FORMAT, "getter %zu of '%s': %d", k,
                       key, rcs[k]);
        if (mq_gguf_get_str(g, key, &s, NULL) == MQ_OK)
            FUZZ_CHECK(s.ptr[s.len] == '\0', "string of '%s' is not terminated", key);
        if (mq_gguf_get_arr_str(g, key, &strs, &n, NULL) == MQ_OK)
            for (uint64_t k = 0; k < n; k++)
                FUZZ_CHECK(strs[k].ptr[strs[k].len] == '\0', "string %llu of '%s'",
                           (unsigned long long)k, key);
    }
    mq_gguf_alignment(g);
}

static unsigned touch_tensors(const mq_gguf_t *g) {
    unsigned sum = 0;
    for (int64_t i = 0; i < mq_gguf_n_tensors(g); i++) {
        const mq_gguf_tensor_t *t = mq_gguf_tensor(g, i);
        size_t nbytes;
        FUZZ_CHECK(mq_ggml_nbytes(t->type, t->n_dims, t->ne, &nbytes, NULL) == MQ_OK &&
                       nbytes == t->nbytes,
                   "tensor '%s': %zu bytes", t->name, t->nbytes);
        FUZZ_CHECK(mq_gguf_find_tensor(g, t->name) == t, "tensor '%s' is not found by name",
                   t->name);
        const uint8_t *p = t->data;
        for (size_t k = 0; k < t->nbytes; k++)
            sum += p[k];
    }
    return sum;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    mq_gguf_t *g = fuzz_read_gguf(data, size);
    if (!g) return 0;
    mq_error_t err = {0};
    read_every_key(g);
    unsigned sum = touch_tensors(g);

    void *buf = NULL, *buf2 = NULL;
    size_t len = 0, len2 = 0;
    FUZZ_CHECK(mq_gguf_write_mem(g, &buf, &len, &err) == MQ_OK, "write: %s", err.msg);
    mq_gguf_t *g2 = NULL;
    FUZZ_CHECK(mq_gguf_read_mem(buf, len, "rewritten", &g2, &err) == MQ_OK,
               "the rewritten file does not read back: %s", err.msg);
    FUZZ_CHECK(mq_gguf_n_kv(g2) == mq_gguf_n_kv(g) && mq_gguf_n_tensors(g2) == mq_gguf_n_tensors(g),
               "the rewritten file has other keys or tensors");
    for (int64_t i = 0; i < mq_gguf_n_kv(g); i++)
        FUZZ_CHECK(!strcmp(mq_gguf_kv_key(g, i), mq_gguf_kv_key(g2, i)) &&
                       mq_gguf_kv_type(g, i) == mq_gguf_kv_type(g2, i) &&
                       mq_gguf_kv_arr_type(g, i) == mq_gguf_kv_arr_type(g2, i),
                   "key %lld changed", (long long)i);
    for (int64_t i = 0; i < mq_gguf_n_tensors(g); i++) {
        const mq_gguf_tensor_t *a = mq_gguf_tensor(g, i), *b = mq_gguf_tensor(g2, i);
        FUZZ_CHECK(!strcmp(a->name, b->name) && a->type == b->type && a->n_dims == b->n_dims &&
                       !memcmp(a->ne, b->ne, sizeof a->ne) && a->nbytes == b->nbytes &&
                       (!a->nbytes || !memcmp(a->data, b->data, a->nbytes)),
                   "tensor '%s' changed", a->name);
    }
    FUZZ_CHECK(touch_tensors(g2) == sum, "tensor data changed");
    FUZZ_CHECK(mq_gguf_write_mem(g2, &buf2, &len2, &err) == MQ_OK, "write: %s", err.msg);
    FUZZ_CHECK(len2 == len && !memcmp(buf, buf2, len), "writing is not idempotent");
    free(buf);
    free(buf2);
    mq_gguf_free(g2);
    mq_gguf_free(g);
    return 0;
}
