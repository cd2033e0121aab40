#!/usr/bin/env bash
# test_sync_forget.sh - deletions are forgotten after forget_deleted_after
# (replica.h, "FORGETTING DELETIONS"). A's landro.conf says 3s, B keeps
# the default (90 days). On A a tree is made and 500 scratch files are
# created and deleted while B is connected. A must drop every tombstone
# within seconds and, at its next compaction, the log records that named
# only those files; B must keep its tombstones; C, a new peer, must end
# with the same tree as A and B. Needs root and /dev/fuse.
# Prints "N passed, N failed".
NAME=forget PORTBASE=47500
. "$(dirname "$0")/peers_lib.sh"

peers a b c || { echo "init failed"; echo "0 passed, 1 failed"; exit 1; }
echo "forget_deleted_after = 3s" > "$T/a/landro.conf"
up a && up b || { echo "mount failed"; cat "$T"/log-*; exit 1; }

python3 - "$T/mnt-a" <<'PY'
import os, sys
a = sys.argv[1]
os.makedirs(a + "/keep/deep")
for i in range(20):
    with open("%s/keep/deep/f%02d" % (a, i), "w") as f:
        f.write("kept %d\n" % i)
os.mkdir(a + "/scratch")
for i in range(500):
    p = "%s/scratch/t%03d" % (a, i)
    with open(p, "w") as f:
        f.write("scratch %d\n" % i)
    os.unlink(p)
os.rmdir(a + "/scratch")
PY

listing() { # path, type, mode, size and checksum of every file under $1
    (cd "$1" && find . -printf '%p %y %m %s\n' | sort &&
        find . -type f -print0 | sort -z | xargs -0 -r md5sum)
}
count() { mdb_stat -s "$2" "$T/$1" 2>/dev/null | awk '/Entries:/ { print $2 }'; }
no_tombs() { [ "$(count "$1" tomb)" = 0 ]; }
# about 45 stay (each kept file's create and last write, the directories');
# the churn made some 1500
short_log() { local n; n=$(count a log); [ -n "$n" ] && [ "$n" -lt 100 ]; }

listing "$T/mnt-a" > "$T/want"
same_as_a() { listing "$T/mnt-$1" > "$T/got-$1" && cmp -s "$T/want" "$T/got-$1"; }
check "B holds A's tree" wait_for 60 same_as_a b
echo "     A's log: $(count a log) records, $(count a tomb) tombstones"
wait_for 30 no_tombs a
check "A forgot its 501 deletions ($(count a tomb) tombstones left)" no_tombs a
wait_for 30 short_log
check "A's log dropped their records ($(count a log) records left)" short_log
tb=$(count b tomb)
check "B, keeping deletions 90 days, still holds its $tb tombstones" [ "${tb:-0}" -ge 501 ]

up c || { echo "mount failed"; cat "$T"/log-c; exit 1; }
check "C, a new peer, gets the same tree" wait_for 60 same_as_a c
diff "$T/want" "$T/got-c" | head -n 5

for x in c b a; do "$L" unmount "$T/mnt-$x"; done
if [ "$fail" != 0 ]; then
    for x in a b c; do echo "--- log $x"; tail -n 20 "$T/log-$x" 2>/dev/null; done
fi
echo "$pass passed, $fail failed"
[ "$fail" = 0 ]
