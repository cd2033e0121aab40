/*
 * sync.h - replication between peers and on-demand chunk fetch: the glue
 * between the store (replica.h), the transport (net.h) and the mounted
 * file system (fs.h).
 *
 * One sync thread per daemon. It
 *  - keeps the transport's trusted peers equal to the store's "peer"
 *    database (re-read every second, so `landro peer add` needs no restart);
 *  - on each new connection sends SYNC_HELLO: "send me your change log
 *    after sequence N", N being what this store has applied of that peer
 *    (0, the whole log, when the peer was last seen more than half of the
 *    store's forget period ago: replica.h, FORGETTING DELETIONS), and
 *    notes in the peer's record when it was seen (at least every 10
 *    minutes while it streams);
 *  - streams its own change log to every peer that said hello: for each
 *    new log record, the current replication record of every file the
 *    record names (st_rep_export), and a mark after each batch;
 *  - applies the records peers stream to it (st_rep_apply), keeps records
 *    whose parent directory has not arrived yet and retries them, records
 *    per peer the highest sequence applied, then invalidates the kernel's
 *    caches for what changed and reaps files deleted by peers;
 *  - stores chunks fetched for readers (fs_sync_fetch);
 *  - with opts.replicate, fetches in the background every chunk of every
 *    file that is not held here (at most SYNC_BG_INFLIGHT at a time), so
 *    this device keeps a full copy: files a peer changes are queued as
 *    their records land, and all files are scanned once at start;
 *  - fetches in the background the new data of pinned files that peers
 *    change (a pinned file stays local; see evicts below);
 *  - counts copies: records which peers hold each chunk (store.h, "chunk
 *    holders") from the fetches it makes and from peers' HAVE frames, and
 *    re-checks a peer's records with HOLDQ when it connects;
 *  - pushes: files whose data is held here but known on fewer than
 *    opts.copies peers, opts.push_after_s after their last change, are
 *    sent to peers in a REPL frame; a peer with room fetches them;
 *  - evicts: with opts.cache_quota, when the chunk data passes the quota
 *    it picks the least recently used chunks that are not pinned (inode
 *    flag ST_INODE_PINNED on the file or a directory above it), not
 *    needed by an open file, and recorded on at least max(copies, 1)
 *    peers; asks those peers (HOLDQ) and drops only the chunks that
 *    enough of them confirm holding right now. A peer answers "busy" for
 *    chunks it is itself evicting, so two peers never drop the last two
 *    copies at once.
 * Known limit: chunks first written here are not announced; peers learn of
 * them when they fetch them (an under-count only keeps more data here).
 * Frame formats: docs/PROTOCOL.md, "Synchronization frames".
 *
 * Threads: fs_sync_new/start/stop/free from the daemon's main thread;
 * fs_sync_fetch from any thread (FUSE workers). Network callbacks only
 * copy data and queue it; the sync thread does all store writes.
 *
 * Errors: 0, -ENOMEM, -errno, store and net errors (lr.h).
 */
#ifndef FS_SYNC_H
#define FS_SYNC_H

#include <stdint.h>

#include "net.h"
#include "store.h"

struct fs;
struct fs_sync;

enum {
    FS_SYNC_HELLO = NET_FRAME_APP_MIN,  /* 0x100 */
    FS_SYNC_DATA,                       /* 0x101 */
    FS_SYNC_HAVE,                       /* 0x102 chunks the sender now holds / dropped */
    FS_SYNC_HOLDQ,                      /* 0x103 which of these chunks do you hold? */
    FS_SYNC_HOLDA,                      /* 0x104 the answer */
    FS_SYNC_REPL,                       /* 0x105 please keep a copy of these files */
};

#define FS_SYNC_COPIES_DEFAULT 1
#define FS_SYNC_PUSH_AFTER_DEFAULT 30 /* s: a file is pushed to peers this long after its last change */

struct fs_sync_opts {
    const char *listen[NET_MAX_LISTEN]; /* "host:port" (NULL-ended); none: no network */
    unsigned fetch_timeout_ms;           /* bound for an on-demand read, default 5000 */
    int replicate;                       /* fetch every file's data in the background */
    uint64_t cache_quota;                /* bytes of chunk data kept here; 0: no limit */
    int copies;                          /* peers new data is pushed to and that must hold a
                                          * chunk before it is evicted; < 0: default */
    int push_after_s;                    /* seconds after a file's last change; < 0: default */
    unsigned max_pending;                /* peers' records kept while their directory has not
                                          * arrived; 0: SYNC_MAX_PENDING (fs/sync.c). Beyond
                                          * it a record is dropped, not lost: what this store
                                          * tells the peer it applied stays below it, and the
                                          * stream is asked for again from there once nothing
                                          * from that peer waits any more */
};

/* Figures for `landro status`. */
struct fs_sync_status {
    uint64_t cache_bytes;      /* pages of chunk data in the store */
    uint64_t cache_quota;      /* 0: no limit */
    unsigned copies;
    int64_t unreplicated;      /* files with data here not yet known on `copies` peers; -1: not counted yet */
    uint64_t scan_files;       /* files the last count looked at */
    int scan_whole;            /* 1: it walked the whole store; 0: only changed and short files */
    uint64_t evicted_chunks, evicted_bytes; /* since the mount */
};
void fs_sync_status(struct fs_sync *s, struct fs_sync_status *out);

/* A reader used chunk h (LRU for the cache quota). Cheap; any thread. */
void fs_sync_touch(struct fs_sync *s, const st_hash *h);

/* Create the network node (identity from the store directory) and the
 * sync state. f may be NULL (no kernel to invalidate: tests, tools). */
int fs_sync_new(st_store *st, struct fs *f, const struct fs_sync_opts *o, struct fs_sync **out);
/* Attach the mounted file system once it exists (before start). */
void fs_sync_set_fs(struct fs_sync *s, struct fs *f);
int fs_sync_start(struct fs_sync *s);
void fs_sync_stop(struct fs_sync *s);
void fs_sync_free(struct fs_sync *s);
struct net_node *fs_sync_net(struct fs_sync *s);

/* Fetch chunk h from a peer and store it locally; done(ctx, err) runs on
 * the sync thread once the chunk is stored (err 0) or the fetch failed
 * (LR_ETIMEDOUT, -ENOENT, LR_EHASH, ...). Readers of the same chunk share
 * one network fetch, each within its own bound: fetch_timeout_ms from its
 * call (longer while the peer's connection keeps delivering, as net_fetch
 * says), even when it joined a read-ahead started earlier (that fetch is
 * asked for again, urgently, if it times out first). Returns 0 (done will
 * run) or an error (done will not run). */
int fs_sync_fetch(struct fs_sync *s, const st_hash *h, void (*done)(void *ctx, int err), void *ctx);

/* Fetch h in the background (read-ahead); nobody waits for it. Joins a
 * fetch of the same chunk already in flight. */
int fs_sync_prefetch(struct fs_sync *s, const st_hash *h);

/* Wake the sender: local changes were committed (cheap; any thread). */
void fs_sync_kick(struct fs_sync *s);

#endif
