/*
 * main.c - `landro-fsck [-n | -p | -y] [-f] [-v] [--heal-from-peers] STORE`:
 * check (and repair) a landro store, passes as in e2fsck, exit codes as in
 * fsck(8). See docs/landro-fsck.8 and fsck.h.
 */
#include "fsck.h"

#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void usage(FILE *out)
{
    fprintf(out,
            "usage: landro-fsck [-n | -p | -y] [-f] [-v] [--heal-from-peers] STORE\n\n"
            "Check a landro store and repair it.\n"
            "  -n   check only, change nothing (may run while the daemon runs)\n"
            "  -p   preen: fix, without asking, only what is safe\n"
            "  -y   fix everything that can be fixed\n"
            "  -f   check even if the store looks clean (always the case: accepted for fsck(8))\n"
            "  -v   per-pass statistics\n"
            "  --heal-from-peers  re-fetch damaged chunks from peers\n"
            "Without -n/-p/-y, asks before each fix when stdin is a terminal, else acts as -n.\n"
            "Exit: 0 clean, 1 errors corrected, 4 errors left, 8 operational error,\n"
            "16 usage error, 32 cancelled.\n");
}

static void on_sigint(int sig)
{
    (void)sig;
    fsck_interrupted = 1;
}

/* LMDB trusts its pages: a damaged branch page can send it to an address
 * past the end of the file (SIGBUS) or into the weeds (SIGSEGV). That is
 * an operational error (exit 8) with a message, not a crash. Nothing of
 * the current pass was committed. */
static const char *fatal_dir;

static void on_fault(int sig)
{
    static const char a[] = "\nlandro-fsck: LMDB hit a damaged page in store '";
    static const char b[] = "': the LMDB file itself is corrupt and landro-fsck cannot repair it; "
                            "restore the store from a backup or a peer\n";
    ssize_t w = write(STDERR_FILENO, a, sizeof(a) - 1);
    w = write(STDERR_FILENO, fatal_dir, strlen(fatal_dir));
    w = write(STDERR_FILENO, b, sizeof(b) - 1);
    (void)w;
    (void)sig;
    _exit(FSCK_EXIT_ERROR);
}

typedef int (*pass_fn)(struct fsck *);
static const struct { pass_fn fn; } passes[] = {
    { fsck_pass1_meta }, { fsck_pass2_chunks }, { fsck_pass3_extents },
    { fsck_pass4_refs }, { fsck_pass5_inodes }, { fsck_pass6_log },
};

int main(int argc, char **argv)
{
    struct fsck f;
    memset(&f, 0, sizeof(f));
    int opt_n = 0, opt_p = 0, opt_y = 0, heal = 0;
    static const struct option lopts[] = {
        { "heal-from-peers", no_argument, NULL, 'H' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    int c;
    while ((c = getopt_long(argc, argv, "npyfvh", lopts, NULL)) != -1) {
        switch (c) {
        case 'n': opt_n = 1; break;
        case 'p': case 'a': opt_p = 1; break;
        case 'y': opt_y = 1; break;
        case 'f': f.force = 1; break;
        case 'v': f.verbose = 1; break;
        case 'H': heal = 1; break;
        case 'h': usage(stdout); return FSCK_EXIT_OK;
        default: usage(stderr); return FSCK_EXIT_USAGE;
        }
    }
    if (optind != argc - 1 || opt_n + opt_p + opt_y > 1) {
        if (opt_n + opt_p + opt_y > 1)
            fprintf(stderr, "landro-fsck: -n, -p and -y exclude each other\n");
        usage(stderr);
        return FSCK_EXIT_USAGE;
    }
    f.dir = argv[optind];
    if (heal && opt_n) {
        fprintf(stderr, "landro-fsck: --heal-from-peers changes the store: not with -n\n");
        return FSCK_EXIT_USAGE;
    }
    if (opt_n)
        f.mode = FSCK_NO;
    else if (opt_p)
        f.mode = FSCK_PREEN;
    else if (opt_y)
        f.mode = FSCK_YES;
    else
        f.mode = isatty(STDIN_FILENO) ? FSCK_ASK : FSCK_NO;
    f.progress = isatty(STDERR_FILENO);

    /* The store's own log lines would duplicate (and interleave with) the
     * problem reports: keep them for -v. */
    lr_log_set_level(f.verbose ? LR_LOG_WARN : LR_LOG_QUIET);

    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_sigint;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL); /* no SA_RESTART: a prompt returns */
    sigaction(SIGTERM, &sa, NULL);
    fatal_dir = f.dir;
    static char altstack[1 << 16];
    stack_t ss = { .ss_sp = altstack, .ss_size = sizeof(altstack), .ss_flags = 0 };
    sigaltstack(&ss, NULL);
    sa.sa_handler = on_fault;
    sa.sa_flags = SA_ONSTACK | SA_RESETHAND;
    sigaction(SIGSEGV, &sa, NULL);
    sigaction(SIGBUS, &sa, NULL);

    unsigned flags = f.mode == FSCK_NO ? ST_OPEN_RDONLY : ST_OPEN_EXCL;
    int meta_ok = 0;
    int rc = st_raw_open(f.dir, flags, &f.st, &meta_ok);
    if (rc) {
        if (rc == LR_ELOCKED)
            fprintf(stderr, "landro-fsck: store '%s' is in use by a running daemon: unmount it first (or use -n)\n", f.dir);
        else if (rc == -ENOENT)
            fprintf(stderr, "landro-fsck: cannot open store '%s': no store there (no data.mdb)\n", f.dir);
        else if (rc == LR_ECORRUPT)
            fprintf(stderr, "landro-fsck: cannot open store '%s': LMDB cannot open it (the file is damaged, "
                            "not an LMDB file, or a database is missing); restore it from a backup or a peer\n", f.dir);
        else
            fprintf(stderr, "landro-fsck: cannot open store '%s': %s\n", f.dir, lr_strerror(rc));
        return FSCK_EXIT_ERROR;
    }
    if (f.mode == FSCK_NO && !opt_n)
        printf("stdin is not a terminal: checking only (as -n)\n");
    if (heal && f.mode != FSCK_NO && fsck_heal_open(&f) != 0) {
        st_close(f.st);
        return FSCK_EXIT_ERROR;
    }

    int exitc = FSCK_EXIT_OK;
    for (size_t i = 0; i < LR_ARRAY_SIZE(passes); i++) {
        rc = passes[i].fn(&f);
        fsck_progress_done(&f);
        if (rc == FSCK_CANCELLED || fsck_interrupted) {
            printf("%s: cancelled\n", f.dir);
            exitc |= FSCK_EXIT_CANCEL;
            break;
        }
        if (rc == LR_ECORRUPT) {
            printf("%s: pass %zu failed: LMDB reports a damaged page: the LMDB file itself is corrupt "
                   "and landro-fsck cannot repair it; restore the store from a backup or a peer\n", f.dir, i + 1);
            exitc |= FSCK_EXIT_ERROR;
            break;
        }
        if (rc) {
            printf("%s: pass %zu failed: %s\n", f.dir, i + 1, lr_strerror(rc));
            exitc |= FSCK_EXIT_ERROR;
            break;
        }
    }
    if (!(exitc & (FSCK_EXIT_ERROR | FSCK_EXIT_CANCEL)))
        printf("%s: %llu inodes, %llu names, %llu extents, %llu chunks (%llu local), "
               "%llu log records, %llu peers\n", f.dir,
               (unsigned long long)f.n_inodes, (unsigned long long)f.n_dirents,
               (unsigned long long)f.n_extents, (unsigned long long)f.n_chunks,
               (unsigned long long)f.n_local, (unsigned long long)f.n_log,
               (unsigned long long)f.n_peers);
    if (f.fixed)
        exitc |= FSCK_EXIT_FIXED;
    if (f.unfixed)
        exitc |= FSCK_EXIT_UNFIXED;
    if (f.fixed || f.unfixed || f.notes)
        printf("%s: %llu problems fixed, %llu left, %llu notes\n", f.dir,
               (unsigned long long)f.fixed, (unsigned long long)f.unfixed,
               (unsigned long long)f.notes);
    if (f.fixed)
        printf("\n***** STORE WAS MODIFIED *****\n");
    else if (f.unfixed && f.mode == FSCK_NO)
        printf("%s: errors found; run landro-fsck -y (with the daemon stopped) to repair\n", f.dir);
    if (f.healed)
        printf("%s: %llu damaged chunks fetched again from peers\n", f.dir,
               (unsigned long long)f.healed);
    fsck_heal_close(&f);
    st_close(f.st);
    free(f.ck);
    return exitc;
}
