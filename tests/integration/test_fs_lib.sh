# test_fs_lib.sh - helpers sourced by tests/integration/test_fs_*.sh (not
# executable itself, so tests/run.sh does not run it).
#
# Provides: $LANDRO, $work (fresh temp dir), $store, $mnt, ok/bad/check,
# fs_init, fs_mount [ARGS], fs_unmount, fs_finish; a trap that lazily
# unmounts, kills only the daemon this script started, and removes $work.
set -uo pipefail
top=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
LANDRO=${LANDRO:-$top/${O:-build}/bin/landro}
PY=/usr/bin/python3
pass=0; fail=0
daemon_pid=

ok()  { echo "ok - $*"; pass=$((pass + 1)); }
bad() { echo "not ok - $*"; fail=$((fail + 1)); }
# check NAME CMD...: one test, passing when CMD succeeds.
check() { local n=$1; shift; if "$@"; then ok "$n"; else bad "$n"; fi; }
# check_fails NAME CMD...: passes when CMD fails.
check_fails() { local n=$1; shift; if "$@"; then bad "$n (expected failure)"; else ok "$n"; fi; }

work=$(mktemp -d /tmp/landro-fs-XXXXXX)
chmod 755 "$work"
store=$work/store
mnt=$work/mnt
mkdir -p "$mnt"

fs_cleanup() {
    if mountpoint -q "$mnt" 2>/dev/null; then fusermount3 -u -z "$mnt" 2>/dev/null || umount -l "$mnt" 2>/dev/null; fi
    if [ -n "$daemon_pid" ] && kill -0 "$daemon_pid" 2>/dev/null; then
        kill -TERM "$daemon_pid" 2>/dev/null; sleep 0.5; kill -KILL "$daemon_pid" 2>/dev/null
    fi
    rm -rf "$work"
}
trap fs_cleanup EXIT
trap 'exit 130' INT TERM

if [ ! -x "$LANDRO" ]; then
    echo "cannot run: $LANDRO is not built"
    echo "0 passed, 1 failed"
    exit 1
fi
if [ ! -e /dev/fuse ]; then
    echo "cannot run: no /dev/fuse"
    echo "0 passed, 1 failed"
    exit 1
fi

fs_init() { "$LANDRO" init --store "$store" >/dev/null; }

# wait_until SECONDS CMD...: poll CMD every 0.1 s.
wait_until() {
    local t=$(( $1 * 10 )); shift
    while [ "$t" -gt 0 ]; do "$@" && return 0; sleep 0.1; t=$((t - 1)); done
    return 1
}

# fs_mount [ARGS]: run the daemon in the foreground (in the background of
# this shell, so its pid is known) and wait for the mount.
fs_mount() {
    "$LANDRO" mount -f --store "$store" "$@" "$mnt" 2>>"$work/daemon.log" &
    daemon_pid=$!
    wait_until 10 mountpoint -q "$mnt"
}

# fs_unmount: unmount and wait for the daemon to exit; returns its status.
fs_unmount() {
    fusermount3 -u "$mnt" || return 1
    local i
    for i in $(seq 100); do
        kill -0 "$daemon_pid" 2>/dev/null || break
        sleep 0.1
    done
    if kill -0 "$daemon_pid" 2>/dev/null; then echo "daemon $daemon_pid did not exit"; return 1; fi
    wait "$daemon_pid"; local rc=$?
    daemon_pid=
    return $rc
}

fs_finish() {
    if [ "$fail" != 0 ] && [ -s "$work/daemon.log" ]; then
        echo "daemon log (last 30 lines):"; tail -n 30 "$work/daemon.log"
    fi
    echo "$pass passed, $fail failed"
    [ "$fail" = 0 ]
}
