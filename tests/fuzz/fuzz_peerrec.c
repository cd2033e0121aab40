/* fuzz_peerrec.c - libFuzzer target for peer records: decode, and when
 * that succeeds, encode again and expect the same bytes. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "peerrec.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct st_peerrec r;
    if (st_peerrec_decode(data, size, &r))
        return 0;
    uint8_t b[ST_PEERREC_MAX];
    int n = st_peerrec_encode(&r, b);
    if (n < 0 || (size_t)n != size || memcmp(b, data, size))
        abort();
    return 0;
}
