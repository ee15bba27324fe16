#include <stdio.h>
#include "cli.h"
int cmd_corpus(int argc, char **argv) { (void)argc; (void)argv; return 0; }
