#define _GNU_SOURCE
#include <cblas.h>
#include <lapack.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include "miniquant/report.h"

void mq_utc_now(char *buf, size_t n) {
    time_t t = time(NULL);
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(buf, n, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

/* First line of a command's output, trimmed ("" when it fails). */
static void first_line(const char *cmd, char *buf, size_t n) {
    buf[0] = '\0';
    FILE *p = popen(cmd, "r");
    if (!p) return;
    if (!fgets(buf, (int)n, p)) buf[0] = '\0';
    pclose(p);
    buf[strcspn(buf, "\r\n")] = '\0';
}

/* The value of "key : value" in /proc/cpuinfo or "Key: value" in /proc/meminfo. */
static void proc_field(const char *path, const char *key, char *buf, size_t n) {
    buf[0] = '\0';
    FILE *f = fopen(path, "r");
    if (!f) return;
    char line[8192];
    size_t kl = strlen(key);
    while (fgets(line, sizeof line, f)) {
        if (strncmp(line, key, kl) != 0) continue;
        char *c = strchr(line, ':');
        if (!c) continue;
        c++;
        while (*c == ' ' || *c == '\t') c++;
        c[strcspn(c, "\n")] = '\0';
        snprintf(buf, n, "%s", c);
        break;
    }
    fclose(f);
}

cJSON *mq_manifest(uint64_t seed, cJSON *config) {
    cJSON *m = cJSON_CreateObject();
    char buf[8192];
    mq_utc_now(buf, sizeof buf);
    cJSON_AddStringToObject(m, "date", buf);
    cJSON_AddNumberToObject(m, "seed", (double)seed);
    if (config) cJSON_AddItemToObject(m, "config", config);

    cJSON *v = cJSON_AddObjectToObject(m, "versions");
    cJSON_AddStringToObject(v, "miniquant", MQ_VERSION);
#ifdef __clang__
    cJSON_AddStringToObject(v, "compiler", "clang " __clang_version__);
#else
    cJSON_AddStringToObject(v, "compiler", "gcc " __VERSION__);
#endif
    snprintf(buf, sizeof buf, "%d", _OPENMP);
    cJSON_AddStringToObject(v, "openmp", buf);
    cJSON_AddStringToObject(v, "openblas", openblas_get_config());
    lapack_int maj = 0, min = 0, pat = 0;
    LAPACK_ilaver(&maj, &min, &pat);
    snprintf(buf, sizeof buf, "%d.%d.%d", (int)maj, (int)min, (int)pat);
    cJSON_AddStringToObject(v, "lapack", buf);
    cJSON_AddStringToObject(v, "cjson", cJSON_Version());
    char pv[64] = "";
    pcre2_config(PCRE2_CONFIG_VERSION, pv);
    cJSON_AddStringToObject(v, "pcre2", pv);
    first_line("gnuplot --version 2>/dev/null", buf, sizeof buf);
    cJSON_AddStringToObject(v, "gnuplot", buf);
    first_line("dpkg-query -W -f='${Version}' wordnet-base 2>/dev/null", buf, sizeof buf);
    cJSON_AddStringToObject(v, "wordnet-base", buf);

    cJSON *h = cJSON_AddObjectToObject(m, "hardware");
    proc_field("/proc/cpuinfo", "model name", buf, sizeof buf);
    cJSON_AddStringToObject(h, "cpu", buf);
    cJSON_AddNumberToObject(h, "cores", (double)sysconf(_SC_NPROCESSORS_ONLN));
    cJSON_AddNumberToObject(h, "threads_used", omp_get_max_threads());
    proc_field("/proc/cpuinfo", "flags", buf, sizeof buf);
    static const char *const wanted[] = {"sse4_2", "avx", "f16c", "fma", "avx2", "avx512f",
                                         "avx512bw", "avx512vl", "avx512_vnni", "avx512_bf16",
                                         "avx512_fp16", "amx_tile", "amx_int8", "amx_bf16"};
    cJSON *fl = cJSON_AddArrayToObject(h, "simd_flags");
    for (size_t i = 0; i < sizeof wanted / sizeof wanted[0]; i++) {
        char pat1[64];
        snprintf(pat1, sizeof pat1, " %s ", wanted[i]);
        char padded[8200];
        snprintf(padded, sizeof padded, " %s ", buf);
        if (strstr(padded, pat1)) cJSON_AddItemToArray(fl, cJSON_CreateString(wanted[i]));
    }
    proc_field("/proc/meminfo", "MemTotal", buf, sizeof buf);
    cJSON_AddStringToObject(h, "memory", buf);

    cJSON *g = cJSON_AddObjectToObject(m, "source");
    first_line("git rev-parse HEAD 2>/dev/null", buf, sizeof buf);
    cJSON_AddStringToObject(g, "git_revision", buf[0] ? buf : "unknown");
    first_line("git status --porcelain --untracked-files=no 2>/dev/null | head -1", buf, sizeof buf);
    cJSON_AddBoolToObject(g, "uncommitted_changes", buf[0] != '\0');
    return m;
}
