/*
 * landro-impair - a UDP relay that delays and loses datagrams, for tests
 * that need an impaired network path where the kernel has no sch_netem
 * (tests/integration/test_sync_netns.sh). A test tool: not installed.
 *
 *   landro-impair [--delay MS] [--jitter MS] [--loss PCT] [--seed N]
 *                 [--rate KBPS] [--buffer MS] [--queue N] [--idle S]
 *                 --map LISTEN=TARGET [--map ...]
 *
 * Contract:
 * - Each --map binds a UDP socket to LISTEN (IPv4 a.b.c.d:port or IPv6
 *   [addr]:port). Every distinct source address that sends to it gets its
 *   own flow: a socket connect()ed to TARGET (the kernel picks its source
 *   address and port), so TARGET sees one stable address per client and
 *   its replies, received on that socket, go back to the client from
 *   LISTEN. Datagram boundaries and payloads are kept as they are.
 * - Every datagram, in both directions, is lost with probability PCT/100
 *   (default 0) or else held DELAY ms (default 0) plus a uniform offset in
 *   [-JITTER, +JITTER] ms (default 0; jitter can reorder, no jitter keeps
 *   the order) and then sent. Losses and jitter come from a PRNG seeded
 *   with N (default 1), so the same traffic meets the same decisions.
 * - With --rate, the path into each destination host (its IP address,
 *   whichever map or direction leads there) is a link of KBPS kilobytes
 *   (1000 bytes) per second: a datagram that is not lost leaves once the
 *   ones before it to that host have, taking len / rate, and then is held
 *   as above. One that would wait longer than MS (--buffer, default 100)
 *   for its link is dropped (a router's full buffer), counted with the
 *   queue limit's drops.
 * - At most N datagrams (default 20000) wait at once; beyond that arrivals
 *   are dropped (a router's full queue) and counted apart from the losses.
 *   A send that fails (full socket buffer, unreachable target) is counted,
 *   not retried.
 * - A flow idle for S seconds (default 120, at least one second more than
 *   the longest hold) is closed. At most 1024 flows at once: datagrams
 *   from further clients count as failed sends.
 * - Prints "listening LISTEN -> TARGET" on stdout per map once all are
 *   bound, then runs until SIGINT/SIGTERM. On SIGUSR1 and at exit it
 *   prints per map and direction on stderr: datagrams received, lost,
 *   dropped at the queue limit, failed sends, sent (and their bytes, and
 *   the largest datagram seen), still waiting, and the mean and maximum
 *   time each sent one was held (measured, not configured).
 * Exit status 0 after a signal, 1 if a socket cannot be set up, 2 on
 * usage errors.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "net.h"

#define MAX_MAPS 16
#define MAX_FLOWS 1024
#define MAX_DGRAM 65536
#define RECV_BATCH 256          /* datagrams read from one socket per wake-up */
#define SOCK_BUF (8 << 20)
#define MAX_LINKS 64            /* destination hosts with a --rate link */

static const char *prog = "landro-impair";

/* One direction's counters: [0] client -> target, [1] target -> client. */
struct dir_stats {
    uint64_t in, lost, overflow, send_err, sent;
    uint64_t bytes_sent, max_len;
    uint64_t hold_sum_ns, hold_max_ns;
};

struct map {
    int fd;                     /* bound to listen */
    struct sockaddr_storage listen, target;
    socklen_t listen_len, target_len;
    const char *spec;
    struct dir_stats st[2];
};

struct flow {
    int fd;                     /* connect()ed to map->target; -1: slot free */
    struct map *map;
    struct sockaddr_storage client;
    socklen_t client_len;
    uint64_t last_ns;
};

/* A held datagram. It goes out on fd, to `to` unless to_len is 0 (a
 * connected flow socket). A flow outlives every datagram it holds: flows
 * close only after idle_ns > the longest hold. */
struct pkt {
    uint64_t due_ns, seq, recv_ns;
    struct map *map;
    int dir;
    int fd;
    struct sockaddr_storage to;
    socklen_t to_len;
    size_t len;
    unsigned char data[];
};

static struct map maps[MAX_MAPS];
static unsigned nmaps;
static struct flow flows[MAX_FLOWS];
static unsigned nflows_used;      /* slots [0, nflows_used) may be in use */

static uint64_t delay_ns, jitter_ns, idle_ns = 120ull * 1000000000ull;
static uint64_t loss_threshold;   /* lose when rand64() < this */
static int loss_all;              /* --loss 100 */
static uint64_t rng_state = 1;
static size_t queue_max = 20000;
static uint64_t rate_bps;         /* --rate in bytes/s, 0: no link limit */
static uint64_t buffer_ns = 100000000ull;

/* The link into one destination host (--rate): when it is next free. */
struct link {
    struct sockaddr_storage host;   /* port ignored */
    uint64_t free_ns;
};
static struct link links[MAX_LINKS];
static unsigned nlinks;

/* The hold queue: a binary min-heap on (due_ns, seq). */
static struct pkt **heap;
static size_t heap_len;
static uint64_t next_seq;

static volatile sig_atomic_t got_stop, got_usr1;

static void on_signal(int sig)
{
    if (sig == SIGUSR1)
        got_usr1 = 1;
    else
        got_stop = 1;
}

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* splitmix64: small, seedable, good enough for loss decisions. */
static uint64_t rand64(void)
{
    uint64_t z = (rng_state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

/* ---- the hold queue ------------------------------------------------------ */

static int pkt_before(const struct pkt *a, const struct pkt *b)
{
    return a->due_ns < b->due_ns || (a->due_ns == b->due_ns && a->seq < b->seq);
}

static void heap_push(struct pkt *p)
{
    size_t i = heap_len++;
    while (i > 0) {
        size_t up = (i - 1) / 2;
        if (!pkt_before(p, heap[up]))
            break;
        heap[i] = heap[up];
        i = up;
    }
    heap[i] = p;
}

static struct pkt *heap_pop(void)
{
    struct pkt *top = heap[0], *last = heap[--heap_len];
    size_t i = 0;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= heap_len)
            break;
        if (c + 1 < heap_len && pkt_before(heap[c + 1], heap[c]))
            c++;
        if (!pkt_before(heap[c], last))
            break;
        heap[i] = heap[c];
        i = c;
    }
    if (heap_len)
        heap[i] = last;
    return top;
}

/* ---- addresses and sockets ----------------------------------------------- */

/* The first n bytes of s as an address (net_parse_addr's forms). */
static int parse_addr(const char *s, size_t n, struct sockaddr_storage *out, socklen_t *len)
{
    char buf[160];
    if (n >= sizeof(buf))
        return -1;
    memcpy(buf, s, n);
    buf[n] = 0;
    return net_parse_addr(buf, out, len);
}

/* Same family and IP address (the port aside). */
static int same_host(const struct sockaddr_storage *a, const struct sockaddr_storage *b)
{
    if (a->ss_family != b->ss_family)
        return 0;
    if (a->ss_family == AF_INET)
        return ((const struct sockaddr_in *)a)->sin_addr.s_addr == ((const struct sockaddr_in *)b)->sin_addr.s_addr;
    return !memcmp(&((const struct sockaddr_in6 *)a)->sin6_addr, &((const struct sockaddr_in6 *)b)->sin6_addr, 16);
}

/* Same host and port. */
static int same_addr(const struct sockaddr_storage *a, const struct sockaddr_storage *b)
{
    if (!same_host(a, b))
        return 0;
    if (a->ss_family == AF_INET)
        return ((const struct sockaddr_in *)a)->sin_port == ((const struct sockaddr_in *)b)->sin_port;
    return ((const struct sockaddr_in6 *)a)->sin6_port == ((const struct sockaddr_in6 *)b)->sin6_port;
}

static void fmt_addr(const struct sockaddr_storage *a, char *buf, size_t cap)
{
    char h[INET6_ADDRSTRLEN];
    if (a->ss_family == AF_INET) {
        const struct sockaddr_in *s = (const void *)a;
        inet_ntop(AF_INET, &s->sin_addr, h, sizeof(h));
        snprintf(buf, cap, "%s:%u", h, ntohs(s->sin_port));
    } else {
        const struct sockaddr_in6 *s = (const void *)a;
        inet_ntop(AF_INET6, &s->sin6_addr, h, sizeof(h));
        snprintf(buf, cap, "[%s]:%u", h, ntohs(s->sin6_port));
    }
}

/* A non-blocking UDP socket with large buffers (so the kernel's own drops
 * do not add to the configured loss). Root may exceed rmem_max. */
static int udp_socket(int family)
{
    int fd = socket(family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    int sz = SOCK_BUF;
    if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &sz, sizeof(sz)) != 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &sz, sizeof(sz));
    if (setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &sz, sizeof(sz)) != 0)
        setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sz, sizeof(sz));
    return fd;
}

/* ---- flows --------------------------------------------------------------- */

static struct flow *flow_get(struct map *m, const struct sockaddr_storage *from, socklen_t flen,
                             uint64_t now)
{
    struct flow *free_slot = NULL;
    for (unsigned i = 0; i < nflows_used; i++) {
        struct flow *f = &flows[i];
        if (f->fd < 0) {
            if (!free_slot)
                free_slot = f;
        } else if (f->map == m && same_addr(&f->client, from))
            return f;
    }
    if (!free_slot) {
        if (nflows_used == MAX_FLOWS)
            return NULL;
        free_slot = &flows[nflows_used++];
    }
    int fd = udp_socket(m->target.ss_family);
    if (fd < 0)
        return NULL;
    if (connect(fd, (struct sockaddr *)&m->target, m->target_len) != 0) {
        close(fd);
        return NULL;
    }
    free_slot->fd = fd;
    free_slot->map = m;
    free_slot->client = *from;
    free_slot->client_len = flen;
    free_slot->last_ns = now;
    char c[64];
    fmt_addr(from, c, sizeof(c));
    fprintf(stderr, "%s: new flow %s -> %s\n", prog, c, m->spec);
    return free_slot;
}

static void flows_expire(uint64_t now)
{
    for (unsigned i = 0; i < nflows_used; i++)
        if (flows[i].fd >= 0 && now - flows[i].last_ns > idle_ns) {
            close(flows[i].fd);
            flows[i].fd = -1;
        }
}

/* ---- forwarding ---------------------------------------------------------- */

/* With --rate: when a datagram of len bytes to host, arriving now, has
 * crossed its link, or 0 if it would wait longer than the buffer allows. */
static uint64_t link_cross(const struct sockaddr_storage *host, size_t len, uint64_t now)
{
    struct link *l = NULL;
    for (unsigned i = 0; i < nlinks && !l; i++)
        if (same_host(&links[i].host, host))
            l = &links[i];
    if (!l) {
        l = &links[nlinks < MAX_LINKS ? nlinks++ : MAX_LINKS - 1]; /* beyond: the last one shared */
        l->host = *host;
        l->free_ns = 0;
    }
    uint64_t start = l->free_ns > now ? l->free_ns : now;
    if (start - now > buffer_ns)
        return 0;
    l->free_ns = start + (uint64_t)len * 1000000000ull / rate_bps;
    return l->free_ns;
}

/* Lose it, drop it at a full queue or link buffer, or hold it until its
 * due time. */
static void take(struct map *m, int dir, int out_fd, const struct sockaddr_storage *to,
                 socklen_t to_len, const unsigned char *data, size_t len, uint64_t now)
{
    struct dir_stats *st = &m->st[dir];
    st->in++;
    if (len > st->max_len)
        st->max_len = len;
    if (loss_all || (loss_threshold && rand64() < loss_threshold)) {
        st->lost++;
        return;
    }
    uint64_t hold = delay_ns;
    if (jitter_ns) {
        uint64_t off = rand64() % (2 * jitter_ns + 1);   /* [0, 2 jitter] */
        hold = hold + off > jitter_ns ? hold + off - jitter_ns : 0;
    }
    struct pkt *p;
    uint64_t leave = now; /* with --rate: once across its link */
    if (heap_len >= queue_max || (rate_bps && !(leave = link_cross(dir == 0 ? &m->target : to, len, now))) ||
        !(p = malloc(sizeof(*p) + len))) {
        st->overflow++;
        return;
    }
    p->due_ns = leave + hold;
    p->seq = next_seq++;
    p->recv_ns = now;
    p->map = m;
    p->dir = dir;
    p->fd = out_fd;
    p->to_len = to_len;
    if (to_len)
        memcpy(&p->to, to, to_len);
    p->len = len;
    memcpy(p->data, data, len);
    heap_push(p);
}

static void send_due(uint64_t now)
{
    while (heap_len && heap[0]->due_ns <= now) {
        struct pkt *p = heap_pop();
        struct dir_stats *st = &p->map->st[p->dir];
        ssize_t n = p->to_len ? sendto(p->fd, p->data, p->len, 0, (struct sockaddr *)&p->to, p->to_len)
                              : send(p->fd, p->data, p->len, 0);
        if (n < 0)
            st->send_err++;
        else {
            uint64_t held = now - p->recv_ns;
            st->sent++;
            st->bytes_sent += p->len;
            st->hold_sum_ns += held;
            if (held > st->hold_max_ns)
                st->hold_max_ns = held;
        }
        free(p);
    }
}

static unsigned char buf[MAX_DGRAM];

/* Client -> target: datagrams arriving on a map's listening socket. */
static void read_map(struct map *m)
{
    for (int i = 0; i < RECV_BATCH; i++) {
        struct sockaddr_storage from;
        socklen_t flen = sizeof(from);
        ssize_t n = recvfrom(m->fd, buf, sizeof(buf), 0, (struct sockaddr *)&from, &flen);
        if (n < 0)
            return;
        uint64_t now = now_ns();
        struct flow *f = flow_get(m, &from, flen, now);
        if (!f) {
            m->st[0].in++;
            m->st[0].send_err++;
            continue;
        }
        f->last_ns = now;
        take(m, 0, f->fd, NULL, 0, buf, (size_t)n, now);
    }
}

/* Target -> client: replies arriving on a flow's connected socket. */
static void read_flow(struct flow *f)
{
    for (int i = 0; i < RECV_BATCH && f->fd >= 0; i++) {
        ssize_t n = recv(f->fd, buf, sizeof(buf), 0);
        if (n < 0) {
            if (errno == ECONNREFUSED)   /* an ICMP error from the target: keep going */
                continue;
            return;
        }
        uint64_t now = now_ns();
        f->last_ns = now;
        take(f->map, 1, f->map->fd, &f->client, f->client_len, buf, (size_t)n, now);
    }
}

static void print_stats(void)
{
    static const char *dname[2] = { "to target", "replies" };
    for (unsigned i = 0; i < nmaps; i++)
        for (int d = 0; d < 2; d++) {
            const struct dir_stats *s = &maps[i].st[d];
            double pct = s->in ? 100.0 * (double)s->lost / (double)s->in : 0;
            double mean = s->sent ? (double)s->hold_sum_ns / (double)s->sent / 1e6 : 0;
            fprintf(stderr,
                    "%s: %s %s: %llu in, %llu lost (%.2f%%), %llu over queue limit, %llu send errors, "
                    "%llu sent (%llu bytes, largest datagram %llu), %llu waiting, held mean %.2f ms max %.2f ms\n",
                    prog, maps[i].spec, dname[d], (unsigned long long)s->in,
                    (unsigned long long)s->lost, pct, (unsigned long long)s->overflow,
                    (unsigned long long)s->send_err, (unsigned long long)s->sent,
                    (unsigned long long)s->bytes_sent, (unsigned long long)s->max_len,
                    (unsigned long long)(s->in - s->lost - s->overflow - s->send_err - s->sent), mean,
                    (double)s->hold_max_ns / 1e6);
        }
}

/* ---- main ---------------------------------------------------------------- */

static void usage(FILE *out)
{
    fprintf(out,
            "usage: landro-impair [--delay MS] [--jitter MS] [--loss PCT] [--seed N]\n"
            "                     [--rate KBPS] [--buffer MS] [--queue N] [--idle S]\n"
            "                     --map LISTEN=TARGET [--map ...]\n\n"
            "Relay UDP datagrams from LISTEN to TARGET and replies back, losing each one\n"
            "(both directions) with probability PCT %% and holding the rest MS ms.\n"
            "  --map L=T       listen on L (a.b.c.d:port or [v6]:port), forward to T; one\n"
            "                  flow (a socket connected to T) per client address. Repeatable\n"
            "  --delay MS      hold every datagram MS ms (default 0; fractions allowed)\n"
            "  --jitter MS     plus a uniform offset in [-MS, +MS] (default 0; may reorder)\n"
            "  --loss PCT      lose each datagram with probability PCT/100 (default 0)\n"
            "  --seed N        PRNG seed for loss and jitter (default 1)\n"
            "  --rate KBPS     the path into each destination host carries KBPS x 1000\n"
            "                  bytes/s; datagrams queue for it (default: no limit)\n"
            "  --buffer MS     drop a datagram that would queue longer than MS for its\n"
            "                  link (default 100)\n"
            "  --queue N       at most N datagrams held at once; more are dropped (20000)\n"
            "  --idle S        close a flow after S s without traffic (default 120)\n"
            "Prints 'listening L -> T' per map when ready; per-direction counts and\n"
            "measured hold times on stderr on SIGUSR1 and at exit (SIGINT/SIGTERM).\n");
}

static int parse_ms(const char *s, uint64_t *out_ns)
{
    char *end;
    double v = strtod(s, &end);
    if (end == s || *end || !(v >= 0) || v > 3600e3)
        return -1;
    *out_ns = (uint64_t)(v * 1e6);
    return 0;
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        { "delay", required_argument, NULL, 'd' }, { "jitter", required_argument, NULL, 'j' },
        { "loss", required_argument, NULL, 'l' },  { "seed", required_argument, NULL, 's' },
        { "queue", required_argument, NULL, 'q' }, { "idle", required_argument, NULL, 'i' },
        { "map", required_argument, NULL, 'm' },   { "help", no_argument, NULL, 'h' },
        { "rate", required_argument, NULL, 'r' },  { "buffer", required_argument, NULL, 'b' },
        { NULL, 0, NULL, 0 }
    };
    int c;
    char *end;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case 'd':
        case 'j':
            if (parse_ms(optarg, c == 'd' ? &delay_ns : &jitter_ns) != 0) {
                fprintf(stderr, "%s: bad --%s '%s'\n", prog, c == 'd' ? "delay" : "jitter", optarg);
                return 2;
            }
            break;
        case 'r': {
            unsigned long long v = strtoull(optarg, &end, 10);
            if (end == optarg || *end || v == 0 || v > 100000000) {
                fprintf(stderr, "%s: bad --rate '%s' (kilobytes per second, at least 1)\n", prog, optarg);
                return 2;
            }
            rate_bps = v * 1000ull;
            break;
        }
        case 'b':
            if (parse_ms(optarg, &buffer_ns) != 0) {
                fprintf(stderr, "%s: bad --buffer '%s'\n", prog, optarg);
                return 2;
            }
            break;
        case 'l': {
            double pct = strtod(optarg, &end);
            if (end == optarg || *end || !(pct >= 0 && pct <= 100)) {
                fprintf(stderr, "%s: bad --loss '%s' (a percentage, 0 to 100)\n", prog, optarg);
                return 2;
            }
            loss_all = pct >= 100;
            loss_threshold = (uint64_t)(pct / 100.0 * 18446744073709551616.0);
            break;
        }
        case 's':
            rng_state = strtoull(optarg, &end, 0);
            if (end == optarg || *end) {
                fprintf(stderr, "%s: bad --seed '%s'\n", prog, optarg);
                return 2;
            }
            break;
        case 'q':
        case 'i': {
            unsigned long long v = strtoull(optarg, &end, 10);
            if (end == optarg || *end || v == 0 || v > 100000000) {
                fprintf(stderr, "%s: bad --%s '%s'\n", prog, c == 'q' ? "queue" : "idle", optarg);
                return 2;
            }
            if (c == 'q')
                queue_max = (size_t)v;
            else
                idle_ns = v * 1000000000ull;
            break;
        }
        case 'm': {
            const char *eq = strchr(optarg, '=');
            struct map *m = &maps[nmaps];
            if (nmaps == MAX_MAPS || !eq ||
                parse_addr(optarg, (size_t)(eq - optarg), &m->listen, &m->listen_len) != 0 ||
                parse_addr(eq + 1, strlen(eq + 1), &m->target, &m->target_len) != 0) {
                fprintf(stderr, "%s: bad --map '%s' (LISTEN=TARGET, each ADDR:PORT; at most %d)\n",
                        prog, optarg, MAX_MAPS);
                return 2;
            }
            m->spec = optarg;
            nmaps++;
            break;
        }
        case 'h':
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
    }
    if (optind != argc || nmaps == 0) {
        usage(stderr);
        return 2;
    }
    uint64_t link_ns = rate_bps ? buffer_ns + (uint64_t)MAX_DGRAM * 1000000000ull / rate_bps : 0;
    if (idle_ns < delay_ns + jitter_ns + link_ns + 1000000000ull) {
        fprintf(stderr, "%s: --idle must exceed the longest hold by a second\n", prog);
        return 2;
    }
    if (!(heap = malloc(queue_max * sizeof(*heap)))) {
        fprintf(stderr, "%s: out of memory for a %zu-datagram queue\n", prog, queue_max);
        return 1;
    }
    for (unsigned i = 0; i < MAX_FLOWS; i++)
        flows[i].fd = -1;

    for (unsigned i = 0; i < nmaps; i++) {
        struct map *m = &maps[i];
        m->fd = udp_socket(m->listen.ss_family);
        if (m->fd < 0 || bind(m->fd, (struct sockaddr *)&m->listen, m->listen_len) != 0) {
            fprintf(stderr, "%s: cannot listen on '%s': %s\n", prog, m->spec, strerror(errno));
            return 1;
        }
    }

    /* Signals are blocked except inside ppoll, so none is lost between the
     * flag checks and the wait. */
    sigset_t block, waitmask;
    sigemptyset(&block);
    sigaddset(&block, SIGINT);
    sigaddset(&block, SIGTERM);
    sigaddset(&block, SIGUSR1);
    sigprocmask(SIG_BLOCK, &block, &waitmask);
    sigdelset(&waitmask, SIGINT);
    sigdelset(&waitmask, SIGTERM);
    sigdelset(&waitmask, SIGUSR1);
    struct sigaction sa = { .sa_handler = on_signal };
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGUSR1, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);

    for (unsigned i = 0; i < nmaps; i++) {
        char l[64], t[64];
        fmt_addr(&maps[i].listen, l, sizeof(l));
        fmt_addr(&maps[i].target, t, sizeof(t));
        printf("listening %s -> %s\n", l, t);
    }
    fflush(stdout);

    struct pollfd pfd[MAX_MAPS + MAX_FLOWS];
    struct flow *pflow[MAX_MAPS + MAX_FLOWS];
    uint64_t next_expire = now_ns() + 1000000000ull;
    while (!got_stop) {
        if (got_usr1) {
            got_usr1 = 0;
            print_stats();
        }
        unsigned n = 0;
        for (unsigned i = 0; i < nmaps; i++) {
            pfd[n] = (struct pollfd){ .fd = maps[i].fd, .events = POLLIN };
            pflow[n++] = NULL;
        }
        for (unsigned i = 0; i < nflows_used; i++)
            if (flows[i].fd >= 0) {
                pfd[n] = (struct pollfd){ .fd = flows[i].fd, .events = POLLIN };
                pflow[n++] = &flows[i];
            }
        uint64_t now = now_ns();
        uint64_t wake = next_expire;
        if (heap_len && heap[0]->due_ns < wake)
            wake = heap[0]->due_ns;
        uint64_t wait = wake > now ? wake - now : 0;
        struct timespec ts = { (time_t)(wait / 1000000000ull), (long)(wait % 1000000000ull) };
        int r = ppoll(pfd, n, &ts, &waitmask);
        if (r < 0 && errno != EINTR) {
            fprintf(stderr, "%s: poll: %s\n", prog, strerror(errno));
            break;
        }
        /* Due datagrams first, so a busy input does not delay them further. */
        send_due(now_ns());
        if (r > 0)
            for (unsigned i = 0; i < n; i++) {
                if (!(pfd[i].revents & (POLLIN | POLLERR)))
                    continue;
                if (pflow[i])
                    read_flow(pflow[i]);
                else
                    read_map(&maps[i]);
            }
        send_due(now_ns());
        now = now_ns();
        if (now >= next_expire) {
            flows_expire(now);
            next_expire = now + 1000000000ull;
        }
    }
    print_stats();
    while (heap_len)   /* still held: never sent */
        free(heap_pop());
    free(heap);
    return 0;
}
