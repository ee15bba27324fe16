/* A small random model of either architecture whose logits are far from uniform, for tests of
 * decoding and generation. Header-only. */
#ifndef MINIQUANT_TESTS_MODELS_H
#define MINIQUANT_TESTS_MODELS_H

#include <criterion/criterion.h>
#include <stdint.h>

#include "miniquant/model.h"

/* C = 32, NH = 4, L = 2, vocabulary V, context T; llama: 2 heads of keys and values, F = 64,
 * RoPE on n_rot of each head's 8 dimensions. Weights from seed, scaled by 3 (larger than the
 * initialisation's, so that attention is far from uniform). */
static inline void random_model(mq_gpt_t *m, int arch, int V, int T, int n_rot, uint64_t seed) {
    mq_gpt_config_t cfg = {
        .name = "custom", .vocab_size = V, .n_ctx = T, .n_embd = 32, .n_head = 4, .n_layer = 2};
    if (arch == MQ_ARCH_LLAMA) {
        cfg.arch = arch;
        cfg.n_head_kv = 2;
        cfg.n_ff = 64;
        cfg.n_rot = n_rot;
    }
    mq_error_t err = {0};
    cr_assert_eq(mq_gpt_init(m, &cfg, &err), MQ_OK, "%s", err.msg);
    mq_gpt_init_weights(m, seed);
    for (size_t i = 0; i < m->num_params; i++)
        m->params_memory[i] *= 3.0f;
}

#endif
