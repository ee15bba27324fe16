#define _GNU_SOURCE
#include "miniquant/report.h"

#include <errno.h>
#include <math.h>
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
    fclose(out.fp); /* gnuplot writes the temporary file by its name */
    out.fp = NULL;
    out.fd = -1;
    char script_path[] = "/tmp/miniquant-plot-XXXXXX";
    int fd = mkstemp(script_path);
    if (fd < 0) {
        mq_atomic_abort(&out);
        return mq_error_set(err, MQ_ERR_IO, "cannot create a temporary gnuplot script: %s",
                            strerror(errno));
    }
    /* gnuplot's single-quoted strings take a quote as two quotes */
    char quoted[2 * sizeof out.tmp];
    size_t q = 0;
    for (const char *c = out.tmp; *c; c++) {
        if (*c == '\'') quoted[q++] = '\'';
        quoted[q++] = *c;
    }
    quoted[q] = '\0';
    FILE *fp = fdopen(fd, "w");
    int bad = !fp;
    if (fp) {
        fprintf(fp,
                "set terminal pngcairo size %d,%d noenhanced font 'DejaVu Sans,11' linewidth 1.5\n"
                "set output '%s'\n%s\nunset output\n",
                width, height, quoted, script);
        bad = ferror(fp);
        bad |= fclose(fp) != 0;
    } else {
        close(fd);
    }
    if (bad) {
        unlink(script_path);
        mq_atomic_abort(&out);
        return mq_error_set(err, MQ_ERR_IO, "cannot write a temporary gnuplot script");
    }
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
    /* the picture is on disk before its name is, and its name before this returns */
    return mq_atomic_commit(&out, err);
}

/* ---------------------------------------------------------------------------------------------
 * label placement */

typedef struct box {
    double x0, y0, x1, y1;
} box_t;

static double overlap_area(box_t a, box_t b) {
    double w = fmin(a.x1, b.x1) - fmax(a.x0, b.x0), h = fmin(a.y1, b.y1) - fmax(a.y0, b.y0);
    return w > 0 && h > 0 ? w * h : 0;
}

/* How crowded a candidate box is: overlap with placed labels and with every point's marker,
 * plus the part outside the plot. 0 is free. */
static double crowding(box_t b, const box_t *placed, int n_placed, int n, const double *px,
                       const double *py) {
    const double r = 0.012; /* a marker's half size */
    double c = 0;
    for (int j = 0; j < n_placed; j++) c += overlap_area(b, placed[j]);
    for (int j = 0; j < n; j++) {
        box_t m = {px[j] - r, py[j] - r, px[j] + r, py[j] + r};
        c += overlap_area(b, m);
    }
    double area = (b.x1 - b.x0) * (b.y1 - b.y0);
    box_t in = {fmax(b.x0, 0), fmax(b.y0, 0), fmin(b.x1, 1), fmin(b.y1, 1)};
    double inside = in.x1 > in.x0 && in.y1 > in.y0 ? (in.x1 - in.x0) * (in.y1 - in.y0) : 0;
    return c + 4 * (area - inside);
}

void mq_plot_place_labels(int n_labels, int n_points, const double *px, const double *py,
                          const double *w, const double *h, double *lx, double *ly, int *moved) {
    int n = n_labels;
    box_t *placed = malloc((size_t)(n > 0 ? n : 1) * sizeof *placed);
    const double gap = 0.012;
    for (int i = 0; i < n; i++) {
        /* candidates: right, left, above, below the point; then right and left shifted up and
         * down by growing steps of 1.1 label heights */
        box_t best = {0, 0, 0, 0};
        double best_c = INFINITY;
        int best_moved = 0;
        for (int c = 0; c < 4 + 2 * 12 && best_c > 0; c++) {
            double cx, cy;
            int shifted = 0;
            if (c < 4) {
                cx = px[i] + (c == 0 ? 1 : c == 1 ? -1 : 0) * (w[i] / 2 + gap);
                cy = py[i] + (c == 2 ? 1 : c == 3 ? -1 : 0) * (h[i] / 2 + gap);
            } else {
                int k = (c - 4) / 2, step = k / 2 + 1;
                double v = (k % 2 ? -1 : 1) * step * 1.1 * h[i];
                cx = px[i] + ((c - 4) % 2 ? -1 : 1) * (w[i] / 2 + gap);
                cy = py[i] + v;
                shifted = 1;
            }
            box_t b = {cx - w[i] / 2, cy - h[i] / 2, cx + w[i] / 2, cy + h[i] / 2};
            double crowd = placed ? crowding(b, placed, i, n_points, px, py) : 0;
            if (crowd < best_c - 1e-12) {
                best_c = crowd;
                best = b;
                best_moved = shifted;
            }
        }
        if (placed) placed[i] = best;
        lx[i] = best.x0;
        ly[i] = (best.y0 + best.y1) / 2;
        if (moved) moved[i] = best_moved;
    }
    free(placed);
}
