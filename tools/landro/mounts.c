/* mounts.c - which landro mount holds a path, from /proc/self/mountinfo
 * (the daemon mounts with source "landro:STORE", type fuse.landro). */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/vfs.h>

#include "cmd.h"

/* Undo mountinfo's octal escapes (\040 for a space, ...) in place. */
static void unescape(char *s)
{
    char *o = s;
    for (char *p = s; *p; p++) {
        if (p[0] == '\\' && p[1] >= '0' && p[1] <= '3' && p[2] >= '0' && p[2] <= '7' && p[3] >= '0' &&
            p[3] <= '7') {
            *o++ = (char)((p[1] - '0') * 64 + (p[2] - '0') * 8 + (p[3] - '0'));
            p += 3;
        } else {
            *o++ = *p;
        }
    }
    *o = '\0';
}

/* 1 if mount point mp contains path (both absolute, canonical). */
static int contains(const char *mp, const char *path)
{
    size_t n = strlen(mp);
    if (n == 1)
        return path[0] == '/';
    return !strncmp(mp, path, n) && (path[n] == '/' || path[n] == '\0');
}

/* The next line of /proc/self/mountinfo whose type is fuse.landro: its
 * mount point and source, unescaped, pointing into *line. 0 at the end. */
static int next_landro(FILE *f, char **line, size_t *cap, char **point, char **src)
{
    while (getline(line, cap, f) > 0) {
        /* id parent maj:min root mountpoint opts [tags...] - fstype source superopts */
        char *save = NULL, *tok = strtok_r(*line, " \n", &save);
        for (int i = 1; tok && i < 4; i++)
            tok = strtok_r(NULL, " \n", &save);
        char *pt = tok ? strtok_r(NULL, " \n", &save) : NULL;
        if (!pt)
            continue;
        while ((tok = strtok_r(NULL, " \n", &save)) && strcmp(tok, "-"))
            ;
        char *type = tok ? strtok_r(NULL, " \n", &save) : NULL;
        char *sr = type ? strtok_r(NULL, " \n", &save) : NULL;
        if (!type || !sr || strcmp(type, "fuse.landro"))
            continue;
        unescape(pt);
        unescape(sr);
        *point = pt;
        *src = sr;
        return 1;
    }
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
    char *point, *src;
    while (next_landro(f, &line, &cap, &point, &src)) {
        if (strncmp(src, "landro:", 7))
            continue;
        size_t n = strlen(point);
        /* The deepest mount wins; on one point the last mount is visible. */
        if (!contains(point, real) || n < best_len)
            continue;
        free(best_store);
        free(best_mp);
        best_store = strdup(src + 7);
        best_mp = strdup(point);
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
    char *point, *src;
    while (!dead && next_landro(f, &line, &cap, &point, &src))
        dead = !strcmp(point, abs);
    free(line);
    fclose(f);
    return dead;
}
