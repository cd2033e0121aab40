/*
 * sync.c - replication and chunk fetch between peers. See sync.h.
 */
#include "sync.h"

#include <dirent.h>
#include <pthread.h>
#include <sys/stat.h>
#include <stdlib.h>
#include <string.h>

#include "fs.h"
#include "ns.h"
#include "peerrec.h"
#include "replica.h"
#include "syncmsg.h"

_Static_assert((int)FS_SYNC_HELLO == (int)ST_SYNC_HELLO && (int)FS_SYNC_REPL == (int)ST_SYNC_REPL,
               "frame types");

#define SYNC_MAX_PEERS 64
#define SYNC_FRAME_TARGET (256u << 10)  /* send a DATA frame once this full */
#define SYNC_BATCH_RECORDS 4096          /* log records per send pass */
#define SYNC_MAX_RECORD (64u << 20)
#define SYNC_MAX_PENDING 100000
#define SYNC_ENTRY_REC 1
#define SYNC_ENTRY_MARK 2
#define SYNC_BG_INFLIGHT 32              /* background fetches in flight */
#define SYNC_BG_WINDOW (8u << 20)        /* bytes of a file scanned per step */
#define SYNC_HASHES_PER_FRAME 8192       /* HAVE / HOLDQ batch (256 KiB of hashes) */
#define SYNC_CONNS_PER_PEER 4            /* QUIC connections per peer at most */
#define SYNC_INFLIGHT_PER_CONN 16        /* chunk requests in flight on each */
#define SYNC_TOUCH_MAX 4096              /* chunk reads remembered between LRU updates */
#define SYNC_EVICT_PERIOD_NS (2ull * 1000000000)
#define SYNC_EVICT_WAIT_NS (5ull * 1000000000)   /* for peers' answers to a HOLDQ */
#define SYNC_EVICT_BATCH 8192            /* chunks dropped per round at most */
#define SYNC_EVICT_LOW 90                /* % of the quota a round goes down to */
#define SYNC_REPL_PERIOD_NS (5ull * 1000000000)
#define SYNC_REPL_FILES 256              /* files per REPL frame */
#define SYNC_REPL_FULL_NS (600ull * 1000000000) /* a whole-store walk at least this often */
#define SYNC_REPL_MAX_CHANGED 65536      /* more changed files than this: walk the store */
#define SYNC_MAX_REQS 256                /* HOLDQ requests awaiting answers */
#define SYNC_KICK_NS (50ull * 1000000)   /* local changes go out this soon, at most this often */
#define SYNC_IDLE_MS 200                 /* the sender's pass when nothing wakes it */
#define SYNC_SETTLE_NS (5ull * 1000000)  /* after a kick, for the commits that follow it */
#define SYNC_SEEN_NS (600ull * 1000000000) /* a connected peer's "seen" is written this often */

struct peer {
    net_id id;
    int known;           /* in the store's peer db */
    char addrs[ST_PEER_MAX_ADDRS][ST_PEER_ADDR_MAX + 1];
    unsigned naddrs;
    int connected;
    int hello_due;       /* send our hello on the sync thread */
    int streaming;       /* peer said hello: we send our log */
    int refresh_due;     /* re-check what we recorded it holds (HOLDQ) */
    uint64_t sent;       /* our log is sent up to here */
    uint64_t lost;       /* lowest sequence of its records dropped for want of room
                          * (keep_pending); 0: none. What we tell it we applied
                          * stays below it, and we ask again once nothing waits */
    uint64_t seen_ns;    /* when its record's "seen" was last written (monotonic);
                          * 0: not yet on this connection */
    uint8_t *rx;         /* reassembly of the peer's record stream */
    size_t rxlen, rxcap;
};

/* Work handed to the sync thread by network callbacks and readers. */
struct item {
    struct item *next;
    enum { IT_FRAME, IT_STATE, IT_CHUNK, IT_FAIL } kind;
    int has_peer;        /* IT_CHUNK: peer is where the bytes came from */
    net_id peer;
    uint16_t type;
    int state, err;
    st_hash hash;
    size_t len;
    const uint8_t *ext;  /* IT_CHUNK: net's buffer, taken over (net_chunk_keep); else data */
    uint8_t data[];
};

struct waiter {
    struct waiter *next;
    void (*done)(void *, int);
    void *ctx;
    uint64_t deadline_ns;  /* its own bound: when it asked + the fetch timeout */
};

/* One network fetch and whoever waits for it. A reader that joins a fetch
 * started earlier (a read-ahead, a relay) keeps its own bound: when that
 * fetch times out first, the chunk is asked for again, urgently, for the
 * waiters whose bound has not passed (inflight_retry). */
struct inflight {
    st_hash h;
    struct waiter *w;
    unsigned flags;        /* NET_FETCH_* it was started with */
    uint64_t deadline_ns;  /* its own bound */
    int has_excl;
    net_id excl;           /* the peer never to ask (relays) */
};

struct pending {
    net_id from;
    uint64_t seq;
    size_t len;
    uint8_t *rec;
};

struct inval {
    uint64_t ino, parent, gone; /* gone: the deleted file of entry parent/name */
    uint16_t len;
    char name[ST_NAME_MAX + 1];
};

struct fs_sync {
    st_store *st;
    struct fs *fs;
    struct net_node *net;
    struct fs_sync_opts o;
    pthread_t thr;
    int running, stop;
    int drain, drained;      /* fs_sync_stop: send what is owed, then say so (mu) */
    pthread_mutex_t mu;
    pthread_cond_t cv;
    struct item *head, *tail;
    int kicked;              /* local changes to send (fs_sync_kick) */
    uint64_t kick_ns;        /* when kicked was last set */
    int again;               /* the sync thread's own: make another pass at once */
    uint64_t last_pass_ns;   /* when the sync thread last began a pass (its own) */
    struct peer peers[SYNC_MAX_PEERS];
    unsigned npeers;
    struct pending *pend;
    size_t npend, pendcap;
    /* invalidations and orphans collected while applying */
    struct inval *inv;
    size_t ninv, invcap;
    uint64_t *orph;
    size_t norph, orphcap;
    uint64_t last_reload_ns;
    uint64_t last_have_ns;   /* when HAVE frames last went out */
    /* chunk fetches in flight (mu): one network fetch per chunk, however
     * many readers and prefetches want it */
    struct inflight *fl;
    size_t nfl, flcap;
    /* background replication (o.replicate): files still to copy here, and
     * how far into the first one the scan got */
    uint64_t *bg;
    size_t nbg, bgcap;
    uint64_t bg_off;
    /* copy counting: chunks that became local / were dropped here since
     * the last HAVE frames went out */
    struct hashes { st_hash *h; size_t n, cap; } have, dropped;
    /* HOLDQ requests awaiting an answer */
    struct req {
        uint32_t id;
        net_id peer;
        int evict;       /* part of the current eviction round */
        uint64_t deadline;
        struct hashes hs;
    } reqs[SYNC_MAX_REQS];
    unsigned nreqs;
    uint32_t next_req;
    /* chunk reads to record as uses (mu) */
    st_hash touch[SYNC_TOUCH_MAX];
    size_t ntouch;
    /* the eviction round in progress (sync thread): candidates sorted by
     * hash, how many peers confirmed each, answers still awaited */
    struct hashes ev;
    uint8_t *ev_yes;
    unsigned ev_waiting;
    uint64_t ev_deadline, last_evict_ns, last_repl_ns;
    uint64_t repl_seq;       /* log sequence at the last replication scan */
    unsigned repl_rot;       /* first peer offered the next REPL */
    uint64_t repl_walk_ns;   /* when the last replication walk ran */
    uint64_t repl_offer_changes; /* holder_changes at the last REPL */
    uint64_t holder_changes; /* bumped when holder records change */
    uint64_t repl_changes;   /* holder_changes at the last scan */
    uint64_t repl_full_ns;   /* when the last whole-store walk ran (0: never) */
    struct inos { uint64_t *v; size_t n, cap; } repl_under; /* files short of copies at the last scan */
    int last_quota_warn;
    /* status (mu) */
    int64_t unreplicated;
    uint64_t scan_files;
    int scan_whole;
    uint64_t evicted_chunks, evicted_bytes;
};

static int hashes_add(struct hashes *l, const st_hash *h)
{
    st_hash *a = lr_grow(l->h, &l->cap, l->n, sizeof(*a), 256);
    if (!a)
        return -ENOMEM;
    l->h = a;
    l->h[l->n++] = *h;
    return 0;
}

static void hashes_free(struct hashes *l)
{
    free(l->h);
    memset(l, 0, sizeof(*l));
}

static int hash_cmp(const void *a, const void *b)
{
    return memcmp(a, b, ST_HASH_LEN);
}

static int hashes_has(const struct hashes *l, const st_hash *h)
{
    return l->n && bsearch(h, l->h, l->n, sizeof(*l->h), hash_cmp) != NULL;
}

static void hashes_sort(struct hashes *l)
{
    if (l->n > 1)
        qsort(l->h, l->n, sizeof(*l->h), hash_cmp);
}

static void bg_add(struct fs_sync *s, uint64_t ino);
static void bg_queue(struct fs_sync *s, uint64_t ino);
static void handle_have(struct fs_sync *s, struct peer *p, const struct st_syncmsg *m);
static void handle_holdq(struct fs_sync *s, struct peer *p, const struct st_syncmsg *m);
static void handle_holda(struct fs_sync *s, struct peer *p, const struct st_syncmsg *m);
static void handle_repl(struct fs_sync *s, struct peer *p, const struct st_syncmsg *m);

/* ---- queue -------------------------------------------------------------- */

static void push(struct fs_sync *s, struct item *it)
{
    it->next = NULL;
    pthread_mutex_lock(&s->mu);
    if (s->tail)
        s->tail->next = it;
    else
        s->head = it;
    s->tail = it;
    pthread_cond_signal(&s->cv);
    pthread_mutex_unlock(&s->mu);
}

void fs_sync_kick(struct fs_sync *s)
{
    if (!s)
        return;
    pthread_mutex_lock(&s->mu);
    if (!s->kicked) {
        s->kicked = 1;
        s->kick_ns = lr_now_mono_ns();
        pthread_cond_signal(&s->cv);
    }
    pthread_mutex_unlock(&s->mu);
}

/* A transaction that appended to the change log committed (store hook, on
 * the committing thread): wake the sender. It used to find local changes
 * only at its 200 ms pass, sometimes most of the time a file took to reach
 * a peer. The sender waits SYNC_SETTLE_NS after a kick, so a file's create
 * and its data (written and closed right after) usually go out as one
 * state, and makes at most one pass per SYNC_KICK_NS for kicks
 * (sync_wait), so a burst of commits is sent in batches. */
static void on_log_commit(void *ctx)
{
    fs_sync_kick(ctx);
}

/* Wait (s->mu held) until there is work: items (frames, fetched chunks:
 * at once), a kick (local changes: SYNC_SETTLE_NS after it and
 * SYNC_KICK_NS after the last pass at the earliest), a stop or drain, or
 * SYNC_IDLE_MS of nothing. */
static void sync_wait(struct fs_sync *s)
{
    for (;;) {
        if (s->head || s->again || s->stop || (s->drain && !s->drained))
            return;
        struct timespec ts;
        if (s->kicked) {
            uint64_t now = lr_now_mono_ns();
            uint64_t at = LR_MAX(s->last_pass_ns + SYNC_KICK_NS, s->kick_ns + SYNC_SETTLE_NS);
            if (now >= at)
                return;
            lr_deadline_in(&ts, at - now);
            pthread_cond_timedwait(&s->cv, &s->mu, &ts);
            continue;
        }
        lr_deadline_in(&ts, SYNC_IDLE_MS * 1000000ull);
        if (pthread_cond_timedwait(&s->cv, &s->mu, &ts))
            return;
    }
}

static void item_free(struct fs_sync *s, struct item *it)
{
    if (it->ext)
        net_chunk_release(s->net, it->ext, it->len);
    free(it);
}

/* The header zeroed, the payload not: callers fill it (calloc's memset of
 * every 64 KiB chunk was measurable on the cold-read path). */
static struct item *item_new(size_t len)
{
    struct item *it = malloc(sizeof(*it) + len);
    if (it) {
        memset(it, 0, sizeof(*it));
        it->len = len;
    }
    return it;
}

/* ---- network callbacks (network thread: copy and queue only) ------------ */

static int relay_start(struct fs_sync *s, const net_id *from, const st_hash *h);

static int on_get_chunk(void *ctx, const net_id *from, int relay, const st_hash *h, void *buf, size_t cap,
                        size_t *len)
{
    struct fs_sync *s = ctx;
    st_txn *t;
    int rc = st_txn_begin(s->st, ST_TXN_READ, &t);
    if (rc)
        return rc;
    const void *d;
    size_t n;
    rc = st_chunk_get(t, h, &d, &n);
    if (rc == LR_EMISSING)
        rc = relay && from ? relay_start(s, from, h) : -ENOENT;
    if (!rc) {
        *len = n;
        if (n > cap)
            rc = -EFBIG;
        else
            memcpy(buf, d, n);
    }
    st_txn_abort(t);
    return rc;
}

static void on_frame(void *ctx, const net_id *peer, uint16_t type, const uint8_t *payload, size_t len)
{
    struct fs_sync *s = ctx;
    if (type < FS_SYNC_HELLO || type > FS_SYNC_REPL)
        return;
    struct item *it = item_new(len);
    if (!it) {
        lr_error("sync: out of memory for a frame from a peer: dropped");
        return;
    }
    it->kind = IT_FRAME;
    it->peer = *peer;
    it->type = type;
    memcpy(it->data, payload, len);
    push(s, it);
}

static void on_peer_state(void *ctx, const net_id *peer, enum net_peer_state st)
{
    struct fs_sync *s = ctx;
    struct item *it = item_new(0);
    if (!it)
        return;
    it->kind = IT_STATE;
    it->peer = *peer;
    it->state = (int)st;
    push(s, it);
}

static void on_fetched(void *ctx, int err, const st_hash *h, const uint8_t *data, size_t len,
                       const net_id *from)
{
    struct fs_sync *s = ctx;
    /* Keep net's verified buffer rather than copying every chunk. */
    int keep = !err && net_chunk_keep(data);
    struct item *it = item_new(err || keep ? 0 : len);
    if (!it) {
        /* No room for the bytes: still tell the waiters, with an error. */
        lr_error("sync: out of memory storing a fetched chunk");
        if (keep)
            net_chunk_release(s->net, data, len);
        keep = 0;
        it = item_new(0);
        if (!it)
            return; /* waiters are answered when the node stops */
        err = -ENOMEM;
    }
    it->kind = err ? IT_FAIL : IT_CHUNK;
    it->err = err;
    it->hash = *h;
    if (from && !err) {
        it->peer = *from;
        it->has_peer = 1;
    }
    if (keep) {
        it->ext = data;
        it->len = len;
    } else if (!err) {
        memcpy(it->data, data, len);
    }
    push(s, it);
}

/* h's entry in s->fl, or NULL (caller holds s->mu). */
static struct inflight *inflight_find(struct fs_sync *s, const st_hash *h)
{
    for (size_t i = 0; i < s->nfl; i++)
        if (!memcmp(s->fl[i].h.b, h->b, ST_HASH_LEN))
            return &s->fl[i];
    return NULL;
}

/* Remove entry fl from s->fl (caller holds s->mu). */
static void inflight_remove(struct fs_sync *s, struct inflight *fl)
{
    *fl = s->fl[--s->nfl];
}

/* Register interest in h (done may be NULL: nobody waits, a read-ahead);
 * returns 1 if a network fetch must be started, with flags and exclude. */
static int inflight_add(struct fs_sync *s, const st_hash *h, const net_id *exclude, unsigned flags,
                        unsigned timeout_ms, void (*done)(void *, int), void *ctx, int *err)
{
    struct waiter *w = NULL;
    uint64_t deadline = lr_now_mono_ns() + (uint64_t)timeout_ms * 1000000u;
    *err = 0;
    if (done && !(w = malloc(sizeof(*w)))) {
        *err = -ENOMEM;
        return 0;
    }
    if (w) {
        w->done = done;
        w->ctx = ctx;
        w->deadline_ns = deadline;
    }
    pthread_mutex_lock(&s->mu);
    struct inflight *fl = inflight_find(s, h);
    if (fl) {
        if (w) {
            w->next = fl->w;
            fl->w = w;
        }
        pthread_mutex_unlock(&s->mu);
        return 0;
    }
    fl = lr_grow(s->fl, &s->flcap, s->nfl, sizeof(*fl), 64);
    if (!fl) {
        pthread_mutex_unlock(&s->mu);
        free(w);
        *err = -ENOMEM;
        return 0;
    }
    s->fl = fl;
    fl = &s->fl[s->nfl++];
    memset(fl, 0, sizeof(*fl));
    fl->h = *h;
    fl->w = w;
    fl->flags = flags;
    fl->deadline_ns = deadline;
    if (exclude) {
        fl->has_excl = 1;
        fl->excl = *exclude;
    }
    if (w)
        w->next = NULL;
    pthread_mutex_unlock(&s->mu);
    return 1;
}

/* Remove h's entry and return its waiters. */
static struct waiter *inflight_take(struct fs_sync *s, const st_hash *h)
{
    struct waiter *w = NULL;
    pthread_mutex_lock(&s->mu);
    struct inflight *fl = inflight_find(s, h);
    if (fl) {
        w = fl->w;
        inflight_remove(s, fl);
    }
    pthread_mutex_unlock(&s->mu);
    return w;
}

static void waiters_done(struct waiter *w, int err)
{
    while (w) {
        struct waiter *next = w->next;
        w->done(w->ctx, err);
        free(w);
        w = next;
    }
}

/* Fetch h from peers (exclude: one never to ask; flags: NET_FETCH_*),
 * store it, then call done (if not NULL) with the outcome. One network
 * fetch per chunk however many want it: a second caller joins the first. */
static int start_fetch(struct fs_sync *s, const st_hash *h, const net_id *exclude, unsigned flags,
                       unsigned timeout_ms, void (*done)(void *, int), void *ctx)
{
    int err;
    if (!inflight_add(s, h, exclude, flags, timeout_ms, done, ctx, &err))
        return err;
    int rc = net_fetch_ex(s->net, h, NULL, 0, exclude, flags, timeout_ms, on_fetched, s);
    if (rc) {
        struct waiter *w = inflight_take(s, h);
        /* Our own waiter (if any) is answered by the caller's error; others
         * that joined meanwhile are answered here. */
        while (w) {
            struct waiter *next = w->next;
            if (w->ctx != ctx || w->done != done)
                w->done(w->ctx, rc);
            free(w);
            w = next;
        }
    }
    return rc;
}

#define SYNC_RETRY_MIN_MS 50  /* slack of inflight_retry: less than this left is none */

/* The fetch of h failed with LR_ETIMEDOUT (sync thread). If it failed
 * before its bound (no peer reachable: asking again would fail the same
 * way at once), all its waiters are returned. If it spent its bound,
 * waiters whose own bound has passed too are returned (answer them
 * LR_ETIMEDOUT) and, if any remain, h is asked for again, urgently, until
 * the latest of their deadlines; they stay registered for that fetch. */
static struct waiter *inflight_retry(struct fs_sync *s, const st_hash *h)
{
    uint64_t now = lr_now_mono_ns(), slack = now + SYNC_RETRY_MIN_MS * 1000000ull, last = 0;
    struct waiter *expired = NULL, *alive = NULL;
    struct inflight copy = { 0 };
    pthread_mutex_lock(&s->mu);
    struct inflight *fl = inflight_find(s, h);
    if (fl && slack < fl->deadline_ns) {
        /* failed before its bound: nothing to gain from asking again */
        expired = fl->w;
        inflight_remove(s, fl);
    } else if (fl) {
        for (struct waiter *w = fl->w, *next; w; w = next) {
            next = w->next;
            if (w->deadline_ns >= slack) {
                w->next = alive;
                alive = w;
                last = LR_MAX(last, w->deadline_ns);
            } else {
                w->next = expired;
                expired = w;
            }
        }
        fl->w = alive;
        fl->deadline_ns = last;
        copy = *fl;
        if (!alive)
            inflight_remove(s, fl);
    }
    pthread_mutex_unlock(&s->mu);
    if (!alive)
        return expired;
    char hex[65];
    unsigned ms = (unsigned)((last - now) / 1000000u);
    lr_debug("sync: fetch of chunk %.16s timed out; asking again for its readers (%u ms left)",
             st_hash_hex(h, hex), ms);
    int rc = net_fetch_ex(s->net, h, NULL, 0, copy.has_excl ? &copy.excl : NULL,
                          copy.flags | NET_FETCH_URGENT, ms, on_fetched, s);
    if (rc)
        waiters_done(inflight_take(s, h), rc);
    return expired;
}

int fs_sync_fetch(struct fs_sync *s, const st_hash *h, void (*done)(void *ctx, int err), void *ctx)
{
    return start_fetch(s, h, NULL, NET_FETCH_URGENT, s->o.fetch_timeout_ms, done, ctx);
}

int fs_sync_prefetch(struct fs_sync *s, const st_hash *h)
{
    return start_fetch(s, h, NULL, 0, s->o.fetch_timeout_ms, NULL, NULL);
}

/* ---- relaying ------------------------------------------------------------
 * A peer that knows only us asks for a chunk that we do not hold either
 * (C knows B, B knows A, A wrote the file): we fetch it from our other
 * peers, store it as for a read here, and answer the parked request
 * (net_serve_wake). Our fetch is direct (no relay round of its own, so
 * relays never chain or loop) and never asks the peer we relay for. */

#define SYNC_RELAY_TIMEOUT_MS 2000  /* within the asker's attempt (net parks half of one) */

struct relay { struct fs_sync *s; st_hash h; };

static void relay_done(void *ctx, int err)
{
    struct relay *r = ctx;
    char hex[65];
    if (err)
        lr_debug("sync: relaying chunk %.16s failed: %s", st_hash_hex(&r->h, hex), lr_strerror(err));
    net_serve_wake(r->s->net, &r->h);
    free(r);
}

/* Network thread, from on_get_chunk: -EINPROGRESS when the chunk is being
 * fetched for the asker, -ENOENT when it cannot be. */
static int relay_start(struct fs_sync *s, const net_id *from, const st_hash *h)
{
    struct relay *r = malloc(sizeof(*r));
    if (!r)
        return -ENOENT;
    r->s = s;
    r->h = *h;
    int rc = start_fetch(s, h, from, NET_FETCH_DIRECT, SYNC_RELAY_TIMEOUT_MS, relay_done, r);
    if (rc) {
        free(r);
        return -ENOENT;
    }
    return -EINPROGRESS;
}

/* ---- peers -------------------------------------------------------------- */

static struct peer *peer_find(struct fs_sync *s, const net_id *id, int create)
{
    for (unsigned i = 0; i < s->npeers; i++)
        if (!memcmp(s->peers[i].id.b, id->b, NET_ID_LEN))
            return &s->peers[i];
    if (!create || s->npeers == SYNC_MAX_PEERS)
        return NULL;
    struct peer *p = &s->peers[s->npeers++];
    memset(p, 0, sizeof(*p));
    p->id = *id;
    return p;
}

struct reload_ctx { struct fs_sync *s; };

static int reload_one(const uint8_t *id, const void *rec, size_t len, void *arg)
{
    struct fs_sync *s = ((struct reload_ctx *)arg)->s;
    struct st_peerrec r;
    char idstr[NET_ID_STR_LEN];
    net_id nid;
    memcpy(nid.b, id, NET_ID_LEN);
    if (st_peerrec_decode(rec, len, &r)) {
        lr_warn("sync: peer %s: damaged peer record in the store, ignored", net_id_format(&nid, idstr));
        return 0;
    }
    struct peer *p = peer_find(s, &nid, 1);
    if (!p)
        return 0;
    int changed = !p->known || p->naddrs != r.naddrs;
    for (unsigned i = 0; !changed && i < r.naddrs; i++)
        changed = strcmp(p->addrs[i], r.addrs[i]) != 0;
    p->known = 2; /* seen in this pass */
    if (!changed)
        return 0;
    p->naddrs = r.naddrs;
    const char *addrs[ST_PEER_MAX_ADDRS];
    for (unsigned i = 0; i < r.naddrs; i++) {
        memcpy(p->addrs[i], r.addrs[i], sizeof(p->addrs[i]));
        addrs[i] = p->addrs[i];
    }
    int rc = net_peer_add(s->net, &nid, addrs, r.naddrs);
    if (rc)
        lr_warn("sync: cannot add peer %s: %s", net_id_format(&nid, idstr), lr_strerror(rc));
    return 0;
}

static void reload_peers(struct fs_sync *s)
{
    for (unsigned i = 0; i < s->npeers; i++)
        if (s->peers[i].known)
            s->peers[i].known = 1;
    st_txn *t;
    if (st_txn_begin(s->st, ST_TXN_READ, &t))
        return;
    struct reload_ctx c = { s };
    st_peer_foreach(t, reload_one, &c);
    st_txn_abort(t);
    for (unsigned i = 0; i < s->npeers; i++) {
        struct peer *p = &s->peers[i];
        if (p->known == 1) { /* removed from the store */
            net_peer_remove(s->net, &p->id);
            p->known = 0;
            p->streaming = 0;
            s->repl_full_ns = 0; /* its copies no longer count */
        } else if (p->known == 2) {
            p->known = 1;
        }
    }
}

/* Peer id's record in the store into *r: 0, or non-zero when there is
 * none (not a configured peer, or removed meanwhile) or it is damaged. */
static int peer_rec(st_txn *t, const net_id *id, struct st_peerrec *r)
{
    const void *rec;
    size_t len;
    return st_peer_get(t, id->b, &rec, &len) || st_peerrec_decode(rec, len, r);
}

static int peer_rec_put(st_txn *t, const net_id *id, const struct st_peerrec *r)
{
    uint8_t b[ST_PEERREC_MAX];
    int n = st_peerrec_encode(r, b);
    return n < 0 ? n : st_peer_put(t, id->b, b, (size_t)n);
}

/* Applied sequence of peer id's log, and when the peer was last seen
 * (wall seconds), from the store; 0s if unknown. */
static uint64_t peer_applied(st_txn *t, const net_id *id, uint64_t *seen)
{
    struct st_peerrec r;
    *seen = 0;
    if (peer_rec(t, id, &r))
        return 0;
    *seen = r.seen;
    return r.applied;
}

/* Record that peer p is connected and streaming now (peerrec "seen"). */
static void note_seen(struct fs_sync *s, struct peer *p, uint64_t now_ns)
{
    st_txn *t;
    struct st_peerrec r;
    p->seen_ns = now_ns;
    if (st_txn_begin(s->st, ST_TXN_WRITE, &t))
        return;
    int rc = 0;
    if (peer_rec(t, &p->id, &r) == 0) {
        r.seen = (uint64_t)time(NULL);
        rc = peer_rec_put(t, &p->id, &r);
    }
    if ((rc = st_txn_end(t, rc)))
        lr_debug("sync: cannot note when a peer was seen: %s", lr_strerror(rc));
}

static int peer_set_applied(st_txn *t, const net_id *id, uint64_t seq)
{
    struct st_peerrec r;
    if (peer_rec(t, id, &r))
        return 0; /* not a configured peer (removed meanwhile): nothing to record */
    if (seq <= r.applied)
        return 0;
    r.applied = seq;
    return peer_rec_put(t, id, &r);
}

static void send_hello(struct fs_sync *s, struct peer *p)
{
    st_txn *t;
    uint64_t applied = 0, seen = 0;
    if (!st_txn_begin(s->st, ST_TXN_READ, &t)) {
        applied = peer_applied(t, &p->id, &seen);
        st_txn_abort(t);
    }
    /* Away for a good part of the forget period, the peer may hold files
     * deleted meanwhile whose deletions no peer sends any more (replica.h,
     * FORGETTING DELETIONS): ask it for its whole log, so those files come
     * back here and, relayed, on every peer, instead of staying on it
     * alone. (Its records already applied are ignored as equal.) */
    int64_t forget = st_forget_after(s->st);
    if (forget > 0 && applied && (int64_t)seen < (int64_t)time(NULL) - forget / 2) {
        char idstr[10];
        lr_info("sync: peer %s was last seen over half of forget_deleted_after ago: asking for its whole log",
                net_id_short(&p->id, idstr));
        applied = 0;
    }
    uint8_t b[9] = { 1 };
    lr_put_le64(b + 1, applied);
    p->rxlen = 0; /* the peer restarts its stream after our hello */
    p->lost = 0;  /* from below the records dropped: they come again */
    int rc = net_send_frame(s->net, &p->id, FS_SYNC_HELLO, b, sizeof(b));
    if (rc)
        lr_debug("sync: hello not sent: %s", lr_strerror(rc));
    p->hello_due = 0;
}

/* ---- sending our log ---------------------------------------------------- */

struct out {
    struct fs_sync *s;
    struct peer *p;
    st_txn *t;
    uint8_t *buf;
    size_t len, cap;
    uint64_t last;
    unsigned n;
    int err;
    /* File ids exported in this pass (small cache); deleted_dir: what
     * the export found, so its later deletion record needs no export. */
    struct seen { uint8_t fid[16]; uint8_t deleted_dir; } seen[256];
    unsigned nseen;
    /* Deleted directories, sent after everything else in the pass and in
     * the order of their last record as subject (their deletion, which
     * comes after every change inside them): their files' and
     * subdirectories' deletions must arrive first, or the peer would find
     * them non-empty and keep them. */
    struct late { uint8_t fid[16]; uint64_t seq; } *late;
    size_t nlate, latecap;
};

static int out_room(struct out *o, size_t n)
{
    if (o->len + n <= o->cap)
        return 0;
    size_t cap = o->cap ? o->cap : SYNC_FRAME_TARGET * 2;
    while (cap < o->len + n)
        cap *= 2;
    uint8_t *b = realloc(o->buf, cap);
    if (!b)
        return -ENOMEM;
    o->buf = b;
    o->cap = cap;
    return 0;
}

/* Send o's buffer as DATA frames of at most NET_FRAME_MAX bytes. */
static int out_flush(struct out *o)
{
    size_t off = 0;
    while (off < o->len) {
        size_t n = LR_MIN(o->len - off, (size_t)NET_FRAME_MAX);
        int rc = net_send_frame(o->s->net, &o->p->id, FS_SYNC_DATA, o->buf + off, n);
        if (rc)
            return rc;
        off += n;
    }
    o->len = 0;
    return 0;
}

/* Append one REC entry holding record r (rl bytes) of log sequence seq. */
static int out_rec(struct out *o, uint64_t seq, const uint8_t *r, size_t rl)
{
    int rc = out_room(o, 13 + rl);
    if (rc)
        return rc;
    o->buf[o->len] = SYNC_ENTRY_REC;
    lr_put_le64(o->buf + o->len + 1, seq);
    lr_put_le32(o->buf + o->len + 9, (uint32_t)rl);
    memcpy(o->buf + o->len + 13, r, rl);
    o->len += 13 + rl;
    return o->len >= SYNC_FRAME_TARGET ? out_flush(o) : 0;
}

static int is_deleted_dir(const uint8_t *r, size_t rl)
{
    return rl >= ST_REP_HDR && (r[1] & ST_REP_DELETED) && S_ISDIR(lr_get_le32(r + 4));
}

/* 1 if log record rec deletes directory fid: an rmdir of it, a rename
 * over it, or a peer's change of it applied here (ST_REP_LOG, which for a
 * directory deleted now was its deletion). Not a record that merely names
 * it as the directory holding a name. */
static int deletes_dir(const uint8_t *rec, size_t len, const uint8_t fid[16])
{
    if (len < 80)
        return 0;
    switch (rec[1]) {
    case ST_REP_LOG:
    case ST_NS_OP_RMDIR: return !memcmp(rec + 16, fid, 16);
    case ST_NS_OP_RENAME: return !memcmp(rec + 48, fid, 16);
    default: return 0;
    }
}

/* Note deleted directory fid, named as subject by the record at seq. */
static int late_note(struct out *o, const uint8_t fid[16], uint64_t seq)
{
    for (size_t k = 0; k < o->nlate; k++)
        if (!memcmp(o->late[k].fid, fid, 16)) {
            o->late[k].seq = seq;
            return 0;
        }
    struct late *l = lr_grow(o->late, &o->latecap, o->nlate, sizeof(*l), 16);
    if (!l)
        return -ENOMEM;
    o->late = l;
    memcpy(l[o->nlate].fid, fid, 16);
    l[o->nlate++].seq = seq;
    return 0;
}

static int late_cmp(const void *a, const void *b)
{
    uint64_t x = ((const struct late *)a)->seq, y = ((const struct late *)b)->seq;
    return x < y ? -1 : x > y;
}

static int send_record(uint64_t seq, const void *rec, size_t len, void *arg)
{
    struct out *o = arg;
    uint8_t fids[4][16];
    int n = st_rep_log_fids(rec, len, fids);
    for (int i = 0; i < n; i++) {
        const struct seen *dup = NULL;
        for (unsigned j = 0; j < o->nseen && !dup; j++)
            if (!memcmp(o->seen[j].fid, fids[i], 16))
                dup = &o->seen[j];
        int rc, deleted_dir = dup && dup->deleted_dir;
        uint8_t *r = NULL;
        size_t rl = 0;
        if (dup && !deleted_dir)
            continue;
        if (!dup) {
            rc = st_rep_export(o->t, fids[i], &r, &rl);
            if (rc == -ENOENT)
                continue;
            if (rc)
                return rc;
            deleted_dir = is_deleted_dir(r, rl);
            if (o->nseen < 256) {
                memcpy(o->seen[o->nseen].fid, fids[i], 16);
                o->seen[o->nseen++].deleted_dir = (uint8_t)deleted_dir;
            }
        }
        if (deleted_dir) {
            /* Goes out at the end of the pass (struct out, late), placed
             * by its deletion record only: placed where it was first
             * named (as the parent of a child's change), it went before
             * a subdirectory deleted later, or before children whose
             * deletions lie beyond this pass, and a directory that is
             * not empty survives its deletion on the peer. */
            free(r);
            if (deletes_dir(rec, len, fids[i]) && (rc = late_note(o, fids[i], seq)))
                return rc;
            continue;
        }
        rc = out_rec(o, seq, r, rl);
        free(r);
        if (rc)
            return rc;
    }
    o->last = seq;
    return ++o->n >= SYNC_BATCH_RECORDS ? 1 : 0;
}

/* Send the peer what it has not got of our log; returns 1 if more remain. */
static int send_log(struct fs_sync *s, struct peer *p)
{
    static __thread struct out o;
    memset(&o, 0, sizeof(o));
    o.s = s;
    o.p = p;
    o.last = p->sent;
    if (st_txn_begin(s->st, ST_TXN_READ, &o.t))
        return 0;
    int rc = st_log_foreach(o.t, p->sent + 1, send_record, &o);
    if (o.nlate > 1)
        qsort(o.late, o.nlate, sizeof(*o.late), late_cmp);
    for (size_t i = 0; i < o.nlate && rc >= 0; i++) {
        uint8_t *r;
        size_t rl;
        int e = st_rep_export(o.t, o.late[i].fid, &r, &rl);
        if (e == -ENOENT)
            continue;
        if (e) {
            rc = e;
            break;
        }
        e = out_rec(&o, o.late[i].seq, r, rl);
        free(r);
        if (e)
            rc = e;
    }
    free(o.late);
    st_txn_abort(o.t);
    int more = rc == 1;
    if (rc < 0) {
        lr_warn("sync: sending changes to a peer failed: %s", lr_strerror(rc));
        free(o.buf);
        return 0;
    }
    if (o.last > p->sent) {
        if (!out_room(&o, 9)) {
            o.buf[o.len] = SYNC_ENTRY_MARK;
            lr_put_le64(o.buf + o.len + 1, o.last);
            o.len += 9;
        }
        if (out_flush(&o) == 0)
            p->sent = o.last;
        else
            p->streaming = 0; /* connection went away: wait for the next hello */
    }
    free(o.buf);
    return more;
}

/* ---- applying peers' records -------------------------------------------- */

static void hk_inode(void *ctx, uint64_t ino)
{
    struct fs_sync *s = ctx;
    struct inval *a = lr_grow(s->inv, &s->invcap, s->ninv, sizeof(*a), 64);
    if (!a)
        return;
    s->inv = a;
    struct inval *v = &s->inv[s->ninv++];
    v->ino = ino;
    v->parent = v->gone = 0;
    v->len = 0;
}

static void hk_entry(void *ctx, uint64_t parent, const char *name, size_t len, uint64_t gone)
{
    struct fs_sync *s = ctx;
    hk_inode(ctx, 0);
    if (!s->ninv || s->inv[s->ninv - 1].ino != 0 || len > ST_NAME_MAX)
        return;
    struct inval *v = &s->inv[s->ninv - 1];
    v->parent = parent;
    v->gone = gone;
    v->len = (uint16_t)len;
    memcpy(v->name, name, len);
    v->name[len] = 0;
}

static void hk_orphan(void *ctx, uint64_t ino)
{
    struct fs_sync *s = ctx;
    uint64_t *a = lr_grow(s->orph, &s->orphcap, s->norph, sizeof(*a), 16);
    if (!a)
        return;
    s->orph = a;
    s->orph[s->norph++] = ino;
}

/* Apply one record; -EAGAIN means "keep it for later". */
static int apply_one(struct fs_sync *s, st_txn *t, const net_id *from, const uint8_t *rec, size_t len)
{
    static __thread struct st_rep_file f;
    int rc = st_rep_decode(rec, len, &f);
    if (rc) {
        char idstr[10];
        lr_warn("sync: peer %s sent a malformed record: ignored", net_id_short(from, idstr));
        return 0;
    }
    struct st_rep_hooks h = { .inode = hk_inode, .entry = hk_entry, .orphan = hk_orphan, .ctx = s };
    int result;
    rc = st_rep_apply(t, &f, from->b, &h, &result);
    if (rc == LR_EPROTO || rc == LR_EHASH) {
        char idstr[10];
        lr_warn("sync: peer %s sent a record that contradicts this store (%s): ignored",
                net_id_short(from, idstr), lr_strerror(rc));
        return 0;
    }
    return rc;
}

static int keep_pending(struct fs_sync *s, struct peer *p_from, uint64_t seq, const uint8_t *rec, size_t len)
{
    const net_id *from = &p_from->id;
    if (s->npend >= (s->o.max_pending ? s->o.max_pending : SYNC_MAX_PENDING)) {
        if (!p_from->lost)
            lr_warn("sync: more than %zu records wait for their directory: asking peer again "
                    "for those after %llu once they have landed", s->npend, (unsigned long long)seq);
        if (!p_from->lost || seq < p_from->lost)
            p_from->lost = seq;
        return 0;
    }
    struct pending *a = lr_grow(s->pend, &s->pendcap, s->npend, sizeof(*a), 64);
    if (!a)
        return -ENOMEM;
    s->pend = a;
    struct pending *p = &s->pend[s->npend];
    if (!(p->rec = malloc(len)))
        return -ENOMEM;
    memcpy(p->rec, rec, len);
    p->len = len;
    p->seq = seq;
    p->from = *from;
    s->npend++;
    return 0;
}

/* Retry pending records until a pass makes no progress. */
static int retry_pending(struct fs_sync *s, st_txn *t)
{
    int progress = 1;
    while (progress && s->npend) {
        progress = 0;
        for (size_t i = 0; i < s->npend;) {
            struct pending *p = &s->pend[i];
            int rc = apply_one(s, t, &p->from, p->rec, p->len);
            if (rc == -EAGAIN) {
                i++;
                continue;
            }
            if (rc)
                return rc;
            free(p->rec);
            s->pend[i] = s->pend[--s->npend];
            progress = 1;
        }
    }
    return 0;
}

/* Lowest pending sequence from peer, or UINT64_MAX. */
static uint64_t pending_floor(struct fs_sync *s, const net_id *from)
{
    uint64_t lo = UINT64_MAX;
    for (size_t i = 0; i < s->npend; i++)
        if (!memcmp(s->pend[i].from.b, from->b, NET_ID_LEN) && s->pend[i].seq < lo)
            lo = s->pend[i].seq;
    return lo;
}

/* 1 if ino's data is to be kept here as peers change it: ino or a
 * directory above it is pinned (follows the parent hints), or ino is a
 * symbolic link, whose target is a chunk like file data, fetched as soon
 * as its record lands so that readlink works with every peer offline, as
 * listing and stat do. */
static int keep_local(st_txn *t, uint64_t ino)
{
    struct st_inode in;
    for (int depth = 0; depth < 256 && ino && st_inode_get(t, ino, &in) == 0; depth++) {
        if ((in.flags & ST_INODE_PINNED) || (depth == 0 && S_ISLNK(in.mode)))
            return 1;
        if (ino == ST_ROOT_INO || in.parent == ino)
            break;
        ino = in.parent;
    }
    return 0;
}

static void finish_apply(struct fs_sync *s)
{
    st_txn *t = NULL;
    if (!s->o.replicate && s->ninv && st_txn_begin(s->st, ST_TXN_READ, &t))
        t = NULL;
    for (size_t i = 0; i < s->ninv; i++) {
        if (!s->inv[i].ino)
            continue;
        if (s->o.replicate)
            bg_add(s, s->inv[i].ino);
        else if (t && keep_local(t, s->inv[i].ino))
            bg_queue(s, s->inv[i].ino); /* fetch the new data now */
    }
    st_txn_abort(t);
    if (s->fs && s->ninv)
        fs_peer_changed(s->fs);
    for (size_t i = 0; i < s->ninv; i++) {
        if (!s->fs)
            break;
        struct inval *v = &s->inv[i];
        if (v->ino)
            fs_inval_inode(s->fs, v->ino, -1, 0);
        /* A deleted file: the kernel drops its link count too, so it lets
         * the inode go (FORGET) once unused and the reaper frees the data;
         * a plain invalidation would leave the inode cached, data and all. */
        else if (!v->gone || fs_notify_delete(s->fs, v->parent, v->gone, v->name, v->len) != 0)
            fs_inval_entry(s->fs, v->parent, v->name, v->len);
    }
    s->ninv = 0;
    for (size_t i = 0; i < s->norph; i++) {
        if (s->fs) {
            fs_reap(s->fs, s->orph[i]);
        } else {
            st_txn *w;
            if (!st_txn_begin(s->st, ST_TXN_WRITE, &w)) {
                int rc = st_inode_del(w, s->orph[i]);
                st_txn_end(w, rc == -ENOENT ? 0 : rc);
            }
        }
    }
    s->norph = 0;
}

/* A peer some of whose records were dropped (keep_pending) and none of
 * whose records wait any more: say hello again, so it streams from what
 * we applied, which is below the first dropped record. */
static void ask_again_lost(struct fs_sync *s)
{
    for (unsigned i = 0; i < s->npeers; i++) {
        struct peer *p = &s->peers[i];
        if (p->lost && pending_floor(s, &p->id) == UINT64_MAX) {
            lr_info("sync: asking a peer again for the records dropped while their directories were missing");
            p->lost = 0;
            p->hello_due = 1;
        }
    }
}

/* Parse and apply the complete entries in peer p's stream buffer. */
static void apply_stream(struct fs_sync *s, struct peer *p)
{
    st_txn *t = NULL;
    int rc = st_txn_begin(s->st, ST_TXN_WRITE, &t);
    if (rc) {
        lr_error("sync: cannot apply changes: %s", lr_strerror(rc));
        return;
    }
    size_t pos = 0;
    uint64_t mark = 0;
    int applied = 0;
    char idstr[10];
    while (!rc && pos < p->rxlen) {
        const uint8_t *e = p->rx + pos;
        size_t avail = p->rxlen - pos;
        if (e[0] == SYNC_ENTRY_MARK) {
            if (avail < 9)
                break;
            mark = lr_get_le64(e + 1);
            pos += 9;
        } else if (e[0] == SYNC_ENTRY_REC) {
            if (avail < 13)
                break;
            uint64_t seq = lr_get_le64(e + 1);
            uint32_t len = lr_get_le32(e + 9);
            if (len > SYNC_MAX_RECORD) {
                lr_warn("sync: peer %s sent an oversized record: stream reset", net_id_short(&p->id, idstr));
                p->rxlen = pos = 0;
                p->hello_due = 1;
                break;
            }
            if (avail < 13 + (size_t)len)
                break;
            rc = apply_one(s, t, &p->id, e + 13, len);
            if (rc == -EAGAIN)
                rc = keep_pending(s, p, seq, e + 13, len);
            else if (!rc)
                applied = 1;
            pos += 13 + (size_t)len;
        } else {
            lr_warn("sync: peer %s sent an unknown stream entry %u: stream reset",
                    net_id_short(&p->id, idstr), e[0]);
            p->rxlen = pos = 0;
            p->hello_due = 1;
            break;
        }
    }
    if (!rc && applied)
        rc = retry_pending(s, t);
    if (!rc && mark) {
        uint64_t floor = pending_floor(s, &p->id);
        if (p->lost && p->lost < floor)
            floor = p->lost;
        rc = peer_set_applied(t, &p->id, floor == UINT64_MAX ? mark : LR_MIN(mark, floor - 1));
    }
    rc = st_txn_end(t, rc);
    if (rc) {
        lr_error("sync: applying changes from peer %s failed: %s", net_id_short(&p->id, idstr),
                 lr_strerror(rc));
        s->ninv = s->norph = 0;
        p->rxlen = 0;
        p->hello_due = 1; /* ask again from what was committed */
        return;
    }
    memmove(p->rx, p->rx + pos, p->rxlen - pos);
    p->rxlen -= pos;
    finish_apply(s);
    ask_again_lost(s);
    if (applied)
        s->again = 1; /* relay to the other peers */
}

static void handle_frame(struct fs_sync *s, struct item *it)
{
    struct peer *p = peer_find(s, &it->peer, 0);
    if (!p || !p->known)
        return;
    if (it->type != FS_SYNC_DATA) {
        struct st_syncmsg m;
        char idstr[10];
        if (st_syncmsg_decode(it->type, it->data, it->len, &m)) {
            lr_warn("sync: peer %s sent a malformed frame of type 0x%x: ignored", net_id_short(&p->id, idstr),
                    it->type);
            return;
        }
        switch (it->type) {
        case FS_SYNC_HELLO:
            p->sent = m.applied;
            p->streaming = 1;
            s->again = 1;
            return;
        case FS_SYNC_HAVE: handle_have(s, p, &m); return;
        case FS_SYNC_HOLDQ: handle_holdq(s, p, &m); return;
        case FS_SYNC_HOLDA: handle_holda(s, p, &m); return;
        case FS_SYNC_REPL: handle_repl(s, p, &m); return;
        }
        return;
    }
    if (p->rxlen + it->len > p->rxcap) {
        size_t cap = p->rxcap ? p->rxcap : (1u << 20);
        while (cap < p->rxlen + it->len)
            cap *= 2;
        uint8_t *n = realloc(p->rx, cap);
        if (!n) {
            lr_error("sync: out of memory for a peer's changes: stream reset");
            p->rxlen = 0;
            p->hello_due = 1;
            return;
        }
        p->rx = n;
        p->rxcap = cap;
    }
    memcpy(p->rx + p->rxlen, it->data, it->len);
    p->rxlen += it->len;
    apply_stream(s, p);
}

/* Store the fetched chunks of list in one transaction, then answer every
 * reader waiting for them. */
static void handle_chunks(struct fs_sync *s, struct item *list)
{
    st_txn *t = NULL;
    int rc = 0, any = 0;
    for (struct item *it = list; it; it = it->next)
        any |= it->kind == IT_CHUNK;
    if (any && (rc = st_txn_begin(s->st, ST_TXN_WRITE, &t)) == 0) {
        for (struct item *it = list; it && !rc; it = it->next) {
            if (it->kind != IT_CHUNK)
                continue;
            rc = st_chunk_put(t, &it->hash, it->ext ? it->ext : it->data, it->len);
            /* the peer that sent it holds it */
            if (!rc && it->has_peer)
                rc = st_holder_set(t, &it->hash, it->peer.b, 1, NULL);
        }
        rc = st_txn_end(t, rc);
    }
    if (rc)
        lr_error("sync: cannot store fetched chunks: %s", lr_strerror(rc));
    for (struct item *it = list; it && !rc; it = it->next)
        if (it->kind == IT_CHUNK)
            hashes_add(&s->have, &it->hash); /* tell peers we hold it now */
    if (any && !rc)
        s->holder_changes++;
    while (list) {
        struct item *it = list;
        list = it->next;
        if (it->kind != IT_CHUNK && it->err == LR_ETIMEDOUT)
            waiters_done(inflight_retry(s, &it->hash), it->err);
        else
            waiters_done(inflight_take(s, &it->hash), it->kind == IT_CHUNK ? rc : it->err);
        item_free(s, it);
    }
}

/* ---- background replication ---------------------------------------------- */

static void bg_add(struct fs_sync *s, uint64_t ino)
{
    if (s->o.replicate)
        bg_queue(s, ino);
}

/* Queue ino for background fetching of its missing chunks. */
static void bg_queue(struct fs_sync *s, uint64_t ino)
{
    for (size_t i = 0; i < s->nbg; i++)
        if (s->bg[i] == ino)
            return;
    uint64_t *a = lr_grow(s->bg, &s->bgcap, s->nbg, sizeof(*a), 256);
    if (!a)
        return; /* the next start's scan catches it */
    s->bg = a;
    s->bg[s->nbg++] = ino;
}

static int bg_scan_one(const struct st_inode *in, void *arg)
{
    if ((S_ISREG(in->mode) || S_ISLNK(in->mode)) && in->size > 0)
        bg_add(arg, in->ino);
    return 0;
}

/* Start background fetches until SYNC_BG_INFLIGHT are in flight or no
 * file needs anything. Returns 1 if work remains. */
static int bg_step(struct fs_sync *s)
{
    while (s->nbg) {
        pthread_mutex_lock(&s->mu);
        size_t inflight = s->nfl;
        pthread_mutex_unlock(&s->mu);
        if (inflight >= SYNC_BG_INFLIGHT)
            return 1;
        uint64_t ino = s->bg[0];
        st_txn *t;
        if (st_txn_begin(s->st, ST_TXN_READ, &t))
            return 1;
        struct st_inode in;
        struct st_span sp[256];
        size_t k = 0;
        int done = st_inode_get(t, ino, &in) != 0 || !(S_ISREG(in.mode) || S_ISLNK(in.mode)) ||
                   s->bg_off >= in.size;
        if (!done && st_file_read(t, ino, s->bg_off, (size_t)LR_MIN((uint64_t)SYNC_BG_WINDOW,
                                                                     in.size - s->bg_off),
                                  sp, LR_ARRAY_SIZE(sp), &k) != 0)
            done = 1;
        st_txn_abort(t);
        size_t started = 0;
        for (size_t i = 0; i < k; i++) {
            s->bg_off += sp[i].len;
            if (sp[i].kind == ST_SPAN_MISSING && fs_sync_prefetch(s, &sp[i].hash) == 0 &&
                ++started + inflight >= SYNC_BG_INFLIGHT)
                break;
        }
        if (done || k == 0) {
            memmove(s->bg, s->bg + 1, (s->nbg - 1) * sizeof(*s->bg));
            s->nbg--;
            s->bg_off = 0;
        }
    }
    return 0;
}

/* ---- copy counting ------------------------------------------------------- */

static int peer_up(const struct peer *p)
{
    return p->known && p->connected;
}

/* Send hashes as frames of type: a 4-byte header (version 1, arg, 2
 * reserved) or, for HOLDQ, 8 bytes (version, 3 reserved, u32 request id),
 * then up to SYNC_HASHES_PER_FRAME hashes each. */
static int send_hashes(struct fs_sync *s, const net_id *to, uint16_t type, uint8_t arg, uint32_t reqid,
                       const st_hash *h, size_t n)
{
    size_t hdr = type == FS_SYNC_HOLDQ ? 8 : 4;
    uint8_t *b = malloc(hdr + (size_t)LR_MIN(n, (size_t)SYNC_HASHES_PER_FRAME) * ST_HASH_LEN);
    if (!b)
        return -ENOMEM;
    int rc = 0;
    for (size_t off = 0; off < n && !rc;) {
        size_t k = LR_MIN(n - off, (size_t)SYNC_HASHES_PER_FRAME);
        memset(b, 0, hdr);
        b[0] = 1;
        b[1] = arg;
        if (type == FS_SYNC_HOLDQ)
            lr_put_le32(b + 4, reqid);
        memcpy(b + hdr, h + off, k * ST_HASH_LEN);
        rc = net_send_frame(s->net, to, type, b, hdr + k * ST_HASH_LEN);
        off += k;
    }
    free(b);
    return rc;
}

/* Tell every connected peer which chunks we gained and dropped: at most
 * once every SYNC_HAVE_EVERY_NS unless a full frame is waiting. Each HAVE
 * frame costs the receiver a write transaction over random holder and
 * chunkref pages; sent after every batch of a cold read, that was 12 % of
 * both daemons' CPU. Late news is safe: eviction asks holders again
 * (HOLDQ) before it drops anything. */
#define SYNC_HAVE_EVERY_NS 1000000000ull
static void flush_have(struct fs_sync *s, uint64_t now, int force)
{
    if (!force && s->have.n + s->dropped.n < SYNC_HASHES_PER_FRAME && now - s->last_have_ns < SYNC_HAVE_EVERY_NS)
        return;
    s->last_have_ns = now;
    for (int kind = 1; kind >= 0; kind--) {
        struct hashes *l = kind ? &s->have : &s->dropped;
        if (!l->n)
            continue;
        for (unsigned i = 0; i < s->npeers; i++)
            if (peer_up(&s->peers[i]))
                send_hashes(s, &s->peers[i].id, FS_SYNC_HAVE, (uint8_t)kind, 0, l->h, l->n);
        l->n = 0;
    }
}

/* End a transaction that recorded what peer p holds; logs a failure. */
static int holders_end(const struct peer *p, st_txn *t, int rc)
{
    char idstr[10];
    if ((rc = st_txn_end(t, rc)))
        lr_warn("sync: cannot record chunks held by peer %s: %s", net_id_short(&p->id, idstr), lr_strerror(rc));
    return rc;
}

static void handle_have(struct fs_sync *s, struct peer *p, const struct st_syncmsg *m)
{
    size_t n = m->n;
    const uint8_t *h = m->items;
    st_txn *t = NULL;
    int rc = st_txn_begin(s->st, ST_TXN_WRITE, &t);
    for (size_t i = 0; i < n && !rc; i++) {
        st_hash x;
        memcpy(x.b, h + i * ST_HASH_LEN, ST_HASH_LEN);
        rc = st_holder_set(t, &x, p->id.b, m->kind, NULL);
    }
    if (holders_end(p, t, rc) == 0) {
        s->holder_changes++;
        if (!m->kind)
            s->repl_full_ns = 0; /* copies lost: any file may be short now */
    }
}

/* Answer a HOLDQ: one byte per hash, 1 = held here, 2 = held but being
 * evicted here (do not count it), 0 = not held. */
static void handle_holdq(struct fs_sync *s, struct peer *p, const struct st_syncmsg *m)
{
    size_t n = m->n;
    const uint8_t *h = m->items;
    uint8_t *a = malloc(12 + n);
    st_txn *t;
    if (!a || st_txn_begin(s->st, ST_TXN_READ, &t)) {
        free(a);
        return; /* the asker times out and counts nothing */
    }
    a[0] = 1;
    a[1] = a[2] = a[3] = 0;
    lr_put_le32(a + 4, m->reqid);
    lr_put_le32(a + 8, (uint32_t)n);
    for (size_t i = 0; i < n; i++) {
        st_hash x;
        struct st_chunkref r;
        memcpy(x.b, h + i * ST_HASH_LEN, ST_HASH_LEN);
        uint8_t v = 0;
        if (st_chunk_info(t, &x, &r) == 0 && (r.flags & ST_CHUNK_LOCAL))
            v = hashes_has(&s->ev, &x) ? 2 : 1;
        a[12 + i] = v;
    }
    st_txn_abort(t);
    net_send_frame(s->net, &p->id, FS_SYNC_HOLDA, a, 12 + n);
    free(a);
}

static void req_drop(struct fs_sync *s, unsigned i)
{
    if (s->reqs[i].evict && s->ev_waiting)
        s->ev_waiting--;
    hashes_free(&s->reqs[i].hs);
    s->reqs[i] = s->reqs[--s->nreqs];
}

/* Ask peer p which of hs it holds; takes hs. */
static int ask(struct fs_sync *s, struct peer *p, struct hashes *hs, int evict)
{
    if (s->nreqs == SYNC_MAX_REQS) {
        hashes_free(hs);
        return -EAGAIN;
    }
    struct req *r = &s->reqs[s->nreqs];
    r->id = ++s->next_req;
    r->peer = p->id;
    r->evict = evict;
    r->deadline = lr_now_mono_ns() + SYNC_EVICT_WAIT_NS;
    r->hs = *hs;
    memset(hs, 0, sizeof(*hs));
    int rc = send_hashes(s, &p->id, FS_SYNC_HOLDQ, 0, r->id, r->hs.h, r->hs.n);
    if (rc) {
        hashes_free(&r->hs);
        return rc;
    }
    s->nreqs++;
    if (evict)
        s->ev_waiting++;
    return 0;
}

static void handle_holda(struct fs_sync *s, struct peer *p, const struct st_syncmsg *m)
{
    uint32_t id = m->reqid, n = m->n;
    unsigned i;
    for (i = 0; i < s->nreqs; i++)
        if (s->reqs[i].id == id && !memcmp(s->reqs[i].peer.b, p->id.b, NET_ID_LEN))
            break;
    if (i == s->nreqs)
        return; /* expired */
    struct req *r = &s->reqs[i];
    char idstr[10];
    if (n != r->hs.n) {
        lr_warn("sync: peer %s answered a hold query with a malformed frame", net_id_short(&p->id, idstr));
        req_drop(s, i);
        return;
    }
    st_txn *t = NULL;
    int rc = st_txn_begin(s->st, ST_TXN_WRITE, &t);
    for (size_t k = 0; k < n && !rc; k++) {
        uint8_t v = m->items[k];
        if (v == 2)
            continue; /* held but going: leave the record as it is */
        int changed;
        rc = st_holder_set(t, &r->hs.h[k], p->id.b, v == 1, &changed);
        if (changed)
            s->holder_changes++;
        if (changed && v != 1)
            s->repl_full_ns = 0; /* a copy we counted is gone: walk everything */
        if (v == 1 && r->evict) {
            st_hash *e = bsearch(&r->hs.h[k], s->ev.h, s->ev.n, sizeof(st_hash), hash_cmp);
            if (e)
                s->ev_yes[e - s->ev.h]++;
        }
    }
    holders_end(p, t, rc);
    req_drop(s, i);
}

struct collect { const uint8_t *dev; struct hashes hs; };

static int collect_held(const st_hash *h, const uint8_t *dev, void *arg)
{
    struct collect *c = arg;
    if (memcmp(dev, c->dev, ST_DEVICE_ID_LEN))
        return 0;
    return hashes_add(&c->hs, h);
}

/* A peer connected: ask it again about everything we recorded it holds
 * (it may have dropped chunks while we were apart). */
static void refresh_peer(struct fs_sync *s, struct peer *p)
{
    p->refresh_due = 0;
    st_txn *t;
    if (st_txn_begin(s->st, ST_TXN_READ, &t))
        return;
    struct collect c = { .dev = p->id.b };
    int rc = st_holder_foreach_all(t, collect_held, &c);
    st_txn_abort(t);
    for (size_t off = 0; rc == 0 && off < c.hs.n; off += SYNC_HASHES_PER_FRAME) {
        struct hashes part = { 0 };
        size_t k = LR_MIN(c.hs.n - off, (size_t)SYNC_HASHES_PER_FRAME);
        for (size_t i = 0; i < k; i++)
            hashes_add(&part, &c.hs.h[off + i]);
        rc = ask(s, p, &part, 0);
    }
    hashes_free(&c.hs);
}

/* ---- replication to `copies` peers ---------------------------------------- */

struct repl_scan {
    struct fs_sync *s;
    st_txn *t;
    unsigned need;
    int64_t count;
    uint64_t settled_before;  /* wall clock seconds */
    uint8_t (*fids)[16];
    size_t nfids;
    int under;
    struct inos *found;       /* the files found short of copies */
    size_t looked;            /* regular files examined */
};

static int repl_extent(uint64_t ino, const struct st_extent *e, void *arg)
{
    (void)ino;
    struct repl_scan *r = arg;
    struct st_chunkref c;
    if (st_chunk_info(r->t, &e->hash, &c) == 0 && (c.flags & ST_CHUNK_LOCAL) && c.peers < r->need) {
        r->under = 1;
        return 1;
    }
    return 0;
}

static int inos_add(struct inos *l, uint64_t ino)
{
    uint64_t *a = lr_grow(l->v, &l->cap, l->n, sizeof(*a), 256);
    if (!a)
        return -ENOMEM;
    l->v = a;
    l->v[l->n++] = ino;
    return 0;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static int repl_inode(const struct st_inode *in, void *arg)
{
    struct repl_scan *r = arg;
    if (!S_ISREG(in->mode) || in->nlink == 0 || in->size == 0)
        return 0;
    r->looked++;
    r->under = 0;
    int rc = st_extent_foreach(r->t, in->ino, 0, repl_extent, r);
    if (rc < 0)
        return rc;
    if (!r->under)
        return 0;
    r->count++;
    if ((rc = inos_add(r->found, in->ino)))
        return rc;
    if ((uint64_t)in->mtime.tv_sec <= r->settled_before && r->nfids < SYNC_REPL_FILES)
        memcpy(r->fids[r->nfids++], in->fid, 16);
    return 0;
}

/* Log records since the last scan: remember the files they name. */
struct repl_log {
    st_txn *t;
    uint64_t seq;
    struct inos *changed;
    int overflow;
};

static int repl_log_rec(uint64_t seq, const void *rec, size_t len, void *arg)
{
    struct repl_log *l = arg;
    l->seq = seq;
    if (l->overflow)
        return 0;
    uint8_t fids[4][16];
    int n = st_rep_log_fids(rec, len, fids);
    for (int i = 0; i < n; i++) {
        uint64_t ino;
        if (st_fid_lookup(l->t, fids[i], &ino) == 0 &&
            (l->changed->n >= SYNC_REPL_MAX_CHANGED || inos_add(l->changed, ino)))
            l->overflow = 1;
    }
    return 0;
}

/* Count files whose local data is known on fewer than `copies` peers and
 * ask up to `copies` connected peers to fetch the settled ones. Only the
 * files that changed since the last scan (from the log) and those that
 * were short of copies then are looked at; the whole store is walked at
 * the first scan, every SYNC_REPL_FULL_NS, and when too many files
 * changed to list. */
static void repl_tick(struct fs_sync *s, uint64_t now)
{
    if (s->o.copies <= 0 || now - s->last_repl_ns < SYNC_REPL_PERIOD_NS)
        return;
    s->last_repl_ns = now;
    pthread_mutex_lock(&s->mu);
    int64_t before = s->unreplicated;
    pthread_mutex_unlock(&s->mu);
    st_txn *t;
    if (st_txn_begin(s->st, ST_TXN_READ, &t))
        return;
    int full = !s->repl_full_ns || now - s->repl_full_ns >= SYNC_REPL_FULL_NS;
    struct inos changed = { 0 };
    struct repl_log lg = { .t = t, .seq = s->repl_seq, .changed = &changed, .overflow = full };
    st_log_foreach(t, s->repl_seq + 1, repl_log_rec, &lg);
    /* Skip the scan when nothing changed, unless files were missing
     * copies: then look again once files may have aged past push_after
     * (at most every max(push_after, 5 s), so a peer that keeps declining
     * does not cost a scan every 5 s). */
    int unchanged = lg.seq == s->repl_seq && s->repl_changes == s->holder_changes;
    uint64_t again = LR_MAX((uint64_t)s->o.push_after_s * 1000000000ull, SYNC_REPL_PERIOD_NS);
    if (!full && unchanged && (before == 0 || now - s->repl_walk_ns < again)) {
        st_txn_abort(t);
        free(changed.v);
        return;
    }
    s->repl_walk_ns = now;
    s->repl_seq = lg.seq;
    static uint8_t fids[SYNC_REPL_FILES][16];
    struct inos found = { 0 };
    struct repl_scan r = { .s = s, .t = t, .need = (unsigned)s->o.copies, .fids = fids, .found = &found,
                           .settled_before = lr_now_real_ns() / 1000000000ull - (uint64_t)s->o.push_after_s };
    int rc = 0;
    if (full || lg.overflow) {
        rc = st_inode_foreach(t, repl_inode, &r);
        if (!rc)
            s->repl_full_ns = now;
    } else {
        for (size_t i = 0; i < s->repl_under.n && !rc; i++)
            rc = inos_add(&changed, s->repl_under.v[i]);
        if (changed.n)
            qsort(changed.v, changed.n, sizeof(*changed.v), cmp_u64);
        for (size_t i = 0; i < changed.n && !rc; i++) {
            struct st_inode in;
            if (i > 0 && changed.v[i] == changed.v[i - 1])
                continue;
            int g = st_inode_get(t, changed.v[i], &in);
            rc = g == -ENOENT ? 0 : g ? g : repl_inode(&in, &r);
        }
    }
    st_txn_abort(t);
    free(changed.v);
    if (rc) {
        free(found.v);
        s->repl_full_ns = 0; /* do it all again next time */
        return;
    }
    free(s->repl_under.v);
    s->repl_under = found;
    s->repl_changes = s->holder_changes;
    pthread_mutex_lock(&s->mu);
    s->unreplicated = r.count;
    s->scan_files = r.looked;
    s->scan_whole = full || lg.overflow;
    pthread_mutex_unlock(&s->mu);
    if (!r.nfids)
        return;
    uint8_t *b = malloc(4 + r.nfids * 16);
    if (!b)
        return;
    b[0] = 1;
    b[1] = b[2] = b[3] = 0;
    memcpy(b + 4, fids, r.nfids * 16);
    /* When the last offer made no progress (no holder record changed
     * since), start one peer further, so a peer that declines (its cache
     * is full) does not keep the files from the others; while a peer is
     * fetching, keep offering to it. */
    if (s->repl_offer_changes == s->holder_changes)
        s->repl_rot++;
    s->repl_offer_changes = s->holder_changes;
    unsigned sent = 0;
    for (unsigned k = 0; k < s->npeers && sent < (unsigned)s->o.copies; k++) {
        struct peer *p = &s->peers[(s->repl_rot + k) % s->npeers];
        if (peer_up(p) && net_send_frame(s->net, &p->id, FS_SYNC_REPL, b, 4 + r.nfids * 16) == 0)
            sent++;
    }
    free(b);
}

static void handle_repl(struct fs_sync *s, struct peer *p, const struct st_syncmsg *m)
{
    char idstr[10];
    if (s->o.cache_quota) {
        struct st_usage u;
        if (st_usage(s->st, &u) == 0 && u.local_bytes >= s->o.cache_quota / 100 * SYNC_EVICT_LOW) {
            lr_debug("sync: peer %s asks for copies, but the cache is full", net_id_short(&p->id, idstr));
            return;
        }
    }
    st_txn *t;
    if (st_txn_begin(s->st, ST_TXN_READ, &t))
        return;
    for (size_t i = 0; i < m->n; i++) {
        uint64_t ino;
        if (st_fid_lookup(t, m->items + 16 * i, &ino))
            continue;
        /* What is here already, the peer learns now; the rest when the
         * background fetches store it. */
        struct st_span sp[256];
        struct st_inode in;
        if (st_inode_get(t, ino, &in) || !S_ISREG(in.mode))
            continue;
        for (uint64_t off = 0; off < in.size;) {
            size_t k = 0;
            if (st_file_read(t, ino, off, (size_t)LR_MIN(in.size - off, (uint64_t)SYNC_BG_WINDOW), sp,
                             LR_ARRAY_SIZE(sp), &k) || k == 0)
                break;
            for (size_t j = 0; j < k; j++) {
                off += sp[j].len;
                if (sp[j].kind == ST_SPAN_DATA &&
                    (!s->have.n || memcmp(s->have.h[s->have.n - 1].b, sp[j].hash.b, ST_HASH_LEN)))
                    hashes_add(&s->have, &sp[j].hash);
            }
        }
        bg_queue(s, ino);
    }
    st_txn_abort(t);
}

/* ---- eviction ------------------------------------------------------------- */

void fs_sync_touch(struct fs_sync *s, const st_hash *h)
{
    if (!s->o.cache_quota)
        return;
    pthread_mutex_lock(&s->mu);
    if (s->ntouch < SYNC_TOUCH_MAX &&
        (!s->ntouch || memcmp(s->touch[s->ntouch - 1].b, h->b, ST_HASH_LEN)))
        s->touch[s->ntouch++] = *h;
    pthread_mutex_unlock(&s->mu);
}

/* Record the chunk reads since the last call as uses now. */
static void flush_touches(struct fs_sync *s)
{
    static __thread st_hash tv[SYNC_TOUCH_MAX];
    pthread_mutex_lock(&s->mu);
    size_t n = s->ntouch;
    memcpy(tv, s->touch, n * sizeof(*tv));
    s->ntouch = 0;
    pthread_mutex_unlock(&s->mu);
    if (!n)
        return;
    st_txn *t;
    if (st_txn_begin(s->st, ST_TXN_WRITE, &t))
        return;
    uint64_t now = lr_now_real_ns() / 1000000000ull;
    int rc = 0;
    for (size_t i = 0; i < n && !rc; i++) {
        rc = st_chunk_touch(t, &tv[i], now);
        if (rc == -ENOENT)
            rc = 0;
    }
    st_txn_end(t, rc);
}

/* Chunks that must stay: those of open files and of pinned files and
 * directories (everything under a pinned directory). */
struct keep {
    st_txn *t;
    struct hashes hs;
    int err;
};

static int keep_extent(uint64_t ino, const struct st_extent *e, void *arg)
{
    (void)ino;
    struct keep *k = arg;
    return (k->err = hashes_add(&k->hs, &e->hash)) ? 1 : 0;
}

static int keep_tree(struct keep *k, uint64_t ino, int depth);

static int keep_child(const struct st_dirent *d, void *arg)
{
    struct keep *k = arg;
    if (d->type == DT_DIR)
        return keep_tree(k, d->child, 1);
    if (d->type == DT_REG)
        return st_extent_foreach(k->t, d->child, 0, keep_extent, k) < 0 || k->err;
    return 0;
}

static int keep_tree(struct keep *k, uint64_t ino, int depth)
{
    if (depth > 4096)
        return 0; /* not a tree: fsck's business */
    return st_dirent_foreach(k->t, ino, NULL, 0, keep_child, k) < 0 || k->err;
}

static int keep_pinned(const struct st_inode *in, void *arg)
{
    struct keep *k = arg;
    if (!(in->flags & ST_INODE_PINNED))
        return 0;
    if (S_ISDIR(in->mode))
        return keep_tree(k, in->ino, 0);
    if (S_ISREG(in->mode))
        return st_extent_foreach(k->t, in->ino, 0, keep_extent, k) < 0 || k->err;
    return 0;
}

static int build_keep(struct fs_sync *s, st_txn *t, struct hashes *out)
{
    struct keep k = { .t = t };
    int rc = st_inode_foreach(t, keep_pinned, &k);
    if (!rc && s->fs) {
        uint64_t *open;
        size_t n;
        if ((rc = fs_open_inodes(s->fs, &open, &n)) == 0) {
            for (size_t i = 0; i < n && !rc; i++)
                if (st_extent_foreach(t, open[i], 0, keep_extent, &k) < 0 || k.err)
                    rc = k.err ? k.err : -EIO;
            free(open);
        }
    }
    if (rc || k.err) {
        hashes_free(&k.hs);
        return rc ? rc : k.err;
    }
    hashes_sort(&k.hs);
    *out = k.hs;
    return 0;
}

struct cand { uint64_t last_use; uint32_t len; st_hash h; };
struct cands {
    const struct hashes *keep;
    unsigned need;
    struct cand *c;
    size_t n, cap;
};

static int cand_each(const st_hash *h, const struct st_chunkref *r, void *arg)
{
    struct cands *c = arg;
    if (!(r->flags & ST_CHUNK_LOCAL) || (r->flags & ST_CHUNK_PINNED) || r->peers < c->need ||
        hashes_has(c->keep, h))
        return 0;
    struct cand *a = lr_grow(c->c, &c->cap, c->n, sizeof(*a), 1024);
    if (!a)
        return -ENOMEM;
    c->c = a;
    c->c[c->n++] = (struct cand){ r->last_use, r->len, *h };
    return 0;
}

static int cand_cmp(const void *a, const void *b)
{
    const struct cand *x = a, *y = b;
    return x->last_use < y->last_use ? -1 : x->last_use > y->last_use;
}

static unsigned evict_need(const struct fs_sync *s)
{
    return s->o.copies > 1 ? (unsigned)s->o.copies : 1;
}

/* Start a round: pick the least recently used chunks that may go and
 * ask the peers recorded as holding them. */
static void evict_start(struct fs_sync *s, uint64_t need_bytes)
{
    st_txn *t;
    if (st_txn_begin(s->st, ST_TXN_READ, &t))
        return;
    struct hashes keep = { 0 };
    struct cands c = { .keep = &keep, .need = evict_need(s) };
    int rc = build_keep(s, t, &keep);
    if (!rc)
        rc = st_chunk_foreach(t, cand_each, &c);
    if (rc || !c.n) {
        if (!rc && !s->last_quota_warn) {
            lr_warn("sync: the cache is over its quota by %llu bytes, but no chunk may go: the rest is "
                    "pinned, open, or not yet known on %u peer(s)", (unsigned long long)need_bytes,
                    evict_need(s));
            s->last_quota_warn = 1;
        }
        goto out;
    }
    s->last_quota_warn = 0;
    qsort(c.c, c.n, sizeof(*c.c), cand_cmp);
    uint64_t sum = 0;
    for (size_t i = 0; i < c.n && sum < need_bytes && s->ev.n < SYNC_EVICT_BATCH; i++) {
        hashes_add(&s->ev, &c.c[i].h);
        sum += c.c[i].len;
    }
    hashes_sort(&s->ev);
    free(s->ev_yes);
    if (!(s->ev_yes = calloc(s->ev.n ? s->ev.n : 1, 1))) {
        hashes_free(&s->ev);
        goto out;
    }
    /* One HOLDQ per connected peer, naming the candidates it holds. */
    for (unsigned i = 0; i < s->npeers; i++) {
        struct peer *p = &s->peers[i];
        if (!peer_up(p))
            continue;
        struct hashes q = { 0 };
        for (size_t k = 0; k < s->ev.n; k++)
            if (st_holder_has(t, &s->ev.h[k], p->id.b) == 1)
                hashes_add(&q, &s->ev.h[k]);
        if (q.n)
            ask(s, p, &q, 1);
        else
            hashes_free(&q);
    }
    s->ev_deadline = lr_now_mono_ns() + SYNC_EVICT_WAIT_NS;
    if (!s->ev_waiting) {
        hashes_free(&s->ev); /* nobody to ask: try again later */
        free(s->ev_yes);
        s->ev_yes = NULL;
    }
out:
    st_txn_abort(t);
    hashes_free(&keep);
    free(c.c);
}

/* Answers are in (or late): drop what enough peers confirmed, unless it
 * became pinned or needed by an open file meanwhile. */
static void evict_finish(struct fs_sync *s)
{
    st_txn *t = NULL;
    struct hashes keep = { 0 };
    uint64_t chunks = 0, bytes = 0;
    unsigned need = evict_need(s);
    int rc = st_txn_begin(s->st, ST_TXN_WRITE, &t);
    if (!rc)
        rc = build_keep(s, t, &keep);
    size_t first = s->dropped.n;
    for (size_t i = 0; i < s->ev.n && !rc; i++) {
        struct st_chunkref r;
        if (s->ev_yes[i] < need || hashes_has(&keep, &s->ev.h[i]) ||
            st_chunk_info(t, &s->ev.h[i], &r) || !(r.flags & ST_CHUNK_LOCAL))
            continue;
        if ((rc = st_chunk_evict(t, &s->ev.h[i])))
            break;
        hashes_add(&s->dropped, &s->ev.h[i]);
        chunks++;
        bytes += r.len;
    }
    if (t)
        rc = st_txn_end(t, rc);
    if (rc) {
        lr_error("sync: evicting chunks failed: %s", lr_strerror(rc));
        s->dropped.n = first;
    } else if (chunks) {
        lr_info("sync: evicted %llu chunks (%llu bytes) held by peers", (unsigned long long)chunks,
                (unsigned long long)bytes);
        pthread_mutex_lock(&s->mu);
        s->evicted_chunks += chunks;
        s->evicted_bytes += bytes;
        pthread_mutex_unlock(&s->mu);
    }
    hashes_free(&keep);
    hashes_free(&s->ev);
    free(s->ev_yes);
    s->ev_yes = NULL;
    for (unsigned i = 0; i < s->nreqs;)
        if (s->reqs[i].evict)
            req_drop(s, i);
        else
            i++;
    s->ev_waiting = 0;
}

static void evict_tick(struct fs_sync *s, uint64_t now)
{
    /* expire unanswered queries */
    for (unsigned i = 0; i < s->nreqs;)
        if (now > s->reqs[i].deadline)
            req_drop(s, i);
        else
            i++;
    if (s->ev.n) {
        if (!s->ev_waiting || now > s->ev_deadline)
            evict_finish(s);
        return;
    }
    if (!s->o.cache_quota || now - s->last_evict_ns < SYNC_EVICT_PERIOD_NS)
        return;
    s->last_evict_ns = now;
    flush_touches(s);
    struct st_usage u;
    if (st_usage(s->st, &u))
        return;
    uint64_t low = s->o.cache_quota / 100 * SYNC_EVICT_LOW;
    if (u.local_bytes > s->o.cache_quota)
        evict_start(s, u.local_bytes - low);
}

void fs_sync_status(struct fs_sync *s, struct fs_sync_status *out)
{
    memset(out, 0, sizeof(*out));
    struct st_usage u;
    uint64_t cache = 0;
    if (st_usage(s->st, &u) == 0)
        cache = u.local_bytes;
    pthread_mutex_lock(&s->mu);
    out->cache_bytes = cache;
    out->cache_quota = s->o.cache_quota;
    out->copies = s->o.copies < 0 ? 0 : (unsigned)s->o.copies;
    out->unreplicated = s->o.copies > 0 ? s->unreplicated : 0;
    out->scan_files = s->scan_files;
    out->scan_whole = s->scan_whole;
    out->evicted_chunks = s->evicted_chunks;
    out->evicted_bytes = s->evicted_bytes;
    pthread_mutex_unlock(&s->mu);
}

/* ---- the thread --------------------------------------------------------- */

static void *sync_main(void *arg)
{
    struct fs_sync *s = arg;
    for (;;) {
        pthread_mutex_lock(&s->mu);
        sync_wait(s);
        if (s->stop) {
            pthread_mutex_unlock(&s->mu);
            break;
        }
        if (s->drain && !s->drained) {
            /* The daemon is stopping: chunks gained or dropped in the last
             * second go out now, not at the next connection's HOLDQ. */
            pthread_mutex_unlock(&s->mu);
            flush_have(s, lr_now_mono_ns(), 1);
            pthread_mutex_lock(&s->mu);
            s->drained = 1;
            pthread_cond_broadcast(&s->cv);
        }
        struct item *list = s->head;
        s->head = s->tail = NULL;
        s->kicked = s->again = 0;
        s->last_pass_ns = lr_now_mono_ns();
        pthread_mutex_unlock(&s->mu);

        struct item *chunks = NULL, **ctail = &chunks;
        while (list) {
            struct item *it = list;
            list = it->next;
            if (it->kind == IT_CHUNK || it->kind == IT_FAIL) {
                it->next = NULL;
                *ctail = it;
                ctail = &it->next;
                continue;
            }
            if (it->kind == IT_FRAME) {
                handle_frame(s, it);
            } else if (it->kind == IT_STATE) {
                struct peer *p = peer_find(s, &it->peer, 0);
                if (p) {
                    int up = it->state != NET_PEER_DOWN;
                    if (up && !p->connected)
                        p->hello_due = p->refresh_due = 1;
                    if (!up) {
                        p->streaming = 0;
                        p->seen_ns = 0;
                    }
                    p->connected = up;
                }
            }
            free(it);
        }
        if (chunks)
            handle_chunks(s, chunks);
        uint64_t now = lr_now_mono_ns();
        if (now - s->last_reload_ns > 1000000000ull) {
            reload_peers(s);
            s->last_reload_ns = now;
        }
        int more = 0;
        for (unsigned i = 0; i < s->npeers; i++) {
            struct peer *p = &s->peers[i];
            if (!p->known || !p->connected)
                continue;
            if (p->hello_due)
                send_hello(s, p);
            if (p->streaming && (!p->seen_ns || now - p->seen_ns >= SYNC_SEEN_NS))
                note_seen(s, p, now);
            if (p->streaming)
                more |= send_log(s, p);
            if (p->refresh_due)
                refresh_peer(s, p);
        }
        flush_have(s, now, 0);
        if (s->nbg)
            bg_step(s); /* arriving chunks wake us to start the next ones */
        evict_tick(s, now);
        repl_tick(s, now);
        /* A send pass stops after SYNC_BATCH_RECORDS: the rest at once.
         * (Local commits wake us through the store's log hook, and the
         * idle pass every SYNC_IDLE_MS looks at the log anyway.) */
        if (more)
            s->again = 1;
    }
    return NULL;
}

/* ---- life cycle --------------------------------------------------------- */

int fs_sync_new(st_store *st, struct fs *f, const struct fs_sync_opts *o, struct fs_sync **out)
{
    struct fs_sync *s = calloc(1, sizeof(*s));
    if (!s)
        return -ENOMEM;
    s->st = st;
    s->fs = f;
    s->o = *o;
    if (!s->o.fetch_timeout_ms)
        s->o.fetch_timeout_ms = 5000;
    if (s->o.copies < 0)
        s->o.copies = FS_SYNC_COPIES_DEFAULT;
    if (s->o.push_after_s < 0)
        s->o.push_after_s = FS_SYNC_PUSH_AFTER_DEFAULT;
    s->unreplicated = -1;
    pthread_mutex_init(&s->mu, NULL);
    pthread_cond_init(&s->cv, NULL);
    struct st_meta m;
    st_meta(st, &m);
    struct net_config c = { 0 };
    c.identity_dir = st_dir(st);
    for (int i = 0; i < NET_MAX_LISTEN; i++)
        c.listen[i] = o->listen[i];
    memcpy(c.volume, m.volume, NET_VOLUME_LEN);
    /* A pool of connections per peer, each with fewer requests in flight
     * than net's default: the same 64 chunks outstanding, but a random
     * loss shrinks one connection's window, not the whole transfer's
     * (docs/PERFORMANCE.md, "Random loss and BBR"). The pool grows only
     * while every connection is full, so light use keeps one; pools take
     * at most half of max_conns, so every peer still gets its first. */
    c.conns_per_peer = SYNC_CONNS_PER_PEER;
    c.max_inflight = SYNC_INFLIGHT_PER_CONN;
    c.max_conns = 2 * SYNC_MAX_PEERS;
    c.get_chunk = on_get_chunk;
    c.on_frame = on_frame;
    c.on_peer_state = on_peer_state;
    c.ctx = s;
    int rc = net_node_new(&c, &s->net);
    if (rc) {
        fs_sync_free(s);
        return rc;
    }
    *out = s;
    return 0;
}

void fs_sync_set_fs(struct fs_sync *s, struct fs *f) { s->fs = f; }
struct net_node *fs_sync_net(struct fs_sync *s) { return s->net; }

int fs_sync_start(struct fs_sync *s)
{
    if (s->o.replicate) {
        st_txn *t;
        if (st_txn_begin(s->st, ST_TXN_READ, &t) == 0) {
            st_inode_foreach(t, bg_scan_one, s);
            st_txn_abort(t);
        }
    }
    reload_peers(s);
    s->last_reload_ns = lr_now_mono_ns();
    int rc = net_node_start(s->net);
    if (rc)
        return rc;
    if ((rc = -pthread_create(&s->thr, NULL, sync_main, s)))
        return rc;
    pthread_setname_np(s->thr, "landro-sync");
    s->running = 1;
    st_set_log_hook(s->st, on_log_commit, s);
    return 0;
}

void fs_sync_stop(struct fs_sync *s)
{
    if (!s)
        return;
    if (s->running)
        st_set_log_hook(s->st, NULL, NULL);
    if (s->running && s->net) {
        /* Let the thread send the HAVE news it still owes (bounded: a
         * second at most) before the network goes; net_node_stop writes
         * queued frames out before it closes the connections. */
        struct timespec dl;
        lr_deadline_in(&dl, 1000000000ull);
        pthread_mutex_lock(&s->mu);
        s->drain = 1;
        pthread_cond_broadcast(&s->cv);
        while (!s->drained)
            if (pthread_cond_timedwait(&s->cv, &s->mu, &dl) == ETIMEDOUT)
                break;
        pthread_mutex_unlock(&s->mu);
    }
    if (s->net)
        net_node_stop(s->net); /* fails pending fetches: their items get queued */
    if (s->running) {
        pthread_mutex_lock(&s->mu);
        s->stop = 1;
        pthread_cond_signal(&s->cv);
        pthread_mutex_unlock(&s->mu);
        pthread_join(s->thr, NULL);
        s->running = 0;
    }
    /* Answer readers whose fetches ended after the thread did. */
    struct item *list = s->head;
    s->head = s->tail = NULL;
    while (list) {
        struct item *it = list;
        list = it->next;
        item_free(s, it);
    }
    pthread_mutex_lock(&s->mu);
    size_t n = s->nfl;
    struct inflight *fl = s->fl;
    s->fl = NULL;
    s->nfl = s->flcap = 0;
    pthread_mutex_unlock(&s->mu);
    for (size_t i = 0; i < n; i++)
        waiters_done(fl[i].w, -ECANCELED);
    free(fl);
}

void fs_sync_free(struct fs_sync *s)
{
    if (!s)
        return;
    fs_sync_stop(s);
    net_node_free(s->net);
    for (unsigned i = 0; i < s->npeers; i++)
        free(s->peers[i].rx);
    for (size_t i = 0; i < s->npend; i++)
        free(s->pend[i].rec);
    free(s->pend);
    free(s->inv);
    free(s->orph);
    free(s->bg);
    hashes_free(&s->have);
    hashes_free(&s->dropped);
    hashes_free(&s->ev);
    free(s->ev_yes);
    free(s->repl_under.v);
    while (s->nreqs)
        req_drop(s, 0);
    pthread_mutex_destroy(&s->mu);
    pthread_cond_destroy(&s->cv);
    free(s);
}
