/* unmount.c - `landro unmount [-z] MOUNTPOINT`. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <sys/file.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cmd.h"
#include "store.h"

/* The store directory behind mount point mp, NULL if not a landro mount. */
static char *mounted_store(const char *mp)
{
    char *store = NULL;
    return cmd_landro_mount(mp, &store, NULL) == 0 ? store : NULL;
}

/* After the kernel let go of the mount, the daemon still commits staged
 * data and closes the store: wait (bounded) until its lock on the store is
 * released, so that 'unmount' returning means the data is on disk and the
 * store can be mounted or checked again. */
static int wait_daemon(const char *store)
{
    char path[PATH_MAX];
    if (snprintf(path, sizeof(path), "%s/%s", store, ST_LOCKFILE) >= (int)sizeof(path))
        return 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return 0; /* no lock file: nothing holds the store */
    for (int waited = 0; waited < CMD_DAEMON_EXIT_WAIT_MS; waited += CMD_DAEMON_EXIT_POLL_MS) {
        if (flock(fd, LOCK_SH | LOCK_NB) == 0) {
            close(fd);
            return 0;
        }
        usleep(CMD_DAEMON_EXIT_POLL_MS * 1000);
    }
    close(fd);
    fprintf(stderr, "landro: unmounted, but the daemon of store '%s' is still running after %d s\n", store,
            CMD_DAEMON_EXIT_WAIT_MS / 1000);
    return -1;
}

static void unmount_usage(FILE *out)
{
    fprintf(out, "usage: landro unmount [-z] MOUNTPOINT\n\n"
                 "Unmount a landro file system; its daemon then commits and exits.\n"
                 "  -z, --lazy   detach now even if busy, finish when no longer used\n");
}

int cmd_unmount(const char *mp, int lazy)
{
    /* fusermount3 works for unprivileged users too; root may fall back to
     * umount2 when it is not installed. */
    pid_t pid = fork();
    if (pid < 0) {
        fprintf(stderr, "landro: cannot unmount '%s': fork: %s\n", mp, strerror(errno));
        return -1;
    }
    if (pid == 0) {
        if (lazy)
            execlp("fusermount3", "fusermount3", "-u", "-z", "--", mp, (char *)NULL);
        else
            execlp("fusermount3", "fusermount3", "-u", "--", mp, (char *)NULL);
        _exit(127);
    }
    int status;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
        ;
    int ok = WIFEXITED(status) && WEXITSTATUS(status) == 0;
    if (!ok && WIFEXITED(status) && WEXITSTATUS(status) == 127 && geteuid() == 0) {
        ok = umount2(mp, lazy ? MNT_DETACH : 0) == 0;
        if (!ok)
            fprintf(stderr, "landro: cannot unmount '%s': %s\n", mp, strerror(errno));
    } else if (!ok) {
        fprintf(stderr, "landro: cannot unmount '%s' (fusermount3 failed)\n", mp);
    }
    return ok ? 0 : -1;
}

int unmount_main(int argc, char **argv)
{
    static const struct option opts[] = {
        { "lazy", no_argument, NULL, 'z' },
        { "help", no_argument, NULL, 'h' },
        { 0 },
    };
    int lazy = 0, c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "+zh", opts, NULL)) != -1) {
        switch (c) {
        case 'z': lazy = 1; break;
        case 'h': unmount_usage(stdout); return 0;
        default: unmount_usage(stderr); return 2;
        }
    }
    if (optind + 1 != argc) {
        unmount_usage(stderr);
        return 2;
    }
    const char *mp = argv[optind];
    /* ENOTCONN: a mount whose daemon is gone, which is what unmount is for */
    if (access(mp, F_OK) != 0 && errno != ENOTCONN) {
        fprintf(stderr, "landro: cannot unmount '%s': %s\n", mp, strerror(errno));
        return 1;
    }
    char *store = mounted_store(mp);
    int ok = cmd_unmount(mp, lazy) == 0;
    if (ok && store && !lazy)
        ok = wait_daemon(store) == 0;
    free(store);
    return ok ? 0 : 1;
}
