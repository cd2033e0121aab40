/* main.c - `landro`: a table of subcommands, each in its own file (cmd.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cmd.h"
#include "lr.h"

static const struct {
    const char *name;
    int (*fn)(int argc, char **argv);
    const char *desc;
} commands[] = {
    { "init", init_main, "create a store" },
    { "mount", mount_main, "mount a store's file system (runs the daemon)" },
    { "unmount", unmount_main, "unmount a landro file system" },
    { "id", id_main, "print this device's id" },
    { "volume", volume_main, "print the volume id (for 'init --volume' on another device)" },
    { "peer", peer_main, "add, remove or list the devices this store syncs with" },
    { "status", status_main, "show the running daemon's peers, transfers, cache and conflicts" },
    { "pin", pin_main, "keep files under a path local: mark them pinned and fetch their data" },
    { "unpin", unpin_main, "clear the pinned mark of files under a path" },
    { "versions", versions_main, "list the previous versions kept of a file" },
    { "restore", restore_main, "write a previous version of a file back" },
    { "fsck", fsck_main, "check and repair a store (runs landro-fsck)" },
    { "compact", compact_main, "rewrite an unmounted store without its free space" },
};

int cmd_log_level_set;

static void usage(FILE *out)
{
    fprintf(out, "usage: landro COMMAND [ARGS]\n\ncommands:\n");
    for (size_t i = 0; i < LR_ARRAY_SIZE(commands); i++)
        fprintf(out, "  %-10s %s\n", commands[i].name, commands[i].desc);
    fprintf(out, "\n'landro COMMAND --help' describes a command. Every command takes\n"
                 "-v/--verbose (more messages, repeatable) and -q/--quiet (errors only).\n"
                 "'landro STORE MOUNTPOINT -o OPTS' is 'mount -t fuse.landro' (see landro(1)).\n");
}

char *cmd_store_dir(const char *dir)
{
    if (dir)
        return strdup(dir);
    const char *xdg = getenv("XDG_DATA_HOME");
    const char *home = getenv("HOME");
    char *p = NULL;
    int n;
    if (xdg && *xdg)
        n = asprintf(&p, "%s/landro/default", xdg);
    else if (home && *home)
        n = asprintf(&p, "%s/.local/share/landro/default", home);
    else {
        fprintf(stderr, "landro: cannot find a default store: neither XDG_DATA_HOME nor HOME is set (use --store DIR)\n");
        return NULL;
    }
    return n < 0 ? NULL : p;
}

int cmd_mkparents(const char *path)
{
    char *p = strdup(path);
    if (!p)
        return -ENOMEM;
    for (char *s = p + 1; *s; s++) {
        if (*s != '/')
            continue;
        *s = '\0';
        if (mkdir(p, 0700) != 0 && errno != EEXIST) {
            int e = errno;
            free(p);
            return -e;
        }
        *s = '/';
    }
    free(p);
    return 0;
}

/* Take -v/--verbose and -q/--quiet out of argv (up to a "--"), wherever
 * they are, and set the log level. `init -v ID` keeps its meaning
 * (--volume): there only --verbose counts. Returns the new argc. */
static int take_verbosity(int argc, char **argv)
{
    int level = LR_LOG_INFO, set = 0, out = 1;
    int is_init = argc > 1 && !strcmp(argv[1], "init");
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--")) {
            while (i < argc)
                argv[out++] = argv[i++];
            break;
        }
        if (!strcmp(a, "--verbose") || (!strcmp(a, "-v") && !is_init)) {
            level++;
            set = 1;
        } else if (!strcmp(a, "-vv") && !is_init) {
            level += 2;
            set = 1;
        } else if (!strcmp(a, "-q") || !strcmp(a, "--quiet")) {
            level = LR_LOG_ERROR;
            set = 1;
        } else {
            argv[out++] = argv[i];
        }
    }
    argv[out] = NULL;
    if (set) {
        lr_log_set_level(level > LR_LOG_TRACE ? LR_LOG_TRACE : (enum lr_level)level);
        cmd_log_level_set = 1;
    }
    return out;
}

int main(int argc, char **argv)
{
    /* landro-fsck has its own -v; hand it every argument untouched. */
    if (argc > 1 && !strcmp(argv[1], "fsck"))
        return fsck_main(argc - 1, argv + 1);
    argc = take_verbosity(argc, argv);
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
        usage(stdout);
        return 0;
    }
    for (size_t i = 0; i < LR_ARRAY_SIZE(commands); i++)
        if (!strcmp(argv[1], commands[i].name))
            return commands[i].fn(argc - 1, argv + 1);
    /* mount.fuse3 runs `landro STORE MOUNTPOINT -o OPTS`. */
    struct stat s;
    if (argc >= 3 && argv[1][0] != '-' && stat(argv[1], &s) == 0 && S_ISDIR(s.st_mode))
        return helper_main(argc, argv);
    fprintf(stderr, "landro: unknown command '%s'\n", argv[1]);
    usage(stderr);
    return 2;
}
