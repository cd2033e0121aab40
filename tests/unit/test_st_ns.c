/*
 * test_st_ns.c - namespace operations (ns.c): create/mkdir/symlink with
 * ownership and setgid inheritance, link counts, unlink/rmdir orphans,
 * rename in all its forms (replace, NOREPLACE, EXCHANGE, directories,
 * loop check), setattr, write commit, punch, xattrs, reaping, re-chunking
 * after isolated writes, and the
 * change-log records each operation appends (decoded back).
 */
#include <dirent.h>
#include <sys/stat.h>

#include "ns.h"
#include "t.h"

static char *dir;
static st_store *st;
static st_txn *tx;

static int setup(void)
{
    dir = t_tmpdir();
    if (st_open(dir, ST_OPEN_CREATE, &st))
        return -1;
    return st_txn_begin(st, ST_TXN_WRITE, &tx);
}

static void teardown(void)
{
    st_txn_abort(tx);
    tx = NULL;
    st_close(st);
    st = NULL;
    t_rmrf(dir);
    free(dir);
}

#define S(x) x, strlen(x)

/* Last log record, decoded into *r (buffer kept in static storage). */
struct lastrec { uint8_t buf[70000]; size_t len; uint64_t seq; };
static struct lastrec last;
static int grab_last(uint64_t seq, const void *rec, size_t len, void *arg)
{
    if (len <= sizeof(last.buf)) {
        memcpy(last.buf, rec, len);
        last.len = len;
        last.seq = seq;
    }
    return 0;
}
static int last_rec(struct st_ns_rec *r)
{
    last.len = 0;
    int rc = st_log_foreach(tx, 0, grab_last, NULL);
    if (rc)
        return rc;
    return st_ns_rec_decode(last.buf, last.len, r);
}

static uint64_t child(uint64_t parent, const char *name)
{
    struct st_dirent de;
    if (st_dirent_get(tx, parent, name, strlen(name), &de))
        return 0;
    return de.child;
}

static uint32_t nlink_of(uint64_t ino)
{
    struct st_inode in;
    return st_inode_get(tx, ino, &in) ? 0xffffffff : in.nlink;
}

static void test_create_file_dir_symlink_and_records(void)
{
    if (setup()) T_FAILF("setup");
    struct st_inode f, d, l, root;
    struct st_ns_rec r;
    T_OK(st_ns_create(tx, ST_ROOT_INO, S("file"), S_IFREG | 0640, 1000, 100, 0, NULL, 0, &f));
    T_EQ(f.uid, 1000);
    T_EQ(f.gid, 100);
    T_EQ(f.nlink, 1);
    T_EQ(f.mode, S_IFREG | 0640);
    T_EQ(child(ST_ROOT_INO, "file"), f.ino);
    T_OK(last_rec(&r));
    T_EQ(r.op, ST_NS_OP_CREATE);
    T_MEM(r.fid, f.fid, 16);
    T_EQ(r.n1, 4);
    T_MEM(r.name1, "file", 4);
    T_EQ(r.vv, 1);
    T_OK(st_inode_get(tx, ST_ROOT_INO, &root));
    T_MEM(r.pfid, root.fid, 16);
    uint32_t rootlinks = root.nlink;

    T_OK(st_ns_create(tx, ST_ROOT_INO, S("dir"), S_IFDIR | 0755, 0, 0, 0, NULL, 0, &d));
    T_EQ(d.nlink, 2);
    T_EQ(nlink_of(ST_ROOT_INO), rootlinks + 1);
    T_OK(last_rec(&r));
    T_EQ(r.op, ST_NS_OP_MKDIR);

    T_OK(st_ns_create(tx, d.ino, S("link"), S_IFLNK | 0777, 0, 0, 0, S("../file"), &l));
    T_EQ(l.size, 7);
    struct st_span sp[4];
    size_t n;
    T_OK(st_file_read(tx, l.ino, 0, 7, sp, 4, &n));
    T_EQ(n, 1);
    T_EQ(sp[0].kind, ST_SPAN_DATA);
    T_MEM(sp[0].data, "../file", 7);
    T_OK(last_rec(&r));
    T_EQ(r.op, ST_NS_OP_SYMLINK);
    T_EQ(r.n3, 7);
    T_MEM(r.data, "../file", 7);

    T_ERR(st_ns_create(tx, ST_ROOT_INO, S("file"), S_IFREG | 0644, 0, 0, 0, NULL, 0, NULL), -EEXIST);
    T_ERR(st_ns_create(tx, f.ino, S("x"), S_IFREG | 0644, 0, 0, 0, NULL, 0, NULL), -ENOTDIR);
    T_ERR(st_ns_create(tx, 9999, S("x"), S_IFREG | 0644, 0, 0, 0, NULL, 0, NULL), -ENOENT);
    T_ERR(st_ns_create(tx, ST_ROOT_INO, S("a/b"), S_IFREG | 0644, 0, 0, 0, NULL, 0, NULL), -EINVAL);
    char big[300];
    memset(big, 'n', sizeof(big));
    T_ERR(st_ns_create(tx, ST_ROOT_INO, big, 256, S_IFREG, 0, 0, 0, NULL, 0, NULL), -ENAMETOOLONG);
    T_OK(st_ns_create(tx, ST_ROOT_INO, big, 255, S_IFREG, 0, 0, 0, NULL, 0, NULL));
    T_OK(st_txn_commit(tx));
    tx = NULL;
    teardown();
}

static void test_setgid_directory_passes_group(void)
{
    if (setup()) T_FAILF("setup");
    struct st_inode d, f, sub;
    T_OK(st_ns_create(tx, ST_ROOT_INO, S("sg"), S_IFDIR | 02775, 0, 50, 0, NULL, 0, &d));
    T_OK(st_ns_create(tx, d.ino, S("f"), S_IFREG | 0644, 1000, 1000, 0, NULL, 0, &f));
    T_EQ(f.gid, 50);
    T_EQ(f.mode & S_ISGID, 0);
    T_OK(st_ns_create(tx, d.ino, S("sub"), S_IFDIR | 0755, 1000, 1000, 0, NULL, 0, &sub));
    T_EQ(sub.gid, 50);
    T_TRUE(sub.mode & S_ISGID);
    teardown();
}

static void test_link_unlink_orphan_and_reap(void)
{
    if (setup()) T_FAILF("setup");
    struct st_inode f, d;
    uint64_t ino;
    int orphan;
    T_OK(st_ns_create(tx, ST_ROOT_INO, S("f"), S_IFREG | 0644, 0, 0, 0, NULL, 0, &f));
    T_OK(st_ns_create(tx, ST_ROOT_INO, S("d"), S_IFDIR | 0755, 0, 0, 0, NULL, 0, &d));
    T_OK(st_ns_link(tx, f.ino, d.ino, S("g"), NULL));
    T_EQ(nlink_of(f.ino), 2);
    T_ERR(st_ns_link(tx, d.ino, ST_ROOT_INO, S("dd"), NULL), -EPERM);
    T_ERR(st_ns_link(tx, f.ino, d.ino, S("g"), NULL), -EEXIST);
    T_OK(st_ns_unlink(tx, ST_ROOT_INO, S("f"), &ino, &orphan));
    T_EQ(ino, f.ino);
    T_EQ(orphan, 0);
    T_ERR(st_ns_unlink(tx, ST_ROOT_INO, S("f"), &ino, &orphan), -ENOENT);
    T_ERR(st_ns_unlink(tx, ST_ROOT_INO, S("d"), &ino, &orphan), -EISDIR);
    T_OK(st_ns_unlink(tx, d.ino, S("g"), &ino, &orphan));
    T_EQ(orphan, 1);
    /* The orphan stays (an open file must remain readable) until reaped. */
    T_EQ(nlink_of(f.ino), 0);
    struct st_ns_rec r;
    T_OK(last_rec(&r));
    T_EQ(r.op, ST_NS_OP_UNLINK);
    T_EQ(r.nlink, 0);
    T_EQ(st_ns_reap(tx, d.ino), 0);     /* has links: kept */
    T_EQ(st_ns_reap(tx, f.ino), 1);
    T_EQ(nlink_of(f.ino), 0xffffffff);  /* gone */
    T_EQ(st_ns_reap(tx, f.ino), 0);
    teardown();
}

static void test_rmdir_and_reap_orphans(void)
{
    if (setup()) T_FAILF("setup");
    struct st_inode d, e;
    uint64_t ino, count;
    T_OK(st_ns_create(tx, ST_ROOT_INO, S("d"), S_IFDIR | 0755, 0, 0, 0, NULL, 0, &d));
    T_OK(st_ns_create(tx, d.ino, S("e"), S_IFDIR | 0755, 0, 0, 0, NULL, 0, &e));
    T_EQ(nlink_of(d.ino), 3);
    T_ERR(st_ns_rmdir(tx, ST_ROOT_INO, S("d"), &ino), -ENOTEMPTY);
    T_OK(st_ns_create(tx, ST_ROOT_INO, S("f"), S_IFREG, 0, 0, 0, NULL, 0, NULL));
    T_ERR(st_ns_rmdir(tx, ST_ROOT_INO, S("f"), &ino), -ENOTDIR);
    T_OK(st_ns_rmdir(tx, d.ino, S("e"), &ino));
    T_EQ(ino, e.ino);
    T_EQ(nlink_of(d.ino), 2);
    T_EQ(nlink_of(e.ino), 0);
    /* Nothing may be created in a removed directory. */
    T_ERR(st_ns_create(tx, e.ino, S("x"), S_IFREG, 0, 0, 0, NULL, 0, NULL), -ENOENT);
    T_OK(st_ns_rmdir(tx, ST_ROOT_INO, S("d"), &ino));
    T_OK(st_ns_reap_orphans(tx, &count));
    T_EQ(count, 2);
    T_EQ(nlink_of(d.ino), 0xffffffff);
    T_EQ(nlink_of(ST_ROOT_INO), 2);
    teardown();
}

static void test_rename_forms(void)
{
    if (setup()) T_FAILF("setup");
    struct st_inode a, b, x, y, d1, d2, sub;
    uint64_t orphan;
    T_OK(st_ns_create(tx, ST_ROOT_INO, S("d1"), S_IFDIR | 0755, 0, 0, 0, NULL, 0, &d1));
    T_OK(st_ns_create(tx, ST_ROOT_INO, S("d2"), S_IFDIR | 0755, 0, 0, 0, NULL, 0, &d2));
    T_OK(st_ns_create(tx, d1.ino, S("a"), S_IFREG | 0644, 0, 0, 0, NULL, 0, &a));
    T_OK(st_ns_create(tx, d2.ino, S("b"), S_IFREG | 0644, 0, 0, 0, NULL, 0, &b));

    /* Across directories, then over an existing file. */
    T_OK(st_ns_rename(tx, d1.ino, S("a"), d2.ino, S("a2"), 0, &orphan));
    T_EQ(orphan, 0);
    T_EQ(child(d1.ino, "a"), 0);
    T_EQ(child(d2.ino, "a2"), a.ino);
    struct st_ns_rec r;
    T_OK(last_rec(&r));
    T_EQ(r.op, ST_NS_OP_RENAME);
    T_MEM(r.fid, a.fid, 16);
    T_MEM(r.pfid, d1.fid, 16);
    T_MEM(r.pfid2, d2.fid, 16);
    T_EQ(r.n1, 1);
    T_EQ(r.n2, 2);
    T_MEM(r.name2, "a2", 2);
    T_ERR(st_ns_rename(tx, d2.ino, S("a2"), d2.ino, S("b"), ST_NS_NOREPLACE, &orphan), -EEXIST);
    T_OK(st_ns_rename(tx, d2.ino, S("a2"), d2.ino, S("b"), 0, &orphan));
    T_EQ(orphan, b.ino);
    T_EQ(nlink_of(b.ino), 0);
    T_EQ(child(d2.ino, "b"), a.ino);
    T_OK(last_rec(&r));
    T_MEM(r.fid2, b.fid, 16);

    /* Exchange a file and a directory across parents. */
    T_OK(st_ns_create(tx, d1.ino, S("x"), S_IFDIR | 0755, 0, 0, 0, NULL, 0, &x));
    T_EQ(nlink_of(d1.ino), 3);
    T_ERR(st_ns_rename(tx, d1.ino, S("x"), d2.ino, S("nope"), ST_NS_EXCHANGE, &orphan), -ENOENT);
    T_OK(st_ns_rename(tx, d1.ino, S("x"), d2.ino, S("b"), ST_NS_EXCHANGE, &orphan));
    T_EQ(orphan, 0);
    T_EQ(child(d1.ino, "x"), a.ino);
    T_EQ(child(d2.ino, "b"), x.ino);
    T_EQ(nlink_of(d1.ino), 2);
    T_EQ(nlink_of(d2.ino), 3);
    struct st_inode xi;
    T_OK(st_inode_get(tx, x.ino, &xi));
    T_EQ(xi.parent, d2.ino);

    /* Directory type rules and loop check. */
    T_OK(st_ns_create(tx, x.ino, S("sub"), S_IFDIR | 0755, 0, 0, 0, NULL, 0, &sub));
    T_ERR(st_ns_rename(tx, d2.ino, S("b"), sub.ino, S("loop"), 0, &orphan), -EINVAL);
    T_ERR(st_ns_rename(tx, d2.ino, S("b"), x.ino, S("self"), 0, &orphan), -EINVAL);
    T_ERR(st_ns_rename(tx, d1.ino, S("x"), d2.ino, S("b"), 0, &orphan), -EISDIR);
    T_ERR(st_ns_rename(tx, d2.ino, S("b"), d1.ino, S("x"), 0, &orphan), -ENOTDIR);
    T_ERR(st_ns_rename(tx, ST_ROOT_INO, S("d1"), d1.ino, S("x"), 0, &orphan), -EINVAL);
    T_OK(st_ns_create(tx, ST_ROOT_INO, S("y"), S_IFDIR | 0755, 0, 0, 0, NULL, 0, &y));
    T_ERR(st_ns_rename(tx, d1.ino, S("x"), ST_ROOT_INO, S("y"), 0, &orphan), -EISDIR);
    T_ERR(st_ns_rename(tx, d2.ino, S("b"), ST_ROOT_INO, S("d1"), 0, &orphan), -ENOTEMPTY);
    /* Over an empty directory: y goes, root loses one link. */
    uint32_t rl = nlink_of(ST_ROOT_INO);
    T_OK(st_ns_rename(tx, d2.ino, S("b"), ST_ROOT_INO, S("y"), 0, &orphan));
    T_EQ(orphan, y.ino);
    T_EQ(nlink_of(y.ino), 0);
    T_EQ(nlink_of(ST_ROOT_INO), rl);   /* -1 for y, +1 for x moving in */
    T_EQ(nlink_of(d2.ino), 2);
    /* Same inode under both names: nothing happens. */
    T_OK(st_ns_link(tx, a.ino, d1.ino, S("a-again"), NULL));
    T_OK(st_ns_rename(tx, d1.ino, S("x"), d1.ino, S("a-again"), 0, &orphan));
    T_EQ(child(d1.ino, "x"), a.ino);
    T_EQ(nlink_of(a.ino), 2);
    teardown();
}

static void test_setattr_write_punch(void)
{
    if (setup()) T_FAILF("setup");
    struct st_inode f, out;
    T_OK(st_ns_create(tx, ST_ROOT_INO, S("f"), S_IFREG | 0644, 0, 0, 0, NULL, 0, &f));
    static uint8_t data[300000];
    t_fill(data, sizeof(data), 5);
    struct st_wrange w[2] = { { 0, 1000, data }, { 200000, 100000, data + 200000 } };
    struct timespec mt = { 1234567, 89 };
    T_OK(st_ns_write(tx, f.ino, w, 2, 0, &mt, 0, NULL, &out));
    T_EQ(out.size, 300000);
    T_EQ(out.mtime.tv_sec, 1234567);
    struct st_ns_rec r;
    T_OK(last_rec(&r));
    T_EQ(r.op, ST_NS_OP_WRITE);
    T_EQ(r.n3, 16);
    T_EQ(lr_get_le64(r.data), 0);
    T_EQ(lr_get_le64((const uint8_t *)r.data + 8), 300000);
    T_EQ(r.size, 300000);
    T_EQ(r.vv, 2);

    struct st_span sp[64];
    size_t n;
    T_OK(st_file_read(tx, f.ino, 500, 1000, sp, 64, &n));
    T_EQ(sp[0].kind, ST_SPAN_DATA);
    T_MEM(sp[0].data, data + 500, 500);
    T_EQ(sp[n - 1].kind, ST_SPAN_HOLE);

    T_OK(st_ns_punch(tx, f.ino, 250000, 10000, &out));
    T_EQ(out.size, 300000);
    T_OK(st_file_read(tx, f.ino, 250000, 10000, sp, 64, &n));
    T_EQ(n, 1);
    T_EQ(sp[0].kind, ST_SPAN_HOLE);

    struct st_ns_attr a = { .mode = 04711, .uid = 7, .gid = 8, .size = 100 };
    T_OK(st_ns_setattr(tx, f.ino, ST_NS_SET_MODE | ST_NS_SET_UID | ST_NS_SET_GID | ST_NS_SET_SIZE, &a, &out));
    T_EQ(out.mode, S_IFREG | 04711);
    T_EQ(out.uid, 7);
    T_EQ(out.gid, 8);
    T_EQ(out.size, 100);
    struct st_extent e;
    T_ERR(st_extent_find(tx, f.ino, 100, &e), -ENOENT);
    a.atime = (struct timespec){ 10, 1 };
    a.mtime = (struct timespec){ 20, 2 };
    T_OK(st_ns_setattr(tx, f.ino, ST_NS_SET_ATIME | ST_NS_SET_MTIME, &a, &out));
    T_EQ(out.atime.tv_sec, 10);
    T_EQ(out.mtime.tv_nsec, 2);
    T_OK(last_rec(&r));
    T_EQ(r.op, ST_NS_OP_SETATTR);
    T_EQ(r.valid, ST_NS_SET_ATIME | ST_NS_SET_MTIME);
    T_EQ(r.mtime.tv_sec, 20);
    struct st_inode d;
    T_OK(st_ns_create(tx, ST_ROOT_INO, S("d"), S_IFDIR | 0755, 0, 0, 0, NULL, 0, &d));
    T_ERR(st_ns_setattr(tx, d.ino, ST_NS_SET_SIZE, &a, NULL), -EISDIR);
    teardown();
}

static void test_xattrs(void)
{
    if (setup()) T_FAILF("setup");
    struct st_inode f;
    const void *v;
    size_t len;
    T_OK(st_ns_create(tx, ST_ROOT_INO, S("f"), S_IFREG | 0644, 0, 0, 0, NULL, 0, &f));
    T_ERR(st_ns_setxattr(tx, f.ino, "user.a", "1", 1, ST_NS_XATTR_REPLACE), -ENODATA);
    T_OK(st_ns_setxattr(tx, f.ino, "user.a", "1", 1, ST_NS_XATTR_CREATE));
    T_ERR(st_ns_setxattr(tx, f.ino, "user.a", "2", 1, ST_NS_XATTR_CREATE), -EEXIST);
    T_OK(st_ns_setxattr(tx, f.ino, "user.a", "22", 2, ST_NS_XATTR_REPLACE));
    T_OK(st_xattr_get(tx, f.ino, "user.a", &v, &len));
    T_EQ(len, 2);
    T_MEM(v, "22", 2);
    struct st_ns_rec r;
    T_OK(last_rec(&r));
    T_EQ(r.op, ST_NS_OP_SETXATTR);
    T_EQ(r.n1, 6);
    T_EQ(r.n3, 2);
    T_OK(st_ns_removexattr(tx, f.ino, "user.a"));
    T_ERR(st_ns_removexattr(tx, f.ino, "user.a"), -ENODATA);
    T_ERR(st_xattr_get(tx, f.ino, "user.a", &v, &len), -ENODATA);
    teardown();
}

static void test_record_decode_rejects_damage(void)
{
    uint8_t buf[ST_NS_REC_HDR + 20];
    struct st_ns_rec r = { .op = ST_NS_OP_RENAME, .name1 = "abc", .n1 = 3, .name2 = "de", .n2 = 2,
                           .data = "xyz", .n3 = 3, .mode = 0100644, .size = 77 };
    size_t len = st_ns_rec_encode(&r, buf, sizeof(buf));
    T_EQ(len, ST_NS_REC_HDR + 8);
    T_EQ(st_ns_rec_encode(&r, buf, len - 1), 0);
    struct st_ns_rec d;
    T_OK(st_ns_rec_decode(buf, len, &d));
    T_EQ(d.op, ST_NS_OP_RENAME);
    T_EQ(d.size, 77);
    T_MEM(d.name2, "de", 2);
    for (size_t cut = 0; cut < len; cut++)
        T_ERR(st_ns_rec_decode(buf, cut, &d), LR_ECORRUPT);
    buf[0] = 9;
    T_ERR(st_ns_rec_decode(buf, len, &d), LR_ECORRUPT);
    buf[0] = ST_NS_REC_VERSION;
    buf[1] = 0;
    T_ERR(st_ns_rec_decode(buf, len, &d), LR_ECORRUPT);
    buf[1] = ST_NS_OP_LAST;
    T_ERR(st_ns_rec_decode(buf, len, &d), LR_ECORRUPT);
    buf[1] = ST_NS_OP_RENAME;
    lr_put_le16(buf + 4, 300);
    T_ERR(st_ns_rec_decode(buf, len, &d), LR_ECORRUPT);
    lr_put_le16(buf + 4, 3);
    lr_put_le32(buf + 8, 0xffffffffu);
    T_ERR(st_ns_rec_decode(buf, len, &d), LR_ECORRUPT);
}

static void test_version_vector_bumps_per_change(void)
{
    if (setup()) T_FAILF("setup");
    struct st_inode f, out;
    T_OK(st_ns_create(tx, ST_ROOT_INO, S("f"), S_IFREG | 0644, 0, 0, 0, NULL, 0, &f));
    struct st_ns_attr a = { .mode = 0600 };
    T_OK(st_ns_setattr(tx, f.ino, ST_NS_SET_MODE, &a, NULL));
    T_OK(st_ns_setattr(tx, f.ino, ST_NS_SET_MODE, &a, &out));
    T_EQ(out.nvv, 1);
    T_EQ(out.vv[0].ctr, 3);
    struct st_meta m;
    st_meta(st, &m);
    T_MEM(out.vv[0].dev, m.device, 8);
    teardown();
}

static void test_rechunk_keeps_bytes_and_times_and_only_touches_our_versions(void)
{
    if (setup()) T_FAILF("setup");
    struct st_inode f, g, in, after;
    T_OK(st_ns_create(tx, ST_ROOT_INO, S("f"), S_IFREG | 0644, 0, 0, 0, NULL, 0, &f));
    T_OK(st_ns_create(tx, ST_ROOT_INO, S("g"), S_IFREG | 0644, 0, 0, 0, NULL, 0, &g));
    static uint8_t data[1u << 20], ref[1u << 20];
    t_fill(data, sizeof(data), 7);
    struct timespec mt = { 1234567, 89 };
    struct st_wrange w = { 0, sizeof(data), data };
    T_OK(st_ns_write(tx, f.ino, &w, 1, 0, &mt, 0, NULL, NULL));
    T_OK(st_ns_write(tx, g.ino, &w, 1, 0, &mt, 0, NULL, NULL));
    /* One small write into each, isolated. */
    memcpy(ref, data, sizeof(ref));
    memset(ref + 300000, 'x', 4096);
    struct st_wrange x = { 300000, 4096, ref + 300000 };
    struct st_wstat ws;
    T_OK(st_ns_write(tx, f.ino, &x, 1, 0, &mt, ST_WRITE_ISOLATE, &ws, NULL));
    T_EQ(ws.isolated, 1);
    T_OK(st_ns_write(tx, g.ino, &x, 1, 0, &mt, ST_WRITE_ISOLATE, &ws, NULL));
    T_EQ(ws.isolated, 1);
    /* g's current version comes from another device. */
    T_OK(st_inode_get(tx, g.ino, &in));
    memset(in.writer, 0xee, sizeof(in.writer));
    T_OK(st_inode_put(tx, &in));

    T_OK(st_inode_get(tx, f.ino, &in));
    uint64_t next, rw;
    T_OK(st_ns_rechunk(tx, f.ino, 300000, 4096, UINT64_MAX, &next, &rw));
    T_TRUE(rw >= 4096);
    T_EQ(next, 304096);
    T_OK(st_inode_get(tx, f.ino, &after));
    T_EQ(after.size, in.size);
    T_EQ(after.mtime.tv_sec, in.mtime.tv_sec);
    T_EQ(after.ctime.tv_sec, in.ctime.tv_sec);
    T_EQ(after.ctime.tv_nsec, in.ctime.tv_nsec);
    struct st_ns_rec r;
    T_OK(last_rec(&r));
    T_EQ(r.op, ST_NS_OP_WRITE);
    T_MEM(r.fid, f.fid, 16);
    T_EQ(r.vv, in.vv[0].ctr + 1);
    struct st_span sp[64];
    size_t n;
    uint64_t pos = 0;
    while (pos < sizeof(ref)) {
        T_OK(st_file_read(tx, f.ino, pos, sizeof(ref) - pos, sp, 64, &n));
        for (size_t i = 0; i < n; pos += sp[i].len, i++) {
            T_EQ(sp[i].kind, ST_SPAN_DATA);
            T_MEM(sp[i].data, ref + pos, sp[i].len);
        }
    }
    /* Nothing left: nothing rewritten, no record. */
    uint64_t seq = last.seq;
    T_OK(st_ns_rechunk(tx, f.ino, 300000, 4096, UINT64_MAX, &next, &rw));
    T_EQ(rw, 0);
    T_OK(last_rec(&r));
    T_EQ(last.seq, seq);
    /* A peer's version is left as it came. */
    T_OK(st_ns_rechunk(tx, g.ino, 300000, 4096, UINT64_MAX, &next, &rw));
    T_EQ(rw, 0);
    T_OK(last_rec(&r));
    T_EQ(last.seq, seq);
    T_EQ(st_ns_rechunk(tx, 999999, 0, 10, UINT64_MAX, &next, &rw), -ENOENT);
    teardown();
}

int main(void)
{
    lr_log_set_level(LR_LOG_QUIET);
    T_RUN(test_create_file_dir_symlink_and_records);
    T_RUN(test_setgid_directory_passes_group);
    T_RUN(test_link_unlink_orphan_and_reap);
    T_RUN(test_rmdir_and_reap_orphans);
    T_RUN(test_rename_forms);
    T_RUN(test_setattr_write_punch);
    T_RUN(test_xattrs);
    T_RUN(test_record_decode_rejects_damage);
    T_RUN(test_version_vector_bumps_per_change);
    T_RUN(test_rechunk_keeps_bytes_and_times_and_only_touches_our_versions);
    return t_done();
}
