# peers_lib.sh - helpers sourced by the integration tests that run several
# mounted daemons (test_sync.sh, test_cli.sh); not executable itself, so
# tests/run.sh does not run it.
#
# Before sourcing set NAME (used in the temp dir) and PORTBASE. Provides:
# $L (the landro binary), $T (fresh temp dir, removed at exit with every
# mount under $T/mnt-* and every daemon serving a store under $T),
# port N, ok/bad/check, wait_for SECONDS CMD..., and the counters
# $pass/$fail for the closing "N passed, N failed" line.
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
TOP=$PWD
L=$PWD/${O:-build}/bin/landro
T=$(mktemp -d "/tmp/landro-$NAME-XXXXXX")
PORT0=$((PORTBASE + RANDOM % 500))
pass=0 fail=0

cleanup() {
    for m in "$T"/mnt-*; do
        mountpoint -q "$m" 2>/dev/null && fusermount3 -u -z "$m" 2>/dev/null
    done
    pkill -9 -f "landro mount .*--store $T/" 2>/dev/null
    sleep 0.2
    rm -rf "$T"
}
trap cleanup EXIT

ok() { echo "ok   $*"; pass=$((pass + 1)); }
bad() { echo "FAIL $*"; fail=$((fail + 1)); }
check() { local name=$1; shift; if "$@"; then ok "$name"; else bad "$name"; fi; }
wait_for() { # wait_for SECONDS CMD...: poll CMD until it succeeds
    local end=$((SECONDS + $1)); shift
    until "$@" 2>/dev/null; do
        [ $SECONDS -lt $end ] || return 1
        sleep 0.1
    done
}
port() { echo $((PORT0 + $1)); }
