/*
 * landro-fsx - an fsx-style file system exerciser: random reads, writes,
 * truncates, fallocates (allocate, keep-size, punch hole), mapped reads and
 * writes, SEEK_DATA/SEEK_HOLE, fsyncs and reopens on one file, checked against an in-memory
 * reference copy. Deterministic for a given seed. Exit 0 if every check
 * passed, 1 on the first mismatch (with the op log tail), 2 on usage.
 *
 *   landro-fsx [-N ops] [-S seed] [-l maxlen] [-o maxop] [-q] FILE
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <linux/falloc.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

enum { OP_READ, OP_WRITE, OP_MAPREAD, OP_MAPWRITE, OP_TRUNCATE, OP_FALLOC, OP_KEEPSIZE,
       OP_PUNCH, OP_FSYNC, OP_REOPEN, OP_READ2, OP_SEEK, OP_COUNT };
static const char *const opname[] = { "read", "write", "mapread", "mapwrite", "truncate",
    "fallocate", "falloc-keep", "punch", "fsync", "reopen", "read-fd2", "seek-data/hole" };

static uint64_t rng;
static uint64_t rnd(void)
{
    rng ^= rng << 13; rng ^= rng >> 7; rng ^= rng << 17;
    return rng;
}

static const char *path;
static int fd = -1, fd2 = -1, quiet;
static uint8_t *ref, *buf;
static size_t size, maxlen = 1 << 20, maxop = 64 * 1024;
static long opno;

#define LOGN 32
static char oplog[LOGN][96];

static void logop(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void logop(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(oplog[opno % LOGN], sizeof(oplog[0]), fmt, ap);
    va_end(ap);
}

static void die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
static void die(const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "landro-fsx: op %ld: ", opno);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    fprintf(stderr, "last operations:\n");
    for (long i = opno - LOGN + 1; i <= opno; i++)
        if (i >= 0 && oplog[i % LOGN][0])
            fprintf(stderr, "  %6ld %s\n", i, oplog[i % LOGN]);
    exit(1);
}

static void check_bytes(const uint8_t *got, size_t off, size_t len, const char *what)
{
    if (memcmp(got, ref + off, len) == 0)
        return;
    size_t i = 0;
    while (got[i] == ref[off + i])
        i++;
    die("%s mismatch at offset %zu (of [%zu, +%zu)): got 0x%02x, expected 0x%02x", what,
        off + i, off, len, got[i], ref[off + i]);
}

static void check_size(void)
{
    struct stat st;
    if (fstat(fd, &st) != 0)
        die("fstat: %s", strerror(errno));
    if ((size_t)st.st_size != size)
        die("size is %jd, expected %zu", (intmax_t)st.st_size, size);
}

static void do_read(int which)
{
    if (size == 0)
        return;
    size_t off = rnd() % size, len = rnd() % maxop + 1;
    if (off + len > size)
        len = size - off;
    logop("%s %zu +%zu", which ? "read-fd2" : "read", off, len);
    ssize_t n = pread(which ? fd2 : fd, buf, len, (off_t)off);
    if (n != (ssize_t)len)
        die("read %zu at %zu returned %zd (%s)", len, off, n, n < 0 ? strerror(errno) : "short");
    check_bytes(buf, off, len, which ? "read (second handle)" : "read");
}

/* SEEK_DATA / SEEK_HOLE at a random offset. A file system may call any
 * hole data, so what holds everywhere: SEEK_DATA skips only zeros (and
 * fails with ENXIO only if nothing but zeros follows), SEEK_HOLE lands on
 * a zero byte or the end, and both fail with ENXIO at or past the end. */
static int all_zero(size_t from, size_t to)
{
    for (size_t i = from; i < to; i++)
        if (ref[i])
            return 0;
    return 1;
}

static void do_seek(void)
{
    size_t off = rnd() % (size + 2);
    int data = (int)(rnd() & 1);
    logop("%s %zu (size %zu)", data ? "seek-data" : "seek-hole", off, size);
    off_t r = lseek(fd, (off_t)off, data ? SEEK_DATA : SEEK_HOLE);
    if (r < 0 && errno != ENXIO)
        die("lseek %s %zu: %s", data ? "SEEK_DATA" : "SEEK_HOLE", off, strerror(errno));
    if (off >= size) {
        if (r >= 0)
            die("lseek at %zu, at or past the end (%zu), returned %jd, not ENXIO", off, size, (intmax_t)r);
        return;
    }
    if (data) {
        if (r < 0 ? !all_zero(off, size) : ((size_t)r < off || (size_t)r >= size || !all_zero(off, (size_t)r)))
            die("SEEK_DATA from %zu returned %jd: data skipped (size %zu)", off, (intmax_t)r, size);
    } else if (r < 0 || (size_t)r < off || (size_t)r > size || ((size_t)r < size && ref[r])) {
        die("SEEK_HOLE from %zu returned %jd: not a hole (size %zu)", off, (intmax_t)r, size);
    }
}

static void do_write(void)
{
    size_t off = rnd() % maxlen, len = rnd() % maxop + 1;
    if (off + len > maxlen)
        len = maxlen - off;
    for (size_t i = 0; i < len; i++)
        buf[i] = (uint8_t)(opno * 7 + i * 13 + (i >> 8));
    logop("write %zu +%zu (size %zu)", off, len, size);
    ssize_t n = pwrite(fd, buf, len, (off_t)off);
    if (n != (ssize_t)len)
        die("write %zu at %zu returned %zd (%s)", len, off, n, n < 0 ? strerror(errno) : "short");
    if (off > size)
        memset(ref + size, 0, off - size);
    memcpy(ref + off, buf, len);
    if (off + len > size)
        size = off + len;
}

static void do_mapread(void)
{
    if (size == 0)
        return;
    size_t off = rnd() % size, len = rnd() % maxop + 1;
    if (off + len > size)
        len = size - off;
    size_t pg = (size_t)sysconf(_SC_PAGESIZE), moff = off & ~(pg - 1);
    logop("mapread %zu +%zu", off, len);
    uint8_t *p = mmap(NULL, len + (off - moff), PROT_READ, MAP_SHARED, fd, (off_t)moff);
    if (p == MAP_FAILED)
        die("mmap read: %s", strerror(errno));
    check_bytes(p + (off - moff), off, len, "mapped read");
    munmap(p, len + (off - moff));
}

static void do_mapwrite(void)
{
    size_t off = rnd() % maxlen, len = rnd() % maxop + 1;
    if (off + len > maxlen)
        len = maxlen - off;
    logop("mapwrite %zu +%zu (size %zu)", off, len, size);
    if (off + len > size) {
        if (ftruncate(fd, (off_t)(off + len)) != 0)
            die("ftruncate for mapwrite: %s", strerror(errno));
        memset(ref + size, 0, off + len - size);
        size = off + len;
    }
    size_t pg = (size_t)sysconf(_SC_PAGESIZE), moff = off & ~(pg - 1);
    uint8_t *p = mmap(NULL, len + (off - moff), PROT_READ | PROT_WRITE, MAP_SHARED, fd, (off_t)moff);
    if (p == MAP_FAILED)
        die("mmap write: %s", strerror(errno));
    for (size_t i = 0; i < len; i++)
        ref[off + i] = p[off - moff + i] = (uint8_t)(opno * 11 + i * 3);
    if (msync(p, len + (off - moff), MS_SYNC) != 0)
        die("msync: %s", strerror(errno));
    munmap(p, len + (off - moff));
}

static void do_truncate(void)
{
    size_t ns = rnd() % (maxlen + 1);
    if (rnd() % 4 == 0)
        ns = size ? rnd() % size : 0; /* shrink more often than not */
    logop("truncate %zu -> %zu", size, ns);
    if (ftruncate(fd, (off_t)ns) != 0)
        die("ftruncate %zu: %s", ns, strerror(errno));
    if (ns > size)
        memset(ref + size, 0, ns - size);
    size = ns;
}

static void do_falloc(int op)
{
    size_t off = rnd() % maxlen, len = rnd() % maxop + 1;
    if (off + len > maxlen)
        len = maxlen - off;
    int mode = op == OP_FALLOC ? 0 : op == OP_KEEPSIZE ? FALLOC_FL_KEEP_SIZE
                                     : FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE;
    logop("%s %zu +%zu (size %zu)", opname[op], off, len, size);
    if (fallocate(fd, mode, (off_t)off, (off_t)len) != 0)
        die("fallocate mode %d %zu +%zu: %s", mode, off, len, strerror(errno));
    if (op == OP_FALLOC && off + len > size) {
        memset(ref + size, 0, off + len - size);
        size = off + len;
    } else if (op == OP_PUNCH && off < size) {
        memset(ref + off, 0, (off + len > size ? size : off + len) - off);
    }
}

static void reopen(void)
{
    if (fd >= 0 && close(fd) != 0)
        die("close: %s", strerror(errno));
    if (fd2 >= 0)
        close(fd2);
    fd = open(path, O_RDWR);
    fd2 = open(path, O_RDONLY);
    if (fd < 0 || fd2 < 0)
        die("open '%s': %s", path, strerror(errno));
}

static void full_check(void)
{
    check_size();
    size_t pos = 0;
    while (pos < size) {
        size_t len = size - pos > maxop ? maxop : size - pos;
        ssize_t n = pread(fd2, buf, len, (off_t)pos);
        if (n != (ssize_t)len)
            die("full read at %zu returned %zd", pos, n);
        check_bytes(buf, pos, len, "full-file check");
        pos += len;
    }
}

int main(int argc, char **argv)
{
    long nops = 10000;
    uint64_t seed = 1;
    int c;
    while ((c = getopt(argc, argv, "N:S:l:o:q")) != -1) {
        switch (c) {
        case 'N': nops = atol(optarg); break;
        case 'S': seed = strtoull(optarg, NULL, 0); break;
        case 'l': maxlen = strtoul(optarg, NULL, 0); break;
        case 'o': maxop = strtoul(optarg, NULL, 0); break;
        case 'q': quiet = 1; break;
        default:
            fprintf(stderr, "usage: landro-fsx [-N ops] [-S seed] [-l maxlen] [-o maxop] [-q] FILE\n");
            return 2;
        }
    }
    if (optind + 1 != argc || maxlen == 0 || maxop == 0 || maxop > maxlen) {
        fprintf(stderr, "usage: landro-fsx [-N ops] [-S seed] [-l maxlen] [-o maxop] [-q] FILE\n");
        return 2;
    }
    path = argv[optind];
    rng = seed * 0x9E3779B97F4A7C15ull + 0x1234567;
    ref = calloc(1, maxlen);
    buf = malloc(maxop);
    if (!ref || !buf)
        return 1;
    int cfd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0644);
    if (cfd < 0) {
        fprintf(stderr, "landro-fsx: cannot create '%s': %s\n", path, strerror(errno));
        return 1;
    }
    close(cfd);
    reopen();
    long counts[OP_COUNT] = { 0 };
    for (opno = 0; opno < nops; opno++) {
        unsigned r = (unsigned)(rnd() % 100);
        int op = r < 25 ? OP_READ : r < 50 ? OP_WRITE : r < 56 ? OP_MAPREAD : r < 61 ? OP_MAPWRITE
               : r < 67 ? OP_TRUNCATE : r < 71 ? OP_FALLOC : r < 74 ? OP_KEEPSIZE : r < 79 ? OP_PUNCH
               : r < 80 ? OP_FSYNC : r < 81 ? OP_REOPEN : r < 85 ? OP_SEEK : OP_READ2;
        counts[op]++;
        switch (op) {
        case OP_READ: do_read(0); break;
        case OP_READ2: do_read(1); break;
        case OP_WRITE: do_write(); break;
        case OP_MAPREAD: do_mapread(); break;
        case OP_MAPWRITE: do_mapwrite(); break;
        case OP_TRUNCATE: do_truncate(); break;
        case OP_FALLOC: case OP_KEEPSIZE: case OP_PUNCH: do_falloc(op); break;
        case OP_FSYNC:
            logop("fsync");
            if (fsync(fd) != 0)
                die("fsync: %s", strerror(errno));
            break;
        case OP_REOPEN: logop("reopen"); reopen(); break;
        case OP_SEEK: do_seek(); break;
        }
        if (opno % 1000 == 999)
            full_check();
    }
    full_check();
    reopen();
    full_check();
    close(fd);
    close(fd2);
    if (!quiet) {
        printf("landro-fsx: %ld operations, seed %" PRIu64 ", final size %zu:", nops, seed, size);
        for (int i = 0; i < OP_COUNT; i++)
            printf(" %s %ld", opname[i], counts[i]);
        printf("\n");
    }
    free(ref);
    free(buf);
    return 0;
}
