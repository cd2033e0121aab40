#!/usr/bin/env bash
# tools/measure-seqwrite.sh [SIZE_MIB] - sequential write on one landro
# mount with the daemon's CPU per thread: mounts a fresh store, waits
# PAUSE seconds (default 8: on the development VM memory left idle that
# long is slow to touch again), writes SIZE_MIB (default 1024) MiB of
# random bytes in 1 MiB calls, fsyncs, prints MB/s and each daemon
# thread's user/system seconds (/proc/PID/task). The "Sequential write"
# figures of docs/PERFORMANCE.md (session 5) come from this; O=DIR takes
# landro from another build. Not part of make bench. Needs root, /dev/fuse.
set -euo pipefail
cd "$(dirname "$0")/.."
SIZE=${1:-1024}
B=$PWD/${O:-build}/bin
. tools/measure-lib.sh
measure_workdir msw
head -c $((SIZE << 20)) /dev/urandom > "$W/src"
"$B/landro" init --store "$W/store" >/dev/null
mkdir "$W/m"
"$B/landro" mount --store "$W/store" "$W/m" 2>/dev/null
pid=$(pgrep -n -f "landro mount --store $W/store")
sleep "${PAUSE:-8}"
python3 - "$W/m/big" "$W/src" <<'PY'
import os, sys, time
s = os.open(sys.argv[2], os.O_RDONLY); fd = os.open(sys.argv[1], os.O_CREAT | os.O_WRONLY | os.O_TRUNC, 0o644)
t = time.monotonic(); n = 0
while True:
    b = os.read(s, 1 << 20)
    if not b: break
    n += os.write(fd, b)
os.fsync(fd); os.close(fd)
print("write %.1f MB/s" % (n / (time.monotonic() - t) / 1e6))
PY
for t in /proc/$pid/task/*; do
    awk -v c="$(cat "$t/comm")" '{ if ($14 + $15 > 5) printf "  %-14s user %.2f s, system %.2f s\n", c, $14 / 100, $15 / 100 }' "$t/stat"
done
