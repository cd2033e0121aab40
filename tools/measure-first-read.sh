#!/usr/bin/env bash
# tools/measure-first-read.sh [ROUNDS] - latency of reading a peer's file:
# two daemons on loopback, a 256 MiB file (SIZE_MIB) written on A, its
# metadata awaited on B, the page cache dropped; then, timed inside one
# process on B: stat, open, the first 4 KiB (read-ahead of the file starts
# behind it), and 4 KiB at 100 MiB right after (a seek, which must not
# wait behind that read-ahead). ROUNDS (default 3) fresh pairs. The
# "first read" and "seek" figures in docs/PERFORMANCE.md come from this.
# O=DIR takes landro from another build. Not part of make bench. Needs
# root and /dev/fuse.
set -euo pipefail
cd "$(dirname "$0")/.."
L=$PWD/${O:-build}/bin/landro
SIZE=${SIZE_MIB:-256}
W=$(mktemp -d /tmp/landro-mfirst-XXXXXX)
cleanup() {
    set +e
    for m in "$W"/ma* "$W"/mb*; do mountpoint -q "$m" && fusermount3 -u -z "$m"; done
    sleep 0.3
    rm -rf "$W"
}
trap cleanup EXIT
for r in $(seq "${1:-3}"); do
    a=$W/a$r b=$W/b$r
    pa=$((47900 + RANDOM % 90)); pb=$((pa + 1))
    mkdir -p "$W/ma$r" "$W/mb$r"
    "$L" init --store "$a" >/dev/null
    "$L" init --store "$b" --volume "$("$L" volume --store "$a")" >/dev/null
    "$L" peer add --store "$a" "$("$L" id --store "$b")" "127.0.0.1:$pb"
    "$L" peer add --store "$b" "$("$L" id --store "$a")" "127.0.0.1:$pa"
    "$L" mount --store "$a" --listen "127.0.0.1:$pa" "$W/ma$r" 2>/dev/null
    "$L" mount --store "$b" --listen "127.0.0.1:$pb" "$W/mb$r" 2>/dev/null
    head -c $((SIZE << 20)) /dev/urandom > "$W/ma$r/big.bin"
    sync "$W/ma$r/big.bin"
    end=$((SECONDS + 60))
    until [ "$(stat -c %s "$W/mb$r/big.bin" 2>/dev/null)" = $((SIZE << 20)) ]; do
        [ $SECONDS -lt $end ] || { echo "measure-first-read: metadata did not reach B"; exit 1; }
        sleep 0.05
    done
    sleep 1
    echo 3 > /proc/sys/vm/drop_caches
    echo -n "round $r: "
    python3 - "$W/mb$r/big.bin" <<'PY'
import os, sys, time
p = sys.argv[1]
t0 = time.perf_counter(); os.stat(p); t1 = time.perf_counter()
fd = os.open(p, os.O_RDONLY); t2 = time.perf_counter()
os.read(fd, 4096); t3 = time.perf_counter()
os.pread(fd, 4096, 100 << 20); t4 = time.perf_counter()
print("stat %.1f ms, open %.1f ms, first read %.1f ms, seek (4 KiB at 100 MiB) %.1f ms"
      % ((t1 - t0) * 1e3, (t2 - t1) * 1e3, (t3 - t2) * 1e3, (t4 - t3) * 1e3))
PY
    fusermount3 -u "$W/mb$r"; fusermount3 -u "$W/ma$r"
done
