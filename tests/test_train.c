#include <criterion/criterion.h>
#include <math.h>
#include <omp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "files.h"
#include "fixture.h"
#include "miniquant/checkpoint.h"
#include "miniquant/corpus.h"
#include "miniquant/dataset.h"
#include "miniquant/layers.h"
#include "miniquant/train.h"

/* A tokenizer and token streams from the fixture corpus (fixture.h). */
static mq_tokenizer_t *tok;
static mq_tokens_t stream;

static void setup(void) {
    fixture_stream(&tok, &stream);
}

static void teardown(void) {
    mq_tokens_free(&stream);
    mq_tokenizer_free(tok);
}

static void small_model(mq_gpt_t *m, uint64_t seed) {
    fixture_model(m, seed);
}

static void small_opts(mq_train_opts_t *o, int64_t steps) {
    fixture_opts(o, steps, tok);
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

/* Two runs ended in the same state: weights, AdamW moments and the whole log, bit for bit. */
static void assert_same_state(const mq_gpt_t *a, const mq_train_log_t *la, const mq_gpt_t *b,
                              const mq_train_log_t *lb) {
    size_t n = a->num_params * sizeof(float);
    cr_assert_eq(b->num_params, a->num_params);
    cr_assert_eq(memcmp(a->params_memory, b->params_memory, n), 0, "resumed weights differ");
    cr_assert_eq(memcmp(a->m_memory, b->m_memory, n), 0, "resumed AdamW first moments differ");
    cr_assert_eq(memcmp(a->v_memory, b->v_memory, n), 0, "resumed AdamW second moments differ");
    cr_assert_eq(lb->n_steps, la->n_steps);
    size_t k = (size_t)la->n_steps * sizeof(float);
    cr_assert_eq(memcmp(la->loss, lb->loss, k), 0);
    cr_assert_eq(memcmp(la->lr, lb->lr, k), 0);
    cr_assert_eq(memcmp(la->grad_norm, lb->grad_norm, k), 0);
    cr_assert_eq(lb->n_val, la->n_val);
    cr_assert_eq(memcmp(la->val_step, lb->val_step, (size_t)la->n_val * sizeof(int64_t)), 0);
    cr_assert_eq(memcmp(la->val_loss, lb->val_loss, (size_t)la->n_val * sizeof(float)), 0);
}

/* The uninterrupted run (a, its files at path_a) and the resumed one (c, at path_c) ended in
 * the same state and wrote the same files but for the wall-clock seconds; frees both. */
static void assert_same_end(mq_gpt_t *a, mq_train_log_t *la, const char *path_a, mq_gpt_t *c,
                            mq_train_log_t *lc, const char *path_c) {
    assert_same_state(a, la, c, lc);
    char opt_a[300], opt_c[300];
    snprintf(opt_a, sizeof opt_a, "%s.opt", path_a);
    snprintf(opt_c, sizeof opt_c, "%s.opt", path_c);
    cr_assert(same_gguf_untimed(path_a, path_c), "the resumed run's model file differs");
    cr_assert(same_gguf_untimed(opt_a, opt_c), "the resumed run's .opt file differs");
    mq_train_log_free(la);
    mq_train_log_free(lc);
    mq_gpt_free(a);
    mq_gpt_free(c);
}

/* Resumes the run whose files are at path and trains it to the end of o's schedule: from its
 * state alone (the model's weights there replace any m starts with). */
static void resume(const char *path, mq_train_opts_t *o, int64_t want_step, mq_gpt_t *m,
                   mq_train_log_t *log) {
    mq_ckpt_info_t info;
    mq_error_t err = {0};
    small_model(m, 99);
    cr_assert_eq(mq_train_state_load(path, m, &info, log, &err), MQ_OK, "%s", err.msg);
    cr_assert_eq(info.step, want_step);
    cr_assert_eq(info.total_steps, o->steps);
    cr_assert_eq(info.seed, o->seed);
    o->ckpt_path = path;
    o->stop_at = 0;
    cr_assert_eq(mq_train(m, stream.ids, stream.n, stream.ids, stream.n, o, info.step, log, &err),
                 MQ_OK, "%s", err.msg);
}

/* The uninterrupted run of o, with its checkpoints at path. */
static void uninterrupted(const char *path, mq_train_opts_t *o, mq_gpt_t *m, mq_train_log_t *log) {
    mq_error_t err = {0};
    small_model(m, 5);
    memset(log, 0, sizeof *log);
    o->ckpt_path = path;
    o->stop_at = 0;
    cr_assert_eq(mq_train(m, stream.ids, stream.n, stream.ids, stream.n, o, 0, log, &err), MQ_OK,
                 "%s", err.msg);
}

Test(train, resumed_run_ends_with_the_same_weights) {
    char dir[] = "/tmp/mq-resume-XXXXXX";
    cr_assert(mkdtemp(dir));
    char path_a[256], path_c[256];
    snprintf(path_a, sizeof path_a, "%s/a.gguf", dir);
    snprintf(path_c, sizeof path_c, "%s/c.gguf", dir);
    mq_error_t err = {0};
    mq_train_opts_t o;
    small_opts(&o, 30);
    o.eval_every = 10;

    mq_gpt_t a = {0}, b = {0}, c = {0};
    mq_train_log_t la, lb = {0}, lc;
    uninterrupted(path_a, &o, &a, &la);

    /* stopped after 12 steps (checkpoint written), then resumed from the files alone */
    small_model(&b, 5);
    o.ckpt_path = path_c;
    o.stop_at = 12;
    cr_assert_eq(mq_train(&b, stream.ids, stream.n, stream.ids, stream.n, &o, 0, &lb, &err),
                 MQ_OK, "%s", err.msg);
    mq_train_log_free(&lb);
    mq_gpt_free(&b);
    resume(path_c, &o, 12, &c, &lc);
    assert_same_end(&a, &la, path_a, &c, &lc, path_c);
    remove_dir(dir);
}

/* A Linear replacement that computes what the model's own forward would, and kills the process
 * (SIGKILL: no handler, no cleanup) at its kill_at-th call. */
typedef struct killer {
    mq_gpt_t *m;
    long calls, kill_at;
} killer_t;

static int killing_linear(void *ctx, mq_linear_id_t id, float *out, const float *inp,
                          const float *bias, int N, int C, int OC) {
    killer_t *k = ctx;
    if (++k->calls == k->kill_at) kill(getpid(), SIGKILL);
    const float *W = mq_gpt_linear_weight(k->m, id, NULL, NULL, NULL);
    mq_matmul_forward(out, inp, W, bias, N, C, OC);
    return MQ_OK;
}

/* No .init here: the test forks before anything starts OpenMP's threads, which a forked child
 * could not use. */
TestSuite(resume);

Test(resume, killed_partway_then_resumed_ends_as_the_uninterrupted_run) {
    char dir[] = "/tmp/mq-kill-XXXXXX";
    cr_assert(mkdtemp(dir));
    char path[256], path_a[256];
    snprintf(path, sizeof path, "%s/killed.gguf", dir);
    snprintf(path_a, sizeof path_a, "%s/whole.gguf", dir);
    const int L = 2, per_step = 4 * L + 1; /* Linear calls per forward */

    pid_t pid = fork();
    cr_assert(pid >= 0);
    if (pid == 0) {
        /* checkpoints every 4 steps; killed in the middle of step 14's forward */
        setup();
        mq_train_opts_t o;
        small_opts(&o, 30);
        o.ckpt_every = 4;
        o.ckpt_path = path;
        mq_gpt_t m = {0};
        small_model(&m, 5);
        killer_t k = {&m, 0, 14L * per_step + 3};
        m.linear_fn = killing_linear;
        m.linear_ctx = &k;
        mq_train_log_t log = {0};
        mq_error_t err = {0};
        mq_train(&m, stream.ids, stream.n, stream.ids, stream.n, &o, 0, &log, &err);
        _exit(3); /* not reached */
    }
    int status;
    cr_assert_eq(waitpid(pid, &status, 0), pid);
    cr_assert(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL, "status %d", status);
    cr_assert_eq(count_entries(dir, ".tmp."), 0, "a kill between writes left a temporary file");

    setup();
    mq_train_opts_t o;
    small_opts(&o, 30);
    o.ckpt_every = 4;
    mq_gpt_t a = {0}, c = {0};
    mq_train_log_t la, lc;
    uninterrupted(path_a, &o, &a, &la);
    resume(path, &o, 12, &c, &lc);
    assert_same_end(&a, &la, path_a, &c, &lc, path);
    remove_dir(dir);
    teardown();
}

/* ---- a kill at every step of writing a checkpoint ---- */

/* The fault hook's state: counts the file layer's steps, kills the process at the kill_at-th
 * (0: never). */
typedef struct fault {
    long ops, kill_at;
} fault_t;

static void fault_hook(const char *op, const char *path, void *ctx) {
    (void)op;
    (void)path;
    fault_t *f = ctx;
    if (++f->ops == f->kill_at) kill(getpid(), SIGKILL);
}

/* two checkpoints: the first (no files before it) and the last (the end of the run) */
enum { KILL_STEPS = 4, KILL_EVERY = 2 };

static void kill_opts(mq_train_opts_t *o, const char *path) {
    small_opts(o, KILL_STEPS);
    o->ckpt_every = KILL_EVERY;
    o->ckpt_path = path;
}

/* In a child: trains the run at path from nothing, with the fault hook killing at kill_at
 * (0: never); writes the count of file steps to fd (when >= 0). Exits 0 when done. */
static void child_train(const char *path, long kill_at, int fd) {
    omp_set_num_threads(1);
    setup();
    fault_t f = {0, kill_at};
    mq_fileio_set_hook(fault_hook, &f);
    mq_train_opts_t o;
    kill_opts(&o, path);
    mq_gpt_t m = {0};
    small_model(&m, 5);
    mq_train_log_t log = {0};
    mq_error_t err = {0};
    int rc = mq_train(&m, stream.ids, stream.n, stream.ids, stream.n, &o, 0, &log, &err);
    if (fd >= 0 && write(fd, &f.ops, sizeof f.ops) != (ssize_t)sizeof f.ops) rc = 1;
    _exit(rc == MQ_OK ? 0 : 1);
}

/* In a child: what `miniquant train --resume` does after a kill: from the state when there is
 * one, else from the start (the run had no complete checkpoint). Exits 0 when the run ended. */
static void child_resume(const char *path) {
    omp_set_num_threads(1);
    setup();
    mq_train_opts_t o;
    kill_opts(&o, path);
    mq_gpt_t m = {0};
    small_model(&m, 5);
    mq_train_log_t log = {0};
    mq_ckpt_info_t info = {0, KILL_STEPS, o.seed, 0};
    mq_error_t err = {0};
    char opt[300];
    snprintf(opt, sizeof opt, "%s.opt", path);
    int rc = mq_file_exists(opt) ? mq_train_state_load(path, &m, &info, &log, &err) : MQ_OK;
    if (rc == MQ_OK)
        rc = mq_train(&m, stream.ids, stream.n, stream.ids, stream.n, &o, info.step, &log, &err);
    if (rc) fprintf(stderr, "resume after a kill: %s\n", err.msg);
    _exit(rc == MQ_OK ? 0 : 1);
}

/* Forks; the child runs fn(path, kill_at, fd) and exits. Returns the child's wait status. */
static int in_child(void (*fn)(const char *, long, int), const char *path, long kill_at, int fd) {
    pid_t pid = fork();
    cr_assert(pid >= 0);
    if (pid == 0) fn(path, kill_at, fd);
    int status;
    cr_assert_eq(waitpid(pid, &status, 0), pid);
    return status;
}

static void resume_child(const char *path, long kill_at, int fd) {
    (void)kill_at;
    (void)fd;
    child_resume(path);
}

Test(resume, a_kill_at_every_write_fsync_and_rename_of_the_checkpoints_is_resumed) {
    char dir[] = "/tmp/mq-kills-XXXXXX";
    cr_assert(mkdtemp(dir));
    char whole[256], path[256];
    snprintf(whole, sizeof whole, "%s/whole.gguf", dir);
    snprintf(path, sizeof path, "%s/killed.gguf", dir);

    /* the uninterrupted run, counting the file layer's steps */
    int fds[2];
    cr_assert_eq(pipe(fds), 0);
    int status = in_child(child_train, whole, 0, fds[1]);
    close(fds[1]);
    long n_ops = 0;
    cr_assert_eq(read(fds[0], &n_ops, sizeof n_ops), (ssize_t)sizeof n_ops);
    close(fds[0]);
    cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "status %d", status);
    /* per checkpoint two files, each at least create, write, fsync, rename, dirsync */
    cr_assert_geq(n_ops, 2 * 5 * (KILL_STEPS / KILL_EVERY), "%ld steps", n_ops);

    char opt_whole[300], opt[300];
    snprintf(opt_whole, sizeof opt_whole, "%s.opt", whole);
    snprintf(opt, sizeof opt, "%s.opt", path);
    for (long k = 1; k <= n_ops; k++) {
        remove(path);
        remove(opt);
        status = in_child(child_train, path, k, -1);
        cr_assert(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL, "kill at step %ld: status %d",
                  k, status);
        status = in_child(resume_child, path, 0, -1);
        cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0,
                  "the run killed at file step %ld of %ld did not resume", k, n_ops);
        cr_assert(same_gguf_untimed(whole, path), "killed at file step %ld: the model differs", k);
        cr_assert(same_gguf_untimed(opt_whole, opt), "killed at file step %ld: the state differs",
                  k);
        cr_assert_eq(count_entries(dir, ".tmp."), 0,
                     "killed at file step %ld: a temporary file outlived the next write", k);
    }
    remove_dir(dir);
}
