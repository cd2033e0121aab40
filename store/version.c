/*
 * version.c - previous versions of files (store.h, "versions"): before a
 * file's data changes, its extent list can be kept as a version record
 * that holds a reference on every chunk it names, so the old bytes stay
 * in the store at no copy cost. At most ST_VERSIONS_MAX per file; the
 * oldest goes first.
 */
#include "store_int.h"

#include <stdlib.h>
#include <sys/stat.h>

#define VREC_HDR 40
#define VREC_EXT 48

static unsigned min_age_s = ST_VERSION_MIN_AGE_DEFAULT;

void st_version_set_min_age(unsigned seconds) { __atomic_store_n(&min_age_s, seconds, __ATOMIC_RELAXED); }

int st_version_decode(const void *buf, size_t len, struct st_version *out)
{
    const uint8_t *b = buf;
    if (len < VREC_HDR || b[0] != 1)
        return LR_ECORRUPT;
    out->nextents = lr_get_le32(b + 4);
    out->size = lr_get_le64(b + 8);
    if (st__get_ts(b + 16, &out->mtime) || st__get_ts(b + 28, &out->saved) ||
        (len - VREC_HDR) % VREC_EXT || (len - VREC_HDR) / VREC_EXT != out->nextents ||
        out->size > (uint64_t)INT64_MAX)
        return LR_ECORRUPT;
    out->extents = b + VREC_HDR;
    for (uint32_t i = 0; i < out->nextents; i++) {
        struct st_extent e;
        st_version_extent(out, i, &e);
        if (e.len == 0 || (uint64_t)e.chunk_off + e.len > ST_CDC_MAX_LIMIT || e.off > out->size ||
            out->size - e.off < e.len)
            return LR_ECORRUPT;
    }
    return 0;
}

void st_version_extent(const struct st_version *v, uint32_t i, struct st_extent *e)
{
    const uint8_t *x = v->extents + (size_t)i * VREC_EXT;
    e->off = lr_get_le64(x);
    e->len = lr_get_le32(x + 8);
    e->chunk_off = lr_get_le32(x + 12);
    memcpy(e->hash.b, x + 16, ST_HASH_LEN);
}

struct vbuf {
    uint8_t *d;
    size_t len, cap;
};

static int collect(uint64_t ino, const struct st_extent *e, void *arg)
{
    struct vbuf *b = arg;
    (void)ino;
    if (b->len + VREC_EXT > b->cap) {
        size_t cap = b->cap * 2;
        uint8_t *d = realloc(b->d, cap);
        if (!d)
            return -ENOMEM;
        b->d = d;
        b->cap = cap;
    }
    uint8_t *x = b->d + b->len;
    lr_put_le64(x, e->off);
    lr_put_le32(x + 8, e->len);
    lr_put_le32(x + 12, e->chunk_off);
    memcpy(x + 16, e->hash.b, ST_HASH_LEN);
    b->len += VREC_EXT;
    return 0;
}

/* Drop version record (k, v): release its chunk references, delete it. */
static int drop(st_txn *t, const MDB_val *k, const MDB_val *v, void *arg)
{
    (void)arg;
    struct st_version ver;
    if (st_version_decode(v->mv_data, v->mv_size, &ver) == 0) {
        for (uint32_t i = 0; i < ver.nextents; i++) {
            struct st_extent e;
            st_version_extent(&ver, i, &e);
            int rc = st__chunk_ref(t, &e.hash, -1);
            if (rc)
                return rc;
        }
    } /* else: undecodable, its references are fsck's business */
    (void)k;
    return 0;
}

int st_version_save(st_txn *t, const struct st_inode *in)
{
    ST_CHECK_WRITE(t);
    if (!S_ISREG(in->mode) || in->size == 0)
        return 0;
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    unsigned age = __atomic_load_n(&min_age_s, __ATOMIC_RELAXED);
    if (now.tv_sec - in->mtime.tv_sec < (time_t)age)
        return 0; /* the same editing session: one version is enough */
    struct vbuf b = { .cap = 4096 };
    if (!(b.d = malloc(b.cap)))
        return -ENOMEM;
    memset(b.d, 0, VREC_HDR);
    b.len = VREC_HDR;
    int rc = st_extent_foreach(t, in->ino, 0, collect, &b);
    if (rc)
        goto out;
    uint32_t n = (uint32_t)((b.len - VREC_HDR) / VREC_EXT);
    b.d[0] = 1;
    lr_put_le32(b.d + 4, n);
    lr_put_le64(b.d + 8, in->size);
    st__put_ts(b.d + 16, in->mtime);
    st__put_ts(b.d + 28, now);
    for (uint32_t i = 0; i < n && !rc; i++) {
        st_hash h;
        memcpy(h.b, b.d + VREC_HDR + (size_t)i * VREC_EXT + 16, ST_HASH_LEN);
        rc = st__chunk_ref(t, &h, 1);
    }
    if (rc)
        goto out;
    /* Number it after the newest; count the kept ones. */
    MDB_cursor *c;
    if ((rc = mdb_cursor_open(t->txn, t->st->db_version, &c))) {
        rc = st__fail(t, st__mdb_err(rc), "cursor");
        goto out;
    }
    uint8_t k0[16];
    st__key_u64x2(k0, in->ino, UINT64_MAX);
    MDB_val k = { 16, k0 }, v;
    uint64_t last = 0;
    int mrc = mdb_cursor_get(c, &k, &v, MDB_SET_RANGE);
    mrc = mrc == 0 ? mdb_cursor_get(c, &k, &v, MDB_PREV) : mdb_cursor_get(c, &k, &v, MDB_LAST);
    if (mrc == 0 && k.mv_size == 16 && lr_get_be64(k.mv_data) == in->ino)
        last = lr_get_be64((uint8_t *)k.mv_data + 8);
    mdb_cursor_close(c);
    uint8_t key[16];
    st__key_u64x2(key, in->ino, last + 1);
    if ((rc = st__put(t, t->st->db_version, key, 16, b.d, b.len, 0)))
        goto out;
    /* Keep the newest ST_VERSIONS_MAX. */
    if (last + 1 > ST_VERSIONS_MAX) {
        uint64_t old = last + 1 - ST_VERSIONS_MAX;
        uint8_t ok[16];
        st__key_u64x2(ok, in->ino, old);
        MDB_val ov;
        if (st__get(t, t->st->db_version, ok, 16, &ov) == 0) {
            MDB_val okv = { 16, ok };
            if ((rc = drop(t, &okv, &ov, NULL)) == 0)
                rc = st__del(t, t->st->db_version, ok, 16);
        }
    }
out:
    free(b.d);
    return rc;
}

struct version_walk {
    int (*cb)(uint64_t vno, const struct st_version *, void *);
    void *arg;
    int stopped; /* a key that is not ino ‖ vno ends the list */
};

static int version_each(st_txn *t, const MDB_val *k, const MDB_val *v, void *arg)
{
    struct version_walk *w = arg;
    struct st_version ver;
    if (k->mv_size != 16) {
        w->stopped = 1;
        return 1;
    }
    if (st_version_decode(v->mv_data, v->mv_size, &ver))
        return st__corrupt(t, "version", "undecodable version");
    return w->cb(lr_get_be64((const uint8_t *)k->mv_data + 8), &ver, w->arg);
}

int st_version_foreach(st_txn *t, uint64_t ino, int (*cb)(uint64_t vno, const struct st_version *, void *),
                       void *arg)
{
    ST_CHECK_TXN(t);
    uint8_t k0[8];
    st__key_u64(k0, ino);
    struct version_walk w = { cb, arg, 0 };
    int rc = st__walk(t, t->st->db_version, k0, 8, 8, version_each, &w, "version walk");
    return w.stopped ? 0 : rc;
}

int st_version_get(st_txn *t, uint64_t ino, uint64_t vno, struct st_version *out)
{
    ST_CHECK_TXN(t);
    uint8_t k[16];
    st__key_u64x2(k, ino, vno);
    MDB_val v;
    int rc = st__get(t, t->st->db_version, k, 16, &v);
    if (rc)
        return rc;
    return st_version_decode(v.mv_data, v.mv_size, out) ? st__corrupt(t, "version", "undecodable version") : 0;
}

int st__version_drop_all(st_txn *t, uint64_t ino)
{
    uint8_t k[8];
    st__key_u64(k, ino);
    return st__del_prefix(t, t->st->db_version, k, 8, drop, NULL);
}
