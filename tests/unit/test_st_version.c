/*
 * test_st_version.c - previous versions: an edit keeps the old data as a
 * version holding chunk references, versions read back byte for byte, at
 * most ST_VERSIONS_MAX are kept, edits within the minimum age make one
 * version, and deleting the file releases every chunk.
 */
#include <sys/stat.h>

#include "ns.h"
#include "store.h"
#include "t.h"

static char *dir;
static st_store *st;

static uint64_t mkfile(const char *name)
{
    st_txn *t;
    struct st_inode in;
    if (st_txn_begin(st, ST_TXN_WRITE, &t))
        return 0;
    if (st_ns_create(t, ST_ROOT_INO, name, strlen(name), S_IFREG | 0644, 0, 0, 0, NULL, 0, &in)) {
        st_txn_abort(t);
        return 0;
    }
    return st_txn_commit(t) ? 0 : in.ino;
}

static int put(uint64_t ino, const void *data, size_t len)
{
    st_txn *t;
    int rc = st_txn_begin(st, ST_TXN_WRITE, &t);
    if (rc)
        return rc;
    struct st_ns_attr a = { .size = 0 };
    struct st_inode in;
    struct st_wrange w = { .off = 0, .len = len, .data = data };
    if (!(rc = st_ns_setattr(t, ino, ST_NS_SET_SIZE, &a, &in)))
        rc = st_ns_write(t, ino, &w, 1, len, NULL, 0, NULL, &in);
    return st_txn_end(t, rc);
}

/* Version vno's bytes into out; returns its size or a negative error. */
static long read_version(uint64_t ino, uint64_t vno, uint8_t *out, size_t cap)
{
    st_txn *t;
    struct st_version v;
    int rc = st_txn_begin(st, ST_TXN_READ, &t);
    if (rc)
        return rc;
    if ((rc = st_version_get(t, ino, vno, &v)) || v.size > cap) {
        st_txn_abort(t);
        return rc ? rc : -EFBIG;
    }
    memset(out, 0, v.size);
    for (uint32_t i = 0; i < v.nextents && !rc; i++) {
        struct st_extent e;
        st_version_extent(&v, i, &e);
        const void *d;
        size_t n;
        if (!(rc = st_chunk_get(t, &e.hash, &d, &n)))
            memcpy(out + e.off, (const uint8_t *)d + e.chunk_off, e.len);
    }
    long size = (long)v.size;
    st_txn_abort(t);
    return rc ? rc : size;
}

static int count_cb(uint64_t vno, const struct st_version *v, void *arg)
{
    (void)vno; (void)v;
    (*(int *)arg)++;
    return 0;
}

static int count(uint64_t ino)
{
    st_txn *t;
    int n = 0;
    if (st_txn_begin(st, ST_TXN_READ, &t))
        return -1;
    st_version_foreach(t, ino, count_cb, &n);
    st_txn_abort(t);
    return n;
}

static void test_an_edit_keeps_the_old_data_as_a_version(void)
{
    st_version_set_min_age(0);
    uint64_t ino = mkfile("doc");
    T_TRUE(ino != 0);
    static uint8_t v1[200000], v2[150000], got[200000];
    t_fill(v1, sizeof(v1), 1);
    t_fill(v2, sizeof(v2), 2);
    T_OK(put(ino, v1, sizeof(v1)));
    T_EQ(count(ino), 0);                 /* an empty file had nothing to keep */
    T_OK(put(ino, v2, sizeof(v2)));
    T_EQ(count(ino), 1);                 /* v1, kept by the truncate */
    T_EQ(read_version(ino, 1, got, sizeof(got)), (long)sizeof(v1));
    T_MEM(got, v1, sizeof(v1));
    T_ERR(read_version(ino, 2, got, sizeof(got)), -ENOENT);
}

static void test_at_most_the_newest_versions_are_kept(void)
{
    st_version_set_min_age(0);
    uint64_t ino = mkfile("many");
    static uint8_t buf[70000], got[70000];
    for (int i = 0; i < ST_VERSIONS_MAX + 4; i++) {
        t_fill(buf, sizeof(buf), 100 + (uint64_t)i);
        T_OK(put(ino, buf, sizeof(buf)));
    }
    T_EQ(count(ino), ST_VERSIONS_MAX);
    /* The newest kept version is the next-to-last content written. */
    uint64_t newest = ST_VERSIONS_MAX + 3;
    T_EQ(read_version(ino, newest, got, sizeof(got)), (long)sizeof(got));
    t_fill(buf, sizeof(buf), 100 + ST_VERSIONS_MAX + 2);
    T_MEM(got, buf, sizeof(buf));
    T_ERR(read_version(ino, 1, got, sizeof(got)), -ENOENT);
}

static void test_edits_within_the_minimum_age_make_no_new_version(void)
{
    st_version_set_min_age(3600);
    uint64_t ino = mkfile("session");
    static uint8_t buf[50000];
    for (int i = 0; i < 3; i++) {
        t_fill(buf, sizeof(buf), 7 + (uint64_t)i);
        T_OK(put(ino, buf, sizeof(buf)));
    }
    T_EQ(count(ino), 0);
}

static int sum_refs(const st_hash *h, const struct st_chunkref *r, void *arg)
{
    (void)h;
    *(uint64_t *)arg += r->refcount;
    return 0;
}

static void test_versions_hold_references_and_deletion_releases_them(void)
{
    st_version_set_min_age(0);
    uint64_t ino = mkfile("gone");
    static uint8_t buf[300000];
    t_fill(buf, sizeof(buf), 50);
    T_OK(put(ino, buf, sizeof(buf)));
    t_fill(buf, sizeof(buf), 51);
    T_OK(put(ino, buf, sizeof(buf)));    /* version 1 holds the first data */
    st_txn *t;
    uint64_t before = 0, after = 0;
    T_OK(st_txn_begin(st, ST_TXN_READ, &t));
    T_OK(st_chunk_foreach(t, sum_refs, &before));
    st_txn_abort(t);
    T_OK(st_txn_begin(st, ST_TXN_WRITE, &t));
    uint64_t o;
    int orphan;
    T_OK(st_ns_unlink(t, ST_ROOT_INO, "gone", 4, &o, &orphan));
    T_EQ(orphan, 1);
    T_OK(st_ns_reap(t, o) < 0 ? -1 : 0);
    T_OK(st_txn_commit(t));
    T_OK(st_txn_begin(st, ST_TXN_READ, &t));
    T_OK(st_chunk_foreach(t, sum_refs, &after));
    st_txn_abort(t);
    /* Both the file's and its version's references are gone. */
    T_TRUE(before > after);
    T_EQ(count(ino), 0);
}

int main(void)
{
    lr_log_set_level(getenv("V") ? LR_LOG_DEBUG : LR_LOG_QUIET);
    dir = t_tmpdir();
    if (st_open(dir, ST_OPEN_CREATE, &st)) {
        printf("cannot create a store\n");
        return 1;
    }
    T_RUN(test_an_edit_keeps_the_old_data_as_a_version);
    T_RUN(test_at_most_the_newest_versions_are_kept);
    T_RUN(test_edits_within_the_minimum_age_make_no_new_version);
    T_RUN(test_versions_hold_references_and_deletion_releases_them);
    st_close(st);
    t_rmrf(dir);
    free(dir);
    return t_done();
}
