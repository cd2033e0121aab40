#!/usr/bin/env bash
# tools/bench-sync.sh [SIZE_MIB] [NFILES] - synchronization between two
# mounted peers on loopback, beside baselines measured in the same run:
#   cold read of a SIZE_MIB file held only by the other peer (MB/s), vs
#     reading the same bytes from a tmpfs file (and vs a local landro read)
#     and each daemon's CPU seconds per GiB during it
#   time to first byte of that file on the second peer (ms): open and
#     read of its first 4 KiB, timed inside one process, vs the same on
#     tmpfs
#   NFILES x 4 KiB files created on A until all are readable on B
#     (files/s), vs creating them on tmpfs and through a FUSE passthrough
#     over tmpfs (the floor any FUSE file system pays on this machine)
#   those NFILES files read in name order on B, data still only on A
#     (files/s), vs reading them again once local
# Needs root and /dev/fuse.
set -euo pipefail
cd "$(dirname "$0")/.."
SIZE=${1:-1024}
NFILES=${2:-10000}
L=$PWD/${O:-build}/bin/landro
T=$(mktemp -d /tmp/landro-bsync-XXXXXX)
PA=$((47700 + RANDOM % 200)); PB=$((PA + 1))
cleanup() {
    set +e
    for m in "$T/ma" "$T/mb" "$T/ptm"; do mountpoint -q "$m" && fusermount3 -u -z "$m"; done
    pkill -f "landro mount .*$T" 2>/dev/null
    mountpoint -q "$T/tmpfs" && umount "$T/tmpfs"
    sleep 0.2
    rm -rf "$T"
}
trap cleanup EXIT
now() { date +%s.%N; }
rate() { python3 -c "import sys; print('%.0f' % (float(sys.argv[1]) / (float(sys.argv[3]) - float(sys.argv[2]))))" "$@"; }
ratio() { python3 -c "import sys; print('%.2f' % (float(sys.argv[1]) / float(sys.argv[2])))" "$@"; }

mkdir -p "$T/ma" "$T/mb" "$T/tmpfs"
"$L" init --store "$T/a" >/dev/null
"$L" init --store "$T/b" --volume "$("$L" volume --store "$T/a")" >/dev/null
"$L" peer add --store "$T/a" "$("$L" id --store "$T/b")" "127.0.0.1:$PB"
"$L" peer add --store "$T/b" "$("$L" id --store "$T/a")" "127.0.0.1:$PA"
"$L" mount --store "$T/a" --listen "127.0.0.1:$PA" "$T/ma" 2>/dev/null
"$L" mount --store "$T/b" --listen "127.0.0.1:$PB" "$T/mb" 2>/dev/null
mount -t tmpfs -o size=$((SIZE + 256))m tmpfs "$T/tmpfs"

# The file: written on A, metadata replicated to B, data only on A.
head -c $((SIZE << 20)) /dev/urandom > "$T/tmpfs/src.bin"
cp "$T/tmpfs/src.bin" "$T/ma/big.bin"
sync "$T/ma/big.bin"
end=$((SECONDS + 60))
until [ "$(stat -c %s "$T/mb/big.bin" 2>/dev/null)" = $((SIZE << 20)) ]; do
    [ $SECONDS -lt $end ] || { echo "bench-sync: metadata did not reach B"; exit 1; }
    sleep 0.05
done

echo 3 > /proc/sys/vm/drop_caches
t0=$(now); dd if="$T/tmpfs/src.bin" of=/dev/null bs=1M status=none; t1=$(now)
tmpfs_rate=$(rate $((SIZE << 20)) "$t0" "$t1")

# Open and read the first 4 KiB, timed inside one process: timing a dd
# between two date(1) calls counted about 20 ms of process start-up on
# this machine.
first_byte() {
    python3 -c "import os, sys, time
t = time.perf_counter(); fd = os.open(sys.argv[1], os.O_RDONLY); os.read(fd, 4096)
print('%.1f' % ((time.perf_counter() - t) * 1000))" "$1"
}
ttfb_tmpfs_ms=$(first_byte "$T/tmpfs/src.bin")
ttfb_ms=$(first_byte "$T/mb/big.bin")
# Each daemon's CPU time (user + system, clock ticks) around the cold read:
# both share this machine's cores, so their sum bounds the rate.
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }
pid_a=$(pgrep -f "landro mount --store $T/a " | head -n1)
pid_b=$(pgrep -f "landro mount --store $T/b " | head -n1)
ca0=$(cpu_ticks "$pid_a"); cb0=$(cpu_ticks "$pid_b")
t0=$(now); dd if="$T/mb/big.bin" of=/dev/null bs=1M status=none; t1=$(now)
cold_rate=$(rate $((SIZE << 20)) "$t0" "$t1")
ca1=$(cpu_ticks "$pid_a"); cb1=$(cpu_ticks "$pid_b")
per_gib() { python3 -c "import sys, os; print('%.2f' % ((int(sys.argv[2]) - int(sys.argv[1])) / os.sysconf('SC_CLK_TCK') * 1024 / int(sys.argv[3])))" "$@"; }
cpu_b=$(per_gib "$cb0" "$cb1" "$SIZE"); cpu_a=$(per_gib "$ca0" "$ca1" "$SIZE")
cmp -s "$T/mb/big.bin" "$T/tmpfs/src.bin" || { echo "bench-sync: the bytes read on B differ"; exit 1; }
echo 3 > /proc/sys/vm/drop_caches
t0=$(now); dd if="$T/ma/big.bin" of=/dev/null bs=1M status=none; t1=$(now)
local_rate=$(rate $((SIZE << 20)) "$t0" "$t1")

# Small files: create on A, wait until B can read the last one. The same
# creator (one process, as tar or cp would) on tmpfs, and through a plain
# FUSE passthrough over tmpfs: every FUSE file system pays the kernel round
# trips (8 requests per file with this creator: Python's open() adds an
# isatty ioctl), so that is the floor for any of them.
# Timed inside the creating process, from its first create until (with a
# second directory) the last file reads whole there: timed from outside,
# with date(1), python's start-up and a stat(1) loop, it counted about
# 0.4 s more on this machine, a third of the figure at 2000 files.
cat > "$T/mk.py" <<'PY'
import os, sys, time
d, n = sys.argv[1], int(sys.argv[2])
os.mkdir(d)
buf = b"x" * 4096
t0 = time.perf_counter()
for i in range(n):
    with open(os.path.join(d, "f%06d" % i), "wb") as f:
        f.write(buf)
if len(sys.argv) > 3:  # wait until the last file reads whole on the peer
    last, end = os.path.join(sys.argv[3], "f%06d" % (n - 1)), t0 + 300
    while True:
        try:
            with open(last, "rb") as f:
                if len(f.read()) == len(buf):
                    break
        except OSError:
            pass
        if time.perf_counter() > end:
            sys.exit("bench-sync: small files did not reach B")
        time.sleep(0.002)
print(time.perf_counter() - t0)
PY
python3 "$T/mk.py" "$T/tmpfs/small" "$NFILES" > "$T/tmpfs_small.t"
mkdir -p "$T/tmpfs/pt" "$T/ptm"
"${L%/*}/landro-passthrough" "$T/tmpfs/pt" "$T/ptm" 2>/dev/null & ptpid=$!
for _ in $(seq 50); do mountpoint -q "$T/ptm" && break; sleep 0.1; done
python3 "$T/mk.py" "$T/ptm/small" "$NFILES" > "$T/pt_small.t"
fusermount3 -u "$T/ptm"; wait "$ptpid" 2>/dev/null || true
python3 "$T/mk.py" "$T/ma/small" "$NFILES" "$T/mb/small" > "$T/landro_small.t"
per_second() { python3 -c "import sys; print('%.0f' % (int(sys.argv[1]) / float(open(sys.argv[2]).read())))" "$@"; }
files_rate=$(per_second "$NFILES" "$T/landro_small.t")
tmpfs_files=$(per_second "$NFILES" "$T/tmpfs_small.t")
pt_files=$(per_second "$NFILES" "$T/pt_small.t")
count_b=$(find "$T/mb/small" -type f | wc -l)
# Reading that directory on B in name order (cp -r, tar): first with the
# data on A only (fetched on demand; the end of each file prefetches the
# next ones), then again with it local, after dropping the page cache.
readall() {
    python3 - "$1" <<'PY'
import os, sys, time
d = sys.argv[1]; names = sorted(os.listdir(d)); t0 = time.time()
for n in names:
    with open(os.path.join(d, n), "rb") as f:
        f.read()
print("%.0f" % (len(names) / (time.time() - t0)))
PY
}
remote_read=$(readall "$T/mb/small")
echo 3 > /proc/sys/vm/drop_caches
local_read=$(readall "$T/mb/small")

printf '%-52s %14s %14s %7s\n' "figure" "landro" "baseline" "ratio"
printf '%-52s %11s MB/s %9s MB/s %7s\n' "cold read of ${SIZE} MiB held only by the peer (vs tmpfs)" \
    $((cold_rate / 1000000)) $((tmpfs_rate / 1000000)) "$(ratio "$cold_rate" "$tmpfs_rate")"
printf '%-52s %12s s %15s %7s\n' "  CPU per GiB of that read: reader B (server A)" "$cpu_b" "($cpu_a s)" "-"
printf '%-52s %11s MB/s %9s MB/s %7s\n' "  same file read on the peer that holds it (vs tmpfs)" \
    $((local_rate / 1000000)) $((tmpfs_rate / 1000000)) "$(ratio "$local_rate" "$tmpfs_rate")"
printf '%-52s %12s ms %11s ms %7s\n' "time to first byte of that file on B (vs tmpfs)" "$ttfb_ms" "$ttfb_tmpfs_ms" "-"
printf '%-52s %9s files/s %6s files/s %7s\n' "${NFILES} x 4 KiB created on A, readable on B (vs tmpfs)" \
    "$files_rate" "$tmpfs_files" "$(ratio "$files_rate" "$tmpfs_files")"
printf '%-52s %9s files/s %6s files/s %7s\n' "  (vs creating them through a FUSE passthrough)" \
    "$files_rate" "$pt_files" "$(ratio "$files_rate" "$pt_files")"
printf '%-52s %9s files/s %6s files/s %7s\n' "  read in name order on B, from A (vs local)" \
    "$remote_read" "$local_read" "$(ratio "$remote_read" "$local_read")"
echo "($count_b files listed on B)"
# The two VM settings that bound the cold read and the small files here
# (docs/PERFORMANCE.md, "The VM's settings and the two unmet goals"):
# read, never changed.
hp=/sys/module/haltpoll/parameters/guest_halt_poll_ns
pr=/sys/module/page_reporting/parameters/page_reporting_order
if [ -r "$hp" ] || [ -r "$pr" ]; then
    echo "(this machine: guest_halt_poll_ns=$(cat "$hp" 2>/dev/null || echo -)," \
        "page_reporting_order=$(cat "$pr" 2>/dev/null || echo -); see tools/measure-platform.sh)"
fi
