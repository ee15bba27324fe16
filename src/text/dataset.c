#include "miniquant/dataset.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "miniquant/progress.h"

static int push(mq_tokens_t *t, size_t *cap, const int32_t *ids, size_t n) {
    if (t->n + n > *cap) {
        size_t nc = *cap ? *cap : 1 << 16;
        while (nc < t->n + n) nc *= 2;
        int32_t *p = realloc(t->ids, nc * sizeof *p);
        if (!p) return MQ_ERR_NOMEM;
        t->ids = p;
        *cap = nc;
    }
    memcpy(t->ids + t->n, ids, n * sizeof *ids);
    t->n += n;
    return MQ_OK;
}

int mq_dataset_encode(const mq_corpus_t *c, mq_split_t split, const mq_tokenizer_t *tok,
                      mq_tokens_t *out, mq_error_t *err) {
    memset(out, 0, sizeof *out);
    /* documents end with <|endoftext|>, or (a LLaMA vocabulary) the end-of-sequence token */
    int32_t eot = mq_tokenizer_eot(tok);
    if (eot < 0) eot = mq_tokenizer_eos(tok);
    if (eot < 0)
        return mq_error_set(err, MQ_ERR_ARG,
                            "the tokenizer has no %s and no end-of-sequence token to end "
                            "documents with",
                            MQ_EOT_TEXT);
    size_t cap = 0, maxlen = 0;
    for (size_t i = 0; i < c->n_docs; i++)
        if (c->docs[i].len > maxlen) maxlen = c->docs[i].len;
    char *buf = malloc(maxlen + 2);
    if (!buf) return mq_error_set(err, MQ_ERR_NOMEM, "out of memory");
    mq_progress_t pb;
    char label[32];
    snprintf(label, sizeof label, "encode %s", mq_split_name(split));
    mq_progress_start(&pb, label, (int64_t)c->n_docs);
    int rc = MQ_OK;
    for (size_t i = 0; i < c->n_docs && rc == MQ_OK; i++) {
        const mq_doc_t *d = &c->docs[i];
        if (d->split != split) continue;
        memcpy(buf, d->text, d->len);
        buf[d->len] = '\n';
        int32_t *ids;
        size_t n;
        rc = mq_tokenizer_encode(tok, buf, d->len + 1, 0, &ids, &n, err);
        if (rc) break;
        if (push(out, &cap, ids, n) || push(out, &cap, &eot, 1))
            rc = mq_error_set(err, MQ_ERR_NOMEM, "out of memory");
        free(ids);
        if ((i & 1023) == 0) mq_progress_update(&pb, (int64_t)i, NULL);
    }
    free(buf);
    if (rc) {
        mq_tokens_free(out);
        return rc;
    }
    char extra[64];
    snprintf(extra, sizeof extra, " %zu tokens", out->n);
    mq_progress_finish(&pb, extra);
    return MQ_OK;
}

void mq_tokens_free(mq_tokens_t *t) {
    free(t->ids);
    t->ids = NULL;
    t->n = 0;
}
