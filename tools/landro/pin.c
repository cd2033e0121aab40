/* pin.c - `landro pin PATH...`: read every regular file under each PATH
 * through the mount, so that the daemon fetches every chunk a peer holds
 * and stores it locally. A progress bar goes to a terminal's stderr.
 * First version: nothing marks the files pinned, because nothing evicts
 * chunks yet (no unpin either); see landro(1). */
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

static void pin_usage(FILE *out)
{
    fprintf(out, "usage: landro pin PATH...\n\n"
                 "Make every file under PATH (a file or a directory on a mounted landro\n"
                 "file system) fully local: each file is read through the mount, which fetches\n"
                 "the chunks only peers hold. Shows a progress bar on a terminal.\n"
                 "Nothing evicts chunks yet, so what was fetched stays; 'unpin' does not exist.\n");
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
    }
    if (err) {
        if (pin.tty)
            fputc('\n', stderr);
        fprintf(stderr, "landro: cannot pin '%s': %s\n", path, strerror(err));
        pin.failed++;
    }
    pin.done_files++;
    draw(0);
    return 0;
}

int pin_main(int argc, char **argv)
{
    static const struct option opts[] = {
        { "help", no_argument, NULL, 'h' },
        { 0 },
    };
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "+h", opts, NULL)) != -1) {
        switch (c) {
        case 'h': pin_usage(stdout); return 0;
        default: pin_usage(stderr); return 2;
        }
    }
    if (optind == argc) {
        pin_usage(stderr);
        return 2;
    }
    for (int i = optind; i < argc; i++) {
        struct statfs sf;
        if (statfs(argv[i], &sf) != 0) {
            fprintf(stderr, "landro: cannot pin '%s': %s\n", argv[i], strerror(errno));
            return 1;
        }
        if (sf.f_type != PIN_FUSE_MAGIC) {
            fprintf(stderr, "landro: cannot pin '%s': not on a mounted landro file system\n", argv[i]);
            return 1;
        }
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
