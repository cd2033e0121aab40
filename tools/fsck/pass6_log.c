/*
 * pass6_log.c - pass 6: the change log and the peer records. Log keys are
 * 8-byte sequence numbers >= 1 (LMDB keeps them strictly increasing) and
 * all below meta "seq", the next number to hand out; every record is at
 * least ST_NS_REC_HDR - 64 = 80 bytes (the fixed part every record
 * format of the sync layer shares) and starts with version byte 1. Every
 * peer record decodes (st_peerrec_decode); a damaged one is removed and
 * the user adds the peer again.
 */
#include "fsck.h"

#include <string.h>

#include "peerrec.h"

#define LOG_REC_MIN 80

struct p6 {
    struct fsck *f;
    struct fsck_keys del;
    uint64_t max, prev, n, bytes;
    int err;
};

static int walk_log(const void *k, size_t kl, const void *v, size_t vl, void *arg)
{
    struct p6 *p = arg;
    if (fsck_interrupted)
        return FSCK_CANCELLED;
    if (kl != 8 || lr_get_be64(k) == 0 || lr_get_be64(k) <= p->prev) {
        if (fsck_problem(p->f, PR_LOG_BAD_KEY, fsck_bytes_hex(k, kl)))
            return p->err = fsck_keys_add(&p->del, k, kl);
        return 0;
    }
    uint64_t seq = lr_get_be64(k);
    p->prev = seq;
    if (seq > p->max)
        p->max = seq;
    const uint8_t *b = v;
    if (vl < LOG_REC_MIN || b[0] != 1) {
        if (fsck_problem(p->f, PR_LOG_BAD_RECORD, (unsigned long long)seq, vl, vl ? (unsigned)b[0] : 0u))
            return p->err = fsck_keys_add(&p->del, k, kl);
        return 0;
    }
    p->n++;
    p->bytes += vl;
    return 0;
}

struct p6peer {
    struct fsck *f;
    struct fsck_keys del;
    uint64_t n;
    int err;
};

static int walk_peer(const void *k, size_t kl, const void *v, size_t vl, void *arg)
{
    struct p6peer *p = arg;
    struct st_peerrec r;
    if (kl != ST_DEVICE_ID_LEN || st_peerrec_decode(v, vl, &r)) {
        if (fsck_problem(p->f, PR_PEER_BAD, fsck_bytes_hex(k, kl)))
            return p->err = fsck_keys_add(&p->del, k, kl);
        return 0;
    }
    p->n++;
    return 0;
}

int fsck_pass6_log(struct fsck *f)
{
    uint64_t t0;
    fsck_pass_begin(f, 6, "change log and peers", &t0);
    struct p6 p;
    struct p6peer pp;
    memset(&p, 0, sizeof(p));
    memset(&pp, 0, sizeof(pp));
    p.f = pp.f = f;
    st_txn *t;
    int rc = fsck_txn_begin(f, &t);
    if (rc)
        return rc;
    if ((rc = st_raw_foreach(t, "log", walk_log, &p)) || (rc = p.err))
        goto out;
    for (size_t i = 0; i < p.del.n; i++)
        if ((rc = st_raw_del(t, "log", p.del.k[i], p.del.len[i])))
            goto out;
    const void *v;
    size_t vl;
    rc = st_raw_get(t, "meta", "seq", 3, &v, &vl);
    if (rc == 0 && vl == 8) {
        uint64_t seq = lr_get_le64(v);
        if (p.max >= seq) {
            unsigned long long want = p.max + 1;
            if (fsck_problem(f, PR_LOG_SEQ, (unsigned long long)p.max, (unsigned long long)seq, want)) {
                uint8_t b[8];
                lr_put_le64(b, want);
                if ((rc = st_raw_put(t, "meta", "seq", 3, b, 8)))
                    goto out;
            }
        }
    } else if (rc && rc != -ENOENT) {
        goto out; /* a missing or bad "seq" is pass 1's */
    }
    if ((rc = st_raw_foreach(t, "peer", walk_peer, &pp)) || (rc = pp.err))
        goto out;
    for (size_t i = 0; i < pp.del.n; i++)
        if ((rc = st_raw_del(t, "peer", pp.del.k[i], pp.del.len[i])))
            goto out;
    rc = 0;
out:
    fsck_keys_release(&p.del);
    fsck_keys_release(&pp.del);
    if (rc) {
        st_txn_abort(t);
        return rc;
    }
    if ((rc = fsck_txn_end(f, t)))
        return rc;
    f->n_log = p.n;
    f->n_peers = pp.n;
    fsck_pass_end(f, 6, t0, "%llu log records (%llu bytes), %llu peers",
                  (unsigned long long)p.n, (unsigned long long)p.bytes, (unsigned long long)pp.n);
    return 0;
}
