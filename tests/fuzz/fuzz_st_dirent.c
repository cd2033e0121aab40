/* fuzz_st_dirent.c - libFuzzer target for directory entries (layout in
 * store.h). Input: a little-endian u16 key length (mod 300, so keys from
 * empty to longer than any legal one), the key, then the value; key and
 * value go to separate exact-size buffers so ASan sees any over-read.
 * When st_dirent_decode accepts, the name is 1..ST_NAME_MAX bytes without
 * '/' or NUL, NUL-terminated, and the record written back from the fields
 * by the layout in store.h (reserved bytes 2-7 zero) equals the input. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "store.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2)
        return 0;
    size_t klen = lr_get_le16(data) % 300;
    if (klen > size - 2)
        klen = size - 2;
    size_t vlen = size - 2 - klen;
    uint8_t *k = malloc(klen ? klen : 1), *v = malloc(vlen ? vlen : 1);
    memcpy(k, data + 2, klen);
    memcpy(v, data + 2 + klen, vlen);

    static struct st_dirent d;
    memset(&d, 0xa5, sizeof(d));
    if (st_dirent_decode(k, klen, v, vlen, &d) == 0) {
        if (vlen != ST_DIRENT_LEN || d.namelen < 1 || d.namelen > ST_NAME_MAX ||
            klen != 8u + d.namelen || d.name[d.namelen] != 0 ||
            memchr(d.name, '/', d.namelen) || strlen(d.name) != d.namelen || d.child == 0)
            abort();
        uint8_t kk[8 + ST_NAME_MAX], vv[ST_DIRENT_LEN];
        lr_put_be64(kk, d.parent);
        memcpy(kk + 8, d.name, d.namelen);
        memset(vv, 0, sizeof(vv));
        vv[0] = 1;
        vv[1] = d.type;
        lr_put_le64(vv + 8, d.child);
        memset(v + 2, 0, 6); /* reserved */
        if (memcmp(kk, k, klen) || memcmp(vv, v, ST_DIRENT_LEN))
            abort();
    }
    free(k);
    free(v);
    return 0;
}
