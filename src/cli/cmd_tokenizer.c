/* miniquant tokenizer train|encode|decode|check */
#define _GNU_SOURCE /* memmem */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "miniquant/corpus.h"
#include "miniquant/fileio.h"
#include "miniquant/progress.h"

static const char ABOUT[] =
    "The tokenizers of GGUF files: byte-level BPE (tokenizer model gpt2) and SentencePiece\n"
    "(tokenizer model llama), encoding and decoding as llama.cpp does.\n"
    "  train   learns BPE merges on the corpus's train split and writes a vocabulary-only GGUF\n"
    "  encode  prints the token ids of TEXT (words joined by spaces) or of a file's bytes, one\n"
    "          line of space-separated ids; --model is any GGUF with a gpt2 or llama tokenizer,\n"
    "          llama.cpp's vocabulary files included (GPT-2's 50,257 tokens, LLaMA's 32,000)\n"
    "  decode  prints the bytes of ids given as arguments or in a file (whitespace-separated)\n"
    "  check   encodes each test text of llama.cpp's vocabulary test files, FILE.gguf.inp and\n"
    "          FILE.gguf.out beside --model, as llama.cpp's test-tokenizer-0 does (no special\n"
    "          tokens added or parsed), and prints how many give the expected ids; exit 1 when\n"
    "          any does not\n";

static const cli_sub_t SUBS[] = {{"train", NULL},
                                 {"encode", "[TEXT...]"},
                                 {"decode", "[ID...]"},
                                 {"check", NULL},
                                 {NULL, NULL}};

/* Space-separated ids of one line into a malloc'd array; -1 when a word is not an id. */
static int parse_ids(const char *line, size_t len, int32_t **ids, size_t *n) {
    *ids = malloc((len / 2 + 1) * sizeof **ids);
    *n = 0;
    if (!*ids) return MQ_ERR_NOMEM;
    for (size_t p = 0; p < len;) {
        while (p < len && (line[p] == ' ' || line[p] == '\r')) p++;
        if (p == len) break;
        long v = 0;
        size_t q = p;
        while (q < len && line[q] >= '0' && line[q] <= '9' && v <= INT32_MAX)
            v = v * 10 + (line[q++] - '0');
        if (q == p || v > INT32_MAX || (q < len && line[q] != ' ' && line[q] != '\r')) return -1;
        (*ids)[(*n)++] = (int32_t)v;
        p = q;
    }
    return MQ_OK;
}

/* tokenizer check: llama.cpp's FILE.inp (texts separated by "\n__ggml_vocab_test__\n") and
 * FILE.out (one line of ids per text). */
static int vocab_check(const mq_tokenizer_t *tok, const char *model) {
    char inp_path[4096], out_path[4096];
    snprintf(inp_path, sizeof inp_path, "%s.inp", model);
    snprintf(out_path, sizeof out_path, "%s.out", model);
    mq_error_t err = {0};
    char *inp = NULL, *out = NULL;
    size_t inp_len, out_len;
    if (mq_read_file(inp_path, 0, &inp, &inp_len, &err) ||
        mq_read_file(out_path, 0, &out, &out_len, &err)) {
        free(inp);
        return cli_fail(&err);
    }
    static const char SEP[] = "\n__ggml_vocab_test__\n";
    size_t n_cases = 0, n_match = 0, ip = 0, op = 0, line = 0;
    int rc = 0;
    while (ip < inp_len && rc == 0) {
        const char *next = memmem(inp + ip, inp_len - ip, SEP, sizeof SEP - 1);
        size_t tl = next ? (size_t)(next - (inp + ip)) : inp_len - ip;
        if (op >= out_len) {
            fprintf(stderr, "miniquant tokenizer: %s has fewer lines than %s has texts\n",
                    out_path, inp_path);
            rc = 1;
            break;
        }
        const char *eol = memchr(out + op, '\n', out_len - op);
        size_t ol = eol ? (size_t)(eol - (out + op)) : out_len - op;
        line++;
        int32_t *want = NULL, *got = NULL;
        size_t n_want, n_got;
        int prc = parse_ids(out + op, ol, &want, &n_want);
        if (prc) {
            fprintf(stderr, "miniquant tokenizer: %s:%zu is not a line of token ids\n", out_path,
                    line);
            rc = prc == MQ_ERR_NOMEM ? 1 : 2;
        } else if (mq_tokenizer_encode(tok, inp + ip, tl, 0, &got, &n_got, &err)) {
            printf("case %zu: %s\n", n_cases + 1, err.msg);
        } else {
            int same = n_got == n_want && !memcmp(got, want, n_got * sizeof *got);
            n_match += same;
            if (!same) {
                printf("case %zu (%s:%zu) differs:\n  expected", n_cases + 1, out_path, line);
                for (size_t i = 0; i < n_want; i++) printf(" %d", want[i]);
                printf("\n  miniquant");
                for (size_t i = 0; i < n_got; i++) printf(" %d", got[i]);
                printf("\n");
            }
        }
        free(want);
        free(got);
        n_cases++;
        op += ol + (eol != NULL);
        ip += tl + (next ? sizeof SEP - 1 : 0);
    }
    if (rc == 0)
        printf("%zu of %zu test texts of %s encode to the ids of %s\n", n_match, n_cases,
               inp_path, out_path);
    free(inp);
    free(out);
    return rc ? rc : n_match == n_cases ? 0 : 1;
}

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
    int special = 0, add_special = 0, rc;
    cli_option_t opts[] = {
        {CLI_OPT_VOCAB(&vocab), .subs = "train"},
        {.name = "out", .arg = "FILE.gguf", .str = &out, .subs = "train",
         .def_text = "data/tokenizer-<vocab>.gguf", .help = "where train writes the tokenizer"},
        {CLI_OPT_MODEL(&model, "the GGUF file whose tokenizer to use"), .required = 1,
         .subs = "encode decode check"},
        {.name = "file", .arg = "F", .str = &file, .subs = "encode decode",
         .help = "read the input from F ('-' for standard input) instead of the arguments"},
        {.name = "special", .flag = &special, .subs = "encode",
         .help = "encode: control tokens' texts in the text ('<|endoftext|>', '<s>') are "
                 "those tokens"},
        {.name = "add-special", .flag = &add_special, .subs = "encode",
         .help = "encode: begin (and end) with the sequence tokens the vocabulary asks for "
                 "(add_bos_token, add_eos_token), as llama.cpp does by default"},
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
    if (!strcmp(sub, "check")) {
        mq_tokenizer_t *tok;
        if (cli_load_tokenizer(model, &tok, &err)) return cli_fail(&err);
        rc = vocab_check(tok, model);
        mq_tokenizer_free(tok);
        return rc;
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
        int flags = (special ? MQ_TOK_PARSE_SPECIAL : 0) | (add_special ? MQ_TOK_ADD_SPECIAL : 0);
        if (mq_tokenizer_encode(tok, buf, len, flags, &ids, &n, &err)) {
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
