/* miniquant train: corpus -> tokenizer -> MiniGPT, with checkpoints, --resume and a curve. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <omp.h>

#include "cli.h"
#include "miniquant/arch.h"
#include "miniquant/checkpoint.h"
#include "miniquant/dataset.h"
#include "miniquant/fileio.h"
#include "miniquant/progress.h"
#include "miniquant/report.h"
#include "miniquant/train.h"

static const char ABOUT[] =
    "Trains MiniGPT (GPT-2 architecture) or, with --arch llama, MiniLlama (LLaMA architecture:\n"
    "RMSNorm, RoPE, grouped-query attention, SwiGLU) in FP32 on the corpus's train split:\n"
    "AdamW, linear warmup + cosine decay, gradient clipping; deterministic for a seed and\n"
    "thread count.\n"
    "Writes the model (a GGUF llama.cpp reads), its training state FILE.gguf.opt, the curve\n"
    "FILE.gguf.train.json and FILE.gguf.curve.png. A progress bar shows loss, tokens/s, ETA.\n";

static int write_curve(const char *model_path, const mq_gpt_config_t *cfg,
                       const mq_train_opts_t *o, const mq_train_log_t *log, mq_error_t *err) {
    char path[4200];
    /* JSON: the whole curve, for reports. */
    cJSON *root = cJSON_CreateObject();
    cJSON_AddStringToObject(root, "model", model_path);
    cJSON_AddStringToObject(root, "config", cfg->name);
    cJSON *jc = cJSON_AddObjectToObject(root, "hyperparameters");
    cJSON_AddNumberToObject(jc, "vocab_size", cfg->vocab_size);
    cJSON_AddNumberToObject(jc, "n_ctx", cfg->n_ctx);
    cJSON_AddNumberToObject(jc, "n_embd", cfg->n_embd);
    cJSON_AddNumberToObject(jc, "n_head", cfg->n_head);
    cJSON_AddNumberToObject(jc, "n_layer", cfg->n_layer);
    cJSON_AddNumberToObject(jc, "batch_size", o->batch_size);
    cJSON_AddNumberToObject(jc, "seq_len", o->seq_len);
    cJSON_AddNumberToObject(jc, "steps", (double)o->steps);
    cJSON_AddNumberToObject(jc, "lr", o->lr);
    cJSON_AddNumberToObject(jc, "warmup", (double)o->warmup);
    cJSON_AddNumberToObject(jc, "weight_decay", o->weight_decay);
    cJSON_AddNumberToObject(jc, "grad_clip", o->grad_clip);
    cJSON_AddNumberToObject(jc, "seed", (double)o->seed);
    cJSON_AddNumberToObject(jc, "threads", omp_get_max_threads());
    cJSON_AddNumberToObject(root, "train_seconds", log->seconds);
    cJSON_AddNumberToObject(root, "tokens_per_second", log->tokens_per_s);
    cJSON_AddItemToObject(root, "loss", cJSON_CreateFloatArray(log->loss, (int)log->n_steps));
    cJSON *vs = cJSON_AddArrayToObject(root, "val_step");
    for (int64_t i = 0; i < log->n_val; i++)
        cJSON_AddItemToArray(vs, cJSON_CreateNumber((double)log->val_step[i]));
    cJSON_AddItemToObject(root, "val_loss", cJSON_CreateFloatArray(log->val_loss, (int)log->n_val));
    snprintf(path, sizeof path, "%s.train.json", model_path);
    int rc = mq_json_write(path, root, err);
    cJSON_Delete(root);
    if (rc) return rc;

    /* The plot: raw loss, its moving average and the validation points. */
    mq_strbuf_t s = {0};
    mq_strbuf_printf(&s, "$train << EOD\n");
    int64_t win = log->n_steps / 50 > 1 ? log->n_steps / 50 : 1;
    double run = 0;
    for (int64_t i = 0; i < log->n_steps; i++) {
        run += log->loss[i];
        if (i >= win) run -= log->loss[i - win];
        int64_t k = i + 1 < win ? i + 1 : win;
        mq_strbuf_printf(&s, "%lld %.5f %.5f\n", (long long)(i + 1), log->loss[i], run / (double)k);
    }
    mq_strbuf_printf(&s, "EOD\n$val << EOD\n");
    for (int64_t i = 0; i < log->n_val; i++)
        mq_strbuf_printf(&s, "%lld %.5f\n", (long long)log->val_step[i], log->val_loss[i]);
    char family[64];
    mq_arch_model_name(cfg, family, sizeof family);
    mq_strbuf_printf(&s, "EOD\n");
    mq_strbuf_printf(&s,
                     "set title '%s training: %lld steps of %d x %d tokens, %.1f min on %d "
                     "threads'\n"
                     "set xlabel 'optimizer step'\nset ylabel 'cross-entropy loss (nats / token)'\n"
                     "set grid\nset key top right\n"
                     "plot $train using 1:2 with lines lc rgb '#c6dbef' title 'train loss (per "
                     "step)', \\\n"
                     "     $train using 1:3 with lines lc rgb '#08519c' lw 2 title 'train loss "
                     "(moving average)', \\\n"
                     "     $val using 1:2 with linespoints pt 7 ps 1 lc rgb '#d62728' lw 2 title "
                     "'validation loss'\n",
                     family, (long long)log->n_steps, o->batch_size, o->seq_len,
                     log->seconds / 60, omp_get_max_threads());
    if (s.oom) return mq_error_set(err, MQ_ERR_NOMEM, "out of memory");
    snprintf(path, sizeof path, "%s.curve.png", model_path);
    rc = mq_plot_png(path, 900, 560, s.s, err);
    mq_strbuf_free(&s);
    return rc;
}

int cmd_train(int argc, char **argv) {
    const char *config = NULL, *out = NULL, *data = NULL, *arch_name = NULL;
    long vocab = 0, threads = 0, steps = -1, batch = -1, seq = -1, warmup = -1, seed = -1,
         ckpt_every = -1, eval_every = -1;
    double lr = -1;
    int resume = 0, rc;
    cli_option_t opts[] = {
        {CLI_OPT_CONFIG(&config)},
        {.name = "arch", .arg = "NAME", .str = &arch_name, .def = "gpt2",
         .help = "the architecture: gpt2 (MiniGPT) or llama (MiniLlama, the presets "
                 "llama-<config>: same parameter count and training time as MiniGPT's)"},
        {.name = "out", .arg = "FILE.gguf", .str = &out,
         .def_text = "models/minigpt-<config>.gguf, models/minillama-<config>.gguf",
         .help = "model file"},
        {.name = "resume", .flag = &resume,
         .help = "continue the run saved in --out (same options) from its checkpoint"},
        {.name = "data", .arg = "DIR", .str = &data, .def = "data",
         .help = "where the tokenizer is cached"},
        {CLI_OPT_VOCAB(&vocab)},
        {.name = "steps", .arg = "N", .l = &steps, .lo = 1, .hi = 100000000,
         .def_text = "tiny 300, default 1600", .help = "optimizer steps"},
        {.name = "batch", .arg = "N", .l = &batch, .lo = 1, .hi = 4096,
         .def_text = "tiny 8, default 16", .help = "sequences per step"},
        {.name = "seq", .arg = "N", .l = &seq, .lo = 2, .hi = 1 << 16, .def_text = "the context",
         .help = "tokens per sequence, at most the context"},
        {.name = "lr", .arg = "X", .d = &lr, .lo = 0, .hi = 1,
         .def_text = "tiny 3e-3, default 2e-3", .help = "peak learning rate"},
        {.name = "warmup", .arg = "N", .l = &warmup, .lo = 0, .hi = 100000000,
         .help = "warmup steps"},
        {CLI_OPT_SEED(&seed, "random seed"), .def_text = "1337"},
        {.name = "ckpt-every", .arg = "N", .l = &ckpt_every, .lo = 0, .hi = 100000000,
         .def_text = "tiny 0 = end only, default 200", .help = "checkpoint every N steps"},
        {.name = "eval-every", .arg = "N", .l = &eval_every, .lo = 0, .hi = 100000000,
         .help = "validation loss every N steps"},
        {CLI_OPT_THREADS(&threads)},
        {0},
    };
    const cli_command_t cmd = {.name = "train", .about = ABOUT, .opts = opts};
    if ((rc = cli_parse(&cmd, argc, argv, NULL)) != CLI_CONTINUE) return rc;
    mq_error_t err = {0};
    const mq_arch_t *arch = mq_arch_by_name(arch_name);
    if (!arch)
        return cli_usage_error(&cmd, "--arch %s: the architectures are %s", arch_name,
                               mq_arch_names());
    /* --arch llama --config default is the preset llama-default */
    char preset[64];
    int llama = arch == mq_arch(MQ_ARCH_LLAMA);
    snprintf(preset, sizeof preset, "%s%s", llama && strncmp(config, "llama-", 6) ? "llama-" : "",
             config);
    mq_gpt_config_t cfg;
    if (mq_gpt_preset(preset, (int)vocab, &cfg, &err)) return cli_usage_error(&cmd, "%s", err.msg);
    if (cfg.arch != (int)(arch - mq_arch(0)))
        return cli_usage_error(&cmd, "--config %s is a %s preset, not %s", config,
                               mq_arch(cfg.arch)->name, arch->name);
    const char *base = strncmp(preset, "llama-", 6) ? preset : preset + 6;
    mq_train_opts_t o;
    mq_train_defaults(preset, &o);
    o.seq_len = cfg.n_ctx;
    if (steps > 0) o.steps = steps;
    if (batch > 0) o.batch_size = (int)batch;
    if (seq > 0) o.seq_len = (int)seq;
    if (lr >= 0) o.lr = (float)lr;
    if (warmup >= 0) o.warmup = warmup;
    if (seed >= 0) o.seed = (uint64_t)seed;
    if (ckpt_every >= 0) o.ckpt_every = ckpt_every;
    if (eval_every >= 0) o.eval_every = eval_every;
    if (o.warmup >= o.steps) o.warmup = o.steps / 10;
    if (o.seq_len > cfg.n_ctx) {
        fprintf(stderr, "miniquant train: --seq %d is longer than the context %d\n", o.seq_len,
                cfg.n_ctx);
        return 2;
    }
    char def_out[256];
    snprintf(def_out, sizeof def_out, "models/%s-%s.gguf", llama ? "minillama" : "minigpt", base);
    if (!out) out = def_out;
    o.ckpt_path = out;
    cli_set_threads((int)threads);

    mq_corpus_t corpus;
    mq_tokenizer_t *tok = NULL;
    mq_tokens_t tr = {0}, va = {0};
    mq_gpt_t m = {0};
    mq_train_log_t log = {0};
    int64_t start = 0;
    rc = mq_corpus_load_wordnet(NULL, &corpus, &err);
    if (rc) return cli_fail(&err);
    if ((rc = mq_mkdir_p(data, &err)) == MQ_OK) rc = cli_tokenizer_for(data, (int)vocab, &tok, &err);
    if (rc == MQ_OK) rc = mq_dataset_encode(&corpus, MQ_SPLIT_TRAIN, tok, &tr, &err);
    if (rc == MQ_OK) rc = mq_dataset_encode(&corpus, MQ_SPLIT_VALID, tok, &va, &err);
    mq_corpus_free(&corpus);
    o.tok = tok;
    if (rc == MQ_OK) rc = cli_mkdir_parent(out, &err);
    char opt_path[4200];
    snprintf(opt_path, sizeof opt_path, "%s.opt", out);
    if (rc == MQ_OK && resume && !mq_file_exists(opt_path) && mq_file_exists(out))
        rc = mq_error_set(&err, MQ_ERR_ARG, "%s: no training state %s beside it, so nothing to "
                          "resume (train without --resume to start again)", out, opt_path);
    if (rc == MQ_OK && resume && !mq_file_exists(opt_path)) {
        fprintf(stderr, "%s: no checkpoint yet; starting at step 0\n", out);
        resume = 0;
    }
    if (rc == MQ_OK && resume) {
        /* the state is the last complete checkpoint, weights included; the model file may lag
         * one checkpoint behind it after a kill */
        mq_ckpt_info_t info;
        rc = mq_gpt_init(&m, &cfg, &err);
        if (rc == MQ_OK) rc = mq_train_state_load(out, &m, &info, &log, &err);
        if (rc == MQ_OK && info.total_steps != o.steps)
            rc = mq_error_set(&err, MQ_ERR_ARG, "%s: the run was started for %lld steps; resume "
                              "with --steps %lld", out, (long long)info.total_steps,
                              (long long)info.total_steps);
        if (rc == MQ_OK && info.seed != o.seed)
            rc = mq_error_set(&err, MQ_ERR_ARG, "%s: the run was started with --seed %llu; "
                              "resume with it", out, (unsigned long long)info.seed);
        start = info.step;
        if (rc == MQ_OK)
            fprintf(stderr, "resuming %s at step %lld of %lld\n", out, (long long)start,
                    (long long)o.steps);
    } else if (rc == MQ_OK) {
        rc = mq_gpt_init(&m, &cfg, &err);
        if (rc == MQ_OK) mq_gpt_init_weights(&m, o.seed);
    }
    if (rc == MQ_OK) {
        fprintf(stderr,
                "%s-%s: %zu parameters (L=%d C=%d NH=%d KV heads=%d F=%d ctx=%d V=%d); %zu "
                "train tokens, %zu valid tokens; %lld steps of %d x %d tokens\n",
                arch->family, base, m.num_params, cfg.n_layer, cfg.n_embd, cfg.n_head,
                cfg.n_head_kv, cfg.n_ff, cfg.n_ctx, cfg.vocab_size, tr.n, va.n,
                (long long)o.steps, o.batch_size, o.seq_len);
        if (start >= o.steps)
            fprintf(stderr, "%s has finished all %lld steps already\n", out, (long long)o.steps);
        rc = mq_train(&m, tr.ids, tr.n, va.ids, va.n, &o, start, &log, &err);
    }
    if (rc == MQ_OK) rc = write_curve(out, &m.cfg, &o, &log, &err);
    if (rc == MQ_OK) {
        float first = log.n_steps ? log.loss[0] : NAN, last = NAN;
        int64_t k = log.n_steps < 20 ? log.n_steps : 20;
        if (k) {
            double s = 0;
            for (int64_t i = log.n_steps - k; i < log.n_steps; i++) s += log.loss[i];
            last = (float)(s / (double)k);
        }
        printf("model          %s\n", out);
        printf("config         %s (%zu parameters)\n", m.cfg.name, m.num_params);
        printf("steps          %lld\n", (long long)log.n_steps);
        printf("train loss     %.4f -> %.4f (mean of the last %lld steps)\n", first, last,
               (long long)k);
        if (log.n_val)
            printf("valid loss     %.4f (perplexity %.2f)\n", log.val_loss[log.n_val - 1],
                   exp(log.val_loss[log.n_val - 1]));
        printf("train time     %.1f s (%.0f tokens/s in this run)\n", log.seconds, log.tokens_per_s);
        printf("curve          %s.curve.png, %s.train.json\n", out, out);
    }
    mq_train_log_free(&log);
    mq_gpt_free(&m);
    mq_tokens_free(&tr);
    mq_tokens_free(&va);
    mq_tokenizer_free(tok);
    return rc ? cli_fail(&err) : 0;
}
