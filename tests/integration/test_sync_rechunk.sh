#!/usr/bin/env bash
# test_sync_rechunk.sh - isolated small writes and their re-chunking seen
# from a peer. A and B mounted; B reads A's 8 MiB file whole. A makes 200
# random 4 KiB writes (an fsync every 40): B reads A's new bytes at once,
# fetching the small chunks. A re-chunks the file a few seconds later (fs.h,
# "Small writes"): B adopts the new cut (the same extent count as A's),
# reads the same bytes, fetching the new chunks, and neither side makes a
# conflict copy. Both stores are clean for landro-fsck afterwards. Needs
# root and /dev/fuse. Prints "N passed, N failed".
NAME=rechunk PORTBASE=47500
. "$(dirname "$0")/peers_lib.sh"

peers a b || { echo "init failed"; echo "0 passed, 1 failed"; exit 1; }
up a && up b || { echo "mount failed"; cat "$T"/log-*; exit 1; }
A=$T/mnt-a B=$T/mnt-b

total() { local v; v=$(getfattr --only-values -n user.landro.chunks "$1" 2>/dev/null) && echo "${v#*/}"; }
sum() { sha256sum < "$1" | cut -d' ' -f1; }

head -c $((8 << 20)) /dev/urandom > "$T/ref"
cp "$T/ref" "$A/db"
check "B lists A's file, complete" wait_for 30 same_size "$B/db" "$T/ref"
check "B reads A's file ($(total "$A/db") extents)" wait_for 30 sh -c "cmp -s '$B/db' '$T/ref'"

python3 "$(dirname "$0")/scatter_write.py" "$A/db" "$T/ref" 11 200 40
frag=$(total "$A/db")
want=$(sum "$T/ref")
# A's fresh copy of the final bytes: how a content-defined cut looks.
cp "$T/ref" "$A/fresh"
fresh=$(total "$A/fresh")
check "right after the writes A's file has more extents ($frag) than a fresh copy ($fresh)" \
    test "${frag:-0}" -gt "$((fresh + 100))"
check "B reads A's new bytes" wait_for 30 sh -c "[ \"\$(sha256sum < '$B/db' | cut -d' ' -f1)\" = '$want' ]"

recut() { [ "$(total "$A/db")" = "$fresh" ] && [ "$(total "$B/db")" = "$fresh" ]; }
check "A re-chunks its file and B adopts the cut ($fresh extents on both)" wait_for 30 recut
echo "     A: $(total "$A/db") extents, B: $(total "$B/db")"
check "B reads the same bytes after the re-chunk" test "$(sum "$B/db")" = "$want"
check "A's bytes are unchanged by it" test "$(sum "$A/db")" = "$want"
check "no conflict copy on A" test -z "$(ls "$A" | grep sync-conflict)"
check "no conflict copy on B" test -z "$(ls "$B" | grep sync-conflict)"

"$L" unmount "$B" && "$L" unmount "$A"
check "landro-fsck -n finds A's store clean" "$L" fsck -n "$T/a"
check "landro-fsck -n finds B's store clean" "$L" fsck -n "$T/b"
peers_done
