#!/usr/bin/env bash
# test_sync_forget.sh - deletions are forgotten after forget_deleted_after
# (replica.h, "FORGETTING DELETIONS"). A's landro.conf says 3s, B keeps
# the default (90 days). On A a tree is made and 500 scratch files are
# created and deleted while B is connected. A must drop every tombstone
# but that of its greatest file id within seconds and, at its next compaction, the log records that named
# only those files; B must keep its tombstones; C, a new peer, must end
# with the same tree as A and B. Needs root and /dev/fuse.
# Prints "N passed, N failed".
NAME=forget PORTBASE=47500
. "$(dirname "$0")/peers_lib.sh"

peers a b c || { echo "init failed"; echo "0 passed, 1 failed"; exit 1; }
echo "forget_deleted_after = 3s" > "$T/a/landro.conf"
up a && up b || { echo "mount failed"; cat "$T"/log-*; exit 1; }

mkdir -p "$T/mnt-a/keep/deep"
for i in $(seq -w 0 19); do echo "kept $i" > "$T/mnt-a/keep/deep/f$i"; done
churn "$T/mnt-a" 500
rmdir "$T/mnt-a/scratch"

# (the tombstone of A's greatest file id stays: replica.h says why)
no_tombs() { [ "$(db_entries "$1" tomb)" = 1 ]; }
# about 45 stay (each kept file's create and last write, the directories');
# the churn made some 1500
short_log() { local n; n=$(db_entries a log); [ -n "$n" ] && [ "$n" -lt 100 ]; }

tree_listing "$T/mnt-a" > "$T/want"
check "B holds A's tree" wait_for 60 same_tree b
echo "     A's log: $(db_entries a log) records, $(db_entries a tomb) tombstones"
wait_for 30 no_tombs a
check "A forgot 500 of its 501 deletions ($(db_entries a tomb) tombstone left)" no_tombs a
wait_for 30 short_log
check "A's log dropped their records ($(db_entries a log) records left)" short_log
# landro status shows both sides of it
tomb_line() { "$L" status "$T/mnt-$1" | grep "^history:"; }
echo "     A: $(tomb_line a)"
echo "     B: $(tomb_line b)"
check "status: A remembers 1 deleted file, for 3 s" sh -c "'$L' status '$T/mnt-a' | grep -q '^history: .*, 1 deleted file remembered (for 3 s after deletion)'"
check "status --json: B's tombstones and its 90 days" python3 -c '
import json, subprocess, sys
d = json.loads(subprocess.check_output(sys.argv[1:]))["history"]
assert d["tombstones"] >= 501 and d["log_records"] > 0 and d["forget_deleted_after_s"] == 90 * 86400, d
' "$L" status --json --store "$T/b"
tb=$(db_entries b tomb)
check "B, keeping deletions 90 days, still holds its $tb tombstones" [ "${tb:-0}" -ge 501 ]

up c || { echo "mount failed"; cat "$T"/log-c; exit 1; }
check "C, a new peer, gets the same tree" wait_for 60 same_tree c
diff "$T/want" "$T/got-c" | head -n 5

peers_done
