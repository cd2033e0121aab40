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
