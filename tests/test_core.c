#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "miniquant/fileio.h"
#include "miniquant/fp16.h"
#include "miniquant/rng.h"

Test(fp16, known_values) {
    cr_assert_eq(mq_fp32_to_fp16(1.0f), 0x3c00);
    cr_assert_eq(mq_fp32_to_fp16(-2.0f), 0xc000);
    cr_assert_eq(mq_fp32_to_fp16(65504.0f), 0x7bff);       /* largest half */
    cr_assert_eq(mq_fp32_to_fp16(65520.0f), 0x7c00);       /* rounds to infinity */
    cr_assert_eq(mq_fp32_to_fp16(5.9604644775390625e-8f), 0x0001); /* smallest subnormal */
    cr_assert_eq(mq_fp32_to_fp16(2.98023223876953125e-8f), 0x0000); /* tie -> even (zero) */
    cr_assert_eq(mq_fp32_to_fp16(1.0f + 1.0f / 2048), 0x3c00);      /* tie -> even */
    cr_assert_eq(mq_fp32_to_fp16(1.0f + 3.0f / 2048), 0x3c02);      /* tie -> even (up) */
    cr_assert_eq(mq_fp32_to_fp16(-0.0f), 0x8000);
    cr_assert_eq(mq_fp32_to_fp16(INFINITY), 0x7c00);
    cr_assert((mq_fp32_to_fp16(NAN) & 0x7c00) == 0x7c00 && (mq_fp32_to_fp16(NAN) & 0x3ff));
    cr_assert_eq(mq_fp16_to_fp32(0x3555), 0.333251953125f);
    cr_assert_eq(mq_fp16_to_fp32(0x0001), 5.9604644775390625e-8f);
}

Test(fp16, every_half_round_trips_and_rounding_is_nearest) {
    for (uint32_t h = 0; h < 65536; h++) {
        float f = mq_fp16_to_fp32((mq_fp16_t)h);
        if (isnan(f)) continue;
        cr_assert_eq(mq_fp32_to_fp16(f), (mq_fp16_t)h, "half 0x%04x", h);
    }
    /* a float between two neighbouring halves goes to the nearer one */
    mq_rng_t r;
    mq_rng_seed(&r, 1);
    for (int i = 0; i < 100000; i++) {
        float x = (mq_rng_uniform(&r) - 0.5f) * 200.0f;
        mq_fp16_t h = mq_fp32_to_fp16(x);
        float y = mq_fp16_to_fp32(h);
        float up = mq_fp16_to_fp32((mq_fp16_t)(h + 1)), dn = mq_fp16_to_fp32((mq_fp16_t)(h - 1));
        cr_assert(fabsf(x - y) <= fabsf(x - up) && fabsf(x - y) <= fabsf(x - dn), "x=%g", x);
    }
}

Test(fileio, atomic_write_replaces_whole_or_leaves_old) {
    char dir[] = "/tmp/mq-fileio-XXXXXX";
    cr_assert(mkdtemp(dir));
    char path[256];
    snprintf(path, sizeof path, "%s/out.bin", dir);
    mq_error_t err = {0};
    cr_assert_eq(mq_write_file(path, "old", 3, &err), MQ_OK);
    /* an aborted write leaves the old content and no temporary file */
    mq_atomic_file_t f;
    cr_assert_eq(mq_atomic_open(&f, path, &err), MQ_OK);
    fputs("partial new content", f.fp);
    fflush(f.fp);
    char *buf;
    size_t len;
    cr_assert_eq(mq_read_file(path, 0, &buf, &len, &err), MQ_OK);
    cr_assert_eq(len, 3u);
    cr_assert_str_eq(buf, "old");
    free(buf);
    char tmp[4096];
    snprintf(tmp, sizeof tmp, "%s", f.tmp);
    mq_atomic_abort(&f);
    cr_assert_eq(access(tmp, F_OK), -1);
    /* a committed write replaces it */
    cr_assert_eq(mq_write_file(path, "new!", 4, &err), MQ_OK);
    cr_assert_eq(mq_read_file(path, 0, &buf, &len, &err), MQ_OK);
    cr_assert_str_eq(buf, "new!");
    free(buf);
    /* size limits and missing files are errors that name the file */
    cr_assert_eq(mq_read_file(path, 2, &buf, &len, &err), MQ_ERR_FORMAT);
    cr_assert(strstr(err.msg, path));
    cr_assert_eq(mq_read_file("/nonexistent/x", 0, &buf, &len, &err), MQ_ERR_IO);
    cr_assert(strstr(err.msg, "/nonexistent/x"));
    unlink(path);
    rmdir(dir);
}

Test(rng, deterministic_and_uniform) {
    mq_rng_t a, b;
    mq_rng_seed(&a, 42);
    mq_rng_seed(&b, 42);
    for (int i = 0; i < 1000; i++) cr_assert_eq(mq_rng_u64(&a), mq_rng_u64(&b));
    double s = 0, s2 = 0;
    for (int i = 0; i < 200000; i++) {
        double x = mq_rng_normal(&a);
        s += x;
        s2 += x * x;
    }
    cr_assert(fabs(s / 200000) < 0.01 && fabs(s2 / 200000 - 1) < 0.02);
    for (int i = 0; i < 10000; i++) cr_assert(mq_rng_below(&a, 7) < 7);
}
