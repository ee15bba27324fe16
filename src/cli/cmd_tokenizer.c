/* miniquant tokenizer train|encode|decode */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "miniquant/corpus.h"
#include "miniquant/fileio.h"
#include "miniquant/progress.h"

static const char USAGE[] =
    "usage: miniquant tokenizer train  [--vocab N] [--out FILE.gguf]\n"
    "       miniquant tokenizer encode --model FILE.gguf [--special] [--file F | TEXT...]\n"
    "       miniquant tokenizer decode --model FILE.gguf [--file F | ID...]\n"
    "\n"
    "Byte-level BPE in the GPT-2 convention.\n"
    "  train   learns merges on the corpus's train split and writes a vocabulary-only GGUF\n"
    "          (default vocab 4096, default out data/tokenizer-<vocab>.gguf)\n"
    "  encode  prints the token ids of TEXT (words joined by spaces) or of a file's bytes, one\n"
    "          line of space-separated ids; --model is any GGUF whose tokenizer is gpt2,\n"
    "          including llama.cpp's vocabulary files (GPT-2's own 50,257 tokens)\n"
    "  decode  prints the bytes of ids given as arguments or in a file (whitespace-separated)\n"
    "\n"
    "  --vocab N     vocabulary size including the 256 byte tokens and <|endoftext|>\n"
    "  --out FILE    where train writes the tokenizer\n"
    "  --model FILE  the GGUF file whose tokenizer to use\n"
    "  --file F      read the input from F ('-' for standard input)\n"
    "  --special     encode: '<|endoftext|>' in the text is the special token\n"
    "  -h, --help    this message\n";

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
    if (argc < 2) return cli_usage_error("tokenizer", USAGE, "missing subcommand%s", "");
    const char *sub = argv[1];
    if (!strcmp(sub, "--help") || !strcmp(sub, "-h")) {
        fputs(USAGE, stdout);
        return 0;
    }
    if (strcmp(sub, "train") && strcmp(sub, "encode") && strcmp(sub, "decode"))
        return cli_usage_error("tokenizer", USAGE,
                               "unknown subcommand '%s' (valid: train, encode, decode)", sub);
    long vocab = 4096;
    const char *out = NULL, *model = NULL, *file = NULL;
    int special = 0;
    static const struct option opts[] = {
        {"vocab", required_argument, 0, 'v'}, {"out", required_argument, 0, 'o'},
        {"model", required_argument, 0, 'm'}, {"file", required_argument, 0, 'f'},
        {"special", no_argument, 0, 's'},     {"help", no_argument, 0, 'h'},
        {0, 0, 0, 0}};
    int ch, rc;
    opterr = 0;
    optind = 2;
    while ((ch = getopt_long(argc, argv, "+h", opts, NULL)) != -1) {
        switch (ch) {
        case 'v':
            if ((rc = cli_parse_int("tokenizer", USAGE, "--vocab", optarg, 258, 1 << 20, &vocab)))
                return rc;
            break;
        case 'o': out = optarg; break;
        case 'm': model = optarg; break;
        case 'f': file = optarg; break;
        case 's': special = 1; break;
        case 'h': fputs(USAGE, stdout); return 0;
        default:
            return cli_usage_error("tokenizer", USAGE, "unknown option '%s'", argv[optind - 1]);
        }
    }
    mq_error_t err = {0};
    if (!strcmp(sub, "train")) {
        if (optind < argc)
            return cli_usage_error("tokenizer", USAGE, "unexpected argument '%s'", argv[optind]);
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
    if (!model) return cli_usage_error("tokenizer", USAGE, "%s needs --model FILE.gguf", sub);
    if (file && optind < argc)
        return cli_usage_error("tokenizer", USAGE, "give --file or arguments, not both%s", "");
    char *buf = NULL;
    size_t len = 0;
    if (file) {
        if (read_input(file, &buf, &len, &err)) return cli_fail(&err);
    } else if (!(buf = join_args(argc - optind, argv + optind, &len))) {
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
