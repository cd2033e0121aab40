/*
 * store.h - landro's content-addressed store: one LMDB environment per
 * store directory holding chunks by hash, inodes, directory entries, file
 * extents, extended attributes, the change log and peers.
 *
 * CONTRACT
 *
 * Return values: 0 on success, otherwise a negative errno or LR_E* code
 * (lr.h). LMDB codes never escape: MDB_MAP_FULL becomes -ENOSPC,
 * MDB_CORRUPTED / MDB_PAGE_NOTFOUND / undecodable values become
 * -LR_ECORRUPT (and are logged with the store directory and the key),
 * MDB_VERSION_MISMATCH / MDB_INVALID become -LR_EVERSION / -LR_ECORRUPT.
 * Every function taking an st_txn fails fast with the first error if the
 * transaction already failed (the txn is "poisoned", as in LMDB); the caller
 * must then st_txn_abort() it.
 *
 * Threads: an st_store may be shared by any number of threads. An st_txn
 * belongs to one thread at a time (it may move between threads: the
 * environment is opened with MDB_NOTLS). One write transaction exists at a
 * time in the whole process; st_txn_begin(ST_TXN_WRITE) blocks until the
 * previous one ends. Read transactions never block and see a snapshot.
 *
 * Memory: pointers returned into the store (chunk bytes, xattr values,
 * read spans) point into the LMDB map and stay valid only until the
 * transaction that produced them ends (commit or abort) or until the same
 * write transaction modifies the same key. Copy them to keep them.
 *
 * Durability: commits are group-committed (MDB_NOSYNC): a committed
 * transaction survives the death of the process (kill -9) at once, and
 * survives power loss after st_sync() returns 0. fsync() on the file system
 * maps to st_sync(). Writers map the store writable (MDB_WRITEMAP) and keep
 * data.mdb as long as the pages in use; a full disk is -ENOSPC from the put
 * or delete that would need more, never SIGBUS (store/mapspace.c).
 *
 * ON-DISK LAYOUT (format version ST_FORMAT_VERSION). Integers in values are
 * little-endian; integer keys are big-endian so LMDB's memcmp order is
 * numeric order. Every value begins with a one-byte record version.
 *
 *   db "meta": key = ASCII name
 *     "format"      u32 store format version
 *     "volume"      16 B volume id (random at creation)
 *     "device"      32 B this device's id (SHA-256 of its public key)
 *     "cdc"         u32 min, u32 avg, u32 max chunk size (bytes)
 *     "next_ino"    u64 next inode number to hand out
 *     "next_fid"    u64 next file id counter (global id = device ‖ counter)
 *     "seq"         u64 next change-log sequence number (starts at 1)
 *
 *   db "chunk": key = hash (32 B) -> the chunk's bytes (absent when only a
 *     peer holds it).
 *
 *   db "chunkref": key = hash (32 B) -> value (ST_CHUNKREF_LEN = 32 B)
 *     off size field
 *       0   1  record version (1)
 *       1   1  flags (ST_CHUNK_LOCAL, ST_CHUNK_PINNED)
 *       2   2  reserved (0)
 *       4   4  chunk length in bytes
 *       8   8  refcount: number of extents naming this chunk
 *      16   8  last use, wall clock seconds
 *      24   4  number of peers known to hold it (entries in "holder")
 *      28   4  reserved (0)
 *
 *   db "inode": key = inode number (u64 BE) -> value (ST_INODE_LEN fixed
 *     part, then version vector entries)
 *     off size field
 *       0   1  record version (1)
 *       1   1  reserved
 *       2   2  number of version vector entries (n <= ST_VV_MAX)
 *       4   4  mode (type and permission bits as in st_mode)
 *       8   4  uid
 *      12   4  gid
 *      16   4  nlink
 *      20   4  flags (ST_INODE_*)
 *      24   8  size in bytes
 *      32   8  rdev
 *      40  16  global file id (8 B device prefix, u64 counter)
 *      56  12  atime (i64 seconds, u32 nanoseconds)
 *      68  12  mtime
 *      80  12  ctime
 *      92  12  btime (creation)
 *     104   8  parent inode hint (the directory it was created in)
 *     112   8  writer: device prefix of the last device that changed it
 *     120  n*16 version vector: (8 B device prefix, u64 counter) each
 *
 *   db "dirent": key = parent inode (u64 BE) ‖ name bytes (1..255, no NUL)
 *     -> value: u8 version, u8 type (DT_*), 6 reserved, u64 child inode.
 *     A prefix scan over the parent lists a directory in name order.
 *
 *   db "extent": key = inode (u64 BE) ‖ file offset (u64 BE) -> value
 *     off size field
 *       0   1  record version (1)
 *       1   3  reserved
 *       4   4  length of the extent in bytes (1..ST_CDC_MAX_LIMIT)
 *       8   4  offset of the extent's first byte inside the chunk
 *      12  32  chunk hash
 *     Extents of a file never overlap; absent ranges are holes (zeros).
 *
 *   db "xattr": key = inode (u64 BE) ‖ attribute name -> raw value bytes.
 *
 *   db "log": key = sequence number (u64 BE) -> change record (opaque to
 *     the store; the sync layer defines it).
 *
 *   db "peer": key = device id (32 B) -> peer record (opaque to the store).
 *
 *   db "fid": key = global file id (16 B) -> inode number (u64 BE).
 *     Maintained by st_inode_put/st_inode_del; replication finds files by it.
 *
 *   db "tomb": key = global file id (16 B) -> the replication record
 *     (replica.h) of a deleted file: its version vector outlives it so a
 *     stale copy from a peer does not bring it back.
 *
 *   db "version": key = inode (u64 BE) ‖ version number (u64 BE) -> a
 *     previous version of a regular file (version.c), holding one chunk
 *     reference per extent:
 *     off size field
 *       0   1  record version (1)
 *       1   3  reserved
 *       4   4  number of extents n
 *       8   8  size of the file then
 *      16  12  its mtime then
 *      28  12  when it was kept
 *      40 n*48 extents: u64 offset, u32 length, u32 offset in chunk, 32 B hash
 *
 *   db "holder": key = chunk hash (32 B) ‖ peer device id (32 B) -> value
 *     (16 B): u8 record version (1), 7 reserved, u64 wall clock seconds
 *     when it was last learned. One per peer known to hold the chunk's
 *     bytes (holder.c); deleted with the chunkref.
 *
 *   db "backref": key = child inode (u64 BE) ‖ parent inode (u64 BE) ‖ name
 *     -> empty. One per directory entry, maintained by st_dirent_put/del:
 *     the names of an inode (hard links) without a scan.
 *
 * A file of ST_LOCKFILE in the store directory is flock()ed exclusively by
 * the process that opens the store with ST_OPEN_EXCL (the daemon, fsck -y).
 * Every opener also holds a shared fcntl() lock on its first byte while the
 * store is open, and st_compact an exclusive one (mapspace.c says why).
 */
#ifndef ST_STORE_H
#define ST_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>

#include "lr.h"
#include "chunker.h"
#include "hash.h"

#define ST_FORMAT_VERSION 2 /* 2: db "holder" */
#define ST_ROOT_INO 1
#define ST_VV_MAX 32
#define ST_NAME_MAX 255
#define ST_LOCKFILE "landro.lock"
#define ST_CHUNKREF_LEN 32
#define ST_INODE_LEN 120
#define ST_EXTENT_LEN 44
#define ST_DIRENT_LEN 16
#define ST_VOLUME_ID_LEN 16
#define ST_DEVICE_ID_LEN 32

typedef struct st_store st_store;
typedef struct st_txn st_txn;

/* ---- environment ---------------------------------------------------- */

enum {
    ST_OPEN_CREATE = 1 << 0, /* create the directory and an empty volume if absent */
    ST_OPEN_RDONLY = 1 << 1, /* no write transactions allowed */
    ST_OPEN_EXCL   = 1 << 2, /* take the store's lock file; -LR_ELOCKED if held */
    ST_OPEN_NOGATE = 1 << 3, /* st_compact's own open only (mapspace.c) */
};

/* Open (and with ST_OPEN_CREATE create) the store in directory dir.
 * On creation the volume gets a random id, the root directory (inode 1,
 * mode 0755, owned by the caller) and the default chunker parameters.
 * Errors: -ENOENT (no store and no ST_OPEN_CREATE), -LR_EVERSION (format
 * version differs), -LR_EPARAMS (chunker parameters invalid),
 * -LR_ECORRUPT (LMDB file or meta damaged), -LR_ELOCKED, -EBUSY (being
 * compacted, st_compact), -errno.
 * *out is set only on success; free with st_close(). */
int st_open(const char *dir, unsigned flags, st_store **out);
/* Close; NULL is a no-op. All transactions must have ended. */
void st_close(st_store *st);
/* Flush committed transactions to stable storage (mdb_env_sync force). */
int st_sync(st_store *st);
/* Rewrite the store in directory dir without its free pages (LMDB's
 * compacting copy, then a rename over data.mdb), giving the space of
 * deleted data back to the file system and LMDB a short free list
 * (docs/PERFORMANCE.md, "Writable map"). No other process may have the
 * store open, and none can open it meanwhile: -EBUSY if one has it open
 * (a mounted daemon, `landro peer add`, a read-only `landro id`), or
 * the errors of st_open. A crash leaves either store whole. *before and
 * *after get data.mdb's length. */
int st_compact(const char *dir, uint64_t *before, uint64_t *after);

/* data.mdb's pages in use (file_bytes: st_usage's map_bytes) and how
 * many of them are on LMDB's free list (pages of deleted data, and the
 * free list's own), in bytes. */
struct st_space {
    uint64_t file_bytes;
    uint64_t free_bytes;
};
int st_space(st_store *st, struct st_space *out);
/* st_compact on a store this process has open and keeps using (the
 * daemon, when deleted data has left much of the file free): the copy is
 * made while transactions go on; then, once every open transaction has
 * ended (new ones wait meanwhile, up to wait_ms for the old ones), if
 * none committed since the copy began, it is renamed over data.mdb and
 * the environment opened again on it; otherwise the copy is dropped.
 * One caller at a time; it must hold no transaction, and no other
 * st_store of the same process may have the store open (fcntl locks do
 * not tell a process's own opens apart; the daemon opens it once).
 * Returns 0 (compacted), -EAGAIN (a transaction committed during the
 * copy, or one stayed open past wait_ms: nothing changed, try later),
 * -EBUSY (another process has the store open), -ENOSPC (the disk cannot
 * hold the copy and 64 MiB more), -ECANCELED (st_compact_cancel was
 * called: the copy stops within about 100 ms and is dropped; every call
 * after it returns at once), -EROFS (opened read-only), -errno or
 * LMDB's errors. Should the environment fail to open again (not seen:
 * out of memory, say), every transaction fails with -EIO from then on;
 * the store on disk is whole. *before and *after: data.mdb's length. */
int st_compact_open(st_store *st, unsigned wait_ms, uint64_t *before, uint64_t *after);
/* Stop st_compact_open's copy under way, if any, and refuse every later
 * one (for an unmount, which should not wait for a copy of the whole
 * store). Any thread; returns at once. */
void st_compact_cancel(st_store *st);
/* Write transactions committed through st since it was opened (any
 * thread); a caller compares two readings to find a lull. */
uint64_t st_commits(st_store *st);
const char *st_dir(const st_store *st);

struct st_meta {
    uint32_t format;
    uint8_t volume[ST_VOLUME_ID_LEN];
    uint8_t device[ST_DEVICE_ID_LEN]; /* all zero until st_meta_set_device */
    struct st_cdc_params cdc;
};
/* Copy of the meta read at open (volume id may change with set_volume). */
void st_meta(const st_store *st, struct st_meta *out);

/* Environment-wide figures for statfs and status. */
struct st_usage {
    uint64_t inodes;        /* entries in "inode" */
    uint64_t chunks;        /* chunk records known (local or not) */
    uint64_t local_chunks;  /* chunks whose bytes are held here */
    uint64_t local_bytes;   /* pages used by those bytes in the map (cache use) */
    uint64_t map_bytes;     /* bytes used in the LMDB file */
};
int st_usage(st_store *st, struct st_usage *out);

/* ---- transactions --------------------------------------------------- */

enum { ST_TXN_READ = 0, ST_TXN_WRITE = 1 };
/* Begin a transaction. Errors: -EROFS (write on a read-only store), -ENOMEM. */
int st_txn_begin(st_store *st, int mode, st_txn **out);
/* Commit and free. On error the transaction is aborted and freed anyway.
 * -ENOSPC when the disk or the map is full: nothing of it was committed. */
int st_txn_commit(st_txn *txn);
/* Abort and free; NULL is a no-op. */
void st_txn_abort(st_txn *txn);
/* fn(ctx) is called after each committed write transaction that appended
 * to the change log, on the committing thread, after the commit: it must
 * be quick and must not commit (the sync layer wakes its sender). NULL
 * removes it; once st_set_log_hook returns, the old hook is not running
 * and will not run again. Any thread. */
void st_set_log_hook(st_store *st, void (*fn)(void *ctx), void *ctx);
/* End a write transaction by the outcome of the work done in it: rc == 0
 * commits (returning the commit's result), anything else aborts (txn may
 * then be NULL: a begin that failed) and returns rc. */
int st_txn_end(st_txn *txn, int rc);
/* The first error this transaction hit, or 0. */
int st_txn_error(const st_txn *txn);
st_store *st_txn_store(const st_txn *txn);

/* Meta updates (write txn). */
int st_meta_set_device(st_txn *txn, const uint8_t device[ST_DEVICE_ID_LEN]);
int st_meta_set_volume(st_txn *txn, const uint8_t volume[ST_VOLUME_ID_LEN]);
/* Hand out the next value of a u64 counter in meta ("next_ino", "next_fid",
 * "seq"). Write txn. */
int st_meta_next(st_txn *txn, const char *key, uint64_t *out);

/* ---- inodes --------------------------------------------------------- */

enum {
    ST_INODE_CONFLICT = 1 << 0, /* this file is a conflict copy */
    ST_INODE_PINNED   = 1 << 1, /* keep all its chunks local */
};

struct st_vv_entry { uint8_t dev[8]; uint64_t ctr; };
struct st_inode {
    uint64_t ino;
    uint32_t mode, uid, gid, nlink, flags;
    uint64_t size, rdev;
    uint8_t fid[16];
    struct timespec atime, mtime, ctime, btime;
    uint64_t parent;
    uint8_t writer[8];
    uint16_t nvv;
    struct st_vv_entry vv[ST_VV_MAX];
};

/* Version vectors. st_vv_bump adds one to dev's counter (adding the entry
 * if absent) and records dev as the inode's writer: call it once per local
 * change. st_vv_compare returns ST_VV_EQUAL, ST_VV_LESS (a happened before
 * b), ST_VV_GREATER or ST_VV_CONCURRENT. st_vv_merge sets a to the
 * pointwise maximum of a and b. */
enum { ST_VV_EQUAL, ST_VV_LESS, ST_VV_GREATER, ST_VV_CONCURRENT };
void st_vv_bump(struct st_inode *in, const uint8_t dev[8]);
int st_vv_compare(const struct st_vv_entry *a, uint16_t na, const struct st_vv_entry *b, uint16_t nb);
void st_vv_merge(struct st_vv_entry *a, uint16_t *na, const struct st_vv_entry *b, uint16_t nb);

/* Allocate a fresh inode number and global file id, fill *ino's ino and fid
 * (other fields untouched). Write txn. */
int st_inode_alloc(st_txn *txn, struct st_inode *ino);
/* -ENOENT if absent; -LR_ECORRUPT if the record does not decode. */
int st_inode_get(st_txn *txn, uint64_t ino, struct st_inode *out);
/* Create or replace. Write txn. */
int st_inode_put(st_txn *txn, const struct st_inode *in);
/* Delete the inode, all its extents (dropping chunk references) and its
 * xattrs. Directory entries are the caller's business. Write txn. */
int st_inode_del(st_txn *txn, uint64_t ino);
/* Call cb for every inode in number order; cb returning non-zero stops the
 * walk and that value is returned. */
int st_inode_foreach(st_txn *txn, int (*cb)(const struct st_inode *, void *), void *arg);

/* The inode holding global file id fid. -ENOENT if none. */
int st_fid_lookup(st_txn *txn, const uint8_t fid[16], uint64_t *ino);

/* 0 if name (len bytes) can be a directory entry; -EINVAL for an empty
 * name or one holding '/' or NUL, -ENAMETOOLONG past ST_NAME_MAX. */
int st_name_check(const char *name, size_t len);
/* The DT_* directory entry type for a st_mode. */
uint8_t st_mode_dtype(uint32_t mode);

/* ---- directory entries ---------------------------------------------- */

struct st_dirent {
    uint64_t parent, child;
    uint8_t type;                 /* DT_REG, DT_DIR, ... */
    uint16_t namelen;
    char name[ST_NAME_MAX + 1];   /* NUL-terminated copy */
};

/* Errors: -ENOENT, -ENAMETOOLONG (len > ST_NAME_MAX), -EINVAL (len 0 or a
 * '/' or NUL in the name). */
int st_dirent_get(st_txn *txn, uint64_t parent, const char *name, size_t len, struct st_dirent *out);
/* Insert or replace. Write txn. */
int st_dirent_put(st_txn *txn, uint64_t parent, const char *name, size_t len, uint64_t child, uint8_t type);
/* -ENOENT if absent. Write txn. */
int st_dirent_del(st_txn *txn, uint64_t parent, const char *name, size_t len);
/* Visit parent's entries in name (memcmp) order, starting strictly after
 * the name `after` (NULL: from the first). cb returning non-zero stops the
 * walk and that value is returned. */
int st_dirent_foreach(st_txn *txn, uint64_t parent, const char *after, size_t afterlen,
                      int (*cb)(const struct st_dirent *, void *), void *arg);
/* Visit every (parent, name) naming child, in parent then name order. */
int st_dirent_names(st_txn *txn, uint64_t child,
                    int (*cb)(uint64_t parent, const char *name, size_t len, void *), void *arg);
/* 1 if parent has no entries, 0 if it has, or a negative error. */
int st_dirent_empty(st_txn *txn, uint64_t parent);

/* ---- chunks --------------------------------------------------------- */

enum { ST_CHUNK_LOCAL = 1 << 0, ST_CHUNK_PINNED = 1 << 1 };
struct st_chunkref {
    uint8_t flags;
    uint32_t len;
    uint64_t refcount;
    uint64_t last_use;
    uint32_t peers;
};

/* Store bytes under their hash, which the caller computed or verified.
 * Existing bytes are left alone (dedup). Creates the chunkref with
 * refcount 0 if absent; such a chunk must be referenced by an extent before
 * commit or it is garbage (fsck reclaims it). Write txn. */
int st_chunk_put(st_txn *txn, const st_hash *h, const void *data, size_t len);
/* Record that a chunk of len bytes exists (held by a peer) without its
 * bytes: creates the chunkref (refcount 0, not local) if absent. For the
 * sync layer, which learns extents before the data. Write txn. */
int st_chunk_declare(st_txn *txn, const st_hash *h, uint32_t len);
/* Zero-copy read. -ENOENT if the chunk is unknown, -LR_EMISSING if known
 * but not held here. *data valid until the txn ends. */
int st_chunk_get(st_txn *txn, const st_hash *h, const void **data, size_t *len);
int st_chunk_info(st_txn *txn, const st_hash *h, struct st_chunkref *out);
/* Record a use of chunk h at wall clock second `when` (LRU for eviction);
 * never moves last_use back. -ENOENT if unknown. Write txn. */
int st_chunk_touch(st_txn *txn, const st_hash *h, uint64_t when);
/* Drop the local bytes of a chunk (eviction); keeps the chunkref. */
int st_chunk_evict(st_txn *txn, const st_hash *h);
int st_chunk_foreach(st_txn *txn, int (*cb)(const st_hash *, const struct st_chunkref *, void *), void *arg);

/* ---- chunk holders --------------------------------------------------- */

/* Which peers are known to hold a chunk's bytes: learned when we fetch a
 * chunk from a peer, when a peer says it stored or dropped chunks, and
 * when a peer answers a hold query (fs/sync.c). The chunkref's peers
 * field is kept equal to the number of holders. It is knowledge, not a
 * promise: a peer may drop a chunk before we hear of it, so eviction asks
 * the holders again first.
 *
 * st_holder_set records (holds != 0) or forgets (holds == 0) that peer dev
 * holds h; for a chunk this store does not know (no chunkref) it does
 * nothing and returns 0. *changed (if non-NULL) is set to 1 if the
 * record changed. Write txn. */
int st_holder_set(st_txn *txn, const st_hash *h, const uint8_t dev[ST_DEVICE_ID_LEN], int holds,
                  int *changed);
/* 1 if dev is recorded as holding h, 0 if not, or an error. */
int st_holder_has(st_txn *txn, const st_hash *h, const uint8_t dev[ST_DEVICE_ID_LEN]);
/* Visit the peers recorded as holding h, in id order; cb returning
 * non-zero stops the walk and that value is returned. */
int st_holder_foreach(st_txn *txn, const st_hash *h,
                      int (*cb)(const uint8_t *dev, void *), void *arg);
/* Visit every (chunk, peer) record, in chunk order. */
int st_holder_foreach_all(st_txn *txn, int (*cb)(const st_hash *h, const uint8_t *dev, void *),
                          void *arg);
/* Forget everything recorded about peer dev (it was removed). One pass
 * over the holder db. Write txn. */
int st_holder_forget_peer(st_txn *txn, const uint8_t dev[ST_DEVICE_ID_LEN]);

/* ---- file data ------------------------------------------------------ */

struct st_extent {
    uint64_t off;       /* file offset of the first byte */
    uint32_t len;       /* bytes */
    uint32_t chunk_off; /* where in the chunk those bytes start */
    st_hash hash;
};

/* The extent containing off, else the first one after off. -ENOENT if the
 * file has no data at or after off. */
int st_extent_find(st_txn *txn, uint64_t ino, uint64_t off, struct st_extent *out);
int st_extent_foreach(st_txn *txn, uint64_t ino, uint64_t from,
                      int (*cb)(uint64_t ino, const struct st_extent *, void *), void *arg);
/* Insert one extent (and a reference to its chunk, whose chunkref must
 * exist). For the sync layer and fsck; ordinary writes use st_file_write.
 * Write txn. */
int st_extent_put(st_txn *txn, uint64_t ino, const struct st_extent *e);

/* Write len bytes at off into file ino: the affected range is re-chunked
 * from the previous chunk boundary until boundaries resynchronise with the
 * old ones, new chunks are stored, extents replaced and chunk refcounts
 * adjusted (chunks reaching 0 are deleted), all inside txn. The inode's
 * size and times are the caller's business. Costs O(len + chunk), not
 * O(file). When an old chunk next to the range is held only by peers (a
 * file whose data is elsewhere), it is not re-chunked: the new bytes get
 * chunks of their own and the old extents are cut at the range, so the
 * write never needs the network (boundaries there are then not content
 * defined, as after a forced cut). Write txn. */
int st_file_write(st_txn *txn, uint64_t ino, uint64_t off, const void *buf, size_t len);
/* One range of st_file_writev. */
struct st_wrange {
    uint64_t off;
    size_t len;
    const void *data;
};
/* st_file_writev's flags. ST_WRITE_ISOLATE: a range shorter than the
 * volume's minimum chunk size that lies wholly over data held here gets
 * chunks of its own and the old extents are cut around it (as next to a
 * peer's chunks, above), instead of re-chunking the chunk it falls in: a
 * random 4 KiB write then hashes and stores 4 KiB, not the ~45 KB of
 * chunk around it. It leaves fragments (extents naming part of a chunk,
 * chunks shorter than the minimum) that st_file_rechunk makes content
 * defined again later, once for many writes. */
#define ST_WRITE_ISOLATE 1u
/* What st_file_writev wrote isolated: how many ranges, and the file range
 * [lo, hi) they span (lo = UINT64_MAX, hi = 0 when none). */
struct st_wstat {
    uint64_t isolated;
    uint64_t lo, hi;
};
/* Write n non-overlapping ranges: the same bytes as st_file_write of each
 * in turn, but a run of ranges in increasing order whose gaps each lie in
 * at most two old extents, all data held here (no hole, no chunk held
 * only by peers), goes through st_file_write as one range with the old
 * bytes in its gaps (runs up to 8 MiB). Re-chunking them apart would
 * cover those extents anyway, so a chunk that several small writes fall
 * into (a stage of random 4 KiB writes) is re-chunked, hashed and stored
 * once instead of once per write, and nothing else is. With
 * ST_WRITE_ISOLATE in flags, small ranges over local data are written
 * isolated instead (above) and counted in *ws (may be NULL). Write txn.
 * Errors: those of st_file_write, -ENOMEM. */
int st_file_writev(st_txn *txn, uint64_t ino, const struct st_wrange *r, size_t n, unsigned flags,
                   struct st_wstat *ws);
/* Make the fragments of file ino in [off, off + len) content defined
 * again. A fragment is an extent, held here, that names part of its chunk
 * or a chunk shorter than the volume's minimum; each run of contiguous
 * fragments (of two or more extents, or naming part of a chunk) is
 * written again with its own bytes through st_file_write, re-chunked from
 * the previous boundary until the boundaries agree. The file's bytes
 * never change, only how they are cut; fragments that are the only
 * extent of their run and name a whole chunk (a file's short last chunk),
 * and chunks held only by peers, are left alone. Stops at the first run
 * ending at or past off + budget bytes rewritten: *next is where to go on
 * (off + len when done) and *rewritten counts the bytes written again
 * (0: nothing changed). The walk starts at the extent holding the byte
 * before off: a write at off cut the chunk it fell in, whose head is a
 * fragment just before off. O(extents in the range + bytes rewritten).
 * Write txn. Errors: those of st_file_write, -ENOMEM. */
int st_file_rechunk(st_txn *txn, uint64_t ino, uint64_t off, uint64_t len, uint64_t budget,
                    uint64_t *next, uint64_t *rewritten);
/* Drop data at or beyond new_size (a straddling extent is trimmed). */
int st_file_truncate(st_txn *txn, uint64_t ino, uint64_t new_size);
/* Make [off, off+len) a hole. */
int st_file_punch(st_txn *txn, uint64_t ino, uint64_t off, uint64_t len);

/* Bytes of file ino that extents map (holes excluded; whether the chunks
 * are local does not matter): what st_blocks reports. O(extents). */
int st_file_allocated(st_txn *txn, uint64_t ino, uint64_t *bytes);
/* lseek(2)'s SEEK_DATA (data = 1) or SEEK_HOLE (data = 0) for a file of
 * size bytes: *out gets the first offset >= off that starts data / lies
 * in a hole (the end of the file counts as a hole). -ENXIO if off >= size,
 * or for SEEK_DATA when no data follows off. */
int st_file_seek(st_txn *txn, uint64_t ino, uint64_t size, uint64_t off, int data, uint64_t *out);

enum { ST_SPAN_DATA, ST_SPAN_HOLE, ST_SPAN_MISSING };
struct st_span {
    int kind;
    const void *data;   /* ST_SPAN_DATA: points into the map */
    size_t len;
    st_hash hash;       /* DATA: the chunk read; MISSING: the chunk to fetch */
    uint32_t chunk_off; /* ST_SPAN_MISSING: where the bytes start in it */
    uint32_t chunk_len; /* ST_SPAN_MISSING: the chunk's length */
};
/* Describe [off, off+len) of file ino as up to max spans, in order; *n gets
 * the count. The spans cover exactly len bytes unless max was too small
 * (then they cover a prefix; call again from where they end). Bytes past
 * the last extent read as a hole: clamp len to the file size first.
 * Updates nothing (read txn is fine). */
int st_file_read(st_txn *txn, uint64_t ino, uint64_t off, size_t len,
                 struct st_span *spans, size_t max, size_t *n);

/* ---- previous versions ----------------------------------------------- */

#define ST_VERSIONS_MAX 8              /* kept per file; the oldest goes */
#define ST_VERSION_MIN_AGE_DEFAULT 10  /* seconds, see st_version_save */

struct st_version {
    uint64_t size;
    struct timespec mtime, saved;
    uint32_t nextents;
    const uint8_t *extents; /* points into the record (valid as the txn) */
};
/* Keep the current data of regular file in as a version (taking a
 * reference on each of its chunks) unless its mtime is younger than the
 * minimum age, so one editing session (many commits in a row) makes one
 * version. Drops the oldest beyond ST_VERSIONS_MAX. Write txn; call before
 * changing the file's extents. */
int st_version_save(st_txn *txn, const struct st_inode *in);
/* The minimum age in seconds (default ST_VERSION_MIN_AGE_DEFAULT). */
void st_version_set_min_age(unsigned seconds);
/* Visit ino's versions, oldest first. */
int st_version_foreach(st_txn *txn, uint64_t ino,
                       int (*cb)(uint64_t vno, const struct st_version *, void *), void *arg);
/* -ENOENT if ino has no version vno. */
int st_version_get(st_txn *txn, uint64_t ino, uint64_t vno, struct st_version *out);
/* The i-th extent of a version (i < nextents). */
void st_version_extent(const struct st_version *v, uint32_t i, struct st_extent *e);
/* Bounds-checked decoder (fsck, fuzzing): -LR_ECORRUPT if malformed. */
int st_version_decode(const void *buf, size_t len, struct st_version *out);

/* ---- extended attributes -------------------------------------------- */

/* -ENODATA if absent. *val valid until txn ends. */
int st_xattr_get(st_txn *txn, uint64_t ino, const char *name, const void **val, size_t *len);
int st_xattr_put(st_txn *txn, uint64_t ino, const char *name, const void *val, size_t len);
int st_xattr_del(st_txn *txn, uint64_t ino, const char *name);
int st_xattr_foreach(st_txn *txn, uint64_t ino, int (*cb)(const char *name, size_t vlen, void *), void *arg);

/* ---- change log ----------------------------------------------------- */

/* Append a record under the next sequence number (meta "seq"). Write txn. */
int st_log_append(st_txn *txn, const void *rec, size_t len, uint64_t *seq);
/* Visit records with seq >= from in order. *rec valid during the callback. */
int st_log_foreach(st_txn *txn, uint64_t from,
                   int (*cb)(uint64_t seq, const void *rec, size_t len, void *), void *arg);

/* ---- peers ---------------------------------------------------------- */

int st_peer_put(st_txn *txn, const uint8_t id[ST_DEVICE_ID_LEN], const void *rec, size_t len);
int st_peer_get(st_txn *txn, const uint8_t id[ST_DEVICE_ID_LEN], const void **rec, size_t *len);
int st_peer_del(st_txn *txn, const uint8_t id[ST_DEVICE_ID_LEN]);
int st_peer_foreach(st_txn *txn, int (*cb)(const uint8_t *id, const void *rec, size_t len, void *), void *arg);

/* ---- value codecs (exposed for fsck and fuzz targets) ---------------- */

/* Decode/encode one record. Decoders check every length and field and
 * return -LR_ECORRUPT on anything out of range; they never read past len. */
int st_inode_decode(const void *buf, size_t len, struct st_inode *out);
size_t st_inode_encode(const struct st_inode *in, uint8_t *buf, size_t cap);
int st_chunkref_decode(const void *buf, size_t len, struct st_chunkref *out);
void st_chunkref_encode(const struct st_chunkref *in, uint8_t buf[ST_CHUNKREF_LEN]);
int st_extent_decode(const void *key, size_t klen, const void *val, size_t vlen,
                     uint64_t *ino, struct st_extent *out);
int st_dirent_decode(const void *key, size_t klen, const void *val, size_t vlen, struct st_dirent *out);

#endif
