/* ggml's Q8_0 and Q4_0 blocks (ggml-common.h: block_q8_0, block_q4_0) and miniquant's packed
 * codes. Blocks are read and written byte by byte: a block is 34 or 18 bytes, so its FP16 scale
 * is not aligned for a uint16_t load in every block of a tensor. */
#include <string.h>

#include "miniquant/export.h"

static inline mq_fp16_t load_half(const uint8_t *p) {
    return (mq_fp16_t)(p[0] | (p[1] << 8));
}

static inline void store_half(uint8_t *p, mq_fp16_t h) {
    p[0] = (uint8_t)(h & 0xff);
    p[1] = (uint8_t)(h >> 8);
}

void mq_q8_0_encode(const int8_t *codes, const mq_fp16_t *d, size_t nb, void *blocks) {
    uint8_t *b = blocks;
    for (size_t i = 0; i < nb; i++, b += MQ_Q8_0_BLOCK_BYTES) {
        store_half(b, d[i]);
        memcpy(b + 2, codes + i * MQ_QBLOCK, MQ_QBLOCK);
    }
}

void mq_q8_0_decode(const void *blocks, size_t nb, int8_t *codes, mq_fp16_t *d) {
    const uint8_t *b = blocks;
    for (size_t i = 0; i < nb; i++, b += MQ_Q8_0_BLOCK_BYTES) {
        d[i] = load_half(b);
        memcpy(codes + i * MQ_QBLOCK, b + 2, MQ_QBLOCK);
    }
}

void mq_q4_0_encode(const int8_t *codes, const mq_fp16_t *d, size_t nb, void *blocks) {
    enum { H = MQ_QBLOCK / 2 };
    uint8_t *b = blocks;
    for (size_t i = 0; i < nb; i++, b += MQ_Q4_0_BLOCK_BYTES) {
        const int8_t *c = codes + i * MQ_QBLOCK;
        store_half(b, d[i]);
        for (int j = 0; j < H; j++)
            b[2 + j] = (uint8_t)(((c[j] + 8) & 0x0f) | (((c[j + H] + 8) & 0x0f) << 4));
    }
}

void mq_q4_0_decode(const void *blocks, size_t nb, int8_t *codes, mq_fp16_t *d) {
    enum { H = MQ_QBLOCK / 2 };
    const uint8_t *b = blocks;
    for (size_t i = 0; i < nb; i++, b += MQ_Q4_0_BLOCK_BYTES) {
        int8_t *c = codes + i * MQ_QBLOCK;
        d[i] = load_half(b);
        for (int j = 0; j < H; j++) {
            c[j] = (int8_t)((b[2 + j] & 0x0f) - 8);
            c[j + H] = (int8_t)((b[2 + j] >> 4) - 8);
        }
    }
}

void mq_q8_0_dequantize(const void *blocks, size_t nb, float *y) {
    const uint8_t *b = blocks;
    for (size_t i = 0; i < nb; i++, b += MQ_Q8_0_BLOCK_BYTES) {
        float d = mq_fp16_to_fp32(load_half(b));
        for (int j = 0; j < MQ_QBLOCK; j++)
            y[i * MQ_QBLOCK + j] = (float)(int8_t)b[2 + j] * d;
    }
}

void mq_q4_0_dequantize(const void *blocks, size_t nb, float *y) {
    enum { H = MQ_QBLOCK / 2 };
    const uint8_t *b = blocks;
    for (size_t i = 0; i < nb; i++, b += MQ_Q4_0_BLOCK_BYTES) {
        float d = mq_fp16_to_fp32(load_half(b));
        for (int j = 0; j < H; j++) {
            y[i * MQ_QBLOCK + j] = (float)((b[2 + j] & 0x0f) - 8) * d;
            y[i * MQ_QBLOCK + j + H] = (float)((b[2 + j] >> 4) - 8) * d;
        }
    }
}

size_t mq_packed_bytes(size_t n, int bits) {
    return (n * (size_t)bits + 7) / 8;
}

/* Fields go into a 16-bit window so that one that straddles a byte boundary is two stores. */
void mq_pack_fields(const uint8_t *fields, size_t n, int bits, uint8_t *out) {
    memset(out, 0, mq_packed_bytes(n, bits));
    unsigned mask = (1u << bits) - 1;
    for (size_t i = 0; i < n; i++) {
        size_t bit = i * (size_t)bits;
        unsigned v = (fields[i] & mask) << (bit % 8);
        out[bit / 8] |= (uint8_t)(v & 0xff);
        if ((bit % 8) + (size_t)bits > 8) out[bit / 8 + 1] |= (uint8_t)(v >> 8);
    }
}

int mq_unpack_fields(const uint8_t *in, size_t n, int bits, uint8_t *fields) {
    unsigned mask = (1u << bits) - 1;
    for (size_t i = 0; i < n; i++) {
        size_t bit = i * (size_t)bits;
        unsigned v = in[bit / 8];
        if ((bit % 8) + (size_t)bits > 8) v |= (unsigned)in[bit / 8 + 1] << 8;
        fields[i] = (uint8_t)((v >> (bit % 8)) & mask);
    }
    size_t used = n * (size_t)bits, nbytes = mq_packed_bytes(n, bits);
    if (used % 8 && (in[nbytes - 1] >> (used % 8)) != 0) return -1;
    return 0;
}
