/* The training state reader ("<model>.opt", what --resume reads) on arbitrary bytes, for the
 * small model make_seeds writes its seed for. */
#include "fuzz.h"
#include "miniquant/train.h"

/* The model of make_seeds' train-state seed (fuzz/make_seeds.c). */
static const mq_gpt_config_t CFG = {
    .name = "custom", .vocab_size = 8, .n_ctx = 4, .n_embd = 8, .n_head = 1, .n_layer = 1};

static mq_gpt_t model;

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc;
    (void)argv;
    fuzz_quiet();
    mq_error_t err = {0};
    FUZZ_CHECK(mq_gpt_init(&model, &CFG, &err) == MQ_OK, "%s", err.msg);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    mq_gguf_t *g = fuzz_read_gguf(data, size);
    if (!g) return 0;
    mq_error_t err = {0};
    mq_ckpt_info_t info;
    mq_train_log_t log;
    int rc = mq_train_state_from_gguf(g, FUZZ_NAME, &model, &info, &log, &err);
    int64_t step = rc ? -1 : info.step;
    if (rc) {
        fuzz_check_refusal(rc, &err, FUZZ_NAME);
    } else {
        FUZZ_CHECK(step >= 0 && log.n_steps == step && log.n_val >= 0 && info.total_steps >= step, "step %lld, log %lld",
                   (long long)step, (long long)log.n_steps);
        float sum = 0;
        for (int64_t i = 0; i < log.n_steps; i++)
            sum += log.loss[i] + log.lr[i] + log.grad_norm[i];
        for (int64_t i = 0; i < log.n_val; i++)
            sum += log.val_loss[i] + (float)log.val_step[i];
        for (size_t i = 0; i < model.num_params; i++)
            sum += model.params_memory[i] + model.m_memory[i] + model.v_memory[i];
        (void)sum;
        mq_train_log_free(&log);
    }
    mq_gguf_free(g);
    return 0;
}
