/*
 * pass5_inodes.c - pass 5: every inode decodes; the root is a directory;
 * directory entries decode, sit in live directories and name live inodes
 * of their type; every inode is reachable from the root (a directory has
 * one name); link counts are right (regular: its names; directory: 2 + its
 * subdirectories); the fid and backref indexes agree with the inodes and
 * entries; xattrs belong to inodes.
 *
 * Inodes with no name: nlink 0 ones are leftovers of files unlinked while
 * in use before a crash (ns.h "Orphans"; the daemon reaps them at mount):
 * deleted, and not counted as errors. Others are reconnected under
 * /lost+found (created if missing, mode 0700) as "#<inode>".
 *
 * The model (arrays below) always reflects the repaired state, whether or
 * not a repair was accepted, so a declined fix does not cascade into
 * follow-on reports, and -n reports what -y repairs.
 */
#include "fsck.h"

#include <dirent.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "ns.h"

struct ino5 {
    uint64_t ino;
    uint32_t mode, nlink;
    uint64_t size;
    uint8_t fid[16];
    uint64_t hint;     /* parent inode hint of the record */
    size_t keep;       /* directories: index of the name kept (+1; 0 none) */
    uint8_t dead;      /* undecodable or to be deleted (model) */
    uint8_t deleted;   /* actually deleted from the store */
    uint8_t reached, skipnlink, fid_seen;
    uint32_t names, subdirs;
};

struct dent5 {
    uint64_t parent, child;
    uint8_t type, dead, backref_seen;
    uint16_t namelen;
    char name[ST_NAME_MAX + 1];
};

struct p5 {
    struct fsck *f;
    st_txn *t;
    struct ino5 *in;
    size_t nin, capin;
    struct dent5 *de;
    size_t nde, capde;
    struct fsck_keys badino, badde, rec; /* rec: records of the fid/backref/xattr walks */
    struct fsck_keys recv;               /* values of the fid walk */
    uint64_t lf;                         /* /lost+found, 0 if none (yet) */
    int lf_failed;
    int err;
};

static uint8_t mode_dtype(uint32_t mode) { return (uint8_t)((mode & S_IFMT) >> 12); }

static struct ino5 *ino_find(struct p5 *p, uint64_t ino)
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

static struct ino5 *alive(struct p5 *p, uint64_t ino)
{
    struct ino5 *i = ino_find(p, ino);
    return i && !i->dead ? i : NULL;
}

static int ino_cmp(const void *a, const void *b)
{
    uint64_t x = ((const struct ino5 *)a)->ino, y = ((const struct ino5 *)b)->ino;
    return x < y ? -1 : x > y;
}

static struct ino5 *ino_add(struct p5 *p, uint64_t ino)
{
    if (p->nin == p->capin) {
        size_t cap = p->capin ? 2 * p->capin : 1024;
        struct ino5 *n = realloc(p->in, cap * sizeof(*n));
        if (!n)
            return NULL;
        p->in = n;
        p->capin = cap;
    }
    struct ino5 *i = &p->in[p->nin++];
    memset(i, 0, sizeof(*i));
    i->ino = ino;
    if (p->nin > 1 && p->in[p->nin - 2].ino > ino) {
        qsort(p->in, p->nin, sizeof(*p->in), ino_cmp);
        i = ino_find(p, ino);
    }
    return i;
}

/* Dirent order = LMDB key order: parent, then name bytes, shorter first. */
static int de_cmp3(uint64_t pa, const char *na, size_t la, uint64_t pb, const char *nb, size_t lb)
{
    if (pa != pb)
        return pa < pb ? -1 : 1;
    int c = memcmp(na, nb, la < lb ? la : lb);
    if (c)
        return c;
    return la < lb ? -1 : la > lb;
}

static int de_cmp(const void *a, const void *b)
{
    const struct dent5 *x = a, *y = b;
    return de_cmp3(x->parent, x->name, x->namelen, y->parent, y->name, y->namelen);
}

static struct dent5 *de_find(struct p5 *p, uint64_t parent, const char *name, size_t len)
{
    size_t lo = 0, hi = p->nde;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = de_cmp3(p->de[mid].parent, p->de[mid].name, p->de[mid].namelen, parent, name, len);
        if (c == 0)
            return &p->de[mid];
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

/* Index of the first entry of parent. */
static size_t de_first(struct p5 *p, uint64_t parent)
{
    size_t lo = 0, hi = p->nde;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (p->de[mid].parent < parent)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

static struct dent5 *de_add(struct p5 *p)
{
    if (p->nde == p->capde) {
        size_t cap = p->capde ? 2 * p->capde : 1024;
        struct dent5 *n = realloc(p->de, cap * sizeof(*n));
        if (!n)
            return NULL;
        p->de = n;
        p->capde = cap;
    }
    struct dent5 *d = &p->de[p->nde++];
    memset(d, 0, sizeof(*d));
    return d;
}

/* ---- walks (collect only) ---------------------------------------------- */

static int walk_ino(const void *k, size_t kl, const void *v, size_t vl, void *arg)
{
    struct p5 *p = arg;
    if (fsck_interrupted)
        return FSCK_CANCELLED;
    if (kl != 8 || lr_get_be64(k) == 0) {
        if (fsck_problem(p->f, PR_INODE_BAD_KEY, fsck_bytes_hex(k, kl)))
            return p->err = fsck_keys_add(&p->badino, k, kl);
        return 0;
    }
    struct st_inode in;
    in.ino = lr_get_be64(k);
    struct ino5 *i = ino_add(p, in.ino);
    if (!i)
        return p->err = -ENOMEM;
    if (st_inode_decode(v, vl, &in)) {
        i->dead = 1;
        if (fsck_problem(p->f, PR_INODE_BAD, (unsigned long long)in.ino, vl)) {
            i->deleted = 1; /* applied after the walk */
        }
        return 0;
    }
    i->mode = in.mode;
    i->nlink = in.nlink;
    i->size = in.size;
    i->hint = in.parent;
    memcpy(i->fid, in.fid, 16);
    return 0;
}

static int walk_de(const void *k, size_t kl, const void *v, size_t vl, void *arg)
{
    struct p5 *p = arg;
    if (fsck_interrupted)
        return FSCK_CANCELLED;
    struct st_dirent sd;
    if (st_dirent_decode(k, kl, v, vl, &sd)) {
        if (fsck_problem(p->f, PR_DIRENT_BAD, fsck_bytes_hex(k, kl)))
            return p->err = fsck_keys_add(&p->badde, k, kl);
        return 0;
    }
    struct dent5 *d = de_add(p);
    if (!d)
        return p->err = -ENOMEM;
    d->parent = sd.parent;
    d->child = sd.child;
    d->type = sd.type;
    d->namelen = sd.namelen;
    memcpy(d->name, sd.name, sd.namelen + 1);
    return 0;
}

static int walk_rec(const void *k, size_t kl, const void *v, size_t vl, void *arg)
{
    struct p5 *p = arg;
    if (fsck_interrupted)
        return FSCK_CANCELLED;
    if ((p->err = fsck_keys_add(&p->rec, k, kl)) || (p->err = fsck_keys_add(&p->recv, v, vl)))
        return p->err;
    return 0;
}

/* ---- repairs -------------------------------------------------------------- */

/* Remove a directory entry and its backref (raw: the entry may not name a
 * live inode). */
static int de_remove(struct p5 *p, struct dent5 *d)
{
    uint8_t k[16 + ST_NAME_MAX];
    lr_put_be64(k, d->parent);
    memcpy(k + 8, d->name, d->namelen);
    int rc = st_raw_del(p->t, "dirent", k, 8 + d->namelen);
    if (rc && rc != -ENOENT)
        return rc;
    lr_put_be64(k, d->child);
    lr_put_be64(k + 8, d->parent);
    memcpy(k + 16, d->name, d->namelen);
    rc = st_raw_del(p->t, "backref", k, 16 + d->namelen);
    return rc == -ENOENT ? 0 : rc;
}

static int set_nlink(struct p5 *p, uint64_t ino, uint32_t nlink)
{
    struct st_inode in;
    int rc = st_inode_get(p->t, ino, &in);
    if (rc)
        return rc;
    in.nlink = nlink;
    return st_inode_put(p->t, &in);
}

/* /lost+found, created on first use. 0 and p->lf set, or an error; -EEXIST
 * when the name is taken by something that is not a directory. */
static int lost_found(struct p5 *p)
{
    if (p->lf)
        return 0;
    if (p->lf_failed)
        return -EEXIST;
    struct dent5 *d = de_find(p, ST_ROOT_INO, "lost+found", 10);
    if (d && !d->dead) {
        struct ino5 *i = alive(p, d->child);
        if (i && S_ISDIR(i->mode)) {
            p->lf = i->ino;
            return 0;
        }
        p->lf_failed = 1;
        return -EEXIST;
    }
    if (!fsck_problem(p->f, PR_LOSTFOUND_CREATE)) {
        p->lf_failed = 1;
        return -EEXIST;
    }
    struct st_inode in;
    int rc = st_ns_create(p->t, ST_ROOT_INO, "lost+found", 10, S_IFDIR | 0700, 0, 0, 0, NULL, 0, &in);
    if (rc)
        return rc;
    struct ino5 *i = ino_add(p, in.ino);
    if (!i)
        return -ENOMEM;
    i->mode = in.mode;
    i->nlink = in.nlink;
    memcpy(i->fid, in.fid, 16);
    i->reached = 1;
    struct ino5 *root = ino_find(p, ST_ROOT_INO);
    root->nlink++; /* st_ns_create counted the new subdirectory */
    if (!(d = de_add(p)))
        return -ENOMEM;
    d->parent = ST_ROOT_INO;
    d->child = in.ino;
    d->type = DT_DIR;
    d->namelen = 10;
    memcpy(d->name, "lost+found", 11);
    qsort(p->de, p->nde, sizeof(*p->de), de_cmp);
    p->lf = in.ino;
    return 0;
}

/* Give inode i the name "#<ino>" in /lost+found. */
static int reconnect(struct p5 *p, struct ino5 *i)
{
    int rc = lost_found(p);
    if (rc == -EEXIST) {
        i->skipnlink = 1;
        p->f->fixed--;   /* the fix could not be applied */
        p->f->unfixed++;
        printf("  cannot reconnect inode %llu: no /lost+found directory\n", (unsigned long long)i->ino);
        return 0;
    }
    if (rc)
        return rc;
    char name[32];
    int n = snprintf(name, sizeof(name), "#%llu", (unsigned long long)i->ino);
    uint64_t ino = i->ino;
    int isdir = S_ISDIR(i->mode);
    uint8_t type = mode_dtype(i->mode);
    if ((rc = st_dirent_put(p->t, p->lf, name, (size_t)n, ino, type)))
        return rc;
    if (isdir) {
        struct ino5 *l = ino_find(p, p->lf);
        if ((rc = set_nlink(p, p->lf, l->nlink + 1)))
            return rc;
        l->nlink++;
    }
    struct dent5 *d = de_add(p);
    if (!d)
        return -ENOMEM;
    d->parent = p->lf;
    d->child = ino;
    d->type = type;
    d->namelen = (uint16_t)n;
    memcpy(d->name, name, (size_t)n + 1);
    qsort(p->de, p->nde, sizeof(*p->de), de_cmp);
    return 0;
}

/* Breadth-first walk from dir, marking what it reaches; a second name of a
 * directory is removed. */
static int reach_from(struct p5 *p, uint64_t start)
{
    size_t cap = 256, head = 0, tail = 0;
    uint64_t *q = malloc(cap * sizeof(*q));
    if (!q)
        return -ENOMEM;
    q[tail++] = start;
    int rc = 0;
    while (head < tail && !rc) {
        uint64_t dir = q[head++];
        for (size_t j = de_first(p, dir); j < p->nde && p->de[j].parent == dir; j++) {
            struct dent5 *d = &p->de[j];
            if (d->dead)
                continue;
            struct ino5 *c = alive(p, d->child);
            if (!c)
                continue;
            if (!S_ISDIR(c->mode)) {
                c->reached = 1;
                continue;
            }
            if (c->reached || c->ino == ST_ROOT_INO) {
                d->dead = 1;
                if (fsck_problem(p->f, PR_DIR_EXTRA_NAME, (unsigned long long)c->ino, d->name,
                                 (unsigned long long)d->parent) && (rc = de_remove(p, d)))
                    break;
                continue;
            }
            c->reached = 1;
            if (tail == cap) {
                uint64_t *nq = realloc(q, 2 * cap * sizeof(*q));
                if (!nq) {
                    rc = -ENOMEM;
                    break;
                }
                q = nq;
                cap *= 2;
            }
            q[tail++] = c->ino;
        }
        if (fsck_interrupted)
            rc = FSCK_CANCELLED;
    }
    free(q);
    return rc;
}

static void count_names(struct p5 *p)
{
    for (size_t i = 0; i < p->nin; i++)
        p->in[i].names = p->in[i].subdirs = 0;
    for (size_t j = 0; j < p->nde; j++) {
        struct dent5 *d = &p->de[j];
        if (d->dead)
            continue;
        struct ino5 *c = alive(p, d->child), *par = alive(p, d->parent);
        if (!c || !par)
            continue;
        c->names++;
        if (S_ISDIR(c->mode))
            par->subdirs++;
    }
}

/* ---- the pass ------------------------------------------------------------- */

static int check_tree(struct p5 *p)
{
    struct fsck *f = p->f;
    int rc;
    /* Root. */
    struct ino5 *root = ino_find(p, ST_ROOT_INO);
    if (!root || root->dead || !S_ISDIR(root->mode)) {
        if (fsck_problem(f, PR_ROOT_BAD)) {
            if (root && !root->dead && (rc = st_inode_del(p->t, ST_ROOT_INO)))
                return rc;
            struct st_inode in;
            memset(&in, 0, sizeof(in));
            clock_gettime(CLOCK_REALTIME, &in.mtime);
            in.atime = in.ctime = in.btime = in.mtime;
            in.ino = ST_ROOT_INO;
            in.mode = S_IFDIR | 0755;
            in.nlink = 2;
            in.parent = ST_ROOT_INO;
            lr_put_be64(in.fid + 8, 1);
            if ((rc = st_inode_put(p->t, &in)))
                return rc;
            if (!root && !(root = ino_add(p, ST_ROOT_INO)))
                return -ENOMEM;
            root->dead = root->deleted = 0;
            root->mode = in.mode;
            root->nlink = 2;
            memcpy(root->fid, in.fid, 16);
        } else {
            return 0; /* nothing below makes sense without a root */
        }
    }

    /* Entries: live parent directory, live child, right type. */
    for (size_t j = 0; j < p->nde; j++) {
        struct dent5 *d = &p->de[j];
        struct ino5 *par = alive(p, d->parent), *c = alive(p, d->child);
        if (!par || !S_ISDIR(par->mode)) {
            d->dead = 1;
            if (fsck_problem(f, PR_DIRENT_BAD_PARENT, d->name, (unsigned long long)d->parent) &&
                (rc = de_remove(p, d)))
                return rc;
        } else if (!c) {
            d->dead = 1;
            if (fsck_problem(f, PR_DIRENT_DANGLING, d->name, (unsigned long long)d->parent,
                             (unsigned long long)d->child) && (rc = de_remove(p, d)))
                return rc;
        } else if (d->type != mode_dtype(c->mode)) {
            unsigned want = mode_dtype(c->mode);
            if (fsck_problem(f, PR_DIRENT_TYPE, d->name, (unsigned long long)d->parent, (unsigned)d->type,
                             (unsigned long long)c->ino, want, want)) {
                uint8_t k[8 + ST_NAME_MAX], v[ST_DIRENT_LEN] = { 1, (uint8_t)want };
                lr_put_be64(k, d->parent);
                memcpy(k + 8, d->name, d->namelen);
                lr_put_le64(v + 8, d->child);
                if ((rc = st_raw_put(p->t, "dirent", k, 8 + d->namelen, v, sizeof(v))))
                    return rc;
            }
            d->type = (uint8_t)want;
        }
    }

    /* A directory has one name: keep the one in the directory its record
     * names as its parent (else the first), drop the others. The root has
     * none. */
    count_names(p);
    for (size_t j = 0; j < p->nde; j++) {
        struct dent5 *d = &p->de[j];
        struct ino5 *c = d->dead ? NULL : alive(p, d->child);
        if (!c || !S_ISDIR(c->mode) || (c->names < 2 && c->ino != ST_ROOT_INO) || c->ino == ST_ROOT_INO)
            continue;
        if (!c->keep || (d->parent == c->hint && p->de[c->keep - 1].parent != c->hint))
            c->keep = j + 1;
    }
    for (size_t j = 0; j < p->nde; j++) {
        struct dent5 *d = &p->de[j];
        struct ino5 *c = d->dead ? NULL : alive(p, d->child);
        if (!c || !S_ISDIR(c->mode) || (c->keep == j + 1) || (c->names < 2 && c->ino != ST_ROOT_INO))
            continue;
        d->dead = 1;
        if (fsck_problem(p->f, PR_DIR_EXTRA_NAME, (unsigned long long)c->ino, d->name,
                         (unsigned long long)d->parent) && (rc = de_remove(p, d)))
            return rc;
    }

    /* Reachability. */
    root->reached = 1;
    if ((rc = reach_from(p, ST_ROOT_INO)))
        return rc;
    count_names(p);
    /* Unreachable directories first (their contents come back with them),
     * then other inodes. */
    for (int pass = 0; pass < 2; pass++) {
        for (size_t i = 0; i < p->nin; i++) {
            struct ino5 *in = &p->in[i];
            if (in->dead || in->reached || S_ISDIR(in->mode) != (pass == 0))
                continue;
            uint64_t ino = in->ino;
            int children = de_first(p, ino) < p->nde && p->de[de_first(p, ino)].parent == ino;
            if (in->nlink == 0 && in->names == 0 && !children) {
                in->dead = 1;
                if (fsck_problem(f, PR_INODE_UNLINKED, (unsigned long long)ino)) {
                    if ((rc = st_inode_del(p->t, ino)))
                        return rc;
                    in = ino_find(p, ino);
                    in->deleted = 1;
                }
                continue;
            }
            int fix;
            if (pass == 0)
                fix = fsck_problem(f, PR_DIR_UNREACHABLE, (unsigned long long)ino);
            else
                fix = fsck_problem(f, PR_INODE_ORPHAN, (unsigned long long)ino, (unsigned)in->mode,
                                   (unsigned long long)in->size, (unsigned)in->nlink);
            /* Its names (in unreachable directories) go either way. */
            for (size_t j = 0; j < p->nde; j++) {
                struct dent5 *d = &p->de[j];
                if (!d->dead && d->child == ino) {
                    d->dead = 1;
                    if (fix && (rc = de_remove(p, d)))
                        return rc;
                }
            }
            in = ino_find(p, ino);
            if (!fix) {
                in->skipnlink = 1;
                in->reached = 1;
                if (pass == 0 && (rc = reach_from(p, ino)))
                    return rc;
                continue;
            }
            if ((rc = reconnect(p, in)))
                return rc;
            in = ino_find(p, ino);
            in->reached = 1;
            if (pass == 0 && (rc = reach_from(p, ino)))
                return rc;
            if (fsck_interrupted)
                return FSCK_CANCELLED;
        }
    }

    /* Link counts. */
    count_names(p);
    for (size_t i = 0; i < p->nin; i++) {
        struct ino5 *in = &p->in[i];
        if (in->dead || in->skipnlink)
            continue;
        uint32_t want = S_ISDIR(in->mode) ? 2 + in->subdirs : in->names;
        if (in->nlink != want) {
            if (fsck_problem(f, PR_INODE_NLINK, (unsigned long long)in->ino, in->nlink, want, want) &&
                (rc = set_nlink(p, in->ino, want)))
                return rc;
            in->nlink = want;
        }
    }
    return 0;
}

static int check_fids(struct p5 *p)
{
    struct fsck *f = p->f;
    int rc;
    fsck_keys_release(&p->rec);
    fsck_keys_release(&p->recv);
    if ((rc = st_raw_foreach(p->t, "fid", walk_rec, p)))
        return rc ? rc : p->err;
    for (size_t r = 0; r < p->rec.n; r++) {
        const uint8_t *k = p->rec.k[r], *v = p->recv.k[r];
        if (p->rec.len[r] != 16 || p->recv.len[r] != 8) {
            if (fsck_problem(f, PR_FID_BAD, fsck_bytes_hex(k, p->rec.len[r])) &&
                (rc = st_raw_del(p->t, "fid", k, p->rec.len[r])))
                return rc;
            continue;
        }
        uint64_t ino = lr_get_be64(v);
        struct ino5 *in = ino_find(p, ino);
        if (in && !in->dead && !memcmp(in->fid, k, 16)) {
            in->fid_seen = 1;
            continue;
        }
        if (in && in->dead) {
            /* Covered by the inode's own problem. */
            if (in->deleted && f->mode != FSCK_NO && (rc = st_raw_del(p->t, "fid", k, 16)) && rc != -ENOENT)
                return rc;
            continue;
        }
        if (fsck_problem(f, PR_FID_STALE, fsck_bytes_hex(k, 16), (unsigned long long)ino) &&
            (rc = st_raw_del(p->t, "fid", k, 16)))
            return rc;
    }
    static const uint8_t zero[16];
    for (size_t i = 0; i < p->nin; i++) {
        struct ino5 *in = &p->in[i];
        if (in->dead || in->fid_seen || !memcmp(in->fid, zero, 16))
            continue;
        const void *v;
        size_t vl;
        rc = st_raw_get(p->t, "fid", in->fid, 16, &v, &vl);
        if (rc && rc != -ENOENT)
            return rc;
        struct ino5 *other = rc == 0 && vl == 8 ? alive(p, lr_get_be64(v)) : NULL;
        if (other && other != in && !memcmp(other->fid, in->fid, 16)) {
            unsigned long long ino = in->ino;
            if (fsck_problem(f, PR_FID_DUPLICATE, ino, fsck_bytes_hex(in->fid, 16),
                             (unsigned long long)other->ino, ino)) {
                struct st_inode sin;
                struct st_meta m;
                uint64_t ctr;
                st_meta(f->st, &m);
                if ((rc = st_inode_get(p->t, in->ino, &sin)) || (rc = st_meta_next(p->t, "next_fid", &ctr)))
                    return rc;
                memcpy(sin.fid, m.device, 8);
                lr_put_be64(sin.fid + 8, ctr);
                if ((rc = st_inode_put(p->t, &sin)))
                    return rc;
                memcpy(in->fid, sin.fid, 16);
            }
            continue;
        }
        if (fsck_problem(f, PR_FID_MISSING, fsck_bytes_hex(in->fid, 16), (unsigned long long)in->ino)) {
            uint8_t k[8];
            lr_put_be64(k, in->ino);
            if ((rc = st_raw_put(p->t, "fid", in->fid, 16, k, 8)))
                return rc;
        }
    }
    return 0;
}

static int check_backrefs(struct p5 *p)
{
    struct fsck *f = p->f;
    int rc;
    fsck_keys_release(&p->rec);
    fsck_keys_release(&p->recv);
    if ((rc = st_raw_foreach(p->t, "backref", walk_rec, p)))
        return rc;
    for (size_t r = 0; r < p->rec.n; r++) {
        const uint8_t *k = p->rec.k[r];
        size_t kl = p->rec.len[r];
        if (kl < 17 || kl > 16 + ST_NAME_MAX || p->recv.len[r] != 0) {
            if (fsck_problem(f, PR_BACKREF_BAD, fsck_bytes_hex(k, kl)) &&
                (rc = st_raw_del(p->t, "backref", k, kl)))
                return rc;
            continue;
        }
        uint64_t child = lr_get_be64(k), parent = lr_get_be64(k + 8);
        struct dent5 *d = de_find(p, parent, (const char *)k + 16, kl - 16);
        if (d && d->child == child) {
            if (d->dead) /* covered by the entry's problem; removed with it */
                continue;
            d->backref_seen = 1;
            continue;
        }
        char name[ST_NAME_MAX + 1];
        memcpy(name, k + 16, kl - 16);
        name[kl - 16] = 0;
        if (fsck_problem(f, PR_BACKREF_STALE, (unsigned long long)child, name, (unsigned long long)parent) &&
            (rc = st_raw_del(p->t, "backref", k, kl)))
            return rc;
    }
    for (size_t j = 0; j < p->nde; j++) {
        struct dent5 *d = &p->de[j];
        if (d->dead || d->backref_seen)
            continue;
        if (fsck_problem(f, PR_BACKREF_MISSING, d->name, (unsigned long long)d->parent,
                         (unsigned long long)d->child)) {
            uint8_t k[16 + ST_NAME_MAX];
            lr_put_be64(k, d->child);
            lr_put_be64(k + 8, d->parent);
            memcpy(k + 16, d->name, d->namelen);
            if ((rc = st_raw_put(p->t, "backref", k, 16 + d->namelen, "", 0)))
                return rc;
        }
    }
    return 0;
}

static int check_xattrs(struct p5 *p)
{
    int rc;
    fsck_keys_release(&p->rec);
    fsck_keys_release(&p->recv);
    if ((rc = st_raw_foreach(p->t, "xattr", walk_rec, p)))
        return rc;
    for (size_t r = 0; r < p->rec.n; r++) {
        const uint8_t *k = p->rec.k[r];
        size_t kl = p->rec.len[r];
        struct ino5 *in = kl >= 9 ? ino_find(p, lr_get_be64(k)) : NULL;
        if (in && !in->dead)
            continue;
        if (in && in->dead) /* deleted with its inode */
            continue;
        if (fsck_problem(p->f, PR_XATTR_ORPHAN, fsck_bytes_hex(k, kl)) &&
            (rc = st_raw_del(p->t, "xattr", k, kl)))
            return rc;
    }
    return 0;
}

int fsck_pass5_inodes(struct fsck *f)
{
    uint64_t t0;
    fsck_pass_begin(f, 5, "inodes, names and link counts", &t0);
    struct p5 p;
    memset(&p, 0, sizeof(p));
    p.f = f;
    int rc = fsck_txn_begin(f, &p.t);
    if (rc)
        return rc;
    if ((rc = st_raw_foreach(p.t, "inode", walk_ino, &p)) || (rc = p.err))
        goto out;
    for (size_t i = 0; i < p.badino.n; i++)
        if ((rc = st_raw_del(p.t, "inode", p.badino.k[i], p.badino.len[i])))
            goto out;
    for (size_t i = 0; i < p.nin; i++)
        if (p.in[i].deleted && (rc = st_inode_del(p.t, p.in[i].ino)))
            goto out;
    if ((rc = st_raw_foreach(p.t, "dirent", walk_de, &p)) || (rc = p.err))
        goto out;
    for (size_t i = 0; i < p.badde.n; i++)
        if ((rc = st_raw_del(p.t, "dirent", p.badde.k[i], p.badde.len[i])))
            goto out;
    if ((rc = check_tree(&p)) || (rc = check_fids(&p)) || (rc = p.err) ||
        (rc = check_backrefs(&p)) || (rc = p.err) || (rc = check_xattrs(&p)) || (rc = p.err))
        goto out;
    if (fsck_interrupted)
        rc = FSCK_CANCELLED;
out:
    fsck_keys_release(&p.badino);
    fsck_keys_release(&p.badde);
    fsck_keys_release(&p.rec);
    fsck_keys_release(&p.recv);
    uint64_t ni = 0, nd = 0;
    for (size_t i = 0; i < p.nin; i++)
        ni += !p.in[i].dead;
    for (size_t j = 0; j < p.nde; j++)
        nd += !p.de[j].dead;
    free(p.in);
    free(p.de);
    if (rc) {
        st_txn_abort(p.t);
        return rc;
    }
    if ((rc = fsck_txn_end(f, p.t)))
        return rc;
    f->n_inodes = ni;
    f->n_dirents = nd;
    fsck_pass_end(f, 5, t0, "%llu inodes, %llu names", (unsigned long long)ni, (unsigned long long)nd);
    return 0;
}
