/* miniquant run: the main job, from nothing to every result, reusing what exists. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "miniquant/checkpoint.h"
#include "miniquant/fileio.h"

static const char ABOUT[] =
    "The main job: builds the corpus (data/corpus), the tokenizer (data/tokenizer-4096.gguf),\n"
    "trains MiniGPT and MiniLlama when no finished model exists (models/minigpt-<config>.gguf,\n"
    "models/minillama-<config>.gguf; an interrupted run is resumed), evaluates both, and\n"
    "regenerates every experiment under experiments/. Reuses a trained model. Prints where each\n"
    "result went.\n";

typedef int (*cmd_fn)(int, char **);

/* Copies a file crash-safely. */
static int copy_file(const char *from, const char *to, mq_error_t *err) {
    char *buf;
    size_t len;
    int rc = mq_read_file(from, 0, &buf, &len, err);
    if (rc) return rc;
    rc = mq_write_file(to, buf, len, err);
    free(buf);
    return rc;
}

/* Runs one subcommand as if from the command line. */
static int step(const char *title, cmd_fn fn, char **argv) {
    int argc = 0;
    while (argv[argc])
        argc++;
    fprintf(stderr, "\n== %s\n", title);
    fflush(stdout);
    int rc = fn(argc, argv);
    fflush(stdout);
    return rc;
}

/* Trains (or reuses, or resumes) the model of one architecture, evaluates it under both
 * perplexity protocols and records its training curve and perplexities in
 * experiments/26-<family>-<config>/. train parses its own --threads from its argv. */
static int train_and_record(const char *arch, const char *family, const char *config, long threads,
                            const char *eval_dir) {
    char threads_arg[32], model[256], json_default[256], json_llama[256];
    snprintf(threads_arg, sizeof threads_arg, "%ld", threads);
    snprintf(model, sizeof model, "models/%s-%s.gguf", family, config);
    snprintf(json_default, sizeof json_default, "%s/%s-%s-ppl-default.json", eval_dir, family,
             config);
    snprintf(json_llama, sizeof json_llama, "%s/%s-%s-ppl-llamacpp.json", eval_dir, family, config);
    int rc;
    /* train unless a finished model exists; resume an interrupted one */
    mq_error_t err = {0};
    int need = 1, resume = 0;
    if (mq_file_exists(model)) {
        mq_gpt_t m = {0};
        mq_ckpt_info_t info;
        if (mq_checkpoint_load(model, &m, NULL, &info, &err) == MQ_OK) {
            need = info.step < info.total_steps;
            resume = need;
            mq_gpt_free(&m);
        }
        if (!need)
            fprintf(stderr, "\n== reusing the trained model %s (%lld steps)\n", model,
                    (long long)info.step);
    }
    if (need) {
        char *train[11] = {"train",      "--config", (char *)config, "--arch",
                           (char *)arch, "--out",    model};
        int n = 7;
        if (threads) {
            train[n++] = "--threads";
            train[n++] = threads_arg;
        }
        if (resume) train[n++] = "--resume";
        char title[64];
        snprintf(title, sizeof title, "train %s%s", family, resume ? " (resuming)" : "");
        if ((rc = step(title, cmd_train, train))) return rc;
    }
    cli_set_threads((int)threads);
    char *ev1[] = {"eval", "--model", model, "--json", json_default, NULL};
    if ((rc = step("perplexity, default protocol", cmd_eval, ev1))) return rc;
    char *ev2[] = {"eval",     "--model", model,      "--ppl-protocol",
                   "llamacpp", "--json",  json_llama, NULL};
    if ((rc = step("perplexity, llama.cpp's protocol", cmd_eval, ev2))) return rc;

    /* the model itself is not kept in git: its training record and evaluation are */
    char rec[256];
    snprintf(rec, sizeof rec, "experiments/26-%s-%s", family, config);
    const char *suffix[] = {".curve.png", ".train.json"};
    int crc = mq_mkdir_p(rec, &err);
    for (int i = 0; i < 2 && crc == MQ_OK; i++) {
        char from[512], to[512];
        snprintf(from, sizeof from, "%s%s", model, suffix[i]);
        snprintf(to, sizeof to, "%s/training%s", rec, suffix[i]);
        crc = copy_file(from, to, &err);
    }
    for (int i = 0; i < 2 && crc == MQ_OK; i++) {
        char to[512];
        snprintf(to, sizeof to, "%s/perplexity-%s.json", rec, i ? "llamacpp" : "default");
        crc = copy_file(i ? json_llama : json_default, to, &err);
    }
    return crc ? cli_fail(&err) : 0;
}

int cmd_run(int argc, char **argv) {
    const char *config = NULL;
    long threads = 0;
    cli_option_t opts[] = {
        {CLI_OPT_CONFIG(&config)},
        {CLI_OPT_THREADS(&threads)},
        {0},
    };
    const cli_command_t cmd = {.name = "run", .about = ABOUT, .opts = opts};
    int prc = cli_parse(&cmd, argc, argv, NULL);
    if (prc != CLI_CONTINUE) return prc;
    if (strcmp(config, "tiny") && strcmp(config, "default"))
        return cli_usage_error(&cmd, "unknown config '%s' (valid: tiny, default)", config);
    char model[256], eval_dir[] = "data/eval";
    snprintf(model, sizeof model, "models/minigpt-%s.gguf", config);
    int rc;

    char *corpus[] = {"corpus", "--out", "data/corpus", NULL};
    if ((rc = step("corpus", cmd_corpus, corpus))) return rc;
    mq_error_t err = {0};
    if (mq_mkdir_p(eval_dir, &err)) return cli_fail(&err);
    /* MiniGPT, then MiniLlama (same parameter count and training budget) */
    static const char *const ARCHS[2][2] = {{"gpt2", "minigpt"}, {"llama", "minillama"}};
    for (int a = 0; a < 2; a++)
        if ((rc = train_and_record(ARCHS[a][0], ARCHS[a][1], config, threads, eval_dir))) return rc;
    cli_set_threads((int)threads);

    char llama[256];
    snprintf(llama, sizeof llama, "models/minillama-%s.gguf", config);
    char *toy[] = {"gptq-toy", "--seed", "26", "--out", "experiments/26-gptq-toy", NULL};
    if ((rc = step("experiment 26-gptq-toy", cmd_gptq_toy, toy))) return rc;
    char *curve[] = {"experiment", "quant-curve", "--model", model, "--model", llama, NULL};
    if ((rc = step("experiment 26-quant-curve", cmd_experiment, curve))) return rc;
    /* the others per model: MiniGPT's in the experiment's folder, MiniLlama's in a folder of
     * its name inside it; vs-llamacpp takes llama.cpp's side from its record (llamacpp.json)
     * unless LLAMA_CPP_BIN names its binaries */
    static const char *const EXPERIMENTS[] = {"int8-ptq", "gguf-export", "vs-llamacpp"};
    for (int m = 0; m < 2; m++)
        for (int e = 0; e < 3; e++) {
            char out[512], title[600];
            snprintf(out, sizeof out, "experiments/26-%s%s%s", EXPERIMENTS[e],
                     m ? "/minillama-" : "", m ? config : "");
            snprintf(title, sizeof title, "experiment %s", out + strlen("experiments/"));
            char *argv[] = {"experiment", (char *)EXPERIMENTS[e], "--model", m ? llama : model,
                            "--out", out, NULL};
            if ((rc = step(title, cmd_experiment, argv))) return rc;
        }

    printf("\nresults:\n");
    printf("  corpus        data/corpus/{train,valid,test}.txt\n");
    printf("  tokenizer     data/tokenizer-4096.gguf\n");
    printf("  models        %s, %s\n", model, llama);
    printf("  training      experiments/26-{minigpt,minillama}-%s/{training.curve.png,"
           "training.train.json,perplexity-*.json}\n",
           config);
    printf("  perplexity    %s/{minigpt,minillama}-%s-ppl-{default,llamacpp}.json\n", eval_dir,
           config);
    printf("  experiment    experiments/26-int8-ptq/{,minillama-%s/}{results.json,ppl_table.png,"
           "sensitivity.png,manifest.json}\n",
           config);
    printf("  experiment    experiments/26-gptq-toy/{results.json,loss_curve.png,"
           "ratio_vs_samples.png,manifest.json}\n");
    printf("  experiment    experiments/26-gguf-export/{,minillama-%s/}{results.json,"
           "manifest.json}; the .gguf files in models/gguf-export/\n",
           config);
    printf("  experiment    experiments/26-quant-curve/{minigpt,minillama}-%s/{results.json,"
           "pareto.png,verb_tense_accuracy.png,roofline.json,roofline_overlay.png,"
           "manifest.json}, experiments/26-quant-curve/architectures.png\n",
           config);
    printf("  experiment    experiments/26-vs-llamacpp/{,minillama-%s/}{results.json,pareto.png,"
           "manifest.json}; the .gguf files in models/vs-llamacpp/\n",
           config);
    return 0;
}
