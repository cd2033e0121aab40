/* peerrec.c - peer records (layout in peerrec.h). */
#include "peerrec.h"

#include <string.h>

#include "lr.h"

static int addr_ok(const char *a, size_t n)
{
    if (n == 0 || n > ST_PEER_ADDR_MAX)
        return 0;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)a[i] <= ' ' || (unsigned char)a[i] >= 127)
            return 0;
    return 1;
}

int st_peerrec_decode(const void *buf, size_t len, struct st_peerrec *out)
{
    const uint8_t *b = buf;
    if (len < 11 || (b[0] != 1 && b[0] != 2) || (b[0] == 2 && len < 19))
        return LR_ECORRUPT;
    memset(out, 0, sizeof(*out));
    out->flags = b[1];
    out->applied = lr_get_le64(b + 2);
    size_t p = 10;
    if (b[0] == 2) {
        out->seen = lr_get_le64(b + 10);
        p = 18;
    }
    out->naddrs = b[p++];
    if (out->naddrs > ST_PEER_MAX_ADDRS)
        return LR_ECORRUPT;
    for (unsigned i = 0; i < out->naddrs; i++) {
        if (p >= len)
            return LR_ECORRUPT;
        size_t n = b[p++];
        if (len - p < n || !addr_ok((const char *)b + p, n))
            return LR_ECORRUPT;
        memcpy(out->addrs[i], b + p, n);
        out->addrs[i][n] = 0;
        p += n;
    }
    return p == len ? 0 : LR_ECORRUPT;
}

int st_peerrec_encode(const struct st_peerrec *in, uint8_t buf[ST_PEERREC_MAX])
{
    if (in->naddrs > ST_PEER_MAX_ADDRS)
        return -EINVAL;
    buf[0] = 2;
    buf[1] = in->flags;
    lr_put_le64(buf + 2, in->applied);
    lr_put_le64(buf + 10, in->seen);
    buf[18] = (uint8_t)in->naddrs;
    size_t p = 19;
    for (unsigned i = 0; i < in->naddrs; i++) {
        size_t n = strnlen(in->addrs[i], ST_PEER_ADDR_MAX + 1);
        if (!addr_ok(in->addrs[i], n))
            return -EINVAL;
        buf[p++] = (uint8_t)n;
        memcpy(buf + p, in->addrs[i], n);
        p += n;
    }
    return (int)p;
}
