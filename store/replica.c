/*
 * replica.c - replication records: export, decode, and the merge of a
 * peer's record into the local store. See replica.h for the rules.
 */
#include "replica.h"
#include "store_int.h"

#include <dirent.h>
#include <stdlib.h>
#include <sys/stat.h>

/* ---- growable output buffer ------------------------------------------- */

struct wbuf {
    uint8_t *d;
    size_t len, cap;
    int err;
};

static uint8_t *wb_room(struct wbuf *w, size_t n)
{
    if (w->err)
        return NULL;
    if (w->len + n > w->cap) {
        size_t cap = w->cap ? w->cap : 256;
        while (cap < w->len + n)
            cap *= 2;
        uint8_t *d = realloc(w->d, cap);
        if (!d) {
            w->err = -ENOMEM;
            return NULL;
        }
        w->d = d;
        w->cap = cap;
    }
    uint8_t *p = w->d + w->len;
    w->len += n;
    return p;
}

static int valid_name(const uint8_t *p, size_t n)
{
    if (n == 0 || n > ST_NAME_MAX || memchr(p, '/', n) || memchr(p, 0, n))
        return 0;
    if ((n == 1 && p[0] == '.') || (n == 2 && p[0] == '.' && p[1] == '.'))
        return 0;
    return 1;
}

static const uint8_t root_fid[16] = { [15] = 1 };

/* ---- decode ----------------------------------------------------------- */

int st_rep_decode(const void *buf, size_t len, struct st_rep_file *f)
{
    const uint8_t *b = buf;
    if (len < ST_REP_HDR || b[0] != ST_REP_VERSION)
        return LR_ECORRUPT;
    f->flags = b[1];
    if (f->flags & ~ST_REP_DELETED)
        return LR_ECORRUPT;
    f->nvv = lr_get_le16(b + 2);
    f->mode = lr_get_le32(b + 4);
    switch (f->mode & S_IFMT) {
    case S_IFREG: case S_IFDIR: case S_IFLNK: case S_IFIFO:
    case S_IFCHR: case S_IFBLK: case S_IFSOCK:
        break;
    default:
        return LR_ECORRUPT;
    }
    if (f->mode & ~(uint32_t)(S_IFMT | 07777))
        return LR_ECORRUPT;
    f->uid = lr_get_le32(b + 8);
    f->gid = lr_get_le32(b + 12);
    f->size = lr_get_le64(b + 16);
    f->rdev = lr_get_le64(b + 24);
    memcpy(f->fid, b + 32, 16);
    memcpy(f->writer, b + 48, 8);
    if (f->size > (uint64_t)INT64_MAX || st__get_ts(b + 56, &f->mtime) || st__get_ts(b + 68, &f->ctime))
        return LR_ECORRUPT;
    f->nnames = lr_get_le16(b + 80);
    f->nxattrs = lr_get_le16(b + 82);
    f->nextents = lr_get_le32(b + 84);
    if (f->nvv > ST_VV_MAX || f->nnames > ST_REP_MAX_NAMES || f->nxattrs > ST_REP_MAX_XATTRS)
        return LR_ECORRUPT;
    if ((f->flags & ST_REP_DELETED) && (f->nnames || f->nextents))
        return LR_ECORRUPT;
    size_t p = ST_REP_HDR;
    if (len - p < (size_t)f->nvv * 16)
        return LR_ECORRUPT;
    for (uint16_t i = 0; i < f->nvv; i++, p += 16) {
        memcpy(f->vv[i].dev, b + p, 8);
        f->vv[i].ctr = lr_get_le64(b + p + 8);
    }
    for (uint16_t i = 0; i < f->nnames; i++) {
        if (len - p < 18)
            return LR_ECORRUPT;
        memcpy(f->names[i].pfid, b + p, 16);
        uint16_t n = lr_get_le16(b + p + 16);
        p += 18;
        if (len - p < n || !valid_name(b + p, n))
            return LR_ECORRUPT;
        f->names[i].name = (const char *)b + p;
        f->names[i].len = n;
        p += n;
    }
    for (uint16_t i = 0; i < f->nxattrs; i++) {
        if (len - p < 6)
            return LR_ECORRUPT;
        uint16_t nl = lr_get_le16(b + p);
        uint32_t vl = lr_get_le32(b + p + 2);
        p += 6;
        if (nl == 0 || nl > 255 || vl > 65536 || len - p < (size_t)nl + vl ||
            memchr(b + p, 0, nl))
            return LR_ECORRUPT;
        f->xattrs[i].name = (const char *)b + p;
        f->xattrs[i].nlen = nl;
        f->xattrs[i].val = b + p + nl;
        f->xattrs[i].vlen = vl;
        p += (size_t)nl + vl;
    }
    if ((len - p) % ST_REP_EXTENT_LEN || (len - p) / ST_REP_EXTENT_LEN != f->nextents)
        return LR_ECORRUPT;
    f->extents = b + p;
    uint64_t last_end = 0;
    for (uint32_t i = 0; i < f->nextents; i++) {
        struct st_extent e;
        uint32_t clen;
        st_rep_extent(f, i, &e, &clen);
        if (e.len == 0 || clen == 0 || clen > ST_CDC_MAX_LIMIT ||
            (uint64_t)e.chunk_off + e.len > clen || e.off < last_end ||
            e.off > f->size || f->size - e.off < e.len)
            return LR_ECORRUPT;
        last_end = e.off + e.len;
    }
    return 0;
}

void st_rep_extent(const struct st_rep_file *f, uint32_t i, struct st_extent *e, uint32_t *chunk_len)
{
    const uint8_t *x = f->extents + (size_t)i * ST_REP_EXTENT_LEN;
    e->off = lr_get_le64(x);
    e->len = lr_get_le32(x + 8);
    e->chunk_off = lr_get_le32(x + 12);
    *chunk_len = lr_get_le32(x + 16);
    memcpy(e->hash.b, x + 20, ST_HASH_LEN);
}

/* ---- export ----------------------------------------------------------- */

struct exp_ctx {
    st_txn *t;
    struct wbuf *w;
    uint16_t n;
    int rc;
};

static int exp_name(uint64_t parent, const char *name, size_t len, void *arg)
{
    struct exp_ctx *c = arg;
    struct st_inode p;
    if (c->n >= ST_REP_MAX_NAMES)
        return 0; /* more hard links than a record carries: the rest stay local */
    int rc = st_inode_get(c->t, parent, &p);
    if (rc)
        return rc;
    uint8_t *o = wb_room(c->w, 18 + len);
    if (!o)
        return -ENOMEM;
    memcpy(o, p.fid, 16);
    lr_put_le16(o + 16, (uint16_t)len);
    memcpy(o + 18, name, len);
    c->n++;
    return 0;
}

struct exp_x {
    struct exp_ctx c;
    uint64_t ino;
};

static int exp_xattr_ino(const char *name, size_t vlen, void *arg)
{
    struct exp_x *x = arg;
    const void *v;
    size_t n;
    (void)vlen;
    if (x->c.n >= ST_REP_MAX_XATTRS)
        return 0;
    int rc = st_xattr_get(x->c.t, x->ino, name, &v, &n);
    if (rc)
        return rc;
    size_t nl = strlen(name);
    uint8_t *o = wb_room(x->c.w, 6 + nl + n);
    if (!o)
        return -ENOMEM;
    lr_put_le16(o, (uint16_t)nl);
    lr_put_le32(o + 2, (uint32_t)n);
    memcpy(o + 6, name, nl);
    memcpy(o + 6 + nl, v, n);
    x->c.n++;
    return 0;
}

static int exp_extent(uint64_t ino, const struct st_extent *e, void *arg)
{
    struct exp_ctx *c = arg;
    struct st_chunkref r;
    (void)ino;
    int rc = st_chunk_info(c->t, &e->hash, &r);
    if (rc)
        return rc == -ENOENT ? LR_ECORRUPT : rc;
    uint8_t *o = wb_room(c->w, ST_REP_EXTENT_LEN);
    if (!o)
        return -ENOMEM;
    lr_put_le64(o, e->off);
    lr_put_le32(o + 8, e->len);
    lr_put_le32(o + 12, e->chunk_off);
    lr_put_le32(o + 16, r.len);
    memcpy(o + 20, e->hash.b, ST_HASH_LEN);
    c->n++; /* counts extents here; see caller */
    return 0;
}

/* Encode inode in (tomb: as a deleted file, no names or data). */
static int export_inode(st_txn *t, const struct st_inode *in, int tomb, uint8_t **out, size_t *outlen)
{
    struct wbuf w = { 0 };
    uint8_t *h = wb_room(&w, ST_REP_HDR);
    if (!h)
        return -ENOMEM;
    memset(h, 0, ST_REP_HDR);
    h[0] = ST_REP_VERSION;
    lr_put_le16(h + 2, in->nvv);
    lr_put_le32(h + 4, in->mode);
    lr_put_le32(h + 8, in->uid);
    lr_put_le32(h + 12, in->gid);
    lr_put_le64(h + 16, in->size);
    lr_put_le64(h + 24, in->rdev);
    memcpy(h + 32, in->fid, 16);
    memcpy(h + 48, in->writer, 8);
    st__put_ts(h + 56, in->mtime);
    st__put_ts(h + 68, in->ctime);
    for (uint16_t i = 0; i < in->nvv; i++) {
        uint8_t *o = wb_room(&w, 16);
        if (!o)
            break;
        memcpy(o, in->vv[i].dev, 8);
        lr_put_le64(o + 8, in->vv[i].ctr);
    }
    int rc = 0;
    uint16_t nnames = 0, nx = 0;
    uint32_t next = 0;
    int deleted = tomb || (in->nlink == 0 && in->ino != ST_ROOT_INO);
    if (!deleted) {
        struct exp_ctx c = { .t = t, .w = &w };
        if (!(rc = st_dirent_names(t, in->ino, exp_name, &c)))
            nnames = c.n;
        if (!rc && nnames == 0 && in->ino != ST_ROOT_INO)
            deleted = 1;
    }
    if (!rc && !deleted) {
        struct exp_x x = { .c = { .t = t, .w = &w }, .ino = in->ino };
        if (!(rc = st_xattr_foreach(t, in->ino, exp_xattr_ino, &x)))
            nx = x.c.n;
        struct exp_ctx c = { .t = t, .w = &w };
        if (!rc && !(rc = st_extent_foreach(t, in->ino, 0, exp_extent, &c)))
            next = c.n;
    }
    if (!rc)
        rc = w.err;
    if (rc) {
        free(w.d);
        return rc;
    }
    h = w.d; /* may have moved */
    h[1] = deleted ? ST_REP_DELETED : 0;
    if (deleted) {
        /* A deleted file's record holds no names or data. */
        w.len = ST_REP_HDR + (size_t)in->nvv * 16;
        nnames = nx = 0;
        next = 0;
    }
    lr_put_le16(h + 80, nnames);
    lr_put_le16(h + 82, nx);
    lr_put_le32(h + 84, next);
    *out = w.d;
    *outlen = w.len;
    return 0;
}

int st_rep_export(st_txn *t, const uint8_t fid[16], uint8_t **out, size_t *outlen)
{
    ST_CHECK_TXN(t);
    uint64_t ino;
    int rc = st_fid_lookup(t, fid, &ino);
    if (rc == -ENOENT) {
        MDB_val v;
        if ((rc = st__get(t, t->st->db_tomb, fid, 16, &v)))
            return rc;
        if (st__tomb_rec_expired(t->st, &v))
            return -ENOENT; /* forgotten, if not yet collected */
        if (!(*out = malloc(v.mv_size)))
            return -ENOMEM;
        memcpy(*out, v.mv_data, v.mv_size);
        *outlen = v.mv_size;
        return 0;
    }
    if (rc)
        return rc;
    struct st_inode in;
    if ((rc = st_inode_get(t, ino, &in)))
        return rc;
    return export_inode(t, &in, 0, out, outlen);
}

int st__rep_tomb(st_txn *t, const struct st_inode *in)
{
    uint8_t *b;
    size_t n;
    int rc = export_inode(t, in, 1, &b, &n);
    if (rc)
        return rc;
    rc = st__put(t, t->st->db_tomb, in->fid, 16, b, n, 0);
    free(b);
    return rc;
}

int st_rep_log_fids(const void *rec, size_t len, uint8_t fids[4][16])
{
    static const size_t offs[4] = { 32, 64, 16, 48 };
    static const uint8_t zero[16];
    const uint8_t *r = rec;
    int n = 0;
    if (len < 80)
        return 0;
    for (int i = 0; i < 4; i++) {
        const uint8_t *f = r + offs[i];
        if (!memcmp(f, zero, 16))
            continue;
        int dup = 0;
        for (int j = 0; j < n; j++)
            if (!memcmp(fids[j], f, 16))
                dup = 1;
        if (!dup)
            memcpy(fids[n++], f, 16);
    }
    return n;
}

/* ---- conflict names ---------------------------------------------------- */

/* st_rep_conflict_name with a sequence number: 0 gives that name, n > 0
 * the same with "-n" after the device (a second version of the same
 * second and device must not overwrite or drop the first). */
static size_t conflict_name_seq(const char *name, size_t len, const struct timespec *mtime,
                                const uint8_t dev[8], unsigned seq, char *out, size_t cap)
{
    static const char b32[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    char devs[9];
    uint64_t bits = 0;
    for (int i = 0; i < 5; i++)
        bits = (bits << 8) | dev[i];
    for (int i = 0; i < 8; i++)
        devs[i] = b32[(bits >> (35 - 5 * i)) & 31];
    devs[8] = 0;
    struct tm tm;
    time_t s = mtime->tv_sec;
    gmtime_r(&s, &tm);
    char mid[64];
    int ml = snprintf(mid, sizeof(mid), ".sync-conflict-%04d%02d%02d-%02d%02d%02d-%s",
                      tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
                      tm.tm_sec, devs);
    if (seq)
        ml += snprintf(mid + ml, sizeof(mid) - (size_t)ml, "-%u", seq);
    size_t dot = len;
    for (size_t i = len; i > 1; i--)
        if (name[i - 1] == '.') {
            dot = i - 1;
            break;
        }
    size_t extlen = len - dot;
    if (extlen > 32) {
        dot = len;
        extlen = 0;
    }
    size_t base = dot;
    if (base + (size_t)ml + extlen > ST_NAME_MAX)
        base = ST_NAME_MAX - (size_t)ml - extlen;
    size_t n = 0;
    if (cap < ST_NAME_MAX + 1)
        return 0;
    memcpy(out, name, base);
    n = base;
    memcpy(out + n, mid, (size_t)ml);
    n += (size_t)ml;
    memcpy(out + n, name + dot, extlen);
    n += extlen;
    out[n] = 0;
    return n;
}

size_t st_rep_conflict_name(const char *name, size_t len, const struct timespec *mtime,
                            const uint8_t dev[8], char *out, size_t cap)
{
    return conflict_name_seq(name, len, mtime, dev, 0, out, cap);
}

/* ---- apply ------------------------------------------------------------- */

struct app {
    st_txn *t;
    const struct st_rep_hooks *h;
    uint8_t self[8];
};

static void hk_inode(struct app *a, uint64_t ino) { if (a->h && a->h->inode) a->h->inode(a->h->ctx, ino); }
static void hk_gone(struct app *a, uint64_t p, const char *n, size_t l, uint64_t gone)
{
    if (a->h && a->h->entry)
        a->h->entry(a->h->ctx, p, n, l, gone);
}
static void hk_entry(struct app *a, uint64_t p, const char *n, size_t l) { hk_gone(a, p, n, l, 0); }
static void hk_orphan(struct app *a, uint64_t ino) { if (a->h && a->h->orphan) a->h->orphan(a->h->ctx, ino); }

static int log_rep(st_txn *t, const uint8_t fid[16], const uint8_t pfid[16])
{
    uint8_t r[80] = { ST_REP_VERSION, ST_REP_LOG };
    memcpy(r + 16, fid, 16);
    if (pfid)
        memcpy(r + 32, pfid, 16);
    return st_log_append(t, r, sizeof(r), NULL);
}

static int adjust_nlink(st_txn *t, uint64_t ino, int delta)
{
    struct st_inode p;
    int rc = st_inode_get(t, ino, &p);
    if (rc)
        return rc;
    if (delta < 0 && p.nlink == 0)
        return 0;
    p.nlink = (uint32_t)((int64_t)p.nlink + delta);
    return st_inode_put(t, &p);
}

/* 1 if dir is anc or lies below it. */
static int is_below(st_txn *t, uint64_t dir, uint64_t anc)
{
    for (int depth = 0; depth < 4096; depth++) {
        if (dir == anc)
            return 1;
        if (dir == ST_ROOT_INO)
            return 0;
        struct st_inode in;
        if (st_inode_get(t, dir, &in) || in.parent == 0 || in.parent == dir)
            return 0;
        dir = in.parent;
    }
    return 1; /* a cycle already: treat as below, refuse */
}

struct cur_names {
    uint64_t parent[ST_REP_MAX_NAMES];
    char name[ST_REP_MAX_NAMES][ST_NAME_MAX + 1];
    uint16_t len[ST_REP_MAX_NAMES];
    int n;
};

static int collect_names(uint64_t parent, const char *name, size_t len, void *arg)
{
    struct cur_names *c = arg;
    if (c->n >= ST_REP_MAX_NAMES)
        return 0;
    c->parent[c->n] = parent;
    memcpy(c->name[c->n], name, len);
    c->name[c->n][len] = 0;
    c->len[c->n] = (uint16_t)len;
    c->n++;
    return 0;
}

/* Remove every name of ino (a deletion). */
static int drop_names(struct app *a, struct st_inode *in)
{
    static __thread struct cur_names cur;
    cur.n = 0;
    int rc = st_dirent_names(a->t, in->ino, collect_names, &cur);
    for (int i = 0; i < cur.n && !rc; i++) {
        if (!(rc = st_dirent_del(a->t, cur.parent[i], cur.name[i], cur.len[i]))) {
            hk_gone(a, cur.parent[i], cur.name[i], cur.len[i], S_ISDIR(in->mode) ? 0 : in->ino);
            if (S_ISDIR(in->mode))
                rc = adjust_nlink(a->t, cur.parent[i], -1);
        }
    }
    return rc;
}

/* <0, 0, >0 as time a is before, equal to or after time b. */
static int ts_cmp(const struct timespec *a, const struct timespec *b)
{
    if (a->tv_sec != b->tv_sec)
        return a->tv_sec < b->tv_sec ? -1 : 1;
    return a->tv_nsec < b->tv_nsec ? -1 : a->tv_nsec > b->tv_nsec;
}

/* Link ino under (parent, name); on a name taken by another file, the later
 * mtime (then greater file id) keeps it and the other gets its conflict
 * name. Returns 0 or an error. */
static int link_name(struct app *a, struct st_inode *in, uint64_t parent, const char *name, size_t len)
{
    st_txn *t = a->t;
    char cname[ST_NAME_MAX + 1];
    struct st_dirent d;
    if (S_ISDIR(in->mode) && is_below(t, parent, in->ino)) {
        lr_warn("store '%s': a peer moved a directory into itself; keeping it at the top", t->st->dir);
        parent = ST_ROOT_INO;
    }
    int rc = st_dirent_get(t, parent, name, len, &d);
    if (rc == 0 && d.child == in->ino)
        return 0;
    if (rc == 0) {
        struct st_inode x;
        if ((rc = st_inode_get(t, d.child, &x)))
            return rc;
        int later = ts_cmp(&in->mtime, &x.mtime);
        int incoming_wins = later ? later > 0 : memcmp(in->fid, x.fid, 16) > 0;
        if (incoming_wins) {
            /* Every peer that sees both files makes this same choice and
             * this same name, so the move is not a change of x's: no
             * version bump, no log record. (Bumping made x "modified
             * here", and when x's deletion arrived - a save by rename,
             * whose new file can arrive first under the old one's name -
             * the modification won and a conflict copy appeared.) */
            size_t cl = st_rep_conflict_name(name, len, &x.mtime, x.fid, cname, sizeof(cname));
            if ((rc = st_dirent_del(t, parent, name, len)) ||
                (rc = st_dirent_put(t, parent, cname, cl, x.ino, st_mode_dtype(x.mode))))
                return rc;
            hk_entry(a, parent, cname, cl);
        } else {
            len = st_rep_conflict_name(name, len, &in->mtime, in->fid, cname, sizeof(cname));
            name = cname;
        }
    } else if (rc != -ENOENT) {
        return rc;
    }
    if ((rc = st_dirent_put(t, parent, name, len, in->ino, st_mode_dtype(in->mode))))
        return rc;
    hk_entry(a, parent, name, len);
    in->parent = parent;
    if (S_ISDIR(in->mode))
        return adjust_nlink(t, parent, 1);
    return 0;
}

/* Make the names of in exactly those of f. Parents must exist. */
static int set_names(struct app *a, struct st_inode *in, const struct st_rep_file *f)
{
    static __thread struct cur_names cur;
    uint64_t want[ST_REP_MAX_NAMES];
    int rc = 0;
    for (uint16_t i = 0; i < f->nnames && !rc; i++)
        rc = st_fid_lookup(a->t, f->names[i].pfid, &want[i]);
    if (rc)
        return rc == -ENOENT ? -EAGAIN : rc;
    cur.n = 0;
    if ((rc = st_dirent_names(a->t, in->ino, collect_names, &cur)))
        return rc;
    for (int i = 0; i < cur.n && !rc; i++) {
        int keep = 0;
        for (uint16_t j = 0; j < f->nnames; j++)
            if (want[j] == cur.parent[i] && f->names[j].len == cur.len[i] &&
                !memcmp(f->names[j].name, cur.name[i], cur.len[i]))
                keep = 1;
        if (keep)
            continue;
        if (!(rc = st_dirent_del(a->t, cur.parent[i], cur.name[i], cur.len[i]))) {
            hk_entry(a, cur.parent[i], cur.name[i], cur.len[i]);
            if (S_ISDIR(in->mode))
                rc = adjust_nlink(a->t, cur.parent[i], -1);
        }
    }
    for (uint16_t j = 0; j < f->nnames && !rc; j++)
        rc = link_name(a, in, want[j], f->names[j].name, f->names[j].len);
    if (!rc && !S_ISDIR(in->mode))
        in->nlink = f->nnames;
    return rc;
}

struct ext_list {
    struct st_extent *e;
    size_t n, cap;
};

static int collect_ext(uint64_t ino, const struct st_extent *e, void *arg)
{
    struct ext_list *l = arg;
    (void)ino;
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 64;
        struct st_extent *n = realloc(l->e, cap * sizeof(*n));
        if (!n)
            return -ENOMEM;
        l->e = n;
        l->cap = cap;
    }
    l->e[l->n++] = *e;
    return 0;
}

static int ext_same(const struct st_extent *a, const struct st_extent *b)
{
    return a->off == b->off && a->len == b->len && a->chunk_off == b->chunk_off &&
           !memcmp(a->hash.b, b->hash.b, ST_HASH_LEN);
}

/* Index in old (sorted by off) of an extent equal to e, or -1. */
static long find_same(const struct ext_list *old, const struct st_extent *e)
{
    size_t lo = 0, hi = old->n;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (old->e[mid].off < e->off)
            lo = mid + 1;
        else
            hi = mid;
    }
    return (lo < old->n && ext_same(&old->e[lo], e)) ? (long)lo : -1;
}

static int data_differs(st_txn *t, uint64_t ino, const struct st_rep_file *f, uint64_t size)
{
    if (size != f->size)
        return 1;
    struct ext_list old = { 0 };
    int rc = st_extent_foreach(t, ino, 0, collect_ext, &old);
    int differ = rc || old.n != f->nextents;
    for (uint32_t i = 0; !differ && i < f->nextents; i++) {
        struct st_extent e;
        uint32_t cl;
        st_rep_extent(f, i, &e, &cl);
        differ = !ext_same(&old.e[i], &e);
    }
    free(old.e);
    return differ;
}

/* Make ino's extents those of f: reference new chunks first, then drop old
 * extents, then write the new ones, so shared chunks never hit zero. */
static int set_extents(struct app *a, uint64_t ino, const struct st_rep_file *f)
{
    st_txn *t = a->t;
    struct ext_list old = { 0 };
    int rc = st_extent_foreach(t, ino, 0, collect_ext, &old);
    uint8_t *keep = rc ? NULL : calloc(old.n + 1, 1);
    uint8_t *isnew = rc ? NULL : calloc(f->nextents + 1, 1);
    if (!rc && (!keep || !isnew))
        rc = -ENOMEM;
    for (uint32_t i = 0; i < f->nextents && !rc; i++) {
        struct st_extent e;
        uint32_t cl;
        st_rep_extent(f, i, &e, &cl);
        long j = find_same(&old, &e);
        if (j >= 0) {
            keep[j] = 1;
            continue;
        }
        isnew[i] = 1;
        if (!(rc = st_chunk_declare(t, &e.hash, cl)))
            rc = st__chunk_ref(t, &e.hash, 1);
    }
    for (size_t j = 0; j < old.n && !rc; j++) {
        if (keep[j])
            continue;
        if (!(rc = st__extent_remove(t, ino, old.e[j].off)))
            rc = st__chunk_ref(t, &old.e[j].hash, -1);
    }
    for (uint32_t i = 0; i < f->nextents && !rc; i++) {
        if (!isnew[i])
            continue;
        struct st_extent e;
        uint32_t cl;
        st_rep_extent(f, i, &e, &cl);
        rc = st__extent_write(t, ino, &e);
    }
    free(old.e);
    free(keep);
    free(isnew);
    return rc;
}

struct xnames {
    char name[ST_REP_MAX_XATTRS][256];
    int n;
};

static int collect_xname(const char *name, size_t vlen, void *arg)
{
    struct xnames *x = arg;
    (void)vlen;
    if (x->n < ST_REP_MAX_XATTRS)
        snprintf(x->name[x->n++], 256, "%s", name);
    return 0;
}

static int set_xattrs(struct app *a, uint64_t ino, const struct st_rep_file *f)
{
    static __thread struct xnames x;
    x.n = 0;
    int rc = st_xattr_foreach(a->t, ino, collect_xname, &x);
    for (int i = 0; i < x.n && !rc; i++)
        rc = st_xattr_del(a->t, ino, x.name[i]);
    for (uint16_t i = 0; i < f->nxattrs && !rc; i++) {
        char name[256];
        memcpy(name, f->xattrs[i].name, f->xattrs[i].nlen);
        name[f->xattrs[i].nlen] = 0;
        rc = st_xattr_put(a->t, ino, name, f->xattrs[i].val, f->xattrs[i].vlen);
    }
    return rc;
}

static void take_attrs(struct st_inode *in, const struct st_rep_file *f)
{
    in->mode = f->mode;
    in->uid = f->uid;
    in->gid = f->gid;
    in->size = f->size;
    in->rdev = f->rdev;
    in->mtime = f->mtime;
    in->ctime = f->ctime;
    memcpy(in->writer, f->writer, 8);
}

/* 1 if inode ino is a regular file of size bytes whose extents are ex's,
 * 0 if not, or an error. */
static int same_data(st_txn *t, uint64_t ino, uint64_t size, const struct ext_list *ex)
{
    struct st_inode in;
    int rc = st_inode_get(t, ino, &in);
    if (rc)
        return rc == -ENOENT ? 0 : rc;
    if (!S_ISREG(in.mode) || in.size != size)
        return 0;
    struct ext_list have = { 0 };
    rc = st_extent_foreach(t, ino, 0, collect_ext, &have);
    int same = rc == 0 && have.n == ex->n;
    for (size_t i = 0; same && i < ex->n; i++)
        same = have.e[i].off == ex->e[i].off && have.e[i].len == ex->e[i].len &&
               have.e[i].chunk_off == ex->e[i].chunk_off &&
               !memcmp(have.e[i].hash.b, ex->e[i].hash.b, ST_HASH_LEN);
    free(have.e);
    return rc ? rc : same;
}

/* Keep the local version of a regular file as a new file under conflict
 * names next to each of its names (extents shared, nothing copied). */
static int conflict_copy(struct app *a, const struct st_inode *loc)
{
    st_txn *t = a->t;
    static __thread struct cur_names cur;
    cur.n = 0;
    int rc = st_dirent_names(t, loc->ino, collect_names, &cur);
    if (rc || cur.n == 0)
        return rc;
    struct st_inode c = *loc;
    if ((rc = st_inode_alloc(t, &c)))
        return rc;
    c.nvv = 0;
    st_vv_bump(&c, a->self);
    c.nlink = 0;
    struct ext_list ex = { 0 };
    rc = st_extent_foreach(t, loc->ino, 0, collect_ext, &ex);
    for (size_t i = 0; i < ex.n && !rc; i++)
        rc = st_extent_put(t, c.ino, &ex.e[i]);
    for (int i = 0; i < cur.n && !rc; i++) {
        char cname[ST_NAME_MAX + 1];
        size_t cl = 0;
        int kept = 0;
        /* The first free name of this version's second and device, unless
         * one of them already holds this very data (kept once before). */
        for (unsigned seq = 0; seq < 1000 && !rc; seq++) {
            cl = conflict_name_seq(cur.name[i], cur.len[i], &loc->mtime, a->self, seq, cname, sizeof(cname));
            struct st_dirent d;
            int g = st_dirent_get(t, cur.parent[i], cname, cl, &d);
            if (g == -ENOENT)
                break; /* free */
            if (g == 0)
                g = same_data(t, d.child, loc->size, &ex);
            if (g < 0)
                rc = g;
            else if (g == 1)
                kept = 1;
            if (kept)
                break;
        }
        if (rc || kept)
            continue;
        if (!(rc = st_dirent_put(t, cur.parent[i], cname, cl, c.ino, DT_REG))) {
            c.nlink++;
            c.parent = cur.parent[i];
            hk_entry(a, cur.parent[i], cname, cl);
        }
    }
    free(ex.e);
    if (!rc)
        rc = st_inode_put(t, &c);
    if (!rc && c.nlink == 0)
        rc = st_inode_del(t, c.ino);
    else if (!rc) {
        struct st_inode p;
        if (!(rc = st_inode_get(t, c.parent, &p)))
            rc = log_rep(t, c.fid, p.fid);
        lr_info("store '%s': concurrent edits of '%s': local version kept as '%s'",
                t->st->dir, cur.name[0], "(conflict copy)");
    }
    return rc;
}

/* Adopt f's state for the existing inode in (vv already set by caller). */
static int adopt(struct app *a, struct st_inode *in, const struct st_rep_file *f)
{
    int rc;
    int was_live = in->nlink > 0 || in->ino == ST_ROOT_INO;
    struct st_inode prev = *in;
    take_attrs(in, f);
    if (f->flags & ST_REP_DELETED) {
        if (in->ino == ST_ROOT_INO)
            return 0;
        if ((rc = drop_names(a, in)))
            return rc;
        in->nlink = 0;
        /* The data stays until the file is unused here: a reader that has
         * it open goes on reading it (as after a local unlink), and the
         * reaper drops the extents with the inode (hk_orphan). */
        if (was_live)
            hk_orphan(a, in->ino);
    } else {
        /* A peer's edit replaces the data: keep the old data as a version,
         * as for a local edit. */
        if (S_ISREG(in->mode) && (rc = st_version_save(a->t, &prev)))
            return rc;
        if (!S_ISDIR(in->mode) && (rc = set_extents(a, in->ino, f)))
            return rc;
        if ((rc = set_xattrs(a, in->ino, f)))
            return rc;
        if (S_ISDIR(in->mode) && in->nlink < 2)
            in->nlink = 2;
        if (in->ino != ST_ROOT_INO && (rc = set_names(a, in, f)))
            return rc;
    }
    hk_inode(a, in->ino);
    return 0;
}

static int first_pfid(st_txn *t, const struct st_inode *in, uint8_t pfid[16])
{
    struct st_inode p;
    if (in->parent == 0 || st_inode_get(t, in->parent, &p))
        return 0;
    memcpy(pfid, p.fid, 16);
    return 1;
}

static int log_inode(st_txn *t, const struct st_inode *in)
{
    uint8_t pfid[16];
    return log_rep(t, in->fid, first_pfid(t, in, pfid) ? pfid : NULL);
}

/* Equal versions of a live directory: entries added or removed on either
 * side changed its times without a new version (ns.c, dir_touch), so each
 * side keeps the later mtime and ctime. Taking the maximum converges;
 * times set on purpose (touch, tar) bump the version and are adopted
 * exactly instead. A change is logged so it relays to further peers. */
static int dir_times_merge(struct app *a, struct st_inode *in, const struct st_rep_file *f)
{
    int later_m = ts_cmp(&f->mtime, &in->mtime) > 0, later_c = ts_cmp(&f->ctime, &in->ctime) > 0;
    if (!later_m && !later_c)
        return 0;
    if (later_m)
        in->mtime = f->mtime;
    if (later_c)
        in->ctime = f->ctime;
    int rc = st_inode_put(a->t, in);
    if (rc == 0 && (rc = log_inode(a->t, in)) == 0)
        hk_inode(a, in->ino);
    return rc;
}

int st_rep_apply(st_txn *t, const struct st_rep_file *f, const uint8_t from_dev[8],
                 const struct st_rep_hooks *hooks, int *result)
{
    ST_CHECK_WRITE(t);
    struct app a = { .t = t, .h = hooks };
    struct st_meta m;
    st_meta(t->st, &m);
    memcpy(a.self, m.device, 8);
    *result = ST_REP_IGNORED;
    int fdel = f->flags & ST_REP_DELETED;
    if (fdel && !memcmp(f->fid, root_fid, 16))
        return LR_EPROTO; /* nobody deletes the root */

    /* Parents first: a record naming an unknown directory waits. */
    for (uint16_t i = 0; i < f->nnames; i++) {
        uint64_t p;
        int rc = st_fid_lookup(t, f->names[i].pfid, &p);
        if (rc)
            return rc == -ENOENT ? -EAGAIN : rc;
        struct st_inode pi;
        if ((rc = st_inode_get(t, p, &pi)))
            return rc;
        if (!S_ISDIR(pi.mode))
            return LR_EPROTO;
    }

    uint64_t ino;
    int rc = st_fid_lookup(t, f->fid, &ino);
    if (rc == -ENOENT) {
        MDB_val v;
        struct st_rep_file *tomb = NULL;
        int trc = st__get(t, t->st->db_tomb, f->fid, 16, &v);
        if (trc && trc != -ENOENT)
            return trc;
        if (trc == 0 && !st__tomb_rec_expired(t->st, &v)) {
            /* (an expired tombstone counts for nothing: FORGETTING
             * DELETIONS; it goes if the file comes back) */
            tomb = malloc(sizeof(*tomb));
            if (!tomb)
                return -ENOMEM;
            int c = st_rep_decode(v.mv_data, v.mv_size, tomb) ? ST_VV_LESS
                  : st_vv_compare(tomb->vv, tomb->nvv, f->vv, f->nvv);
            free(tomb);
            if (c == ST_VV_EQUAL || c == ST_VV_GREATER)
                return 0;
        }
        if (fdel) {
            if (st__tomb_expired(t->st, (int64_t)f->ctime.tv_sec))
                return 0; /* forgotten already */
            /* Remember the newer deletion, to refuse older copies. */
            struct st_inode d = { 0 };
            take_attrs(&d, f);
            memcpy(d.fid, f->fid, 16);
            d.nvv = f->nvv;
            memcpy(d.vv, f->vv, sizeof(f->vv[0]) * f->nvv);
            return st__rep_tomb(t, &d);
        }
        /* A new file. */
        struct st_inode in = { 0 };
        if ((rc = st_inode_alloc(t, &in)))
            return rc;
        memcpy(in.fid, f->fid, 16);
        take_attrs(&in, f);
        in.nvv = f->nvv;
        memcpy(in.vv, f->vv, sizeof(f->vv[0]) * f->nvv);
        in.atime = in.btime = f->mtime;
        in.nlink = S_ISDIR(f->mode) ? 2 : 0;
        if ((rc = st_inode_put(t, &in)))
            return rc;
        if (trc == 0 && (rc = st__del(t, t->st->db_tomb, f->fid, 16)))
            return rc;
        if ((rc = set_extents(&a, in.ino, f)) || (rc = set_xattrs(&a, in.ino, f)) ||
            (rc = set_names(&a, &in, f)) || (rc = st_inode_put(t, &in)) ||
            (rc = log_inode(t, &in)))
            return rc;
        hk_inode(&a, in.ino);
        *result = ST_REP_APPLIED;
        return 0;
    }
    if (rc)
        return rc;

    struct st_inode in;
    if ((rc = st_inode_get(t, ino, &in)))
        return rc;
    int c = st_vv_compare(in.vv, in.nvv, f->vv, f->nvv);
    int ldel = in.nlink == 0 && ino != ST_ROOT_INO;
    if (c == ST_VV_EQUAL && S_ISDIR(in.mode) && !ldel && !fdel)
        return dir_times_merge(&a, &in, f);
    if (c == ST_VV_EQUAL || c == ST_VV_GREATER)
        return 0;

    if (c == ST_VV_LESS) {
        if (fdel && S_ISDIR(in.mode) && st_dirent_empty(t, ino) == 0) {
            /* Deleting a directory that holds files the peer had not seen:
             * the directory stays, and our version now dominates. */
            st_vv_merge(in.vv, &in.nvv, f->vv, f->nvv);
            st_vv_bump(&in, a.self);
            if ((rc = st_inode_put(t, &in)) || (rc = log_inode(t, &in)))
                return rc;
            *result = ST_REP_CONFLICT;
            return 0;
        }
        in.nvv = f->nvv;
        memcpy(in.vv, f->vv, sizeof(f->vv[0]) * f->nvv);
        struct timespec lmtime = in.mtime, lctime = in.ctime;
        if ((rc = adopt(&a, &in, f)))
            return rc;
        /* Entries changed here after the peer's last change of this
         * directory (its ctime): those times stay (dir_times_merge). */
        if (S_ISDIR(in.mode) && !ldel && !fdel && ts_cmp(&lctime, &f->ctime) > 0) {
            in.mtime = lmtime;
            in.ctime = lctime;
        }
        if ((rc = st_inode_put(t, &in)) || (rc = log_inode(t, &in)))
            return rc;
        *result = ST_REP_APPLIED;
        return 0;
    }

    /* Concurrent versions. */
    int remote_wins, later = ts_cmp(&f->mtime, &in.mtime);
    if (fdel != ldel) {
        remote_wins = ldel; /* a modification beats a deletion */
    } else if (later != 0) {
        remote_wins = later > 0;
    } else {
        int w = memcmp(f->writer, in.writer, 8);
        remote_wins = w != 0 ? w > 0 : (f->size != in.size ? f->size > in.size
                                                          : memcmp(from_dev, a.self, 8) > 0);
    }
    if (remote_wins && fdel && S_ISDIR(in.mode) && st_dirent_empty(t, ino) == 0)
        remote_wins = 0;
    *result = ST_REP_CONFLICT;
    if (!remote_wins)
        return 0; /* the peer resolves the same way and sends the merge back */
    /* The losing side merges: it keeps its version as a conflict copy if
     * the data differs, adopts the winner and takes both vectors, which
     * then dominates on the winner's side too. */
    if (S_ISREG(in.mode) && !ldel && !fdel && data_differs(t, ino, f, in.size) &&
        (rc = conflict_copy(&a, &in)))
        return rc;
    st_vv_merge(in.vv, &in.nvv, f->vv, f->nvv);
    if ((rc = adopt(&a, &in, f)) || (rc = st_inode_put(t, &in)) || (rc = log_inode(t, &in)))
        return rc;
    return 0;
}
