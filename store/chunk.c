/*
 * chunk.c - content-addressed chunk bytes and their reference records.
 * See store.h. A chunk's refcount counts the extents naming it; the chunk
 * and its chunkref are deleted in the same transaction that drops the last
 * reference.
 */
#include "store_int.h"

#include <stdio.h>

static int chunkref_get(st_txn *t, const st_hash *h, struct st_chunkref *out)
{
    MDB_val v;
    int rc = st__get(t, t->st->db_chunkref, h->b, ST_HASH_LEN, &v);
    if (rc)
        return rc;
    if (st_chunkref_decode(v.mv_data, v.mv_size, out)) {
        char hex[2 * ST_HASH_LEN + 1];
        return st__corrupt(t, "chunkref", st_hash_hex(h, hex));
    }
    return 0;
}

static int chunkref_put(st_txn *t, const st_hash *h, const struct st_chunkref *r)
{
    uint8_t v[ST_CHUNKREF_LEN];
    st_chunkref_encode(r, v);
    return st__put(t, t->st->db_chunkref, h->b, ST_HASH_LEN, v, sizeof(v), 0);
}

int st_chunk_put(st_txn *t, const st_hash *h, const void *data, size_t len)
{
    ST_CHECK_WRITE(t);
    if (len == 0 || len > ST_CDC_MAX_LIMIT)
        return -EINVAL;
    struct st_chunkref r;
    int rc = chunkref_get(t, h, &r);
    if (rc == 0 && (r.flags & ST_CHUNK_LOCAL))
        return 0; /* dedup: the bytes are here already */
    if (rc == -ENOENT) {
        memset(&r, 0, sizeof(r));
        r.len = (uint32_t)len;
    } else if (rc) {
        return rc;
    } else if (r.len != len) {
        char hex[2 * ST_HASH_LEN + 1];
        lr_error("store '%s': chunk %s declared as %u bytes, got %zu", t->st->dir,
                 st_hash_hex(h, hex), r.len, len);
        return LR_EHASH;
    }
    if ((rc = st__put(t, t->st->db_chunk, h->b, ST_HASH_LEN, data, len, 0)))
        return rc;
    r.flags |= ST_CHUNK_LOCAL;
    r.last_use = lr_now_real_ns() / 1000000000ull;
    return chunkref_put(t, h, &r);
}

int st_chunk_declare(st_txn *t, const st_hash *h, uint32_t len)
{
    ST_CHECK_WRITE(t);
    if (len == 0 || len > ST_CDC_MAX_LIMIT)
        return -EINVAL;
    struct st_chunkref r;
    int rc = chunkref_get(t, h, &r);
    if (rc == 0 && r.len != len) {
        char hex[2 * ST_HASH_LEN + 1];
        lr_warn("store '%s': chunk %s is %u bytes, a peer says %u", t->st->dir,
                st_hash_hex(h, hex), r.len, len);
        return LR_EHASH;
    }
    if (rc != -ENOENT)
        return rc;
    memset(&r, 0, sizeof(r));
    r.len = len;
    return chunkref_put(t, h, &r);
}

int st_chunk_get(st_txn *t, const st_hash *h, const void **data, size_t *len)
{
    ST_CHECK_TXN(t);
    MDB_val v;
    int rc = st__get(t, t->st->db_chunk, h->b, ST_HASH_LEN, &v);
    if (rc == -ENOENT) {
        struct st_chunkref r;
        rc = chunkref_get(t, h, &r);
        return rc == 0 ? LR_EMISSING : rc;
    }
    if (rc)
        return rc;
    *data = v.mv_data;
    *len = v.mv_size;
    return 0;
}

int st_chunk_info(st_txn *t, const st_hash *h, struct st_chunkref *out)
{
    ST_CHECK_TXN(t);
    return chunkref_get(t, h, out);
}

int st_chunk_evict(st_txn *t, const st_hash *h)
{
    ST_CHECK_WRITE(t);
    struct st_chunkref r;
    int rc = chunkref_get(t, h, &r);
    if (rc)
        return rc;
    if (!(r.flags & ST_CHUNK_LOCAL))
        return 0;
    rc = st__del(t, t->st->db_chunk, h->b, ST_HASH_LEN);
    if (rc && rc != -ENOENT)
        return rc;
    r.flags &= (uint8_t)~ST_CHUNK_LOCAL;
    return chunkref_put(t, h, &r);
}

int st_chunk_touch(st_txn *t, const st_hash *h, uint64_t when)
{
    ST_CHECK_WRITE(t);
    struct st_chunkref r;
    int rc = chunkref_get(t, h, &r);
    if (rc || r.last_use >= when)
        return rc;
    r.last_use = when;
    return chunkref_put(t, h, &r);
}

int st__chunk_ref(st_txn *t, const st_hash *h, int64_t delta)
{
    struct st_chunkref r;
    int rc = chunkref_get(t, h, &r);
    char hex[2 * ST_HASH_LEN + 1];
    if (rc == -ENOENT) {
        lr_error("store '%s': extent names unknown chunk %s", t->st->dir, st_hash_hex(h, hex));
        return st__fail(t, LR_ECORRUPT, "chunk reference");
    }
    if (rc)
        return rc;
    if (delta < 0 && r.refcount < (uint64_t)-delta) {
        lr_error("store '%s': refcount of chunk %s would go below zero", t->st->dir, st_hash_hex(h, hex));
        return st__fail(t, LR_ECORRUPT, "chunk reference");
    }
    r.refcount = (uint64_t)((int64_t)r.refcount + delta);
    if (r.refcount == 0) {
        rc = st__del(t, t->st->db_chunkref, h->b, ST_HASH_LEN);
        if (rc)
            return st__fail(t, rc == -ENOENT ? LR_ECORRUPT : rc, "chunk delete");
        rc = st__del(t, t->st->db_chunk, h->b, ST_HASH_LEN);
        if (rc && rc != -ENOENT)
            return rc;
        return st__holder_drop_chunk(t, h); /* even if the count is wrong */
    }
    return chunkref_put(t, h, &r);
}

struct chunk_walk {
    int (*cb)(const st_hash *, const struct st_chunkref *, void *);
    void *arg;
};

static int chunk_each(st_txn *t, const MDB_val *k, const MDB_val *v, void *arg)
{
    struct chunk_walk *w = arg;
    st_hash h;
    struct st_chunkref r;
    if (k->mv_size != ST_HASH_LEN || st_chunkref_decode(v->mv_data, v->mv_size, &r))
        return st__corrupt(t, "chunkref", "undecodable record");
    memcpy(h.b, k->mv_data, ST_HASH_LEN);
    return w->cb(&h, &r, w->arg);
}

int st_chunk_foreach(st_txn *t, int (*cb)(const st_hash *, const struct st_chunkref *, void *), void *arg)
{
    ST_CHECK_TXN(t);
    struct chunk_walk w = { cb, arg };
    return st__walk(t, t->st->db_chunkref, NULL, 0, 0, chunk_each, &w, "chunk walk");
}
