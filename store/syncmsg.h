/*
 * syncmsg.h - decoding the payloads of the synchronization frames that
 * peers exchange on the control stream (docs/PROTOCOL.md,
 * "Synchronization frames"): HELLO, HAVE, HOLDQ, HOLDA and REPL. The
 * record stream of SYNC_DATA is parsed by fs/sync.c and its records by
 * replica.h. Kept apart from fs/ so the decoder is a pure function that a
 * fuzz target (tests/fuzz/fuzz_syncmsg.c) can drive.
 *
 * Threads: none (pure). Memory: out->items points into the payload.
 * Errors: st_syncmsg_decode returns 0 or LR_EPROTO for a payload that is
 * too short, of another version, of an unknown type, or whose item list
 * does not match its length or count.
 */
#ifndef ST_SYNCMSG_H
#define ST_SYNCMSG_H

#include <stddef.h>
#include <stdint.h>

#include "lr.h"

enum {
    ST_SYNC_HELLO = 0x100,
    ST_SYNC_DATA = 0x101,
    ST_SYNC_HAVE = 0x102,
    ST_SYNC_HOLDQ = 0x103,
    ST_SYNC_HOLDA = 0x104,
    ST_SYNC_REPL = 0x105,
};

#define ST_SYNC_MAX_ITEMS 8192 /* hashes or file ids per frame */

struct st_syncmsg {
    uint16_t type;
    uint8_t kind;          /* HAVE: 1 = holds, 0 = dropped */
    uint32_t reqid;        /* HOLDQ, HOLDA */
    uint64_t applied;      /* HELLO */
    uint32_t n;            /* items */
    size_t itemlen;        /* 32 (hash), 16 (file id) or 1 (HOLDA answer) */
    const uint8_t *items;  /* n * itemlen bytes */
};

int st_syncmsg_decode(uint16_t type, const uint8_t *p, size_t len, struct st_syncmsg *out);

#endif
