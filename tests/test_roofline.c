/* Tests of the roofline module: the FLOPs and bytes of a decode step against a count by hand on
 * a tiny configuration, the weight bytes against the fused kernels' own packed forms, the
 * argument checks, and a smoke run of the ceilings (sane numbers only: nothing here asserts
 * how fast this machine is, or that the cache is faster than DRAM). */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "miniquant/kernels.h"
#include "miniquant/qmodel.h"
#include "miniquant/roofline.h"

/* L = 1, C = 8, NH = 2, V = 16, maxT = 4 */
static mq_gpt_config_t hand_config(void) {
    /* name, V, maxT, C, NH, L */
    return (mq_gpt_config_t){"custom", 16, 4, 8, 2, 1};
}

static mq_decode_cost_t cost_of(const mq_gpt_config_t *cfg, const char *scheme, int context) {
    mq_scheme_t s;
    mq_error_t err = {0};
    cr_assert_eq(mq_scheme_parse(scheme, &s, &err), MQ_OK, "%s", err.msg);
    mq_decode_cost_t c;
    cr_assert_eq(mq_decode_cost(cfg, &s, context, &c, &err), MQ_OK, "%s", err.msg);
    return c;
}

/* Counted by hand for L = 1, C = 8, NH = 2, V = 16, T = 4 (header of roofline.h):
 *   Linears: qkv 24 x 8, attproj 8 x 8, fc 32 x 8, fcproj 8 x 32 (all with bias), lm_head
 *   16 x 8: 896 weights, 72 biases. */
Test(decode_cost, hand_count_fp32) {
    mq_gpt_config_t cfg = hand_config();
    mq_decode_cost_t c = cost_of(&cfg, "fp32", 4);
    /* 2 C OC + OC per Linear with bias */
    int64_t linear =
        (2 * 8 * 24 + 24) + (2 * 8 * 8 + 8) + (2 * 8 * 32 + 32) + (2 * 32 * 8 + 8) + (2 * 8 * 16);
    cr_assert_eq(linear, 1864);
    cr_assert_eq(c.flops_linear, linear);
    /* 4 T C + 5 NH T + C + NH */
    cr_assert_eq(c.flops_attention, 4 * 4 * 8 + 5 * 2 * 4 + 8 + 2);
    /* embedding add C, 3 LayerNorms 8 C, 2 residual adds C, GELU 9 x 4C */
    cr_assert_eq(c.flops_other, 8 + 3 * 64 + 2 * 8 + 9 * 32);
    cr_assert_eq(c.flops, 1864 + 178 + 504);

    cr_assert_eq(c.bytes_weights, 4 * 896);
    cr_assert_eq(c.bytes_params, 4 * 72 + 3 * 4 * 2 * 8); /* biases, 3 LayerNorms */
    cr_assert_eq(c.bytes_embedding, 2 * 8 * 4);           /* wte and wpe rows, FP32 */
    cr_assert_eq(c.bytes_kv, 4 * (2 * 8 + 2 * 4 * 8));    /* write k, v; read 4 of each */
    /* embedding C, layer 38 C, final LayerNorm 2 C, lm_head C + V */
    cr_assert_eq(c.bytes_activations, 4 * (8 + 38 * 8 + 2 * 8 + 8 + 16));
    cr_assert_eq(c.bytes, 3584 + 480 + 64 + 320 + 1408);
    cr_assert_eq(c.context, 4);
    cr_assert_float_eq(c.intensity, 2546.0 / 5856.0, 1e-12);
}

Test(decode_cost, hand_count_quantized) {
    mq_gpt_config_t cfg = hand_config();
    mq_decode_cost_t f = cost_of(&cfg, "fp32", 4);
    /* int4_g4: 4-bit codes (896 / 2 bytes) and an FP16 scale per 4 inputs of each row:
     * qkv 24 x 2, attproj 8 x 2, fc 32 x 2, fcproj 8 x 8, lm_head 16 x 2 = 224 scales */
    mq_decode_cost_t q4 = cost_of(&cfg, "int4_g4", 4);
    cr_assert_eq(q4.bytes_weights, 896 / 2 + 2 * 224);
    /* int8_per_channel: 1-byte codes and one scale per row (24 + 8 + 32 + 8 + 16 rows) */
    mq_decode_cost_t q8 = cost_of(&cfg, "int8_per_channel", 4);
    cr_assert_eq(q8.bytes_weights, 896 + 2 * 88);
    /* per-tensor reads a scale per row too: the panels copy it beside every 16 rows */
    cr_assert_eq(cost_of(&cfg, "int8_per_tensor", 4).bytes_weights, 896 + 2 * 88);
    cr_assert_eq(cost_of(&cfg, "fp16", 4).bytes_weights, 2 * 896);
    cr_assert_eq(cost_of(&cfg, "nf4_g8", 4).bytes_weights, 896 / 2 + 2 * (24 + 8 + 32 + 32 + 16));
    /* int3 and int6 codes sit in the kernels' 4- and 8-bit containers */
    cr_assert_eq(cost_of(&cfg, "int3_g4", 4).bytes_weights, q4.bytes_weights);
    cr_assert_eq(cost_of(&cfg, "int6_per_channel", 4).bytes_weights, q8.bytes_weights);
    /* everything else is the scheme's embedding rows (FP16) and the rest unchanged */
    cr_assert_eq(q4.bytes_embedding, 2 * 8 * 2);
    cr_assert_eq(q4.bytes,
                 q4.bytes_weights + f.bytes_params + 32 + f.bytes_kv + f.bytes_activations);
    cr_assert_eq(q4.bytes, 896 + 480 + 32 + 320 + 1408);
    cr_assert_eq(q4.flops, f.flops, "the same FLOPs in every scheme");
    cr_assert_eq(q8.bytes, 1072 + 480 + 32 + 320 + 1408);
}

Test(decode_cost, context_scales_attention_and_kv) {
    mq_gpt_config_t cfg = hand_config();
    mq_decode_cost_t a = cost_of(&cfg, "fp32", 1), b = cost_of(&cfg, "fp32", 4);
    /* three more positions: 3 x (4 C + 5 NH) FLOPs and 3 x 2 C floats read, per layer */
    cr_assert_eq(b.flops - a.flops, 3 * (4 * 8 + 5 * 2));
    cr_assert_eq(b.bytes - a.bytes, 3 * 2 * 8 * 4);
    cr_assert_eq(b.flops_linear, a.flops_linear);
}

Test(decode_cost, refuses_bad_arguments) {
    mq_gpt_config_t cfg = hand_config();
    mq_scheme_t s;
    mq_error_t err = {0};
    mq_decode_cost_t c;
    cr_assert_eq(mq_scheme_parse("fp32", &s, &err), MQ_OK);
    cr_assert_eq(mq_decode_cost(&cfg, &s, 0, &c, &err), MQ_ERR_ARG);
    cr_assert_eq(mq_decode_cost(&cfg, &s, 5, &c, &err), MQ_ERR_ARG);
    cr_assert(strstr(err.msg, "context 5"), "%s", err.msg);
    /* g3 divides no input width of this model (8, 32) */
    cr_assert_eq(mq_scheme_parse("int4_g3", &s, &err), MQ_OK);
    cr_assert_eq(mq_decode_cost(&cfg, &s, 4, &c, &err), MQ_ERR_ARG);
    cr_assert(strstr(err.msg, "group 3"), "%s", err.msg);
    mq_gpt_config_t bad = cfg;
    bad.n_head = 3; /* C = 8 is not divisible by 3 */
    cr_assert_neq(mq_decode_cost(&bad, &s, 4, &c, &err), MQ_OK);
}

/* The weight bytes are what the fused kernels read: the sum of mq_qpacked_bytes over the
 * Linears of a model whose shapes the panels fit exactly (tiny preset: C = 64). */
Test(decode_cost, weights_match_the_packed_forms) {
    static const char *const schemes[] = {"fp32",    "fp16",     "int8_per_channel", "int4_g64",
                                          "nf4_g64", "int4_g32", "int8_per_tensor",  NULL};
    mq_error_t err = {0};
    mq_gpt_config_t cfg;
    cr_assert_eq(mq_gpt_preset("tiny", 256, &cfg, &err), MQ_OK, "%s", err.msg);
    for (int k = 0; schemes[k]; k++) {
        mq_gpt_t m;
        cr_assert_eq(mq_gpt_init(&m, &cfg, &err), MQ_OK, "%s", err.msg);
        mq_gpt_init_weights(&m, 5);
        mq_scheme_t s;
        mq_qmodel_t q;
        cr_assert_eq(mq_scheme_parse(schemes[k], &s, &err), MQ_OK);
        cr_assert_eq(mq_qmodel_apply(&q, &m, &s, NULL, &err), MQ_OK, "%s", err.msg);
        size_t packed = 0;
        for (int i = 0; i < q.n_linear; i++) {
            mq_qpacked_t p;
            cr_assert_eq(mq_qpacked_init(&p, &q.ql[i].w, &err), MQ_OK, "%s", err.msg);
            packed += mq_qpacked_bytes(&p);
            mq_qpacked_free(&p);
        }
        mq_decode_cost_t c;
        cr_assert_eq(mq_decode_cost(&cfg, &s, cfg.n_ctx, &c, &err), MQ_OK, "%s", err.msg);
        cr_assert_eq((size_t)c.bytes_weights, packed, "%s: %lld counted, %zu packed", schemes[k],
                     (long long)c.bytes_weights, packed);
        mq_qmodel_free(&q);
        mq_gpt_free(&m);
    }
}

Test(median, odd_even_and_untouched) {
    double v[] = {5.0, 1.0, 4.0, 2.0, 3.0};
    cr_assert_float_eq(mq_median(v, 5), 3.0, 1e-15);
    cr_assert_float_eq(mq_median(v, 4), 3.0, 1e-15); /* 1 2 4 5 */
    cr_assert_float_eq(mq_median(v, 1), 5.0, 1e-15);
    cr_assert_float_eq(v[0], 5.0, 0.0);
    cr_assert_float_eq(v[4], 3.0, 0.0);
}

static int sane(double v) {
    return isfinite(v) && v > 0.0;
}

/* A tiny smoke run: every figure measured and positive. */
Test(ceilings, smoke) {
    mq_ceiling_opts_t o = {0};
    o.reps = 1;
    o.fma_seconds = 1e-3;
    o.sgemm_n = 32;
    o.dram_bytes = (size_t)3 << 20;
    o.cache_bytes = (size_t)48 << 10;
    o.stream_seconds = 1e-3;
    mq_ceilings_t c;
    mq_error_t err = {0};
    cr_assert_eq(mq_ceilings_steps(&o), 4);
    cr_assert_eq(mq_ceilings_measure(&c, &o, NULL, &err), MQ_OK, "%s", err.msg);
    cr_assert(sane(c.peak_gflops) && sane(c.sgemm_gflops));
    cr_assert(sane(c.dram_triad_gbs) && sane(c.dram_read_gbs));
    cr_assert(sane(c.cache_triad_gbs) && sane(c.cache_read_gbs));
    cr_assert(c.llc_bytes > 0 && c.threads >= 1 && c.reps == 1 && c.sgemm_n == 32);
    cr_assert(c.dram_bytes >= ((size_t)3 << 20) - 12 && c.dram_bytes <= (size_t)3 << 20);
    cr_assert(mq_isa_supported(c.isa));
    /* every version this CPU runs gives a positive figure */
    for (int isa = 0; isa < MQ_ISA_COUNT; isa++)
        if (mq_isa_supported((mq_isa_t)isa))
            cr_assert(sane(mq_peak_fma_sample((mq_isa_t)isa, 1e-3)), "%s",
                      mq_isa_name((mq_isa_t)isa));
}

/* The plot is a PNG, and refuses ceilings that were never measured. */
Test(roofline_plot, draws_and_refuses) {
    mq_ceilings_t c;
    memset(&c, 0, sizeof c);
    mq_roofline_point_t pts[] = {{"fp32", 0.5, 4.0, "memory-bound"},
                                 {"int8_per_channel", 1.6, 5.5, NULL},
                                 {"int8_per_tensor", 1.6, 5.4, NULL},
                                 {"int4_g64", 2.5, 6.0, "it's \"quoted\""}};
    char path[] = "/tmp/miniquant-test-roofline-XXXXXX";
    int fd = mkstemp(path);
    cr_assert(fd >= 0);
    close(fd);
    mq_error_t err = {0};
    cr_assert_eq(mq_roofline_plot(path, &c, pts, 4, NULL, &err), MQ_ERR_ARG);
    c.threads = 2;
    c.peak_gflops = 100.0;
    c.sgemm_gflops = 80.0;
    c.sgemm_n = 2048;
    c.dram_triad_gbs = 20.0;
    c.cache_triad_gbs = 60.0;
    c.llc_bytes = (size_t)32 << 20;
    c.dram_bytes = (size_t)256 << 20;
    c.cache_bytes = (size_t)16 << 20;
    pts[1].gflops = 0.0;
    cr_assert_eq(mq_roofline_plot(path, &c, pts, 4, NULL, &err), MQ_ERR_ARG);
    cr_assert(strstr(err.msg, "int8_per_channel"), "%s", err.msg);
    pts[1].gflops = 5.5;
    int rc = mq_roofline_plot(path, &c, pts, 4, "test", &err);
    if (rc != MQ_OK && strstr(err.msg, "not installed")) {
        unlink(path);
        cr_skip_test("gnuplot is not installed");
    }
    cr_assert_eq(rc, MQ_OK, "%s", err.msg);
    FILE *f = fopen(path, "rb");
    cr_assert(f);
    unsigned char sig[8] = {0};
    cr_assert_eq(fread(sig, 1, 8, f), 8);
    fclose(f);
    unlink(path);
    cr_assert(sig[0] == 0x89 && sig[1] == 'P' && sig[2] == 'N' && sig[3] == 'G');
}
