/* ns.c - POSIX namespace operations and their change-log records. See ns.h. */
#include "ns.h"

#include <dirent.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* ---- record codec ------------------------------------------------------ */

static void put_ts(uint8_t *p, const struct timespec *ts)
{
    lr_put_le64(p, (uint64_t)(int64_t)ts->tv_sec);
    lr_put_le32(p + 8, (uint32_t)ts->tv_nsec);
}

static void get_ts(const uint8_t *p, struct timespec *ts)
{
    ts->tv_sec = (time_t)(int64_t)lr_get_le64(p);
    ts->tv_nsec = (long)lr_get_le32(p + 8);
}

size_t st_ns_rec_encode(const struct st_ns_rec *r, uint8_t *buf, size_t cap)
{
    size_t len = ST_NS_REC_HDR + (size_t)r->n1 + r->n2 + r->n3;
    if (cap < len)
        return 0;
    memset(buf, 0, ST_NS_REC_HDR);
    buf[0] = ST_NS_REC_VERSION;
    buf[1] = r->op;
    lr_put_le16(buf + 2, r->flags);
    lr_put_le16(buf + 4, r->n1);
    lr_put_le16(buf + 6, r->n2);
    lr_put_le32(buf + 8, r->n3);
    lr_put_le32(buf + 12, r->valid);
    memcpy(buf + 16, r->fid, 16);
    memcpy(buf + 32, r->pfid, 16);
    memcpy(buf + 48, r->fid2, 16);
    memcpy(buf + 64, r->pfid2, 16);
    lr_put_le32(buf + 80, r->mode);
    lr_put_le32(buf + 84, r->uid);
    lr_put_le32(buf + 88, r->gid);
    lr_put_le32(buf + 92, r->nlink);
    lr_put_le64(buf + 96, r->size);
    lr_put_le64(buf + 104, r->rdev);
    put_ts(buf + 112, &r->mtime);
    put_ts(buf + 124, &r->ctime);
    lr_put_le64(buf + 136, r->vv);
    uint8_t *p = buf + ST_NS_REC_HDR;
    if (r->n1)
        memcpy(p, r->name1, r->n1);
    p += r->n1;
    if (r->n2)
        memcpy(p, r->name2, r->n2);
    p += r->n2;
    if (r->n3)
        memcpy(p, r->data, r->n3);
    return len;
}

int st_ns_rec_decode(const void *vbuf, size_t len, struct st_ns_rec *out)
{
    const uint8_t *buf = vbuf;
    if (len < ST_NS_REC_HDR || buf[0] != ST_NS_REC_VERSION)
        return LR_ECORRUPT;
    memset(out, 0, sizeof(*out));
    out->op = buf[1];
    if (out->op < ST_NS_OP_CREATE || out->op >= ST_NS_OP_LAST)
        return LR_ECORRUPT;
    out->flags = lr_get_le16(buf + 2);
    out->n1 = lr_get_le16(buf + 4);
    out->n2 = lr_get_le16(buf + 6);
    out->n3 = lr_get_le32(buf + 8);
    if (out->n1 > ST_NAME_MAX || out->n2 > ST_NAME_MAX)
        return LR_ECORRUPT;
    if ((uint64_t)ST_NS_REC_HDR + out->n1 + out->n2 + out->n3 != len)
        return LR_ECORRUPT;
    out->valid = lr_get_le32(buf + 12);
    memcpy(out->fid, buf + 16, 16);
    memcpy(out->pfid, buf + 32, 16);
    memcpy(out->fid2, buf + 48, 16);
    memcpy(out->pfid2, buf + 64, 16);
    out->mode = lr_get_le32(buf + 80);
    out->uid = lr_get_le32(buf + 84);
    out->gid = lr_get_le32(buf + 88);
    out->nlink = lr_get_le32(buf + 92);
    out->size = lr_get_le64(buf + 96);
    out->rdev = lr_get_le64(buf + 104);
    get_ts(buf + 112, &out->mtime);
    get_ts(buf + 124, &out->ctime);
    if (out->mtime.tv_nsec >= 1000000000L || out->ctime.tv_nsec >= 1000000000L)
        return LR_ECORRUPT;
    out->vv = lr_get_le64(buf + 136);
    const uint8_t *p = buf + ST_NS_REC_HDR;
    out->name1 = (const char *)p;
    out->name2 = (const char *)p + out->n1;
    out->data = p + out->n1 + out->n2;
    return 0;
}

/* ---- helpers ----------------------------------------------------------- */

static struct timespec now_ts(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return ts;
}

/* Bump this device's version-vector entry of *in (and make it the
 * writer); returns the new counter. */
static uint64_t vv_bump(st_txn *txn, struct st_inode *in)
{
    struct st_meta m;
    st_meta(st_txn_store(txn), &m);
    st_vv_bump(in, m.device);
    for (uint16_t i = 0; i < in->nvv; i++)
        if (memcmp(in->vv[i].dev, m.device, 8) == 0)
            return in->vv[i].ctr;
    return 0;
}

/* Modify-and-write helper: bump version, store. */
static int inode_save(st_txn *txn, struct st_inode *in, uint64_t *vv)
{
    uint64_t v = vv_bump(txn, in);
    if (vv)
        *vv = v;
    return st_inode_put(txn, in);
}

static void rec_attrs(struct st_ns_rec *r, const struct st_inode *in, uint64_t vv)
{
    memcpy(r->fid, in->fid, 16);
    r->mode = in->mode;
    r->uid = in->uid;
    r->gid = in->gid;
    r->nlink = in->nlink;
    r->size = in->size;
    r->rdev = in->rdev;
    r->mtime = in->mtime;
    r->ctime = in->ctime;
    r->vv = vv;
}

static int log_rec(st_txn *txn, const struct st_ns_rec *r)
{
    size_t len = ST_NS_REC_HDR + (size_t)r->n1 + r->n2 + r->n3;
    uint8_t stackbuf[ST_NS_REC_HDR + 2 * ST_NAME_MAX + 64];
    uint8_t *buf = len <= sizeof(stackbuf) ? stackbuf : malloc(len);
    if (!buf)
        return -ENOMEM;
    st_ns_rec_encode(r, buf, len);
    int rc = st_log_append(txn, buf, len, NULL);
    if (buf != stackbuf)
        free(buf);
    return rc;
}

static int get_dir(st_txn *txn, uint64_t ino, struct st_inode *out)
{
    int rc = st_inode_get(txn, ino, out);
    if (rc)
        return rc;
    if (!S_ISDIR(out->mode))
        return -ENOTDIR;
    if (out->nlink == 0)
        return -ENOENT; /* removed directory: nothing may be created in it */
    return 0;
}

/* *in gets the inode that name in directory parent names: -ENOENT if there
 * is no such name, -LR_ECORRUPT if the entry names no inode. */
static int child_get(st_txn *txn, uint64_t parent, const char *name, size_t len,
                     struct st_inode *in)
{
    struct st_dirent de;
    int rc = st_dirent_get(txn, parent, name, len, &de);
    if (rc)
        return rc;
    if ((rc = st_inode_get(txn, de.child, in)))
        return rc == -ENOENT ? LR_ECORRUPT : rc;
    return 0;
}

/* Where unlink and rmdir start: check the name, load directory parent into
 * *dir (get_dir) and the inode it names into *in (child_get). */
static int dir_child_get(st_txn *txn, uint64_t parent, const char *name, size_t len,
                         struct st_inode *dir, struct st_inode *in)
{
    int rc = st_name_check(name, len);
    if (rc || (rc = get_dir(txn, parent, dir)))
        return rc;
    return child_get(txn, parent, name, len, in);
}

/* 0 if directory parent has no entry name, -EEXIST if it has one. */
static int name_free(st_txn *txn, uint64_t parent, const char *name, size_t len)
{
    struct st_dirent de;
    int rc = st_dirent_get(txn, parent, name, len, &de);
    if (rc == 0)
        return -EEXIST;
    return rc == -ENOENT ? 0 : rc;
}

/* Save *in (bumping its version) and start its log record of op in *r. */
static int save_rec(st_txn *txn, uint8_t op, struct st_inode *in, struct st_ns_rec *r)
{
    uint64_t vv;
    int rc = inode_save(txn, in, &vv);
    if (rc)
        return rc;
    memset(r, 0, sizeof(*r));
    r->op = op;
    rec_attrs(r, in, vv);
    return 0;
}

/* A directory whose entries changed: mtime and ctime now, saved without
 * bumping its version. Its version vector counts changes of the directory
 * itself (name, mode, owner, xattrs, times set on purpose), not of what
 * is inside: an entry is replicated as part of the child's record. So a
 * file created in a directory on one device does not make that directory
 * concurrent with a rename of it on another, and the rename survives
 * (ARCHITECTURE.md, "Directories"). */
static int dir_touch(st_txn *txn, struct st_inode *dir, struct timespec now)
{
    dir->mtime = dir->ctime = now;
    return st_inode_put(txn, dir);
}

/* Save *in with ctime now (bumping its version), then its directory *dir
 * (dir_touch), and start the log record of op on name in *r:
 * *in's attributes after the change, dir's fid as the directory holding
 * the name (pfid2 for a link, whose name is a new one; pfid otherwise). */
static int save_name_op(st_txn *txn, uint8_t op, struct st_inode *in, struct st_inode *dir,
                        struct timespec now, const char *name, size_t len, struct st_ns_rec *r)
{
    in->ctime = now;
    int rc = save_rec(txn, op, in, r);
    if (rc)
        return rc;
    if ((rc = dir_touch(txn, dir, now)))
        return rc;
    memcpy(op == ST_NS_OP_LINK ? r->pfid2 : r->pfid, dir->fid, 16);
    r->name1 = name;
    r->n1 = (uint16_t)len;
    return 0;
}

/* Append *r to the log; on success *out (if non-NULL) gets *in. */
static int log_rec_out(st_txn *txn, const struct st_ns_rec *r, const struct st_inode *in,
                       struct st_inode *out)
{
    int rc = log_rec(txn, r);
    if (rc == 0 && out)
        *out = *in;
    return rc;
}

/* ---- create / link ------------------------------------------------------ */

int st_ns_create(st_txn *txn, uint64_t parent, const char *name, size_t len,
                 uint32_t mode, uint32_t uid, uint32_t gid, uint64_t rdev,
                 const char *target, size_t tlen, struct st_inode *out)
{
    struct timespec now = now_ts();
    struct st_inode dir, in;
    int rc = st_name_check(name, len);
    if (rc || (rc = get_dir(txn, parent, &dir)) || (rc = name_free(txn, parent, name, len)))
        return rc;
    if ((mode & S_IFMT) == 0)
        mode |= S_IFREG;
    int isdir = S_ISDIR(mode);
    if (isdir && dir.nlink >= ST_NS_LINK_MAX)
        return -EMLINK;
    if (S_ISLNK(mode) && (!target || tlen == 0 || tlen > 4095))
        return tlen > 4095 ? -ENAMETOOLONG : -EINVAL;

    memset(&in, 0, sizeof(in));
    if ((rc = st_inode_alloc(txn, &in)))
        return rc;
    in.mode = mode;
    in.uid = uid;
    in.gid = gid;
    if (dir.mode & S_ISGID) {
        in.gid = dir.gid;
        if (isdir)
            in.mode |= S_ISGID;
    }
    in.nlink = isdir ? 2 : 1;
    in.rdev = (S_ISCHR(mode) || S_ISBLK(mode)) ? rdev : 0;
    in.atime = in.mtime = in.ctime = in.btime = now;
    in.parent = parent;
    in.size = 0;
    if (S_ISLNK(mode)) {
        if ((rc = st_file_write(txn, in.ino, 0, target, tlen)))
            return rc;
        in.size = tlen;
    }
    if ((rc = st_dirent_put(txn, parent, name, len, in.ino, st_mode_dtype(in.mode))))
        return rc;
    if (isdir)
        dir.nlink++;
    struct st_ns_rec r;
    uint8_t op = isdir ? ST_NS_OP_MKDIR : S_ISLNK(mode) ? ST_NS_OP_SYMLINK : ST_NS_OP_CREATE;
    if ((rc = save_name_op(txn, op, &in, &dir, now, name, len, &r)))
        return rc;
    if (S_ISLNK(mode)) {
        r.data = target;
        r.n3 = (uint32_t)tlen;
    }
    return log_rec_out(txn, &r, &in, out);
}

int st_ns_link(st_txn *txn, uint64_t ino, uint64_t newparent, const char *name, size_t len,
               struct st_inode *out)
{
    struct timespec now = now_ts();
    struct st_inode dir, in;
    int rc = st_name_check(name, len);
    if (rc || (rc = st_inode_get(txn, ino, &in)))
        return rc;
    if (S_ISDIR(in.mode))
        return -EPERM;
    if (in.nlink >= ST_NS_LINK_MAX)
        return -EMLINK;
    if ((rc = get_dir(txn, newparent, &dir)) || (rc = name_free(txn, newparent, name, len)))
        return rc;
    if ((rc = st_dirent_put(txn, newparent, name, len, ino, st_mode_dtype(in.mode))))
        return rc;
    in.nlink++;
    struct st_ns_rec r;
    if ((rc = save_name_op(txn, ST_NS_OP_LINK, &in, &dir, now, name, len, &r)))
        return rc;
    return log_rec_out(txn, &r, &in, out);
}

/* ---- unlink / rmdir ----------------------------------------------------- */

/* Where unlink and rmdir end, with the link counts of *in and *dir already
 * lowered: remove the entry name from directory parent, save both inodes
 * (save_name_op) and log op. */
static int name_remove(st_txn *txn, uint8_t op, uint64_t parent, const char *name, size_t len,
                       struct st_inode *dir, struct st_inode *in, struct timespec now)
{
    struct st_ns_rec r;
    int rc = st_dirent_del(txn, parent, name, len);
    if (rc || (rc = save_name_op(txn, op, in, dir, now, name, len, &r)))
        return rc;
    return log_rec(txn, &r);
}

int st_ns_unlink(st_txn *txn, uint64_t parent, const char *name, size_t len,
                 uint64_t *ino, int *orphan)
{
    struct timespec now = now_ts();
    struct st_inode dir, in;
    int rc = dir_child_get(txn, parent, name, len, &dir, &in);
    if (rc)
        return rc;
    if (S_ISDIR(in.mode))
        return -EISDIR;
    if (in.nlink > 0)
        in.nlink--;
    if ((rc = name_remove(txn, ST_NS_OP_UNLINK, parent, name, len, &dir, &in, now)))
        return rc;
    if (ino)
        *ino = in.ino;
    if (orphan)
        *orphan = in.nlink == 0;
    return 0;
}

int st_ns_rmdir(st_txn *txn, uint64_t parent, const char *name, size_t len, uint64_t *ino)
{
    struct timespec now = now_ts();
    struct st_inode dir, in;
    int rc = dir_child_get(txn, parent, name, len, &dir, &in);
    if (rc)
        return rc;
    if (!S_ISDIR(in.mode))
        return -ENOTDIR;
    rc = st_dirent_empty(txn, in.ino);
    if (rc < 0)
        return rc;
    if (rc == 0)
        return -ENOTEMPTY;
    in.nlink = 0;
    if (dir.nlink > 2)
        dir.nlink--;
    if ((rc = name_remove(txn, ST_NS_OP_RMDIR, parent, name, len, &dir, &in, now)))
        return rc;
    if (ino)
        *ino = in.ino;
    return 0;
}

/* ---- rename ------------------------------------------------------------- */

/* -EINVAL if directory `moving` is `dest` or one of dest's ancestors. */
static int loop_check(st_txn *txn, uint64_t moving, uint64_t dest)
{
    uint64_t cur = dest;
    for (unsigned depth = 0; depth < 100000; depth++) {
        if (cur == moving)
            return -EINVAL;
        if (cur == ST_ROOT_INO)
            return 0;
        struct st_inode in;
        int rc = st_inode_get(txn, cur, &in);
        if (rc)
            return rc == -ENOENT ? LR_ECORRUPT : rc;
        if (in.parent == 0 || in.parent == cur)
            return LR_ECORRUPT;
        cur = in.parent;
    }
    return LR_ECORRUPT; /* a cycle in the parent chain */
}

/* Load both parents; when they are the same inode, *np aliases *op so
 * that one update covers both. */
int st_ns_rename(st_txn *txn, uint64_t parent, const char *name, size_t len,
                 uint64_t newparent, const char *newname, size_t newlen,
                 unsigned flags, uint64_t *orphan)
{
    struct timespec now = now_ts();
    struct st_inode odir, ndir_store, *ndir, src, dst;
    int rc, have_dst;
    if (orphan)
        *orphan = 0;
    if ((flags & ~(unsigned)(ST_NS_NOREPLACE | ST_NS_EXCHANGE)) ||
        (flags & ST_NS_NOREPLACE && flags & ST_NS_EXCHANGE))
        return -EINVAL;
    if ((rc = st_name_check(name, len)) || (rc = st_name_check(newname, newlen)))
        return rc;
    if ((rc = get_dir(txn, parent, &odir)))
        return rc;
    if (newparent == parent) {
        ndir = &odir;
    } else {
        if ((rc = get_dir(txn, newparent, &ndir_store)))
            return rc;
        ndir = &ndir_store;
    }
    if ((rc = child_get(txn, parent, name, len, &src)))
        return rc;
    rc = child_get(txn, newparent, newname, newlen, &dst);
    if (rc && rc != -ENOENT)
        return rc;
    have_dst = rc == 0;
    if ((flags & ST_NS_EXCHANGE) && !have_dst)
        return -ENOENT;
    if ((flags & ST_NS_NOREPLACE) && have_dst)
        return -EEXIST;
    if (have_dst && dst.ino == src.ino)
        return 0; /* same inode: POSIX says do nothing */
    int sdir = S_ISDIR(src.mode), ddir = have_dst && S_ISDIR(dst.mode);

    if (flags & ST_NS_EXCHANGE) {
        if (sdir && newparent != parent && (rc = loop_check(txn, src.ino, newparent)))
            return rc;
        if (ddir && newparent != parent && (rc = loop_check(txn, dst.ino, parent)))
            return rc;
    } else {
        if (sdir && newparent != parent && (rc = loop_check(txn, src.ino, newparent)))
            return rc;
        if (have_dst) {
            if (sdir && !ddir)
                return -ENOTDIR;
            if (!sdir && ddir)
                return -EISDIR;
            if (ddir) {
                rc = st_dirent_empty(txn, dst.ino);
                if (rc < 0)
                    return rc;
                if (rc == 0)
                    return -ENOTEMPTY;
            }
        }
        if (sdir && newparent != parent && !have_dst && ndir->nlink >= ST_NS_LINK_MAX)
            return -EMLINK;
    }

    /* Directory entries. */
    if (flags & ST_NS_EXCHANGE) {
        if ((rc = st_dirent_put(txn, parent, name, len, dst.ino, st_mode_dtype(dst.mode))) ||
            (rc = st_dirent_put(txn, newparent, newname, newlen, src.ino, st_mode_dtype(src.mode))))
            return rc;
    } else {
        if ((rc = st_dirent_del(txn, parent, name, len)) ||
            (rc = st_dirent_put(txn, newparent, newname, newlen, src.ino, st_mode_dtype(src.mode))))
            return rc;
    }

    /* Link counts and parent pointers. */
    src.ctime = now;
    if (sdir && newparent != parent) {
        src.parent = newparent;
        odir.nlink--;
        ndir->nlink++;
    }
    if (have_dst) {
        dst.ctime = now;
        if (flags & ST_NS_EXCHANGE) {
            if (ddir && newparent != parent) {
                dst.parent = parent;
                ndir->nlink--;
                odir.nlink++;
            }
        } else if (ddir) {
            dst.nlink = 0;
            ndir->nlink--; /* the replaced directory's ".." */
        } else if (dst.nlink > 0) {
            dst.nlink--;
        }
        if ((rc = inode_save(txn, &dst, NULL)))
            return rc;
        if (dst.nlink == 0 && orphan)
            *orphan = dst.ino;
    }
    struct st_ns_rec r;
    if ((rc = save_rec(txn, ST_NS_OP_RENAME, &src, &r)))
        return rc;
    if ((rc = dir_touch(txn, &odir, now)))
        return rc;
    if (ndir != &odir && (rc = dir_touch(txn, ndir, now)))
        return rc;

    r.flags = (uint16_t)flags;
    memcpy(r.pfid, odir.fid, 16);
    memcpy(r.pfid2, ndir->fid, 16);
    if (have_dst)
        memcpy(r.fid2, dst.fid, 16);
    r.name1 = name;
    r.n1 = (uint16_t)len;
    r.name2 = newname;
    r.n2 = (uint16_t)newlen;
    return log_rec(txn, &r);
}

/* ---- setattr / write / punch --------------------------------------------- */

int st_ns_setattr(st_txn *txn, uint64_t ino, unsigned valid, const struct st_ns_attr *a,
                  struct st_inode *out)
{
    struct timespec now = now_ts();
    struct st_inode in;
    int rc = st_inode_get(txn, ino, &in);
    if (rc)
        return rc;
    if (valid & ST_NS_SET_MODE)
        in.mode = (in.mode & S_IFMT) | (a->mode & 07777);
    if (valid & ST_NS_SET_UID)
        in.uid = a->uid;
    if (valid & ST_NS_SET_GID)
        in.gid = a->gid;
    if (valid & ST_NS_SET_SIZE) {
        if (S_ISDIR(in.mode))
            return -EISDIR;
        if (!S_ISREG(in.mode))
            return -EINVAL;
        if (a->size < in.size &&
            ((rc = st_version_save(txn, &in)) || (rc = st_file_truncate(txn, ino, a->size))))
            return rc;
        if (a->size != in.size)
            in.mtime = now;
        in.size = a->size;
    }
    if (valid & ST_NS_SET_ATIME_NOW)
        in.atime = now;
    else if (valid & ST_NS_SET_ATIME)
        in.atime = a->atime;
    if (valid & ST_NS_SET_MTIME_NOW)
        in.mtime = now;
    else if (valid & ST_NS_SET_MTIME)
        in.mtime = a->mtime;
    in.ctime = (valid & ST_NS_SET_CTIME) ? a->ctime : now;
    struct st_ns_rec r;
    if ((rc = save_rec(txn, ST_NS_OP_SETATTR, &in, &r)))
        return rc;
    r.valid = valid;
    return log_rec_out(txn, &r, &in, out);
}

/* Where write and punch end: save *in and log op on the byte range
 * [off, off+len); *out (if non-NULL) gets *in. */
static int save_range(st_txn *txn, uint8_t op, struct st_inode *in, uint64_t off, uint64_t len,
                      struct st_inode *out)
{
    struct st_ns_rec r;
    uint8_t range[16];
    int rc = save_rec(txn, op, in, &r);
    if (rc)
        return rc;
    lr_put_le64(range, off);
    lr_put_le64(range + 8, len);
    r.data = range;
    r.n3 = sizeof(range);
    return log_rec_out(txn, &r, in, out);
}

int st_ns_write(st_txn *txn, uint64_t ino, const struct st_wrange *w, size_t n,
                uint64_t new_size, const struct timespec *mtime, unsigned flags,
                struct st_wstat *ws, struct st_inode *out)
{
    struct timespec now = now_ts();
    struct st_inode in;
    int rc = st_inode_get(txn, ino, &in);
    if (rc)
        return rc;
    if (S_ISDIR(in.mode))
        return -EISDIR;
    if ((rc = st_version_save(txn, &in)))
        return rc;
    uint64_t lo = UINT64_MAX, hi = 0;
    if ((rc = st_file_writev(txn, ino, w, n, flags, ws)))
        return rc;
    for (size_t i = 0; i < n; i++) {
        if (w[i].len == 0)
            continue;
        lo = LR_MIN(lo, w[i].off);
        hi = LR_MAX(hi, w[i].off + w[i].len);
        new_size = LR_MAX(new_size, w[i].off + w[i].len);
    }
    if (lo == UINT64_MAX)
        lo = 0;
    in.size = LR_MAX(in.size, new_size);
    in.mtime = mtime ? *mtime : now;
    in.ctime = in.mtime;
    return save_range(txn, ST_NS_OP_WRITE, &in, lo, hi - lo, out);
}

int st_ns_rechunk(st_txn *txn, uint64_t ino, uint64_t off, uint64_t len, uint64_t budget,
                  uint64_t *next, uint64_t *rewritten)
{
    *rewritten = 0;
    *next = off + len < off ? UINT64_MAX : off + len;
    struct st_inode in;
    int rc = st_inode_get(txn, ino, &in);
    if (rc)
        return rc;
    struct st_meta m;
    st_meta(st_txn_store(txn), &m);
    if (!S_ISREG(in.mode) || in.nlink == 0 || memcmp(in.writer, m.device, sizeof(in.writer)) != 0)
        return 0;
    if ((rc = st_file_rechunk(txn, ino, off, len, budget, next, rewritten)) || *rewritten == 0)
        return rc;
    /* The same bytes, cut anew: size and times stay, the version moves
     * on so that peers learn the new extents. */
    return save_range(txn, ST_NS_OP_WRITE, &in, off, *next - off, NULL);
}

int st_ns_punch(st_txn *txn, uint64_t ino, uint64_t off, uint64_t len, struct st_inode *out)
{
    struct timespec now = now_ts();
    struct st_inode in;
    int rc = st_inode_get(txn, ino, &in);
    if (rc)
        return rc;
    if (!S_ISREG(in.mode))
        return S_ISDIR(in.mode) ? -EISDIR : -EINVAL;
    if (off < in.size && len > 0) {
        uint64_t end = off + len < off ? UINT64_MAX : off + len;
        end = LR_MIN(end, in.size);
        if ((rc = st_version_save(txn, &in)) || (rc = st_file_punch(txn, ino, off, end - off)))
            return rc;
    }
    in.mtime = in.ctime = now;
    return save_range(txn, ST_NS_OP_PUNCH, &in, off, len, out);
}

/* ---- xattrs --------------------------------------------------------------- */

static int xattr_name_check(const char *name)
{
    size_t n = strlen(name);
    if (n == 0)
        return -EINVAL;
    if (n > ST_NAME_MAX)
        return -ERANGE;
    return 0;
}

static int xattr_log(st_txn *txn, uint64_t ino, int op, const char *name, const void *val,
                     size_t len, int flags)
{
    struct st_inode in;
    int rc = st_inode_get(txn, ino, &in);
    if (rc)
        return rc;
    in.ctime = now_ts();
    struct st_ns_rec r;
    if ((rc = save_rec(txn, (uint8_t)op, &in, &r)))
        return rc;
    r.flags = (uint16_t)flags;
    r.name1 = name;
    r.n1 = (uint16_t)strlen(name);
    r.data = val;
    r.n3 = (uint32_t)len;
    return log_rec(txn, &r);
}

int st_ns_setxattr(st_txn *txn, uint64_t ino, const char *name, const void *val, size_t len,
                   int flags)
{
    int rc = xattr_name_check(name);
    if (rc)
        return rc;
    if (len > ST_NS_XATTR_MAX)
        return -E2BIG;
    if (flags & ~(ST_NS_XATTR_CREATE | ST_NS_XATTR_REPLACE))
        return -EINVAL;
    const void *old;
    size_t oldlen;
    rc = st_xattr_get(txn, ino, name, &old, &oldlen);
    if (rc && rc != -ENODATA)
        return rc;
    if (rc == 0 && (flags & ST_NS_XATTR_CREATE))
        return -EEXIST;
    if (rc == -ENODATA && (flags & ST_NS_XATTR_REPLACE))
        return -ENODATA;
    if ((rc = st_xattr_put(txn, ino, name, val, len)))
        return rc;
    return xattr_log(txn, ino, ST_NS_OP_SETXATTR, name, val, len, flags);
}

int st_ns_removexattr(st_txn *txn, uint64_t ino, const char *name)
{
    int rc = xattr_name_check(name);
    if (rc)
        return rc;
    if ((rc = st_xattr_del(txn, ino, name)))
        return rc == -ENOENT ? -ENODATA : rc;
    return xattr_log(txn, ino, ST_NS_OP_RMXATTR, name, NULL, 0, 0);
}

/* ---- orphans --------------------------------------------------------------- */

int st_ns_reap(st_txn *txn, uint64_t ino)
{
    struct st_inode in;
    int rc = st_inode_get(txn, ino, &in);
    if (rc == -ENOENT)
        return 0;
    if (rc)
        return rc;
    if (in.nlink != 0 || ino == ST_ROOT_INO)
        return 0;
    if ((rc = st_inode_del(txn, ino)))
        return rc;
    return 1;
}

struct orphan_list { uint64_t *v; size_t n, cap; int err; };

static int collect_orphan(const struct st_inode *in, void *arg)
{
    struct orphan_list *l = arg;
    if (in->nlink != 0 || in->ino == ST_ROOT_INO)
        return 0;
    uint64_t *v = lr_grow(l->v, &l->cap, l->n, sizeof(*v), 64);
    if (!v) {
        l->err = -ENOMEM;
        return 1;
    }
    l->v = v;
    l->v[l->n++] = in->ino;
    return 0;
}

int st_ns_orphans(st_txn *txn, uint64_t **inos, size_t *n)
{
    struct orphan_list l = { 0 };
    int rc = st_inode_foreach(txn, collect_orphan, &l);
    if (l.err)
        rc = l.err;
    if (rc < 0) {
        free(l.v);
        l.v = NULL;
        l.n = 0;
    }
    *inos = l.v;
    *n = l.n;
    return rc < 0 ? rc : 0;
}

int st_ns_reap_orphans(st_txn *txn, uint64_t *count)
{
    uint64_t *v;
    size_t n;
    int rc = st_ns_orphans(txn, &v, &n);
    for (size_t i = 0; rc >= 0 && i < n; i++)
        rc = st_inode_del(txn, v[i]);
    if (rc > 0)
        rc = 0;
    if (count)
        *count = rc == 0 ? n : 0;
    free(v);
    return rc;
}
