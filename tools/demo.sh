#!/usr/bin/env bash
# tools/demo.sh - what `make demo` runs: two peers on loopback, each with
# its own store and mount; a file and a tree written on one are listed and
# read on the other (data fetched on demand), then a rename and a conflict.
# Everything lives under one temporary directory, removed at the end.
set -euo pipefail
cd "$(dirname "$0")/.."
B=${O:-build}/bin
L="$B/landro"
tmp=$(mktemp -d /tmp/landro-demo-XXXXXX)
A=$tmp/a B_=$tmp/b MA=$tmp/mnt-a MB=$tmp/mnt-b
PA=${LANDRO_DEMO_PORT_A:-47001} PB=${LANDRO_DEMO_PORT_B:-47002}

cleanup() {
    set +e
    for m in "$MA" "$MB"; do
        mountpoint -q "$m" && { "$L" unmount "$m" 2>/dev/null || fusermount3 -u -z "$m"; }
    done
    sleep 0.3
    pkill -f "landro mount .*$tmp" 2>/dev/null
    rm -rf "$tmp"
}
trap cleanup EXIT

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
run() { printf '$ %s\n' "$*"; "$@"; }
wait_for() { # wait_for SECONDS CMD...: poll until CMD succeeds
    local end=$((SECONDS + $1)); shift
    until "$@" 2>/dev/null; do
        [ $SECONDS -lt $end ] || { echo "demo: timed out waiting for: $*" >&2; return 1; }
        sleep 0.1
    done
}

mkdir -p "$MA" "$MB"
step "two devices: create a store on each (B joins A's volume)"
run "$L" init --store "$A"
vol=$("$L" volume --store "$A")
run "$L" init --store "$B_" --volume "$vol"
ida=$("$L" id --store "$A"); idb=$("$L" id --store "$B_")
echo "device A: $ida"
echo "device B: $idb"

step "introduce them to each other"
run "$L" peer add --store "$A" "$idb" "127.0.0.1:$PB"
run "$L" peer add --store "$B_" "$ida" "127.0.0.1:$PA"

step "mount both"
run "$L" mount --store "$A" --listen "127.0.0.1:$PA" "$MA"
run "$L" mount --store "$B_" --listen "127.0.0.1:$PB" "$MB"

step "write on A"
run sh -c "echo 'hello from A' > '$MA/hello.txt'"
run mkdir -p "$MA/project/src"
run cp tools/deps.sh Makefile "$MA/project/"
run cp store/lr.h store/lr.c "$MA/project/src/"
run dd if=/dev/urandom of="$MA/big.bin" bs=1M count=64 status=none
run sync "$MA/big.bin"

step "read on B (metadata replicated; data fetched on demand)"
size=$(stat -c %s "$MA/big.bin")
wait_for 15 sh -c "[ \"\$(stat -c %s '$MB/big.bin' 2>/dev/null)\" = $size ]"
wait_for 15 test -f "$MB/project/src/lr.c"
run ls -l "$MB" "$MB/project"
run cat "$MB/hello.txt"
t0=$(date +%s.%N)
sb=$(sha256sum < "$MB/big.bin")
t1=$(date +%s.%N)
sa=$(sha256sum < "$MA/big.bin")
echo "sha256 on A: ${sa%% *}"
echo "sha256 on B: ${sb%% *}  (64 MiB read on B in $(printf '%.2f' "$(echo "$t1 - $t0" | bc)") s, fetched from A)"
[ "$sa" = "$sb" ] || { echo "demo: checksums differ" >&2; exit 1; }
run diff -r "$MA/project" "$MB/project" && echo "trees are identical"

step "rename on A: a metadata change, no data moves"
run mv "$MA/big.bin" "$MA/project/big-renamed.bin"
wait_for 15 test -f "$MB/project/big-renamed.bin"
run ls "$MB" "$MB/project"

step "a conflict: B goes offline, both edit notes.txt, B comes back"
run sh -c "echo 'first draft' > '$MA/notes.txt'"
wait_for 15 test -f "$MB/notes.txt"
run "$L" unmount "$MB"
run sh -c "echo 'edited on A' > '$MA/notes.txt'"
sleep 1.1
run "$L" mount --store "$B_" --offline "$MB"
run sh -c "echo 'edited on B, later' > '$MB/notes.txt'"
run "$L" unmount "$MB"
run "$L" mount --store "$B_" --listen "127.0.0.1:$PB" "$MB"
wait_for 20 sh -c "ls '$MA' | grep -q sync-conflict"
wait_for 20 sh -c "ls '$MB' | grep -q sync-conflict"
run ls "$MA"
run sh -c "head -v '$MA'/notes*"

step "unmount"
run "$L" unmount "$MA"
run "$L" unmount "$MB"
echo
echo "demo finished: everything above ran for real under $tmp (now removed)"
