/* mounts.c - which landro mount holds a path, from /proc/self/mountinfo
 * (the daemon mounts with source "landro:STORE", type fuse.landro). */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/vfs.h>
#include <unistd.h>

#include "cmd.h"
#include "ctl.h"

/* 1 if mount point mp contains path (both absolute, canonical). */
static int contains(const char *mp, const char *path)
{
    size_t n = strlen(mp);
    if (n == 1)
        return path[0] == '/';
    return !strncmp(mp, path, n) && (path[n] == '/' || path[n] == '\0');
}

/* The next mount of type fuse.landro in f (lr_mountinfo_next). */
static int next_landro(FILE *f, char **line, size_t *cap, struct lr_mount *m)
{
    while (lr_mountinfo_next(f, line, cap, m))
        if (!strcmp(m->type, "fuse.landro"))
            return 1;
    return 0;
}

int cmd_landro_mount(const char *path, char **store, char **mountpoint)
{
    char real[PATH_MAX];
    if (!realpath(path, real))
        return -errno;
    FILE *f = fopen("/proc/self/mountinfo", "re");
    if (!f)
        return -errno;
    char *line = NULL, *best_store = NULL, *best_mp = NULL;
    size_t cap = 0, best_len = 0;
    struct lr_mount m;
    while (next_landro(f, &line, &cap, &m)) {
        if (strncmp(m.source, "landro:", 7))
            continue;
        size_t n = strlen(m.point);
        /* The deepest mount wins; on one point the last mount is visible. */
        if (!contains(m.point, real) || n < best_len)
            continue;
        free(best_store);
        free(best_mp);
        best_store = strdup(m.source + 7);
        best_mp = strdup(m.point);
        best_len = n;
    }
    free(line);
    fclose(f);
    if (!best_store) {
        free(best_mp);
        return -ENOENT;
    }
    *store = best_store;
    if (mountpoint)
        *mountpoint = best_mp;
    else
        free(best_mp);
    return 0;
}

int cmd_dead_landro_mount(const char *path)
{
    /* realpath would stat the dead mount itself: resolve its parent. */
    char copy[PATH_MAX], parent[PATH_MAX], abs[PATH_MAX];
    if (snprintf(copy, sizeof(copy), "%s", path) >= (int)sizeof(copy))
        return 0;
    size_t n = strlen(copy);
    while (n > 1 && copy[n - 1] == '/')
        copy[--n] = '\0';
    char *slash = strrchr(copy, '/');
    const char *base = slash ? slash + 1 : copy;
    if (slash == copy)
        snprintf(parent, sizeof(parent), "/");
    else if (slash) {
        *slash = '\0';
        if (!realpath(copy, parent))
            return 0;
    } else if (!realpath(".", parent)) {
        return 0;
    }
    if (!*base || !strcmp(base, ".") || !strcmp(base, ".."))
        return 0;
    if (snprintf(abs, sizeof(abs), "%s%s%s", parent, strcmp(parent, "/") ? "/" : "", base) >=
        (int)sizeof(abs))
        return 0;
    struct statfs sf;
    if (statfs(abs, &sf) == 0 || errno != ENOTCONN)
        return 0;
    FILE *f = fopen("/proc/self/mountinfo", "re");
    if (!f)
        return 0;
    char *line = NULL;
    size_t cap = 0;
    int dead = 0;
    struct lr_mount m;
    while (!dead && next_landro(f, &line, &cap, &m))
        dead = !strcmp(m.point, abs);
    free(line);
    fclose(f);
    return dead;
}

int cmd_ctl_connect(const char *dir)
{
    struct sockaddr_un a = { .sun_family = AF_UNIX };
    if (fs_ctl_path(dir, a.sun_path, sizeof(a.sun_path)))
        return -ENAMETOOLONG;
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    if (connect(fd, (struct sockaddr *)&a, sizeof(a)) != 0) {
        int e = errno;
        close(fd);
        return -e;
    }
    return fd;
}
