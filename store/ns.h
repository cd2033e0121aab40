/*
 * ns.h - POSIX namespace operations on the store: create, link, unlink,
 * rmdir, rename, setattr, write commit, punch, xattrs. Each function works
 * inside the caller's write transaction, changes the inode, dirent and
 * extent records as POSIX requires, bumps this device's entry in the
 * version vector of every inode it modifies (a directory whose entries
 * change gets new times but keeps its version: the entry travels with the
 * child's record), and appends exactly one
 * change-log record (st_log_append) describing the operation. Nothing here
 * knows about FUSE: fs/ calls these, and so can fsck or the sync layer.
 *
 * CONTRACT
 *
 * Return values: 0 on success, a negative errno or LR_E* code otherwise
 * (the usual POSIX errno of the corresponding system call: -ENOENT,
 * -EEXIST, -ENOTDIR, -EISDIR, -ENOTEMPTY, -EINVAL, -ENAMETOOLONG, -EMLINK,
 * -ENOSPC, ...). On error the transaction may hold partial changes: the
 * caller must abort it (errors detected before any change, e.g. -EEXIST,
 * leave it untouched, but aborting is always correct).
 *
 * Threads: as st_txn: one thread at a time per transaction.
 *
 * Times: every function stamps changes with the wall clock read once at
 * its start (mtime/ctime of the parent directories, ctime of the inode).
 *
 * Orphans: unlink, rmdir and rename may take an inode's nlink to 0. The
 * inode record is then KEPT (an open or looked-up file must stay readable)
 * and the caller learns its number; it deletes it with st_ns_reap() once
 * nothing refers to it any more. st_ns_reap_orphans() deletes every
 * nlink == 0 inode (use at mount time, when nothing can be open).
 *
 * CHANGE-LOG RECORD (ST_NS_REC_VERSION 1). Little-endian. A fixed header
 * of ST_NS_REC_HDR bytes, then name1, name2 and data, unpadded:
 *
 *   off size field
 *     0   1  record version (1)
 *     1   1  op (ST_NS_OP_*)
 *     2   2  flags (op specific: rename flags, xattr flags, fallocate)
 *     4   2  name1 length n1 (0..255)
 *     6   2  name2 length n2 (0..255)
 *     8   4  data length n3
 *    12   4  valid mask (ST_NS_SET_*, setattr only; 0 otherwise)
 *    16  16  fid of the subject inode
 *    32  16  fid of the directory holding name1 (0 if none)
 *    48  16  fid of the second inode (rename: the replaced or exchanged
 *            inode; 0 if none)
 *    64  16  fid of the directory holding name2 (rename: new parent;
 *            link: new parent; 0 if none)
 *    80   4  mode of the subject after the change
 *    84   4  uid
 *    88   4  gid
 *    92   4  nlink
 *    96   8  size
 *   104   8  rdev
 *   112  12  mtime (i64 seconds, u32 nanoseconds)
 *   124  12  ctime
 *   136   8  subject's version-vector counter for this device, after
 *   144  n1  name1 (create/link/unlink/rmdir/rename: the name; xattr ops:
 *            the attribute name)
 *   ...  n2  name2 (rename: the new name)
 *   ...  n3  data (symlink: the target; setxattr: the value; write and
 *            punch: u64 offset, u64 length of the byte range touched)
 *
 * The device prefix used in version vectors is the first 8 bytes of the
 * store's device id (st_meta().device).
 */
#ifndef ST_NS_H
#define ST_NS_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "store.h"

#define ST_NS_REC_VERSION 1
#define ST_NS_REC_HDR 144

enum st_ns_op {
    ST_NS_OP_CREATE = 1,   /* regular file, fifo, socket, device */
    ST_NS_OP_MKDIR,
    ST_NS_OP_SYMLINK,
    ST_NS_OP_LINK,
    ST_NS_OP_UNLINK,
    ST_NS_OP_RMDIR,
    ST_NS_OP_RENAME,
    ST_NS_OP_SETATTR,
    ST_NS_OP_WRITE,
    ST_NS_OP_PUNCH,
    ST_NS_OP_SETXATTR,
    ST_NS_OP_RMXATTR,
    ST_NS_OP_LAST
};

/* Rename flags, same values as Linux's RENAME_NOREPLACE/RENAME_EXCHANGE. */
enum { ST_NS_NOREPLACE = 1 << 0, ST_NS_EXCHANGE = 1 << 1 };

/* ---- records ---------------------------------------------------------- */

struct st_ns_rec {
    uint8_t op;
    uint16_t flags;
    uint32_t valid;
    uint8_t fid[16], pfid[16], fid2[16], pfid2[16];
    uint32_t mode, uid, gid, nlink;
    uint64_t size, rdev;
    struct timespec mtime, ctime;
    uint64_t vv;
    const char *name1; uint16_t n1;   /* point into the decoded buffer */
    const char *name2; uint16_t n2;
    const void *data; uint32_t n3;
};
/* Decode a log record. Checks every length; -LR_ECORRUPT for anything out
 * of range (unknown version or op, lengths not adding up, names longer than
 * 255). Pointers in *out point into buf. */
int st_ns_rec_decode(const void *buf, size_t len, struct st_ns_rec *out);
/* Encode; returns the record's length, or 0 if cap is too small. */
size_t st_ns_rec_encode(const struct st_ns_rec *r, uint8_t *buf, size_t cap);

/* ---- operations ------------------------------------------------------- */

/* Create name in directory parent with the given mode (type bits select
 * regular file, directory, symlink, fifo, socket, char/block device; 0
 * type bits means regular). Owner uid/gid, except that a parent with
 * S_ISGID hands its group down (and S_ISGID to new directories). For a
 * symlink, target/tlen is stored as the file's data. Directories start with
 * nlink 2 and add one to the parent's nlink. *out gets the new inode.
 * Errors: -ENOENT (no parent), -ENOTDIR, -EEXIST, -ENAMETOOLONG, -EINVAL,
 * -EMLINK (parent nlink at its limit). */
int st_ns_create(st_txn *txn, uint64_t parent, const char *name, size_t len,
                 uint32_t mode, uint32_t uid, uint32_t gid, uint64_t rdev,
                 const char *target, size_t tlen, struct st_inode *out);

/* Hard link: a new name for the non-directory ino. nlink+1, ctime.
 * Errors: -EPERM (ino is a directory), -EEXIST, -ENOENT, -EMLINK. */
int st_ns_link(st_txn *txn, uint64_t ino, uint64_t newparent, const char *name, size_t len,
               struct st_inode *out);

/* Remove a non-directory name. *ino gets the inode it named, *orphan is set
 * to 1 if its nlink reached 0 (the inode is kept: see Orphans).
 * Errors: -ENOENT, -EISDIR. */
int st_ns_unlink(st_txn *txn, uint64_t parent, const char *name, size_t len,
                 uint64_t *ino, int *orphan);

/* Remove an empty directory (its nlink becomes 0, parent's nlink-1; the
 * inode is kept as an orphan). Errors: -ENOENT, -ENOTDIR, -ENOTEMPTY. */
int st_ns_rmdir(st_txn *txn, uint64_t parent, const char *name, size_t len, uint64_t *ino);

/* rename(2)/renameat2(2): flags 0, ST_NS_NOREPLACE or ST_NS_EXCHANGE.
 * Replacing an existing file or empty directory drops it; *orphan gets its
 * inode number if its nlink reached 0, else 0. Moving a directory into
 * itself or a descendant gives -EINVAL. Renaming a name onto another name
 * of the same inode succeeds and changes nothing.
 * Errors: -ENOENT, -EEXIST (NOREPLACE), -ENOTDIR, -EISDIR, -ENOTEMPTY,
 * -EINVAL. */
int st_ns_rename(st_txn *txn, uint64_t parent, const char *name, size_t len,
                 uint64_t newparent, const char *newname, size_t newlen,
                 unsigned flags, uint64_t *orphan);

/* setattr: fields selected by valid. SIZE truncates or extends (extension
 * leaves a hole; truncation drops extents at or beyond the new size).
 * ATIME_NOW/MTIME_NOW take the current time. ctime always becomes now.
 * Errors: -ENOENT, -EISDIR (SIZE on a directory), -EINVAL. */
enum {
    ST_NS_SET_MODE = 1 << 0, ST_NS_SET_UID = 1 << 1, ST_NS_SET_GID = 1 << 2,
    ST_NS_SET_SIZE = 1 << 3, ST_NS_SET_ATIME = 1 << 4, ST_NS_SET_MTIME = 1 << 5,
    ST_NS_SET_ATIME_NOW = 1 << 6, ST_NS_SET_MTIME_NOW = 1 << 7,
    ST_NS_SET_CTIME = 1 << 8,
};
struct st_ns_attr {
    uint32_t mode, uid, gid;    /* mode: permission bits (07777) only */
    uint64_t size;
    struct timespec atime, mtime, ctime;
};
int st_ns_setattr(st_txn *txn, uint64_t ino, unsigned valid, const struct st_ns_attr *a,
                  struct st_inode *out);

/* Commit staged writes: the ranges (non-overlapping) through
 * st_file_writev (flags and *ws as there; ws may be NULL), then the size
 * becomes max(size, new_size) and mtime/ctime *mtime (NULL: now). One log
 * record covers the union [min off, max end) of the ranges.
 * Errors: those of st_file_write (-ENOSPC, ...), -EISDIR. */
int st_ns_write(st_txn *txn, uint64_t ino, const struct st_wrange *r, size_t n,
                uint64_t new_size, const struct timespec *mtime, unsigned flags,
                struct st_wstat *ws, struct st_inode *out);

/* Re-chunk the fragments that isolated writes (ST_WRITE_ISOLATE) left in
 * [off, off + len) of file ino: st_file_rechunk with budget, *next and
 * *rewritten as there; then, if anything was rewritten, the inode is
 * saved with its version bumped and one log record, so peers learn the
 * new extents (size, times and bytes are unchanged; no previous version
 * is kept: the data did not change). Only a version this device made
 * (the inode's writer) is re-chunked: a peer's is left as it came, so two
 * devices never cut one version two ways concurrently (which their merge
 * would take for a conflict). An unlinked inode or one not a regular file
 * is left alone. Errors: -ENOENT (no such inode), those of
 * st_file_rechunk. */
int st_ns_rechunk(st_txn *txn, uint64_t ino, uint64_t off, uint64_t len, uint64_t budget,
                  uint64_t *next, uint64_t *rewritten);

/* Make [off, off+len) a hole (fallocate PUNCH_HOLE; the size is kept). */
int st_ns_punch(st_txn *txn, uint64_t ino, uint64_t off, uint64_t len, struct st_inode *out);

/* Extended attributes. flags: 0, ST_NS_XATTR_CREATE (-EEXIST if present),
 * ST_NS_XATTR_REPLACE (-ENODATA if absent). removexattr: -ENODATA if
 * absent. Name length 1..255 else -ERANGE/-EINVAL; value at most
 * ST_NS_XATTR_MAX bytes else -E2BIG. */
enum { ST_NS_XATTR_CREATE = 1, ST_NS_XATTR_REPLACE = 2 };
#define ST_NS_XATTR_MAX 65536
int st_ns_setxattr(st_txn *txn, uint64_t ino, const char *name, const void *val, size_t len,
                   int flags);
int st_ns_removexattr(st_txn *txn, uint64_t ino, const char *name);

/* Delete inode ino if its nlink is 0 (no log record: the unlink that
 * orphaned it was logged). 1 if deleted, 0 if it still has links or is
 * gone already, or a negative error. */
int st_ns_reap(st_txn *txn, uint64_t ino);
/* List every nlink == 0 inode but the root, in inode order: *inos gets a
 * malloc'd array (the caller frees it; NULL when *n is 0), *n its length.
 * Any transaction, read-only included. On error *inos is NULL, *n 0. */
int st_ns_orphans(st_txn *txn, uint64_t **inos, size_t *n);
/* Delete every nlink == 0 inode; *count (if non-NULL) gets how many. */
int st_ns_reap_orphans(st_txn *txn, uint64_t *count);

/* Upper bound on a directory's nlink (and hard links of a file). */
#define ST_NS_LINK_MAX 65000u

#endif
