/* miniquant CLI: bench mulmat (bench_mulmat.c), the fused kernels against ggml's MUL_MAT on the
 * cases of llama.cpp's test-backend-ops perf. */
#ifndef MINIQUANT_CLI_BENCH_MULMAT_H
#define MINIQUANT_CLI_BENCH_MULMAT_H

#include <cjson/cJSON.h>

#include "miniquant/error.h"

typedef struct cli_mulmat_opts {
    const char *from; /* a saved output of test-backend-ops to read instead of running it */
    const char *save; /* where to keep the output of the run, or NULL */
    int reps;
} cli_mulmat_opts_t;

/* One case of test-backend-ops' output. */
typedef struct cli_mulmat_case {
    char type_a[16], type_b[16];
    int m, n, k;
    double us_per_run;
} cli_mulmat_case_t;

/* Parses one line of `test-backend-ops perf -o MUL_MAT` ("  MUL_MAT(type_a=q4_0,type_b=f32,
 * m=4096,n=1,k=14336,bs=[1,1],nr=[1,1],...): 690 runs - 1593.60 us/run - ..."): 1 with the case
 * in *c, 0 for any other line (other batch shapes included). */
int cli_mulmat_parse_line(const char *line, cli_mulmat_case_t *c);

/* Times miniquant's kernels on each case of a type it stores; prints the table, adds the rows to
 * out["mulmat"]. */
int cli_bench_mulmat(const cli_mulmat_opts_t *o, cJSON *out, mq_error_t *err);

#endif
