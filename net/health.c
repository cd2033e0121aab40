/* health.c - peer health classification with hysteresis (health.h). */
#include "health.h"

const char *net_peer_state_name(enum net_peer_state s)
{
    switch (s) {
    case NET_PEER_DOWN: return "down";
    case NET_PEER_FAILING: return "failing";
    case NET_PEER_DEGRADED: return "degraded";
    case NET_PEER_HEALTHY: return "healthy";
    }
    return "unknown";
}

enum net_peer_state net_health_classify(const struct net_health_in *in)
{
    if (!in->connected)
        return NET_PEER_DOWN;
    uint64_t period = in->ping_period_ms ? in->ping_period_ms : 1000;
    if (in->consec_fail >= 3 || in->pong_age_ms > 3 * period + 500 ||
        (in->window_fail >= 4 && in->window_fail > in->window_ok))
        return NET_PEER_FAILING;
    if (in->srtt_us > 100000 || in->ping_rtt_us > 100000 || in->rttvar_us > 50000 ||
        in->window_fail > 0)
        return NET_PEER_DEGRADED;
    return NET_PEER_HEALTHY;
}

int net_health_step(struct net_health *h, enum net_peer_state c)
{
    if (c == h->state) {
        h->better_ticks = 0;
        return 0;
    }
    if (c < h->state || h->state == NET_PEER_DOWN) {
        h->state = c;
        h->better_ticks = 0;
        return 1;
    }
    if (++h->better_ticks >= NET_HEALTH_RECOVER_TICKS) {
        h->state = c;
        h->better_ticks = 0;
        return 1;
    }
    return 0;
}
