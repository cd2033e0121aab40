/*
 * bench.h - landro-bench: throughput figures of the store layer (chunker,
 * SHA-256, LMDB chunk store, the file write path). One subcommand per
 * file, in a command table (main.c). Every figure is printed on one line
 * "<name>: ... = <value> <unit> ..." that tools/bench-store.sh parses.
 */
#ifndef BENCH_H
#define BENCH_H

#include <inttypes.h>
#include <stddef.h>
#include <stdint.h>

#include "lr.h"

int bench_cdc_main(int argc, char **argv);
int bench_hash_main(int argc, char **argv);
int bench_store_main(int argc, char **argv);
int bench_tombs_main(int argc, char **argv);
int bench_scatter_main(int argc, char **argv);

/* Parse "123", "64K", "16M", "1G" (binary units). -EINVAL on anything else. */
int bench_parse_size(const char *s, uint64_t *out);
/* One option of a command, "--name VALUE": a size (bench_parse_size) into
 * *size, or with size NULL a string into *str. */
struct bench_opt {
    const char *name;
    uint64_t *size;
    const char **str;
};
/* Parse argv[1..argc) against opts[0..n): 0, or 2 (the exit code) after
 * saying on stderr what is wrong ("landro-bench CMD: ..."). */
int bench_parse_opts(const char *cmd, int argc, char **argv, const struct bench_opt *opts, size_t n);
/* 0 if dir is set, else 2 after saying that --dir is required. */
int bench_need_dir(const char *cmd, const char *dir);
/* A buffer of len bytes filled by bench_fill(seed); exits on ENOMEM. */
uint8_t *bench_alloc_random(size_t len, uint64_t seed);
/* Fast pseudo-random fill (xorshift64*, 8 bytes per step): incompressible
 * data that no chunk of another seed repeats. */
void bench_fill(void *buf, size_t len, uint64_t seed);

static inline double bench_secs(uint64_t ns) { return (double)ns / 1e9; }

/* CPU time of the whole process (user + system), nanoseconds. The machine
 * the figures come from is shared, so beside each wall-clock figure the
 * bench prints the same work per CPU second: what one core does when it is
 * not taken away by others. The bench is single-threaded. */
uint64_t bench_cpu_ns(void);

#endif
