/*
 * landro-passthrough - a minimal libfuse3 low-level passthrough file
 * system, the baseline for tools/bench-fs.sh: every operation is the
 * corresponding system call on a directory of the underlying file system.
 * Same settings as landro (keep_cache, default_permissions,
 * multi-threaded loop, no writeback cache), so the difference measured is
 * landro's store, not FUSE itself; but 1 s entry/attr timeouts where
 * landro keeps 60 s, because the source directory can change behind this
 * file system's back and nothing would tell the kernel.
 *
 *   landro-passthrough SOURCE MOUNTPOINT   (runs in the foreground)
 *
 * Inodes: one node per (st_dev, st_ino) holding an O_PATH fd, with the
 * kernel's lookup count; freed at forget. Regular files and directories
 * only need what the benchmark and ordinary tools use.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <fuse_lowlevel.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/xattr.h>
#include <unistd.h>

struct pnode {
    struct pnode *next;
    int fd;            /* O_PATH */
    dev_t dev;
    ino_t ino;
    uint64_t nlookup;
};

static struct pnode root = { .fd = -1 };
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
#define NBUCKET 65536
static struct pnode *tab[NBUCKET];

static struct pnode *node_of(fuse_ino_t ino)
{
    return ino == FUSE_ROOT_ID ? &root : (struct pnode *)(uintptr_t)ino;
}

static size_t bucket(dev_t dev, ino_t ino) { return (size_t)((ino * 0x9E3779B97F4A7C15ull) ^ dev) % NBUCKET; }

static void reply_errno(fuse_req_t req, int e) { fuse_reply_err(req, e); }

static int do_lookup(fuse_ino_t parent, const char *name, struct fuse_entry_param *e)
{
    memset(e, 0, sizeof(*e));
    e->attr_timeout = 1.0;
    e->entry_timeout = 1.0;
    int fd = openat(node_of(parent)->fd, name, O_PATH | O_NOFOLLOW);
    if (fd < 0)
        return errno;
    if (fstatat(fd, "", &e->attr, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) != 0) {
        int err = errno;
        close(fd);
        return err;
    }
    pthread_mutex_lock(&lock);
    size_t b = bucket(e->attr.st_dev, e->attr.st_ino);
    struct pnode *n;
    for (n = tab[b]; n; n = n->next)
        if (n->dev == e->attr.st_dev && n->ino == e->attr.st_ino)
            break;
    if (n) {
        close(fd);
    } else {
        n = calloc(1, sizeof(*n));
        if (!n) {
            pthread_mutex_unlock(&lock);
            close(fd);
            return ENOMEM;
        }
        n->fd = fd;
        n->dev = e->attr.st_dev;
        n->ino = e->attr.st_ino;
        n->next = tab[b];
        tab[b] = n;
    }
    n->nlookup++;
    pthread_mutex_unlock(&lock);
    e->ino = (uintptr_t)n;
    return 0;
}

static void forget_one(fuse_ino_t ino, uint64_t nlookup)
{
    if (ino == FUSE_ROOT_ID)
        return;
    struct pnode *n = node_of(ino);
    pthread_mutex_lock(&lock);
    n->nlookup -= nlookup < n->nlookup ? nlookup : n->nlookup;
    if (n->nlookup == 0) {
        struct pnode **pp = &tab[bucket(n->dev, n->ino)];
        while (*pp != n)
            pp = &(*pp)->next;
        *pp = n->next;
        close(n->fd);
        free(n);
    }
    pthread_mutex_unlock(&lock);
}

static void pt_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
{
    struct fuse_entry_param e;
    int err = do_lookup(parent, name, &e);
    if (err == ENOENT) {
        e.ino = 0;
        fuse_reply_entry(req, &e);
    } else if (err) {
        reply_errno(req, err);
    } else if (fuse_reply_entry(req, &e) != 0) {
        forget_one(e.ino, 1);
    }
}

static void pt_forget(fuse_req_t req, fuse_ino_t ino, uint64_t nlookup)
{
    forget_one(ino, nlookup);
    fuse_reply_none(req);
}

static void pt_forget_multi(fuse_req_t req, size_t count, struct fuse_forget_data *f)
{
    for (size_t i = 0; i < count; i++)
        forget_one(f[i].ino, f[i].nlookup);
    fuse_reply_none(req);
}

static void pt_getattr(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
    struct stat st;
    if (fstatat(node_of(ino)->fd, "", &st, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) != 0)
        return reply_errno(req, errno);
    fuse_reply_attr(req, &st, 1.0);
}

static void pt_setattr(fuse_req_t req, fuse_ino_t ino, struct stat *attr, int valid,
                       struct fuse_file_info *fi)
{
    char proc[64];
    snprintf(proc, sizeof(proc), "/proc/self/fd/%d", node_of(ino)->fd);
    int rc = 0;
    if (valid & FUSE_SET_ATTR_MODE)
        rc = chmod(proc, attr->st_mode & 07777);
    if (!rc && (valid & (FUSE_SET_ATTR_UID | FUSE_SET_ATTR_GID)))
        rc = fchownat(node_of(ino)->fd, "", (valid & FUSE_SET_ATTR_UID) ? attr->st_uid : (uid_t)-1,
                      (valid & FUSE_SET_ATTR_GID) ? attr->st_gid : (gid_t)-1, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW);
    if (!rc && (valid & FUSE_SET_ATTR_SIZE))
        rc = fi ? ftruncate((int)fi->fh, attr->st_size) : truncate(proc, attr->st_size);
    if (!rc && (valid & (FUSE_SET_ATTR_ATIME | FUSE_SET_ATTR_MTIME))) {
        struct timespec tv[2] = { { 0, UTIME_OMIT }, { 0, UTIME_OMIT } };
        if (valid & FUSE_SET_ATTR_ATIME_NOW) tv[0].tv_nsec = UTIME_NOW;
        else if (valid & FUSE_SET_ATTR_ATIME) tv[0] = attr->st_atim;
        if (valid & FUSE_SET_ATTR_MTIME_NOW) tv[1].tv_nsec = UTIME_NOW;
        else if (valid & FUSE_SET_ATTR_MTIME) tv[1] = attr->st_mtim;
        rc = utimensat(AT_FDCWD, proc, tv, 0);
    }
    if (rc)
        return reply_errno(req, errno);
    pt_getattr(req, ino, fi);
}

static void pt_mkdir(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode)
{
    if (mkdirat(node_of(parent)->fd, name, mode) != 0)
        return reply_errno(req, errno);
    struct fuse_entry_param e;
    int err = do_lookup(parent, name, &e);
    if (err)
        return reply_errno(req, err);
    if (fuse_reply_entry(req, &e) != 0)
        forget_one(e.ino, 1);
}

static void pt_unlink(fuse_req_t req, fuse_ino_t parent, const char *name)
{
    fuse_reply_err(req, unlinkat(node_of(parent)->fd, name, 0) ? errno : 0);
}

static void pt_rmdir(fuse_req_t req, fuse_ino_t parent, const char *name)
{
    fuse_reply_err(req, unlinkat(node_of(parent)->fd, name, AT_REMOVEDIR) ? errno : 0);
}

static void pt_rename(fuse_req_t req, fuse_ino_t parent, const char *name, fuse_ino_t newparent,
                      const char *newname, unsigned int flags)
{
    int rc = renameat2(node_of(parent)->fd, name, node_of(newparent)->fd, newname, flags);
    fuse_reply_err(req, rc ? errno : 0);
}

static int reopen(fuse_ino_t ino, int flags)
{
    char proc[64];
    snprintf(proc, sizeof(proc), "/proc/self/fd/%d", node_of(ino)->fd);
    return open(proc, flags & ~O_NOFOLLOW);
}

static void pt_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
    int fd = reopen(ino, fi->flags & ~(O_CREAT | O_EXCL));
    if (fd < 0)
        return reply_errno(req, errno);
    fi->fh = (uint64_t)fd;
    fi->keep_cache = 1;
    if (fuse_reply_open(req, fi) != 0)
        close(fd);
}

static void pt_create(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode,
                      struct fuse_file_info *fi)
{
    int fd = openat(node_of(parent)->fd, name, (fi->flags | O_CREAT) & ~O_NOFOLLOW, mode);
    if (fd < 0)
        return reply_errno(req, errno);
    struct fuse_entry_param e;
    int err = do_lookup(parent, name, &e);
    if (err) {
        close(fd);
        return reply_errno(req, err);
    }
    fi->fh = (uint64_t)fd;
    if (fuse_reply_create(req, &e, fi) != 0) {
        close(fd);
        forget_one(e.ino, 1);
    }
}

static void pt_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, struct fuse_file_info *fi)
{
    struct fuse_bufvec b = FUSE_BUFVEC_INIT(size);
    b.buf[0].flags = FUSE_BUF_IS_FD | FUSE_BUF_FD_SEEK;
    b.buf[0].fd = (int)fi->fh;
    b.buf[0].pos = off;
    fuse_reply_data(req, &b, FUSE_BUF_SPLICE_MOVE);
}

static void pt_write(fuse_req_t req, fuse_ino_t ino, const char *buf, size_t size, off_t off,
                     struct fuse_file_info *fi)
{
    ssize_t n = pwrite((int)fi->fh, buf, size, off);
    if (n < 0)
        return reply_errno(req, errno);
    fuse_reply_write(req, (size_t)n);
}

static void pt_flush(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
    int rc = close(dup((int)fi->fh));
    fuse_reply_err(req, rc ? errno : 0);
}

static void pt_release(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
    close((int)fi->fh);
    fuse_reply_err(req, 0);
}

static void pt_fsync(fuse_req_t req, fuse_ino_t ino, int datasync, struct fuse_file_info *fi)
{
    int rc = datasync ? fdatasync((int)fi->fh) : fsync((int)fi->fh);
    fuse_reply_err(req, rc ? errno : 0);
}

struct pdir { DIR *dp; off_t off; struct dirent *e; };

static void pt_opendir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
    struct pdir *d = calloc(1, sizeof(*d));
    int fd = openat(node_of(ino)->fd, ".", O_RDONLY | O_DIRECTORY);
    if (!d || fd < 0 || !(d->dp = fdopendir(fd))) {
        int e = errno ? errno : ENOMEM;
        if (fd >= 0) close(fd);
        free(d);
        return reply_errno(req, e);
    }
    fi->fh = (uintptr_t)d;
    fuse_reply_open(req, fi);
}

static void pt_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, struct fuse_file_info *fi)
{
    struct pdir *d = (struct pdir *)(uintptr_t)fi->fh;
    char *buf = malloc(size), *p = buf;
    size_t rem = size;
    if (!buf)
        return reply_errno(req, ENOMEM);
    if (off != d->off) {
        seekdir(d->dp, off);
        d->e = NULL;
        d->off = off;
    }
    for (;;) {
        if (!d->e) {
            errno = 0;
            d->e = readdir(d->dp);
            if (!d->e)
                break;
        }
        struct stat st = { .st_ino = d->e->d_ino, .st_mode = (mode_t)d->e->d_type << 12 };
        size_t n = fuse_add_direntry(req, p, rem, d->e->d_name, &st, d->e->d_off);
        if (n > rem)
            break;
        p += n;
        rem -= n;
        d->off = d->e->d_off;
        d->e = NULL;
    }
    fuse_reply_buf(req, buf, size - rem);
    free(buf);
}

static void pt_releasedir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
    struct pdir *d = (struct pdir *)(uintptr_t)fi->fh;
    closedir(d->dp);
    free(d);
    fuse_reply_err(req, 0);
}

static void pt_statfs(fuse_req_t req, fuse_ino_t ino)
{
    struct statvfs sv;
    if (fstatvfs(node_of(ino)->fd, &sv) != 0)
        return reply_errno(req, errno);
    fuse_reply_statfs(req, &sv);
}

/* Extended attributes, so that the kernel's traffic (one GETXATTR of
 * security.capability before every write) matches landro's, which supports
 * xattrs; without them the kernel stops asking after the first ENOSYS. */
static void xpath(fuse_ino_t ino, char *buf, size_t len)
{
    snprintf(buf, len, "/proc/self/fd/%d", node_of(ino)->fd);
}

static void pt_getxattr(fuse_req_t req, fuse_ino_t ino, const char *name, size_t size)
{
    char p[64], *buf = NULL;
    xpath(ino, p, sizeof(p));
    if (size && !(buf = malloc(size)))
        return reply_errno(req, ENOMEM);
    ssize_t n = getxattr(p, name, buf, size);
    if (n < 0)
        reply_errno(req, errno);
    else if (size == 0)
        fuse_reply_xattr(req, (size_t)n);
    else
        fuse_reply_buf(req, buf, (size_t)n);
    free(buf);
}

static void pt_listxattr(fuse_req_t req, fuse_ino_t ino, size_t size)
{
    char p[64], *buf = NULL;
    xpath(ino, p, sizeof(p));
    if (size && !(buf = malloc(size)))
        return reply_errno(req, ENOMEM);
    ssize_t n = listxattr(p, buf, size);
    if (n < 0)
        reply_errno(req, errno);
    else if (size == 0)
        fuse_reply_xattr(req, (size_t)n);
    else
        fuse_reply_buf(req, buf, (size_t)n);
    free(buf);
}

static void pt_setxattr(fuse_req_t req, fuse_ino_t ino, const char *name, const char *value,
                        size_t size, int flags)
{
    char p[64];
    xpath(ino, p, sizeof(p));
    fuse_reply_err(req, setxattr(p, name, value, size, flags) ? errno : 0);
}

static void pt_removexattr(fuse_req_t req, fuse_ino_t ino, const char *name)
{
    char p[64];
    xpath(ino, p, sizeof(p));
    fuse_reply_err(req, removexattr(p, name) ? errno : 0);
}

static void pt_init(void *ud, struct fuse_conn_info *conn)
{
    conn->want &= ~(unsigned)FUSE_CAP_WRITEBACK_CACHE;
}

static const struct fuse_lowlevel_ops ops = {
    .init = pt_init, .lookup = pt_lookup, .forget = pt_forget, .forget_multi = pt_forget_multi,
    .getattr = pt_getattr, .setattr = pt_setattr, .mkdir = pt_mkdir, .unlink = pt_unlink,
    .rmdir = pt_rmdir, .rename = pt_rename, .open = pt_open, .create = pt_create,
    .read = pt_read, .write = pt_write, .flush = pt_flush, .release = pt_release,
    .fsync = pt_fsync, .opendir = pt_opendir, .readdir = pt_readdir,
    .releasedir = pt_releasedir, .statfs = pt_statfs, .getxattr = pt_getxattr,
    .listxattr = pt_listxattr, .setxattr = pt_setxattr, .removexattr = pt_removexattr,
};

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: landro-passthrough SOURCE MOUNTPOINT\n");
        return 2;
    }
    root.fd = open(argv[1], O_PATH | O_DIRECTORY);
    if (root.fd < 0) {
        fprintf(stderr, "landro-passthrough: cannot open '%s': %s\n", argv[1], strerror(errno));
        return 1;
    }
    char *fargv[] = { argv[0], "-o", "default_permissions,fsname=passthrough", NULL };
    struct fuse_args args = FUSE_ARGS_INIT(3, fargv);
    struct fuse_session *se = fuse_session_new(&args, &ops, sizeof(ops), NULL);
    if (!se)
        return 1;
    if (fuse_set_signal_handlers(se) != 0 || fuse_session_mount(se, argv[2]) != 0) {
        fprintf(stderr, "landro-passthrough: cannot mount on '%s'\n", argv[2]);
        fuse_session_destroy(se);
        return 1;
    }
    struct fuse_loop_config cfg = { .clone_fd = 0, .max_idle_threads = 16 };
    int rc = fuse_session_loop_mt(se, &cfg);
    fuse_session_unmount(se);
    fuse_remove_signal_handlers(se);
    fuse_session_destroy(se);
    return rc ? 1 : 0;
}
