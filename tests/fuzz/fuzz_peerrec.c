/* fuzz_peerrec.c - libFuzzer target for peer records: decode, and when
 * that succeeds, encode again: a version 2 record must come back as the
 * same bytes, and any record must decode again to the same fields. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "peerrec.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct st_peerrec r, again;
    if (st_peerrec_decode(data, size, &r))
        return 0;
    uint8_t b[ST_PEERREC_MAX];
    int n = st_peerrec_encode(&r, b);
    if (n < 0 || st_peerrec_decode(b, (size_t)n, &again) || memcmp(&r, &again, sizeof(r)))
        abort();
    if (data[0] == 2 && ((size_t)n != size || memcmp(b, data, size)))
        abort();
    return 0;
}
