/* miniquant tokenizer train|encode|decode */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "miniquant/corpus.h"
#include "miniquant/fileio.h"
#include "miniquant/progress.h"

static const char ABOUT[] =
    "Byte-level BPE in the GPT-2 convention.\n"
    "  train   learns merges on the corpus's train split and writes a vocabulary-only GGUF\n"
    "  encode  prints the token ids of TEXT (words joined by spaces) or of a file's bytes, one\n"
    "          line of space-separated ids; --model is any GGUF whose tokenizer is gpt2,\n"
    "          including llama.cpp's vocabulary files (GPT-2's own 50,257 tokens)\n"
    "  decode  prints the bytes of ids given as arguments or in a file (whitespace-separated)\n";

static const cli_sub_t SUBS[] = {
    {"train", NULL}, {"encode", "[TEXT...]"}, {"decode", "[ID...]"}, {NULL, NULL}};

static int read_input(const char *file, char **buf, size_t *len, mq_error_t *err) {
    if (strcmp(file, "-") != 0) return mq_read_file(file, 0, buf, len, err);
    size_t cap = 1 << 16, n = 0;
    char *b = malloc(cap);
    if (!b) return mq_error_set(err, MQ_ERR_NOMEM, "out of memory");
    size_t got;
    while ((got = fread(b + n, 1, cap - n - 1, stdin)) > 0) {
        n += got;
        if (n + 1 == cap) {
            char *nb = realloc(b, cap *= 2);
            if (!nb) {
                free(b);
                return mq_error_set(err, MQ_ERR_NOMEM, "out of memory");
            }
            b = nb;
        }
    }
    b[n] = '\0';
    *buf = b;
    *len = n;
    return MQ_OK;
}

/* The words of argv joined by single spaces. */
static char *join_args(int argc, char **argv, size_t *len) {
    size_t n = 0;
    for (int i = 0; i < argc; i++) n += strlen(argv[i]) + 1;
    char *s = malloc(n + 1);
    if (!s) return NULL;
    size_t at = 0;
    for (int i = 0; i < argc; i++) {
        if (i) s[at++] = ' ';
        size_t l = strlen(argv[i]);
        memcpy(s + at, argv[i], l);
        at += l;
    }
    s[at] = '\0';
    *len = at;
    return s;
}

int cmd_tokenizer(int argc, char **argv) {
    long vocab = 0;
    const char *out = NULL, *model = NULL, *file = NULL;
    int special = 0, rc;
    cli_option_t opts[] = {
        {CLI_OPT_VOCAB(&vocab), .subs = "train"},
        {.name = "out", .arg = "FILE.gguf", .str = &out, .subs = "train",
         .def_text = "data/tokenizer-<vocab>.gguf", .help = "where train writes the tokenizer"},
        {CLI_OPT_MODEL(&model, "the GGUF file whose tokenizer to use"), .required = 1,
         .subs = "encode decode"},
        {.name = "file", .arg = "F", .str = &file, .subs = "encode decode",
         .help = "read the input from F ('-' for standard input) instead of the arguments"},
        {.name = "special", .flag = &special, .subs = "encode",
         .help = "encode: '<|endoftext|>' in the text is the special token"},
        {0},
    };
    const cli_command_t cmd = {
        .name = "tokenizer", .subs = SUBS, .in_order = 1, .about = ABOUT, .opts = opts};
    cli_args_t args;
    if ((rc = cli_parse(&cmd, argc, argv, &args)) != CLI_CONTINUE) return rc;
    const char *sub = args.sub;
    mq_error_t err = {0};
    if (!strcmp(sub, "train")) {
        char def[64];
        snprintf(def, sizeof def, "data/tokenizer-%ld.gguf", vocab);
        if (!out) out = def;
        mq_corpus_t c;
        if (mq_corpus_load_wordnet(NULL, &c, &err)) return cli_fail(&err);
        mq_tokenizer_t *tok = NULL;
        double t0 = mq_now();
        rc = cli_train_tokenizer(&c, (int)vocab, out, &tok, &err);
        mq_corpus_free(&c);
        if (rc) return cli_fail(&err);
        printf("trained %d tokens (%d merges) in %.1f s, wrote %s\n", mq_tokenizer_n_vocab(tok),
               mq_tokenizer_n_vocab(tok) - 257, mq_now() - t0, out);
        mq_tokenizer_free(tok);
        return 0;
    }
    if (file && args.n)
        return cli_usage_error(&cmd, "give --file or arguments, not both");
    char *buf = NULL;
    size_t len = 0;
    if (file) {
        if (read_input(file, &buf, &len, &err)) return cli_fail(&err);
    } else if (!(buf = join_args(args.n, args.v, &len))) {
        return cli_fail(&(mq_error_t){MQ_ERR_NOMEM, "out of memory"});
    }
    mq_tokenizer_t *tok;
    if (cli_load_tokenizer(model, &tok, &err)) {
        free(buf);
        return cli_fail(&err);
    }
    rc = 0;
    if (!strcmp(sub, "encode")) {
        int32_t *ids;
        size_t n;
        if (mq_tokenizer_encode(tok, buf, len, special ? MQ_TOK_PARSE_SPECIAL : 0, &ids, &n,
                                &err)) {
            rc = cli_fail(&err);
        } else {
            for (size_t i = 0; i < n; i++) printf(i ? " %d" : "%d", ids[i]);
            printf("\n");
            free(ids);
        }
    } else {
        /* decode: whitespace-separated ids */
        size_t cap = 1024, n = 0;
        int32_t *ids = malloc(cap * sizeof *ids);
        char *p = buf, *end;
        while (ids && rc == 0) {
            while (*p == ' ' || *p == '\n' || *p == '\t' || *p == '\r') p++;
            if (!*p) break;
            long v = strtol(p, &end, 10);
            if (end == p || v < 0 || v > INT32_MAX ||
                (*end && *end != ' ' && *end != '\n' && *end != '\t' && *end != '\r')) {
                fprintf(stderr, "miniquant tokenizer: '%.20s' at byte %zu is not a token id\n", p,
                        (size_t)(p - buf));
                rc = 2;
                break;
            }
            if (n == cap) {
                int32_t *ni = realloc(ids, (cap *= 2) * sizeof *ids);
                if (!ni) break;
                ids = ni;
            }
            ids[n++] = (int32_t)v;
            p = end;
        }
        char *text;
        size_t tl;
        if (rc == 0) {
            if (mq_tokenizer_decode(tok, ids, n, &text, &tl, &err)) rc = cli_fail(&err);
            else {
                fwrite(text, 1, tl, stdout);
                free(text);
            }
        }
        free(ids);
    }
    mq_tokenizer_free(tok);
    free(buf);
    return rc;
}
