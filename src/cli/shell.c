/* miniquant CLI: running other programs (llama.cpp's tools) through the shell. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

int cli_shell_quote(const char *s, char *buf, size_t n) {
    size_t k = 0;
    if (n < 3) return -1;
    buf[k++] = '\'';
    for (; *s; s++) {
        const char *piece = *s == '\'' ? "'\\''" : (char[]){*s, 0};
        size_t len = strlen(piece);
        if (k + len + 2 > n) return -1;
        memcpy(buf + k, piece, len);
        k += len;
    }
    buf[k++] = '\'';
    buf[k] = 0;
    return 0;
}

int cli_run_capture(const char *cmd, char **out, size_t *len, int *status, mq_error_t *err) {
    *out = NULL;
    *len = 0;
    FILE *fp = popen(cmd, "r");
    if (!fp) return mq_error_set(err, MQ_ERR_IO, "cannot run %s", cmd);
    FILE *mem = open_memstream(out, len);
    char chunk[4096];
    size_t got;
    while (mem && (got = fread(chunk, 1, sizeof chunk, fp)) > 0)
        fwrite(chunk, 1, got, mem);
    *status = pclose(fp);
    if (!mem || fclose(mem) != 0) {
        free(*out);
        *out = NULL;
        return mq_error_set(err, MQ_ERR_NOMEM, "out of memory for the output of %s", cmd);
    }
    return MQ_OK;
}
