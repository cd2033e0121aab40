# tools/impair/netns.sh - sourced (not run) by the scripts that put
# landro-impair on a network path: tests/integration/test_net_netns.sh,
# tests/integration/test_sync_netns.sh and tools/bench-net.sh. Needs root
# and iproute2.
#
# impair_netns A R B NET: three network namespaces A <-> R <-> B joined by
# two veth pairs (a0/ra, b0/rb); A is NET.1.1 and R NET.1.2 on the first,
# B NET.2.1 and R NET.2.2 on the second (NET is two octets, e.g. 10.201).
# Namespaces that already exist are used as they are. R does not forward
# IP, so A and B reach each other only through a relay running in R.
# Returns non-zero, with ip's message on stderr, if a step fails.
#
# impair_netns_del NS...: kill every process left in the namespaces and
# delete them (for traps; never fails).
impair_netns() {
    local a=$1 r=$2 b=$3 net=$4 ns
    for ns in "$a" "$r" "$b"; do
        [ -e "/run/netns/$ns" ] || ip netns add "$ns" || return 1
    done
    ip -n "$a" link add a0 type veth peer name ra netns "$r" &&
    ip -n "$b" link add b0 type veth peer name rb netns "$r" &&
    ip -n "$a" addr add "$net.1.1/24" dev a0 && ip -n "$r" addr add "$net.1.2/24" dev ra &&
    ip -n "$b" addr add "$net.2.1/24" dev b0 && ip -n "$r" addr add "$net.2.2/24" dev rb || return 1
    for ns in "$a" "$r" "$b"; do ip -n "$ns" link set lo up || return 1; done
    ip -n "$a" link set a0 up && ip -n "$b" link set b0 up &&
    ip -n "$r" link set ra up && ip -n "$r" link set rb up &&
    ip netns exec "$r" sysctl -qw net.ipv4.ip_forward=0
}

impair_netns_del() {
    local ns
    for ns in "$@"; do
        ip netns pids "$ns" 2>/dev/null | xargs -r kill -9 2>/dev/null
        ip netns del "$ns" 2>/dev/null
    done
    return 0
}
