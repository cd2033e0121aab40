#!/usr/bin/env bash
# tools/measure-repl-scan.sh [NFILES] - what counting unreplicated files
# costs on a volume at rest: peer A writes NFILES x 4 KiB files
# (copies = 1, push after 1 s), peer B takes them, then A makes one small
# change a second for 30 s; prints the CPU time of A's landro-sync thread
# over those 30 s. O=DIR takes the binaries from another build, to compare
# two trees (from 198d7fc on: earlier builds do not name their threads). Not part of make bench (it takes a few minutes). Needs root
# and /dev/fuse.
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-20000}
L=$PWD/${O:-build}/bin/landro
T=$(mktemp -d /tmp/landro-mrepl-XXXXXX)
PA=$((48700 + RANDOM % 200)); PB=$((PA + 1))
cleanup() {
    set +e
    for m in "$T/ma" "$T/mb"; do mountpoint -q "$m" && fusermount3 -u -z "$m"; done
    pkill -f "landro mount .*$T" 2>/dev/null
    sleep 0.2
    rm -rf "$T"
}
trap cleanup EXIT
mkdir -p "$T/ma" "$T/mb"
"$L" init --store "$T/a" >/dev/null
"$L" init --store "$T/b" --volume "$("$L" volume --store "$T/a")" >/dev/null
"$L" peer add --store "$T/a" "$("$L" id --store "$T/b")" "127.0.0.1:$PB"
"$L" peer add --store "$T/b" "$("$L" id --store "$T/a")" "127.0.0.1:$PA"
"$L" mount --store "$T/a" --listen "127.0.0.1:$PA" --push-after 1 "$T/ma" 2>/dev/null
"$L" mount --store "$T/b" --listen "127.0.0.1:$PB" --copies 0 "$T/mb" 2>/dev/null
python3 - "$T/ma/d" "$N" <<'PY'
import os, sys
d, n = sys.argv[1], int(sys.argv[2])
os.mkdir(d)
for i in range(n):
    with open(os.path.join(d, "f%06d" % i), "wb") as f:
        f.write(b"x" * 4096)
PY
unrep() { "$L" status --json --store "$T/a" | python3 -c 'import json,sys; print(json.load(sys.stdin)["unreplicated_files"])'; }
end=$((SECONDS + 600))
until [ "$(unrep)" = 0 ]; do
    [ $SECONDS -lt $end ] || { echo "measure-repl-scan: B did not take the files in 10 minutes"; exit 1; }
    sleep 1
done
pid=$(pgrep -f "landro mount --store $T/a " | head -n1)
task=$(grep -lx landro-sync /proc/"$pid"/task/*/comm | head -n1)
task=${task%/comm}
c0=$(awk '{ print $14 + $15 }' "$task/stat")
for i in $(seq 30); do echo "$i" > "$T/ma/trickle$i"; sleep 1; done
c1=$(awk '{ print $14 + $15 }' "$task/stat")
echo "landro-sync CPU on A over 30 s of one change a second, $N files replicated: $(( (c1 - c0) * 1000 / $(getconf CLK_TCK) )) ms"
