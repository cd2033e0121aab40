/* lr.c - shared helpers: error strings, logger, clocks. See lr.h. */
#include "lr.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

static const char *const lr_errstr[] = {
    [-(LR_ECORRUPT - LR_EBASE)]   = "store data is corrupt",
    [-(LR_EPROTO - LR_EBASE)]     = "protocol violation by peer",
    [-(LR_EUNTRUSTED - LR_EBASE)] = "peer is not trusted",
    [-(LR_EVERSION - LR_EBASE)]   = "unsupported format or protocol version",
    [-(LR_EPARAMS - LR_EBASE)]    = "chunker parameters differ from the store's",
    [-(LR_EHASH - LR_EBASE)]      = "data does not match its hash",
    [-(LR_EMISSING - LR_EBASE)]   = "chunk is not held locally",
    [-(LR_ETIMEDOUT - LR_EBASE)]  = "no peer answered in time",
    [-(LR_ELOCKED - LR_EBASE)]    = "store is in use by another process",
    [-(LR_ETLS - LR_EBASE)]       = "tls failure",
    [-(LR_EQUIC - LR_EBASE)]      = "quic connection error",
};

const char *lr_strerror(int err)
{
    static __thread char buf[64];
    if (err <= LR_EBASE && err > LR_ELAST) {
        const char *s = lr_errstr[-(err - LR_EBASE)];
        if (s)
            return s;
    }
    if (err < 0 && err > LR_EBASE)
        return strerror(-err);
    if (err == 0)
        return "success";
    snprintf(buf, sizeof(buf), "unknown error %d", err);
    return buf;
}

static int lr_level = LR_LOG_INFO;
static int lr_syslog;

void lr_log_set_level(enum lr_level lvl) { __atomic_store_n(&lr_level, (int)lvl, __ATOMIC_RELAXED); }
enum lr_level lr_log_get_level(void) { return (enum lr_level)__atomic_load_n(&lr_level, __ATOMIC_RELAXED); }

void lr_log_use_syslog(void)
{
    openlog("landro", LOG_PID, LOG_DAEMON);
    lr_syslog = 1;
}

void lr_log(enum lr_level lvl, const char *fmt, ...)
{
    static const char *const names[] = { "error", "warning", "info", "debug", "trace" };
    static const int prio[] = { LOG_ERR, LOG_WARNING, LOG_INFO, LOG_DEBUG, LOG_DEBUG };
    if ((int)lvl > __atomic_load_n(&lr_level, __ATOMIC_RELAXED))
        return;
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    if (lr_syslog) {
        syslog(prio[lvl], "%s", msg);
        return;
    }
    char line[1100];
    int n = snprintf(line, sizeof(line), "landro: %s: %s\n", names[lvl], msg);
    if (n > (int)sizeof(line) - 1)
        n = (int)sizeof(line) - 1;
    ssize_t w = write(STDERR_FILENO, line, (size_t)n);
    (void)w;
}

static uint64_t lr_clock(clockid_t id)
{
    struct timespec ts;
    clock_gettime(id, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

uint64_t lr_now_mono_ns(void) { return lr_clock(CLOCK_MONOTONIC); }
uint64_t lr_now_real_ns(void) { return lr_clock(CLOCK_REALTIME); }

void lr_deadline_in(struct timespec *ts, uint64_t ns)
{
    clock_gettime(CLOCK_REALTIME, ts);
    ts->tv_sec += (time_t)(ns / 1000000000ull);
    ts->tv_nsec += (long)(ns % 1000000000ull);
    if (ts->tv_nsec >= 1000000000L) {
        ts->tv_sec++;
        ts->tv_nsec -= 1000000000L;
    }
}

void *lr_grow(void *v, size_t *cap, size_t n, size_t elem, size_t first)
{
    if (n < *cap)
        return v;
    size_t nc = *cap ? 2 * *cap : first;
    if (nc <= n)
        nc = n + 1;
    void *p = realloc(v, nc * elem);
    if (p)
        *cap = nc;
    return p;
}

int lr_write_all(int fd, const void *buf, size_t len)
{
    const uint8_t *p = buf;
    while (len) {
        ssize_t w = write(fd, p, len);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        p += w;
        len -= (size_t)w;
    }
    return 0;
}

/* Undo mountinfo's octal escapes (\040 for a space, ...) in place. */
static void mountinfo_unescape(char *s)
{
    char *o = s;
    for (char *p = s; *p; p++) {
        if (p[0] == '\\' && p[1] >= '0' && p[1] <= '3' && p[2] >= '0' && p[2] <= '7' && p[3] >= '0' &&
            p[3] <= '7') {
            *o++ = (char)((p[1] - '0') * 64 + (p[2] - '0') * 8 + (p[3] - '0'));
            p += 3;
        } else {
            *o++ = *p;
        }
    }
    *o = '\0';
}

int lr_mountinfo_next(FILE *f, char **line, size_t *cap, struct lr_mount *m)
{
    while (getline(line, cap, f) > 0) {
        /* id parent maj:min root mountpoint opts [tags...] - fstype source superopts */
        char *save = NULL, *tok = strtok_r(*line, " \n", &save);
        tok = tok ? strtok_r(NULL, " \n", &save) : NULL;           /* parent */
        char *dev = tok ? strtok_r(NULL, " \n", &save) : NULL;     /* maj:min */
        tok = dev ? strtok_r(NULL, " \n", &save) : NULL;           /* root */
        char *point = tok ? strtok_r(NULL, " \n", &save) : NULL;
        if (!point || sscanf(dev, "%u:%u", &m->major, &m->minor) != 2)
            continue;
        while ((tok = strtok_r(NULL, " \n", &save)) && strcmp(tok, "-"))
            ;
        char *type = tok ? strtok_r(NULL, " \n", &save) : NULL;
        char *source = type ? strtok_r(NULL, " \n", &save) : NULL;
        if (!source)
            continue;
        mountinfo_unescape(point);
        mountinfo_unescape(source);
        m->point = point;
        m->type = type;
        m->source = source;
        return 1;
    }
    return 0;
}
