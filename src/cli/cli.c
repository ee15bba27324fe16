#include "cli.h"

#include <errno.h>
#include <stdio.h>

int cli_fail(const mq_error_t *err) {
    fprintf(stderr, "miniquant: %s\n", err->msg[0] ? err->msg : mq_status_name(err->code));
    return 1;
}

int cli_usage_error(const char *cmd, const char *usage, const char *fmt, const char *arg) {
    fprintf(stderr, "miniquant %s: ", cmd);
    fprintf(stderr, fmt, arg);
    fprintf(stderr, "\n\n%s", usage);
    return 2;
}

#include <cblas.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "miniquant/corpus.h"
#include "miniquant/fileio.h"
#include "miniquant/gguf.h"

void cli_set_threads(int n) {
    if (n <= 0) return;
    omp_set_num_threads(n);
    openblas_set_num_threads(n);
}

int cli_parse_int(const char *cmd, const char *usage, const char *flag, const char *s, long lo,
                  long hi, long *out) {
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || *end || end == s || v < lo || v > hi) {
        fprintf(stderr, "miniquant %s: %s takes a whole number from %ld to %ld, not '%s'\n\n%s",
                cmd, flag, lo, hi, s, usage);
        return 2;
    }
    *out = v;
    return 0;
}

int cli_parse_float(const char *cmd, const char *usage, const char *flag, const char *s,
                    double lo, double hi, double *out) {
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || *end || end == s || !(v >= lo && v <= hi)) {
        fprintf(stderr, "miniquant %s: %s takes a number from %g to %g, not '%s'\n\n%s", cmd,
                flag, lo, hi, s, usage);
        return 2;
    }
    *out = v;
    return 0;
}

int cli_load_tokenizer(const char *path, mq_tokenizer_t **tok, mq_error_t *err) {
    mq_gguf_t *g;
    int rc = mq_gguf_read(path, &g, err);
    if (rc) return rc;
    rc = mq_tokenizer_from_gguf(g, path, tok, err);
    mq_gguf_free(g);
    return rc;
}

int cli_tokenizer_for(const char *data_dir, int vocab, mq_tokenizer_t **tok, mq_error_t *err) {
    char path[4096];
    snprintf(path, sizeof path, "%s/tokenizer-%d.gguf", data_dir, vocab);
    if (mq_file_exists(path)) {
        fprintf(stderr, "tokenizer: %s\n", path);
        return cli_load_tokenizer(path, tok, err);
    }
    mq_corpus_t c;
    int rc = mq_corpus_load_wordnet(NULL, &c, err);
    if (rc) return rc;
    rc = cli_train_tokenizer(&c, vocab, path, tok, err);
    mq_corpus_free(&c);
    return rc;
}

int cli_train_tokenizer(const mq_corpus_t *c, int vocab, const char *path, mq_tokenizer_t **tok,
                        mq_error_t *err) {
    size_t n = 0;
    for (size_t i = 0; i < c->n_docs; i++) n += c->docs[i].split == MQ_SPLIT_TRAIN;
    const char **docs = malloc((n ? n : 1) * sizeof *docs);
    size_t *lens = malloc((n ? n : 1) * sizeof *lens);
    if (!docs || !lens) {
        free(docs);
        free(lens);
        return mq_error_set(err, MQ_ERR_NOMEM, "out of memory");
    }
    n = 0;
    for (size_t i = 0; i < c->n_docs; i++)
        if (c->docs[i].split == MQ_SPLIT_TRAIN) {
            docs[n] = c->docs[i].text;
            lens[n++] = c->docs[i].len;
        }
    int rc = mq_tokenizer_train(docs, lens, n, vocab, tok, err);
    free(docs);
    free(lens);
    if (rc || !path) return rc;
    char dir[4096];
    snprintf(dir, sizeof dir, "%s", path);
    char *slash = strrchr(dir, '/');
    if (slash) {
        *slash = '\0';
        if ((rc = mq_mkdir_p(dir, err))) return rc;
    }
    mq_gguf_t *g = mq_gguf_new();
    if (!g) return mq_error_set(err, MQ_ERR_NOMEM, "out of memory");
    rc = mq_gguf_set_str(g, "general.architecture", "gpt2") ? MQ_ERR_NOMEM : MQ_OK;
    if (rc == MQ_OK) rc = mq_gguf_set_str(g, "general.name", "miniquant tokenizer");
    if (rc == MQ_OK) rc = mq_tokenizer_to_gguf(*tok, g, err);
    if (rc == MQ_OK) rc = mq_gguf_write(g, path, err);
    mq_gguf_free(g);
    if (rc == MQ_OK) fprintf(stderr, "tokenizer: wrote %s\n", path);
    return rc;
}

int cli_calibration_tokens(const mq_tokenizer_t *tok, mq_tokens_t *out, mq_error_t *err) {
    mq_corpus_t c;
    int rc = mq_corpus_load_wordnet(NULL, &c, err);
    if (rc) return rc;
    rc = mq_dataset_encode(&c, MQ_SPLIT_VALID, tok, out, err);
    mq_corpus_free(&c);
    return rc;
}

int cli_parse_scheme_list(const char *cmd, const char *usage, const char *list, char *buf,
                          size_t bufsize, const char **names, int max) {
    int n = 0;
    if (!strcmp(list, "all")) {
        for (; MQ_STANDARD_SCHEMES[n] && n < max; n++) names[n] = MQ_STANDARD_SCHEMES[n];
        return n;
    }
    if (strlen(list) >= bufsize) {
        cli_usage_error(cmd, usage, "--schemes: the list is too long%s", "");
        return -1;
    }
    snprintf(buf, bufsize, "%s", list);
    for (char *save = NULL, *t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
        mq_error_t err = {0};
        mq_scheme_t s;
        if (n == max) {
            char what[64];
            snprintf(what, sizeof what, "%d", max);
            cli_usage_error(cmd, usage, "--schemes: more than %s schemes", what);
            return -1;
        }
        if (mq_scheme_parse(t, &s, &err)) {
            cli_usage_error(cmd, usage, "--schemes: %s", err.msg);
            return -1;
        }
        names[n++] = t;
    }
    if (!n) cli_usage_error(cmd, usage, "--schemes lists no scheme%s", "");
    return n ? n : -1;
}
