/*
 * net.h - landro's transport: QUIC (ngtcp2) over one UDP socket, mutual
 * TLS 1.3 (wolfSSL) between devices that trust each other by device id,
 * chunk fetch with hash verification, per-peer connection pool and health.
 *
 * CONTRACT
 *
 * Return values: 0 on success, otherwise a negative errno or an LR_E* code
 * (store/lr.h). ngtcp2 and wolfSSL codes never escape: TLS and certificate
 * failures become LR_ETLS, trust refusals LR_EUNTRUSTED, other QUIC
 * failures LR_EQUIC, malformed frames LR_EPROTO.
 *
 * Identity. Each device owns an ECDSA P-256 key pair and a self-signed
 * certificate, stored PEM-encoded in a directory as device.key and
 * device.crt, both mode 0600. The device id is the SHA-256 of the
 * certificate's public key (its DER SubjectPublicKeyInfo). Its text form
 * is 52 base32 characters (RFC 4648 alphabet, A-Z 2-7; the last one
 * carries one bit, the rest zero) and one Luhn mod 32 check character,
 * written in groups of four with the check character last:
 * "MFRG-GZDF-...-MZXQ-K" (see net_id_format and docs/PROTOCOL.md).
 *
 * Threads. A node runs one network thread (net_node_start) that owns the
 * UDP socket, every connection and every timer, and a few chunk verifier
 * threads (cfg.verify_threads) that check fetched chunks' SHA-256 off
 * the network thread. Every callback in struct net_config runs on the
 * network thread; a net_fetch callback runs on the network thread or on
 * a verifier thread (never two at once for the same fetch, exactly once
 * per fetch). Callbacks must not block (no disk fsync, no waiting on
 * other threads). The functions below may be called from any thread
 * unless stated; work they hand to the network thread goes through one
 * locked queue and one eventfd wake-up. net_node_free and
 * net_node_stop must not be called from a callback.
 *
 * Memory. Buffers passed to callbacks are valid only during the call.
 * Functions that take a payload copy it before returning.
 */
#ifndef NET_H
#define NET_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "hash.h"
#include "lr.h"

#define NET_ID_LEN 32
typedef struct { uint8_t b[NET_ID_LEN]; } net_id;

/* Text form: 53 symbols in 14 dash-separated groups, plus NUL. */
#define NET_ID_STR_LEN 67
#define NET_VOLUME_LEN 16
#define NET_ALPN "landro/1"
#define NET_PROTO_VERSION 1
/* Largest control frame payload, first application frame type, largest
 * chunk a peer may send (the store's chunks are at most 256 KiB). */
#define NET_FRAME_MAX (1u << 20)
#define NET_FRAME_APP_MIN 0x100
#define NET_CHUNK_MAX (4u << 20)

/* Parse "host:port" (IPv4) or "[host]:port" (IPv6), numeric host and
 * port 0..65535, into *out and *len. 0 or -EINVAL. Any thread. */
int net_parse_addr(const char *s, struct sockaddr_storage *out, socklen_t *len);

/* ---- identity ---------------------------------------------------------- */

struct net_identity {
    net_id id;          /* SHA-256 of the certificate's SubjectPublicKeyInfo */
    uint8_t *cert_der;  /* certificate, DER */
    size_t cert_len;
    uint8_t *key_der;   /* private key, DER (wiped by _release) */
    size_t key_len;
};

/* Create a new key pair and self-signed certificate in dir (which must
 * exist) as device.key and device.crt, mode 0600. -EEXIST if device.key is
 * already there (never overwrites a key), -errno on I/O, LR_ETLS if
 * wolfCrypt fails. If out is not NULL it receives the device id. */
int net_identity_create(const char *dir, net_id *out);
/* Load dir/device.key and dir/device.crt into id (caller storage, release
 * with net_identity_release). -ENOENT if missing, LR_ETLS if unreadable or
 * if the key does not belong to the certificate. */
int net_identity_load(const char *dir, struct net_identity *id);
void net_identity_release(struct net_identity *id);
/* Device id of a DER certificate: SHA-256 of its SubjectPublicKeyInfo.
 * LR_ETLS if the certificate does not parse. */
int net_id_from_cert(const uint8_t *der, size_t len, net_id *out);

/* Write the text form of id into out (NET_ID_STR_LEN bytes). Returns out. */
char *net_id_format(const net_id *id, char out[NET_ID_STR_LEN]);
/* Short form for logs: the first eight symbols, "ABCD-EFGH". */
char *net_id_short(const net_id *id, char out[10]);
/* Parse the text form. Case-insensitive; '-' and spaces are ignored.
 * -EINVAL unless there are exactly 53 base32 symbols, the padding bits are
 * zero and the check character matches. */
int net_id_parse(const char *s, net_id *out);

/* ---- node --------------------------------------------------------------- */

struct net_node;

enum net_peer_state {
    NET_PEER_DOWN = 0,     /* no established connection */
    NET_PEER_FAILING,      /* connected, but requests keep failing or pings stopped */
    NET_PEER_DEGRADED,     /* connected, slow or recent errors */
    NET_PEER_HEALTHY,
};
const char *net_peer_state_name(enum net_peer_state s);

/* Called for each chunk a peer asks for (network thread; must not block).
 * from: the asking peer (NULL if it was removed meanwhile). Copy the
 * chunk into buf (cap bytes) and set *len; return 0, -ENOENT if this
 * device does not have it, or another error (sent to the peer as
 * not-found). When cap is smaller than the chunk, return -EFBIG and set
 * *len to its length: the node asks with buf NULL and cap 0 first, then
 * copies straight into the buffer the response is sent from (one copy, no
 * scratch buffer).
 * relay (only with buf NULL): the asker asked every peer it knows and
 * none held the chunk, and asks us to fetch it from our other peers. The
 * callback may then start such a fetch and return -EINPROGRESS: the
 * request waits until net_serve_wake(h), or at most half of attempt_ms,
 * and is then asked again with relay 0. */
typedef int (*net_get_chunk_fn)(void *ctx, const net_id *from, int relay, const st_hash *h, void *buf,
                                size_t cap, size_t *len);
/* An application frame (type >= NET_FRAME_APP_MIN) arrived from peer. */
typedef void (*net_on_frame_fn)(void *ctx, const net_id *peer, uint16_t type,
                                const uint8_t *payload, size_t len);
/* A peer's health state changed (Down when its last connection closed). */
typedef void (*net_on_peer_state_fn)(void *ctx, const net_id *peer, enum net_peer_state st);

#define NET_MAX_LISTEN 4
#define NET_MAX_ADDRS 4

struct net_config {
    const char *identity_dir;          /* holds device.key, device.crt */
    /* "127.0.0.1:7000", "[::1]:7000", "0.0.0.0:0" (port 0 = ephemeral).
     * NULL entries end the list; none at all means "[::]:0" (dual stack). */
    const char *listen[NET_MAX_LISTEN];
    uint8_t volume[NET_VOLUME_LEN];    /* peers must present the same volume id */
    unsigned conns_per_peer;           /* 1..8, default (0) 1 */
    unsigned max_conns;                /* global bound, default (0) 64; a pool grows
                                        * only while fewer than half are open */
    unsigned max_inflight;             /* chunk requests in flight per connection, default 64 */
    unsigned idle_ms;                  /* close extra pool connections with no request
                                        * either way this long, default 30000 */
    unsigned ping_ms;                  /* control ping period, default 1000 */
    unsigned attempt_ms;               /* per-peer request attempt timeout, default 5000
                                        * (no answer and no response bytes on its
                                        * connection for that long) */
    unsigned verify_threads;           /* chunk verifier threads, 1..8; default (0): one per
                                          online CPU beyond the first, at least 1, at most 4 */
    net_get_chunk_fn get_chunk;
    net_on_frame_fn on_frame;
    net_on_peer_state_fn on_peer_state;
    void *ctx;                         /* passed to the three callbacks */
    /* Fault seam for tests only: claim this id in our hello instead of
     * our real one (peers must refuse us). NULL in production. */
    const net_id *test_claim_id;
    /* Fault seam for tests only: drop this many of every 1000 outgoing
     * datagrams (at random), as a lossy link would. 0 in production. */
    unsigned test_drop_permille;
    /* Fault seam for tests only: hold every outgoing datagram this long
     * before sending it (a slow link, where tc netem is unavailable). */
    unsigned test_delay_ms;
};

/* Load the identity, bind the sockets. Does not start the thread.
 * -EADDRINUSE / -errno on bind, -EINVAL on a bad address, identity errors
 * as net_identity_load. */
int net_node_new(const struct net_config *cfg, struct net_node **out);
/* Spawn the network thread. */
int net_node_start(struct net_node *n);
/* Close every connection (best effort CONNECTION_CLOSE), fail every pending
 * fetch with -ECANCELED, join the thread. Idempotent. */
void net_node_stop(struct net_node *n);
/* Stop if needed and free. NULL is a no-op. */
void net_node_free(struct net_node *n);

const net_id *net_node_id(const struct net_node *n);
/* The UDP port the i-th listen address is bound to (after port 0). */
int net_node_port(const struct net_node *n, unsigned i);

/* Trust peer id and dial it at addrs (0..NET_MAX_ADDRS "host:port"
 * strings; with none we only accept its connections). Adding a known peer
 * replaces its addresses. -EINVAL on a bad address. Any thread. */
int net_peer_add(struct net_node *n, const net_id *peer, const char *const *addrs, unsigned naddrs);
/* Forget peer: close its connections and stop trusting it. */
int net_peer_remove(struct net_node *n, const net_id *peer);

/* Fetch result: err = 0 with the verified chunk (valid during the call),
 * or LR_ETIMEDOUT (nobody answered in time), -ENOENT (every peer asked
 * said it does not have the chunk), LR_EHASH (the only answers were
 * wrong bytes), -ECANCELED (node stopped). from = the peer that delivered
 * (NULL on error). Called exactly once, on the network thread or a
 * verifier thread; never after net_node_stop has returned. */
typedef void (*net_fetch_cb)(void *ctx, int err, const st_hash *h, const uint8_t *data,
                             size_t len, const net_id *from);
/* Inside a net_fetch_cb called with err 0: take data over instead of
 * copying it. Returns 1 when taken (it stays valid after the callback; give
 * it back with net_chunk_release(n, data, len), from any thread), 0 when
 * this delivery cannot hand its buffer over (copy it then). */
int net_chunk_keep(const uint8_t *data);
void net_chunk_release(struct net_node *n, const uint8_t *data, size_t len);

/* Ask peers for chunk h. peers: the ids of peers known to hold it
 * (npeers of them), or NULL = any connected peer. Tried in order of health;
 * each attempt is bounded by cfg.attempt_ms (it times out once its
 * connection has brought no response bytes for that long: a request queued
 * behind others on a slow but live link is no dead peer), the whole fetch
 * by timeout_ms, or while its connection keeps delivering response bytes
 * by the time it has been quiet for timeout_ms (attempt_ms if less), and
 * by NET_FETCH_LIVE_MAX (12) x timeout_ms at most.
 * With no eligible peer connected the fetch waits for one at most
 * attempt_ms (busy peers: until timeout_ms).
 * A peer that answers not-found, sends bytes that do not hash to h, times
 * out or disconnects is counted against its health and the next one is
 * tried. Returns 0 (cb will be called) or -ENOMEM / -ESHUTDOWN (cb will not
 * be called). Any thread. */
int net_fetch(struct net_node *n, const st_hash *h, const net_id *peers, unsigned npeers,
              unsigned timeout_ms, net_fetch_cb cb, void *ctx);
/* When every peer asked answered not-found, net_fetch asks them all once
 * more with the relay flag (CHUNK_REQ flag NET_REQ_RELAY, PROTOCOL.md):
 * a peer that can reach one we cannot fetches the chunk for us. With
 * flags NET_FETCH_DIRECT there is no such second round (a relay's own
 * fetch, so relays never chain). exclude (may be NULL): a peer never to
 * ask (the one we relay for). With NET_FETCH_URGENT (a reader waits for
 * this chunk, it is no read-ahead) the request may pass the per-connection
 * bound by a few and asks the peer to answer it before the requests
 * queued earlier (CHUNK_REQ flag NET_REQ_URGENT). Otherwise as net_fetch. */
enum { NET_FETCH_DIRECT = 1, NET_FETCH_URGENT = 2 };
int net_fetch_ex(struct net_node *n, const st_hash *h, const net_id *peers, unsigned npeers,
                 const net_id *exclude, unsigned flags, unsigned timeout_ms, net_fetch_cb cb, void *ctx);
/* Answer the requests parked for h (get_chunk returned -EINPROGRESS): each
 * is asked again with relay 0. Any thread. 0, -ENOMEM or -ESHUTDOWN. */
int net_serve_wake(struct net_node *n, const st_hash *h);
/* Synchronous convenience: blocks the calling thread until the fetch ends
 * (at most timeout_ms). The chunk goes to buf (cap bytes; -EOVERFLOW if it
 * does not fit). -ENOTCONN if the node is not running, -EDEADLK if called
 * on the network thread or a verifier thread (from a callback). */
int net_fetch_sync(struct net_node *n, const st_hash *h, const net_id *peers, unsigned npeers,
                   unsigned timeout_ms, void *buf, size_t cap, size_t *len);

/* Queue an application frame (NET_FRAME_APP_MIN <= type) for peer, to go
 * on the control stream of its first established connection. Returns 0
 * once queued, -EINVAL on a bad type or len > NET_FRAME_MAX, -ESHUTDOWN
 * when the node is stopping. If the peer has no established connection
 * when the network thread takes the frame, the frame is dropped and a
 * warning logged: delivery is not guaranteed (use on_peer_state to learn
 * when to resend, e.g. on reconnection). Any thread. */
int net_send_frame(struct net_node *n, const net_id *peer, uint16_t type,
                   const void *payload, size_t len);

/* Health snapshot of one peer. Times in microseconds. */
struct net_peer_stats {
    net_id id;
    enum net_peer_state state;
    unsigned conns;              /* established connections */
    uint64_t srtt_us, rttvar_us, min_rtt_us;  /* ngtcp2 conn info, best conn */
    uint64_t cwnd, bytes_in_flight;
    uint64_t ping_rtt_us;        /* last control ping round trip (EWMA) */
    uint64_t last_pong_age_ms;   /* since the last pong (also once down: last seen), UINT64_MAX if never */
    uint64_t chunks_ok, bytes_rx;    /* fetched from it (verified) */
    uint64_t chunks_tx, bytes_tx;    /* served to it */
    uint64_t rx_bps, tx_bps;         /* recent rates, bytes/s, smoothed over ~1 s */
    uint64_t timeouts, errors;   /* requests timed out / failed verification or protocol */
    unsigned inflight;           /* chunk requests in flight now */
    uint64_t reconnects;         /* connection attempts made */
    char addr[64];               /* address of the best connection, or first known */
    char last_error[96];         /* why the last connection was refused or lost; "" if none */
    uint64_t last_error_age_ms;  /* since then */
};
/* Copy up to max snapshots into out; returns the number of peers (may be
 * more than max). Any thread; figures are at most 250 ms old. */
int net_peer_stats(struct net_node *n, struct net_peer_stats *out, unsigned max);

#endif
