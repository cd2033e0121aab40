#!/usr/bin/env bash
# test_fsck_heal.sh - landro-fsck --heal-from-peers: a chunk damaged on
# disk is fetched again (hash verified) from a peer daemon that holds it,
# the store is clean afterwards and the file reads back intact; with no
# peer reachable the bytes are dropped and marked not local instead. The
# peer's store, which records which peers hold its chunks, checks clean.
# Needs root and /dev/fuse. Prints "N passed, N failed".
NAME=heal PORTBASE=48600
. "$(dirname "$0")/peers_lib.sh"
F=$PWD/${O:-build}/bin/landro-fsck
D=$PWD/${O:-build}/bin/landro-fsck-damage

peers a b
up a
up b
head -c 3000000 /dev/urandom > "$T/orig"
cp "$T/orig" "$T/mnt-a/file"
wait_for 20 sh -c "[ \$(stat -c %s '$T/mnt-b/file' 2>/dev/null) = 3000000 ]"
check "B holds a copy (read once)" cmp -s "$T/orig" "$T/mnt-b/file"
"$L" unmount "$T/mnt-a"

"$D" chunk-flip "$T/a" /file 1 >/dev/null
"$F" -y --heal-from-peers "$T/a" > "$T/out1" 2>&1
rc=$?
check "fsck -y --heal-from-peers repairs (exit 1)" test "$rc" = 1
check "the damaged chunk is fetched again from the peer" grep -q "fetched again from a peer" "$T/out1"
"$F" -n "$T/a" > "$T/out2" 2>&1
check "the healed store is clean (exit 0)" test $? = 0
up a --offline
check "the file reads back intact with no network" cmp -s "$T/orig" "$T/mnt-a/file"
"$L" unmount "$T/mnt-a"

"$L" unmount "$T/mnt-b"
# B fetched A's chunks, so its store records A as holding them (db
# "holder"): a healthy store with holder records is clean.
"$F" -n -v "$T/b" > "$T/out-b" 2>&1
check "B's store with its holder records is clean (exit 0)" test $? = 0
check "and pass 4 checked those holder records" grep -Eq "^Pass 4: .*, [1-9][0-9]* holder records" "$T/out-b"

# No peer reachable: the bytes are dropped, the chunk marked not local.
"$D" chunk-flip "$T/a" /file 0 >/dev/null
timeout 120 "$F" -y --heal-from-peers "$T/a" > "$T/out3" 2>&1
rc=$?
check "with no peer up fsck still repairs (exit 1)" test "$rc" = 1
check "it says the chunk was not healed" grep -q "not healed from peers" "$T/out3"
"$F" -n "$T/a" > /dev/null 2>&1
check "and the store is clean afterwards" test $? = 0
check "heal-from-peers with -n is a usage error (16)" sh -c "'$F' -n --heal-from-peers '$T/a' >/dev/null 2>&1; test \$? = 16"

if [ "$fail" != 0 ]; then for o in "$T"/out*; do echo "--- $o"; cat "$o"; done; fi
echo "$pass passed, $fail failed"
[ "$fail" = 0 ]
