# check_lib.sh - the pass/fail helpers the integration tests that print
# "ok   ..."/"FAIL ..." lines share (sourced by peers_lib.sh and
# test_sync_netns.sh; not executable, so tests/run.sh does not run it).
# Provides ok/bad/check NAME CMD..., wait_for SECONDS CMD... (polls CMD
# every $WAIT_STEP seconds, default 0.1), same_size A B (two files have
# the same size: a peer's copy is complete, not only named), and the
# counters $pass/$fail for the closing "N passed, N failed" line.
pass=${pass:-0} fail=${fail:-0}
ok() { echo "ok   $*"; pass=$((pass + 1)); }
bad() { echo "FAIL $*"; fail=$((fail + 1)); }
check() { local name=$1; shift; if "$@"; then ok "$name"; else bad "$name"; fi; }
same_size() { [ "$(stat -c %s "$1" 2>/dev/null)" = "$(stat -c %s "$2" 2>/dev/null)" ]; }
wait_for() { # wait_for SECONDS CMD...: poll CMD until it succeeds
    local end=$((SECONDS + $1)); shift
    until "$@" 2>/dev/null; do
        [ $SECONDS -lt $end ] || return 1
        sleep "${WAIT_STEP:-0.1}"
    done
}
