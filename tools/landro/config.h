/*
 * config.h - the store's configuration file, STORE/landro.conf (ini
 * style, parsed with libinih). Keys, all optional, outside any section:
 *
 *   listen = 0.0.0.0:7400          where peers reach the daemon; repeat the
 *   listen = [::]:7400, ...        key or separate addresses with commas
 *                                  (at most NET_MAX_LISTEN in all)
 *   fetch_timeout_ms = 5000        bound for an on-demand read, 1..600000
 *   log_level = info               error | warn | info | debug
 *   replicate = no                 yes: keep a full copy of every file's
 *                                  data here, fetched in the background
 *   cache_quota = 20G              chunk data kept here before the least
 *                                  recently used chunks held by peers are
 *                                  evicted; K/M/G/T suffixes (powers of
 *                                  1024); 0 or none: no limit (default)
 *   copies = 1                     peers that must hold a chunk before it
 *                                  may be evicted, and that new files are
 *                                  pushed to in the background (0..16;
 *                                  0: no push, eviction still needs 1)
 *   push_after = 30                seconds after a file's last change before
 *                                  it is pushed to peers (0..86400)
 *   max_pending = 100000           peers' records kept in memory while the
 *                                  directory they lie in has not arrived
 *                                  (16..10000000); beyond it they are
 *                                  asked for again once those have landed
 *   forget_deleted_after = 90d     a deleted file's tombstone is kept this
 *                                  long after its deletion (s/m/h/d
 *                                  suffix, a bare number is days; 1s to
 *                                  36500d, or never); see replica.h,
 *                                  FORGETTING DELETIONS
 *
 *   peer = DEVICE-ID ADDR:PORT[, ADDR:PORT...]
 *                                  a peer and where it is reached; repeat
 *                                  the key per peer (at most
 *                                  CMD_CONFIG_MAX_PEERS). At mount the
 *                                  daemon adds each to the store's peer
 *                                  database, or updates its addresses, as
 *                                  'landro peer add' does; peers added
 *                                  with 'landro peer add' stay as they are.
 *
 * '#' and ';' start comments. Command-line flags override the file. A
 * missing file means all defaults.
 *
 * Errors: cmd_config_load prints "landro: FILE:LINE: what is wrong" for the
 * first bad line and returns -1; nothing is applied then.
 */
#ifndef LANDRO_CONFIG_H
#define LANDRO_CONFIG_H

#include "lr.h"
#include "net.h"

#define CMD_CONFIG_FILE "landro.conf"
#define CMD_CONFIG_MAX_PEERS 64

#include "peerrec.h"

struct cmd_config_peer {
    net_id id;
    struct st_peerrec rec;  /* addresses; applied 0 */
};

struct cmd_config {
    char *listen[NET_MAX_LISTEN + 1]; /* NULL-ended, owned */
    unsigned nlisten;
    unsigned fetch_timeout_ms;        /* 0: not set */
    int replicate;                    /* 1: replicate = yes */
    int has_cache_quota;
    uint64_t cache_quota;             /* bytes, 0: no limit */
    int copies;                       /* -1: not set */
    int push_after;                   /* -1: not set */
    unsigned max_pending;             /* 0: not set */
    int64_t forget_deleted_s;         /* -1: not set; 0: never */
    struct cmd_config_peer *peers;    /* owned */
    unsigned npeers;
    int has_log_level;
    enum lr_level log_level;
};

/* Read DIR/landro.conf into c (zeroed first). 0 on success (also when the
 * file does not exist), -1 with a message printed. Release with
 * cmd_config_release either way. */
int cmd_config_load(const char *dir, struct cmd_config *c);
/* Parse the file at path (for tests and 'load'). Same returns. */
int cmd_config_parse(const char *path, struct cmd_config *c);
void cmd_config_release(struct cmd_config *c);

/* A size such as 512M, 20G, 1T or a plain byte count ("none": 0) into
 * *out. -1 if malformed. */
int cmd_parse_size(const char *s, uint64_t *out);
/* A duration, N followed by s, m, h or d (a bare N is days), at most
 * 36500 days, into *out (seconds). -1 if malformed or too long. */
int cmd_parse_duration(const char *s, int64_t *out);
/* A decimal integer in [min, max] into *out. -1 if malformed or out of
 * range. */
int cmd_parse_int(const char *s, long min, long max, long *out);

/* host:port with a numeric port 0..65535 (0: any free port); [v6]:port. */
int cmd_addr_valid(const char *a, int allow_port0);

#endif
