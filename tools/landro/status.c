/* status.c - `landro status [--json] [--store DIR | MOUNTPOINT]`: ask the
 * running daemon of a store, over its control socket (fs/ctl.h), for its
 * peers, transfers, cache use and conflicts. A MOUNTPOINT is mapped to its
 * store through /proc/self/mountinfo (the daemon mounts with
 * fsname=landro:STORE). */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "cmd.h"
#include "ctl.h"

#define STATUS_TIMEOUT_MS 10000

static void status_usage(FILE *out)
{
    fprintf(out, "usage: landro status [--json] [--store DIR | MOUNTPOINT]\n\n"
                 "Show what the running daemon of a store is doing: peers and their health,\n"
                 "chunk fetches in flight, cache use, conflict copies.\n"
                 "  -j, --json        print the JSON document (stable; see landro(1))\n"
                 "  -s, --store DIR   the store (default $XDG_DATA_HOME/landro/default)\n"
                 "  MOUNTPOINT        a mounted landro file system instead of --store\n");
}

/* The store mounted at mp; malloc'd or NULL (message printed). */
static char *store_of_mountpoint(const char *mp)
{
    char *store = NULL, *point = NULL, real[PATH_MAX];
    int rc = cmd_landro_mount(mp, &store, &point);
    if (rc == 0 && realpath(mp, real) && strcmp(real, point) == 0) {
        free(point);
        return store;
    }
    free(store);
    free(point);
    if (rc && rc != -ENOENT)
        fprintf(stderr, "landro: cannot find '%s': %s\n", mp, strerror(-rc));
    else
        fprintf(stderr, "landro: '%s' is not a mounted landro file system\n", mp);
    return NULL;
}

/* Send req to the daemon of store dir and copy its answer to out.
 * 0, or 1 with a message printed. */
static int ask(const char *dir, const char *req, FILE *out)
{
    char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
    if (fs_ctl_path(dir, path, sizeof(path))) {
        fprintf(stderr, "landro: store path '%s' is too long for its control socket\n", dir);
        return 1;
    }
    struct stat s;
    if (stat(dir, &s) != 0) {
        fprintf(stderr, "landro: cannot open store '%s': %s\n", dir, strerror(errno));
        return 1;
    }
    int fd = cmd_ctl_connect(dir);
    if (fd < 0) {
        if (fd == -ENOENT || fd == -ECONNREFUSED)
            fprintf(stderr, "landro: store '%s' is not mounted (no daemon answers on '%s')\n", dir, path);
        else
            fprintf(stderr, "landro: cannot reach the daemon of store '%s' on '%s': %s\n", dir, path,
                    strerror(-fd));
        return 1;
    }
    size_t rl = strlen(req);
    if (send(fd, req, rl, MSG_NOSIGNAL) != (ssize_t)rl) {
        fprintf(stderr, "landro: cannot send to the daemon of store '%s': %s\n", dir, strerror(errno));
        close(fd);
        return 1;
    }
    char *doc = NULL;
    size_t n = 0, cap = 0;
    int rc = 0;
    for (;;) {
        struct pollfd p = { .fd = fd, .events = POLLIN };
        int r = poll(&p, 1, STATUS_TIMEOUT_MS);
        if (r < 0 && errno == EINTR)
            continue;
        if (r == 0) {
            fprintf(stderr, "landro: the daemon of store '%s' did not answer within %d s\n", dir,
                    STATUS_TIMEOUT_MS / 1000);
            rc = 1;
            break;
        }
        if (n + 4096 > cap) {
            cap = cap ? 2 * cap : 16384;
            char *d = realloc(doc, cap);
            if (!d) {
                fprintf(stderr, "landro: out of memory\n");
                rc = 1;
                break;
            }
            doc = d;
        }
        ssize_t k = recv(fd, doc + n, cap - n, 0);
        if (k < 0 && errno == EINTR)
            continue;
        if (k < 0) {
            fprintf(stderr, "landro: cannot read the daemon's answer for store '%s': %s\n", dir,
                    strerror(errno));
            rc = 1;
            break;
        }
        if (k == 0)
            break;
        n += (size_t)k;
    }
    close(fd);
    if (rc == 0 && n == 0) {
        fprintf(stderr, "landro: the daemon of store '%s' closed the connection without an answer\n", dir);
        rc = 1;
    }
    if (rc == 0 && n > 9 && !memcmp(doc, "{\"error\":", 9)) {
        fprintf(stderr, "landro: the daemon of store '%s' answered: %.*s", dir, (int)n, doc);
        rc = 1;
    }
    if (rc == 0)
        fwrite(doc, 1, n, out);
    free(doc);
    return rc;
}

int status_main(int argc, char **argv)
{
    static const struct option opts[] = {
        { "json", no_argument, NULL, 'j' },
        { "store", required_argument, NULL, 's' },
        { "help", no_argument, NULL, 'h' },
        { 0 },
    };
    const char *store = NULL;
    int json = 0, c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "+js:h", opts, NULL)) != -1) {
        switch (c) {
        case 'j': json = 1; break;
        case 's': store = optarg; break;
        case 'h': status_usage(stdout); return 0;
        default: status_usage(stderr); return 2;
        }
    }
    if (optind + 1 < argc || (store && optind < argc)) {
        status_usage(stderr);
        return 2;
    }
    char *dir = optind < argc ? store_of_mountpoint(argv[optind]) : cmd_store_dir(store);
    if (!dir)
        return 1;
    int rc = ask(dir, json ? "status\n" : "status-text\n", stdout);
    free(dir);
    if (fflush(stdout) != 0) {
        fprintf(stderr, "landro: cannot write the status: %s\n", strerror(errno));
        return 1;
    }
    return rc;
}
