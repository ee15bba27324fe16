/* miniquant generate: text from a model, KV-cached, streamed as it is sampled. */
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "miniquant/kernels.h"
#include "miniquant/dataset.h"
#include "miniquant/export.h"
#include "miniquant/generate.h"
#include "miniquant/gptq.h"
#include "miniquant/qmodel.h"

static const char ABOUT[] =
    "Generates text from a model: the prompt is fed through the KV-cached decoder at once (the\n"
    "prompt kernels), then each token is sampled and fed back, one decode step per token (one\n"
    "parallel region), and written to stdout as soon as it is sampled (the prompt first, as\n"
    "given). Where the CPU has AVX512-VNNI the prompt's products with Q8_0, Q4_0 and K-quant\n"
    "weights, and the decode steps' with Q4_0 and K-quant weights, take int8 activations\n"
    "(MQ_VNNI=0: FP32 throughout; prompt: in the prompt only; 1: in every product of those\n"
    "formats). The model is any GGUF miniquant reads: an\n"
    "FP32 checkpoint (quantized in memory with --scheme), a file 'miniquant export' wrote, or\n"
    "another tool's gpt2 or llama file. The prompt starts a document: after the beginning-of-\n"
    "sequence token where the vocabulary adds one (SentencePiece), else after <|endoftext|>.\n"
    "Generation stops after -n tokens or at an end-of-sequence or <|endoftext|> token. When the\n"
    "context is full its last half is fed again and generation goes on (the earlier text is\n"
    "forgotten). Sampling is llama.cpp's chain: top-k, top-p, temperature, a draw; --temp 0 is\n"
    "greedy. The same model, prompt, seed and thread count give the same text.\n"
    "At the end, on stderr, the timings as llama-cli reports them: prompt and generation\n"
    "tokens per second.\n";

typedef struct stream {
    const mq_tokenizer_t *tok;
    int32_t *ids; /* the prompt's tokens, then the generated ones */
    size_t n;
    size_t shown; /* bytes of their decoded text already written (the prompt's counted) */
    int newline;  /* the last byte written was a newline */
    mq_error_t err;
} stream_t;

/* Writes the bytes the new token adds to the decoded text: decoding everything again keeps
 * what depends on the tokens before (a SentencePiece space prefix, UTF-8 split over tokens). */
static int show_token(void *ctx, int32_t token) {
    stream_t *s = ctx;
    s->ids[s->n++] = token;
    char *text;
    size_t len;
    if (mq_tokenizer_decode(s->tok, s->ids, s->n, &text, &len, &s->err)) return 1;
    if (len > s->shown) {
        fwrite(text + s->shown, 1, len - s->shown, stdout);
        s->newline = text[len - 1] == '\n';
    }
    fflush(stdout);
    s->shown = len > s->shown ? len : s->shown;
    free(text);
    return 0;
}

static void print_time(const char *what, double seconds, int n, const char *unit) {
    double ms = 1e3 * seconds;
    fprintf(stderr, "%16s = %10.2f ms / %5d %-6s (%8.2f ms per token, %8.2f tokens per second)\n",
            what, ms, n, unit, n > 0 ? ms / n : 0.0, seconds > 0.0 ? n / seconds : 0.0);
}

int cmd_generate(int argc, char **argv) {
    const char *model = NULL, *prompt = NULL, *scheme_name = NULL;
    long n_predict = 0, threads = 0, seed = 0, top_k = 0;
    double temp = 0.0, top_p = 0.0;
    int skip_head = 0, ignore_eos = 0;
    cli_option_t opts[] = {
        {CLI_OPT_MODEL(&model, "the model (GGUF, gpt2 or llama architecture)"), .required = 1},
        {.name = "prompt",
         .short_name = 'p',
         .arg = "TEXT",
         .str = &prompt,
         .required = 1,
         .help = "the text to continue"},
        {.name = "n-predict",
         .short_name = 'n',
         .arg = "N",
         .l = &n_predict,
         .def = "64",
         .lo = 0,
         .hi = 1 << 24,
         .help = "tokens to generate"},
        {.name = "temp",
         .arg = "T",
         .d = &temp,
         .def = "0.8",
         .lo = 0,
         .hi = 100,
         .help = "temperature; 0: greedy"},
        {.name = "top-k",
         .arg = "K",
         .l = &top_k,
         .def = "40",
         .lo = 0,
         .hi = 1 << 30,
         .help = "sample among the K most likely tokens; 0: all"},
        {.name = "top-p",
         .arg = "P",
         .d = &top_p,
         .def = "0.95",
         .lo = 1e-6,
         .hi = 1,
         .help = "then among the fewest whose probability reaches P; 1: all"},
        {CLI_OPT_SEED(&seed, "random seed of the sampling"), .def = "1"},
        {.name = "ignore-eos",
         .flag = &ignore_eos,
         .help = "do not stop at an end-of-sequence or <|endoftext|> token"},
        {CLI_OPT_SCHEME(&scheme_name, "quantize an FP32 model's Linear layers in memory first "
                                      "(_gptq: calibrated on 128 sequences of the valid split)")},
        {CLI_OPT_SKIP_LM_HEAD(&skip_head)},
        {CLI_OPT_THREADS(&threads)},
        {0},
    };
    const cli_command_t cmd = {.name = "generate", .about = ABOUT, .opts = opts};
    int rc = cli_parse(&cmd, argc, argv, NULL);
    if (rc != CLI_CONTINUE) return rc;
    mq_error_t err = {0};
    mq_scheme_t scheme;
    if (scheme_name && mq_scheme_parse(scheme_name, &scheme, &err))
        return cli_usage_error(&cmd, "%s", err.msg);
    cli_set_threads((int)threads);
    int a8 = mq_kernels_serving(); /* int8 activations where VNNI runs them and they pay */

    mq_qmodel_t file = {0}, q = {0};
    mq_gpt_t m = {0};
    mq_tokenizer_t *tok = NULL;
    int32_t *ids = NULL;
    size_t n_ids = 0;
    mq_sampler_t sampler = {0};
    stream_t st = {0};
    rc = mq_qmodel_load(model, &file, &tok, &err);
    mq_gpt_t *run = file.model;
    if (rc == MQ_OK && scheme_name) {
        if (!mq_scheme_is_identity(&file.scheme)) {
            rc = mq_error_set(&err, MQ_ERR_ARG,
                              "%s is already quantized (%s); --scheme applies to FP32 models",
                              model, file.scheme.name);
        } else {
            mq_tokens_t calib = {0};
            rc = mq_qmodel_dequantize(&file, &m, &err);
            if (rc == MQ_OK && mq_scheme_calibrated(&scheme))
                rc = cli_calibration_tokens(tok, &calib, &err);
            if (rc == MQ_OK)
                rc = mq_gptq_build_qmodel(&m, &scheme, skip_head, calib.ids, calib.n, &q, &err);
            mq_tokens_free(&calib);
            run = q.model;
        }
    }
    /* the prompt as a document start */
    if (rc == MQ_OK)
        rc = mq_tokenizer_encode(tok, prompt, strlen(prompt), MQ_TOK_ADD_SPECIAL, &ids, &n_ids,
                                 &err);
    int32_t eot = tok ? mq_tokenizer_eot(tok) : -1, eos = tok ? mq_tokenizer_eos(tok) : -1;
    if (rc == MQ_OK && !mq_tokenizer_adds_bos(tok) && eot >= 0) {
        int32_t *with = malloc((n_ids + 1) * sizeof *with);
        if (!with) {
            rc = mq_error_set(&err, MQ_ERR_NOMEM, "out of memory");
        } else {
            with[0] = eot;
            memcpy(with + 1, ids, n_ids * sizeof *ids);
            free(ids);
            ids = with;
            n_ids++;
        }
    }
    if (rc == MQ_OK) {
        mq_sampling_t sp = {(float)temp, (int)top_k, (float)top_p, (uint64_t)seed};
        rc = mq_sampler_init(&sampler, &sp, run->cfg.vocab_size, &err);
    }
    if (rc == MQ_OK && !(st.ids = malloc((n_ids + (size_t)n_predict) * sizeof *st.ids)))
        rc = mq_error_set(&err, MQ_ERR_NOMEM, "out of memory");
    mq_generation_t g = {0};
    if (rc == MQ_OK) {
        st.tok = tok;
        memcpy(st.ids, ids, n_ids * sizeof *ids);
        st.n = n_ids;
        char *text;
        rc = mq_tokenizer_decode(tok, ids, n_ids, &text, &st.shown, &err);
        if (rc == MQ_OK) free(text);
    }
    if (rc == MQ_OK) {
        fputs(prompt, stdout);
        fflush(stdout);
        int32_t stop[2];
        size_t n_stop = 0;
        if (!ignore_eos && eos >= 0) stop[n_stop++] = eos;
        if (!ignore_eos && eot >= 0 && eot != eos) stop[n_stop++] = eot;
        rc = mq_generate(run, ids, n_ids, (int)n_predict, stop, n_stop, &sampler, show_token, &st,
                         &g, &err);
        if (rc == MQ_OK && st.err.code) {
            err = st.err;
            rc = err.code;
        }
        if (!st.newline) fputc('\n', stdout);
        fflush(stdout);
    }
    if (rc == MQ_OK) {
        char about[256];
        fprintf(stderr, "\n%s: %d prompt tokens, %d generated%s%s, %d threads, activations %s\n",
                model, (int)n_ids, g.tokens, g.stopped ? " (stopped at an end token)" : "",
                g.shifts ? ", context shifted" : "", omp_get_max_threads(),
                mq_kernels_a8_about(a8, about, sizeof about));
        print_time("prompt eval time", g.prompt_seconds, g.prompt_tokens, "tokens");
        print_time("eval time", g.eval_seconds, g.eval_steps, "runs");
        print_time("sample time", g.sample_seconds, g.tokens, "runs");
    }
    free(st.ids);
    free(ids);
    mq_sampler_free(&sampler);
    mq_tokenizer_free(tok);
    mq_qmodel_free(&q);
    mq_qmodel_free(&file);
    mq_gpt_free(&m);
    return rc ? cli_fail(&err) : 0;
}
