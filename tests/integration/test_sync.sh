#!/usr/bin/env bash
# test_sync.sh - two and three mounted peers on loopback: replication of
# metadata, on-demand reads with equal checksums (48 MiB and 1 GiB), 10k
# small files, renames
# and deletes, concurrent edits (conflict copy, nothing lost), saves by
# rename (no conflict copy), a directory rename against a create inside
# it, kill -9 and
# catch-up, a peer killed mid-read (failover to a third peer, EIO in bound
# with two), partition and heal converging to identical trees.
# Needs root and /dev/fuse. Prints "N passed, N failed".
NAME=sync PORTBASE=47200
. "$(dirname "$0")/peers_lib.sh"

# Stores a, b, c in one volume, each trusting the other two.
peers a b c || { echo "init failed"; echo "0 passed, 1 failed"; exit 1; }
down() { "$L" unmount "$T/mnt-$1" 2>/dev/null; wait_for 10 sh -c "! pgrep -f 'landro mount --store $T/$1 ' >/dev/null"; }
daemon_pid() { pgrep -f "landro mount --store $T/$1 " | head -n1; }
same_file() { [ "$(sha256sum < "$1")" = "$(sha256sum < "$2")" ]; }
listing() { (cd "$1" && find . -printf '%y %m %s %p\n' | sort); }
checksums() { (cd "$1" && find . -type f -print0 | sort -z | xargs -0 -r sha256sum); }

up a && up b || { echo "mount failed"; cat "$T"/log-*; exit 1; }

# 1. a file and a tree written on A are read on B, byte for byte.
dd if=/dev/urandom of="$T/mnt-a/big.bin" bs=1M count=48 status=none
mkdir -p "$T/mnt-a/tree/sub"
cp -a store/*.h "$T/mnt-a/tree/sub/"
echo hello > "$T/mnt-a/tree/hello"
check "metadata reaches B" wait_for 20 same_size "$T/mnt-a/big.bin" "$T/mnt-b/big.bin"
check "file written on A reads on B with the same sha256" same_file "$T/mnt-a/big.bin" "$T/mnt-b/big.bin"
wait_for 20 same_size "$T/mnt-a/tree/hello" "$T/mnt-b/tree/hello"
check "tree written on A is identical on B" diff -r "$T/mnt-a/tree" "$T/mnt-b/tree"

# 1b. a 1 GiB file read on B while A still serves it: every chunk fetched
# on demand, verified, and the bytes equal.
head -c 1073741824 /dev/urandom > "$T/gib"
cp "$T/gib" "$T/mnt-a/gib.bin"
check "1 GiB file's metadata reaches B" wait_for 60 same_size "$T/gib" "$T/mnt-b/gib.bin"
check "1 GiB file reads on B byte for byte, fetched from A" cmp -s "$T/gib" "$T/mnt-b/gib.bin"
rm -f "$T/gib" "$T/mnt-a/gib.bin"

# 1c. B's kernel caches follow A's changes. The mount lets the kernel keep
# entries and attributes for 60 s (FS_TIMEOUT_S), so only landro's own
# invalidations can make B see these within the 5 s allowed here.
mkdir "$T/mnt-a/cache"
echo "first" > "$T/mnt-a/cache/data"
echo "doomed" > "$T/mnt-a/cache/gone"
echo "moving" > "$T/mnt-a/cache/old"
wait_for 20 test -f "$T/mnt-b/cache/old"
stat "$T/mnt-b/cache/data" "$T/mnt-b/cache/gone" "$T/mnt-b/cache/old" > /dev/null
cat "$T/mnt-b/cache/data" > /dev/null
ls "$T/mnt-b/cache" > /dev/null
stat "$T/mnt-b/cache/new" > /dev/null 2>&1 # a negative entry, cached too
chmod 600 "$T/mnt-a/cache/data"
echo "other" > "$T/mnt-a/cache/data" # same length, other bytes
echo "born" > "$T/mnt-a/cache/new"
rm "$T/mnt-a/cache/gone"
mv "$T/mnt-a/cache/old" "$T/mnt-a/cache/renamed"
check "B sees a cached file's new mode at once" wait_for 5 sh -c "[ \$(stat -c %a '$T/mnt-b/cache/data') = 600 ]"
check "B reads a cached file's new bytes at once" wait_for 5 sh -c "[ \"\$(cat '$T/mnt-b/cache/data')\" = other ]"
check "B sees a name it looked up in vain once A creates it" wait_for 5 test -f "$T/mnt-b/cache/new"
check "B loses a cached name A removed" wait_for 5 sh -c "! test -e '$T/mnt-b/cache/gone'"
check "B sees a cached name renamed" wait_for 5 sh -c "test -f '$T/mnt-b/cache/renamed' && ! test -e '$T/mnt-b/cache/old'"
rm -r "$T/mnt-a/cache"

# 1d. B looks for a name while A creates it among 1000 others: it shows
# up at once. A lookup that had read the store just before a peer's create
# was applied replied "no such file" after the invalidation had gone by,
# and the kernel kept that answer for 60 s (FS_TIMEOUT_S).
mkdir "$T/mnt-a/race"
wait_for 20 test -d "$T/mnt-b/race"
python3 - "$T/mnt-a/race" <<'PY' &
import os, sys
for i in range(1000):
    with open(os.path.join(sys.argv[1], "f%04d" % i), "wb") as f:
        f.write(b"x")
PY
maker=$!
check "B sees a name it polls for as soon as A's create of it lands" python3 - "$T/mnt-b/race" <<'PY'
import os, sys, time
end = time.monotonic() + 20
for i in (499, 999):
    p = os.path.join(sys.argv[1], "f%04d" % i)
    while not os.path.exists(p):
        if time.monotonic() > end:
            sys.exit("f%04d still missing on B after 20 s" % i)
        time.sleep(0.001)
PY
wait "$maker"

# 2. 10k small files.
python3 - "$T/mnt-a/many" <<'PY'
import os, sys
d = sys.argv[1]
os.mkdir(d)
for i in range(10000):
    sub = os.path.join(d, "d%02d" % (i % 50))
    if i < 50:
        os.mkdir(sub)
    with open(os.path.join(sub, "f%05d" % i), "wb") as f:
        f.write((b"file %d\n" % i) * (1 + i % 7))
PY
check "10k small files reach B" wait_for 60 sh -c "[ \$(find '$T/mnt-b/many' -type f | wc -l) -eq 10000 ]"
check "10k small files have equal contents on B" sh -c "[ \"\$(cd '$T/mnt-a/many' && cat d07/* d33/* | sha256sum)\" = \"\$(cd '$T/mnt-b/many' && cat d07/* d33/* | sha256sum)\" ]"

# 3. renames and deletes propagate; a rename moves no data.
mv "$T/mnt-a/big.bin" "$T/mnt-a/tree/big-moved.bin"
rm -r "$T/mnt-a/many/d13"
check "rename reaches B" wait_for 20 test -f "$T/mnt-b/tree/big-moved.bin"
check "old name is gone on B" wait_for 20 sh -c "! test -e '$T/mnt-b/big.bin'"
check "directory delete reaches B" wait_for 20 sh -c "! test -e '$T/mnt-b/many/d13'"
check "moved file still reads on B" same_file "$T/mnt-a/tree/big-moved.bin" "$T/mnt-b/tree/big-moved.bin"

# B reads everything once, so every chunk has a second holder from now on
# (peers fetch from whoever has the data).
check "B reads the whole tree" sh -c "find '$T/mnt-b' -type f -print0 | xargs -0 cat > /dev/null"

# 3b. A deletes a file B has open: B reads it whole, as after a local
# unlink (before, B's copy turned into zeros at once); once closed, and for
# a file B only had cached, B frees the data.
head -c 8M /dev/urandom > "$T/del.ref"
cp "$T/del.ref" "$T/mnt-a/del-open.bin"
head -c 8M /dev/urandom > "$T/mnt-a/del-cached.bin"
wait_for 20 same_size "$T/mnt-a/del-cached.bin" "$T/mnt-b/del-cached.bin"
cat "$T/mnt-b/del-open.bin" "$T/mnt-b/del-cached.bin" > /dev/null
b_bytes() { "$L" status --json --store "$T/b" | python3 -c 'import json, sys; print(json.load(sys.stdin)["cache"]["bytes"])'; }
before=$(b_bytes)
exec 7<"$T/mnt-b/del-open.bin"
rm "$T/mnt-a/del-open.bin" "$T/mnt-a/del-cached.bin"
check "A's deletes reach B" wait_for 20 sh -c "! test -e '$T/mnt-b/del-open.bin' && ! test -e '$T/mnt-b/del-cached.bin'"
echo 3 > /proc/sys/vm/drop_caches # read from the store, not the page cache
check "B reads the file it had open, byte for byte" cmp "$T/del.ref" /dev/fd/7
exec 7<&-
b_bytes_at_most() { [ "$(b_bytes)" -le "$1" ]; }
check "B frees both files' data once unused" wait_for 20 b_bytes_at_most $((before - 16777216))

# 4. concurrent edits while B is offline: both versions survive.
echo "base" > "$T/mnt-a/notes.txt"
wait_for 20 test -f "$T/mnt-b/notes.txt"
down b
echo "edited on A" > "$T/mnt-a/notes.txt"
sleep 1.1
up b --offline
echo "edited on B" > "$T/mnt-b/notes.txt"
down b
up b
check "conflict copy appears on A" wait_for 20 sh -c "ls '$T/mnt-a' | grep -q 'notes.sync-conflict-'"
check "conflict copy appears on B" wait_for 20 sh -c "ls '$T/mnt-b' | grep -q 'notes.sync-conflict-'"
check "both versions are kept" sh -c "cat '$T/mnt-a'/notes* | grep -q 'edited on A' && cat '$T/mnt-a'/notes* | grep -q 'edited on B'"

# 4b. save by rename (sed -i, editors, git): one writer, no conflict copy.
mkdir "$T/mnt-a/edit"
echo "version 1" > "$T/mnt-a/edit/doc.txt"
check "B sees the file to be edited" wait_for 20 grep -q 'version 1' "$T/mnt-b/edit/doc.txt"
for v in 2 3 4; do sed -i "s/version .*/version $v/" "$T/mnt-a/edit/doc.txt"; sleep 0.3; done
check "B gets the last save" wait_for 20 grep -q 'version 4' "$T/mnt-b/edit/doc.txt"
sleep 2
check "saves by rename leave no conflict copy on A or B" sh -c "[ \"\$(ls '$T/mnt-a/edit' '$T/mnt-b/edit' | grep -c sync-conflict)\" = 0 ]"

# 4c. appending on B to a file whose data only A holds (online and offline):
# the new bytes get chunks of their own, close succeeds, nothing is lost
# and A gets the line; appends on both sides at once keep both (a
# conflict copy).
mkdir "$T/mnt-a/app"
echo base > "$T/mnt-a/app/log"; echo base > "$T/mnt-a/app/both"
app_on_b() { same_size "$T/mnt-a/app/both" "$T/mnt-b/app/both" && same_size "$T/mnt-a/app/log" "$T/mnt-b/app/log"; }
check "B has the files to append to" wait_for 20 app_on_b
check "B's append to A's file closes without error" python3 -c "
import os; fd = os.open('$T/mnt-b/app/log', os.O_WRONLY | os.O_APPEND); os.write(fd, b'from B\n'); os.close(fd)"
check "A gets B's appended line" wait_for 20 sh -c "[ \"\$(cat '$T/mnt-a/app/log')\" = \"\$(printf 'base\nfrom B')\" ]"
echo "B2" >> "$T/mnt-b/app/both" & echo "A2" >> "$T/mnt-a/app/both"; wait
check "concurrent appends: both lines survive on A" wait_for 20 sh -c "cat '$T/mnt-a/app/'both* | grep -q A2 && cat '$T/mnt-a/app/'both* | grep -q B2"
check "... and on B" wait_for 20 sh -c "cat '$T/mnt-b/app/'both* | grep -q A2 && cat '$T/mnt-b/app/'both* | grep -q B2"
echo "A's data" > "$T/mnt-a/app/offline"
check "B has A's new file" wait_for 20 same_size "$T/mnt-a/app/offline" "$T/mnt-b/app/offline"
down b
up b --offline
check "offline, B appends to a file whose data only A holds" sh -c "echo 'from B, offline' >> '$T/mnt-b/app/offline'"
down b
up b --offline
# (A's bytes cannot be read on B offline; the size says B kept its own)
check "the append survives B's remount" test "$(stat -c %s "$T/mnt-b/app/offline")" = 25
down b
up b
check "and reaches A, after A's line" wait_for 20 sh -c "[ \"\$(cat '$T/mnt-a/app/offline')\" = \"\$(printf \"A's data\\nfrom B, offline\")\" ]"

# 4d. rm -rf on B of trees made on A: a directory's deletion goes out after
# its subdirectory's, so neither comes back (it did when the top directory
# was sent first, found not empty on A and kept).
for n in 1 2 3; do
    mkdir -p "$T/mnt-a/rr$n/sub"
    for i in $(seq 30); do echo "$i" > "$T/mnt-a/rr$n/sub/f$i"; echo "$i" > "$T/mnt-a/rr$n/g$i"; done
done
check "B gets the trees" wait_for 20 test -f "$T/mnt-b/rr3/g30"
sleep 1
rm -rf "$T/mnt-b/rr1" "$T/mnt-b/rr2" "$T/mnt-b/rr3"
check "A drops the trees B removed" wait_for 20 sh -c "! ls -d '$T/mnt-a'/rr* 2>/dev/null"
sleep 3
check "... and they stay gone on A and B" sh -c "! ls -d '$T/mnt-a'/rr* '$T/mnt-b'/rr* 2>/dev/null"

# 4e. a directory renamed on A while B, offline, creates a file in it: the
# rename survives on both and the file is inside (a new entry is not a
# change of the directory itself; the directory used to come back under
# its old name, B's later change winning).
mkdir "$T/mnt-a/album"; echo one > "$T/mnt-a/album/one"
check "B gets the directory to be renamed" wait_for 20 test -f "$T/mnt-b/album/one"
down b
mv "$T/mnt-a/album" "$T/mnt-a/album-2026"
sleep 1.1
up b --offline
echo two > "$T/mnt-b/album/two"
down b
up b
check "A keeps its rename and gets B's new file inside" wait_for 20 test -f "$T/mnt-a/album-2026/two"
check "B takes the rename, its file inside" wait_for 20 sh -c "test -f '$T/mnt-b/album-2026/two' && ! test -e '$T/mnt-b/album'"
check "the old name is back on neither" sh -c "! test -e '$T/mnt-a/album' && ! test -e '$T/mnt-b/album'"
check "the directory's mtime is the same on A and B" sh -c "[ \"\$(stat -c %Y '$T/mnt-a/album-2026')\" = \"\$(stat -c %Y '$T/mnt-b/album-2026')\" ]"

# 5. kill -9 a daemon; changes made meanwhile reach it after remount.
pid=$(daemon_pid b)
kill -9 "$pid"
wait_for 5 sh -c "! kill -0 $pid"
fusermount3 -u -z "$T/mnt-b"
echo "while B was dead" > "$T/mnt-a/after-kill.txt"
up b
check "a killed daemon catches up after remount" wait_for 20 sh -c "grep -q 'while B was dead' '$T/mnt-b/after-kill.txt'"

# 6. a peer killed mid-read: with two peers the read fails with EIO in bound.
# Symbolic links made just before: their targets are data (a chunk), which
# B fetches as soon as the records land, so they read with A dead.
long_target=$(head -c 3000 /dev/zero | tr '\0' x)
ln -s "target/of/a/link" "$T/mnt-a/link-short"
ln -s "$long_target" "$T/mnt-a/link-long"
dd if=/dev/urandom of="$T/mnt-a/only-on-a.bin" bs=1M count=64 status=none
wait_for 20 same_size "$T/mnt-a/only-on-a.bin" "$T/mnt-b/only-on-a.bin"
kill -9 "$(daemon_pid a)"
fusermount3 -u -z "$T/mnt-a"
check "B reads a symlink made on A, with A dead" [ "$(readlink "$T/mnt-b/link-short")" = "target/of/a/link" ]
check "... and a 3000-byte one" [ "$(readlink "$T/mnt-b/link-long")" = "$long_target" ]
start=$SECONDS
if timeout 60 cat "$T/mnt-b/only-on-a.bin" > /dev/null 2>"$T/cat.err"; then
    bad "read of data held only by a dead peer fails (it succeeded)"
else
    el=$((SECONDS - start))
    if grep -q "Input/output error" "$T/cat.err" && [ $el -lt 30 ]; then
        ok "read of data held only by a dead peer fails with EIO in ${el}s"
    else
        bad "read of data held only by a dead peer: $(cat "$T/cat.err") after ${el}s"
    fi
fi
check "the mount keeps serving local data meanwhile" grep -q hello "$T/mnt-b/tree/hello"
# A has been gone longer than an attempt (5 s) now: reads fail at once.
sleep 6
start=$(date +%s%N)
if dd if="$T/mnt-b/only-on-a.bin" of=/dev/null bs=1M skip=48 count=1 status=none 2>/dev/null; then
    bad "a read of A's data with A long gone fails (it succeeded)"
else
    ms=$(( ($(date +%s%N) - start) / 1000000 ))
    if [ $ms -lt 3000 ]; then ok "with A long gone, a read of its data fails at once (${ms} ms)"
    else bad "with A long gone, a read of its data took ${ms} ms to fail"; fi
fi

# 7. three peers: B reads a file from A; A dies; C reads it from B.
up a
dd if=/dev/urandom of="$T/mnt-a/three.bin" bs=1M count=32 status=none
sum_a=$(sha256sum < "$T/mnt-a/three.bin")
wait_for 20 same_size "$T/mnt-a/three.bin" "$T/mnt-b/three.bin"
sum_b=$(sha256sum < "$T/mnt-b/three.bin")
up c
check "third peer gets the metadata" wait_for 30 same_size "$T/mnt-a/three.bin" "$T/mnt-c/three.bin"
kill -9 "$(daemon_pid a)"
fusermount3 -u -z "$T/mnt-a"
sum_c=$(timeout 60 sha256sum < "$T/mnt-c/three.bin")
check "with A dead, C reads A's file from B (failover)" test "$sum_a" = "$sum_c" -a "$sum_a" = "$sum_b"

# 8. partition and heal: B and C diverge offline, then converge.
down c
echo "made on B alone" > "$T/mnt-b/part-b.txt"
mkdir "$T/mnt-b/dir-from-b"
up c --offline
echo "made on C alone" > "$T/mnt-c/part-c.txt"
mv "$T/mnt-c/tree/hello" "$T/mnt-c/tree/hello-renamed"
down c
up c
check "partition heals: C has B's changes" wait_for 30 test -f "$T/mnt-c/part-b.txt"
check "partition heals: B has C's changes" wait_for 30 test -f "$T/mnt-b/tree/hello-renamed"
sleep 1
# read everything on both so data is local, then compare listings and sums
check "listings are identical on B and C" sh -c "[ \"\$(cd '$T/mnt-b' && find . -printf '%y %m %s %p\n' | sort)\" = \"\$(cd '$T/mnt-c' && find . -printf '%y %m %s %p\n' | sort)\" ]"
check "checksums are identical on B and C" sh -c "[ \"\$(cd '$T/mnt-b' && find . -type f ! -name 'only-on-a.bin' -print0 | sort -z | xargs -0 sha256sum)\" = \"\$(cd '$T/mnt-c' && find . -type f ! -name 'only-on-a.bin' -print0 | sort -z | xargs -0 sha256sum)\" ]"

down b
down c
if [ "$fail" != 0 ]; then
    for x in a b c; do echo "--- log $x"; tail -n 20 "$T/log-$x" 2>/dev/null; done
fi
echo "$pass passed, $fail failed"
[ "$fail" = 0 ]
