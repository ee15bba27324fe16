/* The CLI's option tables (src/cli/options.c): parsing and the generated --help. */
#include <criterion/criterion.h>

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "miniquant/quant.h"
#include "miniquant/recipe.h"
#include "options.h"
#include "cli.h"

/* ---------------------------------------------------------------------------------------------
 * a command declared as the CLI's are */

static struct {
    const char *model, *scheme, *out, *json;
    long threads, ctx;
    int batch, quick;
    double lr;
    cli_scheme_list_t schemes;
} t;

static cli_option_t opts[16];
static cli_command_t demo;

static void declare(void) {
    memset(&t, 0, sizeof t);
    t.schemes.max = 4;
    cli_option_t o[] = {
        {CLI_OPT_MODEL(&t.model, "the model"), .required = 1},
        {CLI_OPT_SCHEME(&t.scheme, "how the layers are quantized")},
        {.name = "out", .short_name = 'o', .arg = "DIR", .str = &t.out, .def = "data/out",
         .help = "where the results go"},
        {CLI_OPT_THREADS(&t.threads)},
        {.name = "ctx", .arg = "N", .l = &t.ctx, .lo = 2, .hi = 64, .def = "16",
         .help = "window length"},
        {.name = "batch", .arg = "N", .i = &t.batch, .lo = 1, .hi = 8, .def = "4",
         .help = "windows per pass"},
        {.name = "lr", .arg = "X", .d = &t.lr, .lo = 0, .hi = 1, .def = "0.5",
         .help = "learning rate"},
        {.name = "quick", .flag = &t.quick, .help = "fewer repetitions"},
        {CLI_OPT_SCHEMES(&t.schemes, "comma-separated scheme names"),
         .def = "fp32,int8_per_channel"},
        {CLI_OPT_JSON(&t.json)},
        {0},
    };
    cr_assert_leq(sizeof o, sizeof opts);
    memcpy(opts, o, sizeof o);
    demo = (cli_command_t){.name = "demo", .about = "Demonstrates the option tables.\n",
                           .epilog = "An epilog.\n", .opts = opts};
}

TestSuite(options, .init = declare);

/* What cli_parse printed, and returned. */
typedef struct captured {
    int rc;
    char out[16384], err[16384];
} captured_t;

static void slurp(FILE *f, char *buf, size_t size) {
    rewind(f);
    size_t n = fread(buf, 1, size - 1, f);
    buf[n] = '\0';
    fclose(f);
}

static void parse(captured_t *c, const cli_command_t *cmd, char **argv, cli_args_t *args) {
    int argc = 0;
    while (argv[argc]) argc++;
    fflush(stdout);
    fflush(stderr);
    FILE *fo = tmpfile(), *fe = tmpfile();
    cr_assert(fo && fe);
    int so = dup(1), se = dup(2);
    dup2(fileno(fo), 1);
    dup2(fileno(fe), 2);
    c->rc = cli_parse(cmd, argc, argv, args);
    fflush(stdout);
    fflush(stderr);
    dup2(so, 1);
    dup2(se, 2);
    close(so);
    close(se);
    slurp(fo, c->out, sizeof c->out);
    slurp(fe, c->err, sizeof c->err);
}

/* s with every run of white space made one space: the help wraps its lines where it likes. */
static char *squeeze(const char *s) {
    char *r = malloc(strlen(s) + 1), *w = r;
    cr_assert(r);
    for (; *s; s++) {
        if (isspace((unsigned char)*s)) {
            if (w > r && w[-1] != ' ') *w++ = ' ';
        } else {
            *w++ = *s;
        }
    }
    *w = '\0';
    return r;
}

static int contains(const char *text, const char *what) {
    char *a = squeeze(text), *b = squeeze(what);
    int found = strstr(a, b) != NULL;
    free(a);
    free(b);
    return found;
}

/* Asserts a usage error: status 2, nothing on stdout, the message and then the usage on
 * stderr. */
static void assert_usage_error(const captured_t *c, const char *message) {
    cr_assert_eq(c->rc, 2, "status %d, stderr: %s", c->rc, c->err);
    cr_assert_str_empty(c->out);
    char head[512];
    snprintf(head, sizeof head, "miniquant demo: %s\n\nusage: miniquant demo ", message);
    cr_assert(!strncmp(c->err, head, strlen(head)), "expected \"%s\", got: %s", head, c->err);
}

/* ---------------------------------------------------------------------------------------------
 * parsing */

Test(options, stores_the_defaults_when_no_option_is_given) {
    captured_t c;
    parse(&c, &demo, (char *[]){"demo", "--model", "m.gguf", NULL}, NULL);
    cr_assert_eq(c.rc, CLI_CONTINUE, "%s", c.err);
    cr_assert_str_empty(c.err);
    cr_assert_str_eq(t.model, "m.gguf");
    cr_assert_str_eq(t.out, "data/out");
    cr_assert_null(t.scheme);
    cr_assert_null(t.json);
    cr_assert_eq(t.threads, 0); /* no .def: the command's own value stays */
    cr_assert_eq(t.ctx, 16);
    cr_assert_eq(t.batch, 4);
    cr_assert_float_eq(t.lr, 0.5, 0);
    cr_assert_eq(t.quick, 0);
    cr_assert_eq(t.schemes.n, 2);
    cr_assert_str_eq(t.schemes.names[0], "fp32");
    cr_assert_str_eq(t.schemes.names[1], "int8_per_channel");
    cr_assert_null(t.schemes.names[2]);
}

Test(options, stores_every_kind_of_value_in_every_spelling) {
    captured_t c;
    parse(&c, &demo,
          (char *[]){"demo", "--model=m.gguf", "-o", "x", "--thr", "3", "--ctx=64", "--batch",
                     "1", "--lr", "1e-3", "--quick", "--scheme", "int4_g64", "--json", "r.json",
                     NULL},
          NULL);
    cr_assert_eq(c.rc, CLI_CONTINUE, "%s", c.err);
    cr_assert_str_eq(t.model, "m.gguf");
    cr_assert_str_eq(t.out, "x");
    cr_assert_eq(t.threads, 3);
    cr_assert_eq(t.ctx, 64);
    cr_assert_eq(t.batch, 1);
    cr_assert_float_eq(t.lr, 1e-3, 1e-12);
    cr_assert_eq(t.quick, 1);
    cr_assert_str_eq(t.scheme, "int4_g64");
    cr_assert_str_eq(t.json, "r.json");
}

Test(options, the_standard_schemes_for_all_and_a_checked_list_otherwise) {
    captured_t c;
    t.schemes.max = CLI_MAX_SCHEMES;
    parse(&c, &demo, (char *[]){"demo", "--model", "m", "--schemes", "all", NULL}, NULL);
    cr_assert_eq(c.rc, CLI_CONTINUE, "%s", c.err);
    int n = 0;
    while (MQ_STANDARD_SCHEMES[n]) {
        cr_assert_str_eq(t.schemes.names[n], MQ_STANDARD_SCHEMES[n]);
        n++;
    }
    cr_assert_eq(t.schemes.n, n);
    cr_assert_null(t.schemes.names[n]);

    parse(&c, &demo, (char *[]){"demo", "--model", "m", "--schemes", "nf4_g64,fp16", NULL},
          NULL);
    cr_assert_eq(c.rc, CLI_CONTINUE, "%s", c.err);
    cr_assert_eq(t.schemes.n, 2);
    cr_assert_str_eq(t.schemes.names[0], "nf4_g64");
    cr_assert_str_eq(t.schemes.names[1], "fp16");
}

Test(options, a_bad_scheme_list_is_a_usage_error) {
    captured_t c;
    parse(&c, &demo, (char *[]){"demo", "--model", "m", "--schemes", "fp32,int9_g64", NULL},
          NULL);
    cr_assert_eq(c.rc, 2);
    cr_assert(strstr(c.err, "int9_g64") && contains(c.err, mq_scheme_grammar()), "%s", c.err);
    /* max is 4 */
    parse(&c, &demo, (char *[]){"demo", "--model", "m", "--schemes", "fp32,fp16,fp32,fp16,fp32",
                                NULL},
          NULL);
    assert_usage_error(&c, "--schemes: more than 4 schemes");
    parse(&c, &demo, (char *[]){"demo", "--model", "m", "--schemes", ",,", NULL}, NULL);
    assert_usage_error(&c, "--schemes lists no scheme");
}

Test(options, a_missing_required_option_is_a_usage_error) {
    captured_t c;
    parse(&c, &demo, (char *[]){"demo", "--quick", NULL}, NULL);
    assert_usage_error(&c, "--model FILE.gguf is required");
}

Test(options, an_unknown_option_is_a_usage_error) {
    captured_t c;
    parse(&c, &demo, (char *[]){"demo", "--model", "m", "--bogus", NULL}, NULL);
    assert_usage_error(&c, "unknown option '--bogus'");
    parse(&c, &demo, (char *[]){"demo", "-x", "--model", "m", NULL}, NULL);
    assert_usage_error(&c, "unknown option '-x'");
}

Test(options, a_missing_or_unwanted_argument_is_a_usage_error) {
    captured_t c;
    parse(&c, &demo, (char *[]){"demo", "--model", NULL}, NULL);
    assert_usage_error(&c, "--model needs an argument (FILE.gguf)");
    parse(&c, &demo, (char *[]){"demo", "--model", "m", "--quick=1", NULL}, NULL);
    assert_usage_error(&c, "--quick takes no argument");
}

Test(options, a_number_out_of_range_is_a_usage_error) {
    captured_t c;
    parse(&c, &demo, (char *[]){"demo", "--model", "m", "--ctx", "65", NULL}, NULL);
    assert_usage_error(&c, "--ctx takes a whole number from 2 to 64, not '65'");
    parse(&c, &demo, (char *[]){"demo", "--model", "m", "--batch", "0", NULL}, NULL);
    assert_usage_error(&c, "--batch takes a whole number from 1 to 8, not '0'");
    parse(&c, &demo, (char *[]){"demo", "--model", "m", "--threads", "2x", NULL}, NULL);
    assert_usage_error(&c, "--threads takes a whole number from 1 to 1024, not '2x'");
    parse(&c, &demo, (char *[]){"demo", "--model", "m", "--lr", "1.5", NULL}, NULL);
    assert_usage_error(&c, "--lr takes a number from 0 to 1, not '1.5'");
    parse(&c, &demo, (char *[]){"demo", "--model", "m", "--lr", "nan", NULL}, NULL);
    assert_usage_error(&c, "--lr takes a number from 0 to 1, not 'nan'");
}

Test(options, a_positional_argument_is_an_error_unless_declared) {
    captured_t c;
    parse(&c, &demo, (char *[]){"demo", "--model", "m", "extra", NULL}, NULL);
    assert_usage_error(&c, "unexpected argument 'extra'");

    demo.args = "NAME...";
    cli_args_t a;
    parse(&c, &demo, (char *[]){"demo", "one", "--model", "m", "two", NULL}, &a);
    cr_assert_eq(c.rc, CLI_CONTINUE, "%s", c.err);
    cr_assert_eq(a.n, 2);
    cr_assert_str_eq(a.v[0], "one");
    cr_assert_str_eq(a.v[1], "two");
    cr_assert_str_eq(t.model, "m");
}

Test(options, parses_again_from_the_start_as_miniquant_run_does) {
    captured_t c;
    parse(&c, &demo, (char *[]){"demo", "--model", "a", "--ctx", "8", NULL}, NULL);
    cr_assert_eq(c.rc, CLI_CONTINUE);
    cr_assert_eq(t.ctx, 8);
    parse(&c, &demo, (char *[]){"demo", "--model", "b", NULL}, NULL);
    cr_assert_eq(c.rc, CLI_CONTINUE);
    cr_assert_str_eq(t.model, "b");
    cr_assert_eq(t.ctx, 16, "the default again, not the last run's value");
}

/* ---------------------------------------------------------------------------------------------
 * subcommands */

static const cli_sub_t SUBS[] = {{"train", NULL}, {"encode", "[TEXT...]"}, {NULL, NULL}};

Test(options, a_subcommand_is_named_first_and_checked) {
    const char *model = NULL;
    int special = 0;
    cli_option_t o[] = {
        {CLI_OPT_MODEL(&model, "the tokenizer"), .required = 1, .subs = "encode"},
        {.name = "special", .flag = &special, .subs = "encode", .help = "special tokens"},
        {0},
    };
    cli_command_t cmd = {.name = "demo", .subs = SUBS, .in_order = 1, .opts = o};
    captured_t c;
    cli_args_t a;
    parse(&c, &cmd, (char *[]){"demo", NULL}, &a);
    assert_usage_error(&c, "missing subcommand (valid: train, encode)");
    parse(&c, &cmd, (char *[]){"demo", "bogus", NULL}, &a);
    assert_usage_error(&c, "unknown subcommand 'bogus' (valid: train, encode)");

    /* required only where declared */
    parse(&c, &cmd, (char *[]){"demo", "train", NULL}, &a);
    cr_assert_eq(c.rc, CLI_CONTINUE, "%s", c.err);
    cr_assert_str_eq(a.sub, "train");
    parse(&c, &cmd, (char *[]){"demo", "encode", NULL}, &a);
    assert_usage_error(&c, "--model FILE.gguf is required");
    parse(&c, &cmd, (char *[]){"demo", "train", "text", NULL}, &a);
    assert_usage_error(&c, "unexpected argument 'text'");

    /* in_order: the options end at the first word of TEXT */
    parse(&c, &cmd, (char *[]){"demo", "encode", "--model", "m", "hello", "--special", NULL}, &a);
    cr_assert_eq(c.rc, CLI_CONTINUE, "%s", c.err);
    cr_assert_str_eq(a.sub, "encode");
    cr_assert_eq(special, 0);
    cr_assert_eq(a.n, 2);
    cr_assert_str_eq(a.v[0], "hello");
    cr_assert_str_eq(a.v[1], "--special");

    parse(&c, &cmd, (char *[]){"demo", "--help", NULL}, &a);
    cr_assert_eq(c.rc, 0);
    cr_assert(strstr(c.out, "usage: miniquant demo train\n"), "%s", c.out);
    cr_assert(contains(c.out, "miniquant demo encode --model FILE.gguf [--special] [TEXT...]"),
              "%s", c.out);
}

/* ---------------------------------------------------------------------------------------------
 * --help */

Test(options, help_lists_every_option_with_its_default_and_the_grammar) {
    captured_t c;
    for (int k = 0; k < 2; k++) {
        parse(&c, &demo, (char *[]){"demo", k ? "-h" : "--help", NULL}, NULL);
        cr_assert_eq(c.rc, 0);
        cr_assert_str_empty(c.err);
        const char *synopsis = "usage: miniquant demo --model FILE.gguf [--scheme NAME]";
        cr_assert(!strncmp(c.out, synopsis, strlen(synopsis)), "%s", c.out);
        for (const cli_option_t *o = opts; o->name; o++) {
            char lab[128];
            snprintf(lab, sizeof lab, "--%s%s%s", o->name, o->arg ? " " : "",
                     o->arg ? o->arg : "");
            cr_assert(contains(c.out, lab), "%s missing from:\n%s", lab, c.out);
            cr_assert(contains(c.out, o->help), "help of --%s missing", o->name);
            const char *def = o->def ? o->def : o->def_text;
            if (def) {
                char d[128];
                snprintf(d, sizeof d, "(default: %s)", def);
                cr_assert(contains(c.out, d), "%s missing", d);
            }
        }
        cr_assert(contains(c.out, "-o, --out DIR"));
        cr_assert(contains(c.out, "-h, --help"));
        cr_assert(contains(c.out, "Demonstrates the option tables."));
        cr_assert(contains(c.out, "An epilog."));
        char valid[512];
        snprintf(valid, sizeof valid, "valid: %s", mq_scheme_grammar());
        cr_assert(contains(c.out, valid), "the grammar is missing:\n%s", c.out);
        for (int i = 0; MQ_STANDARD_SCHEMES[i]; i++)
            cr_assert(strstr(c.out, MQ_STANDARD_SCHEMES[i]));
    }
}

Test(options, help_lines_fit_the_width) {
    FILE *f = tmpfile();
    cr_assert(f);
    cli_print_usage(&demo, f);
    char buf[16384];
    slurp(f, buf, sizeof buf);
    int lines = 0;
    for (char *line = strtok(buf, "\n"); line; line = strtok(NULL, "\n"), lines++)
        cr_assert_leq(strlen(line), 96, "too long: %s", line);
    cr_assert_gt(lines, 10);
}

/* ---------------------------------------------------------------------------------------------
 * the commands of the built CLI */

Test(cli_help, every_command_prints_its_help_and_the_scheme_grammar_where_it_takes_one) {
    static const struct {
        const char *cmd;
        int scheme;
    } CMDS[] = {{"run", 0},      {"corpus", 0},   {"tokenizer", 0},  {"train", 0},
                {"quantize", 1}, {"pairs", 0},    {"experiment", 0}, {"eval", 1},
                {"export", 1},   {"sweep", 1},    {"bench", 0},      {"roofline", 1},
                {"gptq-toy", 0},   {"synth", 0},      {"generate", 1}};
    static char out[65536];
    for (size_t i = 0; i < sizeof CMDS / sizeof CMDS[0]; i++) {
        char args[128];
        snprintf(args, sizeof args, "%s --help", CMDS[i].cmd);
        cr_assert_eq(run_cli(args, out, sizeof out), 0, "%s", args);
        char head[64];
        snprintf(head, sizeof head, "usage: miniquant %s", CMDS[i].cmd);
        cr_assert(!strncmp(out, head, strlen(head)), "%s:\n%s", args, out);
        cr_assert(strstr(out, "-h, --help"), "%s", args);
        cr_assert_eq(contains(out, mq_scheme_grammar()), CMDS[i].scheme, "%s", args);
    }
    cr_assert_eq(run_cli("quantize --bogus", out, sizeof out), 2);
    cr_assert_str_empty(out, "usage errors go to stderr");
    cr_assert_eq(run_cli("eval --model m --ctx 1", out, sizeof out), 2);
}

Test(cli_help, export_takes_a_scheme_or_a_recipe_and_says_which_goes_with_what) {
    static char out[65536];
    cr_assert_eq(run_cli("export --help", out, sizeof out), 0);
    cr_assert(contains(out, mq_recipe_grammar()), "%s", out);
    /* each of these is refused before any model is read */
    static const char *const BAD[] = {
        "export --model m.gguf --out o.gguf",
        "export --model m.gguf --out o.gguf --scheme q4_k --recipe q4_k_m",
        "export --model m.gguf --out o.gguf --recipe auto_gptq",
        "export --model m.gguf --out o.gguf --recipe q4_k_m --target-bpw 4.5",
        "export --model m.gguf --out o.gguf --scheme q4_k --target-bpw 4.5",
        "export --model m.gguf --out o.gguf --recipe q4_k_z",
        "export --model m.gguf --out o.gguf --recipe q4_0_imat",
    };
    for (size_t i = 0; i < sizeof BAD / sizeof BAD[0]; i++)
        cr_assert_eq(run_cli(BAD[i], out, sizeof out), 2, "%s", BAD[i]);
}
