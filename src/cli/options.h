/* miniquant CLI: options as data. A command declares its options once, as a table; parsing argv
 * and the --help text are both generated from that table, so the two cannot drift apart.
 *
 *     const char *model = NULL, *json = NULL;
 *     long threads = 0;
 *     cli_option_t opts[] = {
 *         {CLI_OPT_MODEL(&model, "the model"), .required = 1},
 *         {CLI_OPT_JSON(&json)},
 *         {CLI_OPT_THREADS(&threads)},
 *         {0},
 *     };
 *     const cli_command_t cmd = {.name = "eval", .about = "Perplexity of ...\n", .opts = opts};
 *     int rc = cli_parse(&cmd, argc, argv, NULL);
 *     if (rc != CLI_CONTINUE) return rc;
 */
#ifndef MINIQUANT_CLI_OPTIONS_H
#define MINIQUANT_CLI_OPTIONS_H

#include <stddef.h>
#include <stdio.h>

#include "miniquant/corpus.h" /* MQ_WORDNET_DIR */

#define CLI_MAX_OPTIONS 32 /* per command, --help not counted */
#define CLI_MAX_SCHEMES 64 /* names one --schemes list holds */
#define CLI_DEFAULT_MODEL "models/minigpt-default.gguf"

/* What cli_parse returns when the command should go on; any other value is the exit status the
 * command returns at once (0 after --help, 2 after a usage error). */
#define CLI_CONTINUE (-1)

typedef struct cli_option cli_option_t;

/* Takes an option's argument (and its .def, before argv is parsed). Returns 0, or non-zero after
 * writing into msg what was wrong: cli_parse then prints it with the usage and returns 2. */
typedef int (*cli_option_fn)(const cli_option_t *opt, const char *arg, char *msg, size_t msg_size);

struct cli_option {
    const char *name; /* long name without the dashes; NULL ends a table */
    char short_name;  /* 0: none; 'h' belongs to --help */
    const char *arg;  /* the argument's name in the help, e.g. "FILE"; NULL: a flag */
    const char *help;
    /* Text appended to the help, computed when the help is printed: the valid values where
     * they come from the library (the scheme grammar), never a copy of them. */
    const char *(*values)(void);
    const char *def;      /* the default: stored in the target before parsing, and shown */
    const char *def_text; /* the default in words, when the command computes it (.def NULL) */
    int required;
    const char *subs; /* subcommands (space-separated) whose synopsis lists the option and
                       * that require it when .required; NULL: all. The others still accept
                       * it, as they always have. */

    /* Where the value goes: exactly one of these. */
    int *flag;        /* set to 1 */
    const char **str; /* the argument itself */
    int *i;           /* a whole number in [lo, hi] */
    long *l;          /* a whole number in [lo, hi] */
    double *d;        /* a number in [lo, hi] */
    cli_option_fn fn; /* anything else; ctx is its target */
    void *ctx;
    double lo, hi;
};

typedef struct cli_sub {
    const char *name; /* NULL ends the list */
    const char *args; /* its positional arguments as the synopsis shows them; NULL: none */
} cli_sub_t;

typedef struct cli_command {
    const char *name;      /* the word after "miniquant" */
    const cli_sub_t *subs; /* when set, argv[1] must name one of these */
    const char *args;      /* positional arguments as the synopsis shows them; NULL: none */
    int in_order;          /* options end at the first positional argument (TEXT may hold
                            * words that start with '-') */
    const char *about;     /* the description, printed as written */
    const char *epilog;    /* printed after the options, or NULL */
    cli_option_t *opts;    /* ended by an entry without a name */
} cli_command_t;

/* The positional arguments cli_parse leaves for the command. */
typedef struct cli_args {
    const char *sub; /* the subcommand, when the command has them */
    int n;
    char **v;
} cli_args_t;

/* Parses argv (argv[0] is the command's name) into the targets the options name, after storing
 * their defaults. -h / --help prints the usage to stdout and returns 0; an unknown option, a
 * missing argument, a number out of range, a positional argument the command takes none of, or
 * a missing required option prints "miniquant CMD: <what>" and the usage to stderr and returns
 * 2. Otherwise returns CLI_CONTINUE with the positional arguments in *args (may be NULL). Safe
 * to call again for another argv: getopt is restarted. */
int cli_parse(const cli_command_t *cmd, int argc, char **argv, cli_args_t *args);

/* The usage: synopsis, description, the options with their help and defaults, epilog. */
void cli_print_usage(const cli_command_t *cmd, FILE *fp);

/* Prints "miniquant CMD: <fmt ...>", then the command's usage, to stderr; returns 2. */
int cli_usage_error(const cli_command_t *cmd, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* --schemes LIST: the comma-separated names, each checked against the grammar; "all" gives
 * the standard schemes. Set max (at most CLI_MAX_SCHEMES) before parsing. */
typedef struct cli_scheme_list {
    int max;
    int n;
    const char *names[CLI_MAX_SCHEMES + 1]; /* NULL-terminated; into buf or the library's */
    char buf[4096];
} cli_scheme_list_t;

int cli_scheme_list_parse(const cli_option_t *opt, const char *arg, char *msg, size_t msg_size);

/* --model given more than once: the paths in order, at most CLI_MAX_MODELS. */
#define CLI_MAX_MODELS 32
typedef struct cli_model_list {
    int n;
    const char *v[CLI_MAX_MODELS];
} cli_model_list_t;
int cli_model_list_add(const cli_option_t *opt, const char *arg, char *msg, size_t msg_size);
const char *cli_scheme_values(void);      /* "valid: " and the grammar */
const char *cli_scheme_list_values(void); /* what 'all' is, and the grammar */

/* The options several commands share, each defined here once. Each expands to the fields of
 * an entry; a command adds its own (.def, .required) inside the braces:
 *     {CLI_OPT_MODEL(&model, "the FP32 model"), .def = CLI_DEFAULT_MODEL}
 * A number's target may be an int or a long; any other type does not compile. */
#define CLI_TARGET_INT(p)                                                                          \
    .i = _Generic((p), int * : (p), long * : NULL), .l = _Generic((p), long * : (p), int * : NULL)

#define CLI_OPT_THREADS(p)                                                                         \
    .name = "threads", .arg = "N", .help = "threads for OpenMP and OpenBLAS",                      \
    .def_text = "all cores", CLI_TARGET_INT(p), .lo = 1, .hi = 1024
#define CLI_OPT_MODEL(p, help_) .name = "model", .arg = "FILE.gguf", .str = (p), .help = (help_)
/* --model FILE.gguf given once or more, into a cli_model_list_t */
#define CLI_OPT_MODELS(list, help_)                                                                \
    .name = "model", .arg = "FILE.gguf", .fn = cli_model_list_add, .ctx = (list), .help = (help_)
#define CLI_OPT_SCHEME(p, help_)                                                                   \
    .name = "scheme", .arg = "NAME", .str = (p), .help = (help_), .values = cli_scheme_values
#define CLI_OPT_SCHEMES(list, help_)                                                               \
    .name = "schemes", .arg = "LIST", .fn = cli_scheme_list_parse, .ctx = (list), .help = (help_), \
    .values = cli_scheme_list_values
#define CLI_OPT_SKIP_LM_HEAD(p)                                                                    \
    .name = "skip-lm-head", .flag = (p),                                                           \
    .help = "keep lm_head (output.weight) in FP32, the LLM.int8() convention"
#define CLI_OPT_JSON(p)                                                                            \
    .name = "json", .arg = "FILE", .str = (p), .help = "also write the results as JSON"
#define CLI_OPT_SEED(p, help_)                                                                     \
    .name = "seed", .arg = "N", CLI_TARGET_INT(p), .lo = 0, .hi = 2147483647.0, .help = (help_)
#define CLI_OPT_WORDNET(p)                                                                         \
    .name = "wordnet", .arg = "DIR", .str = (p), .def_text = MQ_WORDNET_DIR,                       \
    .help = "WordNet 3.0 data files, from the package wordnet-base"
#define CLI_OPT_CONFIG(p)                                                                          \
    .name = "config", .arg = "NAME", .str = (p), .def = "default",                                 \
    .help = "the MiniGPT preset: tiny (L=2 C=64, trains in seconds) or default (L=4 C=256, "       \
            "~10 minutes)"
#define CLI_OPT_VOCAB(p)                                                                           \
    .name = "vocab", .arg = "N", CLI_TARGET_INT(p), .lo = 258, .hi = 1 << 20, .def = "4096",       \
    .help = "tokenizer vocabulary, including the 256 byte tokens and <|endoftext|>"
#define CLI_OPT_REPS(p, max, def_text_)                                                            \
    .name = "reps", .arg = "N", CLI_TARGET_INT(p), .lo = 1, .hi = (max), .def_text = (def_text_),  \
    .help = "repetitions"

#endif
