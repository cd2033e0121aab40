#!/usr/bin/env bash
# test_fs_crash.sh - kill -9 of the daemon during write loops: after a
# remount the store opens, every fsynced byte is there, everything written
# before (and closed) is intact, and no file holds bytes that were never
# written. Then fsx-style churn survives an unmount/remount unchanged.
. "$(dirname "$0")/test_fs_lib.sh"

fs_init || { bad "landro init"; fs_finish; exit 1; }
check "mount" fs_mount
cp -a /usr/include/linux "$mnt/tree"
(cd "$mnt/tree" && find . -type f -print0 | sort -z | xargs -0 md5sum) > "$work/tree.sums"

# Writers: each appends 64 KiB records (record n holds bytes derived from
# n) to its own file, fsyncs every 4 records and then records on the real
# disk how many records were fsynced.
cat > "$work/writer.py" <<'PY'
import os, sys
path, prog, fsync_every = sys.argv[1], sys.argv[2], int(sys.argv[3])
REC = 65536
def rec(n):
    return bytes(((n * 131 + i * 7) & 0xff for i in range(256))) * (REC // 256)
fd = os.open(path, os.O_CREAT | os.O_WRONLY | os.O_TRUNC, 0o644)
pfd = os.open(prog, os.O_CREAT | os.O_WRONLY | os.O_TRUNC, 0o644)
n = 0
try:
    while True:
        os.write(fd, rec(n))
        n += 1
        if fsync_every and n % fsync_every == 0:
            os.fsync(fd)
            os.pwrite(pfd, b"%12d\n" % n, 0)
            os.fsync(pfd)
except OSError:
    pass
PY
cat > "$work/verify.py" <<'PY'
import os, sys
path, prog = sys.argv[1], sys.argv[2]
REC = 65536
def rec(n):
    return bytes(((n * 131 + i * 7) & 0xff for i in range(256))) * (REC // 256)
synced = int(open(prog).read().strip() or 0) if os.path.exists(prog) else 0
data = open(path, "rb").read()
if len(data) < synced * REC:
    sys.exit("%s: %d bytes, but %d records (%d bytes) were fsynced" % (path, len(data), synced, synced * REC))
for n in range(0, (len(data) + REC - 1) // REC):
    got = data[n * REC:(n + 1) * REC]
    if got != rec(n)[:len(got)]:
        sys.exit("%s: record %d holds bytes never written there" % (path, n))
print("%s: %d bytes, %d records fsynced" % (path, len(data), synced))
PY

round() {
    local r=$1 pids=()
    for w in 1 2 3; do
        $PY "$work/writer.py" "$mnt/w$r.$w" "$work/prog$r.$w" $([ $w = 3 ] && echo 0 || echo 4) &
        pids+=($!)
    done
    sleep 3
    kill -9 "$daemon_pid"
    wait "$daemon_pid" 2>/dev/null
    daemon_pid=
    fusermount3 -u -z "$mnt" 2>/dev/null || umount -l "$mnt"
    for p in "${pids[@]}"; do
        timeout 10 tail --pid="$p" -f /dev/null || kill -9 "$p"
    done
    wait "${pids[@]}" 2>/dev/null
    check "round $r: remount after kill -9" fs_mount
    for w in 1 2; do
        check "round $r: fsynced records of writer $w all there and correct" $PY "$work/verify.py" "$mnt/w$r.$w" "$work/prog$r.$w"
    done
    check "round $r: unsynced writer's file holds only bytes it wrote" $PY "$work/verify.py" "$mnt/w$r.3" /nonexistent
    check "round $r: earlier tree intact" bash -c "cd '$mnt/tree' && find . -type f -print0 | sort -z | xargs -0 md5sum | cmp - '$work/tree.sums'"
}
round 1
round 2

# Data written to a file that stays open commits within the age bound
# (5 s) even without close or fsync: after 8 s a kill -9 loses nothing.
head -c 3000000 /dev/urandom > "$work/aged"
$PY -c "
import os, sys, time
fd = os.open(sys.argv[1], os.O_CREAT | os.O_WRONLY, 0o644)
os.write(fd, open(sys.argv[2], 'rb').read())
time.sleep(60)" "$mnt/aged" "$work/aged" &
holder=$!
sleep 8
kill -9 "$daemon_pid"; wait "$daemon_pid" 2>/dev/null; daemon_pid=
kill -9 "$holder"; wait "$holder" 2>/dev/null
# The dead mount stays until someone unmounts it; landro mount does that
# itself instead of failing with "something is already mounted there".
check "the dead daemon's mount answers ENOTCONN" sh -c "stat -f '$mnt' 2>&1 | grep -q 'not connected'"
check "remount after kill -9 with no manual unmount" sh -c "'$LANDRO' mount --store '$store' '$mnt' 2>'$work/remount.err'"
check "it says it removed the dead mount" grep -q "left mounted by a landro daemon that is gone" "$work/remount.err"
check "bytes staged in an open file were committed by the age bound" cmp "$mnt/aged" "$work/aged"
check "store still consistent: every file readable" bash -c "find '$mnt' -type f -print0 | xargs -0 cat > /dev/null"
check "unmount of the detached daemon" "$LANDRO" unmount "$mnt"
check "mounted again in the foreground" fs_mount
kill -9 "$daemon_pid"; wait "$daemon_pid" 2>/dev/null; daemon_pid=
check "landro unmount takes a dead daemon's mount away" "$LANDRO" unmount "$mnt"
check "... leaving nothing mounted" sh -c "! grep -q ' $mnt ' /proc/mounts"
check "mounted again" fs_mount

# fsx churn, then compare with the same deterministic run on the real disk.
FSX=$top/${O:-build}/bin/landro-fsx
check "landro-fsx 100k operations (seed 1) on the mount" timeout 300 "$FSX" -q -N 100000 -S 1 "$mnt/fsx"
check "landro-fsx 5k operations, 4 MiB file, 300 KiB ops (seed 2)" timeout 300 "$FSX" -q -N 5000 -S 2 -l 4194304 -o 300000 "$mnt/fsx2"
"$FSX" -q -N 100000 -S 1 "$work/fsx.ref" && "$FSX" -q -N 5000 -S 2 -l 4194304 -o 300000 "$work/fsx2.ref"
check "unmount" fs_unmount
check "remount" fs_mount
check "fsx file equals the reference run after remount" cmp "$mnt/fsx" "$work/fsx.ref"
check "second fsx file equals its reference after remount" cmp "$mnt/fsx2" "$work/fsx2.ref"
check "unmount at the end" fs_unmount
fs_finish
