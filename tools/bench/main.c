/*
 * main.c - landro-bench: command table and shared helpers.
 *
 *   landro-bench cdc   [--bytes N]             FastCDC chunking throughput
 *   landro-bench hash  [--bytes N] [--block B] SHA-256 throughput
 *   landro-bench store --dir D [--bytes N]     LMDB chunk put/get and
 *                                              st_file_write throughput
 *   landro-bench tombs --dir D [--files N]     forgetting deleted files
 *   landro-bench scatter --dir D [--bytes N] [--writes K] [--batches B]
 *                                              committing scattered 4 KiB
 *                                              writes, one by one and joined
 *
 * Sizes take K, M, G suffixes (binary). Figures go to stdout, one per line.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bench.h"

static const struct {
    const char *name;
    int (*fn)(int argc, char **argv);
    const char *help;
} commands[] = {
    { "cdc", bench_cdc_main, "[--bytes N]: FastCDC chunking throughput (default 1G)" },
    { "hash", bench_hash_main, "[--bytes N] [--block B]: SHA-256 throughput (default 1G in 64K blocks)" },
    { "store", bench_store_main, "--dir D [--bytes N] [--batch K]: chunk put/get and st_file_write (default 1G, 256 per txn)" },
    { "scatter", bench_scatter_main, "--dir D [--bytes N] [--writes K] [--batches B]: K random 4 KiB writes per txn into an N-byte file, one by one and through st_file_writev (default 256M, 4096, 8)" },
    { "tombs", bench_tombs_main, "--dir D [--files N]: forgetting N deleted files: scan, forget, compact (default 200000)" },
};

static void usage(FILE *f)
{
    fprintf(f, "usage: landro-bench COMMAND [OPTIONS]\n");
    for (size_t i = 0; i < LR_ARRAY_SIZE(commands); i++)
        fprintf(f, "  %-7s %s\n", commands[i].name, commands[i].help);
}

int bench_parse_size(const char *s, uint64_t *out)
{
    char *end;
    if (!s || !*s)
        return -EINVAL;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || end == s)
        return -EINVAL;
    unsigned shift = 0;
    switch (*end) {
    case 'k': case 'K': shift = 10; end++; break;
    case 'm': case 'M': shift = 20; end++; break;
    case 'g': case 'G': shift = 30; end++; break;
    default: break;
    }
    if (*end || v == 0 || v > (UINT64_MAX >> shift))
        return -EINVAL;
    *out = (uint64_t)v << shift;
    return 0;
}

int bench_parse_opts(const char *cmd, int argc, char **argv, const struct bench_opt *opts, size_t n)
{
    for (int i = 1; i < argc; i++) {
        const struct bench_opt *o = NULL;
        for (size_t k = 0; k < n && !o; k++)
            if (!strcmp(argv[i], opts[k].name))
                o = &opts[k];
        if (!o || i + 1 >= argc) {
            fprintf(stderr, "landro-bench %s: unknown option '%s'\n", cmd, argv[i]);
            return 2;
        }
        i++;
        if (!o->size) {
            *o->str = argv[i];
        } else if (bench_parse_size(argv[i], o->size)) {
            fprintf(stderr, "landro-bench %s: bad number '%s' for %s\n", cmd, argv[i], o->name);
            return 2;
        }
    }
    return 0;
}

int bench_need_dir(const char *cmd, const char *dir)
{
    if (dir)
        return 0;
    fprintf(stderr, "landro-bench %s: --dir DIR is required (a fresh directory)\n", cmd);
    return 2;
}

void bench_fill(void *buf, size_t len, uint64_t seed)
{
    uint8_t *p = buf;
    uint64_t x = seed * 0x9E3779B97F4A7C15ull + 0x2545F4914F6CDD1Dull;
    size_t i = 0;
    for (; i + 8 <= len; i += 8) {
        x ^= x >> 12; x ^= x << 25; x ^= x >> 27;
        uint64_t v = x * 0x2545F4914F6CDD1Dull;
        memcpy(p + i, &v, 8);
    }
    for (; i < len; i++) {
        x ^= x >> 12; x ^= x << 25; x ^= x >> 27;
        p[i] = (uint8_t)((x * 0x2545F4914F6CDD1Dull) >> 56);
    }
}

uint64_t bench_cpu_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

uint8_t *bench_alloc_random(size_t len, uint64_t seed)
{
    uint8_t *b = malloc(len ? len : 1);
    if (!b) {
        fprintf(stderr, "landro-bench: cannot allocate %zu bytes\n", len);
        exit(1);
    }
    bench_fill(b, len, seed);
    return b;
}

int main(int argc, char **argv)
{
    if (argc < 2 || !strcmp(argv[1], "-h") || !strcmp(argv[1], "--help")) {
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    for (size_t i = 0; i < LR_ARRAY_SIZE(commands); i++)
        if (!strcmp(argv[1], commands[i].name))
            return commands[i].fn(argc - 1, argv + 1);
    fprintf(stderr, "landro-bench: unknown command '%s'\n", argv[1]);
    usage(stderr);
    return 2;
}
