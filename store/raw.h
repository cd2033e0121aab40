/*
 * raw.h - raw access to the store's LMDB databases, for landro-fsck and
 * tests ONLY. It bypasses every invariant of store.h: records are read and
 * written as bytes, refcounts, indexes (fid, backref) and the change log
 * are NOT maintained, values are NOT validated. The daemon, the file
 * system and the sync layer must never use it.
 *
 * CONTRACT
 *
 * Database names are those of store.h's layout: "meta", "chunk",
 * "chunkref", "inode", "dirent", "extent", "xattr", "log", "peer", "fid",
 * "backref", "tomb". An unknown name gives -EINVAL.
 *
 * Return values: 0 on success, -ENOENT (key absent), -EINVAL, -EROFS
 * (write on a read transaction), or the store's translated errors
 * (-LR_ECORRUPT, -ENOSPC, ...; a hard error poisons the txn as in store.h).
 *
 * Memory: pointers handed out (keys and values in callbacks, st_raw_get's
 * value) point into the LMDB map and stay valid only during the callback
 * (foreach) or until the transaction ends or modifies that key (get).
 *
 * Threads: as st_txn.
 */
#ifndef ST_RAW_H
#define ST_RAW_H

#include <stddef.h>
#include <stdint.h>

#include "store.h"

/* Open the LMDB environment of the store in dir like st_open (flags:
 * ST_OPEN_RDONLY, ST_OPEN_EXCL; never creates anything) but without
 * validating meta: the store opens as long as LMDB can open it and every
 * database of the layout exists. st_meta() then returns what of the meta
 * decodes (fields that do not are zero; chunker parameters that do not
 * decode or are invalid are replaced by the defaults). *meta_ok (if
 * non-NULL) is 1 when st_open would have accepted the meta, else 0.
 * Errors: -ENOENT (no data.mdb in dir), -LR_ELOCKED (ST_OPEN_EXCL and the
 * lock is held), -LR_ECORRUPT (LMDB cannot open the file, or a database is
 * missing), -LR_EVERSION, -errno. Close with st_close(). */
int st_raw_open(const char *dir, unsigned flags, st_store **out, int *meta_ok);

/* Re-read the meta into the copy st_meta() returns (after fsck rewrote
 * it), leniently as st_raw_open does. Returns 1 if st_open would accept
 * it, 0 if not, or a negative error. */
int st_raw_reload_meta(st_store *st);

typedef int (*st_raw_cb)(const void *key, size_t klen, const void *val, size_t vlen, void *arg);

/* Visit every record of database db in key order (memcmp), or with
 * st_raw_foreach_prefix only those whose key starts with prefix[0..plen).
 * cb returning non-zero stops the walk and that value is returned. cb must
 * not modify db (collect the keys, change them after the walk). */
int st_raw_foreach(st_txn *txn, const char *db, st_raw_cb cb, void *arg);
int st_raw_foreach_prefix(st_txn *txn, const char *db, const void *prefix, size_t plen,
                          st_raw_cb cb, void *arg);

/* One record. -ENOENT if absent. */
int st_raw_get(st_txn *txn, const char *db, const void *key, size_t klen,
               const void **val, size_t *vlen);
/* Insert or replace one record (write txn). Key length 1..511. */
int st_raw_put(st_txn *txn, const char *db, const void *key, size_t klen,
               const void *val, size_t vlen);
/* Delete one record (write txn). -ENOENT if absent. */
int st_raw_del(st_txn *txn, const char *db, const void *key, size_t klen);
/* Number of records in db. */
int st_raw_count(st_txn *txn, const char *db, uint64_t *n);

#endif
