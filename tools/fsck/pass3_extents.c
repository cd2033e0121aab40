/*
 * pass3_extents.c - pass 3: every extent decodes, belongs to a regular
 * file or symlink, names a known chunk and lies within it, does not
 * overlap the previous extent of its file and does not reach past the
 * file's size. Counts the references of the extents it keeps into the
 * chunk table for pass 4.
 *
 * Kept versions (db "version") hold chunk references too: each version
 * record must decode, belong to an existing inode and name only known
 * chunks; its references are counted like the extents'; a version that
 * fails is removed whole.
 *
 * Repairs: a bad, dangling, out-of-chunk, overlapping or past-size extent
 * is removed (the file keeps a hole there); one straddling the size is
 * trimmed. Refcounts are left to pass 4, which recounts them.
 */
#include "fsck.h"

#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

struct ino_info {
    uint64_t ino;
    uint32_t mode;
    int ok;
    uint64_t size;
};

struct p3 {
    struct fsck *f;
    struct ino_info *in;
    size_t nin, capin;
    /* the previous kept extent */
    uint64_t prev_ino, prev_off, prev_end;
    int have_prev;
    struct fsck_keys del, trim; /* trim: key ‖ new value */
    struct fsck_keys delver;    /* version records to remove */
    uint64_t n, bytes;
    int err;
};

static int walk_ino(const void *k, size_t kl, const void *v, size_t vl, void *arg)
{
    struct p3 *p = arg;
    if (kl != 8)
        return 0;
    if (p->nin == p->capin) {
        size_t cap = p->capin ? 2 * p->capin : 1024;
        struct ino_info *n = realloc(p->in, cap * sizeof(*n));
        if (!n)
            return p->err = -ENOMEM;
        p->in = n;
        p->capin = cap;
    }
    struct ino_info *i = &p->in[p->nin++];
    struct st_inode in;
    in.ino = lr_get_be64(k);
    i->ino = in.ino;
    i->ok = st_inode_decode(v, vl, &in) == 0;
    i->mode = in.mode;
    i->size = in.size;
    return fsck_interrupted ? FSCK_CANCELLED : 0;
}

static struct ino_info *find_ino(struct p3 *p, uint64_t ino)
{
    size_t lo = 0, hi = p->nin;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (p->in[mid].ino == ino)
            return &p->in[mid];
        if (p->in[mid].ino < ino)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

static int drop(struct p3 *p, const void *k, size_t kl)
{
    return p->err = fsck_keys_add(&p->del, k, kl);
}

static int drop_version(struct p3 *p, const void *k, size_t kl)
{
    return p->err = fsck_keys_add(&p->delver, k, kl);
}

static int walk_ext(const void *k, size_t kl, const void *v, size_t vl, void *arg)
{
    struct p3 *p = arg;
    struct fsck *f = p->f;
    uint64_t ino;
    struct st_extent e;
    if (fsck_interrupted)
        return FSCK_CANCELLED;
    if (st_extent_decode(k, kl, v, vl, &ino, &e)) {
        if (fsck_problem(f, PR_EXTENT_BAD, fsck_bytes_hex(k, kl)))
            return drop(p, k, kl);
        return 0;
    }
    unsigned long long uino = ino, uoff = e.off;
    struct ino_info *in = find_ino(p, ino);
    if (!in) {
        if (fsck_problem(f, PR_EXTENT_NO_INODE, uino, uoff))
            return drop(p, k, kl);
        return 0;
    }
    if (in->ok && !S_ISREG(in->mode) && !S_ISLNK(in->mode)) {
        if (fsck_problem(f, PR_EXTENT_NOT_FILE, uino, uoff))
            return drop(p, k, kl);
        return 0;
    }
    struct fsck_chunk *c = fsck_chunk_find(f, &e.hash);
    /* Known: a decodable chunkref, or verified bytes (pass 4 recreates
     * the chunkref then). */
    uint32_t clen = 0;
    if (c && (c->state & CK_BYTES))
        clen = c->bytes_len;
    else if (c && (c->state & CK_REF))
        clen = c->ref.len;
    if (!clen) {
        if (fsck_problem(f, PR_EXTENT_DANGLING, uino, uoff, fsck_hex(&e.hash)))
            return drop(p, k, kl);
        return 0;
    }
    if ((uint64_t)e.chunk_off + e.len > clen) {
        if (fsck_problem(f, PR_EXTENT_PAST_CHUNK, uino, uoff, e.chunk_off, e.chunk_off + e.len,
                         fsck_hex(&e.hash), clen))
            return drop(p, k, kl);
        return 0;
    }
    if (p->have_prev && p->prev_ino == ino && e.off < p->prev_end) {
        if (fsck_problem(f, PR_EXTENT_OVERLAP, uino, uoff, (unsigned long long)p->prev_off))
            return drop(p, k, kl);
        return 0;
    }
    if (in->ok && e.off >= in->size) {
        if (fsck_problem(f, PR_EXTENT_PAST_SIZE, uino, uoff, (unsigned long long)in->size))
            return drop(p, k, kl);
        return 0;
    }
    if (in->ok && e.off + e.len > in->size) {
        unsigned long long keep = in->size - e.off;
        if (fsck_problem(f, PR_EXTENT_STRADDLES_SIZE, uino, uoff, e.len,
                         (unsigned long long)in->size, keep)) {
            uint8_t buf[16 + ST_EXTENT_LEN];
            memcpy(buf, k, 16);
            memcpy(buf + 16, v, ST_EXTENT_LEN);
            lr_put_le32(buf + 16 + 4, (uint32_t)keep);
            if ((p->err = fsck_keys_add(&p->trim, buf, sizeof(buf))))
                return p->err;
            e.len = (uint32_t)keep;
        }
    }
    p->have_prev = 1;
    p->prev_ino = ino;
    p->prev_off = e.off;
    p->prev_end = e.off + e.len;
    c->counted++;
    p->n++;
    p->bytes += e.len;
    return 0;
}

static int walk_version(const void *k, size_t kl, const void *v, size_t vl, void *arg)
{
    struct p3 *p = arg;
    struct fsck *f = p->f;
    uint64_t ino = kl >= 8 ? lr_get_be64(k) : 0;
    uint64_t vno = kl == 16 ? lr_get_be64((const uint8_t *)k + 8) : 0;
    struct st_version ver;
    if (kl != 16 || st_version_decode(v, vl, &ver)) {
        if (fsck_problem(f, PR_VERSION_BAD, (unsigned long long)vno, (unsigned long long)ino))
            return drop_version(p, k, kl);
        return 0;
    }
    struct ino_info *in = find_ino(p, ino);
    if (!in || !in->ok) {
        if (fsck_problem(f, PR_VERSION_NO_INODE, (unsigned long long)vno, (unsigned long long)ino))
            return drop_version(p, k, kl);
        return 0;
    }
    for (uint32_t i = 0; i < ver.nextents; i++) {
        struct st_extent e;
        st_version_extent(&ver, i, &e);
        struct fsck_chunk *c = fsck_chunk_find(f, &e.hash);
        if (!c || !(c->state & (CK_REF | CK_BYTES))) {
            if (fsck_problem(f, PR_VERSION_DANGLING, (unsigned long long)vno, (unsigned long long)ino,
                             fsck_hex(&e.hash)))
                return drop_version(p, k, kl);
            return 0;
        }
    }
    for (uint32_t i = 0; i < ver.nextents; i++) {
        struct st_extent e;
        st_version_extent(&ver, i, &e);
        fsck_chunk_find(f, &e.hash)->counted++;
    }
    return fsck_interrupted ? FSCK_CANCELLED : 0;
}

int fsck_pass3_extents(struct fsck *f)
{
    uint64_t t0;
    fsck_pass_begin(f, 3, "extents", &t0);
    struct p3 p;
    memset(&p, 0, sizeof(p));
    p.f = f;
    for (size_t i = 0; i < f->nck; i++)
        f->ck[i].counted = 0;
    st_txn *t;
    int rc = fsck_txn_begin(f, &t);
    if (rc)
        return rc;
    if ((rc = st_raw_foreach(t, "inode", walk_ino, &p)))
        goto out;
    if ((rc = st_raw_foreach(t, "extent", walk_ext, &p)))
        goto out;
    if ((rc = st_raw_foreach(t, "version", walk_version, &p)))
        goto out;
    for (size_t i = 0; i < p.delver.n; i++)
        if ((rc = st_raw_del(t, "version", p.delver.k[i], p.delver.len[i])))
            goto out;
    for (size_t i = 0; i < p.del.n; i++)
        if ((rc = st_raw_del(t, "extent", p.del.k[i], p.del.len[i])))
            goto out;
    for (size_t i = 0; i < p.trim.n; i++)
        if ((rc = st_raw_put(t, "extent", p.trim.k[i], 16, p.trim.k[i] + 16, ST_EXTENT_LEN)))
            goto out;
    rc = 0;
out:
    fsck_keys_release(&p.del);
    fsck_keys_release(&p.trim);
    fsck_keys_release(&p.delver);
    free(p.in);
    if (rc == 0 && p.err)
        rc = p.err;
    if (rc) {
        st_txn_abort(t);
        return rc;
    }
    if ((rc = fsck_txn_end(f, t)))
        return rc;
    f->n_extents = p.n;
    fsck_pass_end(f, 3, t0, "%llu extents, %llu bytes of file data",
                  (unsigned long long)p.n, (unsigned long long)p.bytes);
    return 0;
}
