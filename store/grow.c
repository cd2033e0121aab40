/*
 * grow.c - growing data.mdb ahead of LMDB (st_open flag ST_OPEN_GROW).
 *
 * Why: when the store grows (a cold read of a peer's file, a large local
 * write), every commit writes pages past the end of data.mdb, and each
 * of them needs a new page-cache page. In a virtual machine that hands
 * free memory back to its host, a page the guest has not used lately
 * costs a host fault on first touch: on the development VM new page
 * cache fills at 270-420 MB/s against 2.2-3.5 GB/s for recycled pages
 * (tools/measure-first-touch.sh), and that cost landed inside LMDB's
 * commit copy, on the one thread that stores fetched chunks
 * (docs/PERFORMANCE.md, "Growing the store ahead"). Here a thread keeps
 * the ST_GROW_AHEAD bytes past LMDB's last page allocated (fallocate,
 * which extends the file with unwritten extents) and in the page cache
 * (readahead of unwritten extents fills zero pages without any I/O), so
 * the commit overwrites pages that exist and the first touch happens on
 * this thread, beside the commit instead of inside it.
 *
 * Safety: LMDB keeps no file size; it writes pages by number and never
 * reads a page it has not written, so extra zeroed bytes at the end are
 * never seen. fallocate never touches bytes already written. Nothing is
 * preallocated while the file system has less than ST_GROW_MIN_FREE
 * bytes free (a nearly full disk keeps its space for LMDB's own writes
 * and for other files). st_close trims the file back to LMDB's last page.
 *
 * Threads: one grower per store, started by st_open, stopped by
 * st_close; st__grow_kick from any thread (after a write commit).
 */
#include "store_int.h"

#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

struct st_grow {
    pthread_t thr;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int stop, kicked;  /* under mu */
    int fd;            /* data.mdb, our own descriptor */
    int unsupported;   /* the file system has no fallocate: stop trying (atomic) */
    uint64_t end;      /* allocated and cached up to here (atomic: kick reads it) */
    uint64_t psize;
};

/* Bytes LMDB uses now: up to and including its last page. */
static uint64_t used_bytes(st_store *st)
{
    MDB_envinfo info;
    if (mdb_env_info(st->env, &info))
        return 0;
    return ((uint64_t)info.me_last_pgno + 1) * st->grow->psize;
}

static void grow_once(st_store *st)
{
    struct st_grow *g = st->grow;
    uint64_t used = used_bytes(st), end = __atomic_load_n(&g->end, __ATOMIC_RELAXED);
    if (!used || end >= used + ST_GROW_AHEAD / 2)
        return;
    if (end < used)
        end = used;
    uint64_t to = LR_MIN(used + ST_GROW_AHEAD, (uint64_t)ST_MAP_SIZE);
    struct statvfs vfs;
    if (to <= end || fstatvfs(g->fd, &vfs) ||
        (uint64_t)vfs.f_bavail * vfs.f_frsize < ST_GROW_MIN_FREE + (to - end))
        return;
    if (fallocate(g->fd, 0, (off_t)end, (off_t)(to - end))) {
        int unsupported = errno == EOPNOTSUPP || errno == ENOSYS;
        lr_debug("store '%s': preallocating %llu bytes failed: %s%s", st->dir,
                 (unsigned long long)(to - end), strerror(errno), unsupported ? " (not trying again)" : "");
        __atomic_store_n(&g->unsupported, unsupported, __ATOMIC_RELAXED);
        return;
    }
    readahead(g->fd, (off_t)end, (size_t)(to - end));
    __atomic_store_n(&g->end, to, __ATOMIC_RELAXED);
}

static void *grow_main(void *arg)
{
    st_store *st = arg;
    struct st_grow *g = st->grow;
    pthread_mutex_lock(&g->mu);
    while (!g->stop) {
        if (!g->kicked) {
            pthread_cond_wait(&g->cv, &g->mu);
            continue;
        }
        g->kicked = 0;
        pthread_mutex_unlock(&g->mu);
        grow_once(st);
        pthread_mutex_lock(&g->mu);
    }
    pthread_mutex_unlock(&g->mu);
    return NULL;
}

int st__grow_start(st_store *st)
{
    struct st_grow *g = calloc(1, sizeof(*g));
    if (!g)
        return -ENOMEM;
    char path[4096];
    snprintf(path, sizeof(path), "%s/data.mdb", st->dir);
    MDB_stat es;
    if ((g->fd = open(path, O_RDWR | O_CLOEXEC)) < 0 || mdb_env_stat(st->env, &es)) {
        int rc = g->fd < 0 ? -errno : -EIO;
        if (g->fd >= 0)
            close(g->fd);
        free(g);
        return rc;
    }
    g->psize = es.ms_psize;
    pthread_mutex_init(&g->mu, NULL);
    pthread_cond_init(&g->cv, NULL);
    st->grow = g;
    int rc = -pthread_create(&g->thr, NULL, grow_main, st);
    if (rc) {
        st->grow = NULL;
        close(g->fd);
        pthread_mutex_destroy(&g->mu);
        pthread_cond_destroy(&g->cv);
        free(g);
        return rc;
    }
    pthread_setname_np(g->thr, "landro-grow");
    st__grow_kick(st);
    return 0;
}

void st__grow_kick(st_store *st)
{
    struct st_grow *g = st->grow;
    if (!g || __atomic_load_n(&g->unsupported, __ATOMIC_RELAXED) ||
        used_bytes(st) + ST_GROW_AHEAD / 2 <= __atomic_load_n(&g->end, __ATOMIC_RELAXED))
        return;
    pthread_mutex_lock(&g->mu);
    g->kicked = 1;
    pthread_cond_signal(&g->cv);
    pthread_mutex_unlock(&g->mu);
}

uint64_t st__grow_stop(st_store *st)
{
    struct st_grow *g = st->grow;
    if (!g)
        return 0;
    pthread_mutex_lock(&g->mu);
    g->stop = 1;
    pthread_cond_signal(&g->cv);
    pthread_mutex_unlock(&g->mu);
    pthread_join(g->thr, NULL);
    return used_bytes(st);
}

void st__grow_free(st_store *st, uint64_t used)
{
    struct st_grow *g = st->grow;
    if (!g)
        return;
    struct stat sb;
    if (used && fstat(g->fd, &sb) == 0 && (uint64_t)sb.st_size > used && ftruncate(g->fd, (off_t)used))
        lr_warn("store '%s': cannot trim data.mdb to %llu bytes: %s", st->dir, (unsigned long long)used,
                strerror(errno));
    close(g->fd);
    pthread_mutex_destroy(&g->mu);
    pthread_cond_destroy(&g->cv);
    free(g);
    st->grow = NULL;
}
