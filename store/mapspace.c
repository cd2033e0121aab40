/*
 * mapspace.c - the LMDB environment's writable map, and the file blocks
 * under it.
 *
 * Every opener but a read-only one maps the store with MDB_WRITEMAP: a
 * transaction builds its pages in the shared map itself and a commit
 * writes nothing but the meta page. Without it LMDB copies each dirty page
 * into the file at commit, one pwrite() per page when the pages are not
 * adjacent, and the pages of a small commit (an unlink: about 15) lie all
 * over the file (docs/PERFORMANCE.md, "Writable map").
 *
 * A writable map needs two things LMDB does not do:
 *  - Its length. LMDB sets data.mdb's length to the whole map (1 TiB,
 *    sparse) when it maps the file. st__env_open cuts the file back to the
 *    pages in use, so the file is as long as the store and a tar, rsync or
 *    backup of the store directory reads what is there.
 *  - A full disk. A store through a map that meets a page with no block
 *    under it on a full disk gets SIGBUS, not ENOSPC. So before every put
 *    and delete st__room takes the page the transaction has reached (its
 *    next page from the end of the file), adds the most that one
 *    operation can take from there (a B-tree put splits at most every
 *    level of its path and adds a root; a value too big for a node takes
 *    its own overflow pages) and a reserve for the commit's free-list
 *    records, and when that passes the blocks known to be allocated,
 *    fallocate()s the file that far and ST_ROOM_STEP beyond. If the disk
 *    cannot give them the operation fails with -ENOSPC before anything is
 *    written to the map, and the transaction aborts as it would on a
 *    failed write. Pages LMDB reuses from its free list lie below the
 *    last page in use: every such page was written once, so it has its
 *    block.
 *
 * Threads: st__room_begin and st__room run inside a write transaction, so
 * LMDB's writer lock serializes them within the process and across
 * processes; the st_store fields they use (map_fd, map_alloc) are touched
 * by nothing else after open but st_compact_open's swap, which no
 * transaction overlaps. st_compact_open's copy runs in LMDB's copy thread
 * and a relay thread of ours (copy_through_pipe), both ended before it
 * returns; st_compact_cancel, from any thread, only sets an atomic flag
 * the relay looks at.
 *
 * Other processes may hold the store open for writing at the same time
 * (`landro peer add` while the daemon runs), and each cuts the file back
 * at its open. A cut happens under the writer lock and never below the
 * pages in use, and every write transaction re-reads the file's length
 * (st__room_begin), so no process trusts blocks that another one cut away.
 *
 * st_compact and st_compact_open (store.h) are here too: they are how the
 * file gets shorter. st_compact_open swaps the environment of a store in
 * use: every transaction holds st->swap_lock shared from st_txn_begin to
 * its end (store.c), and the swap (close, open on the compacted file,
 * database handles again) happens with it held exclusively, after a check
 * of st->commits that no write committed since the copy began. So no
 * thread is ever inside LMDB on the old environment when it goes, and no
 * commit is lost with it. st->env, map_fd and map_alloc change only
 * there; the database handles (st->db_*) too.
 *
 * Errors: LMDB's codes from st__env_open (as mdb_env_open returns them);
 * -ENOSPC and -errno from st__room / st__room_begin; st_compact_open's in
 * store.h.
 */
#include "store_int.h"

#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sys/file.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

/* Virtual size of the map. LMDB reserves address space, not disk (the
 * file is kept as long as the pages in use, above). 1 TiB bounds one
 * store's size. */
#define ST_MAP_SIZE (1ull << 40)
#define ST_MAX_READERS 1024
#define ST_MAX_DBS 16
/* Blocks allocated ahead of need at once: one fallocate() per 8 MiB of
 * growth instead of one per transaction. */
#define ST_ROOM_STEP (8ull << 20)
/* Pages set aside for a commit beyond its free-list records: the main
 * database's records of the databases written, the free database's own
 * path. */
#define ST_ROOM_COMMIT 64
/* Disk left free beyond the compacting copy's size, or no copy is made. */
#define ST_COMPACT_SLACK (64ull << 20)

/* How far into the file the write transaction txn has allocated: its
 * next page number. LMDB 0.9 has no call that tells. Its struct MDB_txn
 * (mdb.c; Debian 12 ships 0.9.24, linked statically, see the Makefile)
 * begins with the parent and child pointers and then mt_next_pgno, a
 * pgno_t (size_t). st__room_begin checks what this reads against the meta
 * page's last page at the start of every write transaction; if the two
 * ever differ the store stops reading it and adds up worst cases instead
 * (st__room_pages), which is safe but allocates more of the disk ahead. */
#if MDB_VERSION_MAJOR == 0 && MDB_VERSION_MINOR == 9
#define ST_TXN_EXACT 1
#define ST_TXN_NEXT_PGNO_OFF (2 * sizeof(void *))
static uint64_t txn_next_pgno(MDB_txn *txn)
{
    size_t n;
    memcpy(&n, (const char *)txn + ST_TXN_NEXT_PGNO_OFF, sizeof(n));
    return n;
}
#else
#define ST_TXN_EXACT 0
static uint64_t txn_next_pgno(MDB_txn *txn) { (void)txn; return 0; }
#endif

int st__used_bytes(st_store *st, uint64_t *out)
{
    MDB_envinfo info;
    MDB_stat es;
    int rc = mdb_env_info(st->env, &info);
    if (!rc)
        rc = mdb_env_stat(st->env, &es);
    if (!rc)
        *out = (uint64_t)(info.me_last_pgno + 1) * es.ms_psize;
    return rc;
}

/* Cut the file back to the pages in use (see the top). Failing that, the
 * file keeps LMDB's length; that costs tools reading it, not the store. */
static void map_trim(st_store *st)
{
    MDB_txn *txn;
    if (mdb_txn_begin(st->env, NULL, 0, &txn))
        return;
    uint64_t bytes;
    if (st__used_bytes(st, &bytes) == 0) {
        off_t used = (off_t)bytes;
        struct stat sb;
        if (fstat(st->map_fd, &sb) == 0 && sb.st_size > used && ftruncate(st->map_fd, used))
            lr_warn("store '%s': cannot trim data.mdb to %lld bytes: %s", st->dir,
                    (long long)used, strerror(errno));
    }
    mdb_txn_abort(txn);
}

/* Every opener but st_compact holds a shared fcntl lock on the first byte
 * of landro.lock while it has the store open, and st_compact holds it
 * exclusively; neither waits. So no landro process is ever inside
 * mdb_env_open while the store is compacted: one that were would wait on
 * LMDB's lock.mdb and then trust the transaction id LMDB keeps there,
 * which the compacted file's meta pages (ids 0 and 1) do not match. */
static int gate_lock(int fd, short type)
{
    struct flock fl = { .l_type = type, .l_whence = SEEK_SET, .l_start = 0, .l_len = 1 };
    if (fcntl(fd, F_SETLK, &fl) == 0)
        return 0;
    return errno == EACCES || errno == EAGAIN ? -EBUSY : -errno;
}

/* The descriptor of landro.lock that holds st's gate lock: the daemon's
 * flock() descriptor when it has one, else gatefd; -1 before gate_enter. */
static int gate_fd(const st_store *st) { return st->lockfd >= 0 ? st->lockfd : st->gatefd; }

static int gate_enter(st_store *st, const char *dir, unsigned flags)
{
    int fd = gate_fd(st);
    if (fd < 0) {
        char path[4200];
        snprintf(path, sizeof(path), "%s/%s", dir, ST_LOCKFILE);
        fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
        if (fd < 0 && (flags & ST_OPEN_RDONLY))
            fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0) /* a read-only store on read-only media: nothing can compact it */
            return (flags & ST_OPEN_RDONLY) ? 0 : -errno;
        st->gatefd = fd;
    }
    int rc = gate_lock(fd, F_RDLCK);
    if (rc == -EBUSY)
        lr_error("store '%s' is being compacted; try again in a moment", dir);
    return rc;
}

int st__env_open(st_store *st, const char *dir, unsigned flags)
{
    int rc = (flags & ST_OPEN_NOGATE) ? 0 : gate_enter(st, dir, flags);
    if (rc)
        return -rc; /* LMDB's convention: a positive errno */
    rc = mdb_env_create(&st->env);
    if (rc)
        return rc;
    mdb_env_set_mapsize(st->env, ST_MAP_SIZE);
    mdb_env_set_maxdbs(st->env, ST_MAX_DBS);
    mdb_env_set_maxreaders(st->env, ST_MAX_READERS);
    unsigned envflags = MDB_NOTLS | MDB_NOSYNC;
    envflags |= (flags & ST_OPEN_RDONLY) ? MDB_RDONLY : MDB_WRITEMAP;
    if ((rc = mdb_env_open(st->env, dir, envflags, 0600)))
        return rc;
    if (flags & ST_OPEN_RDONLY)
        return 0;
    MDB_stat es;
    if ((rc = mdb_env_get_fd(st->env, &st->map_fd)) || (rc = mdb_env_stat(st->env, &es)))
        return rc;
    st->psize = es.ms_psize;
    st->writemap = 1;
    st->map_exact = ST_TXN_EXACT;
    map_trim(st);
    return 0;
}

int st__room_begin(st_txn *t)
{
    st_store *st = t->st;
    if (!st->writemap)
        return 0;
    MDB_envinfo info;
    struct stat sb;
    int rc = mdb_env_info(st->env, &info);
    if (rc)
        return st__mdb_err(rc);
    if (fstat(st->map_fd, &sb))
        return -errno;
    uint64_t used = info.me_last_pgno + 1;
    uint64_t len = (uint64_t)sb.st_size / st->psize;
    /* Blocks are known only as far as this process allocated them and the
     * file still reaches; below `used` every page was written. */
    if (st->map_alloc > len)
        st->map_alloc = len;
    if (st->map_alloc < used)
        st->map_alloc = used;
    if (st->map_exact && txn_next_pgno(t->txn) != used) {
        lr_warn("store '%s': cannot follow LMDB's page allocation; bounding it instead", st->dir);
        st->map_exact = 0;
    }
    t->room = used;
    return 0;
}

/* Pages of an overflow value of vlen bytes, or 0 if it can fit in a node.
 * Every value over a quarter page is counted as overflow (LMDB's limit
 * is near half a page), which only over-counts. */
static uint64_t ov_pages(const st_store *st, size_t vlen)
{
    if (vlen <= st->psize / 4)
        return 0;
    return (vlen + 16 + st->psize - 1) / st->psize; /* 16: the page header */
}

int st__room(st_txn *t, MDB_dbi db, size_t vlen)
{
    if (!t->st->writemap)
        return 0;
    MDB_stat s;
    int rc = mdb_stat(t->txn, db, &s);
    if (rc)
        return st__mdb_err(rc);
    return st__room_pages(t, 2ull * s.ms_depth + 2 + ov_pages(t->st, vlen));
}

int st__room_pages(st_txn *t, uint64_t pages)
{
    st_store *st = t->st;
    if (!st->writemap)
        return 0;
    /* Where the transaction has got to, plus this operation's worst case;
     * counting worst cases only (the fallback) over-counts a transaction
     * of many puts by several times, and the file's blocks with it. */
    if (st->map_exact)
        t->room = txn_next_pgno(t->txn);
    t->room += pages;
    /* The commit writes the pages this transaction freed and those it
     * took from the free list but did not use as records of 8 bytes a
     * page: neither list can hold more pages than the file has. */
    uint64_t need = t->room + 2 * (t->room * 8 / st->psize + 1) + ST_ROOM_COMMIT;
    if (need <= st->map_alloc)
        return 0;
    uint64_t step = ST_ROOM_STEP / st->psize;
    off_t from = (off_t)st->map_alloc * st->psize;
    /* Ahead by a step; on a nearly full disk, what is needed only. */
    int rc = posix_fallocate(st->map_fd, from, (off_t)(need + step - st->map_alloc) * st->psize);
    if (rc == 0) {
        st->map_alloc = need + step;
        return 0;
    }
    if (rc == ENOSPC || rc == EDQUOT)
        rc = posix_fallocate(st->map_fd, from, (off_t)(need - st->map_alloc) * st->psize);
    if (rc == 0) {
        st->map_alloc = need;
        return 0;
    }
    return rc == EDQUOT ? -ENOSPC : -rc;
}

/* ---- compaction -------------------------------------------------------- */

static int fsync_path(const char *path, int flags)
{
    int fd = open(path, flags | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    int rc = fsync(fd) ? -errno : 0;
    close(fd);
    return rc;
}

/* Where a compacting copy is made: compact.tmp/data.mdb beside data.mdb. */
struct copy_paths {
    char tmpd[4200], tmpf[4300], data[4200];
};

static void copy_paths(struct copy_paths *p, const char *dir)
{
    snprintf(p->tmpd, sizeof(p->tmpd), "%s/compact.tmp", dir);
    snprintf(p->tmpf, sizeof(p->tmpf), "%s/data.mdb", p->tmpd);
    snprintf(p->data, sizeof(p->data), "%s/data.mdb", dir);
}

/* The far end of a cancellable copy: from the pipe LMDB writes into, to
 * the copy's file, until the pipe's end, an error, or st_compact_cancel.
 * Then it closes the pipe, so LMDB's next write fails (EPIPE) and the copy
 * stops within a buffer's time. */
struct relay {
    st_store *st;
    int in, out;
    int rc; /* 0, -ECANCELED or -errno */
};

static void *relay_main(void *arg)
{
    struct relay *r = arg;
    char buf[1 << 16];
    for (;;) {
        if (__atomic_load_n(&r->st->compact_cancel, __ATOMIC_ACQUIRE)) {
            r->rc = -ECANCELED;
            break;
        }
        struct pollfd pf = { .fd = r->in, .events = POLLIN };
        int n = poll(&pf, 1, 100); /* looks at the cancel flag every 100 ms */
        if (n < 0 && errno != EINTR) {
            r->rc = -errno;
            break;
        }
        if (n <= 0)
            continue;
        ssize_t k = read(r->in, buf, sizeof(buf));
        if (k == 0)
            break; /* LMDB closed its end: the copy is whole */
        if (k < 0) {
            if (errno == EINTR)
                continue;
            r->rc = -errno;
            break;
        }
        for (ssize_t off = 0; off < k;) {
            ssize_t w = write(r->out, buf + off, (size_t)(k - off));
            if (w < 0 && errno == EINTR)
                continue;
            if (w < 0) {
                r->rc = -errno;
                break;
            }
            off += w;
        }
        if (r->rc)
            break;
    }
    close(r->in);
    return NULL;
}

/* mdb_env_copyfd2 through a pipe to fd, so that st_compact_cancel can cut
 * it off (LMDB's copy has no way to be stopped otherwise). SIGPIPE is
 * blocked in this thread for the call, so a write into the cut pipe
 * fails with EPIPE instead of ending the process, here or in the copy
 * thread LMDB starts (which inherits the mask); one sent to this thread
 * is taken before the mask is restored. */
static int copy_through_pipe(st_store *st, int fd)
{
    int pp[2];
    if (pipe2(pp, O_CLOEXEC))
        return -errno;
    struct relay r = { .st = st, .in = pp[0], .out = fd };
    pthread_t th;
    int e = pthread_create(&th, NULL, relay_main, &r);
    if (e) {
        close(pp[0]);
        close(pp[1]);
        return -e;
    }
    sigset_t pipe_set, old;
    sigemptyset(&pipe_set);
    sigaddset(&pipe_set, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &pipe_set, &old);
    int mrc = mdb_env_copyfd2(st->env, pp[1], MDB_CP_COMPACT);
    close(pp[1]);
    pthread_join(th, NULL);
    const struct timespec now = { 0, 0 };
    while (sigtimedwait(&pipe_set, NULL, &now) == SIGPIPE)
        ;
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (r.rc)
        return r.rc; /* cancelled, or the file could not be written */
    return mrc ? st__mdb_err(mrc) : 0;
}

/* LMDB's compacting copy of st's environment into p->tmpf, mode 0600 and
 * on disk. LMDB copies from a read transaction of its own, so writers may
 * go on meanwhile (st_compact_open checks whether one did). cancellable:
 * through a pipe that st_compact_cancel cuts (-ECANCELED). */
static int copy_compacted(st_store *st, const struct copy_paths *p, int cancellable)
{
    int rc;
    /* What a copy interrupted earlier left. */
    if (unlink(p->tmpf) && errno != ENOENT)
        return -errno;
    if (mkdir(p->tmpd, 0700) && errno != EEXIST)
        return -errno;
    if (!cancellable) {
        if ((rc = mdb_env_copy2(st->env, p->tmpd, MDB_CP_COMPACT)))
            return st__mdb_err(rc);
        if (chmod(p->tmpf, 0600)) /* LMDB creates it 0666 less the umask */
            return -errno;
        return fsync_path(p->tmpf, O_RDONLY);
    }
    int fd = open(p->tmpf, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0)
        return -errno;
    rc = copy_through_pipe(st, fd);
    if (!rc && fsync(fd))
        rc = -errno;
    if (close(fd) && !rc)
        rc = -errno;
    return rc;
}

/* The copy in place of data.mdb. -errno if the rename failed (nothing
 * changed); 1 if it was renamed but the directory could not be synced (a
 * crash may bring the old file back, which is whole too). */
static int put_copy(const struct copy_paths *p, const char *dir)
{
    if (rename(p->tmpf, p->data))
        return -errno;
    return fsync_path(dir, O_RDONLY | O_DIRECTORY) ? 1 : 0;
}

static int st_compact_locked(st_store *st, const char *dir)
{
    struct copy_paths p;
    copy_paths(&p, dir);
    int rc = copy_compacted(st, &p, 0);
    if (!rc && (rc = put_copy(&p, dir)) > 0)
        rc = -EIO;
    if (!rc)
        rmdir(p.tmpd);
    return rc;
}

int st_space(st_store *st, struct st_space *out)
{
    st_txn *t;
    int rc = st_txn_begin(st, ST_TXN_READ, &t);
    if (rc)
        return rc;
    MDB_stat fs;
    MDB_cursor *c = NULL;
    uint64_t free_pages = 0;
    int mrc = st__used_bytes(st, &out->file_bytes);
    if (!mrc)
        mrc = mdb_stat(t->txn, 0, &fs); /* 0: LMDB's free database */
    if (!mrc)
        mrc = mdb_cursor_open(t->txn, 0, &c);
    if (!mrc) {
        /* Each record: the ids of pages freed by one transaction, an
         * MDB_IDL whose first element is their count. */
        MDB_val k, v;
        while ((mrc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) == 0) {
            size_t n = 0; /* LMDB's MDB_ID */
            if (v.mv_size >= sizeof(n))
                memcpy(&n, v.mv_data, sizeof(n)); /* a node's data need not be aligned */
            free_pages += n;
        }
        mdb_cursor_close(c);
        if (mrc == MDB_NOTFOUND)
            mrc = 0;
    }
    if (!mrc) {
        free_pages += fs.ms_branch_pages + fs.ms_leaf_pages + fs.ms_overflow_pages;
        out->free_bytes = LR_MIN(free_pages * fs.ms_psize, out->file_bytes);
    }
    st_txn_abort(t);
    return mrc ? st__mdb_err(mrc) : 0;
}

/* st->env closed and opened again on the compacted file, its database
 * handles with it; the caller holds swap_lock exclusively. LMDB's lock
 * file is reset by the open, as this process is its only user (the gate),
 * so the copy's meta pages (transaction ids 0 and 1) are read as they
 * are. On failure st->env is NULL: every transaction fails with EIO until
 * the store is mounted again (the data is whole on disk). */
static int swap_env(st_store *st)
{
    mdb_env_close(st->env);
    st->env = NULL;
    st->map_fd = -1;
    st->map_alloc = 0;
    MDB_txn *txn = NULL;
    int mrc = st__env_open(st, st->dir, st->flags | ST_OPEN_NOGATE);
    if (!mrc)
        mrc = mdb_txn_begin(st->env, NULL, 0, &txn);
    int rc = mrc ? st__mdb_err(mrc) : st__open_dbs(st, txn, 0);
    if (txn && rc)
        mdb_txn_abort(txn);
    else if (txn && (mrc = mdb_txn_commit(txn)))
        rc = st__mdb_err(mrc);
    if (rc) {
        lr_error("store '%s': cannot open it again after compacting it: %s (its data is whole "
                 "on disk; unmount and mount again)", st->dir, lr_strerror(rc));
        if (st->env)
            mdb_env_close(st->env);
        st->env = NULL;
    }
    return rc;
}

uint64_t st_commits(st_store *st) { return __atomic_load_n(&st->commits, __ATOMIC_RELAXED); }

int st_compact_open(st_store *st, unsigned wait_ms, uint64_t *before, uint64_t *after)
{
    if ((st->flags & ST_OPEN_RDONLY) || !st->writemap)
        return -EROFS;
    if (__atomic_load_n(&st->compact_cancel, __ATOMIC_ACQUIRE))
        return -ECANCELED;
    int gfd = gate_fd(st);
    if (gfd < 0)
        return -EBUSY;
    struct st_space sp;
    int rc = st_space(st, &sp);
    if (rc)
        return rc;
    struct stat sb;
    if (fstat(st->map_fd, &sb))
        return -errno;
    *before = *after = (uint64_t)sb.st_size;
    struct statvfs v;
    if (statvfs(st->dir, &v))
        return -errno;
    if ((uint64_t)v.f_bavail * v.f_frsize < sp.file_bytes - sp.free_bytes + ST_COMPACT_SLACK)
        return -ENOSPC;
    /* The gate exclusively (a conversion of this process's shared lock):
     * -EBUSY while another process has the store open. None opens it
     * until the gate is shared again below. */
    if ((rc = gate_lock(gfd, F_WRLCK)))
        return rc;
    struct copy_paths p;
    copy_paths(&p, st->dir);
    uint64_t c0 = __atomic_load_n(&st->commits, __ATOMIC_SEQ_CST);
    rc = copy_compacted(st, &p, 1);
    int locked = 0, renamed = 0;
    if (!rc) {
        struct timespec dl;
        lr_deadline_in(&dl, (uint64_t)wait_ms * 1000000ull);
        int e = pthread_rwlock_timedwrlock(&st->swap_lock, &dl);
        rc = e == 0 ? 0 : e == ETIMEDOUT ? -EAGAIN : -e;
        locked = !e;
    }
    /* The copy is the store only if nothing committed since it began. */
    if (!rc && __atomic_load_n(&st->commits, __ATOMIC_SEQ_CST) != c0)
        rc = -EAGAIN;
    if (!rc) {
        rc = put_copy(&p, st->dir);
        if (rc >= 0) {
            if (rc)
                lr_warn("store '%s': cannot sync the directory after compacting", st->dir);
            renamed = 1;
            rc = swap_env(st);
        }
    }
    if (locked)
        pthread_rwlock_unlock(&st->swap_lock);
    if (!renamed)
        unlink(p.tmpf);
    rmdir(p.tmpd);
    if (gate_lock(gfd, F_RDLCK))
        lr_warn("store '%s': cannot share its open lock again: %s", st->dir, strerror(errno));
    if (!rc && st->map_fd >= 0 && fstat(st->map_fd, &sb) == 0)
        *after = (uint64_t)sb.st_size;
    return rc;
}

void st_compact_cancel(st_store *st)
{
    __atomic_store_n(&st->compact_cancel, 1, __ATOMIC_RELEASE);
}

int st_compact(const char *dir, uint64_t *before, uint64_t *after)
{
    char path[4200];
    struct stat sb;
    snprintf(path, sizeof(path), "%s/data.mdb", dir);
    if (stat(path, &sb))
        return -errno;
    *before = (uint64_t)sb.st_size;
    snprintf(path, sizeof(path), "%s/%s", dir, ST_LOCKFILE);
    int lfd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (lfd < 0)
        return -errno;
    /* The daemon's lock, then the gate (see gate_enter) exclusively: no
     * other process has the store open, and none opens it until the
     * environment is closed again below. */
    int rc = flock(lfd, LOCK_EX | LOCK_NB) ? (errno == EWOULDBLOCK ? LR_ELOCKED : -errno) : 0;
    if (!rc)
        rc = gate_lock(lfd, F_WRLCK);
    st_store *st = NULL;
    if (!rc)
        rc = st_open(dir, ST_OPEN_NOGATE, &st);
    if (!rc)
        rc = st_compact_locked(st, dir);
    st_close(st); /* the environment first: LMDB's locks go with it */
    close(lfd);   /* then ours */
    snprintf(path, sizeof(path), "%s/data.mdb", dir);
    if (!rc)
        rc = stat(path, &sb) ? -errno : 0;
    if (!rc)
        *after = (uint64_t)sb.st_size;
    return rc;
}
