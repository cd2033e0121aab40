/* fuzz_frame.c - the control frame decoder and the data stream header
 * decoder on arbitrary bytes: decode a stream of frames as the connection
 * does, and check every accepted frame re-encodes to the same bytes. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "frame.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    size_t off = 0;
    while (off < size) {
        struct net_frame f;
        size_t used = 0;
        int rc = net_frame_decode(data + off, size - off, &f, &used);
        if (rc != 0)
            break;
        if (used < NET_FRAME_HDR_LEN || used > size - off)
            abort();
        uint8_t *re = malloc(used);
        size_t n = 0;
        switch (f.type) {
        case NET_FT_PING:
        case NET_FT_PONG: n = net_frame_put_ping(re, f.type, f.u.ping.nonce, f.u.ping.ts); break;
        case NET_FT_CHUNK_REQ:
        case NET_FT_CHUNK_NOTFOUND:
            n = net_frame_put_chunk(re, f.type, f.u.chunk.req, f.u.chunk.code, &f.u.chunk.h);
            break;
        case NET_FT_ERROR: n = net_frame_put_error(re, f.u.error.code, f.u.error.msg, f.u.error.msglen); break;
        default: n = net_frame_put(re, f.type, f.payload, f.len); break;
        }
        if (n != used || memcmp(re, data + off, used) != 0)
            abort();
        free(re);
        off += used;
    }
    if (size >= NET_DATA_HDR_LEN) {
        struct net_data_hdr d;
        if (net_data_hdr_decode(data, &d) == 0) {
            uint8_t re[NET_DATA_HDR_LEN];
            net_data_hdr_put(re, &d);
            if (memcmp(re, data, NET_DATA_HDR_LEN) != 0 || d.len > NET_CHUNK_MAX)
                abort();
        }
    }
    return 0;
}
