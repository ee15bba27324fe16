/* miniquant benchmark: MiniGPT training throughput against raw sgemm on the model's own shapes.
 *
 * At the default config (V=4096, B=16, T=128) on random tokens, times training steps (forward,
 * zero_grad, backward, gradient clipping, AdamW) and reports tokens/s and GFLOP/s. In the same
 * run it times cblas_sgemm alone on the shapes of the model's Linears at N = B*T, the forward
 * product and both backward ones, and reports how close training gets to that ceiling.
 *
 * The two are measured in alternation, one training step then one pass over every sgemm shape,
 * round after round, and every figure is a median over the rounds: on a machine shared with
 * other work, both then see the same conditions.
 *
 * FLOPs of one step, as counted here (N = B*T):
 *   Linears:   6 * N * P, where P = L * 12 C^2 + V C are the Linear weights (qkv 3C^2, attproj
 *              C^2, fc 4C^2, fcproj 4C^2 per layer, lm_head V C): 2 * N * P in the forward and
 *              4 * N * P in the backward (input and weight gradients).
 *   Attention: per layer, the forward's Q K^T and att V are 2 B T^2 C each and the backward has
 *              four such products: 12 * L * B * T^2 * C, counting the full T x T products that
 *              are computed (the causal mask discards half of them).
 * Elementwise work (LayerNorm, GELU, softmax, AdamW, ...) is not counted.
 *
 * Usage: bench_train [rounds] (default 10). */
#include <cblas.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "miniquant/model.h"
#include "miniquant/progress.h"
#include "miniquant/rng.h"

#define MAX_ROUNDS 200
#define NUM_SHAPES 15

static void check(int rc, const mq_error_t *err) {
    if (rc != MQ_OK) {
        fprintf(stderr, "bench_train: %s\n", err->msg);
        exit(1);
    }
}

/* One sgemm shape: C (M,Nn) = op(A) op(B) + beta C, row-major. */
typedef struct shape {
    const char *linear, *product;
    int ta, tb, M, Nn, K;
    float beta;
    int count; /* how many times a training step runs it */
} shape_t;

static double time_sgemm(const shape_t *s, const float *A, const float *B, float *C) {
    int lda = s->ta ? s->M : s->K, ldb = s->tb ? s->K : s->Nn;
    double t0 = mq_now();
    cblas_sgemm(CblasRowMajor, s->ta ? CblasTrans : CblasNoTrans, s->tb ? CblasTrans : CblasNoTrans,
                s->M, s->Nn, s->K, 1.0f, A, lda, B, ldb, s->beta, C, s->Nn);
    return mq_now() - t0;
}

int main(int argc, char **argv) {
    int rounds = argc > 1 ? atoi(argv[1]) : 10;
    if (rounds < 1 || rounds > MAX_ROUNDS) rounds = 10;
    const int B = 16, T = 128, N = B * T;
    mq_error_t err = {0};
    mq_gpt_config_t cfg;
    check(mq_gpt_preset("default", 4096, &cfg, &err), &err);
    mq_gpt_t m;
    check(mq_gpt_init(&m, &cfg, &err), &err);
    mq_gpt_init_weights(&m, 1);
    int V = cfg.vocab_size, C = cfg.n_embd, L = cfg.n_layer;

    mq_rng_t rng;
    mq_rng_seed(&rng, 2);
    int *x = malloc((size_t)N * sizeof(int)), *y = malloc((size_t)N * sizeof(int));
    for (int i = 0; i < N; i++)
        x[i] = (int)mq_rng_below(&rng, (uint64_t)V);
    for (int i = 0; i < N; i++)
        y[i] = (int)mq_rng_below(&rng, (uint64_t)V);

    /* per Linear: forward out (N,OC) = inp (N,C) W^T; dinp (N,C) = dout (N,OC) W;
     * dweight (OC,C) += dout^T inp */
    struct {
        const char *name;
        int in, out, count;
    } lin[] = {{"qkv", C, 3 * C, L},
               {"attproj", C, C, L},
               {"fc", C, 4 * C, L},
               {"fcproj", 4 * C, C, L},
               {"lm_head", C, V, 1}};
    shape_t sh[NUM_SHAPES];
    for (int i = 0; i < 5; i++) {
        int in = lin[i].in, out = lin[i].out, k = 3 * i;
        sh[k] = (shape_t){lin[i].name, "forward", 0, 1, N, out, in, 0.0f, lin[i].count};
        sh[k + 1] = (shape_t){lin[i].name, "dinp", 0, 0, N, in, out, 0.0f, lin[i].count};
        sh[k + 2] = (shape_t){lin[i].name, "dweight", 1, 0, out, in, N, 1.0f, lin[i].count};
    }
    size_t maxsz = (size_t)N * V; /* the largest operand: (N, V) */
    float *A = malloc(maxsz * sizeof(float)), *Bm = malloc(maxsz * sizeof(float)),
          *Cm = malloc(maxsz * sizeof(float));
    if (!A || !Bm || !Cm || !x || !y) {
        fprintf(stderr, "bench_train: out of memory\n");
        return 1;
    }
    for (size_t i = 0; i < maxsz; i++)
        A[i] = Bm[i] = Cm[i] = 0.01f * mq_rng_normal(&rng);

    static double t_step[MAX_ROUNDS], t_fwd[MAX_ROUNDS], t_bwd[MAX_ROUNDS], t_opt[MAX_ROUNDS],
        t_pass[MAX_ROUNDS], t_shape[NUM_SHAPES][MAX_ROUNDS];
    for (int r = -2; r < rounds; r++) { /* two warm-up rounds allocate and touch everything */
        double t0 = mq_now();
        check(mq_gpt_forward(&m, x, y, B, T, &err), &err);
        double t1 = mq_now();
        check(mq_gpt_zero_grad(&m, &err), &err);
        check(mq_gpt_backward(&m, &err), &err);
        double t2 = mq_now();
        mq_gpt_clip_grad_norm(&m, 1.0f);
        check(mq_gpt_adamw_update(&m, 1e-4f, 0.9f, 0.95f, 1e-8f, 0.1f, r + 3, &err), &err);
        double t3 = mq_now();
        double pass = 0.0;
        for (int k = 0; k < NUM_SHAPES; k++) {
            double t = time_sgemm(&sh[k], A, Bm, Cm);
            pass += t * sh[k].count;
            if (r >= 0) t_shape[k][r] = t;
        }
        if (r < 0) continue;
        t_step[r] = t3 - t0;
        t_fwd[r] = t1 - t0;
        t_bwd[r] = t2 - t1;
        t_opt[r] = t3 - t2;
        t_pass[r] = pass;
    }

    double P = (double)L * 12.0 * C * C + (double)V * C;
    double flops_linear = 6.0 * N * P, flops_att = 12.0 * L * B * (double)T * T * C;
    double flops = flops_linear + flops_att;
    double step = mq_median(t_step, rounds), pass = mq_median(t_pass, rounds);
    double train_gflops = flops / step * 1e-9, sgemm_gflops = flops_linear / pass * 1e-9;

    printf("miniquant bench_train: MiniGPT default (L=%d, C=%d, NH=%d, V=%d), B=%d, T=%d, "
           "%d threads, median of %d rounds\n\n",
           L, C, cfg.n_head, V, B, T, omp_get_max_threads(), rounds);
    printf("sgemm alone on the model's Linear shapes (N = B*T = %d):\n", N);
    printf("  %-8s %-9s %5s %5s %5s %10s %9s\n", "linear", "product", "M", "N", "K", "ms",
           "GFLOP/s");
    for (int k = 0; k < NUM_SHAPES; k++) {
        double t = mq_median(t_shape[k], rounds), f = 2.0 * sh[k].M * sh[k].Nn * sh[k].K;
        printf("  %-8s %-9s %5d %5d %5d %10.3f %9.1f\n", sh[k].linear, sh[k].product, sh[k].M,
               sh[k].Nn, sh[k].K, t * 1e3, f / t * 1e-9);
    }
    printf("\ntraining step:\n");
    printf("  %-32s %10.1f ms\n", "forward", mq_median(t_fwd, rounds) * 1e3);
    printf("  %-32s %10.1f ms\n", "zero_grad + backward", mq_median(t_bwd, rounds) * 1e3);
    printf("  %-32s %10.1f ms\n", "clip + AdamW", mq_median(t_opt, rounds) * 1e3);
    printf("  %-32s %10.1f ms\n", "whole step", step * 1e3);
    printf("  %-32s %10.0f\n", "tokens/s", N / step);
    printf("  %-32s %10.2f (Linears %.2f + attention %.2f)\n", "GFLOP per step", flops * 1e-9,
           flops_linear * 1e-9, flops_att * 1e-9);
    printf("  %-32s %10.1f\n", "training GFLOP/s", train_gflops);
    printf("  %-32s %10.1f (%.1f ms for one step's Linears)\n", "sgemm GFLOP/s, same shapes",
           sgemm_gflops, pass * 1e3);
    printf("  %-32s %10.1f %%\n", "training / sgemm", 100.0 * train_gflops / sgemm_gflops);

    free(A), free(Bm), free(Cm), free(x), free(y);
    mq_gpt_free(&m);
    return 0;
}
