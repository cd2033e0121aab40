/*
 * cmd_store.c - `landro-bench store --dir D [--bytes N] [--batch K]`: the
 * store's data path on one core, in a fresh store directory D.
 *
 *   put:        N bytes as 64 KiB chunks of random data; per chunk
 *               st_hash_compute + st_chunk_put + st_extent_put (one extent
 *               each, one file), K chunks per write transaction (default 256)
 *   sync:       st_sync after the puts (the fsync a user would wait for)
 *   get:        every chunk again by hash with st_chunk_get (zero-copy from
 *               the map, K per read transaction), its bytes summed so every
 *               page is really read
 *   file_write: N more bytes through st_file_write in 16 MiB writes, one
 *               transaction each with the inode's size: FastCDC + SHA-256 +
 *               chunk put + extents, the real write path
 *   file_read:  that file back through st_file_read in 1 MiB reads, the
 *               data spans summed
 *
 * Generating the random data is not timed: each batch is filled before
 * its clock starts. Figures are MB/s (10^6 bytes) and chunks/s.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "bench.h"
#include "store.h"

#define CHUNK (64u * 1024)
#define WRITE_LEN (16u << 20)
#define READ_LEN (1u << 20)

static int fail(const char *what, int rc)
{
    fprintf(stderr, "landro-bench store: %s: %s\n", what, lr_strerror(rc));
    return 1;
}

static uint64_t sum_words(const void *data, size_t len)
{
    const uint8_t *p = data;
    uint64_t s = 0, w;
    size_t i = 0;
    for (; i + 8 <= len; i += 8) {
        memcpy(&w, p + i, 8);
        s += w;
    }
    for (; i < len; i++)
        s += p[i];
    return s;
}

static int new_file(st_store *st, uint64_t *ino)
{
    st_txn *t;
    static struct st_inode in;
    int rc = st_txn_begin(st, ST_TXN_WRITE, &t);
    if (rc)
        return rc;
    memset(&in, 0, sizeof(in));
    if ((rc = st_inode_alloc(t, &in))) {
        st_txn_abort(t);
        return rc;
    }
    in.mode = S_IFREG | 0644;
    in.nlink = 1;
    in.parent = ST_ROOT_INO;
    if ((rc = st_inode_put(t, &in))) {
        st_txn_abort(t);
        return rc;
    }
    *ino = in.ino;
    return st_txn_commit(t);
}

static void report(const char *name, uint64_t bytes, uint64_t chunks, uint64_t ns, uint64_t cpu_ns,
                   const char *how)
{
    double s = bench_secs(ns), c = bench_secs(cpu_ns);
    printf("%s: %" PRIu64 " MiB, %" PRIu64 " chunks in %.2f s = %.0f MB/s, %.0f chunks/s; "
           "per cpu second %.0f MB/s (%s)\n", name, bytes >> 20, chunks, s, (double)bytes / s / 1e6,
           (double)chunks / s, (double)bytes / c / 1e6, how);
}

int bench_store_main(int argc, char **argv)
{
    const char *dir = NULL;
    uint64_t bytes = 1ull << 30, batch = 256;
    const struct bench_opt opts[] = {
        { "--dir", NULL, &dir }, { "--bytes", &bytes, NULL }, { "--batch", &batch, NULL },
    };
    if (bench_parse_opts("store", argc, argv, opts, LR_ARRAY_SIZE(opts)) || bench_need_dir("store", dir))
        return 2;
    uint64_t nchunks = bytes / CHUNK;
    if (nchunks == 0 || batch == 0 || batch > 65536) {
        fprintf(stderr, "landro-bench store: need --bytes >= 64K and 1 <= --batch <= 65536\n");
        return 2;
    }
    bytes = nchunks * CHUNK;

    st_store *st;
    int rc = st_open(dir, ST_OPEN_CREATE | ST_OPEN_EXCL, &st);
    if (rc)
        return fail("cannot open store", rc);
    uint64_t ino;
    if ((rc = new_file(st, &ino)))
        return fail("cannot create the file", rc);

    st_hash *hashes = malloc(nchunks * sizeof(*hashes));
    uint8_t *buf = malloc(LR_MAX((size_t)batch * CHUNK, (size_t)WRITE_LEN));
    if (!hashes || !buf)
        return fail("cannot allocate buffers", -ENOMEM);

    /* put */
    uint64_t ns = 0, hash_ns = 0, cpu = 0, c0t;
    for (uint64_t c0 = 0; c0 < nchunks; c0 += batch) {
        uint64_t n = LR_MIN(batch, nchunks - c0);
        bench_fill(buf, n * CHUNK, 1000 + c0);
        uint64_t t0 = lr_now_mono_ns();
        c0t = bench_cpu_ns();
        st_txn *t;
        if ((rc = st_txn_begin(st, ST_TXN_WRITE, &t)))
            return fail("cannot begin a write transaction", rc);
        for (uint64_t i = 0; i < n; i++) {
            const uint8_t *d = buf + i * CHUNK;
            uint64_t h0 = lr_now_mono_ns();
            st_hash_compute(d, CHUNK, &hashes[c0 + i]);
            hash_ns += lr_now_mono_ns() - h0;
            struct st_extent e = { .off = (c0 + i) * CHUNK, .len = CHUNK, .chunk_off = 0,
                                   .hash = hashes[c0 + i] };
            if ((rc = st_chunk_put(t, &hashes[c0 + i], d, CHUNK)) ||
                (rc = st_extent_put(t, ino, &e))) {
                st_txn_abort(t);
                return fail("cannot put a chunk", rc);
            }
        }
        if ((rc = st_txn_commit(t)))
            return fail("cannot commit", rc);
        ns += lr_now_mono_ns() - t0;
        cpu += bench_cpu_ns() - c0t;
    }
    char how[128];
    snprintf(how, sizeof(how), "hash + st_chunk_put + st_extent_put, %" PRIu64 " per txn; hashing %.0f%%",
             batch, 100.0 * (double)hash_ns / (double)ns);
    report("put", bytes, nchunks, ns, cpu, how);

    uint64_t t0 = lr_now_mono_ns();
    if ((rc = st_sync(st)))
        return fail("cannot sync", rc);
    printf("sync: %.2f s after the puts\n", bench_secs(lr_now_mono_ns() - t0));

    /* get */
    ns = 0;
    cpu = 0;
    uint64_t total = 0, sum = 0;
    for (uint64_t c0 = 0; c0 < nchunks; c0 += batch) {
        uint64_t n = LR_MIN(batch, nchunks - c0);
        t0 = lr_now_mono_ns();
        c0t = bench_cpu_ns();
        st_txn *t;
        if ((rc = st_txn_begin(st, ST_TXN_READ, &t)))
            return fail("cannot begin a read transaction", rc);
        for (uint64_t i = 0; i < n; i++) {
            const void *d;
            size_t len;
            if ((rc = st_chunk_get(t, &hashes[c0 + i], &d, &len))) {
                st_txn_abort(t);
                return fail("cannot get a chunk", rc);
            }
            sum += sum_words(d, len);
            total += len;
        }
        st_txn_abort(t);
        ns += lr_now_mono_ns() - t0;
        cpu += bench_cpu_ns() - c0t;
    }
    if (total != bytes)
        return fail("get returned the wrong number of bytes", LR_ECORRUPT);
    snprintf(how, sizeof(how), "st_chunk_get zero-copy, %" PRIu64 " per txn, bytes summed [%016" PRIx64 "]",
             batch, sum);
    report("get", bytes, nchunks, ns, cpu, how);

    /* file_write */
    uint64_t fino;
    if ((rc = new_file(st, &fino)))
        return fail("cannot create the file", rc);
    ns = 0;
    cpu = 0;
    static struct st_inode in;
    for (uint64_t off = 0; off < bytes; off += WRITE_LEN) {
        size_t len = (size_t)LR_MIN((uint64_t)WRITE_LEN, bytes - off);
        bench_fill(buf, len, 5000000 + off);
        t0 = lr_now_mono_ns();
        c0t = bench_cpu_ns();
        st_txn *t;
        if ((rc = st_txn_begin(st, ST_TXN_WRITE, &t)))
            return fail("cannot begin a write transaction", rc);
        if ((rc = st_file_write(t, fino, off, buf, len)) ||
            (rc = st_inode_get(t, fino, &in))) {
            st_txn_abort(t);
            return fail("st_file_write failed", rc);
        }
        in.size = off + len;
        if ((rc = st_inode_put(t, &in))) {
            st_txn_abort(t);
            return fail("cannot update the inode", rc);
        }
        if ((rc = st_txn_commit(t)))
            return fail("cannot commit", rc);
        ns += lr_now_mono_ns() - t0;
        cpu += bench_cpu_ns() - c0t;
    }
    uint64_t fchunks = 0;
    {
        st_txn *t;
        struct st_extent e;
        uint64_t off = 0;
        if ((rc = st_txn_begin(st, ST_TXN_READ, &t)))
            return fail("cannot begin a read transaction", rc);
        while ((rc = st_extent_find(t, fino, off, &e)) == 0) {
            fchunks++;
            off = e.off + e.len;
        }
        st_txn_abort(t);
        if (rc != -ENOENT || off != bytes)
            return fail("the written file's extents do not tile it", rc ? rc : LR_ECORRUPT);
    }
    report("file_write", bytes, fchunks, ns, cpu, "st_file_write in 16 MiB writes, one txn each: FastCDC + SHA-256 + put");

    /* file_read */
    ns = 0;
    total = 0;
    sum = 0;
    t0 = lr_now_mono_ns();
    c0t = bench_cpu_ns();
    {
        st_txn *t;
        struct st_span spans[64];
        if ((rc = st_txn_begin(st, ST_TXN_READ, &t)))
            return fail("cannot begin a read transaction", rc);
        for (uint64_t off = 0; off < bytes;) {
            size_t n, want = (size_t)LR_MIN((uint64_t)READ_LEN, bytes - off);
            if ((rc = st_file_read(t, fino, off, want, spans, LR_ARRAY_SIZE(spans), &n))) {
                st_txn_abort(t);
                return fail("st_file_read failed", rc);
            }
            size_t got = 0;
            for (size_t i = 0; i < n; i++) {
                if (spans[i].kind != ST_SPAN_DATA) {
                    st_txn_abort(t);
                    return fail("st_file_read returned a hole or missing span", LR_ECORRUPT);
                }
                sum += sum_words(spans[i].data, spans[i].len);
                got += spans[i].len;
            }
            if (got == 0) {
                st_txn_abort(t);
                return fail("st_file_read made no progress", LR_ECORRUPT);
            }
            off += got;
            total += got;
        }
        st_txn_abort(t);
    }
    ns = lr_now_mono_ns() - t0;
    cpu = bench_cpu_ns() - c0t;
    snprintf(how, sizeof(how), "st_file_read in 1 MiB reads, one read txn, bytes summed [%016" PRIx64 "]", sum);
    report("file_read", total, fchunks, ns, cpu, how);

    struct st_usage u;
    if (st_usage(st, &u) == 0)
        printf("usage: %" PRIu64 " chunks, %" PRIu64 " MiB in the LMDB file\n", u.chunks, u.map_bytes >> 20);
    free(buf);
    free(hashes);
    st_close(st);
    return 0;
}
