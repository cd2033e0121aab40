/*
 * peerrec.h - the value of a record in the store's "peer" database: how
 * to reach a peer and how far its change log has been applied here.
 *
 *   off size field
 *     0   1  version (2; 1 is read too: it has no "seen", taken as 0)
 *     1   1  flags (ST_PEER_*)
 *     2   8  applied: highest sequence number of the peer's log whose
 *            records have all been applied here (u64 LE)
 *    10   8  seen (version 2): when the peer last streamed its log to
 *            this device, wall clock seconds (u64 LE); 0: never or unknown
 *    18   1  naddrs (<= ST_PEER_MAX_ADDRS)
 *    19      naddrs x (u8 length 1..63, "host:port" bytes)
 *
 * Pure functions, any thread. Errors: -LR_ECORRUPT (decode), -EINVAL.
 */
#ifndef ST_PEERREC_H
#define ST_PEERREC_H

#include <stddef.h>
#include <stdint.h>

#define ST_PEER_MAX_ADDRS 4
#define ST_PEER_ADDR_MAX 63
#define ST_PEERREC_MAX (19 + ST_PEER_MAX_ADDRS * (1 + ST_PEER_ADDR_MAX))

struct st_peerrec {
    uint8_t flags;
    uint64_t applied;
    unsigned naddrs;
    char addrs[ST_PEER_MAX_ADDRS][ST_PEER_ADDR_MAX + 1];
    uint64_t seen;   /* last in the struct: older initializers leave it 0 */
};

int st_peerrec_decode(const void *buf, size_t len, struct st_peerrec *out);
/* Returns the encoded length (<= ST_PEERREC_MAX); -EINVAL for an address
 * that is empty, too long or holds a control character. */
int st_peerrec_encode(const struct st_peerrec *in, uint8_t buf[ST_PEERREC_MAX]);

#endif
