#!/usr/bin/env bash
# test_fs_enospc.sh - a store on a small tmpfs filled by a writer of
# incompressible data: the writer gets ENOSPC (from write or close), the
# daemon keeps running, files committed before are intact, deleting the
# big file makes room again, and a remount finds everything committed.
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
fs_finish
