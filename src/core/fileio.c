#define _GNU_SOURCE
#include "miniquant/fileio.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
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

/* ---- fault injection ---- */

static mq_fileio_hook_fn fault_hook;
static void *fault_ctx;

void mq_fileio_set_hook(mq_fileio_hook_fn hook, void *ctx) {
    fault_hook = hook;
    fault_ctx = ctx;
}

static void fault_point(const char *op, const char *path) {
    if (fault_hook) fault_hook(op, path, fault_ctx);
}

/* ---- orphaned temporary files ---- */

/* 1 when name is "<base>.tmp.<pid>.XXXXXX" (mkstemp's six characters) and sets *pid. */
static int orphan_name(const char *name, const char *base, long *pid) {
    size_t nb = strlen(base);
    if (strncmp(name, base, nb) != 0 || strncmp(name + nb, ".tmp.", 5) != 0) return 0;
    const char *p = name + nb + 5;
    char *end;
    if (*p < '1' || *p > '9') return 0;
    errno = 0;
    long v = strtol(p, &end, 10);
    if (errno || *end != '.' || strlen(end + 1) != 6) return 0;
    for (const char *c = end + 1; *c; c++)
        if (!isalnum((unsigned char)*c)) return 0;
    *pid = v;
    return 1;
}

/* The folder of path ("." when it names none) into dir. */
static void folder_of(const char *path, char *dir, size_t n) {
    const char *slash = strrchr(path, '/');
    if (!slash)
        snprintf(dir, n, ".");
    else if (slash == path)
        snprintf(dir, n, "/");
    else
        snprintf(dir, n, "%.*s", (int)(slash - path), path);
}

int mq_atomic_remove_orphans(const char *path) {
    char dir[4096];
    folder_of(path, dir, sizeof dir);
    const char *slash = strrchr(path, '/');
    const char *base = slash ? slash + 1 : path;
    if (!*base) return 0;
    DIR *d = opendir(dir);
    if (!d) return 0;
    int removed = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        long pid;
        if (!orphan_name(e->d_name, base, &pid)) continue;
        /* a live process (or one of another user, EPERM) may still be writing it */
        if (pid == (long)getpid() || kill((pid_t)pid, 0) == 0 || errno != ESRCH) continue;
        char full[8300];
        snprintf(full, sizeof full, "%s/%s", dir, e->d_name);
        struct stat st;
        if (lstat(full, &st) == 0 && S_ISREG(st.st_mode) && unlink(full) == 0) removed++;
    }
    closedir(d);
    return removed;
}

/* ---- the temporary file, written through the fault hook ---- */

typedef struct cookie {
    int fd;
    char path[]; /* the destination, for the hook */
} cookie_t;

/* At most this many bytes per write(2): each is a step the fault hook sees. */
enum { WRITE_CHUNK = 1 << 20 };

static ssize_t cookie_write(void *c, const char *buf, size_t n) {
    cookie_t *k = c;
    size_t done = 0;
    while (done < n) {
        size_t chunk = n - done < WRITE_CHUNK ? n - done : WRITE_CHUNK;
        fault_point("write", k->path);
        ssize_t w = write(k->fd, buf + done, chunk);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) return done ? (ssize_t)done : -1;
        done += (size_t)w;
    }
    return (ssize_t)n;
}

static int cookie_close(void *c) {
    cookie_t *k = c;
    int rc = close(k->fd);
    free(k);
    return rc;
}

int mq_atomic_open(mq_atomic_file_t *f, const char *path, mq_error_t *err) {
    memset(f, 0, sizeof *f);
    f->fd = -1;
    if (strlen(path) + 32 >= sizeof f->tmp)
        return mq_error_set(err, MQ_ERR_ARG, "%s: path too long", path);
    snprintf(f->path, sizeof f->path, "%s", path);
    mq_atomic_remove_orphans(path);
    fault_point("create", path);
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
    cookie_t *k = malloc(sizeof *k + strlen(path) + 1);
    if (k) {
        k->fd = fd;
        strcpy(k->path, path);
    }
    cookie_io_functions_t io = {.write = cookie_write, .close = cookie_close};
    f->fp = k ? fopencookie(k, "wb", io) : NULL;
    if (!f->fp) {
        free(k);
        close(fd);
        unlink(f->tmp);
        f->tmp[0] = '\0';
        return mq_error_set(err, MQ_ERR_NOMEM, "%s: cannot open a stream", path);
    }
    setvbuf(f->fp, NULL, _IOFBF, WRITE_CHUNK);
    f->fd = fd;
    return MQ_OK;
}

/* fsync of the folder holding path, so that a rename into it is on disk. */
static int sync_folder(const char *path) {
    char dir[4096];
    folder_of(path, dir, sizeof dir);
    int fd = open(dir, O_RDONLY | O_DIRECTORY);
    if (fd < 0) return -1;
    int rc = fsync(fd);
    /* some file systems cannot sync a folder; the rename itself has happened */
    if (rc != 0 && (errno == EINVAL || errno == ENOTSUP)) rc = 0;
    close(fd);
    return rc;
}

static int commit_fail(mq_atomic_file_t *f, mq_error_t *err, const char *what, int e) {
    unlink(f->tmp);
    f->tmp[0] = '\0';
    return mq_error_set(err, MQ_ERR_IO, "%s: %s: %s", f->path, what, strerror(e));
}

int mq_atomic_commit(mq_atomic_file_t *f, mq_error_t *err) {
    if (!f->tmp[0]) return mq_error_set(err, MQ_ERR_ARG, "%s: file is not open", f->path);
    int e = 0;
    if (f->fp) {
        int bad = ferror(f->fp) || fflush(f->fp) != 0;
        if (bad) e = errno ? errno : EIO;
        if (!bad) fault_point("fsync", f->path);
        if (!bad && fsync(f->fd) != 0) bad = 1, e = errno;
        if (fclose(f->fp) != 0 && !bad) bad = 1, e = errno;
        f->fp = NULL;
        f->fd = -1;
        if (bad) return commit_fail(f, err, "write failed", e);
    } else { /* written by another program: synced by name */
        int fd = open(f->tmp, O_RDONLY);
        fault_point("fsync", f->path);
        if (fd < 0 || fsync(fd) != 0) {
            e = errno;
            if (fd >= 0) close(fd);
            return commit_fail(f, err, "cannot sync the written file", e);
        }
        close(fd);
    }
    fault_point("rename", f->path);
    if (rename(f->tmp, f->path) != 0) return commit_fail(f, err, "cannot rename into place", errno);
    f->tmp[0] = '\0';
    fault_point("dirsync", f->path);
    if (sync_folder(f->path) != 0)
        return mq_error_set(err, MQ_ERR_IO, "%s: written, but its folder cannot be synced: %s",
                            f->path, strerror(errno));
    return MQ_OK;
}

void mq_atomic_abort(mq_atomic_file_t *f) {
    if (f->fp) {
        fclose(f->fp);
        f->fp = NULL;
        f->fd = -1;
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
