/*
 * replica.h - state-based replication of files between peers.
 *
 * A replication record is the whole metadata state of one file, named by
 * its global file id: attributes, version vector, every name (parent file
 * id + name), xattrs and the extent list (chunk hashes, not bytes). Peers
 * send each other records; st_rep_apply merges one into the local store:
 *
 *   local version vector dominates or equals  -> ignored (equal versions
 *       of a directory: each side keeps the later mtime and ctime, as
 *       entries change them without a new version, see ns.h)
 *   remote dominates                          -> remote state adopted
 *   concurrent                                -> the winner's state (later
 *       mtime, then greater writer device) is adopted by both sides and the
 *       vectors are merged (pointwise max), so both converge to the same
 *       state and vector without further traffic. A deletion loses to any
 *       concurrent modification. When the two versions of a regular file
 *       have different data, the side holding the losing version locally
 *       keeps it as a new file "name.sync-conflict-YYYYMMDD-HHMMSS-DEV.ext"
 *       (its extents are shared, no bytes are copied).
 *
 * A name already taken by another file is a name conflict: the file with
 * the later mtime (then greater file id) keeps the name and the other is
 * linked under its conflict name; both sides compute the same name.
 * Deleting a non-empty directory loses to what is inside: the directory is
 * kept. Deleted files leave a tombstone (db "tomb") holding their final
 * record so a stale copy cannot resurrect them.
 *
 * Every change that st_rep_apply makes locally is appended to the change
 * log as an ST_REP_LOG record, so changes relay through peers.
 *
 * CHANGE LOG CONTRACT. Every record in the store's log, whatever wrote it
 * (ns.c for local operations, this module for applied remote ones), starts
 * with a version byte and an op byte and holds file ids at fixed offsets:
 * subject at 16, its directory at 32, a second file at 48, that one's
 * directory at 64 (all-zero when absent). st_rep_log_fids() extracts them:
 * the sender replicates the current state of each.
 *
 * LOG COMPACTION (st_log_compact). Since a record only says which files to
 * send, and the sender sends their state as it is when it sends, most old
 * records are redundant: without compaction the log grew by one record per
 * operation forever (20000 files created and deleted left 60000 records,
 * 10 MB, in an empty volume), and a new peer's first sync walked all of
 * them. A record is dropped when every file it names
 *   (a) is named by a later record too (so each file's newest record
 *       stays, and with it the file's final state, a tombstone for a
 *       deleted one), and
 *   (b) is named by an earlier record too, or no longer exists here.
 * (b) keeps, for every file that exists, the record where it first
 * appears, so a peer syncing from scratch receives each existing file
 * (and each directory before what was made inside it) at the same point
 * of the stream as with the whole log, and never waits longer for a
 * directory. What goes: the history of deleted files but their last
 * record, and the records between a file's first and last. Records of an
 * unknown version or op are kept. Peers see only gaps in the sequence
 * numbers, which they never relied on: they ask for "everything after
 * n", and what follows n still names every file changed after n.
 * A file's newest record goes too once the file is gone and so is its
 * tombstone (FORGETTING DELETIONS): the sender has nothing to send for it.
 *
 * FORGETTING DELETIONS (st_set_forget_after, st_tomb_forget). A
 * tombstone keeps a deleted file's final version so that a stale copy
 * from a peer that has not yet seen the deletion loses to it. Kept for
 * good, every file ever deleted cost a tombstone and a log record (about
 * 300 bytes) on every peer. A tombstone whose file was deleted (its
 * ctime) longer ago than the store's forget period (landro.conf's
 * forget_deleted_after, 90 days by default) counts for nothing: it is not
 * sent, it does not refuse a copy, and such a deletion arriving is not
 * stored. st_tomb_forget then collects it, and compaction the records
 * that named only such files. Deciding by the tombstone's age when it is
 * used, not by whether a pass has collected it yet, makes every peer
 * with the same period decide alike (up to their clocks; the ctime comes
 * with the deletion), so they converge. The price: a peer away for
 * longer than the period that still holds a file deleted meanwhile
 * brings it back (as its own file, with its data), on every peer, where
 * before it was dropped. Nothing is lost either way.
 *   Two things always stay, so that landro-fsck, rebuilding a lost meta
 * counter from what the store holds (pass 1), never hands out a number
 * again: the log's newest record (meta "seq": peers ask for "everything
 * after n", and a reused n would hide new records from them), and this
 * device's greatest file id that has a tombstone (meta "next_fid": a
 * reused id would be a new file that peers' tombstones of the old one
 * refuse). The file with the greatest id ever handed out has an inode or
 * that tombstone (which, expired, counts for nothing all the same).
 *
 * RECORD LAYOUT (version ST_REP_VERSION). Little-endian.
 *   off size field
 *     0   1  version (1)
 *     1   1  flags (ST_REP_DELETED)
 *     2   2  nvv: version vector entries (<= ST_VV_MAX)
 *     4   4  mode
 *     8   4  uid
 *    12   4  gid
 *    16   8  size
 *    24   8  rdev
 *    32  16  file id
 *    48   8  writer device prefix
 *    56  12  mtime (i64 s, u32 ns)
 *    68  12  ctime
 *    80   2  nnames (<= ST_REP_MAX_NAMES)
 *    82   2  nxattrs (<= ST_REP_MAX_XATTRS)
 *    84   4  nextents
 *    88      nvv x (8 B device, u64 counter)
 *            nnames x (16 B parent file id, u16 length, name bytes)
 *            nxattrs x (u16 name length, u32 value length, name, value)
 *            nextents x ST_REP_EXTENT_LEN: u64 offset, u32 length,
 *              u32 offset in chunk, u32 chunk length, 32 B chunk hash
 *
 * Threads: as st_txn. Errors: 0, -LR_ECORRUPT (decode), -EAGAIN (apply:
 * a parent directory is not known yet; apply again after it), store errors.
 */
#ifndef ST_REPLICA_H
#define ST_REPLICA_H

#include "store.h"

#define ST_REP_VERSION 1
#define ST_REP_HDR 88
#define ST_REP_EXTENT_LEN 52
#define ST_REP_MAX_NAMES 256
#define ST_REP_MAX_XATTRS 128
#define ST_REP_LOG 0x80 /* op byte of log records written by st_rep_apply */

enum { ST_REP_DELETED = 1 };

struct st_rep_name { uint8_t pfid[16]; const char *name; uint16_t len; };
struct st_rep_xattr { const char *name; uint16_t nlen; const void *val; uint32_t vlen; };

/* A decoded record. Pointers point into the buffer it was decoded from. */
struct st_rep_file {
    uint8_t flags;
    uint8_t fid[16], writer[8];
    uint32_t mode, uid, gid;
    uint64_t size, rdev;
    struct timespec mtime, ctime;
    uint16_t nvv;
    struct st_vv_entry vv[ST_VV_MAX];
    uint16_t nnames;
    struct st_rep_name names[ST_REP_MAX_NAMES];
    uint16_t nxattrs;
    struct st_rep_xattr xattrs[ST_REP_MAX_XATTRS];
    uint32_t nextents;
    const uint8_t *extents;
};

/* Bounds-checked decoder (fuzzed). -LR_ECORRUPT on anything malformed:
 * lengths, counts, names (empty, '/', NUL, > 255), extents out of order or
 * overlapping or past size. */
int st_rep_decode(const void *buf, size_t len, struct st_rep_file *out);
/* The i-th extent (i < nextents) and its chunk's length. */
void st_rep_extent(const struct st_rep_file *f, uint32_t i, struct st_extent *e, uint32_t *chunk_len);

/* The record of file fid as this store holds it now (a tombstone if it
 * was deleted). *buf is malloc'ed; the caller frees it. -ENOENT if the
 * store never knew the file. */
int st_rep_export(st_txn *txn, const uint8_t fid[16], uint8_t **buf, size_t *len);

/* The file ids a log record names (subject, its directory, second file,
 * that one's directory), non-zero ones only, directories first. Returns
 * how many were written to fids (at most 4). */
int st_rep_log_fids(const void *rec, size_t len, uint8_t fids[4][16]);

/* Drop the change-log records rule LOG COMPACTION above allows. Runs its
 * own transactions (call it outside any): one read transaction decides,
 * then write transactions of a few thousand deletions each. Tracks at
 * most max_files distinct file ids (0: ST_LOG_COMPACT_MAX_FILES; 64 bytes
 * of memory each at most, freed on return); records naming any other
 * file stay (out->partial). Any thread. Errors: store errors; a failure
 * leaves every record not yet deleted in place (out->dropped counts what
 * went). */
#define ST_LOG_COMPACT_MAX_FILES (1u << 20)
struct st_log_compact_stats {
    uint64_t scanned;  /* records looked at */
    uint64_t dropped;  /* records deleted */
    int partial;       /* more than max_files files: some records were kept unexamined */
};
int st_log_compact(st_store *st, size_t max_files, struct st_log_compact_stats *out);
/* Delete the tombstones (rule FORGETTING DELETIONS above) of files
 * deleted before `before` (seconds since the epoch, compared with the
 * tombstone's ctime). Runs its own transactions, as st_log_compact; the
 * log records naming those files go at its next pass. Tombstones this
 * code cannot read stay. Any thread. Errors: store errors, -ENOMEM;
 * out->forgotten counts what went either way. */
/* Let tombstones of files deleted more than `seconds` ago count for
 * nothing from now on (0, the default: never): st_rep_export does not
 * send them, st_rep_apply neither refuses a copy with them nor stores
 * such a deletion. That, not when st_tomb_forget runs, is what decides,
 * so peers with the same setting decide alike, up to their clocks. Set
 * once after st_open, before other threads use the store. */
void st_set_forget_after(st_store *st, int64_t seconds);
int64_t st_forget_after(const st_store *st);
struct st_tomb_forget_stats {
    uint64_t scanned;    /* tombstones looked at */
    uint64_t forgotten;  /* tombstones deleted */
};
int st_tomb_forget(st_store *st, int64_t before, struct st_tomb_forget_stats *out);
/* Records in the change log / tombstones in db "tomb" now (cheap: LMDB
 * keeps the counts). */
int st_log_count(st_txn *txn, uint64_t *n);
int st_tomb_count(st_txn *txn, uint64_t *n);

/* What st_rep_apply did, for the caller to invalidate kernel caches after
 * commit: the callbacks are called during apply (inside the txn): do not
 * call into the kernel from them, queue the work instead. */
struct st_rep_hooks {
    void (*inode)(void *ctx, uint64_t ino);                 /* attributes or data changed */
    /* name added, changed or removed; gone: the file (not a directory)
     * whose last name this was, as it is deleted, else 0 */
    void (*entry)(void *ctx, uint64_t parent, const char *name, size_t len, uint64_t gone);
    void (*orphan)(void *ctx, uint64_t ino);                /* nlink reached 0: reap when unused */
    void *ctx;
};
enum { ST_REP_IGNORED = 0, ST_REP_APPLIED = 1, ST_REP_CONFLICT = 2 };
/* Merge record f, received from device prefix from_dev, into the store
 * (write txn). *result gets ST_REP_*. hooks may be NULL. */
int st_rep_apply(st_txn *txn, const struct st_rep_file *f, const uint8_t from_dev[8],
                 const struct st_rep_hooks *hooks, int *result);

/* Conflict copy name for name (len bytes) of a version last written by
 * device dev at mtime: "base.sync-conflict-YYYYMMDD-HHMMSS-DEV.ext",
 * shortened to fit 255 bytes. Returns the length written to out (>= 256). */
size_t st_rep_conflict_name(const char *name, size_t len, const struct timespec *mtime,
                            const uint8_t dev[8], char *out, size_t cap);

#endif
