/*
 * heal.c - `--heal-from-peers`: a damaged chunk is fetched again from the
 * store's peers instead of only being dropped. landro-fsck runs its own
 * transport node (the store's identity, an ephemeral UDP port), dials the
 * peers in the store's peer database and asks for each chunk pass 2 finds
 * damaged; the transport verifies the bytes against the hash before they
 * are written. A running peer daemon serves them.
 */
#include "fsck.h"

#include <string.h>

#include "net.h"
#include "peerrec.h"

#define HEAL_TIMEOUT_MS 15000

static int no_chunks(void *ctx, const net_id *from, int relay, const st_hash *h, void *buf, size_t cap,
                     size_t *len)
{
    (void)ctx; (void)from; (void)relay; (void)h; (void)buf; (void)cap; (void)len;
    return -ENOENT; /* fsck serves nobody */
}

static void no_frame(void *ctx, const net_id *peer, uint16_t type, const uint8_t *p, size_t len)
{
    (void)ctx; (void)peer; (void)type; (void)p; (void)len;
}

static void no_state(void *ctx, const net_id *peer, enum net_peer_state st)
{
    (void)ctx; (void)peer; (void)st;
}

struct add_ctx {
    struct net_node *n;
    unsigned added;
};

static int add_peer(const uint8_t *id, const void *rec, size_t len, void *arg)
{
    struct add_ctx *a = arg;
    struct st_peerrec r;
    if (st_peerrec_decode(rec, len, &r) || r.naddrs == 0)
        return 0; /* pass 6 reports damaged records */
    net_id nid;
    memcpy(nid.b, id, NET_ID_LEN);
    const char *addrs[ST_PEER_MAX_ADDRS];
    for (unsigned i = 0; i < r.naddrs; i++)
        addrs[i] = r.addrs[i];
    if (net_peer_add(a->n, &nid, addrs, r.naddrs) == 0)
        a->added++;
    return 0;
}

int fsck_heal_open(struct fsck *f)
{
    struct st_meta m;
    st_meta(f->st, &m);
    struct net_config c = { 0 };
    c.identity_dir = f->dir;
    /* no listen address: the transport binds an ephemeral dual-stack port */
    memcpy(c.volume, m.volume, NET_VOLUME_LEN);
    c.get_chunk = no_chunks;
    c.on_frame = no_frame;
    c.on_peer_state = no_state;
    int rc = net_node_new(&c, &f->heal);
    if (rc) {
        fprintf(stderr, "landro-fsck: --heal-from-peers: cannot start the transport for store '%s': %s\n",
                f->dir, rc == -ENOENT ? "no device identity (device.key, device.crt) in it" : lr_strerror(rc));
        return rc;
    }
    st_txn *t;
    struct add_ctx a = { .n = f->heal };
    if ((rc = st_txn_begin(f->st, ST_TXN_READ, &t)) == 0) {
        st_peer_foreach(t, add_peer, &a); /* damaged records: pass 6 */
        st_txn_abort(t);
    }
    if (a.added == 0) {
        fprintf(stderr, "landro-fsck: --heal-from-peers: store '%s' has no peer with an address "
                        "('landro peer add')\n", f->dir);
        net_node_free(f->heal);
        f->heal = NULL;
        return -ENOENT;
    }
    if ((rc = net_node_start(f->heal))) {
        net_node_free(f->heal);
        f->heal = NULL;
        return rc;
    }
    return 0;
}

int fsck_heal_fetch(struct fsck *f, const st_hash *h, void *buf, size_t cap, size_t *len)
{
    if (!f->heal)
        return -ENOTCONN;
    return net_fetch_sync(f->heal, h, NULL, 0, HEAL_TIMEOUT_MS, buf, cap, len);
}

void fsck_heal_close(struct fsck *f)
{
    net_node_free(f->heal);
    f->heal = NULL;
}
