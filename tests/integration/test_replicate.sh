#!/usr/bin/env bash
# test_replicate.sh - background replication (mount --replicate, or
# replicate = yes in landro.conf): a device keeps a full copy of data
# written elsewhere without reading it, so it still has every byte after
# the writer is gone; files present before the mount are caught up too.
# Needs root and /dev/fuse. Prints "N passed, N failed".
NAME=replicate PORTBASE=49200
. "$(dirname "$0")/peers_lib.sh"

peers a b
up a
# early.bin: B learns of it while mounted without replication.
up b
head -c 10000000 /dev/urandom > "$T/early"
cp "$T/early" "$T/mnt-a/early.bin"
wait_for 30 sh -c "[ \$(stat -c %s '$T/mnt-b/early.bin' 2>/dev/null) = 10000000 ]"
"$L" unmount "$T/mnt-b"
head -c 20000000 /dev/urandom > "$T/before"
cp "$T/before" "$T/mnt-a/before.bin"       # written while B is down
echo 'replicate = yes' > "$T/b/landro.conf"
up b
head -c 30000000 /dev/urandom > "$T/after"
cp "$T/after" "$T/mnt-a/after.bin"         # written while B is mounted

local_all() { # every chunk of file $1 is held on B (user.landro.chunks = N/N)
    local v
    v=$(getfattr --only-values -n user.landro.chunks "$1" 2>/dev/null) || return 1
    [ -n "$v" ] && [ "${v%/*}" = "${v#*/}" ] && [ "${v#*/}" != 0 ]
}
check "a file B knew but never read is copied once replication is on" wait_for 60 local_all "$T/mnt-b/early.bin"
check "a file written while B was down is copied to B unread" wait_for 60 local_all "$T/mnt-b/before.bin"
check "a file written while B is mounted is copied to B unread" wait_for 60 local_all "$T/mnt-b/after.bin"
"$L" unmount "$T/mnt-a"
check "with A gone, B reads the files intact" sh -c "cmp -s '$T/early' '$T/mnt-b/early.bin' && cmp -s '$T/before' '$T/mnt-b/before.bin'"
check "with A gone, B reads the last file intact" cmp -s "$T/after" "$T/mnt-b/after.bin"
"$L" unmount "$T/mnt-b"
check "a bad replicate value is refused" sh -c "echo 'replicate = maybe' > '$T/b/landro.conf'; ! '$L' mount --store '$T/b' '$T/mnt-b' 2>&1 | grep -q 'bad replicate'; test \$? = 1"
echo "$pass passed, $fail failed"
[ "$fail" = 0 ]
