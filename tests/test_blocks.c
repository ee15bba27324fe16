/* ggml's block formats that miniquant reads (and, for some, writes): each one dequantized from
 * blocks worked out by hand. Every block is built here from its logical content (codes, scales, mins) by a packer
 * written from ggml-common.h's layouts, and every weight's expected value is computed from that
 * content weight by weight, not by walking the bytes as the dequantizer does. Scales are powers
 * of two and codes small integers, so every expected value is exact whatever the order of the
 * operations. A few weights per format are also checked against numbers worked out by hand. */
#include <criterion/criterion.h>
#include <math.h>
#include <string.h>

#include "miniquant/format.h"
#include "miniquant/gguf.h"

#define H_0_125 0x3000u
#define H_0_25 0x3400u
#define H_0_5 0x3800u
#define H_1 0x3c00u
#define H_M2 0xc000u /* -2 */

static const int8_t BOOK[16] = {-127, -104, -83, -65, -49, -35, -22, -10,
                                1,    13,   25,  38,  53,  69,  89,  113};

static void put_half(uint8_t *p, unsigned h) {
    p[0] = (uint8_t)(h & 0xff);
    p[1] = (uint8_t)(h >> 8);
}

/* The format's dequantization of n weights at src. */
static void dequantize(const char *name, const uint8_t *src, int n, float *y) {
    const mq_format_t *f = mq_format_by_name(name);
    cr_assert_not_null(f, "no format %s", name);
    f->dequantize_row(src, NULL, NULL, n, n, y);
}

static void assert_values(const char *name, const float *got, const float *want, int n) {
    for (int i = 0; i < n; i++)
        cr_assert(got[i] == want[i], "%s weight %d: %.9g, expected %.9g", name, i,
                  (double)got[i], (double)want[i]);
}

/* A deterministic byte pattern. */
static uint8_t pattern(int i, int salt) {
    return (uint8_t)((i * 73 + salt * 29 + (i >> 3) * 11) & 0xff);
}

Test(blocks, bf16_is_the_top_half_of_fp32) {
    const uint8_t b[] = {0x80, 0x3f, 0xc0, 0xc0, 0x49, 0x40, 0x00, 0x80, 0x80, 0x7f};
    float y[5];
    dequantize("bf16", b, 5, y);
    /* 0x3f80 -> 1.0; 0xc0c0 -> -6.0; 0x4049 -> 3.140625; 0x8000 -> -0.0; 0x7f80 -> inf */
    const float want[5] = {1.0f, -6.0f, 3.140625f, -0.0f, __builtin_inff()};
    assert_values("bf16", y, want, 5);
    cr_assert(signbit(y[3]), "-0.0 keeps its sign");
}

/* q4_1: d, m, 16 bytes; weight j < 16 the low nibble of byte j, j + 16 the high one. */
Test(blocks, q4_1) {
    uint8_t b[2 * 20];
    float y[64], want[64];
    for (int k = 0; k < 2; k++) {
        uint8_t *blk = b + 20 * k;
        put_half(blk, k ? H_0_25 : H_0_5);
        put_half(blk + 2, H_M2);
        for (int j = 0; j < 16; j++) {
            int lo = (j + k) & 15, hi = (15 - j) & 15;
            blk[4 + j] = (uint8_t)(lo | hi << 4);
            want[32 * k + j] = (float)lo * (k ? 0.25f : 0.5f) - 2.0f;
            want[32 * k + j + 16] = (float)hi * (k ? 0.25f : 0.5f) - 2.0f;
        }
    }
    dequantize("q4_1", b, 64, y);
    assert_values("q4_1", y, want, 64);
    /* by hand: weight 3 = 3 * 0.5 - 2 = -0.5; weight 16 = 15 * 0.5 - 2 = 5.5; weight 33 of the
     * second block = 2 * 0.25 - 2 = -1.5 */
    cr_assert(y[3] == -0.5f && y[16] == 5.5f && y[33] == -1.5f);
}

/* q5_0 and q5_1: the fifth bit of weight j is bit j of the 32-bit qh. */
static void q5_block(uint8_t *blk, int with_min, unsigned d, unsigned m, uint32_t qh,
                     const uint8_t *qs) {
    put_half(blk, d);
    int at = 2;
    if (with_min) {
        put_half(blk + 2, m);
        at = 4;
    }
    for (int i = 0; i < 4; i++)
        blk[at + i] = (uint8_t)(qh >> (8 * i));
    memcpy(blk + at + 4, qs, 16);
}

static int q5_code(uint32_t qh, const uint8_t *qs, int w) {
    int nib = w < 16 ? qs[w] & 15 : qs[w - 16] >> 4;
    return nib | (int)((qh >> w) & 1) << 4;
}

Test(blocks, q5_0) {
    uint8_t qs[16], b[22];
    for (int j = 0; j < 16; j++)
        qs[j] = pattern(j, 1);
    uint32_t qh = 0x80a50f13u;
    q5_block(b, 0, H_0_25, 0, qh, qs);
    float y[32], want[32];
    for (int w = 0; w < 32; w++)
        want[w] = (float)(q5_code(qh, qs, w) - 16) * 0.25f;
    dequantize("q5_0", b, 32, y);
    assert_values("q5_0", y, want, 32);
    /* by hand: all nibbles 1 (low) and 2 (high), fifth bits of weights 1 and 17 set */
    memset(qs, 0x21, 16);
    q5_block(b, 0, H_0_25, 0, 0x00020002u, qs);
    dequantize("q5_0", b, 32, y);
    cr_assert(y[0] == -3.75f && y[1] == 0.25f && y[16] == -3.5f && y[17] == 0.5f);
}

Test(blocks, q5_1) {
    uint8_t qs[16], b[24];
    for (int j = 0; j < 16; j++)
        qs[j] = pattern(j, 2);
    uint32_t qh = 0x5a0ff0c3u;
    q5_block(b, 1, H_1, H_0_5, qh, qs);
    float y[32], want[32];
    for (int w = 0; w < 32; w++)
        want[w] = (float)q5_code(qh, qs, w) + 0.5f;
    dequantize("q5_1", b, 32, y);
    assert_values("q5_1", y, want, 32);
    /* by hand: byte 0 = 0xf3, fifth bits of weights 0 and 31: 19.5, 15.5, 16.5, and 0.5 */
    memset(qs, 0, 16);
    qs[0] = 0xf3;
    q5_block(b, 1, H_1, H_0_5, 0x80000001u, qs);
    dequantize("q5_1", b, 32, y);
    cr_assert(y[0] == 19.5f && y[16] == 15.5f && y[31] == 16.5f && y[1] == 0.5f);
}

/* ---- K-quants: 256 weights a super-block ---- */

/* Where weight w (< 256) of a 2-bit-plane layout (q2_K, q3_K) lies: codes byte 32 h + l, bits
 * 2 k; sub-block of 16 number 8 h + 2 k + part. */
static void plane_place(int w, int *byte, int *shift, int *sub) {
    int h = w / 128, r = w % 128, k = r / 32, part = (r % 32) / 16;
    *byte = 32 * h + 16 * part + r % 16;
    *shift = 2 * k;
    *sub = 8 * h + 2 * k + part;
}

Test(blocks, q2_k) {
    uint8_t b[2 * 84];
    float y[512], want[512];
    for (int s = 0; s < 2; s++) {
        uint8_t *blk = b + 84 * s;
        int sc[16], mn[16];
        for (int i = 0; i < 16; i++) {
            sc[i] = (i * 7 + s) % 16;
            mn[i] = (i * 5 + 3 * s) % 16;
            blk[i] = (uint8_t)(sc[i] | mn[i] << 4);
        }
        for (int i = 0; i < 64; i++)
            blk[16 + i] = pattern(i, 3 + s);
        put_half(blk + 80, s ? H_0_25 : H_1);
        put_half(blk + 82, H_0_5);
        float d = s ? 0.25f : 1.0f;
        for (int w = 0; w < 256; w++) {
            int byte, shift, sub;
            plane_place(w, &byte, &shift, &sub);
            int q = (blk[16 + byte] >> shift) & 3;
            want[256 * s + w] = d * (float)sc[sub] * (float)q - 0.5f * (float)mn[sub];
        }
    }
    dequantize("q2_k", b, 512, y);
    assert_values("q2_k", y, want, 512);
    /* by hand, first super-block: weight 0 is sub-block 0 (scale 0, min 0): 0. Weight 16 is
     * sub-block 1 (scale 7, min 5), the low 2 bits of code byte 16 (16 * 73 + 87 + 22 = 0x4fd:
     * 0xfd, low bits 1): 1 * 7 * 1 - 0.5 * 5 = 4.5 */
    cr_assert(y[0] == 0.0f);
    cr_assert(y[16] == 4.5f, "%g", (double)y[16]);
}

/* q3_K's 16 scales of 6 bits in 12 bytes: low nibble of scale i in byte i (i < 8) or the high
 * nibble of byte i - 8; its top 2 bits in byte 8 + i % 4 at bit 2 (i / 4). */
static void q3_pack_scales(const int *s, uint8_t *b12) {
    memset(b12, 0, 12);
    for (int i = 0; i < 16; i++) {
        if (i < 8)
            b12[i] |= (uint8_t)(s[i] & 15);
        else
            b12[i - 8] |= (uint8_t)((s[i] & 15) << 4);
        b12[8 + i % 4] |= (uint8_t)((s[i] >> 4) << (2 * (i / 4)));
    }
}

Test(blocks, q3_k) {
    uint8_t b[110];
    int sc[16];
    for (int i = 0; i < 16; i++)
        sc[i] = (i * 23 + 5) % 64; /* stored with the offset 32: scale sc - 32 */
    for (int i = 0; i < 32; i++)
        b[i] = pattern(i, 7); /* high bits */
    for (int i = 0; i < 64; i++)
        b[32 + i] = pattern(i, 8);
    q3_pack_scales(sc, b + 96);
    put_half(b + 108, H_0_125);
    float y[256], want[256];
    for (int w = 0; w < 256; w++) {
        int byte, shift, sub;
        plane_place(w, &byte, &shift, &sub);
        int low = (b[32 + byte] >> shift) & 3;
        /* the high bit: bit 4 h + k of hmask[l], l the code byte's place within its 32 */
        int hbit = (b[byte % 32] >> (4 * (w / 128) + shift / 2)) & 1;
        want[w] = 0.125f * (float)(sc[sub] - 32) * (float)(low - (hbit ? 0 : 4));
    }
    dequantize("q3_k", b, 256, y);
    assert_values("q3_k", y, want, 256);
    /* by hand: all codes 0 with high bits clear, scale 0 stored as 32 + 8 -> 0.125 * 8 * -4 */
    int eight[16];
    for (int i = 0; i < 16; i++)
        eight[i] = 40;
    memset(b, 0, 96);
    q3_pack_scales(eight, b + 96);
    dequantize("q3_k", b, 256, y);
    for (int w = 0; w < 256; w++)
        cr_assert(y[w] == -4.0f);
}

/* q4_K / q5_K's 8 scales and 8 mins of 6 bits in 12 bytes, as ggml packs them. */
static void k4_pack(const int *sc, const int *mn, uint8_t *b12) {
    for (int j = 0; j < 4; j++) {
        b12[j] = (uint8_t)(sc[j] | (sc[j + 4] >> 4) << 6);
        b12[j + 4] = (uint8_t)(mn[j] | (mn[j + 4] >> 4) << 6);
        b12[j + 8] = (uint8_t)((sc[j + 4] & 15) | (mn[j + 4] & 15) << 4);
    }
}

/* Weight w of q4_K / q5_K: each 64 weights one 32 bytes of nibbles, the low ones sub-block 2 g,
 * the high ones 2 g + 1; q5_K's fifth bit of weight l of sub-block j is bit j of qh[l]. */
static void k_expect(const uint8_t *qs, const uint8_t *qh, const int *sc, const int *mn, float d,
                     float dmin, float *want) {
    for (int w = 0; w < 256; w++) {
        int g = w / 64, r = w % 64, j = 2 * g + r / 32, l = r % 32;
        int q = r < 32 ? qs[32 * g + l] & 15 : qs[32 * g + l] >> 4;
        if (qh) q += ((qh[l] >> j) & 1) * 16;
        want[w] = d * (float)sc[j] * (float)q - dmin * (float)mn[j];
    }
}

Test(blocks, q4_k) {
    uint8_t b[144];
    int sc[8], mn[8];
    for (int j = 0; j < 8; j++) {
        sc[j] = (j * 19 + 7) % 64;
        mn[j] = (j * 29 + 60) % 64;
    }
    put_half(b, H_0_5);
    put_half(b + 2, H_0_25);
    k4_pack(sc, mn, b + 4);
    for (int i = 0; i < 128; i++)
        b[16 + i] = pattern(i, 9);
    float y[256], want[256];
    k_expect(b + 16, NULL, sc, mn, 0.5f, 0.25f, want);
    dequantize("q4_k", b, 256, y);
    assert_values("q4_k", y, want, 256);
    /* by hand: code byte 0 is 261 & 0xff = 0x05; weight 0 = 0.5 * 7 * 5 - 0.25 * 60 = 2.5,
     * weight 32 (sub-block 1: scale 26, min 25, the high nibble 0) = -0.25 * 25 = -6.25 */
    cr_assert(y[0] == 2.5f && y[32] == -6.25f, "%g %g", (double)y[0], (double)y[32]);
}

Test(blocks, q5_k) {
    uint8_t b[176];
    int sc[8], mn[8];
    for (int j = 0; j < 8; j++) {
        sc[j] = (j * 37 + 63) % 64;
        mn[j] = (j * 13 + 1) % 64;
    }
    put_half(b, H_0_25);
    put_half(b + 2, H_1);
    k4_pack(sc, mn, b + 4);
    for (int i = 0; i < 32; i++)
        b[16 + i] = pattern(i, 10);
    for (int i = 0; i < 128; i++)
        b[48 + i] = pattern(i, 11);
    float y[256], want[256];
    k_expect(b + 48, b + 16, sc, mn, 0.25f, 1.0f, want);
    dequantize("q5_k", b, 256, y);
    assert_values("q5_k", y, want, 256);
}

/* q6_K: weight w = 128 h + 32 k + l takes nibble k / 2 of ql[64 h + 32 (k % 2) + l], bits 2 k of
 * qh[32 h + l], scale 8 h + 2 k + l / 16; code - 32. */
Test(blocks, q6_k) {
    uint8_t b[210];
    for (int i = 0; i < 192; i++)
        b[i] = pattern(i, 12);
    for (int i = 0; i < 16; i++)
        b[192 + i] = (uint8_t)(int8_t)(i * 17 - 128);
    put_half(b + 208, H_0_125);
    float y[256], want[256];
    for (int w = 0; w < 256; w++) {
        int h = w / 128, k = (w % 128) / 32, l = w % 32;
        uint8_t lo = b[64 * h + 32 * (k % 2) + l];
        int q = ((k < 2 ? lo & 15 : lo >> 4) | ((b[128 + 32 * h + l] >> (2 * k)) & 3) << 4) - 32;
        int s = (int8_t)b[192 + 8 * h + 2 * k + l / 16];
        want[w] = 0.125f * (float)s * (float)q;
    }
    dequantize("q6_k", b, 256, y);
    assert_values("q6_k", y, want, 256);
    /* by hand: every code byte 0 -> code -32; scale 0 is -128: 0.125 * -128 * -32 = 512 */
    memset(b, 0, 192);
    dequantize("q6_k", b, 256, y);
    cr_assert(y[0] == 512.0f && y[15] == 512.0f);
}

Test(blocks, iq4_nl) {
    uint8_t b[18];
    put_half(b, H_0_5);
    for (int j = 0; j < 16; j++)
        b[2 + j] = (uint8_t)(j | (15 - j) << 4);
    float y[32], want[32];
    for (int j = 0; j < 16; j++) {
        want[j] = 0.5f * (float)BOOK[j];
        want[j + 16] = 0.5f * (float)BOOK[15 - j];
    }
    dequantize("iq4_nl", b, 32, y);
    assert_values("iq4_nl", y, want, 32);
    /* by hand: index 0 -> -127 * 0.5; index 15 -> 113 * 0.5 */
    cr_assert(y[0] == -63.5f && y[15] == 56.5f && y[16] == 56.5f);
}

/* iq4_xs: scale of sub-block ib (of 32) = its low nibble (byte ib / 2, high nibble for odd ib)
 * and 2 high bits (bits 2 ib of the 16-bit scales_h), offset 32. */
Test(blocks, iq4_xs) {
    uint8_t b[136];
    int ls[8];
    unsigned sh = 0;
    memset(b, 0, 8);
    put_half(b, H_0_25);
    for (int ib = 0; ib < 8; ib++) {
        ls[ib] = (ib * 21 + 9) % 64;
        b[4 + ib / 2] |= (uint8_t)((ls[ib] & 15) << (4 * (ib % 2)));
        sh |= (unsigned)(ls[ib] >> 4) << (2 * ib);
    }
    put_half(b + 2, sh);
    for (int i = 0; i < 128; i++)
        b[8 + i] = pattern(i, 13);
    float y[256], want[256];
    for (int w = 0; w < 256; w++) {
        int ib = w / 32, j = w % 32;
        uint8_t byte = b[8 + 16 * ib + j % 16];
        want[w] = 0.25f * (float)(ls[ib] - 32) * (float)BOOK[j < 16 ? byte & 15 : byte >> 4];
    }
    dequantize("iq4_xs", b, 256, y);
    assert_values("iq4_xs", y, want, 256);
    /* by hand: sub-block 0's scale is 9 - 32 = -23, code byte 0 = 377 & 0xff = 0x79, index 9
     * -> 13: 0.25 * -23 * 13 = -74.75 */
    cr_assert(y[0] == -74.75f, "%g", (double)y[0]);
}
