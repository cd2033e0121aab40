/* id.c - `landro id [--store DIR]` prints this device's id;
 * `landro volume [--store DIR]` prints the volume id a second device
 * passes to `landro init --volume` to join; `landro compact [--store DIR]`
 * rewrites an unmounted store without its free space (st_compact). The
 * three take nothing but the store. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmd.h"
#include "net.h"
#include "store.h"

/* Parse "[--store DIR]" for the two commands; returns the store dir or NULL. */
static char *parse_store_only(int argc, char **argv, const char *usage, int *status)
{
    static const struct option opts[] = {
        { "store", required_argument, NULL, 's' },
        { "help", no_argument, NULL, 'h' },
        { 0 },
    };
    const char *store = NULL;
    int c;
    optind = 1;
    *status = 0;
    while ((c = getopt_long(argc, argv, "+s:h", opts, NULL)) != -1) {
        switch (c) {
        case 's': store = optarg; break;
        case 'h': fputs(usage, stdout); *status = -1; return NULL;
        default: fputs(usage, stderr); *status = 2; return NULL;
        }
    }
    if (optind != argc) {
        fputs(usage, stderr);
        *status = 2;
        return NULL;
    }
    char *dir = cmd_store_dir(store);
    if (!dir)
        *status = 1;
    return dir;
}

int id_main(int argc, char **argv)
{
    int status;
    char *dir = parse_store_only(argc, argv,
        "usage: landro id [--store DIR]\n\nPrint this device's id (give it to 'landro peer add' on other devices).\n",
        &status);
    if (!dir)
        return status < 0 ? 0 : status;
    struct net_identity id;
    int rc = net_identity_load(dir, &id);
    if (rc) {
        fprintf(stderr, "landro: cannot read the device identity in store '%s': %s%s\n", dir,
                lr_strerror(rc), rc == -ENOENT ? " (run 'landro init')" : "");
        free(dir);
        return 1;
    }
    char s[NET_ID_STR_LEN];
    printf("%s\n", net_id_format(&id.id, s));
    net_identity_release(&id);
    free(dir);
    return 0;
}

int volume_main(int argc, char **argv)
{
    int status;
    char *dir = parse_store_only(argc, argv,
        "usage: landro volume [--store DIR]\n\nPrint the volume id (another device joins with 'landro init --volume ID').\n",
        &status);
    if (!dir)
        return status < 0 ? 0 : status;
    st_store *st;
    int rc = st_open(dir, ST_OPEN_RDONLY, &st);
    if (rc) {
        fprintf(stderr, "landro: cannot open store '%s': %s\n", dir, lr_strerror(rc));
        free(dir);
        return 1;
    }
    struct st_meta m;
    st_meta(st, &m);
    for (int i = 0; i < ST_VOLUME_ID_LEN; i++)
        printf("%02x", m.volume[i]);
    printf("\n");
    st_close(st);
    free(dir);
    return 0;
}

int compact_main(int argc, char **argv)
{
    int status;
    char *dir = parse_store_only(argc, argv,
        "usage: landro compact [--store DIR]\n\nRewrite the store without its free space, giving the disk space of\n"
        "deleted data back. The store must not be mounted or open in any other\nprocess. (A mounted daemon does this by itself once a delete has left\nat least 64 MiB and half of the store file free.)\n",
        &status);
    if (!dir)
        return status < 0 ? 0 : status;
    uint64_t before = 0, after = 0;
    int rc = st_compact(dir, &before, &after);
    if (rc == -EBUSY || rc == LR_ELOCKED)
        fprintf(stderr, "landro: store '%s' is in use (mounted, or open in another landro process); "
                        "unmount it first\n", dir);
    else if (rc)
        fprintf(stderr, "landro: cannot compact store '%s': %s\n", dir, lr_strerror(rc));
    else
        printf("%s: data.mdb %.1f MiB -> %.1f MiB\n", dir, before / 1048576.0, after / 1048576.0);
    free(dir);
    return rc ? 1 : 0;
}
