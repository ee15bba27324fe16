/* What tests that compare the files miniquant writes share. Header-only: each test
 * executable includes what it uses. */
#ifndef MINIQUANT_TESTS_FILES_H
#define MINIQUANT_TESTS_FILES_H

#include <criterion/criterion.h>
#include <dirent.h>
#include <stdlib.h>
#include <string.h>

#include "miniquant/fileio.h"
#include "miniquant/gguf.h"

/* The whole file (malloc'd); fails the test when it cannot be read. */
static inline void *read_all(const char *path, size_t *len) {
    char *buf;
    mq_error_t err = {0};
    cr_assert_eq(mq_read_file(path, 0, &buf, len, &err), MQ_OK, "%s", err.msg);
    return buf;
}

/* Whether two files give the same bytes through load (read_all, gguf_bytes_untimed). */
static inline int same_loaded(const char *a, const char *b, void *(*load)(const char *, size_t *)) {
    size_t na, nb;
    void *x = load(a, &na), *y = load(b, &nb);
    int same = na == nb && memcmp(x, y, na) == 0;
    free(x);
    free(y);
    return same;
}

/* Whether two files hold the same bytes. */
static inline int same_bytes(const char *a, const char *b) {
    return same_loaded(a, b, read_all);
}

/* Wall-clock keys, the only ones two identical runs may write differently. */
static const char *const TIMING_KEYS[] = {"miniquant.train.seconds", NULL};

/* The bytes of a GGUF file with the values of the timing keys zeroed (their type, place and
 * size kept): what two runs of the same command must agree on byte for byte. */
static inline void *gguf_bytes_untimed(const char *path, size_t *len) {
    mq_gguf_t *g;
    mq_error_t err = {0};
    cr_assert_eq(mq_gguf_read(path, &g, &err), MQ_OK, "%s", err.msg);
    for (int k = 0; TIMING_KEYS[k]; k++)
        if (mq_gguf_find_key(g, TIMING_KEYS[k]) >= 0)
            cr_assert_eq(mq_gguf_set_f64(g, TIMING_KEYS[k], 0.0), MQ_OK);
    void *buf;
    cr_assert_eq(mq_gguf_write_mem(g, &buf, len, &err), MQ_OK, "%s", err.msg);
    /* the timing value is a plain f64: zeroing it keeps the file's size */
    size_t raw = 0;
    free(read_all(path, &raw));
    cr_assert_eq(raw, *len, "%s: %zu bytes, rewritten %zu", path, raw, *len);
    mq_gguf_free(g);
    return buf;
}

/* Whether two GGUF files are the same but for the timing keys. */
static inline int same_gguf_untimed(const char *a, const char *b) {
    return same_loaded(a, b, gguf_bytes_untimed);
}

/* Number of entries of a folder whose name contains part (e.g. ".tmp." for the temporary files
 * of unfinished writes). */
static inline int count_entries(const char *dir, const char *part) {
    DIR *d = opendir(dir);
    cr_assert(d, "cannot open %s", dir);
    int n = 0;
    for (struct dirent *e; (e = readdir(d));)
        n += strstr(e->d_name, part) != NULL;
    closedir(d);
    return n;
}

/* Removes a folder's files and the folder (one level, as the tests make them). */
static inline void remove_dir(const char *dir) {
    DIR *d = opendir(dir);
    if (!d) return;
    char path[4200];
    for (struct dirent *e; (e = readdir(d));) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        remove(path);
    }
    closedir(d);
    remove(dir);
}

#endif
