/*
 * net_int.h - private declarations shared by net/node.c (thread, socket,
 * queue, peers, pool, fetch) and net/conn.c (one QUIC connection: TLS,
 * streams, frames). Everything here runs on the network thread only.
 */
#ifndef NET_INT_H
#define NET_INT_H

#include <netinet/in.h>
#include <pthread.h>
#include <stdint.h>
#include <sys/socket.h>

#include <event2/event.h>
#include <ngtcp2/ngtcp2.h>
#include <ngtcp2/ngtcp2_crypto.h>

#include "frame.h"
#include "health.h"
#include "net.h"

#define NET_SCID_LEN 16
#define NET_MAX_SOCKS NET_MAX_LISTEN
#define NET_MAX_SERVING 64        /* chunk responses being sent per connection */
#define NET_MAX_QUEUED_REQS 4096  /* requests waiting for a response slot */
#define NET_MAX_SERVING_BYTES (16u << 20) /* response bytes held until acked, per connection */
#define NET_SERVE_BURST (256u << 10) /* response bytes staged between two writes */
#define NET_SERVE_SLICE_NS 5000000ull /* store reading time between two writes */
#define NET_URGENT_EXTRA 16       /* urgent requests allowed past max_inflight */
#define NET_FETCH_LIVE_MAX 12     /* a fetch whose connection keeps delivering ends by this many timeouts */
#define NET_MAX_CTRL_BACKLOG (8u << 20)   /* control bytes queued, unacked, per connection */
#define NET_TXBUF 65536           /* packet buffer */
#define NET_RXBUF 65536           /* one received datagram (or GRO batch) */
/* One GSO batch. The kernel segments in software any GSO packet whose
 * length with its Ethernet, IP and UDP headers reaches the device's
 * gso_max_size (64 KiB), and the receiver then gets the datagrams one by
 * one instead of as one GRO batch: 65472 + 14 + 40 + 8 < 65536. */
#define NET_GSO_MAX 65472
#define NET_PKT_MAX 16368         /* largest QUIC packet (PMTUD's last probe): NET_GSO_MAX / 4 */
#define NET_VERIFY_MAX 32         /* chunks waiting for or in verification, per node */
#define NET_VERIFY_THREADS_MAX 8
#define NET_BUF_CLASS (64u << 10)  /* chunk buffers are pooled in multiples of this */
#define NET_BUF_CLASSES 4          /* ... up to 256 KiB (the store's largest chunk) */
#define NET_BUF_KEEP 8             /* free buffers kept per size */
#define NET_APPERR_PROTO 1        /* QUIC application error codes */
#define NET_APPERR_REFUSED 2
#define NET_APPERR_SHUTDOWN 3
#define NET_APPERR_CANCEL 4

struct net_node;
struct net_conn;
struct net_peer;
struct net_fetch;

/* Data handed to ngtcp2 must stay put until acknowledged: a stream's send
 * queue is a list of immutable blocks, freed once acked. */
struct net_sblock {
    struct net_sblock *next;
    size_t len;
    uint8_t data[];
};

struct net_sq {
    struct net_sblock *head, *tail, *cur;
    uint64_t head_off;   /* stream offset of head->data[0] */
    uint64_t cur_off;    /* stream offset of cur->data[0] */
    uint64_t sent;       /* next offset to hand to ngtcp2 */
    uint64_t end;        /* offset after the last queued byte */
    int fin, fin_sent;
};

enum { NET_ST_CTRL = 1, NET_ST_TX, NET_ST_RX };

struct net_stream {
    int64_t id;
    int kind;
    struct net_stream *next;      /* conn's tx list (CTRL and TX) */
    struct net_sq sq;
    int blocked;                  /* flow-control blocked in this write round */
    /* RX (a chunk response from the peer) */
    uint8_t hdr[NET_DATA_HDR_LEN];
    size_t hdr_got;
    struct net_data_hdr dh;
    struct net_fetch *fetch;      /* NULL: ignored (late or unknown) */
    uint8_t *buf;
    size_t got;
};

struct net_srvreq {
    struct net_srvreq *next;
    uint32_t req;
    st_hash h;
    uint8_t relay;                /* the asker lets us fetch it from our peers (NET_REQ_RELAY) */
    uint8_t urgent;               /* a reader waits for it (NET_REQ_URGENT): goes first */
    uint8_t woken;                /* was parked: answer now, whatever get_chunk says */
    uint64_t parked_ns;
};

struct net_conn {
    struct net_node *node;
    struct net_conn *next, *prev;
    struct net_peer *peer;        /* client: the peer dialled; server: set by verify */
    ngtcp2_conn *q;
    void *ssl;                    /* WOLFSSL * */
    ngtcp2_crypto_conn_ref ref;
    int is_client;
    int sock;                     /* index into node->socks */
    struct sockaddr_storage local, remote;
    socklen_t llen, rlen;
    struct event *timer;
    net_id cert_id;
    int cert_seen;                /* verify callback saw and accepted the cert */
    int hello_sent, hello_rx, established;
    int dirty, want_close, closed;
    uint64_t close_code;          /* application error code for want_close */
    char close_reason[128];
    struct net_stream *ctrl;
    struct net_stream *txs;       /* data streams being sent */
    struct net_stream *rxs;       /* data streams being received */
    unsigned serving;
    size_t serving_bytes;
    struct net_srvreq *srv_head, *srv_tail;
    unsigned nsrv;                /* queued and parked */
    struct net_srvreq *parked;    /* get_chunk said -EINPROGRESS: wait for net_serve_wake */
    int serve_more;               /* serve() stopped at its burst: go on after the next write */
    uint64_t stage_since_ns;      /* serve() began reading chunks, 0: nothing read since the last write */
    uint8_t *crx;                 /* control stream receive buffer */
    size_t crx_len, crx_cap;
    struct net_fetch *inflight;   /* requests sent on this connection */
    unsigned ninflight;
    uint64_t created_ns, last_pong_ns, ping_sent_ns, ping_nonce;
    uint64_t last_req_ns;         /* last chunk request sent on it or received from the peer */
    uint64_t bytes_rx;
    uint64_t last_data_ns;        /* last bytes of an awaited chunk response arrived */
    char name[80];                /* "ABCD-EFGH@addr" for logs */
};

struct net_peer {
    struct net_peer *next;
    net_id id;
    struct sockaddr_storage addrs[NET_MAX_ADDRS];
    socklen_t alen[NET_MAX_ADDRS];
    unsigned naddrs, next_addr;
    unsigned fails;               /* failed dials in a row */
    uint64_t next_dial_ns;
    unsigned nconns, nestab;      /* connections, established ones */
    uint64_t down_since_ns;       /* when nestab last became 0 (or the peer was added) */
    struct net_health health;
    uint64_t ping_rtt_us;         /* EWMA */
    uint64_t last_pong_ns;
    unsigned consec_fail;
    unsigned win_fail[2], win_ok[2];
    uint64_t win_start_ns;
    uint64_t chunks_ok, bytes_rx, timeouts, errors, dials;
    uint64_t chunks_tx, bytes_tx;  /* chunks served to it */
    uint64_t rate_ns, rate_rx, rate_tx; /* counters at the last rate sample */
    uint64_t rx_bps, tx_bps;      /* smoothed rates, bytes per second */
    unsigned inflight;
    char last_error[96];          /* why the last connection failed or ended, for status */
    uint64_t last_error_ns;
};

struct net_fetch {
    struct net_fetch *next, *prev;       /* node->fetches */
    struct net_fetch *cnext;             /* conn->inflight */
    st_hash h;
    net_id *peers;
    unsigned npeers;
    net_id *tried;
    unsigned ntried, tried_cap;
    uint64_t deadline_ns;                /* gives up: timeout_ms, later while its connection delivers */
    uint64_t cap_ns;                     /* ... but never after this (NET_FETCH_LIVE_MAX) */
    uint64_t quiet_ns;                   /* past deadline_ns: ends once its connection is quiet this long */
    uint64_t attempt_deadline_ns;
    uint64_t idle_since_ns;              /* waiting with no connected candidate */
    net_fetch_cb cb;
    void *ctx;
    struct net_conn *conn;               /* current attempt */
    struct net_peer *peer;
    uint32_t req;
    unsigned nnotfound, nhash, ntimeout, nlost;
    unsigned direct;                     /* NET_FETCH_DIRECT: no relay round */
    unsigned relay_round;                /* asking again with NET_REQ_RELAY */
    unsigned urgent;                     /* NET_FETCH_URGENT */
};

struct net_cmd;
struct net_vjob;

struct net_sock {
    struct net_node *node;
    int fd;
    int family;
    struct sockaddr_storage addr;
    socklen_t alen;
    struct event *ev;
};

/* A datagram held back by the test_delay_ms seam. */
struct net_delayed {
    struct net_delayed *next;
    uint64_t due_ns;
    int fd;
    struct sockaddr_storage to;
    socklen_t tolen;
    size_t len;
    uint8_t data[];
};

struct net_node {
    struct net_config cfg;
    struct net_identity ident;
    void *sctx, *cctx;                   /* WOLFSSL_CTX * server / client */
    struct event_base *base;
    struct net_sock socks[NET_MAX_SOCKS];
    unsigned nsocks;
    int gso, gro;
    int efd;
    struct event *wake_ev, *tick_ev;
    pthread_t thread;
    int started, stopped;
    pthread_mutex_t lock;                /* guards cmds, stats, stopping */
    struct net_cmd *cmd_head, *cmd_tail;
    int stopping;
    struct net_peer_stats *stats;
    unsigned nstats;
    /* network thread only */
    struct net_peer *peers;
    struct net_conn *conns;
    unsigned nconns;
    struct net_fetch *fetches;
    uint32_t next_req;
    uint8_t *txbuf;
    uint8_t *rxbuf;
    struct { ngtcp2_cid cid; struct net_conn *c; } *cids;
    unsigned ncids, cids_cap;
    struct net_conn *last_hit;
    uint64_t last_tick_ns, last_stats_ns;
    struct net_delayed *delay_head, *delay_tail;
    struct event *delay_ev;
    /* chunk verifiers (verify.c) */
    pthread_t vthreads[NET_VERIFY_THREADS_MAX];
    unsigned nverifiers;
    pthread_mutex_t vlock;               /* guards vhead, vtail, vbusy, vstop */
    pthread_cond_t vcv;
    struct net_vjob *vhead, *vtail;      /* waiting for a verifier */
    unsigned vbusy;                      /* handed over and not yet verified */
    int vstop;
    struct net_vjob *vdone;              /* outcomes for the network thread (lock) */
    void *bufs[NET_BUF_CLASSES][NET_BUF_KEEP]; /* free chunk buffers (vlock) */
    unsigned nbufs[NET_BUF_CLASSES];
};

/* node.c services for conn.c */
int net_node_cid_add(struct net_node *n, const ngtcp2_cid *cid, struct net_conn *c);
void net_node_cid_del(struct net_node *n, const ngtcp2_cid *cid);
struct net_peer *net_node_find_peer(struct net_node *n, const net_id *id);
void net_node_conn_up(struct net_conn *c);
void net_node_on_notfound(struct net_conn *c, uint32_t req, const st_hash *h);
void net_node_on_pong(struct net_conn *c, uint64_t rtt_ns);
/* The peer misbehaved (malformed frame...): count it against its health. */
void net_node_peer_error(struct net_peer *p);
/* Fault seam for tests: queue raw bytes on the control stream to peer,
 * bypassing the frame encoder. */
int net_test_send_raw(struct net_node *n, const net_id *peer, const void *bytes, size_t len);
/* A data stream finished: verify the chunk (here or on a verifier) and
 * complete or fail the fetch behind it. Takes ownership of buf (malloc). */
void net_node_on_chunk(struct net_conn *c, struct net_fetch *f, uint8_t *buf, size_t len);
void net_node_attempt_failed(struct net_fetch *f, int why);
void net_node_send_batch(struct net_node *n, struct net_conn *c, const uint8_t *buf, size_t len,
                         size_t seg);
uint64_t net_now(void);
void net_node_flush(struct net_node *n);
void net_node_conn_gone(struct net_conn *c);
void net_peer_fail(struct net_peer *p, int timeout);

/* udp.c */
int net_sock_open(struct net_node *n, const char *spec);
void net_read_cb(evutil_socket_t fd, short what, void *arg);
void net_delay_cb(evutil_socket_t fd, short what, void *arg);

/* fetch.c */
void net_fetch_add(struct net_node *n, struct net_fetch *f);
void net_fetch_dispatch(struct net_node *n, struct net_fetch *f);
void net_fetch_dispatch_waiting(struct net_node *n);
void net_fetch_detach(struct net_fetch *f);
void net_fetch_mark_tried(struct net_fetch *f, struct net_peer *p);
void net_fetch_mark_tried_id(struct net_fetch *f, const net_id *id);
void net_fetch_unlink(struct net_node *n, struct net_fetch *f);
void net_fetch_finish(struct net_node *n, struct net_fetch *f, int err, const uint8_t *data, size_t len,
                      const net_id *from);

/* verify.c */
int net_verify_start(struct net_node *n);
void net_verify_stop(struct net_node *n);
/* 1 if a verifier can take one more chunk now (network thread). */
int net_verify_room(struct net_node *n);
/* Take f off every list and hand it and buf to a verifier; -ENOMEM
 * leaves both to the caller, untouched. */
int net_verify_submit(struct net_node *n, struct net_fetch *f, const net_id *from, uint8_t *buf,
                      size_t len);
void net_verify_drain(struct net_node *n);
int net_on_verifier_thread(void);
/* A buffer for a chunk of len bytes, recycled when it can be: chunk
 * buffers are allocated on the network thread and freed on verifiers,
 * and with plain malloc/free every one came back as fresh pages (page
 * faults were 15% of the receiving network thread). Any thread. */
uint8_t *net_buf_get(struct net_node *n, size_t len);
/* Give back a buffer from net_buf_get(n, len) (NULL is a no-op). */
void net_buf_put(struct net_node *n, uint8_t *buf, size_t len);
void net_buf_release_all(struct net_node *n);

/* conn.c */
int net_tls_init(struct net_node *n);
void net_tls_release(struct net_node *n);
struct net_conn *net_conn_dial(struct net_node *n, struct net_peer *p, unsigned ai);
struct net_conn *net_conn_accept(struct net_node *n, int sock, const struct sockaddr *from,
                                 socklen_t fromlen, const uint8_t *pkt, size_t len);
/* Feed one datagram. Errors mark the connection want_close. */
void net_conn_read(struct net_conn *c, const uint8_t *pkt, size_t len);
/* Write until ngtcp2 has nothing more (or the pacer says wait), re-arm the timer. */
void net_conn_write(struct net_conn *c);
/* Send CONNECTION_CLOSE (unless the peer already closed) and free c. */
void net_conn_close(struct net_conn *c);
void net_conn_want_close(struct net_conn *c, uint64_t code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* flags: NET_REQ_* */
int net_conn_send_req(struct net_conn *c, uint32_t req, const st_hash *h, uint32_t flags);
/* Answer the parked requests for h on every connection (net_serve_wake). */
void net_conn_unpark(struct net_node *n, const st_hash *h);
/* Answer parked requests older than max_ns (their relay took too long). */
void net_conn_unpark_old(struct net_node *n, uint64_t now, uint64_t max_ns);
int net_conn_send_frame(struct net_conn *c, uint16_t type, const void *payload, size_t len);
int net_conn_send_raw(struct net_conn *c, const void *bytes, size_t len);
void net_conn_ping(struct net_conn *c);
void net_conn_info(struct net_conn *c, uint64_t *srtt_us, uint64_t *rttvar_us, uint64_t *min_rtt_us,
                   uint64_t *cwnd, uint64_t *inflight);
void net_fmt_addr(const struct sockaddr *sa, char *out, size_t cap);

#endif
