/*
 * t.h - landro's tiny unit-test harness (header only).
 *
 *   static void test_put_then_get(void) { ... T_EQ(a, b); ... }
 *   int main(void) { T_RUN(test_put_then_get); return t_done(); }
 *
 * Each T_RUN runs one test function; a failed check prints the file, line,
 * the expression, what was expected and what came, marks the test failed and
 * returns from the test function. t_done() prints "<prog>: N passed, N failed"
 * and returns the exit status. Single-threaded use only.
 */
#ifndef T_H
#define T_H

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int t_pass, t_fail, t_cur_failed;
static const char *t_cur;

#define T_FAILF(...) do { \
        fprintf(stderr, "  FAIL %s (%s:%d): ", t_cur, __FILE__, __LINE__); \
        fprintf(stderr, __VA_ARGS__); fputc('\n', stderr); \
        t_cur_failed = 1; return; } while (0)

#define T_TRUE(e) do { if (!(e)) T_FAILF("expected %s to hold", #e); } while (0)
#define T_EQ(a, b) do { long long t_a_ = (long long)(a), t_b_ = (long long)(b); \
        if (t_a_ != t_b_) T_FAILF("%s == %s: expected %lld, got %lld", #a, #b, t_b_, t_a_); } while (0)
#define T_OK(e) do { int t_r_ = (e); \
        if (t_r_ != 0) T_FAILF("%s: expected 0, got %d (%s)", #e, t_r_, lr_strerror(t_r_)); } while (0)
#define T_ERR(e, want) do { int t_r_ = (e); \
        if (t_r_ != (want)) T_FAILF("%s: expected %d (%s), got %d (%s)", #e, (int)(want), \
                                    lr_strerror(want), t_r_, lr_strerror(t_r_)); } while (0)
#define T_MEM(a, b, n) do { if (memcmp((a), (b), (n)) != 0) \
        T_FAILF("%s and %s differ in their first %zu bytes", #a, #b, (size_t)(n)); } while (0)

#define T_RUN(fn) do { t_cur = #fn; t_cur_failed = 0; fn(); \
        if (t_cur_failed) { t_fail++; printf("not ok - %s\n", #fn); } \
        else { t_pass++; printf("ok - %s\n", #fn); } fflush(stdout); } while (0)

static inline int t_done(void)
{
    extern const char *__progname;
    printf("%s: %d passed, %d failed\n", __progname, t_pass, t_fail);
    return t_fail ? 1 : 0;
}

/* A fresh empty directory under $TMPDIR (or /tmp); caller removes it. */
static inline char *t_tmpdir(void)
{
    const char *base = getenv("TMPDIR");
    char *p = malloc(4096);
    snprintf(p, 4096, "%s/landro-test-XXXXXX", base ? base : "/tmp");
    if (!mkdtemp(p)) { perror("mkdtemp"); exit(2); }
    return p;
}

static inline void t_rmrf(const char *dir)
{
    char cmd[4200];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    if (system(cmd) != 0) fprintf(stderr, "cannot remove '%s'\n", dir);
}

/* Deterministic pseudo-random bytes (xorshift64*), for test data. */
static inline void t_fill(void *buf, size_t len, uint64_t seed)
{
    uint8_t *p = buf;
    uint64_t x = seed * 0x9E3779B97F4A7C15ull + 1;
    for (size_t i = 0; i < len; i++) {
        x ^= x >> 12; x ^= x << 25; x ^= x >> 27;
        p[i] = (uint8_t)((x * 0x2545F4914F6CDD1Dull) >> 56);
    }
}

#endif
