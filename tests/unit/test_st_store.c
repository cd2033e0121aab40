/*
 * test_st_store.c - the store API: open/create and its error paths, meta,
 * inodes, directory entries, xattrs, log, peers, chunks and refcounts, and
 * file data against an in-memory reference with invariant checks.
 */
#include <dirent.h>
#include <fcntl.h>
#include <lmdb.h>
#include <pthread.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "store.h"
#include "t.h"
#include "t_store.h"

static char *dir;

static st_store *fresh(void) { return t_store_fresh(&dir); }

/* Poke a raw meta value with LMDB directly, to build damaged stores. */
static int raw_meta_put(const char *d, const char *key, const void *val, size_t len)
{
    MDB_env *env;
    MDB_txn *txn;
    MDB_dbi dbi;
    if (mdb_env_create(&env)) return -1;
    mdb_env_set_maxdbs(env, 16);
    mdb_env_set_mapsize(env, 1ull << 40);
    if (mdb_env_open(env, d, 0, 0600)) return -1;
    mdb_txn_begin(env, NULL, 0, &txn);
    mdb_dbi_open(txn, "meta", 0, &dbi);
    MDB_val k = { strlen(key), (void *)key }, v = { len, (void *)val };
    int rc = mdb_put(txn, dbi, &k, &v, 0);
    mdb_txn_commit(txn);
    mdb_env_close(env);
    return rc;
}

static void test_open_missing_store_is_enoent(void)
{
    char *d = t_tmpdir();
    st_store *st = NULL;
    T_ERR(st_open(d, 0, &st), -ENOENT);
    T_TRUE(st == NULL);
    T_ERR(st_open(d, ST_OPEN_RDONLY, &st), -ENOENT);
    t_rmrf(d);
    free(d);
}

static void test_create_then_reopen_keeps_meta_and_root(void)
{
    st_store *st = fresh();
    T_TRUE(st != NULL);
    struct st_meta m1, m2;
    st_meta(st, &m1);
    T_EQ(m1.format, ST_FORMAT_VERSION);
    T_EQ(m1.cdc.avg, ST_CDC_AVG_DEFAULT);
    st_close(st);
    T_OK(st_open(dir, 0, &st));
    st_meta(st, &m2);
    T_MEM(m1.volume, m2.volume, ST_VOLUME_ID_LEN);
    st_txn *t;
    T_OK(st_txn_begin(st, ST_TXN_READ, &t));
    struct st_inode root;
    T_OK(st_inode_get(t, ST_ROOT_INO, &root));
    T_TRUE(S_ISDIR(root.mode));
    T_EQ(root.nlink, 2);
    T_EQ(st_dirent_empty(t, ST_ROOT_INO), 1);
    st_txn_abort(t);
    st_close(st);
}

static void test_wrong_format_version_is_refused(void)
{
    st_store *st = fresh();
    st_close(st);
    uint8_t v[4] = { 99, 0, 0, 0 };
    T_EQ(raw_meta_put(dir, "format", v, 4), 0);
    T_ERR(st_open(dir, 0, &st), LR_EVERSION);
}

static void test_bad_chunker_params_are_refused(void)
{
    st_store *st = fresh();
    st_close(st);
    uint8_t v[12];
    lr_put_le32(v, 65536); lr_put_le32(v + 4, 1000); lr_put_le32(v + 8, 10); /* min > max */
    T_EQ(raw_meta_put(dir, "cdc", v, 12), 0);
    T_ERR(st_open(dir, 0, &st), LR_EPARAMS);
}

static void test_truncated_meta_value_is_corrupt(void)
{
    st_store *st = fresh();
    st_close(st);
    T_EQ(raw_meta_put(dir, "volume", "abc", 3), 0);
    T_ERR(st_open(dir, 0, &st), LR_ECORRUPT);
}

static void test_garbage_lmdb_file_is_corrupt_not_a_crash(void)
{
    char *d = t_tmpdir();
    char p[4200];
    snprintf(p, sizeof(p), "%s/data.mdb", d);
    int fd = open(p, O_CREAT | O_WRONLY, 0600);
    uint8_t junk[65536];
    t_fill(junk, sizeof(junk), 7);
    T_EQ(write(fd, junk, sizeof(junk)), (long long)sizeof(junk));
    close(fd);
    st_store *st = NULL;
    int rc = st_open(d, 0, &st);
    T_TRUE(rc == LR_ECORRUPT || rc == LR_EVERSION);
    t_rmrf(d);
    free(d);
}

static void test_exclusive_open_locks_out_a_second_daemon(void)
{
    st_store *st = fresh(), *st2 = NULL;
    st_close(st);
    T_OK(st_open(dir, ST_OPEN_EXCL, &st));
    T_ERR(st_open(dir, ST_OPEN_EXCL, &st2), LR_ELOCKED);
    T_OK(st_open(dir, ST_OPEN_RDONLY, &st2)); /* fsck -n may still read */
    st_txn *t;
    T_ERR(st_txn_begin(st2, ST_TXN_WRITE, &t), -EROFS);
    st_close(st2);
    st_close(st);
}

static void test_inode_alloc_put_get_del(void)
{
    st_store *st = fresh();
    st_txn *t;
    T_OK(st_txn_begin(st, ST_TXN_WRITE, &t));
    struct st_inode a = { 0 }, b;
    T_OK(st_inode_alloc(t, &a));
    T_TRUE(a.ino > ST_ROOT_INO);
    a.mode = S_IFREG | 0644; a.nlink = 1; a.size = 12345; a.uid = 7; a.gid = 8;
    a.mtime.tv_sec = 1700000000; a.mtime.tv_nsec = 999999999;
    a.nvv = 2; a.vv[0].ctr = 5; a.vv[1].ctr = 9; memcpy(a.vv[1].dev, "ABCDEFGH", 8);
    T_OK(st_inode_put(t, &a));
    T_OK(st_inode_get(t, a.ino, &b));
    T_EQ(b.size, 12345); T_EQ(b.uid, 7); T_EQ(b.mode, S_IFREG | 0644);
    T_EQ(b.mtime.tv_nsec, 999999999); T_EQ(b.nvv, 2); T_EQ(b.vv[1].ctr, 9);
    T_MEM(b.fid, a.fid, 16);
    struct st_inode c = { 0 };
    T_OK(st_inode_alloc(t, &c));
    T_TRUE(c.ino != a.ino);
    T_TRUE(memcmp(c.fid, a.fid, 16) != 0);
    T_OK(st_inode_del(t, a.ino));
    T_ERR(st_inode_get(t, a.ino, &b), -ENOENT);
    T_ERR(st_inode_del(t, a.ino), -ENOENT);
    T_OK(st_txn_commit(t));
    st_close(st);
}

static void test_inode_decoder_rejects_damage(void)
{
    struct st_inode a = { 0 }, b;
    a.mode = S_IFDIR | 0755; a.nvv = 1;
    uint8_t buf[ST_INODE_LEN + 16 * ST_VV_MAX];
    size_t n = st_inode_encode(&a, buf, sizeof(buf));
    T_EQ(n, ST_INODE_LEN + 16);
    T_OK(st_inode_decode(buf, n, &b));
    T_ERR(st_inode_decode(buf, n - 1, &b), LR_ECORRUPT);      /* truncated */
    buf[2] = 200;                                              /* vv count too big */
    T_ERR(st_inode_decode(buf, n, &b), LR_ECORRUPT);
    buf[2] = 1; buf[0] = 9;                                    /* record version */
    T_ERR(st_inode_decode(buf, n, &b), LR_ECORRUPT);
    buf[0] = 1; lr_put_le32(buf + 4, 0170777 & ~S_IFMT);      /* no file type */
    T_ERR(st_inode_decode(buf, n, &b), LR_ECORRUPT);
}

struct names { char list[16][256]; int n; };
static int collect(const struct st_dirent *d, void *arg)
{
    struct names *ns = arg;
    if (ns->n < 16)
        snprintf(ns->list[ns->n++], 256, "%s", d->name);
    return 0;
}

static void test_dirents_list_in_name_order_and_resume_after_a_name(void)
{
    st_store *st = fresh();
    st_txn *t;
    T_OK(st_txn_begin(st, ST_TXN_WRITE, &t));
    const char *names[] = { "zeta", "alpha", "mid", "b" };
    for (int i = 0; i < 4; i++)
        T_OK(st_dirent_put(t, ST_ROOT_INO, names[i], strlen(names[i]), 100 + i, DT_REG));
    T_OK(st_dirent_put(t, 5, "other-dir", 9, 99, DT_REG));
    struct names ns = { .n = 0 };
    T_OK(st_dirent_foreach(t, ST_ROOT_INO, NULL, 0, collect, &ns));
    T_EQ(ns.n, 4);
    T_TRUE(!strcmp(ns.list[0], "alpha") && !strcmp(ns.list[1], "b") &&
           !strcmp(ns.list[2], "mid") && !strcmp(ns.list[3], "zeta"));
    ns.n = 0;
    T_OK(st_dirent_foreach(t, ST_ROOT_INO, "b", 1, collect, &ns));
    T_EQ(ns.n, 2);
    T_TRUE(!strcmp(ns.list[0], "mid"));
    struct st_dirent d;
    T_OK(st_dirent_get(t, ST_ROOT_INO, "mid", 3, &d));
    T_EQ(d.child, 102);
    T_EQ(d.type, DT_REG);
    T_OK(st_dirent_del(t, ST_ROOT_INO, "mid", 3));
    T_ERR(st_dirent_get(t, ST_ROOT_INO, "mid", 3, &d), -ENOENT);
    T_ERR(st_dirent_del(t, ST_ROOT_INO, "mid", 3), -ENOENT);
    T_EQ(st_dirent_empty(t, ST_ROOT_INO), 0);
    T_EQ(st_dirent_empty(t, 777), 1);
    char longname[300];
    memset(longname, 'x', sizeof(longname));
    T_OK(st_dirent_put(t, ST_ROOT_INO, longname, 255, 5, DT_REG));
    T_ERR(st_dirent_put(t, ST_ROOT_INO, longname, 256, 5, DT_REG), -ENAMETOOLONG);
    T_ERR(st_dirent_put(t, ST_ROOT_INO, "a/b", 3, 5, DT_REG), -EINVAL);
    T_ERR(st_dirent_put(t, ST_ROOT_INO, "", 0, 5, DT_REG), -EINVAL);
    T_OK(st_txn_commit(t));
    st_close(st);
}

struct nm { uint64_t parent[8]; char name[8][64]; int n; };
static int collect_name(uint64_t parent, const char *name, size_t len, void *arg)
{
    struct nm *m = arg;
    if (m->n < 8) {
        m->parent[m->n] = parent;
        snprintf(m->name[m->n++], 64, "%.*s", (int)len, name);
    }
    return 0;
}

static void test_fid_index_and_names_of_an_inode_follow_changes(void)
{
    st_store *st = fresh();
    st_txn *t;
    T_OK(st_txn_begin(st, ST_TXN_WRITE, &t));
    struct st_inode a = { 0 };
    T_OK(st_inode_alloc(t, &a));
    a.mode = S_IFREG | 0600; a.nlink = 2;
    T_OK(st_inode_put(t, &a));
    uint64_t ino;
    T_OK(st_fid_lookup(t, a.fid, &ino));
    T_EQ(ino, a.ino);
    T_OK(st_dirent_put(t, ST_ROOT_INO, "one", 3, a.ino, DT_REG));
    T_OK(st_dirent_put(t, 77, "two", 3, a.ino, DT_REG));
    struct nm m = { .n = 0 };
    T_OK(st_dirent_names(t, a.ino, collect_name, &m));
    T_EQ(m.n, 2);
    T_EQ(m.parent[0], ST_ROOT_INO);
    T_TRUE(!strcmp(m.name[0], "one") && !strcmp(m.name[1], "two"));
    /* Replacing an entry moves the backref to the new child. */
    T_OK(st_dirent_put(t, 77, "two", 3, 999, DT_REG));
    m.n = 0;
    T_OK(st_dirent_names(t, a.ino, collect_name, &m));
    T_EQ(m.n, 1);
    m.n = 0;
    T_OK(st_dirent_names(t, 999, collect_name, &m));
    T_EQ(m.n, 1);
    T_OK(st_dirent_del(t, ST_ROOT_INO, "one", 3));
    m.n = 0;
    T_OK(st_dirent_names(t, a.ino, collect_name, &m));
    T_EQ(m.n, 0);
    T_OK(st_inode_del(t, a.ino));
    T_ERR(st_fid_lookup(t, a.fid, &ino), -ENOENT);
    T_OK(st_txn_commit(t));
    st_close(st);
}

static int count_xattr(const char *name, size_t vlen, void *arg)
{
    (void)name; (void)vlen;
    (*(int *)arg)++;
    return 0;
}

static void test_xattr_log_and_peer_records(void)
{
    st_store *st = fresh();
    st_txn *t;
    T_OK(st_txn_begin(st, ST_TXN_WRITE, &t));
    const void *v;
    size_t n;
    T_ERR(st_xattr_get(t, 9, "user.a", &v, &n), -ENODATA);
    T_OK(st_xattr_put(t, 9, "user.a", "hello", 5));
    T_OK(st_xattr_put(t, 9, "user.b", "", 0));
    T_OK(st_xattr_put(t, 10, "user.c", "x", 1));
    T_OK(st_xattr_get(t, 9, "user.a", &v, &n));
    T_EQ(n, 5);
    T_MEM(v, "hello", 5);
    int cnt = 0;
    T_OK(st_xattr_foreach(t, 9, count_xattr, &cnt));
    T_EQ(cnt, 2);
    T_OK(st_xattr_del(t, 9, "user.a"));
    T_ERR(st_xattr_del(t, 9, "user.a"), -ENODATA);
    uint64_t s1, s2;
    T_OK(st_log_append(t, "one", 3, &s1));
    T_OK(st_log_append(t, "two", 3, &s2));
    T_EQ(s2, s1 + 1);
    uint8_t id[ST_DEVICE_ID_LEN] = { 1, 2, 3 };
    T_OK(st_peer_put(t, id, "rec", 3));
    T_OK(st_peer_get(t, id, &v, &n));
    T_EQ(n, 3);
    T_OK(st_peer_del(t, id));
    T_ERR(st_peer_get(t, id, &v, &n), -ENOENT);
    T_OK(st_txn_commit(t));
    st_close(st);
}

/* ---- file data against a reference ------------------------------------ */

struct inv { uint64_t refs[4096]; st_hash h[4096]; int n; int bad; uint64_t last_end; };

static int inv_extent(uint64_t ino, const struct st_extent *e, void *arg)
{
    struct inv *v = arg;
    (void)ino;
    if (e->off < v->last_end)
        v->bad = 1; /* overlap */
    v->last_end = e->off + e->len;
    for (int i = 0; i < v->n; i++)
        if (!memcmp(v->h[i].b, e->hash.b, ST_HASH_LEN)) {
            v->refs[i]++;
            return 0;
        }
    if (v->n < 4096) {
        v->h[v->n] = e->hash;
        v->refs[v->n++] = 1;
    }
    return 0;
}

static int inv_chunk(const st_hash *h, const struct st_chunkref *r, void *arg)
{
    struct inv *v = arg;
    for (int i = 0; i < v->n; i++)
        if (!memcmp(v->h[i].b, h->b, ST_HASH_LEN)) {
            if (r->refcount != v->refs[i])
                v->bad = 2;
            v->refs[i] = 0; /* seen */
            return 0;
        }
    v->bad = 3; /* a chunk nothing references */
    return 0;
}

/* Extents don't overlap, refcounts equal references, no garbage chunks. */
static int check_invariants(st_txn *t, const uint64_t *inos, int ninos)
{
    static struct inv v;
    memset(&v, 0, sizeof(v));
    for (int i = 0; i < ninos; i++) {
        v.last_end = 0;
        if (st_extent_foreach(t, inos[i], 0, inv_extent, &v))
            return -1;
    }
    if (st_chunk_foreach(t, inv_chunk, &v))
        return -1;
    for (int i = 0; i < v.n; i++)
        if (v.refs[i])
            v.bad = 4; /* referenced chunk without record */
    return v.bad;
}

static int read_all(st_txn *t, uint64_t ino, uint64_t size, uint8_t *out)
{
    struct st_span sp[64];
    uint64_t pos = 0;
    while (pos < size) {
        size_t n;
        int rc = st_file_read(t, ino, pos, (size_t)(size - pos), sp, 64, &n);
        if (rc)
            return rc;
        for (size_t i = 0; i < n; i++) {
            if (sp[i].kind == ST_SPAN_DATA)
                memcpy(out + pos, sp[i].data, sp[i].len);
            else if (sp[i].kind == ST_SPAN_HOLE)
                memset(out + pos, 0, sp[i].len);
            else
                return LR_EMISSING;
            pos += sp[i].len;
        }
    }
    return 0;
}

static void test_random_writes_truncates_and_punches_match_reference(void)
{
    st_store *st = fresh();
    const size_t cap = 8u << 20;
    uint8_t *ref = calloc(1, cap), *got = malloc(cap), *data = malloc(1u << 20);
    uint64_t size = 0, ino = 42;
    uint64_t rng = 12345;
    for (int op = 0; op < 300; op++) {
        rng = rng * 6364136223846793005ull + 1442695040888963407ull;
        uint64_t r = rng >> 11;
        st_txn *t;
        T_OK(st_txn_begin(st, ST_TXN_WRITE, &t));
        int kind = (int)(r % 10);
        if (kind < 6) {                                     /* write */
            uint64_t off = (r >> 8) % (cap - (1u << 20));
            if (kind == 0) off = size;                       /* append */
            size_t len = 1 + (size_t)((r >> 32) % (kind == 1 ? 300000 : 70000));
            if (off + len > cap) len = (size_t)(cap - off);
            t_fill(data, len, r);
            if (kind == 2) memset(data, 'A', len);           /* dedup-friendly */
            T_OK(st_file_write(t, ino, off, data, len));
            memcpy(ref + off, data, len);
            if (off + len > size) size = off + len;
        } else if (kind < 8) {                              /* truncate */
            uint64_t ns = size ? (r >> 8) % (size + 100000) : 0;
            if (ns > cap) ns = cap;
            T_OK(st_file_truncate(t, ino, ns));
            if (ns < size) memset(ref + ns, 0, size - ns);
            size = ns;
        } else {                                            /* punch */
            if (!size) { st_txn_abort(t); continue; }
            uint64_t off = (r >> 8) % size, len = 1 + (r >> 30) % 200000;
            if (off + len > size) len = size - off;
            T_OK(st_file_punch(t, ino, off, len));
            memset(ref + off, 0, len);
        }
        /* A second file sharing chunks keeps refcounts honest. */
        if (op == 100)
            T_OK(st_file_write(t, 43, 0, ref, (size_t)size));
        T_OK(st_txn_commit(t));
        T_OK(st_txn_begin(st, ST_TXN_READ, &t));
        T_OK(read_all(t, ino, size, got));
        if (memcmp(got, ref, size)) {
            st_txn_abort(t);
            T_FAILF("op %d (kind %d): content differs from the reference", op, kind);
        }
        uint64_t inos[2] = { ino, 43 };
        int inv = check_invariants(t, inos, 2);
        st_txn_abort(t);
        if (inv)
            T_FAILF("op %d (kind %d): invariant %d broken", op, kind, inv);
    }
    /* Deleting both inodes frees every chunk. */
    st_txn *t;
    T_OK(st_txn_begin(st, ST_TXN_WRITE, &t));
    T_OK(st_inode_put(t, &(struct st_inode){ .ino = 42, .mode = S_IFREG }));
    T_OK(st_inode_put(t, &(struct st_inode){ .ino = 43, .mode = S_IFREG }));
    T_OK(st_inode_del(t, 42));
    T_OK(st_inode_del(t, 43));
    T_OK(st_txn_commit(t));
    struct st_usage u;
    T_OK(st_usage(st, &u));
    T_EQ(u.chunks, 0);
    T_EQ(u.local_chunks, 0);
    free(ref); free(got); free(data);
    st_close(st);
}

struct hashes { st_hash h[1024]; int n; };
static int collect_hash(uint64_t ino, const struct st_extent *e, void *arg)
{
    struct hashes *hs = arg;
    (void)ino;
    if (hs->n < 1024)
        hs->h[hs->n++] = e->hash;
    return 0;
}

static int shared(const struct hashes *a, const struct hashes *b)
{
    int s = 0;
    for (int i = 0; i < a->n; i++)
        for (int j = 0; j < b->n; j++)
            if (!memcmp(a->h[i].b, b->h[j].b, ST_HASH_LEN)) { s++; break; }
    return s;
}

static void test_small_overwrite_and_append_rechunk_only_nearby_chunks(void)
{
    st_store *st = fresh();
    const size_t size = 16u << 20;
    uint8_t *data = malloc(size);
    t_fill(data, size, 99);
    st_txn *t;
    static struct hashes before, after;
    T_OK(st_txn_begin(st, ST_TXN_WRITE, &t));
    T_OK(st_file_write(t, 7, 0, data, size));
    T_OK(st_txn_commit(t));
    T_OK(st_txn_begin(st, ST_TXN_READ, &t));
    before.n = 0;
    T_OK(st_extent_foreach(t, 7, 0, collect_hash, &before));
    st_txn_abort(t);
    T_TRUE(before.n > 128 && before.n < 512); /* ~64 KiB average */

    T_OK(st_txn_begin(st, ST_TXN_WRITE, &t));
    T_OK(st_file_write(t, 7, size / 2, "landro", 6));
    T_OK(st_txn_commit(t));
    T_OK(st_txn_begin(st, ST_TXN_READ, &t));
    after.n = 0;
    T_OK(st_extent_foreach(t, 7, 0, collect_hash, &after));
    st_txn_abort(t);
    int s = shared(&before, &after);
    if (s < before.n - 3)
        T_FAILF("a 6-byte overwrite changed %d of %d chunks", before.n - s, before.n);

    /* Append 4 KiB: at most the last chunk and the new bytes change. */
    before = after;
    T_OK(st_txn_begin(st, ST_TXN_WRITE, &t));
    T_OK(st_file_write(t, 7, size, data, 4096));
    T_OK(st_txn_commit(t));
    T_OK(st_txn_begin(st, ST_TXN_READ, &t));
    after.n = 0;
    T_OK(st_extent_foreach(t, 7, 0, collect_hash, &after));
    st_txn_abort(t);
    s = shared(&before, &after);
    if (s < before.n - 1)
        T_FAILF("a 4 KiB append changed %d of %d chunks", before.n - s, before.n);
    free(data);
    st_close(st);
}

static void test_chunks_dedup_evict_and_declare(void)
{
    st_store *st = fresh();
    st_txn *t;
    uint8_t buf[100000];
    t_fill(buf, sizeof(buf), 3);
    T_OK(st_txn_begin(st, ST_TXN_WRITE, &t));
    T_OK(st_file_write(t, 50, 0, buf, sizeof(buf)));
    T_OK(st_file_write(t, 51, 0, buf, sizeof(buf)));
    struct st_extent e;
    T_OK(st_extent_find(t, 50, 10, &e));
    T_EQ(e.off, 0);
    struct st_chunkref r;
    T_OK(st_chunk_info(t, &e.hash, &r));
    T_EQ(r.refcount, 2);                     /* two files, one copy */
    T_TRUE(r.flags & ST_CHUNK_LOCAL);
    T_OK(st_chunk_evict(t, &e.hash));
    const void *p;
    size_t n;
    T_ERR(st_chunk_get(t, &e.hash, &p, &n), LR_EMISSING);
    struct st_span sp[8];
    T_OK(st_file_read(t, 50, 0, 10, sp, 8, &n));
    T_EQ(n, 1);
    T_EQ(sp[0].kind, ST_SPAN_MISSING);
    /* Writing into a chunk held only by peers: the new byte gets a chunk
     * of its own and the old extent is cut around it (no fetch needed). */
    T_OK(st_file_write(t, 50, 5, "x", 1));
    T_OK(st_file_read(t, 50, 0, 10, sp, 8, &n));
    T_EQ(n, 3);
    T_EQ(sp[0].kind, ST_SPAN_MISSING);
    T_EQ(sp[0].len, 5);
    T_EQ(sp[1].kind, ST_SPAN_DATA);
    T_EQ(sp[1].len, 1);
    T_MEM(sp[1].data, "x", 1);
    T_EQ(sp[2].kind, ST_SPAN_MISSING);
    T_MEM(sp[2].hash.b, e.hash.b, ST_HASH_LEN);
    T_EQ(sp[2].chunk_off, 6);
    T_OK(st_chunk_info(t, &e.hash, &r));
    T_EQ(r.refcount, 3);                     /* file 51, and file 50's two pieces */
    T_OK(st_file_write(t, 50, e.len, "tail", 4)); /* appending after it, too */
    T_OK(st_file_read(t, 50, e.len - 1, 5, sp, 8, &n));
    T_EQ(n, 2);
    T_EQ(sp[0].kind, ST_SPAN_MISSING);
    T_EQ(sp[1].kind, ST_SPAN_DATA);
    T_MEM(sp[1].data, "tail", 4);
    st_hash h;
    st_hash_compute(buf, e.len, &h);
    T_MEM(h.b, e.hash.b, ST_HASH_LEN);
    T_OK(st_chunk_put(t, &h, buf, e.len));   /* re-fetched from a peer */
    T_OK(st_chunk_get(t, &e.hash, &p, &n));
    T_EQ(n, e.len);
    st_hash other;
    st_hash_compute("zz", 2, &other);
    T_OK(st_chunk_declare(t, &other, 1234));
    T_ERR(st_chunk_get(t, &other, &p, &n), LR_EMISSING);
    T_ERR(st_chunk_put(t, &other, buf, 99), LR_EHASH); /* length differs from declared */
    st_hash unknown;
    st_hash_compute("unknown", 7, &unknown);
    T_ERR(st_chunk_get(t, &unknown, &p, &n), -ENOENT);
    T_OK(st_txn_commit(t));
    st_close(st);
}

static void test_full_disk_gives_enospc_and_keeps_committed_data(void)
{
    if (geteuid() != 0) {
        printf("# not root: full-disk test needs a tmpfs mount, checked in CI\n");
        return;
    }
    char *d = t_tmpdir();
    T_EQ(mount("tmpfs", d, "tmpfs", 0, "size=4m"), 0);
    char sd[4200];
    snprintf(sd, sizeof(sd), "%s/store", d);
    st_store *st;
    T_OK(st_open(sd, ST_OPEN_CREATE, &st));
    uint8_t *buf = malloc(1u << 20);
    t_fill(buf, 1u << 20, 5);
    st_txn *t;
    T_OK(st_txn_begin(st, ST_TXN_WRITE, &t));
    T_OK(st_file_write(t, 9, 0, buf, 1u << 20));
    T_OK(st_txn_commit(t));
    int rc = 0;
    for (int i = 1; i < 16 && !rc; i++) {
        T_OK(st_txn_begin(st, ST_TXN_WRITE, &t));
        t_fill(buf, 1u << 20, 100 + i);
        rc = st_file_write(t, 10, (uint64_t)i << 20, buf, 1u << 20);
        if (rc) { st_txn_abort(t); break; }
        rc = st_txn_commit(t);
    }
    T_ERR(rc, -ENOSPC);
    st_close(st);
    T_OK(st_open(sd, 0, &st));
    T_OK(st_txn_begin(st, ST_TXN_READ, &t));
    uint8_t *got = malloc(1u << 20);
    T_OK(read_all(t, 9, 1u << 20, got));
    t_fill(buf, 1u << 20, 5);
    T_MEM(got, buf, 1u << 20);
    st_txn_abort(t);
    st_close(st);
    umount(d);
    t_rmrf(d);
    free(d); free(buf); free(got);
}

static int count_holder(const uint8_t *dev, void *arg)
{
    (void)dev;
    (*(int *)arg)++;
    return 0;
}

static void test_holders_count_peers_and_go_with_the_chunk(void)
{
    st_store *st = fresh();
    st_txn *t;
    uint8_t buf[20000], pa[ST_DEVICE_ID_LEN], pb[ST_DEVICE_ID_LEN];
    t_fill(buf, sizeof(buf), 9);
    memset(pa, 0xaa, sizeof(pa));
    memset(pb, 0xbb, sizeof(pb));
    T_OK(st_txn_begin(st, ST_TXN_WRITE, &t));
    T_OK(st_file_write(t, 60, 0, buf, sizeof(buf)));
    struct st_extent e;
    T_OK(st_extent_find(t, 60, 0, &e));
    int changed = -1;
    T_OK(st_holder_set(t, &e.hash, pa, 1, &changed));
    T_EQ(changed, 1);
    T_OK(st_holder_set(t, &e.hash, pa, 1, &changed)); /* again: no change */
    T_EQ(changed, 0);
    T_OK(st_holder_set(t, &e.hash, pb, 1, NULL));
    struct st_chunkref r;
    T_OK(st_chunk_info(t, &e.hash, &r));
    T_EQ(r.peers, 2);
    T_EQ(st_holder_has(t, &e.hash, pa), 1);
    int n = 0;
    T_OK(st_holder_foreach(t, &e.hash, count_holder, &n));
    T_EQ(n, 2);
    T_OK(st_holder_set(t, &e.hash, pa, 0, &changed));
    T_EQ(changed, 1);
    T_OK(st_chunk_info(t, &e.hash, &r));
    T_EQ(r.peers, 1);
    T_EQ(st_holder_has(t, &e.hash, pa), 0);
    /* an unknown chunk is ignored */
    st_hash unknown;
    memset(unknown.b, 7, sizeof(unknown.b));
    T_OK(st_holder_set(t, &unknown, pa, 1, &changed));
    T_EQ(changed, 0);
    T_EQ(st_holder_has(t, &unknown, pa), 0);
    /* forgetting a peer drops its records everywhere */
    T_OK(st_holder_set(t, &e.hash, pa, 1, NULL));
    T_OK(st_holder_forget_peer(t, pa));
    T_OK(st_chunk_info(t, &e.hash, &r));
    T_EQ(r.peers, 1);
    /* LRU time only moves forward */
    T_OK(st_chunk_touch(t, &e.hash, r.last_use + 100));
    T_OK(st_chunk_touch(t, &e.hash, r.last_use + 50));
    struct st_chunkref r2;
    T_OK(st_chunk_info(t, &e.hash, &r2));
    T_EQ(r2.last_use, r.last_use + 100);
    /* dropping the file's data deletes the chunk and its holder records */
    T_OK(st_file_truncate(t, 60, 0));
    T_ERR(st_chunk_info(t, &e.hash, &r), -ENOENT);
    n = 0;
    T_OK(st_holder_foreach(t, &e.hash, count_holder, &n));
    T_EQ(n, 0);
    T_OK(st_txn_commit(t));
    struct st_usage u;
    T_OK(st_usage(st, &u));
    T_EQ(u.local_chunks, 0);
    st_close(st);
}

/* lr_grow: first capacity when empty, doubling when full, contents kept,
 * and nothing reallocated while there is room. */
static void test_lr_grow_doubles_and_keeps_contents(void)
{
    uint64_t *v = NULL;
    size_t n = 0, cap = 0;
    for (uint64_t i = 0; i < 100; i++) {
        uint64_t *before = v;
        size_t was = cap;
        uint64_t *a = lr_grow(v, &cap, n, sizeof(*a), 16);
        T_TRUE(a != NULL);
        if (n < was)
            T_TRUE(a == before);
        T_EQ(cap, n < was ? was : was ? 2 * was : 16);
        v = a;
        v[n++] = i * 7;
    }
    T_EQ(cap, 128);
    for (uint64_t i = 0; i < 100; i++)
        T_EQ(v[i], i * 7);
    free(v);
}

/* lr_mountinfo_next: fields by position (optional tags before "-"), the
 * kernel's octal escapes undone in mount point and source, malformed
 * lines skipped. */
static void test_mountinfo_lines(void)
{
    static const char text[] =
        "36 35 98:0 / /mnt1 rw,noatime master:1 - ext3 /dev/root rw,errors=continue\n"
        "garbage\n"
        "90 25 0:53 / /tmp/my\\040mount rw,nosuid shared:5 master:2 - fuse.landro landro:/s\\134p\\054q rw\n";
    FILE *f = fmemopen((void *)text, sizeof(text) - 1, "r");
    T_TRUE(f != NULL);
    char *line = NULL;
    size_t cap = 0;
    struct lr_mount m;
    T_EQ(lr_mountinfo_next(f, &line, &cap, &m), 1);
    T_EQ(m.major, 98);
    T_EQ(m.minor, 0);
    T_TRUE(!strcmp(m.point, "/mnt1") && !strcmp(m.type, "ext3") && !strcmp(m.source, "/dev/root"));
    T_EQ(lr_mountinfo_next(f, &line, &cap, &m), 1);
    T_EQ(m.minor, 53);
    T_TRUE(!strcmp(m.point, "/tmp/my mount"));
    T_TRUE(!strcmp(m.type, "fuse.landro"));
    T_TRUE(!strcmp(m.source, "landro:/s\\p,q"));
    T_EQ(lr_mountinfo_next(f, &line, &cap, &m), 0);
    free(line);
    fclose(f);
}

static off_t data_len(const char *d)
{
    char path[4200];
    struct stat sb;
    snprintf(path, sizeof(path), "%s/data.mdb", d);
    return stat(path, &sb) ? -1 : sb.st_size;
}

/* Write `mib` MiB of file data to inode ino from offset off_mib MiB on,
 * one transaction per MiB, seeded by seed. */
static void write_mib(st_store *st, uint64_t ino, unsigned off_mib, unsigned mib, unsigned seed)
{
    uint8_t *buf = malloc(1u << 20);
    for (unsigned i = 0; i < mib; i++) {
        st_txn *t;
        t_fill(buf, 1u << 20, seed + i);
        T_OK(st_txn_begin(st, ST_TXN_WRITE, &t));
        T_OK(st_file_write(t, ino, (uint64_t)(off_mib + i) << 20, buf, 1u << 20));
        T_OK(st_txn_commit(t));
    }
    free(buf);
}

/* The file data of ino from off_mib MiB on is what write_mib(st, ino,
 * off_mib, mib, seed) wrote. */
static void check_mib(st_store *st, uint64_t ino, unsigned off_mib, unsigned mib, unsigned seed)
{
    size_t end = (size_t)(off_mib + mib) << 20;
    uint8_t *buf = malloc(1u << 20), *got = malloc(end);
    st_txn *t;
    T_OK(st_txn_begin(st, ST_TXN_READ, &t));
    T_OK(read_all(t, ino, end, got));
    st_txn_abort(t);
    for (unsigned i = 0; i < mib; i++) {
        t_fill(buf, 1u << 20, seed + i);
        T_MEM(got + ((size_t)(off_mib + i) << 20), buf, 1u << 20);
    }
    free(buf);
    free(got);
}

/* store/mapspace.c: with the writable map, data.mdb stays about as long
 * as the pages in use (LMDB alone makes it as long as the 1 TiB map) and
 * is cut back to them exactly when the store is opened again. */
static void test_data_file_is_as_long_as_the_store(void)
{
    char *d = t_tmpdir();
    st_store *st;
    struct st_usage u;
    T_OK(st_open(d, ST_OPEN_CREATE, &st));
    write_mib(st, 9, 0, 24, 1);
    T_OK(st_usage(st, &u));
    off_t len = data_len(d);
    T_TRUE(len >= (off_t)u.map_bytes);
    T_TRUE(len <= (off_t)u.map_bytes + (10 << 20)); /* 8 MiB ahead, a reserve */
    st_close(st);
    T_OK(st_open(d, ST_OPEN_RDONLY, &st));
    T_OK(st_usage(st, &u));
    st_close(st);
    T_EQ(data_len(d), len); /* a read-only open changes nothing */
    T_OK(st_open(d, 0, &st));
    T_OK(st_usage(st, &u));
    T_EQ(data_len(d), (off_t)u.map_bytes);
    check_mib(st, 9, 0, 24, 1);
    st_close(st);
    t_rmrf(d);
    free(d);
}

/* A second process opening the store for writing (landro peer add while
 * the daemon runs) cuts the file back to the pages in use, below blocks
 * the first had allocated ahead; the first must notice and allocate
 * again, not write through the map past the end of the file (SIGBUS). */
static void test_a_second_writer_cutting_the_file_back_breaks_nothing(void)
{
    char *d = t_tmpdir();
    st_store *st;
    T_OK(st_open(d, ST_OPEN_CREATE, &st));
    write_mib(st, 9, 0, 4, 1);
    off_t before = data_len(d);
    pid_t pid = fork();
    T_TRUE(pid >= 0);
    if (pid == 0) {
        st_store *other;
        _exit(st_open(d, 0, &other) ? 1 : (st_close(other), 0));
    }
    int status;
    T_EQ(waitpid(pid, &status, 0), pid);
    T_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    T_TRUE(data_len(d) < before);
    write_mib(st, 9, 4, 12, 5);
    check_mib(st, 9, 0, 4, 1);
    st_close(st);
    T_OK(st_open(d, 0, &st));
    check_mib(st, 9, 0, 4, 1);
    check_mib(st, 9, 4, 12, 5);
    st_close(st);
    t_rmrf(d);
    free(d);
}

static int dir_exists(const char *d, const char *name)
{
    char path[4200];
    struct stat sb;
    snprintf(path, sizeof(path), "%s/%s", d, name);
    return stat(path, &sb) == 0;
}

struct holder_arg {
    st_store *st;
    int pipe_fd; /* written once the read transaction is open */
    unsigned hold_ms;
};

static void *hold_read_txn(void *arg)
{
    struct holder_arg *h = arg;
    st_txn *t;
    if (st_txn_begin(h->st, ST_TXN_READ, &t))
        return NULL;
    char c = 1;
    if (write(h->pipe_fd, &c, 1) != 1)
        abort();
    usleep(h->hold_ms * 1000);
    st_txn_abort(t);
    return NULL;
}

/* A store in d, opened as the daemon opens it, with mib MiB written to
 * inode 10 and deleted again: their pages are on LMDB's free list. */
static void open_with_freed(const char *d, unsigned mib, st_store **out)
{
    st_store *st;
    T_OK(st_open(d, ST_OPEN_CREATE | ST_OPEN_EXCL, &st));
    *out = st;
    write_mib(st, 10, 0, mib, 7);
    st_txn *t;
    T_OK(st_txn_begin(st, ST_TXN_WRITE, &t));
    T_OK(st_file_truncate(t, 10, 0));
    T_OK(st_txn_commit(t));
}

/* store/mapspace.c, st_compact_open: a store the daemon has open gives a
 * large delete's pages back in place, and goes on serving the same data
 * from the compacted file. It waits only so long for open transactions,
 * and never while another process has the store open. */
static void test_an_open_store_compacts_in_place(void)
{
    char *d = t_tmpdir();
    uint64_t before, after;
    st_store *st = NULL;
    open_with_freed(d, 48, &st);
    if (!st)
        return;
    write_mib(st, 9, 0, 4, 1);
    struct st_space sp;
    T_OK(st_space(st, &sp));
    T_TRUE(sp.file_bytes >= (48ull << 20));
    T_TRUE(sp.free_bytes >= (40ull << 20));

    /* A transaction open longer than the wait: nothing changes. */
    int pfd[2];
    T_OK(pipe(pfd));
    struct holder_arg h = { .st = st, .pipe_fd = pfd[1], .hold_ms = 600 };
    pthread_t th;
    T_OK(pthread_create(&th, NULL, hold_read_txn, &h));
    char c;
    T_EQ(read(pfd[0], &c, 1), 1);
    off_t len = data_len(d);
    T_ERR(st_compact_open(st, 50, &before, &after), -EAGAIN);
    pthread_join(th, NULL);
    T_EQ(data_len(d), len);
    T_TRUE(!dir_exists(d, "compact.tmp"));

    /* Another process with the store open: refused, before any copy. */
    int go[2];
    T_OK(pipe(go));
    pid_t pid = fork();
    T_TRUE(pid >= 0);
    if (pid == 0) {
        st_store *other;
        if (st_open(d, ST_OPEN_RDONLY, &other))
            _exit(1);
        char b = 1;
        if (write(pfd[1], &b, 1) != 1 || read(go[0], &b, 1) != 1)
            _exit(2);
        st_close(other);
        _exit(0);
    }
    T_EQ(read(pfd[0], &c, 1), 1);
    T_ERR(st_compact_open(st, 1000, &before, &after), -EBUSY);
    T_EQ(write(go[1], &c, 1), 1);
    int status;
    T_EQ(waitpid(pid, &status, 0), pid);
    T_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);

    T_OK(st_compact_open(st, 1000, &before, &after));
    T_TRUE(before >= (48ull << 20));
    T_TRUE(after < (12ull << 20));
    T_EQ(data_len(d), (off_t)after);
    T_TRUE(!dir_exists(d, "compact.tmp"));
    T_OK(st_space(st, &sp));
    T_TRUE(sp.free_bytes < (1ull << 20));
    check_mib(st, 9, 0, 4, 1);
    write_mib(st, 9, 4, 4, 3); /* the new environment takes writes */
    check_mib(st, 9, 0, 4, 1);
    check_mib(st, 9, 4, 4, 3);
    /* The gate is shared again: other processes open the store. */
    pid = fork();
    T_TRUE(pid >= 0);
    if (pid == 0) {
        st_store *other;
        _exit(st_open(d, ST_OPEN_RDONLY, &other) ? 1 : (st_close(other), 0));
    }
    T_EQ(waitpid(pid, &status, 0), pid);
    T_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    st_close(st);
    T_OK(st_open(d, 0, &st));
    check_mib(st, 9, 0, 4, 1);
    check_mib(st, 9, 4, 4, 3);
    st_close(st);
    close(pfd[0]); close(pfd[1]); close(go[0]); close(go[1]);
    t_rmrf(d);
    free(d);
}

struct cancel_arg {
    st_store *st;
    unsigned after_ms;
};

static void *cancel_later(void *arg)
{
    struct cancel_arg *c = arg;
    usleep(c->after_ms * 1000);
    st_compact_cancel(c->st);
    return NULL;
}

/* st_compact_cancel cuts a copy under way off (an unmount does not wait
 * for a copy of the whole store): st_compact_open returns -ECANCELED, not
 * 0, which it would if the copy ran to its end (160 MiB do not copy in
 * 10 ms); the store is as it was, no copy is left, and later calls are
 * refused at once. */
static void test_a_compaction_is_cut_off_by_cancel(void)
{
    char *d = t_tmpdir();
    uint64_t before, after;
    st_store *st = NULL;
    open_with_freed(d, 64, &st);
    if (!st)
        return;
    write_mib(st, 9, 0, 160, 1);
    off_t len = data_len(d);
    struct cancel_arg c = { .st = st, .after_ms = 10 };
    pthread_t th;
    T_OK(pthread_create(&th, NULL, cancel_later, &c));
    T_ERR(st_compact_open(st, 1000, &before, &after), -ECANCELED);
    pthread_join(th, NULL);
    T_EQ(data_len(d), len);
    T_TRUE(!dir_exists(d, "compact.tmp"));
    T_ERR(st_compact_open(st, 1000, &before, &after), -ECANCELED);
    check_mib(st, 9, 0, 160, 1);
    write_mib(st, 8, 0, 2, 5); /* still takes writes */
    st_close(st);
    T_OK(st_open(d, 0, &st));
    check_mib(st, 8, 0, 2, 5);
    st_close(st);
    t_rmrf(d);
    free(d);
}

struct writer_arg {
    st_store *st;
    int stop;       /* atomic */
    unsigned done;  /* 64 KiB blocks committed */
    int err;
};

/* Block k of inode 11: 64 KiB seeded k, one transaction each. */
static void *write_blocks(void *arg)
{
    struct writer_arg *w = arg;
    uint8_t *buf = malloc(64 << 10);
    while (!__atomic_load_n(&w->stop, __ATOMIC_ACQUIRE) && w->done < 16384) {
        st_txn *t;
        t_fill(buf, 64 << 10, w->done);
        int rc = st_txn_begin(w->st, ST_TXN_WRITE, &t);
        if (!rc)
            rc = st_txn_end(t, st_file_write(t, 11, (uint64_t)w->done << 16, buf, 64 << 10));
        if (rc) {
            w->err = rc;
            break;
        }
        w->done++;
        usleep(3000);
    }
    free(buf);
    return NULL;
}

/* Compaction with a writer committing meanwhile: each try either swaps
 * in a copy that no commit missed or changes nothing, and every committed
 * block reads back after. */
static void test_compaction_during_writes_loses_no_commit(void)
{
    char *d = t_tmpdir();
    uint64_t before, after;
    st_store *st = NULL;
    open_with_freed(d, 32, &st);
    if (!st)
        return;
    st_txn *t;
    struct writer_arg w = { .st = st };
    pthread_t th;
    T_OK(pthread_create(&th, NULL, write_blocks, &w));
    /* Until copies have been both swapped in and dropped for commits
     * made during them (a commit every 3 ms, a copy of several). */
    int done = 0, dropped = 0;
    for (int tries = 0; tries < 400 && (done < 3 || dropped < 1); tries++) {
        int rc = st_compact_open(st, 1000, &before, &after);
        T_TRUE(rc == 0 || rc == -EAGAIN);
        done += rc == 0;
        dropped += rc == -EAGAIN;
        usleep(5000);
    }
    __atomic_store_n(&w.stop, 1, __ATOMIC_RELEASE);
    pthread_join(th, NULL);
    T_OK(w.err);
    T_TRUE(done >= 3);
    T_TRUE(dropped >= 1);
    T_TRUE(w.done > 0);
    uint8_t *got = malloc((size_t)w.done << 16), *want = malloc(64 << 10);
    T_OK(st_txn_begin(st, ST_TXN_READ, &t));
    T_OK(read_all(t, 11, (uint64_t)w.done << 16, got));
    st_txn_abort(t);
    for (unsigned k = 0; k < w.done; k++) {
        t_fill(want, 64 << 10, k);
        T_MEM(got + ((size_t)k << 16), want, 64 << 10);
    }
    st_close(st);
    free(got);
    free(want);
    t_rmrf(d);
    free(d);
}

int main(void)
{
    T_RUN(test_lr_grow_doubles_and_keeps_contents);
    T_RUN(test_mountinfo_lines);
    lr_log_set_level(getenv("V") ? LR_LOG_DEBUG : LR_LOG_QUIET);
    T_RUN(test_open_missing_store_is_enoent);
    T_RUN(test_create_then_reopen_keeps_meta_and_root);
    T_RUN(test_wrong_format_version_is_refused);
    T_RUN(test_bad_chunker_params_are_refused);
    T_RUN(test_truncated_meta_value_is_corrupt);
    T_RUN(test_garbage_lmdb_file_is_corrupt_not_a_crash);
    T_RUN(test_exclusive_open_locks_out_a_second_daemon);
    T_RUN(test_inode_alloc_put_get_del);
    T_RUN(test_inode_decoder_rejects_damage);
    T_RUN(test_dirents_list_in_name_order_and_resume_after_a_name);
    T_RUN(test_xattr_log_and_peer_records);
    T_RUN(test_fid_index_and_names_of_an_inode_follow_changes);
    T_RUN(test_chunks_dedup_evict_and_declare);
    T_RUN(test_holders_count_peers_and_go_with_the_chunk);
    T_RUN(test_random_writes_truncates_and_punches_match_reference);
    T_RUN(test_small_overwrite_and_append_rechunk_only_nearby_chunks);
    T_RUN(test_full_disk_gives_enospc_and_keeps_committed_data);
    T_RUN(test_data_file_is_as_long_as_the_store);
    T_RUN(test_a_second_writer_cutting_the_file_back_breaks_nothing);
    T_RUN(test_an_open_store_compacts_in_place);
    T_RUN(test_compaction_during_writes_loses_no_commit);
    T_RUN(test_a_compaction_is_cut_off_by_cancel);
    if (dir) { t_rmrf(dir); free(dir); }
    return t_done();
}
