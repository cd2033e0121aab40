/*
 * landro-net-bench - move N chunks of 64 KiB between two landro nodes over
 * QUIC and print MB/s and CPU seconds; or, with --tcp, the same bytes over
 * one plain TCP connection (the baseline).
 *
 *   landro-net-bench [--chunks N] [--window W] [--tcp] [--addr IP] [--drop PERMILLE]
 *                    [--delay MS] [--verify-threads N] [--conns N]
 *       forks a server process and runs the client in this one; --drop
 *       makes both ends lose that many of every 1000 datagrams they send,
 *       --delay MS holds each one back that long (test seams of net/);
 *       --verify-threads sets the client's cfg.verify_threads, --conns
 *       its cfg.conns_per_peer (the pool grows only when every connection
 *       has max_inflight, 64, requests out: use --window above 64)
 *   landro-net-bench --id --dir D      (create if needed and print D's device id)
 *   landro-net-bench --server --dir D --listen ADDR --peer ID [--chunks N]
 *   landro-net-bench --client --dir D --connect ADDR --peer ID [--chunks N]
 *                    [--window W] [--conns N]
 * With NET_BENCH_DEBUG set in the environment, client and server each print
 * a line a second on stderr: bytes so far, congestion window, bytes in
 * flight, smoothed RTT, rate.
 *
 * Chunk i is a 64 KiB pseudo-random block (same seed on both sides) with i
 * in its first eight bytes; the client names chunks by hash and the node
 * verifies every chunk's SHA-256 before handing it over. Output lines:
 *   quic: 1073741824 bytes in 1.234 s = 870.1 MB/s, cpu client 1.10 s
 *   pings: max pong age 312 ms (ping period 1000 ms), srtt 400 us, errors 0, timeouts 0
 *   verified: 16384 of 16384 chunks, 0 failed
 *   client threads: landro-net 0.90 s, landro-verify 0.78 s, other 0.02 s
 *   server cpu 0.70 s
 *   server threads: landro-net 0.69 s, landro-verify 0.00 s, other 0.01 s
 * Exit status 0 only if every chunk arrived verified.
 */
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "net.h"

#define CHUNK 65536

static unsigned nchunks = 16384, window = 64, drop_permille, delay_ms, verify_threads, conns;
static uint8_t *base;
static st_hash *hashes;
static volatile sig_atomic_t got_term;

static void usage(void)
{
    fprintf(stderr, "usage: landro-net-bench [--chunks N] [--window W] [--tcp] [--addr IP] [--drop PERMILLE] [--delay MS]\n"
                    "                        [--verify-threads N] [--conns N]\n"
                    "       landro-net-bench --id --dir D\n"
                    "       landro-net-bench --server --dir D --listen ADDR --peer ID [--chunks N]\n"
                    "       landro-net-bench --client --dir D --connect ADDR --peer ID [--chunks N]\n"
                    "                        [--window W] [--conns N]\n");
    exit(2);
}

static void make_chunk(unsigned i, uint8_t *out)
{
    memcpy(out, base, CHUNK);
    lr_put_le64(out, i);
}

static void init_data(int with_hashes)
{
    base = malloc(CHUNK);
    uint64_t x = 0x9E3779B97F4A7C15ull;
    for (size_t i = 0; i < CHUNK; i++) {
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        base[i] = (uint8_t)((x * 0x2545F4914F6CDD1Dull) >> 56);
    }
    if (!with_hashes)
        return;
    hashes = malloc(nchunks * sizeof(*hashes));
    uint8_t *buf = malloc(CHUNK);
    for (unsigned i = 0; i < nchunks; i++) {
        make_chunk(i, buf);
        st_hash_compute(buf, CHUNK, &hashes[i]);
    }
    free(buf);
}

static double cpu_now(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 + (double)ru.ru_stime.tv_sec +
           ru.ru_stime.tv_usec / 1e6;
}

static double wall_now(void)
{
    return (double)lr_now_mono_ns() / 1e9;
}

/* CPU time per thread name (landro-net, landro-verify, the rest as
 * "other"), from /proc/self/task: snapshot before, difference after. */
#define MAX_TASKS 64
struct tasks {
    unsigned n;
    struct { int tid; char comm[20]; double secs; } t[MAX_TASKS];
};

static void tasks_read(struct tasks *ts)
{
    ts->n = 0;
    DIR *d = opendir("/proc/self/task");
    if (!d)
        return;
    double tick = (double)sysconf(_SC_CLK_TCK);
    struct dirent *e;
    while ((e = readdir(d)) && ts->n < MAX_TASKS) {
        if (e->d_name[0] == '.')
            continue;
        char path[300], buf[512];
        snprintf(path, sizeof(path), "/proc/self/task/%s/stat", e->d_name);
        FILE *f = fopen(path, "r");
        if (!f)
            continue;
        size_t k = fread(buf, 1, sizeof(buf) - 1, f);
        fclose(f);
        buf[k] = 0;
        char *open = strchr(buf, '('), *close = strrchr(buf, ')');
        unsigned long ut = 0, st = 0;
        if (!open || !close ||
            sscanf(close + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &ut, &st) != 2)
            continue;
        ts->t[ts->n].tid = atoi(e->d_name);
        snprintf(ts->t[ts->n].comm, sizeof(ts->t[0].comm), "%.*s", (int)(close - open - 1), open + 1);
        ts->t[ts->n].secs = (double)(ut + st) / tick;
        ts->n++;
    }
    closedir(d);
}

/* "landro-net 0.91 s, landro-verify 0.80 s, other 0.02 s" */
static void tasks_format(const struct tasks *before, char *out, size_t cap)
{
    static const char *names[] = { "landro-net", "landro-verify" };
    double sum[3] = { 0, 0, 0 };
    struct tasks now;
    tasks_read(&now);
    for (unsigned i = 0; i < now.n; i++) {
        double s = now.t[i].secs;
        for (unsigned j = 0; j < before->n; j++)
            if (before->t[j].tid == now.t[i].tid)
                s -= before->t[j].secs;
        unsigned k = 2;
        for (unsigned j = 0; j < 2; j++)
            if (strcmp(now.t[i].comm, names[j]) == 0)
                k = j;
        sum[k] += s;
    }
    snprintf(out, cap, "%s %.2f s, %s %.2f s, other %.2f s", names[0], sum[0], names[1], sum[1], sum[2]);
}

/* ---- QUIC server ---------------------------------------------------------- */

/* hash -> chunk index, open addressing on the first 8 bytes of the hash */
static unsigned *slots;
static unsigned nslots;

static void build_index(void)
{
    nslots = 1;
    while (nslots < nchunks * 2)
        nslots <<= 1;
    slots = malloc(nslots * sizeof(*slots));
    memset(slots, 0xff, nslots * sizeof(*slots));
    for (unsigned i = 0; i < nchunks; i++) {
        unsigned s = (unsigned)lr_get_le64(hashes[i].b) & (nslots - 1);
        while (slots[s] != UINT32_MAX)
            s = (s + 1) & (nslots - 1);
        slots[s] = i;
    }
}

static int serve_chunk(void *ctx, const net_id *from, int relay, const st_hash *h, void *buf, size_t cap,
                       size_t *len)
{
    (void)from; (void)relay;
    unsigned s = (unsigned)lr_get_le64(h->b) & (nslots - 1);
    for (; slots[s] != UINT32_MAX; s = (s + 1) & (nslots - 1))
        if (memcmp(&hashes[slots[s]], h, sizeof(*h)) == 0) {
            *len = CHUNK;
            if (cap < CHUNK)
                return -EFBIG;
            make_chunk(slots[s], buf);
            return 0;
        }
    return -ENOENT;
}

static void on_term(int sig)
{
    got_term = 1;
}

static int ensure_identity(const char *dir, net_id *id)
{
    struct net_identity ident;
    mkdir(dir, 0700);
    int rc = net_identity_load(dir, &ident);
    if (rc == -ENOENT)
        return net_identity_create(dir, id);
    if (rc == 0) {
        *id = ident.id;
        net_identity_release(&ident);
    }
    return rc;
}

/* Serve until SIGTERM; report "port N" on out_fd when ready and
 * "cpu SECONDS" (since ready) when done. */
static int server_main(const char *dir, const char *listen, const net_id *peer, int out_fd)
{
    net_id me;
    if (ensure_identity(dir, &me) != 0)
        return 1;
    if (!hashes)
        init_data(1);
    build_index();
    signal(SIGTERM, on_term);
    signal(SIGINT, on_term);
    struct net_config cfg = { 0 };
    cfg.identity_dir = dir;
    cfg.listen[0] = listen;
    cfg.get_chunk = serve_chunk;
    cfg.test_drop_permille = drop_permille;
    cfg.test_delay_ms = delay_ms;
    struct net_node *n;
    int rc = net_node_new(&cfg, &n);
    if (rc != 0) {
        fprintf(stderr, "landro-net-bench: cannot start server: %s\n", lr_strerror(rc));
        return 1;
    }
    net_peer_add(n, peer, NULL, 0);
    net_node_start(n);
    double c0 = cpu_now();
    struct tasks t0;
    tasks_read(&t0);
    dprintf(out_fd, "port %d\n", net_node_port(n, 0));
    int debug = getenv("NET_BENCH_DEBUG") != NULL;
    double last_dbg = wall_now(), w0 = last_dbg;
    while (!got_term) {
        usleep(20000);
        struct net_peer_stats ds;
        if (debug && wall_now() - last_dbg >= 1.0 && net_peer_stats(n, &ds, 1) >= 1) {
            last_dbg = wall_now();
            fprintf(stderr, "server %6.1f s: cwnd %llu, in flight %llu, srtt %llu us, tx %llu kB/s\n",
                    last_dbg - w0, (unsigned long long)ds.cwnd, (unsigned long long)ds.bytes_in_flight,
                    (unsigned long long)ds.srtt_us, (unsigned long long)ds.tx_bps / 1000);
        }
    }
    double cpu = cpu_now() - c0;
    char threads[160];
    tasks_format(&t0, threads, sizeof(threads));
    struct net_peer_stats st;
    if (debug && net_peer_stats(n, &st, 1) >= 1)
        fprintf(stderr, "server: cwnd %llu srtt %llu us rttvar %llu us\n", (unsigned long long)st.cwnd,
                (unsigned long long)st.srtt_us, (unsigned long long)st.rttvar_us);
    net_node_free(n);
    dprintf(out_fd, "cpu %.3f\n", cpu);
    dprintf(out_fd, "threads %s\n", threads);
    return 0;
}

/* ---- QUIC client ------------------------------------------------------------ */

struct run {
    pthread_mutex_t m;
    pthread_cond_t cv;
    struct net_node *n;
    net_id peer;
    unsigned next, done, failed;
    uint64_t bytes;
};

static void fetch_cb(void *ctx, int err, const st_hash *h, const uint8_t *data, size_t len, const net_id *from);

static void issue(struct run *r)
{
    /* called with r->m held or before the transfer starts */
    unsigned i = r->next++;
    if (net_fetch(r->n, &hashes[i], &r->peer, 1, 30000, fetch_cb, r) != 0)
        r->failed++, r->done++;
}

static void fetch_cb(void *ctx, int err, const st_hash *h, const uint8_t *data, size_t len, const net_id *from)
{
    struct run *r = ctx;
    pthread_mutex_lock(&r->m);
    if (err == 0 && len == CHUNK)
        r->bytes += len;
    else {
        if (r->failed++ < 5) {
        char hex[65];
        fprintf(stderr, "landro-net-bench: chunk %s: %s\n", st_hash_hex(h, hex), lr_strerror(err));
        }
    }
    r->done++;
    if (err != 0 && r->next < nchunks) {
        /* give up: the chunks never asked for count as failed */
        r->failed += nchunks - r->next;
        r->done += nchunks - r->next;
        r->next = nchunks;
    }
    if (r->next < nchunks)
        issue(r);
    if (r->done == nchunks)
        pthread_cond_signal(&r->cv);
    pthread_mutex_unlock(&r->m);
}

static int client_main(const char *dir, const char *connect, const net_id *peer, double server_cpu_unused)
{
    net_id me;
    if (ensure_identity(dir, &me) != 0)
        return 1;
    if (!hashes)
        init_data(1);
    struct net_config cfg = { 0 };
    cfg.identity_dir = dir;
    cfg.listen[0] = strchr(connect, '[') ? "[::]:0" : "0.0.0.0:0";
    cfg.test_drop_permille = drop_permille;
    cfg.test_delay_ms = delay_ms;
    cfg.verify_threads = verify_threads;
    cfg.conns_per_peer = conns;
    struct run r = { .peer = *peer };
    pthread_mutex_init(&r.m, NULL);
    pthread_cond_init(&r.cv, NULL);
    int rc = net_node_new(&cfg, &r.n);
    if (rc != 0) {
        fprintf(stderr, "landro-net-bench: cannot start client: %s\n", lr_strerror(rc));
        return 1;
    }
    const char *addrs[1] = { connect };
    if (net_peer_add(r.n, peer, addrs, 1) != 0)
        return 1;
    net_node_start(r.n);
    /* wait for the connection */
    struct net_peer_stats st;
    for (int t = 0; t < 200; t++) {
        if (net_peer_stats(r.n, &st, 1) >= 1 && st.conns > 0)
            break;
        usleep(25000);
    }
    if (st.conns == 0) {
        fprintf(stderr, "landro-net-bench: no connection to %s\n", connect);
        net_node_free(r.n);
        return 1;
    }
    printf("connected\n");
    fflush(stdout);
    uint64_t ping_ms = 1000, max_age = 0;
    double c0 = cpu_now(), t0 = wall_now(), last_dbg = t0;
    int debug = getenv("NET_BENCH_DEBUG") != NULL;
    struct tasks tk0;
    tasks_read(&tk0);
    pthread_mutex_lock(&r.m);
    for (unsigned i = 0; i < window && r.next < nchunks; i++)
        issue(&r);
    while (r.done < nchunks) {
        struct timespec ts;
        lr_deadline_in(&ts, 100000000ull);
        pthread_cond_timedwait(&r.cv, &r.m, &ts);
        pthread_mutex_unlock(&r.m);
        if (net_peer_stats(r.n, &st, 1) >= 1 && st.last_pong_age_ms != UINT64_MAX &&
            st.last_pong_age_ms > max_age)
            max_age = st.last_pong_age_ms;
        if (debug && wall_now() - last_dbg >= 1.0) {
            last_dbg = wall_now();
            fprintf(stderr, "%6.1f s: %llu MB, cwnd %llu, in flight %llu, srtt %llu us, rx %llu kB/s, timeouts %llu\n",
                    last_dbg - t0, (unsigned long long)(r.bytes >> 20), (unsigned long long)st.cwnd,
                    (unsigned long long)st.bytes_in_flight, (unsigned long long)st.srtt_us,
                    (unsigned long long)st.rx_bps / 1000, (unsigned long long)st.timeouts);
        }
        pthread_mutex_lock(&r.m);
    }
    pthread_mutex_unlock(&r.m);
    double secs = wall_now() - t0, cpu = cpu_now() - c0;
    char threads[160];
    tasks_format(&tk0, threads, sizeof(threads));
    usleep(300000);
    net_peer_stats(r.n, &st, 1);
    printf("quic: %llu bytes in %.3f s = %.1f MB/s, cpu client %.2f s", (unsigned long long)r.bytes, secs,
           (double)r.bytes / secs / 1e6, cpu);
    fflush(stdout);
    printf("\npings: max pong age %llu ms (ping period %llu ms), srtt %llu us, errors %llu, timeouts %llu\n",
           (unsigned long long)max_age, (unsigned long long)ping_ms, (unsigned long long)st.srtt_us,
           (unsigned long long)st.errors, (unsigned long long)st.timeouts);
    printf("verified: %u of %u chunks, %u failed\n", nchunks - r.failed, nchunks, r.failed);
    printf("client threads: %s\n", threads);
    net_node_free(r.n);
    return r.failed ? 1 : 0;
}

/* ---- TCP baseline --------------------------------------------------------------- */

static int tcp_server(int lfd, int out_fd)
{
    init_data(0);
    int fd = accept(lfd, NULL, NULL);
    if (fd < 0)
        return 1;
    double c0 = cpu_now();
    uint8_t *buf = malloc(CHUNK);
    for (unsigned i = 0; i < nchunks; i++) {
        make_chunk(i, buf);
        for (size_t off = 0; off < CHUNK;) {
            ssize_t w = write(fd, buf + off, CHUNK - off);
            if (w <= 0)
                return 1;
            off += (size_t)w;
        }
    }
    close(fd);
    dprintf(out_fd, "cpu %.3f\n", cpu_now() - c0);
    return 0;
}

static int tcp_client(int port, const char *ip, double *secs, double *cpu, uint64_t *bytes)
{
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
    inet_pton(AF_INET, ip, &a.sin_addr);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (connect(fd, (struct sockaddr *)&a, sizeof(a)) != 0)
        return 1;
    uint8_t *buf = malloc(CHUNK);
    double c0 = cpu_now(), t0 = wall_now();
    *bytes = 0;
    for (;;) {
        ssize_t r = read(fd, buf, CHUNK);
        if (r <= 0)
            break;
        *bytes += (uint64_t)r;
    }
    *secs = wall_now() - t0;
    *cpu = cpu_now() - c0;
    close(fd);
    free(buf);
    return *bytes == (uint64_t)nchunks * CHUNK ? 0 : 1;
}

/* ---- driver ------------------------------------------------------------------------ */

static int read_line(int fd, char *buf, size_t cap)
{
    size_t n = 0;
    while (n + 1 < cap) {
        ssize_t r = read(fd, buf + n, 1);
        if (r <= 0)
            return -1;
        if (buf[n] == '\n')
            break;
        n++;
    }
    buf[n] = 0;
    return 0;
}

static int self_run(int tcp, const char *ip)
{
    char tmpl[] = "/tmp/landro-net-bench-XXXXXX";
    if (!mkdtemp(tmpl))
        return 1;
    char sdir[256], cdir[256];
    snprintf(sdir, sizeof(sdir), "%s/server", tmpl);
    snprintf(cdir, sizeof(cdir), "%s/client", tmpl);
    net_id sid, cid;
    if (!tcp && (ensure_identity(sdir, &sid) != 0 || ensure_identity(cdir, &cid) != 0))
        return 1;
    int lfd = -1, port = 0;
    if (tcp) {
        lfd = socket(AF_INET, SOCK_STREAM, 0);
        struct sockaddr_in a = { .sin_family = AF_INET };
        inet_pton(AF_INET, ip, &a.sin_addr);
        socklen_t al = sizeof(a);
        if (bind(lfd, (struct sockaddr *)&a, sizeof(a)) != 0 || listen(lfd, 1) != 0)
            return 1;
        getsockname(lfd, (struct sockaddr *)&a, &al);
        port = ntohs(a.sin_port);
    } else
        init_data(1); /* before fork: both sides need the hashes */
    int pfd[2];
    if (pipe(pfd) != 0)
        return 1;
    pid_t pid = fork();
    if (pid == 0) {
        /* the server must not outlive the client (a killed run, a timeout) */
        prctl(PR_SET_PDEATHSIG, SIGTERM);
        if (getppid() == 1)
            _exit(1);
        close(pfd[0]);
        char listen[80];
        snprintf(listen, sizeof(listen), strchr(ip, ':') ? "[%s]:0" : "%s:0", ip);
        _exit(tcp ? tcp_server(lfd, pfd[1]) : server_main(sdir, listen, &cid, pfd[1]));
    }
    close(pfd[1]);
    char line[128];
    int rc = 1;
    if (tcp) {
        double secs = 1, cpu = 0;
        uint64_t bytes = 0;
        rc = tcp_client(port, ip, &secs, &cpu, &bytes);
        double scpu = 0;
        if (read_line(pfd[0], line, sizeof(line)) == 0)
            sscanf(line, "cpu %lf", &scpu);
        printf("tcp: %llu bytes in %.3f s = %.1f MB/s, cpu client %.2f s server %.2f s\n",
               (unsigned long long)bytes, secs, (double)bytes / secs / 1e6, cpu, scpu);
    } else {
        if (read_line(pfd[0], line, sizeof(line)) != 0 || strncmp(line, "port ", 5) != 0) {
            fprintf(stderr, "landro-net-bench: server did not start\n");
        } else {
            char addr[96];
            snprintf(addr, sizeof(addr), strchr(ip, ':') ? "[%s]:%s" : "%s:%s", ip, line + 5);
            rc = client_main(cdir, addr, &sid, 0);
        }
        kill(pid, SIGTERM);
        double scpu = 0;
        if (read_line(pfd[0], line, sizeof(line)) == 0)
            sscanf(line, "cpu %lf", &scpu);
        printf("server cpu %.2f s\n", scpu);
        if (read_line(pfd[0], line, sizeof(line)) == 0 && strncmp(line, "threads ", 8) == 0)
            printf("server threads: %s\n", line + 8);
    }
    int st;
    waitpid(pid, &st, 0);
    char cmd[300];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpl);
    if (system(cmd) != 0)
        fprintf(stderr, "cannot remove '%s'\n", tmpl);
    return rc;
}

int main(int argc, char **argv)
{
    enum { O_SERVER = 1, O_CLIENT, O_TCP, O_DIR, O_LISTEN, O_CONNECT, O_PEER, O_CHUNKS, O_WINDOW, O_ADDR, O_V, O_DROP, O_ID, O_DELAY, O_VERIFY, O_CONNS };
    static const struct option opts[] = {
        { "server", no_argument, 0, O_SERVER }, { "client", no_argument, 0, O_CLIENT },
        { "tcp", no_argument, 0, O_TCP },       { "dir", required_argument, 0, O_DIR },
        { "listen", required_argument, 0, O_LISTEN }, { "connect", required_argument, 0, O_CONNECT },
        { "peer", required_argument, 0, O_PEER }, { "chunks", required_argument, 0, O_CHUNKS },
        { "window", required_argument, 0, O_WINDOW }, { "addr", required_argument, 0, O_ADDR },
        { "verbose", no_argument, 0, O_V },     { "drop", required_argument, 0, O_DROP },
        { "id", no_argument, 0, O_ID },         { "delay", required_argument, 0, O_DELAY },
        { "verify-threads", required_argument, 0, O_VERIFY }, { "conns", required_argument, 0, O_CONNS },
        { 0, 0, 0, 0 },
    };
    int mode = 0, tcp = 0, o;
    const char *dir = NULL, *listen = "0.0.0.0:0", *connect = NULL, *peer = NULL, *ip = "127.0.0.1";
    lr_log_set_level(LR_LOG_WARN);
    while ((o = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (o) {
        case O_SERVER: mode = O_SERVER; break;
        case O_CLIENT: mode = O_CLIENT; break;
        case O_TCP: tcp = 1; break;
        case O_DIR: dir = optarg; break;
        case O_LISTEN: listen = optarg; break;
        case O_CONNECT: connect = optarg; break;
        case O_PEER: peer = optarg; break;
        case O_CHUNKS: nchunks = (unsigned)strtoul(optarg, NULL, 10); break;
        case O_WINDOW: window = (unsigned)strtoul(optarg, NULL, 10); break;
        case O_ADDR: ip = optarg; break;
        case O_V: lr_log_set_level(LR_LOG_DEBUG); break;
        case O_ID: mode = O_ID; break;
        case O_DELAY: delay_ms = (unsigned)strtoul(optarg, NULL, 10); break;
        case O_DROP: drop_permille = (unsigned)strtoul(optarg, NULL, 10); break;
        case O_VERIFY: verify_threads = (unsigned)strtoul(optarg, NULL, 10); break;
        case O_CONNS: conns = (unsigned)strtoul(optarg, NULL, 10); break;
        default: usage();
        }
    }
    if (nchunks == 0 || window == 0)
        usage();
    if (mode == 0)
        return self_run(tcp, ip);
    if (mode == O_ID) {
        net_id me;
        char s[NET_ID_STR_LEN];
        if (!dir || ensure_identity(dir, &me) != 0)
            usage();
        printf("%s\n", net_id_format(&me, s));
        return 0;
    }
    net_id pid;
    if (!dir || !peer || net_id_parse(peer, &pid) != 0) {
        fprintf(stderr, "landro-net-bench: --dir and a valid --peer ID are required\n");
        usage();
    }
    if (mode == O_SERVER)
        return server_main(dir, listen, &pid, 1);
    if (!connect)
        usage();
    return client_main(dir, connect, &pid, 0);
}
