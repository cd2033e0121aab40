/*
 * fsck.h - landro-fsck's shared state: the problem table, the passes and
 * the in-memory tables they share.
 *
 * Model: e2fsck. Each pass (one file: pass1_meta.c ... pass6_log.c) walks
 * raw records (store/raw.h), so records that do not decode are seen too,
 * and reports every defect through fsck_problem() with a named problem
 * code from the table in problem.c: {code, message, fix, flags}.
 * fsck_problem() prints the message, decides from the mode (-n, -p, -y,
 * interactive) whether to fix, and returns 1 when the caller must apply
 * the fix. A pass walks first (collecting what to change: LMDB cursors
 * must not see their database change under them), then applies.
 *
 * Each pass runs in its own transaction: a read transaction with -n, a
 * write transaction otherwise, committed at the end of the pass, so a
 * later pass sees the repairs of the earlier ones. With -n nothing is
 * written and the passes share in-memory views (chunk table) of what the
 * earlier passes would have changed, so -n reports the same primary
 * defects as -y.
 *
 * Single-threaded. Errors: functions return 0, FSCK_CANCELLED (SIGINT) or
 * a negative store error (an operational error: exit 8).
 */
#ifndef FSCK_H
#define FSCK_H

#include <signal.h>
#include <stdint.h>
#include <stdio.h>

#include "store.h"
#include "raw.h"

enum fsck_mode { FSCK_NO, FSCK_PREEN, FSCK_YES, FSCK_ASK };

/* fsck(8) exit bits. */
enum {
    FSCK_EXIT_OK = 0, FSCK_EXIT_FIXED = 1, FSCK_EXIT_UNFIXED = 4,
    FSCK_EXIT_ERROR = 8, FSCK_EXIT_USAGE = 16, FSCK_EXIT_CANCEL = 32,
};
#define FSCK_CANCELLED 1 /* positive: not an error code */

/* Problem codes; problem.c holds the table (messages, fixes, flags). */
enum fsck_code {
    /* pass 1: meta */
    PR_META_FORMAT, PR_META_VOLUME, PR_META_DEVICE, PR_META_CDC,
    PR_META_COUNTER, PR_META_COUNTER_LOW,
    /* pass 2: chunk bytes */
    PR_CHUNK_BAD_KEY, PR_CHUNK_HASH, PR_CHUNKREF_BAD_KEY, PR_CHUNKREF_LEN,
    PR_CHUNKREF_NOT_HERE, PR_CHUNKREF_HERE,
    /* pass 3: extents */
    PR_EXTENT_BAD, PR_EXTENT_NO_INODE, PR_EXTENT_NOT_FILE, PR_EXTENT_DANGLING,
    PR_EXTENT_PAST_CHUNK, PR_EXTENT_OVERLAP, PR_EXTENT_PAST_SIZE, PR_EXTENT_STRADDLES_SIZE,
    PR_VERSION_BAD, PR_VERSION_NO_INODE, PR_VERSION_DANGLING,
    /* pass 4: references */
    PR_CHUNKREF_BAD, PR_CHUNKREF_BAD_UNUSED, PR_CHUNK_ORPHAN, PR_REFCOUNT,
    PR_CHUNKREF_MISSING, PR_CHUNK_NO_REF, PR_HOLDER_KEY, PR_HOLDER_ORPHAN, PR_CHUNK_PEERS,
    /* pass 5: inodes and names */
    PR_INODE_BAD_KEY, PR_INODE_BAD, PR_ROOT_BAD, PR_DIRENT_BAD, PR_DIRENT_BAD_PARENT,
    PR_DIRENT_DANGLING, PR_DIRENT_TYPE, PR_DIR_EXTRA_NAME, PR_DIR_UNREACHABLE,
    PR_INODE_UNLINKED, PR_INODE_ORPHAN, PR_LOSTFOUND_CREATE, PR_INODE_NLINK,
    PR_FID_BAD, PR_FID_STALE, PR_FID_MISSING, PR_FID_DUPLICATE,
    PR_BACKREF_BAD, PR_BACKREF_STALE, PR_BACKREF_MISSING, PR_XATTR_ORPHAN,
    /* pass 6: change log and peers */
    PR_LOG_BAD_KEY, PR_LOG_BAD_RECORD, PR_LOG_SEQ, PR_PEER_BAD,
    PR_COUNT
};

enum {
    PR_PREEN_OK = 1 << 0, /* -p may fix it without asking */
    PR_NOTE     = 1 << 1, /* expected after a crash: not an error (-n exits 0) */
    PR_NOFIX    = 1 << 2, /* reported only */
};

struct fsck_problem {
    enum fsck_code code;
    const char *name;  /* "CHUNK_HASH" */
    const char *msg;   /* printf format */
    const char *fix;   /* question asked: "Remove the bytes?" style, no '?' */
    unsigned flags;
};

/* One chunk as seen by passes 2-4, in a table sorted by hash. */
enum {
    CK_REF = 1 << 0,       /* chunkref exists and decodes (ref) */
    CK_REF_BAD = 1 << 1,   /* chunkref exists but does not decode */
    CK_BYTES = 1 << 2,     /* bytes here and they hash to the key */
    CK_BYTES_BAD = 1 << 3, /* bytes here but they do not (removed by pass 2) */
};
struct fsck_chunk {
    st_hash h;
    struct st_chunkref ref;
    uint32_t bytes_len;
    uint8_t state;
    uint64_t counted;  /* extents naming it (pass 3) */
    uint32_t holders;  /* valid holder records naming it (pass 4) */
    uint8_t after;     /* its chunkref once pass 4's fixes are made (CK_AFTER_*) */
};
enum {
    CK_AFTER_NONE, /* no chunkref: holder records naming it are orphans */
    CK_AFTER_GONE, /* chunkref removed by pass 4: its holders go with it */
    CK_AFTER_BAD,  /* chunkref left undecodable: holders left alone */
    CK_AFTER_OK,   /* ref is the chunkref: its peers field is checked */
};

struct fsck_stats {
    uint64_t items, bytes;
    uint64_t ns;
};

struct fsck {
    const char *dir;
    st_store *st;
    enum fsck_mode mode;
    int verbose, force, progress;
    int progress_shown;   /* a bar is on the terminal line */
    int yes_all;          /* interactive: 'a' answered */
    uint64_t fixed, unfixed, notes;
    /* chunk table (passes 2-4) */
    struct fsck_chunk *ck;
    size_t nck, capck;
    int ck_sorted;
    /* --heal-from-peers: the transport node fetching damaged chunks */
    struct net_node *heal;
    uint64_t healed;
    /* totals for the summary */
    uint64_t n_inodes, n_dirents, n_extents, n_chunks, n_local, n_log, n_peers;
};

extern volatile sig_atomic_t fsck_interrupted;

/* --heal-from-peers (heal.c). open: start a transport node with the
 * store's identity and dial its peers (-ENOENT: no peer with an address).
 * fetch: a chunk's verified bytes from any peer, blocking, bounded
 * (-LR_ETIMEDOUT, -ENOENT, ...). close: stop; fine when never opened. */
struct net_node;
int fsck_heal_open(struct fsck *f);
int fsck_heal_fetch(struct fsck *f, const st_hash *h, void *buf, size_t cap, size_t *len);
void fsck_heal_close(struct fsck *f);

/* Report problem code (message formatted with the arguments) and return 1
 * if the fix must be applied, 0 if not (-n, -p on an unsafe problem, a
 * "no" answer, PR_NOFIX). Counts fixed/unfixed/notes. */
int fsck_problem(struct fsck *f, int code, ...);
/* The table entry of a code (for the man page test and -v). */
const struct fsck_problem *fsck_problem_info(int code);

/* Begin the pass's transaction (write unless -n). */
int fsck_txn_begin(struct fsck *f, st_txn **txn);
/* Commit (write) or abort (read) it. */
int fsck_txn_end(struct fsck *f, st_txn *txn);

/* Progress on stderr when it is a terminal; done/total items. */
void fsck_progress(struct fsck *f, const char *what, uint64_t done, uint64_t total);
void fsck_progress_done(struct fsck *f);

/* Short hex of a hash (first 16 digits) in a static ring of buffers. */
const char *fsck_hex(const st_hash *h);
/* Hex of arbitrary bytes (up to 40 shown). */
const char *fsck_bytes_hex(const void *p, size_t n);

/* Chunk table. fsck_chunk_find: NULL if absent; fsck_chunk_add appends
 * (table unsorted until fsck_chunk_sort). */
struct fsck_chunk *fsck_chunk_find(struct fsck *f, const st_hash *h);
struct fsck_chunk *fsck_chunk_add(struct fsck *f, const st_hash *h);
void fsck_chunk_sort(struct fsck *f);

/* A growable array of byte keys, for "delete these after the walk". */
struct fsck_keys {
    uint8_t **k;
    size_t *len;
    size_t n, cap;
};
int fsck_keys_add(struct fsck_keys *ks, const void *k, size_t len);
void fsck_keys_release(struct fsck_keys *ks);

/* The passes. */
int fsck_pass1_meta(struct fsck *f);
int fsck_pass2_chunks(struct fsck *f);
int fsck_pass3_extents(struct fsck *f);
int fsck_pass4_refs(struct fsck *f);
int fsck_pass5_inodes(struct fsck *f);
int fsck_pass6_log(struct fsck *f);

/* Pass header and -v statistics. */
void fsck_pass_begin(struct fsck *f, int n, const char *title, uint64_t *t0);
void fsck_pass_end(struct fsck *f, int n, uint64_t t0, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

#define FSCK_CHECK_CANCEL() do { if (fsck_interrupted) return FSCK_CANCELLED; } while (0)

#endif
