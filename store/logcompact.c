/*
 * logcompact.c - dropping change-log records that replication no longer
 * needs (replica.h, "LOG COMPACTION", says which and why it is safe).
 *
 * A read transaction walks the log twice, oldest record first: the first
 * pass notes, for every file id named, the sequence of the first and the
 * last record naming it (a hash map); the second decides record by
 * record, and every LC_DEL_BATCH records chosen a write transaction
 * deletes them (so FUSE operations wait for the writer lock only
 * briefly, and memory holds one batch). The read snapshot does not see
 * those deletions or records appended meanwhile; the latter are newer
 * than everything decided on, and only ever make an older record more
 * redundant.
 *
 * st_tomb_forget walks db "tomb" the same way: a read snapshot chooses
 * the tombstones deleted before the cut-off, and write transactions of a
 * batch each delete them, each one checked again inside the write
 * transaction (the file may have come back, or been deleted again, since
 * the snapshot).
 */
#include "replica.h"
#include "ns.h"
#include "store_int.h"

#include <stdlib.h>

#define LC_DEL_BATCH 8192u     /* deletions per write transaction */
#define LC_MAP_MIN (1u << 12)  /* initial slots of the file id map */

/* ---- a map from file id to its first and last record ----------------- */

struct fident {
    uint8_t fid[16];     /* all-zero: empty slot (no file has the zero id) */
    uint64_t first, last; /* sequences of the oldest and newest record naming it */
};

struct fidmap {
    struct fident *slot;
    size_t cap, n;       /* cap a power of two, n <= cap / 2 */
};

static size_t fid_hash(const uint8_t f[16])
{
    /* Ids are a device prefix and a counter: mix both halves. */
    uint64_t x = lr_get_le64(f) ^ (lr_get_le64(f + 8) * 0x9e3779b97f4a7c15ull);
    x ^= x >> 31;
    x *= 0xbf58476d1ce4e5b9ull;
    x ^= x >> 29;
    return (size_t)x;
}

static int fid_zero(const uint8_t f[16])
{
    static const uint8_t zero[16];
    return !memcmp(f, zero, 16);
}

/* The slot of f, or the empty slot where it would go. */
static struct fident *fidmap_slot(const struct fidmap *m, const uint8_t f[16])
{
    for (size_t i = fid_hash(f) & (m->cap - 1);; i = (i + 1) & (m->cap - 1))
        if (fid_zero(m->slot[i].fid) || !memcmp(m->slot[i].fid, f, 16))
            return &m->slot[i];
}

static struct fident *fidmap_get(const struct fidmap *m, const uint8_t f[16])
{
    if (!m->cap)
        return NULL;
    struct fident *e = fidmap_slot(m, f);
    return fid_zero(e->fid) ? NULL : e;
}

/* f's entry, added (first = last = 0) if new. NULL when that would pass
 * max ids or memory runs out (*err = -ENOMEM). */
static struct fident *fidmap_add(struct fidmap *m, const uint8_t f[16], size_t max, int *err)
{
    struct fident *e = fidmap_get(m, f);
    if (e || m->n >= max)
        return e;
    if ((m->n + 1) * 2 > m->cap) {
        struct fidmap g = { .cap = m->cap ? m->cap * 2 : LC_MAP_MIN };
        if (!(g.slot = calloc(g.cap, sizeof(*g.slot)))) {
            *err = -ENOMEM;
            return NULL;
        }
        for (size_t i = 0; i < m->cap; i++)
            if (!fid_zero(m->slot[i].fid))
                *fidmap_slot(&g, m->slot[i].fid) = m->slot[i];
        free(m->slot);
        g.n = m->n;
        *m = g;
    }
    e = fidmap_slot(m, f);
    memcpy(e->fid, f, 16);
    e->first = e->last = 0;
    m->n++;
    return e;
}

/* ---- the decision --------------------------------------------------------- */

/* 1 if r is a record whose layout this code knows (replica.h's contract
 * holds for every record, but an unknown op may one day mean more). */
static int known_record(const uint8_t *r, size_t len)
{
    if (len < 80)
        return 0;
    if (r[0] == ST_REP_VERSION && r[1] == ST_REP_LOG)
        return 1;
    return r[0] == ST_NS_REC_VERSION && r[1] >= ST_NS_OP_CREATE && r[1] < ST_NS_OP_LAST;
}

struct lc_walk {
    st_store *st;
    st_txn *t;
    struct fidmap map;
    size_t max_files;
    int pass;            /* 1: fill the map; 2: decide */
    uint64_t newest;     /* the log's newest record in the snapshot: it stays */
    uint64_t *drop;      /* sequences to drop, oldest first: a batch at a time */
    size_t ndrop, dropcap;
    uint64_t scanned, dropped;
    int partial, err;
};

/* Pass 1: note, for every file named, its oldest and newest record. */
static int lc_note(struct lc_walk *w, uint64_t seq, const uint8_t *r, size_t len)
{
    uint8_t fids[4][16];
    int n = st_rep_log_fids(r, len, fids);
    for (int i = 0; i < n; i++) {
        struct fident *e = fidmap_add(&w->map, fids[i], w->max_files, &w->err);
        if (w->err)
            return w->err;
        if (!e) {
            w->partial = 1; /* its records stay: too many files to track */
            continue;
        }
        if (!e->first)
            e->first = seq;
        e->last = seq;
    }
    return 0;
}

/* 1 if the store holds neither file fid nor its tombstone: a deleted
 * file whose tombstone was forgotten (st_tomb_forget). Errors count as
 * "still here": the record stays. */
static int forgotten(st_txn *t, const uint8_t fid[16])
{
    uint64_t ino;
    MDB_val v;
    return st_fid_lookup(t, fid, &ino) == -ENOENT && st__get(t, t->st->db_tomb, fid, 16, &v) == -ENOENT;
}

/* Pass 2: 1 if the record may go (replica.h, "LOG COMPACTION"). */
static int lc_droppable(struct lc_walk *w, uint64_t seq, const uint8_t *r, size_t len)
{
    if (!known_record(r, len) || seq == w->newest)
        return 0;
    uint8_t fids[4][16];
    int n = st_rep_log_fids(r, len, fids);
    for (int i = 0; i < n; i++) {
        const struct fident *e = fidmap_get(&w->map, fids[i]);
        uint64_t ino;
        if (!e)
            return 0; /* untracked */
        if (e->last <= seq) {
            /* This file's newest record: needed while the file or its
             * tombstone is here to send, not once it was forgotten. */
            if (forgotten(w->t, fids[i]))
                continue;
            return 0;
        }
        if (e->first == seq && st_fid_lookup(w->t, fids[i], &ino) != -ENOENT)
            return 0; /* where a file that exists first appears */
    }
    return n > 0;
}

/* ---- the deletions ------------------------------------------------------ */

/* Delete the batch of sequences chosen so far, in one write transaction,
 * and empty it; w->dropped counts what was committed. */
static int lc_flush(struct lc_walk *w)
{
    st_txn *t;
    int rc = st_txn_begin(w->st, ST_TXN_WRITE, &t);
    if (rc)
        return rc;
    for (size_t i = 0; i < w->ndrop && rc == 0; i++) {
        uint8_t k[8];
        st__key_u64(k, w->drop[i]);
        rc = st__del(t, w->st->db_log, k, 8);
        if (rc == -ENOENT) /* fsck or another pass got there first */
            rc = 0;
    }
    if ((rc = st_txn_end(t, rc)) == 0)
        w->dropped += w->ndrop;
    w->ndrop = 0;
    return rc;
}

static int lc_each(uint64_t seq, const void *rec, size_t len, void *arg)
{
    struct lc_walk *w = arg;
    if (w->pass == 1) {
        w->scanned++;
        w->newest = seq;
        return lc_note(w, seq, rec, len);
    }
    if (!lc_droppable(w, seq, rec, len))
        return 0;
    uint64_t *d = lr_grow(w->drop, &w->dropcap, w->ndrop, sizeof(*d), 1024);
    if (!d)
        return -ENOMEM;
    w->drop = d;
    w->drop[w->ndrop++] = seq;
    /* Delete as the walk goes (the read snapshot stays as it was), so
     * memory holds one batch, however long the log. */
    return w->ndrop < LC_DEL_BATCH ? 0 : lc_flush(w);
}

/* Both passes over one snapshot of the log, dropping what may go. */
static int lc_walk(struct lc_walk *w)
{
    int rc = st_txn_begin(w->st, ST_TXN_READ, &w->t);
    if (rc)
        return rc;
    w->pass = 1;
    rc = st_log_foreach(w->t, 1, lc_each, w);
    if (rc == 0) {
        w->pass = 2;
        rc = st_log_foreach(w->t, 1, lc_each, w);
    }
    st_txn_abort(w->t);
    if (rc == 0 && w->ndrop)
        rc = lc_flush(w);
    return rc;
}

int st_log_compact(st_store *st, size_t max_files, struct st_log_compact_stats *out)
{
    struct lc_walk w = { .st = st, .max_files = max_files ? max_files : ST_LOG_COMPACT_MAX_FILES };
    int rc = lc_walk(&w);
    free(w.map.slot);
    if (out) {
        out->scanned = w.scanned;
        out->dropped = w.dropped;
        out->partial = w.partial;
    }
    free(w.drop);
    return rc;
}

/* ---- forgetting deletions ------------------------------------------------ */

/* 1 if tombstone record v says its file was deleted (its ctime) before
 * `before`; 0 if later, or if v is not a record this code knows (such a
 * tombstone stays). */
static int tomb_older(const MDB_val *v, int64_t before)
{
    const uint8_t *r = v->mv_data;
    if (v->mv_size < ST_REP_HDR || r[0] != ST_REP_VERSION || !(r[1] & ST_REP_DELETED))
        return 0;
    return (int64_t)lr_get_le64(r + 68) < before;
}

int st__tomb_expired(const st_store *st, int64_t at)
{
    return st->forget_s > 0 && at < (int64_t)time(NULL) - st->forget_s;
}

int st__tomb_rec_expired(const st_store *st, const MDB_val *v)
{
    return st->forget_s > 0 && tomb_older(v, (int64_t)time(NULL) - st->forget_s);
}

void st_set_forget_after(st_store *st, int64_t seconds)
{
    st->forget_s = seconds > 0 ? seconds : 0;
}

int64_t st_forget_after(const st_store *st)
{
    return st->forget_s;
}

struct tf_walk {
    st_store *st;
    int64_t before;
    uint8_t keep[16];    /* this device's greatest file id with a tombstone: it stays */
    uint8_t (*fid)[16];  /* the batch chosen so far */
    size_t n, cap;
    struct st_tomb_forget_stats *out;
};

/* Delete the batch's tombstones that are still old enough, in one write
 * transaction. */
static int tf_flush(struct tf_walk *w)
{
    st_txn *t;
    int rc = st_txn_begin(w->st, ST_TXN_WRITE, &t);
    if (rc)
        return rc;
    uint64_t gone = 0;
    for (size_t i = 0; i < w->n && rc == 0; i++) {
        MDB_val v;
        rc = st__get(t, w->st->db_tomb, w->fid[i], 16, &v);
        if (rc == -ENOENT) { /* the file came back meanwhile */
            rc = 0;
            continue;
        }
        if (rc || !tomb_older(&v, w->before))
            continue; /* deleted again since the snapshot: a new tombstone */
        if ((rc = st__del(t, w->st->db_tomb, w->fid[i], 16)) == 0)
            gone++;
    }
    if ((rc = st_txn_end(t, rc)) == 0)
        w->out->forgotten += gone;
    w->n = 0;
    return rc;
}

static int tf_each(st_txn *t, const MDB_val *k, const MDB_val *v, void *arg)
{
    (void)t;
    struct tf_walk *w = arg;
    w->out->scanned++;
    if (k->mv_size != 16 || !memcmp(k->mv_data, w->keep, 16) || !tomb_older(v, w->before))
        return 0;
    uint8_t (*f)[16] = lr_grow(w->fid, &w->cap, w->n, sizeof(*f), 1024);
    if (!f)
        return -ENOMEM;
    w->fid = f;
    memcpy(w->fid[w->n++], k->mv_data, 16);
    return w->n < LC_DEL_BATCH ? 0 : tf_flush(w);
}

/* The greatest file id of this device (its first 8 bytes) that has a
 * tombstone, into out; all zero if none. */
static int own_highest_tomb(st_txn *t, uint8_t out[16])
{
    struct st_meta m;
    st_meta(t->st, &m);
    memset(out, 0, 16);
    MDB_cursor *c;
    int mrc = mdb_cursor_open(t->txn, t->st->db_tomb, &c);
    if (mrc)
        return st__fail(t, st__mdb_err(mrc), "tomb cursor");
    uint8_t k[16];
    memcpy(k, m.device, 8);
    memset(k + 8, 0xff, 8);
    MDB_val key = { 16, k }, val;
    /* the first key past this device's ids, then one back */
    mrc = mdb_cursor_get(c, &key, &val, MDB_SET_RANGE);
    if (mrc == 0 && !(key.mv_size == 16 && !memcmp(key.mv_data, k, 16)))
        mrc = mdb_cursor_get(c, &key, &val, MDB_PREV);
    else if (mrc == MDB_NOTFOUND)
        mrc = mdb_cursor_get(c, &key, &val, MDB_LAST);
    if (mrc == 0 && key.mv_size == 16 && !memcmp(key.mv_data, m.device, 8))
        memcpy(out, key.mv_data, 16);
    mdb_cursor_close(c);
    if (mrc && mrc != MDB_NOTFOUND)
        return st__fail(t, st__mdb_err(mrc), "tomb cursor");
    return 0;
}

int st_tomb_forget(st_store *st, int64_t before, struct st_tomb_forget_stats *out)
{
    struct st_tomb_forget_stats dummy;
    struct tf_walk w = { .st = st, .before = before, .out = out ? out : &dummy };
    memset(w.out, 0, sizeof(*w.out));
    st_txn *t;
    int rc = st_txn_begin(st, ST_TXN_READ, &t);
    if (rc)
        return rc;
    if ((rc = own_highest_tomb(t, w.keep)) == 0)
        rc = st__walk(t, st->db_tomb, NULL, 0, 0, tf_each, &w, "tomb walk");
    st_txn_abort(t);
    if (rc == 0 && w.n)
        rc = tf_flush(&w);
    free(w.fid);
    return rc;
}

static int db_count(st_txn *t, MDB_dbi db, uint64_t *n, const char *what)
{
    ST_CHECK_TXN(t);
    MDB_stat s;
    int rc = mdb_stat(t->txn, db, &s);
    if (rc)
        return st__fail(t, st__mdb_err(rc), what);
    *n = s.ms_entries;
    return 0;
}

int st_log_count(st_txn *t, uint64_t *n)
{
    return db_count(t, t->st->db_log, n, "log stat");
}

int st_tomb_count(st_txn *t, uint64_t *n)
{
    return db_count(t, t->st->db_tomb, n, "tomb stat");
}
