/* test_net_frame.c - control frame codec and data stream header. */
#include "frame.h"
#include "t.h"

static void test_hello_roundtrip(void)
{
    uint8_t buf[128], vol[NET_VOLUME_LEN];
    net_id id;
    t_fill(id.b, sizeof(id.b), 1);
    t_fill(vol, sizeof(vol), 2);
    size_t n = net_frame_put_hello(buf, &id, vol, NET_PROTO_VERSION);
    T_EQ(n, NET_FRAME_HDR_LEN + NET_HELLO_LEN);
    struct net_frame f;
    size_t used;
    T_OK(net_frame_decode(buf, n, &f, &used));
    T_EQ(used, n);
    T_EQ(f.type, NET_FT_HELLO);
    T_MEM(f.u.hello.id.b, id.b, NET_ID_LEN);
    T_MEM(f.u.hello.volume, vol, NET_VOLUME_LEN);
    T_EQ(f.u.hello.version, NET_PROTO_VERSION);
}

static void test_every_prefix_is_eagain(void)
{
    uint8_t buf[128];
    st_hash h;
    t_fill(h.b, sizeof(h.b), 3);
    size_t n = net_frame_put_chunk(buf, NET_FT_CHUNK_REQ, 77, 0, &h);
    struct net_frame f;
    size_t used;
    for (size_t i = 0; i < n; i++)
        T_ERR(net_frame_decode(buf, i, &f, &used), -EAGAIN);
    T_OK(net_frame_decode(buf, n, &f, &used));
    T_EQ(f.u.chunk.req, 77);
    T_MEM(f.u.chunk.h.b, h.b, ST_HASH_LEN);
}

static void test_stream_of_frames(void)
{
    uint8_t buf[512];
    size_t n = 0;
    st_hash h;
    t_fill(h.b, sizeof(h.b), 4);
    n += net_frame_put_ping(buf + n, NET_FT_PING, 1, 1000);
    n += net_frame_put_chunk(buf + n, NET_FT_CHUNK_NOTFOUND, 9, ENOENT, &h);
    n += net_frame_put_error(buf + n, (uint32_t)-LR_EUNTRUSTED, "nope", 4);
    n += net_frame_put(buf + n, 0x1234, "app!", 4);
    n += net_frame_put_ping(buf + n, NET_FT_PONG, 1, 1000);
    uint16_t want[] = { NET_FT_PING, NET_FT_CHUNK_NOTFOUND, NET_FT_ERROR, 0x1234, NET_FT_PONG };
    size_t off = 0;
    for (size_t i = 0; i < LR_ARRAY_SIZE(want); i++) {
        struct net_frame f;
        size_t used;
        T_OK(net_frame_decode(buf + off, n - off, &f, &used));
        T_EQ(f.type, want[i]);
        if (f.type == NET_FT_ERROR) {
            T_EQ(f.u.error.code, (uint32_t)-LR_EUNTRUSTED);
            T_EQ(f.u.error.msglen, 4);
            T_MEM(f.u.error.msg, "nope", 4);
        }
        if (f.type == 0x1234) {
            T_EQ(f.len, 4);
            T_MEM(f.payload, "app!", 4);
        }
        off += used;
    }
    T_EQ(off, n);
}

static void test_malformed_rejected(void)
{
    uint8_t buf[64];
    struct net_frame f;
    size_t used;
    net_frame_put_ping(buf, NET_FT_PING, 1, 2);
    buf[0] = 2;                                   /* another format version */
    T_ERR(net_frame_decode(buf, 3, &f, &used), LR_EVERSION);
    buf[0] = 1;
    buf[1] = 0x80;                                /* unknown flag */
    T_ERR(net_frame_decode(buf, 2, &f, &used), LR_EPROTO);
    buf[1] = 0;
    lr_put_le16(buf + 2, 0x42);                   /* reserved core type */
    T_ERR(net_frame_decode(buf, 24, &f, &used), LR_EPROTO);
    lr_put_le16(buf + 2, NET_FT_PING);
    lr_put_le32(buf + 4, 15);                     /* ping of the wrong size */
    T_ERR(net_frame_decode(buf, 24, &f, &used), LR_EPROTO);
    lr_put_le16(buf + 2, 0x9000);                 /* oversize application frame */
    lr_put_le32(buf + 4, NET_FRAME_MAX + 1);
    T_ERR(net_frame_decode(buf, 8, &f, &used), LR_EPROTO);
    lr_put_le16(buf + 2, NET_FT_ERROR);           /* error frame without code */
    lr_put_le32(buf + 4, 3);
    T_ERR(net_frame_decode(buf, 11, &f, &used), LR_EPROTO);
    st_hash h = { { 0 } };
    net_frame_put_chunk(buf, NET_FT_CHUNK_REQ, 1, 5, &h); /* unknown request flags */
    T_ERR(net_frame_decode(buf, 48, &f, &used), LR_EPROTO);
    net_frame_put_chunk(buf, NET_FT_CHUNK_REQ, 1, NET_REQ_RELAY | NET_REQ_URGENT, &h); /* the known flags */
    T_OK(net_frame_decode(buf, 48, &f, &used));
    T_EQ(f.u.chunk.code, NET_REQ_RELAY | NET_REQ_URGENT);
}

static void test_data_hdr(void)
{
    uint8_t buf[NET_DATA_HDR_LEN];
    struct net_data_hdr d = { .req = 5, .len = 65536 }, e;
    t_fill(d.h.b, sizeof(d.h.b), 5);
    net_data_hdr_put(buf, &d);
    T_OK(net_data_hdr_decode(buf, &e));
    T_EQ(e.req, 5);
    T_EQ(e.len, 65536);
    T_MEM(e.h.b, d.h.b, ST_HASH_LEN);
    lr_put_le32(buf + 40, NET_CHUNK_MAX + 1);
    T_ERR(net_data_hdr_decode(buf, &e), LR_EPROTO);
    buf[0] = 9;
    T_ERR(net_data_hdr_decode(buf, &e), LR_EVERSION);
}

int main(void)
{
    T_RUN(test_hello_roundtrip);
    T_RUN(test_every_prefix_is_eagain);
    T_RUN(test_stream_of_frames);
    T_RUN(test_malformed_rejected);
    T_RUN(test_data_hdr);
    return t_done();
}
