#!/usr/bin/env bash
# tools/measure-randwrite-spill.sh [ROUNDS] - does landro's deferred work
# (the re-chunk after isolated small writes, fs.h "Small writes") slow
# the targets it takes turns with in tools/bench-fs.sh's random-write
# phase? Runs that phase's own script (randwritemix: 0.5 s turns, an fsync
# closing each) ROUNDS times (default 2) over 256 MiB files on the
# passthrough and the raw disk, once with a landro mount taking turns
# and once without, and prints the passthrough's and the disk's IOPS
# each way. Equal figures mean landro's background work is not charged
# to the others. docs/PERFORMANCE.md (session 13) has a run. Not part of
# make bench. Needs root and /dev/fuse.
set -euo pipefail
cd "$(dirname "$0")/.."
R=${1:-2}
B=$PWD/${O:-build}/bin
. tools/measure-lib.sh
measure_workdir mrws
sed -n '/^cat > "\$work\/b.py"/,/^PY$/p' tools/bench-fs.sh | sed '1d;$d' > "$W/b.py"
mkdir -p "$W/m" "$W/p" "$W/pm" "$W/raw"
"$B/landro" init --store "$W/s" >/dev/null
"$B/landro" mount --store "$W/s" --offline "$W/m"
"$B/landro-passthrough" "$W/p" "$W/pm" 2>/dev/null &
pt=$!
trap 'fusermount3 -u -z "$W/pm" 2>/dev/null; fusermount3 -u -z "$W/m" 2>/dev/null; kill $pt 2>/dev/null; measure_cleanup' EXIT
for _ in $(seq 50); do mountpoint -q "$W/pm" && break; sleep 0.1; done
head -c 256M /dev/urandom > "$W/r256"
for f in "$W/m/rnd" "$W/pm/rnd" "$W/raw/rnd"; do cp "$W/r256" "$f"; done
rm -f "$W/r256"
sync
for r in $(seq "$R"); do
    mapfile -t w < <(python3 "$W/b.py" randwritemix 0.5 10 "$W/pm/rnd" "$W/raw/rnd" "$W/m/rnd")
    echo "round $r, landro taking turns: passthrough ${w[0]}, disk ${w[1]} (landro ${w[2]}) IOPS"
    mapfile -t w < <(python3 "$W/b.py" randwritemix 0.5 10 "$W/pm/rnd" "$W/raw/rnd")
    echo "round $r, without landro:      passthrough ${w[0]}, disk ${w[1]} IOPS"
done
