/* miniquant: reading whole files and writing files crash-safely.
 *
 * Every output goes to a temporary file in the destination's folder ("NAME.tmp.<pid>.XXXXXX")
 * and is renamed into place when complete, so an interrupted run leaves either the old file or
 * the new one, never half. The file is synced before the rename and its folder after, so the
 * new name survives a power loss too. Opening an output removes the temporary files that killed
 * runs left for the same output (those of processes no longer alive). */
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
    FILE *fp;          /* write to this (buffered; each write(2) passes the fault hook) */
    int fd;            /* the temporary file's descriptor while fp is open */
    char path[4096];   /* final destination */
    char tmp[4096];    /* temporary name in the same folder */
} mq_atomic_file_t;

/* Opens a temporary file beside path for writing (binary), first removing path's orphaned
 * temporary files. */
int mq_atomic_open(mq_atomic_file_t *f, const char *path, mq_error_t *err);
/* Flushes, syncs, closes and renames the temporary file onto the destination, then syncs the
 * destination's folder. On failure the temporary file is removed and the destination is
 * untouched. fp may have been closed by the caller (another program wrote the temporary file:
 * it is synced by name). */
int mq_atomic_commit(mq_atomic_file_t *f, mq_error_t *err);
/* Closes and removes the temporary file; the destination is untouched. Safe to call twice. */
void mq_atomic_abort(mq_atomic_file_t *f);

/* Removes the temporary files that killed runs left for the output path: the names
 * mq_atomic_open gives ("<path>.tmp.<pid>.XXXXXX") whose process is no longer alive. Returns
 * how many were removed. */
int mq_atomic_remove_orphans(const char *path);

/* Fault injection, for tests of crash safety: hook(op, path, ctx) is called before each step of
 * a crash-safe write ("create", "write" for each write(2) of the buffered file, "fsync",
 * "rename", "dirsync"), with the destination's path; a test's hook may kill the process there.
 * NULL removes it. Process-wide: set it before any writing starts. */
typedef void (*mq_fileio_hook_fn)(const char *op, const char *path, void *ctx);
void mq_fileio_set_hook(mq_fileio_hook_fn hook, void *ctx);

/* Writes len bytes to path crash-safely. */
int mq_write_file(const char *path, const void *data, size_t len, mq_error_t *err);

/* Creates a directory and its parents (like mkdir -p). */
int mq_mkdir_p(const char *path, mq_error_t *err);

/* 1 if path exists as a regular file, 0 otherwise. */
int mq_file_exists(const char *path);

#endif
