/* miniquant: reports. JSON files through cJSON and plots through gnuplot's pngcairo terminal,
 * both written crash-safely (temporary file renamed into place). */
#ifndef MINIQUANT_REPORT_H
#define MINIQUANT_REPORT_H

#include <cjson/cJSON.h>
#include <stddef.h>
#include <stdint.h>

#include "miniquant/error.h"

/* Writes root as pretty-printed JSON (with a final newline). */
int mq_json_write(const char *path, const cJSON *root, mq_error_t *err);
/* Reads and parses a JSON file; the error names the file and the position of a syntax error. */
int mq_json_read(const char *path, cJSON **out, mq_error_t *err);

/* Renders a PNG of width x height pixels with gnuplot: script is gnuplot commands (inline data
 * blocks allowed) that draw one plot; the terminal and output are set here. Text is plain (no
 * enhanced markup, so names like int8_per_channel print as they are); bold is a font choice,
 * e.g. font 'DejaVu Sans:Bold,11'. */
int mq_plot_png(const char *png_path, int width, int height, const char *script, mq_error_t *err);

/* A growable string for building gnuplot scripts and data blocks. */
typedef struct mq_strbuf {
    char *s;
    size_t len, cap;
    int oom;
} mq_strbuf_t;
void mq_strbuf_printf(mq_strbuf_t *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void mq_strbuf_free(mq_strbuf_t *b);

/* Places n_labels text labels beside the first n_labels of n_points points so that no two labels
 * overlap, no label covers a point and every label stays inside the plot; the points after the
 * first n_labels are obstacles only (e.g. samples along a drawn line). All coordinates are
 * fractions of the plot area (0..1, as gnuplot's "graph" system): px, py the points; w, h each
 * label's width and height (an estimate from its length and the font). For each label,
 * candidates are tried in order (right, left, above, below the point, then right and left
 * shifted up and down by growing steps) and the first free one is taken; when none is free the
 * least crowded is. lx, ly receive the left end, vertical centre of each label (for
 * "set label ... at graph lx,ly left"); moved[i] is 1 when the label sits away from its point,
 * so that the caller may draw a leader line. */
void mq_plot_place_labels(int n_labels, int n_points, const double *px, const double *py,
                          const double *w, const double *h, double *lx, double *ly, int *moved);

#endif

#ifndef MINIQUANT_REPORT_MANIFEST
#define MINIQUANT_REPORT_MANIFEST
/* The manifest of an experiment: seed, config (borrowed into the result), versions of
 * miniquant and of every library it uses, the hardware (CPU model, cores, SIMD flags,
 * memory), the threads used and the git revision of the source. */
cJSON *mq_manifest(uint64_t seed, cJSON *config);
/* The current UTC time as "YYYY-MM-DDTHH:MM:SSZ". */
void mq_utc_now(char *buf, size_t n);
#endif
