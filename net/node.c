/*
 * node.c - the network thread and the node's API: lifecycle, the command
 * queue and its eventfd wake-up, trusted peers and their connection pool
 * (dialling with backoff, idle close), pings and health ticks, and the
 * stats snapshot. See net.h for the contract; udp.c does the socket side,
 * fetch.c the chunk fetches, conn.c each QUIC connection.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <event2/event.h>
#include <fcntl.h>
#include <netinet/udp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/random.h>
#include <sys/resource.h>
#include <unistd.h>

#include "net_int.h"

#define TICK_MS 50
enum { CMD_PEER_ADD = 1, CMD_PEER_REMOVE, CMD_FETCH, CMD_FRAME, CMD_RAW, CMD_WAKE, CMD_STOP };

struct net_cmd {
    struct net_cmd *next;
    int op;
    net_id id;
    struct sockaddr_storage addrs[NET_MAX_ADDRS];
    socklen_t alen[NET_MAX_ADDRS];
    unsigned naddrs;
    struct net_fetch *fetch;
    uint16_t type;
    size_t len;
    uint8_t payload[];
};
/* ---- peers ---------------------------------------------------------------- */

struct net_peer *net_node_find_peer(struct net_node *n, const net_id *id)
{
    for (struct net_peer *p = n->peers; p; p = p->next)
        if (memcmp(&p->id, id, sizeof(*id)) == 0)
            return p;
    return NULL;
}

void net_peer_fail(struct net_peer *p, int timeout)
{
    if (timeout)
        p->timeouts++;
    else
        p->errors++;
    p->consec_fail++;
    p->win_fail[0]++;
}

void net_node_peer_error(struct net_peer *p)
{
    if (p)
        net_peer_fail(p, 0);
}

static uint64_t jitter(uint64_t ns)
{
    uint32_t r;
    if (getrandom(&r, sizeof(r), 0) != sizeof(r))
        r = 0;
    /* +-25% */
    return ns - ns / 4 + (ns / 2) * (r % 1000) / 1000;
}

static void peer_backoff(struct net_peer *p)
{
    unsigned k = p->fails < 7 ? p->fails : 7;
    uint64_t d = 250000000ull << k; /* 250 ms doubling, capped at 32 s */
    p->next_dial_ns = net_now() + jitter(d);
}

void net_node_conn_up(struct net_conn *c)
{
    struct net_node *n = c->node;
    struct net_peer *p = c->peer;
    p->nestab++;
    p->fails = 0;
    p->last_pong_ns = net_now();
    char id[NET_ID_STR_LEN];
    lr_info("connected to peer %s (%s, %s)", net_id_format(&p->id, id), c->name,
            c->is_client ? "outgoing" : "incoming");
    if (p->health.state == NET_PEER_DOWN) {
        p->health.state = NET_PEER_HEALTHY;
        p->health.better_ticks = 0;
        if (n->cfg.on_peer_state)
            n->cfg.on_peer_state(n->cfg.ctx, &p->id, p->health.state);
    }
    net_conn_ping(c);
    net_fetch_dispatch_waiting(n);
}

void net_node_on_pong(struct net_conn *c, uint64_t rtt_ns)
{
    struct net_peer *p = c->peer;
    uint64_t us = rtt_ns / 1000;
    p->ping_rtt_us = p->ping_rtt_us ? (p->ping_rtt_us * 7 + us) / 8 : us;
    p->last_pong_ns = net_now();
}

void net_node_conn_gone(struct net_conn *c)
{
    struct net_node *n = c->node;
    struct net_peer *p = c->peer;
    /* The requests fail over. While the peer keeps another connection
     * (a pool's), it is no failed peer: they may go to that one. */
    int siblings = p && p->nestab > (c->established ? 1u : 0u);
    while (c->inflight) {
        struct net_fetch *f = c->inflight;
        struct net_peer *fp = f->peer;
        net_fetch_detach(f);
        if (fp && !(siblings && fp == p)) {
            net_fetch_mark_tried(f, fp);
            net_peer_fail(fp, 0);
        }
        f->nlost++;
    }
    if (p) {
        p->nconns--;
        if (c->established) {
            if (--p->nestab == 0)
                p->down_since_ns = net_now();
            p->next_dial_ns = net_now() + jitter(200000000ull);
        } else if (c->is_client) {
            p->fails++;
            peer_backoff(p);
        }
        if (p->nestab == 0 && p->health.state != NET_PEER_DOWN) {
            p->health.state = NET_PEER_DOWN;
            char id[NET_ID_STR_LEN];
            lr_info("peer %s is down", net_id_format(&p->id, id));
            if (n->cfg.on_peer_state)
                n->cfg.on_peer_state(n->cfg.ctx, &p->id, NET_PEER_DOWN);
        }
    }
    /* dispatch after the connection is gone from every list */
}

void net_node_flush(struct net_node *n)
{
    for (int round = 0; round < 4; round++) {
        int again = 0;
        struct net_conn *c = n->conns, *next;
        for (; c; c = next) {
            next = c->next;
            if (c->want_close) {
                net_conn_close(c);
                again = 1;
                next = n->conns; /* the list changed under us */
                continue;
            }
            if (c->dirty) {
                c->dirty = 0;
                net_conn_write(c);
                if (c->want_close)
                    again = 1;
            }
        }
        net_fetch_dispatch_waiting(n);
        for (c = n->conns; c; c = c->next)
            if (c->dirty || c->want_close)
                again = 1;
        if (!again)
            break;
    }
}

/* ---- commands ------------------------------------------------------------------ */

static int push_cmd(struct net_node *n, struct net_cmd *cmd)
{
    pthread_mutex_lock(&n->lock);
    if (n->stopping) {
        pthread_mutex_unlock(&n->lock);
        return -ESHUTDOWN;
    }
    cmd->next = NULL;
    /* wake_cb reads the eventfd before it takes the queue: a queue that
     * is not empty already has a wake-up coming */
    int was_empty = n->cmd_head == NULL;
    if (n->cmd_tail)
        n->cmd_tail->next = cmd;
    else
        n->cmd_head = cmd;
    n->cmd_tail = cmd;
    pthread_mutex_unlock(&n->lock);
    uint64_t one = 1;
    if (was_empty && write(n->efd, &one, sizeof(one)) < 0 && errno != EAGAIN)
        lr_warn("cannot wake network thread: %s", strerror(errno));
    return 0;
}

static void peer_add(struct net_node *n, struct net_cmd *cmd)
{
    struct net_peer *p = net_node_find_peer(n, &cmd->id);
    if (!p) {
        p = calloc(1, sizeof(*p));
        if (!p)
            return;
        p->id = cmd->id;
        p->next = n->peers;
        p->win_start_ns = p->down_since_ns = net_now();
        n->peers = p;
    }
    p->naddrs = cmd->naddrs;
    for (unsigned i = 0; i < cmd->naddrs; i++) {
        p->addrs[i] = cmd->addrs[i];
        p->alen[i] = cmd->alen[i];
    }
    p->next_addr = 0;
    p->fails = 0;
    p->next_dial_ns = 0;
}

static void peer_remove(struct net_node *n, const net_id *id)
{
    for (struct net_peer **pp = &n->peers; *pp; pp = &(*pp)->next) {
        struct net_peer *p = *pp;
        if (memcmp(&p->id, id, sizeof(*id)) != 0)
            continue;
        for (struct net_conn *c = n->conns; c; c = c->next)
            if (c->peer == p)
                net_conn_want_close(c, NET_APPERR_REFUSED, "peer removed");
        /* close now so no connection points at p */
        net_node_flush(n);
        for (struct net_conn *c = n->conns; c; c = c->next)
            if (c->peer == p)
                c->peer = NULL;
        *pp = p->next;
        free(p);
        return;
    }
}

static void do_stop(struct net_node *n)
{
    /* Frames queued before the stop (a sync layer's last news) go out
     * first, as far as flow control allows: a peer reads them before the
     * CONNECTION_CLOSE that follows, and nothing waits for them. */
    net_node_flush(n);
    for (struct net_conn *c = n->conns; c; c = c->next)
        net_conn_want_close(c, NET_APPERR_SHUTDOWN, "shutdown");
    while (n->conns)
        net_conn_close(n->conns);
    while (n->fetches)
        net_fetch_finish(n, n->fetches, -ECANCELED, NULL, 0, NULL);
    event_base_loopbreak(n->base);
}

static void wake_cb(evutil_socket_t fd, short what, void *arg)
{
    struct net_node *n = arg;
    uint64_t v;
    if (read(n->efd, &v, sizeof(v)) < 0 && errno != EAGAIN)
        return;
    net_verify_drain(n);
    pthread_mutex_lock(&n->lock);
    struct net_cmd *cmd = n->cmd_head;
    n->cmd_head = n->cmd_tail = NULL;
    pthread_mutex_unlock(&n->lock);
    int stop = 0;
    while (cmd) {
        struct net_cmd *next = cmd->next;
        switch (cmd->op) {
        case CMD_PEER_ADD: peer_add(n, cmd); break;
        case CMD_PEER_REMOVE: peer_remove(n, &cmd->id); break;
        case CMD_FETCH: net_fetch_add(n, cmd->fetch); break;
        case CMD_WAKE: {
            st_hash h;
            memcpy(h.b, cmd->payload, ST_HASH_LEN);
            net_conn_unpark(n, &h);
            break;
        }
        case CMD_FRAME:
        case CMD_RAW: {
            struct net_peer *p = net_node_find_peer(n, &cmd->id);
            struct net_conn *c = NULL;
            for (c = n->conns; c && p; c = c->next)
                if (c->peer == p && c->established && !c->want_close)
                    break;
            int rc = !c ? -ENOTCONN
                     : cmd->op == CMD_RAW ? net_conn_send_raw(c, cmd->payload, cmd->len)
                                          : net_conn_send_frame(c, cmd->type, cmd->payload, cmd->len);
            if (rc != 0) {
                char id[10];
                lr_warn("dropping frame type 0x%x for peer %s: not connected", cmd->type,
                        net_id_short(&cmd->id, id));
            }
            break;
        }
        case CMD_STOP: stop = 1; break;
        }
        free(cmd);
        cmd = next;
    }
    if (stop) {
        do_stop(n);
        return;
    }
    net_node_flush(n);
}

/* ---- tick: dial, ping, health, timeouts, stats ---------------------------------- */

static void update_stats(struct net_node *n)
{
    unsigned np = 0;
    for (struct net_peer *p = n->peers; p; p = p->next)
        np++;
    struct net_peer_stats *st = calloc(np ? np : 1, sizeof(*st));
    if (!st)
        return;
    uint64_t now = net_now();
    unsigned i = 0;
    for (struct net_peer *p = n->peers; p; p = p->next, i++) {
        struct net_peer_stats *s = &st[i];
        s->id = p->id;
        s->state = p->health.state;
        s->conns = p->nestab;
        s->ping_rtt_us = p->ping_rtt_us;
        /* kept after the peer goes down: "last seen" */
        s->last_pong_age_ms = p->last_pong_ns ? (now - p->last_pong_ns) / 1000000 : UINT64_MAX;
        s->chunks_ok = p->chunks_ok;
        s->bytes_rx = p->bytes_rx;
        s->chunks_tx = p->chunks_tx;
        s->bytes_tx = p->bytes_tx;
        /* Rates: the bytes since the last sample (>= 200 ms ago), smoothed
         * over about a second (EWMA, weight 1/4 per sample). */
        if (!p->rate_ns) {
            p->rate_ns = now;
            p->rate_rx = p->bytes_rx;
            p->rate_tx = p->bytes_tx;
        } else if (now - p->rate_ns >= 200000000ull) {
            double dt = (double)(now - p->rate_ns) / 1e9;
            double rx = (double)(p->bytes_rx - p->rate_rx) / dt, tx = (double)(p->bytes_tx - p->rate_tx) / dt;
            p->rx_bps = (uint64_t)(0.75 * (double)p->rx_bps + 0.25 * rx);
            p->tx_bps = (uint64_t)(0.75 * (double)p->tx_bps + 0.25 * tx);
            p->rate_ns = now;
            p->rate_rx = p->bytes_rx;
            p->rate_tx = p->bytes_tx;
        }
        s->rx_bps = p->rx_bps;
        s->tx_bps = p->tx_bps;
        s->timeouts = p->timeouts;
        s->errors = p->errors;
        s->inflight = p->inflight;
        s->reconnects = p->dials;
        if (p->last_error[0]) {
            memcpy(s->last_error, p->last_error, sizeof(s->last_error));
            s->last_error_age_ms = (now - p->last_error_ns) / 1000000;
        }
        struct net_conn *best = NULL;
        for (struct net_conn *c = n->conns; c; c = c->next)
            if (c->peer == p && c->established && (!best || c->ninflight < best->ninflight))
                best = c;
        if (best) {
            net_conn_info(best, &s->srtt_us, &s->rttvar_us, &s->min_rtt_us, &s->cwnd, &s->bytes_in_flight);
            net_fmt_addr((struct sockaddr *)&best->remote, s->addr, sizeof(s->addr));
        } else if (p->naddrs)
            net_fmt_addr((struct sockaddr *)&p->addrs[0], s->addr, sizeof(s->addr));
    }
    pthread_mutex_lock(&n->lock);
    free(n->stats);
    n->stats = st;
    n->nstats = np;
    pthread_mutex_unlock(&n->lock);
}

static void health_tick(struct net_node *n, uint64_t now)
{
    for (struct net_peer *p = n->peers; p; p = p->next) {
        if (now - p->win_start_ns > (uint64_t)NET_HEALTH_WINDOW_MS * 1000000ull) {
            p->win_fail[1] = p->win_fail[0];
            p->win_ok[1] = p->win_ok[0];
            p->win_fail[0] = p->win_ok[0] = 0;
            p->win_start_ns = now;
        }
        struct net_health_in in = { .connected = p->nestab > 0,
                                    .ping_rtt_us = p->ping_rtt_us,
                                    .pong_age_ms = p->nestab ? (now - p->last_pong_ns) / 1000000 : 0,
                                    .ping_period_ms = n->cfg.ping_ms,
                                    .consec_fail = p->consec_fail,
                                    .window_fail = p->win_fail[0] + p->win_fail[1],
                                    .window_ok = p->win_ok[0] + p->win_ok[1] };
        for (struct net_conn *c = n->conns; c; c = c->next)
            if (c->peer == p && c->established) {
                uint64_t srtt, var, minr, cwnd, infl;
                net_conn_info(c, &srtt, &var, &minr, &cwnd, &infl);
                in.srtt_us = srtt;
                in.rttvar_us = var;
                break;
            }
        enum net_peer_state before = p->health.state;
        if (net_health_step(&p->health, net_health_classify(&in))) {
            char id[NET_ID_STR_LEN];
            lr_info("peer %s: %s -> %s", net_id_format(&p->id, id), net_peer_state_name(before),
                    net_peer_state_name(p->health.state));
            if (n->cfg.on_peer_state)
                n->cfg.on_peer_state(n->cfg.ctx, &p->id, p->health.state);
        }
    }
}

static void tick_cb(evutil_socket_t fd, short what, void *arg)
{
    struct net_node *n = arg;
    uint64_t now = net_now();
    /* relayed requests parked longer than half an attempt: answer them
     * (not found, unless the chunk came) before the asker gives up on us */
    net_conn_unpark_old(n, now, (uint64_t)n->cfg.attempt_ms * 500000ull);
    /* Request attempts that ran out of time. An attempt times out only
     * when its connection also delivered no response bytes for as long:
     * on a slow but live link (1.9 MB/s once BBR's window shrank under
     * random loss) a request queued behind 63 others waits longer than
     * attempt_ms, and failing it made a whole transfer fail "no peer
     * answered in time" while the peer was answering. The fetch's own
     * deadline moves with it: on a link slower than the requests queued
     * on it (300 kB/s, 8 MiB of read-ahead) read-ahead fetches gave up
     * after timeout_ms, and the bytes of each, mostly sent anyway, were
     * thrown away and asked for again: three times the file's bytes. Past
     * its deadline a fetch ends once its connection has been quiet for
     * quiet_ns (its timeout, at most attempt_ms), and by cap_ns anyway. */
    uint64_t attempt_ns = (uint64_t)n->cfg.attempt_ms * 1000000ull;
    for (struct net_fetch *f = n->fetches, *next; f; f = next) {
        next = f->next;
        if (f->conn && now >= f->attempt_deadline_ns) {
            uint64_t live = f->conn->last_data_ns + attempt_ns, keep = f->conn->last_data_ns + f->quiet_ns;
            if (live > now && now < f->deadline_ns)
                f->attempt_deadline_ns = LR_MIN(live, f->deadline_ns);
            else if (now >= f->deadline_ns && keep > now && now < f->cap_ns)
                f->attempt_deadline_ns = f->deadline_ns = LR_MIN(keep, f->cap_ns);
            else
                net_node_attempt_failed(f, LR_ETIMEDOUT);
        } else if (!f->conn)
            net_fetch_dispatch(n, f);
    }
    uint64_t ping_ns = (uint64_t)n->cfg.ping_ms * 1000000ull;
    uint64_t dead_ns = LR_MAX(5 * ping_ns, 3000000000ull);
    for (struct net_conn *c = n->conns; c; c = c->next) {
        if (!c->established || c->want_close)
            continue;
        if (now - c->last_pong_ns > dead_ns) {
            net_conn_want_close(c, NET_APPERR_SHUTDOWN, "no pong for %llu ms",
                                (unsigned long long)((now - c->last_pong_ns) / 1000000));
            continue;
        }
        if (now - c->ping_sent_ns >= ping_ns)
            net_conn_ping(c);
        /* pool: extra connections close when idle, both ways: neither
         * our requests nor the peer's on it for idle_ms. Counting only
         * our own made the serving side close a connection the asker was
         * fetching over (its lost requests then ran out of time) */
        unsigned idx = 0;
        for (struct net_conn *o = n->conns; o; o = o->next)
            if (o != c && o->peer == c->peer && o->established && o->created_ns < c->created_ns)
                idx++;
        if (idx > 0 && c->ninflight == 0 && c->nsrv == 0 && c->serving == 0 &&
            now - c->last_req_ns > (uint64_t)n->cfg.idle_ms * 1000000ull &&
            now - c->created_ns > (uint64_t)n->cfg.idle_ms * 1000000ull)
            net_conn_want_close(c, NET_APPERR_SHUTDOWN, "idle pool connection");
    }
    /* dial: peers with addresses and no connection; pool growth when busy */
    for (struct net_peer *p = n->peers; p; p = p->next) {
        if (!p->naddrs || now < p->next_dial_ns || n->nconns >= n->cfg.max_conns)
            continue;
        int want = p->nconns == 0;
        /* extra pool connections take at most half of max_conns: the rest
         * stays for peers' first connections (incoming ones beyond
         * max_conns are dropped) */
        if (!want && p->nestab == p->nconns && p->nconns < n->cfg.conns_per_peer &&
            n->nconns < n->cfg.max_conns / 2) {
            unsigned full = 0;
            for (struct net_conn *c = n->conns; c; c = c->next)
                if (c->peer == p && c->ninflight >= n->cfg.max_inflight)
                    full++;
            want = full == p->nconns;
        }
        if (!want)
            continue;
        unsigned ai = p->next_addr++ % p->naddrs;
        p->dials++;
        if (!net_conn_dial(n, p, ai)) {
            p->fails++;
            peer_backoff(p);
        } else {
            /* one dial in flight at a time (nconns counts it); a pool that
             * grows because every connection is full adds the next one as
             * soon as this one is up, a first connection waits longer */
            p->next_dial_ns = now + (p->nestab ? 20000000ull : 500000000ull);
        }
    }
    if (now - n->last_tick_ns >= (uint64_t)NET_HEALTH_TICK_MS * 1000000ull) {
        n->last_tick_ns = now;
        health_tick(n, now);
        update_stats(n);
    }
    net_node_flush(n);
}

/* ---- thread and API ----------------------------------------------------------------- */

/* libevent's own messages go to landro's logger. */
static void event_log(int severity, const char *msg)
{
    lr_log(severity >= EVENT_LOG_ERR ? LR_LOG_ERROR : severity == EVENT_LOG_WARN ? LR_LOG_WARN : LR_LOG_DEBUG,
           "libevent: %s", msg);
}

int net_node_new(const struct net_config *cfg, struct net_node **out)
{
    event_set_log_callback(event_log);
    struct net_node *n = calloc(1, sizeof(*n));
    if (!n)
        return -ENOMEM;
    n->cfg = *cfg;
    n->efd = -1;
    for (unsigned i = 0; i < NET_MAX_SOCKS; i++) {
        n->socks[i].fd = -1;
        n->socks[i].node = n;
    }
    if (!n->cfg.conns_per_peer)
        n->cfg.conns_per_peer = 1;
    if (n->cfg.conns_per_peer > 8)
        n->cfg.conns_per_peer = 8;
    if (!n->cfg.max_conns)
        n->cfg.max_conns = 64;
    if (!n->cfg.max_inflight)
        n->cfg.max_inflight = 64;
    if (!n->cfg.idle_ms)
        n->cfg.idle_ms = 30000;
    if (!n->cfg.ping_ms)
        n->cfg.ping_ms = 1000;
    if (!n->cfg.attempt_ms)
        n->cfg.attempt_ms = 5000;
    pthread_mutex_init(&n->lock, NULL);
    pthread_mutex_init(&n->vlock, NULL);
    pthread_cond_init(&n->vcv, NULL);
    int rc = net_identity_load(cfg->identity_dir, &n->ident);
    if (rc != 0)
        goto fail;
    rc = -ENOMEM;
    n->txbuf = malloc(NET_TXBUF);
    n->rxbuf = malloc(NET_RXBUF);
    n->base = event_base_new();
    if (!n->txbuf || !n->rxbuf || !n->base)
        goto fail;
    if ((rc = net_tls_init(n)) != 0)
        goto fail;
    unsigned nl = 0;
    for (; nl < NET_MAX_LISTEN && cfg->listen[nl]; nl++)
        if ((rc = net_sock_open(n, cfg->listen[nl])) != 0)
            goto fail;
    if (nl == 0 && (rc = net_sock_open(n, "[::]:0")) != 0)
        goto fail;
    n->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (n->efd < 0) {
        rc = -errno;
        goto fail;
    }
    for (unsigned i = 0; i < n->nsocks; i++) {
        n->socks[i].ev = event_new(n->base, n->socks[i].fd, EV_READ | EV_PERSIST, net_read_cb, &n->socks[i]);
        event_add(n->socks[i].ev, NULL);
    }
    n->wake_ev = event_new(n->base, n->efd, EV_READ | EV_PERSIST, wake_cb, n);
    event_add(n->wake_ev, NULL);
    n->delay_ev = evtimer_new(n->base, net_delay_cb, n);
    n->tick_ev = event_new(n->base, -1, EV_PERSIST, tick_cb, n);
    struct timeval tv = { 0, TICK_MS * 1000 };
    event_add(n->tick_ev, &tv);
    char id[NET_ID_STR_LEN], a[64];
    net_fmt_addr((struct sockaddr *)&n->socks[0].addr, a, sizeof(a));
    lr_info("device %s listening on %s (udp gso %s, gro %s)", net_id_format(&n->ident.id, id), a,
            n->gso ? "on" : "off", n->gro ? "on" : "off");
    *out = n;
    return 0;
fail:
    net_node_free(n);
    return rc;
}

static void *thread_main(void *arg)
{
    struct net_node *n = arg;
    pthread_setname_np(pthread_self(), "landro-net");
    event_base_dispatch(n->base);
    return NULL;
}

int net_node_start(struct net_node *n)
{
    if (n->started)
        return -EALREADY;
    int rc = net_verify_start(n);
    if (rc != 0)
        return rc;
    rc = pthread_create(&n->thread, NULL, thread_main, n);
    if (rc != 0) {
        net_verify_stop(n);
        return -rc;
    }
    n->started = 1;
    return 0;
}

/* Cancel the fetches still in the command queue (the thread is gone). */
static void cancel_queued(struct net_node *n)
{
    pthread_mutex_lock(&n->lock);
    struct net_cmd *cmd = n->cmd_head;
    n->cmd_head = n->cmd_tail = NULL;
    pthread_mutex_unlock(&n->lock);
    while (cmd) {
        struct net_cmd *next = cmd->next;
        if (cmd->fetch) {
            cmd->fetch->cb(cmd->fetch->ctx, -ECANCELED, &cmd->fetch->h, NULL, 0, NULL);
            free(cmd->fetch->peers);
            free(cmd->fetch);
        }
        free(cmd);
        cmd = next;
    }
}

void net_node_stop(struct net_node *n)
{
    if (!n || !n->started || n->stopped)
        return;
    struct net_cmd *cmd = calloc(1, sizeof(*cmd));
    if (cmd) {
        cmd->op = CMD_STOP;
        if (push_cmd(n, cmd) != 0)
            free(cmd);
    }
    pthread_mutex_lock(&n->lock);
    n->stopping = 1;
    pthread_mutex_unlock(&n->lock);
    pthread_join(n->thread, NULL);
    /* Verifiers finish the chunks they hold (callbacks may still run until
     * they are joined); then fetches queued meanwhile are cancelled, so no
     * callback runs after we return. */
    net_verify_stop(n);
    cancel_queued(n);
    n->stopped = 1;
}

void net_node_free(struct net_node *n)
{
    if (!n)
        return;
    net_node_stop(n);
    if (!n->started && n->base) {
        /* never ran: close quietly, cancel fetches */
        while (n->conns)
            net_conn_close(n->conns);
        while (n->fetches)
            net_fetch_finish(n, n->fetches, -ECANCELED, NULL, 0, NULL);
    }
    cancel_queued(n);
    while (n->peers) {
        struct net_peer *p = n->peers;
        n->peers = p->next;
        free(p);
    }
    for (unsigned i = 0; i < NET_MAX_SOCKS; i++) {
        if (n->socks[i].ev)
            event_free(n->socks[i].ev);
        if (n->socks[i].fd >= 0)
            close(n->socks[i].fd);
    }
    if (n->wake_ev)
        event_free(n->wake_ev);
    if (n->tick_ev)
        event_free(n->tick_ev);
    if (n->delay_ev)
        event_free(n->delay_ev);
    while (n->delay_head) {
        struct net_delayed *d = n->delay_head;
        n->delay_head = d->next;
        free(d);
    }
    if (n->base)
        event_base_free(n->base);
    if (n->efd >= 0)
        close(n->efd);
    net_tls_release(n);
    net_identity_release(&n->ident);
    net_buf_release_all(n);
    free(n->cids);
    free(n->stats);
    free(n->txbuf);
    free(n->rxbuf);
    pthread_mutex_destroy(&n->lock);
    pthread_mutex_destroy(&n->vlock);
    pthread_cond_destroy(&n->vcv);
    free(n);
}

const net_id *net_node_id(const struct net_node *n)
{
    return &n->ident.id;
}

int net_node_port(const struct net_node *n, unsigned i)
{
    if (i >= n->nsocks)
        return -EINVAL;
    const struct sockaddr_storage *a = &n->socks[i].addr;
    if (a->ss_family == AF_INET)
        return ntohs(((const struct sockaddr_in *)a)->sin_port);
    return ntohs(((const struct sockaddr_in6 *)a)->sin6_port);
}

int net_peer_add(struct net_node *n, const net_id *peer, const char *const *addrs, unsigned naddrs)
{
    if (naddrs > NET_MAX_ADDRS)
        return -EINVAL;
    struct net_cmd *cmd = calloc(1, sizeof(*cmd));
    if (!cmd)
        return -ENOMEM;
    cmd->op = CMD_PEER_ADD;
    cmd->id = *peer;
    for (unsigned i = 0; i < naddrs; i++)
        if (net_parse_addr(addrs[i], &cmd->addrs[i], &cmd->alen[i]) != 0) {
            lr_error("cannot parse peer address '%s'", addrs[i]);
            free(cmd);
            return -EINVAL;
        }
    cmd->naddrs = naddrs;
    int rc = push_cmd(n, cmd);
    if (rc)
        free(cmd);
    return rc;
}

int net_peer_remove(struct net_node *n, const net_id *peer)
{
    struct net_cmd *cmd = calloc(1, sizeof(*cmd));
    if (!cmd)
        return -ENOMEM;
    cmd->op = CMD_PEER_REMOVE;
    cmd->id = *peer;
    int rc = push_cmd(n, cmd);
    if (rc)
        free(cmd);
    return rc;
}

int net_fetch(struct net_node *n, const st_hash *h, const net_id *peers, unsigned npeers,
              unsigned timeout_ms, net_fetch_cb cb, void *ctx)
{
    return net_fetch_ex(n, h, peers, npeers, NULL, 0, timeout_ms, cb, ctx);
}

int net_serve_wake(struct net_node *n, const st_hash *h)
{
    struct net_cmd *cmd = calloc(1, sizeof(*cmd) + ST_HASH_LEN);
    if (!cmd)
        return -ENOMEM;
    cmd->op = CMD_WAKE;
    memcpy(cmd->payload, h->b, ST_HASH_LEN);
    int rc = push_cmd(n, cmd);
    if (rc)
        free(cmd);
    return rc;
}

int net_fetch_ex(struct net_node *n, const st_hash *h, const net_id *peers, unsigned npeers,
                 const net_id *exclude, unsigned flags, unsigned timeout_ms, net_fetch_cb cb, void *ctx)
{
    struct net_fetch *f = calloc(1, sizeof(*f));
    if (!f)
        return -ENOMEM;
    f->h = *h;
    f->direct = (flags & NET_FETCH_DIRECT) != 0;
    f->urgent = (flags & NET_FETCH_URGENT) != 0;
    if (exclude) {
        net_fetch_mark_tried_id(f, exclude);
        if (f->ntried == 0) {
            free(f);
            return -ENOMEM;
        }
    }
    f->cb = cb;
    f->ctx = ctx;
    f->deadline_ns = net_now() + (uint64_t)timeout_ms * 1000000ull;
    f->cap_ns = net_now() + (uint64_t)timeout_ms * 1000000ull * NET_FETCH_LIVE_MAX;
    f->quiet_ns = (uint64_t)LR_MIN(timeout_ms, n->cfg.attempt_ms) * 1000000ull;
    if (peers && npeers) {
        f->peers = malloc(npeers * sizeof(*peers));
        if (!f->peers) {
            free(f->tried);
            free(f);
            return -ENOMEM;
        }
        memcpy(f->peers, peers, npeers * sizeof(*peers));
        f->npeers = npeers;
    }
    if (n->started && !n->stopped && pthread_equal(pthread_self(), n->thread)) {
        /* From a callback: no need to go through the queue. */
        net_fetch_add(n, f);
        return 0;
    }
    struct net_cmd *cmd = calloc(1, sizeof(*cmd));
    if (!cmd) {
        free(f->peers);
        free(f->tried);
        free(f);
        return -ENOMEM;
    }
    cmd->op = CMD_FETCH;
    cmd->fetch = f;
    int rc = push_cmd(n, cmd);
    if (rc) {
        free(cmd);
        free(f->peers);
        free(f->tried);
        free(f);
    }
    return rc;
}

int net_send_frame(struct net_node *n, const net_id *peer, uint16_t type, const void *payload, size_t len)
{
    if (type < NET_FRAME_APP_MIN || len > NET_FRAME_MAX)
        return -EINVAL;
    struct net_cmd *cmd = calloc(1, sizeof(*cmd) + len);
    if (!cmd)
        return -ENOMEM;
    cmd->op = CMD_FRAME;
    cmd->id = *peer;
    cmd->type = type;
    cmd->len = len;
    if (len)
        memcpy(cmd->payload, payload, len);
    int rc = push_cmd(n, cmd);
    if (rc)
        free(cmd);
    return rc;
}

int net_test_send_raw(struct net_node *n, const net_id *peer, const void *bytes, size_t len)
{
    struct net_cmd *cmd = calloc(1, sizeof(*cmd) + len);
    if (!cmd)
        return -ENOMEM;
    cmd->op = CMD_RAW;
    cmd->id = *peer;
    cmd->len = len;
    memcpy(cmd->payload, bytes, len);
    int rc = push_cmd(n, cmd);
    if (rc)
        free(cmd);
    return rc;
}

int net_peer_stats(struct net_node *n, struct net_peer_stats *out, unsigned max)
{
    pthread_mutex_lock(&n->lock);
    unsigned k = LR_MIN(max, n->nstats);
    if (k)
        memcpy(out, n->stats, k * sizeof(*out));
    int total = (int)n->nstats;
    pthread_mutex_unlock(&n->lock);
    return total;
}
