/* test_net_relay.c - three nodes in a chain, X - Y - Z (X and Z do not
 * know each other): X asks Y for a chunk only Z holds. Y says not found
 * at first; X asks again with the relay flag, Y fetches the chunk from Z
 * (never asking X), parks X's request and answers it once the chunk came
 * (net_serve_wake). A chunk nobody holds still fails, within the bound. */
#include <pthread.h>

#include "net.h"
#include "t.h"

#define CHUNK 65536

static uint8_t chunk[CHUNK];
static st_hash hash, nobody;

struct dev {
    char *dir;
    net_id id;
    struct net_node *node;
    char addr[64];
    int holds;            /* Z: holds the chunk from the start */
    int relays;           /* Y: fetches for its peers when asked to */
    pthread_mutex_t m;
    int got;              /* Y: the relayed chunk arrived */
    unsigned relay_fetches, relay_flags_seen, asked_for_x;
};

static struct dev x, y, z;

static void relayed(void *ctx, int err, const st_hash *h, const uint8_t *data, size_t len, const net_id *from)
{
    struct dev *d = ctx;
    (void)from;
    pthread_mutex_lock(&d->m);
    if (err == 0 && len == CHUNK && memcmp(data, chunk, CHUNK) == 0)
        d->got = 1;
    pthread_mutex_unlock(&d->m);
    net_serve_wake(d->node, h);
}

static int get_chunk(void *ctx, const net_id *from, int relay, const st_hash *h, void *buf, size_t cap,
                     size_t *len)
{
    struct dev *d = ctx;
    pthread_mutex_lock(&d->m);
    int have = (d->holds || d->got) && memcmp(h, &hash, sizeof(*h)) == 0;
    if (relay)
        d->relay_flags_seen++;
    if (from && memcmp(from, &x.id, sizeof(*from)) == 0)
        d->asked_for_x++;
    pthread_mutex_unlock(&d->m);
    if (!have) {
        if (!relay || !d->relays || !from)
            return -ENOENT;
        pthread_mutex_lock(&d->m);
        d->relay_fetches++;
        pthread_mutex_unlock(&d->m);
        if (net_fetch_ex(d->node, h, NULL, 0, from, NET_FETCH_DIRECT, 1000, relayed, d))
            return -ENOENT;
        return -EINPROGRESS;
    }
    *len = CHUNK;
    if (cap < CHUNK)
        return -EFBIG;
    memcpy(buf, chunk, CHUNK);
    return 0;
}

static int dev_start(struct dev *d)
{
    struct net_config cfg = { 0 };
    cfg.identity_dir = d->dir;
    cfg.listen[0] = "127.0.0.1:0";
    cfg.volume[0] = 7;
    cfg.get_chunk = get_chunk;
    cfg.ctx = d;
    cfg.attempt_ms = 3000;
    cfg.ping_ms = 200;
    int rc = net_node_new(&cfg, &d->node);
    if (rc)
        return rc;
    snprintf(d->addr, sizeof(d->addr), "127.0.0.1:%d", net_node_port(d->node, 0));
    return net_node_start(d->node);
}

static void trust(struct dev *a, struct dev *b)
{
    const char *addrs[1] = { b->addr };
    net_peer_add(a->node, &b->id, addrs, 1);
}

static int connected(struct dev *a, struct dev *b)
{
    struct net_peer_stats st[4];
    int n = net_peer_stats(a->node, st, 4);
    for (int i = 0; i < n && i < 4; i++)
        if (memcmp(&st[i].id, &b->id, sizeof(net_id)) == 0 && st[i].conns > 0)
            return 1;
    return 0;
}

static void setup(void)
{
    t_fill(chunk, sizeof(chunk), 99);
    st_hash_compute(chunk, sizeof(chunk), &hash);
    t_fill(nobody.b, sizeof(nobody.b), 98);
    struct dev *all[3] = { &x, &y, &z };
    for (int i = 0; i < 3; i++) {
        all[i]->dir = t_tmpdir();
        pthread_mutex_init(&all[i]->m, NULL);
        if (net_identity_create(all[i]->dir, &all[i]->id) || dev_start(all[i]))
            exit(2);
    }
    z.holds = 1;
    y.relays = 1;
    trust(&x, &y);
    trust(&y, &x);
    trust(&y, &z);
    trust(&z, &y);
    for (int t = 0; t < 200 && !(connected(&x, &y) && connected(&y, &z)); t++)
        usleep(50000);
}

static void test_chunk_only_a_peers_peer_holds_arrives_through_it(void)
{
    uint8_t *buf = malloc(NET_CHUNK_MAX);
    size_t len = 0;
    T_OK(net_fetch_sync(x.node, &hash, NULL, 0, 5000, buf, NET_CHUNK_MAX, &len));
    T_EQ(len, CHUNK);
    T_MEM(buf, chunk, CHUNK);
    free(buf);
    T_EQ(y.got, 1);
    T_EQ(y.relay_fetches, 1);
    T_TRUE(y.relay_flags_seen >= 1); /* the second round carried the flag */
    T_EQ(z.asked_for_x, 0);          /* Z never heard of X's request as X's */
}

/* Z asks for a chunk nobody holds: Y relays (Z's second round), and Y's
 * own fetch from X carries no relay flag, so relays never chain. */
static void test_a_relay_never_asks_for_a_relay(void)
{
    unsigned y_before = y.relay_flags_seen, x_before = x.relay_flags_seen;
    uint8_t buf[16];
    T_ERR(net_fetch_sync(z.node, &nobody, NULL, 0, 3000, buf, sizeof(buf), NULL), -ENOENT);
    T_EQ(y.relay_flags_seen, y_before + 1);
    T_EQ(x.relay_flags_seen, x_before);
}

static void test_chunk_nobody_holds_fails_in_bound(void)
{
    uint8_t buf[16];
    uint64_t t0 = lr_now_mono_ns();
    T_ERR(net_fetch_sync(x.node, &nobody, NULL, 0, 5000, buf, sizeof(buf), NULL), -ENOENT);
    uint64_t ms = (lr_now_mono_ns() - t0) / 1000000;
    if (ms > 4000)
        T_FAILF("a chunk nobody holds took %llu ms to fail", (unsigned long long)ms);
}

int main(void)
{
    lr_log_set_level(getenv("NET_TEST_DEBUG") ? LR_LOG_DEBUG : LR_LOG_WARN);
    setup();
    T_RUN(test_chunk_only_a_peers_peer_holds_arrives_through_it);
    T_RUN(test_a_relay_never_asks_for_a_relay);
    T_RUN(test_chunk_nobody_holds_fails_in_bound);
    struct dev *all[3] = { &x, &y, &z };
    for (int i = 0; i < 3; i++) {
        net_node_free(all[i]->node);
        t_rmrf(all[i]->dir);
        free(all[i]->dir);
    }
    return t_done();
}
