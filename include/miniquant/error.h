/* miniquant: status codes and error messages.
 *
 * Every library function that can fail returns an int status (MQ_OK == 0, an MQ_ERR_* code
 * otherwise) and, when given a non-NULL mq_error_t, leaves a message the caller can print.
 * The library never exits; only the CLI decides how to end. */
#ifndef MINIQUANT_ERROR_H
#define MINIQUANT_ERROR_H

#include <stddef.h>

enum {
    MQ_OK = 0,
    MQ_ERR_IO = -1,          /* a file could not be opened, read or written */
    MQ_ERR_FORMAT = -2,      /* a file's content is malformed, truncated or hostile */
    MQ_ERR_NOMEM = -3,       /* an allocation failed */
    MQ_ERR_ARG = -4,         /* a caller passed an invalid argument (bad flag, scheme name...) */
    MQ_ERR_UNSUPPORTED = -5, /* valid input that this build cannot handle */
    MQ_ERR_NOT_FOUND = -6,   /* a key, tensor or file that was asked for is absent */
};

typedef struct mq_error {
    int code;
    char msg[1024];
} mq_error_t;

/* Records code and a printf-style message in err (if non-NULL) and returns code. Bytes a
 * terminal would not show as text (control characters, invalid UTF-8) are escaped as \n, \t,
 * \xHH, so that text quoted from a file cannot forge the message; escaping is idempotent. */
int mq_error_set(mq_error_t *err, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Prepends "context: " (escaped alike) to the message already in err (if any); returns
 * err->code (or MQ_OK). */
int mq_error_prefix(mq_error_t *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Clears err to MQ_OK with an empty message. */
void mq_error_clear(mq_error_t *err);

/* A short name for a status code ("I/O error", "format error", ...). */
const char *mq_status_name(int code);

#endif
