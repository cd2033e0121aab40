#!/usr/bin/env bash
# test_sync_forget.sh - deletions are forgotten after forget_deleted_after
# (replica.h, "FORGETTING DELETIONS"), and peers agree on what that means.
# All three stores say 3s. C holds old/note.txt and goes away; A deletes
# it and churns 500 scratch files (created, written, deleted) while B is
# connected. A and B must drop their tombstones within seconds (A keeps
# the one of its greatest file id) and A, at its next compaction, the log
# records that named only those files. C comes back still holding
# old/note.txt: past the period the deletion counts for nothing, so A
# and B both take the file back and all three end with the same tree.
# Needs root and /dev/fuse. Prints "N passed, N failed".
NAME=forget PORTBASE=47500
. "$(dirname "$0")/peers_lib.sh"

peers a b c || { echo "init failed"; echo "0 passed, 1 failed"; exit 1; }
for x in a b c; do echo "forget_deleted_after = 3s" > "$T/$x/landro.conf"; done
up a && up b && up c || { echo "mount failed"; cat "$T"/log-*; exit 1; }

mkdir -p "$T/mnt-a/keep/deep" "$T/mnt-a/old"
for i in $(seq -w 0 19); do echo "kept $i" > "$T/mnt-a/keep/deep/f$i"; done
echo "a note C will bring back" > "$T/mnt-a/old/note.txt"
tree_listing "$T/mnt-a" > "$T/want"
check "C holds A's tree" wait_for 60 same_tree c
"$L" unmount "$T/mnt-c"

rm "$T/mnt-a/old/note.txt"
churn "$T/mnt-a" 500
rmdir "$T/mnt-a/scratch"
tree_listing "$T/mnt-a" > "$T/want"
check "B holds A's tree" wait_for 60 same_tree b

tombs() { db_entries "$1" tomb; }
# (the tombstone of A's greatest file id stays: replica.h says why)
collected() { [ "$(tombs a)" = 1 ] && [ "$(tombs b)" = 0 ]; }
# about 45 records stay on A (each kept file's create and last write, the
# directories'); the churn made some 1500
short_log() { local n; n=$(db_entries a log); [ -n "$n" ] && [ "$n" -lt 100 ]; }
echo "     A's log: $(db_entries a log) records, $(tombs a) tombstones"
wait_for 30 collected
check "A and B forgot the 502 deletions (tombstones left: A $(tombs a), B $(tombs b))" collected
wait_for 30 short_log
check "A's log dropped their records ($(db_entries a log) records left)" short_log
echo "     A: $("$L" status "$T/mnt-a" | grep "^history:")"
check "status: A remembers 1 deleted file, for 3 s" sh -c "'$L' status '$T/mnt-a' | grep -q '^history: .*, 1 deleted file remembered (for 3 s after deletion)'"
check "status --json: B remembers none, for 3 s" python3 -c '
import json, subprocess, sys
d = json.loads(subprocess.check_output(sys.argv[1:]))["history"]
assert d["tombstones"] == 0 and d["log_records"] > 0 and d["forget_deleted_after_s"] == 3, d
' "$L" status --json --store "$T/b"

up c || { echo "mount failed"; cat "$T"/log-c; exit 1; }
echo "a note C will bring back" > "$T/note"
back_everywhere() {
    local x
    for x in a b c; do cmp -s "$T/note" "$T/mnt-$x/old/note.txt" || return 1; done
}
check "C, back after the period, brings old/note.txt back to A and B" wait_for 60 back_everywhere
tree_listing "$T/mnt-a" > "$T/want"
check "B has the same tree as A" wait_for 30 same_tree b
check "C has the same tree as A" wait_for 30 same_tree c
diff "$T/want" "$T/got-c" | head -n 5

peers_done
