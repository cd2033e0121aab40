/* fuzz_st_chunkref.c - libFuzzer target for chunkref values (layout in
 * store.h): st_chunkref_decode never crashes or reads past len; when it
 * accepts, the fields re-encode to the input bytes with the reserved bytes
 * 2-3 and 28-31 read as zero, and decode again to the same fields. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "store.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint8_t *in = malloc(size ? size : 1);
    memcpy(in, data, size);
    struct st_chunkref a, b;
    memset(&a, 0, sizeof(a));
    if (st_chunkref_decode(in, size, &a) != 0) {
        free(in);
        return 0;
    }
    if (size != ST_CHUNKREF_LEN || a.len == 0 || a.len > ST_CDC_MAX_LIMIT ||
        (a.flags & ~(ST_CHUNK_LOCAL | ST_CHUNK_PINNED)))
        abort();
    uint8_t out[ST_CHUNKREF_LEN];
    st_chunkref_encode(&a, out);
    memset(in + 2, 0, 2);  /* reserved */
    memset(in + 28, 0, 4); /* reserved */
    if (memcmp(out, in, ST_CHUNKREF_LEN))
        abort();
    memset(&b, 0xa5, sizeof(b));
    if (st_chunkref_decode(out, sizeof(out), &b) != 0 || a.flags != b.flags || a.len != b.len ||
        a.refcount != b.refcount || a.last_use != b.last_use || a.peers != b.peers)
        abort();
    free(in);
    return 0;
}
