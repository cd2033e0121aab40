/*
 * test_st_replica.c - replication between two (and three) stores: new
 * files, renames, deletes with tombstones, concurrent edits with conflict
 * copies, delete vs modify, name collisions, and convergence.
 */
#include <dirent.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ns.h"
#include "replica.h"
#include "raw.h"
#include "store.h"
#include "t.h"

struct peer {
    char *dir;
    st_store *st;
    uint8_t dev[8];
    uint64_t sent_to[4]; /* highest log seq sent to peer i */
    int orphans;
};

static void peer_open(struct peer *p, int id)
{
    p->dir = t_tmpdir();
    if (st_open(p->dir, ST_OPEN_CREATE, &p->st)) { fprintf(stderr, "open failed\n"); exit(2); }
    uint8_t dev[ST_DEVICE_ID_LEN];
    memset(dev, 0, sizeof(dev));
    dev[0] = (uint8_t)(0x10 * id + 1);
    memcpy(p->dev, dev, 8);
    st_txn *t;
    st_txn_begin(p->st, ST_TXN_WRITE, &t);
    st_meta_set_device(t, dev);
    st_txn_commit(t);
    memset(p->sent_to, 0, sizeof(p->sent_to));
    p->orphans = 0;
}

static void peer_close(struct peer *p)
{
    st_close(p->st);
    t_rmrf(p->dir);
    free(p->dir);
}

/* Make a peer's second store a copy of the first's volume id. */
static void same_volume(struct peer *a, struct peer *b)
{
    struct st_meta m;
    st_meta(a->st, &m);
    st_txn *t;
    st_txn_begin(b->st, ST_TXN_WRITE, &t);
    st_meta_set_volume(t, m.volume);
    st_txn_commit(t);
}

static uint64_t lookup(struct peer *p, uint64_t parent, const char *name)
{
    st_txn *t;
    struct st_dirent d;
    st_txn_begin(p->st, ST_TXN_READ, &t);
    int rc = st_dirent_get(t, parent, name, strlen(name), &d);
    st_txn_abort(t);
    return rc ? 0 : d.child;
}

static void logrec(st_txn *t, const struct st_inode *in, uint64_t parent)
{
    uint8_t r[80] = { 1, 99 };
    memcpy(r + 16, in->fid, 16);
    struct st_inode p;
    if (parent && st_inode_get(t, parent, &p) == 0)
        memcpy(r + 32, p.fid, 16);
    st_log_append(t, r, sizeof(r), NULL);
}

/* Local operations, as ns.c would do them (bump vv, log). */
static uint64_t mk(struct peer *p, uint64_t parent, const char *name, uint32_t mode,
                   const void *data, size_t len, time_t mtime)
{
    st_txn *t;
    st_txn_begin(p->st, ST_TXN_WRITE, &t);
    struct st_inode in = { 0 };
    st_inode_alloc(t, &in);
    in.mode = mode;
    in.nlink = S_ISDIR(mode) ? 2 : 1;
    in.mtime.tv_sec = in.ctime.tv_sec = mtime;
    in.parent = parent;
    in.size = len;
    st_vv_bump(&in, p->dev);
    if (len)
        st_file_write(t, in.ino, 0, data, len);
    st_inode_put(t, &in);
    st_dirent_put(t, parent, name, strlen(name), in.ino, S_ISDIR(mode) ? DT_DIR : DT_REG);
    logrec(t, &in, parent);
    if (st_txn_commit(t)) return 0;
    return in.ino;
}

static int edit(struct peer *p, uint64_t ino, const void *data, size_t len, time_t mtime)
{
    st_txn *t;
    st_txn_begin(p->st, ST_TXN_WRITE, &t);
    struct st_inode in;
    int rc = st_inode_get(t, ino, &in);
    if (!rc) rc = st_file_truncate(t, ino, 0);
    if (!rc) rc = st_file_write(t, ino, 0, data, len);
    in.size = len;
    in.mtime.tv_sec = mtime;
    st_vv_bump(&in, p->dev);
    if (!rc) rc = st_inode_put(t, &in);
    logrec(t, &in, in.parent);
    if (rc) { st_txn_abort(t); return rc; }
    return st_txn_commit(t);
}

static int rm(struct peer *p, uint64_t parent, const char *name)
{
    st_txn *t;
    st_txn_begin(p->st, ST_TXN_WRITE, &t);
    struct st_dirent d;
    int rc = st_dirent_get(t, parent, name, strlen(name), &d);
    struct st_inode in;
    if (!rc) rc = st_inode_get(t, d.child, &in);
    if (!rc) rc = st_dirent_del(t, parent, name, strlen(name));
    in.nlink = 0;
    st_vv_bump(&in, p->dev);
    if (!rc) rc = st_inode_put(t, &in);
    logrec(t, &in, parent);
    if (!rc) rc = st_inode_del(t, in.ino); /* reaped at once: nothing holds it */
    if (rc) { st_txn_abort(t); return rc; }
    return st_txn_commit(t);
}

static int mv(struct peer *p, uint64_t parent, const char *name, uint64_t np, const char *nn)
{
    st_txn *t;
    st_txn_begin(p->st, ST_TXN_WRITE, &t);
    struct st_dirent d;
    int rc = st_dirent_get(t, parent, name, strlen(name), &d);
    struct st_inode in;
    if (!rc) rc = st_inode_get(t, d.child, &in);
    if (!rc) rc = st_dirent_del(t, parent, name, strlen(name));
    if (!rc) rc = st_dirent_put(t, np, nn, strlen(nn), in.ino, d.type);
    in.parent = np;
    st_vv_bump(&in, p->dev);
    if (!rc) rc = st_inode_put(t, &in);
    logrec(t, &in, np);
    if (rc) { st_txn_abort(t); return rc; }
    return st_txn_commit(t);
}

static void on_orphan(void *ctx, uint64_t ino)
{
    struct peer *p = ctx;
    (void)ino;
    p->orphans++;
}

struct sendctx {
    st_txn *src; st_txn *dst; struct peer *to; const uint8_t *from; int rc; uint64_t last, limit;
    uint8_t (*pend)[16]; int npend, pendcap; /* optional: files to apply again, as sync.c does */
    uint64_t pend_floor;                     /* lowest sequence that left one pending */
};
static int g_eagain; /* records that arrived before their directory, all syncs */

static int send_one(uint64_t seq, const void *rec, size_t len, void *arg)
{
    struct sendctx *c = arg;
    uint8_t fids[4][16];
    int n = st_rep_log_fids(rec, len, fids);
    for (int i = 0; i < n; i++) {
        uint8_t *buf;
        size_t blen;
        if (st_rep_export(c->src, fids[i], &buf, &blen))
            continue;
        static struct st_rep_file f;
        int rc = st_rep_decode(buf, blen, &f);
        if (rc) { c->rc = rc; free(buf); return rc; }
        int result;
        struct st_rep_hooks h = { .orphan = on_orphan, .ctx = c->to };
        rc = st_rep_apply(c->dst, &f, c->from, &h, &result);
        free(buf);
        g_eagain += rc == -EAGAIN;
        if (rc == -EAGAIN && c->pend && c->npend < c->pendcap) {
            memcpy(c->pend[c->npend++], fids[i], 16);
            c->pend_floor = LR_MIN(c->pend_floor, seq);
        }
        if (rc && rc != -EAGAIN) { c->rc = rc; return rc; }
    }
    c->last = seq;
    return 0;
}

/* Send a's log records that b has not seen to b; returns 0 or an error. */
static int sync1(struct peer *a, int ai, struct peer *b, int bi)
{
    st_txn *src, *dst;
    st_txn_begin(a->st, ST_TXN_READ, &src);
    st_txn_begin(b->st, ST_TXN_WRITE, &dst);
    struct sendctx c = { .src = src, .dst = dst, .to = b, .from = a->dev, .last = a->sent_to[bi] };
    int rc = st_log_foreach(src, a->sent_to[bi] + 1, send_one, &c);
    st_txn_abort(src);
    if (rc) { st_txn_abort(dst); return rc; }
    a->sent_to[bi] = c.last;
    (void)ai;
    return st_txn_commit(dst);
}

static int sync2(struct peer *a, struct peer *b)
{
    int rc;
    for (int round = 0; round < 3; round++) /* changes made by apply relay back */
        if ((rc = sync1(a, 0, b, 1)) || (rc = sync1(b, 1, a, 0)))
            return rc;
    return 0;
}

/* Read a file's bytes, fetching missing chunks from src's store. */
static int read_file(struct peer *p, uint64_t ino, struct peer *src, uint8_t *out, size_t cap, size_t *got)
{
    st_txn *t;
    st_txn_begin(p->st, ST_TXN_READ, &t);
    struct st_inode in;
    int rc = st_inode_get(t, ino, &in);
    struct st_span sp[64];
    size_t n = 0;
    if (!rc && in.size > cap) rc = -EFBIG;
    if (!rc) rc = st_file_read(t, ino, 0, (size_t)in.size, sp, 64, &n);
    size_t pos = 0;
    int missing = 0;
    for (size_t i = 0; i < n && !rc; i++) {
        if (sp[i].kind == ST_SPAN_MISSING) {
            missing = 1;
            st_txn *s, *w;
            const void *d;
            size_t dl;
            st_txn_begin(src->st, ST_TXN_READ, &s);
            if ((rc = st_chunk_get(s, &sp[i].hash, &d, &dl)) == 0) {
                st_txn_begin(p->st, ST_TXN_WRITE, &w);
                rc = st_chunk_put(w, &sp[i].hash, d, dl);
                if (!rc) rc = st_txn_commit(w); else st_txn_abort(w);
            }
            st_txn_abort(s);
        } else if (sp[i].kind == ST_SPAN_DATA) {
            memcpy(out + pos, sp[i].data, sp[i].len);
        } else {
            memset(out + pos, 0, sp[i].len);
        }
        pos += sp[i].len;
    }
    st_txn_abort(t);
    *got = pos;
    if (!rc && missing)
        return read_file(p, ino, src, out, cap, got);
    return rc;
}

static void test_new_tree_replicates_and_reads_after_fetch(void)
{
    struct peer a, b;
    peer_open(&a, 1); peer_open(&b, 2); same_volume(&a, &b);
    uint8_t data[300000];
    t_fill(data, sizeof(data), 11);
    uint64_t d = mk(&a, ST_ROOT_INO, "docs", S_IFDIR | 0755, NULL, 0, 1000);
    uint64_t f = mk(&a, d, "report.bin", S_IFREG | 0644, data, sizeof(data), 1001);
    T_TRUE(d && f);
    T_OK(sync2(&a, &b));
    uint64_t bd = lookup(&b, ST_ROOT_INO, "docs");
    T_TRUE(bd != 0);
    uint64_t bf = lookup(&b, bd, "report.bin");
    T_TRUE(bf != 0);
    st_txn *t;
    st_txn_begin(b.st, ST_TXN_READ, &t);
    struct st_inode in;
    T_OK(st_inode_get(t, bf, &in));
    T_EQ(in.size, sizeof(data));
    T_EQ(in.mode, S_IFREG | 0644);
    struct st_span sp[4];
    size_t n;
    T_OK(st_file_read(t, bf, 0, 10, sp, 4, &n));
    T_EQ(sp[0].kind, ST_SPAN_MISSING);  /* metadata only: data comes on demand */
    struct st_inode root;
    T_OK(st_inode_get(t, ST_ROOT_INO, &root));
    T_EQ(root.nlink, 3);                /* the replicated subdirectory counts */
    st_txn_abort(t);
    static uint8_t got[300000];
    size_t gl;
    T_OK(read_file(&b, bf, &a, got, sizeof(got), &gl));
    T_EQ(gl, sizeof(data));
    T_MEM(got, data, sizeof(data));
    peer_close(&a); peer_close(&b);
}

static void test_rename_moves_without_data_and_delete_leaves_tombstone(void)
{
    struct peer a, b;
    peer_open(&a, 1); peer_open(&b, 2); same_volume(&a, &b);
    uint64_t d = mk(&a, ST_ROOT_INO, "d", S_IFDIR | 0755, NULL, 0, 1000);
    mk(&a, ST_ROOT_INO, "f", S_IFREG | 0644, "hello", 5, 1000);
    T_OK(sync2(&a, &b));
    uint64_t bf = lookup(&b, ST_ROOT_INO, "f");
    T_TRUE(bf != 0);
    T_OK(mv(&a, ST_ROOT_INO, "f", d, "g"));
    T_OK(sync2(&a, &b));
    T_EQ(lookup(&b, ST_ROOT_INO, "f"), 0);
    uint64_t bd = lookup(&b, ST_ROOT_INO, "d");
    T_EQ(lookup(&b, bd, "g"), bf);      /* same inode: a move, not a copy */
    T_OK(rm(&a, d, "g"));
    T_OK(sync2(&a, &b));
    T_EQ(lookup(&b, bd, "g"), 0);
    T_EQ(b.orphans, 1);
    /* An old record of the file (from before the delete) is refused. */
    st_txn *t;
    st_txn_begin(b.st, ST_TXN_READ, &t);
    struct st_inode in;
    T_OK(st_inode_get(t, bf, &in));     /* orphan kept until reaped */
    st_txn_abort(t);
    peer_close(&a); peer_close(&b);
}

/* Edit the file named name (in the root) on a and on b before they sync
 * (concurrent versions), then sync them. */
static int edit_both(struct peer *a, struct peer *b, const char *name, const char *da, time_t ma,
                     const char *db, time_t mb)
{
    int rc = edit(a, lookup(a, ST_ROOT_INO, name), da, strlen(da), ma);
    if (!rc)
        rc = edit(b, lookup(b, ST_ROOT_INO, name), db, strlen(db), mb);
    return rc ? rc : sync2(a, b);
}

static void test_concurrent_edits_keep_both_versions_on_both_peers(void)
{
    struct peer a, b;
    peer_open(&a, 1); peer_open(&b, 2); same_volume(&a, &b);
    mk(&a, ST_ROOT_INO, "notes.txt", S_IFREG | 0644, "base", 4, 1000);
    T_OK(sync2(&a, &b));
    uint64_t fb = lookup(&b, ST_ROOT_INO, "notes.txt");
    T_OK(edit_both(&a, &b, "notes.txt", "from A", 2000, "from B, later", 3000)); /* later mtime wins */
    uint8_t buf[64];
    size_t n;
    T_OK(read_file(&a, lookup(&a, ST_ROOT_INO, "notes.txt"), &b, buf, sizeof(buf), &n));
    T_EQ(n, 13);
    T_MEM(buf, "from B, later", 13);
    T_OK(read_file(&b, fb, &a, buf, sizeof(buf), &n));
    T_MEM(buf, "from B, later", 13);
    /* A's losing version survives as a conflict copy, on both peers. */
    char cname[256];
    struct timespec mt = { .tv_sec = 2000 };
    st_rep_conflict_name("notes.txt", 9, &mt, a.dev, cname, sizeof(cname));
    T_TRUE(strstr(cname, "notes.sync-conflict-19700101-003320-") == cname);
    T_TRUE(strstr(cname, ".txt") != NULL);
    uint64_t ca = lookup(&a, ST_ROOT_INO, cname), cb = lookup(&b, ST_ROOT_INO, cname);
    if (!ca || !cb) T_FAILF("conflict copy '%s' missing (a=%llu b=%llu)", cname,
                            (unsigned long long)ca, (unsigned long long)cb);
    T_OK(read_file(&b, cb, &a, buf, sizeof(buf), &n));
    T_EQ(n, 6);
    T_MEM(buf, "from A", 6);
    peer_close(&a); peer_close(&b);
}

/* Two losing versions from the same device stamped with the same second
 * (cp -p, tar, fast edits) get two conflict copies: the second name gets
 * "-1", neither version is dropped. */
static void test_two_losing_versions_of_one_second_are_both_kept(void)
{
    struct peer a, b;
    peer_open(&a, 1); peer_open(&b, 2); same_volume(&a, &b);
    mk(&a, ST_ROOT_INO, "m.txt", S_IFREG | 0644, "base", 4, 1000);
    T_OK(sync2(&a, &b));
    T_OK(edit_both(&a, &b, "m.txt", "A-one", 2000, "B-one", 3000));
    T_OK(edit_both(&a, &b, "m.txt", "A-two!", 2000, "B-two", 3000));
    char c0[256], c1[256];
    struct timespec mt = { .tv_sec = 2000 };
    st_rep_conflict_name("m.txt", 5, &mt, a.dev, c0, sizeof(c0));
    snprintf(c1, sizeof(c1), "%.*s-1.txt", (int)(strlen(c0) - 4), c0);
    for (int side = 0; side < 2; side++) {
        struct peer *p = side ? &b : &a, *src = side ? &a : &b;
        uint8_t buf[16];
        size_t n;
        uint64_t i0 = lookup(p, ST_ROOT_INO, c0), i1 = lookup(p, ST_ROOT_INO, c1);
        if (!i0 || !i1)
            T_FAILF("peer %d: conflict copies %s (%llu) and %s (%llu)", side, c0,
                    (unsigned long long)i0, c1, (unsigned long long)i1);
        T_OK(read_file(p, i0, src, buf, sizeof(buf), &n));
        T_EQ(n, 5);
        T_MEM(buf, "A-one", 5);
        T_OK(read_file(p, i1, src, buf, sizeof(buf), &n));
        T_EQ(n, 6);
        T_MEM(buf, "A-two!", 6);
    }
    peer_close(&a); peer_close(&b);
}

static void test_delete_vs_modify_keeps_the_modification(void)
{
    struct peer a, b;
    peer_open(&a, 1); peer_open(&b, 2); same_volume(&a, &b);
    mk(&a, ST_ROOT_INO, "keep.me", S_IFREG | 0644, "v1", 2, 1000);
    T_OK(sync2(&a, &b));
    T_OK(rm(&a, ST_ROOT_INO, "keep.me"));
    T_OK(edit(&b, lookup(&b, ST_ROOT_INO, "keep.me"), "v2 edited", 9, 900));
    T_OK(sync2(&a, &b));
    uint64_t fa = lookup(&a, ST_ROOT_INO, "keep.me");
    T_TRUE(fa != 0);
    uint8_t buf[16];
    size_t n;
    T_OK(read_file(&a, fa, &b, buf, sizeof(buf), &n));
    T_EQ(n, 9);
    T_MEM(buf, "v2 edited", 9);
    T_TRUE(lookup(&b, ST_ROOT_INO, "keep.me") != 0);
    peer_close(&a); peer_close(&b);
}

struct listing { char n[8][256]; int k; };
static int list_cb(const struct st_dirent *d, void *arg)
{
    struct listing *l = arg;
    if (l->k < 8)
        snprintf(l->n[l->k++], 256, "%s", d->name);
    return 0;
}

/* Save by rename (editors, sed -i, git): a new file takes the name of an
 * old one, which goes. The peer may see the new file under that name
 * while the old one still holds it (records carry a file's current
 * state): no conflict copy may come of it, on either side. */
static void test_save_by_rename_makes_no_conflict_copy(void)
{
    struct peer a, b;
    peer_open(&a, 1); peer_open(&b, 2); same_volume(&a, &b);
    mk(&a, ST_ROOT_INO, "f", S_IFREG | 0644, "v1", 2, 1000);
    T_OK(sync2(&a, &b));
    mk(&a, ST_ROOT_INO, "f.tmp", S_IFREG | 0644, "v2!", 3, 2000);
    T_OK(rm(&a, ST_ROOT_INO, "f"));
    T_OK(mv(&a, ST_ROOT_INO, "f.tmp", ST_ROOT_INO, "f"));
    T_OK(sync2(&a, &b));
    for (int side = 0; side < 2; side++) {
        struct peer *p = side ? &b : &a;
        static struct listing l;
        l.k = 0;
        st_txn *t;
        st_txn_begin(p->st, ST_TXN_READ, &t);
        T_OK(st_dirent_foreach(t, ST_ROOT_INO, NULL, 0, list_cb, &l));
        st_txn_abort(t);
        if (l.k != 1 || strcmp(l.n[0], "f"))
            T_FAILF("peer %d lists %d names (%s, %s), expected only f", side, l.k,
                    l.k > 0 ? l.n[0] : "-", l.k > 1 ? l.n[1] : "-");
        uint8_t buf[16];
        size_t n;
        T_OK(read_file(p, lookup(p, ST_ROOT_INO, "f"), side ? &a : &b, buf, sizeof(buf), &n));
        T_EQ(n, 3);
        T_MEM(buf, "v2!", 3);
    }
    peer_close(&a); peer_close(&b);
}

static void test_same_name_created_on_both_sides_converges(void)
{
    struct peer a, b;
    peer_open(&a, 1); peer_open(&b, 2); same_volume(&a, &b);
    mk(&a, ST_ROOT_INO, "x", S_IFREG | 0644, "AAA", 3, 1000);
    mk(&b, ST_ROOT_INO, "x", S_IFREG | 0644, "BBBB", 4, 2000);
    T_OK(sync2(&a, &b));
    uint8_t buf[16];
    size_t n;
    T_OK(read_file(&a, lookup(&a, ST_ROOT_INO, "x"), &b, buf, sizeof(buf), &n));
    T_EQ(n, 4);                          /* the later file keeps the name */
    T_OK(read_file(&b, lookup(&b, ST_ROOT_INO, "x"), &a, buf, sizeof(buf), &n));
    T_EQ(n, 4);
    char cname[256];
    struct timespec mt = { .tv_sec = 1000 };
    st_rep_conflict_name("x", 1, &mt, a.dev, cname, sizeof(cname));
    for (int side = 0; side < 2; side++) {
        struct peer *p = side ? &b : &a;
        static struct listing l;
        l.k = 0;
        st_txn *t;
        st_txn_begin(p->st, ST_TXN_READ, &t);
        T_OK(st_dirent_foreach(t, ST_ROOT_INO, NULL, 0, list_cb, &l));
        st_txn_abort(t);
        if (l.k != 2 || strcmp(l.n[0], "x") || strcmp(l.n[1], cname))
            T_FAILF("peer %d lists %d names (%s, %s), expected x and %s", side, l.k,
                    l.k > 0 ? l.n[0] : "-", l.k > 1 ? l.n[1] : "-", cname);
        T_OK(read_file(p, lookup(p, ST_ROOT_INO, cname), side ? &a : &b, buf, sizeof(buf), &n));
        T_EQ(n, 3);
        T_MEM(buf, "AAA", 3);
    }
    peer_close(&a); peer_close(&b);
}

/* One namespace operation through ns.c, as the file system makes it. */
static int ns_create(struct peer *p, uint64_t parent, const char *name, uint32_t mode)
{
    st_txn *t;
    int rc = st_txn_begin(p->st, ST_TXN_WRITE, &t);
    if (rc == 0)
        rc = st_txn_end(t, st_ns_create(t, parent, name, strlen(name), mode, 0, 0, 0, NULL, 0, NULL));
    return rc;
}

static int ns_mv(struct peer *p, uint64_t parent, const char *name, uint64_t np, const char *nn)
{
    st_txn *t;
    int rc = st_txn_begin(p->st, ST_TXN_WRITE, &t);
    if (rc == 0)
        rc = st_txn_end(t, st_ns_rename(t, parent, name, strlen(name), np, nn, strlen(nn), 0, NULL));
    return rc;
}

static struct timespec mtime_of(struct peer *p, uint64_t ino)
{
    st_txn *t;
    struct st_inode in = { 0 };
    st_txn_begin(p->st, ST_TXN_READ, &t);
    st_inode_get(t, ino, &in);
    st_txn_abort(t);
    return in.mtime;
}

/* A directory renamed on A while a file is created in it on B: the rename
 * survives on both (a new entry is not a change of the directory itself),
 * the file is inside it on both, and both end with the same mtime, the
 * later one (B's entry). It used to come back under its old name: the
 * entry bumped the directory's version, B's change was later and won. */
static void test_directory_rename_survives_a_concurrent_create_inside(void)
{
    struct peer a, b;
    peer_open(&a, 1); peer_open(&b, 2); same_volume(&a, &b);
    T_OK(ns_create(&a, ST_ROOT_INO, "photos", S_IFDIR | 0755));
    T_OK(sync2(&a, &b));
    T_TRUE(lookup(&b, ST_ROOT_INO, "photos") != 0);
    T_OK(ns_mv(&a, ST_ROOT_INO, "photos", ST_ROOT_INO, "photos-2026"));
    struct timespec pause = { 0, 20 * 1000 * 1000 };
    nanosleep(&pause, NULL);
    T_OK(ns_create(&b, lookup(&b, ST_ROOT_INO, "photos"), "new.jpg", S_IFREG | 0644));
    T_OK(sync2(&a, &b));
    for (int side = 0; side < 2; side++) {
        struct peer *p = side ? &b : &a;
        uint64_t d = lookup(p, ST_ROOT_INO, "photos-2026");
        if (d == 0 || lookup(p, ST_ROOT_INO, "photos") != 0)
            T_FAILF("peer %d: photos-2026 %s, photos %s; expected only the new name", side,
                    d ? "present" : "missing", lookup(p, ST_ROOT_INO, "photos") ? "present" : "gone");
        T_TRUE(d != 0 && lookup(p, d, "new.jpg") != 0);
    }
    struct timespec ma = mtime_of(&a, lookup(&a, ST_ROOT_INO, "photos-2026"));
    struct timespec mb = mtime_of(&b, lookup(&b, ST_ROOT_INO, "photos-2026"));
    if (ma.tv_sec != mb.tv_sec || ma.tv_nsec != mb.tv_nsec)
        T_FAILF("directory mtimes differ: A %lld.%09ld, B %lld.%09ld", (long long)ma.tv_sec,
                ma.tv_nsec, (long long)mb.tv_sec, mb.tv_nsec);
    /* B's new entry is the directory's last change. */
    struct timespec mf = mtime_of(&b, lookup(&b, lookup(&b, ST_ROOT_INO, "photos-2026"), "new.jpg"));
    T_TRUE(mb.tv_sec == mf.tv_sec && mb.tv_nsec == mf.tv_nsec);
    peer_close(&a); peer_close(&b);
}

static void test_decoder_rejects_malformed_records(void)
{
    struct peer a;
    peer_open(&a, 1);
    uint8_t data[100000];
    t_fill(data, sizeof(data), 5);
    uint64_t f = mk(&a, ST_ROOT_INO, "f", S_IFREG | 0600, data, sizeof(data), 1000);
    st_txn *t;
    st_txn_begin(a.st, ST_TXN_READ, &t);
    struct st_inode in;
    T_OK(st_inode_get(t, f, &in));
    uint8_t *buf;
    size_t len;
    T_OK(st_rep_export(t, in.fid, &buf, &len));
    st_txn_abort(t);
    static struct st_rep_file r;
    T_OK(st_rep_decode(buf, len, &r));
    T_EQ(r.nnames, 1);
    T_TRUE(r.nextents >= 1);
    for (size_t cut = 0; cut < len; cut += 7)
        T_ERR(st_rep_decode(buf, cut, &r), LR_ECORRUPT);
    buf[0] = 2;
    T_ERR(st_rep_decode(buf, len, &r), LR_ECORRUPT);
    buf[0] = 1;
    buf[ST_REP_HDR + 16 * r.nvv + 18] = '/';   /* a slash in the name */
    T_ERR(st_rep_decode(buf, len, &r), LR_ECORRUPT);
    free(buf);
    peer_close(&a);
}

/* ---- change-log compaction ------------------------------------------ */

/* For helpers that return a value: a failure ends the whole test program. */
#define MUST(e) do { int must_ = (e); if (must_) { \
        fprintf(stderr, "%s:%d: %s: %s\n", __FILE__, __LINE__, #e, lr_strerror(must_)); exit(1); } \
    } while (0)

/* One ns.c operation in its own transaction, failing the test on error. */
static uint64_t op_create(struct peer *p, uint64_t parent, const char *name, uint32_t mode)
{
    st_txn *t;
    struct st_inode in = { 0 };
    MUST(st_txn_begin(p->st, ST_TXN_WRITE, &t));
    MUST(st_txn_end(t, st_ns_create(t, parent, name, strlen(name), mode, 0, 0, 0, NULL, 0, &in)));
    return in.ino;
}

static void op_write(struct peer *p, uint64_t ino, const char *data)
{
    st_txn *t;
    struct st_wrange r = { 0, strlen(data), data };
    T_OK(st_txn_begin(p->st, ST_TXN_WRITE, &t));
    T_OK(st_txn_end(t, st_ns_write(t, ino, &r, 1, r.len, NULL, 0, NULL, NULL)));
}

static void op_chmod(struct peer *p, uint64_t ino, uint32_t mode)
{
    st_txn *t;
    struct st_ns_attr a = { .mode = mode };
    T_OK(st_txn_begin(p->st, ST_TXN_WRITE, &t));
    T_OK(st_txn_end(t, st_ns_setattr(t, ino, ST_NS_SET_MODE, &a, NULL)));
}

static void op_remove(struct peer *p, uint64_t parent, const char *name, int dir)
{
    st_txn *t;
    uint64_t ino = 0;
    int orphan = 1;
    T_OK(st_txn_begin(p->st, ST_TXN_WRITE, &t));
    int rc = dir ? st_ns_rmdir(t, parent, name, strlen(name), &ino)
                 : st_ns_unlink(t, parent, name, strlen(name), &ino, &orphan);
    if (rc == 0 && orphan && st_ns_reap(t, ino) < 0) /* nothing holds it open */
        rc = -EIO;
    T_OK(st_txn_end(t, rc));
}

static uint64_t log_count(struct peer *p)
{
    st_txn *t;
    uint64_t n = 0;
    st_txn_begin(p->st, ST_TXN_READ, &t);
    MUST(st_log_count(t, &n));
    st_txn_abort(t);
    return n;
}

/* A listing of p's whole tree, one line per file: path, mode, size and
 * (small files) contents, fetched from src where p lacks the chunks. */
struct tree { char *buf; size_t len; struct peer *p, *src; };

static void tree_walk(struct tree *tr, uint64_t dir, const char *path);

struct tree_dir { struct tree *tr; const char *path; };

static int tree_cb(const struct st_dirent *d, void *arg)
{
    struct tree_dir *c = arg;
    char path[512], line[800], data[64] = "";
    snprintf(path, sizeof(path), "%s/%s", c->path, d->name);
    st_txn *t;
    struct st_inode in = { 0 };
    st_txn_begin(c->tr->p->st, ST_TXN_READ, &t);
    st_inode_get(t, d->child, &in);
    st_txn_abort(t);
    size_t got = 0;
    if (S_ISREG(in.mode) && in.size < sizeof(data))
        MUST(read_file(c->tr->p, d->child, c->tr->src, (uint8_t *)data, sizeof(data) - 1, &got));
    data[got] = 0;
    int n = snprintf(line, sizeof(line), "%s %o %llu %s\n", path, in.mode,
                     (unsigned long long)in.size, data);
    char *b = realloc(c->tr->buf, c->tr->len + (size_t)n + 1);
    if (!b)
        return -ENOMEM;
    memcpy(b + c->tr->len, line, (size_t)n + 1);
    c->tr->buf = b;
    c->tr->len += (size_t)n;
    if (S_ISDIR(in.mode))
        tree_walk(c->tr, d->child, path);
    return 0;
}

static void tree_walk(struct tree *tr, uint64_t dir, const char *path)
{
    struct tree_dir c = { tr, path };
    st_txn *t;
    st_txn_begin(tr->p->st, ST_TXN_READ, &t);
    T_OK(st_dirent_foreach(t, dir, NULL, 0, tree_cb, &c));
    st_txn_abort(t);
}

static char *tree_of(struct peer *p, struct peer *src)
{
    struct tree tr = { .buf = calloc(1, 1), .p = p, .src = src };
    tree_walk(&tr, ST_ROOT_INO, "");
    return tr.buf;
}

/* A history with everything compaction must get right: files created,
 * rewritten and deleted, directories created, chmod'ed, renamed under a
 * directory made later, emptied and removed, a file moved between them. */
static void churn(struct peer *a)
{
    uint64_t top = op_create(a, ST_ROOT_INO, "top", S_IFDIR | 0755);
    uint64_t sub = op_create(a, top, "sub", S_IFDIR | 0755);
    uint64_t gone = op_create(a, ST_ROOT_INO, "gone", S_IFDIR | 0755);
    char name[32], data[32];
    for (int round = 0; round < 3; round++) {
        for (int i = 0; i < 20; i++) {
            snprintf(name, sizeof(name), "f%d", i);
            uint64_t f = round ? lookup(a, sub, name) : op_create(a, sub, name, S_IFREG | 0644);
            snprintf(data, sizeof(data), "r%d-%d", round, i);
            op_write(a, f, data);
            snprintf(name, sizeof(name), "tmp%d-%d", round, i);
            uint64_t tmp = op_create(a, gone, name, S_IFREG | 0600);
            op_write(a, tmp, "scratch");
            op_remove(a, gone, name, 0);
        }
        op_chmod(a, sub, round % 2 ? 0700 : 0755);
    }
    uint64_t later = op_create(a, ST_ROOT_INO, "later", S_IFDIR | 0750);
    T_OK(ns_mv(a, top, "sub", later, "moved"));
    uint64_t moved = lookup(a, later, "moved");
    T_OK(ns_mv(a, moved, "f3", top, "f3-out"));
    op_remove(a, ST_ROOT_INO, "gone", 1);
    op_write(a, lookup(a, top, "f3-out"), "last");
}

/* Send a's records up to seq limit to b (peer index bi), as sync1. */
static int send_upto_cb(uint64_t seq, const void *rec, size_t len, void *arg)
{
    struct sendctx *c = arg;
    return seq > c->limit ? 1 : send_one(seq, rec, len, arg);
}

static void sync_upto(struct peer *a, struct peer *b, int bi, uint64_t limit)
{
    st_txn *src, *dst;
    static uint8_t pend[4096][16];
    st_txn_begin(a->st, ST_TXN_READ, &src);
    st_txn_begin(b->st, ST_TXN_WRITE, &dst);
    struct sendctx c = { .src = src, .dst = dst, .to = b, .from = a->dev, .last = a->sent_to[bi],
                         .limit = limit, .pend = pend, .pendcap = 4096, .pend_floor = UINT64_MAX };
    T_TRUE(st_log_foreach(src, a->sent_to[bi] + 1, send_upto_cb, &c) >= 0);
    /* what waited for its directory, again until nothing moves */
    for (int progress = 1; progress && c.npend;) {
        progress = 0;
        for (int i = 0; i < c.npend;) {
            uint8_t *buf;
            size_t blen;
            static struct st_rep_file f;
            int result, rc = st_rep_export(src, pend[i], &buf, &blen);
            if (rc == 0) {
                T_OK(st_rep_decode(buf, blen, &f));
                rc = st_rep_apply(dst, &f, a->dev, NULL, &result);
                free(buf);
            }
            if (rc == -EAGAIN) {
                i++;
                continue;
            }
            T_OK(rc);
            memcpy(pend[i], pend[--c.npend], 16);
            progress = 1;
        }
    }
    st_txn_abort(src);
    /* as sync.c: what still waits is asked for again next time */
    a->sent_to[bi] = c.npend ? c.pend_floor - 1 : c.last;
    T_OK(st_txn_commit(dst));
    if (limit == UINT64_MAX)
        T_EQ(c.npend, 0);
}

/* A store whose log was compacted brings a new peer to the same tree as
 * the whole log does, every directory before what lies in it (no record
 * has to wait for its parent); a peer part-way through the log before the
 * compaction finishes to the same tree; a second pass drops nothing. */
static void test_compacted_log_replicates_the_same_tree(void)
{
    struct peer a, whole, part, compact;
    peer_open(&a, 1); peer_open(&whole, 2); peer_open(&part, 3); peer_open(&compact, 4);
    same_volume(&a, &whole); same_volume(&a, &part); same_volume(&a, &compact);
    churn(&a);
    /* part has seen the first half of the log (peer index 0: a never
     * sends to itself), whole all of it */
    uint64_t n = log_count(&a);
    sync_upto(&a, &part, 0, n / 2);
    g_eagain = 0;
    sync_upto(&a, &whole, 1, UINT64_MAX);
    int whole_waits = g_eagain;

    struct st_log_compact_stats cs;
    T_OK(st_log_compact(a.st, 0, &cs));
    T_EQ(cs.scanned, n);
    T_TRUE(cs.dropped > n / 2);           /* the history of tmp* and the rewrites */
    T_EQ(log_count(&a), n - cs.dropped);
    T_EQ(cs.partial, 0);

    g_eagain = 0;
    sync_upto(&a, &compact, 2, UINT64_MAX);
    T_TRUE(g_eagain <= whole_waits);      /* no more waiting for directories */
    sync_upto(&a, &part, 0, UINT64_MAX);
    char *tw = tree_of(&whole, &a), *tc = tree_of(&compact, &a), *ta = tree_of(&a, &a);
    char *tp = tree_of(&part, &a);
    if (getenv("V")) fprintf(stderr, "%s", ta);
    T_TRUE(strstr(ta, "/later/moved/f7 100644 4 r2-7") != NULL);
    T_TRUE(strstr(ta, "/top/f3-out 100644 4 last") != NULL);
    T_TRUE(strstr(ta, "/gone") == NULL);
    if (strcmp(tw, ta) || strcmp(tc, ta))
        fprintf(stderr, "a:\n%s\nwhole log:\n%s\ncompacted log:\n%s\n", ta, tw, tc);
    T_TRUE(strcmp(tw, ta) == 0);
    T_TRUE(strcmp(tc, ta) == 0);
    T_TRUE(strcmp(tp, ta) == 0);
    free(tw); free(tc); free(ta); free(tp);

    T_OK(st_log_compact(a.st, 0, &cs));
    T_EQ(cs.dropped, 0);
    peer_close(&a); peer_close(&whole); peer_close(&part); peer_close(&compact);
}

/* Where the whole log never makes a file wait for its directory, the
 * compacted one does not either: the records that created the directory
 * and the files in it stay, though later changes name them all again
 * (dropping them too, a new peer met each file before its directory). */
static void test_compaction_keeps_directories_before_their_files(void)
{
    struct peer a, whole, compact;
    peer_open(&a, 1); peer_open(&whole, 2); peer_open(&compact, 3);
    same_volume(&a, &whole); same_volume(&a, &compact);
    uint64_t docs = op_create(&a, ST_ROOT_INO, "docs", S_IFDIR | 0755);
    char name[32];
    for (int i = 0; i < 10; i++) {
        snprintf(name, sizeof(name), "f%d", i);
        uint64_t f = op_create(&a, docs, name, S_IFREG | 0644);
        op_write(&a, f, "v1");
        op_write(&a, f, "v2");
        snprintf(name, sizeof(name), "tmp%d", i);
        op_write(&a, op_create(&a, docs, name, S_IFREG | 0644), "x");
        op_remove(&a, docs, name, 0);
    }
    op_chmod(&a, docs, 0700);
    op_create(&a, ST_ROOT_INO, "last.txt", S_IFREG | 0644);
    g_eagain = 0;
    sync_upto(&a, &whole, 1, UINT64_MAX);
    T_EQ(g_eagain, 0);
    struct st_log_compact_stats cs;
    uint64_t n = log_count(&a);
    T_OK(st_log_compact(a.st, 0, &cs));
    sync_upto(&a, &compact, 2, UINT64_MAX);
    T_EQ(g_eagain, 0);
    T_EQ(cs.dropped, 10 + 2 * 10);        /* the first writes, each tmp's create and write */
    T_EQ(log_count(&a), n - cs.dropped);
    char *tw = tree_of(&whole, &a), *tc = tree_of(&compact, &a);
    T_TRUE(strstr(tc, "/docs 40700 0 \n/docs/f0 100644 2 v2\n") != NULL);
    T_TRUE(strcmp(tw, tc) == 0);
    free(tw); free(tc);
    peer_close(&a); peer_close(&whole); peer_close(&compact);
}

/* More droppable records than one deletion batch (logcompact.c drops as
 * its walk goes): each churned file keeps its last record, nothing else
 * of it stays, and a second pass finds nothing; then more tombstones
 * than one batch are forgotten, and their records go. */
static void test_compaction_of_a_long_history_in_batches(void)
{
    enum { N = 8500 }; /* more than one batch (8192) of records and of tombstones */
    struct peer a;
    peer_open(&a, 1);
    uint64_t dir = op_create(&a, ST_ROOT_INO, "scratch", S_IFDIR | 0755);
    char name[32];
    for (int i = 0; i < N; i++) {
        snprintf(name, sizeof(name), "t%d", i);
        op_write(&a, op_create(&a, dir, name, S_IFREG | 0644), "x");
        op_remove(&a, dir, name, 0);
    }
    uint64_t n = log_count(&a);
    T_EQ(n, 1 + 3 * N);
    struct st_log_compact_stats cs;
    T_OK(st_log_compact(a.st, 0, &cs));
    T_EQ(cs.dropped, 2 * N);
    T_EQ(log_count(&a), 1 + N);
    T_OK(st_log_compact(a.st, 0, &cs));
    T_EQ(cs.dropped, 0);
    /* forgotten, every deletion's record goes but scratch's newest */
    struct st_tomb_forget_stats fs;
    T_OK(st_tomb_forget(a.st, (int64_t)time(NULL) + 5, &fs));
    T_EQ(fs.forgotten, N - 1);            /* the last one's stays: a's greatest file id */
    T_OK(st_log_compact(a.st, 0, &cs));
    T_EQ(cs.dropped, N - 1);
    T_EQ(log_count(&a), 2);
    peer_close(&a);
}

static uint64_t tomb_count(struct peer *p)
{
    st_txn *t;
    uint64_t n = 0;
    st_txn_begin(p->st, ST_TXN_READ, &t);
    MUST(st_raw_count(t, "tomb", &n));
    st_txn_abort(t);
    return n;
}

/* Forgetting deletions (replica.h, FORGETTING DELETIONS): tombstones of
 * files deleted before the cut-off go, and with them, at the next
 * compaction, the log records that only named those files (but for the
 * tombstone of the device's greatest file id, and the log's newest
 * record, which stay for landro-fsck); a new peer then gets the same
 * tree; a peer that got the
 * deletions of files it never had forgets them the same way. The price,
 * checked too: a stale copy refused while the tombstone was there comes
 * back once it is forgotten. */
static void test_forgotten_deletions_leave_no_tombstone_or_record(void)
{
    struct peer a, b, stale, fresh;
    peer_open(&a, 1); peer_open(&b, 2); peer_open(&stale, 3); peer_open(&fresh, 4);
    same_volume(&a, &b); same_volume(&a, &stale); same_volume(&a, &fresh);
    uint64_t keep = op_create(&a, ST_ROOT_INO, "keep", S_IFDIR | 0755);
    op_write(&a, op_create(&a, keep, "k", S_IFREG | 0644), "kept");
    /* a file stale holds, then deleted on a */
    op_write(&a, op_create(&a, ST_ROOT_INO, "old.txt", S_IFREG | 0644), "old");
    sync_upto(&a, &stale, 2, UINT64_MAX);
    op_remove(&a, ST_ROOT_INO, "old.txt", 0);
    uint64_t dir = op_create(&a, ST_ROOT_INO, "scratch", S_IFDIR | 0755);
    char name[32];
    for (int i = 0; i < 300; i++) {
        snprintf(name, sizeof(name), "t%d", i);
        op_write(&a, op_create(&a, dir, name, S_IFREG | 0644), "x");
        op_remove(&a, dir, name, 0);
    }
    op_remove(&a, ST_ROOT_INO, "scratch", 1);
    sync_upto(&a, &b, 1, UINT64_MAX);     /* b never saw them: tombstones without records */
    T_EQ(tomb_count(&a), 302);
    T_EQ(tomb_count(&b), 302);

    /* the stale copy loses to the tombstone */
    T_OK(sync1(&stale, 0, &a, 0));
    T_EQ(lookup(&a, ST_ROOT_INO, "old.txt"), 0);

    struct st_log_compact_stats cs;
    T_OK(st_log_compact(a.st, 0, &cs));
    uint64_t n = log_count(&a);
    struct st_tomb_forget_stats fs;
    time_t now = time(NULL);
    T_OK(st_tomb_forget(a.st, (int64_t)now - 3600, &fs)); /* all deleted just now */
    T_EQ(fs.scanned, 302);
    T_EQ(fs.forgotten, 0);
    T_OK(st_tomb_forget(a.st, (int64_t)now + 5, &fs));
    T_EQ(fs.forgotten, 301);              /* t299's stays: a's greatest file id */
    T_EQ(tomb_count(&a), 1);
    T_OK(st_log_compact(a.st, 0, &cs));
    T_EQ(cs.dropped, n - log_count(&a));
    /* keep's and k's creates, k's write, t299's unlink, and scratch's
     * rmdir: the root's newest record (it names the root as the
     * directory changed) and the log's newest */
    T_EQ(log_count(&a), 5);

    sync_upto(&a, &fresh, 0, UINT64_MAX);
    char *ta = tree_of(&a, &a), *tf = tree_of(&fresh, &a);
    T_TRUE(strcmp(ta, "/keep 40755 0 \n/keep/k 100644 4 kept\n") == 0);
    if (strcmp(ta, tf))
        fprintf(stderr, "a:\n%s\nfresh:\n%s\n", ta, tf);
    T_TRUE(strcmp(ta, tf) == 0);
    T_EQ(tomb_count(&fresh), 1);          /* t299's */
    free(ta); free(tf);

    T_OK(st_tomb_forget(b.st, (int64_t)now + 5, &fs));
    T_EQ(fs.forgotten, 302);
    T_EQ(tomb_count(&b), 0);

    /* the price: the stale copy, sent again, now brings the file back */
    stale.sent_to[0] = 0;
    T_OK(sync1(&stale, 0, &a, 0));
    T_TRUE(lookup(&a, ST_ROOT_INO, "old.txt") != 0);
    peer_close(&a); peer_close(&b); peer_close(&stale); peer_close(&fresh);
}

static int newest_cb(uint64_t seq, const void *rec, size_t len, void *arg)
{
    (void)rec; (void)len;
    *(uint64_t *)arg = seq;
    return 0;
}

static uint64_t newest_seq(struct peer *p)
{
    st_txn *t;
    uint64_t seq = 0;
    st_txn_begin(p->st, ST_TXN_READ, &t);
    MUST(st_log_foreach(t, 1, newest_cb, &seq));
    st_txn_abort(t);
    return seq;
}

/* File "f" made on a, synced to b (peer index 1) and, if not NULL, to
 * also (index 2), deleted on a and synced to b again, b reaping it as
 * fs.c would: a and b end with its tombstone, also with the file. Its
 * file id goes to fid. */
static void deleted_on_both(struct peer *a, struct peer *b, struct peer *also, uint8_t fid[16])
{
    uint64_t fa = op_create(a, ST_ROOT_INO, "f", S_IFREG | 0644);
    op_write(a, fa, "v1");
    sync_upto(a, b, 1, UINT64_MAX);
    if (also)
        sync_upto(a, also, 2, UINT64_MAX);
    uint64_t fb = lookup(b, ST_ROOT_INO, "f");
    st_txn *t;
    struct st_inode in;
    T_OK(st_txn_begin(a->st, ST_TXN_READ, &t));
    T_OK(st_inode_get(t, fa, &in));
    st_txn_abort(t);
    memcpy(fid, in.fid, 16);
    op_remove(a, ST_ROOT_INO, "f", 0);
    sync_upto(a, b, 1, UINT64_MAX);
    T_EQ(lookup(b, ST_ROOT_INO, "f"), 0);
    T_OK(st_txn_begin(b->st, ST_TXN_WRITE, &t));
    T_OK(st_txn_end(t, st_ns_reap(t, fb) < 0 ? -EIO : 0));
    T_EQ(tomb_count(a), 1);
    T_EQ(tomb_count(b), 1);
}

/* What landro-fsck rebuilds lost meta counters from stays through
 * forgetting (replica.h, FORGETTING DELETIONS): the log's newest record,
 * here one that names only the forgotten file (as st_rep_apply logs a
 * file it knows no directory of); and a device's greatest file id's
 * tombstone, here a's only one. */
static void test_forgetting_keeps_what_fsck_rebuilds_counters_from(void)
{
    struct peer a, b;
    peer_open(&a, 1); peer_open(&b, 2);
    same_volume(&a, &b);
    /* a record naming f alone, as log_rep writes it, becomes the newest */
    uint8_t r[80] = { ST_REP_VERSION, ST_REP_LOG };
    deleted_on_both(&a, &b, NULL, r + 16);
    st_txn *t;
    T_OK(st_txn_begin(b.st, ST_TXN_WRITE, &t));
    T_OK(st_txn_end(t, st_log_append(t, r, sizeof(r), NULL)));
    uint64_t newest = newest_seq(&b);
    struct st_tomb_forget_stats fs;
    struct st_log_compact_stats cs;
    int64_t later = (int64_t)time(NULL) + 5;
    T_OK(st_tomb_forget(b.st, later, &fs));
    T_EQ(fs.forgotten, 1);
    T_OK(st_log_compact(b.st, 0, &cs));
    T_EQ(newest_seq(&b), newest);
    T_OK(st_tomb_forget(a.st, later, &fs));
    T_EQ(fs.scanned, 1);
    T_EQ(fs.forgotten, 0);
    T_EQ(tomb_count(&a), 1);
    peer_close(&a); peer_close(&b);
}

/* An expired tombstone counts for nothing whether or not a pass has
 * collected it yet (replica.h, FORGETTING DELETIONS), so peers decide
 * alike: b and a, both still holding theirs (a's is its greatest file
 * id's, which stays), take back the copy a peer that was away still
 * held; a sends nothing of the deletion to a new peer, and the new peer
 * does not store it when a peer keeping deletions for good sends it. */
static void test_expired_tombstones_count_for_nothing_on_every_peer(void)
{
    struct peer a, b, away, fresh;
    peer_open(&a, 1); peer_open(&b, 2); peer_open(&away, 3); peer_open(&fresh, 4);
    same_volume(&a, &b); same_volume(&a, &away); same_volume(&a, &fresh);
    uint8_t fid[16];
    deleted_on_both(&a, &b, &away, fid);
    st_txn *t;

    st_set_forget_after(a.st, 1);
    st_set_forget_after(b.st, 1);
    st_set_forget_after(fresh.st, 1);
    sleep(2);                             /* both tombstones are now older than that */
    struct st_tomb_forget_stats fs;
    T_OK(st_tomb_forget(a.st, (int64_t)time(NULL) - 1, &fs));
    T_EQ(fs.forgotten, 0);                /* a's only one: its greatest file id stays */
    T_EQ(tomb_count(&b), 1);              /* b has not collected its own */

    uint8_t *rec;
    size_t rlen;
    T_OK(st_txn_begin(a.st, ST_TXN_READ, &t));
    T_EQ(st_rep_export(t, fid, &rec, &rlen), -ENOENT); /* nothing of it goes out */
    st_txn_abort(t);
    sync_upto(&a, &fresh, 0, UINT64_MAX);
    T_EQ(tomb_count(&fresh), 0);
    /* from b, which keeps its tombstones for good, the deletion does go
     * out, and fresh does not store it */
    st_set_forget_after(b.st, 0);
    sync_upto(&b, &fresh, 3, UINT64_MAX);
    T_EQ(tomb_count(&fresh), 0);
    st_set_forget_after(b.st, 1);
    T_OK(sync1(&away, 0, &b, 1));
    T_OK(sync1(&away, 0, &a, 0));
    uint64_t fa = lookup(&a, ST_ROOT_INO, "f"), fb = lookup(&b, ST_ROOT_INO, "f");
    T_TRUE(fa != 0);
    T_TRUE(fb != 0);
    /* (metadata only: the bytes were only ever on a, which dropped them) */
    struct st_inode ia, ib;
    T_OK(st_txn_begin(a.st, ST_TXN_READ, &t));
    T_OK(st_inode_get(t, fa, &ia));
    st_txn_abort(t);
    T_OK(st_txn_begin(b.st, ST_TXN_READ, &t));
    T_OK(st_inode_get(t, fb, &ib));
    st_txn_abort(t);
    T_EQ(ia.size, 2);
    T_EQ(ib.size, 2);
    T_TRUE(memcmp(ia.fid, ib.fid, 16) == 0);
    peer_close(&a); peer_close(&b); peer_close(&away); peer_close(&fresh);
}

int main(void)
{
    lr_log_set_level(getenv("V") ? LR_LOG_DEBUG : LR_LOG_QUIET);
    T_RUN(test_new_tree_replicates_and_reads_after_fetch);
    T_RUN(test_rename_moves_without_data_and_delete_leaves_tombstone);
    T_RUN(test_concurrent_edits_keep_both_versions_on_both_peers);
    T_RUN(test_two_losing_versions_of_one_second_are_both_kept);
    T_RUN(test_delete_vs_modify_keeps_the_modification);
    T_RUN(test_same_name_created_on_both_sides_converges);
    T_RUN(test_save_by_rename_makes_no_conflict_copy);
    T_RUN(test_directory_rename_survives_a_concurrent_create_inside);
    T_RUN(test_decoder_rejects_malformed_records);
    T_RUN(test_compacted_log_replicates_the_same_tree);
    T_RUN(test_compaction_keeps_directories_before_their_files);
    T_RUN(test_compaction_of_a_long_history_in_batches);
    T_RUN(test_forgotten_deletions_leave_no_tombstone_or_record);
    T_RUN(test_forgetting_keeps_what_fsck_rebuilds_counters_from);
    T_RUN(test_expired_tombstones_count_for_nothing_on_every_peer);
    return t_done();
}
