/* miniquant: reading whole files and writing files crash-safely.
 *
 * Every output goes to a temporary file in the destination's folder and is renamed into place
 * when complete, so an interrupted run leaves either the old file or the new one, never half. */
#ifndef MINIQUANT_FILEIO_H
#define MINIQUANT_FILEIO_H

#include <stdio.h>
#include <stddef.h>

#include "miniquant/error.h"

/* Reads the whole file into a malloc'd buffer (NUL-terminated, the NUL not counted in *len).
 * Refuses files larger than max_bytes (0: no limit beyond what fits in memory). */
int mq_read_file(const char *path, size_t max_bytes, char **out, size_t *len, mq_error_t *err);

/* An output file being written under a temporary name. */
typedef struct mq_atomic_file {
    FILE *fp;          /* write to this */
    char path[4096];   /* final destination */
    char tmp[4096];    /* temporary name in the same folder */
} mq_atomic_file_t;

/* Opens a temporary file beside path for writing (binary). */
int mq_atomic_open(mq_atomic_file_t *f, const char *path, mq_error_t *err);
/* Flushes, syncs, closes and renames the temporary file onto the destination. On failure the
 * temporary file is removed and the destination is untouched. */
int mq_atomic_commit(mq_atomic_file_t *f, mq_error_t *err);
/* Closes and removes the temporary file; the destination is untouched. Safe to call twice. */
void mq_atomic_abort(mq_atomic_file_t *f);

/* Writes len bytes to path crash-safely. */
int mq_write_file(const char *path, const void *data, size_t len, mq_error_t *err);

/* Creates a directory and its parents (like mkdir -p). */
int mq_mkdir_p(const char *path, mq_error_t *err);

/* 1 if path exists as a regular file, 0 otherwise. */
int mq_file_exists(const char *path);

#endif
