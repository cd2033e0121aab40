/*
 * file.c - file data as extents over content-defined chunks: the write
 * path (re-chunk from the previous boundary until boundaries
 * resynchronise), reads as zero-copy spans, truncate and hole punching.
 * See store.h.
 *
 * Threads: st_file_write hashes the new chunks of a write of 1 MiB or
 * more on one short-lived helper thread (joined before it returns) while
 * the caller cuts the following chunks and stores the hashed ones; the
 * helper only reads the chunks' bytes and writes their hashes, every
 * store access stays on the caller's thread.
 */
#include "store_int.h"

#include <pthread.h>
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

int st_file_allocated(st_txn *t, uint64_t ino, uint64_t *bytes)
{
    ST_CHECK_TXN(t);
    /* A plain cursor walk reading only each extent's length: a stat of a
     * 1 GiB file walks 16k extents (the full decoder took 5 ms). */
    MDB_cursor *c;
    int rc = mdb_cursor_open(t->txn, t->st->db_extent, &c);
    if (rc)
        return st__fail(t, st__mdb_err(rc), "cursor");
    uint8_t k0[16];
    st__key_u64x2(k0, ino, 0);
    MDB_val k = { 16, k0 }, v;
    uint64_t sum = 0;
    for (rc = mdb_cursor_get(c, &k, &v, MDB_SET_RANGE); rc == 0; rc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
        if (k.mv_size != 16 || memcmp(k.mv_data, k0, 8) != 0)
            break;
        if (v.mv_size != ST_EXTENT_LEN) {
            mdb_cursor_close(c);
            return st__corrupt(t, "extent", "undecodable record");
        }
        sum += lr_get_le32((const uint8_t *)v.mv_data + 4);
    }
    mdb_cursor_close(c);
    if (rc && rc != MDB_NOTFOUND)
        return st__fail(t, st__mdb_err(rc), "extent walk");
    *bytes = sum;
    return 0;
}

int st_file_seek(st_txn *t, uint64_t ino, uint64_t size, uint64_t off, int data, uint64_t *out)
{
    ST_CHECK_TXN(t);
    if (off >= size)
        return -ENXIO;
    struct ext_iter it;
    int rc = it_open(&it, t, ino);
    if (rc)
        return rc;
    /* pos: the first offset not yet known to be data. Extents come in
     * order and do not overlap; the first one that leaves a gap at pos
     * ends the walk. */
    uint64_t pos = off;
    int found = 0;
    for (rc = it_seek(&it, off); !rc && it.valid && pos < size; rc = it_next(&it)) {
        if (it.e.off > pos)
            break; /* a hole at pos */
        if (data) {
            found = 1;
            break; /* pos lies in this extent */
        }
        pos = it.e.off + it.e.len;
    }
    if (!rc && data && !found && it.valid && it.e.off < size) {
        pos = it.e.off;
        found = 1;
    }
    it_close(&it);
    if (rc)
        return rc;
    if (data && !found)
        return -ENXIO;
    *out = LR_MIN(pos, size);
    return 0;
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
static int add_extent_bytes(st_txn *t, struct gbuf *b, const struct st_extent *e, uint32_t skip)
{
    const void *data;
    size_t clen;
    int rc = st_chunk_get(t, &e->hash, &data, &clen);
    if (rc)
        return rc == -ENOENT ? st__corrupt(t, "extent", "names an unknown chunk") : rc;
    if ((uint64_t)e->chunk_off + e->len > clen)
        return st__corrupt(t, "extent", "reaches past the end of its chunk");
    return gbuf_add(b, (const uint8_t *)data + e->chunk_off + skip, e->len - skip);
}

/* The bytes being re-chunked, file range [S, S + total): old bytes before
 * the write (pre, at most one extent), the caller's buffer in place (it
 * is not copied: writes are up to FS_STAGE_MAX_BYTES), and old bytes
 * after it (tail, grown extent by extent). */
struct wbytes {
    struct gbuf pre, tail;
    const uint8_t *buf;
    size_t len;
};

static size_t wb_total(const struct wbytes *w) { return w->pre.len + w->len + w->tail.len; }

/* n contiguous bytes at pos: a pointer into the part holding them all,
 * else a copy in dst (which has room for n). */
static const uint8_t *wb_view(const struct wbytes *w, size_t pos, size_t n, uint8_t *dst)
{
    const uint8_t *pd[3] = { w->pre.d, w->buf, w->tail.d };
    const size_t pl[3] = { w->pre.len, w->len, w->tail.len };
    int i = 0;
    if (n == 0)
        return dst;
    while (i < 2 && pos >= pl[i]) /* the part holding byte pos */
        pos -= pl[i++];
    if (pos + n <= pl[i])
        return pd[i] + pos;
    for (size_t done = 0; done < n; i++, pos = 0) {
        size_t k = LR_MIN(n - done, pl[i] - pos);
        if (k)
            memcpy(dst + done, pd[i] + pos, k);
        done += k;
    }
    return dst;
}

struct newchunk {
    uint64_t off;
    uint32_t len;
    int hashed;          /* hash is set (hashq.mu) */
    const uint8_t *data; /* in place, or copy */
    uint8_t *copy;       /* a chunk that straddles two parts of wbytes */
    st_hash hash;
};

/* Hashing the new chunks of a large write on two threads: while the
 * caller cuts chunks it hands each finished one (whose bytes no longer
 * move) to a helper thread, then stores chunk i as soon as its hash is
 * known, claiming unhashed chunks itself while it waits. Chunking, hashing
 * and the LMDB puts overlap. nc[0..n) are handed out; nc never moves
 * while the helper runs. */
struct hashq {
    pthread_mutex_t mu;
    pthread_cond_t work, done;
    pthread_t helper;
    struct newchunk *nc;
    size_t n, next;      /* handed out; next to claim */
    int running, closed; /* the helper runs; nothing more will be handed out */
};

#define HASH_PAR_MIN (1u << 20) /* bytes written that are worth a second thread */

static void *hash_helper(void *arg)
{
    struct hashq *q = arg;
    pthread_mutex_lock(&q->mu);
    for (;;) {
        if (q->next < q->n) {
            struct newchunk *c = &q->nc[q->next++];
            pthread_mutex_unlock(&q->mu);
            st_hash_compute(c->data, c->len, &c->hash);
            pthread_mutex_lock(&q->mu);
            c->hashed = 1;
            pthread_cond_signal(&q->done);
        } else if (q->closed) {
            break;
        } else {
            pthread_cond_wait(&q->work, &q->mu);
        }
    }
    pthread_mutex_unlock(&q->mu);
    return NULL;
}

static void hashq_start(struct hashq *q, struct newchunk *nc)
{
    memset(q, 0, sizeof(*q));
    q->nc = nc;
    pthread_mutex_init(&q->mu, NULL);
    pthread_cond_init(&q->work, NULL);
    pthread_cond_init(&q->done, NULL);
    q->running = pthread_create(&q->helper, NULL, hash_helper, q) == 0;
    if (q->running)
        pthread_setname_np(q->helper, "landro-hash");
}

/* Hand out nc[0..n). */
static void hashq_publish(struct hashq *q, size_t n)
{
    pthread_mutex_lock(&q->mu);
    q->n = n;
    pthread_cond_signal(&q->work);
    pthread_mutex_unlock(&q->mu);
}

/* Nothing more will be handed out; with stop, nothing more is claimed
 * either (an error: the caller will not wait for the hashes). */
static void hashq_close(struct hashq *q, int stop)
{
    pthread_mutex_lock(&q->mu);
    q->closed = 1;
    if (stop)
        q->n = q->next;
    pthread_cond_signal(&q->work);
    pthread_mutex_unlock(&q->mu);
}

static void hashq_end(struct hashq *q)
{
    if (q->running) {
        hashq_close(q, 1);
        pthread_join(q->helper, NULL);
        q->running = 0;
    }
    pthread_mutex_destroy(&q->mu);
    pthread_cond_destroy(&q->work);
    pthread_cond_destroy(&q->done);
}

/* Make nc[i] hashed: handed out ones are awaited (hashing other unclaimed
 * ones meanwhile), the rest hashed here. */
static void hash_get(struct hashq *q, struct newchunk *nc, size_t i)
{
    if (!q->running || i >= q->n) {
        st_hash_compute(nc[i].data, nc[i].len, &nc[i].hash);
        return;
    }
    pthread_mutex_lock(&q->mu);
    while (!nc[i].hashed) {
        if (q->next < q->n) {
            struct newchunk *c = &nc[q->next++];
            pthread_mutex_unlock(&q->mu);
            st_hash_compute(c->data, c->len, &c->hash);
            pthread_mutex_lock(&q->mu);
            c->hashed = 1;
        } else {
            pthread_cond_wait(&q->done, &q->mu);
        }
    }
    pthread_mutex_unlock(&q->mu);
}

/* Where chunk c's bytes are: in place, or a copy when it straddles two
 * parts of b. */
static int chunk_data(const struct wbytes *b, uint64_t S, struct newchunk *c, uint8_t *scratch)
{
    if (c->data)
        return 0;
    c->data = wb_view(b, (size_t)(c->off - S), c->len, scratch);
    if (c->data != scratch)
        return 0;
    if (!(c->copy = malloc(c->len)))
        return -ENOMEM;
    memcpy(c->copy, scratch, c->len);
    c->data = c->copy;
    return 0;
}

/* st_file_write's work. isolated = 0: re-chunk from the chunk before the
 * write until the boundaries agree, failing with LR_EMISSING (before any
 * change) if one of those old chunks is not here; 1: chunk the new bytes
 * alone and cut the old extents at the write. */
static int file_write(st_txn *t, uint64_t ino, uint64_t off, const void *buf, size_t len, int isolated);

int st_file_write(st_txn *t, uint64_t ino, uint64_t off, const void *buf, size_t len)
{
    ST_CHECK_WRITE(t);
    if (len == 0)
        return 0;
    if (off > (uint64_t)INT64_MAX - len)
        return -EFBIG;
    int rc = file_write(t, ino, off, buf, len, 0);
    if (rc == LR_EMISSING)
        rc = file_write(t, ino, off, buf, len, 1);
    return rc;
}

/* Largest run of ranges st_file_writev writes as one. */
#define WRITEV_RUN_MAX (8u << 20)

/* Whether the gap [off, off + len) between two ranges may join them into
 * one run: its bytes are data held here, in at most two extents. Then
 * writing the two ranges as one re-chunks nothing more than writing them
 * apart (the first re-chunks to the end of the extent it ends in, the
 * second from the start of the one it starts in); with an old extent
 * wholly inside the gap it would. 1 (sp[0..*k) describe the gap), 0 (not
 * joinable), or an error. */
static int gap_joins(st_txn *t, uint64_t ino, uint64_t off, size_t len, struct st_span sp[2],
                     size_t *k)
{
    *k = 0;
    if (len == 0)
        return 1;
    int rc = st_file_read(t, ino, off, len, sp, 2, k);
    if (rc)
        return rc;
    size_t got = 0;
    for (size_t i = 0; i < *k; i++) {
        if (sp[i].kind != ST_SPAN_DATA)
            return 0;
        got += sp[i].len;
    }
    return got == len;
}

/* A range with bytes, whose end st_file_write accepts (the others go to
 * it alone: 0 for an empty one, -EFBIG). */
static int joinable(const struct st_wrange *r)
{
    return r->len > 0 && r->len <= (uint64_t)INT64_MAX - r->off;
}

/* Whether r may be written isolated (ST_WRITE_ISOLATE): it has bytes, is
 * shorter than the minimum chunk, and every byte under it is data held
 * here (a hole or a peer's chunk is left to st_file_write, which knows
 * what to do there). 1, 0 or an error. */
static int isolatable(st_txn *t, uint64_t ino, const struct st_wrange *r)
{
    if (!joinable(r) || r->len >= t->st->meta.cdc.min)
        return 0;
    struct st_span sp[8];
    size_t k, got = 0;
    int rc = st_file_read(t, ino, r->off, r->len, sp, 8, &k);
    if (rc)
        return rc;
    for (size_t i = 0; i < k; i++) {
        if (sp[i].kind != ST_SPAN_DATA)
            return 0;
        got += sp[i].len;
    }
    return got == r->len;
}

int st_file_writev(st_txn *t, uint64_t ino, const struct st_wrange *r, size_t n, unsigned flags,
                   struct st_wstat *ws)
{
    ST_CHECK_WRITE(t);
    uint8_t *buf = NULL;
    size_t cap = 0;
    int rc = 0;
    size_t i = 0;
    struct st_wstat st = { 0, UINT64_MAX, 0 };
    /* iso[i]: range i is written isolated. Decided up front: writing the
     * ranges before it never turns its bytes into a hole or a peer's. */
    uint8_t *iso = NULL;
    if ((flags & ST_WRITE_ISOLATE) && n) {
        if (!(iso = malloc(n)))
            return -ENOMEM;
        for (size_t k = 0; k < n && rc >= 0; k++)
            iso[k] = (uint8_t)((rc = isolatable(t, ino, &r[k])) > 0);
        rc = rc < 0 ? rc : 0;
    }
    while (i < n && rc == 0) {
        if (iso && iso[i]) {
            rc = file_write(t, ino, r[i].off, r[i].data, r[i].len, 1);
            st.isolated++;
            st.lo = LR_MIN(st.lo, r[i].off);
            st.hi = LR_MAX(st.hi, r[i].off + r[i].len);
            i++;
            continue;
        }
        if (!joinable(&r[i])) {
            rc = st_file_write(t, ino, r[i].off, r[i].data, r[i].len);
            i++;
            continue;
        }
        /* Grow the run r[i..j) while the next range follows, its gap
         * joins and the run stays within WRITEV_RUN_MAX; the run's bytes
         * go to buf once it has a second range. */
        const uint64_t lo = r[i].off;
        uint64_t hi = lo + r[i].len;
        size_t j = i + 1;
        while (j < n && !(iso && iso[j]) && joinable(&r[j]) && r[j].off >= hi &&
               r[j].off + r[j].len - lo <= WRITEV_RUN_MAX) {
            struct st_span sp[2];
            size_t k;
            rc = gap_joins(t, ino, hi, (size_t)(r[j].off - hi), sp, &k);
            if (rc <= 0)
                break;
            rc = 0;
            size_t need = (size_t)(r[j].off + r[j].len - lo);
            if (need > cap) {
                size_t c2 = LR_MAX(need, LR_MIN(2 * cap, (size_t)WRITEV_RUN_MAX));
                uint8_t *b2 = realloc(buf, c2);
                if (!b2) {
                    rc = -ENOMEM;
                    break;
                }
                buf = b2;
                cap = c2;
            }
            if (j == i + 1)
                memcpy(buf, r[i].data, r[i].len);
            uint8_t *d = buf + (hi - lo);
            for (size_t s = 0; s < k; d += sp[s].len, s++)
                memcpy(d, sp[s].data, sp[s].len);
            memcpy(buf + (r[j].off - lo), r[j].data, r[j].len);
            hi = r[j].off + r[j].len;
            j++;
        }
        if (rc)
            break;
        rc = st_file_write(t, ino, lo, j == i + 1 ? r[i].data : buf, (size_t)(hi - lo));
        i = j;
    }
    free(iso);
    free(buf);
    if (ws)
        *ws = st;
    return rc;
}

/* ---- re-chunking fragments ------------------------------------------- */

/* Largest run st_file_rechunk writes again at once. */
#define RECHUNK_RUN_MAX (8u << 20)

/* The first run of fragments (st_file_rechunk) that starts before end, at
 * or after the extent holding pos: [*a, *b), or *a = *b = end if none. */
static int next_run(st_txn *t, uint64_t ino, uint64_t pos, uint64_t end, uint64_t *a, uint64_t *b)
{
    const uint32_t min = t->st->meta.cdc.min;
    struct ext_iter it;
    int rc = it_open(&it, t, ino);
    if (rc)
        return rc;
    uint64_t ra = 0, rb = 0;
    size_t n = 0;   /* extents in the run [ra, rb) */
    int part = 0;   /* one of them names part of its chunk */
    *a = *b = end;
    for (rc = it_seek(&it, pos); !rc && it.valid; rc = it_next(&it)) {
        const void *data;
        size_t clen;
        int g = st_chunk_get(t, &it.e.hash, &data, &clen);
        if (g && g != LR_EMISSING) {
            rc = g == -ENOENT ? st__corrupt(t, "extent", "names an unknown chunk") : g;
            break;
        }
        int partial = g == 0 && (it.e.chunk_off != 0 || it.e.len != clen);
        int frag = partial || (g == 0 && clen < min);
        if (n && (!frag || it.e.off != rb || it.e.off + it.e.len - ra > RECHUNK_RUN_MAX)) {
            if (n >= 2 || part)
                break; /* the run is worth writing again */
            n = 0;
        }
        if (!n && it.e.off >= end)
            break;
        if (frag) {
            if (!n) {
                ra = it.e.off;
                part = 0;
            }
            n++;
            part |= partial;
            rb = it.e.off + it.e.len;
        }
    }
    it_close(&it);
    if (!rc && n && (n >= 2 || part)) {
        *a = ra;
        *b = rb;
    }
    return rc;
}

/* Copy the file's bytes [off, off + len) into buf: 1 if they are all data
 * held here, 0 if not (a hole or a chunk held only by peers), or an
 * error. */
static int copy_local(st_txn *t, uint64_t ino, uint64_t off, size_t len, uint8_t *buf)
{
    struct st_span sp[64];
    size_t done = 0;
    while (done < len) {
        size_t k;
        int rc = st_file_read(t, ino, off + done, len - done, sp, 64, &k);
        if (rc)
            return rc;
        if (k == 0)
            return 0;
        for (size_t i = 0; i < k; done += sp[i].len, i++) {
            if (sp[i].kind != ST_SPAN_DATA)
                return 0;
            memcpy(buf + done, sp[i].data, sp[i].len);
        }
    }
    return 1;
}

int st_file_rechunk(st_txn *t, uint64_t ino, uint64_t off, uint64_t len, uint64_t budget,
                    uint64_t *next, uint64_t *rewritten)
{
    ST_CHECK_WRITE(t);
    const uint64_t end = off + len < off ? UINT64_MAX : off + len;
    /* From the extent holding the byte before off: an isolated write at
     * off left the head of the chunk it fell in there, a fragment too. */
    uint64_t pos = off ? off - 1 : 0;
    uint8_t *buf = NULL;
    int rc = 0;
    *rewritten = 0;
    while (pos < end && *rewritten < budget) {
        uint64_t a, b;
        if ((rc = next_run(t, ino, pos, end, &a, &b)) || a >= b)
            break;
        /* The run's bytes are copied out first: pointers into the map do
         * not survive the writes that follow. */
        if (!buf && !(buf = malloc(RECHUNK_RUN_MAX))) {
            rc = -ENOMEM;
            break;
        }
        int local = copy_local(t, ino, a, (size_t)(b - a), buf);
        if (local < 0) {
            rc = local;
            break;
        }
        if (local) {
            if ((rc = st_file_write(t, ino, a, buf, (size_t)(b - a))))
                break;
            *rewritten += b - a;
        }
        pos = b;
    }
    free(buf);
    if (!rc)
        *next = *rewritten < budget ? end : LR_MIN(pos, end);
    return rc;
}

static int file_write(st_txn *t, uint64_t ino, uint64_t off, const void *buf, size_t len, int isolated)
{
    const struct st_cdc_params p = t->st->meta.cdc;
    const uint64_t wend = off + len;
    struct wbytes b = { .buf = buf, .len = len };
    struct newchunk *nc = NULL;
    size_t nnc = 0, ncap = 0;
    struct hashq q = { 0 };
    int par = 0; /* hashing on two threads (q started) */
    uint8_t *scratch = malloc(p.max);
    struct ext_iter it;
    if (!scratch)
        return -ENOMEM;
    int rc = it_open(&it, t, ino);
    if (rc) {
        free(scratch);
        return rc;
    }

    /* 1. Where re-chunking starts: the start of the extent holding the
     * byte before off, unless an extent begins exactly at off (a content
     * boundary). An extent that merely ends at off may have been cut by
     * the end of the file, so appends re-chunk it. */
    uint64_t S = off;
    struct st_extent L;
    int haveL = 0;
    if (off > 0 && !isolated) {
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
    /* The first new chunk starts where L does; when L's bytes begin its
     * chunk, no length of it up to the byte before the write was a cut,
     * and those bytes are unchanged: the cut search starts there. (A
     * chunk cut by force past the resync budget, or by a peer chunking
     * with other parameters, may hold a content cut that is then not
     * found: boundaries, never bytes, differ, as after any forced cut.) */
    size_t known = haveL && S < off && L.chunk_off == 0 ? (size_t)(off - S - 1) : 0;
    if (S < off) {
        struct st_extent pre = L;
        pre.len = (uint32_t)(off - S);
        if ((rc = add_extent_bytes(t, &b.pre, &pre, 0)))
            goto out;
    }

    /* 2. Old bytes after the write, appended extent by extent while they
     * are contiguous, until a new cut lands on an old boundary. */
    uint64_t tail = wend; /* file offset of the next old byte to append */
    int eof = isolated; /* isolated: the new bytes end where the write does */
    if ((rc = it_seek(&it, wend)))
        goto out;
    if (it.valid && it.e.off < wend && !isolated) {
        if ((rc = add_extent_bytes(t, &b.tail, &it.e, (uint32_t)(wend - it.e.off))))
            goto out;
        tail = it.e.off + it.e.len;
        if ((rc = it_next(&it)))
            goto out;
    }

    /* Room for every chunk of this write, so nc never moves under the
     * helper: chunks are longer than min except the last one and one
     * forced cut, and cutting stops within a few max past the write. */
    ncap = (b.pre.len + len + 8ull * p.max) / p.min + 4;
    if (!(nc = malloc(ncap * sizeof(*nc)))) {
        rc = -ENOMEM;
        goto out;
    }
    if (len >= HASH_PAR_MIN) {
        hashq_start(&q, nc);
        par = 1;
    }
    const size_t stable = b.pre.len + len; /* bytes that never move: hand out chunks within */

    /* Starts of the old extents appended whole: the boundaries a new cut
     * can resynchronise on. Increasing. */
    uint64_t *starts = NULL;
    size_t nstarts = 0, scap = 0;
    size_t pos = 0;
    const uint64_t forced_after = wend + 4ull * p.max;
    for (;;) {
        uint64_t C = S + pos;
        size_t cut, total = wb_total(&b);
        if (C >= forced_after) {
            /* Past the resync budget: end this chunk on the next old
             * boundary (not content-defined there, but bounded), so a
             * write costs O(len + chunk) whatever the old chunking was. */
            uint64_t bound = S + total;
            for (size_t i = 0; i < nstarts; i++)
                if (starts[i] > C) {
                    bound = starts[i];
                    break;
                }
            cut = (size_t)LR_MIN(bound - C, (uint64_t)p.max);
        } else {
            size_t n = LR_MIN(total - pos, (size_t)p.max); /* the cut looks no further */
            cut = st_cdc_cut_after(&p, wb_view(&b, pos, n, scratch), n, eof, pos ? 0 : known);
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
                if ((rc = add_extent_bytes(t, &b.tail, &it.e, 0)))
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
            if (par) /* cannot happen (see ncap); if it did, go on alone */
                hashq_end(&q);
            par = 0;
            size_t ncap2 = ncap * 2;
            struct newchunk *n2 = realloc(nc, ncap2 * sizeof(*nc));
            if (!n2) {
                rc = -ENOMEM;
                break;
            }
            nc = n2;
            ncap = ncap2;
        }
        memset(&nc[nnc], 0, sizeof(nc[nnc]));
        nc[nnc].off = C;
        nc[nnc].len = (uint32_t)cut;
        nnc++;
        if (par && q.running && q.n == nnc - 1 && pos + cut <= stable) {
            if ((rc = chunk_data(&b, S, &nc[nnc - 1], scratch)))
                break;
            hashq_publish(&q, nnc);
        }
        pos += cut;
        C = S + pos;
        if (C < wend)
            continue;
        if (pos == total)
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

    /* The bytes of the chunks not handed out (those reaching into the
     * old tail): the parts no longer change. */
    if (par && q.running)
        hashq_close(&q, 0);
    for (size_t i = par && q.running ? q.n : 0; i < nnc; i++)
        if ((rc = chunk_data(&b, S, &nc[i], scratch)))
            goto out;

    /* 3. Modify: reference the new chunks first (unchanged chunks never
     * drop to zero), drop the old extents of [S, end), insert the new. */
    uint64_t end = S + pos;
    for (size_t i = 0; i < nnc && !rc; i++) {
        hash_get(&q, nc, i);
        if (!(rc = st_chunk_put(t, &nc[i].hash, nc[i].data, nc[i].len)))
            rc = st__chunk_ref(t, &nc[i].hash, 1);
    }
    if (par)
        hashq_end(&q);
    par = 0;
    if (!rc)
        rc = st_file_punch(t, ino, S, end - S);
    for (size_t i = 0; i < nnc && !rc; i++) {
        struct st_extent e = { .off = nc[i].off, .len = nc[i].len, .chunk_off = 0, .hash = nc[i].hash };
        rc = st__extent_write(t, ino, &e);
    }
    if (rc)
        st__fail(t, rc, "file write");
out:
    if (par)
        hashq_end(&q);
    it_close(&it);
    free(b.pre.d);
    free(b.tail.d);
    free(scratch);
    for (size_t i = 0; i < nnc; i++)
        free(nc[i].copy);
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
