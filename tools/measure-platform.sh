#!/usr/bin/env bash
# tools/measure-platform.sh [ROUNDS] - what two settings of the VM this
# project is developed on cost tools/bench-sync.sh. The VM's kernel
# command line (/proc/cmdline) sets
#   haltpoll.guest_halt_poll_ns=0   an idle vCPU halts at once, so a
#       wake-up (each FUSE request and each reply is one) waits for the
#       host to run the vCPU again
#   page_reporting.*                free memory is handed back to the host
#       soon after it is freed, so touching it again costs a host fault
#       per page
# For ROUNDS (default 2) rounds this runs tools/bench-sync.sh with the
# machine as it is, and then with both settings relaxed for the run:
# guest_halt_poll_ns=100000 (the haltpoll driver's default is 200000)
# and page_reporting_order=11 (no block is that large, so nothing is
# reported), after touching and freeing 8 GiB so free memory is backed
# again. The settings are restored on exit. A diagnosis of the machine,
# not a landro setting: not part of make bench, and landro never changes
# them. RELAX=halt or RELAX=pages relaxes only the one (default both).
# Prints bench-sync's table for each run. Needs root and /dev/fuse;
# O=DIR is passed on to bench-sync.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
R=${1:-2}
RELAX=${RELAX:-both}
case $RELAX in both|halt|pages) ;; *) echo "measure-platform: RELAX is both, halt or pages" >&2; exit 2 ;; esac
HP=/sys/module/haltpoll/parameters/guest_halt_poll_ns
PR=/sys/module/page_reporting/parameters/page_reporting_order
for f in "$HP" "$PR"; do
    [ -w "$f" ] || { echo "measure-platform: $f is not there or not writable" >&2; exit 1; }
done
hp0=$(cat "$HP"); pr0=$(cat "$PR")
restore() { echo "$hp0" > "$HP"; echo "$pr0" > "$PR"; }
trap restore EXIT
echo "kernel command line: $(tr ' ' '\n' < /proc/cmdline | grep -E '^(haltpoll|page_reporting)' | tr '\n' ' ')"
echo "now: guest_halt_poll_ns=$hp0 page_reporting_order=$pr0"
for r in $(seq "$R"); do
    restore
    echo "== round $r: the machine as it is"
    tools/bench-sync.sh
    what=
    if [ "$RELAX" != pages ]; then
        echo 100000 > "$HP"
        what="guest_halt_poll_ns=100000"
    fi
    if [ "$RELAX" != halt ]; then
        echo 11 > "$PR"
        python3 -c "
b = bytearray(8 << 30)
for i in range(0, len(b), 4096):
    b[i] = 1"
        what="${what:+$what, }page_reporting_order=11, 8 GiB touched and freed"
    fi
    echo "== round $r: $what"
    tools/bench-sync.sh
done
