#!/usr/bin/env bash
# test_sync_compact.sh - the change log stays small and a new peer still
# gets everything. A and B mounted; on A a tree is made and then churned
# (4000 scratch files created, written and deleted: 12000 log records for
# files that no longer exist, files rewritten, a directory renamed into
# one made later). A compacts its log (replica.h, "LOG COMPACTION";
# looked at every 10 s): the records of deleted files but the last go.
# Then C, a new peer, mounts and must end with the same tree, names,
# modes and bytes, as A and B. Needs root and /dev/fuse.
# Prints "N passed, N failed".
NAME=compact PORTBASE=46500
. "$(dirname "$0")/peers_lib.sh"

peers a b c || { echo "init failed"; echo "0 passed, 1 failed"; exit 1; }
up a && up b || { echo "mount failed"; cat "$T"/log-*; exit 1; }

A=$T/mnt-a
python3 - "$A" <<'PY'
import os, sys
a = sys.argv[1]
os.makedirs(a + "/docs/deep")
for i in range(50):
    with open("%s/docs/deep/f%02d.txt" % (a, i), "w") as f:
        f.write("first %d\n" % i)
os.mkdir(a + "/scratch")
for i in range(4000):
    p = "%s/scratch/t%05d" % (a, i)
    with open(p, "w") as f:
        f.write("scratch %d\n" % i)
    os.unlink(p)
for i in range(0, 50, 2):
    with open("%s/docs/deep/f%02d.txt" % (a, i), "w") as f:
        f.write("second %d\n" % i)
os.mkdir(a + "/later")
os.rename(a + "/docs/deep", a + "/later/deep")
os.chmod(a + "/later/deep", 0o750)
with open(a + "/later/big.bin", "wb") as f:
    f.write(os.urandom(3 << 20))
PY

listing() { # path, type, mode, size and checksum of every file under $1
    (cd "$1" && find . -printf '%p %y %m %s\n' | sort &&
        find . -type f -print0 | sort -z | xargs -0 -r md5sum)
}
log_records() { mdb_stat -s log "$T/$1" 2>/dev/null | awk '/Entries:/ { print $2 }'; }
compacted() { local n; n=$(log_records "$1"); [ -n "$n" ] && [ "$n" -lt 6000 ]; }

listing "$A" > "$T/want"
same_as_a() { listing "$T/mnt-$1" > "$T/got-$1" && cmp -s "$T/want" "$T/got-$1"; }
check "B holds A's tree, bytes and all" wait_for 90 same_as_a b
echo "     A's log: $(log_records a) records (about 12150 changes were made)"
wait_for 40 compacted a
check "A's log dropped the deleted files' history ($(log_records a) records left)" compacted a
# (B's log holds what it applied, which depends on how often it caught up
# during the churn: often below the 10000 that start a compaction.)

up c || { echo "mount failed"; cat "$T"/log-c; exit 1; }
check "C, a new peer, gets the same tree from the compacted logs" wait_for 90 same_as_a c
diff "$T/want" "$T/got-c" | head -n 5

for x in c b a; do "$L" unmount "$T/mnt-$x"; done
if [ "$fail" != 0 ]; then
    for x in a b c; do echo "--- log $x"; tail -n 20 "$T/log-$x" 2>/dev/null; done
fi
echo "$pass passed, $fail failed"
[ "$fail" = 0 ]
