/*
 * cmd.h - the landro command's subcommands. Each lives in its own file as
 * NAME_main(argc, argv) with argv[0] the subcommand name, handles --help,
 * and returns the process exit status (0 success, 1 failure, 2 usage).
 * To add one: write NAME.c, declare NAME_main here, add a line to the
 * table in main.c.
 */
#ifndef LANDRO_CMD_H
#define LANDRO_CMD_H

#include <stddef.h>

int init_main(int argc, char **argv);
int mount_main(int argc, char **argv);
int unmount_main(int argc, char **argv);
int id_main(int argc, char **argv);
int volume_main(int argc, char **argv);
int compact_main(int argc, char **argv);
int peer_main(int argc, char **argv);
int fsck_main(int argc, char **argv);
int versions_main(int argc, char **argv);
int restore_main(int argc, char **argv);
int status_main(int argc, char **argv);
int pin_main(int argc, char **argv);
int unpin_main(int argc, char **argv);
/* `landro STORE MOUNTPOINT [-o OPTS]`: how mount.fuse3 runs us for
 * `mount -t fuse.landro` and /etc/fstab (helper.c). */
int helper_main(int argc, char **argv);

/* Create or update peer id's record with r's addresses, keeping how far
 * its log was applied. Write txn. (peer.c; also mount, for landro.conf's
 * peer lines.) */
#include "net.h"
#include "peerrec.h"
#include "store.h"
int cmd_peer_put(st_txn *t, const net_id *id, struct st_peerrec *r);

/* Set by main() when -v/--verbose or -q/--quiet chose the log level, so
 * that the config file's log_level does not override it. */
extern int cmd_log_level_set;

/* The store directory to use: dir if non-NULL, else
 * $XDG_DATA_HOME/landro/default (~/.local/share/landro/default).
 * Returns a malloc'd string or NULL (message printed). */
char *cmd_store_dir(const char *dir);
/* The landro mount holding path (the deepest one): its store directory
 * and mount point, malloc'd (mountpoint may be NULL). -ENOENT if path is
 * on no landro mount, -errno if it cannot be resolved. No message. */
int cmd_landro_mount(const char *path, char **store, char **mountpoint);
/* 1 if path is itself the mount point of a landro mount whose daemon is
 * gone (kill -9, a crash): the kernel answers ENOTCONN there and nothing
 * can be mounted on it until it is unmounted. 0 otherwise. No message. */
int cmd_dead_landro_mount(const char *path);
/* Unmount mp with fusermount3 (root falls back to umount2), lazily
 * (detach even if busy) when lazy. 0 or -1 with a message on stderr.
 * Does not wait for the daemon (unmount.c). */
int cmd_unmount(const char *mp, int lazy);
/* How long `landro unmount` waits for a daemon to let go of its store
 * after the kernel let go of the mount, and `landro mount` for a store
 * still locked by a daemon on its way out; both poll every
 * CMD_DAEMON_EXIT_POLL_MS. */
#define CMD_DAEMON_EXIT_WAIT_MS 30000
#define CMD_DAEMON_EXIT_POLL_MS 50
/* Connect to the control socket of store dir's daemon (fs/ctl.h): a
 * socket fd (the caller closes it), or -errno: -ENAMETOOLONG when the
 * socket's path would not fit, -ENOENT or -ECONNREFUSED when no daemon
 * serves the store. No message. */
int cmd_ctl_connect(const char *dir);
/* mkdir -p the parents of path (not path itself). 0 or -errno. */
int cmd_mkparents(const char *path);

#endif
