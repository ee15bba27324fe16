/* Recipes: llama.cpp's mixtures tensor by tensor, the auto choice under a budget, and the files
 * of a recipe (every Linear its own scheme, token_embd in a block format) read back exactly. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "miniquant/checkpoint.h"
#include "miniquant/export.h"
#include "miniquant/gguf.h"
#include "miniquant/gptq.h"
#include "miniquant/qmodel.h"
#include "miniquant/recipe.h"
#include "miniquant/rng.h"
#include "miniquant/sensitivity.h"
#include "qhelpers.h"

static mq_gpt_config_t default_shape(void) {
    mq_gpt_config_t c;
    mq_error_t err = {0};
    cr_assert_eq(mq_gpt_preset("default", 4096, &c, &err), MQ_OK, "%s", err.msg);
    return c;
}

static mq_recipe_t recipe(const char *name, const mq_gpt_config_t *c) {
    mq_recipe_t r;
    mq_error_t err = {0};
    cr_assert_eq(mq_recipe_parse(name, c, &r, &err), MQ_OK, "%s: %s", name, err.msg);
    return r;
}

/* The type of each tensor of the default MiniGPT (4 layers) as llama-quantize (llama.cpp
 * c392e50) wrote them from models/minigpt-default.gguf: per layer qkv, attn_output, ffn_up,
 * ffn_down; then output and token_embd. */
Test(recipe, mixtures_give_the_types_llama_quantize_gives_the_default_model) {
    static const struct {
        const char *name;
        const char *types[18];
    } CASES[] = {
        {"q4_k_m",
         {"q5_k", "q4_k", "q4_k", "q4_k", "q5_k", "q4_k", "q4_k", "q4_k", "q5_k", "q4_k", "q4_k",
          "q6_k", "q5_k", "q4_k", "q4_k", "q6_k", "q6_k", "q4_k"}},
        {"q5_k_m",
         {"q6_k", "q5_k", "q5_k", "q5_k", "q6_k", "q5_k", "q5_k", "q5_k", "q6_k", "q5_k", "q5_k",
          "q6_k", "q6_k", "q5_k", "q5_k", "q6_k", "q6_k", "q5_k"}},
        {"q3_k_m",
         {"q4_k", "q4_k", "q3_k", "q4_k", "q4_k", "q4_k", "q3_k", "q4_k", "q4_k", "q4_k", "q3_k",
          "q4_k", "q4_k", "q4_k", "q3_k", "q4_k", "q6_k", "q3_k"}},
        {"q2_k",
         {"q2_k", "q3_k", "q2_k", "q3_k", "q2_k", "q3_k", "q2_k", "q3_k", "q2_k", "q3_k", "q2_k",
          "q3_k", "q2_k", "q3_k", "q2_k", "q3_k", "q6_k", "q2_k"}},
        {"q6_k",
         {"q6_k", "q6_k", "q6_k", "q6_k", "q6_k", "q6_k", "q6_k", "q6_k", "q6_k", "q6_k", "q6_k",
          "q6_k", "q6_k", "q6_k", "q6_k", "q6_k", "q6_k", "q6_k"}},
        {"iq4_nl",
         {"iq4_nl", "iq4_nl", "iq4_nl", "iq4_nl", "iq4_nl", "iq4_nl", "iq4_nl", "iq4_nl", "iq4_nl",
          "iq4_nl", "iq4_nl", "iq4_nl", "iq4_nl", "iq4_nl", "iq4_nl", "iq4_nl", "q6_k", "iq4_nl"}},
    };
    mq_gpt_config_t c = default_shape();
    cr_assert_eq(mq_recipe_n_tensors(&c), 18);
    for (size_t k = 0; k < sizeof CASES / sizeof CASES[0]; k++) {
        mq_recipe_t r = recipe(CASES[k].name, &c);
        for (int t = 0; t < 18; t++) {
            const char *got = t < 17 ? r.linear[t].name : r.embd.name;
            char tn[48];
            mq_recipe_tensor_name(&c, t, tn, sizeof tn);
            cr_assert_str_eq(got, CASES[k].types[t], "%s %s: %s", CASES[k].name, tn, got);
        }
        mq_recipe_free(&r);
    }
}

/* On 32 layers the layer rules show: use_more_bits (the first and last eighth, every third
 * between) for q4_k_m's ffn_down, the first sixteenth for q3_k_m's, the first eighth for
 * q4_k_s's. */
Test(recipe, ffn_down_rules_follow_the_layer_on_a_deep_model) {
    mq_gpt_config_t c = default_shape();
    c.n_layer = 32;
    mq_recipe_t m = recipe("q4_k_m", &c), l3 = recipe("q3_k_m", &c), s4 = recipe("q4_k_s", &c);
    for (int i = 0; i < 32; i++) {
        int more = i < 4 || i >= 28 || (i - 4) % 3 == 2;
        cr_assert_str_eq(m.linear[4 * i + 3].name, more ? "q6_k" : "q4_k", "layer %d", i);
        cr_assert_str_eq(m.linear[4 * i + 2].name, "q4_k");
        cr_assert_str_eq(l3.linear[4 * i + 3].name, i < 2 ? "q5_k" : "q4_k", "layer %d", i);
        cr_assert_str_eq(s4.linear[4 * i + 3].name, i < 4 ? "q5_k" : "q4_k", "layer %d", i);
    }
    cr_assert_str_eq(m.linear[128].name, "q6_k");
    mq_recipe_free(&m);
    mq_recipe_free(&l3);
    mq_recipe_free(&s4);
}

/* A type by one letter: the K-quant's bits, n iq4_nl, 0 int4_g32 (Q4_0), 8 int8_g32 (Q8_0). */
static const char *type_of_letter(char c) {
    static const char *const K[] = {['2'] = "q2_k", ['3'] = "q3_k", ['4'] = "q4_k", ['5'] = "q5_k",
                                    ['6'] = "q6_k", ['n'] = "iq4_nl", ['0'] = "int4_g32",
                                    ['8'] = "int8_g32"};
    const char *t = (unsigned char)c < sizeof K / sizeof K[0] ? K[(unsigned char)c] : NULL;
    cr_assert(t, "letter '%c'", c);
    return t;
}

/* Every Linear and token_embd of c under recipe name against the letters of want (spaces are
 * skipped): per layer the Linears in the architecture's order, then output and token_embd. */
static void check_types(const mq_gpt_config_t *c, const char *name, const char *want) {
    mq_recipe_t r = recipe(name, c);
    int t = 0, n = mq_recipe_n_tensors(c);
    for (const char *w = want; *w; w++) {
        if (*w == ' ') continue;
        cr_assert(t < n, "%s: more letters than tensors", name);
        const char *got = t < r.n_linear ? r.linear[t].name : r.embd.name;
        char tn[48];
        mq_recipe_tensor_name(c, t, tn, sizeof tn);
        cr_assert_str_eq(got, type_of_letter(*w), "%s %s: %s", name, tn, got);
        t++;
    }
    cr_assert_eq(t, n, "%s: %d letters for %d tensors", name, t, n);
    mq_recipe_free(&r);
}

/* The default MiniLlama (4 layers, 4 heads sharing 2 KV heads) as llama-quantize (llama.cpp
 * c392e50) wrote it from models/minillama-default.gguf: per layer attn_q, attn_k, attn_v,
 * attn_output, ffn_gate, ffn_up, ffn_down; then output and token_embd. */
Test(recipe, mixtures_give_the_types_llama_quantize_gives_minillama) {
    mq_gpt_config_t c;
    mq_error_t err = {0};
    cr_assert_eq(mq_gpt_preset("llama-default", 4096, &c, &err), MQ_OK, "%s", err.msg);
    cr_assert_eq(mq_recipe_n_tensors(&c), 30);
    static const char *const CASES[][2] = {
        {"q2_k", "2233223 2233223 2233223 2233223 6 2"},
        {"q3_k_s", "3333333 3333333 3333333 3333333 6 3"},
        {"q3_k_m", "3354334 3354334 3344334 3344334 6 3"},
        {"q3_k_l", "3355335 3355335 3355335 3355335 6 3"},
        {"q4_k_s", "4454444 4454444 4454444 4454444 6 4"},
        {"q4_k_m", "4444444 4444444 4464446 4464446 6 4"},
        {"q5_k_s", "5555555 5555555 5555555 5555555 6 5"},
        {"q5_k_m", "5555555 5555555 5565556 5565556 6 5"},
        {"q6_k", "6666666 6666666 6666666 6666666 6 6"},
        {"iq4_nl", "nnnnnnn nnnnnnn nnnnnnn nnnnnnn 6 n"},
        {"q4_0", "0000000 0000000 0000000 0000000 6 0"},
        {"q8_0", "8888888 8888888 8888888 8888888 8 8"},
    };
    for (size_t k = 0; k < sizeof CASES / sizeof CASES[0]; k++)
        check_types(&c, CASES[k][0], CASES[k][1]);
}

/* attn_v's rules that 4 layers and 2 queries per KV head do not reach, on TinyLlama-1.1B's
 * shape (22 layers, 32 heads sharing 4 KV heads), as llama-quantize wrote them from the
 * synthetic model of that shape (miniquant synth --shape tinyllama-1.1b): q2_k and iq4_nl
 * raise attn_v when 4 or more queries share a KV head; q3_k_m raises the first 2 layers',
 * q4_k_s the first 4; q4_k_m raises use_more_bits's layers (0-1, 4, 7, 10, 13, 16, 19-21). */
Test(recipe, attn_v_rules_follow_the_layer_and_the_grouped_heads) {
    const mq_synth_shape_t *sh = mq_synth_shapes();
    while (sh->name && strcmp(sh->name, "tinyllama-1.1b"))
        sh++;
    cr_assert(sh->name);
    mq_gpt_config_t c = sh->cfg;
    cr_assert_eq(c.n_layer, 22);
    for (int i = 0; i < 22; i++) {
        int v = 7 * i + 2, down = 7 * i + 6, more = i < 2 || i >= 19 || (i - 2) % 3 == 2;
        mq_recipe_t r = recipe("q2_k", &c);
        cr_assert_str_eq(r.linear[v].name, "q4_k", "layer %d", i);
        cr_assert_str_eq(r.linear[down].name, "q3_k", "layer %d", i);
        mq_recipe_free(&r);
        r = recipe("q3_k_m", &c);
        cr_assert_str_eq(r.linear[v].name, i < 2 ? "q5_k" : "q4_k", "layer %d", i);
        cr_assert_str_eq(r.linear[down].name, i < 1 ? "q5_k" : "q4_k", "layer %d", i);
        mq_recipe_free(&r);
        r = recipe("q4_k_s", &c);
        cr_assert_str_eq(r.linear[v].name, i < 4 ? "q5_k" : "q4_k", "layer %d", i);
        cr_assert_str_eq(r.linear[down].name, i < 2 ? "q5_k" : "q4_k", "layer %d", i);
        mq_recipe_free(&r);
        r = recipe("q4_k_m", &c);
        cr_assert_str_eq(r.linear[v].name, more ? "q6_k" : "q4_k", "layer %d", i);
        cr_assert_str_eq(r.linear[down].name, more ? "q6_k" : "q4_k", "layer %d", i);
        mq_recipe_free(&r);
        r = recipe("iq4_nl", &c);
        cr_assert_str_eq(r.linear[v].name, "q5_k", "layer %d", i);
        mq_recipe_free(&r);
    }
}

Test(recipe, methods_reach_every_linear_but_not_the_embedding) {
    mq_gpt_config_t c = default_shape();
    mq_recipe_t r = recipe("q4_k_m_gptq", &c);
    cr_assert_str_eq(r.method, "_gptq");
    cr_assert_eq(r.llama_ftype, 15);
    for (int t = 0; t < r.n_linear; t++)
        cr_assert(r.linear[t].gptq, "%s", r.linear[t].name);
    cr_assert_str_eq(r.embd.name, "q4_k");
    mq_recipe_free(&r);
    /* iq4_nl's ffn_down of the first eighth goes to q5_k unless calibrated (8 layers) */
    c.n_layer = 8;
    r = recipe("iq4_nl", &c);
    cr_assert_str_eq(r.linear[3].name, "q5_k");
    mq_recipe_free(&r);
    r = recipe("iq4_nl_imat", &c);
    cr_assert_str_eq(r.linear[3].name, "iq4_nl_imat");
    mq_recipe_free(&r);
    r = recipe("q8_0", &c);
    cr_assert_str_eq(r.linear[0].name, "int8_g32");
    cr_assert_str_eq(r.linear[r.n_linear - 1].name, "int8_g32");
    mq_recipe_free(&r);

    mq_error_t err = {0};
    cr_assert_eq(mq_recipe_parse("q4_0_imat", &c, &r, &err), MQ_ERR_ARG);
    cr_assert(strstr(err.msg, "_imat"), "%s", err.msg);
    cr_assert_eq(mq_recipe_parse("q4_k_x", &c, &r, &err), MQ_ERR_ARG);
    cr_assert(strstr(err.msg, "q4_k_m"), "%s", err.msg); /* the grammar is quoted */
    cr_assert_eq(mq_recipe_check_name("auto_gptq", &err), MQ_OK);
    cr_assert_eq(mq_recipe_check_name("auto_x", &err), MQ_ERR_ARG);
}

/* A small shape whose every tensor's bytes are multiples of 64: the programme's units are then
 * exact, and brute force over all 6^6 choices is its reference. */
Test(recipe, auto_choice_is_the_least_cost_within_the_budget) {
    mq_gpt_config_t c = {
        .name = "custom", .vocab_size = 512, .n_ctx = 8, .n_embd = 256, .n_head = 1, .n_layer = 1};
    int T = mq_recipe_n_tensors(&c), K = 6;
    cr_assert_eq(T, 6);
    mq_scheme_t types[6];
    size_t bytes[6][6], weights = 0;
    for (int k = 0; k < K; k++)
        types[k] = scheme(MQ_RECIPE_AUTO_TYPES[k]);
    for (int t = 0; t < T; t++) {
        int rows, cols;
        mq_recipe_tensor_shape(&c, t, &rows, &cols);
        weights += (size_t)rows * cols;
        for (int k = 0; k < K; k++) {
            bytes[t][k] = mq_recipe_tensor_bytes(&c, t, &types[k]);
            cr_assert(bytes[t][k] > 0 && bytes[t][k] % 64 == 0);
        }
    }
    /* costs that fall with the bits, by a different amount for each tensor */
    double cost[36];
    mq_rng_t rng;
    mq_rng_seed(&rng, 7);
    for (int t = 0; t < T; t++) {
        double scale = 0.1 + mq_rng_uniform(&rng);
        for (int k = 0; k < K; k++)
            cost[t * K + k] = scale * pow(0.25, k) * (1 + 0.3 * mq_rng_uniform(&rng));
    }
    static const double TARGETS[] = {2.7, 3.5, 4.25, 5.0, 6.1, 8.5};
    for (size_t j = 0; j < sizeof TARGETS / sizeof TARGETS[0]; j++) {
        double budget = TARGETS[j] * (double)weights / 8.0, best = INFINITY;
        for (int code = 0; code < 46656; code++) {
            size_t b = 0;
            double s = 0;
            for (int t = 0, x = code; t < T; t++, x /= K) {
                b += bytes[t][x % K];
                s += cost[t * K + x % K];
            }
            if ((double)b <= budget && s < best) best = s;
        }
        mq_recipe_t r;
        mq_error_t err = {0};
        cr_assert_eq(mq_recipe_choose(&c, cost, K, TARGETS[j], "_gptq", &r, NULL, &err), MQ_OK,
                     "%s", err.msg);
        size_t w, got = mq_recipe_bytes(&r, &c, &w);
        cr_assert_eq(w, weights);
        cr_assert_leq((double)got, budget, "target %g", TARGETS[j]);
        double s = 0;
        for (int t = 0; t < T; t++) {
            const mq_scheme_t *st = t < r.n_linear ? &r.linear[t] : &r.embd;
            if (t < r.n_linear)
                cr_assert(st->gptq, "%s", st->name);
            else
                cr_assert(!mq_scheme_calibrated(st), "%s", st->name);
            int k = 0;
            while (k < K && (types[k].family != st->family || types[k].bits != st->bits))
                k++;
            cr_assert_lt(k, K, "%s", st->name);
            s += cost[t * K + k];
        }
        cr_assert_float_eq(s, best, 1e-12, "target %g: %g, brute force %g", TARGETS[j], s, best);
        mq_recipe_free(&r);
    }
    mq_recipe_t r;
    mq_error_t err = {0};
    cr_assert_eq(mq_recipe_choose(&c, cost, K, 2.0, "", &r, NULL, &err), MQ_ERR_ARG);
    cr_assert(strstr(err.msg, "fewest"), "%s", err.msg);
}

/* A random model whose rows are whole K-quant blocks. */
static void k_model(mq_gpt_t *m, uint64_t seed) {
    mq_gpt_config_t cfg = {
        .name = "custom", .vocab_size = 320, .n_ctx = 16, .n_embd = 256, .n_head = 2, .n_layer = 1};
    mq_error_t err = {0};
    cr_assert_eq(mq_gpt_init(m, &cfg, &err), MQ_OK, "%s", err.msg);
    mq_gpt_init_weights(m, seed);
}

static void export_mem(const mq_qmodel_t *q, void **buf, size_t *len) {
    mq_gguf_t *g = mq_gguf_new();
    mq_error_t err = {0};
    cr_assert_eq(mq_qmodel_to_gguf(NULL, q, NULL, g, &err), MQ_OK, "%s", err.msg);
    cr_assert_eq(mq_gguf_write_mem(g, buf, len, &err), MQ_OK, "%s", err.msg);
    mq_gguf_free(g);
}

Test(recipe, files_hold_each_tensor_as_the_recipe_says_and_read_back_exactly) {
    mq_gpt_t m;
    k_model(&m, 3);
    mq_recipe_t r = recipe("q3_k_m", &m.cfg);
    mq_qmodel_t q, q2;
    mq_error_t err = {0};
    cr_assert_eq(mq_gptq_build_recipe(&m, &r, 0, NULL, 0, NULL, &q, &err), MQ_OK, "%s", err.msg);
    cr_assert_str_eq(q.recipe, "q3_k_m");
    cr_assert_str_eq(q.embd.scheme.name, "q3_k");
    /* the lookup reads the stored values */
    float *row = malloc(256 * sizeof *row);
    mq_qweight_dequantize_row(&q.embd, 7, row);
    cr_assert(!memcmp(row, q.model->params.wte + 7 * 256, 256 * sizeof *row));
    cr_assert(memcmp(row, m.params.wte + 7 * 256, 256 * sizeof *row)); /* and they are rounded */
    free(row);
    void *buf;
    size_t len;
    export_mem(&q, &buf, &len);
    mq_gguf_t *g = NULL;
    cr_assert_eq(mq_gguf_read_mem(buf, len, "r.gguf", &g, &err), MQ_OK, "%s", err.msg);
    uint32_t u;
    mq_gguf_str_t s;
    cr_assert_eq(mq_gguf_get_u32(g, "general.file_type", &u, NULL), MQ_OK);
    cr_assert_eq(u, 12); /* LLAMA_FTYPE_MOSTLY_Q3_K_M */
    cr_assert_eq(mq_gguf_get_u32(g, "miniquant.export_version", &u, NULL), MQ_OK);
    cr_assert_eq(u, 2);
    cr_assert_eq(mq_gguf_get_str(g, "miniquant.recipe", &s, NULL), MQ_OK);
    cr_assert_str_eq(s.ptr, "q3_k_m");
    const mq_gguf_tensor_t *te = mq_gguf_find_tensor(g, "token_embd.weight");
    cr_assert_str_eq(mq_ggml_type_info(te->type)->name, "q3_K");
    static const char *const WANT[5] = {"q4_K", "q4_K", "q3_K", "q4_K", "q6_K"};
    for (int i = 0; i < q.n_linear; i++) {
        char base[48], tn[64];
        mq_qmodel_linear_name(&m.cfg, i, base, sizeof base);
        snprintf(tn, sizeof tn, "%s.weight", base);
        cr_assert_str_eq(mq_ggml_type_info(mq_gguf_find_tensor(g, tn)->type)->name, WANT[i], "%s",
                         tn);
    }
    cr_assert_eq(mq_qmodel_from_gguf(g, "r.gguf", &q2, &err), MQ_OK, "%s", err.msg);
    cr_assert_str_eq(q2.recipe, "q3_k_m");
    cr_assert(!memcmp(q2.model->params_memory, q.model->params_memory,
                      q.model->num_params * sizeof(float)));
    cr_assert(!memcmp(q2.embd.data, q.embd.data, q.embd.rows * q.embd.row_bytes));
    for (int i = 0; i < q.n_linear; i++) {
        cr_assert_str_eq(q2.ql[i].w.scheme.name, q.ql[i].w.scheme.name);
        cr_assert(!memcmp(q2.ql[i].w.data, q.ql[i].w.data, q.ql[i].w.rows * q.ql[i].w.row_bytes));
    }
    mq_model_bytes_t mb;
    mq_model_bytes(NULL, &q2, &mb);
    cr_assert_eq(mb.embedding, mq_qweight_stored_bytes(&q.embd) + 16 * 256 * 2);
    mq_qmodel_free(&q2);
    mq_gguf_free(g);
    free(buf);

    /* a file whose list of schemes disagrees with the model, or with a tensor, is refused */
    mq_gguf_t *bad = mq_gguf_new();
    cr_assert_eq(mq_qmodel_to_gguf(NULL, &q, NULL, bad, &err), MQ_OK);
    const char *two[2] = {"q4_k", "q4_k"};
    cr_assert_eq(mq_gguf_set_arr_str(bad, "miniquant.linear_schemes", two, 2), MQ_OK);
    void *bb;
    size_t bl;
    cr_assert_eq(mq_gguf_write_mem(bad, &bb, &bl, &err), MQ_OK);
    mq_gguf_free(bad);
    cr_assert_eq(mq_gguf_read_mem(bb, bl, "bad.gguf", &g, &err), MQ_OK);
    cr_assert_eq(mq_qmodel_from_gguf(g, "bad.gguf", &q2, &err), MQ_ERR_FORMAT);
    cr_assert(strstr(err.msg, "bad.gguf") && strstr(err.msg, "linear_schemes"), "%s", err.msg);
    mq_gguf_free(g);
    free(bb);
    bad = mq_gguf_new();
    cr_assert_eq(mq_qmodel_to_gguf(NULL, &q, NULL, bad, &err), MQ_OK);
    cr_assert_eq(mq_gguf_set_str(bad, "miniquant.token_embd_scheme", "q6_k"), MQ_OK);
    cr_assert_eq(mq_gguf_write_mem(bad, &bb, &bl, &err), MQ_OK);
    mq_gguf_free(bad);
    cr_assert_eq(mq_gguf_read_mem(bb, bl, "bad.gguf", &g, &err), MQ_OK);
    cr_assert_eq(mq_qmodel_from_gguf(g, "bad.gguf", &q2, &err), MQ_ERR_FORMAT);
    cr_assert(strstr(err.msg, "token_embd.weight") && strstr(err.msg, "q6_k"), "%s", err.msg);
    mq_gguf_free(g);
    free(bb);

    mq_qmodel_free(&q);
    mq_recipe_free(&r);
    mq_gpt_free(&m);
}

/* GPTQ under a recipe: each Linear in its recipe's format, chosen on calibration inputs (so
 * not the round to nearest), the embedding as round to nearest stores it. */
Test(recipe, gptq_recipes_calibrate_the_linears_and_round_the_embedding) {
    mq_gpt_t m;
    k_model(&m, 5);
    int32_t calib[2048];
    mq_rng_t rng;
    mq_rng_seed(&rng, 9);
    for (int i = 0; i < 2048; i++)
        calib[i] = (int32_t)(mq_rng_below(&rng, 320));
    mq_recipe_t rr = recipe("q4_k_m", &m.cfg), rg = recipe("q4_k_m_gptq", &m.cfg);
    mq_qmodel_t qr, qg;
    mq_error_t err = {0};
    cr_assert_eq(mq_gptq_build_recipe(&m, &rr, 0, NULL, 0, NULL, &qr, &err), MQ_OK, "%s", err.msg);
    cr_assert_eq(mq_gptq_build_recipe(&m, &rg, 0, NULL, 0, NULL, &qg, &err), MQ_ERR_ARG);
    cr_assert_eq(mq_gptq_build_recipe(&m, &rg, 0, calib, 2048, NULL, &qg, &err), MQ_OK, "%s",
                 err.msg);
    cr_assert(!memcmp(qr.embd.data, qg.embd.data, qr.embd.rows * qr.embd.row_bytes));
    for (int i = 0; i < qr.n_linear; i++) {
        cr_assert_eq(qg.ql[i].w.format, qr.ql[i].w.format, "Linear %d", i);
        cr_assert(qg.ql[i].w.scheme.gptq);
        cr_assert(memcmp(qg.ql[i].w.data, qr.ql[i].w.data, qr.ql[i].w.rows * qr.ql[i].w.row_bytes),
                  "Linear %d is the round to nearest", i);
    }
    mq_qmodel_free(&qr);
    mq_qmodel_free(&qg);
    mq_recipe_free(&rr);
    mq_recipe_free(&rg);
    mq_gpt_free(&m);
}

/* The costs auto chooses from: one per tensor and type, measured; more bits cost less. */
Test(recipe, sensitivity_costs_fall_with_the_bits) {
    mq_gpt_t m;
    k_model(&m, 11);
    int32_t calib[4096];
    mq_rng_t rng;
    mq_rng_seed(&rng, 12);
    for (int i = 0; i < 4096; i++)
        calib[i] = (int32_t)mq_rng_below(&rng, 320);
    int T = mq_recipe_n_tensors(&m.cfg), K = 0;
    while (MQ_RECIPE_AUTO_TYPES[K])
        K++;
    double *cost = malloc((size_t)T * K * sizeof *cost);
    mq_error_t err = {0};
    cr_assert_eq(mq_sensitivity_types(&m, "_gptq", calib, 4096, calib, 4096, 4, cost, &err), MQ_OK,
                 "%s", err.msg);
    for (int t = 0; t < T; t++) {
        for (int k = 0; k < K; k++)
            cr_assert(isfinite(cost[t * K + k]) && cost[t * K + k] >= 0, "tensor %d type %d", t, k);
        cr_assert_gt(cost[t * K + 0], cost[t * K + 4], "tensor %d: q2_k %g, q6_k %g", t,
                     cost[t * K], cost[t * K + 4]);
    }
    /* the hook the calibration pass borrowed is given back */
    cr_assert_null(m.linear_fn);
    cr_assert_eq(mq_sensitivity_types(&m, "_gptq", NULL, 0, calib, 4096, 4, cost, &err),
                 MQ_ERR_ARG);
    free(cost);
    mq_gpt_free(&m);
}
