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
};

static void usage(FILE *out)
{
    fprintf(out, "usage: landro COMMAND [ARGS]\n\ncommands:\n");
    for (size_t i = 0; i < LR_ARRAY_SIZE(commands); i++)
        fprintf(out, "  %-10s %s\n", commands[i].name, commands[i].desc);
    fprintf(out, "\n'landro COMMAND --help' describes a command.\n");
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

int main(int argc, char **argv)
{
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
    fprintf(stderr, "landro: unknown command '%s'\n", argv[1]);
    usage(stderr);
    return 2;
}
