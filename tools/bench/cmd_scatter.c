/*
 * cmd_scatter.c - `landro-bench scatter --dir D [--bytes N] [--writes K]
 * [--batches B]`: what committing a stage of scattered small writes costs
 * the store, in a fresh store directory D. Two files of N bytes (default
 * 256M) are written, then B batches (default 8) of K (default 4096, what
 * fs/ stages at most) 4 KiB writes at distinct random 4 KiB blocks, each
 * batch one transaction, as fs/ commits a stage of random writes. Batches
 * take turns between three ways of writing them:
 *
 *   one by one:     st_file_write for each range (how st_ns_write wrote a
 *                   stage before st_file_writev; the baseline), file 1
 *   st_file_writev: the ranges joined into runs, each run re-chunked
 *                   (what st_ns_write did before isolated writes), file 1
 *   isolated:       st_file_writev with ST_WRITE_ISOLATE (what fs/ does
 *                   now), file 2, and after every FS_RECHUNK_FRAGS writes
 *                   the re-chunk fs/ then does (st_file_rechunk over the
 *                   whole file in FS_RECHUNK_TXN_BYTES transactions), its
 *                   CPU time spread over the writes that caused it
 *
 * and each prints writes per CPU second and CPU microseconds per write
 * of its median batch (the store work only: no FUSE, no staging); the
 * isolated way also with the re-chunk's share added.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "bench.h"
#include "fs.h"
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

enum { ONE_BY_ONE, JOINED, ISOLATED, WAYS };

/* One batch: k distinct random blocks of the nblk, sorted, written in one
 * transaction the given way. */
static int batch(st_store *st, uint64_t ino, uint32_t *blk, size_t nblk, size_t k, uint64_t *rng,
                 const uint8_t *data, struct st_wrange *r, int way)
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
    if (way == ONE_BY_ONE)
        for (size_t i = 0; i < k && rc == 0; i++)
            rc = st_file_write(t, ino, r[i].off, r[i].data, r[i].len);
    else
        rc = st_file_writev(t, ino, r, k, way == ISOLATED ? ST_WRITE_ISOLATE : 0, NULL);
    return st_txn_end(t, rc);
}

/* The re-chunk fs/ runs after isolated writes: the whole file, in
 * FS_RECHUNK_TXN_BYTES transactions. */
static int rechunk(st_store *st, uint64_t ino, uint64_t size)
{
    int rc = 0;
    for (uint64_t pos = 0; rc == 0 && pos < size;) {
        st_txn *t;
        uint64_t next = size, rw;
        if ((rc = st_txn_begin(st, ST_TXN_WRITE, &t)) == 0)
            rc = st_txn_end(t, st_file_rechunk(t, ino, pos, size - pos, FS_RECHUNK_TXN_BYTES, &next, &rw));
        pos = LR_MAX(next, pos + 1);
    }
    return rc;
}

/* A new file of nblk blocks, in 16 MiB transactions of distinct bytes. */
static int make_file(st_store *st, const char *name, size_t nblk, uint8_t *fill, uint64_t *ino)
{
    struct st_inode in;
    st_txn *t;
    int rc = st_txn_begin(st, ST_TXN_WRITE, &t);
    if (rc == 0)
        rc = st_txn_end(t, st_ns_create(t, ST_ROOT_INO, name, strlen(name), S_IFREG | 0644, 0, 0, 0, NULL, 0, &in));
    for (uint64_t off = 0; rc == 0 && off < nblk * (uint64_t)BLOCK; off += FILL_PIECE) {
        size_t n = (size_t)LR_MIN((uint64_t)FILL_PIECE, nblk * (uint64_t)BLOCK - off);
        bench_fill(fill, n, off + 3);
        struct st_wrange w = { off, n, fill };
        if ((rc = st_txn_begin(st, ST_TXN_WRITE, &t)) == 0)
            rc = st_txn_end(t, st_ns_write(t, in.ino, &w, 1, 0, NULL, 0, NULL, NULL));
    }
    *ino = in.ino;
    return rc;
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
    uint64_t *cpu[WAYS] = { NULL, NULL, NULL };
    uint8_t *fill = bench_alloc_random(FILL_PIECE, 1), *data = bench_alloc_random(64 * BLOCK, 2);
    uint32_t *blk = malloc(nblk * sizeof(*blk));
    struct st_wrange *r = malloc((size_t)writes * sizeof(*r));
    if (!blk || !r) {
        rc = -ENOMEM;
        goto out;
    }
    for (size_t i = 0; i < nblk; i++)
        blk[i] = (uint32_t)i;
    uint64_t ino[2];
    if ((rc = make_file(st, "scatter", nblk, fill, &ino[0])) || (rc = make_file(st, "isolated", nblk, fill, &ino[1]))) {
        fail("cannot write the files", rc);
        goto out;
    }
    /* Per batch CPU time, each way; the median batch is reported (on a
     * shared VM a batch now and then takes twice its time). */
    for (int w = 0; w < WAYS; w++)
        if (!(cpu[w] = malloc(batches * sizeof(uint64_t)))) {
            rc = -ENOMEM;
            goto out;
        }
    uint64_t rng = 42, rechunk_ns = 0, pending = 0, rechunks = 0;
    for (uint64_t b = 0; b < WAYS * batches && rc == 0; b++) {
        int way = (int)(b % WAYS);
        uint64_t c0 = bench_cpu_ns();
        rc = batch(st, ino[way == ISOLATED], blk, nblk, (size_t)writes, &rng, data, r, way);
        cpu[way][b / WAYS] = bench_cpu_ns() - c0;
        if (rc || way != ISOLATED)
            continue;
        /* fs/ re-chunks after FS_RECHUNK_FRAGS isolated writes (or when
         * they pause; then for fewer, at the same cost per chunk). */
        pending += writes;
        if (pending >= FS_RECHUNK_FRAGS || b / WAYS == batches - 1) {
            c0 = bench_cpu_ns();
            rc = rechunk(st, ino[1], nblk * (uint64_t)BLOCK);
            rechunk_ns += bench_cpu_ns() - c0;
            pending = 0;
            rechunks++;
        }
    }
    if (rc) {
        fail("writing", rc);
        goto out;
    }
    const char *name[WAYS] = { "one by one", "st_file_writev", "isolated" };
    double med[WAYS];
    for (int j = 0; j < WAYS; j++) {
        qsort(cpu[j], batches, sizeof(uint64_t), cmp_u64);
        med[j] = (double)cpu[j][batches / 2] / (double)writes; /* ns per write */
        printf("scatter: %s, %" PRIu64 " x 4 KiB per txn in a %" PRIu64 " MiB file, median of %" PRIu64
               " batches = %.0f writes per cpu second, %.1f us cpu per write\n",
               name[j], writes, bytes >> 20, batches, 1e9 / med[j], med[j] / 1e3);
    }
    double share = (double)rechunk_ns / (double)(batches * writes);
    printf("scatter: isolated + re-chunk (%" PRIu64 " re-chunks of the file, %.2f s cpu) = %.0f writes per cpu "
           "second, %.1f us cpu per write\n",
           rechunks, (double)rechunk_ns / 1e9, 1e9 / (med[ISOLATED] + share), (med[ISOLATED] + share) / 1e3);
    printf("scatter: st_file_writev / one by one = %.2fx\n", med[ONE_BY_ONE] / med[JOINED]);
    printf("scatter: isolated + re-chunk / st_file_writev = %.2fx\n", med[JOINED] / (med[ISOLATED] + share));
out:
    for (int w = 0; w < WAYS; w++)
        free(cpu[w]);
    free(fill);
    free(data);
    free(blk);
    free(r);
    st_close(st);
    return rc ? 1 : 0;
}
