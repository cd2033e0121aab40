/*
 * frame.h - the control stream's frame codec and the data stream header.
 * docs/PROTOCOL.md is the reference; this header repeats the layouts.
 *
 * Every integer is little-endian.
 *
 * Frame (control stream, the first client-initiated bidirectional stream):
 *   off size field
 *     0   1  frame format version (NET_FRAME_VERSION = 1)
 *     1   1  flags (0; anything else is rejected)
 *     2   2  type (NET_FT_*; >= NET_FRAME_APP_MIN: application frame)
 *     4   4  payload length n (<= NET_FRAME_MAX)
 *     8   n  payload
 *
 * Payloads:
 *   HELLO (1), n >= 56 (longer: later fields, ignored by version 1):
 *     0 32 device id | 32 16 volume id | 48 2 protocol version | 50 2 reserved 0
 *     52 4 flags 0
 *   PING (2) / PONG (3), n = 16: 0 8 nonce | 8 8 sender's timestamp (echoed)
 *   CHUNK_REQ (4), n = 40: 0 4 request id | 4 4 flags | 8 32 chunk hash;
 *     flags: NET_REQ_RELAY (1) = if you do not hold it, fetch it from your
 *     other peers and answer with it (the asker asked every peer it knows
 *     directly first); NET_REQ_URGENT (2) = a reader waits for this one:
 *     answer it before the read-ahead queued earlier; other bits are
 *     rejected
 *   CHUNK_NOTFOUND (5), n = 40: 0 4 request id | 4 4 reason (positive errno
 *     or -LR_E* value) | 8 32 chunk hash
 *   ERROR (6), 4 <= n <= 4 + NET_ERRMSG_MAX: 0 4 code (as NOTFOUND reason)
 *     | 4 n-4 message, UTF-8, not NUL-terminated
 *   types 7..NET_FRAME_APP_MIN-1: reserved, rejected with LR_EPROTO.
 *
 * Data stream (a unidirectional stream opened by the side that answers),
 * one chunk response per stream, then FIN:
 *   off size field
 *     0   1  version (1)
 *     1   3  reserved (0)
 *     4   4  request id (as in CHUNK_REQ)
 *     8  32  chunk hash
 *    40   4  chunk length L (<= NET_CHUNK_MAX)
 *    44   L  chunk bytes
 *
 * Pure functions, any thread. Decoders never trust lengths from the wire.
 */
#ifndef NET_FRAME_H
#define NET_FRAME_H

#include <stddef.h>
#include <stdint.h>

#include "net.h"

#define NET_FRAME_VERSION 1
#define NET_FRAME_HDR_LEN 8
#define NET_HELLO_LEN 56
#define NET_ERRMSG_MAX 1024
#define NET_DATA_HDR_LEN 44

#define NET_REQ_RELAY 1u
#define NET_REQ_URGENT 2u
#define NET_REQ_FLAGS (NET_REQ_RELAY | NET_REQ_URGENT)

enum net_frame_type {
    NET_FT_HELLO = 1,
    NET_FT_PING = 2,
    NET_FT_PONG = 3,
    NET_FT_CHUNK_REQ = 4,
    NET_FT_CHUNK_NOTFOUND = 5,
    NET_FT_ERROR = 6,
};

struct net_frame {
    uint16_t type;
    uint32_t len;              /* payload length */
    const uint8_t *payload;    /* points into the decoded buffer */
    union {
        struct { net_id id; uint8_t volume[NET_VOLUME_LEN]; uint16_t version; } hello;
        struct { uint64_t nonce, ts; } ping;             /* PING and PONG */
        /* REQ (code: the flags) and NOTFOUND (code: the reason) */
        struct { uint32_t req; uint32_t code; st_hash h; } chunk;
        struct { uint32_t code; const char *msg; size_t msglen; } error;
    } u;
};

/* Decode one frame from the start of buf. Returns 0 and sets *used to the
 * bytes it took (header + payload); -EAGAIN if buf holds only a prefix of a
 * valid frame; LR_EVERSION for another frame format version; LR_EPROTO for
 * nonzero flags, an oversize payload, a reserved type or a payload of the
 * wrong size. Application frames are returned with only len and payload. */
int net_frame_decode(const uint8_t *buf, size_t len, struct net_frame *f, size_t *used);

/* Encoders write header + payload into out, which must hold
 * NET_FRAME_HDR_LEN + payload bytes; they return the bytes written. */
size_t net_frame_put(uint8_t *out, uint16_t type, const void *payload, uint32_t len);
size_t net_frame_put_hello(uint8_t *out, const net_id *id, const uint8_t volume[NET_VOLUME_LEN],
                           uint16_t version);
size_t net_frame_put_ping(uint8_t *out, uint16_t type, uint64_t nonce, uint64_t ts);
size_t net_frame_put_chunk(uint8_t *out, uint16_t type, uint32_t req, uint32_t code,
                           const st_hash *h);
/* msglen is clamped to NET_ERRMSG_MAX. */
size_t net_frame_put_error(uint8_t *out, uint32_t code, const char *msg, size_t msglen);

struct net_data_hdr { uint32_t req; st_hash h; uint32_t len; };
void net_data_hdr_put(uint8_t out[NET_DATA_HDR_LEN], const struct net_data_hdr *d);
/* LR_EVERSION or LR_EPROTO (nonzero reserved bytes, len > NET_CHUNK_MAX). */
int net_data_hdr_decode(const uint8_t in[NET_DATA_HDR_LEN], struct net_data_hdr *d);

#endif
