/* unmount.c - `landro unmount [-z] MOUNTPOINT`. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cmd.h"

static void unmount_usage(FILE *out)
{
    fprintf(out, "usage: landro unmount [-z] MOUNTPOINT\n\n"
                 "Unmount a landro file system; its daemon then commits and exits.\n"
                 "  -z, --lazy   detach now even if busy, finish when no longer used\n");
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
    if (access(mp, F_OK) != 0) {
        fprintf(stderr, "landro: cannot unmount '%s': %s\n", mp, strerror(errno));
        return 1;
    }
    /* fusermount3 works for unprivileged users too; root may fall back to
     * umount2 when it is not installed. */
    pid_t pid = fork();
    if (pid < 0) {
        fprintf(stderr, "landro: cannot unmount '%s': fork: %s\n", mp, strerror(errno));
        return 1;
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
    if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
        return 0;
    if (WIFEXITED(status) && WEXITSTATUS(status) == 127 && geteuid() == 0) {
        if (umount2(mp, lazy ? MNT_DETACH : 0) == 0)
            return 0;
        fprintf(stderr, "landro: cannot unmount '%s': %s\n", mp, strerror(errno));
        return 1;
    }
    fprintf(stderr, "landro: cannot unmount '%s' (fusermount3 failed)\n", mp);
    return 1;
}
