/* ctl.c - the daemon's control socket (see ctl.h). */
#include "ctl.h"

#include <dirent.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "net.h"
#include "peerrec.h"
#include "replica.h"
#include "sync.h"

#define CTL_MAX_PEERS 64

struct fs_ctl {
    st_store *st;
    struct fs_ctl_info info;
    char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
    int fd;
    int stop_pipe[2];
    pthread_t thr;
    uint64_t started_ns;
};

/* ---- the snapshot ---------------------------------------------------------- */

struct ctl_peer {
    struct net_peer_stats s;
    int have_stats;              /* 0: from the peer db only (offline) */
};

struct ctl_snap {
    struct st_meta meta;
    struct st_usage usage;
    struct st_space space;       /* the store map's free pages */
    net_id device;
    uint64_t conflicts;
    uint64_t log_records, tombstones;
    unsigned npeers;
    struct ctl_peer peers[CTL_MAX_PEERS];
    struct fs_sync_status sync;  /* when online */
    unsigned inflight;
    uint64_t rx_bps, tx_bps;     /* all peers */
    int online;
    unsigned nlisten;
    const char *listen[NET_MAX_LISTEN];
    int ports[NET_MAX_LISTEN];
};

struct walk {
    uint64_t *stack;
    size_t n, cap;
    uint64_t conflicts;
    int err;
};

static int walk_one(const struct st_dirent *d, void *arg)
{
    struct walk *w = arg;
    if (memmem(d->name, d->namelen, ".sync-conflict-", 15))
        w->conflicts++;
    if (d->type == DT_DIR) {
        uint64_t *s = lr_grow(w->stack, &w->cap, w->n, sizeof(*s), 64);
        if (!s) {
            w->err = -ENOMEM;
            return 1;
        }
        w->stack = s;
        w->stack[w->n++] = d->child;
    }
    return 0;
}

/* Count names containing ".sync-conflict-" in the whole tree. */
static int count_conflicts(st_store *st, uint64_t *out)
{
    st_txn *t;
    int rc = st_txn_begin(st, ST_TXN_READ, &t);
    if (rc)
        return rc;
    struct walk w = { 0 };
    uint64_t dir = ST_ROOT_INO;
    for (;;) {
        rc = st_dirent_foreach(t, dir, NULL, 0, walk_one, &w);
        if (rc < 0 || w.err)
            break;
        rc = 0;
        if (w.n == 0)
            break;
        dir = w.stack[--w.n];
    }
    st_txn_abort(t);
    free(w.stack);
    if (w.err)
        return w.err;
    *out = w.conflicts;
    return rc < 0 ? rc : 0;
}

static int dbpeer_one(const uint8_t *id, const void *rec, size_t len, void *arg)
{
    struct ctl_snap *s = arg;
    if (s->npeers == CTL_MAX_PEERS)
        return 1;
    struct ctl_peer *p = &s->peers[s->npeers++];
    memset(p, 0, sizeof(*p));
    memcpy(p->s.id.b, id, NET_ID_LEN);
    p->s.state = NET_PEER_DOWN;
    p->s.last_pong_age_ms = UINT64_MAX;
    struct st_peerrec r;
    if (st_peerrec_decode(rec, len, &r) == 0 && r.naddrs > 0)
        snprintf(p->s.addr, sizeof(p->s.addr), "%s", r.addrs[0]);
    return 0;
}

static int snapshot(st_store *st, const struct fs_ctl_info *info, struct ctl_snap *s)
{
    memset(s, 0, sizeof(*s));
    st_meta(st, &s->meta);
    int rc = st_usage(st, &s->usage);
    if (rc == 0)
        rc = st_space(st, &s->space);
    if (rc)
        return rc;
    if ((rc = count_conflicts(st, &s->conflicts)) != 0)
        return rc;
    st_txn *h;
    if ((rc = st_txn_begin(st, ST_TXN_READ, &h)) != 0)
        return rc;
    if ((rc = st_log_count(h, &s->log_records)) == 0)
        rc = st_tomb_count(h, &s->tombstones);
    st_txn_abort(h);
    if (rc)
        return rc;
    memcpy(s->device.b, s->meta.device, NET_ID_LEN);
    struct net_node *n = info->sync ? fs_sync_net(info->sync) : NULL;
    if (n) {
        s->online = 1;
        fs_sync_status(info->sync, &s->sync);
        struct net_peer_stats *tmp = calloc(CTL_MAX_PEERS, sizeof(*tmp));
        if (!tmp)
            return -ENOMEM;
        int np = net_peer_stats(n, tmp, CTL_MAX_PEERS);
        if (np > CTL_MAX_PEERS)
            np = CTL_MAX_PEERS;
        for (int i = 0; i < np; i++) {
            s->peers[i].s = tmp[i];
            s->peers[i].have_stats = 1;
            s->inflight += tmp[i].inflight;
            s->rx_bps += tmp[i].rx_bps;
            s->tx_bps += tmp[i].tx_bps;
        }
        s->npeers = (unsigned)(np < 0 ? 0 : np);
        free(tmp);
        if (info->listen)
            while (s->nlisten < NET_MAX_LISTEN && info->listen[s->nlisten]) {
                s->listen[s->nlisten] = info->listen[s->nlisten];
                s->nlisten++;
            }
        if (s->nlisten == 0) {
            s->listen[0] = "[::]:0";
            s->nlisten = 1;
        }
        for (unsigned i = 0; i < s->nlisten; i++)
            s->ports[i] = net_node_port(n, i);
    } else {
        st_txn *t;
        if ((rc = st_txn_begin(st, ST_TXN_READ, &t)) != 0)
            return rc;
        rc = st_peer_foreach(t, dbpeer_one, s);
        st_txn_abort(t);
        if (rc < 0)
            return rc;
    }
    return 0;
}

/* ---- rendering ------------------------------------------------------------- */

static void json_str(FILE *out, const char *v)
{
    fputc('"', out);
    for (const unsigned char *p = (const unsigned char *)v; *p; p++) {
        if (*p == '"' || *p == '\\')
            fprintf(out, "\\%c", *p);
        else if (*p < 0x20 || *p == 0x7f)
            fprintf(out, "\\u%04x", *p);
        else
            fputc(*p, out);
    }
    fputc('"', out);
}

static void hex(char *out, const uint8_t *b, size_t n)
{
    for (size_t i = 0; i < n; i++)
        sprintf(out + 2 * i, "%02x", b[i]);
}

static void render_json(const struct ctl_snap *s, st_store *st, const struct fs_ctl_info *info,
                        uint64_t uptime_s, FILE *out)
{
    char vol[2 * ST_VOLUME_ID_LEN + 1], id[NET_ID_STR_LEN];
    hex(vol, s->meta.volume, ST_VOLUME_ID_LEN);
    fprintf(out, "{\"version\":%d,\"store\":", FS_CTL_JSON_VERSION);
    json_str(out, st_dir(st));
    fprintf(out, ",\"mountpoint\":");
    json_str(out, info->mountpoint ? info->mountpoint : "");
    fprintf(out, ",\"pid\":%ld,\"uptime_s\":%" PRIu64 ",\"volume\":\"%s\",\"device\":\"%s\"",
            (long)getpid(), uptime_s, vol, net_id_format(&s->device, id));
    fprintf(out, ",\"online\":%s,\"fetch_timeout_ms\":%u,\"listen\":[", s->online ? "true" : "false",
            info->fetch_timeout_ms);
    for (unsigned i = 0; i < s->nlisten; i++) {
        fprintf(out, "%s{\"address\":", i ? "," : "");
        json_str(out, s->listen[i]);
        fprintf(out, ",\"port\":%d}", s->ports[i]);
    }
    fprintf(out, "],\"peers\":[");
    for (unsigned i = 0; i < s->npeers; i++) {
        const struct net_peer_stats *p = &s->peers[i].s;
        fprintf(out, "%s{\"id\":\"%s\",\"state\":\"%s\",\"address\":", i ? "," : "",
                net_id_format(&p->id, id),
                s->online ? net_peer_state_name(p->state) : "offline");
        json_str(out, p->addr);
        if (!s->peers[i].have_stats) {
            fprintf(out, "}");
            continue;
        }
        fprintf(out, ",\"connections\":%u,\"rtt_us\":%" PRIu64 ",\"rttvar_us\":%" PRIu64
                     ",\"ping_rtt_us\":%" PRIu64 ",\"last_pong_ms\":",
                p->conns, p->srtt_us, p->rttvar_us, p->ping_rtt_us);
        if (p->last_pong_age_ms == UINT64_MAX)
            fprintf(out, "null");
        else
            fprintf(out, "%" PRIu64, p->last_pong_age_ms);
        fprintf(out, ",\"chunks_received\":%" PRIu64 ",\"bytes_received\":%" PRIu64
                     ",\"chunks_sent\":%" PRIu64 ",\"bytes_sent\":%" PRIu64
                     ",\"receive_bytes_per_s\":%" PRIu64 ",\"send_bytes_per_s\":%" PRIu64
                     ",\"timeouts\":%" PRIu64 ",\"errors\":%" PRIu64 ",\"fetches_in_flight\":%u"
                     ",\"reconnects\":%" PRIu64 ",\"last_error\":",
                p->chunks_ok, p->bytes_rx, p->chunks_tx, p->bytes_tx, p->rx_bps, p->tx_bps, p->timeouts,
                p->errors, p->inflight, p->reconnects);
        if (p->last_error[0]) {
            json_str(out, p->last_error);
            fprintf(out, ",\"last_error_age_ms\":%" PRIu64 "}", p->last_error_age_ms);
        } else {
            fprintf(out, "null,\"last_error_age_ms\":null}");
        }
    }
    fprintf(out, "],\"transfers\":{\"fetches_in_flight\":%u,\"receive_bytes_per_s\":%" PRIu64
                 ",\"send_bytes_per_s\":%" PRIu64 "}",
            s->inflight, s->rx_bps, s->tx_bps);
    fprintf(out, ",\"cache\":{\"inodes\":%" PRIu64 ",\"chunks\":%" PRIu64 ",\"local_chunks\":%" PRIu64
                 ",\"map_bytes\":%" PRIu64 ",\"free_bytes\":%" PRIu64
                 ",\"bytes\":%" PRIu64 ",\"quota\":%" PRIu64
                 ",\"evicted_chunks\":%" PRIu64 ",\"evicted_bytes\":%" PRIu64 "}",
            s->usage.inodes, s->usage.chunks, s->usage.local_chunks, s->usage.map_bytes,
            s->space.free_bytes, s->usage.local_bytes, s->sync.cache_quota, s->sync.evicted_chunks, s->sync.evicted_bytes);
    fprintf(out, ",\"conflicts\":%" PRIu64 ",\"copies\":%u", s->conflicts, s->sync.copies);
    fprintf(out, ",\"history\":{\"log_records\":%" PRIu64 ",\"tombstones\":%" PRIu64
                 ",\"forget_deleted_after_s\":",
            s->log_records, s->tombstones);
    if (info->forget_deleted_s > 0)
        fprintf(out, "%" PRId64 "}", info->forget_deleted_s);
    else
        fprintf(out, "null}");
    if (s->online && s->sync.unreplicated >= 0)
        fprintf(out, ",\"unreplicated_files\":%" PRId64 ",\"replication_scan\":{\"whole_store\":%s,\"files\":%" PRIu64 "}}\n",
                s->sync.unreplicated, s->sync.scan_whole ? "true" : "false", s->sync.scan_files);
    else
        fprintf(out, ",\"unreplicated_files\":null,\"replication_scan\":null}\n");
}

static const char *human(uint64_t b, char *buf, size_t cap)
{
    static const char *u[] = { "B", "KiB", "MiB", "GiB", "TiB" };
    double v = (double)b;
    unsigned i = 0;
    while (v >= 1024 && i + 1 < LR_ARRAY_SIZE(u)) {
        v /= 1024;
        i++;
    }
    if (i == 0)
        snprintf(buf, cap, "%" PRIu64 " B", b);
    else
        snprintf(buf, cap, "%.1f %s", v, u[i]);
    return buf;
}

/* "90 days", "12 hours", "45 s": the largest unit that divides s. */
static const char *duration(int64_t s, char *buf, size_t cap)
{
    if (s % 86400 == 0)
        snprintf(buf, cap, "%" PRId64 " day%s", s / 86400, s == 86400 ? "" : "s");
    else if (s % 3600 == 0)
        snprintf(buf, cap, "%" PRId64 " hour%s", s / 3600, s == 3600 ? "" : "s");
    else if (s % 60 == 0)
        snprintf(buf, cap, "%" PRId64 " min", s / 60);
    else
        snprintf(buf, cap, "%" PRId64 " s", s);
    return buf;
}

static void render_text(const struct ctl_snap *s, st_store *st, const struct fs_ctl_info *info,
                        uint64_t uptime_s, FILE *out)
{
    char vol[2 * ST_VOLUME_ID_LEN + 1], id[NET_ID_STR_LEN], h[32];
    hex(vol, s->meta.volume, ST_VOLUME_ID_LEN);
    fprintf(out, "store:       %s\n", st_dir(st));
    fprintf(out, "mounted on:  %s (daemon pid %ld, up %" PRIu64 " s)\n",
            info->mountpoint ? info->mountpoint : "?", (long)getpid(), uptime_s);
    fprintf(out, "volume:      %s\n", vol);
    fprintf(out, "device:      %s\n", net_id_format(&s->device, id));
    if (!s->online)
        fprintf(out, "network:     offline (mounted with --offline)\n");
    for (unsigned i = 0; i < s->nlisten; i++)
        fprintf(out, "%s%s (UDP port %d)\n", i ? "             " : "listening:   ", s->listen[i],
                s->ports[i]);
    fprintf(out, "peers:       %u\n", s->npeers);
    for (unsigned i = 0; i < s->npeers; i++) {
        const struct net_peer_stats *p = &s->peers[i].s;
        fprintf(out, "  %s\n", net_id_format(&p->id, id));
        fprintf(out, "    state %s, address %s\n", s->online ? net_peer_state_name(p->state) : "offline",
                p->addr[0] ? p->addr : "(none known)");
        if (!s->peers[i].have_stats)
            continue;
        fprintf(out, "    %u connection%s, rtt %.2f ms, ", p->conns, p->conns == 1 ? "" : "s",
                (double)p->srtt_us / 1000.0);
        if (p->last_pong_age_ms == UINT64_MAX)
            fprintf(out, "no pong yet\n");
        else
            fprintf(out, "last seen %.1f s ago\n", (double)p->last_pong_age_ms / 1000.0);
        char h2[32];
        fprintf(out, "    received %" PRIu64 " chunks (%s), sent %" PRIu64 " chunks (%s)\n", p->chunks_ok,
                human(p->bytes_rx, h, sizeof(h)), p->chunks_tx, human(p->bytes_tx, h2, sizeof(h2)));
        fprintf(out, "    %u in flight, %" PRIu64 " timeouts, %" PRIu64 " errors", p->inflight, p->timeouts,
                p->errors);
        if (p->rx_bps >= 1024 || p->tx_bps >= 1024)
            fprintf(out, ", now %s/s in, %s/s out", human(p->rx_bps, h, sizeof(h)), human(p->tx_bps, h2, sizeof(h2)));
        fprintf(out, "\n");
        if (p->last_error[0])
            fprintf(out, "    last error: %s (%.1f s ago)\n", p->last_error, (double)p->last_error_age_ms / 1000.0);
    }
    fprintf(out, "transfers:   %u chunk fetch%s in flight", s->inflight, s->inflight == 1 ? "" : "es");
    if (s->rx_bps >= 1024 || s->tx_bps >= 1024) {
        char h2[32];
        fprintf(out, ", %s/s in, %s/s out", human(s->rx_bps, h, sizeof(h)), human(s->tx_bps, h2, sizeof(h2)));
    }
    fprintf(out, "\n");
    char q[32];
    fprintf(out, "cache:       %s of chunk data (quota %s), %" PRIu64 " of %" PRIu64 " chunks local\n",
            human(s->usage.local_bytes, h, sizeof(h)),
            s->sync.cache_quota ? human(s->sync.cache_quota, q, sizeof(q)) : "none",
            s->usage.local_chunks, s->usage.chunks);
    fprintf(out, "             %" PRIu64 " inodes, %s in the store map", s->usage.inodes,
            human(s->usage.map_bytes, h, sizeof(h)));
    fprintf(out, " (%s of it free)", human(s->space.free_bytes, q, sizeof(q)));
    if (s->sync.evicted_chunks)
        fprintf(out, ", %" PRIu64 " chunks (%s) evicted since mount", s->sync.evicted_chunks,
                human(s->sync.evicted_bytes, q, sizeof(q)));
    fprintf(out, "\n");
    fprintf(out, "conflicts:   %" PRIu64 " conflict cop%s\n", s->conflicts, s->conflicts == 1 ? "y" : "ies");
    fprintf(out, "history:     %" PRIu64 " change-log record%s, %" PRIu64 " deleted file%s remembered", s->log_records,
            s->log_records == 1 ? "" : "s", s->tombstones, s->tombstones == 1 ? "" : "s");
    if (info->forget_deleted_s > 0)
        fprintf(out, " (for %s after deletion)\n", duration(info->forget_deleted_s, h, sizeof(h)));
    else
        fprintf(out, " (for good)\n");
    if (!s->online)
        fprintf(out, "replicated:  unknown (offline)\n");
    else if (s->sync.copies == 0)
        fprintf(out, "replicated:  not tracked (copies = 0)\n");
    else if (s->sync.unreplicated < 0)
        fprintf(out, "replicated:  counting...\n");
    else
        fprintf(out, "replicated:  %" PRId64 " file%s with data here not yet on %u peer%s\n", s->sync.unreplicated,
                s->sync.unreplicated == 1 ? "" : "s", s->sync.copies, s->sync.copies == 1 ? "" : "s");
}

static int status_doc(st_store *st, const struct fs_ctl_info *info, uint64_t uptime_s, int text,
                      FILE *out)
{
    struct ctl_snap *s = malloc(sizeof(*s));
    if (!s)
        return -ENOMEM;
    int rc = snapshot(st, info, s);
    if (rc == 0) {
        if (text)
            render_text(s, st, info, uptime_s, out);
        else
            render_json(s, st, info, uptime_s, out);
    }
    free(s);
    return rc;
}

int fs_ctl_status(st_store *st, const struct fs_ctl_info *info, int text, FILE *out)
{
    return status_doc(st, info, 0, text, out);
}

/* ---- serving --------------------------------------------------------------- */

int fs_ctl_path(const char *dir, char *buf, size_t cap)
{
    size_t max = LR_MIN(cap, sizeof(((struct sockaddr_un *)0)->sun_path));
    int n = snprintf(buf, max, "%s/%s", dir, FS_CTL_SOCKET);
    return n < 0 || (size_t)n >= max ? -ENAMETOOLONG : 0;
}

static int write_all(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

/* Read one request line within FS_CTL_TIMEOUT_MS. */
static int read_line(int fd, char *buf, size_t cap)
{
    size_t n = 0;
    uint64_t end = lr_now_mono_ns() + FS_CTL_TIMEOUT_MS * 1000000ull;
    while (n + 1 < cap) {
        uint64_t now = lr_now_mono_ns();
        if (now >= end)
            return -ETIMEDOUT;
        struct pollfd p = { .fd = fd, .events = POLLIN };
        int r = poll(&p, 1, (int)((end - now) / 1000000ull) + 1);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return r < 0 ? -errno : -ETIMEDOUT;
        ssize_t k = recv(fd, buf + n, cap - 1 - n, 0);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0)
            break;
        n += (size_t)k;
        if (memchr(buf, '\n', n))
            break;
    }
    buf[n] = '\0';
    char *nl = strchr(buf, '\n');
    if (!nl)
        return -EPROTO;
    *nl = '\0';
    if (nl > buf && nl[-1] == '\r')
        nl[-1] = '\0';
    return 0;
}

static void serve_one(struct fs_ctl *c, int fd)
{
    char req[128];
    int rc = read_line(fd, req, sizeof(req));
    if (rc) {
        lr_debug("control socket of store '%s': dropped a client: %s", st_dir(c->st), lr_strerror(rc));
        return;
    }
    char *doc = NULL;
    size_t len = 0;
    FILE *m = open_memstream(&doc, &len);
    if (!m)
        return;
    if (!strcmp(req, "status") || !strcmp(req, "status-text")) {
        rc = status_doc(c->st, &c->info, (lr_now_mono_ns() - c->started_ns) / 1000000000ull,
                        !strcmp(req, "status-text"), m);
        if (rc) {
            rewind(m);
            fprintf(m, "{\"error\":\"cannot read store: %s\"}\n", lr_strerror(rc));
        }
    } else {
        fprintf(m, "{\"error\":\"unknown request ");
        json_str(m, req);
        fprintf(m, "\"}\n");
    }
    fclose(m);
    rc = write_all(fd, doc, len);
    if (rc)
        lr_debug("control socket of store '%s': cannot answer: %s", st_dir(c->st), lr_strerror(rc));
    free(doc);
}

static void *ctl_thread(void *arg)
{
    struct fs_ctl *c = arg;
    for (;;) {
        struct pollfd p[2] = { { .fd = c->fd, .events = POLLIN }, { .fd = c->stop_pipe[0], .events = POLLIN } };
        int r = poll(p, 2, -1);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            lr_error("control socket of store '%s': poll: %s", st_dir(c->st), strerror(errno));
            break;
        }
        if (p[1].revents)
            break;
        if (!(p[0].revents & POLLIN))
            continue;
        int fd = accept4(c->fd, NULL, NULL, SOCK_CLOEXEC);
        if (fd < 0)
            continue;
        serve_one(c, fd);
        close(fd);
    }
    return NULL;
}

int fs_ctl_new(st_store *st, const struct fs_ctl_info *info, struct fs_ctl **out)
{
    struct fs_ctl *c = calloc(1, sizeof(*c));
    if (!c)
        return -ENOMEM;
    c->st = st;
    c->info = *info;
    c->fd = -1;
    c->stop_pipe[0] = c->stop_pipe[1] = -1;
    c->started_ns = lr_now_mono_ns();
    int rc = fs_ctl_path(st_dir(st), c->path, sizeof(c->path));
    if (rc) {
        lr_error("cannot create the control socket of store '%s': the path is longer than %zu bytes",
                 st_dir(st), sizeof(c->path) - 1);
        free(c);
        return rc;
    }
    struct sockaddr_un a = { .sun_family = AF_UNIX };
    memcpy(a.sun_path, c->path, strlen(c->path) + 1);
    c->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (c->fd < 0) {
        rc = -errno;
        goto fail;
    }
    /* We hold the store's exclusive lock: a socket file there is a dead
     * daemon's. */
    if (unlink(c->path) != 0 && errno != ENOENT) {
        rc = -errno;
        goto fail;
    }
    if (bind(c->fd, (struct sockaddr *)&a, sizeof(a)) != 0) {
        rc = -errno;
        goto fail;
    }
    /* The store directory is 0700 already; this keeps the socket private
     * even where it is not. */
    if (chmod(c->path, 0600) != 0 || listen(c->fd, 8) != 0) {
        rc = -errno;
        unlink(c->path);
        goto fail;
    }
    if (pipe2(c->stop_pipe, O_CLOEXEC) != 0) {
        rc = -errno;
        unlink(c->path);
        goto fail;
    }
    if ((rc = -pthread_create(&c->thr, NULL, ctl_thread, c)) != 0) {
        unlink(c->path);
        goto fail;
    }
    pthread_setname_np(c->thr, "landro-ctl");
    *out = c;
    return 0;
fail:
    lr_error("cannot create the control socket '%s': %s", c->path, lr_strerror(rc));
    if (c->fd >= 0)
        close(c->fd);
    if (c->stop_pipe[0] >= 0) {
        close(c->stop_pipe[0]);
        close(c->stop_pipe[1]);
    }
    free(c);
    return rc;
}

void fs_ctl_free(struct fs_ctl *c)
{
    if (!c)
        return;
    char b = 0;
    if (write(c->stop_pipe[1], &b, 1) != 1)
        lr_warn("cannot stop the control thread of store '%s': %s", st_dir(c->st), strerror(errno));
    pthread_join(c->thr, NULL);
    unlink(c->path);
    close(c->fd);
    close(c->stop_pipe[0]);
    close(c->stop_pipe[1]);
    free(c);
}
