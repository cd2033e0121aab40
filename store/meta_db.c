/*
 * meta_db.c - inodes, directory entries, extended attributes, the change
 * log and peers: thin typed layers over their LMDB databases. See store.h.
 */
#include "store_int.h"

#include <stdlib.h>

/* ---- inodes ---------------------------------------------------------- */

int st_inode_alloc(st_txn *t, struct st_inode *in)
{
    ST_CHECK_WRITE(t);
    uint64_t ino, fid;
    int rc;
    if ((rc = st_meta_next(t, "next_ino", &ino)) || (rc = st_meta_next(t, "next_fid", &fid)))
        return rc;
    in->ino = ino;
    pthread_mutex_lock(&t->st->meta_lock);
    memcpy(in->fid, t->st->meta.device, 8);
    pthread_mutex_unlock(&t->st->meta_lock);
    lr_put_be64(in->fid + 8, fid);
    return 0;
}

int st_inode_get(st_txn *t, uint64_t ino, struct st_inode *out)
{
    ST_CHECK_TXN(t);
    uint8_t k[8];
    MDB_val v;
    st__key_u64(k, ino);
    int rc = st__get(t, t->st->db_inode, k, 8, &v);
    if (rc)
        return rc;
    out->ino = ino;
    if (st_inode_decode(v.mv_data, v.mv_size, out)) {
        char what[48];
        snprintf(what, sizeof(what), "inode %llu", (unsigned long long)ino);
        return st__corrupt(t, "inode", what);
    }
    return 0;
}

int st_inode_put(st_txn *t, const struct st_inode *in)
{
    ST_CHECK_WRITE(t);
    uint8_t k[8], v[ST_INODE_LEN + ST_VV_MAX * 16];
    size_t n = st_inode_encode(in, v, sizeof(v));
    if (!n || in->ino == 0)
        return -EINVAL;
    st__key_u64(k, in->ino);
    int rc = st__put(t, t->st->db_inode, k, 8, v, n, 0);
    if (rc)
        return rc;
    uint8_t zero[16] = { 0 };
    if (!memcmp(in->fid, zero, 16))
        return 0; /* no global id (tests, fsck scratch inodes) */
    /* A file keeps its id, so most saves find the mapping in place:
     * rewriting it would still copy the fid tree's leaf and branch pages
     * into the commit (two of an unlink's ~15 page writes per inode). */
    MDB_val cur;
    rc = st__get(t, t->st->db_fid, in->fid, 16, &cur);
    if (rc == 0 && cur.mv_size == 8 && memcmp(cur.mv_data, k, 8) == 0)
        return 0;
    if (rc && rc != -ENOENT)
        return rc;
    return st__put(t, t->st->db_fid, in->fid, 16, k, 8, 0);
}

int st_fid_lookup(st_txn *t, const uint8_t fid[16], uint64_t *ino)
{
    ST_CHECK_TXN(t);
    MDB_val v;
    int rc = st__get(t, t->st->db_fid, fid, 16, &v);
    if (rc)
        return rc;
    if (v.mv_size != 8)
        return st__corrupt(t, "fid", "value length");
    *ino = lr_get_be64(v.mv_data);
    return 0;
}

static int unref_extent(st_txn *t, const MDB_val *k, const MDB_val *v, void *arg)
{
    uint64_t ino;
    struct st_extent e;
    if (st_extent_decode(k->mv_data, k->mv_size, v->mv_data, v->mv_size, &ino, &e))
        return st__corrupt(t, "extent", "undecodable extent");
    return st__chunk_ref(t, &e.hash, -1);
}

int st_inode_del(st_txn *t, uint64_t ino)
{
    ST_CHECK_WRITE(t);
    uint8_t k[8];
    st__key_u64(k, ino);
    struct st_inode in;
    int rc = st_inode_get(t, ino, &in);
    if (rc == 0) {
        uint64_t cur;
        if (st_fid_lookup(t, in.fid, &cur) == 0 && cur == ino) {
            if ((rc = st__del(t, t->st->db_fid, in.fid, 16)) || (rc = st__rep_tomb(t, &in)))
                return rc;
        }
    } else if (rc != LR_ECORRUPT) {
        return rc;
    }
    if ((rc = st__del(t, t->st->db_inode, k, 8)))
        return rc;
    if ((rc = st__del_prefix(t, t->st->db_extent, k, 8, unref_extent, NULL)) ||
        (rc = st__version_drop_all(t, ino)))
        return rc;
    return st__del_prefix(t, t->st->db_xattr, k, 8, NULL, NULL);
}

struct inode_walk {
    int (*cb)(const struct st_inode *, void *);
    void *arg;
};

static int inode_each(st_txn *t, const MDB_val *k, const MDB_val *v, void *arg)
{
    struct inode_walk *w = arg;
    if (k->mv_size != 8)
        return st__corrupt(t, "inode", "key length");
    struct st_inode in;
    in.ino = lr_get_be64(k->mv_data);
    if (st_inode_decode(v->mv_data, v->mv_size, &in)) {
        char what[48];
        snprintf(what, sizeof(what), "inode %llu", (unsigned long long)in.ino);
        return st__corrupt(t, "inode", what);
    }
    return w->cb(&in, w->arg);
}

int st_inode_foreach(st_txn *t, int (*cb)(const struct st_inode *, void *), void *arg)
{
    ST_CHECK_TXN(t);
    struct inode_walk w = { cb, arg };
    return st__walk(t, t->st->db_inode, NULL, 0, 0, inode_each, &w, "inode walk");
}

/* ---- directory entries ----------------------------------------------- */

int st_name_check(const char *name, size_t len)
{
    if (len == 0 || memchr(name, '/', len) || memchr(name, 0, len))
        return -EINVAL;
    if (len > ST_NAME_MAX)
        return -ENAMETOOLONG;
    return 0;
}

/* Add (add=1) or remove the backref child <- (parent, name). */
static int backref(st_txn *t, uint64_t child, uint64_t parent, const char *name, size_t len, int add)
{
    uint8_t k[16 + ST_NAME_MAX];
    st__key_u64x2(k, child, parent);
    memcpy(k + 16, name, len);
    if (add)
        return st__put(t, t->st->db_backref, k, 16 + len, "", 0, 0);
    int rc = st__del(t, t->st->db_backref, k, 16 + len);
    return rc == -ENOENT ? 0 : rc;
}

static size_t dirent_key(uint8_t *k, uint64_t parent, const char *name, size_t len)
{
    st__key_u64(k, parent);
    memcpy(k + 8, name, len);
    return 8 + len;
}

int st_dirent_get(st_txn *t, uint64_t parent, const char *name, size_t len, struct st_dirent *out)
{
    ST_CHECK_TXN(t);
    int rc = st_name_check(name, len);
    if (rc)
        return rc;
    uint8_t k[8 + ST_NAME_MAX];
    size_t kl = dirent_key(k, parent, name, len);
    MDB_val v;
    if ((rc = st__get(t, t->st->db_dirent, k, kl, &v)))
        return rc;
    if (st_dirent_decode(k, kl, v.mv_data, v.mv_size, out))
        return st__corrupt(t, "dirent", name);
    return 0;
}

int st_dirent_put(st_txn *t, uint64_t parent, const char *name, size_t len, uint64_t child, uint8_t type)
{
    ST_CHECK_WRITE(t);
    int rc = st_name_check(name, len);
    if (rc)
        return rc;
    if (child == 0)
        return -EINVAL;
    uint8_t k[8 + ST_NAME_MAX], v[ST_DIRENT_LEN] = { 1, type };
    lr_put_le64(v + 8, child);
    size_t kl = dirent_key(k, parent, name, len);
    struct st_dirent old;
    rc = st_dirent_get(t, parent, name, len, &old);
    if (rc == 0 && old.child != child && (rc = backref(t, old.child, parent, name, len, 0)))
        return rc;
    if (rc && rc != -ENOENT)
        return rc;
    if ((rc = st__put(t, t->st->db_dirent, k, kl, v, sizeof(v), 0)))
        return rc;
    return backref(t, child, parent, name, len, 1);
}

int st_dirent_del(st_txn *t, uint64_t parent, const char *name, size_t len)
{
    ST_CHECK_WRITE(t);
    int rc = st_name_check(name, len);
    if (rc)
        return rc;
    uint8_t k[8 + ST_NAME_MAX];
    size_t kl = dirent_key(k, parent, name, len);
    struct st_dirent old;
    if ((rc = st_dirent_get(t, parent, name, len, &old)))
        return rc;
    if ((rc = st__del(t, t->st->db_dirent, k, kl)))
        return rc;
    return backref(t, old.child, parent, name, len, 0);
}

struct names_walk {
    int (*cb)(uint64_t parent, const char *name, size_t len, void *);
    void *arg;
};

static int names_each(st_txn *t, const MDB_val *k, const MDB_val *v, void *arg)
{
    struct names_walk *w = arg;
    (void)v;
    if (k->mv_size < 17 || k->mv_size > 16 + ST_NAME_MAX)
        return st__corrupt(t, "backref", "key length");
    const uint8_t *kb = k->mv_data;
    return w->cb(lr_get_be64(kb + 8), (const char *)kb + 16, k->mv_size - 16, w->arg);
}

int st_dirent_names(st_txn *t, uint64_t child,
                    int (*cb)(uint64_t parent, const char *name, size_t len, void *), void *arg)
{
    ST_CHECK_TXN(t);
    uint8_t k0[8];
    st__key_u64(k0, child);
    struct names_walk w = { cb, arg };
    return st__walk(t, t->st->db_backref, k0, 8, 8, names_each, &w, "name walk");
}

int st_dirent_foreach(st_txn *t, uint64_t parent, const char *after, size_t afterlen,
                      int (*cb)(const struct st_dirent *, void *), void *arg)
{
    ST_CHECK_TXN(t);
    if (after && afterlen > ST_NAME_MAX)
        return -ENAMETOOLONG;
    MDB_cursor *c;
    int rc = mdb_cursor_open(t->txn, t->st->db_dirent, &c);
    if (rc)
        return st__fail(t, st__mdb_err(rc), "cursor");
    uint8_t k0[8 + ST_NAME_MAX];
    size_t kl = dirent_key(k0, parent, after ? after : "", after ? afterlen : 0);
    MDB_val k = { kl, k0 }, v;
    rc = mdb_cursor_get(c, &k, &v, MDB_SET_RANGE);
    if (rc == 0 && after && k.mv_size == kl && memcmp(k.mv_data, k0, kl) == 0)
        rc = mdb_cursor_get(c, &k, &v, MDB_NEXT);
    int ret = 0;
    struct st_dirent d;
    for (; rc == 0; rc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
        if (k.mv_size < 8 || lr_get_be64(k.mv_data) != parent)
            break;
        if (st_dirent_decode(k.mv_data, k.mv_size, v.mv_data, v.mv_size, &d)) {
            ret = st__corrupt(t, "dirent", "undecodable entry");
            break;
        }
        if ((ret = cb(&d, arg)))
            break;
    }
    mdb_cursor_close(c);
    if (ret)
        return ret;
    return (rc == 0 || rc == MDB_NOTFOUND) ? 0 : st__fail(t, st__mdb_err(rc), "directory walk");
}

static int dirent_stop(const struct st_dirent *d, void *arg)
{
    (void)d;
    (void)arg;
    return 1;
}

int st_dirent_empty(st_txn *t, uint64_t parent)
{
    int rc = st_dirent_foreach(t, parent, NULL, 0, dirent_stop, NULL);
    if (rc < 0)
        return rc;
    return rc == 1 ? 0 : 1;
}

/* ---- extended attributes --------------------------------------------- */

#define XATTR_NAME_MAX_ 255
static int xattr_key(uint8_t *k, uint64_t ino, const char *name, size_t *kl)
{
    size_t n = strlen(name);
    if (n == 0)
        return -EINVAL;
    if (n > XATTR_NAME_MAX_)
        return -ERANGE;
    st__key_u64(k, ino);
    memcpy(k + 8, name, n);
    *kl = 8 + n;
    return 0;
}

int st_xattr_get(st_txn *t, uint64_t ino, const char *name, const void **val, size_t *len)
{
    ST_CHECK_TXN(t);
    uint8_t k[8 + XATTR_NAME_MAX_];
    size_t kl;
    int rc = xattr_key(k, ino, name, &kl);
    if (rc)
        return rc;
    MDB_val v;
    rc = st__get(t, t->st->db_xattr, k, kl, &v);
    if (rc == -ENOENT)
        return -ENODATA;
    if (rc)
        return rc;
    *val = v.mv_data;
    *len = v.mv_size;
    return 0;
}

int st_xattr_put(st_txn *t, uint64_t ino, const char *name, const void *val, size_t len)
{
    ST_CHECK_WRITE(t);
    uint8_t k[8 + XATTR_NAME_MAX_];
    size_t kl;
    int rc = xattr_key(k, ino, name, &kl);
    if (rc)
        return rc;
    if (len > 65536)
        return -E2BIG;
    return st__put(t, t->st->db_xattr, k, kl, len ? val : "", len, 0);
}

int st_xattr_del(st_txn *t, uint64_t ino, const char *name)
{
    ST_CHECK_WRITE(t);
    uint8_t k[8 + XATTR_NAME_MAX_];
    size_t kl;
    int rc = xattr_key(k, ino, name, &kl);
    if (rc)
        return rc;
    rc = st__del(t, t->st->db_xattr, k, kl);
    return rc == -ENOENT ? -ENODATA : rc;
}

struct xattr_walk {
    int (*cb)(const char *name, size_t vlen, void *);
    void *arg;
};

static int xattr_each(st_txn *t, const MDB_val *k, const MDB_val *v, void *arg)
{
    struct xattr_walk *w = arg;
    char name[XATTR_NAME_MAX_ + 1];
    size_t n = k->mv_size - 8;
    if (n == 0)
        return 0; /* the bare prefix is no attribute */
    if (n > XATTR_NAME_MAX_)
        return st__corrupt(t, "xattr", "name too long");
    memcpy(name, (const uint8_t *)k->mv_data + 8, n);
    name[n] = 0;
    return w->cb(name, v->mv_size, w->arg);
}

int st_xattr_foreach(st_txn *t, uint64_t ino, int (*cb)(const char *name, size_t vlen, void *), void *arg)
{
    ST_CHECK_TXN(t);
    uint8_t k0[8];
    st__key_u64(k0, ino);
    struct xattr_walk w = { cb, arg };
    return st__walk(t, t->st->db_xattr, k0, 8, 8, xattr_each, &w, "xattr walk");
}

/* ---- change log ------------------------------------------------------ */

int st_log_append(st_txn *t, const void *rec, size_t len, uint64_t *seq)
{
    ST_CHECK_WRITE(t);
    uint64_t s;
    int rc = st_meta_next(t, "seq", &s);
    if (rc)
        return rc;
    uint8_t k[8];
    st__key_u64(k, s);
    if ((rc = st__put(t, t->st->db_log, k, 8, rec, len, MDB_APPEND)))
        return rc == -EEXIST ? st__fail(t, st__corrupt(t, "log", "sequence reused"), "log") : rc;
    t->logged = 1;
    if (seq)
        *seq = s;
    return 0;
}

struct log_walk {
    int (*cb)(uint64_t seq, const void *rec, size_t len, void *);
    void *arg;
};

static int log_each(st_txn *t, const MDB_val *k, const MDB_val *v, void *arg)
{
    struct log_walk *w = arg;
    if (k->mv_size != 8)
        return st__corrupt(t, "log", "key length");
    return w->cb(lr_get_be64(k->mv_data), v->mv_data, v->mv_size, w->arg);
}

int st_log_foreach(st_txn *t, uint64_t from,
                   int (*cb)(uint64_t seq, const void *rec, size_t len, void *), void *arg)
{
    ST_CHECK_TXN(t);
    uint8_t k0[8];
    st__key_u64(k0, from);
    struct log_walk w = { cb, arg };
    return st__walk(t, t->st->db_log, k0, 8, 0, log_each, &w, "log walk");
}

/* ---- peers ----------------------------------------------------------- */

int st_peer_put(st_txn *t, const uint8_t id[ST_DEVICE_ID_LEN], const void *rec, size_t len)
{
    ST_CHECK_WRITE(t);
    return st__put(t, t->st->db_peer, id, ST_DEVICE_ID_LEN, len ? rec : "", len, 0);
}

int st_peer_get(st_txn *t, const uint8_t id[ST_DEVICE_ID_LEN], const void **rec, size_t *len)
{
    ST_CHECK_TXN(t);
    MDB_val v;
    int rc = st__get(t, t->st->db_peer, id, ST_DEVICE_ID_LEN, &v);
    if (rc)
        return rc;
    *rec = v.mv_data;
    *len = v.mv_size;
    return 0;
}

int st_peer_del(st_txn *t, const uint8_t id[ST_DEVICE_ID_LEN])
{
    ST_CHECK_WRITE(t);
    return st__del(t, t->st->db_peer, id, ST_DEVICE_ID_LEN);
}

struct peer_walk {
    int (*cb)(const uint8_t *id, const void *rec, size_t len, void *);
    void *arg;
};

static int peer_each(st_txn *t, const MDB_val *k, const MDB_val *v, void *arg)
{
    struct peer_walk *w = arg;
    if (k->mv_size != ST_DEVICE_ID_LEN)
        return st__corrupt(t, "peer", "key length");
    return w->cb(k->mv_data, v->mv_data, v->mv_size, w->arg);
}

int st_peer_foreach(st_txn *t, int (*cb)(const uint8_t *id, const void *rec, size_t len, void *), void *arg)
{
    ST_CHECK_TXN(t);
    struct peer_walk w = { cb, arg };
    return st__walk(t, t->st->db_peer, NULL, 0, 0, peer_each, &w, "peer walk");
}
