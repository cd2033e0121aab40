#!/usr/bin/env bash
# test_fs_enospc.sh - a store on a small tmpfs filled by a writer of
# incompressible data: the writer gets ENOSPC (from write or close), the
# daemon keeps running, files committed before are intact, deleting the
# big file makes room again, and a remount finds everything committed.
# Then a mounted store whose deleted data left most of data.mdb free, on
# a disk too full for a compacting copy: compaction waits for room.
. "$(dirname "$0")/test_fs_lib.sh"

small=$work/small
mkdir -p "$small"
if ! mount -t tmpfs -o size=96m tmpfs "$small"; then
    echo "cannot mount a tmpfs (not root?)"; echo "0 passed, 1 failed"; exit 1
fi
trap 'fs_cleanup_small' EXIT
fs_cleanup_small() {
    if mountpoint -q "$mnt" 2>/dev/null; then fusermount3 -u -z "$mnt" 2>/dev/null; fi
    if [ -n "$daemon_pid" ]; then kill -TERM "$daemon_pid" 2>/dev/null; sleep 0.5; kill -KILL "$daemon_pid" 2>/dev/null; fi
    umount -l "$small" 2>/dev/null
    umount -l "$work/small2" 2>/dev/null
    rm -rf "$work"
}
store=$small/store

fs_init || { bad "landro init"; fs_finish; exit 1; }
check "mount" fs_mount
head -c 8M /dev/urandom > "$work/keep"
cp "$work/keep" "$mnt/keep"
check "file committed before the disk fills" cmp "$work/keep" "$mnt/keep"

out=$(timeout 120 $PY - "$mnt/big" <<'PY'
import os, sys
fd = os.open(sys.argv[1], os.O_CREAT | os.O_WRONLY, 0o644)
err = None
try:
    for i in range(1024):                 # at most 1 GiB: far beyond 96 MiB
        os.write(fd, os.urandom(1 << 20))
except OSError as e:
    err = e.errno
try:
    os.close(fd)
except OSError as e:
    err = err or e.errno
print(err)
PY
)
check "writer gets ENOSPC (got errno '$out')" [ "$out" = 28 ]
check "daemon still running after ENOSPC" kill -0 "$daemon_pid"
check "earlier file intact after ENOSPC" cmp "$work/keep" "$mnt/keep"
check "directory still listable" bash -c "ls '$mnt' | grep -qx keep"
check "deleting the big file works" rm -f "$mnt/big"
sleep 2  # let the kernel forget it and the reaper delete it
check "writing works again after the delete" bash -c "head -c 4M /dev/urandom > '$work/after' && cp '$work/after' '$mnt/after' && cmp '$work/after' '$mnt/after'"
check "unmount" fs_unmount
check "remount" fs_mount
check "committed files intact after remount" bash -c "cmp '$work/keep' '$mnt/keep' && cmp '$work/after' '$mnt/after'"
check "unmount at the end" fs_unmount

# Compaction needs the live data's size on the disk and 64 MiB besides
# (st_compact_open); without them it is put off, looked at again every
# 5 s (fs.c, compact_tick), and done once room comes back.
small2=$work/small2
mkdir -p "$small2"
check "a second tmpfs" mount -t tmpfs -o size=160m tmpfs "$small2"
store=$small2/store
fs_init || bad "landro init on the second tmpfs"
check "mount it" fs_mount
head -c 80M /dev/urandom > "$work/big2"
check "an 80 MiB file committed" bash -c "cp '$work/big2' '$mnt/big2' && sync '$mnt/big2'"
dd if=/dev/zero of="$small2/filler" bs=1M status=none 2>/dev/null
check "the disk is full besides (filler: $(stat -c %s "$small2/filler") bytes)" \
    test "$(df --output=avail -B1M "$small2" | tail -n1)" -lt 64
check "the 80 MiB file deleted" rm "$mnt/big2"
check "compaction put off: no room on the disk for its copy" \
    wait_until 20 grep -q "store compaction put off: the disk has no room" "$work/daemon.log"
check "said once, not as a failure" bash -c "[ \$(grep -c 'put off: the disk has no room' '$work/daemon.log') = 1 ] && ! grep -q 'cannot compact' '$work/daemon.log'"
len0=$(stat -c %s "$store/data.mdb")
check "room on the disk again (filler deleted)" rm "$small2/filler"
check "then the mounted store compacts within seconds" wait_until 15 grep -q "store compacted" "$work/daemon.log"
check "data.mdb shrank from $len0 bytes" test "$(stat -c %s "$store/data.mdb")" -lt $((len0 / 4))
check "unmount the second store" fs_unmount
check "landro-fsck -n finds it clean" "$LANDRO" fsck -n "$store"
fs_finish
