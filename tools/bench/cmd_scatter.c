/*
 * cmd_scatter.c - `landro-bench scatter --dir D [--bytes N] [--writes K]
 * [--batches B]`: what committing a stage of scattered small writes costs
 * the store, in a fresh store directory D. A file of N bytes (default
 * 256M) is written, then B batches (default 8) of K (default 4096, what
 * fs/ stages at most) 4 KiB writes at distinct random 4 KiB blocks, each
 * batch one transaction, as fs/ commits a stage of random writes. Batches
 * alternate between the two ways of writing them:
 *
 *   one by one:     st_file_write for each range (how st_ns_write wrote a
 *                   stage before st_file_writev; the baseline)
 *   st_file_writev: the ranges joined into runs (what st_ns_write does)
 *
 * and each prints writes per CPU second and CPU microseconds per write
 * of its median batch (the store work only: no FUSE, no staging).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "bench.h"
#include "ns.h"

#define BLOCK 4096u
#define FILL_PIECE (16u << 20)

static int fail(const char *what, int rc)
{
    fprintf(stderr, "landro-bench scatter: %s: %s\n", what, lr_strerror(rc));
    return 1;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static int cmp_range(const void *a, const void *b)
{
    const struct st_wrange *x = a, *y = b;
    return x->off < y->off ? -1 : x->off > y->off;
}

/* One batch: k distinct random blocks of the nblk, sorted, written in one
 * transaction one by one or through st_file_writev. */
static int batch(st_store *st, uint64_t ino, uint32_t *blk, size_t nblk, size_t k, uint64_t *rng,
                 const uint8_t *data, struct st_wrange *r, int joined)
{
    for (size_t i = 0; i < k; i++) { /* a partial Fisher-Yates shuffle */
        *rng = *rng * 6364136223846793005ull + 1442695040888963407ull;
        size_t j = i + (size_t)((*rng >> 16) % (nblk - i));
        uint32_t x = blk[i];
        blk[i] = blk[j];
        blk[j] = x;
        r[i].off = (uint64_t)blk[i] * BLOCK;
        r[i].len = BLOCK;
        r[i].data = data + (i % 64) * BLOCK;
    }
    qsort(r, k, sizeof(*r), cmp_range);
    st_txn *t;
    int rc = st_txn_begin(st, ST_TXN_WRITE, &t);
    if (rc)
        return rc;
    if (joined)
        rc = st_file_writev(t, ino, r, k, 0, NULL);
    else
        for (size_t i = 0; i < k && rc == 0; i++)
            rc = st_file_write(t, ino, r[i].off, r[i].data, r[i].len);
    return st_txn_end(t, rc);
}

int bench_scatter_main(int argc, char **argv)
{
    const char *dir = NULL;
    uint64_t bytes = 256u << 20, writes = 4096, batches = 8;
    const struct bench_opt opts[] = {
        { "--dir", NULL, &dir }, { "--bytes", &bytes, NULL }, { "--writes", &writes, NULL },
        { "--batches", &batches, NULL },
    };
    if (bench_parse_opts("scatter", argc, argv, opts, LR_ARRAY_SIZE(opts)) || bench_need_dir("scatter", dir))
        return 2;
    size_t nblk = (size_t)(bytes / BLOCK);
    if (nblk < writes || nblk > UINT32_MAX) {
        fprintf(stderr, "landro-bench scatter: --bytes must hold --writes 4 KiB blocks\n");
        return 2;
    }
    if (batches == 0) {
        fprintf(stderr, "landro-bench scatter: --batches must be at least 1\n");
        return 2;
    }
    st_store *st;
    int rc = st_open(dir, ST_OPEN_CREATE | ST_OPEN_EXCL, &st);
    if (rc)
        return fail("cannot open store", rc);
    uint64_t *cpu[2] = { NULL, NULL };
    uint8_t *fill = bench_alloc_random(FILL_PIECE, 1), *data = bench_alloc_random(64 * BLOCK, 2);
    uint32_t *blk = malloc(nblk * sizeof(*blk));
    struct st_wrange *r = malloc((size_t)writes * sizeof(*r));
    if (!blk || !r) {
        rc = -ENOMEM;
        goto out;
    }
    for (size_t i = 0; i < nblk; i++)
        blk[i] = (uint32_t)i;
    /* The file, in 16 MiB transactions of distinct bytes. */
    struct st_inode in;
    st_txn *t;
    if ((rc = st_txn_begin(st, ST_TXN_WRITE, &t)) == 0)
        rc = st_txn_end(t, st_ns_create(t, ST_ROOT_INO, "scatter", 7, S_IFREG | 0644, 0, 0, 0, NULL, 0, &in));
    for (uint64_t off = 0; rc == 0 && off < nblk * (uint64_t)BLOCK; off += FILL_PIECE) {
        size_t n = (size_t)LR_MIN((uint64_t)FILL_PIECE, nblk * (uint64_t)BLOCK - off);
        bench_fill(fill, n, off + 3);
        struct st_wrange w = { off, n, fill };
        if ((rc = st_txn_begin(st, ST_TXN_WRITE, &t)) == 0)
            rc = st_txn_end(t, st_ns_write(t, in.ino, &w, 1, 0, NULL, 0, NULL, NULL));
    }
    if (rc) {
        fail("cannot write the file", rc);
        goto out;
    }
    /* Per batch CPU time, each way; the median batch is reported (on a
     * shared VM a batch now and then takes twice its time). */
    if (!(cpu[0] = malloc(batches * sizeof(uint64_t))) || !(cpu[1] = malloc(batches * sizeof(uint64_t)))) {
        rc = -ENOMEM;
        goto out;
    }
    uint64_t rng = 42;
    for (uint64_t b = 0; b < 2 * batches && rc == 0; b++) {
        int joined = (int)(b & 1);
        uint64_t c0 = bench_cpu_ns();
        rc = batch(st, in.ino, blk, nblk, (size_t)writes, &rng, data, r, joined);
        cpu[joined][b / 2] = bench_cpu_ns() - c0;
    }
    if (rc) {
        fail("writing", rc);
        goto out;
    }
    const char *name[2] = { "one by one", "st_file_writev" };
    double med[2];
    for (int j = 0; j < 2; j++) {
        qsort(cpu[j], batches, sizeof(uint64_t), cmp_u64);
        med[j] = (double)cpu[j][batches / 2] / (double)writes; /* ns per write */
        printf("scatter: %s, %" PRIu64 " x 4 KiB per txn in a %" PRIu64 " MiB file, median of %" PRIu64
               " batches = %.0f writes per cpu second, %.1f us cpu per write\n",
               name[j], writes, bytes >> 20, batches, 1e9 / med[j], med[j] / 1e3);
    }
    printf("scatter: st_file_writev / one by one = %.2fx\n", med[0] / med[1]);
out:
    free(cpu[0]);
    free(cpu[1]);
    free(fill);
    free(data);
    free(blk);
    free(r);
    st_close(st);
    return rc ? 1 : 0;
}
