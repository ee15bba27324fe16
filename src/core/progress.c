#define _POSIX_C_SOURCE 200809L
#include "miniquant/progress.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

double mq_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int mute_depth;

void mq_progress_mute(int delta) {
    mute_depth += delta;
    if (mute_depth < 0) mute_depth = 0;
}

int mq_progress_quiet(void) {
    const char *q = getenv("MQ_QUIET");
    return q && *q && strcmp(q, "0") != 0;
}

void mq_progress_start(mq_progress_t *p, const char *label, int64_t total) {
    memset(p, 0, sizeof *p);
    snprintf(p->label, sizeof p->label, "%s", label);
    p->total = total > 0 ? total : 1;
    p->t_start = mq_now();
    p->t_last_draw = 0;
    p->last_decile = -1;
    p->tty = isatty(STDERR_FILENO);
    p->enabled = !mq_progress_quiet() && mute_depth == 0;
}

static void fmt_time(char *buf, size_t n, double s) {
    if (s < 0 || s > 359999) s = 0;
    int t = (int)(s + 0.5);
    if (t >= 3600) snprintf(buf, n, "%d:%02d:%02d", t / 3600, (t / 60) % 60, t % 60);
    else snprintf(buf, n, "%02d:%02d", t / 60, t % 60);
}

static void draw(mq_progress_t *p, const char *extra, int final) {
    double now = mq_now();
    double el = now - p->t_start;
    double frac = (double)p->done / (double)p->total;
    if (frac > 1) frac = 1;
    double eta = frac > 0 ? el * (1 - frac) / frac : 0;
    char elbuf[16], etabuf[16];
    fmt_time(elbuf, sizeof elbuf, el);
    fmt_time(etabuf, sizeof etabuf, eta);
    const int width = 28;
    char bar[64];
    int fill = (int)(frac * width);
    for (int i = 0; i < width; i++) bar[i] = i < fill ? '#' : '.';
    bar[width] = '\0';
    fprintf(stderr, "%s%-14s [%s] %5.1f%% %lld/%lld %s<%s %s%s", p->tty ? "\r" : "", p->label, bar,
            100 * frac, (long long)p->done, (long long)p->total, elbuf, etabuf, extra ? extra : "",
            p->tty ? "\033[K" : "\n");
    if (final && p->tty) fputc('\n', stderr);
    fflush(stderr);
    p->t_last_draw = now;
}

void mq_progress_update(mq_progress_t *p, int64_t done, const char *extra) {
    if (!p->enabled) return;
    p->done = done;
    if (p->tty) {
        if (mq_now() - p->t_last_draw >= 0.1) draw(p, extra, 0);
    } else {
        int decile = (int)(10 * done / p->total);
        if (decile > p->last_decile && decile < 10) {
            p->last_decile = decile;
            draw(p, extra, 0);
        }
    }
}

void mq_progress_finish(mq_progress_t *p, const char *extra) {
    if (!p->enabled) return;
    p->done = p->total;
    draw(p, extra, 1);
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

double mq_median(const double *v, int n) {
    if (n < 1) return 0.0;
    double *s = malloc((size_t)n * sizeof *s);
    if (!s) return v[n / 2]; /* out of memory: a sample rather than nothing */
    memcpy(s, v, (size_t)n * sizeof *v);
    qsort(s, (size_t)n, sizeof *s, cmp_double);
    double m = n % 2 ? s[n / 2] : 0.5 * (s[n / 2 - 1] + s[n / 2]);
    free(s);
    return m;
}
