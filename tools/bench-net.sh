#!/usr/bin/env bash
# tools/bench-net.sh [CHUNKS] - landro's transport against a raw TCP copy of
# the same bytes, both over loopback, measured in the same run.
#   quic: N chunks of 64 KiB fetched by hash through two landro nodes
#         (separate processes; QUIC + TLS 1.3 AES-GCM; every chunk's
#         SHA-256 verified by the receiver, on its verifier thread; CPU
#         seconds per thread of both nodes are printed)
#   tcp:  the same bytes written down one TCP connection and read (no
#         crypto, no hashing): the ceiling of the loopback itself
# Prints both lines and the ratio. Default 16384 chunks = 1 GiB.
# Then, as root with iproute2 and landro-impair built: the same transfer
# (a quarter of the chunks) between two network namespaces whose only path
# is the landro-impair relay in a third one, holding every datagram 20 ms
# each way (no loss; the kernel here has no tc netem). No TCP baseline
# there: the relay carries UDP only.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${O:-build}/bin/landro-net-bench
N=${1:-16384}
[ -x "$BIN" ] || { echo "bench-net: build $BIN first (make)" >&2; exit 1; }
mb() { sed -nE 's/.*= ([0-9.]+) MB\/s.*/\1/p' <<<"$1" | head -n1; }

echo "bench-net: $N chunks of 64 KiB ($((N / 16)) MiB) over loopback, $(nproc) cores"
quic=$(timeout 600 "$BIN" --chunks "$N" 2>&1)
grep -E '^(quic|pings|verified|server cpu|client threads|server threads)' <<<"$quic"
tcp=$(timeout 600 "$BIN" --tcp --chunks "$N" 2>&1)
grep -E '^tcp' <<<"$tcp"
q=$(mb "$quic"); t=$(mb "$tcp")
if [ -n "$q" ] && [ -n "$t" ]; then
    awk -v q="$q" -v t="$t" 'BEGIN { printf "ratio quic/tcp: %.2f (%.0f vs %.0f MB/s)\n", q / t, q, t }'
fi
grep -q "verified: $N of $N chunks, 0 failed" <<<"$quic"

IMPAIR=${O:-build}/bin/landro-impair
if [ "$(id -u)" = 0 ] && command -v ip >/dev/null && [ -x "$IMPAIR" ]; then
    ND=$((N / 4)); NA=lbn-a-$$ NB=lbn-b-$$ NR=lbn-r-$$
    tmp=$(mktemp -d /tmp/landro-bnet-XXXXXX)
    . tools/impair/netns.sh
    cleanup() { impair_netns_del "$NA" "$NB" "$NR"; rm -rf "$tmp"; }
    trap cleanup EXIT
    impair_netns "$NA" "$NR" "$NB" 10.203
    ip netns exec "$NR" "$IMPAIR" --delay ${BENCH_DELAY:-20} --loss 0 --map 10.203.1.2:7000=10.203.2.1:7000 \
        >"$tmp/relay.out" 2>"$tmp/relay.err" &
    disown $!   # killed at cleanup; no job notice
    "$BIN" --id --dir "$tmp/a" >"$tmp/a.id"; "$BIN" --id --dir "$tmp/b" >"$tmp/b.id"
    ip netns exec "$NB" "$BIN" --server --dir "$tmp/b" --listen 10.203.2.1:7000 --peer "$(cat "$tmp/a.id")" \
        --chunks "$ND" >"$tmp/srv.out" 2>&1 &
    disown $!
    for _ in $(seq 100); do grep -q '^port ' "$tmp/srv.out" && grep -q '^listening' "$tmp/relay.out" && break; sleep 0.1; done
    d=$(timeout 600 ip netns exec "$NA" "$BIN" --client --dir "$tmp/a" --connect 10.203.1.2:7000 \
        --peer "$(cat "$tmp/b.id")" --chunks "$ND" 2>&1)
    echo "delayed path (landro-impair, 20 ms each way, MTU 1500): $(grep -E '^quic' <<<"$d")"
    grep -E '^pings' <<<"$d" | sed 's/^/  /'
    grep -q "verified: $ND of $ND chunks, 0 failed" <<<"$d"
fi
