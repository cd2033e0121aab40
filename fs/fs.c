/* fs.c - libfuse3 low-level operations over the landro store. See fs.h.
 *
 * Lock order: a node's rwlock, then a store write transaction, then the
 * node table mutex. Nobody takes a node lock while holding the table
 * mutex or a write transaction, and nobody begins a write transaction
 * while holding the table mutex. The committer mutex (f->cmu) is taken
 * last, under a node's rwlock or alone, and nothing is taken under it.
 */
#include "fs.h"

#include <dirent.h>
#include <fuse_lowlevel.h>
#include <linux/falloc.h>
#include <linux/fs.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "ns.h"
#include "replica.h"
#include "stage.h"
#include "sync.h"

/* ---- in-memory inode table ------------------------------------------------ */

struct fs_node {
    struct fs_node *next;    /* hash chain (table mutex) */
    uint64_t ino;
    uint64_t nlookup;        /* kernel lookup count (table mutex) */
    uint32_t refs;           /* open handles + handlers in flight (table mutex) */
    int orphan;              /* nlink reached 0: reap when unreferenced (table mutex) */
    pthread_rwlock_t lock;   /* guards the fields below */
    struct fs_stage stage;
    uint64_t size;           /* file size including staged bytes, while staged */
    struct timespec mtime;   /* time of the last staged write, while staged */
    int staged;              /* stage.n || cstage.n (written under lock, read atomically) */
    /* A full stage handed to the committer thread (cbusy), or left behind
     * by its failed commit (cerr): older than stage, overlaid under it.
     * While cbusy nobody else touches cstage, csize or cmtime; cbusy is
     * set and cleared holding both this lock and f->cmu. */
    struct fs_stage cstage;
    uint64_t csize;          /* file size to commit with cstage */
    struct timespec cmtime;  /* mtime to commit with cstage */
    int cbusy;               /* cstage is being committed in the background */
    int cerr;                /* that commit failed with this error; cstage kept */
    struct fs_node *cnext;   /* committer queue (f->cmu) */
    /* Read-ahead of chunks held by peers (atomics; 0 = never missed):
     * fetches were started up to this offset. */
    uint64_t ra_end;
    /* Fragments that committed isolated writes (ST_WRITE_ISOLATE) left,
     * for the reaper to re-chunk (rechunk_tick): how many writes, the
     * range [frag_lo, frag_hi) they span and when the last committed
     * (monotonic ns). While frag_ref the node holds one reference for
     * the reaper, so it outlives its last handle until re-chunked. */
    uint64_t frag_n, frag_lo, frag_hi, frag_ns;
    int frag_ref;
};

struct fs_file {
    struct fs_node *node;
    int flags;
};

struct fs_dent {
    uint64_t ino;
    uint8_t type;
    char *name;
};

struct fs_dir {
    pthread_mutex_t lock;
    struct fs_node *node;
    struct fs_dent *e;
    size_t n, cap;
    int loaded;
    uint64_t gen;            /* f->peer_gen when the names were loaded */
};

struct fs {
    st_store *st;
    struct fs_sync *sync;    /* fetches chunks held only by peers; NULL: none */
    struct fuse_session *se;
    char *mountpoint;
    int mounted, signals;
    pthread_mutex_t tlock;
    struct fs_node **tab;
    size_t tabsize, count;
    /* Reaper: orphaned inodes are deleted by one thread in batches (one
     * write transaction for many), off the request path. */
    pthread_t reaper;
    int reaper_started, reaper_stop;
    /* The reaper's walks over nodes (commit_old_stages, rechunk_tick) run
     * with maint_busy set (rlock); fs_free sets maint_stop and waits for
     * them to end before it frees the nodes. */
    int maint_busy, maint_stop;
    pthread_mutex_t rlock;
    pthread_cond_t rcond;
    uint64_t *rq;
    size_t rn, rcap;
    /* Committer: commits full stages in the background so the writer
     * keeps staging while the previous FS_STAGE_MAX_BYTES are chunked,
     * hashed and committed (double buffering: stage and cstage). */
    pthread_t committer;
    int committer_started, committer_stop;
    /* Replier: answers reads that waited for a peer's chunk. The sync
     * thread stores fetched chunks and hands each waiting read here, so
     * the copy of the reply into the kernel (as much CPU as the store's
     * own copy of the chunk) runs beside its next commit, not after it. */
    pthread_t replier;
    int replier_started, replier_stop;
    pthread_mutex_t qmu;
    pthread_cond_t qcv;
    struct deferred_read *rq_head, *rq_tail;
    pthread_mutex_t cmu;
    pthread_cond_t cwork, cdone;
    struct fs_node *cq_head, *cq_tail;
    /* Read-ahead: 0 until INIT, then the time INIT was answered (ns); the
     * reaper raises the mount's window once and sets ra_done. */
    uint64_t init_ns;
    int ra_done;
    /* Change-log compaction (reaper thread only): when the log's size is
     * looked at next (monotonic ns), and how many records the last pass
     * left (the next runs once the log has doubled since). */
    uint64_t log_check_ns, log_kept;
    int log_due;            /* tombstones were forgotten: compact at the next look */
    uint64_t forget_check_ns; /* when tombstones are looked at next (monotonic ns) */
    /* Online compaction (compactor thread only, compact_tick): when to
     * look next (monotonic ns); due: the free space calls for it, and it
     * waits for a lull in commits (the commit count last seen). */
    uint64_t compact_check_ns, compact_commits;
    int compact_due;
    int compact_nodisk;          /* the last try found no room on the disk for the copy */
    pthread_t compactor;
    int compactor_started, compactor_stop; /* compactor_stop: atomic */
    /* Peers' changes: peer_gen counts applied batches (fs_peer_changed),
     * bumped under gen_lock after a batch commits and before its
     * invalidations reach the kernel. An entry built from a snapshot older
     * than a bump may be stale, and the kernel would keep it for
     * FS_TIMEOUT_S (an invalidation that came before the reply finds
     * nothing to drop): such replies are sent, under gen_lock, with no
     * timeout. A name looked up in vain while a peer's create of it was
     * being applied stayed invisible for a minute. */
    pthread_rwlock_t gen_lock;
    uint64_t peer_gen;
};

static void reap_queue(fs *f, uint64_t ino);
static void replier_stop(fs *f);
static int get_inode(fs *f, uint64_t ino, struct st_inode *in);

static size_t node_hash(const fs *f, uint64_t ino)
{
    return (size_t)((ino * 0x9E3779B97F4A7C15ull) >> 20) & (f->tabsize - 1);
}

static void table_grow(fs *f)
{
    size_t nsize = f->tabsize * 2;
    struct fs_node **nt = calloc(nsize, sizeof(*nt));
    if (!nt)
        return; /* keep the longer chains */
    struct fs_node **old = f->tab;
    size_t osize = f->tabsize;
    f->tab = nt;
    f->tabsize = nsize;
    for (size_t i = 0; i < osize; i++) {
        for (struct fs_node *n = old[i], *next; n; n = next) {
            next = n->next;
            size_t h = node_hash(f, n->ino);
            n->next = nt[h];
            nt[h] = n;
        }
    }
    free(old);
}

/* Find ino's node, creating it if create; table mutex held. */
static struct fs_node *node_find_locked(fs *f, uint64_t ino, int create)
{
    size_t h = node_hash(f, ino);
    for (struct fs_node *n = f->tab[h]; n; n = n->next)
        if (n->ino == ino)
            return n;
    if (!create)
        return NULL;
    struct fs_node *n = calloc(1, sizeof(*n));
    if (!n)
        return NULL;
    n->ino = ino;
    pthread_rwlock_init(&n->lock, NULL);
    fs_stage_init(&n->stage);
    fs_stage_init(&n->cstage);
    n->next = f->tab[h];
    f->tab[h] = n;
    if (++f->count > f->tabsize)
        table_grow(f);
    return n;
}

static void node_unlink_locked(fs *f, struct fs_node *n)
{
    struct fs_node **pp = &f->tab[node_hash(f, n->ino)];
    while (*pp != n)
        pp = &(*pp)->next;
    *pp = n->next;
    f->count--;
}

/* Free an unreferenced node (already out of the table) and delete its
 * inode from the store if it was orphaned. */
static void node_destroy(fs *f, struct fs_node *n, int orphan)
{
    if (n->stage.n || n->cstage.n)
        lr_error("dropping %zu uncommitted bytes of inode %llu (an earlier commit failed)",
                 n->stage.bytes + n->cstage.bytes, (unsigned long long)n->ino);
    fs_stage_release(&n->stage);
    fs_stage_release(&n->cstage);
    pthread_rwlock_destroy(&n->lock);
    uint64_t ino = n->ino;
    free(n);
    if (orphan)
        reap_queue(f, ino);
}

/* Take a reference on ino's node (creating it). NULL only on ENOMEM. */
static struct fs_node *node_get(fs *f, uint64_t ino)
{
    pthread_mutex_lock(&f->tlock);
    struct fs_node *n = node_find_locked(f, ino, 1);
    if (n)
        n->refs++;
    pthread_mutex_unlock(&f->tlock);
    return n;
}

/* One more reference on n, which the caller knows to be alive. */
static void node_hold(fs *f, struct fs_node *n)
{
    pthread_mutex_lock(&f->tlock);
    n->refs++;
    pthread_mutex_unlock(&f->tlock);
}

/* Drop nrefs references and nforget lookups; free when none is left. */
static void node_put(fs *f, struct fs_node *n, uint32_t nrefs, uint64_t nforget)
{
    pthread_mutex_lock(&f->tlock);
    n->refs -= LR_MIN(nrefs, n->refs);
    n->nlookup -= LR_MIN(nforget, n->nlookup);
    int dead = n->refs == 0 && n->nlookup == 0;
    int orphan = n->orphan;
    if (dead)
        node_unlink_locked(f, n);
    pthread_mutex_unlock(&f->tlock);
    if (dead)
        node_destroy(f, n, orphan);
}

/* The kernel now holds one more lookup of ino (after a successful entry
 * reply). Returns 0 or -ENOMEM. */
static int node_lookup_inc(fs *f, uint64_t ino)
{
    pthread_mutex_lock(&f->tlock);
    struct fs_node *n = node_find_locked(f, ino, 1);
    if (n)
        n->nlookup++;
    pthread_mutex_unlock(&f->tlock);
    return n ? 0 : -ENOMEM;
}

static void node_forget(fs *f, uint64_t ino, uint64_t nlookup)
{
    pthread_mutex_lock(&f->tlock);
    struct fs_node *n = node_find_locked(f, ino, 0);
    if (!n) {
        pthread_mutex_unlock(&f->tlock);
        return;
    }
    n->refs++;
    pthread_mutex_unlock(&f->tlock);
    node_put(f, n, 1, nlookup);
}

/* After an operation took ino's nlink to 0: delete it now if nothing
 * refers to it, else mark it for deletion when the last reference goes. */
static void node_orphaned(fs *f, uint64_t ino)
{
    pthread_mutex_lock(&f->tlock);
    struct fs_node *n = node_find_locked(f, ino, 0);
    if (n)
        n->orphan = 1;
    pthread_mutex_unlock(&f->tlock);
    if (!n)
        reap_queue(f, ino);
}

/* Queue ino for deletion (st_ns_reap checks nlink == 0 again). Without a
 * reaper thread (it could not start) the deletion happens right here. */
/* Drop the data of a big orphan in steps of FS_REAP_STEP bytes, one
 * transaction each, so that deleting a huge file never needs one huge
 * transaction (which a nearly full disk could not hold: LMDB needs free
 * pages to free pages). */
#define FS_REAP_STEP (256ull << 20)
#define FS_REAP_GATHER_US 20000
#define FS_LOG_CHECK_NS (10ull * 1000000000) /* look at the change log's size this often */
#define FS_LOG_COMPACT_MIN 10000u            /* no compaction below this many records */
#define FS_FORGET_CHECK_MAX_NS (86400ull * 1000000000) /* look at tombstones at least daily */
#define FS_COMPACT_CHECK_NS (5ull * 1000000000) /* look at the store's free space this often */
#define FS_COMPACT_MIN_FREE (64ull << 20)       /* compact once this much and half the file is free */
#define FS_COMPACT_WAIT_MS 200                  /* for open transactions at the swap, at most */
#define FS_COMPACT_QUIET_NS (100ull * 1000000)  /* no commit for this long: a lull to copy in */
#define FS_COMPACT_RETRY_NS (600ull * 1000000000) /* after a failure other than "busy" */
static int reap_shrink(fs *f, uint64_t ino)
{
    struct st_inode in;
    int rc = get_inode(f, ino, &in);
    if (rc == -ENOENT)
        return 0;
    if (rc || in.nlink != 0 || !S_ISREG(in.mode))
        return rc;
    uint64_t end = in.size;
    while (end > FS_REAP_STEP) {
        end -= FS_REAP_STEP;
        st_txn *t;
        if ((rc = st_txn_begin(f->st, ST_TXN_WRITE, &t)))
            return rc;
        if ((rc = st_txn_end(t, st_file_truncate(t, ino, end))))
            return rc;
    }
    return 0;
}

static void reap_batch(fs *f, const uint64_t *v, size_t n)
{
    int rc = 0;
    for (size_t i = 0; rc == 0 && i < n; i++)
        rc = reap_shrink(f, v[i]);
    st_txn *t;
    if (rc == 0 && (rc = st_txn_begin(f->st, ST_TXN_WRITE, &t)) == 0) {
        for (size_t i = 0; rc == 0 && i < n; i++) {
            rc = st_ns_reap(t, v[i]);
            if (rc > 0)
                rc = 0;
        }
        rc = st_txn_end(t, rc);
    }
    if (rc)
        lr_error("cannot delete %zu unlinked inodes: %s (retried at the next mount)", n,
                 lr_strerror(rc));
}

static void reap_queue(fs *f, uint64_t ino)
{
    pthread_mutex_lock(&f->rlock);
    uint64_t *q = f->reaper_started ? lr_grow(f->rq, &f->rcap, f->rn, sizeof(*q), 256) : NULL;
    if (q)
        f->rq = q;
    if (f->reaper_started && f->rn < f->rcap) {
        f->rq[f->rn++] = ino;
        pthread_cond_signal(&f->rcond);
        pthread_mutex_unlock(&f->rlock);
        return;
    }
    pthread_mutex_unlock(&f->rlock);
    reap_batch(f, &ino, 1);
}

static int stage_commit(fs *f, struct fs_node *n);

/* The nodes for which want(node) holds, each with a reference taken under
 * the table mutex, for a reaper walk (commit_old_stages, rechunk_tick):
 * *out (the caller frees it and drops the references). want reads only
 * atomics or fields the table mutex guards. With no memory, the nodes
 * gathered so far: the next walk, a second later, gets the rest. */
static size_t nodes_collect(fs *f, int (*want)(const struct fs_node *), struct fs_node ***out)
{
    struct fs_node **v = NULL;
    size_t n = 0, cap = 0;
    pthread_mutex_lock(&f->tlock);
    for (size_t i = 0; i < f->tabsize; i++) {
        for (struct fs_node *nd = f->tab[i]; nd; nd = nd->next) {
            if (!want(nd))
                continue;
            struct fs_node **nv = lr_grow(v, &cap, n, sizeof(*nv), 16);
            if (!nv)
                goto out;
            v = nv;
            nd->refs++;
            v[n++] = nd;
        }
    }
out:
    pthread_mutex_unlock(&f->tlock);
    *out = v;
    return n;
}

static int node_staged(const struct fs_node *nd)
{
    return __atomic_load_n(&nd->staged, __ATOMIC_RELAXED);
}

/* Commit stages older than FS_STAGE_MAX_AGE_NS, so data written to a file
 * that stays open without further writes does not wait in memory for its
 * close. Runs on the reaper thread about once a second. O(nodes) with a
 * quick check per node. */
static void commit_old_stages(fs *f)
{
    struct fs_node **v;
    size_t n = nodes_collect(f, node_staged, &v);
    uint64_t now = lr_now_mono_ns();
    for (size_t i = 0; i < n; i++) {
        struct fs_node *nd = v[i];
        pthread_rwlock_wrlock(&nd->lock);
        /* A stage being committed in the background is young; one whose
         * background commit failed is retried here. */
        if (!nd->cbusy && (nd->cstage.n || (nd->stage.n && now - nd->stage.born_ns > FS_STAGE_MAX_AGE_NS)))
            stage_commit(f, nd);
        pthread_rwlock_unlock(&nd->lock);
        node_put(f, nd, 1, 0);
    }
    free(v);
}

/* Re-chunk [lo, hi) of inode ino, FS_RECHUNK_TXN_BYTES rewritten per
 * transaction so other writers wait little for the store, until done,
 * until the reaper is told to stop (maint_stop) if walk, or past
 * deadline (monotonic ns; 0: none). A failure (a full disk) leaves the
 * rest as it is: the file is right, only cut less well. */
static void rechunk_range(fs *f, uint64_t ino, uint64_t lo, uint64_t hi, uint64_t nfrag, int walk,
                          uint64_t deadline)
{
    uint64_t start = lr_now_mono_ns(), pos = lo, total = 0;
    int rc = 0;
    while (pos < hi && !(walk && __atomic_load_n(&f->maint_stop, __ATOMIC_RELAXED)) &&
           !(deadline && lr_now_mono_ns() > deadline)) {
        st_txn *t;
        uint64_t next = hi, rw = 0;
        if ((rc = st_txn_begin(f->st, ST_TXN_WRITE, &t)))
            break;
        rc = st_txn_end(t, st_ns_rechunk(t, ino, pos, hi - pos, FS_RECHUNK_TXN_BYTES, &next, &rw));
        if (rc)
            break;
        total += rw;
        pos = LR_MAX(next, pos + 1);
    }
    if (rc && rc != -ENOENT)
        lr_warn("cannot re-chunk inode %llu after %llu small writes: %s (its data is intact)",
                (unsigned long long)ino, (unsigned long long)nfrag, lr_strerror(rc));
    else if (total)
        lr_debug("re-chunked %llu bytes of inode %llu after %llu small writes in %.1f ms%s",
                 (unsigned long long)total, (unsigned long long)ino, (unsigned long long)nfrag,
                 (double)(lr_now_mono_ns() - start) / 1e6, pos < hi ? " (stopped short)" : "");
}

/* Re-chunk the fragments of one node's isolated writes (caller holds a
 * reference) once due: quiet for FS_RECHUNK_IDLE_NS, FS_RECHUNK_FRAGS of
 * them, or the file orphaned (nothing to re-chunk then; the reference
 * goes). Isolated writes committed meanwhile are noted anew and wait
 * for the next tick. */
static void rechunk_node(fs *f, struct fs_node *n)
{
    pthread_mutex_lock(&f->tlock);
    int orphan = n->orphan;
    pthread_mutex_unlock(&f->tlock);
    pthread_rwlock_wrlock(&n->lock);
    uint64_t now = lr_now_mono_ns();
    int due = n->frag_n && (orphan || n->frag_n >= FS_RECHUNK_FRAGS || now - n->frag_ns >= FS_RECHUNK_IDLE_NS);
    uint64_t lo = n->frag_lo, hi = n->frag_hi, nfrag = n->frag_n;
    if (due)
        n->frag_n = 0;
    pthread_rwlock_unlock(&n->lock);
    if (!due)
        return;
    if (!orphan)
        rechunk_range(f, n->ino, lo, hi, nfrag, 1, 0);
    pthread_rwlock_wrlock(&n->lock);
    int drop = !n->frag_n && n->frag_ref;
    if (drop)
        __atomic_store_n(&n->frag_ref, 0, __ATOMIC_RELAXED);
    pthread_rwlock_unlock(&n->lock);
    if (drop)
        node_put(f, n, 1, 0);
}

static int node_fragmented(const struct fs_node *nd)
{
    return __atomic_load_n(&nd->frag_ref, __ATOMIC_RELAXED);
}

/* Re-chunk the files whose isolated writes are due (rechunk_node). Runs
 * on the reaper thread about once a second; O(nodes) with a quick check
 * per node. */
static void rechunk_tick(fs *f)
{
    struct fs_node **v;
    size_t n = nodes_collect(f, node_fragmented, &v);
    for (size_t i = 0; i < n; i++) {
        rechunk_node(f, v[i]);
        node_put(f, v[i], 1, 0);
    }
    free(v);
}

/* The kernel gives a FUSE mount a 128 KiB read-ahead window (its bdi's
 * default) and caps max_readahead in INIT to it, so a 1 MiB read() reaches
 * us as eight 128 KiB READs. Raise the mount's window in sysfs to
 * FS_READAHEAD_KB, once, after INIT has been answered (INIT would cap it
 * again). Needs root; without it, or with a window already larger (set by
 * the administrator), nothing changes. Measured: a cold 1 GiB read of
 * local data 1.0-1.4 -> 2.3-3.2 GB/s, of a peer's data +25 %
 * (docs/PERFORMANCE.md). */
#define FS_READAHEAD_KB 4096
static int mount_devno(const char *mp, unsigned *maj, unsigned *min)
{
    FILE *fp = fopen("/proc/self/mountinfo", "re");
    if (!fp)
        return -errno;
    char *line = NULL;
    size_t cap = 0;
    int found = -ENOENT;
    struct lr_mount m;
    while (lr_mountinfo_next(fp, &line, &cap, &m)) {
        if (!strcmp(m.point, mp)) { /* the last match is the mount on top */
            *maj = m.major;
            *min = m.minor;
            found = 0;
        }
    }
    free(line);
    fclose(fp);
    return found;
}

static void raise_readahead(fs *f)
{
    uint64_t init = __atomic_load_n(&f->init_ns, __ATOMIC_ACQUIRE);
    if (f->ra_done || !init || lr_now_mono_ns() - init < 100000000ull)
        return;
    f->ra_done = 1;
    unsigned maj = 0, min = 0;
    char path[96];
    if (mount_devno(f->mountpoint, &maj, &min))
        return;
    snprintf(path, sizeof(path), "/sys/class/bdi/%u:%u/read_ahead_kb", maj, min);
    FILE *fp = fopen(path, "r+e");
    unsigned cur = 0;
    if (!fp || fscanf(fp, "%u", &cur) != 1 || cur >= FS_READAHEAD_KB) {
        if (fp)
            fclose(fp);
        return;
    }
    rewind(fp);
    int ok = fprintf(fp, "%u\n", FS_READAHEAD_KB) > 0;
    ok &= fclose(fp) == 0;
    lr_debug("read-ahead of %s: %u -> %u KiB%s", f->mountpoint, cur, FS_READAHEAD_KB, ok ? "" : " failed");
}

/* Compact the change log (replica.h, "LOG COMPACTION") once it holds
 * FS_LOG_COMPACT_MIN records and twice what the last pass left; looked at
 * every FS_LOG_CHECK_NS. Reaper thread. */
static void log_compact_tick(fs *f)
{
    uint64_t now = lr_now_mono_ns(), n;
    if (now < f->log_check_ns)
        return;
    f->log_check_ns = now + FS_LOG_CHECK_NS;
    st_txn *t;
    if (st_txn_begin(f->st, ST_TXN_READ, &t))
        return;
    int rc = st_log_count(t, &n);
    st_txn_abort(t);
    if (rc || (!f->log_due && (n < FS_LOG_COMPACT_MIN || n < 2 * f->log_kept)))
        return;
    f->log_due = 0;
    struct st_log_compact_stats cs;
    rc = st_log_compact(f->st, 0, &cs);
    f->log_kept = n - LR_MIN(n, cs.dropped);
    if (rc)
        lr_warn("change log compaction failed after dropping %llu of %llu records: %s",
                (unsigned long long)cs.dropped, (unsigned long long)n, lr_strerror(rc));
    else
        lr_debug("change log: dropped %llu of %llu records in %.0f ms%s", (unsigned long long)cs.dropped,
                 (unsigned long long)n, (double)(lr_now_mono_ns() - now) / 1e6,
                 cs.partial ? " (stopped at the file limit)" : "");
}

/* Give deleted data's space back while mounted (the compactor thread).
 * LMDB 0.9 keeps the pages of deleted data on its free list for good and
 * reuses them oldest first, so after a large delete every commit edits a
 * long free list (docs/PERFORMANCE.md, "Online compaction"), and the disk
 * space never comes back. Once at least FS_COMPACT_MIN_FREE and half of
 * data.mdb are free (looked at every FS_COMPACT_CHECK_NS), the store is
 * compacted in place (st_compact_open) at the next lull: no commit for
 * FS_COMPACT_QUIET_NS. A disk without room for the copy puts it off
 * until the next look. The copy is made while requests go on and swapped
 * in if none committed meanwhile; otherwise the next lull after ten times
 * the copy's time is tried, so a busy store is not copied over and over. */
static void compact_tick(fs *f)
{
    uint64_t now = lr_now_mono_ns();
    if (now < f->compact_check_ns)
        return;
    if (!f->compact_due) {
        f->compact_check_ns = now + FS_COMPACT_CHECK_NS;
        struct st_space sp;
        if (st_space(f->st, &sp) || sp.free_bytes < FS_COMPACT_MIN_FREE || sp.free_bytes * 2 < sp.file_bytes)
            return;
        f->compact_due = 1;
        f->compact_commits = st_commits(f->st);
        f->compact_check_ns = now + FS_COMPACT_QUIET_NS;
        return;
    }
    uint64_t c = st_commits(f->st);
    if (c != f->compact_commits) { /* not a lull: look again shortly */
        f->compact_commits = c;
        f->compact_check_ns = now + FS_COMPACT_QUIET_NS;
        return;
    }
    uint64_t before, after;
    int rc = st_compact_open(f->st, FS_COMPACT_WAIT_MS, &before, &after);
    uint64_t took = lr_now_mono_ns() - now;
    f->compact_due = 0;
    f->compact_check_ns = now + FS_COMPACT_CHECK_NS;
    if (rc != -ENOSPC)
        f->compact_nodisk = 0;
    if (rc == 0) {
        lr_info("store compacted: data.mdb %.1f -> %.1f MiB in %.0f ms", (double)before / 1048576,
                (double)after / 1048576, (double)took / 1e6);
    } else if (rc == -ENOSPC) {
        /* Mostly found before a copy is begun (st_compact_open looks at
         * the disk first): look again as often as usual, so that the
         * compaction follows soon once room comes back. */
        if (!f->compact_nodisk)
            lr_info("store compaction put off: the disk has no room for a copy of the data in use "
                    "and 64 MiB besides (data.mdb %.1f MiB)", (double)before / 1048576);
        f->compact_nodisk = 1;
    } else if (rc == -EAGAIN || rc == -EBUSY) {
        lr_debug("store compaction put off after %.0f ms (%s)", (double)took / 1e6,
                 rc == -EAGAIN ? "changes during the copy" : "another process has the store open");
        f->compact_due = 1;
        f->compact_commits = st_commits(f->st);
        f->compact_check_ns = now + (rc == -EBUSY ? 1000000000ull : LR_MAX(FS_COMPACT_QUIET_NS, 10 * took));
    } else if (rc == -ECANCELED || rc == -EROFS) {
        f->compact_check_ns = UINT64_MAX; /* fs_free is stopping us, or a read-only store: never */
    } else {
        lr_warn("cannot compact the store (data.mdb %.1f MiB): %s; tried again in 10 minutes",
                (double)before / 1048576, lr_strerror(rc));
        f->compact_check_ns = now + FS_COMPACT_RETRY_NS;
    }
}

static void *compactor_main(void *arg)
{
    fs *f = arg;
    while (!__atomic_load_n(&f->compactor_stop, __ATOMIC_ACQUIRE)) {
        usleep(FS_COMPACT_QUIET_NS / 1000);
        if (!__atomic_load_n(&f->compactor_stop, __ATOMIC_ACQUIRE))
            compact_tick(f);
    }
    return NULL;
}

/* Forget the tombstones of files deleted longer ago than the store's
 * forget period (st_forget_after, set by fs_new)
 * (replica.h, "FORGETTING DELETIONS"), then have the log compacted so the
 * records naming them go too. Looked at every 1/16 of that period (a
 * walk of every tombstone, so not too often), at least every
 * FS_FORGET_CHECK_MAX_NS and at most every second. Reaper thread. */
static void forget_tick(fs *f)
{
    uint64_t now = lr_now_mono_ns();
    int64_t forget_s = st_forget_after(f->st);
    if (forget_s <= 0 || now < f->forget_check_ns)
        return;
    uint64_t period = (uint64_t)forget_s * (1000000000ull / 16);
    f->forget_check_ns = now + LR_MIN(LR_MAX(period, 1000000000ull), FS_FORGET_CHECK_MAX_NS);
    struct timespec wall;
    clock_gettime(CLOCK_REALTIME, &wall);
    struct st_tomb_forget_stats ts;
    int rc = st_tomb_forget(f->st, (int64_t)wall.tv_sec - forget_s, &ts);
    if (rc)
        lr_warn("forgetting old deletions failed after %llu: %s", (unsigned long long)ts.forgotten,
                lr_strerror(rc));
    if (ts.forgotten) {
        lr_debug("forgot %llu of %llu deleted files (deleted over %lld s ago)",
                 (unsigned long long)ts.forgotten, (unsigned long long)ts.scanned, (long long)forget_s);
        f->log_due = 1;
        f->log_check_ns = 0;
    }
}

static void *reaper_main(void *arg)
{
    fs *f = arg;
    uint64_t *batch = NULL;
    size_t cap = 0;
    pthread_mutex_lock(&f->rlock);
    for (;;) {
        while (f->rn == 0 && !f->reaper_stop) {
            struct timespec dl;
            lr_deadline_in(&dl, 1000000000ull);
            if (pthread_cond_timedwait(&f->rcond, &f->rlock, &dl) == ETIMEDOUT) {
                int walk = !f->maint_stop;
                f->maint_busy = walk;
                pthread_mutex_unlock(&f->rlock);
                if (walk) {
                    commit_old_stages(f);
                    rechunk_tick(f);
                    pthread_mutex_lock(&f->rlock);
                    f->maint_busy = 0;
                    pthread_cond_broadcast(&f->rcond);
                    pthread_mutex_unlock(&f->rlock);
                }
                raise_readahead(f);
                forget_tick(f);
                log_compact_tick(f);
                pthread_mutex_lock(&f->rlock);
            }
        }
        if (f->rn == 0 && f->reaper_stop)
            break;
        if (!f->reaper_stop) {
            /* Let a burst of unlinks gather so they are deleted in one
             * transaction instead of one commit each; nothing waits for
             * the space but a nearly full disk, and only this long. */
            pthread_mutex_unlock(&f->rlock);
            usleep(FS_REAP_GATHER_US);
            pthread_mutex_lock(&f->rlock);
        }
        if (cap < f->rn) {
            uint64_t *b = realloc(batch, f->rn * sizeof(*b));
            if (!b) {
                pthread_mutex_unlock(&f->rlock);
                usleep(10000);
                pthread_mutex_lock(&f->rlock);
                continue;
            }
            batch = b;
            cap = f->rn;
        }
        size_t n = f->rn;
        memcpy(batch, f->rq, n * sizeof(*batch));
        f->rn = 0;
        pthread_mutex_unlock(&f->rlock);
        reap_batch(f, batch, n);
        forget_tick(f);
        log_compact_tick(f); /* unlinks that never pause for a second */
        pthread_mutex_lock(&f->rlock);
    }
    pthread_mutex_unlock(&f->rlock);
    free(batch);
    return NULL;
}

/* ---- staging commit --------------------------------------------------------- */

static void wstat_init(struct st_wstat *ws)
{
    ws->isolated = 0;
    ws->lo = UINT64_MAX;
    ws->hi = 0;
}

/* Commit one stage's ranges; small ones over local data are written
 * isolated (ST_WRITE_ISOLATE, re-chunked later by the reaper), counted
 * into *ws. */
static int ranges_write(st_txn *t, uint64_t ino, const struct fs_stage *sg, uint64_t size,
                        const struct timespec *mtime, struct st_wstat *ws)
{
    if (sg->n == 0)
        return 0;
    struct st_wrange *w = malloc(sg->n * sizeof(*w));
    const struct fs_srange **r = malloc(sg->n * sizeof(*r));
    int rc = -ENOMEM;
    if (w && r) {
        fs_stage_sorted(sg, r);
        for (size_t i = 0; i < sg->n; i++)
            w[i] = (struct st_wrange){ .off = r[i]->off, .len = r[i]->len, .data = r[i]->data };
        struct st_wstat one;
        rc = st_ns_write(t, ino, w, sg->n, size, mtime, ST_WRITE_ISOLATE, &one, NULL);
        if (rc == 0 && one.isolated) {
            ws->isolated += one.isolated;
            ws->lo = LR_MIN(ws->lo, one.lo);
            ws->hi = LR_MAX(ws->hi, one.hi);
        }
    }
    free(r);
    free(w);
    return rc;
}

/* After a commit that wrote ws->isolated ranges isolated: remember their
 * fragments for rechunk_tick. Caller holds n->lock for writing. */
static void frag_note(fs *f, struct fs_node *n, const struct st_wstat *ws)
{
    if (!ws->isolated)
        return;
    if (!n->frag_n) {
        n->frag_lo = ws->lo;
        n->frag_hi = ws->hi;
    } else {
        n->frag_lo = LR_MIN(n->frag_lo, ws->lo);
        n->frag_hi = LR_MAX(n->frag_hi, ws->hi);
    }
    n->frag_n += ws->isolated;
    n->frag_ns = lr_now_mono_ns();
    if (!n->frag_ref) {
        __atomic_store_n(&n->frag_ref, 1, __ATOMIC_RELAXED);
        pthread_mutex_lock(&f->tlock);
        n->refs++; /* the reaper's, dropped once re-chunked */
        pthread_mutex_unlock(&f->tlock);
    }
}

/* Write n's staged ranges into txn: a cstage left by a failed background
 * commit first, then the newer stage over it. Caller holds n->lock for
 * writing with no background commit in flight (node_wait_idle), and calls
 * stage_drop after the transaction committed. */
static int stage_commit_txn(struct fs_node *n, st_txn *t, struct st_wstat *ws)
{
    wstat_init(ws);
    int rc = ranges_write(t, n->ino, &n->cstage, n->csize, &n->cmtime, ws);
    return rc ? rc : ranges_write(t, n->ino, &n->stage, n->size, &n->mtime, ws);
}

/* Forget n's staged bytes (committed, or overwritten by a truncate). */
static void stage_drop(struct fs_node *n)
{
    fs_stage_clear(&n->stage);
    fs_stage_clear(&n->cstage);
    n->cerr = 0;
    __atomic_store_n(&n->staged, 0, __ATOMIC_RELAXED);
}

/* Wait until no background commit of n is in flight. Called and returns
 * with n->lock held for writing; drops it while waiting, so the stage may
 * have changed on return. */
static void node_wait_idle(fs *f, struct fs_node *n)
{
    while (n->cbusy) {
        pthread_rwlock_unlock(&n->lock);
        pthread_mutex_lock(&f->cmu);
        while (n->cbusy)
            pthread_cond_wait(&f->cdone, &f->cmu);
        pthread_mutex_unlock(&f->cmu);
        pthread_rwlock_wrlock(&n->lock);
    }
}

/* Commit n's stages in their own transaction; caller holds n->lock
 * (write) and no background commit is in flight. */
static int stage_commit(fs *f, struct fs_node *n)
{
    if (n->stage.n == 0 && n->cstage.n == 0)
        return 0;
    st_txn *t;
    struct st_wstat ws;
    int rc = st_txn_begin(f->st, ST_TXN_WRITE, &t);
    if (rc == 0)
        rc = st_txn_end(t, stage_commit_txn(n, t, &ws));
    if (rc == 0) {
        stage_drop(n);
        frag_note(f, n, &ws);
    } else
        lr_error("cannot commit %zu staged bytes of inode %llu: %s", n->stage.bytes + n->cstage.bytes,
                 (unsigned long long)n->ino, lr_strerror(rc));
    return rc;
}

/* Hand n's full stage to the committer (caller holds n->lock for writing,
 * n->cbusy and n->cerr are 0, cstage is empty). The emptied cstage,
 * with the spare buffer of its last commit, becomes the new stage. */
static void stage_hand_off(fs *f, struct fs_node *n)
{
    struct fs_stage tmp = n->cstage;
    n->cstage = n->stage;
    n->stage = tmp;
    n->csize = n->size;
    n->cmtime = n->mtime;
    pthread_mutex_lock(&f->tlock);
    n->refs++; /* the committer's, dropped when it is done */
    pthread_mutex_unlock(&f->tlock);
    pthread_mutex_lock(&f->cmu);
    n->cbusy = 1;
    n->cnext = NULL;
    if (f->cq_tail)
        f->cq_tail->cnext = n;
    else
        f->cq_head = n;
    f->cq_tail = n;
    pthread_cond_signal(&f->cwork);
    pthread_mutex_unlock(&f->cmu);
}

/* The committer thread: commits handed-off stages in order. It reads
 * cstage without n->lock (nobody else touches it while cbusy; readers
 * only overlay it), then takes n->lock to empty it or, on failure, to
 * keep it with cerr set for the next write/flush/fsync/close to retry and
 * report. */
static void *committer_main(void *arg)
{
    fs *f = arg;
    pthread_mutex_lock(&f->cmu);
    for (;;) {
        while (!f->cq_head && !f->committer_stop)
            pthread_cond_wait(&f->cwork, &f->cmu);
        struct fs_node *n = f->cq_head;
        if (!n)
            break;
        f->cq_head = n->cnext;
        if (!f->cq_head)
            f->cq_tail = NULL;
        pthread_mutex_unlock(&f->cmu);

        st_txn *t;
        struct st_wstat ws;
        wstat_init(&ws);
        int rc = st_txn_begin(f->st, ST_TXN_WRITE, &t);
        if (rc == 0)
            rc = st_txn_end(t, ranges_write(t, n->ino, &n->cstage, n->csize, &n->cmtime, &ws));
        pthread_rwlock_wrlock(&n->lock);
        if (rc == 0) {
            fs_stage_clear(&n->cstage);
            frag_note(f, n, &ws);
        } else {
            lr_error("cannot commit %zu staged bytes of inode %llu: %s", n->cstage.bytes,
                     (unsigned long long)n->ino, lr_strerror(rc));
            n->cerr = rc;
        }
        __atomic_store_n(&n->staged, n->stage.n > 0 || n->cstage.n > 0, __ATOMIC_RELAXED);
        pthread_mutex_lock(&f->cmu);
        n->cbusy = 0;
        pthread_cond_broadcast(&f->cdone);
        pthread_mutex_unlock(&f->cmu);
        pthread_rwlock_unlock(&n->lock);
        node_put(f, n, 1, 0);
        pthread_mutex_lock(&f->cmu);
    }
    pthread_mutex_unlock(&f->cmu);
    return NULL;
}

/* ---- helpers -------------------------------------------------------------- */

static fs *req_fs(fuse_req_t req) { return fuse_req_userdata(req); }

/* A landro error as an errno for the kernel. */
static int kerr(int rc)
{
    if (rc == 0)
        return 0;
    if (rc < 0 && rc > LR_EBASE)
        return -rc;
    return EIO;
}

static void reply_err(fuse_req_t req, int rc)
{
    fuse_reply_err(req, kerr(rc));
}

/* st_blocks: the bytes extents map (holes do not count, as on a local
 * file system, so du and cp --sparse see them), read in t or, if t is
 * NULL, in a read transaction of its own. Falls back to the size. */
static blkcnt_t stat_blocks(fs *f, st_txn *t, const struct st_inode *in)
{
    uint64_t bytes = in->size;
    if (S_ISREG(in->mode) && in->size > 0) {
        st_txn *own = NULL;
        if (t || st_txn_begin(f->st, ST_TXN_READ, &own) == 0) {
            uint64_t b;
            if (st_file_allocated(t ? t : own, in->ino, &b) == 0)
                bytes = b;
            if (own)
                st_txn_abort(own);
        }
    }
    return (blkcnt_t)((bytes + 511) / 512);
}

static void to_stat(fs *f, st_txn *t, const struct st_inode *in, struct stat *s)
{
    memset(s, 0, sizeof(*s));
    s->st_ino = in->ino;
    s->st_mode = in->mode;
    s->st_nlink = in->nlink;
    s->st_uid = in->uid;
    s->st_gid = in->gid;
    s->st_rdev = in->rdev;
    s->st_size = S_ISDIR(in->mode) ? 4096 : (off_t)in->size;
    s->st_blksize = 4096;
    s->st_blocks = S_ISDIR(in->mode) ? 8 : stat_blocks(f, t, in);
    s->st_atim = in->atime;
    s->st_mtim = in->mtime;
    s->st_ctim = in->ctime;
}

/* Apply the in-memory staged size/mtime of ino, if any, to *s. */
static void stat_overlay(fs *f, uint64_t ino, struct stat *s)
{
    pthread_mutex_lock(&f->tlock);
    struct fs_node *n = node_find_locked(f, ino, 0);
    if (n)
        n->refs++;
    pthread_mutex_unlock(&f->tlock);
    if (!n)
        return;
    pthread_rwlock_rdlock(&n->lock);
    if (n->stage.n || n->cstage.n) {
        /* Blocks: the committed extents' (from to_stat) plus the staged
         * bytes, which may overlap them: at most the size. */
        blkcnt_t staged = (blkcnt_t)((n->stage.bytes + n->cstage.bytes + 511) / 512);
        s->st_size = (off_t)n->size;
        s->st_blocks = LR_MIN(s->st_blocks + staged, (blkcnt_t)((n->size + 511) / 512));
        s->st_mtim = n->mtime;
        s->st_ctim = n->mtime;
    }
    pthread_rwlock_unlock(&n->lock);
    node_put(f, n, 1, 0);
}

static int get_inode(fs *f, uint64_t ino, struct st_inode *in)
{
    st_txn *t;
    int rc = st_txn_begin(f->st, ST_TXN_READ, &t);
    if (rc)
        return rc;
    rc = st_inode_get(t, ino, in);
    st_txn_abort(t);
    return rc;
}

static void fill_entry(fs *f, st_txn *t, const struct st_inode *in, struct fuse_entry_param *e)
{
    memset(e, 0, sizeof(*e));
    e->ino = in->ino;
    e->generation = 1;
    to_stat(f, t, in, &e->attr);
    stat_overlay(f, in->ino, &e->attr);
    e->attr_timeout = FS_TIMEOUT_S;
    e->entry_timeout = FS_TIMEOUT_S;
}

/* The generation to compare against before a reply (see struct fs). */
static uint64_t peer_gen(fs *f)
{
    return __atomic_load_n(&f->peer_gen, __ATOMIC_ACQUIRE);
}

/* Take gen_lock for a reply built from a snapshot taken at generation g:
 * returns the entry timeout to give (0 if peers changed things since). */
static double gen_reply_begin(fs *f, uint64_t g)
{
    pthread_rwlock_rdlock(&f->gen_lock);
    return peer_gen(f) == g ? FS_TIMEOUT_S : 0;
}

static void gen_reply_end(fs *f)
{
    pthread_rwlock_unlock(&f->gen_lock);
}

void fs_peer_changed(fs *f)
{
    pthread_rwlock_wrlock(&f->gen_lock);
    __atomic_store_n(&f->peer_gen, f->peer_gen + 1, __ATOMIC_RELEASE);
    pthread_rwlock_unlock(&f->gen_lock);
}

/* Reply with an entry, counting the kernel's new lookup; timeout as
 * gen_reply_begin says (FS_TIMEOUT_S for the results of local changes). */
static void reply_entry_timeout(fuse_req_t req, const struct st_inode *in, double timeout)
{
    fs *f = req_fs(req);
    struct fuse_entry_param e;
    fill_entry(f, NULL, in, &e);
    e.attr_timeout = e.entry_timeout = timeout;
    if (node_lookup_inc(f, in->ino)) {
        fuse_reply_err(req, ENOMEM);
        return;
    }
    if (fuse_reply_entry(req, &e) != 0)
        node_forget(f, in->ino, 1);
}

static void reply_entry(fuse_req_t req, const struct st_inode *in)
{
    reply_entry_timeout(req, in, FS_TIMEOUT_S);
}

/* ---- lookup, forget, getattr, setattr ------------------------------------------ */

static void op_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
{
    fs *f = req_fs(req);
    st_txn *t;
    struct st_dirent de;
    struct st_inode in;
    uint64_t g = peer_gen(f); /* before the snapshot */
    int rc = st_txn_begin(f->st, ST_TXN_READ, &t);
    if (rc)
        { reply_err(req, rc); return; }
    rc = st_dirent_get(t, parent, name, strlen(name), &de);
    if (rc == 0) {
        rc = st_inode_get(t, de.child, &in);
        if (rc == -ENOENT)
            rc = LR_ECORRUPT;
    }
    st_txn_abort(t);
    if (rc == -ENOENT) {
        struct fuse_entry_param e = { .ino = 0, .entry_timeout = gen_reply_begin(f, g) };
        fuse_reply_entry(req, &e);
        gen_reply_end(f);
        return;
    }
    if (rc) {
        if (rc != -ENAMETOOLONG && rc != -EINVAL)
            lr_error("cannot look up '%s' in directory %llu: %s", name, (unsigned long long)parent,
                     lr_strerror(rc));
        { reply_err(req, rc); return; }
    }
    reply_entry_timeout(req, &in, gen_reply_begin(f, g));
    gen_reply_end(f);
}

static void op_forget(fuse_req_t req, fuse_ino_t ino, uint64_t nlookup)
{
    node_forget(req_fs(req), ino, nlookup);
    fuse_reply_none(req);
}

static void op_forget_multi(fuse_req_t req, size_t count, struct fuse_forget_data *fd)
{
    for (size_t i = 0; i < count; i++)
        node_forget(req_fs(req), fd[i].ino, fd[i].nlookup);
    fuse_reply_none(req);
}

static void op_getattr(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
    fs *f = req_fs(req);
    struct st_inode in;
    int rc = get_inode(f, ino, &in);
    if (rc)
        { reply_err(req, rc); return; }
    struct stat s;
    to_stat(f, NULL, &in, &s);
    stat_overlay(f, ino, &s);
    fuse_reply_attr(req, &s, FS_TIMEOUT_S);
}

static void op_setattr(fuse_req_t req, fuse_ino_t ino, struct stat *attr, int to_set,
                       struct fuse_file_info *fi)
{
    fs *f = req_fs(req);
    unsigned valid = 0;
    struct st_ns_attr a = { 0 };
    if (to_set & FUSE_SET_ATTR_MODE) { valid |= ST_NS_SET_MODE; a.mode = attr->st_mode & 07777; }
    if (to_set & FUSE_SET_ATTR_UID) { valid |= ST_NS_SET_UID; a.uid = attr->st_uid; }
    if (to_set & FUSE_SET_ATTR_GID) { valid |= ST_NS_SET_GID; a.gid = attr->st_gid; }
    if (to_set & FUSE_SET_ATTR_SIZE) { valid |= ST_NS_SET_SIZE; a.size = (uint64_t)attr->st_size; }
    if (to_set & FUSE_SET_ATTR_ATIME_NOW) valid |= ST_NS_SET_ATIME_NOW;
    else if (to_set & FUSE_SET_ATTR_ATIME) { valid |= ST_NS_SET_ATIME; a.atime = attr->st_atim; }
    if (to_set & FUSE_SET_ATTR_MTIME_NOW) valid |= ST_NS_SET_MTIME_NOW;
    else if (to_set & FUSE_SET_ATTR_MTIME) { valid |= ST_NS_SET_MTIME; a.mtime = attr->st_mtim; }
    if (to_set & FUSE_SET_ATTR_CTIME) { valid |= ST_NS_SET_CTIME; a.ctime = attr->st_ctim; }
    if ((to_set & FUSE_SET_ATTR_SIZE) && attr->st_size < 0)
        { fuse_reply_err(req, EINVAL); return; }

    struct fs_node *n = node_get(f, ino);
    if (!n)
        { fuse_reply_err(req, ENOMEM); return; }
    /* Staged bytes commit first, in the same transaction, so a truncate or
     * an explicit mtime lands after them. */
    pthread_rwlock_wrlock(&n->lock);
    node_wait_idle(f, n);
    st_txn *t;
    struct st_inode in;
    struct st_wstat ws;
    int rc = st_txn_begin(f->st, ST_TXN_WRITE, &t);
    if (rc == 0) {
        rc = stage_commit_txn(n, t, &ws);
        if (rc == 0)
            rc = st_ns_setattr(t, ino, valid, &a, &in);
        rc = st_txn_end(t, rc);
    }
    if (rc == 0) {
        stage_drop(n);
        frag_note(f, n, &ws);
    }
    pthread_rwlock_unlock(&n->lock);
    node_put(f, n, 1, 0);
    if (rc) {
        if (rc != -EINVAL && rc != -EISDIR && rc != -ENOENT)
            lr_error("cannot change attributes of inode %llu: %s", (unsigned long long)ino, lr_strerror(rc));
        { reply_err(req, rc); return; }
    }
    struct stat s;
    to_stat(f, NULL, &in, &s);
    fuse_reply_attr(req, &s, FS_TIMEOUT_S);
}

/* ---- namespace ------------------------------------------------------------- */

static void do_create(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode,
                      dev_t rdev, const char *target, struct st_inode *out, int *rcp)
{
    fs *f = req_fs(req);
    const struct fuse_ctx *ctx = fuse_req_ctx(req);
    st_txn *t;
    int rc = st_txn_begin(f->st, ST_TXN_WRITE, &t);
    if (rc == 0) {
        rc = st_ns_create(t, parent, name, strlen(name), mode, ctx->uid, ctx->gid, rdev,
                          target, target ? strlen(target) : 0, out);
        rc = st_txn_end(t, rc);
    }
    /* Ordinary POSIX refusals (-EEXIST, ...) only go to the caller. */
    if (rc && (rc <= LR_EBASE || rc == -ENOSPC || rc == -EIO))
        lr_error("cannot create '%s' in directory %llu: %s", name, (unsigned long long)parent,
                 lr_strerror(rc));
    *rcp = rc;
}

static void op_mknod(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode, dev_t rdev)
{
    struct st_inode in;
    int rc;
    if (S_ISDIR(mode) || S_ISLNK(mode))
        { fuse_reply_err(req, EINVAL); return; }
    do_create(req, parent, name, mode, rdev, NULL, &in, &rc);
    if (rc)
        { reply_err(req, rc); return; }
    reply_entry(req, &in);
}

static void op_mkdir(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode)
{
    struct st_inode in;
    int rc;
    do_create(req, parent, name, S_IFDIR | (mode & 07777), 0, NULL, &in, &rc);
    if (rc)
        { reply_err(req, rc); return; }
    reply_entry(req, &in);
}

static void op_symlink(fuse_req_t req, const char *link, fuse_ino_t parent, const char *name)
{
    struct st_inode in;
    int rc;
    do_create(req, parent, name, S_IFLNK | 0777, 0, link, &in, &rc);
    if (rc)
        { reply_err(req, rc); return; }
    reply_entry(req, &in);
}

static void op_link(fuse_req_t req, fuse_ino_t ino, fuse_ino_t newparent, const char *newname)
{
    fs *f = req_fs(req);
    st_txn *t;
    struct st_inode in;
    int rc = st_txn_begin(f->st, ST_TXN_WRITE, &t);
    if (rc == 0)
        rc = st_txn_end(t, st_ns_link(t, ino, newparent, newname, strlen(newname), &in));
    if (rc)
        { reply_err(req, rc); return; }
    reply_entry(req, &in);
}

static void op_unlink(fuse_req_t req, fuse_ino_t parent, const char *name)
{
    fs *f = req_fs(req);
    st_txn *t;
    uint64_t ino = 0;
    int orphan = 0;
    int rc = st_txn_begin(f->st, ST_TXN_WRITE, &t);
    if (rc == 0)
        rc = st_txn_end(t, st_ns_unlink(t, parent, name, strlen(name), &ino, &orphan));
    if (rc == 0 && orphan)
        node_orphaned(f, ino);
    reply_err(req, rc);
}

static void op_rmdir(fuse_req_t req, fuse_ino_t parent, const char *name)
{
    fs *f = req_fs(req);
    st_txn *t;
    uint64_t ino = 0;
    int rc = st_txn_begin(f->st, ST_TXN_WRITE, &t);
    if (rc == 0)
        rc = st_txn_end(t, st_ns_rmdir(t, parent, name, strlen(name), &ino));
    if (rc == 0)
        node_orphaned(f, ino);
    reply_err(req, rc);
}

static void op_rename(fuse_req_t req, fuse_ino_t parent, const char *name, fuse_ino_t newparent,
                      const char *newname, unsigned int flags)
{
    fs *f = req_fs(req);
    unsigned nf = 0;
    if (flags & ~(unsigned)(RENAME_NOREPLACE | RENAME_EXCHANGE))
        { fuse_reply_err(req, EINVAL); return; }
    if (flags & RENAME_NOREPLACE)
        nf |= ST_NS_NOREPLACE;
    if (flags & RENAME_EXCHANGE)
        nf |= ST_NS_EXCHANGE;
    st_txn *t;
    uint64_t orphan = 0;
    int rc = st_txn_begin(f->st, ST_TXN_WRITE, &t);
    if (rc == 0)
        rc = st_txn_end(t, st_ns_rename(t, parent, name, strlen(name), newparent, newname,
                                      strlen(newname), nf, &orphan));
    if (rc == 0 && orphan)
        node_orphaned(f, orphan);
    reply_err(req, rc);
}

/* A symlink's target is stored like file data, as a chunk: on a peer that
 * never read it the chunk is not here yet, and readlink fetches it like a
 * read does (the reply is deferred; no worker waits). */
struct deferred_link {
    fs *f;
    fuse_req_t req;
    uint64_t ino;
    st_hash want;
    int rounds;
};

static void link_fetched(void *ctx, int err);

/* Answer readlink of ino from the store: 0 once answered (target or
 * error), 1 if a chunk of the target is held only by peers (*want). */
static int readlink_try(fs *f, fuse_req_t req, uint64_t ino, st_hash *want)
{
    st_txn *t;
    struct st_inode in;
    char buf[4097];
    int rc = st_txn_begin(f->st, ST_TXN_READ, &t);
    if (rc)
        { reply_err(req, rc); return 0; }
    rc = st_inode_get(t, ino, &in);
    if (rc == 0 && !S_ISLNK(in.mode))
        rc = -EINVAL;
    if (rc == 0 && in.size > 4096)
        rc = LR_ECORRUPT;
    size_t pos = 0;
    int missing = 0;
    while (rc == 0 && !missing && pos < in.size) {
        struct st_span sp[16];
        size_t n = 0;
        rc = st_file_read(t, ino, pos, (size_t)in.size - pos, sp, 16, &n);
        for (size_t i = 0; rc == 0 && !missing && i < n; i++) {
            if (sp[i].kind == ST_SPAN_DATA)
                memcpy(buf + pos, sp[i].data, sp[i].len);
            else if (sp[i].kind == ST_SPAN_HOLE)
                memset(buf + pos, 0, sp[i].len);
            else {
                *want = sp[i].hash;
                missing = 1;
            }
            pos += sp[i].len;
        }
        if (n == 0 && rc == 0)
            rc = LR_ECORRUPT;
    }
    st_txn_abort(t);
    if (missing)
        return 1;
    if (rc) {
        if (rc != -EINVAL)
            lr_error("cannot read symlink inode %llu: %s", (unsigned long long)ino, lr_strerror(rc));
        reply_err(req, rc);
        return 0;
    }
    buf[in.size] = '\0';
    fuse_reply_readlink(req, buf);
    return 0;
}

/* Fetch d->want for d's readlink; d is link_fetched's from then on. */
static void fetch_for_link(struct deferred_link *d)
{
    int rc = d->f->sync ? fs_sync_fetch(d->f->sync, &d->want, link_fetched, d) : -ENOTCONN;
    if (rc == 0)
        return;
    lr_error("cannot read symlink inode %llu: its target is held only by a peer and %s",
             (unsigned long long)d->ino, d->f->sync ? lr_strerror(rc) : "this mount has no network");
    fuse_reply_err(d->req, EIO);
    free(d);
}

static void link_fetched(void *ctx, int err)
{
    struct deferred_link *d = ctx;
    if (err) {
        lr_error("cannot read symlink inode %llu: fetching its target from peers failed: %s",
                 (unsigned long long)d->ino, lr_strerror(err));
        fuse_reply_err(d->req, EIO);
        free(d);
        return;
    }
    /* a target is at most 4 KiB: one chunk, but allow for a few rounds */
    if (readlink_try(d->f, d->req, d->ino, &d->want) == 1) {
        if (++d->rounds < 8) {
            fetch_for_link(d);
            return;
        }
        lr_error("cannot read symlink inode %llu: its chunk keeps vanishing", (unsigned long long)d->ino);
        fuse_reply_err(d->req, EIO);
    }
    free(d);
}

static void op_readlink(fuse_req_t req, fuse_ino_t ino)
{
    fs *f = req_fs(req);
    st_hash want;
    if (readlink_try(f, req, ino, &want) == 0)
        return;
    struct deferred_link *d = calloc(1, sizeof(*d));
    if (!d)
        { fuse_reply_err(req, ENOMEM); return; }
    d->f = f;
    d->req = req;
    d->ino = ino;
    d->want = want;
    fetch_for_link(d);
}

/* ---- files ----------------------------------------------------------------- */

static struct fs_file *file_new(fs *f, uint64_t ino, int flags)
{
    struct fs_file *h = calloc(1, sizeof(*h));
    if (!h)
        return NULL;
    h->node = node_get(f, ino);
    if (!h->node) {
        free(h);
        return NULL;
    }
    h->flags = flags;
    return h;
}

static void file_free(fs *f, struct fs_file *h)
{
    node_put(f, h->node, 1, 0);
    free(h);
}

/* Truncate to 0 for O_TRUNC: drop staged bytes, then set the size. */
static int truncate_zero(fs *f, struct fs_node *n)
{
    pthread_rwlock_wrlock(&n->lock);
    node_wait_idle(f, n);
    stage_drop(n);
    st_txn *t;
    struct st_ns_attr a = { .size = 0 };
    int rc = st_txn_begin(f->st, ST_TXN_WRITE, &t);
    if (rc == 0)
        rc = st_txn_end(t, st_ns_setattr(t, n->ino, ST_NS_SET_SIZE, &a, NULL));
    pthread_rwlock_unlock(&n->lock);
    return rc;
}

static void op_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
    fs *f = req_fs(req);
    struct fs_file *h = file_new(f, ino, fi->flags);
    if (!h)
        { fuse_reply_err(req, ENOMEM); return; }
    if ((fi->flags & O_TRUNC) && (fi->flags & O_ACCMODE) != O_RDONLY) {
        int rc = truncate_zero(f, h->node);
        if (rc) {
            file_free(f, h);
            { reply_err(req, rc); return; }
        }
    }
    fi->fh = (uintptr_t)h;
    /* The page cache stays valid across opens: every change made here goes
     * through the kernel, and peers' changes are invalidated explicitly
     * (fs_inval_inode). */
    fi->keep_cache = 1;
    if (fuse_reply_open(req, fi) != 0)
        file_free(f, h);
}

static void op_create(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode,
                      struct fuse_file_info *fi)
{
    fs *f = req_fs(req);
    struct st_inode in;
    int rc;
    do_create(req, parent, name, S_IFREG | (mode & 07777), 0, NULL, &in, &rc);
    if (rc)
        { reply_err(req, rc); return; }
    struct fs_file *h = file_new(f, in.ino, fi->flags);
    if (!h)
        { fuse_reply_err(req, ENOMEM); return; }
    fi->fh = (uintptr_t)h;
    struct fuse_entry_param e;
    fill_entry(f, NULL, &in, &e);
    if (node_lookup_inc(f, in.ino)) {
        file_free(f, h);
        { fuse_reply_err(req, ENOMEM); return; }
    }
    if (fuse_reply_create(req, &e, fi) != 0) {
        file_free(f, h);
        node_forget(f, in.ino, 1);
    }
}

static uint8_t zeros[128 * 1024]; /* never written: the source of hole bytes */

#define READ_SPANS 256
#define READ_IOVS 512

/* Answer a read of [off, off+size) of ino from the store (and n's stage).
 * Returns 0 once it replied, or 1 without replying when the range needs a
 * chunk that only a peer holds (*missing names it). */
static int do_read(fs *f, fuse_req_t req, uint64_t ino, size_t size, off_t off, struct fs_node *n,
                   st_hash *missing)
{
    struct st_span sp[READ_SPANS];
    struct iovec iov[READ_IOVS];
    st_txn *t;
    struct st_inode in;
    uint8_t *buf = NULL;
    int rc, ret = 0;

    pthread_rwlock_rdlock(&n->lock);
    if ((rc = st_txn_begin(f->st, ST_TXN_READ, &t)))
        goto fail_unlock;
    if ((rc = st_inode_get(t, ino, &in)))
        goto fail;
    uint64_t fsize = n->stage.n || n->cstage.n ? n->size : in.size;
    if ((uint64_t)off >= fsize) {
        fuse_reply_buf(req, NULL, 0);
        goto done;
    }
    size_t len = (size_t)LR_MIN((uint64_t)size, fsize - (uint64_t)off);
    int overlay = fs_stage_overlaps(&n->stage, (uint64_t)off, len) ||
                  fs_stage_overlaps(&n->cstage, (uint64_t)off, len);
    if (overlay && !(buf = malloc(len))) {
        rc = -ENOMEM;
        goto fail;
    }
    size_t pos = 0;
    int niov = 0;
    while (pos < len) {
        size_t k = 0;
        if ((rc = st_file_read(t, ino, (uint64_t)off + pos, len - pos, sp, READ_SPANS, &k)))
            goto fail;
        if (k == 0) {
            rc = LR_ECORRUPT;
            goto fail;
        }
        for (size_t i = 0; i < k; i++) {
            if (sp[i].kind == ST_SPAN_MISSING) {
                *missing = sp[i].hash;
                ret = 1;
                goto done;
            }
            if (sp[i].kind == ST_SPAN_DATA && f->sync)
                fs_sync_touch(f->sync, &sp[i].hash);
            if (buf) {
                if (sp[i].kind == ST_SPAN_DATA)
                    memcpy(buf + pos, sp[i].data, sp[i].len);
                else
                    memset(buf + pos, 0, sp[i].len);
            } else if (sp[i].kind == ST_SPAN_DATA) {
                if (niov == READ_IOVS)
                    goto too_many;
                iov[niov].iov_base = (void *)sp[i].data;
                iov[niov++].iov_len = sp[i].len;
            } else {
                for (size_t z = 0; z < sp[i].len; z += sizeof(zeros)) {
                    if (niov == READ_IOVS)
                        goto too_many;
                    iov[niov].iov_base = zeros;
                    iov[niov++].iov_len = LR_MIN(sizeof(zeros), sp[i].len - z);
                }
            }
            pos += sp[i].len;
        }
    }
    if (buf) {
        fs_stage_overlay(&n->cstage, (uint64_t)off, len, buf); /* older first */
        fs_stage_overlay(&n->stage, (uint64_t)off, len, buf);
        fuse_reply_buf(req, (const char *)buf, len);
    } else {
        fuse_reply_iov(req, iov, niov);
    }
    goto done;
too_many:
    /* Pathological fragmentation: answer the prefix gathered so far. */
    fuse_reply_iov(req, iov, niov);
done:
    st_txn_abort(t);
    pthread_rwlock_unlock(&n->lock);
    free(buf);
    return ret;
fail:
    st_txn_abort(t);
fail_unlock:
    pthread_rwlock_unlock(&n->lock);
    free(buf);
    lr_error("cannot read inode %llu at offset %lld: %s", (unsigned long long)ino, (long long)off,
             lr_strerror(rc));
    reply_err(req, rc);
    return 0;
}

/* A read waiting for a chunk from a peer. The request stays valid until
 * it is answered; the kernel keeps the file (and so its node) open while
 * the read is in flight. */
struct deferred_read {
    fs *f;
    fuse_req_t req;
    uint64_t ino;
    size_t size;
    off_t off;
    struct fs_node *node;
    st_hash want;
    int rounds;
    int err;                      /* the fetch's outcome (read_fetched) */
    struct deferred_read *qnext;  /* replier queue (f->qmu) */
};

static void read_fetched(void *ctx, int err);

#define READAHEAD_BYTES (8u << 20)
#define READAHEAD_CHUNKS 64

/* Prefetch the chunks of [off, off + len) of ino that only peers hold, at
 * most max of them, so a sequential reader finds them local (or in flight)
 * instead of paying a round trip per chunk; returns how many were started.
 * *end gets 1 if the range reaches the end of the file. */
static size_t prefetch_range(fs *f, st_txn *t, uint64_t ino, uint64_t off, uint64_t len, size_t max, int *end)
{
    struct st_span sp[READ_SPANS];
    size_t k = 0, started = 0;
    struct st_inode in;
    *end = 0;
    if (st_inode_get(t, ino, &in) || !S_ISREG(in.mode))
        return 0;
    *end = off + len >= in.size;
    if (off >= in.size ||
        st_file_read(t, ino, off, (size_t)LR_MIN(len, in.size - off), sp, READ_SPANS, &k) != 0)
        return 0;
    for (size_t i = 0; i < k && started < max; i++) {
        if (sp[i].kind != ST_SPAN_MISSING)
            continue;
        if (i > 0 && sp[i - 1].kind == ST_SPAN_MISSING && !memcmp(sp[i - 1].hash.b, sp[i].hash.b, ST_HASH_LEN))
            continue;
        if (fs_sync_prefetch(f->sync, &sp[i].hash) == 0)
            started++;
    }
    return started;
}

/* A reader that reaches the end of a file held by a peer usually goes on
 * with the next file of the directory (cp -r, tar, grep -r): prefetch the
 * first READAHEAD_SIBLING_BYTES of the next READAHEAD_SIBLINGS files after
 * ino's name (at most READAHEAD_SIBLING_CHUNKS chunks), so a tree of small
 * files costs a round trip per batch of files rather than per file.
 * tools/bench-sync.sh prints the effect ("read in name order on B, from
 * A"): 0.83 of the rate of the same reads of local data; before this,
 * each file cost a round trip (docs/PERFORMANCE.md). */
#define READAHEAD_SIBLINGS 128
#define READAHEAD_SIBLING_CHUNKS 128
#define READAHEAD_SIBLING_BYTES (1u << 20)

struct siblings { fs *f; st_txn *t; unsigned files; size_t started; };

static int first_name(uint64_t parent, const char *name, size_t len, void *arg)
{
    struct st_dirent *d = arg;
    d->parent = parent;
    d->namelen = (uint16_t)len;
    memcpy(d->name, name, len);
    d->name[len] = 0;
    return 1;
}

static int sibling_one(const struct st_dirent *d, void *arg)
{
    struct siblings *sb = arg;
    if (d->type != DT_REG)
        return 0;
    int end;
    sb->started += prefetch_range(sb->f, sb->t, d->child, 0, READAHEAD_SIBLING_BYTES,
                                  READAHEAD_SIBLING_CHUNKS - sb->started, &end);
    return ++sb->files >= READAHEAD_SIBLINGS || sb->started >= READAHEAD_SIBLING_CHUNKS;
}

static void read_ahead(fs *f, uint64_t ino, uint64_t off, uint64_t len)
{
    st_txn *t;
    if (st_txn_begin(f->st, ST_TXN_READ, &t))
        return;
    int end;
    prefetch_range(f, t, ino, off, len, READAHEAD_CHUNKS, &end);
    struct st_dirent d;
    if (end && st_dirent_names(t, ino, first_name, &d) == 1) {
        struct siblings sb = { f, t, 0, 0 };
        st_dirent_foreach(t, d.parent, d.name, d.namelen, sibling_one, &sb);
    }
    st_txn_abort(t);
}

/* Start fetching d->want; on failure answer EIO now. */
static void fetch_for_read(struct deferred_read *d)
{
    char hex[2 * ST_HASH_LEN + 1];
    /* Once the fetch is started, d belongs to read_fetched (which may run
     * and free it before fs_sync_fetch even returns): copy what we need.
     * The read may then be answered too, and the kernel release the file
     * and forget the inode: hold n for the bookkeeping below. */
    fs *f = d->f;
    struct fs_node *n = d->node;
    uint64_t ino = d->ino, next = (uint64_t)d->off + d->size;
    struct fs_sync *sync = __atomic_load_n(&f->sync, __ATOMIC_ACQUIRE); /* fs_set_sync */
    node_hold(f, n);
    int rc = sync ? fs_sync_fetch(sync, &d->want, read_fetched, d) : -ENOTCONN;
    if (rc == 0) {
        read_ahead(f, ino, next, READAHEAD_BYTES);
        __atomic_store_n(&n->ra_end, next + READAHEAD_BYTES, __ATOMIC_RELAXED);
        node_put(f, n, 1, 0);
        return;
    }
    node_put(f, n, 1, 0);
    lr_error("cannot read inode %llu at offset %lld: chunk %s is held only by a peer and %s",
             (unsigned long long)d->ino, (long long)d->off, st_hash_hex(&d->want, hex),
             sync ? lr_strerror(rc) : "this mount has no network");
    fuse_reply_err(d->req, EIO);
    free(d);
}

/* Answer d now that its fetch ended (d->err): replay the read from the
 * store, or fetch the next chunk it needs. Frees d (or hands it on). */
static void read_answer(struct deferred_read *d)
{
    char hex[2 * ST_HASH_LEN + 1];
    if (d->err) {
        lr_error("cannot read inode %llu at offset %lld: fetching chunk %s from peers failed: %s",
                 (unsigned long long)d->ino, (long long)d->off, st_hash_hex(&d->want, hex),
                 lr_strerror(d->err));
        fuse_reply_err(d->req, EIO);
        free(d);
        return;
    }
    /* A read spans at most a few chunks; each round fetches one more. */
    if (do_read(d->f, d->req, d->ino, d->size, d->off, d->node, &d->want) == 1 && ++d->rounds < 64) {
        fetch_for_read(d);
        return;
    }
    if (d->rounds >= 64) {
        lr_error("cannot read inode %llu at offset %lld: chunks keep vanishing",
                 (unsigned long long)d->ino, (long long)d->off);
        fuse_reply_err(d->req, EIO);
    }
    free(d);
}

/* The replier thread: answers the reads queued by read_fetched, in
 * batches, until stopped with its queue empty. */
static void *replier_main(void *arg)
{
    fs *f = arg;
    pthread_mutex_lock(&f->qmu);
    for (;;) {
        while (!f->rq_head && !f->replier_stop)
            pthread_cond_wait(&f->qcv, &f->qmu);
        struct deferred_read *d = f->rq_head;
        if (!d)
            break;
        f->rq_head = f->rq_tail = NULL;
        pthread_mutex_unlock(&f->qmu);
        while (d) {
            struct deferred_read *next = d->qnext;
            read_answer(d);
            d = next;
        }
        pthread_mutex_lock(&f->qmu);
    }
    pthread_mutex_unlock(&f->qmu);
    return NULL;
}

/* fs_sync_fetch's callback (sync thread; or the thread stopping sync):
 * the chunk is stored (err 0) or could not be had. The answer goes to the
 * replier; inline when there is none (not started, or stopped). */
static void read_fetched(void *ctx, int err)
{
    struct deferred_read *d = ctx;
    fs *f = d->f;
    d->err = err;
    d->qnext = NULL;
    pthread_mutex_lock(&f->qmu);
    if (f->replier_started && !f->replier_stop) {
        if (f->rq_tail)
            f->rq_tail->qnext = d;
        else
            f->rq_head = d;
        f->rq_tail = d;
        pthread_cond_signal(&f->qcv);
        d = NULL;
    }
    pthread_mutex_unlock(&f->qmu);
    if (d)
        read_answer(d);
}

static void op_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, struct fuse_file_info *fi)
{
    fs *f = req_fs(req);
    struct fs_file *h = (struct fs_file *)(uintptr_t)fi->fh;
    struct fs_node *n = h->node;
    st_hash want;
    /* Once do_read has replied, the kernel may release the file at once
     * (freeing h and perhaps n): the read-ahead bookkeeping after the reply
     * holds its own reference on n and never touches h. */
    if (f->sync)
        node_hold(f, n);
    if (do_read(f, req, ino, size, off, n, &want) == 0) {
        if (!f->sync)
            return;
        /* A file that needed peers once: keep fetching ahead of the
         * reader, so a sequential read never waits for a round trip. */
        uint64_t ra = __atomic_load_n(&n->ra_end, __ATOMIC_RELAXED);
        uint64_t end = (uint64_t)off + size;
        if (ra && end + READAHEAD_BYTES / 2 > ra && end <= ra + READAHEAD_BYTES &&
            __atomic_compare_exchange_n(&n->ra_end, &ra, LR_MAX(ra, end) + READAHEAD_BYTES / 2,
                                        0, __ATOMIC_RELAXED, __ATOMIC_RELAXED))
            read_ahead(f, ino, LR_MAX(ra, end), READAHEAD_BYTES / 2);
        node_put(f, n, 1, 0);
        return;
    }
    /* Not answered yet: the kernel keeps the file (and so n) open until it
     * is, so the extra reference can go now. */
    if (f->sync)
        node_put(f, n, 1, 0);
    struct deferred_read *d = calloc(1, sizeof(*d));
    if (!d) {
        fuse_reply_err(req, ENOMEM);
        return;
    }
    *d = (struct deferred_read){ .f = f, .req = req, .ino = ino, .size = size, .off = off,
                                 .node = n, .want = want };
    fetch_for_read(d);
}

static void op_write(fuse_req_t req, fuse_ino_t ino, const char *data, size_t size, off_t off,
                     struct fuse_file_info *fi)
{
    fs *f = req_fs(req);
    struct fs_file *h = (struct fs_file *)(uintptr_t)fi->fh;
    struct fs_node *n = h->node;
    int rc = 0;
    if (off < 0 || (uint64_t)off + size < (uint64_t)off)
        { fuse_reply_err(req, EFBIG); return; }

    pthread_rwlock_wrlock(&n->lock);
    for (;;) {
        int full = n->stage.n && (n->stage.bytes + size > FS_STAGE_MAX_BYTES ||
                                  n->stage.n >= FS_STAGE_MAX_RANGES ||
                                  lr_now_mono_ns() - n->stage.born_ns > FS_STAGE_MAX_AGE_NS);
        if (n->cbusy) {
            if (!full)
                break;
            node_wait_idle(f, n); /* both buffers full: the writer waits */
            continue;
        }
        if (n->cerr)
            rc = stage_commit(f, n); /* a background commit failed: retry here, report here */
        else if (full && f->committer_started)
            stage_hand_off(f, n);
        else if (full)
            rc = stage_commit(f, n);
        break;
    }
    if (rc == 0 && n->stage.n == 0 && n->cstage.n == 0) {
        struct st_inode in;
        rc = get_inode(f, ino, &in);
        n->size = in.size;
    }
    if (rc == 0)
        rc = fs_stage_write(&n->stage, (uint64_t)off, data, size);
    __atomic_store_n(&n->staged, n->stage.n > 0 || n->cstage.n > 0, __ATOMIC_RELAXED);
    if (rc == 0) {
        n->size = LR_MAX(n->size, (uint64_t)off + size);
        clock_gettime(CLOCK_REALTIME, &n->mtime);
    }
    pthread_rwlock_unlock(&n->lock);
    if (rc)
        { reply_err(req, rc); return; }
    fuse_reply_write(req, size);
}

static void op_flush(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
    fs *f = req_fs(req);
    struct fs_node *n = ((struct fs_file *)(uintptr_t)fi->fh)->node;
    pthread_rwlock_wrlock(&n->lock);
    node_wait_idle(f, n);
    int rc = stage_commit(f, n);
    pthread_rwlock_unlock(&n->lock);
    reply_err(req, rc);
}

/* SEEK_DATA and SEEK_HOLE (the kernel answers the other whences itself).
 * Staged bytes are committed first, so the store's extents are the whole
 * truth; holes are ranges no extent maps. */
static void op_lseek(fuse_req_t req, fuse_ino_t ino, off_t off, int whence, struct fuse_file_info *fi)
{
    fs *f = req_fs(req);
    if (whence != SEEK_DATA && whence != SEEK_HOLE)
        { fuse_reply_err(req, EINVAL); return; }
    if (off < 0)
        { fuse_reply_err(req, ENXIO); return; }
    struct fs_node *n = ((struct fs_file *)(uintptr_t)fi->fh)->node;
    pthread_rwlock_wrlock(&n->lock);
    node_wait_idle(f, n);
    int rc = stage_commit(f, n);
    uint64_t pos = 0;
    st_txn *t;
    if (rc == 0 && (rc = st_txn_begin(f->st, ST_TXN_READ, &t)) == 0) {
        struct st_inode in;
        rc = st_inode_get(t, ino, &in);
        if (rc == 0)
            rc = st_file_seek(t, ino, in.size, (uint64_t)off, whence == SEEK_DATA, &pos);
        st_txn_abort(t);
    }
    pthread_rwlock_unlock(&n->lock);
    if (rc)
        { reply_err(req, rc); return; }
    fuse_reply_lseek(req, (off_t)pos);
}

static void op_release(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
    fs *f = req_fs(req);
    struct fs_file *h = (struct fs_file *)(uintptr_t)fi->fh;
    pthread_rwlock_wrlock(&h->node->lock);
    node_wait_idle(f, h->node);
    stage_commit(f, h->node); /* logs its own failure */
    if (h->node->stage.n == 0 && h->node->cstage.n == 0) {
        fs_stage_release(&h->node->stage); /* and the spare buffers */
        fs_stage_release(&h->node->cstage);
    }
    pthread_rwlock_unlock(&h->node->lock);
    file_free(f, h);
    fuse_reply_err(req, 0);
}

static void op_fsync(fuse_req_t req, fuse_ino_t ino, int datasync, struct fuse_file_info *fi)
{
    fs *f = req_fs(req);
    struct fs_node *n = ((struct fs_file *)(uintptr_t)fi->fh)->node;
    pthread_rwlock_wrlock(&n->lock);
    node_wait_idle(f, n);
    int rc = stage_commit(f, n);
    pthread_rwlock_unlock(&n->lock);
    if (rc == 0 && (rc = st_sync(f->st)))
        lr_error("cannot sync store '%s': %s", st_dir(f->st), lr_strerror(rc));
    reply_err(req, rc);
}

static void op_fallocate(fuse_req_t req, fuse_ino_t ino, int mode, off_t off, off_t len,
                         struct fuse_file_info *fi)
{
    fs *f = req_fs(req);
    struct fs_node *n = ((struct fs_file *)(uintptr_t)fi->fh)->node;
    if (off < 0 || len <= 0)
        { fuse_reply_err(req, EINVAL); return; }
    if ((uint64_t)off + (uint64_t)len < (uint64_t)off)
        { fuse_reply_err(req, EFBIG); return; }
    int punch = mode == (FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE);
    if (mode != 0 && mode != FALLOC_FL_KEEP_SIZE && !punch)
        { fuse_reply_err(req, EOPNOTSUPP); return; }

    pthread_rwlock_wrlock(&n->lock);
    node_wait_idle(f, n);
    st_txn *t;
    struct st_inode in;
    struct st_wstat ws;
    int rc = st_txn_begin(f->st, ST_TXN_WRITE, &t);
    if (rc == 0) {
        rc = stage_commit_txn(n, t, &ws);
        if (rc == 0)
            rc = st_inode_get(t, ino, &in);
        if (rc == 0 && !S_ISREG(in.mode))
            rc = S_ISDIR(in.mode) ? -EISDIR : -ENODEV;
        if (rc == 0 && punch)
            rc = st_ns_punch(t, ino, (uint64_t)off, (uint64_t)len, NULL);
        else if (rc == 0 && mode == 0 && (uint64_t)off + (uint64_t)len > in.size) {
            /* Holes cost nothing here, so allocation only sets the size.
             * (No space is reserved: a later write can still hit ENOSPC.) */
            struct st_ns_attr a = { .size = (uint64_t)off + (uint64_t)len };
            rc = st_ns_setattr(t, ino, ST_NS_SET_SIZE, &a, NULL);
        }
        rc = st_txn_end(t, rc);
    }
    if (rc == 0) {
        stage_drop(n);
        frag_note(f, n, &ws);
    }
    pthread_rwlock_unlock(&n->lock);
    reply_err(req, rc);
}

/* ---- directories ------------------------------------------------------------- */

static void op_opendir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
    fs *f = req_fs(req);
    struct fs_dir *d = calloc(1, sizeof(*d));
    if (!d)
        { fuse_reply_err(req, ENOMEM); return; }
    pthread_mutex_init(&d->lock, NULL);
    d->node = node_get(f, ino);
    if (!d->node) {
        free(d);
        { fuse_reply_err(req, ENOMEM); return; }
    }
    fi->fh = (uintptr_t)d;
    if (fuse_reply_open(req, fi) != 0) {
        node_put(f, d->node, 1, 0);
        free(d);
    }
}

static void dir_clear(struct fs_dir *d)
{
    for (size_t i = 0; i < d->n; i++)
        free(d->e[i].name);
    d->n = 0;
    d->loaded = 0;
}

static int dir_add(struct fs_dir *d, uint64_t ino, uint8_t type, const char *name, size_t len)
{
    struct fs_dent *e = lr_grow(d->e, &d->cap, d->n, sizeof(*e), 64);
    if (!e)
        return -ENOMEM;
    d->e = e;
    char *nm = malloc(len + 1);
    if (!nm)
        return -ENOMEM;
    memcpy(nm, name, len);
    nm[len] = '\0';
    d->e[d->n++] = (struct fs_dent){ .ino = ino, .type = type, .name = nm };
    return 0;
}

static int dir_collect(const struct st_dirent *de, void *arg)
{
    return dir_add(arg, de->child, de->type, de->name, de->namelen);
}

/* Snapshot the directory's entries (so offsets stay stable while it is
 * read); taken at offset 0, i.e. at the first readdir and at rewinddir. */
static int dir_load(fs *f, struct fs_dir *d, uint64_t ino)
{
    dir_clear(d);
    st_txn *t;
    struct st_inode in;
    int rc = st_txn_begin(f->st, ST_TXN_READ, &t);
    if (rc)
        return rc;
    rc = st_inode_get(t, ino, &in);
    if (rc == 0 && !S_ISDIR(in.mode))
        rc = -ENOTDIR;
    if (rc == 0)
        rc = dir_add(d, ino, DT_DIR, ".", 1);
    if (rc == 0)
        rc = dir_add(d, ino == ST_ROOT_INO || in.parent == 0 ? ino : in.parent, DT_DIR, "..", 2);
    if (rc == 0)
        rc = st_dirent_foreach(t, ino, NULL, 0, dir_collect, d);
    st_txn_abort(t);
    if (rc == 0)
        d->loaded = 1;
    return rc;
}

static void do_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
                       struct fuse_file_info *fi, int plus)
{
    fs *f = req_fs(req);
    struct fs_dir *d = (struct fs_dir *)(uintptr_t)fi->fh;
    st_txn *t = NULL;
    int rc = 0;
    char *buf = malloc(size ? size : 1);
    if (!buf)
        { fuse_reply_err(req, ENOMEM); return; }
    pthread_mutex_lock(&d->lock);
    if (off == 0 || !d->loaded) {
        d->gen = peer_gen(f);
        rc = dir_load(f, d, ino);
    }
    double timeout = FS_TIMEOUT_S;
    int held = rc == 0 && plus;
    if (held) {
        /* entries from the names loaded at d->gen (see struct fs) */
        timeout = gen_reply_begin(f, d->gen);
        rc = st_txn_begin(f->st, ST_TXN_READ, &t);
    }
    size_t pos = 0;
    for (size_t i = (size_t)off; rc == 0 && i < d->n; i++) {
        struct fs_dent *e = &d->e[i];
        size_t sz;
        if (plus) {
            struct fuse_entry_param ep;
            int dot = i < 2;
            memset(&ep, 0, sizeof(ep));
            struct st_inode in;
            int g = st_inode_get(t, e->ino, &in);
            if (g == -ENOENT)
                continue; /* removed since the snapshot */
            if (g) {
                rc = g;
                break;
            }
            fill_entry(f, t, &in, &ep);
            ep.attr_timeout = ep.entry_timeout = timeout;
            if (dot)
                ep.ino = 0; /* the kernel takes no reference on . and .. */
            sz = fuse_add_direntry_plus(req, buf + pos, size - pos, e->name, &ep, (off_t)(i + 1));
            if (sz > size - pos)
                break;
            if (!dot && node_lookup_inc(f, e->ino)) {
                rc = -ENOMEM;
                break;
            }
        } else {
            struct stat s = { .st_ino = e->ino, .st_mode = (mode_t)e->type << 12 };
            sz = fuse_add_direntry(req, buf + pos, size - pos, e->name, &s, (off_t)(i + 1));
            if (sz > size - pos)
                break;
        }
        pos += sz;
    }
    st_txn_abort(t);
    pthread_mutex_unlock(&d->lock);
    if (rc && pos == 0) {
        lr_error("cannot read directory %llu: %s", (unsigned long long)ino, lr_strerror(rc));
        reply_err(req, rc);
    } else {
        fuse_reply_buf(req, buf, pos);
    }
    if (held)
        gen_reply_end(f);
    free(buf);
}

static void op_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, struct fuse_file_info *fi)
{
    do_readdir(req, ino, size, off, fi, 0);
}

static void op_readdirplus(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
                           struct fuse_file_info *fi)
{
    do_readdir(req, ino, size, off, fi, 1);
}

static void op_releasedir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
    fs *f = req_fs(req);
    struct fs_dir *d = (struct fs_dir *)(uintptr_t)fi->fh;
    dir_clear(d);
    free(d->e);
    pthread_mutex_destroy(&d->lock);
    node_put(f, d->node, 1, 0);
    free(d);
    fuse_reply_err(req, 0);
}

static void op_fsyncdir(fuse_req_t req, fuse_ino_t ino, int datasync, struct fuse_file_info *fi)
{
    fs *f = req_fs(req);
    int rc = st_sync(f->st);
    if (rc)
        lr_error("cannot sync store '%s': %s", st_dir(f->st), lr_strerror(rc));
    reply_err(req, rc);
}

/* ---- statfs, access -------------------------------------------------------- */

static void op_statfs(fuse_req_t req, fuse_ino_t ino)
{
    fs *f = req_fs(req);
    struct statvfs sv, out;
    struct st_usage u;
    if (statvfs(st_dir(f->st), &sv) != 0)
        { fuse_reply_err(req, errno); return; }
    int rc = st_usage(f->st, &u);
    if (rc)
        { reply_err(req, rc); return; }
    memset(&out, 0, sizeof(out));
    /* Space: that of the file system holding the store (chunks live
     * there); files: the inodes in use plus what the disk could hold. */
    out.f_bsize = sv.f_bsize;
    out.f_frsize = sv.f_frsize;
    out.f_blocks = sv.f_blocks;
    out.f_bfree = sv.f_bfree;
    out.f_bavail = sv.f_bavail;
    out.f_ffree = sv.f_ffree ? sv.f_ffree : sv.f_bavail;
    out.f_favail = out.f_ffree;
    out.f_files = u.inodes + out.f_ffree;
    out.f_namemax = ST_NAME_MAX;
    fuse_reply_statfs(req, &out);
}

static void op_access(fuse_req_t req, fuse_ino_t ino, int mask)
{
    fs *f = req_fs(req);
    const struct fuse_ctx *ctx = fuse_req_ctx(req);
    struct st_inode in;
    int rc = get_inode(f, ino, &in);
    if (rc)
        { reply_err(req, rc); return; }
    if (mask == F_OK)
        { fuse_reply_err(req, 0); return; }
    unsigned perm;
    if (ctx->uid == 0) {
        /* root: everything but executing a file with no x bit at all */
        int ok = !(mask & X_OK) || S_ISDIR(in.mode) || (in.mode & 0111);
        { fuse_reply_err(req, ok ? 0 : EACCES); return; }
    }
    if (ctx->uid == in.uid)
        perm = (in.mode >> 6) & 7;
    else if (ctx->gid == in.gid)
        perm = (in.mode >> 3) & 7;
    else
        perm = in.mode & 7;
    fuse_reply_err(req, ((unsigned)mask & ~perm & 7) ? EACCES : 0);
}

/* ---- xattrs --------------------------------------------------------------- */

#define FS_VXATTR_PREFIX "user.landro."

static int vxattr_set(fs *f, uint64_t ino, const char *name, const char *value, size_t size);

static void op_setxattr(fuse_req_t req, fuse_ino_t ino, const char *name, const char *value,
                        size_t size, int flags)
{
    fs *f = req_fs(req);
    if (!strncmp(name, FS_VXATTR_PREFIX, strlen(FS_VXATTR_PREFIX)))
        { reply_err(req, vxattr_set(f, ino, name, value, size)); return; }
    int nf = 0;
    if (flags & XATTR_CREATE)
        nf |= ST_NS_XATTR_CREATE;
    if (flags & XATTR_REPLACE)
        nf |= ST_NS_XATTR_REPLACE;
    st_txn *t;
    int rc = st_txn_begin(f->st, ST_TXN_WRITE, &t);
    if (rc == 0)
        rc = st_txn_end(t, st_ns_setxattr(t, ino, name, value, size, nf));
    reply_err(req, rc);
}

/* Virtual attributes under "user.landro." (fs.h), computed from the
 * store; not listed by listxattr so cp -a / rsync -X do not copy them. */

struct vx_chunks { uint64_t local, total; int err; };

struct vx_ctx { st_txn *t; struct vx_chunks c; };

static int vx_extent(uint64_t ino, const struct st_extent *e, void *arg)
{
    (void)ino;
    struct vx_ctx *x = arg;
    struct st_chunkref r;
    int rc = st_chunk_info(x->t, &e->hash, &r);
    if (rc) {
        x->c.err = rc;
        return 1;
    }
    x->c.total++;
    if (r.flags & ST_CHUNK_LOCAL)
        x->c.local++;
    return 0;
}

static int vx_conflict_name(uint64_t parent, const char *name, size_t len, void *arg)
{
    (void)parent;
    if (memmem(name, len, ".sync-conflict-", 15)) {
        *(int *)arg = 1;
        return 1;
    }
    return 0;
}

/* Value of virtual attribute name of ino into buf: its length, or
 * -ENODATA for an unknown user.landro.* name, or another error. */
static int vxattr_get(fs *f, st_txn *t, uint64_t ino, const char *name, char *buf, size_t cap)
{
    const char *n = name + strlen(FS_VXATTR_PREFIX);
    if (!strcmp(n, "chunks")) {
        struct vx_ctx x = { .t = t };
        int rc = st_extent_foreach(t, ino, 0, vx_extent, &x);
        if (rc < 0)
            return rc;
        if (x.c.err)
            return x.c.err;
        return snprintf(buf, cap, "%llu/%llu", (unsigned long long)x.c.local, (unsigned long long)x.c.total);
    }
    if (!strcmp(n, "conflict")) {
        struct st_inode in;
        int rc = st_inode_get(t, ino, &in), c = 0;
        if (rc)
            return rc;
        if (in.flags & ST_INODE_CONFLICT)
            c = 1;
        else if ((rc = st_dirent_names(t, ino, vx_conflict_name, &c)) < 0)
            return rc;
        return snprintf(buf, cap, "%d", c);
    }
    if (!strcmp(n, "store"))
        return snprintf(buf, cap, "%s", st_dir(f->st));
    if (!strcmp(n, "pinned")) {
        struct st_inode in;
        int rc = st_inode_get(t, ino, &in);
        return rc ? rc : snprintf(buf, cap, "%d", (in.flags & ST_INODE_PINNED) ? 1 : 0);
    }
    return -ENODATA;
}

/* Setting user.landro.pinned to "1" or "0" pins or unpins a file or a
 * directory (everything under it, now and later): a local cache policy,
 * so it changes no version vector and is not replicated. The other
 * virtual attributes are read-only. */
static int vxattr_set(fs *f, uint64_t ino, const char *name, const char *value, size_t size)
{
    if (strcmp(name, FS_VXATTR_PREFIX "pinned"))
        return -EPERM;
    int on;
    if (size == 1 && (value[0] == '0' || value[0] == '1'))
        on = value[0] == '1';
    else
        return -EINVAL;
    st_txn *t;
    struct st_inode in;
    int rc = st_txn_begin(f->st, ST_TXN_WRITE, &t);
    if (rc)
        return rc;
    if ((rc = st_inode_get(t, ino, &in)) == 0 && !!(in.flags & ST_INODE_PINNED) != on) {
        in.flags ^= ST_INODE_PINNED;
        rc = st_inode_put(t, &in);
    }
    return st_txn_end(t, rc);
}

static void op_getxattr(fuse_req_t req, fuse_ino_t ino, const char *name, size_t size)
{
    fs *f = req_fs(req);
    st_txn *t;
    const void *val;
    size_t len;
    int rc = st_txn_begin(f->st, ST_TXN_READ, &t);
    if (rc)
        { reply_err(req, rc); return; }
    char vbuf[4200];
    if (!strncmp(name, FS_VXATTR_PREFIX, strlen(FS_VXATTR_PREFIX))) {
        rc = vxattr_get(f, t, ino, name, vbuf, sizeof(vbuf));
        if (rc >= (int)sizeof(vbuf))
            rc = -ERANGE;
        if (rc >= 0) {
            val = vbuf;
            len = (size_t)rc;
            rc = 0;
        }
    } else {
        rc = st_xattr_get(t, ino, name, &val, &len);
    }
    if (rc)
        reply_err(req, rc);
    else if (size == 0)
        fuse_reply_xattr(req, len);
    else if (len > size)
        fuse_reply_err(req, ERANGE);
    else
        fuse_reply_buf(req, val, len);
    st_txn_abort(t);
}

struct xlist { char *buf; size_t len, cap; int err; };

static int xlist_add(const char *name, size_t vlen, void *arg)
{
    struct xlist *l = arg;
    size_t n = strlen(name) + 1;
    if (l->len + n > l->cap) {
        size_t cap = LR_MAX(2 * l->cap, l->len + n + 256);
        char *b = realloc(l->buf, cap);
        if (!b) {
            l->err = -ENOMEM;
            return 1;
        }
        l->buf = b;
        l->cap = cap;
    }
    memcpy(l->buf + l->len, name, n);
    l->len += n;
    return 0;
}

static void op_listxattr(fuse_req_t req, fuse_ino_t ino, size_t size)
{
    fs *f = req_fs(req);
    st_txn *t;
    struct xlist l = { 0 };
    int rc = st_txn_begin(f->st, ST_TXN_READ, &t);
    if (rc)
        { reply_err(req, rc); return; }
    rc = st_xattr_foreach(t, ino, xlist_add, &l);
    st_txn_abort(t);
    if (l.err)
        rc = l.err;
    if (rc > 0)
        rc = 0;
    if (rc)
        reply_err(req, rc);
    else if (size == 0)
        fuse_reply_xattr(req, l.len);
    else if (l.len > size)
        fuse_reply_err(req, ERANGE);
    else
        fuse_reply_buf(req, l.buf, l.len);
    free(l.buf);
}

static void op_removexattr(fuse_req_t req, fuse_ino_t ino, const char *name)
{
    fs *f = req_fs(req);
    if (!strncmp(name, FS_VXATTR_PREFIX, strlen(FS_VXATTR_PREFIX)))
        { reply_err(req, vxattr_set(f, ino, name, "0", 1)); return; }
    st_txn *t;
    int rc = st_txn_begin(f->st, ST_TXN_WRITE, &t);
    if (rc == 0)
        rc = st_txn_end(t, st_ns_removexattr(t, ino, name));
    reply_err(req, rc);
}

/* Writes of up to 1 MiB (the kernel's FUSE_MAX_MAX_PAGES): an eighth of
 * the round trips of the default 128 KiB. More background (read-ahead)
 * requests in flight than the default 12, so reads of chunks held by a
 * peer overlap their fetches. */
#define FS_MAX_IO (1u << 20)

static void op_init(void *userdata, struct fuse_conn_info *conn)
{
    /* Writes go through our staging, not the kernel's writeback cache:
     * that keeps mtime and size authoritative here for replication. */
    conn->want &= ~(unsigned)FUSE_CAP_WRITEBACK_CACHE;
    if (conn->capable & FUSE_CAP_ATOMIC_O_TRUNC)
        conn->want |= FUSE_CAP_ATOMIC_O_TRUNC;
    conn->max_write = FS_MAX_IO;
    conn->max_readahead = FS_MAX_IO;
    conn->max_background = 64;
    conn->congestion_threshold = 48;
    fs *f = userdata;
    __atomic_store_n(&f->init_ns, lr_now_mono_ns(), __ATOMIC_RELEASE); /* see raise_readahead */
}

static const struct fuse_lowlevel_ops fs_ops = {
    .init = op_init,
    .lookup = op_lookup,
    .forget = op_forget,
    .forget_multi = op_forget_multi,
    .getattr = op_getattr,
    .setattr = op_setattr,
    .readlink = op_readlink,
    .mknod = op_mknod,
    .mkdir = op_mkdir,
    .unlink = op_unlink,
    .rmdir = op_rmdir,
    .symlink = op_symlink,
    .rename = op_rename,
    .link = op_link,
    .open = op_open,
    .read = op_read,
    .write = op_write,
    .flush = op_flush,
    .release = op_release,
    .lseek = op_lseek,
    .fsync = op_fsync,
    .opendir = op_opendir,
    .readdir = op_readdir,
    .readdirplus = op_readdirplus,
    .releasedir = op_releasedir,
    .fsyncdir = op_fsyncdir,
    .statfs = op_statfs,
    .setxattr = op_setxattr,
    .getxattr = op_getxattr,
    .listxattr = op_listxattr,
    .removexattr = op_removexattr,
    .access = op_access,
    .create = op_create,
    .fallocate = op_fallocate,
    /* No getlk/setlk/flock: the kernel keeps locks locally (see fs.h). */
};

/* ---- session ---------------------------------------------------------------- */

static int check_mountpoint(const char *mp)
{
    struct stat s, ps;
    if (stat(mp, &s) != 0) {
        int e = errno;
        lr_error("cannot use mountpoint '%s': %s", mp, strerror(e));
        return -e;
    }
    if (!S_ISDIR(s.st_mode)) {
        lr_error("cannot use mountpoint '%s': not a directory", mp);
        return -ENOTDIR;
    }
    char *parent = malloc(strlen(mp) + 4);
    if (!parent)
        return -ENOMEM;
    sprintf(parent, "%s/..", mp);
    int rc = stat(parent, &ps);
    free(parent);
    if (rc == 0 && (ps.st_dev != s.st_dev || ps.st_ino == s.st_ino) && strcmp(mp, "/") != 0) {
        lr_error("cannot use mountpoint '%s': something is already mounted there", mp);
        return -EBUSY;
    }
    return 0;
}

int fs_new(st_store *st, const struct fs_opts *o, fs **out)
{
    int rc = check_mountpoint(o->mountpoint);
    if (rc)
        return rc;
    fs *f = calloc(1, sizeof(*f));
    if (!f)
        return -ENOMEM;
    f->st = st;
    st_set_forget_after(st, o->forget_deleted_s); /* before any thread of ours runs */
    pthread_mutex_init(&f->tlock, NULL);
    pthread_rwlock_init(&f->gen_lock, NULL);
    pthread_mutex_init(&f->rlock, NULL);
    pthread_cond_init(&f->rcond, NULL);
    pthread_mutex_init(&f->cmu, NULL);
    pthread_cond_init(&f->cwork, NULL);
    pthread_cond_init(&f->cdone, NULL);
    pthread_mutex_init(&f->qmu, NULL);
    pthread_cond_init(&f->qcv, NULL);
    f->tabsize = 1024;
    f->tab = calloc(f->tabsize, sizeof(*f->tab));
    f->mountpoint = realpath(o->mountpoint, NULL);
    if (!f->tab || !f->mountpoint) {
        rc = f->tab ? -errno : -ENOMEM;
        goto fail;
    }

    /* Orphans of a previous run (unlinked while open, then the daemon
     * died or was unmounted) go now, in the background: nothing can have
     * them open. A failure (say, a full disk) only delays that. */
    if (pthread_create(&f->reaper, NULL, reaper_main, f) == 0) {
        pthread_setname_np(f->reaper, "landro-reaper"); /* for top -H, perf */
        f->reaper_started = 1;
    }
    else
        lr_warn("cannot start the reaper thread: unlinked inodes are deleted inline");
    if (pthread_create(&f->committer, NULL, committer_main, f) == 0) {
        pthread_setname_np(f->committer, "landro-commit");
        f->committer_started = 1;
    }
    else
        lr_warn("cannot start the committer thread: full stages are committed inline");
    if (pthread_create(&f->compactor, NULL, compactor_main, f) == 0) {
        pthread_setname_np(f->compactor, "landro-compact");
        f->compactor_started = 1;
    }
    st_txn *t;
    uint64_t *orph = NULL;
    size_t norph = 0;
    if ((rc = st_txn_begin(st, ST_TXN_READ, &t)) == 0) {
        rc = st_ns_orphans(t, &orph, &norph);
        st_txn_abort(t);
    }
    if (rc < 0)
        lr_warn("cannot list unlinked inodes in store '%s': %s", st_dir(st), lr_strerror(rc));
    if (norph)
        lr_info("deleting %zu unlinked inodes left by the previous run", norph);
    for (size_t i = 0; i < norph; i++)
        reap_queue(f, orph[i]);
    free(orph);
    rc = 0;

    /* fsname (what df and /proc/mounts show, and how `landro status`
     * finds the store of a mount point) is the store path with libfuse's
     * option escapes: a comma would end the option and start another one
     * (a store at "/x,allow_other" mounted with allow_other). */
    const char *dir = st_dir(st);
    size_t dlen = strlen(dir);
    char *opts = malloc(2 * dlen + 128);
    if (!opts) {
        rc = -ENOMEM;
        goto fail;
    }
    int olen = snprintf(opts, 128, "default_permissions%s%s,subtype=landro,fsname=landro:",
                        o->allow_other ? ",allow_other" : "", o->read_only ? ",ro" : "");
    char *e = opts + olen;
    for (const char *p = dir; *p; p++) {
        if (*p == ',' || *p == '\\')
            *e++ = '\\';
        *e++ = *p;
    }
    *e = '\0';
    char *argv[] = { "landro", "-o", opts, o->debug ? "-d" : NULL, NULL };
    struct fuse_args args = FUSE_ARGS_INIT(o->debug ? 4 : 3, argv);
    f->se = fuse_session_new(&args, &fs_ops, sizeof(fs_ops), f);
    fuse_opt_free_args(&args);
    if (!f->se) {
        free(opts);
        lr_error("cannot create fuse session for '%s'", o->mountpoint);
        rc = -EIO;
        goto fail;
    }
    int mrc = fuse_session_mount(f->se, f->mountpoint);
    free(opts); /* after the mount, in case libfuse kept a pointer into it */
    if (mrc != 0) {
        lr_error("cannot mount on '%s' (is /dev/fuse usable and fusermount3 installed?)", f->mountpoint);
        rc = -EIO;
        goto fail;
    }
    f->mounted = 1;
    *out = f;
    return 0;
fail:
    fs_free(f);
    return rc;
}

int fs_handle_signals(fs *f)
{
    if (fuse_set_signal_handlers(f->se) != 0)
        return -EIO;
    f->signals = 1;
    return 0;
}

int fs_run(fs *f)
{
    struct fuse_loop_config cfg = { .clone_fd = 0, .max_idle_threads = 16 };
    int rc = fuse_session_loop_mt(f->se, &cfg);
    if (rc < 0)
        return rc;
    return 0;
}

void fs_free(fs *f)
{
    if (!f)
        return;
    /* No walk of the reaper's over the nodes from here on: they are freed
     * below, while the reaper still runs (it deletes the orphans). */
    if (f->compactor_started) { /* a copy under way is cut off and dropped */
        st_compact_cancel(f->st);
        __atomic_store_n(&f->compactor_stop, 1, __ATOMIC_RELEASE);
        pthread_join(f->compactor, NULL);
        f->compactor_started = 0;
    }
    pthread_mutex_lock(&f->rlock);
    __atomic_store_n(&f->maint_stop, 1, __ATOMIC_RELAXED);
    while (f->maint_busy)
        pthread_cond_wait(&f->rcond, &f->rlock);
    pthread_mutex_unlock(&f->rlock);
    replier_stop(f);
    if (f->committer_started) { /* it finishes what was handed to it */
        pthread_mutex_lock(&f->cmu);
        f->committer_stop = 1;
        pthread_cond_signal(&f->cwork);
        pthread_mutex_unlock(&f->cmu);
        pthread_join(f->committer, NULL);
        f->committer_started = 0;
    }
    int dirty = 0;
    for (size_t i = 0; f->tab && i < f->tabsize; i++) {
        for (struct fs_node *n = f->tab[i], *next; n; n = next) {
            next = n->next;
            pthread_rwlock_wrlock(&n->lock);
            if (n->stage.n || n->cstage.n) {
                dirty = 1;
                stage_commit(f, n);
            }
            pthread_rwlock_unlock(&n->lock);
        }
    }
    if (f->se) {
        if (f->signals)
            fuse_remove_signal_handlers(f->se);
        if (f->mounted)
            fuse_session_unmount(f->se);
        fuse_session_destroy(f->se);
    }
    /* Fragments still waiting for the reaper are re-chunked now, with the
     * mountpoint already released, for at most FS_RECHUNK_UNMOUNT_NS in
     * all; what is left then stays cut in small pieces (correct). */
    uint64_t deadline = lr_now_mono_ns() + FS_RECHUNK_UNMOUNT_NS;
    for (size_t i = 0; f->tab && i < f->tabsize; i++) {
        for (struct fs_node *n = f->tab[i]; n; n = n->next) {
            if (n->frag_n && !n->orphan) {
                dirty = 1;
                rechunk_range(f, n->ino, n->frag_lo, n->frag_hi, n->frag_n, 0, deadline);
                n->frag_n = 0;
            }
        }
    }
    if (dirty && st_sync(f->st) != 0)
        lr_error("cannot sync store '%s' at unmount", st_dir(f->st));
    for (size_t i = 0; f->tab && i < f->tabsize; i++) {
        for (struct fs_node *n = f->tab[i], *next; n; n = next) {
            next = n->next;
            if (n->orphan)
                reap_queue(f, n->ino);
            fs_stage_release(&n->stage);
            fs_stage_release(&n->cstage);
            pthread_rwlock_destroy(&n->lock);
            free(n);
        }
    }
    if (f->reaper_started) {
        pthread_mutex_lock(&f->rlock);
        f->reaper_stop = 1;
        pthread_cond_signal(&f->rcond);
        pthread_mutex_unlock(&f->rlock);
        pthread_join(f->reaper, NULL);
        f->reaper_started = 0;
    }
    free(f->rq);
    free(f->tab);
    free(f->mountpoint);
    pthread_mutex_destroy(&f->tlock);
    pthread_rwlock_destroy(&f->gen_lock);
    pthread_mutex_destroy(&f->rlock);
    pthread_cond_destroy(&f->rcond);
    pthread_mutex_destroy(&f->cmu);
    pthread_cond_destroy(&f->cwork);
    pthread_cond_destroy(&f->cdone);
    pthread_mutex_destroy(&f->qmu);
    pthread_cond_destroy(&f->qcv);
    free(f);
}

int fs_open_inodes(fs *f, uint64_t **out, size_t *n)
{
    *out = NULL;
    *n = 0;
    pthread_mutex_lock(&f->tlock);
    uint64_t *v = malloc((f->count ? f->count : 1) * sizeof(*v));
    if (!v) {
        pthread_mutex_unlock(&f->tlock);
        return -ENOMEM;
    }
    size_t k = 0;
    for (size_t i = 0; i < f->tabsize; i++)
        for (struct fs_node *nd = f->tab[i]; nd; nd = nd->next)
            if (nd->refs && k < f->count)
                v[k++] = nd->ino;
    pthread_mutex_unlock(&f->tlock);
    *out = v;
    *n = k;
    return 0;
}

/* Stop the replier once it has answered every read queued for it. */
static void replier_stop(fs *f)
{
    pthread_mutex_lock(&f->qmu);
    int started = f->replier_started;
    f->replier_stop = 1;
    pthread_cond_signal(&f->qcv);
    pthread_mutex_unlock(&f->qmu);
    if (started)
        pthread_join(f->replier, NULL);
    pthread_mutex_lock(&f->qmu);
    f->replier_started = 0;
    pthread_mutex_unlock(&f->qmu);
}

void fs_set_sync(fs *f, struct fs_sync *s)
{
    if (!s)
        replier_stop(f); /* before the caller frees the old one */
    __atomic_store_n(&f->sync, s, __ATOMIC_RELEASE);
    if (s && !f->replier_started) {
        pthread_mutex_lock(&f->qmu);
        f->replier_stop = 0;
        int rc = pthread_create(&f->replier, NULL, replier_main, f);
        f->replier_started = rc == 0;
        pthread_mutex_unlock(&f->qmu);
        if (rc == 0) {
            pthread_setname_np(f->replier, "landro-reply");
        } else {
            lr_warn("cannot start the replier thread: reads fetched from peers are answered "
                    "on the sync thread");
        }
    }
}

int fs_inval_inode(fs *f, uint64_t ino, int64_t off, int64_t len)
{
    return fuse_lowlevel_notify_inval_inode(f->se, ino, off, len);
}

void fs_reap(fs *f, uint64_t ino)
{
    node_orphaned(f, ino);
}

int fs_inval_entry(fs *f, uint64_t parent, const char *name, size_t len)
{
    return fuse_lowlevel_notify_inval_entry(f->se, parent, name, len);
}

int fs_notify_delete(fs *f, uint64_t parent, uint64_t child, const char *name, size_t len)
{
    return fuse_lowlevel_notify_delete(f->se, parent, child, name, len);
}
