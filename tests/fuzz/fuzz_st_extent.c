/* fuzz_st_extent.c - libFuzzer target for extent records (layout in
 * store.h). Input: one byte key length, the key, then the value; key and
 * value go to separate exact-size buffers so ASan sees any over-read.
 * When st_extent_decode accepts, the record written back from the fields by
 * the layout in store.h (reserved bytes 1-3 zero) equals the input, the
 * extent lies inside one chunk of at most ST_CDC_MAX_LIMIT bytes and does
 * not overflow the file offset range. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "store.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    size_t klen = data[0];
    if (klen > size - 1)
        klen = size - 1;
    size_t vlen = size - 1 - klen;
    uint8_t *k = malloc(klen ? klen : 1), *v = malloc(vlen ? vlen : 1);
    memcpy(k, data + 1, klen);
    memcpy(v, data + 1 + klen, vlen);

    uint64_t ino = 0;
    struct st_extent e;
    if (st_extent_decode(k, klen, v, vlen, &ino, &e) == 0) {
        if (klen != 16 || vlen != ST_EXTENT_LEN)
            abort();
        if (e.len == 0 || e.len > ST_CDC_MAX_LIMIT ||
            (uint64_t)e.chunk_off + e.len > ST_CDC_MAX_LIMIT ||
            e.off + e.len < e.off || e.off + e.len > (uint64_t)INT64_MAX)
            abort();
        uint8_t kk[16], vv[ST_EXTENT_LEN];
        lr_put_be64(kk, ino);
        lr_put_be64(kk + 8, e.off);
        memset(vv, 0, sizeof(vv));
        vv[0] = 1;
        lr_put_le32(vv + 4, e.len);
        lr_put_le32(vv + 8, e.chunk_off);
        memcpy(vv + 12, e.hash.b, ST_HASH_LEN);
        memset(v + 1, 0, 3); /* reserved */
        if (memcmp(kk, k, 16) || memcmp(vv, v, ST_EXTENT_LEN))
            abort();
    }
    free(k);
    free(v);
    return 0;
}
