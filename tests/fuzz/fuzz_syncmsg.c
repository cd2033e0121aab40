/* fuzz_syncmsg.c - libFuzzer target for the synchronization frame
 * decoder: the first two bytes pick the frame type (0x100 + b % 8, so
 * unknown types are exercised too), the rest is the payload. A decoded
 * message must describe items inside the payload. */
#include <stdint.h>
#include <stdlib.h>

#include "syncmsg.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    uint16_t type = (uint16_t)(0x100 + data[0] % 8);
    const uint8_t *p = data + 1;
    size_t len = size - 1;
    struct st_syncmsg m;
    if (st_syncmsg_decode(type, p, len, &m))
        return 0;
    if (m.n) {
        if (m.items < p || m.items + (size_t)m.n * m.itemlen > p + len)
            abort();
        volatile uint8_t sum = 0;
        for (size_t i = 0; i < (size_t)m.n * m.itemlen; i++)
            sum ^= m.items[i];
        (void)sum;
    }
    if (m.n > ST_SYNC_MAX_ITEMS)
        abort();
    return 0;
}
