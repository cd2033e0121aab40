/* mount.c - `landro mount [-f] [-d] [--store DIR] [-o OPTS] MOUNTPOINT`:
 * the daemon. Unless -f it detaches: the parent waits on a pipe until the
 * child has opened the store and mounted (exit 0) or failed (exit 1, the
 * child's message already on stderr), so every startup error reaches the
 * terminal and the exit status. Once detached it logs to syslog. */
#include <fcntl.h>
#include <errno.h>
#include <getopt.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cmd.h"
#include "config.h"
#include "ctl.h"
#include "fs.h"
#include "store.h"
#include "sync.h"

static void mount_usage(FILE *out)
{
    fprintf(out, "usage: landro mount [-f] [-d] [--store DIR] [--listen ADDR:PORT]... [--offline]\n"
                 "                    [-o allow_other,ro] MOUNTPOINT\n\n"
                 "Mount the store's file system at MOUNTPOINT and serve it, syncing with the\n"
                 "store's peers ('landro peer add').\n"
                 "  -l, --listen A:P   where peers reach this daemon (UDP, QUIC), e.g.\n"
                 "                     0.0.0.0:7400 or [::]:7400; repeatable. Default: an\n"
                 "                     ephemeral port (this device dials out only)\n"
                 "      --offline      no network: serve local data only\n"
                 "      --replicate    keep a full copy here: fetch every file's data in the\n"
                 "                     background, not only when it is read\n"
                 "      --cache-quota SIZE  evict the least recently used chunks that peers\n"
                 "                     hold once chunk data passes SIZE (e.g. 20G; none)\n"
                 "      --copies N     peers new data is pushed to, and that must hold a\n"
                 "                     chunk before it is evicted (default 1)\n"
                 "      --push-after S seconds after a file's last change before it is\n"
                 "                     pushed to peers (default 30)\n"
                 "  -f, --foreground   do not detach; log to stderr\n"
                 "  -d, --debug        debug logging (implies -f)\n"
                 "  -s, --store DIR    the store (default $XDG_DATA_HOME/landro/default)\n"
                 "  -o OPTS            comma-separated: allow_other (other users may enter);\n"
                 "                     ro (read-only: nothing can be changed here, peers'\n"
                 "                     changes still arrive); rw (the default)\n"
                 "Settings in STORE/landro.conf (listen, fetch_timeout_ms, log_level,\n"
                 "replicate, cache_quota, copies, push_after, max_pending,\n"
                 "forget_deleted_after) apply\n"
                 "unless a flag overrides them. 'landro status' asks the daemon over\n"
                 "STORE/control.sock.\n"
                 "Stops on SIGINT/SIGTERM or when unmounted (landro unmount, fusermount3 -u).\n");
}

static int parse_o(const char *arg, struct fs_opts *o)
{
    char *s = strdup(arg), *save = NULL;
    if (!s)
        return -1;
    for (char *t = strtok_r(s, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
        if (!strcmp(t, "allow_other"))
            o->allow_other = 1;
        else if (!strcmp(t, "ro") || !strcmp(t, "rw"))
            o->read_only = t[1] == 'o';
        else if (!strcmp(t, "debug"))
            o->debug = 1;
        else {
            fprintf(stderr, "landro: unknown mount option '%s'\n", t);
            free(s);
            return -1;
        }
    }
    free(s);
    return 0;
}

/* Detach: fork; the parent waits for one status byte from the child. */
static int daemonize(int *notify_fd)
{
    int p[2];
    if (pipe(p) != 0) {
        fprintf(stderr, "landro: cannot detach: pipe: %s\n", strerror(errno));
        return -1;
    }
    pid_t pid = fork();
    if (pid < 0) {
        fprintf(stderr, "landro: cannot detach: fork: %s\n", strerror(errno));
        return -1;
    }
    if (pid > 0) {
        close(p[1]);
        char c;
        ssize_t n;
        while ((n = read(p[0], &c, 1)) < 0 && errno == EINTR)
            ;
        if (n == 1 && c == 0)
            _exit(0);
        int status;
        waitpid(pid, &status, 0);
        _exit(1);
    }
    close(p[0]);
    if (setsid() < 0) {
        fprintf(stderr, "landro: cannot detach: setsid: %s\n", strerror(errno));
        _exit(1);
    }
    *notify_fd = p[1];
    return 0;
}

static void detach_done(int fd)
{
    char c = 0;
    if (write(fd, &c, 1) != 1)
        _exit(1);
    close(fd);
    if (chdir("/") != 0)
        lr_warn("cannot chdir to /: %s", strerror(errno));
    int nul = open("/dev/null", O_RDWR);
    if (nul >= 0) {
        dup2(nul, 0);
        dup2(nul, 1);
        dup2(nul, 2);
        if (nul > 2)
            close(nul);
    }
    lr_log_use_syslog();
}

/* landro.conf's peer lines: add them to the peer database (or update
 * their addresses), in one transaction. A line naming this device itself
 * is an error. */
static int config_peers(st_store *st, struct cmd_config *cfg)
{
    struct st_meta m;
    st_meta(st, &m);
    for (unsigned i = 0; i < cfg->npeers; i++)
        if (!memcmp(cfg->peers[i].id.b, m.device, NET_ID_LEN)) {
            lr_error("landro.conf names this device's own id as a peer");
            return -EINVAL;
        }
    st_txn *t = NULL;
    int rc = st_txn_begin(st, ST_TXN_WRITE, &t);
    for (unsigned i = 0; i < cfg->npeers && !rc; i++)
        rc = cmd_peer_put(t, &cfg->peers[i].id, &cfg->peers[i].rec);
    return st_txn_end(t, rc);
}

/* Open store dir for this daemon. Its last daemon may still be on its way
 * out: `umount` and `fusermount3 -u` (unlike `landro unmount`) return as
 * soon as the kernel lets go of the mount, while that daemon still
 * commits staged data and closes the store, holding its lock. It closes
 * its control socket first, so while no daemon answers there, wait for the
 * lock (bounded); one that answers is a live mount: -LR_ELOCKED at once. */
static int open_store(const char *dir, st_store **st)
{
    int rc = st_open(dir, ST_OPEN_EXCL, st);
    for (int waited = 0; rc == LR_ELOCKED && waited < CMD_DAEMON_EXIT_WAIT_MS;
         waited += CMD_DAEMON_EXIT_POLL_MS) {
        int fd = cmd_ctl_connect(dir);
        if (fd >= 0) {
            close(fd);
            break;
        }
        if (!waited)
            lr_warn("store '%s' is locked by a process that does not serve it (a daemon that is "
                    "exiting?): waiting up to %d s", dir, CMD_DAEMON_EXIT_WAIT_MS / 1000);
        usleep(CMD_DAEMON_EXIT_POLL_MS * 1000);
        rc = st_open(dir, ST_OPEN_EXCL, st);
    }
    return rc;
}

int mount_main(int argc, char **argv)
{
    static const struct option opts[] = {
        { "foreground", no_argument, NULL, 'f' },
        { "debug", no_argument, NULL, 'd' },
        { "store", required_argument, NULL, 's' },
        { "listen", required_argument, NULL, 'l' },
        { "offline", no_argument, NULL, 'O' },
        { "replicate", no_argument, NULL, 'R' },
        { "cache-quota", required_argument, NULL, 'Q' },
        { "copies", required_argument, NULL, 'C' },
        { "push-after", required_argument, NULL, 'P' },
        { "help", no_argument, NULL, 'h' },
        { 0 },
    };
    struct fs_opts fo = { 0 };
    struct fs_sync_opts so = { .copies = -1, .push_after_s = -1 };
    int has_quota = 0;
    unsigned nlisten = 0;
    const char *store = NULL;
    int foreground = 0, offline = 0, c;
    long v;
    optind = 1;
    while ((c = getopt_long(argc, argv, "+fds:l:o:h", opts, NULL)) != -1) {
        switch (c) {
        case 'l':
            if (nlisten == NET_MAX_LISTEN) {
                fprintf(stderr, "landro: at most %d --listen addresses\n", NET_MAX_LISTEN);
                return 2;
            }
            so.listen[nlisten++] = optarg;
            break;
        case 'O': offline = 1; break;
        case 'R': so.replicate = 1; break;
        case 'Q':
            if (cmd_parse_size(optarg, &so.cache_quota)) {
                fprintf(stderr, "landro: bad --cache-quota '%s' (expected a size such as 512M, 20G or none)\n", optarg);
                return 2;
            }
            has_quota = 1;
            break;
        case 'C':
            if (cmd_parse_int(optarg, 0, 16, &v)) {
                fprintf(stderr, "landro: bad --copies '%s' (expected 0 to 16)\n", optarg);
                return 2;
            }
            so.copies = (int)v;
            break;
        case 'P':
            if (cmd_parse_int(optarg, 0, 86400, &v)) {
                fprintf(stderr, "landro: bad --push-after '%s' (expected seconds, 0 to 86400)\n", optarg);
                return 2;
            }
            so.push_after_s = (int)v;
            break;
        case 'f': foreground = 1; break;
        case 'd': foreground = 1; lr_log_set_level(LR_LOG_DEBUG); break;
        case 's': store = optarg; break;
        case 'o': if (parse_o(optarg, &fo)) return 2; break;
        case 'h': mount_usage(stdout); return 0;
        default: mount_usage(stderr); return 2;
        }
    }
    if (optind + 1 != argc) {
        mount_usage(stderr);
        return 2;
    }
    fo.mountpoint = argv[optind];
    if (fo.debug)
        foreground = 1;
    char *dir = cmd_store_dir(store);
    if (!dir)
        return 1;
    /* The daemon leaves its working directory for / once mounted, and
     * statfs, the control socket and the reaper name the store by path
     * from then on: a relative --store must become absolute first. */
    char *abs = realpath(dir, NULL);
    int store_found = abs != NULL; /* else the open below says what is wrong */
    if (abs) {
        free(dir);
        dir = abs;
    }
    /* The config file: flags (--listen, -d/-v/-q) win over it; a bad line
     * stops here, before anything is started. */
    struct cmd_config cfg;
    if (cmd_config_load(dir, &cfg) != 0) {
        cmd_config_release(&cfg);
        free(dir);
        return 1;
    }
    if (nlisten == 0)
        for (unsigned i = 0; i < cfg.nlisten; i++)
            so.listen[nlisten++] = cfg.listen[i];
    if (cfg.fetch_timeout_ms)
        so.fetch_timeout_ms = cfg.fetch_timeout_ms;
    if (cfg.replicate)
        so.replicate = 1;
    if (!has_quota && cfg.has_cache_quota)
        so.cache_quota = cfg.cache_quota;
    if (so.copies < 0)
        so.copies = cfg.copies;
    if (so.push_after_s < 0)
        so.push_after_s = cfg.push_after;
    so.max_pending = cfg.max_pending;
    fo.forget_deleted_s = cfg.forget_deleted_s < 0 ? FS_FORGET_DELETED_DEFAULT_S : cfg.forget_deleted_s;
    if (cfg.has_log_level && !cmd_log_level_set && lr_log_get_level() != LR_LOG_DEBUG)
        lr_log_set_level(cfg.log_level);

    /* A landro mount left behind by a daemon that died (kill -9, a crash)
     * answers ENOTCONN to everything and blocks the mount point: take it
     * away first, as the user would have to. Nothing is lost with it; the
     * store's own state is whatever the daemon had committed. */
    if (cmd_dead_landro_mount(fo.mountpoint)) {
        fprintf(stderr, "landro: '%s' was left mounted by a landro daemon that is gone: unmounting it\n",
                fo.mountpoint);
        if (cmd_unmount(fo.mountpoint, 1) != 0) {
            free(dir);
            return 1;
        }
    }
    /* Cheap checks first, before detaching, for the clearest messages. */
    struct stat s;
    if (stat(fo.mountpoint, &s) != 0) {
        fprintf(stderr, "landro: cannot mount on '%s': %s\n", fo.mountpoint, strerror(errno));
        free(dir);
        return 1;
    }
    if (!S_ISDIR(s.st_mode)) {
        fprintf(stderr, "landro: cannot mount on '%s': not a directory\n", fo.mountpoint);
        free(dir);
        return 1;
    }
    /* status and the log name it as the kernel does */
    char *mabs = realpath(fo.mountpoint, NULL);
    if (mabs)
        fo.mountpoint = mabs;
    /* Mounted over its own store (or a directory above it), the daemon
     * would reach its store through itself and hang. */
    size_t mlen = strlen(fo.mountpoint);
    if (mabs && store_found && (!strcmp(mabs, "/") ||
                 (!strncmp(dir, mabs, mlen) && (dir[mlen] == '\0' || dir[mlen] == '/')))) {
        if (!strcmp(dir, mabs))
            fprintf(stderr, "landro: cannot mount on '%s': it is the store's own directory\n", fo.mountpoint);
        else
            fprintf(stderr, "landro: cannot mount on '%s': the store '%s' is inside it\n", fo.mountpoint, dir);
        free(mabs);
        free(dir);
        return 1;
    }

    int notify = -1;
    if (!foreground && daemonize(&notify) != 0) {
        free(dir);
        return 1;
    }
    /* The store is opened after the fork: an LMDB environment must not
     * cross one. */
    st_store *st;
    struct stat ss;
    if (stat(dir, &ss) != 0) {
        lr_error("cannot open store '%s': %s (create one with 'landro init --store %s')", dir,
                 strerror(errno), dir);
        free(dir);
        return 1;
    }
    /* Every commit of a full stage mallocs and frees tens of MiB (LMDB's
     * dirty pages, up to 256 KiB each). By default glibc hands that back
     * to the kernel after each commit and faults it in again, zeroed, for
     * the next (first touches are slow in a VM): keep it in the process.
     * Sequential write of 1 GiB, alternating runs with the same settings
     * through GLIBC_TUNABLES: 121-199 MB/s and 3.4-5.3 CPU s without,
     * 241-314 MB/s and 3.2-3.5 CPU s with (session 2, 32 MiB threshold). */
    mallopt(M_MMAP_THRESHOLD, 32 << 20);
    mallopt(M_TRIM_THRESHOLD, 256 << 20);
    int rc = open_store(dir, &st);
    if (rc) {
        if (rc == -ENOENT)
            lr_error("cannot open store '%s': no store there (create one with 'landro init --store %s')", dir, dir);
        else if (rc == LR_ELOCKED)
            lr_error("cannot open store '%s': it is already mounted by another landro process", dir);
        else
            lr_error("cannot open store '%s': %s", dir, lr_strerror(rc));
        free(dir);
        return 1;
    }
    if (cfg.npeers && (rc = config_peers(st, &cfg)) != 0) {
        lr_error("cannot add the peers of '%s/%s' to store '%s': %s", dir, CMD_CONFIG_FILE, dir, lr_strerror(rc));
        st_close(st);
        free(dir);
        return 1;
    }
    fs *f;
    if ((rc = fs_new(st, &fo, &f)) != 0) {
        st_close(st);
        free(dir);
        return 1;
    }
    if ((rc = fs_handle_signals(f)) != 0) {
        lr_error("cannot install signal handlers");
        fs_free(f);
        st_close(st);
        free(dir);
        return 1;
    }
    struct fs_sync *sync = NULL;
    if (!offline) {
        if ((rc = fs_sync_new(st, f, &so, &sync)) == 0)
            rc = fs_sync_start(sync);
        if (rc) {
            lr_error("cannot start syncing store '%s': %s", dir, lr_strerror(rc));
            fs_sync_free(sync);
            fs_free(f);
            st_close(st);
            free(dir);
            return 1;
        }
        fs_set_sync(f, sync);
    }
    struct fs_ctl_info ci = { .mountpoint = fo.mountpoint, .sync = sync, .listen = so.listen,
                              .fetch_timeout_ms = so.fetch_timeout_ms ? so.fetch_timeout_ms : 5000,
                              .forget_deleted_s = fo.forget_deleted_s };
    struct fs_ctl *ctl = NULL;
    if ((rc = fs_ctl_new(st, &ci, &ctl)) != 0) {
        fs_set_sync(f, NULL);
        fs_sync_free(sync);
        fs_free(f);
        st_close(st);
        cmd_config_release(&cfg);
        free(dir);
        return 1;
    }
    if (notify >= 0)
        detach_done(notify);
    lr_info("serving store '%s' on '%s'", dir, fo.mountpoint);
    rc = fs_run(f);
    fs_ctl_free(ctl);
    /* Detach the network (the reads queued for replies are answered
     * first), then stop it: pending reads are answered (EIO) and no
     * invalidation reaches a file system being torn down. */
    fs_set_sync(f, NULL);
    fs_sync_free(sync);
    fs_free(f);
    int src = st_sync(st);
    if (src)
        lr_error("cannot sync store '%s': %s", dir, lr_strerror(src));
    st_close(st);
    lr_info("unmounted '%s'", fo.mountpoint);
    cmd_config_release(&cfg);
    free(dir);
    free(mabs);
    return rc || src ? 1 : 0;
}
