/*
 * fuzz_rep.c - libFuzzer target for the replication record decoder
 * (st_rep_decode), which parses what untrusted peers send. A record that
 * decodes must have its counts and extents within the buffer: walk them.
 */
#include <stdint.h>
#include <stdlib.h>

#include "replica.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct st_rep_file f;
    if (st_rep_decode(data, size, &f) != 0)
        return 0;
    volatile uint64_t sum = 0;
    for (uint16_t i = 0; i < f.nnames; i++)
        for (uint16_t j = 0; j < f.names[i].len; j++)
            sum += (uint8_t)f.names[i].name[j];
    for (uint16_t i = 0; i < f.nxattrs; i++)
        sum += f.xattrs[i].vlen ? ((const uint8_t *)f.xattrs[i].val)[f.xattrs[i].vlen - 1] : 0;
    for (uint32_t i = 0; i < f.nextents; i++) {
        struct st_extent e;
        uint32_t cl;
        st_rep_extent(&f, i, &e, &cl);
        if ((uint64_t)e.chunk_off + e.len > cl || e.off + e.len > f.size)
            abort();
        sum += e.hash.b[0];
    }
    (void)sum;
    return 0;
}
