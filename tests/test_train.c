#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "miniquant/checkpoint.h"
#include "miniquant/corpus.h"
#include "miniquant/dataset.h"
#include "miniquant/train.h"

/* A tokenizer and token streams from the fixture corpus (all splits, so the sample is big
 * enough to train on). */
static mq_tokenizer_t *tok;
static mq_tokens_t stream;

static void setup(void) {
    mq_corpus_t c;
    mq_error_t err = {0};
    cr_assert_eq(mq_corpus_load_wordnet(MQ_TEST_DATA "/wordnet", &c, &err), MQ_OK, "%s", err.msg);
    const char *docs[64];
    size_t lens[64];
    for (size_t i = 0; i < c.n_docs; i++) {
        docs[i] = c.docs[i].text;
        lens[i] = c.docs[i].len;
        c.docs[i].split = MQ_SPLIT_TRAIN;
    }
    cr_assert_eq(mq_tokenizer_train(docs, lens, c.n_docs, 300, &tok, &err), MQ_OK, "%s", err.msg);
    cr_assert_eq(mq_dataset_encode(&c, MQ_SPLIT_TRAIN, tok, &stream, &err), MQ_OK, "%s", err.msg);
    mq_corpus_free(&c);
}

static void teardown(void) {
    mq_tokens_free(&stream);
    mq_tokenizer_free(tok);
}

static void small_model(mq_gpt_t *m, uint64_t seed) {
    mq_gpt_config_t cfg = {"custom", 300, 32, 32, 2, 2};
    mq_error_t err = {0};
    cr_assert_eq(mq_gpt_init(m, &cfg, &err), MQ_OK, "%s", err.msg);
    mq_gpt_init_weights(m, seed);
}

static void small_opts(mq_train_opts_t *o, int64_t steps) {
    mq_train_defaults("tiny", o);
    o->batch_size = 4;
    o->seq_len = 32;
    o->steps = steps;
    o->warmup = 5;
    o->lr = 3e-3f;
    o->eval_every = 0;
    o->eval_windows = 4;
    o->tok = tok;
}

TestSuite(train, .init = setup, .fini = teardown);

Test(train, dataset_separates_documents_with_newline_and_eot) {
    int32_t eot = mq_tokenizer_eot(tok);
    size_t n_eot = 0;
    for (size_t i = 0; i < stream.n; i++) n_eot += stream.ids[i] == eot;
    cr_assert_eq(n_eot, 23u);
    cr_assert_eq(stream.ids[stream.n - 1], eot);
    char *text;
    size_t len;
    mq_error_t err = {0};
    cr_assert_eq(mq_tokenizer_decode(tok, stream.ids, 20, &text, &len, &err), MQ_OK);
    cr_assert(!strncmp(text, "a building where people live\n" MQ_EOT_TEXT, len < 42 ? len : 42),
              "%s", text);
    free(text);
}

Test(train, loss_falls_well_below_its_start) {
    mq_gpt_t m = {0};
    small_model(&m, 1);
    mq_train_opts_t o;
    small_opts(&o, 300);
    mq_train_log_t tl = {0};
    mq_error_t err = {0};
    cr_assert_eq(mq_train(&m, stream.ids, stream.n, stream.ids, stream.n, &o, 0, &tl, &err),
                 MQ_OK, "%s", err.msg);
    cr_assert_eq(tl.n_steps, 300);
    double first = tl.loss[0], last = 0;
    for (int i = 290; i < 300; i++) last += tl.loss[i] / 10;
    /* starts near ln(300) = 5.7 (uniform guess), and a 2-layer model memorises this sample */
    cr_assert(fabs(first - log(300.0)) < 0.5, "first loss %g", first);
    cr_assert(last < 0.5 * first, "loss %g -> %g", first, last);
    cr_assert_eq(tl.n_val, 1);
    cr_assert(tl.val_loss[0] < 0.5 * first);
    mq_train_log_free(&tl);
    mq_gpt_free(&m);
}

Test(train, lr_schedule_warms_up_then_decays_to_the_floor) {
    mq_train_opts_t o;
    small_opts(&o, 100);
    o.warmup = 10;
    cr_assert_float_eq(mq_train_lr(&o, 0), o.lr * 0.1f, 1e-9);
    cr_assert_float_eq(mq_train_lr(&o, 9), o.lr, 1e-9);
    cr_assert_float_eq(mq_train_lr(&o, 10), o.lr, 1e-9);
    cr_assert_float_eq(mq_train_lr(&o, 55), o.lr * (0.1f + 0.9f * 0.5f), 1e-7);
    cr_assert_float_eq(mq_train_lr(&o, 100), o.lr * o.min_lr_frac, 1e-9);
    for (int s = 11; s < 100; s++) cr_assert(mq_train_lr(&o, s) <= mq_train_lr(&o, s - 1));
}

Test(train, checkpoint_round_trip_is_bit_exact) {
    mq_gpt_t m = {0}, back = {0};
    small_model(&m, 3);
    char path[] = "/tmp/mq-ckpt-XXXXXX";
    int fd = mkstemp(path);
    close(fd);
    mq_ckpt_info_t info = {17, 40, 99, 1.5}, info2;
    mq_error_t err = {0};
    cr_assert_eq(mq_checkpoint_save(path, &m, tok, &info, &err), MQ_OK, "%s", err.msg);
    mq_tokenizer_t *tok2;
    cr_assert_eq(mq_checkpoint_load(path, &back, &tok2, &info2, &err), MQ_OK, "%s", err.msg);
    cr_assert_eq(memcmp(&back.cfg.vocab_size, &m.cfg.vocab_size, 5 * sizeof(int)), 0);
    cr_assert_eq(back.num_params, m.num_params);
    cr_assert_eq(memcmp(back.params_memory, m.params_memory, m.num_params * sizeof(float)), 0);
    cr_assert_eq(info2.step, 17);
    cr_assert_eq(info2.total_steps, 40);
    cr_assert_eq(info2.seed, 99u);
    cr_assert_eq(mq_tokenizer_n_vocab(tok2), mq_tokenizer_n_vocab(tok));
    int32_t *a, *b;
    size_t na, nb;
    const char *s = "he ran to the store; \"she writes\"";
    cr_assert_eq(mq_tokenizer_encode(tok, s, strlen(s), 0, &a, &na, &err), MQ_OK);
    cr_assert_eq(mq_tokenizer_encode(tok2, s, strlen(s), 0, &b, &nb, &err), MQ_OK);
    cr_assert_eq(na, nb);
    cr_assert_eq(memcmp(a, b, na * sizeof *a), 0);
    /* the file is a gpt2 model with llama.cpp's tensor names and the hyperparameter keys */
    mq_gguf_t *g;
    cr_assert_eq(mq_gguf_read(path, &g, &err), MQ_OK);
    mq_gguf_str_t arch;
    cr_assert_eq(mq_gguf_get_str(g, "general.architecture", &arch, &err), MQ_OK);
    cr_assert_str_eq(arch.ptr, "gpt2");
    uint32_t v;
    cr_assert_eq(mq_gguf_get_u32(g, "gpt2.block_count", &v, &err), MQ_OK);
    cr_assert_eq(v, 2u);
    const mq_gguf_tensor_t *qkv = mq_gguf_find_tensor(g, "blk.1.attn_qkv.weight");
    cr_assert(qkv && qkv->ne[0] == 32 && qkv->ne[1] == 96);
    cr_assert_eq(memcmp(qkv->data, m.params.qkvw + 96 * 32, 96 * 32 * sizeof(float)), 0);
    cr_assert_eq(mq_gguf_n_tensors(g), 4 + 12 * 2 + 1);
    mq_gguf_free(g);
    free(a);
    free(b);
    mq_tokenizer_free(tok2);
    unlink(path);
    mq_gpt_free(&m);
    mq_gpt_free(&back);
}

Test(train, resumed_run_ends_with_the_same_weights) {
    char path[] = "/tmp/mq-resume-XXXXXX";
    int fd = mkstemp(path);
    close(fd);
    char opt[64];
    snprintf(opt, sizeof opt, "%s.opt", path);
    mq_error_t err = {0};
    mq_train_opts_t o;
    small_opts(&o, 30);
    o.eval_every = 10;

    /* uninterrupted */
    mq_gpt_t a = {0};
    small_model(&a, 5);
    mq_train_log_t la = {0};
    cr_assert_eq(mq_train(&a, stream.ids, stream.n, stream.ids, stream.n, &o, 0, &la, &err),
                 MQ_OK, "%s", err.msg);

    /* stopped after 12 steps (checkpoint written), then resumed from the files alone */
    mq_gpt_t b = {0};
    small_model(&b, 5);
    mq_train_log_t lb = {0};
    o.ckpt_path = path;
    o.stop_at = 12;
    cr_assert_eq(mq_train(&b, stream.ids, stream.n, stream.ids, stream.n, &o, 0, &lb, &err),
                 MQ_OK, "%s", err.msg);
    mq_train_log_free(&lb);
    mq_gpt_free(&b);
    mq_gpt_t c = {0};
    mq_ckpt_info_t info;
    int64_t step;
    cr_assert_eq(mq_checkpoint_load(path, &c, NULL, &info, &err), MQ_OK, "%s", err.msg);
    cr_assert_eq(info.step, 12);
    cr_assert_eq(mq_train_state_load(path, &c, &step, &lb, &err), MQ_OK, "%s", err.msg);
    cr_assert_eq(step, 12);
    o.stop_at = 0;
    cr_assert_eq(mq_train(&c, stream.ids, stream.n, stream.ids, stream.n, &o, step, &lb, &err),
                 MQ_OK, "%s", err.msg);
    cr_assert_eq(memcmp(a.params_memory, c.params_memory, a.num_params * sizeof(float)), 0,
                 "resumed weights differ");
    cr_assert_eq(memcmp(la.loss, lb.loss, 30 * sizeof(float)), 0);
    cr_assert_eq(lb.n_val, la.n_val);
    unlink(path);
    unlink(opt);
    mq_train_log_free(&la);
    mq_train_log_free(&lb);
    mq_gpt_free(&a);
    mq_gpt_free(&c);
}
