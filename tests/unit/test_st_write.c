/*
 * test_st_write.c - st_file_write on large writes (the path that chunks the
 * caller's buffer in place and hashes on two threads): the extents of a
 * file equal FastCDC run over its whole content, whether it was written
 * at once or appended in uneven pieces, chunks straddling the old bytes
 * before or after a write are right, and overwrites match a reference;
 * st_file_writev (many small ranges in one call, runs joined over the old
 * bytes between them) gives the same bytes as a reference, never fills a
 * hole and never needs a chunk held only by peers; with ST_WRITE_ISOLATE
 * small ranges over local data get chunks of their own (and only those),
 * and st_file_rechunk then cuts the same bytes as FastCDC over the whole
 * content, leaving runs it cannot read here alone.
 */
#include <sys/stat.h>

#include "chunker.h"
#include "hash.h"
#include "store.h"
#include "t.h"
#include "t_store.h"

static char *dir;

static st_store *fresh(void) { return t_store_fresh(&dir); }

struct exts { struct st_extent e[4096]; size_t n; };

static int collect(uint64_t ino, const struct st_extent *e, void *arg)
{
    struct exts *x = arg;
    (void)ino;
    if (x->n < 4096)
        x->e[x->n++] = *e;
    return 0;
}

/* 0 if ino's extents are exactly FastCDC over data[0..len) with the
 * default parameters, each named by the SHA-256 of its bytes. */
static int matches_reference_chunking(st_store *st, uint64_t ino, const uint8_t *data, size_t len)
{
    static struct exts x;
    struct st_cdc_params p;
    st_cdc_defaults(&p);
    st_txn *t;
    if (st_txn_begin(st, ST_TXN_READ, &t))
        return -1;
    x.n = 0;
    int rc = st_extent_foreach(t, ino, 0, collect, &x);
    st_txn_abort(t);
    if (rc)
        return -2;
    size_t pos = 0, i = 0;
    while (pos < len) {
        size_t cut = st_cdc_cut(&p, data + pos, len - pos, 1);
        if (i >= x.n)
            return -3;
        st_hash h;
        st_hash_compute(data + pos, cut, &h);
        if (x.e[i].off != pos || x.e[i].len != cut || x.e[i].chunk_off != 0 ||
            memcmp(h.b, x.e[i].hash.b, ST_HASH_LEN) != 0) {
            fprintf(stderr, "extent %zu: off %llu len %u, expected off %zu len %zu\n", i,
                    (unsigned long long)x.e[i].off, x.e[i].len, pos, cut);
            return -4;
        }
        pos += cut;
        i++;
    }
    return i == x.n ? 0 : -5;
}

static int write_at(st_store *st, uint64_t ino, uint64_t off, const void *d, size_t n)
{
    st_txn *t;
    int rc = st_txn_begin(st, ST_TXN_WRITE, &t);
    if (rc)
        return rc;
    if ((rc = st_file_write(t, ino, off, d, n))) {
        st_txn_abort(t);
        return rc;
    }
    return st_txn_commit(t);
}

static int read_back(st_store *st, uint64_t ino, uint64_t size, uint8_t *out)
{
    struct st_span sp[64];
    st_txn *t;
    int rc = st_txn_begin(st, ST_TXN_READ, &t);
    if (rc)
        return rc;
    uint64_t pos = 0;
    while (!rc && pos < size) {
        size_t n;
        if ((rc = st_file_read(t, ino, pos, (size_t)(size - pos), sp, 64, &n)))
            break;
        for (size_t i = 0; i < n; i++) {
            if (sp[i].kind == ST_SPAN_DATA)
                memcpy(out + pos, sp[i].data, sp[i].len);
            else if (sp[i].kind == ST_SPAN_HOLE)
                memset(out + pos, 0, sp[i].len);
            else
                rc = LR_EMISSING;
            pos += sp[i].len;
        }
    }
    st_txn_abort(t);
    return rc;
}

static void test_one_big_write_is_fastcdc_over_the_buffer(void)
{
    st_store *st = fresh();
    const size_t len = (12u << 20) + 12345;
    uint8_t *data = malloc(len);
    t_fill(data, len, 7);
    T_OK(write_at(st, 5, 0, data, len));
    T_OK(matches_reference_chunking(st, 5, data, len));
    free(data);
    st_close(st);
}

static void test_uneven_appends_end_with_the_same_chunks(void)
{
    st_store *st = fresh();
    const size_t len = 10u << 20;
    uint8_t *data = malloc(len), *got = malloc(len);
    t_fill(data, len, 8);
    /* Each append re-chunks the previous last extent (pre bytes) with the
     * first bytes of the new buffer: chunks straddle the two parts. */
    const size_t piece[] = { 1, 70000, (1u << 20) + 333, 17, (3u << 20) + 77, 200000 };
    size_t pos = 0;
    for (int i = 0; pos < len; i = (i + 1) % 6) {
        size_t n = LR_MIN(piece[i], len - pos);
        T_OK(write_at(st, 6, pos, data + pos, n));
        pos += n;
    }
    T_OK(matches_reference_chunking(st, 6, data, len));
    T_OK(read_back(st, 6, len, got));
    T_MEM(got, data, len);
    free(data);
    free(got);
    st_close(st);
}

static void test_big_overwrites_inside_and_across_the_end_match_a_reference(void)
{
    st_store *st = fresh();
    const size_t cap = 24u << 20;
    uint8_t *ref = calloc(1, cap), *got = malloc(cap), *data = malloc(6u << 20);
    size_t size = 8u << 20;
    t_fill(ref, size, 9);
    T_OK(write_at(st, 7, 0, ref, size));
    uint64_t rng = 99;
    for (int op = 0; op < 24; op++) {
        rng = rng * 6364136223846793005ull + 1442695040888963407ull;
        uint64_t r = rng >> 11;
        size_t len = (1u << 20) + (size_t)(r % (5u << 20));      /* 1-6 MiB: two hashing threads */
        size_t off = (size_t)((r >> 24) % (size + (1u << 20))); /* sometimes past the end: a hole */
        if (off + len > cap)
            len = cap - off;
        t_fill(data, len, r);
        if (op % 4 == 3)
            memcpy(data, ref, LR_MIN(len, size)); /* chunks that exist already (dedup) */
        T_OK(write_at(st, 7, off, data, len));
        memcpy(ref + off, data, len);
        if (off + len > size)
            size = off + len;
        T_OK(read_back(st, 7, size, got));
        if (memcmp(got, ref, size) != 0)
            T_FAILF("op %d: %zu bytes at %zu: content differs from the reference", op, len, off);
    }
    free(ref);
    free(got);
    free(data);
    st_close(st);
}

/* Random sorted, non-overlapping ranges of 1..8192 bytes over [0, span),
 * some n of them; returns how many. Their data point into pool. */
static size_t random_ranges(uint64_t *rng, struct st_wrange *r, size_t max, uint64_t span,
                            const uint8_t *pool, size_t pool_len)
{
    size_t n = 0;
    uint64_t pos = 0;
    while (n < max) {
        *rng = *rng * 6364136223846793005ull + 1442695040888963407ull;
        uint64_t x = *rng >> 11;
        pos += x % 90000;                 /* gaps of 0 to ~1.5 chunks */
        size_t len = 1 + (size_t)((x >> 20) % 8192);
        if (pos + len > span)
            break;
        r[n].off = pos;
        r[n].len = len;
        r[n].data = pool + (size_t)((x >> 33) % (pool_len - len));
        n++;
        pos += len;
    }
    return n;
}

static void test_writev_runs_match_a_reference_and_leave_holes_alone(void)
{
    st_store *st = fresh();
    const size_t size = 14u << 20, hole_lo = 8u << 20, hole_hi = 12u << 20;
    const size_t pool_len = 1u << 20;
    uint8_t *ref = calloc(1, size), *got = malloc(size), *pool = malloc(pool_len);
    uint8_t *written = calloc(1, size); /* 1 where a byte of the hole got data */
    static struct st_wrange r[400];
    t_fill(ref, hole_lo, 21);
    t_fill(ref + hole_hi, size - hole_hi, 22);
    t_fill(pool, pool_len, 23);
    T_OK(write_at(st, 9, 0, ref, hole_lo));
    T_OK(write_at(st, 9, hole_hi, ref + hole_hi, size - hole_hi));
    uint64_t rng = 5;
    for (int batch = 0; batch < 30; batch++) {
        size_t n = random_ranges(&rng, r, 400, size, pool, pool_len);
        st_txn *t;
        T_OK(st_txn_begin(st, ST_TXN_WRITE, &t));
        T_OK(st_file_writev(t, 9, r, n, 0, NULL));
        T_OK(st_txn_commit(t));
        for (size_t i = 0; i < n; i++) {
            memcpy(ref + r[i].off, r[i].data, r[i].len);
            if (r[i].off < hole_hi && r[i].off + r[i].len > hole_lo)
                memset(written + r[i].off, 1, r[i].len);
        }
        T_OK(read_back(st, 9, size, got));
        if (memcmp(got, ref, size) != 0)
            T_FAILF("batch %d (%zu ranges): content differs from the reference", batch, n);
    }
    /* Every byte of the hole that no range wrote is still a hole. */
    st_txn *t;
    struct st_span sp[64];
    T_OK(st_txn_begin(st, ST_TXN_READ, &t));
    for (uint64_t pos = hole_lo; pos < hole_hi;) {
        size_t n;
        T_OK(st_file_read(t, 9, pos, hole_hi - pos, sp, 64, &n));
        for (size_t i = 0; i < n; pos += sp[i].len, i++)
            if (sp[i].kind == ST_SPAN_DATA)
                for (size_t k = 0; k < sp[i].len; k++)
                    if (!written[pos + k])
                        T_FAILF("byte %llu of the hole became data", (unsigned long long)(pos + k));
    }
    st_txn_abort(t);
    free(ref);
    free(got);
    free(pool);
    free(written);
    st_close(st);
}

static void test_writev_does_not_join_over_a_chunk_held_only_by_peers(void)
{
    st_store *st = fresh();
    const size_t size = 1u << 20;
    uint8_t *ref = malloc(size), *got = malloc(size);
    t_fill(ref, size, 31);
    T_OK(write_at(st, 10, 0, ref, size));
    st_txn *t;
    struct st_extent e;
    T_OK(st_txn_begin(st, ST_TXN_WRITE, &t));
    T_OK(st_extent_find(t, 10, 500000, &e));
    T_TRUE(e.off > 200 && e.off + e.len + 300 < size);
    T_OK(st_chunk_evict(t, &e.hash));
    /* The first gap reaches into the evicted chunk, the second lies in
     * it; the third range follows it in a chunk that is here. */
    const struct st_wrange r[] = {
        { e.off - 150, 100, "a" }, { e.off + 10, 20, "b" }, { e.off + 40, 20, "c" },
        { e.off + e.len + 100, 50, "d" },
    };
    static uint8_t bytes[4][100];
    struct st_wrange w[4];
    for (int i = 0; i < 4; i++) {
        memset(bytes[i], 'a' + i, sizeof(bytes[i]));
        w[i] = r[i];
        w[i].data = bytes[i];
    }
    T_OK(st_file_writev(t, 10, w, 4, 0, NULL));
    T_OK(st_txn_commit(t));
    for (int i = 0; i < 4; i++)
        memcpy(ref + w[i].off, w[i].data, w[i].len);
    /* Every written byte reads back; of the evicted chunk only what was
     * written is data, the rest still to be fetched. */
    struct st_span sp[16];
    size_t n;
    T_OK(st_txn_begin(st, ST_TXN_READ, &t));
    T_OK(st_file_read(t, 10, e.off, e.len, sp, 16, &n));
    uint64_t pos = e.off;
    for (size_t i = 0; i < n; pos += sp[i].len, i++) {
        int inside = (pos >= w[1].off && pos < w[1].off + w[1].len) ||
                     (pos >= w[2].off && pos < w[2].off + w[2].len);
        T_EQ(sp[i].kind, inside ? ST_SPAN_DATA : ST_SPAN_MISSING);
        if (inside)
            T_MEM(sp[i].data, ref + pos, sp[i].len);
    }
    st_txn_abort(t);
    /* Put the old chunk back (as a fetch would): the whole file is right. */
    t_fill(got, size, 31);
    st_hash h;
    st_hash_compute(got + e.off, e.len, &h);
    T_MEM(h.b, e.hash.b, ST_HASH_LEN);
    T_OK(st_txn_begin(st, ST_TXN_WRITE, &t));
    T_OK(st_chunk_put(t, &h, got + e.off, e.len));
    T_OK(st_txn_commit(t));
    T_OK(read_back(st, 10, size, got));
    T_MEM(got, ref, size);
    free(ref);
    free(got);
    st_close(st);
}

/* count extents of ino, and how many name part of their chunk */
static void extent_counts(st_store *st, uint64_t ino, size_t *n, size_t *partial)
{
    static struct exts x;
    st_txn *t;
    x.n = 0;
    *n = *partial = 0;
    if (st_txn_begin(st, ST_TXN_READ, &t))
        return;
    if (st_extent_foreach(t, ino, 0, collect, &x) == 0) {
        for (size_t i = 0; i < x.n; i++) {
            struct st_chunkref r;
            if (st_chunk_info(t, &x.e[i].hash, &r) == 0 && (x.e[i].chunk_off || x.e[i].len != r.len))
                (*partial)++;
        }
        *n = x.n;
    }
    st_txn_abort(t);
}

/* n distinct random 4 KiB-aligned blocks of a file of size bytes, sorted,
 * with data from pool (4 KiB * n bytes). */
static void random_blocks(uint64_t *rng, struct st_wrange *r, size_t n, size_t size, const uint8_t *pool)
{
    size_t nblk = size / 4096, k = 0;
    while (k < n) {
        *rng = *rng * 6364136223846793005ull + 1442695040888963407ull;
        uint64_t off = ((*rng >> 20) % nblk) * 4096;
        size_t i = k;
        while (i > 0 && r[i - 1].off > off) /* insertion: r[0..k) stays sorted */
            i--;
        if (i > 0 && r[i - 1].off == off)
            continue;
        memmove(&r[i + 1], &r[i], (k - i) * sizeof(*r));
        r[i] = (struct st_wrange){ off, 4096, pool + k * 4096 };
        k++;
    }
}

static int writev_txn(st_store *st, uint64_t ino, const struct st_wrange *r, size_t n, unsigned flags,
                      struct st_wstat *ws)
{
    st_txn *t;
    int rc = st_txn_begin(st, ST_TXN_WRITE, &t);
    return rc ? rc : st_txn_end(t, st_file_writev(t, ino, r, n, flags, ws));
}

static int rechunk_txn(st_store *st, uint64_t ino, uint64_t off, uint64_t len, uint64_t budget,
                       uint64_t *next, uint64_t *rewritten)
{
    st_txn *t;
    int rc = st_txn_begin(st, ST_TXN_WRITE, &t);
    return rc ? rc : st_txn_end(t, st_file_rechunk(t, ino, off, len, budget, next, rewritten));
}

static void test_isolated_writes_cut_extents_and_rechunk_makes_them_fastcdc_again(void)
{
    st_store *st = fresh();
    const size_t size = 8u << 20, nw = 300;
    uint8_t *ref = malloc(size), *got = malloc(size), *pool = malloc(nw * 4096);
    static struct st_wrange r[300];
    t_fill(ref, size, 41);
    t_fill(pool, nw * 4096, 42);
    T_OK(write_at(st, 11, 0, ref, size));
    size_t n0, p0;
    extent_counts(st, 11, &n0, &p0);
    T_EQ(p0, 0);
    uint64_t rng = 9;
    random_blocks(&rng, r, nw, size, pool);
    struct st_wstat ws;
    T_OK(writev_txn(st, 11, r, nw, ST_WRITE_ISOLATE, &ws));
    for (size_t i = 0; i < nw; i++)
        memcpy(ref + r[i].off, r[i].data, r[i].len);
    T_EQ(ws.isolated, nw);
    T_EQ(ws.lo, r[0].off);
    T_EQ(ws.hi, r[nw - 1].off + 4096);
    T_OK(read_back(st, 11, size, got));
    T_MEM(got, ref, size);
    /* Each write is a chunk of its own: at least one more extent per
     * write, and old chunks named in part. */
    size_t n1, p1;
    extent_counts(st, 11, &n1, &p1);
    if (n1 < n0 + nw || p1 == 0)
        T_FAILF("after %zu isolated writes: %zu extents (%zu naming part of a chunk), had %zu", nw, n1, p1, n0);
    /* Re-chunked in small budgets over the range the writes span (as
     * fs/ does): the same bytes, cut as FastCDC cuts the whole content,
     * the head of the chunk the first write fell in included. */
    uint64_t pos = ws.lo, total = 0;
    int calls = 0;
    while (pos < ws.hi) {
        uint64_t next, rw;
        T_OK(rechunk_txn(st, 11, pos, ws.hi - pos, 256u << 10, &next, &rw));
        T_TRUE(next > pos || rw > 0);
        total += rw;
        pos = next;
        calls++;
    }
    if (calls < 3 || total < nw * 4096)
        T_FAILF("re-chunk took %d calls rewriting %llu bytes; expected several, at least %zu", calls,
                (unsigned long long)total, nw * 4096);
    T_OK(read_back(st, 11, size, got));
    T_MEM(got, ref, size);
    T_OK(matches_reference_chunking(st, 11, ref, size));
    /* Nothing is left to do: a second pass rewrites nothing. */
    uint64_t next, rw;
    T_OK(rechunk_txn(st, 11, 0, size, UINT64_MAX, &next, &rw));
    T_EQ(rw, 0);
    T_EQ(next, size);
    free(ref);
    free(got);
    free(pool);
    st_close(st);
}

static void test_isolation_needs_small_ranges_over_local_data(void)
{
    st_store *st = fresh();
    const size_t size = 4u << 20;
    uint8_t *ref = calloc(1, size), *got = malloc(size);
    static uint8_t bytes[40000];
    t_fill(ref, 2u << 20, 51);          /* data [0, 2 MiB), a hole after, data again at 3 MiB */
    t_fill(ref + (3u << 20), 1u << 20, 52);
    t_fill(bytes, sizeof(bytes), 53);
    T_OK(write_at(st, 12, 0, ref, 2u << 20));
    T_OK(write_at(st, 12, 3u << 20, ref + (3u << 20), 1u << 20));
    struct st_extent ev;
    st_txn *t;
    T_OK(st_txn_begin(st, ST_TXN_WRITE, &t));
    T_OK(st_extent_find(t, 12, (3u << 20) + 300000, &ev));
    T_OK(st_chunk_evict(t, &ev.hash));
    T_OK(st_txn_commit(t));
    const struct st_wrange r[] = {
        { 100000, 4096, bytes },                        /* small, over data: isolated */
        { 500000, 20000, bytes + 4096 },                /* not shorter than the minimum */
        { (2u << 20) - 1000, 4096, bytes + 24096 },     /* reaches into the hole */
        { (2u << 20) + 5000, 100, bytes + 28192 },      /* inside the hole */
        { ev.off + 10, 4096, bytes + 30000 },           /* over a chunk held only by peers */
        { (3u << 20) + (900u << 10), 1000, bytes + 35000 }, /* small, over data: isolated */
    };
    struct st_wstat ws;
    T_OK(writev_txn(st, 12, r, LR_ARRAY_SIZE(r), ST_WRITE_ISOLATE, &ws));
    T_EQ(ws.isolated, 2);
    T_EQ(ws.lo, r[0].off);
    T_EQ(ws.hi, r[5].off + r[5].len);
    /* Without the flag nothing is isolated. */
    T_OK(writev_txn(st, 12, r, 1, 0, &ws));
    T_EQ(ws.isolated, 0);
    /* The evicted chunk back (as a fetch would), then every byte reads
     * right, the hole still a hole but for what was written into it. */
    t_fill(got, 1u << 20, 52);
    T_OK(st_txn_begin(st, ST_TXN_WRITE, &t));
    T_OK(st_chunk_put(t, &ev.hash, got + (ev.off - (3u << 20)) - ev.chunk_off, ev.len + ev.chunk_off));
    T_OK(st_txn_commit(t));
    for (size_t i = 0; i < LR_ARRAY_SIZE(r); i++)
        memcpy(ref + r[i].off, r[i].data, r[i].len);
    T_OK(read_back(st, 12, size, got));
    T_MEM(got, ref, size);
    free(ref);
    free(got);
    st_close(st);
}

static void test_rechunk_leaves_runs_with_a_chunk_held_only_by_peers(void)
{
    st_store *st = fresh();
    const size_t size = 2u << 20;
    uint8_t *ref = malloc(size), *got = malloc(size), *pool = malloc(64 * 4096);
    static struct st_wrange r[64];
    t_fill(ref, size, 61);
    t_fill(pool, 64 * 4096, 62);
    T_OK(write_at(st, 13, 0, ref, size));
    uint64_t rng = 3;
    random_blocks(&rng, r, 64, size, pool);
    struct st_wstat ws;
    T_OK(writev_txn(st, 13, r, 64, ST_WRITE_ISOLATE, &ws));
    T_EQ(ws.isolated, 64);
    for (size_t i = 0; i < 64; i++)
        memcpy(ref + r[i].off, r[i].data, r[i].len);
    /* Evict an old chunk that a write cut (the first whose bytes after
     * a write are named from its middle): the fragments around it cannot
     * be read here, the others can. */
    st_txn *t;
    struct st_extent e = { 0 };
    T_OK(st_txn_begin(st, ST_TXN_WRITE, &t));
    for (size_t i = 0; i < 64 && e.chunk_off == 0; i++)
        T_OK(st_extent_find(t, 13, r[i].off + 4096, &e));
    T_TRUE(e.chunk_off != 0);
    T_OK(st_chunk_evict(t, &e.hash));
    T_OK(st_txn_commit(t));
    uint64_t next, rw;
    T_OK(rechunk_txn(st, 13, 0, size, UINT64_MAX, &next, &rw));
    T_TRUE(rw > 0);
    T_EQ(next, size);
    /* The evicted chunk is still named where it was, and missing. */
    struct st_span sp[4];
    size_t k;
    T_OK(st_txn_begin(st, ST_TXN_READ, &t));
    T_OK(st_file_read(t, 13, e.off, e.len, sp, 4, &k));
    T_EQ(k, 1);
    T_EQ(sp[0].kind, ST_SPAN_MISSING);
    T_MEM(sp[0].hash.b, e.hash.b, ST_HASH_LEN);
    st_txn_abort(t);
    /* Fetched back, everything reads right. */
    T_OK(st_txn_begin(st, ST_TXN_WRITE, &t));
    {
        struct st_chunkref cr;
        T_OK(st_chunk_info(t, &e.hash, &cr));
        /* the chunk's bytes: the original content from its start */
        t_fill(got, size, 61);
        uint64_t cstart = e.off - e.chunk_off;
        T_OK(st_chunk_put(t, &e.hash, got + cstart, cr.len));
    }
    T_OK(st_txn_commit(t));
    T_OK(read_back(st, 13, size, got));
    T_MEM(got, ref, size);
    free(ref);
    free(got);
    free(pool);
    st_close(st);
}

int main(void)
{
    lr_log_set_level(getenv("V") ? LR_LOG_DEBUG : LR_LOG_QUIET);
    T_RUN(test_one_big_write_is_fastcdc_over_the_buffer);
    T_RUN(test_uneven_appends_end_with_the_same_chunks);
    T_RUN(test_big_overwrites_inside_and_across_the_end_match_a_reference);
    T_RUN(test_writev_runs_match_a_reference_and_leave_holes_alone);
    T_RUN(test_writev_does_not_join_over_a_chunk_held_only_by_peers);
    T_RUN(test_isolated_writes_cut_extents_and_rechunk_makes_them_fastcdc_again);
    T_RUN(test_isolation_needs_small_ranges_over_local_data);
    T_RUN(test_rechunk_leaves_runs_with_a_chunk_held_only_by_peers);
    if (dir) { t_rmrf(dir); free(dir); }
    return t_done();
}
