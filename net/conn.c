/*
 * conn.c - one QUIC connection: wolfSSL contexts and the trust check,
 * ngtcp2 callbacks, the control stream's frames, chunk responses on
 * unidirectional streams, and the read/write/timer cycle of simpleclient:
 * packet in -> ngtcp2_conn_read_pkt -> write until nothing is left ->
 * re-arm the timer from ngtcp2_conn_get_expiry. Network thread only.
 */
#include <wolfssl/options.h>
#include <wolfssl/ssl.h>
#include <wolfssl/quic.h>

#include <ngtcp2/ngtcp2_crypto_wolfssl.h>

#include <arpa/inet.h>
#include <errno.h>
#include <event2/event.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "net_int.h"

/* ---- send queues -------------------------------------------------------- */

/* A block of len bytes, to be filled and queued with sq_push. */
static struct net_sblock *sq_block(size_t len)
{
    struct net_sblock *blk = malloc(sizeof(*blk) + len);
    if (blk) {
        blk->next = NULL;
        blk->len = len;
    }
    return blk;
}

/* Queue blk (the queue owns it from now on). */
static void sq_push(struct net_sq *sq, struct net_sblock *blk)
{
    if (sq->tail)
        sq->tail->next = blk;
    else {
        sq->head = blk;
        sq->head_off = sq->end;
    }
    sq->tail = blk;
    if (!sq->cur) {
        sq->cur = blk;
        sq->cur_off = sq->end;
    }
    sq->end += blk->len;
}

static int sq_append(struct net_sq *sq, const void *a, size_t alen, const void *b, size_t blen)
{
    struct net_sblock *blk = sq_block(alen + blen);
    if (!blk)
        return -ENOMEM;
    memcpy(blk->data, a, alen);
    if (blen)
        memcpy(blk->data + alen, b, blen);
    sq_push(sq, blk);
    return 0;
}

static int sq_iov(struct net_sq *sq, ngtcp2_vec *v, int max)
{
    int n = 0;
    uint64_t off = sq->cur_off;
    for (struct net_sblock *b = sq->cur; b && n < max; b = b->next) {
        size_t skip = off < sq->sent ? (size_t)(sq->sent - off) : 0;
        if (skip < b->len) {
            v[n].base = b->data + skip;
            v[n].len = b->len - skip;
            n++;
        }
        off += b->len;
    }
    return n;
}

static void sq_sent(struct net_sq *sq, size_t n)
{
    sq->sent += n;
    while (sq->cur && sq->cur_off + sq->cur->len <= sq->sent) {
        sq->cur_off += sq->cur->len;
        sq->cur = sq->cur->next;
    }
}

static void sq_acked(struct net_sq *sq, uint64_t upto)
{
    while (sq->head && sq->head_off + sq->head->len <= upto && sq->head != sq->cur) {
        struct net_sblock *b = sq->head;
        sq->head = b->next;
        sq->head_off += b->len;
        if (sq->tail == b)
            sq->tail = NULL;
        free(b);
    }
}

static void sq_free(struct net_sq *sq)
{
    while (sq->head) {
        struct net_sblock *b = sq->head;
        sq->head = b->next;
        free(b);
    }
    memset(sq, 0, sizeof(*sq));
}

static int sq_pending(const struct net_sq *sq)
{
    return sq->sent < sq->end || (sq->fin && !sq->fin_sent);
}

/* ---- helpers ------------------------------------------------------------ */

uint64_t net_now(void)
{
    return lr_now_mono_ns();
}

void net_fmt_addr(const struct sockaddr *sa, char *out, size_t cap)
{
    char host[INET6_ADDRSTRLEN] = "?";
    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *s = (const void *)sa;
        inet_ntop(AF_INET, &s->sin_addr, host, sizeof(host));
        snprintf(out, cap, "%s:%u", host, ntohs(s->sin_port));
    } else if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *s = (const void *)sa;
        inet_ntop(AF_INET6, &s->sin6_addr, host, sizeof(host));
        snprintf(out, cap, "[%s]:%u", host, ntohs(s->sin6_port));
    } else
        snprintf(out, cap, "?");
}

static void conn_set_name(struct net_conn *c)
{
    char a[64], id[10] = "?";
    net_fmt_addr((struct sockaddr *)&c->remote, a, sizeof(a));
    if (c->peer || c->cert_seen)
        net_id_short(c->peer ? &c->peer->id : &c->cert_id, id);
    snprintf(c->name, sizeof(c->name), "%s@%s", id, a);
}

void net_conn_want_close(struct net_conn *c, uint64_t code, const char *fmt, ...)
{
    if (c->want_close)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->close_reason, sizeof(c->close_reason), fmt, ap);
    va_end(ap);
    c->want_close = 1;
    c->close_code = code;
}

static void conn_kick(struct net_conn *c)
{
    c->dirty = 1;
}

static int send_ctrl(struct net_conn *c, const uint8_t *buf, size_t len)
{
    if (!c->ctrl)
        return -ENOTCONN;
    if (c->ctrl->sq.end - c->ctrl->sq.head_off > NET_MAX_CTRL_BACKLOG) {
        /* the peer stopped reading its control stream */
        net_conn_want_close(c, NET_APPERR_PROTO, "control stream backlog over %u bytes", NET_MAX_CTRL_BACKLOG);
        return -ENOBUFS;
    }
    int rc = sq_append(&c->ctrl->sq, buf, len, NULL, 0);
    if (rc == 0)
        conn_kick(c);
    return rc;
}

static void send_error(struct net_conn *c, int code, const char *msg)
{
    uint8_t buf[NET_FRAME_HDR_LEN + 4 + NET_ERRMSG_MAX];
    size_t n = net_frame_put_error(buf, (uint32_t)-code, msg, strlen(msg));
    send_ctrl(c, buf, n);
}

int net_conn_send_frame(struct net_conn *c, uint16_t type, const void *payload, size_t len)
{
    if (!c->established)
        return -ENOTCONN;
    uint8_t hdr[NET_FRAME_HDR_LEN];
    net_frame_put(hdr, type, NULL, 0);
    lr_put_le32(hdr + 4, (uint32_t)len);
    int rc = sq_append(&c->ctrl->sq, hdr, sizeof(hdr), payload, len);
    if (rc == 0)
        conn_kick(c);
    return rc;
}

int net_conn_send_raw(struct net_conn *c, const void *bytes, size_t len)
{
    return send_ctrl(c, bytes, len);
}

int net_conn_send_req(struct net_conn *c, uint32_t req, const st_hash *h, uint32_t flags)
{
    uint8_t buf[NET_FRAME_HDR_LEN + 40];
    size_t n = net_frame_put_chunk(buf, NET_FT_CHUNK_REQ, req, flags, h);
    return send_ctrl(c, buf, n);
}

void net_conn_ping(struct net_conn *c)
{
    uint8_t buf[NET_FRAME_HDR_LEN + 16];
    uint64_t now = net_now();
    c->ping_nonce++;
    c->ping_sent_ns = now;
    size_t n = net_frame_put_ping(buf, NET_FT_PING, c->ping_nonce, now);
    send_ctrl(c, buf, n);
}

void net_conn_info(struct net_conn *c, uint64_t *srtt_us, uint64_t *rttvar_us, uint64_t *min_rtt_us,
                   uint64_t *cwnd, uint64_t *inflight)
{
    ngtcp2_conn_info ci;
    ngtcp2_conn_get_conn_info(c->q, &ci);
    *srtt_us = ci.smoothed_rtt / 1000;
    *rttvar_us = ci.rttvar / 1000;
    *min_rtt_us = ci.min_rtt == UINT64_MAX ? 0 : ci.min_rtt / 1000;
    *cwnd = ci.cwnd;
    *inflight = ci.bytes_in_flight;
}

/* ---- TLS ---------------------------------------------------------------- */

static ngtcp2_conn *get_conn(ngtcp2_crypto_conn_ref *ref)
{
    struct net_conn *c = ref->user_data;
    return c->q;
}

/* wolfSSL calls this when a peer certificate does not chain to a loaded
 * CA, which is always (landro loads none): trust is the device id, the
 * hash of the certificate's public key, found in the trusted list. The TLS
 * handshake itself proves the peer holds the matching private key. */
static int verify_cb(int preverify, WOLFSSL_X509_STORE_CTX *store)
{
    WOLFSSL *ssl = wolfSSL_X509_STORE_CTX_get_ex_data(store, wolfSSL_get_ex_data_X509_STORE_CTX_idx());
    if (!ssl)
        return 0;
    ngtcp2_crypto_conn_ref *ref = wolfSSL_get_app_data(ssl);
    struct net_conn *c = ref->user_data;
    if (store->error_depth != 0)
        return 1; /* only the leaf's key matters */
    int len = 0;
    const unsigned char *der = store->current_cert ? wolfSSL_X509_get_der(store->current_cert, &len) : NULL;
    net_id id;
    char s[NET_ID_STR_LEN], want[NET_ID_STR_LEN];
    if (!der || len <= 0 || net_id_from_cert(der, (size_t)len, &id) != 0) {
        lr_warn("refusing connection from %s: certificate does not parse", c->name);
        return 0;
    }
    struct net_peer *p = net_node_find_peer(c->node, &id);
    if (c->is_client && c->peer && memcmp(&id, &c->peer->id, sizeof(id)) != 0) {
        lr_warn("refusing %s: it presented device id %s, expected %s", c->name, net_id_format(&id, s),
                net_id_format(&c->peer->id, want));
        return 0;
    }
    if (!p) {
        lr_warn("refusing connection from %s: device id %s is not trusted", c->name,
                net_id_format(&id, s));
        return 0;
    }
    c->cert_id = id;
    c->cert_seen = 1;
    if (!c->peer) {
        c->peer = p; /* an incoming connection now belongs to its peer */
        p->nconns++;
    }
    conn_set_name(c);
    return 1;
}

int net_tls_init(struct net_node *n)
{
    WOLFSSL_CTX *ctx[2] = { wolfSSL_CTX_new(wolfTLSv1_3_server_method()),
                            wolfSSL_CTX_new(wolfTLSv1_3_client_method()) };
    n->sctx = ctx[0];
    n->cctx = ctx[1];
    if (!ctx[0] || !ctx[1])
        return -ENOMEM;
    if (ngtcp2_crypto_wolfssl_configure_server_context(ctx[0]) != 0 ||
        ngtcp2_crypto_wolfssl_configure_client_context(ctx[1]) != 0)
        return LR_ETLS;
    for (int i = 0; i < 2; i++) {
        if (wolfSSL_CTX_use_certificate_buffer(ctx[i], n->ident.cert_der, (long)n->ident.cert_len,
                                               WOLFSSL_FILETYPE_ASN1) != WOLFSSL_SUCCESS ||
            wolfSSL_CTX_use_PrivateKey_buffer(ctx[i], n->ident.key_der, (long)n->ident.key_len,
                                              WOLFSSL_FILETYPE_ASN1) != WOLFSSL_SUCCESS ||
            wolfSSL_CTX_check_private_key(ctx[i]) != WOLFSSL_SUCCESS) {
            lr_error("cannot load device certificate into TLS context");
            return LR_ETLS;
        }
        wolfSSL_CTX_set_verify(ctx[i], WOLFSSL_VERIFY_PEER | WOLFSSL_VERIFY_FAIL_IF_NO_PEER_CERT,
                               verify_cb);
    }
    return 0;
}

void net_tls_release(struct net_node *n)
{
    if (n->sctx)
        wolfSSL_CTX_free(n->sctx);
    if (n->cctx)
        wolfSSL_CTX_free(n->cctx);
    n->sctx = n->cctx = NULL;
}

/* ---- streams ------------------------------------------------------------ */

static struct net_stream *stream_new(int64_t id, int kind)
{
    struct net_stream *s = calloc(1, sizeof(*s));
    if (s) {
        s->id = id;
        s->kind = kind;
    }
    return s;
}

static void stream_free(struct net_node *n, struct net_stream *s)
{
    if (!s)
        return;
    sq_free(&s->sq);
    net_buf_put(n, s->buf, s->dh.len);
    free(s);
}

static void unlink_tx(struct net_conn *c, struct net_stream *s)
{
    for (struct net_stream **pp = s->kind == NET_ST_RX ? &c->rxs : &c->txs; *pp; pp = &(*pp)->next)
        if (*pp == s) {
            *pp = s->next;
            return;
        }
}

static void serve(struct net_conn *c);

/* Put r on c's queue of requests to serve: at the end, or first. */
static void srv_push(struct net_conn *c, struct net_srvreq *r, int first)
{
    if (first) {
        r->next = c->srv_head;
        c->srv_head = r;
        if (!c->srv_tail)
            c->srv_tail = r;
        return;
    }
    r->next = NULL;
    if (c->srv_tail)
        c->srv_tail->next = r;
    else
        c->srv_head = r;
    c->srv_tail = r;
}

/* Take the first request off c's queue (not empty). */
static struct net_srvreq *srv_pop(struct net_conn *c)
{
    struct net_srvreq *r = c->srv_head;
    c->srv_head = r->next;
    if (!c->srv_head)
        c->srv_tail = NULL;
    return r;
}

/* Move c's parked requests that match (h, or any older than 'before')
 * back to the end of its queue, marked woken, and serve. */
static void unpark(struct net_conn *c, const st_hash *h, uint64_t before)
{
    int moved = 0;
    for (struct net_srvreq **pp = &c->parked; *pp;) {
        struct net_srvreq *r = *pp;
        if (h ? memcmp(r->h.b, h->b, ST_HASH_LEN) != 0 : r->parked_ns >= before) {
            pp = &r->next;
            continue;
        }
        *pp = r->next;
        r->woken = 1;
        srv_push(c, r, 0);
        moved = 1;
    }
    if (moved)
        serve(c);
}

void net_conn_unpark(struct net_node *n, const st_hash *h)
{
    for (struct net_conn *c = n->conns; c; c = c->next)
        if (c->parked && !c->want_close)
            unpark(c, h, 0);
}

void net_conn_unpark_old(struct net_node *n, uint64_t now, uint64_t max_ns)
{
    for (struct net_conn *c = n->conns; c; c = c->next)
        if (c->parked && !c->want_close && now > max_ns)
            unpark(c, NULL, now - max_ns);
}

/* Serve queued chunk requests while response slots and stream credit last. */
static void serve(struct net_conn *c)
{
    struct net_node *n = c->node;
    /* Reading a chunk from a cold store can take milliseconds: an idle
     * connection sends its first response before it reads the next one,
     * and a busy one writes after every NET_SERVE_BURST bytes (the first
     * byte of a file used to wait until a whole window of chunks, 64 of
     * them, had been read on the serving side: 30 ms here). A slow store
     * reads for NET_SERVE_SLICE_NS at most between two writes, however
     * many times we are called (one ACK closing many streams calls us for
     * each; at 12 ms a chunk nothing was sent for 300 ms and more). */
    size_t burst = c->serving == 0 ? 1 : NET_SERVE_BURST, staged = 0;
    c->serve_more = 0;
    while (c->srv_head && c->serving < NET_MAX_SERVING && c->serving_bytes < NET_MAX_SERVING_BYTES) {
        uint64_t now = net_now();
        if (!c->stage_since_ns)
            c->stage_since_ns = now;
        if (staged >= burst || now - c->stage_since_ns >= NET_SERVE_SLICE_NS) {
            c->serve_more = 1; /* net_conn_write calls us again */
            conn_kick(c);
            return;
        }
        struct net_srvreq *r = c->srv_head;
        size_t len = 0;
        struct net_sblock *blk = NULL;
        const net_id *from = c->peer ? &c->peer->id : NULL;
        int relay = r->relay && !r->woken;
        /* Ask the length, then copy the chunk straight into the block it
         * is sent (and kept for retransmission) from. */
        int rc = n->cfg.get_chunk ? n->cfg.get_chunk(n->cfg.ctx, from, relay, &r->h, NULL, 0, &len) : -ENOENT;
        if (rc == -EINPROGRESS && relay) {
            /* Being fetched from our peers: park it until net_serve_wake
             * (or until it has waited too long, net_conn_unpark_old). */
            srv_pop(c);
            r->parked_ns = now;
            r->next = c->parked;
            c->parked = r;
            continue;
        }
        if (rc == -EINPROGRESS)
            rc = -ENOENT;
        if (rc == -EFBIG)
            rc = len > NET_CHUNK_MAX ? -EOVERFLOW : 0;
        else if (rc == 0 && len != 0)
            rc = -EPROTO; /* a non-empty chunk in 0 bytes: the callback broke its contract */
        if (rc == 0 && !(blk = sq_block(NET_DATA_HDR_LEN + len)))
            rc = -ENOMEM;
        if (rc == 0 && len) {
            size_t got = 0;
            rc = n->cfg.get_chunk(n->cfg.ctx, from, 0, &r->h, blk->data + NET_DATA_HDR_LEN, len, &got);
            if (rc == 0 && got != len)
                rc = -EPROTO;
        }
        if (rc != 0) {
            free(blk);
            uint8_t buf[NET_FRAME_HDR_LEN + 40];
            size_t fl = net_frame_put_chunk(buf, NET_FT_CHUNK_NOTFOUND, r->req, (uint32_t)-rc, &r->h);
            send_ctrl(c, buf, fl);
        } else {
            int64_t sid;
            int qrc = ngtcp2_conn_open_uni_stream(c->q, &sid, NULL);
            if (qrc == NGTCP2_ERR_STREAM_ID_BLOCKED) {
                free(blk);
                return; /* extend_max_local_streams_uni will call us again */
            }
            if (qrc != 0) {
                free(blk);
                net_conn_want_close(c, NET_APPERR_PROTO, "cannot open data stream: %s", ngtcp2_strerror(qrc));
                return;
            }
            struct net_stream *s = stream_new(sid, NET_ST_TX);
            struct net_data_hdr dh = { .req = r->req, .h = r->h, .len = (uint32_t)len };
            net_data_hdr_put(blk->data, &dh);
            if (!s) {
                free(blk);
                stream_free(c->node, s);
                ngtcp2_conn_shutdown_stream(c->q, 0, sid, NET_APPERR_CANCEL);
                return;
            }
            sq_push(&s->sq, blk);
            s->sq.fin = 1;
            ngtcp2_conn_set_stream_user_data(c->q, sid, s);
            if (c->peer) {
                c->peer->chunks_tx++;
                c->peer->bytes_tx += len;
            }
            /* FIFO: the oldest response goes first, so none starves;
             * one a reader waits for goes before the read-ahead */
            struct net_stream **pp = &c->txs;
            while (*pp && !r->urgent)
                pp = &(*pp)->next;
            s->next = *pp;
            *pp = s;
            c->serving++;
            c->serving_bytes += s->sq.end;
            staged += len ? len : 1;
        }
        free(srv_pop(c));
        c->nsrv--;
        conn_kick(c);
    }
}

static void send_hello(struct net_conn *c)
{
    uint8_t buf[NET_FRAME_HDR_LEN + NET_HELLO_LEN];
    const net_id *me = c->node->cfg.test_claim_id ? c->node->cfg.test_claim_id : &c->node->ident.id;
    size_t n = net_frame_put_hello(buf, me, c->node->cfg.volume, NET_PROTO_VERSION);
    send_ctrl(c, buf, n);
    c->hello_sent = 1;
}

static void on_hello(struct net_conn *c, const struct net_frame *f)
{
    char a[NET_ID_STR_LEN], b[NET_ID_STR_LEN];
    if (c->hello_rx) {
        send_error(c, LR_EPROTO, "second hello");
        net_conn_want_close(c, NET_APPERR_PROTO, "second hello");
        return;
    }
    if (!c->cert_seen || memcmp(&f->u.hello.id, &c->cert_id, sizeof(net_id)) != 0) {
        lr_warn("refusing %s: its hello claims device id %s but its certificate says %s", c->name,
                net_id_format(&f->u.hello.id, a), net_id_format(&c->cert_id, b));
        send_error(c, LR_EUNTRUSTED, "hello device id does not match certificate");
        net_conn_want_close(c, NET_APPERR_REFUSED, "hello id mismatch");
        return;
    }
    if (f->u.hello.version != NET_PROTO_VERSION) {
        lr_warn("refusing %s: protocol version %u, we speak %u", c->name, f->u.hello.version,
                NET_PROTO_VERSION);
        send_error(c, LR_EVERSION, "unsupported protocol version");
        net_conn_want_close(c, NET_APPERR_REFUSED, "protocol version");
        return;
    }
    if (memcmp(f->u.hello.volume, c->node->cfg.volume, NET_VOLUME_LEN) != 0) {
        lr_warn("refusing %s: it serves another volume", c->name);
        send_error(c, LR_EUNTRUSTED, "volume id mismatch");
        net_conn_want_close(c, NET_APPERR_REFUSED, "volume mismatch");
        return;
    }
    c->hello_rx = 1;
    if (!c->hello_sent)
        send_hello(c);
    c->established = 1;
    c->last_pong_ns = net_now();
    net_node_conn_up(c);
}

static void on_frame(struct net_conn *c, const struct net_frame *f)
{
    struct net_node *n = c->node;
    if (!c->hello_rx && f->type != NET_FT_HELLO && f->type != NET_FT_ERROR) {
        send_error(c, LR_EPROTO, "frame before hello");
        net_conn_want_close(c, NET_APPERR_PROTO, "frame type %u before hello", f->type);
        return;
    }
    switch (f->type) {
    case NET_FT_HELLO:
        on_hello(c, f);
        break;
    case NET_FT_PING: {
        uint8_t buf[NET_FRAME_HDR_LEN + 16];
        size_t len = net_frame_put_ping(buf, NET_FT_PONG, f->u.ping.nonce, f->u.ping.ts);
        send_ctrl(c, buf, len);
        break;
    }
    case NET_FT_PONG:
        if (f->u.ping.nonce == c->ping_nonce && f->u.ping.ts == c->ping_sent_ns) {
            uint64_t now = net_now();
            c->last_pong_ns = now;
            net_node_on_pong(c, now - c->ping_sent_ns);
        }
        break;
    case NET_FT_CHUNK_REQ: {
        if (c->nsrv >= NET_MAX_QUEUED_REQS) {
            send_error(c, LR_EPROTO, "too many queued requests");
            net_conn_want_close(c, NET_APPERR_PROTO, "peer queued more than %u requests", NET_MAX_QUEUED_REQS);
            return;
        }
        struct net_srvreq *r = malloc(sizeof(*r));
        if (!r) {
            net_conn_want_close(c, NET_APPERR_PROTO, "out of memory");
            return;
        }
        r->req = f->u.chunk.req;
        r->h = f->u.chunk.h;
        r->relay = (f->u.chunk.code & NET_REQ_RELAY) != 0;
        r->urgent = (f->u.chunk.code & NET_REQ_URGENT) != 0;
        r->woken = 0;
        srv_push(c, r, r->urgent);
        c->nsrv++;
        c->last_req_ns = net_now(); /* the peer uses it: no idle pool connection */
        /* Served after this datagram's frames are read, in net_conn_write:
         * serving here, before the rest of a batch of requests was even
         * read, sent nothing until all of them had been read from the
         * store. */
        c->serve_more = 1;
        conn_kick(c);
        break;
    }
    case NET_FT_CHUNK_NOTFOUND:
        net_node_on_notfound(c, f->u.chunk.req, &f->u.chunk.h);
        break;
    case NET_FT_ERROR: {
        int len = (int)LR_MIN(f->u.error.msglen, 200);
        lr_warn("peer %s reports error %d (%s): %.*s", c->name, -(int)f->u.error.code,
                lr_strerror(-(int)f->u.error.code), len, f->u.error.msg);
        net_conn_want_close(c, NET_APPERR_PROTO, "peer reported an error");
        break;
    }
    default:
        if (n->cfg.on_frame)
            n->cfg.on_frame(n->cfg.ctx, &c->peer->id, f->type, f->payload, f->len);
        else
            lr_debug("ignoring application frame type 0x%x from %s: no handler", f->type, c->name);
    }
}

static int ctrl_recv(struct net_conn *c, const uint8_t *data, size_t len)
{
    if (c->crx_len + len > c->crx_cap) {
        size_t cap = c->crx_cap ? c->crx_cap : 4096;
        while (cap < c->crx_len + len)
            cap *= 2;
        uint8_t *p = realloc(c->crx, cap);
        if (!p)
            return -ENOMEM;
        c->crx = p;
        c->crx_cap = cap;
    }
    memcpy(c->crx + c->crx_len, data, len);
    c->crx_len += len;
    size_t off = 0;
    while (off < c->crx_len && !c->want_close) {
        struct net_frame f;
        size_t used;
        int rc = net_frame_decode(c->crx + off, c->crx_len - off, &f, &used);
        if (rc == -EAGAIN)
            break;
        if (rc != 0) {
            lr_warn("malformed control frame from %s: %s", c->name, lr_strerror(rc));
            net_node_peer_error(c->peer);
            send_error(c, rc, "malformed frame");
            net_conn_want_close(c, NET_APPERR_PROTO, "malformed frame");
            break;
        }
        on_frame(c, &f);
        off += used;
    }
    if (off) {
        memmove(c->crx, c->crx + off, c->crx_len - off);
        c->crx_len -= off;
    }
    return 0;
}

/* Bytes of a chunk response; FIN ends it. */
static void data_recv(struct net_conn *c, struct net_stream *s, uint32_t flags, const uint8_t *data,
                      size_t len)
{
    if (s->hdr_got < NET_DATA_HDR_LEN) {
        size_t k = LR_MIN(len, NET_DATA_HDR_LEN - s->hdr_got);
        memcpy(s->hdr + s->hdr_got, data, k);
        s->hdr_got += k;
        data += k;
        len -= k;
        if (s->hdr_got < NET_DATA_HDR_LEN) {
            if (flags & NGTCP2_STREAM_DATA_FLAG_FIN)
                net_conn_want_close(c, NET_APPERR_PROTO, "truncated data stream header");
            return;
        }
        int rc = net_data_hdr_decode(s->hdr, &s->dh);
        if (rc != 0) {
            lr_warn("malformed data stream header from %s: %s", c->name, lr_strerror(rc));
            net_node_peer_error(c->peer);
            net_conn_want_close(c, NET_APPERR_PROTO, "malformed data stream");
            return;
        }
        for (struct net_fetch *f = c->inflight; f; f = f->cnext)
            if (f->req == s->dh.req) {
                s->fetch = f;
                break;
            }
        if (!s->fetch) {
            /* A late answer to a request that already moved elsewhere. */
            ngtcp2_conn_shutdown_stream_read(c->q, 0, s->id, NET_APPERR_CANCEL);
            return;
        }
        if (memcmp(&s->dh.h, &s->fetch->h, sizeof(st_hash)) != 0) {
            lr_warn("peer %s answered request %u with another chunk", c->name, s->dh.req);
            struct net_fetch *f = s->fetch;
            s->fetch = NULL;
            ngtcp2_conn_shutdown_stream_read(c->q, 0, s->id, NET_APPERR_CANCEL);
            net_node_attempt_failed(f, LR_EHASH);
            return;
        }
        s->buf = net_buf_get(c->node, s->dh.len ? s->dh.len : 1);
        if (!s->buf) {
            struct net_fetch *f = s->fetch;
            s->fetch = NULL;
            ngtcp2_conn_shutdown_stream_read(c->q, 0, s->id, NET_APPERR_CANCEL);
            net_node_attempt_failed(f, -ENOMEM);
            return;
        }
    }
    if (!s->fetch)
        return;
    c->last_data_ns = net_now(); /* the peer is answering: see tick_cb */
    if (len > s->dh.len - s->got) {
        struct net_fetch *f = s->fetch;
        s->fetch = NULL;
        lr_warn("peer %s sent more bytes than announced for request %u", c->name, s->dh.req);
        ngtcp2_conn_shutdown_stream_read(c->q, 0, s->id, NET_APPERR_PROTO);
        net_node_attempt_failed(f, LR_EPROTO);
        return;
    }
    memcpy(s->buf + s->got, data, len);
    s->got += len;
    if (flags & NGTCP2_STREAM_DATA_FLAG_FIN) {
        struct net_fetch *f = s->fetch;
        s->fetch = NULL;
        if (s->got != s->dh.len) {
            lr_warn("peer %s ended request %u after %zu of %u bytes", c->name, s->dh.req, s->got, s->dh.len);
            net_node_attempt_failed(f, LR_EPROTO);
            net_buf_put(c->node, s->buf, s->dh.len);
        } else
            net_node_on_chunk(c, f, s->buf, s->got);
        s->buf = NULL;
    }
}

/* ---- ngtcp2 callbacks ---------------------------------------------------- */

static void rand_cb(uint8_t *dest, size_t len, const ngtcp2_rand_ctx *rctx)
{
    while (len) {
        ssize_t r = getrandom(dest, len, 0);
        if (r <= 0)
            continue;
        dest += r;
        len -= (size_t)r;
    }
}

static int new_cid_cb(ngtcp2_conn *q, ngtcp2_cid *cid, uint8_t *token, size_t cidlen, void *ud)
{
    struct net_conn *c = ud;
    rand_cb(cid->data, cidlen, NULL);
    cid->datalen = cidlen;
    rand_cb(token, NGTCP2_STATELESS_RESET_TOKENLEN, NULL);
    return net_node_cid_add(c->node, cid, c) == 0 ? 0 : NGTCP2_ERR_CALLBACK_FAILURE;
}

static int remove_cid_cb(ngtcp2_conn *q, const ngtcp2_cid *cid, void *ud)
{
    struct net_conn *c = ud;
    net_node_cid_del(c->node, cid);
    return 0;
}

static int handshake_completed_cb(ngtcp2_conn *q, void *ud)
{
    struct net_conn *c = ud;
    const char *proto = NULL;
    unsigned short plen = 0;
    if (wolfSSL_ALPN_GetProtocol(c->ssl, (char **)&proto, &plen) != WOLFSSL_SUCCESS ||
        plen != strlen(NET_ALPN) || memcmp(proto, NET_ALPN, plen) != 0) {
        net_conn_want_close(c, NET_APPERR_REFUSED, "peer did not negotiate ALPN %s", NET_ALPN);
        return 0;
    }
    if (!c->cert_seen) {
        /* The verify callback must have run: landro trusts no CA. */
        net_conn_want_close(c, NET_APPERR_REFUSED, "peer certificate was not checked");
        return 0;
    }
    if (c->is_client) {
        int64_t sid;
        int rc = ngtcp2_conn_open_bidi_stream(q, &sid, NULL);
        if (rc != 0) {
            net_conn_want_close(c, NET_APPERR_PROTO, "cannot open control stream: %s", ngtcp2_strerror(rc));
            return 0;
        }
        c->ctrl = stream_new(sid, NET_ST_CTRL);
        if (!c->ctrl)
            return NGTCP2_ERR_CALLBACK_FAILURE;
        ngtcp2_conn_set_stream_user_data(q, sid, c->ctrl);
        send_hello(c);
    }
    return 0;
}

static int stream_open_cb(ngtcp2_conn *q, int64_t sid, void *ud)
{
    struct net_conn *c = ud;
    if (ngtcp2_is_bidi_stream(sid)) {
        if (c->is_client || c->ctrl) {
            ngtcp2_conn_shutdown_stream(q, 0, sid, NET_APPERR_PROTO);
            return 0;
        }
        c->ctrl = stream_new(sid, NET_ST_CTRL);
        if (!c->ctrl)
            return NGTCP2_ERR_CALLBACK_FAILURE;
        ngtcp2_conn_set_stream_user_data(q, sid, c->ctrl);
        return 0;
    }
    struct net_stream *s = stream_new(sid, NET_ST_RX);
    if (!s)
        return NGTCP2_ERR_CALLBACK_FAILURE;
    s->next = c->rxs;
    c->rxs = s;
    ngtcp2_conn_set_stream_user_data(q, sid, s);
    return 0;
}

static int recv_stream_data_cb(ngtcp2_conn *q, uint32_t flags, int64_t sid, uint64_t offset,
                               const uint8_t *data, size_t len, void *ud, void *sud)
{
    struct net_conn *c = ud;
    struct net_stream *s = sud;
    c->bytes_rx += len;
    if (s && s->kind == NET_ST_CTRL) {
        if (ctrl_recv(c, data, len) != 0)
            return NGTCP2_ERR_CALLBACK_FAILURE;
        if (flags & NGTCP2_STREAM_DATA_FLAG_FIN)
            net_conn_want_close(c, NET_APPERR_PROTO, "control stream closed by peer");
    } else if (s && s->kind == NET_ST_RX)
        data_recv(c, s, flags, data, len);
    ngtcp2_conn_extend_max_stream_offset(q, sid, len);
    ngtcp2_conn_extend_max_offset(q, len);
    return 0;
}

static int acked_cb(ngtcp2_conn *q, int64_t sid, uint64_t offset, uint64_t len, void *ud, void *sud)
{
    struct net_stream *s = sud;
    if (s && s->kind != NET_ST_RX)
        sq_acked(&s->sq, offset + len);
    return 0;
}

static int stream_close_cb(ngtcp2_conn *q, uint32_t flags, int64_t sid, uint64_t err, void *ud, void *sud)
{
    struct net_conn *c = ud;
    struct net_stream *s = sud;
    if (!s)
        return 0;
    if (s->kind == NET_ST_CTRL) {
        net_conn_want_close(c, NET_APPERR_PROTO, "control stream closed");
        c->ctrl = NULL;
    } else if (s->kind == NET_ST_TX) {
        unlink_tx(c, s);
        c->serving--;
        c->serving_bytes -= s->sq.end;
        serve(c);
    } else {
        unlink_tx(c, s);
        /* ngtcp2 leaves the peer's stream limit to us: one closed, one more. */
        ngtcp2_conn_extend_max_streams_uni(q, 1);
        if (s->fetch) {
            struct net_fetch *f = s->fetch;
            s->fetch = NULL;
            net_node_attempt_failed(f, LR_EPROTO);
        }
    }
    stream_free(c->node, s);
    return 0;
}

static int extend_uni_cb(ngtcp2_conn *q, uint64_t max, void *ud)
{
    serve(ud);
    return 0;
}

static void ngtcp2_log(void *ud, const char *fmt, ...)
{
    char buf[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    lr_log(LR_LOG_TRACE, "ngtcp2: %s", buf);
}

static void fill_callbacks(ngtcp2_callbacks *cb, int client)
{
    memset(cb, 0, sizeof(*cb));
    if (client) {
        cb->client_initial = ngtcp2_crypto_client_initial_cb;
        cb->recv_retry = ngtcp2_crypto_recv_retry_cb;
    } else
        cb->recv_client_initial = ngtcp2_crypto_recv_client_initial_cb;
    cb->recv_crypto_data = ngtcp2_crypto_recv_crypto_data_cb;
    cb->encrypt = ngtcp2_crypto_encrypt_cb;
    cb->decrypt = ngtcp2_crypto_decrypt_cb;
    cb->hp_mask = ngtcp2_crypto_hp_mask_cb;
    cb->update_key = ngtcp2_crypto_update_key_cb;
    cb->delete_crypto_aead_ctx = ngtcp2_crypto_delete_crypto_aead_ctx_cb;
    cb->delete_crypto_cipher_ctx = ngtcp2_crypto_delete_crypto_cipher_ctx_cb;
    cb->get_path_challenge_data = ngtcp2_crypto_get_path_challenge_data_cb;
    cb->version_negotiation = ngtcp2_crypto_version_negotiation_cb;
    cb->rand = rand_cb;
    cb->get_new_connection_id = new_cid_cb;
    cb->remove_connection_id = remove_cid_cb;
    cb->handshake_completed = handshake_completed_cb;
    cb->stream_open = stream_open_cb;
    cb->recv_stream_data = recv_stream_data_cb;
    cb->acked_stream_data_offset = acked_cb;
    cb->stream_close = stream_close_cb;
    cb->extend_max_local_streams_uni = extend_uni_cb;
}

/* LAN-sized windows: 16 MiB per connection, 4 MiB per stream (auto-tuned
 * up from 1 MiB). */
static void fill_settings(struct net_conn *c, ngtcp2_settings *st, ngtcp2_transport_params *tp)
{
    ngtcp2_settings_default(st);
    st->initial_ts = net_now();
    if (lr_log_get_level() >= LR_LOG_TRACE)
        st->log_printf = ngtcp2_log;
    st->max_window = 32u << 20;
    st->max_stream_window = 4u << 20;
    st->handshake_timeout = 5 * NGTCP2_SECONDS;
    /* Let PMTUD go past Ethernet sizes on loopback and jumbo-frame LANs.
     * The largest size is a quarter of a GSO batch (NET_GSO_MAX), so four
     * packets leave in one sendmsg. Per-packet costs (AEAD setup, header
     * protection, ACKs) dominate at 1200 bytes: on loopback 1 GiB took
     * 2.4 s with 1200-byte packets, 1.5 s with 16376 (bigger was slower:
     * 32752 2.1 s, 65000 2.0 s, fewer packets per batch). */
    static const uint16_t probes[] = { 1452, 1492, 4096, 8952, NET_PKT_MAX };
    st->max_tx_udp_payload_size = NET_PKT_MAX;
    st->pmtud_probes = probes;
    st->pmtud_probeslen = LR_ARRAY_SIZE(probes);
    ngtcp2_transport_params_default(tp);
    tp->initial_max_stream_data_bidi_local = 1u << 20;
    tp->initial_max_stream_data_bidi_remote = 1u << 20;
    tp->initial_max_stream_data_uni = 1u << 20;
    tp->initial_max_data = 16u << 20;
    tp->initial_max_streams_bidi = c->is_client ? 0 : 1;
    tp->initial_max_streams_uni = 256;
    tp->max_idle_timeout = 10 * NGTCP2_SECONDS;
    tp->active_connection_id_limit = 4;
    /* On a LAN the RTT is far below the default 25 ms ACK delay: a sender
     * limited by a small window would idle waiting for delayed ACKs
     * (measured on loopback: 250 -> 400 MB/s). */
    tp->max_ack_delay = 2 * NGTCP2_MILLISECONDS;
    /* BBR, not CUBIC: measured with 1% loss and 40 ms RTT, CUBIC's window
     * collapsed to ~20 KB (0.2 MB/s, requests timing out) while BBR kept
     * 26-30 MB/s; on loopback BBR was as fast or faster. */
    st->cc_algo = NGTCP2_CC_ALGO_BBR;
}

static struct net_conn *conn_alloc(struct net_node *n, int sock, const struct sockaddr *remote,
                                   socklen_t rlen, int client)
{
    struct net_conn *c = calloc(1, sizeof(*c));
    if (!c)
        return NULL;
    c->node = n;
    c->sock = sock;
    c->is_client = client;
    memcpy(&c->remote, remote, rlen);
    c->rlen = rlen;
    memcpy(&c->local, &n->socks[sock].addr, n->socks[sock].alen);
    c->llen = n->socks[sock].alen;
    c->created_ns = net_now();
    c->ref.get_conn = get_conn;
    c->ref.user_data = c;
    conn_set_name(c);
    return c;
}

static void timer_cb(evutil_socket_t fd, short what, void *arg);

static int conn_tls(struct net_conn *c, int client)
{
    WOLFSSL *ssl = wolfSSL_new(client ? c->node->cctx : c->node->sctx);
    if (!ssl)
        return -ENOMEM;
    c->ssl = ssl;
    wolfSSL_set_app_data(ssl, &c->ref);
    if (client)
        wolfSSL_set_connect_state(ssl);
    else
        wolfSSL_set_accept_state(ssl);
    wolfSSL_set_quic_transport_version(ssl, 0x39);
    if (wolfSSL_UseALPN(ssl, (char *)NET_ALPN, (unsigned)strlen(NET_ALPN),
                        WOLFSSL_ALPN_FAILED_ON_MISMATCH) != WOLFSSL_SUCCESS)
        return LR_ETLS;
    ngtcp2_conn_set_tls_native_handle(c->q, ssl);
    return 0;
}

static void conn_link(struct net_conn *c)
{
    struct net_node *n = c->node;
    c->next = n->conns;
    if (n->conns)
        n->conns->prev = c;
    n->conns = c;
    n->nconns++;
    if (c->peer)
        c->peer->nconns++;
    c->timer = evtimer_new(n->base, timer_cb, c);
}

static void conn_free_raw(struct net_conn *c)
{
    if (c->q)
        ngtcp2_conn_del(c->q);
    if (c->ssl)
        wolfSSL_free(c->ssl);
    free(c);
}

struct net_conn *net_conn_dial(struct net_node *n, struct net_peer *p, unsigned ai)
{
    const struct sockaddr *to = (const struct sockaddr *)&p->addrs[ai];
    socklen_t tolen = p->alen[ai];
    struct sockaddr_in6 mapped;
    int sock = -1;
    for (unsigned i = 0; i < n->nsocks; i++)
        if (n->socks[i].family == to->sa_family) {
            sock = (int)i;
            break;
        }
    if (sock < 0 && to->sa_family == AF_INET) {
        /* A dual-stack IPv6 socket reaches IPv4 peers as ::ffff:a.b.c.d. */
        for (unsigned i = 0; i < n->nsocks && sock < 0; i++)
            if (n->socks[i].family == AF_INET6) {
                const struct sockaddr_in *s4 = (const void *)to;
                memset(&mapped, 0, sizeof(mapped));
                mapped.sin6_family = AF_INET6;
                mapped.sin6_port = s4->sin_port;
                mapped.sin6_addr.s6_addr[10] = mapped.sin6_addr.s6_addr[11] = 0xff;
                memcpy(&mapped.sin6_addr.s6_addr[12], &s4->sin_addr, 4);
                to = (const struct sockaddr *)&mapped;
                tolen = sizeof(mapped);
                sock = (int)i;
            }
    }
    if (sock < 0) {
        char a[64];
        net_fmt_addr(to, a, sizeof(a));
        lr_warn("cannot dial %s: no socket of that address family", a);
        return NULL;
    }
    struct net_conn *c = conn_alloc(n, sock, to, tolen, 1);
    if (!c)
        return NULL;
    c->peer = p;
    conn_set_name(c);
    ngtcp2_cid dcid, scid;
    dcid.datalen = 18;
    rand_cb(dcid.data, dcid.datalen, NULL);
    scid.datalen = NET_SCID_LEN;
    rand_cb(scid.data, scid.datalen, NULL);
    ngtcp2_path path = { { (struct sockaddr *)&c->local, c->llen }, { (struct sockaddr *)&c->remote, c->rlen }, NULL };
    ngtcp2_callbacks cb;
    ngtcp2_settings st;
    ngtcp2_transport_params tp;
    fill_callbacks(&cb, 1);
    fill_settings(c, &st, &tp);
    int rc = ngtcp2_conn_client_new(&c->q, &dcid, &scid, &path, NGTCP2_PROTO_VER_V1, &cb, &st, &tp, NULL, c);
    if (rc != 0 || conn_tls(c, 1) != 0 || net_node_cid_add(n, &scid, c) != 0) {
        lr_error("cannot create connection to %s: %s", c->name, rc ? ngtcp2_strerror(rc) : "tls setup");
        net_node_cid_del(n, &scid);
        conn_free_raw(c);
        return NULL;
    }
    conn_link(c);
    lr_debug("dialling %s", c->name);
    conn_kick(c);
    return c;
}

struct net_conn *net_conn_accept(struct net_node *n, int sock, const struct sockaddr *from,
                                 socklen_t fromlen, const uint8_t *pkt, size_t len)
{
    ngtcp2_pkt_hd hd;
    if (ngtcp2_accept(&hd, pkt, len) != 0)
        return NULL;
    struct net_conn *c = conn_alloc(n, sock, from, fromlen, 0);
    if (!c)
        return NULL;
    ngtcp2_cid scid;
    scid.datalen = NET_SCID_LEN;
    rand_cb(scid.data, scid.datalen, NULL);
    ngtcp2_path path = { { (struct sockaddr *)&c->local, c->llen }, { (struct sockaddr *)&c->remote, c->rlen }, NULL };
    ngtcp2_callbacks cb;
    ngtcp2_settings st;
    ngtcp2_transport_params tp;
    fill_callbacks(&cb, 0);
    fill_settings(c, &st, &tp);
    st.token = hd.token;
    st.tokenlen = hd.tokenlen;
    tp.original_dcid = hd.dcid;
    tp.original_dcid_present = 1;
    int rc = ngtcp2_conn_server_new(&c->q, &hd.scid, &scid, &path, hd.version, &cb, &st, &tp, NULL, c);
    if (rc != 0 || conn_tls(c, 0) != 0 || net_node_cid_add(n, &scid, c) != 0 ||
        net_node_cid_add(n, &hd.dcid, c) != 0) {
        lr_error("cannot accept connection from %s: %s", c->name, rc ? ngtcp2_strerror(rc) : "tls setup");
        net_node_cid_del(n, &scid);
        net_node_cid_del(n, &hd.dcid);
        conn_free_raw(c);
        return NULL;
    }
    conn_link(c);
    lr_debug("accepted connection from %s", c->name);
    return c;
}

/* Describe why the peer closed (or why ngtcp2 gave up). */
static void describe_remote_close(struct net_conn *c, char *out, size_t cap)
{
    const ngtcp2_ccerr *e = ngtcp2_conn_get_ccerr(c->q);
    int rl = (int)LR_MIN(e->reasonlen, 100);
    if (e->type == NGTCP2_CCERR_TYPE_TRANSPORT && e->error_code >= 0x100 && e->error_code < 0x200)
        snprintf(out, cap, "TLS alert %u%s", (unsigned)(e->error_code - 0x100),
                 e->error_code - 0x100 == 42 || e->error_code - 0x100 == 48 ||
                         e->error_code - 0x100 == 116
                     ? " (our certificate was refused)"
                     : "");
    else if (e->type == NGTCP2_CCERR_TYPE_APPLICATION)
        snprintf(out, cap, "application error %llu%s%.*s", (unsigned long long)e->error_code,
                 rl ? ": " : "", rl, e->reason ? (const char *)e->reason : "");
    else
        snprintf(out, cap, "transport error 0x%llx%s%.*s", (unsigned long long)e->error_code,
                 rl ? ": " : "", rl, e->reason ? (const char *)e->reason : "");
}

/* Remember on c's peer why its connection failed or ended, for status. */
static void conn_note_error(struct net_conn *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void conn_note_error(struct net_conn *c, const char *fmt, ...)
{
    if (!c->peer)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->peer->last_error, sizeof(c->peer->last_error), fmt, ap);
    va_end(ap);
    c->peer->last_error_ns = net_now();
}

void net_conn_read(struct net_conn *c, const uint8_t *pkt, size_t len)
{
    if (c->want_close || c->closed)
        return;
    ngtcp2_path path = { { (struct sockaddr *)&c->local, c->llen }, { (struct sockaddr *)&c->remote, c->rlen }, NULL };
    ngtcp2_pkt_info pi = { 0 };
    int rc = ngtcp2_conn_read_pkt(c->q, &path, &pi, pkt, len, net_now());
    if (rc == 0) {
        conn_kick(c);
        return;
    }
    char why[160];
    if (rc == NGTCP2_ERR_DRAINING) {
        describe_remote_close(c, why, sizeof(why));
        if (!c->established) {
            lr_warn("connection %s %s refused by peer: %s", c->is_client ? "to" : "from", c->name, why);
            conn_note_error(c, "refused by peer: %s", why);
        } else {
            lr_info("peer %s closed the connection: %s", c->name, why);
        }
        c->closed = 1; /* draining: send nothing more */
        net_conn_want_close(c, 0, "closed by peer");
        return;
    }
    if (rc == NGTCP2_ERR_DROP_CONN) {
        c->closed = 1;
        net_conn_want_close(c, 0, "dropped");
        return;
    }
    if (rc == NGTCP2_ERR_CRYPTO) {
        uint8_t alert = ngtcp2_conn_get_tls_alert(c->q);
        lr_warn("TLS handshake with %s failed (alert %u)", c->name, alert);
    }
    net_conn_want_close(c, (uint64_t)rc | (1ull << 63), "%s", ngtcp2_strerror(rc));
}

static void conn_rearm(struct net_conn *c)
{
    ngtcp2_tstamp exp = ngtcp2_conn_get_expiry(c->q), now = net_now();
    if (exp == UINT64_MAX) {
        evtimer_del(c->timer);
        return;
    }
    uint64_t d = exp > now ? exp - now : 0;
    struct timeval tv = { (time_t)(d / 1000000000ull), (suseconds_t)((d % 1000000000ull) / 1000) };
    evtimer_add(c->timer, &tv);
}

static void timer_cb(evutil_socket_t fd, short what, void *arg)
{
    struct net_conn *c = arg;
    int rc = ngtcp2_conn_handle_expiry(c->q, net_now());
    if (rc == NGTCP2_ERR_IDLE_CLOSE) {
        lr_info("connection to %s timed out (idle)", c->name);
        c->closed = 1;
        net_conn_want_close(c, 0, "idle timeout");
    } else if (rc == NGTCP2_ERR_HANDSHAKE_TIMEOUT) {
        lr_info("handshake with %s timed out", c->name);
        c->closed = 1;
        net_conn_want_close(c, 0, "handshake timeout");
    } else if (rc != 0)
        net_conn_want_close(c, (uint64_t)rc | (1ull << 63), "%s", ngtcp2_strerror(rc));
    conn_kick(c);
    net_node_flush(c->node);
}

/* Next stream with bytes (or a FIN) to send, control first. */
static struct net_stream *next_stream(struct net_conn *c)
{
    if (c->ctrl && !c->ctrl->blocked && sq_pending(&c->ctrl->sq))
        return c->ctrl;
    for (struct net_stream *s = c->txs; s; s = s->next)
        if (!s->blocked && sq_pending(&s->sq))
            return s;
    return NULL;
}

void net_conn_write(struct net_conn *c)
{
    struct net_node *n = c->node;
    if (c->want_close || c->closed)
        return;
    ngtcp2_path_storage ps;
    ngtcp2_path_storage_zero(&ps);
    ngtcp2_pkt_info pi;
    uint64_t ts = net_now();
    /* Packets are maxpkt bytes (what PMTUD has confirmed for the path);
     * PMTUD probes are bigger, up to maxtx, and ngtcp2 writes one only if
     * the buffer it is given can hold it. */
    size_t maxpkt = ngtcp2_conn_get_path_max_tx_udp_payload_size(c->q);
    size_t maxtx = ngtcp2_conn_get_max_tx_udp_payload_size(c->q);
    size_t quantum = ngtcp2_conn_get_send_quantum(c->q);
    if (quantum > NET_TXBUF)
        quantum = NET_TXBUF;
    size_t off = 0, seg = 0;
    unsigned nseg = 0;
    for (struct net_stream *s = c->txs; s; s = s->next)
        s->blocked = 0;
    if (c->ctrl)
        c->ctrl->blocked = 0;
    for (;;) {
        if (off + maxpkt > NET_GSO_MAX || nseg >= 64 || (off >= quantum && off)) {
            net_node_send_batch(n, c, n->txbuf, off, seg);
            off = 0;
            seg = 0;
            nseg = 0;
            break; /* the pacer decides when to go on (timer) */
        }
        struct net_stream *s = next_stream(c);
        ngtcp2_vec v[16];
        int nv = 0;
        uint32_t flags = 0;
        int64_t sid = -1;
        if (s) {
            sid = s->id;
            nv = sq_iov(&s->sq, v, 16);
            flags = NGTCP2_WRITE_STREAM_FLAG_MORE;
            if (s->sq.fin) {
                size_t tot = 0;
                for (int i = 0; i < nv; i++)
                    tot += v[i].len;
                if (s->sq.sent + tot == s->sq.end)
                    flags |= NGTCP2_WRITE_STREAM_FLAG_FIN;
            }
        }
        ngtcp2_ssize ndata = -1;
        ngtcp2_ssize nw = ngtcp2_conn_writev_stream(c->q, &ps.path, &pi, n->txbuf + off,
                                                    LR_MIN(maxtx, NET_TXBUF - off), &ndata,
                                                    flags, sid, v, (size_t)nv, ts);
        if (s && ndata >= 0) {
            sq_sent(&s->sq, (size_t)ndata);
            if ((flags & NGTCP2_WRITE_STREAM_FLAG_FIN) && s->sq.sent == s->sq.end)
                s->sq.fin_sent = 1;
        }
        if (nw < 0) {
            if (nw == NGTCP2_ERR_WRITE_MORE)
                continue;
            if (nw == NGTCP2_ERR_STREAM_DATA_BLOCKED || nw == NGTCP2_ERR_STREAM_SHUT_WR ||
                nw == NGTCP2_ERR_STREAM_NOT_FOUND) {
                if (s)
                    s->blocked = 1;
                continue;
            }
            net_conn_want_close(c, (uint64_t)nw | (1ull << 63), "write: %s", ngtcp2_strerror((int)nw));
            break;
        }
        if (nw == 0) {
            if (s && ndata < 0) {
                /* Nothing fit (congestion): stop asking for this round. */
            }
            break;
        }
        if ((size_t)nw > maxpkt) {
            /* A PMTUD probe goes out alone: where the path cannot carry
             * it (EMSGSIZE, or a drop), packets batched with it would be
             * lost with it. */
            if (off)
                net_node_send_batch(n, c, n->txbuf, off, seg);
            net_node_send_batch(n, c, n->txbuf + off, (size_t)nw, (size_t)nw);
            off = 0;
            seg = 0;
            nseg = 0;
            continue;
        }
        if (nseg > 0 && (size_t)nw > seg) {
            /* A bigger packet cannot join the batch: send what we have. */
            net_node_send_batch(n, c, n->txbuf, off, seg);
            memmove(n->txbuf, n->txbuf + off, (size_t)nw);
            off = 0;
            nseg = 0;
        }
        if (nseg == 0)
            seg = (size_t)nw;
        off += (size_t)nw;
        nseg++;
        if ((size_t)nw < seg) {
            /* A short packet ends a GSO batch. */
            net_node_send_batch(n, c, n->txbuf, off, seg);
            off = 0;
            seg = 0;
            nseg = 0;
        }
    }
    if (off)
        net_node_send_batch(n, c, n->txbuf, off, seg);
    ngtcp2_conn_update_pkt_tx_time(c->q, ts);
    conn_rearm(c);
    /* What serve() staged went out: stage the next burst (written in the
     * flush's next round, or by the pacer's timer). */
    c->stage_since_ns = 0;
    if (c->serve_more && !c->want_close)
        serve(c);
}

void net_conn_close(struct net_conn *c)
{
    struct net_node *n = c->node;
    if (!c->closed && c->q && !ngtcp2_conn_in_closing_period(c->q) &&
        !ngtcp2_conn_in_draining_period(c->q)) {
        ngtcp2_ccerr ce;
        ngtcp2_ccerr_default(&ce);
        if (c->close_code & (1ull << 63))
            ngtcp2_ccerr_set_liberr(&ce, (int)(int64_t)c->close_code, NULL, 0);
        else if (c->close_code == 0 && !c->established)
            ngtcp2_ccerr_set_application_error(&ce, NET_APPERR_SHUTDOWN, NULL, 0);
        else
            ngtcp2_ccerr_set_application_error(&ce, c->close_code ? c->close_code : NET_APPERR_SHUTDOWN,
                                               (const uint8_t *)c->close_reason, strlen(c->close_reason));
        if (ngtcp2_conn_get_tls_alert(c->q))
            ngtcp2_ccerr_set_tls_alert(&ce, ngtcp2_conn_get_tls_alert(c->q), NULL, 0);
        ngtcp2_path_storage ps;
        ngtcp2_path_storage_zero(&ps);
        ngtcp2_pkt_info pi;
        ngtcp2_ssize nw = ngtcp2_conn_write_connection_close(c->q, &ps.path, &pi, n->txbuf, NET_TXBUF,
                                                             &ce, net_now());
        if (nw > 0)
            net_node_send_batch(n, c, n->txbuf, (size_t)nw, (size_t)nw);
    }
    if (c->close_reason[0] && strcmp(c->close_reason, "closed by peer") != 0 &&
        strcmp(c->close_reason, "shutdown") != 0) {
        lr_info("closing connection %s: %s", c->name, c->close_reason);
        conn_note_error(c, "%s", c->close_reason);
    }
    /* unlink */
    if (c->prev)
        c->prev->next = c->next;
    else
        n->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    n->nconns--;
    if (n->last_hit == c)
        n->last_hit = NULL;
    for (unsigned i = 0; i < n->ncids;) {
        if (n->cids[i].c == c)
            n->cids[i] = n->cids[--n->ncids];
        else
            i++;
    }
    if (c->timer)
        event_free(c->timer);
    /* Streams: ngtcp2_conn_del does not call stream_close, free ours. */
    while (c->txs) {
        struct net_stream *s = c->txs;
        c->txs = s->next;
        stream_free(c->node, s);
    }
    while (c->rxs) {
        struct net_stream *s = c->rxs;
        c->rxs = s->next;
        stream_free(c->node, s);
    }
    stream_free(c->node, c->ctrl);
    c->ctrl = NULL;
    while (c->srv_head) {
        struct net_srvreq *r = c->srv_head;
        c->srv_head = r->next;
        free(r);
    }
    while (c->parked) {
        struct net_srvreq *r = c->parked;
        c->parked = r->next;
        free(r);
    }
    free(c->crx);
    c->crx = NULL;
    net_node_conn_gone(c);
    conn_free_raw(c);
}
