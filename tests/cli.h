/* Running the built CLI from a test. Header-only. */
#ifndef MINIQUANT_TESTS_CLI_H
#define MINIQUANT_TESTS_CLI_H

#include <criterion/criterion.h>
#include <stdio.h>
#include <sys/wait.h>

/* Runs `miniquant ARGS` (stderr discarded), its standard output into out; its exit status, or
 * -1 when it did not exit. */
static inline int run_cli(const char *args, char *out, size_t size) {
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "%s %s 2>/dev/null", MQ_CLI_PATH, args);
    FILE *p = popen(cmd, "r");
    cr_assert(p);
    size_t n = fread(out, 1, size - 1, p);
    out[n] = '\0';
    int st = pclose(p);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

#endif
