/* miniquant CLI: the subcommand table and helpers shared by the cmd_*.c files. */
#ifndef MINIQUANT_CLI_H
#define MINIQUANT_CLI_H

#include "miniquant/error.h"

typedef struct mq_command {
    const char *name;
    const char *summary;
    int (*run)(int argc, char **argv); /* argv[0] is the command name */
} mq_command_t;

int cmd_corpus(int argc, char **argv);

/* Prints "miniquant: <message>" to stderr and returns exit status 1. */
int cli_fail(const mq_error_t *err);

#endif
