/* miniquant CLI: bench serve (bench_serve.c), llama-bench's pp and tg on model files. */
#ifndef MINIQUANT_CLI_BENCH_SERVE_H
#define MINIQUANT_CLI_BENCH_SERVE_H

#include <stddef.h>

#include <cjson/cJSON.h>

#include "miniquant/error.h"

typedef struct cli_serve_opts {
    const char *const *models; /* GGUF files miniquant reads */
    int n_models;
    int n_prompt, n_gen; /* tokens of pp and tg: 0 the model's context up to 512 and 128, -1 none */
    int reps;
} cli_serve_opts_t;

/* Reads llama-bench's JSON output (-o json): the first test's avg_ts into *tps, and its
 * model_type into type when type is empty. 0, or -1 when the text is not such an output (no
 * array, no positive finite avg_ts). */
int cli_llama_bench_parse(const char *json, double *tps, char *type, size_t type_n);

/* Runs pp and tg on each file (and llama-bench's, in turns, when LLAMA_CPP_BIN is set), prints
 * the table to stdout and adds the rows to out["serve"]. */
int cli_bench_serve(const cli_serve_opts_t *o, cJSON *out, mq_error_t *err);

/* Draws rows (out["serve"] of bench serve with llama.cpp's numbers) as a PNG: per file the
 * ratio miniquant / llama.cpp of its pp and tg, on a log scale with 1 marked. MQ_ERR_ARG when no
 * file has both. */
int cli_bench_serve_plot(const cJSON *rows, const char *png, mq_error_t *err);

#endif
