/*
 * fs.h - the landro file system: libfuse3 low-level operations on top of
 * the store (store.h, ns.h).
 *
 * Inode numbers are store inode numbers (ST_ROOT_INO == FUSE_ROOT_ID).
 * The kernel's lookup counts and the open handles of every inode it knows
 * are kept in an in-memory table; an inode whose nlink reached 0 stays in
 * the store (readable and writable through open handles) until the kernel
 * forgets it and the last handle is released, then it is deleted by a
 * reaper thread (in batches, one transaction for many; files bigger than
 * 256 MiB are first truncated in 256 MiB steps so a nearly full disk can
 * still free space). At start every nlink == 0 inode left over from a
 * previous run is queued to the reaper (a failure only delays it). The
 * reaper also compacts the store's change log (replica.h, "LOG
 * COMPACTION") once it holds 10000 records and twice what the last pass
 * left, looking every 10 s. A compactor thread compacts the store itself
 * in place (st_compact_open) at a lull in commits once a delete has left
 * at least 64 MiB and half of data.mdb free, once the disk has room for
 * the copy; requests wait for it only
 * while it swaps the file in (docs/ARCHITECTURE.md, "Online compaction").
 *
 * Writes are staged per inode in memory (fs/stage.h) and committed with
 * st_ns_write (chunks, extents, size/mtime, one log record in one LMDB
 * transaction) on flush, fsync, release, before any size change, and
 * when the stage passes FS_STAGE_MAX_BYTES, FS_STAGE_MAX_RANGES or
 * FS_STAGE_MAX_AGE_NS (checked at each write and, for files left open
 * without writes, about once a second by the reaper thread). A stage that
 * a write finds full is handed to a committer thread and the write goes
 * on into a second, empty stage (double buffering); a write that finds
 * both full waits for the committer. flush, fsync, release and size
 * changes wait for a commit in flight before committing the rest, so
 * every write before them is in the store when they return. A commit
 * never needs the network: next to chunks held only by peers the staged
 * bytes get chunks of their own (st_file_write). A failed
 * commit (ENOSPC) keeps the stage; the error goes to the write that
 * needed room (for a background commit: the next write, which retries
 * the commit inline first), or to flush/fsync/close. Reads see staged
 * bytes, including those being committed, through every handle. fsync
 * and fsyncdir end with st_sync (durable). Reads are answered from the
 * LMDB map with fuse_reply_iov (no copy besides the kernel's), except
 * where staged bytes overlap the range (then one buffer is assembled).
 * st_blocks counts the bytes the file's extents map (holes excluded) and
 * SEEK_DATA/SEEK_HOLE answer from the extents after committing the stage.
 * Small writes: a staged range shorter than the volume's minimum chunk
 * (16 KiB) over data held here commits isolated (ST_WRITE_ISOLATE,
 * store.h): it gets a chunk of its own and the old extents are cut
 * around it, so an fsync after random 4 KiB writes hashes and stores 4
 * KiB per write instead of re-chunking the ~64 KiB chunk each falls in.
 * The reaper thread re-chunks such a file's fragments (st_ns_rechunk: the
 * same bytes, content-defined boundaries again, one log record per
 * transaction) once its isolated writes have been quiet for
 * FS_RECHUNK_IDLE_NS or number FS_RECHUNK_FRAGS, whether the file is
 * still open or not. Until then the file reads and replicates as usual,
 * with more, smaller extents. Fragments still pending at unmount are
 * re-chunked then, after the mountpoint is released, for at most
 * FS_RECHUNK_UNMOUNT_NS; those left after that, or by a daemon that was
 * killed, stay as they are (correct, only cut less well) until a later
 * write there re-chunks them.
 *
 * A read that needs a chunk held only by a peer (ST_SPAN_MISSING) is
 * answered later: the chunk is fetched through fs/sync.h (verified by its
 * hash), stored by the sync thread, and the read replayed from the store
 * on the replier thread (fs_set_sync); no FUSE worker waits on the
 * network. If no peer delivers within the fetch bound, the read fails
 * with EIO and the reason is logged. A miss starts read-ahead of the
 * next 8 MiB (kept ahead by later hits) and, when that reaches the end of
 * the file, of the first MiB of the next 128 files of its directory.
 *
 * Read-ahead: the kernel gives a FUSE mount a 128 KiB read-ahead window
 * (and caps INIT's max_readahead to it), so large reads would arrive as
 * 128 KiB READs. Once INIT has been answered, the reaper thread raises
 * the mount's window (/sys/class/bdi/MAJ:MIN/read_ahead_kb) to 4 MiB if it
 * is smaller and we may write it (root); READs then carry up to 1 MiB.
 *
 * Virtual extended attributes (not listed, not copied by cp -a/rsync -X):
 * user.landro.chunks "LOCAL/TOTAL" extents held here, user.landro.conflict
 * "0"/"1", user.landro.store (the store directory), and user.landro.pinned
 * "0"/"1", the only writable one: setting it pins or unpins the file or
 * directory (ST_INODE_PINNED, local, not replicated; see sync.h eviction).
 * Setting the others fails with EPERM.
 *
 * Locks (flock, POSIX): the ops table has no getlk/setlk/flock, so libfuse
 * does not announce FUSE_CAP_POSIX_LOCKS / FUSE_CAP_FLOCK_LOCKS and the
 * kernel keeps all locks locally for this mount (correct on one machine,
 * interruptible waits, so no locker is ever left unkillable). Locks are
 * not shared with peers.
 *
 * Threads: fs_run() serves requests on libfuse worker threads. The
 * invalidation functions may be called from any other thread (never from
 * inside a request handler of the same inode: the kernel may wait on it).
 *
 * Errors: 0 or a negative errno / LR_E* code; messages through lr_log.
 */
#ifndef FS_FS_H
#define FS_FS_H

#include <stddef.h>
#include <stdint.h>

#include "store.h"

#define FS_STAGE_MAX_BYTES  (32u << 20)          /* commit a stage beyond 32 MiB */
#define FS_STAGE_MAX_RANGES 4096u                 /* ... or this many ranges */
#define FS_STAGE_MAX_AGE_NS (5ull * 1000000000)  /* ... or 5 s after its first write */
#define FS_TIMEOUT_S 60.0                        /* kernel entry/attr cache timeout */
/* Re-chunking what isolated writes left (see "Small writes" above): once
 * a file's isolated writes have been quiet this long, or they number
 * this many, in transactions rewriting about this many bytes each. */
#define FS_RECHUNK_IDLE_NS (3ull * 1000000000)
#define FS_RECHUNK_FRAGS 16384u
#define FS_RECHUNK_TXN_BYTES (4u << 20)
#define FS_RECHUNK_UNMOUNT_NS (10ull * 1000000000) /* at most this long at unmount */

typedef struct fs fs;

struct fs_opts {
    const char *mountpoint;
    int allow_other;     /* -o allow_other */
    int read_only;       /* -o ro: the kernel refuses every change (EROFS) */
    int debug;           /* libfuse debug output */
    unsigned max_threads;/* 0: libfuse's default */
    int64_t forget_deleted_s; /* tombstones of files deleted longer ago than
                               * this count for nothing and are collected
                               * (replica.h, FORGETTING DELETIONS; fs_new
                               * calls st_set_forget_after); 0: kept for good */
};
#define FS_FORGET_DELETED_DEFAULT_S (90ll * 86400) /* landro mount's default */

/* Create the file system over an open store (the caller keeps ownership of
 * st and closes it after fs_free), delete leftover orphans, create the FUSE
 * session and mount it at o->mountpoint. Errors: -ENOENT / -ENOTDIR
 * (mountpoint), -EBUSY (already a mount there), -EIO (libfuse failed, see
 * log), store errors. *out set only on success. */
int fs_new(st_store *st, const struct fs_opts *o, fs **out);
/* Install SIGINT/SIGTERM/SIGHUP handlers that end fs_run(). */
int fs_handle_signals(fs *f);
/* Serve requests until unmounted (fusermount3 -u, umount) or a handled
 * signal arrives. Returns 0 or a negative error. */
int fs_run(fs *f);
/* Commit all staged data, sync the store, unmount (if still mounted) and
 * free. NULL is a no-op. The store stays open. */
void fs_free(fs *f);

/* Let reads fetch chunks held only by peers through s (NULL: they fail
 * with EIO). Set before fs_run; starts the replier thread, which answers
 * reads whose chunk was fetched (the sync thread hands them over).
 * fs_set_sync(f, NULL) answers the reads queued there and stops it: call
 * it before freeing the old s (fs_sync_free); later fetch outcomes are
 * answered on the thread that delivers them. */
struct fs_sync;
void fs_set_sync(fs *f, struct fs_sync *s);

/* The inodes with an open handle (or a request in flight) right now, for
 * the evictor: their chunks stay. *out is malloc'd (caller frees). Any
 * thread. */
int fs_open_inodes(fs *f, uint64_t **out, size_t *n);

/* Tell the kernel that inode ino's data in [off, off+len) (len 0: to the
 * end) or, with off < 0, only its attributes changed (a peer's change
 * landed). -ENOENT if the kernel does not know the inode (fine to ignore). */
int fs_inval_inode(fs *f, uint64_t ino, int64_t off, int64_t len);
/* Tell the kernel that name in directory parent changed or vanished. */
int fs_inval_entry(fs *f, uint64_t parent, const char *name, size_t len);
/* Peers' changes were committed and their invalidations are about to go to
 * the kernel (sync thread): entry replies built from older snapshots go
 * out without a timeout from now on, so none of them outlives the
 * invalidation it raced with. */
void fs_peer_changed(fs *f);
/* Tell the kernel that name in parent, which named child, was deleted:
 * it also drops child's link count, so the inode is forgotten once
 * unused. -ENOENT if the kernel has no such entry cached. */
int fs_notify_delete(fs *f, uint64_t parent, uint64_t child, const char *name, size_t len);
/* Inode ino's nlink reached 0 in a transaction made outside fs/ (a peer
 * deleted it): delete it from the store now if the kernel holds no lookup
 * and no handle is open, else when the last of those goes. Logs failures.
 * Any thread, no locks held. */
void fs_reap(fs *f, uint64_t ino);

#endif
