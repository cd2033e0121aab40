/* test_net_health.c - peer health thresholds and hysteresis. */
#include "health.h"
#include "t.h"

static struct net_health_in good(void)
{
    struct net_health_in in = { .connected = 1, .srtt_us = 300, .rttvar_us = 100, .ping_rtt_us = 400,
                                .pong_age_ms = 200, .ping_period_ms = 1000 };
    return in;
}

static void test_classify_thresholds(void)
{
    struct net_health_in in = good();
    T_EQ(net_health_classify(&in), NET_PEER_HEALTHY);
    in.connected = 0;
    T_EQ(net_health_classify(&in), NET_PEER_DOWN);
    in = good();
    in.srtt_us = 150000;
    T_EQ(net_health_classify(&in), NET_PEER_DEGRADED);
    in = good();
    in.window_fail = 1;
    in.window_ok = 50;
    T_EQ(net_health_classify(&in), NET_PEER_DEGRADED);
    in = good();
    in.consec_fail = 3;
    T_EQ(net_health_classify(&in), NET_PEER_FAILING);
    in = good();
    in.pong_age_ms = 3600;
    T_EQ(net_health_classify(&in), NET_PEER_FAILING);
    in = good();
    in.window_fail = 5;
    in.window_ok = 4;
    T_EQ(net_health_classify(&in), NET_PEER_FAILING);
}

static void test_worse_is_immediate_better_needs_ticks(void)
{
    struct net_health h = { .state = NET_PEER_HEALTHY };
    T_EQ(net_health_step(&h, NET_PEER_FAILING), 1);
    T_EQ(h.state, NET_PEER_FAILING);
    for (int i = 0; i < NET_HEALTH_RECOVER_TICKS - 1; i++) {
        T_EQ(net_health_step(&h, NET_PEER_HEALTHY), 0);
        T_EQ(h.state, NET_PEER_FAILING);
    }
    T_EQ(net_health_step(&h, NET_PEER_HEALTHY), 1);
    T_EQ(h.state, NET_PEER_HEALTHY);
}

static void test_flapping_does_not_recover(void)
{
    struct net_health h = { .state = NET_PEER_DEGRADED };
    for (int i = 0; i < 50; i++) {
        net_health_step(&h, NET_PEER_HEALTHY);
        net_health_step(&h, NET_PEER_DEGRADED); /* one bad tick resets the count */
    }
    T_EQ(h.state, NET_PEER_DEGRADED);
}

static void test_down_to_up_is_immediate(void)
{
    struct net_health h = { .state = NET_PEER_DOWN };
    T_EQ(net_health_step(&h, NET_PEER_HEALTHY), 1);
    T_EQ(h.state, NET_PEER_HEALTHY);
}

int main(void)
{
    T_RUN(test_classify_thresholds);
    T_RUN(test_worse_is_immediate_better_needs_ticks);
    T_RUN(test_flapping_does_not_recover);
    T_RUN(test_down_to_up_is_immediate);
    return t_done();
}
