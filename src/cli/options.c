#include "options.h"

#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "miniquant/error.h"
#include "miniquant/quant.h"

#define WIDTH 96    /* the width the descriptions are written to */
#define HELP_COL 26 /* a longer label puts its help on the next line */

/* ---------------------------------------------------------------------------------------------
 * the usage text */

/* A writer that wraps words at WIDTH; continuation lines start at indent. */
typedef struct out {
    FILE *fp;
    int col, indent, fresh; /* fresh: nothing written on this line after the indent */
} out_t;

static void out_newline(out_t *o) {
    fprintf(o->fp, "\n%*s", o->indent, "");
    o->col = o->indent;
    o->fresh = 1;
}

/* One unit the wrapper does not break (a word, or a synopsis item such as "[--out DIR]"). */
static void out_word(out_t *o, const char *w, size_t len) {
    if (!o->fresh && o->col + 1 + (int)len > WIDTH) out_newline(o);
    if (!o->fresh) {
        fputc(' ', o->fp);
        o->col++;
    }
    fwrite(w, 1, len, o->fp);
    o->col += (int)len;
    o->fresh = 0;
}

static void out_text(out_t *o, const char *s) {
    while (*s) {
        if (*s == '\n') {
            out_newline(o);
            s++;
        } else if (*s == ' ') {
            s++;
        } else {
            size_t n = strcspn(s, " \n");
            out_word(o, s, n);
            s += n;
        }
    }
}

static int is_end(const cli_option_t *opt) {
    return !opt->name;
}

/* Whether opt belongs to subcommand sub (every option belongs when either is NULL). */
static int in_sub(const cli_option_t *opt, const char *sub) {
    if (!opt->subs || !sub) return 1;
    size_t n = strlen(sub);
    for (const char *p = opt->subs; *p;) {
        size_t w = strcspn(p, " ");
        if (w == n && !strncmp(p, sub, n)) return 1;
        p += w;
        p += strspn(p, " ");
    }
    return 0;
}

static void synopsis(const cli_command_t *cmd, const cli_sub_t *sub, const char *lead, FILE *fp) {
    char head[128];
    snprintf(head, sizeof head, "%sminiquant %s%s%s", lead, cmd->name, sub ? " " : "",
             sub ? sub->name : "");
    fputs(head, fp);
    out_t o = {fp, (int)strlen(head), (int)strlen(head) + 1, 0};
    char item[160];
    /* required options first, as a reader types them */
    for (int pass = 0; pass < 2; pass++)
        for (const cli_option_t *opt = cmd->opts; !is_end(opt); opt++) {
            int optional = !opt->required;
            if (!in_sub(opt, sub ? sub->name : NULL) || optional != pass) continue;
            snprintf(item, sizeof item, "%s--%s%s%s%s", pass ? "[" : "", opt->name,
                     opt->arg ? " " : "", opt->arg ? opt->arg : "", pass ? "]" : "");
            out_word(&o, item, strlen(item));
        }
    const char *args = sub ? sub->args : cmd->args;
    if (args) out_word(&o, args, strlen(args));
    fputc('\n', fp);
}

static void label(const cli_option_t *opt, char *buf, size_t size) {
    char s[8] = "";
    if (opt->short_name) snprintf(s, sizeof s, "-%c, ", opt->short_name);
    snprintf(buf, size, "%s--%s%s%s", s, opt->name, opt->arg ? " " : "", opt->arg ? opt->arg : "");
}

static void option_line(FILE *fp, const char *lab, const char *help, int col) {
    fprintf(fp, "  %s", lab);
    out_t o = {fp, 2 + (int)strlen(lab), col, 1};
    if (o.col + 2 > col) {
        out_newline(&o);
    } else {
        fprintf(fp, "%*s", col - o.col, "");
        o.col = col;
    }
    out_text(&o, help);
    fputc('\n', fp);
}

void cli_print_usage(const cli_command_t *cmd, FILE *fp) {
    if (cmd->subs) {
        for (const cli_sub_t *s = cmd->subs; s->name; s++)
            synopsis(cmd, s, s == cmd->subs ? "usage: " : "       ", fp);
    } else {
        synopsis(cmd, NULL, "usage: ", fp);
    }
    if (cmd->about) fprintf(fp, "\n%s", cmd->about);

    char lab[160];
    int col = 2 + (int)strlen("-h, --help") + 2;
    for (const cli_option_t *opt = cmd->opts; !is_end(opt); opt++) {
        label(opt, lab, sizeof lab);
        int c = 2 + (int)strlen(lab) + 2;
        if (c > col && c <= HELP_COL) col = c;
    }
    fprintf(fp, "\noptions:\n");
    for (const cli_option_t *opt = cmd->opts; !is_end(opt); opt++) {
        char help[2048];
        size_t n = (size_t)snprintf(help, sizeof help, "%s", opt->help ? opt->help : "");
        if (opt->values && n < sizeof help)
            n += (size_t)snprintf(help + n, sizeof help - n, "; %s", opt->values());
        const char *def = opt->def ? opt->def : opt->def_text;
        if (def && n < sizeof help) snprintf(help + n, sizeof help - n, " (default: %s)", def);
        label(opt, lab, sizeof lab);
        option_line(fp, lab, help, col);
    }
    option_line(fp, "-h, --help", "this message", col);
    if (cmd->epilog) fprintf(fp, "\n%s", cmd->epilog);
}

int cli_usage_error(const cli_command_t *cmd, const char *fmt, ...) {
    va_list ap;
    fprintf(stderr, "miniquant %s: ", cmd->name);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\n\n");
    cli_print_usage(cmd, stderr);
    return 2;
}

/* ---------------------------------------------------------------------------------------------
 * parsing */

/* Stores arg into opt's target; a usage error (2) when it is not a valid value. */
static int store(const cli_command_t *cmd, const cli_option_t *opt, const char *arg) {
    if (opt->flag) {
        *opt->flag = 1;
    } else if (opt->str) {
        *opt->str = arg;
    } else if (opt->i || opt->l) {
        char *end;
        errno = 0;
        long v = strtol(arg, &end, 10);
        if (errno || *end || end == arg || v < opt->lo || v > opt->hi)
            return cli_usage_error(cmd, "--%s takes a whole number from %ld to %ld, not '%s'",
                                   opt->name, (long)opt->lo, (long)opt->hi, arg);
        if (opt->i)
            *opt->i = (int)v;
        else
            *opt->l = v;
    } else if (opt->d) {
        char *end;
        errno = 0;
        double v = strtod(arg, &end);
        if (errno || *end || end == arg || !(v >= opt->lo && v <= opt->hi))
            return cli_usage_error(cmd, "--%s takes a number from %g to %g, not '%s'", opt->name,
                                   opt->lo, opt->hi, arg);
        *opt->d = v;
    } else if (opt->fn) {
        char msg[512] = "";
        if (opt->fn(opt, arg, msg, sizeof msg)) return cli_usage_error(cmd, "%s", msg);
    }
    return 0;
}

static int is_help(const char *s) {
    return !strcmp(s, "-h") || !strcmp(s, "--help");
}

static void sub_names(const cli_command_t *cmd, char *buf, size_t size) {
    size_t n = 0;
    buf[0] = '\0';
    for (const cli_sub_t *s = cmd->subs; s->name && n < size; s++)
        n += (size_t)snprintf(buf + n, size - n, "%s%s", s == cmd->subs ? "" : ", ", s->name);
}

int cli_parse(const cli_command_t *cmd, int argc, char **argv, cli_args_t *args) {
    cli_args_t none;
    if (!args) args = &none;
    memset(args, 0, sizeof *args);
    const cli_sub_t *sub = NULL;
    if (cmd->subs) {
        char valid[256];
        sub_names(cmd, valid, sizeof valid);
        if (argc < 2) return cli_usage_error(cmd, "missing subcommand (valid: %s)", valid);
        if (is_help(argv[1])) {
            cli_print_usage(cmd, stdout);
            return 0;
        }
        for (const cli_sub_t *s = cmd->subs; s->name && !sub; s++)
            if (!strcmp(s->name, argv[1])) sub = s;
        if (!sub)
            return cli_usage_error(cmd, "unknown subcommand '%s' (valid: %s)", argv[1], valid);
        args->sub = sub->name;
        argc--;
        argv++;
    }

    int n = 0;
    while (!is_end(&cmd->opts[n]))
        n++;
    if (n > CLI_MAX_OPTIONS) {
        fprintf(stderr, "miniquant %s: more than %d options declared\n", cmd->name,
                CLI_MAX_OPTIONS);
        return 1;
    }
    int rc;
    for (int k = 0; k < n; k++)
        if (cmd->opts[k].def && (rc = store(cmd, &cmd->opts[k], cmd->opts[k].def))) return rc;

    /* getopt_long's tables, built from the declaration: a long option's value is 256 + its
     * index, so it never collides with a short option's character. The leading ':' makes a
     * missing argument distinguishable from an unknown option. */
    struct option lo[CLI_MAX_OPTIONS + 2];
    char shorts[4 + 2 * CLI_MAX_OPTIONS + 2];
    size_t ns = 0;
    if (cmd->in_order) shorts[ns++] = '+';
    shorts[ns++] = ':';
    shorts[ns++] = 'h';
    for (int k = 0; k < n; k++) {
        const cli_option_t *opt = &cmd->opts[k];
        lo[k] =
            (struct option){opt->name, opt->arg ? required_argument : no_argument, NULL, 256 + k};
        if (opt->short_name) {
            shorts[ns++] = opt->short_name;
            if (opt->arg) shorts[ns++] = ':';
        }
    }
    shorts[ns] = '\0';
    lo[n] = (struct option){"help", no_argument, NULL, 'h'};
    lo[n + 1] = (struct option){NULL, 0, NULL, 0};

    unsigned char seen[CLI_MAX_OPTIONS] = {0};
    int ch;
    opterr = 0;
    optind = 0; /* glibc: start over, also when an earlier command parsed another argv */
    while ((ch = getopt_long(argc, argv, shorts, lo, NULL)) != -1) {
        if (ch == 'h') {
            cli_print_usage(cmd, stdout);
            return 0;
        }
        if (ch == ':') {
            if (optopt >= 256)
                return cli_usage_error(cmd, "--%s needs an argument (%s)",
                                       cmd->opts[optopt - 256].name, cmd->opts[optopt - 256].arg);
            return cli_usage_error(cmd, "-%c needs an argument", optopt);
        }
        if (ch == '?') {
            if (optopt >= 256)
                return cli_usage_error(cmd, "--%s takes no argument", cmd->opts[optopt - 256].name);
            if (optopt > 0) return cli_usage_error(cmd, "unknown option '-%c'", optopt);
            return cli_usage_error(cmd, "unknown option '%s'", argv[optind - 1]);
        }
        int k = ch - 256;
        if (ch < 256)
            for (k = 0; k < n && cmd->opts[k].short_name != ch; k++)
                continue;
        seen[k] = 1;
        if ((rc = store(cmd, &cmd->opts[k], optarg))) return rc;
    }
    if (optind < argc && !(sub ? sub->args : cmd->args))
        return cli_usage_error(cmd, "unexpected argument '%s'", argv[optind]);
    args->n = argc - optind;
    args->v = argv + optind;

    /* every missing required option in one message: "--a A, --b B and --c C are required" */
    int missing[CLI_MAX_OPTIONS], n_missing = 0;
    for (int k = 0; k < n; k++)
        if (cmd->opts[k].required && !seen[k] && in_sub(&cmd->opts[k], sub ? sub->name : NULL))
            missing[n_missing++] = k;
    if (n_missing) {
        char what[1024];
        size_t len = 0;
        for (int j = 0; j < n_missing && len < sizeof what; j++) {
            const cli_option_t *opt = &cmd->opts[missing[j]];
            len += (size_t)snprintf(what + len, sizeof what - len, "%s--%s%s%s",
                                    j == 0               ? ""
                                    : j == n_missing - 1 ? " and "
                                                         : ", ",
                                    opt->name, opt->arg ? " " : "", opt->arg ? opt->arg : "");
        }
        return cli_usage_error(cmd, "%s %s required", what, n_missing > 1 ? "are" : "is");
    }
    return CLI_CONTINUE;
}

/* ---------------------------------------------------------------------------------------------
 * the shared options' values */

const char *cli_scheme_values(void) {
    static char buf[512];
    snprintf(buf, sizeof buf, "valid: %s", mq_scheme_grammar());
    return buf;
}

const char *cli_scheme_list_values(void) {
    static char buf[1024];
    size_t n = (size_t)snprintf(buf, sizeof buf, "'all' is");
    for (int i = 0; MQ_STANDARD_SCHEMES[i] && n < sizeof buf; i++)
        n += (size_t)snprintf(buf + n, sizeof buf - n, "%s %s", i ? "," : "",
                              MQ_STANDARD_SCHEMES[i]);
    if (n < sizeof buf) snprintf(buf + n, sizeof buf - n, "; valid names: %s", mq_scheme_grammar());
    return buf;
}

int cli_model_list_add(const cli_option_t *opt, const char *arg, char *msg, size_t msg_size) {
    cli_model_list_t *l = opt->ctx;
    if (l->n == CLI_MAX_MODELS) {
        snprintf(msg, msg_size, "--%s: at most %d models", opt->name, CLI_MAX_MODELS);
        return 1;
    }
    l->v[l->n++] = arg;
    return 0;
}

int cli_scheme_list_parse(const cli_option_t *opt, const char *arg, char *msg, size_t msg_size) {
    cli_scheme_list_t *l = opt->ctx;
    int max = l->max > 0 && l->max <= CLI_MAX_SCHEMES ? l->max : CLI_MAX_SCHEMES;
    l->n = 0;
    l->names[0] = NULL;
    if (!strcmp(arg, "all")) {
        for (; MQ_STANDARD_SCHEMES[l->n] && l->n < max; l->n++)
            l->names[l->n] = MQ_STANDARD_SCHEMES[l->n];
        l->names[l->n] = NULL;
        return 0;
    }
    if (strlen(arg) >= sizeof l->buf) {
        snprintf(msg, msg_size, "--%s: the list is too long", opt->name);
        return 1;
    }
    snprintf(l->buf, sizeof l->buf, "%s", arg);
    char *save = NULL;
    for (char *t = strtok_r(l->buf, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
        mq_error_t err = {0};
        mq_scheme_t s;
        if (l->n == max) {
            snprintf(msg, msg_size, "--%s: more than %d schemes", opt->name, max);
            return 1;
        }
        if (mq_scheme_parse(t, &s, &err)) {
            snprintf(msg, msg_size, "--%s: %s", opt->name, err.msg);
            return 1;
        }
        l->names[l->n++] = t;
        l->names[l->n] = NULL;
    }
    if (!l->n) {
        snprintf(msg, msg_size, "--%s lists no scheme", opt->name);
        return 1;
    }
    return 0;
}
