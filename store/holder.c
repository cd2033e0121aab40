/*
 * holder.c - which peers are known to hold a chunk's bytes. See store.h,
 * "chunk holders". Records live in db "holder" under hash ‖ device id, so
 * one chunk's holders are a prefix scan; the chunkref's peers field counts
 * them and is updated in the same transaction.
 */
#include "store_int.h"

#include <stdlib.h>

#define HOLDER_KEY (ST_HASH_LEN + ST_DEVICE_ID_LEN)
#define HOLDER_VAL 16

static void holder_key(uint8_t k[HOLDER_KEY], const st_hash *h, const uint8_t dev[ST_DEVICE_ID_LEN])
{
    memcpy(k, h->b, ST_HASH_LEN);
    memcpy(k + ST_HASH_LEN, dev, ST_DEVICE_ID_LEN);
}

int st_holder_has(st_txn *t, const st_hash *h, const uint8_t dev[ST_DEVICE_ID_LEN])
{
    ST_CHECK_TXN(t);
    uint8_t k[HOLDER_KEY];
    holder_key(k, h, dev);
    MDB_val v;
    int rc = st__get(t, t->st->db_holder, k, sizeof(k), &v);
    return rc == 0 ? 1 : rc == -ENOENT ? 0 : rc;
}

int st_holder_set(st_txn *t, const st_hash *h, const uint8_t dev[ST_DEVICE_ID_LEN], int holds,
                  int *changed)
{
    ST_CHECK_WRITE(t);
    if (changed)
        *changed = 0;
    struct st_chunkref r;
    int rc = st_chunk_info(t, h, &r);
    if (rc == -ENOENT)
        return 0;
    if (rc)
        return rc;
    int had = st_holder_has(t, h, dev);
    if (had < 0)
        return had;
    uint8_t k[HOLDER_KEY];
    holder_key(k, h, dev);
    if (holds) {
        uint8_t v[HOLDER_VAL] = { 1 };
        lr_put_le64(v + 8, lr_now_real_ns() / 1000000000ull);
        if ((rc = st__put(t, t->st->db_holder, k, sizeof(k), v, sizeof(v), 0)))
            return rc;
        if (had)
            return 0; /* only the time moved */
        r.peers++;
    } else {
        if (!had)
            return 0;
        if ((rc = st__del(t, t->st->db_holder, k, sizeof(k))))
            return rc;
        if (r.peers)
            r.peers--;
    }
    if (changed)
        *changed = 1;
    uint8_t b[ST_CHUNKREF_LEN];
    st_chunkref_encode(&r, b);
    return st__put(t, t->st->db_chunkref, h->b, ST_HASH_LEN, b, sizeof(b), 0);
}

struct holder_walk {
    int (*one)(const uint8_t *dev, void *);
    int (*all)(const st_hash *h, const uint8_t *dev, void *);
    void *arg;
};

static int holder_each(st_txn *t, const MDB_val *k, const MDB_val *v, void *arg)
{
    struct holder_walk *w = arg;
    if (k->mv_size != HOLDER_KEY || v->mv_size != HOLDER_VAL)
        return st__corrupt(t, "holder", "record length");
    const uint8_t *kb = k->mv_data;
    if (w->one)
        return w->one(kb + ST_HASH_LEN, w->arg);
    st_hash h;
    memcpy(h.b, kb, ST_HASH_LEN);
    return w->all(&h, kb + ST_HASH_LEN, w->arg);
}

int st_holder_foreach(st_txn *t, const st_hash *h, int (*cb)(const uint8_t *dev, void *), void *arg)
{
    ST_CHECK_TXN(t);
    struct holder_walk w = { cb, NULL, arg };
    return st__walk(t, t->st->db_holder, h->b, ST_HASH_LEN, ST_HASH_LEN, holder_each, &w, "holder walk");
}

int st_holder_foreach_all(st_txn *t, int (*cb)(const st_hash *h, const uint8_t *dev, void *), void *arg)
{
    ST_CHECK_TXN(t);
    struct holder_walk w = { NULL, cb, arg };
    return st__walk(t, t->st->db_holder, NULL, 0, 0, holder_each, &w, "holder walk");
}

/* Collect the chunks dev holds, then forget them one by one (a cursor
 * cannot keep walking the db that st_holder_set rewrites). */
struct forget {
    const uint8_t *dev;
    st_hash *h;
    size_t n, cap;
};

static int forget_each(const st_hash *h, const uint8_t *dev, void *arg)
{
    struct forget *f = arg;
    if (memcmp(dev, f->dev, ST_DEVICE_ID_LEN))
        return 0;
    st_hash *a = lr_grow(f->h, &f->cap, f->n, sizeof(*a), 256);
    if (!a)
        return -ENOMEM;
    f->h = a;
    f->h[f->n++] = *h;
    return 0;
}

int st_holder_forget_peer(st_txn *t, const uint8_t dev[ST_DEVICE_ID_LEN])
{
    ST_CHECK_WRITE(t);
    struct forget f = { .dev = dev };
    int rc = st_holder_foreach_all(t, forget_each, &f);
    for (size_t i = 0; rc == 0 && i < f.n; i++)
        rc = st_holder_set(t, &f.h[i], dev, 0, NULL);
    free(f.h);
    return rc;
}

int st__holder_drop_chunk(st_txn *t, const st_hash *h)
{
    return st__del_prefix(t, t->st->db_holder, h->b, ST_HASH_LEN, NULL, NULL);
}
