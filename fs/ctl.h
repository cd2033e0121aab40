/*
 * ctl.h - the daemon's control socket: what `landro status` talks to.
 *
 * The daemon listens on a UNIX stream socket FS_CTL_SOCKET in the store
 * directory (mode 0600: only the store's owner may ask). A client connects,
 * writes one request line and reads the answer until the daemon closes the
 * connection. Requests:
 *
 *   "status\n"       the status document, JSON (schema: docs/landro.1,
 *                    "STATUS JSON"; stable: fields are only ever added)
 *   "status-text\n"  the same figures as text for people
 *
 * Anything else is answered with {"error":"unknown request '...'"}.
 * A client that sends no complete line within FS_CTL_TIMEOUT_MS is
 * dropped. One connection is served at a time (a status costs a few
 * milliseconds; a walk of the directory tree for conflict copies is the
 * costliest part, O(directory entries)).
 *
 * The document is built from: the store's meta (volume, device), st_usage
 * (cache), a walk of every directory entry (names containing
 * ".sync-conflict-"), net_peer_stats (peers, transfers) when syncing, or
 * the store's peer database when the daemon runs --offline.
 *
 * Threads: fs_ctl_new starts one thread that serves connections;
 * fs_ctl_free stops and joins it and removes the socket. The store and the
 * sync object must outlive the ctl object.
 *
 * Errors: 0 or a negative errno (-ENAMETOOLONG if the socket path does not
 * fit a sockaddr_un, -EADDRINUSE if another daemon answers there, bind /
 * listen errors).
 */
#ifndef FS_CTL_H
#define FS_CTL_H

#include <stdio.h>

#include "store.h"

#define FS_CTL_SOCKET "control.sock"
#define FS_CTL_TIMEOUT_MS 2000
#define FS_CTL_JSON_VERSION 1

struct fs_sync;
struct fs_ctl;

struct fs_ctl_info {
    const char *mountpoint;       /* shown in status */
    struct fs_sync *sync;         /* NULL: offline */
    const char *const *listen;    /* configured listen addresses, NULL-ended (may be NULL) */
    unsigned fetch_timeout_ms;    /* shown in status */
    int64_t forget_deleted_s;     /* shown in status; 0: deletions kept for good */
};

/* Bind STORE/control.sock (a stale socket left by a dead daemon is
 * replaced: the caller holds the store's exclusive lock, so nobody else
 * serves this store) and start the serving thread. info is copied (the
 * strings it points to must outlive the ctl object). */
int fs_ctl_new(st_store *st, const struct fs_ctl_info *info, struct fs_ctl **out);
/* Stop serving, remove the socket, free. NULL is a no-op. */
void fs_ctl_free(struct fs_ctl *c);

/* Write the status document to out as JSON (text=0) or text (text=1).
 * For tests and the serving thread. Returns 0 or a negative error (the
 * store could not be read). */
int fs_ctl_status(st_store *st, const struct fs_ctl_info *info, int text, FILE *out);

/* The socket path of store directory dir into buf (cap bytes):
 * -ENAMETOOLONG if it does not fit a sockaddr_un. For clients. */
int fs_ctl_path(const char *dir, char *buf, size_t cap);

#endif
