#!/usr/bin/env bash
# tests/integration/test_net_loopback.sh - landro-net-bench between two
# processes on loopback: 256 MiB verified over IPv4 while control pings
# keep flowing, IPv6, 1% datagram loss, a refused (untrusted) client, and a
# server killed mid-transfer giving a clean error within the timeout.
# Every step is bounded (timeout, or a polling loop for background
# processes); the trap kills what we started.
set -uo pipefail
cd "$(dirname "$0")/../.."
BIN=${O:-build}/bin/landro-net-bench
pass=0
fail=0
tmp=$(mktemp -d /tmp/landro-net-it-XXXXXX)
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null; done
    rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 143' TERM INT   # so that a timeout still runs the cleanup

ok() { echo "ok - $1"; pass=$((pass + 1)); }
bad() { echo "not ok - $1"; shift; for l in "$@"; do echo "    $l"; done; fail=$((fail + 1)); }

# verified OUT N: the run moved N chunks, all verified
verified() { grep -q "verified: $2 of $2 chunks, 0 failed" <<<"$1"; }
pong_age() { sed -nE 's/.*max pong age ([0-9]+) ms.*/\1/p' <<<"$1"; }

if [ ! -x "$BIN" ]; then
    bad "landro-net-bench is built" "missing $BIN"
    echo "$pass passed, $fail failed"
    exit 1
fi

# 1. 256 MiB over IPv4 loopback; the control stream's pings must keep
#    being answered while the data streams are busy (pong age < 3 periods).
out=$(timeout 180 "$BIN" --chunks 4096 2>&1)
age=$(pong_age "$out")
if verified "$out" 4096 && [ -n "$age" ] && [ "$age" -lt 3000 ]; then
    ok "256 MiB over IPv4 loopback verified, max pong age ${age} ms"
    grep '^quic:' <<<"$out" | sed 's/^/    /'
else
    bad "256 MiB over IPv4 loopback" "$out"
fi

# 2. IPv6 loopback
out=$(timeout 60 "$BIN" --chunks 512 --addr ::1 2>&1)
if verified "$out" 512; then ok "32 MiB over IPv6 loopback verified"; else bad "IPv6 loopback" "$out"; fi

# 3. 1% of datagrams lost in both directions
out=$(timeout 120 "$BIN" --chunks 1024 --drop 10 2>&1)
if verified "$out" 1024; then ok "64 MiB with 1% datagram loss verified"; else bad "1% loss" "$out"; fi

# 4. separate --server/--client processes; a client the server does not
#    trust is refused, and says so.
"$BIN" --id --dir "$tmp/srv" >"$tmp/srv.id" && "$BIN" --id --dir "$tmp/cli" >"$tmp/cli.id" \
    && "$BIN" --id --dir "$tmp/other" >"$tmp/other.id"
sid=$(cat "$tmp/srv.id"); cid=$(cat "$tmp/cli.id"); oid=$(cat "$tmp/other.id")
"$BIN" --server --dir "$tmp/srv" --listen 127.0.0.1:0 --peer "$oid" --chunks 64 \
    >"$tmp/srv1.out" 2>"$tmp/srv1.err" &
pids+=($!)
for _ in $(seq 50); do grep -q '^port ' "$tmp/srv1.out" && break; sleep 0.1; done
port=$(sed -n 's/^port //p' "$tmp/srv1.out")
out=$(timeout 30 "$BIN" --client --dir "$tmp/cli" --connect "127.0.0.1:$port" --peer "$sid" --chunks 64 2>&1)
rc=$?
kill "${pids[-1]}" 2>/dev/null; wait "${pids[-1]}" 2>/dev/null
if [ $rc -ne 0 ] && grep -q "not trusted" "$tmp/srv1.err" && grep -q "refused" <<<"$out"; then
    ok "untrusted client refused (both sides log why)"
else
    bad "untrusted client refused" "client rc=$rc" "$out" "$(cat "$tmp/srv1.err")"
fi

# 5. the server is killed mid-transfer: the client ends with a clean
#    error (no hang, no unverified bytes) within its timeouts.
"$BIN" --server --dir "$tmp/srv" --listen 127.0.0.1:0 --peer "$cid" --chunks 16384 \
    >"$tmp/srv2.out" 2>"$tmp/srv2.err" &
spid=$!
pids+=($spid)
for _ in $(seq 100); do grep -q '^port ' "$tmp/srv2.out" && break; sleep 0.1; done
port=$(sed -n 's/^port //p' "$tmp/srv2.out")
start=$(date +%s)
"$BIN" --client --dir "$tmp/cli" --connect "127.0.0.1:$port" --peer "$sid" --chunks 16384 \
    >"$tmp/cli2.out" 2>&1 &
cpid=$!
pids+=($cpid)
for _ in $(seq 100); do grep -q '^connected' "$tmp/cli2.out" && break; sleep 0.1; done
sleep 0.5
kill -9 $spid
# bounded wait: the client must be gone within 60 s
for _ in $(seq 600); do kill -0 $cpid 2>/dev/null || break; sleep 0.1; done
kill -9 $cpid 2>/dev/null
wait $cpid
rc=$?
secs=$(( $(date +%s) - start ))
if [ $rc -ne 0 ] && [ $rc -ne 137 ] && [ $secs -lt 60 ] && grep -q "no peer answered in time" "$tmp/cli2.out" \
    && ! grep -q "verified: 16384 of 16384" "$tmp/cli2.out"; then
    ok "server killed mid-transfer: client failed cleanly after ${secs} s"
else
    bad "server killed mid-transfer" "rc=$rc after ${secs} s" "$(tail -5 "$tmp/cli2.out")"
fi

echo "$pass passed, $fail failed"
[ "$fail" = 0 ]
