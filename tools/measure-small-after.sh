#!/usr/bin/env bash
# tools/measure-small-after.sh [ROUNDS] - landro's small-file rates on a
# fresh store, then after a large file was written and deleted: the state
# bench-fs.sh's small-file phase finds after its sequential phase. One
# mount (offline); each round creates, stats, reads and unlinks 10000 x 4
# KiB files (1.5 s apart, as bench-fs.sh) and prints ops/s per phase and
# the daemon's CPU microseconds per file over the round, and its page
# faults; at the end data.mdb's length and LMDB's free list. Between the fresh rounds and the later ones a SIZE_MIB (default
# 1024) file of random bytes is written and fsync'd, the store remounted
# and the page cache dropped, the file read and deleted, twice (as
# bench-fs.sh's sequential rounds do); its pages go to LMDB's free list.
# RAND=1: instead of the large file, what bench-fs.sh's random phase
# leaves: three times a 256 MiB file written, rewritten by random 4 KiB
# writes for 5 s (an fsync every 0.5 s) and deleted.
# COMPACT=1 runs `landro compact` on the store (unmounted) before the
# later rounds. (Since session 16 the daemon compacts by itself once most
# of the file is free: the later rounds then show the store after that,
# and "data.mdb" at the end says whether it happened.)
# Not part of make bench (one target only, no baseline: a diagnosis of
# landro against itself). O=DIR takes landro from another build. Needs
# root and /dev/fuse.
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${1:-2}
SIZE=${SIZE_MIB:-1024}
B=$PWD/${O:-build}/bin
. tools/measure-lib.sh
measure_workdir msma
mkdir -p "$W/m"
cat > "$W/small.py" <<'PY'
import os, sys, time
d, n = sys.argv[1], 10000
data = os.urandom(4096)
os.makedirs(d)
names = [os.path.join(d, "f%05d" % i) for i in range(n)]
def create(p):
    fd = os.open(p, os.O_CREAT | os.O_WRONLY | os.O_EXCL, 0o644); os.write(fd, data); os.close(fd)
def read(p):
    fd = os.open(p, os.O_RDONLY); os.read(fd, 8192); os.close(fd)
res = []
for k, f in enumerate((create, os.stat, read, os.unlink)):
    if k: time.sleep(1.5)
    t = time.monotonic()
    for p in names: f(p)
    res.append("%.0f" % (n / (time.monotonic() - t)))
os.rmdir(d)
print(" ".join(res))
PY
pid=
mount_l() {
    "$B/landro" mount --store "$W/s" --offline "$W/m" 2>/dev/null
    pid=$(pgrep -f "landro mount --store $W/s " | head -n1)
}
umount_l() {
    fusermount3 -u "$W/m"
    while kill -0 "$pid" 2>/dev/null; do sleep 0.1; done
}
stat_of() { awk '{ print $14 + $15, $10 + $12 }' "/proc/$1/stat"; }
round() { # round LABEL
    local c0 f0 c1 f1 r
    read -r c0 f0 <<<"$(stat_of "$pid")"
    r=$(python3 "$W/small.py" "$W/m/d")
    read -r c1 f1 <<<"$(stat_of "$pid")"
    echo "$1: create/stat/read/unlink $r ops/s; daemon $(( (c1 - c0) * 1000000 / $(getconf CLK_TCK) / 10000 )) us CPU per file, $((f1 - f0)) page faults"
}
"$B/landro" init --store "$W/s" >/dev/null
mount_l
for r in $(seq "$ROUNDS"); do round "fresh store, round $r"; done
if [ -n "${RAND:-}" ]; then
    cat > "$W/rand.py" <<'PY'
import os, random, sys, time
fd = os.open(sys.argv[1], os.O_CREAT | os.O_RDWR | os.O_TRUNC, 0o644)
for i in range(256):
    os.write(fd, os.urandom(1 << 20))
os.fsync(fd)
order = list(range(65536)); random.Random(1).shuffle(order)
buf, pos = os.urandom(4096), 0
for j in range(10):
    end = time.monotonic() + 0.5
    while time.monotonic() < end:
        for k in range(pos, pos + 64):
            os.pwrite(fd, buf, order[k % 65536] * 4096)
        pos += 64
    os.fsync(fd)
os.close(fd)
PY
    for _ in 1 2 3; do
        python3 "$W/rand.py" "$W/m/rnd"
        rm "$W/m/rnd"
    done
    what="a 256 MiB file randomly rewritten and deleted three times"
else
    head -c "${SIZE}M" /dev/urandom > "$W/big.src"
    for _ in 1 2; do
        dd if="$W/big.src" of="$W/m/big" bs=1M conv=fsync status=none
        umount_l; sync; echo 3 > /proc/sys/vm/drop_caches; mount_l
        cat "$W/m/big" > /dev/null
        rm "$W/m/big"
    done
    rm "$W/big.src"
    what="${SIZE} MiB written and deleted twice"
fi
sleep 5 # the reaper deletes the file's chunks
if [ -n "${COMPACT:-}" ]; then
    umount_l
    "$B/landro" compact --store "$W/s"
    mount_l
fi
for r in $(seq "$ROUNDS"); do round "after $what, round $r"; done
echo "data.mdb: $(stat -c %s "$W/s/data.mdb") bytes"
# LMDB's free list (mdb_stat -ef, read while the daemon runs): its size
# after the delete is what the later rounds pay for.
mdb_stat -ef "$W/s" | awk '/^Freelist Status/ { f = 1 } /^Status of Main DB/ { f = 0 }
    f && /Tree depth|Leaf pages|Entries|Free pages/ { sub(/^ +/, ""); printf "%s%s", sep, $0; sep = ", " }
    END { print "" }' | sed 's/^/free list: /'

