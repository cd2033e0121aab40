#!/usr/bin/env bash
# tools/measure-cold-read.sh [SIZE_MIB] - a peer's file read cold on
# loopback, with each daemon's CPU per thread: two peers A and B mounted
# (as bench-sync.sh does), a SIZE_MIB (default 1024) file of random bytes
# written on A until its metadata is on B, caches dropped, then read once
# on B with dd. Prints MB/s and every thread's CPU seconds (user +
# system) of both daemons during the read. Unlike bench-sync.sh it keeps
# no copy of the file in memory: the source is deleted before the read,
# so the read's new pages come from memory just freed (on the development
# VM memory left untouched is slow to touch again: docs/PERFORMANCE.md,
# "The machine"). Not part of make bench. O=DIR takes landro from another
# build. Needs root and /dev/fuse.
set -euo pipefail
cd "$(dirname "$0")/.."
SIZE=${1:-1024}
L=$PWD/${O:-build}/bin/landro
. tools/measure-lib.sh
measure_workdir mcold
PA=$((47900 + RANDOM % 90)); PB=$((PA + 1))
mkdir -p "$W/ma" "$W/mb"
# measure_cleanup detaches $W/m only.
cleanup_peers() {
    set +e
    local m
    for m in "$W/ma" "$W/mb"; do mountpoint -q "$m" && fusermount3 -u -z "$m"; done
    measure_cleanup
}
trap cleanup_peers EXIT
"$L" init --store "$W/a" >/dev/null
"$L" init --store "$W/b" --volume "$("$L" volume --store "$W/a")" >/dev/null
"$L" peer add --store "$W/a" "$("$L" id --store "$W/b")" "127.0.0.1:$PB"
"$L" peer add --store "$W/b" "$("$L" id --store "$W/a")" "127.0.0.1:$PA"
"$L" mount --store "$W/a" --listen "127.0.0.1:$PA" "$W/ma" 2>/dev/null
"$L" mount --store "$W/b" --listen "127.0.0.1:$PB" "$W/mb" 2>/dev/null
head -c "${SIZE}M" /dev/urandom > "$W/src"
cp "$W/src" "$W/ma/big"
sync "$W/ma/big"
rm "$W/src"
end=$((SECONDS + 60))
until [ "$(stat -c %s "$W/mb/big" 2>/dev/null)" = $((SIZE << 20)) ]; do
    [ $SECONDS -lt $end ] || { echo "measure-cold-read: metadata did not reach B"; exit 1; }
    sleep 0.05
done
echo 3 > /proc/sys/vm/drop_caches
pid_a=$(pgrep -f "landro mount --store $W/a " | head -n1)
pid_b=$(pgrep -f "landro mount --store $W/b " | head -n1)
# threads PID: "name ticks" per thread name (threads of one name summed).
threads() {
    for t in /proc/"$1"/task/*; do echo "$(cat "$t/comm") $(awk '{ print $14 + $15 }' "$t/stat")"; done |
        awk '{ s[$1] += $2 } END { for (k in s) print k, s[k] }' | sort
}
threads "$pid_a" > "$W/a0"; threads "$pid_b" > "$W/b0"
t0=$(date +%s.%N)
dd if="$W/mb/big" of=/dev/null bs=1M status=none
t1=$(date +%s.%N)
threads "$pid_a" > "$W/a1"; threads "$pid_b" > "$W/b1"
awk -v n=$((SIZE << 20)) -v a="$t0" -v b="$t1" 'BEGIN { printf "cold read of %d MiB on B: %.0f MB/s\n", n / 1048576, n / (b - a) / 1e6 }'
hz=$(getconf CLK_TCK)
for d in a b; do
    echo "daemon $(echo $d | tr ab AB), CPU seconds during the read:"
    join "$W/${d}0" "$W/${d}1" | awk -v hz="$hz" '$3 > $2 { printf "  %-14s %.2f\n", $1, ($3 - $2) / hz }'
done
