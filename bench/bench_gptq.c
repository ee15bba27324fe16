/* miniquant benchmark: GPTQ of one 768 x 768 Linear (GPT-2 small's attention projection), INT4
 * g64, on 128 and on 2048 calibration rows of N(0, 1).
 *
 * Per layer: the Hessian (one syrk over the calibration rows), the factorization (damping,
 * Cholesky and triangular inverse for the upper factor of H^-1), the blocked solve, and apart
 * from those the losses against round to nearest (two more products, for reports only). The
 * GPTQ time of a layer is Hessian + factorization + solve. Each figure is the median over the
 * rounds, which on a machine shared with other work is the typical run rather than the lucky
 * one. Threads: OMP_NUM_THREADS (default here 2, this project's machine).
 *
 * Then, when the trained default MiniGPT exists (models/minigpt-default.gguf, or the path given),
 * the whole model: int4_g64_gptq of its 17 Linears with the calibration included (128 sequences
 * of the validation split run through the model layer by layer), median of 3 rounds.
 *
 * The same layer with ggml's K-quant rows (q4_k_gptq, q6_k_gptq: each 256-block's scales
 * searched when GPTQ first reaches it), in the same run, with each one's time as a ratio to
 * int4_g64's.
 *
 * Usage: bench_gptq [rounds] [model.gguf] (default 15, models/minigpt-default.gguf). */
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>

#include "miniquant/checkpoint.h"
#include "miniquant/corpus.h"
#include "miniquant/dataset.h"
#include "miniquant/fileio.h"
#include "miniquant/gptq.h"
#include "miniquant/progress.h"
#include "miniquant/rng.h"

#define MAX_ROUNDS 200
#define DIM 768

static void check(int rc, const mq_error_t *err) {
    if (rc != MQ_OK) {
        fprintf(stderr, "bench_gptq: %s\n", err->msg);
        exit(1);
    }
}

/* The median GPTQ time (Hessian + factorization + solve) of the layer, in seconds. */
static double run(const char *scheme, const float *W, const float *X, int n, int act_order,
                  int rounds) {
    mq_error_t err = {0};
    mq_scheme_t s;
    check(mq_scheme_parse(scheme, &s, &err), &err);
    static double th[MAX_ROUNDS], tf[MAX_ROUNDS], ts[MAX_ROUNDS], tl[MAX_ROUNDS], tt[MAX_ROUNDS];
    double ratio = 0.0;
    for (int r = -1; r < rounds; r++) { /* one warm-up round */
        mq_gptq_hessian_t h;
        check(mq_gptq_hessian_init(&h, DIM, &err), &err);
        double t0 = mq_now();
        check(mq_gptq_hessian_add(&h, X, n, &err), &err);
        double t1 = mq_now();
        mq_gptq_opts_t o;
        mq_gptq_opts_default(&o);
        o.act_order = act_order;
        mq_gptq_result_t res;
        check(mq_gptq_quantize(W, DIM, DIM, &h, &s, &o, &res, &err), &err);
        if (r >= 0) {
            th[r] = t1 - t0;
            tf[r] = res.t_factor;
            ts[r] = res.t_solve;
            tl[r] = res.t_loss;
            tt[r] = th[r] + tf[r] + ts[r];
        }
        ratio = res.loss / res.loss_rtn;
        mq_gptq_result_free(&res);
        mq_gptq_hessian_free(&h);
    }
    printf("%-14s %-6d %-9s %9.2f %9.2f %9.2f %9.2f | %9.2f %10.3f", scheme, n,
           act_order ? "yes" : "no", 1e3 * mq_median(th, rounds), 1e3 * mq_median(tf, rounds),
           1e3 * mq_median(ts, rounds), 1e3 * mq_median(tt, rounds), 1e3 * mq_median(tl, rounds),
           ratio);
    return mq_median(tt, rounds);
}

/* GPTQ of a whole model, calibration included. */
static void run_model(const char *path) {
    mq_error_t err = {0};
    mq_gpt_t m = {0};
    mq_tokenizer_t *tok = NULL;
    mq_corpus_t c;
    mq_tokens_t calib = {0};
    mq_scheme_t s;
    check(mq_scheme_parse("int4_g64_gptq", &s, &err), &err);
    check(mq_checkpoint_load(path, &m, &tok, NULL, &err), &err);
    check(mq_corpus_load_wordnet(NULL, &c, &err), &err);
    check(mq_dataset_encode(&c, MQ_SPLIT_VALID, tok, &calib, &err), &err);
    /* the FP32 model is left as it was: every round quantizes the same weights */
    enum { ROUNDS = 3 };
    double t[ROUNDS];
    for (int r = 0; r < ROUNDS; r++) {
        mq_qmodel_t q;
        double t0 = mq_now();
        check(mq_gptq_quantize_model(&m, &s, calib.ids, calib.n, NULL, 0, &q, NULL, &err), &err);
        t[r] = mq_now() - t0;
        mq_qmodel_free(&q);
    }
    printf("\nGPTQ of the whole model %s (MiniGPT-%s, %d Linears), int4_g64, calibration on 128\n"
           "sequences of the validation split included, median of %d rounds: %.2f s\n",
           path, m.cfg.name, mq_qmodel_n_linear(&m.cfg), ROUNDS, mq_median(t, ROUNDS));
    mq_tokens_free(&calib);
    mq_corpus_free(&c);
    mq_tokenizer_free(tok);
    mq_gpt_free(&m);
}

int main(int argc, char **argv) {
    int rounds = argc > 1 ? atoi(argv[1]) : 15;
    if (rounds < 1 || rounds > MAX_ROUNDS) rounds = 15;
    if (!getenv("OMP_NUM_THREADS")) omp_set_num_threads(2);
    enum { NMAX = 2048 };
    mq_rng_t rng;
    mq_rng_seed(&rng, 26);
    float *W = malloc((size_t)DIM * DIM * sizeof *W), *X = malloc((size_t)NMAX * DIM * sizeof *X);
    if (!W || !X) {
        fprintf(stderr, "bench_gptq: out of memory\n");
        return 1;
    }
    for (size_t i = 0; i < (size_t)DIM * DIM; i++)
        W[i] = 0.02f * mq_rng_normal(&rng);
    for (size_t i = 0; i < (size_t)NMAX * DIM; i++)
        X[i] = mq_rng_normal(&rng);

    printf("GPTQ of one %d x %d Linear, %d threads, median of %d rounds (ms)\n", DIM, DIM,
           omp_get_max_threads(), rounds);
    printf("%-14s %-6s %-9s %9s %9s %9s %9s | %9s %10s %8s\n", "scheme", "n", "act-order",
           "hessian", "factor", "solve", "total", "losses", "loss/RTN", "/ int4");
    static const char *const K[] = {"q4_k_gptq", "q6_k_gptq"};
    for (int act = 0; act < 2; act++)
        for (int big = 0; big < 2; big++) {
            int n = big ? 2048 : 128;
            double t4 = run("int4_g64_gptq", W, X, n, act, rounds);
            printf("\n");
            for (size_t k = 0; k < sizeof K / sizeof K[0]; k++) {
                double t = run(K[k], W, X, n, act, rounds);
                printf(" %8.2f\n", t / t4);
            }
        }
    free(W);
    free(X);
    const char *model = argc > 2 ? argv[2] : "models/minigpt-default.gguf";
    if (mq_file_exists(model)) run_model(model);
    else printf("\n(no %s: the whole-model figure needs the trained default MiniGPT)\n", model);
    return 0;
}
