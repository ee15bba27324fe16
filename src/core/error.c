#include "miniquant/error.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

int mq_error_set(mq_error_t *err, int code, const char *fmt, ...) {
    if (err) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err->msg, sizeof err->msg, fmt, ap);
        va_end(ap);
        err->code = code;
    }
    return code;
}

int mq_error_prefix(mq_error_t *err, const char *fmt, ...) {
    if (!err) return MQ_OK;
    char prefix[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(prefix, sizeof prefix, fmt, ap);
    va_end(ap);
    /* Assembled by hand: the message is truncated on purpose when prefix + old overflow it. */
    char old[sizeof err->msg];
    memcpy(old, err->msg, sizeof old);
    size_t cap = sizeof err->msg - 1, n = 0;
    for (const char *parts[] = {prefix, ": ", old}, **p = parts; p < parts + 3; p++) {
        size_t len = strlen(*p);
        if (len > cap - n) len = cap - n;
        memcpy(err->msg + n, *p, len);
        n += len;
    }
    err->msg[n] = '\0';
    return err->code;
}

void mq_error_clear(mq_error_t *err) {
    if (!err) return;
    err->code = MQ_OK;
    err->msg[0] = '\0';
}

const char *mq_status_name(int code) {
    switch (code) {
    case MQ_OK: return "ok";
    case MQ_ERR_IO: return "I/O error";
    case MQ_ERR_FORMAT: return "format error";
    case MQ_ERR_NOMEM: return "out of memory";
    case MQ_ERR_ARG: return "invalid argument";
    case MQ_ERR_UNSUPPORTED: return "unsupported";
    case MQ_ERR_NOT_FOUND: return "not found";
    default: return "unknown error";
    }
}
