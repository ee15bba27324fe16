/* miniquant CLI: the subcommand table and helpers shared by the cmd_*.c files. */
#ifndef MINIQUANT_CLI_H
#define MINIQUANT_CLI_H

#include "miniquant/corpus.h"
#include "miniquant/dataset.h"
#include "miniquant/error.h"
#include "miniquant/tokenizer.h"
#include "options.h"

typedef struct mq_command {
    const char *name;
    const char *summary;
    int (*run)(int argc, char **argv); /* argv[0] is the command name */
} mq_command_t;

int cmd_corpus(int argc, char **argv);
int cmd_tokenizer(int argc, char **argv);
int cmd_train(int argc, char **argv);
int cmd_eval(int argc, char **argv);
int cmd_run(int argc, char **argv);
int cmd_quantize(int argc, char **argv);
int cmd_experiment(int argc, char **argv);
int cmd_pairs(int argc, char **argv);
int cmd_export(int argc, char **argv);
int cmd_bench(int argc, char **argv);
int cmd_roofline(int argc, char **argv);
int cmd_gptq_toy(int argc, char **argv);
int cmd_sweep(int argc, char **argv);
int cmd_synth(int argc, char **argv);
int cmd_generate(int argc, char **argv);

/* Creates the folder a file path lies in (and its parents), if the path names one. */
int cli_mkdir_parent(const char *path, mq_error_t *err);

/* A model file's name without its folder and without ".gguf" (models/minigpt-default.gguf:
 * minigpt-default). */
void cli_model_stem(const char *model, char *buf, size_t n);
/* The folder name beside a model file: models/m.gguf and "gguf-export" give
 * models/gguf-export. */
void cli_beside_model(const char *model, const char *name, char *buf, size_t n);

/* Prints "miniquant: <message>" to stderr and returns exit status 1. */
int cli_fail(const mq_error_t *err);

/* Writes the three split files of a corpus into dir. */
int cli_write_corpus(const mq_corpus_t *c, const char *dir, mq_error_t *err);
void cli_print_corpus_stats(const mq_corpus_t *c);

/* s quoted for a POSIX shell into buf (n bytes); -1 when it does not fit. */
int cli_shell_quote(const char *s, char *buf, size_t n);
/* Runs a shell command line: its standard output in *out (malloc'ed, NUL-terminated, *len bytes
 * before the NUL) and its exit status (as pclose gives it) in *status. MQ_ERR_IO when it cannot
 * start, MQ_ERR_NOMEM. */
int cli_run_capture(const char *cmd, char **out, size_t *len, int *status, mq_error_t *err);

/* Sets the OpenMP and OpenBLAS thread counts (n <= 0: leave the defaults). */
void cli_set_threads(int n);

/* Loads the tokenizer stored in any GGUF file. */
int cli_load_tokenizer(const char *path, mq_tokenizer_t **tok, mq_error_t *err);
/* The tokenizer of vocab tokens cached in data_dir/tokenizer-<vocab>.gguf, trained on the
 * corpus's train split (and cached) when absent. */
int cli_tokenizer_for(const char *data_dir, int vocab, mq_tokenizer_t **tok, mq_error_t *err);
/* GPTQ's calibration text: the validation split of the WordNet corpus, encoded with tok. */
int cli_calibration_tokens(const mq_tokenizer_t *tok, mq_tokens_t *out, mq_error_t *err);
/* Trains a tokenizer on the train split; writes it to path when path is non-NULL. */
int cli_train_tokenizer(const mq_corpus_t *c, int vocab, const char *path, mq_tokenizer_t **tok,
                        mq_error_t *err);

#include <cjson/cJSON.h>
#include "miniquant/qmodel.h"
/* experiments/26-gguf-export: export, reload, compare, evaluate each scheme. */
int cli_experiment_gguf_export(const char *model, const char *dir);
/* experiments/26-vs-llamacpp (src/cli/exp_vs_llamacpp.c). */
int cli_experiment_vs_llamacpp(const char *model, const char *dir);
int cli_experiment_gguf_export_runs(const char *model, const char *dir, const char *files_dir,
                                    const char *const *schemes, const char *const *skip_schemes);

/* Prints / encodes where a model's bytes are. */
void cli_print_bytes(const mq_model_bytes_t *b);
cJSON *cli_bytes_json(const mq_model_bytes_t *b);

#endif
