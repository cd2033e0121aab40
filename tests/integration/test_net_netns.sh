#!/usr/bin/env bash
# tests/integration/test_net_netns.sh - two network namespaces joined by a
# veth pair (10.200.0.1/24 <-> 10.200.0.2/24, addresses this test assigns),
# with `tc netem delay 20ms loss 1%` on both ends when the kernel has
# netem; otherwise (sch_netem not built in) the same delay and loss come
# from net/'s test seams (cfg.test_delay_ms, cfg.test_drop_permille),
# which the output says. A 256 MiB transfer must arrive intact (every chunk
# verified). Traffic goes only to the two namespace addresses.
# Needs root; namespaces are removed by the trap even on failure.
set -uo pipefail
cd "$(dirname "$0")/../.."
BIN=$(pwd)/${O:-build}/bin/landro-net-bench
NA=landro-t-a-$$
NB=landro-t-b-$$
pass=0
fail=0
tmp=$(mktemp -d /tmp/landro-netns-XXXXXX)
spid=
cleanup() {
    [ -n "$spid" ] && kill -9 "$spid" 2>/dev/null
    ip netns pids "$NA" 2>/dev/null | xargs -r kill -9 2>/dev/null
    ip netns pids "$NB" 2>/dev/null | xargs -r kill -9 2>/dev/null
    ip netns del "$NA" 2>/dev/null
    ip netns del "$NB" 2>/dev/null
    rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 143' TERM INT   # so that a timeout still runs the cleanup

ok() { echo "ok - $1"; pass=$((pass + 1)); }
bad() { echo "not ok - $1"; shift; for l in "$@"; do echo "    $l"; done; fail=$((fail + 1)); }
finish() { echo "$pass passed, $fail failed"; [ "$fail" = 0 ]; exit; }

if [ "$(id -u)" != 0 ] || ! command -v ip >/dev/null; then
    bad "network namespaces available" "needs root and iproute2"
    finish
fi
if ! { ip netns add "$NA" && ip netns add "$NB" &&
       ip link add "va$$" type veth peer name "vb$$" &&
       ip link set "va$$" netns "$NA" && ip link set "vb$$" netns "$NB" &&
       ip -n "$NA" addr add 10.200.0.1/24 dev "va$$" && ip -n "$NB" addr add 10.200.0.2/24 dev "vb$$" &&
       ip -n "$NA" link set "va$$" up && ip -n "$NB" link set "vb$$" up &&
       ip -n "$NA" link set lo up && ip -n "$NB" link set lo up; } 2>"$tmp/ip.err"; then
    bad "namespaces and veth pair created" "$(cat "$tmp/ip.err")"
    finish
fi
ok "namespaces $NA, $NB joined by a veth pair"

drop=0
delay=0
if ip netns exec "$NA" tc qdisc add dev "va$$" root netem delay 20ms loss 1% 2>"$tmp/tc.err" &&
   ip netns exec "$NB" tc qdisc add dev "vb$$" root netem delay 20ms loss 1% 2>>"$tmp/tc.err"; then
    link="netem delay 20 ms + loss 1% each way"
else
    drop=10
    delay=20
    link="no netem in this kernel ($(head -c 50 "$tmp/tc.err")): delay 20 ms + loss 1% each way from landro's test seams"

fi
echo "# link: $link"

"$BIN" --id --dir "$tmp/a" >"$tmp/a.id" && "$BIN" --id --dir "$tmp/b" >"$tmp/b.id"
aid=$(cat "$tmp/a.id"); bid=$(cat "$tmp/b.id")
N=4096   # 256 MiB
ip netns exec "$NB" "$BIN" --server --dir "$tmp/b" --listen 10.200.0.2:7000 --peer "$aid" \
    --chunks $N --drop $drop --delay $delay >"$tmp/srv.out" 2>"$tmp/srv.err" &
spid=$!
for _ in $(seq 100); do grep -q '^port ' "$tmp/srv.out" && break; sleep 0.1; done
start=$(date +%s)
out=$(timeout 300 ip netns exec "$NA" "$BIN" --client --dir "$tmp/a" --connect 10.200.0.2:7000 \
      --peer "$bid" --chunks $N --drop $drop --delay $delay 2>&1)
rc=$?
secs=$(( $(date +%s) - start ))
if [ $rc = 0 ] && grep -q "verified: $N of $N chunks, 0 failed" <<<"$out"; then
    ok "256 MiB across the namespaces intact in ${secs} s ($link)"
    grep -E '^(quic|pings):' <<<"$out" | sed 's/^/    /'
else
    bad "256 MiB across the namespaces" "rc=$rc after ${secs} s" "$(tail -5 <<<"$out")" "$(tail -5 "$tmp/srv.err")"
fi
finish
