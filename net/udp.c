/*
 * udp.c - the node's UDP side: listen address parsing, sockets (UDP GSO
 * and GRO when the kernel has them), connection-id routing of incoming
 * datagrams, batched sends, and the delay/loss test seams. Network thread
 * only, except net_parse_addr (pure) and net_sock_open (before start).
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


/* ---- addresses ----------------------------------------------------------- */

int net_parse_addr(const char *s, struct sockaddr_storage *out, socklen_t *len)
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

int net_sock_open(struct net_node *n, const char *spec)
{
    struct net_sock *sk = &n->socks[n->nsocks];
    int rc = net_parse_addr(spec, &sk->addr, &sk->alen);
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
    /* PMTUD (ngtcp2's probes) needs the DF bit and no local
     * fragmentation: a datagram bigger than the route's MTU must fail
     * (EMSGSIZE) or be lost, never be cut into IP fragments. */
    int probe = IP_PMTUDISC_PROBE;
    setsockopt(fd, IPPROTO_IP, IP_MTU_DISCOVER, &probe, sizeof(probe));
    if (sk->family == AF_INET6) {
        probe = IPV6_PMTUDISC_PROBE;
        setsockopt(fd, IPPROTO_IPV6, IPV6_MTU_DISCOVER, &probe, sizeof(probe));
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

/* ---- I/O -------------------------------------------------------------------- */

static void delay_arm(struct net_node *n)
{
    if (!n->delay_head)
        return;
    uint64_t now = net_now(), d = n->delay_head->due_ns > now ? n->delay_head->due_ns - now : 0;
    struct timeval tv = { (time_t)(d / 1000000000ull), (suseconds_t)((d % 1000000000ull) / 1000) };
    evtimer_add(n->delay_ev, &tv);
}

void net_delay_cb(evutil_socket_t fd, short what, void *arg)
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
            } else if (w < 0 && errno == EMSGSIZE)
                lr_debug("send to %s: %zu bytes over the path MTU (a PMTUD probe)", c->name, len);
            else if (w < 0)
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

void net_read_cb(evutil_socket_t fd, short what, void *arg)
{
    struct net_sock *sk = arg;
    struct net_node *n = sk->node;
    int si = (int)(sk - n->socks);
    for (int iter = 0; iter < 64; iter++) {
        struct sockaddr_storage from;
        struct iovec iov = { n->rxbuf, NET_RXBUF };
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

