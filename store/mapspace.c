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
 * by nothing else after open.
 *
 * Other processes may hold the store open for writing at the same time
 * (`landro peer add` while the daemon runs), and each cuts the file back
 * at its open. A cut happens under the writer lock and never below the
 * pages in use, and every write transaction re-reads the file's length
 * (st__room_begin), so no process trusts blocks that another one cut away.
 *
 * st_compact (store.h) is here too: it is how the file gets shorter.
 *
 * Errors: LMDB's codes from st__env_open (as mdb_env_open returns them);
 * -ENOSPC and -errno from st__room / st__room_begin.
 */
#include "store_int.h"

#include <fcntl.h>
#include <sys/file.h>
#include <string.h>
#include <sys/stat.h>
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

/* Cut the file back to the pages in use (see the top). Failing that, the
 * file keeps LMDB's length; that costs tools reading it, not the store. */
static void map_trim(st_store *st)
{
    MDB_txn *txn;
    if (mdb_txn_begin(st->env, NULL, 0, &txn))
        return;
    MDB_envinfo info;
    if (mdb_env_info(st->env, &info) == 0) {
        off_t used = (off_t)(info.me_last_pgno + 1) * st->psize;
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

static int gate_enter(st_store *st, const char *dir, unsigned flags)
{
    int fd = st->lockfd;
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
        lr_error("store '%s' is being compacted ('landro compact'); try again when it is done", dir);
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

static int st_compact_locked(st_store *st, const char *dir)
{
    char tmpd[4200], tmpf[4300], data[4200];
    snprintf(tmpd, sizeof(tmpd), "%s/compact.tmp", dir);
    snprintf(tmpf, sizeof(tmpf), "%s/data.mdb", tmpd);
    snprintf(data, sizeof(data), "%s/data.mdb", dir);
    int rc;
    /* What a copy interrupted earlier left. */
    if (unlink(tmpf) && errno != ENOENT)
        return -errno;
    if (mkdir(tmpd, 0700) && errno != EEXIST)
        return -errno;
    if ((rc = mdb_env_copy2(st->env, tmpd, MDB_CP_COMPACT)))
        return st__mdb_err(rc);
    if (chmod(tmpf, 0600)) /* LMDB creates it 0666 less the umask */
        return -errno;
    if ((rc = fsync_path(tmpf, O_RDONLY)))
        return rc;
    if (rename(tmpf, data))
        return -errno;
    if ((rc = fsync_path(dir, O_RDONLY | O_DIRECTORY)))
        return rc;
    rmdir(tmpd);
    return 0;
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
