# peers_lib.sh - helpers sourced by the integration tests that run several
# mounted daemons (test_sync.sh, test_cli.sh, and tools/measure-catchup.sh);
# not executable itself, so tests/run.sh does not run it.
#
# Before sourcing set NAME (used in the temp dir) and PORTBASE. Provides:
# $L (the landro binary), $T (fresh temp dir, removed at exit with every
# mount under $T/mnt-* and every daemon serving a store under $T),
# port N, peers NAME..., up NAME [FLAGS...], ok/bad/check,
# wait_for SECONDS CMD... (those from check_lib.sh), and the counters
# $pass/$fail for the closing "N passed, N failed" line; for comparing
# trees and looking into stores: tree_listing DIR, same_tree NAME,
# db_entries NAME DB, churn DIR N; and peers_done to end a test.
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

# tree_listing DIR: path, type, mode, size and checksum of every file
# under DIR, sorted. same_tree NAME: $T/mnt-NAME lists as $T/want (which
# the test wrote with tree_listing); its listing is left in $T/got-NAME.
tree_listing() {
    (cd "$1" && find . -printf '%p %y %m %s\n' | sort &&
        find . -type f -print0 | sort -z | xargs -0 -r md5sum)
}
same_tree() { tree_listing "$T/mnt-$1" > "$T/got-$1" && cmp -s "$T/want" "$T/got-$1"; }

# db_entries NAME DB: records in database DB of store $T/NAME (LMDB's
# count, read while the daemon runs); empty if it cannot be read.
db_entries() { mdb_stat -s "$2" "$T/$1" 2>/dev/null | awk '/Entries:/ { print $2 }'; }

# churn DIR N: create, write and delete N files in DIR/scratch (made if
# missing): 3N changes of files that no longer exist.
churn() {
    python3 - "$1" "$2" <<'PY'
import os, sys
d, n = sys.argv[1] + "/scratch", int(sys.argv[2])
os.makedirs(d, exist_ok=True)
for i in range(n):
    p = "%s/t%05d" % (d, i)
    with open(p, "w") as f:
        f.write("scratch %d\n" % i)
    os.unlink(p)
PY
}

# peers_done: unmount every peer still mounted (the last named first),
# show the end of each daemon's log if a check failed, print the closing
# "N passed, N failed" line; returns non-zero if a check failed.
peers_done() {
    local i x
    for ((i = ${#PEER_NAMES[@]} - 1; i >= 0; i--)); do
        x=${PEER_NAMES[i]}
        grep -q " $T/mnt-$x fuse" /proc/self/mounts && "$L" unmount "$T/mnt-$x"
    done
    if [ "$fail" != 0 ]; then
        for x in "${PEER_NAMES[@]}"; do echo "--- log $x"; tail -n 20 "$T/log-$x" 2>/dev/null; done
    fi
    echo "$pass passed, $fail failed"
    [ "$fail" = 0 ]
}
