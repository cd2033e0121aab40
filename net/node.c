/*
 * node.c - the network thread: UDP sockets (GSO/GRO when the kernel has
 * them), connection-id routing, the command queue and its eventfd, peers
 * and their connection pool, chunk fetch scheduling with failover, health
 * ticks and the stats snapshot. See net.h for the contract.
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

#ifndef UDP_SEGMENT
#define UDP_SEGMENT 103
#endif
#ifndef UDP_GRO
#define UDP_GRO 104
#endif

#define RXBUF 65536
#define TICK_MS 50

enum { CMD_PEER_ADD = 1, CMD_PEER_REMOVE, CMD_FETCH, CMD_FRAME, CMD_RAW, CMD_STOP };

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

void net_node_flush(struct net_node *n);
void net_node_conn_gone(struct net_conn *c);
static void dispatch(struct net_node *n, struct net_fetch *f);
static void dispatch_waiting(struct net_node *n);

/* ---- addresses ----------------------------------------------------------- */

static int parse_addr(const char *s, struct sockaddr_storage *out, socklen_t *len)
{
    char host[128];
    const char *port;
    if (!s)
        return -EINVAL;
    if (s[0] == '[') {
        const char *e = strchr(s, ']');
        if (!e || e[1] != ':' || (size_t)(e - s - 1) >= sizeof(host))
            return -EINVAL;
        memcpy(host, s + 1, (size_t)(e - s - 1));
        host[e - s - 1] = 0;
        port = e + 2;
    } else {
        const char *c = strrchr(s, ':');
        if (!c || (size_t)(c - s) >= sizeof(host) || strchr(s, ':') != c)
            return -EINVAL;
        memcpy(host, s, (size_t)(c - s));
        host[c - s] = 0;
        port = c + 1;
    }
    char *end;
    long p = strtol(port, &end, 10);
    if (!*port || *end || p < 0 || p > 65535)
        return -EINVAL;
    memset(out, 0, sizeof(*out));
    struct sockaddr_in *s4 = (void *)out;
    struct sockaddr_in6 *s6 = (void *)out;
    if (inet_pton(AF_INET, host, &s4->sin_addr) == 1) {
        s4->sin_family = AF_INET;
        s4->sin_port = htons((uint16_t)p);
        *len = sizeof(*s4);
    } else if (inet_pton(AF_INET6, host, &s6->sin6_addr) == 1) {
        s6->sin6_family = AF_INET6;
        s6->sin6_port = htons((uint16_t)p);
        *len = sizeof(*s6);
    } else
        return -EINVAL;
    return 0;
}

static int open_socket(struct net_node *n, const char *spec)
{
    struct net_sock *sk = &n->socks[n->nsocks];
    int rc = parse_addr(spec, &sk->addr, &sk->alen);
    if (rc != 0) {
        lr_error("cannot parse listen address '%s'", spec);
        return rc;
    }
    sk->family = sk->addr.ss_family;
    int fd = socket(sk->family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    int zero = 0, one = 1;
    if (sk->family == AF_INET6) {
        struct sockaddr_in6 *s6 = (void *)&sk->addr;
        if (IN6_IS_ADDR_UNSPECIFIED(&s6->sin6_addr))
            setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof(zero));
    }
    /* Big socket buffers: a burst of a few MiB must not overflow them. */
    int rb = 16 << 20, sb = 8 << 20;
    if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &rb, sizeof(rb)) != 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rb, sizeof(rb));
    if (setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &sb, sizeof(sb)) != 0)
        setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sb, sizeof(sb));
    if (bind(fd, (struct sockaddr *)&sk->addr, sk->alen) != 0) {
        rc = -errno;
        lr_error("cannot bind UDP socket to '%s': %s", spec, strerror(errno));
        close(fd);
        return rc;
    }
    sk->alen = sizeof(sk->addr);
    getsockname(fd, (struct sockaddr *)&sk->addr, &sk->alen);
    int seg = 1200;
    if (n->nsocks == 0) {
        n->gso = setsockopt(fd, SOL_UDP, UDP_SEGMENT, &seg, sizeof(seg)) == 0;
        n->gro = setsockopt(fd, SOL_UDP, UDP_GRO, &one, sizeof(one)) == 0;
    } else if (n->gro)
        setsockopt(fd, SOL_UDP, UDP_GRO, &one, sizeof(one));
    if (n->gso) {
        seg = 0; /* per-send cmsg decides */
        setsockopt(fd, SOL_UDP, UDP_SEGMENT, &seg, sizeof(seg));
    }
    sk->fd = fd;
    n->nsocks++;
    return 0;
}

/* ---- connection ids ------------------------------------------------------ */

int net_node_cid_add(struct net_node *n, const ngtcp2_cid *cid, struct net_conn *c)
{
    if (n->ncids == n->cids_cap) {
        unsigned cap = n->cids_cap ? n->cids_cap * 2 : 64;
        void *p = realloc(n->cids, cap * sizeof(*n->cids));
        if (!p)
            return -ENOMEM;
        n->cids = p;
        n->cids_cap = cap;
    }
    n->cids[n->ncids].cid = *cid;
    n->cids[n->ncids].c = c;
    n->ncids++;
    return 0;
}

void net_node_cid_del(struct net_node *n, const ngtcp2_cid *cid)
{
    for (unsigned i = 0; i < n->ncids; i++)
        if (ngtcp2_cid_eq(&n->cids[i].cid, cid)) {
            n->cids[i] = n->cids[--n->ncids];
            return;
        }
}

static struct net_conn *find_conn(struct net_node *n, const uint8_t *dcid, size_t len)
{
    for (unsigned i = 0; i < n->ncids; i++)
        if (n->cids[i].cid.datalen == len && memcmp(n->cids[i].cid.data, dcid, len) == 0)
            return n->cids[i].c;
    return NULL;
}

/* ---- peers ---------------------------------------------------------------- */

struct net_peer *net_node_find_peer(struct net_node *n, const net_id *id)
{
    for (struct net_peer *p = n->peers; p; p = p->next)
        if (memcmp(&p->id, id, sizeof(*id)) == 0)
            return p;
    return NULL;
}

static void peer_fail(struct net_peer *p, int timeout)
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
        peer_fail(p, 0);
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
    dispatch_waiting(n);
}

void net_node_on_pong(struct net_conn *c, uint64_t rtt_ns)
{
    struct net_peer *p = c->peer;
    uint64_t us = rtt_ns / 1000;
    p->ping_rtt_us = p->ping_rtt_us ? (p->ping_rtt_us * 7 + us) / 8 : us;
    p->last_pong_ns = net_now();
}

/* ---- fetch ------------------------------------------------------------------ */

static void fetch_detach(struct net_fetch *f)
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

static void fetch_mark_tried(struct net_fetch *f, struct net_peer *p)
{
    if (f->ntried == f->tried_cap) {
        unsigned cap = f->tried_cap ? f->tried_cap * 2 : 4;
        net_id *t = realloc(f->tried, cap * sizeof(*t));
        if (!t)
            return;
        f->tried = t;
        f->tried_cap = cap;
    }
    f->tried[f->ntried++] = p->id;
}

static int fetch_tried(const struct net_fetch *f, const struct net_peer *p)
{
    for (unsigned i = 0; i < f->ntried; i++)
        if (memcmp(&f->tried[i], &p->id, sizeof(net_id)) == 0)
            return 1;
    return 0;
}

static void fetch_finish(struct net_node *n, struct net_fetch *f, int err, const uint8_t *data, size_t len,
                         const net_id *from)
{
    fetch_detach(f);
    if (f->prev)
        f->prev->next = f->next;
    else
        n->fetches = f->next;
    if (f->next)
        f->next->prev = f->prev;
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
    fetch_detach(f);
    if (p) {
        fetch_mark_tried(f, p);
        peer_fail(p, why == LR_ETIMEDOUT);
    }
    if (why == LR_EHASH)
        f->nhash++;
    else if (why == LR_ETIMEDOUT)
        f->ntimeout++;
    else
        f->nlost++;
    dispatch(n, f);
}

void net_node_on_notfound(struct net_conn *c, uint32_t req, const st_hash *h)
{
    for (struct net_fetch *f = c->inflight; f; f = f->cnext)
        if (f->req == req) {
            struct net_peer *p = f->peer;
            fetch_detach(f);
            if (p) {
                fetch_mark_tried(f, p);
                p->win_ok[0]++; /* a clean answer is not a failure */
                p->consec_fail = 0;
            }
            f->nnotfound++;
            dispatch(c->node, f);
            return;
        }
}

void net_node_on_chunk(struct net_conn *c, struct net_fetch *f, const uint8_t *data, size_t len)
{
    struct net_node *n = c->node;
    if (!st_hash_verify(data, len, &f->h)) {
        char hex[65];
        lr_warn("peer %s sent %zu bytes that do not hash to chunk %s", c->name, len, st_hash_hex(&f->h, hex));
        net_node_attempt_failed(f, LR_EHASH);
        return;
    }
    struct net_peer *p = f->peer;
    p->chunks_ok++;
    p->bytes_rx += len;
    p->consec_fail = 0;
    p->win_ok[0]++;
    net_id from = p->id;
    fetch_finish(n, f, 0, data, len, &from);
    dispatch_waiting(n);
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

/* Start the next attempt of f, finish it, or leave it waiting. */
static void dispatch(struct net_node *n, struct net_fetch *f)
{
    if (f->conn)
        return;
    uint64_t now = net_now();
    if (now >= f->deadline_ns) {
        fetch_finish(n, f, fetch_error(f), NULL, 0, NULL);
        return;
    }
    struct net_conn *best = NULL;
    struct net_peer *bestp = NULL;
    uint64_t best_rtt = 0;
    int busy = 0;
    for (struct net_peer *p = n->peers; p; p = p->next) {
        if (!p->nestab || !in_filter(f, p) || fetch_tried(f, p))
            continue;
        struct net_conn *pick = NULL;
        for (struct net_conn *c = n->conns; c; c = c->next)
            if (c->peer == p && c->established && !c->want_close &&
                c->ninflight < n->cfg.max_inflight && (!pick || c->ninflight < pick->ninflight))
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
        if (net_conn_send_req(best, f->req, &f->h) != 0) {
            fetch_finish(n, f, -ENOMEM, NULL, 0, NULL);
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
    if (!busy && f->ntried > 0) {
        fetch_finish(n, f, fetch_error(f), NULL, 0, NULL);
        return;
    }
    /* Wait for a slot (as long as the deadline allows), or for a peer to
     * connect (one attempt's time at most). */
    if (busy)
        f->idle_since_ns = 0;
    else if (!f->idle_since_ns)
        f->idle_since_ns = now;
    else if (now - f->idle_since_ns >= (uint64_t)n->cfg.attempt_ms * 1000000ull)
        fetch_finish(n, f, LR_ETIMEDOUT, NULL, 0, NULL);
}

static void dispatch_waiting(struct net_node *n)
{
    struct net_fetch *f = n->fetches, *next;
    for (; f; f = next) {
        next = f->next;
        if (!f->conn)
            dispatch(n, f);
        /* dispatch may free f, never another fetch */
    }
}

/* A connection went away: its requests fail over, its peer may go Down. */
void net_node_conn_gone(struct net_conn *c)
{
    struct net_node *n = c->node;
    struct net_peer *p = c->peer;
    while (c->inflight) {
        struct net_fetch *f = c->inflight;
        struct net_peer *fp = f->peer;
        fetch_detach(f);
        if (fp) {
            fetch_mark_tried(f, fp);
            peer_fail(fp, 0);
        }
        f->nlost++;
    }
    if (p) {
        p->nconns--;
        if (c->established) {
            p->nestab--;
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

/* ---- I/O -------------------------------------------------------------------- */

static void delay_arm(struct net_node *n)
{
    if (!n->delay_head)
        return;
    uint64_t now = net_now(), d = n->delay_head->due_ns > now ? n->delay_head->due_ns - now : 0;
    struct timeval tv = { (time_t)(d / 1000000000ull), (suseconds_t)((d % 1000000000ull) / 1000) };
    evtimer_add(n->delay_ev, &tv);
}

static void delay_cb(evutil_socket_t fd, short what, void *arg)
{
    struct net_node *n = arg;
    uint64_t now = net_now();
    while (n->delay_head && n->delay_head->due_ns <= now) {
        struct net_delayed *d = n->delay_head;
        n->delay_head = d->next;
        if (!n->delay_head)
            n->delay_tail = NULL;
        sendto(d->fd, d->data, d->len, 0, (struct sockaddr *)&d->to, d->tolen);
        free(d);
    }
    delay_arm(n);
}

/* Fault seams: lose or hold back datagrams one by one. */
static void send_faulty(struct net_node *n, struct net_conn *c, const uint8_t *buf, size_t len, size_t seg)
{
    int fd = n->socks[c->sock].fd;
    if (!seg)
        seg = len;
    for (size_t off = 0; off < len; off += seg) {
        size_t k = LR_MIN(seg, len - off);
        uint32_t r;
        if (n->cfg.test_drop_permille && getrandom(&r, sizeof(r), 0) == sizeof(r) &&
            r % 1000 < n->cfg.test_drop_permille)
            continue;
        if (!n->cfg.test_delay_ms) {
            sendto(fd, buf + off, k, 0, (struct sockaddr *)&c->remote, c->rlen);
            continue;
        }
        struct net_delayed *d = malloc(sizeof(*d) + k);
        if (!d)
            continue;
        d->next = NULL;
        d->due_ns = net_now() + (uint64_t)n->cfg.test_delay_ms * 1000000ull;
        d->fd = fd;
        memcpy(&d->to, &c->remote, c->rlen);
        d->tolen = c->rlen;
        d->len = k;
        memcpy(d->data, buf + off, k);
        if (n->delay_tail)
            n->delay_tail->next = d;
        else
            n->delay_head = d;
        n->delay_tail = d;
        if (n->delay_head == d)
            delay_arm(n);
    }
}

void net_node_send_batch(struct net_node *n, struct net_conn *c, const uint8_t *buf, size_t len,
                         size_t seg)
{
    struct net_sock *sk = &n->socks[c->sock];
    struct iovec iov = { (void *)buf, len };
    union {
        char b[CMSG_SPACE(sizeof(uint16_t))];
        struct cmsghdr align;
    } cm;
    struct msghdr m = { .msg_name = &c->remote, .msg_namelen = c->rlen, .msg_iov = &iov, .msg_iovlen = 1 };
    if (n->cfg.test_drop_permille || n->cfg.test_delay_ms) {
        send_faulty(n, c, buf, len, seg);
        return;
    }
    if (n->gso && seg && len > seg) {
        memset(&cm, 0, sizeof(cm));
        m.msg_control = cm.b;
        m.msg_controllen = sizeof(cm.b);
        struct cmsghdr *h = CMSG_FIRSTHDR(&m);
        h->cmsg_level = SOL_UDP;
        h->cmsg_type = UDP_SEGMENT;
        h->cmsg_len = CMSG_LEN(sizeof(uint16_t));
        uint16_t s16 = (uint16_t)seg;
        memcpy(CMSG_DATA(h), &s16, sizeof(s16));
    } else if (seg && len > seg) {
        for (size_t off = 0; off < len; off += seg) {
            size_t k = LR_MIN(seg, len - off);
            sendto(sk->fd, buf + off, k, 0, (struct sockaddr *)&c->remote, c->rlen);
        }
        return;
    }
    for (;;) {
        ssize_t w = sendmsg(sk->fd, &m, 0);
        if (w >= 0 || errno != EINTR) {
            if (w < 0 && errno == EIO && m.msg_control) {
                /* The device cannot segment: fall back for good. */
                lr_info("UDP GSO refused by the kernel, sending packets one by one");
                n->gso = 0;
                net_node_send_batch(n, c, buf, len, seg);
            } else if (w < 0)
                lr_warn("send to %s failed (%zu bytes, seg %zu): %s", c->name, len, seg, strerror(errno));
            return;
        }
    }
}

static void on_packet(struct net_node *n, int si, struct sockaddr_storage *from, socklen_t flen,
                      const uint8_t *pkt, size_t len)
{
    ngtcp2_version_cid vc;
    int rc = ngtcp2_pkt_decode_version_cid(&vc, pkt, len, NET_SCID_LEN);
    if (rc != 0)
        return;
    struct net_conn *c = find_conn(n, vc.dcid, vc.dcidlen);
    if (!c) {
        if (!(pkt[0] & 0x80))
            return; /* short header for no connection of ours */
        if (n->nconns >= n->cfg.max_conns) {
            lr_warn("dropping new connection: %u connections already (max_conns)", n->nconns);
            return;
        }
        c = net_conn_accept(n, si, (struct sockaddr *)from, flen, pkt, len);
        if (!c)
            return;
    }
    n->last_hit = c;
    net_conn_read(c, pkt, len);
}

static void read_cb(evutil_socket_t fd, short what, void *arg)
{
    struct net_sock *sk = arg;
    struct net_node *n = sk->node;
    int si = (int)(sk - n->socks);
    for (int iter = 0; iter < 64; iter++) {
        struct sockaddr_storage from;
        struct iovec iov = { n->rxbuf, RXBUF };
        union {
            char b[CMSG_SPACE(sizeof(int))];
            struct cmsghdr align;
        } cm;
        struct msghdr m = { .msg_name = &from, .msg_namelen = sizeof(from), .msg_iov = &iov, .msg_iovlen = 1,
                            .msg_control = cm.b, .msg_controllen = sizeof(cm.b) };
        ssize_t r = recvmsg(fd, &m, 0);
        if (r < 0)
            break;
        size_t seg = (size_t)r;
        for (struct cmsghdr *h = CMSG_FIRSTHDR(&m); h; h = CMSG_NXTHDR(&m, h))
            if (h->cmsg_level == SOL_UDP && h->cmsg_type == UDP_GRO) {
                int g;
                memcpy(&g, CMSG_DATA(h), sizeof(g));
                if (g > 0)
                    seg = (size_t)g;
            }
        for (size_t off = 0; off < (size_t)r; off += seg)
            on_packet(n, si, &from, m.msg_namelen, n->rxbuf + off, LR_MIN(seg, (size_t)r - off));
    }
    net_node_flush(n);
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
        dispatch_waiting(n);
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
    if (n->cmd_tail)
        n->cmd_tail->next = cmd;
    else
        n->cmd_head = cmd;
    n->cmd_tail = cmd;
    pthread_mutex_unlock(&n->lock);
    uint64_t one = 1;
    if (write(n->efd, &one, sizeof(one)) < 0 && errno != EAGAIN)
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
        p->win_start_ns = net_now();
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

static void add_fetch(struct net_node *n, struct net_fetch *f)
{
    f->prev = NULL;
    f->next = n->fetches;
    if (n->fetches)
        n->fetches->prev = f;
    n->fetches = f;
    dispatch(n, f);
}

static void do_stop(struct net_node *n)
{
    for (struct net_conn *c = n->conns; c; c = c->next)
        net_conn_want_close(c, NET_APPERR_SHUTDOWN, "shutdown");
    while (n->conns)
        net_conn_close(n->conns);
    while (n->fetches)
        fetch_finish(n, n->fetches, -ECANCELED, NULL, 0, NULL);
    event_base_loopbreak(n->base);
}

static void wake_cb(evutil_socket_t fd, short what, void *arg)
{
    struct net_node *n = arg;
    uint64_t v;
    if (read(n->efd, &v, sizeof(v)) < 0 && errno != EAGAIN)
        return;
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
        case CMD_FETCH: add_fetch(n, cmd->fetch); break;
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
        s->last_pong_age_ms = p->nestab ? (now - p->last_pong_ns) / 1000000 : UINT64_MAX;
        s->chunks_ok = p->chunks_ok;
        s->bytes_rx = p->bytes_rx;
        s->timeouts = p->timeouts;
        s->errors = p->errors;
        s->inflight = p->inflight;
        s->reconnects = p->dials;
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
    /* request attempts that ran out of time */
    for (struct net_fetch *f = n->fetches, *next; f; f = next) {
        next = f->next;
        if (f->conn && now >= f->attempt_deadline_ns)
            net_node_attempt_failed(f, LR_ETIMEDOUT);
        else if (!f->conn)
            dispatch(n, f);
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
        /* pool: extra connections close when idle */
        unsigned idx = 0;
        for (struct net_conn *o = n->conns; o; o = o->next)
            if (o != c && o->peer == c->peer && o->established && o->created_ns < c->created_ns)
                idx++;
        if (idx > 0 && c->ninflight == 0 && now - c->last_req_ns > (uint64_t)n->cfg.idle_ms * 1000000ull &&
            now - c->created_ns > (uint64_t)n->cfg.idle_ms * 1000000ull)
            net_conn_want_close(c, NET_APPERR_SHUTDOWN, "idle pool connection");
    }
    /* dial: peers with addresses and no connection; pool growth when busy */
    for (struct net_peer *p = n->peers; p; p = p->next) {
        if (!p->naddrs || now < p->next_dial_ns || n->nconns >= n->cfg.max_conns)
            continue;
        int want = p->nconns == 0;
        if (!want && p->nestab == p->nconns && p->nconns < n->cfg.conns_per_peer) {
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
        } else
            p->next_dial_ns = now + 500000000ull; /* one dial in flight at a time */
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
        n->cfg.max_inflight = 32;
    if (!n->cfg.idle_ms)
        n->cfg.idle_ms = 30000;
    if (!n->cfg.ping_ms)
        n->cfg.ping_ms = 1000;
    if (!n->cfg.attempt_ms)
        n->cfg.attempt_ms = 5000;
    pthread_mutex_init(&n->lock, NULL);
    int rc = net_identity_load(cfg->identity_dir, &n->ident);
    if (rc != 0)
        goto fail;
    rc = -ENOMEM;
    n->txbuf = malloc(NET_TXBUF);
    n->rxbuf = malloc(RXBUF);
    n->scratch = malloc(NET_CHUNK_MAX);
    n->base = event_base_new();
    if (!n->txbuf || !n->rxbuf || !n->scratch || !n->base)
        goto fail;
    if ((rc = net_tls_init(n)) != 0)
        goto fail;
    unsigned nl = 0;
    for (; nl < NET_MAX_LISTEN && cfg->listen[nl]; nl++)
        if ((rc = open_socket(n, cfg->listen[nl])) != 0)
            goto fail;
    if (nl == 0 && (rc = open_socket(n, "[::]:0")) != 0)
        goto fail;
    n->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (n->efd < 0) {
        rc = -errno;
        goto fail;
    }
    for (unsigned i = 0; i < n->nsocks; i++) {
        n->socks[i].ev = event_new(n->base, n->socks[i].fd, EV_READ | EV_PERSIST, read_cb, &n->socks[i]);
        event_add(n->socks[i].ev, NULL);
    }
    n->wake_ev = event_new(n->base, n->efd, EV_READ | EV_PERSIST, wake_cb, n);
    event_add(n->wake_ev, NULL);
    n->delay_ev = evtimer_new(n->base, delay_cb, n);
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
    event_base_dispatch(n->base);
    return NULL;
}

int net_node_start(struct net_node *n)
{
    if (n->started)
        return -EALREADY;
    int rc = pthread_create(&n->thread, NULL, thread_main, n);
    if (rc != 0)
        return -rc;
    n->started = 1;
    return 0;
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
            fetch_finish(n, n->fetches, -ECANCELED, NULL, 0, NULL);
    }
    struct net_cmd *cmd = n->cmd_head;
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
    free(n->cids);
    free(n->stats);
    free(n->txbuf);
    free(n->rxbuf);
    free(n->scratch);
    pthread_mutex_destroy(&n->lock);
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
        if (parse_addr(addrs[i], &cmd->addrs[i], &cmd->alen[i]) != 0) {
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
    struct net_fetch *f = calloc(1, sizeof(*f));
    if (!f)
        return -ENOMEM;
    f->h = *h;
    f->cb = cb;
    f->ctx = ctx;
    f->deadline_ns = net_now() + (uint64_t)timeout_ms * 1000000ull;
    if (peers && npeers) {
        f->peers = malloc(npeers * sizeof(*peers));
        if (!f->peers) {
            free(f);
            return -ENOMEM;
        }
        memcpy(f->peers, peers, npeers * sizeof(*peers));
        f->npeers = npeers;
    }
    if (n->started && !n->stopped && pthread_equal(pthread_self(), n->thread)) {
        /* From a callback: no need to go through the queue. */
        add_fetch(n, f);
        return 0;
    }
    struct net_cmd *cmd = calloc(1, sizeof(*cmd));
    if (!cmd) {
        free(f->peers);
        free(f);
        return -ENOMEM;
    }
    cmd->op = CMD_FETCH;
    cmd->fetch = f;
    int rc = push_cmd(n, cmd);
    if (rc) {
        free(cmd);
        free(f->peers);
        free(f);
    }
    return rc;
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
    if (pthread_equal(pthread_self(), n->thread))
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
