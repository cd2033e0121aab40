/*
 * cmd_hash.c - `landro-bench hash`: SHA-256 (st_hash_compute, wolfCrypt)
 * throughput over random bytes in memory, hashed block by block as the
 * store names chunks, one core.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"
#include "hash.h"

int bench_hash_main(int argc, char **argv)
{
    uint64_t bytes = 1ull << 30, block = 64 * 1024;
    const struct bench_opt opts[] = { { "--bytes", &bytes, NULL }, { "--block", &block, NULL } };
    if (bench_parse_opts("hash", argc, argv, opts, LR_ARRAY_SIZE(opts)))
        return 2;
    if (block > bytes)
        block = bytes;
    uint8_t *buf = bench_alloc_random(bytes, 2);
    double best = 0;
    uint8_t acc = 0;
    uint64_t cpu0 = bench_cpu_ns();
    for (int pass = 0; pass < 3; pass++) {
        uint64_t t0 = lr_now_mono_ns();
        for (uint64_t off = 0; off < bytes; off += block) {
            st_hash h;
            st_hash_compute(buf + off, LR_MIN(block, bytes - off), &h);
            acc ^= h.b[0];
        }
        double s = bench_secs(lr_now_mono_ns() - t0);
        if (bytes / s > best)
            best = (double)bytes / s;
    }
    double cpu = bench_secs(bench_cpu_ns() - cpu0);
    printf("sha256: %" PRIu64 " MiB in %" PRIu64 " KiB blocks (wolfCrypt): best of 3 = %.2f GB/s, "
           "per cpu second %.2f GB/s [%02x]\n", bytes >> 20, block >> 10, best / 1e9,
           3.0 * (double)bytes / cpu / 1e9, acc);
    free(buf);
    return 0;
}
