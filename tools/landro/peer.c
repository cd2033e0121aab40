/* peer.c - `landro peer add|remove|list`: the devices this store syncs
 * with, kept in the store's peer database. A running daemon picks changes
 * up within a second. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmd.h"
#include "config.h"
#include "net.h"
#include "peerrec.h"
#include "store.h"

static const char peer_usage_text[] =
    "usage: landro peer add [--store DIR] DEVICE-ID ADDR:PORT [ADDR:PORT...]\n"
    "       landro peer remove [--store DIR] DEVICE-ID\n"
    "       landro peer list [--store DIR]\n\n"
    "Manage the devices this store syncs with. ADDR:PORT is where the peer's\n"
    "daemon listens ('landro mount --listen'); IPv6 as [::1]:7000.\n";

static int list_one(const uint8_t *idb, const void *rec, size_t len, void *arg)
{
    (void)arg;
    net_id id;
    memcpy(id.b, idb, NET_ID_LEN);
    char s[NET_ID_STR_LEN];
    struct st_peerrec r;
    printf("%s", net_id_format(&id, s));
    if (st_peerrec_decode(rec, len, &r)) {
        printf("  (damaged record: run landro-fsck)\n");
        return 0;
    }
    for (unsigned i = 0; i < r.naddrs; i++)
        printf("  %s", r.addrs[i]);
    printf("  applied=%llu", (unsigned long long)r.applied);
    /* when its daemon last streamed to this store's (UTC) */
    time_t seen = (time_t)r.seen;
    struct tm tm;
    char when[32];
    if (r.seen && gmtime_r(&seen, &tm) && strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &tm))
        printf("  seen=%s\n", when);
    else
        printf("  seen=never\n");
    return 0;
}

int cmd_peer_put(st_txn *t, const net_id *id, struct st_peerrec *r)
{
    /* Keep how far its log was applied, and when, when only addresses
     * change. */
    const void *old;
    size_t olen;
    struct st_peerrec prev;
    if (st_peer_get(t, id->b, &old, &olen) == 0 && st_peerrec_decode(old, olen, &prev) == 0) {
        r->applied = prev.applied;
        r->seen = prev.seen;
    }
    uint8_t b[ST_PEERREC_MAX];
    int n = st_peerrec_encode(r, b);
    return n < 0 ? n : st_peer_put(t, id->b, b, (size_t)n);
}

int peer_main(int argc, char **argv)
{
    static const struct option opts[] = {
        { "store", required_argument, NULL, 's' },
        { "help", no_argument, NULL, 'h' },
        { 0 },
    };
    if (argc < 2) {
        fputs(peer_usage_text, stderr);
        return 2;
    }
    const char *verb = argv[1];
    if (!strcmp(verb, "--help") || !strcmp(verb, "-h")) {
        fputs(peer_usage_text, stdout);
        return 0;
    }
    const char *store = NULL;
    int c;
    optind = 2;
    while ((c = getopt_long(argc, argv, "+s:h", opts, NULL)) != -1) {
        switch (c) {
        case 's': store = optarg; break;
        case 'h': fputs(peer_usage_text, stdout); return 0;
        default: fputs(peer_usage_text, stderr); return 2;
        }
    }
    int nargs = argc - optind;
    char **args = argv + optind;
    int want_write;
    if (!strcmp(verb, "add")) {
        if (nargs < 2 || nargs > 1 + ST_PEER_MAX_ADDRS) {
            fputs(peer_usage_text, stderr);
            return 2;
        }
        want_write = 1;
    } else if (!strcmp(verb, "remove")) {
        if (nargs != 1) {
            fputs(peer_usage_text, stderr);
            return 2;
        }
        want_write = 1;
    } else if (!strcmp(verb, "list")) {
        if (nargs != 0) {
            fputs(peer_usage_text, stderr);
            return 2;
        }
        want_write = 0;
    } else {
        fprintf(stderr, "landro: unknown peer command '%s'\n", verb);
        fputs(peer_usage_text, stderr);
        return 2;
    }
    net_id id;
    if (nargs >= 1 && net_id_parse(args[0], &id)) {
        fprintf(stderr, "landro: malformed device id '%s' (expected the text 'landro id' prints)\n", args[0]);
        return 1;
    }
    struct st_peerrec r = { 0 };
    if (!strcmp(verb, "add")) {
        for (int i = 1; i < nargs; i++) {
            if (!cmd_addr_valid(args[i], 0)) {
                fprintf(stderr, "landro: malformed peer address '%s' (expected HOST:PORT)\n", args[i]);
                return 1;
            }
            snprintf(r.addrs[r.naddrs++], sizeof(r.addrs[0]), "%s", args[i]);
        }
    }
    char *dir = cmd_store_dir(store);
    if (!dir)
        return 1;
    st_store *st;
    /* Not ST_OPEN_EXCL: the daemon may be running and will re-read. */
    int rc = st_open(dir, want_write ? 0 : ST_OPEN_RDONLY, &st);
    if (rc) {
        fprintf(stderr, "landro: cannot open store '%s': %s\n", dir, lr_strerror(rc));
        free(dir);
        return 1;
    }
    st_txn *t;
    rc = st_txn_begin(st, want_write ? ST_TXN_WRITE : ST_TXN_READ, &t);
    if (!rc && !strcmp(verb, "list")) {
        rc = st_peer_foreach(t, list_one, NULL);
        st_txn_abort(t);
    } else if (!rc && !strcmp(verb, "remove")) {
        rc = st_peer_del(t, id.b);
        if (rc == 0) /* what it held is no longer a copy we count */
            rc = st_holder_forget_peer(t, id.b);
        if (rc == -ENOENT) {
            char s[NET_ID_STR_LEN];
            fprintf(stderr, "landro: peer %s is not known to store '%s'\n", net_id_format(&id, s), dir);
            st_txn_abort(t);
            st_close(st);
            free(dir);
            return 1;
        }
        rc = st_txn_end(t, rc);
    } else if (!rc) {
        struct net_identity self;
        if (net_identity_load(dir, &self) == 0) {
            int me = !memcmp(self.id.b, id.b, NET_ID_LEN);
            net_identity_release(&self);
            if (me) {
                fprintf(stderr, "landro: '%s' is this device's own id\n", args[0]);
                st_txn_abort(t);
                st_close(st);
                free(dir);
                return 1;
            }
        }
        rc = cmd_peer_put(t, &id, &r);
        rc = st_txn_end(t, rc);
    }
    if (rc)
        fprintf(stderr, "landro: cannot %s peers of store '%s': %s\n", verb, dir, lr_strerror(rc));
    st_close(st);
    free(dir);
    return rc ? 1 : 0;
}
