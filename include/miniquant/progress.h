/* miniquant: a progress bar on stderr for long work, and a monotonic clock.
 *
 * On a terminal the bar redraws in place (at most ~10 times a second); when stderr is not a
 * terminal it prints a line every 10% so logs stay short. Results never go to stderr. */
#ifndef MINIQUANT_PROGRESS_H
#define MINIQUANT_PROGRESS_H

#include <stdint.h>

typedef struct mq_progress {
    char label[64];
    int64_t total;
    int64_t done;
    double t_start;
    double t_last_draw;
    int last_decile;
    int tty;
    int enabled;
} mq_progress_t;

/* Seconds from a monotonic clock. */
double mq_now(void);
/* The median of v[0 .. n) (n >= 1), e.g. of repeated timings; v is left as it is. */
double mq_median(const double *v, int n);

void mq_progress_start(mq_progress_t *p, const char *label, int64_t total);
/* Sets progress to done; extra (may be NULL) is shown after the bar, e.g. "loss 3.21". */
void mq_progress_update(mq_progress_t *p, int64_t done, const char *extra);
/* Draws the final state and ends the line. */
void mq_progress_finish(mq_progress_t *p, const char *extra);

/* MQ_QUIET=1 in the environment turns every bar off (used by the tests). */
int mq_progress_quiet(void);
/* Bars started while muted (depth > 0) stay silent: a loop with its own bar mutes the bars of
 * the work it calls. mq_progress_mute(+1) ... mq_progress_mute(-1). Not thread-safe: call it
 * from the thread that drives the work. */
void mq_progress_mute(int delta);

#endif
