#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "miniquant/error.h"
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

/* A pid that no process has: a child that has exited and been reaped. */
static long dead_pid(void) {
    pid_t pid = fork();
    cr_assert(pid >= 0);
    if (pid == 0) _exit(0);
    cr_assert_eq(waitpid(pid, NULL, 0), pid);
    return (long)pid;
}

static void touch(const char *dir, const char *name) {
    char path[512];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *fp = fopen(path, "w");
    cr_assert(fp, "cannot create %s", path);
    fputs("left by a killed run", fp);
    fclose(fp);
}

static int exists_in(const char *dir, const char *name) {
    char path[512];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    return access(path, F_OK) == 0;
}

Test(fileio, orphaned_temporary_files_of_the_same_output_are_removed) {
    char dir[] = "/tmp/mq-orphans-XXXXXX";
    cr_assert(mkdtemp(dir));
    long dead = dead_pid(), alive = (long)getppid();
    char orphan[128], orphan2[128], live[128], other[128], short_tail[128];
    snprintf(orphan, sizeof orphan, "out.bin.tmp.%ld.a1B2c3", dead);
    snprintf(orphan2, sizeof orphan2, "out.bin.tmp.%ld.zzzzzz", dead);
    snprintf(live, sizeof live, "out.bin.tmp.%ld.a1B2c3", alive);
    snprintf(other, sizeof other, "other.bin.tmp.%ld.a1B2c3", dead);
    snprintf(short_tail, sizeof short_tail, "out.bin.tmp.%ld.abc", dead);
    const char *kept[] = {live, other, short_tail, "out.bin.tmp.x.a1B2c3", "out.bin.tmp.", NULL};
    touch(dir, orphan);
    touch(dir, orphan2);
    for (int i = 0; kept[i]; i++) touch(dir, kept[i]);
    char path[256];
    snprintf(path, sizeof path, "%s/out.bin", dir);
    mq_error_t err = {0};
    cr_assert_eq(mq_write_file(path, "new", 3, &err), MQ_OK, "%s", err.msg);
    cr_assert(!exists_in(dir, orphan) && !exists_in(dir, orphan2),
              "the temporary files of a dead run were left");
    for (int i = 0; kept[i]; i++)
        cr_assert(exists_in(dir, kept[i]), "%s is not an orphan of out.bin but was removed",
                  kept[i]);
    cr_assert_eq(mq_atomic_remove_orphans(path), 0);
    for (int i = 0; kept[i]; i++) {
        char p2[512];
        snprintf(p2, sizeof p2, "%s/%s", dir, kept[i]);
        unlink(p2);
    }
    unlink(path);
    cr_assert_eq(rmdir(dir), 0, "files were left in %s", dir);
}

/* What the fault hook saw: the steps in order, and whether the destination existed then. */
typedef struct steps {
    char op[64][16];
    int had_file[64];
    int n;
} steps_t;

static void record_step(const char *op, const char *path, void *ctx) {
    steps_t *s = ctx;
    if (s->n >= 64) return;
    snprintf(s->op[s->n], sizeof s->op[0], "%s", op);
    s->had_file[s->n++] = access(path, F_OK) == 0;
}

Test(fileio, a_write_passes_each_step_to_the_hook_and_syncs_the_folder_after_the_rename) {
    char dir[] = "/tmp/mq-steps-XXXXXX";
    cr_assert(mkdtemp(dir));
    char path[256];
    snprintf(path, sizeof path, "%s/out.bin", dir);
    size_t n = (size_t)5 << 20;
    char *data = malloc(n);
    cr_assert(data);
    for (size_t i = 0; i < n; i++) data[i] = (char)(i * 7);
    steps_t st = {0};
    mq_fileio_set_hook(record_step, &st);
    mq_error_t err = {0};
    int rc = mq_write_file(path, data, n, &err);
    mq_fileio_set_hook(NULL, NULL);
    cr_assert_eq(rc, MQ_OK, "%s", err.msg);
    /* create, the writes of 5 MiB through a 1 MiB buffer, fsync, rename, dirsync */
    cr_assert_geq(st.n, 5 + 4, "%d steps", st.n);
    cr_assert_str_eq(st.op[0], "create");
    for (int i = 1; i < st.n - 3; i++) cr_assert_str_eq(st.op[i], "write", "step %d: %s", i, st.op[i]);
    cr_assert_str_eq(st.op[st.n - 3], "fsync");
    cr_assert_str_eq(st.op[st.n - 2], "rename");
    cr_assert_str_eq(st.op[st.n - 1], "dirsync");
    cr_assert(!st.had_file[st.n - 2] && st.had_file[st.n - 1],
              "the file must appear between the rename and the folder's sync");
    char *back;
    size_t len;
    cr_assert_eq(mq_read_file(path, 0, &back, &len, &err), MQ_OK);
    cr_assert(len == n && memcmp(back, data, n) == 0);
    free(back);
    free(data);
    unlink(path);
    rmdir(dir);
}

Test(error, bytes_a_terminal_would_act_on_are_escaped_once) {
    mq_error_t e = {0};
    /* ESC and a colour code, a newline, a byte that is not UTF-8, é (kept), a C1 CSI */
    mq_error_set(&e, MQ_ERR_FORMAT, "f.gguf: merges[0] \"%s\"", "a\x1b[31mb\nc\xff\xc3\xa9\t\xc2\x9b");
    cr_assert_str_eq(e.msg, "f.gguf: merges[0] \"a\\x1b[31mb\\nc\\xff\xc3\xa9\\t\\xc2\\x9b\"");
    char again[sizeof e.msg];
    snprintf(again, sizeof again, "%s", e.msg);
    mq_error_set(&e, MQ_ERR_FORMAT, "%s", again);
    cr_assert_str_eq(e.msg, again, "escaping twice changed the message");
    mq_error_prefix(&e, "in \r%s", "x");
    cr_assert_str_eq(e.msg, "in \\rx: f.gguf: merges[0] \"a\\x1b[31mb\\nc\\xff\xc3\xa9\\t\\xc2\\x9b\"");
    /* truncation never splits an escape */
    char lots[2000];
    memset(lots, 0x1b, sizeof lots - 1);
    lots[sizeof lots - 1] = '\0';
    mq_error_set(&e, MQ_ERR_FORMAT, "%s", lots);
    size_t len = strlen(e.msg);
    cr_assert(len > 1000 && len % 4 == 0, "%zu", len);
    for (size_t i = 0; i < len; i++) cr_assert((unsigned char)e.msg[i] >= 0x20);
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
