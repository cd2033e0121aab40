#!/usr/bin/env bash
# test_sync_chain.sh - three mounted peers in a chain, C - B - A: C does
# not know A. A file written on A (which pushes nothing: --copies 0) is
# read on C at once: C asks B, B holds nothing of it, so C asks again
# with the relay flag and B fetches the chunks from A for it. The bytes
# are equal; B keeps what it relayed, so C still reads the file with A
# gone. Needs root and /dev/fuse. Prints "N passed, N failed".
NAME=chain PORTBASE=47500
. "$(dirname "$0")/peers_lib.sh"

peers a b c || { echo "init failed"; echo "0 passed, 1 failed"; exit 1; }
# Break the triangle: A and C forget each other.
"$L" peer remove --store "$T/a" "$("$L" id --store "$T/c")" >/dev/null &&
"$L" peer remove --store "$T/c" "$("$L" id --store "$T/a")" >/dev/null ||
    { echo "peer remove failed"; echo "0 passed, 1 failed"; exit 1; }
up a --copies 0 && up b && up c || { echo "mount failed"; cat "$T"/log-*; exit 1; }

head -c 16777216 /dev/urandom > "$T/ref.bin"
cp "$T/ref.bin" "$T/mnt-a/chain.bin"
echo "written on A" > "$T/mnt-a/small.txt"
check "C lists A's file (metadata relays through B)" wait_for 30 same_size "$T/ref.bin" "$T/mnt-c/chain.bin"
wait_for 30 same_size "$T/mnt-a/small.txt" "$T/mnt-c/small.txt"
check "C reads A's small file through B" grep -q "written on A" "$T/mnt-c/small.txt"
check "C reads A's 16 MiB file through B, byte for byte" cmp -s "$T/ref.bin" "$T/mnt-c/chain.bin"
# Every chunk of the file came to B from A (status counts them; the
# counters are sampled about once a second).
total=$(getfattr --only-values -n user.landro.chunks "$T/mnt-c/chain.bin" 2>/dev/null | cut -d/ -f2)
b_received() { "$L" status --json --store "$T/b" | python3 -c '
import json, sys
print(sum(p["chunks_received"] for p in json.load(sys.stdin)["peers"]))'; }
b_has_all() { [ "$(b_received)" -ge "${total:-1}" ]; }
check "B fetched from A every chunk it relayed (${total:-?} chunks)" wait_for 10 b_has_all
"$L" unmount "$T/mnt-a"
echo 3 > /proc/sys/vm/drop_caches
check "with A gone, C still reads the file from B's copy" cmp -s "$T/ref.bin" "$T/mnt-c/chain.bin"

"$L" unmount "$T/mnt-c"
"$L" unmount "$T/mnt-b"
if [ "$fail" != 0 ]; then
    for x in a b c; do echo "--- log $x"; tail -n 20 "$T/log-$x" 2>/dev/null; done
fi
echo "$pass passed, $fail failed"
[ "$fail" = 0 ]
