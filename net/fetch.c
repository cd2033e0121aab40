/*
 * fetch.c - chunk fetch scheduling: pick the healthiest eligible peer,
 * bound each attempt, fail over on not-found, wrong bytes, timeout or a
 * lost connection, and call the fetch callback exactly once. Network
 * thread only, except net_fetch and net_fetch_sync.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "frame.h"
#include "net_int.h"


void net_fetch_detach(struct net_fetch *f)
{
    struct net_conn *c = f->conn;
    if (!c)
        return;
    for (struct net_fetch **pp = &c->inflight; *pp; pp = &(*pp)->cnext)
        if (*pp == f) {
            *pp = f->cnext;
            break;
        }
    for (struct net_stream *s = c->rxs; s; s = s->next)
        if (s->fetch == f)
            s->fetch = NULL;
    c->ninflight--;
    if (f->peer)
        f->peer->inflight--;
    f->conn = NULL;
    f->peer = NULL;
    f->cnext = NULL;
}

void net_fetch_mark_tried(struct net_fetch *f, struct net_peer *p)
{
    net_fetch_mark_tried_id(f, &p->id);
}

void net_fetch_mark_tried_id(struct net_fetch *f, const net_id *id)
{
    if (f->ntried == f->tried_cap) {
        unsigned cap = f->tried_cap ? f->tried_cap * 2 : 4;
        net_id *t = realloc(f->tried, cap * sizeof(*t));
        if (!t)
            return;
        f->tried = t;
        f->tried_cap = cap;
    }
    f->tried[f->ntried++] = *id;
}

static int fetch_tried(const struct net_fetch *f, const struct net_peer *p)
{
    for (unsigned i = 0; i < f->ntried; i++)
        if (memcmp(&f->tried[i], &p->id, sizeof(net_id)) == 0)
            return 1;
    return 0;
}

/* Take f off n->fetches (and its connection). */
void net_fetch_unlink(struct net_node *n, struct net_fetch *f)
{
    net_fetch_detach(f);
    if (f->prev)
        f->prev->next = f->next;
    else
        n->fetches = f->next;
    if (f->next)
        f->next->prev = f->prev;
    f->next = f->prev = NULL;
}

void net_fetch_finish(struct net_node *n, struct net_fetch *f, int err, const uint8_t *data, size_t len,
                         const net_id *from)
{
    net_fetch_unlink(n, f);
    f->cb(f->ctx, err, &f->h, data, len, from);
    free(f->peers);
    free(f->tried);
    free(f);
}

static int fetch_error(const struct net_fetch *f)
{
    if (f->ntimeout || f->nlost || f->ntried == 0)
        return LR_ETIMEDOUT;
    if (f->nhash)
        return LR_EHASH;
    return -ENOENT;
}

void net_node_attempt_failed(struct net_fetch *f, int why)
{
    struct net_conn *c = f->conn;
    if (!c)
        return;
    struct net_node *n = c->node;
    struct net_peer *p = f->peer;
    char hex[65];
    lr_debug("chunk %.16s from %s failed: %s", st_hash_hex(&f->h, hex), c->name, lr_strerror(why));
    net_fetch_detach(f);
    if (p) {
        net_fetch_mark_tried(f, p);
        net_peer_fail(p, why == LR_ETIMEDOUT);
    }
    if (why == LR_EHASH)
        f->nhash++;
    else if (why == LR_ETIMEDOUT)
        f->ntimeout++;
    else
        f->nlost++;
    net_fetch_dispatch(n, f);
}

void net_node_on_notfound(struct net_conn *c, uint32_t req, const st_hash *h)
{
    for (struct net_fetch *f = c->inflight; f; f = f->cnext)
        if (f->req == req) {
            struct net_peer *p = f->peer;
            net_fetch_detach(f);
            if (p) {
                net_fetch_mark_tried(f, p);
                p->win_ok[0]++; /* a clean answer is not a failure */
                p->consec_fail = 0;
            }
            f->nnotfound++;
            net_fetch_dispatch(c->node, f);
            return;
        }
}

void net_node_on_chunk(struct net_conn *c, struct net_fetch *f, uint8_t *buf, size_t len)
{
    struct net_node *n = c->node;
    struct net_peer *p = f->peer;
    net_id from = p->id;
    if (net_verify_room(n) && net_verify_submit(n, f, &from, buf, len) == 0) {
        net_fetch_dispatch_waiting(n); /* f's connection has a free slot */
        return;
    }
    if (!st_hash_verify(buf, len, &f->h)) {
        char hex[65];
        lr_warn("peer %s sent %zu bytes that do not hash to chunk %s", c->name, len, st_hash_hex(&f->h, hex));
        net_buf_put(n, buf, len);
        net_node_attempt_failed(f, LR_EHASH);
        return;
    }
    p->chunks_ok++;
    p->bytes_rx += len;
    p->consec_fail = 0;
    p->win_ok[0]++;
    net_fetch_finish(n, f, 0, buf, len, &from);
    net_buf_put(n, buf, len);
    net_fetch_dispatch_waiting(n);
}

static int in_filter(const struct net_fetch *f, const struct net_peer *p)
{
    if (!f->peers)
        return 1;
    for (unsigned i = 0; i < f->npeers; i++)
        if (memcmp(&f->peers[i], &p->id, sizeof(net_id)) == 0)
            return 1;
    return 0;
}

/* 1 if a peer f may still ask is unconnected but lost its connections
 * (or was added) less than one attempt's time ago: worth waiting for. */
static int candidate_may_connect(struct net_node *n, struct net_fetch *f, uint64_t now)
{
    uint64_t grace = (uint64_t)n->cfg.attempt_ms * 1000000ull;
    for (struct net_peer *p = n->peers; p; p = p->next)
        if (!p->nestab && in_filter(f, p) && !fetch_tried(f, p) && now - p->down_since_ns < grace)
            return 1;
    return 0;
}

/* Start the next attempt of f, finish it, or leave it waiting. */
void net_fetch_dispatch(struct net_node *n, struct net_fetch *f)
{
    if (f->conn)
        return;
    uint64_t now = net_now();
    if (now >= f->deadline_ns) {
        net_fetch_finish(n, f, fetch_error(f), NULL, 0, NULL);
        return;
    }
    struct net_conn *best = NULL;
    struct net_peer *bestp = NULL;
    uint64_t best_rtt = 0;
    int busy = 0;
    unsigned slots = n->cfg.max_inflight + (f->urgent ? NET_URGENT_EXTRA : 0);
    for (struct net_peer *p = n->peers; p; p = p->next) {
        if (!p->nestab || !in_filter(f, p) || fetch_tried(f, p))
            continue;
        struct net_conn *pick = NULL;
        for (struct net_conn *c = n->conns; c; c = c->next)
            if (c->peer == p && c->established && !c->want_close &&
                c->ninflight < slots && (!pick || c->ninflight < pick->ninflight))
                pick = c;
        if (!pick) {
            busy = 1;
            continue;
        }
        uint64_t rtt = p->ping_rtt_us + 1000ull * pick->ninflight;
        if (!best || p->health.state > bestp->health.state ||
            (p->health.state == bestp->health.state && rtt < best_rtt)) {
            best = pick;
            bestp = p;
            best_rtt = rtt;
        }
    }
    if (best) {
        f->req = ++n->next_req;
        uint32_t rf = (f->relay_round ? NET_REQ_RELAY : 0) | (f->urgent ? NET_REQ_URGENT : 0);
        if (net_conn_send_req(best, f->req, &f->h, rf) != 0) {
            net_fetch_finish(n, f, -ENOMEM, NULL, 0, NULL);
            return;
        }
        f->conn = best;
        f->peer = bestp;
        f->cnext = best->inflight;
        best->inflight = f;
        best->ninflight++;
        best->last_req_ns = now;
        bestp->inflight++;
        uint64_t at = now + (uint64_t)n->cfg.attempt_ms * 1000000ull;
        f->attempt_deadline_ns = at < f->deadline_ns ? at : f->deadline_ns;
        return;
    }
    if (!busy && f->ntried > 0 && !f->direct && !f->relay_round && f->nnotfound == f->ntried) {
        /* Every peer we know said it does not hold the chunk: ask them
         * again, this time to fetch it from their own peers (a peer we
         * do not know may have it: C knows B, B knows A). */
        f->relay_round = 1;
        f->ntried = 0;
        f->nnotfound = 0;
        net_fetch_dispatch(n, f);
        return;
    }
    if (!busy && f->ntried > 0) {
        net_fetch_finish(n, f, fetch_error(f), NULL, 0, NULL);
        return;
    }
    if (!busy && !candidate_may_connect(n, f, now)) {
        /* Every peer that could answer has been unreachable for longer
         * than an attempt: fail now rather than wait another attempt on
         * every read (a cat of a file whose only holder is gone took
         * twice the bound). */
        net_fetch_finish(n, f, LR_ETIMEDOUT, NULL, 0, NULL);
        return;
    }
    /* Wait for a slot (as long as the deadline allows), or for a peer to
     * connect (one attempt's time at most). */
    if (busy)
        f->idle_since_ns = 0;
    else if (!f->idle_since_ns)
        f->idle_since_ns = now;
    else if (now - f->idle_since_ns >= (uint64_t)n->cfg.attempt_ms * 1000000ull)
        net_fetch_finish(n, f, LR_ETIMEDOUT, NULL, 0, NULL);
}

void net_fetch_dispatch_waiting(struct net_node *n)
{
    struct net_fetch *f = n->fetches, *next;
    for (; f; f = next) {
        next = f->next;
        if (!f->conn)
            net_fetch_dispatch(n, f);
        /* dispatch may free f, never another fetch */
    }
}

/* A connection went away: its requests fail over, its peer may go Down. */
void net_fetch_add(struct net_node *n, struct net_fetch *f)
{
    f->prev = NULL;
    f->next = n->fetches;
    if (n->fetches)
        n->fetches->prev = f;
    n->fetches = f;
    net_fetch_dispatch(n, f);
}

struct sync_fetch {
    pthread_mutex_t m;
    pthread_cond_t cv;
    int done, err;
    void *buf;
    size_t cap, len;
};

static void sync_cb(void *ctx, int err, const st_hash *h, const uint8_t *data, size_t len, const net_id *from)
{
    struct sync_fetch *s = ctx;
    pthread_mutex_lock(&s->m);
    if (err == 0 && len > s->cap)
        err = -EOVERFLOW;
    if (err == 0)
        memcpy(s->buf, data, len);
    s->err = err;
    s->len = len;
    s->done = 1;
    pthread_cond_signal(&s->cv);
    pthread_mutex_unlock(&s->m);
}

int net_fetch_sync(struct net_node *n, const st_hash *h, const net_id *peers, unsigned npeers,
                   unsigned timeout_ms, void *buf, size_t cap, size_t *len)
{
    if (!n->started || n->stopped)
        return -ENOTCONN; /* nobody would ever answer: do not block */
    if (pthread_equal(pthread_self(), n->thread) || net_on_verifier_thread())
        return -EDEADLK;
    struct sync_fetch s = { .buf = buf, .cap = cap };
    pthread_mutex_init(&s.m, NULL);
    pthread_cond_init(&s.cv, NULL);
    int rc = net_fetch(n, h, peers, npeers, timeout_ms, sync_cb, &s);
    if (rc == 0) {
        pthread_mutex_lock(&s.m);
        while (!s.done)
            pthread_cond_wait(&s.cv, &s.m);
        pthread_mutex_unlock(&s.m);
        rc = s.err;
        if (rc == 0 && len)
            *len = s.len;
    }
    pthread_mutex_destroy(&s.m);
    pthread_cond_destroy(&s.cv);
    return rc;
}

