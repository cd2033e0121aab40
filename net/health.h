/*
 * health.h - classify a peer Healthy / Degraded / Failing / Down from its
 * connection figures, with hysteresis. Pure functions, any thread; the
 * node calls net_health_step once per tick (NET_HEALTH_TICK_MS).
 *
 * Thresholds (docs/PROTOCOL.md, "Health"):
 *   Down      no established connection.
 *   Failing   3 or more request failures (timeout, wrong bytes, protocol
 *             error, connection lost) in a row, or no pong for 3 ping
 *             periods, or 4+ failures in the window outnumbering successes.
 *   Degraded  smoothed RTT or ping RTT above 100 ms, or RTT variance above
 *             50 ms, or any failure in the window (the last 10-20 s).
 *   Healthy   otherwise.
 * Hysteresis: a worse class applies at once; a better one only after it
 * was seen on NET_HEALTH_RECOVER_TICKS consecutive ticks (Down -> up is
 * immediate: a finished handshake is evidence enough).
 */
#ifndef NET_HEALTH_H
#define NET_HEALTH_H

#include <stdint.h>

#include "net.h"

#define NET_HEALTH_TICK_MS 250
#define NET_HEALTH_RECOVER_TICKS 8
#define NET_HEALTH_WINDOW_MS 10000

struct net_health_in {
    int connected;
    uint64_t srtt_us, rttvar_us, ping_rtt_us;
    uint64_t pong_age_ms, ping_period_ms;
    unsigned consec_fail;          /* failures since the last success */
    unsigned window_fail, window_ok;
};

enum net_peer_state net_health_classify(const struct net_health_in *in);

struct net_health {
    enum net_peer_state state;
    unsigned better_ticks;         /* consecutive ticks classified better */
};

/* Feed one classification; returns 1 if h->state changed. */
int net_health_step(struct net_health *h, enum net_peer_state c);

#endif
