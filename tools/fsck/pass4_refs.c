/*
 * pass4_refs.c - pass 4: every chunk's refcount equals the number of
 * extents naming it (counted by pass 3); chunks no extent names (orphans)
 * are reclaimed; bytes without a chunkref are removed, or get their
 * chunkref back when extents name them; an undecodable chunkref is rebuilt
 * or removed.
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

int fsck_pass4_refs(struct fsck *f)
{
    uint64_t t0;
    fsck_pass_begin(f, 4, "chunk references", &t0);
    st_txn *t;
    int rc = fsck_txn_begin(f, &t);
    if (rc)
        return rc;
    uint64_t nchunks = 0, nlocal = 0, refs = 0;
    fsck_chunk_sort(f);
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
        if (c->state & CK_REF_BAD) {
            if (c->counted && (c->state & CK_BYTES)) {
                if (fsck_problem(f, PR_CHUNKREF_BAD, hx)) {
                    struct st_chunkref r = { ST_CHUNK_LOCAL, c->bytes_len, c->counted,
                                             lr_now_real_ns() / 1000000000ull, 0 };
                    if ((rc = put_ref(t, &c->h, &r)))
                        goto out;
                }
            } else {
                keep = 0;
                if (fsck_problem(f, PR_CHUNKREF_BAD_UNUSED, hx) &&
                    ((rc = del_if(t, "chunkref", &c->h)) || (rc = del_if(t, "chunk", &c->h))))
                    goto out;
            }
        } else if (c->state & CK_REF) {
            if (c->counted == 0) {
                keep = 0;
                if (fsck_problem(f, PR_CHUNK_ORPHAN, hx, c->ref.len, (unsigned long long)c->ref.refcount) &&
                    ((rc = del_if(t, "chunkref", &c->h)) || (rc = del_if(t, "chunk", &c->h))))
                    goto out;
            } else if (c->ref.refcount != c->counted) {
                if (fsck_problem(f, PR_REFCOUNT, hx, (unsigned long long)c->ref.refcount, counted, counted)) {
                    c->ref.refcount = c->counted;
                    if ((rc = put_ref(t, &c->h, &c->ref)))
                        goto out;
                }
            }
        } else if (c->state & CK_BYTES) {
            if (c->counted) {
                if (fsck_problem(f, PR_CHUNKREF_MISSING, hx, counted)) {
                    struct st_chunkref r = { ST_CHUNK_LOCAL, c->bytes_len, c->counted,
                                             lr_now_real_ns() / 1000000000ull, 0 };
                    if ((rc = put_ref(t, &c->h, &r)))
                        goto out;
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
    rc = 0;
out:
    if (rc) {
        st_txn_abort(t);
        return rc;
    }
    if ((rc = fsck_txn_end(f, t)))
        return rc;
    f->n_chunks = nchunks;
    f->n_local = nlocal;
    fsck_pass_end(f, 4, t0, "%llu chunks (%llu local), %llu references",
                  (unsigned long long)nchunks, (unsigned long long)nlocal, (unsigned long long)refs);
    return 0;
}
