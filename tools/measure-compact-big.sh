#!/usr/bin/env bash
# tools/measure-compact-big.sh [KEEP_MIB] [GONE_MIB] - online compaction of
# a store larger than a few GiB: one mount (offline), a KEEP_MIB (default
# 2500) file kept and a GONE_MIB (default 3000) file written, synced and
# deleted, so more than half of data.mdb is free. Then (1) the mount is
# unmounted while the compacting copy is under way, timed from the
# unmount to the daemon's exit, and (2) mounted again and left alone
# until it logs the compaction. Prints both and data.mdb's lengths, then
# runs landro-fsck -n. Needs root, /dev/fuse and about KEEP + GONE MiB
# free on /tmp (and KEEP more for the copy). O=DIR takes landro from
# another build. Not part of make bench.
set -euo pipefail
cd "$(dirname "$0")/.."
KEEP=${1:-2500}
GONE=${2:-3000}
L=$PWD/${O:-build}/bin/landro
. tools/measure-lib.sh
measure_workdir mcbig
now() { date +%s.%N; }
daemon_gone() { ! pgrep -f "landro mount -f --store $W/s" >/dev/null; }
mkdir -p "$W/m"
"$L" init --store "$W/s" >/dev/null
"$L" mount -f --store "$W/s" "$W/m" 2>>"$W/log" &
for _ in $(seq 50); do mountpoint -q "$W/m" && break; sleep 0.1; done
head -c "${KEEP}M" /dev/urandom > "$W/m/keep"
head -c "${GONE}M" /dev/urandom > "$W/m/gone"
sync "$W/m/gone"
echo "data.mdb with both files: $(($(stat -c %s "$W/s/data.mdb") >> 20)) MiB"
rm "$W/m/gone"
end=$((SECONDS + 60))
until [ -s "$W/s/compact.tmp/data.mdb" ]; do
    [ $SECONDS -lt $end ] || { echo "measure-compact-big: no compaction began"; exit 1; }
    sleep 0.05
done
sleep 0.5
echo "copy under way: $(($(stat -c %s "$W/s/compact.tmp/data.mdb") >> 20)) MiB written"
t0=$(now)
fusermount3 -u "$W/m"
until daemon_gone; do sleep 0.02; done
t1=$(now)
python3 -c "import sys; print('unmount during the copy: %.2f s' % (float(sys.argv[2]) - float(sys.argv[1])))" "$t0" "$t1"
[ -e "$W/s/compact.tmp" ] && echo "compact.tmp left behind" || echo "no copy left behind"
echo "data.mdb after the unmount: $(($(stat -c %s "$W/s/data.mdb") >> 20)) MiB"
if grep -q "store compacted" "$W/log"; then
    echo "measure-compact-big: the copy was done before the unmount; use bigger files"
    exit 1
fi
: > "$W/log"
"$L" mount -f --store "$W/s" "$W/m" 2>>"$W/log" &
end=$((SECONDS + 600))
until grep -q "store compacted" "$W/log"; do
    [ $SECONDS -lt $end ] || { echo "measure-compact-big: no compaction within 600 s"; exit 1; }
    sleep 0.2
done
grep -o "store compacted.*" "$W/log"
[ "$(stat -c %s "$W/m/keep")" = $((KEEP << 20)) ] || { echo "measure-compact-big: keep has the wrong size"; exit 1; }
fusermount3 -u "$W/m"
until daemon_gone; do sleep 0.05; done
"$L" fsck -n "$W/s" | tail -n 1
