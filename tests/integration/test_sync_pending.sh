#!/usr/bin/env bash
# test_sync_pending.sh - records that wait for their directory are never
# lost. On A, 300 files are made in a directory that is then moved into
# a directory made after them; B, a new peer, gets each file's record
# before the directory the file now lies in, so they wait in memory.
# B's landro.conf allows only 50 to wait (max_pending): the rest are
# dropped, and B must ask A for them again once the directories have
# landed (it used to note them as applied and never have them). Needs
# root and /dev/fuse. Prints "N passed, N failed".
NAME=pending PORTBASE=45500
. "$(dirname "$0")/peers_lib.sh"

peers a b || { echo "init failed"; echo "0 passed, 1 failed"; exit 1; }
echo "max_pending = 50" > "$T/b/landro.conf"
up a || { echo "mount failed"; cat "$T"/log-*; exit 1; }
python3 - "$T/mnt-a" <<'PY'
import os, sys
a = sys.argv[1]
os.mkdir(a + "/d")
for i in range(300):
    with open("%s/d/f%03d" % (a, i), "w") as f:
        f.write("file %d\n" % i)
os.mkdir(a + "/new")
os.rename(a + "/d", a + "/new/d")
PY
up b -f &  # in the foreground: its messages go to $T/log-b
mounted() { grep -q " $T/mnt-b fuse" /proc/self/mounts; }
wait_for 20 mounted || { echo "mount failed"; cat "$T"/log-*; exit 1; }
all_there() { [ "$(ls "$T/mnt-b/new/d" 2>/dev/null | wc -l)" = 300 ]; }
check "B has all 300 files, though only 50 records could wait" wait_for 60 all_there
check "B read the last one" grep -qx "file 299" "$T/mnt-b/new/d/f299"
check "B asked again for the records it dropped" grep -q "asking a peer again" "$T/log-b"

"$L" unmount "$T/mnt-b"
"$L" unmount "$T/mnt-a"
wait
if [ "$fail" != 0 ]; then
    for x in a b; do echo "--- log $x"; tail -n 20 "$T/log-$x" 2>/dev/null; done
fi
echo "$pass passed, $fail failed"
[ "$fail" = 0 ]
