/* syncmsg.c - decoding synchronization frame payloads (see syncmsg.h). */
#include "syncmsg.h"

#include <string.h>

int st_syncmsg_decode(uint16_t type, const uint8_t *p, size_t len, struct st_syncmsg *out)
{
    memset(out, 0, sizeof(*out));
    out->type = type;
    if (len < 1 || p[0] != 1)
        return LR_EPROTO;
    size_t hdr;
    switch (type) {
    case ST_SYNC_HELLO:
        if (len < 9)
            return LR_EPROTO;
        out->applied = lr_get_le64(p + 1);
        return 0;
    case ST_SYNC_HAVE:
        hdr = 4;
        out->itemlen = 32;
        if (len < hdr || p[1] > 1)
            return LR_EPROTO;
        out->kind = p[1];
        break;
    case ST_SYNC_HOLDQ:
        hdr = 8;
        out->itemlen = 32;
        break;
    case ST_SYNC_HOLDA:
        hdr = 12;
        out->itemlen = 1;
        break;
    case ST_SYNC_REPL:
        hdr = 4;
        out->itemlen = 16;
        break;
    default:
        return LR_EPROTO;
    }
    if (len < hdr || (len - hdr) % out->itemlen || (len - hdr) / out->itemlen > ST_SYNC_MAX_ITEMS)
        return LR_EPROTO;
    out->n = (uint32_t)((len - hdr) / out->itemlen);
    out->items = p + hdr;
    if (type == ST_SYNC_HOLDQ || type == ST_SYNC_HOLDA)
        out->reqid = lr_get_le32(p + 4);
    if (type == ST_SYNC_HOLDA) {
        if (lr_get_le32(p + 8) != out->n)
            return LR_EPROTO;
        for (uint32_t i = 0; i < out->n; i++)
            if (out->items[i] > 2)
                return LR_EPROTO;
    }
    return 0;
}
