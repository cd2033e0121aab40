#!/usr/bin/env bash
# tools/bench.sh - what `make bench` runs: every tools/bench-*.sh in turn
# (store, file system, network, ...), each printing its own table of
# figure, baseline measured in the same run, and ratio, at its default
# size (the scripts' optional arguments differ: run one directly, e.g.
# tools/bench-store.sh 256M, for another size). Exits non-zero if any
# script failed, after running them all.
set -uo pipefail
cd "$(dirname "$0")/.."
failed=()
echo "landro bench: $(nproc) cores, $(sed -n 's/^model name\s*: //p' /proc/cpuinfo | head -n1), $(date -u +%FT%TZ)"
for s in tools/bench-*.sh; do
    [ -x "$s" ] || continue
    echo
    echo "== $(basename "$s" .sh)"
    start=$(date +%s)
    if ! "$s"; then
        failed+=("$(basename "$s")")
    fi
    echo "($(basename "$s") took $(($(date +%s) - start)) s)"
done
echo
if [ ${#failed[@]} -gt 0 ]; then
    echo "bench: failed: ${failed[*]}"
    exit 1
fi
echo "bench: all done"
