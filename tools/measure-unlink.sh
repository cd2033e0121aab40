#!/usr/bin/env bash
# tools/measure-unlink.sh [NFILES] - small-file unlink rate and daemon CPU
# per unlink, landro against the passthrough, taking turns ROUNDS times
# (default 3): one process creates NFILES (default 10000) x 4 KiB files,
# waits 1.5 s, then unlinks them all; prints unlinks/s and the daemon's
# CPU microseconds per unlink (user + system, /proc/PID/stat). The
# figures in docs/PERFORMANCE.md ("Unlink") come from this. O=DIR takes
# landro from another build, to compare two trees. Not part of make bench.
# Needs root and /dev/fuse.
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-10000}
ROUNDS=${ROUNDS:-3}
B=$PWD/${O:-build}/bin
PT=$PWD/build/bin/landro-passthrough
. tools/measure-lib.sh
measure_workdir munl
cat > "$W/u.py" <<'PY'
import os, sys, time
d, n, go = sys.argv[1], int(sys.argv[2]), sys.argv[3]
os.makedirs(d, exist_ok=True)
names = [os.path.join(d, "f%05d" % i) for i in range(n)]
data = os.urandom(4096)
for p in names:
    fd = os.open(p, os.O_CREAT | os.O_WRONLY | os.O_EXCL, 0o644); os.write(fd, data); os.close(fd)
time.sleep(1.5)
open(go, "w").write("go")
time.sleep(0.3)
t = time.monotonic()
for p in names: os.unlink(p)
print("%.0f" % (n / (time.monotonic() - t)))
PY
ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }
one() { # one TARGET: prints "rate us-per-unlink"
    rm -rf "$W/m" "$W/s" "$W/src" "$W/go"; mkdir -p "$W/m"
    local pid
    if [ "$1" = passthrough ]; then
        mkdir "$W/src"; "$PT" "$W/src" "$W/m" 2>/dev/null & pid=$!
        for _ in $(seq 50); do mountpoint -q "$W/m" && break; sleep 0.1; done
    else
        "$B/landro" init --store "$W/s" >/dev/null
        "$B/landro" mount --store "$W/s" --offline "$W/m" 2>/dev/null
        pid=$(pgrep -f "landro mount --store $W/s " | head -n1)
    fi
    python3 "$W/u.py" "$W/m/d" "$N" "$W/go" > "$W/rate" & local py=$!
    while [ ! -e "$W/go" ]; do sleep 0.05; done
    local c0; c0=$(ticks "$pid")
    wait "$py"
    local c1; c1=$(ticks "$pid")
    fusermount3 -u "$W/m"
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    echo "$(cat "$W/rate") $(( (c1 - c0) * 1000000 / $(getconf CLK_TCK) / N ))"
}
for r in $(seq "$ROUNDS"); do
    read -r lr lc <<<"$(one landro)"
    read -r pr pc <<<"$(one passthrough)"
    echo "round $r: landro $lr unlinks/s ($lc us CPU each), passthrough $pr unlinks/s ($pc us), ratio $(awk -v a="$lr" -v b="$pr" 'BEGIN { printf "%.2f", a / b }')"
done
