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
PY
churn "$A" 4000
python3 - "$A" <<'PY'
import os, sys
a = sys.argv[1]
for i in range(0, 50, 2):
    with open("%s/docs/deep/f%02d.txt" % (a, i), "w") as f:
        f.write("second %d\n" % i)
os.mkdir(a + "/later")
os.rename(a + "/docs/deep", a + "/later/deep")
os.chmod(a + "/later/deep", 0o750)
with open(a + "/later/big.bin", "wb") as f:
    f.write(os.urandom(3 << 20))
PY

log_records() { db_entries "$1" log; }
compacted() { local n; n=$(log_records "$1"); [ -n "$n" ] && [ "$n" -lt 6000 ]; }

tree_listing "$A" > "$T/want"
check "B holds A's tree, bytes and all" wait_for 90 same_tree b
echo "     A's log: $(log_records a) records (about 12150 changes were made)"
wait_for 40 compacted a
check "A's log dropped the deleted files' history ($(log_records a) records left)" compacted a
# (B's log holds what it applied, which depends on how often it caught up
# during the churn: often below the 10000 that start a compaction.)

up c || { echo "mount failed"; cat "$T"/log-c; exit 1; }
check "C, a new peer, gets the same tree from the compacted logs" wait_for 90 same_tree c
diff "$T/want" "$T/got-c" | head -n 5

peers_done
