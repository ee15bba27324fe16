/* miniquant CLI: a model opened for measurement (FP32 weights kept aside, test tokens and the
 * verb-tense set built once), and one scheme's measurements. */
#ifndef MINIQUANT_CLI_MEASURE_H
#define MINIQUANT_CLI_MEASURE_H

#include "cli.h"
#include "miniquant/checkpoint.h"
#include "miniquant/corpus.h"
#include "miniquant/dataset.h"
#include "miniquant/eval.h"
#include "miniquant/export.h"
#include "miniquant/pairs.h"
#include "miniquant/qmodel.h"
#include "miniquant/stats.h"

typedef struct cli_bench {
    const char *model_path;
    mq_gpt_t m;
    mq_tokenizer_t *tok;
    mq_ckpt_info_t info;
    mq_corpus_t corpus;
    mq_tokens_t test;  /* the test split's token stream */
    mq_tokens_t valid; /* the validation split's: GPTQ's calibration text */
    mq_mp_set_t verbs; /* the verb-tense minimal pairs */
} cli_bench_t;

int cli_bench_open(cli_bench_t *b, const char *model_path, mq_error_t *err);

/* A KL divergence result as JSON (every figure of mq_kld_result_t by its own name), and back
 * (a figure the object lacks is NaN). */
cJSON *cli_kld_json(const mq_kld_result_t *k);
void cli_kld_from_json(const cJSON *o, mq_kld_result_t *k);
void cli_bench_close(cli_bench_t *b);

typedef struct cli_measure {
    mq_scheme_t scheme;
    int skip_lm_head;
    mq_ppl_result_t ppl;
    mq_mp_result_t verb;
    const mq_mp_set_t *verbs; /* the verb-tense items measured (the bench's) */
    uint8_t *item_correct;    /* per verb-tense item */
    /* against the baseline of a comparison: whether the verb-tense drop is significant, over
     * all items [0] and per category [1 + MQ_VT_*]; -1 when not compared */
    int8_t drop_significant[1 + MQ_VT_NUM_CATEGORIES];
    double *window_nll;     /* per perplexity window: its tokens' summed NLL, and their count */
    int64_t *window_tokens;
    mq_model_bytes_t bytes;  /* in memory, as the lab counts them */
    mq_export_bytes_t gguf;  /* the GGUF file miniquant export writes for it */
    double quantize_seconds; /* building the quantized model (GPTQ: calibration included) */
} cli_measure_t;

/* Quantizes with s (round to nearest, or GPTQ calibrated on the validation split), measures,
 * and restores the FP32 model. */
int cli_measure(cli_bench_t *b, const mq_scheme_t *s, int skip_lm_head, cli_measure_t *out,
                mq_error_t *err);
void cli_measure_free(cli_measure_t *r);
/* {ppl, nll, bytes, bits_per_weight, bytes_detail, gguf_bytes, gguf_bits_per_weight,
 * verb_tense, quantize_seconds}; with base, measured on the same tokens and items, the paired
 * comparison: ppl_gap_pct with its bootstrap interval (CLI_BOOT_RESAMPLES resamples of the
 * windows, seed CLI_BOOT_SEED) and whether it excludes 0, and for the verb-tense task the items
 * flipped either way, McNemar's exact p, and whether it is a drop (more items lost than gained)
 * with p < 0.05; the same for each category of items ("categories", by name), with its chance
 * level. */
#define CLI_BOOT_RESAMPLES 2000
#define CLI_BOOT_SEED 26
cJSON *cli_measure_json(const cli_measure_t *r, const cli_measure_t *base);

/* r against base on the same windows and items (MQ_ERR_ARG when they are not). */
typedef struct cli_flips {
    size_t lost, gained; /* verb-tense items right under base only, under r only */
    double mcnemar_p;
    int drop_significant; /* more items lost than gained, and mcnemar_p < 0.05 */
} cli_flips_t;
typedef struct cli_paired {
    mq_interval_t gap;   /* perplexity gap in percent, 95% bootstrap interval */
    int gap_significant; /* the interval excludes 0 */
    cli_flips_t verb;    /* all items */
    cli_flips_t by_category[MQ_VT_NUM_CATEGORIES]; /* the items of each category */
} cli_paired_t;
int cli_measure_paired(const cli_measure_t *r, const cli_measure_t *base, cli_paired_t *out,
                       mq_error_t *err);
/* Prints to stdout the verb-tense accuracy by category of res[0 .. n), each against res[0] with
 * the items gained and lost and a mark on a significant drop. */
void cli_print_categories(const cli_measure_t *res, int n);

/* The head of an experiment's results.json: experiment, date, model, model_params, and an
 * "evaluation" object (returned in *evaluation) describing the test tokens and verb-tense
 * items the schemes were measured on. */
cJSON *cli_results_root(const char *experiment, const cli_bench_t *b, cJSON **evaluation);

/* The config part of an experiment's manifest: the model file, its configuration and training
 * steps, the command that regenerates the experiment. */
cJSON *cli_manifest_config(const char *model_path, const mq_gpt_t *m, const mq_ckpt_info_t *info,
                           const char *command);

/* Measures fp32 and then every scheme of names (NULL-terminated) and writes dir/results.json,
 * pareto.png, verb_tense_accuracy.png and manifest.json (miniquant sweep). */
int cli_sweep(const char *model, const char *dir, const char *const *names, int skip_lm_head,
              const char *command);

/* --plots-only: a sweep's plots again from dir/results.json, measuring nothing. */
int cli_sweep_replot(const char *dir);

/* Side by side, the sweeps in dirs (2 to 8, e.g. one per architecture): each scheme they all
 * measured, its perplexity gap to each model's own fp32, drawn into png (bars, log scale) and
 * printed as a table. */
int cli_sweep_compare(const char *const *dirs, int n_dirs, const char *png);

#endif
