#!/usr/bin/env bash
# tools/measure-first-touch.sh [DIR] - what new page-cache memory costs on
# this machine: dd writes a 512 MiB file into DIR (default /tmp) three
# times, deleting it in between (the kernel hands the freed pages out
# again), then a 4 GiB file, most of whose pages the guest has not used
# lately. In a VM that returns free memory to its host (free page
# reporting, virtio-balloon) the second kind costs a host fault per page;
# docs/PERFORMANCE.md ("The first touch of new memory") says where
# landro meets it. Prints MB/s per run. Not part of make bench.
set -euo pipefail
D=${1:-/tmp}
F=$(mktemp "$D/landro-touch-XXXXXX")
trap 'rm -f "$F"' EXIT
run() { # run MIB LABEL
    local t0 t1
    t0=$(date +%s.%N)
    dd if=/dev/zero of="$F" bs=1M count="$1" status=none
    t1=$(date +%s.%N)
    rm -f "$F"
    python3 -c "import sys; print('%-28s %6.0f MB/s' % (sys.argv[1], int(sys.argv[2]) * 1048576 / (float(sys.argv[4]) - float(sys.argv[3])) / 1e6))" \
        "$2" "$1" "$t0" "$t1"
}
run 512 "512 MiB (first)"
run 512 "512 MiB (pages just freed)"
run 512 "512 MiB (pages just freed)"
run 4096 "4 GiB (mostly untouched)"
