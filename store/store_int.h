/*
 * store_int.h - private declarations shared by the store's .c files.
 * Nothing outside store/ includes this.
 */
#ifndef ST_STORE_INT_H
#define ST_STORE_INT_H

#include <lmdb.h>
#include <pthread.h>
#include <stdio.h>

#include "store.h"

struct st_store {
    MDB_env *env;
    MDB_dbi db_meta, db_chunk, db_chunkref, db_inode, db_dirent, db_extent,
            db_xattr, db_log, db_peer, db_fid, db_backref, db_tomb, db_version,
            db_holder;
    char *dir;
    int lockfd;
    int gatefd;                /* landro.lock, shared fcntl lock (mapspace.c) */
    unsigned flags;
    pthread_mutex_t meta_lock; /* guards meta */
    struct st_meta meta;
    pthread_mutex_t hook_lock; /* guards log_hook, held while it runs */
    void (*log_hook)(void *ctx);
    void *log_hook_ctx;
    int64_t forget_s;          /* st_set_forget_after; 0: never */
    int writemap;              /* mapped writable (mapspace.c) */
    int map_fd;                /* data.mdb, LMDB's descriptor */
    unsigned psize;            /* LMDB's page size */
    uint64_t map_alloc;        /* pages of data.mdb known to have blocks */
    int map_exact;             /* LMDB's next page is read, not bounded */
    pthread_rwlock_t swap_lock; /* shared by every transaction; exclusive while
                                 * st_compact_open swaps env (mapspace.c) */
    uint64_t commits;          /* write commits so far (atomic) */
    int compact_cancel;        /* st_compact_cancel was called (atomic) */
};

struct st_txn {
    st_store *st;
    MDB_txn *txn;
    int err;   /* first hard error; the txn is poisoned once set */
    int write;
    int logged; /* appended to the change log (st_set_log_hook) */
    uint64_t room; /* write: bound of the file's pages in use (mapspace.c) */
};

/* Open the named databases' handles into st (ST_OPEN_CREATE: create the
 * missing ones) in txn. LR_ECORRUPT if one is missing, else -errno. */
int st__open_dbs(st_store *st, MDB_txn *txn, unsigned create);
/* data.mdb's pages in use, in bytes, as of the last commit
 * (mapspace.c). LMDB's error code. */
int st__used_bytes(st_store *st, uint64_t *out);

/* Tombstones (replica.h, FORGETTING DELETIONS; logcompact.c): 1 if st's
 * forget_s is set and a file deleted at `at` (seconds since the epoch) /
 * the tombstone record v (one this code cannot read: never) is older
 * than that now. */
int st__tomb_expired(const st_store *st, int64_t at);
int st__tomb_rec_expired(const st_store *st, const MDB_val *v);

/* The named databases and where their handles live in st_store. */
struct st__db { const char *name; size_t off; };
extern const struct st__db st__dbs[];
extern const size_t st__ndbs;

/* The environment and its writable map (mapspace.c, where the top says
 * why and how). st__env_open creates st->env and opens it on dir with
 * the store's map size and limits, read-only for ST_OPEN_RDONLY and with
 * MDB_WRITEMAP otherwise; returns 0 or LMDB's code (the caller closes
 * st->env on failure). st__room_begin starts a write transaction's
 * bound; st__room makes sure a put or delete of a vlen-byte value (0:
 * small or a delete) in db cannot reach past the file's blocks,
 * st__room_pages the same for a number of pages: 0, or -ENOSPC (the
 * operation must not run) or -errno. All are no-ops without a writable
 * map. */
int st__env_open(st_store *st, const char *dir, unsigned flags);
int st__room_begin(st_txn *t);
int st__room(st_txn *t, MDB_dbi db, size_t vlen);
int st__room_pages(st_txn *t, uint64_t pages);

/* Translate an LMDB return code to landro's convention (see store.h). */
int st__mdb_err(int rc);
/* Record rc as the txn's error if it is a hard error (one after which the
 * transaction's state is unknown), log it naming what and the store, and
 * return rc. Soft errors (-ENOENT, -ENODATA, -EEXIST, -ENOTEMPTY, -EINVAL,
 * -ENAMETOOLONG, -LR_EMISSING) pass through without poisoning. */
int st__fail(st_txn *t, int rc, const char *what);
/* Log a corrupt record (store, db, what) and return -LR_ECORRUPT. */
int st__corrupt(st_txn *t, const char *db, const char *what);

#define ST_CHECK_TXN(t) do { if ((t)->err) return (t)->err; } while (0)
#define ST_CHECK_WRITE(t) do { if ((t)->err) return (t)->err; \
        if (!(t)->write) return -EROFS; } while (0)

/* Small LMDB wrappers: 0, -ENOENT, or a translated error (poisoning). */
int st__get(st_txn *t, MDB_dbi db, const void *k, size_t klen, MDB_val *v);
int st__put(st_txn *t, MDB_dbi db, const void *k, size_t klen, const void *v, size_t vlen, unsigned flags);
int st__del(st_txn *t, MDB_dbi db, const void *k, size_t klen);

static inline void st__key_u64(uint8_t k[8], uint64_t v) { lr_put_be64(k, v); }
static inline void st__key_u64x2(uint8_t k[16], uint64_t a, uint64_t b) { lr_put_be64(k, a); lr_put_be64(k + 8, b); }

/* Adjust a chunk's refcount by delta; at 0 the chunk and its chunkref are
 * deleted. -LR_ECORRUPT if the chunkref is missing or would go negative. */
int st__chunk_ref(st_txn *t, const st_hash *h, int64_t delta);

/* Walk db in key order from start (slen bytes; NULL: the first key) while
 * keys begin with the first plen bytes of start (plen 0: to the end),
 * calling each; a non-zero return stops the walk and is returned. LMDB
 * errors are translated and poison the txn (what names the walk). */
int st__walk(st_txn *t, MDB_dbi db, const void *start, size_t slen, size_t plen,
             int (*each)(st_txn *, const MDB_val *, const MDB_val *, void *), void *arg, const char *what);

/* Delete every record of db whose key starts with the plen-byte prefix,
 * calling each(t, key, val, arg) first if non-NULL. */
int st__del_prefix(st_txn *t, MDB_dbi db, const uint8_t *prefix, size_t plen,
                   int (*each)(st_txn *, const MDB_val *, const MDB_val *, void *), void *arg);

/* Timestamps in values: i64 seconds, u32 nanoseconds (12 bytes).
 * st__get_ts returns -LR_ECORRUPT for nanoseconds >= 1e9. */
void st__put_ts(uint8_t *p, struct timespec ts);
int st__get_ts(const uint8_t *p, struct timespec *ts);

/* Encode an extent's value (the key is ino BE, off BE). */
void st__extent_encode(const struct st_extent *e, uint8_t v[ST_EXTENT_LEN]);

/* Write an extent record / remove one, without touching refcounts. */
int st__extent_write(st_txn *t, uint64_t ino, const struct st_extent *e);
int st__extent_remove(st_txn *t, uint64_t ino, uint64_t off);
/* Chunk reference count change used by replication (same as above). */

/* Drop every kept version of ino (version.c). */
int st__version_drop_all(st_txn *t, uint64_t ino);
/* Forget every holder of chunk h (holder.c): its chunkref is going. */
int st__holder_drop_chunk(st_txn *t, const st_hash *h);

/* Keep a tombstone for a deleted inode with a global id (replica.c). */
int st__rep_tomb(st_txn *t, const struct st_inode *in);

#endif
