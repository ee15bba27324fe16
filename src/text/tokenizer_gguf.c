/* miniquant: the tokenizer as GGUF keys (tokenizer.ggml.*), as llama.cpp reads and writes
 * them (see tokenizer.h). */
#include "miniquant/tokenizer.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tokenizer_internal.h"

static int tokenizer_from_gguf(const mq_gguf_t *g, const char *name, mq_tokenizer_t **out,
                               mq_error_t *err);

static const char *const GPT2_PRE[] = {
    "gpt-2",      "phi-2",        "jina-es",     "jina-de", "gigachat", "jina-v1-en", "jina-v2-es",
    "jina-v2-de", "jina-v2-code", "roberta-bpe", "mpt",     "olmo",     "jais"};

/* SentencePiece: tokens, scores, types, special ids and flags. */
static int spm_to_gguf(const mq_tokenizer_t *t, mq_gguf_t *g, mq_error_t *err) {
    const char **tok = malloc(t->n_vocab * sizeof *tok);
    if (!tok) return mq_error_set(err, MQ_ERR_NOMEM, "tokenizer: out of memory");
    for (int32_t i = 0; i < t->n_vocab; i++)
        tok[i] = tok_text(t, i);
    int rc;
    const char *key = "";
    if ((rc = mq_gguf_set_str(g, key = "tokenizer.ggml.model", "llama")) ||
        (rc = mq_gguf_set_arr_str(g, key = "tokenizer.ggml.tokens", tok, t->n_vocab)) ||
        (rc = mq_gguf_set_arr(g, key = "tokenizer.ggml.scores", MQ_GGUF_FLOAT32, t->score,
                              t->n_vocab)) ||
        (rc = mq_gguf_set_arr(g, key = "tokenizer.ggml.token_type", MQ_GGUF_INT32, t->type,
                              t->n_vocab)) ||
        (t->bos >= 0 && (rc = mq_gguf_set_u32(g, key = "tokenizer.ggml.bos_token_id", t->bos))) ||
        (t->eos >= 0 && (rc = mq_gguf_set_u32(g, key = "tokenizer.ggml.eos_token_id", t->eos))) ||
        (t->unk >= 0 &&
         (rc = mq_gguf_set_u32(g, key = "tokenizer.ggml.unknown_token_id", t->unk))) ||
        (rc = mq_gguf_set_bool(g, key = "tokenizer.ggml.add_bos_token", t->add_bos)) ||
        (rc = mq_gguf_set_bool(g, key = "tokenizer.ggml.add_eos_token", t->add_eos)) ||
        (rc = mq_gguf_set_bool(g, key = "tokenizer.ggml.add_space_prefix", t->add_space_prefix)))
        mq_error_set(err, rc, "tokenizer: cannot store %s: %s", key, mq_status_name(rc));
    free(tok);
    return rc;
}

int mq_tokenizer_to_gguf(const mq_tokenizer_t *t, mq_gguf_t *g, mq_error_t *err) {
    if (t->model == MQ_TOKENIZER_SPM) return spm_to_gguf(t, g, err);
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
        (rc = mq_gguf_set_bool(g, key = "tokenizer.ggml.add_bos_token", t->add_bos)) ||
        (rc = mq_gguf_set_bool(g, key = "tokenizer.ggml.add_eos_token", t->add_eos)))
        mq_error_set(err, rc, "tokenizer: cannot store %s: %s", key, mq_status_name(rc));
done:
    free(tok);
    free(mer);
    free(mtext);
    return rc;
}

/* An optional boolean key into *v (left as it is when absent). */
static int opt_bool(const mq_gguf_t *g, const char *key, int *v, mq_error_t *err) {
    int b, rc = mq_gguf_get_bool(g, key, &b, err);
    if (rc == MQ_ERR_NOT_FOUND) return MQ_OK;
    if (!rc) *v = b;
    return rc;
}

/* An optional token id key into *id (left as it is when absent); MQ_ERR_FORMAT past n. */
static int opt_id(const mq_gguf_t *g, const char *key, uint64_t n, int32_t *id, mq_error_t *err) {
    uint32_t v;
    int rc = mq_gguf_get_u32(g, key, &v, err);
    if (rc == MQ_ERR_NOT_FOUND) return MQ_OK;
    if (!rc && v >= n)
        rc = mq_error_set(err, MQ_ERR_FORMAT, "%s is %u, outside the vocabulary", key, v);
    if (!rc) *id = (int32_t)v;
    return rc;
}

/* tokenizer.ggml.token_type (optional) as a malloc'd copy in *types (NULL when absent). */
static int read_types(const mq_gguf_t *g, uint64_t n, int32_t **types, mq_error_t *err) {
    *types = NULL;
    int et;
    const void *tdata;
    uint64_t nt;
    int rc = mq_gguf_get_arr(g, "tokenizer.ggml.token_type", &et, &tdata, &nt, err);
    if (rc == MQ_ERR_NOT_FOUND) return MQ_OK;
    if (rc) return rc;
    if (et != MQ_GGUF_INT32 || nt != n)
        return mq_error_set(err, MQ_ERR_FORMAT,
                            "tokenizer.ggml.token_type: %llu elements of type %d, expected %llu "
                            "int32",
                            (unsigned long long)nt, et, (unsigned long long)n);
    if (!(*types = malloc(n * sizeof **types)))
        return mq_error_set(err, MQ_ERR_NOMEM, "tokenizer: out of memory");
    memcpy(*types, tdata, n * sizeof **types); /* the file's data need not be aligned */
    return MQ_OK;
}

/* A SentencePiece vocabulary: tokens, scores and types, then llama.cpp's defaults for the
 * special ids and flags unless the file sets them. */
static int spm_from_gguf(const mq_gguf_t *g, const char *name, mq_tokenizer_t **out,
                         mq_error_t *err) {
    const mq_gguf_str_t *tokens;
    uint64_t n;
    int rc = mq_gguf_get_arr_str(g, "tokenizer.ggml.tokens", &tokens, &n, err);
    if (rc) return mq_tok_named(err, rc, name);
    if (n < 1 || n > INT32_MAX / 2)
        return VOCAB_ERR(MQ_ERR_FORMAT, "tokenizer.ggml.tokens: %llu tokens (need 1 .. %d)",
                         (unsigned long long)n, INT32_MAX / 2);
    float *scores = NULL;
    int et;
    const void *sdata;
    uint64_t ns;
    rc = mq_gguf_get_arr(g, "tokenizer.ggml.scores", &et, &sdata, &ns, err);
    if (rc && rc != MQ_ERR_NOT_FOUND) return mq_tok_named(err, rc, name);
    if (!rc) {
        if (et != MQ_GGUF_FLOAT32 || ns != n)
            return VOCAB_ERR(MQ_ERR_FORMAT,
                             "tokenizer.ggml.scores: %llu elements of type %d, expected %llu "
                             "float32",
                             (unsigned long long)ns, et, (unsigned long long)n);
        if (!(scores = malloc(n * sizeof *scores)))
            return mq_error_set(err, MQ_ERR_NOMEM, "tokenizer: out of memory");
        memcpy(scores, sdata, n * sizeof *scores);
    }
    /* llama.cpp's defaults for a "llama" vocabulary; a default id past the vocabulary is none */
    mq_spm_config_t cfg = {.add_space_prefix = 1,
                           .add_bos = 1,
                           .add_eos = 0,
                           .bos = n > 1 ? 1 : -1,
                           .eos = n > 2 ? 2 : -1,
                           .unk = 0};
    int32_t *types = NULL;
    if ((rc = opt_id(g, "tokenizer.ggml.bos_token_id", n, &cfg.bos, err)) ||
        (rc = opt_id(g, "tokenizer.ggml.eos_token_id", n, &cfg.eos, err)) ||
        (rc = opt_id(g, "tokenizer.ggml.unknown_token_id", n, &cfg.unk, err)) ||
        (rc = opt_bool(g, "tokenizer.ggml.add_bos_token", &cfg.add_bos, err)) ||
        (rc = opt_bool(g, "tokenizer.ggml.add_eos_token", &cfg.add_eos, err)) ||
        (rc = opt_bool(g, "tokenizer.ggml.add_space_prefix", &cfg.add_space_prefix, err)) ||
        (rc = read_types(g, n, &types, err))) {
        free(scores);
        return mq_tok_named(err, rc, name);
    }
    rc = mq_tok_build_spm(tokens, scores, types, (int64_t)n, &cfg, name, out, err);
    free(scores);
    free(types);
    if (!rc) mq_error_clear(err);
    return rc;
}

/* Whether s contains any of the NULL-terminated list. */
static int contains_any(const char *s, const char *const *subs) {
    for (; *subs; subs++)
        if (strstr(s, *subs)) return 1;
    return 0;
}

/* Marks a token's whitespace stripping on or off (text: a token's text, or NULL for id). */
static int set_strip(mq_tokenizer_t *t, const char *text, int32_t id, int flag, int on) {
    if (text && (id = tok_lookup(t, text, strlen(text))) < 0) return 0;
    if (!t->strip && !(t->strip = calloc((size_t)t->n_vocab, 1))) return MQ_ERR_NOMEM;
    t->strip[id] = (uint8_t)(on ? t->strip[id] | flag : t->strip[id] & ~flag);
    return 0;
}

/* llama.cpp's per-model token attributes, chosen by tokenizer.ggml.pre and general.name (a
 * token it names that the vocabulary lacks is passed over, where llama.cpp would stop). */
static int model_strips(const mq_gguf_t *g, mq_tokenizer_t *t, mq_error_t *err) {
    mq_gguf_str_t pre = {"", 0}, gname = {"", 0};
    int rc = mq_gguf_get_str(g, "tokenizer.ggml.pre", &pre, err);
    if (rc && rc != MQ_ERR_NOT_FOUND) return rc;
    rc = mq_gguf_get_str(g, "general.name", &gname, err);
    if (rc && rc != MQ_ERR_NOT_FOUND) return rc;
    char lower[256];
    size_t k = 0;
    for (; k + 1 < sizeof lower && gname.ptr[k]; k++)
        lower[k] = (char)tolower((unsigned char)gname.ptr[k]);
    lower[k] = '\0';
    rc = 0;
    if (contains_any(pre.ptr,
                     (const char *const[]){"jina-v2-de", "jina-v2-es", "jina-v2-code", NULL})) {
        rc = set_strip(t, "<mask>", 0, MQ_TOK_LSTRIP, 1);
    } else if (contains_any(lower, (const char *const[]){"phi-3", "phi3", NULL})) {
        for (int32_t i = 0; i < t->n_special && !rc; i++)
            rc = set_strip(t, NULL, t->special[i], MQ_TOK_RSTRIP, 1);
        if (!rc) rc = set_strip(t, "</s>", 0, MQ_TOK_RSTRIP, 1);
        static const char *const KEEP[] = {"<unk>", "<s>", "<|endoftext|>"};
        for (int i = 0; i < 3 && !rc; i++)
            rc = set_strip(t, KEEP[i], 0, MQ_TOK_RSTRIP, 0);
    }
    if (rc) mq_error_set(err, rc, "tokenizer: out of memory");
    return rc;
}

int mq_tokenizer_from_gguf(const mq_gguf_t *g, const char *name, mq_tokenizer_t **out,
                           mq_error_t *err) {
    int rc = tokenizer_from_gguf(g, name, out, err);
    if (rc) return rc;
    if ((rc = model_strips(g, *out, err))) {
        mq_tokenizer_free(*out);
        *out = NULL;
        return mq_tok_named(err, rc, name ? name : "GGUF");
    }
    mq_error_clear(err);
    return MQ_OK;
}

static int tokenizer_from_gguf(const mq_gguf_t *g, const char *name, mq_tokenizer_t **out,
                               mq_error_t *err) {
    *out = NULL;
    if (!name) name = "GGUF";
    mq_gguf_str_t model, pre;
    int rc = mq_gguf_get_str(g, "tokenizer.ggml.model", &model, err);
    if (rc) return mq_tok_named(err, rc, name);
    if (strcmp(model.ptr, "llama") == 0) return spm_from_gguf(g, name, out, err);
    if (strcmp(model.ptr, "gpt2") != 0)
        return VOCAB_ERR(MQ_ERR_UNSUPPORTED,
                         "tokenizer.ggml.model is \"%.64s\"; only \"gpt2\" (byte-level BPE) and "
                         "\"llama\" (SentencePiece) are supported",
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
    int32_t *types;
    if ((rc = read_types(g, n, &types, err))) return mq_tok_named(err, rc, name);
    rc = mq_tok_build(tokens, types, (int64_t)n, merges, (int64_t)n_merges, name, out, err);
    free(types);
    if (rc) return rc;
    mq_tokenizer_t *t = *out;
    if ((rc = opt_id(g, "tokenizer.ggml.bos_token_id", n, &t->bos, err)) ||
        (rc = opt_id(g, "tokenizer.ggml.eos_token_id", n, &t->eos, err)) ||
        (rc = opt_bool(g, "tokenizer.ggml.add_bos_token", &t->add_bos, err)) ||
        (rc = opt_bool(g, "tokenizer.ggml.add_eos_token", &t->add_eos, err))) {
        mq_tokenizer_free(t);
        *out = NULL;
        return mq_tok_named(err, rc, name);
    }
    mq_error_clear(err);
    return MQ_OK;
}
