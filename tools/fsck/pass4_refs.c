/*
 * pass4_refs.c - pass 4: every chunk's refcount equals the number of
 * extents naming it (counted by pass 3); chunks no extent names (orphans)
 * are reclaimed; bytes without a chunkref are removed, or get their
 * chunkref back when extents name them; an undecodable chunkref is rebuilt
 * or removed.
 *
 * Then the holder records (db "holder": which peers hold a chunk, key hash
 * ‖ peer id, 16-byte value of version 1). They are knowledge, not data, so
 * every fix here is safe to preen: a damaged record (HOLDER_KEY) and one
 * naming a chunk without a chunkref (HOLDER_ORPHAN) are removed, and each
 * chunkref's peers field is set to its number of valid records
 * (CHUNK_PEERS). A chunkref this pass removes takes its holder records
 * along without a report, as the store does; one it rebuilds or recreates
 * gets the count directly. The records are counted before the chunk loop
 * (rebuilds need the count) and judged after it (orphans depend on which
 * chunkrefs remain). With -n a chunkref counts as removed or rebuilt when
 * -y would do it, so -n reports what -y would.
 */
#include "fsck.h"

#include <string.h>

static int put_ref(st_txn *t, const st_hash *h, const struct st_chunkref *r)
{
    uint8_t v[ST_CHUNKREF_LEN];
    st_chunkref_encode(r, v);
    return st_raw_put(t, "chunkref", h->b, ST_HASH_LEN, v, sizeof(v));
}

static int del_if(st_txn *t, const char *db, const st_hash *h)
{
    int rc = st_raw_del(t, db, h->b, ST_HASH_LEN);
    return rc == -ENOENT ? 0 : rc;
}

#define HOLDER_KEY_LEN (ST_HASH_LEN + ST_DEVICE_ID_LEN)
#define HOLDER_VAL_LEN 16

struct p4h {
    struct fsck *f;
    struct fsck_keys del;
    uint64_t n;
    int err;
};

static int holder_valid(size_t kl, const void *v, size_t vl)
{
    return kl == HOLDER_KEY_LEN && vl == HOLDER_VAL_LEN && ((const uint8_t *)v)[0] == 1;
}

/* First walk: each chunk's number of valid holder records. */
static int count_holder(const void *k, size_t kl, const void *v, size_t vl, void *arg)
{
    struct p4h *p = arg;
    p->n++;
    if (holder_valid(kl, v, vl)) {
        st_hash h;
        memcpy(h.b, k, ST_HASH_LEN);
        struct fsck_chunk *c = fsck_chunk_find(p->f, &h);
        if (c && c->holders < UINT32_MAX)
            c->holders++;
    }
    return fsck_interrupted ? FSCK_CANCELLED : 0;
}

/* Second walk, once the chunk loop has settled every chunkref: collect the
 * records to remove. */
static int check_holder(const void *k, size_t kl, const void *v, size_t vl, void *arg)
{
    struct p4h *p = arg;
    struct fsck *f = p->f;
    if (fsck_interrupted)
        return FSCK_CANCELLED;
    if (!holder_valid(kl, v, vl)) {
        unsigned ver = vl ? ((const uint8_t *)v)[0] : 0;
        if (fsck_problem(f, PR_HOLDER_KEY, fsck_bytes_hex(k, kl), kl, vl, ver))
            return p->err = fsck_keys_add(&p->del, k, kl);
        return 0;
    }
    st_hash h, dev;
    memcpy(h.b, k, ST_HASH_LEN);
    memcpy(dev.b, (const uint8_t *)k + ST_HASH_LEN, ST_DEVICE_ID_LEN);
    struct fsck_chunk *c = fsck_chunk_find(f, &h);
    int after = c ? c->after : CK_AFTER_NONE;
    if (after == CK_AFTER_GONE && f->mode != FSCK_NO)
        return p->err = fsck_keys_add(&p->del, k, kl);
    if (after == CK_AFTER_NONE && fsck_problem(f, PR_HOLDER_ORPHAN, fsck_hex(&dev), fsck_hex(&h)))
        return p->err = fsck_keys_add(&p->del, k, kl);
    return 0;
}

/* Whether a chunkref fix counts as made: when it is (yes), and with -n,
 * where nothing is written but later checks judge what -y would leave. */
static int made(const struct fsck *f, int yes)
{
    return yes || f->mode == FSCK_NO;
}

int fsck_pass4_refs(struct fsck *f)
{
    uint64_t t0;
    fsck_pass_begin(f, 4, "chunk references", &t0);
    st_txn *t;
    int rc = fsck_txn_begin(f, &t);
    if (rc)
        return rc;
    uint64_t nchunks = 0, nlocal = 0, refs = 0;
    struct p4h ph;
    memset(&ph, 0, sizeof(ph));
    ph.f = f;
    fsck_chunk_sort(f);
    for (size_t i = 0; i < f->nck; i++)
        f->ck[i].holders = 0;
    if ((rc = st_raw_foreach(t, "holder", count_holder, &ph)))
        goto out;
    for (size_t i = 0; i < f->nck; i++) {
        struct fsck_chunk *c = &f->ck[i];
        const char *hx = fsck_hex(&c->h);
        unsigned long long counted = c->counted;
        int keep = 1;
        if (fsck_interrupted) {
            rc = FSCK_CANCELLED;
            goto out;
        }
        refs += c->counted;
        struct st_chunkref r = { ST_CHUNK_LOCAL, c->bytes_len, c->counted,
                                 lr_now_real_ns() / 1000000000ull, c->holders };
        int yes;
        c->after = CK_AFTER_NONE;
        if (c->state & CK_REF_BAD) {
            c->after = CK_AFTER_BAD;
            if (c->counted && (c->state & CK_BYTES)) {
                if ((yes = fsck_problem(f, PR_CHUNKREF_BAD, hx)) && (rc = put_ref(t, &c->h, &r)))
                    goto out;
                if (made(f, yes)) {
                    c->ref = r;
                    c->after = CK_AFTER_OK;
                }
            } else {
                keep = 0;
                if ((yes = fsck_problem(f, PR_CHUNKREF_BAD_UNUSED, hx)) &&
                    ((rc = del_if(t, "chunkref", &c->h)) || (rc = del_if(t, "chunk", &c->h))))
                    goto out;
                if (made(f, yes))
                    c->after = CK_AFTER_GONE;
            }
        } else if (c->state & CK_REF) {
            c->after = CK_AFTER_OK;
            if (c->counted == 0) {
                keep = 0;
                if ((yes = fsck_problem(f, PR_CHUNK_ORPHAN, hx, c->ref.len,
                                        (unsigned long long)c->ref.refcount)) &&
                    ((rc = del_if(t, "chunkref", &c->h)) || (rc = del_if(t, "chunk", &c->h))))
                    goto out;
                if (made(f, yes))
                    c->after = CK_AFTER_GONE;
            } else if (c->ref.refcount != c->counted) {
                if (fsck_problem(f, PR_REFCOUNT, hx, (unsigned long long)c->ref.refcount, counted, counted)) {
                    c->ref.refcount = c->counted;
                    if ((rc = put_ref(t, &c->h, &c->ref)))
                        goto out;
                }
            }
        } else if (c->state & CK_BYTES) {
            if (c->counted) {
                if ((yes = fsck_problem(f, PR_CHUNKREF_MISSING, hx, counted)) &&
                    (rc = put_ref(t, &c->h, &r)))
                    goto out;
                if (made(f, yes)) {
                    c->ref = r;
                    c->after = CK_AFTER_OK;
                }
            } else {
                keep = 0;
                if (fsck_problem(f, PR_CHUNK_NO_REF, hx) && (rc = del_if(t, "chunk", &c->h)))
                    goto out;
            }
        } else {
            keep = 0; /* only bad bytes, removed by pass 2 */
        }
        if (keep) {
            nchunks++;
            if (c->state & CK_BYTES)
                nlocal++;
        }
    }

    /* Holder records: damaged and orphaned ones go, then the counts. */
    if ((rc = st_raw_foreach(t, "holder", check_holder, &ph)) || (rc = ph.err))
        goto out;
    for (size_t i = 0; i < ph.del.n; i++)
        if ((rc = st_raw_del(t, "holder", ph.del.k[i], ph.del.len[i])))
            goto out;
    for (size_t i = 0; i < f->nck; i++) {
        struct fsck_chunk *c = &f->ck[i];
        if (c->after != CK_AFTER_OK || c->ref.peers == c->holders)
            continue;
        if (fsck_problem(f, PR_CHUNK_PEERS, fsck_hex(&c->h), c->ref.peers, c->holders, c->holders)) {
            c->ref.peers = c->holders;
            if ((rc = put_ref(t, &c->h, &c->ref)))
                goto out;
        }
    }
    rc = 0;
out:
    fsck_keys_release(&ph.del);
    if (rc == 0 && ph.err)
        rc = ph.err;
    if (rc) {
        st_txn_abort(t);
        return rc;
    }
    if ((rc = fsck_txn_end(f, t)))
        return rc;
    f->n_chunks = nchunks;
    f->n_local = nlocal;
    fsck_pass_end(f, 4, t0, "%llu chunks (%llu local), %llu references, %llu holder records",
                  (unsigned long long)nchunks, (unsigned long long)nlocal, (unsigned long long)refs,
                  (unsigned long long)ph.n);
    return 0;
}
