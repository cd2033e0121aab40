/*
 * versions.c - `landro versions PATH` lists the previous versions the
 * store keeps of a file on a landro mount; `landro restore PATH --version
 * N [--output FILE]` writes version N back (to PATH through the mount, so
 * the restore is an ordinary edit that replicates, and the current data
 * becomes a version in turn; or to FILE). The store is opened read-only
 * beside the running daemon.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cmd.h"
#include "store.h"

static const char versions_usage_text[] =
    "usage: landro versions PATH\n"
    "       landro restore PATH --version N [--output FILE]\n\n"
    "List the previous versions kept of a file on a landro mount, or write\n"
    "version N back: to PATH itself (an ordinary edit: it replicates, and the\n"
    "current content is kept as a version in turn) or, with --output, to FILE.\n";

/* The store and inode behind PATH; 0 or 1 (message printed). */
static int locate(const char *path, st_store **st, uint64_t *ino)
{
    struct stat sb;
    if (stat(path, &sb) != 0) {
        fprintf(stderr, "landro: cannot find '%s': %s\n", path, strerror(errno));
        return 1;
    }
    if (!S_ISREG(sb.st_mode)) {
        fprintf(stderr, "landro: '%s' is not a regular file\n", path);
        return 1;
    }
    char *store = NULL;
    int rc = cmd_landro_mount(path, &store, NULL);
    if (rc) {
        fprintf(stderr, "landro: '%s' is not on a mounted landro file system\n", path);
        return 1;
    }
    rc = st_open(store, ST_OPEN_RDONLY, st);
    if (rc) {
        fprintf(stderr, "landro: cannot open store '%s': %s\n", store, lr_strerror(rc));
        free(store);
        return 1;
    }
    free(store);
    *ino = (uint64_t)sb.st_ino; /* inode numbers on a landro mount are the store's */
    return 0;
}

static void fmt_time(const struct timespec *ts, char *out, size_t cap)
{
    struct tm tm;
    time_t s = ts->tv_sec;
    gmtime_r(&s, &tm);
    strftime(out, cap, "%Y-%m-%d %H:%M:%S UTC", &tm);
}

struct list_ctx {
    st_txn *t;
    int n;
};

static int list_one(uint64_t vno, const struct st_version *v, void *arg)
{
    struct list_ctx *c = arg;
    char when[40], mt[40];
    fmt_time(&v->saved, when, sizeof(when));
    fmt_time(&v->mtime, mt, sizeof(mt));
    uint32_t remote = 0;
    for (uint32_t i = 0; i < v->nextents; i++) {
        struct st_extent e;
        struct st_chunkref r;
        st_version_extent(v, i, &e);
        if (st_chunk_info(c->t, &e.hash, &r) != 0 || !(r.flags & ST_CHUNK_LOCAL))
            remote++;
    }
    printf("%4llu  %12llu bytes  modified %s  kept %s%s\n", (unsigned long long)vno,
           (unsigned long long)v->size, mt, when, remote ? "  (partly held by peers only)" : "");
    c->n++;
    return 0;
}

int versions_main(int argc, char **argv)
{
    if (argc >= 2 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
        fputs(versions_usage_text, stdout);
        return 0;
    }
    if (argc != 2) {
        fputs(versions_usage_text, stderr);
        return 2;
    }
    st_store *st;
    uint64_t ino;
    if (locate(argv[1], &st, &ino))
        return 1;
    st_txn *t;
    int rc = st_txn_begin(st, ST_TXN_READ, &t);
    struct list_ctx c = { .t = t };
    if (!rc) {
        rc = st_version_foreach(t, ino, list_one, &c);
        st_txn_abort(t);
    }
    st_close(st);
    if (rc) {
        fprintf(stderr, "landro: cannot list versions of '%s': %s\n", argv[1], lr_strerror(rc));
        return 1;
    }
    if (c.n == 0)
        printf("no previous versions of '%s' are kept\n", argv[1]);
    return 0;
}

int restore_main(int argc, char **argv)
{
    static const struct option opts[] = {
        { "version", required_argument, NULL, 'V' },
        { "output", required_argument, NULL, 'o' },
        { "help", no_argument, NULL, 'h' },
        { 0 },
    };
    const char *output = NULL;
    long long vno = -1;
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "V:o:h", opts, NULL)) != -1) {
        switch (c) {
        case 'V': {
            char *end;
            vno = strtoll(optarg, &end, 10);
            if (*end || vno < 1) {
                fprintf(stderr, "landro: bad version number '%s'\n", optarg);
                return 2;
            }
            break;
        }
        case 'o': output = optarg; break;
        case 'h': fputs(versions_usage_text, stdout); return 0;
        default: fputs(versions_usage_text, stderr); return 2;
        }
    }
    if (optind + 1 != argc || vno < 1) {
        fputs(versions_usage_text, stderr);
        return 2;
    }
    const char *path = argv[optind];
    st_store *st;
    uint64_t ino;
    if (locate(path, &st, &ino))
        return 1;
    st_txn *t;
    struct st_version v;
    uint8_t *buf = NULL;
    int rc = st_txn_begin(st, ST_TXN_READ, &t);
    if (rc)
        goto fail_store;
    if ((rc = st_version_get(t, ino, (uint64_t)vno, &v))) {
        if (rc == -ENOENT)
            fprintf(stderr, "landro: '%s' has no version %lld ('landro versions %s' lists them)\n", path,
                    vno, path);
        else
            fprintf(stderr, "landro: cannot read version %lld of '%s': %s\n", vno, path, lr_strerror(rc));
        st_txn_abort(t);
        st_close(st);
        return 1;
    }
    if (!(buf = calloc(1, v.size ? (size_t)v.size : 1))) {
        rc = -ENOMEM;
        goto fail_txn;
    }
    for (uint32_t i = 0; i < v.nextents; i++) {
        struct st_extent e;
        const void *d;
        size_t n;
        st_version_extent(&v, i, &e);
        if ((rc = st_chunk_get(t, &e.hash, &d, &n)) || (uint64_t)e.chunk_off + e.len > n) {
            char hex[2 * ST_HASH_LEN + 1];
            fprintf(stderr, "landro: cannot restore version %lld of '%s': chunk %s is %s\n", vno, path,
                    st_hash_hex(&e.hash, hex), rc == LR_EMISSING ? "held only by peers" : "damaged");
            free(buf);
            st_txn_abort(t);
            st_close(st);
            return 1;
        }
        memcpy(buf + e.off, (const uint8_t *)d + e.chunk_off, e.len);
    }
    size_t size = (size_t)v.size;
    st_txn_abort(t);
    st_close(st);
    const char *dest = output ? output : path;
    int fd = open(dest, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0 || (rc = lr_write_all(fd, buf, size)) || fsync(fd) != 0 || close(fd) != 0) {
        fprintf(stderr, "landro: cannot write '%s': %s\n", dest, strerror(rc ? -rc : errno));
        free(buf);
        return 1;
    }
    free(buf);
    printf("restored version %lld of '%s' (%zu bytes) to '%s'\n", vno, path, size, dest);
    return 0;
fail_txn:
    st_txn_abort(t);
fail_store:
    st_close(st);
    fprintf(stderr, "landro: cannot restore '%s': %s\n", path, lr_strerror(rc));
    return 1;
}
