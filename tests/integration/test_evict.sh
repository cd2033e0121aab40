#!/usr/bin/env bash
# test_evict.sh - copy counting, the cache quota, pin/unpin and pushing new
# data to peers (issue #5 "pin and evict", #7 status):
#  - B reads A's files past its quota: the least recently used chunks go,
#    but only chunks A confirms holding; re-reading fetches them again;
#  - a pinned file stays whole under pressure; unpin lets it go;
#  - data written on B that no peer holds is never evicted, and status
#    counts it as not replicated; once pushed to A (copies = 1) it counts
#    as replicated and may go;
#  - with A gone, evicted data fails with EIO in bound, the rest reads;
#  - a peer whose cache is full declines a push and the next peer gets it;
#  - reading to the end of a file prefetches the next files of the directory;
#  - a daemon that stops announces the chunks it fetched in its last second.
# Needs root and /dev/fuse. Prints "N passed, N failed".
NAME=evict PORTBASE=49700
. "$(dirname "$0")/peers_lib.sh"

MiB=1048576
QUOTA=$((6 * MiB))
json() { # json NAME EXPR: evaluate EXPR over B's (or A's) status document d
    "$L" status --json --store "$T/$1" 2>/dev/null |
        python3 -c "import json,sys; d=json.load(sys.stdin); print($2)"
}
chunks() { getfattr --absolute-names --only-values -n user.landro.chunks "$1" 2>/dev/null; }
# whole: every chunk here, and there are chunks (0/0 is a file whose data
# record has not arrived yet)
whole() { local v; v=$(chunks "$1") && [ -n "$v" ] && [ "${v#*/}" != 0 ] && [ "${v%/*}" = "${v#*/}" ]; }
partial() { local v; v=$(chunks "$1") && [ -n "$v" ] && [ "${v%/*}" != "${v#*/}" ]; }
under_quota() { [ "$(json b "d['cache']['bytes'] <= $QUOTA")" = True ]; }

peers a b
up a --copies 0
up b --cache-quota $QUOTA --push-after 1
for f in f1 f2 f3 f4; do
    head -c $((8 * MiB)) /dev/urandom > "$T/$f"
    cp "$T/$f" "$T/mnt-a/$f"
done
wait_for 30 sh -c "[ \$(stat -c %s '$T/mnt-b/f4' 2>/dev/null) = $((8 * MiB)) ]"

check "status shows the quota" sh -c "[ \"\$(\"$L\" status --store '$T/b' | grep -c 'quota 6.0 MiB')\" = 1 ]"
for f in f1 f2 f3; do cmp -s "$T/$f" "$T/mnt-b/$f" || bad "B reads $f"; done
check "B evicts down to its quota after reading 24 MiB" wait_for 20 under_quota
check "status counts evicted chunks" test "$(json b "d['cache']['evicted_chunks'] > 0")" = True
check "the least recently used file lost chunks" partial "$T/mnt-b/f1"
check "re-reading an evicted file fetches it again, intact" cmp -s "$T/f1" "$T/mnt-b/f1"

# reading to the end of a file prefetches the next files of its directory
mkdir "$T/mnt-a/tree"
for i in 01 02 03 04 05 06 07 08 09 10; do head -c 5000 /dev/urandom > "$T/mnt-a/tree/s$i"; done
# (each file's data record follows its create within the sender's 50 ms:
# wait for the last one's size, not only its name)
wait_for 30 sh -c "[ \$(stat -c %s '$T/mnt-b/tree/s10' 2>/dev/null) = 5000 ]"
check "before a read, a small file of A is not on B" partial "$T/mnt-b/tree/s05"
cat "$T/mnt-b/tree/s01" > /dev/null
check "reading the first file of a directory fetches the next ones" wait_for 10 whole "$T/mnt-b/tree/s10"
check "and they read as A wrote them" cmp -s "$T/mnt-a/tree/s07" "$T/mnt-b/tree/s07"

# pin: f2 stays whole while f3 and f4 are read
"$L" pin -q "$T/mnt-b/f2" >/dev/null
check "pin marks the file" test "$(getfattr --absolute-names --only-values -n user.landro.pinned "$T/mnt-b/f2")" = 1
check "pin makes the file whole" whole "$T/mnt-b/f2"
for f in f3 f4; do dd if="$T/mnt-b/$f" iflag=nocache count=0 status=none; cat "$T/mnt-b/$f" > /dev/null; done
sleep 3
wait_for 20 under_quota
check "a pinned file stays whole under pressure" whole "$T/mnt-b/f2"
head -c $MiB /dev/urandom >> "$T/mnt-a/f2"
cat "$T/mnt-a/f2" > "$T/f2"
check "a peer's change to a pinned file is fetched without a read" wait_for 20 sh -c \
    "[ \$(stat -c %s '$T/mnt-b/f2') = $((9 * MiB)) ] && v=\$(getfattr --absolute-names --only-values -n user.landro.chunks '$T/mnt-b/f2') && [ \"\${v%/*}\" = \"\${v#*/}\" ]"
check "and reads as A wrote it" cmp -s "$T/f2" "$T/mnt-b/f2"
mkdir "$T/mnt-b/keep"
"$L" pin -q "$T/mnt-b/keep" >/dev/null
check "a pinned directory is marked" test "$(getfattr --absolute-names --only-values -n user.landro.pinned "$T/mnt-b/keep")" = 1

# B's own data: no peer holds it, so it stays, and status says so
head -c $((8 * MiB)) /dev/urandom > "$T/g"
cp "$T/g" "$T/mnt-b/keep/g"   # under the pinned dir: pinned
head -c $((4 * MiB)) /dev/urandom > "$T/h"
cp "$T/h" "$T/mnt-b/h"
sleep 3
check "data only B holds is never evicted" whole "$T/mnt-b/h"
check "a file in a pinned directory stays whole" whole "$T/mnt-b/keep/g"
# A has no quota: B pushes h and g (copies = 1, after 1 s) and A fetches them
check "A gets a copy of B's new files in the background" wait_for 30 whole "$T/mnt-a/h"
check "B's status then counts no file as unreplicated" wait_for 20 sh -c "[ \"\$(\"$L\" status --json --store '$T/b' | python3 -c 'import json,sys; print(json.load(sys.stdin)[\"unreplicated_files\"])')\" = 0 ]"
check "A's copy is intact" cmp -s "$T/h" "$T/mnt-a/h"
# The first scan walks the store; later ones look only at changed files
# and those still short of copies.
check "replication scans after the first look only at changed files" \
    wait_for 20 sh -c "[ \"\$(\"$L\" status --json --store '$T/b' | python3 -c 'import json,sys; s=json.load(sys.stdin)[\"replication_scan\"]; print(s[\"whole_store\"] is False and s[\"files\"] < 20)')\" = True ]"
check "once A holds it, B may evict it" wait_for 20 partial "$T/mnt-b/h"

# unpin lets f2 go
"$L" unpin -q "$T/mnt-b/f2" >/dev/null
check "unpin clears the mark" test "$(getfattr --absolute-names --only-values -n user.landro.pinned "$T/mnt-b/f2")" = 0
for f in f3 f1; do dd if="$T/mnt-b/$f" iflag=nocache count=0 status=none; cat "$T/mnt-b/$f" > /dev/null; done
check "an unpinned file may be evicted again" wait_for 20 partial "$T/mnt-b/f2"

# A goes away: what B evicted fails in bound, the rest reads
"$L" unmount "$T/mnt-a"
start=$SECONDS
dd if="$T/mnt-b/f2" iflag=nocache count=0 status=none   # drop the kernel's cached pages
check "with A gone, an evicted file fails with EIO" sh -c "! cat '$T/mnt-b/f2' > /dev/null 2>'$T/err' && grep -q 'Input/output error' '$T/err'"
check "within the fetch bound" test $((SECONDS - start)) -lt 30
check "the pinned directory's file still reads" cmp -s "$T/g" "$T/mnt-b/keep/g"

check "a bad cache_quota is refused" sh -c "echo 'cache_quota = lots' > '$T/a/landro.conf'; '$L' mount --store '$T/a' '$T/mnt-a' 2>&1 | grep -q 'bad cache_quota'"
check "a bad --copies is refused" sh -c "'$L' mount --copies 99 --store '$T/a' '$T/mnt-a' 2>&1 | grep -q 'bad --copies'"
"$L" unmount "$T/mnt-b"

# Pushes go round: y's cache is full (a pinned file past its quota), so it
# declines x's offer and x offers the file to z instead.
peers x y z
up x --copies 1 --push-after 1
up y --copies 0 --cache-quota 1M
up z --copies 0
head -c $((2 * MiB)) /dev/urandom > "$T/mnt-y/ybig"
setfattr -n user.landro.pinned -v 1 "$T/mnt-y/ybig"
head -c $((2 * MiB)) /dev/urandom > "$T/xnew"
cp "$T/xnew" "$T/mnt-x/xnew"
check "a peer with a full cache declines, the next one takes the push" wait_for 60 whole "$T/mnt-z/xnew"
check "y kept out of it" sh -c "v=\$(getfattr --absolute-names --only-values -n user.landro.chunks '$T/mnt-y/xnew') && [ \"\${v%/*}\" = 0 ]"
check "z's pushed copy is intact" cmp -s "$T/xnew" "$T/mnt-z/xnew"
# with no peer online, x's new file is counted as not replicated until z
# comes back and takes it
unreplicated() { [ "$("$L" status --json --store "$T/$1" | python3 -c 'import json,sys; print(json.load(sys.stdin)["unreplicated_files"])')" = "$2" ]; }
# z announces the chunks it fetched at most once a second (HAVE): let x
# learn of the last ones before z goes, or x counts xnew as well.
wait_for 20 unreplicated x 0
"$L" unmount "$T/mnt-y"; "$L" unmount "$T/mnt-z"
head -c $MiB /dev/urandom > "$T/mnt-x/alone"
check "status counts a file no peer holds yet" wait_for 20 unreplicated x 1
up z --copies 0
check "once z is back it takes the file and the count drops to 0" wait_for 40 unreplicated x 0
check "z holds it whole" whole "$T/mnt-z/alone"
for n in x z; do "$L" unmount "$T/mnt-$n"; done

# While it runs a daemon announces chunks it gained at most once a second;
# one that stops sends what it still owes on its way out, so its peers
# count its copies without waiting for it to come back.
peers p q
up p --copies 1 --push-after 3600
up q --copies 0
head -c $((4 * MiB)) /dev/urandom > "$T/mnt-p/pf"
wait_for 30 sh -c "[ \$(stat -c %s '$T/mnt-q/pf' 2>/dev/null) = $((4 * MiB)) ]"
check "p counts its new file as held by nobody else" wait_for 20 unreplicated p 1
cat "$T/mnt-q/pf" > /dev/null
"$L" unmount "$T/mnt-q"
check "q stopped right after reading it: p learns q holds it" wait_for 20 unreplicated p 0
"$L" unmount "$T/mnt-p"
echo "$pass passed, $fail failed"
[ "$fail" = 0 ]
