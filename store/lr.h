/*
 * lr.h - the few helpers shared by every landro layer: error codes,
 * logging, little-endian/big-endian codecs, time, the mount table.
 *
 * Errors. Every landro function that can fail returns int: 0 on success,
 * a negative errno (-ENOENT, -ENOMEM, ...) or one of the LR_E* codes below.
 * LR_E* live in a reserved range below -1000 so they never collide with an
 * errno. lr_strerror() describes both kinds. LMDB and ngtcp2 codes are
 * translated at the layer edge (store/, net/) and never escape it.
 *
 * Logging. One process-wide, level-gated logger. lr_log() is thread-safe
 * (one write(2) per message). By default it writes to stderr; after
 * lr_log_use_syslog() it writes to syslog. Messages are lowercase, say what
 * went wrong first and name the file, peer or store they are about.
 *
 * Threads: all functions here may be called from any thread.
 */
#ifndef LR_H
#define LR_H

#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdint.h>
#include <string.h>
#include <time.h>

enum {
    LR_EBASE       = -1000,
    LR_ECORRUPT    = -1001, /* data read from disk failed validation */
    LR_EPROTO      = -1002, /* a peer sent a malformed or unexpected frame */
    LR_EUNTRUSTED  = -1003, /* peer's device id not in the trusted list */
    LR_EVERSION    = -1004, /* store format or protocol version unsupported */
    LR_EPARAMS     = -1005, /* chunker parameters differ from the store's */
    LR_EHASH       = -1006, /* bytes do not hash to the expected name */
    LR_EMISSING    = -1007, /* chunk not held locally (fetch from a peer) */
    LR_ETIMEDOUT   = -1008, /* no peer answered within the bound */
    LR_ELOCKED     = -1009, /* store in use by another process */
    LR_ETLS        = -1010, /* TLS handshake or certificate failure */
    LR_EQUIC       = -1011, /* QUIC connection error */
    LR_ELAST       = -1012,
};

/* Describe err (a negative errno or LR_E* code). Never NULL; the string is
 * static (or thread-local for unknown codes) and must not be freed. */
const char *lr_strerror(int err);

enum lr_level { LR_LOG_QUIET = -1, LR_LOG_ERROR = 0, LR_LOG_WARN, LR_LOG_INFO, LR_LOG_DEBUG, LR_LOG_TRACE };

void lr_log_set_level(enum lr_level lvl);
enum lr_level lr_log_get_level(void);
/* Route messages to syslog (ident "landro") instead of stderr. */
void lr_log_use_syslog(void);
void lr_log(enum lr_level lvl, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define lr_error(...) lr_log(LR_LOG_ERROR, __VA_ARGS__)
#define lr_warn(...)  lr_log(LR_LOG_WARN, __VA_ARGS__)
#define lr_info(...)  lr_log(LR_LOG_INFO, __VA_ARGS__)
#define lr_debug(...) do { if (lr_log_get_level() >= LR_LOG_DEBUG) lr_log(LR_LOG_DEBUG, __VA_ARGS__); } while (0)

/* Write all len bytes of buf to fd, retrying short writes and EINTR.
 * 0 or -errno. */
int lr_write_all(int fd, const void *buf, size_t len);

/* Room for element n of a growing array v of *cap elements of elem bytes
 * each (n <= *cap): when n == *cap, realloc it to twice *cap (first when
 * empty) and update *cap. Returns the array, moved or not, or NULL with v
 * and *cap untouched when memory runs out. Usage:
 *   T *a = lr_grow(l->v, &l->cap, l->n, sizeof(*a), 64);
 *   if (!a) return -ENOMEM;
 *   l->v = a; l->v[l->n++] = x; */
void *lr_grow(void *v, size_t *cap, size_t n, size_t elem, size_t first);

/* One line of /proc/self/mountinfo. lr_mountinfo_next reads the next
 * line of f (opened by the caller) into *line (getline's buffer, the
 * caller frees it) and points m's strings into it, the mount point and
 * source with the kernel's \ooo escapes undone; valid until the next
 * call. Returns 1, or 0 at the end of the file. Malformed lines are
 * skipped. */
struct lr_mount {
    unsigned major, minor; /* the mounted file system's device */
    char *point, *type, *source;
};
int lr_mountinfo_next(FILE *f, char **line, size_t *cap, struct lr_mount *m);

/* Monotonic and wall clocks, nanoseconds. */
uint64_t lr_now_mono_ns(void);
uint64_t lr_now_real_ns(void);
/* *ts = ns from now on the wall clock: the absolute deadline that
 * pthread_cond_timedwait takes (condition variables here use the default,
 * CLOCK_REALTIME). */
void lr_deadline_in(struct timespec *ts, uint64_t ns);

/* Fixed-width codecs. Wire and disk formats are little-endian except keys,
 * which are big-endian so that LMDB's bytewise order is numeric order. */
static inline void lr_put_le16(uint8_t *p, uint16_t v) { p[0] = (uint8_t)v; p[1] = (uint8_t)(v >> 8); }
static inline void lr_put_le32(uint8_t *p, uint32_t v) { for (int i = 0; i < 4; i++) p[i] = (uint8_t)(v >> (8 * i)); }
static inline void lr_put_le64(uint8_t *p, uint64_t v) { for (int i = 0; i < 8; i++) p[i] = (uint8_t)(v >> (8 * i)); }
static inline uint16_t lr_get_le16(const uint8_t *p) { return (uint16_t)(p[0] | (p[1] << 8)); }
static inline uint32_t lr_get_le32(const uint8_t *p) { uint32_t v = 0; for (int i = 3; i >= 0; i--) v = (v << 8) | p[i]; return v; }
static inline uint64_t lr_get_le64(const uint8_t *p) { uint64_t v = 0; for (int i = 7; i >= 0; i--) v = (v << 8) | p[i]; return v; }
static inline void lr_put_be64(uint8_t *p, uint64_t v) { for (int i = 0; i < 8; i++) p[i] = (uint8_t)(v >> (56 - 8 * i)); }
static inline uint64_t lr_get_be64(const uint8_t *p) { uint64_t v = 0; for (int i = 0; i < 8; i++) v = (v << 8) | p[i]; return v; }
static inline void lr_put_be32(uint8_t *p, uint32_t v) { for (int i = 0; i < 4; i++) p[i] = (uint8_t)(v >> (24 - 8 * i)); }
static inline uint32_t lr_get_be32(const uint8_t *p) { uint32_t v = 0; for (int i = 0; i < 4; i++) v = (v << 8) | p[i]; return v; }

#define LR_ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
#define LR_MIN(a, b) ((a) < (b) ? (a) : (b))
#define LR_MAX(a, b) ((a) > (b) ? (a) : (b))

#endif
