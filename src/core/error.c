#include "miniquant/error.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

/* The length of the UTF-8 sequence at s that a terminal shows as text (0: none): a valid
 * sequence, not overlong, not a surrogate, not a C1 control (U+0080..U+009F). */
static size_t printable_utf8(const unsigned char *s) {
    unsigned c = s[0];
    size_t n = c >= 0xc2 && c <= 0xdf   ? 2
               : c >= 0xe0 && c <= 0xef ? 3
               : c >= 0xf0 && c <= 0xf4 ? 4
                                        : 0;
    for (size_t i = 1; i < n; i++)
        if ((s[i] & 0xc0) != 0x80) return 0;
    if (n == 2 && c == 0xc2 && s[1] < 0xa0) return 0;  /* C1 controls */
    if (n == 3 && c == 0xe0 && s[1] < 0xa0) return 0;  /* overlong */
    if (n == 3 && c == 0xed && s[1] >= 0xa0) return 0; /* surrogates */
    if (n == 4 && c == 0xf0 && s[1] < 0x90) return 0;  /* overlong */
    if (n == 4 && c == 0xf4 && s[1] >= 0x90) return 0; /* beyond U+10FFFF */
    return n;
}

/* Copies src into dst (cap bytes with the NUL) with every byte a terminal would not show as
 * text escaped: control characters as \n, \r, \t or \xHH, and bytes that are not printable
 * UTF-8 as \xHH. A message quoting a file cannot move the cursor, colour the terminal or start
 * a new line. Escaped text passes unchanged, so escaping twice is escaping once. Stops before a
 * character or escape that would not fit whole. */
static void escape_text(char *dst, size_t cap, const char *src) {
    size_t n = 0;
    for (const unsigned char *s = (const unsigned char *)src; *s;) {
        char buf[8];
        size_t len, step = *s >= 0x80 ? printable_utf8(s) : *s >= 0x20 && *s < 0x7f;
        if (step) {
            memcpy(buf, s, step);
            len = step;
        } else {
            const char *named = *s == '\n' ? "\\n" : *s == '\r' ? "\\r" : *s == '\t' ? "\\t" : NULL;
            len = named ? (size_t)snprintf(buf, sizeof buf, "%s", named)
                        : (size_t)snprintf(buf, sizeof buf, "\\x%02x", *s);
            step = 1;
        }
        if (n + len >= cap) break;
        memcpy(dst + n, buf, len);
        n += len;
        s += step;
    }
    dst[n] = '\0';
}

int mq_error_set(mq_error_t *err, int code, const char *fmt, ...) {
    if (err) {
        char raw[sizeof err->msg];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(raw, sizeof raw, fmt, ap);
        va_end(ap);
        escape_text(err->msg, sizeof err->msg, raw);
        err->code = code;
    }
    return code;
}

int mq_error_prefix(mq_error_t *err, const char *fmt, ...) {
    if (!err) return MQ_OK;
    char raw[512], prefix[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(raw, sizeof raw, fmt, ap);
    va_end(ap);
    escape_text(prefix, sizeof prefix, raw);
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
