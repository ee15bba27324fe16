/* Tests of `miniquant bench serve` and `bench mulmat` through the CLI: the tests run and time,
 * llama-bench's and test-backend-ops' outputs are read (from stand-ins that print what the real
 * tools print and record how they were called), ratios are computed from the pairs, and every
 * refusal names what is wrong. */
#include <cjson/cJSON.h>
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"
#include "fixture.h"
#include "miniquant/checkpoint.h"
#include "miniquant/fileio.h"

static char dir[64], model[128];

/* A saved model of context 32 in a fresh folder. */
static void setup(void) {
    mq_tokenizer_t *tok;
    mq_tokens_t stream;
    fixture_stream(&tok, &stream);
    mq_gpt_t m;
    fixture_model(&m, 3);
    snprintf(dir, sizeof dir, "/tmp/mq-serve-XXXXXX");
    cr_assert(mkdtemp(dir));
    snprintf(model, sizeof model, "%s/m.gguf", dir);
    mq_error_t err = {0};
    cr_assert_eq(mq_checkpoint_save(model, &m, tok, NULL, &err), MQ_OK, "%s", err.msg);
    mq_gpt_free(&m);
    mq_tokenizer_free(tok);
    mq_tokens_free(&stream);
}

static void teardown(void) {
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    cr_expect_eq(system(cmd), 0);
}

static void write_text(const char *path, const char *text, int exec) {
    FILE *f = fopen(path, "w");
    cr_assert(f, "%s", path);
    fputs(text, f);
    fclose(f);
    if (exec) chmod(path, 0755);
}

static cJSON *read_json(const char *path) {
    char *buf;
    size_t len;
    mq_error_t err = {0};
    cr_assert_eq(mq_read_file(path, 1 << 24, &buf, &len, &err), MQ_OK, "%s", err.msg);
    cJSON *j = cJSON_Parse(buf);
    free(buf);
    cr_assert(j, "%s is not JSON", path);
    return j;
}

static char out[1 << 16];

/* Runs a shell command line, its standard output into out; its exit status. */
static int shell(const char *cmd) {
    FILE *p = popen(cmd, "r");
    cr_assert(p, "%s", cmd);
    size_t n = fread(out, 1, sizeof out - 1, p);
    out[n] = 0;
    int st = pclose(p);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

Test(bench_serve, times_pp_and_tg_of_a_file, .init = setup, .fini = teardown) {
    char args[512], json[160];
    snprintf(json, sizeof json, "%s/serve.json", dir);
    snprintf(args, sizeof args,
             "env -u LLAMA_CPP_BIN %s bench serve --model %s -p 8 -n 6 --reps 3 --json %s",
             MQ_CLI_PATH, model, json);
    /* run_cli prefixes the CLI's path: call the shell line directly */
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "%s 2>/dev/null", args);
    cr_assert_eq(shell(cmd), 0, "%s", out);
    cr_expect(strstr(out, "| m.gguf") && strstr(out, "pp8") && strstr(out, "tg6"), "%s", out);
    cr_expect_null(strstr(out, "llama.cpp t/s"), "no llama-bench without LLAMA_CPP_BIN: %s", out);
    cJSON *j = read_json(json), *rows = cJSON_GetObjectItem(j, "serve");
    cr_assert_eq(cJSON_GetArraySize(rows), 2);
    for (int i = 0; i < 2; i++) {
        cJSON *r = cJSON_GetArrayItem(rows, i),
              *v = cJSON_GetObjectItem(r, "miniquant_tokens_per_s");
        cr_assert_eq(cJSON_GetArraySize(v), 3);
        double sum = 0;
        for (int k = 0; k < 3; k++) {
            double t = cJSON_GetArrayItem(v, k)->valuedouble;
            cr_expect(t > 0 && t < 1e9, "tokens per second %g", t);
            sum += t;
        }
        cr_expect_float_eq(cJSON_GetObjectItem(r, "miniquant_mean")->valuedouble, sum / 3, 1e-9);
    }
    cr_expect_str_eq(cJSON_GetObjectItem(cJSON_GetArrayItem(rows, 1), "test")->valuestring, "tg6");
    cJSON_Delete(j);
}

/* A stand-in llama-bench: records its arguments, prints llama-bench's JSON with the speed its
 * test asks for (pp 1000 tokens/s, tg 50). */
static const char FAKE_BENCH[] =
    "#!/bin/sh\n"
    "echo \"$@\" >> \"$(dirname \"$0\")/calls\"\n"
    "case \"$*\" in *'-n 0'*) ts=1000 ;; *) ts=50 ;; esac\n"
    "echo '[ { \"model_type\": \"gpt2 ?B stand-in\", \"n_threads\": 2,'\n"
    "echo \"  \\\"avg_ts\\\": $ts, \\\"stddev_ts\\\": 0 } ]\"\n";

Test(bench_serve, runs_llama_bench_in_turns_and_keeps_the_ratio, .init = setup, .fini = teardown) {
    char bin[128], path[192], json[160], cmd[1024];
    snprintf(bin, sizeof bin, "%s/bin", dir);
    cr_assert_eq(mkdir(bin, 0755), 0);
    snprintf(path, sizeof path, "%s/llama-bench", bin);
    write_text(path, FAKE_BENCH, 1);
    snprintf(json, sizeof json, "%s/serve.json", dir);
    snprintf(cmd, sizeof cmd,
             "LLAMA_CPP_BIN=%s %s bench serve --model %s -p 8 -n 4 --reps 3 --threads 2 "
             "--json %s --plot %s/a.png 2>/dev/null",
             bin, MQ_CLI_PATH, model, json, dir);
    cr_assert_eq(shell(cmd), 0, "%s", out);
    cr_expect(strstr(out, "llama.cpp t/s") && strstr(out, "gpt2 ?B stand-in"), "%s", out);
    /* the plot, drawn after the run and again from its JSON */
    struct stat st;
    snprintf(path, sizeof path, "%s/a.png", dir);
    cr_expect(stat(path, &st) == 0 && st.st_size > 1000, "%s", path);
    snprintf(cmd, sizeof cmd, "%s bench serve --from %s --plot %s/b.png 2>/dev/null", MQ_CLI_PATH,
             json, dir);
    cr_expect_eq(shell(cmd), 0);
    snprintf(path, sizeof path, "%s/b.png", dir);
    cr_expect(stat(path, &st) == 0 && st.st_size > 1000, "%s", path);
    /* one invocation per repetition and test, the same test, file and threads */
    char calls[4096];
    snprintf(path, sizeof path, "%s/calls", bin);
    FILE *f = fopen(path, "r");
    cr_assert(f);
    size_t n = fread(calls, 1, sizeof calls - 1, f);
    calls[n] = 0;
    fclose(f);
    char want[512];
    snprintf(want, sizeof want, "-m %s -p 8 -n 0 -r 1 -t 2 -o json\n", model);
    int pp = 0, tg = 0;
    for (char *s = calls; (s = strstr(s, want)); s++)
        pp++;
    snprintf(want, sizeof want, "-m %s -p 0 -n 4 -r 1 -t 2 -o json\n", model);
    for (char *s = calls; (s = strstr(s, want)); s++)
        tg++;
    cr_expect(pp == 3 && tg == 3, "calls: %s", calls);
    cJSON *j = read_json(json), *rows = cJSON_GetObjectItem(j, "serve");
    for (int i = 0; i < 2; i++) {
        cJSON *r = cJSON_GetArrayItem(rows, i);
        double lc = i == 0 ? 1000 : 50, mq[3];
        cJSON *v = cJSON_GetObjectItem(r, "miniquant_tokens_per_s");
        for (int k = 0; k < 3; k++)
            mq[k] = cJSON_GetArrayItem(v, k)->valuedouble;
        double lo = mq[0] < mq[1] ? mq[0] : mq[1], hi = mq[0] < mq[1] ? mq[1] : mq[0];
        double med = mq[2] < lo ? lo : mq[2] > hi ? hi : mq[2];
        cr_expect_float_eq(cJSON_GetObjectItem(r, "llamacpp_mean")->valuedouble, lc, 1e-9);
        cr_expect_float_eq(cJSON_GetObjectItem(r, "ratio_median")->valuedouble, med / lc,
                           1e-9 * med / lc);
    }
    cJSON_Delete(j);
    /* a llama-bench that fails is an error naming the file */
    snprintf(path, sizeof path, "%s/llama-bench", bin);
    write_text(path, "#!/bin/sh\necho 'error: unknown model' >&2\nexit 1\n", 1);
    snprintf(cmd, sizeof cmd,
             "LLAMA_CPP_BIN=%s %s bench serve --model %s -p 4 -n 0 --reps 1 2>&1 >/dev/null", bin,
             MQ_CLI_PATH, model);
    cr_expect_neq(shell(cmd), 0);
    cr_expect(strstr(out, "llama-bench failed on") && strstr(out, "m.gguf"), "%s", out);
}

Test(bench_serve, refuses_a_test_longer_than_the_context, .init = setup, .fini = teardown) {
    char json[160], cmd0[700];
    snprintf(json, sizeof json, "%s/none.json", dir);
    write_text(json, "{\"serve\": []}\n", 0);
    snprintf(cmd0, sizeof cmd0, "%s bench serve --from %s --plot %s/c.png 2>&1", MQ_CLI_PATH, json,
             dir);
    cr_expect_eq(shell(cmd0), 1, "a JSON without llama.cpp's numbers has nothing to plot");
    cr_expect(strstr(out, "none.json") && strstr(out, "no file with llama.cpp's pp and tg"), "%s",
              out);
    char args[512];
    snprintf(args, sizeof args, "bench serve --model %s -p 33 --reps 1", model);
    cr_expect_eq(run_cli(args, out, sizeof out), 1);
    char cmd[600];
    snprintf(cmd, sizeof cmd, "env -u LLAMA_CPP_BIN %s %s 2>&1 >/dev/null", MQ_CLI_PATH, args);
    shell(cmd);
    cr_expect(strstr(out, "pp 33 needs 33 positions; the model's context is 32") &&
                  strstr(out, "m.gguf"),
              "%s", out);
    snprintf(args, sizeof args, "bench kernels --model %s --n-gen 3", model);
    cr_expect_eq(run_cli(args, out, sizeof out), 2, "serve's option on kernels");
}

/* test-backend-ops' output, as it prints it: two cases miniquant times (q4_0 at n = 1, q4_K at
 * n = 3), a type it does not store, another batch shape, and other lines. */
static const char TBO[] =
    "Testing 1 devices\n\n"
    "Backend 1/1: CPU\n"
    "  MUL_MAT(type_a=q4_0,type_b=f32,m=64,n=1,k=256,bs=[1,1],nr=[1,1],per=[0,1,2,3]):  "
    "     690 runs -    16.00 us/run -   0.03 MFLOP/run - \x1b[1;34m  2.05 GFLOPS\x1b[0m\n"
    "  MUL_MAT(type_a=iq2_xxs,type_b=f32,m=64,n=1,k=256,bs=[1,1],nr=[1,1],per=[0,1,2,3]):  "
    "     483 runs -    22.00 us/run -   0.03 MFLOP/run - \x1b[1;34m  1.49 GFLOPS\x1b[0m\n"
    "  MUL_MAT(type_a=q4_K,type_b=f32,m=32,n=3,k=512,bs=[1,1],nr=[1,1],per=[0,1,2,3]):  "
    "     897 runs -    40.00 us/run -   0.10 MFLOP/run - \x1b[1;34m  2.46 GFLOPS\x1b[0m\n"
    "  MUL_MAT(type_a=f32,type_b=f32,m=64,n=1,k=256,bs=[2,1],nr=[1,1],per=[0,1,2,3]):  "
    "     100 runs -    10.00 us/run -   0.03 MFLOP/run - \x1b[1;34m  3.28 GFLOPS\x1b[0m\n"
    "  MUL_MAT(type_a=f16,type_b=f32,m=64,n=1,k=256,bs=[1,1],nr=[1,1]): not supported\n"
    "  1491/1491 backends passed\n";

Test(bench_mulmat, times_the_cases_of_test_backend_ops, .init = setup, .fini = teardown) {
    char from[160], json[160], args[512];
    snprintf(from, sizeof from, "%s/tbo.txt", dir);
    snprintf(json, sizeof json, "%s/mulmat.json", dir);
    write_text(from, TBO, 0);
    snprintf(args, sizeof args, "bench mulmat --from %s --reps 3 --json %s", from, json);
    cr_assert_eq(run_cli(args, out, sizeof out), 0, "%s", out);
    cr_expect(strstr(out, "| q4_0 ") && strstr(out, "| q4_K "), "%s", out);
    cr_expect_null(strstr(out, "iq2_xxs"), "%s", out);
    cJSON *j = read_json(json), *rows = cJSON_GetObjectItem(j, "mulmat");
    cr_assert_eq(cJSON_GetArraySize(rows), 2);
    cJSON *r = cJSON_GetArrayItem(rows, 1);
    cr_expect_eq(cJSON_GetObjectItem(r, "m")->valueint, 32);
    cr_expect_eq(cJSON_GetObjectItem(r, "n")->valueint, 3);
    cr_expect_eq(cJSON_GetObjectItem(r, "k")->valueint, 512);
    double us = cJSON_GetObjectItem(r, "miniquant_us")->valuedouble;
    cr_expect(us > 0, "%g", us);
    cr_expect_float_eq(cJSON_GetObjectItem(r, "miniquant_speed_vs_ggml")->valuedouble, 40.0 / us,
                       1e-9 * 40.0 / us);
    cJSON_Delete(j);
    /* nothing to time, no source, a source that is not test-backend-ops' output */
    write_text(from, "hello\n", 0);
    cr_expect_eq(run_cli(args, out, sizeof out), 1);
    char cmd[700];
    snprintf(cmd, sizeof cmd, "%s %s 2>&1 >/dev/null", MQ_CLI_PATH, args);
    shell(cmd);
    cr_expect(strstr(out, "tbo.txt: no MUL_MAT case"), "%s", out);
    snprintf(cmd, sizeof cmd, "env -u LLAMA_CPP_BIN %s bench mulmat 2>&1 >/dev/null", MQ_CLI_PATH);
    cr_expect_eq(shell(cmd), 1);
    cr_expect(strstr(out, "LLAMA_CPP_BIN"), "%s", out);
}
