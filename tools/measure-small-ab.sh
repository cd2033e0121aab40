#!/usr/bin/env bash
# tools/measure-small-ab.sh ROUNDS BUILD... - landro's small-file phases
# (tools/bench-fs.sh's own script: 10000 x 4 KiB files created, then
# stat, read and unlink, 1.5 s apart) for each build directory given
# (e.g. build build/prev, relative to the tree), the builds taking turns
# ROUNDS times. Prints "BUILD: create stat read unlink" in ops/s per
# round: an A/B of two trees under the same minutes' conditions, which
# on a shared VM matter more than anything else. docs/PERFORMANCE.md
# (session 10) has a run. Not part of make bench. Needs root and
# /dev/fuse.
set -euo pipefail
cd "$(dirname "$0")/.."
[ $# -ge 2 ] || { echo "usage: $0 ROUNDS BUILD..." >&2; exit 2; }
R=$1
shift
. tools/measure-lib.sh
measure_workdir msab
sed -n '/^cat > "\$work\/b.py"/,/^PY$/p' tools/bench-fs.sh | sed '1d;$d' > "$W/b.py"
for _ in $(seq "$R"); do
    for b in "$@"; do
        rm -rf "$W/s" "$W/m"
        mkdir -p "$W/m"
        "$b/bin/landro" init --store "$W/s" >/dev/null
        "$b/bin/landro" mount --store "$W/s" --offline "$W/m" 2>/dev/null
        echo "$b: $(python3 "$W/b.py" small "$W/m/small" 10000)"
        fusermount3 -u "$W/m"
        sleep 1
    done
done
