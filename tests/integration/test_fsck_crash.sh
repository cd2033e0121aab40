#!/usr/bin/env bash
# test_fsck_crash.sh - kill -9 of the daemon during writes leaves a store
# that `landro-fsck -n` finds clean (exit 0), in every one of
# FSCK_CRASH_ROUNDS rounds (default 100). Each round: mount in the
# foreground (in the background of this shell), a writer loop of cp, dd,
# mkdir and rm for a random 0.2-1 s, kill -9 the daemon, lazy unmount,
# landro-fsck -n. Fails when landro cannot init or mount at all.
set -uo pipefail
top=$(cd "$(dirname "$0")/../.." && pwd)
O=${O:-build}
LANDRO=$top/$O/bin/landro
FSCK=$top/$O/bin/landro-fsck
rounds=${FSCK_CRASH_ROUNDS:-100}
budget=${FSCK_CRASH_SECONDS:-170}   # stop early rather than overrun
pass=0; fail=0
daemon_pid=; writer_pid=

work=$(mktemp -d /tmp/landro-fsck-crash-XXXXXX)
store=$work/store
mnt=$work/mnt
mkdir -p "$mnt"
cleanup() {
    [ -n "$writer_pid" ] && kill -KILL "$writer_pid" 2>/dev/null
    [ -n "$daemon_pid" ] && kill -KILL "$daemon_pid" 2>/dev/null
    if mountpoint -q "$mnt" 2>/dev/null; then fusermount3 -u -z "$mnt" 2>/dev/null || umount -l "$mnt" 2>/dev/null; fi
    rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

skip() {
    echo "skipped: $*"
    echo "0 passed, 0 failed"
    exit 0
}
[ -x "$LANDRO" ] && [ -x "$FSCK" ] || skip "landro or landro-fsck is not built"
[ -e /dev/fuse ] && command -v fusermount3 >/dev/null || skip "no /dev/fuse or fusermount3"
fail_now() {
    echo "FAIL $*"
    echo "0 passed, 1 failed"
    exit 1
}
"$LANDRO" init --store "$store" >"$work/init.log" 2>&1 || fail_now "landro init: $(tail -n1 "$work/init.log")"

mount_fs() {
    "$LANDRO" mount -f --store "$store" "$mnt" 2>>"$work/daemon.log" &
    daemon_pid=$!
    local i
    for i in $(seq 100); do
        mountpoint -q "$mnt" && return 0
        kill -0 "$daemon_pid" 2>/dev/null || return 1
        sleep 0.05
    done
    return 1
}
if ! mount_fs; then
    kill -KILL "$daemon_pid" 2>/dev/null; daemon_pid=
    fail_now "landro mount did not come up: $(tail -n3 "$work/daemon.log" 2>/dev/null)"
fi
fusermount3 -u "$mnt"; wait "$daemon_pid" 2>/dev/null; daemon_pid=

# Some source data for cp.
head -c 300000 /dev/urandom > "$work/blob"
cp -r /usr/include/linux/netfilter "$work/tree" 2>/dev/null || mkdir -p "$work/tree"

writer() {
    local n=0
    while :; do
        n=$((n + 1))
        case $((RANDOM % 6)) in
        0) cp "$work/blob" "$mnt/f$((RANDOM % 20))" ;;
        1) dd if=/dev/urandom of="$mnt/d$((RANDOM % 20))" bs=4k count=$((RANDOM % 64 + 1)) conv=fsync status=none ;;
        2) mkdir -p "$mnt/dir$((RANDOM % 10))/sub$((RANDOM % 3))" ;;
        3) rm -rf "$mnt/dir$((RANDOM % 10))" "$mnt/f$((RANDOM % 20))" ;;
        4) cp -r "$work/tree" "$mnt/t$((RANDOM % 4))" ;;
        5) dd if="$work/blob" of="$mnt/d$((RANDOM % 20))" bs=1k seek=$((RANDOM % 500)) count=7 conv=notrunc status=none ;;
        esac
    done 2>/dev/null
}

start=$SECONDS
for r in $(seq "$rounds"); do
    if [ $((SECONDS - start)) -ge "$budget" ]; then
        echo "time budget of ${budget}s reached after $((r - 1)) rounds"
        break
    fi
    if ! mount_fs; then
        echo "not ok - round $r: mount failed"; fail=$((fail + 1))
        tail -n 5 "$work/daemon.log"
        break
    fi
    writer &
    writer_pid=$!
    sleep "0.$((RANDOM % 9 + 2))"   # 0.2 .. 1.0 s
    kill -KILL "$daemon_pid"
    wait "$daemon_pid" 2>/dev/null; daemon_pid=
    kill -KILL "$writer_pid" 2>/dev/null; wait "$writer_pid" 2>/dev/null; writer_pid=
    fusermount3 -u -z "$mnt" 2>/dev/null || umount -l "$mnt" 2>/dev/null
    out=$("$FSCK" -n "$store" 2>&1); rc=$?
    if [ "$rc" = 0 ]; then
        pass=$((pass + 1))
    else
        echo "not ok - round $r: landro-fsck -n exited $rc:"; sed 's/^/    /' <<<"$out" | grep -v '^    Pass '
        fail=$((fail + 1))
    fi
done
echo "last check: $(grep -E ': [0-9]+ inodes, ' <<<"${out:-}" | sed "s|$store|STORE|")"
echo "ok - $pass rounds of kill -9 during writes left a store landro-fsck -n finds clean"
echo "$pass passed, $fail failed"
[ "$fail" = 0 ]
