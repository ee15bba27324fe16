/* The dequantization of every format whose bytes carry their own scales (every row of the
 * format table but miniquant's packed codes: f32, f16, bf16, q8_0, q4_0, q4_1, q5_0, q5_1,
 * q2_K .. q6_K, iq4_nl, iq4_xs) on arbitrary bytes: the first byte picks the format, the rest
 * are its blocks (whole blocks only, as the container guarantees).
 *
 * Dequantizing never reads past the blocks or misbehaves; it is deterministic; the blocks are
 * independent (the whole run equals block after block); and a block of a quantized format
 * whose FP16 fields are all finite gives finite values, as every one of them bounds its values
 * by the product of its scales and codes. */
#include <math.h>

#include "fuzz.h"
#include "miniquant/format.h"

#define MAX_WEIGHTS 4096

static const mq_format_t *READ[32];
static int n_read;

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc;
    (void)argv;
    for (int i = 0; MQ_FORMATS[i]; i++)
        if (!MQ_FORMATS[i]->side_scales) READ[n_read++] = MQ_FORMATS[i];
    return 0;
}

/* Weights and bytes of one block (bf16: one weight of 2 bytes). */
static void block_of(const mq_format_t *f, int *weights, size_t *bytes) {
    const mq_ggml_type_info_t *ti = mq_ggml_type_info(f->ggml_type);
    *weights = ti->block_size;
    *bytes = ti->type_size;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1 || n_read == 0) return 0;
    const mq_format_t *f = READ[data[0] % n_read];
    int per_block;
    size_t block_bytes;
    block_of(f, &per_block, &block_bytes);
    size_t nb = (size - 1) / block_bytes;
    if (nb * (size_t)per_block > MAX_WEIGHTS) nb = MAX_WEIGHTS / (size_t)per_block;
    if (nb == 0) return 0;
    int n = (int)nb * per_block;
    /* an exact copy of the blocks, so that a read past them is an overflow */
    uint8_t *src = malloc(nb * block_bytes);
    float *y = malloc((size_t)n * sizeof *y), *y2 = malloc((size_t)n * sizeof *y2);
    FUZZ_CHECK(src && y && y2, "out of memory");
    memcpy(src, data + 1, nb * block_bytes);
    f->dequantize_row(src, NULL, NULL, n, n, y);
    f->dequantize_row(src, NULL, NULL, n, n, y2);
    FUZZ_CHECK(!memcmp(y, y2, (size_t)n * sizeof *y), "%s: two runs differ", f->name);
    for (size_t b = 0; b < nb; b++) {
        f->dequantize_row(src + b * block_bytes, NULL, NULL, per_block, per_block, y2);
        FUZZ_CHECK(!memcmp(y + b * (size_t)per_block, y2, (size_t)per_block * sizeof *y),
                   "%s: block %zu alone differs", f->name, b);
    }
    if (per_block > 1) { /* blocks (not f32, f16, bf16 values, which may be anything) */
        /* every 16-bit field aligned to 2 bytes is finite: no FP16 Inf/NaN exponent anywhere */
        for (size_t b = 0; b < nb; b++) {
            const uint8_t *p = src + b * block_bytes;
            int finite = 1;
            for (size_t k = 0; k + 1 < block_bytes; k += 2)
                finite &= ((p[k] | p[k + 1] << 8) & 0x7c00) != 0x7c00;
            for (int j = 0; finite && j < per_block; j++)
                FUZZ_CHECK(isfinite(y[b * (size_t)per_block + (size_t)j]),
                           "%s: block %zu, finite fields, weight %d is %g", f->name, b, j,
                           (double)y[b * (size_t)per_block + (size_t)j]);
        }
    }
    free(src);
    free(y);
    free(y2);
    return 0;
}
