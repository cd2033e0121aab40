# peers_lib.sh - helpers sourced by the integration tests that run several
# mounted daemons (test_sync.sh, test_cli.sh, and tools/measure-catchup.sh);
# not executable itself, so tests/run.sh does not run it.
#
# Before sourcing set NAME (used in the temp dir) and PORTBASE. Provides:
# $L (the landro binary), $T (fresh temp dir, removed at exit with every
# mount under $T/mnt-* and every daemon serving a store under $T),
# port N, peers NAME..., up NAME [FLAGS...], ok/bad/check,
# wait_for SECONDS CMD... (those from check_lib.sh), and the counters
# $pass/$fail for the closing "N passed, N failed" line.
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
TOP=$PWD
L=$PWD/${O:-build}/bin/landro
T=$(mktemp -d "/tmp/landro-$NAME-XXXXXX")
# Ten consecutive UDP ports nobody uses (a leftover daemon must not make
# a mount fail with EADDRINUSE).
ports_free() {
    local p
    for ((p = $1; p < $1 + 10; p++)); do
        ss -Hluan "sport = :$p" 2>/dev/null | grep -q . && return 1
    done
    return 0
}
for _try in 1 2 3 4 5 6 7 8 9 10; do
    PORT0=$((PORTBASE + RANDOM % 500))
    ports_free "$PORT0" && break
done
pass=0 fail=0

cleanup() {
    # /proc/self/mounts, not mountpoint(1): the latter says "not a mount"
    # when the daemon behind it is dead or hung, and the mount would stay.
    local m
    for m in "$T"/mnt-*; do
        grep -q " $m fuse" /proc/self/mounts && fusermount3 -u -z "$m" 2>/dev/null
    done
    pkill -9 -f "landro mount .*--store $T/" 2>/dev/null
    sleep 0.2
    rm -rf "$T"
}
trap cleanup EXIT
trap 'exit 143' TERM INT   # so that a timeout still runs the cleanup

. "$TOP/tests/integration/check_lib.sh"
port() { echo $((PORT0 + $1)); }

# peers a b ...: a store $T/NAME for each, all in the first one's volume,
# each trusting every other at 127.0.0.1:$(port INDEX), and $T/mnt-NAME.
peers() {
    local names=("$@") i j
    "$L" init --store "$T/${names[0]}" >/dev/null || return 1
    local vol
    vol=$("$L" volume --store "$T/${names[0]}")
    for ((i = 1; i < ${#names[@]}; i++)); do
        "$L" init --store "$T/${names[i]}" --volume "$vol" >/dev/null || return 1
    done
    for ((i = 0; i < ${#names[@]}; i++)); do
        mkdir -p "$T/mnt-${names[i]}"
        for ((j = 0; j < ${#names[@]}; j++)); do
            [ $i = $j ] || "$L" peer add --store "$T/${names[i]}" \
                "$("$L" id --store "$T/${names[j]}")" "127.0.0.1:$(port $j)" || return 1
        done
    done
    PEER_NAMES=("${names[@]}")
}

# up NAME [FLAGS...]: mount NAME's store on $T/mnt-NAME, listening on its
# port (its index in the peers call); daemon messages go to $T/log-NAME.
up() {
    local name=$1 i
    shift
    for ((i = 0; i < ${#PEER_NAMES[@]}; i++)); do
        [ "${PEER_NAMES[i]}" = "$name" ] && break
    done
    "$L" mount --store "$T/$name" --listen "127.0.0.1:$(port $i)" "$@" "$T/mnt-$name" 2>>"$T/log-$name"
}
