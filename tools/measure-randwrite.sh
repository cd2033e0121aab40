#!/usr/bin/env bash
# tools/measure-randwrite.sh ROUNDS BUILD... - random 4 KiB writes on one
# landro mount, for each build directory given (e.g. build build/prev),
# the builds taking turns ROUNDS times: a fresh store, a 256 MiB file of
# random bytes, remounted with caches dropped, then 5 s of 4 KiB pwrites
# at distinct random blocks and an fsync (what tools/bench-fs.sh's random
# write does). Prints "BUILD: writes, seconds, fsync seconds, IOPS" per
# round, then the CPU time of the daemon's FUSE workers and committer
# during the writes. READ_FIRST=1: 5 s of random 4 KiB reads before the
# writes and the daemon not --offline, as in bench-fs.sh's random phase.
# The st_file_writev A/B in docs/PERFORMANCE.md (session 11) came from
# this with READ_FIRST=0, the wider-stage A/B (session 12) with 1. Not
# part of make bench. Needs root and /dev/fuse.
set -euo pipefail
cd "$(dirname "$0")/.."
[ $# -ge 2 ] || { echo "usage: $0 ROUNDS BUILD..." >&2; exit 2; }
R=$1
shift
. tools/measure-lib.sh
measure_workdir mrw
READ_FIRST=${READ_FIRST:-0}
mnt() {
    local off=--offline
    [ "$READ_FIRST" = 1 ] && off=
    "$1/bin/landro" mount --store "$W/s" $off "$W/m" 2>/dev/null
}
# CPU ticks of the daemon serving $W/m, by thread name: "name ticks" lines.
threads_cpu() {
    local pid t
    pid=$(pgrep -f "landro mount --store $W/s" | head -1)
    for t in /proc/"$pid"/task/*; do
        echo "$(cat "$t/comm") $(awk '{ print $14 + $15 }' "$t/stat")"
    done | awk '{ a[$1] += $2 } END { for (k in a) print k, a[k] }' | sort
}
for _ in $(seq "$R"); do
    for b in "$@"; do
        rm -rf "$W/s" "$W/m"
        mkdir -p "$W/m"
        "$b/bin/landro" init --store "$W/s" >/dev/null
        mnt "$b"
        head -c 256M /dev/urandom > "$W/m/rnd"
        sync
        fusermount3 -u "$W/m"
        sleep 1
        echo 3 > /proc/sys/vm/drop_caches
        mnt "$b"
        if [ "$READ_FIRST" = 1 ]; then
            python3 - "$W/m/rnd" <<'PY'
import os, sys, time, random
fd = os.open(sys.argv[1], os.O_RDONLY)
os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_RANDOM)
order = list(range(os.fstat(fd).st_size // 4096)); random.Random(2).shuffle(order)
n, end = 0, time.monotonic() + 5
while time.monotonic() < end and n < len(order):
    for b in order[n:n + 64]: os.pread(fd, 4096, b * 4096)
    n += 64
PY
        fi
        threads_cpu > "$W/cpu0"
        echo "$b: $(python3 - "$W/m/rnd" <<'PY'
import os, sys, time, random
fd = os.open(sys.argv[1], os.O_RDWR)
os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_RANDOM)
nblk = os.fstat(fd).st_size // 4096
order = list(range(nblk)); random.Random(1).shuffle(order)
buf = os.urandom(4096); n = 0
t = time.monotonic(); end = t + 5
while time.monotonic() < end and n < nblk:
    for b in order[n:n + 64]: os.pwrite(fd, buf, b * 4096)
    n += 64
t1 = time.monotonic(); os.fsync(fd); t2 = time.monotonic(); os.close(fd)
print("%d writes in %.2f s, fsync %.2f s, %.0f IOPS" % (n, t1 - t, t2 - t1, n / (t2 - t)))
PY
)"
        threads_cpu > "$W/cpu1"
        echo "    CPU ms: $(join "$W/cpu0" "$W/cpu1" |
            awk -v hz="$(getconf CLK_TCK)" '$3 > $2 { printf "%s %d  ", $1, ($3 - $2) * 1000 / hz }')"
        fusermount3 -u "$W/m"
        sleep 1
    done
done
