#define _GNU_SOURCE
#include "miniquant/report.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "miniquant/fileio.h"

int mq_json_write(const char *path, const cJSON *root, mq_error_t *err) {
    char *text = cJSON_Print(root);
    if (!text) return mq_error_set(err, MQ_ERR_NOMEM, "%s: cannot serialise JSON", path);
    size_t n = strlen(text);
    char *buf = realloc(text, n + 2);
    if (!buf) {
        free(text);
        return mq_error_set(err, MQ_ERR_NOMEM, "out of memory");
    }
    buf[n] = '\n';
    buf[n + 1] = '\0';
    int rc = mq_write_file(path, buf, n + 1, err);
    free(buf);
    return rc;
}

int mq_json_read(const char *path, cJSON **out, mq_error_t *err) {
    char *text;
    size_t len;
    int rc = mq_read_file(path, 64u << 20, &text, &len, err);
    if (rc) return rc;
    const char *end = NULL;
    *out = cJSON_ParseWithLengthOpts(text, len, &end, 0);
    if (!*out) {
        size_t at = end ? (size_t)(end - text) : 0, line = 1;
        for (size_t i = 0; i < at && i < len; i++) line += text[i] == '\n';
        free(text);
        return mq_error_set(err, MQ_ERR_FORMAT, "%s: line %zu (byte %zu): invalid JSON", path,
                            line, at);
    }
    free(text);
    return MQ_OK;
}

void mq_strbuf_printf(mq_strbuf_t *b, const char *fmt, ...) {
    if (b->oom) return;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0) {
        b->oom = 1;
        return;
    }
    if (b->len + (size_t)n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        while (cap < b->len + (size_t)n + 1) cap *= 2;
        char *s = realloc(b->s, cap);
        if (!s) {
            b->oom = 1;
            return;
        }
        b->s = s;
        b->cap = cap;
    }
    va_start(ap, fmt);
    vsnprintf(b->s + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
}

void mq_strbuf_free(mq_strbuf_t *b) {
    free(b->s);
    memset(b, 0, sizeof *b);
}

int mq_plot_png(const char *png_path, int width, int height, const char *script, mq_error_t *err) {
    /* gnuplot writes to a temporary name in the destination folder, renamed when it succeeds. */
    mq_atomic_file_t out;
    int rc = mq_atomic_open(&out, png_path, err);
    if (rc) return rc;
    fclose(out.fp);
    out.fp = NULL;
    char script_path[] = "/tmp/miniquant-plot-XXXXXX";
    int fd = mkstemp(script_path);
    if (fd < 0) {
        mq_atomic_abort(&out);
        return mq_error_set(err, MQ_ERR_IO, "cannot create a temporary gnuplot script: %s",
                            strerror(errno));
    }
    FILE *fp = fdopen(fd, "w");
    fprintf(fp,
            "set terminal pngcairo size %d,%d noenhanced font 'DejaVu Sans,11' linewidth 1.5\n"
            "set output '%s'\n%s\nunset output\n",
            width, height, out.tmp, script);
    fclose(fp);
    char cmd[8400];
    snprintf(cmd, sizeof cmd, "gnuplot '%s' 2>&1", script_path);
    FILE *p = popen(cmd, "r");
    char msg[512] = "";
    size_t got = 0;
    if (p) {
        got = fread(msg, 1, sizeof msg - 1, p);
        msg[got] = '\0';
    }
    int status = p ? pclose(p) : -1;
    unlink(script_path);
    if (status != 0 || got > 0) {
        /* gnuplot reports script errors on stderr even when it exits 0 */
        mq_atomic_abort(&out);
        if (status == -1 || (WIFEXITED(status) && WEXITSTATUS(status) == 127))
            return mq_error_set(err, MQ_ERR_IO,
                                "%s: gnuplot is not installed (install the Debian package "
                                "gnuplot-nox, or run scripts/setup.sh)",
                                png_path);
        for (char *c = msg; *c; c++)
            if (*c == '\n') *c = ' ';
        return mq_error_set(err, MQ_ERR_IO, "%s: gnuplot failed: %s", png_path, msg);
    }
    if (rename(out.tmp, out.path) != 0) {
        mq_atomic_abort(&out);
        return mq_error_set(err, MQ_ERR_IO, "%s: cannot rename into place: %s", png_path,
                            strerror(errno));
    }
    out.tmp[0] = '\0';
    return MQ_OK;
}
