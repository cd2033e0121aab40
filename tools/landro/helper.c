/* helper.c - `landro STORE MOUNTPOINT [-o OPTS]`: the form mount.fuse3
 * runs for `mount -t fuse.landro STORE MOUNTPOINT -o OPTS` and for an
 * /etc/fstab line of type fuse.landro. It becomes
 * `landro mount --store STORE [--listen A:P]... [--offline] [-o allow_other,ro] MOUNTPOINT`
 * (detached: mount(8) returns once the file system is mounted).
 *
 * Options: listen=HOST:PORT (repeatable), offline, allow_other, ro / rw.
 * Generic mount options that mount(8) and mount.fuse3 add or that only
 * matter to fstab (dev, suid, exec, atime flavours, auto, user, nofail,
 * _netdev, defaults, x-*, comment=*) are ignored: landro always mounts
 * nosuid,nodev. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmd.h"
#include "config.h"

static const char *const ignored[] = {
    "dev", "nodev", "suid", "nosuid", "exec", "noexec", "atime", "noatime", "relatime",
    "norelatime", "strictatime", "nostrictatime", "diratime", "nodiratime", "lazytime", "nolazytime",
    "async", "auto", "noauto", "user", "nouser", "users", "owner", "group", "nofail", "_netdev",
    "defaults", "silent", "loud",
};

static void helper_usage(FILE *out)
{
    fprintf(out, "usage: landro STORE MOUNTPOINT [-o OPTS]\n\n"
                 "What 'mount -t fuse.landro STORE MOUNTPOINT -o OPTS' (through mount.fuse3)\n"
                 "and an /etc/fstab line run. OPTS, comma-separated: listen=HOST:PORT\n"
                 "(repeatable), offline, allow_other, ro; generic mount options are ignored.\n");
}

static int is_ignored(const char *o)
{
    if (!strncmp(o, "x-", 2) || !strncmp(o, "comment=", 8))
        return 1;
    for (size_t i = 0; i < LR_ARRAY_SIZE(ignored); i++)
        if (!strcmp(o, ignored[i]))
            return 1;
    return 0;
}

int helper_main(int argc, char **argv)
{
    const char *store = argv[1], *mp = argv[2];
    /* mount --store STORE, the --listen pairs, --offline, -o OPTS,
     * MOUNTPOINT, NULL: flags repeated in the options count once. */
    char **av = calloc(3 + 2 * NET_MAX_LISTEN + 1 + 2 + 2, sizeof(*av));
    char *opts = NULL;
    if (!av)
        return 1;
    int n = 0, nlisten = 0, rc = 2, offline = 0, allow_other = 0, ro = 0;
    av[n++] = "mount";
    av[n++] = "--store";
    av[n++] = (char *)store;
    for (int i = 3; i < argc; i++) {
        const char *o;
        if (!strcmp(argv[i], "-o") && i + 1 < argc)
            o = argv[++i];
        else if (!strncmp(argv[i], "-o", 2) && argv[i][2])
            o = argv[i] + 2;
        else if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
            helper_usage(stdout);
            rc = 0;
            goto out;
        } else {
            fprintf(stderr, "landro: unexpected argument '%s' after STORE MOUNTPOINT\n", argv[i]);
            helper_usage(stderr);
            goto out;
        }
        free(opts);
        if (!(opts = strdup(o))) {
            rc = 1;
            goto out;
        }
        char *save = NULL;
        for (char *t = strtok_r(opts, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
            if (!strncmp(t, "listen=", 7)) {
                if (!cmd_addr_valid(t + 7, 1)) {
                    fprintf(stderr, "landro: malformed listen address '%s' in mount options (expected HOST:PORT)\n",
                            t + 7);
                    goto out;
                }
                if (++nlisten > NET_MAX_LISTEN) {
                    fprintf(stderr, "landro: at most %d listen= mount options\n", NET_MAX_LISTEN);
                    goto out;
                }
                av[n++] = "--listen";
                av[n++] = strdup(t + 7);
            } else if (!strcmp(t, "offline")) {
                offline = 1;
            } else if (!strcmp(t, "allow_other")) {
                allow_other = 1;
            } else if (!strcmp(t, "ro") || !strcmp(t, "rw")) {
                ro = t[1] == 'o'; /* the last one wins, as in mount(8) */
            } else if (!is_ignored(t)) {
                fprintf(stderr, "landro: unknown mount option '%s' for store '%s'\n", t, store);
                goto out;
            }
        }
    }
    if (offline)
        av[n++] = "--offline";
    if (allow_other || ro) {
        av[n++] = "-o";
        av[n++] = allow_other && ro ? "allow_other,ro" : allow_other ? "allow_other" : "ro";
    }
    av[n++] = (char *)mp;
    av[n] = NULL;
    rc = mount_main(n, av);
out:
    free(opts);
    /* the strdup'd listen values are leaked on purpose: the daemon uses
     * them until it exits */
    free(av);
    return rc;
}
