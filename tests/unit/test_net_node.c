/* test_net_node.c - two and three nodes on loopback: mutual TLS with the
 * trust list, chunk fetch with hash verification, not-found, wrong bytes,
 * failover when a peer dies, reconnect when it returns, application
 * frames, stats. */
#include <pthread.h>
#include <time.h>

#include "net.h"
#include "net_int.h" /* net_test_send_raw: the malformed-frame seam */
#include "t.h"

#define NCHUNK 64
#define CHUNK 65536

struct provider {
    int corrupt;          /* serve wrong bytes */
    int have;             /* serve anything at all */
    unsigned delay_us;    /* a slow provider (blocks the network thread) */
    pthread_mutex_t m;
    unsigned served;
    uint16_t frame_type;  /* last application frame received */
    size_t frame_len;
    uint8_t frame[64];
};

static uint8_t *chunks[NCHUNK];
static st_hash hashes[NCHUNK];

static int get_chunk(void *ctx, const net_id *from, int relay, const st_hash *h, void *buf, size_t cap,
                     size_t *len)
{
    (void)from; (void)relay;
    struct provider *p = ctx;
    if (!p->have)
        return -ENOENT;
    for (int i = 0; i < NCHUNK; i++)
        if (memcmp(h, &hashes[i], sizeof(*h)) == 0) {
            *len = CHUNK;
            if (cap < CHUNK)
                return -EFBIG;
            if (p->delay_us)
                usleep(p->delay_us);
            memcpy(buf, chunks[i], CHUNK);
            if (p->corrupt)
                ((uint8_t *)buf)[100] ^= 1;
            *len = CHUNK;
            pthread_mutex_lock(&p->m);
            p->served++;
            pthread_mutex_unlock(&p->m);
            return 0;
        }
    return -ENOENT;
}

static void on_frame(void *ctx, const net_id *peer, uint16_t type, const uint8_t *payload, size_t len)
{
    struct provider *p = ctx;
    pthread_mutex_lock(&p->m);
    p->frame_type = type;
    p->frame_len = len;
    memcpy(p->frame, payload, LR_MIN(len, sizeof(p->frame)));
    pthread_mutex_unlock(&p->m);
}

struct dev {
    char *dir;
    net_id id;
    struct provider prov;
    struct net_node *node;
    char addr[64];
};

static struct dev devs[4];
static uint8_t volume[NET_VOLUME_LEN] = { 1, 2, 3 };

static unsigned pool_conns, pool_inflight, pool_idle_ms, pool_max_conns, attempt_ms = 2000;

static int dev_start(struct dev *d, const char *listen, const net_id *claim)
{
    struct net_config cfg = { 0 };
    cfg.conns_per_peer = pool_conns;
    cfg.max_inflight = pool_inflight;
    cfg.idle_ms = pool_idle_ms;
    cfg.max_conns = pool_max_conns;
    cfg.identity_dir = d->dir;
    cfg.listen[0] = listen;
    memcpy(cfg.volume, volume, sizeof(volume));
    cfg.get_chunk = get_chunk;
    cfg.on_frame = on_frame;
    cfg.ctx = &d->prov;
    cfg.attempt_ms = attempt_ms;
    cfg.ping_ms = 200;
    cfg.test_claim_id = claim;
    int rc = net_node_new(&cfg, &d->node);
    if (rc)
        return rc;
    snprintf(d->addr, sizeof(d->addr), "127.0.0.1:%d", net_node_port(d->node, 0));
    return net_node_start(d->node);
}

static void dev_stop(struct dev *d)
{
    net_node_free(d->node);
    d->node = NULL;
}

static void trust(struct dev *a, struct dev *b, int with_addr)
{
    const char *addrs[1] = { b->addr };
    net_peer_add(a->node, &b->id, addrs, with_addr ? 1 : 0);
}

static int peer_stat(struct dev *a, struct dev *b, struct net_peer_stats *out)
{
    struct net_peer_stats st[8];
    int n = net_peer_stats(a->node, st, 8);
    for (int i = 0; i < n && i < 8; i++)
        if (memcmp(&st[i].id, &b->id, sizeof(net_id)) == 0) {
            *out = st[i];
            return 0;
        }
    return -ENOENT;
}

/* Wait up to ms for a's view of b to have conns established (or none). */
/* Wait until a has exactly want established connections to b (or, with
 * at_least, want or more). */
static int wait_conns_cmp(struct dev *a, struct dev *b, unsigned want, unsigned ms, int at_least)
{
    for (unsigned t = 0; t < ms; t += 50) {
        struct net_peer_stats s;
        if (peer_stat(a, b, &s) == 0 && (s.conns == want || (at_least && s.conns > want)))
            return 0;
        usleep(50000);
    }
    return LR_ETIMEDOUT;
}

static int wait_conns(struct dev *a, struct dev *b, unsigned want, unsigned ms)
{
    return wait_conns_cmp(a, b, want, ms, 0);
}

static void setup(void)
{
    for (int i = 0; i < NCHUNK; i++) {
        chunks[i] = malloc(CHUNK);
        t_fill(chunks[i], CHUNK, (uint64_t)i + 1000);
        st_hash_compute(chunks[i], CHUNK, &hashes[i]);
    }
    for (int i = 0; i < 4; i++) {
        devs[i].dir = t_tmpdir();
        if (net_identity_create(devs[i].dir, &devs[i].id) != 0)
            exit(2);
        pthread_mutex_init(&devs[i].prov.m, NULL);
        devs[i].prov.have = 1;
    }
}

static void test_handshake_fetch_verify(void)
{
    struct dev *a = &devs[0], *b = &devs[1];
    T_OK(dev_start(a, "127.0.0.1:0", NULL));
    T_OK(dev_start(b, "127.0.0.1:0", NULL));
    trust(a, b, 1);
    trust(b, a, 0);
    T_OK(wait_conns(a, b, 1, 5000));
    T_OK(wait_conns(b, a, 1, 5000));
    uint8_t *buf = malloc(NET_CHUNK_MAX);
    size_t len = 0;
    for (int i = 0; i < 8; i++) {
        T_OK(net_fetch_sync(a->node, &hashes[i], NULL, 0, 5000, buf, NET_CHUNK_MAX, &len));
        T_EQ(len, CHUNK);
        T_MEM(buf, chunks[i], CHUNK);
    }
    /* b fetches from a over the same (incoming) connection */
    T_OK(net_fetch_sync(b->node, &hashes[9], &a->id, 1, 5000, buf, NET_CHUNK_MAX, &len));
    T_MEM(buf, chunks[9], CHUNK);
    free(buf);
    struct net_peer_stats s;
    usleep(300000);
    T_OK(peer_stat(a, b, &s));
    T_EQ(s.chunks_ok, 8);
    T_EQ(s.state, NET_PEER_HEALTHY);
    T_TRUE(s.srtt_us > 0);
    T_TRUE(s.cwnd > 0);
}

static void test_not_found(void)
{
    struct dev *a = &devs[0];
    st_hash h;
    uint8_t buf[16];
    t_fill(h.b, sizeof(h.b), 4242);
    T_ERR(net_fetch_sync(a->node, &h, NULL, 0, 3000, buf, sizeof(buf), NULL), -ENOENT);
}

static void test_app_frame(void)
{
    struct dev *a = &devs[0], *b = &devs[1];
    T_OK(net_send_frame(a->node, &b->id, 0x4321, "index-update", 12));
    T_ERR(net_send_frame(a->node, &b->id, 0x0042, "x", 1), -EINVAL);
    for (int t = 0; t < 100; t++) {
        pthread_mutex_lock(&b->prov.m);
        int got = b->prov.frame_type == 0x4321;
        pthread_mutex_unlock(&b->prov.m);
        if (got)
            break;
        usleep(20000);
    }
    T_EQ(b->prov.frame_type, 0x4321);
    T_EQ(b->prov.frame_len, 12);
    T_MEM(b->prov.frame, "index-update", 12);
}

static void test_wrong_bytes_rejected_then_failover(void)
{
    struct dev *a = &devs[0], *b = &devs[1], *c = &devs[2];
    b->prov.corrupt = 1;
    uint8_t *buf = malloc(NET_CHUNK_MAX);
    size_t len;
    /* only b asked: its bytes do not verify */
    T_ERR(net_fetch_sync(a->node, &hashes[20], &b->id, 1, 3000, buf, NET_CHUNK_MAX, &len), LR_EHASH);
    struct net_peer_stats s;
    usleep(300000);
    T_OK(peer_stat(a, b, &s));
    T_EQ(s.errors, 1);
    /* with a third device holding it, the fetch fails over and succeeds */
    T_OK(dev_start(c, "127.0.0.1:0", NULL));
    trust(a, c, 1);
    trust(c, a, 0);
    T_OK(wait_conns(a, c, 1, 5000));
    for (int i = 21; i < 25; i++) {
        net_id both[2] = { b->id, c->id };
        T_OK(net_fetch_sync(a->node, &hashes[i], both, 2, 5000, buf, NET_CHUNK_MAX, &len));
        T_MEM(buf, chunks[i], CHUNK);
    }
    b->prov.corrupt = 0;
    free(buf);
}

struct many {
    pthread_mutex_t m;
    pthread_cond_t cv;
    int left, ok, failed;
};

static void many_cb(void *ctx, int err, const st_hash *h, const uint8_t *data, size_t len, const net_id *from)
{
    struct many *m = ctx;
    pthread_mutex_lock(&m->m);
    if (err == 0 && len == CHUNK)
        m->ok++;
    else
        m->failed++;
    m->left--;
    pthread_cond_signal(&m->cv);
    pthread_mutex_unlock(&m->m);
}

/* Wait until every fetch of m has called back. */
static void many_wait(struct many *m)
{
    pthread_mutex_lock(&m->m);
    while (m->left > 0)
        pthread_cond_wait(&m->cv, &m->m);
    pthread_mutex_unlock(&m->m);
}

static void test_peer_killed_mid_transfer_fails_over(void)
{
    struct dev *a = &devs[0], *b = &devs[1], *c = &devs[2];
    struct many m = { .left = NCHUNK };
    pthread_mutex_init(&m.m, NULL);
    pthread_cond_init(&m.cv, NULL);
    net_id both[2] = { b->id, c->id };
    for (int i = 0; i < NCHUNK; i++)
        T_OK(net_fetch(a->node, &hashes[i], both, 2, 8000, many_cb, &m));
    dev_stop(b); /* mid-transfer: some requests were on b */
    uint64_t t0 = lr_now_mono_ns();
    many_wait(&m);
    uint64_t ms = (lr_now_mono_ns() - t0) / 1000000;
    T_EQ(m.failed, 0);
    T_EQ(m.ok, NCHUNK);
    T_TRUE(ms < 8000);
}

static void test_reconnect_after_peer_returns(void)
{
    struct dev *a = &devs[0], *b = &devs[1];
    char listen[64];
    snprintf(listen, sizeof(listen), "%s", b->addr);
    T_OK(wait_conns(a, b, 0, 12000));
    struct net_peer_stats s;
    T_OK(peer_stat(a, b, &s));
    T_EQ(s.state, NET_PEER_DOWN);
    T_OK(dev_start(b, listen, NULL));
    trust(b, a, 0);
    T_OK(wait_conns(a, b, 1, 15000));
    uint8_t *buf = malloc(NET_CHUNK_MAX);
    size_t len;
    T_OK(net_fetch_sync(a->node, &hashes[3], &b->id, 1, 5000, buf, NET_CHUNK_MAX, &len));
    T_MEM(buf, chunks[3], CHUNK);
    free(buf);
}

static void test_untrusted_refused(void)
{
    /* d is trusted by a, but d does not trust a: both sides refuse. */
    struct dev *a = &devs[0], *d = &devs[3];
    T_OK(dev_start(d, "127.0.0.1:0", NULL));
    trust(a, d, 1);
    T_ERR(wait_conns(a, d, 1, 2500), LR_ETIMEDOUT);
    uint8_t buf[16];
    T_ERR(net_fetch_sync(a->node, &hashes[0], &d->id, 1, 1000, buf, sizeof(buf), NULL), LR_ETIMEDOUT);
    struct net_peer_stats s;
    T_OK(peer_stat(a, d, &s));
    T_EQ(s.state, NET_PEER_DOWN);
    T_TRUE(s.reconnects >= 1);
    net_peer_remove(a->node, &d->id);
    dev_stop(d);
}

static void test_wrong_id_refused(void)
{
    /* a believes the device at c's address has d's id: the certificate
     * there says otherwise, so a refuses it. */
    struct dev *a = &devs[0], *c = &devs[2], *d = &devs[3];
    const char *addrs[1] = { c->addr };
    T_OK(net_peer_add(a->node, &d->id, addrs, 1));
    T_ERR(wait_conns(a, d, 1, 2000), LR_ETIMEDOUT);
    net_peer_remove(a->node, &d->id);
}

static void test_hello_claim_mismatch_refused(void)
{
    /* d presents its own certificate but claims c's id in its hello. */
    struct dev *c = &devs[2], *d = &devs[3];
    T_OK(dev_start(d, "127.0.0.1:0", &c->id));
    trust(d, c, 1);
    trust(c, d, 0);
    T_ERR(wait_conns(c, d, 1, 2000), LR_ETIMEDOUT);
    T_ERR(wait_conns(d, c, 1, 100), LR_ETIMEDOUT);
    dev_stop(d);
}

/* x puts a frame of a reserved type on its control stream to y; 0 once
 * y has counted the error against x (and so closed that connection). */
static int send_malformed(struct dev *x, struct dev *y)
{
    struct net_peer_stats s;
    int rc = peer_stat(y, x, &s);
    if (rc)
        return rc;
    uint64_t errors0 = s.errors;
    const uint8_t bad[] = { 1, 0, 0x42, 0, 0, 0, 0, 0 };
    if ((rc = net_test_send_raw(x->node, &y->id, bad, sizeof(bad))))
        return rc;
    for (int t = 0; t < 250; t++) {
        usleep(20000);
        if (peer_stat(y, x, &s) == 0 && s.errors > errors0)
            return 0;
    }
    return LR_ETIMEDOUT;
}

static void test_malformed_frame_closes_and_counts(void)
{
    /* a puts a frame of a reserved type on the control stream: b refuses
     * it, counts an error against a, closes; a dials again and works. */
    struct dev *a = &devs[0], *b = &devs[1];
    T_OK(wait_conns(a, b, 1, 5000));
    T_OK(send_malformed(a, b));
    usleep(500000);
    T_OK(wait_conns(a, b, 1, 5000));
    uint8_t *buf = malloc(NET_CHUNK_MAX);
    size_t len;
    T_OK(net_fetch_sync(a->node, &hashes[7], &b->id, 1, 5000, buf, NET_CHUNK_MAX, &len));
    T_MEM(buf, chunks[7], CHUNK);
    free(buf);
}

/* d (started) and b trust each other; once they are connected b serves
 * one chunk per delay_us and d asks b for n chunks (hashes[i % NCHUNK]),
 * each within timeout_ms, through m. */
static int slow_fetches(struct many *m, int n, unsigned delay_us, unsigned timeout_ms)
{
    struct dev *b = &devs[1], *d = &devs[3];
    trust(d, b, 1);
    trust(b, d, 0);
    int rc = wait_conns(d, b, 1, 5000);
    if (rc)
        return rc;
    b->prov.delay_us = delay_us;
    *m = (struct many){ .left = n };
    pthread_mutex_init(&m->m, NULL);
    pthread_cond_init(&m->cv, NULL);
    for (int i = 0; i < n; i++)
        if ((rc = net_fetch(d->node, &hashes[i % NCHUNK], &b->id, 1, timeout_ms, many_cb, m)))
            return rc;
    return 0;
}

/* Start d as a client of up to 2 connections of 2 requests each to b
 * (idle_ms, max_conns: its pool's, 0 = default) and ask it for the
 * first n chunks, which b serves one per 20 ms. */
static int slow_pool_fetches(struct many *m, int n, unsigned idle_ms, unsigned max_conns)
{
    pool_conns = 2;
    pool_inflight = 2;
    pool_idle_ms = idle_ms;
    pool_max_conns = max_conns;
    int rc = dev_start(&devs[3], "127.0.0.1:0", NULL);
    pool_conns = pool_inflight = pool_idle_ms = pool_max_conns = 0;
    return rc ? rc : slow_fetches(m, n, 20000, 20000);
}

/* Until m's fetches have all called back, sample d's connections to b:
 * the most it had, and how often their number fell. Then b is fast again. */
static void watch_pool(struct many *m, unsigned *most, unsigned *drops)
{
    struct dev *b = &devs[1], *d = &devs[3];
    unsigned last = 0;
    *most = *drops = 0;
    for (;;) {
        struct net_peer_stats s;
        pthread_mutex_lock(&m->m);
        int left = m->left;
        pthread_mutex_unlock(&m->m);
        if (!left)
            break;
        if (peer_stat(d, b, &s) == 0) {
            *most = LR_MAX(*most, s.conns);
            *drops += s.conns < last;
            last = s.conns;
        }
        usleep(20000);
    }
    b->prov.delay_us = 0;
}

/* d fetches 40 chunks from b, which serves slowly, with up to 2
 * connections of 2 requests each (extra ones idle out after 1 s) and at
 * most max_conns connections in all; the most connections d had to b
 * meanwhile must be want_most. */
static void pool_run(unsigned max_conns, unsigned want_most)
{
    struct dev *b = &devs[1], *d = &devs[3];
    struct many m;
    T_OK(slow_pool_fetches(&m, 40, 1000, max_conns));
    unsigned most, drops;
    watch_pool(&m, &most, &drops);
    T_EQ(m.ok, 40);
    T_EQ(most, want_most);
    T_OK(wait_conns(d, b, 1, 5000)); /* an extra one closed when idle */
    dev_stop(d);
    net_peer_remove(b->node, &d->id);
}

static void test_pool_grows_when_busy_and_idles_back(void)
{
    pool_run(0, 2);
}

static void test_pool_keeps_half_of_max_conns_free(void)
{
    /* max_conns 2: the first connection is all a pool may have (the
     * other slot stays for another peer's first one); fetches still work */
    pool_run(2, 1);
}

static void test_slow_live_peer_is_no_timeout(void)
{
    /* d gives an attempt 400 ms; b answers one chunk per 12 ms, so the
     * last of 64 requests sent at once waits ~800 ms for its turn. The
     * connection delivers all along: no request may time out (they did,
     * and the fetches failed, when an attempt counted from its send). */
    struct dev *b = &devs[1], *d = &devs[3];
    attempt_ms = 400;
    int rc = dev_start(d, "127.0.0.1:0", NULL);
    attempt_ms = 2000;
    T_OK(rc);
    struct many m;
    T_OK(slow_fetches(&m, NCHUNK, 12000, 20000));
    many_wait(&m);
    b->prov.delay_us = 0;
    T_EQ(m.failed, 0);
    T_EQ(m.ok, NCHUNK);
    struct net_peer_stats s;
    T_OK(peer_stat(d, b, &s));
    T_EQ(s.timeouts, 0);
    dev_stop(d);
    net_peer_remove(b->node, &d->id);
}

static void test_live_fetch_outlasts_its_timeout_until_the_cap(void)
{
    /* 192 fetches of 400 ms each (every chunk thrice), all sent at once to
     * b, which answers one per 30 ms: about 6 s for all. While the
     * connection delivers, a fetch lives past its 400 ms (on a slow link
     * every read-ahead fetch gave up and its bytes were sent anyway and
     * thrown away), but not past NET_FETCH_LIVE_MAX timeouts (4.8 s): the
     * last ones fail. */
    struct dev *b = &devs[1], *d = &devs[3];
    enum { N = 3 * NCHUNK, TIMEOUT_MS = 400 };
    pool_inflight = N;
    int rc = dev_start(d, "127.0.0.1:0", NULL);
    pool_inflight = 0;
    T_OK(rc);
    trust(d, b, 1);
    trust(b, d, 0);
    T_OK(wait_conns(d, b, 1, 5000)); /* connected before the clock starts */
    struct many m;
    uint64_t t0 = lr_now_mono_ns();
    T_OK(slow_fetches(&m, N, 30000, TIMEOUT_MS));
    many_wait(&m);
    uint64_t ms = (lr_now_mono_ns() - t0) / 1000000;
    b->prov.delay_us = 0;
    T_TRUE(m.ok >= 40); /* each alone for its 400 ms: about 13 */
    T_TRUE(m.failed >= 8);
    T_TRUE(ms < TIMEOUT_MS * NET_FETCH_LIVE_MAX + 1500);
    dev_stop(d);
    net_peer_remove(b->node, &d->id);
}

static void test_symmetric_peers_redial_after_incoming_closes(void)
{
    /* c and d know each other's address. d restarts without c's address:
     * only c can bring the connection back, whichever side dialled first. */
    struct dev *c = &devs[2], *d = &devs[3];
    T_OK(dev_start(d, "127.0.0.1:0", NULL));
    trust(c, d, 1);
    trust(d, c, 1);
    /* Both know each other's address: both may dial, so one or two. */
    T_OK(wait_conns_cmp(c, d, 1, 5000, 1));
    char listen[64];
    snprintf(listen, sizeof(listen), "%s", d->addr);
    dev_stop(d);
    T_OK(wait_conns(c, d, 0, 12000));
    T_OK(dev_start(d, listen, NULL));
    trust(d, c, 0);
    T_OK(wait_conns(c, d, 1, 15000));
    dev_stop(d);
    net_peer_remove(c->node, &d->id);
}

static void test_serving_side_keeps_a_pool_connection_in_use(void)
{
    /* b serves and closes idle pool connections after 300 ms; d fetches
     * over two pooled connections for over a second. b sends no requests
     * of its own on them, yet they are in use: neither may close while d
     * still waits (b closed d's second one, and its requests were lost). */
    struct dev *b = &devs[1], *d = &devs[3];
    char listen[64];
    snprintf(listen, sizeof(listen), "%s", b->addr);
    dev_stop(b);
    pool_idle_ms = 300;
    int rc = dev_start(b, listen, NULL);
    pool_idle_ms = 0;
    T_OK(rc);
    struct many m;
    T_OK(slow_pool_fetches(&m, NCHUNK, 0, 0));
    unsigned most, drops;
    watch_pool(&m, &most, &drops);
    T_EQ(m.ok, NCHUNK);
    T_EQ(most, 2);
    T_EQ(drops, 0);
    dev_stop(d);
    net_peer_remove(b->node, &d->id);
}

static void test_lost_pool_connection_fails_over_to_its_sibling(void)
{
    /* d fetches from slow b over two pooled connections; midway one of
     * them closes (d sends b a malformed frame on it). Its requests must
     * go to the other connection to b, not fail for want of another peer
     * (they did: a lost connection marked its peer as tried). */
    struct dev *b = &devs[1], *d = &devs[3];
    struct many m;
    T_OK(slow_pool_fetches(&m, NCHUNK, 0, 0));
    T_OK(wait_conns(d, b, 2, 5000));
    T_OK(send_malformed(d, b));
    many_wait(&m);
    b->prov.delay_us = 0;
    T_EQ(m.failed, 0);
    T_EQ(m.ok, NCHUNK);
    dev_stop(d);
    net_peer_remove(b->node, &d->id);
}

static void test_bad_address_rejected(void)
{
    const char *bad[] = { "nope", "1.2.3.4", "[::1:80", "1.2.3.4:99999", "host.example:80" };
    for (unsigned i = 0; i < LR_ARRAY_SIZE(bad); i++)
        T_ERR(net_peer_add(devs[0].node, &devs[3].id, &bad[i], 1), -EINVAL);
}

int main(void)
{
    lr_log_set_level(getenv("NET_TEST_DEBUG") ? LR_LOG_DEBUG : LR_LOG_WARN);
    setup();
    T_RUN(test_handshake_fetch_verify);
    T_RUN(test_not_found);
    T_RUN(test_app_frame);
    T_RUN(test_bad_address_rejected);
    T_RUN(test_wrong_bytes_rejected_then_failover);
    T_RUN(test_peer_killed_mid_transfer_fails_over);
    T_RUN(test_reconnect_after_peer_returns);
    T_RUN(test_untrusted_refused);
    T_RUN(test_wrong_id_refused);
    T_RUN(test_hello_claim_mismatch_refused);
    T_RUN(test_malformed_frame_closes_and_counts);
    T_RUN(test_pool_grows_when_busy_and_idles_back);
    T_RUN(test_pool_keeps_half_of_max_conns_free);
    T_RUN(test_slow_live_peer_is_no_timeout);
    T_RUN(test_live_fetch_outlasts_its_timeout_until_the_cap);
    T_RUN(test_symmetric_peers_redial_after_incoming_closes);
    T_RUN(test_lost_pool_connection_fails_over_to_its_sibling);
    T_RUN(test_serving_side_keeps_a_pool_connection_in_use);
    for (int i = 3; i >= 0; i--)
        if (devs[i].node)
            dev_stop(&devs[i]);
    for (int i = 0; i < 4; i++) {
        t_rmrf(devs[i].dir);
        free(devs[i].dir);
    }
    for (int i = 0; i < NCHUNK; i++)
        free(chunks[i]);
    return t_done();
}
