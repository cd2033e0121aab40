#!/usr/bin/env bash
# tools/measure-catchup.sh [CHURN] [LIVE] - how long a new peer takes to
# catch up with a volume that has history: on A, LIVE (default 2000)
# small files are made, then CHURN (default 20000) scratch files are
# created, written and deleted; 15 s later (so A's reaper has looked at
# its log: fs.h) B, a new peer, mounts, and the time until B lists all
# LIVE files and the file A made last is printed, with A's log size. O=DIR takes landro from
# another build (e.g. one without log compaction). Not part of make bench.
# Needs root and /dev/fuse.
set -euo pipefail
cd "$(dirname "$0")/.."
CHURN=${1:-20000}
LIVE=${2:-2000}
L=$PWD/${O:-build}/bin/landro
T=$(mktemp -d /tmp/landro-mcatch-XXXXXX)
PA=$((46100 + RANDOM % 200)); PB=$((PA + 1))
cleanup() {
    set +e
    for m in "$T/ma" "$T/mb"; do mountpoint -q "$m" && fusermount3 -u -z "$m"; done
    pkill -f "landro mount .*$T" 2>/dev/null
    sleep 0.2
    rm -rf "$T"
}
trap cleanup EXIT
mkdir -p "$T/ma" "$T/mb"
"$L" init --store "$T/a" >/dev/null
"$L" init --store "$T/b" --volume "$("$L" volume --store "$T/a")" >/dev/null
"$L" peer add --store "$T/a" "$("$L" id --store "$T/b")" "127.0.0.1:$PB"
"$L" peer add --store "$T/b" "$("$L" id --store "$T/a")" "127.0.0.1:$PA"
"$L" mount --store "$T/a" --listen "127.0.0.1:$PA" "$T/ma" 2>/dev/null
python3 - "$T/ma" "$CHURN" "$LIVE" <<'PY'
import os, sys
a, churn, live = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
os.mkdir(a + "/live"); os.mkdir(a + "/scratch")
for i in range(live):
    with open("%s/live/f%06d" % (a, i), "w") as f:
        f.write("live %d\n" % i)
for i in range(churn):
    p = "%s/scratch/t%06d" % (a, i)
    with open(p, "w") as f:
        f.write("scratch %d\n" % i)
    os.unlink(p)
open(a + "/last", "w").close()
PY
sleep 15
records=$(mdb_stat -s log "$T/a" | awk '/Entries:/ { print $2 }')
t0=$(date +%s.%N)
"$L" mount --store "$T/b" --listen "127.0.0.1:$PB" "$T/mb" 2>/dev/null
until [ -e "$T/mb/last" ] && [ "$(ls "$T/mb/live" 2>/dev/null | wc -l)" = "$LIVE" ]; do sleep 0.05; done
t1=$(date +%s.%N)
python3 -c "import sys; print('A: %s changes, log %s records; B caught up in %.2f s' % (sys.argv[1], sys.argv[2], float(sys.argv[4]) - float(sys.argv[3])))" \
    "$((LIVE * 2 + CHURN * 3 + 3))" "$records" "$t0" "$t1"
