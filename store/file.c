/*
 * file.c - file data as extents over content-defined chunks: the write
 * path (re-chunk from the previous boundary until boundaries
 * resynchronise), reads as zero-copy spans, truncate and hole punching.
 * See store.h.
 */
#include "store_int.h"

#include <stdlib.h>

/* ---- extent iterator ------------------------------------------------- */

/* Walks one file's extents in offset order with an LMDB cursor. Used only
 * in read phases: callers finish walking before they modify extents. */
struct ext_iter {
    st_txn *t;
    MDB_cursor *c;
    uint64_t ino;
    int valid;          /* e holds an extent */
    struct st_extent e;
};

static int it_load(struct ext_iter *it, int rc, MDB_val *k, MDB_val *v)
{
    it->valid = 0;
    if (rc == MDB_NOTFOUND)
        return 0;
    if (rc)
        return st__fail(it->t, st__mdb_err(rc), "extent walk");
    if (k->mv_size < 8 || lr_get_be64(k->mv_data) != it->ino)
        return 0;
    uint64_t ino;
    if (st_extent_decode(k->mv_data, k->mv_size, v->mv_data, v->mv_size, &ino, &it->e)) {
        char what[64];
        snprintf(what, sizeof(what), "extent of inode %llu", (unsigned long long)it->ino);
        return st__corrupt(it->t, "extent", what);
    }
    it->valid = 1;
    return 0;
}

static int it_open(struct ext_iter *it, st_txn *t, uint64_t ino)
{
    memset(it, 0, sizeof(*it));
    it->t = t;
    it->ino = ino;
    int rc = mdb_cursor_open(t->txn, t->st->db_extent, &it->c);
    return rc ? st__fail(t, st__mdb_err(rc), "cursor") : 0;
}

static void it_close(struct ext_iter *it)
{
    if (it->c)
        mdb_cursor_close(it->c);
    it->c = NULL;
}

/* Position at the extent containing off, else the first one after it. */
static int it_seek(struct ext_iter *it, uint64_t off)
{
    uint8_t k0[16];
    st__key_u64x2(k0, it->ino, off);
    MDB_val k = { 16, k0 }, v;
    int rc = mdb_cursor_get(it->c, &k, &v, MDB_SET_RANGE);
    if (rc == 0 && k.mv_size == 16 && memcmp(k.mv_data, k0, 16) == 0)
        return it_load(it, rc, &k, &v);
    /* Look at the extent before: it may straddle off. */
    int prc = rc == 0 ? mdb_cursor_get(it->c, &k, &v, MDB_PREV)
                      : mdb_cursor_get(it->c, &k, &v, MDB_LAST);
    int e = it_load(it, prc, &k, &v);
    if (e)
        return e;
    if (it->valid && it->e.off < off && it->e.off + it->e.len > off)
        return 0;
    k.mv_size = 16;
    k.mv_data = k0;
    rc = mdb_cursor_get(it->c, &k, &v, MDB_SET_RANGE);
    return it_load(it, rc, &k, &v);
}

static int it_next(struct ext_iter *it)
{
    MDB_val k, v;
    return it_load(it, mdb_cursor_get(it->c, &k, &v, MDB_NEXT), &k, &v);
}

int st_extent_find(st_txn *t, uint64_t ino, uint64_t off, struct st_extent *out)
{
    ST_CHECK_TXN(t);
    struct ext_iter it;
    int rc = it_open(&it, t, ino);
    if (rc)
        return rc;
    rc = it_seek(&it, off);
    if (!rc && !it.valid)
        rc = -ENOENT;
    if (!rc)
        *out = it.e;
    it_close(&it);
    return rc;
}

int st_extent_foreach(st_txn *t, uint64_t ino, uint64_t from,
                      int (*cb)(uint64_t ino, const struct st_extent *, void *), void *arg)
{
    ST_CHECK_TXN(t);
    struct ext_iter it;
    int rc = it_open(&it, t, ino);
    if (rc)
        return rc;
    for (rc = it_seek(&it, from); !rc && it.valid; rc = it_next(&it))
        if ((rc = cb(ino, &it.e, arg)))
            break;
    it_close(&it);
    return rc;
}

int st__extent_write(st_txn *t, uint64_t ino, const struct st_extent *e)
{
    uint8_t k[16], v[ST_EXTENT_LEN];
    st__key_u64x2(k, ino, e->off);
    st__extent_encode(e, v);
    return st__put(t, t->st->db_extent, k, 16, v, sizeof(v), 0);
}

int st__extent_remove(st_txn *t, uint64_t ino, uint64_t off)
{
    uint8_t k[16];
    st__key_u64x2(k, ino, off);
    int rc = st__del(t, t->st->db_extent, k, 16);
    return rc == -ENOENT ? st__fail(t, LR_ECORRUPT, "extent vanished") : rc;
}

int st_extent_put(st_txn *t, uint64_t ino, const struct st_extent *e)
{
    ST_CHECK_WRITE(t);
    if (e->len == 0 || e->len > ST_CDC_MAX_LIMIT || (uint64_t)e->chunk_off + e->len > ST_CDC_MAX_LIMIT)
        return -EINVAL;
    uint8_t k[16];
    MDB_val v;
    st__key_u64x2(k, ino, e->off);
    int rc = st__get(t, t->st->db_extent, k, 16, &v);
    if (rc == 0)
        return -EEXIST;
    if (rc != -ENOENT)
        return rc;
    if ((rc = st__chunk_ref(t, &e->hash, 1)))
        return rc;
    return st__extent_write(t, ino, e);
}

/* ---- punch and truncate ---------------------------------------------- */

#define PUNCH_BATCH 512

int st_file_punch(st_txn *t, uint64_t ino, uint64_t off, uint64_t len)
{
    ST_CHECK_WRITE(t);
    if (len == 0)
        return 0;
    uint64_t end = off + len < off ? UINT64_MAX : off + len;
    struct st_extent *batch = malloc(PUNCH_BATCH * sizeof(*batch));
    if (!batch)
        return -ENOMEM;
    int rc;
    for (;;) {
        /* Read phase: collect up to a batch of overlapping extents. */
        struct ext_iter it;
        size_t n = 0;
        if ((rc = it_open(&it, t, ino)))
            break;
        for (rc = it_seek(&it, off); !rc && it.valid && it.e.off < end && n < PUNCH_BATCH; rc = it_next(&it))
            batch[n++] = it.e;
        it_close(&it);
        if (rc || n == 0)
            break;
        /* Write phase. */
        for (size_t i = 0; i < n && !rc; i++) {
            struct st_extent e = batch[i];
            uint64_t eend = e.off + e.len;
            if (e.off >= off && eend <= end) {            /* inside: drop */
                if (!(rc = st__extent_remove(t, ino, e.off)))
                    rc = st__chunk_ref(t, &e.hash, -1);
            } else if (e.off < off && eend > end) {       /* straddles: split */
                struct st_extent r = e;
                r.off = end;
                r.chunk_off = e.chunk_off + (uint32_t)(end - e.off);
                r.len = (uint32_t)(eend - end);
                e.len = (uint32_t)(off - e.off);
                if (!(rc = st__extent_write(t, ino, &e)) && !(rc = st__chunk_ref(t, &e.hash, 1)))
                    rc = st__extent_write(t, ino, &r);
            } else if (e.off < off) {                     /* keep the head */
                e.len = (uint32_t)(off - e.off);
                rc = st__extent_write(t, ino, &e);
            } else {                                      /* keep the tail */
                if (!(rc = st__extent_remove(t, ino, e.off))) {
                    e.chunk_off += (uint32_t)(end - e.off);
                    e.len = (uint32_t)(eend - end);
                    e.off = end;
                    rc = st__extent_write(t, ino, &e);
                }
            }
        }
        if (rc || n < PUNCH_BATCH)
            break;
    }
    free(batch);
    return rc;
}

int st_file_truncate(st_txn *t, uint64_t ino, uint64_t new_size)
{
    return st_file_punch(t, ino, new_size, UINT64_MAX - new_size);
}

/* ---- write ----------------------------------------------------------- */

struct gbuf {
    uint8_t *d;
    size_t len, cap;
};

static int gbuf_add(struct gbuf *b, const void *p, size_t n)
{
    if (b->len + n > b->cap) {
        size_t cap = b->cap ? b->cap : 1 << 20;
        while (cap < b->len + n)
            cap *= 2;
        uint8_t *d = realloc(b->d, cap);
        if (!d)
            return -ENOMEM;
        b->d = d;
        b->cap = cap;
    }
    memcpy(b->d + b->len, p, n);
    b->len += n;
    return 0;
}

/* Append extent bytes [skip, e->len) to b. */
static int add_extent_bytes(st_txn *t, struct gbuf *b, const struct st_extent *e, uint32_t skip,
                            st_hash *missing)
{
    const void *data;
    size_t clen;
    int rc = st_chunk_get(t, &e->hash, &data, &clen);
    if (rc == LR_EMISSING && missing)
        *missing = e->hash;
    if (rc)
        return rc == -ENOENT ? st__corrupt(t, "extent", "names an unknown chunk") : rc;
    if ((uint64_t)e->chunk_off + e->len > clen)
        return st__corrupt(t, "extent", "reaches past the end of its chunk");
    return gbuf_add(b, (const uint8_t *)data + e->chunk_off + skip, e->len - skip);
}

struct newchunk {
    uint64_t off;
    uint32_t len;
    st_hash hash;
};

int st_file_write(st_txn *t, uint64_t ino, uint64_t off, const void *buf, size_t len, st_hash *missing)
{
    ST_CHECK_WRITE(t);
    if (len == 0)
        return 0;
    if (off > (uint64_t)INT64_MAX - len)
        return -EFBIG;
    const struct st_cdc_params p = t->st->meta.cdc;
    const uint64_t wend = off + len;
    struct gbuf b = { 0 };
    struct newchunk *nc = NULL;
    size_t nnc = 0, ncap = 0;
    struct ext_iter it;
    int rc = it_open(&it, t, ino);
    if (rc)
        return rc;

    /* 1. Where re-chunking starts: the start of the extent holding the
     * byte before off, unless an extent begins exactly at off (a content
     * boundary). An extent that merely ends at off may have been cut by
     * the end of the file, so appends re-chunk it. */
    uint64_t S = off;
    struct st_extent L;
    int haveL = 0;
    if (off > 0) {
        if ((rc = it_seek(&it, off - 1)))
            goto out;
        if (it.valid && it.e.off <= off - 1) {
            L = it.e;
            haveL = 1;
        }
    }
    if (haveL) {
        if (L.off + L.len > off) {
            S = L.off;
        } else {
            if ((rc = it_seek(&it, off)))
                goto out;
            S = (it.valid && it.e.off == off) ? off : L.off;
        }
    }
    if (S < off) {
        struct st_extent pre = L;
        pre.len = (uint32_t)(off - S);
        if ((rc = add_extent_bytes(t, &b, &pre, 0, missing)))
            goto out;
    }
    if ((rc = gbuf_add(&b, buf, len)))
        goto out;

    /* 2. Old bytes after the write, appended extent by extent while they
     * are contiguous, until a new cut lands on an old boundary. */
    uint64_t tail = wend; /* file offset of the next old byte to append */
    int eof = 0;
    if ((rc = it_seek(&it, wend)))
        goto out;
    if (it.valid && it.e.off < wend) {
        if ((rc = add_extent_bytes(t, &b, &it.e, (uint32_t)(wend - it.e.off), missing)))
            goto out;
        tail = it.e.off + it.e.len;
        if ((rc = it_next(&it)))
            goto out;
    }

    /* Starts of the old extents appended whole: the boundaries a new cut
     * can resynchronise on. Increasing. */
    uint64_t *starts = NULL;
    size_t nstarts = 0, scap = 0;
    size_t pos = 0;
    const uint64_t forced_after = wend + 4ull * p.max;
    for (;;) {
        uint64_t C = S + pos;
        size_t cut;
        if (C >= forced_after) {
            /* Past the resync budget: end this chunk on the next old
             * boundary (not content-defined there, but bounded), so a
             * write costs O(len + chunk) whatever the old chunking was. */
            uint64_t bound = S + b.len;
            for (size_t i = 0; i < nstarts; i++)
                if (starts[i] > C) {
                    bound = starts[i];
                    break;
                }
            cut = (size_t)LR_MIN(bound - C, (uint64_t)p.max);
        } else {
            cut = st_cdc_cut(&p, b.d + pos, b.len - pos, eof);
        }
        if (cut == 0) {
            if (eof)
                break;
            /* Need more bytes: the next old extent if contiguous. */
            if (it.valid && it.e.off == tail) {
                if (nstarts == scap) {
                    scap = scap ? scap * 2 : 16;
                    uint64_t *s2 = realloc(starts, scap * sizeof(*starts));
                    if (!s2) {
                        rc = -ENOMEM;
                        break;
                    }
                    starts = s2;
                }
                starts[nstarts++] = tail;
                if ((rc = add_extent_bytes(t, &b, &it.e, 0, missing)))
                    break;
                tail += it.e.len;
                if ((rc = it_next(&it)))
                    break;
            } else {
                eof = 1;
            }
            continue;
        }
        if (nnc == ncap) {
            size_t ncap2 = ncap ? ncap * 2 : 64;
            struct newchunk *n2 = realloc(nc, ncap2 * sizeof(*nc));
            if (!n2) {
                rc = -ENOMEM;
                break;
            }
            nc = n2;
            ncap = ncap2;
        }
        nc[nnc].off = C;
        nc[nnc].len = (uint32_t)cut;
        nnc++;
        pos += cut;
        C = S + pos;
        if (C < wend)
            continue;
        if (pos == b.len)
            break; /* at the end of the old data, or of the new in a hole */
        /* Resynchronised when the cut lands where an old extent starts. */
        int hit = 0;
        for (size_t i = 0; i < nstarts && starts[i] <= C; i++)
            if (starts[i] == C)
                hit = 1;
        if (hit)
            break;
    }
    free(starts);
    if (rc)
        goto out;
    it_close(&it);

    /* 3. Modify: reference the new chunks first (unchanged chunks never
     * drop to zero), drop the old extents of [S, end), insert the new. */
    uint64_t end = S + pos;
    for (size_t i = 0; i < nnc && !rc; i++) {
        const uint8_t *d = b.d + (nc[i].off - S);
        st_hash_compute(d, nc[i].len, &nc[i].hash);
        if (!(rc = st_chunk_put(t, &nc[i].hash, d, nc[i].len)))
            rc = st__chunk_ref(t, &nc[i].hash, 1);
    }
    if (!rc)
        rc = st_file_punch(t, ino, S, end - S);
    for (size_t i = 0; i < nnc && !rc; i++) {
        struct st_extent e = { .off = nc[i].off, .len = nc[i].len, .chunk_off = 0, .hash = nc[i].hash };
        rc = st__extent_write(t, ino, &e);
    }
    if (rc)
        st__fail(t, rc, "file write");
out:
    it_close(&it);
    free(b.d);
    free(nc);
    return rc;
}

/* ---- read ------------------------------------------------------------ */

int st_file_read(st_txn *t, uint64_t ino, uint64_t off, size_t len,
                 struct st_span *spans, size_t max, size_t *n)
{
    ST_CHECK_TXN(t);
    *n = 0;
    if (len == 0 || max == 0)
        return 0;
    struct ext_iter it;
    int rc = it_open(&it, t, ino);
    if (rc)
        return rc;
    uint64_t pos = off, end = off + len;
    if (end < off)
        end = UINT64_MAX;
    size_t k = 0;
    rc = it_seek(&it, off);
    while (!rc && pos < end && k < max) {
        struct st_span *s = &spans[k];
        memset(s, 0, sizeof(*s));
        if (!it.valid || it.e.off > pos) {
            uint64_t hend = it.valid ? LR_MIN(it.e.off, end) : end;
            s->kind = ST_SPAN_HOLE;
            s->len = (size_t)(hend - pos);
            pos = hend;
            k++;
            continue;
        }
        uint64_t skip = pos - it.e.off;
        uint64_t take = LR_MIN(it.e.len - skip, end - pos);
        const void *data;
        size_t clen;
        int g = st_chunk_get(t, &it.e.hash, &data, &clen);
        if (g == LR_EMISSING) {
            struct st_chunkref r;
            if ((rc = st_chunk_info(t, &it.e.hash, &r)))
                break;
            s->kind = ST_SPAN_MISSING;
            s->hash = it.e.hash;
            s->chunk_off = it.e.chunk_off + (uint32_t)skip;
            s->chunk_len = r.len;
        } else if (g == -ENOENT) {
            rc = st__corrupt(t, "extent", "names an unknown chunk");
            break;
        } else if (g) {
            rc = g;
            break;
        } else {
            if ((uint64_t)it.e.chunk_off + it.e.len > clen) {
                rc = st__corrupt(t, "extent", "reaches past the end of its chunk");
                break;
            }
            s->kind = ST_SPAN_DATA;
            s->data = (const uint8_t *)data + it.e.chunk_off + skip;
            s->hash = it.e.hash;
        }
        s->len = (size_t)take;
        pos += take;
        k++;
        if (pos >= it.e.off + it.e.len)
            rc = it_next(&it);
    }
    it_close(&it);
    *n = k;
    return rc;
}
