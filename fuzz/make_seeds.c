/* Writes the seed corpus of every fuzz target: small valid inputs made by miniquant itself.
 *
 *   make_seeds OUT_DIR [TEST_DATA_DIR]
 *
 * OUT_DIR/<target>/ receives, for
 *   gguf, model       a tiny model's checkpoint and its export under every storage of export.h
 *                     (F32, F16, Q8_0, Q4_0, packed codes with F16 scales, lm_head kept F32),
 *                     one with its tokenizer, and another tool's file of each type miniquant
 *                     only reads (bf16, q4_1 .. q6_K, iq4_nl, iq4_xs); gguf also a file of
 *                     every metadata value type
 *   blocks            two blocks of every format but packed codes (first byte: the format)
 *   train_state       the "<model>.opt" of fuzz_train_state's model
 *   tokenizer_gguf    a learned tokenizer, one with user-defined and control tokens, and a
 *                     SentencePiece one
 *   tokenizer_encode  texts (first byte: tokenizer and flags, see fuzz_tokenizer_encode.c)
 *   blimp             a jsonl file written by mq_blimp_write
 *   corpus            WordNet data lines and the split text miniquant writes from them
 *   scheme            scheme names
 *   tool_output       llama-bench's JSON and test-backend-ops' MUL_MAT lines
 *   lexicon           the test fixture's index.verb, verb.exc and cntlist.rev (needs
 *                     TEST_DATA_DIR, the source tree's tests/data)
 *   wordnet           the same with data.verb, index.noun, index.adj, noun.exc, adj.exc and
 *                     data.noun (the verb frames and word classes; TEST_DATA_DIR too) */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "miniquant/checkpoint.h"
#include "miniquant/corpus.h"
#include "miniquant/export.h"
#include "miniquant/fileio.h"
#include "miniquant/format.h"
#include "miniquant/pairs.h"
#include "miniquant/progress.h"
#include "miniquant/recipe.h"
#include "miniquant/rng.h"
#include "miniquant/train.h"

static const char *out_dir;
static int n_written;

static void die(const mq_error_t *err) {
    fprintf(stderr, "make_seeds: %s\n", err->msg);
    exit(1);
}

static void check(int rc, const mq_error_t *err) {
    if (rc) die(err);
}

static void seed(const char *target, const char *name, const void *data, size_t len) {
    char path[4096];
    mq_error_t err = {0};
    snprintf(path, sizeof path, "%s/%s", out_dir, target);
    check(mq_mkdir_p(path, &err), &err);
    snprintf(path, sizeof path, "%s/%s/%s", out_dir, target, name);
    check(mq_write_file(path, data, len, &err), &err);
    n_written++;
}

static void seed_gguf(const char *target, const char *name, const mq_gguf_t *g) {
    void *buf;
    size_t len;
    mq_error_t err = {0};
    check(mq_gguf_write_mem(g, &buf, &len, &err), &err);
    seed(target, name, buf, len);
    free(buf);
}

/* A prefix byte and a text, as the corpus and encode targets take them. */
static void seed_prefixed(const char *target, const char *name, unsigned char first,
                          const char *text, size_t len) {
    char *buf = malloc(len + 1);
    if (!buf) exit(1);
    buf[0] = (char)first;
    memcpy(buf + 1, text, len);
    seed(target, name, buf, len + 1);
    free(buf);
}

/* ---- tokenizers ---- */

static void tokenizer_seeds(void) {
    mq_tokenizer_t *t = fuzz_learned_tokenizer(320), *s = fuzz_with_specials(t),
                   *spm = fuzz_spm_tokenizer(t);
    mq_error_t err = {0};
    const mq_tokenizer_t *both[3] = {t, s, spm};
    const char *names[3] = {"learned.gguf", "specials.gguf", "spm.gguf"};
    for (int k = 0; k < 3; k++) {
        mq_gguf_t *g = mq_gguf_new();
        if (!g) exit(1);
        check(mq_gguf_set_str(g, "general.architecture", "gpt2"), &err);
        check(mq_tokenizer_to_gguf(both[k], g, &err), &err);
        seed_gguf("tokenizer_gguf", names[k], g);
        seed_gguf("gguf", names[k], g);
        mq_gguf_free(g);
    }
    mq_tokenizer_free(spm);
    mq_tokenizer_free(s);
    mq_tokenizer_free(t);

    static const struct {
        const char *name;
        unsigned char first;
        const char *text;
    } TEXTS[] = {
        {"english", 0, "she walked to the store; \"he writes\" and they've gone 42 times\n"},
        {"specials", 3, "<|user|>hello<|ctl|> world<|endoftext|>\n<|user|><|ctl"},
        {"specials-as-text", 1, "a <|ctl|> b <|endoftext|> c"},
        {"unicode", 2, "caf\xc3\xa9 \xe6\x97\xa5\xe6\x9c\xac \xf0\x9f\x98\x80 \t\r\n  x"},
        {"invalid-utf8", 0, "\xff\xfe\xc3 \xed\xa0\x80 \xf4\x90\x80\x80 \xc0\xaf end"},
        {"spm-english", 4, "she walked to the store; \"he writes\" and they've gone 42 times\n"},
        {"spm-specials", 14, "<s>hello</s> world <unk>\n<s><s"},
        {"spm-unicode", 4, "caf\xc3\xa9 \xe6\x97\xa5\xe6\x9c\xac \xf0\x9f\x98\x80 \t\r\n  x"},
        {"spm-invalid-utf8", 12, "\xff\xfe\xc3 \xe2\x96 \xe2\x96\x81 \xf4\x90\x80\x80 end \xe2"},
    };
    for (size_t i = 0; i < sizeof TEXTS / sizeof TEXTS[0]; i++)
        seed_prefixed("tokenizer_encode", TEXTS[i].name, TEXTS[i].first, TEXTS[i].text,
                      strlen(TEXTS[i].text));
}

/* ---- models ---- */

/* A MiniGPT small enough to fuzz (C = 32 so that ggml's 32-blocks fit), with LayerNorm
 * parameters and biases away from their initial constants. */
static void tiny_model(mq_gpt_t *m, int vocab, uint64_t seed_value) {
    mq_gpt_config_t cfg = {
        .name = "custom", .vocab_size = vocab, .n_ctx = 4, .n_embd = 32, .n_head = 2, .n_layer = 1};
    mq_error_t err = {0};
    check(mq_gpt_init(m, &cfg, &err), &err);
    mq_gpt_init_weights(m, seed_value);
    mq_rng_t r;
    mq_rng_seed(&r, seed_value + 1);
    for (int p = 0; p < MQ_NUM_PARAMS; p++) {
        if (mq_gpt_param_is_matrix(p)) continue;
        float *x = ((float **)&m->params)[p];
        for (size_t i = 0; i < m->param_sizes[p]; i++)
            x[i] += 0.1f * mq_rng_normal(&r);
    }
}

static void export_seed(const mq_gpt_t *m, const char *scheme, int skip_lm_head,
                        const mq_tokenizer_t *tok, const char *name) {
    mq_error_t err = {0};
    mq_scheme_t s;
    check(mq_scheme_parse(scheme, &s, &err), &err);
    mq_qmodel_t q;
    mq_qmodel_opts_t o = {skip_lm_head, -1, 0, NULL};
    check(mq_qmodel_quantize(&q, m, &s, &o, &err), &err);
    mq_gguf_t *g = mq_gguf_new();
    if (!g) exit(1);
    check(mq_qmodel_to_gguf(m, &q, tok, g, &err), &err);
    seed_gguf("model", name, g);
    seed_gguf("gguf", name, g);
    mq_gguf_free(g);
    mq_qmodel_free(&q);
}

/* A recipe's file: every Linear its own type, token_embd in a block format. */
static void recipe_seed(const mq_gpt_t *m, const char *recipe, const char *name) {
    mq_error_t err = {0};
    mq_recipe_t r;
    check(mq_recipe_parse(recipe, &m->cfg, &r, &err), &err);
    mq_qmodel_t q;
    mq_qmodel_opts_t o = {0, -1, 0, &r};
    check(mq_qmodel_quantize(&q, m, NULL, &o, &err), &err);
    mq_gguf_t *g = mq_gguf_new();
    if (!g) exit(1);
    check(mq_qmodel_to_gguf(m, &q, NULL, g, &err), &err);
    seed_gguf("model", name, g);
    mq_gguf_free(g);
    mq_qmodel_free(&q);
    mq_recipe_free(&r);
}

static void model_seeds(void) {
    static const char *const SCHEMES[] = {
        "fp32",
        "fp16",
        "int8_per_tensor",
        "int8_per_channel",
        "int8_g32",
        "int4_g32",
        "int4_per_channel",
        "int8_g16",
        "int3_per_channel",
        "int2_g8",
        "int6_per_tensor",
        "nf4_g16",
        "int5_g32_gptq",
        "nf3_g16",
        "nf3_g32_gptq",
    };
    mq_gpt_t m;
    tiny_model(&m, 8, 1);
    mq_error_t err = {0};
    char name[64];
    for (size_t i = 0; i < sizeof SCHEMES / sizeof SCHEMES[0]; i++) {
        snprintf(name, sizeof name, "%s.gguf", SCHEMES[i]);
        export_seed(&m, SCHEMES[i], 0, NULL, name);
    }
    export_seed(&m, "int4_g32", 1, NULL, "int4_g32-skip-lm-head.gguf");
    /* C = 32: the K-quants' fallbacks (q5_0, q5_1, q8_0) and iq4_nl */
    export_seed(&m, "q4_k", 0, NULL, "q4_k-fallbacks.gguf");
    export_seed(&m, "q5_k", 0, NULL, "q5_k-fallbacks.gguf");
    export_seed(&m, "q6_k", 0, NULL, "q6_k-fallbacks.gguf");
    export_seed(&m, "iq4_nl", 0, NULL, "iq4_nl.gguf");
    export_seed(&m, "nf4_g32", 1, NULL, "nf4_g32-skip-lm-head.gguf");
    export_seed(&m, "nf3_g32", 1, NULL, "nf3_g32-skip-lm-head.gguf");

    /* the FP32 checkpoint as training writes it */
    mq_gguf_t *g = mq_gguf_new();
    mq_ckpt_info_t info = {3, 10, 1234, 0.5};
    if (!g) exit(1);
    check(mq_gpt_to_gguf(&m, NULL, &info, g, &err), &err);
    seed_gguf("model", "checkpoint.gguf", g);
    mq_gguf_free(g);
    mq_gpt_free(&m);

    /* C = 64: ffn_down's rows of 256 inputs hold K-quant blocks */
    {
        mq_gpt_config_t cfg64 = {
            .name = "custom", .vocab_size = 8, .n_ctx = 4, .n_embd = 64, .n_head = 2, .n_layer = 1};
        check(mq_gpt_init(&m, &cfg64, &err), &err);
        mq_gpt_init_weights(&m, 4);
        export_seed(&m, "q4_k", 0, NULL, "q4_k.gguf");
        export_seed(&m, "q6_k", 0, NULL, "q6_k.gguf");
        recipe_seed(&m, "q4_k_m", "recipe-q4_k_m.gguf");
        recipe_seed(&m, "q3_k_m", "recipe-q3_k_m.gguf");
        recipe_seed(&m, "q8_0", "recipe-q8_0.gguf");
        mq_gpt_free(&m);
    }

    /* a model with its tokenizer embedded, as the CLI's files are */
    mq_tokenizer_t *tok = fuzz_learned_tokenizer(257 + 3);
    tiny_model(&m, mq_tokenizer_n_vocab(tok), 2);
    export_seed(&m, "int8_per_channel", 0, tok, "int8_per_channel-tokenizer.gguf");
    mq_tokenizer_free(tok);
    mq_gpt_free(&m);

    /* MiniLlama: grouped-query attention (2 heads, 1 of keys and values), RoPE, SwiGLU; its
     * checkpoint, quantized files and one with a SentencePiece tokenizer */
    {
        mq_gpt_config_t cl = {.name = "custom",
                              .vocab_size = 8,
                              .n_ctx = 4,
                              .n_embd = 32,
                              .n_head = 2,
                              .n_layer = 1,
                              .arch = MQ_ARCH_LLAMA,
                              .n_head_kv = 1,
                              .n_ff = 64};
        check(mq_gpt_init(&m, &cl, &err), &err);
        mq_gpt_init_weights(&m, 6);
        g = mq_gguf_new();
        if (!g) exit(1);
        check(mq_gpt_to_gguf(&m, NULL, &info, g, &err), &err);
        seed_gguf("model", "llama-checkpoint.gguf", g);
        mq_gguf_free(g);
        export_seed(&m, "int4_g32", 0, NULL, "llama-int4_g32.gguf");
        export_seed(&m, "nf4_g16", 0, NULL, "llama-nf4_g16.gguf");
        export_seed(&m, "q4_k", 0, NULL, "llama-q4_k-fallbacks.gguf");
        mq_gpt_free(&m);
        mq_tokenizer_t *spm = NULL;
        check(mq_synth_vocabulary(300, &spm, &err), &err);
        cl.vocab_size = 300;
        check(mq_gpt_init(&m, &cl, &err), &err);
        mq_gpt_init_weights(&m, 7);
        export_seed(&m, "int8_per_channel", 0, spm, "llama-int8-spm-tokenizer.gguf");
        mq_tokenizer_free(spm);
        mq_gpt_free(&m);
    }
}

/* Another tool's file (no miniquant.scheme) of a model with C = 64, whose blk.0.ffn_down.weight
 * (256 inputs) is of each type miniquant only reads, holding blocks of a pattern whose every
 * half is finite: the tensor's type field and data patched in the written bytes. Also two blocks
 * of every format but packed codes, for fuzz_blocks. */
static void read_type_seeds(void) {
    mq_gpt_t m;
    mq_gpt_config_t cfg = {
        .name = "custom", .vocab_size = 8, .n_ctx = 4, .n_embd = 64, .n_head = 2, .n_layer = 1};
    mq_error_t err = {0};
    check(mq_gpt_init(&m, &cfg, &err), &err);
    mq_gpt_init_weights(&m, 5);
    mq_gguf_t *g = mq_gguf_new();
    if (!g) exit(1);
    check(mq_gpt_to_gguf(&m, NULL, NULL, g, &err), &err);
    void *buf;
    size_t len;
    check(mq_gguf_write_mem(g, &buf, &len, &err), &err);
    mq_gguf_free(g);
    mq_gpt_free(&m);
    /* where the tensor's type field and data are */
    const char *name = "blk.0.ffn_down.weight";
    size_t n = strlen(name), type_at = 0, data_at = 0, data_end = 0;
    for (size_t i = 0; i + 8 + n <= len && !type_at; i++) {
        uint64_t l;
        memcpy(&l, (uint8_t *)buf + i, 8);
        if (l == n && !memcmp((uint8_t *)buf + i + 8, name, n)) type_at = i + 8 + n + 4 + 2 * 8;
    }
    check(mq_gguf_read_mem(buf, len, "seed", &g, &err), &err);
    for (int64_t k = 0; k < mq_gguf_n_tensors(g); k++) {
        const mq_gguf_tensor_t *t = mq_gguf_tensor(g, k);
        size_t e = (size_t)t->offset + t->nbytes;
        data_end = e > data_end ? e : data_end;
        if (!strcmp(t->name, name)) data_at = (size_t)t->offset;
    }
    size_t a = mq_gguf_alignment(g);
    data_at += len - (data_end + a - 1) / a * a;
    mq_gguf_free(g);
    if (!type_at) exit(1);
    int k = 0;
    for (int i = 0; MQ_FORMATS[i]; i++) {
        const mq_format_t *f = MQ_FORMATS[i];
        if (f->side_scales) continue;
        uint8_t *p = malloc(len);
        if (!p) exit(1);
        memcpy(p, buf, len);
        uint32_t type = (uint32_t)f->ggml_type;
        memcpy(p + type_at, &type, 4);
        size_t nbytes = 0;
        check(mq_ggml_nbytes(f->ggml_type, 2, (int64_t[]){256, 64}, &nbytes, &err), &err);
        for (size_t j = 0; j < nbytes; j++)
            p[data_at + j] = (uint8_t)((j * 37 + (j >> 5) * 11 + (size_t)i) & 0x3f);
        char fname[64];
        snprintf(fname, sizeof fname, "foreign-%s.gguf", f->name);
        if (!mq_format_writes(f)) seed("model", fname, p, len); /* the others: exported seeds */
        /* two blocks: the first byte picks the type among the read rows */
        const mq_ggml_type_info_t *ti = mq_ggml_type_info(f->ggml_type);
        size_t bb = 2 * ti->type_size;
        uint8_t *b = malloc(bb + 1);
        if (!b) exit(1);
        b[0] = (uint8_t)k++;
        memcpy(b + 1, p + data_at, bb);
        snprintf(fname, sizeof fname, "%s.blocks", f->name);
        seed("blocks", fname, b, bb + 1);
        free(b);
        free(p);
    }
    free(buf);
}

/* The training state of fuzz_train_state's model, {V 8, maxT 4, C 8, NH 1, L 1}. */
static void train_state_seed(void) {
    mq_gpt_config_t cfg = {
        .name = "custom", .vocab_size = 8, .n_ctx = 4, .n_embd = 8, .n_head = 1, .n_layer = 1};
    mq_gpt_t m;
    mq_error_t err = {0};
    check(mq_gpt_init(&m, &cfg, &err), &err);
    m.m_memory = calloc(m.num_params, sizeof(float));
    m.v_memory = calloc(m.num_params, sizeof(float));
    if (!m.m_memory || !m.v_memory) exit(1);
    for (size_t i = 0; i < m.num_params; i++) {
        m.m_memory[i] = 1e-3f * (float)(i % 7);
        m.v_memory[i] = 1e-6f * (float)(i % 5);
    }
    float loss[3] = {2.1f, 2.0f, 1.9f}, lr[3] = {1e-4f, 2e-4f, 3e-4f}, gn[3] = {1, 0.9f, 0.8f};
    int64_t val_step[1] = {2};
    float val_loss[1] = {1.95f};
    mq_train_log_t log = {loss, lr, gn, 3, val_step, val_loss, 1, 4.5, 100};
    char dir[4096], path[4200], opt[4300];
    snprintf(dir, sizeof dir, "%s/train_state", out_dir);
    check(mq_mkdir_p(dir, &err), &err);
    snprintf(path, sizeof path, "%s/model.gguf", dir);
    mq_ckpt_info_t info = {3, 10, 1337, 4.5};
    check(mq_train_state_save(path, &m, &info, &log, &err), &err);
    snprintf(opt, sizeof opt, "%s.opt", path);
    char *buf;
    size_t len;
    check(mq_read_file(opt, 0, &buf, &len, &err), &err);
    remove(opt);
    seed("train_state", "model.gguf.opt", buf, len);
    seed("gguf", "train-state.opt", buf, len);
    free(buf);
    mq_gpt_free(&m);
}

/* A file with a key of every value type, arrays of each, and a 64-byte alignment. */
static void metadata_seed(void) {
    mq_gguf_t *g = mq_gguf_new();
    if (!g) exit(1);
    int rc = 0;
    rc |= mq_gguf_set_u32(g, "general.alignment", 64);
    rc |= mq_gguf_set_u8(g, "t.u8", 200);
    rc |= mq_gguf_set_i8(g, "t.i8", -100);
    rc |= mq_gguf_set_u16(g, "t.u16", 60000);
    rc |= mq_gguf_set_i16(g, "t.i16", -30000);
    rc |= mq_gguf_set_u32(g, "t.u32", 4000000000u);
    rc |= mq_gguf_set_i32(g, "t.i32", -2000000000);
    rc |= mq_gguf_set_u64(g, "t.u64", UINT64_MAX);
    rc |= mq_gguf_set_i64(g, "t.i64", INT64_MIN);
    rc |= mq_gguf_set_f32(g, "t.f32", 1.5f);
    rc |= mq_gguf_set_f64(g, "t.f64", 0.1);
    rc |= mq_gguf_set_bool(g, "t.bool", 1);
    rc |= mq_gguf_set_str(g, "t.str", "hello");
    int16_t i16[3] = {1, -2, 3};
    double f64[2] = {1.0, -0.5};
    uint8_t bools[2] = {0, 1};
    const char *strs[3] = {"a", "", "ccc"};
    rc |= mq_gguf_set_arr(g, "t.arr.i16", MQ_GGUF_INT16, i16, 3);
    rc |= mq_gguf_set_arr(g, "t.arr.f64", MQ_GGUF_FLOAT64, f64, 2);
    rc |= mq_gguf_set_arr(g, "t.arr.bool", MQ_GGUF_BOOL, bools, 2);
    rc |= mq_gguf_set_arr(g, "t.arr.empty", MQ_GGUF_UINT32, NULL, 0);
    rc |= mq_gguf_set_arr_str(g, "t.arr.str", strs, 3);
    mq_error_t err = {0};
    float f[4] = {1, 2, 3, 4};
    mq_fp16_t h[32] = {0};
    uint8_t q8[34] = {0};
    int64_t ne2[2] = {2, 2}, ne32[1] = {32}, ne0[1] = {0};
    if (rc || mq_gguf_add_tensor(g, "f32", MQ_GGML_F32, 2, ne2, f, &err) ||
        mq_gguf_add_tensor(g, "f16", MQ_GGML_F16, 1, ne32, h, &err) ||
        mq_gguf_add_tensor(g, "q8_0", MQ_GGML_Q8_0, 1, ne32, q8, &err) ||
        mq_gguf_add_tensor(g, "q4_0", MQ_GGML_Q4_0, 1, ne32, q8, &err) ||
        mq_gguf_add_tensor(g, "empty", MQ_GGML_I8, 1, ne0, NULL, &err)) {
        fprintf(stderr, "make_seeds: metadata seed: %s\n", err.msg);
        exit(1);
    }
    seed_gguf("gguf", "every-type.gguf", g);
    mq_gguf_free(g);
}

/* ---- text files ---- */

static void blimp_seed(void) {
    mq_mp_set_t s = {0};
    mq_error_t err = {0};
    const char *bad1[1] = {"The cats sleeps."};
    const char *bad2[3] = {"he walk to the store", "he walking to the store",
                           "he walks to the store"};
    uint8_t infl2[3] = {MQ_INFL_BASE, MQ_INFL_ING, MQ_INFL_3SG};
    const char *bad3[1] = {"Whose should Tonya wear hat?"};
    check(mq_mp_add(&s, "The cats sleep.", bad1, NULL, 1, NULL, 0, MQ_VT_AGREEMENT,
                    "template:agreement", &err),
          &err);
    check(mq_mp_add(&s, "he walked to the store", bad2, infl2, 3, "walk", MQ_INFL_PAST | MQ_INFL_PP,
                    MQ_VT_NONE, "02604760-v", &err),
          &err);
    check(mq_mp_add(&s, "Whose hat should \"Tonya\" wear? caf\xc3\xa9 \\", bad3, NULL, 1, NULL, 0,
                    MQ_VT_NONE, NULL, &err),
          &err);
    char path[4096];
    snprintf(path, sizeof path, "%s/blimp", out_dir);
    check(mq_mkdir_p(path, &err), &err);
    snprintf(path, sizeof path, "%s/blimp/pairs.jsonl", out_dir);
    check(mq_blimp_write(path, &s, &err), &err);
    n_written++;
    mq_mp_set_free(&s);
    static const char BLIMP[] =
        "{\"sentence_good\": \"Whose hat should Tonya wear?\", \"sentence_bad\": \"Whose should "
        "Tonya wear hat?\", \"field\": \"syntax\", \"UID\": \"left_branch_island\", "
        "\"simple_LM_method\": true, \"pair_id\": 0}\n\n"
        "  {\"sentence_good\": \"a\", \"sentence_bad\": \"b\", \"item_id\": 7}\r\n";
    seed("blimp", "blimp-layout.jsonl", BLIMP, sizeof BLIMP - 1);
}

static const char DATA_VERB[] =
    "  1 miniquant fuzz seed in the layout of WordNet 3.0 data files.  \n"
    "00000100 29 v 01 word0 0 000 | move fast by using one's feet; \"he ran to the store\"  \n"
    "00000212 29 v 01 word1 0 000 | take in food; \"we ate dinner at six\"\n"
    "00000315 29 v 02 word2 0 word3 0 001 @ 00000100 v 0000 | put into writing\t \n"
    "00000400 29 v 01 word4 0 000 | \n";
static const char DATA_ADJ[] =
    "00000100 00 a 01 fine 0 000 | good; \"a fine day\"\n"
    "00000200 00 s 01 beautiful 0 000 | pleasing to the eye; \"a beautiful garden\"\n";

static void corpus_seeds(void) {
    /* first byte: below 128 a data file (byte % 5 picks the claimed part of speech: none, n, v,
     * a, r), from 128 a split text (byte % 3 picks the split) */
    seed_prefixed("corpus", "data.verb", 2, DATA_VERB, sizeof DATA_VERB - 1);
    seed_prefixed("corpus", "data.adj", 3, DATA_ADJ, sizeof DATA_ADJ - 1);
    seed_prefixed("corpus", "data-any", 0, DATA_ADJ, sizeof DATA_ADJ - 1);
    mq_corpus_t c = {0};
    mq_error_t err = {0};
    check(mq_corpus_parse_data(DATA_VERB, sizeof DATA_VERB - 1, "seed", 'v', &c, &err), &err);
    check(mq_corpus_parse_data(DATA_ADJ, sizeof DATA_ADJ - 1, "seed", 'a', &c, &err), &err);
    for (size_t i = 0; i < c.n_docs; i++)
        c.docs[i].split = MQ_SPLIT_TRAIN;
    char *text;
    size_t len;
    check(mq_corpus_split_text(&c, MQ_SPLIT_TRAIN, &text, &len, &err), &err);
    seed_prefixed("corpus", "train.txt", 129, text, len);
    free(text);
    mq_corpus_free(&c);
}

/* llama-bench's JSON and test-backend-ops' lines, as the tools print them (first byte: even
 * for the JSON, odd for a line). */
static void tool_output_seeds(void) {
    static const char *const texts[] = {
        "\0[\n  {\n    \"model_type\": \"gpt2 ?B Q4_0\",\n    \"n_prompt\": 64,\n"
        "    \"n_gen\": 0,\n    \"avg_ns\": 15831493,\n    \"avg_ts\": 4042.575138,\n"
        "    \"samples_ts\": [ 4042.58 ]\n  }\n]\n",
        "\1  MUL_MAT(type_a=q4_0,type_b=f32,m=4096,n=1,k=14336,bs=[1,1],nr=[1,1],per=[0,1,2,3]):"
        "   690 runs -  1593.60 us/run - 117.44 MFLOP/run - \x1b[1;34m 73.69 GFLOPS\x1b[0m\n",
        "\1  MUL_MAT(type_a=q4_K,type_b=f32,m=4096,n=512,k=14336,bs=[1,1],nr=[1,1],"
        "per=[0,1,2,3]):    8 runs - 140000.00 us/run - 60130 MFLOP/run - 429.50 GFLOPS\n",
    };
    static const char *const names[] = {"llama-bench.json", "mulmat-q4_0", "mulmat-q4_K"};
    for (int i = 0; i < 3; i++)
        seed("tool_output", names[i], texts[i], 1 + strlen(texts[i] + 1));
}

static void scheme_seeds(void) {
    static const char *const EXTRA[] = {
        "int2_g3",  "int8_g999999999_gptq",  "nf4_g16_gptq", "int5_per_tensor", "int7_per_channel",
        "int3_g96", "int4_per_channel_gptq", "nf3_g32",      "nf3_g5_gptq",     NULL};
    for (int k = 0; k < 2; k++) {
        const char *const *list = k ? EXTRA : MQ_STANDARD_SCHEMES;
        for (int i = 0; list[i]; i++)
            seed("scheme", list[i], list[i], strlen(list[i]));
    }
}

/* The fixture's WordNet files joined by "@@@" lines, the input of a WordNet reader's target. */
static void wordnet_seed(const char *test_data, const char *target, const char *const *files,
                         int n) {
    char *parts[16];
    size_t lens[16], total = 0;
    mq_error_t err = {0};
    for (int k = 0; k < n; k++) {
        char path[4096];
        snprintf(path, sizeof path, "%s/wordnet/%s", test_data, files[k]);
        check(mq_read_file(path, 1 << 20, &parts[k], &lens[k], &err), &err);
        total += lens[k] + 5;
    }
    char *buf = malloc(total), *p = buf;
    if (!buf) exit(1);
    for (int k = 0; k < n; k++) {
        memcpy(p, parts[k], lens[k]);
        p += lens[k];
        if (k < n - 1) {
            memcpy(p, "\n@@@\n", 5);
            p += 5;
        }
        free(parts[k]);
    }
    seed(target, "wordnet-fixture", buf, (size_t)(p - buf));
    free(buf);
}

static void wordnet_seeds(const char *test_data) {
    static const char *const LEXICON[3] = {"index.verb", "verb.exc", "cntlist.rev"};
    static const char *const WORDNET[9] = {"index.verb", "verb.exc",   "cntlist.rev",
                                           "data.verb",  "index.noun", "index.adj",
                                           "noun.exc",   "adj.exc",    "data.noun"};
    wordnet_seed(test_data, "lexicon", LEXICON, 3);
    wordnet_seed(test_data, "wordnet", WORDNET, 9);
}

int main(int argc, char **argv) {
    if (argc < 2 || argc > 3) {
        fprintf(stderr, "usage: make_seeds OUT_DIR [TEST_DATA_DIR]\n");
        return 2;
    }
    out_dir = argv[1];
    mq_progress_mute(1);
    tokenizer_seeds();
    model_seeds();
    read_type_seeds();
    train_state_seed();
    metadata_seed();
    blimp_seed();
    corpus_seeds();
    scheme_seeds();
    tool_output_seeds();
    if (argc == 3) wordnet_seeds(argv[2]);
    fprintf(stderr, "make_seeds: wrote %d seeds under %s\n", n_written, out_dir);
    return 0;
}
