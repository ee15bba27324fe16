/* miniquant: the tokenizer as GGUF keys (tokenizer.ggml.*), as llama.cpp reads and writes
 * them (see tokenizer.h). */
#include "miniquant/tokenizer.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tokenizer_internal.h"

static const char *const GPT2_PRE[] = {
    "gpt-2",      "phi-2",        "jina-es",     "jina-de", "gigachat", "jina-v1-en", "jina-v2-es",
    "jina-v2-de", "jina-v2-code", "roberta-bpe", "mpt",     "olmo",     "jais"};

int mq_tokenizer_to_gguf(const mq_tokenizer_t *t, mq_gguf_t *g, mq_error_t *err) {
    const char **tok = malloc(t->n_vocab * sizeof *tok);
    const char **mer = malloc(((size_t)t->n_merges + 1) * sizeof *mer);
    size_t mbytes = 0;
    for (int32_t r = 0; r < t->n_merges; r++)
        mbytes += t->text_len[t->merge[2 * r]] + t->text_len[t->merge[2 * r + 1]] + 2;
    char *mtext = malloc(mbytes + 1);
    int rc = MQ_OK;
    const char *key = "";
    if (!tok || !mer || !mtext) {
        rc = mq_error_set(err, MQ_ERR_NOMEM, "tokenizer: out of memory");
        goto done;
    }
    for (int32_t i = 0; i < t->n_vocab; i++)
        tok[i] = tok_text(t, i);
    char *p = mtext;
    for (int32_t r = 0; r < t->n_merges; r++) {
        mer[r] = p;
        p +=
            sprintf(p, "%s %s", tok_text(t, t->merge[2 * r]), tok_text(t, t->merge[2 * r + 1])) + 1;
    }
    if ((rc = mq_gguf_set_str(g, key = "tokenizer.ggml.model", "gpt2")) ||
        (rc = mq_gguf_set_str(g, key = "tokenizer.ggml.pre", "gpt-2")) ||
        (rc = mq_gguf_set_arr_str(g, key = "tokenizer.ggml.tokens", tok, t->n_vocab)) ||
        (rc = mq_gguf_set_arr(g, key = "tokenizer.ggml.token_type", MQ_GGUF_INT32, t->type,
                              t->n_vocab)) ||
        (rc = mq_gguf_set_arr_str(g, key = "tokenizer.ggml.merges", mer, t->n_merges)) ||
        (t->bos >= 0 && (rc = mq_gguf_set_u32(g, key = "tokenizer.ggml.bos_token_id", t->bos))) ||
        (t->eos >= 0 && (rc = mq_gguf_set_u32(g, key = "tokenizer.ggml.eos_token_id", t->eos))) ||
        (rc = mq_gguf_set_bool(g, key = "tokenizer.ggml.add_bos_token", 0)) ||
        (rc = mq_gguf_set_bool(g, key = "tokenizer.ggml.add_eos_token", 0)))
        mq_error_set(err, rc, "tokenizer: cannot store %s: %s", key, mq_status_name(rc));
done:
    free(tok);
    free(mer);
    free(mtext);
    return rc;
}

int mq_tokenizer_from_gguf(const mq_gguf_t *g, const char *name, mq_tokenizer_t **out,
                           mq_error_t *err) {
    *out = NULL;
    if (!name) name = "GGUF";
    mq_gguf_str_t model, pre;
    int rc = mq_gguf_get_str(g, "tokenizer.ggml.model", &model, err);
    if (rc) return mq_tok_named(err, rc, name);
    if (strcmp(model.ptr, "gpt2") != 0)
        return VOCAB_ERR(MQ_ERR_UNSUPPORTED,
                         "tokenizer.ggml.model is \"%.64s\"; only \"gpt2\" (byte-level BPE) is "
                         "supported",
                         model.ptr);
    /* A file without tokenizer.ggml.pre is taken to split as GPT-2 did (llama.cpp would warn and
     * use its "default" split); a named pre-tokenizer must be one that uses GPT-2's regex. */
    rc = mq_gguf_get_str(g, "tokenizer.ggml.pre", &pre, err);
    if (rc && rc != MQ_ERR_NOT_FOUND) return mq_tok_named(err, rc, name);
    if (!rc) {
        size_t k = 0, n_pre = sizeof GPT2_PRE / sizeof *GPT2_PRE;
        while (k < n_pre && strcmp(pre.ptr, GPT2_PRE[k]) != 0)
            k++;
        if (k == n_pre)
            return VOCAB_ERR(MQ_ERR_UNSUPPORTED,
                             "tokenizer.ggml.pre is \"%.64s\"; only pre-tokenizers that split "
                             "with GPT-2's regex (e.g. \"gpt-2\") are supported",
                             pre.ptr);
    }
    const mq_gguf_str_t *tokens, *merges;
    uint64_t n, n_merges;
    if ((rc = mq_gguf_get_arr_str(g, "tokenizer.ggml.tokens", &tokens, &n, err)) ||
        (rc = mq_gguf_get_arr_str(g, "tokenizer.ggml.merges", &merges, &n_merges, err)))
        return mq_tok_named(err, rc, name);
    if (n < 256 || n > INT32_MAX / 2 || n_merges > INT32_MAX / 2)
        return VOCAB_ERR(MQ_ERR_FORMAT, "%llu tokens and %llu merges (need 256 .. %d tokens)",
                         (unsigned long long)n, (unsigned long long)n_merges, INT32_MAX / 2);
    int32_t *types = NULL;
    int et;
    const void *tdata;
    uint64_t nt;
    rc = mq_gguf_get_arr(g, "tokenizer.ggml.token_type", &et, &tdata, &nt, err);
    if (rc && rc != MQ_ERR_NOT_FOUND) return mq_tok_named(err, rc, name);
    if (!rc) {
        if (et != MQ_GGUF_INT32 || nt != n)
            return VOCAB_ERR(MQ_ERR_FORMAT,
                             "tokenizer.ggml.token_type: %llu elements of type %d, expected %llu "
                             "int32",
                             (unsigned long long)nt, et, (unsigned long long)n);
        types = malloc(n * sizeof *types);
        if (!types) return mq_error_set(err, MQ_ERR_NOMEM, "tokenizer: out of memory");
        memcpy(types, tdata, n * sizeof *types); /* the file's data need not be aligned */
    }
    rc = mq_tok_build(tokens, types, (int64_t)n, merges, (int64_t)n_merges, name, out, err);
    free(types);
    if (rc) return rc;
    static const char *const id_keys[2] = {"tokenizer.ggml.bos_token_id",
                                           "tokenizer.ggml.eos_token_id"};
    int32_t *ids[2] = {&(*out)->bos, &(*out)->eos};
    for (int k = 0; k < 2; k++) {
        uint32_t id;
        rc = mq_gguf_get_u32(g, id_keys[k], &id, err);
        if (rc == MQ_ERR_NOT_FOUND) continue;
        if (!rc && id >= n)
            rc = mq_error_set(err, MQ_ERR_FORMAT, "%s is %u, outside the vocabulary", id_keys[k],
                              id);
        if (rc) {
            mq_tokenizer_free(*out);
            *out = NULL;
            return mq_tok_named(err, rc, name);
        }
        *ids[k] = (int32_t)id;
    }
    mq_error_clear(err);
    return MQ_OK;
}
