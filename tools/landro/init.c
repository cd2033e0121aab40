/* init.c - `landro init [--store DIR] [--volume ID]`: create a store and
 * this device's identity (key pair and certificate, in the store
 * directory). With --volume the store joins an existing volume (the id
 * `landro volume` prints on a device that has it); otherwise it starts a
 * new one. */
#include <ctype.h>
#include <getopt.h>
#include <string.h>
#include <stdio.h>
#include <stdlib.h>

#include "cmd.h"
#include "net.h"
#include "store.h"

static void init_usage(FILE *out)
{
    fprintf(out, "usage: landro init [--store DIR] [--volume ID]\n\n"
                 "Create an empty store (default $XDG_DATA_HOME/landro/default) and this\n"
                 "device's identity.\n"
                 "  --store DIR   where to create it\n"
                 "  --volume ID   join the volume with this id ('landro volume' on a device\n"
                 "                that has it) instead of starting a new one\n");
}

int init_main(int argc, char **argv)
{
    static const struct option opts[] = {
        { "store", required_argument, NULL, 's' },
        { "volume", required_argument, NULL, 'v' },
        { "help", no_argument, NULL, 'h' },
        { 0 },
    };
    const char *store = NULL, *volume = NULL;
    uint8_t vol[ST_VOLUME_ID_LEN];
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "+s:v:h", opts, NULL)) != -1) {
        switch (c) {
        case 's': store = optarg; break;
        case 'v': volume = optarg; break;
        case 'h': init_usage(stdout); return 0;
        default: init_usage(stderr); return 2;
        }
    }
    if (optind != argc) {
        init_usage(stderr);
        return 2;
    }
    if (volume) {
        size_t n = strlen(volume);
        int bad = n != 2 * ST_VOLUME_ID_LEN;
        for (size_t i = 0; !bad && i < ST_VOLUME_ID_LEN; i++) {
            unsigned v;
            bad = sscanf(volume + 2 * i, "%2x", &v) != 1 || !isxdigit((unsigned char)volume[2 * i]) ||
                  !isxdigit((unsigned char)volume[2 * i + 1]);
            vol[i] = (uint8_t)v;
        }
        if (bad) {
            fprintf(stderr, "landro: malformed volume id '%s' (expected %d hex digits)\n", volume,
                    2 * ST_VOLUME_ID_LEN);
            return 1;
        }
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
    /* The identity lives beside the store; its id is the store's device id
     * (the prefix of every file id and version-vector entry made here). */
    net_id id;
    rc = net_identity_create(dir, &id);
    if (rc == -EEXIST)
        fprintf(stderr, "landro: keeping the device key already in '%s'\n", dir);
    if (rc == -EEXIST) {
        struct net_identity ident;
        if ((rc = net_identity_load(dir, &ident)) == 0) {
            id = ident.id;
            net_identity_release(&ident);
        }
    }
    st_txn *t = NULL;
    if (!rc)
        rc = st_txn_begin(st, ST_TXN_WRITE, &t);
    if (!rc)
        rc = st_meta_set_device(t, id.b);
    if (!rc && volume)
        rc = st_meta_set_volume(t, vol);
    if (t)
        rc = st_txn_end(t, rc);
    if (!rc)
        rc = st_sync(st);
    st_close(st);
    if (rc) {
        fprintf(stderr, "landro: cannot create the device identity in '%s': %s\n", dir, lr_strerror(rc));
        free(dir);
        return 1;
    }
    char ids[NET_ID_STR_LEN];
    printf("created store '%s'\n", dir);
    printf("device id: %s\n", net_id_format(&id, ids));
    free(dir);
    return 0;
}
