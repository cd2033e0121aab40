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
NAME=mcold PORTBASE=46600
. "$(dirname "$0")/../tests/integration/peers_lib.sh" # $L, $T, peers, up
set -e
SIZE=${1:-1024}
W=$T
peers a b
up a
up b
head -c "${SIZE}M" /dev/urandom > "$W/src"
cp "$W/src" "$W/mnt-a/big"
sync "$W/mnt-a/big"
rm "$W/src"
b_lists_it() { [ "$(stat -c %s "$W/mnt-b/big" 2>/dev/null)" = $((SIZE << 20)) ]; }
wait_for 60 b_lists_it ||
    { echo "measure-cold-read: metadata did not reach B"; exit 1; }
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
dd if="$W/mnt-b/big" of=/dev/null bs=1M status=none
t1=$(date +%s.%N)
threads "$pid_a" > "$W/a1"; threads "$pid_b" > "$W/b1"
awk -v n=$((SIZE << 20)) -v a="$t0" -v b="$t1" 'BEGIN { printf "cold read of %d MiB on B: %.0f MB/s\n", n / 1048576, n / (b - a) / 1e6 }'
hz=$(getconf CLK_TCK)
for d in a b; do
    echo "daemon $(echo $d | tr ab AB), CPU seconds during the read:"
    join "$W/${d}0" "$W/${d}1" | awk -v hz="$hz" '$3 > $2 { printf "  %-14s %.2f\n", $1, ($3 - $2) / hz }'
done
