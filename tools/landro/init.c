/* init.c - `landro init [--store DIR]`: create a store. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>

#include "cmd.h"
#include "store.h"

static void init_usage(FILE *out)
{
    fprintf(out, "usage: landro init [--store DIR]\n\n"
                 "Create an empty store (default $XDG_DATA_HOME/landro/default).\n"
                 "  --store DIR   where to create it\n");
}

int init_main(int argc, char **argv)
{
    static const struct option opts[] = {
        { "store", required_argument, NULL, 's' },
        { "help", no_argument, NULL, 'h' },
        { 0 },
    };
    const char *store = NULL;
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "+s:h", opts, NULL)) != -1) {
        switch (c) {
        case 's': store = optarg; break;
        case 'h': init_usage(stdout); return 0;
        default: init_usage(stderr); return 2;
        }
    }
    if (optind != argc) {
        init_usage(stderr);
        return 2;
    }
    char *dir = cmd_store_dir(store);
    if (!dir)
        return 1;
    st_store *st;
    /* Probe quietly: "no store there" is the expected answer. */
    enum lr_level lvl = lr_log_get_level();
    lr_log_set_level(LR_LOG_QUIET);
    int rc = st_open(dir, ST_OPEN_RDONLY, &st);
    lr_log_set_level(lvl);
    if (rc == 0) {
        st_close(st);
        fprintf(stderr, "landro: cannot create store '%s': a store already exists there\n", dir);
        free(dir);
        return 1;
    }
    if (rc != -ENOENT) {
        fprintf(stderr, "landro: cannot create store '%s': %s\n", dir, lr_strerror(rc));
        free(dir);
        return 1;
    }
    if ((rc = cmd_mkparents(dir)) == 0)
        rc = st_open(dir, ST_OPEN_CREATE | ST_OPEN_EXCL, &st);
    if (rc) {
        fprintf(stderr, "landro: cannot create store '%s': %s\n", dir, lr_strerror(rc));
        free(dir);
        return 1;
    }
    st_close(st);
    printf("created store '%s'\n", dir);
    free(dir);
    return 0;
}
