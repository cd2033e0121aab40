/*
 * pass1_meta.c - pass 1: the LMDB environment opened (main.c); meta is
 * sane: format version, volume id, device id, chunker parameters, and the
 * counters next_ino / next_fid above every number in use ("seq" against
 * the change log is pass 6's).
 */
#include "fsck.h"

#include <string.h>
#include <sys/random.h>

struct maxes {
    uint64_t ino, fid, seq;
    uint8_t dev[8];
};

static int max_ino(const void *k, size_t kl, const void *v, size_t vl, void *arg)
{
    struct maxes *m = arg;
    if (kl == 8) {
        uint64_t ino = lr_get_be64(k);
        if (ino > m->ino)
            m->ino = ino;
        struct st_inode in;
        in.ino = ino;
        if (st_inode_decode(v, vl, &in) == 0 && !memcmp(in.fid, m->dev, 8)) {
            uint64_t c = lr_get_be64(in.fid + 8);
            if (c > m->fid)
                m->fid = c;
        }
    }
    return fsck_interrupted ? FSCK_CANCELLED : 0;
}

static int max_tomb(const void *k, size_t kl, const void *v, size_t vl, void *arg)
{
    struct maxes *m = arg;
    if (kl == 16 && !memcmp(k, m->dev, 8)) {
        uint64_t c = lr_get_be64((const uint8_t *)k + 8);
        if (c > m->fid)
            m->fid = c;
    }
    return 0;
}

static int max_seq(const void *k, size_t kl, const void *v, size_t vl, void *arg)
{
    struct maxes *m = arg;
    if (kl == 8 && lr_get_be64(k) > m->seq)
        m->seq = lr_get_be64(k);
    return 0;
}

static int put_u64(st_txn *t, const char *key, uint64_t v)
{
    uint8_t b[8];
    lr_put_le64(b, v);
    return st_raw_put(t, "meta", key, strlen(key), b, 8);
}

int fsck_pass1_meta(struct fsck *f)
{
    uint64_t t0;
    fsck_pass_begin(f, 1, "store environment and meta", &t0);
    st_txn *t;
    int rc = fsck_txn_begin(f, &t);
    if (rc)
        return rc;
    const void *v;
    size_t vl;

    rc = st_raw_get(t, "meta", "format", 6, &v, &vl);
    if (rc && rc != -ENOENT)
        goto out;
    if (rc == 0 && vl == 4 && lr_get_le32(v) != ST_FORMAT_VERSION) {
        printf("%s: store format version %u, this landro-fsck checks version %u\n", f->dir,
               lr_get_le32(v), ST_FORMAT_VERSION);
        rc = LR_EVERSION;
        goto out;
    }
    if (rc || vl != 4) {
        if (fsck_problem(f, PR_META_FORMAT)) {
            uint8_t b[4];
            lr_put_le32(b, ST_FORMAT_VERSION);
            if ((rc = st_raw_put(t, "meta", "format", 6, b, 4)))
                goto out;
        }
    }

    rc = st_raw_get(t, "meta", "volume", 6, &v, &vl);
    if (rc && rc != -ENOENT)
        goto out;
    if (rc || vl != ST_VOLUME_ID_LEN) {
        if (fsck_problem(f, PR_META_VOLUME)) {
            uint8_t vol[ST_VOLUME_ID_LEN];
            if (getrandom(vol, sizeof(vol), 0) != (ssize_t)sizeof(vol)) {
                rc = -errno;
                goto out;
            }
            if ((rc = st_raw_put(t, "meta", "volume", 6, vol, sizeof(vol))))
                goto out;
        }
    }

    struct maxes m;
    memset(&m, 0, sizeof(m));
    rc = st_raw_get(t, "meta", "device", 6, &v, &vl);
    if (rc && rc != -ENOENT)
        goto out;
    if (rc || vl != ST_DEVICE_ID_LEN) {
        if (fsck_problem(f, PR_META_DEVICE)) {
            uint8_t dev[ST_DEVICE_ID_LEN] = { 0 };
            if ((rc = st_raw_put(t, "meta", "device", 6, dev, sizeof(dev))))
                goto out;
        }
    } else {
        memcpy(m.dev, v, 8);
    }

    rc = st_raw_get(t, "meta", "cdc", 3, &v, &vl);
    if (rc && rc != -ENOENT)
        goto out;
    struct st_cdc_params p = { 0, 0, 0 };
    if (rc == 0 && vl == 12) {
        p.min = lr_get_le32(v);
        p.avg = lr_get_le32((const uint8_t *)v + 4);
        p.max = lr_get_le32((const uint8_t *)v + 8);
    }
    if (st_cdc_check(&p)) {
        if (fsck_problem(f, PR_META_CDC)) {
            uint8_t b[12];
            st_cdc_defaults(&p);
            lr_put_le32(b, p.min);
            lr_put_le32(b + 4, p.avg);
            lr_put_le32(b + 8, p.max);
            if ((rc = st_raw_put(t, "meta", "cdc", 3, b, 12)))
                goto out;
        }
    }

    /* Highest numbers in use: inode numbers, this device's file id
     * counters (live inodes and tombstones), log sequence numbers. */
    if ((rc = st_raw_foreach(t, "inode", max_ino, &m)) ||
        (rc = st_raw_foreach(t, "tomb", max_tomb, &m)) ||
        (rc = st_raw_foreach(t, "log", max_seq, &m)))
        goto out;
    static const char *const names[] = { "next_ino", "next_fid", "seq" };
    uint64_t floor[3] = { LR_MAX(m.ino + 1, ST_ROOT_INO + 1), LR_MAX(m.fid + 1, 2), m.seq + 1 };
    for (int i = 0; i < 3; i++) {
        rc = st_raw_get(t, "meta", names[i], strlen(names[i]), &v, &vl);
        if (rc && rc != -ENOENT)
            goto out;
        if (rc || vl != 8) {
            if (fsck_problem(f, PR_META_COUNTER, names[i], (unsigned long long)floor[i]) &&
                (rc = put_u64(t, names[i], floor[i])))
                goto out;
            continue;
        }
        uint64_t cur = lr_get_le64(v);
        if (i < 2 && cur < floor[i]) {
            if (fsck_problem(f, PR_META_COUNTER_LOW, names[i], (unsigned long long)cur,
                             (unsigned long long)(floor[i] - 1), (unsigned long long)floor[i]) &&
                (rc = put_u64(t, names[i], floor[i])))
                goto out;
        }
    }
    rc = 0;
out:
    if (rc) {
        st_txn_abort(t);
        return rc;
    }
    if ((rc = fsck_txn_end(f, t)))
        return rc;
    if (f->mode != FSCK_NO && (rc = st_raw_reload_meta(f->st)) < 0)
        return rc;
    fsck_pass_end(f, 1, t0, "meta checked");
    return 0;
}
