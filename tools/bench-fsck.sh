#!/usr/bin/env bash
# bench-fsck.sh - how fast landro-fsck verifies chunks, against sha256sum
# of the same store file in the same run (the bound is SHA-256 speed).
#
#   tools/bench-fsck.sh                 2 GiB in 20k files (make bench)
#   FSCK_BENCH_FULL=1 tools/bench-fsck.sh   10 GiB in 100k files
#   FSCK_BENCH_MIB=N FSCK_BENCH_FILES=N FSCK_BENCH_DIR=/somewhere  override
#
# Builds the store through the store's namespace API (landro-fsck-damage
# fill: fresh random bytes, no dedup), times `landro-fsck -n -f -v` and
# reads its pass 2 figures, then times sha256sum over data.mdb (the chunk
# bytes plus LMDB's pages, a few per cent more bytes) with a warm page
# cache for both. Prints one line per figure and the ratio.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
O=${O:-build}
FSCK=$top/$O/bin/landro-fsck
DAMAGE=$top/$O/bin/landro-fsck-damage
if [ "${FSCK_BENCH_FULL:-0}" = 1 ]; then
    mib=${FSCK_BENCH_MIB:-10240}; files=${FSCK_BENCH_FILES:-100000}
else
    mib=${FSCK_BENCH_MIB:-2048}; files=${FSCK_BENCH_FILES:-20000}
fi
[ -x "$FSCK" ] && [ -x "$DAMAGE" ] || { echo "bench-fsck: build first (make)"; exit 1; }
base=${FSCK_BENCH_DIR:-/tmp}
work=$(mktemp -d "$base/landro-bench-fsck-XXXXXX")
trap 'rm -rf "$work"' EXIT
store=$work/store

now() { date +%s.%N; }
t0=$(now)
"$DAMAGE" fill "$store" "$mib" "$files"
t1=$(now)
echo "store: $mib MiB in $files files built in $(echo "$t1 - $t0" | bc -l | xargs printf '%.1f') s"

cat "$store/data.mdb" > /dev/null   # warm the page cache for both runs
t0=$(now)
rc=0
out=$("$FSCK" -n -f -v "$store") || rc=$?
t1=$(now)
[ $rc = 0 ] || { echo "bench-fsck: landro-fsck -n exited $rc"; echo "$out"; exit 1; }
line=$(grep -E '^Pass 2: [0-9]+ chunks, [0-9]+ bytes verified' <<<"$out")
bytes=$(sed -E 's/^Pass 2: [0-9]+ chunks, ([0-9]+) bytes.*/\1/' <<<"$line")
p2=$(sed -E 's/.* in ([0-9.]+) s$/\1/' <<<"$line")
total=$(echo "$t1 - $t0" | bc -l)
fsck_gbs=$(echo "$bytes / $p2 / 1000000000" | bc -l)

size=$(stat -c %s "$store/data.mdb")
t0=$(now)
sha256sum "$store/data.mdb" > /dev/null
t1=$(now)
sha_gbs=$(echo "$size / ($t1 - $t0) / 1000000000" | bc -l)

printf 'landro-fsck -n -f: %.2f s in all for %s bytes of chunks\n' "$total" "$bytes"
printf 'chunk verification (pass 2): %.2f GB/s\n' "$fsck_gbs"
printf 'sha256sum of data.mdb (%s bytes): %.2f GB/s\n' "$size" "$sha_gbs"
printf 'ratio landro-fsck / sha256sum: %.2f\n' "$(echo "$fsck_gbs / $sha_gbs" | bc -l)"
