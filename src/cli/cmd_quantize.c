/* miniquant quantize: quantize a model's Linear layers and report, per layer and in total,
 * the error and the bytes. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "miniquant/checkpoint.h"
#include "miniquant/qmodel.h"
#include "miniquant/report.h"

static const char ABOUT[] =
    "Quantizes every Linear layer of the model (weights only, symmetric, round to nearest) and\n"
    "prints per layer its shape, relative error ||W - deq(q(W))|| / ||W||, bytes and bits per\n"
    "weight, then where the model's bytes are (Linear weights, biases, embeddings, LayerNorm).\n";

/* Prints the byte accounting of a model (used by quantize and eval). */
void cli_print_bytes(const mq_model_bytes_t *b) {
    double t = (double)b->total;
    printf("bytes        %zu total (%.2f MiB)\n", b->total, t / (1 << 20));
    printf("  linear     %10zu  %5.1f%%  (%.3f bits/weight packed, %.3f in memory)\n", b->linear,
           100 * b->linear / t, b->bits_per_weight, b->bits_per_weight_memory);
    printf("  embedding  %10zu  %5.1f%%\n", b->embedding, 100 * b->embedding / t);
    printf("  layernorm  %10zu  %5.1f%%\n", b->layernorm, 100 * b->layernorm / t);
    printf("  bias       %10zu  %5.1f%%\n", b->bias, 100 * b->bias / t);
}

cJSON *cli_bytes_json(const mq_model_bytes_t *b) {
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "total", (double)b->total);
    cJSON_AddNumberToObject(o, "linear", (double)b->linear);
    cJSON_AddNumberToObject(o, "embedding", (double)b->embedding);
    cJSON_AddNumberToObject(o, "layernorm", (double)b->layernorm);
    cJSON_AddNumberToObject(o, "bias", (double)b->bias);
    cJSON_AddNumberToObject(o, "linear_params", (double)b->linear_params);
    cJSON_AddNumberToObject(o, "bits_per_weight", b->bits_per_weight);
    cJSON_AddNumberToObject(o, "bits_per_weight_memory", b->bits_per_weight_memory);
    return o;
}

int cmd_quantize(int argc, char **argv) {
    const char *model = NULL, *scheme_name = NULL, *json = NULL;
    int skip_head = 0;
    cli_option_t opts[] = {
        {CLI_OPT_MODEL(&model, "the model (GGUF, gpt2 or llama architecture)"), .required = 1},
        {CLI_OPT_SCHEME(&scheme_name, "round to nearest; the _gptq schemes need calibration, "
                                      "which 'miniquant eval' and 'miniquant export' do"),
         .required = 1},
        {CLI_OPT_SKIP_LM_HEAD(&skip_head)},
        {CLI_OPT_JSON(&json)},
        {0},
    };
    const cli_command_t cmd = {.name = "quantize", .about = ABOUT, .opts = opts};
    int prc = cli_parse(&cmd, argc, argv, NULL);
    if (prc != CLI_CONTINUE) return prc;
    mq_error_t err = {0};
    mq_scheme_t s;
    if (mq_scheme_parse(scheme_name, &s, &err)) return cli_usage_error(&cmd, "%s", err.msg);
    if (mq_scheme_calibrated(&s)) {
        fprintf(stderr, "miniquant quantize: %s needs calibration; _gptq and _imat schemes are "
                        "built by 'miniquant eval --scheme' and 'miniquant export'\n", s.name);
        return 2;
    }
    mq_gpt_t m = {0};
    if (mq_checkpoint_load(model, &m, NULL, NULL, &err)) return cli_fail(&err);
    mq_qmodel_t q;
    mq_qmodel_opts_t qo = {skip_head, -1, 0, NULL};
    int rc = mq_qmodel_quantize(&q, &m, &s, &qo, &err);
    if (rc) {
        mq_gpt_free(&m);
        return cli_fail(&err);
    }
    cJSON *root = cJSON_CreateObject(), *layers = cJSON_CreateArray();
    cJSON_AddStringToObject(root, "model", model);
    cJSON_AddStringToObject(root, "scheme", s.name);
    cJSON_AddBoolToObject(root, "skip_lm_head", skip_head);
    printf("%-18s %12s %10s %10s %7s\n", "layer", "shape", "rel_error", "bytes", "bpw");
    size_t maxn = 0;
    for (int i = 0; i < q.n_linear; i++) {
        int OC, C;
        mq_gpt_linear_weight(&m, mq_qmodel_linear_id(&m.cfg, i), NULL, &OC, &C);
        if ((size_t)OC * C > maxn) maxn = (size_t)OC * C;
    }
    float *deq = malloc(maxn * sizeof *deq);
    for (int i = 0; deq && i < q.n_linear; i++) {
        int OC, C;
        const float *W = mq_gpt_linear_weight(&m, mq_qmodel_linear_id(&m.cfg, i), NULL, &OC, &C);
        char name[64], shape[32];
        mq_qmodel_linear_name(&m.cfg, i, name, sizeof name);
        snprintf(shape, sizeof shape, "%dx%d", OC, C);
        size_t n = (size_t)OC * C, bytes = n * sizeof(float);
        double num = 0, den = 0, bpw = 32;
        if (q.active[i]) {
            mq_qweight_dequantize(&q.ql[i].w, deq);
            for (size_t k = 0; k < n; k++) {
                double d = (double)W[k] - deq[k];
                num += d * d;
                den += (double)W[k] * W[k];
            }
            bytes = mq_qweight_bytes(&q.ql[i].w);
            bpw = mq_qweight_bits_per_weight(&q.ql[i].w);
        }
        double rel = den > 0 ? sqrt(num / den) : 0;
        printf("%-18s %12s %10.3e %10zu %7.3f%s\n", name, shape, rel, bytes, bpw,
               q.active[i] ? "" : "  (FP32)");
        cJSON *l = cJSON_CreateObject();
        cJSON_AddStringToObject(l, "name", name);
        cJSON_AddNumberToObject(l, "rows", OC);
        cJSON_AddNumberToObject(l, "cols", C);
        cJSON_AddBoolToObject(l, "quantized", q.active[i]);
        cJSON_AddNumberToObject(l, "rel_error", rel);
        cJSON_AddNumberToObject(l, "bytes", (double)bytes);
        cJSON_AddNumberToObject(l, "bits_per_weight", bpw);
        cJSON_AddItemToArray(layers, l);
    }
    free(deq);
    cJSON_AddItemToObject(root, "layers", layers);
    mq_model_bytes_t b;
    mq_model_bytes(&m, &q, &b);
    printf("\n");
    cli_print_bytes(&b);
    cJSON_AddItemToObject(root, "bytes", cli_bytes_json(&b));
    if (json) rc = mq_json_write(json, root, &err);
    cJSON_Delete(root);
    mq_qmodel_free(&q);
    mq_gpt_free(&m);
    return rc ? cli_fail(&err) : 0;
}
