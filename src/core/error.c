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
    char old[sizeof err->msg];
    memcpy(old, err->msg, sizeof old);
    snprintf(err->msg, sizeof err->msg, "%s: %s", prefix, old);
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
