#!/usr/bin/env bash
# test_sync_netns_slow.sh - test_sync_netns.sh on a slow path: 300 kB/s
# into each side (1 % loss and 20 ms each way as there), and a 16 MiB
# file read on B. Its 8 MiB of read-ahead then takes half a minute to
# arrive: a fetch must live while its connection delivers, not give up
# after its 5 s (fetches gave up, their bytes mostly came anyway and were
# thrown away, and the file cost three times its size: net/node.c, tick_cb).
set -uo pipefail
cd "$(dirname "$0")"
RATE_KBPS=${RATE_KBPS:-300} BIG_MIB=${BIG_MIB:-16} BIG_READ_S=${BIG_READ_S:-200} WATCHDOG=${WATCHDOG:-330} \
    exec bash ./test_sync_netns.sh
