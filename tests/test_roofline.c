/* Tests of the roofline module: the FLOPs and bytes of a decode step against a count by hand on
 * a tiny configuration, the weight bytes against the stored bytes of every Linear (its format's
 * rows and side scales, which the fused kernels read), the argument checks, and a smoke run of the
 * ceilings (sane numbers only: nothing here asserts how fast this machine is, or that the cache is
 * faster than DRAM). */
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
    return (mq_gpt_config_t){
        .name = "custom", .vocab_size = 16, .n_ctx = 4, .n_embd = 8, .n_head = 2, .n_layer = 1};
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

/* Weights as stored (format.h): rows of 8 inputs (qkv 24, attproj 8, fc 32, lm_head 16 rows)
 * fit no 32-block, so every int / nf grid packs them, ceil(8 b / 8) = b bytes a row, with the
 * FP16 scales beside; fcproj's 8 rows of 32 inputs take Q8_0 (34 bytes a row) for int8 and Q4_0
 * (18 bytes a row) for int4 when the scales are whole rows or the tensor's. */
Test(decode_cost, hand_count_quantized) {
    mq_gpt_config_t cfg = hand_config();
    mq_decode_cost_t f = cost_of(&cfg, "fp32", 4);
    /* int4_g4: packed everywhere (groups of 4), 4-bit codes (896 / 2 bytes) and an FP16 scale
     * per 4 inputs of each row: qkv 24 x 2, attproj 8 x 2, fc 32 x 2, fcproj 8 x 8, lm_head
     * 16 x 2 = 224 scales */
    mq_decode_cost_t q4 = cost_of(&cfg, "int4_g4", 4);
    cr_assert_eq(q4.bytes_weights, 896 / 2 + 2 * 224);
    /* int8_per_channel: packed rows of 8 bytes and one scale per row (24 + 8 + 32 + 16 rows);
     * fcproj in Q8_0, one 34-byte block a row */
    mq_decode_cost_t q8 = cost_of(&cfg, "int8_per_channel", 4);
    cr_assert_eq(q8.bytes_weights, 8 * 80 + 2 * 80 + 8 * 34);
    /* per-tensor keeps one side scale per packed tensor; Q8_0's blocks carry it in every row */
    cr_assert_eq(cost_of(&cfg, "int8_per_tensor", 4).bytes_weights, 8 * 80 + 2 * 4 + 8 * 34);
    /* int4_per_channel: 4 bytes a packed row, fcproj in Q4_0 (18 bytes a row) */
    cr_assert_eq(cost_of(&cfg, "int4_per_channel", 4).bytes_weights, 4 * 80 + 2 * 80 + 8 * 18);
    cr_assert_eq(cost_of(&cfg, "fp16", 4).bytes_weights, 2 * 896);
    /* nf4_g8: a scale per 8 inputs: one a row, fcproj 4 a row */
    cr_assert_eq(cost_of(&cfg, "nf4_g8", 4).bytes_weights, 896 / 2 + 2 * (24 + 8 + 32 + 32 + 16));
    /* int3 and int6 codes at their own width: 3 and 6 bytes per row of 8, 12 and 24 per row of 32
     */
    cr_assert_eq(cost_of(&cfg, "int3_g4", 4).bytes_weights, 3 * 80 + 12 * 8 + 2 * 224);
    cr_assert_eq(cost_of(&cfg, "nf3_g8", 4).bytes_weights, 3 * 80 + 12 * 8 + 2 * 112);
    cr_assert_eq(cost_of(&cfg, "int6_per_channel", 4).bytes_weights, 6 * 80 + 24 * 8 + 2 * 88);
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

/* Bytes of an OC x C weight of a scheme as its format stores them, worked out here from the
 * formats' definitions (export.h): F32 4 and F16 2 bytes a weight; Q8_0 34 and Q4_0 18 bytes per
 * 32 weights (int8 / int4 whose rows and groups are whole 32-blocks); every other grid packed,
 * ceil(C * b / 8) bytes a row plus an FP16 scale per row and scale block (one per tensor). */
static size_t stored_by_hand(const mq_scheme_t *s, size_t OC, size_t C) {
    if (!strcmp(s->name, "fp32")) return 4 * OC * C;
    if (!strcmp(s->name, "fp16")) return 2 * OC * C;
    int is_int = !strncmp(s->name, "int", 3);
    int blocks = C % 32 == 0 && (s->gran != MQ_QG_GROUP || s->group % 32 == 0);
    if (is_int && blocks && s->bits == 8) return OC * C / 32 * 34;
    if (is_int && blocks && s->bits == 4) return OC * C / 32 * 18;
    size_t scales = s->gran == MQ_QG_TENSOR    ? 1
                    : s->gran == MQ_QG_CHANNEL ? OC
                                               : OC * (C / (size_t)s->group);
    return OC * ((C * (size_t)s->bits + 7) / 8) + 2 * scales;
}

/* The weight bytes are the stored bytes of the Linears: the count by hand above, which is also
 * the sum of mq_qweight_stored_bytes over a quantized model's layers (tiny preset: C = 64, so
 * Q8_0 / Q4_0 rows for int8 / int4 with groups of 32 or 64, packed rows otherwise). */
Test(decode_cost, weights_are_the_stored_bytes) {
    static const char *const schemes[] = {"fp32",
                                          "fp16",
                                          "int8_per_channel",
                                          "int4_g64",
                                          "nf4_g64",
                                          "int4_g32",
                                          "nf3_g32",
                                          "int8_per_tensor",
                                          "int4_per_tensor",
                                          "int3_g16",
                                          "int5_g64",
                                          "int4_g16",
                                          NULL};
    mq_error_t err = {0};
    mq_gpt_config_t cfg;
    cr_assert_eq(mq_gpt_preset("tiny", 256, &cfg, &err), MQ_OK, "%s", err.msg);
    mq_gpt_t m;
    cr_assert_eq(mq_gpt_init(&m, &cfg, &err), MQ_OK, "%s", err.msg);
    mq_gpt_init_weights(&m, 5);
    for (int k = 0; schemes[k]; k++) {
        mq_scheme_t s;
        mq_qmodel_t q;
        cr_assert_eq(mq_scheme_parse(schemes[k], &s, &err), MQ_OK);
        cr_assert_eq(mq_qmodel_quantize(&q, &m, &s, NULL, &err), MQ_OK, "%s", err.msg);
        size_t stored = 0, by_hand = 0;
        for (int i = 0; i < q.n_linear; i++) {
            cr_assert(q.active[i]);
            stored += mq_qweight_stored_bytes(&q.ql[i].w);
            by_hand += stored_by_hand(&s, (size_t)q.ql[i].out, (size_t)q.ql[i].in);
        }
        cr_assert_eq(stored, by_hand, "%s: %zu stored, %zu by hand", schemes[k], stored, by_hand);
        mq_decode_cost_t c;
        cr_assert_eq(mq_decode_cost(&cfg, &s, cfg.n_ctx, &c, &err), MQ_OK, "%s", err.msg);
        cr_assert_eq((size_t)c.bytes_weights, by_hand, "%s: %lld counted, %zu by hand", schemes[k],
                     (long long)c.bytes_weights, by_hand);
        mq_qmodel_free(&q);
    }
    mq_gpt_free(&m);
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
    /* the int8 peak of every version with int8-activation kernels on this CPU, none of the
       others; the ceilings measure the kernels' version in force */
    cr_assert_eq(c.int8_isa, mq_kernels_isa());
    for (int isa = 0; isa < MQ_ISA_COUNT; isa++) {
        int has = isa != MQ_ISA_SCALAR && mq_isa_supports_a8((mq_isa_t)isa);
        double g = mq_peak_int8_sample((mq_isa_t)isa, 1e-3);
        cr_assert(has ? sane(g) : g == 0.0, "%s: %g", mq_isa_name((mq_isa_t)isa), g);
        if (isa == (int)c.int8_isa)
            cr_assert(has ? sane(c.peak_int8_gops) : c.peak_int8_gops == 0.0);
    }
    /* every version this CPU runs gives a positive figure */
    for (int isa = 0; isa < MQ_ISA_COUNT; isa++)
        if (mq_isa_supported((mq_isa_t)isa))
            cr_assert(sane(mq_peak_fma_sample((mq_isa_t)isa, 1e-3)), "%s",
                      mq_isa_name((mq_isa_t)isa));
}

/* Work at two peaks takes the sum of its parts' times: the roof is their harmonic blend. */
Test(ceilings, the_compute_roof_adds_each_parts_time) {
    mq_ceilings_t c;
    memset(&c, 0, sizeof c);
    c.peak_gflops = 100.0;
    cr_assert_float_eq(mq_compute_roof(&c, 3e6, 1e6), 100.0, 1e-9, "no int8 peak: the FP32 one");
    c.peak_int8_gops = 400.0;
    cr_assert_float_eq(mq_compute_roof(&c, 1e6, 0.0), 100.0, 1e-9);
    cr_assert_float_eq(mq_compute_roof(&c, 0.0, 1e6), 400.0, 1e-9);
    /* 1 MFLOP at 100 and 1 MOP at 400: 12.5 us for 2 M, 160 G/s */
    cr_assert_float_eq(mq_compute_roof(&c, 1e6, 1e6), 160.0, 1e-9);
}

/* The plot is a PNG, and refuses ceilings that were never measured. */
Test(roofline_plot, draws_and_refuses) {
    mq_ceilings_t c;
    memset(&c, 0, sizeof c);
    mq_roofline_point_t pts[] = {{"fp32", 0.5, 4.0, "memory-bound", 0},
                                 {"int8_per_channel", 1.6, 5.5, NULL, 0},
                                 {"int8_per_tensor", 1.6, 5.4, NULL, 0},
                                 {"int4_g64", 2.5, 6.0, "it's \"quoted\"", 1}};
    char path[] = "/tmp/miniquant-test-roofline-XXXXXX";
    int fd = mkstemp(path);
    cr_assert(fd >= 0);
    close(fd);
    mq_error_t err = {0};
    cr_assert_eq(mq_roofline_plot(path, &c, pts, 4, NULL, &err), MQ_ERR_ARG);
    c.threads = 2;
    c.peak_gflops = 100.0;
    c.peak_int8_gops = 400.0; /* drawn: int4_g64 has int8 products */
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
