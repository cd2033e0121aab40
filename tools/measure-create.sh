#!/usr/bin/env bash
# tools/measure-create.sh [NFILES] - small-file creation with 1, 2 and 4
# writer processes (WRITERS="1 2 4"), landro alone (one mount, no peer)
# against the FUSE passthrough over tmpfs, taking turns: NFILES (default
# 10000) x 4 KiB files, each written and closed, split between the
# writers. Prints files/s. The figures in docs/PERFORMANCE.md ("Session
# 6") come from this script's scratch version. O=DIR takes landro from
# another build. Not part of make bench. Needs root and /dev/fuse.
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-10000}
B=$PWD/${O:-build}/bin
W=$(mktemp -d /tmp/landro-mcreate-XXXXXX)
cleanup() {
    set +e
    for m in "$W/lm" "$W/pm"; do mountpoint -q "$m" && fusermount3 -u -z "$m"; done
    mountpoint -q "$W/tm" && umount "$W/tm"
    sleep 0.2
    rm -rf "$W"
}
trap cleanup EXIT
cat > "$W/mk.py" <<'PY'
import os, sys, time
from multiprocessing import Process
d, n, w = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
os.mkdir(d)
buf = b"x" * 4096
def work(k):
    for i in range(k, n, w):
        with open(os.path.join(d, "f%06d" % i), "wb") as f:
            f.write(buf)
t0 = time.time()
ps = [Process(target=work, args=(k,)) for k in range(w)]
for p in ps: p.start()
for p in ps: p.join()
print("%.0f" % (n / (time.time() - t0)))
PY
mkdir -p "$W/lm" "$W/pm" "$W/tm"
mount -t tmpfs tmpfs "$W/tm"
"$B/landro" init --store "$W/s" >/dev/null
"$B/landro" mount --store "$W/s" --offline "$W/lm" 2>/dev/null
for w in ${WRITERS:-1 2 4}; do
    # a fresh passthrough per round: it keeps a descriptor per inode the
    # kernel remembers, and would run out of them over several rounds
    mkdir -p "$W/tm/src$w"
    "$B/landro-passthrough" "$W/tm/src$w" "$W/pm" 2>/dev/null & pt=$!
    for _ in $(seq 50); do mountpoint -q "$W/pm" && break; sleep 0.1; done
    p=$(python3 "$W/mk.py" "$W/pm/d" "$N" "$w")
    fusermount3 -u "$W/pm"; wait "$pt" 2>/dev/null || true
    l=$(python3 "$W/mk.py" "$W/lm/d$w" "$N" "$w")
    echo "$w writer(s): landro $l files/s, passthrough over tmpfs $p files/s, ratio $(awk -v a="$l" -v b="$p" 'BEGIN { printf "%.2f", a / b }')"
done
