#define _GNU_SOURCE
#include "miniquant/fileio.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int mq_read_file(const char *path, size_t max_bytes, char **out, size_t *len, mq_error_t *err) {
    *out = NULL;
    *len = 0;
    FILE *fp = fopen(path, "rb");
    if (!fp) return mq_error_set(err, MQ_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fileno(fp), &st) != 0 || !S_ISREG(st.st_mode)) {
        fclose(fp);
        return mq_error_set(err, MQ_ERR_IO, "%s: not a regular file", path);
    }
    size_t size = (size_t)st.st_size;
    if (max_bytes && size > max_bytes) {
        fclose(fp);
        return mq_error_set(err, MQ_ERR_FORMAT, "%s: file is %zu bytes, more than the %zu allowed",
                            path, size, max_bytes);
    }
    char *buf = malloc(size + 1);
    if (!buf) {
        fclose(fp);
        return mq_error_set(err, MQ_ERR_NOMEM, "%s: cannot allocate %zu bytes", path, size + 1);
    }
    size_t got = fread(buf, 1, size, fp);
    int rerr = ferror(fp);
    fclose(fp);
    if (got != size || rerr) {
        free(buf);
        return mq_error_set(err, MQ_ERR_IO, "%s: read %zu of %zu bytes", path, got, size);
    }
    buf[size] = '\0';
    *out = buf;
    *len = size;
    return MQ_OK;
}

int mq_atomic_open(mq_atomic_file_t *f, const char *path, mq_error_t *err) {
    memset(f, 0, sizeof *f);
    if (strlen(path) + 32 >= sizeof f->tmp)
        return mq_error_set(err, MQ_ERR_ARG, "%s: path too long", path);
    snprintf(f->path, sizeof f->path, "%s", path);
    snprintf(f->tmp, sizeof f->tmp, "%s.tmp.%ld.XXXXXX", path, (long)getpid());
    int fd = mkstemp(f->tmp);
    if (fd < 0) {
        int e = errno;
        f->tmp[0] = '\0';
        return mq_error_set(err, MQ_ERR_IO, "%s: cannot create temporary file: %s", path,
                            strerror(e));
    }
    /* mkstemp creates 0600; outputs should be as readable as any file the user writes. */
    mode_t um = umask(0);
    umask(um);
    fchmod(fd, 0666 & ~um);
    f->fp = fdopen(fd, "wb");
    if (!f->fp) {
        int e = errno;
        close(fd);
        unlink(f->tmp);
        f->tmp[0] = '\0';
        return mq_error_set(err, MQ_ERR_IO, "%s: fdopen: %s", path, strerror(e));
    }
    return MQ_OK;
}

int mq_atomic_commit(mq_atomic_file_t *f, mq_error_t *err) {
    if (!f->fp) return mq_error_set(err, MQ_ERR_ARG, "%s: file is not open", f->path);
    int bad = ferror(f->fp) || fflush(f->fp) != 0 || fsync(fileno(f->fp)) != 0;
    int e = errno;
    if (fclose(f->fp) != 0) bad = 1;
    f->fp = NULL;
    if (bad) {
        unlink(f->tmp);
        f->tmp[0] = '\0';
        return mq_error_set(err, MQ_ERR_IO, "%s: write failed: %s", f->path, strerror(e));
    }
    if (rename(f->tmp, f->path) != 0) {
        e = errno;
        unlink(f->tmp);
        f->tmp[0] = '\0';
        return mq_error_set(err, MQ_ERR_IO, "%s: cannot rename into place: %s", f->path,
                            strerror(e));
    }
    f->tmp[0] = '\0';
    return MQ_OK;
}

void mq_atomic_abort(mq_atomic_file_t *f) {
    if (f->fp) {
        fclose(f->fp);
        f->fp = NULL;
    }
    if (f->tmp[0]) {
        unlink(f->tmp);
        f->tmp[0] = '\0';
    }
}

int mq_write_file(const char *path, const void *data, size_t len, mq_error_t *err) {
    mq_atomic_file_t f;
    int rc = mq_atomic_open(&f, path, err);
    if (rc) return rc;
    if (len && fwrite(data, 1, len, f.fp) != len) {
        mq_atomic_abort(&f);
        return mq_error_set(err, MQ_ERR_IO, "%s: short write", path);
    }
    return mq_atomic_commit(&f, err);
}

int mq_mkdir_p(const char *path, mq_error_t *err) {
    char buf[4096];
    size_t n = strlen(path);
    if (n == 0 || n >= sizeof buf) return mq_error_set(err, MQ_ERR_ARG, "bad directory path");
    memcpy(buf, path, n + 1);
    for (size_t i = 1; i <= n; i++) {
        if (buf[i] == '/' || buf[i] == '\0') {
            char c = buf[i];
            buf[i] = '\0';
            if (mkdir(buf, 0777) != 0 && errno != EEXIST)
                return mq_error_set(err, MQ_ERR_IO, "%s: cannot create directory: %s", buf,
                                    strerror(errno));
            buf[i] = c;
        }
    }
    struct stat st;
    if (stat(path, &st) != 0 || !S_ISDIR(st.st_mode))
        return mq_error_set(err, MQ_ERR_IO, "%s: not a directory", path);
    return MQ_OK;
}

int mq_file_exists(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}
