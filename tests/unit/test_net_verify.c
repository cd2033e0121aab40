/*
 * test_net_verify.c - chunk verification off the network thread and the
 * chunk buffer pool (net/verify.c): chunks of every pooled size class and
 * beyond arrive intact; callbacks run on verifier threads, each exactly
 * once, never after net_node_free returns; net_fetch_sync refuses to run
 * in a callback; wrong bytes never reach a callback.
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>

#include "net.h"
#include "t.h"

/* Sizes around the buffer pool's 64 KiB classes, its 256 KiB top, and
 * NET_CHUNK_MAX. */
static const size_t sizes[] = { 1, 1000, 65535, 65536, 65537, 131072, 262143, 262144, 262145,
                                1u << 20, NET_CHUNK_MAX };
#define NSIZES (sizeof(sizes) / sizeof(sizes[0]))
#define NMANY 256
#define MANY_LEN 65536

static uint8_t *data[NSIZES + NMANY];
static size_t lens[NSIZES + NMANY];
static st_hash hashes[NSIZES + NMANY];
static atomic_int corrupt;

static int get_chunk(void *ctx, const net_id *from, int relay, const st_hash *h, void *buf, size_t cap,
                     size_t *len)
{
    (void)from; (void)relay;
    for (size_t i = 0; i < NSIZES + NMANY; i++)
        if (memcmp(h, &hashes[i], sizeof(*h)) == 0) {
            *len = lens[i];
            if (lens[i] > cap)
                return -EFBIG;
            memcpy(buf, data[i], lens[i]);
            if (atomic_load(&corrupt))
                ((uint8_t *)buf)[lens[i] / 2] ^= 0x40;
            *len = lens[i];
            return 0;
        }
    return -ENOENT;
}

struct dev {
    char *dir;
    net_id id;
    struct net_node *node;
    char addr[64];
};

static struct dev srv, cli;
static uint8_t volume[NET_VOLUME_LEN] = { 7, 7 };

static int dev_start(struct dev *d)
{
    struct net_config cfg = { 0 };
    cfg.identity_dir = d->dir;
    cfg.listen[0] = "127.0.0.1:0";
    memcpy(cfg.volume, volume, sizeof(volume));
    cfg.get_chunk = get_chunk;
    cfg.attempt_ms = 3000;
    cfg.verify_threads = 2;
    int rc = net_node_new(&cfg, &d->node);
    if (rc)
        return rc;
    snprintf(d->addr, sizeof(d->addr), "127.0.0.1:%d", net_node_port(d->node, 0));
    return net_node_start(d->node);
}

static int connect_pair(void)
{
    int rc = dev_start(&srv);
    if (rc == 0)
        rc = dev_start(&cli);
    if (rc)
        return rc;
    const char *addrs[1] = { srv.addr };
    net_peer_add(cli.node, &srv.id, addrs, 1);
    net_peer_add(srv.node, &cli.id, NULL, 0);
    for (int t = 0; t < 200; t++) {
        struct net_peer_stats st;
        if (net_peer_stats(cli.node, &st, 1) >= 1 && st.conns > 0)
            return 0;
        usleep(25000);
    }
    return LR_ETIMEDOUT;
}

static void test_every_size_intact(void)
{
    T_OK(connect_pair());
    uint8_t *buf = malloc(NET_CHUNK_MAX);
    for (size_t i = 0; i < NSIZES; i++) {
        size_t len = 0;
        memset(buf, 0, lens[i]);
        T_OK(net_fetch_sync(cli.node, &hashes[i], &srv.id, 1, 10000, buf, NET_CHUNK_MAX, &len));
        T_EQ(len, lens[i]);
        T_MEM(buf, data[i], len);
    }
    free(buf);
}

struct many {
    pthread_mutex_t m;
    pthread_cond_t cv;
    unsigned done, ok, bad, on_verifier, calls[NMANY];
    int sync_rc;
};

static void many_cb(void *ctx, int err, const st_hash *h, const uint8_t *bytes, size_t len,
                    const net_id *from)
{
    struct many *m = ctx;
    char name[32] = "";
    pthread_getname_np(pthread_self(), name, sizeof(name));
    /* a blocking fetch from a callback must refuse, not hang */
    int src = net_fetch_sync(cli.node, h, NULL, 0, 1000, NULL, 0, NULL);
    pthread_mutex_lock(&m->m);
    for (unsigned i = 0; i < NMANY; i++)
        if (memcmp(h, &hashes[NSIZES + i], sizeof(*h)) == 0) {
            m->calls[i]++;
            if (err == 0 && len == lens[NSIZES + i] && memcmp(bytes, data[NSIZES + i], len) == 0)
                m->ok++;
            else if (err == 0)
                m->bad++; /* bytes that are not the chunk: must never happen */
        }
    if (strcmp(name, "landro-verify") == 0)
        m->on_verifier++;
    if (src != -EDEADLK)
        m->sync_rc = src ? src : -1;
    m->done++;
    pthread_cond_signal(&m->cv);
    pthread_mutex_unlock(&m->m);
}

static void many_init(struct many *m)
{
    memset(m, 0, sizeof(*m));
    pthread_mutex_init(&m->m, NULL);
    pthread_cond_init(&m->cv, NULL);
}

static void test_many_callbacks_once_verified(void)
{
    struct many m;
    many_init(&m);
    for (unsigned i = 0; i < NMANY; i++)
        T_OK(net_fetch(cli.node, &hashes[NSIZES + i], &srv.id, 1, 20000, many_cb, &m));
    pthread_mutex_lock(&m.m);
    while (m.done < NMANY)
        pthread_cond_wait(&m.cv, &m.m);
    pthread_mutex_unlock(&m.m);
    T_EQ(m.ok, NMANY);
    T_EQ(m.bad, 0);
    T_EQ(m.sync_rc, 0);
    for (unsigned i = 0; i < NMANY; i++)
        T_EQ(m.calls[i], 1);
    /* the first chunk always finds a verifier free */
    T_TRUE(m.on_verifier > 0);
}

static void test_wrong_bytes_never_delivered(void)
{
    struct many m;
    many_init(&m);
    atomic_store(&corrupt, 1);
    for (unsigned i = 0; i < 64; i++)
        T_OK(net_fetch(cli.node, &hashes[NSIZES + i], &srv.id, 1, 20000, many_cb, &m));
    pthread_mutex_lock(&m.m);
    while (m.done < 64)
        pthread_cond_wait(&m.cv, &m.m);
    pthread_mutex_unlock(&m.m);
    atomic_store(&corrupt, 0);
    T_EQ(m.ok, 0);
    T_EQ(m.bad, 0);
    for (unsigned i = 0; i < 64; i++)
        T_EQ(m.calls[i], 1);
    usleep(300000);
    struct net_peer_stats st;
    T_TRUE(net_peer_stats(cli.node, &st, 1) >= 1);
    T_EQ(st.errors, 64);
}

static void test_stop_with_fetches_in_flight(void)
{
    struct many m;
    many_init(&m);
    for (unsigned i = 0; i < NMANY; i++)
        T_OK(net_fetch(cli.node, &hashes[NSIZES + i], &srv.id, 1, 20000, many_cb, &m));
    usleep(2000); /* some answered, some on the wire, some being verified */
    net_node_free(cli.node);
    cli.node = NULL;
    pthread_mutex_lock(&m.m);
    unsigned done = m.done;
    pthread_mutex_unlock(&m.m);
    T_EQ(done, NMANY); /* every callback ran, before net_node_free returned */
    usleep(200000);
    T_EQ(m.done, NMANY); /* and none after */
    T_EQ(m.bad, 0);
    for (unsigned i = 0; i < NMANY; i++)
        T_EQ(m.calls[i], 1);
}

int main(void)
{
    lr_log_set_level(getenv("NET_TEST_DEBUG") ? LR_LOG_DEBUG : LR_LOG_ERROR);
    for (size_t i = 0; i < NSIZES + NMANY; i++) {
        lens[i] = i < NSIZES ? sizes[i] : MANY_LEN;
        data[i] = malloc(lens[i]);
        t_fill(data[i], lens[i], 77 + i);
        st_hash_compute(data[i], lens[i], &hashes[i]);
    }
    srv.dir = t_tmpdir();
    cli.dir = t_tmpdir();
    if (net_identity_create(srv.dir, &srv.id) != 0 || net_identity_create(cli.dir, &cli.id) != 0)
        return 2;
    T_RUN(test_every_size_intact);
    T_RUN(test_many_callbacks_once_verified);
    T_RUN(test_wrong_bytes_never_delivered);
    T_RUN(test_stop_with_fetches_in_flight);
    net_node_free(cli.node);
    net_node_free(srv.node);
    t_rmrf(srv.dir);
    t_rmrf(cli.dir);
    free(srv.dir);
    free(cli.dir);
    for (size_t i = 0; i < NSIZES + NMANY; i++)
        free(data[i]);
    return t_done();
}
