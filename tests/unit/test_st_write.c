/*
 * test_st_write.c - st_file_write on large writes (the path that chunks the
 * caller's buffer in place and hashes on two threads): the extents of a
 * file equal FastCDC run over its whole content, whether it was written
 * at once or appended in uneven pieces, chunks straddling the old bytes
 * before or after a write are right, and overwrites match a reference.
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

int main(void)
{
    lr_log_set_level(getenv("V") ? LR_LOG_DEBUG : LR_LOG_QUIET);
    T_RUN(test_one_big_write_is_fastcdc_over_the_buffer);
    T_RUN(test_uneven_appends_end_with_the_same_chunks);
    T_RUN(test_big_overwrites_inside_and_across_the_end_match_a_reference);
    if (dir) { t_rmrf(dir); free(dir); }
    return t_done();
}
