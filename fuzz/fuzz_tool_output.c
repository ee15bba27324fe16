/* The outputs of llama.cpp's tools that miniquant reads (bench serve, bench mulmat) on arbitrary
 * bytes: the first byte chooses the reader, the rest is its text.
 *
 *   even: llama-bench's JSON (cli_llama_bench_parse). Accepted: a finite speed above 0 and below
 *         1e12, the model type a terminated string in its buffer.
 *   odd:  one line of test-backend-ops perf -o MUL_MAT (cli_mulmat_parse_line). Accepted: sizes
 *         in their ranges, a finite time above 0, type names terminated in their buffers. */
#include <math.h>

#include "bench_mulmat.h"
#include "bench_serve.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    char *text = malloc(size);
    if (!text) return 0;
    memcpy(text, data + 1, size - 1);
    text[size - 1] = '\0';
    if (data[0] % 2 == 0) {
        double tps = -1.0;
        char type[16] = "";
        if (cli_llama_bench_parse(text, &tps, type, sizeof type) == 0) {
            FUZZ_CHECK(isfinite(tps) && tps > 0 && tps < 1e12, "speed %g", tps);
            FUZZ_CHECK(memchr(type, '\0', sizeof type) != NULL, "type not terminated");
        } else
            FUZZ_CHECK(tps == -1.0, "a refused output set the speed");
    } else {
        cli_mulmat_case_t c;
        if (cli_mulmat_parse_line(text, &c)) {
            FUZZ_CHECK(c.m >= 1 && c.m <= (1 << 20) && c.n >= 1 && c.n <= (1 << 16) && c.k >= 1 &&
                           c.k <= (1 << 20),
                       "sizes %d %d %d", c.m, c.n, c.k);
            FUZZ_CHECK(isfinite(c.us_per_run) && c.us_per_run > 0, "time %g", c.us_per_run);
            FUZZ_CHECK(memchr(c.type_a, '\0', sizeof c.type_a) &&
                           memchr(c.type_b, '\0', sizeof c.type_b),
                       "type names not terminated");
        }
    }
    free(text);
    return 0;
}
