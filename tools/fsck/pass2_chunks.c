/*
 * pass2_chunks.c - pass 2: every local chunk hashes to its key; chunkref
 * flags and lengths agree with the bytes that are here. Builds the chunk
 * table (fsck.h) passes 3 and 4 use.
 *
 * A chunk whose bytes do not verify loses its bytes and its chunkref is
 * marked not local: the extents naming it stay, so a read of those files
 * fetches the chunk from a peer (st_file_read reports ST_SPAN_MISSING).
 */
#include "fsck.h"

#include <stdlib.h>
#include <string.h>

struct p2 {
    struct fsck *f;
    struct fsck_keys badkeys_chunk, badkeys_ref, badbytes;
    uint64_t done, total, bytes;
    size_t nref; /* f->ck[0..nref) came from chunkref, sorted */
    int err;
};

static int ck_cmp(const void *a, const void *b)
{
    return memcmp(((const struct fsck_chunk *)a)->h.b, ((const struct fsck_chunk *)b)->h.b, ST_HASH_LEN);
}

static int walk_ref(const void *k, size_t kl, const void *v, size_t vl, void *arg)
{
    struct p2 *p = arg;
    if (kl != ST_HASH_LEN) {
        if (fsck_problem(p->f, PR_CHUNKREF_BAD_KEY, kl, fsck_bytes_hex(k, kl)) &&
            (p->err = fsck_keys_add(&p->badkeys_ref, k, kl)))
            return p->err;
        return 0;
    }
    st_hash h;
    memcpy(h.b, k, ST_HASH_LEN);
    struct fsck_chunk *c = fsck_chunk_add(p->f, &h);
    if (!c)
        return p->err = -ENOMEM;
    c->state = st_chunkref_decode(v, vl, &c->ref) == 0 ? CK_REF : CK_REF_BAD;
    return fsck_interrupted ? FSCK_CANCELLED : 0;
}

static int walk_bytes(const void *k, size_t kl, const void *v, size_t vl, void *arg)
{
    struct p2 *p = arg;
    struct fsck *f = p->f;
    fsck_progress(f, "Pass 2: verifying chunks", ++p->done, p->total);
    if (kl != ST_HASH_LEN) {
        if (fsck_problem(f, PR_CHUNK_BAD_KEY, kl, fsck_bytes_hex(k, kl)) &&
            (p->err = fsck_keys_add(&p->badkeys_chunk, k, kl)))
            return p->err;
        return 0;
    }
    st_hash h;
    memcpy(h.b, k, ST_HASH_LEN);
    /* Only the sorted chunkref part is searched: bytes keys are unique and
     * come in order, so entries appended here are never looked up again. */
    struct fsck_chunk key;
    key.h = h;
    struct fsck_chunk *c = bsearch(&key, f->ck, p->nref, sizeof(*f->ck), ck_cmp);
    if (!c) {
        /* Bytes without a chunkref: pass 4 decides (recreate or remove). */
        if (!(c = fsck_chunk_add(f, &h)))
            return p->err = -ENOMEM;
    }
    p->bytes += vl;
    if (vl > 0 && vl <= ST_CDC_MAX_LIMIT && st_hash_verify(v, vl, &h)) {
        c->state |= CK_BYTES;
        c->bytes_len = (uint32_t)vl;
    } else {
        c->state |= CK_BYTES_BAD;
        if (fsck_problem(f, PR_CHUNK_HASH, fsck_hex(&h), vl) &&
            (p->err = fsck_keys_add(&p->badbytes, k, kl)))
            return p->err;
    }
    return fsck_interrupted ? FSCK_CANCELLED : 0;
}

static int put_ref(st_txn *t, const struct fsck_chunk *c)
{
    uint8_t v[ST_CHUNKREF_LEN];
    st_chunkref_encode(&c->ref, v);
    return st_raw_put(t, "chunkref", c->h.b, ST_HASH_LEN, v, sizeof(v));
}

/* --heal-from-peers: replace a damaged chunk's bytes with a verified copy
 * from a peer. 0 when healed; otherwise the caller drops the bytes. */
static int heal_one(struct fsck *f, st_txn *t, struct fsck_chunk *c)
{
    static uint8_t buf[ST_CDC_MAX_LIMIT];
    size_t len;
    int rc = fsck_heal_fetch(f, &c->h, buf, sizeof(buf), &len);
    if (rc == 0 && len != c->ref.len)
        rc = LR_EHASH;
    if (rc == 0)
        rc = st_raw_put(t, "chunk", c->h.b, ST_HASH_LEN, buf, len);
    if (rc) {
        printf("chunk %s: not healed from peers: %s\n", fsck_hex(&c->h), lr_strerror(rc));
        return rc;
    }
    c->state = (uint8_t)((c->state & ~CK_BYTES_BAD) | CK_BYTES);
    c->bytes_len = (uint32_t)len;
    f->healed++;
    printf("chunk %s: fetched again from a peer (%zu bytes, hash verified)\n", fsck_hex(&c->h), len);
    return 0;
}

int fsck_pass2_chunks(struct fsck *f)
{
    uint64_t t0;
    fsck_pass_begin(f, 2, "chunk bytes", &t0);
    struct p2 p;
    memset(&p, 0, sizeof(p));
    p.f = f;
    f->nck = 0;
    f->ck_sorted = 1;
    st_txn *t;
    int rc = fsck_txn_begin(f, &t);
    if (rc)
        return rc;
    if ((rc = st_raw_count(t, "chunk", &p.total)))
        goto out;
    if ((rc = st_raw_foreach(t, "chunkref", walk_ref, &p)))
        goto out;
    fsck_chunk_sort(f);
    p.nref = f->nck;
    uint64_t v0 = lr_now_mono_ns();
    if ((rc = st_raw_foreach(t, "chunk", walk_bytes, &p)))
        goto out;
    uint64_t vns = lr_now_mono_ns() - v0;
    fsck_progress_done(f);
    fsck_chunk_sort(f);

    /* Repairs of the walks. A bad chunk: bytes removed, chunkref (if any)
     * marked not local below. */
    for (size_t i = 0; i < p.badkeys_ref.n; i++)
        if ((rc = st_raw_del(t, "chunkref", p.badkeys_ref.k[i], p.badkeys_ref.len[i])))
            goto out;
    for (size_t i = 0; i < p.badkeys_chunk.n; i++)
        if ((rc = st_raw_del(t, "chunk", p.badkeys_chunk.k[i], p.badkeys_chunk.len[i])))
            goto out;
    for (size_t i = 0; i < p.badbytes.n; i++) {
        st_hash h;
        memcpy(h.b, p.badbytes.k[i], ST_HASH_LEN);
        struct fsck_chunk *c = fsck_chunk_find(f, &h);
        if (f->heal && c && (c->state & CK_REF) && heal_one(f, t, c) == 0)
            continue;
        if ((rc = st_raw_del(t, "chunk", p.badbytes.k[i], ST_HASH_LEN)))
            goto out;
        if (c && (c->state & CK_REF) && (c->ref.flags & ST_CHUNK_LOCAL)) {
            c->ref.flags &= (uint8_t)~ST_CHUNK_LOCAL;
            if ((rc = put_ref(t, c)))
                goto out;
        }
    }

    /* Flags and lengths against the bytes. */
    for (size_t i = 0; i < f->nck; i++) {
        struct fsck_chunk *c = &f->ck[i];
        if (fsck_interrupted) {
            rc = FSCK_CANCELLED;
            goto out;
        }
        if (!(c->state & CK_REF))
            continue;
        int change = 0;
        if ((c->state & CK_BYTES) && c->ref.len != c->bytes_len &&
            fsck_problem(f, PR_CHUNKREF_LEN, fsck_hex(&c->h), c->ref.len, c->bytes_len, c->bytes_len)) {
            c->ref.len = c->bytes_len;
            change = 1;
        }
        if (!(c->state & (CK_BYTES | CK_BYTES_BAD)) && (c->ref.flags & ST_CHUNK_LOCAL) &&
            fsck_problem(f, PR_CHUNKREF_NOT_HERE, fsck_hex(&c->h))) {
            c->ref.flags &= (uint8_t)~ST_CHUNK_LOCAL;
            change = 1;
        }
        if ((c->state & CK_BYTES) && !(c->ref.flags & ST_CHUNK_LOCAL) &&
            fsck_problem(f, PR_CHUNKREF_HERE, fsck_hex(&c->h))) {
            c->ref.flags |= ST_CHUNK_LOCAL;
            change = 1;
        }
        if (change && (rc = put_ref(t, c)))
            goto out;
    }
    rc = 0;
out:
    fsck_keys_release(&p.badkeys_chunk);
    fsck_keys_release(&p.badkeys_ref);
    fsck_keys_release(&p.badbytes);
    if (rc == 0 && p.err)
        rc = p.err;
    if (rc) {
        st_txn_abort(t);
        return rc;
    }
    if ((rc = fsck_txn_end(f, t)))
        return rc;
    fsck_pass_end(f, 2, t0, "%llu chunks, %llu bytes verified (%.2f GB/s)",
                  (unsigned long long)p.done, (unsigned long long)p.bytes,
                  vns ? (double)p.bytes / (double)vns : 0.0);
    return 0;
}
