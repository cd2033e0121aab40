/* frame.c - control frame and data stream header codec (see frame.h). */
#include "frame.h"

#include <errno.h>
#include <string.h>

static size_t put_hdr(uint8_t *out, uint16_t type, uint32_t len)
{
    out[0] = NET_FRAME_VERSION;
    out[1] = 0;
    lr_put_le16(out + 2, type);
    lr_put_le32(out + 4, len);
    return NET_FRAME_HDR_LEN;
}

size_t net_frame_put(uint8_t *out, uint16_t type, const void *payload, uint32_t len)
{
    put_hdr(out, type, len);
    if (len)
        memcpy(out + NET_FRAME_HDR_LEN, payload, len);
    return NET_FRAME_HDR_LEN + (size_t)len;
}

size_t net_frame_put_hello(uint8_t *out, const net_id *id, const uint8_t volume[NET_VOLUME_LEN],
                           uint16_t version)
{
    uint8_t *p = out + put_hdr(out, NET_FT_HELLO, NET_HELLO_LEN);
    memcpy(p, id->b, NET_ID_LEN);
    memcpy(p + 32, volume, NET_VOLUME_LEN);
    lr_put_le16(p + 48, version);
    lr_put_le16(p + 50, 0);
    lr_put_le32(p + 52, 0);
    return NET_FRAME_HDR_LEN + NET_HELLO_LEN;
}

size_t net_frame_put_ping(uint8_t *out, uint16_t type, uint64_t nonce, uint64_t ts)
{
    uint8_t *p = out + put_hdr(out, type, 16);
    lr_put_le64(p, nonce);
    lr_put_le64(p + 8, ts);
    return NET_FRAME_HDR_LEN + 16;
}

size_t net_frame_put_chunk(uint8_t *out, uint16_t type, uint32_t req, uint32_t code,
                           const st_hash *h)
{
    uint8_t *p = out + put_hdr(out, type, 40);
    lr_put_le32(p, req);
    lr_put_le32(p + 4, code);
    memcpy(p + 8, h->b, ST_HASH_LEN);
    return NET_FRAME_HDR_LEN + 40;
}

size_t net_frame_put_error(uint8_t *out, uint32_t code, const char *msg, size_t msglen)
{
    if (msglen > NET_ERRMSG_MAX)
        msglen = NET_ERRMSG_MAX;
    uint8_t *p = out + put_hdr(out, NET_FT_ERROR, (uint32_t)(4 + msglen));
    lr_put_le32(p, code);
    if (msglen)
        memcpy(p + 4, msg, msglen);
    return NET_FRAME_HDR_LEN + 4 + msglen;
}

int net_frame_decode(const uint8_t *buf, size_t len, struct net_frame *f, size_t *used)
{
    if (len < NET_FRAME_HDR_LEN) {
        /* Reject a bad version or flags as soon as they are visible, so a
         * garbage stream fails at once instead of waiting for more. */
        if (len >= 1 && buf[0] != NET_FRAME_VERSION)
            return LR_EVERSION;
        if (len >= 2 && buf[1] != 0)
            return LR_EPROTO;
        return -EAGAIN;
    }
    if (buf[0] != NET_FRAME_VERSION)
        return LR_EVERSION;
    if (buf[1] != 0)
        return LR_EPROTO;
    uint16_t type = lr_get_le16(buf + 2);
    uint32_t n = lr_get_le32(buf + 4);
    if (n > NET_FRAME_MAX)
        return LR_EPROTO;
    /* Check the size of fixed-size payloads before waiting for them. */
    switch (type) {
    case NET_FT_HELLO: if (n < NET_HELLO_LEN) return LR_EPROTO; break;
    case NET_FT_PING:
    case NET_FT_PONG: if (n != 16) return LR_EPROTO; break;
    case NET_FT_CHUNK_REQ:
    case NET_FT_CHUNK_NOTFOUND: if (n != 40) return LR_EPROTO; break;
    case NET_FT_ERROR: if (n < 4 || n > 4 + NET_ERRMSG_MAX) return LR_EPROTO; break;
    default:
        if (type < NET_FRAME_APP_MIN)
            return LR_EPROTO;
    }
    if (len - NET_FRAME_HDR_LEN < n)
        return -EAGAIN;
    const uint8_t *p = buf + NET_FRAME_HDR_LEN;
    memset(f, 0, sizeof(*f));
    f->type = type;
    f->len = n;
    f->payload = p;
    switch (type) {
    case NET_FT_HELLO:
        memcpy(f->u.hello.id.b, p, NET_ID_LEN);
        memcpy(f->u.hello.volume, p + 32, NET_VOLUME_LEN);
        f->u.hello.version = lr_get_le16(p + 48);
        if (lr_get_le16(p + 50) != 0 || lr_get_le32(p + 52) != 0)
            return LR_EPROTO;
        break;
    case NET_FT_PING:
    case NET_FT_PONG:
        f->u.ping.nonce = lr_get_le64(p);
        f->u.ping.ts = lr_get_le64(p + 8);
        break;
    case NET_FT_CHUNK_REQ:
    case NET_FT_CHUNK_NOTFOUND:
        f->u.chunk.req = lr_get_le32(p);
        f->u.chunk.code = lr_get_le32(p + 4);
        memcpy(f->u.chunk.h.b, p + 8, ST_HASH_LEN);
        if (type == NET_FT_CHUNK_REQ && (f->u.chunk.code & ~NET_REQ_FLAGS) != 0)
            return LR_EPROTO;
        break;
    case NET_FT_ERROR:
        f->u.error.code = lr_get_le32(p);
        f->u.error.msg = (const char *)p + 4;
        f->u.error.msglen = n - 4;
        break;
    }
    *used = NET_FRAME_HDR_LEN + (size_t)n;
    return 0;
}

void net_data_hdr_put(uint8_t out[NET_DATA_HDR_LEN], const struct net_data_hdr *d)
{
    out[0] = 1;
    out[1] = out[2] = out[3] = 0;
    lr_put_le32(out + 4, d->req);
    memcpy(out + 8, d->h.b, ST_HASH_LEN);
    lr_put_le32(out + 40, d->len);
}

int net_data_hdr_decode(const uint8_t in[NET_DATA_HDR_LEN], struct net_data_hdr *d)
{
    if (in[0] != 1)
        return LR_EVERSION;
    if (in[1] || in[2] || in[3])
        return LR_EPROTO;
    d->req = lr_get_le32(in + 4);
    memcpy(d->h.b, in + 8, ST_HASH_LEN);
    d->len = lr_get_le32(in + 40);
    if (d->len > NET_CHUNK_MAX)
        return LR_EPROTO;
    return 0;
}
