/* miniquant benchmark: MiniGPT training throughput against raw sgemm on the model's own shapes.
 *
 * At the default config (V=4096, B=16, T=128) on random tokens, times training steps (forward,
 * zero_grad, backward, gradient clipping, AdamW) and reports tokens/s and GFLOP/s. In the same
 * run it times cblas_sgemm alone on the shapes of the model's Linears at N = B*T, forward and
 * both backward products, and reports how close training gets to that ceiling.
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
 * Usage: bench_train [steps] (default 10; every time is a median over repeats). */
#include <cblas.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "miniquant/model.h"
#include "miniquant/progress.h"
#include "miniquant/rng.h"

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(double *v, int n) {
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

static int check(int rc, const mq_error_t *err) {
    if (rc != MQ_OK) {
        fprintf(stderr, "bench_train: %s\n", err->msg);
        exit(1);
    }
    return rc;
}

/* Median seconds of one sgemm call of the given shape (row-major, C (M,N) = op(A) op(B)). */
static double time_sgemm(int transA, int transB, int M, int N, int K, float beta, const float *A,
                         const float *B, float *C, int reps) {
    int lda = transA ? M : K, ldb = transB ? K : N;
    double t[32];
    for (int r = -1; r < reps; r++) {
        double t0 = mq_now();
        cblas_sgemm(CblasRowMajor, transA ? CblasTrans : CblasNoTrans,
                    transB ? CblasTrans : CblasNoTrans, M, N, K, 1.0f, A, lda, B, ldb, beta, C, N);
        if (r >= 0) t[r] = mq_now() - t0;
    }
    return median(t, reps);
}

int main(int argc, char **argv) {
    int steps = argc > 1 ? atoi(argv[1]) : 10;
    if (steps < 1 || steps > 1000) steps = 10;
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

    /* ---- training steps ---- */
    size_t tb = (size_t)steps * sizeof(double);
    double *t_step = malloc(tb), *t_fwd = malloc(tb), *t_bwd = malloc(tb), *t_opt = malloc(tb);
    for (int s = -2; s < steps; s++) { /* two warm-up steps allocate and touch everything */
        double t0 = mq_now();
        check(mq_gpt_forward(&m, x, y, B, T, &err), &err);
        double t1 = mq_now();
        check(mq_gpt_zero_grad(&m, &err), &err);
        check(mq_gpt_backward(&m, &err), &err);
        double t2 = mq_now();
        mq_gpt_clip_grad_norm(&m, 1.0f);
        check(mq_gpt_adamw_update(&m, 1e-4f, 0.9f, 0.95f, 1e-8f, 0.1f, s + 3, &err), &err);
        double t3 = mq_now();
        if (s < 0) continue;
        t_step[s] = t3 - t0;
        t_fwd[s] = t1 - t0;
        t_bwd[s] = t2 - t1;
        t_opt[s] = t3 - t2;
    }
    double step = median(t_step, steps), fwd = median(t_fwd, steps), bwd = median(t_bwd, steps),
           opt = median(t_opt, steps);

    double P = (double)L * 12.0 * C * C + (double)V * C;
    double flops_linear = 6.0 * N * P;
    double flops_att = 12.0 * L * B * (double)T * T * C;
    double flops = flops_linear + flops_att;
    double train_gflops = flops / step * 1e-9;

    /* ---- sgemm alone on the Linears' shapes ---- */
    struct {
        const char *name;
        int in, out, count;
    } lin[] = {{"qkv", C, 3 * C, L},
               {"attproj", C, C, L},
               {"fc", C, 4 * C, L},
               {"fcproj", 4 * C, C, L},
               {"lm_head", C, V, 1}};
    size_t maxsz = (size_t)N * V; /* the largest operand: (N, V) */
    float *A = malloc(maxsz * sizeof(float)), *Bm = malloc(maxsz * sizeof(float)),
          *Cm = malloc(maxsz * sizeof(float));
    for (size_t i = 0; i < maxsz; i++)
        A[i] = Bm[i] = Cm[i] = 0.01f * mq_rng_normal(&rng);
    int reps = 7;
    double sgemm_time = 0.0, sgemm_flops = 0.0;
    printf("miniquant bench_train: MiniGPT default (L=%d, C=%d, NH=%d, V=%d), B=%d, T=%d, "
           "%d threads\n\n",
           L, C, cfg.n_head, V, B, T, omp_get_max_threads());
    printf("sgemm on the model's Linear shapes (N = B*T = %d), median of %d:\n", N, reps);
    printf("  %-8s %-9s %5s %5s %5s %10s %9s\n", "linear", "product", "M", "N", "K", "ms",
           "GFLOP/s");
    for (size_t i = 0; i < sizeof lin / sizeof lin[0]; i++) {
        int in = lin[i].in, out = lin[i].out;
        /* forward: out (N,OC) = inp (N,C) W^T; dinp (N,C) = dout W; dW (OC,C) += dout^T inp */
        struct {
            const char *what;
            int ta, tb, M, Nn, K;
            float beta;
        } sh[3] = {{"forward", 0, 1, N, out, in, 0.0f},
                   {"dinp", 0, 0, N, in, out, 0.0f},
                   {"dweight", 1, 0, out, in, N, 1.0f}};
        for (int k = 0; k < 3; k++) {
            double t = time_sgemm(sh[k].ta, sh[k].tb, sh[k].M, sh[k].Nn, sh[k].K, sh[k].beta, A, Bm,
                                  Cm, reps);
            double f = 2.0 * sh[k].M * sh[k].Nn * sh[k].K;
            sgemm_time += t * lin[i].count;
            sgemm_flops += f * lin[i].count;
            printf("  %-8s %-9s %5d %5d %5d %10.3f %9.1f\n", lin[i].name, sh[k].what, sh[k].M,
                   sh[k].Nn, sh[k].K, t * 1e3, f / t * 1e-9);
        }
    }
    double sgemm_gflops = sgemm_flops / sgemm_time * 1e-9;

    printf("\ntraining step, median of %d:\n", steps);
    printf("  %-34s %10.1f ms\n", "forward", fwd * 1e3);
    printf("  %-34s %10.1f ms\n", "zero_grad + backward", bwd * 1e3);
    printf("  %-34s %10.1f ms\n", "clip + AdamW", opt * 1e3);
    printf("  %-34s %10.1f ms\n", "whole step", step * 1e3);
    printf("  %-34s %10.0f\n", "tokens/s", N / step);
    printf("  %-34s %10.2f (Linears %.2f + attention %.2f)\n", "GFLOP per step", flops * 1e-9,
           flops_linear * 1e-9, flops_att * 1e-9);
    printf("  %-34s %10.1f\n", "training GFLOP/s", train_gflops);
    printf("  %-34s %10.1f (%.1f ms for one step's Linears)\n", "sgemm GFLOP/s, Linear shapes",
           sgemm_gflops, sgemm_time * 1e3);
    printf("  %-34s %10.1f %%\n", "training / sgemm", 100.0 * train_gflops / sgemm_gflops);

    free(A), free(Bm), free(Cm), free(x), free(y), free(t_step), free(t_fwd), free(t_bwd),
        free(t_opt);
    mq_gpt_free(&m);
    return 0;
}
