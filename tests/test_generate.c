/* Tests of generation (src/model/generate.c): the sampler's greedy choice, top-k order, top-p
 * cut and draw frequencies against the softmax; the generation loop against a full forward over
 * the tokens so far, across context shifts, on both architectures; stop tokens, the callback,
 * determinism and the errors. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "fixture.h"
#include "models.h"
#include "miniquant/checkpoint.h"
#include "miniquant/generate.h"
#include "miniquant/rng.h"

static mq_sampler_t sampler(float temp, int top_k, float top_p, uint64_t seed, int V) {
    mq_sampler_t s;
    mq_sampling_t p = {temp, top_k, top_p, seed};
    mq_error_t err = {0};
    cr_assert_eq(mq_sampler_init(&s, &p, V, &err), MQ_OK, "%s", err.msg);
    return s;
}

Test(sampler, greedy_takes_the_largest_logit_and_the_lowest_id_on_ties) {
    float logits[6] = {0.5f, 2.0f, -1.0f, 2.0f, 1.9f, -INFINITY};
    mq_sampler_t s = sampler(0.0f, 40, 0.95f, 1, 6);
    cr_expect_eq(mq_sampler_next(&s, logits), 1);
    logits[4] = 2.5f;
    cr_expect_eq(mq_sampler_next(&s, logits), 4);
    mq_sampler_free(&s);
    /* top-k 1 at any temperature is greedy too */
    s = sampler(1.5f, 1, 1.0f, 9, 6);
    for (int i = 0; i < 20; i++)
        cr_expect_eq(mq_sampler_next(&s, logits), 4);
    mq_sampler_free(&s);
}

static const float *ref_logits;
static int cmp_ref(const void *a, const void *b) {
    int32_t x = *(const int32_t *)a, y = *(const int32_t *)b;
    if (ref_logits[x] != ref_logits[y]) return ref_logits[x] > ref_logits[y] ? -1 : 1;
    return x < y ? -1 : x > y;
}

Test(sampler, top_k_keeps_the_k_best_in_order_of_a_full_sort) {
    enum { V = 1000 };
    static float logits[V];
    static int32_t order[V];
    mq_rng_t r;
    mq_rng_seed(&r, 5);
    static const int KS[] = {1, 2, 7, 40, 999, 1000, 0};
    for (int trial = 0; trial < 20; trial++) {
        for (int v = 0; v < V; v++) /* coarse values: many ties */
            logits[v] = (float)mq_rng_below(&r, trial % 2 ? 50 : 100000);
        for (int v = 0; v < V; v++)
            order[v] = v;
        ref_logits = logits;
        qsort(order, V, sizeof *order, cmp_ref);
        for (size_t k = 0; k < sizeof KS / sizeof KS[0]; k++) {
            mq_sampler_t s = sampler(1.0f, KS[k], 1.0f, 1, V);
            int32_t t = mq_sampler_next(&s, logits);
            int n = KS[k] ? KS[k] : V;
            cr_assert_eq(memcmp(s.idx, order, (size_t)n * sizeof *order), 0,
                         "trial %d, k %d: candidates not the k best in order", trial, KS[k]);
            int found = 0;
            for (int i = 0; i < n; i++)
                found |= s.idx[i] == t;
            cr_expect(found, "drawn token %d is not among the k best", t);
            mq_sampler_free(&s);
        }
    }
}

/* Draw frequencies of 40,000 draws against the probabilities, each within 5 standard
 * deviations of the binomial. */
static void expect_frequencies(mq_sampler_t *s, const float *logits, int V, const double *want) {
    enum { DRAWS = 40000 };
    int count[16] = {0};
    for (int i = 0; i < DRAWS; i++) {
        int32_t t = mq_sampler_next(s, logits);
        cr_assert(t >= 0 && t < V);
        count[t]++;
    }
    for (int v = 0; v < V; v++) {
        double sd = sqrt(DRAWS * want[v] * (1.0 - want[v])) + 1e-9;
        cr_expect(fabs(count[v] - DRAWS * want[v]) <= 5.0 * sd + 0.5,
                  "token %d drawn %d times, expected %.0f", v, count[v], DRAWS * want[v]);
    }
}

Test(sampler, draws_follow_the_tempered_softmax_after_top_k_and_top_p) {
    /* probabilities 0.5, 0.3, 0.15, 0.05 at temperature 1 */
    const double p[4] = {0.5, 0.3, 0.15, 0.05};
    float logits[4];
    for (int v = 0; v < 4; v++)
        logits[v] = (float)log(p[v]) + 3.0f;
    mq_sampler_t s = sampler(1.0f, 0, 1.0f, 42, 4);
    expect_frequencies(&s, logits, 4, p);
    mq_sampler_free(&s);
    /* temperature 2: p^(1/2), renormalised */
    double t2[4], sum = 0.0;
    for (int v = 0; v < 4; v++)
        sum += t2[v] = sqrt(p[v]);
    for (int v = 0; v < 4; v++)
        t2[v] /= sum;
    s = sampler(2.0f, 0, 1.0f, 43, 4);
    expect_frequencies(&s, logits, 4, t2);
    mq_sampler_free(&s);
    /* top-k 3: the fourth never, the rest renormalised */
    const double k3[4] = {0.5 / 0.95, 0.3 / 0.95, 0.15 / 0.95, 0.0};
    s = sampler(1.0f, 3, 1.0f, 44, 4);
    expect_frequencies(&s, logits, 4, k3);
    mq_sampler_free(&s);
    /* top-p 0.75: 0.5 is short of it, 0.5 + 0.3 reaches it: two tokens. The cut is made before
     * the temperature (llama.cpp's order), so temperature 2 keeps the same two. */
    double p2[4] = {0.5 / 0.8, 0.3 / 0.8, 0.0, 0.0};
    s = sampler(1.0f, 0, 0.75f, 45, 4);
    expect_frequencies(&s, logits, 4, p2);
    mq_sampler_free(&s);
    sum = sqrt(0.5) + sqrt(0.3);
    p2[0] = sqrt(0.5) / sum;
    p2[1] = sqrt(0.3) / sum;
    s = sampler(2.0f, 0, 0.75f, 46, 4);
    expect_frequencies(&s, logits, 4, p2);
    mq_sampler_free(&s);
}

Test(sampler, the_same_seed_draws_the_same_tokens) {
    float logits[64];
    for (int v = 0; v < 64; v++)
        logits[v] = (float)sin(v);
    int32_t a[50], b[50], c[50];
    mq_sampler_t s = sampler(1.0f, 20, 0.9f, 7, 64);
    for (int i = 0; i < 50; i++)
        a[i] = mq_sampler_next(&s, logits);
    mq_sampler_free(&s);
    s = sampler(1.0f, 20, 0.9f, 7, 64);
    for (int i = 0; i < 50; i++)
        b[i] = mq_sampler_next(&s, logits);
    mq_sampler_free(&s);
    s = sampler(1.0f, 20, 0.9f, 8, 64);
    for (int i = 0; i < 50; i++)
        c[i] = mq_sampler_next(&s, logits);
    mq_sampler_free(&s);
    cr_expect_eq(memcmp(a, b, sizeof a), 0);
    cr_expect_neq(memcmp(a, c, sizeof a), 0, "seeds 7 and 8 drew the same 50 tokens");
}

Test(sampler, bad_parameters_are_refused) {
    mq_sampler_t s;
    mq_error_t err = {0};
    const mq_sampling_t bad[] = {
        {-0.1f, 40, 0.9f, 1}, {NAN, 40, 0.9f, 1},  {1.0f, -1, 0.9f, 1},
        {1.0f, 40, 0.0f, 1},  {1.0f, 40, 1.5f, 1},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        cr_expect_eq(mq_sampler_init(&s, &bad[i], 10, &err), MQ_ERR_ARG, "case %zu", i);
        cr_expect(strstr(err.msg, "sampling"), "%s", err.msg);
    }
    const mq_sampling_t ok = {1.0f, 40, 0.9f, 1};
    cr_expect_eq(mq_sampler_init(&s, &ok, 0, &err), MQ_ERR_ARG);
}

/* ---------------------------------------------------------------------------------------------
 * the generation loop */

/* V = 40, maxT = 10; llama: RoPE on all 8 dimensions of each head */
static void small_model(mq_gpt_t *m, int arch) {
    random_model(m, arch, 40, 10, 8, 21);
}

typedef struct seen {
    int32_t tok[256];
    int n, stop_after;
} seen_t;

static int record(void *ctx, int32_t t) {
    seen_t *s = ctx;
    s->tok[s->n++] = t;
    return s->stop_after && s->n >= s->stop_after;
}

/* Greedy generation of n tokens from prompt checked token by token against a forward over the
 * window of tokens the loop's cache holds (after a shift: the last half of the tokens so far):
 * each generated token must be the forward's argmax up to FP32 rounding. Returns the shifts. */
static int check_greedy(mq_gpt_t *m, const int32_t *prompt, int n_prompt, int n) {
    mq_sampler_t s = sampler(0.0f, 40, 0.95f, 1, m->cfg.vocab_size);
    seen_t seen = {0};
    mq_generation_t g;
    mq_error_t err = {0};
    cr_assert_eq(mq_generate(m, prompt, (size_t)n_prompt, n, NULL, 0, &s, record, &seen, &g, &err),
                 MQ_OK, "%s", err.msg);
    cr_assert_eq(g.tokens, n);
    cr_assert_eq(seen.n, n);
    cr_expect_eq(g.eval_steps + g.shifts - (n_prompt > m->cfg.n_ctx), n - 1);
    int T = m->cfg.n_ctx, V = m->cfg.vocab_size, keep = T / 2;
    int hist[256], nh = n_prompt, from = n_prompt > T ? n_prompt - keep : 0;
    memcpy(hist, prompt, (size_t)n_prompt * sizeof *hist);
    for (int i = 0; i < n; i++) {
        if (nh - from > T) from = nh - 1 - keep + 1; /* the loop re-fed the last half */
        int len = nh - from;
        cr_assert_eq(mq_gpt_forward(m, hist + from, NULL, 1, len, &err), MQ_OK, "%s", err.msg);
        const float *l = m->acts.logits + (size_t)(len - 1) * V;
        float best = l[0];
        for (int v = 1; v < V; v++)
            best = l[v] > best ? l[v] : best;
        cr_assert(l[seen.tok[i]] >= best - 1e-4f * (1.0f + fabsf(best)),
                  "token %d: %d has logit %g, the best is %g", i, seen.tok[i], l[seen.tok[i]],
                  best);
        hist[nh++] = seen.tok[i];
    }
    mq_sampler_free(&s);
    return g.shifts;
}

Test(generate, greedy_tokens_are_the_forwards_argmax_across_context_shifts) {
    for (int arch = MQ_ARCH_GPT2; arch <= MQ_ARCH_LLAMA; arch++) {
        mq_gpt_t m;
        small_model(&m, arch);
        const int32_t prompt[14] = {3, 17, 5, 29, 11, 0, 8, 39, 2, 21, 13, 30, 7, 1};
        cr_expect_eq(check_greedy(&m, prompt, 3, 5), 0);  /* within the context */
        cr_expect_eq(check_greedy(&m, prompt, 3, 30), 4); /* full at 10, then every 5 */
        cr_expect_eq(check_greedy(&m, prompt, 14, 6), 1); /* a prompt longer than the context */
        mq_gpt_free(&m);
    }
}

Test(generate, stop_tokens_and_the_callback_end_it) {
    mq_gpt_t m;
    small_model(&m, MQ_ARCH_GPT2);
    const int32_t prompt[2] = {4, 9};
    mq_error_t err = {0};
    mq_generation_t g;
    /* greedy: the tokens it would give */
    mq_sampler_t s = sampler(0.0f, 0, 1.0f, 1, 40);
    seen_t all = {0};
    cr_assert_eq(mq_generate(&m, prompt, 2, 8, NULL, 0, &s, record, &all, &g, &err), MQ_OK);
    /* the third as a stop token: two tokens passed on, the stop not */
    seen_t part = {0};
    int32_t stop[1] = {all.tok[2]};
    int first = 0;
    while (all.tok[first] != stop[0])
        first++;
    cr_assert_eq(mq_generate(&m, prompt, 2, 8, stop, 1, &s, record, &part, &g, &err), MQ_OK);
    cr_expect_eq(part.n, first);
    cr_expect_eq(g.tokens, first);
    cr_expect(g.stopped);
    cr_expect_eq(memcmp(part.tok, all.tok, (size_t)first * sizeof *all.tok), 0);
    /* the callback asks to stop after 3 */
    seen_t three = {.stop_after = 3};
    cr_assert_eq(mq_generate(&m, prompt, 2, 8, NULL, 0, &s, record, &three, &g, &err), MQ_OK);
    cr_expect_eq(three.n, 3);
    cr_expect_eq(g.tokens, 3);
    cr_expect_not(g.stopped);
    /* sampled: the same seed, the same text */
    mq_sampler_free(&s);
    seen_t a = {0}, b = {0};
    s = sampler(1.0f, 10, 0.9f, 5, 40);
    cr_assert_eq(mq_generate(&m, prompt, 2, 40, NULL, 0, &s, record, &a, &g, &err), MQ_OK);
    mq_sampler_free(&s);
    s = sampler(1.0f, 10, 0.9f, 5, 40);
    cr_assert_eq(mq_generate(&m, prompt, 2, 40, NULL, 0, &s, record, &b, &g, &err), MQ_OK);
    cr_expect_eq(a.n, 40);
    cr_expect_eq(memcmp(a.tok, b.tok, sizeof a.tok), 0);
    /* refusals */
    const int32_t bad[2] = {4, 40};
    cr_expect_eq(mq_generate(&m, prompt, 0, 8, NULL, 0, &s, NULL, NULL, &g, &err), MQ_ERR_ARG);
    cr_expect_eq(mq_generate(&m, bad, 2, 8, NULL, 0, &s, NULL, NULL, &g, &err), MQ_ERR_ARG);
    cr_expect(strstr(err.msg, "prompt token 1 is 40"), "%s", err.msg);
    cr_expect_eq(mq_generate(&m, prompt, 2, -1, NULL, 0, &s, NULL, NULL, &g, &err), MQ_ERR_ARG);
    mq_sampler_free(&s);
    s = sampler(1.0f, 10, 0.9f, 5, 41);
    cr_expect_eq(mq_generate(&m, prompt, 2, 8, NULL, 0, &s, NULL, NULL, &g, &err), MQ_ERR_ARG);
    mq_sampler_free(&s);
    mq_gpt_free(&m);
}

/* ---------------------------------------------------------------------------------------------
 * miniquant generate */

/* Runs `miniquant ARGS` with stdout into out and stderr into errout; its exit status. */
static int run_both(const char *args, char *out, size_t size, char *errout, size_t esize) {
    char cmd[1024], path[64] = "/tmp/mq-generate-stderr-XXXXXX";
    int fd = mkstemp(path);
    cr_assert(fd >= 0);
    close(fd);
    snprintf(cmd, sizeof cmd, "%s %s 2>%s", MQ_CLI_PATH, args, path);
    FILE *p = popen(cmd, "r");
    cr_assert(p);
    size_t n = fread(out, 1, size - 1, p);
    out[n] = '\0';
    int st = pclose(p);
    FILE *e = fopen(path, "r");
    cr_assert(e);
    n = fread(errout, 1, esize - 1, e);
    errout[n] = '\0';
    fclose(e);
    unlink(path);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

Test(generate_cli, streams_the_prompt_and_its_continuation_and_times_on_stderr) {
    mq_tokenizer_t *tok;
    mq_tokens_t stream;
    fixture_stream(&tok, &stream);
    mq_gpt_t m;
    fixture_model(&m, 3);
    char dir[] = "/tmp/mq-generate-XXXXXX", model[128], args[512];
    cr_assert(mkdtemp(dir));
    snprintf(model, sizeof model, "%s/m.gguf", dir);
    mq_error_t err = {0};
    cr_assert_eq(mq_checkpoint_save(model, &m, tok, NULL, &err), MQ_OK, "%s", err.msg);
    static char a[8192], b[8192], ea[8192], eb[8192];
    snprintf(args, sizeof args, "generate --model %s -p 'the cat' -n 20 --seed 3 --ignore-eos",
             model);
    cr_assert_eq(run_both(args, a, sizeof a, ea, sizeof ea), 0, "%s", ea);
    cr_assert_eq(run_both(args, b, sizeof b, eb, sizeof eb), 0, "%s", eb);
    cr_expect(!strncmp(a, "the cat", 7) && strlen(a) > 8, "%s", a);
    cr_expect_str_eq(a, b, "the same seed gave another text");
    cr_expect(strstr(ea, "20 generated") && strstr(ea, "prompt eval time") &&
                  strstr(ea, "eval time") && strstr(ea, "tokens per second"),
              "%s", ea);
    cr_expect_null(strstr(a, "eval time"), "timings on stdout: %s", a);
    /* the generated text is the decoded tokens: greedy output equals the library's greedy
     * tokens decoded */
    snprintf(args, sizeof args, "generate --model %s -p 'the cat' -n 12 --temp 0 --ignore-eos",
             model);
    cr_assert_eq(run_both(args, a, sizeof a, ea, sizeof ea), 0, "%s", ea);
    int32_t *ids;
    size_t n;
    cr_assert_eq(mq_tokenizer_encode(tok, "the cat", 7, MQ_TOK_ADD_SPECIAL, &ids, &n, &err), MQ_OK);
    int32_t prompt[64];
    prompt[0] = mq_tokenizer_eot(tok);
    cr_assert(prompt[0] >= 0 && n < 60);
    memcpy(prompt + 1, ids, n * sizeof *ids);
    free(ids);
    mq_sampler_t s = sampler(0.0f, 40, 0.95f, 1, m.cfg.vocab_size);
    seen_t seen = {0};
    mq_generation_t g;
    cr_assert_eq(mq_generate(&m, prompt, n + 1, 12, NULL, 0, &s, record, &seen, &g, &err), MQ_OK);
    char *text;
    size_t len;
    cr_assert_eq(mq_tokenizer_decode(tok, seen.tok, (size_t)seen.n, &text, &len, &err), MQ_OK);
    int ends_line = len > 0 && text[len - 1] == '\n';
    cr_expect(!strncmp(a + 7, text, len) && !strcmp(a + 7 + len, ends_line ? "" : "\n"),
              "CLI '%s', library '%s'", a, text);
    free(text);
    mq_sampler_free(&s);
    /* a missing model: a message naming it, non-zero, nothing on stdout */
    snprintf(args, sizeof args, "generate --model %s/none.gguf -p 'x'", dir);
    cr_expect_eq(run_both(args, a, sizeof a, ea, sizeof ea), 1);
    cr_expect(strstr(ea, "none.gguf"), "%s", ea);
    cr_expect_str_empty(a);
    cr_expect_eq(run_both("generate -p x", a, sizeof a, ea, sizeof ea), 2);
    unlink(model);
    rmdir(dir);
    mq_gpt_free(&m);
    mq_tokenizer_free(tok);
    mq_tokens_free(&stream);
}
