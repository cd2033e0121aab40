/*
 * cmd_tombs.c - `landro-bench tombs --dir D [--files N]`: what forgetting
 * deletions costs (store/replica.h, FORGETTING DELETIONS), in a fresh
 * store directory D. N files (default 200000) are created, unlinked and
 * reaped in transactions of 1000, leaving N tombstones and 2N log
 * records; then, timed:
 *
 *   scan:    st_tomb_forget with a cut-off before every deletion: a walk
 *            of every tombstone that forgets none (what the daemon does
 *            every 1/16 of forget_deleted_after)
 *   forget:  st_tomb_forget with a cut-off after every deletion (all but
 *            the device's greatest file id's go)
 *   compact: st_log_compact right after, as the daemon runs it
 */
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "bench.h"
#include "ns.h"
#include "replica.h"

#define TOMBS_PER_TXN 1000

static int fail(const char *what, int rc)
{
    fprintf(stderr, "landro-bench tombs: %s: %s\n", what, lr_strerror(rc));
    return 1;
}

static uint64_t mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* Files [from, to) created, unlinked and reaped in one transaction. */
static int churn(st_store *st, uint64_t from, uint64_t to)
{
    st_txn *t;
    int rc = st_txn_begin(st, ST_TXN_WRITE, &t);
    if (rc)
        return rc;
    for (uint64_t i = from; i < to && rc == 0; i++) {
        char name[32];
        int n = snprintf(name, sizeof(name), "t%" PRIu64, i);
        struct st_inode in = { 0 };
        uint64_t ino;
        int orphan;
        rc = st_ns_create(t, ST_ROOT_INO, name, (size_t)n, S_IFREG | 0644, 0, 0, 0, NULL, 0, &in);
        if (rc == 0)
            rc = st_ns_unlink(t, ST_ROOT_INO, name, (size_t)n, &ino, &orphan);
        if (rc == 0 && st_ns_reap(t, ino) < 0)
            rc = -EIO;
    }
    return st_txn_end(t, rc);
}

int bench_tombs_main(int argc, char **argv)
{
    const char *dir = NULL;
    uint64_t files = 200000;
    const struct bench_opt opts[] = { { "--dir", NULL, &dir }, { "--files", &files, NULL } };
    if (bench_parse_opts("tombs", argc, argv, opts, LR_ARRAY_SIZE(opts)) || bench_need_dir("tombs", dir))
        return 2;
    st_store *st;
    int rc = st_open(dir, ST_OPEN_CREATE | ST_OPEN_EXCL, &st);
    if (rc)
        return fail("cannot open store", rc);
    for (uint64_t i = 0; i < files && rc == 0; i += TOMBS_PER_TXN)
        rc = churn(st, i, LR_MIN(files, i + TOMBS_PER_TXN));
    if (rc) {
        st_close(st);
        return fail("cannot make the deleted files", rc);
    }
    struct st_tomb_forget_stats fs;
    struct st_log_compact_stats cs;
    uint64_t t0 = mono_ns();
    rc = st_tomb_forget(st, 0, &fs);
    uint64_t t1 = mono_ns();
    if (rc == 0)
        printf("tombs: scan of %" PRIu64 " tombstones, none forgotten = %.1f ms\n", fs.scanned,
               (double)(t1 - t0) / 1e6);
    if (rc == 0 && (rc = st_tomb_forget(st, (int64_t)time(NULL) + 5, &fs)) == 0)
        printf("tombs: forget %" PRIu64 " of %" PRIu64 " = %.1f ms\n", fs.forgotten, fs.scanned,
               (double)(mono_ns() - t1) / 1e6);
    uint64_t t2 = mono_ns();
    if (rc == 0 && (rc = st_log_compact(st, 0, &cs)) == 0)
        printf("tombs: compact, %" PRIu64 " records scanned, %" PRIu64 " dropped = %.1f ms\n", cs.scanned,
               cs.dropped, (double)(mono_ns() - t2) / 1e6);
    st_close(st);
    return rc ? fail("forgetting", rc) : 0;
}
