/* pin.c - `landro pin PATH...` and `landro unpin PATH...`.
 * pin marks each PATH pinned (the virtual attribute user.landro.pinned,
 * fs.c: a pinned file, or every file under a pinned directory, now and
 * later, is never evicted), then reads every regular file under it
 * through the mount so that the daemon fetches the chunks only peers
 * hold. A progress bar goes to a terminal's stderr.
 * unpin clears the mark on PATH and on everything under it; the data
 * stays until the cache quota needs the room. See landro(1). */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "cmd.h"
#include "lr.h"

#define PIN_FUSE_MAGIC 0x65735546  /* FUSE_SUPER_MAGIC */
#define PIN_BUF (1u << 20)

static struct {
    uint64_t total_bytes, done_bytes;
    uint64_t total_files, done_files, failed;
    int tty;
    char *buf;
    uint64_t last_draw_ns;
} pin;

#define PIN_XATTR "user.landro.pinned"

static void pin_usage(FILE *out)
{
    fprintf(out, "usage: landro pin PATH...\n\n"
                 "Keep every file under PATH (a file or a directory on a mounted landro\n"
                 "file system) fully local: PATH is marked pinned (files created under a\n"
                 "pinned directory later are pinned too; the cache quota never evicts them)\n"
                 "and each file is read through the mount, which fetches the chunks only\n"
                 "peers hold. Shows a progress bar on a terminal. Undo with 'landro unpin'.\n");
}

static void unpin_usage(FILE *out)
{
    fprintf(out, "usage: landro unpin PATH...\n\n"
                 "Clear the pinned mark of PATH and of every file and directory under it\n"
                 "(see 'landro pin'). The data stays local until the cache quota needs the\n"
                 "room and a peer holds a copy.\n");
}

/* 0 if path is on a mounted landro file system, else -1 with a message. */
static int check_landro(const char *verb, const char *path)
{
    struct statfs sf;
    char v[8];
    if (statfs(path, &sf) != 0) {
        fprintf(stderr, "landro: cannot %s '%s': %s\n", verb, path, strerror(errno));
        return -1;
    }
    if (sf.f_type != PIN_FUSE_MAGIC || (lgetxattr(path, PIN_XATTR, v, sizeof(v)) < 0 && errno != ERANGE)) {
        fprintf(stderr, "landro: cannot %s '%s': not on a mounted landro file system\n", verb, path);
        return -1;
    }
    return 0;
}

static int count_one(const char *path, const struct stat *s, int type, struct FTW *ftw)
{
    (void)path;
    (void)ftw;
    if (type == FTW_F && S_ISREG(s->st_mode)) {
        pin.total_files++;
        pin.total_bytes += (uint64_t)s->st_size;
    }
    return 0;
}

static void draw(int final)
{
    if (!pin.tty)
        return;
    uint64_t now = lr_now_mono_ns();
    if (!final && now - pin.last_draw_ns < 100000000ull)
        return;
    pin.last_draw_ns = now;
    double frac = pin.total_bytes ? (double)pin.done_bytes / (double)pin.total_bytes : 1.0;
    if (frac > 1.0)
        frac = 1.0;
    int width = 30, full = (int)(frac * width);
    char bar[64];
    for (int i = 0; i < width; i++)
        bar[i] = i < full ? '#' : '.';
    bar[width] = '\0';
    fprintf(stderr, "\r[%s] %3d%%  %" PRIu64 "/%" PRIu64 " files  %.1f/%.1f MiB", bar, (int)(frac * 100),
            pin.done_files, pin.total_files, (double)pin.done_bytes / 1048576.0,
            (double)pin.total_bytes / 1048576.0);
    if (final)
        fputc('\n', stderr);
}

static int read_one(const char *path, const struct stat *s, int type, struct FTW *ftw)
{
    (void)ftw;
    if (type == FTW_DNR || type == FTW_NS) {
        if (pin.tty)
            fputc('\n', stderr);
        fprintf(stderr, "landro: cannot read '%s': %s\n", path, type == FTW_DNR ? "cannot list directory" : "cannot stat");
        pin.failed++;
        return 0;
    }
    if (type != FTW_F || !S_ISREG(s->st_mode))
        return 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    int err = 0;
    if (fd < 0) {
        err = errno;
    } else {
        /* Pages the kernel cached from an earlier read would be served
         * without asking the daemon, which then fetches nothing: drop
         * them so every read reaches it. */
        posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
        for (;;) {
            ssize_t n = read(fd, pin.buf, PIN_BUF);
            if (n < 0 && errno == EINTR)
                continue;
            if (n < 0) {
                err = errno;
                break;
            }
            if (n == 0)
                break;
            pin.done_bytes += (uint64_t)n;
            draw(0);
        }
        close(fd);
        char v[48];
        unsigned long long have, total;
        ssize_t n = err ? -1 : lgetxattr(path, "user.landro.chunks", v, sizeof(v) - 1);
        if (n > 0) {
            v[n] = 0;
            if (sscanf(v, "%llu/%llu", &have, &total) == 2 && have < total)
                err = EAGAIN; /* changed meanwhile, or the cache refused the read */
        }
    }
    if (err == EAGAIN) {
        if (pin.tty)
            fputc('\n', stderr);
        fprintf(stderr, "landro: cannot pin '%s': some of its data is still not local; try again\n", path);
        pin.failed++;
    } else if (err) {
        if (pin.tty)
            fputc('\n', stderr);
        fprintf(stderr, "landro: cannot pin '%s': %s\n", path, strerror(err));
        pin.failed++;
    }
    pin.done_files++;
    draw(0);
    return 0;
}

static int parse_args(int argc, char **argv, void (*usage)(FILE *), const char *verb)
{
    static const struct option opts[] = {
        { "help", no_argument, NULL, 'h' },
        { 0 },
    };
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "+h", opts, NULL)) != -1) {
        switch (c) {
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (optind == argc) {
        usage(stderr);
        return 2;
    }
    for (int i = optind; i < argc; i++)
        if (check_landro(verb, argv[i]))
            return 1;
    return -1;
}

int pin_main(int argc, char **argv)
{
    int rc = parse_args(argc, argv, pin_usage, "pin");
    if (rc >= 0)
        return rc;
    for (int i = optind; i < argc; i++)
        if (lsetxattr(argv[i], PIN_XATTR, "1", 1, 0) != 0) {
            fprintf(stderr, "landro: cannot pin '%s': %s\n", argv[i], strerror(errno));
            return 1;
        }
    memset(&pin, 0, sizeof(pin));
    pin.tty = isatty(2) && lr_log_get_level() >= LR_LOG_INFO;
    if (!(pin.buf = malloc(PIN_BUF))) {
        fprintf(stderr, "landro: out of memory\n");
        return 1;
    }
    for (int i = optind; i < argc; i++)
        nftw(argv[i], count_one, 32, FTW_PHYS | FTW_MOUNT);
    for (int i = optind; i < argc; i++)
        if (nftw(argv[i], read_one, 32, FTW_PHYS | FTW_MOUNT) != 0) {
            fprintf(stderr, "landro: cannot walk '%s': %s\n", argv[i], strerror(errno));
            pin.failed++;
        }
    draw(1);
    free(pin.buf);
    if (lr_log_get_level() >= LR_LOG_INFO)
        printf("pinned %" PRIu64 " of %" PRIu64 " files (%.1f MiB read)%s\n", pin.done_files - pin.failed,
               pin.total_files, (double)pin.done_bytes / 1048576.0,
               pin.failed ? "; some failed, see above" : "");
    return pin.failed ? 1 : 0;
}

static int unpin_one(const char *path, const struct stat *s, int type, struct FTW *ftw)
{
    (void)ftw;
    if ((type != FTW_F && type != FTW_D) || !(S_ISREG(s->st_mode) || S_ISDIR(s->st_mode)))
        return 0;
    char v[4];
    ssize_t n = lgetxattr(path, PIN_XATTR, v, sizeof(v));
    if (n == 1 && v[0] == '0')
        return 0;
    if (lsetxattr(path, PIN_XATTR, "0", 1, 0) != 0) {
        fprintf(stderr, "landro: cannot unpin '%s': %s\n", path, strerror(errno));
        pin.failed++;
    } else {
        pin.done_files++;
    }
    return 0;
}

int unpin_main(int argc, char **argv)
{
    int rc = parse_args(argc, argv, unpin_usage, "unpin");
    if (rc >= 0)
        return rc;
    memset(&pin, 0, sizeof(pin));
    for (int i = optind; i < argc; i++)
        if (nftw(argv[i], unpin_one, 32, FTW_PHYS | FTW_MOUNT) != 0) {
            fprintf(stderr, "landro: cannot walk '%s': %s\n", argv[i], strerror(errno));
            pin.failed++;
        }
    if (lr_log_get_level() >= LR_LOG_INFO)
        printf("unpinned %" PRIu64 " path%s%s\n", pin.done_files, pin.done_files == 1 ? "" : "s",
               pin.failed ? "; some failed, see above" : "");
    return pin.failed ? 1 : 0;
}
