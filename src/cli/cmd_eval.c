/* miniquant eval: perplexity of a model on a corpus split or a text file. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "miniquant/arch.h"
#include "measure.h"
#include "miniquant/checkpoint.h"
#include "miniquant/dataset.h"
#include "miniquant/eval.h"
#include "miniquant/fileio.h"
#include "miniquant/export.h"
#include "miniquant/gptq.h"
#include "miniquant/pairs.h"
#include "miniquant/qmodel.h"
#include "miniquant/report.h"

static const char ABOUT[] =
    "Perplexity of a model (with the tokenizer stored in its GGUF) on the test split. The model\n"
    "is an FP32 checkpoint (optionally quantized in memory with --scheme), a quantized file\n"
    "written by 'miniquant export', or another tool's (llama-quantize's) gpt2 file of any type\n"
    "miniquant reads, dequantized to FP32. The protocols (--ppl-protocol):\n"
    "  default   non-overlapping windows of the context length over the split's documents,\n"
    "            each followed by \"\\n\" and <|endoftext|>; every token but the first scored\n"
    "  llamacpp  llama-perplexity's protocol on the split as a text file (documents one per\n"
    "            line, the final newline dropped as llama-perplexity -f does): chunks of n_ctx\n"
    "            tokens, the second half of each scored; compare with llama-perplexity -c N\n";

int cmd_eval(int argc, char **argv) {
    const char *scheme_name = NULL, *pairs = NULL;
    int skip_head = 0;
    const char *model = NULL, *proto_name = NULL, *split_name = NULL, *text_file = NULL,
               *json = NULL, *kl_base = NULL;
    long ctx = 0, batch = 0, threads = 0;
    cli_option_t opts[] = {
        {CLI_OPT_MODEL(&model, "the model (GGUF, gpt2 or llama architecture)"), .required = 1},
        {CLI_OPT_SCHEME(&scheme_name, "quantize the Linear layers in memory first (with "
                                      "--skip-lm-head, all but lm_head); _gptq: GPTQ "
                                      "calibrated on 128 sequences of the valid split")},
        {CLI_OPT_SKIP_LM_HEAD(&skip_head)},
        {.name = "pairs", .arg = "FILE", .str = &pairs,
         .help = "also score minimal pairs: a BLiMP-layout jsonl file (sentence_good, "
                 "sentence_bad per line), or 'verb-tense' for the verb-tense set built from the "
                 "test split"},
        {.name = "ppl-protocol", .arg = "NAME", .str = &proto_name, .def = "default",
         .help = "default or llamacpp"},
        {.name = "split", .arg = "NAME", .str = &split_name, .def = "test",
         .help = "train, valid or test"},
        {.name = "text", .arg = "FILE", .str = &text_file,
         .help = "evaluate a text file instead (one trailing newline dropped)"},
        {.name = "kl-base", .arg = "FILE.gguf", .str = &kl_base,
         .help = "also the KL divergence of the model's next-token distributions from this "
                 "model's (the FP32 one) on the same windows, as llama-perplexity "
                 "--kl-divergence reports it, and the paired log-perplexity gap"},
        {.name = "ctx", .arg = "N", .l = &ctx, .lo = 2, .hi = 1 << 20,
         .def_text = "the model's context", .help = "window length"},
        {.name = "batch", .arg = "N", .l = &batch, .lo = 1, .hi = 4096, .def = "8",
         .help = "windows per forward pass"},
        {CLI_OPT_JSON(&json)},
        {CLI_OPT_THREADS(&threads)},
        {0},
    };
    const cli_command_t cmd = {.name = "eval", .about = ABOUT, .opts = opts};
    int rc = cli_parse(&cmd, argc, argv, NULL);
    if (rc != CLI_CONTINUE) return rc;
    mq_error_t err = {0};
    mq_ppl_protocol_t proto;
    mq_split_t split;
    mq_scheme_t scheme;
    if (mq_ppl_protocol_parse(proto_name, &proto, &err) || mq_split_parse(split_name, &split, &err) ||
        mq_scheme_parse(scheme_name ? scheme_name : "fp32", &scheme, &err))
        return cli_usage_error(&cmd, "%s", err.msg);
    cli_set_threads((int)threads);

    mq_gpt_t m = {0};
    mq_tokenizer_t *tok = NULL;
    /* any miniquant GGUF: an FP32 checkpoint, or a quantized file from miniquant export */
    mq_qmodel_t file = {0}, q = {0};
    rc = mq_qmodel_load(model, &file, &tok, &err);
    if (rc) return cli_fail(&err);
    int from_file = !mq_scheme_is_identity(&file.scheme);
    mq_gpt_t *run = file.model;          /* the model evaluated */
    const mq_qmodel_t *counted = NULL;   /* whose bytes are reported (NULL: FP32) */
    int want_verbs = pairs && !strcmp(pairs, "verb-tense");
    int gptq = !from_file && scheme_name && mq_scheme_calibrated(&scheme);
    /* the WordNet corpus, read once for whatever needs it: GPTQ's calibration (the valid
     * split), the verb-tense set, the split evaluated */
    mq_corpus_t c = {0};
    int have_corpus = gptq || want_verbs || !text_file;
    if (have_corpus && (rc = mq_corpus_load_wordnet(NULL, &c, &err))) have_corpus = 0;
    if (rc == MQ_OK && from_file) {
        scheme = file.scheme;
        skip_head = file.skip_lm_head;
        counted = &file;
        if (scheme_name)
            rc = mq_error_set(&err, MQ_ERR_ARG,
                              "%s is already quantized (%s); --scheme applies to FP32 models",
                              model, file.scheme.name);
    } else if (rc == MQ_OK && scheme_name) {
        mq_tokens_t calib = {0};
        rc = mq_qmodel_dequantize(&file, &m, &err);
        if (rc == MQ_OK && gptq) rc = mq_dataset_encode(&c, MQ_SPLIT_VALID, tok, &calib, &err);
        if (rc == MQ_OK)
            rc = mq_gptq_build_qmodel(&m, &scheme, skip_head, calib.ids, calib.n, &q, &err);
        mq_tokens_free(&calib);
        if (rc == MQ_OK) {
            run = q.model;
            counted = &q;
        }
    }
    if (rc) {
        if (have_corpus) mq_corpus_free(&c);
        mq_qmodel_free(&q);
        mq_qmodel_free(&file);
        mq_tokenizer_free(tok);
        mq_gpt_free(&m);
        return cli_fail(&err);
    }
    mq_model_bytes_t bytes;
    mq_model_bytes(run, counted, &bytes);
    /* another tool's quantized file (llama-quantize's): its own types, dequantized here */
    mq_export_bytes_t fb = {0};
    int foreign = rc == MQ_OK && !from_file && file.file &&
                  mq_export_bytes_read(file.file, model, &fb, NULL) == MQ_OK && !fb.linear_all_f32;
    mq_tokens_t toks = {0};
    char *text = NULL;
    size_t len = 0, n_docs = 0;
    if (text_file) {
        rc = mq_read_file(text_file, 0, &text, &len, &err);
    }
    mq_mp_set_t set = {0};
    mq_mp_result_t pr = {0};
    if (rc == MQ_OK && pairs && strcmp(pairs, "verb-tense") != 0)
        rc = mq_blimp_read(pairs, &set, &err);
    if (rc == MQ_OK && have_corpus) {
        if (want_verbs) rc = mq_verbtense_build(&c, NULL, MQ_VT_TEMPLATE_ITEMS, &set, NULL, &err);
        if (rc == MQ_OK && !text_file) {
            for (size_t i = 0; i < c.n_docs; i++) n_docs += c.docs[i].split == split;
            if (proto == MQ_PPL_DEFAULT) rc = mq_dataset_encode(&c, split, tok, &toks, &err);
            else rc = mq_corpus_split_text(&c, split, &text, &len, &err);
        }
    }
    if (have_corpus) mq_corpus_free(&c);
    if (rc == MQ_OK && text && proto == MQ_PPL_LLAMACPP) {
        rc = mq_ppl_llamacpp_tokens(tok, text, len, ctx > 0 ? (int)ctx : run->cfg.n_ctx,
                                    &toks.ids, &toks.n, &err);
    } else if (rc == MQ_OK && text) {
        if (len && text[len - 1] == '\n') len--; /* as llama-perplexity -f reads a file */
        rc = mq_tokenizer_encode(tok, text, len, 0, &toks.ids, &toks.n, &err);
    }
    mq_ppl_result_t r;
    if (rc == MQ_OK) rc = mq_perplexity(run, toks.ids, toks.n, proto, (int)ctx, (int)batch, &r, &err);
    mq_qmodel_t base = {0};
    mq_kld_result_t kr = {0};
    if (rc == MQ_OK && kl_base && (rc = mq_qmodel_load(kl_base, &base, NULL, &err)) == MQ_OK)
        rc = mq_kl_divergence(base.model, run, toks.ids, toks.n, proto, (int)ctx, (int)batch, &kr,
                              &err);
    mq_qmodel_free(&base);
    if (rc == MQ_OK && pairs) rc = mq_mp_score(run, tok, &set, NULL, &pr, &err);
    if (rc == MQ_OK) {
        char family[64];
        mq_arch_model_name(&run->cfg, family, sizeof family);
        printf("model        %s (%s, %zu parameters)\n", model, family, run->num_params);
        if (foreign)
            printf("file         Linears %s (%.3f bits per Linear weight, %zu bytes), "
                   "dequantized to FP32\n",
                   fb.linear_types, fb.bits_per_weight, fb.file);
        printf("%s       %s%s (%zu bytes, %.3f bits per Linear weight)\n",
               file.recipe[0] ? "recipe" : "scheme", file.recipe[0] ? file.recipe : scheme.name,
               skip_head ? ", lm_head FP32" : "", bytes.total, bytes.bits_per_weight);
        if (proto == MQ_PPL_LLAMACPP)
            printf("protocol     llamacpp (%d chunks of %d tokens, second half scored)\n",
                   r.n_windows, r.n_ctx);
        else
            printf("protocol     default (%d non-overlapping windows of %d tokens)\n", r.n_windows,
                   r.n_ctx);
        if (text_file) printf("text         %s\n", text_file);
        else printf("split        %s (%zu documents)\n", mq_split_name(split), n_docs);
        printf("tokens       %lld (%lld scored)\n", (long long)r.n_tokens, (long long)r.n_scored);
        printf("perplexity   %.4f\n", r.ppl);
        printf("nll          %.5f +/- %.5f nats/token\n", r.nll, r.nll_stderr);
        printf("time         %.2f s\n", r.seconds);
        if (kl_base) {
            /* the gap is significant when its 95% interval excludes 0 */
            int sig = fabs(kr.ln_ppl_ratio) > 1.96 * kr.ln_ppl_ratio_stderr;
            printf("kl-base      %s (perplexity %.4f on the same tokens)\n", kl_base, kr.ppl_base);
            printf("kld          mean %.6f +/- %.6f, median %.6f, 99%% %.6f, 99.9%% %.6f, max "
                   "%.6f nats/token\n",
                   kr.mean, kr.mean_stderr, kr.median, kr.p99, kr.p999, kr.max);
            printf("same top     %.3f%% +/- %.3f%% of %lld tokens\n", 100 * kr.same_top,
                   100 * kr.same_top_stderr, (long long)kr.n_scored);
            printf("ln ppl ratio %+.6f +/- %.6f (paired, per token): %s\n", kr.ln_ppl_ratio,
                   kr.ln_ppl_ratio_stderr,
                   sig ? "significant at 95%" : "not significant at 95%");
        }
        if (pairs) {
            printf("pairs        %s: accuracy %.2f%% (%zu of %zu items), 95%% CI [%.2f%%, %.2f%%], "
                   "chance %.2f%%\n",
                   pairs, 100 * pr.accuracy, pr.correct, pr.n, 100 * pr.ci_low, 100 * pr.ci_high,
                   100 * pr.chance);
            for (int k = 0; k < MQ_VT_NUM_CATEGORIES; k++) {
                const mq_mp_tally_t *t = &pr.by_category[k];
                if (t->n && t->n < pr.n)
                    printf("  %-11s accuracy %.2f%% (%zu of %zu items), 95%% CI [%.2f%%, %.2f%%], "
                           "chance %.2f%%\n",
                           mq_vt_category_name(k), 100 * t->accuracy, t->correct, t->n,
                           100 * t->ci_low, 100 * t->ci_high, 100 * t->chance);
            }
        }
    }
    if (rc == MQ_OK && json) {
        cJSON *root = cJSON_CreateObject();
        cJSON_AddStringToObject(root, "model", model);
        cJSON_AddStringToObject(root, "config", run->cfg.name);
        cJSON_AddNumberToObject(root, "model_params", (double)run->num_params);
        cJSON_AddStringToObject(root, "scheme", scheme.name);
        if (file.recipe[0]) cJSON_AddStringToObject(root, "recipe", file.recipe);
        cJSON_AddBoolToObject(root, "skip_lm_head", skip_head);
        cJSON_AddItemToObject(root, "bytes", cli_bytes_json(&bytes));
        if (foreign) {
            cJSON *f = cJSON_AddObjectToObject(root, "file");
            cJSON_AddStringToObject(f, "linear_types", fb.linear_types);
            cJSON_AddNumberToObject(f, "bits_per_weight", fb.bits_per_weight);
            cJSON_AddNumberToObject(f, "bytes", (double)fb.file);
        }
        cJSON_AddStringToObject(root, "protocol", mq_ppl_protocol_name(proto));
        if (text_file) cJSON_AddStringToObject(root, "text", text_file);
        else cJSON_AddStringToObject(root, "split", mq_split_name(split));
        cJSON_AddNumberToObject(root, "n_ctx", r.n_ctx);
        cJSON_AddNumberToObject(root, "n_windows", r.n_windows);
        cJSON_AddNumberToObject(root, "n_tokens", (double)r.n_tokens);
        cJSON_AddNumberToObject(root, "n_scored", (double)r.n_scored);
        cJSON_AddNumberToObject(root, "ppl", r.ppl);
        cJSON_AddNumberToObject(root, "nll", r.nll);
        cJSON_AddNumberToObject(root, "nll_stderr", r.nll_stderr);
        cJSON_AddNumberToObject(root, "seconds", r.seconds);
        if (kl_base) {
            cJSON *k = cli_kld_json(&kr);
            cJSON_AddStringToObject(k, "base", kl_base);
            cJSON_AddItemToObject(root, "kld", k);
        }
        if (pairs) {
            cJSON *p = cJSON_AddObjectToObject(root, "pairs");
            cJSON_AddStringToObject(p, "file", pairs);
            cJSON_AddNumberToObject(p, "items", (double)pr.n);
            cJSON_AddNumberToObject(p, "correct", (double)pr.correct);
            cJSON_AddNumberToObject(p, "accuracy", pr.accuracy);
            cJSON_AddNumberToObject(p, "ci95_low", pr.ci_low);
            cJSON_AddNumberToObject(p, "ci95_high", pr.ci_high);
        }
        rc = mq_json_write(json, root, &err);
        cJSON_Delete(root);
    }
    free(text);
    mq_mp_set_free(&set);
    mq_tokens_free(&toks);
    mq_tokenizer_free(tok);
    mq_qmodel_free(&q);
    mq_qmodel_free(&file);
    mq_gpt_free(&m);
    return rc ? cli_fail(&err) : 0;
}
