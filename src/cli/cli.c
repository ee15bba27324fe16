#include "cli.h"

#include <stdio.h>

int cli_fail(const mq_error_t *err) {
    fprintf(stderr, "miniquant: %s\n", err->msg[0] ? err->msg : mq_status_name(err->code));
    return 1;
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

int cli_mkdir_parent(const char *path, mq_error_t *err) {
    char dir[4096];
    snprintf(dir, sizeof dir, "%s", path);
    char *slash = strrchr(dir, '/');
    if (!slash || slash == dir) return MQ_OK;
    *slash = '\0';
    return mq_mkdir_p(dir, err);
}

void cli_model_stem(const char *model, char *buf, size_t n) {
    const char *base = strrchr(model, '/');
    base = base ? base + 1 : model;
    size_t len = strlen(base);
    if (len > 5 && !strcmp(base + len - 5, ".gguf")) len -= 5;
    snprintf(buf, n, "%.*s", (int)len, base);
}

void cli_beside_model(const char *model, const char *name, char *buf, size_t n) {
    const char *slash = strrchr(model, '/');
    snprintf(buf, n, "%.*s%s", slash ? (int)(slash + 1 - model) : 0, model, name);
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
    for (size_t i = 0; i < c->n_docs; i++)
        n += c->docs[i].split == MQ_SPLIT_TRAIN;
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
    if ((rc = cli_mkdir_parent(path, err))) return rc;
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
