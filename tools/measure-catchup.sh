#!/usr/bin/env bash
# tools/measure-catchup.sh [CHURN] [LIVE] - how long a new peer takes to
# catch up with a volume that has history: on A, LIVE (default 2000)
# small files are made, then CHURN (default 20000) scratch files are
# created, written and deleted; 15 s later (so A's reaper has looked at
# its log: fs.h) B, a new peer, mounts, and the time until B lists all
# LIVE files and the file A made last is printed, with A's log size.
# O=DIR takes landro from another build (e.g. one without log
# compaction). Not part of make bench. Needs root and /dev/fuse.
NAME=mcatch PORTBASE=46100
. "$(dirname "$0")/../tests/integration/peers_lib.sh" # $L, $T, peers, up
set -e
CHURN=${1:-20000}
LIVE=${2:-2000}
peers a b
up a
python3 - "$T/mnt-a" "$CHURN" "$LIVE" <<'PY'
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
records=$(db_entries a log)
t0=$(date +%s.%N)
up b
until [ -e "$T/mnt-b/last" ] && [ "$(ls "$T/mnt-b/live" 2>/dev/null | wc -l)" = "$LIVE" ]; do sleep 0.05; done
t1=$(date +%s.%N)
python3 -c "import sys; print('A: %s changes, log %s records; B caught up in %.2f s' % (sys.argv[1], sys.argv[2], float(sys.argv[4]) - float(sys.argv[3])))" \
    "$((LIVE * 2 + CHURN * 3 + 3))" "$records" "$t0" "$t1"
