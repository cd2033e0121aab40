#!/usr/bin/env bash
# test_versions.sh - previous versions on a real mount: an edit after a
# quiet period keeps the old data, `landro versions` lists it, `landro
# restore` writes it to another file or back in place (which keeps the
# replaced data as a version in turn), errors are clear, and landro-fsck
# finds the store clean (version references counted).
# Needs root and /dev/fuse. Prints "N passed, N failed".
NAME=versions PORTBASE=48900
. "$(dirname "$0")/peers_lib.sh"
F=$PWD/${O:-build}/bin/landro-fsck
M=$T/mnt-a

"$L" init --store "$T/a" >/dev/null
mkdir -p "$M"
"$L" mount --store "$T/a" --offline "$M" 2>/dev/null || { echo "mount failed"; echo "0 passed, 1 failed"; exit 1; }

echo "first draft" > "$M/doc.txt"
touch -d '1 hour ago' "$M/doc.txt"           # the editing session is over
echo "second draft, longer" > "$M/doc.txt"
"$L" versions "$M/doc.txt" > "$T/v1.out" 2>&1
check "versions lists the kept version" grep -qE '^ +1 +12 bytes' "$T/v1.out"
echo "more in the same session" >> "$M/doc.txt"
"$L" versions "$M/doc.txt" > "$T/v2.out" 2>&1
check "edits in the same session keep no new version" test "$(grep -cE '^ +[0-9]+ ' "$T/v2.out")" = 1
"$L" restore "$M/doc.txt" --version 1 --output "$T/old.txt" > "$T/r1.out" 2>&1
check "restore --output writes the old data" grep -qx "first draft" "$T/old.txt"
check "the file itself is unchanged" grep -q "more in the same session" "$M/doc.txt"
touch -d '1 hour ago' "$M/doc.txt"
"$L" restore "$M/doc.txt" --version 1 > "$T/r2.out" 2>&1
check "restore in place brings the old data back" sh -c "[ \"\$(cat '$M/doc.txt')\" = 'first draft' ]"
"$L" versions "$M/doc.txt" > "$T/v3.out" 2>&1
check "the replaced data is kept as a version in turn" grep -qE '^ +2 +46 bytes' "$T/v3.out"
check "restore of a missing version fails clearly" sh -c "'$L' restore '$M/doc.txt' --version 99 2>&1 >/dev/null | grep -q 'has no version 99'"
check "versions of a file outside landro fails clearly" sh -c "'$L' versions /etc/hostname 2>&1 | grep -q 'not on a mounted landro'"
check "a file with no history says so" sh -c "echo x > '$M/new'; '$L' versions '$M/new' | grep -q 'no previous versions'"
"$L" unmount "$M"
"$F" -n "$T/a" > "$T/fsck.out" 2>&1
check "landro-fsck finds the store clean (version references counted)" test $? = 0

if [ "$fail" != 0 ]; then for o in "$T"/*.out; do echo "--- $o"; cat "$o"; done; fi
echo "$pass passed, $fail failed"
[ "$fail" = 0 ]
